/* ledger.h — the manufacturing ledger: one SQLite database (WAL) holding the
 * devices seen, the certificates issued to them, and an append-only,
 * hash-chained list of events. Every command that touches a device writes
 * here; `fuseline verify ledger` recomputes the chain.
 *
 * How writers use it (burn, enroll, keygen):
 *
 *     struct ledger *l;
 *     r = ledger_open(ctx, ledger_path(opt_db), LEDGER_WRITE, &l);
 *     struct ledger_event ev = { .command = "burn", .ecid = ecid,
 *             .kind = LEDGER_INTENT, .outcome = "pending",
 *             .details = "{\"plan_sha256\":\"…\"}" };
 *     struct ledger_appended in;
 *     r = ledger_append(l, &ev, &in);      // durable before the burn starts
 *     … the irreversible step …
 *     struct ledger_device dev = { .ecid = ecid, .state = LEDGER_STATE_FUSED };
 *     struct ledger_event res = { .command = "burn", .ecid = ecid,
 *             .kind = LEDGER_RESULT, .intent_id = in.id, .outcome = "ok",
 *             .device = &dev };
 *     r = ledger_append(l, &res, NULL);
 *     ledger_close(l);
 *
 * Device and certificate rows change only together with an event: attach
 * them to the event (ev.device, ev.cert) and the row change, the event and
 * its chain link commit in one transaction. The ledger then adds a snapshot
 * of the change to the event's details ("device", "certificate"), so the
 * chain covers the state tables too and `verify ledger` can check them.
 *
 * The canonical event bytes that the chain hashes are defined in ledger.c
 * (ledger_event_canon) and in README.md §fuseline ledger. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "internal.h"
#include "sign.h"

#define LEDGER_SCHEMA_VERSION 3
#define LEDGER_HASH_LEN 32
#define LEDGER_ECID_LEN 32 /* hex digits: T194/T234 report a 128-bit ECID */
#define LEDGER_TIME_LEN 21 /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
#define LEDGER_DEFAULT_PATH "fuseline.db"
/* Upper bounds for what one event may carry. */
#define LEDGER_FIELD_MAX 256            /* station, operator, command, outcome */
#define LEDGER_DETAILS_MAX (256 * 1024) /* details JSON text */
#define LEDGER_CERT_MAX (64 * 1024)     /* certificate DER */

struct ledger;
struct ledger_iter;

/* ---- opening ------------------------------------------------------------ */

enum ledger_mode {
        /* The file must exist and hold a fuseline ledger (any schema version
         * up to LEDGER_SCHEMA_VERSION). Nothing is created, migrated or
         * written: opened with SQLITE_OPEN_READONLY. */
        LEDGER_READ = 0,
        /* Created when missing (WAL mode, current schema); an older schema is
         * migrated in one transaction. */
        LEDGER_WRITE = 1,
};

/* The database path: opt if set (--db), else the process default set with
 * ledger_defaults_set (the CLI: $FUSELINE_DB), else "fuseline.db" in the
 * current directory. Never NULL. */
const char *ledger_path(const char *opt);
/* Process-wide defaults the caller owns (the library reads no environment):
 * the database path, and the station and operator recorded when a request
 * names none (NULL: the host name, the user name). Strings are borrowed and
 * must outlive their use; call once at start-up. */
void ledger_defaults_set(const char *db_path, const char *station, const char *operator);

/* location: an SQLite file path, or a postgresql:// (postgres://) URI
 * (lib/ledger_db.h picks the backend).
 * Errors (all name the path):
 *   -ENOENT  LEDGER_READ and the file does not exist
 *   -EINVAL  not an SQLite database, an SQLite database that is not a
 *            fuseline ledger, or a schema newer than this build knows
 *            (all exit 2), or LEDGER_WRITE and the file or its directory
 *            is not writable, or a URI and this build has no PostgreSQL
 *            backend
 *   -EIO     anything else SQLite reports */
int ledger_open(fl_ctx *ctx, const char *location, enum ledger_mode mode, struct ledger **ret);
void ledger_close(struct ledger *l); /* accepts NULL */

