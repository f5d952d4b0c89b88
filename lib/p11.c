/* p11.c — the PKCS#11 token layer, through p11-kit: module loading (path,
 * registry name, URI module attributes), token selection by RFC 7512 URI,
 * PIN sources and login, key generation/import, look-up, public keys as
 * EVP_PKEY, attributes and signing. CKR_* codes are translated here into the
 * library's errno convention, keeping the CKR name in the message. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "p11.h"

#define PIN_MAX 256

struct fl_token {
        fl_ctx *ctx;
        CK_FUNCTION_LIST **modules; /* registry list (NULL when one module was loaded) */
        CK_FUNCTION_LIST *single;   /* module loaded by path */
        CK_FUNCTION_LIST *m;        /* the module holding the token */
        CK_SLOT_ID slot;
        CK_SESSION_HANDLE session;
        bool logged_in;
        struct token_info info;
        char *module_desc;
        char *module_name;       /* registry name to pick after (re)initialising */
        bool initialized;        /* C_Initialize done, C_Finalize not yet */
        bool file_backed;        /* a module keeping its tokens in files (SoftHSM2) */
        bool locked;             /* holds a reference on the station token lock */
};

/* ---- names --------------------------------------------------------------- */

static const struct {
        CK_RV rv;
        const char *name;
} ckr_names[] = {
        { CKR_OK, "CKR_OK" },
        { CKR_CANCEL, "CKR_CANCEL" },
        { CKR_HOST_MEMORY, "CKR_HOST_MEMORY" },
        { CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID" },
        { CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR" },
        { CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED" },
        { CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD" },
        { CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY" },
        { CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE" },
        { CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID" },
        { CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID" },
        { CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED" },
        { CKR_DATA_INVALID, "CKR_DATA_INVALID" },
        { CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE" },
        { CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR" },
        { CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY" },
        { CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED" },
        { CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED" },
        { CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID" },
        { CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE" },
        { CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT" },
        { CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED" },
        { CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE" },
        { CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE" },
        { CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID" },
        { CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID" },
        { CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID" },
        { CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE" },
        { CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED" },
        { CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT" },
        { CKR_PIN_INVALID, "CKR_PIN_INVALID" },
        { CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE" },
        { CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED" },
        { CKR_PIN_LOCKED, "CKR_PIN_LOCKED" },
        { CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED" },
        { CKR_SESSION_COUNT, "CKR_SESSION_COUNT" },
        { CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID" },
        { CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY" },
        { CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID" },
        { CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE" },
        { CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE" },
        { CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT" },
        { CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT" },
        { CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED" },
        { CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED" },
        { CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN" },
        { CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN" },
        { CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED" },
        { CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID" },
        { CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL" },
        { CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED" },
        { CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED" },
};

const char *ckr_name(unsigned long rv)
{
        static _Thread_local char buf[32];

        for (size_t i = 0; i < FL_ARRAY_SIZE(ckr_names); i++)
                if (ckr_names[i].rv == rv)
                        return ckr_names[i].name;
        snprintf(buf, sizeof(buf), "CKR_0x%lx", rv);
        return buf;
}

/* The errno-style code for a CKR_* value (see internal.h). */
static int ckr_errno(CK_RV rv)
{
        switch (rv) {
        case CKR_OK:
                return 0;
        case CKR_PIN_INCORRECT:
        case CKR_PIN_INVALID:
        case CKR_PIN_LEN_RANGE:
        case CKR_PIN_EXPIRED:
        case CKR_PIN_LOCKED:
        case CKR_USER_NOT_LOGGED_IN:
        case CKR_USER_PIN_NOT_INITIALIZED:
                return -EACCES;
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_TOKEN_NOT_RECOGNIZED:
        case CKR_DEVICE_REMOVED:
        case CKR_SLOT_ID_INVALID:
        case CKR_OBJECT_HANDLE_INVALID:
        case CKR_KEY_HANDLE_INVALID:
                return -ENXIO;
        case CKR_MECHANISM_INVALID:
        case CKR_MECHANISM_PARAM_INVALID:
        case CKR_KEY_TYPE_INCONSISTENT:
        case CKR_FUNCTION_NOT_SUPPORTED:
                return -ENOTSUP;
        case CKR_SIGNATURE_INVALID:
        case CKR_SIGNATURE_LEN_RANGE:
                return -EBADMSG;
        case CKR_KEY_FUNCTION_NOT_PERMITTED:
        case CKR_ACTION_PROHIBITED:
                return -EPERM;
        case CKR_HOST_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

static int ck_err(fl_token *tok, CK_RV rv, const char *what)
{
        return fl_err(tok->ctx, ckr_errno(rv), "token '%s': %s failed: %s", tok->info.label, what,
                      ckr_name(rv));
}

/* ---- key types ------------------------------------------------------------ */

static const struct {
        enum key_type t;
        const char *name;
        size_t secret_len;
} key_types[] = {
        { KT_RSA2K, "rsa2k", 0 },     { KT_RSA3K, "rsa3k", 0 },       { KT_P256, "p256", 0 },
        { KT_P384, "p384", 0 },       { KT_P521, "p521", 0 },         { KT_ED25519, "ed25519", 0 },
        { KT_AES128, "aes128", 16 },  { KT_AES256, "aes256", 32 },    { KT_GENERIC128, "generic128", 16 },
        { KT_GENERIC256, "generic256", 32 },
};

const char *key_type_name(enum key_type t)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(key_types); i++)
                if (key_types[i].t == t)
                        return key_types[i].name;
        return "none";
}

enum key_type key_type_from_name(const char *name)
{
        if (!name)
                return KT_NONE;
        for (size_t i = 0; i < FL_ARRAY_SIZE(key_types); i++)
                if (!strcmp(key_types[i].name, name))
                        return key_types[i].t;
        return KT_NONE;
}

bool key_type_is_secret(enum key_type t)
{
        return key_type_secret_len(t) > 0;
}

size_t key_type_secret_len(enum key_type t)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(key_types); i++)
                if (key_types[i].t == t)
                        return key_types[i].secret_len;
        return 0;
}

/* DER OIDs for CKA_EC_PARAMS. */
static const unsigned char oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const unsigned char oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
/* Some modules encode the Edwards curve as a PrintableString. */
static const unsigned char str_ed25519[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9' };

static const struct {
        const unsigned char *der;
        size_t len;
        const char *group; /* OpenSSL group name */
        size_t field;      /* coordinate bytes */
} curves[] = {
        { oid_p256, sizeof(oid_p256), "P-256", 32 },
        { oid_p384, sizeof(oid_p384), "P-384", 48 },
        { oid_p521, sizeof(oid_p521), "P-521", 66 },
};

/* ---- PIN sources -------------------------------------------------------- */

/* A PIN file others can read has leaked the PIN already, or will: warn,
 * and refuse for a production keyset (the caller says which). */
static int pin_file_mode_check(fl_ctx *ctx, const char *path, bool production)
{
        struct stat st;

        if (stat(path, &st) < 0 || !(st.st_mode & (S_IRGRP | S_IROTH)))
                return 0;
        if (production)
                return fl_err(ctx, -EACCES,
                              "PIN file %s is readable by %s (mode %04o): a production keyset refuses it; "
                              "chmod 600 it", path, st.st_mode & S_IROTH ? "others" : "its group",
                              (unsigned)(st.st_mode & 07777));
        fl_log(ctx, FL_LOG_WARN, "PIN file %s is readable by %s (mode %04o): chmod 600 it", path,
               st.st_mode & S_IROTH ? "others" : "its group", (unsigned)(st.st_mode & 07777));
        return 0;
}

static int pin_from_file(fl_ctx *ctx, const char *path, bool production, char **ret)
{
        struct fl_secret s = { 0 };
        char *pin;
        size_t n;
        int r;

        r = pin_file_mode_check(ctx, path, production);
        if (r < 0)
                return r;
        r = file_read_secret(ctx, path, PIN_MAX, &s);
        if (r < 0)
                return fl_err(ctx, -EACCES, "PIN file %s: %s", path, fl_ctx_last_error(ctx));
        n = s.len;
        while (n && (s.data[n - 1] == '\n' || s.data[n - 1] == '\r'))
                n--;
        if (n == 0) {
                secret_wipe(&s);
                return fl_err(ctx, -EACCES, "PIN file %s is empty", path);
        }
        pin = malloc(n + 1);
        if (!pin) {
                secret_wipe(&s);
                return -ENOMEM;
        }
        memcpy(pin, s.data, n);
        pin[n] = 0;
        secret_wipe(&s);
        *ret = pin;
        return 0;
}

int token_pin_from_file(fl_ctx *ctx, const char *path, bool production, char **ret)
{
        return pin_from_file(ctx, path, production, ret);
}

/* The caller's PIN callback (the CLI's prompt, its environment), for
 * everything but a PIN file: the library reads no environment and talks to
 * no terminal. */
static int pin_ask(fl_token *tok, const struct token_opts *opts, const char *env_source, char **ret)
{
        struct token_pin_request rq = { .token_label = tok->info.label, .pin_source = env_source,
                                        .production = opts->production };

        if (!opts->pin_cb)
                return fl_err(tok->ctx, -EACCES, env_source ? "the PIN source %s cannot be read here (no PIN callback)"
                                                            : "token '%s' needs a PIN and no PIN source was given",
                              env_source ? env_source : tok->info.label);
        return opts->pin_cb(tok->ctx, &rq, opts->pin_data, ret);
}

/* "file:PATH", "env:VAR", or a bare path with a '/' in it (what p11-kit's
 * pin-source= usually holds). Anything else may be a PIN typed in the wrong
 * place (--pin-source 1234): it is refused without ever being repeated in a
 * message, since messages reach stderr, JSON and the MES's logs. env: is the
 * caller's to read (pin_ask). */
static int pin_from_source(fl_token *tok, const struct token_opts *opts, const char *src, char **ret)
{
        if (!strncmp(src, "env:", 4))
                return pin_ask(tok, opts, src, ret);
        if (!strncmp(src, "file:", 5))
                return pin_from_file(tok->ctx, src + 5, opts->production, ret);
        if (strchr(src, '/') && access(src, F_OK) == 0)
                return pin_from_file(tok->ctx, src, opts->production, ret);
        return fl_err(tok->ctx, -EINVAL,
                      "the PIN source is neither file:PATH nor env:VAR (its value is not shown: it may be a PIN)");
}

/* PIN precedence: opts->pin_source, URI pin-source, URI pin-value, then the
 * caller's callback (the CLI: $FUSELINE_PIN_FILE, $FUSELINE_PIN, a tty
 * prompt). */
static int pin_get(fl_token *tok, const struct token_opts *opts, P11KitUri *uri, char **ret)
{
        const char *s;

        if (opts->pin_source)
                return pin_from_source(tok, opts, opts->pin_source, ret);
        if (uri && (s = p11_kit_uri_get_pin_source(uri)))
                return pin_from_source(tok, opts, s, ret);
        if (uri && (s = p11_kit_uri_get_pin_value(uri))) {
                fl_log(tok->ctx, FL_LOG_WARN,
                       "the token URI carries pin-value: a PIN in a URI ends up in shell history and "
                       "process lists; give a PIN file instead");
                *ret = strdup(s);
                return *ret ? 0 : -ENOMEM;
        }
        return pin_ask(tok, opts, NULL, ret);
}

/* ---- the station token lock ------------------------------------------------ */

/* One lock per process: nested or concurrent token_open calls in one process
 * (threads, a signer inside a keygen) share it instead of deadlocking on
 * their own flock. */
static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;
static int lock_fd = -1;
static unsigned lock_refs;

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A delay in [base/2, 3*base/2): processes that back off together do not
 * wake up together. */
static unsigned jitter_ms(unsigned base)
{
        unsigned char b[2] = { 0, 0 };

        if (RAND_bytes(b, sizeof(b)) != 1)
                b[0] = (unsigned char)getpid();
        return base / 2 + (unsigned)((b[0] << 8 | b[1]) % (base ? base : 1));
}

static int lock_take(fl_token *tok, const struct token_opts *opts)
{
        const char *path = opts->lock_path && *opts->lock_path ? opts->lock_path : TOKEN_LOCK_DEFAULT;
        unsigned wait_s = opts->lock_wait ? opts->lock_wait : TOKEN_LOCK_WAIT_DEFAULT;
        struct timespec start, now;
        bool told = false;
        int fd, r;

        if (opts->lock == TOKEN_LOCK_OFF || (opts->lock == TOKEN_LOCK_AUTO && !tok->file_backed))
                return 0;
        pthread_mutex_lock(&lock_mu);
        if (lock_refs) {
                lock_refs++;
                pthread_mutex_unlock(&lock_mu);
                tok->locked = true;
                return 0;
        }
        /* Read-only is enough for flock, so any station user may share a
         * lock file another one created. */
        fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && opts->lock == TOKEN_LOCK_AUTO && strcmp(path, TOKEN_LOCK_DEFAULT)) {
                /* The default beside the token's configuration may sit in a
                 * directory this user cannot write (/etc/softhsm). */
                path = TOKEN_LOCK_DEFAULT;
                fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        }
        if (fd < 0) {
                r = -errno;
                pthread_mutex_unlock(&lock_mu);
                if (opts->lock == TOKEN_LOCK_ON)
                        return fl_err(tok->ctx, -EINVAL, "token lock %s: cannot open: %s", path, strerror(-r));
                /* Not asked for explicitly: work as before the lock existed,
                 * but say so — parallel runs may lose the token for a moment. */
                fl_log(tok->ctx, FL_LOG_WARN, "token lock %s: cannot open (%s): using the token without the "
                       "station lock", path, strerror(-r));
                return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        break;
                if (errno != EWOULDBLOCK && errno != EINTR) {
                        r = -errno;
                        close(fd);
                        pthread_mutex_unlock(&lock_mu);
                        return fl_err(tok->ctx, -EIO, "token lock %s: %s", path, strerror(-r));
                }
                r = fl_interrupted(tok->ctx);
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (r == 0 && now.tv_sec - start.tv_sec >= (time_t)wait_s)
                        r = fl_err(tok->ctx, -ENXIO,
                                   "token busy: another process has held the token lock %s for %u s", path, wait_s);
                if (r < 0) {
                        close(fd);
                        pthread_mutex_unlock(&lock_mu);
                        return r;
                }
                if (!told)
                        fl_log(tok->ctx, FL_LOG_INFO, "waiting for the token lock %s", path);
                told = true;
                sleep_ms(jitter_ms(20));
        }
        lock_fd = fd;
        lock_refs = 1;
        pthread_mutex_unlock(&lock_mu);
        tok->locked = true;
        return 0;
}

static void lock_drop(fl_token *tok)
{
        if (!tok->locked)
                return;
        tok->locked = false;
        pthread_mutex_lock(&lock_mu);
        if (lock_refs && --lock_refs == 0) {
                close(lock_fd); /* releases the flock */
                lock_fd = -1;
        }
        pthread_mutex_unlock(&lock_mu);
}

/* Modules that keep tokens in files another process may be rewriting. The
 * only one known here is SoftHSM2; a path or name naming it counts. */
static bool module_file_backed(CK_FUNCTION_LIST *m, const char *hint)
{
        char *fn = m ? p11_kit_module_get_filename(m) : NULL;
        bool yes = (fn && strstr(fn, "softhsm")) || (hint && strstr(hint, "softhsm"));

        free(fn);
        return yes;
}

/* ---- opening ---------------------------------------------------------------- */

/* A URI as error messages may show it: a pin-value= query attribute (RFC
 * 7512 lets a URI carry the PIN) has its value replaced, because messages
 * go to stderr, JSON and the MES's logs. */
static const char *uri_shown(const char *uri, char *buf, size_t cap)
{
        const char *p = uri ? strstr(uri, "pin-value=") : NULL;
        const char *rest;

        if (!p)
                return uri ? uri : "";
        p += strlen("pin-value=");
        rest = p + strcspn(p, "&;");
        snprintf(buf, cap, "%.*s(hidden)%s", (int)(p - uri), uri, rest);
        /* A second pin-value= (odd, but parseable): hide it too. */
        if (strstr(rest, "pin-value="))
                snprintf(buf, cap, "%.*s(hidden)", (int)(p - uri), uri);
        return buf;
}

const char *token_uri_shown(const char *uri, char *buf, size_t cap)
{
        return uri_shown(uri, buf, cap);
}

static void copy_padded(char *dst, size_t dstlen, const unsigned char *src, size_t srclen)
{
        size_t n = srclen;

        while (n && (src[n - 1] == ' ' || src[n - 1] == 0))
                n--;
        if (n >= dstlen)
                n = dstlen - 1;
        memcpy(dst, src, n);
        dst[n] = 0;
}

/* Load (not yet initialise) the module(s): the lock has to be taken before
 * C_Initialize, and whether to take it depends on which module it is. */
static int load_modules(fl_token *tok, const struct token_opts *opts, P11KitUri *uri)
{
        const char *mod = opts->module;
        const char *uri_path = uri ? p11_kit_uri_get_module_path(uri) : NULL;
        const char *uri_name = uri ? p11_kit_uri_get_module_name(uri) : NULL;

        if (!mod && uri_path)
                mod = uri_path;
        if (!mod && !uri_name)
                mod = opts->module_default;
        if (mod && *mod && strchr(mod, '/')) {
                tok->single = p11_kit_module_load(mod, 0);
                if (!tok->single)
                        return fl_err(tok->ctx, -ENXIO, "PKCS#11 module %s: cannot load: %s", mod,
                                      p11_kit_message() ? p11_kit_message() : "unknown error");
                tok->module_desc = strdup(mod);
                tok->file_backed = module_file_backed(tok->single, mod);
                return tok->module_desc ? 0 : -ENOMEM;
        }
        if (!mod || !*mod)
                mod = uri_name;
        tok->modules = p11_kit_modules_load(NULL, 0);
        if (!tok->modules)
                return fl_err(tok->ctx, -ENXIO, "no PKCS#11 modules could be loaded through p11-kit: %s",
                              p11_kit_message() ? p11_kit_message() : "none registered");
        if (mod && *mod) {
                CK_FUNCTION_LIST *one = p11_kit_module_for_name(tok->modules, mod);
                if (!one)
                        return fl_err(tok->ctx, -ENXIO, "no p11-kit module named '%s' (see p11-kit list-modules)",
                                      mod);
                tok->module_desc = strdup(mod);
                tok->module_name = strdup(mod);
                if (!tok->module_desc || !tok->module_name)
                        return -ENOMEM;
                tok->file_backed = module_file_backed(one, mod);
                return 0;
        }
        for (size_t i = 0; tok->modules[i]; i++)
                tok->file_backed |= module_file_backed(tok->modules[i], NULL);
        return 0;
}

static int modules_init(fl_token *tok)
{
        CK_RV rv;

        if (tok->modules) {
                /* A module that fails C_Initialize is dropped from the list
                 * (and released), as p11_kit_modules_load_and_initialize does. */
                (void)p11_kit_modules_initialize(tok->modules, (p11_kit_destroyer)p11_kit_module_release);
                tok->initialized = true;
                if (tok->module_name) {
                        tok->single = p11_kit_module_for_name(tok->modules, tok->module_name);
                        if (!tok->single)
                                return fl_err(tok->ctx, -ENXIO, "PKCS#11 module '%s': C_Initialize failed",
                                              tok->module_name);
                }
                return 0;
        }
        rv = p11_kit_module_initialize(tok->single);
        if (rv != CKR_OK)
                return fl_err(tok->ctx, -ENXIO, "PKCS#11 module %s: C_Initialize failed: %s", tok->module_desc,
                              ckr_name(rv));
        tok->initialized = true;
        return 0;
}

static void modules_finalize(fl_token *tok)
{
        if (tok->m && tok->session != CK_INVALID_HANDLE) {
                if (tok->logged_in)
                        tok->m->C_Logout(tok->session);
                tok->m->C_CloseSession(tok->session);
        }
        tok->session = CK_INVALID_HANDLE;
        tok->logged_in = false;
        tok->m = NULL;
        if (!tok->initialized)
                return;
        if (tok->modules)
                p11_kit_modules_finalize(tok->modules);
        else if (tok->single)
                p11_kit_module_finalize(tok->single);
        tok->initialized = false;
}

/* The CKR codes a SoftHSM2 token gives while another process is rewriting
 * its files (an empty or half-written token.object), and that a bounded
 * retry therefore may cure. */
static bool ckr_transient(CK_RV rv)
{
        return rv == CKR_GENERAL_ERROR || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED ||
               rv == CKR_DEVICE_REMOVED || rv == CKR_SLOT_ID_INVALID || rv == CKR_DEVICE_ERROR;
}

/* -EAGAIN (the message set) when no token matches: it may be invisible for a
 * moment. */
static int find_token(fl_token *tok, P11KitUri *uri, const char *uristr)
{
        CK_FUNCTION_LIST *one[2] = { tok->single, NULL };
        CK_FUNCTION_LIST **mods = tok->single ? one : tok->modules;
        size_t matches = 0;
        char shown[FL_ERRMSG_MAX];

        for (size_t i = 0; mods[i]; i++) {
                CK_SLOT_ID slots[64];
                CK_ULONG n = FL_ARRAY_SIZE(slots);
                CK_INFO minfo;

                if (mods[i]->C_GetInfo(&minfo) == CKR_OK && !p11_kit_uri_match_module_info(uri, &minfo))
                        continue;
                if (mods[i]->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
                        continue;
                for (CK_ULONG j = 0; j < n; j++) {
                        CK_TOKEN_INFO ti;
                        if (mods[i]->C_GetTokenInfo(slots[j], &ti) != CKR_OK)
                                continue;
                        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
                                continue;
                        if (!p11_kit_uri_match_token_info(uri, &ti))
                                continue;
                        matches++;
                        if (matches == 1) {
                                tok->m = mods[i];
                                tok->slot = slots[j];
                                copy_padded(tok->info.label, sizeof(tok->info.label), ti.label, sizeof(ti.label));
                                copy_padded(tok->info.manufacturer, sizeof(tok->info.manufacturer),
                                            ti.manufacturerID, sizeof(ti.manufacturerID));
                                copy_padded(tok->info.model, sizeof(tok->info.model), ti.model, sizeof(ti.model));
                                copy_padded(tok->info.serial, sizeof(tok->info.serial), ti.serialNumber,
                                            sizeof(ti.serialNumber));
                        }
                }
        }
        if (matches == 0) {
                fl_err(tok->ctx, -ENXIO, "no token matches %s%s%s", uri_shown(uristr, shown, sizeof(shown)),
                       tok->module_desc ? " in module " : "", tok->module_desc ? tok->module_desc : "");
                return -EAGAIN;
        }
        if (matches > 1)
                return fl_err(tok->ctx, -ENXIO, "%zu tokens match %s: add serial=… to the URI", matches,
                              uri_shown(uristr, shown, sizeof(shown)));
        return 0;
}

/* What a login refusal means. CKR_GENERAL_ERROR and
 * CKR_USER_PIN_NOT_INITIALIZED are not wrong PINs: SoftHSM2 answers them
 * while another process has its token.object half written, and a token
 * whose user PIN was never set (C_InitPIN) answers the second for good. */
static int login_err(fl_token *tok, CK_RV rv)
{
        const char *what = tok->info.label;

        switch (rv) {
        case CKR_USER_PIN_NOT_INITIALIZED:
                return fl_err(tok->ctx, -ENXIO,
                              "token '%s': login failed: CKR_USER_PIN_NOT_INITIALIZED: the token has no user PIN "
                              "(initialised without C_InitPIN, or its files were being rewritten); not a wrong PIN",
                              what);
        case CKR_GENERAL_ERROR:
                return fl_err(tok->ctx, -ENXIO,
                              "token '%s': login failed: CKR_GENERAL_ERROR: the module failed internally (for "
                              "SoftHSM2: its token files could not be read); not a wrong PIN", what);
        case CKR_PIN_INCORRECT:
        case CKR_PIN_LOCKED:
        case CKR_PIN_LEN_RANGE:
        case CKR_PIN_INVALID:
        case CKR_PIN_EXPIRED:
                return fl_err(tok->ctx, -EACCES, "token '%s': login failed: %s", what, ckr_name(rv));
        default:
                return fl_err(tok->ctx, ckr_errno(rv) == -EIO ? -EACCES : ckr_errno(rv),
                              "token '%s': login failed: %s", what, ckr_name(rv));
        }
}

/* One attempt on initialised modules: find, open a session, log in. The PIN
 * is asked for once (*pin keeps it across attempts). -EAGAIN: a condition a
 * busy file-backed token shows for a moment (message set). */
static int token_attempt(fl_token *tok, const struct token_opts *opts, P11KitUri *uri, char **pin)
{
        CK_TOKEN_INFO ti;
        CK_RV rv;
        int r;

        r = find_token(tok, uri, opts->uri);
        if (r < 0)
                return r;
        rv = tok->m->C_OpenSession(tok->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &tok->session);
        if (rv != CKR_OK) {
                tok->session = CK_INVALID_HANDLE;
                r = ck_err(tok, rv, "C_OpenSession");
                return ckr_transient(rv) ? -EAGAIN : r;
        }
        if (!opts->login)
                return 0;
        rv = tok->m->C_GetTokenInfo(tok->slot, &ti);
        if (rv != CKR_OK) {
                r = ck_err(tok, rv, "C_GetTokenInfo");
                return ckr_transient(rv) ? -EAGAIN : r;
        }
        if (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
                rv = tok->m->C_Login(tok->session, CKU_USER, NULL, 0);
        } else {
                if (!*pin) {
                        r = pin_get(tok, opts, uri, pin);
                        if (r < 0)
                                return r;
                }
                rv = tok->m->C_Login(tok->session, CKU_USER, (CK_UTF8CHAR *)*pin, strlen(*pin));
        }
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
                r = login_err(tok, rv);
                return rv == CKR_GENERAL_ERROR || rv == CKR_USER_PIN_NOT_INITIALIZED ? -EAGAIN : r;
        }
        tok->logged_in = true;
        return 0;
}

/* Why a SoftHSM2 token is not visible, when it is the classic case: a
 * process died while SoftHSM2 rewrote token.object, leaving it empty. */
static void explain_invisible(fl_token *tok, const struct token_opts *opts)
{
        char msg[FL_ERRMSG_MAX], *dir = NULL, *conf = NULL;
        int n;

        if (!tok->file_backed || !opts->softhsm_conf)
                return;
        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(tok->ctx) ? fl_ctx_last_error(tok->ctx) : "");
        n = softhsm_find_empty_token(tok->ctx, opts->softhsm_conf, &dir);
        if (n > 0 && (conf = strdup(opts->softhsm_conf)))
                fl_err(tok->ctx, -ENXIO,
                       "%s; the lab token's token.object is empty (%s/token.object: a process was killed while "
                       "SoftHSM2 rewrote it): restore it with hsm/lab-token.sh --repair %s",
                       msg, dir ? dir : "?", dirname(conf));
        else
                fl_err(tok->ctx, -ENXIO, "%s", msg);
        free(conf);
        free(dir);
}

int token_open(fl_ctx *ctx, const struct token_opts *opts, fl_token **ret)
{
        P11KitUri *uri = NULL;
        fl_token *tok;
        char *pin = NULL;
        bool retried = false, found = false;
        int r;

        if (!opts->uri || !*opts->uri)
                return fl_err(ctx, -EINVAL, "no token given (a PKCS#11 URI such as pkcs11:token=LABEL)");
        tok = calloc(1, sizeof(*tok));
        if (!tok)
                return -ENOMEM;
        tok->ctx = ctx;
        tok->session = CK_INVALID_HANDLE;

        uri = p11_kit_uri_new();
        if (!uri) {
                r = -ENOMEM;
                goto fail;
        }
        if (p11_kit_uri_parse(opts->uri, P11_KIT_URI_FOR_ANY, uri) != P11_KIT_URI_OK) {
                char shown[FL_ERRMSG_MAX];
                r = fl_err(ctx, -EINVAL, "token URI '%s' is not a valid PKCS#11 URI (RFC 7512)",
                           uri_shown(opts->uri, shown, sizeof(shown)));
                goto fail;
        }
        r = load_modules(tok, opts, uri);
        if (r < 0)
                goto fail;
        /* Held from C_Initialize to C_Finalize (token_close). */
        r = lock_take(tok, opts);
        if (r < 0)
                goto fail;
        for (unsigned attempt = 1;; attempt++) {
                r = modules_init(tok);
                if (r < 0)
                        goto fail;
                r = token_attempt(tok, opts, uri, &pin);
                if (r != -EAGAIN)
                        break;
                found = tok->m != NULL; /* visible, but it failed later */
                modules_finalize(tok);
                if (attempt == TOKEN_OPEN_TRIES) {
                        char msg[FL_ERRMSG_MAX];
                        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "");
                        r = fl_err(ctx, -ENXIO, "%s after %u tries: %s",
                                   found ? "token busy" : "token busy or not visible", attempt, msg);
                        explain_invisible(tok, opts);
                        goto fail;
                }
                r = fl_interrupted(ctx);
                if (r < 0)
                        goto fail;
                fl_log(ctx, FL_LOG_DEBUG, "token not ready (try %u of %u): %s", attempt, TOKEN_OPEN_TRIES,
                       fl_ctx_last_error(ctx));
                retried = true;
                sleep_ms(jitter_ms(40u << (attempt - 1)));
        }
        secret_free_str(pin);
        pin = NULL;
        if (r < 0)
                goto fail;
        if (retried)
                fl_err_clear(ctx); /* the failed tries' message is history */
        p11_kit_uri_free(uri);
        fl_log(ctx, FL_LOG_INFO, "token '%s' (serial %s, %s)", tok->info.label, tok->info.serial, tok->info.model);
        *ret = tok;
        return 0;
fail:
        secret_free_str(pin);
        if (uri)
                p11_kit_uri_free(uri);
        token_close(tok);
        return r;
}

void token_close(fl_token *tok)
{
        if (!tok)
                return;
        modules_finalize(tok);
        if (tok->modules)
                p11_kit_modules_release(tok->modules);
        else if (tok->single)
                p11_kit_module_release(tok->single);
        lock_drop(tok);
        free(tok->module_desc);
        free(tok->module_name);
        free(tok);
}

/* ---- SoftHSM2 token files --------------------------------------------------- */

/* directories.tokendir from softhsm2.conf text: "key = value" lines, '#'
 * comments, blanks around both. -ENOENT when the key is absent. */
int softhsm_conf_tokendir(const char *text, size_t len, char **ret)
{
        const char *p = text, *end = text + len;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *le = eol ? eol : end, *k, *ke, *v, *ve;

                k = p;
                p = eol ? eol + 1 : end;
                while (k < le && (*k == ' ' || *k == '\t'))
                        k++;
                if (k == le || *k == '#')
                        continue;
                ke = memchr(k, '=', (size_t)(le - k));
                if (!ke)
                        continue;
                v = ke + 1;
                while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                        ke--;
                if ((size_t)(ke - k) != strlen("directories.tokendir") ||
                    memcmp(k, "directories.tokendir", (size_t)(ke - k)))
                        continue;
                while (v < le && (*v == ' ' || *v == '\t'))
                        v++;
                ve = le;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                        ve--;
                if (ve == v || memchr(v, 0, (size_t)(ve - v)))
                        return -EINVAL;
                *ret = strndup(v, (size_t)(ve - v));
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

int softhsm_find_empty_token(fl_ctx *ctx, const char *conf_path, char **ret_dir)
{
        unsigned char *text = NULL;
        char *tokendir = NULL, *first = NULL;
        size_t len = 0;
        struct dirent *de;
        DIR *d = NULL;
        int r, n = 0;

        r = file_read(ctx, conf_path, 64 * 1024, &text, &len);
        if (r < 0)
                return r;
        r = softhsm_conf_tokendir((const char *)text, len, &tokendir);
        free(text);
        if (r < 0)
                return r;
        d = opendir(tokendir);
        if (!d) {
                free(tokendir);
                return -errno;
        }
        while ((de = readdir(d))) {
                char *path = NULL;
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&path, "%s/%s/token.object", tokendir, de->d_name) < 0)
                        break;
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
                        if (!n++ && asprintf(&first, "%s/%s", tokendir, de->d_name) < 0)
                                first = NULL;
                }
                free(path);
        }
        closedir(d);
        free(tokendir);
        if (ret_dir)
                *ret_dir = first;
        else
                free(first);
        return n;
}

const struct token_info *token_get_info(const fl_token *tok)
{
        return &tok->info;
}

static void set_padded(unsigned char *dst, size_t len, const char *src)
{
        size_t n = strlen(src);
        memset(dst, ' ', len);
        memcpy(dst, src, n > len ? len : n);
}

/* A URI naming this token (label, manufacturer, model, serial). */
static P11KitUri *uri_new_for_token(const fl_token *tok)
{
        P11KitUri *uri = p11_kit_uri_new();
        CK_TOKEN_INFO *ti;

        if (!uri)
                return NULL;
        ti = p11_kit_uri_get_token_info(uri);
        set_padded(ti->label, sizeof(ti->label), tok->info.label);
        set_padded(ti->manufacturerID, sizeof(ti->manufacturerID), tok->info.manufacturer);
        set_padded(ti->model, sizeof(ti->model), tok->info.model);
        set_padded(ti->serialNumber, sizeof(ti->serialNumber), tok->info.serial);
        return uri;
}

char *token_uri(const fl_token *tok)
{
        P11KitUri *uri = uri_new_for_token(tok);
        char *s = NULL;

        if (!uri)
                return NULL;
        if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_TOKEN, &s) != P11_KIT_URI_OK)
                s = NULL;
        p11_kit_uri_free(uri);
        return s;
}

char *token_object_uri(const fl_token *tok, const char *label, const unsigned char *id, size_t id_len,
                       unsigned long ckclass)
{
        P11KitUri *uri = uri_new_for_token(tok);
        CK_OBJECT_CLASS cls = ckclass;
        CK_ATTRIBUTE a;
        char *s = NULL;

        if (!uri)
                return NULL;
        a = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
        p11_kit_uri_set_attribute(uri, &a);
        if (id && id_len) {
                a = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
                p11_kit_uri_set_attribute(uri, &a);
        }
        if (ckclass != (unsigned long)-1) {
                a = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
                p11_kit_uri_set_attribute(uri, &a);
        }
        if (p11_kit_uri_format(uri, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &s) != P11_KIT_URI_OK)
                s = NULL;
        p11_kit_uri_free(uri);
        return s;
}

bool token_has_mechanism(fl_token *tok, unsigned long mech)
{
        CK_MECHANISM_INFO mi;

        return tok->m->C_GetMechanismInfo(tok->slot, mech, &mi) == CKR_OK;
}

/* ---- finding ------------------------------------------------------------ */

static int find_objects(fl_token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out, CK_ULONG cap,
                        CK_ULONG *ret_count)
{
        CK_RV rv;
        CK_ULONG got = 0;

        rv = tok->m->C_FindObjectsInit(tok->session, tmpl, n);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_FindObjectsInit");
        rv = tok->m->C_FindObjects(tok->session, out, cap, &got);
        tok->m->C_FindObjectsFinal(tok->session);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_FindObjects");
        *ret_count = got;
        return 0;
}

int token_count_label(fl_token *tok, const char *label, size_t *ret_count)
{
        CK_ATTRIBUTE t[] = { { CKA_LABEL, (void *)label, strlen(label) } };
        CK_OBJECT_HANDLE h[16];
        CK_ULONG n;
        int r = find_objects(tok, t, 1, h, FL_ARRAY_SIZE(h), &n);

        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}

static int find_one(fl_token *tok, CK_ATTRIBUTE *t, CK_ULONG n, const char *what, token_obj *ret)
{
        CK_OBJECT_HANDLE h[2];
        CK_ULONG got;
        int r = find_objects(tok, t, n, h, 2, &got);

        if (r < 0)
                return r;
        if (got == 0)
                return fl_err(tok->ctx, -ENXIO, "token '%s': no object matches %s", tok->info.label, what);
        if (got > 1)
                return fl_err(tok->ctx, -EEXIST, "token '%s': more than one object matches %s", tok->info.label,
                              what);
        *ret = h[0];
        return 0;
}

int token_find_uri(fl_token *tok, const char *uristr, unsigned long ckclass, token_obj *ret)
{
        P11KitUri *uri = p11_kit_uri_new();
        CK_ATTRIBUTE *attrs, t[8];
        CK_ULONG n = 0, na = 0;
        CK_OBJECT_CLASS cls = ckclass;
        char shown[FL_ERRMSG_MAX];
        const char *show = uri_shown(uristr, shown, sizeof(shown));
        int r;

        if (!uri)
                return -ENOMEM;
        if (p11_kit_uri_parse(uristr, P11_KIT_URI_FOR_OBJECT, uri) != P11_KIT_URI_OK) {
                p11_kit_uri_free(uri);
                return fl_err(tok->ctx, -EINVAL, "object URI '%s' is not a valid PKCS#11 URI", show);
        }
        attrs = p11_kit_uri_get_attributes(uri, &na);
        for (CK_ULONG i = 0; i < na && n < FL_ARRAY_SIZE(t) - 1; i++) {
                if (attrs[i].type == CKA_CLASS && ckclass != (unsigned long)-1)
                        continue;
                t[n++] = attrs[i];
        }
        if (ckclass != (unsigned long)-1)
                t[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
        if (n == 0) {
                p11_kit_uri_free(uri);
                return fl_err(tok->ctx, -EINVAL, "object URI '%s' names no object (object=, id= or type=)", show);
        }
        r = find_one(tok, t, n, show, ret);
        p11_kit_uri_free(uri);
        return r;
}

int token_find_label(fl_token *tok, const char *label, unsigned long ckclass, token_obj *ret)
{
        CK_OBJECT_CLASS cls = ckclass;
        CK_ATTRIBUTE t[] = { { CKA_LABEL, (void *)label, strlen(label) }, { CKA_CLASS, &cls, sizeof(cls) } };

        return find_one(tok, t, ckclass == (unsigned long)-1 ? 1 : 2, label, ret);
}

/* ---- attributes ------------------------------------------------------------ */

/* A fixed-size attribute value (CK_BBOOL, CK_ULONG) into v. */
static int attr_fixed(fl_token *tok, token_obj obj, unsigned long attr, void *v, size_t len)
{
        CK_ATTRIBUTE a = { attr, v, len };
        CK_RV rv = tok->m->C_GetAttributeValue(tok->session, obj, &a, 1);

        return rv == CKR_OK ? 0 : ck_err(tok, rv, "C_GetAttributeValue");
}

int token_attr_bool(fl_token *tok, token_obj obj, unsigned long attr, bool *ret)
{
        CK_BBOOL v = CK_FALSE;
        int r = attr_fixed(tok, obj, attr, &v, sizeof(v));

        if (r == 0)
                *ret = v == CK_TRUE;
        return r;
}

int token_attr_ulong(fl_token *tok, token_obj obj, unsigned long attr, unsigned long *ret)
{
        CK_ULONG v = 0;
        int r = attr_fixed(tok, obj, attr, &v, sizeof(v));

        if (r == 0)
                *ret = v;
        return r;
}

int token_attr_bytes(fl_token *tok, token_obj obj, unsigned long attr, unsigned char **ret, size_t *ret_len)
{
        CK_ATTRIBUTE a = { attr, NULL, 0 };
        CK_RV rv = tok->m->C_GetAttributeValue(tok->session, obj, &a, 1);
        unsigned char *buf;

        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_GetAttributeValue");
        if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
                return fl_err(tok->ctx, -ENXIO, "token '%s': attribute 0x%lx unavailable", tok->info.label, attr);
        buf = malloc(a.ulValueLen ? a.ulValueLen : 1);
        if (!buf)
                return -ENOMEM;
        a.pValue = buf;
        rv = tok->m->C_GetAttributeValue(tok->session, obj, &a, 1);
        if (rv != CKR_OK) {
                free(buf);
                return ck_err(tok, rv, "C_GetAttributeValue");
        }
        *ret = buf;
        *ret_len = a.ulValueLen;
        return 0;
}

int token_read_secret(fl_token *tok, token_obj obj, struct fl_secret *ret)
{
        CK_ATTRIBUTE a = { CKA_VALUE, NULL, 0 };
        struct fl_secret s = { 0 };
        CK_RV rv = tok->m->C_GetAttributeValue(tok->session, obj, &a, 1);
        int r;

        if (rv == CKR_ATTRIBUTE_SENSITIVE)
                return fl_err(tok->ctx, -EPERM,
                              "token '%s': the key value is sensitive and cannot be read (fuse keys must be "
                              "created extractable by fuseline keygen)", tok->info.label);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "reading a secret key value");
        if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 || a.ulValueLen > 64)
                return fl_err(tok->ctx, -EPERM, "token '%s': secret key value unavailable", tok->info.label);
        r = secret_alloc(&s, a.ulValueLen);
        if (r < 0)
                return r;
        a.pValue = s.data;
        rv = tok->m->C_GetAttributeValue(tok->session, obj, &a, 1);
        if (rv != CKR_OK) {
                secret_wipe(&s);
                return ck_err(tok, rv, "reading a secret key value");
        }
        *ret = s;
        return 0;
}

/* ---- public keys ------------------------------------------------------------ */

/* A public key of algorithm alg ("RSA", "EC") from its parameters. */
static int pkey_fromdata(fl_token *tok, const char *alg, OSSL_PARAM *params, EVP_PKEY **ret)
{
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
        EVP_PKEY *pk = NULL;
        int r = 0;

        if (!pc || EVP_PKEY_fromdata_init(pc) <= 0 || EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
                r = fl_err(tok->ctx, -EIO, "token '%s': %s public key not usable: %s", tok->info.label, alg,
                           ossl_errstr());
        else
                *ret = pk;
        EVP_PKEY_CTX_free(pc);
        return r;
}

static int pub_rsa(fl_token *tok, token_obj obj, EVP_PKEY **ret)
{
        unsigned char *n = NULL, *e = NULL;
        size_t nl, el;
        BIGNUM *bn_n = NULL, *bn_e = NULL;
        OSSL_PARAM_BLD *bld = NULL;
        OSSL_PARAM *params = NULL;
        int r;

        r = token_attr_bytes(tok, obj, CKA_MODULUS, &n, &nl);
        if (r < 0)
                goto out;
        r = token_attr_bytes(tok, obj, CKA_PUBLIC_EXPONENT, &e, &el);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        bn_n = BN_bin2bn(n, (int)nl, NULL);
        bn_e = BN_bin2bn(e, (int)el, NULL);
        bld = OSSL_PARAM_BLD_new();
        if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) || !(params = OSSL_PARAM_BLD_to_param(bld)))
                goto out;
        r = pkey_fromdata(tok, "RSA", params, ret);
out:
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn_n);
        BN_free(bn_e);
        free(n);
        free(e);
        return r;
}

/* CKA_EC_POINT is a DER OCTET STRING around the point; some modules give the
 * raw point. Returns a pointer into buf. */
static const unsigned char *unwrap_octet(const unsigned char *buf, size_t len, size_t *ret_len)
{
        size_t l, hl;

        if (len >= 2 && buf[0] == 0x04) {
                if (buf[1] < 0x80) {
                        l = buf[1];
                        hl = 2;
                } else if (buf[1] == 0x81 && len >= 3) {
                        l = buf[2];
                        hl = 3;
                } else if (buf[1] == 0x82 && len >= 4) {
                        l = (size_t)buf[2] << 8 | buf[3];
                        hl = 4;
                } else {
                        l = 0;
                        hl = 0;
                }
                if (hl && hl + l == len) {
                        *ret_len = l;
                        return buf + hl;
                }
        }
        *ret_len = len;
        return buf;
}

static int pub_ec(fl_token *tok, token_obj obj, bool edwards, EVP_PKEY **ret)
{
        unsigned char *params_der = NULL, *point = NULL;
        size_t pl, ptl, rawl;
        const unsigned char *raw;
        const char *group = NULL;
        OSSL_PARAM params[3];
        EVP_PKEY *pk = NULL;
        int r;

        r = token_attr_bytes(tok, obj, CKA_EC_PARAMS, &params_der, &pl);
        if (r < 0)
                goto out;
        r = token_attr_bytes(tok, obj, CKA_EC_POINT, &point, &ptl);
        if (r < 0)
                goto out;
        raw = unwrap_octet(point, ptl, &rawl);
        if (edwards) {
                if (!((pl == sizeof(oid_ed25519) && !memcmp(params_der, oid_ed25519, pl)) ||
                      (pl == sizeof(str_ed25519) && !memcmp(params_der, str_ed25519, pl))) || rawl != 32) {
                        r = fl_err(tok->ctx, -ENOTSUP, "token '%s': Edwards key is not Ed25519", tok->info.label);
                        goto out;
                }
                pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, rawl);
                if (!pk) {
                        r = fl_err(tok->ctx, -EIO, "Ed25519 public key not usable: %s", ossl_errstr());
                        goto out;
                }
                *ret = pk;
                r = 0;
                goto out;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(curves); i++)
                if (pl == curves[i].len && !memcmp(params_der, curves[i].der, pl))
                        group = curves[i].group;
        if (!group) {
                r = fl_err(tok->ctx, -ENOTSUP, "token '%s': EC key on an unsupported curve", tok->info.label);
                goto out;
        }
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)raw, rawl);
        params[2] = OSSL_PARAM_construct_end();
        r = pkey_fromdata(tok, "EC", params, ret);
out:
        free(params_der);
        free(point);
        return r;
}

int token_get_pubkey(fl_token *tok, token_obj obj, EVP_PKEY **ret)
{
        unsigned long cls, kt;
        token_obj pub = obj;
        int r;

        r = token_attr_ulong(tok, obj, CKA_CLASS, &cls);
        if (r < 0)
                return r;
        r = token_attr_ulong(tok, obj, CKA_KEY_TYPE, &kt);
        if (r < 0)
                return r;
        if (cls == CKO_PRIVATE_KEY) {
                unsigned char *id = NULL;
                size_t idl = 0;
                CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY;
                CK_ATTRIBUTE t[2] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_ID, NULL, 0 } };
                CK_OBJECT_HANDLE h[2];
                CK_ULONG n = 0;

                if (token_attr_bytes(tok, obj, CKA_ID, &id, &idl) == 0 && idl > 0) {
                        t[1].pValue = id;
                        t[1].ulValueLen = idl;
                        if (find_objects(tok, t, 2, h, 2, &n) == 0 && n == 1)
                                pub = h[0];
                }
                free(id);
                fl_err_clear(tok->ctx);
                if (pub == obj && kt != CKK_RSA)
                        return fl_err(tok->ctx, -ENXIO, "token '%s': no public key object beside the private key",
                                      tok->info.label);
        } else if (cls != CKO_PUBLIC_KEY) {
                return fl_err(tok->ctx, -EINVAL, "token '%s': object is not a key pair", tok->info.label);
        }
        switch (kt) {
        case CKK_RSA:
                return pub_rsa(tok, pub, ret);
        case CKK_EC:
                return pub_ec(tok, pub, false, ret);
        case CKK_EC_EDWARDS:
                return pub_ec(tok, pub, true, ret);
        default:
                return fl_err(tok->ctx, -ENOTSUP, "token '%s': key type 0x%lx has no public key fuseline knows",
                              tok->info.label, kt);
        }
}

/* ---- generation and import ---------------------------------------------- */

static int label_free(fl_token *tok, const char *label)
{
        size_t n = 0;
        int r = token_count_label(tok, label, &n);

        if (r < 0)
                return r;
        if (n > 0)
                return fl_err_hint(tok->ctx, FL_HINT_TOKEN_LABEL, -EEXIST,
                                   "token '%s' already holds an object labelled '%s'; fuseline never replaces keys", tok->info.label, label);
        return 0;
}

static int need_mechanism(fl_token *tok, CK_MECHANISM_TYPE mech, const char *name)
{
        if (!token_has_mechanism(tok, mech))
                return fl_err(tok->ctx, -ENOTSUP, "token '%s' (%s) does not offer %s", tok->info.label,
                              tok->info.model, name);
        return 0;
}

int token_keygen(fl_token *tok, const struct keygen_spec *spec, token_obj *ret_priv, token_obj *ret_pub)
{
        static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        static CK_BYTE e65537[] = { 0x01, 0x00, 0x01 };
        CK_BBOOL extractable = spec->extractable ? CK_TRUE : CK_FALSE;
        CK_BBOOL sensitive = spec->extractable ? CK_FALSE : CK_TRUE;
        CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
        CK_MECHANISM mech = { 0, NULL, 0 };
        CK_ULONG bits = 0, vlen;
        CK_OBJECT_CLASS sec_class = CKO_SECRET_KEY;
        CK_KEY_TYPE kt;
        CK_ATTRIBUTE pubt[10], privt[14];
        CK_ULONG np = 0, nv = 0;
        const unsigned char *ecp = NULL;
        size_t ecpl = 0;
        const char *mname;
        CK_RV rv;
        int r;

        r = label_free(tok, spec->label);
        if (r < 0)
                return r;

        switch (spec->type) {
        case KT_RSA2K:
        case KT_RSA3K:
                bits = spec->type == KT_RSA2K ? 2048 : 3072;
                mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
                mname = "CKM_RSA_PKCS_KEY_PAIR_GEN";
                break;
        case KT_P256:
        case KT_P384:
        case KT_P521:
                mech.mechanism = CKM_EC_KEY_PAIR_GEN;
                mname = "CKM_EC_KEY_PAIR_GEN";
                ecp = curves[spec->type - KT_P256].der;
                ecpl = curves[spec->type - KT_P256].len;
                break;
        case KT_ED25519:
                mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
                mname = "CKM_EC_EDWARDS_KEY_PAIR_GEN (Ed25519)";
                ecp = oid_ed25519;
                ecpl = sizeof(oid_ed25519);
                break;
        case KT_AES128:
        case KT_AES256:
                mech.mechanism = CKM_AES_KEY_GEN;
                mname = "CKM_AES_KEY_GEN";
                break;
        case KT_GENERIC128:
        case KT_GENERIC256:
                mech.mechanism = CKM_GENERIC_SECRET_KEY_GEN;
                mname = "CKM_GENERIC_SECRET_KEY_GEN";
                break;
        default:
                return fl_err(tok->ctx, -EINVAL, "cannot generate a key of type %s", key_type_name(spec->type));
        }
        r = need_mechanism(tok, mech.mechanism, mname);
        if (r < 0)
                return r;

        if (key_type_is_secret(spec->type)) {
                kt = spec->type == KT_AES128 || spec->type == KT_AES256 ? CKK_AES : CKK_GENERIC_SECRET;
                vlen = key_type_secret_len(spec->type);
                privt[nv++] = (CK_ATTRIBUTE){ CKA_CLASS, &sec_class, sizeof(sec_class) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof(yes) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &sensitive, sizeof(sensitive) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &extractable, sizeof(extractable) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &vlen, sizeof(vlen) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_VERIFY, &yes, sizeof(yes) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_ENCRYPT, kt == CKK_AES ? &yes : &no, sizeof(yes) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)spec->label, strlen(spec->label) };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_ID, (void *)spec->id, spec->id_len };
                rv = tok->m->C_GenerateKey(tok->session, &mech, privt, nv, &priv);
                if (rv != CKR_OK)
                        return ck_err(tok, rv, "C_GenerateKey");
                if (ret_priv)
                        *ret_priv = priv;
                if (ret_pub)
                        *ret_pub = 0;
                return 0;
        }

        pubt[np++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &no, sizeof(no) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_VERIFY, &yes, sizeof(yes) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_WRAP, &no, sizeof(no) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)spec->label, strlen(spec->label) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_ID, (void *)spec->id, spec->id_len };
        if (bits) {
                pubt[np++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
                pubt[np++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537) };
        } else {
                pubt[np++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ecp, ecpl };
        }
        privt[nv++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &sensitive, sizeof(sensitive) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &extractable, sizeof(extractable) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &no, sizeof(no) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_UNWRAP, &no, sizeof(no) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)spec->label, strlen(spec->label) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_ID, (void *)spec->id, spec->id_len };
        rv = tok->m->C_GenerateKeyPair(tok->session, &mech, pubt, np, privt, nv, &pub, &priv);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_GenerateKeyPair");
        if (ret_priv)
                *ret_priv = priv;
        if (ret_pub)
                *ret_pub = pub;
        return 0;
}

/* BIGNUM parameter as big-endian bytes (malloc'd). */
static int bn_param(EVP_PKEY *pk, const char *name, unsigned char **ret, size_t *ret_len)
{
        BIGNUM *bn = NULL;
        unsigned char *b;
        int n;

        if (!EVP_PKEY_get_bn_param(pk, name, &bn))
                return -EINVAL;
        n = BN_num_bytes(bn);
        b = malloc(n ? (size_t)n : 1);
        if (!b) {
                BN_clear_free(bn);
                return -ENOMEM;
        }
        BN_bn2bin(bn, b);
        BN_clear_free(bn);
        *ret = b;
        *ret_len = (size_t)n;
        return 0;
}

int token_import_pkey(fl_token *tok, EVP_PKEY *pkey, const char *label, const unsigned char *id, size_t id_len,
                      token_obj *ret_priv, token_obj *ret_pub)
{
        static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        static const char *const rsa_names[] = { OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                                 OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                                 OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                                 OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1 };
        static const CK_ATTRIBUTE_TYPE rsa_attrs[] = { CKA_MODULUS,   CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT,
                                                       CKA_PRIME_1,   CKA_PRIME_2,         CKA_EXPONENT_1,
                                                       CKA_EXPONENT_2, CKA_COEFFICIENT };
        CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY, vc = CKO_PRIVATE_KEY;
        CK_KEY_TYPE kt;
        CK_ATTRIBUTE pubt[12], privt[20];
        CK_ULONG np = 0, nv = 0;
        unsigned char *vals[8] = { 0 };
        size_t lens[8] = { 0 };
        unsigned char point_der[200];
        unsigned char point[150];
        size_t point_len = 0;
        const unsigned char *ecp = NULL;
        size_t ecpl = 0;
        CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
        enum key_type t;
        CK_RV rv;
        int r;

        r = label_free(tok, label);
        if (r < 0)
                return r;
        if (EVP_PKEY_is_a(pkey, "RSA")) {
                kt = CKK_RSA;
                for (size_t i = 0; i < FL_ARRAY_SIZE(rsa_names); i++) {
                        r = bn_param(pkey, rsa_names[i], &vals[i], &lens[i]);
                        if (r < 0) {
                                r = fl_err(tok->ctx, -EINVAL, "RSA key lacks its private components (CRT)");
                                goto out;
                        }
                }
        } else if (EVP_PKEY_is_a(pkey, "EC")) {
                t = KT_NONE;
                char gname[32];
                if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, gname, sizeof(gname), NULL)) {
                        if (!strcmp(gname, "prime256v1") || !strcmp(gname, "P-256"))
                                t = KT_P256;
                        else if (!strcmp(gname, "secp384r1") || !strcmp(gname, "P-384"))
                                t = KT_P384;
                        else if (!strcmp(gname, "secp521r1") || !strcmp(gname, "P-521"))
                                t = KT_P521;
                }
                if (t == KT_NONE) {
                        r = fl_err(tok->ctx, -EINVAL, "EC key on a curve fuseline does not use");
                        goto out;
                }
                kt = CKK_EC;
                ecp = curves[t - KT_P256].der;
                ecpl = curves[t - KT_P256].len;
                r = bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &vals[0], &lens[0]);
                if (r < 0 || !EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                                              &point_len)) {
                        r = fl_err(tok->ctx, -EINVAL, "EC key lacks its private or public part");
                        goto out;
                }
                /* DER OCTET STRING around the uncompressed point. */
                point_der[0] = 0x04;
                if (point_len < 0x80) {
                        point_der[1] = (unsigned char)point_len;
                        memcpy(point_der + 2, point, point_len);
                        point_len += 2;
                } else {
                        point_der[1] = 0x81;
                        point_der[2] = (unsigned char)point_len;
                        memcpy(point_der + 3, point, point_len);
                        point_len += 3;
                }
        } else {
                r = fl_err(tok->ctx, -EINVAL, "only RSA and EC private keys can be imported");
                goto out;
        }

        pubt[np++] = (CK_ATTRIBUTE){ CKA_CLASS, &pc, sizeof(pc) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &no, sizeof(no) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_VERIFY, &yes, sizeof(yes) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
        pubt[np++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_CLASS, &vc, sizeof(vc) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &no, sizeof(no) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &no, sizeof(no) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
        privt[nv++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
        if (kt == CKK_RSA) {
                pubt[np++] = (CK_ATTRIBUTE){ CKA_MODULUS, vals[0], lens[0] };
                pubt[np++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, vals[1], lens[1] };
                for (size_t i = 0; i < FL_ARRAY_SIZE(rsa_attrs); i++)
                        privt[nv++] = (CK_ATTRIBUTE){ rsa_attrs[i], vals[i], lens[i] };
        } else {
                pubt[np++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ecp, ecpl };
                pubt[np++] = (CK_ATTRIBUTE){ CKA_EC_POINT, point_der, point_len };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ecp, ecpl };
                privt[nv++] = (CK_ATTRIBUTE){ CKA_VALUE, vals[0], lens[0] };
        }
        rv = tok->m->C_CreateObject(tok->session, privt, nv, &priv);
        if (rv != CKR_OK) {
                r = ck_err(tok, rv, "C_CreateObject (private key)");
                goto out;
        }
        rv = tok->m->C_CreateObject(tok->session, pubt, np, &pub);
        if (rv != CKR_OK) {
                /* Leave nothing half-imported. */
                tok->m->C_DestroyObject(tok->session, priv);
                r = ck_err(tok, rv, "C_CreateObject (public key)");
                goto out;
        }
        if (ret_priv)
                *ret_priv = priv;
        if (ret_pub)
                *ret_pub = pub;
        r = 0;
out:
        for (size_t i = 0; i < FL_ARRAY_SIZE(vals); i++) {
                if (vals[i])
                        OPENSSL_cleanse(vals[i], lens[i]);
                free(vals[i]);
        }
        return r;
}

int token_import_secret(fl_token *tok, enum key_type type, const unsigned char *value, size_t len, const char *label,
                        const unsigned char *id, size_t id_len, bool extractable, token_obj *ret)
{
        static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_BBOOL ext = extractable ? CK_TRUE : CK_FALSE, sens = extractable ? CK_FALSE : CK_TRUE;
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt;
        CK_OBJECT_HANDLE h;
        CK_RV rv;
        int r;

        if (!key_type_is_secret(type) || key_type_secret_len(type) != len)
                return fl_err(tok->ctx, -EINVAL, "secret key of %zu bytes does not fit type %s", len,
                              key_type_name(type));
        kt = type == KT_AES128 || type == KT_AES256 ? CKK_AES : CKK_GENERIC_SECRET;
        r = label_free(tok, label);
        if (r < 0)
                return r;
        {
                CK_ATTRIBUTE t[] = {
                        { CKA_CLASS, &cls, sizeof(cls) },
                        { CKA_KEY_TYPE, &kt, sizeof(kt) },
                        { CKA_TOKEN, &yes, sizeof(yes) },
                        { CKA_PRIVATE, &yes, sizeof(yes) },
                        { CKA_SENSITIVE, &sens, sizeof(sens) },
                        { CKA_EXTRACTABLE, &ext, sizeof(ext) },
                        { CKA_SIGN, &yes, sizeof(yes) },
                        { CKA_VERIFY, &yes, sizeof(yes) },
                        { CKA_ENCRYPT, kt == CKK_AES ? &yes : &no, sizeof(yes) },
                        { CKA_LABEL, (void *)label, strlen(label) },
                        { CKA_ID, (void *)id, id_len },
                        { CKA_VALUE, (void *)value, len },
                };
                rv = tok->m->C_CreateObject(tok->session, t, FL_ARRAY_SIZE(t), &h);
        }
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_CreateObject (secret key)");
        if (ret)
                *ret = h;
        return 0;
}

int token_aes_kcv(fl_token *tok, token_obj obj, char out[7])
{
        CK_MECHANISM mech = { CKM_AES_ECB, NULL, 0 };
        unsigned char zero[16] = { 0 }, enc[16];
        CK_ULONG n = sizeof(enc);
        CK_RV rv;

        rv = tok->m->C_EncryptInit(tok->session, &mech, obj);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_EncryptInit (key check value)");
        rv = tok->m->C_Encrypt(tok->session, zero, sizeof(zero), enc, &n);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_Encrypt (key check value)");
        hex_encode(enc, 3, out);
        return 0;
}

int token_sign(fl_token *tok, token_obj key, unsigned long mech, const void *param, size_t param_len,
               const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
        CK_MECHANISM m = { mech, (void *)param, param_len };
        CK_ULONG n = *out_len;
        CK_RV rv;

        rv = tok->m->C_SignInit(tok->session, &m, key);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_SignInit");
        rv = tok->m->C_Sign(tok->session, (CK_BYTE *)in, in_len, out, &n);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_Sign");
        *out_len = n;
        return 0;
}

int token_destroy(fl_token *tok, token_obj obj)
{
        CK_RV rv = tok->m->C_DestroyObject(tok->session, obj);

        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_DestroyObject");
        return 0;
}

int token_random_id(fl_token *tok, unsigned char *id, size_t len)
{
        CK_RV rv = tok->m->C_GenerateRandom(tok->session, id, len);

        if (rv == CKR_OK)
                return 0;
        /* Modules without an RNG: OpenSSL's DRBG is as good for an id. */
        if (RAND_bytes(id, (int)len) != 1)
                return fl_err(tok->ctx, -EIO, "no random source for a key id");
        return 0;
}

int token_random(fl_token *tok, unsigned char *out, size_t len)
{
        CK_RV rv;

        if (len == 0)
                return 0;
        /* No fallback here (unlike token_random_id): a caller asking for the
         * token's RNG must not silently get another one. */
        rv = tok->m->C_GenerateRandom(tok->session, out, len);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_GenerateRandom");
        return 0;
}

int token_encrypt(fl_token *tok, token_obj key, unsigned long mech, const void *param, size_t param_len,
                  const unsigned char *in, size_t in_len, unsigned char *out, size_t *out_len)
{
        CK_MECHANISM m = { mech, (void *)param, param_len };
        CK_ULONG n = *out_len;
        CK_RV rv;

        rv = tok->m->C_EncryptInit(tok->session, &m, key);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_EncryptInit");
        rv = tok->m->C_Encrypt(tok->session, (CK_BYTE *)in, in_len, out, &n);
        if (rv != CKR_OK)
                return ck_err(tok, rv, "C_Encrypt");
        *out_len = n;
        return 0;
}

/* ---- for mechanism helpers kept in other files (lib/p11_mech.c) ------------ */

void *token_funcs(fl_token *tok, unsigned long *ret_session)
{
        *ret_session = tok->session;
        return tok->m;
}

int token_ck_err(fl_token *tok, unsigned long rv, const char *what)
{
        return ck_err(tok, rv, what);
}

fl_ctx *token_ctx(fl_token *tok)
{
        return tok->ctx;
}
