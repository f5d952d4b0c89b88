/* identity.c — IEEE 802.1AR IDevID certificates for Jetson devices (see
 * identity.h for the profile): device-key policy and CSR checks, the
 * hardwareModuleName otherName, issuing and checking certificates, the
 * identity CA (key in the token, certificate or CSR, keyset entry), and
 * enrolment sessions that record each certificate in the ledger. */
#include <libgen.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <p11-kit/pkcs11.h>

#include "identity.h"
#include "ledger.h"
#include "signer.h"
#include "tegra_key.h"

#define CSR_FILE_MAX (1024 * 1024)
#define KEY_ID_LEN 16
#define DEVICE_KEY_GENERATIONS 100

/* ---- small helpers ---------------------------------------------------------------- */

/* Relative paths recorded in a keyset are relative to the keyset's own
 * directory, so a keyset directory can move between stations intact. */
static char *path_resolve(const char *ks_path, const char *p)
{
        return p[0] == '/' ? strdup(p) : path_beside(ks_path, p);
}

static const char *extra_str(const struct ks_key *k, const char *name)
{
        return ks_key_extra_str(k, name);
}

static int extra_set(struct ks_key *k, const char *name, const char *value)
{
        json_object *v;

        if (!k->extra && !(k->extra = json_object_new_object()))
                return -ENOMEM;
        v = json_object_new_string(value);
        if (!v || json_object_object_add(k->extra, name, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static enum x509_hash hash_for_key(EVP_PKEY *pk)
{
        /* Match the hash to the CA key's strength (RFC 5480 §4, NIST SP 800-57). */
        if (EVP_PKEY_is_a(pk, "EC")) {
                int bits = EVP_PKEY_get_bits(pk);
                return bits > 384 ? X509H_SHA512 : bits > 256 ? X509H_SHA384 : X509H_SHA256;
        }
        return X509H_SHA256;
}

static int cert_serial_hex(X509 *x, char out[41])
{
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        unsigned char b[20];
        int n;

        out[0] = 0;
        if (!bn)
                return -ENOMEM;
        n = BN_num_bytes(bn);
        if (n > 20 || BN_is_negative(bn)) {
                BN_free(bn);
                return -EINVAL;
        }
        BN_bn2bin(bn, b);
        hex_encode(b, (size_t)n, out);
        BN_free(bn);
        return 0;
}

/* A one-line text for a field that came from outside (names, serials). */
static bool text_ok(const char *s, size_t max, bool ascii_no_space)
{
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (ascii_no_space && (*p <= 0x20 || *p > 0x7e))
                        return false;
        }
        return true;
}

/* ---- device keys and CSRs ------------------------------------------------------- */

int identity_key_check(fl_ctx *ctx, const char *what, EVP_PKEY *pk)
{
        EVP_PKEY_CTX *pc = NULL;
        BIGNUM *e = NULL;
        char grp[64] = "", enc[32] = "";
        size_t gl = 0;
        int r = -EINVAL;

        if (!pk)
                return fl_err(ctx, -EINVAL, "%s: no public key", what);
        if (EVP_PKEY_is_a(pk, "RSA")) {
                int bits = EVP_PKEY_get_bits(pk);
                if (bits < 2048) {
                        fl_err(ctx, r, "%s: RSA key of %d bits is too weak (at least 2048)", what, bits);
                        goto out;
                }
                if (bits > 16384) {
                        fl_err(ctx, r, "%s: RSA key of %d bits is larger than the 16384 accepted", what, bits);
                        goto out;
                }
                if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e)) {
                        fl_err(ctx, r, "%s: cannot read the RSA public exponent", what);
                        goto out;
                }
                if (!BN_is_odd(e) || BN_num_bits(e) < 17) {
                        fl_err(ctx, r, "%s: RSA public exponent must be odd and at least 65537", what);
                        goto out;
                }
        } else if (EVP_PKEY_is_a(pk, "EC")) {
                /* Explicit curve parameters are refused outright: they are how
                 * curve-substitution attacks (CVE-2020-0601) get in. */
                if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc), NULL) ||
                    strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP)) {
                        fl_err(ctx, r, "%s: EC key with explicit curve parameters (only named curves are accepted)",
                               what);
                        goto out;
                }
                if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), &gl) ||
                    (strcmp(grp, "prime256v1") && strcmp(grp, "secp384r1") && strcmp(grp, "secp521r1"))) {
                        fl_err(ctx, r, "%s: EC curve '%s' is not accepted (P-256, P-384 or P-521)", what,
                               grp[0] ? grp : "unknown");
                        goto out;
                }
                pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
                if (!pc || EVP_PKEY_public_check(pc) != 1) {
                        fl_err(ctx, r, "%s: the EC public key is not a valid point on %s", what, grp);
                        goto out;
                }
        } else {
                fl_err(ctx, r, "%s: %s keys are not accepted (RSA of at least 2048 bits, or EC P-256/P-384/P-521)",
                       what, EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
                goto out;
        }
        r = 0;
out:
        ERR_clear_error();
        EVP_PKEY_CTX_free(pc);
        BN_free(e);
        return r;
}

int identity_csr_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509_REQ **ret)
{
        X509_REQ *req = NULL;
        int r;

        r = x509_csr_parse(ctx, name, data, len, &req);
        if (r < 0)
                return r;
        r = identity_key_check(ctx, name, X509_REQ_get0_pubkey(req));
        if (r < 0) {
                X509_REQ_free(req);
                return r;
        }
        *ret = req;
        return 0;
}

int identity_csr_load(fl_ctx *ctx, const char *path, X509_REQ **ret)
{
        unsigned char *data = NULL;
        size_t len = 0;
        int r;

        r = file_read(ctx, path, CSR_FILE_MAX, &data, &len);
        if (r < 0)
                return r;
        r = identity_csr_parse(ctx, path, data, len, ret);
        free(data);
        return r;
}

/* ---- hardwareModuleName --------------------------------------------------------- */

bool identity_oid_ok(const char *s)
{
        ASN1_OBJECT *o;
        int dots = 0;

        if (!s || !*s || strlen(s) > 128 || s[0] < '0' || s[0] > '2')
                return false;
        for (const char *p = s; *p; p++) {
                if (*p == '.') {
                        if (p[1] < '0' || p[1] > '9')
                                return false;
                        dots++;
                } else if (*p < '0' || *p > '9') {
                        return false;
                }
        }
        if (dots < 1)
                return false;
        o = OBJ_txt2obj(s, 1);
        ERR_clear_error();
        ASN1_OBJECT_free(o);
        return o != NULL;
}

