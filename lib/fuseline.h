/* fuseline.h — the public API of libfuseline: the opaque context, error
 * reporting and the log callback. Everything else the library offers is
 * reached through the CLI for now; its internals live in lib/internal.h. */
#pragma once

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

/* The one-line message of the most recent error, or NULL. */
const char *fl_ctx_last_error(const fl_ctx *ctx);

/* The library version string. */
const char *fl_version(void);

#ifdef __cplusplus
}
#endif
