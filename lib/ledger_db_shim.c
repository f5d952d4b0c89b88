/* ledger_db_shim.c — TEMPORARY: the ldb_* wrappers of ledger_db.h over the
 * current SQLite-only struct ledger, so sync/migrate can be written on the
 * storage interface before the ldb port lands. Deleted when branch ldb is
 * merged (its ledger_db.c replaces this file). */
#include "ledger_int.h"
#include "ledger_db.h"

struct shim_stmt {
        struct ldb_stmt base;
        sqlite3_stmt *st;
};

#define SH(s) ((struct shim_stmt *)(s))

bool ldb_is_uri(const char *location)
{
        return location && (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11));
}

int ldb_begin_write(struct ledger *l)
{
        int rc = begin_immediate(l);
        return rc == SQLITE_OK ? 0 : sql_err(l, rc, "starting a transaction");
}

int ldb_begin_read(struct ledger *l)
{
        int rc = sqlite3_exec(l->db, "BEGIN", NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : sql_err(l, rc, "starting to read");
}

int ldb_commit(struct ledger *l)
{
        int rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
        if ((rc & 0xff) == SQLITE_BUSY)
                return -EAGAIN;
        return rc == SQLITE_OK ? 0 : sql_err(l, rc, "committing");
}

void ldb_rollback(struct ledger *l)
{
        if (!sqlite3_get_autocommit(l->db))
                sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
}

bool ldb_in_transaction(struct ledger *l)
{
        return !sqlite3_get_autocommit(l->db);
}

int ldb_prepare(struct ledger *l, const char *sql, struct ldb_stmt **ret)
{
        struct shim_stmt *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->base.l = l;
        r = stmt(l, sql, &s->st);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = &s->base;
        return 0;
}

int ldb_prepare_q(struct ledger *l, enum ldb_query q, struct ldb_stmt **ret)
{
        switch (q) {
        case LDBQ_HIGH_WATER:
                return ldb_prepare(l, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                                   ret);
        default:
                return -ENOTSUP;
        }
}

int ldb_bind_int64(struct ldb_stmt *st, int idx, int64_t v)
{
        sqlite3_bind_int64(SH(st)->st, idx, v);
        return 0;
}

int ldb_bind_text(struct ldb_stmt *st, int idx, const char *s)
{
        if (!s)
                sqlite3_bind_null(SH(st)->st, idx);
        else
                sqlite3_bind_text(SH(st)->st, idx, s, -1, SQLITE_TRANSIENT);
        return 0;
}

int ldb_bind_blob(struct ldb_stmt *st, int idx, const void *p, size_t n)
{
        sqlite3_bind_blob(SH(st)->st, idx, p, (int)n, SQLITE_TRANSIENT);
        return 0;
}

int ldb_bind_null(struct ldb_stmt *st, int idx)
{
        sqlite3_bind_null(SH(st)->st, idx);
        return 0;
}

int ldb_step(struct ldb_stmt *st)
{
        int rc = sqlite3_step(SH(st)->st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        if ((rc & 0xff) == SQLITE_BUSY)
                return -EAGAIN;
        return sql_err(st->l, rc, "running a query");
}

void ldb_reset(struct ldb_stmt *st)
{
        sqlite3_reset(SH(st)->st);
        sqlite3_clear_bindings(SH(st)->st);
}

enum ldb_type ldb_col_type(struct ldb_stmt *st, int i)
{
        switch (sqlite3_column_type(SH(st)->st, i)) {
        case SQLITE_NULL:
                return LDB_NULL;
        case SQLITE_INTEGER:
                return LDB_INT;
        case SQLITE_TEXT:
                return LDB_TEXT;
        case SQLITE_BLOB:
                return LDB_BLOB;
        default:
                return LDB_OTHER;
        }
}

int64_t ldb_col_int64(struct ldb_stmt *st, int i)
{
        return sqlite3_column_int64(SH(st)->st, i);
}

const char *ldb_col_text(struct ldb_stmt *st, int i)
{
        return (const char *)sqlite3_column_text(SH(st)->st, i);
}

const void *ldb_col_blob(struct ldb_stmt *st, int i, size_t *ret_len)
{
        const void *p = sqlite3_column_blob(SH(st)->st, i);
        *ret_len = (size_t)sqlite3_column_bytes(SH(st)->st, i);
        return p;
}

void ldb_finalize(struct ldb_stmt *st)
{
        if (!st)
                return;
        sqlite3_finalize(SH(st)->st);
        free(st);
}

int ldb_exec(struct ledger *l, const char *sql)
{
        int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : sql_err(l, rc, "running a statement");
}
