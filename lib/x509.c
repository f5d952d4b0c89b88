/* x509.c — certificates, CSRs and PKCS#7 SignedData signed by a token key.
 *
 * OpenSSL builds every structure; only the signature itself comes from the
 * signer (x509_signer_sign). OpenSSL 3 has no setter for a certificate's
 * signature algorithm outside X509_sign*, which need a private key object,
 * so the two AlgorithmIdentifiers reached through X509_get0_tbs_sigalg /
 * X509_get0_signature are filled in place (they are members of the
 * certificate, not shared constants), the TBS part is re-encoded with
 * i2d_re_X509_tbs, signed, and the finished certificate is round-tripped
 * through DER and verified before anyone sees it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <p11-kit/pkcs11.h>

#include "sign.h"
#include "x509.h"

#define CERT_FILE_MAX (1024 * 1024)
#define NAME_MAX_LEN 4096
#define SIG_MAX 1024 /* RSA-8192 or P-521 r‖s fit */

struct x509_signer {
        fl_ctx *ctx;
        fl_token *tok; /* borrowed */
        token_obj key;
        EVP_PKEY *soft; /* software private key, or NULL */
        EVP_PKEY *pub;
        bool rsa;
        size_t ec_half; /* bytes of r (and s) from CKM_ECDSA */
};

/* ---- hashes ------------------------------------------------------------------ */

const EVP_MD *x509_hash_md(enum x509_hash h)
{
        switch (h) {
        case X509H_SHA384:
                return EVP_sha384();
        case X509H_SHA512:
                return EVP_sha512();
        default:
                return EVP_sha256();
        }
}

int x509_hash_from_name(const char *name, enum x509_hash *ret)
{
        if (!name)
                return -EINVAL;
        if (!strcmp(name, "sha256"))
                *ret = X509H_SHA256;
        else if (!strcmp(name, "sha384"))
                *ret = X509H_SHA384;
        else if (!strcmp(name, "sha512"))
                *ret = X509H_SHA512;
        else
                return -EINVAL;
        return 0;
}

/* DigestInfo headers (RFC 8017 §9.2, note 1): what CKM_RSA_PKCS must be
 * given in front of the hash for an EMSA-PKCS1-v1_5 signature. */
static const unsigned char di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const unsigned char di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const unsigned char di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

static const unsigned char *digest_info_prefix(enum x509_hash h)
{
        return h == X509H_SHA384 ? di_sha384 : h == X509H_SHA512 ? di_sha512 : di_sha256;
}

/* ---- signers ------------------------------------------------------------------ */

static int signer_init_pub(x509_signer *s)
{
        if (EVP_PKEY_is_a(s->pub, "RSA")) {
                s->rsa = true;
                return 0;
        }
        if (EVP_PKEY_is_a(s->pub, "EC")) {
                s->ec_half = ((size_t)EVP_PKEY_get_bits(s->pub) + 7) / 8;
                return 0;
        }
        return fl_err(s->ctx, -EINVAL, "signing key type %s is not supported for certificates (RSA or EC only)",
                      EVP_PKEY_get0_type_name(s->pub));
}

int x509_signer_token(fl_ctx *ctx, fl_token *tok, token_obj key, x509_signer **ret)
{
        x509_signer *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->ctx = ctx;
        s->tok = tok;
        s->key = key;
        r = token_get_pubkey(tok, key, &s->pub);
        if (r < 0)
                goto out;
        r = signer_init_pub(s);
        if (r < 0)
                goto out;
        *ret = s;
        s = NULL;
out:
        x509_signer_free(s);
        return r;
}

int x509_signer_soft(fl_ctx *ctx, EVP_PKEY *key, x509_signer **ret)
{
        x509_signer *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->ctx = ctx;
        if (!EVP_PKEY_up_ref(key)) {
                free(s);
                return -ENOMEM;
        }
        s->soft = key;
        /* The public half is used on its own (in certificates, for checks). */
        if (!EVP_PKEY_up_ref(key)) {
                r = -ENOMEM;
                goto out;
        }
        s->pub = key;
        r = signer_init_pub(s);
        if (r < 0)
                goto out;
        *ret = s;
        s = NULL;
out:
        x509_signer_free(s);
        return r;
}

void x509_signer_free(x509_signer *s)
{
        if (!s)
                return;
        EVP_PKEY_free(s->pub);
        EVP_PKEY_free(s->soft);
        free(s);
}

EVP_PKEY *x509_signer_pubkey(const x509_signer *s)
{
        return s->pub;
}

static int pctx_setup(EVP_PKEY_CTX *pctx, bool rsa, const EVP_MD *md)
{
        if (rsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
                return -1;
        if (EVP_PKEY_CTX_set_signature_md(pctx, md) <= 0)
                return -1;
        return 0;
}

static int sign_digest(x509_signer *s, enum x509_hash h, const unsigned char *dg, size_t dglen,
                       unsigned char **ret_sig, size_t *ret_len)
{
        const EVP_MD *md = x509_hash_md(h);
        unsigned char buf[SIG_MAX], in[19 + EVP_MAX_MD_SIZE];
        unsigned char *sig = NULL;
        size_t siglen = sizeof(buf);
        EVP_PKEY_CTX *pctx = NULL;
        int r;

        if (s->soft) {
                pctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->soft, NULL);
                if (!pctx || EVP_PKEY_sign_init(pctx) <= 0 || pctx_setup(pctx, s->rsa, md) < 0 ||
                    EVP_PKEY_sign(pctx, buf, &siglen, dg, dglen) <= 0) {
                        r = fl_err(s->ctx, -EIO, "software signature failed: %s", ossl_errstr());
                        goto out;
                }
        } else if (s->rsa) {
                memcpy(in, digest_info_prefix(h), 19);
                memcpy(in + 19, dg, dglen);
                r = token_sign(s->tok, s->key, CKM_RSA_PKCS, NULL, 0, in, 19 + dglen, buf, &siglen);
                if (r < 0)
                        goto out;
        } else {
                r = token_sign(s->tok, s->key, CKM_ECDSA, NULL, 0, dg, dglen, buf, &siglen);
                if (r < 0)
                        goto out;
                if (siglen != 2 * s->ec_half) {
                        r = fl_err(s->ctx, -EIO, "token returned a %zu-byte ECDSA signature, expected %zu", siglen,
                                   2 * s->ec_half);
                        goto out;
                }
                /* CKM_ECDSA gives r‖s; X.509 and CMS want the DER ECDSA-Sig-Value. */
                r = sign_ecdsa_raw_to_der(s->ctx, buf, siglen, &sig, &siglen);
                if (r < 0)
                        goto out;
        }
        /* Software and token RSA signatures are in buf as they are used. */
        if (!sig) {
                sig = malloc(siglen);
                if (!sig) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(sig, buf, siglen);
        }

        /* Check before use: a signature from the wrong key or a faulty token
         * must never reach a certificate or an .auth file. */
        EVP_PKEY_CTX_free(pctx);
        pctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->pub, NULL);
        if (!pctx || EVP_PKEY_verify_init(pctx) <= 0 || pctx_setup(pctx, s->rsa, md) < 0 ||
            EVP_PKEY_verify(pctx, sig, siglen, dg, dglen) != 1) {
                r = fl_err(s->ctx, -EBADMSG, "the signature made by the key does not verify with its public key (%s)",
                           ossl_errstr());
                goto out;
        }
        *ret_sig = sig;
        *ret_len = siglen;
        sig = NULL;
        r = 0;
