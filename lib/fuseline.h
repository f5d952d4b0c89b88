/* fuseline.h — the opaque context, error reporting and the log callback of
 * libfuseline, the private static library behind the fuseline CLI (not
 * installed; see lib/meson.build). Everything else the library offers is
 * reached through the CLI; its internals live in lib/internal.h. */
#pragma once

#include <signal.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_ctx fl_ctx;

enum fl_log_level {
        FL_LOG_ERR = 0,
        FL_LOG_WARN = 1,
        FL_LOG_INFO = 2,
        FL_LOG_DEBUG = 3,
};

/* Receives every message the library emits. The text never contains a
 * secret (PIN, fuse key value). */
typedef void (*fl_log_fn)(int level, const char *msg, void *userdata);

/* 0 or a negative errno-style code. */
int fl_ctx_new(fl_ctx **ret);
void fl_ctx_free(fl_ctx *ctx);
void fl_ctx_set_log(fl_ctx *ctx, fl_log_fn fn, void *userdata);
void fl_ctx_set_log_level(fl_ctx *ctx, int level);

/* Cooperative interruption. The caller's SIGINT/SIGTERM handler stores the
 * signal number in *flag; the library polls it between steps it can undo
 * (each key of a keygen, each file of a batch, lock waits) and, once it is
 * non-zero, rolls the running operation back exactly as a failure would
 * (token objects destroyed, temporaries removed) and returns -ECANCELED.
 * NULL (the default) turns polling off. */
void fl_ctx_set_interrupt(fl_ctx *ctx, const volatile sig_atomic_t *flag);

/* The one-line message of the most recent error, or NULL. */
const char *fl_ctx_last_error(const fl_ctx *ctx);

/* The library version string. */
const char *fl_version(void);

#ifdef __cplusplus
}
#endif