/* Schema version of the open database (after any migration). */
int ledger_schema_version(const struct ledger *l);

/* How long one append may wait for other writers, in total, before it gives
 * up with -EBUSY (default 60000 ms). */
void ledger_set_busy_timeout(struct ledger *l, unsigned ms);

/* ---- values ------------------------------------------------------------- */

enum ledger_kind {
        LEDGER_RECORD = 0, /* "record": something that happened */
        LEDGER_INTENT,     /* "intent": about to do something irreversible */
        LEDGER_RESULT,     /* "result": how an intent ended (intent_id set) */
};

enum ledger_state {
        LEDGER_STATE_KEEP = 0, /* in a device update: leave the state as it is */
        LEDGER_STATE_BLANK,
        LEDGER_STATE_PLANNED,
        LEDGER_STATE_FUSED_TEST,
        LEDGER_STATE_FUSED,
        LEDGER_STATE_ENROLLED,
        LEDGER_STATE_FAILED,
};

const char *ledger_kind_name(enum ledger_kind k);         /* "record", "intent", "result" */
const char *ledger_state_name(enum ledger_state s);       /* "blank", "fused-test", … (NULL for KEEP) */
enum ledger_state ledger_state_from_name(const char *s);  /* LEDGER_STATE_KEEP if unknown */

/* Normalise an ECID: optional "0x", exactly 32 hex digits, any case ->
 * 32 lower-case digits. -EINVAL naming the value otherwise. */
int ledger_ecid_parse(fl_ctx *ctx, const char *in, char out[LEDGER_ECID_LEN + 1]);

/* Parse a point in time as `--since` takes it, relative to `now`:
 *   2024-05-01                      midnight UTC
 *   2024-05-01T12:30[:45[.123]]     UTC ('T' or ' '; fraction dropped)
 *     … with a suffix Z, +HH:MM, -HH:MM, +HHMM or +HH (offset from UTC)
 *   @1714566645                     seconds since 1970 (UTC)
 *   90s 30m 24h 7d 2w               that long before now
 * Years 1970..9999. Writes "YYYY-MM-DDTHH:MM:SSZ" (UTC). -EINVAL naming the
 * value otherwise. */
int ledger_time_parse(fl_ctx *ctx, const char *in, time_t now, char out[LEDGER_TIME_LEN]);

/* ---- writing ------------------------------------------------------------ */

/* A device row change, attached to an event. Fields left NULL/NONE/KEEP
 * are not changed. A new device starts in state "blank". chip, module and
 * serial are identity facts: once recorded they are never changed (a
 * different value is -EEXIST); a serial belongs to one ECID only. */
struct ledger_device {
        enum fl_chip chip;
        const char *module; /* module/SKU, e.g. "p3701-0004" */
        const char *serial; /* serial number assigned by the factory */
        enum ledger_state state;
};

/* A certificate issued to the event's device, attached to an event. The
 * ledger parses the DER for issuer, serial and validity and stores the
 * SHA-256 fingerprint. At most one certificate per ECID is "valid": adding
 * one while another is valid is -EEXIST unless supersede is set, which
 * marks the others "superseded" in the same transaction. */
struct ledger_cert {
        const unsigned char *der;
        size_t der_len;
        bool supersede;
};

struct ledger_event {
        const char *time;     /* NULL: now. Else "YYYY-MM-DDTHH:MM:SSZ" */
        const char *station;  /* NULL: $FUSELINE_STATION, else the host name */
        const char *operator; /* NULL: $FUSELINE_OPERATOR, else the login name */
        const char *command;  /* required: "burn", "enroll", "keygen", … */
        const char *ecid;     /* the device (any form ledger_ecid_parse takes), or NULL */
        enum ledger_kind kind;
        int64_t intent_id;    /* LEDGER_RESULT: the intent event it closes; else 0 */
        const char *outcome;  /* required: "ok", "failed", "pending", "already-provisioned", … */
        /* JSON object text (plan hash, key fingerprints, log path, error
         * text…), or NULL for {}. Stored re-serialised compactly. The keys
         * "device" and "certificate" are the ledger's own. */
        const char *details;
        const struct ledger_device *device; /* needs ecid */
        const struct ledger_cert *cert;     /* needs ecid */
};

