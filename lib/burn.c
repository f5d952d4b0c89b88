/* burn.c — the line's orchestration (see burn.h): checks before any device
 * is touched, parallel reads, confirmation, parallel burns with read-back,
 * ledger intent/result around every irreversible step. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "bsp.h"
#include "burn.h"
#include "chip.h"
#include "fuse_blob.h"
#include "fuse_xml.h"
#include "package.h"
#include "rcm.h"

struct worker;

struct line {
        const struct burn_opts *o;
        struct burn_report *rep;
        struct fuse_plan *plan;     /* as checked */
        struct fuse_package *pkg;
        char *pkg_root;             /* extracted package (ours to remove), or NULL */
        char *work_root;            /* per-device working copies */
        const char **read_names;    /* plan fuses + BootSecurityInfo + SecurityMode */
        size_t n_read;
        char package_sha256[65];
        pthread_mutex_t lock;       /* ledger, report messages, event callback */
        struct worker *w;
        size_t n_w;                 /* workers (the report may have moved to the caller) */
        size_t next;                /* next device index for the pool */
        int phase;                  /* 1 read, 2 burn */
};

struct worker {
        struct line *L;
        size_t idx;
        fl_ctx *ctx;
        struct bsp_dev dev;
        char workdir[512];
        char copydir[512];          /* <work_root>/<instance>, holding bootloader/ */
        struct fuse_package *pkg;   /* this device's copy, checked against the plan */
        struct fuse_readback *rb;   /* the read before the burn */
        bool needs_burn;
        bool confirmed;
};

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void event(struct line *L, size_t i, const char *step, const char *line)
{
        if (!L->o->on_event)
                return;
        pthread_mutex_lock(&L->lock);
        L->o->on_event(i, &L->rep->v[i], step, line, L->o->event_data);
        pthread_mutex_unlock(&L->lock);
}

static void tool_line(const char *line, void *data)
{
        struct worker *w = data;
        event(w->L, w->idx, NULL, line);
}

static void set_result(struct burn_device *d, const char *verdict, int r, fl_ctx *ctx, const char *fmt, ...)
        FL_PRINTF(5, 6);

static void set_result(struct burn_device *d, const char *verdict, int r, fl_ctx *ctx, const char *fmt, ...)
{
        d->verdict = verdict;
        d->r = r;
        d->hint = ctx && !fmt ? fl_ctx_last_hint(ctx) : FL_HINT_NONE;
        d->hint_value = 0;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(d->message, sizeof(d->message), fmt, ap);
                va_end(ap);
        } else if (ctx && fl_ctx_last_error(ctx)) {
                snprintf(d->message, sizeof(d->message), "%s", fl_ctx_last_error(ctx));
        }
}

/* ---- ledger ---------------------------------------------------------------- */

static int ledger_event_add(struct line *L, struct worker *w, enum ledger_kind kind, int64_t intent_id,
                            const char *outcome, enum ledger_state state, json_object *details, int64_t *ret_id)
{
        struct burn_device *d = &L->rep->v[w->idx];
        struct ledger_device dev = { .chip = d->chip, .module = d->module, .state = state };
        struct ledger_event ev = { .station = L->o->station, .operator = L->o->operator, .command = "burn",
                                   .ecid = d->ecid, .kind = kind, .intent_id = intent_id, .outcome = outcome,
                                   .device = &dev };
        struct ledger_appended ap;
        int r;

        if (!L->o->ledger) {
                json_object_put(details);
                return 0;
        }
        json_object_object_add(details, "instance", json_object_new_string(d->instance));
        json_object_object_add(details, "br_cid", json_object_new_string(d->br_cid));
        json_object_object_add(details, "plan_sha256", json_object_new_string(L->rep->plan_sha256));
        json_object_object_add(details, "package_sha256", json_object_new_string(L->package_sha256));
        if (*d->log)
                json_object_object_add(details, "log", json_object_new_string(d->log));
        ev.details = json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN);
        pthread_mutex_lock(&L->lock);
        r = ledger_append(L->o->ledger, &ev, &ap);
        pthread_mutex_unlock(&L->lock);
        json_object_put(details);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = ap.id;
        return 0;
}

static json_object *diff_json(const struct fuse_diff *df)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "equal", json_object_new_int64((int64_t)df->n_equal));
        json_object_object_add(o, "to_burn", json_object_new_int64((int64_t)df->n_burn));
        json_object_object_add(o, "conflicts", json_object_new_int64((int64_t)df->n_conflict));
        return o;
}

/* ---- reading ----------------------------------------------------------------- */

/* One read (T194: UID first, then --skipuid), with the BR_CID checked
 * against expect (when set). */
static int read_device(struct worker *w, const char *expect_br_cid, struct bsp_step *step,
                       struct fuse_readback **ret_rb)
{
        struct line *L = w->L;
        struct burn_device *d = &L->rep->v[w->idx];
        struct bsp_step uid;
        char cid[33] = "";
        int r;

        w->dev.expect_br_cid = expect_br_cid;
        if (d->chip == FL_CHIP_T194) {
                r = bsp_read_uid(w->ctx, &w->dev, &uid);
                snprintf(d->log, sizeof(d->log), "%s", uid.log_path);
                if (r < 0)
                        return r;
                memcpy(cid, uid.br_cid, sizeof(cid));
                w->dev.skipuid = true;
        }
        r = bsp_readfuses(w->ctx, &w->dev, L->read_names, L->n_read, step, ret_rb);
        snprintf(d->log, sizeof(d->log), "%s", step->log_path);
        w->dev.skipuid = false;
        if (r < 0)
                return r;
        if (d->chip == FL_CHIP_T194) {
                memcpy(step->br_cid, cid, sizeof(cid));
                step->have_br_cid = true;
        }
        if (!step->have_br_cid) {
                /* T234 prints the BR_CID in every run's BootROM step; a run
                 * without it skipped that step (MB2 applet already up). */
                fuse_readback_free(*ret_rb);
                *ret_rb = NULL;
                return fl_err(w->ctx, -ENODEV, "%s: the read printed no BR_CID (the device did not run the BootROM "
                              "step: MB2 applet left running?); log %s", d->instance, step->log_path);
        }
        return 0;
}

