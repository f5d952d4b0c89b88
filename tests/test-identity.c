/* test-identity.c — unit tests for lib/identity.c with software keys: the
 * device-key policy, the hardwareModuleName encoding against bytes worked
 * out by hand from X.690, issued certificates read back through OpenSSL's
 * own APIs (X509_verify_cert, X509_get_ext_d2i), and the profile checker
 * against certificates that break one rule each. The token and ledger
 * paths are exercised by tests/hsm-enroll.sh. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "identity.h"
#include "ledger.h"

static fl_ctx *ctx;
static EVP_PKEY *ca_key, *p256, *p384, *p521, *rsa2k, *rsa1k, *k1, *ed;
static X509 *ca;
static x509_signer *ca_signer;

static const char ECID[] = "80012344705df1172c0000000d020080";
static const unsigned char ECID_BYTES[16] = { 0x80, 0x01, 0x23, 0x44, 0x70, 0x5d, 0xf1, 0x17,
                                              0x2c, 0x00, 0x00, 0x00, 0x0d, 0x02, 0x00, 0x80 };

/* openssl ecparam -name prime256v1 -genkey -param_enc explicit | openssl pkey -pubout */
static const char explicit_p256[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MIIBSzCCAQMGByqGSM49AgEwgfcCAQEwLAYHKoZIzj0BAQIhAP////8AAAABAAAA\n"
        "AAAAAAAAAAAA////////////////MFsEIP////8AAAABAAAAAAAAAAAAAAAA////\n"
        "///////////8BCBaxjXYqjqT57PrvVV2mIa8ZR0GsMxTsPY7zjw+J9JgSwMVAMSd\n"
        "NgiG5wSTamZ44ROdJreBn36QBEEEaxfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5\n"
        "RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9QIhAP////8AAAAA\n"
        "//////////+85vqtpxeehPO5ysL8YyVRAgEBA0IABO77Cd+pqM+ivqoL81KpsARj\n"
        "ApTcttA6KHCgxiJBRPteywqaC3mkK6fnpejX5SVNcCxwZsOTYeRJH1wyrhnz4IQ=\n"
        "-----END PUBLIC KEY-----\n";
/* openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:3 | openssl pkey -pubout */
static const char rsa_e3[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MIIBIDANBgkqhkiG9w0BAQEFAAOCAQ0AMIIBCAKCAQEA2lYj/geCfy2hiT6lzIK1\n"
        "43hJmfVld7/J4SZHRHfC3KjGNsvYFL4kRKgDHqDFddqVrGnSbdCk4UCEApELD74N\n"
        "MHLmis2ATRRFlLrgP6yBbWN9n6gY7UyfTwgI3Cxf+PM9UK7ekTMRp3dAydzPp47T\n"
        "26MOmFsyXAlBnykHdIlx0rOVyZ4zWlqrPnjrjFWUKreOXMsYUILEYg/JoHkkERDV\n"
        "LcYqNmpZvOXhTuZGSa/TSvtxOZdh9s/ch56fVYDliHMrbpfGmbO03KbAtvEx2dqC\n"
        "yOwDTxkgKsaIBQGT9fINsCP/tYQ6/TGd1C5mgnMJeJb7W4sKOH0qDwUU1LT7xvyp\n"
        "LwIBAw==\n"
        "-----END PUBLIC KEY-----\n";

static EVP_PKEY *pub_pem(const char *pem)
{
        BIO *b = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);

        BIO_free(b);
        ck_assert_ptr_nonnull(k);
        return k;
}

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

START_TEST(t_key_policy)
{
        EVP_PKEY *ex = pub_pem(explicit_p256), *e3 = pub_pem(rsa_e3);

        ck_assert_int_eq(identity_key_check(ctx, "k", p256), 0);
        ck_assert_int_eq(identity_key_check(ctx, "k", p384), 0);
        ck_assert_int_eq(identity_key_check(ctx, "k", p521), 0);
        ck_assert_int_eq(identity_key_check(ctx, "k", rsa2k), 0);
        ck_assert_int_eq(identity_key_check(ctx, "k", rsa1k), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "1024 bits is too weak"));
        ck_assert_int_eq(identity_key_check(ctx, "k", k1), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "secp256k1"));
        ck_assert_int_eq(identity_key_check(ctx, "k", ed), -EINVAL);
        ck_assert_int_eq(identity_key_check(ctx, "k", ex), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "explicit"));
        ck_assert_int_eq(identity_key_check(ctx, "k", e3), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "65537"));
        ck_assert_int_eq(identity_key_check(ctx, "k", NULL), -EINVAL);
        EVP_PKEY_free(ex);
        EVP_PKEY_free(e3);
}
END_TEST