int identity_hmn_der(fl_ctx *ctx, const char *hw_type_oid, const unsigned char *serial, size_t serial_len,
                     unsigned char **ret, size_t *ret_len)
{
        ASN1_OBJECT *o = NULL;
        ASN1_OCTET_STRING *os = NULL;
        unsigned char *buf = NULL, *p;
        int ol, sl, total, r = -ENOMEM;

        if (!identity_oid_ok(hw_type_oid))
                return fl_err(ctx, -EINVAL, "hardware type '%s' is not a dotted OID",
                              hw_type_oid ? hw_type_oid : "(none)");
        o = OBJ_txt2obj(hw_type_oid, 1);
        os = ASN1_OCTET_STRING_new();
        if (!o || !os || !ASN1_OCTET_STRING_set(os, serial, (int)serial_len))
                goto out;
        ol = i2d_ASN1_OBJECT(o, NULL);
        sl = i2d_ASN1_OCTET_STRING(os, NULL);
        if (ol <= 0 || sl <= 0)
                goto out;
        total = ASN1_object_size(1, ol + sl, V_ASN1_SEQUENCE);
        if (total <= 0)
                goto out;
        buf = malloc((size_t)total);
        if (!buf)
                goto out;
        p = buf;
        ASN1_put_object(&p, 1, ol + sl, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
        i2d_ASN1_OBJECT(o, &p);
        i2d_ASN1_OCTET_STRING(os, &p);
        *ret = buf;
        *ret_len = (size_t)total;
        buf = NULL;
        r = 0;
out:
        free(buf);
        ASN1_OBJECT_free(o);
        ASN1_OCTET_STRING_free(os);
        return r;
}

int identity_hmn_parse(const unsigned char *der, size_t len, char **ret_oid, unsigned char **ret_serial,
                       size_t *ret_serial_len)
{
        const unsigned char *p = der, *end;
        ASN1_OBJECT *o = NULL;
        ASN1_OCTET_STRING *os = NULL;
        unsigned char *serial = NULL;
        char oid[160];
        long clen = 0;
        int tag = 0, xclass = 0, n, r = -EINVAL;

        if (!der || len < 2 || len > 4096)
                return -EINVAL;
        n = ASN1_get_object(&p, &clen, &tag, &xclass, (long)len);
        /* Definite-length, constructed, universal SEQUENCE covering it all. */
        if (n != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL || clen < 0 ||
            (size_t)(p - der) + (size_t)clen != len)
                goto out;
        end = p + clen;
        o = d2i_ASN1_OBJECT(NULL, &p, end - p);
        if (!o || p >= end)
                goto out;
        os = d2i_ASN1_OCTET_STRING(NULL, &p, end - p);
        if (!os || p != end)
                goto out;
        n = OBJ_obj2txt(oid, sizeof(oid), o, 1);
        if (n <= 0 || (size_t)n >= sizeof(oid))
                goto out;
        serial = malloc((size_t)ASN1_STRING_length(os) + 1);
        if (!serial) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(serial, ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os));
        {
                /* DER only: a certificate's value must re-encode to itself
                 * (no long-form or padded lengths, no odd OID encodings). */
                unsigned char *re = NULL;
                size_t re_len = 0;
                bool same = identity_hmn_der(NULL, oid, serial, (size_t)ASN1_STRING_length(os), &re, &re_len) == 0 &&
                            re_len == len && !memcmp(re, der, len);
                free(re);
                if (!same)
                        goto out;
        }
        {
                char *text = strdup(oid);
                if (!text) {
                        r = -ENOMEM;
                        goto out;
                }
                *ret_oid = text;
        }
        *ret_serial = serial;
        *ret_serial_len = (size_t)ASN1_STRING_length(os);
        serial = NULL;
        r = 0;
out:
        ERR_clear_error();
        free(serial);
        ASN1_OBJECT_free(o);
        ASN1_OCTET_STRING_free(os);
        return r;
}

/* ---- certificates ------------------------------------------------------------------- */

int identity_subject(fl_ctx *ctx, const struct identity_cert_req *req, X509_NAME **ret)
{
        X509_NAME *n = NULL;
        char *cn = NULL;
        int idx, r = -EINVAL;

        if (!req->product || !text_ok(req->product, IDENTITY_NAME_MAX, false))
                return fl_err(ctx, -EINVAL, "product name '%.80s' must be 1-%d characters without control characters",
                              req->product ? req->product : "", IDENTITY_NAME_MAX);
        if (req->serial && !text_ok(req->serial, IDENTITY_NAME_MAX, true))
                return fl_err(ctx, -EINVAL, "factory serial '%.80s' must be 1-%d printable ASCII characters, no spaces",
                              req->serial, IDENTITY_NAME_MAX);
        if (req->serial ? asprintf(&cn, "%s %s", req->product, req->serial) < 0 : !(cn = strdup(req->product)))
                return -ENOMEM;
        if (strlen(cn) > IDENTITY_NAME_MAX) {
                fl_err(ctx, r, "commonName '%s' is longer than %d characters (product + serial)", cn,
                       IDENTITY_NAME_MAX);
                goto out;
        }
        n = X509_NAME_new();
        if (!n) {
                r = -ENOMEM;
                goto out;
        }
        /* The manufacturer, as the CA names it (802.1AR §8.6 expects the
         * subject to identify the device's maker). */
        idx = X509_NAME_get_index_by_NID(X509_get_subject_name(req->ca_cert), NID_organizationName, -1);
        if (idx >= 0) {
                const ASN1_STRING *o = X509_NAME_ENTRY_get_data(
                        X509_NAME_get_entry(X509_get_subject_name(req->ca_cert), idx));
                if (!X509_NAME_add_entry_by_NID(n, NID_organizationName, ASN1_STRING_type(o),
                                                ASN1_STRING_get0_data(o), ASN1_STRING_length(o), -1, 0)) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)) {
                fl_err(ctx, r, "commonName '%s' is not valid UTF-8", cn);
                goto out;
        }
        if (!X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC, (const unsigned char *)req->ecid, -1, -1,
                                        0)) {
                r = -ENOMEM;
                goto out;
        }
        *ret = n;
        n = NULL;
        r = 0;
out:
        ERR_clear_error();
        X509_NAME_free(n);
        free(cn);
        return r;
}

int identity_cert_issue(fl_ctx *ctx, const struct identity_cert_req *req, x509_signer *ca, X509 **ret)
{
        unsigned char ecid[IDENTITY_ECID_BYTES], *hmn = NULL;
        size_t ecid_len = 0, hmn_len = 0;
        X509_NAME *subj = NULL;
        const char *oid = req->hw_type_oid ? req->hw_type_oid : IDENTITY_HWTYPE_PLACEHOLDER;
        bool ec = EVP_PKEY_is_a(req->pubkey, "EC");
        int r;

        if (!req->ecid || strlen(req->ecid) != 2 * IDENTITY_ECID_BYTES ||
            hex_decode(req->ecid, ecid, sizeof(ecid), &ecid_len) < 0 || ecid_len != IDENTITY_ECID_BYTES)
                return fl_err(ctx, -EINVAL, "ECID '%s' is not 32 hex digits", req->ecid ? req->ecid : "");
        r = identity_subject(ctx, req, &subj);
        if (r < 0)
                return r;
        r = identity_hmn_der(ctx, oid, ecid, ecid_len, &hmn, &hmn_len);
        if (r < 0)
                goto out;
        {
                struct x509_san san = { .type = X509_SAN_OTHERNAME, .oid = IDENTITY_OID_HMN, .der = hmn,
                                        .der_len = hmn_len };
                struct x509_cert_spec spec = {
                        .subject_name = subj,
                        .pubkey = req->pubkey,
                        .issuer = req->ca_cert,
                        .not_before = req->not_before,
                        .not_after = IDENTITY_NOT_AFTER,
                        .hash = hash_for_key(x509_signer_pubkey(ca)),
                        .ca = -1,
                        .path_len = -1,
                        .key_usage = KU_DIGITAL_SIGNATURE | (ec ? KU_KEY_AGREEMENT : 0),
                        .ext_key_usage = "clientAuth",
                        .ski = true,
                        .aki = true,
                        .san = &san,
                        .n_san = 1,
                };
                r = x509_cert_build(ctx, &spec, ca, ret);
        }
out:
        free(hmn);
        X509_NAME_free(subj);
        return r;
}

/* ---- checking ------------------------------------------------------------------------ */

