/* ledger.c — the SQLite ledger: schema and migrations, appending hash-chained
 * events (one transaction each, safe against concurrent writers and
 * crashes), reading them back, verifying the chain, and the export formats.
 *
 * Canonical event bytes (what the chain hashes; also README.md):
 *
 *   F(x)    = u32be(len(x)) ‖ x          a field: 4-byte big-endian length, then the bytes
 *   NULL    = ff ff ff ff                 an absent field (distinct from an empty one)
 *   I(n)    = F(i64be(n))                 an integer: its 8-byte big-endian two's complement
 *
 *   canon   = F("fuseline-event/1") ‖ I(id) ‖ F(time) ‖ F(station) ‖ F(operator)
 *             ‖ F(command) ‖ F(ecid)|NULL ‖ F(kind) ‖ I(intent_id)|NULL
 *             ‖ F(outcome) ‖ F(details)
 *   hash    = SHA-256(prev_hash ‖ canon)  prev_hash: the previous event's hash,
 *                                         32 zero bytes for the first event
 *
 * Text fields are the UTF-8 bytes exactly as stored (no terminator, no
 * normalisation at hash time); details is the stored JSON text byte for
 * byte — the ledger stores it re-serialised compactly by json-c once, when
 * the event is appended, so the hash never depends on how a reader formats
 * JSON. The tag names the format: a later format gets a new tag. */
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "ledger.h"
#include "sign.h"

/* 'FLDG': marks the file as a fuseline ledger, so the tool refuses to
 * migrate (write into) somebody else's SQLite database. */
#define LEDGER_APP_ID 0x464c4447
#define CANON_TAG "fuseline-event/1"
#define STEP_BUSY_MS 2000 /* SQLite's own wait per statement; the append loop retries around it */

struct ledger {
        fl_ctx *ctx;
        sqlite3 *db;
        char *path;
        enum ledger_mode mode;
        int version;
        unsigned busy_ms;
        bool immutable;      /* opened with immutable=1 (read-only media) */
        char saved_err[256]; /* SQLite's text, kept across a ROLLBACK that resets it */
};

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
};

/* The guards `verify ledger` expects to find (a missing one means someone
 * dropped it, most likely to edit rows). */
static const struct {
        const char *name;
        int since; /* schema version that added it */
} guard_triggers[] = {
        { "events_no_update", 1 },      { "events_no_delete", 1 },      { "certificates_no_delete", 1 },
        { "certificates_fixed", 1 },    { "devices_no_delete", 1 },     { "checkpoints_no_update", 2 },
        { "checkpoints_no_delete", 2 },
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
static int sql_err(struct ledger *l, int rc, const char *what)
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

/* ---- small helpers ------------------------------------------------------ */

const char *ledger_path(const char *opt)
{
        const char *e;

        if (opt && *opt)
                return opt;
        e = getenv("FUSELINE_DB");
        if (e && *e)
                return e;
        return LEDGER_DEFAULT_PATH;
}

int ledger_schema_version(const struct ledger *l)
{
        return l->version;
}

void ledger_set_busy_timeout(struct ledger *l, unsigned ms)
{
        l->busy_ms = ms;
}

static const char *const kind_names[] = { "record", "intent", "result" };
static const char *const state_names[] = { NULL, "blank", "planned", "fused-test", "fused", "enrolled", "failed" };

const char *ledger_kind_name(enum ledger_kind k)
{
        return (unsigned)k < FL_ARRAY_SIZE(kind_names) ? kind_names[k] : "unknown";
}

const char *ledger_state_name(enum ledger_state s)
{
        return (unsigned)s < FL_ARRAY_SIZE(state_names) ? state_names[s] : NULL;
}

enum ledger_state ledger_state_from_name(const char *s)
{
        for (size_t i = 1; s && i < FL_ARRAY_SIZE(state_names); i++)
                if (!strcmp(s, state_names[i]))
                        return (enum ledger_state)i;
        return LEDGER_STATE_KEEP;
}

static const char *const fault_names[] = {
        "none", "edited", "deleted", "reordered", "broken-link", "truncated", "malformed", "state", "schema",
        "checkpoint",
};

const char *ledger_fault_name(enum ledger_fault f)
{
        return (unsigned)f < FL_ARRAY_SIZE(fault_names) ? fault_names[f] : "unknown";
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A column as a malloc'd string (NULL for SQL NULL; "" on ENOMEM is not
 * possible: callers check). */
static int col_dup(sqlite3_stmt *st, int i, char **ret)
{
        const unsigned char *t = sqlite3_column_text(st, i);

        if (!t) {
                *ret = NULL;
                return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? -ENOMEM : 0;
        }
        *ret = strdup((const char *)t);
        return *ret ? 0 : -ENOMEM;
}

/* Valid UTF-8 without control characters, 1..max bytes. Returns a reason
 * or NULL. */
static const char *text_problem(const char *s, size_t max)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s);

        if (n == 0)
                return "is empty";
        if (n > max)
                return "is too long";
        while (*p) {
                unsigned c = *p;
                int extra;
                uint32_t cp;

                if (c < 0x20 || c == 0x7f)
                        return "holds a control character";
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        extra = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        extra = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        extra = 3;
                        cp = c & 0x07;
                } else {
                        return "is not valid UTF-8";
                }
                p++;
                for (int i = 0; i < extra; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return "is not valid UTF-8";
                        cp = cp << 6 | (*p & 0x3f);
                }
                if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return "is not valid UTF-8";
                if (cp >= 0x80 && cp < 0xa0)
                        return "holds a control character";
        }
        return NULL;
}

static int check_text(fl_ctx *ctx, const char *field, const char *s, size_t max)
{
        const char *why;

        if (!s)
                return fl_err(ctx, -EINVAL, "ledger event: %s is missing", field);
        why = text_problem(s, max);
        if (why)
                return fl_err(ctx, -EINVAL, "ledger event: %s '%.64s' %s (at most %zu bytes of printable UTF-8)",
                              field, s, why, max);
        return 0;
}

/* ---- ECID and time ------------------------------------------------------ */

int ledger_ecid_parse(fl_ctx *ctx, const char *in, char out[LEDGER_ECID_LEN + 1])
{
        const char *p = in;
        char buf[LEDGER_ECID_LEN + 1];
        size_t n;

        if (!in || !*in)
                return fl_err(ctx, -EINVAL, "ECID is empty");
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
                p += 2;
        n = strlen(p);
        for (size_t i = 0; i < n; i++) {
                char c = p[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                        return fl_err(ctx, -EINVAL, "ECID '%.80s' is not hex (character %zu)", in,
                                      (size_t)(p - in) + i + 1);
        }
        /* T194/T234 `tegrarcm_v2 --uid` prints BR_CID as 32 hex digits
         * (jetson-fuses.md §8, verified in logs). */
        if (n != LEDGER_ECID_LEN)
                return fl_err(ctx, -EINVAL, "ECID '%.80s' has %zu hex digits; a T194/T234 ECID has %d", in, n,
                              LEDGER_ECID_LEN);
        for (size_t i = 0; i < n; i++)
                buf[i] = (p[i] >= 'A' && p[i] <= 'F') ? (char)(p[i] - 'A' + 'a') : p[i];
        buf[n] = 0;
        memcpy(out, buf, sizeof(buf));
        return 0;
}

#define TIME_MAX ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */

static bool parse_iso(const char *p, int64_t *ret)
{
        int y, mo, d, h = 0, mi = 0, s = 0, oh = 0, om = 0, sign = 0;
        struct tm tm = { 0 };
        int64_t t;

        if (!parse_digits(&p, 4, &y) || *p++ != '-' || !parse_digits(&p, 2, &mo) || *p++ != '-' || !parse_digits(&p, 2, &d))
                return false;
        if (*p == 'T' || *p == 't' || *p == ' ') {
                p++;
                if (!parse_digits(&p, 2, &h) || *p++ != ':' || !parse_digits(&p, 2, &mi))
                        return false;
                if (*p == ':') {
                        p++;
                        if (!parse_digits(&p, 2, &s))
                                return false;
                        if (*p == '.') {
                                p++;
                                if (*p < '0' || *p > '9')
                                        return false;
                                for (int i = 0; *p >= '0' && *p <= '9'; p++, i++)
                                        if (i >= 9)
                                                return false;
                        }
                }
                if (*p == 'Z' || *p == 'z') {
                        p++;
                } else if (*p == '+' || *p == '-') {
                        sign = *p++ == '+' ? 1 : -1;
                        if (!parse_digits(&p, 2, &oh))
                                return false;
                        if (*p == ':')
                                p++;
                        if (*p && !parse_digits(&p, 2, &om))
                                return false;
                }
        }
        if (*p)
                return false;
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 ||
            oh > 23 || om > 59)
                return false;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = s;
        t = (int64_t)timegm(&tm) - (int64_t)sign * (oh * 3600 + om * 60);
        *ret = t;
        return true;
}

int ledger_time_parse(fl_ctx *ctx, const char *in, time_t now, char out[LEDGER_TIME_LEN])
{
        const char *p = in;
        int64_t t = -1;
        char buf[LEDGER_TIME_LEN];
        size_t n;
        bool ok = false;

        if (!in || !*in)
                return fl_err(ctx, -EINVAL, "time is empty");
        n = strlen(in);
        if (n > 64)
                goto bad;
        if (*p == '@') {
                p++;
                if (*p && strspn(p, "0123456789") == strlen(p) && strlen(p) <= 12) {
                        t = strtoll(p, NULL, 10);
                        ok = true;
                }
        } else if (n >= 2 && strspn(in, "0123456789") == n - 1 && n - 1 <= 10 && strchr("smhdw", in[n - 1])) {
                static const int64_t units[] = { 1, 60, 3600, 86400, 604800 };
                int64_t v = strtoll(in, NULL, 10);
                t = (int64_t)now - v * units[strchr("smhdw", in[n - 1]) - "smhdw"];
                ok = true;
        } else {
                ok = parse_iso(in, &t);
        }
        if (!ok)
                goto bad;
        if (t < 0 || t > TIME_MAX)
                return fl_err(ctx, -EINVAL, "time '%.64s' is outside 1970..9999", in);
        if (!time_format_utc(t, buf, sizeof(buf)))
                goto bad;
        memcpy(out, buf, sizeof(buf));
        return 0;
bad:
        return fl_err(ctx, -EINVAL,
                      "time '%.64s' is not understood (expected e.g. 2024-05-01, 2024-05-01T12:00:00Z, "
                      "2024-05-01T14:00+02:00, @1714566645, 24h or 7d)",
                      in);
}

