/* ledger-writer.c — a test-only writer for the ledger (built for the test
 * suite, never installed): appends events through lib/ledger the way burn
 * and enroll will, so the shell tests and benchmarks can drive concurrency,
 * crashes, full disks and big databases before those commands exist.
 *
 *   ledger-writer --db PATH [--count N] [--batch N] [--tag T] [--ecid HEX | --ecids K]
 *                 [--kind record|intent|result|pair] [--intent-id N] [--outcome O]
 *                 [--state S] [--serial S] [--chip C] [--cert FILE.der] [--supersede]
 *                 [--pad BYTES] [--time T] [--details JSON] [--fsize-limit BYTES] [--quiet]
 *                 [--spool PATH] [--busy-ms MS]
 *
 * Prints "ID HASH" per appended event unless --quiet. Every event's details
 * carry {"writer":T,"seq":i,"pad":"…","check":hex(SHA-256(T ":" i ":" pad))}
 * so a test can tell a whole event from a torn one without this code.
 * Exit: 0 ok, 2 invalid, 5 mismatch, 7 conflict, 1 anything else. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/evp.h>

#include "ledger.h"

static void log_stderr(int level, const char *msg, void *data)
{
        (void)data;
        (void)level;
        fprintf(stderr, "ledger-writer: %s\n", msg);
}

static int exit_code(int r)
{
        switch (-r) {
        case 0:
                return 0;
        case EINVAL:
        case ENOENT:
                return 2;
        case EACCES:
                return 3;
        case EHOSTUNREACH:
                return 4;
        case EBADMSG:
                return 5;
        case EEXIST:
                return 7;
        default:
                return 1;
        }
}

static unsigned char *read_all(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        unsigned char *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n);
                if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                        free(buf);
                        buf = NULL;
                }
                *ret_len = (size_t)n;
        }
        fclose(f);
        return buf;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "db", required_argument, NULL, 'd' },         { "count", required_argument, NULL, 'n' },
                { "batch", required_argument, NULL, 'b' },      { "tag", required_argument, NULL, 't' },
                { "ecid", required_argument, NULL, 'e' },       { "ecids", required_argument, NULL, 'E' },
                { "kind", required_argument, NULL, 'k' },       { "intent-id", required_argument, NULL, 'i' },
                { "outcome", required_argument, NULL, 'o' },    { "state", required_argument, NULL, 's' },
                { "serial", required_argument, NULL, 'S' },     { "chip", required_argument, NULL, 'c' },
                { "cert", required_argument, NULL, 'C' },       { "supersede", no_argument, NULL, 'U' },
                { "pad", required_argument, NULL, 'p' },        { "time", required_argument, NULL, 'T' },
                { "details", required_argument, NULL, 'D' },    { "fsize-limit", required_argument, NULL, 'F' },
                { "quiet", no_argument, NULL, 'q' },            { "command", required_argument, NULL, 'm' },
                { "spool", required_argument, NULL, 'P' },      { "busy-ms", required_argument, NULL, 'B' },
                { 0 }
        };
        const char *db = NULL, *tag = "w", *ecid_opt = NULL, *kind = "record", *outcome = "ok", *state = NULL;
        const char *serial = NULL, *chip = NULL, *cert_path = NULL, *time_opt = NULL, *details_opt = NULL;
        const char *command = "test";
        long count = 1, batch = 1, ecids = 0, pad = 0, intent_id = 0, fsize = 0, busy_ms = 0;
        bool supersede = false, quiet = false;
        struct ledger_event *evs = NULL;
        struct ledger_appended *outs = NULL;
        struct ledger_device dev = { 0 };
        struct ledger_cert cert = { 0 };
        unsigned char *der = NULL;
        char **details = NULL, (*ecidbuf)[LEDGER_ECID_LEN + 1] = NULL, *padbuf = NULL;
        struct ledger *l = NULL;
        fl_ctx *ctx = NULL;
        int c, r;

        /* A caller of the library, as the CLI is: the environment's defaults
         * are handed in (the library reads none). */
        ledger_defaults_set(getenv("FUSELINE_DB"), getenv("FUSELINE_STATION"), getenv("FUSELINE_OPERATOR"));
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'd': db = optarg; break;
                case 'n': count = strtol(optarg, NULL, 10); break;
                case 'b': batch = strtol(optarg, NULL, 10); break;
                case 't': tag = optarg; break;
                case 'e': ecid_opt = optarg; break;
                case 'E': ecids = strtol(optarg, NULL, 10); break;
                case 'k': kind = optarg; break;
                case 'i': intent_id = strtol(optarg, NULL, 10); break;
                case 'o': outcome = optarg; break;
                case 's': state = optarg; break;
                case 'S': serial = optarg; break;
                case 'c': chip = optarg; break;
                case 'C': cert_path = optarg; break;
                case 'U': supersede = true; break;
                case 'p': pad = strtol(optarg, NULL, 10); break;
                case 'T': time_opt = optarg; break;
                case 'D': details_opt = optarg; break;
                case 'F': fsize = strtol(optarg, NULL, 10); break;
                case 'q': quiet = true; break;
                case 'm': command = optarg; break;
                case 'P': ledger_spool_set(optarg); break;
                case 'B': busy_ms = strtol(optarg, NULL, 10); break;
                default: return 2;
                }
        }
        if (count < 1 || batch < 1 || pad < 0 || pad > 200000) {
                fprintf(stderr, "ledger-writer: bad --count/--batch/--pad\n");
                return 2;
        }
        if (fsize > 0) {
                /* A "full disk": writes past this size fail with EFBIG. */
                struct rlimit rl = { (rlim_t)fsize, (rlim_t)fsize };
                signal(SIGXFSZ, SIG_IGN);
                if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
                        perror("setrlimit");
                        return 1;
                }
        }
        if (fl_ctx_new(&ctx) < 0)
                return 1;
        fl_ctx_set_log(ctx, log_stderr, NULL);
        srand((unsigned)getpid());

        if (cert_path) {
                der = read_all(cert_path, &cert.der_len);
                if (!der) {
                        fprintf(stderr, "ledger-writer: cannot read %s\n", cert_path);
                        r = -EINVAL;
                        goto out;
                }
                cert.der = der;
                cert.supersede = supersede;
        }
        if (state || serial || chip) {
                dev.state = state ? ledger_state_from_name(state) : LEDGER_STATE_KEEP;
                dev.serial = serial;
                dev.chip = chip ? chip_from_name(chip) : FL_CHIP_NONE;
        }

        evs = calloc((size_t)batch, sizeof(*evs));
        outs = calloc((size_t)batch, sizeof(*outs));
        details = calloc((size_t)batch, sizeof(*details));
        ecidbuf = calloc((size_t)batch, sizeof(*ecidbuf));
        padbuf = malloc((size_t)pad + 1);
        if (!evs || !outs || !details || !ecidbuf || !padbuf) {
                r = -ENOMEM;
                goto out;
        }
        for (long i = 0; i < pad; i++)
                padbuf[i] = (char)('a' + i % 26);
        padbuf[pad] = 0;

        r = ledger_open(ctx, db, LEDGER_WRITE, &l);
        if (r < 0)
                goto out;
        if (busy_ms > 0)
                ledger_set_busy_timeout(l, (unsigned)busy_ms);

        for (long done = 0; done < count;) {
                long n = count - done < batch ? count - done : batch;
                bool pair = !strcmp(kind, "pair");
                for (long j = 0; j < n; j++) {
                        long seq = done + j;
                        struct ledger_event *ev = &evs[j];
                        unsigned char md[32];
                        char chk[65], *msg = NULL;

                        memset(ev, 0, sizeof(*ev));
                        free(details[j]);
                        details[j] = NULL;
                        if (asprintf(&msg, "%s:%ld:%s", tag, seq, padbuf) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        EVP_Digest(msg, strlen(msg), md, NULL, EVP_sha256(), NULL);
                        free(msg);
                        hex_encode(md, sizeof(md), chk);
                        if (details_opt)
                                details[j] = strdup(details_opt);
                        else if (asprintf(&details[j], "{\"writer\":\"%s\",\"seq\":%ld,\"pad\":\"%s\",\"check\":\"%s\"}",
                                          tag, seq, padbuf, chk) < 0)
                                details[j] = NULL;
                        if (!details[j]) {
                                r = -ENOMEM;
                                goto out;
                        }
                        if (ecids > 0)
                                snprintf(ecidbuf[j], sizeof(ecidbuf[j]), "%032lx", (seq % ecids) + 1);
                        ev->time = time_opt;
                        ev->command = command;
                        ev->ecid = ecid_opt ? ecid_opt : ecids > 0 ? ecidbuf[j] : NULL;
                        ev->outcome = outcome;
                        ev->details = details[j];
                        ev->kind = !strcmp(kind, "intent") || pair ? LEDGER_INTENT
                                   : !strcmp(kind, "result")       ? LEDGER_RESULT
                                                                   : LEDGER_RECORD;
                        ev->intent_id = ev->kind == LEDGER_RESULT ? intent_id : 0;
                        if (state || serial || chip)
                                ev->device = &dev;
                        if (cert_path)
                                ev->cert = &cert;
                }
                if (pair) {
                        /* intent, then its result, each its own transaction */
                        for (long j = 0; j < n; j++) {
                                struct ledger_event res = evs[j];
                                r = ledger_append(l, &evs[j], &outs[0]);
                                if (r < 0)
                                        goto out;
                                res.kind = LEDGER_RESULT;
                                res.intent_id = outs[0].id;
                                res.details = NULL;
                                if (!quiet)
                                        printf("%lld %s\n", (long long)outs[0].id, "intent");
                                r = ledger_append(l, &res, &outs[0]);
                                if (r < 0)
                                        goto out;
                                if (!quiet)
                                        printf("%lld %s\n", (long long)outs[0].id, "result");
                        }
                } else {
                        r = ledger_append_batch(l, evs, (size_t)n, outs);
                        if (r < 0)
                                goto out;
                        for (long j = 0; j < n && !quiet; j++) {
                                char h[65];
                                hex_encode(outs[j].hash, sizeof(outs[j].hash), h);
                                printf("%lld %s\n", (long long)outs[j].id, h);
                        }
                }
                if (!quiet)
                        fflush(stdout);
                done += n;
        }
        r = 0;
out:
        if (r < 0 && fl_ctx_last_error(ctx))
                fprintf(stderr, "ledger-writer: error: %s\n", fl_ctx_last_error(ctx));
        ledger_close(l);
        for (long j = 0; details && j < batch; j++)
                free(details[j]);
        free(details);
        free(ecidbuf);
        free(padbuf);
        free(evs);
        free(outs);
        free(der);
        fl_ctx_free(ctx);
        return exit_code(r);
}