static void problem(struct identity_check *c, const char *fmt, ...) FL_PRINTF(2, 3);
static void problem(struct identity_check *c, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        strv_add_fmtv(c->problems, &c->n_problems, IDENTITY_PROBLEMS_MAX, fmt, ap);
        va_end(ap);
}

void identity_check_clear(struct identity_check *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n_problems; i++)
                free(c->problems[i]);
        free(c->subject);
        memset(c, 0, sizeof(*c));
        c->ledger = -1;
}

static bool is_lower_hex(const char *s, size_t n)
{
        if (strlen(s) != n)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

static void check_chain(X509 *cert, X509 *ca, struct identity_check *c)
{
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *sc = X509_STORE_CTX_new();

        if (!st || !sc || !X509_STORE_add_cert(st, ca) || !X509_STORE_CTX_init(sc, st, cert, NULL)) {
                problem(c, "chain: cannot set up the verification (%s)", ossl_errstr());
                goto out;
        }
        /* The identity CA is the trust anchor even when it is itself issued
         * by a corporate root (partial chain); strict RFC 5280 checks. */
        X509_STORE_CTX_set_flags(sc, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
        X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_CLIENT);
        if (X509_verify_cert(sc) == 1)
                c->chain_ok = true;
        else
                problem(c, "chain: does not chain to the identity CA: %s",
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
out:
        ERR_clear_error();
        X509_STORE_CTX_free(sc);
        X509_STORE_free(st);
}

static void check_names(X509 *cert, struct identity_check *c)
{
        X509_NAME *n = X509_get_subject_name(cert);
        int i = X509_NAME_get_index_by_NID(n, NID_serialNumber, -1);

        if (i < 0) {
                problem(c, "subject: no serialNumber (the ECID)");
        } else if (X509_NAME_get_index_by_NID(n, NID_serialNumber, i) >= 0) {
                problem(c, "subject: more than one serialNumber");
        } else {
                const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
                char v[2 * IDENTITY_ECID_BYTES + 2];
                int len = ASN1_STRING_length(s);
                if (len == 2 * IDENTITY_ECID_BYTES) {
                        memcpy(v, ASN1_STRING_get0_data(s), (size_t)len);
                        v[len] = 0;
                } else {
                        v[0] = 0;
                }
                if (ASN1_STRING_type(s) != V_ASN1_PRINTABLESTRING || !is_lower_hex(v, 2 * IDENTITY_ECID_BYTES))
                        problem(c, "subject: serialNumber is not an ECID (PrintableString of 32 lower-case hex "
                                   "digits)");
                else
                        memcpy(c->ecid, v, sizeof(c->ecid));
        }
        i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
        if (i < 0)
                problem(c, "subject: no commonName (product and factory serial)");
        else if (X509_NAME_get_index_by_NID(n, NID_commonName, i) >= 0)
                problem(c, "subject: more than one commonName");
}

static void check_san(X509 *cert, const char *oid_want, struct identity_check *c)
{
        GENERAL_NAMES *gens;
        int crit = -1, found = 0;

        gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        if (!gens) {
                problem(c, "subjectAltName: %s", crit == -1 ? "missing" : "cannot be decoded or appears twice");
                ERR_clear_error();
                return;
        }
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                ASN1_OBJECT *type_id = NULL;
                ASN1_TYPE *val = NULL;
                char oid[80], *hw = NULL;
                unsigned char *ser = NULL, ecid[IDENTITY_ECID_BYTES];
                size_t ser_len = 0, ecid_len = 0;

                if (!GENERAL_NAME_get0_otherName(g, &type_id, &val))
                        continue;
                if (OBJ_obj2txt(oid, sizeof(oid), type_id, 1) <= 0 || strcmp(oid, IDENTITY_OID_HMN))
                        continue;
                found++;
                if (!val || val->type != V_ASN1_SEQUENCE ||
                    identity_hmn_parse(ASN1_STRING_get0_data(val->value.sequence),
                                       (size_t)ASN1_STRING_length(val->value.sequence), &hw, &ser, &ser_len) < 0) {
                        problem(c, "subjectAltName: hardwareModuleName is not SEQUENCE { OID, OCTET STRING }");
                        continue;
                }
                if (strcmp(hw, oid_want))
                        problem(c, "subjectAltName: hardwareModuleName hwType is %s, expected %s", hw, oid_want);
                if (!c->ecid[0] || hex_decode(c->ecid, ecid, sizeof(ecid), &ecid_len) < 0 || ser_len != ecid_len ||
                    memcmp(ser, ecid, ecid_len)) {
                        char *h = hex_dup(ser, ser_len > 64 ? 64 : ser_len);
                        problem(c, "subjectAltName: hardwareModuleName hwSerialNum %s is not the subject's ECID %s",
                                h ? h : "?", c->ecid[0] ? c->ecid : "(none)");
                        free(h);
                }
                free(hw);
                free(ser);
        }
        if (found != 1)
                problem(c, "subjectAltName: %d hardwareModuleName otherNames, expected one", found);
        GENERAL_NAMES_free(gens);
        ERR_clear_error();
}

static void check_usage(X509 *cert, struct identity_check *c)
{
        uint32_t flags = X509_get_extension_flags(cert);
        bool ec = EVP_PKEY_is_a(X509_get0_pubkey(cert), "EC");
        uint32_t want = KU_DIGITAL_SIGNATURE | (ec ? KU_KEY_AGREEMENT : 0);
        int idx;

        if (flags & EXFLAG_INVALID)
                problem(c, "extensions: invalid or duplicated extension");
        if (!(flags & EXFLAG_KUSAGE)) {
                problem(c, "keyUsage: missing");
        } else {
                uint32_t ku = X509_get_key_usage(cert);
                idx = X509_get_ext_by_NID(cert, NID_key_usage, -1);
                if (idx < 0 || !X509_EXTENSION_get_critical(X509_get_ext(cert, idx)))
                        problem(c, "keyUsage: not critical");
                if (ku != want)
                        problem(c, "keyUsage: 0x%x, the profile has %s (0x%x)", ku,
                                ec ? "digitalSignature, keyAgreement" : "digitalSignature", want);
        }
        if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT))
                problem(c, "extendedKeyUsage: clientAuth missing");
        /* CA:TRUE itself, not X509_check_ca(): that also needs keyCertSign. */
        if ((flags & EXFLAG_CA) || X509_check_ca(cert) != 0)
                problem(c, "basicConstraints: a device certificate must not be a CA");
}

static void check_ids(X509 *cert, X509 *ca, struct identity_check *c)
{
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
        const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(ca);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        if (!ski)
                problem(c, "subjectKeyIdentifier: missing");
        else if (!X509_pubkey_digest(cert, EVP_sha1(), md, &n) || (unsigned)ASN1_STRING_length(ski) != n ||
                 memcmp(ASN1_STRING_get0_data(ski), md, n))
                problem(c, "subjectKeyIdentifier: not the SHA-1 of the subject key");
        if (!aki)
                problem(c, "authorityKeyIdentifier: missing");
        else if (ca_ski && ASN1_OCTET_STRING_cmp(aki, ca_ski))
                problem(c, "authorityKeyIdentifier: not the identity CA's key identifier");
}

