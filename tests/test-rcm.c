/* test-rcm.c — instance strings and the station port allow-list
 * (lib/rcm.c), and the recovery-mode product ids of the module table
 * against shared/reference/jetson-fuses.md §8, written out here. Enumeration
 * itself runs against umockdev in tests/usb-devices.sh. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "rcm.h"

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

START_TEST(t_instance_valid)
{
        static const char *const ok[] = {
                "1-1", "1-2.3", "3-14", "1-2.3.4", "255-255", "10-1.2.3.4.5.6.7",
                "255-255.255.255.255.255.255.255", "2-10.100",
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(ok); i++)
                ck_assert_msg(rcm_instance_check(ctx, ok[i]) == 0, "%s refused: %s", ok[i],
                              fl_ctx_last_error(ctx));
        ck_assert_uint_eq(strlen("255-255.255.255.255.255.255.255"), RCM_INSTANCE_MAX - 1);
}
END_TEST

START_TEST(t_instance_invalid)
{
        static const char *const bad[] = {
                "", "1", "1-", "-1", "0-1", "1-0", "01-2", "1-02", "1-2.", "1-2..3", "1.2", "1-2-3",
                "256-1", "1-256", "1-2.3.4.5.6.7.8.9", "1-1.1.1.1.1.1.1.1", " 1-2", "1-2 ", "1-2,3", "+1-2",
                "1-+2", "a-1", "1-2a", "1-2.3\n", "1000-1", "1-2.1000", "1-2/3", "1_2",
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
                fl_err_clear(ctx);
                ck_assert_msg(rcm_instance_check(ctx, bad[i]) == -EINVAL, "'%s' accepted", bad[i]);
                /* The message names what was given. */
                ck_assert_ptr_nonnull(fl_ctx_last_error(ctx));
                ck_assert_msg(strstr(fl_ctx_last_error(ctx), "USB instance '") != NULL, "%s",
                              fl_ctx_last_error(ctx));
        }
        fl_err_clear(ctx);
        rcm_instance_check(ctx, "1-02");
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'1-02'"));
}
END_TEST

START_TEST(t_ports_parse)
{
        struct rcm_ports p = { 0 };

        ck_assert_int_eq(rcm_ports_parse(ctx, "1-2.1, 1-2.2 1-3\t2-1.4,,", &p), 0);
        ck_assert_uint_eq(p.n, 4);
        ck_assert_str_eq(p.v[0], "1-2.1");
        ck_assert_str_eq(p.v[1], "1-2.2");
        ck_assert_str_eq(p.v[2], "1-3");
        ck_assert_str_eq(p.v[3], "2-1.4");
        ck_assert(rcm_port_allowed(&p, "1-2.2"));
        ck_assert(rcm_port_allowed(&p, "2-1.4"));
        /* Exact match only: not a prefix, not the hub, not a longer path. */
        ck_assert(!rcm_port_allowed(&p, "1-2"));
        ck_assert(!rcm_port_allowed(&p, "1-2.1.1"));
        ck_assert(!rcm_port_allowed(&p, "1-2.10"));
        ck_assert(!rcm_port_allowed(&p, "11-2.1"));
        ck_assert(!rcm_port_allowed(&p, "2-1"));

        /* Parsing again replaces. */
        ck_assert_int_eq(rcm_ports_parse(ctx, "3-1", &p), 0);
        ck_assert_uint_eq(p.n, 1);
        ck_assert(!rcm_port_allowed(&p, "1-2.1"));
        rcm_ports_clear(&p);
        ck_assert_ptr_null(p.v);
        ck_assert_uint_eq(p.n, 0);
        rcm_ports_clear(NULL);
}
END_TEST

START_TEST(t_ports_all)
{
        struct rcm_ports empty = { 0 };

        /* No list means every port. */
        ck_assert(rcm_port_allowed(NULL, "1-2"));
        ck_assert(rcm_port_allowed(&empty, "9-9.9"));
}
END_TEST

START_TEST(t_ports_refused)
{
        struct rcm_ports p = { 0 };
        char *big;
        size_t len;

        ck_assert_int_eq(rcm_ports_parse(ctx, "", &p), -EINVAL);
        ck_assert_int_eq(rcm_ports_parse(ctx, " , ,\t", &p), -EINVAL);
        ck_assert_int_eq(rcm_ports_parse(ctx, "1-2,1-02", &p), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'1-02'"));
        ck_assert_uint_eq(p.n, 0);
        ck_assert_int_eq(rcm_ports_parse(ctx, "1-2 1-3 1-2", &p), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "1-2 is listed twice"));
        ck_assert_int_eq(rcm_ports_parse(ctx, "1-2;1-3", &p), -EINVAL);
        ck_assert_int_eq(rcm_ports_parse(ctx, "1-2.3.4.5.6.7.8.9.10.11.12.13.14.15", &p), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "too long"));

        /* A refused parse leaves *ret empty, even if it held a list. */
        ck_assert_int_eq(rcm_ports_parse(ctx, "1-1", &p), 0);
        ck_assert_int_eq(rcm_ports_parse(ctx, "1-x", &p), -EINVAL);
        ck_assert_uint_eq(p.n, 0);

        /* RCM_PORTS_MAX entries pass, one more does not. */
        big = malloc((RCM_PORTS_MAX + 1) * 12);
        ck_assert_ptr_nonnull(big);
        len = 0;
        for (int i = 0; i < RCM_PORTS_MAX; i++)
                len += (size_t)sprintf(big + len, "%d-%d.%d ", 1 + i / 200, 1 + (i / 20) % 10, 1 + i % 20);
        ck_assert_int_eq(rcm_ports_parse(ctx, big, &p), 0);
        ck_assert_uint_eq(p.n, RCM_PORTS_MAX);
        sprintf(big + len, "9-9");
        ck_assert_int_eq(rcm_ports_parse(ctx, big, &p), -EINVAL);
        ck_assert_uint_eq(p.n, 0);
        free(big);
}
END_TEST

