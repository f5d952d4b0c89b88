/* ledger_append.c — appending hash-chained events: one transaction each
 * (or one per batch), safe against concurrent writers and crashes, with
 * the device and certificate tables kept in step. */
#include "ledger_int.h"

/* ---- appending ---------------------------------------------------------- */

/* Per-event values resolved before the transaction. */
struct prepared {
        char ecid[LEDGER_ECID_LEN + 1];
        bool has_ecid;
        char station[LEDGER_FIELD_MAX + 1];
        char operator[LEDGER_FIELD_MAX + 1];
        json_object *details; /* parsed caller details (owned) */
        X509 *cert;           /* parsed attached certificate (owned) */
};

static void default_station(char *out, size_t n)
{
        const char *e = ledger_default_station;

        if (e && *e) {
                snprintf(out, n, "%s", e);
                return;
        }
        if (gethostname(out, n - 1) < 0 || !out[0])
                snprintf(out, n, "unknown");
        out[n - 1] = 0;
}

static void default_operator(char *out, size_t n)
{
        const char *e = ledger_default_operator;
        struct passwd pw, *res = NULL;
        char pwbuf[1024];

        if (e && *e) {
                snprintf(out, n, "%s", e);
                return;
        }
        if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res && res->pw_name)
                snprintf(out, n, "%s", res->pw_name);
        else
                snprintf(out, n, "uid:%u", (unsigned)geteuid());
}