/* SEQUENCE { OID 1.3.6.1.4.1.32473.1.1, OCTET STRING ECID }, by hand:
 * 1.3 -> 0x2b; 32473 = 1*128^2 + 125*128 + 89 -> 81 fd 59. */
static const unsigned char HMN[] = { 0x30, 0x1e, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x81, 0xfd, 0x59,
                                     0x01, 0x01, 0x04, 0x10, 0x80, 0x01, 0x23, 0x44, 0x70, 0x5d, 0xf1, 0x17,
                                     0x2c, 0x00, 0x00, 0x00, 0x0d, 0x02, 0x00, 0x80 };

START_TEST(t_hmn)
{
        unsigned char *der = NULL, *ser = NULL, buf[64];
        size_t len = 0, sl = 0;
        char *oid = NULL;

        ck_assert_int_eq(identity_hmn_der(ctx, IDENTITY_HWTYPE_PLACEHOLDER, ECID_BYTES, 16, &der, &len), 0);
        ck_assert_uint_eq(len, sizeof(HMN));
        ck_assert_mem_eq(der, HMN, sizeof(HMN));
        free(der);

        ck_assert_int_eq(identity_hmn_parse(HMN, sizeof(HMN), &oid, &ser, &sl), 0);
        ck_assert_str_eq(oid, IDENTITY_HWTYPE_PLACEHOLDER);
        ck_assert_uint_eq(sl, 16);
        ck_assert_mem_eq(ser, ECID_BYTES, 16);
        free(oid);
        free(ser);

        /* trailing byte, short, wrong outer tag, wrong inner tags, indefinite length */
        memcpy(buf, HMN, sizeof(HMN));
        buf[sizeof(HMN)] = 0;
        ck_assert_int_eq(identity_hmn_parse(buf, sizeof(HMN) + 1, &oid, &ser, &sl), -EINVAL);
        ck_assert_int_eq(identity_hmn_parse(HMN, sizeof(HMN) - 1, &oid, &ser, &sl), -EINVAL);
        buf[0] = 0x31;
        ck_assert_int_eq(identity_hmn_parse(buf, sizeof(HMN), &oid, &ser, &sl), -EINVAL);
        memcpy(buf, HMN, sizeof(HMN));
        buf[14] = 0x0c; /* UTF8String instead of OCTET STRING */
        ck_assert_int_eq(identity_hmn_parse(buf, sizeof(HMN), &oid, &ser, &sl), -EINVAL);
        memcpy(buf, HMN, sizeof(HMN));
        buf[1] = 0x80;
        buf[sizeof(HMN)] = 0;
        buf[sizeof(HMN) + 1] = 0;
        ck_assert_int_eq(identity_hmn_parse(buf, sizeof(HMN) + 2, &oid, &ser, &sl), -EINVAL);

        ck_assert(identity_oid_ok("1.3.6.1.4.1.32473.1.1"));
        ck_assert(identity_oid_ok("2.999"));
        ck_assert(!identity_oid_ok("1"));
        ck_assert(!identity_oid_ok("1.3."));
        ck_assert(!identity_oid_ok("1..3"));
        ck_assert(!identity_oid_ok("3.1"));
        ck_assert(!identity_oid_ok("1.3.x"));
        ck_assert(!identity_oid_ok("clientAuth"));
        ck_assert_int_eq(identity_hmn_der(ctx, "nope", ECID_BYTES, 16, &der, &len), -EINVAL);
}
END_TEST

