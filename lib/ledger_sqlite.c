/* ledger_sqlite.c — the ledger's SQLite backend (struct ldb_ops of
 * ledger_db.h): schema and migrations, SQLite result codes as the library's
 * errors, opening (identity check, WAL, read-only media) and closing,
 * transactions, statements, and the SQLite texts of the dialect queries.
 * The only ledger file that talks to SQLite. */
#include <limits.h>
#include <sqlite3.h>

#include "ledger_int.h"

#define STEP_BUSY_MS 2000 /* SQLite's own wait per statement; the append loop retries around it */

/* The backend's connection state (l->be). */
struct sq {
        sqlite3 *db;
        bool immutable;      /* opened with immutable=1 (read-only media) */
        bool writing;        /* inside begin_write … commit/rollback */
        char saved_err[256]; /* SQLite's text, kept across a ROLLBACK that resets it */
};

struct sq_stmt {
        struct ldb_stmt base;
        sqlite3_stmt *st;
        int bind_rc; /* the first failed bind: the next step reports it */
};

static struct sq *SQ(struct ledger *l)
{
        return l->be;
}

static sqlite3_stmt *ST(struct ldb_stmt *st)
{
        return ((struct sq_stmt *)st)->st;
}

/* ---- schema ------------------------------------------------------------- */

/* Migrations: entry i takes the schema from version i to i+1. Never edit an
 * entry once released; add one. */
static const char *const migrations[LEDGER_SCHEMA_VERSION] = {
        /* 0 -> 1: devices, certificates, events. STRICT so a column cannot
         * silently hold another type than the chain hashed. */
        "CREATE TABLE devices ("
        "  ecid TEXT PRIMARY KEY NOT NULL"
        "    CHECK (length(ecid) = 32 AND ecid NOT GLOB '*[^0-9a-f]*'),"
        "  chip TEXT CHECK (chip IN ('t194', 't234')),"
        "  module TEXT,"
        "  serial TEXT UNIQUE,"
        "  first_seen TEXT NOT NULL,"
        "  last_seen TEXT NOT NULL,"
        "  state TEXT NOT NULL"
        "    CHECK (state IN ('blank','planned','fused-test','fused','enrolled','failed'))"
        ") STRICT;"
        "CREATE TABLE certificates ("
        "  fingerprint TEXT PRIMARY KEY NOT NULL,"
        "  ecid TEXT NOT NULL REFERENCES devices(ecid),"
        "  der BLOB NOT NULL,"
        "  issuer TEXT NOT NULL,"
        "  serial TEXT NOT NULL,"
        "  not_before TEXT NOT NULL,"
        "  not_after TEXT NOT NULL,"
        "  status TEXT NOT NULL CHECK (status IN ('valid','superseded','revoked')),"
        "  added TEXT NOT NULL"
        ") STRICT;"
        "CREATE INDEX certificates_ecid ON certificates(ecid);"
        "CREATE UNIQUE INDEX certificates_one_valid ON certificates(ecid) WHERE status = 'valid';"
        /* AUTOINCREMENT only for sqlite_sequence: it remembers the highest
         * id ever issued, so deleting the newest events shows. Ids are
         * assigned by the writer (they are part of the hashed bytes). */
        "CREATE TABLE events ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  time TEXT NOT NULL,"
        "  station TEXT NOT NULL,"
        "  operator TEXT NOT NULL,"
        "  command TEXT NOT NULL,"
        "  ecid TEXT,"
        "  kind TEXT NOT NULL CHECK (kind IN ('record','intent','result')),"
        "  intent_id INTEGER REFERENCES events(id),"
        "  outcome TEXT NOT NULL,"
        "  details TEXT NOT NULL,"
        "  prev_hash BLOB NOT NULL,"
        "  hash BLOB NOT NULL"
        ") STRICT;"
        "CREATE INDEX events_ecid ON events(ecid) WHERE ecid IS NOT NULL;"
        "CREATE INDEX events_intent ON events(intent_id) WHERE intent_id IS NOT NULL;"
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: events are append-only; UPDATE refused'); END;"
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: events are append-only; DELETE refused'); END;"
        "CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: certificates are never deleted'); END;"
        "CREATE TRIGGER certificates_fixed BEFORE UPDATE OF fingerprint, ecid, der, issuer, serial,"
        "  not_before, not_after, added ON certificates BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: only a certificate''s status changes'); END;"
        "CREATE TRIGGER devices_no_delete BEFORE DELETE ON devices BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: devices are never deleted'); END;",

        /* 1 -> 2: signed checkpoints of the chain head. */
        "CREATE TABLE checkpoints ("
        "  id INTEGER PRIMARY KEY,"
        "  time TEXT NOT NULL,"
        "  event_id INTEGER NOT NULL REFERENCES events(id),"
        "  head_hash BLOB NOT NULL,"
        "  role TEXT NOT NULL,"
        "  key_uri TEXT NOT NULL,"
        "  scheme TEXT NOT NULL,"
        "  public_key BLOB NOT NULL,"
        "  signature BLOB NOT NULL"
        ") STRICT;"
        "CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: checkpoints are append-only; UPDATE refused'); END;"
        "CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: checkpoints are append-only; DELETE refused'); END;",

        /* 2 -> 3: store and forward (ledger_sync.c). forwarded, on the
         * central ledger: which spool event each forwarded event is (the
         * spool's id is the hash of its first event, seq its local id);
         * the key makes an upload idempotent, in the event's transaction.
         * spool_uploaded, in a spool: which local events the central
         * ledger holds, as which event. Both append-only. */
        "CREATE TABLE forwarded ("
        "  spool TEXT NOT NULL CHECK (length(spool) = 64 AND spool NOT GLOB '*[^0-9a-f]*'),"
        "  seq INTEGER NOT NULL CHECK (seq > 0),"
        "  event_id INTEGER NOT NULL UNIQUE REFERENCES events(id),"
        "  PRIMARY KEY (spool, seq)"
        ") STRICT;"
        "CREATE TABLE spool_uploaded ("
        "  seq INTEGER PRIMARY KEY REFERENCES events(id),"
        "  event_id INTEGER NOT NULL CHECK (event_id > 0),"
        "  central TEXT NOT NULL,"
        "  time TEXT NOT NULL"
        ") STRICT;"
        "CREATE TRIGGER forwarded_no_update BEFORE UPDATE ON forwarded BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: forwarded is append-only; UPDATE refused'); END;"
        "CREATE TRIGGER forwarded_no_delete BEFORE DELETE ON forwarded BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: forwarded is append-only; DELETE refused'); END;"
        "CREATE TRIGGER spool_uploaded_no_update BEFORE UPDATE ON spool_uploaded BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: spool_uploaded is append-only; UPDATE refused'); END;"
        "CREATE TRIGGER spool_uploaded_no_delete BEFORE DELETE ON spool_uploaded BEGIN"
        "  SELECT RAISE(ABORT, 'fuseline ledger: spool_uploaded is append-only; DELETE refused'); END;",
};

