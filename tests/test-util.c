/* test-util.c — hex coding, size-limited reads, atomic and create-only
 * writes (mode, no temp files left, no partial file on failure), chip names,
 * the context's error/log plumbing, secret buffers left out of core dumps
 * (as the kernel reports it in /proc/self/smaps) without splitting the heap's
 * mappings once freed, and interruption. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static fl_ctx *ctx;
static char dir[] = "/tmp/fl-util-XXXXXX";

static void setup(void)
{
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
}

static void teardown(void)
{
        fl_ctx_free(ctx);
}

static size_t count_entries(void)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

START_TEST(t_hex)
{
        unsigned char b[4];
        char s[9];
        size_t n;

        hex_encode((const unsigned char *)"\x00\x9f\xa0\xff", 4, s);
        ck_assert_str_eq(s, "009fa0ff");
        ck_assert_int_eq(hex_decode("009FA0ff", b, sizeof(b), &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert_mem_eq(b, "\x00\x9f\xa0\xff", 4);
        ck_assert_int_eq(hex_decode("abc", b, sizeof(b), &n), -EINVAL);
        ck_assert_int_eq(hex_decode("0g", b, sizeof(b), &n), -EINVAL);
        ck_assert_int_eq(hex_decode("0011223344", b, sizeof(b), &n), -EINVAL);
        ck_assert_int_eq(hex_decode("", b, sizeof(b), &n), -EINVAL);
}
END_TEST

START_TEST(t_atomic_write)
{
        char path[128];
        unsigned char *d;
        size_t n;
        struct stat st;

        snprintf(path, sizeof(path), "%s/f", dir);
        ck_assert_int_eq(file_write_atomic(ctx, path, "one", 3, 0600), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(file_write_atomic(ctx, path, "second", 6, 0644), 0);
        ck_assert_int_eq(file_read(ctx, path, 100, &d, &n), 0);
        ck_assert_uint_eq(n, 6);
        ck_assert_str_eq((char *)d, "second");
        free(d);
        ck_assert_uint_eq(count_entries(), 1); /* no temp file left */
        /* create-only: refuses, keeps the old content */
        ck_assert_int_eq(file_write_new(ctx, path, "x", 1, 0600), -EEXIST);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), path));
        ck_assert_int_eq(file_read(ctx, path, 100, &d, &n), 0);
        ck_assert_str_eq((char *)d, "second");
        free(d);
        ck_assert_uint_eq(count_entries(), 1);
        /* a missing directory: error, nothing created */
        snprintf(path, sizeof(path), "%s/missing/f", dir);
        ck_assert_int_lt(file_write_atomic(ctx, path, "x", 1, 0600), 0);
        ck_assert_uint_eq(count_entries(), 1);
        /* a directory in the way / a path below a file: invalid argument (exit 2), never -EACCES/-EPERM,
         * which mean token and interlock errors */
        snprintf(path, sizeof(path), "%s/f/x", dir);
        ck_assert_int_eq(file_write_atomic(ctx, path, "x", 1, 0600), -EINVAL);
        snprintf(path, sizeof(path), "%s/f", dir);
        unlink(path);
}
END_TEST

/* The two halves of the one writer: nothing at path until the commit; a
 * failed commit leaves no temp file; a directory that cannot be synced is
 * an error naming the path. */
