/* test-ftpm.c — the fTPM derivation chain against vector set B (NVIDIA's
 * kdk_gen.py / odm_ekb_gen.py run on a made-up device, every intermediate
 * listed in tests/vectors/ekb/VECTORS.txt), and the serial number forms. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>

#include "ftpm.h"

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

static void hex_is(const unsigned char *v, size_t len, const char *want)
{
        char got[2 * 64 + 1];
        ck_assert_uint_le(len, 64);
        hex_encode(v, len, got);
        ck_assert_str_eq(got, want);
}

static void unhex(const char *h, unsigned char *out, size_t len)
{
        size_t n = 0;
        ck_assert_int_eq(hex_decode(h, out, len, &n), 0);
        ck_assert_uint_eq(n, len);
}

START_TEST(t_set_b_chain)
{
        struct fl_secret kdk0 = { 0 };
        unsigned char sn[FTPM_SN_LEN], eps_seed[32];
        struct ftpm_chain c;

        ck_assert_int_eq(secret_alloc(&kdk0, 32), 0);
        unhex("51d8800c3b3dcbfed61dd29c81630647da61c5879509ae019a9f891665aaeac4", kdk0.data, 32);
        unhex("3329f3a3c5f324b8c8a204eefc28052b959129ed2ae66e30fdb23f62fdbdf6c2", eps_seed, 32);
        ck_assert_int_eq(ftpm_device_sn(ctx, 0x1234, 0x00c0ffee12345678ULL, sn), 0);
        hex_is(sn, sizeof(sn), "123400c0ffee12345678");
        ck_assert_int_eq(ftpm_chain_derive(ctx, &kdk0, sn, eps_seed, &c), 0);
        hex_is(c.kdk_nrk.data, 32, "01abb8f5fb4e8bb84426d476c767a75a9238e1d0b2a731227b2c3bc0c4e10270");
        hex_is(c.silicon_id.data, 32, "a03598666a03d5ad978736810a8d2d1d0c342512b73176f2389f71df5b271066");
        hex_is(c.ftpm_seed.data, 32, "58c27dd05c1a544327cfa0db42f1628aad874bfb336098eaf8beeb113823a92d");
        hex_is(c.root_seed.data, 64,
               "2c400762fb6356674104a7daa1b7f21b982fdd94d75de51ae7e8d6b1cd7ae8c4"
               "a197cc21b301a4fe4227e30472fbb5231f5b8071a94c9ff924e97f42b2ebfbb9");
        hex_is(c.eps.data, 64,
               "1ddec3e2099bd546038b642c232d7cd045f874db75b66a7299c7705bd8f94825"
               "7192821d0f845521404f6883533d8c46c73fd04c9c8521300d0a3a49419eb30c");
        hex_is(c.sid_priv.data, 32, "3415954e1a12590eae81c3f9ff7f10475937d48ec86b12d9120262afc03c76eb");
        hex_is(c.sid_pub, 64,
               "db82196beb3e061dc6f40998f59d47509a503b2f786f4fa0f97d67f0008acf85"
               "5488ec9d29f3000d235054da5a78861bf5bf77fbd959519132b4da5bfa3e07f2");
        ftpm_chain_clear(&c);
        secret_wipe(&kdk0);
}
END_TEST

START_TEST(t_kbkdf_intermediate)
{
        /* fTPM_seed_origin = KBKDF(Silicon_ID, "fTPM", 00) of set B. */
        unsigned char sid[32], out[32];
        unhex("a03598666a03d5ad978736810a8d2d1d0c342512b73176f2389f71df5b271066", sid, 32);
        ck_assert_int_eq(ftpm_kbkdf(sid, 32, "fTPM", NULL, 0, out), 0);
        hex_is(out, 32, "35b83b3b23ae4753fdaee0a1d284c3fd524e20b20bb84aac3251f08288792a01");
        ck_assert_int_eq(ftpm_kbkdf(sid, 32, "Asym", NULL, 0, out), 0);
        hex_is(out, 32, "fef9146e43ea0f76222f86f374d63ab894ab52c60535ec0b7b8d3a751e17e33b");
}
END_TEST

