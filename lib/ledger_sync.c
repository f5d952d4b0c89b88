/* ledger_sync.c — store and forward: a station's local SQLite spool that
 * stands in for the central ledger while it is unreachable, the upload of
 * spooled events onto the central chain (ledger_sync), and the check of the
 * proof each forwarded event carries (verify_forwarded, run by
 * ledger_verify). Written on the storage interface (ledger_db.h) and the
 * public ledger API, so it works for either backend on either side.
 *
 * Why the spool's identity is the hash of its first event, not the station
 * name: two stations misconfigured with one name would otherwise share the
 * idempotency key (spool, seq), and the second one's events would be taken
 * for uploads already done — lost. A genesis hash cannot collide. */
#include <libgen.h>

#include "ledger_db.h"
#include "ledger_int.h"

/* ---- the process default spool ------------------------------------------ */

static const char *default_spool;

void ledger_spool_set(const char *path)
{
        default_spool = path && *path ? path : NULL;
}

const char *ledger_spool_default(void)
{
        return default_spool;
}

const char *ledger_spooling_for(const struct ledger *l)
{
        return l ? l->spool_for : NULL;
}

/* ---- the forwarded proof in details ------------------------------------- */

static int fwd_text(const struct ledger_fwd *f, char *out, size_t n)
{
        char prev[2 * LEDGER_HASH_LEN + 1], hash[2 * LEDGER_HASH_LEN + 1];
        int k;

        hex_encode(f->prev, LEDGER_HASH_LEN, prev);
        hex_encode(f->hash, LEDGER_HASH_LEN, hash);
        if (f->intent_id)
                k = snprintf(out, n, "{\"spool\":\"%s\",\"seq\":%lld,\"prev\":\"%s\",\"hash\":\"%s\",\"intent_id\":%lld}",
                             f->spool, (long long)f->seq, prev, hash, (long long)f->intent_id);
        else
                k = snprintf(out, n, "{\"spool\":\"%s\",\"seq\":%lld,\"prev\":\"%s\",\"hash\":\"%s\"}", f->spool,
                             (long long)f->seq, prev, hash);
        return k > 0 && (size_t)k < n ? 0 : -E2BIG;
}

