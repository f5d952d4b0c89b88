/* keyset.c — key roles per chip (jetson-fuses.md §2, §5) and the keyset
 * manifest: strict parsing (every problem names the file and field),
 * serialisation, atomic saving, and finding a key's token object. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "keyset.h"
#include "signer.h"

/* ---- roles ---------------------------------------------------------------- */

static const struct role_def {
        const char *role;
        enum role_kind kind;
        enum key_type t194; /* KT_NONE: not on this chip */
        enum key_type t234;
} roles[] = {
        /* PKC types are chosen by the user; KT_RSA3K only marks "valid here". */
        { "pkc0", ROLE_PKC, KT_RSA3K, KT_RSA3K },
        { "pkc1", ROLE_PKC, KT_NONE, KT_RSA3K }, /* revocation keys: T234 only */
        { "pkc2", ROLE_PKC, KT_NONE, KT_RSA3K },
        { "sbk", ROLE_FUSE_KEY, KT_AES128, KT_AES256 },
        { "oem-k1", ROLE_FUSE_KEY, KT_NONE, KT_AES256 },
        { "oem-k2", ROLE_FUSE_KEY, KT_NONE, KT_AES256 },
        { "kek0", ROLE_FUSE_KEY, KT_AES128, KT_NONE }, /* odmfuse takes --KEK* for Xavier only */
        { "kek1", ROLE_FUSE_KEY, KT_AES128, KT_NONE },
        { "kek2", ROLE_FUSE_KEY, KT_AES128, KT_NONE },
        { "kek256", ROLE_FUSE_KEY, KT_AES256, KT_NONE },
        /* The EKB payload keys (ekb-ftpm-luks.md §2.5): tag 1 is 32 bytes on
         * t234 and 16 on t194 (the --uefi-enc key), tags 2 and 4 are 16 bytes. */
        { "ekb-payload", ROLE_EKB_KEY, KT_AES128, KT_AES256 }, /* tag 1: kernel / UEFI payload key */
        { "ekb-disk", ROLE_EKB_KEY, KT_AES128, KT_AES128 },    /* tag 2: disk encryption (LUKS) key */
        { "ekb-auth", ROLE_EKB_KEY, KT_AES128, KT_AES128 },    /* tag 4: UEFI variable authentication key */
};

static const struct role_def *role_find(const char *role)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(roles); i++)
                if (!strcmp(roles[i].role, role))
                        return &roles[i];
        return NULL;
}

enum role_kind role_kind(const char *role)
{
        const struct role_def *d = role ? role_find(role) : NULL;
        return d ? d->kind : ROLE_OTHER;
}

static void roles_for_chip(enum fl_chip chip, char *buf, size_t len)
{
        size_t off = 0;

        buf[0] = 0;
        for (size_t i = 0; i < FL_ARRAY_SIZE(roles); i++) {
                enum key_type t = chip == FL_CHIP_T194 ? roles[i].t194 : roles[i].t234;
                if (t == KT_NONE)
                        continue;
                off += (size_t)snprintf(buf + off, len > off ? len - off : 0, "%s%s", off ? ", " : "", roles[i].role);
        }
}

int role_check(fl_ctx *ctx, enum fl_chip chip, const char *role, enum key_type *ret_type)
{
        const struct role_def *d = role_find(role);
        enum key_type t;
        char list[256];

        if (chip != FL_CHIP_T194 && chip != FL_CHIP_T234)
                return fl_err(ctx, -EINVAL, "unknown chip (use t194 or t234)");
        t = d ? (chip == FL_CHIP_T194 ? d->t194 : d->t234) : KT_NONE;
        if (t == KT_NONE) {
                roles_for_chip(chip, list, sizeof(list));
                return fl_err(ctx, -EINVAL, "key role '%s' is not valid for %s; %s takes: %s", role, chip_name(chip),
                              chip_name(chip), list);
        }
        if (ret_type)
                *ret_type = t;
        return 0;
}

