/* test-sign.c — lib/sign without a token: the scheme and format tables,
 * streamed hashing of file ranges against OpenSSL's one-shot digest,
 * ECDSA raw<->DER against signatures OpenSSL made (and hand-built DER),
 * verification of OpenSSL-made RSA-PSS/PKCS#1/ECDSA/Ed25519 signatures
 * (including a PSS salt other than the hash length, which must fail), the
 * signature file formats, and the batch-list parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "sign.h"

static fl_ctx *ctx;
static char tmpdir[] = "/tmp/test-sign.XXXXXX";

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
        ctx = NULL;
}

static char *tmp_path(const char *name)
{
        static char buf[8][512];
        static int i;
        char *p = buf[i++ % 8];
        snprintf(p, 512, "%s/%s", tmpdir, name);
        return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
}

static EVP_PKEY *gen_key(const char *alg, const char *param)
{
        EVP_PKEY *pk = NULL;

        if (!strcmp(alg, "RSA"))
                pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(param));
        else if (!strcmp(alg, "EC"))
                pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
        else
                pk = EVP_PKEY_Q_keygen(NULL, NULL, alg);
        ck_assert_ptr_nonnull(pk);
        return pk;
}

/* ---- tables -------------------------------------------------------------- */

START_TEST(t_scheme_names)
{
        static const char *const names[] = { "rsa-pss-sha256", "rsa-pss-sha512", "rsa-pss-sha512-salt32",
                                             "rsa-pkcs1-sha256", "ecdsa-sha256",
                                             "ecdsa-sha384",   "ecdsa-sha512",   "ed25519",          "hmac-sha256",
                                             "aes-cmac" };
        enum sign_scheme s;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                ck_assert_int_eq(sign_scheme_parse(ctx, names[i], &s), 0);
                ck_assert_str_eq(sign_scheme_name(s), names[i]);
        }
        ck_assert_int_eq(sign_scheme_parse(ctx, "rsa-pss", &s), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'rsa-pss'"));
        ck_assert_int_eq(sign_scheme_parse(ctx, "RSA-PSS-SHA256", &s), -EINVAL);
}
END_TEST

START_TEST(t_scheme_defaults)
{
        /* The table: RSA -> PSS-SHA256, P-256/384/521 -> ECDSA with
         * SHA-256/384/512, Ed25519 -> pure Ed25519. */
        ck_assert_int_eq(sign_scheme_default(KT_RSA2K), SCHEME_RSA_PSS_SHA256);
        ck_assert_int_eq(sign_scheme_default(KT_RSA3K), SCHEME_RSA_PSS_SHA256);
        ck_assert_int_eq(sign_scheme_default(KT_P256), SCHEME_ECDSA_SHA256);
        ck_assert_int_eq(sign_scheme_default(KT_P384), SCHEME_ECDSA_SHA384);
        ck_assert_int_eq(sign_scheme_default(KT_P521), SCHEME_ECDSA_SHA512);
        ck_assert_int_eq(sign_scheme_default(KT_ED25519), SCHEME_ED25519);
        ck_assert_int_eq(sign_scheme_default(KT_AES256), SCHEME_AES_CMAC);
        ck_assert_int_eq(sign_scheme_default(KT_GENERIC256), SCHEME_HMAC_SHA256);
        ck_assert_int_eq(sign_scheme_default(KT_NONE), SCHEME_NONE);

        ck_assert_uint_eq(sign_scheme_digest_len(SCHEME_RSA_PSS_SHA512), 64);
        ck_assert_uint_eq(sign_scheme_digest_len(SCHEME_ECDSA_SHA384), 48);
        ck_assert_uint_eq(sign_scheme_digest_len(SCHEME_ED25519), 0);
        ck_assert(sign_scheme_prehashed(SCHEME_ECDSA_SHA256));
        ck_assert(!sign_scheme_prehashed(SCHEME_ED25519));
        ck_assert(!sign_scheme_prehashed(SCHEME_HMAC_SHA256));
        ck_assert(sign_scheme_is_mac(SCHEME_AES_CMAC));
        ck_assert(!sign_scheme_is_mac(SCHEME_RSA_PKCS1_SHA256));
}
END_TEST