/* The BR_CID's fuse-level bits against what readfuses says: a device (or a
 * tool) that contradicts itself is not burned. */
static int precheck(struct worker *w, const char *br_cid, const struct fuse_readback *rb)
{
        struct burn_device *d = &w->L->rep->v[w->idx];
        const struct fuse_readback_entry *sm = fuse_readback_find(rb, "SecurityMode");
        const struct fuse_readback_entry *bsi = fuse_readback_find(rb, "BootSecurityInfo");
        struct bsp_fuse_level fl;
        uint32_t b = 0;
        bool prod = false;
        int r = bsp_br_cid_decode(w->ctx, br_cid, &fl);

        if (r < 0)
                return r;
        if (fl.chip != d->chip)
                return fl_err(w->ctx, -EBADMSG, "%s: BR_CID 0x%s names chip %s but the port shows a %s module",
                              d->instance, br_cid, chip_name(fl.chip), chip_name(d->chip));
        for (size_t i = 0; sm && i < sm->len; i++)
                prod |= sm->value[i] != 0;
        for (size_t i = 0; bsi && i < bsi->len; i++)
                b = b << 8 | bsi->value[i];
        if (prod != fl.production || (b & chip_bsi_auth_mask(d->chip)) != fl.auth ||
            !!(b & chip_bsi_sbk_bit(d->chip)) != fl.sbk)
                return fl_err(w->ctx, -EBADMSG,
                              "%s: BR_CID 0x%s (production %s, auth %u, SBK %s) disagrees with readfuses "
                              "(SecurityMode %s, BootSecurityInfo 0x%x): not burning a device that contradicts itself",
                              d->instance, br_cid, fl.production ? "yes" : "no", fl.auth, fl.sbk ? "yes" : "no",
                              prod ? "1" : "0", b);
        return 0;
}

/* Read-back after a burn: the device re-enters recovery by itself and may
 * take a moment to re-enumerate. */
static int readback(struct worker *w, struct bsp_step *step, struct fuse_readback **ret)
{
        const struct burn_opts *o = w->L->o;
        int tries = o->readback_tries > 0 ? o->readback_tries : 10;
        int delay = o->readback_delay_ms > 0 ? o->readback_delay_ms : 2000;
        int r = -ENODEV;

        for (int i = 0; i < tries; i++) {
                if (i)
                        usleep((useconds_t)delay * 1000);
                fl_err_clear(w->ctx);
                r = read_device(w, NULL, step, ret);
                if (r != -ENODEV)
                        return r;
        }
        return r;
}

static bool rb_same(const struct fuse_readback *a, const struct fuse_readback *b, const char **names, size_t n,
                    const char **ret_name)
{
        for (size_t i = 0; i < n; i++) {
                const struct fuse_readback_entry *x = fuse_readback_find(a, names[i]);
                const struct fuse_readback_entry *y = fuse_readback_find(b, names[i]);
                if (!x || !y || x->len != y->len || memcmp(x->value, y->value, x->len)) {
                        *ret_name = names[i];
                        return false;
                }
        }
        return true;
}

/* The verdict from a read-back: what is on the device against the plan. */
static const char *burned_state(struct worker *w, const struct fuse_readback *rb, struct fuse_diff **ret)
{
        struct fuse_diff *df = NULL;
        if (fuse_plan_diff(w->ctx, w->L->plan, rb, &df) < 0)
                return "unreadable";
        *ret = df;
        if (df->n_burn == 0 && df->n_conflict == 0)
                return "plan-burned";
        if (df->n_equal == 0)
                return "not-burned";
        return "partly-burned";
}

static enum package_mode package_mode_of(enum burn_mode m)
{
        return m == BURN_DRY_RUN ? PACKAGE_MODE_DRY_RUN : m == BURN_COMMIT ? PACKAGE_MODE_COMMIT : PACKAGE_MODE_SHOW;
}

/* This device's private copy of bootloader/, checked again: what the tools
 * will run is the copy, so the copy is what must burn exactly the plan
 * (a package directory could change between the first check and now). */
static int copy_and_check(struct worker *w)
{
        struct line *L = w->L;
        struct fuse_problems probs = { 0 };
        int r;

        if (snprintf(w->copydir, sizeof(w->copydir), "%s/%s", L->work_root, L->rep->v[w->idx].instance) >=
                    (int)sizeof(w->copydir) ||
            snprintf(w->workdir, sizeof(w->workdir), "%s/bootloader", w->copydir) >= (int)sizeof(w->workdir))
                return fl_err(w->ctx, -ENAMETOOLONG, "%s: path too long", L->work_root);
        if (mkdir(w->copydir, 0700) < 0)
                return fl_err(w->ctx, -errno, "%s: %s", w->copydir, strerror(errno));
        r = bsp_workdir_prepare(w->ctx, package_bootloader_dir(L->pkg), w->workdir, L->o->envp);
        if (r < 0)
                return r;
        r = package_open(w->ctx, w->copydir, &w->pkg);
        if (r < 0)
                return r;
        r = package_check(w->ctx, w->pkg, L->plan, package_mode_of(L->o->mode), &probs);
        if ((r == -EBADMSG || r == -EPERM) && probs.n)
                r = fl_err_hint(w->ctx, probs.v[0].hint, r, "%s: the working copy of the package does not burn exactly the plan (first: "
                           "%s%s%s)", L->rep->v[w->idx].instance, probs.v[0].fuse, *probs.v[0].fuse ? ": " : "",
                           probs.v[0].msg);
        fuse_problems_free(&probs);
        if (r < 0)
                return r;
        w->dev.tf_args = package_argv(w->pkg, NULL);
        return 0;
}

/* Factory-reserved BootSecurityInfo bits (0x1e0 on newer Orin NX/Nano):
 * the package burns the plan's value exactly, so the plan must carry
 * exactly the reserved bits this device has. Fewer: FSKP stops part-way
 * ("from 1 to 0") after burning the fuses before it. More: setting
 * reserved bits a device does not have is nowhere documented [U]. Either
 * way: a conflict, refused before anything is burned. */
