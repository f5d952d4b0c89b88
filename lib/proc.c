/* proc.c — running another program: scrubbed environment, own process
 * group, timeout that kills the group, output lines to a log and a
 * callback (see proc.h). posix_spawn keeps this safe in threaded callers
 * (burn runs one worker thread per device). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- environment ------------------------------------------------------ */

static const char *const base_allow[] = {
        "PATH", "HOME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "USER", "LOGNAME", "TERM", NULL,
};

static bool name_is_secretish(const char *name, size_t len)
{
        static const char *const bad[] = { "PIN", "PASS", "SECRET", "TOKEN", "KEY", NULL };
        for (size_t i = 0; bad[i]; i++) {
                size_t bl = strlen(bad[i]);
                for (size_t j = 0; j + bl <= len; j++)
                        if (!strncasecmp(name + j, bad[i], bl))
                                return true;
        }
        return false;
}

static bool name_listed(const char *name, size_t len, const char *const *list)
{
        for (size_t i = 0; list && list[i]; i++) {
                size_t ll = strlen(list[i]);
                if (ll > 0 && list[i][ll - 1] == '*') {
                        if (len >= ll - 1 && !strncmp(name, list[i], ll - 1))
                                return true;
                } else if (ll == len && !strncmp(name, list[i], len)) {
                        return true;
                }
        }
        return false;
}

static bool in_extra(const char *name, size_t len, const char *const *extra)
{
        for (size_t i = 0; extra && extra[i]; i++)
                if (!strncmp(extra[i], name, len) && extra[i][len] == '=')
                        return true;
        return false;
}

void proc_env_free(char **env)
{
        if (!env)
                return;
        for (size_t i = 0; env[i]; i++)
                free(env[i]);
        free(env);
}

/* Copy from (only allowed names when filter), then extra, into one array. */
static int env_build(char *const *from, bool filter, const char *const *pass, const char *const *extra, char ***ret)
{
        size_t n = 0, cap = 1;
        char **env;

        for (size_t i = 0; from && from[i]; i++)
                cap++;
        for (size_t i = 0; extra && extra[i]; i++)
                cap++;
        env = calloc(cap, sizeof(*env));
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; from && from[i]; i++) {
                const char *eq = strchr(from[i], '=');
                size_t len;
                if (!eq)
                        continue;
                len = (size_t)(eq - from[i]);
                if (filter && (name_is_secretish(from[i], len) ||
                               (!name_listed(from[i], len, base_allow) && !name_listed(from[i], len, pass))))
                        continue;
                /* An extra entry of the same name wins: leave this one out. */
                if (in_extra(from[i], len, extra))
                        continue;
                env[n] = strdup(from[i]);
                if (!env[n++])
                        goto oom;
        }
        for (size_t i = 0; extra && extra[i]; i++) {
                env[n] = strdup(extra[i]);
                if (!env[n++])
                        goto oom;
        }
        env[n] = NULL;
        *ret = env;
        return 0;
oom:
        proc_env_free(env);
        return -ENOMEM;
}

int proc_env_scrub(char *const *from, const char *const *pass, const char *const *extra, char ***ret)
{
        return env_build(from, true, pass, extra, ret);
}

int proc_env_extend(const char *const *envp, const char *const *extra, char ***ret)
{
        return env_build((char *const *)envp, false, NULL, extra, ret);
}

/* ---- running ------------------------------------------------------------ */

const char *proc_result_text(const struct proc_result *r, char *buf, size_t len)
{
        if (r->aborted)
                snprintf(buf, len, "stopped by fuseline");
        else if (r->timed_out)
                snprintf(buf, len, "timed out after %ld s and was killed", (r->elapsed_ms + 500) / 1000);
        else if (r->exited)
                snprintf(buf, len, "exit %d", r->status);
        else
                snprintf(buf, len, "killed by signal %d (%s)", r->signal, strsignal(r->signal));
        return buf;
}

struct linebuf {
        char buf[PROC_LINE_MAX + 1];
        size_t n;
        const struct proc_opts *o;
        int log_fd;
        int werr; /* first log write error (errno) */
};

static void log_write(struct linebuf *lb, const char *p, size_t n)
{
        while (lb->log_fd >= 0 && n > 0) {
                ssize_t k = write(lb->log_fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        if (!lb->werr)
                                lb->werr = k < 0 ? errno : EIO;
                        return;
                }
                p += k;
                n -= (size_t)k;
        }
}

static void line_flush(struct linebuf *lb)
{
        lb->buf[lb->n] = 0;
        if (lb->o->on_line)
                lb->o->on_line(lb->buf, lb->o->data);
        lb->n = 0;
}

static void feed(struct linebuf *lb, const char *p, size_t n)
{
        log_write(lb, p, n);
        for (size_t i = 0; i < n; i++) {
                if (p[i] == '\n') {
                        if (lb->n > 0 && lb->buf[lb->n - 1] == '\r')
                                lb->n--;
                        line_flush(lb);
                        continue;
                }
                if (lb->n == PROC_LINE_MAX)
                        line_flush(lb);
                lb->buf[lb->n++] = p[i];
        }
}

static void kill_group(pid_t pgid, int sig)
{
        if (pgid > 1)
                (void)kill(-pgid, sig);
}