START_TEST(t_scheme_key_matrix)
{
        /* Written out by hand: which key types each scheme accepts. */
        static const struct {
                enum sign_scheme s;
                enum key_type t;
                bool ok;
        } m[] = {
                { SCHEME_RSA_PSS_SHA256, KT_RSA3K, true },     { SCHEME_RSA_PSS_SHA256, KT_RSA2K, true },
                { SCHEME_RSA_PSS_SHA256, KT_P256, false },     { SCHEME_RSA_PKCS1_SHA256, KT_ED25519, false },
                { SCHEME_ECDSA_SHA256, KT_P256, true },        { SCHEME_ECDSA_SHA256, KT_P521, true },
                { SCHEME_ECDSA_SHA384, KT_RSA3K, false },      { SCHEME_ECDSA_SHA512, KT_AES256, false },
                { SCHEME_ED25519, KT_ED25519, true },          { SCHEME_ED25519, KT_P256, false },
                { SCHEME_HMAC_SHA256, KT_AES256, true },       { SCHEME_HMAC_SHA256, KT_GENERIC128, true },
                { SCHEME_HMAC_SHA256, KT_RSA3K, false },       { SCHEME_AES_CMAC, KT_AES128, true },
                { SCHEME_AES_CMAC, KT_GENERIC256, false },     { SCHEME_AES_CMAC, KT_P256, false },
                { SCHEME_NONE, KT_P256, false },
        };

        for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
                int r = sign_scheme_check_key(ctx, m[i].s, m[i].t, "role x");
                ck_assert_msg((r == 0) == m[i].ok, "%s with %s: %d", sign_scheme_name(m[i].s), key_type_name(m[i].t), r);
                if (!m[i].ok)
                        ck_assert_int_eq(r, -EINVAL);
        }
        ck_assert_int_eq(sign_scheme_check_key(ctx, SCHEME_ECDSA_SHA256, KT_RSA3K, "role pkc0"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "role pkc0"));
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "rsa3k"));
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "EC key"));
}
END_TEST

START_TEST(t_format_rules)
{
        enum sign_format f;

        ck_assert_int_eq(sign_format_parse(ctx, "tegra", &f), 0);
        ck_assert_int_eq(f, SIGFMT_TEGRA);
        ck_assert_int_eq(sign_format_parse(ctx, "DER", &f), -EINVAL);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_RSA_PSS_SHA256, SIGFMT_TEGRA), 0);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_ED25519, SIGFMT_TEGRA), 0);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_HMAC_SHA256, SIGFMT_TEGRA), 0);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_ECDSA_SHA256, SIGFMT_TEGRA), -EINVAL);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_RSA_PKCS1_SHA256, SIGFMT_TEGRA), -EINVAL);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_AES_CMAC, SIGFMT_PEM), -EINVAL);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_HMAC_SHA256, SIGFMT_DER), -EINVAL);
        ck_assert_int_eq(sign_format_check(ctx, SCHEME_ECDSA_SHA512, SIGFMT_PEM), 0);
}
END_TEST

/* ---- streamed hashing ------------------------------------------------------ */