static bool is_hex64(const char *s)
{
        if (!s || strlen(s) != 2 * LEDGER_HASH_LEN)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

int ledger_fwd_attach(const char *details, const struct ledger_fwd *f, char **ret)
{
        char ft[400];
        size_t n;
        int r;

        if (!details || !f || !is_hex64(f->spool) || f->seq <= 0 || f->intent_id < 0)
                return -EINVAL;
        n = strlen(details);
        if (n < 2 || details[0] != '{' || details[n - 1] != '}')
                return -EINVAL;
        r = fwd_text(f, ft, sizeof(ft));
        if (r < 0)
                return r;
        if (n == 2)
                r = asprintf(ret, "{\"forwarded\":%s}", ft);
        else
                r = asprintf(ret, "%.*s,\"forwarded\":%s}", (int)(n - 1), details, ft);
        return r < 0 ? -ENOMEM : 0;
}

static json_object *parse_object(const char *text)
{
        struct json_tokener *tok = json_tokener_new();
        json_object *o = NULL;
        size_t n = strlen(text);

        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, text, (int)n);
        if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != n ||
            !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

static bool get_int(json_object *o, const char *key, int64_t *ret)
{
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

int ledger_fwd_split(const char *details, char **ret_original, struct ledger_fwd *ret)
{
        static const char key[] = "\"forwarded\":";
        json_object *o = NULL, *fo, *orig_o = NULL;
        struct ledger_fwd f = { 0 };
        char ft[400], *orig = NULL;
        const char *s;
        size_t n, tail, nkeys = 0;
        int r = -EBADMSG;

        /* Cheap test first: most events were never forwarded. */
        if (!details || !strstr(details, key))
                return -ENOENT;
        o = parse_object(details);
        if (!o)
                return -ENOENT; /* not JSON at all: verify_chain's to judge, not a forwarded event */
        if (!json_object_object_get_ex(o, "forwarded", &fo)) {
                r = -ENOENT;
                goto out;
        }
        if (!json_object_is_type(fo, json_type_object))
                goto out;
        json_object_object_foreach(fo, k, v)
        {
                (void)k;
                (void)v;
                nkeys++;
        }
        s = get_str(fo, "spool");
        if (!is_hex64(s) || !get_int(fo, "seq", &f.seq) || f.seq <= 0)
                goto out;
        snprintf(f.spool, sizeof(f.spool), "%s", s);
        s = get_str(fo, "prev");
        if (!is_hex64(s) || hex_decode(s, f.prev, LEDGER_HASH_LEN, NULL) < 0)
                goto out;
        s = get_str(fo, "hash");
        if (!is_hex64(s) || hex_decode(s, f.hash, LEDGER_HASH_LEN, NULL) < 0)
                goto out;
        if (json_object_object_get_ex(fo, "intent_id", NULL) && (!get_int(fo, "intent_id", &f.intent_id) ||
                                                                  f.intent_id <= 0))
                goto out;
        if (nkeys != (f.intent_id ? 5u : 4u))
                goto out;
        /* The text must end exactly as ledger_fwd_attach writes it. */
        if (fwd_text(&f, ft, sizeof(ft)) < 0)
                goto out;
        n = strlen(details);
        tail = strlen(key) + strlen(ft) + 1;
        if (n < tail + 1 || strncmp(details + n - tail, key, strlen(key)) ||
            strncmp(details + n - tail + strlen(key), ft, strlen(ft)) || details[n - 1] != '}')
                goto out;
        if (details[n - tail - 1] == '{' && n - tail - 1 == 0) {
                orig = strdup("{}");
        } else if (details[n - tail - 1] == ',' && n - tail - 1 > 1) {
                if (asprintf(&orig, "%.*s}", (int)(n - tail - 1), details) < 0)
                        orig = NULL;
        } else {
                goto out;
        }
        if (!orig) {
                r = -ENOMEM;
                goto out;
        }
        /* The local text is a JSON object of its own without the member. */
        orig_o = parse_object(orig);
        if (!orig_o || json_object_object_get_ex(orig_o, "forwarded", NULL))
                goto out;
        if (ret_original) {
                *ret_original = orig;
                orig = NULL;
        }
        if (ret)
                *ret = f;
        r = 0;
out:
        free(orig);
        json_object_put(orig_o);
        json_object_put(o);
        return r;
}

/* ---- small storage helpers ---------------------------------------------- */

static const char *lname(const struct ledger *l)
{
        return l->name;
}

/* One integer from a query with up to two bound values (text or int). */
static int query_int(struct ledger *l, const char *sql, const char *t1, int64_t i2, int64_t *ret)
{
        struct ldb_stmt *st = NULL;
        int r;

        r = ldb_prepare(l, sql, &st);
        if (r < 0)
                return r;
        if (t1)
                ldb_bind_text(st, 1, t1);
        if (i2)
                ldb_bind_int64(st, t1 ? 2 : 1, i2);
        r = ldb_step(st);
        if (r == 1) {
                *ret = ldb_col_type(st, 0) == LDB_NULL ? 0 : ldb_col_int64(st, 0);
                r = 0;
        } else if (r == 0) {
                r = -ENOENT;
        }
        ldb_finalize(st);
        return r;
}

int ledger_spool_id(struct ledger *spool, char ret[2 * LEDGER_HASH_LEN + 1])
{
        struct ldb_stmt *st = NULL;
        const void *p;
        size_t n = 0;
        int r;

        r = ldb_prepare(spool, "SELECT hash FROM events WHERE id = 1", &st);
        if (r < 0)
                return r;
        r = ldb_step(st);
        if (r == 1) {
                p = ldb_col_blob(st, 0, &n);
                if (!p || n != LEDGER_HASH_LEN)
                        r = fl_err(spool->ctx, -EBADMSG, "spool %s: event 1's hash is not %d bytes", lname(spool),
                                   LEDGER_HASH_LEN);
                else {
                        hex_encode(p, LEDGER_HASH_LEN, ret);
                        r = 0;
                }
        } else if (r == 0) {
                r = -ENOENT;
        }
        ldb_finalize(st);
        return r;
}

int ledger_spool_pending(struct ledger *spool, int64_t *ret_first, int64_t *ret_n)
{
        int64_t up = 0, last = 0;
        int r;

        r = query_int(spool, "SELECT max(seq) FROM spool_uploaded", NULL, 0, &up);
        if (r >= 0)
                r = query_int(spool, "SELECT max(id) FROM events", NULL, 0, &last);
        if (r < 0)
                return r;
        *ret_first = up + 1;
        *ret_n = last > up ? last - up : 0;
        return 0;
}

/* ---- opening with a spool ----------------------------------------------- */

/* A path ledger is "unreachable" when its directory is missing: a network
 * share that is not mounted. (A missing file in an existing directory is a
 * new ledger, created as always.) */
static bool path_unreachable(const char *path)
{
        char *copy = strdup(path);
        struct stat st;
        bool gone;

        if (!copy)
                return false;
        gone = stat(dirname(copy), &st) < 0 && (errno == ENOENT || errno == ENOTCONN || errno == EHOSTDOWN ||
                                                 errno == ESTALE || errno == EIO);
        free(copy);
        return gone;
}

int ledger_open_central(fl_ctx *ctx, const char *location, struct ledger **ret)
{
        if (!ldb_is_uri(location) && path_unreachable(location))
                return fl_err(ctx, -EHOSTUNREACH, "ledger %s: unreachable: its directory is missing (a share not "
                              "mounted?)", location);
        return ledger_open_direct(ctx, location, LEDGER_WRITE, ret);
}

static int open_spool(fl_ctx *ctx, const char *central, const char *spool, const char *why, struct ledger **ret)
{
        struct ledger *l = NULL;
        int r;

        r = ledger_open_direct(ctx, spool, LEDGER_WRITE, &l);
        if (r < 0)
                return r;
        l->spool_for = strdup(central);
        if (!l->spool_for) {
                ledger_close(l);
                return -ENOMEM;
        }
        fl_log(ctx, FL_LOG_WARN, "ledger %s: %s: recording in the spool %s until `fuseline ledger sync`", central,
               why, spool);
        *ret = l;
        return 0;
}

int ledger_open_spooled(fl_ctx *ctx, const char *central, const char *spool, struct ledger **ret)
{
        struct ledger *l = NULL;
        int64_t first = 0, n = 0;
        struct stat st;
        char why[96];
        int r;

        if (!central || !spool || !ret)
                return -EINVAL;
        if (!strcmp(central, spool))
                return fl_err(ctx, -EINVAL, "ledger %s: the spool cannot be the central ledger itself", spool);
        /* Pending events first: a new event must not overtake them. */
        if (stat(spool, &st) == 0) {
                r = ledger_open_direct(ctx, spool, LEDGER_WRITE, &l);
                if (r < 0)
                        return r;
                r = ledger_spool_pending(l, &first, &n);
                ledger_close(l);
                l = NULL;
                if (r < 0)
                        return r;
                if (n > 0) {
                        snprintf(why, sizeof(why), "%lld spooled event(s) not uploaded yet", (long long)n);
                        return open_spool(ctx, central, spool, why, ret);
                }
        }
        r = ledger_open_central(ctx, central, &l);
        if (r == -EHOSTUNREACH)
                return open_spool(ctx, central, spool, "unreachable", ret);
        if (r < 0)
                return r;
        *ret = l;
        return 0;
}

/* ---- upload ------------------------------------------------------------- */

/* A spool event held in memory (the spool is read before central is
 * written, so no statement spans two databases). */
struct pending {
        struct ledger_row row;
        char *strs[8];
};

static void pending_free(struct pending *p, size_t n)
{
        for (size_t i = 0; p && i < n; i++)
                for (size_t k = 0; k < FL_ARRAY_SIZE(p[i].strs); k++)
                        free(p[i].strs[k]);
        free(p);
}

static int pending_load(struct ledger *spool, int64_t first, struct pending **ret, size_t *ret_n)
{
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        struct pending *arr = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = ledger_iter_new(spool, NULL, &it);
        if (r < 0)
                return r;
        while ((r = ledger_iter_next(it, &row)) > 0) {
                struct pending *p;
                const char *src[8] = { row->time,    row->station, row->operator, row->command,
                                       row->ecid,    row->kind,    row->outcome,  row->details };
                const char **dst[8];

                if (row->id < first)
                        continue;
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        struct pending *na = realloc(arr, nc * sizeof(*arr));
                        if (!na) {
                                r = -ENOMEM;
                                break;
                        }
                        arr = na;
                        cap = nc;
                }
                p = &arr[n++];
                memset(p, 0, sizeof(*p));
                p->row = *row;
                dst[0] = &p->row.time;
                dst[1] = &p->row.station;
                dst[2] = &p->row.operator;
                dst[3] = &p->row.command;
                dst[4] = &p->row.ecid;
                dst[5] = &p->row.kind;
                dst[6] = &p->row.outcome;
                dst[7] = &p->row.details;
                for (int k = 0; k < 8; k++) {
                        if (!src[k]) {
                                *dst[k] = NULL;
                                continue;
                        }
                        p->strs[k] = strdup(src[k]);
                        if (!p->strs[k]) {
                                r = -ENOMEM;
                                break;
                        }
                        *dst[k] = p->strs[k];
                }
                if (r == -ENOMEM)
                        break;
        }
        ledger_iter_free(it);
        if (r < 0) {
                pending_free(arr, n);
                return r;
        }
        *ret = arr;
        *ret_n = n;
        return 0;
}

/* Insert one event row as given (id, hashes and all). */
int event_insert_raw(struct ledger *l, const struct ledger_row *row)
{
        struct ldb_stmt *st = NULL;
        int r;

        /* Through the backend's append (LDBQ_INSERT_EVENT): on PostgreSQL
         * the server checks the chain lock and the link. */
        r = ldb_prepare_q(l, LDBQ_INSERT_EVENT, &st);
        if (r < 0)
                return r;
        ldb_bind_int64(st, 1, row->id);
        ldb_bind_text(st, 2, row->time);
        ldb_bind_text(st, 3, row->station);
        ldb_bind_text(st, 4, row->operator);
        ldb_bind_text(st, 5, row->command);
        ldb_bind_text(st, 6, row->ecid);
        ldb_bind_text(st, 7, row->kind);
        if (row->intent_id)
                ldb_bind_int64(st, 8, row->intent_id);
        else
                ldb_bind_null(st, 8);
        ldb_bind_text(st, 9, row->outcome);
        ldb_bind_text(st, 10, row->details);
        ldb_bind_blob(st, 11, row->prev_hash, LEDGER_HASH_LEN);
        ldb_bind_blob(st, 12, row->hash, LEDGER_HASH_LEN);
        r = ldb_step(st);
        ldb_finalize(st);
        return r < 0 ? r : 0;
}

/* Inside a write transaction: the head's hash and the next id to issue
 * (past the highest id ever issued, so a deleted tail stays visible). */
static int central_tail(struct ledger *l, unsigned char prev[LEDGER_HASH_LEN], int64_t *ret_next)
{
        struct ldb_stmt *st = NULL;
        int64_t last = 0, high = 0;
        const void *p;
        size_t n = 0;
        int r;

        memset(prev, 0, LEDGER_HASH_LEN);
        r = ldb_prepare(l, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        r = ldb_step(st);
        if (r == 1) {
                last = ldb_col_int64(st, 0);
                p = ldb_col_blob(st, 1, &n);
                if (!p || n != LEDGER_HASH_LEN)
                        r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest): hash is not %d bytes; "
                                   "refusing to append to a broken chain (see fuseline verify ledger)",
                                   lname(l), (long long)last, LEDGER_HASH_LEN);
                else
                        memcpy(prev, p, LEDGER_HASH_LEN);
        }
        ldb_finalize(st);
        if (r < 0)
                return r;
        r = ldb_prepare_q(l, LDBQ_HIGH_WATER, &st);
        if (r < 0)
                return r;
        r = ldb_step(st);
        if (r == 1)
                high = ldb_col_int64(st, 0);
        ldb_finalize(st);
        if (r < 0)
                return r;
        *ret_next = (high > last ? high : last) + 1;
        return 0;
}