/* ---- errors ------------------------------------------------------------- */

static int rc_to_errno(int rc)
{
        /* A value the column refuses (NOT NULL, CHECK) is bad input, as
         * ledger_pg.c maps 23502/23514; unique keys and the guards'
         * RAISE(ABORT) are conflicts (-EEXIST). */
        if (rc == SQLITE_CONSTRAINT_NOTNULL || rc == SQLITE_CONSTRAINT_CHECK)
                return -EINVAL;
        switch (rc & 0xff) {
        case SQLITE_OK:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        /* A database the user cannot write or open is a bad path (exit 2),
         * like any unwritable output; -EACCES means token/PIN here. */
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EINVAL;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_NOTADB:
                return -EINVAL;
        case SQLITE_CORRUPT:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
                return -EINVAL;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_TOOBIG:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* Record an SQLite failure as a one-line error naming the ledger. what
 * says what failed ("reading the schema"); NULL leaves it out (a failing
 * step: the logic adds its own with ledger_db_what()). */
static int sql_err(struct ledger *l, int rc, const char *what)
{
        struct sq *q = SQ(l);
        sqlite3 *db = q ? q->db : NULL;
        int r = rc_to_errno(rc);
        char saved[sizeof(q->saved_err)], pre[128];
        const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

        /* A ROLLBACK after the failure resets the connection's text to
         * "not an error": prefer what was saved before it, else the code's. */
        if (q && q->saved_err[0]) {
                snprintf(saved, sizeof(saved), "%s", q->saved_err);
                q->saved_err[0] = 0;
                msg = saved;
        } else if (db && sqlite3_errcode(db) == SQLITE_OK) {
                msg = sqlite3_errstr(rc);
        }
        snprintf(pre, sizeof(pre), "%s%s", what ? what : "", what ? ": " : "");
        if ((rc & 0xff) == SQLITE_CANTOPEN && l->mode == LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: %s%s (read-only media or directory? a writer must be "
                              "able to create %s-wal and %s-shm beside it)", l->name, pre, msg, l->name, l->name);

        if ((rc & 0xff) == SQLITE_READONLY)
                return fl_err(l->ctx, r, "ledger %s: %sthe database is read-only (%s)", l->name, pre, msg);
        if ((rc & 0xff) == SQLITE_FULL)
                return fl_err(l->ctx, r, "ledger %s: %sthe disk is full (%s)", l->name, pre, msg);
        if ((rc & 0xff) == SQLITE_NOTADB)
                return fl_err(l->ctx, r, "ledger %s: not an SQLite database", l->name);
        if ((rc & 0xff) == SQLITE_CORRUPT)
                return fl_err(l->ctx, r, "ledger %s: the database file is corrupt (%s)", l->name, msg);
        if ((rc & 0xff) == SQLITE_BUSY)
                return fl_err(l->ctx, r, "ledger %s: %sother writers held the database too long (%s)", l->name, pre,
                              msg);
        return fl_err(l->ctx, r, "ledger %s: %s%s", l->name, pre, msg);
}

/* A failure inside a write transaction: a busy database is transient
 * there (-EAGAIN: the caller rolls back and repeats the transaction). */
static int txn_err(struct ledger *l, int rc, const char *what)
{
        int r = sql_err(l, rc, what);

        return (rc & 0xff) == SQLITE_BUSY && SQ(l)->writing ? -EAGAIN : r;
}

/* ---- opening ------------------------------------------------------------ */

static int pragma_int(sqlite3 *db, const char *sql, int *ret)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

struct db_identity {
        int app_id, version, objects;
};

static int read_identity(struct ledger *l, struct db_identity *id)
{
        /* One read transaction: another process may be creating the schema
         * right now, and the three values must come from one state. */
        struct sq *q = SQ(l);
        bool own = sqlite3_get_autocommit(q->db);
        int rc = own ? sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL) : SQLITE_OK;

        if (rc == SQLITE_OK)
                rc = pragma_int(q->db, "PRAGMA application_id", &id->app_id);
        if (rc == SQLITE_OK)
                rc = pragma_int(q->db, "PRAGMA user_version", &id->version);
        if (rc == SQLITE_OK)
                rc = pragma_int(q->db, "SELECT count(*) FROM sqlite_master", &id->objects);
        if (rc != SQLITE_OK)
                snprintf(q->saved_err, sizeof(q->saved_err), "%s", sqlite3_errmsg(q->db));
        if (own && !sqlite3_get_autocommit(q->db))
                sqlite3_exec(q->db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        return rc;
}

static int check_identity(struct ledger *l, const struct db_identity *id)
{
        if (id->app_id != LEDGER_APP_ID && id->objects > 0)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: an SQLite database, but not a fuseline ledger (application_id 0x%08x)",
                              l->name, (unsigned)id->app_id);
        if (id->version > LEDGER_SCHEMA_VERSION)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: schema version %d is newer than this fuseline understands (%d); "
                              "use a newer fuseline",
                              l->name, id->version, LEDGER_SCHEMA_VERSION);
        if (l->mode == LEDGER_READ && (id->objects == 0 || id->version < 1))
                return fl_err(l->ctx, -EINVAL, "ledger %s: empty database, no fuseline ledger in it", l->name);
        return 0;
}

/* BEGIN IMMEDIATE, waiting up to the busy timeout: takes the write lock up
 * front, so what is read inside the transaction stays true until commit. */
static int begin_immediate(struct ledger *l)
{
        uint64_t deadline = mono_ms() + l->busy_ms;
        unsigned backoff = 1;
        int rc;

        for (;;) {
                rc = sqlite3_exec(SQ(l)->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                if ((rc & 0xff) != SQLITE_BUSY || mono_ms() >= deadline)
                        return rc;
                sleep_ms(backoff + (unsigned)(rand() % 8));
                if (backoff < 50)
                        backoff *= 2;
        }
}

static int migrate(struct ledger *l)
{
        sqlite3 *db = SQ(l)->db;
        struct db_identity id;
        char sql[64];
        int rc, r;

        rc = begin_immediate(l);
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "starting the schema update");
        /* Another process may have created or migrated it meanwhile. */
        rc = read_identity(l, &id);
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "reading the schema version");
                goto fail;
        }
        r = check_identity(l, &id);
        if (r < 0)
                goto fail;
        if (id.version > 0)
                fl_log(l->ctx, FL_LOG_INFO, "ledger %s: migrating schema %d -> %d", l->name, id.version,
                       LEDGER_SCHEMA_VERSION);
        for (int v = id.version; v < LEDGER_SCHEMA_VERSION; v++) {
                rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        snprintf(sql, sizeof(sql), "schema update %d -> %d", v, v + 1);
                        r = sql_err(l, rc, sql);
                        goto fail;
                }
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LEDGER_SCHEMA_VERSION);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
                snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", LEDGER_APP_ID);
                rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "committing the schema update");
                goto fail;
        }
        return 0;
