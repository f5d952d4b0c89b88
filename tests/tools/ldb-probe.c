/* ldb-probe.c — drives a ledger backend through the ldb_* interface
 * (lib/ledger_db.h) directly, for tests/pg-backend.sh: the storage
 * semantics (errors, transactions, the chain lock, dialect queries) checked
 * below the ledger's logic. Test-only, never installed.
 *
 *   ldb-probe [-b BUSY_MS] open read|write LOCATION      prints "version N"
 *   ldb-probe [-b MS] sql LOCATION auto|read|write NCOLS SQL [ARG…]
 *   ldb-probe [-b MS] q LOCATION auto|read|write NCOLS QUERY [ARG…]   a dialect query by name
 *                     (EVENT_COLS: SELECT <its columns> FROM events ORDER BY id)
 *   ldb-probe [-b MS] chain LOCATION N TAG               N one-event write transactions
 *   ldb-probe [-b MS] hold LOCATION SECONDS              hold the chain lock
 * ARG: i:INT t:TEXT x:HEX (blob) n: (NULL). Rows print one per line, cells
 * "i:5" "t:abc" "b:00ff" "n:" "o:…" joined by '|'.
 * Exit: 0, or the failure's errno (EINVAL 22, EEXIST 17, EAGAIN 11, EBUSY
 * 16, EHOSTUNREACH 113, …) with the library's message on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ledger_int.h"

static void log_stderr(int level, const char *msg, void *data)
{
        (void)data;
        if (level <= FL_LOG_WARN)
                fprintf(stderr, "ldb-probe: %s\n", msg);
}

static const char *const qnames[LDBQ__MAX] = {
        [LDBQ_EVENT_COLS] = "EVENT_COLS",
        [LDBQ_HIGH_WATER] = "HIGH_WATER",
        [LDBQ_LAST_DEVICE_SNAPSHOT] = "LAST_DEVICE_SNAPSHOT",
        [LDBQ_COUNT_CERT_RECORDED] = "COUNT_CERT_RECORDED",
        [LDBQ_COUNT_CERT_SUPERSEDED] = "COUNT_CERT_SUPERSEDED",
        [LDBQ_GUARD_EXISTS] = "GUARD_EXISTS",
        [LDBQ_CERTS_IN_ORDER] = "CERTS_IN_ORDER",
        [LDBQ_CERTS_OF_ECID] = "CERTS_OF_ECID",
        [LDBQ_CHECKPOINT_IDS_RESYNC] = "CHECKPOINT_IDS_RESYNC",
        [LDBQ_INSERT_EVENT] = "INSERT_EVENT",
};

static int bind_args(struct ldb_stmt *st, char **args, int n)
{
        for (int i = 0; i < n; i++) {
                const char *a = args[i];
                int r = -EINVAL;
                if (!strncmp(a, "i:", 2)) {
                        r = ldb_bind_int64(st, i + 1, strtoll(a + 2, NULL, 10));
                } else if (!strncmp(a, "t:", 2)) {
                        r = ldb_bind_text(st, i + 1, a + 2);
                } else if (!strncmp(a, "n:", 2)) {
                        r = ldb_bind_null(st, i + 1);
                } else if (!strncmp(a, "x:", 2)) {
                        size_t len = strlen(a + 2) / 2;
                        unsigned char *b = malloc(len + 1);
                        for (size_t k = 0; b && k < len; k++)
                                sscanf(a + 2 + 2 * k, "%2hhx", &b[k]);
                        r = b ? ldb_bind_blob(st, i + 1, b, len) : -ENOMEM;
                        free(b);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static void print_row(struct ldb_stmt *st, int ncols)
{
        for (int i = 0; i < ncols; i++) {
                const unsigned char *b;
                size_t n;
                if (i > 0)
                        fputc('|', stdout);
                switch (ldb_col_type(st, i)) {
                case LDB_INT:
                        printf("i:%lld", (long long)ldb_col_int64(st, i));
                        break;
                case LDB_TEXT:
                        printf("t:%s", ldb_col_text(st, i));
                        break;
                case LDB_BLOB:
                        b = ldb_col_blob(st, i, &n);
                        fputs("b:", stdout);
                        for (size_t k = 0; k < n; k++)
                                printf("%02x", b[k]);
                        break;
                case LDB_NULL:
                        fputs("n:", stdout);
                        break;
                default:
                        printf("o:%s", ldb_col_text(st, i) ? ldb_col_text(st, i) : "");
                        break;
                }
        }
        fputc('\n', stdout);
}

static int begin_mode(struct ledger *l, const char *mode)
{
        if (!strcmp(mode, "write"))
                return ldb_begin_write(l);
        if (!strcmp(mode, "read"))
                return ldb_begin_read(l);
        return 0;
}

static int run_sql(struct ledger *l, const char *mode, int ncols, const char *sql, int qi, char **args, int n)
{
        struct ldb_stmt *st = NULL;
        int r;

        r = begin_mode(l, mode);
        if (r < 0)
                return r;
        r = sql ? ldb_prepare(l, sql, &st) : ldb_prepare_q(l, (enum ldb_query)qi, &st);
        if (r >= 0)
                r = bind_args(st, args, n);
        while (r >= 0 && (r = ldb_step(st)) == 1)
                print_row(st, ncols);
        ldb_finalize(st);
        if (r >= 0 && ldb_in_transaction(l))
                r = ldb_commit(l);
        if (r < 0)
                ldb_rollback(l);
        return r;
}

/* One event per transaction, chained on the head read under the lock; the
 * hash is SHA-256(prev_hash || id || tag), enough to tell the chain apart
 * (the ledger's canonical bytes are the logic's business, not this). */