START_TEST(t_temp_commit)
{
        char path[128], bad[160], *tmp = NULL;
        unsigned char *d;
        size_t n;
        struct stat st;

        snprintf(path, sizeof(path), "%s/g", dir);
        ck_assert_int_eq(file_write_atomic(ctx, path, "old", 3, 0644), 0);
        ck_assert_int_eq(file_temp_write(ctx, path, "new!", 4, 0640, false, &tmp), 0);
        ck_assert_ptr_nonnull(tmp);
        ck_assert_int_eq(strncmp(tmp, path, strlen(path)), 0);
        ck_assert_uint_eq(count_entries(), 2);
        ck_assert_int_eq(file_read(ctx, path, 100, &d, &n), 0);
        ck_assert_str_eq((char *)d, "old"); /* not yet published */
        free(d);
        ck_assert_int_eq(file_temp_commit(ctx, tmp, path, FILE_SYNC_DATA | FILE_SYNC_DIR), 0);
        free(tmp);
        ck_assert_uint_eq(count_entries(), 1);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        ck_assert_int_eq(file_read(ctx, path, 100, &d, &n), 0);
        ck_assert_str_eq((char *)d, "new!");
        free(d);
        /* a commit that cannot rename (a directory in the way) removes its temp file */
        snprintf(bad, sizeof(bad), "%s/sub", dir);
        ck_assert_int_eq(mkdir(bad, 0700), 0);
        snprintf(bad, sizeof(bad), "%s/sub/x", dir);
        ck_assert_int_eq(mkdir(bad, 0700), 0);
        ck_assert_int_eq(file_temp_write(ctx, path, "z", 1, 0600, true, &tmp), 0);
        ck_assert_int_lt(file_temp_commit(ctx, tmp, bad, 0), 0);
        ck_assert_int_ne(access(tmp, F_OK), 0);
        free(tmp);
        rmdir(bad);
        snprintf(bad, sizeof(bad), "%s/sub", dir);
        rmdir(bad);
        ck_assert_uint_eq(count_entries(), 1);
        /* the directory sync: checked, its failure named */
        snprintf(bad, sizeof(bad), "%s/gone/f", dir);
        ck_assert_int_eq(file_sync_dir(ctx, bad), -ENOENT);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), bad));
        ck_assert_int_eq(file_sync_dir(ctx, path), 0);
        unlink(path);
}
END_TEST

START_TEST(t_buf)
{
        struct fl_buf b = { 0 };
        char *s;

        ck_assert_ptr_null(fl_buf_take_str(&b)); /* nothing added */
        ck_assert_int_eq(fl_buf_put(&b, "ab", 2), 0);
        ck_assert_int_eq(fl_buf_put(&b, "", 0), 0);
        ck_assert_uint_eq(b.len, 2);
        ck_assert_int_eq(b.p[2], 0);
        /* growth past the first allocation keeps every byte */
        for (int i = 0; i < 1000; i++)
                fl_buf_printf(&b, "%03d", i);
        ck_assert_uint_eq(b.len, 2 + 3000);
        ck_assert_int_eq(memcmp(b.p, "ab000001002", 11), 0);
        ck_assert_int_eq(memcmp(b.p + b.len - 3, "999", 3), 0);
        s = fl_buf_take_str(&b);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(strlen(s), 3002);
        ck_assert_ptr_null(b.p);
        free(s);
        /* an append that failed: the text is not handed out */
        ck_assert_int_eq(fl_buf_put(&b, "x", 1), 0);
        b.oom = true;
        ck_assert_ptr_null(fl_buf_take_str(&b));
        ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(t_dates)
{
        const char *p = "2024x", *q = "12a4";
        char out[32];
        int v = -1;

        ck_assert_int_eq(days_in_month(2024, 2), 29);
        ck_assert_int_eq(days_in_month(2023, 2), 28);
        ck_assert_int_eq(days_in_month(1900, 2), 28); /* century, not leap */
        ck_assert_int_eq(days_in_month(2000, 2), 29); /* 400-year, leap */
        ck_assert_int_eq(days_in_month(2023, 4), 30);
        ck_assert_int_eq(days_in_month(2023, 12), 31);
        ck_assert(parse_digits(&p, 4, &v));
        ck_assert_int_eq(v, 2024);
        ck_assert_str_eq(p, "x");
        ck_assert(!parse_digits(&q, 4, &v));
        ck_assert_str_eq(q, "12a4"); /* not advanced */
        ck_assert_int_eq(v, 2024);
        ck_assert(time_format_utc(0, out, sizeof(out)));
        ck_assert_str_eq(out, "1970-01-01T00:00:00Z");
        ck_assert(time_format_utc(253402300799, out, sizeof(out)));
        ck_assert_str_eq(out, "9999-12-31T23:59:59Z");
        ck_assert(time_format_utc(951782400, out, sizeof(out))); /* date -u -d 2000-02-29 +%s */
        ck_assert_str_eq(out, "2000-02-29T00:00:00Z");
}
END_TEST

START_TEST(t_read_limits)
{
        char path[128];
        unsigned char *d = NULL;
        size_t n;
        char big[10000];

        snprintf(path, sizeof(path), "%s/big", dir);
        memset(big, 'a', sizeof(big));
        ck_assert_int_eq(file_write_atomic(ctx, path, big, sizeof(big), 0600), 0);
        ck_assert_int_eq(file_read(ctx, path, sizeof(big), &d, &n), 0);
        ck_assert_uint_eq(n, sizeof(big));
        free(d);
        ck_assert_int_eq(file_read(ctx, path, sizeof(big) - 1, &d, &n), -EINVAL);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "limit"));
        ck_assert_int_eq(file_read(ctx, dir, 100, &d, &n), -EINVAL); /* a directory */
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "not a regular file"));
        snprintf(path, sizeof(path), "%s/none", dir);
        ck_assert_int_eq(file_read(ctx, path, 100, &d, &n), -ENOENT);
        snprintf(path, sizeof(path), "%s/big", dir);
        unlink(path);
}
END_TEST

