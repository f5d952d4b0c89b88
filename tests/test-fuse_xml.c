/* test-fuse_xml.c — the genericfuse writer (exact text, 0600, atomic,
 * provenance comment, TEST magic) and the hardened parser: every form rule
 * with the exact problem it reports, hostile documents (entities, DTDs,
 * external entities, deep nesting, huge files) refused without expanding
 * anything, and NVIDIA's sample configurations accepted. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_xml.h"

#define H64 "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
#define K32 "2222222222222222222222222222222222222222222222222222222222222222"

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

static struct fuse_plan *sample_plan(void)
{
        struct fuse_plan *p = NULL;
        unsigned char h[64], k[32], w[4] = { 0, 0, 0x02, 0x0b }, one[4] = { 0, 0, 0, 1 };

        memset(h, 0x11, sizeof(h));
        memset(k, 0x22, sizeof(k));
        ck_assert_int_eq(fuse_plan_new(FL_CHIP_T234, &p), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "SecureBootKey"), k, 0), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "OemK1"), k, 0), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "PublicKeyHash"), h, 0), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "BootSecurityInfo"), w, 0), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "SecurityMode"), one, 0), 0);
        p->keyset_name = strdup("line-1 --evil-->");
        p->keyset_path = strdup("/keys/ks.json");
        p->profile = strdup("lab");
        return p;
}

/* ---- writing ------------------------------------------------------------- */

START_TEST(t_render_exact)
{
        struct fuse_plan *p = sample_plan();
        struct fl_secret s = { 0 };
        char sha[65], want[4096];

        ck_assert_int_eq(fuse_plan_sha256(ctx, p, sha), 0);
        ck_assert_int_eq(fuse_xml_render(ctx, p, &s), 0);
        snprintf(want, sizeof(want),
                 "<!-- fuseline fuse-xml %s\n"
                 "     keyset: line_1 __evil___ (/keys/ks.json), profile: lab\n"
                 "     chip: t234, plan sha256: %s\n"
                 "     LAB KEYSET: test keys only, never burn this into a product\n"
                 "     This file can hold secret key values: keep it 0600, delete it after use. -->\n"
                 "<genericfuse MagicId=\"0x45535546\" version=\"1.0.0\">\n"
                 "    <fuse name=\"SecureBootKey\" size=\"32\" value=\"0x" K32 "\"/>\n"
                 "    <fuse name=\"OemK1\" size=\"32\" value=\"0x" K32 "\"/>\n"
                 "    <fuse name=\"PublicKeyHash\" size=\"64\" value=\"0x" H64 "\"/>\n"
                 "    <fuse name=\"BootSecurityInfo\" size=\"4\" value=\"0x0000020b\"/>\n"
                 "    <fuse name=\"SecurityMode\" size=\"4\" value=\"0x00000001\"/>\n"
                 "</genericfuse>\n",
                 fl_version(), sha);
        ck_assert_uint_eq(s.len, strlen(want));
        ck_assert_int_eq(memcmp(s.data, want, s.len), 0);
        secret_wipe(&s);
        /* TEST magic, production profile. */
        p->magic = FUSE_MAGIC_TEST;
        free(p->profile);
        p->profile = strdup("production");
        ck_assert_int_eq(fuse_xml_render(ctx, p, &s), 0);
        ck_assert_ptr_nonnull(memmem(s.data, s.len, "MagicId=\"0x54534554\"", 20));
        ck_assert_ptr_nonnull(memmem(s.data, s.len, "TEST MagicId: the device processes every fuse and burns nothing", 63));
        ck_assert_ptr_null(memmem(s.data, s.len, "LAB KEYSET", 10));
        secret_wipe(&s);
        fuse_plan_free(p);
}
END_TEST

