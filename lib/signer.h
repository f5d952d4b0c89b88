/* signer.h — the one way to use a token-held key that a keyset names.
 *
 * Every command that signs with a keyset key (image signatures, UEFI
 * authenticated-variable updates and payloads, device certificates, ledger
 * checkpoints) gets its key here, so the same rules hold on every path:
 *   - the token is the one the manifest names (its URI carries the serial);
 *     a token URI given by the caller (an option, a station default) may
 *     only narrow it, never redirect it: a different token is refused
 *     naming both (-ENXIO, exit 3);
 *   - the object is found by the manifest's URI, and its public key must be
 *     the manifest's public_key_sha256; where the role records a
 *     certificate, its SHA-256 must be the recorded one and it must carry
 *     the token key;
 *   - the role must be one that may sign what is asked (signer_use);
 *   - the production interlock: for a production keyset the token serial
 *     must be the manifest's token_serial and an asymmetric key must be
 *     CKA_EXTRACTABLE false and CKA_SENSITIVE true (-EPERM, exit 6). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "internal.h"
#include "keyset.h"
#include "p11.h"
#include "sign.h"
#include "x509.h"

/* What a key is asked to sign. */
enum signer_use {
        SIGNER_USE_IMAGE = 0,    /* image signatures and fuse-key MACs (fuseline sign) */
        SIGNER_USE_UEFI_KEK,     /* a KEK update: signed by the PK */
        SIGNER_USE_UEFI_DB,      /* a db/dbx update: signed by a KEK or the PK */
        SIGNER_USE_UEFI_PAYLOAD, /* a UEFI payload (kernel, initrd, …): signed by a db key */
        SIGNER_USE_DEVICE_CERT,  /* device certificates: signed by a certificate-authority role */
        SIGNER_USE_CHECKPOINT,   /* ledger checkpoints: a role meant for it (station, station-*, ledger-*) */
};

const char *signer_use_name(enum signer_use u);

/* Whether role may sign for use (the key-separation policy). -EINVAL naming
 * the role, what it is and which roles may, otherwise. ks_path names the
 * keyset in messages. kk may be NULL (only the role name is judged). */
int signer_role_check(fl_ctx *ctx, const char *ks_path, const char *role, const struct ks_key *kk,
                      enum signer_use use);

/* A token URI that may only narrow the pinned one: every token attribute
 * (token=, serial=, manufacturer=, model=) narrow names must equal the
 * pinned URI's where that has one (-ENXIO naming both tokens otherwise);
 * attributes only narrow names are added; narrow's module-path/-name and
 * pin-source are used where pinned has none. pinned_what / narrow_what say
 * where each came from ("keyset keyset.json", "--token"). NULL or empty
 * narrow: a copy of pinned. Result malloc'd. */
int signer_token_uri(fl_ctx *ctx, const char *pinned, const char *pinned_what, const char *narrow,
                     const char *narrow_what, char **ret);

/* Open the token pinned by a URI (a manifest's token_uri, or a --key URI),
 * with opts->uri (if any) only narrowing it. */
int signer_token_open_pinned(fl_ctx *ctx, const char *pinned, const char *pinned_what,
                             const struct token_opts *opts, fl_token **ret);
/* Open the token a keyset lives on (logs in; a production keyset's PIN file
 * must not be readable by others). keyset_token_open is this. */
int signer_token_open(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const struct token_opts *opts,
                      fl_token **ret);

/* The production interlock for one token object (see above). name names the
 * key in messages; type is its key type (secret keys: only the token serial
 * is checked, fuse keys are extractable by design). Lab keysets pass. */
int signer_interlock(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, fl_token *tok, token_obj obj,
                     enum key_type type, const char *name);

/* The pinned public key of a manifest entry's token object: its type must
 * be the manifest's and its SPKI SHA-256 the manifest's public_key_sha256
 * (-EBADMSG naming both otherwise). ret_pub gets the public key, ret_fpr
 * "sha256:…". */
int signer_pin_key(fl_ctx *ctx, const char *ks_path, const struct ks_key *kk, fl_token *tok, token_obj obj,
                   EVP_PKEY **ret_pub, char ret_fpr[SIGN_FPR_LEN]);

typedef struct signer signer;

struct signer_opts {
        const struct token_opts *tok; /* tok->uri may only narrow the manifest's token */
        const char *keyset_path;      /* for messages; and the directory certificates are found in */
        enum signer_use use;
        /* The role must record a certificate (certificate, certificate_sha256)
         * that carries the token key; it is loaded and pinned. */
        bool need_cert;
        /* Where a relative "certificate" path is found: beside the keyset
         * (identity CAs), or as recorded (UEFI keys, relative to the
         * working directory as keygen --uefi wrote it). */
        bool cert_beside_keyset;
};

/* Open the token, find the role's private key, pin it (public key and, with
 * need_cert, certificate), apply the role policy and the production
 * interlock. ks must outlive the signer. */
int signer_open(fl_ctx *ctx, const struct keyset *ks, const char *role, const struct signer_opts *o, signer **ret);
void signer_close(signer *s); /* accepts NULL */

/* A raw signature with scheme (SCHEME_NONE: the key type's default) over tbs
 * (the digest for prehashed schemes). out: SIGN_RAW_MAX bytes. The scheme
 * used is returned in ret_scheme (may be NULL). */
int signer_sign(signer *s, enum sign_scheme scheme, const unsigned char *tbs, size_t tbs_len, unsigned char *out,
                size_t *ret_len, enum sign_scheme *ret_scheme);

/* The adapter the X.509/PKCS#7 code signs with (borrowed). */
x509_signer *signer_x509(signer *s);
/* The pinned certificate (borrowed; NULL without need_cert). */
X509 *signer_cert(const signer *s);
EVP_PKEY *signer_pubkey(const signer *s);                 /* borrowed */
const char *signer_fingerprint(const signer *s);          /* "sha256:" + hex of the SPKI */
const struct ks_key *signer_key(const signer *s);         /* the manifest entry */
enum key_type signer_key_type(const signer *s);
fl_token *signer_token(signer *s);                        /* borrowed */
const char *signer_cert_path(const signer *s);            /* NULL without need_cert */
