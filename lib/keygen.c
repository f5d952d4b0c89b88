/* keygen.c — a product's secure-boot key set in the token: generation (all
 * or nothing), import of keys made elsewhere, and the keyset-vs-token check
 * behind `fuseline verify keyset`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <p11-kit/pkcs11.h>

#include "keygen.h"
#include "tegra_key.h"

#define ID_LEN 16
#define MAX_CREATED 32

struct created {
        token_obj objs[MAX_CREATED];
        size_t n;
};

static void created_add(struct created *c, token_obj o)
{
        if (o && c->n < MAX_CREATED)
                c->objs[c->n++] = o;
}

static void created_rollback(fl_token *tok, struct created *c)
{
        /* Only objects this run made: keygen never deletes anything else. */
        while (c->n)
                (void)token_destroy(tok, c->objs[--c->n]);
}

/* The header of a new manifest: profile, name, creation time and the token
 * it lives on. */
static int keyset_head(struct keyset *ks, bool lab, const char *name, fl_token *tok)
{
        const struct token_info *ti = token_get_info(tok);
        char now[32];

        time_now_utc(now, sizeof(now));
        ks->profile = strdup(lab ? "lab" : "production");
        ks->name = strdup(name);
        ks->created = strdup(now);
        free(ks->token_uri);
        ks->token_uri = token_uri(tok);
        ks->token_label = strdup(ti->label);
        ks->token_serial = strdup(ti->serial);
        ks->token_model = strdup(ti->model);
        ks->token_manufacturer = strdup(ti->manufacturer);
        if (!ks->profile || !ks->name || !ks->created || !ks->token_uri || !ks->token_label || !ks->token_serial ||
            !ks->token_model || !ks->token_manufacturer)
                return -ENOMEM;
        return 0;
}

/* Public facts of a key pair: SPKI SHA-256 and, for PKC roles, the
 * PublicKeyHash fuse value. */
static int describe_pair(fl_ctx *ctx, fl_token *tok, enum fl_chip chip, token_obj priv, bool pkc, struct ks_key *k)
{
        EVP_PKEY *pk = NULL;
        char fp[65];
        int r;

        r = token_get_pubkey(tok, priv, &pk);
        if (r < 0)
                return r;
        r = pkey_spki_sha256(ctx, pk, fp);
        if (r < 0)
                goto out;
        k->public_key_sha256 = strdup(fp);
        if (!k->public_key_sha256) {
                r = -ENOMEM;
                goto out;
        }
        if (pkc) {
                r = tegra_pkc_hash_hex(ctx, chip, pk, &k->tegra_pkc_hash);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        EVP_PKEY_free(pk);
        return r;
}

static enum key_type generic_twin(enum key_type t)
{
        return t == KT_AES128 ? KT_GENERIC128 : KT_GENERIC256;
}

/* The fuse key's HMAC twin: the same value as a non-extractable
 * CKK_GENERIC_SECRET, because tokens (SoftHSM2 among them) run CKM_AES_CMAC
 * only on CKK_AES and CKM_SHA256_HMAC only on CKK_GENERIC_SECRET keys. */
static int make_twin(fl_ctx *ctx, fl_token *tok, token_obj aes, enum key_type t, const char *label,
                     const unsigned char *id, struct created *c, char **ret_uri)
{
        struct fl_secret v = { 0 };
        token_obj twin = 0;
        int r;

        r = token_read_secret(tok, aes, &v);
        if (r < 0)
                return r;
        r = token_import_secret(tok, generic_twin(t), v.data, v.len, label, id, ID_LEN, false, &twin);
        secret_wipe(&v);
        if (r < 0)
                return r;
        created_add(c, twin);
        *ret_uri = token_object_uri(tok, label, id, ID_LEN, CKO_SECRET_KEY);
        (void)ctx;
        return *ret_uri ? 0 : -ENOMEM;
}

static int fuse_key_entry(fl_ctx *ctx, fl_token *tok, const char *prefix, const char *role, enum key_type t,
                          token_obj obj, const unsigned char *id, struct created *c, struct ks_key *k)
{
        char label[160], twin[170], kcv[7];
        unsigned char twin_id[ID_LEN];
        int r;

        snprintf(label, sizeof(label), "%s-%s", prefix, role);
        snprintf(twin, sizeof(twin), "%s-%s-hmac", prefix, role);
        r = token_aes_kcv(tok, obj, kcv);
        if (r < 0)
                return r;
        /* EKB payload keys are used with AES mechanisms only (CBC/CMAC in the
         * EKB and LUKS chains), so they get no HMAC twin. */
        if (role_kind(role) == ROLE_FUSE_KEY) {
                r = token_random_id(tok, twin_id, sizeof(twin_id));
                if (r < 0)
                        return r;
                r = make_twin(ctx, tok, obj, t, twin, twin_id, c, &k->hmac_uri);
                if (r < 0)
                        return r;
        }
        k->role = strdup(role);
        k->type = t;
        k->label = strdup(label);
        k->uri = token_object_uri(tok, label, id, ID_LEN, CKO_SECRET_KEY);
        k->kcv = strdup(kcv);
        if (!k->role || !k->label || !k->uri || !k->kcv)
                return -ENOMEM;
        return 0;
}

static int check_labels_free(fl_ctx *ctx, fl_token *tok, const char *const *labels, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t cnt = 0;
                int r = token_count_label(tok, labels[i], &cnt);
                if (r < 0)
                        return r;
                if (cnt)
                        return fl_err_hint(ctx, FL_HINT_TOKEN_LABEL, -EEXIST,
                                           "token '%s' already holds an object labelled '%s'; fuseline never "
                                           "replaces keys", token_get_info(tok)->label, labels[i]);
        }
        return 0;
}