START_TEST(t_ecid)
{
        char out[LEDGER_ECID_LEN + 1];

        ck_assert_int_eq(ledger_ecid_parse(ctx, "0x80012344705DF1172C0000000D020080", out), 0);
        ck_assert_str_eq(out, ECID);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "80012344705df1172c0000000d020080", out), 0);
        ck_assert_str_eq(out, ECID);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "80012344705df1172c0000000d02008", out), -EINVAL);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "80012344705df1172c0000000d0200800", out), -EINVAL);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "g0012344705df1172c0000000d020080", out), -EINVAL);
        ck_assert_int_eq(ledger_ecid_parse(ctx, "", out), -EINVAL);
}
END_TEST

static X509 *issue(EVP_PKEY *pk, const char *product, const char *serial)
{
        struct identity_cert_req req = { .ecid = ECID, .product = product, .serial = serial, .pubkey = pk,
                                         .ca_cert = ca };
        X509 *x = NULL;

        ck_assert_int_eq(identity_cert_issue(ctx, &req, ca_signer, &x), 0);
        return x;
}

START_TEST(t_issue)
{
        EVP_PKEY *keys[] = { p256, p384, rsa2k };

        for (size_t i = 0; i < 3; i++) {
                X509 *x = issue(keys[i], "Acme Orin", "SN0001");
                X509_STORE *st = X509_STORE_new();
                X509_STORE_CTX *sc = X509_STORE_CTX_new();
                GENERAL_NAMES *gens;
                ASN1_OBJECT *type_id = NULL;
                ASN1_TYPE *val = NULL;
                ASN1_TIME *t9999 = ASN1_TIME_new();
                char buf[128];
                struct identity_check c;
                BIGNUM *bn;

                /* OpenSSL's own chain verification */
                ck_assert(X509_STORE_add_cert(st, ca));
                ck_assert(X509_STORE_CTX_init(sc, st, x, NULL));
                X509_STORE_CTX_set_flags(sc, X509_V_FLAG_X509_STRICT);
                X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_CLIENT);
                ck_assert_int_eq(X509_verify_cert(sc), 1);
                X509_STORE_CTX_free(sc);
                X509_STORE_free(st);

                ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_serialNumber, buf,
                                                           sizeof(buf)), 0);
                ck_assert_str_eq(buf, ECID);
                X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof(buf));
                ck_assert_str_eq(buf, "Acme Orin SN0001");
                X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, buf, sizeof(buf));
                ck_assert_str_eq(buf, "Acme");
                ck_assert(ASN1_GENERALIZEDTIME_set_string(t9999, "99991231235959Z"));
                ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(x), t9999), 0);
                ck_assert_int_eq(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
                ASN1_TIME_free(t9999);
                ck_assert_uint_eq(X509_get_key_usage(x),
                                  i < 2 ? (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT) : KU_DIGITAL_SIGNATURE);
                ck_assert(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
                bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
                ck_assert_int_eq(BN_num_bytes(bn), 16);
                ck_assert(!BN_is_negative(bn));
                BN_free(bn);
                gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
                ck_assert_int_eq(sk_GENERAL_NAME_num(gens), 1);
                ck_assert(GENERAL_NAME_get0_otherName(sk_GENERAL_NAME_value(gens, 0), &type_id, &val));
                OBJ_obj2txt(buf, sizeof(buf), type_id, 1);
                ck_assert_str_eq(buf, "1.3.6.1.5.5.7.8.4");
                ck_assert_int_eq(val->type, V_ASN1_SEQUENCE);
                ck_assert_int_eq(ASN1_STRING_length(val->value.sequence), (int)sizeof(HMN));
                ck_assert_mem_eq(ASN1_STRING_get0_data(val->value.sequence), HMN, sizeof(HMN));
                GENERAL_NAMES_free(gens);

                ck_assert_int_eq(identity_cert_check(ctx, x, ca, NULL, &c), 0);
                ck_assert_msg(c.n_problems == 0, "problem: %s", c.n_problems ? c.problems[0] : "");
                ck_assert(c.chain_ok && c.profile_ok);
                ck_assert_str_eq(c.ecid, ECID);
                identity_check_clear(&c);
                /* another hwType expected */
                ck_assert_int_eq(identity_cert_check(ctx, x, ca, "1.3.6.1.4.1.99999.1", &c), 0);
                ck_assert(c.chain_ok && !c.profile_ok);
                ck_assert_ptr_nonnull(strstr(c.problems[0], "hwType"));
                identity_check_clear(&c);
                X509_free(x);
        }
}
END_TEST

