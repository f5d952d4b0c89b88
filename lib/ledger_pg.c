/* ledger_pg.c — the ledger's PostgreSQL storage (libpq), the second backend
 * of ledger_db.h: a central ledger many stations append to at once.
 *
 * What differs from ledger_sqlite.c, and why:
 * - The chain lock is a transaction-level advisory lock taken right after
 *   BEGIN (READ COMMITTED, so the head read after the lock is granted sees
 *   the previous holder's commit); a UNIQUE constraint on events.prev_hash
 *   backs it up: no two events can ever share a predecessor.
 * - The ledger's identity is a one-row table fuseline_ledger(app_id,
 *   version) instead of SQLite's application_id/user_version pragmas.
 * - The highest id ever issued (SQLite's sqlite_sequence) is a one-row table
 *   kept by an insert trigger that stations cannot write themselves.
 * - The guards are PL/pgSQL triggers with the SQLite triggers' names, plus
 *   TRUNCATE guards (TRUNCATE fires no row trigger).
 * - A dropped connection is re-made with back-off for a bounded time; inside
 *   a transaction it is reported as -EAGAIN (the caller repeats the whole
 *   transaction); a COMMIT whose reply was lost is -EAGAIN too, and the
 *   caller looks for what it wrote before repeating (by content, not by
 *   transaction id), so an event is neither lost nor written twice.
 * - Passwords never travel in the location: libpq reads them from ~/.pgpass,
 *   a service file or PGPASSFILE; a URI carrying one is refused. */
#include <ctype.h>
#include <errno.h>

#include <libpq-fe.h>

#include "ledger_int.h"

/* Built-in type OIDs (PostgreSQL's pg_type.dat; fixed since the catalog's
 * bootstrap and part of the wire protocol). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_NAME 19
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_OID 26
#define OID_BPCHAR 1042
#define OID_VARCHAR 1043

/* Advisory lock keys, pg_advisory_xact_lock(int4, int4): 'FLDG' and what. */
#define LOCK_NS "1179403335"
#define LOCK_CHAIN LOCK_NS ", 1"
#define LOCK_SCHEMA LOCK_NS ", 2"

/* PostgreSQL 13: the oldest release the schema and tests were checked on. */
#define PG_MIN_VERSION 130000
/* One connection attempt may take this long when the URI sets no
 * connect_timeout (a black-holed host would otherwise hang for minutes). */
#define PG_ATTEMPT_S 10
/* The least time a write transaction may sit idle before the server ends it. */
#define PG_IDLE_MIN_MS 10000

/* The body of the guard triggers' function. `verify ledger` checks each
 * guard still runs exactly this (a replaced function that returns NEW would
 * leave the trigger in place but the table open). */
#define REFUSE_BODY "BEGIN RAISE EXCEPTION USING MESSAGE = TG_ARGV[0]; END"

#define GUARD(name, when, table, msg)                                                                           \
        "CREATE TRIGGER " name " " when " ON " table " FOR EACH ROW EXECUTE FUNCTION fuseline_refuse('" msg "');"
#define GUARD_TRUNCATE(table, msg)                                                                              \
        "CREATE TRIGGER " table "_no_truncate BEFORE TRUNCATE ON " table                                        \
        " FOR EACH STATEMENT EXECUTE FUNCTION fuseline_refuse('" msg "');"

/* The one way a station appends an event (LDBQ_INSERT_EVENT): a SECURITY
 * DEFINER procedure, so fuseline_station needs no INSERT on events. It
 * refuses a row unless this transaction holds the chain lock (the advisory
 * lock begin_write takes: pg_advisory_xact_lock(int4, int4) shows in
 * pg_locks with objsubid 2) and the row continues the chain: its id is one
 * past the highest ever issued (events_high_water, or a surviving newer
 * row) and its prev_hash the newest event's hash (32 zero bytes before the
 * first, as ledger_append.c chains it). The hash itself is the logic's and
 * verify's to check: the canonical bytes are not recomputed here.
 * Parameters are p_*: PL/pgSQL would take a bare "id" for the column. */
#define APPEND_ARGS                                                                                             \
        "p_id bigint, p_time text, p_station text, p_operator text, p_command text, p_ecid text, p_kind text, " \
        "p_intent_id bigint, p_outcome text, p_details text, p_prev_hash bytea, p_hash bytea"
#define APPEND_SIG "bigint, text, text, text, text, text, text, bigint, text, text, bytea, bytea"
#define APPEND_BODY                                                                                             \
        "DECLARE hw bigint; head bytea; BEGIN "                                                                 \
        "IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted "             \
        "AND pid = pg_catalog.pg_backend_pid() AND classid = " LOCK_NS "::oid AND objid = 1::oid "               \
        "AND objsubid = 2 AND database = (SELECT d.oid FROM pg_catalog.pg_database d "                          \
        "WHERE d.datname = pg_catalog.current_database())) THEN "                                               \
        "RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'fuseline ledger: an event is appended only "       \
        "inside a writer''s transaction holding the chain lock'; END IF; "                                      \
        "SELECT greatest(coalesce((SELECT max(w.id) FROM events_high_water w), 0), "                             \
        "coalesce((SELECT max(e.id) FROM events e), 0)) INTO hw; "                                              \
        "SELECT e.hash INTO head FROM events e ORDER BY e.id DESC LIMIT 1; "                                    \
        "IF p_id IS DISTINCT FROM hw + 1 THEN RAISE EXCEPTION USING ERRCODE = 'FL001', "                        \
        "MESSAGE = format('fuseline ledger: event id %s does not follow the highest id issued (%s)', "          \
        "p_id, hw); END IF; "                                                                                   \
        "IF p_prev_hash IS DISTINCT FROM coalesce(head, decode(repeat('00', 32), 'hex')) THEN "                 \
        "RAISE EXCEPTION USING ERRCODE = 'FL001', MESSAGE = format('fuseline ledger: event %s does not link "   \
        "to the newest event''s hash', p_id); END IF; "                                                         \
        "INSERT INTO events (id, time, station, operator, command, ecid, kind, intent_id, outcome, details, "   \
        "prev_hash, hash) VALUES (p_id, p_time, p_station, p_operator, p_command, p_ecid, p_kind, "             \
        "p_intent_id, p_outcome, p_details, p_prev_hash, p_hash); END"

/* Install (or bring up to date) the procedure: search_path pinned to the
 * ledger's schema (then pg_temp, so no temporary table can stand in for a
 * ledger table), owned by the events table's owner whoever runs this, and
 * executable by nobody but the owner until ledger-pg-roles.sql grants it. */
static const char ensure_append_sql[] =
        "DO $fl$ DECLARE s text := current_schema(); BEGIN "
        "EXECUTE format('CREATE OR REPLACE PROCEDURE fuseline_append_event(" APPEND_ARGS ") LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = %I, pg_temp AS %L', s, $b$" APPEND_BODY "$b$); "
        "EXECUTE format('ALTER PROCEDURE fuseline_append_event(" APPEND_SIG ") OWNER TO %s', "
        "(SELECT c.relowner::regrole FROM pg_class c WHERE c.oid = 'events'::regclass)); "
        "REVOKE ALL ON PROCEDURE fuseline_append_event(" APPEND_SIG ") FROM PUBLIC; END $fl$";

/* ---- schema ------------------------------------------------------------- */

/* Migrations: entry i takes the schema from version i to i+1, the same
 * tables, columns and constraints as ledger_sqlite.c's entry i. Never edit
 * an entry once released; add one (to both backends). */
