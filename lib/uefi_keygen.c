/* uefi_keygen.c — a PK/KEK/db bundle from keys made (or imported) in the
 * token: certificates, signature lists, .auth files, conf and overlay,
 * published by one rename. */
#include "uefi_int.h"

static const struct role_def {
        const char *role, *file, *cn;
} role_defs[UEFI_ROLE_COUNT] = {
        [UEFI_ROLE_PK] = { "uefi-pk", "PK", "Platform Key" },
        [UEFI_ROLE_KEK] = { "uefi-kek", "KEK", "Key Exchange Key" },
        [UEFI_ROLE_DB1] = { "uefi-db1", "db_1", "Signature Database key" },
        [UEFI_ROLE_DB2] = { "uefi-db2", "db_2", "Signature Database key 2" },
};

const char *uefi_role_name(enum uefi_role r)
{
        return (unsigned)r < UEFI_ROLE_COUNT ? role_defs[r].role : "?";
}

/* Files written into a staging directory, so a failure can take exactly
 * them away again. */
struct stage {
        char *dir;
        char *names[40];
        size_t n;
};

static int stage_write(fl_ctx *ctx, struct stage *st, const char *name, const void *data, size_t len)
{
        char *p = path_join(st->dir, name);
        int r;

        if (!p || st->n == FL_ARRAY_SIZE(st->names)) {
                free(p);
                return -ENOMEM;
        }
        r = file_write_new(ctx, p, data, len, 0644);
        free(p);
        if (r < 0)
                return r;
        st->names[st->n] = strdup(name);
        if (!st->names[st->n])
                return -ENOMEM;
        st->n++;
        return 0;
}

static int stage_note(struct stage *st, const char *name)
{
        if (st->n == FL_ARRAY_SIZE(st->names) || !(st->names[st->n] = strdup(name)))
                return -ENOMEM;
        st->n++;
        return 0;
}

/* Remove what was staged from dir (the staging directory, or the bundle
 * after it was renamed), and the directory itself when rmdir_too. */
static void stage_remove(struct stage *st, const char *dir, bool rmdir_too)
{
        for (size_t i = 0; i < st->n; i++) {
                char *p = path_join(dir, st->names[i]);
                if (p)
                        unlink(p);
                free(p);
        }
        if (rmdir_too)
                rmdir(dir);
}

static void stage_free(struct stage *st)
{
        for (size_t i = 0; i < st->n; i++)
                free(st->names[i]);
        free(st->dir);
        memset(st, 0, sizeof(*st));
}

static bool label_ok(const char *s)
{
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
                      s[n] == '-' || s[n] == '_' || s[n] == '.'))
                        return false;
        return n > 0 && n <= 48;
}

/* The output directory must be new or empty: a bundle never mixes with
 * files from another run. */
static int out_dir_check(fl_ctx *ctx, const char *dir, bool *ret_exists)
{
        struct stat st;
        DIR *d;
        struct dirent *e;
        int r = 0;

        *ret_exists = false;
        if (stat(dir, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return fl_err(ctx, -EINVAL, "%s: %s", dir, strerror(errno));
        }
        if (!S_ISDIR(st.st_mode))
                return fl_err(ctx, -EEXIST, "%s: exists and is not a directory", dir);
        d = opendir(dir);
        if (!d)
                return fl_err(ctx, -EINVAL, "%s: cannot read: %s", dir, strerror(errno));
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                        r = fl_err(ctx, -EEXIST,
                                   "%s: not empty (holds '%s'); a bundle is written only into a new or empty directory",
                                   dir, e->d_name);
                        break;
                }
        closedir(d);
        *ret_exists = true;
        return r;
}

/* Base DN plus CN "<prefix> <what>", the prefix being the base's own CN
 * (which it replaces) or else its O. */
