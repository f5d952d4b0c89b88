/* ftpm.c — fTPM provisioning host side: Device_SN, the KBKDF-HMAC / HKDF
 * chain to the EPS, and the Silicon-ID key from an AES-256 CTR_DRBG (SP
 * 800-90A, no derivation function), written from the facts in
 * ekb-ftpm-luks.md §4.3 and checked against vector set B. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "chip.h"
#include "ftpm.h"
#include "fuse_plan.h"
#include "fuse_xml.h"
#include "identity.h"
#include "keygen.h"
#include "keyset.h"
#include "p11.h"
#include "signer.h"
#include "x509.h"

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

/* ---- EK key pairs: TPM2_CreatePrimary in the endorsement hierarchy ---------- */

/* The TPM reference's derivation function (its DfStart/DfUpdate/DfEnd, not
 * SP 800-90A's Block_Cipher_df: the three chaining values are the output,
 * the XOR accumulates across them, and the length header overwrites the
 * first chaining value's first 8 bytes while the buffer starts 4 bytes in).
 * Reproduced from its documented behaviour; checked against set B. */
struct ms_df {
        unsigned char iv[3][16], buf[16];
        size_t contents;
};

static int ms_df_compute(struct ms_df *d)
{
        static const unsigned char key[32] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                               16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
        unsigned char t[16] = { 0 };
        int r = 0;

        for (int i = 0; i < 3 && r == 0; i++) {
                for (int j = 0; j < 16; j++)
                        t[j] ^= d->iv[i][j] ^ d->buf[j];
                r = aes256_block(key, t, d->iv[i]);
        }
        memset(d->buf, 0, sizeof(d->buf));
        d->contents = 0;
        return r;
}

static int ms_df_update(struct ms_df *d, const unsigned char *p, size_t n)
{
        while (n) {
                size_t k = 16 - d->contents < n ? 16 - d->contents : n;
                memcpy(d->buf + d->contents, p, k);
                d->contents += k;
                p += k;
                n -= k;
                if (d->contents == 16 && ms_df_compute(d) < 0)
                        return -EIO;
        }
        return 0;
}

/* seed (48 bytes) = DF(EPS ‖ "Primary Object Creation\0" ‖ Name). */
static int ek_drbg_seed(const unsigned char *eps, size_t eps_len, const unsigned char *name, size_t name_len,
                        unsigned char out[48])
{
        static const char purpose[] = "Primary Object Creation"; /* the TPM2B includes the NUL */
        struct ms_df d;
        size_t total = eps_len + sizeof(purpose) + name_len;
        int r;

        memset(&d, 0, sizeof(d));
        for (int i = 0; i < 3; i++)
                d.iv[i][3] = (unsigned char)i;
        r = ms_df_compute(&d);
        for (int i = 0; i < 4; i++)
                d.iv[0][i] = (unsigned char)(total >> (24 - 8 * i));
        d.iv[0][4] = d.iv[0][5] = d.iv[0][6] = 0;
        d.iv[0][7] = 48;
        d.contents = 4;
        if (r == 0)
                r = ms_df_update(&d, eps, eps_len);
        if (r == 0)
                r = ms_df_update(&d, (const unsigned char *)purpose, sizeof(purpose));
        if (r == 0)
                r = ms_df_update(&d, name, name_len);
        if (r == 0) {
                d.buf[d.contents++] = 0x80;
                r = ms_df_compute(&d);
        }
        if (r == 0)
                for (int i = 0; i < 3; i++)
                        memcpy(out + 16 * i, d.iv[i], 16);
        OPENSSL_cleanse(&d, sizeof(d));
        return r;
}

int ftpm_ek_ec_derive(const struct fl_secret *eps, unsigned char priv[32], unsigned char pub[64])
{
        /* Name of the TCG default EK template (ECC NIST P-256, low range). */
        static const unsigned char name[34] = { 0x00, 0x0b, 0x0f, 0x12, 0x77, 0xa2, 0xf3, 0xf3, 0x82, 0xe7, 0xf7, 0x5d,
                                                0xb4, 0x66, 0xfa, 0xc2, 0x34, 0x18, 0x2a, 0x8d, 0x62, 0xf9, 0x7d, 0xfb,
                                                0xaa, 0xe7, 0xb0, 0x6f, 0xdf, 0x52, 0xbd, 0xa5, 0x14, 0x67 };
        unsigned char seed[48], c[40];
        struct drbg d = { { 0 }, { 0 } };
        EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        BIGNUM *bc = BN_secure_new(), *nm1 = BN_new(), *x = BN_new(), *y = BN_new();
        BN_CTX *bctx = BN_CTX_secure_new();
        EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
        int r = -EIO;

        if (eps->len != 64 || !g || !bc || !nm1 || !x || !y || !bctx || !pt)
                goto out;
        /* d = (c mod (n − 1)) + 1 with c 64 bits longer than n (FIPS 186-4 B.4.1). */
        if (ek_drbg_seed(eps->data, eps->len, name, sizeof(name), seed) < 0 || drbg_update(&d, seed) < 0 ||
            drbg_generate(&d, c, sizeof(c)) < 0 || !BN_bin2bn(c, sizeof(c), bc) ||
            !BN_sub(nm1, EC_GROUP_get0_order(g), BN_value_one()) || !BN_nnmod(bc, bc, nm1, bctx) ||
            !BN_add_word(bc, 1) || EC_POINT_mul(g, pt, bc, NULL, NULL, bctx) != 1 ||
            EC_POINT_get_affine_coordinates(g, pt, x, y, bctx) != 1 || BN_bn2binpad(bc, priv, 32) != 32 ||
            BN_bn2binpad(x, pub, 32) != 32 || BN_bn2binpad(y, pub + 32, 32) != 32)
                goto out;
        r = 0;
out:
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(c, sizeof(c));
        OPENSSL_cleanse(&d, sizeof(d));
        BN_clear_free(bc);
        BN_free(nm1);
        BN_free(x);
        BN_free(y);
        BN_CTX_free(bctx);
        EC_POINT_free(pt);
        EC_GROUP_free(g);
        return r;
}

/* ---- the RSA EK: the TPM reference's primary RSA key generation ------------ *
 *
 * Facts from the TPM 2.0 reference implementation (CryptRsaGenerateKey,
 * BnGeneratePrimeForRSA, RsaAdjustPrimeCandidate, PrimeSelectWithSieve,
 * PrimeSieve, MillerRabin, MillerRabinRounds; its current form, where prime
 * candidates are read big-endian so that every CPU makes the same key), as
 * NVIDIA's host tool reproduces them; every step below draws on the one DRBG
 * seeded like the EC EK's, so one byte more or less changes the key:
 *   - a candidate: 128 DRBG bytes, big-endian; its top 32 bits x become
 *     0xB5050000 + (x >> 16) * 0x4AFB + ((x & 0xFFFF) * 0x4AFB >> 16)
 *     (mod 2^32: at least √2/2 of the range), and it is made odd;
 *   - "first" = the candidate's low 32 bits | 0x80000000;
 *   - the sieve base B = candidate − a, a = candidate mod 105, plus 105 when a
 *     is odd (B odd, B ≡ 0 mod 105); a field of 2048 bytes whose bit j stands
 *     for B + 2j, cleared where an odd prime ≤ 38891 divides it (for a
 *     1024-bit prime the reference sieves with its first 4096 odd primes up
 *     to that marker value);
 *   - while ones remain: take the ((first mod ones) + 1)-th set bit j (bits
 *     counted from bit 0 of byte 0); w = B + 2j; accept when w mod e ∉ {0, 1}
 *     and Miller-Rabin passes, else clear the bit; an empty field means a new
 *     candidate;
 *   - Miller-Rabin (FIPS 186-3 C.3.1): 5 rounds for a 1024-bit w (4 from 1536
 *     bits, 8 under 511); each witness b is len(w) bits of DRBG output read
 *     big-endian, drawn again until 1 < b < w − 1; a composite stops at the
 *     first failing round;
 *   - the first prime is kept as q; the next becomes p, drawn again while
 *     |p − q| < 2^100 (its most significant bit's index, 0-based, < 100);
 *     n = p·q. The EK template is a restricted
 *     decryption key, so no trial signature draws on the DRBG.
 * Checked against set B's RSA EK (NVIDIA's ftpm_keys.txt). */

