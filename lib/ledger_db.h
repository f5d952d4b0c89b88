/* ledger_db.h — the one interface between the ledger's logic (append, read,
 * verify, checkpoints, sync, migrate) and its storage. Two backends implement
 * it, one file each:
 *   ledger_sqlite.c  a path: one SQLite file (WAL), one station
 *   ledger_pg.c      a postgresql:// or postgres:// URI (libpq): many stations
 *
 * The logic files hold no backend calls and no dialect: they use the ldb_*
 * functions below and portable SQL (placeholders ?1 ?2 …, which the
 * PostgreSQL backend rewrites to $1 $2 …). Where the two dialects differ
 * (type checks, JSON, catalog queries, the highest id ever issued), the logic
 * names a query from enum ldb_query and each backend supplies its own text.
 *
 * Errors: every function that can fail returns a negative errno and has
 * recorded a one-line message naming the ledger (l->name), mapped as:
 *   -EEXIST       a constraint refused the change (unique, check, trigger)
 *   -EBUSY        other writers held the chain lock past the busy timeout
 *   -ENOSPC       the disk (or the server's) is full
 *   -EINVAL       read-only database/role, not a fuseline ledger, newer schema
 *   -EHOSTUNREACH the server cannot be reached (after the bounded retries)
 *   -EBADMSG      corrupt storage
 *   -EIO          anything else
 * A transient failure (SQLite busy, PostgreSQL serialization failure or
 * deadlock, a dropped connection) inside ldb_begin_write … ldb_commit is
 * reported as -EAGAIN by ldb_step/ldb_commit: the caller rolls back and
 * repeats the whole transaction (ledger_append does, with back-off, until
 * the busy timeout). -EAGAIN from ldb_commit itself may mean the answer was
 * lost after the server committed: before repeating, the caller looks, in
 * its next write transaction, for what it wrote (ledger_append: the last
 * event's hash) and stops if it is there.
 *
 * Messages: begin_*, prepare and open say what they were doing ("ledger
 * NAME: starting a transaction: …"); step, commit and exec record only
 * "ledger NAME: why" (e.g. "ledger NAME: the disk is full (…)"), and the
 * logic (db_fail in ledger.c) inserts what it was doing after the name.
 *
 * Binding: a failed bind also makes the next step fail (so the logic may
 * ignore bind results); reset clears every binding to NULL.
 *
 * Names: ledger_open sets l->name for a path; for a URI it leaves it NULL
 * and the backend's open sets it (without any password) before any
 * message. close must cope with a half-done open (l->be NULL or partly
 * set up). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger;

/* What the logic may use of struct ledger (ledger_int.h), besides the
 * fl_ctx, mode, version and busy timeout:
 *   const struct ldb_ops *ops;  the backend
 *   void *be;                   the backend's own connection state
 *   char *name;                 how messages name it: the path, or the URI
 *                               with any password removed
 * Every backend statement starts with this, so the wrappers find the ops. */
struct ldb_stmt {
        struct ledger *l;
};

enum ldb_type { LDB_NULL = 0, LDB_INT, LDB_TEXT, LDB_BLOB, LDB_OTHER };

/* Queries whose text differs between the dialects. Each backend's table
 * has every entry; the comment says what the result must be. */
enum ldb_query {
        /* The event columns in this order, for "SELECT <cols> FROM events …":
         * id, time, station, operator, command, ecid, kind, intent_id,
         * outcome, details, prev_hash, hash, then the storage type names of
         * id and intent_id as text ('integer', 'null', or anything else for
         * a tampered type). The logic appends "FROM events …" to
         * "SELECT <this>". Text columns: col_type LDB_TEXT, and col_blob on
         * them gives their bytes (its length is checked against strlen, so
         * an embedded NUL shows); hashes are LDB_BLOB. */
        LDBQ_EVENT_COLS = 0,
        /* One row, one integer: the highest event id ever issued, even if
         * that event has since been removed (0 for none). Read inside the
         * append's write transaction and by verify (TRUNCATED fault). */
        LDBQ_HIGH_WATER,
        /* ?1 = ECID: (id, device JSON text) of the newest event for the ECID
         * whose details carry a "device" object. */
        LDBQ_LAST_DEVICE_SNAPSHOT,
        /* ?1 = ECID, ?2 = fingerprint: count of events for the ECID whose
         * details' certificate.sha256 is ?2. */
        LDBQ_COUNT_CERT_RECORDED,
        /* ?1 = ECID, ?2 = fingerprint: count of events for the ECID whose
         * details' certificate.superseded array holds ?2. */
        LDBQ_COUNT_CERT_SUPERSEDED,
        /* ?1 = guard name (e.g. "events_no_update"): count of such guards
         * (triggers) present and still guarding as created: on the table
         * the name says, for the events it was made for, unconditional. */
        LDBQ_GUARD_EXISTS,
        /* Certificates in insertion order:
         * fingerprint, ecid, der, status. (SQLite: ORDER BY rowid.) */
        LDBQ_CERTS_IN_ORDER,
        /* ?1 = ECID: the certificate columns ledger_int.h's CERT_COLS names,
         * oldest first (ORDER BY added, then insertion order). */
        LDBQ_CERTS_OF_ECID,
        /* After rows were inserted with their ids given (ledger migrate):
         * make checkpoints' id generator issue ids past them. Any rows. */
        LDBQ_CHECKPOINT_IDS_RESYNC,
        /* Append one event row: ?1 id, ?2 time, ?3 station, ?4 operator,
         * ?5 command, ?6 ecid, ?7 kind, ?8 intent_id, ?9 outcome,
         * ?10 details, ?11 prev_hash, ?12 hash; no rows. Inside a write
         * transaction (the chain lock held), with id past the highest ever
         * issued and prev_hash the head's hash (zeros for the first).
         * SQLite: a plain INSERT. PostgreSQL: CALL fuseline_append_event,
         * which refuses the row unless this transaction holds the chain lock
         * and the row continues the chain, so a station role needs no
         * INSERT privilege on events at all. */
        LDBQ_INSERT_EVENT,
        LDBQ__MAX
};

