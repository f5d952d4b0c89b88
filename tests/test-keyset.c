/* test-keyset.c — the keyset manifest: round trips (save, load, save again
 * gives the same bytes; unknown members survive), every malformed input
 * rejected with a message naming the field, role/type rules per chip, and
 * the fuse-key file parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/file.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "keygen.h"
#include "keyset.h"

static fl_ctx *ctx;
static char dir[] = "/tmp/fl-keyset-XXXXXX";

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

#define H128 "0x" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define S256 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static const char good[] =
        "{\"format\":\"fuseline-keyset/1\",\"chip\":\"t234\",\"profile\":\"lab\",\"name\":\"p\","
        "\"created\":\"2026-01-01T00:00:00Z\","
        "\"token\":{\"uri\":\"pkcs11:token=lab\",\"label\":\"lab\",\"serial\":\"1\",\"model\":\"m\",\"manufacturer\":\"x\"},"
        "\"keys\":[{\"role\":\"pkc0\",\"type\":\"rsa3k\",\"label\":\"p-pkc0\",\"uri\":\"pkcs11:object=p-pkc0\","
        "\"public_key_sha256\":\"" S256 "\",\"tegra_pkc_hash\":\"" H128 "\"},"
        "{\"role\":\"sbk\",\"type\":\"aes256\",\"label\":\"p-sbk\",\"uri\":\"pkcs11:object=p-sbk\",\"kcv\":\"a1b2c3\","
        "\"hmac_uri\":\"pkcs11:object=p-sbk-hmac\"},"
        "{\"role\":\"uefi-pk\",\"type\":\"rsa2k\",\"uri\":\"pkcs11:object=p-uefi-pk\",\"certificate\":\"PK.crt\","
        "\"certificate_sha256\":\"" S256 "\"}]}";

START_TEST(t_roundtrip)
{
        struct keyset *ks = NULL, *ks2 = NULL;
        char path[128], path2[128];
        unsigned char *a = NULL, *b = NULL;
        size_t al, bl;
        struct ks_key *k;

        ck_assert_int_eq(keyset_parse(ctx, "good", good, strlen(good), &ks), 0);
        ck_assert_int_eq(ks->chip, FL_CHIP_T234);
        ck_assert_uint_eq(ks->n_keys, 3);
        k = keyset_find(ks, "sbk");
        ck_assert_ptr_nonnull(k);
        ck_assert_int_eq(k->type, KT_AES256);
        ck_assert_str_eq(k->kcv, "a1b2c3");
        k = keyset_find(ks, "uefi-pk");
        ck_assert_ptr_nonnull(k->extra);
        snprintf(path, sizeof(path), "%s/a.json", dir);
        snprintf(path2, sizeof(path2), "%s/b.json", dir);
        ck_assert_int_eq(keyset_save(ctx, ks, path), 0);
        ck_assert_int_eq(keyset_load(ctx, path, &ks2), 0);
        ck_assert_int_eq(keyset_save(ctx, ks2, path2), 0);
        ck_assert_int_eq(file_read(ctx, path, 1 << 20, &a, &al), 0);
        ck_assert_int_eq(file_read(ctx, path2, 1 << 20, &b, &bl), 0);
        ck_assert_uint_eq(al, bl);
        ck_assert_mem_eq(a, b, al);
        /* The unknown member is still there after two saves. */
        ck_assert_ptr_nonnull(strstr((char *)b, "\"certificate\": \"PK.crt\""));
        /* keyset_save_new refuses an existing file. */
        ck_assert_int_eq(keyset_save_new(ctx, ks, path), -EEXIST);
        free(a);
        free(b);
        keyset_free(ks);
        keyset_free(ks2);
}
END_TEST

static void add_role(struct keyset *ks, const char *role)
{
        char uri[64];
        struct ks_key k = { .role = (char *)role, .type = KT_RSA2K, .uri = uri };

        snprintf(uri, sizeof(uri), "pkcs11:object=%s", role);
        ck_assert_int_eq(keyset_add(ks, &k), 0);
}

/* Two writers that loaded the same manifest both keep their update: each
 * child process loads, waits until all have loaded, adds its own role and
 * saves; the manifest ends with every role. Without the lock and merge in
 * keyset_save, the last writer's file would hold only its own. */
