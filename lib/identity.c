/* identity.c — enrolment sessions that issue device certificates with the
 * identity CA and record each in the ledger, and `verify cert` (identity.h).
 * The profile is in identity_profile.c, the CA in identity_ca.c. */

#include "identity_int.h"

/* ---- enrolment sessions -------------------------------------------------------------- */

struct identity_session {
        fl_ctx *ctx;
        struct keyset *ks;
        char *ks_path;
        char *ca_role;
        struct identity_ca ca;
        char *hw_type_oid;
        char ca_sha256[65];
        struct ledger *l;
        struct signer *sg;     /* the CA key (lib/signer.c) */
        fl_token *tok;         /* borrowed from sg */
        x509_signer *signer;   /* borrowed from sg */
        char *station, *operator;
};

void identity_session_close(struct identity_session *s)
{
        if (!s)
                return;
        signer_close(s->sg);
        ledger_close(s->l);
        identity_ca_clear(&s->ca);
        keyset_free(s->ks);
        free(s->ks_path);
        free(s->ca_role);
        free(s->hw_type_oid);
        free(s->station);
        free(s->operator);
        free(s);
}

static char *strdup_or_null(const char *s, bool *oom)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = true;
        return d;
}

int identity_session_open(fl_ctx *ctx, const struct identity_session_opts *o, struct identity_session **ret)
{
        struct identity_session *s = calloc(1, sizeof(*s));
        bool oom = false;
        int r;

        if (!s)
                return -ENOMEM;
        s->ctx = ctx;
        s->ks_path = strdup_or_null(o->keyset_path, &oom);
        s->ca_role = strdup_or_null(o->ca_role ? o->ca_role : IDENTITY_CA_ROLE, &oom);
        s->station = strdup_or_null(o->station, &oom);
        s->operator = strdup_or_null(o->operator, &oom);
        if (oom || !s->ks_path) {
                r = s->ks_path ? -ENOMEM : fl_err_hint(ctx, FL_HINT_KEYSET, -EINVAL, "enrolment needs the keyset holding the identity CA");
                goto out;
        }
        if (o->hw_type_oid && !identity_oid_ok(o->hw_type_oid)) {
                r = fl_err(ctx, -EINVAL, "hwType OID '%s' is not a dotted OID", o->hw_type_oid);
                goto out;
        }
        r = keyset_load(ctx, s->ks_path, &s->ks);
        if (r < 0)
                goto out;
        r = identity_ca_load(ctx, s->ks, s->ks_path, s->ca_role, &s->ca);
        if (r < 0)
                goto out;
        s->hw_type_oid = strdup(o->hw_type_oid ? o->hw_type_oid : s->ca.hw_type_oid);
        if (!s->hw_type_oid) {
                r = -ENOMEM;
                goto out;
        }
        if (!strcmp(s->hw_type_oid, IDENTITY_HWTYPE_PLACEHOLDER) && s->ks->profile &&
            !strcmp(s->ks->profile, "production"))
                fl_log(ctx, FL_LOG_WARN,
                       "hardwareModuleName hwType is the documentation placeholder %s: set your own hwType "
                       "OID",
                       IDENTITY_HWTYPE_PLACEHOLDER);
        r = x509_cert_sha256(s->ca.cert, s->ca_sha256);
        if (r < 0)
                goto out;
        r = ledger_open(ctx, o->db_path ? o->db_path : ledger_path(NULL), LEDGER_WRITE, &s->l);
        if (r < 0)
                goto out;
        if (ledger_spooling_for(s->l)) {
                /* Before anything is signed: an identity is issued only
                 * against the central ledger, the one record that can show
                 * no other station gave this ECID one (see README). */
                r = fl_err(ctx, -EHOSTUNREACH,
                           "ledger %s is unreachable (or its spool still holds events to upload): enrolment is "
                           "never done offline, only the central ledger can prove the ECID has no identity yet; "
                           "run `fuseline ledger sync` once it is back",
                           ledger_spooling_for(s->l));
                goto out;
        }
        {
                /* The token, the pinned key, the role policy and the
                 * production interlock: the one signer. The certificate
                 * was checked by identity_ca_load. */
                struct signer_opts so = { .tok = o->tok, .keyset_path = s->ks_path, .use = SIGNER_USE_DEVICE_CERT };
                r = signer_open(ctx, s->ks, s->ca_role, &so, &s->sg);
                if (r < 0)
                        goto out;
                s->tok = signer_token(s->sg);
                s->signer = signer_x509(s->sg);
        }
        if (!x509_cert_has_key(s->ca.cert, x509_signer_pubkey(s->signer))) {
                r = fl_err(ctx, -EBADMSG, "%s: the token key of role '%s' is not the key of %s", s->ks_path, s->ca_role,
                           s->ca.cert_path);
                goto out;
        }
        *ret = s;
        s = NULL;
        r = 0;
out:
        identity_session_close(s);
        return r;
}

