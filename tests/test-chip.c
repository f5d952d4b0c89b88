/* test-chip.c — the fuse maps, BootSecurityInfo encoding and module table
 * against the facts of shared/reference/jetson-fuses.md §2, §3, §8, written
 * out here independently of lib/chip.c. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chip.h"

static const struct {
        enum fl_chip chip;
        const char *name;
        unsigned size;
} sizes[] = {
        /* §2 T194 table. */
        { FL_CHIP_T194, "PublicKeyHash", 32 },
        { FL_CHIP_T194, "SecureBootKey", 16 },
        { FL_CHIP_T194, "Kek0", 16 },
        { FL_CHIP_T194, "Kek1", 16 },
        { FL_CHIP_T194, "Kek2", 16 },
        { FL_CHIP_T194, "Kek256", 32 },
        { FL_CHIP_T194, "BootSecurityInfo", 4 },
        { FL_CHIP_T194, "SecurityMode", 4 },
        { FL_CHIP_T194, "JtagDisable", 4 },
        { FL_CHIP_T194, "OdmLock", 4 },
        { FL_CHIP_T194, "ReservedOdm0", 4 },
        { FL_CHIP_T194, "ReservedOdm11", 4 },
        { FL_CHIP_T194, "SwReserved", 4 },
        { FL_CHIP_T194, "SecBootDeviceSelect", 4 },
        { FL_CHIP_T194, "DebugAuthentication", 4 },
        { FL_CHIP_T194, "OdmId", 8 },
        /* §2 T234 table (r38.4 reference configuration). */
        { FL_CHIP_T234, "OdmId", 8 },
        { FL_CHIP_T234, "OdmInfo", 4 },
        { FL_CHIP_T234, "ArmJtagDisable", 4 },
        { FL_CHIP_T234, "ReservedOdm0", 4 },
        { FL_CHIP_T234, "ReservedOdm7", 4 },
        { FL_CHIP_T234, "OptInEnable", 4 },
        { FL_CHIP_T234, "PublicKeyHash", 64 },
        { FL_CHIP_T234, "PkcPubkeyHash1", 64 },
        { FL_CHIP_T234, "PkcPubkeyHash2", 64 },
        { FL_CHIP_T234, "SecureBootKey", 32 },
        { FL_CHIP_T234, "Kdk0", 32 },
        { FL_CHIP_T234, "PscOdmStatic", 4 },
        { FL_CHIP_T234, "OemK1", 32 },
        { FL_CHIP_T234, "OemK2", 32 },
        { FL_CHIP_T234, "BootSecurityInfo", 4 },
        { FL_CHIP_T234, "SecurityMode", 4 },
};

START_TEST(t_sizes)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(sizes); i++) {
                const struct fuse_def *d = chip_fuse(sizes[i].chip, sizes[i].name);
                ck_assert_msg(d != NULL, "%s missing on 0x%x", sizes[i].name, sizes[i].chip);
                ck_assert_msg(d->size == sizes[i].size, "%s: %u", sizes[i].name, d->size);
        }
}
END_TEST

/* Exactly the documented burnable set: nothing more. */
START_TEST(t_map_complete)
{
        size_t n194 = 0, n234 = 0, want194 = 0, want234 = 0;

        chip_fuses(FL_CHIP_T194, &n194);
        chip_fuses(FL_CHIP_T234, &n234);
        /* T194: 16 named + ReservedOdm1..10 (10 more) = 26. */
        want194 = 16 + 10;
        /* T234: 16 named + ReservedOdm1..6 = 22. */
        want234 = 16 + 6;
        ck_assert_uint_eq(n194, want194);
        ck_assert_uint_eq(n234, want234);
}
END_TEST

