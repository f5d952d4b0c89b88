/* test-fuse_blob.c — the fuse blob against NVIDIA's own: encoding each
 * vector's XML gives tegraparser_v2's blob byte for byte, parsing each blob
 * gives the XML's fuses; type ids known only where a vector or the
 * reference states them; every malformed blob refused with a message naming
 * what is wrong; the blob found at the tail of an FSKP image, exactly once. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_blob.h"
#include "fuse_xml.h"

static fl_ctx *ctx;

static const struct {
        const char *name;
        enum fl_chip chip;
} vectors[] = {
        { "t194-prod", FL_CHIP_T194 },
        { "t234-prod-full", FL_CHIP_T234 },
        { "t234-test-pkh-bsi", FL_CHIP_T234 },
};

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
        ctx = NULL;
}

static void load(const char *name, const char *ext, unsigned char **data, size_t *len)
{
        const char *dir = getenv("VECTORS");
        char path[4096];

        ck_assert_msg(dir != NULL, "VECTORS is not set");
        snprintf(path, sizeof(path), "%s/fuse-blob/%s.%s", dir, name, ext);
        ck_assert_msg(file_read(ctx, path, 1 << 20, data, len) == 0, "%s: %s", path, fl_ctx_last_error(ctx));
}

static struct fuse_plan *xml_plan(const char *name, enum fl_chip chip)
{
        struct fuse_problems probs = { 0 };
        struct fuse_plan *p = NULL;
        unsigned char *x;
        size_t xl;

        load(name, "xml", &x, &xl);
        ck_assert_int_eq(fuse_xml_parse(ctx, x, xl, chip, &p, &probs), 0);
        ck_assert_msg(probs.n == 0, "%s.xml: %s", name, probs.n ? probs.v[0].msg : "");
        ck_assert_ptr_nonnull(p);
        fuse_problems_free(&probs);
        free(x);
        return p;
}

/* The vector blob, for the malformed-input tests. */
static unsigned char *vec_blob(size_t *len)
{
        unsigned char *b;

        load("t234-prod-full", "blob", &b, len);
        return b;
}

static void put32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char)v;
        p[1] = (unsigned char)(v >> 8);
        p[2] = (unsigned char)(v >> 16);
        p[3] = (unsigned char)(v >> 24);
}

static void expect_refused(const unsigned char *b, size_t len, enum fl_chip chip, const char *words)
{
        struct fuse_plan *p = NULL;

        fl_err_clear(ctx);
        ck_assert_int_eq(fuse_blob_parse(ctx, chip, b, len, &p), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_msg(fl_ctx_last_error(ctx) && strstr(fl_ctx_last_error(ctx), words), "wanted '%s' in: %s", words,
                      fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "(none)");
}

START_TEST(t_encode_vectors)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(vectors); i++) {
                struct fuse_plan *p = xml_plan(vectors[i].name, vectors[i].chip);
                unsigned char *want, *got = NULL;
                size_t wl, gl = 0;

                load(vectors[i].name, "blob", &want, &wl);
                ck_assert_msg(fuse_blob_encode(ctx, p, &got, &gl) == 0, "%s: %s", vectors[i].name,
                              fl_ctx_last_error(ctx));
                ck_assert_uint_eq(gl, wl);
                for (size_t k = 0; k < wl; k++)
                        ck_assert_msg(got[k] == want[k], "%s: byte %zu is %02x, NVIDIA's is %02x", vectors[i].name,
                                      k, got[k], want[k]);
                fuse_blob_free(got, gl);
                free(want);
                fuse_plan_free(p);
        }
}
END_TEST