static const char *const migrations[] = {
        /* 0 -> 1: devices, certificates, events. */
        "CREATE FUNCTION fuseline_refuse() RETURNS trigger LANGUAGE plpgsql AS $fl$" REFUSE_BODY "$fl$;"
        /* details is TEXT (the hashed bytes, exactly); the dialect queries
         * read it as JSON through this, which yields NULL for text that is
         * not JSON instead of failing the whole query (SQLite's
         * json_valid). */
        "CREATE FUNCTION fuseline_jsonb(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $fl$"
        "BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END$fl$;"
        "CREATE TABLE devices ("
        "  ecid TEXT PRIMARY KEY NOT NULL"
        "    CHECK (length(ecid) = 32 AND ecid !~ '[^0-9a-f]'),"
        "  chip TEXT CHECK (chip IN ('t194', 't234')),"
        "  module TEXT,"
        "  serial TEXT UNIQUE,"
        "  first_seen TEXT NOT NULL,"
        "  last_seen TEXT NOT NULL,"
        "  state TEXT NOT NULL"
        "    CHECK (state IN ('blank','planned','fused-test','fused','enrolled','failed'))"
        ");"
        /* seq: insertion order (SQLite's rowid), never written by a client. */
        "CREATE TABLE certificates ("
        "  fingerprint TEXT PRIMARY KEY NOT NULL,"
        "  ecid TEXT NOT NULL REFERENCES devices(ecid),"
        "  der BYTEA NOT NULL,"
        "  issuer TEXT NOT NULL,"
        "  serial TEXT NOT NULL,"
        "  not_before TEXT NOT NULL,"
        "  not_after TEXT NOT NULL,"
        "  status TEXT NOT NULL CHECK (status IN ('valid','superseded','revoked')),"
        "  added TEXT NOT NULL,"
        "  seq BIGINT GENERATED ALWAYS AS IDENTITY"
        ");"
        "CREATE INDEX certificates_ecid ON certificates(ecid);"
        /* One valid certificate per ECID, across every station. */
        "CREATE UNIQUE INDEX certificates_one_valid ON certificates(ecid) WHERE status = 'valid';"
        /* Ids are assigned by the writer (they are part of the hashed
         * bytes). prev_hash UNIQUE: no two events share a predecessor even
         * if a writer skipped the chain lock. */
        "CREATE TABLE events ("
        "  id BIGINT PRIMARY KEY,"
        "  time TEXT NOT NULL,"
        "  station TEXT NOT NULL,"
        "  operator TEXT NOT NULL,"
        "  command TEXT NOT NULL,"
        "  ecid TEXT,"
        "  kind TEXT NOT NULL CHECK (kind IN ('record','intent','result')),"
        "  intent_id BIGINT REFERENCES events(id),"
        "  outcome TEXT NOT NULL,"
        "  details TEXT NOT NULL,"
        "  prev_hash BYTEA NOT NULL UNIQUE,"
        "  hash BYTEA NOT NULL"
        ");"
        "CREATE INDEX events_ecid ON events(ecid) WHERE ecid IS NOT NULL;"
        "CREATE INDEX events_intent ON events(intent_id) WHERE intent_id IS NOT NULL;"
        /* The highest event id ever issued (SQLite's sqlite_sequence), so
         * deleting the newest events shows. SECURITY DEFINER: stations
         * insert events but cannot lower it themselves. */
        "CREATE TABLE events_high_water ("
        "  one_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (one_row),"
        "  id BIGINT NOT NULL"
        ");"
        "INSERT INTO events_high_water (id) VALUES (0);"
        "CREATE FUNCTION fuseline_high_water() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
        "  SET search_path FROM CURRENT AS $fl$"
        "BEGIN UPDATE events_high_water SET id = NEW.id WHERE id < NEW.id; RETURN NEW; END$fl$;"
        "CREATE TRIGGER events_high_water AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION fuseline_high_water();"
        GUARD("events_no_update", "BEFORE UPDATE", "events", "fuseline ledger: events are append-only; UPDATE refused")
        GUARD("events_no_delete", "BEFORE DELETE", "events", "fuseline ledger: events are append-only; DELETE refused")
        GUARD("certificates_no_delete", "BEFORE DELETE", "certificates",
              "fuseline ledger: certificates are never deleted")
        GUARD("certificates_fixed",
              "BEFORE UPDATE OF fingerprint, ecid, der, issuer, serial, not_before, not_after, added, seq",
              "certificates", "fuseline ledger: only a certificate''s status changes")
        GUARD("devices_no_delete", "BEFORE DELETE", "devices", "fuseline ledger: devices are never deleted")
        GUARD_TRUNCATE("events", "fuseline ledger: events are append-only; TRUNCATE refused")
        GUARD_TRUNCATE("certificates", "fuseline ledger: certificates are never deleted")
        GUARD_TRUNCATE("devices", "fuseline ledger: devices are never deleted")
        GUARD_TRUNCATE("events_high_water", "fuseline ledger: the event high-water mark is never removed"),

        /* 1 -> 2: signed checkpoints of the chain head. */
        "CREATE TABLE checkpoints ("
        "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        "  time TEXT NOT NULL,"
        "  event_id BIGINT NOT NULL REFERENCES events(id),"
        "  head_hash BYTEA NOT NULL,"
        "  role TEXT NOT NULL,"
        "  key_uri TEXT NOT NULL,"
        "  scheme TEXT NOT NULL,"
        "  public_key BYTEA NOT NULL,"
        "  signature BYTEA NOT NULL"
        ");" GUARD("checkpoints_no_update", "BEFORE UPDATE", "checkpoints",
                   "fuseline ledger: checkpoints are append-only; UPDATE refused")
                GUARD("checkpoints_no_delete", "BEFORE DELETE", "checkpoints",
                      "fuseline ledger: checkpoints are append-only; DELETE refused")
                        GUARD_TRUNCATE("checkpoints", "fuseline ledger: checkpoints are append-only; TRUNCATE refused"),

        /* 2 -> 3: store and forward (ledger_sync.c), as ledger_sqlite.c's
         * entry 2. forwarded's key (spool, seq) is what makes an upload
         * idempotent across stations; spool_uploaded exists for parity
         * (a spool is always a SQLite file). */
        "CREATE TABLE forwarded ("
        "  spool TEXT NOT NULL CHECK (length(spool) = 64 AND spool !~ '[^0-9a-f]'),"
        "  seq BIGINT NOT NULL CHECK (seq > 0),"
        "  event_id BIGINT NOT NULL UNIQUE REFERENCES events(id),"
        "  PRIMARY KEY (spool, seq)"
        ");"
        "CREATE TABLE spool_uploaded ("
        "  seq BIGINT PRIMARY KEY REFERENCES events(id),"
        "  event_id BIGINT NOT NULL CHECK (event_id > 0),"
        "  central TEXT NOT NULL,"
        "  time TEXT NOT NULL"
        ");" GUARD("forwarded_no_update", "BEFORE UPDATE", "forwarded",
                   "fuseline ledger: forwarded is append-only; UPDATE refused")
                GUARD("forwarded_no_delete", "BEFORE DELETE", "forwarded",
                      "fuseline ledger: forwarded is append-only; DELETE refused")
                        GUARD_TRUNCATE("forwarded", "fuseline ledger: forwarded is append-only; TRUNCATE refused")
                                GUARD("spool_uploaded_no_update", "BEFORE UPDATE", "spool_uploaded",
                                      "fuseline ledger: spool_uploaded is append-only; UPDATE refused")
                                        GUARD("spool_uploaded_no_delete", "BEFORE DELETE", "spool_uploaded",
                                              "fuseline ledger: spool_uploaded is append-only; DELETE refused")
                                                GUARD_TRUNCATE("spool_uploaded",
                                                               "fuseline ledger: spool_uploaded is append-only; "
                                                               "TRUNCATE refused"),
};

/* A schema version without its PostgreSQL entry would leave a NULL here. */
_Static_assert(FL_ARRAY_SIZE(migrations) == LEDGER_SCHEMA_VERSION,
               "one PostgreSQL migration per schema version (and one in ledger_sqlite.c)");

/* ---- connection state --------------------------------------------------- */

enum pg_tx { TX_NONE = 0, TX_READ, TX_WRITE };

struct pg {
        PGconn *conn;
        char *location;      /* as given: libpq needs it to reconnect */
        char connect_timeout[16];
        unsigned window_ms;  /* connect_timeout from the URI (0: the busy timeout) */
        enum pg_tx tx;
        bool tx_lost;        /* the transaction must be repeated (connection dropped, serialization failure) */
        bool lost;           /* the last write transaction failed because the connection dropped */
};

struct pg_stmt {
        struct ldb_stmt base;
        char *sql;
        int n;               /* parameters $1..$n */
        char **val;
        int *len, *fmt;
        Oid *type;
        PGresult *res;
        int row, nrows, ncols;
        int bind_r;          /* a failed bind: the next step fails with it */
        bool ran;
        unsigned char **blob; /* the current row's decoded bytea, per column */
        size_t *blob_len;
};

