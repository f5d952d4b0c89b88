/* test-fuse_plan.c — plan building (NVIDIA's sample configurations from
 * jetson-fuses.md §9 reproduced from equivalent keysets), every refused
 * option combination, every ordering/dependency/BSI rule with the exact
 * problem it reports, the plan hash (expected values computed with Python's
 * hashlib), the readfuses parser, the diff (incl. the 0x1e0 case), and the
 * product templates. Key check values were computed with `openssl enc
 * -aes-*-ecb`; PKC hashes are NVIDIA's vectors or tests/tools/pkc-hash-ref.py. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse_plan.h"

/* NVIDIA's vectors (tests/vectors/pkc-hash/VECTORS.txt) and pkc-hash-ref.py. */
#define H_RSA3K "0x5719f4dacddd78ebe13781dc041d17e92b4b43fc3a28e89da7f6377d1be2b91cf98e5dd6e42ba768a9dcfa3fd3f1fc56dca8c260a072c08a4398af35b137663d"
#define H_P521 "0x2e4809008ce2fe9e34c8fc7200f2435a018962cf08025b577de5bb21070c905fd5585cdda5e655e3d98a389d7352d5cf752b1df0df60917bd44c258ec70ee2e7"
#define H_P256 "0x7535b99a53a11111a92600c5e7cc3d05b10c4c25261f44305966b49ebead1d430c0728dfa0d45f3023ee864e5254af70aa098f7fc39d5893109688aeed1e3525"
#define H_PKC1 "0x928f21e87c64e4b6ef3fb651c20c6f0d7513eb692308cc246f5b122468eed3e1d87b7edca8c7e68f09f96e2854818b8064743a7cc0ddf6631147224e46c02c33"
#define H_PKC2 "0xf8f2e4faae958be0c1841142e72d8a4f76e3e7e05343ddb80d8f68079939b5353f5c5ded83d08226a710d7acf21aa78c16f42892f8f63078dad8a607da7f550f"
#define H_194_3K "0x8d26f7b61012cae7902326b05cfb0b33d0818f8a4f47e4ac505e713614e36c40"
#define H_194_2K "0x71bb501b242171c9017b51bca8af0538cc17159e68b6fbc8f5c3788fcb308a9a"

static const struct {
        const char *chip, *role, *hex, *kcv;
} key_values[] = {
        { "t234", "sbk", "123456789abcdef0fedcba987654321000112233445566778899aabbccddeeff", "bfab47" },
        { "t234", "oem-k1", "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0", "97c8d4" },
        { "t234", "oem-k2", "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5", "3e9661" },
        { "t194", "sbk", "0123456789abcdeffedcba9876543210", "d5c825" },
        { "t194", "kek0", "000102030405060708090a0b0c0d0e0f", "c6a13b" },
        { "t194", "kek1", "101112131415161718191a1b1c1d1e1f", "eda330" },
        { "t194", "kek2", "55aa55aa00ff00ff0123456789abcdef", "8b155a" },
        { "t194", "kek256", "00112233445566778899aabbccddeeffffeeddccbbaa99887766554433221100", "9480e7" },
};

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

/* ---- fixtures ---------------------------------------------------------- */

/* A manifest for chip with the given keys: "role:type[:hash]" PKC entries and
 * bare role names for fuse keys (type and kcv from key_values). */
static struct keyset *mk_keyset(const char *chip, const char *const *keys, size_t n)
{
        char json[8192];
        size_t off = 0;
        struct keyset *ks = NULL;

        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                "{\"format\":\"fuseline-keyset/1\",\"chip\":\"%s\",\"profile\":\"lab\",\"name\":\"t\","
                                "\"token\":{\"uri\":\"pkcs11:token=lab\"},\"keys\":[", chip);
        for (size_t i = 0; i < n; i++) {
                char spec[256], *role = spec, *type, *hash;

                snprintf(spec, sizeof(spec), "%s", keys[i]);
                type = strchr(spec, ':');
                if (type) {
                        *type++ = 0;
                        hash = strchr(type, ':');
                        *hash++ = 0;
                        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                                "%s{\"role\":\"%s\",\"type\":\"%s\",\"uri\":\"pkcs11:object=%s\","
                                                "\"tegra_pkc_hash\":\"%s\",\"public_key_sha256\":\"%064d\"}",
                                                i ? "," : "", role, type, role, hash, 0);
                } else {
                        const char *t = NULL, *kcv = NULL;
                        for (size_t j = 0; j < FL_ARRAY_SIZE(key_values); j++)
                                if (!strcmp(key_values[j].chip, chip) && !strcmp(key_values[j].role, role)) {
                                        t = strlen(key_values[j].hex) == 32 ? "aes128" : "aes256";
                                        kcv = key_values[j].kcv;
                                }
                        ck_assert_ptr_nonnull(t);
                        off += (size_t)snprintf(json + off, sizeof(json) - off,
                                                "%s{\"role\":\"%s\",\"type\":\"%s\",\"uri\":\"pkcs11:object=%s\","
                                                "\"kcv\":\"%s\"}", i ? "," : "", role, t, role, kcv);
                }
        }
        snprintf(json + off, sizeof(json) - off, "]}");
        ck_assert_msg(keyset_parse(ctx, "ks.json", json, strlen(json), &ks) == 0, "keyset: %s",
                      fl_ctx_last_error(ctx));
        return ks;
}

struct fake {
        int calls;
        bool corrupt;
};

static int fake_key(fl_ctx *c, void *data, const struct ks_key *k, unsigned char *out, size_t len)
{
        struct fake *f = data;
        const char *chip = chip_name(k->type == KT_AES128 ? FL_CHIP_T194 : FL_CHIP_T234);
        size_t got = 0;

        (void)c;
        f->calls++;
        /* kek256 is AES-256 on t194: look it up by role first. */
        for (size_t j = 0; j < FL_ARRAY_SIZE(key_values); j++)
                if (!strcmp(key_values[j].role, k->role) &&
                    (!strcmp(key_values[j].chip, chip) || !strcmp(k->role, "kek256"))) {
                        ck_assert_int_eq(hex_decode(key_values[j].hex, out, len, &got), 0);
                        ck_assert_uint_eq(got, len);
                        if (f->corrupt)
                                out[0] ^= 1;
                        return 0;
                }
        return -ENXIO;
}

static struct fuse_plan *build(struct keyset *ks, const struct fuse_plan_opts *o)
{
        struct fuse_plan *p = NULL;
        struct fake f = { 0, false };
        int r = fuse_plan_build(ctx, ks, "ks.json", o, fake_key, &f, &p);

        ck_assert_msg(r == 0, "build: %d %s", r, fl_ctx_last_error(ctx));
        return p;
}

static void expect_names(const struct fuse_plan *p, const char *want)
{
        char got[1024] = "";
        size_t off = 0;

        for (size_t i = 0; i < p->n; i++)
                off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "", p->e[i].def->name);
        ck_assert_str_eq(got, want);
}

static uint64_t word(const struct fuse_plan *p, const char *name)
{
        const struct fuse_entry *e = fuse_plan_find(p, name);

        ck_assert_msg(e != NULL, "%s missing", name);
        return fuse_entry_word(e);
}

static void expect_value_hex(const struct fuse_plan *p, const char *name, const char *hex)
{
        const struct fuse_entry *e = fuse_plan_find(p, name);
        char got[2 * FUSE_VALUE_MAX + 1];

        ck_assert_msg(e != NULL, "%s missing", name);
        hex_encode(e->value, e->def->size, got);
        ck_assert_str_eq(got, hex[0] == '0' && hex[1] == 'x' ? hex + 2 : hex);
}