/* What an append produced. */
struct ledger_appended {
        int64_t id;
        unsigned char hash[LEDGER_HASH_LEN];
        char time[LEDGER_TIME_LEN];
};

/* Append one event (and its attached device/certificate change) as one
 * transaction: BEGIN IMMEDIATE, so concurrent writers queue and each links
 * to the true previous event; retried on SQLITE_BUSY up to the busy
 * timeout; synchronous=FULL, so a returned event survives power loss.
 * Either all of it is stored or nothing.
 *   -EINVAL  a field is malformed (message names it); a result whose
 *            intent_id is no intent, or an intent for another ECID
 *   -EEXIST  the intent is closed already; a conflicting device identity
 *            fact; a second valid certificate without supersede
 *   -EINVAL  also: the database is read-only, or opened LEDGER_READ
 *   -ENOSPC  the disk is full
 *   -EBUSY   other writers held the lock past the busy timeout
 * ret may be NULL. */
int ledger_append(struct ledger *l, const struct ledger_event *ev, struct ledger_appended *ret);

/* Several events in one transaction, in order (all or none); a result may
 * close an intent earlier in the same batch. ret: n entries, or NULL. */
int ledger_append_batch(struct ledger *l, const struct ledger_event *evs, size_t n,
                        struct ledger_appended *ret);

/* ---- reading ------------------------------------------------------------ */

/* An event as stored. Strings and hashes belong to the iterator and are
 * valid until the next ledger_iter_next/ledger_iter_free. */
struct ledger_row {
        int64_t id;
        const char *time, *station, *operator, *command;
        const char *ecid; /* NULL: no device */
        const char *kind; /* "record" | "intent" | "result" */
        int64_t intent_id; /* 0: none */
        const char *outcome;
        const char *details; /* JSON object text */
        unsigned char prev_hash[LEDGER_HASH_LEN];
        unsigned char hash[LEDGER_HASH_LEN];
};

struct ledger_filter {
        const char *since; /* "YYYY-MM-DDTHH:MM:SSZ": events at or after it */
        const char *ecid;  /* normalised ECID */
        bool intents_open; /* only intents without a result */
};

/* Events in id order, filtered (f may be NULL). */
int ledger_iter_new(struct ledger *l, const struct ledger_filter *f, struct ledger_iter **ret);
/* 1 and *ret set: a row; 0: no more rows; <0: error. */
int ledger_iter_next(struct ledger_iter *it, const struct ledger_row **ret);
void ledger_iter_free(struct ledger_iter *it); /* accepts NULL */

struct ledger_device_info {
        char *ecid, *chip, *module, *serial; /* chip/module/serial may be NULL */
        char *first_seen, *last_seen, *state;
};
/* -ENOENT when the ECID has no device row. */
int ledger_device_get(struct ledger *l, const char *ecid, struct ledger_device_info *ret);
void ledger_device_info_clear(struct ledger_device_info *d);

struct ledger_cert_info {
        char *fingerprint; /* SHA-256 of the DER, lower-case hex */
        char *ecid, *issuer, *serial, *not_before, *not_after, *status, *added;
        unsigned char *der;
        size_t der_len;
};
/* The "valid" certificate of an ECID; -ENOENT if it has none. */
int ledger_cert_current(struct ledger *l, const char *ecid, struct ledger_cert_info *ret);
/* Every certificate of an ECID, oldest first (*ret_n may be 0). */
int ledger_cert_list(struct ledger *l, const char *ecid, struct ledger_cert_info **ret, size_t *ret_n);
void ledger_cert_info_clear(struct ledger_cert_info *c);
void ledger_cert_list_free(struct ledger_cert_info *list, size_t n);

/* ---- verification ------------------------------------------------------- */

