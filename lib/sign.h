/* sign.h — image signatures and fuse-key MACs made with token-held keys:
 * the scheme table, streamed hashing of file ranges, the signature formats
 * (raw, der, pem, tegra), signing through PKCS#11 behind the production
 * interlock, and verification with OpenSSL.
 *
 * Facts: shared/reference/jetson-fuses.md §4 "Image signatures made with the
 * PKC key" (RSA-PSS with salt = hash length, stored byte-reversed; Ed25519
 * plain; HMAC-SHA256 with the SBK). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "internal.h"
#include "p11.h"
#include "tegra_key.h"

enum sign_scheme {
        SCHEME_NONE = 0,
        SCHEME_RSA_PSS_SHA256,
        SCHEME_RSA_PSS_SHA512,
        SCHEME_RSA_PSS_SHA512_SALT32, /* tegrasign's --sha sha512: SHA-512, salt 32 */
        SCHEME_RSA_PKCS1_SHA256,
        SCHEME_ECDSA_SHA256,
        SCHEME_ECDSA_SHA384,
        SCHEME_ECDSA_SHA512,
        SCHEME_ED25519,
        SCHEME_HMAC_SHA256,
        SCHEME_AES_CMAC,
};

enum sign_format {
        SIGFMT_AUTO = 0, /* verify only: PEM if armoured, ECDSA raw/DER by length, else raw */
        SIGFMT_RAW,      /* what C_Sign returns (ECDSA: r‖s) */
        SIGFMT_DER,      /* ECDSA: ECDSA-Sig-Value SEQUENCE; RSA/Ed25519: same as raw */
        SIGFMT_PEM,      /* "SIGNATURE" armour around the der form */
        SIGFMT_TEGRA,    /* as tegrasign_v3 stores it: RSA-PSS byte-reversed */
};

/* Largest raw signature or MAC we handle: RSA-8192 (1024 bytes). */
#define SIGN_RAW_MAX 1024
/* The longest digest a scheme signs (SHA-512). */
#define SIGN_DIGEST_MAX 64
/* Ed25519 and the MACs go to the token in one C_Sign call (pure EdDSA cannot
 * be streamed; token_sign is single-part), so their input is read whole, up
 * to this size. Image signatures (RSA, ECDSA) are streamed without limit. */
#define SIGN_ONESHOT_MAX ((size_t)256 * 1024 * 1024)

/* ---- schemes and formats ---------------------------------------------- */

const char *sign_scheme_name(enum sign_scheme s); /* "rsa-pss-sha256", …; "none" */
/* -EINVAL naming the accepted schemes if name is unknown. */
int sign_scheme_parse(fl_ctx *ctx, const char *name, enum sign_scheme *ret);
/* The scheme a key type signs with when none is asked for (RSA → PSS-SHA256,
 * P-256/384/521 → ECDSA-SHA256/384/512, Ed25519 → Ed25519, AES → CMAC,
 * generic secret → HMAC-SHA256). SCHEME_NONE for KT_NONE. */
enum sign_scheme sign_scheme_default(enum key_type t);
/* Whether a key of type t (as recorded for `what`, e.g. "role pkc0") can make
 * scheme s; -EINVAL saying what the scheme needs otherwise. AES fuse keys
 * pass for hmac-sha256: their CKK_GENERIC_SECRET twin does the work. */
int sign_scheme_check_key(fl_ctx *ctx, enum sign_scheme s, enum key_type t, const char *what);
bool sign_scheme_is_mac(enum sign_scheme s);
/* RSA and ECDSA sign a digest (streamed hash, or --digest input). */
bool sign_scheme_prehashed(enum sign_scheme s);
/* The digest name for prehashed schemes ("SHA256", …), NULL otherwise. */
const char *sign_scheme_md(enum sign_scheme s);
size_t sign_scheme_digest_len(enum sign_scheme s);

const char *sign_format_name(enum sign_format f);
int sign_format_parse(fl_ctx *ctx, const char *name, enum sign_format *ret);
/* Whether scheme s can be written in format f; -EINVAL saying why not. */
int sign_format_check(fl_ctx *ctx, enum sign_scheme s, enum sign_format f);

/* ---- input ------------------------------------------------------------- */

struct sign_range {
        uint64_t offset;
        uint64_t length;
        bool has_length; /* false: to the end of the file */
};