static int logged;
static void cb(int level, const char *msg, void *ud)
{
        (void)msg;
        (void)ud;
        if (level == FL_LOG_WARN)
                logged++;
}

START_TEST(t_ctx)
{
        ck_assert_ptr_null(fl_ctx_last_error(ctx));
        ck_assert_int_eq(fl_err(ctx, -EPERM, "a\nb %d", 1), -EPERM);
        ck_assert_str_eq(fl_ctx_last_error(ctx), "a b 1"); /* one line, always */
        /* Wrapping the previous error in a new one (the message is an
         * argument that lives in the context itself). */
        fl_err(ctx, -ENOENT, "/x/pin: cannot open: No such file or directory");
        ck_assert_int_eq(fl_err(ctx, -EACCES, "PIN file %s: %s", "/x/pin", fl_ctx_last_error(ctx)), -EACCES);
        ck_assert_str_eq(fl_ctx_last_error(ctx), "PIN file /x/pin: /x/pin: cannot open: No such file or directory");
        fl_err_clear(ctx);
        ck_assert_ptr_null(fl_ctx_last_error(ctx));
        fl_ctx_set_log(ctx, cb, NULL);
        fl_log(ctx, FL_LOG_WARN, "w");
        fl_log(ctx, FL_LOG_DEBUG, "hidden at the default level");
        ck_assert_int_eq(logged, 1);
        ck_assert_int_eq(chip_from_name("T234"), FL_CHIP_T234);
        ck_assert_int_eq(chip_from_name("0x19"), FL_CHIP_T194);
        ck_assert_int_eq(chip_from_name("t186"), FL_CHIP_NONE);
        ck_assert_str_eq(chip_name(FL_CHIP_T194), "t194");
        fl_ctx_free(NULL); /* accepts NULL */
}
END_TEST

/* The VmFlags line of the /proc/self/smaps mapping holding addr: the
 * kernel's own account of madvise/mlock, independent of fuseline. */
static int vmflags_of(const void *addr, char *out, size_t cap)
{
        FILE *f = fopen("/proc/self/smaps", "r");
        char line[512];
        bool in = false;
        uintptr_t a = (uintptr_t)addr;

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
                        in = a >= lo && a < hi;
                        continue;
                }
                if (in && !strncmp(line, "VmFlags:", 8)) {
                        snprintf(out, cap, "%s", line + 8);
                        fclose(f);
                        return 0;
                }
        }
        fclose(f);
        return -1;
}