/* Exactly "YYYY-MM-DDTHH:MM:SSZ", a real date. */
static bool time_is_canonical(const char *s)
{
        int64_t t;

        return s && strlen(s) == LEDGER_TIME_LEN - 1 && s[10] == 'T' && s[19] == 'Z' && parse_iso(s, &t);
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
static int begin_immediate(struct ledger *l)
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
        free(l);
}

/* ---- canonical bytes ---------------------------------------------------- */

static int canon_field(struct fl_buf *b, const void *data, size_t n)
{
        unsigned char len[4];

        if (!data) {
                memset(len, 0xff, sizeof(len));
                return fl_buf_put(b, len, sizeof(len));
        }
        if (n >= 0xffffffffu)
                return -E2BIG;
        len[0] = (unsigned char)(n >> 24);
        len[1] = (unsigned char)(n >> 16);
        len[2] = (unsigned char)(n >> 8);
        len[3] = (unsigned char)n;
        if (fl_buf_put(b, len, sizeof(len)) < 0)
                return -ENOMEM;
        return fl_buf_put(b, data, n);
}

static int canon_str(struct fl_buf *b, const char *s)
{
        return canon_field(b, s, s ? strlen(s) : 0);
}

static int canon_int(struct fl_buf *b, int64_t v)
{
        unsigned char be[8];
        uint64_t u = (uint64_t)v;

        for (int i = 7; i >= 0; i--, u >>= 8)
                be[i] = (unsigned char)u;
        return canon_field(b, be, sizeof(be));
}

static int canon_build(const struct ledger_row *row, struct fl_buf *b)
{
        int r = 0;

        r |= canon_str(b, CANON_TAG);
        r |= canon_int(b, row->id);
        r |= canon_str(b, row->time);
        r |= canon_str(b, row->station);
        r |= canon_str(b, row->operator);
        r |= canon_str(b, row->command);
        r |= canon_str(b, row->ecid);
        r |= canon_str(b, row->kind);
        r |= row->intent_id ? canon_int(b, row->intent_id) : canon_field(b, NULL, 0);
        r |= canon_str(b, row->outcome);
        r |= canon_str(b, row->details);
        return r ? -ENOMEM : 0;
}

int ledger_event_canon(const struct ledger_row *row, unsigned char **ret, size_t *ret_len)
{
        struct fl_buf b = { 0 };
        int r = canon_build(row, &b);

        if (r < 0) {
                free(b.p);
                return r;
        }
        *ret = b.p;
        *ret_len = b.len;
        return 0;
}

static int hash_with(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN], struct fl_buf *b,
                     unsigned char out[LEDGER_HASH_LEN])
{
        unsigned int n = 0;
        int r;

        b->len = 0;
        if (fl_buf_put(b, prev, LEDGER_HASH_LEN) < 0)
                return -ENOMEM;
        r = canon_build(row, b);
        if (r < 0)
                return r;
        if (!EVP_Digest(b->p, b->len, out, &n, EVP_sha256(), NULL) || n != LEDGER_HASH_LEN)
                return -EIO;
        return 0;
}

int ledger_event_hash(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN],
                      unsigned char out[LEDGER_HASH_LEN])
{
        struct fl_buf b = { 0 };
        int r = hash_with(row, prev, &b, out);

        free(b.p);
        return r;
}

/* ---- appending ---------------------------------------------------------- */

/* Per-event values resolved before the transaction. */
struct prepared {
        char ecid[LEDGER_ECID_LEN + 1];
        bool has_ecid;
        char station[LEDGER_FIELD_MAX + 1];
        char operator[LEDGER_FIELD_MAX + 1];
        json_object *details; /* parsed caller details (owned) */
        X509 *cert;           /* parsed attached certificate (owned) */
};

static void default_station(char *out, size_t n)
{
        const char *e = getenv("FUSELINE_STATION");

        if (e && *e) {
                snprintf(out, n, "%s", e);
                return;
        }
        if (gethostname(out, n - 1) < 0 || !out[0])
                snprintf(out, n, "unknown");
        out[n - 1] = 0;
}

static void default_operator(char *out, size_t n)
{
        const char *e = getenv("FUSELINE_OPERATOR");
        struct passwd pw, *res = NULL;
        char pwbuf[1024];

        if (e && *e) {
                snprintf(out, n, "%s", e);
                return;
        }
        if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res && res->pw_name)
                snprintf(out, n, "%s", res->pw_name);
        else
                snprintf(out, n, "uid:%u", (unsigned)geteuid());
}

static int prepare_event(fl_ctx *ctx, const struct ledger_event *ev, size_t idx, struct prepared *p)
{
        int r;

        if (ev->station)
                snprintf(p->station, sizeof(p->station), "%s", ev->station);
        else
                default_station(p->station, sizeof(p->station));
        if (ev->operator)
                snprintf(p->operator, sizeof(p->operator), "%s", ev->operator);
        else
                default_operator(p->operator, sizeof(p->operator));
        if (ev->station && strlen(ev->station) > LEDGER_FIELD_MAX)
                return fl_err(ctx, -EINVAL, "ledger event: station '%.64s' is too long (at most %d bytes)",
                              ev->station, LEDGER_FIELD_MAX);
        if (ev->operator && strlen(ev->operator) > LEDGER_FIELD_MAX)
                return fl_err(ctx, -EINVAL, "ledger event: operator '%.64s' is too long (at most %d bytes)",
                              ev->operator, LEDGER_FIELD_MAX);
        r = check_text(ctx, "station", p->station, LEDGER_FIELD_MAX);
        if (r >= 0)
                r = check_text(ctx, "operator", p->operator, LEDGER_FIELD_MAX);
        if (r >= 0)
                r = check_text(ctx, "command", ev->command, LEDGER_FIELD_MAX);
        if (r >= 0)
                r = check_text(ctx, "outcome", ev->outcome, LEDGER_FIELD_MAX);
        if (r < 0)
                return r;
        if (ev->time && !time_is_canonical(ev->time))
                return fl_err(ctx, -EINVAL, "ledger event: time '%.64s' is not YYYY-MM-DDTHH:MM:SSZ", ev->time);
        if ((unsigned)ev->kind > LEDGER_RESULT)
                return fl_err(ctx, -EINVAL, "ledger event: unknown kind %d", (int)ev->kind);
        if (ev->kind == LEDGER_RESULT && ev->intent_id <= 0)
                return fl_err(ctx, -EINVAL, "ledger event: a result needs the id of the intent it closes");
        if (ev->kind != LEDGER_RESULT && ev->intent_id != 0)
                return fl_err(ctx, -EINVAL, "ledger event: only a result carries an intent id");
        if (ev->ecid) {
                r = ledger_ecid_parse(ctx, ev->ecid, p->ecid);
                if (r < 0)
                        return r;
                p->has_ecid = true;
        }
        if ((ev->device || ev->cert) && !p->has_ecid)
                return fl_err(ctx, -EINVAL, "ledger event: a device or certificate change needs the ECID");
        if (ev->device) {
                if (ev->device->chip != FL_CHIP_NONE && ev->device->chip != FL_CHIP_T194 &&
                    ev->device->chip != FL_CHIP_T234)
                        return fl_err(ctx, -EINVAL, "ledger event: unknown chip 0x%x", (unsigned)ev->device->chip);
                if ((unsigned)ev->device->state > LEDGER_STATE_FAILED)
                        return fl_err(ctx, -EINVAL, "ledger event: unknown device state %d", (int)ev->device->state);
                if (ev->device->module && (r = check_text(ctx, "module", ev->device->module, LEDGER_FIELD_MAX)) < 0)
                        return r;
                if (ev->device->serial && (r = check_text(ctx, "serial", ev->device->serial, LEDGER_FIELD_MAX)) < 0)
                        return r;
        }
        if (ev->details) {
                struct json_tokener *tok;
                enum json_tokener_error jerr;
                size_t n = strlen(ev->details);

                if (n > LEDGER_DETAILS_MAX)
                        return fl_err(ctx, -EINVAL, "ledger event: details are %zu bytes (at most %d)", n,
                                      LEDGER_DETAILS_MAX);
                tok = json_tokener_new();
                if (!tok)
                        return -ENOMEM;
                p->details = json_tokener_parse_ex(tok, ev->details, (int)n);
                jerr = json_tokener_get_error(tok);
                if (jerr == json_tokener_success && json_tokener_get_parse_end(tok) != n) {
                        json_object_put(p->details);
                        p->details = NULL;
                        jerr = json_tokener_error_parse_unexpected;
                }
                json_tokener_free(tok);
                if (!p->details || jerr != json_tokener_success ||
                    !json_object_is_type(p->details, json_type_object))
                        return fl_err(ctx, -EINVAL, "ledger event %zu: details are not a JSON object (%s)", idx,
                                      jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "other type");
                if (json_object_object_get_ex(p->details, "device", NULL) ||
                    json_object_object_get_ex(p->details, "certificate", NULL))
                        return fl_err(ctx, -EINVAL,
                                      "ledger event: details keys 'device' and 'certificate' are the ledger's own");
        } else {
                p->details = json_object_new_object();
                if (!p->details)
                        return -ENOMEM;
        }
        if (ev->cert) {
                const unsigned char *d = ev->cert->der;
                if (!ev->cert->der || ev->cert->der_len == 0 || ev->cert->der_len > LEDGER_CERT_MAX)
                        return fl_err(ctx, -EINVAL, "ledger event: certificate DER is empty or larger than %d bytes",
                                      LEDGER_CERT_MAX);
                p->cert = d2i_X509(NULL, &d, (long)ev->cert->der_len);
                if (!p->cert || d != ev->cert->der + ev->cert->der_len)
                        return fl_err(ctx, -EINVAL, "ledger event: certificate is not one DER X.509 certificate (%s)",
                                      ossl_errstr());
        }
        return 0;
}