enum ledger_fault {
        LEDGER_FAULT_NONE = 0,
        LEDGER_FAULT_EDITED,      /* a row's contents no longer match its hash */
        LEDGER_FAULT_DELETED,     /* ids missing before this event */
        LEDGER_FAULT_REORDERED,   /* an intact event stored at another position */
        LEDGER_FAULT_BROKEN_LINK, /* prev_hash is not the previous event's hash */
        LEDGER_FAULT_TRUNCATED,   /* events after the last one were deleted */
        LEDGER_FAULT_MALFORMED,   /* a column has the wrong type or size */
        LEDGER_FAULT_STATE,       /* devices/certificates disagree with the events */
        LEDGER_FAULT_SCHEMA,      /* an append-only guard trigger is missing */
        LEDGER_FAULT_CHECKPOINT,  /* a signed checkpoint no longer matches, or its key is not trusted */
};

const char *ledger_fault_name(enum ledger_fault f); /* "edited", "deleted", … */

struct ledger_dangling {
        int64_t id;
        char time[LEDGER_TIME_LEN];
        char ecid[LEDGER_ECID_LEN + 1]; /* "" for none */
        char command[64];
};

struct ledger_report {
        uint64_t events;                       /* rows checked */
        int64_t head_id;                       /* last good event (0: none) */
        unsigned char head[LEDGER_HASH_LEN];   /* its hash */
        enum ledger_fault fault;               /* the first problem found */
        int64_t bad_id;                        /* the event it concerns (0 for none) */
        char message[320];                     /* one line naming it */
        struct ledger_dangling *dangling;      /* intents without a result */
        size_t n_dangling;
        size_t n_checkpoints;                  /* signed checkpoints checked */
        int64_t checkpoint_event;              /* the newest one's event (0: none) */
        char checkpoint_role[64];              /* …and its signer */
};

/* Walk every event in id order, recompute the chain, classify the first
 * fault, collect dangling intents, then check that the devices and
 * certificates tables agree with the snapshots the events carry, that the
 * guard triggers are there, and that every signed checkpoint still names
 * an event with the hash it signed and carries a valid signature by its
 * public key. Returns 0 when the walk could be done (the verdict is in
 * ret->fault), <0 when the database could not be read. */
int ledger_verify(struct ledger *l, struct ledger_report *ret);

/* A key the caller trusts to sign checkpoints (from a keyset manifest). */
struct ledger_trust {
        const char *role;
        const char *public_key_sha256; /* hex SHA-256 of the DER SubjectPublicKeyInfo */
};
/* ledger_verify, and every checkpoint must be signed by one of these keys
 * (its role listed, its public key the listed one). */
int ledger_verify_trusted(struct ledger *l, const struct ledger_trust *trust, size_t n_trust,
                          struct ledger_report *ret);
void ledger_report_clear(struct ledger_report *r);

/* Open intents (no result yet), optionally for one ECID, oldest first. */
int ledger_dangling_list(struct ledger *l, const char *ecid, struct ledger_dangling **ret, size_t *ret_n);

/* ---- signed checkpoints ------------------------------------------------- */

/* A signature over the chain head, made with a station key in a token: an
 * attacker who rewrites history (and recomputes every hash) cannot make the
 * old head's signature match the new chain. The signed bytes are
 *   F("fuseline-checkpoint/1") ‖ I(event_id) ‖ F(head hash) ‖ F(time)
 * (F and I as for events); the scheme is one of sign.h's public-key schemes
 * (prehashed schemes sign the digest of those bytes). */
struct ledger_checkpoint {
        int64_t id;                         /* set when stored */
        char time[LEDGER_TIME_LEN];
        int64_t event_id;                   /* the head it signs */
        unsigned char head[LEDGER_HASH_LEN];
        const char *role;                   /* keyset role of the signing key */
        const char *key_uri;                /* its PKCS#11 object */
        const char *scheme;                 /* "ecdsa-sha384", "rsa-pss-sha256", "ed25519", … */
        const unsigned char *public_key;    /* DER SubjectPublicKeyInfo */
        size_t public_key_len;
        const unsigned char *signature;     /* raw, as the token returns it */
        size_t signature_len;
};