/* What we write, we read back identically, with no problem. */
START_TEST(t_roundtrip)
{
        struct fuse_plan *p = sample_plan(), *q = NULL;
        struct fuse_problems probs = { 0 };
        struct fl_secret s = { 0 };
        char a[65], b[65];

        ck_assert_int_eq(fuse_xml_render(ctx, p, &s), 0);
        ck_assert_int_eq(fuse_xml_check(ctx, s.data, s.len, FL_CHIP_T234, NULL, &q, &probs), 0);
        ck_assert_msg(probs.n == 0, "%s", probs.n ? probs.v[0].msg : "");
        ck_assert_ptr_nonnull(q);
        ck_assert_uint_eq(q->n, p->n);
        for (size_t i = 0; i < p->n; i++) {
                ck_assert_ptr_eq(q->e[i].def, p->e[i].def);
                ck_assert_int_eq(memcmp(q->e[i].value, p->e[i].value, p->e[i].def->size), 0);
                ck_assert_uint_eq(q->e[i].line, 7 + i); /* after the 5-line comment + root */
        }
        ck_assert_int_eq(fuse_plan_sha256(ctx, p, a), 0);
        ck_assert_int_eq(fuse_plan_sha256(ctx, q, b), 0);
        ck_assert_str_eq(a, b);
        secret_wipe(&s);
        fuse_plan_free(q);
        fuse_plan_free(p);
}
END_TEST

START_TEST(t_write_mode)
{
        struct fuse_plan *p = sample_plan();
        char dir[] = "/tmp/fl-fx-XXXXXX", path[64];
        struct stat st;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/fuse.xml", dir);
        umask(022);
        ck_assert_int_eq(fuse_xml_write(ctx, p, path), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
        /* Overwriting keeps 0600 and leaves no temp file behind. */
        ck_assert_int_eq(fuse_xml_write(ctx, p, path), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
        unlink(path);
        ck_assert_int_eq(rmdir(dir), 0);
        /* A directory that does not exist: an error naming it. */
        ck_assert_int_lt(fuse_xml_write(ctx, p, "/nonexistent-dir/fuse.xml"), 0);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "/nonexistent-dir"));
        fuse_plan_free(p);
}
END_TEST

/* ---- parsing: form rules ----------------------------------------------------- */

#define ROOT "<genericfuse MagicId=\"0x45535546\" version=\"1.0.0\">"
#define END "</genericfuse>"

static void expect_xml(enum fl_chip chip, const char *xml, const char *rule, const char *msg, size_t nprobs)
{
        struct fuse_problems probs = { 0 };
        char all[4096] = "";
        size_t off = 0;
        bool found = false;

        ck_assert_int_eq(fuse_xml_check(ctx, (const unsigned char *)xml, strlen(xml), chip, NULL, NULL, &probs), 0);
        for (size_t i = 0; i < probs.n; i++) {
                off += (size_t)snprintf(all + off, sizeof(all) - off, "[%s] %s\n", probs.v[i].rule, probs.v[i].msg);
                found |= !strcmp(probs.v[i].rule, rule) && !strcmp(probs.v[i].msg, msg);
        }
        ck_assert_msg(found, "want [%s] %s in:\n%s(for %s)", rule, msg, all, xml);
        ck_assert_msg(probs.n == nprobs, "want %zu problems, got:\n%s", nprobs, all);
        fuse_problems_free(&probs);
}