START_TEST(t_ek_ec_set_b)
{
        /* Set B's EPS; the EC EK point as NVIDIA's tool printed it (VECTORS.txt). */
        struct fl_secret eps = { 0 };
        unsigned char priv[32], pub[64];
        ck_assert_int_eq(secret_alloc(&eps, 64), 0);
        unhex("1ddec3e2099bd546038b642c232d7cd045f874db75b66a7299c7705bd8f94825"
              "7192821d0f845521404f6883533d8c46c73fd04c9c8521300d0a3a49419eb30c",
              eps.data, 64);
        ck_assert_int_eq(ftpm_ek_ec_derive(&eps, priv, pub), 0);
        hex_is(pub, 64,
               "13564c095576c7d022a0a950e69ff0c087cce8b90d89b290f7049d1a85c62bee"
               "0ccbcd8e1cf6f568b4c1948ebe2e60f7215d1a857da7edb3f12fd814a9f8e292");
        eps.data[0] ^= 1;
        ck_assert_int_eq(ftpm_ek_ec_derive(&eps, priv, pub), 0);
        ck_assert(memcmp(pub, "\x13\x56\x4c\x09", 4) != 0);
        secret_wipe(&eps);
}
END_TEST

START_TEST(t_ek_rsa_set_b)
{
        /* Set B's EPS; the RSA EK modulus of NVIDIA's ftpm_keys.txt
         * (openssl rsa -pubin -modulus), e = 65537. */
        static const char want[] =
               "bcda6bccb043909181dc99c772a926b6996e258834066fa9e04bbb40d57866a0"
               "57c2ad8680a68055bdb7fff73f2ab8965ee8a182fd7ad214fbc8f4cff56e14d6"
               "256d211320e341075ac65bbaffeb8cb18e9481fe58b8c32f17a0f4527924b9ea"
               "20d14a6fce58474f126d161c78c48e62559839e07eea3e5e482309e10c6823e2"
               "73b14689ddd14aaf1bac8af6b2aec244de3b81b5b15eed538b138a8bb47ef940"
               "5b3fb6df06975ba494c7c83f53f9d2914f1c60c6449e8c9e33a6118a109810c9"
               "cd326ea81783cb87431e48a005d65d025b80f9b4b7b064157ad50dc7953dc733"
               "396682949b029beda65dba212e45c1b33efeb59a47280785fdb323d370cba07f";
        struct fl_secret eps = { 0 };
        unsigned char n[256], n2[256], msg[32] = { 1 }, sig[256];
        char got[2 * 256 + 1];
        EVP_PKEY *pk = NULL;
        EVP_PKEY_CTX *pc;
        BIGNUM *e = NULL, *bn = NULL;
        size_t siglen = sizeof(sig);

        ck_assert_int_eq(secret_alloc(&eps, 64), 0);
        unhex("1ddec3e2099bd546038b642c232d7cd045f874db75b66a7299c7705bd8f94825"
              "7192821d0f845521404f6883533d8c46c73fd04c9c8521300d0a3a49419eb30c",
              eps.data, 64);
        ck_assert_int_eq(ftpm_ek_rsa_derive(&eps, n, &pk), 0);
        hex_encode(n, sizeof(n), got);
        ck_assert_str_eq(got, want);
        /* The key pair is whole: same modulus, e = 65537, it signs and verifies. */
        ck_assert_ptr_nonnull(pk);
        ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
        ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        ck_assert(BN_is_word(e, 65537));
        ck_assert_int_eq(BN_bn2binpad(bn, n2, 256), 256);
        ck_assert_mem_eq(n, n2, 256);
        pc = EVP_PKEY_CTX_new(pk, NULL);
        ck_assert_int_eq(EVP_PKEY_private_check(pc), 1);
        ck_assert_int_eq(EVP_PKEY_sign_init(pc), 1);
        ck_assert_int_eq(EVP_PKEY_sign(pc, sig, &siglen, msg, sizeof(msg)), 1);
        ck_assert_int_eq(EVP_PKEY_verify_init(pc), 1);
        ck_assert_int_eq(EVP_PKEY_verify(pc, sig, siglen, msg, sizeof(msg)), 1);
        EVP_PKEY_CTX_free(pc);
        EVP_PKEY_free(pk);
        BN_free(e);
        BN_free(bn);
        /* Without the key pair: the same modulus. Another EPS: another key. */
        memset(n2, 0, sizeof(n2));
        ck_assert_int_eq(ftpm_ek_rsa_derive(&eps, n2, NULL), 0);
        ck_assert_mem_eq(n, n2, 256);
        eps.data[63] ^= 1;
        ck_assert_int_eq(ftpm_ek_rsa_derive(&eps, n2, NULL), 0);
        ck_assert(memcmp(n, n2, 256) != 0);
        ck_assert_int_eq(n2[0] & 0x80, 0x80);
        secret_wipe(&eps);
        ck_assert_int_eq(secret_alloc(&eps, 32), 0);
        ck_assert_int_eq(ftpm_ek_rsa_derive(&eps, n2, NULL), -EINVAL);
        secret_wipe(&eps);
}
END_TEST

