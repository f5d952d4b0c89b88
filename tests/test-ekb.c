/* test-ekb.c — the EKB container parser, the record walker and the damage
 * locator without a token: NVIDIA's images (tests/vectors/ekb) parse into
 * the layout VECTORS.txt describes, and with EKB_AK as VECTORS.txt lists it
 * (computed there by NVIDIA's gen_ekb functions) every single-byte change to
 * the MACed bytes or the stored CMAC of set A is located exactly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ekb.h"

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

static unsigned char *load(const char *rel, size_t *len)
{
        char path[1024];
        unsigned char *d = NULL;
        const char *v = getenv("VECTORS");
        ck_assert_ptr_nonnull(v);
        snprintf(path, sizeof(path), "%s/ekb/%s", v, rel);
        ck_assert_int_eq(file_read(ctx, path, EKB_IMAGE_MAX, &d, len), 0);
        return d;
}

START_TEST(t_layouts)
{
        static const struct {
                const char *file;
                enum ekb_format fmt;
                size_t enc_len, filler;
        } v[] = {
                { "A-t234-ekb1.0-oemk1/eks_t234.img", EKB_FMT_1_0, 96, 868 },
                { "B-t234-ekb1.0-oemk2-ftpm-offline/eks_t234.img", EKB_FMT_1_0, 1984, 0 },
                { "C-t234-ekb2.0-oemk1-ftpm-online/eks_t234.img", EKB_FMT_2_0, 1776, 0 },
                { "C2-t234-ekb2.0-oemk1-minimal/eks_t234.img", EKB_FMT_2_0, 96, 852 },
                { "D-t194-ekb1.0-kek2/eks_t194.img", EKB_FMT_1_0, 80, 884 },
                { "E-l4t-r36.2-default/t234/eks_t234.img", EKB_FMT_1_0, 144, 820 },
                { "E-l4t-r36.2-default/t194/eks_t194.img", EKB_FMT_1_0, 64, 900 },
                { "F-t194-legacy-r32/eks.img", EKB_FMT_LEGACY, 32, 948 },
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                size_t len;
                unsigned char *d = load(v[i].file, &len);
                struct ekb_image im;
                ck_assert_int_eq(ekb_parse(ctx, v[i].file, d, len, &im), 0);
                ck_assert_int_eq(im.fmt, v[i].fmt);
                ck_assert_uint_eq(im.enc_len, v[i].enc_len);
                ck_assert_uint_eq(im.filler_len, v[i].filler);
                free(d);
        }
}
END_TEST

START_TEST(t_records_set_d)
{
        /* Set D's plaintext as VECTORS.txt prints it. */
        static const char hex[] = "01000000100000009d4e164aba079cb88cd81fbc4855869e"
                                  "02000000100000008d0cd363b6a8c870aa62087df41a9d95"
                                  "040000001000000002053adaf295fe36ed592f76c1ed5b7f"
                                  "0000000000000000";
        unsigned char p[80];
        struct ekb_rec r[EKB_MAX_RECORDS];
        size_t n = 0;
        ck_assert_int_eq(hex_decode(hex, p, sizeof(p), NULL), 0);
        ck_assert_int_eq(ekb_records_parse(ctx, "D", EKB_FMT_1_0, FL_CHIP_T194, p, 80, r, EKB_MAX_RECORDS, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(r[0].tag, 1);
        ck_assert_uint_eq(r[1].tag, 2);
        ck_assert_uint_eq(r[2].tag, 4);
        ck_assert_uint_eq(r[2].off, 56);
        ck_assert_uint_eq(r[2].len, 16);
        /* Without the end record, with bad padding, with a length past the end. */
        ck_assert_int_eq(ekb_records_parse(ctx, "D", EKB_FMT_1_0, FL_CHIP_T194, p, 72, r, EKB_MAX_RECORDS, &n),
                         -EBADMSG);
        p[4] = 0xff;
        ck_assert_int_eq(ekb_records_parse(ctx, "D", EKB_FMT_1_0, FL_CHIP_T194, p, 80, r, EKB_MAX_RECORDS, &n),
                         -EBADMSG);
}
END_TEST

START_TEST(t_locate_every_byte)
{
        size_t len;
        unsigned char *d = load("A-t234-ekb1.0-oemk1/eks_t234.img", &len), ak[16];
        struct ekb_image im;
        long off;
        bool tagd;

        ck_assert_int_eq(hex_decode("842da8c358f9aab2b8e01af6ce6330a4", ak, 16, NULL), 0);
        ck_assert_int_eq(ekb_parse(ctx, "A", d, len, &im), 0);
        /* Intact: nothing to locate. */
        ck_assert_int_eq(ekb_locate_damage(ak, im.mac_data, im.mac_len, im.cmac, &off, &tagd), 0);
        ck_assert_int_eq(off, -1);
        for (size_t i = 0; i < im.mac_len; i++) {
                unsigned char *m = malloc(im.mac_len);
                memcpy(m, im.mac_data, im.mac_len);
                m[i] ^= (unsigned char)(1 + i % 255);
                ck_assert_int_eq(ekb_locate_damage(ak, m, im.mac_len, im.cmac, &off, &tagd), 0);
                ck_assert(!tagd);
                ck_assert_int_eq(off, (long)i);
                free(m);
        }
        for (int i = 0; i < 16; i++) {
                unsigned char t[16];
                memcpy(t, im.cmac, 16);
                t[i] ^= 0x80;
                ck_assert_int_eq(ekb_locate_damage(ak, im.mac_data, im.mac_len, t, &off, &tagd), 0);
                ck_assert(tagd);
                ck_assert_int_eq(off, i);
        }
        /* Another key: no single byte explains it. */
        ak[0] ^= 1;
        ck_assert_int_eq(ekb_locate_damage(ak, im.mac_data, im.mac_len, im.cmac, &off, &tagd), 0);
        ck_assert_int_eq(off, -1);
        free(d);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ekb");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_layouts);
        tcase_add_test(tc, t_records_set_d);
        tcase_add_test(tc, t_locate_every_byte);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