START_TEST(t_secret_nodump)
{
        struct fl_secret s = { 0 }, f = { 0 };
        long pg = sysconf(_SC_PAGESIZE);
        char flags[512], path[300];
        FILE *pf;

        ck_assert_int_eq(secret_alloc(&s, 48), 0);
        ck_assert_uint_eq((uintptr_t)s.data % (uintptr_t)pg, 0);
        ck_assert_int_eq(vmflags_of(s.data, flags, sizeof(flags)), 0);
        ck_assert_msg(strstr(flags, " dd"), "secret_alloc buffer would be dumped: VmFlags%s", flags);
        secret_wipe(&s);

        /* A secret read from a file (PIN files, fuse XML): same. */
        snprintf(path, sizeof(path), "%s/pin", dir);
        pf = fopen(path, "w");
        ck_assert_ptr_nonnull(pf);
        fputs("12345678\n", pf);
        fclose(pf);
        ck_assert_int_eq(file_read_secret(ctx, path, 256, &f), 0);
        ck_assert_int_eq(vmflags_of(f.data, flags, sizeof(flags)), 0);
        ck_assert_msg(strstr(flags, " dd"), "file_read_secret buffer would be dumped: VmFlags%s", flags);
        secret_wipe(&f);
        unlink(path);
}
END_TEST

/* Mappings in /proc/self/maps: the kernel's count, independent of fuseline. */
static int n_mappings(void)
{
        FILE *f = fopen("/proc/self/maps", "r");
        int n = 0, c;

        ck_assert_ptr_nonnull(f);
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        fclose(f);
        return n;
}

/* Secrets allocated and freed many times, other allocations in between (a
 * batch, a station): the mapping count stays flat. With the dont-dump mark
 * left on freed pages it grew by ~0.6 per secret, until vm.max_map_count
 * (65530) made every allocation fail; libFuzzer found it in fuzz-keyset. */
START_TEST(t_secret_vmas)
{
        enum { N = 5000 };
        void **keep = calloc(N, sizeof(*keep));
        int before, after;

        ck_assert_ptr_nonnull(keep);
        before = n_mappings();
        for (int i = 0; i < N; i++) {
                struct fl_secret s = { 0 };
                ck_assert_int_eq(secret_alloc(&s, 32), 0);
                keep[i] = malloc(100 + (size_t)(i % 5000));
                ck_assert_ptr_nonnull(keep[i]);
                secret_wipe(&s);
        }
        after = n_mappings();
        for (int i = 0; i < N; i++)
                free(keep[i]);
        free(keep);
        ck_assert_msg(after - before < 100, "%d mappings before %d secrets, %d after", before, N, after);
}
END_TEST

START_TEST(t_interrupt)
{
        volatile sig_atomic_t flag = 0;

        ck_assert_int_eq(fl_interrupted(ctx), 0);
        fl_ctx_set_interrupt(ctx, &flag);
        ck_assert_int_eq(fl_interrupted(ctx), 0);
        flag = SIGTERM;
        ck_assert_int_eq(fl_interrupted(ctx), -ECANCELED);
        ck_assert_str_eq(fl_ctx_last_error(ctx), "interrupted by SIGTERM");
        fl_ctx_set_interrupt(ctx, NULL);
        ck_assert_int_eq(fl_interrupted(ctx), 0);
}
END_TEST

START_TEST(t_secret)
{
        struct fl_secret s = { 0 };

        ck_assert_int_eq(secret_alloc(&s, 32), 0);
        memset(s.data, 0x5a, 32);
        secret_wipe(&s);
        ck_assert_ptr_null(s.data);
        ck_assert_uint_eq(s.len, 0);
        secret_wipe(&s); /* idempotent */
        secret_free_str(NULL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("util");
        TCase *tc = tcase_create("util");
        SRunner *sr;
        int failed;

        if (!mkdtemp(dir))
                return 1;
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, t_hex);
        tcase_add_test(tc, t_atomic_write);
        tcase_add_test(tc, t_temp_commit);
        tcase_add_test(tc, t_buf);
        tcase_add_test(tc, t_dates);
        tcase_add_test(tc, t_read_limits);
        tcase_add_test(tc, t_ctx);
        tcase_add_test(tc, t_secret);
        tcase_add_test(tc, t_secret_nodump);
        tcase_add_test(tc, t_secret_vmas);
        tcase_add_test(tc, t_interrupt);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        rmdir(dir);
        return failed ? 1 : 0;
}