static unsigned char *vector_file(const char *name, size_t *len)
{
        const char *v = getenv("VECTORS");
        char path[1024];
        unsigned char *buf = NULL;
        FILE *f;
        long n;

        ck_assert_ptr_nonnull(v);
        snprintf(path, sizeof(path), "%s/ekb/B-t234-ekb1.0-oemk2-ftpm-offline/%s", v, name);
        f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        ck_assert_int_gt(n, 0);
        rewind(f);
        buf = malloc((size_t)n);
        ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        *len = (size_t)n;
        return buf;
}

START_TEST(t_ek_csr_set_b)
{
        /* RSA PKCS#1 v1.5 signatures are deterministic: the RSA EK CSR must be
         * NVIDIA's ek_csr_rsa.der byte for byte. The EC one (ECDSA is
         * randomised) must carry the same public key and request as NVIDIA's. */
        struct fl_secret eps = { 0 };
        unsigned char sn[FTPM_SN_LEN], n[256], *der = NULL, *want, priv[32], pub[64];
        size_t len = 0, want_len;
        EVP_PKEY *pk = NULL;
        X509_REQ *mine, *theirs;
        const unsigned char *p;

        ck_assert_int_eq(secret_alloc(&eps, 64), 0);
        unhex("1ddec3e2099bd546038b642c232d7cd045f874db75b66a7299c7705bd8f94825"
              "7192821d0f845521404f6883533d8c46c73fd04c9c8521300d0a3a49419eb30c",
              eps.data, 64);
        unhex("123400c0ffee12345678", sn, sizeof(sn));
        ck_assert_int_eq(ftpm_ek_rsa_derive(&eps, n, &pk), 0);
        ck_assert_int_eq(ftpm_ek_csr(ctx, pk, sn, &der, &len), 0);
        want = vector_file("ek_csr_rsa.der", &want_len);
        ck_assert_uint_eq(len, want_len);
        ck_assert_mem_eq(der, want, len);
        free(der);
        free(want);
        EVP_PKEY_free(pk);
        pk = NULL;

        /* EC: build the key from the derived scalar through a PEM-free path:
         * the CSR made by ftpm_ek_csr must verify with its key, and that key
         * and every part but the signature must equal NVIDIA's CSR. */
        ck_assert_int_eq(ftpm_ek_ec_derive(&eps, priv, pub), 0);
        {
                EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                OSSL_PARAM prm[4];
                unsigned char pt[65] = { 0x04 };
                BIGNUM *d = BN_bin2bn(priv, 32, NULL);
                unsigned char dle[32];
                memcpy(pt + 1, pub, 64);
                ck_assert_int_eq(BN_bn2nativepad(d, dle, 32), 32);
                prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
                prm[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, dle, 32);
                prm[2] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt));
                prm[3] = OSSL_PARAM_construct_end();
                ck_assert_int_eq(EVP_PKEY_fromdata_init(pc), 1);
                ck_assert_int_eq(EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_KEYPAIR, prm), 1);
                EVP_PKEY_CTX_free(pc);
                BN_free(d);
        }
        ck_assert_int_eq(ftpm_ek_csr(ctx, pk, sn, &der, &len), 0);
        want = vector_file("ek_csr_ec.der", &want_len);
        p = der;
        mine = d2i_X509_REQ(NULL, &p, (long)len);
        p = want;
        theirs = d2i_X509_REQ(NULL, &p, (long)want_len);
        ck_assert_ptr_nonnull(mine);
        ck_assert_ptr_nonnull(theirs);
        ck_assert_int_eq(X509_REQ_verify(mine, X509_REQ_get0_pubkey(theirs)), 1);
        {
                unsigned char *a = NULL, *b = NULL;
                int la = i2d_re_X509_REQ_tbs(mine, &a), lb = i2d_re_X509_REQ_tbs(theirs, &b);
                ck_assert_int_gt(la, 0);
                ck_assert_int_eq(la, lb);
                ck_assert_mem_eq(a, b, (size_t)la);
                OPENSSL_free(a);
                OPENSSL_free(b);
        }
        X509_REQ_free(mine);
        X509_REQ_free(theirs);
        free(der);
        free(want);
        EVP_PKEY_free(pk);
        secret_wipe(&eps);
}
END_TEST