/* ---- building ----------------------------------------------------------- */

/* §9 "RSA-3K": PublicKeyHash, BootSecurityInfo 0x1, SecurityMode 0x1. */
START_TEST(t_sample_rsa3k)
{
        const char *keys[] = { "pkc0:rsa3k:" H_RSA3K };
        struct keyset *ks = mk_keyset("t234", keys, 1);
        struct fuse_plan_opts o = { .sbk = SBK_NO, .production_mode = true };
        struct fuse_plan *p = build(ks, &o);
        char sha[65];

        expect_names(p, "PublicKeyHash BootSecurityInfo SecurityMode");
        expect_value_hex(p, "PublicKeyHash", H_RSA3K);
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x1);
        ck_assert_uint_eq(word(p, "SecurityMode"), 0x1);
        ck_assert_uint_eq(p->magic, 0x45535546);
        /* hashlib.sha256 of the canonical text, computed in Python. */
        ck_assert_int_eq(fuse_plan_sha256(ctx, p, sha), 0);
        ck_assert_str_eq(sha, "5e1e0daee41b376f6757b7399733b4d6ea060c0db9f161e648260aed718e103f");
        p->magic = FUSE_MAGIC_TEST;
        ck_assert_int_eq(fuse_plan_sha256(ctx, p, sha), 0);
        ck_assert_str_eq(sha, "4bf9989af05fd1561be4c30df0ff0aecb1d63be5c21bd20cded9046baaecd748");
        ck_assert_str_eq(p->profile, "lab");
        ck_assert_str_eq(p->keyset_name, "t");
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

/* §9 "ECDSA P-256": BootSecurityInfo 0x2. */
START_TEST(t_sample_p256)
{
        const char *keys[] = { "pkc0:p256:" H_P256 };
        struct keyset *ks = mk_keyset("t234", keys, 1);
        struct fuse_plan_opts o = { .production_mode = true };
        struct fuse_plan *p = build(ks, &o);

        expect_names(p, "PublicKeyHash BootSecurityInfo SecurityMode");
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x2);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

/* §9 "P-521 + SBK + OemK1": BootSecurityInfo 0x20b (OemK1 alone, as NVIDIA's
 * sample has it). */
START_TEST(t_sample_p521_sbk_oemk1)
{
        const char *keys[] = { "pkc0:p521:" H_P521, "sbk", "oem-k1" };
        struct keyset *ks = mk_keyset("t234", keys, 3);
        struct fuse_plan_opts o = { .oem_keys = true, .production_mode = true };
        struct fuse_plan *p = build(ks, &o);

        expect_names(p, "SecureBootKey OemK1 PublicKeyHash BootSecurityInfo SecurityMode");
        expect_value_hex(p, "SecureBootKey", "123456789abcdef0fedcba987654321000112233445566778899aabbccddeeff");
        expect_value_hex(p, "OemK1", "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0");
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x20b);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

START_TEST(t_oem_both)
{
        const char *keys[] = { "pkc0:rsa3k:" H_RSA3K, "oem-k1", "oem-k2" };
        struct keyset *ks = mk_keyset("t234", keys, 3);
        struct fuse_plan_opts o = { .oem_keys = true };
        struct fuse_plan *p = build(ks, &o);

        expect_names(p, "OemK1 OemK2 PublicKeyHash BootSecurityInfo");
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x201);
        fuse_plan_free(p);
        keyset_free(ks);
        /* Without --oem-keys the OEM keys stay out and bit 9 stays clear. */
        ks = mk_keyset("t234", keys, 3);
        o.oem_keys = false;
        p = build(ks, &o);
        expect_names(p, "PublicKeyHash BootSecurityInfo");
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x1);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

/* §9 "Three-key revocation": SecureBootKey, PublicKeyHash, PkcPubkeyHash1,
 * PkcPubkeyHash2, OptInEnable 0x1, BootSecurityInfo 0x9, SecurityMode 0x1. */
START_TEST(t_sample_revocation)
{
        const char *keys[] = { "pkc0:rsa3k:" H_RSA3K, "pkc1:rsa3k:" H_PKC1, "pkc2:rsa3k:" H_PKC2, "sbk" };
        struct keyset *ks = mk_keyset("t234", keys, 4);
        struct fuse_plan_opts o = { .revocation = true, .production_mode = true };
        struct fuse_plan *p = build(ks, &o);

        expect_names(p, "SecureBootKey PublicKeyHash PkcPubkeyHash1 PkcPubkeyHash2 OptInEnable BootSecurityInfo "
                        "SecurityMode");
        expect_value_hex(p, "PkcPubkeyHash1", H_PKC1);
        expect_value_hex(p, "PkcPubkeyHash2", H_PKC2);
        ck_assert_uint_eq(word(p, "OptInEnable"), 0x1);
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x9);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

/* §9 T194 sample: SecureBootKey 16, Kek2 16, Kek256 32, PublicKeyHash 32,
 * BootSecurityInfo 0x6, SecurityMode 0x1 — in that order. */
START_TEST(t_sample_t194)
{
        const char *keys[] = { "pkc0:rsa3k:" H_194_3K, "sbk", "kek2", "kek256" };
        struct keyset *ks = mk_keyset("t194", keys, 4);
        struct fuse_plan_opts o = { .production_mode = true, .test = true };
        struct fuse_plan *p = build(ks, &o);

        expect_names(p, "SecureBootKey Kek2 Kek256 PublicKeyHash BootSecurityInfo SecurityMode");
        ck_assert_uint_eq(fuse_plan_find(p, "SecureBootKey")->def->size, 16);
        ck_assert_uint_eq(fuse_plan_find(p, "PublicKeyHash")->def->size, 32);
        expect_value_hex(p, "PublicKeyHash", H_194_3K);
        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x6);
        /* T194 has no TEST magic: --test leaves the file as it is. */
        ck_assert_uint_eq(p->magic, FUSE_MAGIC);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

