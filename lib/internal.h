/* internal.h — what every lib/ module shares: the context structure, logging
 * and error helpers, secret buffers, hex and file utilities, chip ids.
 *
 * Error convention (DESIGN.md §Conventions): functions return 0 or a negative
 * errno-style code, never print, never exit. The codes carry meaning the CLI
 * maps to exit statuses in exactly one place (cmd/main.c):
 *   -EINVAL  bad argument or malformed input           -> 2 usage/invalid input
 *   -ENOENT  input file missing                        -> 2
 *   -EACCES  PIN wrong/locked, login refused           -> 3 token/PIN
 *   -ENXIO   token/module/object not found             -> 3
 *   -ENODEV  device absent or unreachable              -> 4
 *   -EBADMSG verification mismatch                     -> 5
 *   -EPERM   refused by an interlock                   -> 6
 *   -EEXIST  conflict (exists / provisioned otherwise) -> 7
 *   anything else                                      -> 1 failure */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuseline.h"

#define FL_ERRMSG_MAX 512

/* A fuse-blob type id the BSP's own parser stated for a fuse whose id
 * fuseline's table lacks (fuse_blob_type_learn). */
struct fl_blob_type {
        int chip;       /* enum fl_chip */
        char name[24];
        uint32_t type;
};
#define FL_BLOB_TYPES_MAX 8

struct fl_ctx {
        fl_log_fn log_fn;
        void *log_data;
        int log_level;
        char errmsg[FL_ERRMSG_MAX];
        bool has_error;
        enum fl_hint hint;                 /* of errmsg, see fl_ctx_last_hint */
        const volatile sig_atomic_t *intr; /* fl_ctx_set_interrupt */
        struct fl_blob_type blob_types[FL_BLOB_TYPES_MAX]; /* learned from the BSP's parser */
        size_t n_blob_types;
};

#if defined(__GNUC__)
#define FL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FL_PRINTF(a, b)
#endif

/* Log a message at a level through the context's callback. */
void fl_log(fl_ctx *ctx, int level, const char *fmt, ...) FL_PRINTF(3, 4);

/* Record a one-line error message (kept as the context's last error, and
 * logged at FL_LOG_ERR) and return r, so callers write
 * `return fl_err(ctx, -EINVAL, "…")`. */
int fl_err(fl_ctx *ctx, int r, const char *fmt, ...) FL_PRINTF(3, 4);

/* fl_err, and the error carries a hint for the front end (see enum fl_hint). */
int fl_err_hint(fl_ctx *ctx, enum fl_hint hint, int r, const char *fmt, ...) FL_PRINTF(4, 5);

/* Forget the last error (used when an error was handled). */
void fl_err_clear(fl_ctx *ctx);

/* 0, or -ECANCELED with "interrupted by SIGINT" as the error when the
 * caller's interrupt flag is set (see fl_ctx_set_interrupt). Poll it only
 * where everything done so far can still be undone. */
int fl_interrupted(fl_ctx *ctx);

/* ---- secrets ---------------------------------------------------------- */

/* A buffer that is wiped (OPENSSL_cleanse) before it is freed. Its pages
 * are its own (page-aligned, rounded up), locked in RAM where the limit
 * allows (mlock) and left out of core dumps (MADV_DONTDUMP). */
struct fl_secret {
        unsigned char *data;
        size_t len;
};

int secret_alloc(struct fl_secret *s, size_t len);
/* The memory behind secret_alloc, for buffers that grow (file reads).
 * secret_mem_free wipes n bytes first. */
void *secret_mem_alloc(size_t n);
void secret_mem_free(void *p, size_t n);
void secret_wipe(struct fl_secret *s); /* wipes and frees; accepts empty */
/* Wipe and free a NUL-terminated string (PINs). Accepts NULL. */
void secret_free_str(char *s);

/* ---- hex -------------------------------------------------------------- */

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* Malloc'd "0x"-less lower-case hex. NULL on allocation failure. */
char *hex_dup(const unsigned char *in, size_t len);
/* The value of one hex digit (either case), -1 for any other character. */
int hex_digit(int c);
/* Decode exactly-even-length hex (no prefix, no spaces). -EINVAL otherwise. */
int hex_decode(const char *hex, unsigned char *out, size_t outlen, size_t *ret_len);

/* ---- files ------------------------------------------------------------ */

/* Read a whole regular file, refusing more than max bytes. The buffer gets
 * a NUL after the data. Errors are reported on ctx naming the path. */
int file_read(fl_ctx *ctx, const char *path, size_t max, unsigned char **ret_data, size_t *ret_len);
/* Same, into a wiped-on-free secret buffer. */
int file_read_secret(fl_ctx *ctx, const char *path, size_t max, struct fl_secret *ret);
/* What both are built on, for streams such as stdin: read fd to its end,
 * -EFBIG past max bytes, -errno on a read error (no message on a ctx). */