int identity_cert_check(fl_ctx *ctx, X509 *cert, X509 *ca, const char *hw_type_oid, struct identity_check *ret)
{
        struct identity_check c = { .ledger = -1 };
        const ASN1_TIME *na = X509_get0_notAfter(cert);
        BIGNUM *bn;
        size_t chain_problems;

        if (x509_cert_sha256(cert, c.fingerprint) < 0)
                return -ENOMEM;
        c.subject = x509_name_text(X509_get_subject_name(cert));
        if (!c.subject)
                return -ENOMEM;
        check_chain(cert, ca, &c);
        chain_problems = c.n_problems;

        if (X509_get_version(cert) != X509_VERSION_3)
                problem(&c, "version: not an X.509 v3 certificate");
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        if (!bn || BN_is_negative(bn) || BN_is_zero(bn))
                problem(&c, "serial: not a positive number");
        else if (BN_num_bytes(bn) != 16)
                problem(&c, "serial: %d bytes, the profile has 16 random bytes", BN_num_bytes(bn));
        BN_free(bn);
        cert_serial_hex(cert, c.serial_hex);

        check_names(cert, &c);
        if (!na || ASN1_STRING_type(na) != V_ASN1_GENERALIZEDTIME || ASN1_STRING_length(na) != 15 ||
            memcmp(ASN1_STRING_get0_data(na), "99991231235959Z", 15))
                problem(&c, "validity: notAfter is not 99991231235959Z (GeneralizedTime)");
        check_san(cert, hw_type_oid ? hw_type_oid : IDENTITY_HWTYPE_PLACEHOLDER, &c);
        check_usage(cert, &c);
        check_ids(cert, ca, &c);
        if (identity_key_check(ctx, "subject key", X509_get0_pubkey(cert)) < 0) {
                problem(&c, "%s", fl_ctx_last_error(ctx));
                fl_err_clear(ctx);
        }
        c.profile_ok = c.n_problems == chain_problems;
        ERR_clear_error();
        *ret = c;
        return 0;
}

/* ---- the identity CA ---------------------------------------------------------------- */

void identity_ca_clear(struct identity_ca *ca)
{
        if (!ca)
                return;
        X509_free(ca->cert);
        free(ca->cert_path);
        free(ca->hw_type_oid);
        memset(ca, 0, sizeof(*ca));
}

int identity_ca_load(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const char *role,
                     struct identity_ca *ret)
{
        struct identity_ca ca = { 0 };
        const char *p, *want, *oid;
        char got[65], spki[65];
        int r = -EINVAL;

        ca.key = keyset_find(ks, role);
        if (!ca.key)
                return fl_err_hint(ctx, FL_HINT_IDENTITY_CA, -EINVAL, "%s: no key with role '%s'",
                              ks_path, role);
        if (ca.key->type != KT_P256 && ca.key->type != KT_P384 && ca.key->type != KT_P521 &&
            ca.key->type != KT_RSA2K && ca.key->type != KT_RSA3K)
                return fl_err(ctx, -EINVAL, "%s: role '%s' is a %s key, not a certificate authority key", ks_path, role,
                              key_type_name(ca.key->type));
        p = extra_str(ca.key, "certificate");
        if (!p)
                return fl_err_hint(ctx, FL_HINT_IDENTITY_CA_CERT, -EINVAL,
                                   "%s: role '%s' has no certificate yet (attach the one the root issued)",
                              ks_path, role);
        ca.cert_path = path_resolve(ks_path, p);
        if (!ca.cert_path) {
                r = -ENOMEM;
                goto out;
        }
        r = x509_cert_load(ctx, ca.cert_path, &ca.cert);
        if (r < 0)
                goto out;
        want = extra_str(ca.key, "certificate_sha256");
        r = x509_cert_sha256(ca.cert, got);
        if (r < 0)
                goto out;
        if (want && strcmp(want, got)) {
                r = fl_err(ctx, -EBADMSG, "%s: certificate_sha256 of role '%s' is %s, but %s has %s", ks_path, role, want,
                           ca.cert_path, got);
                goto out;
        }
        if (ca.key->public_key_sha256) {
                r = pkey_spki_sha256(ctx, X509_get0_pubkey(ca.cert), spki);
                if (r < 0)
                        goto out;
                if (strcmp(spki, ca.key->public_key_sha256)) {
                        r = fl_err(ctx, -EBADMSG, "%s: the certificate of role '%s' (%s) does not carry its key", ks_path,
                                   role, ca.cert_path);
                        goto out;
                }
        }
        oid = extra_str(ca.key, "hw_type_oid");
        if (oid && !identity_oid_ok(oid)) {
                r = fl_err(ctx, -EINVAL, "%s: role '%s': hw_type_oid '%s' is not a dotted OID", ks_path, role, oid);
                goto out;
        }
        ca.hw_type_oid = strdup(oid ? oid : IDENTITY_HWTYPE_PLACEHOLDER);
        if (!ca.hw_type_oid) {
                r = -ENOMEM;
                goto out;
        }
        *ret = ca;
        memset(&ca, 0, sizeof(ca));
        r = 0;
out:
        identity_ca_clear(&ca);
        return r;
}

void identity_ca_result_clear(struct identity_ca_result *r)
{
        if (!r)
                return;
        free(r->label);
        free(r->uri);
        free(r->cert_path);
        free(r->csr_path);
        free(r->subject);
        memset(r, 0, sizeof(*r));
}

static int write_pem_new(fl_ctx *ctx, const char *path, const char *pem, size_t len)
{
        int r = file_write_new(ctx, path, pem, len, 0644);

        if (r == -EEXIST)
                return fl_err(ctx, -EEXIST, "%s exists already; fuseline never replaces it", path);
        return r;
}

/* The CA certificate's file name beside the keyset: "<keyset file name
 * without .json>-<role>.crt", so one directory can hold many keysets, each
 * with its own CA. (Keysets made before record their "identity-ca.crt".) */
static int ca_cert_name(fl_ctx *ctx, const char *keyset_path, const char *role, char *out, size_t len)
{
        const char *base = strrchr(keyset_path, '/');
        size_t n;
        int k;

        base = base ? base + 1 : keyset_path;
        n = strlen(base);
        if (n > 5 && !strcmp(base + n - 5, ".json"))
                n -= 5;
        k = snprintf(out, len, "%.*s-%s.crt", (int)n, base, role);
        if (k < 0 || (size_t)k >= len)
                return fl_err(ctx, -EINVAL, "%s: keyset file name too long for its CA certificate's name", keyset_path);
        return 0;
}

