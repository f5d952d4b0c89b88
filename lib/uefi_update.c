/* uefi_update.c — signed append updates of KEK/db/dbx (§3.3) and payload
 * signatures. */
#include "uefi_int.h"

/* ---- signed append updates (§3.3) ----------------------------------------------------------------- */

void uefi_update_result_free(struct uefi_update_result *r)
{
        if (!r)
                return;
        free(r->conf_var);
        memset(r, 0, sizeof(*r));
}

/* Dirname of a path, resolved. */
static char *dir_of(const char *path)
{
        char *copy = strdup(path), *slash, *res;

        if (!copy)
                return NULL;
        slash = strrchr(copy, '/');
        if (!slash)
                res = realpath(".", NULL);
        else {
                if (slash == copy)
                        slash[1] = 0;
                else
                        *slash = 0;
                res = realpath(copy, NULL);
        }
        free(copy);
        return res;
}

static const char *base_of(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* Read a file if it exists (for restoring it on failure). */
static int snapshot(const char *path, unsigned char **ret, size_t *ret_len, bool *ret_exists)
{
        *ret_exists = access(path, F_OK) == 0;
        *ret = NULL;
        *ret_len = 0;
        if (!*ret_exists)
                return 0;
        return file_read(NULL, path, BUNDLE_FILE_MAX, ret, ret_len);
}

/* Put back a file as snapshot() found it. A failure is logged naming the
 * file (the caller's own error stays the context's last error) and
 * returned, so the caller can say the directory is no longer as it was. */
static int restore(fl_ctx *ctx, const char *path, const unsigned char *data, size_t len, bool existed)
{
        char saved[FL_ERRMSG_MAX];
        int r = 0;

        snprintf(saved, sizeof(saved), "%s", ctx ? ctx->errmsg : "");
        if (existed)
                r = file_write_atomic(ctx, path, data, len, 0644);
        else if (unlink(path) < 0 && errno != ENOENT)
                r = -errno;
        if (ctx && r < 0) {
                fl_log(ctx, FL_LOG_ERR, "%s: cannot be restored to its state before this update: %s", path,
                       existed ? ctx->errmsg : strerror(-r));
                snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s", saved);
        }
        return r;
}

int uefi_sign_update(fl_ctx *ctx, x509_signer *signer, X509 *cert, const struct uefi_update_opts *o,
                     struct uefi_update_result *ret)
{
        struct uefi_update_result res = { 0 };
        struct uefi_conf conf = { 0 };
        struct uefi_update_blob blobs[3 * UEFI_MAX_UPDATES];
        unsigned char *esl = NULL, *auth = NULL, *conf_old = NULL, *loaded[3 * UEFI_MAX_UPDATES];
        struct fl_buf payload = { 0 };
        unsigned char *old_dts = NULL, *old_dtbo = NULL, dg[32];
        size_t esl_len = 0, auth_len = 0, conf_len = 0, nblobs = 0, nloaded = 0;
        size_t old_dts_len = 0, old_dtbo_len = 0;
        char *confdir = NULL, *outdir = NULL, *newconf = NULL, *dts = NULL, *dts_path = NULL, *dtbo_path = NULL;
        bool wrote_auth = false, had_dts = false, had_dtbo = false, touched = false, conf_touched = false;
        int r, slot = -1;

        if (o->var != UEFI_VAR_KEK && o->var != UEFI_VAR_DB && o->var != UEFI_VAR_DBX)
                return fl_err(ctx, -EINVAL, "appends go to KEK, db or dbx (a PK has one entry)");
        if (o->n_certs + o->n_hashes == 0)
                return fl_err_hint(ctx, FL_HINT_UEFI_APPEND, -EINVAL, "nothing to append: no certificate and no hash");
        for (size_t i = 0; i < o->n_certs; i++) {
                X509 *c = NULL;
                unsigned char *der = NULL;
                size_t der_len = 0;
                EVP_PKEY *k;

                r = x509_cert_load(ctx, o->certs[i], &c);
                if (r < 0)
                        goto out;
                k = X509_get0_pubkey(c);
                if (!k || !EVP_PKEY_is_a(k, "RSA")) {
                        r = fl_err(ctx, -EINVAL,
                                   "%s: certificate key type %s is not supported: UEFI X.509 signature lists hold "
                                   "RSA keys (edk2 reads them as RSA)",
                                   o->certs[i], k ? EVP_PKEY_get0_type_name(k) : "unknown");
                        X509_free(c);
                        goto out;
                }
                r = x509_cert_der(c, &der, &der_len);
                X509_free(c);
                if (r == 0)
                        r = uefi_esl_x509(ctx, &o->owner, der, der_len, &esl, &esl_len);
                OPENSSL_free(der);
                if (r == 0)
                        r = fl_buf_put(&payload, esl, esl_len);
                free(esl);
                esl = NULL;
                if (r < 0)
                        goto out;
        }
        if (o->n_hashes) {
                r = uefi_esl_sha256(ctx, &o->owner, o->hashes, o->n_hashes, &esl, &esl_len);
                if (r == 0)
                        r = fl_buf_put(&payload, esl, esl_len);
                if (r < 0)
                        goto out;
        }
        r = uefi_auth_build(ctx, signer, cert, o->var, UEFI_ATTRS_APPEND, &o->time, payload.p, payload.len, &auth,
                            &auth_len);
        if (r < 0)
                goto out;

        if (o->conf_path) {
                const char *base = base_of(o->out_path);
                char var[64];

                r = file_read(ctx, o->conf_path, BUNDLE_FILE_MAX, &conf_old, &conf_len);
                if (r < 0)
                        goto out;
                r = uefi_conf_parse(ctx, o->conf_path, (const char *)conf_old, conf_len, &conf);
                if (r < 0)
                        goto out;
                confdir = dir_of(o->conf_path);
                outdir = dir_of(o->out_path);
                if (!confdir || !outdir || strcmp(confdir, outdir)) {
                        r = fl_err(ctx, -EINVAL, "%s: must be in the directory of %s (NVIDIA's tools read every file "
                                                 "from there)",
                                   o->out_path, o->conf_path);
                        goto out;
                }
                if (!plain_file_name(base)) {
                        r = fl_err(ctx, -EINVAL, "%s: '%s' is not a plain file name for uefi_keys.conf", o->out_path,
                                   base);
                        goto out;
                }
                for (size_t i = 0; i < conf.n; i++)
                        if (!strcmp(conf.vars[i].value, base)) {
                                r = fl_err(ctx, -EEXIST, "%s:%u: %s already names %s", o->conf_path,
                                           conf.vars[i].line, conf.vars[i].name, base);
                                goto out;
                        }
                for (int n = 0; n < UEFI_MAX_UPDATES && slot < 0; n++) {
                        const char *v;
                        snprintf(var, sizeof(var), "%s_%d", update_prefix[o->var], n);
                        v = uefi_conf_get(&conf, var);
                        if (!v || !*v)
                                slot = n;
                }
                if (slot < 0) {
                        r = fl_err(ctx, -EINVAL, "%s: all %d %s_n slots are used", o->conf_path, UEFI_MAX_UPDATES,
                                   update_prefix[o->var]);
                        goto out;
                }
                snprintf(var, sizeof(var), "%s_%d", update_prefix[o->var], slot);
                res.conf_var = strdup(var);
                if (!res.conf_var || asprintf(&newconf, "%.*s%s%s=\"%s\";\n", (int)conf_len, (const char *)conf_old,
                                              conf_len && conf_old[conf_len - 1] != '\n' ? "\n" : "", var, base) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                /* Every update payload the conf lists, in NVIDIA's order. */
                for (int v = UEFI_VAR_KEK; v <= UEFI_VAR_DBX; v++)
                        for (int n = 0; n < UEFI_MAX_UPDATES; n++) {
                                const char *val;
                                snprintf(var, sizeof(var), "%s_%d", update_prefix[v], n);
                                if (v == (int)o->var && n == slot) {
                                        blobs[nblobs++] = (struct uefi_update_blob){ o->var, auth, auth_len };
                                        continue;
                                }
                                val = uefi_conf_get(&conf, var);
                                if (!val || !*val)
                                        continue;
                                r = read_in_dir(ctx, confdir, val, &loaded[nloaded], &blobs[nblobs].len);
                                if (r < 0)
                                        goto out;
                                blobs[nblobs].var = (enum uefi_var)v;
                                blobs[nblobs++].data = loaded[nloaded++];
                        }
                dts = uefi_dts_update(blobs, nblobs);
                dts_path = path_join(confdir, UEFI_UPDATE_DTS);
                dtbo_path = path_join(confdir, UEFI_UPDATE_DTBO);
                if (!dts || !dts_path || !dtbo_path) {
                        r = -ENOMEM;
                        goto out;
                }
                if ((r = snapshot(dts_path, &old_dts, &old_dts_len, &had_dts)) < 0 ||
                    (r = snapshot(dtbo_path, &old_dtbo, &old_dtbo_len, &had_dtbo)) < 0)
                        goto out;
        }

        r = file_write_new(ctx, o->out_path, auth, auth_len, 0644);
        if (r < 0)
                goto out;
        wrote_auth = true;
        if (o->conf_path) {
                touched = true;
                r = file_write_atomic(ctx, dts_path, dts, strlen(dts), 0644);
                if (r < 0)
                        goto out;
                r = uefi_dtc(ctx, dts_path, dtbo_path);
                if (r == -ENOENT) {
                        /* No dtc: a stale .dtbo would contradict the .dts. */
                        unlink(dtbo_path);
                        fl_log(ctx, FL_LOG_WARN, "dtc is not installed: %s was not compiled", dts_path);
                        r = 0;
                } else if (r == 0) {
                        res.dtbo = true;
                }
                if (r < 0)
                        goto out;
                conf_touched = true;
                r = file_write_atomic(ctx, o->conf_path, newconf, strlen(newconf), 0644);
                if (r < 0)
                        goto out;
        }
        EVP_Digest(auth, auth_len, dg, NULL, EVP_sha256(), NULL);
        hex_encode(dg, 32, res.auth_sha256);
        res.auth_len = auth_len;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
out:
        if (r < 0) {
                int rr = 0;
                if (wrote_auth && unlink(o->out_path) < 0 && errno != ENOENT) {
                        rr = -errno;
                        fl_log(ctx, FL_LOG_ERR, "%s: cannot be removed after the failure: %s", o->out_path,
                               strerror(errno));
                }
                if (touched) {
                        if (restore(ctx, dts_path, old_dts, old_dts_len, had_dts) < 0)
                                rr = -EIO;
                        if (restore(ctx, dtbo_path, old_dtbo, old_dtbo_len, had_dtbo) < 0)
                                rr = -EIO;
                }
                /* The conf write may fail after its rename (directory sync). */
                if (conf_touched && restore(ctx, o->conf_path, conf_old, conf_len, true) < 0)
                        rr = -EIO;
                /* Not back as it was: the update failed and the directory is
                 * not what it was before (exit 1 whatever the first cause). */
                if (rr < 0 && r != -ENOMEM)
                        r = -EIO;
        }
        for (size_t i = 0; i < nloaded; i++)
                free(loaded[i]);
        uefi_conf_free(&conf);
        uefi_update_result_free(&res);
        fl_buf_free(&payload);
        free(esl);
        free(auth);
        free(conf_old);
        free(old_dts);
        free(old_dtbo);
        free(confdir);
        free(outdir);
        free(newconf);
        free(dts);
        free(dts_path);
        free(dtbo_path);
        return r;
}

/* ---- payload signatures ----------------------------------------------------------------------------- */

void uefi_payload_result_free(struct uefi_payload_result *r)
{
        if (!r)
                return;
        free(r->sig_path);
        free(r->unsigned_path);
        memset(r, 0, sizeof(*r));
}

int uefi_sign_payload(fl_ctx *ctx, x509_signer *signer, X509 *cert, const char *path, enum uefi_payload_mode mode,
                      struct uefi_payload_result *ret)
{
        struct uefi_payload_result res = { 0 };
        unsigned char *data = NULL, *sig = NULL, *out = NULL;
        size_t len = 0, siglen = 0, padded;
        struct stat st;
        bool wrote_unsigned = false;
        int r;

        r = file_read(ctx, path, PAYLOAD_MAX, &data, &len);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0) {
                r = fl_err(ctx, -EINVAL, "%s: %s", path, strerror(errno));
                goto out;
        }
        r = x509_p7_sign_detached(ctx, signer, cert, X509H_SHA256, data, len, 0, &sig, &siglen);
        if (r < 0)
                goto out;
        r = x509_p7_verify(ctx, path, sig, siglen, false, data, len, cert);
        if (r < 0)
                goto out;
        if (mode == UEFI_PAYLOAD_SPLIT) {
                if (asprintf(&res.sig_path, "%s.sig", path) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                r = file_write_atomic(ctx, res.sig_path, sig, siglen, 0644);
                if (r < 0)
                        goto out;
        } else {
                if (asprintf(&res.unsigned_path, "%s.unsigned", path) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                if (access(res.unsigned_path, F_OK) == 0) {
                        r = fl_err(ctx, -EEXIST,
                                   "%s exists: %s looks signed already; to sign again, first restore it "
                                   "(mv %s %s)",
                                   res.unsigned_path, path, res.unsigned_path, path);
                        goto out;
                }
                /* The signature covers the file as it was; the file is then
                 * zero-padded to a 2 KiB boundary and the DER appended, as
                 * NVIDIA's flow (truncate -s %2048; cat sig >>) does. */
                padded = (len + 2047) / 2048 * 2048;
                out = calloc(1, padded + siglen);
                if (!out) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(out, data, len);
                memcpy(out + padded, sig, siglen);
                r = file_write_new(ctx, res.unsigned_path, data, len, st.st_mode & 0777);
                if (r < 0)
                        goto out;
                wrote_unsigned = true;
                r = file_write_atomic(ctx, path, out, padded + siglen, st.st_mode & 0777);
                if (r < 0)
                        goto out;
                res.padded_len = padded;
        }
        res.sig_len = siglen;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
out:
        if (r < 0 && wrote_unsigned)
                unlink(res.unsigned_path);
        uefi_payload_result_free(&res);
        free(data);
        free(sig);
        free(out);
        return r;
}