/* The newest event: its id and hash (0 and zeros for an empty ledger). */
int ledger_head(struct ledger *l, int64_t *ret_id, unsigned char ret_hash[LEDGER_HASH_LEN]);
/* The bytes a checkpoint signs (malloc'd). */
int ledger_checkpoint_message(int64_t event_id, const unsigned char head[LEDGER_HASH_LEN], const char *time,
                              unsigned char **ret, size_t *ret_len);
/* What scheme s signs for the checkpoint (event_id, head and time set): the
 * digest of its message for prehashed schemes, else the message itself.
 * Freed with sign_tbs_free. */
int ledger_checkpoint_tbs(fl_ctx *ctx, const struct ledger_checkpoint *cp, enum sign_scheme s, struct sign_tbs *ret);
/* Store a checkpoint after checking it: the event exists with that hash and
 * the signature verifies with the public key (-EBADMSG otherwise). Needs
 * LEDGER_WRITE and schema version 2. ret_id may be NULL. */
int ledger_checkpoint_add(struct ledger *l, const struct ledger_checkpoint *cp, int64_t *ret_id);

/* ---- store and forward (ledger_sync.c) ---------------------------------- */

/* A station whose ledger is central (a PostgreSQL URI, or a path on a
 * share) keeps a local SQLite *spool*: a normal ledger, chained locally.
 * While the central ledger is unreachable, or while the spool still holds
 * events not yet uploaded (their order must be kept), writers get the spool
 * instead; ledger_sync uploads its pending events in order, each re-chained
 * onto the central head with the proof of its local position in details
 * ("forwarded", see ledger_fwd_attach). Certificates (enrolment) are never
 * spooled: only the central ledger can prove an ECID has no identity yet.
 *
 * The process default spool (the CLI: --spool, $FUSELINE_SPOOL); NULL for
 * none. Borrowed: must outlive its use. With one set, ledger_open
 * (LEDGER_WRITE) of any other location goes through ledger_open_spooled. */
void ledger_spool_set(const char *path);
const char *ledger_spool_default(void);

/* Open central for writing, or the spool standing in for it: the spool when
 * it has pending events, or when central is unreachable (-EHOSTUNREACH from
 * the backend; for a path: its directory is missing, as when a share is not
 * mounted). Any other error of central is returned as is. */
int ledger_open_spooled(fl_ctx *ctx, const char *central, const char *spool, struct ledger **ret);
/* ledger_open without the process default spool (sync, migrate, verify). */
int ledger_open_direct(fl_ctx *ctx, const char *location, enum ledger_mode mode, struct ledger **ret);
/* The central ledger for writing, never the spool (ledger sync): as
 * ledger_open_direct, but a path whose directory is missing is
 * -EHOSTUNREACH, as for an unreachable server. */
int ledger_open_central(fl_ctx *ctx, const char *location, struct ledger **ret);
/* For a handle ledger_open_spooled gave: the central location it stands in
 * for; NULL for any other handle. */
const char *ledger_spooling_for(const struct ledger *l);

/* The spool's identity: the hash of its first event, lower-case hex
 * (-ENOENT when it has no event yet). */
int ledger_spool_id(struct ledger *spool, char ret[2 * LEDGER_HASH_LEN + 1]);
/* Events of the spool not yet on the central ledger: ids first..first+n-1
 * (n = 0: nothing pending). */
int ledger_spool_pending(struct ledger *spool, int64_t *ret_first, int64_t *ret_n);

/* The proof a forwarded event carries: where it stood in its spool. */
struct ledger_fwd {
        char spool[2 * LEDGER_HASH_LEN + 1];  /* the spool's id */
        int64_t seq;                          /* its local id */
        unsigned char prev[LEDGER_HASH_LEN];  /* its local prev_hash */
        unsigned char hash[LEDGER_HASH_LEN];  /* its local hash */
        int64_t intent_id;                    /* a result: its local intent id; else 0 */
};
/* Central details = the local details text with one member appended:
 *   ,"forwarded":{"spool":HEX,"seq":N,"prev":HEX,"hash":HEX[,"intent_id":N]}}
 * ('{' instead of the comma for "{}"). Text, not a JSON re-serialisation:
 * removing it gives back the local text byte for byte. */
