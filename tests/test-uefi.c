/* test-uefi.c — unit tests for lib/uefi.c formats. Expected bytes are
 * written out by hand from the UEFI layouts (shared/reference/
 * uefi-secure-boot.md §1) and the devicetree spec, not produced by the code
 * under test. Byte identity with efitools runs in tests/hsm-uefi.sh. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "uefi.h"

static fl_ctx *ctx;
static EVP_PKEY *rsa, *ec;

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

static X509 *mkcert(EVP_PKEY *key, const char *cn)
{
        struct x509_cert_spec spec = { .subject = cn, .days = 10, .ca = 1, .path_len = -1, .ski = true };
        x509_signer *s = NULL;
        X509 *x = NULL;

        ck_assert_int_eq(x509_signer_soft(ctx, key, &s), 0);
        ck_assert_int_eq(x509_cert_build(ctx, &spec, s, &x), 0);
        x509_signer_free(s);
        return x;
}

START_TEST(t_guid)
{
        static const uint8_t global[16] = { 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                            0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c };
        static const uint8_t owner[16] = { 0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33,
                                           0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55 };
        static const char *bad[] = { "", "8be4df61-93ca-11d2-aa0d-00e098032b8", "8be4df6193ca-11d2-aa0d-00e098032b8c0",
                                     "8be4df61-93ca-11d2-aa0d-00e098032b8g", "8be4df6-193ca-11d2-aa0d-00e098032b8c",
                                     "{8be4df61-93ca-11d2-aa0d-00e098032b8c}", "8be4df61 93ca 11d2 aa0d 00e098032b8c" };
        efi_guid g;
        char s[37];

        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "8BE4DF61-93CA-11D2-AA0D-00E098032B8C", &g), 0);
        ck_assert_mem_eq(g.b, global, 16);
        ck_assert_mem_eq(EFI_GLOBAL_VARIABLE_GUID.b, global, 16);
        uefi_guid_format(&g, s);
        ck_assert_str_eq(s, "8be4df61-93ca-11d2-aa0d-00e098032b8c");
        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "11111111-2222-3333-4444-555555555555", &g), 0);
        ck_assert_mem_eq(g.b, owner, 16);
        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "a5c059a1-94e4-4aa7-87b5-ab155c2bf072", &g), 0);
        ck_assert(uefi_guid_eq(&g, &EFI_CERT_X509_GUID));
        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "d719b2cb-3d3a-4596-a3bc-dad00e67656f", &g), 0);
        ck_assert(uefi_guid_eq(&g, &EFI_IMAGE_SECURITY_DATABASE_GUID));
        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "4aafd29d-68df-49ee-8aa9-347d375665a7", &g), 0);
        ck_assert(uefi_guid_eq(&g, &EFI_CERT_TYPE_PKCS7_GUID));
        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "c1c41626-504c-4092-aca9-41f936934328", &g), 0);
        ck_assert(uefi_guid_eq(&g, &EFI_CERT_SHA256_GUID));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(uefi_guid_parse(ctx, "--owner-guid", bad[i], &g) == -EINVAL, "accepted %s", bad[i]);
                ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "--owner-guid"));
        }
        ck_assert_int_eq(uefi_guid_random(&g), 0);
        uefi_guid_format(&g, s);
        ck_assert_int_eq(s[14], '4');
        ck_assert_ptr_nonnull(strchr("89ab", s[19]));
}
END_TEST

START_TEST(t_time)
{
        static const uint8_t t2024[16] = { 0xe8, 0x07, 0x01, 0x01 };
        static const uint8_t t2026[16] = { 0xea, 0x07, 0x0c, 0x1f, 0x17, 0x3b, 0x3b };
        static const char *bad[] = { "Jul 21 09:39:37 BST 2012", "2026-02-29 00:00:00", "2024-02-30", "1900-02-29",
                                     "1899-12-31 23:59:59", "2026-1-1", "2026-01-01 24:00:00", "2026-01-01 00:60:00",
                                     "2026-01-01 00:00:60", "2026-00-10", "2026-01-01 00:00:00 ", "2026-01-01_00:00:00",
                                     "+026-01-01", "" };
        struct efi_time t;
        uint8_t b[16];
        char s[20];

        ck_assert_int_eq(uefi_time_parse(ctx, "t", "2024-01-01 00:00:00", &t), 0);
        uefi_time_encode(&t, b);
        ck_assert_mem_eq(b, t2024, 16);
        ck_assert_int_eq(uefi_time_parse(ctx, "t", "2024-01-01", &t), 0);
        uefi_time_encode(&t, b);
        ck_assert_mem_eq(b, t2024, 16);
        ck_assert_int_eq(uefi_time_parse(ctx, "t", "2026-12-31T23:59:59Z", &t), 0);
        uefi_time_encode(&t, b);
        ck_assert_mem_eq(b, t2026, 16);
        ck_assert_int_eq(uefi_time_add(&t, 1), 0);
        uefi_time_format(&t, s);
        ck_assert_str_eq(s, "2027-01-01 00:00:00");
        ck_assert_int_eq(uefi_time_parse(ctx, "t", "2024-02-29 12:00:00", &t), 0);
        ck_assert_int_eq(uefi_time_parse(ctx, "t", "2000-02-29", &t), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(uefi_time_parse(ctx, "--timestamp", bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "--timestamp"));
        }
        /* Decoding refuses the fields a time-based write must leave zero. */
        ck_assert_int_eq(uefi_time_decode(ctx, "x", t2026, &t), 0);
        ck_assert_uint_eq(t.day, 31);
        memcpy(b, t2026, 16);
        b[14] = 1; /* Daylight */
        ck_assert_int_eq(uefi_time_decode(ctx, "x", b, &t), -EINVAL);
        memcpy(b, t2024, 16);
        b[3] = 0; /* day 0: what efitools writes for an unparsable -t */
        ck_assert_int_eq(uefi_time_decode(ctx, "x", b, &t), -EINVAL);
}
END_TEST