int pkc_type_check(fl_ctx *ctx, enum fl_chip chip, enum key_type type)
{
        if (chip == FL_CHIP_T234 && (type == KT_RSA3K || type == KT_P256 || type == KT_P521))
                return 0;
        if (chip == FL_CHIP_T194 && (type == KT_RSA2K || type == KT_RSA3K))
                return 0;
        if (chip == FL_CHIP_T234)
                return fl_err(ctx, -EINVAL, "PKC key type %s is not valid for t234; t234 takes rsa3k, p256 or p521",
                              key_type_name(type));
        if (chip == FL_CHIP_T194)
                return fl_err(ctx, -EINVAL, "PKC key type %s is not valid for t194; t194 takes rsa2k or rsa3k",
                              key_type_name(type));
        return fl_err(ctx, -EINVAL, "unknown chip (use t194 or t234)");
}

/* ---- memory ------------------------------------------------------------------ */

void ks_key_clear(struct ks_key *k)
{
        free(k->role);
        free(k->label);
        free(k->uri);
        free(k->public_key_sha256);
        free(k->tegra_pkc_hash);
        free(k->kcv);
        free(k->hmac_uri);
        if (k->extra)
                json_object_put(k->extra);
        memset(k, 0, sizeof(*k));
}

const char *ks_key_extra_str(const struct ks_key *k, const char *name)
{
        json_object *v;

        if (!k || !k->extra || !json_object_object_get_ex(k->extra, name, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int keyset_new(struct keyset **ret)
{
        struct keyset *ks = calloc(1, sizeof(*ks));

        if (!ks)
                return -ENOMEM;
        *ret = ks;
        return 0;
}

void keyset_free(struct keyset *ks)
{
        if (!ks)
                return;
        for (size_t i = 0; i < ks->n_keys; i++)
                ks_key_clear(&ks->keys[i]);
        free(ks->keys);
        free(ks->profile);
        free(ks->name);
        free(ks->created);
        free(ks->token_uri);
        free(ks->token_label);
        free(ks->token_serial);
        free(ks->token_model);
        free(ks->token_manufacturer);
        if (ks->base)
                json_object_put(ks->base);
        free(ks);
}

static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

int keyset_add(struct keyset *ks, const struct ks_key *k)
{
        struct ks_key *nk, *arr;

        arr = realloc(ks->keys, (ks->n_keys + 1) * sizeof(*arr));
        if (!arr)
                return -ENOMEM;
        ks->keys = arr;
        nk = &arr[ks->n_keys];
        memset(nk, 0, sizeof(*nk));
        nk->role = dup_or_null(k->role);
        nk->type = k->type;
        nk->label = dup_or_null(k->label);
        nk->uri = dup_or_null(k->uri);
        nk->public_key_sha256 = dup_or_null(k->public_key_sha256);
        nk->tegra_pkc_hash = dup_or_null(k->tegra_pkc_hash);
        nk->kcv = dup_or_null(k->kcv);
        nk->hmac_uri = dup_or_null(k->hmac_uri);
        nk->imported = k->imported;
        nk->extra = k->extra ? json_object_get(k->extra) : NULL;
        if (!nk->role || (k->label && !nk->label) || (k->uri && !nk->uri)) {
                ks_key_clear(nk);
                return -ENOMEM;
        }
        ks->n_keys++;
        return 0;
}

struct ks_key *keyset_find(const struct keyset *ks, const char *role)
{
        for (size_t i = 0; i < ks->n_keys; i++)
                if (!strcmp(ks->keys[i].role, role))
                        return &ks->keys[i];
        return NULL;
}

/* ---- parsing ---------------------------------------------------------------- */

static bool is_hex(const char *s, size_t len)
{
        if (strlen(s) != len)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* Optional string member; -EINVAL if present and not a string. */
static int get_str(fl_ctx *ctx, const char *file, json_object *o, const char *field, const char *where,
                   bool required, char **ret)
{
        json_object *v;

        if (!json_object_object_get_ex(o, field, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return fl_err(ctx, -EINVAL, "%s: %s: missing field '%s'", file, where, field);
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return fl_err(ctx, -EINVAL, "%s: %s: field '%s' must be a string", file, where, field);
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static const char *const key_fields[] = { "role",    "type",     "label",    "uri",     "public_key_sha256",
                                          "tegra_pkc_hash", "kcv", "hmac_uri", "imported" };

static int parse_key(fl_ctx *ctx, const char *file, enum fl_chip chip, json_object *o, size_t idx, struct ks_key *k)
{
        char where[48], *type = NULL;
        json_object *v;
        int r;

        snprintf(where, sizeof(where), "keys[%zu]", idx);
        if (!json_object_is_type(o, json_type_object))
                return fl_err(ctx, -EINVAL, "%s: %s must be an object", file, where);
        if ((r = get_str(ctx, file, o, "role", where, true, &k->role)) < 0 ||
            (r = get_str(ctx, file, o, "type", where, true, &type)) < 0 ||
            (r = get_str(ctx, file, o, "label", where, false, &k->label)) < 0 ||
            (r = get_str(ctx, file, o, "uri", where, true, &k->uri)) < 0 ||
            (r = get_str(ctx, file, o, "public_key_sha256", where, false, &k->public_key_sha256)) < 0 ||
            (r = get_str(ctx, file, o, "tegra_pkc_hash", where, false, &k->tegra_pkc_hash)) < 0 ||
            (r = get_str(ctx, file, o, "kcv", where, false, &k->kcv)) < 0 ||
            (r = get_str(ctx, file, o, "hmac_uri", where, false, &k->hmac_uri)) < 0)
                goto out;
        snprintf(where, sizeof(where), "key '%.16s'", k->role);
        k->type = key_type_from_name(type);
        r = -EINVAL;
        if (k->type == KT_NONE) {
                fl_err(ctx, r, "%s: %s: unknown type '%s'", file, where, type);
                goto out;
        }
        if (strncmp(k->uri, "pkcs11:", 7)) {
                fl_err(ctx, r, "%s: %s: uri '%s' is not a PKCS#11 URI", file, where, k->uri);
                goto out;
        }
        if (k->hmac_uri && strncmp(k->hmac_uri, "pkcs11:", 7)) {
                fl_err(ctx, r, "%s: %s: hmac_uri is not a PKCS#11 URI", file, where);
                goto out;
        }
        if (k->public_key_sha256 && !is_hex(k->public_key_sha256, 64)) {
                fl_err(ctx, r, "%s: %s: public_key_sha256 must be 64 lower-case hex digits", file, where);
                goto out;
        }
        if (k->kcv && !is_hex(k->kcv, 6)) {
                fl_err(ctx, r, "%s: %s: kcv must be 6 lower-case hex digits", file, where);
                goto out;
        }
        if (k->tegra_pkc_hash) {
                size_t want = chip == FL_CHIP_T194 ? 64 : 128;
                if (strncmp(k->tegra_pkc_hash, "0x", 2) || !is_hex(k->tegra_pkc_hash + 2, want)) {
                        fl_err(ctx, r, "%s: %s: tegra_pkc_hash must be 0x + %zu hex digits for %s", file, where,
                               want, chip_name(chip));
                        goto out;
                }
        }
        switch (role_kind(k->role)) {
        case ROLE_PKC:
                if (role_check(ctx, chip, k->role, NULL) < 0 || pkc_type_check(ctx, chip, k->type) < 0) {
                        char msg[FL_ERRMSG_MAX];
                        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx));
                        fl_err(ctx, r, "%s: %s: %s", file, where, msg);
                        goto out;
                }
                if (!k->tegra_pkc_hash || !k->public_key_sha256) {
                        fl_err(ctx, r, "%s: %s: a PKC key needs tegra_pkc_hash and public_key_sha256", file, where);
                        goto out;
                }
                break;
        case ROLE_FUSE_KEY:
        case ROLE_EKB_KEY: {
                enum key_type want;
                if (role_check(ctx, chip, k->role, &want) < 0) {
                        char msg[FL_ERRMSG_MAX];
                        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx));
                        fl_err(ctx, r, "%s: %s: %s", file, where, msg);
                        goto out;
                }
                if (k->type != want) {
                        fl_err(ctx, r, "%s: %s: type must be %s on %s", file, where, key_type_name(want),
                               chip_name(chip));
                        goto out;
                }
                if (!k->kcv) {
                        fl_err(ctx, r, "%s: %s: a %s key needs its kcv", file, where,
                               role_kind(k->role) == ROLE_EKB_KEY ? "EKB" : "fuse");
                        goto out;
                }
                break;
        }
        case ROLE_OTHER:
                break;
        }
        if (json_object_object_get_ex(o, "imported", &v)) {
                if (!json_object_is_type(v, json_type_boolean)) {
                        fl_err(ctx, r, "%s: %s: imported must be true or false", file, where);
                        goto out;
                }
                k->imported = json_object_get_boolean(v);
        }
        /* Keep whatever else other commands recorded (certificates, …). */
        json_object_object_foreach(o, name, val)
        {
                bool known = false;
                for (size_t i = 0; i < FL_ARRAY_SIZE(key_fields); i++)
                        known |= !strcmp(name, key_fields[i]);
                if (known)
                        continue;
                if (!k->extra && !(k->extra = json_object_new_object())) {
                        r = -ENOMEM;
                        goto out;
                }
                json_object_object_add(k->extra, name, json_object_get(val));
        }
        r = 0;
out:
        free(type);
        return r;
}

int keyset_parse(fl_ctx *ctx, const char *file, const char *text, size_t len, struct keyset **ret)
{
        struct json_tokener *jt = NULL;
        json_object *root = NULL, *v, *tok, *keys;
        struct keyset *ks = NULL;
        char *chip = NULL;
        size_t end;
        int r;

        r = keyset_new(&ks);
        if (r < 0)
                return r;
        jt = json_tokener_new_ex(16);
        if (!jt) {
                r = -ENOMEM;
                goto out;
        }
        if (len > KEYSET_MAX_BYTES) {
                r = fl_err(ctx, -EINVAL, "%s: manifest larger than %d bytes", file, KEYSET_MAX_BYTES);
                goto out;
        }
        if (memchr(text, 0, len)) {
                r = fl_err(ctx, -EINVAL, "%s: not a keyset manifest (binary data)", file);
                goto out;
        }
        root = json_tokener_parse_ex(jt, text, (int)len);
        if (!root) {
                enum json_tokener_error e = json_tokener_get_error(jt);
                r = fl_err(ctx, -EINVAL, "%s: not valid JSON (%s at byte %zu)", file,
                           e == json_tokener_continue ? "truncated" : json_tokener_error_desc(e),
                           json_tokener_get_parse_end(jt));
                goto out;
        }
        for (end = json_tokener_get_parse_end(jt); end < len; end++)
                if (!strchr(" \t\r\n", text[end])) {
                        r = fl_err(ctx, -EINVAL, "%s: trailing data after the JSON object at byte %zu", file, end);
                        goto out;
                }
        r = -EINVAL;
        if (!json_object_is_type(root, json_type_object)) {
                fl_err(ctx, r, "%s: a keyset manifest is a JSON object", file);
                goto out;
        }
        if (!json_object_object_get_ex(root, "format", &v) || !json_object_is_type(v, json_type_string) ||
            strcmp(json_object_get_string(v), KEYSET_FORMAT)) {
                fl_err(ctx, r, "%s: field 'format' must be \"%s\"", file, KEYSET_FORMAT);
                goto out;
        }
        if ((r = get_str(ctx, file, root, "chip", "manifest", true, &chip)) < 0)
                goto out;
        r = -EINVAL;
        ks->chip = chip_from_name(chip);
        if (ks->chip == FL_CHIP_NONE || strcmp(chip, chip_name(ks->chip))) {
                fl_err(ctx, r, "%s: field 'chip': '%s' is not t194 or t234", file, chip);
                goto out;
        }
        if ((r = get_str(ctx, file, root, "profile", "manifest", true, &ks->profile)) < 0 ||
            (r = get_str(ctx, file, root, "name", "manifest", false, &ks->name)) < 0 ||
            (r = get_str(ctx, file, root, "created", "manifest", false, &ks->created)) < 0)
                goto out;
        r = -EINVAL;
        if (strcmp(ks->profile, "lab") && strcmp(ks->profile, "production")) {
                fl_err(ctx, r, "%s: field 'profile': '%s' is not lab or production", file, ks->profile);
                goto out;
        }
        if (!json_object_object_get_ex(root, "token", &tok) || !json_object_is_type(tok, json_type_object)) {
                fl_err(ctx, r, "%s: missing object 'token'", file);
                goto out;
        }
        if ((r = get_str(ctx, file, tok, "uri", "token", true, &ks->token_uri)) < 0 ||
            (r = get_str(ctx, file, tok, "label", "token", false, &ks->token_label)) < 0 ||
            (r = get_str(ctx, file, tok, "serial", "token", false, &ks->token_serial)) < 0 ||
            (r = get_str(ctx, file, tok, "model", "token", false, &ks->token_model)) < 0 ||
            (r = get_str(ctx, file, tok, "manufacturer", "token", false, &ks->token_manufacturer)) < 0)
                goto out;
        r = -EINVAL;
        if (strncmp(ks->token_uri, "pkcs11:", 7)) {
                fl_err(ctx, r, "%s: token.uri is not a PKCS#11 URI", file);
                goto out;
        }
        if (!json_object_object_get_ex(root, "keys", &keys) || !json_object_is_type(keys, json_type_array)) {
                fl_err(ctx, r, "%s: missing array 'keys'", file);
                goto out;
        }
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                struct ks_key k = { 0 };
                r = parse_key(ctx, file, ks->chip, json_object_array_get_idx(keys, i), i, &k);
                if (r < 0) {
                        ks_key_clear(&k);
                        goto out;
                }
                if (keyset_find(ks, k.role)) {
                        r = fl_err(ctx, -EINVAL, "%s: keys[%zu]: role '%s' appears twice", file, i, k.role);
                        ks_key_clear(&k);
                        goto out;
                }
                r = keyset_add(ks, &k);
                ks_key_clear(&k);
                if (r < 0)
                        goto out;
        }
        ks->base = keyset_to_json(ks);
        if (!ks->base) {
                r = -ENOMEM;
                goto out;
        }
        *ret = ks;
        ks = NULL;
        r = 0;
out:
        free(chip);
        if (root)
                json_object_put(root);
        if (jt)
                json_tokener_free(jt);
        keyset_free(ks);
        return r;
}

int keyset_load(fl_ctx *ctx, const char *path, struct keyset **ret)
{
        unsigned char *data = NULL;
        size_t len;
        int r;

        r = file_read(ctx, path, KEYSET_MAX_BYTES, &data, &len);
        if (r < 0)
                return r;
        r = keyset_parse(ctx, path, (const char *)data, len, ret);
        free(data);
        return r;
}

/* ---- writing ---------------------------------------------------------------- */

static void add_str(json_object *o, const char *k, const char *v)
{
        if (v)
                json_object_object_add(o, k, json_object_new_string(v));
}

json_object *keyset_to_json(const struct keyset *ks)
{
        json_object *root = json_object_new_object(), *tok = json_object_new_object(), *keys = json_object_new_array();

        add_str(root, "format", KEYSET_FORMAT);
        add_str(root, "chip", chip_name(ks->chip));
        add_str(root, "profile", ks->profile);
        add_str(root, "name", ks->name);
        add_str(root, "created", ks->created);
        add_str(tok, "uri", ks->token_uri);
        add_str(tok, "label", ks->token_label);
        add_str(tok, "serial", ks->token_serial);
        add_str(tok, "model", ks->token_model);
        add_str(tok, "manufacturer", ks->token_manufacturer);
        json_object_object_add(root, "token", tok);
        for (size_t i = 0; i < ks->n_keys; i++) {
                const struct ks_key *k = &ks->keys[i];
                json_object *o = json_object_new_object();
                add_str(o, "role", k->role);
                add_str(o, "type", key_type_name(k->type));
                add_str(o, "label", k->label);
                add_str(o, "uri", k->uri);
                add_str(o, "public_key_sha256", k->public_key_sha256);
                add_str(o, "tegra_pkc_hash", k->tegra_pkc_hash);
                add_str(o, "kcv", k->kcv);
                add_str(o, "hmac_uri", k->hmac_uri);
                if (k->imported)
                        json_object_object_add(o, "imported", json_object_new_boolean(1));
                if (k->extra) {
                        json_object_object_foreach(k->extra, name, val)
                                json_object_object_add(o, name, json_object_get(val));
                }
                json_object_array_add(keys, o);
        }
        json_object_object_add(root, "keys", keys);
        return root;
}

static int json_write(fl_ctx *ctx, json_object *o, const char *path, bool new_only)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
        char *buf;
        int r;

        if (!s || asprintf(&buf, "%s\n", s) < 0)
                return -ENOMEM;
        r = new_only ? file_write_new(ctx, path, buf, strlen(buf), 0644)
                     : file_write_atomic(ctx, path, buf, strlen(buf), 0644);
        free(buf);
        return r;
}

/* The key object of a role in a manifest's "keys" array, or NULL. */
static json_object *key_of(json_object *root, const char *role)
{
        json_object *keys, *v;

        if (!root || !json_object_object_get_ex(root, "keys", &keys))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                json_object *k = json_object_array_get_idx(keys, i);
                if (json_object_object_get_ex(k, "role", &v) && !strcmp(json_object_get_string(v), role))
                        return k;
        }
        return NULL;
}