out:
        free(sig);
        EVP_PKEY_CTX_free(pctx);
        return r;
}

int x509_signer_sign(x509_signer *s, enum x509_hash h, const void *data, size_t len, unsigned char **ret_sig,
                     size_t *ret_len)
{
        unsigned char dg[EVP_MAX_MD_SIZE];
        unsigned int dglen = 0;

        if (!EVP_Digest(data, len, dg, &dglen, x509_hash_md(h), NULL))
                return fl_err(s->ctx, -EIO, "digest failed: %s", ossl_errstr());
        return sign_digest(s, h, dg, dglen, ret_sig, ret_len);
}

/* The AlgorithmIdentifier for the signer's key and hash h: RSA carries NULL
 * parameters (RFC 4055), ECDSA none (RFC 5758). */
static int sig_algor_set(x509_signer *s, enum x509_hash h, X509_ALGOR *alg)
{
        int signid = NID_undef;
        int pknid = s->rsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;

        if (!OBJ_find_sigid_by_algs(&signid, EVP_MD_get_type(x509_hash_md(h)), pknid))
                return fl_err(s->ctx, -EINVAL, "no signature algorithm for this key and hash");
        if (!X509_ALGOR_set0(alg, OBJ_nid2obj(signid), s->rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
                return -ENOMEM;
        return 0;
}

static int bit_string_set(ASN1_BIT_STRING *bs, const unsigned char *sig, size_t len)
{
        if (!ASN1_BIT_STRING_set(bs, (unsigned char *)sig, (int)len))
                return -ENOMEM;
        /* A signature is whole bytes: say "0 unused bits" explicitly so the
         * encoder does not trim trailing zero bits. */
        bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
        bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        return 0;
}

/* ---- names ----------------------------------------------------------------------- */

int x509_name_parse(fl_ctx *ctx, const char *s, X509_NAME **ret)
{
        X509_NAME *name = NULL;
        char *buf = NULL;
        size_t n, i = 0, k = 0;
        int r = -EINVAL;

        if (!s || !*s)
                return fl_err(ctx, -EINVAL, "empty subject name (expected \"/O=…/CN=…\")");
        n = strlen(s);
        if (n > NAME_MAX_LEN)
                return fl_err(ctx, -EINVAL, "subject name longer than %d characters", NAME_MAX_LEN);
        if (s[0] != '/')
                return fl_err(ctx, -EINVAL, "subject name '%.64s' must start with '/' (\"/O=…/CN=…\")", s);
        name = X509_NAME_new();
        buf = malloc(n + 1);
        if (!name || !buf) {
                r = -ENOMEM;
                goto out;
        }
        i = 1;
        while (i <= n) {
                char *eq;
                int nid;

                /* Collect one component, undoing "\/" and "\\". */
                k = 0;
                while (i < n && s[i] != '/') {
                        if (s[i] == '\\') {
                                if (i + 1 >= n || (s[i + 1] != '/' && s[i + 1] != '\\')) {
                                        fl_err(ctx, r, "subject name: bad escape at offset %zu (only \\/ and \\\\)", i);
                                        goto out;
                                }
                                i++;
                        }
                        buf[k++] = s[i++];
                }
                buf[k] = 0;
                i++; /* skip the '/' (or step past the end) */
                if (k == 0) {
                        if (i > n) /* one trailing '/' is allowed ("/CN=x/", as openssl req writes it) */
                                break;
                        fl_err(ctx, r, "subject name: empty component at offset %zu", i - 1);
                        goto out;
                }
                eq = strchr(buf, '=');
                if (!eq || eq == buf) {
                        fl_err(ctx, r, "subject name: component '%.64s' is not TYPE=value", buf);
                        goto out;
                }
                *eq = 0;
                nid = OBJ_txt2nid(buf);
                if (nid == NID_undef) {
                        fl_err(ctx, r, "subject name: unknown attribute type '%.32s'", buf);
                        goto out;
                }
                if (!eq[1]) {
                        fl_err(ctx, r, "subject name: attribute '%.32s' has an empty value", buf);
                        goto out;
                }
                if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0)) {
                        ERR_clear_error();
                        fl_err(ctx, r, "subject name: value of '%.32s' is not acceptable (length or characters)",
                               buf);
                        goto out;
                }
        }
        if (X509_NAME_entry_count(name) == 0) {
                fl_err(ctx, r, "subject name '%.64s' has no attributes", s);
                goto out;
        }
        *ret = name;
        name = NULL;
        r = 0;
out:
        free(buf);
        X509_NAME_free(name);
        return r;
}