static void prepared_clear(struct prepared *p)
{
        json_object_put(p->details);
        X509_free(p->cert);
        p->details = NULL;
        p->cert = NULL;
}

static int stmt(struct ledger *l, const char *sql, sqlite3_stmt **ret)
{
        int rc = sqlite3_prepare_v2(l->db, sql, -1, ret, NULL);

        return rc == SQLITE_OK ? 0 : sql_err(l, rc, "preparing a query");
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
        else
                sqlite3_bind_null(st, i);
}

static int json_add_str(json_object *o, const char *key, const char *val)
{
        json_object *v;

        if (!val)
                return 0;
        v = json_object_new_string(val);
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* Upsert the device row; on success *ret_snap is the row after the change
 * (what goes into details.device). */
static int device_apply(struct ledger *l, const char *ecid, const struct ledger_device *dev, const char *now,
                        json_object **ret_snap)
{
        static const struct ledger_device none = { 0 };
        sqlite3_stmt *st = NULL;
        char *cur_chip = NULL, *cur_module = NULL, *cur_serial = NULL, *cur_state = NULL;
        const char *chip, *module, *serial, *state;
        bool exists = false;
        json_object *snap = NULL;
        int rc, r;

        if (!dev)
                dev = &none;
        r = stmt(l, "SELECT chip, module, serial, state FROM devices WHERE ecid = ?1", &st);
        if (r < 0)
                goto out;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                exists = true;
                if (col_dup(st, 0, &cur_chip) < 0 || col_dup(st, 1, &cur_module) < 0 ||
                    col_dup(st, 2, &cur_serial) < 0 || col_dup(st, 3, &cur_state) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        } else if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading the device");
                goto out;
        }
        sqlite3_finalize(st);
        st = NULL;

        chip = dev->chip != FL_CHIP_NONE ? chip_name(dev->chip) : NULL;
        if (chip && cur_chip && strcmp(chip, cur_chip)) {
                r = fl_err(l->ctx, -EEXIST, "ledger: ECID %s is recorded as chip %s, not %s", ecid, cur_chip, chip);
                goto out;
        }
        if (dev->module && cur_module && strcmp(dev->module, cur_module)) {
                r = fl_err(l->ctx, -EEXIST, "ledger: ECID %s is recorded as module '%s', not '%s'", ecid, cur_module,
                           dev->module);
                goto out;
        }
        if (dev->serial && cur_serial && strcmp(dev->serial, cur_serial)) {
                r = fl_err(l->ctx, -EEXIST, "ledger: ECID %s has serial '%s' already, not '%s'", ecid, cur_serial,
                           dev->serial);
                goto out;
        }
        if (dev->serial && !cur_serial) {
                r = stmt(l, "SELECT ecid FROM devices WHERE serial = ?1 AND ecid <> ?2", &st);
                if (r < 0)
                        goto out;
                sqlite3_bind_text(st, 1, dev->serial, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, ecid, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        r = fl_err(l->ctx, -EEXIST, "ledger: serial '%s' belongs to ECID %s already", dev->serial,
                                   (const char *)sqlite3_column_text(st, 0));
                        goto out;
                }
                if (rc != SQLITE_DONE) {
                        r = sql_err(l, rc, "checking the serial");
                        goto out;
                }
                sqlite3_finalize(st);
                st = NULL;
        }
        chip = chip ? chip : cur_chip;
        module = dev->module ? dev->module : cur_module;
        serial = dev->serial ? dev->serial : cur_serial;
        state = dev->state != LEDGER_STATE_KEEP ? ledger_state_name(dev->state) : cur_state ? cur_state : "blank";

        r = stmt(l,
                 exists ? "UPDATE devices SET chip = ?2, module = ?3, serial = ?4, state = ?5, last_seen = ?6 "
                          "WHERE ecid = ?1"
                        : "INSERT INTO devices (ecid, chip, module, serial, state, first_seen, last_seen) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                 &st);
        if (r < 0)
                goto out;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        bind_text_or_null(st, 2, chip);
        bind_text_or_null(st, 3, module);
        bind_text_or_null(st, 4, serial);
        sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "recording the device");
                goto out;
        }

        snap = json_object_new_object();
        if (!snap || json_add_str(snap, "state", state) < 0 || json_add_str(snap, "chip", chip) < 0 ||
            json_add_str(snap, "module", module) < 0 || json_add_str(snap, "serial", serial) < 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret_snap = snap;
        snap = NULL;
        r = 0;
out:
        json_object_put(snap);
        sqlite3_finalize(st);
        free(cur_chip);
        free(cur_module);
        free(cur_serial);
        free(cur_state);
        return r;
}

static int asn1_time_str(const ASN1_TIME *t, char out[LEDGER_TIME_LEN])
{
        struct tm tm;

        if (!t || !ASN1_TIME_to_tm(t, &tm))
                return -EINVAL;
        if (strftime(out, LEDGER_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) != LEDGER_TIME_LEN - 1)
                return -EINVAL;
        return 0;
}

/* The certificate's facts as the certificates table stores them. */
struct cert_facts {
        char fingerprint[2 * LEDGER_HASH_LEN + 1];
        char *issuer; /* RFC 2253 */
        char *serial; /* lower-case hex */
        char not_before[LEDGER_TIME_LEN], not_after[LEDGER_TIME_LEN];
};

static void cert_facts_clear(struct cert_facts *f)
{
        OPENSSL_free(f->issuer);
        OPENSSL_free(f->serial);
        f->issuer = f->serial = NULL;
}

static int cert_facts_get(fl_ctx *ctx, X509 *x, const unsigned char *der, size_t der_len, struct cert_facts *f)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        BIO *bio = NULL;
        BIGNUM *bn = NULL;
        char *p;
        long n;
        int r = -EINVAL;

        if (!EVP_Digest(der, der_len, md, &mdlen, EVP_sha256(), NULL) || mdlen != LEDGER_HASH_LEN)
                return fl_err(ctx, -EIO, "ledger: SHA-256 failed (%s)", ossl_errstr());
        hex_encode(md, mdlen, f->fingerprint);
        bio = BIO_new(BIO_s_mem());
        if (!bio || X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) < 0)
                goto bad;
        n = BIO_get_mem_data(bio, &p);
        f->issuer = OPENSSL_strndup(p ? p : "", n > 0 ? (size_t)n : 0);
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        if (!f->issuer || !bn)
                goto bad;
        f->serial = BN_bn2hex(bn);
        if (!f->serial)
                goto bad;
        for (char *c = f->serial; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        *c = (char)(*c - 'A' + 'a');
        if (asn1_time_str(X509_get0_notBefore(x), f->not_before) < 0 ||
            asn1_time_str(X509_get0_notAfter(x), f->not_after) < 0)
                goto bad;
        r = 0;
        goto out;
bad:
        r = fl_err(ctx, -EINVAL, "ledger: cannot read the certificate's issuer, serial or validity (%s)",
                   ossl_errstr());
        cert_facts_clear(f);
out:
        BN_free(bn);
        BIO_free(bio);
        return r;
}

static int cert_apply(struct ledger *l, const char *ecid, const struct ledger_cert *c, X509 *x, const char *now,
                      json_object **ret_snap)
{
        struct cert_facts f = { 0 };
        sqlite3_stmt *st = NULL;
        json_object *snap = NULL, *sup = NULL;
        int rc, r;

        r = cert_facts_get(l->ctx, x, c->der, c->der_len, &f);
        if (r < 0)
                return r;
        r = stmt(l, "SELECT ecid FROM certificates WHERE fingerprint = ?1", &st);
        if (r < 0)
                goto out;
        sqlite3_bind_text(st, 1, f.fingerprint, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                r = fl_err(l->ctx, -EEXIST, "ledger: certificate sha256:%s is recorded already (ECID %s)",
                           f.fingerprint, (const char *)sqlite3_column_text(st, 0));
                goto out;
        }
        sqlite3_finalize(st);
        st = NULL;

        sup = json_object_new_array();
        if (!sup) {
                r = -ENOMEM;
                goto out;
        }
        r = stmt(l, "SELECT fingerprint FROM certificates WHERE ecid = ?1 AND status = 'valid'", &st);
        if (r < 0)
                goto out;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *fp = (const char *)sqlite3_column_text(st, 0);
                if (!c->supersede) {
                        r = fl_err(l->ctx, -EEXIST,
                                   "ledger: ECID %s has a valid certificate already (sha256:%s); "
                                   "supersede it to record another",
                                   ecid, fp ? fp : "?");
                        goto out;
                }
                if (json_object_array_add(sup, json_object_new_string(fp ? fp : "")) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading certificates");
                goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (json_object_array_length(sup) > 0) {
                r = stmt(l, "UPDATE certificates SET status = 'superseded' WHERE ecid = ?1 AND status = 'valid'", &st);
                if (r < 0)
                        goto out;
                sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                if (rc != SQLITE_DONE) {
                        r = sql_err(l, rc, "superseding certificates");
                        goto out;
                }
                sqlite3_finalize(st);
                st = NULL;
        }
        r = stmt(l,
                 "INSERT INTO certificates (fingerprint, ecid, der, issuer, serial, not_before, not_after, "
                 "status, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'valid', ?8)",
                 &st);
        if (r < 0)
                goto out;
        sqlite3_bind_text(st, 1, f.fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ecid, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, c->der, (int)c->der_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, f.issuer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, f.serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, f.not_before, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, f.not_after, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, now, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "recording the certificate");
                goto out;
        }
        snap = json_object_new_object();
        if (!snap || json_add_str(snap, "sha256", f.fingerprint) < 0 || json_add_str(snap, "serial", f.serial) < 0 ||
            json_object_object_add(snap, "superseded", sup) < 0) {
                r = -ENOMEM;
                goto out;
        }
        sup = NULL;
        *ret_snap = snap;
        snap = NULL;
        r = 0;
out:
        json_object_put(sup);
        json_object_put(snap);
        sqlite3_finalize(st);
        cert_facts_clear(&f);
        return r;
}