int identity_ca_create(fl_ctx *ctx, const struct identity_ca_opts *o, struct identity_ca_result *ret)
{
        struct identity_ca_result res = { 0 };
        struct keyset *ks = NULL;
        fl_token *tok = NULL;
        x509_signer *sg = NULL;
        X509_NAME *subj = NULL;
        X509 *cert = NULL;
        X509_REQ *req = NULL;
        token_obj priv = 0, pub = 0;
        bool made = false;
        char *pem = NULL, *written = NULL;
        size_t pem_len = 0, cnt = 0;
        unsigned char id[KEY_ID_LEN];
        const char *oid = o->hw_type_oid ? o->hw_type_oid : IDENTITY_HWTYPE_PLACEHOLDER;
        const char *role = o->role ? o->role : IDENTITY_CA_ROLE;
        char cert_file[256];
        enum key_type curve = o->curve ? o->curve : KT_P384;
        int r;

        if (curve != KT_P256 && curve != KT_P384)
                return fl_err(ctx, -EINVAL, "identity CA curve must be p256 or p384, not %s", key_type_name(curve));
        if (!identity_oid_ok(oid))
                return fl_err(ctx, -EINVAL, "hwType OID '%s' is not a dotted OID (e.g. 1.3.6.1.4.1.<PEN>.1)", oid);
        if (!o->subject)
                return fl_err_hint(ctx, FL_HINT_SUBJECT, -EINVAL, "the identity CA needs a subject name");
        r = x509_name_parse(ctx, o->subject, &subj);
        if (r < 0)
                return r;
        if (X509_NAME_entry_count(subj) == 0) {
                r = fl_err_hint(ctx, FL_HINT_SUBJECT, -EINVAL, "subject '%s' is empty", o->subject);
                goto out;
        }
        if (strcmp(role, IDENTITY_CA_ROLE) && strcmp(role, FTPM_EK_CA_ROLE)) {
                r = fl_err(ctx, -EINVAL, "CA role '%s': %s or %s", role, IDENTITY_CA_ROLE, FTPM_EK_CA_ROLE);
                goto out;
        }
        r = ca_cert_name(ctx, o->keyset_path, role, cert_file, sizeof(cert_file));
        if (r < 0)
                goto out;
        res.type = curve;
        r = keyset_load(ctx, o->keyset_path, &ks);
        if (r < 0)
                goto out;
        if (keyset_find(ks, role)) {
                r = fl_err(ctx, -EEXIST, "%s: already has role %s; fuseline never replaces keys", o->keyset_path,
                           role);
                goto out;
        }
        if (o->csr_out) {
                res.csr_path = strdup(o->csr_out);
        } else {
                res.cert_path = path_beside(o->keyset_path, cert_file);
        }
        if (!res.csr_path && !res.cert_path) {
                r = -ENOMEM;
                goto out;
        }
        if (access(res.csr_path ? res.csr_path : res.cert_path, F_OK) == 0) {
                r = fl_err(ctx, -EEXIST, "%s exists already; fuseline never replaces it",
                           res.csr_path ? res.csr_path : res.cert_path);
                goto out;
        }
        if (o->label)
                res.label = strdup(o->label);
        else if (asprintf(&res.label, "%s-%s", ks->name ? ks->name : "fuseline", role) < 0)
                res.label = NULL;
        if (!res.label) {
                r = -ENOMEM;
                goto out;
        }

        r = keyset_token_open(ctx, ks, o->tok, &tok);
        if (r < 0)
                goto out;
        r = token_count_label(tok, res.label, &cnt);
        if (r < 0)
                goto out;
        if (cnt) {
                r = fl_err(ctx, -EEXIST, "token '%s' already holds an object labelled '%s'; fuseline never replaces keys",
                           token_get_info(tok)->label, res.label);
                goto out;
        }
        r = token_random_id(tok, id, sizeof(id));
        if (r < 0)
                goto out;
        {
                struct keygen_spec spec = { .label = res.label, .id = id, .id_len = sizeof(id), .type = curve,
                                            .extractable = false };
                r = token_keygen(tok, &spec, &priv, &pub);
                if (r < 0)
                        goto out;
                made = true;
        }
        res.uri = token_object_uri(tok, res.label, id, sizeof(id), CKO_PRIVATE_KEY);
        if (!res.uri) {
                r = -ENOMEM;
                goto fail;
        }
        r = x509_signer_token(ctx, tok, priv, &sg);
        if (r < 0)
                goto fail;
        r = pkey_spki_sha256(ctx, x509_signer_pubkey(sg), res.spki_sha256);
        if (r < 0)
                goto fail;

        if (o->csr_out) {
                struct x509_csr_spec cs = { .subject = o->subject, .hash = hash_for_key(x509_signer_pubkey(sg)),
                                            .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN };
                r = x509_csr_build(ctx, &cs, sg, &req);
                if (r == 0)
                        r = x509_csr_pem(req, &pem, &pem_len);
                if (r < 0)
                        goto fail;
                res.subject = x509_name_text(X509_REQ_get_subject_name(req));
        } else {
                /* The CA outlives every device certificate it signs, and
                 * those never expire (802.1AR §8.5), so by default it has
                 * the same notAfter. */
                struct x509_cert_spec cs = { .subject_name = subj, .days = o->days,
                                             .not_after = o->days ? 0 : IDENTITY_NOT_AFTER,
                                             .hash = hash_for_key(x509_signer_pubkey(sg)), .ca = 1, .path_len = 0,
                                             .bc_critical = true, .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                                             .ski = true, .aki = true };
                r = x509_cert_build(ctx, &cs, sg, &cert);
                if (r == 0)
                        r = x509_cert_pem(cert, &pem, &pem_len);
                if (r == 0)
                        r = x509_cert_sha256(cert, res.cert_sha256);
                if (r < 0)
                        goto fail;
                res.subject = x509_name_text(X509_get_subject_name(cert));
        }
        if (!res.subject) {
                r = -ENOMEM;
                goto fail;
        }
        written = res.csr_path ? res.csr_path : res.cert_path;
        r = write_pem_new(ctx, written, pem, pem_len);
        if (r < 0) {
                written = NULL;
                goto fail;
        }
        {
                struct ks_key k = { .role = (char *)role, .type = curve, .label = res.label, .uri = res.uri,
                                    .public_key_sha256 = res.spki_sha256 };
                k.extra = json_object_new_object();
                if (!k.extra) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (!o->csr_out) {
                        json_object_object_add(k.extra, "certificate", json_object_new_string(cert_file));
                        json_object_object_add(k.extra, "certificate_sha256", json_object_new_string(res.cert_sha256));
                } else {
                        json_object_object_add(k.extra, "csr", json_object_new_string(res.csr_path));
                }
                json_object_object_add(k.extra, "subject", json_object_new_string(res.subject));
                json_object_object_add(k.extra, "hw_type_oid", json_object_new_string(oid));
                r = keyset_add(ks, &k);
                json_object_put(k.extra);
                if (r < 0)
                        goto fail;
        }
        r = keyset_save(ctx, ks, o->keyset_path);
        if (r < 0)
                goto fail;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
        goto out;
fail:
        /* Undo only what this call created. */
        if (written)
                unlink(written);
        if (made) {
                token_destroy(tok, priv);
                token_destroy(tok, pub);
        }
out:
        free(pem);
        X509_free(cert);
        X509_REQ_free(req);
        X509_NAME_free(subj);
        x509_signer_free(sg);
        token_close(tok);
        keyset_free(ks);
        identity_ca_result_clear(&res);
        return r;
}

