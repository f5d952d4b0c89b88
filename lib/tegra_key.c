/* tegra_key.c — tegra-format public keys and the PublicKeyHash fuse value
 * (shared/reference/jetson-fuses.md §4), the key-type classification of an
 * EVP_PKEY, and the SPKI fingerprint used as a key's identity in manifests.
 * OpenSSL 3 parameter APIs only: the keys may come from a PKCS#11 token as
 * well as from a PEM file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tegra_key.h"

/* T234: the tegra-format key sits in a zero-filled 384-byte buffer (PCP). */
#define T234_PCP_LEN 384
/* T194: rev(n), then the two 384-byte Montgomery values, then 64 zeros. */
#define T194_BUF_LEN 1216
#define RSA3K_BYTES 384
#define P521_COORD 66
#define P521_COORD_PADDED 68
#define TEGRA_PUBKEY_MAX 384

static int ec_curve_nid(EVP_PKEY *pkey)
{
        char group[64];
        size_t glen = 0;

        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen))
                return NID_undef;
        return OBJ_sn2nid(group) != NID_undef ? OBJ_sn2nid(group) : OBJ_ln2nid(group);
}

enum key_type pkey_key_type(EVP_PKEY *pkey)
{
        if (!pkey)
                return KT_NONE;
        if (EVP_PKEY_is_a(pkey, "RSA")) {
                switch (EVP_PKEY_get_bits(pkey)) {
                case 2048:
                        return KT_RSA2K;
                case 3072:
                        return KT_RSA3K;
                default:
                        return KT_NONE;
                }
        }
        if (EVP_PKEY_is_a(pkey, "EC")) {
                switch (ec_curve_nid(pkey)) {
                case NID_X9_62_prime256v1:
                        return KT_P256;
                case NID_secp384r1:
                        return KT_P384;
                case NID_secp521r1:
                        return KT_P521;
                default:
                        return KT_NONE;
                }
        }
        if (EVP_PKEY_is_a(pkey, "ED25519"))
                return KT_ED25519;
        return KT_NONE;
}

/* A human description of any key for error messages ("RSA-4096", "EC
 * secp384r1"). Not key_type_name(): the keys we reject are often the ones
 * that have no key_type at all. */
static void pkey_describe(EVP_PKEY *pkey, char *out, size_t outlen)
{
        char group[64];
        size_t glen = 0;

        if (EVP_PKEY_is_a(pkey, "RSA"))
                snprintf(out, outlen, "RSA-%d", EVP_PKEY_get_bits(pkey));
        else if (EVP_PKEY_is_a(pkey, "EC") &&
                 EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen))
                snprintf(out, outlen, "EC %s", group);
        else
                snprintf(out, outlen, "%s", EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey)
                                                                          : "unknown key type");
}

/* Modulus n as rev(n): the big-endian modulus with the whole array reversed,
 * which is exactly its little-endian encoding. */
static int rsa_rev_n(fl_ctx *ctx, EVP_PKEY *pkey, unsigned char *out, size_t nbytes, BIGNUM **ret_n)
{
        BIGNUM *n = NULL;
        int r;

        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n)) {
                r = fl_err(ctx, -EINVAL, "RSA key: cannot read the modulus: %s", ossl_errstr());
                goto out;
        }
        if (BN_bn2lebinpad(n, out, (int)nbytes) != (int)nbytes) {
                r = fl_err(ctx, -EINVAL, "RSA key: modulus does not fit %zu bytes", nbytes);
                goto out;
        }
        if (ret_n) {
                *ret_n = n;
                n = NULL;
        }
        r = 0;
out:
        BN_free(n);
        return r;
}

/* rev(X) ‖ rev(Y), each coordinate coord bytes, each padded to slot bytes. */
static int ec_rev_xy(fl_ctx *ctx, EVP_PKEY *pkey, size_t coord, size_t slot, unsigned char *out)
{
        BIGNUM *x = NULL, *y = NULL;
        int r;

        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
            !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
                r = fl_err(ctx, -EINVAL, "EC key: cannot read the public point: %s", ossl_errstr());
                goto out;
        }
        memset(out, 0, 2 * slot);
        if (BN_bn2lebinpad(x, out, (int)coord) != (int)coord ||
            BN_bn2lebinpad(y, out + slot, (int)coord) != (int)coord) {
                r = fl_err(ctx, -EINVAL, "EC key: coordinate does not fit %zu bytes", coord);
                goto out;
        }
        r = 0;
out:
        BN_free(x);
        BN_free(y);
        return r;
}