/* Apply a forwarded event's device snapshot to central's devices table.
 * Central may know identity facts the spool did not (a module recorded by
 * another station): the row keeps them, and *ret_merged (set only then)
 * is the row as it now stands, for a reconciling event. */
static int device_snapshot_apply(struct ledger *l, int64_t local_id, const char *ecid, json_object *snap,
                                 const char *time, json_object **ret_merged)
{
        static const char *const keys[4] = { "chip", "module", "serial", "state" };
        struct ldb_stmt *st = NULL;
        const char *want[4], *have[4] = { 0 };
        char *cur[4] = { 0 };
        json_object *merged = NULL;
        bool exists = false, differs = false;
        int r;

        for (int i = 0; i < 4; i++)
                want[i] = get_str(snap, keys[i]);
        if (!want[3])
                return fl_err(l->ctx, -EBADMSG, "spool event %lld: its device snapshot has no state", (long long)local_id);
        r = ldb_prepare(l, "SELECT chip, module, serial, state FROM devices WHERE ecid = ?1", &st);
        if (r < 0)
                return r;
        ldb_bind_text(st, 1, ecid);
        r = ldb_step(st);
        if (r == 1) {
                exists = true;
                for (int i = 0; i < 4; i++) {
                        const char *t = ldb_col_text(st, i);
                        if (t && !(cur[i] = strdup(t))) {
                                r = -ENOMEM;
                                break;
                        }
                        have[i] = cur[i];
                }
        }
        ldb_finalize(st);
        st = NULL;
        if (r < 0)
                goto out;
        for (int i = 0; i < 3; i++) {
                if (want[i] && have[i] && strcmp(want[i], have[i])) {
                        r = fl_err(l->ctx, -EEXIST,
                                   "spool event %lld: ECID %s is recorded centrally as %s '%s', the spool says '%s'",
                                   (long long)local_id, ecid, keys[i], have[i], want[i]);
                        goto out;
                }
                if (!want[i] && have[i]) {
                        want[i] = have[i];
                        differs = true;
                }
        }
        r = device_row_write(l, exists, ecid, want, time);
        if (r == -EEXIST)
                r = fl_err(l->ctx, -EEXIST, "spool event %lld: ECID %s: serial '%s' belongs to another device centrally",
                           (long long)local_id, ecid, want[2] ? want[2] : "");
        if (r < 0)
                goto out;
        if (differs) {
                merged = json_object_new_object();
                if (!merged) {
                        r = -ENOMEM;
                        goto out;
                }
                /* The key order ledger_append's snapshots use. */
                static const int order[4] = { 3, 0, 1, 2 };
                for (int k = 0; k < 4; k++)
                        if (want[order[k]])
                                json_object_object_add(merged, keys[order[k]], json_object_new_string(want[order[k]]));
                *ret_merged = merged;
                merged = NULL;
        }
        r = 0;
out:
        ldb_finalize(st);
        json_object_put(merged);
        for (int i = 0; i < 4; i++)
                free(cur[i]);
        return r;
}