int identity_ca_import(fl_ctx *ctx, const char *keyset_path, const char *cert_path, struct identity_ca_result *ret)
{
        struct identity_ca_result res = { 0 };
        struct keyset *ks = NULL;
        struct ks_key *k;
        X509 *cert = NULL;
        char *pem = NULL, cert_file[256];
        size_t pem_len = 0;
        bool written = false;
        int r;

        r = ca_cert_name(ctx, keyset_path, IDENTITY_CA_ROLE, cert_file, sizeof(cert_file));
        if (r < 0)
                return r;
        r = keyset_load(ctx, keyset_path, &ks);
        if (r < 0)
                return r;
        k = keyset_find(ks, IDENTITY_CA_ROLE);
        if (!k) {
                r = fl_err_hint(ctx, FL_HINT_CSR_OUT, -EINVAL, "%s: no key with role %s", keyset_path,
                           IDENTITY_CA_ROLE);
                goto out;
        }
        if (extra_str(k, "certificate")) {
                r = fl_err(ctx, -EEXIST, "%s: role %s has a certificate already (%s); fuseline never replaces it",
                           keyset_path, IDENTITY_CA_ROLE, extra_str(k, "certificate"));
                goto out;
        }
        r = x509_cert_load(ctx, cert_path, &cert);
        if (r < 0)
                goto out;
        r = pkey_spki_sha256(ctx, X509_get0_pubkey(cert), res.spki_sha256);
        if (r < 0)
                goto out;
        if (!k->public_key_sha256 || strcmp(res.spki_sha256, k->public_key_sha256)) {
                r = fl_err(ctx, -EBADMSG, "%s: does not carry the key of role %s (%s)", cert_path, IDENTITY_CA_ROLE,
                           k->label ? k->label : "?");
                goto out;
        }
        if (X509_check_ca(cert) < 1 || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
                r = fl_err(ctx, -EINVAL, "%s: not a CA certificate (basicConstraints CA:TRUE and keyCertSign needed)",
                           cert_path);
                goto out;
        }
        res.cert_path = path_beside(keyset_path, cert_file);
        res.subject = x509_name_text(X509_get_subject_name(cert));
        res.label = k->label ? strdup(k->label) : NULL;
        res.uri = k->uri ? strdup(k->uri) : NULL;
        res.type = k->type;
        if (!res.cert_path || !res.subject) {
                r = -ENOMEM;
                goto out;
        }
        r = x509_cert_sha256(cert, res.cert_sha256);
        if (r == 0)
                r = x509_cert_pem(cert, &pem, &pem_len);
        if (r < 0)
                goto out;
        r = write_pem_new(ctx, res.cert_path, pem, pem_len);
        if (r < 0)
                goto out;
        written = true;
        if ((r = extra_set(k, "certificate", cert_file)) < 0 ||
            (r = extra_set(k, "certificate_sha256", res.cert_sha256)) < 0 ||
            (r = extra_set(k, "subject", res.subject)) < 0)
                goto out;
        r = keyset_save(ctx, ks, keyset_path);
        if (r < 0)
                goto out;
        written = false;
        *ret = res;
        memset(&res, 0, sizeof(res));
out:
        if (written)
                unlink(res.cert_path);
        free(pem);
        X509_free(cert);
        keyset_free(ks);
        identity_ca_result_clear(&res);
        return r;
}

/* ---- enrolment sessions -------------------------------------------------------------- */

struct identity_session {
        fl_ctx *ctx;
        struct keyset *ks;
        char *ks_path;
        char *ca_role;
        struct identity_ca ca;
        char *hw_type_oid;
        char ca_sha256[65];
        struct ledger *l;
        struct signer *sg;     /* the CA key (lib/signer.c) */
        fl_token *tok;         /* borrowed from sg */
        x509_signer *signer;   /* borrowed from sg */
        char *station, *operator;
};

void identity_session_close(struct identity_session *s)
{
        if (!s)
                return;
        signer_close(s->sg);
        ledger_close(s->l);
        identity_ca_clear(&s->ca);
        keyset_free(s->ks);
        free(s->ks_path);
        free(s->ca_role);
        free(s->hw_type_oid);
        free(s->station);
        free(s->operator);
        free(s);
}

static char *strdup_or_null(const char *s, bool *oom)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = true;
        return d;
}

int identity_session_open(fl_ctx *ctx, const struct identity_session_opts *o, struct identity_session **ret)
{
        struct identity_session *s = calloc(1, sizeof(*s));
        bool oom = false;
        int r;

        if (!s)
                return -ENOMEM;
        s->ctx = ctx;
        s->ks_path = strdup_or_null(o->keyset_path, &oom);
        s->ca_role = strdup_or_null(o->ca_role ? o->ca_role : IDENTITY_CA_ROLE, &oom);
        s->station = strdup_or_null(o->station, &oom);
        s->operator = strdup_or_null(o->operator, &oom);
        if (oom || !s->ks_path) {
                r = s->ks_path ? -ENOMEM : fl_err_hint(ctx, FL_HINT_KEYSET, -EINVAL, "enrolment needs the keyset holding the identity CA");
                goto out;
        }
        if (o->hw_type_oid && !identity_oid_ok(o->hw_type_oid)) {
                r = fl_err(ctx, -EINVAL, "hwType OID '%s' is not a dotted OID", o->hw_type_oid);
                goto out;
        }
        r = keyset_load(ctx, s->ks_path, &s->ks);
        if (r < 0)
                goto out;
        r = identity_ca_load(ctx, s->ks, s->ks_path, s->ca_role, &s->ca);
        if (r < 0)
                goto out;
        s->hw_type_oid = strdup(o->hw_type_oid ? o->hw_type_oid : s->ca.hw_type_oid);
        if (!s->hw_type_oid) {
                r = -ENOMEM;
                goto out;
        }
        if (!strcmp(s->hw_type_oid, IDENTITY_HWTYPE_PLACEHOLDER) && s->ks->profile &&
            !strcmp(s->ks->profile, "production"))
                fl_log(ctx, FL_LOG_WARN,
                       "hardwareModuleName hwType is the documentation placeholder %s: set your own hwType "
                       "OID",
                       IDENTITY_HWTYPE_PLACEHOLDER);
        r = x509_cert_sha256(s->ca.cert, s->ca_sha256);
        if (r < 0)
                goto out;
        r = ledger_open(ctx, o->db_path ? o->db_path : ledger_path(NULL), LEDGER_WRITE, &s->l);
        if (r < 0)
                goto out;
        {
                /* The token, the pinned key, the role policy and the
                 * production interlock: the one signer. The certificate
                 * was checked by identity_ca_load. */
                struct signer_opts so = { .tok = o->tok, .keyset_path = s->ks_path, .use = SIGNER_USE_DEVICE_CERT };
                r = signer_open(ctx, s->ks, s->ca_role, &so, &s->sg);
                if (r < 0)
                        goto out;
                s->tok = signer_token(s->sg);
                s->signer = signer_x509(s->sg);
        }
        if (!x509_cert_has_key(s->ca.cert, x509_signer_pubkey(s->signer))) {
                r = fl_err(ctx, -EBADMSG, "%s: the token key of role '%s' is not the key of %s", s->ks_path, s->ca_role,
                           s->ca.cert_path);
                goto out;
        }
        *ret = s;
        s = NULL;
        r = 0;
out:
        identity_session_close(s);
        return r;
}

void identity_enroll_result_clear(struct identity_enroll_result *r)
{
        if (!r)
                return;
        free(r->subject);
        free(r->pem);
        free(r->key_uri);
        free(r->superseded);
        memset(r, 0, sizeof(*r));
}

/* A device key made in the token for boards without a key store. The
 * labels are <keyset name>-idevid-<ecid>, then -2, -3 … for reissues; a
 * re-run without --reissue uses the newest one, so it is idempotent. */
struct device_key {
        token_obj priv, pub;
        bool made;
        char *uri;
        EVP_PKEY *pk;
};

static int device_key_get(struct identity_session *s, const char *ecid, enum key_type type, bool fresh,
                          struct device_key *ret)
{
        char *base = NULL, *label = NULL, *newest = NULL;
        unsigned char id[KEY_ID_LEN], *oid = NULL;
        size_t cnt, oid_len = 0;
        unsigned gen;
        int r;

