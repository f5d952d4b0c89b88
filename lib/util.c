/* util.c — the context, logging and errors, secret buffers, hex, atomic
 * files, chip names, UTC time. Shared by every lib/ module. */
#include <ctype.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "internal.h"

#ifndef FL_VERSION
#define FL_VERSION "0.0.0"
#endif

const char *fl_version(void)
{
        return FL_VERSION;
}

int fl_ctx_new(fl_ctx **ret)
{
        fl_ctx *ctx;

        if (!ret)
                return -EINVAL;
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->log_level = FL_LOG_WARN;
        *ret = ctx;
        return 0;
}

void fl_ctx_free(fl_ctx *ctx)
{
        free(ctx);
}

void fl_ctx_set_log(fl_ctx *ctx, fl_log_fn fn, void *userdata)
{
        ctx->log_fn = fn;
        ctx->log_data = userdata;
}

void fl_ctx_set_log_level(fl_ctx *ctx, int level)
{
        ctx->log_level = level;
}

const char *fl_ctx_last_error(const fl_ctx *ctx)
{
        return ctx && ctx->has_error ? ctx->errmsg : NULL;
}

FL_PRINTF(3, 0) static void vlog(fl_ctx *ctx, int level, const char *fmt, va_list ap)
{
        char buf[FL_ERRMSG_MAX];

        if (!ctx || !ctx->log_fn || level > ctx->log_level)
                return;
        vsnprintf(buf, sizeof(buf), fmt, ap);
        ctx->log_fn(level, buf, ctx->log_data);
}

void fl_log(fl_ctx *ctx, int level, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vlog(ctx, level, fmt, ap);
        va_end(ap);
}

static int verr(fl_ctx *ctx, bool set_hint, enum fl_hint hint, int r, const char *fmt, va_list ap) FL_PRINTF(5, 0);
static int verr(fl_ctx *ctx, bool set_hint, enum fl_hint hint, int r, const char *fmt, va_list ap)
{
        char buf[FL_ERRMSG_MAX];

        if (!ctx)
                return r;
        /* Format into a local buffer first: callers wrap the previous
         * error, passing fl_ctx_last_error(ctx), i.e. ctx->errmsg itself,
         * and vsnprintf with overlapping source and destination garbles it
         * ("PIN file X: PIN file X: en: No such file"). */
        vsnprintf(buf, sizeof(buf), fmt, ap);
        /* A message that quotes the previous one whole wraps it and keeps
         * its hint; any other error starts without one. */
        if (set_hint)
                ctx->hint = hint;
        else if (!ctx->has_error || !ctx->errmsg[0] || !strstr(buf, ctx->errmsg))
                ctx->hint = FL_HINT_NONE;
        memcpy(ctx->errmsg, buf, sizeof(buf));
        /* One line, always: callers may embed text from other libraries. */
        for (char *p = ctx->errmsg; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        ctx->has_error = true;
        if (ctx->log_fn && ctx->log_level >= FL_LOG_DEBUG)
                ctx->log_fn(FL_LOG_DEBUG, ctx->errmsg, ctx->log_data);
        return r;
}

int fl_err(fl_ctx *ctx, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        r = verr(ctx, false, FL_HINT_NONE, r, fmt, ap);
        va_end(ap);
        return r;
}

int fl_err_hint(fl_ctx *ctx, enum fl_hint hint, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        r = verr(ctx, true, hint, r, fmt, ap);
        va_end(ap);
        return r;
}

enum fl_hint fl_ctx_last_hint(const fl_ctx *ctx)
{
        return ctx && ctx->has_error ? ctx->hint : FL_HINT_NONE;
}

void fl_ctx_set_interrupt(fl_ctx *ctx, const volatile sig_atomic_t *flag)
{
        if (ctx)
                ctx->intr = flag;
}

int fl_interrupted(fl_ctx *ctx)
{
        int sig;
        const char *name;

        if (!ctx || !ctx->intr || !(sig = *ctx->intr))
                return 0;
        name = sigabbrev_np(sig);
        return fl_err(ctx, -ECANCELED, "interrupted by SIG%s", name ? name : "?");
}

void fl_err_clear(fl_ctx *ctx)
{
        if (!ctx)
                return;
        ctx->has_error = false;
        ctx->errmsg[0] = 0;
        ctx->hint = FL_HINT_NONE;
}

static size_t page_size(void)
{
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? (size_t)p : 4096;
}

/* Whole pages of its own, so MADV_DONTDUMP and mlock cover the secret and
 * nothing else; free() still releases it (posix_memalign memory). Both
 * calls are best effort: a core dump is already off in the CLI (prctl,
 * RLIMIT_CORE), and mlock may exceed RLIMIT_MEMLOCK for an unprivileged
 * user — then the secret is merely swappable, as before. */
void *secret_mem_alloc(size_t n)
{
        size_t pg = page_size(), sz = ((n ? n : 1) + pg - 1) / pg * pg;
        void *p = NULL;

        if (posix_memalign(&p, pg, sz) != 0)
                return NULL;
        memset(p, 0, sz);
        (void)madvise(p, sz, MADV_DONTDUMP);
        (void)mlock(p, sz);
        return p;
}

void secret_mem_free(void *p, size_t n)
{
        size_t pg = page_size();

        if (!p)
                return;
        OPENSSL_cleanse(p, n);
        /* Only what secret_mem_alloc made is page-aligned; its usable size
         * rounded down to pages is exactly what was locked and marked.
         * Both marks are undone: left on freed heap pages, each split the
         * heap's mapping, and a long-running process (a batch, a station)
         * reached vm.max_map_count and could no longer allocate at all
         * (found by libFuzzer on fuzz-keyset; test-util t_secret_vmas). */
        if ((uintptr_t)p % pg == 0) {
                size_t sz = malloc_usable_size(p) / pg * pg;
                (void)munlock(p, sz);
                (void)madvise(p, sz, MADV_DODUMP);
        }
        free(p);
}

int secret_alloc(struct fl_secret *s, size_t len)
{
        s->data = secret_mem_alloc(len);
        if (!s->data)
                return -ENOMEM;
        s->len = len;
        return 0;
}

void secret_wipe(struct fl_secret *s)
{
        if (!s || !s->data)
                return;
        secret_mem_free(s->data, s->len);
        s->data = NULL;
        s->len = 0;
}

void secret_free_str(char *s)
{
        if (!s)
                return;
        OPENSSL_cleanse(s, strlen(s));
        free(s);
}

void hex_encode(const unsigned char *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * len] = 0;
}