static struct pg *PG(struct ledger *l)
{
        return l->be;
}

static unsigned window_ms(struct ledger *l)
{
        return PG(l)->window_ms ? PG(l)->window_ms : l->busy_ms;
}

/* libpq's messages span lines ("…failed: …\n\tIs the server running…");
 * ours are one line. */
static void one_line(char *s)
{
        char *o = s;

        for (char *p = s; *p; p++) {
                if (*p == '\n' || *p == '\r') {
                        while (p[1] == '\n' || p[1] == '\r' || p[1] == '\t' || p[1] == ' ')
                                p++;
                        if (p[1] && o > s) {
                                *o++ = ';';
                                *o++ = ' ';
                        }
                        continue;
                }
                if ((*p == ' ' || *p == '\t') && o > s && o[-1] == ' ')
                        continue;
                *o++ = *p == '\t' ? ' ' : *p;
        }
        while (o > s && o[-1] == ' ')
                o--;
        *o = 0;
}

static void conn_msg(PGconn *c, char *buf, size_t size)
{
        snprintf(buf, size, "%s", c ? PQerrorMessage(c) : "out of memory");
        one_line(buf);
}

/* ---- the location ------------------------------------------------------- */

/* A query parameter's keyword, percent-decoded as libpq decodes it, is
 * "password". */
static bool key_is_password(const char *k, size_t n)
{
        char dec[16];
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                char c = k[i];
                if (c == '%' && i + 2 < n && isxdigit((unsigned char)k[i + 1]) &&
                    isxdigit((unsigned char)k[i + 2])) {
                        char hex[3] = { k[i + 1], k[i + 2], 0 };
                        c = (char)strtol(hex, NULL, 16);
                        i += 2;
                }
                if (o >= sizeof(dec) - 1)
                        return false;
                dec[o++] = c;
        }
        dec[o] = 0;
        return !strcmp(dec, "password");
}

/* Drop every password=… from the '&'-separated parameters after p (a
 * '?'). */
static void scrub_params(char *p)
{
        while (p && *p) { /* p: the '?' or '&' before a parameter */
                char *param = p + 1, *next = param + strcspn(param, "&");
                if (key_is_password(param, strcspn(param, "=&"))) {
                        if (*next == '&')
                                memmove(param, next + 1, strlen(next + 1) + 1);
                        else
                                *p = 0; /* the last one: its separator goes too */
                        continue;
                }
                p = *next == '&' ? next : NULL;
        }
}

/* The URI with any password removed, for messages and l->name: the
 * userinfo's ":secret" (libpq's rule: userinfo ends at the first '@' before
 * any '/') and every query parameter whose keyword decodes to "password".
 * Where the query starts depends on libpq's reading of bracketed hosts (and
 * on whether it can read the URI at all), so parameters are scrubbed after
 * every '?': for a message, removing too much is harmless. */
static void scrub_once(char *s)
{
        char *auth, *at, *colon, *q;

        auth = strstr(s, "://");
        auth = auth ? auth + 3 : s;
        at = auth + strcspn(auth, "@/");
        if (*at == '@') {
                colon = memchr(auth, ':', (size_t)(at - auth));
                if (colon) {
                        memmove(colon, at, strlen(at) + 1);
                        at = colon;
                }
        }
        q = strchr(*at == '@' ? at + 1 : auth, '?');
        while (q) {
                scrub_params(q);
                q = *q ? strchr(q + 1, '?') : NULL;
        }
}

char *ledger_pg_uri_scrub(const char *uri)
{
        char *s = strdup(uri);
        size_t n;

        if (!s)
                return NULL;
        /* Removing text can make a new userinfo or parameter of what was
         * around it: repeat until nothing changes (each pass only shortens). */
        do {
                n = strlen(s);
                scrub_once(s);
        } while (strlen(s) != n);
        return s;
}

/* ---- errors ------------------------------------------------------------- */

static bool state_is(const PGresult *res, const char *code)
{
        const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        size_t n = strlen(code);

        return s && !strncmp(s, code, n);
}

/* The connection is gone (server restart, network), as opposed to the
 * statement failing. */
static bool conn_lost(struct ledger *l, const PGresult *res)
{
        /* An error without SQLSTATE is libpq's own, never the server's answer
         * (every server error carries one). A statement sent on a connection
         * the server has closed (an idle session when the server restarted)
         * comes back as one, "server closed the connection unexpectedly",
         * while PQstatus still says CONNECTION_OK (libpq 15): lost too. */
        return !PG(l)->conn || PQstatus(PG(l)->conn) == CONNECTION_BAD || state_is(res, "08") ||
               state_is(res, "57P01") || state_is(res, "57P02") || state_is(res, "57P03") ||
               (res && PQresultStatus(res) == PGRES_FATAL_ERROR && !PQresultErrorField(res, PG_DIAG_SQLSTATE));
}

static int state_errno(const PGresult *res)
{
        /* As ledger_sqlite.c maps SQLite's constraint codes: a value the
         * column refuses is bad input; a unique key, an exclusion or
         * foreign key, a guard trigger's RAISE (P0001) a conflict. */
        if (state_is(res, "23502") || state_is(res, "23514"))
                return -EINVAL;
        if (state_is(res, "23") || state_is(res, "P0001"))
                return -EEXIST;
        if (state_is(res, "57014"))
                return -EIO; /* canceled: statement_timeout or an administrator (res_err says so) */
        if (state_is(res, "40001") || state_is(res, "40P01"))
                return -EAGAIN; /* serialization failure, deadlock: repeat the transaction */
        if (state_is(res, "55P03"))
                return -EBUSY; /* lock_timeout */
        if (state_is(res, "53100"))
                return -ENOSPC;
        if (state_is(res, "25006") || state_is(res, "42501") || state_is(res, "22"))
                return -EINVAL; /* read-only, no privilege, data the column refuses */
        if (state_is(res, "XX001") || state_is(res, "XX002"))
                return -EBADMSG;
        if (state_is(res, "FL001"))
                return -EBADMSG; /* fuseline_append_event: the row does not continue the chain */
        return -EIO;
}

/* Record a failed statement as one line naming the ledger: "ledger NAME:
 * WHAT: why", or without WHAT (NULL) for step, commit and exec, whose
 * caller inserts what it was doing (ledger_db.h, db_fail). */
static int res_err(struct ledger *l, const PGresult *res, const char *what)
{
        char msg[512], why[700];
        const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
        int r = state_errno(res);

        if (primary)
                snprintf(msg, sizeof(msg), "%s%s%s", primary, detail ? "; " : "", detail ? detail : "");
        else
                conn_msg(PG(l)->conn, msg, sizeof(msg));
        one_line(msg);
        if (r == -ENOSPC)
                snprintf(why, sizeof(why), "the server's disk is full (%s)", msg);
        else if (state_is(res, "25006"))
                snprintf(why, sizeof(why), "the database is read-only (%s)", msg);
        else if (state_is(res, "42501"))
                snprintf(why, sizeof(why), "the database role may not do this (%s)", msg);
        else if (state_is(res, "57014"))
                snprintf(why, sizeof(why), "the server canceled the statement (a statement_timeout on the role or "
                         "database, or an administrator): %s", msg);
        else
                snprintf(why, sizeof(why), "%s", msg);
        if (what)
                return fl_err(l->ctx, r, "ledger %s: %s: %s", l->name, what, why);
        return fl_err(l->ctx, r, "ledger %s: %s", l->name, why);
}

static int unreachable(struct ledger *l, const char *why)
{
        return fl_err(l->ctx, -EHOSTUNREACH, "ledger %s: the server is unreachable (%s)", l->name, why);
}

/* ---- connecting --------------------------------------------------------- */

static void notice_to_log(void *arg, const char *message)
{
        struct ledger *l = arg;
        char buf[256];

        snprintf(buf, sizeof(buf), "%s", message);
        one_line(buf);
        fl_log(l->ctx, FL_LOG_DEBUG, "ledger %s: server notice: %s", l->name, buf);
}

/* A failed connection attempt worth repeating: no server answering (yet),
 * or one starting, stopping or full. A server that answered with a FATAL
 * error about us (no such database or role, authentication) will say the
 * same again. The server's words are matched because libpq gives no
 * SQLSTATE for a failed connection. */