        if (type != KT_P256 && type != KT_P384)
                return fl_err(s->ctx, -EINVAL, "a device key made in the token is p256 or p384, not %s", key_type_name(type));
        if (asprintf(&base, "%s-idevid-%s", s->ks->name ? s->ks->name : "fuseline", ecid) < 0)
                return -ENOMEM;
        for (gen = 1; gen <= DEVICE_KEY_GENERATIONS; gen++) {
                free(label);
                label = NULL;
                if ((gen == 1 ? asprintf(&label, "%s", base) : asprintf(&label, "%s-%u", base, gen)) < 0) {
                        label = NULL;
                        r = -ENOMEM;
                        goto out;
                }
                r = token_count_label(s->tok, label, &cnt);
                if (r < 0)
                        goto out;
                if (!cnt)
                        break;
                free(newest);
                newest = label;
                label = NULL;
        }
        if (newest && !fresh) {
                r = token_find_label(s->tok, newest, CKO_PRIVATE_KEY, &ret->priv);
                if (r < 0)
                        goto out;
                r = token_attr_bytes(s->tok, ret->priv, CKA_ID, &oid, &oid_len);
                if (r < 0)
                        goto out;
                r = token_get_pubkey(s->tok, ret->priv, &ret->pk);
                if (r < 0)
                        goto out;
                ret->uri = token_object_uri(s->tok, newest, oid, oid_len, CKO_PRIVATE_KEY);
                fl_log(s->ctx, FL_LOG_INFO, "using the device key made earlier: %s", newest);
        } else {
                if (!label) {
                        r = fl_err(s->ctx, -EEXIST, "token holds %d device keys for ECID %s already", DEVICE_KEY_GENERATIONS,
                                   ecid);
                        goto out;
                }
                r = token_random_id(s->tok, id, sizeof(id));
                if (r < 0)
                        goto out;
                {
                        /* Extractable on purpose: the key is injected into a
                         * board that cannot make its own (issue 5). */
                        struct keygen_spec spec = { .label = label, .id = id, .id_len = sizeof(id), .type = type,
                                                    .extractable = true };
                        r = token_keygen(s->tok, &spec, &ret->priv, &ret->pub);
                        if (r < 0)
                                goto out;
                }
                ret->made = true;
                r = token_get_pubkey(s->tok, ret->priv, &ret->pk);
                if (r < 0)
                        goto out;
                ret->uri = token_object_uri(s->tok, label, id, sizeof(id), CKO_PRIVATE_KEY);
        }
        r = ret->uri ? 0 : -ENOMEM;
out:
        free(base);
        free(label);
        free(newest);
        free(oid);
        return r;
}

static void device_key_undo(struct identity_session *s, struct device_key *k, bool keep)
{
        if (k->made && !keep) {
                token_destroy(s->tok, k->priv);
                token_destroy(s->tok, k->pub);
        }
        EVP_PKEY_free(k->pk);
        free(k->uri);
        memset(k, 0, sizeof(*k));
}

static int result_fill(struct identity_session *s, X509 *x, struct identity_enroll_result *res)
{
        int r;

        r = x509_cert_sha256(x, res->fingerprint);
        if (r < 0)
                return r;
        r = cert_serial_hex(x, res->serial_hex);
        if (r < 0)
                return fl_err(s->ctx, r, "certificate serial number is not a positive number of at most 20 bytes");
        res->subject = x509_name_text(X509_get_subject_name(x));
        if (!res->subject)
                return -ENOMEM;
        return x509_cert_pem(x, &res->pem, &res->pem_len);
}

static json_object *details_new(struct identity_session *s, const char *spki, const char *csr_sha256,
                                const char *key_uri)
{
        json_object *d = json_object_new_object();

        if (!d)
                return NULL;
        json_object_object_add(d, "ca_role", json_object_new_string(s->ca_role));
        json_object_object_add(d, "ca_certificate_sha256", json_object_new_string(s->ca_sha256));
        json_object_object_add(d, "hw_type_oid", json_object_new_string(s->hw_type_oid));
        if (spki)
                json_object_object_add(d, "public_key_sha256", json_object_new_string(spki));
        if (csr_sha256)
                json_object_object_add(d, "csr_sha256", json_object_new_string(csr_sha256));
        if (key_uri)
                json_object_object_add(d, "key_uri", json_object_new_string(key_uri));
        return d;
}

static int event_append(struct identity_session *s, const char *ecid, const char *outcome, json_object *details,
                        const struct ledger_device *dev, const struct ledger_cert *cert, int64_t *ret_id)
{
        struct ledger_event ev = { .station = s->station, .operator = s->operator, .command = "enroll",
                                   .ecid = ecid, .kind = LEDGER_RECORD, .outcome = outcome,
                                   .details = details ? json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN)
                                                      : NULL,
                                   .device = dev, .cert = cert };
        struct ledger_appended ap;
        int r = ledger_append(s->l, &ev, &ap);

        if (r == 0 && ret_id)
                *ret_id = ap.id;
        return r;
}

/* Why an existing certificate is not the one this request would give. */
static const char *cert_differs(struct identity_session *s, X509 *cur, EVP_PKEY *pk, X509_NAME *subj)
{
        if (EVP_PKEY_eq(X509_get0_pubkey(cur), pk) != 1)
                return "a different public key";
        if (X509_NAME_cmp(X509_get_issuer_name(cur), X509_get_subject_name(s->ca.cert)) ||
            X509_verify(cur, X509_get0_pubkey(s->ca.cert)) != 1)
                return "another CA";
        if (X509_NAME_cmp(X509_get_subject_name(cur), subj))
                return "a different subject";
        return NULL;
}

static int file_sha256_hex(fl_ctx *ctx, const char *path, char out[65])
{
        unsigned char *data = NULL, md[32];
        size_t len = 0;
        int r = file_read(ctx, path, CSR_FILE_MAX, &data, &len);

        if (r < 0)
                return r;
        SHA256(data, len, md);
        hex_encode(md, sizeof(md), out);
        free(data);
        return 0;
}

static int enroll_do(struct identity_session *s, const struct identity_enroll_req *req, const char *ecid,
                     struct identity_enroll_result *res)
{
        struct ledger_cert_info cur = { 0 };
        struct device_key dk = { 0 };
        X509_REQ *csr = NULL;
        X509 *curx = NULL, *x = NULL;
        X509_NAME *subj = NULL;
        EVP_PKEY *pk = NULL;
        json_object *det = NULL;
        unsigned char *der = NULL;
        size_t der_len = 0;
        char spki[65], csr_sha[65];
        bool have_cur = false, keep_key = false;
        int r;
        struct identity_cert_req cr = { .ecid = ecid, .product = req->product ? req->product : s->ks->name,
                                        .serial = req->serial, .hw_type_oid = s->hw_type_oid,
                                        .ca_cert = s->ca.cert };

        if (!cr.product)
                cr.product = "fuseline";
        if (!!req->csr_path == (req->generate != KT_NONE))
                return fl_err_hint(s->ctx, FL_HINT_DEVICE_KEY, -EINVAL, "a device key comes from either a CSR or the token, not both or neither");
        r = identity_subject(s->ctx, &cr, &subj);
        if (r < 0)
                return r;
        r = ledger_cert_current(s->l, ecid, &cur);
        if (r == 0)
                have_cur = true;
        else if (r != -ENOENT)
                goto out;

        if (req->csr_path) {
                r = identity_csr_load(s->ctx, req->csr_path, &csr);
                if (r < 0)
                        goto out;
                pk = X509_REQ_get0_pubkey(csr);
                r = file_sha256_hex(s->ctx, req->csr_path, csr_sha);
                if (r < 0)
                        goto out;
        } else {
                /* A reissue with a token key means a new key. */
                r = device_key_get(s, ecid, req->generate, req->reissue, &dk);
                if (r < 0)
                        goto out;
                pk = dk.pk;
        }
        if (EVP_PKEY_eq(pk, X509_get0_pubkey(s->ca.cert)) == 1) {
                r = fl_err(s->ctx, -EINVAL, "%s: the device key is the identity CA's own key",
                           req->csr_path ? req->csr_path : "the key made in the token");
                goto out;
        }
        r = pkey_spki_sha256(s->ctx, pk, spki);
        if (r < 0)
                goto out;