START_TEST(t_t194_rsa2k)
{
        const char *keys[] = { "pkc0:rsa2k:" H_194_2K, "sbk" };
        struct keyset *ks = mk_keyset("t194", keys, 2);
        struct fuse_plan_opts o = { 0 };
        struct fuse_plan *p = build(ks, &o);

        ck_assert_uint_eq(word(p, "BootSecurityInfo"), 0x5);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

START_TEST(t_odm_words)
{
        const char *keys[] = { "pkc0:p256:" H_P256 };
        struct keyset *ks = mk_keyset("t234", keys, 1);
        struct fuse_plan_opts o = { .jtag_disable = true, .has_odm_id = true, .odm_id = 0x0123456789abcdefull,
                                    .odm_reserved_set = 0x81, .test = true };
        struct fuse_plan *p;

        o.odm_reserved[0] = 0x12345678;
        o.odm_reserved[7] = 0x1;
        p = build(ks, &o);
        expect_names(p, "OdmId ArmJtagDisable ReservedOdm0 ReservedOdm7 PublicKeyHash BootSecurityInfo");
        expect_value_hex(p, "OdmId", "0123456789abcdef");
        expect_value_hex(p, "ReservedOdm0", "12345678");
        expect_value_hex(p, "ReservedOdm7", "00000001");
        ck_assert_uint_eq(word(p, "ArmJtagDisable"), 1);
        ck_assert_uint_eq(p->magic, FUSE_MAGIC_TEST);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

START_TEST(t_odm_lock_t194)
{
        const char *keys[] = { "pkc0:rsa3k:" H_194_3K };
        struct keyset *ks = mk_keyset("t194", keys, 1);
        struct fuse_plan_opts o = { .jtag_disable = true, .has_odm_lock = true, .odm_lock = 0x3,
                                    .odm_reserved_set = (1u << 11) | 2u };
        struct fuse_plan *p;

        o.odm_reserved[1] = 0xa;
        o.odm_reserved[11] = 0xb;
        p = build(ks, &o);
        expect_names(p, "JtagDisable ReservedOdm1 ReservedOdm11 OdmLock PublicKeyHash BootSecurityInfo");
        ck_assert_uint_eq(word(p, "OdmLock"), 0x3);
        fuse_plan_free(p);
        keyset_free(ks);
}
END_TEST

/* Every refused combination, with its exact message. */
START_TEST(t_build_refusals)
{
        static const struct {
                const char *chip;
                const char *keys[4];
                struct fuse_plan_opts o;
                int r;
                const char *msg;
                enum fl_hint hint; /* the CLI turns it into the flag to use */
        } v[] = {
                { "t234", { "sbk", FL_HINT_NONE }, { 0 }, -EINVAL,
                  "a fuse plan (PublicKeyHash) needs key 'pkc0', which keyset ks.json does not have", FL_HINT_NONE },
                { "t194", { "pkc0:rsa3k:" H_194_3K }, { .oem_keys = true }, -EINVAL,
                  "the OEM keys: OemK1/OemK2 exist on t234 only (t194 uses Kek fuses)", FL_HINT_OEM_KEYS_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K }, { .oem_keys = true }, -EINVAL,
                  "the OEM keys need key 'oem-k1' or 'oem-k2', which keyset ks.json does not have", FL_HINT_OEM_KEYS_ASKED },
                { "t194", { "pkc0:rsa3k:" H_194_3K }, { .revocation = true }, -EINVAL,
                  "PKC revocation: PkcPubkeyHash1/2 and OptInEnable exist on t234 only", FL_HINT_REVOCATION_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K, "pkc1:rsa3k:" H_PKC1 }, { .revocation = true }, -EINVAL,
                  "PKC revocation needs key 'pkc2', which keyset ks.json does not have", FL_HINT_REVOCATION_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K, "pkc1:p256:" H_P256, "pkc2:rsa3k:" H_PKC2 },
                  { .revocation = true }, -EINVAL,
                  "PKC revocation: pkc0/pkc1/pkc2 are rsa3k/p256/rsa3k; all three must be the same type", FL_HINT_REVOCATION_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K }, { .has_odm_lock = true, .odm_lock = 1 }, -EINVAL,
                  "OdmLock is not burnable on t234 (not in NVIDIA's fuse configuration)", FL_HINT_ODM_ASKED },
                { "t194", { "pkc0:rsa3k:" H_194_3K }, { .has_odm_lock = true, .odm_lock = 0x10 }, -EINVAL,
                  "OdmLock 0x10: t194 takes lock bits 0x1..0xf (4 bits [U])", FL_HINT_ODM_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K }, { .odm_reserved_set = 1u << 8, .odm_reserved = { [8] = 1 } },
                  -EINVAL, "ReservedOdm8: t234 has ReservedOdm0..7 only", FL_HINT_ODM_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K }, { .odm_reserved_set = 1u << 2 }, -EINVAL,
                  "ReservedOdm2=0x0 burns nothing", FL_HINT_ODM_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K }, { .has_odm_id = true }, -EINVAL, "OdmId 0x0 burns nothing", FL_HINT_ODM_ASKED },
                { "t234", { "pkc0:rsa3k:" H_RSA3K }, { .sbk = SBK_YES }, -EINVAL,
                  "SecureBootKey was asked for but keyset ks.json has no sbk key", FL_HINT_NO_SBK },
        };

        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                size_t n = 0;
                struct keyset *ks;
                struct fuse_plan *p = (struct fuse_plan *)0x1;
                struct fake f = { 0, false };

                while (n < 4 && v[i].keys[n])
                        n++;
                ks = mk_keyset(v[i].chip, v[i].keys, n);
                fl_err_clear(ctx);
                ck_assert_int_eq(fuse_plan_build(ctx, ks, "ks.json", &v[i].o, fake_key, &f, &p), v[i].r);
                ck_assert_ptr_eq(p, (struct fuse_plan *)0x1);
                ck_assert_msg(fl_ctx_last_error(ctx) && !strcmp(fl_ctx_last_error(ctx), v[i].msg), "case %zu: '%s'",
                              i, fl_ctx_last_error(ctx));
                ck_assert_int_eq(fl_ctx_last_hint(ctx), v[i].hint);
                keyset_free(ks);
        }
}
END_TEST

/* A token value whose check value is not the manifest's: refused, and the
 * message shows only check values. */
START_TEST(t_build_kcv_mismatch)
{
        const char *keys[] = { "pkc0:rsa3k:" H_RSA3K, "sbk" };
        struct keyset *ks = mk_keyset("t234", keys, 2);
        struct fuse_plan_opts o = { 0 };
        struct fuse_plan *p = NULL;
        struct fake f = { 0, true };
        const char *msg;

        ck_assert_int_eq(fuse_plan_build(ctx, ks, "ks.json", &o, fake_key, &f, &p), -EBADMSG);
        ck_assert_ptr_null(p);
        msg = fl_ctx_last_error(ctx);
        ck_assert_ptr_nonnull(strstr(msg, "ks.json: key 'sbk': the token's value has check value "));
        ck_assert_ptr_nonnull(strstr(msg, ", the manifest says bfab47"));
        ck_assert_ptr_null(strstr(msg, "123456789abcdef0"));
        ck_assert_ptr_null(strstr(msg, "133456789abcdef0"));
        keyset_free(ks);
}
END_TEST

/* ---- rules ---------------------------------------------------------------- */

/* A plan from "Name=value" words in order: value is hex (left-padded), or
 * H (a hash 0x11…), K (a key 0x22…). */
static struct fuse_plan *mkplan(enum fl_chip chip, const char *spec)
{
        struct fuse_plan *p = NULL;
        char buf[1024], *save = NULL;

        ck_assert_int_eq(fuse_plan_new(chip, &p), 0);
        snprintf(buf, sizeof(buf), "%s", spec);
        for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(t, '=');
                const struct fuse_def *d;
                unsigned char v[FUSE_VALUE_MAX] = { 0 };

                ck_assert_ptr_nonnull(eq);
                *eq = 0;
                d = chip_fuse(chip, t);
                ck_assert_msg(d != NULL, "fixture fuse %s", t);
                if (!strcmp(eq + 1, "H"))
                        memset(v, 0x11, d->size);
                else if (!strcmp(eq + 1, "K"))
                        memset(v, 0x22, d->size);
                else {
                        unsigned long long w = strtoull(eq + 1, NULL, 16);
                        for (size_t i = d->size; i-- > 0; w >>= 8)
                                v[i] = (unsigned char)w;
                }
                ck_assert_int_eq(fuse_plan_add(p, d, v, 0), 0);
        }
        return p;
}

static void expect_problems(enum fl_chip chip, const char *spec, const struct keyset *ks, const char *const *want,
                            size_t nwant)
{
        struct fuse_plan *p = mkplan(chip, spec);
        struct fuse_problems probs = { 0 };
        char all[4096] = "";
        size_t off = 0;

        ck_assert_int_eq(fuse_plan_check(ctx, p, ks, &probs), 0);
        for (size_t i = 0; i < probs.n; i++)
                off += (size_t)snprintf(all + off, sizeof(all) - off, "[%s|%s] %s\n", probs.v[i].rule,
                                        probs.v[i].fuse, probs.v[i].msg);
        ck_assert_msg(probs.n == nwant, "%s: want %zu problems, got:\n%s", spec, nwant, all);
        for (size_t i = 0; i < nwant; i++)
                ck_assert_msg(strstr(all, want[i]) != NULL, "%s: missing '%s' in:\n%s", spec, want[i], all);
        fuse_problems_free(&probs);
        fuse_plan_free(p);
}

