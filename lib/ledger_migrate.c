/* ledger_migrate.c — moving a ledger to another location (a station's
 * SQLite file to the central PostgreSQL ledger, or any backend to any):
 * verbatim, so the ids, the bytes and therefore every hash and signed
 * checkpoint stay valid, in one transaction, and safe to re-run. Written on
 * the storage interface (ledger_db.h) only. */
#include "ledger_db.h"
#include "ledger_int.h"

static const char *lname(const struct ledger *l)
{
        return l->name;
}

/* Bind column i of a source row to parameter i+1 of a target statement,
 * whatever its type (the values pass through unchanged). */
static int bind_col(struct ldb_stmt *src, int i, struct ldb_stmt *dst)
{
        const void *p;
        size_t n = 0;

        switch (ldb_col_type(src, i)) {
        case LDB_NULL:
                return ldb_bind_null(dst, i + 1);
        case LDB_INT:
                return ldb_bind_int64(dst, i + 1, ldb_col_int64(src, i));
        case LDB_BLOB:
                p = ldb_col_blob(src, i, &n);
                return ldb_bind_blob(dst, i + 1, p ? p : "", n);
        case LDB_TEXT:
                return ldb_bind_text(dst, i + 1, ldb_col_text(src, i));
        default:
                return -EBADMSG;
        }
}

/* Copy the rows a source query yields through a target statement taking
 * the same columns. skip (may be NULL) is a target query taking the row's
 * first column: a row it finds is there already and is not copied. */
static int copy_rows(struct ledger *src, struct ledger *dst, const char *what, const char *sel, const char *ins,
                     const char *skip, int ncols, int64_t *ret_n)
{
        struct ldb_stmt *s = NULL, *d = NULL, *k = NULL;
        int64_t n = 0;
        int r;

        r = ldb_prepare(src, sel, &s);
        if (r >= 0)
                r = ldb_prepare(dst, ins, &d);
        if (r >= 0 && skip)
                r = ldb_prepare(dst, skip, &k);
        while (r >= 0 && (r = ldb_step(s)) == 1) {
                if (k) {
                        ldb_reset(k);
                        r = bind_col(s, 0, k);
                        if (r >= 0)
                                r = ldb_step(k);
                        if (r < 0)
                                break;
                        if (r == 1)
                                continue;
                }
                ldb_reset(d);
                for (int i = 0; i < ncols && r >= 0; i++)
                        r = bind_col(s, i, d);
                if (r == -EBADMSG)
                        r = fl_err(src->ctx, -EBADMSG, "ledger %s: a %s row has a column of an unknown type",
                                   lname(src), what);
                if (r >= 0)
                        r = ldb_step(d);
                if (r < 0)
                        break;
                n++;
        }
        ldb_finalize(k);
        ldb_finalize(d);
        ldb_finalize(s);
        if (r < 0)
                return r;
        if (ret_n)
                *ret_n = n;
        return 0;
}

static int resync_ids(struct ledger *l)
{
        struct ldb_stmt *st = NULL;
        int r = ldb_prepare_q(l, LDBQ_CHECKPOINT_IDS_RESYNC, &st);

        while (r >= 0 && (r = ldb_step(st)) == 1)
                ;
        ldb_finalize(st);
        return r;
}

/* The target's events must be the source's first ones (ids and hashes).
 * Returns the number of target events. */