START_TEST(t_parse_vectors)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(vectors); i++) {
                struct fuse_plan *x = xml_plan(vectors[i].name, vectors[i].chip), *p = NULL;
                unsigned char *b, *again = NULL;
                size_t bl, al = 0;

                load(vectors[i].name, "blob", &b, &bl);
                ck_assert_msg(fuse_blob_parse(ctx, vectors[i].chip, b, bl, &p) == 0, "%s: %s", vectors[i].name,
                              fl_ctx_last_error(ctx));
                ck_assert_uint_eq(p->magic, x->magic);
                ck_assert_uint_eq(p->n, x->n);
                for (size_t k = 0; k < x->n; k++) {
                        ck_assert_ptr_eq(p->e[k].def, x->e[k].def);
                        ck_assert_int_eq(memcmp(p->e[k].value, x->e[k].value, x->e[k].def->size), 0);
                }
                /* And back to the same bytes. */
                ck_assert_int_eq(fuse_blob_encode(ctx, p, &again, &al), 0);
                ck_assert_uint_eq(al, bl);
                ck_assert_int_eq(memcmp(again, b, bl), 0);
                fuse_blob_free(again, al);
                free(b);
                fuse_plan_free(p);
                fuse_plan_free(x);
        }
}
END_TEST

/* Spot values that pin the byte order (read off the vectors by hand). */
START_TEST(t_byte_order)
{
        struct fuse_plan *p = xml_plan("t234-prod-full", FL_CHIP_T234);
        unsigned char *b = NULL;
        size_t bl = 0;
        static const unsigned char bsi[] = { 0x09, 0x02, 0x00, 0x00 },
                                   odmid[] = { 1, 2, 3, 4, 5, 6, 7, 8 },
                                   magic[] = { 0x45, 0x53, 0x55, 0x46 };

        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), 0);
        ck_assert_uint_eq(bl, 0x10c);
        ck_assert_int_eq(memcmp(b, magic, 4), 0);
        ck_assert_int_eq(memcmp(b + 0x104, bsi, 4), 0);  /* BootSecurityInfo 0x209 */
        ck_assert_int_eq(memcmp(b + 0xfc, odmid, 8), 0); /* OdmId as written */
        fuse_blob_free(b, bl);
        fuse_plan_free(p);
}
END_TEST

START_TEST(t_type_ids)
{
        /* Known from the vectors and the reference only. */
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "SecureBootKey")), 0x66);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T194, chip_fuse(FL_CHIP_T194, "SecureBootKey")), 0x2b);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "OdmId")), 0x39);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "BootSecurityInfo")), 0);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T194, chip_fuse(FL_CHIP_T194, "ReservedOdm7")), 0x27);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "OemK2")), -1);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "ReservedOdm1")), -1);
        ck_assert_int_eq(chip_fuse_blob_type(FL_CHIP_T194, chip_fuse(FL_CHIP_T194, "Kek2")), -1);
        ck_assert_ptr_eq(chip_fuse_by_blob_type(FL_CHIP_T234, 0x6a), chip_fuse(FL_CHIP_T234, "OemK1"));
        ck_assert_ptr_null(chip_fuse_by_blob_type(FL_CHIP_T234, 0x2b));
        ck_assert_ptr_null(chip_fuse_by_blob_type(FL_CHIP_T234, 0x1e)); /* OdmLock: not burnable on t234 */
}
END_TEST

START_TEST(t_encode_refusals)
{
        struct fuse_plan *p = NULL;
        unsigned char *b = NULL, k[32] = { 1 }, one[4] = { 0, 0, 0, 1 };
        size_t bl = 0;

        /* A fuse whose id is unknown: refused by name, never guessed. */
        ck_assert_int_eq(fuse_plan_new(FL_CHIP_T234, &p), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "OemK1"), k, 0), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "OemK2"), k, 0), 0);
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL);
        ck_assert_str_eq(fl_ctx_last_error(ctx), "fuse-blob type id of OemK2 is not known [U]; fuseline cannot "
                                                 "check a package that burns it");
        ck_assert_ptr_null(b);
        fuse_plan_free(p);

        /* Empty, duplicate, rpmb, TEST on t194. */
        ck_assert_int_eq(fuse_plan_new(FL_CHIP_T234, &p), 0);
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "SecurityMode"), one, 0), 0);
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), 0);
        fuse_blob_free(b, bl);
        b = NULL;
        p->rpmb = true;
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "rpmb"));
        p->rpmb = false;
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "SecurityMode"), one, 0), 0);
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "more than once"));
        fuse_plan_free(p);
        ck_assert_int_eq(fuse_plan_new(FL_CHIP_T194, &p), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T194, "SecurityMode"), one, 0), 0);
        p->magic = FUSE_MAGIC_TEST;
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL);
        p->magic = 0x46555345; /* T210's "fuse" */
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL);
        ck_assert_ptr_null(b);
        fuse_plan_free(p);
}
END_TEST