#define EXPECT(chip, spec, ...)                                                            \
        do {                                                                               \
                const char *w_[] = { __VA_ARGS__ };                                        \
                expect_problems(chip, spec, NULL, w_, FL_ARRAY_SIZE(w_));                  \
        } while (0)
#define EXPECT_OK(chip, spec) expect_problems(chip, spec, NULL, NULL, 0)

START_TEST(t_rules_clean)
{
        EXPECT_OK(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=1 SecurityMode=1");
        EXPECT_OK(FL_CHIP_T234, "PublicKeyHash=H SecureBootKey=K OemK1=K BootSecurityInfo=20b SecurityMode=1");
        EXPECT_OK(FL_CHIP_T234, "OemK1=K BootSecurityInfo=200");
        /* Factory reserved bits in a device-specific file are fine. */
        EXPECT_OK(FL_CHIP_T234, "PublicKeyHash=H OemK1=K SecureBootKey=K BootSecurityInfo=3e9");
        EXPECT_OK(FL_CHIP_T234, "SecureBootKey=K PublicKeyHash=H PkcPubkeyHash1=H PkcPubkeyHash2=H OptInEnable=1 "
                                "BootSecurityInfo=9 SecurityMode=1");
        EXPECT_OK(FL_CHIP_T194, "ReservedOdm0=0 OdmLock=1 SecureBootKey=K Kek2=K PublicKeyHash=H BootSecurityInfo=6");
        /* A partial burn without BootSecurityInfo is allowed. */
        EXPECT_OK(FL_CHIP_T234, "PublicKeyHash=H");
        EXPECT_OK(FL_CHIP_T234, "SecurityMode=1");
}
END_TEST

START_TEST(t_rules_order)
{
        EXPECT(FL_CHIP_T234, "BootSecurityInfo=1 PublicKeyHash=H",
               "[order|BootSecurityInfo] BootSecurityInfo is listed before PublicKeyHash: FSKP burns in XML order, and "
               "BootSecurityInfo switches enforcement on, so it must follow every fuse except SecurityMode");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H SecurityMode=1 BootSecurityInfo=1",
               "[order|SecurityMode] SecurityMode is listed before BootSecurityInfo: production mode must be the last "
               "fuse (once set, no other fuse can be burned)");
        /* One SecurityMode problem however many fuses follow it. */
        EXPECT(FL_CHIP_T234, "SecurityMode=1 ReservedOdm0=1 ReservedOdm1=1",
               "SecurityMode is listed before ReservedOdm0");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H OptInEnable=1 PkcPubkeyHash1=H PkcPubkeyHash2=H",
               "[order|OptInEnable] OptInEnable is listed before PkcPubkeyHash1: the revocation ratchet must be "
               "enabled after the key hashes it protects",
               "OptInEnable is listed before PkcPubkeyHash2");
        EXPECT(FL_CHIP_T194, "OdmLock=1 ReservedOdm0=5",
               "[order|OdmLock] OdmLock is listed before ReservedOdm0: a lock must follow the words it locks");
        EXPECT(FL_CHIP_T234, "BootSecurityInfo=0 ArmJtagDisable=1", "BootSecurityInfo is listed before ArmJtagDisable",
               "[value|BootSecurityInfo] BootSecurityInfo: value is zero: burns nothing");
        /* Keys and hashes may come in either order (NVIDIA's P-521 sample). */
        EXPECT_OK(FL_CHIP_T234, "PublicKeyHash=H SecureBootKey=K BootSecurityInfo=b");
}
END_TEST

START_TEST(t_rules_bsi)
{
        EXPECT(FL_CHIP_T234, "BootSecurityInfo=1",
               "[bsi|BootSecurityInfo] BootSecurityInfo: enables auth scheme 1 but the file has no PublicKeyHash (the "
               "device would not boot)");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=1e0",
               "BootSecurityInfo: PublicKeyHash is present but auth scheme bits are 0 (no PKC)");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=9",
               "BootSecurityInfo: SBK enable (0x8) is set but the file has no SecureBootKey");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H SecureBootKey=K BootSecurityInfo=1",
               "BootSecurityInfo: SecureBootKey is present but SBK enable (0x8) is clear");
        EXPECT(FL_CHIP_T234, "SecureBootKey=K BootSecurityInfo=8",
               "BootSecurityInfo: SBK enable (0x8) without a PKC auth scheme: SBK only with PKC",
               "[dependency|SecureBootKey] SecureBootKey without PublicKeyHash: SBK encryption only with PKC "
               "authentication");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=201",
               "BootSecurityInfo: ODM key valid (0x200) is set but the file has neither OemK1 nor OemK2");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H OemK2=K BootSecurityInfo=1",
               "BootSecurityInfo: OemK1/OemK2 are present but ODM key valid (0x200) is clear");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=4",
               "BootSecurityInfo: auth scheme 4 (Ed25519) is undocumented for Orin production [U]; t234 takes 1 "
               "rsa3k, 2 p256, 3 p521");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=5",
               "BootSecurityInfo: auth scheme 5 is not supported on t234 (t234 takes 1 rsa3k, 2 p256, 3 p521)");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=801",
               "BootSecurityInfo: bits 11 (OEM DICE1) and 13 (FMC DICE) (0x800 set) are unverified [U]: the fuse "
               "specification was not read; to burn them anyway acknowledge it with t234-bsi-11-13");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H OemK1=K BootSecurityInfo=2a01",
               "BootSecurityInfo: bits 11 (OEM DICE1) and 13 (FMC DICE) (0x2800 set) are unverified [U]");
        EXPECT(FL_CHIP_T194, "PublicKeyHash=H BootSecurityInfo=2801",
               "BootSecurityInfo: value 0x2801 sets bits outside the fuse's field (mask 0xff)");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=10001",
               "[value|BootSecurityInfo] BootSecurityInfo: value 0x10001 sets bits outside the fuse's field (mask "
               "0x3fff)");
        EXPECT(FL_CHIP_T194, "PublicKeyHash=H BootSecurityInfo=3",
               "BootSecurityInfo: auth scheme 3 is not supported on t194 (t194 takes 1 rsa2k, 2 rsa3k)");
        EXPECT(FL_CHIP_T194, "PublicKeyHash=H BootSecurityInfo=a",
               "BootSecurityInfo: bits 0x8 are not produced by NVIDIA's odmfuse for t194 (ODM fuse encryption, ECC)");
        EXPECT(FL_CHIP_T194, "PublicKeyHash=H SecureBootKey=K BootSecurityInfo=2",
               "BootSecurityInfo: SecureBootKey is present but SBK enable (0x4) is clear");
}
END_TEST