void identity_enroll_result_clear(struct identity_enroll_result *r)
{
        if (!r)
                return;
        free(r->subject);
        free(r->pem);
        free(r->key_uri);
        free(r->superseded);
        memset(r, 0, sizeof(*r));
}

/* A device key made in the token for boards without a key store. The
 * labels are <keyset name>-idevid-<ecid>, then -2, -3 … for reissues; a
 * re-run without --reissue uses the newest one, so it is idempotent. */
struct device_key {
        token_obj priv, pub;
        bool made;
        char *uri;
        EVP_PKEY *pk;
};

static int device_key_get(struct identity_session *s, const char *ecid, enum key_type type, bool fresh,
                          struct device_key *ret)
{
        char *base = NULL, *label = NULL, *newest = NULL;
        unsigned char id[KEY_ID_LEN], *oid = NULL;
        size_t cnt, oid_len = 0;
        unsigned gen;
        int r;

        if (type != KT_P256 && type != KT_P384)
                return fl_err(s->ctx, -EINVAL, "a device key made in the token is p256 or p384, not %s", key_type_name(type));
        if (asprintf(&base, "%s-idevid-%s", s->ks->name ? s->ks->name : "fuseline", ecid) < 0)
                return -ENOMEM;
        for (gen = 1; gen <= DEVICE_KEY_GENERATIONS; gen++) {
                free(label);
                label = NULL;
                if ((gen == 1 ? asprintf(&label, "%s", base) : asprintf(&label, "%s-%u", base, gen)) < 0) {
                        label = NULL;
                        r = -ENOMEM;
                        goto out;
                }
                r = token_count_label(s->tok, label, &cnt);
                if (r < 0)
                        goto out;
                if (!cnt)
                        break;
                free(newest);
                newest = label;
                label = NULL;
        }
        if (newest && !fresh) {
                r = token_find_label(s->tok, newest, CKO_PRIVATE_KEY, &ret->priv);
                if (r < 0)
                        goto out;
                r = token_attr_bytes(s->tok, ret->priv, CKA_ID, &oid, &oid_len);
                if (r < 0)
                        goto out;
                r = token_get_pubkey(s->tok, ret->priv, &ret->pk);
                if (r < 0)
                        goto out;
                ret->uri = token_object_uri(s->tok, newest, oid, oid_len, CKO_PRIVATE_KEY);
                fl_log(s->ctx, FL_LOG_INFO, "using the device key made earlier: %s", newest);
        } else {
                if (!label) {
                        r = fl_err(s->ctx, -EEXIST, "token holds %d device keys for ECID %s already", DEVICE_KEY_GENERATIONS,
                                   ecid);
                        goto out;
                }
                r = token_random_id(s->tok, id, sizeof(id));
                if (r < 0)
                        goto out;
                {
                        /* Extractable on purpose: the key is injected into a
                         * board that cannot make its own (issue 5). */
                        struct keygen_spec spec = { .label = label, .id = id, .id_len = sizeof(id), .type = type,
                                                    .extractable = true };
                        r = token_keygen(s->tok, &spec, &ret->priv, &ret->pub);
                        if (r < 0)
                                goto out;
                }
                ret->made = true;
                r = token_get_pubkey(s->tok, ret->priv, &ret->pk);
                if (r < 0)
                        goto out;
                ret->uri = token_object_uri(s->tok, label, id, sizeof(id), CKO_PRIVATE_KEY);
        }
        r = ret->uri ? 0 : -ENOMEM;
out:
        free(base);
        free(label);
        free(newest);
        free(oid);
        return r;
}

static void device_key_undo(struct identity_session *s, struct device_key *k, bool keep)
{
        if (k->made && !keep) {
                token_destroy(s->tok, k->priv);
                token_destroy(s->tok, k->pub);
        }
        EVP_PKEY_free(k->pk);
        free(k->uri);
        memset(k, 0, sizeof(*k));
}

