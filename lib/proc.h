/* proc.h — the one way libfuseline runs another program (DESIGN.md
 * convention 11): a scrubbed environment the caller builds from an
 * allow-list, the child in a process group of its own (so a terminal's
 * Ctrl-C never reaches it, and a timeout can kill everything it started),
 * a timeout that kills that whole group, and every output line appended to
 * a log file and handed to a callback as it arrives.
 *
 * NVIDIA's tools have no timeouts of their own (a hung tegrarcm_v2 hangs
 * tegraflash forever) and their exit status is not to be trusted: callers
 * get the status, the time taken and whether it timed out, and decide from
 * what they read back, never from the status alone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

/* Called with each line the child writes (stdout and stderr merged), the
 * newline removed. A line longer than PROC_LINE_MAX is cut into pieces. */
typedef void (*proc_line_fn)(const char *line, void *data);

#define PROC_LINE_MAX 1024

struct proc_opts {
        const char *const *argv; /* argv[0]: a path (contains '/'), else searched in PATH */
        const char *const *envp; /* the child's whole environment (see proc_env_scrub) */
        const char *cwd;         /* NULL: inherit */
        const char *log_path;    /* output appended here (created 0600); NULL: not kept */
        const char *stdin_path;  /* NULL: /dev/null */
        int timeout_ms;          /* 0: none */
        int kill_grace_ms;       /* SIGTERM, then SIGKILL after this (default 2000) */
        proc_line_fn on_line;
        void *data;
        /* When the callback (or anyone) sets *abort non-zero, the whole group
         * is killed at once (SIGKILL): burn stops a tool the moment it prints
         * another board's BR_CID, before that run gets to burn anything. */
        volatile int *abort;
};

struct proc_result {
        bool exited;     /* ended by exit(): status is valid */
        int status;      /* exit status */
        int signal;      /* the signal that ended it, when !exited */
        bool timed_out;  /* killed by the timeout */
        bool aborted;    /* killed because *abort was set */
        long elapsed_ms;
};

/* Run and wait. Returns 0 when the program ran (whatever its status: see
 * ret), -ENOENT when it does not exist or is not executable, other negative
 * codes when it could not be started or the log could not be written (the
 * message names the program). When the program ends, anything still left
 * in its process group is killed: a tool never outlives its step. */
int proc_run(fl_ctx *ctx, const struct proc_opts *o, struct proc_result *ret);

/* Build a child environment from `from` (the caller's environ): only the
 * variables named in the base allow-list (PATH, HOME, LANG, LC_*, TZ,
 * TMPDIR, USER, LOGNAME, TERM) and those in `pass` (NULL-terminated names;
 * "LC_*"-style prefixes allowed), never a name that could carry a PIN or
 * secret (FUSELINE_PIN*, anything containing PIN, PASS, SECRET or TOKEN,
 * case-insensitive) even when listed. `extra` entries ("NAME=value") are
 * added last. The result is one malloc'd NULL-terminated array whose
 * strings are copies; free it with proc_env_free. */
int proc_env_scrub(char *const *from, const char *const *pass, const char *const *extra, char ***ret);
void proc_env_free(char **env);
/* A child environment that is envp (already scrubbed) plus extra
 * ("NAME=value", replacing entries of the same name). */
int proc_env_extend(const char *const *envp, const char *const *extra, char ***ret);

/* "exit 3", "killed by SIGKILL", "timed out after 30 s" — for messages. */
const char *proc_result_text(const struct proc_result *r, char *buf, size_t len);
