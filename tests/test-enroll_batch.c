/* test-enroll_batch.c — the `enroll --batch` list parser: fields, comments
 * and blank lines (line numbers are the file's own), CSR '-' rules, ECIDs
 * normalised, duplicates named with both lines, the device limit, and a
 * full-size list parsed in one pass. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enroll_batch.h"

static fl_ctx *ctx;

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

#define E1 "80012344705df1172c0000000d030001"
#define E2 "80012344705df1172c0000000d030002"

static int parse(const char *text, bool generate, struct enroll_batch_item **items, size_t *n)
{
        return enroll_batch_parse(ctx, "list.txt", text, strlen(text), generate, items, n);
}

static void expect_err(const char *text, bool generate, int r, const char *msg)
{
        struct enroll_batch_item *items = NULL;
        size_t n = 0;

        ck_assert_int_eq(parse(text, generate, &items, &n), r);
        ck_assert_ptr_null(items);
        ck_assert_msg(strstr(fl_ctx_last_error(ctx), msg), "'%s' lacks '%s'", fl_ctx_last_error(ctx), msg);
}

START_TEST(t_good)
{
        struct enroll_batch_item *items = NULL;
        size_t n = 0;

        ck_assert_int_eq(parse("# devices\n\n0x80012344705DF1172C0000000D030001 a.csr SN-1\r\n"
                               "  \t\n" E2 "\tb.csr\n",
                               false, &items, &n),
                         0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(items[0].ecid, E1); /* 0x and upper case normalised */
        ck_assert_str_eq(items[0].csr, "a.csr");
        ck_assert_str_eq(items[0].serial, "SN-1"); /* CR not part of it */
        ck_assert_uint_eq(items[0].line, 3);
        ck_assert_str_eq(items[1].ecid, E2);
        ck_assert_ptr_null(items[1].serial);
        ck_assert_uint_eq(items[1].line, 5); /* blank lines count */
        enroll_batch_free(items, n);
        /* generated keys: CSR '-' and no path kept; no newline at the end */
        ck_assert_int_eq(parse(E1 " - S\n" E2 " -", true, &items, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_ptr_null(items[0].csr);
        ck_assert_uint_eq(items[1].line, 2);
        enroll_batch_free(items, n);
}
END_TEST

START_TEST(t_bad)
{
        expect_err("", false, -EINVAL, "list.txt: no devices listed");
        expect_err("# only\n\n", false, -EINVAL, "no devices listed");
        expect_err(E1 "\n", false, -EINVAL, "list.txt:1: expected 'ECID CSR [SERIAL]', got 1 fields");
        expect_err("\n\n" E1 " a b c\n", false, -EINVAL, "list.txt:3: expected 'ECID CSR [SERIAL]', got 4 fields");
        expect_err("zz a.csr\n", false, -EINVAL, "list.txt:1: ");
        expect_err(E1 " -\n", false, -EINVAL, "list.txt:1: CSR '-'");
        expect_err(E1 " a.csr\n", true, -EINVAL, "list.txt:1: ");
}
END_TEST

START_TEST(t_bad_nul)
{
        struct enroll_batch_item *items = NULL;
        size_t n = 0;
        static const char text[] = E1 " a\0b\n";

        ck_assert_int_eq(enroll_batch_parse(ctx, "list.txt", text, sizeof(text) - 1, false, &items, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "list.txt: not a text file (NUL byte)"));
}
END_TEST

START_TEST(t_duplicate)
{
        /* the same ECID spelled differently is the same device */
        expect_err(E1 " a.csr\n" E2 " b.csr\n# x\n0X" "80012344705DF1172C0000000D030001 c.csr\n", false, -EINVAL,
                   "list.txt:4: ECID " E1 " is listed twice (line 1)");
}
END_TEST

/* A full-size list of distinct ECIDs, then the same with the last one
 * repeating the first: both in well under a second (the old pairwise check
 * took 5e9 comparisons), and one device more than the limit is -E2BIG. */
START_TEST(t_large)
{
        enum { N = ENROLL_BATCH_MAX_LINES };
        size_t cap = (size_t)(N + 1) * 40 + 1, off = 0, n = 0;
        char *text = malloc(cap);
        struct enroll_batch_item *items = NULL;
        clock_t t0 = clock();

        ck_assert_ptr_nonnull(text);
        for (unsigned i = 0; i < N; i++)
                off += (size_t)snprintf(text + off, cap - off, "80012344705df1172c000000%08x -\n", i);
        ck_assert_int_eq(enroll_batch_parse(ctx, "big", text, off, true, &items, &n), 0);
        ck_assert_uint_eq(n, N);
        ck_assert_str_eq(items[N - 1].ecid, "80012344705df1172c0000000001869f");
        enroll_batch_free(items, n);
        items = NULL;
        /* one more device than allowed */
        off += (size_t)snprintf(text + off, cap - off, "80012344705df1172c000000%08x -\n", (unsigned)N);
        ck_assert_int_eq(enroll_batch_parse(ctx, "big", text, off, true, &items, &n), -E2BIG);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "more than 100000 devices"));
        /* the last line repeats the first */
        off -= 35;
        off += (size_t)snprintf(text + off, cap - off, "80012344705df1172c00000000000000 -\n");
        ck_assert_int_eq(enroll_batch_parse(ctx, "big", text, off, true, &items, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "big:100001: ECID 80012344705df1172c00000000000000 is "
                                                             "listed twice (line 1)"));
        free(text);
        ck_assert_msg((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0, "three 100k-line parses took %.1f s",
                      (double)(clock() - t0) / CLOCKS_PER_SEC);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("enroll_batch");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_good);
        tcase_add_test(tc, t_bad);
        tcase_add_test(tc, t_bad_nul);
        tcase_add_test(tc, t_duplicate);
        tcase_add_test(tc, t_large);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