static int role_subject(fl_ctx *ctx, const char *base, const char *what, X509_NAME **ret)
{
        X509_NAME *n = NULL;
        unsigned char *prefix = NULL;
        char cn[256];
        int idx = -1, i, r;

        if (base && *base) {
                r = x509_name_parse(ctx, base, &n);
                if (r < 0)
                        return fl_err_hint(ctx, FL_HINT_SUBJECT, r, "subject: %s", fl_ctx_last_error(ctx));
                for (i = -1; (i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0;)
                        idx = i;
                if (idx < 0)
                        for (i = -1; (i = X509_NAME_get_index_by_NID(n, NID_organizationName, i)) >= 0;)
                                idx = i;
                if (idx >= 0 &&
                    ASN1_STRING_to_UTF8(&prefix, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx))) < 0) {
                        X509_NAME_free(n);
                        return -ENOMEM;
                }
                if (idx >= 0 && OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(n, idx))) ==
                                        NID_commonName)
                        X509_NAME_ENTRY_free(X509_NAME_delete_entry(n, idx));
        } else {
                n = X509_NAME_new();
                if (!n)
                        return -ENOMEM;
        }
        if (prefix)
                snprintf(cn, sizeof(cn), "%s %s", (char *)prefix, what);
        else
                snprintf(cn, sizeof(cn), "%s", what);
        OPENSSL_free(prefix);
        if (strlen(cn) > 64) {
                X509_NAME_free(n);
                return fl_err_hint(ctx, FL_HINT_SUBJECT, -EINVAL, "subject: common name '%s' is longer than 64 characters", cn);
        }
        if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0)) {
                X509_NAME_free(n);
                return fl_err_hint(ctx, FL_HINT_SUBJECT, -EINVAL, "subject: common name '%s' is not acceptable", cn);
        }
        *ret = n;
        return 0;
}

/* An unencrypted RSA-2048/3072 PEM private key (the file is a secret: read
 * into a wiped buffer). */
/* Refuses every passphrase request: an encrypted key file fails (even one
 * encrypted with an empty passphrase) instead of prompting or guessing. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
        (void)buf;
        (void)size;
        (void)rwflag;
        (void)u;
        return -1;
}

static int load_import_key(fl_ctx *ctx, const char *dir, const char *file, EVP_PKEY **ret, enum key_type *ret_type)
{
        char name[32], *path;
        EVP_PKEY *pk = NULL;
        int r, bits;

        snprintf(name, sizeof(name), "%s.key", file);
        path = path_join(dir, name);
        if (!path)
                return -ENOMEM;
        r = pkey_read_pem(ctx, path, false, refuse_passphrase, NULL, &pk);
        if (r < 0)
                goto out;
        ERR_clear_error();
        if (!pk) {
                r = fl_err(ctx, -EINVAL, "%s: not an unencrypted PEM private key", path);
                goto out;
        }
        bits = EVP_PKEY_get_bits(pk);
        if (!EVP_PKEY_is_a(pk, "RSA") || (bits != 2048 && bits != 3072)) {
                r = fl_err(ctx, -EINVAL, "%s: a %s-%d key; UEFI keys are RSA-2048 or RSA-3072", path,
                           EVP_PKEY_get0_type_name(pk), bits);
                goto out;
        }
        *ret_type = bits == 2048 ? KT_RSA2K : KT_RSA3K;
        *ret = pk;
        pk = NULL;
        r = 0;
out:
        EVP_PKEY_free(pk);
        free(path);
        return r;
}

static char *conf_text(const efi_guid *owner, const char *db_uri, const struct efi_time *t)
{
        struct fl_buf b = { 0 };
        char g[37], ts[20], now[32];

        uefi_guid_format(owner, g);
        uefi_time_format(t, ts);
        time_now_utc(now, sizeof(now));
        fl_buf_printf(&b,
                  "# uefi_keys.conf: UEFI Secure Boot keys for NVIDIA Jetson (JetPack 6), written by\n"
                  "# fuseline %s at %s. Read by flash.sh / l4t_initrd_flash.sh --uefi-keys and\n"
                  "# by tools/gen_uefi_keys_dts.sh; every file named here is in this directory.\n"
                  "#\n"
                  "# Owner GUID of every signature list: %s\n"
                  "# PK.auth, KEK.auth, db.auth timestamp: %s UTC (noPK.auth: one second later)\n"
                  "#\n"
                  "# The db signing key is not a file: it stays in the PKCS#11 token as\n"
                  "#   %s\n"
                  "# so UEFI_DB_1_KEY_FILE is deliberately not set. Sign the UEFI payloads with\n"
                  "# `fuseline sign` (UEFI payload mode) and BOOTAA64.efi with `sbsign --engine pkcs11`\n"
                  "# before flashing (see the fuseline README, HSM flow).\n"
                  "UEFI_DB_1_CERT_FILE=\"db_1.crt\";\n"
                  "\n"
                  "UEFI_DEFAULT_PK_ESL=\"PK.esl\";\n"
                  "UEFI_DEFAULT_KEK_ESL_0=\"KEK.esl\";\n"
                  "UEFI_DEFAULT_DB_ESL_0=\"db.esl\";\n",
                  fl_version(), now, g, ts, db_uri);
        return fl_buf_take_str(&b);
}

/* ---- keygen ------------------------------------------------------------------------------------- */