static void reserved_rule(struct fuse_diff *df)
{
        uint32_t mask = chip_bsi_reserved(df->chip);

        for (size_t i = 0; mask && i < df->n; i++) {
                struct fuse_diff_item *it = &df->v[i];
                uint32_t cur = 0, pl = 0;
                if (strcmp(it->def->name, "BootSecurityInfo"))
                        continue;
                for (size_t k = 0; k < it->def->size; k++) {
                        cur = cur << 8 | it->current[k];
                        pl = pl << 8 | it->planned[k];
                }
                if ((cur & mask) == (pl & mask))
                        return;
                if (it->state == FD_BURN)
                        df->n_burn--;
                else if (it->state == FD_EQUAL)
                        df->n_equal--;
                else
                        return;
                it->state = FD_CONFLICT;
                df->n_conflict++;
                snprintf(it->note, sizeof(it->note),
                         "the device came with reserved bits 0x%x, the plan (and so the package) carries 0x%x: "
                         "both must carry 0x%x", cur & mask, pl & mask, cur & mask);
                it->hint = FL_HINT_BSI_RESERVED;
                it->hint_value = cur & mask;
                return;
        }
}

/* Was the open intent id written for this run's plan? A device burned in
 * two steps (the station's per-device fTPM plan, then the product's) can
 * carry an open intent of the other plan: only a read with that plan can
 * judge it, so it stays open here. An intent without a plan hash (older
 * records) is judged as before. */
static int intent_plan_is(struct line *L, const char *ecid, int64_t id, bool *ret)
{
        struct ledger_filter f = { .ecid = ecid, .intents_open = true };
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        int r;

        *ret = true;
        r = ledger_iter_new(L->o->ledger, &f, &it);
        while (r >= 0 && (r = ledger_iter_next(it, &row)) == 1) {
                json_object *det, *v;
                if (row->id != id)
                        continue;
                det = row->details ? json_tokener_parse(row->details) : NULL;
                if (det && json_object_object_get_ex(det, "plan_sha256", &v) && json_object_get_string(v))
                        *ret = !strcmp(json_object_get_string(v), L->rep->plan_sha256);
                json_object_put(det);
                break;
        }
        ledger_iter_free(it);
        return r < 0 ? r : 0;
}

static void phase_read(struct worker *w)
{
        struct line *L = w->L;
        struct burn_device *d = &L->rep->v[w->idx];
        struct bsp_step step;
        struct fuse_diff *df = NULL;
        struct ledger_dangling *dang = NULL;
        size_t n_dang = 0;
        long t0 = now_ms();
        int r;

        event(L, w->idx, "reading", NULL);
        r = copy_and_check(w);
        if (r < 0) {
                set_result(d, "fail", r, w->ctx, NULL);
                goto out;
        }
        r = read_device(w, NULL, &step, &w->rb);
        if (r < 0) {
                set_result(d, r == -ENODEV ? "absent" : "fail", r, w->ctx, NULL);
                goto out;
        }
        memcpy(d->br_cid, step.br_cid, sizeof(d->br_cid));
        r = bsp_ecid_from_br_cid(w->ctx, d->chip, d->br_cid, d->ecid);
        if (r >= 0)
                r = precheck(w, d->br_cid, w->rb);
        if (r < 0) {
                set_result(d, "fail", r == -EINVAL ? -EBADMSG : r, w->ctx, NULL);
                goto out;
        }

        /* An intent an earlier run left open (power cut mid-burn): this read
         * is its read-back; close it with what the device carries. */
        if (L->o->ledger) {
                pthread_mutex_lock(&L->lock);
                r = ledger_dangling_list(L->o->ledger, d->ecid, &dang, &n_dang);
                pthread_mutex_unlock(&L->lock);
                if (r < 0) {
                        set_result(d, "fail", r, w->ctx, NULL);
                        goto out;
                }
                for (size_t i = 0; i < n_dang; i++) {
                        struct fuse_diff *dd = NULL;
                        const char *st;
                        json_object *det = json_object_new_object();
                        bool mine = true;
                        if (strcmp(dang[i].command, "burn")) {
                                json_object_put(det);
                                continue;
                        }
                        pthread_mutex_lock(&L->lock);
                        r = intent_plan_is(L, d->ecid, dang[i].id, &mine);
                        pthread_mutex_unlock(&L->lock);
                        if (r < 0 || !mine) {
                                json_object_put(det);
                                if (r < 0) {
                                        set_result(d, "fail", r, w->ctx, NULL);
                                        goto out;
                                }
                                continue;
                        }
                        st = burned_state(w, w->rb, &dd);
                        json_object_object_add(det, "resolved_by", json_object_new_string("read-back"));
                        json_object_object_add(det, "found", json_object_new_string(st));
                        r = ledger_event_add(L, w, LEDGER_RESULT, dang[i].id, st, LEDGER_STATE_KEEP, det, NULL);
                        fuse_diff_free(dd);
                        if (r < 0) {
                                set_result(d, "fail", r, w->ctx, NULL);
                                goto out;
                        }
                        d->resolved_dangling = true;
                }
        }

        r = fuse_plan_diff(w->ctx, L->plan, w->rb, &df);
        if (r < 0) {
                set_result(d, "fail", r, w->ctx, NULL);
                goto out;
        }
        reserved_rule(df);
        d->n_equal = df->n_equal;
        d->n_burn = df->n_burn;
        d->n_conflict = df->n_conflict;
        d->diff = df;
        {
                json_object *det = json_object_new_object();
                const char *outcome;
                enum ledger_state st = LEDGER_STATE_KEEP;

                json_object_object_add(det, "diff", diff_json(df));
                if (df->n_conflict) {
                        const struct fuse_diff_item *first = NULL;
                        for (size_t k = 0; k < df->n && !first; k++)
                                if (df->v[k].state == FD_CONFLICT)
                                        first = &df->v[k];
                        outcome = "conflict";
                        set_result(d, "conflict", -EEXIST, NULL,
                                   "%s: refused, nothing burned: %zu planned fuse%s conflict%s with the device; first: "
                                   "%s: %s", d->instance, df->n_conflict, df->n_conflict == 1 ? "" : "s",
                                   df->n_conflict == 1 ? "s" : "", first->def->name, first->note);
                        d->hint = first->hint;
                        d->hint_value = first->hint_value;
                } else if (df->n_burn == 0 && L->o->mode != BURN_DRY_RUN) {
                        outcome = "already-provisioned";
                        st = L->plan->magic == FUSE_MAGIC_TEST ? LEDGER_STATE_KEEP : LEDGER_STATE_FUSED;
                        set_result(d, "already-provisioned", 0, NULL,
                                   "%s: already carries exactly the plan: nothing to burn", d->instance);
                } else {
                        outcome = "read";
                        w->needs_burn = L->o->mode != BURN_SHOW;
                        set_result(d, "planned", 0, NULL, "%s: %zu fuse%s to burn, %zu already as planned",
                                   d->instance, df->n_burn, df->n_burn == 1 ? "" : "s", df->n_equal);
                }
                r = ledger_event_add(L, w, LEDGER_RECORD, 0, outcome, st, det, NULL);
                if (r < 0)
                        set_result(d, "fail", r, w->ctx, NULL);
        }
out:
        free(dang);
        d->elapsed_ms += now_ms() - t0;
        event(L, w->idx, "read", NULL);
}

