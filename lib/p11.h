/* p11.h — the PKCS#11 token layer: module loading through p11-kit, token
 * selection by RFC 7512 URI, PIN sources, key generation and import, object
 * look-up, public keys as EVP_PKEY, attributes, signing. Nothing here ever
 * logs a PIN or a secret key value. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "internal.h"

typedef struct fl_token fl_token;

/* What the library asks its caller for when a token needs a PIN and none of
 * the sources it reads itself (a PIN file, the URI's pin-value) is given:
 * the library never reads the environment and never prompts. */
struct token_pin_request {
        const char *token_label;
        /* "env:VAR" when that is the PIN source asked for (--pin-source or
         * the URI's pin-source=); NULL: no source given, the caller's
         * defaults apply (the CLI: $FUSELINE_PIN_FILE, $FUSELINE_PIN, a
         * no-echo prompt on the controlling tty). */
        const char *pin_source;
        bool production; /* a PIN file must not be readable by others */
};
/* 0 and a malloc'd PIN (freed wiped by the library), or a negative code
 * with the message set (-EACCES: no PIN to be had). */
typedef int (*token_pin_fn)(fl_ctx *ctx, const struct token_pin_request *rq, void *userdata, char **ret_pin);

/* A PIN file (trailing newlines dropped; empty, unreadable, or readable by
 * group/others when production: -EACCES). For PIN callbacks. */
int token_pin_from_file(fl_ctx *ctx, const char *path, bool production, char **ret);
typedef unsigned long token_obj; /* a CK_OBJECT_HANDLE */

struct token_opts {
        /* "pkcs11:token=lab;..." — any RFC 7512 URI; object attributes are
         * ignored for token selection. module-path=/module-name= and
         * pin-source=/pin-value= query attributes are honoured (pin-value
         * only with a warning: it puts a secret in a command line). */
        const char *uri;
        /* Where uri came from, for messages ("--token", "$FUSELINE_TOKEN");
         * NULL: "the token URI". Given a keyset (or a key URI) that pins
         * the token, uri may only narrow it (lib/signer.c). */
        const char *uri_from;
        /* --module: a module path (contains '/') or a p11-kit registry name.
         * NULL: the URI's module attributes, else every module p11-kit knows. */
        const char *module;
        /* A module for when neither module nor the URI names one (the CLI:
         * $FUSELINE_MODULE). NULL: every module p11-kit knows. */
        const char *module_default;
        /* --pin-source: "file:PATH", "env:VAR" or a bare path. NULL: the URI's
         * pin-source, then its pin-value, then pin_cb. */
        const char *pin_source;
        /* Asked for a PIN the sources above do not give (and for env:
         * sources). NULL: such a PIN is an error. */
        token_pin_fn pin_cb;
        void *pin_data;
        bool login; /* log in as user (needed for private objects) */
        /* A PIN file readable by group or others is refused (not just
         * warned about): set for production keysets. */
        bool production;
        /* The station-wide token lock: an exclusive flock(2) on lock_path
         * held from C_Initialize to C_Finalize, so fuseline processes on
         * one station never use a file-backed token at the same time
         * (SoftHSM2 2.6.1 rewrites token.object on every C_Login: truncate,
         * unlock, write — a process that initialises in that gap loses the
         * token). AUTO: only for file-backed modules (SoftHSM2); ON: for
         * every module; OFF: never. lock_path NULL: TOKEN_LOCK_DEFAULT. */
        enum token_lock_mode { TOKEN_LOCK_AUTO = 0, TOKEN_LOCK_ON, TOKEN_LOCK_OFF } lock;
        const char *lock_path;
        /* Seconds to wait for the lock (0: TOKEN_LOCK_WAIT_DEFAULT). */
        unsigned lock_wait;
        /* The SoftHSM2 configuration in use (NULL: not known). When a
         * SoftHSM2 token is not visible, its token directory is checked for
         * an emptied token.object so the error can say how to repair it. */
        const char *softhsm_conf;
};

#define TOKEN_LOCK_DEFAULT "/run/lock/fuseline-token.lock"
#define TOKEN_LOCK_WAIT_DEFAULT 120
/* Attempts to find a token that is not visible (or answers CKR_GENERAL_ERROR
 * / CKR_USER_PIN_NOT_INITIALIZED while its files are rewritten) before
 * "token busy or not visible after N tries". */
#define TOKEN_OPEN_TRIES 5

struct token_info {
        char label[33];
        char manufacturer[33];
        char model[17];
        char serial[17];
};

enum key_type {
        KT_NONE = 0,
        KT_RSA2K,
        KT_RSA3K,
        KT_P256,
        KT_P384,
        KT_P521,
        KT_ED25519,
        KT_AES128,
        KT_AES256,
        KT_GENERIC128, /* CKK_GENERIC_SECRET twins of AES fuse keys (HMAC) */
        KT_GENERIC256,
};

const char *key_type_name(enum key_type t);            /* "rsa3k", "p256", "aes256", … */
enum key_type key_type_from_name(const char *name);    /* KT_NONE if unknown */
bool key_type_is_secret(enum key_type t);
size_t key_type_secret_len(enum key_type t);           /* 16/32, 0 for asymmetric */

int token_open(fl_ctx *ctx, const struct token_opts *opts, fl_token **ret);
void token_close(fl_token *tok); /* accepts NULL; logs out, finalizes */
const struct token_info *token_get_info(const fl_token *tok);
/* "pkcs11:model=…;manufacturer=…;serial=…;token=…" (malloc'd). */
char *token_uri(const fl_token *tok);
bool token_has_mechanism(fl_token *tok, unsigned long mech);