/* Ids learned from the BSP's parser (fuse_blob_type_learn): used by encode
 * and parse in that context only; every disagreement with the fuse map or
 * the table is refused by name. */
START_TEST(t_learned_types)
{
        struct fuse_plan *p = NULL, *back = NULL;
        unsigned char *b = NULL, k[32], info[4] = { 0, 0, 0x12, 0x34 };
        size_t bl = 0;
        fl_ctx *other = NULL;

        for (size_t i = 0; i < sizeof(k); i++)
                k[i] = (unsigned char)(0xa0 + i);
        ck_assert_int_eq(fuse_plan_new(FL_CHIP_T234, &p), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "OdmInfo"), info, 0), 0);
        ck_assert_int_eq(fuse_plan_add(p, chip_fuse(FL_CHIP_T234, "Kdk0"), k, 0), 0);
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), -EINVAL); /* unknown until learned */
        /* Refusals: wrong size, another fuse's id (table or learned), a table id contradicted, no such fuse. */
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "Kdk0", 0x4242, 16), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "Kdk0 is 16 bytes; the t234 fuse map says 32"));
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "Kdk0", 0x6a, 32), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "the id of OemK1"));
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "OemK1", 0x6b, 32), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "fuseline knows 0x6a"));
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "OemK1", 0x6a, 32), 0); /* agrees: fine */
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "Kek0", 0x4242, 16), -EINVAL);
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "Kdk0", 0x4242, 32), 0);
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "OdmInfo", 0x4242, 4), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "the id of Kdk0"));
        ck_assert_int_eq(fuse_blob_type_learn(ctx, FL_CHIP_T234, "OdmInfo", 0x4243, 4), 0);
        /* Encoded with the learned ids, parsed back to the same plan. */
        ck_assert_int_eq(fuse_blob_encode(ctx, p, &b, &bl), 0);
        ck_assert_uint_eq(bl, 20 + 2 * 12 + 4 + 32);
        ck_assert_uint_eq(b[20] | b[21] << 8, 0x4243);
        ck_assert_uint_eq(b[32] | b[33] << 8, 0x4242);
        ck_assert_int_eq(memcmp(b + 20 + 24 + 4, k, 32), 0);
        ck_assert_int_eq(fuse_blob_parse(ctx, FL_CHIP_T234, b, bl, &back), 0);
        ck_assert_uint_eq(back->n, 2);
        ck_assert_str_eq(back->e[1].def->name, "Kdk0");
        ck_assert_int_eq(memcmp(back->e[1].value, k, 32), 0);
        /* Another context knows nothing of them until copied. */
        ck_assert_int_eq(fl_ctx_new(&other), 0);
        ck_assert_int_eq(fuse_blob_type_of(other, FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "Kdk0")), -1);
        ck_assert_int_eq(fuse_blob_type_of(other, FL_CHIP_T194, chip_fuse(FL_CHIP_T234, "Kdk0")), -1);
        fuse_blob_types_copy(other, ctx);
        ck_assert_int_eq(fuse_blob_type_of(other, FL_CHIP_T234, chip_fuse(FL_CHIP_T234, "Kdk0")), 0x4242);
        fl_ctx_free(other);
        fuse_plan_free(back);
        fuse_blob_free(b, bl);
        fuse_plan_free(p);
}
END_TEST