START_TEST(t_concurrent_save)
{
        enum { N = 6 };
        char path[128], role[32];
        struct keyset *ks = NULL;
        int go[2];
        pid_t pid[N];

        snprintf(path, sizeof(path), "%s/c.json", dir);
        ck_assert_int_eq(keyset_parse(ctx, "good", good, strlen(good), &ks), 0);
        ck_assert_int_eq(keyset_save(ctx, ks, path), 0);
        keyset_free(ks);
        ck_assert_int_eq(pipe(go), 0);
        for (int i = 0; i < N; i++) {
                pid[i] = fork();
                ck_assert_int_ge(pid[i], 0);
                if (pid[i] == 0) {
                        struct keyset *mine = NULL;
                        char c;
                        close(go[1]);
                        if (keyset_load(ctx, path, &mine) < 0)
                                _exit(10);
                        if (read(go[0], &c, 1) != 0) /* EOF: everyone has loaded */
                                _exit(11);
                        snprintf(role, sizeof(role), "writer-%d", i);
                        add_role(mine, role);
                        _exit(keyset_save(ctx, mine, path) == 0 ? 0 : 12);
                }
        }
        close(go[0]);
        usleep(200000); /* let every child reach its load */
        close(go[1]);
        for (int i = 0; i < N; i++) {
                int st;
                ck_assert_int_eq(waitpid(pid[i], &st, 0), pid[i]);
                ck_assert(WIFEXITED(st));
                ck_assert_int_eq(WEXITSTATUS(st), 0);
        }
        ck_assert_int_eq(keyset_load(ctx, path, &ks), 0);
        ck_assert_uint_eq(ks->n_keys, 3 + N);
        for (int i = 0; i < N; i++) {
                snprintf(role, sizeof(role), "writer-%d", i);
                ck_assert_msg(keyset_find(ks, role), "%s was lost", role);
        }
        ck_assert_ptr_nonnull(keyset_find(ks, "pkc0"));
        keyset_free(ks);
        unlink(path);
}
END_TEST

/* Sequential writers from stale copies: an add, a change and a removal all
 * survive; the same key changed differently by both is refused (-EEXIST,
 * naming it) and the file keeps the first writer's version. */
START_TEST(t_save_merge)
{
        char path[128];
        struct keyset *a = NULL, *b = NULL, *c = NULL, *now = NULL;
        struct ks_key *k;

        snprintf(path, sizeof(path), "%s/m.json", dir);
        ck_assert_int_eq(keyset_parse(ctx, "good", good, strlen(good), &a), 0);
        ck_assert_int_eq(keyset_save(ctx, a, path), 0);
        keyset_free(a);
        ck_assert_int_eq(keyset_load(ctx, path, &a), 0);
        ck_assert_int_eq(keyset_load(ctx, path, &b), 0);
        ck_assert_int_eq(keyset_load(ctx, path, &c), 0);
        /* a: adds a role and changes sbk's kcv */
        add_role(a, "writer-a");
        k = keyset_find(a, "sbk");
        free(k->kcv);
        k->kcv = strdup("000000");
        ck_assert_int_eq(keyset_save(ctx, a, path), 0);
        /* b (stale): removes uefi-pk, changes the profile */
        k = keyset_find(b, "uefi-pk");
        ks_key_clear(k);
        *k = b->keys[--b->n_keys];
        free(b->profile);
        b->profile = strdup("production");
        ck_assert_int_eq(keyset_save(ctx, b, path), 0);
        ck_assert_int_eq(keyset_load(ctx, path, &now), 0);
        ck_assert_ptr_nonnull(keyset_find(now, "writer-a"));
        ck_assert_str_eq(keyset_find(now, "sbk")->kcv, "000000");
        ck_assert_ptr_null(keyset_find(now, "uefi-pk"));
        ck_assert_str_eq(now->profile, "production");
        ck_assert_ptr_nonnull(keyset_find(now, "pkc0"));
        keyset_free(now);
        /* c (stale): changes sbk's kcv differently from a: refused */
        k = keyset_find(c, "sbk");
        free(k->kcv);
        k->kcv = strdup("ffffff");
        ck_assert_int_eq(keyset_save(ctx, c, path), -EEXIST);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "'sbk'"));
        ck_assert_int_eq(keyset_load(ctx, path, &now), 0);
        ck_assert_str_eq(keyset_find(now, "sbk")->kcv, "000000");
        keyset_free(now);
        keyset_free(a);
        keyset_free(b);
        keyset_free(c);
        unlink(path);
}
END_TEST

/* A writer waiting for the lock notices an interrupt: -ECANCELED, the
 * manifest untouched. */
