/* signer.c — the one way to use a keyset's token-held key: the token
 * policy (the manifest pins the token; a caller's URI only narrows it), the
 * role policy (which role signs what), the pinned public key and
 * certificate, and the production interlock. See signer.h. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "identity.h"
#include "signer.h"
#include "tegra_key.h"

struct signer {
        fl_ctx *ctx;
        const struct keyset *ks;
        const struct ks_key *kk;
        char *ks_path;
        fl_token *tok;
        token_obj obj;
        EVP_PKEY *pub;
        char fpr[SIGN_FPR_LEN];
        X509 *cert;
        char *cert_path;
        x509_signer *xs;
        bool mech_ok[SCHEME_AES_CMAC + 1];
};

/* ---- role policy ---------------------------------------------------------- */

const char *signer_use_name(enum signer_use u)
{
        switch (u) {
        case SIGNER_USE_IMAGE:
                return "image signatures";
        case SIGNER_USE_UEFI_KEK:
                return "UEFI KEK updates";
        case SIGNER_USE_UEFI_DB:
                return "UEFI db/dbx updates";
        case SIGNER_USE_UEFI_PAYLOAD:
                return "UEFI payloads";
        case SIGNER_USE_DEVICE_CERT:
                return "device certificates";
        case SIGNER_USE_CHECKPOINT:
                return "ledger checkpoints";
        }
        return "?";
}

enum role_class {
        RC_PKC,
        RC_FUSE,
        RC_EKB,
        RC_UEFI_PK,
        RC_UEFI_KEK,
        RC_UEFI_DB,
        RC_CA,
        RC_CHECKPOINT,
        RC_OTHER,
};

static bool has_prefix(const char *s, const char *p)
{
        return !strncmp(s, p, strlen(p));
}

static enum role_class role_class(const char *role)
{
        switch (role_kind(role)) {
        case ROLE_PKC:
                return RC_PKC;
        case ROLE_FUSE_KEY:
                return RC_FUSE;
        case ROLE_EKB_KEY:
                return RC_EKB;
        default:
                break;
        }
        if (!strcmp(role, "uefi-pk"))
                return RC_UEFI_PK;
        if (!strcmp(role, "uefi-kek"))
                return RC_UEFI_KEK;
        if (has_prefix(role, "uefi-db"))
                return RC_UEFI_DB;
        if (!strcmp(role, IDENTITY_CA_ROLE) || !strcmp(role, FTPM_EK_CA_ROLE) || has_prefix(role, "identity-ca"))
                return RC_CA;
        if (!strcmp(role, "station") || has_prefix(role, "station-") || has_prefix(role, "ledger-"))
                return RC_CHECKPOINT;
        return RC_OTHER;
}

static const char *role_class_name(enum role_class c)
{
        switch (c) {
        case RC_PKC:
                return "secure-boot key";
        case RC_FUSE:
        case RC_EKB:
                return "secret key";
        case RC_UEFI_PK:
                return "UEFI platform key";
        case RC_UEFI_KEK:
                return "UEFI key exchange key";
        case RC_UEFI_DB:
                return "UEFI db key";
        case RC_CA:
                return "certificate authority";
        case RC_CHECKPOINT:
                return "ledger checkpoint key";
        case RC_OTHER:
                break;
        }
        return "key";
}

int signer_role_check(fl_ctx *ctx, const char *ks_path, const char *role, const struct ks_key *kk,
                      enum signer_use use)
{
        enum role_class c = role_class(role);
        const char *who = NULL;
        bool ok = false;

