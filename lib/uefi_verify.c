/* uefi_verify.c — checking a bundle: every file, signature and the conf. */
#include "uefi_int.h"

/* ---- checking a bundle ------------------------------------------------------------------------------------ */

static void FL_PRINTF(3, 4) rep_add(char ***arr, size_t *n, const char *fmt, ...)
{
        char *s = NULL, **na;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return;
        na = realloc(*arr, (*n + 1) * sizeof(*na));
        if (!na) {
                free(s);
                return;
        }
        na[(*n)++] = s;
        *arr = na;
}

#define PROBLEM(...) rep_add(&rep->problems, &rep->n_problems, __VA_ARGS__)
#define CHECKED(...) rep_add(&rep->checked, &rep->n_checked, __VA_ARGS__)
#define NOTE(...) rep_add(&rep->notes, &rep->n_notes, __VA_ARGS__)
#define LASTERR() (fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "error")

void uefi_verify_report_free(struct uefi_verify_report *rep)
{
        if (!rep)
                return;
        for (size_t i = 0; i < rep->n_problems; i++)
                free(rep->problems[i]);
        for (size_t i = 0; i < rep->n_checked; i++)
                free(rep->checked[i]);
        for (size_t i = 0; i < rep->n_notes; i++)
                free(rep->notes[i]);
        free(rep->problems);
        free(rep->checked);
        free(rep->notes);
        memset(rep, 0, sizeof(*rep));
}

struct vfile {
        const char *name;
        unsigned char *data;
        size_t len;
        bool ok;
};

static void vload(fl_ctx *ctx, const char *dir, struct vfile *f, bool required, struct uefi_verify_report *rep)
{
        char *p = path_join(dir, f->name);

        if (!p)
                return;
        if (access(p, F_OK) < 0) {
                if (required)
                        PROBLEM("%s: missing", f->name);
        } else if (file_read(ctx, p, BUNDLE_FILE_MAX, &f->data, &f->len) < 0) {
                PROBLEM("%s", LASTERR());
        } else {
                f->ok = true;
        }
        free(p);
}

/* Certificates of the X.509 entries of an ESL. */
static STACK_OF(X509) *esl_certs(const struct uefi_esl_entry *e, size_t n)
{
        STACK_OF(X509) *sk = sk_X509_new_null();

        for (size_t i = 0; sk && i < n; i++) {
                const unsigned char *p = e[i].data;
                X509 *x;
                if (!uefi_guid_eq(&e[i].type, &EFI_CERT_X509_GUID))
                        continue;
                x = d2i_X509(NULL, &p, (long)e[i].len);
                if (x && !sk_X509_push(sk, x))
                        X509_free(x);
        }
        return sk;
}

/* Verify an .auth against any of the certificates; name the one that fits. */
static void check_auth(fl_ctx *ctx, struct uefi_verify_report *rep, const struct vfile *f, enum uefi_var v,
                       uint32_t attrs, STACK_OF(X509) *signers, const char *signer_what,
                       const unsigned char *want, size_t want_len, bool check_payload, struct efi_time *ret_time)
{
        struct uefi_auth a;
        char why[FL_ERRMSG_MAX] = "";

        if (!f->ok)
                return;
        if (uefi_auth_parse(ctx, f->name, f->data, f->len, &a) < 0) {
                PROBLEM("%s", LASTERR());
                return;
        }
        if (ret_time)
                *ret_time = a.time;
        if (check_payload && (a.payload_len != want_len || (want_len && memcmp(a.payload, want, want_len)))) {
                PROBLEM("%s: its payload (%zu bytes) is not the signature list it should carry (%zu bytes)", f->name,
                        a.payload_len, want_len);
                return;
        }
        for (int i = 0; i < sk_X509_num(signers); i++) {
                if (uefi_auth_verify(ctx, f->name, v, attrs, f->data, f->len, sk_X509_value(signers, i)) == 0) {
                        char ts[20];
                        uefi_time_format(&a.time, ts);
                        CHECKED("%s: %s, signed by %s, timestamp %s, %zu-byte payload", f->name, uefi_var_name(v),
                                signer_what, ts, a.payload_len);
                        fl_err_clear(ctx);
                        return;
                }
                snprintf(why, sizeof(why), "%s", LASTERR());
        }
        PROBLEM("%s: signature does not verify with %s%s%s", f->name, signer_what, *why ? ": " : "", why);
}