char *hex_dup(const unsigned char *in, size_t len)
{
        char *s = malloc(2 * len + 1);

        if (s)
                hex_encode(in, len, s);
        return s;
}

int hex_digit(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *hex, unsigned char *out, size_t outlen, size_t *ret_len)
{
        size_t n = strlen(hex);

        if (n == 0 || n % 2 || n / 2 > outlen)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hex_digit((unsigned char)hex[2 * i]), lo = hex_digit((unsigned char)hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (unsigned char)(hi << 4 | lo);
        }
        if (ret_len)
                *ret_len = n / 2;
        return 0;
}

static int read_fd_all(int fd, size_t max, unsigned char **ret_data, size_t *ret_len, bool secret)
{
        size_t cap = 4096, len = 0;
        unsigned char *buf = secret ? secret_mem_alloc(cap + 1) : malloc(cap + 1);
        int r;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;
                if (len == cap) {
                        size_t ncap = cap * 2;
                        unsigned char *nb;
                        if (cap > max) {
                                r = -EFBIG;
                                goto fail;
                        }
                        nb = secret ? secret_mem_alloc(ncap + 1) : malloc(ncap + 1);
                        if (!nb) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        memcpy(nb, buf, len);
                        if (secret)
                                secret_mem_free(buf, len);
                        else
                                free(buf);
                        buf = nb;
                        cap = ncap;
                }
                k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len > max) {
                        r = -EFBIG;
                        goto fail;
                }
        }
        buf[len] = 0;
        *ret_data = buf;
        *ret_len = len;
        return 0;
fail:
        if (secret)
                secret_mem_free(buf, len);
        else
                free(buf);
        return r;
}

int fd_read_all(int fd, size_t max, unsigned char **ret_data, size_t *ret_len)
{
        return read_fd_all(fd, max, ret_data, ret_len, false);
}