        switch (use) {
        case SIGNER_USE_IMAGE:
                /* Keys that sign certificates, UEFI updates or checkpoints
                 * never sign arbitrary bytes: a signature over a digest the
                 * caller chose would be a certificate or an update. */
                ok = c == RC_PKC || c == RC_FUSE || c == RC_EKB || c == RC_OTHER;
                who = "secure-boot keys, fuse keys and other image-signing roles";
                break;
        case SIGNER_USE_UEFI_KEK:
                ok = c == RC_UEFI_PK;
                who = "KEK is signed by uefi-pk";
                break;
        case SIGNER_USE_UEFI_DB:
                ok = c == RC_UEFI_KEK || c == RC_UEFI_PK;
                who = "db/dbx take uefi-kek or uefi-pk";
                break;
        case SIGNER_USE_UEFI_PAYLOAD:
                ok = c == RC_UEFI_DB;
                who = "UEFI payloads are signed by a db key (uefi-db1, uefi-db2)";
                break;
        case SIGNER_USE_DEVICE_CERT:
                ok = c == RC_CA || c == RC_OTHER;
                who = "a certificate authority role";
                break;
        case SIGNER_USE_CHECKPOINT:
                /* Key separation: the secure-boot keys sign boot images
                 * only, a CA or UEFI key signs what its certificate says,
                 * and a MAC key cannot give a signature others can check. */
                ok = c == RC_CHECKPOINT && !(kk && key_type_is_secret(kk->type));
                if (c == RC_CHECKPOINT && !ok)
                        return fl_err(ctx, -EINVAL,
                                      "%s: role '%s' is a secret key; checkpoints need a separate asymmetric "
                                      "station key",
                                      ks_path, role);
                if (!ok)
                        return fl_err(ctx, -EINVAL,
                                      "%s: role '%s' is a %s; checkpoints need a separate asymmetric station key "
                                      "(role station, station-* or ledger-*)",
                                      ks_path, role, kk && key_type_is_secret(kk->type) ? "secret key"
                                                                                       : role_class_name(c));
                return 0;
        }
        if (ok)
                return 0;
        return fl_err(ctx, -EINVAL, "%s: role '%s' (%s) cannot sign %s: %s", ks_path, role, role_class_name(c),
                      signer_use_name(use), who);
}

/* ---- token policy ----------------------------------------------------------- */

/* A CK_TOKEN_INFO string field of a URI: blank-padded, all zero when the
 * URI does not name it. */
static bool field_set(const unsigned char *f, size_t n)
{
        return n && f[0] != 0;
}

static void field_text(const unsigned char *f, size_t n, char *out, size_t cap)
{
        size_t k = n;

        while (k && (f[k - 1] == ' ' || f[k - 1] == 0))
                k--;
        if (k >= cap)
                k = cap - 1;
        memcpy(out, f, k);
        out[k] = 0;
}

/* "token 'lab' (serial 1a2b…)" for messages. */
static void token_desc(const CK_TOKEN_INFO *ti, char *out, size_t cap)
{
        char label[33], serial[17];

        field_text(ti->label, sizeof(ti->label), label, sizeof(label));
        field_text(ti->serialNumber, sizeof(ti->serialNumber), serial, sizeof(serial));
        if (serial[0])
                snprintf(out, cap, "token '%s' (serial %s)", label, serial);
        else
                snprintf(out, cap, "token '%s'", label);
}

static int uri_parse(fl_ctx *ctx, const char *s, const char *what, P11KitUri **ret)
{
        P11KitUri *u = p11_kit_uri_new();

        if (!u)
                return -ENOMEM;
        if (p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
                char shown[FL_ERRMSG_MAX / 2];
                p11_kit_uri_free(u);
                return fl_err(ctx, -EINVAL, "%s: token URI '%s' is not a valid PKCS#11 URI (RFC 7512)", what,
                              token_uri_shown(s, shown, sizeof(shown)));
        }
        *ret = u;
        return 0;
}

