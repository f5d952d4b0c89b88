/* ledger_int.h — what the ledger_*.c files share (not for other modules):
 * the connection structure, SQL column lists and helpers. Files:
 *   ledger.c            small helpers (paths, names, text checks), open/close
 *   ledger_db.c         the ldb_* storage interface (ledger_db.h): dispatch
 *   ledger_sqlite.c     the SQLite backend: schema, migrations, errors, open
 *   ledger_parse.c      ECID and time parsing
 *   ledger_canon.c      canonical event bytes and hashes
 *   ledger_append.c     appending events (devices, certificates, intents)
 *   ledger_read.c       reading events, devices and certificates
 *   ledger_verify.c     verification
 *   ledger_checkpoint.c signed checkpoints
 *   ledger_export.c     CSV/JSON export
 *   ledger_sync.c       store and forward: the spool, ledger_sync, forwarded proofs
 *   ledger_migrate.c    copying a ledger verbatim to another location */
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

#include "ledger.h"
#include "ledger_db.h"
#include "sign.h"

/* 'FLDG': marks the file as a fuseline ledger, so the tool refuses to
 * migrate (write into) somebody else's SQLite database. */
#define LEDGER_APP_ID 0x464c4447
#define CANON_TAG "fuseline-event/1"

/* A ledger, whatever stores it. The backend keeps its own state in be. */
struct ledger {
        fl_ctx *ctx;
        char *name; /* the path, or the URI without a password: what messages name */
        enum ledger_mode mode;
        int version;
        unsigned busy_ms;
        const struct ldb_ops *ops;
        void *be;
        char *spool_for; /* a spool standing in for this central ledger (ledger_sync.c), else NULL */
};

/* The certificate columns ledger_read.c loads (LDBQ_CERTS_OF_ECID selects
 * them too). */
#define CERT_COLS "fingerprint, ecid, issuer, serial, not_before, not_after, status, added, der"

struct ledger_iter {
        struct ledger *l;
        struct ldb_stmt *st; /* SELECT <LDBQ_EVENT_COLS> FROM events … */
        struct ledger_row row;
};

/* Helpers shared by the ledger_*.c files (defined in the file named). */
/* ledger_pg.c: the URI without its password (malloc'd; NULL: out of memory). */
char *ledger_pg_uri_scrub(const char *uri);
/* ledger_pg.c: ?N -> $N outside literals; returns the highest N or -errno. */
int ledger_pg_rewrite(const char *sql, char **ret);
/* ledger.c: the station and operator ledger_defaults_set gave (NULL: none). */
extern const char *ledger_default_station, *ledger_default_operator;
/* ledger_append.c: UPDATE or INSERT a device row (chip, module, serial, state). */
int device_row_write(struct ledger *l, bool exists, const char *ecid, const char *const vals[4], const char *time);
/* ledger_canon.c */
int canon_field(struct fl_buf *b, const void *data, size_t n);
/* ledger_canon.c */
int canon_int(struct fl_buf *b, int64_t v);
/* ledger_canon.c */
int canon_str(struct fl_buf *b, const char *s);
/* ledger.c */
int check_text(fl_ctx *ctx, const char *field, const char *s, size_t max);
/* ledger.c: a text column as a malloc'd string (NULL for NULL). */
int col_dup(struct ldb_stmt *st, int i, char **ret);
/* ledger.c: a blob column of LEDGER_HASH_LEN bytes, else NULL. */
const unsigned char *col_hash(struct ldb_stmt *st, int i);
/* ledger.c: after a failed ldb_step/ldb_commit/ldb_exec, whose message says
 * "ledger NAME: why": make it "ledger NAME: what: why". Returns r. */
int db_fail(struct ledger *l, int r, const char *what);
/* ledger.c: prepare "SELECT <LDBQ_EVENT_COLS> FROM events <tail>". */
int prepare_events(struct ledger *l, const char *tail, struct ldb_stmt **ret);
/* ledger_canon.c */
int hash_with(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN], struct fl_buf *b,
              unsigned char out[LEDGER_HASH_LEN]);
/* ledger.c */
uint64_t mono_ms(void);
/* ledger.c */
void sleep_ms(unsigned ms);
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
/* ledger_verify's checks inside the transaction the caller holds (a read
 * snapshot, or a write transaction before its commit): what the caller
 * reads or wrote in it is what was verified. */
int ledger_verify_in_tx(struct ledger *l, struct ledger_report *ret);
void fault(struct ledger_report *rep, enum ledger_fault f, int64_t id, const char *fmt, ...) FL_PRINTF(4, 5);
/* ledger_read.c: fill row from the statement's current row. Returns a
 * description of the first column that is not what the schema promises
 * (NULL when fine); the row is filled either way, with "" for missing text. */
const char *row_load(struct ldb_stmt *st, struct ledger_row *row);