static int prepare_event(fl_ctx *ctx, const struct ledger_event *ev, size_t idx, struct prepared *p)
{
        int r;

        if (ev->station)
                snprintf(p->station, sizeof(p->station), "%s", ev->station);
        else
                default_station(p->station, sizeof(p->station));
        if (ev->operator)
                snprintf(p->operator, sizeof(p->operator), "%s", ev->operator);
        else
                default_operator(p->operator, sizeof(p->operator));
        if (ev->station && strlen(ev->station) > LEDGER_FIELD_MAX)
                return fl_err(ctx, -EINVAL, "ledger event: station '%.64s' is too long (at most %d bytes)",
                              ev->station, LEDGER_FIELD_MAX);
        if (ev->operator && strlen(ev->operator) > LEDGER_FIELD_MAX)
                return fl_err(ctx, -EINVAL, "ledger event: operator '%.64s' is too long (at most %d bytes)",
                              ev->operator, LEDGER_FIELD_MAX);
        r = check_text(ctx, "station", p->station, LEDGER_FIELD_MAX);
        if (r >= 0)
                r = check_text(ctx, "operator", p->operator, LEDGER_FIELD_MAX);
        if (r >= 0)
                r = check_text(ctx, "command", ev->command, LEDGER_FIELD_MAX);
        if (r >= 0)
                r = check_text(ctx, "outcome", ev->outcome, LEDGER_FIELD_MAX);
        if (r < 0)
                return r;
        if (ev->time && !time_is_canonical(ev->time))
                return fl_err(ctx, -EINVAL, "ledger event: time '%.64s' is not YYYY-MM-DDTHH:MM:SSZ", ev->time);
        if ((unsigned)ev->kind > LEDGER_RESULT)
                return fl_err(ctx, -EINVAL, "ledger event: unknown kind %d", (int)ev->kind);
        if (ev->kind == LEDGER_RESULT && ev->intent_id <= 0)
                return fl_err(ctx, -EINVAL, "ledger event: a result needs the id of the intent it closes");
        if (ev->kind != LEDGER_RESULT && ev->intent_id != 0)
                return fl_err(ctx, -EINVAL, "ledger event: only a result carries an intent id");
        if (ev->ecid) {
                r = ledger_ecid_parse(ctx, ev->ecid, p->ecid);
                if (r < 0)
                        return r;
                p->has_ecid = true;
        }
        if ((ev->device || ev->cert) && !p->has_ecid)
                return fl_err(ctx, -EINVAL, "ledger event: a device or certificate change needs the ECID");
        if (ev->device) {
                if (ev->device->chip != FL_CHIP_NONE && ev->device->chip != FL_CHIP_T194 &&
                    ev->device->chip != FL_CHIP_T234)
                        return fl_err(ctx, -EINVAL, "ledger event: unknown chip 0x%x", (unsigned)ev->device->chip);
                if ((unsigned)ev->device->state > LEDGER_STATE_FAILED)
                        return fl_err(ctx, -EINVAL, "ledger event: unknown device state %d", (int)ev->device->state);
                if (ev->device->module && (r = check_text(ctx, "module", ev->device->module, LEDGER_FIELD_MAX)) < 0)
                        return r;
                if (ev->device->serial && (r = check_text(ctx, "serial", ev->device->serial, LEDGER_FIELD_MAX)) < 0)
                        return r;
        }
        if (ev->details) {
                struct json_tokener *tok;
                enum json_tokener_error jerr;
                size_t n = strlen(ev->details);

                if (n > LEDGER_DETAILS_MAX)
                        return fl_err(ctx, -EINVAL, "ledger event: details are %zu bytes (at most %d)", n,
                                      LEDGER_DETAILS_MAX);
                tok = json_tokener_new();
                if (!tok)
                        return -ENOMEM;
                p->details = json_tokener_parse_ex(tok, ev->details, (int)n);
                jerr = json_tokener_get_error(tok);
                if (jerr == json_tokener_success && json_tokener_get_parse_end(tok) != n) {
                        json_object_put(p->details);
                        p->details = NULL;
                        jerr = json_tokener_error_parse_unexpected;
                }
                json_tokener_free(tok);
                if (!p->details || jerr != json_tokener_success ||
                    !json_object_is_type(p->details, json_type_object))
                        return fl_err(ctx, -EINVAL, "ledger event %zu: details are not a JSON object (%s)", idx,
                                      jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "other type");
                if (json_object_object_get_ex(p->details, "device", NULL) ||
                    json_object_object_get_ex(p->details, "certificate", NULL) ||
                    json_object_object_get_ex(p->details, "forwarded", NULL))
                        return fl_err(ctx, -EINVAL, "ledger event: details keys 'device', 'certificate' and "
                                      "'forwarded' are the ledger's own");
        } else {
                p->details = json_object_new_object();
                if (!p->details)
                        return -ENOMEM;
        }
        if (ev->cert) {
                const unsigned char *d = ev->cert->der;
                if (!ev->cert->der || ev->cert->der_len == 0 || ev->cert->der_len > LEDGER_CERT_MAX)
                        return fl_err(ctx, -EINVAL, "ledger event: certificate DER is empty or larger than %d bytes",
                                      LEDGER_CERT_MAX);
                p->cert = d2i_X509(NULL, &d, (long)ev->cert->der_len);
                if (!p->cert || d != ev->cert->der + ev->cert->der_len)
                        return fl_err(ctx, -EINVAL, "ledger event: certificate is not one DER X.509 certificate (%s)",
                                      ossl_errstr());
        }
        return 0;
}

static void prepared_clear(struct prepared *p)
{
        json_object_put(p->details);
        X509_free(p->cert);
        p->details = NULL;
        p->cert = NULL;
}