START_TEST(t_hash_ranges)
{
        /* Crosses the 1 MiB read block several times, with a ragged end. */
        size_t n = 3 * 1024 * 1024 + 17;
        unsigned char *data = malloc(n), want[64], got[EVP_MAX_MD_SIZE];
        const char *path = tmp_path("big.bin");
        static const struct {
                uint64_t off, len;
                bool has_len;
        } rg[] = {
                { 0, 0, false },
                { 1, 0, false },
                { 1024 * 1024 - 1, 2, true },
                { 1024 * 1024, 1024 * 1024, true },
                { 3 * 1024 * 1024 + 16, 1, true },
                { 5, 3 * 1024 * 1024 + 12, true }, /* exactly to the end */
        };
        unsigned int wl;
        size_t gl;

        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(RAND_bytes(data, (int)n), 1);
        write_file(path, data, n);
        for (size_t i = 0; i < sizeof(rg) / sizeof(rg[0]); i++) {
                struct sign_range r = { rg[i].off, rg[i].len, rg[i].has_len };
                size_t len = rg[i].has_len ? rg[i].len : n - rg[i].off;
                const char *mds[] = { "SHA256", "SHA512" };
                for (size_t j = 0; j < 2; j++) {
                        ck_assert_int_eq(EVP_Digest(data + rg[i].off, len, want, &wl, EVP_get_digestbyname(mds[j]), NULL), 1);
                        ck_assert_int_eq(sign_hash_file(ctx, path, &r, mds[j], got, &gl), 0);
                        ck_assert_uint_eq(gl, wl);
                        ck_assert_msg(!memcmp(got, want, wl), "range %zu %s differs", i, mds[j]);
                }
        }
        free(data);
}
END_TEST

START_TEST(t_hash_bad_inputs)
{
        unsigned char out[EVP_MAX_MD_SIZE];
        size_t ol;
        const char *path = tmp_path("ten.bin"), *empty = tmp_path("empty.bin");
        struct sign_range at_end = { 10, 0, false }, past = { 4, 7, true }, zero = { 0, 0, true }, ok = { 9, 1, true };

        write_file(path, "0123456789", 10);
        write_file(empty, "", 0);
        ck_assert_int_eq(sign_hash_file(ctx, path, &ok, "SHA256", out, &ol), 0);
        ck_assert_int_eq(sign_hash_file(ctx, path, &at_end, "SHA256", out, &ol), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "offset 10 is beyond the end"));
        ck_assert_int_eq(sign_hash_file(ctx, path, &past, "SHA256", out, &ol), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "runs past the end"));
        ck_assert_int_eq(sign_hash_file(ctx, path, &zero, "SHA256", out, &ol), -EINVAL);
        ck_assert_int_eq(sign_hash_file(ctx, empty, NULL, "SHA256", out, &ol), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "empty file"));
        ck_assert_int_eq(sign_hash_file(ctx, tmpdir, NULL, "SHA256", out, &ol), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "is a directory"));
        ck_assert_int_eq(sign_hash_file(ctx, tmp_path("missing"), NULL, "SHA256", out, &ol), -ENOENT);
}
END_TEST

START_TEST(t_tbs_rules)
{
        struct sign_tbs t = { 0 };
        unsigned char d32[32] = { 1 };

        write_file(tmp_path("d32"), d32, 32);
        write_file(tmp_path("d31"), d32, 31);
        ck_assert_int_eq(sign_tbs_load(ctx, SCHEME_RSA_PSS_SHA256, tmp_path("d32"), NULL, true, &t), 0);
        ck_assert_uint_eq(t.len, 32);
        ck_assert(!memcmp(t.data, d32, 32));
        sign_tbs_free(&t);
        ck_assert_int_eq(sign_tbs_load(ctx, SCHEME_RSA_PSS_SHA256, tmp_path("d31"), NULL, true, &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "31 bytes"));
        ck_assert_int_eq(sign_tbs_load(ctx, SCHEME_RSA_PSS_SHA512, tmp_path("d32"), NULL, true, &t), -EINVAL);
        ck_assert_int_eq(sign_tbs_load(ctx, SCHEME_ED25519, tmp_path("d32"), NULL, true, &t), -EINVAL);
        ck_assert_int_eq(sign_tbs_load(ctx, SCHEME_HMAC_SHA256, tmp_path("d32"), NULL, true, &t), -EINVAL);
        /* Ed25519/MAC get the message itself. */
        ck_assert_int_eq(sign_tbs_load(ctx, SCHEME_ED25519, tmp_path("d31"), NULL, false, &t), 0);
        ck_assert_uint_eq(t.len, 31);
        sign_tbs_free(&t);
}
END_TEST

