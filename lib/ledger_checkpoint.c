/* ledger_checkpoint.c — signed checkpoints of the chain head: the message
 * signed, adding one, and checking them against trusted keys. */
#include "ledger_int.h"

/* ---- signed checkpoints ------------------------------------------------- */

#define CHECKPOINT_TAG "fuseline-checkpoint/1"

int ledger_head(struct ledger *l, int64_t *ret_id, unsigned char ret_hash[LEDGER_HASH_LEN])
{
        struct ldb_stmt *st = NULL;
        int rc, r;

        r = ldb_prepare(l, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = ldb_step(st);
        if (rc == 1 && col_hash(st, 1)) {
                *ret_id = ldb_col_int64(st, 0);
                memcpy(ret_hash, col_hash(st, 1), LEDGER_HASH_LEN);
        } else if (rc == 0) {
                *ret_id = 0;
                memset(ret_hash, 0, LEDGER_HASH_LEN);
        } else {
                r = rc == 1 ? fl_err(l->ctx, -EBADMSG, "ledger %s: the newest event's hash is malformed", l->name)
                                     : db_fail(l, rc, "reading the newest event");
        }
        ldb_finalize(st);
        return r;
}

int ledger_checkpoint_message(int64_t event_id, const unsigned char head[LEDGER_HASH_LEN], const char *time,
                              unsigned char **ret, size_t *ret_len)
{
        struct fl_buf b = { 0 };
        int r = 0;

        r |= canon_str(&b, CHECKPOINT_TAG);
        r |= canon_int(&b, event_id);
        r |= canon_field(&b, head, LEDGER_HASH_LEN);
        r |= canon_str(&b, time);
        if (r) {
                free(b.p);
                return -ENOMEM;
        }
        *ret = b.p;
        *ret_len = b.len;
        return 0;
}

int ledger_checkpoint_tbs(fl_ctx *ctx, const struct ledger_checkpoint *cp, enum sign_scheme s, struct sign_tbs *ret)
{
        unsigned char *msg = NULL, md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        size_t msg_len;
        int r;

        r = ledger_checkpoint_message(cp->event_id, cp->head, cp->time, &msg, &msg_len);
        if (r < 0)
                return r;
        if (!sign_scheme_prehashed(s)) {
                *ret = (struct sign_tbs){ .data = msg, .len = msg_len };
                return 0;
        }
        if (!EVP_Digest(msg, msg_len, md, &mdlen, EVP_get_digestbyname(sign_scheme_md(s)), NULL)) {
                r = fl_err(ctx, -EIO, "checkpoint digest failed (%s)", ossl_errstr());
                goto out;
        }
        ret->data = malloc(mdlen);
        if (!ret->data) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(ret->data, md, mdlen);
        ret->len = mdlen;
        ret->is_digest = true;
        r = 0;
out:
        free(msg);
        return r;
}

/* The checkpoint's signature against its own public key: 0, or -EBADMSG
 * (or -EINVAL for an unusable key/scheme) with the reason on ctx. */
static int checkpoint_sig_check(fl_ctx *ctx, const struct ledger_checkpoint *cp)
{
        enum sign_scheme s = SCHEME_NONE;
        const unsigned char *p = cp->public_key;
        struct sign_tbs tbs = { 0 };
        EVP_PKEY *pkey = NULL;
        int r;

        r = sign_scheme_parse(ctx, cp->scheme ? cp->scheme : "", &s);
        if (r < 0)
                return r;
        if (sign_scheme_is_mac(s))
                return fl_err(ctx, -EINVAL, "checkpoint scheme %s is a MAC; a checkpoint needs a public-key signature",
                              cp->scheme);
        if (!p || !cp->public_key_len || !(pkey = d2i_PUBKEY(NULL, &p, (long)cp->public_key_len)) ||
            p != cp->public_key + cp->public_key_len) {
                r = fl_err(ctx, -EINVAL, "checkpoint public key is not one DER SubjectPublicKeyInfo");
                goto out;
        }
        r = ledger_checkpoint_tbs(ctx, cp, s, &tbs);
        if (r < 0)
                goto out;
        r = sign_verify_pkey(ctx, pkey, s, &tbs, cp->signature, cp->signature_len);
out:
        sign_tbs_free(&tbs);
        EVP_PKEY_free(pkey);
        return r;
}

/* One attempt in one write transaction; -EAGAIN: repeat it. */
static int checkpoint_txn(struct ledger *l, const struct ledger_checkpoint *cp, int64_t *ret_id)
{
        unsigned char have[LEDGER_HASH_LEN];
        struct ldb_stmt *st = NULL;
        bool found = false;
        int64_t id = 0;
        int rc, r;

        r = ldb_begin_write(l);
        if (r < 0)
                return r;
        r = ldb_prepare(l, "SELECT hash FROM events WHERE id = ?1", &st);
        if (r < 0)
                goto fail;
        ldb_bind_int64(st, 1, cp->event_id);
        rc = ldb_step(st);
        if (rc == 1 && col_hash(st, 0)) {
                memcpy(have, col_hash(st, 0), LEDGER_HASH_LEN);
                found = true;
        } else if (rc < 0) {
                r = db_fail(l, rc, "reading the checkpointed event");
                goto fail;
        }
        ldb_finalize(st);
        st = NULL;
        if (!found || memcmp(have, cp->head, LEDGER_HASH_LEN)) {
                r = fl_err(l->ctx, -EBADMSG, "checkpoint: event %lld %s", (long long)cp->event_id,
                           found ? "has another hash than the one signed" : "does not exist");
                goto fail;
        }
        r = ldb_prepare(l,
                        "INSERT INTO checkpoints (time, event_id, head_hash, role, key_uri, scheme, public_key, "
                        "signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                        &st);
        if (r < 0)
                goto fail;
        ldb_bind_text(st, 1, cp->time);
        ldb_bind_int64(st, 2, cp->event_id);
        ldb_bind_blob(st, 3, cp->head, LEDGER_HASH_LEN);
        ldb_bind_text(st, 4, cp->role);
        ldb_bind_text(st, 5, cp->key_uri);
        ldb_bind_text(st, 6, cp->scheme);
        ldb_bind_blob(st, 7, cp->public_key, cp->public_key_len);
        ldb_bind_blob(st, 8, cp->signature, cp->signature_len);
        rc = ldb_step(st);
        if (rc == 1) {
                id = ldb_col_int64(st, 0);
                rc = ldb_step(st);
        }
        if (rc < 0) {
                r = db_fail(l, rc, "storing the checkpoint");
                goto fail;
        }
        ldb_finalize(st);
        st = NULL;
        r = ldb_commit(l);
        if (r < 0) {
                r = db_fail(l, r, "committing the checkpoint");
                goto fail;
        }
        if (ret_id)
                *ret_id = id;
        return 0;
fail:
        ldb_finalize(st);
        ldb_rollback(l);
        return r;
}

int ledger_checkpoint_add(struct ledger *l, const struct ledger_checkpoint *cp, int64_t *ret_id)
{
        uint64_t deadline;
        int r;

        if (l->mode != LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: opened for reading only", l->name);
        if (!time_is_canonical(cp->time))
                return fl_err(l->ctx, -EINVAL, "checkpoint: time '%.64s' is not YYYY-MM-DDTHH:MM:SSZ", cp->time);
        if ((r = check_text(l->ctx, "checkpoint role", cp->role, LEDGER_FIELD_MAX)) < 0 ||
            (r = check_text(l->ctx, "checkpoint key URI", cp->key_uri, 4096)) < 0)
                return r;
        if (!cp->signature || cp->signature_len == 0 || cp->signature_len > SIGN_RAW_MAX)
                return fl_err(l->ctx, -EINVAL, "checkpoint: signature is empty or too long");
        r = checkpoint_sig_check(l->ctx, cp);
        if (r < 0)
                return r;
        deadline = mono_ms() + l->busy_ms;
        for (;;) {
                r = checkpoint_txn(l, cp, ret_id);
                if (r != -EAGAIN || mono_ms() >= deadline)
                        break;
                sleep_ms(1 + (unsigned)(rand() % 10));
        }
        if (r == -EAGAIN)
                r = fl_err(l->ctx, -EBUSY, "ledger %s: other writers held the database for more than %u ms", l->name,
                           l->busy_ms);
        return r;
}

int verify_checkpoints(struct ledger *l, struct ledger_report *rep, const struct ledger_trust *trust,
                       size_t n_trust)
{
        struct ldb_stmt *st = NULL;
        int rc, r;

        if (l->version < 2)
                return 0;
        r = ldb_prepare(l,
                 "SELECT c.id, c.time, c.event_id, c.head_hash, c.role, c.key_uri, c.scheme, c.public_key, "
                 "c.signature, e.hash FROM checkpoints c LEFT JOIN events e ON e.id = c.event_id ORDER BY c.id",
                 &st);
        if (r < 0)
                return r;
        while ((rc = ldb_step(st)) == 1) {
                struct ledger_checkpoint cp = { 0 };
                long long id = ldb_col_int64(st, 0);
                const char *time = ldb_col_text(st, 1);
                size_t now_len = 0;
                const unsigned char *now_hash = ldb_col_blob(st, 9, &now_len);
                unsigned char md[EVP_MAX_MD_SIZE];
                char fpr[2 * LEDGER_HASH_LEN + 1];
                unsigned int mdlen = 0;

                rep->n_checkpoints++;
                snprintf(cp.time, sizeof(cp.time), "%s", time ? time : "");
                cp.event_id = ldb_col_int64(st, 2);
                cp.role = ldb_col_text(st, 4);
                cp.key_uri = ldb_col_text(st, 5);
                cp.scheme = ldb_col_text(st, 6);
                cp.public_key = ldb_col_blob(st, 7, &cp.public_key_len);
                cp.signature = ldb_col_blob(st, 8, &cp.signature_len);
                if (!col_hash(st, 3) || !cp.role) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id, "checkpoint %lld: malformed", id);
                        goto done;
                }
                memcpy(cp.head, col_hash(st, 3), LEDGER_HASH_LEN);
                if (!now_hash) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                              "event %lld: deleted: checkpoint %lld signed it, it is gone", (long long)cp.event_id, id);
                        goto done;
                }
                if (now_len != LEDGER_HASH_LEN || memcmp(now_hash, cp.head, LEDGER_HASH_LEN)) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                              "event %lld: rewritten: its hash is not the one checkpoint %lld signed",
                              (long long)cp.event_id, id);
                        goto done;
                }
                fl_err_clear(l->ctx);
                if (checkpoint_sig_check(l->ctx, &cp) < 0) {
                        fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id, "checkpoint %lld (event %lld): %s", id,
                              (long long)cp.event_id,
                              fl_ctx_last_error(l->ctx) ? fl_ctx_last_error(l->ctx) : "bad signature");
                        fl_err_clear(l->ctx);
                        goto done;
                }
                if (trust) {
                        const struct ledger_trust *t = NULL;
                        for (size_t i = 0; i < n_trust; i++)
                                if (trust[i].role && !strcmp(trust[i].role, cp.role))
                                        t = &trust[i];
                        EVP_Digest(cp.public_key, cp.public_key_len, md, &mdlen, EVP_sha256(), NULL);
                        hex_encode(md, LEDGER_HASH_LEN, fpr);
                        if (!t) {
                                fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                                      "checkpoint %lld: signed by role '%.64s', which the keyset does not have", id,
                                      cp.role);
                                goto done;
                        }
                        if (!t->public_key_sha256 || strcmp(t->public_key_sha256, fpr)) {
                                fault(rep, LEDGER_FAULT_CHECKPOINT, cp.event_id,
                                      "checkpoint %lld: signed by key sha256:%s, not the keyset's '%.64s' key", id, fpr,
                                      cp.role);
                                goto done;
                        }
                }
                rep->checkpoint_event = cp.event_id;
                snprintf(rep->checkpoint_role, sizeof(rep->checkpoint_role), "%s", cp.role);
        }
        if (rc != 0) {
                r = db_fail(l, rc, "reading checkpoints");
                goto out;
        }
done:
        r = 0;
out:
        ldb_finalize(st);
        return r;
}