START_TEST(t_esl_layout)
{
        static const uint8_t want[] = {
                0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72, /* X509 */
                0x2f, 0x00, 0x00, 0x00, /* ListSize 28+16+3 */
                0x00, 0x00, 0x00, 0x00, /* HeaderSize */
                0x13, 0x00, 0x00, 0x00, /* SignatureSize 16+3 */
                0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                0x30, 0x01, 0x00,
        };
        static const uint8_t der[] = { 0x30, 0x01, 0x00 };
        unsigned char *e = NULL, big[777] = { 0 };
        size_t n = 0;
        efi_guid owner;

        ck_assert_int_eq(uefi_guid_parse(ctx, "t", "11111111-2222-3333-4444-555555555555", &owner), 0);
        ck_assert_int_eq(uefi_esl_x509(ctx, &owner, der, sizeof(der), &e, &n), 0);
        ck_assert_uint_eq(n, sizeof(want));
        ck_assert_mem_eq(e, want, n);
        free(e);
        /* The reference's example: a 777-byte certificate gives 821 bytes. */
        ck_assert_int_eq(uefi_esl_x509(ctx, &owner, big, sizeof(big), &e, &n), 0);
        ck_assert_uint_eq(n, 821);
        ck_assert_uint_eq(e[16] | e[17] << 8, 0x335);
        ck_assert_uint_eq(e[24] | e[25] << 8, 0x319);
        free(e);
}
END_TEST

START_TEST(t_esl_sha256)
{
        unsigned char h[64], *e = NULL;
        size_t n = 0;
        efi_guid owner = { { 0 } };

        for (int i = 0; i < 64; i++)
                h[i] = (unsigned char)i;
        ck_assert_int_eq(uefi_esl_sha256(ctx, &owner, h, 2, &e, &n), 0);
        ck_assert_uint_eq(n, 124);
        ck_assert_mem_eq(e, EFI_CERT_SHA256_GUID.b, 16);
        ck_assert_uint_eq(e[16], 0x7c); /* 28 + 2 × 48 */
        ck_assert_uint_eq(e[20], 0);
        ck_assert_uint_eq(e[24], 0x30); /* 16 + 32 */
        ck_assert_mem_eq(e + 28 + 16, h, 32);
        ck_assert_mem_eq(e + 28 + 48 + 16, h + 32, 32);
        free(e);
        ck_assert_int_eq(uefi_esl_sha256(ctx, &owner, h, 0, &e, &n), -EINVAL);
}
END_TEST