START_TEST(t_rules_dependencies_values)
{
        EXPECT(FL_CHIP_T234, "PkcPubkeyHash1=H", "[dependency|PkcPubkeyHash1] PkcPubkeyHash1 without PublicKeyHash");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H PkcPubkeyHash1=H OptInEnable=1",
               "[dependency|OptInEnable] OptInEnable without PkcPubkeyHash2: revocation needs all three key hashes");
        EXPECT(FL_CHIP_T234, "PublicKeyHash=H OptInEnable=1",
               "OptInEnable without PkcPubkeyHash1 and PkcPubkeyHash2: revocation needs all three key hashes");
        EXPECT(FL_CHIP_T234, "ArmJtagDisable=3",
               "[value|ArmJtagDisable] ArmJtagDisable: value 0x3 sets bits outside the fuse's field (mask 0x1)");
        EXPECT(FL_CHIP_T234, "OdmInfo=10000", "OdmInfo: value 0x10000 sets bits outside the fuse's field (mask 0xffff)");
        EXPECT(FL_CHIP_T234, "SecureBootKey=0 PublicKeyHash=H",
               "[value|SecureBootKey] SecureBootKey: value is zero: burns nothing and leaves the fuse open to anyone");
        EXPECT(FL_CHIP_T234, "SecurityMode=0", "SecurityMode: value is zero: burns nothing");
        EXPECT_OK(FL_CHIP_T234, "ReservedOdm3=0 OdmId=0");
        EXPECT(FL_CHIP_T194, "OdmLock=10", "OdmLock: value 0x10 sets bits outside the fuse's field (mask 0xf)");
}
END_TEST

START_TEST(t_rules_kek256)
{
        struct fuse_plan *p = mkplan(FL_CHIP_T194, "Kek0=K Kek1=K Kek256=K");
        struct fuse_problems probs = { 0 };

        ck_assert_int_eq(fuse_plan_check(ctx, p, NULL, &probs), 0);
        ck_assert_uint_eq(probs.n, 0);
        /* Kek256 must be Kek0 then Kek1 [U]: change its second half. */
        memset((unsigned char *)fuse_plan_find(p, "Kek256")->value + 16, 0x33, 16);
        ck_assert_int_eq(fuse_plan_check(ctx, p, NULL, &probs), 0);
        ck_assert_uint_eq(probs.n, 1);
        ck_assert_str_eq(probs.v[0].rule, "kek256");
        ck_assert_str_eq(probs.v[0].msg, "Kek256 does not end with Kek1 (Kek256 is Kek0 then Kek1 [U])");
        fuse_problems_free(&probs);
        fuse_plan_free(p);
}
END_TEST

START_TEST(t_rules_keyset)
{
        const char *keys[] = { "pkc0:p521:" H_P521, "sbk", "pkc1:rsa3k:" H_PKC1 };
        struct keyset *ks = mk_keyset("t234", keys, 3);
        struct keyset *ks194 = mk_keyset("t194", (const char *[]){ "pkc0:rsa3k:" H_194_3K }, 1);
        struct fuse_plan *p = mkplan(FL_CHIP_T234, "SecureBootKey=K PublicKeyHash=H OemK1=K PkcPubkeyHash1=H "
                                                   "BootSecurityInfo=209");
        struct fuse_problems probs = { 0 };
        char all[4096] = "";
        size_t off = 0;
        const char *want[] = {
                "SecureBootKey: check value differs from the keyset's sbk kcv (a different key)",
                "PublicKeyHash differs from the keyset's pkc0 tegra_pkc_hash",
                "OemK1: the keyset has no oem-k1 key to compare with",
                "PkcPubkeyHash1 differs from the keyset's pkc1 tegra_pkc_hash",
                "PkcPubkeyHash1: pkc1 is rsa3k but pkc0 is p521: all PKC keys must be the same type",
                "BootSecurityInfo: auth scheme 1 selects rsa3k but the keyset's pkc0 is p521",
        };

        ck_assert_int_eq(fuse_plan_check(ctx, p, ks, &probs), 0);
        for (size_t i = 0; i < probs.n; i++) {
                ck_assert_str_eq(probs.v[i].rule, strstr(probs.v[i].msg, "PkcPubkeyHash1 without") ? "dependency"
                                                                                                    : "keyset");
                off += (size_t)snprintf(all + off, sizeof(all) - off, "%s\n", probs.v[i].msg);
        }
        ck_assert_msg(probs.n == FL_ARRAY_SIZE(want), "%s", all);
        for (size_t i = 0; i < FL_ARRAY_SIZE(want); i++)
                ck_assert_msg(strstr(all, want[i]) != NULL, "missing '%s' in:\n%s", want[i], all);
        fuse_problems_free(&probs);
        /* The right values pass; the wrong chip is one problem. */
        fuse_plan_free(p);
        p = build(ks, &(struct fuse_plan_opts){ .sbk = SBK_YES });
        ck_assert_int_eq(fuse_plan_check(ctx, p, ks, &probs), 0);
        ck_assert_uint_eq(probs.n, 0);
        ck_assert_int_eq(fuse_plan_check(ctx, p, ks194, &probs), 0);
        ck_assert_uint_eq(probs.n, 1);
        ck_assert_str_eq(probs.v[0].msg, "the keyset is for t194, the file is checked as t234");
        fuse_problems_free(&probs);
        fuse_plan_free(p);
        keyset_free(ks194);
        keyset_free(ks);
}
END_TEST

START_TEST(t_problem_cap)
{
        struct fuse_problems probs = { 0 };

        for (int i = 0; i < FUSE_PROBLEMS_MAX + 5; i++)
                ck_assert_int_eq(fuse_problem_add(&probs, "F\n\x01", "r", 1, "m%d\nx", i), 0);
        ck_assert_uint_eq(probs.n, FUSE_PROBLEMS_MAX);
        ck_assert_uint_eq(probs.dropped, 5);
        ck_assert_str_eq(probs.v[0].fuse, "F??");
        ck_assert_str_eq(probs.v[0].msg, "m0?x");
        fuse_problems_free(&probs);
        ck_assert_uint_eq(probs.n, 0);
}
END_TEST

/* ---- read-back and diff ------------------------------------------------- */

static struct fuse_readback *rb_parse(enum fl_chip chip, const char *text, int want_r, const char *want_msg)
{
        struct fuse_readback *rb = NULL;
        int r;

        fl_err_clear(ctx);
        r = fuse_readback_parse(ctx, "fuse_info.txt", text, strlen(text), chip, &rb);
        ck_assert_msg(r == want_r, "'%s': %d %s", text, r, fl_ctx_last_error(ctx));
        if (want_msg)
                ck_assert_str_eq(fl_ctx_last_error(ctx), want_msg);
        return rb;
}

#define HASH64_11 "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
#define HASH64_00 "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
#define KEY32_22 "2222222222222222222222222222222222222222222222222222222222222222"
#define KEY32_00 "0000000000000000000000000000000000000000000000000000000000000000"
#define KEY31_00 "00000000000000000000000000000000000000000000000000000000000000"