START_TEST(t_form_rules)
{
        const enum fl_chip T4 = FL_CHIP_T234, T9 = FL_CHIP_T194;

        expect_xml(T4, "<genericfuse", "xml", "not well-formed XML: Couldn't find end of Start Tag genericfuse line 1",
                   1);
        expect_xml(T4, "", "xml", "file is empty", 1);
        expect_xml(T4, "<fuses/>", "root", "root element is <fuses>, not <genericfuse>", 1);
        expect_xml(T4, "<genericfuse version=\"1.0.0\"/>", "magic", "genericfuse has no MagicId (NVIDIA's is 0x45535546)",
                   1);
        expect_xml(T4, "<genericfuse MagicId=\"0x46555345\" version=\"1.0.0\"/>", "magic",
                   "MagicId '0x46555345' is neither 0x45535546 (FUSE) nor 0x54534554 (TEST)", 1);
        expect_xml(T4, "<genericfuse MagicId=\"0x-45535546\" version=\"1.0.0\"/>", "magic",
                   "MagicId '0x-45535546' is neither 0x45535546 (FUSE) nor 0x54534554 (TEST)", 1);
        expect_xml(T9, "<genericfuse MagicId=\"0x54534554\" version=\"1.0.0\"/>", "magic",
                   "MagicId 0x54534554 (TEST) is the t234 FSKP dry run; t194 has no TEST magic (its dry run is "
                   "burnfuses dummy)", 1);
        expect_xml(T4, "<genericfuse MagicId=\"0x45535546\"/>", "version",
                   "genericfuse has no version (1.0.0, or 2.0.0 with rpmb)", 1);
        expect_xml(T4, "<genericfuse MagicId=\"0x45535546\" version=\"3.0\"/>", "version",
                   "version '3.0' is neither 1.0.0 nor 2.0.0", 1);
        expect_xml(T4, "<genericfuse MagicId=\"0x45535546\" version=\"2.0.0\"/>", "version",
                   "version 2.0.0 is for files with <rpmb>; use 1.0.0", 1);
        expect_xml(T4, ROOT "<rpmb provisioning=\"0x1\" dev_type=\"0x2\"/>" END, "version", "<rpmb> needs version 2.0.0",
                   1);
        expect_xml(T9, "<genericfuse MagicId=\"0x45535546\" version=\"2.0.0\"><rpmb provisioning=\"0x1\" dev_type=\"0x2\"/>" END, "rpmb",
                   "<rpmb> provisioning is documented for t234 only", 1);
        expect_xml(T4, "<genericfuse MagicId=\"0x45535546\" version=\"1.0.0\" extra=\"1\"/>", "element",
                   "<genericfuse>: unexpected attribute 'extra'", 1);
        expect_xml(T4, ROOT "<fusee name=\"OdmId\"/>" END, "element",
                   "unexpected element <fusee> (genericfuse holds fuse and rpmb)", 1);
        expect_xml(T4, ROOT "text" END, "element", "unexpected text inside <genericfuse>", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"0x1\"><fuse/></fuse>" END, "element",
                   "<fuse> must be empty (found a nested element)", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"0x1\" Value=\"2\"/>" END, "element",
                   "<fuse>: unexpected attribute 'Value'", 1);
        expect_xml(T4, ROOT "<fuse size=\"8\" value=\"0x1\"/>" END, "name", "<fuse> without a name", 1);
        expect_xml(T4, ROOT "<fuse name=\"publickeyhash\" size=\"64\" value=\"0x" H64 "\"/>" END, "name",
                   "publickeyhash: unknown fuse name on t234; names are case-exact: PublicKeyHash", 1);
        expect_xml(T4, ROOT "<fuse name=\"Kek0\" size=\"16\" value=\"0x1\"/>" END, "name",
                   "Kek0: not a burnable fuse on t234", 1);
        expect_xml(T9, ROOT "<fuse name=\"OemK1\" size=\"32\" value=\"0x" K32 "\"/>" END, "name",
                   "OemK1: not a burnable fuse on t194", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" value=\"0x1\"/>" END, "size",
                   "OdmId: no size attribute (a read list is not a burn file)", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"4\" value=\"0x1\"/>" END, "size",
                   "OdmId: size '4' is wrong: OdmId takes exactly 8 bytes on t234", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"0x8\" value=\"0x1\"/>" END, "size",
                   "OdmId: size '0x8' is wrong: OdmId takes exactly 8 bytes on t234", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"+8\" value=\"0x1\"/>" END, "size",
                   "OdmId: size '+8' is wrong: OdmId takes exactly 8 bytes on t234", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\"/>" END, "value", "OdmId: no value attribute", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"0x\"/>" END, "value", "OdmId: value is empty", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"-1\"/>" END, "value",
                   "OdmId: value is not hex (an optional 0x, then hex digits only: no sign, no spaces)", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\" 0x1\"/>" END, "value",
                   "OdmId: value is not hex (an optional 0x, then hex digits only: no sign, no spaces)", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"0x12 34\"/>" END, "value",
                   "OdmId: value is not hex (an optional 0x, then hex digits only: no sign, no spaces)", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"0x1ffffffffffffffff\"/>" END, "value",
                   "OdmId: value has 17 hex digits; a 8-byte fuse takes at most 16 (overflow)", 1);
        expect_xml(T4, ROOT "<fuse name=\"PublicKeyHash\" size=\"64\" value=\"0x1234\"/>" END, "value",
                   "PublicKeyHash: value has 4 hex digits; a 64-byte fuse takes exactly 128 (write every byte)", 1);
        expect_xml(T4, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"1\"/><fuse name=\"OdmId\" size=\"8\" value=\"2\"/>" END,
                   "duplicate", "OdmId: appears more than once", 1);
        /* Order and BSI rules run on what parsed, reported in file order. */
        expect_xml(T4, ROOT "<fuse name=\"BootSecurityInfo\" size=\"4\" value=\"0x1\"/>"
                            "<fuse name=\"PublicKeyHash\" size=\"64\" value=\"0x" H64 "\"/>" END,
                   "order", "BootSecurityInfo is listed before PublicKeyHash: FSKP burns in XML order, and "
                            "BootSecurityInfo switches enforcement on, so it must follow every fuse except SecurityMode",
                   1);
}
END_TEST