int keygen_run(fl_ctx *ctx, const struct token_opts *opts, const struct keygen_req *req, struct keyset **ret)
{
        struct token_opts o = *opts;
        const char *roles[16];
        enum key_type types[16];
        size_t n_roles = 0, n_labels = 0;
        char *labels[40] = { 0 };
        struct created made = { 0 };
        struct keyset *ks = NULL;
        fl_token *tok = NULL;
        token_obj kek01[2] = { 0, 0 };
        bool kek256_derived = false;
        int r;

        r = pkc_type_check(ctx, req->chip, req->pkc_type);
        if (r < 0)
                return r;
        if (req->chip == FL_CHIP_T194 && req->pkc_count != 1)
                return fl_err(ctx, -EINVAL, "t194 has one PKC key; %u PKC keys are for t234 only", req->pkc_count);
        if (req->pkc_count < 1 || req->pkc_count > 3)
                return fl_err(ctx, -EINVAL, "%u PKC keys: t234 takes 1 to 3", req->pkc_count);
        if (!req->name || !*req->name || strlen(req->name) > 64 || strchr(req->name, '/'))
                return fl_err(ctx, -EINVAL, "keyset name '%s': 1 to 64 characters, no '/'", req->name ? req->name : "");
        for (size_t i = 0; i < req->n_fuse_roles; i++) {
                bool dup = false;
                for (size_t j = 0; j < n_roles; j++)
                        dup |= !strcmp(roles[j], req->fuse_roles[i]);
                if (dup)
                        continue;
                r = role_check(ctx, req->chip, req->fuse_roles[i], &types[n_roles]);
                if (r < 0)
                        return r;
                roles[n_roles++] = req->fuse_roles[i];
        }
        /* NVIDIA's R32 README says Kek256 is Kek0 followed by Kek1 [U: not
         * confirmed elsewhere]. Safe side: with all three, Kek256 is made from
         * the other two (so burning both can never conflict); with only one of
         * Kek0/Kek1 it would overlap a key we do not make, so refuse. */
        {
                int k0 = -1, k1 = -1, k256 = -1;
                for (size_t i = 0; i < n_roles; i++) {
                        if (!strcmp(roles[i], "kek0"))
                                k0 = (int)i;
                        else if (!strcmp(roles[i], "kek1"))
                                k1 = (int)i;
                        else if (!strcmp(roles[i], "kek256"))
                                k256 = (int)i;
                }
                if (k256 >= 0 && (k0 >= 0) != (k1 >= 0))
                        return fl_err(ctx, -EINVAL, "kek256 with only one of kek0/kek1: Kek256 is Kek0 followed "
                                      "by Kek1 on t194, so ask for all three (Kek256 is then made from the other "
                                      "two) or for kek256 alone");
                if (k256 >= 0 && k0 >= 0) {
                        /* Move kek256 last so kek0/kek1 exist when it is made. */
                        for (size_t i = (size_t)k256; i + 1 < n_roles; i++) {
                                roles[i] = roles[i + 1];
                                types[i] = types[i + 1];
                        }
                        roles[n_roles - 1] = "kek256";
                        types[n_roles - 1] = KT_AES256;
                        kek256_derived = true;
                }
        }

        r = -ENOMEM;
        for (unsigned i = 0; i < req->pkc_count; i++)
                if (asprintf(&labels[n_labels++], "%s-pkc%u", req->name, i) < 0)
                        goto out;
        for (size_t i = 0; i < n_roles; i++) {
                if (asprintf(&labels[n_labels++], "%s-%s", req->name, roles[i]) < 0 ||
                    asprintf(&labels[n_labels++], "%s-%s-hmac", req->name, roles[i]) < 0)
                        goto out;
        }

        /* Refuse an existing manifest before touching the token. */
        if (req->out && access(req->out, F_OK) == 0) {
                r = fl_err(ctx, -EEXIST, "%s already exists; keygen never overwrites a manifest", req->out);
                goto out;
        }
        o.login = true;
        o.production = !req->lab;
        r = token_open(ctx, &o, &tok);
        if (r < 0)
                goto out;
        /* All labels are checked before anything is made: a conflict leaves
         * the token exactly as it was. */
        r = check_labels_free(ctx, tok, (const char *const *)labels, n_labels);
        if (r < 0)
                goto out;
        if (!req->lab && strstr(token_get_info(tok)->model, "SoftHSM"))
                fl_log(ctx, FL_LOG_WARN,
                       "creating a production keyset on a software token (%s): its keys live in files on this "
                       "host; rehearsals use a lab keyset", token_get_info(tok)->model);

        r = keyset_new(&ks);
        if (r < 0)
                goto out;
        ks->chip = req->chip;
        r = keyset_head(ks, req->lab, req->name, tok);
        if (r < 0)
                goto out;

        for (unsigned i = 0; i < req->pkc_count; i++) {
                unsigned char id[ID_LEN];
                struct keygen_spec spec = { .label = labels[i], .id = id, .id_len = ID_LEN, .type = req->pkc_type };
                struct ks_key k = { 0 };
                token_obj priv = 0, pub = 0;
                char role[16];

                /* SIGINT/SIGTERM: undo the keys made so far (out:). */
                r = fl_interrupted(ctx);
                if (r == 0)
                        r = token_random_id(tok, id, sizeof(id));
                if (r < 0)
                        goto out;
                fl_log(ctx, FL_LOG_INFO, "generating %s key %s", key_type_name(req->pkc_type), labels[i]);
                r = token_keygen(tok, &spec, &priv, &pub);
                if (r < 0)
                        goto out;
                created_add(&made, priv);
                created_add(&made, pub);
                snprintf(role, sizeof(role), "pkc%u", i);
                k.role = strdup(role);
                k.type = req->pkc_type;
                k.label = strdup(labels[i]);
                k.uri = token_object_uri(tok, labels[i], id, ID_LEN, CKO_PRIVATE_KEY);
                r = describe_pair(ctx, tok, req->chip, priv, true, &k);
                if (r == 0 && (!k.role || !k.label || !k.uri))
                        r = -ENOMEM;
                if (r == 0)
                        r = keyset_add(ks, &k);
                ks_key_clear(&k);
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < n_roles; i++) {
                const char *label = labels[req->pkc_count + 2 * i];
                unsigned char id[ID_LEN];
                /* Extractable on purpose: the value has to be written into the
                 * fuse XML that NVIDIA's tools burn. It is never printed, and
                 * files holding it are created 0600. */
                struct keygen_spec spec = { .label = label, .id = id, .id_len = ID_LEN, .type = types[i],
                                            .extractable = true };
                struct ks_key k = { 0 };
                token_obj obj = 0;

                r = fl_interrupted(ctx);
                if (r == 0)
                        r = token_random_id(tok, id, sizeof(id));
                if (r < 0)
                        goto out;
                if (kek256_derived && !strcmp(roles[i], "kek256")) {
                        struct fl_secret a = { 0 }, b = { 0 }, v = { 0 };
                        fl_log(ctx, FL_LOG_INFO, "making %s from kek0 || kek1", label);
                        r = token_read_secret(tok, kek01[0], &a);
                        if (r == 0)
                                r = token_read_secret(tok, kek01[1], &b);
                        if (r == 0)
                                r = secret_alloc(&v, a.len + b.len);
                        if (r == 0) {
                                memcpy(v.data, a.data, a.len);
                                memcpy(v.data + a.len, b.data, b.len);
                                r = token_import_secret(tok, KT_AES256, v.data, v.len, label, id, ID_LEN, true, &obj);
                        }
                        secret_wipe(&a);
                        secret_wipe(&b);
                        secret_wipe(&v);
                } else {
                        fl_log(ctx, FL_LOG_INFO, "generating %s key %s", key_type_name(types[i]), label);
                        r = token_keygen(tok, &spec, &obj, NULL);
                }
                if (r < 0)
                        goto out;
                created_add(&made, obj);
                if (!strcmp(roles[i], "kek0"))
                        kek01[0] = obj;
                else if (!strcmp(roles[i], "kek1"))
                        kek01[1] = obj;
                r = fuse_key_entry(ctx, tok, req->name, roles[i], types[i], obj, id, &made, &k);
                if (r == 0)
                        r = keyset_add(ks, &k);
                ks_key_clear(&k);
                if (r < 0)
                        goto out;
        }
        /* The last point of return: once the manifest is written, it stands. */
        r = fl_interrupted(ctx);
        if (r == 0)
                r = keyset_save_new(ctx, ks, req->out);
        if (r < 0)
                goto out;
        *ret = ks;
        ks = NULL;
        made.n = 0;
        r = 0;
out:
        if (tok && made.n) {
                char msg[FL_ERRMSG_MAX];
                snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "");
                created_rollback(tok, &made);
                fl_err(ctx, r, "%s (the keys made before the failure were removed again)", msg);
        }
        for (size_t i = 0; i < n_labels; i++)
                free(labels[i]);
        keyset_free(ks);
        token_close(tok);
        return r;
}

