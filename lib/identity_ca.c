/* identity_ca.c — the identity CA: its key in the token, its certificate or
 * CSR, its keyset entry (identity.h). */

#include "identity_int.h"

/* ---- the identity CA ---------------------------------------------------------------- */

void identity_ca_clear(struct identity_ca *ca)
{
        if (!ca)
                return;
        X509_free(ca->cert);
        free(ca->cert_path);
        free(ca->hw_type_oid);
        memset(ca, 0, sizeof(*ca));
}

int identity_ca_load(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const char *role,
                     struct identity_ca *ret)
{
        struct identity_ca ca = { 0 };
        const char *p, *want, *oid;
        char got[65], spki[65];
        int r = -EINVAL;

        ca.key = keyset_find(ks, role);
        if (!ca.key)
                return fl_err_hint(ctx, FL_HINT_IDENTITY_CA, -EINVAL, "%s: no key with role '%s'",
                              ks_path, role);
        if (ca.key->type != KT_P256 && ca.key->type != KT_P384 && ca.key->type != KT_P521 &&
            ca.key->type != KT_RSA2K && ca.key->type != KT_RSA3K)
                return fl_err(ctx, -EINVAL, "%s: role '%s' is a %s key, not a certificate authority key", ks_path, role,
                              key_type_name(ca.key->type));
        p = extra_str(ca.key, "certificate");
        if (!p)
                return fl_err_hint(ctx, FL_HINT_IDENTITY_CA_CERT, -EINVAL,
                                   "%s: role '%s' has no certificate yet (attach the one the root issued)",
                              ks_path, role);
        ca.cert_path = path_resolve(ks_path, p);
        if (!ca.cert_path) {
                r = -ENOMEM;
                goto out;
        }
        r = x509_cert_load(ctx, ca.cert_path, &ca.cert);
        if (r < 0)
                goto out;
        want = extra_str(ca.key, "certificate_sha256");
        r = x509_cert_sha256(ca.cert, got);
        if (r < 0)
                goto out;
        if (want && strcmp(want, got)) {
                r = fl_err(ctx, -EBADMSG, "%s: certificate_sha256 of role '%s' is %s, but %s has %s", ks_path, role, want,
                           ca.cert_path, got);
                goto out;
        }
        if (ca.key->public_key_sha256) {
                r = pkey_spki_sha256(ctx, X509_get0_pubkey(ca.cert), spki);
                if (r < 0)
                        goto out;
                if (strcmp(spki, ca.key->public_key_sha256)) {
                        r = fl_err(ctx, -EBADMSG, "%s: the certificate of role '%s' (%s) does not carry its key", ks_path,
                                   role, ca.cert_path);
                        goto out;
                }
        }
        oid = extra_str(ca.key, "hw_type_oid");
        if (oid && !identity_oid_ok(oid)) {
                r = fl_err(ctx, -EINVAL, "%s: role '%s': hw_type_oid '%s' is not a dotted OID", ks_path, role, oid);
                goto out;
        }
        ca.hw_type_oid = strdup(oid ? oid : IDENTITY_HWTYPE_PLACEHOLDER);
        if (!ca.hw_type_oid) {
                r = -ENOMEM;
                goto out;
        }
        *ret = ca;
        memset(&ca, 0, sizeof(ca));
        r = 0;
out:
        identity_ca_clear(&ca);
        return r;
}

void identity_ca_result_clear(struct identity_ca_result *r)
{
        if (!r)
                return;
        free(r->label);
        free(r->uri);
        free(r->cert_path);
        free(r->csr_path);
        free(r->subject);
        memset(r, 0, sizeof(*r));
}

static int write_pem_new(fl_ctx *ctx, const char *path, const char *pem, size_t len)
{
        int r = file_write_new(ctx, path, pem, len, 0644);

        if (r == -EEXIST)
                return fl_err(ctx, -EEXIST, "%s exists already; fuseline never replaces it", path);
        return r;
}