static void check_dt(fl_ctx *ctx, struct uefi_verify_report *rep, const struct vfile *dts, const struct vfile *dtbo,
                     const char *guid_node, const char *node, const unsigned char *want, size_t want_len)
{
        unsigned char *got = NULL;
        const unsigned char *bp;
        size_t got_len = 0, bl = 0;
        char path[256];
        int r;

        if (dts->ok) {
                r = uefi_dts_get(ctx, dts->name, (const char *)dts->data, dts->len, node, &got, &got_len);
                if (r == -ENOENT)
                        PROBLEM("%s: no node %s", dts->name, node);
                else if (r < 0)
                        PROBLEM("%s", LASTERR());
                else if (got_len != want_len || memcmp(got, want, want_len))
                        PROBLEM("%s: %s holds %zu bytes that differ from the %zu-byte list it should carry", dts->name,
                                node, got_len, want_len);
                else
                        CHECKED("%s: %s carries the expected %zu bytes", dts->name, node, want_len);
                free(got);
        }
        if (dtbo->ok) {
                snprintf(path, sizeof(path), "/fragment@0/__overlay__/firmware/uefi/variables/%s/%s", guid_node, node);
                r = uefi_fdt_get(ctx, dtbo->name, dtbo->data, dtbo->len, path, "data", &bp, &bl);
                if (r == -ENOENT)
                        PROBLEM("%s: no %s/data", dtbo->name, path);
                else if (r < 0)
                        PROBLEM("%s", LASTERR());
                else if (bl != want_len || memcmp(bp, want, want_len))
                        PROBLEM("%s: %s holds %zu bytes that differ from the %zu-byte list it should carry",
                                dtbo->name, node, bl, want_len);
                else
                        CHECKED("%s: %s carries the expected %zu bytes", dtbo->name, node, want_len);
        }
}

/* Concatenation of the files UEFI_DEFAULT_<what>_ESL_0..2 name. */
static int conf_concat(fl_ctx *ctx, const char *dir, const struct uefi_conf *c, const char *what,
                       unsigned char **ret, size_t *ret_len)
{
        struct fl_buf all = { 0 };
        unsigned char *d = NULL;
        size_t dl = 0;
        char var[64];
        int r = 0;

        for (int i = 0; i < 3 && r == 0; i++) {
                const char *v;
                snprintf(var, sizeof(var), "UEFI_DEFAULT_%s_ESL_%d", what, i);
                v = uefi_conf_get(c, var);
                if (!v || !*v)
                        continue;
                r = read_in_dir(ctx, dir, v, &d, &dl);
                if (r == 0)
                        r = fl_buf_put(&all, d, dl);
                free(d);
                d = NULL;
        }
        if (r < 0 || !all.p) {
                fl_buf_free(&all);
                return r < 0 ? r : -ENOENT;
        }
        *ret = all.p;
        *ret_len = all.len;
        return 0;
}