static int check_prefix(struct ledger *src, struct ledger *dst, int64_t *ret_n)
{
        struct ledger_iter *is = NULL, *id = NULL;
        const struct ledger_row *rs, *rd;
        int64_t n = 0;
        int r;

        r = ledger_iter_new(src, NULL, &is);
        if (r >= 0)
                r = ledger_iter_new(dst, NULL, &id);
        while (r >= 0 && (r = ledger_iter_next(id, &rd)) > 0) {
                r = ledger_iter_next(is, &rs);
                if (r < 0)
                        break;
                if (r == 0 || rs->id != rd->id || memcmp(rs->hash, rd->hash, LEDGER_HASH_LEN) ||
                    memcmp(rs->prev_hash, rd->prev_hash, LEDGER_HASH_LEN)) {
                        r = fl_err(dst->ctx, -EEXIST,
                                   "ledger %s is not empty and is not this ledger's chain: its event %lld %s; "
                                   "refusing to mix two ledgers (migrate into an empty one)",
                                   lname(dst), (long long)rd->id,
                                   r == 0 ? "is past the source's last event" : "differs from the source's");
                        break;
                }
                n++;
        }
        ledger_iter_free(id);
        ledger_iter_free(is);
        if (r < 0)
                return r;
        if (n == 0) {
                /* No events, but rows of its own: not an empty ledger. */
                static const char *const tables[] = { "devices", "certificates", "checkpoints" };
                for (size_t i = 0; i < FL_ARRAY_SIZE(tables); i++) {
                        struct ldb_stmt *st = NULL;
                        char sql[64];
                        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 1", tables[i]);
                        r = ldb_prepare(dst, sql, &st);
                        if (r >= 0)
                                r = ldb_step(st);
                        ldb_finalize(st);
                        if (r < 0)
                                return r;
                        if (r == 1)
                                return fl_err(dst->ctx, -EEXIST, "ledger %s has no events but holds %s: not an "
                                              "empty ledger; refusing to mix two ledgers", lname(dst), tables[i]);
                }
        }
        *ret_n = n;
        return 0;
}

