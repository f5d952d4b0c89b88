/* identity_profile.c — the pure IEEE 802.1AR IDevID profile (identity.h):
 * device-key policy and CSR checks, the hardwareModuleName otherName,
 * issuing and checking certificates. No token, no ledger. */

#include "identity_int.h"

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

void identity_problem(struct identity_check *c, const char *fmt, ...)
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
                identity_problem(c, "chain: cannot set up the verification (%s)", ossl_errstr());
                goto out;
        }
        /* The identity CA is the trust anchor even when it is itself issued
         * by a corporate root (partial chain); strict RFC 5280 checks. */
        X509_STORE_CTX_set_flags(sc, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
        X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_CLIENT);
        if (X509_verify_cert(sc) == 1)
                c->chain_ok = true;
        else
                identity_problem(c, "chain: does not chain to the identity CA: %s",
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
                identity_problem(c, "subject: no serialNumber (the ECID)");
        } else if (X509_NAME_get_index_by_NID(n, NID_serialNumber, i) >= 0) {
                identity_problem(c, "subject: more than one serialNumber");
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
                        identity_problem(c, "subject: serialNumber is not an ECID (PrintableString of 32 lower-case hex "
                                   "digits)");
                else
                        memcpy(c->ecid, v, sizeof(c->ecid));
        }
        i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
        if (i < 0)
                identity_problem(c, "subject: no commonName (product and factory serial)");
        else if (X509_NAME_get_index_by_NID(n, NID_commonName, i) >= 0)
                identity_problem(c, "subject: more than one commonName");
}

static void check_san(X509 *cert, const char *oid_want, struct identity_check *c)
{
        GENERAL_NAMES *gens;
        int crit = -1, found = 0;

        gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        if (!gens) {
                identity_problem(c, "subjectAltName: %s", crit == -1 ? "missing" : "cannot be decoded or appears twice");
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
                        identity_problem(c, "subjectAltName: hardwareModuleName is not SEQUENCE { OID, OCTET STRING }");
                        continue;
                }
                if (strcmp(hw, oid_want))
                        identity_problem(c, "subjectAltName: hardwareModuleName hwType is %s, expected %s", hw, oid_want);
                if (!c->ecid[0] || hex_decode(c->ecid, ecid, sizeof(ecid), &ecid_len) < 0 || ser_len != ecid_len ||
                    memcmp(ser, ecid, ecid_len)) {
                        char *h = hex_dup(ser, ser_len > 64 ? 64 : ser_len);
                        identity_problem(c, "subjectAltName: hardwareModuleName hwSerialNum %s is not the subject's ECID %s",
                                h ? h : "?", c->ecid[0] ? c->ecid : "(none)");
                        free(h);
                }
                free(hw);
                free(ser);
        }
        if (found != 1)
                identity_problem(c, "subjectAltName: %d hardwareModuleName otherNames, expected one", found);
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
                identity_problem(c, "extensions: invalid or duplicated extension");
        if (!(flags & EXFLAG_KUSAGE)) {
                identity_problem(c, "keyUsage: missing");
        } else {
                uint32_t ku = X509_get_key_usage(cert);
                idx = X509_get_ext_by_NID(cert, NID_key_usage, -1);
                if (idx < 0 || !X509_EXTENSION_get_critical(X509_get_ext(cert, idx)))
                        identity_problem(c, "keyUsage: not critical");
                if (ku != want)
                        identity_problem(c, "keyUsage: 0x%x, the profile has %s (0x%x)", ku,
                                ec ? "digitalSignature, keyAgreement" : "digitalSignature", want);
        }
        if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT))
                identity_problem(c, "extendedKeyUsage: clientAuth missing");
        /* CA:TRUE itself, not X509_check_ca(): that also needs keyCertSign. */
        if ((flags & EXFLAG_CA) || X509_check_ca(cert) != 0)
                identity_problem(c, "basicConstraints: a device certificate must not be a CA");
}

static void check_ids(X509 *cert, X509 *ca, struct identity_check *c)
{
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
        const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(ca);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        if (!ski)
                identity_problem(c, "subjectKeyIdentifier: missing");
        else if (!X509_pubkey_digest(cert, EVP_sha1(), md, &n) || (unsigned)ASN1_STRING_length(ski) != n ||
                 memcmp(ASN1_STRING_get0_data(ski), md, n))
                identity_problem(c, "subjectKeyIdentifier: not the SHA-1 of the subject key");
        if (!aki)
                identity_problem(c, "authorityKeyIdentifier: missing");
        else if (ca_ski && ASN1_OCTET_STRING_cmp(aki, ca_ski))
                identity_problem(c, "authorityKeyIdentifier: not the identity CA's key identifier");
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
                identity_problem(&c, "version: not an X.509 v3 certificate");
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        if (!bn || BN_is_negative(bn) || BN_is_zero(bn))
                identity_problem(&c, "serial: not a positive number");
        else if (BN_num_bytes(bn) != 16)
                identity_problem(&c, "serial: %d bytes, the profile has 16 random bytes", BN_num_bytes(bn));
        BN_free(bn);
        cert_serial_hex(cert, c.serial_hex);

        check_names(cert, &c);
        if (!na || ASN1_STRING_type(na) != V_ASN1_GENERALIZEDTIME || ASN1_STRING_length(na) != 15 ||
            memcmp(ASN1_STRING_get0_data(na), "99991231235959Z", 15))
                identity_problem(&c, "validity: notAfter is not 99991231235959Z (GeneralizedTime)");
        check_san(cert, hw_type_oid ? hw_type_oid : IDENTITY_HWTYPE_PLACEHOLDER, &c);
        check_usage(cert, &c);
        check_ids(cert, ca, &c);
        if (identity_key_check(ctx, "subject key", X509_get0_pubkey(cert)) < 0) {
                identity_problem(&c, "%s", fl_ctx_last_error(ctx));
                fl_err_clear(ctx);
        }
        c.profile_ok = c.n_problems == chain_problems;
        ERR_clear_error();
        *ret = c;
        return 0;
}