int tegra_pubkey_bytes(fl_ctx *ctx, EVP_PKEY *pkey, unsigned char *out, size_t outcap, size_t *ret_len)
{
        enum key_type kt;
        unsigned char buf[TEGRA_PUBKEY_MAX];
        char desc[80];
        size_t len = 0;
        int r;

        if (!pkey || !out || !ret_len) {
                r = fl_err(ctx, -EINVAL, "tegra_pubkey_bytes: missing argument");
                goto out;
        }
        kt = pkey_key_type(pkey);
        switch (kt) {
        case KT_RSA2K:
        case KT_RSA3K:
                len = kt == KT_RSA2K ? 256 : RSA3K_BYTES;
                r = rsa_rev_n(ctx, pkey, buf, len, NULL);
                break;
        case KT_P256:
                len = 64;
                r = ec_rev_xy(ctx, pkey, 32, 32, buf);
                break;
        case KT_P521:
                /* Coordinates are 66 bytes; the tegra layout gives each a
                 * 68-byte slot (reversed, then two zero bytes). */
                len = 2 * P521_COORD_PADDED;
                r = ec_rev_xy(ctx, pkey, P521_COORD, P521_COORD_PADDED, buf);
                break;
        case KT_ED25519: {
                /* The RFC 8032 encoding as is: not reversed. */
                size_t plen = 0;

                len = 32;
                if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &plen) ||
                    plen != 32)
                        r = fl_err(ctx, -EINVAL, "Ed25519 key: cannot read the 32-byte public key: %s",
                                   ossl_errstr());
                else
                        r = 0;
                break;
        }
        default:
                pkey_describe(pkey, desc, sizeof(desc));
                r = fl_err(ctx, -EINVAL,
                           "%s key has no tegra public-key format (rsa2k, rsa3k, p256, p521, ed25519 have)", desc);
                break;
        }
        if (r < 0)
                goto out;
        if (len > outcap) {
                r = fl_err(ctx, -ENOBUFS, "tegra public key needs %zu bytes, buffer has %zu", len, outcap);
                goto out;
        }
        memcpy(out, buf, len);
        *ret_len = len;
        r = 0;
out:
        return r;
}

/* T194 RSA-3072 Montgomery values: -n^-1 mod 2^3072 and 2^6144 mod n, each
 * 384 bytes little-endian, into out (768 bytes). */
static int t194_montgomery(fl_ctx *ctx, const BIGNUM *n, unsigned char *out)
{
        BN_CTX *bnctx = BN_CTX_new();
        BIGNUM *rr = BN_new(), *ninv = BN_new(), *r2 = BN_new();
        int r;

        if (!bnctx || !rr || !ninv || !r2) {
                r = -ENOMEM;
                goto out;
        }
        /* R = 2^3072; n' = R - (n^-1 mod R); R^2 mod n = 2^6144 mod n. */
        if (!BN_set_bit(rr, 3072) || !BN_mod_inverse(ninv, n, rr, bnctx) || !BN_sub(ninv, rr, ninv) ||
            !BN_set_bit(r2, 6144) || !BN_mod(r2, r2, n, bnctx)) {
                r = fl_err(ctx, -EINVAL, "RSA-3072 key: Montgomery values: %s", ossl_errstr());
                goto out;
        }
        if (BN_bn2lebinpad(ninv, out, RSA3K_BYTES) != RSA3K_BYTES ||
            BN_bn2lebinpad(r2, out + RSA3K_BYTES, RSA3K_BYTES) != RSA3K_BYTES) {
                r = fl_err(ctx, -EINVAL, "RSA-3072 key: Montgomery value does not fit 384 bytes");
                goto out;
        }
        r = 0;
out:
        BN_free(r2);
        BN_free(ninv);
        BN_free(rr);
        BN_CTX_free(bnctx);
        return r;
}

int tegra_rsa_montgomery(fl_ctx *ctx, EVP_PKEY *pkey, unsigned char out[TEGRA_MONT_LEN], size_t *ret_len)
{
        unsigned char rev[RSA3K_BYTES];
        BIGNUM *n = NULL;
        char desc[80];
        int r;

        if (!pkey || !out || !ret_len) {
                r = fl_err(ctx, -EINVAL, "tegra_rsa_montgomery: missing argument");
                goto out;
        }
        /* [U] NVIDIA's vectors cover RSA-3072 only (768 bytes, two 384-byte
         * values); what tegrasign writes for another size is not known, so
         * nothing is written for one. */
        if (pkey_key_type(pkey) != KT_RSA3K) {
                pkey_describe(pkey, desc, sizeof(desc));
                r = fl_err(ctx, -EINVAL, "%s key has no tegra Montgomery values (only rsa3k has)", desc);
                goto out;
        }
        r = rsa_rev_n(ctx, pkey, rev, sizeof(rev), &n);
        if (r < 0)
                goto out;
        r = t194_montgomery(ctx, n, out);
        if (r < 0)
                goto out;
        *ret_len = TEGRA_MONT_LEN;
        r = 0;
out:
        BN_free(n);
        return r;
}