/* (spool_id, lrow->id) is on central already, as event cid: it counts as
 * this spool row's upload only if that event's forwarded proof carries this
 * row's local hash. The spool's id is the hash of its first event, so a
 * spool recreated with an identical first event (same second, station,
 * command…) shares it; its later events are other events, and taking them
 * for uploads already done would lose them. 0: it is this row; -EBADMSG
 * (named): it is not. */
static int already_forwarded_is(struct ledger *c, const char *spool_name, const char *spool_id,
                                const struct ledger_row *lrow, int64_t cid)
{
        char have[2 * LEDGER_HASH_LEN + 1], want[2 * LEDGER_HASH_LEN + 1];
        struct ldb_stmt *st = NULL;
        struct ledger_fwd f = { 0 };
        int r;

        hex_encode(lrow->hash, LEDGER_HASH_LEN, want);
        r = ldb_prepare(c, "SELECT details FROM events WHERE id = ?1", &st);
        if (r < 0)
                return r;
        ldb_bind_int64(st, 1, cid);
        r = ldb_step(st);
        if (r == 1)
                r = ledger_fwd_split(ldb_col_text(st, 0) ? ldb_col_text(st, 0) : "", NULL, &f);
        else if (r == 0)
                r = -ENOENT;
        else if (r < 0) {
                ldb_finalize(st);
                return r; /* a storage error, recorded */
        }
        ldb_finalize(st);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fl_err(c->ctx, -EBADMSG,
                              "spool %s event %lld (local hash %s): table forwarded says central event %lld holds "
                              "it, but that event %s; nothing marked (see fuseline verify ledger)",
                              spool_name, (long long)lrow->id, want, (long long)cid,
                              r == -ENOENT ? "is missing or carries no forwarded proof" : "has a malformed one");
        if (strcmp(f.spool, spool_id) || f.seq != lrow->id || memcmp(f.hash, lrow->hash, LEDGER_HASH_LEN)) {
                hex_encode(f.hash, LEDGER_HASH_LEN, have);
                return fl_err(c->ctx, -EBADMSG,
                              "spool %s event %lld (local hash %s): central event %lld already holds spool %.12s "
                              "seq %lld with local hash %s: another spool with the same first event (recreated or "
                              "copied?) uploaded it; nothing marked",
                              spool_name, (long long)lrow->id, want, (long long)cid, f.spool, (long long)f.seq,
                              have);
        }
        return 0;
}

