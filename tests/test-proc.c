/* test-proc.c — the child runner: exit status, output lines to callback and
 * log, the scrubbed environment (no PIN variable ever reaches a child), a
 * timeout that kills the whole process group (a hung grandchild included),
 * a leader that exits leaving a child behind, and a missing program. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "proc.h"

static fl_ctx *ctx;
static char dir[] = "/tmp/fl-proc-XXXXXX";
static char **env;

static void setup(void)
{
        char *const from[] = { "PATH=/usr/bin:/bin", "HOME=/root", NULL };
        ck_assert_int_eq(fl_ctx_new(&ctx), 0);
        ck_assert_int_eq(proc_env_scrub(from, NULL, NULL, &env), 0);
}

static void teardown(void)
{
        proc_env_free(env);
        fl_ctx_free(ctx);
}

/* Alive and not a zombie (an orphan killed here may wait for a reaper). */
static bool alive(int pid)
{
        char path[64], buf[256];
        FILE *f;
        char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "r");
        if (!f)
                return false;
        buf[0] = 0;
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = 0;
        fclose(f);
        p = strrchr(buf, ')');
        return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* The process whose pid a test's shell wrote to pidfile is gone (within 1 s). */
static void assert_gone(const char *pidfile, const char *what)
{
        FILE *f = fopen(pidfile, "r");
        int pid = 0;

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
        fclose(f);
        for (int i = 0; i < 50 && alive(pid); i++)
                usleep(20000);
        ck_assert_msg(!alive(pid), "%s: process %d is still running", what, pid);
        unlink(pidfile);
}

struct lines {
        char v[8][128];
        int n;
};

static void collect(const char *line, void *data)
{
        struct lines *l = data;
        if (l->n < 8)
                snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", line);
}

static int run_sh(const char *script, int timeout_ms, struct proc_result *res, struct lines *l, const char *log)
{
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        struct proc_opts o = { .argv = argv, .envp = (const char *const *)env, .timeout_ms = timeout_ms,
                               .kill_grace_ms = 300, .on_line = l ? collect : NULL, .data = l, .log_path = log };
        return proc_run(ctx, &o, res);
}

START_TEST(t_status_and_lines)
{
        struct proc_result res;
        struct lines l = { .n = 0 };
        char log[128], buf[256] = "";
        FILE *f;
        struct stat st;

        snprintf(log, sizeof(log), "%s/a.log", dir);
        ck_assert_int_eq(run_sh("echo one; echo two >&2; printf 'three'; exit 3", 0, &res, &l, log), 0);
        ck_assert(res.exited);
        ck_assert_int_eq(res.status, 3);
        ck_assert(!res.timed_out);
        ck_assert_int_eq(l.n, 3);
        ck_assert_str_eq(l.v[0], "one");
        ck_assert_str_eq(l.v[1], "two");
        ck_assert_str_eq(l.v[2], "three");
        f = fopen(log, "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fread(buf, 1, sizeof(buf) - 1, f), strlen("one\ntwo\nthree"));
        fclose(f);
        ck_assert_str_eq(buf, "one\ntwo\nthree");
        ck_assert_int_eq(stat(log, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0600);
        unlink(log);
}
END_TEST

START_TEST(t_env_scrubbed)
{
        char *const from[] = { "PATH=/usr/bin:/bin", "FUSELINE_PIN=123456", "FUSELINE_PIN_FILE=/x",
                               "SOFTHSM_PIN=1", "MY_SECRET=s", "OTHER=o", "LC_ALL=C", "VLINE=v", NULL };
        const char *pass[] = { "VLINE", "FUSELINE_PIN", "OTHER_NOT_SET", NULL };
        const char *extra[] = { "LC_ALL=C.UTF-8", NULL };
        char **e = NULL;
        size_t n = 0;
        bool path = false, vline = false, lc = false;

        ck_assert_int_eq(proc_env_scrub(from, pass, extra, &e), 0);
        for (; e[n]; n++) {
                ck_assert_msg(!strstr(e[n], "PIN") && !strstr(e[n], "SECRET") && strcmp(e[n], "OTHER=o"),
                              "leaked %s", e[n]);
                path |= !strcmp(e[n], "PATH=/usr/bin:/bin");
                vline |= !strcmp(e[n], "VLINE=v");
                ck_assert_str_ne(e[n], "LC_ALL=C");
                lc |= !strcmp(e[n], "LC_ALL=C.UTF-8");
        }
        ck_assert(path && vline && lc);
        ck_assert_uint_eq(n, 3);
        proc_env_free(e);
}
END_TEST

START_TEST(t_child_sees_only_scrubbed_env)
{
        struct proc_result res;
        struct lines l = { .n = 0 };

        setenv("FUSELINE_PIN", "424242", 1);
        ck_assert_int_eq(run_sh("env | grep -c 424242 || true", 0, &res, &l, NULL), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.v[0], "0");
}
END_TEST

START_TEST(t_timeout_kills_group)
{
        struct proc_result res;
        struct lines l = { .n = 0 };
        char pidfile[128], cmd[512];

        snprintf(pidfile, sizeof(pidfile), "%s/grandchild.pid", dir);
        /* A grandchild that ignores SIGTERM and sleeps: only SIGKILL to the
         * group ends it. */
        snprintf(cmd, sizeof(cmd),
                 "sh -c 'trap \"\" TERM; echo $$ > %s; while :; do sleep 1; done' & echo started; wait", pidfile);
        ck_assert_int_eq(run_sh(cmd, 700, &res, &l, NULL), 0);
        ck_assert(res.timed_out);
        ck_assert(!res.exited || res.status != 0);
        ck_assert_int_ge(res.elapsed_ms, 700);
        ck_assert_int_lt(res.elapsed_ms, 10000);
        ck_assert_str_eq(l.v[0], "started");
        assert_gone(pidfile, "a grandchild that ignores SIGTERM, after the timeout");
}
END_TEST

START_TEST(t_leader_exit_kills_leftovers)
{
        struct proc_result res;
        char pidfile[128], cmd[512];

        snprintf(pidfile, sizeof(pidfile), "%s/left.pid", dir);
        snprintf(cmd, sizeof(cmd), "sh -c 'echo $$ > %s; exec sleep 60' >/dev/null 2>&1 & sleep 0.3; exit 0", pidfile);
        ck_assert_int_eq(run_sh(cmd, 20000, &res, NULL, NULL), 0);
        ck_assert(res.exited);
        ck_assert_int_eq(res.status, 0);
        ck_assert_int_lt(res.elapsed_ms, 10000);
        assert_gone(pidfile, "a child left behind by a leader that exited");
}
END_TEST

START_TEST(t_missing_program)
{
        const char *argv[] = { "/nonexistent/tegraflash.py", NULL };
        struct proc_opts o = { .argv = argv, .envp = (const char *const *)env };
        struct proc_result res;

        ck_assert_int_eq(proc_run(ctx, &o, &res), -ENOENT);
        ck_assert_ptr_nonnull(strstr(fl_ctx_last_error(ctx), "/nonexistent/tegraflash.py"));
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("proc");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, t_status_and_lines);
        tcase_add_test(tc, t_env_scrubbed);
        tcase_add_test(tc, t_child_sees_only_scrubbed_env);
        tcase_add_test(tc, t_timeout_kills_group);
        tcase_add_test(tc, t_leader_exit_kills_leftovers);
        tcase_add_test(tc, t_missing_program);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr;
        int failed;

        if (!mkdtemp(dir))
                return 1;
        sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        rmdir(dir);
        return failed ? 1 : 0;
}