/* ---- ECDSA encodings -------------------------------------------------------- */

START_TEST(t_ecdsa_handmade)
{
        /* r = 1, s = 2 on a 32-byte curve: SEQUENCE { INTEGER 1, INTEGER 2 }. */
        static const unsigned char der12[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02 };
        /* r with its top bit set needs a 0x00 pad in DER. */
        static const unsigned char der80[] = { 0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x05 };
        static const unsigned char longform[] = { 0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02 };
        static const unsigned char trailing[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00 };
        static const unsigned char big[] = { 0x30, 0x07, 0x02, 0x02, 0x01, 0x00, 0x02, 0x01, 0x05 };
        static const unsigned char negative[] = { 0x30, 0x06, 0x02, 0x01, 0xff, 0x02, 0x01, 0x02 };
        unsigned char raw[64] = { 0 }, *out = NULL;
        size_t ol = 0;

        raw[31] = 1;
        raw[63] = 2;
        ck_assert_int_eq(sign_ecdsa_raw_to_der(ctx, raw, 64, &out, &ol), 0);
        ck_assert_uint_eq(ol, sizeof(der12));
        ck_assert(!memcmp(out, der12, ol));
        free(out);
        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, der12, sizeof(der12), 32, &out, &ol), 0);
        ck_assert_uint_eq(ol, 64);
        ck_assert(!memcmp(out, raw, 64));
        free(out);

        memset(raw, 0, sizeof(raw));
        raw[31] = 0x80;
        raw[63] = 5;
        ck_assert_int_eq(sign_ecdsa_raw_to_der(ctx, raw, 64, &out, &ol), 0);
        ck_assert_uint_eq(ol, sizeof(der80));
        ck_assert(!memcmp(out, der80, ol));
        free(out);

        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, longform, sizeof(longform), 32, &out, &ol), -EINVAL);
        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, trailing, sizeof(trailing), 32, &out, &ol), -EINVAL);
        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, negative, sizeof(negative), 32, &out, &ol), -EINVAL);
        /* r = 0x0100 does not fit a 1-byte field; 0x80 does. */
        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, big, sizeof(big), 1, &out, &ol), -EINVAL);
        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, der80, sizeof(der80), 1, &out, &ol), 0);
        ck_assert(ol == 2 && out[0] == 0x80 && out[1] == 5);
        free(out);
        ck_assert_int_eq(sign_ecdsa_raw_to_der(ctx, raw, 63, &out, &ol), -EINVAL);
}
END_TEST

/* Sign with OpenSSL (the independent party), run DER -> raw -> DER through
 * the code under test, and verify the raw form. */
static void ecdsa_roundtrip(const char *curve, const char *md, enum sign_scheme s, size_t field)
{
        EVP_PKEY *pk = gen_key("EC", curve);
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        unsigned char msg[100], der[200], dgst[64], *raw = NULL, *der2 = NULL;
        size_t dl = sizeof(der), rl = 0, d2l = 0;
        unsigned int dgl = 0;
        struct sign_tbs tbs;

        ck_assert_int_eq(RAND_bytes(msg, sizeof(msg)), 1);
        ck_assert_int_eq(EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, pk, NULL), 1);
        ck_assert_int_eq(EVP_DigestSign(m, der, &dl, msg, sizeof(msg)), 1);
        ck_assert_int_eq(sign_ecdsa_der_to_raw(ctx, der, dl, field, &raw, &rl), 0);
        ck_assert_uint_eq(rl, 2 * field);
        ck_assert_int_eq(sign_ecdsa_raw_to_der(ctx, raw, rl, &der2, &d2l), 0);
        ck_assert_uint_eq(d2l, dl);
        ck_assert_msg(!memcmp(der2, der, dl), "%s: DER -> raw -> DER changed the bytes", curve);

        ck_assert_int_eq(EVP_Digest(msg, sizeof(msg), dgst, &dgl, EVP_get_digestbyname(md), NULL), 1);
        tbs = (struct sign_tbs){ .data = dgst, .len = dgl, .is_digest = true };
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, s, &tbs, raw, rl), 0);
        raw[rl / 2] ^= 1; /* s changed */
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, s, &tbs, raw, rl), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "signature does not match"));
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "sha256:"));

        free(raw);
        free(der2);
        EVP_MD_CTX_free(m);
        EVP_PKEY_free(pk);
}