/* A result must close an open intent of the same device. */
static int intent_check(struct ledger *l, int64_t intent_id, const char *ecid)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT kind, ecid FROM events WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, intent_id);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                r = rc == SQLITE_DONE ? fl_err(l->ctx, -EINVAL, "ledger: result for intent %lld: no such event",
                                               (long long)intent_id)
                                      : sql_err(l, rc, "reading the intent");
                goto out;
        }
        {
                const char *kind = (const char *)sqlite3_column_text(st, 0);
                const char *iecid = (const char *)sqlite3_column_text(st, 1);
                if (!kind || strcmp(kind, "intent")) {
                        r = fl_err(l->ctx, -EINVAL, "ledger: result for intent %lld: event %lld is a %s, not an intent",
                                   (long long)intent_id, (long long)intent_id, kind ? kind : "?");
                        goto out;
                }
                if ((iecid == NULL) != (ecid == NULL) || (iecid && strcmp(iecid, ecid))) {
                        r = fl_err(l->ctx, -EINVAL, "ledger: result for intent %lld: the intent is for ECID %s, not %s",
                                   (long long)intent_id, iecid ? iecid : "(none)", ecid ? ecid : "(none)");
                        goto out;
                }
        }
        sqlite3_finalize(st);
        st = NULL;
        r = stmt(l, "SELECT id FROM events WHERE intent_id = ?1 LIMIT 1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, intent_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = fl_err(l->ctx, -EEXIST, "ledger: intent %lld was closed already by event %lld", (long long)intent_id,
                           (long long)sqlite3_column_int64(st, 0));
        else if (rc != SQLITE_DONE)
                r = sql_err(l, rc, "reading results");
        else
                r = 0;
out:
        sqlite3_finalize(st);
        return r;
}

#define EVENT_COLS                                                                                              \
        "id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash, "      \
        "typeof(id), typeof(intent_id)"

struct ledger_iter {
        struct ledger *l;
        sqlite3_stmt *st;
        struct ledger_row row;
};

/* Fill row from the statement's current row. Returns a description of the
 * first column that is not what the schema promises (NULL when fine); the
 * row is filled either way, with "" for missing text. */
static const char *row_load(sqlite3_stmt *st, struct ledger_row *row);

/* Before a writer links a new event to the head: the head's stored hash
 * must match its contents and its prev_hash must be the hash of the event
 * before it. Constant time (two indexed reads, one hash); an edit deeper in
 * the chain is verify ledger's to find. -EBADMSG naming the event. */
static int head_check(struct ledger *l)
{
        unsigned char h[LEDGER_HASH_LEN], before[LEDGER_HASH_LEN] = { 0 };
        sqlite3_stmt *st = NULL, *pst = NULL;
        struct ledger_row row;
        struct fl_buf b = { 0 };
        const char *problem;
        int rc, r;

        r = stmt(l, "SELECT " EVENT_COLS " FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                r = 0;
                goto out;
        }
        if (rc != SQLITE_ROW) {
                r = sql_err(l, rc, "reading the last event");
                goto out;
        }
        problem = row_load(st, &row);
        if (problem) {
                r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest): %s; refusing to append to a "
                           "broken chain (see fuseline verify ledger)", l->path, (long long)row.id, problem);
                goto out;
        }
        r = hash_with(&row, row.prev_hash, &b, h);
        if (r < 0)
                goto out;
        if (memcmp(h, row.hash, LEDGER_HASH_LEN)) {
                r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest, %s %s): edited: its contents no "
                           "longer match its hash; refusing to append to a broken chain (see fuseline verify "
                           "ledger)", l->path, (long long)row.id, row.time, row.command);
                goto out;
        }
        r = stmt(l, "SELECT id, hash FROM events WHERE id < ?1 ORDER BY id DESC LIMIT 1", &pst);
        if (r < 0)
                goto out;
        sqlite3_bind_int64(pst, 1, row.id);
        rc = sqlite3_step(pst);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(pst, 1) == LEDGER_HASH_LEN)
                memcpy(before, sqlite3_column_blob(pst, 1), LEDGER_HASH_LEN);
        else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                r = sql_err(l, rc, "reading the event before the last");
                goto out;
        }
        if (memcmp(before, row.prev_hash, LEDGER_HASH_LEN)) {
                r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest, %s %s): broken link: it does not "
                           "follow event %lld; refusing to append to a broken chain (see fuseline verify ledger)",
                           l->path, (long long)row.id, row.time, row.command,
                           rc == SQLITE_ROW ? (long long)sqlite3_column_int64(pst, 0) : 0LL);
                goto out;
        }
        r = 0;
out:
        sqlite3_finalize(pst);
        sqlite3_finalize(st);
        free(b.p);
        return r;
}

/* The chain's tail: the newest event's hash and the next id to issue. */
static int chain_tail(struct ledger *l, unsigned char prev[LEDGER_HASH_LEN], int64_t *ret_next)
{
        sqlite3_stmt *st = NULL;
        int64_t last = 0, seq = 0;
        int rc, r;

        memset(prev, 0, LEDGER_HASH_LEN);
        r = head_check(l);
        if (r < 0)
                return r;
        r = stmt(l, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                last = sqlite3_column_int64(st, 0);
                if (sqlite3_column_bytes(st, 1) == LEDGER_HASH_LEN)
                        memcpy(prev, sqlite3_column_blob(st, 1), LEDGER_HASH_LEN);
        } else if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading the last event");
                goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        r = stmt(l, "SELECT seq FROM sqlite_sequence WHERE name = 'events'", &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                seq = sqlite3_column_int64(st, 0);
        else if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading the event sequence");
                goto out;
        }
        /* After deleted newest events the next id stays past them, so the
         * gap remains visible to verify. */
        *ret_next = (seq > last ? seq : last) + 1;
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
}

static int append_one(struct ledger *l, sqlite3_stmt *ins, const struct ledger_event *ev, struct prepared *p,
                      int64_t id, unsigned char prev[LEDGER_HASH_LEN], struct fl_buf *b, struct ledger_appended *out)
{
        json_object *details = NULL, *snap = NULL;
        struct ledger_row row = { 0 };
        const char *text;
        char now[LEDGER_TIME_LEN];
        int rc, r;

        if (ev->time)
                snprintf(now, sizeof(now), "%s", ev->time);
        else
                time_now_utc(now, sizeof(now));
        if (ev->kind == LEDGER_RESULT) {
                r = intent_check(l, ev->intent_id, p->has_ecid ? p->ecid : NULL);
                if (r < 0)
                        return r;
        }
        /* The caller's object plus the ledger's snapshots, serialised once. */
        details = json_object_get(p->details);
        if (ev->device || ev->cert) {
                r = device_apply(l, p->ecid, ev->device, now, &snap);
                if (r < 0)
                        goto out;
                json_object_object_add(details, "device", snap);
                snap = NULL;
        }
        if (ev->cert) {
                r = cert_apply(l, p->ecid, ev->cert, p->cert, now, &snap);
                if (r < 0)
                        goto out;
                json_object_object_add(details, "certificate", snap);
                snap = NULL;
        }
        text = json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text) {
                r = -ENOMEM;
                goto out;
        }

        row.id = id;
        row.time = now;
        row.station = p->station;
        row.operator = p->operator;
        row.command = ev->command;
        row.ecid = p->has_ecid ? p->ecid : NULL;
        row.kind = ledger_kind_name(ev->kind);
        row.intent_id = ev->intent_id;
        row.outcome = ev->outcome;
        row.details = text;
        memcpy(row.prev_hash, prev, LEDGER_HASH_LEN);
        r = hash_with(&row, prev, b, row.hash);
        if (r < 0)
                goto out;

        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
        sqlite3_bind_int64(ins, 1, row.id);
        sqlite3_bind_text(ins, 2, row.time, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, row.station, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, row.operator, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, row.command, -1, SQLITE_STATIC);
        bind_text_or_null(ins, 6, row.ecid);
        sqlite3_bind_text(ins, 7, row.kind, -1, SQLITE_STATIC);
        if (row.intent_id)
                sqlite3_bind_int64(ins, 8, row.intent_id);
        sqlite3_bind_text(ins, 9, row.outcome, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 10, row.details, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 11, row.prev_hash, LEDGER_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 12, row.hash, LEDGER_HASH_LEN, SQLITE_STATIC);
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "appending the event");
                goto out;
        }
        memcpy(prev, row.hash, LEDGER_HASH_LEN);
        out->id = id;
        memcpy(out->hash, row.hash, LEDGER_HASH_LEN);
        memcpy(out->time, now, LEDGER_TIME_LEN);
        r = 0;
out:
        json_object_put(snap);
        json_object_put(details);
        return r;
}