fail:
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static int set_wal(struct ledger *l)
{
        uint64_t deadline = mono_ms() + l->busy_ms;
        sqlite3_stmt *st = NULL;
        int rc;

        for (;;) {
                rc = sqlite3_prepare_v2(SQ(l)->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        const char *m = (const char *)sqlite3_column_text(st, 0);
                        rc = m && !strcmp(m, "wal") ? SQLITE_OK : SQLITE_ERROR;
                }
                sqlite3_finalize(st);
                st = NULL;
                if ((rc & 0xff) != SQLITE_BUSY || mono_ms() >= deadline)
                        break;
                sleep_ms(5);
        }
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "switching to WAL mode");
        return 0;
}

static bool readonly_media_rc(int rc)
{
        /* Not SQLITE_BUSY: a writer holding a lock is no reason to read
         * without locks. */
        return (rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY || rc == SQLITE_IOERR_SHMOPEN ||
               rc == SQLITE_IOERR_SHMSIZE || rc == SQLITE_IOERR_SHMMAP || rc == SQLITE_IOERR_SHMLOCK;
}

static void connection_setup(sqlite3 *db)
{
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, STEP_BUSY_MS);
        /* A ledger file may come from elsewhere: no schema-defined SQL
         * functions with side effects, no writable_schema tricks. */
        sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
}