#define EK_RSA_PRIME_BITS 1024
#define EK_SIEVE_BYTES 2048
#define EK_SIEVE_LAST_PRIME 38891
#define EK_RSA_E 65537u

struct ek_rsa {
        struct drbg *d;
        BN_CTX *bctx;
        unsigned short *primes; /* odd primes 3 … EK_SIEVE_LAST_PRIME */
        size_t nprimes;
        unsigned char field[EK_SIEVE_BYTES];
};

static int small_primes(struct ek_rsa *k)
{
        unsigned char *comp = calloc(EK_SIEVE_LAST_PRIME + 1, 1);
        size_t n = 0;

        k->primes = calloc(EK_SIEVE_LAST_PRIME / 2, sizeof(*k->primes));
        if (!comp || !k->primes) {
                free(comp);
                return -ENOMEM;
        }
        for (unsigned i = 3; i <= EK_SIEVE_LAST_PRIME; i += 2) {
                if (comp[i])
                        continue;
                k->primes[n++] = (unsigned short)i;
                for (unsigned j = i * i; j <= EK_SIEVE_LAST_PRIME; j += 2 * i)
                        comp[j] = 1;
        }
        k->nprimes = n;
        free(comp);
        return 0;
}

/* BN_mask_bits fails on a number that is short already. */
static bool bn_keep_low(BIGNUM *a, int bits)
{
        return BN_num_bits(a) <= bits || BN_mask_bits(a, bits) == 1;
}

/* len(bits) DRBG bits, big-endian (the reference's BnGetRandomBits). */
static int ek_random_bits(struct ek_rsa *k, BIGNUM *out, int bits)
{
        unsigned char buf[EK_RSA_PRIME_BITS / 8 + 8];
        int n = (bits + 7) / 8, r = -EIO;

        if (n > (int)sizeof(buf))
                return -EINVAL;
        if (drbg_generate(k->d, buf, (size_t)n) == 0 && BN_bin2bn(buf, n, out) && bn_keep_low(out, bits))
                r = 0;
        OPENSSL_cleanse(buf, sizeof(buf));
        return r;
}

/* 1: probably prime; 0: composite; < 0: error. */
static int ek_miller_rabin(struct ek_rsa *k, const BIGNUM *w)
{
        BIGNUM *wm1, *m, *b, *z;
        int bits = BN_num_bits(w), rounds = bits < 511 ? 8 : bits < 1536 ? 5 : 4, a, r = -EIO;

        BN_CTX_start(k->bctx);
        wm1 = BN_CTX_get(k->bctx);
        m = BN_CTX_get(k->bctx);
        b = BN_CTX_get(k->bctx);
        z = BN_CTX_get(k->bctx);
        if (!z || !BN_sub(wm1, w, BN_value_one()))
                goto out;
        for (a = 1; a < BN_num_bits(wm1) && !BN_is_bit_set(wm1, a); a++)
                ;
        if (!BN_rshift(m, wm1, a))
                goto out;
        for (int i = 0; i < rounds; i++) {
                bool pass = false;
                do {
                        if (ek_random_bits(k, b, bits) < 0)
                                goto out;
                } while (BN_cmp(b, BN_value_one()) <= 0 || BN_cmp(b, wm1) >= 0);
                if (!BN_mod_exp(z, b, m, w, k->bctx))
                        goto out;
                pass = BN_is_one(z) || BN_cmp(z, wm1) == 0;
                for (int j = 1; j < a && !pass; j++) {
                        if (!BN_mod_mul(z, z, z, w, k->bctx))
                                goto out;
                        if (BN_cmp(z, wm1) == 0)
                                pass = true;
                        else if (BN_is_one(z))
                                break;
                }
                if (!pass) {
                        r = 0;
                        goto out;
                }
        }
        r = 1;
out:
        BN_CTX_end(k->bctx);
        return r;
}

static void field_clear(unsigned char *f, unsigned j)
{
        f[j >> 3] &= (unsigned char)~(1u << (j & 7));
}

static bool field_bit(const unsigned char *f, unsigned j)
{
        return (f[j >> 3] >> (j & 7)) & 1;
}

/* 1: c holds a prime; 0: the field around c held none; < 0: error. */
static int ek_sieve_select(struct ek_rsa *k, BIGNUM *c)
{
        const unsigned fbits = EK_SIEVE_BYTES * 8;
        BN_ULONG rem;
        BIGNUM *w, *lo;
        unsigned first, ones = 0;
        int r = -EIO;

        BN_CTX_start(k->bctx);
        w = BN_CTX_get(k->bctx);
        lo = BN_CTX_get(k->bctx);
        if (!lo || !BN_copy(lo, c) || !bn_keep_low(lo, 32))
                goto out;
        first = (unsigned)BN_get_word(lo) | 0x80000000u;
        rem = BN_mod_word(c, 105);
        if (rem == (BN_ULONG)-1)
                goto out;
        if (rem & 1)
                rem += 105;
        if (!BN_sub_word(c, rem))
                goto out;
        memset(k->field, 0xff, sizeof(k->field));
        for (size_t i = 0; i < k->nprimes; i++) {
                unsigned p = k->primes[i], m;
                BN_ULONG pr = BN_mod_word(c, p);
                if (pr == (BN_ULONG)-1)
                        goto out;
                m = (unsigned)pr;
                /* first j with p | B + 2j */
                for (unsigned j = m == 0 ? 0 : (m & 1) ? (p - m) / 2 : p - m / 2; j < fbits; j += p)
                        field_clear(k->field, j);
        }
        for (unsigned j = 0; j < fbits; j++)
                ones += field_bit(k->field, j);
        for (; ones > 0; ones--) {
                unsigned want = first % ones + 1, seen = 0, j;
                BN_ULONG me;
                for (j = 0; j < fbits; j++)
                        if (field_bit(k->field, j) && ++seen == want)
                                break;
                if (j == fbits || !BN_copy(w, c) || !BN_add_word(w, 2 * (BN_ULONG)j))
                        goto out;
                me = BN_mod_word(w, EK_RSA_E);
                if (me == (BN_ULONG)-1)
                        goto out;
                if (me != 0 && me != 1) {
                        int mr = ek_miller_rabin(k, w);
                        if (mr < 0)
                                goto out;
                        if (mr) {
                                r = BN_copy(c, w) ? 1 : -EIO;
                                goto out;
                        }
                }
                field_clear(k->field, j);
        }
        r = 0;
out:
        BN_CTX_end(k->bctx);
        return r;
}

static int ek_rsa_prime(struct ek_rsa *k, BIGNUM *c)
{
        unsigned char buf[EK_RSA_PRIME_BITS / 8];
        BIGNUM *top;
        int r = -EIO;

        BN_CTX_start(k->bctx);
        top = BN_CTX_get(k->bctx);
        /* The reference loops until it finds one; a bound here turns a
         * (never seen) endless search into an error, not a different key. */
        for (int tries = 0; top && tries < 1000; tries++) {
                uint32_t x, adj;
                if (drbg_generate(k->d, buf, sizeof(buf)) < 0 || !BN_bin2bn(buf, sizeof(buf), c))
                        goto out;
                x = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
                adj = (x >> 16) * 0x4AFBu + (((x & 0xFFFFu) * 0x4AFBu) >> 16) + 0xB5050000u;
                if (!bn_keep_low(c, EK_RSA_PRIME_BITS - 32) || !BN_set_word(top, adj) ||
                    !BN_lshift(top, top, EK_RSA_PRIME_BITS - 32) || !BN_add(c, c, top) || !BN_set_bit(c, 0))
                        goto out;
                r = ek_sieve_select(k, c);
                if (r != 0)
                        goto out;
        }
        r = -EIO;
out:
        OPENSSL_cleanse(buf, sizeof(buf));
        BN_CTX_end(k->bctx);
        return r < 0 ? r : 0;
}