START_TEST(t_esl_parse)
{
        X509 *a = mkcert(rsa, "/CN=a"), *b = mkcert(rsa, "/CN=b"), *c = mkcert(ec, "/CN=c");
        unsigned char *da = NULL, *db = NULL, *dc = NULL, *ea = NULL, *eb = NULL, *ecl = NULL, *buf;
        size_t la, lb, lc, na, nb, nc, n = 0;
        struct uefi_esl_entry *ent = NULL;
        efi_guid o1, o2;

        uefi_guid_random(&o1);
        uefi_guid_random(&o2);
        x509_cert_der(a, &da, &la);
        x509_cert_der(b, &db, &lb);
        x509_cert_der(c, &dc, &lc);
        uefi_esl_x509(ctx, &o1, da, la, &ea, &na);
        uefi_esl_x509(ctx, &o2, db, lb, &eb, &nb);
        uefi_esl_x509(ctx, &o1, dc, lc, &ecl, &nc);
        buf = malloc(na + nb);
        memcpy(buf, ea, na);
        memcpy(buf + na, eb, nb);

        ck_assert_int_eq(uefi_esl_parse(ctx, "db.esl", buf, na + nb, &ent, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(ent[0].list, 0);
        ck_assert_uint_eq(ent[1].list, 1);
        ck_assert_uint_eq(ent[0].offset, 28);
        ck_assert_uint_eq(ent[1].offset, na + 28);
        ck_assert_uint_eq(ent[1].len, lb);
        ck_assert_mem_eq(ent[1].data, db, lb);
        ck_assert(uefi_guid_eq(&ent[1].owner, &o2));
        free(ent);
        ent = NULL;
        ck_assert_int_eq(uefi_esl_parse(ctx, "empty", buf, 0, &ent, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(ent);
        ent = NULL;
        /* Truncated header, a size past the end, a short signature size. */
        ck_assert_int_eq(uefi_esl_parse(ctx, "t.esl", buf, na + 20, &ent, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "t.esl"));
        ck_assert_int_eq(uefi_esl_parse(ctx, "t.esl", buf, na - 1, &ent, &n), -EINVAL);
        buf[24] = 8;
        ck_assert_int_eq(uefi_esl_parse(ctx, "t.esl", buf, na, &ent, &n), -EINVAL);
        buf[24] = ea[24];
        /* A broken certificate inside. */
        buf[44 + 1] ^= 0x7f;
        ck_assert_int_eq(uefi_esl_parse(ctx, "t.esl", buf, na, &ent, &n), -EINVAL);
        buf[44 + 1] ^= 0x7f;
        ck_assert_int_eq(uefi_esl_parse(ctx, "t.esl", buf, na, &ent, &n), 0);
        free(ent);
        ent = NULL;
        /* edk2 reads X.509 entries as RSA keys. */
        ck_assert_int_eq(uefi_esl_parse(ctx, "ec.esl", ecl, nc, &ent, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "not RSA"));
        ck_assert_ptr_null(ent);

        free(buf);
        free(ea);
        free(eb);
        free(ecl);
        OPENSSL_free(da);
        OPENSSL_free(db);
        OPENSSL_free(dc);
        X509_free(a);
        X509_free(b);
        X509_free(c);
}
END_TEST

START_TEST(t_signed_buffer)
{
        static const uint8_t pk[] = { 0x50, 0x00, 0x4b, 0x00,                                     /* "PK" */
                                      0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, /* global */
                                      0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c, 0x27, 0x00, 0x00, 0x00, /* 0x27 */
                                      0xe8, 0x07, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 'A',  'B' };
        static const uint8_t dbx[] = { 0x64, 0x00, 0x62, 0x00, 0x78, 0x00,                       /* "dbx" */
                                       0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, /* image db */
                                       0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f, 0x67, 0x00, 0x00, 0x00, /* 0x67 */
                                       0xe8, 0x07, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
        struct efi_time t = { 2024, 1, 1, 0, 0, 0 };
        unsigned char *b = NULL;
        size_t n = 0;

        ck_assert_int_eq(uefi_signed_buffer(UEFI_VAR_PK, UEFI_ATTRS_REPLACE, &t, "AB", 2, &b, &n), 0);
        ck_assert_uint_eq(n, sizeof(pk));
        ck_assert_mem_eq(b, pk, n);
        free(b);
        ck_assert_int_eq(uefi_signed_buffer(UEFI_VAR_DBX, UEFI_ATTRS_APPEND, &t, NULL, 0, &b, &n), 0);
        ck_assert_uint_eq(n, sizeof(dbx));
        ck_assert_mem_eq(b, dbx, n);
        free(b);
}
END_TEST

START_TEST(t_auth)
{
        static const uint8_t pkcs7_guid[16] = { 0x9d, 0xd2, 0xaf, 0x4a, 0xdf, 0x68, 0xee, 0x49,
                                                0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7 };
        X509 *cert = mkcert(rsa, "/CN=PK"), *other = mkcert(rsa, "/CN=other");
        struct efi_time t = { 2026, 1, 1, 0, 0, 0 };
        x509_signer *s = NULL;
        unsigned char *a = NULL, payload[100];
        size_t n = 0, dw;
        struct uefi_auth au;

        memset(payload, 0x5a, sizeof(payload));
        ck_assert_int_eq(x509_signer_soft(ctx, rsa, &s), 0);
        ck_assert_int_eq(uefi_auth_build(ctx, s, cert, UEFI_VAR_KEK, UEFI_ATTRS_REPLACE, &t, payload, sizeof(payload),
                                         &a, &n),
                         0);
        /* EFI_TIME, WIN_CERTIFICATE header, CertType, CertData, payload. */
        ck_assert_uint_eq(a[0], 0xea);
        ck_assert_uint_eq(a[1], 0x07);
        dw = (size_t)a[16] | (size_t)a[17] << 8 | (size_t)a[18] << 16 | (size_t)a[19] << 24;
        ck_assert_uint_eq(16 + dw + sizeof(payload), n);
        ck_assert_uint_eq(a[20], 0x00);
        ck_assert_uint_eq(a[21], 0x02);
        ck_assert_uint_eq(a[22], 0xf1);
        ck_assert_uint_eq(a[23], 0x0e);
        ck_assert_mem_eq(a + 24, pkcs7_guid, 16);
        ck_assert_uint_eq(a[40], 0x30);
        ck_assert_uint_eq(a[41], 0x82);
        ck_assert_mem_eq(a + n - sizeof(payload), payload, sizeof(payload));

        ck_assert_int_eq(uefi_auth_parse(ctx, "KEK.auth", a, n, &au), 0);
        ck_assert_uint_eq(au.payload_len, sizeof(payload));
        ck_assert_uint_eq(au.sig_len, dw - 24);
        ck_assert_int_eq(uefi_auth_verify(ctx, "KEK.auth", UEFI_VAR_KEK, UEFI_ATTRS_REPLACE, a, n, cert), 0);
        /* Other variable, other attributes, other key, changed payload. */
        ck_assert_int_eq(uefi_auth_verify(ctx, "x", UEFI_VAR_DB, UEFI_ATTRS_REPLACE, a, n, cert), -EBADMSG);
        ck_assert_int_eq(uefi_auth_verify(ctx, "x", UEFI_VAR_KEK, UEFI_ATTRS_APPEND, a, n, cert), -EBADMSG);
        ck_assert_int_eq(uefi_auth_verify(ctx, "x", UEFI_VAR_KEK, UEFI_ATTRS_REPLACE, a, n, other), -EBADMSG);
        a[n - 1] ^= 1;
        ck_assert_int_eq(uefi_auth_verify(ctx, "x", UEFI_VAR_KEK, UEFI_ATTRS_REPLACE, a, n, cert), -EBADMSG);
        a[n - 1] ^= 1;
        /* Structural checks. */
        ck_assert_int_eq(uefi_auth_parse(ctx, "x", a, 39, &au), -EINVAL);
        a[20] = 0x01;
        ck_assert_int_eq(uefi_auth_parse(ctx, "x", a, n, &au), -EINVAL);
        a[20] = 0x00;
        a[22] = 0x02;
        ck_assert_int_eq(uefi_auth_parse(ctx, "x", a, n, &au), -EINVAL);
        a[22] = 0xf1;
        a[16] = 0xff;
        a[17] = 0xff;
        ck_assert_int_eq(uefi_auth_parse(ctx, "x", a, n, &au), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "dwLength"));
        free(a);
        a = NULL;
        /* An empty payload (noPK) is fine. */
        ck_assert_int_eq(uefi_auth_build(ctx, s, cert, UEFI_VAR_PK, UEFI_ATTRS_REPLACE, &t, NULL, 0, &a, &n), 0);
        ck_assert_int_eq(uefi_auth_parse(ctx, "noPK.auth", a, n, &au), 0);
        ck_assert_uint_eq(au.payload_len, 0);
        free(a);
        x509_signer_free(s);
        X509_free(cert);
        X509_free(other);
}
END_TEST

START_TEST(t_auth_contentinfo_refused)
{
        /* CertData as a ContentInfo (old efitools): 30 82 LL LL 06 09 2a 86
         * 48 86 f7 0d 01 07 02 …, so offset 13 is not the SHA-256 OID. */
        uint8_t a[120] = { 0xea, 0x07, 0x01, 0x01 };
        struct uefi_auth au;

        a[16] = 24 + 60;
        a[20] = 0x00;
        a[21] = 0x02;
        a[22] = 0xf1;
        a[23] = 0x0e;
        memcpy(a + 24, EFI_CERT_TYPE_PKCS7_GUID.b, 16);
        memcpy(a + 40, "\x30\x82\x00\x38\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02", 15);
        ck_assert_int_eq(uefi_auth_parse(ctx, "old.auth", a, sizeof(a), &au), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "edk2"));
}
END_TEST

START_TEST(t_conf)
{
        static const char good[] = "# comment\n"
                                   "\n"
                                   "UEFI_DB_1_CERT_FILE=\"db_1.crt\";  # trailing\n"
                                   "  UEFI_DEFAULT_PK_ESL=PK.esl\r\n"
                                   "UEFI_DEFAULT_KEK_ESL_0=\"old.esl\"\n"
                                   "UEFI_DEFAULT_KEK_ESL_0=\"KEK.esl\" ;\n"
                                   "UEFI_DEFAULT_DBX_ESL_0=\"\";\n"
                                   "UEFI_DEFAULT_DB_ESL_0=\"db.esl\"";
        static const char *bad[] = { "A=\"$(touch x)\"\n", "A=\"a/b.esl\"\n", "export A=x\n", "A=\"x\" junk\n",
                                     "A=\"x\n", "1A=x\n", "A x\n", "A=`x`\n", "A=\"..\"\n" };
        struct uefi_conf c = { 0 };

        ck_assert_int_eq(uefi_conf_parse(ctx, "uefi_keys.conf", good, strlen(good), &c), 0);
        ck_assert_uint_eq(c.n, 6);
        ck_assert_str_eq(uefi_conf_get(&c, "UEFI_DB_1_CERT_FILE"), "db_1.crt");
        ck_assert_str_eq(uefi_conf_get(&c, "UEFI_DEFAULT_PK_ESL"), "PK.esl");
        ck_assert_str_eq(uefi_conf_get(&c, "UEFI_DEFAULT_KEK_ESL_0"), "KEK.esl"); /* the last one wins */
        ck_assert_str_eq(uefi_conf_get(&c, "UEFI_DEFAULT_DBX_ESL_0"), "");
        ck_assert_str_eq(uefi_conf_get(&c, "UEFI_DEFAULT_DB_ESL_0"), "db.esl");
        ck_assert_ptr_null(uefi_conf_get(&c, "UEFI_DB_1_KEY_FILE"));
        ck_assert_uint_eq(c.vars[1].line, 4);
        uefi_conf_free(&c);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ck_assert_msg(uefi_conf_parse(ctx, "k.conf", bad[i], strlen(bad[i]), &c) == -EINVAL, "accepted %s",
                              bad[i]);
                ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "k.conf:1"));
        }
        ck_assert_int_eq(uefi_conf_parse(ctx, "bin", "A=x\0", 4, &c), -EINVAL);
}
END_TEST