/* ---- import ----------------------------------------------------------------- */

int fusekey_parse(fl_ctx *ctx, const char *name, const unsigned char *text, size_t len, size_t want,
                  struct fl_secret *ret)
{
        struct fl_secret hex = { 0 }, out = { 0 };
        size_t nh = 0, words = 0, i = 0;
        int r;

        r = secret_alloc(&hex, len + 1);
        if (r < 0)
                return r;
        /* Tokens separated by white space; each may carry a 0x prefix. The
         * word format has 8 hex digits per token. */
        while (i < len) {
                size_t start, digits = 0;
                while (i < len && isspace(text[i]))
                        i++;
                if (i >= len)
                        break;
                if (i + 1 < len && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X'))
                        i += 2;
                start = i;
                while (i < len && !isspace(text[i])) {
                        if (!isxdigit(text[i])) {
                                r = fl_err(ctx, -EINVAL, "%s: not a hex key file (unexpected byte at offset %zu)",
                                           name, i);
                                goto out;
                        }
                        hex.data[nh++] = (unsigned char)tolower(text[i]);
                        i++;
                        digits++;
                }
                if (digits == 0) {
                        r = fl_err(ctx, -EINVAL, "%s: empty 0x token at offset %zu", name, start);
                        goto out;
                }
                words++;
                if (words > 1 && digits != 8) {
                        r = fl_err(ctx, -EINVAL, "%s: word %zu has %zu hex digits; NVIDIA's word format has 8",
                                   name, words, digits);
                        goto out;
                }
        }
        hex.data[nh] = 0;
        if (words > 1 && nh / 8 != words) {
                r = fl_err(ctx, -EINVAL, "%s: the first word must have 8 hex digits too", name);
                goto out;
        }
        if (nh != 2 * want) {
                r = fl_err(ctx, -EINVAL, "%s: key must be %zu bytes (%zu hex digits), found %zu hex digits", name,
                           want, 2 * want, nh);
                goto out;
        }
        r = secret_alloc(&out, want);
        if (r < 0)
                goto out;
        r = hex_decode((const char *)hex.data, out.data, want, NULL);
        if (r < 0) {
                r = fl_err(ctx, -EINVAL, "%s: not a hex key", name);
                goto out;
        }
        *ret = out;
        out.data = NULL;
        r = 0;
out:
        secret_wipe(&out);
        secret_wipe(&hex);
        return r;
}

/* Check value of a key held in host memory (imports only: the value is
 * there already), the same function token_aes_kcv computes in the token. */
static int soft_aes_kcv(fl_ctx *ctx, const struct fl_secret *key, char out[7])
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        unsigned char zero[16] = { 0 }, enc[32];
        int n = 0, r = -EIO;

