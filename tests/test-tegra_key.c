/* test-tegra_key.c — PKC hashes against NVIDIA-computed values
 * (tests/vectors/pkc-hash/VECTORS.txt), key-type rules per chip, tegra
 * public-key layouts against the DER SubjectPublicKeyInfo, and the SPKI
 * fingerprint against values computed with the openssl CLI. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tegra_key.h"

static fl_ctx *ctx;

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
        ctx = NULL;
}

static EVP_PKEY *load_vector_key(const char *file)
{
        const char *dir = getenv("VECTORS");
        char path[4096];
        EVP_PKEY *pkey;
        BIO *bio;

        ck_assert_msg(dir != NULL, "VECTORS is not set");
        snprintf(path, sizeof(path), "%s/pkc-hash/%s", dir, file);
        bio = BIO_new_file(path, "r");
        ck_assert_msg(bio != NULL, "cannot open %s", path);
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ck_assert_msg(pkey != NULL, "cannot parse %s", path);
        return pkey;
}

/* Every line of VECTORS.txt: "file chip 0x…" — hash and compare. */
START_TEST(t_vectors)
{
        const char *dir = getenv("VECTORS");
        char path[4096], line[1024];
        int checked = 0;
        FILE *f;

        ck_assert_ptr_nonnull(dir);
        snprintf(path, sizeof(path), "%s/pkc-hash/VECTORS.txt", dir);
        f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        while (fgets(line, sizeof(line), f)) {
                char file[256], chipname[16], want[200];
                char *got = NULL;
                EVP_PKEY *pkey;

                if (line[0] == '#' || sscanf(line, "%255s %15s %199s", file, chipname, want) != 3)
                        continue;
                pkey = load_vector_key(file);
                ck_assert_int_eq(tegra_pkc_hash_hex(ctx, chip_from_name(chipname), pkey, &got), 0);
                ck_assert_msg(strcmp(got, want) == 0, "%s on %s: got %s want %s", file, chipname, got, want);
                free(got);
                EVP_PKEY_free(pkey);
                checked++;
        }
        fclose(f);
        ck_assert_int_eq(checked, 6);
}
END_TEST

/* Raw-bytes form: length per chip and equality with the hex form. */
START_TEST(t_hash_len)
{
        unsigned char h[TEGRA_PKC_HASH_MAX];
        size_t len = 0;
        EVP_PKEY *k3 = load_vector_key("t194-rsa3k.pem");

        ck_assert_int_eq(tegra_pkc_hash(ctx, FL_CHIP_T194, k3, h, &len), 0);
        ck_assert_uint_eq(len, 32);
        /* NVIDIA's value for this key begins 8d26f7b6. */
        ck_assert_uint_eq(h[0], 0x8d);
        ck_assert_uint_eq(h[3], 0xb6);
        ck_assert_int_eq(tegra_pkc_hash(ctx, FL_CHIP_T234, k3, h, &len), 0);
        ck_assert_uint_eq(len, 64);
        EVP_PKEY_free(k3);
}
END_TEST

static void expect_reject(enum fl_chip chip, EVP_PKEY *pkey, const char *want_in_msg)
{
        unsigned char h[TEGRA_PKC_HASH_MAX];
        size_t len = 12345;
        char *hex = (char *)"untouched";
        const char *msg;

        fl_err_clear(ctx);
        ck_assert_int_eq(tegra_pkc_hash(ctx, chip, pkey, h, &len), -EINVAL);
        ck_assert_uint_eq(len, 12345); /* ret_* untouched on failure */
        msg = fl_ctx_last_error(ctx);
        ck_assert_ptr_nonnull(msg);
        ck_assert_msg(strstr(msg, want_in_msg) != NULL, "message '%s' lacks '%s'", msg, want_in_msg);
        ck_assert_msg(strstr(msg, chip_name(chip)) != NULL, "message '%s' lacks the chip", msg);
        ck_assert_ptr_eq(strchr(msg, '\n'), NULL);
        ck_assert_int_eq(tegra_pkc_hash_hex(ctx, chip, pkey, &hex), -EINVAL);
        ck_assert_str_eq(hex, "untouched");
}

START_TEST(t_reject_rsa4096)
{
        EVP_PKEY *k = EVP_RSA_gen(4096);

        ck_assert_ptr_nonnull(k);
        ck_assert_int_eq(pkey_key_type(k), KT_NONE);
        expect_reject(FL_CHIP_T234, k, "RSA-4096");
        expect_reject(FL_CHIP_T194, k, "RSA-4096");
        EVP_PKEY_free(k);
}
END_TEST

START_TEST(t_reject_t234)
{
        EVP_PKEY *p384 = EVP_EC_gen("P-384");
        EVP_PKEY *rsa2k = load_vector_key("t194-rsa2k.pem");

        ck_assert_ptr_nonnull(p384);
        ck_assert_int_eq(pkey_key_type(p384), KT_P384);
        expect_reject(FL_CHIP_T234, p384, "secp384r1");
        /* RSA-2048 is not supported on Orin. */
        expect_reject(FL_CHIP_T234, rsa2k, "RSA-2048");
        EVP_PKEY_free(p384);
        EVP_PKEY_free(rsa2k);
}
END_TEST

