/* fuzz-ledger.h — shared by the ledger fuzz targets: everything the reading
 * commands (verify ledger, ledger export, ledger show) do with an open
 * ledger, so a fuzzed database goes through all of it. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ledger.h"

/* SQLite's own allocations go straight to glibc, past the sanitizer's
 * malloc: with the suite's slow unwinding every SQLite malloc would cost
 * a full stack walk, and the fuzz runs would take minutes. What is fuzzed
 * is lib/ledger's handling of what SQLite returns; its own allocations
 * (strdup'd rows, reports, JSON) still go through ASan. SQLite's memory
 * itself is exercised by the unit and CLI tests under ASan. */
extern void *__libc_malloc(size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define FUZZ_HDR 16 /* keeps 16-byte alignment; holds the size */

static void *fz_malloc(int n)
{
        unsigned char *p = __libc_malloc((size_t)n + FUZZ_HDR);

        if (!p)
                return NULL;
        memcpy(p, &n, sizeof(n));
        return p + FUZZ_HDR;
}

static void fz_free(void *p)
{
        if (p)
                __libc_free((unsigned char *)p - FUZZ_HDR);
}

static void *fz_realloc(void *p, int n)
{
        unsigned char *q;

        if (!p)
                return fz_malloc(n);
        q = __libc_realloc((unsigned char *)p - FUZZ_HDR, (size_t)n + FUZZ_HDR);
        if (!q)
                return NULL;
        memcpy(q, &n, sizeof(n));
        return q + FUZZ_HDR;
}

static int fz_size(void *p)
{
        int n;

        memcpy(&n, (unsigned char *)p - FUZZ_HDR, sizeof(n));
        return n;
}

static int fz_roundup(int n)
{
        return (n + 7) & ~7;
}

static int fz_init(void *u)
{
        (void)u;
        return SQLITE_OK;
}

static void fz_shutdown(void *u)
{
        (void)u;
}

static inline void fuzz_sqlite_plain_malloc(void)
{
        static const sqlite3_mem_methods m = { fz_malloc, fz_free, fz_realloc, fz_size, fz_roundup,
                                               fz_init, fz_shutdown, NULL };

        if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
                abort();
}

/* Remove a database file and its WAL and shared-memory files. */
static inline void fuzz_unlink_db(const char *path)
{
        char p[80];

        unlink(path);
        snprintf(p, sizeof(p), "%s-wal", path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", path);
        unlink(p);
}

/* Everything the reading commands do with an open ledger. */
static inline void fuzz_ledger_read_all(struct ledger *l)
{
        struct ledger_report rep;
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        struct ledger_dangling *d = NULL;
        size_t n = 0;
        char ecids[8][LEDGER_ECID_LEN + 1];
        int n_ecids = 0;

        if (ledger_verify(l, &rep) == 0) {
                if (rep.fault != LEDGER_FAULT_NONE && !rep.message[0])
                        abort();
                ledger_report_clear(&rep);
        }
        if (ledger_iter_new(l, NULL, &it) == 0) {
                while (ledger_iter_next(it, &row) > 0) {
                        char *csv = ledger_row_csv(row);
                        json_object *o = ledger_row_json(row);
                        if (!csv || !o)
                                abort();
                        free(csv);
                        json_object_put(o);
                        if (row->ecid && n_ecids < 8 && strlen(row->ecid) == LEDGER_ECID_LEN)
                                memcpy(ecids[n_ecids++], row->ecid, LEDGER_ECID_LEN + 1);
                }
                ledger_iter_free(it);
        }
        if (ledger_dangling_list(l, NULL, &d, &n) == 0)
                free(d);
        for (int i = 0; i < n_ecids; i++) {
                struct ledger_device_info dev;
                struct ledger_cert_info cur, *list = NULL;
                struct ledger_filter f = { .ecid = ecids[i], .since = "2024-01-01T00:00:00Z" };
                if (ledger_device_get(l, ecids[i], &dev) == 0)
                        ledger_device_info_clear(&dev);
                if (ledger_cert_current(l, ecids[i], &cur) == 0)
                        ledger_cert_info_clear(&cur);
                if (ledger_cert_list(l, ecids[i], &list, &n) == 0)
                        ledger_cert_list_free(list, n);
                if (ledger_iter_new(l, &f, &it) == 0) {
                        while (ledger_iter_next(it, &row) > 0)
                                ;
                        ledger_iter_free(it);
                }
        }
}

/* Open a database file read-only as the reading commands do and take it
 * through all they do; a refusal must say why. */
static inline void fuzz_ledger_check_file(fl_ctx *ctx, const char *path)
{
        struct ledger *l = NULL;

        fl_err_clear(ctx);
        if (ledger_open(ctx, path, LEDGER_READ, &l) < 0) {
                if (!fl_ctx_last_error(ctx))
                        abort();
                return;
        }
        fuzz_ledger_read_all(l);
        ledger_close(l);
}