int signer_token_uri(fl_ctx *ctx, const char *pinned, const char *pinned_what, const char *narrow,
                     const char *narrow_what, char **ret)
{
        P11KitUri *pu = NULL, *nu = NULL;
        CK_TOKEN_INFO *pt, *nt;
        char *out = NULL;
        int r;

        if (!narrow || !*narrow || !strcmp(narrow, pinned)) {
                out = strdup(pinned);
                if (!out)
                        return -ENOMEM;
                *ret = out;
                return 0;
        }
        r = uri_parse(ctx, pinned, pinned_what, &pu);
        if (r < 0)
                goto out;
        r = uri_parse(ctx, narrow, narrow_what, &nu);
        if (r < 0)
                goto out;
        pt = p11_kit_uri_get_token_info(pu);
        nt = p11_kit_uri_get_token_info(nu);
#define FIELD(name)                                                                                             \
        do {                                                                                                    \
                if (field_set(nt->name, sizeof(nt->name))) {                                                    \
                        if (!field_set(pt->name, sizeof(pt->name)))                                             \
                                memcpy(pt->name, nt->name, sizeof(pt->name));                                   \
                        else if (memcmp(pt->name, nt->name, sizeof(pt->name)))                                 \
                                goto mismatch;                                                                  \
                }                                                                                               \
        } while (0)
        FIELD(label);
        FIELD(serialNumber);
        FIELD(manufacturerID);
        FIELD(model);
#undef FIELD
        if (!p11_kit_uri_get_module_path(pu) && !p11_kit_uri_get_module_name(pu)) {
                if (p11_kit_uri_get_module_path(nu))
                        p11_kit_uri_set_module_path(pu, p11_kit_uri_get_module_path(nu));
                if (p11_kit_uri_get_module_name(nu))
                        p11_kit_uri_set_module_name(pu, p11_kit_uri_get_module_name(nu));
        }
        if (!p11_kit_uri_get_pin_source(pu) && !p11_kit_uri_get_pin_value(pu)) {
                if (p11_kit_uri_get_pin_source(nu))
                        p11_kit_uri_set_pin_source(pu, p11_kit_uri_get_pin_source(nu));
                if (p11_kit_uri_get_pin_value(nu))
                        p11_kit_uri_set_pin_value(pu, p11_kit_uri_get_pin_value(nu));
        }
        if (p11_kit_uri_format(pu, P11_KIT_URI_FOR_ANY, &out) != P11_KIT_URI_OK || !out) {
                r = -ENOMEM;
                goto out;
        }
        *ret = out;
        r = 0;
        goto out;
mismatch: {
        char a[96], b[96], shown[FL_ERRMSG_MAX / 2];
        /* The narrowing URI's own fields, as given. */
        CK_TOKEN_INFO orig = *p11_kit_uri_get_token_info(nu);
        P11KitUri *pu2 = NULL;

        token_desc(&orig, b, sizeof(b));
        if (uri_parse(ctx, pinned, pinned_what, &pu2) == 0) {
                token_desc(p11_kit_uri_get_token_info(pu2), a, sizeof(a));
                p11_kit_uri_free(pu2);
        } else {
                snprintf(a, sizeof(a), "its token");
        }
        r = fl_err(ctx, -ENXIO,
                   "%s (%s) names %s, but %s is on %s: a token URI may only narrow the keyset's token, never "
                   "redirect it",
                   narrow_what, token_uri_shown(narrow, shown, sizeof(shown)), b, pinned_what, a);
}
out:
        if (pu)
                p11_kit_uri_free(pu);
        if (nu)
                p11_kit_uri_free(nu);
        return r;
}

int signer_token_open_pinned(fl_ctx *ctx, const char *pinned, const char *pinned_what,
                             const struct token_opts *opts, fl_token **ret)
{
        struct token_opts o = *opts;
        char *uri = NULL;
        int r;

        if (!pinned || !*pinned)
                return token_open(ctx, opts, ret);
        r = signer_token_uri(ctx, pinned, pinned_what, opts->uri, opts->uri_from ? opts->uri_from : "the token URI",
                             &uri);
        if (r < 0)
                return r;
        o.uri = uri;
        r = token_open(ctx, &o, ret);
        secret_free_str(uri); /* may hold a pin-value */
        return r;
}

int signer_token_open(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const struct token_opts *opts,
                      fl_token **ret)
{
        struct token_opts o = *opts;
        char what[512];

        o.login = true;
        /* A PIN file others can read is refused, not just warned about. */
        o.production = ks->profile && !strcmp(ks->profile, "production");
        if (!ks->token_uri || !*ks->token_uri)
                return token_open(ctx, &o, ret);
        snprintf(what, sizeof(what), "keyset %s", ks_path ? ks_path : ks->name ? ks->name : "");
        return signer_token_open_pinned(ctx, ks->token_uri, what, &o, ret);
}

/* ---- the production interlock ---------------------------------------------- */

static void trim_right(char *s)
{
        size_t n = strlen(s);
        while (n && s[n - 1] == ' ')
                s[--n] = 0;
}