START_TEST(t_ports_add)
{
        struct rcm_ports p = { 0 };

        ck_assert_int_eq(rcm_ports_add(ctx, &p, "1-2.1"), 0);
        ck_assert_int_eq(rcm_ports_add(ctx, &p, "1-2.2,1-2.3"), 0);
        ck_assert_uint_eq(p.n, 3);
        /* An error leaves the list as it was. */
        ck_assert_int_eq(rcm_ports_add(ctx, &p, "1-4 1-2.1"), -EINVAL);
        ck_assert_uint_eq(p.n, 3);
        ck_assert(!rcm_port_allowed(&p, "1-4"));
        ck_assert_int_eq(rcm_ports_add(ctx, &p, "1-4 bad"), -EINVAL);
        ck_assert_uint_eq(p.n, 3);
        ck_assert_int_eq(rcm_ports_add(ctx, &p, ""), -EINVAL);
        ck_assert_uint_eq(p.n, 3);
        ck_assert_str_eq(p.v[2], "1-2.3");
        rcm_ports_clear(&p);
}
END_TEST

/* §8: every T194/T234 recovery PID with its module, and the T186/T210 ones
 * fuseline knows but does not provision. */
START_TEST(t_recovery_pids)
{
        static const struct {
                uint16_t pid;
                enum fl_chip chip;
                const char *module;
        } want[] = {
                { 0x7019, FL_CHIP_T194, "AGX Xavier" },
                { 0x7819, FL_CHIP_T194, "AGX Xavier Industrial" },
                { 0x7919, FL_CHIP_T194, "AGX Xavier Industrial" },
                { 0x7e19, FL_CHIP_T194, "Xavier NX" },
                { 0x7023, FL_CHIP_T234, "AGX Orin 64GB" },
                { 0x7223, FL_CHIP_T234, "AGX Orin 32GB" },
                { 0x7323, FL_CHIP_T234, "Orin NX 16GB" },
                { 0x7423, FL_CHIP_T234, "Orin NX 8GB" },
                { 0x7523, FL_CHIP_T234, "Orin Nano 8GB" },
                { 0x7623, FL_CHIP_T234, "Orin Nano 4GB" },
        };
        static const uint16_t other[] = { 0x7f21, 0x7721, 0x7121, 0x7c18, 0x7418, 0x7018 };
        size_t n;

        chip_modules(&n);
        ck_assert_uint_eq(n, FL_ARRAY_SIZE(want));
        for (size_t i = 0; i < FL_ARRAY_SIZE(want); i++) {
                const struct chip_module *m = chip_module_by_pid(want[i].pid);
                ck_assert_msg(m != NULL, "%04x missing", want[i].pid);
                ck_assert_int_eq(m->chip, want[i].chip);
                ck_assert_str_eq(m->name, want[i].module);
                ck_assert_ptr_null(chip_module_unsupported(want[i].pid));
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(other); i++) {
                ck_assert_ptr_null(chip_module_by_pid(other[i]));
                ck_assert_ptr_nonnull(chip_module_unsupported(other[i]));
        }
        /* A non-recovery NVIDIA id is neither. */
        ck_assert_ptr_null(chip_module_by_pid(0x7020));
        ck_assert_ptr_null(chip_module_unsupported(0x7020));
        ck_assert_ptr_nonnull(strstr(chip_module_unsupported(0x7c18)->name, "T186"));
        ck_assert_ptr_nonnull(strstr(chip_module_unsupported(0x7f21)->name, "T210"));
}
END_TEST

START_TEST(t_wait_args)
{
        struct rcm_device d;

        ck_assert_int_eq(rcm_wait(ctx, NULL, 0, &d), -EINVAL);
        ck_assert_int_eq(rcm_wait(ctx, NULL, -5, &d), -EINVAL);
        ck_assert_int_eq(rcm_wait_poll(ctx, NULL, 1000, 0, &d), -EINVAL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("rcm");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_instance_valid);
        tcase_add_test(tc, t_instance_invalid);
        tcase_add_test(tc, t_ports_parse);
        tcase_add_test(tc, t_ports_all);
        tcase_add_test(tc, t_ports_refused);
        tcase_add_test(tc, t_ports_add);
        tcase_add_test(tc, t_recovery_pids);
        tcase_add_test(tc, t_wait_args);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