        if (!c)
                return -ENOMEM;
        if (EVP_EncryptInit_ex(c, key->len == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(), NULL, key->data, NULL) == 1 &&
            EVP_CIPHER_CTX_set_padding(c, 0) == 1 && EVP_EncryptUpdate(c, enc, &n, zero, sizeof(zero)) == 1 && n == 16) {
                hex_encode(enc, 3, out);
                r = 0;
        } else {
                fl_err(ctx, r, "AES check value: %s", ossl_errstr());
        }
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(enc, sizeof(enc));
        return r;
}

int keygen_import(fl_ctx *ctx, const struct token_opts *opts, struct keyset *ks, const struct keygen_req *req,
                  const char *role, const char *pem_path, const char *hex_path, bool new_keyset, const char *path)
{
        struct token_opts o = *opts;
        enum role_kind kind = role_kind(role);
        const char *prefix = new_keyset ? req->name : (ks->name ? ks->name : "fuseline");
        struct fl_secret val = { 0 }, raw = { 0 };
        struct created made = { 0 };
        struct ks_key k = { 0 };
        unsigned char id[ID_LEN];
        EVP_PKEY *pk = NULL;
        fl_token *tok = NULL;
        enum key_type t = KT_NONE;
        char label[160];
        token_obj priv = 0, pub = 0;
        int r;

        if (kind == ROLE_OTHER)
                return fl_err(ctx, -EINVAL, "role '%s': imports take pkc0..2, sbk, oem-k1, oem-k2, kek0..2, kek256, "
                              "ekb-payload, ekb-disk, ekb-auth", role);
        r = role_check(ctx, ks->chip, role, &t);
        if (r < 0)
                return r;
        if (pem_path && kind != ROLE_PKC)
                return fl_err_hint(ctx, FL_HINT_IMPORT_HEX, -EINVAL, "a PEM import is for PKC roles (pkc0..2); '%s' is a fuse key, imported as hex",
                              role);
        if (hex_path && kind != ROLE_FUSE_KEY && kind != ROLE_EKB_KEY)
                return fl_err_hint(ctx, FL_HINT_IMPORT_PEM, -EINVAL, "a hex import is for fuse and EKB keys; '%s' is a PKC role, imported as PEM",
                              role);
        if (keyset_find(ks, role))
                return fl_err(ctx, -EEXIST, "the keyset already has a key for role '%s'", role);
        if (new_keyset && access(path, F_OK) == 0)
                return fl_err_hint(ctx, FL_HINT_KEYSET_EXISTING, -EEXIST, "%s already exists", path);

        if (pem_path) {
                r = pkey_load_private_pem(ctx, pem_path, &pk);
                if (r < 0)
                        goto out;
                t = pkey_key_type(pk);
                /* One key as pkc0 and pkc1 would make revocation meaningless. */
                {
                        char fp[65];
                        r = pkey_spki_sha256(ctx, pk, fp);
                        if (r < 0)
                                goto out;
                        for (size_t i = 0; i < ks->n_keys; i++)
                                if (ks->keys[i].public_key_sha256 && !strcmp(ks->keys[i].public_key_sha256, fp)) {
                                        r = fl_err(ctx, -EEXIST, "%s: this key is already role '%s' of the keyset; "
                                                   "one key cannot take two roles", pem_path, ks->keys[i].role);
                                        goto out;
                                }
                }
                r = pkc_type_check(ctx, ks->chip, t);
                if (r < 0) {
                        char msg[FL_ERRMSG_MAX];
                        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx));
                        r = fl_err(ctx, -EINVAL, "%s: %s", pem_path, msg);
                        goto out;
                }
                /* T234 revocation: all PKC keys of a device share one type. */
                for (size_t i = 0; i < ks->n_keys; i++)
                        if (role_kind(ks->keys[i].role) == ROLE_PKC && ks->keys[i].type != t) {
                                r = fl_err(ctx, -EINVAL, "%s: a %s key cannot join %s keys: all PKC keys of a keyset "
                                           "have the same type", pem_path, key_type_name(t),
                                           key_type_name(ks->keys[i].type));
                                goto out;
                        }
        } else {
                r = file_read_secret(ctx, hex_path, 4096, &raw);
                if (r < 0)
                        goto out;
                r = fusekey_parse(ctx, hex_path, raw.data, raw.len, key_type_secret_len(t), &val);
                if (r < 0)
                        goto out;
                /* The same value under two roles (SBK = OEM_K1, …) defeats the
                 * point of separate keys: refuse it. Compared by check value,
                 * so no key value is kept for the comparison. */
                {
                        char kcv[7];
                        r = soft_aes_kcv(ctx, &val, kcv);
                        if (r < 0)
                                goto out;
                        for (size_t i = 0; i < ks->n_keys; i++) {
                                if (!ks->keys[i].kcv || ks->keys[i].type != t || strcmp(ks->keys[i].kcv, kcv))
                                        continue;
                                /* NVIDIA's shipped default EKBs (vector set E) use one all-zero
                                 * value for KEK2 and both payload keys: a lab keyset may
                                 * reproduce them; a production keyset never repeats a key. */
                                if ((kind == ROLE_EKB_KEY || role_kind(ks->keys[i].role) == ROLE_EKB_KEY) &&
                                    !(new_keyset ? !req->lab : (ks->profile && strcmp(ks->profile, "lab")))) {
                                        fl_log(ctx, FL_LOG_WARN, "%s: the key has the check value of role '%s' "
                                               "(kcv %s); accepted in a lab keyset only", hex_path, ks->keys[i].role,
                                               kcv);
                                        continue;
                                }
                                r = fl_err(ctx, -EEXIST, "%s: the key has the check value of role '%s' "
                                           "(kcv %s): the same key cannot take two roles", hex_path,
                                           ks->keys[i].role, kcv);
                                goto out;
                        }
                }
        }

        o.login = true;
        o.production = new_keyset && !req->lab;
        r = new_keyset ? token_open(ctx, &o, &tok) : keyset_token_open(ctx, ks, opts, &tok);
        if (r < 0)
                goto out;
        snprintf(label, sizeof(label), "%s-%s", prefix, role);
        if (kind == ROLE_FUSE_KEY || kind == ROLE_EKB_KEY) {
                char twin[170];
                snprintf(twin, sizeof(twin), "%s-hmac", label);
                const char *const labels[] = { label, twin };
                r = check_labels_free(ctx, tok, labels, 2);
        } else {
                const char *const labels[] = { label };
                r = check_labels_free(ctx, tok, labels, 1);
        }
        if (r < 0)
                goto out;
        r = token_random_id(tok, id, sizeof(id));
        if (r < 0)
                goto out;
        if (pk) {
                r = token_import_pkey(tok, pk, label, id, ID_LEN, &priv, &pub);
                if (r < 0)
                        goto out;
                created_add(&made, priv);
                created_add(&made, pub);
                k.role = strdup(role);
                k.type = t;
                k.label = strdup(label);
                k.uri = token_object_uri(tok, label, id, ID_LEN, CKO_PRIVATE_KEY);
                r = describe_pair(ctx, tok, ks->chip, priv, true, &k);
                if (r < 0)
                        goto out;
        } else {
                r = token_import_secret(tok, t, val.data, val.len, label, id, ID_LEN, true, &priv);
                if (r < 0)
                        goto out;
                created_add(&made, priv);
                r = fuse_key_entry(ctx, tok, prefix, role, t, priv, id, &made, &k);
                if (r < 0)
                        goto out;
        }
        k.imported = true;
        if (new_keyset) {
                r = keyset_head(ks, req->lab, prefix, tok);
                if (r < 0)
                        goto out;
        }
        r = keyset_add(ks, &k);
        if (r == 0)
                r = fl_interrupted(ctx); /* SIGINT/SIGTERM: undo the import (out:) */
        if (r < 0)
                goto out;
        r = new_keyset ? keyset_save_new(ctx, ks, path) : keyset_save(ctx, ks, path);
        if (r < 0)
                goto out;
        made.n = 0;
        r = 0;
