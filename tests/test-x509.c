/* test-x509.c — unit tests for lib/x509.c with software keys. Expected
 * values come from OpenSSL's own high-level APIs (PKCS7_sign, CMS_verify,
 * X509_verify_cert), never from the code under test. The token path is
 * exercised by the hsm suite (tests/hsm-uefi.sh). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "x509.h"

static fl_ctx *ctx;
static EVP_PKEY *rsa2k, *p256, *p384;

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

static X509 *self_signed(EVP_PKEY *key, const char *subject, enum x509_hash h)
{
        struct x509_cert_spec spec = { .subject = subject, .days = 30, .ca = 1, .path_len = -1, .bc_critical = true,
                                       .ski = true, .aki = true, .hash = h };
        x509_signer *s = NULL;
        X509 *x = NULL;

        ck_assert_int_eq(x509_signer_soft(ctx, key, &s), 0);
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &x), 0);
        x509_signer_free(s);
        return x;
}

/* The efitools profile, byte for byte against OpenSSL's PKCS7_sign path
 * with the same flags efitools 1.9.2 uses. */
START_TEST(t_p7_bare_matches_pkcs7_sign)
{
        static const unsigned char head[] = { 0x02, 0x01, 0x01, 0x31, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                                              0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00 };
        const char msg[] = "P\0K\0 signed buffer \x27\0\0\0 with bytes";
        X509 *cert = self_signed(rsa2k, "/CN=Test PK/", X509H_SHA256);
        x509_signer *s = NULL;
        unsigned char *ours = NULL, *ref = NULL;
        size_t ours_len = 0;
        int ref_len, flags = PKCS7_BINARY | PKCS7_DETACHED | PKCS7_NOATTR;
        BIO *in = BIO_new_mem_buf(msg, sizeof(msg));
        PKCS7 *p7;

        p7 = PKCS7_sign(NULL, NULL, NULL, in, flags | PKCS7_PARTIAL);
        ck_assert_ptr_nonnull(p7);
        ck_assert_ptr_nonnull(PKCS7_sign_add_signer(p7, cert, rsa2k, EVP_sha256(), flags));
        ck_assert_int_eq(PKCS7_final(p7, in, flags), 1);
        ref_len = i2d_PKCS7_SIGNED(p7->d.sign, &ref);
        ck_assert_int_gt(ref_len, 0);

        ck_assert_int_eq(x509_signer_soft(ctx, rsa2k, &s), 0);
        ck_assert_int_eq(x509_p7_sign_bare(ctx, s, cert, msg, sizeof(msg), &ours, &ours_len), 0);
        ck_assert_uint_eq(ours_len, (size_t)ref_len);
        ck_assert_mem_eq(ours, ref, ours_len);
        /* edk2's TIME_BASED check: 0x82 long length, SHA-256 OID at 13..21. */
        ck_assert_uint_eq(ours[0], 0x30);
        ck_assert_uint_eq(ours[1], 0x82);
        ck_assert_mem_eq(ours + 4, head, sizeof(head));

        ck_assert_int_eq(x509_p7_verify(ctx, "t", ours, ours_len, true, msg, sizeof(msg), cert), 0);
        ck_assert_int_eq(x509_p7_verify(ctx, "t", ours, ours_len, true, msg, sizeof(msg) - 1, cert), -EBADMSG);

        free(ours);
        OPENSSL_free(ref);
        PKCS7_free(p7);
        BIO_free(in);
        x509_signer_free(s);
        X509_free(cert);
}
END_TEST

START_TEST(t_p7_verify_wrong_signer)
{
        const char msg[] = "payload";
        X509 *a = self_signed(rsa2k, "/CN=A", X509H_SHA256), *b = self_signed(p256, "/CN=B", X509H_SHA256);
        x509_signer *s = NULL;
        unsigned char *der = NULL;
        size_t n = 0;

        ck_assert_int_eq(x509_signer_soft(ctx, rsa2k, &s), 0);
        ck_assert_int_eq(x509_p7_sign_bare(ctx, s, a, msg, sizeof(msg), &der, &n), 0);
        ck_assert_int_eq(x509_p7_verify(ctx, "t", der, n, true, msg, sizeof(msg), b), -EBADMSG);
        /* The signer certificate must carry the signing key. */
        free(der);
        der = NULL;
        ck_assert_int_eq(x509_p7_sign_bare(ctx, s, b, msg, sizeof(msg), &der, &n), -EINVAL);
        ck_assert_ptr_null(der);
        /* A bare SignedData is not a ContentInfo and vice versa. */
        ck_assert_int_eq(x509_p7_sign_bare(ctx, s, a, msg, sizeof(msg), &der, &n), 0);
        ck_assert_int_eq(x509_p7_verify(ctx, "t", der, n, false, msg, sizeof(msg), a), -EINVAL);
        free(der);
        x509_signer_free(s);
        X509_free(a);
        X509_free(b);
}
END_TEST