        if (have_cur) {
                const unsigned char *p = cur.der;
                const char *why;
                curx = d2i_X509(NULL, &p, (long)cur.der_len);
                if (!curx) {
                        r = fl_err(s->ctx, -EIO, "ledger: the recorded certificate sha256:%s of ECID %s does not decode",
                                   cur.fingerprint, ecid);
                        goto out;
                }
                why = cert_differs(s, curx, pk, subj);
                if (!req->reissue) {
                        if (why) {
                                r = fl_err_hint(s->ctx, FL_HINT_REISSUE, -EEXIST,
                                                "ECID %s is enrolled already with %s (certificate sha256:%s); "
                                                "a reissue supersedes it",
                                           ecid, why, cur.fingerprint);
                                goto out;
                        }
                        /* Idempotent re-run: hand back what was issued. */
                        keep_key = true;
                        r = result_fill(s, curx, res);
                        if (r < 0)
                                goto out;
                        det = details_new(s, spki, req->csr_path ? csr_sha : NULL, dk.uri);
                        if (!det) {
                                r = -ENOMEM;
                                goto out;
                        }
                        json_object_object_add(det, "certificate_sha256", json_object_new_string(res->fingerprint));
                        r = event_append(s, ecid, "already-enrolled", det, NULL, NULL, &res->event_id);
                        if (r < 0)
                                goto out;
                        res->outcome = IDENTITY_ALREADY;
                        goto done;
                }
        }

        cr.pubkey = pk;
        r = identity_cert_issue(s->ctx, &cr, s->signer, &x);
        if (r < 0)
                goto out;
        r = x509_cert_der(x, &der, &der_len);
        if (r < 0)
                goto out;
        r = result_fill(s, x, res);
        if (r < 0)
                goto out;
        det = details_new(s, spki, req->csr_path ? csr_sha : NULL, dk.uri);
        if (!det) {
                r = -ENOMEM;
                goto out;
        }
        json_object_object_add(det, "product", json_object_new_string(cr.product));
        json_object_object_add(det, "reissue", json_object_new_boolean(req->reissue));
        {
                struct ledger_device dev = { .chip = s->ks->chip, .serial = req->serial,
                                             .state = LEDGER_STATE_ENROLLED };
                struct ledger_cert lc = { .der = der, .der_len = der_len, .supersede = req->reissue };
                r = event_append(s, ecid, "ok", det, &dev, &lc, &res->event_id);
                if (r < 0)
                        goto out;
        }
        keep_key = true;
        res->outcome = have_cur ? IDENTITY_REISSUED : IDENTITY_ISSUED;
        if (have_cur) {
                res->superseded = strdup(cur.fingerprint);
                if (!res->superseded) {
                        r = -ENOMEM;
                        goto out;
                }
        }
done:
        if (dk.uri) {
                res->key_uri = strdup(dk.uri);
                if (!res->key_uri) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = 0;
out:
        device_key_undo(s, &dk, keep_key);
        json_object_put(det);
        OPENSSL_free(der);
        X509_free(x);
        X509_free(curx);
        X509_REQ_free(csr);
        X509_NAME_free(subj);
        ledger_cert_info_clear(&cur);
        return r;
}

int identity_enroll(struct identity_session *s, const struct identity_enroll_req *req,
                    struct identity_enroll_result *ret)
{
        struct identity_enroll_result res = { 0 };
        char ecid[LEDGER_ECID_LEN + 1];
        int r;

        r = ledger_ecid_parse(s->ctx, req->ecid ? req->ecid : "", ecid);
        if (r < 0)
                return r;
        memcpy(res.ecid, ecid, sizeof(res.ecid));
        r = enroll_do(s, req, ecid, &res);
        if (r < 0) {
                /* Record the failed attempt too, keeping the original error
                 * as the one reported. */
                char msg[FL_ERRMSG_MAX];
                json_object *det = details_new(s, NULL, NULL, NULL);
                snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(s->ctx) ? fl_ctx_last_error(s->ctx) : strerror(-r));
                if (det) {
                        json_object_object_add(det, "error", json_object_new_string(msg));
                        if (req->csr_path)
                                json_object_object_add(det, "csr", json_object_new_string(req->csr_path));
                        (void)event_append(s, ecid, r == -EEXIST ? "conflict" : "failed", det, NULL, NULL, NULL);
                        json_object_put(det);
                }
                fl_err(s->ctx, r, "%s", msg);
                identity_enroll_result_clear(&res);
                return r;
        }
        *ret = res;
        return 0;
}

/* ---- verify cert ------------------------------------------------------------------------- */

int identity_verify(fl_ctx *ctx, const struct identity_verify_opts *o, struct identity_check *ret)
{
        struct identity_check c = { .ledger = -1 };
        struct identity_ca ca = { 0 };
        struct keyset *ks = NULL;
        struct ledger *l = NULL;
        struct ledger_cert_info cur = { 0 }, *list = NULL;
        size_t n_list = 0;
        X509 *cert = NULL;
        int r;

        if (o->hw_type_oid && !identity_oid_ok(o->hw_type_oid))
                return fl_err(ctx, -EINVAL, "hwType OID '%s' is not a dotted OID", o->hw_type_oid);
        r = x509_cert_load(ctx, o->cert_path, &cert);
        if (r < 0)
                return r;
        r = keyset_load(ctx, o->keyset_path, &ks);
        if (r < 0)
                goto out;
        r = identity_ca_load(ctx, ks, o->keyset_path, o->ca_role ? o->ca_role : IDENTITY_CA_ROLE, &ca);
        if (r < 0)
                goto out;
        if (o->db_path) {
                r = ledger_open(ctx, o->db_path, LEDGER_READ, &l);
                if (r < 0)
                        goto out;
        }
        r = identity_cert_check(ctx, cert, ca.cert, o->hw_type_oid ? o->hw_type_oid : ca.hw_type_oid, &c);
        if (r < 0)
                goto out;
        if (l) {
                if (!c.ecid[0]) {
                        problem(&c, "ledger: no ECID in the certificate to look up");
                        c.ledger = 0;
                } else {
                        r = ledger_cert_current(l, c.ecid, &cur);
                        if (r < 0 && r != -ENOENT)
                                goto out;
                        if (r == 0 && !strcmp(cur.fingerprint, c.fingerprint)) {
                                c.ledger = 1;
                        } else {
                                const char *status = "not recorded";
                                r = ledger_cert_list(l, c.ecid, &list, &n_list);
                                if (r < 0)
                                        goto out;
                                for (size_t i = 0; i < n_list; i++)
                                        if (!strcmp(list[i].fingerprint, c.fingerprint))
                                                status = list[i].status;
                                c.ledger = 0;
                                if (cur.fingerprint)
                                        problem(&c, "ledger: this certificate is %s for ECID %s; the current one is "
                                                    "sha256:%s",
                                                status, c.ecid, cur.fingerprint);
                                else
                                        problem(&c, "ledger: ECID %s has no valid certificate (this one: %s)", c.ecid,
                                                status);
                        }
                }
                fl_err_clear(ctx);
        }
        *ret = c;
        memset(&c, 0, sizeof(c));
        r = 0;
out:
        ledger_cert_list_free(list, n_list);
        ledger_cert_info_clear(&cur);
        ledger_close(l);
        identity_check_clear(&c);
        identity_ca_clear(&ca);
        keyset_free(ks);
        X509_free(cert);
        return r;
}