static int ek_rsa_pkey(BIGNUM *p, BIGNUM *q, const BIGNUM *n, BN_CTX *bctx, EVP_PKEY **ret)
{
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pc = NULL;
        BIGNUM *e = BN_new(), *d = BN_secure_new(), *dp = BN_secure_new(), *dq = BN_secure_new(),
               *qi = BN_secure_new(), *t = BN_secure_new(), *phi = BN_secure_new();
        int r = -EIO;

        if (!bld || !e || !d || !dp || !dq || !qi || !t || !phi || !BN_set_word(e, EK_RSA_E))
                goto out;
        /* p > q as the reference keeps them; d = e⁻¹ mod (p−1)(q−1). */
        if (BN_cmp(p, q) < 0)
                BN_swap(p, q);
        if (!BN_sub(t, p, BN_value_one()) || !BN_mod_inverse(dp, e, t, bctx) || !BN_copy(phi, t) ||
            !BN_sub(t, q, BN_value_one()) || !BN_mod_inverse(dq, e, t, bctx) || !BN_mul(phi, phi, t, bctx) ||
            !BN_mod_inverse(d, e, phi, bctx) || !BN_mod_inverse(qi, q, p, bctx))
                goto out;
        if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi) ||
            !(params = OSSL_PARAM_BLD_to_param(bld)))
                goto out;
        pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        if (pc && EVP_PKEY_fromdata_init(pc) == 1 && EVP_PKEY_fromdata(pc, ret, EVP_PKEY_KEYPAIR, params) == 1)
                r = 0;
out:
        OSSL_PARAM_free(params); /* the secure-heap part (the secret BNs) is cleared */
        OSSL_PARAM_BLD_free(bld);
        EVP_PKEY_CTX_free(pc);
        BN_free(e);
        BN_clear_free(d);
        BN_clear_free(dp);
        BN_clear_free(dq);
        BN_clear_free(qi);
        BN_clear_free(t);
        BN_clear_free(phi);
        return r;
}

int ftpm_ek_rsa_derive(const struct fl_secret *eps, unsigned char n_out[256], EVP_PKEY **pkey)
{
        /* Name of the TCG default EK template (RSA 2048, low range). */
        static const unsigned char name[34] = { 0x00, 0x0b, 0x32, 0x50, 0x39, 0x29, 0xa1, 0x28, 0x7e, 0xed, 0xaa, 0x3e,
                                                0x89, 0xd9, 0x32, 0xf9, 0xb5, 0x1a, 0x6f, 0x92, 0xab, 0xd0, 0xfa, 0x57,
                                                0x72, 0x1f, 0xfa, 0x6f, 0xc0, 0x41, 0xe0, 0x4f, 0x74, 0x98 };
        unsigned char seed[48];
        struct drbg d = { { 0 }, { 0 } };
        struct ek_rsa *k = calloc(1, sizeof(*k));
        BIGNUM *p = BN_secure_new(), *q = BN_secure_new(), *n = BN_new(), *diff = BN_secure_new();
        int r = -EIO;

        if (pkey)
                *pkey = NULL;
        if (!k || !p || !q || !n || !diff) {
                r = -ENOMEM;
                goto out;
        }
        if (eps->len != 64) {
                r = -EINVAL;
                goto out;
        }
        k->d = &d;
        k->bctx = BN_CTX_secure_new();
        if (!k->bctx || (r = small_primes(k)) < 0)
                goto out;
        r = -EIO;
        if (ek_drbg_seed(eps->data, eps->len, name, sizeof(name), seed) < 0 || drbg_update(&d, seed) < 0)
                goto out;
        BN_zero(q);
        for (int i = 1; i != 100; i++) {
                if ((r = ek_rsa_prime(k, p)) < 0)
                        goto out;
                r = -EIO;
                if (BN_is_zero(q)) {
                        if (!BN_copy(q, p))
                                goto out;
                        continue;
                }
                if (!BN_sub(diff, p, q))
                        goto out;
                BN_set_negative(diff, 0);
                if (BN_num_bits(diff) - 1 < 100)
                        continue;
                if (!BN_mul(n, p, q, k->bctx) || BN_num_bits(n) != 2048 || BN_bn2binpad(n, n_out, 256) != 256)
                        goto out;
                r = pkey ? ek_rsa_pkey(p, q, n, k->bctx, pkey) : 0;
                goto out;
        }
out:
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(&d, sizeof(d));
        if (k) {
                BN_CTX_free(k->bctx);
                free(k->primes);
                OPENSSL_cleanse(k, sizeof(*k));
                free(k);
        }
        BN_clear_free(p);
        BN_clear_free(q);
        BN_clear_free(diff);
        BN_free(n);
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
            (eps_seed && hkdf(c.root_seed.data, 64, eps_seed, 32, sn, FTPM_SN_LEN, c.eps.data, 64) < 0) ||
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

/* ---- EK certificates --------------------------------------------------------- */

void ftpm_ek_result_clear(struct ftpm_ek_result *r)
{
        free(r->der);
        memset(r, 0, sizeof(*r));
}

static int csr_load_any(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509_REQ **ret)
{
        const unsigned char *p = data;
        X509_REQ *req = NULL;

        if (len > 10 && !memcmp(data, "-----BEGIN", 10)) {
                BIO *b = BIO_new_mem_buf(data, (int)len);
                req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
                BIO_free(b);
        } else {
                req = d2i_X509_REQ(NULL, &p, (long)len);
                if (req && p != data + len) {
                        X509_REQ_free(req);
                        req = NULL;
                }
        }
        if (!req)
                return fl_err(ctx, -EINVAL, "%s: not a PKCS#10 request (DER or PEM): %s", name, ossl_errstr());
        *ret = req;
        return 0;
}

/* The CSR must be the fTPM EK request of this device (§4.4). */
static int ek_csr_check(fl_ctx *ctx, const struct ftpm_ek_issue *rq, X509_REQ *req, EVP_PKEY *pk, char kind[4],
                        STACK_OF(X509_EXTENSION) **ret_exts)
{
        char want_cn[64], cn[128], sn_hex[2 * FTPM_SN_LEN + 1];
        X509_NAME *subj = X509_REQ_get_subject_name(req);
        STACK_OF(X509_EXTENSION) *exts = NULL;
        int bits = EVP_PKEY_get_bits(pk);

        if (X509_REQ_verify(req, pk) != 1)
                return fl_err(ctx, -EBADMSG, "%s: the CSR's signature does not verify with its own key: the EK "
                              "residency check fails", rq->csr_name);
        if (EVP_PKEY_is_a(pk, "RSA") && bits == 2048) {
                BIGNUM *e = NULL;
                bool ok = EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_word(e, 65537);
                BN_free(e);
                if (!ok)
                        return fl_err(ctx, -EINVAL, "%s: an RSA EK has exponent 65537", rq->csr_name);
                snprintf(kind, 4, "rsa");
        } else if (EVP_PKEY_is_a(pk, "EC") && bits == 256) {
                snprintf(kind, 4, "ec");
        } else {
                return fl_err(ctx, -EINVAL, "%s: the EK key is %s-%d; the TCG EK templates are RSA-2048 and P-256",
                              rq->csr_name, EVP_PKEY_get0_type_name(pk), bits);
        }
        hex_encode(rq->sn, FTPM_SN_LEN, sn_hex);
        snprintf(want_cn, sizeof(want_cn), "%s_ftpm-ek-cert", sn_hex);
        if (X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn)) < 0 || strcmp(cn, want_cn))
                return fl_err(ctx, -EBADMSG, "%s: the CSR's subject CN is not %s: it is for another device",
                              rq->csr_name, want_cn);
        exts = X509_REQ_get_extensions(req);
        for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
                X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
                int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
                if (nid == NID_basic_constraints) {
                        BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(e);
                        bool ca = !bc || bc->ca;
                        BASIC_CONSTRAINTS_free(bc);
                        if (ca) {
                                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
                                return fl_err(ctx, -EBADMSG, "%s: the CSR asks for a CA certificate", rq->csr_name);
                        }
                } else if (nid == NID_authority_key_identifier || nid == NID_subject_key_identifier) {
                        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
                        return fl_err(ctx, -EINVAL, "%s: the CSR carries a key identifier extension; the CA sets "
                                      "those", rq->csr_name);
                }
        }
        *ret_exts = exts;
        return 0;
}