/* A memory BIO's contents as a malloc'd NUL-terminated string. */
static int bio_take(BIO *b, char **ret, size_t *ret_len)
{
        char *p, *s;
        long n = BIO_get_mem_data(b, &p);

        if (n < 0)
                return -ENOMEM;
        s = malloc((size_t)n + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, p, (size_t)n);
        s[n] = 0;
        *ret = s;
        *ret_len = (size_t)n;
        return 0;
}

char *x509_name_text(const X509_NAME *name)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *s = NULL;
        size_t n;

        if (!b)
                return NULL;
        if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0 || bio_take(b, &s, &n) < 0)
                s = NULL;
        BIO_free(b);
        return s;
}

/* DER of any ASN.1 object (certificate, request), OPENSSL_malloc'd. */
static int item_der(const void *obj, const ASN1_ITEM *it, unsigned char **ret, size_t *ret_len)
{
        unsigned char *der = NULL;
        int n = ASN1_item_i2d((const ASN1_VALUE *)obj, &der, it);

        if (n <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t)n;
        return 0;
}

/* The same as PEM text under the given label ("CERTIFICATE" …), malloc'd. */
static int item_pem(const void *obj, const ASN1_ITEM *it, const char *label, char **ret, size_t *ret_len)
{
        unsigned char *der = NULL;
        size_t n = 0;
        BIO *b = NULL;
        int r = item_der(obj, it, &der, &n);

        if (r < 0)
                return r;
        b = BIO_new(BIO_s_mem());
        r = b && PEM_write_bio(b, label, "", der, (long)n) > 0 ? bio_take(b, ret, ret_len) : -ENOMEM;
        BIO_free(b);
        OPENSSL_free(der);
        return r;
}

/* ---- certificate files ----------------------------------------------------------- */

static bool looks_pem(const unsigned char *data, size_t len)
{
        static const char tag[] = "-----BEGIN ";
        return len >= sizeof(tag) - 1 && memmem(data, len, tag, sizeof(tag) - 1) != NULL;
}

int x509_cert_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509 **ret)
{
        X509 *x = NULL, *extra = NULL;
        BIO *b = NULL;
        int r = -EINVAL;

        if (!data || len == 0 || len > CERT_FILE_MAX)
                return fl_err(ctx, -EINVAL, "%s: not a certificate (%s)", name, len > CERT_FILE_MAX ? "too large" : "empty");
        /* Errors queued by earlier, unrelated OpenSSL calls (a provider or
         * module load) must not be reported as this file's. */
        ERR_clear_error();
        if (looks_pem(data, len)) {
                static const char tag[] = "-----BEGIN ";
                const char *lab = memmem(data, len, tag, sizeof(tag) - 1);
                size_t room = len - (size_t)((const unsigned char *)lab - data) - (sizeof(tag) - 1);
                char what[40];
                size_t k = 0;

                /* A PEM block of another kind (a key, a CSR): name it. */
                lab += sizeof(tag) - 1;
                while (k < room && k < sizeof(what) - 1 && lab[k] != '-' && lab[k] >= ' ' && lab[k] < 0x7f) {
                        what[k] = lab[k];
                        k++;
                }
                what[k] = 0;
                if (!memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) &&
                    !memmem(data, len, "-----BEGIN X509 CERTIFICATE-----", 32) &&
                    !memmem(data, len, "-----BEGIN TRUSTED CERTIFICATE-----", 35))
                        return fl_err(ctx, -EINVAL, "%s: a PEM %s, not a certificate (give the X.509 certificate, "
                                      "PEM or DER)", name, what[0] ? what : "block");
                b = BIO_new_mem_buf(data, (int)len);
                if (!b)
                        return -ENOMEM;
                x = PEM_read_bio_X509(b, NULL, NULL, NULL);
                if (!x) {
                        fl_err(ctx, r, "%s: no PEM CERTIFICATE block could be read (%s)", name, ossl_errstr());
                        goto out;
                }
                extra = PEM_read_bio_X509(b, NULL, NULL, NULL);
                ERR_clear_error();
                if (extra) {
                        fl_err(ctx, r, "%s: holds more than one certificate; give exactly one", name);
                        goto out;
                }
        } else {
                const unsigned char *p = data;
                x = d2i_X509(NULL, &p, (long)len);
                if (!x) {
                        fl_err(ctx, r, "%s: not a certificate (neither PEM nor DER X.509: %s)", name, ossl_errstr());
                        goto out;
                }
                if (p != data + len) {
                        fl_err(ctx, r, "%s: %zu bytes of trailing data after the DER certificate", name,
                               (size_t)(data + len - p));
                        goto out;
                }
        }
        *ret = x;
        x = NULL;
        r = 0;
out:
        X509_free(x);
        X509_free(extra);
        BIO_free(b);
        return r;
}

int x509_cert_load(fl_ctx *ctx, const char *path, X509 **ret)
{
        unsigned char *data = NULL;
        size_t len = 0;
        int r = file_read(ctx, path, CERT_FILE_MAX, &data, &len);

        if (r < 0)
                return r;
        r = x509_cert_parse(ctx, path, data, len, ret);
        free(data);
        return r;
}

int x509_cert_der(X509 *cert, unsigned char **ret, size_t *ret_len)
{
        return item_der(cert, ASN1_ITEM_rptr(X509), ret, ret_len);
}

int x509_cert_pem(X509 *cert, char **ret, size_t *ret_len)
{
        return item_pem(cert, ASN1_ITEM_rptr(X509), PEM_STRING_X509, ret, ret_len);
}

int x509_cert_sha256(X509 *cert, char out[65])
{
        unsigned char *der = NULL, dg[32];
        size_t n;
        int r = x509_cert_der(cert, &der, &n);

        if (r < 0)
                return r;
        if (!EVP_Digest(der, n, dg, NULL, EVP_sha256(), NULL))
                r = -EIO;
        else
                hex_encode(dg, 32, out);
        OPENSSL_free(der);
        return r;
}