static int import(struct ledger *src, struct ledger *dst, struct ledger_migrate_report *rep)
{
        struct ledger_iter *it = NULL;
        const struct ledger_row *row;
        int64_t have = 0, n = 0;
        int r;

        r = check_prefix(src, dst, &have);
        if (r < 0)
                return r;
        r = ledger_iter_new(src, NULL, &it);
        if (r < 0)
                return r;
        while ((r = ledger_iter_next(it, &row)) > 0) {
                rep->events++;
                if (row->id <= have)
                        continue;
                r = event_insert_raw(dst, row);
                if (r < 0)
                        break;
                n++;
        }
        ledger_iter_free(it);
        if (r < 0)
                return r;
        rep->imported = n;

        /* Devices: new ones inserted, known ones take the source's row
         * (the source is the newer state of the same chain). */
        r = copy_rows(src, dst, "device",
                      "SELECT ecid, chip, module, serial, first_seen, last_seen, state FROM devices ORDER BY ecid",
                      "INSERT INTO devices (ecid, chip, module, serial, first_seen, last_seen, state) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (ecid) DO UPDATE SET chip = excluded.chip, "
                      "module = excluded.module, serial = excluded.serial, last_seen = excluded.last_seen, "
                      "state = excluded.state",
                      NULL, 7, &rep->devices);
        if (r < 0)
                return r;
        /* Certificates: only a status changes; supersede first, so the one
         * valid certificate per ECID stays one. */
        r = copy_rows(src, dst, "certificate",
                      "SELECT fingerprint, status FROM certificates WHERE status <> 'valid'",
                      "UPDATE certificates SET status = ?2 WHERE fingerprint = ?1 AND status <> ?2", NULL, 2, NULL);
        if (r >= 0)
                r = copy_rows(src, dst, "certificate",
                              "SELECT fingerprint, ecid, der, issuer, serial, not_before, not_after, status, added "
                              "FROM certificates ORDER BY added, fingerprint",
                              "INSERT INTO certificates (fingerprint, ecid, der, issuer, serial, not_before, "
                              "not_after, status, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                              "SELECT 1 FROM certificates WHERE fingerprint = ?1", 9, &rep->certificates);
        if (r < 0)
                return r;
        if (src->version >= 2) {
                r = copy_rows(src, dst, "checkpoint",
                              "SELECT id, time, event_id, head_hash, role, key_uri, scheme, public_key, signature "
                              "FROM checkpoints ORDER BY id",
                              "INSERT INTO checkpoints (id, time, event_id, head_hash, role, key_uri, scheme, "
                              "public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                              "SELECT 1 FROM checkpoints WHERE id = ?1", 9, &rep->checkpoints);
                if (r >= 0)
                        r = resync_ids(dst);
                if (r < 0)
                        return r;
        }
        if (src->version >= 3) {
                /* A central ledger's upload keys move with it (else a spool
                 * could upload its events a second time); a spool's marks too. */
                r = copy_rows(src, dst, "forwarded", "SELECT event_id, spool, seq FROM forwarded ORDER BY event_id",
                              "INSERT INTO forwarded (event_id, spool, seq) VALUES (?1, ?2, ?3)",
                              "SELECT 1 FROM forwarded WHERE event_id = ?1", 3, NULL);
                if (r >= 0)
                        r = copy_rows(src, dst, "spool_uploaded",
                                      "SELECT seq, event_id, central, time FROM spool_uploaded ORDER BY seq",
                                      "INSERT INTO spool_uploaded (seq, event_id, central, time) "
                                      "VALUES (?1, ?2, ?3, ?4)",
                                      "SELECT 1 FROM spool_uploaded WHERE seq = ?1", 4, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Inside dst's write transaction and src's read snapshot: verify the
 * source as this snapshot holds it (what import copies is exactly what was
 * verified: events appended after a separate check would go unchecked),
 * copy, then verify the destination as it stands before COMMIT, so a
 * destination that fails keeps nothing of the import. */
static int migrate_tx(struct ledger *src, struct ledger *dst, struct ledger_migrate_report *rep)
{
        struct ledger_report vr = { 0 };
        int r;

        r = ledger_verify_in_tx(src, &vr);
        if (r < 0)
                return r;
        if (vr.fault != LEDGER_FAULT_NONE) {
                r = fl_err(src->ctx, -EBADMSG, "ledger %s: %s: %s; refusing to migrate a broken chain", lname(src),
                           ledger_fault_name(vr.fault), vr.message);
                ledger_report_clear(&vr);
                return r;
        }
        ledger_report_clear(&vr);
        r = import(src, dst, rep);
        if (r < 0)
                return r;
        r = ledger_verify_in_tx(dst, &vr);
        if (r < 0)
                return r;
        if (vr.fault != LEDGER_FAULT_NONE) {
                r = fl_err(dst->ctx, -EBADMSG, "ledger %s with the import: %s: %s; nothing imported (rolled back)",
                           lname(dst), ledger_fault_name(vr.fault), vr.message);
                ledger_report_clear(&vr);
                return r;
        }
        ledger_report_clear(&vr);
        return 0;
}

int ledger_migrate(struct ledger *src, struct ledger *dst, struct ledger_migrate_report *ret)
{
        struct ledger_migrate_report rep = { 0 };
        uint64_t deadline;
        int r;

        if (!src || !dst || !ret)
                return -EINVAL;
        if (dst->mode != LEDGER_WRITE)
                return fl_err(dst->ctx, -EINVAL, "ledger %s: opened for reading only", lname(dst));

        deadline = mono_ms() + dst->busy_ms;
        for (;;) {
                memset(&rep, 0, sizeof(rep));
                r = ldb_begin_write(dst);
                if (r >= 0)
                        r = ldb_begin_read(src);
                if (r >= 0)
                        r = migrate_tx(src, dst, &rep);
                if (ldb_in_transaction(src))
                        ldb_rollback(src);
                if (r >= 0)
                        r = ldb_commit(dst);
                if (r < 0)
                        ldb_rollback(dst);
                if ((r != -EAGAIN && r != -EBUSY) || mono_ms() >= deadline)
                        break;
                sleep_ms(5 + (unsigned)(rand() % 20));
        }
        if (r < 0)
                return r;
        *ret = rep;
        return 0;
}