/* Digest of a byte range of a regular file, read in fixed-size blocks
 * (constant memory for any file size). mdname is an OpenSSL digest name.
 * -EINVAL for a directory, an empty range, or a range past the end. */
int sign_hash_file(fl_ctx *ctx, const char *path, const struct sign_range *rg, const char *mdname,
                   unsigned char out[EVP_MAX_MD_SIZE], size_t *ret_len);

/* A byte range of a regular file read whole, refusing more than max bytes. */
int sign_read_file(fl_ctx *ctx, const char *path, const struct sign_range *rg, size_t max,
                   unsigned char **ret_data, size_t *ret_len);

/* What scheme s signs for a file: the digest of the range (prehashed schemes),
 * the range itself when it already is that digest (is_digest), or the whole
 * message (Ed25519, MACs). Freed with sign_tbs_free. */
struct sign_tbs {
        unsigned char *data;
        size_t len;
        bool is_digest;
        uint64_t offset, length; /* the bytes of the file it stands for */
        unsigned char file_sha256[32]; /* SHA-256 of those bytes */
};
int sign_tbs_load(fl_ctx *ctx, enum sign_scheme s, const char *path, const struct sign_range *rg,
                  bool is_digest, struct sign_tbs *ret);
void sign_tbs_free(struct sign_tbs *t);

/* ---- encodings --------------------------------------------------------- */

/* ECDSA r‖s (each field_len bytes) <-> DER ECDSA-Sig-Value. The DER reader is
 * strict (re-encoding must give the same bytes). */
int sign_ecdsa_raw_to_der(fl_ctx *ctx, const unsigned char *raw, size_t raw_len, unsigned char **ret,
                          size_t *ret_len);
int sign_ecdsa_der_to_raw(fl_ctx *ctx, const unsigned char *der, size_t der_len, size_t field_len,
                          unsigned char **ret, size_t *ret_len);

/* The raw signature length scheme s gives with pkey (NULL for MACs). */
int sign_raw_len(fl_ctx *ctx, enum sign_scheme s, EVP_PKEY *pkey, size_t *ret);

/* Raw signature -> file bytes in format f (malloc'd). */
int sign_encode(fl_ctx *ctx, enum sign_scheme s, enum sign_format f, const unsigned char *raw,
                size_t raw_len, unsigned char **ret, size_t *ret_len);
/* File bytes -> raw signature, checking the length against raw_len (the
 * value of sign_raw_len). name is the file name for messages. -EINVAL for a
 * malformed or wrong-length signature. */
int sign_decode(fl_ctx *ctx, const char *name, enum sign_scheme s, enum sign_format f, size_t raw_len,
                const unsigned char *in, size_t in_len, unsigned char **ret_raw, size_t *ret_raw_len);

/* ---- verification (OpenSSL) -------------------------------------------- */

/* "sha256:" + hex SHA-256 of the DER SubjectPublicKeyInfo. */
#define SIGN_FPR_LEN (7 + 64 + 1)
int sign_pkey_fingerprint(fl_ctx *ctx, EVP_PKEY *pkey, char out[SIGN_FPR_LEN]);
/* The key type of a public key (KT_NONE if fuseline does not sign with it). */
enum key_type sign_pkey_type(EVP_PKEY *pkey);
/* A PEM public key or certificate. */
int sign_load_pubkey(fl_ctx *ctx, const char *path, EVP_PKEY **ret);

/* Verify a raw signature over tbs (the digest for prehashed schemes, the
 * message for Ed25519). RSA-PSS requires salt length = digest length.
 * -EBADMSG "signature does not match (key sha256:…)" on a bad signature. */
int sign_verify_pkey(fl_ctx *ctx, EVP_PKEY *pkey, enum sign_scheme s, const struct sign_tbs *tbs,
                     const unsigned char *raw, size_t raw_len);

/* ---- token signing ----------------------------------------------------- */

/* One token session, optionally with a keyset manifest; keys are looked up
 * once and cached, so a batch costs one login. */
typedef struct sign_session sign_session;