/* Reopen as file:PATH?mode=ro&immutable=1 (no locks, no -shm). Refused when
 * a non-empty write-ahead log sits beside it: immutable readers ignore the
 * log, and the newest events may be only there. */
static int reopen_immutable(struct ledger *l)
{
        struct sq *q = SQ(l);
        char *wal = NULL, *uri = NULL;
        struct stat st;
        int rc, r;

        if (asprintf(&wal, "%s-wal", l->name) < 0)
                return -ENOMEM;
        r = stat(wal, &st) == 0 && st.st_size > 0;
        free(wal);
        if (r)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: on read-only media with a non-empty write-ahead log (%s-wal) that SQLite "
                              "cannot replay there: copy both files to writable storage and read the copy",
                              l->name, l->name);
        uri = sqlite3_mprintf("file:%s?mode=ro&immutable=1", l->name);
        if (!uri)
                return -ENOMEM;
        /* Characters that mean something in a URI must be escaped. */
        if (strpbrk(l->name, "?#%")) {
                sqlite3_free(uri);
                return fl_err(l->ctx, -EINVAL, "ledger %s: on read-only media, and its name has ?, # or %%: "
                              "rename it to read it there", l->name);
        }
        sqlite3_close_v2(q->db);
        q->db = NULL;
        rc = sqlite3_open_v2(uri, &q->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW, NULL);
        sqlite3_free(uri);
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "cannot open read-only");
        connection_setup(q->db);
        q->immutable = true;
        fl_log(l->ctx, FL_LOG_INFO, "ledger %s: read-only media: reading it as immutable", l->name);
        return 0;
}

