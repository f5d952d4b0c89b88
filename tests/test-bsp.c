/* test-bsp.c — what bsp reads from NVIDIA's tools: BR_CID lines, their
 * fuse-level decoding (jetson-fuses.md §8: odmfuse.func's get_fuse_level),
 * the ledger's device key, and the fuse package listing check. Expected
 * values come from the reference's examples, not from the code. */
#include <check.h>
#include <string.h>

#include "bsp.h"

static fl_ctx *ctx;

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

START_TEST(t_br_cid_line)
{
        char cid[BSP_BR_CID_LEN + 1];

        /* The form the reference quotes from tegrarcm_v2's output. */
        ck_assert(bsp_br_cid_line("[   0.1125 ] BR_CID: 0x80012344705df1172C0000000D020080", cid));
        ck_assert_str_eq(cid, "80012344705DF1172C0000000D020080");
        ck_assert(!bsp_br_cid_line("BR_CID: 0x80012344705DF1172C0000000D02008", cid));   /* 31 digits */
        ck_assert(!bsp_br_cid_line("BR_CID: 0x80012344705DF1172C0000000D0200801", cid)); /* 33 digits */
        ck_assert(!bsp_br_cid_line("BR_CID: 80012344705DF1172C0000000D020080", cid));    /* no 0x */
        ck_assert(!bsp_br_cid_line("ECID: 0x80012344705DF1172C0000000D020080", cid));
}
END_TEST

START_TEST(t_decode_t234)
{
        struct bsp_fuse_level fl;

        /* E[0] = 8: production; E[1] = 0: no PKC, no SBK; E[4:6] = 23. */
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "80012344705DF1172C0000000D020080", &fl), 0);
        ck_assert_int_eq(fl.chip, FL_CHIP_T234);
        ck_assert(fl.production);
        ck_assert_uint_eq(fl.auth, 0);
        ck_assert(!fl.sbk);
        /* E[1] = 9: RSA-3K (1) + SBK (8). */
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "89012344705DF1172C0000000D020080", &fl), 0);
        ck_assert_uint_eq(fl.auth, 1);
        ck_assert(fl.sbk);
        /* E[1] = 3: P-521, blank otherwise. */
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "03012344705DF1172C0000000D020080", &fl), 0);
        ck_assert(!fl.production);
        ck_assert_uint_eq(fl.auth, 3);
        /* Values the reference does not describe are errors naming them. */
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "C0012344705DF1172C0000000D020080", &fl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "E[0] = C"));
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "0E012344705DF1172C0000000D020080", &fl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "auth scheme 6"));
}
END_TEST

START_TEST(t_decode_t194)
{
        struct bsp_fuse_level fl;

        /* E[0]: 8 production NS, 9/a PKC 2K/3K, d/e SBK+PKC 2K/3K. */
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "E8011900000000000000000000000001", &fl), 0);
        ck_assert_int_eq(fl.chip, FL_CHIP_T194);
        ck_assert(fl.production && fl.sbk);
        ck_assert_uint_eq(fl.auth, 2);
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "98011900000000000000000000000001", &fl), 0);
        ck_assert(fl.production && !fl.sbk);
        ck_assert_uint_eq(fl.auth, 1);
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "80002100000000000000000000000001", &fl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'21'"));
        /* Not "80" at E[1:3]: not what odmfuse knows as a T194 BR_CID. */
        ck_assert_int_eq(bsp_br_cid_decode(ctx, "E0011900000000000000000000000001", &fl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'00'"));
}
END_TEST

START_TEST(t_device_key)
{
        char a[BSP_BR_CID_LEN + 1], b[BSP_BR_CID_LEN + 1];

        /* The same T234 before and after burning production mode, RSA-3K
         * and SBK: one device key. */
        ck_assert_int_eq(bsp_ecid_from_br_cid(ctx, FL_CHIP_T234, "00012344705DF1172C0000000D020080", a), 0);
        ck_assert_int_eq(bsp_ecid_from_br_cid(ctx, FL_CHIP_T234, "89012344705DF1172C0000000D020080", b), 0);
        ck_assert_str_eq(a, "00012344705df1172c0000000d020080");
        ck_assert_str_eq(a, b);
        ck_assert_int_eq(bsp_ecid_from_br_cid(ctx, FL_CHIP_T194, "E8011900000000000000000000000001", a), 0);
        ck_assert_str_eq(a, "08011900000000000000000000000001");
        /* A T194 BR_CID where a T234 is expected. */
        ck_assert_int_eq(bsp_ecid_from_br_cid(ctx, FL_CHIP_T234, "E8011900000000000000000000000001", a), -EINVAL);
}
END_TEST

START_TEST(t_package_entries)
{
        ck_assert_int_eq(bsp_package_entry_check(ctx, "-rw-r--r-- root/root 1234 2026-11-30 09:39 bootloader/fusecmd.sh"), 0);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "drwxr-xr-x root/root 0 2026-11-30 09:39 bootloader/"), 0);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "lrwxrwxrwx root/root 0 2026-11-30 09:39 bootloader/a -> b.bin"), 0);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "-rw-r--r-- root/root 1 2026-11-30 09:39 /etc/shadow"), -EINVAL);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "-rw-r--r-- root/root 1 2026-11-30 09:39 bootloader/../../x"), -EINVAL);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "lrwxrwxrwx root/root 0 2026-11-30 09:39 bootloader/p -> /etc/passwd"),
                         -EINVAL);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "lrwxrwxrwx root/root 0 2026-11-30 09:39 bootloader/p -> ../.."), -EINVAL);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "crw-r--r-- root/root 1,3 2026-11-30 09:39 bootloader/null"), -EINVAL);
        ck_assert_int_eq(bsp_package_entry_check(ctx, "prw-r--r-- root/root 0 2026-11-30 09:39 bootloader/fifo"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "bootloader/fifo"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("bsp");
        TCase *tc = tcase_create("bsp");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_br_cid_line);
        tcase_add_test(tc, t_decode_t234);
        tcase_add_test(tc, t_decode_t194);
        tcase_add_test(tc, t_device_key);
        tcase_add_test(tc, t_package_entries);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