START_TEST(t_parse_malformed)
{
        size_t len;
        unsigned char *orig = vec_blob(&len), *b = malloc(len + 8);
        const size_t n0 = 20; /* node 0: ArmJtagDisable, type 0x1f, size 4, offset 0x74 */

        ck_assert_ptr_nonnull(b);
#define RESET() memcpy(b, orig, len)
        RESET();
        b[0] = 'F';
        expect_refused(b, len, FL_CHIP_T234, "neither FUSE");
        RESET();
        put32(b + 4, 2);
        expect_refused(b, len, FL_CHIP_T234, "version 2");
        RESET();
        put32(b + 8, (uint32_t)len - 1);
        expect_refused(b, len, FL_CHIP_T234, "total-length field");
        RESET();
        put32(b + 12, 0);
        expect_refused(b, len, FL_CHIP_T234, "fuse count 0");
        RESET();
        put32(b + 12, 0xffffffffu);
        expect_refused(b, len, FL_CHIP_T234, "fuse count");
        RESET();
        put32(b + 12, 100); /* more nodes than bytes */
        expect_refused(b, len, FL_CHIP_T234, "100 nodes need");
        RESET();
        put32(b + 16, 0x18);
        expect_refused(b, len, FL_CHIP_T234, "first-node offset");
        RESET();
        put32(b + n0, 0x77);
        expect_refused(b, len, FL_CHIP_T234, "type id 0x77");
        RESET();
        put32(b + n0, 0x6b); /* OemK2's id is unknown, so is any neighbour */
        expect_refused(b, len, FL_CHIP_T234, "type id 0x6b");
        RESET();
        put32(b + n0 + 4, 8);
        expect_refused(b, len, FL_CHIP_T234, "has size 8");
        RESET();
        put32(b + n0 + 8, (uint32_t)len);
        expect_refused(b, len, FL_CHIP_T234, "outside the value area");
        RESET();
        put32(b + n0 + 8, 0xfffffffeu);
        expect_refused(b, len, FL_CHIP_T234, "outside the value area");
        RESET();
        put32(b + n0 + 8, 0x10); /* inside the header */
        expect_refused(b, len, FL_CHIP_T234, "outside the value area");
        RESET();
        put32(b + n0 + 12 + 8, 0x74); /* node 1 (OemK1) onto node 0's value */
        expect_refused(b, len, FL_CHIP_T234, "overlaps node 0");
        RESET();
        put32(b + n0 + 8, 0x78); /* node 0 moved: a gap, and node 1 overlaps it */
        expect_refused(b, len, FL_CHIP_T234, "belongs at 116");
        RESET();
        put32(b + n0 + 12, 0x1f); /* node 1 claims ArmJtagDisable too, with its size */
        put32(b + n0 + 12 + 4, 4);
        expect_refused(b, len, FL_CHIP_T234, "ArmJtagDisable appears more than once");
        RESET();
        b[len] = 0;
        put32(b + 8, (uint32_t)len + 1);
        expect_refused(b, len + 1, FL_CHIP_T234, "1 bytes after the last value");
        /* t234 ids on a t194 blob: OemK1's 0x6a is not a T194 id. */
        RESET();
        expect_refused(b, len, FL_CHIP_T194, "type id 0x1f");
        /* TEST magic is t234 only. */
        RESET();
        memcpy(b, "TSET", 4);
        expect_refused(b, len, FL_CHIP_T194, "TEST magic");
        /* Every truncation. */
        RESET();
        for (size_t k = 0; k < len; k++) {
                struct fuse_plan *p = NULL;
                ck_assert_int_eq(fuse_blob_parse(ctx, FL_CHIP_T234, b, k, &p), -EINVAL);
                ck_assert_ptr_null(p);
        }
#undef RESET
        free(b);
        free(orig);
}
END_TEST