/* One upload attempt of spool event p (a central write transaction).
 * *ret_central: the central id; *ret_already: it was there already. */
static int forward_one(struct ledger *c, const char *spool_name, const char *spool_id, const struct ledger_row *lrow,
                       struct ledger_sync_report *rep, int64_t *ret_central, bool *ret_already)
{
        unsigned char prev[LEDGER_HASH_LEN];
        struct ledger_row row = *lrow;
        struct ledger_fwd f = { 0 };
        json_object *local = NULL, *snap = NULL, *merged = NULL;
        char *details = NULL, *rdetails = NULL;
        struct ldb_stmt *st = NULL;
        int64_t next = 0, existing = 0;
        int r;

        r = ldb_begin_write(c);
        if (r < 0)
                return r;
        r = query_int(c, "SELECT event_id FROM forwarded WHERE spool = ?1 AND seq = ?2", spool_id, lrow->id,
                      &existing);
        if (r == 0) {
                r = already_forwarded_is(c, spool_name, spool_id, lrow, existing);
                ldb_rollback(c);
                if (r < 0)
                        return r;
                *ret_central = existing;
                *ret_already = true;
                return 0;
        }
        if (r != -ENOENT)
                goto fail;
        r = central_tail(c, prev, &next);
        if (r < 0)
                goto fail;

        local = parse_object(lrow->details);
        if (!local) {
                r = fl_err(c->ctx, -EBADMSG, "spool event %lld: details are not a JSON object", (long long)lrow->id);
                goto fail;
        }
        if (json_object_object_get_ex(local, "certificate", NULL)) {
                r = fl_err(c->ctx, -EINVAL, "spool event %lld carries a certificate: certificates are issued only "
                           "against the central ledger, never spooled", (long long)lrow->id);
                goto fail;
        }
        if (row.intent_id) {
                r = query_int(c, "SELECT event_id FROM forwarded WHERE spool = ?1 AND seq = ?2", spool_id,
                              lrow->intent_id, &row.intent_id);
                if (r == -ENOENT)
                        r = fl_err(c->ctx, -EBADMSG, "spool event %lld: its intent (spool event %lld) is not on the "
                                   "central ledger", (long long)lrow->id, (long long)lrow->intent_id);
                if (r < 0)
                        goto fail;
        }
        if (json_object_object_get_ex(local, "device", &snap)) {
                if (!row.ecid || !json_object_is_type(snap, json_type_object)) {
                        r = fl_err(c->ctx, -EBADMSG, "spool event %lld: a device snapshot without an ECID",
                                   (long long)lrow->id);
                        goto fail;
                }
                r = device_snapshot_apply(c, lrow->id, row.ecid, snap, row.time, &merged);
                if (r < 0)
                        goto fail;
        }