static int chain_one(struct ledger *l, const char *tag, int i, bool *unsure, unsigned char tried[32])
{
        struct ldb_stmt *st = NULL;
        unsigned char prev[32] = { 0 }, hash[32];
        char details[64], idbuf[32];
        int64_t head = 0, hw = 0, id;
        EVP_MD_CTX *md;
        int r;

        r = ldb_begin_write(l);
        if (r < 0)
                return r;
        /* The contract: a COMMIT that failed with -EAGAIN may have
         * committed; look for what it wrote before writing it again. */
        if (*unsure) {
                r = ldb_prepare(l, "SELECT id FROM events WHERE hash = ?1", &st);
                if (r >= 0)
                        r = ldb_bind_blob(st, 1, tried, 32);
                if (r >= 0)
                        r = ldb_step(st);
                ldb_finalize(st);
                st = NULL;
                if (r < 0)
                        goto fail;
                if (r == 1) {
                        ldb_rollback(l);
                        *unsure = false;
                        return 0;
                }
                *unsure = false;
        }
        r = ldb_prepare(l, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r >= 0 && (r = ldb_step(st)) == 1) {
                size_t n;
                const void *p = ldb_col_blob(st, 1, &n);
                head = ldb_col_int64(st, 0);
                if (p && n == 32)
                        memcpy(prev, p, 32);
        }
        ldb_finalize(st);
        st = NULL;
        if (r >= 0)
                r = ldb_prepare_q(l, LDBQ_HIGH_WATER, &st);
        if (r >= 0 && (r = ldb_step(st)) == 1)
                hw = ldb_col_int64(st, 0);
        ldb_finalize(st);
        st = NULL;
        if (r < 0)
                goto fail;
        id = (hw > head ? hw : head) + 1;
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
        md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        EVP_DigestUpdate(md, prev, 32);
        EVP_DigestUpdate(md, idbuf, strlen(idbuf));
        EVP_DigestUpdate(md, tag, strlen(tag));
        EVP_DigestFinal_ex(md, hash, NULL);
        EVP_MD_CTX_free(md);
        snprintf(details, sizeof(details), "{\"tag\":\"%s\",\"i\":%d}", tag, i);
        /* The backend's own append (on PostgreSQL the procedure a station
         * role is limited to). */
        r = ldb_prepare_q(l, LDBQ_INSERT_EVENT, &st);
        if (r >= 0) {
                ldb_bind_int64(st, 1, id);
                ldb_bind_text(st, 2, "2026-01-01T00:00:00Z");
                ldb_bind_text(st, 3, tag);
                ldb_bind_text(st, 4, "probe");
                ldb_bind_text(st, 5, "probe");
                ldb_bind_null(st, 6);
                ldb_bind_text(st, 7, "record");
                ldb_bind_null(st, 8);
                ldb_bind_text(st, 9, "ok");
                ldb_bind_text(st, 10, details);
                ldb_bind_blob(st, 11, prev, 32);
                ldb_bind_blob(st, 12, hash, 32);
        }
        if (r >= 0)
                r = ldb_step(st);
        ldb_finalize(st);
        if (r < 0)
                goto fail;
        r = ldb_commit(l);
        if (r == -EAGAIN) {
                *unsure = true;
                memcpy(tried, hash, 32);
        }
        return r;
fail:
        ldb_rollback(l);
        return r;
}