static int sq_open(struct ledger *l, const char *path)
{
        enum ledger_mode mode = l->mode;
        struct db_identity id;
        struct stat st;
        struct sq *q;
        int rc, r, flags;

        if (stat(path, &st) < 0) {
                r = -errno;
                if (r != -ENOENT || mode == LEDGER_READ)
                        return fl_err(l->ctx, r == -ENOENT ? -ENOENT : -EINVAL, "ledger %s: %s%s", path,
                                      strerror(-r),
                                      r == -ENOENT ? " (no ledger yet: commands that record, such as burn "
                                                     "and enroll, create it)"
                                                   : "");
        } else if (!S_ISREG(st.st_mode)) {
                return fl_err(l->ctx, -EINVAL, "ledger %s: not a regular file", path);
        }

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        l->be = q;
        flags = (mode == LEDGER_READ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOFOLLOW;
        rc = sqlite3_open_v2(path, &q->db, flags, NULL);
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "cannot open");
        connection_setup(q->db);

        rc = read_identity(l, &id);
        if (rc != SQLITE_OK && mode == LEDGER_READ && readonly_media_rc(rc)) {
                /* Read-only media (a remounted file system, a WORM archive):
                 * SQLite cannot create the -shm file or take its locks.
                 * Nothing can change the file there, so read it as such. */
                q->saved_err[0] = 0;
                r = reopen_immutable(l);
                if (r < 0)
                        return r;
                rc = read_identity(l, &id);
        }
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "reading the schema");
        r = check_identity(l, &id);
        if (r < 0)
                return r;

        if (mode == LEDGER_READ) {
                rc = sqlite3_exec(q->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
                if (rc != SQLITE_OK)
                        return sql_err(l, rc, "opening read-only");
                l->version = id.version;
                return 0;
        }
        if (sqlite3_db_readonly(q->db, "main") == 1) {
                struct statvfs vfs;
                bool rofs = statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
                return fl_err(l->ctx, -EINVAL, "ledger %s: the database is read-only (%s)", path,
                              rofs ? "read-only file system" : "file permissions or an immutable file");
        }
        r = set_wal(l);
        if (r < 0)
                return r;
        /* FULL: a committed event is on disk before append returns (an
         * intent must survive power loss before a burn). */
        rc = sqlite3_exec(q->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "setting up the connection");
        if (id.version < LEDGER_SCHEMA_VERSION) {
                r = migrate(l);
                if (r < 0)
                        return r;
        }
        l->version = LEDGER_SCHEMA_VERSION;
        return 0;
}

static void sq_close(struct ledger *l)
{
        struct sq *q = SQ(l);

        if (!q)
                return;
        if (q->db)
                sqlite3_close_v2(q->db);
        free(q);
        l->be = NULL;
}

/* ---- transactions ------------------------------------------------------- */

static int sq_begin_write(struct ledger *l)
{
        int rc = begin_immediate(l);

        if (rc != SQLITE_OK)
                return sql_err(l, rc, "starting a transaction");
        SQ(l)->writing = true;
        return 0;
}

