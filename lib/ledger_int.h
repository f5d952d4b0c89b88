/* ledger_int.h — what the ledger_*.c files share (not for other modules):
 * the connection structure, SQL column lists and helpers. Files:
 *   ledger.c            small helpers (paths, names, text checks)
 *   ledger_sqlite.c     SQLite storage: schema, migrations, errors, open/close
 *   ledger_parse.c      ECID and time parsing
 *   ledger_canon.c      canonical event bytes and hashes
 *   ledger_append.c     appending events (devices, certificates, intents)
 *   ledger_read.c       reading events, devices and certificates
 *   ledger_verify.c     verification
 *   ledger_checkpoint.c signed checkpoints
 *   ledger_export.c     CSV/JSON export */
#pragma once

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
        char *spool_for;     /* a spool standing in for this central ledger (ledger_sync.c), else NULL */
};

#define EVENT_COLS                                                                                              \
        "id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash, "      \
        "typeof(id), typeof(intent_id)"

struct ledger_iter {
        struct ledger *l;
        sqlite3_stmt *st;
        struct ledger_row row;
};

/* Helpers shared by the ledger_*.c files (defined in the file named). */
/* ledger.c: the station and operator ledger_defaults_set gave (NULL: none). */
extern const char *ledger_default_station, *ledger_default_operator;
/* ledger_sqlite.c */
int begin_immediate(struct ledger *l);
/* ledger_canon.c */
int canon_field(struct fl_buf *b, const void *data, size_t n);
/* ledger_canon.c */
int canon_int(struct fl_buf *b, int64_t v);
/* ledger_canon.c */
int canon_str(struct fl_buf *b, const char *s);
/* ledger.c */
int check_text(fl_ctx *ctx, const char *field, const char *s, size_t max);
/* ledger.c */
int col_dup(sqlite3_stmt *st, int i, char **ret);
/* ledger_canon.c */
int hash_with(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN], struct fl_buf *b,
              unsigned char out[LEDGER_HASH_LEN]);
/* ledger.c */
uint64_t mono_ms(void);
/* ledger.c */
void sleep_ms(unsigned ms);
/* ledger_sqlite.c */
int sql_err(struct ledger *l, int rc, const char *what);
/* ledger_append.c */
int stmt(struct ledger *l, const char *sql, sqlite3_stmt **ret);
/* ledger_parse.c */
bool time_is_canonical(const char *s);
/* ledger_checkpoint.c */
int verify_checkpoints(struct ledger *l, struct ledger_report *rep, const struct ledger_trust *trust,
                       size_t n_trust);
/* ledger_sync.c: insert an event row verbatim (id, details, hashes) */
int event_insert_raw(struct ledger *l, const struct ledger_row *row);
/* ledger_sync.c: the proofs forwarded events carry, and table forwarded */
int verify_forwarded(struct ledger *l, struct ledger_report *rep);
/* ledger_verify.c */
void fault(struct ledger_report *rep, enum ledger_fault f, int64_t id, const char *fmt, ...) FL_PRINTF(4, 5);
/* ledger_read.c: fill row from the statement's current row. Returns a
 * description of the first column that is not what the schema promises
 * (NULL when fine); the row is filled either way, with "" for missing text. */
const char *row_load(sqlite3_stmt *st, struct ledger_row *row);