/* Detached CMS with signed attributes, checked by OpenSSL's CMS code. */
static void detached_check(EVP_PKEY *key, enum x509_hash h, int md_nid)
{
        static const unsigned char data[] = "kernel image bytes\x00\x01\x02";
        X509 *cert = self_signed(key, "/O=Acme/CN=db", X509H_SHA256);
        x509_signer *s = NULL;
        unsigned char *der = NULL;
        const unsigned char *p;
        size_t n = 0;
        CMS_ContentInfo *cms;
        STACK_OF(X509) *certs = sk_X509_new_null();
        BIO *content = BIO_new_mem_buf(data, sizeof(data)), *bad;
        X509_STORE *store = X509_STORE_new();
        STACK_OF(CMS_SignerInfo) *sis;
        X509_ALGOR *dig = NULL, *sigalg = NULL;
        const ASN1_OBJECT *obj;
        unsigned char tampered[sizeof(data)];

        ck_assert_int_eq(x509_signer_soft(ctx, key, &s), 0);
        ck_assert_int_eq(x509_p7_sign_detached(ctx, s, cert, h, data, sizeof(data), 1700000000, &der, &n), 0);
        p = der;
        cms = d2i_CMS_ContentInfo(NULL, &p, (long)n);
        ck_assert_ptr_nonnull(cms);
        ck_assert_int_eq(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
        ck_assert_ptr_null(CMS_get0_content(cms) ? *CMS_get0_content(cms) : NULL);
        sk_X509_push(certs, cert);
        ck_assert_int_eq(CMS_verify(cms, certs, store, content, NULL, CMS_BINARY | CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY),
                         1);
        sis = CMS_get0_SignerInfos(cms);
        ck_assert_int_eq(sk_CMS_SignerInfo_num(sis), 1);
        ck_assert_int_eq(CMS_signed_get_attr_count(sk_CMS_SignerInfo_value(sis, 0)), 3);
        ck_assert_int_ge(CMS_signed_get_attr_by_NID(sk_CMS_SignerInfo_value(sis, 0), NID_pkcs9_signingTime, -1), 0);
        CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, 0), NULL, NULL, &dig, &sigalg);
        X509_ALGOR_get0(&obj, NULL, NULL, dig);
        ck_assert_int_eq(OBJ_obj2nid(obj), md_nid);
        /* One flipped bit in the content: rejected by OpenSSL and by us. */
        memcpy(tampered, data, sizeof(data));
        tampered[3] ^= 1;
        bad = BIO_new_mem_buf(tampered, sizeof(tampered));
        ck_assert_int_ne(CMS_verify(cms, certs, store, bad, NULL, CMS_BINARY | CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY),
                         1);
        ERR_clear_error();
        ck_assert_int_eq(x509_p7_verify(ctx, "t", der, n, false, data, sizeof(data), cert), 0);
        ck_assert_int_eq(x509_p7_verify(ctx, "t", der, n, false, tampered, sizeof(tampered), cert), -EBADMSG);

        BIO_free(bad);
        CMS_ContentInfo_free(cms);
        BIO_free(content);
        X509_STORE_free(store);
        sk_X509_free(certs);
        free(der);
        x509_signer_free(s);
        X509_free(cert);
}

START_TEST(t_p7_detached_rsa)
{
        detached_check(rsa2k, X509H_SHA256, NID_sha256);
}
END_TEST

START_TEST(t_p7_detached_ec)
{
        detached_check(p384, X509H_SHA384, NID_sha384);
}
END_TEST