/* One attempt: -EBUSY (without a message) when the lock could not be had. */
static int append_txn(struct ledger *l, const struct ledger_event *evs, struct prepared *p, size_t n,
                      struct ledger_appended *out)
{
        unsigned char prev[LEDGER_HASH_LEN];
        sqlite3_stmt *ins = NULL;
        struct fl_buf b = { 0 };
        int64_t next = 0;
        int rc, r;

        rc = begin_immediate(l);
        if ((rc & 0xff) == SQLITE_BUSY)
                return -EBUSY;
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "starting a transaction");
        r = chain_tail(l, prev, &next);
        if (r < 0)
                goto fail;
        r = stmt(l,
                 "INSERT INTO events (id, time, station, operator, command, ecid, kind, intent_id, outcome, "
                 "details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                 &ins);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                r = append_one(l, ins, &evs[i], &p[i], next + (int64_t)i, prev, &b, &out[i]);
                if (r < 0)
                        goto fail;
        }
        sqlite3_finalize(ins);
        ins = NULL;
        rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
        if ((rc & 0xff) == SQLITE_BUSY) {
                r = -EBUSY;
                goto fail;
        }
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "committing the event");
                goto fail;
        }
        free(b.p);
        return 0;
fail:
        sqlite3_finalize(ins);
        free(b.p);
        /* A failed statement may already have rolled the transaction back
         * (SQLITE_FULL does); ROLLBACK then just reports "no transaction". */
        if (!sqlite3_get_autocommit(l->db))
                sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

int ledger_append_batch(struct ledger *l, const struct ledger_event *evs, size_t n, struct ledger_appended *ret)
{
        struct prepared *p = NULL;
        struct ledger_appended *out = NULL;
        uint64_t deadline;
        int r;

        if (!l || !evs || n == 0)
                return -EINVAL;
        if (l->mode != LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: opened for reading only", l->path);
        p = calloc(n, sizeof(*p));
        out = calloc(n, sizeof(*out));
        if (!p || !out) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                r = prepare_event(l->ctx, &evs[i], i, &p[i]);
                if (r < 0)
                        goto out;
        }
        deadline = mono_ms() + l->busy_ms;
        for (;;) {
                r = append_txn(l, evs, p, n, out);
                if (r != -EBUSY || mono_ms() >= deadline)
                        break;
                sleep_ms(1 + (unsigned)(rand() % 10));
        }
        if (r == -EBUSY)
                r = fl_err(l->ctx, -EBUSY, "ledger %s: other writers held the database for more than %u ms", l->path,
                           l->busy_ms);
        if (r < 0)
                goto out;
        if (ret)
                memcpy(ret, out, n * sizeof(*out));
        r = 0;
out:
        for (size_t i = 0; p && i < n; i++)
                prepared_clear(&p[i]);
        free(p);
        free(out);
        return r;
}

int ledger_append(struct ledger *l, const struct ledger_event *ev, struct ledger_appended *ret)
{
        return ledger_append_batch(l, ev, 1, ret);
}

/* ---- reading events ----------------------------------------------------- */

static const char *row_load(sqlite3_stmt *st, struct ledger_row *row)
{
        static const char *const names[] = { "id", "time", "station", "operator", "command", "ecid",
                                             "kind", "intent_id", "outcome", "details" };
        const char **text[] = { NULL, &row->time, &row->station, &row->operator, &row->command, &row->ecid,
                                &row->kind, NULL, &row->outcome, &row->details };
        static _Thread_local char why[96];
        const char *problem = NULL;

        memset(row, 0, sizeof(*row));
        row->id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
                problem = "id is not an integer";
        for (int i = 1; i < 10; i++) {
                const char *t;
                int type;
                if (!text[i])
                        continue;
                type = sqlite3_column_type(st, i);
                t = (const char *)sqlite3_column_text(st, i);
                if (i == 5 && type == SQLITE_NULL) {
                        *text[i] = NULL;
                        continue;
                }
                *text[i] = t ? t : "";
                if (!problem && (type != SQLITE_TEXT || !t || (size_t)sqlite3_column_bytes(st, i) != strlen(t))) {
                        snprintf(why, sizeof(why), "column %s is not text", names[i]);
                        problem = why;
                }
        }
        if (sqlite3_column_type(st, 7) == SQLITE_INTEGER) {
                row->intent_id = sqlite3_column_int64(st, 7);
                if (row->intent_id <= 0 && !problem)
                        problem = "column intent_id is not a positive integer";
        } else if (sqlite3_column_type(st, 7) != SQLITE_NULL && !problem) {
                problem = "column intent_id is not an integer";
        }
        for (int i = 10; i < 12; i++) {
                unsigned char *dst = i == 10 ? row->prev_hash : row->hash;
                if (sqlite3_column_type(st, i) == SQLITE_BLOB && sqlite3_column_bytes(st, i) == LEDGER_HASH_LEN) {
                        memcpy(dst, sqlite3_column_blob(st, i), LEDGER_HASH_LEN);
                } else if (!problem) {
                        snprintf(why, sizeof(why), "column %s is not a %d-byte blob", i == 10 ? "prev_hash" : "hash",
                                 LEDGER_HASH_LEN);
                        problem = why;
                }
        }
        return problem;
}

int ledger_iter_new(struct ledger *l, const struct ledger_filter *f, struct ledger_iter **ret)
{
        struct ledger_iter *it;
        char sql[512];
        int r;

        snprintf(sql, sizeof(sql), "SELECT " EVENT_COLS " FROM events WHERE 1%s%s%s ORDER BY id",
                 f && f->since ? " AND time >= ?1" : "", f && f->ecid ? " AND ecid = ?2" : "",
                 f && f->intents_open
                         ? " AND kind = 'intent' AND NOT EXISTS (SELECT 1 FROM events r WHERE r.intent_id = events.id)"
                         : "");
        it = calloc(1, sizeof(*it));
        if (!it)
                return -ENOMEM;
        it->l = l;
        r = stmt(l, sql, &it->st);
        if (r < 0) {
                free(it);
                return r;
        }
        if (f && f->since)
                sqlite3_bind_text(it->st, 1, f->since, -1, SQLITE_TRANSIENT);
        if (f && f->ecid)
                sqlite3_bind_text(it->st, 2, f->ecid, -1, SQLITE_TRANSIENT);
        *ret = it;
        return 0;
}

int ledger_iter_next(struct ledger_iter *it, const struct ledger_row **ret)
{
        int rc = sqlite3_step(it->st);

        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return sql_err(it->l, rc, "reading events");
        (void)row_load(it->st, &it->row);
        *ret = &it->row;
        return 1;
}

void ledger_iter_free(struct ledger_iter *it)
{
        if (!it)
                return;
        sqlite3_finalize(it->st);
        free(it);
}

/* ---- devices and certificates ------------------------------------------- */

void ledger_device_info_clear(struct ledger_device_info *d)
{
        if (!d)
                return;
        free(d->ecid);
        free(d->chip);
        free(d->module);
        free(d->serial);
        free(d->first_seen);
        free(d->last_seen);
        free(d->state);
        memset(d, 0, sizeof(*d));
}

int ledger_device_get(struct ledger *l, const char *ecid, struct ledger_device_info *ret)
{
        struct ledger_device_info d = { 0 };
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT ecid, chip, module, serial, first_seen, last_seen, state FROM devices WHERE ecid = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                r = -ENOENT;
                goto out;
        }
        if (rc != SQLITE_ROW) {
                r = sql_err(l, rc, "reading the device");
                goto out;
        }
        if (col_dup(st, 0, &d.ecid) < 0 || col_dup(st, 1, &d.chip) < 0 || col_dup(st, 2, &d.module) < 0 ||
            col_dup(st, 3, &d.serial) < 0 || col_dup(st, 4, &d.first_seen) < 0 || col_dup(st, 5, &d.last_seen) < 0 ||
            col_dup(st, 6, &d.state) < 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret = d;
        memset(&d, 0, sizeof(d));
        r = 0;
out:
        ledger_device_info_clear(&d);
        sqlite3_finalize(st);
        return r;
}

void ledger_cert_info_clear(struct ledger_cert_info *c)
{
        if (!c)
                return;
        free(c->fingerprint);
        free(c->ecid);
        free(c->issuer);
        free(c->serial);
        free(c->not_before);
        free(c->not_after);
        free(c->status);
        free(c->added);
        free(c->der);
        memset(c, 0, sizeof(*c));
}

void ledger_cert_list_free(struct ledger_cert_info *list, size_t n)
{
        for (size_t i = 0; list && i < n; i++)
                ledger_cert_info_clear(&list[i]);
        free(list);
}

#define CERT_COLS "fingerprint, ecid, issuer, serial, not_before, not_after, status, added, der"

static int cert_load(sqlite3_stmt *st, struct ledger_cert_info *c)
{
        int n;

        memset(c, 0, sizeof(*c));
        if (col_dup(st, 0, &c->fingerprint) < 0 || col_dup(st, 1, &c->ecid) < 0 || col_dup(st, 2, &c->issuer) < 0 ||
            col_dup(st, 3, &c->serial) < 0 || col_dup(st, 4, &c->not_before) < 0 ||
            col_dup(st, 5, &c->not_after) < 0 || col_dup(st, 6, &c->status) < 0 || col_dup(st, 7, &c->added) < 0)
                goto nomem;
        n = sqlite3_column_bytes(st, 8);
        c->der = malloc(n > 0 ? (size_t)n : 1);
        if (!c->der)
                goto nomem;
        if (n > 0)
                memcpy(c->der, sqlite3_column_blob(st, 8), (size_t)n);
        c->der_len = n > 0 ? (size_t)n : 0;
        return 0;
nomem:
        ledger_cert_info_clear(c);
        return -ENOMEM;
}