struct sign_key {
        char *name;          /* "role pkc0" or the URI given */
        char *role;          /* NULL for --key */
        enum key_type type;  /* of the object that signs */
        token_obj obj;       /* private key, AES key, or the HMAC twin */
        bool hmac_twin;      /* obj is the CKK_GENERIC_SECRET twin of an AES key */
        EVP_PKEY *pub;       /* asymmetric keys */
        char fpr[SIGN_FPR_LEN]; /* sha256:… of the public key, or "kcv:…" for secret keys */
};

/* keyset_path may be NULL (then keys are given as URIs). opts->uri NULL: the
 * keyset's token. login: needed for private and secret objects. */
int sign_session_open(fl_ctx *ctx, const char *keyset_path, const struct token_opts *opts, bool login,
                      sign_session **ret);
/* A session for --key URI without a keyset: the URI's token attributes pin
 * the token (opts->uri may only narrow them; a different token is -ENXIO
 * naming both) and its pin-source= is used unless opts->pin_source is set. */
int sign_session_open_key(fl_ctx *ctx, const char *key_uri, const struct token_opts *opts, bool login,
                          sign_session **ret);
void sign_session_close(sign_session *ss);
const char *sign_session_profile(const sign_session *ss); /* "lab", "production", NULL */

/* The key for a role (keyset) or a PKCS#11 URI, chosen for scheme s
 * (hmac-sha256 on a fuse-key role picks its hmac_uri twin). private_obj:
 * false finds the public object (verification needs no login). The result
 * stays owned by the session. */
int sign_session_key(sign_session *ss, const char *role, const char *uri, enum sign_scheme s,
                     bool private_obj, const struct sign_key **ret);

/* The production interlock, run before every signature: for a production
 * keyset the token serial must equal the manifest's, and asymmetric keys
 * must be CKA_EXTRACTABLE false and CKA_SENSITIVE true. -EPERM naming the
 * attribute. Lab keysets and bare URIs pass. */
int sign_session_interlock(sign_session *ss, const struct sign_key *k);

/* C_Sign with the scheme's mechanism over tbs. out: SIGN_RAW_MAX bytes. */
int sign_session_sign(sign_session *ss, const struct sign_key *k, enum sign_scheme s,
                      const struct sign_tbs *tbs, unsigned char *out, size_t *ret_len);

/* The same for any token object (lib/signer.c): C_Sign with the scheme's
 * mechanism over tbs (the digest for prehashed schemes), checking the
 * scheme suits type and the length of the result. mech_known skips asking
 * the token whether it has the mechanism. name names the key in messages. */
int sign_token_raw(fl_ctx *ctx, fl_token *tok, token_obj obj, enum key_type type, EVP_PKEY *pub, const char *name,
                   enum sign_scheme s, bool mech_known, const unsigned char *tbs, size_t tbs_len, unsigned char *out,
                   size_t *ret_len);

/* ---- whole operations (what the CLI calls) ------------------------------ */

struct sign_request {
        const char *in, *out;
        const char *role, *key_uri; /* exactly one */
        enum sign_scheme scheme;    /* SCHEME_NONE: from the key type */
        enum sign_format format;    /* SIGFMT_AUTO: raw */
        bool is_digest;
        struct sign_range range;
        /* Batch mode: when set, the signature goes to a temp file beside
         * out (recorded here) and reaches out only in sign_commit(). */
        struct sign_pending *pending;
};

/* A signature written but not yet in place. */
struct sign_pending {
        char *tmp, *out;
        char *err; /* set by sign_commit for an entry that failed */
};

struct sign_result {
        enum sign_scheme scheme;
        enum sign_format format;
        size_t sig_len;               /* bytes written */
        char key_fpr[SIGN_FPR_LEN];
        char tbs_sha256[65];          /* SHA-256 of what the token signed */
        char file_sha256[65];         /* SHA-256 of the input bytes signed (the range) */
        char digest[2 * SIGN_DIGEST_MAX + 1]; /* hex of the digest signed; "" for Ed25519/MACs */
        const char *digest_alg;       /* its algorithm ("SHA256", …), NULL without one */
        uint64_t offset, length;      /* the bytes of the input signed (--offset/--length resolved) */
};

/* Load the input, check key and scheme, interlock, sign in the token,
 * encode, write out atomically (nothing at out on failure). */
int sign_file(sign_session *ss, const struct sign_request *req, struct sign_result *ret);

struct verify_request {
        const char *in, *sig;
        const char *pubkey_path;    /* or a role/uri through a session */
        const char *role, *key_uri;
        enum sign_scheme scheme;
        enum sign_format format;
        bool is_digest;
        struct sign_range range;
};