START_TEST(t_subject_rules)
{
        struct identity_cert_req req = { .ecid = ECID, .product = "Acme", .pubkey = p256, .ca_cert = ca };
        X509_NAME *n = NULL;
        X509 *x = NULL;
        char longp[80];

        memset(longp, 'x', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = 0;
        req.serial = "A B";
        ck_assert_int_eq(identity_subject(ctx, &req, &n), -EINVAL);
        req.serial = "SN\n1";
        ck_assert_int_eq(identity_subject(ctx, &req, &n), -EINVAL);
        req.serial = NULL;
        req.product = longp;
        ck_assert_int_eq(identity_subject(ctx, &req, &n), -EINVAL);
        req.product = "Acme\x01";
        ck_assert_int_eq(identity_subject(ctx, &req, &n), -EINVAL);
        req.product = "Acme \xff\xfe";
        ck_assert_int_eq(identity_subject(ctx, &req, &n), -EINVAL);
        req.product = "Acme Orin Nano";
        ck_assert_int_eq(identity_subject(ctx, &req, &n), 0);
        X509_NAME_free(n);
        req.ecid = "80012344705DF1172C0000000D020080"; /* not normalised: the caller's job */
        ck_assert_int_eq(identity_cert_issue(ctx, &req, ca_signer, &x), 0);
        X509_free(x);
        req.ecid = "8001";
        ck_assert_int_eq(identity_cert_issue(ctx, &req, ca_signer, &x), -EINVAL);
}
END_TEST

/* Certificates that break one rule each, built with the x509 layer
 * directly; the checker must name the rule. */
static void expect_problem(const struct x509_cert_spec *base, void (*mut)(struct x509_cert_spec *), const char *what)
{
        struct x509_cert_spec spec = *base;
        struct identity_check c;
        X509 *x = NULL;
        bool found = false;

        mut(&spec);
        ck_assert_int_eq(x509_cert_build(ctx, &spec, ca_signer, &x), 0);
        ck_assert_int_eq(identity_cert_check(ctx, x, ca, NULL, &c), 0);
        for (size_t i = 0; i < c.n_problems; i++)
                found |= strstr(c.problems[i], what) != NULL;
        ck_assert_msg(found, "no problem mentioning '%s' (%zu problems%s%s)", what, c.n_problems,
                      c.n_problems ? ": " : "", c.n_problems ? c.problems[0] : "");
        ck_assert(!c.profile_ok);
        identity_check_clear(&c);
        X509_free(x);
}

static struct x509_san g_san;
static unsigned char hmn_other[64];
static const unsigned char short_serial[8] = { 0x40, 1, 2, 3, 4, 5, 6, 7 };

static void m_none(struct x509_cert_spec *s) { (void)s; }
static void m_no_san(struct x509_cert_spec *s) { s->n_san = 0; }
static void m_days(struct x509_cert_spec *s) { s->not_after = 0; s->days = 30; }
static void m_ku(struct x509_cert_spec *s) { s->key_usage |= KU_KEY_CERT_SIGN; }
static void m_ku_missing_ka(struct x509_cert_spec *s) { s->key_usage = KU_DIGITAL_SIGNATURE; }
static void m_eku(struct x509_cert_spec *s) { s->ext_key_usage = "serverAuth"; }
static void m_ca(struct x509_cert_spec *s) { s->ca = 1; s->path_len = -1; s->bc_critical = true; }
static void m_serial(struct x509_cert_spec *s) { s->serial = short_serial; s->serial_len = sizeof(short_serial); }
static void m_no_ski(struct x509_cert_spec *s) { s->ski = false; }
static void m_subject(struct x509_cert_spec *s) { s->subject_name = NULL; s->subject = "/O=Acme/CN=Acme Orin"; }
static void m_upper(struct x509_cert_spec *s)
{
        s->subject_name = NULL;
        s->subject = "/O=Acme/CN=Acme Orin/serialNumber=80012344705DF1172C0000000D020080";
}
static void m_other_serial(struct x509_cert_spec *s)
{
        /* hwSerialNum of another device */
        memcpy(hmn_other, HMN, sizeof(HMN));
        hmn_other[sizeof(HMN) - 1] ^= 1;
        g_san.der = hmn_other;
        s->san = &g_san;
}

START_TEST(t_check_deviations)
{
        unsigned char *hmn = NULL;
        size_t hmn_len = 0;
        X509_NAME *subj = NULL;
        struct identity_cert_req req = { .ecid = ECID, .product = "Acme Orin", .pubkey = p256, .ca_cert = ca };
        struct x509_cert_spec base;

        ck_assert_int_eq(identity_subject(ctx, &req, &subj), 0);
        ck_assert_int_eq(identity_hmn_der(ctx, IDENTITY_HWTYPE_PLACEHOLDER, ECID_BYTES, 16, &hmn, &hmn_len), 0);
        g_san = (struct x509_san){ .type = X509_SAN_OTHERNAME, .oid = IDENTITY_OID_HMN, .der = hmn,
                                   .der_len = hmn_len };
        base = (struct x509_cert_spec){ .subject_name = subj, .pubkey = p256, .issuer = ca,
                                        .not_after = IDENTITY_NOT_AFTER, .ca = -1, .path_len = -1,
                                        .key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT,
                                        .ext_key_usage = "clientAuth", .ski = true, .aki = true, .san = &g_san,
                                        .n_san = 1, .hash = X509H_SHA384 };
        {
                /* the unmodified spec passes: the mutations below are what fails */
                struct identity_check c;
                X509 *x = NULL;
                m_none(&base);
                ck_assert_int_eq(x509_cert_build(ctx, &base, ca_signer, &x), 0);
                ck_assert_int_eq(identity_cert_check(ctx, x, ca, NULL, &c), 0);
                ck_assert_msg(c.n_problems == 0, "%s", c.n_problems ? c.problems[0] : "");
                identity_check_clear(&c);
                X509_free(x);
        }
        expect_problem(&base, m_no_san, "subjectAltName: missing");
        expect_problem(&base, m_days, "notAfter is not 99991231235959Z");
        expect_problem(&base, m_ku, "keyUsage");
        expect_problem(&base, m_ku_missing_ka, "keyUsage");
        expect_problem(&base, m_eku, "clientAuth missing");
        expect_problem(&base, m_ca, "must not be a CA");
        expect_problem(&base, m_serial, "8 bytes");
        expect_problem(&base, m_no_ski, "subjectKeyIdentifier: missing");
        expect_problem(&base, m_subject, "no serialNumber");
        expect_problem(&base, m_upper, "not an ECID");
        expect_problem(&base, m_other_serial, "is not the subject's ECID");
        free(hmn);
        X509_NAME_free(subj);
}
END_TEST

START_TEST(t_csr_parse)
{
        x509_signer *s = NULL;
        X509_REQ *req = NULL, *got = NULL;
        struct x509_csr_spec cs = { .subject = "/CN=device" };
        unsigned char *der = NULL;
        size_t len = 0;

        ck_assert_int_eq(x509_signer_soft(ctx, p256, &s), 0);
        ck_assert_int_eq(x509_csr_build(ctx, &cs, s, &req), 0);
        ck_assert_int_eq(x509_csr_der(req, &der, &len), 0);
        ck_assert_int_eq(identity_csr_parse(ctx, "d.csr", der, len, &got), 0);
        ck_assert_int_eq(EVP_PKEY_eq(X509_REQ_get0_pubkey(got), p256), 1);
        X509_REQ_free(got);
        der[len - 3] ^= 0x10; /* inside the signature */
        ck_assert_int_eq(identity_csr_parse(ctx, "d.csr", der, len, &got), -EBADMSG);
        ck_assert_int_eq(identity_csr_parse(ctx, "d.csr", der, len / 2, &got), -EINVAL);
        ck_assert_int_eq(identity_csr_parse(ctx, "d.csr", (const unsigned char *)"", 0, &got), -EINVAL);
        OPENSSL_free(der);
        X509_REQ_free(req);
        x509_signer_free(s);
        /* a weak key with a valid self-signature */
        ck_assert_int_eq(x509_signer_soft(ctx, rsa1k, &s), 0);
        ck_assert_int_eq(x509_csr_build(ctx, &cs, s, &req), 0);
        ck_assert_int_eq(x509_csr_der(req, &der, &len), 0);
        ck_assert_int_eq(identity_csr_parse(ctx, "weak.csr", der, len, &got), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "weak.csr: RSA key of 1024 bits"));
        OPENSSL_free(der);
        X509_REQ_free(req);
        x509_signer_free(s);
}
END_TEST