int ledger_cert_current(struct ledger *l, const char *ecid, struct ledger_cert_info *ret)
{
        struct ledger_cert_info c;
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 AND status = 'valid'", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                r = -ENOENT;
        else if (rc != SQLITE_ROW)
                r = sql_err(l, rc, "reading certificates");
        else if ((r = cert_load(st, &c)) == 0)
                *ret = c;
        sqlite3_finalize(st);
        return r;
}

int ledger_cert_list(struct ledger *l, const char *ecid, struct ledger_cert_info **ret, size_t *ret_n)
{
        struct ledger_cert_info *list = NULL;
        sqlite3_stmt *st = NULL;
        size_t n = 0;
        int rc, r;

        r = stmt(l, "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 ORDER BY added, rowid", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct ledger_cert_info *nl = realloc(list, (n + 1) * sizeof(*list));
                if (!nl) {
                        r = -ENOMEM;
                        goto out;
                }
                list = nl;
                r = cert_load(st, &list[n]);
                if (r < 0)
                        goto out;
                n++;
        }
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading certificates");
                goto out;
        }
        *ret = list;
        *ret_n = n;
        list = NULL;
        n = 0;
        r = 0;
out:
        ledger_cert_list_free(list, n);
        sqlite3_finalize(st);
        return r;
}

/* ---- verification ------------------------------------------------------- */

void ledger_report_clear(struct ledger_report *r)
{
        if (!r)
                return;
        free(r->dangling);
        memset(r, 0, sizeof(*r));
}

static int dangling_push(struct ledger_dangling **arr, size_t *n, size_t *cap, const struct ledger_row *row)
{
        struct ledger_dangling *d;

        if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                struct ledger_dangling *na = realloc(*arr, nc * sizeof(**arr));
                if (!na)
                        return -ENOMEM;
                *arr = na;
                *cap = nc;
        }
        d = &(*arr)[(*n)++];
        memset(d, 0, sizeof(*d));
        d->id = row->id;
        snprintf(d->time, sizeof(d->time), "%s", row->time);
        snprintf(d->ecid, sizeof(d->ecid), "%s", row->ecid ? row->ecid : "");
        snprintf(d->command, sizeof(d->command), "%s", row->command);
        return 0;
}

static void dangling_close(struct ledger_dangling *arr, size_t *n, int64_t intent_id)
{
        /* Results usually close recent intents: search from the end. */
        for (size_t i = *n; i-- > 0;)
                if (arr[i].id == intent_id) {
                        memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(*arr));
                        (*n)--;
                        return;
                }
}

static void fault(struct ledger_report *rep, enum ledger_fault f, int64_t id, const char *fmt, ...) FL_PRINTF(4, 5);
static void fault(struct ledger_report *rep, enum ledger_fault f, int64_t id, const char *fmt, ...)
{
        va_list ap;

        rep->fault = f;
        rep->bad_id = id;
        va_start(ap, fmt);
        vsnprintf(rep->message, sizeof(rep->message), fmt, ap);
        va_end(ap);
}

/* Was this intact event moved? Its hash validates with its own prev_hash
 * under another id: try the id after the event its prev_hash names, then
 * ids near its position. Returns the original id or 0. */
static int64_t original_id(struct ledger *l, const struct ledger_row *row, struct fl_buf *b)
{
        static const unsigned char zero[LEDGER_HASH_LEN];
        struct ledger_row r2 = *row;
        unsigned char h[LEDGER_HASH_LEN];
        sqlite3_stmt *st = NULL;
        int64_t cand = 0;

        if (!memcmp(row->prev_hash, zero, LEDGER_HASH_LEN)) {
                cand = 1;
        } else if (stmt(l, "SELECT id FROM events WHERE hash = ?1", &st) == 0) {
                sqlite3_bind_blob(st, 1, row->prev_hash, LEDGER_HASH_LEN, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW)
                        cand = sqlite3_column_int64(st, 0) + 1;
                sqlite3_finalize(st);
        }
        if (cand > 0 && cand != row->id) {
                r2.id = cand;
                if (hash_with(&r2, row->prev_hash, b, h) == 0 && !memcmp(h, row->hash, LEDGER_HASH_LEN))
                        return cand;
        }
        for (int64_t d = 1; d <= 1024; d++)
                for (int s = -1; s <= 1; s += 2) {
                        r2.id = row->id + s * d;
                        if (r2.id < 1)
                                continue;
                        if (hash_with(&r2, row->prev_hash, b, h) == 0 && !memcmp(h, row->hash, LEDGER_HASH_LEN))
                                return r2.id;
                }
        return 0;
}

static int verify_chain(struct ledger *l, struct ledger_report *rep)
{
        struct ledger_row row;
        unsigned char prev[LEDGER_HASH_LEN] = { 0 }, h[LEDGER_HASH_LEN];
        int64_t last_id = 0;
        sqlite3_stmt *st = NULL;
        struct fl_buf b = { 0 };
        size_t cap = 0;
        int rc, r;

        r = stmt(l, "SELECT " EVENT_COLS " FROM events ORDER BY id", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *problem = row_load(st, &row);

                rep->events++;
                if (problem) {
                        fault(rep, LEDGER_FAULT_MALFORMED, row.id, "event %lld: %s", (long long)row.id, problem);
                        goto done;
                }
                r = hash_with(&row, row.prev_hash, &b, h);
                if (r < 0)
                        goto out;
                if (memcmp(h, row.hash, LEDGER_HASH_LEN)) {
                        int64_t orig = original_id(l, &row, &b);
                        if (orig)
                                fault(rep, LEDGER_FAULT_REORDERED, row.id,
                                      "event %lld: reordered: the event stored here is event %lld, moved", (long long)row.id,
                                      (long long)orig);
                        else
                                fault(rep, LEDGER_FAULT_EDITED, row.id,
                                      "event %lld (%s %s %s): edited: its contents no longer match its hash",
                                      (long long)row.id, row.time, row.command, row.ecid ? row.ecid : "-");
                        goto done;
                }
                if (row.id != last_id + 1) {
                        if (row.id == last_id + 2)
                                fault(rep, LEDGER_FAULT_DELETED, row.id, "event %lld: deleted: event %lld before it is missing",
                                      (long long)row.id, (long long)last_id + 1);
                        else
                                fault(rep, LEDGER_FAULT_DELETED, row.id,
                                      "event %lld: deleted: events %lld..%lld before it are missing", (long long)row.id,
                                      (long long)last_id + 1, (long long)row.id - 1);
                        goto done;
                }
                if (memcmp(row.prev_hash, prev, LEDGER_HASH_LEN)) {
                        fault(rep, LEDGER_FAULT_BROKEN_LINK, row.id,
                              "event %lld: broken link: it does not follow event %lld (one of them was replaced)",
                              (long long)row.id, (long long)last_id);
                        goto done;
                }
                if (!strcmp(row.kind, "intent")) {
                        r = dangling_push(&rep->dangling, &rep->n_dangling, &cap, &row);
                        if (r < 0)
                                goto out;
                } else if (!strcmp(row.kind, "result")) {
                        dangling_close(rep->dangling, &rep->n_dangling, row.intent_id);
                }
                memcpy(prev, row.hash, LEDGER_HASH_LEN);
                last_id = row.id;
                rep->head_id = last_id;
                memcpy(rep->head, prev, LEDGER_HASH_LEN);
        }
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading events");
                goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        r = stmt(l, "SELECT seq FROM sqlite_sequence WHERE name = 'events'", &st);
        if (r < 0)
                goto out;
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > last_id) {
                int64_t seq = sqlite3_column_int64(st, 0);
                fault(rep, LEDGER_FAULT_TRUNCATED, last_id + 1,
                      "event %lld: deleted: the newest events %lld..%lld are missing (ids were issued up to %lld)",
                      (long long)last_id + 1, (long long)last_id + 1, (long long)seq, (long long)seq);
        }
done:
        r = 0;
out:
        sqlite3_finalize(st);
        free(b.p);
        return r;
}

/* The newest device snapshot the events carry for an ECID (malloc'd JSON
 * text, NULL if none). */
static int last_snapshot(struct ledger *l, const char *ecid, json_object **ret, int64_t *ret_id)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        *ret = NULL;
        *ret_id = 0;
        r = stmt(l,
                 "SELECT id, json_extract(details, '$.device') FROM events WHERE ecid = ?1 AND json_valid(details) "
                 "AND json_type(details, '$.device') = 'object' ORDER BY id DESC LIMIT 1",
                 &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *t = (const char *)sqlite3_column_text(st, 1);
                *ret_id = sqlite3_column_int64(st, 0);
                *ret = t ? json_tokener_parse(t) : NULL;
        } else if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading device events");
        }
        sqlite3_finalize(st);
        return r;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static bool str_eq(const char *a, const char *b)
{
        return (!a && !b) || (a && b && !strcmp(a, b));
}

static int verify_devices(struct ledger *l, struct ledger_report *rep)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT ecid, chip, module, serial, state FROM devices ORDER BY ecid", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *ecid = (const char *)sqlite3_column_text(st, 0);
                const char *cols[4] = { (const char *)sqlite3_column_text(st, 4),
                                        (const char *)sqlite3_column_text(st, 1),
                                        (const char *)sqlite3_column_text(st, 2),
                                        (const char *)sqlite3_column_text(st, 3) };
                static const char *const keys[4] = { "state", "chip", "module", "serial" };
                json_object *snap = NULL;
                int64_t sid;

                r = last_snapshot(l, ecid ? ecid : "", &snap, &sid);
                if (r < 0)
                        goto out;
                if (!snap) {
                        fault(rep, LEDGER_FAULT_STATE, 0, "device %s: no event records it", ecid ? ecid : "?");
                        goto done;
                }
                for (int i = 0; i < 4; i++)
                        if (!str_eq(cols[i], jstr(snap, keys[i]))) {
                                fault(rep, LEDGER_FAULT_STATE, sid,
                                      "device %s: %s is '%s' but event %lld recorded '%s'", ecid, keys[i],
                                      cols[i] ? cols[i] : "", (long long)sid, jstr(snap, keys[i]) ? jstr(snap, keys[i]) : "");
                                json_object_put(snap);
                                goto done;
                        }
                json_object_put(snap);
        }
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading devices");
                goto out;
        }