int ftpm_ek_cert_issue(fl_ctx *ctx, const struct ftpm_ek_issue *rq, struct ftpm_ek_result *ret)
{
        struct ftpm_ek_result res = { 0 };
        struct keyset *ks = NULL;
        struct identity_ca ca = { 0 };
        STACK_OF(X509_EXTENSION) *exts = NULL;
        X509_REQ *req = NULL;
        EVP_PKEY *pk = NULL;
        signer *sg = NULL;
        X509 *cert = NULL;
        unsigned char serial[SHA_DIGEST_LENGTH], *sder = NULL;
        int n, r;

        r = csr_load_any(ctx, rq->csr_name, rq->csr, rq->csr_len, &req);
        if (r < 0)
                return r;
        pk = X509_REQ_get_pubkey(req);
        if (!pk) {
                r = fl_err(ctx, -EINVAL, "%s: no public key in the CSR", rq->csr_name);
                goto out;
        }
        r = ek_csr_check(ctx, rq, req, pk, res.kind, &exts);
        if (r < 0)
                goto out;
        n = i2d_X509_NAME(X509_REQ_get_subject_name(req), &sder);
        if (n <= 0) {
                r = -ENOMEM;
                goto out;
        }
        SHA1(sder, (size_t)n, serial);
        r = keyset_load(ctx, rq->keyset_path, &ks);
        if (r < 0)
                goto out;
        r = identity_ca_load(ctx, ks, rq->keyset_path, rq->ca_role ? rq->ca_role : FTPM_EK_CA_ROLE, &ca);
        if (r < 0)
                goto out;
        {
                /* The one signer: the manifest's token, the pinned key, the
                 * role policy and the production interlock. */
                struct signer_opts so = { .tok = rq->tok, .keyset_path = rq->keyset_path,
                                          .use = SIGNER_USE_DEVICE_CERT };
                r = signer_open(ctx, ks, rq->ca_role ? rq->ca_role : FTPM_EK_CA_ROLE, &so, &sg);
                if (r < 0)
                        goto out;
        }
        {
                struct x509_cert_spec spec = {
                        .subject_name = X509_REQ_get_subject_name(req),
                        .pubkey = pk,
                        .issuer = ca.cert,
                        .serial = serial,
                        .serial_len = sizeof(serial),
                        .not_after = (time_t)253402300799LL, /* 9999-12-31T23:59:59Z */
                        .hash = ca.key->type == KT_P384 ? X509H_SHA384 : X509H_SHA256,
                        .ca = -1,
                        .aki = true,
                        .extra_exts = exts,
                };
                r = x509_cert_build(ctx, &spec, signer_x509(sg), &cert);
        }
        if (r < 0)
                goto out;
        r = x509_cert_der(cert, &res.der, &res.der_len);
        if (r == 0)
                r = x509_cert_sha256(cert, res.sha256);
        if (r < 0)
                goto out;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
out:
        ftpm_ek_result_clear(&res);
        OPENSSL_free(sder);
        X509_free(cert);
        signer_close(sg);
        identity_ca_clear(&ca);
        keyset_free(ks);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        EVP_PKEY_free(pk);
        X509_REQ_free(req);
        return r;
}

/* ---- EK CSRs and certificates from the device's own keys ------------------------ */

static int ec_ek_pkey(const unsigned char priv[32], const unsigned char pub[64], EVP_PKEY **ret)
{
        unsigned char pt[65];
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pc = NULL;
        BIGNUM *d = BN_secure_new();
        int r = -EIO;

        pt[0] = 0x04;
        memcpy(pt + 1, pub, 64);
        if (!bld || !d || !BN_bin2bn(priv, 32, d) ||
            !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) ||
            !(params = OSSL_PARAM_BLD_to_param(bld)))
                goto out;
        pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (pc && EVP_PKEY_fromdata_init(pc) == 1 && EVP_PKEY_fromdata(pc, ret, EVP_PKEY_KEYPAIR, params) == 1)
                r = 0;
out:
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        EVP_PKEY_CTX_free(pc);
        BN_clear_free(d);
        return r;
}

static int ext_add(STACK_OF(X509_EXTENSION) *exts, int nid, const unsigned char *der, size_t len)
{
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e = NULL;
        int ok = os && ASN1_OCTET_STRING_set(os, der, (int)len) &&
                 (e = X509_EXTENSION_create_by_NID(NULL, nid, 1, os)) && sk_X509_EXTENSION_push(exts, e);

        if (!ok)
                X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        return ok ? 0 : -ENOMEM;
}

int ftpm_ek_csr(fl_ctx *ctx, EVP_PKEY *ek, const unsigned char sn[FTPM_SN_LEN], unsigned char **der, size_t *len)
{
        /* §4.4, as the encodings of NVIDIA's CSRs show them (set B): key usage
         * RSA keyEncipherment / EC digitalSignature + keyAgreement,
         * CA:FALSE, SAN = directoryName {tpmManufacturer "id:4D534654",
         * tpmModel "SSE fTPM", tpmVersion "id:20180710"} (UTF8Strings); the
         * first two critical, the SAN not. */
        static const unsigned char ku_rsa[] = { 0x03, 0x02, 0x05, 0x20 }, ku_ec[] = { 0x03, 0x02, 0x03, 0x88 },
                                   bc[] = { 0x30, 0x00 },
                                   san[] = { 0x30, 0x49, 0xa4, 0x47, 0x30, 0x45, 0x31, 0x16, 0x30, 0x14, 0x06, 0x05,
                                             0x67, 0x81, 0x05, 0x02, 0x01, 0x0c, 0x0b, 'i',  'd',  ':',  '4',  'D',
                                             '5',  '3',  '4',  '6',  '5',  '4',  0x31, 0x13, 0x30, 0x11, 0x06, 0x05,
                                             0x67, 0x81, 0x05, 0x02, 0x02, 0x0c, 0x08, 'S',  'S',  'E',  ' ',  'f',
                                             'T',  'P',  'M',  0x31, 0x16, 0x30, 0x14, 0x06, 0x05, 0x67, 0x81, 0x05,
                                             0x02, 0x03, 0x0c, 0x0b, 'i',  'd',  ':',  '2',  '0',  '1',  '8',  '0',
                                             '7',  '1',  '0' };
        char cn[2 * FTPM_SN_LEN + 16], snhex[2 * FTPM_SN_LEN + 1];
        bool rsa = EVP_PKEY_is_a(ek, "RSA");
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = X509_NAME_new();
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        unsigned char *out = NULL;
        int n, r = -ENOMEM;

        hex_encode(sn, FTPM_SN_LEN, snhex);
        snprintf(cn, sizeof(cn), "%s_ftpm-ek-cert", snhex);
        if (!req || !name || !exts)
                goto out;
        if (ext_add(exts, NID_key_usage, rsa ? ku_rsa : ku_ec, 4) < 0 || ext_add(exts, NID_basic_constraints, bc, 2) < 0)
                goto out;
        {
                ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
                X509_EXTENSION *e = NULL;
                bool ok = os && ASN1_OCTET_STRING_set(os, san, sizeof(san)) &&
                          (e = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, os)) &&
                          sk_X509_EXTENSION_push(exts, e);
                if (!ok)
                        X509_EXTENSION_free(e);
                ASN1_OCTET_STRING_free(os);
                if (!ok)
                        goto out;
        }
        r = -EIO;
        if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            !X509_NAME_add_entry_by_NID(name, NID_countryName, V_ASN1_PRINTABLESTRING, (const unsigned char *)"US",
                                        -1, -1, 0) ||
            !X509_NAME_add_entry_by_NID(name, NID_organizationName, V_ASN1_UTF8STRING,
                                        (const unsigned char *)"ftpm corp", -1, -1, 0) ||
            !X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING, (const unsigned char *)cn, -1, -1,
                                        0) ||
            X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, ek) != 1 ||
            X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, ek, EVP_sha256()) <= 0 ||
            (n = i2d_X509_REQ(req, &out)) <= 0) {
                r = fl_err(ctx, -EIO, "EK CSR: %s", ossl_errstr());
                goto out;
        }
        *der = malloc((size_t)n);
        if (!*der) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(*der, out, (size_t)n);
        *len = (size_t)n;
        r = 0;
