/* ledger_read.c — reading events back (filters, iteration) and the
 * device and certificate queries. */
#include "ledger_int.h"

/* ---- reading events ----------------------------------------------------- */

const char *row_load(struct ldb_stmt *st, struct ledger_row *row)
{
        static const char *const names[] = { "id", "time", "station", "operator", "command", "ecid",
                                             "kind", "intent_id", "outcome", "details" };
        const char **text[] = { NULL, &row->time, &row->station, &row->operator, &row->command, &row->ecid,
                                &row->kind, NULL, &row->outcome, &row->details };
        static _Thread_local char why[96];
        const char *problem = NULL, *id_type, *intent_type;

        memset(row, 0, sizeof(*row));
        /* Columns 12 and 13 (LDBQ_EVENT_COLS): the storage types of id and
         * intent_id, which a tampered row may have changed. */
        row->id = ldb_col_int64(st, 0);
        id_type = ldb_col_text(st, 12);
        if (!id_type || strcmp(id_type, "integer"))
                problem = "id is not an integer";
        for (int i = 1; i < 10; i++) {
                const char *t;
                enum ldb_type type;
                size_t n = 0;
                if (!text[i])
                        continue;
                type = ldb_col_type(st, i);
                t = ldb_col_text(st, i);
                if (i == 5 && type == LDB_NULL) {
                        *text[i] = NULL;
                        continue;
                }
                *text[i] = t ? t : "";
                /* The text's bytes: an embedded NUL would hide the rest. */
                if (t && type == LDB_TEXT)
                        (void)ldb_col_blob(st, i, &n);
                if (!problem && (type != LDB_TEXT || !t || n != strlen(t))) {
                        snprintf(why, sizeof(why), "column %s is not text", names[i]);
                        problem = why;
                }
        }
        intent_type = ldb_col_text(st, 13);
        if (intent_type && !strcmp(intent_type, "integer")) {
                row->intent_id = ldb_col_int64(st, 7);
                if (row->intent_id <= 0 && !problem)
                        problem = "column intent_id is not a positive integer";
        } else if ((!intent_type || strcmp(intent_type, "null")) && !problem) {
                problem = "column intent_id is not an integer";
        }
        for (int i = 10; i < 12; i++) {
                unsigned char *dst = i == 10 ? row->prev_hash : row->hash;
                if (ldb_col_type(st, i) == LDB_BLOB && col_hash(st, i)) {
                        memcpy(dst, col_hash(st, i), LEDGER_HASH_LEN);
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
        bool since = f && f->since, ecid = f && f->ecid;
        struct ledger_iter *it;
        char sql[512];
        int r;

        /* Placeholders numbered without gaps: PostgreSQL cannot type an
         * unused $1. */
        snprintf(sql, sizeof(sql), "WHERE 1 = 1%s%s%s ORDER BY id", since ? " AND time >= ?1" : "",
                 ecid ? (since ? " AND ecid = ?2" : " AND ecid = ?1") : "",
                 f && f->intents_open
                         ? " AND kind = 'intent' AND NOT EXISTS (SELECT 1 FROM events r WHERE r.intent_id = events.id)"
                         : "");
        it = calloc(1, sizeof(*it));
        if (!it)
                return -ENOMEM;
        it->l = l;
        r = prepare_events(l, sql, &it->st);
        if (r < 0) {
                free(it);
                return r;
        }
        if (since)
                ldb_bind_text(it->st, 1, f->since);
        if (ecid)
                ldb_bind_text(it->st, since ? 2 : 1, f->ecid);
        *ret = it;
        return 0;
}

int ledger_iter_next(struct ledger_iter *it, const struct ledger_row **ret)
{
        int rc = ldb_step(it->st);

        if (rc == 0)
                return 0;
        if (rc < 0)
                return db_fail(it->l, rc, "reading events");
        (void)row_load(it->st, &it->row);
        *ret = &it->row;
        return 1;
}

void ledger_iter_free(struct ledger_iter *it)
{
        if (!it)
                return;
        ldb_finalize(it->st);
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
        struct ldb_stmt *st = NULL;
        int rc, r;

        r = ldb_prepare(l, "SELECT ecid, chip, module, serial, first_seen, last_seen, state FROM devices WHERE ecid = ?1", &st);
        if (r < 0)
                return r;
        ldb_bind_text(st, 1, ecid);
        rc = ldb_step(st);
        if (rc == 0) {
                r = -ENOENT;
                goto out;
        }
        if (rc != 1) {
                r = db_fail(l, rc, "reading the device");
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
        ldb_finalize(st);
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

static int cert_load(struct ldb_stmt *st, struct ledger_cert_info *c)
{
        const void *der;
        size_t n = 0;

        memset(c, 0, sizeof(*c));
        if (col_dup(st, 0, &c->fingerprint) < 0 || col_dup(st, 1, &c->ecid) < 0 || col_dup(st, 2, &c->issuer) < 0 ||
            col_dup(st, 3, &c->serial) < 0 || col_dup(st, 4, &c->not_before) < 0 ||
            col_dup(st, 5, &c->not_after) < 0 || col_dup(st, 6, &c->status) < 0 || col_dup(st, 7, &c->added) < 0)
                goto nomem;
        der = ldb_col_blob(st, 8, &n);
        c->der = malloc(n > 0 ? n : 1);
        if (!c->der)
                goto nomem;
        if (der && n > 0)
                memcpy(c->der, der, n);
        c->der_len = der ? n : 0;
        return 0;
nomem:
        ledger_cert_info_clear(c);
        return -ENOMEM;
}

int ledger_cert_current(struct ledger *l, const char *ecid, struct ledger_cert_info *ret)
{
        struct ledger_cert_info c;
        struct ldb_stmt *st = NULL;
        int rc, r;

        r = ldb_prepare(l, "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 AND status = 'valid'", &st);
        if (r < 0)
                return r;
        ldb_bind_text(st, 1, ecid);
        rc = ldb_step(st);
        if (rc == 0)
                r = -ENOENT;
        else if (rc != 1)
                r = db_fail(l, rc, "reading certificates");
        else if ((r = cert_load(st, &c)) == 0)
                *ret = c;
        ldb_finalize(st);
        return r;
}

int ledger_cert_list(struct ledger *l, const char *ecid, struct ledger_cert_info **ret, size_t *ret_n)
{
        struct ledger_cert_info *list = NULL;
        struct ldb_stmt *st = NULL;
        size_t n = 0;
        int rc, r;

        r = ldb_prepare_q(l, LDBQ_CERTS_OF_ECID, &st);
        if (r < 0)
                return r;
        ldb_bind_text(st, 1, ecid);
        while ((rc = ldb_step(st)) == 1) {
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
        if (rc != 0) {
                r = db_fail(l, rc, "reading certificates");
                goto out;
        }
        *ret = list;
        *ret_n = n;
        list = NULL;
        n = 0;
        r = 0;
out:
        ledger_cert_list_free(list, n);
        ldb_finalize(st);
        return r;
}
