/* sign.c — `fuseline sign` (one file, or a batch in one token session) and
 * `fuseline verify signature`. Parsing and printing only; the work is in
 * lib/sign.c. */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/ledger.h"
#include "../lib/record.h"
#include "cli.h"
#include "../lib/sign.h"

#define BATCH_LIST_MAX (16 * 1024 * 1024)

enum {
        OPT_KEYSET = 0x2000,
        OPT_ROLE,
        OPT_KEY,
        OPT_IN,
        OPT_OUT,
        OPT_OFFSET,
        OPT_LENGTH,
        OPT_SCHEME,
        OPT_FORMAT,
        OPT_DIGEST,
        OPT_BATCH,
        OPT_SIG,
        OPT_PUBKEY,
};

struct sign_args {
        const char *keyset, *role, *key, *in, *out, *batch, *sig, *pubkey;
        const char *scheme_name, *format_name;
        struct sign_range range;
        bool digest, have_offset;
        bool verify;
};

static error_t sign_parse(int key, char *arg, struct argp_state *state)
{
        struct sign_args *a = state->input;

        switch (key) {
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_ROLE:
                a->role = arg;
                break;
        case OPT_KEY:
                a->key = arg;
                break;
        case OPT_IN:
                a->in = arg;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_SIG:
                a->sig = arg;
                break;
        case OPT_PUBKEY:
                a->pubkey = arg;
                break;
        case OPT_OFFSET:
                if (cli_number(arg, UINT64_MAX, &a->range.offset) < 0)
                        argp_error(state, "--offset '%s': a byte count, decimal or 0x hex", arg);
                a->have_offset = true;
                break;
        case OPT_LENGTH:
                if (cli_number(arg, UINT64_MAX, &a->range.length) < 0)
                        argp_error(state, "--length '%s': a byte count, decimal or 0x hex", arg);
                a->range.has_length = true;
                break;
        case OPT_SCHEME:
                a->scheme_name = arg;
                break;
        case OPT_FORMAT:
                a->format_name = arg;
                break;
        case OPT_DIGEST:
                a->digest = true;
                break;
        case OPT_BATCH:
                a->batch = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const struct argp_child sign_children[] = {
        { &cli_common_argp, 0, "General options:", -1 },
        { &cli_token_argp, 0, "Token options:", -2 },
        { 0 },
};

static const struct argp_child sign_out_children[] = {
        { &cli_common_argp, 0, "General options:", -1 },
        { &cli_token_argp, 0, "Token options:", -2 },
        { &cli_force_argp, 0, "Output options:", -3 },
        { &cli_ledger_argp, 0, "Ledger options:", -4 },
        { 0 },
};

static const struct argp_option sign_options[] = {
        { NULL, 0, NULL, 0, "Key:", 1 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest (its token is used unless --token is given)", 1 },
        { "role", OPT_ROLE, "ROLE", 0, "Key role in the keyset: pkc0..pkc2, sbk, oem-k1, …", 1 },
        { "key", OPT_KEY, "URI", 0, "PKCS#11 URI of the key instead of a keyset role", 1 },
        { NULL, 0, NULL, 0, "Input and output:", 2 },
        { "in", OPT_IN, "FILE", 0, "File to sign", 2 },
        { "offset", OPT_OFFSET, "N", 0, "Sign from byte N of the file (default 0)", 2 },
        { "length", OPT_LENGTH, "N", 0, "Sign N bytes (default: to the end)", 2 },
        { "digest", OPT_DIGEST, NULL, 0, "The input is already the digest of the scheme's hash (as an HSM hook gets it)", 2 },
        { "out", OPT_OUT, "FILE", 0, "Signature file (written atomically)", 2 },
        { "scheme", OPT_SCHEME, "S", 0,
          "rsa-pss-sha256 rsa-pss-sha512 rsa-pss-sha512-salt32 rsa-pkcs1-sha256 ecdsa-sha256 ecdsa-sha384 "
          "ecdsa-sha512 ed25519 hmac-sha256 aes-cmac (default: from the key type)", 2 },
        { "format", OPT_FORMAT, "F", 0, "raw (default), der, pem, tegra", 2 },
        { "batch", OPT_BATCH, "LIST", 0,
          "Sign every 'IN OUT [ROLE]' line of LIST ('-': stdin) in one token session; --json gives JSON Lines", 2 },
        { 0 }
};

static const char sign_doc[] =
        "Sign a file, or a range of it, with a key held in a PKCS#11 token.\v"
        "RSA keys sign RSASSA-PSS (MGF1 with the same hash, salt length = hash length; rsa-pss-sha512-salt32 "
        "is tegrasign's --sha sha512 form, salt 32), EC keys ECDSA, "
        "Ed25519 keys pure Ed25519; fuse keys make HMAC-SHA256 or AES-CMAC MACs inside the token (HMAC uses "
        "the key's CKK_GENERIC_SECRET twin recorded by keygen). Files are hashed in a stream, so image size "
        "costs no memory; Ed25519 and MAC input is read whole (up to 256 MiB). --format tegra stores RSA-PSS "
        "byte-reversed as tegrasign_v3 does. A production keyset refuses keys that are extractable or not "
        "sensitive, or a token whose serial differs from the manifest (exit 6). The output file appears only "
        "when signing succeeded.\n\n"
        "Examples:\n"
        "  fuseline sign --keyset keyset.json --role pkc0 --in mb1.bin --out mb1.sig\n"
        "  fuseline sign --keyset keyset.json --role pkc0 --in bct.bin --offset 1184 --length 2048 \\\n"
        "      --format tegra --out bct.sig\n"
        "  fuseline sign --keyset keyset.json --role pkc0 --digest --in hash.bin --format tegra --out sig.bin\n"
        "  fuseline sign --key 'pkcs11:token=lab;object=orin-pkc0' --scheme ecdsa-sha256 --format der \\\n"
        "      --in image.bin --out image.sig\n"
        "  fuseline sign --keyset keyset.json --role sbk --scheme hmac-sha256 --in blob.bin --out blob.mac\n"
        "  fuseline sign --keyset keyset.json --role pkc0 --batch files.txt --json\n"
        "Exit: 0 ok, 1 failure (or the result could not be written), 2 bad input, 3 token/PIN, "
        "5 the key is not the one the keyset records, 6 production interlock, 7 --out exists (see --force).\n"
        "UEFI variables and payloads: fuseline sign --uefi-var db --help. AES-GCM encryption with a fuse key: "
        "fuseline sign --encrypt aes-gcm --help.";

static const struct argp sign_argp = { sign_options, sign_parse, NULL, sign_doc, sign_out_children, NULL, NULL };

static const struct argp_option verify_options[] = {
        { "in", OPT_IN, "FILE", 0, "Signed file (or digest with --digest)", 1 },
        { "sig", OPT_SIG, "FILE", 0, "Signature file", 1 },
        { "pubkey", OPT_PUBKEY, "PEM", 0, "Public key (or certificate) to verify with", 1 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Verify with the token key of a keyset role instead", 1 },
        { "role", OPT_ROLE, "ROLE", 0, "Key role in the keyset", 1 },
        { "key", OPT_KEY, "URI", 0, "PKCS#11 URI of the key instead of a role", 1 },
        { "offset", OPT_OFFSET, "N", 0, "The signature covers the file from byte N", 1 },
        { "length", OPT_LENGTH, "N", 0, "… for N bytes", 1 },
        { "digest", OPT_DIGEST, NULL, 0, "The input is the digest, not the message", 1 },
        { "scheme", OPT_SCHEME, "S", 0, "As for sign (default: from the key type)", 1 },
        { "format", OPT_FORMAT, "F", 0,
          "raw, der, pem, tegra (default: pem if armoured, ECDSA raw or der by length, else raw)", 1 },
        { 0 }
};

static const char verify_doc[] =
        "Check a signature or MAC made by fuseline sign (or by anything producing the same formats).\v"
        "RSA-PSS must use salt length = hash length (32 for rsa-pss-sha512-salt32). MACs are recomputed inside the token and compared in "
        "constant time, so they need --keyset/--role (or --key) and the PIN. Exit 5 with \"signature does not "
        "match\" and the key fingerprint on a bad signature; exit 2 for a malformed or wrong-length signature "
        "file.\n\n"
        "Examples:\n"
        "  fuseline verify signature --in mb1.bin --sig mb1.sig --pubkey pkc0.pub.pem\n"
        "  fuseline verify signature --in bct.bin --offset 1184 --length 2048 --sig bct.sig --format tegra \\\n"
        "      --keyset keyset.json --role pkc0\n"
        "  fuseline verify signature --in blob.bin --sig blob.mac --keyset keyset.json --role sbk \\\n"
        "      --scheme hmac-sha256 --json";

static const struct argp verify_argp = { verify_options, sign_parse, NULL, verify_doc, sign_children, NULL, NULL };

/* A signing session on the token the keyset (or the --key URI) pins;
 * --token or $FUSELINE_TOKEN may only narrow that token, never redirect it
 * (lib/signer.c refuses a different token naming both). */
int cli_sign_session(struct cli *cli, const char *keyset, const char *key_uri, bool login, sign_session **ret)
{
        if (!keyset && key_uri)
                return sign_session_open_key(cli->ctx, key_uri, &cli->tok, login, ret);
        return sign_session_open(cli->ctx, keyset, &cli->tok, login, ret);
}

static int args_common(struct cli *cli, const struct sign_args *a, enum sign_scheme *s, enum sign_format *f)
{
        int r;

        *s = SCHEME_NONE;
        *f = SIGFMT_AUTO;
        if (a->scheme_name) {
                r = sign_scheme_parse(cli->ctx, a->scheme_name, s);
                if (r < 0) /* the same message; the CLI says which flag gave the name */
                        return fl_err_hint(cli->ctx, FL_HINT_SCHEME_ASKED, r, "%s", fl_ctx_last_error(cli->ctx));
        }
        if (a->format_name) {
                r = sign_format_parse(cli->ctx, a->format_name, f);
                if (r < 0)
                        return fl_err_hint(cli->ctx, FL_HINT_FORMAT_ASKED, r, "%s", fl_ctx_last_error(cli->ctx));
                if (*f == SIGFMT_AUTO && !a->verify)
                        return fl_err(cli->ctx, -EINVAL, "--format auto applies to verify signature only");
        }
        if (a->key && (a->keyset || a->role))
                return fl_err(cli->ctx, -EINVAL, "give either --key URI or --keyset with --role, not both");
        if (a->role && !a->keyset)
                return fl_err(cli->ctx, -EINVAL, "--role %s needs --keyset", a->role);
        return 0;
}

static json_object *result_json(const char *cmd, const char *in, const char *out, const char *key_name,
                                const struct sign_result *res)
{
        json_object *o = cli_json_result(cmd, true);

        json_object_object_add(o, "in", json_object_new_string(in));
        if (out)
                json_object_object_add(o, "out", json_object_new_string(out));
        json_object_object_add(o, "key", json_object_new_string(key_name));
        json_object_object_add(o, "scheme", json_object_new_string(sign_scheme_name(res->scheme)));
        json_object_object_add(o, "format", json_object_new_string(sign_format_name(res->format)));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)res->sig_len));
        json_object_object_add(o, "key_fingerprint", json_object_new_string(res->key_fpr));
        /* Named for what they hold: the SHA-256 of the input bytes covered,
         * always; the digest that was signed, where one was (not for
         * Ed25519 or MACs, which sign the bytes themselves). */
        json_object_object_add(o, "file_sha256", json_object_new_string(res->file_sha256));
        if (res->digest_alg) {
                char alg[16];
                size_t i;
                for (i = 0; res->digest_alg[i] && i < sizeof(alg) - 1; i++)
                        alg[i] = (char)tolower((unsigned char)res->digest_alg[i]);
                alg[i] = 0;
                json_object_object_add(o, "digest", json_object_new_string(res->digest));
                json_object_object_add(o, "digest_alg", json_object_new_string(alg));
        }
        json_object_object_add(o, "offset", json_object_new_int64((int64_t)res->offset));
        json_object_object_add(o, "length", json_object_new_int64((int64_t)res->length));
        return o;
}

/* A signature on the record: which key (role and fingerprint: the SPKI
 * SHA-256 the manifest pins, or a secret key's check value), the SHA-256 of
 * the bytes signed and their range, the digest signed, and the SHA-256 of
 * the signature file. */
static json_object *event_json(struct cli *cli, const struct sign_args *a, const char *in, const char *out,
                               const char *role, const char *key_uri, const struct sign_result *res)
{
        json_object *d = json_object_new_object();
        char sha[65];

        json_object_object_add(d, "mode", json_object_new_string(sign_scheme_is_mac(res->scheme) ? "mac" : "image"));
        if (a->keyset)
                json_object_object_add(d, "keyset", json_object_new_string(a->keyset));
        json_object_object_add(d, "role", role ? json_object_new_string(role) : NULL);
        if (key_uri)
                json_object_object_add(d, "key_uri", json_object_new_string(key_uri));
        json_object_object_add(d, "key_fingerprint", json_object_new_string(res->key_fpr));
        json_object_object_add(d, "scheme", json_object_new_string(sign_scheme_name(res->scheme)));
        json_object_object_add(d, "format", json_object_new_string(sign_format_name(res->format)));
        json_object_object_add(d, "in", json_object_new_string(in));
        json_object_object_add(d, "file_sha256", json_object_new_string(res->file_sha256));
        json_object_object_add(d, "offset", json_object_new_int64((int64_t)res->offset));
        json_object_object_add(d, "length", json_object_new_int64((int64_t)res->length));
        if (res->digest_alg) {
                json_object_object_add(d, "digest", json_object_new_string(res->digest));
                json_object_object_add(d, "digest_alg", json_object_new_string(res->digest_alg));
        }
        json_object_object_add(d, "digest_input", json_object_new_boolean(a->digest));
        json_object_object_add(d, "out", json_object_new_string(out));
        json_object_object_add(d, "signature_sha256",
                               record_file_sha256(cli->ctx, out, sha) == 0 ? json_object_new_string(sha) : NULL);
        fl_err_clear(cli->ctx);
        return d;
}

/* "bytes A-B of FILE" (inclusive, decimal): what --offset/--length covered,
 * so a reader sees at once which bytes were signed. */
static const char *range_text(const struct sign_result *res, char *buf, size_t len)
{
        snprintf(buf, len, "bytes %" PRIu64 "-%" PRIu64, res->offset, res->offset + res->length - 1);
        return buf;
}

static int read_list(struct cli *cli, const char *path, unsigned char **ret, size_t *ret_len)
{
        int r;

        if (strcmp(path, "-"))
                return file_read(cli->ctx, path, BATCH_LIST_MAX, ret, ret_len);
        r = fd_read_all(STDIN_FILENO, BATCH_LIST_MAX, ret, ret_len);
        if (r == -EFBIG)
                return fl_err(cli->ctx, -EINVAL, "stdin: batch list larger than %d bytes", BATCH_LIST_MAX);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fl_err(cli->ctx, r, "stdin: read failed: %s", strerror(-r));
        return 0;
}

struct batch_item {
        int r;
        bool attempted;
        char *msg;
        struct sign_result res;
};

static void batch_report(struct cli *cli, const struct sign_batch_entry *e, const struct batch_item *it,
                         const char *key_name)
{
        if (it->r < 0) {
                if (cli->json) {
                        json_object *jo = cli_json_result("sign", false);
                        json_object_object_add(jo, "line", json_object_new_int((int)e->line));
                        json_object_object_add(jo, "in", json_object_new_string(e->in));
                        json_object_object_add(jo, "out", json_object_new_string(e->out));
                        json_object_object_add(jo, "key", json_object_new_string(key_name));
                        json_object_object_add(jo, "exit_code", json_object_new_int(cli_exit_code(it->r)));
                        json_object_object_add(jo, "error", json_object_new_string(it->msg ? it->msg : ""));
                        cli_json_out(jo);
                } else {
                        fprintf(stderr, "fuseline sign: FAILED %s\n", it->msg ? it->msg : "");
                }
                return;
        }
        if (cli->json) {
                json_object *jo = result_json("sign", e->in, e->out, key_name, &it->res);
                json_object_object_add(jo, "line", json_object_new_int((int)e->line));
                cli_json_out(jo);
        } else {
                char rt[64];
                printf("signed %s (%s) -> %s (%s, %s, %zu bytes)\n", e->in, range_text(&it->res, rt, sizeof(rt)),
                       e->out, sign_scheme_name(it->res.scheme), sign_format_name(it->res.format), it->res.sig_len);
        }
}

static char *line_msg(const char *list, unsigned line, const char *msg)
{
        char *s = NULL;
        if (asprintf(&s, "%s:%u: %s", list, line, msg) < 0)
                return NULL;
        return s;
}

/* Sign every entry, then make all signatures durable at once (one syncfs
 * instead of two fsyncs per file: on a disk that is most of the cost), then
 * report, so a line reported ok is really in place. */
static int sign_batch(struct cli *cli, const struct sign_args *a, enum sign_scheme s, enum sign_format f)
{
        struct sign_batch_entry *e = NULL;
        struct sign_pending *pend = NULL;
        struct batch_item *items = NULL;
        int *cr = NULL;
        sign_session *ss = NULL;
        unsigned char *text = NULL;
        size_t len = 0, n = 0, failed = 0, stop = (size_t)-1;
        int r, first_err = 0;
        const char *first_msg = NULL;
        char intr_msg[FL_ERRMSG_MAX] = "";
        struct ledger *l = NULL;

        if (a->in || a->out || a->have_offset || a->range.has_length)
                return fl_err(cli->ctx, -EINVAL, "--batch takes its files from the list: drop --in/--out/--offset/--length");
        r = read_list(cli, a->batch, &text, &len);
        if (r < 0)
                goto out;
        r = sign_batch_parse(cli->ctx, a->batch, (const char *)text, len, &e, &n);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                r = cli_out_check(cli, e[i].out);
                if (r < 0) {
                        r = fl_err(cli->ctx, r, "%s:%u: %s", a->batch, e[i].line, fl_ctx_last_error(cli->ctx));
                        goto out;
                }
                if (e[i].role && !a->keyset) {
                        r = fl_err(cli->ctx, -EINVAL, "%s:%u: a role column needs --keyset", a->batch, e[i].line);
                        goto out;
                }
                if (!e[i].role && !a->role && !a->key) {
                        r = fl_err(cli->ctx, -EINVAL, "%s:%u: no role on the line and no --role or --key", a->batch,
                                   e[i].line);
                        goto out;
                }
        }
        /* A ledger that cannot be written fails before anything is signed. */
        r = cli_ledger_open(cli, &l);
        if (r < 0)
                goto out;
        pend = calloc(n, sizeof(*pend));
        items = calloc(n, sizeof(*items));
        cr = calloc(n, sizeof(*cr));
        if (!pend || !items || !cr) {
                r = -ENOMEM;
                goto out;
        }
        r = cli_sign_session(cli, a->keyset, a->keyset ? NULL : a->key, true, &ss);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                struct sign_request req = {
                        .in = e[i].in,
                        .out = e[i].out,
                        .role = e[i].role ? e[i].role : a->role,
                        .key_uri = e[i].role ? NULL : a->key,
                        .scheme = s,
                        .format = f,
                        .is_digest = a->digest,
                        .pending = &pend[i],
                };

                /* SIGINT/SIGTERM: stop; nothing of this batch reaches its out. */
                if (fl_interrupted(cli->ctx) < 0)
                        break;
                items[i].attempted = true;
                items[i].r = sign_file(ss, &req, &items[i].res);
                if (items[i].r < 0) {
                        const char *msg = fl_ctx_last_error(cli->ctx);
                        items[i].msg = line_msg(a->batch, e[i].line, msg ? msg : strerror(-items[i].r));
                        fl_err_clear(cli->ctx);
                        /* A token that went away or refused the PIN fails
                         * every later line the same way: stop early. */
                        if (items[i].r == -ENXIO || items[i].r == -EACCES) {
                                stop = i;
                                break;
                        }
                }
        }
        /* Interrupted: the pending temporaries are removed below
         * (sign_pending_clear), exactly as for lines that failed. */
        if (fl_interrupted(cli->ctx) < 0)
                snprintf(intr_msg, sizeof(intr_msg), "%s", fl_ctx_last_error(cli->ctx));
        else
                (void)sign_commit(cli->ctx, pend, n, cr);
        fl_err_clear(cli->ctx);
        for (size_t i = 0; i < n; i++) {
                const char *key_name = e[i].role ? e[i].role : a->role ? a->role : a->key;
                if (intr_msg[0] && (!items[i].attempted || items[i].r == 0)) {
                        items[i].r = -ECANCELED;
                        free(items[i].msg);
                        items[i].msg = line_msg(a->batch, e[i].line, items[i].attempted
                                                ? "signed, but not put in place: the batch was interrupted"
                                                : "not attempted: the batch was interrupted");
                } else if (!items[i].attempted) {
                        items[i].r = stop != (size_t)-1 ? items[stop].r : -EIO;
                        items[i].msg = line_msg(a->batch, e[i].line, "not attempted after the token error above");
                } else if (items[i].r == 0 && cr[i] < 0) {
                        items[i].r = cr[i];
                        items[i].msg = line_msg(a->batch, e[i].line, pend[i].err ? pend[i].err : strerror(-cr[i]));
                }
                if (items[i].r < 0) {
                        failed++;
                        if (!first_err) {
                                first_err = items[i].r;
                                first_msg = items[i].msg;
                        }
                }
                batch_report(cli, &e[i], &items[i], key_name);
        }
        if (cli->json) {
                json_object *jo = json_object_new_object();
                json_object_object_add(jo, "command", json_object_new_string("sign"));
                json_object_object_add(jo, "batch", json_object_new_string(a->batch));
                json_object_object_add(jo, "ok", json_object_new_boolean(failed == 0));
                json_object_object_add(jo, "total", json_object_new_int64((int64_t)n));
                json_object_object_add(jo, "failed", json_object_new_int64((int64_t)failed));
                cli_json_out(jo);
        }
        if (!intr_msg[0] && failed < n) {
                /* Every signature put in place, one event each, in one
                 * transaction. */
                json_object **d = calloc(n, sizeof(*d));
                size_t k = 0;
                char done[FL_ERRMSG_MAX];
                if (!d) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < n; i++)
                        if (items[i].r == 0)
                                d[k++] = event_json(cli, a, e[i].in, e[i].out, e[i].role ? e[i].role : a->role,
                                                    e[i].role ? NULL : a->key, &items[i].res);
                snprintf(done, sizeof(done), "%zu signature%s of %s %s in place", k, k == 1 ? "" : "s", a->batch,
                         k == 1 ? "is" : "are");
                r = cli_ledger_record(cli, l, "sign", d, k, done, NULL);
                free(d);
                if (r < 0)
                        goto out;
        }
        if (intr_msg[0]) {
                r = fl_err(cli->ctx, -ECANCELED, "%s: no signature of this batch was put in place and its "
                           "temporary files were removed", intr_msg);
                goto out;
        }
        if (failed) {
                /* main() adds "error" and "exit_code" to the summary line. */
                r = fl_err(cli->ctx, first_err, "%zu of %zu files not signed; first: %s", failed, n,
                           first_msg ? first_msg : "?");
                goto out;
        }
        cli_info("signed %zu file%s in one token session", n, n == 1 ? "" : "s");
        r = 0;