bool x509_cert_has_key(X509 *cert, EVP_PKEY *pkey)
{
        EVP_PKEY *k = X509_get0_pubkey(cert);
        return k && pkey && EVP_PKEY_eq(k, pkey) == 1;
}

/* ---- extensions -------------------------------------------------------------------- */

static bool ia5_ok(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
                        return false;
        return true;
}

static int san_build(fl_ctx *ctx, const struct x509_san *san, size_t n, GENERAL_NAMES **ret)
{
        GENERAL_NAMES *gens = GENERAL_NAMES_new();
        GENERAL_NAME *g = NULL;
        int r = -ENOMEM;

        if (!gens)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct x509_san *e = &san[i];
                g = GENERAL_NAME_new();
                if (!g)
                        goto out;
                if (e->type == X509_SAN_OTHERNAME) {
                        const unsigned char *p = e->der;
                        ASN1_OBJECT *oid = e->oid ? OBJ_txt2obj(e->oid, 1) : NULL;
                        ASN1_TYPE *val = NULL;
                        if (!oid) {
                                r = fl_err(ctx, -EINVAL, "subjectAltName otherName: '%s' is not a dotted OID",
                                           e->oid ? e->oid : "(none)");
                                goto out;
                        }
                        if (e->der && e->der_len)
                                val = d2i_ASN1_TYPE(NULL, &p, (long)e->der_len);
                        if (!val || p != e->der + e->der_len) {
                                ASN1_OBJECT_free(oid);
                                ASN1_TYPE_free(val);
                                ERR_clear_error();
                                r = fl_err(ctx, -EINVAL, "subjectAltName otherName %s: value is not one DER object",
                                           e->oid);
                                goto out;
                        }
                        if (!GENERAL_NAME_set0_othername(g, oid, val)) {
                                ASN1_OBJECT_free(oid);
                                ASN1_TYPE_free(val);
                                goto out;
                        }
                } else if (e->type == X509_SAN_IP) {
                        ASN1_OCTET_STRING *ip = e->value ? a2i_IPADDRESS(e->value) : NULL;
                        if (!ip) {
                                ERR_clear_error();
                                r = fl_err(ctx, -EINVAL, "subjectAltName IP '%s' is not an IP address",
                                           e->value ? e->value : "");
                                goto out;
                        }
                        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
                } else {
                        int type = e->type == X509_SAN_DNS ? GEN_DNS : e->type == X509_SAN_URI ? GEN_URI : GEN_EMAIL;
                        ASN1_IA5STRING *s;
                        if (!e->value || !ia5_ok(e->value)) {
                                r = fl_err(ctx, -EINVAL, "subjectAltName value '%.64s' must be printable ASCII",
                                           e->value ? e->value : "");
                                goto out;
                        }
                        s = ASN1_IA5STRING_new();
                        if (!s || !ASN1_STRING_set(s, e->value, -1)) {
                                ASN1_IA5STRING_free(s);
                                goto out;
                        }
                        GENERAL_NAME_set0_value(g, type, s);
                }
                if (!sk_GENERAL_NAME_push(gens, g))
                        goto out;
                g = NULL;
        }
        *ret = gens;
        gens = NULL;
        r = 0;
out:
        GENERAL_NAME_free(g);
        GENERAL_NAMES_free(gens);
        return r;
}

static int eku_build(fl_ctx *ctx, const char *list, EXTENDED_KEY_USAGE **ret)
{
        EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
        char *copy = strdup(list), *save = NULL, *tok;
        int r = -ENOMEM;

        if (!eku || !copy)
                goto out;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                ASN1_OBJECT *o;
                while (*tok == ' ')
                        tok++;
                o = OBJ_txt2obj(tok, 0);
                if (!o) {
                        ERR_clear_error();
                        r = fl_err(ctx, -EINVAL, "extendedKeyUsage: '%.64s' is not a known usage or OID", tok);
                        goto out;
                }
                if (!sk_ASN1_OBJECT_push(eku, o)) {
                        ASN1_OBJECT_free(o);
                        goto out;
                }
        }
        if (sk_ASN1_OBJECT_num(eku) == 0) {
                r = fl_err(ctx, -EINVAL, "extendedKeyUsage: empty list");
                goto out;
        }
        *ret = eku;
        eku = NULL;
        r = 0;
out:
        free(copy);
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        return r;
}

/* KU_* masks (x509v3.h) in the order of the KeyUsage BIT STRING. */
static const unsigned ku_bits[] = { KU_DIGITAL_SIGNATURE, KU_NON_REPUDIATION, KU_KEY_ENCIPHERMENT,
                                    KU_DATA_ENCIPHERMENT, KU_KEY_AGREEMENT,   KU_KEY_CERT_SIGN,
                                    KU_CRL_SIGN,          KU_ENCIPHER_ONLY,   KU_DECIPHER_ONLY };