START_TEST(t_save_lock_interrupt)
{
        static volatile sig_atomic_t flag;
        char path[128];
        struct keyset *ks = NULL, *now = NULL;
        int dfd;

        snprintf(path, sizeof(path), "%s/i.json", dir);
        ck_assert_int_eq(keyset_parse(ctx, "good", good, strlen(good), &ks), 0);
        ck_assert_int_eq(keyset_save(ctx, ks, path), 0);
        keyset_free(ks);
        ck_assert_int_eq(keyset_load(ctx, path, &ks), 0);
        add_role(ks, "waiting");
        dfd = open(dir, O_RDONLY | O_DIRECTORY);
        ck_assert_int_ge(dfd, 0);
        ck_assert_int_eq(flock(dfd, LOCK_EX), 0); /* another writer holds it */
        flag = SIGINT;
        fl_ctx_set_interrupt(ctx, &flag);
        ck_assert_int_eq(keyset_save(ctx, ks, path), -ECANCELED);
        fl_ctx_set_interrupt(ctx, NULL);
        close(dfd);
        ck_assert_int_eq(keyset_load(ctx, path, &now), 0);
        ck_assert_ptr_null(keyset_find(now, "waiting"));
        keyset_free(now);
        /* the lock released, the same save goes through */
        ck_assert_int_eq(keyset_save(ctx, ks, path), 0);
        ck_assert_int_eq(keyset_load(ctx, path, &now), 0);
        ck_assert_ptr_nonnull(keyset_find(now, "waiting"));
        keyset_free(now);
        keyset_free(ks);
        unlink(path);
}
END_TEST

/* Each mutation of the good manifest must fail with -EINVAL and a message
 * naming the field. */
static const struct {
        const char *from, *to, *msg;
} bad[] = {
        { "fuseline-keyset/1", "fuseline-keyset/2", "format" },
        { "\"chip\":\"t234\"", "\"chip\":\"t186\"", "chip" },
        { "\"chip\":\"t234\"", "\"chip\":\"T234\"", "chip" },
        { "\"profile\":\"lab\"", "\"profile\":\"dev\"", "profile" },
        { "\"type\":\"rsa3k\"", "\"type\":\"rsa2k\"", "rsa2k" },
        { "\"type\":\"rsa3k\"", "\"type\":\"rsa9k\"", "rsa9k" },
        { "\"role\":\"sbk\",\"type\":\"aes256\"", "\"role\":\"sbk\",\"type\":\"aes128\"", "aes256" },
        { "\"role\":\"sbk\"", "\"role\":\"kek0\"", "kek0" },
        { "\"role\":\"sbk\"", "\"role\":\"pkc0\"", "rsa3k, p256 or p521" },
        { "\"role\":\"uefi-pk\",\"type\":\"rsa2k\"", "\"role\":\"sbk\",\"type\":\"aes256\",\"kcv\":\"a1b2c3\"", "twice" },
        { "\"kcv\":\"a1b2c3\"", "\"kcv\":\"A1B2C3\"", "kcv" },
        { "\"kcv\":\"a1b2c3\"", "\"kcv\":7", "kcv" },
        { "\"uri\":\"pkcs11:object=p-sbk\"", "\"uri\":\"file:///x\"", "uri" },
        { "\"uri\":\"pkcs11:token=lab\"", "\"uri\":\"x\"", "token.uri" },
        { "\"tegra_pkc_hash\":\"0x", "\"tegra_pkc_hash\":\"0y", "tegra_pkc_hash" },
        { "\"public_key_sha256\":\"0011", "\"public_key_sha256\":\"11", "public_key_sha256" },
        { "\"keys\":[", "\"keyz\":[", "keys" },
};

static char *replace(const char *s, const char *from, const char *to)
{
        const char *p = strstr(s, from);
        char *out;

        ck_assert_msg(p != NULL, "test bug: '%s' not in manifest", from);
        out = malloc(strlen(s) + strlen(to) + 1);
        memcpy(out, s, (size_t)(p - s));
        strcpy(out + (p - s), to);
        strcat(out, p + strlen(from));
        return out;
}

START_TEST(t_bad_fields)
{
        char *m = replace(good, bad[_i].from, bad[_i].to);
        struct keyset *ks = NULL;

        ck_assert_int_eq(keyset_parse(ctx, "m.json", m, strlen(m), &ks), -EINVAL);
        ck_assert_ptr_null(ks);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "m.json"));
        ck_assert_msg(strstr(fl_ctx_last_error(ctx), bad[_i].msg), "case %d: '%s' lacks '%s'", _i,
                      fl_ctx_last_error(ctx), bad[_i].msg);
        free(m);
}
END_TEST

START_TEST(t_truncated_and_junk)
{
        struct keyset *ks = NULL;

        for (size_t n = 0; n < strlen(good); n += 7) {
                ck_assert_int_eq(keyset_parse(ctx, "t", good, n, &ks), -EINVAL);
                ck_assert_ptr_null(ks);
        }
        ck_assert_int_eq(keyset_parse(ctx, "t", "[]", 2, &ks), -EINVAL);
        ck_assert_int_eq(keyset_parse(ctx, "t", "{} {}", 5, &ks), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "trailing"));
        ck_assert_int_eq(keyset_parse(ctx, "t", "{\"a\":\0}", 7, &ks), -EINVAL);
        /* Deep nesting is refused by the tokenizer's depth limit. */
        {
                char deep[200];
                memset(deep, '[', sizeof(deep));
                ck_assert_int_eq(keyset_parse(ctx, "t", deep, sizeof(deep), &ks), -EINVAL);
        }
}
END_TEST

