/* main.c — the command table, the global options, and the one place where
 * library errors become exit statuses (the table in README.md; never
 * reordered once released). */
#include <argp.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fuse_plan.h"
#include "../lib/ledger.h"
#include "../lib/uefi.h"
#include "cli.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILURE_ = 1,
        EXIT_USAGE = 2,
        EXIT_TOKEN = 3,
        EXIT_DEVICE = 4,
        EXIT_MISMATCH = 5,
        EXIT_INTERLOCK = 6,
        EXIT_CONFLICT = 7,
};

static const struct command {
        const char *name;
        cmd_fn fn;
        const char *summary;
} commands[] = {
        { "keygen", cmd_keygen, "create secure-boot keys inside a PKCS#11 token and write a keyset manifest" },
        { "fuse-xml", cmd_fuse_xml, "write genericfuse XML from a keyset, check fuse XML, PKC hashes, diff against readfuses" },
        { "sign", cmd_sign, "sign images (raw/der/pem/tegra) and make fuse-key MACs with token-held keys" },
        { "enroll", cmd_enroll, "issue a device identity certificate (IEEE 802.1AR IDevID) bound to the ECID and record it" },
        { "verify", cmd_verify, "prove things: a keyset, a signature, a UEFI bundle, a device certificate, the ledger" },
        { "devices", cmd_devices, "list the Jetsons in USB recovery mode (instance, chip, module); wait for the next one" },
        { "burn", cmd_burn, "read, diff and (dry-run or commit) burn a fuse plan on recovery-mode Jetsons; verdicts from read-back" },
        { "ekb", cmd_ekb, "build an EKB image (eks_t234.img/eks_t194.img) from a keyset, key chain in the token" },
        { "luks-passphrase", cmd_luks_passphrase, "NVIDIA's LUKS passphrase (generic or per ECID) from the keyset's disk key, in the token" },
        { "ftpm-device", cmd_ftpm_device, "one device's fTPM KDK0 in the token, its Silicon-ID key and per-device fuse plan" },
        { "ftpm-ek-cert", cmd_ftpm_ek_cert, "issue an fTPM EK certificate for an EK CSR with the keyset's EK CA" },
        { "station", cmd_station, "the operator's station loop: wait, burn, verify, enrol, PASS/FAIL, next board (one settings file)" },
        { "ledger", cmd_ledger, "read the manufacturing ledger: export events for the MES, show one device" },
};

static struct cli g_cli;

struct cli *cli_get(void)
{
        return &g_cli;
}

static int exit_code(int r)
{
        if (r >= 0)
                return EXIT_OK;
        switch (-r) {
        case EINVAL:
        case ENOENT:
        case E2BIG:
                return EXIT_USAGE;
        case EACCES:
        case ENXIO:
                return EXIT_TOKEN;
        case ENODEV:
        case ETIMEDOUT:
        case EHOSTUNREACH: /* the central ledger's server */
                return EXIT_DEVICE;
        case EBADMSG:
                return EXIT_MISMATCH;
        case EPERM:
                return EXIT_INTERLOCK;
        case EEXIST:
                return EXIT_CONFLICT;
        default:
                return EXIT_FAILURE_;
        }
}

int cli_exit_code(int r)
{
        return exit_code(r);
}

static void log_to_stderr(int level, const char *msg, void *userdata)
{
        static const char *const names[] = { "error", "warning", "info", "debug" };
        (void)userdata;
        fprintf(stderr, "fuseline: %s: %s\n", names[level < 0 || level > 3 ? 3 : level], msg);
}

/* JSON results: every object but the last is printed as it comes; the last
 * is held until the command returns, so main() can add "exit_code" (and, on
 * failure, "ok": false and "error") to it. One result, one object: the MES
 * never has to merge a result line with a separate error line. */
static json_object *json_pending;
static int stdout_errno; /* why a flush of stdout failed, for close_stdout */

static void json_print(json_object *obj)
{
        const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        fputs(s, stdout);
        fputc('\n', stdout);
        if (fflush(stdout) != 0 && !stdout_errno)
                stdout_errno = errno;
        json_object_put(obj);
}

void cli_json_out(json_object *obj)
{
        if (json_pending)
                json_print(json_pending);
        json_pending = obj;
}

json_object *cli_json_last(void)
{
        return json_pending;
}