static bool attempt_transient(const char *msg)
{
        /* libpq's own checks of the options ("invalid sslmode value: …",
         * "invalid port number: …") fail before any attempt. */
        if (!strncmp(msg, "invalid ", 8) || strstr(msg, ": invalid "))
                return false;
        if (!strstr(msg, "FATAL"))
                return true;
        /* "remaining connection slots are reserved for non-replication
         * superuser connections" (PostgreSQL <= 15; 16 says "reserved for
         * roles with …"): full for a non-superuser, like "too many clients". */
        return strstr(msg, "starting up") || strstr(msg, "shutting down") || strstr(msg, "in recovery") ||
               strstr(msg, "too many") || strstr(msg, "terminating connection") ||
               strstr(msg, "not yet accepting") || strstr(msg, "connection slots are reserved") ||
               strstr(msg, "reserved for");
}

static int session_setup(struct ledger *l)
{
        struct pg *pg = PG(l);
        const char *enc = PQparameterStatus(pg->conn, "server_encoding");
        PGresult *res;
        int r = 0;

        PQsetNoticeProcessor(pg->conn, notice_to_log, l);
        if (PQserverVersion(pg->conn) < PG_MIN_VERSION)
                return fl_err(l->ctx, -EINVAL, "ledger %s: the server runs PostgreSQL %d.%d; a fuseline ledger needs 13 "
                              "or newer", l->name, PQserverVersion(pg->conn) / 10000,
                              PQserverVersion(pg->conn) % 10000);
        /* Text must come back as the bytes that were hashed. */
        if (!enc || strcmp(enc, "UTF8"))
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: the database's encoding is %s; a fuseline ledger needs UTF8 (createdb -E UTF8)",
                              l->name, enc ? enc : "unknown");
        /* synchronous_commit: an intent is on the server's disk before the
         * burn it announces starts, whatever the database's default. */
        res = PQexec(pg->conn, l->mode == LEDGER_READ
                                       ? "SET client_encoding = 'UTF8'; SET client_min_messages = warning; "
                                         "SET default_transaction_read_only = on"
                                       : "SET client_encoding = 'UTF8'; SET client_min_messages = warning; "
                                         "SET synchronous_commit = on");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                r = res_err(l, res, "setting up the session");
        PQclear(res);
        return r;
}

/* (Re)connect, repeating a transient failure with back-off until the
 * deadline; then -EHOSTUNREACH. */
static int pg_connect(struct ledger *l, uint64_t deadline)
{
        struct pg *pg = PG(l);
        /* libpq applies these in order: the defaults before dbname, so that
         * the URI (expanded from dbname) overrides them. Keepalives and a
         * TCP user timeout: a server that vanished without a reset shows as
         * a lost connection within a minute, not after hours. */
        const char *kw[] = { "connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                             "tcp_user_timeout", "fallback_application_name", "dbname", NULL };
        const char *val[] = { pg->connect_timeout, "10", "5", "3", "30000", "fuseline", pg->location, NULL };
        unsigned backoff = 20;
        char msg[512];

        for (;;) {
                PQfinish(pg->conn);
                pg->conn = PQconnectdbParams(kw, val, 1);
                if (!pg->conn)
                        return -ENOMEM;
                if (PQstatus(pg->conn) == CONNECTION_OK)
                        return session_setup(l);
                conn_msg(pg->conn, msg, sizeof(msg));
                if (PQconnectionNeedsPassword(pg->conn))
                        return fl_err(l->ctx, -EINVAL,
                                      "ledger %s: the server asks for a password: put it in ~/.pgpass (or a "
                                      "service file, or PGPASSFILE), never in the location",
                                      l->name);
                if (!attempt_transient(msg))
                        return fl_err(l->ctx, -EINVAL, "ledger %s: cannot connect (%s)", l->name, msg);
                if (mono_ms() >= deadline)
                        return unreachable(l, msg);
                fl_log(l->ctx, FL_LOG_DEBUG, "ledger %s: connecting failed, retrying (%s)", l->name, msg);
                {
                        uint64_t left = deadline - mono_ms();
                        sleep_ms((unsigned)(left < backoff ? left : backoff));
                }
                if (backoff < 1000)
                        backoff *= 2;
        }
}

static int reconnect(struct ledger *l)
{
        fl_log(l->ctx, FL_LOG_INFO, "ledger %s: the connection was lost; reconnecting", l->name);
        return pg_connect(l, mono_ms() + window_ms(l));
}

/* Without parameters the simple protocol, which takes several statements
 * at once (the migrations, BEGIN …; SELECT pg_advisory_xact_lock …). */
static PGresult *send(PGconn *c, const char *sql, int n, const Oid *types, const char *const *vals, const int *lens,
                      const int *fmts)
{
        return n == 0 ? PQexec(c, sql) : PQexecParams(c, sql, n, types, vals, lens, fmts, 0);
}

static bool res_ok(const PGresult *res)
{
        return PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
}

/* Run a statement that cannot write (BEGIN, a SELECT outside a
 * transaction): a dropped connection is re-made and the statement sent
 * again, within the reconnect window. Returns the result (caller clears) or
 * NULL with the error recorded in *ret_r. */
static PGresult *exec_retry(struct ledger *l, const char *sql, int n, const Oid *types, const char *const *vals,
                            const int *lens, const int *fmts, int *ret_r)
{
        struct pg *pg = PG(l);
        uint64_t deadline = mono_ms() + window_ms(l);
        PGresult *res;
        char msg[512];
        int r;

        for (;;) {
                if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
                        r = pg_connect(l, deadline);
                        if (r < 0) {
                                *ret_r = r;
                                return NULL;
                        }
                }
                res = send(pg->conn, sql, n, types, vals, lens, fmts);
                if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ||
                    !conn_lost(l, res)) {
                        *ret_r = 0;
                        return res;
                }
                conn_msg(pg->conn, msg, sizeof(msg));
                PQclear(res);
                if (mono_ms() >= deadline) {
                        *ret_r = unreachable(l, msg);
                        return NULL;
                }
                fl_log(l->ctx, FL_LOG_INFO, "ledger %s: the connection was lost (%s); reconnecting", l->name, msg);
                PQfinish(pg->conn);
                pg->conn = NULL;
        }
}

/* ---- transactions ------------------------------------------------------- */

