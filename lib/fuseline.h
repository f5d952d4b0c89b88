/* fuseline.h — the opaque context, error reporting and the log callback of
 * libfuseline, the private static library behind the fuseline CLI (not
 * installed; see lib/meson.build). Everything else the library offers is
 * reached through the CLI; its internals live in lib/internal.h. */
#pragma once

#include <signal.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_ctx fl_ctx;

enum fl_log_level {
        FL_LOG_ERR = 0,
        FL_LOG_WARN = 1,
        FL_LOG_INFO = 2,
        FL_LOG_DEBUG = 3,
};

/* Receives every message the library emits. The text never contains a
 * secret (PIN, fuse key value). */
typedef void (*fl_log_fn)(int level, const char *msg, void *userdata);

/* 0 or a negative errno-style code. */
int fl_ctx_new(fl_ctx **ret);
void fl_ctx_free(fl_ctx *ctx);
void fl_ctx_set_log(fl_ctx *ctx, fl_log_fn fn, void *userdata);
void fl_ctx_set_log_level(fl_ctx *ctx, int level);

/* Cooperative interruption. The caller's SIGINT/SIGTERM handler stores the
 * signal number in *flag; the library polls it between steps it can undo
 * (each key of a keygen, each file of a batch, lock waits) and, once it is
 * non-zero, rolls the running operation back exactly as a failure would
 * (token objects destroyed, temporaries removed) and returns -ECANCELED.
 * NULL (the default) turns polling off. */
void fl_ctx_set_interrupt(fl_ctx *ctx, const volatile sig_atomic_t *flag);

/* The one-line message of the most recent error, or NULL. */
const char *fl_ctx_last_error(const fl_ctx *ctx);

/* Messages and hints. The library's messages describe the problem in the
 * domain's words ("role pkc0 needs a keyset to find it", "offset 9 is beyond
 * the end of the file") and never name a command-line flag: lib/ has no
 * command line. When the fix is to give a different or an additional
 * input, the error also carries a hint saying which input, and the front
 * end names its own way to give it (cmd/main.c appends "(use --keyset
 * FILE)" for FL_HINT_KEYSET, and so on; a table there maps every hint).
 * The hint belongs to the last error: a new error resets it, except an
 * error that wraps the previous message (quotes it whole), which keeps it.
 * tests/cli-layering.sh checks that no lib/ string literal names a
 * "--flag", apart from a short documented list of flags of the NVIDIA and
 * project tools lib/ runs or refers to (tegraflash.py --instance, …). */
enum fl_hint {
        FL_HINT_NONE = 0,
        FL_HINT_KEYSET,           /* a keyset manifest is needed */
        FL_HINT_KEYSET_EXISTING,  /* add to the existing keyset instead of creating it */
        FL_HINT_SIGN_KEY,         /* a signing key: a keyset role or a key URI */
        FL_HINT_SIGN_FILES,       /* the file to sign and where the signature goes */
        FL_HINT_VERIFY_FILES,     /* the signed file and its signature */
        FL_HINT_VERIFY_KEY,       /* a public key, a keyset role or a key URI */
        FL_HINT_VERIFY_TOKEN_KEY, /* a MAC: the token key (keyset role) */
        FL_HINT_DEVICE_KEY,       /* a device CSR, or a key generated in the token */
        FL_HINT_REISSUE,          /* replacing a device's current certificate */
        FL_HINT_TOKEN_LABEL,      /* another label for the token objects */
        FL_HINT_LAB,              /* a lab (rehearsal) keyset */
        FL_HINT_IMPORT_HEX,       /* import a fuse/EKB key as hex */
        FL_HINT_IMPORT_PEM,       /* import a PKC key as PEM */
        FL_HINT_IDENTITY_CA,      /* create or import the identity CA */
        FL_HINT_IDENTITY_CA_CERT, /* import the identity CA's certificate */
        FL_HINT_CSR_OUT,          /* create the key and a CSR first */
        FL_HINT_SUBJECT,          /* a subject name */
        FL_HINT_OUT_DIR,          /* an output directory */
        FL_HINT_NO_SBK,           /* a fuse plan without SecureBootKey */
        FL_HINT_OEM_KEYS,         /* a fuse plan with the OEM keys */
        FL_HINT_ACCEPT_BSI_11_13, /* acknowledge the unverified BootSecurityInfo bits 11/13 */
        FL_HINT_BSI_RESERVED,     /* the plan's BootSecurityInfo reserved bits */
        FL_HINT_TEST_PACKAGE,     /* make the TEST fuse package from a FUSE plan */
        FL_HINT_FUSE_XML_CHECK,   /* every problem of a fuse XML */
        FL_HINT_ALLOW_LAB_KEYS,   /* burning lab keys into a device */
        FL_HINT_UEFI_APPEND,      /* what a UEFI append adds */
        FL_HINT_EKB_KEY,          /* a keyset EKB key or a hex import */
        /* The input whose value is wrong (the CLI names the flag that gave it). */
        FL_HINT_SIGN_RANGE,       /* the byte range of the file to sign */
        FL_HINT_OEM_KEYS_ASKED,   /* the OEM keys in a fuse plan */
        FL_HINT_REVOCATION_ASKED, /* PKC revocation in a fuse plan */
        FL_HINT_FTPM_ASKED,       /* the fTPM bits in a fuse plan */
        FL_HINT_ODM_ASKED,        /* ODM reserved/id/lock fuses in a fuse plan */
        FL_HINT_DIGEST_ASKED,     /* signing a digest given instead of the message */
        FL_HINT_SCHEME_ASKED,     /* the signing scheme a caller named */
        FL_HINT_FORMAT_ASKED,     /* the signature format a caller named */
        FL_HINT_FTPM_KEYS,        /* the keyset roles an fTPM station needs */
        FL_HINT_FTPM_PLAN,        /* a product plan with the fTPM BootSecurityInfo bits */
};

/* The hint of the most recent error (FL_HINT_NONE without one). */
enum fl_hint fl_ctx_last_hint(const fl_ctx *ctx);

/* The library version string. */
const char *fl_version(void);

#ifdef __cplusplus
}
#endif