static int result_fill(struct identity_session *s, X509 *x, struct identity_enroll_result *res)
{
        int r;

        r = x509_cert_sha256(x, res->fingerprint);
        if (r < 0)
                return r;
        r = cert_serial_hex(x, res->serial_hex);
        if (r < 0)
                return fl_err(s->ctx, r, "certificate serial number is not a positive number of at most 20 bytes");
        res->subject = x509_name_text(X509_get_subject_name(x));
        if (!res->subject)
                return -ENOMEM;
        return x509_cert_pem(x, &res->pem, &res->pem_len);
}

static json_object *details_new(struct identity_session *s, const char *spki, const char *csr_sha256,
                                const char *key_uri)
{
        json_object *d = json_object_new_object();

        if (!d)
                return NULL;
        json_object_object_add(d, "ca_role", json_object_new_string(s->ca_role));
        json_object_object_add(d, "ca_certificate_sha256", json_object_new_string(s->ca_sha256));
        json_object_object_add(d, "hw_type_oid", json_object_new_string(s->hw_type_oid));
        if (spki)
                json_object_object_add(d, "public_key_sha256", json_object_new_string(spki));
        if (csr_sha256)
                json_object_object_add(d, "csr_sha256", json_object_new_string(csr_sha256));
        if (key_uri)
                json_object_object_add(d, "key_uri", json_object_new_string(key_uri));
        return d;
}

static int event_append(struct identity_session *s, const char *ecid, const char *outcome, json_object *details,
                        const struct ledger_device *dev, const struct ledger_cert *cert, int64_t *ret_id)
{
        struct ledger_event ev = { .station = s->station, .operator = s->operator, .command = "enroll",
                                   .ecid = ecid, .kind = LEDGER_RECORD, .outcome = outcome,
                                   .details = details ? json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN)
                                                      : NULL,
                                   .device = dev, .cert = cert };
        struct ledger_appended ap;
        int r = ledger_append(s->l, &ev, &ap);

        if (r == 0 && ret_id)
                *ret_id = ap.id;
        return r;
}

/* Why an existing certificate is not the one this request would give. */
static const char *cert_differs(struct identity_session *s, X509 *cur, EVP_PKEY *pk, X509_NAME *subj)
{
        if (EVP_PKEY_eq(X509_get0_pubkey(cur), pk) != 1)
                return "a different public key";
        if (X509_NAME_cmp(X509_get_issuer_name(cur), X509_get_subject_name(s->ca.cert)) ||
            X509_verify(cur, X509_get0_pubkey(s->ca.cert)) != 1)
                return "another CA";
        if (X509_NAME_cmp(X509_get_subject_name(cur), subj))
                return "a different subject";
        return NULL;
}

static int file_sha256_hex(fl_ctx *ctx, const char *path, char out[65])
{
        unsigned char *data = NULL, md[32];
        size_t len = 0;
        int r = file_read(ctx, path, CSR_FILE_MAX, &data, &len);

        if (r < 0)
                return r;
        SHA256(data, len, md);
        hex_encode(md, sizeof(md), out);
        free(data);
        return 0;
}

static int enroll_do(struct identity_session *s, const struct identity_enroll_req *req, const char *ecid,
                     struct identity_enroll_result *res)
{
        struct ledger_cert_info cur = { 0 };
        struct device_key dk = { 0 };
        X509_REQ *csr = NULL;
        X509 *curx = NULL, *x = NULL;
        X509_NAME *subj = NULL;
        EVP_PKEY *pk = NULL;
        json_object *det = NULL;
        unsigned char *der = NULL;
        size_t der_len = 0;
        char spki[65], csr_sha[65];
        bool have_cur = false, keep_key = false;
        int r;
        struct identity_cert_req cr = { .ecid = ecid, .product = req->product ? req->product : s->ks->name,
                                        .serial = req->serial, .hw_type_oid = s->hw_type_oid,
                                        .ca_cert = s->ca.cert };

        if (!cr.product)
                cr.product = "fuseline";
        if (!!req->csr_path == (req->generate != KT_NONE))
                return fl_err_hint(s->ctx, FL_HINT_DEVICE_KEY, -EINVAL, "a device key comes from either a CSR or the token, not both or neither");
        r = identity_subject(s->ctx, &cr, &subj);
        if (r < 0)
                return r;
        r = ledger_cert_current(s->l, ecid, &cur);
        if (r == 0)
                have_cur = true;
        else if (r != -ENOENT)
                goto out;

