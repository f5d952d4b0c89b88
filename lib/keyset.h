/* keyset.h — key roles per chip and the keyset manifest
 * ("format": "fuseline-keyset/1", JSON): which keys a product has, where they
 * live in the token, and the public facts about them (hashes, check values).
 * The manifest never holds a secret. */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>

#include "internal.h"
#include "p11.h"

#define KEYSET_FORMAT "fuseline-keyset/1"
#define KEYSET_MAX_BYTES (1024 * 1024)

enum role_kind {
        ROLE_PKC,      /* pkc0..pkc2: the secure-boot signing key(s) */
        ROLE_FUSE_KEY, /* sbk, oem-k1/2, kek0/1/2/256: AES values burned into fuses */
        ROLE_EKB_KEY,  /* ekb-payload/-disk/-auth: AES values carried inside the EKB image */
        ROLE_OTHER,    /* uefi-*, identity-ca, …: added by later commands */
};

/* The kind of a role name (ROLE_OTHER for names this table does not know). */
enum role_kind role_kind(const char *role);
/* Whether a role is valid for a chip; for fuse keys also their key type.
 * Returns -EINVAL with a message saying what the chip accepts. */
int role_check(fl_ctx *ctx, enum fl_chip chip, const char *role, enum key_type *ret_type);
/* Whether a PKC type is valid for a chip (message lists the accepted ones). */
int pkc_type_check(fl_ctx *ctx, enum fl_chip chip, enum key_type type);

struct ks_key {
        char *role;
        enum key_type type;
        char *label;
        char *uri;               /* finds exactly this object */
        char *public_key_sha256; /* hex, public keys only */
        char *tegra_pkc_hash;    /* "0x…", PKC roles only */
        char *kcv;               /* 6 hex digits, secret keys only */
        char *hmac_uri;          /* CKK_GENERIC_SECRET twin of a fuse key */
        bool imported;
        /* Any further members (certificate, certificate_sha256, …) that other
         * commands record; kept verbatim across load/save. Owned. */
        json_object *extra;
};

struct keyset {
        enum fl_chip chip;
        char *profile; /* "lab" | "production" */
        char *name;    /* label prefix */
        char *created;
        char *token_uri, *token_label, *token_serial, *token_model, *token_manufacturer;
        struct ks_key *keys;
        size_t n_keys;
        /* The manifest as keyset_parse read it (normalised), so keyset_save
         * can tell this writer's changes from another's. NULL for a keyset
         * built in memory. Owned. */
        json_object *base;
};

int keyset_new(struct keyset **ret);
void keyset_free(struct keyset *ks);
/* Parse and validate a manifest. Every problem is -EINVAL with a message
 * naming the file and the field. */
int keyset_load(fl_ctx *ctx, const char *path, struct keyset **ret);
int keyset_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, struct keyset **ret);
/* Serialise (caller frees with json_object_put). */
json_object *keyset_to_json(const struct keyset *ks);
/* Write atomically with mode 0644 (no secrets inside). Under an exclusive
 * flock(2) on the manifest's directory, the file as it is now is read and
 * this writer's changes since keyset_load (keys added, changed or removed,
 * by role; top-level members) are applied to it, so two writers that
 * loaded the same manifest both keep their update. A key (or member) that
 * both changed differently is -EEXIST naming it, and nothing is written. */
int keyset_save(fl_ctx *ctx, const struct keyset *ks, const char *path);
/* Same, but the file must not exist yet (-EEXIST, exit 7). */
int keyset_save_new(fl_ctx *ctx, const struct keyset *ks, const char *path);
struct ks_key *keyset_find(const struct keyset *ks, const char *role);
/* Append a copy of k (strings duplicated, extra referenced). */
int keyset_add(struct keyset *ks, const struct ks_key *k);
/* Free what an entry owns and zero it (for entries built before keyset_add). */
void ks_key_clear(struct ks_key *k);
/* The string member name of k->extra ("certificate", "owner_guid", …); NULL
 * if k is NULL or the member is absent or not a string. Owned by k. */
const char *ks_key_extra_str(const struct ks_key *k, const char *name);
/* Open the token the keyset lives on: opts->uri defaults to the keyset's
 * token URI. */
int keyset_token_open(fl_ctx *ctx, const struct keyset *ks, const struct token_opts *opts, fl_token **ret);
/* Find the object of a key entry (private key / secret key). */
int keyset_key_object(fl_ctx *ctx, fl_token *tok, const struct ks_key *k, token_obj *ret);