out:
        OPENSSL_free(out);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_NAME_free(name);
        X509_REQ_free(req);
        return r;
}

void ftpm_ek_pair_clear(struct ftpm_ek_pair *p)
{
        ftpm_ek_result_clear(&p->rsa);
        ftpm_ek_result_clear(&p->ec);
        free(p->rsa_csr);
        free(p->ec_csr);
        ekb_result_clear(&p->ekb);
        memset(p, 0, sizeof(*p));
}

int ftpm_ek_certs_derive(fl_ctx *ctx, const struct ftpm_ek_derive *rq, struct ftpm_ek_pair *ret)
{
        struct ftpm_ek_pair res = { 0 };
        struct ftpm_chain ch = { 0 };
        struct keyset *ks = NULL;
        struct fl_secret kdk0 = { 0 }, seed = { 0 };
        const struct ks_key *k;
        fl_token *tok = NULL;
        token_obj obj;
        EVP_PKEY *rsa = NULL, *ec = NULL;
        unsigned char ec_priv[32], ec_pub[64], n[256];
        char snhex[2 * FTPM_SN_LEN + 1], role[40];
        struct ekb_record *recs = NULL;
        int r;

        if (rq->eps_seed && rq->eps_seed->len != 32)
                return fl_err(ctx, -EINVAL, "the EPS seed must be 32 bytes");
        if (!rq->eps_seed && !rq->ekb)
                return fl_err(ctx, -EINVAL, "a new EPS seed needs the per-device EKB to go into");
        hex_encode(rq->sn, FTPM_SN_LEN, snhex);
        snprintf(role, sizeof(role), "ftpm-kdk0-%s", snhex);
        r = keyset_load(ctx, rq->keyset_path, &ks);
        if (r < 0)
                return r;
        k = keyset_find(ks, role);
        if (!k) {
                r = fl_err(ctx, -ENOENT, "%s: no KDK0 for device %s (role %s): run ftpm-device first",
                           rq->keyset_path, snhex, role);
                goto out;
        }
        r = secret_alloc(&seed, 32);
        if (r < 0)
                goto out;
        r = keyset_token_open(ctx, ks, rq->tok, &tok);
        if (r == 0)
                r = keyset_key_object(ctx, tok, k, &obj);
        if (r == 0)
                r = token_read_secret(tok, obj, &kdk0);
        if (r == 0) {
                if (rq->eps_seed)
                        memcpy(seed.data, rq->eps_seed->data, 32);
                else
                        r = token_random(tok, seed.data, 32);
        }
        token_close(tok);
        tok = NULL;
        if (r < 0)
                goto out;
        r = ftpm_chain_derive(ctx, &kdk0, rq->sn, seed.data, &ch);
        secret_wipe(&kdk0);
        if (r < 0)
                goto out;
        r = ftpm_ek_ec_derive(&ch.eps, ec_priv, ec_pub);
        if (r == 0)
                r = ec_ek_pkey(ec_priv, ec_pub, &ec);
        if (r == 0)
                r = ftpm_ek_rsa_derive(&ch.eps, n, &rsa);
        ftpm_chain_clear(&ch);
        if (r < 0) {
                r = fl_err(ctx, r, "device %s: the EK key pairs could not be derived", snhex);
                goto out;
        }
        r = ftpm_ek_csr(ctx, rsa, rq->sn, &res.rsa_csr, &res.rsa_csr_len);
        if (r == 0)
                r = ftpm_ek_csr(ctx, ec, rq->sn, &res.ec_csr, &res.ec_csr_len);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
        rsa = ec = NULL;
        if (r < 0)
                goto out;
        {
                struct ftpm_ek_issue is = { .keyset_path = rq->keyset_path, .tok = rq->tok, .ca_role = rq->ca_role,
                                            .sn = rq->sn, .csr_name = "RSA EK CSR", .csr = res.rsa_csr,
                                            .csr_len = res.rsa_csr_len };
                r = ftpm_ek_cert_issue(ctx, &is, &res.rsa);
                if (r == 0) {
                        is.csr_name = "EC EK CSR";
                        is.csr = res.ec_csr;
                        is.csr_len = res.ec_csr_len;
                        r = ftpm_ek_cert_issue(ctx, &is, &res.ec);
                }
        }
        if (r < 0)
                goto out;
        if (rq->ekb) {
                struct ekb_build_req b = *rq->ekb;
                size_t m = rq->ekb->n_extra;
                recs = calloc(m + 4, sizeof(*recs));
                if (!recs) {
                        r = -ENOMEM;
                        goto out;
                }
                if (m)
                        memcpy(recs, rq->ekb->extra, m * sizeof(*recs));
                recs[m++] = (struct ekb_record){ 91, rq->sn, FTPM_SN_LEN };
                recs[m++] = (struct ekb_record){ 92, seed.data, 32 };
                recs[m++] = (struct ekb_record){ 93, res.rsa.der, res.rsa.der_len };
                recs[m++] = (struct ekb_record){ 94, res.ec.der, res.ec.der_len };
                b.extra = recs;
                b.n_extra = m;
                r = ekb_build(ctx, rq->tok, ks, &b, &res.ekb);
                if (r < 0)
                        goto out;
        }
        *ret = res;
        memset(&res, 0, sizeof(res));
out:
        OPENSSL_cleanse(ec_priv, sizeof(ec_priv));
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
        ftpm_chain_clear(&ch);
        secret_wipe(&kdk0);
        secret_wipe(&seed);
        free(recs);
        token_close(tok);
        keyset_free(ks);
        ftpm_ek_pair_clear(&res);
        return r;
}

/* ---- per-device provisioning ---------------------------------------------------- */

static int device_plan(fl_ctx *ctx, const struct ftpm_device_req *rq, const struct keyset *ks, const char *ks_path,
                       const struct fl_secret *kdk0, struct fuse_plan **ret)
{
        struct fuse_plan *plan = NULL;
        struct fuse_problems probs = { 0 };
        unsigned char odm_id[8], odm_info[4];
        const struct fuse_def *d_id = chip_fuse(FL_CHIP_T234, "OdmId"), *d_info = chip_fuse(FL_CHIP_T234, "OdmInfo"),
                              *d_kdk = chip_fuse(FL_CHIP_T234, "Kdk0");
        int r;

        if (!d_id || !d_info || !d_kdk || d_id->size != 8 || d_info->size != 4 || d_kdk->size != 32)
                return fl_err(ctx, -EINVAL, "the t234 fuse map lacks OdmId/OdmInfo/Kdk0");
        /* Big-endian values, as every fuse is written: OdmId = the SN (high
         * word ODMID0), OdmInfo = OEM_ID. [U] that the device reads them back
         * in the byte order the fTPM's SN check expects (reference §6): check
         * with NVIDIA's fuse tool on a lab device before a production burn. */
        for (int i = 0; i < 8; i++)
                odm_id[i] = (unsigned char)(rq->sn >> (56 - 8 * i));
        odm_info[0] = odm_info[1] = 0;
        odm_info[2] = (unsigned char)(rq->oem_id >> 8);
        odm_info[3] = (unsigned char)rq->oem_id;
        r = fuse_plan_new(FL_CHIP_T234, &plan);
        if (r < 0)
                return r;
        plan->keyset_name = ks->name ? strdup(ks->name) : NULL;
        plan->keyset_path = strdup(ks_path);
        plan->profile = ks->profile ? strdup(ks->profile) : NULL;
        if ((r = fuse_plan_add(plan, d_id, odm_id, 0)) < 0 || (r = fuse_plan_add(plan, d_info, odm_info, 0)) < 0 ||
            (r = fuse_plan_add(plan, d_kdk, kdk0->data, 0)) < 0)
                goto out;
        fuse_plan_sort(plan);
        r = fuse_plan_check(ctx, plan, NULL, &probs);
        if (r < 0)
                goto out;
        if (probs.n) {
                r = fl_err_hint(ctx, probs.v[0].hint, -EINVAL, "the per-device fuse plan breaks rule %s: %s", probs.v[0].rule,
                                probs.v[0].msg);
                goto out;
        }
        *ret = plan;
        plan = NULL;
        r = 0;
out:
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        return r;
}

