/* ledger_sqlite.c — the ledger's SQLite storage: schema and migrations,
 * SQLite result codes as the library's errors, opening (identity check,
 * WAL, read-only media) and closing. */
#include "ledger_int.h"

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

/* Record an SQLite failure as a one-line error naming the ledger. */
int sql_err(struct ledger *l, int rc, const char *what)
{
        int r = rc_to_errno(rc);
        char saved[sizeof(l->saved_err)];
        const char *msg = l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);

        /* A ROLLBACK after the failure resets the connection's text to
         * "not an error": prefer what was saved before it, else the code's. */
        if (l->saved_err[0]) {
                snprintf(saved, sizeof(saved), "%s", l->saved_err);
                l->saved_err[0] = 0;
                msg = saved;
        } else if (l->db && sqlite3_errcode(l->db) == SQLITE_OK) {
                msg = sqlite3_errstr(rc);
        }
        if ((rc & 0xff) == SQLITE_CANTOPEN && l->mode == LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: %s: %s (read-only media or directory? a writer must be "
                              "able to create %s-wal and %s-shm beside it)", l->path, what, msg, l->path, l->path);

        if ((rc & 0xff) == SQLITE_READONLY)
                return fl_err(l->ctx, r, "ledger %s: %s: the database is read-only (%s)", l->path, what, msg);
        if ((rc & 0xff) == SQLITE_FULL)
                return fl_err(l->ctx, r, "ledger %s: %s: the disk is full (%s)", l->path, what, msg);
        if ((rc & 0xff) == SQLITE_NOTADB)
                return fl_err(l->ctx, r, "ledger %s: not an SQLite database", l->path);
        if ((rc & 0xff) == SQLITE_CORRUPT)
                return fl_err(l->ctx, r, "ledger %s: the database file is corrupt (%s)", l->path, msg);
        if ((rc & 0xff) == SQLITE_BUSY)
                return fl_err(l->ctx, r, "ledger %s: %s: other writers held the database too long (%s)",
                              l->path, what, msg);
        return fl_err(l->ctx, r, "ledger %s: %s: %s", l->path, what, msg);
}

/* ---- opening ------------------------------------------------------------ */

static int pragma_int(struct ledger *l, const char *sql, int *ret)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);

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
        bool own = sqlite3_get_autocommit(l->db);
        int rc = own ? sqlite3_exec(l->db, "BEGIN", NULL, NULL, NULL) : SQLITE_OK;

        if (rc == SQLITE_OK)
                rc = pragma_int(l, "PRAGMA application_id", &id->app_id);
        if (rc == SQLITE_OK)
                rc = pragma_int(l, "PRAGMA user_version", &id->version);
        if (rc == SQLITE_OK)
                rc = pragma_int(l, "SELECT count(*) FROM sqlite_master", &id->objects);
        if (rc != SQLITE_OK)
                snprintf(l->saved_err, sizeof(l->saved_err), "%s", sqlite3_errmsg(l->db));
        if (own && !sqlite3_get_autocommit(l->db))
                sqlite3_exec(l->db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
        return rc;
}

static int check_identity(struct ledger *l, const struct db_identity *id)
{
        if (id->app_id != LEDGER_APP_ID && id->objects > 0)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: an SQLite database, but not a fuseline ledger (application_id 0x%08x)",
                              l->path, (unsigned)id->app_id);
        if (id->version > LEDGER_SCHEMA_VERSION)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: schema version %d is newer than this fuseline understands (%d); "
                              "use a newer fuseline",
                              l->path, id->version, LEDGER_SCHEMA_VERSION);
        if (l->mode == LEDGER_READ && (id->objects == 0 || id->version < 1))
                return fl_err(l->ctx, -EINVAL, "ledger %s: empty database, no fuseline ledger in it", l->path);
        return 0;
}

/* BEGIN IMMEDIATE, waiting up to the busy timeout: takes the write lock up
 * front, so what is read inside the transaction stays true until commit. */
int begin_immediate(struct ledger *l)
{
        uint64_t deadline = mono_ms() + l->busy_ms;
        unsigned backoff = 1;
        int rc;

        for (;;) {
                rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                if ((rc & 0xff) != SQLITE_BUSY || mono_ms() >= deadline)
                        return rc;
                sleep_ms(backoff + (unsigned)(rand() % 8));
                if (backoff < 50)
                        backoff *= 2;
        }
}

static int migrate(struct ledger *l)
{
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
                fl_log(l->ctx, FL_LOG_INFO, "ledger %s: migrating schema %d -> %d", l->path, id.version,
                       LEDGER_SCHEMA_VERSION);
        for (int v = id.version; v < LEDGER_SCHEMA_VERSION; v++) {
                rc = sqlite3_exec(l->db, migrations[v], NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        snprintf(sql, sizeof(sql), "schema update %d -> %d", v, v + 1);
                        r = sql_err(l, rc, sql);
                        goto fail;
                }
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LEDGER_SCHEMA_VERSION);
        rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
                snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", LEDGER_APP_ID);
                rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "committing the schema update");
                goto fail;
        }
        return 0;