static int digest(fl_ctx *ctx, const EVP_MD *md, const unsigned char *in, size_t len, unsigned char *out,
                  size_t *ret_len)
{
        unsigned int mdlen = 0;

        if (!EVP_Digest(in, len, out, &mdlen, md, NULL))
                return fl_err(ctx, -EIO, "digest failed: %s", ossl_errstr());
        *ret_len = mdlen;
        return 0;
}

int tegra_pkc_hash(fl_ctx *ctx, enum fl_chip chip, EVP_PKEY *pkey, unsigned char out[TEGRA_PKC_HASH_MAX],
                   size_t *ret_len)
{
        unsigned char buf[T194_BUF_LEN];
        unsigned char md[EVP_MAX_MD_SIZE];
        BIGNUM *n = NULL;
        enum key_type kt;
        char desc[80];
        size_t len = 0, mdlen = 0;
        int r;

        if (!pkey || !out || !ret_len) {
                r = fl_err(ctx, -EINVAL, "tegra_pkc_hash: missing argument");
                goto out;
        }
        kt = pkey_key_type(pkey);
        memset(buf, 0, sizeof(buf));
        switch (chip) {
        case FL_CHIP_T234:
                if (kt != KT_RSA3K && kt != KT_P256 && kt != KT_P521 && kt != KT_ED25519) {
                        pkey_describe(pkey, desc, sizeof(desc));
                        r = fl_err(ctx, -EINVAL, "%s key is not accepted as PKC key on t234 (rsa3k, p256, p521)",
                                   desc);
                        goto out;
                }
                if (kt == KT_ED25519)
                        /* [U] The BootROM has an Ed25519 scheme and NVIDIA's
                         * tool hashes it (vectors agree), but Orin production
                         * documentation lists only RSA-3K/P-256/P-521. */
                        fl_log(ctx, FL_LOG_WARN, "Ed25519 PKC key on t234 is undocumented for Orin production [U]");
                r = tegra_pubkey_bytes(ctx, pkey, buf, T234_PCP_LEN, &len);
                if (r < 0)
                        goto out;
                r = digest(ctx, EVP_sha512(), buf, T234_PCP_LEN, md, &mdlen);
                break;
        case FL_CHIP_T194:
                if (kt != KT_RSA2K && kt != KT_RSA3K) {
                        pkey_describe(pkey, desc, sizeof(desc));
                        r = fl_err(ctx, -EINVAL, "%s key is not accepted as PKC key on t194 (rsa2k, rsa3k)", desc);
                        goto out;
                }
                r = rsa_rev_n(ctx, pkey, buf, kt == KT_RSA2K ? 256 : RSA3K_BYTES, &n);
                if (r < 0)
                        goto out;
                /* RSA-2048 carries no Montgomery values: the rest stays zero. */
                if (kt == KT_RSA3K) {
                        r = t194_montgomery(ctx, n, buf + RSA3K_BYTES);
                        if (r < 0)
                                goto out;
                }
                r = digest(ctx, EVP_sha256(), buf, T194_BUF_LEN, md, &mdlen);
                break;
        default:
                r = fl_err(ctx, -EINVAL, "chip 0x%x has no PKC hash (t194, t234 do)", (unsigned)chip);
                goto out;
        }
        if (r < 0)
                goto out;
        memcpy(out, md, mdlen);
        *ret_len = mdlen;
        r = 0;
out:
        BN_free(n);
        return r;
}

int tegra_pkc_hash_hex(fl_ctx *ctx, enum fl_chip chip, EVP_PKEY *pkey, char **ret)
{
        unsigned char h[TEGRA_PKC_HASH_MAX];
        size_t len = 0;
        char *s = NULL;
        int r;

        if (!ret) {
                r = fl_err(ctx, -EINVAL, "tegra_pkc_hash_hex: missing argument");
                goto out;
        }
        r = tegra_pkc_hash(ctx, chip, pkey, h, &len);
        if (r < 0)
                goto out;
        s = malloc(2 + 2 * len + 1);
        if (!s) {
                r = -ENOMEM;
                goto out;
        }
        s[0] = '0';
        s[1] = 'x';
        hex_encode(h, len, s + 2);
        *ret = s;
        s = NULL;
        r = 0;
out:
        free(s);
        return r;
}