START_TEST(t_cert_self_signed)
{
        X509 *x = self_signed(rsa2k, "/O=Acme Robotics/CN=Acme Robotics Platform Key/", X509H_SHA256);
        const ASN1_OCTET_STRING *ski, *akid;
        const ASN1_BIT_STRING *bits;
        const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
        unsigned char sha1[20];
        BASIC_CONSTRAINTS *bc;
        int crit = -1;
        X509_NAME *n = X509_get_subject_name(x);
        char buf[128];

        ck_assert_int_eq(X509_verify(x, rsa2k), 1);
        ck_assert_int_eq(X509_check_issued(x, x), X509_V_OK);
        ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
        ck_assert_int_eq(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
        /* 16-byte positive serial. */
        ck_assert_int_eq(sn->type, V_ASN1_INTEGER);
        ck_assert_int_eq(sn->length, 16);
        ck_assert_uint_eq(sn->data[0] & 0x80, 0);
        ck_assert_uint_ne(sn->data[0], 0);
        /* SKI = SHA-1 over the subjectPublicKey bits (RFC 5280 method 1). */
        bits = X509_get0_pubkey_bitstr(x);
        EVP_Digest(bits->data, (size_t)bits->length, sha1, NULL, EVP_sha1(), NULL);
        ski = X509_get0_subject_key_id(x);
        ck_assert_ptr_nonnull(ski);
        ck_assert_int_eq(ski->length, 20);
        ck_assert_mem_eq(ski->data, sha1, 20);
        akid = X509_get0_authority_key_id(x);
        ck_assert_ptr_nonnull(akid);
        ck_assert_mem_eq(akid->data, sha1, 20);
        bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
        ck_assert_ptr_nonnull(bc);
        ck_assert_int_eq(crit, 1);
        ck_assert_int_ne(bc->ca, 0);
        ck_assert_ptr_null(bc->pathlen);
        BASIC_CONSTRAINTS_free(bc);
        ck_assert_int_eq(X509_NAME_entry_count(n), 2);
        X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof(buf));
        ck_assert_str_eq(buf, "Acme Robotics Platform Key");
        X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof(buf));
        ck_assert_str_eq(buf, "Acme Robotics");
        /* 30 days of validity. */
        {
                int days = 0, secs = 0;
                ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
                ck_assert_int_eq(days, 30);
                ck_assert_int_eq(secs, 0);
        }
        X509_free(x);
}
END_TEST

/* A device certificate issued by an EC CA, with the 802.1AR-style
 * extensions; verified by OpenSSL's chain builder. */
START_TEST(t_cert_issued_by_ca)
{
        /* hardwareModuleName ::= SEQUENCE { hwType OID 1.3.6.1.4.1.99999.1, hwSerialNum OCTET STRING "ECID01" } */
        static const unsigned char hmn[] = { 0x30, 0x12, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x86,
                                             0x8d, 0x1f, 0x04, 0x06, 'E',  'C',  'I',  'D',  '0',  '1' };
        static const unsigned char serial[] = { 0x01, 0x02, 0x03 };
        X509 *ca = self_signed(p384, "/O=Acme/CN=Acme Device CA", X509H_SHA384), *dev = NULL;
        struct x509_san san[] = {
                { .type = X509_SAN_OTHERNAME, .oid = "1.3.6.1.5.5.7.8.4", .der = hmn, .der_len = sizeof(hmn) },
                { .type = X509_SAN_DNS, .value = "dev01.example" },
        };
        struct x509_cert_spec spec = { .subject = "/O=Acme/serialNumber=ECID01", .pubkey = p256, .issuer = ca,
                                       .serial = serial, .serial_len = sizeof(serial), .days = 3650,
                                       .hash = X509H_SHA384, .ca = 0, .bc_critical = true,
                                       .key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT,
                                       .ext_key_usage = "clientAuth,1.3.6.1.5.5.7.3.1", .ski = true, .aki = true,
                                       .san = san, .n_san = 2 };
        x509_signer *s = NULL;
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *sctx = X509_STORE_CTX_new();
        GENERAL_NAMES *gens;
        ASN1_OBJECT *oid = NULL;
        ASN1_TYPE *val = NULL;
        int crit = -1;
        unsigned char *der = NULL;

        ck_assert_int_eq(x509_signer_soft(ctx, p384, &s), 0);
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &dev), 0);
        ck_assert_int_eq(X509_get_signature_nid(dev), NID_ecdsa_with_SHA384);
        ck_assert_int_eq(X509_check_issued(ca, dev), X509_V_OK);
        ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(dev)), 0x010203);
        ck_assert_mem_eq(X509_get0_authority_key_id(dev)->data, X509_get0_subject_key_id(ca)->data, 20);
        ck_assert_uint_eq(X509_get_key_usage(dev), KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT);
        ck_assert_uint_eq(X509_get_extended_key_usage(dev), XKU_SSL_CLIENT | XKU_SSL_SERVER);
        ck_assert_int_eq(X509_get_ext_by_critical(dev, 1, -1) >= 0, 1);
        gens = X509_get_ext_d2i(dev, NID_subject_alt_name, &crit, NULL);
        ck_assert_ptr_nonnull(gens);
        ck_assert_int_eq(crit, 0);
        ck_assert_int_eq(sk_GENERAL_NAME_num(gens), 2);
        ck_assert_int_eq(GENERAL_NAME_get0_otherName(sk_GENERAL_NAME_value(gens, 0), &oid, &val), 1);
        {
                char txt[64];
                OBJ_obj2txt(txt, sizeof(txt), oid, 1);
                ck_assert_str_eq(txt, "1.3.6.1.5.5.7.8.4");
        }
        ck_assert_int_eq(i2d_ASN1_TYPE(val, &der), (int)sizeof(hmn));
        ck_assert_mem_eq(der, hmn, sizeof(hmn));
        GENERAL_NAMES_free(gens);
        OPENSSL_free(der);

        X509_STORE_add_cert(store, ca);
        X509_STORE_CTX_init(sctx, store, dev, NULL);
        ck_assert_int_eq(X509_verify_cert(sctx), 1);

        /* The signing key must be the issuer's. */
        x509_signer_free(s);
        ck_assert_int_eq(x509_signer_soft(ctx, rsa2k, &s), 0);
        X509_free(dev);
        dev = NULL;
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &dev), -EINVAL);
        ck_assert_ptr_null(dev);

        X509_STORE_CTX_free(sctx);
        X509_STORE_free(store);
        x509_signer_free(s);
        X509_free(ca);
}
END_TEST