out:
        if (tok && made.n)
                created_rollback(tok, &made);
        ks_key_clear(&k);
        EVP_PKEY_free(pk);
        secret_wipe(&val);
        secret_wipe(&raw);
        token_close(tok);
        return r;
}

int keygen_add(fl_ctx *ctx, const struct token_opts *opts, struct keyset *ks, const char *const *roles, size_t n,
               const char *path)
{
        struct token_opts o = *opts;
        struct created made = { 0 };
        const char *prefix = ks->name ? ks->name : "fuseline";
        enum key_type types[16];
        fl_token *tok = NULL;
        int r;

        if (n == 0 || n > FL_ARRAY_SIZE(types))
                return fl_err(ctx, -EINVAL, "name 1 to %zu secret key roles to add", FL_ARRAY_SIZE(types));
        for (size_t i = 0; i < n; i++) {
                enum role_kind kind = role_kind(roles[i]);
                if (kind != ROLE_FUSE_KEY && kind != ROLE_EKB_KEY)
                        return fl_err(ctx, -EINVAL, "role '%s' cannot be added this way (secret key roles only)",
                                      roles[i]);
                r = role_check(ctx, ks->chip, roles[i], &types[i]);
                if (r < 0)
                        return r;
                if (keyset_find(ks, roles[i]))
                        return fl_err(ctx, -EEXIST, "the keyset already has a key for role '%s'", roles[i]);
                for (size_t j = 0; j < i; j++)
                        if (!strcmp(roles[i], roles[j]))
                                return fl_err(ctx, -EINVAL, "role '%s' named twice", roles[i]);
        }
        o.login = true;
        r = keyset_token_open(ctx, ks, &o, &tok);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char label[160], twin[170];
                snprintf(label, sizeof(label), "%s-%s", prefix, roles[i]);
                snprintf(twin, sizeof(twin), "%s-hmac", label);
                const char *const labels[] = { label, twin };
                r = check_labels_free(ctx, tok, labels, 2);
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char id[ID_LEN];
                char label[160];
                struct ks_key k = { 0 };
                token_obj obj = 0;

                snprintf(label, sizeof(label), "%s-%s", prefix, roles[i]);
                /* Extractable like the fuse keys: NVIDIA's flashing tools take
                 * the payload key (--uefi-enc) and the disk key as files, and
                 * the EKB carries the values. */
                struct keygen_spec spec = { .label = label, .id = id, .id_len = ID_LEN, .type = types[i],
                                            .extractable = true };
                r = token_random_id(tok, id, sizeof(id));
                if (r < 0)
                        goto out;
                fl_log(ctx, FL_LOG_INFO, "generating %s key %s", key_type_name(types[i]), label);
                r = token_keygen(tok, &spec, &obj, NULL);
                if (r < 0)
                        goto out;
                created_add(&made, obj);
                r = fuse_key_entry(ctx, tok, prefix, roles[i], types[i], obj, id, &made, &k);
                if (r == 0)
                        r = keyset_add(ks, &k);
                ks_key_clear(&k);
                if (r < 0)
                        goto out;
        }
        r = keyset_save(ctx, ks, path);
        if (r < 0)
                goto out;
        made.n = 0;
        r = 0;
