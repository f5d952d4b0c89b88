/* sign_session.c — token sessions: key look-up by role or URI, pinning,
 * the production interlock, C_Sign through lib/p11 (sign.h). */

#include "sign_int.h"

/* ---- token sessions ----------------------------------------------------- */

/* One opening for both: by a keyset (or none: the token of opts) or, with
 * by_uri, by one key's URI. */
static int session_open(fl_ctx *ctx, const char *keyset_path, const char *key_uri, bool by_uri,
                        const struct token_opts *opts, bool login, sign_session **ret)
{
        sign_session *ss = calloc(1, sizeof(*ss));
        struct token_opts o = *opts;
        int r;

        if (!ss)
                return -ENOMEM;
        ss->ctx = ctx;
        o.login = login;
        if (by_uri) {
                /* The key URI is honoured whole: its token attributes pin the token
                 * (opts->uri may only narrow them) and its pin-source is used. */
                r = signer_token_open_pinned(ctx, key_uri, key_uri, &o, &ss->tok);
        } else if (keyset_path) {
                ss->ks_path = strdup(keyset_path);
                if (!ss->ks_path) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = keyset_load(ctx, keyset_path, &ss->ks);
                if (r < 0)
                        goto fail;
                r = signer_token_open(ctx, ss->ks, keyset_path, &o, &ss->tok);
        } else {
                r = token_open(ctx, &o, &ss->tok);
        }
        if (r < 0)
                goto fail;
        *ret = ss;
        return 0;
fail:
        sign_session_close(ss);
        return r;
}

int sign_session_open(fl_ctx *ctx, const char *keyset_path, const struct token_opts *opts, bool login,
                      sign_session **ret)
{
        return session_open(ctx, keyset_path, NULL, false, opts, login, ret);
}

int sign_session_open_key(fl_ctx *ctx, const char *key_uri, const struct token_opts *opts, bool login,
                          sign_session **ret)
{
        return session_open(ctx, NULL, key_uri, true, opts, login, ret);
}

static void sign_key_clear(struct sign_key *k)
{
        free(k->name);
        free(k->role);
        EVP_PKEY_free(k->pub);
}

void sign_session_close(sign_session *ss)
{
        if (!ss)
                return;
        for (size_t i = 0; i < ss->n_keys; i++) {
                sign_key_clear(ss->keys[i]);
                free(((struct cached_key *)ss->keys[i])->lookup);
                free(ss->keys[i]);
        }
        free(ss->keys);
        token_close(ss->tok);
        keyset_free(ss->ks);
        free(ss->ks_path);
        free(ss);
}

const char *sign_session_profile(const sign_session *ss)
{
        return ss && ss->ks ? ss->ks->profile : NULL;
}

static enum key_type secret_type(unsigned long ckk, unsigned long value_len)
{
        if (ckk == CKK_AES)
                return value_len == 16 ? KT_AES128 : value_len == 32 ? KT_AES256 : KT_NONE;
        if (ckk == CKK_GENERIC_SECRET)
                return value_len == 16 ? KT_GENERIC128 : value_len == 32 ? KT_GENERIC256 : KT_NONE;
        return KT_NONE;
}

/* Type of a token object found by URI: from its public key, or from
 * CKA_KEY_TYPE/CKA_VALUE_LEN for a secret key. */
static int object_describe(sign_session *ss, struct sign_key *k)
{
        unsigned long cls = 0, ckk = 0, vlen = 0;
        int r;

        r = token_attr_ulong(ss->tok, k->obj, CKA_CLASS, &cls);
        if (r < 0)
                return r;
        if (cls == CKO_SECRET_KEY) {
                r = token_attr_ulong(ss->tok, k->obj, CKA_KEY_TYPE, &ckk);
                if (r >= 0)
                        r = token_attr_ulong(ss->tok, k->obj, CKA_VALUE_LEN, &vlen);
                if (r < 0)
                        return r;
                k->type = secret_type(ckk, vlen);
                snprintf(k->fpr, sizeof(k->fpr), "object:%.60s", k->name);
                return 0;
        }
        r = token_get_pubkey(ss->tok, k->obj, &k->pub);
        if (r < 0)
                return r;
        k->type = sign_pkey_type(k->pub);
        return sign_pkey_fingerprint(ss->ctx, k->pub, k->fpr);
}

static int role_list(const struct keyset *ks, char *buf, size_t cap)
{
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; i < ks->n_keys && n + 2 < cap; i++)
                n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", ks->keys[i].role);
        return 0;
}

static int key_from_role(sign_session *ss, const char *role, enum sign_scheme s, bool private_obj,
                         struct sign_key *k)
{
        fl_ctx *ctx = ss->ctx;
        const struct ks_key *kk;
        char what[96], roles[256];
        int r;