int pkey_spki_sha256(fl_ctx *ctx, EVP_PKEY *pkey, char out[65])
{
        unsigned char *der = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        size_t mdlen = 0;
        int derlen, r;

        if (!pkey || !out) {
                r = fl_err(ctx, -EINVAL, "pkey_spki_sha256: missing argument");
                goto out;
        }
        derlen = i2d_PUBKEY(pkey, &der);
        if (derlen <= 0) {
                r = fl_err(ctx, -EINVAL, "cannot encode the public key as SubjectPublicKeyInfo: %s",
                           ossl_errstr());
                goto out;
        }
        r = digest(ctx, EVP_sha256(), der, (size_t)derlen, md, &mdlen);
        if (r < 0)
                goto out;
        hex_encode(md, mdlen, out);
        r = 0;
out:
        OPENSSL_free(der);
        return r;
}

/* No passphrase prompt, ever: a library must not read the tty. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
        (void)buf;
        (void)size;
        (void)rwflag;
        (void)u;
        return -1;
}

int pkey_read_pem(fl_ctx *ctx, const char *path, bool try_public, pem_password_cb *cb, void *u, EVP_PKEY **ret)
{
        struct fl_secret s = { 0 };
        EVP_PKEY *pk = NULL;
        BIO *bio = NULL;
        int r;

        r = file_read_secret(ctx, path, 64 * 1024, &s);
        if (r < 0)
                goto out;
        bio = BIO_new_mem_buf(s.data, (int)s.len);
        if (!bio) {
                r = -ENOMEM;
                goto out;
        }
        if (try_public) {
                pk = PEM_read_bio_PUBKEY(bio, NULL, cb, u);
                if (!pk)
                        (void)BIO_reset(bio);
        }
        if (!pk)
                pk = PEM_read_bio_PrivateKey(bio, NULL, cb, u);
        *ret = pk;
        r = 0;
out:
        BIO_free(bio);
        secret_wipe(&s);
        return r;
}

/* A public key (unless private_only) or an unencrypted private key. */
static int pem_load(fl_ctx *ctx, const char *path, bool private_only, EVP_PKEY **ret)
{
        EVP_PKEY *pk = NULL;
        int r = pkey_read_pem(ctx, path, !private_only, no_password, NULL, &pk);

        if (r < 0)
                return r;
        if (!pk)
                return fl_err(ctx, -EINVAL, "%s: not a%s unencrypted PEM private key (%s)", path,
                              private_only ? "n" : " PEM public key or", ossl_errstr());
        ERR_clear_error(); /* the PUBKEY attempt's failure, if any */
        *ret = pk;
        return 0;
}

int pkey_load_pem(fl_ctx *ctx, const char *path, EVP_PKEY **ret)
{
        return pem_load(ctx, path, false, ret);
}

int pkey_load_private_pem(fl_ctx *ctx, const char *path, EVP_PKEY **ret)
{
        return pem_load(ctx, path, true, ret);
}

int tegra_pkc_hash_file(fl_ctx *ctx, enum fl_chip chip, const char *pem_path, struct pkc_hash_file *ret)
{
        struct pkc_hash_file f = { 0 };
        EVP_PKEY *pk = NULL;
        int r;

        if ((r = pkey_load_pem(ctx, pem_path, &pk)) < 0 || (r = tegra_pkc_hash_hex(ctx, chip, pk, &f.hex)) < 0 ||
            (r = pkey_spki_sha256(ctx, pk, f.spki_sha256)) < 0) {
                if (r == -EINVAL && fl_ctx_last_error(ctx) && !strstr(fl_ctx_last_error(ctx), pem_path)) {
                        char m[FL_ERRMSG_MAX];
                        snprintf(m, sizeof(m), "%s", fl_ctx_last_error(ctx));
                        r = fl_err(ctx, r, "%s: %s", pem_path, m);
                }
                goto out;
        }
        f.type = pkey_key_type(pk);
        *ret = f;
        f.hex = NULL;
        r = 0;
out:
        free(f.hex);
        EVP_PKEY_free(pk);
        return r;
}

void pkc_hash_file_clear(struct pkc_hash_file *f)
{
        if (!f)
                return;
        free(f->hex);
        f->hex = NULL;
}