out:
        if (tok && made.n)
                created_rollback(tok, &made);
        token_close(tok);
        return r;
}

/* ---- verify ------------------------------------------------------------------ */

static void problem(struct keyset_report *rep, struct keyset_report_key *rk, const char *fmt, ...)
        FL_PRINTF(3, 4);

static void problem(struct keyset_report *rep, struct keyset_report_key *rk, const char *fmt, ...)
{
        size_t before = rk->n_problems;
        va_list ap;
        char *s;

        va_start(ap, fmt);
        strv_add_fmtv(rk->problems, &rk->n_problems, KEYSET_REPORT_MAX_PROBLEMS, fmt, ap);
        va_end(ap);
        if (rk->n_problems == before)
                return;
        s = rk->problems[before];
        if (!rep->n_problems++) {
                rep->first_role = rk->role;
                rep->first_problem = s;
        }
}

void keyset_report_free(struct keyset_report *rep)
{
        for (size_t i = 0; i < rep->n_keys; i++)
                for (size_t j = 0; j < rep->keys[i].n_problems; j++)
                        free(rep->keys[i].problems[j]);
        free(rep->keys);
        memset(rep, 0, sizeof(*rep));
}

static void verify_pair(fl_ctx *ctx, fl_token *tok, const struct keyset *ks, const struct ks_key *k, token_obj obj,
                        struct keyset_report *rep, struct keyset_report_key *rk)
{
        EVP_PKEY *pk = NULL;
        char fp[65], *hash = NULL;
        bool b;