/* expect_xml with nprobs 0 cannot find a problem; replace it for OK cases. */
static void expect_ok(enum fl_chip chip, const char *xml, uint32_t magic, size_t nfuses)
{
        struct fuse_problems probs = { 0 };
        struct fuse_plan *p = NULL;

        ck_assert_int_eq(fuse_xml_check(ctx, (const unsigned char *)xml, strlen(xml), chip, NULL, &p, &probs), 0);
        ck_assert_msg(probs.n == 0, "%s: %s", xml, probs.n ? probs.v[0].msg : "");
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p->magic, magic);
        ck_assert_uint_eq(p->n, nfuses);
        fuse_plan_free(p);
}

START_TEST(t_accepts)
{
        expect_ok(FL_CHIP_T234, "<genericfuse MagicId=\"0x54534554\" version=\"1.0.0\"><fuse name=\"ReservedOdm1\" "
                                "size=\"4\" value=\"0XAb\"/></genericfuse>", FUSE_MAGIC_TEST, 1);
        /* A prolog, comments, CRLF and a BOM-free UTF-8 file are accepted. */
        expect_ok(FL_CHIP_T234, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- c -->\r\n" ROOT "\r\n<!-- k -->\r\n"
                                "  <fuse name=\"OdmId\" size=\"8\" value=\"0123456789abcdef\" />\r\n" END "\r\n<!-- t -->\r\n",
                  FUSE_MAGIC, 1);
        expect_ok(FL_CHIP_T234, "<genericfuse MagicId=\"0x45535546\" version=\"2.0.0\"><fuse name=\"OemK1\" size=\"32\" "
                                "value=\"0x" K32 "\"/><fuse name=\"BootSecurityInfo\" size=\"4\" value=\"0x200\"/>"
                                "<rpmb provisioning=\"0x1\" dev_type=\"0x2\"/></genericfuse>", FUSE_MAGIC, 2);
        /* An encoding declaration cannot switch the parser away from UTF-8. */
        expect_ok(FL_CHIP_T234, "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" ROOT END, FUSE_MAGIC, 0);
}
END_TEST

/* ---- hostile documents ----------------------------------------------------- */