int fd_read_all(int fd, size_t max, unsigned char **ret_data, size_t *ret_len);

/* Write atomically: temp file in the same directory created with `mode`,
 * write, fsync, rename over path, fsync the directory. Nothing is left
 * beside path on failure; path keeps its old contents unless the failure
 * is the directory fsync after the rename (reported: the new contents may
 * not survive a crash). The one temp-write-fsync-rename writer: everything
 * that publishes a file goes through it or its two halves below. */
int file_write_atomic(fl_ctx *ctx, const char *path, const void *data, size_t len, unsigned mode);

/* Same, but refuse (-EEXIST) when path exists already (link(2) based, so
 * two writers cannot both win). On any error nothing is left at path. */
int file_write_new(fl_ctx *ctx, const char *path, const void *data, size_t len, unsigned mode);

/* The two halves of file_write_atomic, for writers that publish in two
 * steps (a batch flushed at once, a file another program fills).
 * file_temp_write creates "<path>.tmp.XXXXXX" with `mode`, writes data,
 * fsyncs it when sync is set, and returns its name (malloc'd) in ret_tmp;
 * nothing is left on failure. file_temp_commit renames tmp over path
 * (FILE_SYNC_DATA: fsync tmp first; FILE_SYNC_DIR: fsync the directory
 * after, its result checked); on a failure before the rename tmp is
 * removed. The caller frees the name. */
#define FILE_SYNC_DATA 1u
#define FILE_SYNC_DIR 2u
int file_temp_write(fl_ctx *ctx, const char *path, const void *data, size_t len, unsigned mode, bool sync,
                    char **ret_tmp);
int file_temp_commit(fl_ctx *ctx, const char *tmp, const char *path, unsigned flags);
/* fsync the directory holding path (EINVAL from a file system that cannot
 * is success); an error is reported naming path. */
int file_sync_dir(fl_ctx *ctx, const char *path);
/* name in the directory of file ("a/k.json", "c.pem" -> "a/c.pem"; a file
 * without a directory gives name as is); NULL if out of memory. */
char *path_beside(const char *file, const char *name);

/* ---- growable buffer ---------------------------------------------------- */

/* Bytes or text that grow by doubling; { 0 } is an empty buffer. p[len]
 * is kept 0 once anything was added, so text can be used as a string. */
struct fl_buf {
        unsigned char *p;
        size_t len, cap;
        bool oom; /* an fl_buf_printf ran out of memory (the text is incomplete) */
};

/* Append n bytes (n == 0 allowed): 0 or -ENOMEM (and oom set). */
int fl_buf_put(struct fl_buf *b, const void *data, size_t n);
/* Append formatted text; a failure sets oom (checked once, by fl_buf_take_str). */
void fl_buf_printf(struct fl_buf *b, const char *fmt, ...) FL_PRINTF(2, 3);
/* The text, now the caller's; NULL (and the buffer freed) if any append
 * failed or nothing was added. */
char *fl_buf_take_str(struct fl_buf *b);
void fl_buf_free(struct fl_buf *b);

/* ---- chips ------------------------------------------------------------ */

enum fl_chip {
        FL_CHIP_NONE = 0,
        FL_CHIP_T194 = 0x19,
        FL_CHIP_T234 = 0x23,
};

/* "t194"/"t234" (also "0x19"/"0x23"), case-insensitive. FL_CHIP_NONE if not. */
enum fl_chip chip_from_name(const char *name);
const char *chip_name(enum fl_chip chip);

/* ---- problem lists ------------------------------------------------------ */

/* Append a formatted message to a list of at most max malloc'd strings
 * (problem lists of the verify commands); past max, or out of memory, the
 * message is dropped. */
void strv_add_fmtv(char **v, size_t *n, size_t max, const char *fmt, va_list ap) FL_PRINTF(4, 0);

/* ---- time ------------------------------------------------------------- */

/* UTC now as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). */
void time_now_utc(char *out, size_t outlen);
/* t (seconds since 1970, UTC) the same way; false if gmtime cannot. */
bool time_format_utc(int64_t t, char *out, size_t outlen);

/* Calendar facts shared by the date parsers (ledger times, EFI_TIME):
 * days in month m (1..12) of year y (Gregorian), and exactly n decimal
 * digits at *pp into *ret (advancing *pp; false, *pp untouched, if any is
 * not a digit). n is at most 9. */
int days_in_month(int y, int m);
bool parse_digits(const char **pp, size_t n, int *ret);

/* ---- OpenSSL error text ------------------------------------------------ */

/* The most recent OpenSSL error as text (static buffer per thread), and the
 * queue cleared; "no OpenSSL error" when empty. */
const char *ossl_errstr(void);

#define FL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