        snprintf(f.spool, sizeof(f.spool), "%s", spool_id);
        f.seq = lrow->id;
        memcpy(f.prev, lrow->prev_hash, LEDGER_HASH_LEN);
        memcpy(f.hash, lrow->hash, LEDGER_HASH_LEN);
        f.intent_id = lrow->intent_id;
        r = ledger_fwd_attach(lrow->details, &f, &details);
        if (r < 0)
                goto fail;
        row.id = next;
        row.details = details;
        memcpy(row.prev_hash, prev, LEDGER_HASH_LEN);
        r = ledger_event_hash(&row, prev, row.hash);
        if (r < 0)
                goto fail;
        r = event_insert_raw(c, &row);
        if (r < 0)
                goto fail;
        r = ldb_prepare(c, "INSERT INTO forwarded (spool, seq, event_id) VALUES (?1, ?2, ?3)", &st);
        if (r < 0)
                goto fail;
        ldb_bind_text(st, 1, spool_id);
        ldb_bind_int64(st, 2, lrow->id);
        ldb_bind_int64(st, 3, row.id);
        r = ldb_step(st);
        ldb_finalize(st);
        st = NULL;
        if (r < 0)
                goto fail;
        if (merged) {
                /* Central knew more about the device than the spool: an event
                 * of its own records the row as it now stands, so the newest
                 * snapshot and the devices table agree again. */
                struct ledger_row rr = { 0 };
                json_object *d = json_object_new_object();
                char note[32];
                const char *text;

                if (!d) {
                        r = -ENOMEM;
                        goto fail;
                }
                json_object_object_add(d, "reconciles", json_object_new_int64(row.id));
                json_object_object_add(d, "device", json_object_get(merged));
                text = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                rdetails = text ? strdup(text) : NULL;
                json_object_put(d);
                if (!rdetails) {
                        r = -ENOMEM;
                        goto fail;
                }
                snprintf(note, sizeof(note), "ok");
                rr.id = row.id + 1;
                rr.time = row.time;
                rr.station = row.station;
                rr.operator = row.operator;
                rr.command = "sync";
                rr.ecid = row.ecid;
                rr.kind = "record";
                rr.outcome = note;
                rr.details = rdetails;
                memcpy(rr.prev_hash, row.hash, LEDGER_HASH_LEN);
                r = ledger_event_hash(&rr, rr.prev_hash, rr.hash);
                if (r >= 0)
                        r = event_insert_raw(c, &rr);
                if (r < 0)
                        goto fail;
                rep->reconciled++;
        }
        r = ldb_commit(c);
        if (r < 0)
                goto fail;
        *ret_central = row.id;
        *ret_already = false;
        r = 0;
        goto out;
fail:
        ldb_rollback(c);
out:
        free(details);
        free(rdetails);
        json_object_put(merged);
        json_object_put(local);
        return r;
}

static int mark_uploaded(struct ledger *spool, int64_t seq, int64_t central_id, const char *central)
{
        struct ldb_stmt *st = NULL;
        char now[LEDGER_TIME_LEN];
        int r;

        time_now_utc(now, sizeof(now));
        r = ldb_prepare(spool, "INSERT INTO spool_uploaded (seq, event_id, central, time) VALUES (?1, ?2, ?3, ?4)",
                        &st);
        if (r < 0)
                return r;
        ldb_bind_int64(st, 1, seq);
        ldb_bind_int64(st, 2, central_id);
        ldb_bind_text(st, 3, central);
        ldb_bind_text(st, 4, now);
        r = ldb_step(st);
        ldb_finalize(st);
        return r < 0 ? r : 0;
}

int ledger_sync(struct ledger *central, struct ledger *spool, struct ledger_sync_report *ret)
{
        struct ledger_sync_report rep = { 0 };
        struct ledger_report vr = { 0 };
        struct pending *p = NULL;
        size_t n = 0;
        int64_t first = 0, npend = 0;
        int r;

        if (!central || !spool || !ret)
                return -EINVAL;
        if (central->mode != LEDGER_WRITE || spool->mode != LEDGER_WRITE)
                return fl_err(central->ctx, -EINVAL, "ledger sync: both ledgers must be open for writing");
        r = ledger_spool_pending(spool, &first, &npend);
        if (r < 0)
                return r;
        rep.pending = npend;
        r = ledger_spool_id(spool, rep.spool_id);
        if (r == -ENOENT) {
                *ret = rep;
                return 0;
        }
        if (r < 0)
                return r;
        if (npend == 0) {
                *ret = rep;
                return 0;
        }
        /* Never forward from a broken spool: its local hashes are the proof. */
        r = ledger_verify(spool, &vr);
        if (r < 0)
                return r;
        if (vr.fault != LEDGER_FAULT_NONE) {
                r = fl_err(spool->ctx, -EBADMSG, "spool %s: %s: %s; nothing uploaded", lname(spool),
                           ledger_fault_name(vr.fault), vr.message);
                ledger_report_clear(&vr);
                return r;
        }
        ledger_report_clear(&vr);
        r = pending_load(spool, first, &p, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                uint64_t deadline = mono_ms() + central->busy_ms;
                int64_t cid = 0;
                bool already = false;

                for (;;) {
                        r = forward_one(central, lname(spool), rep.spool_id, &p[i].row, &rep, &cid, &already);
                        if ((r != -EAGAIN && r != -EBUSY) || mono_ms() >= deadline)
                                break;
                        sleep_ms(1 + (unsigned)(rand() % 20));
                }
                if (r == -EAGAIN && ldb_conn_was_lost(central))
                        r = fl_err(central->ctx, -EHOSTUNREACH, "ledger %s: the server is unreachable (the connection "
                                   "was lost inside the transaction again and again for %u ms)", lname(central),
                                   central->busy_ms);
                else if (r == -EAGAIN || r == -EBUSY)
                        r = fl_err(central->ctx, -EBUSY, "ledger %s: other writers held it past %u ms", lname(central),
                                   central->busy_ms);
                if (r < 0)
                        goto out;
                r = mark_uploaded(spool, p[i].row.id, cid, lname(central));
                if (r < 0)
                        goto out;
                if (already) {
                        rep.already++;
                } else {
                        rep.uploaded++;
                        if (!rep.first_central)
                                rep.first_central = cid;
                        rep.last_central = cid;
                }
        }
        r = 0;
out:
        pending_free(p, n);
        *ret = rep; /* what was done counts even when a later event failed */
        return r;
}