void cli_info(const char *fmt, ...)
{
        va_list ap;

        if (g_cli.verbosity < 0)
                return;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- common argp children --------------------------------------------- */

enum { OPT_TOKEN = 0x1000, OPT_MODULE, OPT_PIN_SOURCE, OPT_FORCE };

static const struct argp_option common_options[] = {
        { "json", 'j', NULL, 0, "Print results as JSON (one object per line) on stdout", -1 },
        { "verbose", 'v', NULL, 0, "More diagnostics on stderr (repeat for debug)", -1 },
        { "quiet", 'q', NULL, 0, "Only errors on stderr (the result on stdout is printed all the same)", -1 },
        { NULL, 'h', NULL, OPTION_HIDDEN, "Give this help list (as --help)", -1 },
        { 0 }
};

static error_t common_parse(int key, char *arg, struct argp_state *state)
{
        (void)arg;
        switch (key) {
        case 'j':
                g_cli.json = true;
                break;
        case 'v':
                g_cli.verbosity++;
                fl_ctx_set_log_level(g_cli.ctx, g_cli.verbosity >= 2 ? FL_LOG_DEBUG : FL_LOG_INFO);
                break;
        case 'h':
                argp_state_help(state, state->out_stream, ARGP_HELP_STD_HELP);
                break;
        case 'q':
                g_cli.verbosity = -1;
                fl_ctx_set_log_level(g_cli.ctx, FL_LOG_ERR);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

const struct argp cli_common_argp = { common_options, common_parse, NULL, NULL, NULL, NULL, NULL };

static const struct argp_option token_options[] = {
        { "token", OPT_TOKEN, "URI", 0,
          "PKCS#11 URI of the token (default: $FUSELINE_TOKEN; a keyset's own token may only be narrowed, "
          "never redirected)", -2 },
        { "module", OPT_MODULE, "MODULE", 0,
          "PKCS#11 module: a path or a p11-kit module name (default: all p11-kit modules)", -2 },
        { "pin-source", OPT_PIN_SOURCE, "SRC", 0,
          "Where the user PIN comes from: file:PATH or env:VAR (default: $FUSELINE_PIN_FILE, "
          "$FUSELINE_PIN, else a prompt). Never pass a PIN itself on the command line.", -2 },
        { 0 }
};

static error_t token_parse(int key, char *arg, struct argp_state *state)
{
        (void)state;
        switch (key) {
        case OPT_TOKEN:
                g_cli.token_uri_opt = arg;
                g_cli.tok.uri = arg;
                g_cli.tok.uri_from = "--token";
                break;
        case OPT_MODULE:
                g_cli.tok.module = arg;
                break;
        case OPT_PIN_SOURCE:
                g_cli.tok.pin_source = arg;
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

const struct argp cli_token_argp = { token_options, token_parse, NULL, NULL, NULL, NULL, NULL };

/* --force: the one overwrite rule. A command's output file that exists is
 * refused (exit 7, before anything is done) unless --force is given. */
static const struct argp_option force_options[] = {
        { "force", OPT_FORCE, NULL, 0, "Replace output files that exist (without it: exit 7 before anything is done)",
          -3 },
        { 0 }
};

static error_t force_parse(int key, char *arg, struct argp_state *state)
{
        (void)arg;
        (void)state;
        if (key != OPT_FORCE)
                return ARGP_ERR_UNKNOWN;
        g_cli.force = true;
        return 0;
}

const struct argp cli_force_argp = { force_options, force_parse, NULL, NULL, NULL, NULL, NULL };

const struct argp_child cli_token_force_children[] = {
        { &cli_force_argp, 0, "Output options:", 1 },
        { &cli_token_argp, 0, "Token options:", 2 },
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

int cli_out_check(struct cli *cli, const char *path)
{
        struct stat st;

        /* A directory is not "an existing output": the writer refuses it
         * as bad input (exit 2). */
        if (!path || cli->force || lstat(path, &st) < 0 || S_ISDIR(st.st_mode))
                return 0;
        return fl_err(cli->ctx, -EEXIST, "%s exists already; give --force to replace it", path);
}

const struct argp_child cli_token_children[] = {
        { &cli_token_argp, 0, "Token options:", 2 },
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

const struct argp_child cli_common_children[] = {
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

/* argp exits by itself on a usage error (status 2, message on stderr). With
 * --json the MES still gets its one result object, carrying the reason:
 * while parsing, stderr is a tee that also keeps what argp writes, and
 * on_exit() sees the status while parsing is in progress. */
static bool parsing;
static char usage_msg[512];
static size_t usage_len;

static ssize_t tee_write(void *cookie, const char *buf, size_t len)
{
        FILE *real = cookie;
        size_t room = sizeof(usage_msg) - 1 - usage_len;
        size_t n = len < room ? len : room;

        memcpy(usage_msg + usage_len, buf, n);
        usage_len += n;
        if (fwrite(buf, 1, len, real) != len)
                return -1;
        fflush(real);
        return (ssize_t)len;
}

/* One JSON object for a command line that was refused: the reason is the
 * first line of the usage message without the program name. */
static void print_usage_json(const char *command, const char *reason)
{
        json_object *o = cli_json_result(command, false);
        const char *s;

        json_object_object_add(o, "error", json_object_new_string(reason));
        json_object_object_add(o, "exit_code", json_object_new_int(EXIT_USAGE));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        json_object_put(o);
}

static void usage_exit_json(int status, void *arg)
{
        char prefix[96];
        char *reason = usage_msg, *nl;

        (void)arg;
        if (!parsing || !g_cli.json || status != EXIT_USAGE)
                return;
        usage_msg[usage_len] = 0;
        nl = strchr(reason, '\n');
        if (nl)
                *nl = 0;
        snprintf(prefix, sizeof(prefix), "fuseline %s: ", g_cli.cmd ? g_cli.cmd : "");
        if (!strncmp(reason, prefix, strlen(prefix)))
                reason += strlen(prefix);
        if (!*reason)
                reason = "invalid command line (see --help)";
        print_usage_json(g_cli.cmd ? g_cli.cmd : "", reason);
}

/* Examples in --help are commands to paste: argp wraps its text at column
 * 79 wherever a word ends, which broke them mid-argument. A longer example
 * line is cut here instead, between arguments (never inside quotes), into
 * lines ending in " \" that the shell joins again. */
#define HELP_EXAMPLE_WIDTH 76

static void put_example(FILE *f, const char *line, size_t len)
{
        size_t indent = strspn(line, " "), col = 0, i = indent;
        bool first = true;

        while (i < len) {
                size_t j = i;
                char q = 0;

                for (int part = 0; part < 2; part++) { /* an option and its value stay together */
                        size_t k = j;
                        while (k < len && line[k] == ' ')
                                k++;
                        if (part && (line[i] != '-' || memchr(line + i, '=', j - i) || k >= len ||
                                     line[k] == '-' || line[k] == '\\'))
                                break;
                        j = k;
                        while (j < len && (q || line[j] != ' ')) { /* one argument, quotes kept whole */
                                if (q ? line[j] == q : (line[j] == '\'' || line[j] == '"'))
                                        q = q ? 0 : line[j];
                                j++;
                        }
                }
                if (first) {
                        col = (size_t)fprintf(f, "%.*s%.*s", (int)indent, line, (int)(j - i), line + i);
                        first = false;
                } else if (col + 1 + (j - i) + 2 > HELP_EXAMPLE_WIDTH) {
                        col = (size_t)fprintf(f, " \\\n      %.*s", (int)(j - i), line + i) - 3;
                } else {
                        col += (size_t)fprintf(f, " %.*s", (int)(j - i), line + i);
                }
                while (j < len && line[j] == ' ')
                        j++;
                i = j;
        }
        fputc('\n', f);
}

static char *help_filter(int key, const char *text, void *input)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        (void)input;
        if (key != ARGP_KEY_HELP_POST_DOC || !text)
                return (char *)text;
        f = open_memstream(&buf, &size);
        if (!f)
                return (char *)text;
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                size_t ind = 0;

                while (ind < len && p[ind] == ' ')
                        ind++;
                if (len > HELP_EXAMPLE_WIDTH && ind >= 2 && !strncmp(p + ind, "fuseline ", 9))
                        put_example(f, p, len);
                else if (len > HELP_EXAMPLE_WIDTH && ind >= 4)
                        put_example(f, p, len); /* an example's continuation line */
                else
                        fprintf(f, "%.*s%s", (int)len, p, nl ? "\n" : "");
                p += len + (nl ? 1 : 0);
        }
        if (fclose(f) != 0) {
                free(buf);
                return (char *)text;
        }
        if (size && buf[size - 1] == '\n' && text[strlen(text) - 1] != '\n')
                buf[size - 1] = 0;
        return buf;
}

int cli_parse(const struct argp *argp_in, int argc, char **argv, void *input)
{
        static const cookie_io_functions_t tee_io = { .write = tee_write };
        FILE *real = stderr, *tee;
        struct argp copy = *argp_in;
        const struct argp *argp = &copy;
        int r;

        if (!copy.help_filter)
                copy.help_filter = help_filter;

        argp_err_exit_status = EXIT_USAGE;
        usage_len = 0;
        tee = fopencookie(real, "w", tee_io);
        if (tee) {
                setvbuf(tee, NULL, _IONBF, 0);
                stderr = tee;
        }
        parsing = true;
        r = argp_parse(argp, argc, argv, 0, NULL, input);
        parsing = false;
        if (tee) {
                stderr = real;
                fclose(tee);
        }
        return r;
}

/* ---- process hardening and signals ---------------------------------------- */

/* PINs, fuse keys and the fuse XML pass through this process (and through
 * buffers of OpenSSL, libxml2 and the PKCS#11 module that no wipe reaches):
 * no core dump, ever, and no ptrace by other processes of the same user. */
static void no_core_dumps(void)
{
        struct rlimit rl = { 0, 0 };

        (void)setrlimit(RLIMIT_CORE, &rl);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* SIGINT/SIGTERM/SIGHUP: the first one is recorded and the library, which
 * polls it (fl_ctx_set_interrupt), rolls the running operation back as a
 * failure would; main() then exits 128+signal. A second signal is the
 * operator insisting: the default action, at once. */
static volatile sig_atomic_t g_signal;
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void on_stop_signal(int sig)
{
        if (!g_signal) {
                g_signal = sig;
                return;
        }
        signal(sig, SIG_DFL);
        raise(sig);
}

static void catch_stop_signals(void)
{
        struct sigaction sa = { 0 };

        sa.sa_handler = on_stop_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < FL_ARRAY_SIZE(stop_signals); i++)
                sigaction(stop_signals[i], &sa, NULL);
        fl_ctx_set_interrupt(g_cli.ctx, &g_signal);
}

/* The token lock and the SoftHSM2 configuration come from the environment
 * (the library never reads it): FUSELINE_TOKEN_LOCK = auto (default), off,
 * or a lock file path (then taken for every module). By default the lock
 * sits beside $SOFTHSM2_CONF, which is what the processes sharing a SoftHSM2
 * token have in common. */
static void token_env(struct token_opts *t)
{
        static char path[4096];
        const char *v = getenv("FUSELINE_TOKEN_LOCK");
        const char *conf = getenv("SOFTHSM2_CONF");

        t->softhsm_conf = conf && *conf ? conf : "/etc/softhsm/softhsm2.conf";
        if (conf && *conf) {
                char *c = strdup(conf);
                if (c)
                        snprintf(path, sizeof(path), "%s/fuseline-token.lock", dirname(c));
                free(c);
                t->lock_path = path[0] ? path : NULL;
        }
        if (!v || !*v || !strcmp(v, "auto"))
                return;
        if (!strcmp(v, "off")) {
                t->lock = TOKEN_LOCK_OFF;
                return;
        }
        t->lock = TOKEN_LOCK_ON;
        t->lock_path = v;
}

static const char *signal_name(int sig)
{
        return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "signal";
}

/* A result that did not reach stdout (a full disk, a closed pipe, /dev/full)
 * is a failed run: stdio only reports the failed write when the stream is
 * flushed, so the last check is closing stdout as the process exits —
 * registered first, so it runs after every other exit handler has printed.
 * An exit status that already says failure stands. */
static void close_stdout(int status, void *arg)
{
        bool bad;

        (void)arg;
        bad = ferror(stdout) != 0;
        errno = 0;
        bad |= fclose(stdout) != 0;
        if (!stdout_errno)
                stdout_errno = errno;
        if (bad && status == EXIT_OK) {
                fprintf(stderr, "fuseline: error: writing the result to standard output: %s\n",
                        stdout_errno ? strerror(stdout_errno) : "write error");
                _exit(EXIT_FAILURE_);
        }
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: fuseline [--version] [--help] COMMAND [OPTIONS]\n"
                "\n"
                "Provision NVIDIA Jetson secure boot from a PKCS#11 token.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < FL_ARRAY_SIZE(commands); i++)
                fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
        fprintf(f,
                "\n"
                "Every command takes --help (with examples), --json, -v and -q.\n"
                "Exit status: 0 ok, 1 failure, 2 usage or invalid input, 3 token/PIN, 4 device absent,\n"
                "5 verification mismatch, 6 refused by an interlock, 7 conflict.\n");
}

/* The library's messages name no flag (lib/fuseline.h, enum fl_hint): the
 * CLI says which of its options gives the input an error asks for. */
const char *cli_hint_text(enum fl_hint h)
{
        switch (h) {
        case FL_HINT_NONE: return NULL;
        case FL_HINT_KEYSET: return "use --keyset FILE";
        case FL_HINT_KEYSET_EXISTING: return "use --keyset FILE to add to it";
        case FL_HINT_SIGN_KEY: return "use --role ROLE with --keyset FILE, or --key URI";
        case FL_HINT_SIGN_FILES: return "use --in FILE and --out FILE";
        case FL_HINT_VERIFY_FILES: return "use --in FILE and --sig FILE";
        case FL_HINT_VERIFY_KEY: return "use --pubkey FILE, or --keyset FILE with --role ROLE, or --key URI";
        case FL_HINT_VERIFY_TOKEN_KEY: return "use --keyset FILE with --role ROLE";
        case FL_HINT_DEVICE_KEY: return "use --csr FILE or --generate-key p256|p384";
        case FL_HINT_REISSUE: return "--reissue supersedes it";
        case FL_HINT_TOKEN_LABEL: return "choose another --name";
        case FL_HINT_LAB: return "use --lab for rehearsals";
        case FL_HINT_IMPORT_HEX: return "use --import-hex";
        case FL_HINT_IMPORT_PEM: return "use --import-pem";
        case FL_HINT_IDENTITY_CA: return "create one with fuseline keygen --identity-ca";
        case FL_HINT_IDENTITY_CA_CERT: return "use fuseline keygen --identity-ca --import-cert FILE";
        case FL_HINT_CSR_OUT: return "create it with --csr-out first";
        case FL_HINT_SUBJECT: return "use --subject, e.g. \"/O=Acme/CN=Acme Device CA\"";
        case FL_HINT_OUT_DIR: return "use --out-dir DIR";
        case FL_HINT_NO_SBK: return "use --no-sbk";
        case FL_HINT_OEM_KEYS: return "use --oem-keys";
        case FL_HINT_ACCEPT_BSI_11_13: return "use --accept-unverified=" FUSE_ACCEPT_T234_BSI_11_13_NAME;
        case FL_HINT_BSI_RESERVED: return "make both with fuse-xml --bsi-reserved BITS";
        case FL_HINT_TEST_PACKAGE: return "--test makes the TEST package from it";
        case FL_HINT_FUSE_XML_CHECK: return "all of them: fuseline fuse-xml --check";
        case FL_HINT_ALLOW_LAB_KEYS: return "--allow-lab-keys";
        case FL_HINT_UEFI_APPEND: return "use --append CERT and/or --append-hash SHA256";
        case FL_HINT_SIGN_RANGE: return "given with --offset/--length";
        case FL_HINT_OEM_KEYS_ASKED: return "asked for with --oem-keys";
        case FL_HINT_REVOCATION_ASKED: return "asked for with --revocation";
        case FL_HINT_FTPM_ASKED: return "asked for with --ftpm";
        case FL_HINT_ODM_ASKED: return "given with --odm-reserved/--odm-id/--odm-lock";
        case FL_HINT_DIGEST_ASKED: return "asked for with --digest";
        case FL_HINT_SCHEME_ASKED: return "given with --scheme";
        case FL_HINT_FORMAT_ASKED: return "given with --format";
        case FL_HINT_EKB_KEY: return "add it with fuseline keygen --keyset FILE --ROLE, or --import-hex FILE --role ROLE";
        }
        return NULL;
}

const char *cli_with_hint(const char *text, enum fl_hint h, uint32_t value, char *buf, size_t len)
{
        const char *hint = cli_hint_text(h);

        if (!hint)
                return text;
        if (h == FL_HINT_BSI_RESERVED && value)
                snprintf(buf, len, "%s (make both with fuse-xml --bsi-reserved 0x%x)", text, value);
        else
                snprintf(buf, len, "%s (%s)", text, hint);
        return buf;
}

int main(int argc, char **argv)
{
        const struct command *cmd = NULL;
        int r;

        on_exit(close_stdout, NULL);
        /* --json anywhere counts, even for an error met before parsing. */
        for (int i = 1; i < argc; i++)
                if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
                        g_cli.json = true;
        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        /* "fuseline help CMD [SUBJECT]" is "fuseline CMD [SUBJECT] --help". */
        if (!strcmp(argv[1], "help") && argc >= 3 && argc <= 4) {
                static char help_opt[] = "--help";
                static char *hargv[6];
                int n = 0;

                hargv[n++] = argv[0];
                for (int i = 2; i < argc; i++)
                        hargv[n++] = argv[i];
                hargv[n++] = help_opt;
                hargv[n] = NULL;
                argv = hargv; /* as many arguments as before */
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return EXIT_OK;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
                printf("fuseline %s\n", fl_version());
                return EXIT_OK;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(commands); i++)
                if (!strcmp(argv[1], commands[i].name))
                        cmd = &commands[i];
        if (!cmd) {
                char msg[160];

                snprintf(msg, sizeof(msg), "%s '%.64s' (see fuseline --help)",
                         argv[1][0] == '-' ? "a command comes first, not the option" : "unknown command", argv[1]);
                fprintf(stderr, "fuseline: %s\n", msg);
                if (g_cli.json)
                        print_usage_json("", msg);
                return EXIT_USAGE;
        }

        r = fl_ctx_new(&g_cli.ctx);
        if (r < 0) {
                fprintf(stderr, "fuseline: out of memory\n");
                return EXIT_FAILURE_;
        }
        no_core_dumps();
        fl_ctx_set_log(g_cli.ctx, log_to_stderr, NULL);
        catch_stop_signals();
        on_exit(usage_exit_json, NULL);
        g_cli.cmd = cmd->name;
        g_cli.tok.uri = getenv("FUSELINE_TOKEN");
        g_cli.tok.uri_from = "$FUSELINE_TOKEN";
        g_cli.tok.module_default = getenv("FUSELINE_MODULE");
        g_cli.tok.pin_cb = cli_pin;
        /* The library reads no environment: what it defaults to comes from here. */
        ledger_defaults_set(getenv("FUSELINE_DB"), getenv("FUSELINE_STATION"), getenv("FUSELINE_OPERATOR"));
        ledger_spool_set(getenv("FUSELINE_SPOOL"));
        uefi_dtc_set_program(getenv("FUSELINE_DTC"));
        token_env(&g_cli.tok);

        /* argp names the program after argv[0]: make it "fuseline CMD". */
        {
                static char prog[64];
                snprintf(prog, sizeof(prog), "fuseline %s", cmd->name);
                argv[1] = prog;
        }
        r = cmd->fn(&g_cli, argc - 1, argv + 1);
        if (g_signal && r >= 0)
                fprintf(stderr, "fuseline %s: %s arrived after the work was complete: the result stands\n",
                        g_cli.cmd, signal_name(g_signal));
        if (r < 0) {
                static char full[FL_ERRMSG_MAX + 160];
                const char *msg = fl_ctx_last_error(g_cli.ctx);
                if (!msg)
                        msg = strerror(-r);
                msg = cli_with_hint(msg, fl_ctx_last_hint(g_cli.ctx), 0, full, sizeof(full));
                fprintf(stderr, "fuseline %s: error: %s\n", g_cli.cmd, msg);
                if (g_cli.json) {
                        json_object *o = json_pending;
                        if (!o) {
                                o = json_object_new_object();
                                json_object_object_add(o, "command", json_object_new_string(g_cli.cmd));
                        }
                        json_object_object_add(o, "ok", json_object_new_boolean(0));
                        json_object_object_add(o, "error", json_object_new_string(msg));
                        if (g_signal)
                                json_object_object_add(o, "interrupted",
                                                       json_object_new_string(signal_name(g_signal)));
                        json_pending = o;
                }
        }
        /* Interrupted: whatever the operation failed with, it was rolled
         * back because of the signal; the shell convention says which. */
        {
                int code = r < 0 && g_signal ? 128 + g_signal : exit_code(r);
                if (json_pending) {
                        json_object_object_add(json_pending, "exit_code", json_object_new_int(code));
                        json_print(json_pending);
                        json_pending = NULL;
                }
                fl_ctx_free(g_cli.ctx);
                return code;
        }
}