START_TEST(t_readback_parse)
{
        struct fuse_readback *rb;

        rb = rb_parse(FL_CHIP_T234,
                      "BootSecurityInfo: 000001e0\r\nSecurityMode: 00000000\n\nPublicKeyHash: " HASH64_00
                      "\nOdmId: 0000000000000000\nSku: 000000d3\nUid: 0x0123456789abcdef0123456789abcdef  \n",
                      0, NULL);
        ck_assert_uint_eq(rb->n, 6);
        ck_assert_uint_eq(fuse_readback_find(rb, "BootSecurityInfo")->value[2], 0x01);
        ck_assert_uint_eq(fuse_readback_find(rb, "BootSecurityInfo")->value[3], 0xe0);
        ck_assert_uint_eq(fuse_readback_find(rb, "BootSecurityInfo")->line, 1);
        ck_assert_ptr_null(fuse_readback_find(rb, "Sku")->def);
        ck_assert_uint_eq(fuse_readback_find(rb, "Uid")->len, 16);
        ck_assert_uint_eq(fuse_readback_find(rb, "Uid")->line, 7); /* after a blank line */
        ck_assert_ptr_null(fuse_readback_find(rb, "Nope"));
        fuse_readback_free(rb);
        /* A short word is right-aligned. */
        rb = rb_parse(FL_CHIP_T234, "BootSecurityInfo: 1e0\n", 0, NULL);
        ck_assert_uint_eq(fuse_readback_find(rb, "BootSecurityInfo")->value[2], 0x01);
        fuse_readback_free(rb);

        rb_parse(FL_CHIP_T234, "", -EINVAL, "fuse_info.txt: no 'Name: hex' lines (not a readfuses output)");
        rb_parse(FL_CHIP_T234, "\n\n", -EINVAL, "fuse_info.txt: no 'Name: hex' lines (not a readfuses output)");
        rb_parse(FL_CHIP_T234, "BootSecurityInfo 000001e0\n", -EINVAL,
                 "fuse_info.txt:1: not a 'Name: hex' read-back line");
        rb_parse(FL_CHIP_T234, "SecurityMode: 0\n: 00\n", -EINVAL, "fuse_info.txt:2: not a 'Name: hex' read-back line");
        rb_parse(FL_CHIP_T234, "9Lives: 00\n", -EINVAL, "fuse_info.txt:1: not a 'Name: hex' read-back line");
        rb_parse(FL_CHIP_T234, "SecurityMode: zz\n", -EINVAL, "fuse_info.txt:1: fuse SecurityMode: value is not hex");
        rb_parse(FL_CHIP_T234, "SecurityMode:\n", -EINVAL, "fuse_info.txt:1: fuse SecurityMode: value is not hex");
        rb_parse(FL_CHIP_T234, "SecurityMode: -1\n", -EINVAL, "fuse_info.txt:1: fuse SecurityMode: value is not hex");
        rb_parse(FL_CHIP_T234, "SecurityMode: 00 00\n", -EINVAL, "fuse_info.txt:1: fuse SecurityMode: value is not hex");
        rb_parse(FL_CHIP_T234, "SecurityMode: 000000001\n", -EINVAL,
                 "fuse_info.txt:1: fuse SecurityMode: 9 hex digits, a 4-byte fuse has at most 8");
        rb_parse(FL_CHIP_T234, "PublicKeyHash: 1111\n", -EINVAL,
                 "fuse_info.txt:1: fuse PublicKeyHash: 4 hex digits, a 64-byte fuse has 128");
        rb_parse(FL_CHIP_T234, "SecureBootKey: 22" KEY32_22 "\n", -EINVAL,
                 "fuse_info.txt:1: fuse SecureBootKey: 66 hex digits, a 32-byte fuse has 64");
        rb_parse(FL_CHIP_T234, "SecurityMode: 0\nSecurityMode: 1\n", -EINVAL,
                 "fuse_info.txt:2: fuse SecurityMode appears twice");
        rb_parse(FL_CHIP_T234, "Odd: " HASH64_11 "00\n", -EINVAL,
                 "fuse_info.txt:1: fuse Odd: value longer than 64 bytes");
        rb_parse(FL_CHIP_T234, "AVeryLongFuseNameThatGoesOnAndOnAndOnForeverAndEver: 00\n", -EINVAL,
                 "fuse_info.txt:1: not a 'Name: hex' read-back line");
        {
                const char bin[] = "SecurityMode: 0\0\n";
                struct fuse_readback *x = NULL;
                ck_assert_int_eq(fuse_readback_parse(ctx, "b.txt", bin, sizeof(bin) - 1, FL_CHIP_T234, &x), -EINVAL);
                ck_assert_str_eq(fl_ctx_last_error(ctx), "b.txt: binary data in a read-back file");
        }
}
END_TEST

static struct fuse_diff *diff(const char *plan_spec, const char *readback, int want_r)
{
        struct fuse_plan *p = mkplan(FL_CHIP_T234, plan_spec);
        struct fuse_readback *rb = rb_parse(FL_CHIP_T234, readback, 0, NULL);
        struct fuse_diff *d = NULL;

        ck_assert_int_eq(fuse_plan_diff(ctx, p, rb, &d), want_r);
        fuse_readback_free(rb);
        fuse_plan_free(p);
        return d;
}

static const struct fuse_diff_item *item(const struct fuse_diff *d, const char *name)
{
        for (size_t i = 0; i < d->n; i++)
                if (!strcmp(d->v[i].def->name, name))
                        return &d->v[i];
        ck_abort_msg("%s not in diff", name);
        return NULL;
}

#define PLAN_FULL "SecureBootKey=K OemK1=K PublicKeyHash=H BootSecurityInfo=20b SecurityMode=1"

START_TEST(t_diff_blank)
{
        struct fuse_diff *d = diff(PLAN_FULL, "SecureBootKey: " KEY32_00 "\nOemK1: " KEY32_00 "\nPublicKeyHash: " HASH64_00
                                              "\nBootSecurityInfo: 00000000\nSecurityMode: 00000000\n", 0);

        ck_assert_uint_eq(d->n, 5);
        ck_assert_uint_eq(d->n_burn, 5);
        ck_assert_uint_eq(d->n_conflict, 0);
        ck_assert_uint_eq(item(d, "PublicKeyHash")->bits_to_set, 128); /* 64 × popcount(0x11) */
        ck_assert_uint_eq(item(d, "SecureBootKey")->bits_to_set, 64); /* 32 × popcount(0x22) */
        ck_assert_uint_eq(item(d, "BootSecurityInfo")->bits_to_set, 4); /* 0x20b */
        ck_assert_uint_eq(item(d, "BootSecurityInfo")->reserved_kept, 0);
        ck_assert_str_eq(item(d, "BootSecurityInfo")->note, "");
        fuse_diff_free(d);
}
END_TEST

START_TEST(t_diff_provisioned)
{
        struct fuse_diff *d = diff(PLAN_FULL, "SecureBootKey: " KEY32_22 "\nOemK1: " KEY32_22 "\nPublicKeyHash: " HASH64_11
                                              "\nBootSecurityInfo: 0000020b\nSecurityMode: 00000001\n", 0);

        ck_assert_uint_eq(d->n_equal, 5);
        ck_assert_uint_eq(d->n_burn, 0);
        ck_assert_uint_eq(d->n_conflict, 0);
        ck_assert(d->production_locked);
        fuse_diff_free(d);
        /* Fully provisioned with the factory's 0x1e0 as well. */
        d = diff(PLAN_FULL, "SecureBootKey: " KEY32_22 "\nOemK1: " KEY32_22 "\nPublicKeyHash: " HASH64_11
                            "\nBootSecurityInfo: 000003eb\nSecurityMode: 00000001\n", 0);
        ck_assert_uint_eq(d->n_equal, 5);
        fuse_diff_free(d);
}
END_TEST

START_TEST(t_diff_partial)
{
        struct fuse_diff *d = diff(PLAN_FULL, "SecureBootKey: " KEY32_22 "\nOemK1: " KEY32_00 "\nPublicKeyHash: " HASH64_11
                                              "\nBootSecurityInfo: 00000000\nSecurityMode: 00000000\n", 0);

        ck_assert_uint_eq(d->n_equal, 2);
        ck_assert_uint_eq(d->n_burn, 3);
        ck_assert_int_eq(item(d, "SecureBootKey")->state, FD_EQUAL);
        ck_assert_int_eq(item(d, "OemK1")->state, FD_BURN);
        ck_assert_int_eq(item(d, "SecurityMode")->state, FD_BURN);
        fuse_diff_free(d);
}
END_TEST

/* The case that cost people silent failed burns: 0x209 planned, 0x1e0 set
 * at the factory → burn 0x3e9. */
