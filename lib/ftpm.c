/* ftpm.c — fTPM provisioning host side: Device_SN, the KBKDF-HMAC / HKDF
 * chain to the EPS, and the Silicon-ID key from an AES-256 CTR_DRBG (SP
 * 800-90A, no derivation function), written from the facts in
 * ekb-ftpm-luks.md §4.3 and checked against vector set B. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>

#include "ftpm.h"

int ftpm_device_sn(fl_ctx *ctx, uint64_t oem_id, uint64_t sn, unsigned char out[FTPM_SN_LEN])
{
        if (oem_id > 0xffff)
                return fl_err(ctx, -EINVAL, "OEM_ID 0x%llx: 16 bits at most", (unsigned long long)oem_id);
        if (sn >> 63)
                return fl_err(ctx, -EINVAL, "SN 0x%llx: below 2^63 (NVIDIA's kdk_gen limit)", (unsigned long long)sn);
        out[0] = (unsigned char)(oem_id >> 8);
        out[1] = (unsigned char)oem_id;
        for (int i = 0; i < 8; i++)
                out[2 + i] = (unsigned char)(sn >> (56 - 8 * i));
        return 0;
}

int ftpm_sn_parse(fl_ctx *ctx, const char *s, unsigned char out[FTPM_SN_LEN])
{
        char hex[21];
        size_t n = 0;

        for (const char *p = s; *p; p++) {
                if (*p == '-' && p - s == 4 && n == 4)
                        continue;
                if (!isxdigit((unsigned char)*p) || n == 20)
                        return fl_err(ctx, -EINVAL, "fTPM SN '%s': 20 hex digits (OEM_ID ‖ SN), or XXXX-YYYYYYYYYYYYYYYY",
                                      s);
                hex[n++] = (char)tolower((unsigned char)*p);
        }
        hex[n] = 0;
        if (n != 20 || hex_decode(hex, out, FTPM_SN_LEN, NULL) < 0)
                return fl_err(ctx, -EINVAL, "fTPM SN '%s': 20 hex digits (OEM_ID ‖ SN), or XXXX-YYYYYYYYYYYYYYYY", s);
        if (out[2] & 0x80)
                return fl_err(ctx, -EINVAL, "fTPM SN '%s': the SN part must be below 2^63", s);
        return 0;
}

static int hmac256(const unsigned char *key, size_t key_len, const unsigned char *msg, size_t len,
                   unsigned char out[32])
{
        unsigned int n = 0;

        if (!HMAC(EVP_sha256(), key, (int)key_len, msg, len, out, &n) || n != 32)
                return -EIO;
        return 0;
}

int ftpm_kbkdf(const unsigned char *key, size_t key_len, const char *label, const unsigned char *context,
               size_t context_len, unsigned char out[32])
{
        static const unsigned char zero = 0;
        unsigned char msg[128];
        size_t ll = strlen(label), n = 0;
        int r;

        if (!context_len) {
                context = &zero;
                context_len = 1;
        }
        if (4 + ll + 1 + context_len + 4 > sizeof(msg))
                return -EINVAL;
        memcpy(msg, "\x00\x00\x00\x01", 4);
        n = 4;
        memcpy(msg + n, label, ll);
        n += ll;
        msg[n++] = 0;
        memcpy(msg + n, context, context_len);
        n += context_len;
        memcpy(msg + n, "\x00\x00\x01\x00", 4); /* L = 256 bits */
        n += 4;
        r = hmac256(key, key_len, msg, n, out);
        OPENSSL_cleanse(msg, sizeof(msg));
        return r;
}

static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt, size_t salt_len,
                const unsigned char *info, size_t info_len, unsigned char *out, size_t out_len)
{
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM p[5];
        int r = -EIO;

        p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
        p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
        p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
        p[4] = OSSL_PARAM_construct_end();
        if (c && EVP_KDF_derive(c, out, out_len, p) == 1)
                r = 0;
        EVP_KDF_CTX_free(c);
        EVP_KDF_free(kdf);
        return r;
}

/* ---- AES-256 CTR_DRBG without a derivation function (SP 800-90A 10.2.1) --- */

struct drbg {
        unsigned char key[32], v[16];
};

static int aes256_block(const unsigned char key[32], const unsigned char in[16], unsigned char out[16])
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int n = 0, ok;

        if (!c)
                return -ENOMEM;
        ok = EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, key, NULL) == 1 && EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
             EVP_EncryptUpdate(c, out, &n, in, 16) == 1 && n == 16;
        EVP_CIPHER_CTX_free(c);
        return ok ? 0 : -EIO;
}

static void v_inc(unsigned char v[16])
{
        for (int i = 15; i >= 0; i--)
                if (++v[i])
                        break;
}

static int drbg_update(struct drbg *d, const unsigned char data[48])
{
        unsigned char temp[48];
        int r = 0;

        for (int i = 0; i < 3 && r == 0; i++) {
                v_inc(d->v);
                r = aes256_block(d->key, d->v, temp + 16 * i);
        }
        for (int i = 0; i < 48; i++)
                temp[i] ^= data ? data[i] : 0;
        memcpy(d->key, temp, 32);
        memcpy(d->v, temp + 32, 16);
        OPENSSL_cleanse(temp, sizeof(temp));
        return r;
}