static void pg_rollback(struct ledger *l)
{
        struct pg *pg = PG(l);

        if (pg && pg->conn && PQstatus(pg->conn) == CONNECTION_OK &&
            PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
                PQclear(PQexec(pg->conn, "ROLLBACK"));
        if (pg) {
                pg->tx = TX_NONE;
                pg->tx_lost = false;
        }
}

static bool pg_in_transaction(struct ledger *l)
{
        return PG(l) && PG(l)->tx != TX_NONE;
}

static int begin(struct ledger *l, enum pg_tx tx)
{
        struct pg *pg = PG(l);
        char sql[256];
        PGresult *res;
        int r;

        if (pg->tx != TX_NONE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: a transaction is open already", l->name);
        if (tx == TX_WRITE && l->mode != LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: opened for reading only", l->name);
        if (tx == TX_WRITE)
                pg->lost = false;
        /* READ COMMITTED for writers: each statement sees what was committed
         * before it, so the head read after the lock is granted is the
         * previous holder's last event (REPEATABLE READ would keep the
         * snapshot taken before the wait). lock_timeout bounds the wait. */
        /* idle_in_transaction_session_timeout: a station that dies or is
         * cut off while holding the chain lock loses its session (and the
         * lock) on the server's side after this long, instead of stopping
         * every other station until TCP gives up on it. Ours are never idle
         * that long: nothing slow (signing, prompts) runs inside. */
        if (tx == TX_WRITE)
                snprintf(sql, sizeof(sql),
                         "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = %u; "
                         "SET LOCAL idle_in_transaction_session_timeout = %u; "
                         "SELECT pg_advisory_xact_lock(" LOCK_CHAIN ")",
                         l->busy_ms ? l->busy_ms : 1, l->busy_ms > PG_IDLE_MIN_MS ? l->busy_ms : PG_IDLE_MIN_MS);
        else
                snprintf(sql, sizeof(sql), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        res = exec_retry(l, sql, 0, NULL, NULL, NULL, NULL, &r);
        if (!res)
                return r;
        if (!res_ok(res)) {
                /* PQexec of several statements: the error of the one that
                 * failed; the transaction block is open and aborted. */
                if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
                        PQclear(PQexec(pg->conn, "ROLLBACK"));
                if (state_is(res, "55P03"))
                        r = fl_err(l->ctx, -EBUSY, "ledger %s: other writers held the chain lock for more than %u ms",
                                   l->name, l->busy_ms);
                else
                        r = res_err(l, res, "starting a transaction");
                PQclear(res);
                return r;
        }
        PQclear(res);
        pg->tx = tx;
        pg->tx_lost = false;
        return 0;
}

static int pg_begin_write(struct ledger *l)
{
        return begin(l, TX_WRITE);
}

static int pg_begin_read(struct ledger *l)
{
        return begin(l, TX_READ);
}

/* The COMMIT was sent but its answer lost with the connection. Whether it
 * committed cannot be learnt from the transaction id: after a crash
 * restart, an id whose records never reached the disk is handed out again,
 * so pg_xact_status may report another transaction's commit (or "in the
 * future"), seen in ledger-pg-stress. The fate is decided by content
 * instead: -EAGAIN here, and the caller, before repeating, looks for the
 * event it wrote (ledger_append.c: by its hash, unique with its prev_hash). */
static int commit_fate(struct ledger *l)
{
        PG(l)->lost = true;
        return fl_err(l->ctx, -EAGAIN, "ledger %s: the connection was lost during COMMIT; whether it committed is "
                      "decided by reading the events back", l->name);
}

static int pg_commit(struct ledger *l)
{
        struct pg *pg = PG(l);
        enum pg_tx tx = pg->tx;
        PGresult *res;
        int r = 0;

        if (tx == TX_NONE)
                return 0;
        if (pg->tx_lost) {
                pg_rollback(l);
                return fl_err(l->ctx, -EAGAIN, "ledger %s: the connection was lost inside the transaction",
                              l->name);
        }
        res = PQexec(pg->conn, "COMMIT");
        if (res_ok(res)) {
                /* COMMIT of a transaction that had failed answers ROLLBACK. */
                if (strcmp(PQcmdStatus(res), "COMMIT"))
                        r = fl_err(l->ctx, -EIO, "ledger %s: the transaction had failed and was rolled back",
                                   l->name);
        } else if (conn_lost(l, res)) {
                /* A read transaction lost nothing; a write one may or may
                 * not have committed. */
                r = tx == TX_WRITE ? commit_fate(l) : 0;
        } else {
                r = res_err(l, res, NULL); /* -EAGAIN for a serialization failure */
        }
        PQclear(res);
        pg_rollback(l); /* ends an aborted block; resets the state */
        return r;
}

/* ---- statements --------------------------------------------------------- */

/* The length of a dollar-quote tag starting at p ("$$", "$fl$"), or 0 when
 * p does not start one ($1 is a parameter, not a tag). */
static size_t dollar_tag(const char *p)
{
        size_t n = 1;

        if (*p != '$' || (p[1] >= '0' && p[1] <= '9'))
                return 0;
        while (isalnum((unsigned char)p[n]) || p[n] == '_')
                n++;
        return p[n] == '$' ? n + 1 : 0;
}

/* ?N -> $N outside quoted literals, identifiers, dollar-quoted strings and
 * comments (-- to the line's end, and nested block comments); returns the
 * highest N (0 if none) or -EINVAL for a bare or out-of-range ?N followed
 * by digits that do not form a number. A ? not followed by a digit stays:
 * PostgreSQL's jsonb operators (?, ?|, ?&) use it. Every statement is a
 * constant of this program (the logic's portable SQL): this is a rewrite
 * of known text, not a parser of outside input; an E'' string's backslash
 * escapes are not among them (an E'\'' would end the literal early). */
int ledger_pg_rewrite(const char *sql, char **ret)
{
        size_t n = strlen(sql);
        char *out = malloc(n + 1), *o = out;
        int max = 0;

        if (!out)
                return -ENOMEM;
        for (const char *p = sql; *p;) {
                if (*p == '\'' || *p == '"') {
                        char q = *p;
                        *o++ = *p++;
                        while (*p) {
                                if (*p == q && p[1] == q) { /* doubled quote */
                                        *o++ = *p++;
                                        *o++ = *p++;
                                        continue;
                                }
                                if (*p == q)
                                        break;
                                *o++ = *p++;
                        }
                        if (*p)
                                *o++ = *p++;
                } else if (*p == '-' && p[1] == '-') {
                        while (*p && *p != '\n')
                                *o++ = *p++;
                } else if (*p == '/' && p[1] == '*') {
                        int depth = 0;
                        do { /* PostgreSQL's block comments nest */
                                if (*p == '/' && p[1] == '*') {
                                        depth++;
                                        *o++ = *p++;
                                } else if (*p == '*' && p[1] == '/') {
                                        depth--;
                                        *o++ = *p++;
                                }
                                *o++ = *p++;
                        } while (*p && depth > 0);
                } else if (dollar_tag(p) &&
                           (p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '$'))) {
                        /* (A $ inside an identifier, a$b$, starts no quote.) */
                        size_t t = dollar_tag(p);
                        const char *end, *close;
                        char tag[64];
                        if (t >= sizeof(tag)) {
                                free(out);
                                return -EINVAL;
                        }
                        memcpy(tag, p, t);
                        tag[t] = 0;
                        close = strstr(p + t, tag);
                        end = close ? close + t : p + strlen(p);
                        while (p < end)
                                *o++ = *p++;
                } else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
                        long v = 0;
                        *o++ = '$';
                        p++;
                        while (*p >= '0' && *p <= '9') {
                                v = v * 10 + (*p - '0');
                                if (v > 65535) {
                                        free(out);
                                        return -EINVAL;
                                }
                                *o++ = *p++;
                        }
                        if (v == 0) {
                                free(out);
                                return -EINVAL;
                        }
                        if (v > max)
                                max = (int)v;
                } else {
                        *o++ = *p++;
                }
        }
        *o = 0;
        *ret = out;
        return max;
}

static void stmt_clear_row(struct pg_stmt *s)
{
        for (int i = 0; s->blob && i < s->ncols; i++) {
                PQfreemem(s->blob[i]);
                s->blob[i] = NULL;
        }
}

static void stmt_clear_result(struct pg_stmt *s)
{
        stmt_clear_row(s);
        free(s->blob);
        free(s->blob_len);
        s->blob = NULL;
        s->blob_len = NULL;
        PQclear(s->res);
        s->res = NULL;
        s->ran = false;
        s->row = -1;
        s->nrows = s->ncols = 0;
}

static int pg_prepare(struct ledger *l, const char *sql, struct ldb_stmt **ret)
{
        struct pg_stmt *s = calloc(1, sizeof(*s));
        int n;

        if (!s)
                return -ENOMEM;
        s->base.l = l;
        s->row = -1;
        n = ledger_pg_rewrite(sql, &s->sql);
        if (n < 0) {
                free(s);
                return n == -ENOMEM ? n : fl_err(l->ctx, n, "ledger %s: a statement's placeholder is not ?1..?65535",
                                                  l->name);
        }
        s->n = n;
        if (n > 0) {
                s->val = calloc((size_t)n, sizeof(*s->val));
                s->len = calloc((size_t)n, sizeof(*s->len));
                s->fmt = calloc((size_t)n, sizeof(*s->fmt));
                s->type = calloc((size_t)n, sizeof(*s->type));
                if (!s->val || !s->len || !s->fmt || !s->type) {
                        free(s->val);
                        free(s->len);
                        free(s->fmt);
                        free(s->type);
                        free(s->sql);
                        free(s);
                        return -ENOMEM;
                }
        }
        *ret = &s->base;
        return 0;
}

static int bind_set(struct ldb_stmt *st, int idx, char *v, int len, int fmt, Oid type)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        if (idx < 1 || idx > s->n) {
                free(v);
                return s->bind_r = fl_err(st->l->ctx, -EINVAL, "ledger %s: parameter ?%d is not in the statement",
                                          st->l->name, idx);
        }
        free(s->val[idx - 1]);
        s->val[idx - 1] = v;
        s->len[idx - 1] = len;
        s->fmt[idx - 1] = fmt;
        s->type[idx - 1] = type;
        return 0;
}

static int pg_bind_int64(struct ldb_stmt *st, int idx, int64_t v)
{
        char *t = NULL;

        if (asprintf(&t, "%lld", (long long)v) < 0)
                return ((struct pg_stmt *)st)->bind_r = -ENOMEM;
        return bind_set(st, idx, t, 0, 0, OID_INT8);
}

static int pg_bind_text(struct ldb_stmt *st, int idx, const char *v)
{
        char *t = NULL;

        if (v && !(t = strdup(v)))
                return ((struct pg_stmt *)st)->bind_r = -ENOMEM;
        /* Type left to the server: it is the column's or the operand's. */
        return bind_set(st, idx, t, 0, 0, 0);
}

static int pg_bind_blob(struct ldb_stmt *st, int idx, const void *p, size_t n)
{
        char *t;

        if (n > INT32_MAX)
                return ((struct pg_stmt *)st)->bind_r =
                               fl_err(st->l->ctx, -EINVAL, "ledger %s: a value of %zu bytes is too large",
                                      st->l->name, n);
        t = malloc(n ? n : 1);
        if (!t)
                return ((struct pg_stmt *)st)->bind_r = -ENOMEM;
        if (n)
                memcpy(t, p, n);
        return bind_set(st, idx, t, (int)n, 1, OID_BYTEA);
}

static int pg_bind_null(struct ldb_stmt *st, int idx)
{
        return bind_set(st, idx, NULL, 0, 0, 0);
}

/* Whether a statement only reads, so that repeating it after a dropped
 * connection cannot apply it twice. */
static bool reads_only(const char *sql)
{
        while (*sql == ' ' || *sql == '\n' || *sql == '(')
                sql++;
        return !strncasecmp(sql, "SELECT", 6) && !strcasestr(sql, "INSERT") && !strcasestr(sql, "UPDATE") &&
               !strcasestr(sql, "DELETE");
}

/* Run a statement, or -EAGAIN/-EHOSTUNREACH/… for a dropped connection:
 * inside a transaction the caller repeats the whole transaction; outside
 * one a read is repeated after reconnecting and a write reported. */
static PGresult *run(struct ledger *l, const char *sql, int n, const Oid *types, const char *const *vals,
                     const int *lens, const int *fmts, int *ret_r)
{
        struct pg *pg = PG(l);
        PGresult *res;
        char msg[512];

        if (pg->tx != TX_NONE) {
                if (pg->tx_lost) {
                        *ret_r = fl_err(l->ctx, -EAGAIN, "ledger %s: the connection was lost inside the transaction",
                                        l->name);
                        return NULL;
                }
                res = send(pg->conn, sql, n, types, vals, lens, fmts);
                if (!res_ok(res) && conn_lost(l, res)) {
                        conn_msg(pg->conn, msg, sizeof(msg));
                        PQclear(res);
                        pg->tx_lost = true;
                        pg->lost = true;
                        *ret_r = fl_err(l->ctx, -EAGAIN, "ledger %s: the connection was lost inside the transaction "
                                        "(%s)", l->name, msg);
                        return NULL;
                }
                *ret_r = 0;
                return res;
        }
        if (reads_only(sql))
                return exec_retry(l, sql, n, types, vals, lens, fmts, ret_r);
        if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
                *ret_r = reconnect(l);
                if (*ret_r < 0)
                        return NULL;
        }
        res = send(pg->conn, sql, n, types, vals, lens, fmts);
        if (!res_ok(res) && conn_lost(l, res)) {
                conn_msg(pg->conn, msg, sizeof(msg));
                PQclear(res);
                *ret_r = unreachable(l, msg);
                return NULL;
        }
        *ret_r = 0;
        return res;
}