START_TEST(t_diff_reserved_1e0)
{
        struct fuse_diff *d = diff("SecureBootKey=K OemK1=K PublicKeyHash=H BootSecurityInfo=209",
                                   "SecureBootKey: " KEY32_00 "\nOemK1: " KEY32_00 "\nPublicKeyHash: " HASH64_00
                                   "\nBootSecurityInfo: 000001e0\n", 0);
        const struct fuse_diff_item *b = item(d, "BootSecurityInfo");

        ck_assert_int_eq(b->state, FD_BURN);
        ck_assert_uint_eq(b->reserved_kept, 0x1e0);
        ck_assert_uint_eq(b->burn[2], 0x03);
        ck_assert_uint_eq(b->burn[3], 0xe9);
        ck_assert_uint_eq(b->planned[2], 0x02);
        ck_assert_uint_eq(b->planned[3], 0x09);
        ck_assert_uint_eq(b->bits_to_set, 3);
        ck_assert_uint_eq(b->bits_to_clear, 0);
        ck_assert_str_eq(b->note, "factory reserved bits 0x1e0 already set: burn 0x209 | 0x1e0 = 0x3e9");
        ck_assert_uint_eq(d->n_conflict, 0);
        fuse_diff_free(d);
}
END_TEST

START_TEST(t_diff_conflicts2)
{
        struct fuse_diff *d = diff("SecureBootKey=K PublicKeyHash=H BootSecurityInfo=9",
                                   "SecureBootKey: 11" KEY31_00 "\nPublicKeyHash: " HASH64_11 "\nBootSecurityInfo: 00000002\n",
                                   0);
        const struct fuse_diff_item *b = item(d, "BootSecurityInfo"), *k = item(d, "SecureBootKey");

        ck_assert_uint_eq(d->n_conflict, 2);
        ck_assert_int_eq(b->state, FD_CONFLICT);
        ck_assert_uint_eq(b->bits_to_clear, 1);
        ck_assert_str_eq(b->note, "1 bit is already set that the plan does not have: fuse bits cannot go 1 to 0");
        ck_assert_int_eq(k->state, FD_CONFLICT);
        /* No bit count for a key: it would tell something about its value. */
        ck_assert_str_eq(k->note, "bits are already set that the plan does not have: fuse bits cannot go 1 to 0 "
                                  "(a different key is burned)");
        ck_assert_int_eq(item(d, "PublicKeyHash")->state, FD_EQUAL);
        fuse_diff_free(d);
        /* Reserved bits outside [8:4] are not forgiven. */
        d = diff("PublicKeyHash=H BootSecurityInfo=1", "PublicKeyHash: " HASH64_11 "\nBootSecurityInfo: 00000801\n", 0);
        ck_assert_int_eq(item(d, "BootSecurityInfo")->state, FD_CONFLICT);
        ck_assert_uint_eq(item(d, "BootSecurityInfo")->reserved_kept, 0);
        fuse_diff_free(d);
}
END_TEST

START_TEST(t_diff_production_locked)
{
        struct fuse_diff *d = diff("ReservedOdm0=5 PublicKeyHash=H BootSecurityInfo=1 SecurityMode=1",
                                   "ReservedOdm0: 00000000\nPublicKeyHash: " HASH64_11
                                   "\nBootSecurityInfo: 00000001\nSecurityMode: 00000001\n",
                                   0);

        ck_assert(d->production_locked);
        ck_assert_uint_eq(d->n_conflict, 1);
        ck_assert_str_eq(item(d, "ReservedOdm0")->note, "SecurityMode is burned: the device refuses further fuse burns");
        fuse_diff_free(d);
}
END_TEST

/* A ReservedOdm word whose OdmLock bit is burned cannot be written: the
 * burn would stop part-way, so the diff calls it a conflict. */
START_TEST(t_diff_odm_locked)
{
        struct fuse_plan *p = mkplan(FL_CHIP_T194, "ReservedOdm0=5 ReservedOdm1=5 PublicKeyHash=H BootSecurityInfo=1");
        struct fuse_readback *rb = rb_parse(FL_CHIP_T194,
                                            "ReservedOdm0: 00000000\nReservedOdm1: 00000000\nOdmLock: 00000002\n"
                                            "PublicKeyHash: 1111111111111111111111111111111111111111111111111111111111111111\n"
                                            "BootSecurityInfo: 00000000\n",
                                            0, NULL);
        struct fuse_diff *d = NULL;

        ck_assert_int_eq(fuse_plan_diff(ctx, p, rb, &d), 0);
        ck_assert_uint_eq(d->n_conflict, 1);
        ck_assert_int_eq(item(d, "ReservedOdm0")->state, FD_BURN); /* its lock bit (0) is clear */
        ck_assert_int_eq(item(d, "ReservedOdm1")->state, FD_CONFLICT);
        ck_assert_str_eq(item(d, "ReservedOdm1")->note, "OdmLock bit 1 is burned: ReservedOdm1 can no longer be written");
        fuse_diff_free(d);
        fuse_readback_free(rb);
        /* A locked word that already holds the planned value is just equal. */
        rb = rb_parse(FL_CHIP_T194,
                      "ReservedOdm0: 00000005\nReservedOdm1: 00000005\nOdmLock: 00000003\n"
                      "PublicKeyHash: 1111111111111111111111111111111111111111111111111111111111111111\n"
                      "BootSecurityInfo: 00000001\n",
                      0, NULL);
        ck_assert_int_eq(fuse_plan_diff(ctx, p, rb, &d), 0);
        ck_assert_uint_eq(d->n_conflict, 0);
        ck_assert_uint_eq(d->n_equal, 4);
        fuse_diff_free(d);
        fuse_readback_free(rb);
        fuse_plan_free(p);
        /* t234 read-backs may list OdmLock too: the same rule. */
        d = diff("ReservedOdm2=1 PublicKeyHash=H BootSecurityInfo=1",
                 "ReservedOdm2: 00000000\nOdmLock: 00000004\nPublicKeyHash: " HASH64_11 "\nBootSecurityInfo: 00000001\n", 0);
        ck_assert_int_eq(item(d, "ReservedOdm2")->state, FD_CONFLICT);
        fuse_diff_free(d);
}
END_TEST

START_TEST(t_diff_missing)
{
        struct fuse_diff *d = diff("SecureBootKey=K PublicKeyHash=H BootSecurityInfo=9",
                                   "BootSecurityInfo: 00000000\n", -EBADMSG);

        ck_assert_ptr_null(d);
        ck_assert_str_eq(fl_ctx_last_error(ctx), "the read-back has no line for planned fuses SecureBootKey, "
                                                 "PublicKeyHash: cannot prove the burn is safe");
}
END_TEST

/* BootSecurityInfo bits 11|13 with the acknowledgement: accepted only on
 * T234, both bits, with a PKC scheme and bit 9 (the [U] fTPM bits). */