        if (!ss->ks)
                return fl_err_hint(ctx, FL_HINT_KEYSET, -EINVAL, "role %s is not in a keyset: a keyset is needed to find it", role);
        kk = keyset_find(ss->ks, role);
        if (!kk) {
                role_list(ss->ks, roles, sizeof(roles));
                return fl_err(ctx, -EINVAL, "%s: no role '%s' (roles: %s)", ss->ks_path, role, roles);
        }
        snprintf(what, sizeof(what), "role %s", role);
        if (s == SCHEME_NONE)
                s = sign_scheme_default(kk->type);
        r = sign_scheme_check_key(ctx, s, kk->type, what);
        if (r < 0)
                return r;
        k->role = strdup(role);
        k->name = strdup(what);
        if (!k->role || !k->name)
                return -ENOMEM;
        k->type = kk->type;
        if (key_type_is_secret(kk->type)) {
                /* SoftHSM2 (and PKCS#11 generally) ties a mechanism to the
                 * key type: CKM_AES_CMAC needs CKK_AES, CKM_SHA256_HMAC a
                 * CKK_GENERIC_SECRET. keygen records a generic twin with
                 * the same value as hmac_uri, so HMAC runs in the token
                 * too and fuseline never reads the key value. */
                if (s == SCHEME_HMAC_SHA256 && (kk->type == KT_AES128 || kk->type == KT_AES256)) {
                        if (!kk->hmac_uri || !*kk->hmac_uri)
                                return fl_err(ctx, -EINVAL,
                                              "%s: role %s has no hmac_uri (the CKK_GENERIC_SECRET twin HMAC needs); "
                                              "re-create the fuse key with fuseline keygen",
                                              ss->ks_path, role);
                        r = token_find_uri(ss->tok, kk->hmac_uri, CKO_SECRET_KEY, &k->obj);
                        if (r < 0)
                                return r;
                        k->hmac_twin = true;
                        k->type = kk->type == KT_AES128 ? KT_GENERIC128 : KT_GENERIC256;
                } else {
                        r = keyset_key_object(ctx, ss->tok, kk, &k->obj);
                        if (r < 0)
                                return r;
                }
                if (kk->kcv && *kk->kcv)
                        snprintf(k->fpr, sizeof(k->fpr), "kcv:%.60s", kk->kcv);
                else
                        snprintf(k->fpr, sizeof(k->fpr), "role:%.60s", role);
                return 0;
        }
        if (private_obj)
                r = keyset_key_object(ctx, ss->tok, kk, &k->obj);
        else
                r = token_find_uri(ss->tok, kk->uri, CKO_PUBLIC_KEY, &k->obj);
        if (r < 0)
                return r;
        /* The one pinning rule (lib/signer.c): type and public_key_sha256. */
        return signer_pin_key(ctx, ss->ks_path, kk, ss->tok, k->obj, &k->pub, k->fpr);
}

static int key_from_uri(sign_session *ss, const char *uri, enum sign_scheme s, bool private_obj,
                        struct sign_key *k)
{
        unsigned long cls;
        int r;

        k->name = strdup(uri);
        if (!k->name)
                return -ENOMEM;
        /* Without type= in the URI, a label can name a key pair's two
         * halves: pick the one the operation needs. */
        if (strstr(uri, "type="))
                cls = (unsigned long)-1;
        else if (sign_scheme_is_mac(s))
                cls = CKO_SECRET_KEY;
        else
                cls = private_obj ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
        r = token_find_uri(ss->tok, uri, cls, &k->obj);
        if (r == -ENXIO && s == SCHEME_NONE && cls != (unsigned long)-1) {
                fl_err_clear(ss->ctx);
                r = token_find_uri(ss->tok, uri, CKO_SECRET_KEY, &k->obj);
        }
        if (r < 0)
                return r;
        r = object_describe(ss, k);
        if (r < 0)
                return r;
        /* A keyset role finds the twin itself; a bare URI must name it. */
        if (s == SCHEME_HMAC_SHA256 && (k->type == KT_AES128 || k->type == KT_AES256))
                return fl_err(ss->ctx, -EINVAL,
                              "%s is a CKK_AES key: HMAC needs its CKK_GENERIC_SECRET twin (the keyset's hmac_uri)",
                              uri);
        if (s == SCHEME_NONE)
                s = sign_scheme_default(k->type);
        return sign_scheme_check_key(ss->ctx, s, k->type, uri);
}