out:
        sign_session_close(ss);
        ledger_close(l);
        sign_pending_clear(pend, n);
        for (size_t i = 0; items && i < n; i++)
                free(items[i].msg);
        free(items);
        free(pend);
        free(cr);
        sign_batch_free(e, n);
        free(text);
        return r;
}

int cmd_sign(struct cli *cli, int argc, char **argv)
{
        struct sign_args a = { 0 };
        sign_session *ss = NULL;
        enum sign_scheme s;
        enum sign_format f;
        struct sign_result res;
        struct ledger *l = NULL;
        int r;

        /* UEFI authenticated variables and payloads are another mode
         * with its own options (cmd/sign_uefi.c). */
        for (int i = 1; i < argc; i++)
                if (!strcmp(argv[i], "--"))
                        break;
                else if (!strncmp(argv[i], "--uefi-var", 10) || !strncmp(argv[i], "--uefi-payload", 14))
                        return cmd_sign_uefi(cli, argc, argv);
                else if (!strncmp(argv[i], "--encrypt", 9))
                        return cmd_sign_encrypt(cli, argc, argv);

        cli_parse(&sign_argp, argc, argv, &a);
        r = args_common(cli, &a, &s, &f);
        if (r < 0)
                return r;
        if (a.sig || a.pubkey)
                return fl_err(cli->ctx, -EINVAL, "--sig/--pubkey belong to fuseline verify signature");
        if (a.batch)
                return sign_batch(cli, &a, s, f);
        if (!a.in || !a.out)
                return fl_err(cli->ctx, -EINVAL, "sign needs --in FILE and --out FILE (see fuseline sign --help)");
        if (!a.role && !a.key)
                return fl_err(cli->ctx, -EINVAL, "sign needs a key: --keyset FILE --role ROLE, or --key URI");
        r = cli_out_check(cli, a.out);
        if (r < 0)
                return r;
        /* A ledger that cannot be written fails before anything is signed. */
        r = cli_ledger_open(cli, &l);
        if (r < 0)
                return r;

        r = cli_sign_session(cli, a.keyset, a.key, true, &ss);
        if (r < 0)
                goto out;
        {
                struct sign_request req = {
                        .in = a.in,
                        .out = a.out,
                        .role = a.role,
                        .key_uri = a.key,
                        .scheme = s,
                        .format = f,
                        .is_digest = a.digest,
                        .range = a.range,
                };
                r = sign_file(ss, &req, &res);
        }
        if (r < 0)
                goto out;
        if (cli->json)
                cli_json_out(result_json("sign", a.in, a.out, a.role ? a.role : a.key, &res));
        else {
                char rt[64];
                printf("signed %s (%s) -> %s (%s, %s, %zu bytes, key %s)\n", a.in, range_text(&res, rt, sizeof(rt)),
                       a.out, sign_scheme_name(res.scheme), sign_format_name(res.format), res.sig_len, res.key_fpr);
        }
        {
                json_object *d = event_json(cli, &a, a.in, a.out, a.role, a.key, &res);
                char done[FL_ERRMSG_MAX];
                snprintf(done, sizeof(done), "the signature %s was written", a.out);
                r = cli_ledger_record(cli, l, "sign", &d, 1, done, NULL);
        }
out:
        sign_session_close(ss);
        ledger_close(l);
        return r;
}