START_TEST(t_cert_bad_spec)
{
        struct x509_cert_spec spec = { .subject = "/CN=x", .days = 0, .ca = -1 };
        x509_signer *s = NULL;
        X509 *x = NULL;

        ck_assert_int_eq(x509_signer_soft(ctx, rsa2k, &s), 0);
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &x), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "1 day"));
        spec.days = 1;
        spec.pubkey = p256; /* self-signed by someone else's key */
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &x), -EINVAL);
        spec.pubkey = NULL;
        spec.ext_key_usage = "notAUsage";
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &x), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "notAUsage"));
        spec.ext_key_usage = NULL;
        spec.subject = "CN=x";
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &x), -EINVAL);
        ck_assert_ptr_null(x);
        x509_signer_free(s);
}
END_TEST

START_TEST(t_csr)
{
        struct x509_san san = { .type = X509_SAN_URI, .value = "urn:ecid:0123" };
        struct x509_csr_spec spec = { .subject = "/O=Acme/CN=dev", .key_usage = KU_DIGITAL_SIGNATURE,
                                      .san = &san, .n_san = 1 };
        x509_signer *s = NULL;
        X509_REQ *req = NULL, *back = NULL;
        STACK_OF(X509_EXTENSION) *exts;
        unsigned char *der = NULL;
        size_t n = 0;

        ck_assert_int_eq(x509_signer_soft(ctx, p256, &s), 0);
        ck_assert_int_eq(x509_csr_build(ctx, &spec, s, &req), 0);
        ck_assert_int_eq(X509_REQ_verify(req, p256), 1);
        ck_assert_int_eq(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
        exts = X509_REQ_get_extensions(req);
        ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 2);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        ck_assert_int_eq(x509_csr_der(req, &der, &n), 0);
        ck_assert_int_eq(x509_csr_parse(ctx, "csr", der, n, &back), 0);
        /* A flipped bit in the signature: -EBADMSG. */
        der[n - 3] ^= 0x01;
        X509_REQ_free(back);
        back = NULL;
        ck_assert_int_eq(x509_csr_parse(ctx, "csr", der, n, &back), -EBADMSG);
        OPENSSL_free(der);
        X509_REQ_free(req);
        x509_signer_free(s);
}
END_TEST

START_TEST(t_name_parse)
{
        static const char *bad[] = { "", "O=x", "/O", "/=x", "/XX=y", "/CN=", "/O=a//CN=b", "/CN=a\\x",
                                     "/C=USA", "/CN=a\\" };
        X509_NAME *n = NULL;
        char buf[64];

        ck_assert_int_eq(x509_name_parse(ctx, "/O=A\\/B/CN=c\\\\d/", &n), 0);
        ck_assert_int_eq(X509_NAME_entry_count(n), 2);
        X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof(buf));
        ck_assert_str_eq(buf, "A/B");
        X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof(buf));
        ck_assert_str_eq(buf, "c\\d");
        X509_NAME_free(n);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                n = NULL;
                ck_assert_msg(x509_name_parse(ctx, bad[i], &n) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(n);
                ck_assert_ptr_nonnull(fl_ctx_last_error(ctx));
        }
}
END_TEST