int ftpm_device_create(fl_ctx *ctx, const struct ftpm_device_req *rq, struct ftpm_device_result *ret)
{
        struct ftpm_device_result res = { 0 };
        struct ftpm_chain ch = { 0 };
        struct keyset *ks = NULL;
        struct fuse_plan *plan = NULL;
        struct fl_secret kdk0 = { 0 }, raw = { 0 };
        struct ks_key k = { 0 };
        fl_token *tok = NULL;
        token_obj obj = 0;
        unsigned char id[16];
        char label[160], snhex[2 * FTPM_SN_LEN + 1], kcv[7], pubhex[129];
        bool written = false;
        int r;

        r = ftpm_device_sn(ctx, rq->oem_id, rq->sn, res.sn);
        if (r < 0)
                return r;
        hex_encode(res.sn, FTPM_SN_LEN, snhex);
        snprintf(res.role, sizeof(res.role), "ftpm-kdk0-%s", snhex);
        r = keyset_load(ctx, rq->keyset_path, &ks);
        if (r < 0)
                return r;
        if (ks->chip != FL_CHIP_T234) {
                r = fl_err(ctx, -EINVAL, "%s: fTPM provisioning is for t234 keysets", rq->keyset_path);
                goto out;
        }
        if (keyset_find(ks, res.role)) {
                r = fl_err(ctx, -EEXIST, "%s: device %s has a KDK0 already (role %s); fuseline never replaces it",
                           rq->keyset_path, snhex, res.role);
                goto out;
        }
        if (rq->kdk0_import && (!ks->profile || strcmp(ks->profile, "lab"))) {
                r = fl_err(ctx, -EPERM, "%s: importing a KDK0 is for lab keysets; a production KDK0 is made in the "
                           "token", rq->keyset_path);
                goto out;
        }
        if (access(rq->fuse_out, F_OK) == 0) {
                r = fl_err(ctx, -EEXIST, "%s exists already; fuseline never overwrites a fuse plan", rq->fuse_out);
                goto out;
        }
        snprintf(label, sizeof(label), "%s-%s", ks->name ? ks->name : "fuseline", res.role);
        r = keyset_token_open(ctx, ks, rq->tok, &tok);
        if (r < 0)
                goto out;
        {
                size_t cnt = 0;
                r = token_count_label(tok, label, &cnt);
                if (r == 0 && cnt)
                        r = fl_err(ctx, -EEXIST, "token already holds an object labelled '%s'", label);
                if (r < 0)
                        goto out;
        }
        r = token_random_id(tok, id, sizeof(id));
        if (r < 0)
                goto out;
        if (rq->kdk0_import) {
                r = file_read_secret(ctx, rq->kdk0_import, 4096, &raw);
                if (r == 0)
                        r = fusekey_parse(ctx, rq->kdk0_import, raw.data, raw.len, 32, &kdk0);
                if (r == 0)
                        r = token_import_secret(tok, KT_AES256, kdk0.data, 32, label, id, sizeof(id), true, &obj);
        } else {
                struct keygen_spec spec = { .label = label, .id = id, .id_len = sizeof(id), .type = KT_AES256,
                                            .extractable = true };
                r = token_keygen(tok, &spec, &obj, NULL);
                if (r == 0)
                        r = token_read_secret(tok, obj, &kdk0);
        }
        if (r < 0)
                goto out;
        r = token_aes_kcv(tok, obj, kcv);
        if (r < 0)
                goto out;
        r = ftpm_chain_derive(ctx, &kdk0, res.sn, NULL, &ch);
        if (r < 0)
                goto out;
        memcpy(res.sid_pub, ch.sid_pub, 64);
        r = device_plan(ctx, rq, ks, rq->keyset_path, &kdk0, &plan);
        if (r == 0)
                r = fuse_plan_sha256(ctx, plan, res.plan_sha256);
        if (r == 0)
                r = fuse_xml_write(ctx, plan, rq->fuse_out);
        if (r < 0)
                goto out;
        written = true;
        hex_encode(res.sid_pub, 64, pubhex);
        k.role = strdup(res.role);
        k.type = KT_AES256;
        k.label = strdup(label);
        k.uri = token_object_uri(tok, label, id, sizeof(id), CKO_SECRET_KEY);
        k.kcv = strdup(kcv);
        k.imported = rq->kdk0_import != NULL;
        k.extra = json_object_new_object();
        if (!k.role || !k.label || !k.uri || !k.kcv || !k.extra) {
                r = -ENOMEM;
                goto out;
        }
        json_object_object_add(k.extra, "ftpm_sn", json_object_new_string(snhex));
        json_object_object_add(k.extra, "silicon_id_pub", json_object_new_string(pubhex));
        json_object_object_add(k.extra, "fuse_plan_sha256", json_object_new_string(res.plan_sha256));
        if (rq->ecid)
                json_object_object_add(k.extra, "ecid", json_object_new_string(rq->ecid));
        r = keyset_add(ks, &k);
        if (r == 0)
                r = keyset_save(ctx, ks, rq->keyset_path);
        if (r < 0)
                goto out;
        obj = 0;
        written = false;
        *ret = res;
        r = 0;
out:
        if (obj)
                (void)token_destroy(tok, obj);
        if (written)
                (void)unlink(rq->fuse_out);
        ks_key_clear(&k);
        ftpm_chain_clear(&ch);
        secret_wipe(&kdk0);
        secret_wipe(&raw);
        fuse_plan_free(plan);
        token_close(tok);
        keyset_free(ks);
        return r;
}

int ftpm_device_plan_write(fl_ctx *ctx, const struct ftpm_device_req *rq, struct ftpm_device_result *ret,
                           char ret_ecid[33])
{
        struct ftpm_device_result res = { 0 };
        struct ftpm_chain ch = { 0 };
        struct keyset *ks = NULL;
        struct fuse_plan *plan = NULL;
        struct fl_secret kdk0 = { 0 };
        const struct ks_key *k;
        fl_token *tok = NULL;
        token_obj obj;
        json_object *v;
        char snhex[2 * FTPM_SN_LEN + 1];
        const char *want = NULL, *ecid = "";
        int r;

        r = ftpm_device_sn(ctx, rq->oem_id, rq->sn, res.sn);
        if (r < 0)
                return r;
        hex_encode(res.sn, FTPM_SN_LEN, snhex);
        snprintf(res.role, sizeof(res.role), "ftpm-kdk0-%s", snhex);
        r = keyset_load(ctx, rq->keyset_path, &ks);
        if (r < 0)
                return r;
        k = keyset_find(ks, res.role);
        if (!k) {
                r = fl_err(ctx, -ENOENT, "%s: no KDK0 for device %s (role %s)", rq->keyset_path, snhex, res.role);
                goto out;
        }
        if (k->extra && json_object_object_get_ex(k->extra, "fuse_plan_sha256", &v))
                want = json_object_get_string(v);
        if (k->extra && json_object_object_get_ex(k->extra, "ecid", &v) && json_object_get_string(v))
                ecid = json_object_get_string(v);
        if (access(rq->fuse_out, F_OK) == 0) {
                r = fl_err(ctx, -EEXIST, "%s exists already; fuseline never overwrites a fuse plan", rq->fuse_out);
                goto out;
        }
        r = keyset_token_open(ctx, ks, rq->tok, &tok);
        if (r == 0)
                r = keyset_key_object(ctx, tok, k, &obj);
        if (r == 0)
                r = token_read_secret(tok, obj, &kdk0);
        if (r == 0 && kdk0.len != 32)
                r = fl_err(ctx, -EINVAL, "%s: the token's KDK0 is %zu bytes, not 32", res.role, kdk0.len);
        if (r == 0)
                r = ftpm_chain_derive(ctx, &kdk0, res.sn, NULL, &ch);
        if (r == 0)
                r = device_plan(ctx, rq, ks, rq->keyset_path, &kdk0, &plan);
        if (r == 0)
                r = fuse_plan_sha256(ctx, plan, res.plan_sha256);
        if (r < 0)
                goto out;
        if (!want || strcmp(want, res.plan_sha256)) {
                r = fl_err(ctx, -EBADMSG, "%s: the per-device fuse plan made again from the token has sha256 %s; the "
                           "keyset recorded %s", res.role, res.plan_sha256, want ? want : "none");
                goto out;
        }
        r = fuse_xml_write(ctx, plan, rq->fuse_out);
        if (r < 0)
                goto out;
        memcpy(res.sid_pub, ch.sid_pub, 64);
        if (ret_ecid)
                snprintf(ret_ecid, 33, "%s", ecid);
        *ret = res;
        r = 0;
out:
        ftpm_chain_clear(&ch);
        secret_wipe(&kdk0);
        fuse_plan_free(plan);
        token_close(tok);
        keyset_free(ks);
        return r;
}

