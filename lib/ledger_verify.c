/* ledger_verify.c — verifying a ledger: the hash chain, the device and
 * certificate tables against the events, the guards, and open intents. */
#include "ledger_int.h"

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

void fault(struct ledger_report *rep, enum ledger_fault f, int64_t id, const char *fmt, ...)
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
        struct ldb_stmt *st = NULL;
        int64_t cand = 0;

        if (!memcmp(row->prev_hash, zero, LEDGER_HASH_LEN)) {
                cand = 1;
        } else if (ldb_prepare(l, "SELECT id FROM events WHERE hash = ?1", &st) == 0) {
                ldb_bind_blob(st, 1, row->prev_hash, LEDGER_HASH_LEN);
                if (ldb_step(st) == 1)
                        cand = ldb_col_int64(st, 0) + 1;
                ldb_finalize(st);
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
        struct ldb_stmt *st = NULL;
        struct fl_buf b = { 0 };
        size_t cap = 0;
        int rc, r;

        r = prepare_events(l, "ORDER BY id", &st);
        if (r < 0)
                return r;
        while ((rc = ldb_step(st)) == 1) {
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
        if (rc != 0) {
                r = db_fail(l, rc, "reading events");
                goto out;
        }
        ldb_finalize(st);
        st = NULL;
        r = ldb_prepare_q(l, LDBQ_HIGH_WATER, &st);
        if (r < 0)
                goto out;
        if (ldb_step(st) == 1 && ldb_col_int64(st, 0) > last_id) {
                int64_t seq = ldb_col_int64(st, 0);
                fault(rep, LEDGER_FAULT_TRUNCATED, last_id + 1,
                      "event %lld: deleted: the newest events %lld..%lld are missing (ids were issued up to %lld)",
                      (long long)last_id + 1, (long long)last_id + 1, (long long)seq, (long long)seq);
        }
done:
        r = 0;
out:
        ldb_finalize(st);
        free(b.p);
        return r;
}

/* The newest device snapshot the events carry for an ECID (malloc'd JSON
 * text, NULL if none). */
static int last_snapshot(struct ledger *l, const char *ecid, json_object **ret, int64_t *ret_id)
{
        struct ldb_stmt *st = NULL;
        int rc, r;

        *ret = NULL;
        *ret_id = 0;
        r = ldb_prepare_q(l, LDBQ_LAST_DEVICE_SNAPSHOT, &st);
        if (r < 0)
                return r;
        ldb_bind_text(st, 1, ecid);
        rc = ldb_step(st);
        if (rc == 1) {
                const char *t = ldb_col_text(st, 1);
                *ret_id = ldb_col_int64(st, 0);
                *ret = t ? json_tokener_parse(t) : NULL;
        } else if (rc != 0) {
                r = db_fail(l, rc, "reading device events");
        }
        ldb_finalize(st);
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
        struct ldb_stmt *st = NULL;
        int rc, r;

        r = ldb_prepare(l, "SELECT ecid, chip, module, serial, state FROM devices ORDER BY ecid", &st);
        if (r < 0)
                return r;
        while ((rc = ldb_step(st)) == 1) {
                const char *ecid = ldb_col_text(st, 0);
                const char *cols[4] = { ldb_col_text(st, 4),
                                        ldb_col_text(st, 1),
                                        ldb_col_text(st, 2),
                                        ldb_col_text(st, 3) };
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
        if (rc != 0) {
                r = db_fail(l, rc, "reading devices");
                goto out;
        }
done:
        r = 0;
out:
        ldb_finalize(st);
        return r;
}

static int count_query(struct ledger *l, enum ldb_query q, const char *a, const char *b, int64_t *ret)
{
        struct ldb_stmt *st = NULL;
        int rc, r = ldb_prepare_q(l, q, &st);

        if (r < 0)
                return r;
        ldb_bind_text(st, 1, a);
        if (b)
                ldb_bind_text(st, 2, b);
        rc = ldb_step(st);
        if (rc == 1)
                *ret = ldb_col_int64(st, 0);
        else
                r = rc < 0 ? db_fail(l, rc, "checking certificates")
                           : fl_err(l->ctx, -EIO, "ledger %s: checking certificates: no count", l->name);
        ldb_finalize(st);
        return r;
}

static int verify_certs(struct ledger *l, struct ledger_report *rep)
{
        struct ldb_stmt *st = NULL;
        int rc, r;

        r = ldb_prepare_q(l, LDBQ_CERTS_IN_ORDER, &st);
        if (r < 0)
                return r;
        while ((rc = ldb_step(st)) == 1) {
                const char *fp = ldb_col_text(st, 0);
                const char *ecid = ldb_col_text(st, 1);
                const char *status = ldb_col_text(st, 3);
                unsigned char md[EVP_MAX_MD_SIZE];
                char hex[2 * LEDGER_HASH_LEN + 1];
                unsigned int mdlen = 0;
                int64_t rec = 0, sup = 0;
                size_t der_len = 0;
                const void *der = ldb_col_blob(st, 2, &der_len);

                fp = fp ? fp : "";
                ecid = ecid ? ecid : "";
                if (!EVP_Digest(der, der_len, md, &mdlen,
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
                r = count_query(l, LDBQ_COUNT_CERT_RECORDED, ecid, fp, &rec);
                if (r >= 0)
                        r = count_query(l, LDBQ_COUNT_CERT_SUPERSEDED, ecid, fp, &sup);
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
        if (rc != 0) {
                r = db_fail(l, rc, "reading certificates");
                goto out;
        }
done:
        r = 0;
out:
        ldb_finalize(st);
        return r;
}

/* The guards `verify ledger` expects to find (a missing one means someone
 * dropped it, most likely to edit rows). TRUNCATE fires no row trigger:
 * where the backend guards it with a trigger of its own
 * (ops->truncate_guards), those are expected too. */
static const struct {
        const char *name;
        int since; /* schema version that added it */
        bool truncate; /* a <table>_no_truncate guard */
} guard_triggers[] = {
        { "events_no_update", 1, false },         { "events_no_delete", 1, false },
        { "certificates_no_delete", 1, false },   { "certificates_fixed", 1, false },
        { "devices_no_delete", 1, false },        { "checkpoints_no_update", 2, false },
        { "checkpoints_no_delete", 2, false },    { "forwarded_no_update", 3, false },
        { "forwarded_no_delete", 3, false },      { "spool_uploaded_no_update", 3, false },
        { "spool_uploaded_no_delete", 3, false }, { "events_no_truncate", 1, true },
        { "certificates_no_truncate", 1, true },  { "devices_no_truncate", 1, true },
        { "events_high_water_no_truncate", 1, true }, { "checkpoints_no_truncate", 2, true },
        { "forwarded_no_truncate", 3, true },     { "spool_uploaded_no_truncate", 3, true },
};

static int verify_guards(struct ledger *l, struct ledger_report *rep)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(guard_triggers); i++) {
                int64_t n = 0;
                int r;
                if (guard_triggers[i].since > l->version || (guard_triggers[i].truncate && !l->ops->truncate_guards))
                        continue;
                r = count_query(l, LDBQ_GUARD_EXISTS, guard_triggers[i].name, NULL, &n);
                if (r < 0)
                        return r;
                if (n == 0) {
                        fault(rep, LEDGER_FAULT_SCHEMA, 0,
                              "trigger %s is missing or no longer guards as created: the append-only guard was removed", guard_triggers[i].name);
                        return 0;
                }
        }
        return 0;
}

int ledger_verify(struct ledger *l, struct ledger_report *ret)
{
        return ledger_verify_trusted(l, NULL, 0, ret);
}

static int verify_all(struct ledger *l, const struct ledger_trust *trust, size_t n_trust,
                      struct ledger_report *ret)
{
        struct ledger_report rep = { 0 };
        int r;

        r = verify_chain(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_forwarded(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_checkpoints(l, &rep, trust, n_trust);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_devices(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_certs(l, &rep);
        if (r >= 0 && rep.fault == LEDGER_FAULT_NONE)
                r = verify_guards(l, &rep);
        if (r < 0) {
                ledger_report_clear(&rep);
                return r;
        }
        *ret = rep;
        return 0;
}

int ledger_verify_in_tx(struct ledger *l, struct ledger_report *ret)
{
        if (!ldb_in_transaction(l))
                return fl_err(l->ctx, -EINVAL, "ledger %s: verifying inside a transaction, but none is open",
                              l->name);
        return verify_all(l, NULL, 0, ret);
}

int ledger_verify_trusted(struct ledger *l, const struct ledger_trust *trust, size_t n_trust,
                          struct ledger_report *ret)
{
        int r;

        /* One read transaction: a consistent snapshot while writers go on. */
        r = ldb_begin_read(l);
        if (r < 0)
                return r;
        r = verify_all(l, trust, n_trust, ret);
        ldb_rollback(l); /* it changed nothing */
        return r;
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