/* Before the intent: on T194 the UID is read on its own (odmfuse's way),
 * then tegraflash runs with --skipuid; a board that is not the one read
 * earlier is not burned, and no intent is written for it. */
static int t194_same_board(struct worker *w, bool *ret_swapped)
{
        struct burn_device *d = &w->L->rep->v[w->idx];
        struct bsp_step uid;
        int r;

        w->dev.expect_br_cid = NULL;
        r = bsp_read_uid(w->ctx, &w->dev, &uid);
        snprintf(d->log, sizeof(d->log), "%s", uid.log_path);
        if (r < 0)
                return r;
        if (strcasecmp(uid.br_cid, d->br_cid)) {
                *ret_swapped = true;
                return fl_err(w->ctx, -ENODEV, "%s: another board answered on this port (BR_CID 0x%s, expected 0x%s): "
                              "nothing burned", d->instance, uid.br_cid, d->br_cid);
        }
        w->dev.skipuid = true;
        return 0;
}

/* The verdict from the read-back after a burn step, whatever the tool said. */
static void judge(struct worker *w, const struct bsp_step *step, const struct bsp_step *rstep,
                  const struct fuse_readback *after)
{
        struct line *L = w->L;
        struct burn_device *d = &L->rep->v[w->idx];
        json_object *det = json_object_new_object();
        struct fuse_diff *df = NULL;
        const char *st, *bad = NULL;
        enum ledger_state ls;
        bool pass;
        int r;

        json_object_object_add(det, "mode", json_object_new_string(L->o->mode == BURN_COMMIT ? "commit" : "dry-run"));
        json_object_object_add(det, "tool", json_object_new_string(step->pr.timed_out ? "hung"
                                                                   : step->pr.exited ? "exited" : "killed"));
        json_object_object_add(det, "tool_status", json_object_new_int(step->pr.status));
        if (L->o->mode == BURN_DRY_RUN) {
                /* A dry run must leave every fuse as it was. */
                pass = rb_same(w->rb, after, L->read_names, L->n_read, &bad);
                st = pass ? "dry-run-ok" : "dry-run-changed-fuses";
                ls = pass ? LEDGER_STATE_FUSED_TEST : LEDGER_STATE_FAILED;
                if (pass)
                        set_result(d, "pass", 0, NULL, "%s: dry run processed, no fuse changed (read back)", d->instance);
                else
                        set_result(d, "fail", -EBADMSG, NULL, "%s: DRY RUN CHANGED FUSES: %s differs after the dry run "
                                   "(log %s)", d->instance, bad, rstep->log_path);
        } else {
                st = burned_state(w, after, &df);
                pass = !strcmp(st, "plan-burned");
                ls = pass ? LEDGER_STATE_FUSED : LEDGER_STATE_FAILED;
                if (pass) {
                        set_result(d, "pass", 0, NULL, "%s: read-back matches the plan", d->instance);
                } else {
                        size_t k = 0;
                        for (; df && k < df->n && df->v[k].state == FD_EQUAL; k++)
                                ;
                        set_result(d, "fail", -EBADMSG, NULL,
                                   "%s: READ-BACK MISMATCH: the device does not carry the plan (%s: %s%s; tool %s, "
                                   "said %s; log %s)", d->instance, st, df && k < df->n ? df->v[k].def->name : "?",
                                   df && k < df->n ? " differs" : "", step->pr.exited ? "exited" : "killed",
                                   step->saw_finish ? "Finish" : "no Finish", step->log_path);
                }
        }
        json_object_object_add(det, "found", json_object_new_string(st));
        r = ledger_event_add(L, w, LEDGER_RESULT, d->intent_id, pass ? "ok" : st, ls, det, NULL);
        if (r < 0 && d->r == 0)
                set_result(d, "fail", r, w->ctx, "%s: burned and read back, but the ledger refused the result: %s",
                           d->instance, fl_ctx_last_error(w->ctx));
        fuse_diff_free(df);
}