        if (req->csr_path) {
                r = identity_csr_load(s->ctx, req->csr_path, &csr);
                if (r < 0)
                        goto out;
                pk = X509_REQ_get0_pubkey(csr);
                r = file_sha256_hex(s->ctx, req->csr_path, csr_sha);
                if (r < 0)
                        goto out;
        } else {
                /* A reissue with a token key means a new key. */
                r = device_key_get(s, ecid, req->generate, req->reissue, &dk);
                if (r < 0)
                        goto out;
                pk = dk.pk;
        }
        if (EVP_PKEY_eq(pk, X509_get0_pubkey(s->ca.cert)) == 1) {
                r = fl_err(s->ctx, -EINVAL, "%s: the device key is the identity CA's own key",
                           req->csr_path ? req->csr_path : "the key made in the token");
                goto out;
        }
        r = pkey_spki_sha256(s->ctx, pk, spki);
        if (r < 0)
                goto out;

        if (have_cur) {
                const unsigned char *p = cur.der;
                const char *why;
                curx = d2i_X509(NULL, &p, (long)cur.der_len);
                if (!curx) {
                        r = fl_err(s->ctx, -EIO, "ledger: the recorded certificate sha256:%s of ECID %s does not decode",
                                   cur.fingerprint, ecid);
                        goto out;
                }
                why = cert_differs(s, curx, pk, subj);
                if (!req->reissue) {
                        if (why) {
                                r = fl_err_hint(s->ctx, FL_HINT_REISSUE, -EEXIST,
                                                "ECID %s is enrolled already with %s (certificate sha256:%s); "
                                                "a reissue supersedes it",
                                           ecid, why, cur.fingerprint);
                                goto out;
                        }
                        /* Idempotent re-run: hand back what was issued. */
                        keep_key = true;
                        r = result_fill(s, curx, res);
                        if (r < 0)
                                goto out;
                        det = details_new(s, spki, req->csr_path ? csr_sha : NULL, dk.uri);
                        if (!det) {
                                r = -ENOMEM;
                                goto out;
                        }
                        json_object_object_add(det, "certificate_sha256", json_object_new_string(res->fingerprint));
                        r = event_append(s, ecid, "already-enrolled", det, NULL, NULL, &res->event_id);
                        if (r < 0)
                                goto out;
                        res->outcome = IDENTITY_ALREADY;
                        goto done;
                }
        }

        cr.pubkey = pk;
        r = identity_cert_issue(s->ctx, &cr, s->signer, &x);
        if (r < 0)
                goto out;
        r = x509_cert_der(x, &der, &der_len);
        if (r < 0)
                goto out;
        r = result_fill(s, x, res);
        if (r < 0)
                goto out;
        det = details_new(s, spki, req->csr_path ? csr_sha : NULL, dk.uri);
        if (!det) {
                r = -ENOMEM;
                goto out;
        }
        json_object_object_add(det, "product", json_object_new_string(cr.product));
        json_object_object_add(det, "reissue", json_object_new_boolean(req->reissue));
        {
                struct ledger_device dev = { .chip = s->ks->chip, .serial = req->serial,
                                             .state = LEDGER_STATE_ENROLLED };
                struct ledger_cert lc = { .der = der, .der_len = der_len, .supersede = req->reissue };
                r = event_append(s, ecid, "ok", det, &dev, &lc, &res->event_id);
                if (r < 0)
                        goto out;
        }
        keep_key = true;
        res->outcome = have_cur ? IDENTITY_REISSUED : IDENTITY_ISSUED;
        if (have_cur) {
                res->superseded = strdup(cur.fingerprint);
                if (!res->superseded) {
                        r = -ENOMEM;
                        goto out;
                }
        }
done:
        if (dk.uri) {
                res->key_uri = strdup(dk.uri);
                if (!res->key_uri) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = 0;
out:
        device_key_undo(s, &dk, keep_key);
        json_object_put(det);
        OPENSSL_free(der);
        X509_free(x);
        X509_free(curx);
        X509_REQ_free(csr);
        X509_NAME_free(subj);
        ledger_cert_info_clear(&cur);
        return r;
}

int identity_enroll(struct identity_session *s, const struct identity_enroll_req *req,
                    struct identity_enroll_result *ret)
{
        struct identity_enroll_result res = { 0 };
        char ecid[LEDGER_ECID_LEN + 1];
        int r;