int main(int argc, char **argv)
{
        struct ledger *l = NULL;
        fl_ctx *ctx = NULL;
        unsigned busy = 0;
        const char *cmd;
        int r, opt;

        while ((opt = getopt(argc, argv, "+b:")) != -1) {
                if (opt == 'b')
                        busy = (unsigned)strtoul(optarg, NULL, 10);
                else
                        return 2;
        }
        argc -= optind;
        argv += optind;
        if (argc < 3)
                return 2;
        cmd = argv[0];
        if (fl_ctx_new(&ctx) < 0)
                return 1;
        fl_ctx_set_log(ctx, log_stderr, NULL);
        /* "open read" and "sql/q … read" open the ledger read-only. */
        r = ledger_open(ctx, !strcmp(cmd, "open") ? argv[2] : argv[1],
                        !strcmp(!strcmp(cmd, "open") ? argv[1] : argv[2], "read") ? LEDGER_READ : LEDGER_WRITE, &l);
        if (r < 0)
                goto out;
        if (busy)
                ledger_set_busy_timeout(l, busy);
        if (!strcmp(cmd, "open")) {
                printf("version %d\n", l->version);
        } else if (!strcmp(cmd, "sql") && argc >= 5) {
                r = run_sql(l, argv[2], atoi(argv[3]), argv[4], 0, argv + 5, argc - 5);
        } else if (!strcmp(cmd, "q") && argc >= 5) {
                int qi = -1;
                for (int i = 0; i < LDBQ__MAX; i++)
                        if (!strcmp(qnames[i], argv[4]))
                                qi = i;
                if (qi == LDBQ_EVENT_COLS) { /* a column list: run it as the logic does */
                        char *sql = NULL;
                        if (asprintf(&sql, "SELECT %s FROM events ORDER BY id", l->ops->query[qi]) < 0)
                                r = -ENOMEM;
                        else
                                r = run_sql(l, argv[2], atoi(argv[3]), sql, 0, argv + 5, argc - 5);
                        free(sql);
                } else {
                        r = qi < 0 ? -EINVAL : run_sql(l, argv[2], atoi(argv[3]), NULL, qi, argv + 5, argc - 5);
                }
        } else if (!strcmp(cmd, "chain") && argc >= 4) {
                int n = atoi(argv[2]);
                uint64_t deadline = mono_ms() + l->busy_ms;
                unsigned char tried[32];
                bool unsure = false;
                for (int i = 0; i < n && r >= 0; i++) {
                        /* The caller's part of the contract: repeat the
                         * whole transaction on -EAGAIN/-EBUSY. */
                        while ((r = chain_one(l, argv[3], i, &unsure, tried)) == -EAGAIN || r == -EBUSY) {
                                if (mono_ms() >= deadline)
                                        break;
                                usleep(1000);
                        }
                }
        } else if (!strcmp(cmd, "hold")) {
                r = ldb_begin_write(l);
                if (r >= 0) {
                        printf("holding\n");
                        fflush(stdout);
                        sleep((unsigned)atoi(argv[2]));
                        r = ldb_commit(l);
                }
        } else {
                r = -EINVAL;
        }
out:
        if (r < 0 && fl_ctx_last_error(ctx))
                fprintf(stderr, "ldb-probe: error: %s\n", fl_ctx_last_error(ctx));
        ledger_close(l);
        fl_ctx_free(ctx);
        return r < 0 ? -r : 0;
}