fail:
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static int set_wal(struct ledger *l)
{
        uint64_t deadline = mono_ms() + l->busy_ms;
        sqlite3_stmt *st = NULL;
        int rc;

        for (;;) {
                rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
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

static void connection_setup(struct ledger *l)
{
        sqlite3_extended_result_codes(l->db, 1);
        sqlite3_busy_timeout(l->db, STEP_BUSY_MS);
        /* A ledger file may come from elsewhere: no schema-defined SQL
         * functions with side effects, no writable_schema tricks. */
        sqlite3_db_config(l->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_db_config(l->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
}

/* Reopen as file:PATH?mode=ro&immutable=1 (no locks, no -shm). Refused when
 * a non-empty write-ahead log sits beside it: immutable readers ignore the
 * log, and the newest events may be only there. */
static int reopen_immutable(struct ledger *l)
{
        char *wal = NULL, *uri = NULL;
        struct stat st;
        int rc, r;

        if (asprintf(&wal, "%s-wal", l->path) < 0)
                return -ENOMEM;
        r = stat(wal, &st) == 0 && st.st_size > 0;
        free(wal);
        if (r)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: on read-only media with a non-empty write-ahead log (%s-wal) that SQLite "
                              "cannot replay there: copy both files to writable storage and read the copy",
                              l->path, l->path);
        uri = sqlite3_mprintf("file:%s?mode=ro&immutable=1", l->path);
        if (!uri)
                return -ENOMEM;
        /* Characters that mean something in a URI must be escaped. */
        if (strpbrk(l->path, "?#%")) {
                sqlite3_free(uri);
                return fl_err(l->ctx, -EINVAL, "ledger %s: on read-only media, and its name has ?, # or %%: "
                              "rename it to read it there", l->path);
        }
        sqlite3_close_v2(l->db);
        l->db = NULL;
        rc = sqlite3_open_v2(uri, &l->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW, NULL);
        sqlite3_free(uri);
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "cannot open read-only");
        connection_setup(l);
        l->immutable = true;
        fl_log(l->ctx, FL_LOG_INFO, "ledger %s: read-only media: reading it as immutable", l->path);
        return 0;
}

int ledger_open(fl_ctx *ctx, const char *path, enum ledger_mode mode, struct ledger **ret)
{
        const char *spool = ledger_spool_default();

        if (mode == LEDGER_WRITE && spool && strcmp(ledger_path(path), spool))
                return ledger_open_spooled(ctx, ledger_path(path), spool, ret);
        return ledger_open_direct(ctx, path, mode, ret);
}

int ledger_open_direct(fl_ctx *ctx, const char *path, enum ledger_mode mode, struct ledger **ret)
{
        struct ledger *l = NULL;
        struct db_identity id;
        struct stat st;
        int rc, r, flags;

        if (!ret)
                return -EINVAL;
        path = ledger_path(path);
        if (stat(path, &st) < 0) {
                r = -errno;
                if (r != -ENOENT || mode == LEDGER_READ)
                        return fl_err(ctx, r == -ENOENT ? -ENOENT : -EINVAL, "ledger %s: %s%s", path,
                                      strerror(-r),
                                      r == -ENOENT ? " (no ledger yet: commands that record, such as burn "
                                                     "and enroll, create it)"
                                                   : "");
        } else if (!S_ISREG(st.st_mode)) {
                return fl_err(ctx, -EINVAL, "ledger %s: not a regular file", path);
        }

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->ctx = ctx;
        l->mode = mode;
        l->busy_ms = 60000;
        l->path = strdup(path);
        if (!l->path) {
                r = -ENOMEM;
                goto fail;
        }
        flags = (mode == LEDGER_READ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOFOLLOW;
        rc = sqlite3_open_v2(path, &l->db, flags, NULL);
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "cannot open");
                goto fail;
        }
        connection_setup(l);

        rc = read_identity(l, &id);
        if (rc != SQLITE_OK && mode == LEDGER_READ && readonly_media_rc(rc)) {
                /* Read-only media (a remounted file system, a WORM archive):
                 * SQLite cannot create the -shm file or take its locks.
                 * Nothing can change the file there, so read it as such. */
                l->saved_err[0] = 0;
                r = reopen_immutable(l);
                if (r < 0)
                        goto fail;
                rc = read_identity(l, &id);
        }
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "reading the schema");
                goto fail;
        }
        r = check_identity(l, &id);
        if (r < 0)
                goto fail;

        if (mode == LEDGER_READ) {
                rc = sqlite3_exec(l->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        r = sql_err(l, rc, "opening read-only");
                        goto fail;
                }
                l->version = id.version;
        } else {
                if (sqlite3_db_readonly(l->db, "main") == 1) {
                        struct statvfs vfs;
                        bool rofs = statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
                        r = fl_err(ctx, -EINVAL, "ledger %s: the database is read-only (%s)", path,
                                   rofs ? "read-only file system" : "file permissions or an immutable file");
                        goto fail;
                }
                r = set_wal(l);
                if (r < 0)
                        goto fail;
                /* FULL: a committed event is on disk before append returns
                 * (an intent must survive power loss before a burn). */
                rc = sqlite3_exec(l->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        r = sql_err(l, rc, "setting up the connection");
                        goto fail;
                }
                if (id.version < LEDGER_SCHEMA_VERSION) {
                        r = migrate(l);
                        if (r < 0)
                                goto fail;
                }
                l->version = LEDGER_SCHEMA_VERSION;
        }
        *ret = l;
        return 0;
fail:
        ledger_close(l);
        return r;
}

void ledger_close(struct ledger *l)
{
        if (!l)
                return;
        if (l->db)
                sqlite3_close_v2(l->db);
        free(l->path);
        free(l->spool_for);
        free(l);
}