START_TEST(t_hostile)
{
        const char *decl = "DOCTYPE, ENTITY or CDATA declarations are refused in fuse XML";
        char *big;
        size_t n;

        expect_xml(FL_CHIP_T234,
                   "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>"
                   "<genericfuse MagicId=\"&lol2;\" version=\"1.0.0\"/>",
                   "xml", decl, 1);
        expect_xml(FL_CHIP_T234,
                   "<!DOCTYPE g [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><genericfuse MagicId=\"0x45535546\" "
                   "version=\"1.0.0\"><fuse name=\"OdmId\" size=\"8\" value=\"&x;\"/></genericfuse>",
                   "xml", decl, 1);
        expect_xml(FL_CHIP_T234, "<!DOCTYPE genericfuse SYSTEM \"http://127.0.0.1:9/x.dtd\"><genericfuse/>", "xml", decl, 1);
        expect_xml(FL_CHIP_T234, ROOT "<![CDATA[x]]>" END, "xml", decl, 1);
        /* Undeclared entity: a well-formedness error, nothing fetched. */
        expect_xml(FL_CHIP_T234, ROOT "<fuse name=\"OdmId\" size=\"8\" value=\"&x;\"/>" END, "xml",
                   "not well-formed XML: Entity 'x' not defined", 1);
        /* NUL bytes (UTF-16 or binary) are refused before parsing. */
        {
                const unsigned char u16[] = { 0xff, 0xfe, '<', 0, 'g', 0, '/', 0, '>', 0 };
                struct fuse_problems probs = { 0 };
                ck_assert_int_eq(fuse_xml_parse(ctx, u16, sizeof(u16), FL_CHIP_T234, NULL, &probs), 0);
                ck_assert_uint_eq(probs.n, 1);
                ck_assert_str_eq(probs.v[0].msg, "binary data (NUL byte): a fuse XML is UTF-8 text");
                fuse_problems_free(&probs);
        }
        /* Deep nesting: libxml2's depth limit or our flat-structure rule. */
        n = 20000;
        big = malloc(n * 7 + 200);
        ck_assert_ptr_nonnull(big);
        strcpy(big, ROOT);
        for (size_t i = 0; i < n; i++)
                strcat(big + strlen(ROOT) + i * 3, "<a>");
        {
                struct fuse_problems probs = { 0 };
                ck_assert_int_eq(fuse_xml_parse(ctx, (unsigned char *)big, strlen(big), FL_CHIP_T234, NULL, &probs), 0);
                ck_assert_uint_eq(probs.n, 1);
                ck_assert_str_eq(probs.v[0].rule, "xml");
                fuse_problems_free(&probs);
        }
        /* Oversized: refused by size alone. */
        memset(big, ' ', FUSE_XML_MAX_BYTES + 1);
        {
                struct fuse_problems probs = { 0 };
                ck_assert_int_eq(fuse_xml_parse(ctx, (unsigned char *)big, FUSE_XML_MAX_BYTES + 1, FL_CHIP_T234, NULL,
                                                &probs), 0);
                ck_assert_uint_eq(probs.n, 1);
                ck_assert_str_eq(probs.v[0].msg, "file is 65537 bytes; a fuse XML is at most 65536");
                fuse_problems_free(&probs);
        }
        free(big);
}
END_TEST

START_TEST(t_too_many_fuses)
{
        size_t cap = 200 * 64 + 200, off;
        char *x = malloc(cap);
        struct fuse_problems probs = { 0 };
        bool found = false;

        ck_assert_ptr_nonnull(x);
        off = (size_t)snprintf(x, cap, ROOT);
        for (int i = 0; i < 200; i++)
                off += (size_t)snprintf(x + off, cap - off, "<fuse name=\"ReservedOdm%d\" size=\"4\" value=\"1\"/>", i % 8);
        snprintf(x + off, cap - off, END);
        ck_assert_int_eq(fuse_xml_parse(ctx, (unsigned char *)x, strlen(x), FL_CHIP_T234, NULL, &probs), 0);
        for (size_t i = 0; i < probs.n; i++)
                found |= !strcmp(probs.v[i].msg, "more than 128 fuses");
        ck_assert(found);
        /* 120 duplicates reported, then the cut-off: bounded work. */
        ck_assert_uint_le(probs.n, FUSE_PROBLEMS_MAX);
        fuse_problems_free(&probs);
        free(x);
}
END_TEST