/* The CA certificate's file name beside the keyset: "<keyset file name
 * without .json>-<role>.crt", so one directory can hold many keysets, each
 * with its own CA. (Keysets made before record their "identity-ca.crt".) */
static int ca_cert_name(fl_ctx *ctx, const char *keyset_path, const char *role, char *out, size_t len)
{
        const char *base = strrchr(keyset_path, '/');
        size_t n;
        int k;

        base = base ? base + 1 : keyset_path;
        n = strlen(base);
        if (n > 5 && !strcmp(base + n - 5, ".json"))
                n -= 5;
        k = snprintf(out, len, "%.*s-%s.crt", (int)n, base, role);
        if (k < 0 || (size_t)k >= len)
                return fl_err(ctx, -EINVAL, "%s: keyset file name too long for its CA certificate's name", keyset_path);
        return 0;
}

int identity_ca_create(fl_ctx *ctx, const struct identity_ca_opts *o, struct identity_ca_result *ret)
{
        struct identity_ca_result res = { 0 };
        struct keyset *ks = NULL;
        fl_token *tok = NULL;
        x509_signer *sg = NULL;
        X509_NAME *subj = NULL;
        X509 *cert = NULL;
        X509_REQ *req = NULL;
        token_obj priv = 0, pub = 0;
        bool made = false;
        char *pem = NULL, *written = NULL;
        size_t pem_len = 0, cnt = 0;
        unsigned char id[KEY_ID_LEN];
        const char *oid = o->hw_type_oid ? o->hw_type_oid : IDENTITY_HWTYPE_PLACEHOLDER;
        const char *role = o->role ? o->role : IDENTITY_CA_ROLE;
        char cert_file[256];
        enum key_type curve = o->curve ? o->curve : KT_P384;
        int r;

        if (curve != KT_P256 && curve != KT_P384)
                return fl_err(ctx, -EINVAL, "identity CA curve must be p256 or p384, not %s", key_type_name(curve));
        if (!identity_oid_ok(oid))
                return fl_err(ctx, -EINVAL, "hwType OID '%s' is not a dotted OID (e.g. 1.3.6.1.4.1.<PEN>.1)", oid);
        if (!o->subject)
                return fl_err_hint(ctx, FL_HINT_SUBJECT, -EINVAL, "the identity CA needs a subject name");
        r = x509_name_parse(ctx, o->subject, &subj);
        if (r < 0)
                return r;
        if (X509_NAME_entry_count(subj) == 0) {
                r = fl_err_hint(ctx, FL_HINT_SUBJECT, -EINVAL, "subject '%s' is empty", o->subject);
                goto out;
        }
        if (strcmp(role, IDENTITY_CA_ROLE) && strcmp(role, FTPM_EK_CA_ROLE)) {
                r = fl_err(ctx, -EINVAL, "CA role '%s': %s or %s", role, IDENTITY_CA_ROLE, FTPM_EK_CA_ROLE);
                goto out;
        }
        r = ca_cert_name(ctx, o->keyset_path, role, cert_file, sizeof(cert_file));
        if (r < 0)
                goto out;
        res.type = curve;
        r = keyset_load(ctx, o->keyset_path, &ks);
        if (r < 0)
                goto out;
        if (keyset_find(ks, role)) {
                r = fl_err(ctx, -EEXIST, "%s: already has role %s; fuseline never replaces keys", o->keyset_path,
                           role);
                goto out;
        }
        if (o->csr_out) {
                res.csr_path = strdup(o->csr_out);
        } else {
                res.cert_path = path_beside(o->keyset_path, cert_file);
        }
        if (!res.csr_path && !res.cert_path) {
                r = -ENOMEM;
                goto out;
        }
        if (access(res.csr_path ? res.csr_path : res.cert_path, F_OK) == 0) {
                r = fl_err(ctx, -EEXIST, "%s exists already; fuseline never replaces it",
                           res.csr_path ? res.csr_path : res.cert_path);
                goto out;
        }
        if (o->label)
                res.label = strdup(o->label);
        else if (asprintf(&res.label, "%s-%s", ks->name ? ks->name : "fuseline", role) < 0)
                res.label = NULL;
        if (!res.label) {
                r = -ENOMEM;
                goto out;
        }

        r = keyset_token_open(ctx, ks, o->tok, &tok);
        if (r < 0)
                goto out;
        r = token_count_label(tok, res.label, &cnt);
        if (r < 0)
                goto out;
        if (cnt) {
                r = fl_err(ctx, -EEXIST, "token '%s' already holds an object labelled '%s'; fuseline never replaces keys",
                           token_get_info(tok)->label, res.label);
                goto out;
        }
        r = token_random_id(tok, id, sizeof(id));
        if (r < 0)
                goto out;
        {
                struct keygen_spec spec = { .label = res.label, .id = id, .id_len = sizeof(id), .type = curve,
                                            .extractable = false };
                r = token_keygen(tok, &spec, &priv, &pub);
                if (r < 0)
                        goto out;
                made = true;
        }
        res.uri = token_object_uri(tok, res.label, id, sizeof(id), CKO_PRIVATE_KEY);
        if (!res.uri) {
                r = -ENOMEM;
                goto fail;
        }
        r = x509_signer_token(ctx, tok, priv, &sg);
        if (r < 0)
                goto fail;
        r = pkey_spki_sha256(ctx, x509_signer_pubkey(sg), res.spki_sha256);
        if (r < 0)
                goto fail;

        if (o->csr_out) {
                struct x509_csr_spec cs = { .subject = o->subject, .hash = hash_for_key(x509_signer_pubkey(sg)),
                                            .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN };
                r = x509_csr_build(ctx, &cs, sg, &req);
                if (r == 0)
                        r = x509_csr_pem(req, &pem, &pem_len);
                if (r < 0)
                        goto fail;
                res.subject = x509_name_text(X509_REQ_get_subject_name(req));
        } else {
                /* The CA outlives every device certificate it signs, and
                 * those never expire (802.1AR §8.5), so by default it has
                 * the same notAfter. */
                struct x509_cert_spec cs = { .subject_name = subj, .days = o->days,
                                             .not_after = o->days ? 0 : IDENTITY_NOT_AFTER,
                                             .hash = hash_for_key(x509_signer_pubkey(sg)), .ca = 1, .path_len = 0,
                                             .bc_critical = true, .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                                             .ski = true, .aki = true };
                r = x509_cert_build(ctx, &cs, sg, &cert);
                if (r == 0)
                        r = x509_cert_pem(cert, &pem, &pem_len);
                if (r == 0)
                        r = x509_cert_sha256(cert, res.cert_sha256);
                if (r < 0)
                        goto fail;
                res.subject = x509_name_text(X509_get_subject_name(cert));
        }
        if (!res.subject) {
                r = -ENOMEM;
                goto fail;
        }
        written = res.csr_path ? res.csr_path : res.cert_path;
        r = write_pem_new(ctx, written, pem, pem_len);
        if (r < 0) {
                written = NULL;
                goto fail;
        }
        {
                struct ks_key k = { .role = (char *)role, .type = curve, .label = res.label, .uri = res.uri,
                                    .public_key_sha256 = res.spki_sha256 };
                k.extra = json_object_new_object();
                if (!k.extra) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (!o->csr_out) {
                        json_object_object_add(k.extra, "certificate", json_object_new_string(cert_file));
                        json_object_object_add(k.extra, "certificate_sha256", json_object_new_string(res.cert_sha256));
                } else {
                        json_object_object_add(k.extra, "csr", json_object_new_string(res.csr_path));
                }
                json_object_object_add(k.extra, "subject", json_object_new_string(res.subject));
                json_object_object_add(k.extra, "hw_type_oid", json_object_new_string(oid));
                r = keyset_add(ks, &k);
                json_object_put(k.extra);
                if (r < 0)
                        goto fail;
        }
        r = keyset_save(ctx, ks, o->keyset_path);
        if (r < 0)
                goto fail;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
        goto out;
fail:
        /* Undo only what this call created. */
        if (written)
                unlink(written);
        if (made) {
                token_destroy(tok, priv);
                token_destroy(tok, pub);
        }
out:
        free(pem);
        X509_free(cert);
        X509_REQ_free(req);
        X509_NAME_free(subj);
        x509_signer_free(sg);
        token_close(tok);
        keyset_free(ks);
        identity_ca_result_clear(&res);
        return r;
}