START_TEST(t_ecdsa_roundtrip)
{
        for (int i = 0; i < 8; i++) { /* different r/s lengths, incl. DER padding */
                ecdsa_roundtrip("P-256", "SHA256", SCHEME_ECDSA_SHA256, 32);
                ecdsa_roundtrip("P-384", "SHA384", SCHEME_ECDSA_SHA384, 48);
                ecdsa_roundtrip("P-521", "SHA512", SCHEME_ECDSA_SHA512, 66);
        }
}
END_TEST

/* ---- RSA and Ed25519 verification ------------------------------------------- */

static size_t rsa_sign(EVP_PKEY *pk, int pad, const char *md, int salt, const unsigned char *dg, size_t dgl,
                       unsigned char *sig)
{
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        size_t sl = 1024;

        ck_assert_int_eq(EVP_PKEY_sign_init(c), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, pad), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_signature_md(c, EVP_get_digestbyname(md)), 1);
        if (pad == RSA_PKCS1_PSS_PADDING) {
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_get_digestbyname(md)), 1);
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, salt), 1);
        }
        ck_assert_int_eq(EVP_PKEY_sign(c, sig, &sl, dg, dgl), 1);
        EVP_PKEY_CTX_free(c);
        return sl;
}

START_TEST(t_verify_rsa)
{
        EVP_PKEY *pk = gen_key("RSA", "2048");
        unsigned char d32[32], d64[64], sig[1024];
        struct sign_tbs t32 = { .data = d32, .len = 32, .is_digest = true }, t64 = { .data = d64, .len = 64, .is_digest = true };
        size_t sl;

        ck_assert_int_eq(RAND_bytes(d32, 32), 1);
        ck_assert_int_eq(RAND_bytes(d64, 64), 1);
        sl = rsa_sign(pk, RSA_PKCS1_PSS_PADDING, "SHA256", 32, d32, 32, sig);
        ck_assert_uint_eq(sl, 256);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA256, &t32, sig, sl), 0);
        /* The same signature is not a PKCS#1 v1.5 one. */
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PKCS1_SHA256, &t32, sig, sl), -EBADMSG);

        /* A valid PSS signature with a 20-byte salt: the BootROM's rule is
         * salt = hash length, so it must not verify. */
        sl = rsa_sign(pk, RSA_PKCS1_PSS_PADDING, "SHA256", 20, d32, 32, sig);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA256, &t32, sig, sl), -EBADMSG);

        sl = rsa_sign(pk, RSA_PKCS1_PSS_PADDING, "SHA512", 64, d64, 64, sig);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA512, &t64, sig, sl), 0);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA256, &t32, sig, sl), -EBADMSG);
        /* tegrasign's --sha sha512 form pins salt 32: a salt-64 signature
         * is not one, and a salt-32 one is not rsa-pss-sha512. */
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA512_SALT32, &t64, sig, sl), -EBADMSG);
        sl = rsa_sign(pk, RSA_PKCS1_PSS_PADDING, "SHA512", 32, d64, 64, sig);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA512_SALT32, &t64, sig, sl), 0);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PSS_SHA512, &t64, sig, sl), -EBADMSG);
        ck_assert_uint_eq(sign_scheme_digest_len(SCHEME_RSA_PSS_SHA512_SALT32), 64);

        sl = rsa_sign(pk, RSA_PKCS1_PADDING, "SHA256", 0, d32, 32, sig);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PKCS1_SHA256, &t32, sig, sl), 0);
        d32[0] ^= 1;
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_RSA_PKCS1_SHA256, &t32, sig, sl), -EBADMSG);

        /* Wrong key type for the scheme. */
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_ECDSA_SHA256, &t32, sig, sl), -EINVAL);
        EVP_PKEY_free(pk);
}
END_TEST