        if (token_get_pubkey(tok, obj, &pk) < 0) {
                problem(rep, rk, "public key unreadable: %s", fl_ctx_last_error(ctx));
                return;
        }
        if (pkey_key_type(pk) != k->type)
                problem(rep, rk, "type is %s in the token, %s in the manifest", key_type_name(pkey_key_type(pk)),
                        key_type_name(k->type));
        if (k->public_key_sha256) {
                if (pkey_spki_sha256(ctx, pk, fp) < 0)
                        problem(rep, rk, "public key fingerprint cannot be computed: %s", fl_ctx_last_error(ctx));
                else if (strcmp(fp, k->public_key_sha256))
                        problem(rep, rk, "public_key_sha256 differs (token %s)", fp);
        }
        if (k->tegra_pkc_hash) {
                if (tegra_pkc_hash_hex(ctx, ks->chip, pk, &hash) < 0)
                        problem(rep, rk, "PublicKeyHash cannot be computed: %s", fl_ctx_last_error(ctx));
                else if (strcmp(hash, k->tegra_pkc_hash))
                        problem(rep, rk, "tegra_pkc_hash differs (token %s)", hash);
        }
        if (!strcmp(ks->profile, "production")) {
                if (token_attr_bool(tok, obj, CKA_EXTRACTABLE, &b) < 0 || b)
                        problem(rep, rk, "private key is extractable (CKA_EXTRACTABLE=true) in a production keyset");
                if (token_attr_bool(tok, obj, CKA_SENSITIVE, &b) < 0 || !b)
                        problem(rep, rk, "private key is not sensitive (CKA_SENSITIVE=false) in a production keyset");
        }
        free(hash);
        EVP_PKEY_free(pk);
}

