/* ledger_db.c — the ldb_* functions of ledger_db.h: which backend a
 * location names, and thin dispatch through the ledger's (or the
 * statement's ledger's) ops. */
#include "ledger_int.h"

bool ldb_is_uri(const char *location)
{
        return location && (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11));
}

const struct ldb_ops *ldb_ops_for(const char *location)
{
        if (ldb_is_uri(location))
                return &ldb_pg_ops;
        return &ldb_sqlite_ops;
}

int ldb_begin_write(struct ledger *l)
{
        return l->ops->begin_write(l);
}

int ldb_begin_read(struct ledger *l)
{
        return l->ops->begin_read(l);
}

int ldb_commit(struct ledger *l)
{
        return l->ops->commit(l);
}

void ldb_rollback(struct ledger *l)
{
        l->ops->rollback(l);
}

bool ldb_in_transaction(struct ledger *l)
{
        return l->ops->in_transaction(l);
}

int ldb_prepare(struct ledger *l, const char *sql, struct ldb_stmt **ret)
{
        return l->ops->prepare(l, sql, ret);
}

int ldb_prepare_q(struct ledger *l, enum ldb_query q, struct ldb_stmt **ret)
{
        if ((unsigned)q >= LDBQ__MAX || !l->ops->query[q])
                return fl_err(l->ctx, -EINVAL, "ledger %s: the %s backend has no query %d", l->name, l->ops->name,
                              (int)q);
        return l->ops->prepare(l, l->ops->query[q], ret);
}

int ldb_bind_int64(struct ldb_stmt *st, int idx, int64_t v)
{
        return st->l->ops->bind_int64(st, idx, v);
}

int ldb_bind_text(struct ldb_stmt *st, int idx, const char *s)
{
        return st->l->ops->bind_text(st, idx, s);
}

int ldb_bind_blob(struct ldb_stmt *st, int idx, const void *p, size_t n)
{
        return st->l->ops->bind_blob(st, idx, p, n);
}

int ldb_bind_null(struct ldb_stmt *st, int idx)
{
        return st->l->ops->bind_null(st, idx);
}

int ldb_step(struct ldb_stmt *st)
{
        return st->l->ops->step(st);
}

void ldb_reset(struct ldb_stmt *st)
{
        st->l->ops->reset(st);
}

enum ldb_type ldb_col_type(struct ldb_stmt *st, int i)
{
        return st->l->ops->col_type(st, i);
}

int64_t ldb_col_int64(struct ldb_stmt *st, int i)
{
        return st->l->ops->col_int64(st, i);
}

const char *ldb_col_text(struct ldb_stmt *st, int i)
{
        return st->l->ops->col_text(st, i);
}

const void *ldb_col_blob(struct ldb_stmt *st, int i, size_t *ret_len)
{
        return st->l->ops->col_blob(st, i, ret_len);
}

void ldb_finalize(struct ldb_stmt *st)
{
        if (st)
                st->l->ops->finalize(st);
}

int ldb_exec(struct ledger *l, const char *sql)
{
        return l->ops->exec(l, sql);
}

bool ldb_conn_was_lost(struct ledger *l)
{
        return l->ops->conn_was_lost && l->ops->conn_was_lost(l);
}