/* ---- the fTPM records of a per-device EKB ---------------------------------------- */

static const char *ekb_ftpm_name(uint32_t tag)
{
        return tag == 91 ? "fTPM serial number" : tag == 92 ? "fTPM EPS seed" :
               tag == 93 ? "fTPM RSA EK certificate" : "fTPM EC EK certificate";
}

static void rec_bad(struct ekb_report *rep, size_t i, const char *note)
{
        if (i < rep->n_recs) {
                rep->recs[i].ok = false;
                snprintf(rep->recs[i].note, sizeof(rep->recs[i].note), "%s: %s", ekb_ftpm_name(rep->recs[i].tag),
                         note);
        }
}

static void rec_note(struct ekb_report *rep, size_t i, const char *note)
{
        if (i < rep->n_recs && rep->recs[i].ok)
                snprintf(rep->recs[i].note, sizeof(rep->recs[i].note), "%s: %s", ekb_ftpm_name(rep->recs[i].tag),
                         note);
}

/* One EK certificate record (93 or 94): the EK profile ftpm_ek_cert_issue
 * issues. sn: the device's SN (tag 91, or the caller's) or NULL. Returns the
 * certificate (NULL when it is none), problems into rep. */
static X509 *ek_cert_record(const unsigned char *v, size_t len, uint32_t tag, size_t idx, const unsigned char *sn,
                            X509 *ca_cert, struct ekb_report *rep)
{
        const unsigned char *p = v;
        X509 *c = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
        EVP_PKEY *pk;
        bool rsa = tag == 93;
        int bits;

        if (!c || p != v + len) {
                X509_free(c);
                ekb_report_problem(rep, "tag %u (%s): %zu bytes that are not an X.509 certificate (DER)", tag,
                                   ekb_ftpm_name(tag), len);
                if (!rep->malformed)
                        rep->malformed = rep->n_problems;
                rec_bad(rep, idx, "not an X.509 certificate");
                return NULL;
        }
        pk = X509_get0_pubkey(c);
        bits = pk ? EVP_PKEY_get_bits(pk) : 0;
        if (!pk || (rsa && !(EVP_PKEY_is_a(pk, "RSA") && bits == 2048)) || (!rsa && !(EVP_PKEY_is_a(pk, "EC") && bits == 256))) {
                const char *other = pk && EVP_PKEY_is_a(pk, rsa ? "EC" : "RSA") ? " (the RSA and EC certificates are "
                                                                                   "swapped?)" : "";
                ekb_report_problem(rep, "tag %u (%s): the certificate's key is %s-%d; the %s EK is %s%s", tag,
                                   ekb_ftpm_name(tag), pk ? EVP_PKEY_get0_type_name(pk) : "none", bits,
                                   rsa ? "RSA" : "EC", rsa ? "RSA-2048" : "P-256", other);
                rec_bad(rep, idx, rsa ? "not an RSA-2048 key" : "not a P-256 key");
        }
        if (X509_check_ca(c) != 0) {
                ekb_report_problem(rep, "tag %u (%s): the certificate is a CA certificate; an EK certificate has "
                                   "CA:FALSE", tag, ekb_ftpm_name(tag));
                rec_bad(rep, idx, "a CA certificate");
        }
        {
                X509_NAME *subj = X509_get_subject_name(c);
                unsigned char *der = NULL, md[SHA_DIGEST_LENGTH];
                int n = i2d_X509_NAME(subj, &der);
                const ASN1_INTEGER *ser = X509_get0_serialNumber(c);
                BIGNUM *want = n > 0 ? BN_bin2bn(SHA1(der, (size_t)n, md), sizeof(md), NULL) : NULL,
                       *got = ASN1_INTEGER_to_BN(ser, NULL);
                if (!want || !got || BN_cmp(want, got)) {
                        ekb_report_problem(rep, "tag %u (%s): the serial number is not SHA-1 of the subject (the EK "
                                           "profile's rule)", tag, ekb_ftpm_name(tag));
                        rec_bad(rep, idx, "serial is not SHA-1(subject)");
                }
                BN_free(want);
                BN_free(got);
                OPENSSL_free(der);
                if (sn) {
                        char sn_hex[2 * FTPM_SN_LEN + 1], want_cn[64], cn[128] = "", c_[8] = "", o[32] = "";
                        hex_encode(sn, FTPM_SN_LEN, sn_hex);
                        snprintf(want_cn, sizeof(want_cn), "%s_ftpm-ek-cert", sn_hex);
                        if (X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn)) < 0 ||
                            X509_NAME_get_text_by_NID(subj, NID_countryName, c_, sizeof(c_)) < 0 ||
                            X509_NAME_get_text_by_NID(subj, NID_organizationName, o, sizeof(o)) < 0 ||
                            X509_NAME_entry_count(subj) != 3 || strcmp(c_, "US") || strcmp(o, "ftpm corp")) {
                                ekb_report_problem(rep, "tag %u (%s): the subject is not C=US, O=ftpm corp, "
                                                   "CN=%s (the EK profile)", tag, ekb_ftpm_name(tag), want_cn);
                                rec_bad(rep, idx, "subject is not the EK profile's");
                        } else if (strcmp(cn, want_cn)) {
                                for (char *q = cn; *q; q++) /* the image's text: one printable line */
                                        if (!isprint((unsigned char)*q))
                                                *q = '?';
                                ekb_report_problem(rep, "tag %u (%s): the certificate is for device %.20s (CN %s), "
                                                   "not for this device %s", tag, ekb_ftpm_name(tag), cn, cn, sn_hex);
                                rec_bad(rep, idx, "for another device");
                        }
                }
        }
        if (ca_cert) {
                EVP_PKEY *capk = X509_get0_pubkey(ca_cert);
                if (X509_check_issued(ca_cert, c) != X509_V_OK || !capk || X509_verify(c, capk) != 1) {
                        char issuer[256] = "", ca[256] = "";
                        X509_NAME_oneline(X509_get_issuer_name(c), issuer, sizeof(issuer));
                        X509_NAME_oneline(X509_get_subject_name(ca_cert), ca, sizeof(ca));
                        ekb_report_problem(rep, "tag %u (%s): not issued by the keyset's EK CA %s (issuer %s%s)", tag,
                                           ekb_ftpm_name(tag), ca, issuer,
                                           strcmp(issuer, ca) ? "" : ", but the CA's key did not sign it");
                        rec_bad(rep, idx, "not issued by the keyset's EK CA");
                }
                ERR_clear_error();
        }
        return c;
}

/* Whether the certificate's key is the derived one: RSA modulus n (256
 * bytes) or P-256 point X ‖ Y. */