static int pg_step(struct ldb_stmt *st)
{
        struct pg_stmt *s = (struct pg_stmt *)st;
        struct ledger *l = st->l;
        int r;

        if (!s->ran) {
                if (s->bind_r < 0)
                        return s->bind_r;
                s->res = run(l, s->sql, s->n, s->type, (const char *const *)s->val, s->len, s->fmt, &r);
                if (!s->res)
                        return r;
                if (!res_ok(s->res)) {
                        r = res_err(l, s->res, NULL);
                        if (r == -EAGAIN && PG(l)->tx != TX_NONE)
                                PG(l)->tx_lost = true; /* the transaction is aborted: repeat it */
                        PQclear(s->res);
                        s->res = NULL;
                        return r;
                }
                s->ran = true;
                s->nrows = PQntuples(s->res);
                s->ncols = PQnfields(s->res);
                if (s->ncols > 0) {
                        s->blob = calloc((size_t)s->ncols, sizeof(*s->blob));
                        s->blob_len = calloc((size_t)s->ncols, sizeof(*s->blob_len));
                        if (!s->blob || !s->blob_len) {
                                stmt_clear_result(s);
                                return -ENOMEM;
                        }
                }
                s->row = -1;
        }
        stmt_clear_row(s);
        if (s->row < s->nrows)
                s->row++;
        if (s->row >= s->nrows)
                return 0;
        for (int i = 0; i < s->ncols; i++) {
                if (PQftype(s->res, i) != OID_BYTEA || PQgetisnull(s->res, s->row, i))
                        continue;
                s->blob[i] = PQunescapeBytea((const unsigned char *)PQgetvalue(s->res, s->row, i), &s->blob_len[i]);
                if (!s->blob[i])
                        return fl_err(l->ctx, -ENOMEM, "ledger %s: out of memory decoding a bytea column", l->name);
        }
        return 1;
}

static void pg_reset(struct ldb_stmt *st)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        stmt_clear_result(s);
        s->bind_r = 0;
        for (int i = 0; i < s->n; i++) {
                free(s->val[i]);
                s->val[i] = NULL;
                s->len[i] = s->fmt[i] = 0;
                s->type[i] = 0;
        }
}

static bool has_cell(struct pg_stmt *s, int i)
{
        return s->res && s->row >= 0 && s->row < s->nrows && i >= 0 && i < s->ncols;
}

static enum ldb_type pg_col_type(struct ldb_stmt *st, int i)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        if (!has_cell(s, i) || PQgetisnull(s->res, s->row, i))
                return LDB_NULL;
        switch (PQftype(s->res, i)) {
        case OID_INT8:
        case OID_INT4:
        case OID_INT2:
                return LDB_INT;
        case OID_TEXT:
        case OID_VARCHAR:
        case OID_BPCHAR:
        case OID_NAME:
                return LDB_TEXT;
        case OID_BYTEA:
                return LDB_BLOB;
        default:
                return LDB_OTHER;
        }
}

static int64_t pg_col_int64(struct ldb_stmt *st, int i)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        const char *t;
        char *end;
        long long v;

        if (!has_cell(s, i) || PQgetisnull(s->res, s->row, i))
                return 0;
        /* Only an integer column's whole text is a value: "1.5", "1e3" or
         * one out of range reads as 0 (as a NULL), never as a prefix. */
        t = PQgetvalue(s->res, s->row, i);
        errno = 0;
        v = strtoll(t, &end, 10);
        if (end == t || *end || errno == ERANGE)
                return 0;
        return v;
}

static const char *pg_col_text(struct ldb_stmt *st, int i)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        if (!has_cell(s, i) || PQgetisnull(s->res, s->row, i))
                return NULL;
        return PQgetvalue(s->res, s->row, i);
}

static const void *pg_col_blob(struct ldb_stmt *st, int i, size_t *ret_len)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        *ret_len = 0;
        if (!has_cell(s, i) || PQgetisnull(s->res, s->row, i))
                return NULL;
        if (PQftype(s->res, i) != OID_BYTEA) {
                *ret_len = (size_t)PQgetlength(s->res, s->row, i);
                return PQgetvalue(s->res, s->row, i);
        }
        /* Decoded by pg_step (where running out of memory is its -ENOMEM,
         * not a NULL here that would read as a missing value). */
        *ret_len = s->blob_len[i];
        return s->blob[i];
}