/* ---- verifying a spool against the central ledger ----------------------- */

/* Spool event srow against central event cid. 1: matches; 0: fault set. */
static int crosscheck_one(struct ledger *central, const char *spool_id, const struct ledger_row *srow, int64_t cid,
                          struct ledger_report *rep)
{
        const char *want[6] = { srow->time, srow->station, srow->operator, srow->command, srow->kind, srow->outcome };
        struct ldb_stmt *st = NULL;
        struct ledger_fwd f;
        char *orig = NULL;
        bool same = true;
        int r;

        r = ldb_prepare(central, "SELECT time, station, operator, command, kind, outcome, details FROM events "
                                 "WHERE id = ?1", &st);
        if (r < 0)
                return r;
        ldb_bind_int64(st, 1, cid);
        r = ldb_step(st);
        if (r < 0)
                goto out;
        if (r == 0) {
                fault(rep, LEDGER_FAULT_DELETED, srow->id,
                      "spool event %lld: uploaded as central event %lld, which the central ledger no longer holds",
                      (long long)srow->id, (long long)cid);
                goto out;
        }
        for (int i = 0; i < 6; i++)
                if (!ldb_col_text(st, i) || strcmp(ldb_col_text(st, i), want[i]))
                        same = false;
        r = ledger_fwd_split(ldb_col_text(st, 6) ? ldb_col_text(st, 6) : "", &orig, &f);
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                goto out;
        if (r < 0 || !same || strcmp(f.spool, spool_id) || f.seq != srow->id ||
            memcmp(f.hash, srow->hash, LEDGER_HASH_LEN) || strcmp(orig, srow->details)) {
                fault(rep, LEDGER_FAULT_EDITED, srow->id,
                      "spool event %lld: central event %lld is not its forwarded copy any more (edited on the "
                      "central ledger)",
                      (long long)srow->id, (long long)cid);
                r = 0;
                goto out;
        }
        r = 1;
out:
        free(orig);
        ldb_finalize(st);
        return r;
}

int ledger_spool_verify(struct ledger *spool, struct ledger *central, struct ledger_report *ret)
{
        struct ledger_report rep = { 0 };
        struct pending *p = NULL;
        size_t n = 0;
        char id[2 * LEDGER_HASH_LEN + 1];
        int r;

        r = ledger_verify(spool, &rep);
        if (r < 0)
                return r;
        if (!central || rep.fault != LEDGER_FAULT_NONE || spool->version < 3)
                goto done;
        r = ledger_spool_id(spool, id);
        if (r == -ENOENT)
                goto done;
        if (r >= 0)
                r = pending_load(spool, 1, &p, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                int64_t cid = 0;
                r = query_int(spool, "SELECT event_id FROM spool_uploaded WHERE seq = ?1", NULL, p[i].row.id, &cid);
                if (r == -ENOENT) { /* pending: not on central yet */
                        r = 0;
                        break;
                }
                if (r >= 0)
                        r = crosscheck_one(central, id, &p[i].row, cid, &rep);
                if (r == 0)
                        break;
        }
        pending_free(p, n);
        if (r < 0) {
                ledger_report_clear(&rep);
                return r;
        }
done:
        *ret = rep;
        return 0;
}

/* ---- verifying forwarded events on the central ledger ------------------- */

struct spool_track {
        char id[2 * LEDGER_HASH_LEN + 1];
        int64_t last_seq;
        unsigned char last_hash[LEDGER_HASH_LEN];
        int64_t *central; /* central[seq - 1]: the central id of local seq */
        size_t cap;
};

static struct spool_track *track_get(struct spool_track **arr, size_t *n, const char *id)
{
        struct spool_track *na;

        for (size_t i = 0; i < *n; i++)
                if (!strcmp((*arr)[i].id, id))
                        return &(*arr)[i];
        na = realloc(*arr, (*n + 1) * sizeof(**arr));
        if (!na)
                return NULL;
        *arr = na;
        memset(&na[*n], 0, sizeof(na[*n]));
        snprintf(na[*n].id, sizeof(na[*n].id), "%s", id);
        return &na[(*n)++];
}