int uefi_verify_bundle(fl_ctx *ctx, const char *dir, struct uefi_verify_report *rep)
{
        static const char *const gguid = "gEfiGlobalVariableGuid", *const nguid = "gNVIDIAPublicVariableGuid";
        struct vfile pk = { .name = "PK.esl" }, kek = { .name = "KEK.esl" }, db = { .name = "db.esl" }, pka = { .name = "PK.auth" },
                     keka = { .name = "KEK.auth" }, dba = { .name = "db.auth" }, nopk = { .name = "noPK.auth" }, conff = { .name = UEFI_CONF_NAME },
                     dts = { .name = UEFI_DEFAULT_DTS }, dtbo = { .name = UEFI_DEFAULT_DTBO }, udts = { .name = UEFI_UPDATE_DTS },
                     udtbo = { .name = UEFI_UPDATE_DTBO };
        struct vfile *all[] = { &pk, &kek, &db, &pka, &keka, &dba, &nopk, &conff, &dts, &dtbo, &udts, &udtbo };
        struct uefi_esl_entry *pke = NULL, *keke = NULL, *dbe = NULL;
        size_t npk = 0, nkek = 0, ndb = 0;
        STACK_OF(X509) *pkc = NULL, *kekc = NULL, *pk_or_kek = NULL;
        struct uefi_conf conf = { 0 };
        bool conf_ok = false;
        struct efi_time t_pk = { 0 }, t_nopk = { 0 };
        struct stat st;
        int r = 0;

        memset(rep, 0, sizeof(*rep));
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return fl_err(ctx, -ENOENT, "%s: not a directory", dir);
        /* A directory with none of the bundle's files is not a bundle at
         * all (bad input, exit 2), not a bundle failing its checks (5). */
        {
                bool any = false;
                for (size_t i = 0; i < FL_ARRAY_SIZE(all) && !any; i++) {
                        char *p = path_join(dir, all[i]->name);
                        if (!p)
                                return -ENOMEM;
                        any = access(p, F_OK) == 0;
                        free(p);
                }
                if (!any)
                        return fl_err(ctx, -EINVAL, "%s: not a UEFI key bundle (none of PK.esl, KEK.esl, db.esl, "
                                      "PK.auth, " UEFI_CONF_NAME " is there)", dir);
        }

        for (size_t i = 0; i < FL_ARRAY_SIZE(all); i++)
                vload(ctx, dir, all[i], all[i] != &dtbo && all[i] != &udts && all[i] != &udtbo, rep);

        /* Signature lists. */
        if (pk.ok) {
                if (uefi_esl_parse(ctx, pk.name, pk.data, pk.len, &pke, &npk) < 0)
                        PROBLEM("%s", LASTERR());
                else if (npk != 1 || !uefi_guid_eq(&pke[0].type, &EFI_CERT_X509_GUID))
                        PROBLEM("%s: a PK holds exactly one X.509 certificate, this holds %zu entries", pk.name, npk);
                else {
                        char g[37];
                        uefi_guid_format(&pke[0].owner, g);
                        CHECKED("%s: 1 X.509 certificate, owner %s", pk.name, g);
                        pkc = esl_certs(pke, npk);
                }
        }
        if (kek.ok) {
                if (uefi_esl_parse(ctx, kek.name, kek.data, kek.len, &keke, &nkek) < 0)
                        PROBLEM("%s", LASTERR());
                else if (nkek == 0)
                        PROBLEM("%s: empty", kek.name);
                else {
                        kekc = esl_certs(keke, nkek);
                        CHECKED("%s: %zu entries, %d X.509 certificate(s)", kek.name, nkek, sk_X509_num(kekc));
                }
        }
        if (db.ok) {
                if (uefi_esl_parse(ctx, db.name, db.data, db.len, &dbe, &ndb) < 0)
                        PROBLEM("%s", LASTERR());
                else if (ndb == 0)
                        PROBLEM("%s: empty", db.name);
                else
                        CHECKED("%s: %zu entries", db.name, ndb);
        }
        if (!pkc)
                pkc = sk_X509_new_null();
        if (!kekc)
                kekc = sk_X509_new_null();
        pk_or_kek = sk_X509_dup(kekc);
        if (!pkc || !kekc || !pk_or_kek) {
                r = -ENOMEM;
                goto out;
        }
        for (int i = 0; i < sk_X509_num(pkc); i++)
                sk_X509_push(pk_or_kek, sk_X509_value(pkc, i));

        /* Authenticated variables: PK and KEK by PK, db by KEK (§3.5). */
        if (pka.ok && !sk_X509_num(pkc))
                PROBLEM("PK.auth: cannot be checked without a valid PK.esl");
        check_auth(ctx, rep, &pka, UEFI_VAR_PK, UEFI_ATTRS_REPLACE, pkc, "the PK", pk.data, pk.len, pk.ok, &t_pk);
        check_auth(ctx, rep, &keka, UEFI_VAR_KEK, UEFI_ATTRS_REPLACE, pkc, "the PK", kek.data, kek.len, kek.ok, NULL);
        check_auth(ctx, rep, &dba, UEFI_VAR_DB, UEFI_ATTRS_REPLACE, kekc, "a KEK", db.data, db.len, db.ok, NULL);
        check_auth(ctx, rep, &nopk, UEFI_VAR_PK, UEFI_ATTRS_REPLACE, pkc, "the PK", NULL, 0, true, &t_nopk);
        if (pka.ok && nopk.ok && t_pk.year && t_nopk.year) {
                /* EFI_TIME compares field by field from the year down. */
                struct efi_time x = t_pk, y = t_nopk;
                unsigned long long ka = (unsigned long long)x.year << 40 | (unsigned long long)x.month << 32 |
                                        (unsigned long long)x.day << 24 | (unsigned long long)x.hour << 16 |
                                        (unsigned long long)x.minute << 8 | x.second;
                unsigned long long kb = (unsigned long long)y.year << 40 | (unsigned long long)y.month << 32 |
                                        (unsigned long long)y.day << 24 | (unsigned long long)y.hour << 16 |
                                        (unsigned long long)y.minute << 8 | y.second;
                if (kb <= ka)
                        PROBLEM("noPK.auth: timestamp is not later than PK.auth's; firmware refuses it as a replay "
                                "once PK.auth is enrolled");
        }

        /* The conf: plain names of files in this directory. */
        if (conff.ok) {
                if (uefi_conf_parse(ctx, conff.name, (const char *)conff.data, conff.len, &conf) < 0)
                        PROBLEM("%s", LASTERR());
                else {
                        size_t bad = 0;
                        conf_ok = true;
                        for (size_t i = 0; i < conf.n; i++) {
                                char *p;
                                if (!*conf.vars[i].value)
                                        continue;
                                p = path_join(dir, conf.vars[i].value);
                                if (p && (stat(p, &st) < 0 || !S_ISREG(st.st_mode))) {
                                        PROBLEM("%s:%u: %s names %s, which is not a file in %s", conff.name,
                                                conf.vars[i].line, conf.vars[i].name, conf.vars[i].value, dir);
                                        bad++;
                                }
                                free(p);
                        }
                        if (!uefi_conf_get(&conf, "UEFI_DEFAULT_PK_ESL") ||
                            !uefi_conf_get(&conf, "UEFI_DEFAULT_KEK_ESL_0") ||
                            !uefi_conf_get(&conf, "UEFI_DEFAULT_DB_ESL_0")) {
                                PROBLEM("%s: needs UEFI_DEFAULT_PK_ESL, UEFI_DEFAULT_KEK_ESL_0 and UEFI_DEFAULT_DB_ESL_0",
                                        conff.name);
                                bad++;
                        }
                        if (!bad)
                                CHECKED("%s: %zu assignments, every file present", conff.name, conf.n);
                }
        }

        /* The overlays carry what the conf names (that is what NVIDIA's
         * script would put there). */
        if (!dtbo.ok)
                NOTE("%s: absent (dtc was not installed?); flash.sh needs it: dtc -I dts -O dtb -o %s %s",
                     UEFI_DEFAULT_DTBO, UEFI_DEFAULT_DTBO, UEFI_DEFAULT_DTS);
        if (conf_ok) {
                static const struct {
                        const char *what, *node;
                } defs[] = { { "PK", "PKDefault" }, { "KEK", "KEKDefault" }, { "DB", "dbDefault" },
                             { "DBX", "dbxDefault" } };
                for (size_t i = 0; i < FL_ARRAY_SIZE(defs); i++) {
                        unsigned char *want = NULL;
                        size_t wl = 0;
                        int k;
                        if (i == 0) {
                                const char *v = uefi_conf_get(&conf, "UEFI_DEFAULT_PK_ESL");
                                k = v && *v ? read_in_dir(ctx, dir, v, &want, &wl) : -ENOENT;
                        } else {
                                k = conf_concat(ctx, dir, &conf, defs[i].what, &want, &wl);
                        }
                        if (k == 0)
                                check_dt(ctx, rep, &dts, &dtbo, gguid, defs[i].node, want, wl);
                        free(want);
                }
                if (dtbo.ok) {
                        const unsigned char *bp;
                        size_t bl;
                        if (uefi_fdt_get(ctx, dtbo.name, dtbo.data, dtbo.len,
                                         "/fragment@0/__overlay__/firmware/uefi/variables/gNVIDIAPublicVariableGuid/"
                                         "EnrollDefaultSecurityKeys",
                                         "data", &bp, &bl) != 0 ||
                            bl != 1 || bp[0] != 1)
                                PROBLEM("%s: EnrollDefaultSecurityKeys is not [01]", dtbo.name);
                }

                /* Signed updates: KEK by PK, db/dbx by a KEK (or the PK). */
                unsigned nupd[4] = { 0 };
                size_t total = 0;
                for (int v = UEFI_VAR_KEK; v <= UEFI_VAR_DBX; v++)
                        for (int n = 0; n < UEFI_MAX_UPDATES; n++) {
                                static const char *const base[] = { [UEFI_VAR_KEK] = "kekSigned",
                                                                    [UEFI_VAR_DB] = "dbSigned",
                                                                    [UEFI_VAR_DBX] = "dbxSigned" };
                                char var[64], node[32];
                                const char *val;
                                struct vfile u = { .name = NULL };
                                snprintf(var, sizeof(var), "%s_%d", update_prefix[v], n);
                                val = uefi_conf_get(&conf, var);
                                if (!val || !*val)
                                        continue;
                                total++;
                                u.name = val;
                                vload(ctx, dir, &u, true, rep);
                                if (!u.ok)
                                        continue;
                                check_auth(ctx, rep, &u, (enum uefi_var)v, UEFI_ATTRS_APPEND,
                                           v == UEFI_VAR_KEK ? pkc : pk_or_kek, v == UEFI_VAR_KEK ? "the PK"
                                                                                                  : "a KEK or the PK",
                                           NULL, 0, false, NULL);
                                snprintf(node, sizeof(node), "%s_%u", base[v], nupd[v]++);
                                if (!udts.ok)
                                        PROBLEM("%s is listed but %s is missing", val, UEFI_UPDATE_DTS);
                                else
                                        check_dt(ctx, rep, &udts, &udtbo, nguid, node, u.data, u.len);
                                free(u.data);
                        }
                if (total && !udtbo.ok)
                        NOTE("%s: absent; compile %s with dtc for flash.sh", UEFI_UPDATE_DTBO, UEFI_UPDATE_DTS);
        }
        fl_err_clear(ctx);
        r = 0;
out:
        for (size_t i = 0; i < FL_ARRAY_SIZE(all); i++)
                free(all[i]->data);
        free(pke);
        free(keke);
        free(dbe);
        sk_X509_free(pk_or_kek);
        sk_X509_pop_free(pkc, X509_free);
        sk_X509_pop_free(kekc, X509_free);
        uefi_conf_free(&conf);
        return r;
}