static void pg_finalize(struct ldb_stmt *st)
{
        struct pg_stmt *s = (struct pg_stmt *)st;

        if (!s)
                return;
        pg_reset(st);
        free(s->val);
        free(s->len);
        free(s->fmt);
        free(s->type);
        free(s->sql);
        free(s);
}

static int pg_exec(struct ledger *l, const char *sql)
{
        PGresult *res;
        int r;

        res = run(l, sql, 0, NULL, NULL, NULL, NULL, &r);
        if (!res)
                return r;
        if (!res_ok(res)) {
                r = res_err(l, res, NULL);
                if (r == -EAGAIN && PG(l)->tx != TX_NONE)
                        PG(l)->tx_lost = true;
        }
        PQclear(res);
        return r;
}

/* ---- identity and schema ------------------------------------------------ */

struct pg_identity {
        bool marker;
        int64_t app_id, version, objects, marker_rows;
        char schema[64];
};

static int query_one(struct ledger *l, const char *sql, PGresult **ret)
{
        int r;
        PGresult *res = run(l, sql, 0, NULL, NULL, NULL, NULL, &r);

        if (!res)
                return r;
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                r = res_ok(res) ? fl_err(l->ctx, -EIO, "ledger %s: reading the schema: no answer", l->name)
                                : res_err(l, res, "reading the schema");
                PQclear(res);
                return r;
        }
        *ret = res;
        return 0;
}

static int read_identity(struct ledger *l, struct pg_identity *id)
{
        PGresult *res = NULL;
        int r;

        memset(id, 0, sizeof(*id));
        r = query_one(l,
                      "SELECT coalesce(current_schema(), ''),"
                      " (SELECT count(*) FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
                      "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')),"
                      " (SELECT count(*) FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
                      "   AND c.relname = 'fuseline_ledger' AND c.relkind = 'r')",
                      &res);
        if (r < 0)
                return r;
        snprintf(id->schema, sizeof(id->schema), "%s", PQgetvalue(res, 0, 0));
        id->objects = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        id->marker = strtoll(PQgetvalue(res, 0, 2), NULL, 10) > 0;
        PQclear(res);
        if (!id->schema[0])
                return fl_err(l->ctx, -EINVAL, "ledger %s: no schema to use (the role's search_path names none that "
                              "exists)", l->name);
        if (!id->marker)
                return 0;
        r = query_one(l, "SELECT count(*), min(app_id), min(version) FROM fuseline_ledger", &res);
        if (r < 0)
                return r;
        id->marker_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        id->app_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        id->version = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        PQclear(res);
        return 0;
}

static int check_identity(struct ledger *l, const struct pg_identity *id)
{
        if (id->marker && (id->marker_rows != 1 || id->app_id != LEDGER_APP_ID))
                return fl_err(l->ctx, -EINVAL, "ledger %s: schema %s has a fuseline_ledger table, but not a fuseline "
                              "ledger's (app_id %lld, %lld rows)", l->name, id->schema, (long long)id->app_id,
                              (long long)id->marker_rows);
        if (!id->marker && id->objects > 0)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: a PostgreSQL database, but not a fuseline ledger (schema %s holds %lld "
                              "other relations and no fuseline_ledger marker)",
                              l->name, id->schema, (long long)id->objects);
        if (id->version > LEDGER_SCHEMA_VERSION)
                return fl_err(l->ctx, -EINVAL,
                              "ledger %s: schema version %lld is newer than this fuseline understands (%d); "
                              "use a newer fuseline",
                              l->name, (long long)id->version, LEDGER_SCHEMA_VERSION);
        if (l->mode == LEDGER_READ && (!id->marker || id->version < 1))
                return fl_err(l->ctx, -EINVAL, "ledger %s: empty database, no fuseline ledger in it", l->name);
        return 0;
}

/* A write transaction holding the schema lock (waiting up to the busy
 * timeout): schema changes by stations starting at once take turns. */
static int schema_lock_begin(struct ledger *l, const char *what)
{
        char sql[160];
        PGresult *res;
        int r;

        snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL lock_timeout = %u; SELECT pg_advisory_xact_lock(" LOCK_SCHEMA ")",
                 l->busy_ms ? l->busy_ms : 1);
        res = exec_retry(l, sql, 0, NULL, NULL, NULL, NULL, &r);
        if (!res)
                return r;
        if (!res_ok(res)) {
                r = res_err(l, res, what);
                PQclear(res);
                pg_rollback(l);
                return r;
        }
        PQclear(res);
        PG(l)->tx = TX_WRITE;
        return 0;
}

/* Create or migrate the schema in one transaction under the schema lock, so
 * stations starting at once neither race nor see half a schema. */
static int migrate(struct ledger *l)
{
        struct pg_identity id;
        char sql[160], what[64];
        int r;

        r = schema_lock_begin(l, "starting the schema update");
        if (r < 0)
                return r;
        r = read_identity(l, &id);
        if (r >= 0)
                r = check_identity(l, &id);
        if (r < 0)
                goto fail;
        if (id.version >= LEDGER_SCHEMA_VERSION) {
                pg_rollback(l); /* another station did it meanwhile */
                return 0;
        }
        if (id.version > 0)
                fl_log(l->ctx, FL_LOG_INFO, "ledger %s: migrating schema %lld -> %d", l->name, (long long)id.version,
                       LEDGER_SCHEMA_VERSION);
        for (int v = (int)id.version; v < LEDGER_SCHEMA_VERSION; v++) {
                snprintf(what, sizeof(what), "schema update %d -> %d", v, v + 1);
                r = pg_exec(l, migrations[v]);
                if (r < 0) {
                        /* pg_exec named the statement kind; say which update. */
                        fl_log(l->ctx, FL_LOG_DEBUG, "ledger %s: %s failed", l->name, what);
                        goto fail;
                }
        }
        if (id.marker)
                snprintf(sql, sizeof(sql), "UPDATE fuseline_ledger SET version = %d", LEDGER_SCHEMA_VERSION);
        else
                snprintf(sql, sizeof(sql),
                         "CREATE TABLE fuseline_ledger (app_id BIGINT NOT NULL, version INTEGER NOT NULL);"
                         "INSERT INTO fuseline_ledger VALUES (%d, %d)",
                         LEDGER_APP_ID, LEDGER_SCHEMA_VERSION);
        r = pg_exec(l, sql);
        if (r < 0)
                goto fail;
        return pg_commit(l);
fail:
        pg_rollback(l);
        return r;
}

/* LDBQ_INSERT_EVENT's procedure, for a ledger of this schema version made
 * before it existed or holding an older body: a PostgreSQL-only step, not a
 * schema version (the version is shared with SQLite, which needs nothing).
 * Only the events table's owner (or a superuser) installs it, under the
 * schema lock; a station finding it missing is told who must open the
 * ledger once, and one finding another body (a newer fuseline's) uses it. */
static int ensure_append(struct ledger *l)
{
        const char *vals[1] = { APPEND_BODY };
        PGresult *res;
        bool present, current, owner;
        int r;

        res = exec_retry(l,
                         "SELECT count(p.oid) > 0, coalesce(bool_or(p.prosrc = $1::text), false), "
                         "  (SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = 'events'::regclass) "
                         "FROM pg_proc p WHERE p.proname = 'fuseline_append_event' AND p.prokind = 'p' "
                         "AND p.pronamespace = current_schema()::regnamespace",
                         1, NULL, vals, NULL, NULL, &r);
        if (!res)
                return r;
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                r = res_err(l, res, "looking for the append procedure");
                PQclear(res);
                return r;
        }
        present = !strcmp(PQgetvalue(res, 0, 0), "t");
        current = !strcmp(PQgetvalue(res, 0, 1), "t");
        owner = !strcmp(PQgetvalue(res, 0, 2), "t");
        PQclear(res);
        if (current)
                return 0;
        if (!owner) {
                if (present)
                        return 0;
                return fl_err(l->ctx, -EINVAL, "ledger %s: the ledger has no fuseline_append_event procedure yet: "
                              "its owner must open it for writing once with this fuseline (then run "
                              "ledger-pg-roles.sql again)", l->name);
        }
        r = schema_lock_begin(l, "starting the append procedure's update");
        if (r < 0)
                return r;
        r = pg_exec(l, ensure_append_sql);
        if (r < 0) {
                pg_rollback(l);
                return r;
        }
        fl_log(l->ctx, FL_LOG_INFO, "ledger %s: %s the append procedure fuseline_append_event", l->name,
               present ? "updated" : "installed");
        return pg_commit(l);
}

