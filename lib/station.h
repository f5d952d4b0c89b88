/* station.h — the operator's station: one settings file (strict
 * `key = value`, every key documented in factory-scripts/station.conf.example)
 * and the loop a station runs all shift: wait for a board on an allowed
 * port → ECID → burn (lib/burn, with the interlock the settings ask for) →
 * verify fuses → enrol (lib/identity) → verify the certificate → optional
 * label hook (lib/proc, argv only) → a verdict in operator words → next
 * board. Every board ends in a "station" ledger event; a line condition the
 * operator cannot fix at the socket (token gone or PIN locked, disk full,
 * ledger held by another writer) stops the line and resumes it when it is
 * cured, never dropping the board or its record. With ftpm = yes each
 * board also gets its fTPM identity (lib/ftpm): a KDK0 and per-device fuse
 * package burned before the product's, then both EK certificates and the
 * per-device EKB beside its certificate. The library prints nothing: the
 * caller draws the screen from the events. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "burn.h"
#include "internal.h"
#include "p11.h"
#include "rcm.h"

#define STATION_CONF_MAX (64 * 1024) /* a settings file is a page of text */
#define STATION_LINE_MAX 4096

enum station_mode { STATION_DRY_RUN = 0, STATION_COMMIT };
enum station_confirm { STATION_CONFIRM_TYPED = 0, STATION_CONFIRM_YES };
enum station_enroll { STATION_ENROLL_CSR = 0, STATION_ENROLL_TOKEN_KEY };

struct station_conf {
        /* Paths: as written, or (station_conf_load) resolved against the
         * settings file's directory when relative. */
        char *template_path, *keyset, *package, *plan, *ledger, *log_dir, *cert_dir, *csr_dir, *bsp, *hook;
        char *spool;              /* store and forward: the local spool (NULL: none) */
        char *station_id, *operator_id, *product, *serial_prefix;
        struct rcm_ports ports;
        enum station_mode mode;
        enum station_confirm confirm;
        enum station_enroll enroll;
        enum key_type enroll_key; /* token-key: KT_P256 (default) or KT_P384 */
        bool allow_lab_keys;
        unsigned log_keep_days;   /* board logs older than this are deleted (0: never by age) */
        unsigned log_keep_mb;     /* oldest board logs deleted while the logs exceed this (0: no limit) */
        unsigned min_free_mb;     /* the line stops while the ledger's or the logs' disk has less free */
        unsigned timeout_s;       /* per BSP tool step */
        unsigned hook_timeout_s;
        /* fTPM (ftpm = yes): per board, the SN, a KDK0 and a per-device fuse
         * plan and package (Kdk0, OdmId, OdmInfo) burned before the
         * product's, then both EK certificates and the per-device EKB. */
        bool ftpm;
        unsigned ftpm_oem_id;              /* ftpm-oem-id: OdmInfo, the first two bytes of Device_SN */
        uint32_t accept_unverified;        /* accept-unverified: FUSE_ACCEPT_* */
        char *ftpm_ekb_format, *ftpm_ekb_fv, *ftpm_ekb_root;
};

/* Parse settings text (name: for messages, e.g. the path). Every error is
 * -EINVAL with one line "NAME:LINE: key 'KEY': why" (or "NAME: missing key
 * 'KEY'"); nothing else is accepted: unknown or repeated keys, a line
 * without '=', empty values, control bytes, values out of range. *ret is
 * written only on success; free with station_conf_clear. */
int station_conf_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, struct station_conf *ret);
/* Read and parse a file, then resolve relative paths against its directory. */
int station_conf_load(fl_ctx *ctx, const char *path, struct station_conf *ret);
void station_conf_clear(struct station_conf *c);

/* ---- the loop ------------------------------------------------------------ */

enum station_ev {
        STATION_EV_STARTED = 0, /* reason: settings summary */
        STATION_EV_DANGLING,    /* count: burns an earlier run left open (resolved by read-back) */
        STATION_EV_WAITING,     /* waiting for the next board */
        STATION_EV_ARRIVED,     /* instance, module */
        STATION_EV_IGNORED,     /* instance, module: a board on a port not this station's */
        STATION_EV_STEP,        /* instance, step, ecid (once read) */
        STATION_EV_RESULT,      /* instance, ecid, verdict, reason, serial, cert, log */
        STATION_EV_LINE_STOPPED,/* reason: what stopped the line and how to cure it */
        STATION_EV_LINE_RESUMED,
        STATION_EV_FINISHED,    /* the loop ends (counts) */
};

struct station_event {
        enum station_ev kind;
        const char *instance, *module, *ecid, *step;
        const char *verdict; /* "pass", "already-provisioned", "fail"; "not-started" (stopped before touching it) */
        const char *reason;  /* operator words */
        const char *serial, *cert, *log;
        unsigned count;      /* DANGLING */
        unsigned done, passed, failed; /* this run */
        long elapsed_ms;
};

typedef void (*station_event_fn)(const struct station_event *ev, void *data);

struct station_opts {
        const struct station_conf *conf;
        const struct token_opts *tok; /* token options (PIN source); the keyset names the token */
        const char *const *envp;      /* scrubbed environment for the BSP's tools and the hook */
        burn_confirm_fn confirm;      /* confirm = typed: asked before each real burn */
        void *confirm_data;
        station_event_fn on_event;
        void *event_data;
        /* Set (by a signal): finish the board in progress — a burn is never
         * abandoned — then end. */
        volatile sig_atomic_t *stop;
        unsigned boards;              /* end after this many boards (0: until stopped) */
        int poll_ms;                  /* board and line-condition polling (default 500) */
        int readback_delay_ms;        /* burn's wait between read-back tries (0: its default) */
};

struct station_stats {
        unsigned done, passed, failed;
        bool stopped; /* ended by *stop */
};

/* Run the loop. 0 when it ended (boards reached or stopped: see ret);
 * <0 when it cannot run at all (bad keyset, template, plan or package, an
 * unusable ledger, a wrong PIN — never retried, it would lock the token). */
int station_run(fl_ctx *ctx, const struct station_opts *o, struct station_stats *ret);

/* The log retention rule, applied at start and after every board: in dir,
 * the board log directories ("board-*") older than keep_days are deleted,
 * then the oldest while all of them together exceed keep_mb. Returns how
 * many were deleted, or <0. */
int station_logs_prune(fl_ctx *ctx, const char *dir, unsigned keep_days, unsigned keep_mb, time_t now);