int signer_interlock(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, fl_token *tok, token_obj obj,
                     enum key_type type, const char *name)
{
        const struct token_info *ti;
        char have[sizeof(ti->serial)], want[64];
        bool b;
        int r;

        if (!ks || !ks->profile || strcmp(ks->profile, "production"))
                return 0;
        ti = token_get_info(tok);
        if (!ks->token_serial || !*ks->token_serial)
                return fl_err(ctx, -EPERM, "%s: production keyset records no token_serial; refusing to sign", ks_path);
        snprintf(have, sizeof(have), "%s", ti ? ti->serial : "");
        snprintf(want, sizeof(want), "%s", ks->token_serial);
        trim_right(have);
        trim_right(want);
        if (strcmp(have, want))
                return fl_err(ctx, -EPERM,
                              "%s: token serial '%s' differs from the production keyset's token_serial '%s'; refusing to sign",
                              ks_path, have, want);
        if (key_type_is_secret(type))
                /* Fuse keys are extractable by design (their values go into
                 * the fuse XML); only the token identity is checked. */
                return 0;
        r = token_attr_bool(tok, obj, CKA_EXTRACTABLE, &b);
        if (r < 0)
                return r;
        if (b)
                return fl_err(ctx, -EPERM, "%s: CKA_EXTRACTABLE is true; a production keyset refuses extractable keys",
                              name);
        r = token_attr_bool(tok, obj, CKA_SENSITIVE, &b);
        if (r < 0)
                return r;
        if (!b)
                return fl_err(ctx, -EPERM, "%s: CKA_SENSITIVE is false; a production keyset refuses keys that are not sensitive",
                              name);
        return 0;
}

/* ---- signers ------------------------------------------------------------------ */

static int cert_load(signer *s, const struct signer_opts *o, const char *role)
{
        const char *p = ks_key_extra_str(s->kk, "certificate"), *want = ks_key_extra_str(s->kk, "certificate_sha256");
        char got[65];
        int r;

        if (!p || !want)
                return fl_err(s->ctx, -EINVAL, "%s: key %s records no certificate", s->ks_path, role);
        /* Identity CAs: relative to the keyset's directory, so a keyset
         * directory can move between stations intact. */
        s->cert_path = o->cert_beside_keyset && p[0] != '/' ? path_beside(s->ks_path, p) : strdup(p);
        if (!s->cert_path)
                return -ENOMEM;
        r = x509_cert_load(s->ctx, s->cert_path, &s->cert);
        if (r < 0)
                return r;
        r = x509_cert_sha256(s->cert, got);
        if (r < 0)
                return r;
        if (strcasecmp(got, want))
                return fl_err(s->ctx, -EBADMSG, "%s: SHA-256 %s is not the %s the keyset records for %s", s->cert_path,
                              got, want, role);
        return 0;
}

int signer_pin_key(fl_ctx *ctx, const char *ks_path, const struct ks_key *kk, fl_token *tok, token_obj obj,
                   EVP_PKEY **ret_pub, char ret_fpr[SIGN_FPR_LEN])
{
        EVP_PKEY *pub = NULL;
        char fpr[SIGN_FPR_LEN];
        int r;

        r = token_get_pubkey(tok, obj, &pub);
        if (r < 0)
                return r;
        r = sign_pkey_fingerprint(ctx, pub, fpr);
        if (r < 0)
                goto out;
        if (sign_pkey_type(pub) != kk->type) {
                r = fl_err(ctx, -EBADMSG, "%s: token object for role %s is %s, the manifest says %s", ks_path, kk->role,
                           key_type_name(sign_pkey_type(pub)), key_type_name(kk->type));
                goto out;
        }
        /* The manifest pins the public key: a replaced token object must
         * not sign under the role's name. */
        if (kk->public_key_sha256 && *kk->public_key_sha256 && strcasecmp(kk->public_key_sha256, fpr + 7)) {
                r = fl_err(ctx, -EBADMSG, "%s: token key for role %s is %s, the manifest's public_key_sha256 is %s",
                           ks_path, kk->role, fpr, kk->public_key_sha256);
                goto out;
        }
        *ret_pub = pub;
        pub = NULL;
        memcpy(ret_fpr, fpr, SIGN_FPR_LEN);
        r = 0;
out:
        EVP_PKEY_free(pub);
        return r;
}

