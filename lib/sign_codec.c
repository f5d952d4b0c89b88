/* sign_codec.c — signature encodings: ECDSA raw<->DER, the tegrasign byte
 * order, raw/DER/PEM signature files (sign.h). */

#include "sign_int.h"

/* ---- encodings --------------------------------------------------------- */

int sign_ecdsa_raw_to_der(fl_ctx *ctx, const unsigned char *raw, size_t raw_len, unsigned char **ret,
                          size_t *ret_len)
{
        ECDSA_SIG *sig = NULL;
        BIGNUM *br = NULL, *bs = NULL;
        unsigned char *der = NULL, *p;
        int n, r;

        if (raw_len == 0 || raw_len % 2 || raw_len > 2 * 66) {
                r = fl_err(ctx, -EINVAL, "ECDSA r||s of %zu bytes is not two equal halves of a known curve",
                           raw_len);
                goto out;
        }
        sig = ECDSA_SIG_new();
        br = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
        bs = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
        if (!sig || !br || !bs || !ECDSA_SIG_set0(sig, br, bs)) {
                r = -ENOMEM;
                goto out;
        }
        br = bs = NULL; /* owned by sig */
        n = i2d_ECDSA_SIG(sig, NULL);
        if (n <= 0) {
                r = fl_err(ctx, -EINVAL, "cannot DER-encode the ECDSA signature: %s", ossl_errstr());
                goto out;
        }
        der = malloc((size_t)n);
        if (!der) {
                r = -ENOMEM;
                goto out;
        }
        p = der;
        i2d_ECDSA_SIG(sig, &p);
        *ret = der;
        *ret_len = (size_t)n;
        der = NULL;
        r = 0;
out:
        free(der);
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(sig);
        return r;
}

int sign_ecdsa_der_to_raw(fl_ctx *ctx, const unsigned char *der, size_t der_len, size_t field_len,
                          unsigned char **ret, size_t *ret_len)
{
        const unsigned char *p = der;
        const BIGNUM *br, *bs;
        ECDSA_SIG *sig = NULL;
        unsigned char *re = NULL, *q, *raw = NULL;
        int n, r;

        if (der_len == 0 || der_len > 1024 || field_len == 0 || field_len > 66) {
                r = fl_err(ctx, -EINVAL, "not a DER ECDSA signature (%zu bytes)", der_len);
                goto out;
        }
        sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (!sig || p != der + der_len) {
                ERR_clear_error();
                r = fl_err(ctx, -EINVAL, "not a DER ECDSA signature (%zu bytes)", der_len);
                goto out;
        }
        /* Strict DER: BER variants (long-form lengths, padding) would give
         * the same (r, s) from different bytes. */
        n = i2d_ECDSA_SIG(sig, NULL);
        if (n != (int)der_len || !(re = malloc((size_t)n))) {
                r = fl_err(ctx, -EINVAL, "ECDSA signature is not in canonical DER");
                goto out;
        }
        q = re;
        i2d_ECDSA_SIG(sig, &q);
        if (memcmp(re, der, der_len)) {
                r = fl_err(ctx, -EINVAL, "ECDSA signature is not in canonical DER");
                goto out;
        }
        ECDSA_SIG_get0(sig, &br, &bs);
        if (BN_is_negative(br) || BN_is_negative(bs) || (size_t)BN_num_bytes(br) > field_len ||
            (size_t)BN_num_bytes(bs) > field_len) {
                r = fl_err(ctx, -EINVAL, "ECDSA signature values do not fit the curve (%zu-byte fields)", field_len);
                goto out;
        }
        raw = malloc(2 * field_len);
        if (!raw) {
                r = -ENOMEM;
                goto out;
        }
        BN_bn2binpad(br, raw, (int)field_len);
        BN_bn2binpad(bs, raw + field_len, (int)field_len);
        *ret = raw;
        *ret_len = 2 * field_len;
        raw = NULL;
        r = 0;
out:
        free(raw);
        free(re);
        ECDSA_SIG_free(sig);
        return r;
}