int identity_ca_import(fl_ctx *ctx, const char *keyset_path, const char *cert_path, struct identity_ca_result *ret)
{
        struct identity_ca_result res = { 0 };
        struct keyset *ks = NULL;
        struct ks_key *k;
        X509 *cert = NULL;
        char *pem = NULL, cert_file[256];
        size_t pem_len = 0;
        bool written = false;
        int r;

        r = ca_cert_name(ctx, keyset_path, IDENTITY_CA_ROLE, cert_file, sizeof(cert_file));
        if (r < 0)
                return r;
        r = keyset_load(ctx, keyset_path, &ks);
        if (r < 0)
                return r;
        k = keyset_find(ks, IDENTITY_CA_ROLE);
        if (!k) {
                r = fl_err_hint(ctx, FL_HINT_CSR_OUT, -EINVAL, "%s: no key with role %s", keyset_path,
                           IDENTITY_CA_ROLE);
                goto out;
        }
        if (extra_str(k, "certificate")) {
                r = fl_err(ctx, -EEXIST, "%s: role %s has a certificate already (%s); fuseline never replaces it",
                           keyset_path, IDENTITY_CA_ROLE, extra_str(k, "certificate"));
                goto out;
        }
        r = x509_cert_load(ctx, cert_path, &cert);
        if (r < 0)
                goto out;
        r = pkey_spki_sha256(ctx, X509_get0_pubkey(cert), res.spki_sha256);
        if (r < 0)
                goto out;
        if (!k->public_key_sha256 || strcmp(res.spki_sha256, k->public_key_sha256)) {
                r = fl_err(ctx, -EBADMSG, "%s: does not carry the key of role %s (%s)", cert_path, IDENTITY_CA_ROLE,
                           k->label ? k->label : "?");
                goto out;
        }
        if (X509_check_ca(cert) < 1 || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN)) {
                r = fl_err(ctx, -EINVAL, "%s: not a CA certificate (basicConstraints CA:TRUE and keyCertSign needed)",
                           cert_path);
                goto out;
        }
        res.cert_path = path_beside(keyset_path, cert_file);
        res.subject = x509_name_text(X509_get_subject_name(cert));
        res.label = k->label ? strdup(k->label) : NULL;
        res.uri = k->uri ? strdup(k->uri) : NULL;
        res.type = k->type;
        if (!res.cert_path || !res.subject) {
                r = -ENOMEM;
                goto out;
        }
        r = x509_cert_sha256(cert, res.cert_sha256);
        if (r == 0)
                r = x509_cert_pem(cert, &pem, &pem_len);
        if (r < 0)
                goto out;
        r = write_pem_new(ctx, res.cert_path, pem, pem_len);
        if (r < 0)
                goto out;
        written = true;
        if ((r = extra_set(k, "certificate", cert_file)) < 0 ||
            (r = extra_set(k, "certificate_sha256", res.cert_sha256)) < 0 ||
            (r = extra_set(k, "subject", res.subject)) < 0)
                goto out;
        r = keyset_save(ctx, ks, keyset_path);
        if (r < 0)
                goto out;
        written = false;
        *ret = res;
        memset(&res, 0, sizeof(res));
out:
        if (written)
                unlink(res.cert_path);
        free(pem);
        X509_free(cert);
        keyset_free(ks);
        identity_ca_result_clear(&res);
        return r;
}
