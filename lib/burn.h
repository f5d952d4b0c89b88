/* burn.h — the line: for each selected recovery-mode Jetson, read ECID and
 * fuses, diff against the plan, decide, and (only when asked, confirmed and
 * recorded) burn with the BSP's own tools, then read back and judge from
 * what the device says, never from what the tools say. Devices run in
 * parallel worker threads; one device failing never stops the others.
 *
 * Phases: check the plan, keyset and package before any device is touched;
 * read every device (parallel); ask the caller to confirm each device that
 * needs a burn (commit only, sequential, the library never prompts); burn
 * and read back (parallel). Ledger: a record per device read, an intent
 * before each burn and a result after; an intent left open by a power cut
 * is closed by the next run's read-back. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "fuse_plan.h"
#include "internal.h"
#include "keyset.h"
#include "ledger.h"
#include "rcm.h"

enum burn_mode {
        BURN_SHOW = 0, /* read and diff only */
        BURN_DRY_RUN,  /* device-side test: TEST magic (T234) / burnfuses dummy (T194) */
        BURN_COMMIT,   /* the real, irreversible burn */
};

/* Asked once per device about to be burned for real. Return true to burn. */
typedef bool (*burn_confirm_fn)(const char *instance, const char *ecid, const char *br_cid, const char *summary,
                                void *data);
struct burn_device;
/* Progress: device index and its result so far (instance, ECID once read),
 * the step it enters ("reading", "read", "burning", "reading back", "done")
 * or NULL, and an output line of the running tool or NULL. Called from
 * worker threads, one call at a time. */
typedef void (*burn_event_fn)(size_t idx, const struct burn_device *d, const char *step, const char *line,
                              void *data);

struct burn_opts {
        enum burn_mode mode;
        const char *package;   /* fuseblob.tbz2 or its extracted directory */
        const char *plan_path; /* the fuse XML the package was made from */
        const struct keyset *ks;
        bool allow_lab_keys;
        const char *const *devices; /* instances (NULL-terminated), or NULL with all */
        bool all;
        const struct rcm_ports *ports; /* station allow-list, NULL/empty = any */
        unsigned jobs;              /* parallel devices (>= 1) */
        int timeout_ms;             /* per tool step */
        const char *log_dir;        /* created if missing */
        struct ledger *ledger;      /* required for dry-run and commit */
        const char *station, *operator;
        const char *const *envp;    /* scrubbed environment for the BSP's tools */
        burn_confirm_fn confirm;
        void *confirm_data;
        burn_event_fn on_event;
        void *event_data;
        volatile sig_atomic_t *stop; /* set: start no new device (running burns finish) */
        int readback_tries;          /* reads after a burn while the device re-enumerates (default 10) */
        int readback_delay_ms;       /* between those (default 2000) */
        uint32_t accept_unverified;  /* FUSE_ACCEPT_*: unverified facts the plan may use (checked before any device) */
};

struct burn_device {
        char instance[32];
        char module[64];
        enum fl_chip chip;
        char ecid[33];   /* device key: BR_CID with the fuse-level nibbles cleared */
        char br_cid[33]; /* as first read */
        /* "planned" (show), "pass", "already-provisioned", "conflict", "fail",
         * "not-confirmed", "skipped", "absent", "swapped", "refused" */
        const char *verdict;
        int r;           /* 0 or the negative code behind the verdict */
        char message[600];
        enum fl_hint hint;   /* of message (lib/fuseline.h); hint_value: its number, if any */
        uint32_t hint_value;
        char log[512];   /* the log of the step that decided */
        size_t n_equal, n_burn, n_conflict;
        struct fuse_diff *diff; /* before the burn (NULL when not read) */
        int64_t intent_id;
        long elapsed_ms;
        bool resolved_dangling; /* closed an intent an earlier run left open */
        bool burned;            /* a burn step ran */
};

struct burn_report {
        struct burn_device *v;
        size_t n;
        char plan_sha256[65];
        enum fl_chip chip;
        bool interrupted;
};

/* -EINVAL/-ENOENT: bad plan, package or options; -EBADMSG: the package does
 * not burn exactly the plan (or the plan fails its check); -EPERM: an
 * interlock (lab keyset without allow_lab_keys, package magic against the
 * mode); -ENODEV: no device selected. All before any device is touched.
 * Otherwise 0 and the per-device results (their r tells each verdict). */
int burn_run(fl_ctx *ctx, const struct burn_opts *o, struct burn_report *ret);
void burn_report_clear(struct burn_report *rep);

/* verify fuses: read one device back and compare with the plan (-EBADMSG
 * on a mismatch, with the per-fuse diff in ret). */
int burn_verify_device(fl_ctx *ctx, const struct burn_opts *o, const char *instance, struct burn_device *ret);

/* fuse-xml --package: run the BSP's odmfuse.sh --noburn for plan_path with
 * the template's offline board values, then check the package it wrote
 * burns exactly the plan (T234: its fuse blob; T194: its XML) in the
 * package's mode (test: TEST magic / burnfuses dummy) before it appears at
 * out (never replaced). */
struct package_make_opts {
        const char *bsp_dir;      /* Linux_for_Tegra */
        const struct fuse_template *tmpl;
        const char *plan_path;
        bool test;
        uint32_t accept_unverified;  /* FUSE_ACCEPT_*, as for fuse_xml_check_ack */
        const char *out;
        const char *log_path;
        const char *const *envp;
        int timeout_ms;
};
int burn_package_make(fl_ctx *ctx, const struct package_make_opts *o, char ret_sha256[65]);