START_TEST(t_roles)
{
        enum key_type t;

        ck_assert_int_eq(role_check(ctx, FL_CHIP_T194, "sbk", &t), 0);
        ck_assert_int_eq(t, KT_AES128);
        ck_assert_int_eq(role_check(ctx, FL_CHIP_T234, "sbk", &t), 0);
        ck_assert_int_eq(t, KT_AES256);
        ck_assert_int_eq(role_check(ctx, FL_CHIP_T194, "kek256", &t), 0);
        ck_assert_int_eq(t, KT_AES256);
        ck_assert_int_eq(role_check(ctx, FL_CHIP_T234, "kek2", NULL), -EINVAL);
        ck_assert_int_eq(role_check(ctx, FL_CHIP_T194, "oem-k1", NULL), -EINVAL);
        ck_assert_int_eq(role_check(ctx, FL_CHIP_T194, "pkc1", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "t194 takes: pkc0, sbk"));
        ck_assert_int_eq(pkc_type_check(ctx, FL_CHIP_T234, KT_RSA3K), 0);
        ck_assert_int_eq(pkc_type_check(ctx, FL_CHIP_T234, KT_P521), 0);
        ck_assert_int_eq(pkc_type_check(ctx, FL_CHIP_T234, KT_RSA2K), -EINVAL);
        ck_assert_int_eq(pkc_type_check(ctx, FL_CHIP_T234, KT_ED25519), -EINVAL);
        ck_assert_int_eq(pkc_type_check(ctx, FL_CHIP_T194, KT_RSA2K), 0);
        ck_assert_int_eq(pkc_type_check(ctx, FL_CHIP_T194, KT_P256), -EINVAL);
}
END_TEST

START_TEST(t_fusekey_parse)
{
        static const unsigned char want[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                                0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
        static const char *const ok[] = {
                "0x12345678 0x9abcdef0 0xfedcba98 0x76543210",
                "0x12345678 0x9ABCDEF0\n0xfedcba98\t0x76543210\n",
                "123456789abcdef0fedcba9876543210",
                "0x123456789abcdef0fedcba9876543210\n",
        };
        static const char *const nok[] = {
                "0x12345678 0x9abcdef0 0xfedcba98",            /* short */
                "0x12345678 0x9abcdef0 0xfedcba98 0x7654321",  /* 7-digit word */
                "0x1234 0x56789abcdef0 0xfedcba98 0x76543210", /* uneven words */
                "0x12345678 0x9abcdefg 0xfedcba98 0x76543210", /* not hex */
                "-0x123456789abcdef0fedcba9876543210",
                "0x",
                "",
        };
        struct fl_secret s = { 0 };

        for (size_t i = 0; i < FL_ARRAY_SIZE(ok); i++) {
                ck_assert_int_eq(fusekey_parse(ctx, "k", (const unsigned char *)ok[i], strlen(ok[i]), 16, &s), 0);
                ck_assert_uint_eq(s.len, 16);
                ck_assert_mem_eq(s.data, want, 16);
                secret_wipe(&s);
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(nok); i++) {
                ck_assert_msg(fusekey_parse(ctx, "k", (const unsigned char *)nok[i], strlen(nok[i]), 16, &s) == -EINVAL,
                              "accepted '%s'", nok[i]);
                /* The message never repeats the key material. */
                ck_assert_ptr_null(strstr(fl_ctx_last_error(ctx), "9abc"));
        }
        /* A 16-byte key where 32 are needed. */
        ck_assert_int_eq(fusekey_parse(ctx, "k", (const unsigned char *)ok[0], strlen(ok[0]), 32, &s), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "32 bytes"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("keyset");
        TCase *tc = tcase_create("keyset");
        SRunner *sr;
        int failed;

        if (!mkdtemp(dir))
                return 1;
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_roundtrip);
        tcase_add_test(tc, t_concurrent_save);
        tcase_add_test(tc, t_save_merge);
        tcase_add_test(tc, t_save_lock_interrupt);
        tcase_add_loop_test(tc, t_bad_fields, 0, (int)FL_ARRAY_SIZE(bad));
        tcase_add_test(tc, t_truncated_and_junk);
        tcase_add_test(tc, t_roles);
        tcase_add_test(tc, t_fusekey_parse);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        {
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                if (system(cmd) != 0)
                        return 1;
        }
        return failed ? 1 : 0;
}