START_TEST(t_reject_t194)
{
        EVP_PKEY *p256 = load_vector_key("t234-p256.pem");
        EVP_PKEY *p521 = load_vector_key("t234-p521.pem");
        EVP_PKEY *ed = load_vector_key("t234-ed25519.pem");

        expect_reject(FL_CHIP_T194, p256, "prime256v1");
        expect_reject(FL_CHIP_T194, p521, "secp521r1");
        expect_reject(FL_CHIP_T194, ed, "ED25519");
        EVP_PKEY_free(p256);
        EVP_PKEY_free(p521);
        EVP_PKEY_free(ed);
}
END_TEST

START_TEST(t_reject_chip)
{
        unsigned char h[TEGRA_PKC_HASH_MAX];
        size_t len = 0;
        EVP_PKEY *k = load_vector_key("t234-rsa3k.pem");

        ck_assert_int_eq(tegra_pkc_hash(ctx, FL_CHIP_NONE, k, h, &len), -EINVAL);
        ck_assert_int_eq(tegra_pkc_hash(ctx, (enum fl_chip)0x21, k, h, &len), -EINVAL);
        EVP_PKEY_free(k);
}
END_TEST

START_TEST(t_key_types)
{
        static const struct {
                const char *file;
                enum key_type kt;
        } v[] = {
                { "t194-rsa2k.pem", KT_RSA2K },  { "t194-rsa3k.pem", KT_RSA3K }, { "t234-rsa3k.pem", KT_RSA3K },
                { "t234-p256.pem", KT_P256 },    { "t234-p521.pem", KT_P521 },   { "t234-ed25519.pem", KT_ED25519 },
        };
        EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");

        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                EVP_PKEY *k = load_vector_key(v[i].file);

                ck_assert_msg(pkey_key_type(k) == v[i].kt, "%s", v[i].file);
                EVP_PKEY_free(k);
        }
        ck_assert_ptr_nonnull(x25519);
        ck_assert_int_eq(pkey_key_type(x25519), KT_NONE);
        ck_assert_int_eq(pkey_key_type(NULL), KT_NONE);
        EVP_PKEY_free(x25519);
}
END_TEST

/* The tegra layout derived from a different path: the DER SPKI as the
 * encoder writes it (EC: 04‖X‖Y at the end; Ed25519: the last 32 bytes). */
static size_t spki(EVP_PKEY *k, unsigned char **der)
{
        int n = i2d_PUBKEY(k, der);

        ck_assert_int_gt(n, 0);
        return (size_t)n;
}

START_TEST(t_pubkey_ec_layout)
{
        static const struct {
                const char *curve;
                size_t coord, slot;
        } v[] = { { "P-256", 32, 32 }, { "P-521", 66, 68 } };

        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                EVP_PKEY *k = EVP_EC_gen(v[i].curve);
                unsigned char out[400], *der = NULL;
                size_t len = 0, dlen;
                const unsigned char *pt;

                ck_assert_ptr_nonnull(k);
                ck_assert_int_eq(tegra_pubkey_bytes(ctx, k, out, sizeof(out), &len), 0);
                ck_assert_uint_eq(len, 2 * v[i].slot);
                dlen = spki(k, &der);
                pt = der + dlen - (2 * v[i].coord + 1);
                ck_assert_uint_eq(pt[0], 0x04);
                for (size_t j = 0; j < v[i].coord; j++) {
                        ck_assert_uint_eq(out[j], pt[1 + v[i].coord - 1 - j]);
                        ck_assert_uint_eq(out[v[i].slot + j], pt[1 + 2 * v[i].coord - 1 - j]);
                }
                for (size_t j = v[i].coord; j < v[i].slot; j++) {
                        ck_assert_uint_eq(out[j], 0);
                        ck_assert_uint_eq(out[v[i].slot + j], 0);
                }
                OPENSSL_free(der);
                EVP_PKEY_free(k);
        }
}
END_TEST

START_TEST(t_pubkey_ed25519_rsa)
{
        EVP_PKEY *ed = load_vector_key("t234-ed25519.pem");
        EVP_PKEY *rsa = load_vector_key("t234-rsa3k.pem");
        unsigned char out[400], *der = NULL;
        size_t len = 0, dlen;

        ck_assert_int_eq(tegra_pubkey_bytes(ctx, ed, out, sizeof(out), &len), 0);
        ck_assert_uint_eq(len, 32);
        dlen = spki(ed, &der);
        ck_assert_mem_eq(out, der + dlen - 32, 32);
        OPENSSL_free(der);
        der = NULL;

        /* RSA SPKI ends with INTEGER n (0x00-led, 385 bytes) then INTEGER e
         * (02 03 01 00 01); rev(n) must mirror those 384 bytes. */
        ck_assert_int_eq(tegra_pubkey_bytes(ctx, rsa, out, sizeof(out), &len), 0);
        ck_assert_uint_eq(len, 384);
        dlen = spki(rsa, &der);
        ck_assert_mem_eq(der + dlen - 5, "\x02\x03\x01\x00\x01", 5);
        for (size_t j = 0; j < 384; j++)
                ck_assert_uint_eq(out[j], der[dlen - 5 - 1 - j]);
        OPENSSL_free(der);

        /* Too small a buffer: refused, nothing written to ret_len. */
        len = 7;
        ck_assert_int_eq(tegra_pubkey_bytes(ctx, rsa, out, 383, &len), -ENOBUFS);
        ck_assert_uint_eq(len, 7);
        EVP_PKEY_free(ed);
        EVP_PKEY_free(rsa);
}
END_TEST