/* keyUsage, extendedKeyUsage and subjectAltName, shared by certs and CSRs. */
static int exts_usage_san(fl_ctx *ctx, STACK_OF(X509_EXTENSION) **sk, unsigned key_usage, const char *eku_list,
                          const struct x509_san *san, size_t n_san, bool san_critical)
{
        ASN1_BIT_STRING *ku = NULL;
        EXTENDED_KEY_USAGE *eku = NULL;
        GENERAL_NAMES *gens = NULL;
        int r = 0;

        if (key_usage) {
                unsigned known = 0;
                for (size_t i = 0; i < FL_ARRAY_SIZE(ku_bits); i++)
                        known |= ku_bits[i];
                if (key_usage & ~known) {
                        r = fl_err(ctx, -EINVAL, "keyUsage: unknown bits 0x%x", key_usage & ~known);
                        goto out;
                }
                ku = ASN1_BIT_STRING_new();
                if (!ku) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < FL_ARRAY_SIZE(ku_bits); i++)
                        if ((key_usage & ku_bits[i]) && !ASN1_BIT_STRING_set_bit(ku, (int)i, 1)) {
                                r = -ENOMEM;
                                goto out;
                        }
                if (X509V3_add1_i2d(sk, NID_key_usage, ku, 1, X509V3_ADD_REPLACE) != 1) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (eku_list) {
                r = eku_build(ctx, eku_list, &eku);
                if (r < 0)
                        goto out;
                if (X509V3_add1_i2d(sk, NID_ext_key_usage, eku, 0, X509V3_ADD_REPLACE) != 1) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (n_san) {
                r = san_build(ctx, san, n_san, &gens);
                if (r < 0)
                        goto out;
                if (X509V3_add1_i2d(sk, NID_subject_alt_name, gens, san_critical, X509V3_ADD_REPLACE) != 1) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = 0;
out:
        ASN1_BIT_STRING_free(ku);
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        GENERAL_NAMES_free(gens);
        return r;
}

static int key_id(X509 *x, ASN1_OCTET_STRING **ret)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        ASN1_OCTET_STRING *o;

        /* RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits,
         * what OpenSSL's "hash" setting computes too. */
        if (!X509_pubkey_digest(x, EVP_sha1(), md, &n))
                return -EIO;
        o = ASN1_OCTET_STRING_new();
        if (!o || !ASN1_OCTET_STRING_set(o, md, (int)n)) {
                ASN1_OCTET_STRING_free(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

static int cert_exts(fl_ctx *ctx, const struct x509_cert_spec *spec, X509 *x, STACK_OF(X509_EXTENSION) **sk)
{
        BASIC_CONSTRAINTS *bc = NULL;
        ASN1_OCTET_STRING *ski = NULL;
        AUTHORITY_KEYID *akid = NULL;
        int r = -ENOMEM;

        if (spec->ca >= 0) {
                bc = BASIC_CONSTRAINTS_new();
                if (!bc)
                        goto out;
                bc->ca = spec->ca ? 0xff : 0;
                if (spec->ca && spec->path_len >= 0) {
                        bc->pathlen = ASN1_INTEGER_new();
                        if (!bc->pathlen || !ASN1_INTEGER_set(bc->pathlen, spec->path_len))
                                goto out;
                }
                if (X509V3_add1_i2d(sk, NID_basic_constraints, bc, spec->bc_critical, X509V3_ADD_REPLACE) != 1)
                        goto out;
        }
        r = exts_usage_san(ctx, sk, spec->key_usage, spec->ext_key_usage, spec->san, spec->n_san,
                           spec->san_critical);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (spec->ski) {
                if (key_id(x, &ski) < 0)
                        goto out;
                if (X509V3_add1_i2d(sk, NID_subject_key_identifier, ski, 0, X509V3_ADD_REPLACE) != 1)
                        goto out;
        }
        if (spec->aki) {
                akid = AUTHORITY_KEYID_new();
                if (!akid)
                        goto out;
                if (spec->issuer) {
                        const ASN1_OCTET_STRING *iski = X509_get0_subject_key_id(spec->issuer);
                        if (iski)
                                akid->keyid = ASN1_OCTET_STRING_dup(iski);
                        else if (key_id(spec->issuer, &akid->keyid) < 0)
                                goto out;
                } else if (ski) {
                        akid->keyid = ASN1_OCTET_STRING_dup(ski);
                } else if (key_id(x, &akid->keyid) < 0) {
                        goto out;
                }
                if (!akid->keyid)
                        goto out;
                if (X509V3_add1_i2d(sk, NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE) != 1)
                        goto out;
        }
        r = 0;
out:
        BASIC_CONSTRAINTS_free(bc);
        ASN1_OCTET_STRING_free(ski);
        AUTHORITY_KEYID_free(akid);
        return r;
}

/* ---- certificates ----------------------------------------------------------------- */

static int serial_set(fl_ctx *ctx, X509 *x, const unsigned char *serial, size_t len)
{
        unsigned char rnd[16];
        BIGNUM *bn = NULL;
        int r = -ENOMEM;

        if (!serial) {
                if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                        return fl_err(ctx, -EIO, "no random bytes for a serial number");
                /* Positive and exactly 16 bytes long: top bit clear, top byte non-zero. */
                rnd[0] = (unsigned char)((rnd[0] & 0x3f) | 0x40);
                serial = rnd;
                len = sizeof(rnd);
        } else {
                bool nonzero = false;
                if (len == 0 || len > 20)
                        return fl_err(ctx, -EINVAL, "serial number must be 1 to 20 bytes, not %zu", len);
                for (size_t i = 0; i < len; i++)
                        nonzero |= serial[i] != 0;
                if (!nonzero)
                        return fl_err(ctx, -EINVAL, "serial number must not be zero");
        }
        bn = BN_bin2bn(serial, (int)len, NULL);
        if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
                r = 0;
        BN_free(bn);
        return r;
}

static int cert_finish(fl_ctx *ctx, X509 *x, x509_signer *signer, enum x509_hash h, EVP_PKEY *verify_key,
                       X509 **ret)
{
        const ASN1_BIT_STRING *csig;
        const X509_ALGOR *calg;
        unsigned char *tbs = NULL, *sig = NULL, *der = NULL;
        const unsigned char *p;
        size_t siglen = 0;
        X509 *fin = NULL;
        int n, r;

        /* See the file comment: both members belong to x. */
        r = sig_algor_set(signer, h, (X509_ALGOR *)X509_get0_tbs_sigalg(x));
        if (r < 0)
                goto out;
        X509_get0_signature(&csig, &calg, x);
        r = sig_algor_set(signer, h, (X509_ALGOR *)calg);
        if (r < 0)
                goto out;
        n = i2d_re_X509_tbs(x, &tbs);
        if (n <= 0) {
                r = fl_err(ctx, -EIO, "cannot encode the certificate: %s", ossl_errstr());
                goto out;
        }
        r = x509_signer_sign(signer, h, tbs, (size_t)n, &sig, &siglen);
        if (r < 0)
                goto out;
        r = bit_string_set((ASN1_BIT_STRING *)csig, sig, siglen);
        if (r < 0)
                goto out;
        n = i2d_X509(x, &der);
        if (n <= 0) {
                r = fl_err(ctx, -EIO, "cannot encode the certificate: %s", ossl_errstr());
                goto out;
        }
        p = der;
        fin = d2i_X509(NULL, &p, n);
        if (!fin || X509_verify(fin, verify_key) != 1) {
                r = fl_err(ctx, -EIO, "the built certificate does not verify: %s", ossl_errstr());
                goto out;
        }
        *ret = fin;
        fin = NULL;
        r = 0;
out:
        OPENSSL_free(tbs);
        OPENSSL_free(der);
        free(sig);
        X509_free(fin);
        return r;
}

int x509_cert_build(fl_ctx *ctx, const struct x509_cert_spec *spec, x509_signer *signer, X509 **ret)
{
        X509 *x = NULL;
        X509_NAME *subject = NULL;
        STACK_OF(X509_EXTENSION) *exts = NULL;
        EVP_PKEY *subj_key = spec->pubkey ? spec->pubkey : signer->pub;
        EVP_PKEY *verify_key = spec->issuer ? X509_get0_pubkey(spec->issuer) : subj_key;
        time_t nb = spec->not_before ? spec->not_before : time(NULL), na = spec->not_after;
        int r = -ENOMEM;

        if (spec->issuer && !x509_cert_has_key(spec->issuer, signer->pub))
                return fl_err(ctx, -EINVAL, "the signing key is not the key of the issuer certificate");
        if (!spec->issuer && EVP_PKEY_eq(subj_key, signer->pub) != 1)
                return fl_err(ctx, -EINVAL, "a self-signed certificate must be signed by its own key");
        if (!na) {
                if (spec->days == 0)
                        return fl_err(ctx, -EINVAL, "certificate validity must be at least 1 day");
                na = nb + (time_t)spec->days * 86400;
        }
        if (na <= nb)
                return fl_err(ctx, -EINVAL, "certificate notAfter must be later than notBefore");

        if (spec->subject_name) {
                subject = X509_NAME_dup(spec->subject_name);
                if (!subject)
                        goto out;
        } else {
                r = x509_name_parse(ctx, spec->subject, &subject);
                if (r < 0)
                        goto out;
                r = -ENOMEM;
        }
        x = X509_new();
        if (!x || !X509_set_version(x, X509_VERSION_3))
                goto out;
        r = serial_set(ctx, x, spec->serial, spec->serial_len);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (!X509_set_subject_name(x, subject) ||
            !X509_set_issuer_name(x, spec->issuer ? X509_get_subject_name(spec->issuer) : subject))
                goto out;
        /* ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after,
         * as RFC 5280 §4.1.2.5 requires. */
        if (!ASN1_TIME_set(X509_getm_notBefore(x), nb) || !ASN1_TIME_set(X509_getm_notAfter(x), na)) {
                r = fl_err(ctx, -EINVAL, "certificate validity out of range");
                goto out;
        }
        if (!X509_set_pubkey(x, subj_key))
                goto out;
        r = cert_exts(ctx, spec, x, &exts);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
                if (!X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1))
                        goto out;
        for (int i = 0; spec->extra_exts && i < sk_X509_EXTENSION_num(spec->extra_exts); i++) {
                X509_EXTENSION *e = sk_X509_EXTENSION_value(spec->extra_exts, i);
                if (X509_get_ext_by_OBJ(x, X509_EXTENSION_get_object(e), -1) >= 0) {
                        r = fl_err(ctx, -EINVAL, "certificate extension given twice");
                        goto out;
                }
                if (!X509_add_ext(x, e, -1))
                        goto out;
        }
        r = cert_finish(ctx, x, signer, spec->hash, verify_key, ret);
out:
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_NAME_free(subject);
        X509_free(x);
        return r;
}

/* ---- CSRs --------------------------------------------------------------------------- */

int x509_csr_build(fl_ctx *ctx, const struct x509_csr_spec *spec, x509_signer *signer, X509_REQ **ret)
{
        X509_REQ *req = NULL, *fin = NULL;
        X509_NAME *subject = NULL;
        X509_ALGOR *alg = NULL;
        ASN1_BIT_STRING *bs = NULL;
        STACK_OF(X509_EXTENSION) *exts = NULL;
        unsigned char *tbs = NULL, *sig = NULL, *der = NULL;
        const unsigned char *p;
        size_t siglen = 0;
        int n, r;

        r = x509_name_parse(ctx, spec->subject, &subject);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        req = X509_REQ_new();
        if (!req || !X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(req, subject) ||
            !X509_REQ_set_pubkey(req, signer->pub))
                goto out;
        r = exts_usage_san(ctx, &exts, spec->key_usage, spec->ext_key_usage, spec->san, spec->n_san, false);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (exts && !X509_REQ_add_extensions(req, exts))
                goto out;
        alg = X509_ALGOR_new();
        if (!alg)
                goto out;
        r = sig_algor_set(signer, spec->hash, alg);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (!X509_REQ_set1_signature_algo(req, alg))
                goto out;
        n = i2d_re_X509_REQ_tbs(req, &tbs);
        if (n <= 0) {
                r = fl_err(ctx, -EIO, "cannot encode the request: %s", ossl_errstr());
                goto out;
        }
        r = x509_signer_sign(signer, spec->hash, tbs, (size_t)n, &sig, &siglen);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        bs = ASN1_BIT_STRING_new();
        if (!bs || bit_string_set(bs, sig, siglen) < 0)
                goto out;
        X509_REQ_set0_signature(req, bs);
        bs = NULL;
        n = i2d_X509_REQ(req, &der);
        if (n <= 0)
                goto out;
        p = der;
        fin = d2i_X509_REQ(NULL, &p, n);
        if (!fin || X509_REQ_verify(fin, signer->pub) != 1) {
                r = fl_err(ctx, -EIO, "the built request does not verify: %s", ossl_errstr());
                goto out;
        }
        *ret = fin;
        fin = NULL;
        r = 0;
out:
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        ASN1_BIT_STRING_free(bs);
        X509_ALGOR_free(alg);
        X509_NAME_free(subject);
        X509_REQ_free(req);
        X509_REQ_free(fin);
        OPENSSL_free(tbs);
        OPENSSL_free(der);
        free(sig);
        return r;
}

int x509_csr_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509_REQ **ret)
{
        X509_REQ *req = NULL;
        EVP_PKEY *pk;
        int r = -EINVAL;

        if (len == 0 || len > CERT_FILE_MAX)
                return fl_err(ctx, -EINVAL, "%s: not a certificate request (%s)", name, len ? "too large" : "empty");
        if (looks_pem(data, len)) {
                BIO *b = BIO_new_mem_buf(data, (int)len);
                if (!b)
                        return -ENOMEM;
                req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
                BIO_free(b);
        } else {
                const unsigned char *p = data;
                req = d2i_X509_REQ(NULL, &p, (long)len);
                if (req && p != data + len) {
                        fl_err(ctx, r, "%s: trailing data after the DER request", name);
                        goto out;
                }
        }
        if (!req) {
                fl_err(ctx, r, "%s: not a PKCS#10 certificate request (%s)", name, ossl_errstr());
                goto out;
        }
        pk = X509_REQ_get0_pubkey(req);
        if (!pk) {
                fl_err(ctx, r, "%s: the request's public key cannot be decoded (%s)", name, ossl_errstr());
                goto out;
        }
        if (X509_REQ_verify(req, pk) != 1) {
                r = fl_err(ctx, -EBADMSG, "%s: the request's signature does not verify with its own key", name);
                ERR_clear_error();
                goto out;
        }
        *ret = req;
        req = NULL;
        r = 0;
out:
        X509_REQ_free(req);
        return r;
}

int x509_csr_der(X509_REQ *req, unsigned char **ret, size_t *ret_len)
{
        return item_der(req, ASN1_ITEM_rptr(X509_REQ), ret, ret_len);
}

int x509_csr_pem(X509_REQ *req, char **ret, size_t *ret_len)
{
        return item_pem(req, ASN1_ITEM_rptr(X509_REQ), PEM_STRING_X509_REQ, ret, ret_len);
}

/* ---- PKCS#7 --------------------------------------------------------------------------- */

/* A SignedData with one SignerInfo for cert/signer, data content detached,
 * the certificate included — the shape PKCS7_sign() gives. */
static int p7_skeleton(fl_ctx *ctx, x509_signer *signer, X509 *cert, enum x509_hash h, PKCS7 **ret,
                       PKCS7_SIGNER_INFO **ret_si)
{
        PKCS7 *p7 = PKCS7_new();
        PKCS7_SIGNER_INFO *si;
        int r = -ENOMEM;

        if (!x509_cert_has_key(cert, signer->pub)) {
                PKCS7_free(p7);
                return fl_err(ctx, -EINVAL, "the signer certificate does not carry the signing key");
        }
        if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) || !PKCS7_content_new(p7, NID_pkcs7_data))
                goto out;
        /* The public key is enough here: OpenSSL only reads it to choose the
         * digestEncryptionAlgorithm (rsaEncryption / ecdsa-with-SHAn). */
        si = PKCS7_add_signature(p7, cert, signer->pub, x509_hash_md(h));
        if (!si || !PKCS7_add_certificate(p7, cert))
                goto out;
        if (!PKCS7_set_detached(p7, 1))
                goto out;
        *ret = p7;
        *ret_si = si;
        p7 = NULL;
        r = 0;
out:
        if (r < 0 && p7)
                fl_err(ctx, r, "cannot build the SignedData: %s", ossl_errstr());
        PKCS7_free(p7);
        return r;
}