static const char *role_of(json_object *k)
{
        json_object *v;

        return json_object_object_get_ex(k, "role", &v) ? json_object_get_string(v) : "";
}

/* Either may be NULL (absent). */
static bool same(json_object *a, json_object *b)
{
        return a == b || (a && b && json_object_equal(a, b));
}

/* Three-way merge of mine (this writer) and theirs (the file now) over
 * base (what this writer loaded): into a new object, or -EEXIST naming what
 * both changed differently. */
static int merge(fl_ctx *ctx, const char *path, json_object *base, json_object *mine, json_object *theirs,
                 json_object **ret)
{
        json_object *out = json_object_new_object(), *keys = json_object_new_array(), *mk, *tk;
        int r = -ENOMEM;

        if (!out || !keys)
                goto fail;
        /* Top-level members in theirs' order; mine where this writer changed them. */
        json_object_object_foreach(theirs, name, tv) {
                json_object *bv = NULL, *mv = NULL;
                if (!strcmp(name, "keys"))
                        continue;
                json_object_object_get_ex(base, name, &bv);
                json_object_object_get_ex(mine, name, &mv);
                if (!same(mv, bv)) {
                        if (!same(tv, bv) && !same(tv, mv)) {
                                r = fl_err(ctx, -EEXIST, "%s: '%s' was changed by another writer meanwhile", path, name);
                                goto fail;
                        }
                        tv = mv;
                }
                if (tv)
                        json_object_object_add(out, name, json_object_get(tv));
        }
        json_object_object_foreach(mine, mname, mv2) {
                json_object *bv2 = NULL, *tv2 = NULL;
                if (!strcmp(mname, "keys") || json_object_object_get_ex(theirs, mname, &tv2))
                        continue;
                json_object_object_get_ex(base, mname, &bv2);
                if (!same(mv2, bv2)) /* added by this writer (or removed by the other and changed here) */
                        json_object_object_add(out, mname, json_object_get(mv2));
        }
        /* Keys, by role: theirs' order, then the ones this writer added. */
        json_object_object_get_ex(theirs, "keys", &tk);
        json_object_object_get_ex(mine, "keys", &mk);
        for (size_t i = 0; tk && i < json_object_array_length(tk); i++) {
                json_object *t = json_object_array_get_idx(tk, i), *b = key_of(base, role_of(t)),
                            *m = key_of(mine, role_of(t)), *take = t;
                if (!b) {
                        if (m && !same(m, t))
                                goto conflict_t;
                } else if (!same(m, b)) {
                        if (!same(t, b) && !same(t, m))
                                goto conflict_t;
                        take = m; /* this writer changed or (m NULL) removed it */
                }
                if (take)
                        json_object_array_add(keys, json_object_get(take));
                continue;
conflict_t:
                r = fl_err(ctx, -EEXIST, "%s: key '%s' was changed by another writer meanwhile; nothing written",
                           path, role_of(t));
                goto fail;
        }
        for (size_t i = 0; mk && i < json_object_array_length(mk); i++) {
                json_object *m = json_object_array_get_idx(mk, i), *b = key_of(base, role_of(m));
                if (key_of(theirs, role_of(m)))
                        continue;
                if (b && !same(m, b)) {
                        r = fl_err(ctx, -EEXIST, "%s: key '%s' was removed by another writer meanwhile; nothing written",
                                   path, role_of(m));
                        goto fail;
                }
                if (!b) /* added here; (b && same): removed by the other writer */
                        json_object_array_add(keys, json_object_get(m));
        }
        json_object_object_add(out, "keys", keys);
        *ret = out;
        return 0;
fail:
        json_object_put(keys);
        json_object_put(out);
        return r;
}