START_TEST(t_verify_ed25519)
{
        EVP_PKEY *pk = gen_key("ED25519", NULL);
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        unsigned char msg[333], sig[64];
        size_t sl = sizeof(sig);
        struct sign_tbs t = { .data = msg, .len = sizeof(msg), .is_digest = false };

        ck_assert_int_eq(RAND_bytes(msg, sizeof(msg)), 1);
        ck_assert_int_eq(EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, pk, NULL), 1);
        ck_assert_int_eq(EVP_DigestSign(m, sig, &sl, msg, sizeof(msg)), 1);
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_ED25519, &t, sig, sl), 0);
        msg[332] ^= 0x80;
        ck_assert_int_eq(sign_verify_pkey(ctx, pk, SCHEME_ED25519, &t, sig, sl), -EBADMSG);
        EVP_MD_CTX_free(m);
        EVP_PKEY_free(pk);
}
END_TEST

/* ---- file formats --------------------------------------------------------------- */

START_TEST(t_formats)
{
        unsigned char raw[384], *enc = NULL, *dec = NULL;
        size_t el = 0, dl = 0;

        for (size_t i = 0; i < sizeof(raw); i++)
                raw[i] = (unsigned char)(i * 7 + 1);
        /* tegra RSA-PSS: byte-reversed (jetson-fuses.md §4). */
        ck_assert_int_eq(sign_encode(ctx, SCHEME_RSA_PSS_SHA256, SIGFMT_TEGRA, raw, 384, &enc, &el), 0);
        ck_assert_uint_eq(el, 384);
        for (size_t i = 0; i < 384; i++)
                ck_assert_uint_eq(enc[i], raw[383 - i]);
        ck_assert_int_eq(sign_decode(ctx, "x", SCHEME_RSA_PSS_SHA256, SIGFMT_TEGRA, 384, enc, el, &dec, &dl), 0);
        ck_assert(!memcmp(dec, raw, 384));
        free(enc);
        free(dec);
        /* Ed25519 tegra and MACs are unchanged. */
        ck_assert_int_eq(sign_encode(ctx, SCHEME_ED25519, SIGFMT_TEGRA, raw, 64, &enc, &el), 0);
        ck_assert(el == 64 && !memcmp(enc, raw, 64));
        free(enc);
        ck_assert_int_eq(sign_encode(ctx, SCHEME_HMAC_SHA256, SIGFMT_TEGRA, raw, 32, &enc, &el), 0);
        ck_assert(el == 32 && !memcmp(enc, raw, 32));
        free(enc);

        /* PEM: armour, then back (auto-detected). */
        ck_assert_int_eq(sign_encode(ctx, SCHEME_RSA_PSS_SHA256, SIGFMT_PEM, raw, 384, &enc, &el), 0);
        ck_assert(el > 30 && !memcmp(enc, "-----BEGIN SIGNATURE-----\n", 26));
        ck_assert_int_eq(sign_decode(ctx, "x", SCHEME_RSA_PSS_SHA256, SIGFMT_AUTO, 384, enc, el, &dec, &dl), 0);
        ck_assert(dl == 384 && !memcmp(dec, raw, 384));
        free(dec);
        /* PEM of another label is refused. */
        memcpy(enc + 11, "SIGNATURX", 9);
        ck_assert_int_eq(sign_decode(ctx, "x", SCHEME_RSA_PSS_SHA256, SIGFMT_PEM, 384, enc, el, &dec, &dl), -EINVAL);
        free(enc);

        /* Wrong length: a clear message naming the file and both sizes. */
        ck_assert_int_eq(sign_decode(ctx, "sig.bin", SCHEME_RSA_PSS_SHA256, SIGFMT_RAW, 384, raw, 383, &dec, &dl),
                         -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "sig.bin: 383 bytes"));
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "are 384 bytes"));

        /* ECDSA: raw by length, DER otherwise. */
        {
                unsigned char r64[64] = { 0 };
                r64[31] = 1;
                r64[63] = 2;
                ck_assert_int_eq(sign_encode(ctx, SCHEME_ECDSA_SHA256, SIGFMT_DER, r64, 64, &enc, &el), 0);
                ck_assert_uint_eq(el, 8);
                ck_assert_int_eq(sign_decode(ctx, "x", SCHEME_ECDSA_SHA256, SIGFMT_AUTO, 64, enc, el, &dec, &dl), 0);
                ck_assert(dl == 64 && !memcmp(dec, r64, 64));
                free(dec);
                free(enc);
                ck_assert_int_eq(sign_decode(ctx, "x", SCHEME_ECDSA_SHA256, SIGFMT_AUTO, 64, r64, 64, &dec, &dl), 0);
                ck_assert(dl == 64 && !memcmp(dec, r64, 64));
                free(dec);
                ck_assert_int_eq(sign_encode(ctx, SCHEME_ECDSA_SHA256, SIGFMT_TEGRA, r64, 64, &enc, &el), -EINVAL);
                ck_assert_int_eq(sign_decode(ctx, "x", SCHEME_ECDSA_SHA256, SIGFMT_DER, 64, r64, 64, &dec, &dl), -EINVAL);
        }
}
END_TEST