int main(void)
{
        Suite *su = suite_create("identity");
        TCase *tc = tcase_create("identity");
        SRunner *sr;
        fl_ctx *c0 = NULL;
        int failed;

        ca_key = EVP_EC_gen("P-384");
        p256 = EVP_EC_gen("P-256");
        p384 = EVP_EC_gen("P-384");
        p521 = EVP_EC_gen("P-521");
        k1 = EVP_EC_gen("secp256k1");
        rsa2k = EVP_RSA_gen(2048);
        rsa1k = EVP_RSA_gen(1024);
        ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!ca_key || !p256 || !p384 || !p521 || !k1 || !rsa2k || !rsa1k || !ed || fl_ctx_new(&c0) < 0)
                return 1;
        {
                struct x509_cert_spec spec = { .subject = "/O=Acme/CN=Acme Device CA", .not_after = IDENTITY_NOT_AFTER,
                                               .ca = 1, .path_len = 0, .bc_critical = true,
                                               .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN, .ski = true, .aki = true,
                                               .hash = X509H_SHA384 };
                if (x509_signer_soft(c0, ca_key, &ca_signer) < 0 || x509_cert_build(c0, &spec, ca_signer, &ca) < 0)
                        return 1;
        }
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_key_policy);
        tcase_add_test(tc, t_hmn);
        tcase_add_test(tc, t_ecid);
        tcase_add_test(tc, t_issue);
        tcase_add_test(tc, t_subject_rules);
        tcase_add_test(tc, t_check_deviations);
        tcase_add_test(tc, t_csr_parse);
        suite_add_tcase(su, tc);
        sr = srunner_create(su);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        X509_free(ca);
        x509_signer_free(ca_signer);
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(p256);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(p521);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(rsa2k);
        EVP_PKEY_free(rsa1k);
        EVP_PKEY_free(ed);
        fl_ctx_free(c0);
        return failed ? 1 : 0;
}