START_TEST(t_cert_parse)
{
        X509 *x = self_signed(rsa2k, "/CN=p", X509H_SHA256), *y = NULL;
        unsigned char *der = NULL, *two;
        char *pem = NULL;
        size_t dn = 0, pn = 0;
        char hex[65];

        ck_assert_int_eq(x509_cert_der(x, &der, &dn), 0);
        ck_assert_int_eq(x509_cert_pem(x, &pem, &pn), 0);
        ck_assert_int_eq(x509_cert_parse(ctx, "a.der", der, dn, &y), 0);
        ck_assert_int_eq(X509_cmp(x, y), 0);
        X509_free(y);
        ck_assert_int_eq(x509_cert_parse(ctx, "a.pem", (unsigned char *)pem, pn, &y), 0);
        ck_assert_int_eq(X509_cmp(x, y), 0);
        X509_free(y);
        y = NULL;
        /* DER with a trailing byte; two PEM certificates; no certificate. */
        two = malloc(2 * pn + 1);
        memcpy(two, der, dn);
        two[dn] = 0;
        ck_assert_int_eq(x509_cert_parse(ctx, "t.der", two, dn + 1, &y), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "t.der"));
        memcpy(two, pem, pn);
        memcpy(two + pn, pem, pn);
        ck_assert_int_eq(x509_cert_parse(ctx, "two.pem", two, 2 * pn, &y), -EINVAL);
        ck_assert_int_eq(x509_cert_parse(ctx, "junk", (const unsigned char *)"hello", 5, &y), -EINVAL);
        ck_assert_int_eq(x509_cert_parse(ctx, "empty", (const unsigned char *)"", 0, &y), -EINVAL);
        ck_assert_ptr_null(y);
        /* The fingerprint is SHA-256 over the DER. */
        {
                unsigned char dg[32];
                char want[65];
                EVP_Digest(der, dn, dg, NULL, EVP_sha256(), NULL);
                for (int i = 0; i < 32; i++)
                        snprintf(want + 2 * i, 3, "%02x", dg[i]);
                ck_assert_int_eq(x509_cert_sha256(x, hex), 0);
                ck_assert_str_eq(hex, want);
        }
        ck_assert(x509_cert_has_key(x, rsa2k));
        ck_assert(!x509_cert_has_key(x, p256));
        free(two);
        free(pem);
        free(der);
        X509_free(x);
}
END_TEST

/* RSA with SHA-384/512 through x509_signer_sign, verified by EVP. */
START_TEST(t_signer_hashes)
{
        static const enum x509_hash hs[] = { X509H_SHA256, X509H_SHA384, X509H_SHA512 };
        static const char msg[] = "to be signed";
        x509_signer *s = NULL;

        ck_assert_int_eq(x509_signer_soft(ctx, rsa2k, &s), 0);
        for (size_t i = 0; i < 3; i++) {
                unsigned char *sig = NULL;
                size_t n = 0;
                EVP_MD_CTX *m = EVP_MD_CTX_new();
                ck_assert_int_eq(x509_signer_sign(s, hs[i], msg, sizeof(msg), &sig, &n), 0);
                ck_assert_uint_eq(n, 256);
                ck_assert_int_eq(EVP_DigestVerifyInit(m, NULL, x509_hash_md(hs[i]), NULL, rsa2k), 1);
                ck_assert_int_eq(EVP_DigestVerify(m, sig, n, (const unsigned char *)msg, sizeof(msg)), 1);
                EVP_MD_CTX_free(m);
                free(sig);
        }
        x509_signer_free(s);
}
END_TEST

int main(void)
{
        Suite *su = suite_create("x509");
        TCase *tc = tcase_create("x509");
        SRunner *sr;
        int failed;

        rsa2k = EVP_RSA_gen(2048);
        p256 = EVP_EC_gen("P-256");
        p384 = EVP_EC_gen("P-384");
        if (!rsa2k || !p256 || !p384)
                return 1;
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_p7_bare_matches_pkcs7_sign);
        tcase_add_test(tc, t_p7_verify_wrong_signer);
        tcase_add_test(tc, t_p7_detached_rsa);
        tcase_add_test(tc, t_p7_detached_ec);
        tcase_add_test(tc, t_cert_self_signed);
        tcase_add_test(tc, t_cert_issued_by_ca);
        tcase_add_test(tc, t_cert_bad_spec);
        tcase_add_test(tc, t_csr);
        tcase_add_test(tc, t_name_parse);
        tcase_add_test(tc, t_cert_parse);
        tcase_add_test(tc, t_signer_hashes);
        suite_add_tcase(su, tc);
        sr = srunner_create(su);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        EVP_PKEY_free(rsa2k);
        EVP_PKEY_free(p256);
        EVP_PKEY_free(p384);
        return failed ? 1 : 0;
}
