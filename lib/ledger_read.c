/* ledger_read.c — reading events back (filters, iteration) and the
 * device and certificate queries. */
#include "ledger_int.h"

/* ---- reading events ----------------------------------------------------- */

const char *row_load(sqlite3_stmt *st, struct ledger_row *row)
{
        static const char *const names[] = { "id", "time", "station", "operator", "command", "ecid",
                                             "kind", "intent_id", "outcome", "details" };
        const char **text[] = { NULL, &row->time, &row->station, &row->operator, &row->command, &row->ecid,
                                &row->kind, NULL, &row->outcome, &row->details };
        static _Thread_local char why[96];
        const char *problem = NULL;

        memset(row, 0, sizeof(*row));
        row->id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
                problem = "id is not an integer";
        for (int i = 1; i < 10; i++) {
                const char *t;
                int type;
                if (!text[i])
                        continue;
                type = sqlite3_column_type(st, i);
                t = (const char *)sqlite3_column_text(st, i);
                if (i == 5 && type == SQLITE_NULL) {
                        *text[i] = NULL;
                        continue;
                }
                *text[i] = t ? t : "";
                if (!problem && (type != SQLITE_TEXT || !t || (size_t)sqlite3_column_bytes(st, i) != strlen(t))) {
                        snprintf(why, sizeof(why), "column %s is not text", names[i]);
                        problem = why;
                }
        }
        if (sqlite3_column_type(st, 7) == SQLITE_INTEGER) {
                row->intent_id = sqlite3_column_int64(st, 7);
                if (row->intent_id <= 0 && !problem)
                        problem = "column intent_id is not a positive integer";
        } else if (sqlite3_column_type(st, 7) != SQLITE_NULL && !problem) {
                problem = "column intent_id is not an integer";
        }
        for (int i = 10; i < 12; i++) {
                unsigned char *dst = i == 10 ? row->prev_hash : row->hash;
                if (sqlite3_column_type(st, i) == SQLITE_BLOB && sqlite3_column_bytes(st, i) == LEDGER_HASH_LEN) {
                        memcpy(dst, sqlite3_column_blob(st, i), LEDGER_HASH_LEN);
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
        struct ledger_iter *it;
        char sql[512];
        int r;

        snprintf(sql, sizeof(sql), "SELECT " EVENT_COLS " FROM events WHERE 1%s%s%s ORDER BY id",
                 f && f->since ? " AND time >= ?1" : "", f && f->ecid ? " AND ecid = ?2" : "",
                 f && f->intents_open
                         ? " AND kind = 'intent' AND NOT EXISTS (SELECT 1 FROM events r WHERE r.intent_id = events.id)"
                         : "");
        it = calloc(1, sizeof(*it));
        if (!it)
                return -ENOMEM;
        it->l = l;
        r = stmt(l, sql, &it->st);
        if (r < 0) {
                free(it);
                return r;
        }
        if (f && f->since)
                sqlite3_bind_text(it->st, 1, f->since, -1, SQLITE_TRANSIENT);
        if (f && f->ecid)
                sqlite3_bind_text(it->st, 2, f->ecid, -1, SQLITE_TRANSIENT);
        *ret = it;
        return 0;
}

int ledger_iter_next(struct ledger_iter *it, const struct ledger_row **ret)
{
        int rc = sqlite3_step(it->st);

        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return sql_err(it->l, rc, "reading events");
        (void)row_load(it->st, &it->row);
        *ret = &it->row;
        return 1;
}

void ledger_iter_free(struct ledger_iter *it)
{
        if (!it)
                return;
        sqlite3_finalize(it->st);
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
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT ecid, chip, module, serial, first_seen, last_seen, state FROM devices WHERE ecid = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
                r = -ENOENT;
                goto out;
        }
        if (rc != SQLITE_ROW) {
                r = sql_err(l, rc, "reading the device");
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
        sqlite3_finalize(st);
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

static int cert_load(sqlite3_stmt *st, struct ledger_cert_info *c)
{
        int n;

        memset(c, 0, sizeof(*c));
        if (col_dup(st, 0, &c->fingerprint) < 0 || col_dup(st, 1, &c->ecid) < 0 || col_dup(st, 2, &c->issuer) < 0 ||
            col_dup(st, 3, &c->serial) < 0 || col_dup(st, 4, &c->not_before) < 0 ||
            col_dup(st, 5, &c->not_after) < 0 || col_dup(st, 6, &c->status) < 0 || col_dup(st, 7, &c->added) < 0)
                goto nomem;
        n = sqlite3_column_bytes(st, 8);
        c->der = malloc(n > 0 ? (size_t)n : 1);
        if (!c->der)
                goto nomem;
        if (n > 0)
                memcpy(c->der, sqlite3_column_blob(st, 8), (size_t)n);
        c->der_len = n > 0 ? (size_t)n : 0;
        return 0;
nomem:
        ledger_cert_info_clear(c);
        return -ENOMEM;
}

int ledger_cert_current(struct ledger *l, const char *ecid, struct ledger_cert_info *ret)
{
        struct ledger_cert_info c;
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = stmt(l, "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 AND status = 'valid'", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                r = -ENOENT;
        else if (rc != SQLITE_ROW)
                r = sql_err(l, rc, "reading certificates");
        else if ((r = cert_load(st, &c)) == 0)
                *ret = c;
        sqlite3_finalize(st);
        return r;
}

int ledger_cert_list(struct ledger *l, const char *ecid, struct ledger_cert_info **ret, size_t *ret_n)
{
        struct ledger_cert_info *list = NULL;
        sqlite3_stmt *st = NULL;
        size_t n = 0;
        int rc, r;

        r = stmt(l, "SELECT " CERT_COLS " FROM certificates WHERE ecid = ?1 ORDER BY added, rowid", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, ecid, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
        if (rc != SQLITE_DONE) {
                r = sql_err(l, rc, "reading certificates");
                goto out;
        }
        *ret = list;
        *ret_n = n;
        list = NULL;
        n = 0;
        r = 0;
out:
        ledger_cert_list_free(list, n);
        sqlite3_finalize(st);
        return r;
}