int sign_raw_len(fl_ctx *ctx, enum sign_scheme s, EVP_PKEY *pkey, size_t *ret)
{
        const struct scheme_info *si = scheme_get(s);

        if (!si)
                return fl_err(ctx, -EINVAL, "no signing scheme");
        switch (si->kind) {
        case K_HMAC:
                *ret = 32;
                return 0;
        case K_CMAC:
                *ret = 16;
                return 0;
        case K_EDDSA:
                *ret = 64;
                return 0;
        case K_RSA_PSS:
        case K_RSA_PKCS1:
                if (!pkey || EVP_PKEY_get_size(pkey) <= 0)
                        break;
                *ret = (size_t)EVP_PKEY_get_size(pkey);
                return 0;
        case K_ECDSA:
                if (!pkey || EVP_PKEY_get_bits(pkey) <= 0)
                        break;
                *ret = 2 * (((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8);
                return 0;
        }
        return fl_err(ctx, -EINVAL, "%s: no public key to size the signature", si->name);
}

static void reverse(unsigned char *p, size_t n)
{
        for (size_t i = 0; i < n / 2; i++) {
                unsigned char t = p[i];
                p[i] = p[n - 1 - i];
                p[n - 1 - i] = t;
        }
}

static unsigned char *memdup_(const void *p, size_t n)
{
        unsigned char *d = malloc(n ? n : 1);
        if (d && n)
                memcpy(d, p, n);
        return d;
}

int sign_encode(fl_ctx *ctx, enum sign_scheme s, enum sign_format f, const unsigned char *raw,
                size_t raw_len, unsigned char **ret, size_t *ret_len)
{
        const struct scheme_info *si = scheme_get(s);
        unsigned char *der = NULL, *outb = NULL;
        size_t der_len = 0, out_len = 0;
        BIO *bio = NULL;
        int r;

        if (f == SIGFMT_AUTO)
                f = SIGFMT_RAW;
        r = sign_format_check(ctx, s, f);
        if (r < 0)
                goto out;
        if (f == SIGFMT_DER || f == SIGFMT_PEM) {
                if (si->kind == K_ECDSA) {
                        r = sign_ecdsa_raw_to_der(ctx, raw, raw_len, &der, &der_len);
                        if (r < 0)
                                goto out;
                } else {
                        /* RSA and Ed25519 signatures are octet strings:
                         * X.509/CMS carry them as they are. */
                        der = memdup_(raw, raw_len);
                        der_len = raw_len;
                        if (!der) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
        switch (f) {
        case SIGFMT_DER:
                outb = der;
                out_len = der_len;
                der = NULL;
                break;
        case SIGFMT_PEM: {
                char *mem;
                long n;
                bio = BIO_new(BIO_s_mem());
                if (!bio || !PEM_write_bio(bio, PEM_LABEL, "", der, (long)der_len)) {
                        r = fl_err(ctx, -ENOMEM, "cannot write PEM: %s", ossl_errstr());
                        goto out;
                }
                n = BIO_get_mem_data(bio, &mem);
                outb = memdup_(mem, (size_t)n);
                out_len = (size_t)n;
                break;
        }
        case SIGFMT_TEGRA:
                outb = memdup_(raw, raw_len);
                out_len = raw_len;
                /* jetson-fuses.md §4: tegrasign_v3 stores the RSA-PSS
                 * signature byte-reversed; Ed25519 and MACs as they are. */
                if (outb && si->kind == K_RSA_PSS)
                        reverse(outb, out_len);
                break;
        default:
                outb = memdup_(raw, raw_len);
                out_len = raw_len;
                break;
        }
        if (!outb) {
                r = -ENOMEM;
                goto out;
        }
        *ret = outb;
        *ret_len = out_len;
        r = 0;
out:
        BIO_free(bio);
        free(der);
        return r;
}

static int decode_pem(fl_ctx *ctx, const char *name, const unsigned char *in, size_t in_len,
                      unsigned char **ret, size_t *ret_len)
{
        BIO *bio = BIO_new_mem_buf(in, (int)in_len);
        char *pname = NULL, *header = NULL;
        unsigned char *data = NULL;
        long n = 0;
        int r;

        if (!bio) {
                r = -ENOMEM;
                goto out;
        }
        if (!PEM_read_bio(bio, &pname, &header, &data, &n) || n <= 0) {
                ERR_clear_error();
                r = fl_err(ctx, -EINVAL, "%s: not a PEM signature", name);
                goto out;
        }
        if (strcmp(pname, PEM_LABEL)) {
                r = fl_err(ctx, -EINVAL, "%s: PEM label is '%s', expected '%s'", name, pname, PEM_LABEL);
                goto out;
        }
        *ret = memdup_(data, (size_t)n);
        if (!*ret) {
                r = -ENOMEM;
                goto out;
        }
        *ret_len = (size_t)n;
        r = 0;
out:
        OPENSSL_free(pname);
        OPENSSL_free(header);
        OPENSSL_free(data);
        BIO_free(bio);
        return r;
}

int sign_decode(fl_ctx *ctx, const char *name, enum sign_scheme s, enum sign_format f, size_t raw_len,
                const unsigned char *in, size_t in_len, unsigned char **ret_raw, size_t *ret_raw_len)
{
        const struct scheme_info *si = scheme_get(s);
        unsigned char *pem = NULL, *raw = NULL;
        size_t pem_len = 0, out_len = 0;
        int r;

        if (!si) {
                r = fl_err(ctx, -EINVAL, "no signing scheme");
                goto out;
        }
        if (f == SIGFMT_AUTO) {
                if (in_len >= 11 && !memcmp(in, "-----BEGIN ", 11))
                        f = SIGFMT_PEM;
                else if (si->kind == K_ECDSA && in_len != raw_len)
                        f = SIGFMT_DER;
                else
                        f = SIGFMT_RAW;
        }
        r = sign_format_check(ctx, s, f);
        if (r < 0)
                goto out;
        if (f == SIGFMT_PEM) {
                r = decode_pem(ctx, name, in, in_len, &pem, &pem_len);
                if (r < 0)
                        goto out;
                in = pem;
                in_len = pem_len;
                f = SIGFMT_DER;
        }
        if (f == SIGFMT_DER && si->kind == K_ECDSA) {
                r = sign_ecdsa_der_to_raw(ctx, in, in_len, raw_len / 2, &raw, &out_len);
                if (r < 0) {
                        r = fl_err(ctx, r, "%s: %s", name, fl_ctx_last_error(ctx));
                        goto out;
                }
        } else {
                if (in_len != raw_len) {
                        r = fl_err(ctx, -EINVAL, "%s: %zu bytes; %s signatures with this key are %zu bytes", name,
                                   in_len, si->name, raw_len);
                        goto out;
                }
                raw = memdup_(in, in_len);
                out_len = in_len;
                if (!raw) {
                        r = -ENOMEM;
                        goto out;
                }
                if (f == SIGFMT_TEGRA && si->kind == K_RSA_PSS)
                        reverse(raw, out_len);
        }
        *ret_raw = raw;
        *ret_raw_len = out_len;
        raw = NULL;
        r = 0;
out:
        free(raw);
        free(pem);
        return r;
}