static int file_read_impl(fl_ctx *ctx, const char *path, size_t max, unsigned char **ret_data,
                          size_t *ret_len, bool secret)
{
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                return fl_err(ctx, r == -ENOENT ? -ENOENT : -EINVAL, "%s: cannot open: %s", path,
                              strerror(-r));
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return fl_err(ctx, -EINVAL, "%s: not a regular file", path);
        }
        r = read_fd_all(fd, max, ret_data, ret_len, secret);
        close(fd);
        if (r == -EFBIG)
                return fl_err(ctx, -EINVAL, "%s: larger than the %zu-byte limit", path, max);
        if (r < 0)
                return fl_err(ctx, r, "%s: read failed: %s", path, strerror(-r));
        return 0;
}

int file_read(fl_ctx *ctx, const char *path, size_t max, unsigned char **ret_data, size_t *ret_len)
{
        return file_read_impl(ctx, path, max, ret_data, ret_len, false);
}

int file_read_secret(fl_ctx *ctx, const char *path, size_t max, struct fl_secret *ret)
{
        unsigned char *d;
        size_t n;
        int r = file_read_impl(ctx, path, max, &d, &n, true);

        if (r < 0)
                return r;
        ret->data = d;
        ret->len = n;
        return 0;
}

static int fsync_dir_of(const char *path)
{
        char *copy = strdup(path);
        int fd, r = 0;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(copy);
        if (fd < 0)
                return -errno;
        /* EINVAL: the file system does not sync directories (nothing to do). */
        if (fsync(fd) < 0 && errno != EINVAL)
                r = -errno;
        close(fd);
        return r;
}

/* errno of a failed create/rename as the library's code: a path the user
 * cannot write is a bad argument (exit 2), not a token or interlock error
 * (which -EACCES/-EPERM mean everywhere else). Disk full and I/O errors
 * stay what they are (exit 1). */
static int path_errno(int r)
{
        switch (-r) {
        case EACCES:
        case EPERM:
        case EROFS:
        case ENOTDIR:
        case EISDIR:
        case ENAMETOOLONG:
        case ELOOP:
                return -EINVAL;
        default:
                return r;
        }
}

/* name in the directory of file ("." stays relative). */
char *path_beside(const char *file, const char *name)
{
        char *copy = strdup(file), *out = NULL;
        const char *dir;

        if (!copy)
                return NULL;
        dir = dirname(copy);
        if (!strcmp(dir, "."))
                out = strdup(name);
        else if (asprintf(&out, "%s/%s", dir, name) < 0)
                out = NULL;
        free(copy);
        return out;
}

int file_sync_dir(fl_ctx *ctx, const char *path)
{
        int r = fsync_dir_of(path);

        if (r < 0 && r != -ENOMEM)
                return fl_err(ctx, path_errno(r), "%s: the directory entry cannot be made durable: %s", path,
                              strerror(-r));
        return r;
}

int file_temp_write(fl_ctx *ctx, const char *path, const void *data, size_t len, unsigned mode, bool sync,
                    char **ret_tmp)
{
        char *tmp = NULL;
        const unsigned char *p = data;
        size_t left = len;
        int fd, r;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                fl_err(ctx, path_errno(r), "%s: cannot create: %s", path, strerror(-r));
                free(tmp);
                return path_errno(r);
        }
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }
        while (left) {
                ssize_t k = write(fd, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                p += k;
                left -= (size_t)k;
        }
        if (sync && fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                goto fail;
        }
        *ret_tmp = tmp;
        return 0;
fail:
        fl_err(ctx, r, "%s: write failed: %s", path, strerror(-r));
        if (fd >= 0)
                close(fd);
        unlink(tmp);
        free(tmp);
        return r;
}

int file_temp_commit(fl_ctx *ctx, const char *tmp, const char *path, unsigned flags)
{
        int r;

        if (flags & FILE_SYNC_DATA) {
                int fd = open(tmp, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fsync(fd) < 0) {
                        r = -errno;
                        if (fd >= 0)
                                close(fd);
                        unlink(tmp);
                        return fl_err(ctx, r, "%s: write failed: %s", path, strerror(-r));
                }
                close(fd);
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return fl_err(ctx, path_errno(r), "%s: cannot replace: %s", path, strerror(-r));
        }
        if (flags & FILE_SYNC_DIR)
                return file_sync_dir(ctx, path);
        return 0;
}