int sign_session_key(sign_session *ss, const char *role, const char *uri, enum sign_scheme s,
                     bool private_obj, const struct sign_key **ret)
{
        struct cached_key *c = NULL;
        struct sign_key **nk;
        const char *name = role ? role : uri;
        bool hmac = s == SCHEME_HMAC_SHA256;
        int r;

        if (!name)
                return fl_err_hint(ss->ctx, FL_HINT_SIGN_KEY, -EINVAL, "no key: neither a keyset role nor a key URI");
        if (sign_scheme_is_mac(s))
                private_obj = true;
        for (size_t i = 0; i < ss->n_keys; i++) {
                struct cached_key *ci = (struct cached_key *)ss->keys[i];
                if (ci->by_role == !!role && ci->private_obj == private_obj && ci->hmac == hmac &&
                    !strcmp(ci->lookup, name)) {
                        /* Same object; the scheme still has to suit it. */
                        enum sign_scheme es = s == SCHEME_NONE ? sign_scheme_default(ci->k.type) : s;
                        r = sign_scheme_check_key(ss->ctx, es, ci->k.type, ci->k.name);
                        if (r < 0)
                                return r;
                        *ret = &ci->k;
                        return 0;
                }
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->by_role = !!role;
        c->private_obj = private_obj;
        c->hmac = hmac;
        c->lookup = strdup(name);
        if (!c->lookup) {
                r = -ENOMEM;
                goto fail;
        }
        r = role ? key_from_role(ss, role, s, private_obj, &c->k) : key_from_uri(ss, uri, s, private_obj, &c->k);
        if (r < 0)
                goto fail;
        nk = realloc(ss->keys, (ss->n_keys + 1) * sizeof(*nk));
        if (!nk) {
                r = -ENOMEM;
                goto fail;
        }
        ss->keys = nk;
        ss->keys[ss->n_keys++] = &c->k;
        *ret = &c->k;
        return 0;
fail:
        sign_key_clear(&c->k);
        free(c->lookup);
        free(c);
        return r;
}

/* The interlock itself lives in lib/signer.c, the one place every
 * token-key path goes through. */
int sign_session_interlock(sign_session *ss, const struct sign_key *k)
{
        return signer_interlock(ss->ctx, ss->ks, ss->ks_path, ss->tok, k->obj, k->type, k->name);
}

/* DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
static const unsigned char sha256_digestinfo[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                   0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

static const char *mech_name(unsigned long m)
{
        switch (m) {
        case CKM_RSA_PKCS_PSS:
                return "CKM_RSA_PKCS_PSS";
        case CKM_RSA_PKCS:
                return "CKM_RSA_PKCS";
        case CKM_ECDSA:
                return "CKM_ECDSA";
        case CKM_EDDSA:
                return "CKM_EDDSA";
        case CKM_SHA256_HMAC:
                return "CKM_SHA256_HMAC";
        case CKM_AES_CMAC:
                return "CKM_AES_CMAC";
        default:
                return "?";
        }
}

int sign_token_raw(fl_ctx *ctx, fl_token *tok, token_obj obj, enum key_type type, EVP_PKEY *pub, const char *name,
                   enum sign_scheme s, bool mech_known, const unsigned char *tbs, size_t tbs_len, unsigned char *out,
                   size_t *ret_len)
{
        const struct scheme_info *si = scheme_get(s);
        CK_RSA_PKCS_PSS_PARAMS pss;
        unsigned char in[sizeof(sha256_digestinfo) + 32];
        const unsigned char *data = tbs;
        size_t len = tbs_len, out_len = SIGN_RAW_MAX, want = 0;
        const void *param = NULL;
        size_t param_len = 0;
        int r;

        if (!si)
                return fl_err(ctx, -EINVAL, "no signing scheme");
        r = sign_scheme_check_key(ctx, s, type, name);
        if (r < 0)
                return r;
        if (!mech_known && !token_has_mechanism(tok, si->mech))
                return fl_err(ctx, -ENOTSUP, "the token does not offer %s (needed for %s)", mech_name(si->mech),
                              si->name);
        if (si->md && len != si->md_len)
                return fl_err(ctx, -EINVAL, "%s: digest of %zu bytes, expected %zu", si->name, len, si->md_len);
        switch (si->kind) {
        case K_RSA_PSS:
                pss.hash_alg = si->ck_md;
                pss.mgf = si->mgf;
                pss.s_len = si->salt_len; /* jetson-fuses.md §4 / tegrasign vectors */
                param = &pss;
                param_len = sizeof(pss);
                break;
        case K_RSA_PKCS1:
                memcpy(in, sha256_digestinfo, sizeof(sha256_digestinfo));
                memcpy(in + sizeof(sha256_digestinfo), data, len);
                data = in;
                len = sizeof(sha256_digestinfo) + 32;
                break;
        default:
                break;
        }
        r = sign_raw_len(ctx, s, pub, &want);
        if (r < 0)
                return r;
        r = token_sign(tok, obj, si->mech, param, param_len, data, len, out, &out_len);
        if (r < 0)
                return r;
        if (out_len != want)
                return fl_err(ctx, -EIO, "%s: the token returned %zu bytes for %s, expected %zu", name, out_len,
                              si->name, want);
        *ret_len = out_len;
        return 0;
}

int sign_session_sign(sign_session *ss, const struct sign_key *k, enum sign_scheme s,
                      const struct sign_tbs *tbs, unsigned char *out, size_t *ret_len)
{
        const struct scheme_info *si = scheme_get(s);
        int r;

        r = sign_token_raw(ss->ctx, ss->tok, k->obj, k->type, k->pub, k->name, s,
                           si && (ss->mech_ok & (1u << s)), tbs->data, tbs->len, out, ret_len);
        if (r == 0)
                ss->mech_ok |= 1u << s;
        return r;
}