int x509_p7_sign_bare(fl_ctx *ctx, x509_signer *signer, X509 *cert, const void *data, size_t len,
                      unsigned char **ret_der, size_t *ret_len)
{
        PKCS7 *p7 = NULL;
        PKCS7_SIGNER_INFO *si = NULL;
        unsigned char *sig = NULL, *der = NULL;
        size_t siglen = 0;
        int n, r;

        r = p7_skeleton(ctx, signer, cert, X509H_SHA256, &p7, &si);
        if (r < 0)
                goto out;
        /* No authenticated attributes: the signature is over the content's
         * digest itself (PKCS #7 §9.4), which keeps it deterministic. */
        r = x509_signer_sign(signer, X509H_SHA256, data, len, &sig, &siglen);
        if (r < 0)
                goto out;
        ASN1_STRING_set0(si->enc_digest, sig, (int)siglen);
        sig = NULL;
        n = i2d_PKCS7_SIGNED(p7->d.sign, &der);
        if (n <= 0) {
                r = fl_err(ctx, -EIO, "cannot encode the SignedData: %s", ossl_errstr());
                goto out;
        }
        *ret_der = der;
        *ret_len = (size_t)n;
        der = NULL;
        r = 0;
out:
        free(sig);
        OPENSSL_free(der);
        PKCS7_free(p7);
        return r;
}