int verify_forwarded(struct ledger *l, struct ledger_report *rep)
{
        static const unsigned char zero[LEDGER_HASH_LEN];
        struct spool_track *tr = NULL;
        size_t ntr = 0;
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        int64_t nfwd = 0, nrows = 0;
        int r;

        if (l->version < 3)
                return 0;
        r = ledger_iter_new(l, NULL, &it);
        if (r < 0)
                return r;
        while ((r = ledger_iter_next(it, &row)) > 0) {
                struct ledger_fwd f;
                struct ledger_row lr;
                struct spool_track *t;
                unsigned char h[LEDGER_HASH_LEN];
                char *orig = NULL, hex[2 * LEDGER_HASH_LEN + 1];
                int64_t mapped = 0;

                r = ledger_fwd_split(row->details, &orig, &f);
                if (r == -ENOENT)
                        continue;
                if (r == -EBADMSG) {
                        fault(rep, LEDGER_FAULT_EDITED, row->id,
                              "event %lld (%s %s): its \"forwarded\" proof is malformed", (long long)row->id,
                              row->time, row->command);
                        goto done;
                }
                if (r < 0)
                        goto out;
                nfwd++;
                lr = *row;
                lr.id = f.seq;
                lr.details = orig;
                lr.intent_id = f.intent_id;
                memcpy(lr.prev_hash, f.prev, LEDGER_HASH_LEN);
                r = ledger_event_hash(&lr, f.prev, h);
                free(orig);
                if (r < 0)
                        goto out;
                if (memcmp(h, f.hash, LEDGER_HASH_LEN)) {
                        fault(rep, LEDGER_FAULT_EDITED, row->id,
                              "event %lld (%s %s %s, forwarded from spool %.12s seq %lld): edited: it no longer "
                              "matches the hash it had in the station's spool",
                              (long long)row->id, row->time, row->command, row->ecid ? row->ecid : "-", f.spool,
                              (long long)f.seq);
                        goto done;
                }
                t = track_get(&tr, &ntr, f.spool);
                if (!t) {
                        r = -ENOMEM;
                        goto out;
                }
                if (f.seq != t->last_seq + 1) {
                        fault(rep, LEDGER_FAULT_DELETED, row->id,
                              "event %lld (forwarded from spool %.12s seq %lld): spool events %lld..%lld before it "
                              "are not on the central ledger in order",
                              (long long)row->id, f.spool, (long long)f.seq, (long long)t->last_seq + 1,
                              (long long)f.seq - 1);
                        goto done;
                }
                hex_encode(f.hash, LEDGER_HASH_LEN, hex);
                if (memcmp(f.prev, t->last_seq ? t->last_hash : zero, LEDGER_HASH_LEN) ||
                    (f.seq == 1 && strcmp(f.spool, hex))) {
                        fault(rep, LEDGER_FAULT_BROKEN_LINK, row->id,
                              "event %lld (forwarded from spool %.12s seq %lld): broken link: it did not follow "
                              "spool event %lld there",
                              (long long)row->id, f.spool, (long long)f.seq, (long long)t->last_seq);
                        goto done;
                }
                if (f.intent_id) {
                        mapped = f.intent_id <= t->last_seq ? t->central[f.intent_id - 1] : 0;
                        if (row->intent_id != mapped || !mapped) {
                                fault(rep, LEDGER_FAULT_EDITED, row->id,
                                      "event %lld (forwarded from spool %.12s seq %lld): closes intent %lld, but its "
                                      "local intent %lld was forwarded as event %lld",
                                      (long long)row->id, f.spool, (long long)f.seq, (long long)row->intent_id,
                                      (long long)f.intent_id, (long long)mapped);
                                goto done;
                        }
                }
                if ((size_t)f.seq > t->cap) {
                        size_t nc = t->cap ? t->cap * 2 : 64;
                        int64_t *na = realloc(t->central, nc * sizeof(*na));
                        if (!na) {
                                r = -ENOMEM;
                                goto out;
                        }
                        t->central = na;
                        t->cap = nc;
                }
                t->central[f.seq - 1] = row->id;
                t->last_seq = f.seq;
                memcpy(t->last_hash, f.hash, LEDGER_HASH_LEN);
        }
        if (r < 0)
                goto out;
        ledger_iter_free(it);
        it = NULL;
        /* The idempotency rows must be exactly the forwarded events. */
        r = query_int(l, "SELECT count(*) FROM forwarded", NULL, 0, &nrows);
        if (r < 0)
                goto out;
        if (nrows != nfwd) {
                fault(rep, LEDGER_FAULT_STATE, 0,
                      "table forwarded has %lld rows but %lld events carry a forwarded proof", (long long)nrows,
                      (long long)nfwd);
                goto done;
        }
        for (size_t i = 0; i < ntr; i++)
                for (int64_t s = 1; s <= tr[i].last_seq; s++) {
                        int64_t ev = 0;
                        r = query_int(l, "SELECT event_id FROM forwarded WHERE spool = ?1 AND seq = ?2", tr[i].id, s,
                                      &ev);
                        if (r < 0 && r != -ENOENT)
                                goto out;
                        if (r == -ENOENT || ev != tr[i].central[s - 1]) {
                                fault(rep, LEDGER_FAULT_STATE, tr[i].central[s - 1],
                                      "event %lld (forwarded from spool %.12s seq %lld): table forwarded says event "
                                      "%lld",
                                      (long long)tr[i].central[s - 1], tr[i].id, (long long)s, (long long)ev);
                                goto done;
                        }
                }
done:
        r = 0;
out:
        ledger_iter_free(it);
        for (size_t i = 0; i < ntr; i++)
                free(tr[i].central);
        free(tr);
        return r;
}