START_TEST(t_names_case_exact)
{
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "JtagDisable"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T194, "ArmJtagDisable"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "publickeyhash"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "PkcPubKeyHash1"));
        ck_assert_ptr_nonnull(chip_fuse_casefold(FL_CHIP_T234, "publickeyhash"));
        ck_assert_str_eq(chip_fuse_casefold(FL_CHIP_T234, "PKCPUBKEYHASH1")->name, "PkcPubkeyHash1");
        /* Xavier-only and Orin-only fuses. */
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "Kek0"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "Kek256"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "ReservedOdm8"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, "OdmLock"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T194, "OemK1"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T194, "PkcPubkeyHash1"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T194, "OptInEnable"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_NONE, "PublicKeyHash"));
        ck_assert_ptr_null(chip_fuse(FL_CHIP_T234, NULL));
}
END_TEST

/* Canonical order: classes never go backwards, SecurityMode last,
 * BootSecurityInfo just before it, OdmLock after every ReservedOdm word. */
START_TEST(t_order_classes)
{
        enum fl_chip chips[] = { FL_CHIP_T194, FL_CHIP_T234 };

        for (size_t c = 0; c < 2; c++) {
                size_t n = 0;
                const struct fuse_def *m = chip_fuses(chips[c], &n);
                size_t last_odm = 0, lock = (size_t)-1;

                ck_assert_str_eq(m[n - 1].name, "SecurityMode");
                ck_assert_int_eq(m[n - 1].cls, FC_SECMODE);
                ck_assert_str_eq(m[n - 2].name, "BootSecurityInfo");
                ck_assert_int_eq(m[n - 2].cls, FC_BSI);
                for (size_t i = 1; i < n; i++)
                        ck_assert_msg(m[i].cls >= m[i - 1].cls, "%s after %s", m[i].name, m[i - 1].name);
                for (size_t i = 0; i < n; i++) {
                        ck_assert_uint_eq(chip_fuse_index(chips[c], &m[i]), i);
                        if (!strncmp(m[i].name, "ReservedOdm", 11))
                                last_odm = i;
                        if (!strcmp(m[i].name, "OdmLock"))
                                lock = i;
                        /* Secret exactly for key fuses. */
                        ck_assert_int_eq(m[i].secret, m[i].cls == FC_KEY);
                }
                if (lock != (size_t)-1)
                        ck_assert_uint_gt(lock, last_odm);
        }
        ck_assert_uint_eq(chip_fuse_index(FL_CHIP_T194, chip_fuse(FL_CHIP_T234, "OdmId")), (size_t)-1);
}
END_TEST

START_TEST(t_word_masks)
{
        ck_assert_uint_eq(chip_fuse(FL_CHIP_T194, "SecBootDeviceSelect")->mask, 0x3fff);
        ck_assert_uint_eq(chip_fuse(FL_CHIP_T194, "SwReserved")->mask, 0xff);
        ck_assert_uint_eq(chip_fuse(FL_CHIP_T194, "DebugAuthentication")->mask, 0x1f);
        ck_assert_uint_eq(chip_fuse(FL_CHIP_T234, "OdmInfo")->mask, 0xffff);
        ck_assert_uint_eq(chip_fuse(FL_CHIP_T234, "SecurityMode")->mask, 0x1);
        ck_assert_uint_eq(chip_fuse(FL_CHIP_T234, "ReservedOdm3")->mask, 0xffffffffu);
}
END_TEST