int signer_open(fl_ctx *ctx, const struct keyset *ks, const char *role, const struct signer_opts *o, signer **ret)
{
        const char *ks_path = o->keyset_path ? o->keyset_path : "keyset";
        signer *s = NULL;
        char name[96];
        int r;

        if (!role)
                return fl_err(ctx, -EINVAL, "no role to sign with");
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ctx = ctx;
        s->ks = ks;
        s->ks_path = strdup(ks_path);
        if (!s->ks_path) {
                r = -ENOMEM;
                goto out;
        }
        s->kk = keyset_find(ks, role);
        if (!s->kk) {
                r = fl_err(ctx, -EINVAL, "%s: no key with role '%s'", ks_path, role);
                goto out;
        }
        r = signer_role_check(ctx, ks_path, role, s->kk, o->use);
        if (r < 0)
                goto out;
        if (key_type_is_secret(s->kk->type)) {
                r = fl_err(ctx, -EINVAL, "%s: role '%s' holds a secret key (%s): it cannot sign %s", ks_path, role,
                           key_type_name(s->kk->type), signer_use_name(o->use));
                goto out;
        }
        if (o->need_cert) {
                r = cert_load(s, o, role);
                if (r < 0)
                        goto out;
        }
        r = signer_token_open(ctx, ks, ks_path, o->tok, &s->tok);
        if (r < 0)
                goto out;
        r = keyset_key_object(ctx, s->tok, s->kk, &s->obj);
        if (r < 0)
                goto out;
        r = signer_pin_key(ctx, ks_path, s->kk, s->tok, s->obj, &s->pub, s->fpr);
        if (r < 0)
                goto out;
        if (s->cert && !x509_cert_has_key(s->cert, s->pub)) {
                r = fl_err(ctx, -EBADMSG, "%s: does not carry the public key of token object %s (role %s)",
                           s->cert_path, s->kk->label ? s->kk->label : s->kk->uri, role);
                goto out;
        }
        snprintf(name, sizeof(name), "role %s", role);
        r = signer_interlock(ctx, ks, ks_path, s->tok, s->obj, s->kk->type, name);
        if (r < 0)
                goto out;
        r = x509_signer_token(ctx, s->tok, s->obj, &s->xs);
        if (r < 0)
                goto out;
        *ret = s;
        s = NULL;
        r = 0;
out:
        signer_close(s);
        return r;
}

void signer_close(signer *s)
{
        if (!s)
                return;
        x509_signer_free(s->xs);
        EVP_PKEY_free(s->pub);
        X509_free(s->cert);
        free(s->cert_path);
        token_close(s->tok);
        free(s->ks_path);
        free(s);
}

int signer_sign(signer *s, enum sign_scheme scheme, const unsigned char *tbs, size_t tbs_len, unsigned char *out,
                size_t *ret_len, enum sign_scheme *ret_scheme)
{
        char name[96];
        int r;

        if (scheme == SCHEME_NONE)
                scheme = sign_scheme_default(s->kk->type);
        if (scheme <= SCHEME_NONE || scheme > SCHEME_AES_CMAC)
                return fl_err(s->ctx, -EINVAL, "no signing scheme");
        snprintf(name, sizeof(name), "role %s", s->kk->role);
        r = sign_token_raw(s->ctx, s->tok, s->obj, s->kk->type, s->pub, name, scheme, s->mech_ok[scheme], tbs, tbs_len,
                           out, ret_len);
        if (r < 0)
                return r;
        s->mech_ok[scheme] = true;
        if (ret_scheme)
                *ret_scheme = scheme;
        return 0;
}

x509_signer *signer_x509(signer *s)
{
        return s->xs;
}

X509 *signer_cert(const signer *s)
{
        return s->cert;
}

EVP_PKEY *signer_pubkey(const signer *s)
{
        return s->pub;
}

const char *signer_fingerprint(const signer *s)
{
        return s->fpr;
}

const struct ks_key *signer_key(const signer *s)
{
        return s->kk;
}

enum key_type signer_key_type(const signer *s)
{
        return s->kk->type;
}

fl_token *signer_token(signer *s)
{
        return s->tok;
}

const char *signer_cert_path(const signer *s)
{
        return s->cert_path;
}