/* ---- batch lists ------------------------------------------------------------------- */

START_TEST(t_batch_parse)
{
        static const char good[] = "# comment\n"
                                   "a.bin a.sig\n"
                                   "\n"
                                   "  b.bin\tb.mac   sbk  \r\n"
                                   "c.bin c.sig # not a comment here? no: a 4th field\n";
        static const char ok[] = "# only\n a b\nc d pkc1";
        struct sign_batch_entry *e = NULL;
        size_t n = 0;

        ck_assert_int_eq(sign_batch_parse(ctx, "list", ok, strlen(ok), &e, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(e[0].in, "a");
        ck_assert_str_eq(e[0].out, "b");
        ck_assert_ptr_null(e[0].role);
        ck_assert_uint_eq(e[0].line, 2);
        ck_assert_str_eq(e[1].role, "pkc1");
        ck_assert_uint_eq(e[1].line, 3);
        sign_batch_free(e, n);

        ck_assert_int_eq(sign_batch_parse(ctx, "list", good, 44, &e, &n), 0); /* first 3 lines + 4th */
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(e[1].in, "b.bin");
        ck_assert_str_eq(e[1].out, "b.mac");
        ck_assert_str_eq(e[1].role, "sbk");
        ck_assert_uint_eq(e[1].line, 4);
        sign_batch_free(e, n);

        ck_assert_int_eq(sign_batch_parse(ctx, "list", good, strlen(good), &e, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "list:5:"));
        ck_assert_int_eq(sign_batch_parse(ctx, "l", "only-one\n", 9, &e, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "l:1: expected"));
        ck_assert_int_eq(sign_batch_parse(ctx, "l", "# nothing\n\n", 11, &e, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "no entries"));
        ck_assert_int_eq(sign_batch_parse(ctx, "l", "a b\0c", 5, &e, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "NUL"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("sign");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, t_scheme_names);
        tcase_add_test(tc, t_scheme_defaults);
        tcase_add_test(tc, t_scheme_key_matrix);
        tcase_add_test(tc, t_format_rules);
        tcase_add_test(tc, t_hash_ranges);
        tcase_add_test(tc, t_hash_bad_inputs);
        tcase_add_test(tc, t_tbs_rules);
        tcase_add_test(tc, t_ecdsa_handmade);
        tcase_add_test(tc, t_ecdsa_roundtrip);
        tcase_add_test(tc, t_verify_rsa);
        tcase_add_test(tc, t_verify_ed25519);
        tcase_add_test(tc, t_formats);
        tcase_add_test(tc, t_batch_parse);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", tmpdir);
        }
        return failed ? 1 : 0;
}