START_TEST(t_bsi_dice_ack)
{
        static const struct {
                enum fl_chip chip;
                const char *spec;
                const char *want; /* NULL: no problem */
        } v[] = {
                { FL_CHIP_T234, "PublicKeyHash=H OemK1=K BootSecurityInfo=2a01", NULL },
                { FL_CHIP_T234, "PublicKeyHash=H OemK1=K BootSecurityInfo=2a09", "SBK enable" }, /* no SBK fuse */
                { FL_CHIP_T234, "PublicKeyHash=H OemK1=K BootSecurityInfo=a01", "bit 11 is set without bit 13" },
                { FL_CHIP_T234, "PublicKeyHash=H OemK1=K BootSecurityInfo=2201", "bit 13 is set without bit 11" },
                { FL_CHIP_T234, "PublicKeyHash=H BootSecurityInfo=2801", "need a PKC auth scheme and ODM key valid" },
                { FL_CHIP_T234, "OemK1=K BootSecurityInfo=2a00", "need a PKC auth scheme and ODM key valid" },
                { FL_CHIP_T194, "PublicKeyHash=H BootSecurityInfo=2801", "sets bits outside the fuse's field (mask 0xff)" },
        };

        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                struct fuse_plan *p = mkplan(v[i].chip, v[i].spec);
                struct fuse_problems probs = { 0 };

                p->accept_unverified = FUSE_ACCEPT_T234_BSI_11_13;
                ck_assert_int_eq(fuse_plan_check(ctx, p, NULL, &probs), 0);
                if (!v[i].want)
                        ck_assert_msg(probs.n == 0, "%s: %s", v[i].spec, probs.n ? probs.v[0].msg : "");
                else
                        ck_assert_msg(probs.n >= 1 && strstr(probs.v[0].msg, v[i].want), "%s: want '%s', got '%s'",
                                      v[i].spec, v[i].want, probs.n ? probs.v[0].msg : "(none)");
                fuse_problems_free(&probs);
                fuse_plan_free(p);
        }
        {
                uint32_t f = 0;
                ck_assert_int_eq(fuse_accept_parse(ctx, "t234-bsi-11-13", &f), 0);
                ck_assert_uint_eq(f, FUSE_ACCEPT_T234_BSI_11_13);
                ck_assert_int_eq(fuse_accept_parse(ctx, "t234-bsi-11", &f), -EINVAL);
                ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'t234-bsi-11'"));
        }
}
END_TEST

/* ---- templates ------------------------------------------------------------ */

START_TEST(t_templates_shipped)
{
        static const struct {
                const char *file;
                enum fl_chip chip;
                uint16_t pid;
        } v[] = {
                { "orin-nano-8gb", FL_CHIP_T234, 0x7523 },
                { "orin-nx-16gb", FL_CHIP_T234, 0x7323 },
                { "agx-orin-64gb", FL_CHIP_T234, 0x7023 },
                { "agx-xavier", FL_CHIP_T194, 0x7019 },
        };
        const char *src = getenv("SRCDIR");

        ck_assert_ptr_nonnull(src);
        for (size_t i = 0; i < FL_ARRAY_SIZE(v); i++) {
                struct fuse_template t;
                char path[4096];

                snprintf(path, sizeof(path), "%s/templates/%s.conf", src, v[i].file);
                ck_assert_msg(fuse_template_load(ctx, path, &t) == 0, "%s: %s", path, fl_ctx_last_error(ctx));
                ck_assert_str_eq(t.name, v[i].file);
                ck_assert_int_eq(t.chip, v[i].chip);
                ck_assert_uint_eq(t.recovery_pid, v[i].pid);
                ck_assert_int_eq(t.opts.sbk, SBK_YES);
                ck_assert(t.opts.production_mode);
                ck_assert(!t.opts.oem_keys);
                ck_assert_ptr_nonnull(strstr(t.module, chip_module_by_pid(v[i].pid)->name));
        }
}
END_TEST

static int template_text(const char *text, struct fuse_template *t)
{
        char path[] = "/tmp/fl-template-XXXXXX";
        int fd = mkstemp(path), r;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        fl_err_clear(ctx);
        r = fuse_template_load(ctx, path, t);
        unlink(path);
        return r;
}

START_TEST(t_templates_bad)
{
        struct fuse_template t;

        ck_assert_int_eq(template_text("chip = t234\nrecovery_pid = 0x7323\nrevocation = yes\nsbk = auto\n", &t), 0);
        ck_assert(t.opts.revocation);
        ck_assert_int_eq(t.opts.sbk, SBK_AUTO);
        ck_assert_int_eq(template_text("name = x\n", &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "template names no chip (chip = t194|t234)"));
        ck_assert_int_eq(template_text("chip = t210\n", &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "chip: invalid value 't210'"));
        ck_assert_int_eq(template_text("chip = t234\nfrobnicate = 1\n", &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "unknown key 'frobnicate'"));
        ck_assert_int_eq(template_text("chip = t234\noem_keys = maybe\n", &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "oem_keys: invalid value 'maybe'"));
        ck_assert_int_eq(template_text("chip = t194\nrecovery_pid = 0x7523\n", &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "recovery_pid 0x7523 is not a known t194 module"));
        ck_assert_int_eq(template_text("chip = t234\nno equals sign\n", &t), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'no equals sign' is not 'key = value'"));
}
END_TEST

/* Template lookup: a path as given; a name in the caller's directory
 * first; an unknown name is -ENOENT naming where it looked. */
START_TEST(t_template_find)
{
        const char *src = getenv("SRCDIR");
        char dir[4096], *p = NULL;
        const char *none[] = { NULL, "" };
        const char *two[] = { "/nonexistent-dir", NULL, dir };

        ck_assert_ptr_nonnull(src);
        snprintf(dir, sizeof(dir), "%s/templates", src);
        ck_assert_int_eq(fuse_template_find(ctx, "x/y.conf", none, 2, &p), 0);
        ck_assert_str_eq(p, "x/y.conf");
        free(p);
        ck_assert_int_eq(fuse_template_find(ctx, "orin-nano-8gb", two, 3, &p), 0);
        ck_assert_int_eq(strncmp(p, dir, strlen(dir)), 0);
        ck_assert_ptr_nonnull(strstr(p, "/templates/orin-nano-8gb.conf"));
        free(p);
        p = NULL;
        ck_assert_int_eq(fuse_template_find(ctx, "no-such-module", two, 3, &p), -ENOENT);
        ck_assert_ptr_null(p);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "template 'no-such-module' not found (looked in "
                                                             "/nonexistent-dir, "));
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), dir));
        ck_assert_int_eq(fuse_template_find(ctx, "x", none, 2, &p), -ENOENT);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "(looked in no directory)"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("fuse_plan");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_sample_rsa3k);
        tcase_add_test(tc, t_sample_p256);
        tcase_add_test(tc, t_sample_p521_sbk_oemk1);
        tcase_add_test(tc, t_oem_both);
        tcase_add_test(tc, t_sample_revocation);
        tcase_add_test(tc, t_sample_t194);
        tcase_add_test(tc, t_t194_rsa2k);
        tcase_add_test(tc, t_odm_words);
        tcase_add_test(tc, t_odm_lock_t194);
        tcase_add_test(tc, t_build_refusals);
        tcase_add_test(tc, t_build_kcv_mismatch);
        tcase_add_test(tc, t_rules_clean);
        tcase_add_test(tc, t_rules_order);
        tcase_add_test(tc, t_rules_bsi);
        tcase_add_test(tc, t_bsi_dice_ack);
        tcase_add_test(tc, t_rules_dependencies_values);
        tcase_add_test(tc, t_rules_kek256);
        tcase_add_test(tc, t_rules_keyset);
        tcase_add_test(tc, t_problem_cap);
        tcase_add_test(tc, t_readback_parse);
        tcase_add_test(tc, t_diff_blank);
        tcase_add_test(tc, t_diff_provisioned);
        tcase_add_test(tc, t_diff_partial);
        tcase_add_test(tc, t_diff_reserved_1e0);
        tcase_add_test(tc, t_diff_conflicts2);
        tcase_add_test(tc, t_diff_production_locked);
        tcase_add_test(tc, t_diff_odm_locked);
        tcase_add_test(tc, t_diff_missing);
        tcase_add_test(tc, t_templates_shipped);
        tcase_add_test(tc, t_templates_bad);
        tcase_add_test(tc, t_template_find);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