int proc_run(fl_ctx *ctx, const struct proc_opts *o, struct proc_result *ret)
{
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        struct linebuf lb = { .n = 0, .o = o, .log_fd = -1 };
        struct proc_result res = { 0 };
        int pipefd[2] = { -1, -1 }, status = 0, r;
        bool fa_init = false, attr_init = false, reaped = false, term_sent = false, eof = false;
        long start = now_ms(), term_at = 0;
        int grace = o->kill_grace_ms > 0 ? o->kill_grace_ms : 2000;
        const char *prog = o->argv[0];
        pid_t pid = -1;
        sigset_t none;

        if (o->log_path) {
                lb.log_fd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (lb.log_fd < 0)
                        return fl_err(ctx, -errno, "%s: cannot open the log: %s", o->log_path, strerror(errno));
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = fl_err(ctx, -errno, "cannot run %s: pipe: %s", prog, strerror(errno));
                goto out;
        }
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0) {
                r = -r;
                goto out;
        }
        fa_init = true;
        posix_spawn_file_actions_addopen(&fa, 0, o->stdin_path ? o->stdin_path : "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
        if (o->cwd)
                posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                r = -r;
                goto out;
        }
        attr_init = true;
        /* Own process group: Ctrl-C at the station never reaches a burn, and
         * a timeout can kill the tool and everything it started. Default
         * signal mask and dispositions, whatever the caller blocked. */
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        {
                sigset_t all;
                sigfillset(&all);
                posix_spawnattr_setsigdefault(&attr, &all);
        }
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (strchr(prog, '/'))
                r = posix_spawn(&pid, prog, &fa, &attr, (char *const *)o->argv, (char *const *)o->envp);
        else
                r = posix_spawnp(&pid, prog, &fa, &attr, (char *const *)o->argv, (char *const *)o->envp);
        close(pipefd[1]);
        pipefd[1] = -1;
        if (r != 0) {
                if (r == ENOENT || r == EACCES || r == ENOEXEC)
                        r = fl_err(ctx, -ENOENT, "cannot run %s: %s", prog, strerror(r));
                else
                        r = fl_err(ctx, -r, "cannot run %s: %s", prog, strerror(r));
                pid = -1;
                goto out;
        }

        /* Read output until the leader has exited and the pipe is drained
         * (or the group is killed); check the clock every 100 ms. */
        while (!reaped || !eof) {
                struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
                long now = now_ms();
                int pr;

                if (!reaped && o->timeout_ms > 0 && !term_sent && now - start >= o->timeout_ms) {
                        res.timed_out = true;
                        kill_group(pid, SIGTERM);
                        term_sent = true;
                        term_at = now;
                }
                if (!reaped && o->abort && *o->abort && !res.aborted) {
                        res.aborted = true;
                        kill_group(pid, SIGKILL);
                }
                if (term_sent && !reaped && now - term_at >= grace)
                        kill_group(pid, SIGKILL);
                if (!reaped) {
                        pid_t w = waitpid(pid, &status, WNOHANG);
                        if (w == pid) {
                                reaped = true;
                                /* Nothing the tool started may outlive it (a
                                 * hung tegrarcm_v2 under an exited parent). */
                                kill_group(pid, SIGKILL);
                        }
                }
                if (eof) {
                        if (!reaped)
                                usleep(20 * 1000);
                        continue;
                }
                pr = poll(&pfd, 1, reaped ? 50 : 100);
                if (pr < 0 && errno != EINTR) {
                        r = fl_err(ctx, -errno, "running %s: poll: %s", prog, strerror(errno));
                        kill_group(pid, SIGKILL);
                        goto out_wait;
                }
                if (pr > 0) {
                        char chunk[4096];
                        ssize_t k = read(pipefd[0], chunk, sizeof(chunk));
                        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (k <= 0)
                                eof = true;
                        else
                                feed(&lb, chunk, (size_t)k);
                } else if (pr == 0 && reaped) {
                        /* Leader gone, group killed, nothing more came: a
                         * grandchild may still hold the pipe; stop reading. */
                        eof = true;
                }
        }
        if (lb.n > 0)
                line_flush(&lb);
        res.elapsed_ms = now_ms() - start;
        if (WIFEXITED(status)) {
                res.exited = true;
                res.status = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
                res.signal = WTERMSIG(status);
        }
        pid = -1;
        if (lb.werr) {
                r = fl_err(ctx, -lb.werr, "%s: cannot write the log: %s", o->log_path, strerror(lb.werr));
                goto out;
        }
        if (lb.log_fd >= 0 && fsync(lb.log_fd) < 0 && errno != EINVAL) {
                r = fl_err(ctx, -errno, "%s: cannot write the log: %s", o->log_path, strerror(errno));
                goto out;
        }
        *ret = res;
        r = 0;
        goto out;
out_wait:
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        pid = -1;
out:
        if (fa_init)
                posix_spawn_file_actions_destroy(&fa);
        if (attr_init)
                posix_spawnattr_destroy(&attr);
        if (pipefd[0] >= 0)
                close(pipefd[0]);
        if (pipefd[1] >= 0)
                close(pipefd[1]);
        if (lb.log_fd >= 0)
                close(lb.log_fd);
        return r;
}