int x509_p7_sign_detached(fl_ctx *ctx, x509_signer *signer, X509 *cert, enum x509_hash h, const void *data,
                          size_t len, time_t signing_time, unsigned char **ret_der, size_t *ret_len)
{
        PKCS7 *p7 = NULL;
        PKCS7_SIGNER_INFO *si = NULL;
        ASN1_TIME *t = NULL;
        unsigned char dg[EVP_MAX_MD_SIZE], *attrs = NULL, *sig = NULL, *der = NULL;
        unsigned int dglen = 0;
        size_t siglen = 0;
        int n, r;

        r = p7_skeleton(ctx, signer, cert, h, &p7, &si);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (!EVP_Digest(data, len, dg, &dglen, x509_hash_md(h), NULL))
                goto out;
        t = ASN1_TIME_set(NULL, signing_time ? signing_time : time(NULL));
        if (!t || !PKCS7_add_attrib_content_type(si, NULL) || !PKCS7_add0_attrib_signing_time(si, t))
                goto out;
        t = NULL;
        if (!PKCS7_add1_attrib_digest(si, dg, (int)dglen))
                goto out;
        /* The signature covers the DER SET OF the attributes; encoding with
         * PKCS7_ATTR_SIGN also sorts them in place, so the SignerInfo is
         * later written in the order that was signed. */
        n = ASN1_item_i2d((ASN1_VALUE *)si->auth_attr, &attrs, ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
        if (n <= 0)
                goto out;
        r = x509_signer_sign(signer, h, attrs, (size_t)n, &sig, &siglen);
        if (r < 0)
                goto out;
        ASN1_STRING_set0(si->enc_digest, sig, (int)siglen);
        sig = NULL;
        n = i2d_PKCS7(p7, &der);
        if (n <= 0) {
                r = fl_err(ctx, -EIO, "cannot encode the signature: %s", ossl_errstr());
                goto out;
        }
        *ret_der = der;
        *ret_len = (size_t)n;
        der = NULL;
        r = 0;
out:
        ASN1_TIME_free(t);
        OPENSSL_free(attrs);
        OPENSSL_free(der);
        free(sig);
        PKCS7_free(p7);
        return r;
}

static int p7_decode(fl_ctx *ctx, const char *name, const unsigned char *der, size_t der_len, bool bare,
                     PKCS7 **ret)
{
        const unsigned char *p = der;
        PKCS7 *p7 = NULL;
        PKCS7_SIGNED *sd = NULL;
        int r = -EINVAL;

        if (der_len == 0 || der_len > LONG_MAX)
                return fl_err(ctx, -EINVAL, "%s: empty signature", name);
        if (bare) {
                sd = d2i_PKCS7_SIGNED(NULL, &p, (long)der_len);
                if (!sd) {
                        fl_err(ctx, r, "%s: not a PKCS#7 SignedData (%s)", name, ossl_errstr());
                        goto out;
                }
                p7 = PKCS7_new();
                if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed)) {
                        r = -ENOMEM;
                        goto out;
                }
                PKCS7_SIGNED_free(p7->d.sign);
                p7->d.sign = sd;
                sd = NULL;
        } else {
                p7 = d2i_PKCS7(NULL, &p, (long)der_len);
                if (!p7 || !PKCS7_type_is_signed(p7)) {
                        fl_err(ctx, r, "%s: not a PKCS#7/CMS SignedData (%s)", name, ossl_errstr());
                        goto out;
                }
        }
        if (p != der + der_len) {
                fl_err(ctx, r, "%s: %zu bytes of trailing data after the signature", name, (size_t)(der + der_len - p));
                goto out;
        }
        if (!p7->d.sign || !p7->d.sign->contents) {
                fl_err(ctx, r, "%s: SignedData without contentInfo", name);
                goto out;
        }
        *ret = p7;
        p7 = NULL;
        r = 0;