void uefi_keygen_result_free(struct uefi_keygen_result *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < UEFI_ROLE_COUNT; i++) {
                free(r->keys[i].label);
                free(r->keys[i].uri);
                free(r->keys[i].cert_path);
                free(r->keys[i].subject);
        }
        free(r->out_dir);
        memset(r, 0, sizeof(*r));
}

static int keyset_record(fl_ctx *ctx, const struct uefi_keygen_opts *o, const struct uefi_keygen_result *res)
{
        char g[37];
        int r = 0;

        uefi_guid_format(&o->owner, g);
        for (size_t i = 0; i < res->n_keys && r == 0; i++) {
                const struct uefi_keygen_key *k = &res->keys[i];
                struct ks_key e = { .role = (char *)role_defs[k->role].role, .type = k->type, .label = k->label,
                                    .uri = k->uri, .public_key_sha256 = (char *)k->spki_sha256,
                                    .imported = k->imported };
                e.extra = json_object_new_object();
                if (!e.extra)
                        return -ENOMEM;
                json_object_object_add(e.extra, "certificate", json_object_new_string(k->cert_path));
                json_object_object_add(e.extra, "certificate_sha256", json_object_new_string(k->cert_sha256));
                json_object_object_add(e.extra, "subject", json_object_new_string(k->subject));
                json_object_object_add(e.extra, "owner_guid", json_object_new_string(g));
                json_object_object_add(e.extra, "bundle", json_object_new_string(res->out_dir));
                r = keyset_add(o->ks, &e);
                json_object_put(e.extra);
        }
        if (r < 0)
                return r;
        return keyset_save(ctx, o->ks, o->ks_path);
}