static void verify_secret(fl_ctx *ctx, fl_token *tok, const struct ks_key *k, token_obj obj,
                          struct keyset_report *rep, struct keyset_report_key *rk)
{
        unsigned long kt = 0, len = 0;
        char kcv[7];

        if (token_attr_ulong(tok, obj, CKA_KEY_TYPE, &kt) < 0 || kt != CKK_AES ||
            token_attr_ulong(tok, obj, CKA_VALUE_LEN, &len) < 0 || len != key_type_secret_len(k->type))
                problem(rep, rk, "token object is not an AES key of %zu bytes", key_type_secret_len(k->type));
        else if (token_aes_kcv(tok, obj, kcv) < 0)
                problem(rep, rk, "key check value cannot be computed: %s", fl_ctx_last_error(ctx));
        else if (k->kcv && strcmp(kcv, k->kcv))
                problem(rep, rk, "kcv differs (token %s, manifest %s)", kcv, k->kcv);
        if (k->hmac_uri) {
                token_obj twin;
                bool ext = true;
                if (token_find_uri(tok, k->hmac_uri, CKO_SECRET_KEY, &twin) < 0)
                        problem(rep, rk, "HMAC twin: %s", fl_ctx_last_error(ctx));
                else if (token_attr_bool(tok, twin, CKA_EXTRACTABLE, &ext) < 0 || ext)
                        problem(rep, rk, "HMAC twin is extractable");
        }
}

int keygen_verify(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, struct keyset_report *rep)
{
        fl_token *tok = NULL;
        int r;

        memset(rep, 0, sizeof(*rep));
        r = keyset_token_open(ctx, ks, opts, &tok);
        if (r < 0)
                return r;
        rep->keys = calloc(ks->n_keys + 1, sizeof(*rep->keys));
        if (!rep->keys) {
                r = -ENOMEM;
                goto out;
        }
        if (ks->token_serial && strcmp(ks->token_serial, token_get_info(tok)->serial)) {
                struct keyset_report_key *rk = &rep->keys[rep->n_keys++];
                snprintf(rk->role, sizeof(rk->role), "token");
                problem(rep, rk, "token serial is %s, the manifest says %s", token_get_info(tok)->serial,
                        ks->token_serial);
        }
        for (size_t i = 0; i < ks->n_keys; i++) {
                const struct ks_key *k = &ks->keys[i];
                struct keyset_report_key *rk = &rep->keys[rep->n_keys++];
                token_obj obj;

                snprintf(rk->role, sizeof(rk->role), "%s", k->role);
                r = keyset_key_object(ctx, tok, k, &obj);
                if (r == -EEXIST) {
                        problem(rep, rk, "more than one token object matches %s", k->uri);
                        continue;
                }
                if (r < 0) {
                        problem(rep, rk, "not found in the token (%s)", k->label ? k->label : k->uri);
                        continue;
                }
                if (key_type_is_secret(k->type))
                        verify_secret(ctx, tok, k, obj, rep, rk);
                else
                        verify_pair(ctx, tok, ks, k, obj, rep, rk);
        }
        fl_err_clear(ctx);
        r = 0;
out:
        token_close(tok);
        return r;
}