/* Problems never quote a value: a misspelt key fuse must not leak. */
START_TEST(t_no_value_in_problems)
{
        const char *xml = ROOT "<fuse name=\"SecureBootkey\" size=\"32\" value=\"0xdeadbeefcafef00d\"/>"
                               "<fuse name=\"OemK1\" size=\"32\" value=\"0xdeadbeefcafef00d\"/>"
                               "<fuse name=\"OemK2\" size=\"31\" value=\"0xdeadbeefcafef00dzz\"/>" END;
        struct fuse_problems probs = { 0 };

        ck_assert_int_eq(fuse_xml_check(ctx, (const unsigned char *)xml, strlen(xml), FL_CHIP_T234, NULL, NULL, &probs),
                         0);
        ck_assert_uint_ge(probs.n, 3);
        for (size_t i = 0; i < probs.n; i++)
                ck_assert_msg(!strstr(probs.v[i].msg, "deadbeef") && !strstr(probs.v[i].msg, "DEADBEEF"), "%s",
                              probs.v[i].msg);
        fuse_problems_free(&probs);
}
END_TEST

/* NVIDIA's sample configurations (tests/data/fuse-xml/sample-*.xml). */
START_TEST(t_samples)
{
        static const struct {
                const char *file;
                enum fl_chip chip;
                size_t n;
        } v[] = {
                { "sample-t234-rsa3k.xml", FL_CHIP_T234, 3 },
                { "sample-t234-p256.xml", FL_CHIP_T234, 3 },
                { "sample-t234-p521-sbk-oemk1.xml", FL_CHIP_T234, 5 },
                { "sample-t234-revocation.xml", FL_CHIP_T234, 7 },
                { "sample-t234-oemk1-rpmb.xml", FL_CHIP_T234, 2 },
                { "sample-t194-sbk-kek-pkc.xml", FL_CHIP_T194, 6 },
        };
        const char *src = getenv("SRCDIR");

        ck_assert_ptr_nonnull(src);
        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                char path[4096];
                struct fl_secret s = { 0 };
                struct fuse_problems probs = { 0 };
                struct fuse_plan *p = NULL;

                snprintf(path, sizeof(path), "%s/tests/data/fuse-xml/%s", src, v[i].file);
                ck_assert_int_eq(fuse_xml_load(ctx, path, &s), 0);
                ck_assert_int_eq(fuse_xml_check(ctx, s.data, s.len, v[i].chip, NULL, &p, &probs), 0);
                ck_assert_msg(probs.n == 0, "%s: %s", v[i].file, probs.n ? probs.v[0].msg : "");
                ck_assert_uint_eq(p->n, v[i].n);
                /* The other chip refuses it. */
                fuse_problems_free(&probs);
                ck_assert_int_eq(fuse_xml_check(ctx, s.data, s.len, v[i].chip == FL_CHIP_T234 ? FL_CHIP_T194 : FL_CHIP_T234,
                                                NULL, NULL, &probs), 0);
                ck_assert_uint_gt(probs.n, 0);
                fuse_problems_free(&probs);
                fuse_plan_free(p);
                secret_wipe(&s);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("fuse_xml");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_render_exact);
        tcase_add_test(tc, t_roundtrip);
        tcase_add_test(tc, t_write_mode);
        tcase_add_test(tc, t_form_rules);
        tcase_add_test(tc, t_accepts);
        tcase_add_test(tc, t_hostile);
        tcase_add_test(tc, t_too_many_fuses);
        tcase_add_test(tc, t_no_value_in_problems);
        tcase_add_test(tc, t_samples);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