int uefi_keygen(fl_ctx *ctx, fl_token *tok, const struct uefi_keygen_opts *o, struct uefi_keygen_result *ret)
{
        struct uefi_keygen_result res = { 0 };
        struct stage st = { 0 };
        size_t nroles = 2 + (o->db_count == 2 ? 1 : 0) + (o->db_count >= 1 ? 1 : 0);
        token_obj priv[UEFI_ROLE_COUNT] = { 0 }, pub[UEFI_ROLE_COUNT] = { 0 };
        bool made[UEFI_ROLE_COUNT] = { false }, existed = false, renamed = false;
        X509 *cert[UEFI_ROLE_COUNT] = { NULL };
        x509_signer *sg[UEFI_ROLE_COUNT] = { NULL };
        unsigned char *esl[UEFI_ROLE_COUNT] = { NULL }, *db = NULL, *a = NULL;
        size_t esl_len[UEFI_ROLE_COUNT] = { 0 }, db_len = 0, a_len = 0;
        char *tmpl = NULL, *text = NULL, *outdir = NULL;
        struct efi_time nopk_time = o->time;
        int r;

        if (!o->import_dir && o->type != KT_RSA2K && o->type != KT_RSA3K)
                return fl_err(ctx, -EINVAL, "UEFI keys are RSA-2048 or RSA-3072 (edk2 reads db/KEK/PK as RSA)");
        if (o->db_count < 1 || o->db_count > 2)
                return fl_err(ctx, -EINVAL, "the number of db keys must be 1 or 2, not %u", o->db_count);
        if (o->days == 0)
                return fl_err(ctx, -EINVAL, "the certificates' validity must be at least 1 day");
        if (!o->name || !label_ok(o->name))
                return fl_err(ctx, -EINVAL, "name '%s': use 1-48 of A-Z a-z 0-9 . _ -", o->name ? o->name : "");
        if (!o->out_dir || !*o->out_dir)
                return fl_err_hint(ctx, FL_HINT_OUT_DIR, -EINVAL, "UEFI keys need an output directory");
        if (uefi_time_add(&nopk_time, 1) < 0)
                return fl_err(ctx, -EINVAL, "timestamp: no later second exists for noPK.auth");
        for (size_t i = 0; o->ks && i < nroles; i++)
                if (keyset_find(o->ks, role_defs[i].role))
                        return fl_err(ctx, -EEXIST, "%s: already has role %s; fuseline never replaces keys",
                                      o->ks_path, role_defs[i].role);
        {
                X509_NAME *probe = NULL; /* a bad --subject fails before any key exists */
                r = role_subject(ctx, o->subject, role_defs[UEFI_ROLE_DB2].cn, &probe);
                X509_NAME_free(probe);
                if (r < 0)
                        return r;
        }
        r = out_dir_check(ctx, o->out_dir, &existed);
        if (r < 0)
                return r;

        /* Every label free before the first key is made. */
        for (size_t i = 0; i < nroles; i++) {
                size_t cnt = 0;
                if (asprintf(&res.keys[i].label, "%s-%s", o->name, role_defs[i].role) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                res.keys[i].role = (enum uefi_role)i;
                r = token_count_label(tok, res.keys[i].label, &cnt);
                if (r < 0)
                        goto fail;
                if (cnt) {
                        r = fl_err_hint(ctx, FL_HINT_TOKEN_LABEL, -EEXIST,
                                        "token '%s' already holds an object labelled '%s'; fuseline never "
                                        "replaces keys",
                                   token_get_info(tok)->label, res.keys[i].label);
                        goto fail;
                }
        }
        res.n_keys = nroles;

        /* The staging directory sits beside the target so one rename(2)
         * publishes the whole bundle. */
        {
                size_t n = strlen(o->out_dir);
                while (n > 1 && o->out_dir[n - 1] == '/')
                        n--;
                if (asprintf(&tmpl, "%.*s.tmp.XXXXXX", (int)n, o->out_dir) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (!mkdtemp(tmpl)) {
                r = fl_err(ctx, -EINVAL, "%s: cannot create the bundle directory: %s", o->out_dir, strerror(errno));
                goto fail;
        }
        st.dir = tmpl;
        tmpl = NULL;

        for (size_t i = 0; i < nroles; i++) {
                unsigned char id[ID_LEN];
                struct keygen_spec spec = { .label = res.keys[i].label, .id = id, .id_len = ID_LEN, .type = o->type };
                struct x509_cert_spec cs = { .days = o->days, .ca = 1, .path_len = -1, .bc_critical = true,
                                             .ski = true, .aki = true, .hash = X509H_SHA256 };
                X509_NAME *subj = NULL;
                unsigned char *der = NULL;
                size_t der_len = 0, pem_len = 0;
                char *pem = NULL, name[32];

                /* SIGINT/SIGTERM: roll back what exists so far (fail:). */
                r = fl_interrupted(ctx);
                if (r == 0)
                        r = token_random_id(tok, id, sizeof(id));
                if (r < 0)
                        goto fail;
                res.keys[i].type = o->type;
                if (o->import_dir) {
                        EVP_PKEY *pk = NULL;
                        r = load_import_key(ctx, o->import_dir, role_defs[i].file, &pk, &res.keys[i].type);
                        if (r < 0)
                                goto fail;
                        r = token_import_pkey(tok, pk, res.keys[i].label, id, ID_LEN, &priv[i], &pub[i]);
                        EVP_PKEY_free(pk);
                        res.keys[i].imported = true;
                } else {
                        r = token_keygen(tok, &spec, &priv[i], &pub[i]);
                }
                if (r < 0)
                        goto fail;
                made[i] = true;
                res.keys[i].uri = token_object_uri(tok, res.keys[i].label, id, ID_LEN, CKO_PRIVATE_KEY);
                if (!res.keys[i].uri) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = x509_signer_token(ctx, tok, priv[i], &sg[i]);
                if (r < 0)
                        goto fail;
                r = pkey_spki_sha256(ctx, x509_signer_pubkey(sg[i]), res.keys[i].spki_sha256);
                if (r < 0)
                        goto fail;
                r = role_subject(ctx, o->subject, role_defs[i].cn, &subj);
                if (r < 0)
                        goto fail;
                cs.subject_name = subj;
                r = x509_cert_build(ctx, &cs, sg[i], &cert[i]);
                X509_NAME_free(subj);
                if (r < 0)
                        goto fail;
                res.keys[i].subject = x509_name_text(X509_get_subject_name(cert[i]));
                if (!res.keys[i].subject) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = x509_cert_sha256(cert[i], res.keys[i].cert_sha256);
                if (r < 0)
                        goto fail;
                r = x509_cert_der(cert[i], &der, &der_len);
                if (r < 0)
                        goto fail;
                r = x509_cert_pem(cert[i], &pem, &pem_len);
                if (r == 0) {
                        snprintf(name, sizeof(name), "%s.crt", role_defs[i].file);
                        r = stage_write(ctx, &st, name, pem, pem_len);
                }
                if (r == 0) {
                        snprintf(name, sizeof(name), "%s.der", role_defs[i].file);
                        r = stage_write(ctx, &st, name, der, der_len);
                }
                if (r == 0)
                        r = uefi_esl_x509(ctx, &o->owner, der, der_len, &esl[i], &esl_len[i]);
                OPENSSL_free(der);
                free(pem);
                if (r < 0)
                        goto fail;
        }

        /* One list per certificate; a multi-cert db is lists concatenated (§1.2). */
        if ((r = fl_interrupted(ctx)) < 0)
                goto fail;
        {
                struct fl_buf dbb = { 0 };
                for (size_t i = UEFI_ROLE_DB1; i < nroles && r == 0; i++)
                        r = fl_buf_put(&dbb, esl[i], esl_len[i]);
                db = dbb.p;
                db_len = dbb.len;
                if (r < 0)
                        goto fail;
        }
        if ((r = stage_write(ctx, &st, "PK.esl", esl[UEFI_ROLE_PK], esl_len[UEFI_ROLE_PK])) < 0 ||
            (r = stage_write(ctx, &st, "KEK.esl", esl[UEFI_ROLE_KEK], esl_len[UEFI_ROLE_KEK])) < 0 ||
            (r = stage_write(ctx, &st, "db.esl", db, db_len)) < 0)
                goto fail;

        /* PK is self-signed, KEK is signed by PK, db by KEK (§3.5); noPK
         * (empty PK, back to setup mode) is signed by PK one second later,
         * because firmware refuses a PK write not newer than the stored
         * one (§1.8). */
        {
                static const struct {
                        const char *file;
                        enum uefi_var var;
                        enum uefi_role signer;
                        int payload; /* role whose ESL, -1: db.esl, -2: empty */
                } auths[] = {
                        { "PK.auth", UEFI_VAR_PK, UEFI_ROLE_PK, UEFI_ROLE_PK },
                        { "KEK.auth", UEFI_VAR_KEK, UEFI_ROLE_PK, UEFI_ROLE_KEK },
                        { "db.auth", UEFI_VAR_DB, UEFI_ROLE_KEK, -1 },
                        { "noPK.auth", UEFI_VAR_PK, UEFI_ROLE_PK, -2 },
                };
                for (size_t i = 0; i < FL_ARRAY_SIZE(auths); i++) {
                        const unsigned char *pl = auths[i].payload >= 0 ? esl[auths[i].payload]
                                                  : auths[i].payload == -1 ? db
                                                                           : NULL;
                        size_t pll = auths[i].payload >= 0 ? esl_len[auths[i].payload]
                                     : auths[i].payload == -1 ? db_len
                                                              : 0;
                        r = uefi_auth_build(ctx, sg[auths[i].signer], cert[auths[i].signer], auths[i].var,
                                            UEFI_ATTRS_REPLACE, auths[i].payload == -2 ? &nopk_time : &o->time, pl,
                                            pll, &a, &a_len);
                        if (r < 0)
                                goto fail;
                        r = stage_write(ctx, &st, auths[i].file, a, a_len);
                        free(a);
                        a = NULL;
                        if (r < 0)
                                goto fail;
                }
        }

        if ((r = fl_interrupted(ctx)) < 0)
                goto fail;
        text = conf_text(&o->owner, res.keys[UEFI_ROLE_DB1].uri, &o->time);
        if (!text) {
                r = -ENOMEM;
                goto fail;
        }
        r = stage_write(ctx, &st, UEFI_CONF_NAME, text, strlen(text));
        free(text);
        text = uefi_dts_default(esl[UEFI_ROLE_PK], esl_len[UEFI_ROLE_PK], esl[UEFI_ROLE_KEK], esl_len[UEFI_ROLE_KEK],
                                db, db_len, NULL, 0);
        if (r < 0 || !text) {
                r = r < 0 ? r : -ENOMEM;
                goto fail;
        }
        r = stage_write(ctx, &st, UEFI_DEFAULT_DTS, text, strlen(text));
        if (r < 0)
                goto fail;
        {
                char *dts = path_join(st.dir, UEFI_DEFAULT_DTS), *dtbo = path_join(st.dir, UEFI_DEFAULT_DTBO);
                r = dts && dtbo ? uefi_dtc(ctx, dts, dtbo) : -ENOMEM;
                free(dts);
                free(dtbo);
                if (r == 0) {
                        res.dtbo = true;
                        r = stage_note(&st, UEFI_DEFAULT_DTBO);
                } else if (r == -ENOENT) {
                        r = 0; /* dtc not installed: the .dts is still there */
                        fl_log(ctx, FL_LOG_WARN, "dtc is not installed: %s was not compiled to %s", UEFI_DEFAULT_DTS,
                               UEFI_DEFAULT_DTBO);
                }
                if (r < 0)
                        goto fail;
        }

        /* The last point of return: after the rename the bundle stands. */
        if ((r = fl_interrupted(ctx)) < 0)
                goto fail;
        if (chmod(st.dir, 0755) < 0 || rename(st.dir, o->out_dir) < 0) {
                r = errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR
                            ? fl_err(ctx, -EEXIST, "%s: appeared while the bundle was made; not replacing it",
                                     o->out_dir)
                            : fl_err(ctx, -EINVAL, "%s: cannot create: %s", o->out_dir, strerror(errno));
                goto fail;
        }
        renamed = true;
        outdir = realpath(o->out_dir, NULL);
        if (!outdir) {
                r = fl_err(ctx, -EIO, "%s: %s", o->out_dir, strerror(errno));
                goto fail;
        }
        res.out_dir = outdir;
        for (size_t i = 0; i < nroles; i++) {
                char name[32];
                snprintf(name, sizeof(name), "%s.crt", role_defs[i].file);
                res.keys[i].cert_path = path_join(outdir, name);
                if (!res.keys[i].cert_path) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (o->ks) {
                r = keyset_record(ctx, o, &res);
                if (r < 0)
                        goto fail;
        }
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
        goto out;
fail:
        if (renamed)
                stage_remove(&st, o->out_dir, !existed);
        else if (st.dir)
                stage_remove(&st, st.dir, true);
        for (size_t i = 0; i < UEFI_ROLE_COUNT; i++)
                if (made[i]) {
                        /* Undo only what this call created. */
                        token_destroy(tok, priv[i]);
                        token_destroy(tok, pub[i]);
                }
out:
        for (size_t i = 0; i < UEFI_ROLE_COUNT; i++) {
                X509_free(cert[i]);
                x509_signer_free(sg[i]);
                free(esl[i]);
        }
        free(db);
        free(a);
        free(text);
        free(tmpl);
        stage_free(&st);
        uefi_keygen_result_free(&res);
        return r;
}