struct keygen_spec {
        const char *label;
        const unsigned char *id;
        size_t id_len;
        enum key_type type;
        /* Private/secret key CKA_EXTRACTABLE. Asymmetric keys: always false in
         * production use; CKA_SENSITIVE is true unless extractable is set. */
        bool extractable;
};

/* Generate a key pair (ret_pub may be NULL) or a secret key (ret_pub gets 0).
 * -EEXIST if an object with that label exists already. -ENOTSUP (with a
 * message naming the mechanism) if the module lacks the mechanism. */
int token_keygen(fl_token *tok, const struct keygen_spec *spec, token_obj *ret_priv, token_obj *ret_pub);

/* Import a private key (RSA or EC) as a non-extractable sensitive private
 * object plus its public object. */
int token_import_pkey(fl_token *tok, EVP_PKEY *pkey, const char *label, const unsigned char *id,
                      size_t id_len, token_obj *ret_priv, token_obj *ret_pub);

/* Import a secret key value (CKK_AES for KT_AES*, CKK_GENERIC_SECRET for
 * KT_GENERIC*). */
int token_import_secret(fl_token *tok, enum key_type type, const unsigned char *value, size_t len,
                        const char *label, const unsigned char *id, size_t id_len, bool extractable,
                        token_obj *ret);

/* Number of objects (any class) carrying this label. */
int token_count_label(fl_token *tok, const char *label, size_t *ret_count);

/* Find exactly one object matching the object part of a PKCS#11 URI
 * (object=, id=, type=). ckclass (CKO_*) overrides/sets type; pass
 * (unsigned long)-1 for "from the URI". -ENXIO if none, -EEXIST if several. */
int token_find_uri(fl_token *tok, const char *uri, unsigned long ckclass, token_obj *ret);
int token_find_label(fl_token *tok, const char *label, unsigned long ckclass, token_obj *ret);

/* The public key for a private or public object (for a private key, its
 * public twin with the same CKA_ID is used, else the private object's own
 * public attributes). */
int token_get_pubkey(fl_token *tok, token_obj obj, EVP_PKEY **ret);

int token_attr_bool(fl_token *tok, token_obj obj, unsigned long attr, bool *ret);
int token_attr_ulong(fl_token *tok, token_obj obj, unsigned long attr, unsigned long *ret);
/* Variable-length attribute (malloc'd). */
int token_attr_bytes(fl_token *tok, token_obj obj, unsigned long attr, unsigned char **ret, size_t *ret_len);

/* CKA_VALUE of an extractable secret key, into a wiped-on-free buffer. Only
 * the fuse-XML writer needs this: fuse keys must reach the XML as values. */
int token_read_secret(fl_token *tok, token_obj obj, struct fl_secret *ret);

/* Key check value of an AES key computed inside the token: the first 3 bytes
 * of AES-ECB(key, 16 zero bytes), as 6 hex digits (out: 7 bytes). */
int token_aes_kcv(fl_token *tok, token_obj obj, char out[7]);

/* One-shot C_SignInit/C_Sign. *out_len: capacity in, length out. */
int token_sign(fl_token *tok, token_obj key, unsigned long mech, const void *param, size_t param_len,
               const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len);

/* RFC 7512 URI for one object on this token (malloc'd): token attributes
 * plus object= label, id= (if id_len) and type= (unless ckclass is -1). */
char *token_object_uri(const fl_token *tok, const char *label, const unsigned char *id, size_t id_len,
                       unsigned long ckclass);

/* Destroy an object. Only used to undo objects created earlier in the same
 * failed run (keygen never deletes what it did not just make). */
int token_destroy(fl_token *tok, token_obj obj);

/* Random bytes from the token's RNG (OpenSSL's if it has none), for CKA_ID. */
int token_random_id(fl_token *tok, unsigned char *id, size_t len);

/* len bytes from the token's own RNG (C_GenerateRandom); an error, never
 * another source, if the token has none. */
int token_random(fl_token *tok, unsigned char *out, size_t len);

/* One-shot C_EncryptInit/C_Encrypt. *out_len: capacity in, length out. */
int token_encrypt(fl_token *tok, token_obj key, unsigned long mech, const void *param, size_t param_len,
                  const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len);
/* Scan a SoftHSM2 configuration's token directory for token directories
 * whose token.object is empty (what a process killed while SoftHSM2 rewrote
 * it leaves). Returns the number found (0..), the first one's token
 * directory in ret_dir (malloc'd, may be NULL), or a negative code when the
 * configuration cannot be read. */
/* The parser behind it: directories.tokendir of softhsm2.conf text
 * (malloc'd). -ENOENT if absent, -EINVAL if empty. */
int softhsm_conf_tokendir(const char *text, size_t len, char **ret);
int softhsm_find_empty_token(fl_ctx *ctx, const char *conf_path, char **ret_dir);

/* A URI as messages may show it: a pin-value= has its value replaced by
 * "(hidden)". Returns uri itself or buf. */
const char *token_uri_shown(const char *uri, char *buf, size_t cap);

/* The CKR_* name for a return value ("CKR_PIN_INCORRECT"). */
const char *ckr_name(unsigned long rv);

/* For mechanism helpers in other files (lib/p11_mech.c): the module's
 * CK_FUNCTION_LIST and the session, the CKR_* translation, the context. */
void *token_funcs(fl_token *tok, unsigned long *ret_session);
int token_ck_err(fl_token *tok, unsigned long rv, const char *what);
fl_ctx *token_ctx(fl_token *tok);