START_TEST(t_bsi)
{
        fl_ctx *ctx = NULL;
        uint32_t a = 99;

        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
        /* T234 §3: 1 RSA-3K, 2 P-256, 3 P-521; SBK 0x8; bit 9; [8:4] reserved. */
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T234, KT_RSA3K, &a), 0);
        ck_assert_uint_eq(a, 1);
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T234, KT_P256, &a), 0);
        ck_assert_uint_eq(a, 2);
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T234, KT_P521, &a), 0);
        ck_assert_uint_eq(a, 3);
        ck_assert_uint_eq(a | chip_bsi_sbk_bit(FL_CHIP_T234) | chip_bsi_odm_key_valid_bit(FL_CHIP_T234), 0x20b);
        ck_assert_uint_eq(1 | chip_bsi_sbk_bit(FL_CHIP_T234), 0x9);
        ck_assert_uint_eq(chip_bsi_reserved(FL_CHIP_T234), 0x1f0);
        ck_assert_uint_eq(chip_bsi_reserved(FL_CHIP_T234) & 0x1e0, 0x1e0);
        ck_assert_uint_eq(chip_bsi_auth_mask(FL_CHIP_T234), 0x7);
        a = 99;
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T234, KT_ED25519, &a), -EINVAL);
        ck_assert_uint_eq(a, 99);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "rsa3k, p256, p521"));
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T234, KT_RSA2K, &a), -EINVAL);
        ck_assert_int_eq(chip_bsi_auth_type(FL_CHIP_T234, 4), KT_ED25519);
        ck_assert_int_eq(chip_bsi_auth_type(FL_CHIP_T234, 5), KT_NONE);
        /* T194 §3: [1:0] 1 RSA-2048, 2 RSA-3072; SBK bit 2; no bit 9. */
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T194, KT_RSA2K, &a), 0);
        ck_assert_uint_eq(a | chip_bsi_sbk_bit(FL_CHIP_T194), 0x5);
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T194, KT_RSA3K, &a), 0);
        ck_assert_uint_eq(a | chip_bsi_sbk_bit(FL_CHIP_T194), 0x6);
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_T194, KT_P256, &a), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "t194 takes rsa2k, rsa3k"));
        ck_assert_uint_eq(chip_bsi_odm_key_valid_bit(FL_CHIP_T194), 0);
        ck_assert_uint_eq(chip_bsi_reserved(FL_CHIP_T194), 0);
        ck_assert_int_eq(chip_bsi_auth_type(FL_CHIP_T194, 3), KT_NONE);
        ck_assert_int_eq(chip_bsi_auth(ctx, FL_CHIP_NONE, KT_RSA3K, &a), -EINVAL);
        fl_ctx_free(ctx);
}
END_TEST

/* The facts cmd/fuse_xml.c used to hard-code. */
START_TEST(t_test_magic_and_hash_size)
{
        ck_assert(chip_has_test_magic(FL_CHIP_T234));
        ck_assert(!chip_has_test_magic(FL_CHIP_T194));
        ck_assert(!chip_has_test_magic(FL_CHIP_NONE));
        ck_assert_uint_eq(chip_pkc_hash_size(FL_CHIP_T234), 64);
        ck_assert_uint_eq(chip_pkc_hash_size(FL_CHIP_T194), 32);
        ck_assert_uint_eq(chip_pkc_hash_size(FL_CHIP_NONE), 0);
}
END_TEST

START_TEST(t_modules)
{
        size_t n = 0;
        const struct chip_module *m = chip_modules(&n);

        ck_assert_str_eq(chip_module_by_pid(0x7523)->name, "Orin Nano 8GB");
        ck_assert_str_eq(chip_module_by_pid(0x7323)->name, "Orin NX 16GB");
        ck_assert_int_eq(chip_module_by_pid(0x7023)->chip, FL_CHIP_T234);
        ck_assert_int_eq(chip_module_by_pid(0x7019)->chip, FL_CHIP_T194);
        ck_assert_int_eq(chip_module_by_pid(0x7e19)->chip, FL_CHIP_T194);
        ck_assert_ptr_null(chip_module_by_pid(0x7f21)); /* T210: out of scope */
        ck_assert_ptr_null(chip_module_by_pid(0x0000));
        /* The low byte of a recovery PID is the chip id (§8). */
        for (size_t i = 0; i < n; i++)
                ck_assert_uint_eq(m[i].pid & 0xff, (unsigned)m[i].chip);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("chip");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, t_sizes);
        tcase_add_test(tc, t_map_complete);
        tcase_add_test(tc, t_names_case_exact);
        tcase_add_test(tc, t_order_classes);
        tcase_add_test(tc, t_word_masks);
        tcase_add_test(tc, t_bsi);
        tcase_add_test(tc, t_modules);
        tcase_add_test(tc, t_test_magic_and_hash_size);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