START_TEST(t_ek_rsa_keys_sound)
{
        /* Other EPS values (fixed, made by SHA-256): each RSA EK is two
         * 1024-bit primes (OpenSSL's own primality test) with p ≠ 1 mod e,
         * |p − q| ≥ 2^100, n of exactly 2048 bits. */
        struct fl_secret eps = { 0 };
        unsigned char n[256];
        BN_CTX *bc = BN_CTX_new();

        ck_assert_int_eq(secret_alloc(&eps, 64), 0);
        for (int i = 0; i < 6; i++) {
                EVP_PKEY *pk = NULL;
                BIGNUM *p = NULL, *q = NULL, *d = BN_new();
                unsigned char c = (unsigned char)i;
                SHA256(&c, 1, eps.data);
                SHA256(eps.data, 32, eps.data + 32);
                ck_assert_int_eq(ftpm_ek_rsa_derive(&eps, n, &pk), 0);
                ck_assert_int_eq(n[0] & 0x80, 0x80);
                ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, &p), 1);
                ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR2, &q), 1);
                ck_assert_int_eq(BN_num_bits(p), 1024);
                ck_assert_int_eq(BN_num_bits(q), 1024);
                ck_assert_int_eq(BN_check_prime(p, bc, NULL), 1);
                ck_assert_int_eq(BN_check_prime(q, bc, NULL), 1);
                ck_assert_uint_ne(BN_mod_word(p, 65537), 1);
                ck_assert_uint_ne(BN_mod_word(q, 65537), 1);
                ck_assert_int_eq(BN_sub(d, p, q), 1);
                ck_assert_int_ge(BN_num_bits(d), 101);
                EVP_PKEY_free(pk);
                BN_clear_free(p);
                BN_clear_free(q);
                BN_free(d);
        }
        BN_CTX_free(bc);
        secret_wipe(&eps);
}
END_TEST

START_TEST(t_sn_forms)
{
        unsigned char sn[FTPM_SN_LEN];
        ck_assert_int_eq(ftpm_sn_parse(ctx, "123400c0ffee12345678", sn), 0);
        hex_is(sn, sizeof(sn), "123400c0ffee12345678");
        ck_assert_int_eq(ftpm_sn_parse(ctx, "1234-00C0FFEE12345678", sn), 0);
        hex_is(sn, sizeof(sn), "123400c0ffee12345678");
        ck_assert_int_eq(ftpm_sn_parse(ctx, "123400c0ffee1234567", sn), -EINVAL);
        ck_assert_int_eq(ftpm_sn_parse(ctx, "123400c0ffee123456789", sn), -EINVAL);
        ck_assert_int_eq(ftpm_sn_parse(ctx, "1234-00c0ffee1234567g", sn), -EINVAL);
        ck_assert_int_eq(ftpm_sn_parse(ctx, "123480c0ffee12345678", sn), -EINVAL); /* SN ≥ 2^63 */
        ck_assert_int_eq(ftpm_device_sn(ctx, 0x10000, 1, sn), -EINVAL);
        ck_assert_int_eq(ftpm_device_sn(ctx, 1, 1ULL << 63, sn), -EINVAL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ftpm");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        /* Prime searches under ASan on a loaded machine outrun Check's
         * default 4 s per test; meson's own timeout still bounds the run. */
        tcase_set_timeout(tc, 100);
        tcase_add_test(tc, t_set_b_chain);
        tcase_add_test(tc, t_kbkdf_intermediate);
        tcase_add_test(tc, t_sn_forms);
        tcase_add_test(tc, t_ek_ec_set_b);
        tcase_add_test(tc, t_ek_rsa_set_b);
        tcase_add_test(tc, t_ek_csr_set_b);
        tcase_add_test(tc, t_ek_rsa_keys_sound);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