/* ---- open/close --------------------------------------------------------- */

static void pg_close(struct ledger *l)
{
        struct pg *pg = PG(l);

        if (!pg)
                return;
        PQfinish(pg->conn);
        free(pg->location);
        free(pg);
        l->be = NULL;
}

/* Refuse a location that carries a password; take its connect_timeout as
 * the reconnect window. */
static int parse_location(struct ledger *l, struct pg *pg, const char *location)
{
        PQconninfoOption *opts;
        char *err = NULL;
        int r = 0;

        opts = PQconninfoParse(location, &err);
        if (!opts) {
                char msg[256];
                bool secret = strcmp(location, l->name) != 0;
                snprintf(msg, sizeof(msg), "%s", err ? err : "out of memory");
                one_line(msg);
                PQfreemem(err);
                /* libpq's parse error may quote the password. */
                return fl_err(l->ctx, -EINVAL, "ledger %s: not a PostgreSQL connection URI (%s)", l->name,
                              secret ? "details withheld: the URI holds a password" : msg);
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!strcmp(o->keyword, "password") && o->val && *o->val) {
                        r = fl_err(l->ctx, -EINVAL,
                                   "ledger %s: the URI carries a password: put the password in ~/.pgpass (or a "
                                   "service file, or PGPASSFILE), never in the location",
                                   l->name);
                        break;
                }
                if (!strcmp(o->keyword, "connect_timeout") && o->val && *o->val) {
                        char *end;
                        long v = strtol(o->val, &end, 10);
                        if (*end || v < 0 || v > 86400) {
                                r = fl_err(l->ctx, -EINVAL, "ledger %s: connect_timeout '%s' is not a number of "
                                           "seconds", l->name, o->val);
                                break;
                        }
                        pg->window_ms = (unsigned)v * 1000;
                        snprintf(pg->connect_timeout, sizeof(pg->connect_timeout), "%ld", v);
                }
        }
        PQconninfoFree(opts);
        if (r == 0 && !pg->connect_timeout[0])
                snprintf(pg->connect_timeout, sizeof(pg->connect_timeout), "%d", PG_ATTEMPT_S);
        return r;
}

static int open_ledger(struct ledger *l, const char *location);

static int pg_open(struct ledger *l, const char *location)
{
        int r = open_ledger(l, location);

        if (r < 0)
                pg_close(l);
        return r;
}

static int open_ledger(struct ledger *l, const char *location)
{
        struct pg_identity id;
        struct pg *pg;
        char *name;
        int r;

        name = ledger_pg_uri_scrub(location);
        if (!name)
                return -ENOMEM;
        free(l->name);
        l->name = name;
        pg = calloc(1, sizeof(*pg));
        if (!pg)
                return -ENOMEM;
        l->be = pg;
        pg->location = strdup(location);
        if (!pg->location)
                return -ENOMEM;
        r = parse_location(l, pg, location);
        if (r < 0)
                return r;
        r = pg_connect(l, mono_ms() + window_ms(l));
        if (r < 0)
                return r;
        r = begin(l, TX_READ);
        if (r < 0)
                return r;
        r = read_identity(l, &id);
        if (r >= 0)
                r = check_identity(l, &id);
        pg_rollback(l);
        if (r < 0)
                return r;
        if (l->mode == LEDGER_WRITE && id.version < LEDGER_SCHEMA_VERSION) {
                r = migrate(l);
                if (r < 0)
                        return r;
                l->version = LEDGER_SCHEMA_VERSION;
        } else {
                l->version = (int)id.version;
        }
        if (l->mode == LEDGER_WRITE)
                return ensure_append(l);
        return 0;
}

/* ---- the backend -------------------------------------------------------- */

static bool pg_conn_was_lost(struct ledger *l)
{
        return PG(l) && PG(l)->lost;
}


const struct ldb_ops ldb_pg_ops = {
        .name = "postgresql",
        .open = pg_open,
        .close = pg_close,
        .begin_write = pg_begin_write,
        .begin_read = pg_begin_read,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .in_transaction = pg_in_transaction,
        .prepare = pg_prepare,
        .bind_int64 = pg_bind_int64,
        .bind_text = pg_bind_text,
        .bind_blob = pg_bind_blob,
        .bind_null = pg_bind_null,
        .step = pg_step,
        .reset = pg_reset,
        .col_type = pg_col_type,
        .col_int64 = pg_col_int64,
        .col_text = pg_col_text,
        .col_blob = pg_col_blob,
        .finalize = pg_finalize,
        .exec = pg_exec,
        .conn_was_lost = pg_conn_was_lost,
        .query = {
                /* Columns are typed: id is always an integer, intent_id an
                 * integer or NULL. */
                [LDBQ_EVENT_COLS] = "id, time, station, operator, command, ecid, kind, intent_id, outcome, details, "
                                    "prev_hash, hash, 'integer'::text, "
                                    "CASE WHEN intent_id IS NULL THEN 'null' ELSE 'integer' END",
                [LDBQ_HIGH_WATER] = "SELECT coalesce((SELECT max(id) FROM events_high_water), 0)",
                [LDBQ_LAST_DEVICE_SNAPSHOT] =
                        "SELECT id, (fuseline_jsonb(details) -> 'device')::text FROM events WHERE ecid = ?1 "
                        "AND jsonb_typeof(fuseline_jsonb(details) -> 'device') = 'object' ORDER BY id DESC LIMIT 1",
                [LDBQ_COUNT_CERT_RECORDED] = "SELECT count(*) FROM events WHERE ecid = ?1 "
                                             "AND fuseline_jsonb(details) #>> '{certificate,sha256}' = ?2",
                /* @>: an array holding the string (or the string itself,
                 * as SQLite's json_each yields a scalar). */
                [LDBQ_COUNT_CERT_SUPERSEDED] = "SELECT count(*) FROM events WHERE ecid = ?1 "
                                               "AND fuseline_jsonb(details) #> '{certificate,superseded}' "
                                               "@> to_jsonb(?2::text)",
                /* Present, enabled, in this schema, and still calling the
                 * refusing function unchanged; on the table its name says,
                 * with no WHEN clause, and of the kind it was created as
                 * (pg_trigger.tgtype bits: ROW 1, BEFORE 2, DELETE 8,
                 * UPDATE 16, TRUNCATE 32): BEFORE UPDATE FOR EACH ROW
                 * (*_no_update, certificates_fixed), BEFORE DELETE FOR EACH
                 * ROW (*_no_delete), BEFORE TRUNCATE FOR EACH STATEMENT
                 * (*_no_truncate). */
                [LDBQ_GUARD_EXISTS] =
                        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgname = ?1::text "
                        "AND c.relnamespace = current_schema()::regnamespace "
                        "AND t.tgenabled IN ('O', 'A') AND p.proname = 'fuseline_refuse' "
                        "AND p.prosrc = '" REFUSE_BODY "' AND t.tgqual IS NULL "
                        "AND c.relname = CASE WHEN ?1::text = 'certificates_fixed' THEN 'certificates' "
                        "  ELSE regexp_replace(?1::text, '_no_(update|delete|truncate)$', '') END "
                        "AND t.tgtype = CASE WHEN ?1::text = 'certificates_fixed' OR ?1::text ~ '_no_update$' THEN 19 "
                        "  WHEN ?1::text ~ '_no_delete$' THEN 11 WHEN ?1::text ~ '_no_truncate$' THEN 34 END",
                [LDBQ_CERTS_IN_ORDER] = "SELECT fingerprint, ecid, der, status FROM certificates ORDER BY seq",
                [LDBQ_CERTS_OF_ECID] = "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 ORDER BY added, seq",
                [LDBQ_CHECKPOINT_IDS_RESYNC] = "SELECT setval(pg_get_serial_sequence('checkpoints', 'id'), max(id)) "
                                               "FROM checkpoints HAVING max(id) IS NOT NULL",
                [LDBQ_INSERT_EVENT] = "CALL fuseline_append_event(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        },
        .truncate_guards = true,
};