#define KEYSET_LOCK_WAIT_MS 60000

/* flock(2) on the directory holding path: no lock file left beside the
 * manifest, and every writer of a manifest there waits for the others. */
static int lock_dir_of(fl_ctx *ctx, const char *path, int *ret_fd)
{
        char *copy = strdup(path);
        int fd;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                fl_err(ctx, r == -ENOENT ? r : -EINVAL, "%s: cannot open its directory to lock it: %s", path,
                       strerror(-r));
                free(copy);
                return r == -ENOENT ? r : -EINVAL;
        }
        free(copy);
        /* Writers hold the lock for one read and one write: poll, so an
         * interrupt is noticed and a stuck holder ends in an error. */
        for (unsigned waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0;) {
                int r = -errno;
                if (r == -EINTR)
                        continue;
                if (r == -EWOULDBLOCK && waited < KEYSET_LOCK_WAIT_MS) {
                        r = fl_interrupted(ctx);
                        if (r == 0) {
                                usleep(10 * 1000);
                                waited += 10;
                                continue;
                        }
                } else if (r == -EWOULDBLOCK) {
                        r = fl_err(ctx, -EBUSY, "%s: another writer has held the manifest's directory locked for "
                                   "%u s; nothing written", path, KEYSET_LOCK_WAIT_MS / 1000);
                } else {
                        r = fl_err(ctx, r, "%s: cannot lock its directory: %s", path, strerror(-r));
                }
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int keyset_save(fl_ctx *ctx, const struct keyset *ks, const char *path)
{
        json_object *mine = keyset_to_json(ks), *out = NULL;
        struct keyset *now = NULL;
        unsigned char *data = NULL;
        size_t len;
        int fd = -1, r;

        if (!mine)
                return -ENOMEM;
        r = lock_dir_of(ctx, path, &fd);
        if (r < 0)
                goto out;
        r = file_read(ctx, path, KEYSET_MAX_BYTES, &data, &len);
        if (r == -ENOENT || (r == 0 && !ks->base)) {
                /* No file: nobody else's update to keep. A keyset built in
                 * memory (not loaded) replaces the file, as it always did. */
                if (r < 0)
                        fl_err_clear(ctx);
                r = json_write(ctx, mine, path, false);
                goto out;
        }
        if (r < 0)
                goto out;
        r = keyset_parse(ctx, path, (const char *)data, len, &now);
        if (r < 0)
                goto out;
        r = merge(ctx, path, ks->base, mine, now->base, &out);
        if (r < 0)
                goto out;
        r = json_write(ctx, out, path, false);
out:
        if (fd >= 0)
                close(fd); /* releases the lock */
        if (out)
                json_object_put(out);
        json_object_put(mine);
        keyset_free(now);
        free(data);
        return r;
}

int keyset_save_new(fl_ctx *ctx, const struct keyset *ks, const char *path)
{
        json_object *o = keyset_to_json(ks);
        int r;

        if (!o)
                return -ENOMEM;
        r = json_write(ctx, o, path, true);
        json_object_put(o);
        return r;
}

/* ---- token ------------------------------------------------------------------ */

int keyset_token_open(fl_ctx *ctx, const struct keyset *ks, const struct token_opts *opts, fl_token **ret)
{
        /* The one token policy (lib/signer.c): the manifest's URI pins the
         * token, opts->uri may only narrow it. */
        return signer_token_open(ctx, ks, NULL, opts, ret);
}

int keyset_key_object(fl_ctx *ctx, fl_token *tok, const struct ks_key *k, token_obj *ret)
{
        int r = token_find_uri(tok, k->uri, key_type_is_secret(k->type) ? CKO_SECRET_KEY : CKO_PRIVATE_KEY, ret);

        if (r == -ENXIO)
                return fl_err(ctx, -ENXIO, "key '%s' (%s) is not in token '%s'", k->role, k->label ? k->label : k->uri,
                              token_get_info(tok)->label);
        return r;
}