struct ldb_ops {
        const char *name; /* "sqlite", "postgresql" */
        /* Connect; check it is a fuseline ledger at a version this build
         * knows; LEDGER_WRITE creates/migrates the schema. Sets l->version. */
        int (*open)(struct ledger *l, const char *location);
        void (*close)(struct ledger *l);
        /* A write transaction holding the chain lock: while it is open no
         * other writer can append, so the head read inside stays the head. */
        int (*begin_write)(struct ledger *l);
        /* A read transaction: one consistent snapshot. */
        int (*begin_read)(struct ledger *l);
        int (*commit)(struct ledger *l);
        void (*rollback)(struct ledger *l); /* harmless outside a transaction */
        bool (*in_transaction)(struct ledger *l);
        int (*prepare)(struct ledger *l, const char *sql, struct ldb_stmt **ret);
        int (*bind_int64)(struct ldb_stmt *st, int idx, int64_t v);
        int (*bind_text)(struct ldb_stmt *st, int idx, const char *s); /* NULL binds NULL; copied */
        int (*bind_blob)(struct ldb_stmt *st, int idx, const void *p, size_t n); /* copied */
        int (*bind_null)(struct ldb_stmt *st, int idx);
        int (*step)(struct ldb_stmt *st); /* 1 row, 0 done, <0 error */
        void (*reset)(struct ldb_stmt *st); /* rewind and clear bindings */
        enum ldb_type (*col_type)(struct ldb_stmt *st, int i);
        int64_t (*col_int64)(struct ldb_stmt *st, int i);
        const char *(*col_text)(struct ldb_stmt *st, int i); /* NULL for NULL; valid until the next step */
        const void *(*col_blob)(struct ldb_stmt *st, int i, size_t *ret_len);
        void (*finalize)(struct ldb_stmt *st); /* accepts NULL */
        int (*exec)(struct ledger *l, const char *sql); /* no parameters, no rows */
        /* (An INSERT that needs its new id says "… RETURNING id": both
         * SQLite >= 3.35 and PostgreSQL take it.) */
        const char *query[LDBQ__MAX];
        /* Optional (NULL: never): the last write transaction's -EAGAIN
         * came from a lost connection (not a serialization failure), so a
         * caller whose retries ran out reports the server unreachable
         * (-EHOSTUNREACH) rather than busy. Cleared by begin_write. */
        bool (*conn_was_lost)(struct ledger *l);
        /* TRUNCATE (which fires no row trigger) is refused by guards of its
         * own, "<table>_no_truncate", which verify then expects. */
        bool truncate_guards;
};

extern const struct ldb_ops ldb_sqlite_ops;
extern const struct ldb_ops ldb_pg_ops;

/* The backend a location names: postgresql:// or postgres:// -> PostgreSQL,
 * anything else a SQLite path. */
const struct ldb_ops *ldb_ops_for(const char *location);
bool ldb_is_uri(const char *location);

/* Thin wrappers over l->ops (defined in ledger_db.c). */
int ldb_begin_write(struct ledger *l);
int ldb_begin_read(struct ledger *l);
int ldb_commit(struct ledger *l);
void ldb_rollback(struct ledger *l);
bool ldb_in_transaction(struct ledger *l);
int ldb_prepare(struct ledger *l, const char *sql, struct ldb_stmt **ret);
int ldb_prepare_q(struct ledger *l, enum ldb_query q, struct ldb_stmt **ret);
int ldb_bind_int64(struct ldb_stmt *st, int idx, int64_t v);
int ldb_bind_text(struct ldb_stmt *st, int idx, const char *s);
int ldb_bind_blob(struct ldb_stmt *st, int idx, const void *p, size_t n);
int ldb_bind_null(struct ldb_stmt *st, int idx);
int ldb_step(struct ldb_stmt *st);
void ldb_reset(struct ldb_stmt *st);
enum ldb_type ldb_col_type(struct ldb_stmt *st, int i);
int64_t ldb_col_int64(struct ldb_stmt *st, int i);
const char *ldb_col_text(struct ldb_stmt *st, int i);
const void *ldb_col_blob(struct ldb_stmt *st, int i, size_t *ret_len);
void ldb_finalize(struct ldb_stmt *st);
int ldb_exec(struct ledger *l, const char *sql);
bool ldb_conn_was_lost(struct ledger *l);