static void phase_burn(struct worker *w)
{
        struct line *L = w->L;
        struct burn_device *d = &L->rep->v[w->idx];
        struct bsp_step step = { 0 }, rstep = { 0 };
        struct fuse_readback *after = NULL;
        char burnmsg[300], ecid2[33];
        long t0 = now_ms();
        int r, rr;

        event(L, w->idx, "burning", NULL);
        if (d->chip == FL_CHIP_T194) {
                bool swapped = false;
                r = t194_same_board(w, &swapped);
                if (r < 0) {
                        set_result(d, swapped ? "swapped" : "absent", r, w->ctx, NULL);
                        goto out;
                }
        }
        {
                json_object *det = json_object_new_object();
                json_object_object_add(det, "mode", json_object_new_string(L->o->mode == BURN_COMMIT ? "commit"
                                                                                                     : "dry-run"));
                json_object_object_add(det, "diff", diff_json(d->diff));
                if (L->o->accept_unverified) {
                        /* What the operator acknowledged for this plan ([U] facts), on record with the burn. */
                        char names[64];
                        json_object *acc = json_object_new_array();
                        fuse_accept_names(L->o->accept_unverified, names, sizeof(names));
                        json_object_array_add(acc, json_object_new_string(names));
                        json_object_object_add(det, "accepted_unverified", acc);
                }
                r = ledger_event_add(L, w, LEDGER_INTENT, 0, "pending", LEDGER_STATE_KEEP, det, &d->intent_id);
                if (r < 0) {
                        /* No intent on record: the irreversible step never starts. */
                        set_result(d, "fail", r, w->ctx, "%s: the ledger refused the intent, nothing burned: %s",
                                   d->instance, fl_ctx_last_error(w->ctx));
                        goto out;
                }
        }
        w->dev.expect_br_cid = d->br_cid;
        d->burned = true;
        r = bsp_burnfuses(w->ctx, &w->dev, package_cmd(w->pkg), &step);
        w->dev.skipuid = false;
        w->dev.expect_br_cid = NULL;
        snprintf(d->log, sizeof(d->log), "%s", step.log_path);
        snprintf(burnmsg, sizeof(burnmsg), "%s", r < 0 && fl_ctx_last_error(w->ctx) ? fl_ctx_last_error(w->ctx)
                                                                                     : "the burn step ran");

        /* The tool's word counts for nothing — not its exit status, not its
         * "Finish", not even its "No device": whatever happened, read the
         * device back. Only a read-back of this very device closes the
         * intent; without one the outcome is unknown and the intent stays
         * open for the next run that sees the device. */
        event(L, w->idx, "reading back", NULL);
        rr = readback(w, &rstep, &after);
        if (rr >= 0 && (bsp_ecid_from_br_cid(w->ctx, d->chip, rstep.br_cid, ecid2) < 0 || strcmp(ecid2, d->ecid))) {
                set_result(d, "swapped", -ENODEV, NULL, "%s; the read-back came from another board (BR_CID 0x%s, "
                           "expected 0x%s): OUTCOME UNKNOWN, intent %lld left open for the next run's read-back of "
                           "this device", burnmsg, rstep.br_cid, d->br_cid, (long long)d->intent_id);
                goto out;
        }
        if (rr < 0) {
                set_result(d, step.br_cid_mismatch ? "swapped" : r == -ETIMEDOUT || rr == -ETIMEDOUT ? "fail" : "absent",
                           r == -ETIMEDOUT ? r : rr, NULL,
                           "%s; the read-back failed too (%s): OUTCOME UNKNOWN, intent %lld left open for the next "
                           "run's read-back of this device", burnmsg, fl_ctx_last_error(w->ctx),
                           (long long)d->intent_id);
                goto out;
        }
        judge(w, &step, &rstep, after);
out:
        fuse_readback_free(after);
        d->elapsed_ms += now_ms() - t0;
        event(L, w->idx, "done", NULL);
}

static void *pool_main(void *arg)
{
        struct line *L = arg;
        for (;;) {
                size_t i;
                pthread_mutex_lock(&L->lock);
                i = L->next++;
                pthread_mutex_unlock(&L->lock);
                if (i >= L->rep->n)
                        return NULL;
                if (L->o->stop && *L->o->stop) {
                        struct burn_device *d = &L->rep->v[i];
                        if (L->phase == 1 || L->w[i].needs_burn) {
                                L->rep->interrupted = true;
                                if (L->phase == 1 || !d->burned)
                                        set_result(d, "skipped", -ECANCELED, NULL,
                                                   "%s: not started: interrupted", d->instance);
                                L->w[i].needs_burn = false;
                        }
                        continue;
                }
                if (L->phase == 1 && !L->rep->v[i].verdict)
                        phase_read(&L->w[i]);
                else if (L->phase == 2 && L->w[i].needs_burn && L->w[i].confirmed)
                        phase_burn(&L->w[i]);
        }
}

static void run_pool(struct line *L, int phase)
{
        unsigned jobs = L->o->jobs ? L->o->jobs : 1;
        pthread_t *t;
        unsigned n = 0;

        L->phase = phase;
        L->next = 0;
        if (jobs > L->rep->n)
                jobs = (unsigned)L->rep->n;
        t = calloc(jobs ? jobs : 1, sizeof(*t));
        if (!t) {
                pool_main(L);
                return;
        }
        for (; n < jobs; n++)
                if (pthread_create(&t[n], NULL, pool_main, L) != 0)
                        break;
        if (n == 0)
                pool_main(L);
        for (unsigned i = 0; i < n; i++)
                pthread_join(t[i], NULL);
        free(t);
}

/* ---- before any device -------------------------------------------------------- */

static int load_plan(fl_ctx *ctx, const char *path, enum fl_chip chip, const struct keyset *ks, uint32_t accept,
                     struct fuse_plan **ret)
{
        struct fl_secret data = { 0 };
        struct fuse_problems probs = { 0 };
        struct fuse_plan *plan = NULL;
        int r = fuse_xml_load(ctx, path, &data);

        if (r < 0)
                return r;
        r = fuse_xml_check_ack(ctx, data.data, data.len, chip, ks, accept, &plan, &probs);
        if (r < 0)
                goto out;
        if (probs.n) {
                r = fl_err_hint(ctx, probs.v[0].hint, plan ? -EBADMSG : -EINVAL, "%s: the plan fails its check (%zu problem%s; first: %s%s%s)",
                           path, probs.n, probs.n == 1 ? "" : "s", probs.v[0].fuse, *probs.v[0].fuse ? ": " : "",
                           probs.v[0].msg);
                goto out;
        }
        *ret = plan;
        plan = NULL;
        r = 0;
out:
        fuse_plan_free(plan);
        fuse_problems_free(&probs);
        secret_wipe(&data);
        return r;
}