int ledger_fwd_attach(const char *details, const struct ledger_fwd *f, char **ret);
/* The inverse: -ENOENT when details carry no "forwarded" member; -EBADMSG
 * when they do but not exactly as ledger_fwd_attach writes it (last member,
 * fields, types, the original text without a "forwarded" of its own). */
int ledger_fwd_split(const char *details, char **ret_original, struct ledger_fwd *ret);

/* Verify a spool: its own chain (ledger_verify), and, with central given,
 * that every event it marks uploaded is on central as the forwarded copy of
 * exactly that event (spool id, seq, local hash): the spool is the station's
 * independent evidence, so a central history rewritten with every hash
 * recomputed still shows. The verdict is in ret->fault (bad_id: the spool
 * event); <0 when a ledger could not be read. */
int ledger_spool_verify(struct ledger *spool, struct ledger *central, struct ledger_report *ret);

struct ledger_sync_report {
        char spool_id[2 * LEDGER_HASH_LEN + 1]; /* "" for an empty spool */
        int64_t pending;       /* spool events pending before the run */
        int64_t uploaded;      /* forwarded by this run */
        int64_t already;       /* found on central already (an earlier run stopped after uploading) */
        int64_t reconciled;    /* extra central "sync" events: central knew device facts the spool did not */
        int64_t first_central, last_central; /* central ids written (0: none) */
};
/* Upload every pending spool event in order, one central transaction each:
 * the event (re-chained, intent ids remapped, its device snapshot applied)
 * and its forwarded(spool, seq) row commit together, then the spool records
 * the upload. Idempotent: an event already forwarded is only marked.
 * The spool's chain is verified first (-EBADMSG naming the event). A spooled
 * certificate is refused (-EINVAL). Device facts that conflict with the
 * central ledger's: -EEXIST naming the event; what was uploaded stays. */
int ledger_sync(struct ledger *central, struct ledger *spool, struct ledger_sync_report *ret);

/* ---- migration (ledger_migrate.c) --------------------------------------- */

struct ledger_migrate_report {
        int64_t events;       /* events in the source */
        int64_t imported;     /* imported by this run (0: target had them all) */
        int64_t devices, certificates, checkpoints; /* rows imported */
};
/* Copy a ledger verbatim (same ids, bytes and hashes; devices,
 * certificates, checkpoints) into target in one transaction. The source
 * chain is verified first (-EBADMSG naming the event). A target holding
 * events must hold exactly a prefix of the source's chain (same ids and
 * hashes): then only the rest is imported; otherwise -EEXIST. The target is
 * verified afterwards (-EBADMSG). */
int ledger_migrate(struct ledger *src, struct ledger *dst, struct ledger_migrate_report *ret);

/* ---- encoding ----------------------------------------------------------- */

/* The canonical bytes of an event (malloc'd). See ledger.c for the format. */
int ledger_event_canon(const struct ledger_row *row, unsigned char **ret, size_t *ret_len);
/* SHA-256(prev_hash ‖ canonical bytes). */
int ledger_event_hash(const struct ledger_row *row, const unsigned char prev[LEDGER_HASH_LEN],
                      unsigned char out[LEDGER_HASH_LEN]);

/* Export formats. The CSV header and one CSV record (RFC 4180: a field is
 * quoted when it holds a comma, quote, CR or LF or starts/ends with a
 * space; quotes doubled) without the line end; NULL as an empty field. */
const char *ledger_csv_header(void);
char *ledger_row_csv(const struct ledger_row *row); /* malloc'd, NULL on ENOMEM */
/* One JSON object for a row: details embedded as an object (as a string if
 * the stored text is not JSON), hashes in hex. */
json_object *ledger_row_json(const struct ledger_row *row);