/* Duplicate fuse with a consistent layout. */
START_TEST(t_parse_duplicate)
{
        unsigned char b[20 + 24 + 8];

        memcpy(b, "ESUF", 4);
        put32(b + 4, 1);
        put32(b + 8, sizeof(b));
        put32(b + 12, 2);
        put32(b + 16, 20);
        for (int i = 0; i < 2; i++) {
                put32(b + 20 + 12 * i, 0x1d);
                put32(b + 20 + 12 * i + 4, 4);
                put32(b + 20 + 12 * i + 8, 44 + 4 * (uint32_t)i);
        }
        put32(b + 44, 1);
        put32(b + 48, 1);
        expect_refused(b, sizeof(b), FL_CHIP_T234, "SecurityMode appears more than once");
}
END_TEST

static unsigned char *image_with(const unsigned char *tail, size_t tl, size_t prefix, size_t *ret_len)
{
        unsigned char *img = malloc(prefix + tl);

        ck_assert_ptr_nonnull(img);
        /* Bytes that look like an MB2 image, with FUSE magics sprinkled in
         * whose length fields do not reach the end. */
        for (size_t i = 0; i < prefix; i++)
                img[i] = (unsigned char)(i * 131 + 7);
        for (size_t i = 64; i + 12 < prefix; i += 4096) {
                memcpy(img + i, "ESUF", 4);
                put32(img + i + 4, 1);
                put32(img + i + 8, 112);
        }
        memcpy(img + prefix, tail, tl);
        *ret_len = prefix + tl;
        return img;
}

START_TEST(t_find_tail)
{
        unsigned char *blob, *img;
        size_t bl, il, off = 0;

        load("t234-test-pkh-bsi", "blob", &blob, &bl);
        ck_assert_uint_eq(bl, 112);
        /* The size of the observed fskp_t234_updated.bin. */
        img = image_with(blob, bl, 386440 - bl, &il);
        ck_assert_int_eq(fuse_blob_find_tail(ctx, img, il, &off), 0);
        ck_assert_uint_eq(off, 386440 - 112);
        free(img);

        /* A byte after the blob: nothing ends at the last byte. */
        img = malloc(bl + 1);
        memcpy(img, blob, bl);
        img[bl] = 0;
        ck_assert_int_eq(fuse_blob_find_tail(ctx, img, bl + 1, &off), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "no fuse blob"));
        free(img);

        /* Two candidates: a second header whose length also reaches the
         * end, hidden in the image before the blob. */
        img = image_with(blob, bl, 1000, &il);
        memcpy(img + 500, "TSET", 4);
        put32(img + 504, 1);
        put32(img + 508, (uint32_t)(il - 500));
        ck_assert_int_eq(fuse_blob_find_tail(ctx, img, il, &off), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "2 fuse-blob candidates"));
        free(img);

        /* Too short for any header. */
        ck_assert_int_eq(fuse_blob_find_tail(ctx, blob, 19, &off), -EINVAL);
        ck_assert_int_eq(fuse_blob_find_tail(ctx, blob, 0, &off), -EINVAL);
        /* The blob alone is its own tail. */
        ck_assert_int_eq(fuse_blob_find_tail(ctx, blob, bl, &off), 0);
        ck_assert_uint_eq(off, 0);
        free(blob);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("fuse_blob");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_encode_vectors);
        tcase_add_test(tc, t_parse_vectors);
        tcase_add_test(tc, t_byte_order);
        tcase_add_test(tc, t_type_ids);
        tcase_add_test(tc, t_encode_refusals);
        tcase_add_test(tc, t_learned_types);
        tcase_add_test(tc, t_parse_malformed);
        tcase_add_test(tc, t_parse_duplicate);
        tcase_add_test(tc, t_find_tail);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