/* Expected: openssl pkey -in F -pubout -outform DER | openssl dgst -sha256 */
START_TEST(t_spki_sha256)
{
        static const struct {
                const char *file, *want;
        } v[] = {
                { "t194-rsa2k.pem", "9738d8d90e3270f46bf2f60b7a192af00842f9b8bfbbd5a21b7e9ca0cdb645a9" },
                { "t194-rsa3k.pem", "2971ea41b2bcf08e8bf3f0314c9faaed27b0beea887317cb3b98ef9a48a434d6" },
                { "t234-ed25519.pem", "12d658b587989a16492b8dd1c0bd8c9ab76251eb15e700da12cf0901160e0c40" },
                { "t234-p256.pem", "fb4ff55021879c3ce1d97fe4684fb7cc40fba62c9bebe65bc7cf204cb809582d" },
                { "t234-p521.pem", "a7eb86bef24da1352ee43e1973659b1ca1b06fe201e098119e1dc1e818f5dcc6" },
                { "t234-rsa3k.pem", "2a4ef09301d2a4035f3ee9a06e3c317bdf7f2d6e8d4d22066b275a87ec2dbce2" },
        };

        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                EVP_PKEY *k = load_vector_key(v[i].file);
                char got[65];

                ck_assert_int_eq(pkey_spki_sha256(ctx, k, got), 0);
                ck_assert_str_eq(got, v[i].want);
                EVP_PKEY_free(k);
        }
}
END_TEST


/* NVIDIA's tegrasign_v3 --pubkeyhash / --getmont files for the same keys
 * (tests/vectors/tegrasign): the tegra-format keys and the Montgomery values,
 * byte for byte. */
static size_t read_vector(const char *file, unsigned char *buf, size_t cap)
{
        const char *dir = getenv("VECTORS");
        char path[4096];
        FILE *f;
        size_t n;

        ck_assert_msg(dir != NULL, "VECTORS is not set");
        snprintf(path, sizeof(path), "%s/tegrasign/%s", dir, file);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        n = fread(buf, 1, cap, f);
        fclose(f);
        return n;
}

START_TEST(t_tegrasign_files)
{
        static const struct {
                const char *key, *pub;
        } v[] = {
                { "t234-rsa3k.pem", "t234-rsa3k.pub.bin" },
                { "t234-p256.pem", "t234-p256.pub.bin" },
                { "t234-ed25519.pem", "t234-ed25519.pub.bin" },
        };
        unsigned char want[1024], got[TEGRA_MONT_LEN];
        size_t wl, gl = 0;
        EVP_PKEY *k;

        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                k = load_vector_key(v[i].key);
                wl = read_vector(v[i].pub, want, sizeof(want));
                ck_assert_int_eq(tegra_pubkey_bytes(ctx, k, got, sizeof(got), &gl), 0);
                ck_assert_uint_eq(gl, wl);
                ck_assert_mem_eq(got, want, wl);
                EVP_PKEY_free(k);
        }
        k = load_vector_key("t234-rsa3k.pem");
        wl = read_vector("t234-rsa3k.mont.bin", want, sizeof(want));
        ck_assert_uint_eq(wl, TEGRA_MONT_LEN);
        ck_assert_int_eq(tegra_rsa_montgomery(ctx, k, got, &gl), 0);
        ck_assert_uint_eq(gl, TEGRA_MONT_LEN);
        ck_assert_mem_eq(got, want, TEGRA_MONT_LEN);
        EVP_PKEY_free(k);
        /* [U] other key types: refused, naming the key. */
        k = load_vector_key("t234-p256.pem");
        ck_assert_int_eq(tegra_rsa_montgomery(ctx, k, got, &gl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "EC prime256v1 key has no tegra Montgomery values"));
        EVP_PKEY_free(k);
        k = load_vector_key("t194-rsa2k.pem");
        ck_assert_int_eq(tegra_rsa_montgomery(ctx, k, got, &gl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "RSA-2048"));
        EVP_PKEY_free(k);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("tegra_key");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, t_vectors);
        tcase_add_test(tc, t_hash_len);
        tcase_add_test(tc, t_reject_rsa4096);
        tcase_add_test(tc, t_reject_t234);
        tcase_add_test(tc, t_reject_t194);
        tcase_add_test(tc, t_reject_chip);
        tcase_add_test(tc, t_key_types);
        tcase_add_test(tc, t_pubkey_ec_layout);
        tcase_add_test(tc, t_pubkey_ed25519_rsa);
        tcase_add_test(tc, t_spki_sha256);
        tcase_add_test(tc, t_tegrasign_files);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