done:
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
}

static int count_query(struct ledger *l, const char *sql, const char *a, const char *b, int64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int rc, r = stmt(l, sql, &st);

        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        if (b)
                sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        else
                r = sql_err(l, rc, "checking certificates");
        sqlite3_finalize(st);
        return r;
}

static int verify_certs(struct ledger *l, struct ledger_report *rep)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT fingerprint, ecid, der, status FROM certificates ORDER BY rowid", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *fp = (const char *)sqlite3_column_text(st, 0);
                const char *ecid = (const char *)sqlite3_column_text(st, 1);
                const char *status = (const char *)sqlite3_column_text(st, 3);
                unsigned char md[EVP_MAX_MD_SIZE];
                char hex[2 * LEDGER_HASH_LEN + 1];
                unsigned int mdlen = 0;
                int64_t rec = 0, sup = 0;

                fp = fp ? fp : "";
                ecid = ecid ? ecid : "";
                if (!EVP_Digest(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), md, &mdlen,
                                EVP_sha256(), NULL)) {
                        r = fl_err(l->ctx, -EIO, "ledger: SHA-256 failed (%s)", ossl_errstr());
                        goto out;
                }
                hex_encode(md, mdlen, hex);
                if (strcmp(hex, fp)) {
                        fault(rep, LEDGER_FAULT_STATE, 0, "certificate sha256:%.64s (ECID %s): its DER was changed", fp,
                              ecid);
                        goto done;
                }
                r = count_query(l,
                                "SELECT count(*) FROM events WHERE ecid = ?1 AND json_valid(details) "
                                "AND json_extract(details, '$.certificate.sha256') = ?2",
                                ecid, fp, &rec);
                if (r >= 0)
                        r = count_query(l,
                                        "SELECT count(*) FROM events, json_each(events.details, "
                                        "'$.certificate.superseded') AS j WHERE events.ecid = ?1 "
                                        "AND json_valid(events.details) AND j.value = ?2",
                                        ecid, fp, &sup);
                if (r < 0)
                        goto out;
                if (rec == 0) {
                        fault(rep, LEDGER_FAULT_STATE, 0, "certificate sha256:%s (ECID %s): no event records it", fp,
                              ecid);
                        goto done;
                }
                if (status && ((!strcmp(status, "valid") && sup > 0) || (!strcmp(status, "superseded") && sup == 0))) {
                        fault(rep, LEDGER_FAULT_STATE, 0,
                              "certificate sha256:%s (ECID %s): status '%s' disagrees with the events", fp, ecid, status);
                        goto done;
                }
        }
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading certificates");
                goto out;
        }
done:
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
}

static int verify_guards(struct ledger *l, struct ledger_report *rep)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(guard_triggers); i++) {
                int64_t n = 0;
                int r;
                if (guard_triggers[i].since > l->version)
                        continue;
                r = count_query(l, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                                guard_triggers[i].name, NULL, &n);
                if (r < 0)
                        return r;
                if (n == 0) {
                        fault(rep, LEDGER_FAULT_SCHEMA, 0,
                              "trigger %s is missing: the append-only guard was removed", guard_triggers[i].name);
                        return 0;
                }
        }
        return 0;
}

/* ---- signed checkpoints ------------------------------------------------- */

#define CHECKPOINT_TAG "fuseline-checkpoint/1"

int ledger_head(struct ledger *l, int64_t *ret_id, unsigned char ret_hash[LEDGER_HASH_LEN])
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == LEDGER_HASH_LEN) {
                *ret_id = sqlite3_column_int64(st, 0);
                memcpy(ret_hash, sqlite3_column_blob(st, 1), LEDGER_HASH_LEN);
        } else if (rc == SQLITE_DONE) {
                *ret_id = 0;
                memset(ret_hash, 0, LEDGER_HASH_LEN);
        } else {
                r = rc == SQLITE_ROW ? fl_err(l->ctx, -EBADMSG, "ledger %s: the newest event's hash is malformed", l->path)
                                     : sql_err(l, rc, "reading the newest event");
        }
        sqlite3_finalize(st);
        return r;
}

int ledger_checkpoint_message(int64_t event_id, const unsigned char head[LEDGER_HASH_LEN], const char *time,
                              unsigned char **ret, size_t *ret_len)
{
        struct fl_buf b = { 0 };
        int r = 0;

        r |= canon_str(&b, CHECKPOINT_TAG);
        r |= canon_int(&b, event_id);
        r |= canon_field(&b, head, LEDGER_HASH_LEN);
        r |= canon_str(&b, time);
        if (r) {
                free(b.p);
                return -ENOMEM;
        }
        *ret = b.p;
        *ret_len = b.len;
        return 0;
}

int ledger_checkpoint_tbs(fl_ctx *ctx, const struct ledger_checkpoint *cp, enum sign_scheme s, struct sign_tbs *ret)
{
        unsigned char *msg = NULL, md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        size_t msg_len;
        int r;

        r = ledger_checkpoint_message(cp->event_id, cp->head, cp->time, &msg, &msg_len);
        if (r < 0)
                return r;
        if (!sign_scheme_prehashed(s)) {
                *ret = (struct sign_tbs){ .data = msg, .len = msg_len };
                return 0;
        }
        if (!EVP_Digest(msg, msg_len, md, &mdlen, EVP_get_digestbyname(sign_scheme_md(s)), NULL)) {
                r = fl_err(ctx, -EIO, "checkpoint digest failed (%s)", ossl_errstr());
                goto out;
        }
        ret->data = malloc(mdlen);
        if (!ret->data) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(ret->data, md, mdlen);
        ret->len = mdlen;
        ret->is_digest = true;
        r = 0;
out:
        free(msg);
        return r;
}

/* The checkpoint's signature against its own public key: 0, or -EBADMSG
 * (or -EINVAL for an unusable key/scheme) with the reason on ctx. */
static int checkpoint_sig_check(fl_ctx *ctx, const struct ledger_checkpoint *cp)
{
        enum sign_scheme s = SCHEME_NONE;
        const unsigned char *p = cp->public_key;
        struct sign_tbs tbs = { 0 };
        EVP_PKEY *pkey = NULL;
        int r;

        r = sign_scheme_parse(ctx, cp->scheme ? cp->scheme : "", &s);
        if (r < 0)
                return r;
        if (sign_scheme_is_mac(s))
                return fl_err(ctx, -EINVAL, "checkpoint scheme %s is a MAC; a checkpoint needs a public-key signature",
                              cp->scheme);
        if (!p || !cp->public_key_len || !(pkey = d2i_PUBKEY(NULL, &p, (long)cp->public_key_len)) ||
            p != cp->public_key + cp->public_key_len) {
                r = fl_err(ctx, -EINVAL, "checkpoint public key is not one DER SubjectPublicKeyInfo");
                goto out;
        }
        r = ledger_checkpoint_tbs(ctx, cp, s, &tbs);
        if (r < 0)
                goto out;
        r = sign_verify_pkey(ctx, pkey, s, &tbs, cp->signature, cp->signature_len);
out:
        sign_tbs_free(&tbs);
        EVP_PKEY_free(pkey);
        return r;
}