static int sha256_file_hex(fl_ctx *ctx, const char *path, char out[65])
{
        unsigned char *data = NULL, md[32];
        size_t len = 0;
        unsigned mdlen = 0;
        int r = file_read(ctx, path, (size_t)1 << 31, &data, &len);

        if (r < 0)
                return r;
        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL)) {
                free(data);
                return fl_err(ctx, -EIO, "SHA-256 of %s failed", path);
        }
        free(data);
        hex_encode(md, 32, out);
        return 0;
}

static int open_package(struct line *L, fl_ctx *ctx)
{
        const struct burn_opts *o = L->o;
        struct stat st;
        const char *dir = o->package;
        int r;

        if (stat(o->package, &st) < 0)
                return fl_err(ctx, errno == ENOENT ? -ENOENT : -errno, "%s: %s", o->package, strerror(errno));
        if (!S_ISDIR(st.st_mode)) {
                r = sha256_file_hex(ctx, o->package, L->package_sha256);
                if (r < 0)
                        return r;
                if (asprintf(&L->pkg_root, "%s/package", L->work_root) < 0)
                        return -ENOMEM;
                if (mkdir(L->pkg_root, 0700) < 0)
                        return fl_err(ctx, -errno, "%s: %s", L->pkg_root, strerror(errno));
                r = bsp_package_extract(ctx, o->package, L->pkg_root, o->envp);
                if (r < 0)
                        return r;
                dir = L->pkg_root;
        } else {
                snprintf(L->package_sha256, sizeof(L->package_sha256), "directory");
        }
        return package_open(ctx, dir, &L->pkg);
}

static int line_check(struct line *L, fl_ctx *ctx)
{
        const struct burn_opts *o = L->o;
        struct fuse_problems probs = { 0 };
        enum package_mode pm = package_mode_of(o->mode);
        int r;

        if (o->mode == BURN_COMMIT && (!o->ks->profile || strcmp(o->ks->profile, "production")) && !o->allow_lab_keys)
                return fl_err_hint(ctx, FL_HINT_ALLOW_LAB_KEYS, -EPERM,
                                   "the keyset is a lab keyset (test keys): a real burn with it needs an explicit "
                                   "permission");
        if (o->mode != BURN_SHOW && !o->ledger)
                return fl_err(ctx, -EINVAL, "a burn needs a ledger (intent before, result after)");
        r = load_plan(ctx, o->plan_path, o->ks->chip, o->ks, o->accept_unverified, &L->plan);
        if (r < 0)
                return r;
        if (L->plan->chip != o->ks->chip)
                return fl_err(ctx, -EINVAL, "%s is a %s plan but the keyset is %s", o->plan_path,
                              chip_name(L->plan->chip), chip_name(o->ks->chip));
        r = fuse_plan_sha256(ctx, L->plan, L->rep->plan_sha256);
        if (r < 0)
                return r;
        r = open_package(L, ctx);
        if (r < 0)
                return r;
        if (package_chip(L->pkg) != L->plan->chip)
                return fl_err(ctx, -EBADMSG, "the package is for %s but the plan is %s", chip_name(package_chip(L->pkg)),
                              chip_name(L->plan->chip));
        r = package_check(ctx, L->pkg, L->plan, pm, &probs);
        if ((r == -EBADMSG || r == -EPERM) && probs.n)
                r = fl_err_hint(ctx, probs.v[0].hint, r, "%s (%zu problem%s; first: %s%s%s); no device touched",
                           r == -EPERM ? "the package does not suit this mode" : "the package does not burn exactly the plan",
                           probs.n, probs.n == 1 ? "" : "s", probs.v[0].fuse, *probs.v[0].fuse ? ": " : "",
                           probs.v[0].msg);
        fuse_problems_free(&probs);
        return r;
}