START_TEST(t_dts)
{
        static const unsigned char pk[] = { 0x01, 0x02, 0x03 }, kek[20] = { 0xaa }, db[] = { 0xff };
        unsigned char *got = NULL;
        size_t n = 0;
        char *t = uefi_dts_default(pk, sizeof(pk), kek, sizeof(kek), db, sizeof(db), NULL, 0);
        const char *comment = "/* PKDefault { data = [00]; }; */\n";

        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(strstr(t, "/dts-v1/;\n/plugin/;\n"));
        ck_assert_ptr_nonnull(strstr(t, "overlay-name = \"UEFI Secure Boot Keys\";"));
        ck_assert_ptr_nonnull(strstr(t, "target-path = \"/\";"));
        ck_assert_ptr_nonnull(strstr(t, "sw-modules = \"uefi\";"));
        ck_assert_ptr_null(strstr(t, "dbxDefault"));
        /* Order: the NVIDIA vendor GUID node with EnrollDefaultSecurityKeys,
         * then the global one with PK, KEK, db. */
        ck_assert_ptr_nonnull(strstr(t, "EnrollDefaultSecurityKeys {\n                                data = [01];"));
        ck_assert(strstr(t, "gNVIDIAPublicVariableGuid") < strstr(t, "gEfiGlobalVariableGuid"));
        ck_assert(strstr(t, "PKDefault") < strstr(t, "KEKDefault"));
        ck_assert(strstr(t, "KEKDefault") < strstr(t, "dbDefault"));
        ck_assert_int_eq(uefi_dts_get(ctx, "d", t, strlen(t), "PKDefault", &got, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_mem_eq(got, pk, 3);
        free(got);
        ck_assert_int_eq(uefi_dts_get(ctx, "d", t, strlen(t), "KEKDefault", &got, &n), 0);
        ck_assert_uint_eq(n, 20);
        ck_assert_mem_eq(got, kek, 20);
        free(got);
        ck_assert_int_eq(uefi_dts_get(ctx, "d", t, strlen(t), "dbxDefault", &got, &n), -ENOENT);
        free(t);
        /* A comment that looks like the node is not the node; [0102] and
         * [01 02] are the same bytes to dtc. */
        {
                char buf[256];
                snprintf(buf, sizeof(buf), "%s/ { x { PKDefault { data = [0102 03]; }; }; };", comment);
                ck_assert_int_eq(uefi_dts_get(ctx, "d", buf, strlen(buf), "PKDefault", &got, &n), 0);
                ck_assert_uint_eq(n, 3);
                ck_assert_mem_eq(got, pk, 3);
                free(got);
                snprintf(buf, sizeof(buf), "/ { PKDefault { data = [01]; }; PKDefault { data = [02]; }; };");
                ck_assert_int_eq(uefi_dts_get(ctx, "d", buf, strlen(buf), "PKDefault", &got, &n), -EINVAL);
                snprintf(buf, sizeof(buf), "/ { PKDefault { data = [0g]; }; };");
                ck_assert_int_eq(uefi_dts_get(ctx, "d", buf, strlen(buf), "PKDefault", &got, &n), -EINVAL);
        }
}
END_TEST

START_TEST(t_dts_update)
{
        static const unsigned char a[] = { 1 }, b[] = { 2 }, c[] = { 3 };
        struct uefi_update_blob blobs[] = { { UEFI_VAR_DB, a, 1 }, { UEFI_VAR_KEK, b, 1 }, { UEFI_VAR_DB, c, 1 } };
        char *t = uefi_dts_update(blobs, 3);
        unsigned char *got = NULL;
        size_t n = 0;

        ck_assert_ptr_nonnull(t);
        ck_assert(strstr(t, "kekSigned_0") < strstr(t, "dbSigned_0"));
        ck_assert(strstr(t, "dbSigned_0") < strstr(t, "dbSigned_1"));
        ck_assert_ptr_null(strstr(t, "gEfiGlobalVariableGuid"));
        ck_assert_int_eq(uefi_dts_get(ctx, "u", t, strlen(t), "dbSigned_1", &got, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(got[0], 3);
        free(got);
        /* Update nodes are not non-volatile (only the *Default ones are). */
        {
                const char *k = strstr(t, "kekSigned_0"), *end = strstr(k, "};");
                ck_assert_ptr_null(memmem(k, (size_t)(end - k), "non-volatile", 12));
        }
        free(t);
}
END_TEST

/* A flattened device tree written out by hand (devicetree spec §5):
 * / { a { data = [01 02]; }; }; */
static const uint8_t fdt[] = {
        0xd0, 0x0d, 0xfe, 0xed, 0x00, 0x00, 0x00, 0x69, /* magic, totalsize 105 */
        0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00, 0x64, /* off_dt_struct 56, off_dt_strings 100 */
        0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x11, /* off_mem_rsvmap 40, version 17 */
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, /* last_comp_version 16, boot_cpuid 0 */
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x2c, /* size_dt_strings 5, size_dt_struct 44 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* empty reservation map */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* BEGIN_NODE "" */
        0x00, 0x00, 0x00, 0x01, 'a',  0x00, 0x00, 0x00, /* BEGIN_NODE "a" */
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, /* PROP len 2 */
        0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, /* nameoff 0, value */
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, /* END_NODE ×2 */
        0x00, 0x00, 0x00, 0x09,                         /* END */
        'd',  'a',  't',  'a',  0x00,
};

START_TEST(t_fdt)
{
        const unsigned char *v = NULL;
        size_t n = 0;
        uint8_t bad[sizeof(fdt)];

        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", fdt, sizeof(fdt), "/a", "data", &v, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(v[0], 1);
        ck_assert_uint_eq(v[1], 2);
        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", fdt, sizeof(fdt), "/b", "data", &v, &n), -ENOENT);
        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", fdt, sizeof(fdt), "/a", "other", &v, &n), -ENOENT);
        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", fdt, sizeof(fdt) - 1, "/a", "data", &v, &n), -EINVAL);
        memcpy(bad, fdt, sizeof(fdt));
        bad[0] = 0;
        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", bad, sizeof(bad), "/a", "data", &v, &n), -EINVAL);
        memcpy(bad, fdt, sizeof(fdt));
        bad[56 + 8 + 8 + 7] = 0x40; /* property length past the block */
        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", bad, sizeof(bad), "/a", "data", &v, &n), -EINVAL);
        memcpy(bad, fdt, sizeof(fdt));
        bad[56 + 8 + 8 + 8 + 3] = 0x10; /* name offset past the strings */
        ck_assert_int_eq(uefi_fdt_get(ctx, "t.dtbo", bad, sizeof(bad), "/a", "data", &v, &n), -EINVAL);
}
END_TEST

START_TEST(t_vars)
{
        enum uefi_var v;

        ck_assert_int_eq(uefi_var_from_name("db", &v), 0);
        ck_assert_int_eq(v, UEFI_VAR_DB);
        ck_assert_int_eq(uefi_var_from_name("DB", &v), -EINVAL);
        ck_assert_int_eq(uefi_var_from_name("KEK", &v), 0);
        ck_assert_ptr_eq(uefi_var_vendor(v), &EFI_GLOBAL_VARIABLE_GUID);
        ck_assert_ptr_eq(uefi_var_vendor(UEFI_VAR_DBX), &EFI_IMAGE_SECURITY_DATABASE_GUID);
        ck_assert_str_eq(uefi_role_name(UEFI_ROLE_DB2), "uefi-db2");
}
END_TEST

int main(void)
{
        Suite *su = suite_create("uefi");
        TCase *tc = tcase_create("uefi");
        SRunner *sr;
        int failed;

        rsa = EVP_RSA_gen(2048);
        ec = EVP_EC_gen("P-256");
        if (!rsa || !ec)
                return 1;
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_guid);
        tcase_add_test(tc, t_time);
        tcase_add_test(tc, t_esl_layout);
        tcase_add_test(tc, t_esl_sha256);
        tcase_add_test(tc, t_esl_parse);
        tcase_add_test(tc, t_signed_buffer);
        tcase_add_test(tc, t_auth);
        tcase_add_test(tc, t_auth_contentinfo_refused);
        tcase_add_test(tc, t_conf);
        tcase_add_test(tc, t_dts);
        tcase_add_test(tc, t_dts_update);
        tcase_add_test(tc, t_fdt);
        tcase_add_test(tc, t_vars);
        suite_add_tcase(su, tc);
        sr = srunner_create(su);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
        return failed ? 1 : 0;
}