static bool ek_key_equal(X509 *c, bool rsa, const unsigned char *want)
{
        EVP_PKEY *pk = X509_get0_pubkey(c);
        bool eq = false;

        if (!pk)
                return false;
        if (rsa) {
                BIGNUM *n = NULL;
                unsigned char b[256];
                eq = EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
                     BN_bn2binpad(n, b, sizeof(b)) == sizeof(b) && !memcmp(b, want, sizeof(b));
                BN_free(n);
        } else {
                unsigned char pt[65];
                size_t len = 0;
                eq = EVP_PKEY_is_a(pk, "EC") &&
                     EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &len) == 1 &&
                     len == 65 && pt[0] == 4 && !memcmp(pt + 1, want, 64);
        }
        ERR_clear_error();
        return eq;
}

int ftpm_ekb_records_check(fl_ctx *ctx, const struct ftpm_ekb_check *chk, const unsigned char *plain,
                           const struct ekb_rec *recs, size_t n, struct ekb_report *rep)
{
        long at[4] = { -1, -1, -1, -1 }; /* index of tags 91..94 */
        const unsigned char *sn = NULL;
        struct identity_ca ca = { 0 };
        X509 *cert[2] = { NULL, NULL };
        char sn_hex[2 * FTPM_SN_LEN + 1] = "";
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                if (recs[i].tag < 91 || recs[i].tag > 94)
                        continue;
                if (at[recs[i].tag - 91] >= 0) {
                        ekb_report_problem(rep, "tag %u (%s): appears twice; OP-TEE reads one", recs[i].tag,
                                           ekb_ftpm_name(recs[i].tag));
                        rec_bad(rep, i, "a second copy");
                        continue;
                }
                at[recs[i].tag - 91] = (long)i;
        }
        if (at[0] < 0) {
                if (at[1] >= 0 || at[2] >= 0 || at[3] >= 0)
                        ekb_report_problem(rep, "tag 91 (fTPM serial number): missing, but the image holds fTPM "
                                           "records (92-94); the fTPM refuses to start without it");
                else if (chk->sn)
                        ekb_report_problem(rep, "tag 91 (fTPM serial number): missing, and a per-device "
                                           "serial number was asked for");
                if (at[1] < 0 && at[2] < 0 && at[3] < 0)
                        return 0;
        } else {
                const struct ekb_rec *e = &recs[at[0]];
                const unsigned char *v = plain + e->off;
                if (e->len != FTPM_SN_LEN) {
                        ekb_report_problem(rep, "tag 91 (fTPM serial number): %zu bytes; the Device_SN is %d bytes "
                                           "(OEM_ID 2 ‖ SN 8)", e->len, FTPM_SN_LEN);
                        rec_bad(rep, (size_t)at[0], "not 10 bytes");
                } else if (v[2] & 0x80) {
                        hex_encode(v, FTPM_SN_LEN, sn_hex);
                        ekb_report_problem(rep, "tag 91 (fTPM serial number): %s: the SN part is not below 2^63 "
                                           "(kdk_gen's limit)", sn_hex);
                        rec_bad(rep, (size_t)at[0], "SN not below 2^63");
                } else {
                        hex_encode(v, FTPM_SN_LEN, sn_hex);
                        sn = v;
                        if (chk->sn && memcmp(v, chk->sn, FTPM_SN_LEN)) {
                                char want[2 * FTPM_SN_LEN + 1];
                                hex_encode(chk->sn, FTPM_SN_LEN, want);
                                ekb_report_problem(rep, "tag 91 (fTPM serial number): %s, not the device asked "
                                                   "for (%s)", sn_hex, want);
                                rec_bad(rep, (size_t)at[0], "another device's SN");
                        } else {
                                char note[64];
                                snprintf(note, sizeof(note), "%s%s", sn_hex, chk->sn ? " (as asked)" : "");
                                rec_note(rep, (size_t)at[0], note);
                        }
                }
        }
        if (!sn && chk->sn)
                sn = chk->sn;
        if (at[1] >= 0 && recs[at[1]].len != 32) {
                ekb_report_problem(rep, "tag 92 (fTPM EPS seed): %zu bytes; the EPS seed is 32", recs[at[1]].len);
                rec_bad(rep, (size_t)at[1], "not 32 bytes");
        }
        if ((at[2] >= 0 || at[3] >= 0) && chk->ks && chk->keyset_path) {
                const char *role = chk->ca_role ? chk->ca_role : FTPM_EK_CA_ROLE;
                if (keyset_find(chk->ks, role)) {
                        r = identity_ca_load(ctx, chk->ks, chk->keyset_path, role, &ca);
                        if (r < 0)
                                goto out;
                }
        }
        for (int k = 0; k < 2; k++) {
                long i = at[2 + k];
                if (i < 0)
                        continue;
                cert[k] = ek_cert_record(plain + recs[i].off, recs[i].len, 93 + (uint32_t)k, (size_t)i, sn, ca.cert,
                                         rep);
                if (cert[k])
                        rec_note(rep, (size_t)i, ca.cert ? "EK profile, issued by the keyset's EK CA" :
                                                           "EK profile (chain not checked: no EK CA in the keyset)");
        }
        /* The keys: only with the device's KDK0 in the token and its seed. */
        if ((cert[0] || cert[1]) && chk->ks && chk->tok && sn_hex[0] && sn && sn != chk->sn && at[1] >= 0 &&
            recs[at[1]].len == 32) {
                char role[40];
                const struct ks_key *kk;
                snprintf(role, sizeof(role), "ftpm-kdk0-%s", sn_hex);
                kk = keyset_find(chk->ks, role);
                if (kk) {
                        struct fl_secret kdk0 = { 0 };
                        struct ftpm_chain ch = { 0 };
                        unsigned char ec_priv[32], ec_pub[64], nn[256];
                        token_obj obj;
                        r = keyset_key_object(ctx, chk->tok, kk, &obj);
                        if (r == 0)
                                r = token_read_secret(chk->tok, obj, &kdk0);
                        if (r == 0)
                                r = ftpm_chain_derive(ctx, &kdk0, sn, plain + recs[at[1]].off, &ch);
                        secret_wipe(&kdk0);
                        if (r == 0 && cert[1]) {
                                r = ftpm_ek_ec_derive(&ch.eps, ec_priv, ec_pub);
                                OPENSSL_cleanse(ec_priv, sizeof(ec_priv));
                                if (r == 0 && !ek_key_equal(cert[1], false, ec_pub)) {
                                        ekb_report_problem(rep, "tag 94 (fTPM EC EK certificate): its key is not the "
                                                           "EC EK this device's KDK0 (%s) and the EPS seed (tag 92) "
                                                           "give", role);
                                        rec_bad(rep, (size_t)at[3], "not this device's EC EK");
                                } else if (r == 0) {
                                        rec_note(rep, (size_t)at[3], ca.cert ? "EK profile, issued by the keyset's EK "
                                                 "CA, the EC EK of KDK0 and tag 92" : "the EC EK of KDK0 and tag 92");
                                }
                        }
                        if (r == 0 && cert[0]) {
                                r = ftpm_ek_rsa_derive(&ch.eps, nn, NULL);
                                if (r == 0 && !ek_key_equal(cert[0], true, nn)) {
                                        ekb_report_problem(rep, "tag 93 (fTPM RSA EK certificate): its key is not the "
                                                           "RSA EK this device's KDK0 (%s) and the EPS seed (tag 92) "
                                                           "give", role);
                                        rec_bad(rep, (size_t)at[2], "not this device's RSA EK");
                                } else if (r == 0) {
                                        rec_note(rep, (size_t)at[2], ca.cert ? "EK profile, issued by the keyset's "
                                                 "EK CA, the RSA EK of KDK0 and tag 92" : "the RSA EK of KDK0 and "
                                                 "tag 92");
                                }
                        }
                        ftpm_chain_clear(&ch);
                        if (r < 0) {
                                r = fl_err(ctx, r, "device %s: the EK keys could not be re-derived to check tags "
                                           "93/94", sn_hex);
                                goto out;
                        }
                }
        }
        if (at[1] >= 0 && recs[at[1]].len == 32)
                rec_note(rep, (size_t)at[1], "32 bytes (value not shown)");
        r = 0;
out:
        X509_free(cert[0]);
        X509_free(cert[1]);
        identity_ca_clear(&ca);
        return r;
}