static int json_add_str(json_object *o, const char *key, const char *val)
{
        json_object *v;

        if (!val)
                return 0;
        v = json_object_new_string(val);
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* Upsert the device row; on success *ret_snap is the row after the change
 * (what goes into details.device). */
/* Write a device row: UPDATE when it exists, else INSERT (first_seen =
 * last_seen = time). vals: chip, module, serial, state (NULL binds NULL).
 * Returns the step's result unnamed: the caller says what it was doing. */
int device_row_write(struct ledger *l, bool exists, const char *ecid, const char *const vals[4], const char *time)
{
        struct ldb_stmt *st = NULL;
        int r = ldb_prepare(l,
                            exists ? "UPDATE devices SET chip = ?2, module = ?3, serial = ?4, state = ?5, "
                                     "last_seen = ?6 WHERE ecid = ?1"
                                   : "INSERT INTO devices (ecid, chip, module, serial, state, first_seen, last_seen) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                            &st);

        if (r < 0)
                return r;
        ldb_bind_text(st, 1, ecid);
        for (int i = 0; i < 4; i++)
                ldb_bind_text(st, 2 + i, vals[i]);
        ldb_bind_text(st, 6, time);
        r = ldb_step(st);
        ldb_finalize(st);
        return r < 0 ? r : 0;
}

static int device_apply(struct ledger *l, const char *ecid, const struct ledger_device *dev, const char *now,
                        json_object **ret_snap)
{
        static const struct ledger_device none = { 0 };
        struct ldb_stmt *st = NULL;
        char *cur_chip = NULL, *cur_module = NULL, *cur_serial = NULL, *cur_state = NULL;
        const char *chip, *module, *serial, *state;
        bool exists = false;
        json_object *snap = NULL;
        int rc, r;

        if (!dev)
                dev = &none;
        r = ldb_prepare(l, "SELECT chip, module, serial, state FROM devices WHERE ecid = ?1", &st);
        if (r < 0)
                goto out;
        ldb_bind_text(st, 1, ecid);
        rc = ldb_step(st);
        if (rc == 1) {
                exists = true;
                if (col_dup(st, 0, &cur_chip) < 0 || col_dup(st, 1, &cur_module) < 0 ||
                    col_dup(st, 2, &cur_serial) < 0 || col_dup(st, 3, &cur_state) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        } else if (rc != 0) {
                r = db_fail(l, rc, "reading the device");
                goto out;
        }
        ldb_finalize(st);
        st = NULL;

        chip = dev->chip != FL_CHIP_NONE ? chip_name(dev->chip) : NULL;
        if (chip && cur_chip && strcmp(chip, cur_chip)) {
                r = fl_err(l->ctx, -EEXIST, "ledger: ECID %s is recorded as chip %s, not %s", ecid, cur_chip, chip);
                goto out;
        }
        if (dev->module && cur_module && strcmp(dev->module, cur_module)) {
                r = fl_err(l->ctx, -EEXIST, "ledger: ECID %s is recorded as module '%s', not '%s'", ecid, cur_module,
                           dev->module);
                goto out;
        }
        if (dev->serial && cur_serial && strcmp(dev->serial, cur_serial)) {
                r = fl_err(l->ctx, -EEXIST, "ledger: ECID %s has serial '%s' already, not '%s'", ecid, cur_serial,
                           dev->serial);
                goto out;
        }
        if (dev->serial && !cur_serial) {
                r = ldb_prepare(l, "SELECT ecid FROM devices WHERE serial = ?1 AND ecid <> ?2", &st);
                if (r < 0)
                        goto out;
                ldb_bind_text(st, 1, dev->serial);
                ldb_bind_text(st, 2, ecid);
                rc = ldb_step(st);
                if (rc == 1) {
                        r = fl_err(l->ctx, -EEXIST, "ledger: serial '%s' belongs to ECID %s already", dev->serial,
                                   ldb_col_text(st, 0));
                        goto out;
                }
                if (rc != 0) {
                        r = db_fail(l, rc, "checking the serial");
                        goto out;
                }
                ldb_finalize(st);
                st = NULL;
        }
        chip = chip ? chip : cur_chip;
        module = dev->module ? dev->module : cur_module;
        serial = dev->serial ? dev->serial : cur_serial;
        state = dev->state != LEDGER_STATE_KEEP ? ledger_state_name(dev->state) : cur_state ? cur_state : "blank";

        rc = device_row_write(l, exists, ecid, (const char *const[4]){ chip, module, serial, state }, now);
        if (rc < 0) {
                r = db_fail(l, rc, "recording the device");
                goto out;
        }

        snap = json_object_new_object();
        if (!snap || json_add_str(snap, "state", state) < 0 || json_add_str(snap, "chip", chip) < 0 ||
            json_add_str(snap, "module", module) < 0 || json_add_str(snap, "serial", serial) < 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret_snap = snap;
        snap = NULL;
        r = 0;
out:
        json_object_put(snap);
        ldb_finalize(st);
        free(cur_chip);
        free(cur_module);
        free(cur_serial);
        free(cur_state);
        return r;
}

static int asn1_time_str(const ASN1_TIME *t, char out[LEDGER_TIME_LEN])
{
        struct tm tm;

        if (!t || !ASN1_TIME_to_tm(t, &tm))
                return -EINVAL;
        if (strftime(out, LEDGER_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) != LEDGER_TIME_LEN - 1)
                return -EINVAL;
        return 0;
}

/* The certificate's facts as the certificates table stores them. */
struct cert_facts {
        char fingerprint[2 * LEDGER_HASH_LEN + 1];
        char *issuer; /* RFC 2253 */
        char *serial; /* lower-case hex */
        char not_before[LEDGER_TIME_LEN], not_after[LEDGER_TIME_LEN];
};

static void cert_facts_clear(struct cert_facts *f)
{
        OPENSSL_free(f->issuer);
        OPENSSL_free(f->serial);
        f->issuer = f->serial = NULL;
}

static int cert_facts_get(fl_ctx *ctx, X509 *x, const unsigned char *der, size_t der_len, struct cert_facts *f)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        BIO *bio = NULL;
        BIGNUM *bn = NULL;
        char *p;
        long n;
        int r = -EINVAL;

        if (!EVP_Digest(der, der_len, md, &mdlen, EVP_sha256(), NULL) || mdlen != LEDGER_HASH_LEN)
                return fl_err(ctx, -EIO, "ledger: SHA-256 failed (%s)", ossl_errstr());
        hex_encode(md, mdlen, f->fingerprint);
        bio = BIO_new(BIO_s_mem());
        if (!bio || X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) < 0)
                goto bad;
        n = BIO_get_mem_data(bio, &p);
        f->issuer = OPENSSL_strndup(p ? p : "", n > 0 ? (size_t)n : 0);
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        if (!f->issuer || !bn)
                goto bad;
        f->serial = BN_bn2hex(bn);
        if (!f->serial)
                goto bad;
        for (char *c = f->serial; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        *c = (char)(*c - 'A' + 'a');
        if (asn1_time_str(X509_get0_notBefore(x), f->not_before) < 0 ||
            asn1_time_str(X509_get0_notAfter(x), f->not_after) < 0)
                goto bad;
        r = 0;
        goto out;
bad:
        r = fl_err(ctx, -EINVAL, "ledger: cannot read the certificate's issuer, serial or validity (%s)",
                   ossl_errstr());
        cert_facts_clear(f);
out:
        BN_free(bn);
        BIO_free(bio);
        return r;
}

static int cert_apply(struct ledger *l, const char *ecid, const struct ledger_cert *c, X509 *x, const char *now,
                      json_object **ret_snap)
{
        struct cert_facts f = { 0 };
        struct ldb_stmt *st = NULL;
        json_object *snap = NULL, *sup = NULL;
        int rc, r;

        r = cert_facts_get(l->ctx, x, c->der, c->der_len, &f);
        if (r < 0)
                return r;
        r = ldb_prepare(l, "SELECT ecid FROM certificates WHERE fingerprint = ?1", &st);
        if (r < 0)
                goto out;
        ldb_bind_text(st, 1, f.fingerprint);
        rc = ldb_step(st);
        if (rc == 1) {
                r = fl_err(l->ctx, -EEXIST, "ledger: certificate sha256:%s is recorded already (ECID %s)",
                           f.fingerprint, ldb_col_text(st, 0));
                goto out;
        }
        if (rc < 0) {
                r = db_fail(l, rc, "reading certificates");
                goto out;
        }
        ldb_finalize(st);
        st = NULL;

        sup = json_object_new_array();
        if (!sup) {
                r = -ENOMEM;
                goto out;
        }
        r = ldb_prepare(l, "SELECT fingerprint FROM certificates WHERE ecid = ?1 AND status = 'valid'", &st);
        if (r < 0)
                goto out;
        ldb_bind_text(st, 1, ecid);
        while ((rc = ldb_step(st)) == 1) {
                const char *fp = ldb_col_text(st, 0);
                if (!c->supersede) {
                        r = fl_err(l->ctx, -EEXIST,
                                   "ledger: ECID %s has a valid certificate already (sha256:%s); "
                                   "supersede it to record another",
                                   ecid, fp ? fp : "?");
                        goto out;
                }
                if (json_object_array_add(sup, json_object_new_string(fp ? fp : "")) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (rc != 0) {
                r = db_fail(l, rc, "reading certificates");
                goto out;
        }
        ldb_finalize(st);
        st = NULL;
        if (json_object_array_length(sup) > 0) {
                r = ldb_prepare(l, "UPDATE certificates SET status = 'superseded' WHERE ecid = ?1 AND status = 'valid'",
                                &st);
                if (r < 0)
                        goto out;
                ldb_bind_text(st, 1, ecid);
                rc = ldb_step(st);
                if (rc != 0) {
                        r = db_fail(l, rc, "superseding certificates");
                        goto out;
                }
                ldb_finalize(st);
                st = NULL;
        }
        r = ldb_prepare(l,
                 "INSERT INTO certificates (fingerprint, ecid, der, issuer, serial, not_before, not_after, "
                 "status, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'valid', ?8)",
                 &st);
        if (r < 0)
                goto out;
        ldb_bind_text(st, 1, f.fingerprint);
        ldb_bind_text(st, 2, ecid);
        ldb_bind_blob(st, 3, c->der, c->der_len);
        ldb_bind_text(st, 4, f.issuer);
        ldb_bind_text(st, 5, f.serial);
        ldb_bind_text(st, 6, f.not_before);
        ldb_bind_text(st, 7, f.not_after);
        ldb_bind_text(st, 8, now);
        rc = ldb_step(st);
        if (rc != 0) {
                r = db_fail(l, rc, "recording the certificate");
                goto out;
        }
        snap = json_object_new_object();
        if (!snap || json_add_str(snap, "sha256", f.fingerprint) < 0 || json_add_str(snap, "serial", f.serial) < 0 ||
            json_object_object_add(snap, "superseded", sup) < 0) {
                r = -ENOMEM;
                goto out;
        }
        sup = NULL;
        *ret_snap = snap;
        snap = NULL;
        r = 0;
out:
        json_object_put(sup);
        json_object_put(snap);
        ldb_finalize(st);
        cert_facts_clear(&f);
        return r;
}

/* A result must close an open intent of the same device. */
static int intent_check(struct ledger *l, int64_t intent_id, const char *ecid)
{
        struct ldb_stmt *st = NULL;
        int rc, r;

        r = ldb_prepare(l, "SELECT kind, ecid FROM events WHERE id = ?1", &st);
        if (r < 0)
                return r;
        ldb_bind_int64(st, 1, intent_id);
        rc = ldb_step(st);
        if (rc != 1) {
                r = rc == 0 ? fl_err(l->ctx, -EINVAL, "ledger: result for intent %lld: no such event",
                                               (long long)intent_id)
                                      : db_fail(l, rc, "reading the intent");
                goto out;
        }
        {
                const char *kind = ldb_col_text(st, 0);
                const char *iecid = ldb_col_text(st, 1);
                if (!kind || strcmp(kind, "intent")) {
                        r = fl_err(l->ctx, -EINVAL, "ledger: result for intent %lld: event %lld is a %s, not an intent",
                                   (long long)intent_id, (long long)intent_id, kind ? kind : "?");
                        goto out;
                }
                if ((iecid == NULL) != (ecid == NULL) || (iecid && strcmp(iecid, ecid))) {
                        r = fl_err(l->ctx, -EINVAL, "ledger: result for intent %lld: the intent is for ECID %s, not %s",
                                   (long long)intent_id, iecid ? iecid : "(none)", ecid ? ecid : "(none)");
                        goto out;
                }
        }
        ldb_finalize(st);
        st = NULL;
        r = ldb_prepare(l, "SELECT id FROM events WHERE intent_id = ?1 LIMIT 1", &st);
        if (r < 0)
                return r;
        ldb_bind_int64(st, 1, intent_id);
        rc = ldb_step(st);
        if (rc == 1)
                r = fl_err(l->ctx, -EEXIST, "ledger: intent %lld was closed already by event %lld", (long long)intent_id,
                           (long long)ldb_col_int64(st, 0));
        else if (rc != 0)
                r = db_fail(l, rc, "reading results");
        else
                r = 0;
out:
        ldb_finalize(st);
        return r;
}


/* Before a writer links a new event to the head: the head's stored hash
 * must match its contents and its prev_hash must be the hash of the event
 * before it. Constant time (two indexed reads, one hash); an edit deeper in
 * the chain is verify ledger's to find. -EBADMSG naming the event. */
static int head_check(struct ledger *l)
{
        unsigned char h[LEDGER_HASH_LEN], before[LEDGER_HASH_LEN] = { 0 };
        struct ldb_stmt *st = NULL, *pst = NULL;
        struct ledger_row row;
        struct fl_buf b = { 0 };
        const char *problem;
        int rc, r;

        r = prepare_events(l, "ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = ldb_step(st);
        if (rc == 0) {
                r = 0;
                goto out;
        }
        if (rc != 1) {
                r = db_fail(l, rc, "reading the last event");
                goto out;
        }
        problem = row_load(st, &row);
        if (problem) {
                r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest): %s; refusing to append to a "
                           "broken chain (see fuseline verify ledger)", l->name, (long long)row.id, problem);
                goto out;
        }
        r = hash_with(&row, row.prev_hash, &b, h);
        if (r < 0)
                goto out;
        if (memcmp(h, row.hash, LEDGER_HASH_LEN)) {
                r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest, %s %s): edited: its contents no "
                           "longer match its hash; refusing to append to a broken chain (see fuseline verify "
                           "ledger)", l->name, (long long)row.id, row.time, row.command);
                goto out;
        }
        r = ldb_prepare(l, "SELECT id, hash FROM events WHERE id < ?1 ORDER BY id DESC LIMIT 1", &pst);
        if (r < 0)
                goto out;
        ldb_bind_int64(pst, 1, row.id);
        rc = ldb_step(pst);
        if (rc == 1 && col_hash(pst, 1))
                memcpy(before, col_hash(pst, 1), LEDGER_HASH_LEN);
        else if (rc != 0 && rc != 1) {
                r = db_fail(l, rc, "reading the event before the last");
                goto out;
        }
        if (memcmp(before, row.prev_hash, LEDGER_HASH_LEN)) {
                r = fl_err(l->ctx, -EBADMSG, "ledger %s: event %lld (the newest, %s %s): broken link: it does not "
                           "follow event %lld; refusing to append to a broken chain (see fuseline verify ledger)",
                           l->name, (long long)row.id, row.time, row.command,
                           rc == 1 ? (long long)ldb_col_int64(pst, 0) : 0LL);
                goto out;
        }
        r = 0;
out:
        ldb_finalize(pst);
        ldb_finalize(st);
        free(b.p);
        return r;
}

/* The chain's tail: the newest event's hash and the next id to issue. */
static int chain_tail(struct ledger *l, unsigned char prev[LEDGER_HASH_LEN], int64_t *ret_next)
{
        struct ldb_stmt *st = NULL;
        int64_t last = 0, seq = 0;
        int rc, r;

        memset(prev, 0, LEDGER_HASH_LEN);
        r = head_check(l);
        if (r < 0)
                return r;
        r = ldb_prepare(l, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = ldb_step(st);
        if (rc == 1) {
                last = ldb_col_int64(st, 0);
                if (col_hash(st, 1))
                        memcpy(prev, col_hash(st, 1), LEDGER_HASH_LEN);
        } else if (rc != 0) {
                r = db_fail(l, rc, "reading the last event");
                goto out;
        }
        ldb_finalize(st);
        st = NULL;
        r = ldb_prepare_q(l, LDBQ_HIGH_WATER, &st);
        if (r < 0)
                return r;
        rc = ldb_step(st);
        if (rc == 1)
                seq = ldb_col_int64(st, 0);
        else if (rc != 0) {
                r = db_fail(l, rc, "reading the event sequence");
                goto out;
        }
        /* After deleted newest events the next id stays past them, so the
         * gap remains visible to verify. */
        *ret_next = (seq > last ? seq : last) + 1;
        r = 0;
out:
        ldb_finalize(st);
        return r;
}

static int append_one(struct ledger *l, struct ldb_stmt *ins, const struct ledger_event *ev, struct prepared *p,
                      int64_t id, unsigned char prev[LEDGER_HASH_LEN], struct fl_buf *b, struct ledger_appended *out)
{
        json_object *details = NULL, *snap = NULL;
        struct ledger_row row = { 0 };
        const char *text;
        char now[LEDGER_TIME_LEN];
        int rc, r;

        if (ev->time)
                snprintf(now, sizeof(now), "%s", ev->time);
        else
                time_now_utc(now, sizeof(now));
        if (ev->kind == LEDGER_RESULT) {
                r = intent_check(l, ev->intent_id, p->has_ecid ? p->ecid : NULL);
                if (r < 0)
                        return r;
        }
        /* The caller's object plus the ledger's snapshots, serialised once. */
        details = json_object_get(p->details);
        if (ev->device || ev->cert) {
                r = device_apply(l, p->ecid, ev->device, now, &snap);
                if (r < 0)
                        goto out;
                json_object_object_add(details, "device", snap);
                snap = NULL;
        }
        if (ev->cert) {
                r = cert_apply(l, p->ecid, ev->cert, p->cert, now, &snap);
                if (r < 0)
                        goto out;
                json_object_object_add(details, "certificate", snap);
                snap = NULL;
        }
        text = json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text) {
                r = -ENOMEM;
                goto out;
        }

        row.id = id;
        row.time = now;
        row.station = p->station;
        row.operator = p->operator;
        row.command = ev->command;
        row.ecid = p->has_ecid ? p->ecid : NULL;
        row.kind = ledger_kind_name(ev->kind);
        row.intent_id = ev->intent_id;
        row.outcome = ev->outcome;
        row.details = text;
        memcpy(row.prev_hash, prev, LEDGER_HASH_LEN);
        r = hash_with(&row, prev, b, row.hash);
        if (r < 0)
                goto out;

        ldb_reset(ins);
        ldb_bind_int64(ins, 1, row.id);
        ldb_bind_text(ins, 2, row.time);
        ldb_bind_text(ins, 3, row.station);
        ldb_bind_text(ins, 4, row.operator);
        ldb_bind_text(ins, 5, row.command);
        ldb_bind_text(ins, 6, row.ecid);
        ldb_bind_text(ins, 7, row.kind);
        if (row.intent_id)
                ldb_bind_int64(ins, 8, row.intent_id);
        else
                ldb_bind_null(ins, 8);
        ldb_bind_text(ins, 9, row.outcome);
        ldb_bind_text(ins, 10, row.details);
        ldb_bind_blob(ins, 11, row.prev_hash, LEDGER_HASH_LEN);
        ldb_bind_blob(ins, 12, row.hash, LEDGER_HASH_LEN);
        rc = ldb_step(ins);
        ldb_reset(ins);
        if (rc != 0) {
                r = db_fail(l, rc, "appending the event");
                goto out;
        }
        memcpy(prev, row.hash, LEDGER_HASH_LEN);
        out->id = id;
        memcpy(out->hash, row.hash, LEDGER_HASH_LEN);
        memcpy(out->time, now, LEDGER_TIME_LEN);
        r = 0;
out:
        json_object_put(snap);
        json_object_put(details);
        return r;
}

/* One attempt: -EBUSY when the lock could not be had, -EAGAIN when the
 * transaction met a transient failure (ledger_db.h): the caller repeats it. */
/* Did an earlier attempt, whose COMMIT answer was lost, commit after all?
 * Its last event's hash names it (the hash covers the unique prev_hash). */
static int attempt_committed(struct ledger *l, const unsigned char hash[LEDGER_HASH_LEN], bool *ret)
{
        struct ldb_stmt *st = NULL;
        int r = ldb_prepare(l, "SELECT id FROM events WHERE hash = ?1", &st);

        if (r < 0)
                return r;
        ldb_bind_blob(st, 1, hash, LEDGER_HASH_LEN);
        r = ldb_step(st);
        ldb_finalize(st);
        if (r < 0)
                return db_fail(l, r, "looking for the event whose COMMIT answer was lost");
        *ret = r == 1;
        return 0;
}

/* One attempt. *unsure: set when the COMMIT itself failed (its answer may
 * be lost while it committed); the next attempt, given the previous
 * attempt's results in `done`, first looks for them. */
static int append_txn(struct ledger *l, const struct ledger_event *evs, struct prepared *p, size_t n,
                      struct ledger_appended *out, bool *unsure, const struct ledger_appended *done)
{
        unsigned char prev[LEDGER_HASH_LEN];
        struct ldb_stmt *ins = NULL;
        struct fl_buf b = { 0 };
        int64_t next = 0;
        int r;

        /* -EBUSY: the lock could not be had within the busy timeout. */
        r = ldb_begin_write(l);
        if (r < 0)
                return r;
        if (*unsure) {
                bool found = false;
                r = attempt_committed(l, done[n - 1].hash, &found);
                if (r < 0)
                        goto fail;
                if (found) {
                        ldb_rollback(l);
                        memcpy(out, done, n * sizeof(*out));
                        return 0;
                }
                *unsure = false;
        }
        r = chain_tail(l, prev, &next);
        if (r < 0)
                goto fail;
        r = ldb_prepare_q(l, LDBQ_INSERT_EVENT, &ins);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                r = append_one(l, ins, &evs[i], &p[i], next + (int64_t)i, prev, &b, &out[i]);
                if (r < 0)
                        goto fail;
        }
        ldb_finalize(ins);
        ins = NULL;
        r = ldb_commit(l);
        if (r < 0) {
                *unsure = r == -EAGAIN;
                r = db_fail(l, r, "committing the event");
                goto fail;
        }
        free(b.p);
        return 0;
fail:
        ldb_finalize(ins);
        free(b.p);
        ldb_rollback(l);
        return r;
}

int ledger_append_batch(struct ledger *l, const struct ledger_event *evs, size_t n, struct ledger_appended *ret)
{
        struct prepared *p = NULL;
        struct ledger_appended *out = NULL, *tried = NULL;
        uint64_t deadline;
        int r;

        if (!l || !evs || n == 0)
                return -EINVAL;
        if (l->mode != LEDGER_WRITE)
                return fl_err(l->ctx, -EINVAL, "ledger %s: opened for reading only", l->name);
        for (size_t i = 0; l->spool_for && i < n; i++)
                if (evs[i].cert)
                        return fl_err(l->ctx, -EHOSTUNREACH,
                                      "ledger %s is unreachable (recording in the spool %s), and a certificate is "
                                      "never spooled: only the central ledger can prove the ECID has no identity yet",
                                      l->spool_for, l->name);
        p = calloc(n, sizeof(*p));
        out = calloc(n, sizeof(*out));
        tried = calloc(n, sizeof(*tried));
        if (!p || !out || !tried) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                r = prepare_event(l->ctx, &evs[i], i, &p[i]);
                if (r < 0)
                        goto out;
        }
        deadline = mono_ms() + l->busy_ms;
        for (bool unsure = false;;) {
                r = append_txn(l, evs, p, n, out, &unsure, tried);
                if (unsure)
                        memcpy(tried, out, n * sizeof(*out));
                if ((r != -EBUSY && r != -EAGAIN) || mono_ms() >= deadline)
                        break;
                sleep_ms(1 + (unsigned)(rand() % 10));
        }
        if (r == -EAGAIN && ldb_conn_was_lost(l))
                r = fl_err(l->ctx, -EHOSTUNREACH, "ledger %s: the server is unreachable (the connection was lost "
                           "inside the transaction again and again for %u ms)", l->name, l->busy_ms);
        else if (r == -EBUSY || r == -EAGAIN)
                r = fl_err(l->ctx, -EBUSY, "ledger %s: other writers held the database for more than %u ms", l->name,
                           l->busy_ms);
        if (r < 0)
                goto out;
        if (ret)
                memcpy(ret, out, n * sizeof(*out));
        r = 0;
out:
        for (size_t i = 0; p && i < n; i++)
                prepared_clear(&p[i]);
        free(p);
        free(out);
        free(tried);
        return r;
}

int ledger_append(struct ledger *l, const struct ledger_event *ev, struct ledger_appended *ret)
{
        return ledger_append_batch(l, ev, 1, ret);
}