static int read_names(struct line *L)
{
        size_t n = L->plan->n;
        L->read_names = calloc(n + 2, sizeof(*L->read_names));
        if (!L->read_names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                L->read_names[L->n_read++] = L->plan->e[i].def->name;
        if (!fuse_plan_find(L->plan, "BootSecurityInfo"))
                L->read_names[L->n_read++] = "BootSecurityInfo";
        if (!fuse_plan_find(L->plan, "SecurityMode"))
                L->read_names[L->n_read++] = "SecurityMode";
        return 0;
}

static int select_devices(struct line *L, fl_ctx *ctx)
{
        const struct burn_opts *o = L->o;
        struct rcm_device *found = NULL;
        size_t n_found = 0, n = 0, cap = 0;
        int r;

        r = rcm_list(ctx, o->ports, &found, &n_found);
        if (r < 0)
                return r;
        for (size_t i = 0; o->devices && o->devices[i]; i++)
                cap++;
        cap += n_found;
        L->rep->v = calloc(cap ? cap : 1, sizeof(*L->rep->v));
        if (!L->rep->v) {
                rcm_devices_free(found);
                return -ENOMEM;
        }
        if (o->all) {
                for (size_t i = 0; i < n_found; i++) {
                        struct burn_device *d = &L->rep->v[n++];
                        snprintf(d->instance, sizeof(d->instance), "%s", found[i].instance);
                        snprintf(d->module, sizeof(d->module), "%s", found[i].module ? found[i].module : "");
                        d->chip = found[i].chip;
                }
        } else {
                for (size_t i = 0; o->devices && o->devices[i]; i++) {
                        struct burn_device *d = &L->rep->v[n++];
                        const struct rcm_device *f = NULL;
                        snprintf(d->instance, sizeof(d->instance), "%s", o->devices[i]);
                        for (size_t j = 0; j < n_found; j++)
                                if (!strcmp(found[j].instance, o->devices[i]))
                                        f = &found[j];
                        if (!rcm_port_allowed(o->ports, o->devices[i])) {
                                set_result(d, "refused", -EPERM, NULL, "%s is not on this station's port allow-list: "
                                           "never touched", d->instance);
                                continue;
                        }
                        if (!f) {
                                set_result(d, "absent", -ENODEV, NULL, "%s: no recovery-mode Jetson on that port",
                                           d->instance);
                                continue;
                        }
                        snprintf(d->module, sizeof(d->module), "%s", f->module ? f->module : "");
                        d->chip = f->chip;
                }
        }
        rcm_devices_free(found);
        L->rep->n = n;
        for (size_t i = 0; i < n; i++) {
                struct burn_device *d = &L->rep->v[i];
                if (!d->verdict && d->chip != L->plan->chip)
                        set_result(d, "refused", -EBADMSG, NULL, "%s: a %s module, but the plan is for %s", d->instance,
                                   chip_name(d->chip), chip_name(L->plan->chip));
        }
        if (n == 0)
                return fl_err(ctx, -ENODEV, "no recovery-mode Jetson found%s", o->ports && o->ports->n ? " on the allowed ports" : "");
        return 0;
}


void burn_report_clear(struct burn_report *rep)
{
        if (!rep)
                return;
        for (size_t i = 0; i < rep->n; i++)
                fuse_diff_free(rep->v[i].diff);
        free(rep->v);
        memset(rep, 0, sizeof(*rep));
}

static void line_free(struct line *L)
{
        /* Working copies and the extracted package hold the fuse blob (key
         * values): they go; the logs stay (the ledger names them). */
        for (size_t i = 0; L->w && i < L->n_w; i++)
                if (*L->w[i].copydir)
                        bsp_tree_remove(L->w[i].copydir);
        if (L->pkg_root)
                bsp_tree_remove(L->pkg_root);
        if (L->w)
                for (size_t i = 0; i < L->n_w; i++) {
                        fl_ctx_free(L->w[i].ctx);
                        package_free(L->w[i].pkg);
                        fuse_readback_free(L->w[i].rb);
                }
        free(L->w);
        fuse_plan_free(L->plan);
        package_free(L->pkg);
        free(L->read_names);
        free(L->pkg_root);
        free(L->work_root);
        pthread_mutex_destroy(&L->lock);
}

static int line_setup(struct line *L, fl_ctx *ctx, const struct burn_opts *o, struct burn_report *rep)
{
        char stamp[32];
        time_t t = time(NULL);
        struct tm tm;
        int r;

        memset(L, 0, sizeof(*L));
        L->o = o;
        L->rep = rep;
        pthread_mutex_init(&L->lock, NULL);
        if (!o->log_dir || !o->plan_path || !o->package || !o->ks)
                return fl_err(ctx, -EINVAL, "burn needs a package, a plan, a keyset and a log directory");
        if (mkdir(o->log_dir, 0700) < 0 && errno != EEXIST)
                return fl_err(ctx, -errno, "%s: cannot create the log directory: %s", o->log_dir, strerror(errno));
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        {
                /* Absolute: the tools run in the working copies, and the
                 * paths handed to them must not depend on that. */
                char *abs = realpath(o->log_dir, NULL);
                if (!abs)
                        return fl_err(ctx, -errno, "%s: %s", o->log_dir, strerror(errno));
                /* One process may run several burns in one second (the
                 * station's per-device fTPM burn, then the product's): the
                 * later ones get -2, -3, … */
                for (unsigned k = 1;; k++) {
                        if (k == 1)
                                r = asprintf(&L->work_root, "%s/run-%s-%ld", abs, stamp, (long)getpid());
                        else
                                r = asprintf(&L->work_root, "%s/run-%s-%ld-%u", abs, stamp, (long)getpid(), k);
                        if (r < 0) {
                                L->work_root = NULL;
                                free(abs);
                                return -ENOMEM;
                        }
                        if (mkdir(L->work_root, 0700) == 0)
                                break;
                        if (errno != EEXIST || k >= 100) {
                                r = fl_err(ctx, -errno, "%s: %s", L->work_root, strerror(errno));
                                free(abs);
                                return r;
                        }
                        free(L->work_root);
                        L->work_root = NULL;
                }
                free(abs);
        }
        r = line_check(L, ctx);
        if (r < 0)
                return r;
        r = read_names(L);
        if (r < 0)
                return r;
        r = select_devices(L, ctx);
        if (r < 0)
                return r;
        L->w = calloc(rep->n, sizeof(*L->w));
        if (!L->w)
                return -ENOMEM;
        L->n_w = rep->n;
        for (size_t i = 0; i < rep->n; i++) {
                struct worker *w = &L->w[i];
                w->L = L;
                w->idx = i;
                r = fl_ctx_new(&w->ctx);
                if (r < 0)
                        return r;
                fuse_blob_types_copy(w->ctx, ctx); /* ids learned from the BSP's parser */
                w->dev.instance = rep->v[i].instance;
                w->dev.chip = rep->v[i].chip;
                w->dev.workdir = w->workdir;
                w->dev.log_dir = L->work_root;
                w->dev.envp = o->envp;
                w->dev.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 300000;
                w->dev.on_line = tool_line;
                w->dev.data = w;
        }
        rep->chip = L->plan->chip;
        return 0;
}

static void confirm_all(struct line *L)
{
        for (size_t i = 0; i < L->rep->n; i++) {
                struct worker *w = &L->w[i];
                struct burn_device *d = &L->rep->v[i];
                char summary[160];
                if (!w->needs_burn)
                        continue;
                if (L->o->mode != BURN_COMMIT) {
                        w->confirmed = true;
                        continue;
                }
                if (L->o->stop && *L->o->stop)
                        break;
                snprintf(summary, sizeof(summary), "%zu fuse%s to burn, %zu already as planned", d->n_burn,
                         d->n_burn == 1 ? "" : "s", d->n_equal);
                w->confirmed = L->o->confirm && L->o->confirm(d->instance, d->ecid, d->br_cid, summary,
                                                              L->o->confirm_data);
                if (!w->confirmed) {
                        w->needs_burn = false;
                        set_result(d, "not-confirmed", -EPERM, NULL, "%s: not confirmed: nothing burned", d->instance);
                }
        }
}

int burn_run(fl_ctx *ctx, const struct burn_opts *o, struct burn_report *ret)
{
        struct line L;
        struct burn_report rep = { 0 };
        int r = line_setup(&L, ctx, o, &rep);

        if (r < 0)
                goto out;
        run_pool(&L, 1);
        if (o->mode != BURN_SHOW) {
                confirm_all(&L);
                run_pool(&L, 2);
        }
        *ret = rep;
        memset(&rep, 0, sizeof(rep));
        r = 0;
out:
        line_free(&L);
        burn_report_clear(&rep);
        return r;
}

int burn_verify_device(fl_ctx *ctx, const struct burn_opts *o, const char *instance, struct burn_device *ret)
{
        const char *devs[] = { instance, NULL };
        struct burn_opts vo = *o;
        struct burn_report rep = { 0 };
        int r;

        vo.mode = BURN_SHOW;
        vo.devices = devs;
        vo.all = false;
        vo.jobs = 1;
        r = burn_run(ctx, &vo, &rep);
        if (r < 0)
                return r;
        *ret = rep.v[0];
        rep.v[0].diff = NULL;
        if (ret->diff && (ret->n_burn || ret->n_conflict)) {
                ret->verdict = "mismatch";
                ret->r = -EBADMSG;
                snprintf(ret->message, sizeof(ret->message), "%s: %zu planned fuse%s not on the device as planned",
                         ret->instance, ret->n_burn + ret->n_conflict, ret->n_burn + ret->n_conflict == 1 ? " is" : "s are");
        } else if (ret->diff) {
                ret->verdict = "pass";
                ret->r = 0;
                snprintf(ret->message, sizeof(ret->message), "%s: every planned fuse reads back as planned", ret->instance);
        }
        burn_report_clear(&rep);
        return 0;
}

static int package_matches(fl_ctx *ctx, const char *dir, const struct fuse_plan *plan, bool test)
{
        struct fuse_package *pkg = NULL;
        struct fuse_problems probs = { 0 };
        int r = package_open(ctx, dir, &pkg);

        if (r < 0)
                return r;
        if (package_chip(pkg) != plan->chip) {
                r = fl_err(ctx, -EBADMSG, "odmfuse.sh made a %s package for a %s plan", chip_name(package_chip(pkg)),
                           chip_name(plan->chip));
                goto out;
        }
        r = package_check(ctx, pkg, plan, test ? PACKAGE_MODE_DRY_RUN : PACKAGE_MODE_COMMIT, &probs);
        if (r >= 0 && probs.n)
                r = fl_err_hint(ctx, probs.v[0].hint, -EBADMSG, "the package odmfuse.sh wrote does not burn exactly the plan (%zu "
                           "difference%s; first: %s%s%s)", probs.n, probs.n == 1 ? "" : "s", probs.v[0].fuse,
                           *probs.v[0].fuse ? ": " : "", probs.v[0].msg);
out:
        fuse_problems_free(&probs);
        package_free(pkg);
        return r;
}

int burn_package_make(fl_ctx *ctx, const struct package_make_opts *o, char ret_sha256[65])
{
        const struct odm_board *b = &o->tmpl->odm;
        struct fuse_plan *plan = NULL;
        char *xml_abs = NULL, *tmp = NULL, *xdir = NULL;
        struct stat st;
        int r;
        const struct { const char *name, *value; } need[] = {
                { "odmfuse_board", b->board }, { "odmfuse_FAB", b->fab }, { "odmfuse_BOARDID", b->boardid },
                { "odmfuse_BOARDSKU", b->boardsku }, { "odmfuse_BOARDREV", b->boardrev },
                { "odmfuse_CHIPREV", b->chiprev },
                { "odmfuse_CHIP_SKU", o->tmpl->chip == FL_CHIP_T234 ? b->chip_sku : "n/a" },
        };

        for (size_t i = 0; i < FL_ARRAY_SIZE(need); i++)
                if (!*need[i].value)
                        return fl_err(ctx, -EINVAL, "template %s has no %s: fuseline does not guess offline board "
                                      "values (add them from your boards' EEPROM)", o->tmpl->name, need[i].name);
        if (lstat(o->out, &st) == 0)
                return fl_err(ctx, -EEXIST, "%s exists already; fuseline never replaces a fuse package", o->out);
        r = load_plan(ctx, o->plan_path, o->tmpl->chip, NULL, o->accept_unverified, &plan);
        if (r < 0)
                return r;
        if (plan->magic != FUSE_MAGIC) {
                r = fl_err_hint(ctx, FL_HINT_TEST_PACKAGE, -EINVAL, "%s: give the plan with the FUSE MagicId",
                                o->plan_path);
                goto out;
        }
        xml_abs = realpath(o->plan_path, NULL);
        if (!xml_abs) {
                r = fl_err(ctx, -errno, "%s: %s", o->plan_path, strerror(errno));
                goto out;
        }
        if (asprintf(&tmp, "%s.tmp.%ld", o->out, (long)getpid()) < 0 || asprintf(&xdir, "%s.d", tmp) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = bsp_odmfuse_package(ctx, o->bsp_dir, o->tmpl->chip, b, xml_abs, o->test, tmp, o->log_path, o->envp,
                                o->timeout_ms);
        if (r < 0)
                goto out;
        if (mkdir(xdir, 0700) < 0) {
                r = fl_err(ctx, -errno, "%s: %s", xdir, strerror(errno));
                goto out;
        }
        r = bsp_package_extract(ctx, tmp, xdir, o->envp);
        if (r >= 0)
                r = package_matches(ctx, xdir, plan, o->test);
        if (r >= 0)
                r = sha256_file_hex(ctx, tmp, ret_sha256);
        if (r < 0)
                goto out;
        if (link(tmp, o->out) < 0) {
                r = fl_err(ctx, errno == EEXIST ? -EEXIST : -errno, "%s: cannot write: %s", o->out, strerror(errno));
                goto out;
        }
        r = 0;
out:
        if (xdir)
                bsp_tree_remove(xdir);
        if (tmp)
                unlink(tmp);
        free(xdir);
        free(tmp);
        free(xml_abs);
        fuse_plan_free(plan);
        return r;
}