        r = ledger_ecid_parse(s->ctx, req->ecid ? req->ecid : "", ecid);
        if (r < 0)
                return r;
        memcpy(res.ecid, ecid, sizeof(res.ecid));
        r = enroll_do(s, req, ecid, &res);
        if (r < 0) {
                /* Record the failed attempt too, keeping the original error
                 * as the one reported. */
                char msg[FL_ERRMSG_MAX];
                json_object *det = details_new(s, NULL, NULL, NULL);
                snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(s->ctx) ? fl_ctx_last_error(s->ctx) : strerror(-r));
                if (det) {
                        json_object_object_add(det, "error", json_object_new_string(msg));
                        if (req->csr_path)
                                json_object_object_add(det, "csr", json_object_new_string(req->csr_path));
                        (void)event_append(s, ecid, r == -EEXIST ? "conflict" : "failed", det, NULL, NULL, NULL);
                        json_object_put(det);
                }
                fl_err(s->ctx, r, "%s", msg);
                identity_enroll_result_clear(&res);
                return r;
        }
        *ret = res;
        return 0;
}

/* ---- verify cert ------------------------------------------------------------------------- */

int identity_verify(fl_ctx *ctx, const struct identity_verify_opts *o, struct identity_check *ret)
{
        struct identity_check c = { .ledger = -1 };
        struct identity_ca ca = { 0 };
        struct keyset *ks = NULL;
        struct ledger *l = NULL;
        struct ledger_cert_info cur = { 0 }, *list = NULL;
        size_t n_list = 0;
        X509 *cert = NULL;
        int r;

        if (o->hw_type_oid && !identity_oid_ok(o->hw_type_oid))
                return fl_err(ctx, -EINVAL, "hwType OID '%s' is not a dotted OID", o->hw_type_oid);
        r = x509_cert_load(ctx, o->cert_path, &cert);
        if (r < 0)
                return r;
        r = keyset_load(ctx, o->keyset_path, &ks);
        if (r < 0)
                goto out;
        r = identity_ca_load(ctx, ks, o->keyset_path, o->ca_role ? o->ca_role : IDENTITY_CA_ROLE, &ca);
        if (r < 0)
                goto out;
        if (o->db_path) {
                r = ledger_open(ctx, o->db_path, LEDGER_READ, &l);
                if (r < 0)
                        goto out;
        }
        r = identity_cert_check(ctx, cert, ca.cert, o->hw_type_oid ? o->hw_type_oid : ca.hw_type_oid, &c);
        if (r < 0)
                goto out;
        if (l) {
                if (!c.ecid[0]) {
                        identity_problem(&c, "ledger: no ECID in the certificate to look up");
                        c.ledger = 0;
                } else {
                        r = ledger_cert_current(l, c.ecid, &cur);
                        if (r < 0 && r != -ENOENT)
                                goto out;
                        if (r == 0 && !strcmp(cur.fingerprint, c.fingerprint)) {
                                c.ledger = 1;
                        } else {
                                const char *status = "not recorded";
                                r = ledger_cert_list(l, c.ecid, &list, &n_list);
                                if (r < 0)
                                        goto out;
                                for (size_t i = 0; i < n_list; i++)
                                        if (!strcmp(list[i].fingerprint, c.fingerprint))
                                                status = list[i].status;
                                c.ledger = 0;
                                if (cur.fingerprint)
                                        identity_problem(&c, "ledger: this certificate is %s for ECID %s; the current one is "
                                                    "sha256:%s",
                                                status, c.ecid, cur.fingerprint);
                                else
                                        identity_problem(&c, "ledger: ECID %s has no valid certificate (this one: %s)", c.ecid,
                                                status);
                        }
                }
                fl_err_clear(ctx);
        }
        *ret = c;
        memset(&c, 0, sizeof(c));
        r = 0;
out:
        ledger_cert_list_free(list, n_list);
        ledger_cert_info_clear(&cur);
        ledger_close(l);
        identity_check_clear(&c);
        identity_ca_clear(&ca);
        keyset_free(ks);
        X509_free(cert);
        return r;
}