int ledger_checkpoint_add(struct ledger *l, const struct ledger_checkpoint *cp, int64_t *ret_id)
{
        unsigned char have[LEDGER_HASH_LEN];
        sqlite3_stmt *st = NULL;
        bool found = false;
        int rc, r;

        if (l->mode != LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: opened for reading only", l->path);
        if (!time_is_canonical(cp->time))
                return fl_err(l->ctx, -EINVAL, "checkpoint: time '%.64s' is not YYYY-MM-DDTHH:MM:SSZ", cp->time);
        if ((r = check_text(l->ctx, "checkpoint role", cp->role, LEDGER_FIELD_MAX)) < 0 ||
            (r = check_text(l->ctx, "checkpoint key URI", cp->key_uri, 4096)) < 0)
                return r;
        if (!cp->signature || cp->signature_len == 0 || cp->signature_len > SIGN_RAW_MAX)
                return fl_err(l->ctx, -EINVAL, "checkpoint: signature is empty or too long");
        r = checkpoint_sig_check(l->ctx, cp);
        if (r < 0)
                return r;

        rc = begin_immediate(l);
        if (rc != SQLITE_OK)
                return sql_err(l, rc, "starting a transaction");
        r = stmt(l, "SELECT hash FROM events WHERE id = ?1", &st);
        if (r < 0)
                goto fail;
        sqlite3_bind_int64(st, 1, cp->event_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == LEDGER_HASH_LEN) {
                memcpy(have, sqlite3_column_blob(st, 0), LEDGER_HASH_LEN);
                found = true;
        } else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                r = sql_err(l, rc, "reading the checkpointed event");
                goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (!found || memcmp(have, cp->head, LEDGER_HASH_LEN)) {
                r = fl_err(l->ctx, -EBADMSG, "checkpoint: event %lld %s", (long long)cp->event_id,
                           found ? "has another hash than the one signed" : "does not exist");
                goto fail;
        }
        r = stmt(l,
                 "INSERT INTO checkpoints (time, event_id, head_hash, role, key_uri, scheme, public_key, signature) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                 &st);
        if (r < 0)
                goto fail;
        sqlite3_bind_text(st, 1, cp->time, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cp->event_id);
        sqlite3_bind_blob(st, 3, cp->head, LEDGER_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, cp->role, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, cp->key_uri, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, cp->scheme, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 7, cp->public_key, (int)cp->public_key_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 8, cp->signature, (int)cp->signature_len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "storing the checkpoint");
                goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
        rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = sql_err(l, rc, "committing the checkpoint");
                goto fail;
        }
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(l->db);
        return 0;
fail:
        sqlite3_finalize(st);
        if (!sqlite3_get_autocommit(l->db))
                sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

static int verify_checkpoints(struct ledger *l, struct ledger_report *rep, const struct ledger_trust *trust,
                              size_t n_trust)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        if (l->version < 2)
                return 0;
        r = stmt(l,
                 "SELECT c.id, c.time, c.event_id, c.head_hash, c.role, c.key_uri, c.scheme, c.public_key, "
                 "c.signature, e.hash FROM checkpoints c LEFT JOIN events e ON e.id = c.event_id ORDER BY c.id",
                 &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct ledger_checkpoint cp = { 0 };
                long long id = sqlite3_column_int64(st, 0);
                const char *time = (const char *)sqlite3_column_text(st, 1);
                const unsigned char *now_hash = sqlite3_column_blob(st, 9);
                unsigned char md[EVP_MAX_MD_SIZE];
                char fpr[2 * LEDGER_HASH_LEN + 1];
                unsigned int mdlen = 0;

                rep->n_checkpoints++;
                snprintf(cp.time, sizeof(cp.time), "%s", time ? time : "");
                cp.event_id = sqlite3_column_int64(st, 2);
                cp.role = (const char *)sqlite3_column_text(st, 4);
                cp.key_uri = (const char *)sqlite3_column_text(st, 5);
                cp.scheme = (const char *)sqlite3_column_text(st, 6);
                cp.public_key = sqlite3_column_blob(st, 7);
                cp.public_key_len = (size_t)sqlite3_column_bytes(st, 7);
                cp.signature = sqlite3_column_blob(st, 8);
                cp.signature_len = (size_t)sqlite3_column_bytes(st, 8);
                if (sqlite3_column_bytes(st, 3) != LEDGER_HASH_LEN || !cp.role) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id, "checkpoint %lld: malformed", id);
                        goto done;
                }
                memcpy(cp.head, sqlite3_column_blob(st, 3), LEDGER_HASH_LEN);
                if (!now_hash) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                              "event %lld: deleted: checkpoint %lld signed it, it is gone", (long long)cp.event_id, id);
                        goto done;
                }
                if (sqlite3_column_bytes(st, 9) != LEDGER_HASH_LEN || memcmp(now_hash, cp.head, LEDGER_HASH_LEN)) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                              "event %lld: rewritten: its hash is not the one checkpoint %lld signed",
                              (long long)cp.event_id, id);
                        goto done;
                }
                fl_err_clear(l->ctx);
                if (checkpoint_sig_check(l->ctx, &cp) < 0) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id, "checkpoint %lld (event %lld): %s", id,
                              (long long)cp.event_id,
                              fl_ctx_last_error(l->ctx) ? fl_ctx_last_error(l->ctx) : "bad signature");
                        fl_err_clear(l->ctx);
                        goto done;
                }
                if (trust) {
                        const struct ledger_trust *t = NULL;
                        for (size_t i = 0; i < n_trust; i++)
                                if (trust[i].role && !strcmp(trust[i].role, cp.role))
                                        t = &trust[i];
                        EVP_Digest(cp.public_key, cp.public_key_len, md, &mdlen, EVP_sha256(), NULL);
                        hex_encode(md, LEDGER_HASH_LEN, fpr);
                        if (!t) {
                                fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                                      "checkpoint %lld: signed by role '%.64s', which the keyset does not have", id,
                                      cp.role);
                                goto done;
                        }
                        if (!t->public_key_sha256 || strcmp(t->public_key_sha256, fpr)) {
                                fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                                      "checkpoint %lld: signed by key sha256:%s, not the keyset's '%.64s' key", id, fpr,
                                      cp.role);
                                goto done;
                        }
                }
                rep->checkpoint_event = cp.event_id;
                snprintf(rep->checkpoint_role, sizeof(rep->checkpoint_role), "%s", cp.role);
        }
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading checkpoints");
                goto out;
        }
done:
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
}

int ledger_verify(struct ledger *l, struct ledger_report *ret)
{
        return ledger_verify_trusted(l, NULL, 0, ret);
}

int ledger_verify_trusted(struct ledger *l, const struct ledger_trust *trust, size_t n_trust,
                          struct ledger_report *ret)
{
        struct ledger_report rep = { 0 };
        int r;

        /* One read transaction: a consistent snapshot while writers go on. */
        r = sqlite3_exec(l->db, "BEGIN", NULL, NULL, NULL);
        if (r != SQLITE_OK)
                return sql_err(l, r, "starting to read");
        r = verify_chain(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_checkpoints(l, &rep, trust, n_trust);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_devices(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_certs(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_guards(l, &rep);
        sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
        if (r < 0) {
                ledger_report_clear(&rep);
                return r;
        }
        *ret = rep;
        return 0;
}

int ledger_dangling_list(struct ledger *l, const char *ecid, struct ledger_dangling **ret, size_t *ret_n)
{
        struct ledger_filter f = { .ecid = ecid, .intents_open = true };
        struct ledger_dangling *arr = NULL;
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        size_t n = 0, cap = 0;
        int r;

        r = ledger_iter_new(l, &f, &it);
        if (r < 0)
                return r;
        while ((r = ledger_iter_next(it, &row)) > 0)
                if ((r = dangling_push(&arr, &n, &cap, row)) < 0)
                        break;
        ledger_iter_free(it);
        if (r < 0) {
                free(arr);
                return r;
        }
        *ret = arr;
        *ret_n = n;
        return 0;
}

/* ---- export formats ----------------------------------------------------- */

const char *ledger_csv_header(void)
{
        return "id,time,station,operator,command,ecid,kind,intent_id,outcome,details,prev_hash,hash";
}

static int csv_field(struct fl_buf *b, const char *s, bool first)
{
        size_t n = s ? strlen(s) : 0;
        bool quote = n && (strpbrk(s, ",\"\r\n") || s[0] == ' ' || s[n - 1] == ' ');
        int r = 0;

        if (!first)
                r |= fl_buf_put(b, ",", 1);
        if (!s)
                return r;
        if (!quote)
                return r | fl_buf_put(b, s, n);
        r |= fl_buf_put(b, "\"", 1);
        for (const char *p = s; *p; p++)
                r |= *p == '"' ? fl_buf_put(b, "\"\"", 2) : fl_buf_put(b, p, 1);
        return r | fl_buf_put(b, "\"", 1);
}

char *ledger_row_csv(const struct ledger_row *row)
{
        char id[24], intent[24], prev[2 * LEDGER_HASH_LEN + 1], hash[2 * LEDGER_HASH_LEN + 1];
        struct fl_buf b = { 0 };
        int r = 0;

        snprintf(id, sizeof(id), "%lld", (long long)row->id);
        snprintf(intent, sizeof(intent), "%lld", (long long)row->intent_id);
        hex_encode(row->prev_hash, LEDGER_HASH_LEN, prev);
        hex_encode(row->hash, LEDGER_HASH_LEN, hash);
        r |= csv_field(&b, id, true);
        r |= csv_field(&b, row->time, false);
        r |= csv_field(&b, row->station, false);
        r |= csv_field(&b, row->operator, false);
        r |= csv_field(&b, row->command, false);
        r |= csv_field(&b, row->ecid, false);
        r |= csv_field(&b, row->kind, false);
        r |= csv_field(&b, row->intent_id ? intent : NULL, false);
        r |= csv_field(&b, row->outcome, false);
        r |= csv_field(&b, row->details, false);
        r |= csv_field(&b, prev, false);
        r |= csv_field(&b, hash, false);
        r |= fl_buf_put(&b, "", 1);
        if (r) {
                free(b.p);
                return NULL;
        }
        return (char *)b.p;
}

json_object *ledger_row_json(const struct ledger_row *row)
{
        char prev[2 * LEDGER_HASH_LEN + 1], hash[2 * LEDGER_HASH_LEN + 1];
        json_object *o = json_object_new_object(), *details = NULL;

        if (!o)
                return NULL;
        hex_encode(row->prev_hash, LEDGER_HASH_LEN, prev);
        hex_encode(row->hash, LEDGER_HASH_LEN, hash);
        if (row->details) {
                details = json_tokener_parse(row->details);
                if (!details || !json_object_is_type(details, json_type_object)) {
                        json_object_put(details);
                        details = json_object_new_string(row->details);
                }
        }
        json_object_object_add(o, "id", json_object_new_int64(row->id));
        json_object_object_add(o, "time", json_object_new_string(row->time ? row->time : ""));
        json_object_object_add(o, "station", json_object_new_string(row->station ? row->station : ""));
        json_object_object_add(o, "operator", json_object_new_string(row->operator ? row->operator : ""));
        json_object_object_add(o, "command", json_object_new_string(row->command ? row->command : ""));
        json_object_object_add(o, "ecid", row->ecid ? json_object_new_string(row->ecid) : NULL);
        json_object_object_add(o, "kind", json_object_new_string(row->kind ? row->kind : ""));
        json_object_object_add(o, "intent_id", row->intent_id ? json_object_new_int64(row->intent_id) : NULL);
        json_object_object_add(o, "outcome", json_object_new_string(row->outcome ? row->outcome : ""));
        json_object_object_add(o, "details", details);
        json_object_object_add(o, "prev_hash", json_object_new_string(prev));
        json_object_object_add(o, "hash", json_object_new_string(hash));
        return o;
}