/* ss may be NULL when pubkey_path is given. MACs are recomputed in the
 * token and compared in constant time. -EBADMSG on mismatch. */
int sign_verify_file(fl_ctx *ctx, sign_session *ss, const struct verify_request *req,
                     struct sign_result *ret);

/* Make pending signatures durable with one syncfs() per file system and
 * rename each into place, then fsync the directories: the same guarantee as
 * an fsync per file (nothing at out until its bytes are on disk) at the
 * cost of one flush per batch. ret_r[i] gets 0 or the error of entry i
 * (its message in p[i].err); entries with tmp == NULL are skipped. Returns
 * the first error. Temp files are gone afterwards in every case; call
 * sign_pending_clear() to free the names and messages. */
int sign_commit(fl_ctx *ctx, struct sign_pending *p, size_t n, int *ret_r);
/* Remove the temp files of uncommitted entries; free names and messages. */
void sign_pending_clear(struct sign_pending *p, size_t n);

/* ---- batch lists ------------------------------------------------------- */

struct sign_batch_entry {
        unsigned line;
        char *in, *out, *role; /* role NULL when the line has two fields */
};

/* "in out [role]" per line; blank lines and #-comments skipped; fields are
 * separated by blanks (paths cannot contain blanks). -EINVAL naming the line. */
int sign_batch_parse(fl_ctx *ctx, const char *name, const char *text, size_t len,
                     struct sign_batch_entry **ret, size_t *ret_n);
void sign_batch_free(struct sign_batch_entry *e, size_t n);

/* ---- public keys, the token's RNG and AES-GCM (the tegrasign hook) ------ */

enum {
        PUB_EXPORT_PEM = 1 << 0,   /* SubjectPublicKeyInfo, PEM */
        PUB_EXPORT_TEGRA = 1 << 1, /* tegra-format public key (tegrasign --pubkeyhash's first file) */
        PUB_EXPORT_HASH = 1 << 2,  /* the chip's PublicKeyHash, raw bytes */
        PUB_EXPORT_MONT = 1 << 3,  /* RSA-3072 Montgomery values (tegrasign --getmont) */
};

struct pub_export {
        enum key_type type;
        char fpr[SIGN_FPR_LEN];
        unsigned char *pem;
        size_t pem_len;
        unsigned char tegra[TEGRA_PUBKEY_MAX_LEN];
        size_t tegra_len;
        unsigned char hash[TEGRA_PKC_HASH_MAX];
        size_t hash_len;
        unsigned char mont[TEGRA_MONT_LEN];
        size_t mont_len;
};

/* The public key of a keyset role, from the token (pinned to the manifest's
 * public_key_sha256 and type, as for signing), in the forms `what` asks for
 * (PUB_EXPORT_*). -EINVAL naming the role for a secret key, or naming the
 * key for a form its type does not have (e.g. Montgomery values for P-256). */
int sign_export_pub(sign_session *ss, const char *role, unsigned what, struct pub_export *ret);
void pub_export_clear(struct pub_export *e);

/* Random bytes from the token's own RNG (C_GenerateRandom, no fallback). */
#define SIGN_RANDOM_MAX 65536
int sign_session_random(sign_session *ss, unsigned char *out, size_t len);

/* AES-GCM encryption inside the token (CKM_AES_GCM) with a fuse key's CKK_AES
 * object: what tegrasign's do_aes_gcm does with the SBK. Input read whole (up
 * to SIGN_ONESHOT_MAX); ciphertext to out, the 16-byte tag to tag_out, both
 * or neither. -ENOTSUP when the token lacks CKM_AES_GCM. */
#define SIGN_GCM_TAG_LEN 16
#define SIGN_GCM_IV_MAX 256
#define SIGN_GCM_AAD_MAX (1024 * 1024)
struct gcm_request {
        const char *role, *key_uri; /* exactly one */
        const char *in, *out, *tag_out;
        const unsigned char *iv, *aad;
        size_t iv_len, aad_len;
};
struct gcm_result {
        size_t bytes;
        char key_fpr[SIGN_FPR_LEN];
};
int sign_aes_gcm_file(sign_session *ss, const struct gcm_request *req, struct gcm_result *ret);