int file_write_atomic(fl_ctx *ctx, const char *path, const void *data, size_t len, unsigned mode)
{
        char *tmp = NULL;
        int r = file_temp_write(ctx, path, data, len, mode, true, &tmp);

        if (r < 0)
                return r;
        r = file_temp_commit(ctx, tmp, path, FILE_SYNC_DIR);
        free(tmp);
        return r;
}

int file_write_new(fl_ctx *ctx, const char *path, const void *data, size_t len, unsigned mode)
{
        char *tmp = NULL;
        int r = file_temp_write(ctx, path, data, len, mode, true, &tmp);

        if (r < 0)
                return r;
        if (link(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                free(tmp);
                if (r == -EEXIST)
                        return fl_err(ctx, r, "%s: already exists; not replacing it", path);
                return fl_err(ctx, path_errno(r), "%s: cannot create: %s", path, strerror(-r));
        }
        unlink(tmp);
        free(tmp);
        r = file_sync_dir(ctx, path);
        if (r < 0)
                unlink(path); /* ours (link(2) made it): an error leaves nothing behind */
        return r;
}

static int buf_reserve(struct fl_buf *b, size_t n)
{
        size_t cap = b->cap ? b->cap : 256;

        if (n > SIZE_MAX - 1 - b->len) {
                b->oom = true;
                return -ENOMEM;
        }
        if (b->len + n + 1 <= b->cap)
                return 0;
        while (cap < b->len + n + 1)
                cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
                b->oom = true;
                return -ENOMEM;
        }
        b->p = np;
        b->cap = cap;
        return 0;
}

int fl_buf_put(struct fl_buf *b, const void *data, size_t n)
{
        if (buf_reserve(b, n) < 0)
                return -ENOMEM;
        if (n)
                memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = 0;
        return 0;
}

void fl_buf_printf(struct fl_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->oom)
                return;
        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || buf_reserve(b, (size_t)n) < 0) {
                b->oom = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

char *fl_buf_take_str(struct fl_buf *b)
{
        char *s = (char *)b->p;

        if (b->oom || !s) {
                fl_buf_free(b);
                return NULL;
        }
        *b = (struct fl_buf){ 0 };
        return s;
}

void fl_buf_free(struct fl_buf *b)
{
        free(b->p);
        *b = (struct fl_buf){ 0 };
}

enum fl_chip chip_from_name(const char *name)
{
        if (!name)
                return FL_CHIP_NONE;
        if (!strcasecmp(name, "t194") || !strcasecmp(name, "0x19"))
                return FL_CHIP_T194;
        if (!strcasecmp(name, "t234") || !strcasecmp(name, "0x23"))
                return FL_CHIP_T234;
        return FL_CHIP_NONE;
}

const char *chip_name(enum fl_chip chip)
{
        switch (chip) {
        case FL_CHIP_T194:
                return "t194";
        case FL_CHIP_T234:
                return "t234";
        default:
                return "unknown";
        }
}

bool time_format_utc(int64_t t, char *out, size_t outlen)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm))
                return false;
        return strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

void time_now_utc(char *out, size_t outlen)
{
        (void)time_format_utc((int64_t)time(NULL), out, outlen);
}

int days_in_month(int y, int m)
{
        static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return 29;
        return d[m - 1];
}

bool parse_digits(const char **pp, size_t n, int *ret)
{
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                char c = (*pp)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *pp += n;
        *ret = v;
        return true;
}

const char *ossl_errstr(void)
{
        static _Thread_local char buf[256];
        unsigned long e = ERR_get_error();

        if (!e)
                return "no OpenSSL error";
        ERR_error_string_n(e, buf, sizeof(buf));
        ERR_clear_error();
        return buf;
}

void strv_add_fmtv(char **v, size_t *n, size_t max, const char *fmt, va_list ap)
{
        char *s = NULL;

        if (*n >= max)
                return;
        if (vasprintf(&s, fmt, ap) < 0)
                return;
        v[(*n)++] = s;
}