out:
        PKCS7_SIGNED_free(sd);
        PKCS7_free(p7);
        return r;
}

int x509_p7_verify(fl_ctx *ctx, const char *name, const unsigned char *der, size_t der_len, bool bare,
                   const void *data, size_t len, X509 *signer)
{
        PKCS7 *p7 = NULL;
        STACK_OF(X509) *certs = NULL;
        X509_STORE *store = NULL;
        BIO *in = NULL, *mem = NULL;
        int r;

        r = p7_decode(ctx, name, der, der_len, bare, &p7);
        if (r < 0)
                return r;
        r = -ENOMEM;
        if (!PKCS7_get_detached(p7)) {
                r = fl_err(ctx, -EBADMSG, "%s: the signature carries its content; expected a detached one", name);
                goto out;
        }
        if (sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)) != 1) {
                r = fl_err(ctx, -EBADMSG, "%s: %d signers; expected exactly one", name,
                           sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)));
                goto out;
        }
        certs = sk_X509_new_null();
        store = X509_STORE_new();
        /* The data goes in through a buffering BIO: given a memory BIO
         * directly, OpenSSL 3.0's PKCS7_verify copies it into a BIO it then
         * leaks when the SignedData names an unknown digest. */
        mem = BIO_new_mem_buf(data, (int)len);
        in = BIO_new(BIO_f_buffer());
        if (!certs || !store || !mem || !in || !sk_X509_push(certs, signer))
                goto out;
        BIO_push(in, mem);
        mem = NULL;
        /* NOINTERN: the signer is looked up only among `certs`, so the
         * signature must be by this certificate's key; NOVERIFY: which
         * certificate to trust is the caller's decision (UEFI does not use
         * chains or validity periods either). */
        if (PKCS7_verify(p7, certs, store, in, NULL,
                         PKCS7_BINARY | PKCS7_NOINTERN | PKCS7_NOVERIFY | PKCS7_NOCHAIN) != 1) {
                r = fl_err(ctx, -EBADMSG, "%s: signature does not verify with %s: %s", name,
                           "the expected certificate", ossl_errstr());
                goto out;
        }
        r = 0;
out:
        ERR_clear_error();
        BIO_free_all(in);
        BIO_free(mem);
        X509_STORE_free(store);
        sk_X509_free(certs);
        PKCS7_free(p7);
        return r;
}

int x509_p7_certs(fl_ctx *ctx, const char *name, const unsigned char *der, size_t der_len, bool bare,
                  STACK_OF(X509) **ret)
{
        PKCS7 *p7 = NULL;
        STACK_OF(X509) *out = NULL, *in;
        int r = p7_decode(ctx, name, der, der_len, bare, &p7);

        if (r < 0)
                return r;
        r = -ENOMEM;
        out = sk_X509_new_null();
        if (!out)
                goto out;
        in = p7->d.sign->cert;
        for (int i = 0; i < sk_X509_num(in); i++) {
                X509 *x = sk_X509_value(in, i);
                if (!X509_up_ref(x))
                        goto out;
                if (!sk_X509_push(out, x)) {
                        X509_free(x);
                        goto out;
                }
        }
        *ret = out;
        out = NULL;
        r = 0;
out:
        sk_X509_pop_free(out, X509_free);
        PKCS7_free(p7);
        return r;
}