static int drbg_generate(struct drbg *d, unsigned char *out, size_t len)
{
        unsigned char blk[16];
        int r = 0;

        for (size_t off = 0; off < len && r == 0; off += 16) {
                v_inc(d->v);
                r = aes256_block(d->key, d->v, blk);
                memcpy(out + off, blk, len - off < 16 ? len - off : 16);
        }
        OPENSSL_cleanse(blk, sizeof(blk));
        return r ? r : drbg_update(d, NULL);
}

/* The Silicon-ID P-256 key: seed = HMAC(KBKDF(Silicon_ID, "Asym", 00),
 * "Asym"); DRBG seeded with seed ‖ 16 zero bytes; candidates d = the first 32
 * of 64 generated bytes, accepted when 0 < d < n (≤ 100 tries). */
static int sid_key(const unsigned char silicon_id[32], unsigned char priv[32], unsigned char pub[64])
{
        unsigned char origin[32], seed[48] = { 0 }, out[64];
        struct drbg d = { { 0 }, { 0 } };
        EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        BIGNUM *bn = BN_secure_new(), *x = BN_new(), *y = BN_new();
        EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
        int r = -EIO;

        if (!g || !bn || !x || !y || !pt)
                goto out;
        if (ftpm_kbkdf(silicon_id, 32, "Asym", NULL, 0, origin) < 0 ||
            hmac256(origin, 32, (const unsigned char *)"Asym", 4, seed) < 0 || drbg_update(&d, seed) < 0)
                goto out;
        for (int tries = 0; tries < 100; tries++) {
                if (drbg_generate(&d, out, sizeof(out)) < 0 || !BN_bin2bn(out, 32, bn))
                        goto out;
                if (!BN_is_zero(bn) && BN_cmp(bn, EC_GROUP_get0_order(g)) < 0) {
                        if (EC_POINT_mul(g, pt, bn, NULL, NULL, NULL) != 1 ||
                            EC_POINT_get_affine_coordinates(g, pt, x, y, NULL) != 1 || BN_bn2binpad(x, pub, 32) != 32 ||
                            BN_bn2binpad(y, pub + 32, 32) != 32)
                                goto out;
                        memcpy(priv, out, 32);
                        r = 0;
                        goto out;
                }
        }
out:
        OPENSSL_cleanse(origin, sizeof(origin));
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(out, sizeof(out));
        OPENSSL_cleanse(&d, sizeof(d));
        BN_clear_free(bn);
        BN_free(x);
        BN_free(y);
        EC_POINT_free(pt);
        EC_GROUP_free(g);
        return r;
}

void ftpm_chain_clear(struct ftpm_chain *c)
{
        secret_wipe(&c->kdk_nrk);
        secret_wipe(&c->silicon_id);
        secret_wipe(&c->ftpm_seed);
        secret_wipe(&c->root_seed);
        secret_wipe(&c->eps);
        secret_wipe(&c->sid_priv);
        memset(c, 0, sizeof(*c));
}

int ftpm_chain_derive(fl_ctx *ctx, const struct fl_secret *kdk0, const unsigned char sn[FTPM_SN_LEN],
                      const unsigned char eps_seed[32], struct ftpm_chain *ret)
{
        struct ftpm_chain c = { 0 };
        unsigned char swapped[FTPM_SN_LEN], origin[32];
        static const unsigned char zero = 0;
        int r;

        if (kdk0->len != 32)
                return fl_err(ctx, -EINVAL, "KDK0 must be 32 bytes");
        if ((r = secret_alloc(&c.kdk_nrk, 32)) < 0 || (r = secret_alloc(&c.silicon_id, 32)) < 0 ||
            (r = secret_alloc(&c.ftpm_seed, 32)) < 0 || (r = secret_alloc(&c.root_seed, 64)) < 0 ||
            (r = secret_alloc(&c.eps, 64)) < 0 || (r = secret_alloc(&c.sid_priv, 32)) < 0)
                goto out;
        /* Only for the Silicon_ID KDF the OEM_ID bytes are swapped (PSC-BL1
         * reads them little-endian). */
        memcpy(swapped, sn, FTPM_SN_LEN);
        swapped[0] = sn[1];
        swapped[1] = sn[0];
        r = -EIO;
        if (ftpm_kbkdf(kdk0->data, 32, "NRK", NULL, 0, c.kdk_nrk.data) < 0 ||
            ftpm_kbkdf(c.kdk_nrk.data, 32, "ECA_SEED", swapped, FTPM_SN_LEN, c.silicon_id.data) < 0 ||
            ftpm_kbkdf(c.silicon_id.data, 32, "fTPM", NULL, 0, origin) < 0 ||
            hmac256(origin, 32, (const unsigned char *)"fTPM", 4, c.ftpm_seed.data) < 0 ||
            hkdf(c.ftpm_seed.data, 32, &zero, 1, (const unsigned char *)"Root_Seed", 9, c.root_seed.data, 64) < 0 ||
            hkdf(c.root_seed.data, 64, eps_seed, 32, sn, FTPM_SN_LEN, c.eps.data, 64) < 0 ||
            sid_key(c.silicon_id.data, c.sid_priv.data, c.sid_pub) < 0) {
                r = fl_err(ctx, -EIO, "fTPM derivation failed: %s", ossl_errstr());
                goto out;
        }
        *ret = c;
        memset(&c, 0, sizeof(c));
        r = 0;
out:
        OPENSSL_cleanse(origin, sizeof(origin));
        ftpm_chain_clear(&c);
        return r;
}