static int sq_begin_read(struct ledger *l)
{
        int rc = sqlite3_exec(SQ(l)->db, "BEGIN", NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : sql_err(l, rc, "starting to read");
}

static int sq_commit(struct ledger *l)
{
        int rc = sqlite3_exec(SQ(l)->db, "COMMIT", NULL, NULL, NULL);

        if (rc != SQLITE_OK)
                return txn_err(l, rc, "committing");
        SQ(l)->writing = false;
        return 0;
}

static void sq_rollback(struct ledger *l)
{
        struct sq *q = SQ(l);

        /* A failed statement may already have rolled the transaction back
         * (SQLITE_FULL does); ROLLBACK would then just say "no transaction". */
        if (!sqlite3_get_autocommit(q->db))
                sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        q->writing = false;
}

static bool sq_in_transaction(struct ledger *l)
{
        return !sqlite3_get_autocommit(SQ(l)->db);
}

/* ---- statements --------------------------------------------------------- */

static int sq_prepare(struct ledger *l, const char *sql, struct ldb_stmt **ret)
{
        struct sq_stmt *s = calloc(1, sizeof(*s));
        int rc;

        if (!s)
                return -ENOMEM;
        s->base.l = l;
        rc = sqlite3_prepare_v2(SQ(l)->db, sql, -1, &s->st, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_finalize(s->st);
                free(s);
                return sql_err(l, rc, "preparing a query");
        }
        *ret = &s->base;
        return 0;
}

static int bound(struct ldb_stmt *st, int rc)
{
        struct sq_stmt *s = (struct sq_stmt *)st;

        if (rc == SQLITE_OK)
                return 0;
        if (!s->bind_rc)
                s->bind_rc = rc;
        return sql_err(st->l, rc, "binding a value");
}

static int sq_bind_int64(struct ldb_stmt *st, int idx, int64_t v)
{
        return bound(st, sqlite3_bind_int64(ST(st), idx, v));
}

static int sq_bind_text(struct ldb_stmt *st, int idx, const char *s)
{
        return bound(st, s ? sqlite3_bind_text(ST(st), idx, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(ST(st), idx));
}

static int sq_bind_blob(struct ldb_stmt *st, int idx, const void *p, size_t n)
{
        if (n > INT_MAX)
                return bound(st, SQLITE_TOOBIG);
        return bound(st, sqlite3_bind_blob(ST(st), idx, p ? p : "", (int)n, SQLITE_TRANSIENT));
}

static int sq_bind_null(struct ldb_stmt *st, int idx)
{
        return bound(st, sqlite3_bind_null(ST(st), idx));
}

static int sq_step(struct ldb_stmt *st)
{
        struct sq_stmt *s = (struct sq_stmt *)st;
        int rc;

        if (s->bind_rc)
                return sql_err(st->l, s->bind_rc, "binding a value");
        rc = sqlite3_step(s->st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return txn_err(st->l, rc, NULL);
}

static void sq_reset(struct ldb_stmt *st)
{
        struct sq_stmt *s = (struct sq_stmt *)st;

        sqlite3_reset(s->st);
        sqlite3_clear_bindings(s->st);
        s->bind_rc = 0;
}

static enum ldb_type sq_col_type(struct ldb_stmt *st, int i)
{
        switch (sqlite3_column_type(ST(st), i)) {
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

static int64_t sq_col_int64(struct ldb_stmt *st, int i)
{
        return sqlite3_column_int64(ST(st), i);
}

static const char *sq_col_text(struct ldb_stmt *st, int i)
{
        return (const char *)sqlite3_column_text(ST(st), i);
}

static const void *sq_col_blob(struct ldb_stmt *st, int i, size_t *ret_len)
{
        const void *p = sqlite3_column_blob(ST(st), i);
        int n = sqlite3_column_bytes(ST(st), i);

        *ret_len = n > 0 ? (size_t)n : 0;
        return p;
}

static void sq_finalize(struct ldb_stmt *st)
{
        if (!st)
                return;
        sqlite3_finalize(ST(st));
        free(st);
}

static int sq_exec(struct ledger *l, const char *sql)
{
        int rc = sqlite3_exec(SQ(l)->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : txn_err(l, rc, NULL);
}

/* ---- the backend -------------------------------------------------------- */

const struct ldb_ops ldb_sqlite_ops = {
        .name = "sqlite",
        .open = sq_open,
        .close = sq_close,
        .begin_write = sq_begin_write,
        .begin_read = sq_begin_read,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .in_transaction = sq_in_transaction,
        .prepare = sq_prepare,
        .bind_int64 = sq_bind_int64,
        .bind_text = sq_bind_text,
        .bind_blob = sq_bind_blob,
        .bind_null = sq_bind_null,
        .step = sq_step,
        .reset = sq_reset,
        .col_type = sq_col_type,
        .col_int64 = sq_col_int64,
        .col_text = sq_col_text,
        .col_blob = sq_col_blob,
        .finalize = sq_finalize,
        .exec = sq_exec,
        .query = {
                /* typeof(): a tampered row can hold another type than the
                 * schema says (STRICT or not, a copy can be made without). */
                [LDBQ_EVENT_COLS] = "id, time, station, operator, command, ecid, kind, intent_id, outcome, details, "
                                    "prev_hash, hash, typeof(id), typeof(intent_id)",
                /* AUTOINCREMENT's sqlite_sequence remembers the highest id
                 * ever issued. */
                [LDBQ_HIGH_WATER] = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                [LDBQ_LAST_DEVICE_SNAPSHOT] =
                        "SELECT id, json_extract(details, '$.device') FROM events WHERE ecid = ?1 AND "
                        "json_valid(details) AND json_type(details, '$.device') = 'object' ORDER BY id DESC LIMIT 1",
                [LDBQ_COUNT_CERT_RECORDED] = "SELECT count(*) FROM events WHERE ecid = ?1 AND json_valid(details) "
                                             "AND json_extract(details, '$.certificate.sha256') = ?2",
                [LDBQ_COUNT_CERT_SUPERSEDED] = "SELECT count(*) FROM events, json_each(events.details, "
                                               "'$.certificate.superseded') AS j WHERE events.ecid = ?1 "
                                               "AND json_valid(events.details) AND j.value = ?2",
                [LDBQ_GUARD_EXISTS] = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [LDBQ_CERTS_IN_ORDER] = "SELECT fingerprint, ecid, der, status FROM certificates ORDER BY rowid",
                [LDBQ_CERTS_OF_ECID] = "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 ORDER BY added, rowid",
                /* rowid ids follow max(id) by themselves */
                [LDBQ_CHECKPOINT_IDS_RESYNC] = "SELECT 1",
                [LDBQ_INSERT_EVENT] = "INSERT INTO events (id, time, station, operator, command, ecid, kind, "
                                      "intent_id, outcome, details, prev_hash, hash) "
                                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        },
};