int cmd_verify_signature(struct cli *cli, int argc, char **argv)
{
        struct sign_args a = { .verify = true };
        sign_session *ss = NULL;
        enum sign_scheme s;
        enum sign_format f;
        struct sign_result res;
        int r;

        cli_parse(&verify_argp, argc, argv, &a);
        r = args_common(cli, &a, &s, &f);
        if (r < 0)
                return r;
        if (!a.in || !a.sig)
                return fl_err(cli->ctx, -EINVAL, "verify signature needs --in FILE and --sig FILE");
        if (!!a.pubkey + !!a.role + !!a.key != 1)
                return fl_err(cli->ctx, -EINVAL,
                              "verify signature needs exactly one key: --pubkey PEM, --keyset FILE --role ROLE, or --key URI");
        if (a.pubkey && a.keyset)
                return fl_err(cli->ctx, -EINVAL, "--pubkey and --keyset exclude each other");
        if (!a.pubkey) {
                /* Secret keys are private objects: a MAC check logs in. Public
                 * keys are found with a keyset's own login rule. */
                r = cli_sign_session(cli, a.keyset, a.key, a.keyset || sign_scheme_is_mac(s), &ss);
                if (r < 0)
                        goto out;
        }
        {
                struct verify_request req = {
                        .in = a.in,
                        .sig = a.sig,
                        .pubkey_path = a.pubkey,
                        .role = a.role,
                        .key_uri = a.key,
                        .scheme = s,
                        .format = f,
                        .is_digest = a.digest,
                        .range = a.range,
                };
                r = sign_verify_file(cli->ctx, ss, &req, &res);
        }
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *jo = result_json("verify signature", a.in, NULL,
                                              a.pubkey ? a.pubkey : a.role ? a.role : a.key, &res);
                json_object_object_add(jo, "sig", json_object_new_string(a.sig));
                json_object_object_add(jo, "valid", json_object_new_boolean(1));
                cli_json_out(jo);
        } else {
                char rt[64];
                printf("signature OK: %s over %s (%s) (%s, key %s)\n", a.sig, a.in, range_text(&res, rt, sizeof(rt)),
                       sign_scheme_name(res.scheme), res.key_fpr);
        }
        r = 0;
out:
        sign_session_close(ss);
        return r;
}
