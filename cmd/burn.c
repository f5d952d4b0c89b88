/* burn.c — `fuseline burn` and `fuseline verify fuses`: the options, the
 * operator's confirmation (typed on the terminal; the library never
 * prompts), the live status table, Ctrl-C that never abandons a burn, and
 * the per-device results (text or JSON Lines). The line itself is
 * lib/burn.c. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../lib/burn.h"
#include "../lib/keyset.h"
#include "../lib/ledger.h"
#include "../lib/proc.h"
#include "../lib/rcm.h"
#include "cli.h"

enum {
        OPT_PACKAGE = 0x2600,
        OPT_PLAN,
        OPT_KEYSET,
        OPT_DEVICE,
        OPT_ALL,
        OPT_JOBS,
        OPT_DRY_RUN,
        OPT_COMMIT,
        OPT_YES,
        OPT_ALLOW_LAB,
        OPT_LOG_DIR,
        OPT_TIMEOUT,
        OPT_PORT,
        OPT_READBACK_DELAY,
        OPT_ACCEPT_UNVERIFIED,
};

#define MAX_DEVICES 64

struct burn_args {
        const char *package, *plan, *keyset, *log_dir;
        const char *devices[MAX_DEVICES + 1];
        size_t n_devices;
        const char *ports[MAX_DEVICES + 1];
        size_t n_ports;
        struct rcm_ports allow;
        bool all, dry_run, commit, yes, allow_lab;
        unsigned jobs;
        int timeout_s;
        int readback_delay_ms;
        bool verify; /* verify fuses */
        uint32_t accept_unverified; /* FUSE_ACCEPT_* */
};

static const struct argp_option burn_options[] = {
        { "package", OPT_PACKAGE, "PKG", 0, "The fuse package (fuseblob.tbz2 from fuse-xml --package, or its directory)", 0 },
        { "plan", OPT_PLAN, "FILE", 0, "The fuse XML the package was made from (checked against the package)", 0 },
        { "keyset", OPT_KEYSET, "FILE", 0, "The keyset manifest the plan was made from", 0 },
        { "device", OPT_DEVICE, "INSTANCE", 0, "A device by tegraflash instance (e.g. 1-2.3); repeatable", 0 },
        { "all", OPT_ALL, NULL, 0, "Every recovery-mode Jetson on the allowed ports", 0 },
        { "jobs", OPT_JOBS, "N", 0, "Devices worked on at once (default 4)", 0 },
        { "dry-run", OPT_DRY_RUN, NULL, 0,
          "Device-side test: the device processes every fuse and burns none (TEST package on T234, burnfuses dummy on "
          "T194); the read-back proves nothing changed", 1 },
        { "commit", OPT_COMMIT, NULL, 0,
          "Burn for real (irreversible), after the operator types the last 6 hex digits of each device's ECID", 1 },
        { "yes", OPT_YES, NULL, 0, "With --commit: no typed confirmation (for the MES)", 1 },
        { "allow-lab-keys", OPT_ALLOW_LAB, NULL, 0, "Let --commit burn a lab keyset's (test) keys", 1 },
        { "port", OPT_PORT, "INSTANCE", 0, "This station's allowed ports (repeatable; default $FUSELINE_PORTS, "
                                            "else any)", 2 },
        { "log-dir", OPT_LOG_DIR, "DIR", 0, "Per-device step logs (default ./fuseline-logs)", 2 },
        { "timeout", OPT_TIMEOUT, "SECONDS", 0, "Longest a tool step may take before it is killed as hung "
                                                "(default 300)", 2 },
        { "accept-unverified", OPT_ACCEPT_UNVERIFIED, "NAME", 0, "Let the plan use an unverified fact: "
          FUSE_ACCEPT_T234_BSI_11_13_NAME " (T234 BootSecurityInfo bits 11 and 13 for the fTPM) [U]", 2 },
        { "readback-delay", OPT_READBACK_DELAY, "MS", OPTION_HIDDEN, NULL, 9 },
        { 0 }
};

static error_t burn_parse(int key, char *arg, struct argp_state *state)
{
        struct burn_args *a = state->input;
        uint64_t v;

        switch (key) {
        case OPT_PACKAGE:
                a->package = arg;
                break;
        case OPT_PLAN:
                a->plan = arg;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_DEVICE:
                if (a->n_devices == MAX_DEVICES)
                        argp_error(state, "at most %d --device options", MAX_DEVICES);
                a->devices[a->n_devices++] = arg;
                break;
        case OPT_PORT:
                if (a->n_ports == MAX_DEVICES)
                        argp_error(state, "at most %d --port options", MAX_DEVICES);
                a->ports[a->n_ports++] = arg;
                break;
        case OPT_ALL:
                a->all = true;
                break;
        case OPT_JOBS:
                if (cli_number(arg, 64, &v) < 0 || v == 0)
                        argp_error(state, "--jobs '%s': a number from 1 to 64", arg);
                a->jobs = (unsigned)v;
                break;
        case OPT_DRY_RUN:
                a->dry_run = true;
                break;
        case OPT_COMMIT:
                a->commit = true;
                break;
        case OPT_YES:
                a->yes = true;
                break;
        case OPT_ALLOW_LAB:
                a->allow_lab = true;
                break;
        case OPT_ACCEPT_UNVERIFIED:
                if (fuse_accept_parse(cli_get()->ctx, arg, &a->accept_unverified) < 0) {
                        fl_err_clear(cli_get()->ctx);
                        argp_error(state, "--accept-unverified '%s': the only acknowledgement is %s", arg,
                                   FUSE_ACCEPT_T234_BSI_11_13_NAME);
                }
                break;
        case OPT_LOG_DIR:
                a->log_dir = arg;
                break;
        case OPT_TIMEOUT:
                if (cli_number(arg, 86400, &v) < 0 || v == 0)
                        argp_error(state, "--timeout '%s': seconds, 1 to 86400", arg);
                a->timeout_s = (int)v;
                break;
        case OPT_READBACK_DELAY:
                if (cli_number(arg, 600000, &v) < 0)
                        argp_error(state, "--readback-delay '%s': milliseconds", arg);
                a->readback_delay_ms = v ? (int)v : 1;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->package || !a->plan || !a->keyset)
                        argp_error(state, "--package, --plan and --keyset are all required");
                if (a->verify) {
                        if (a->n_devices != 1 || a->all)
                                argp_error(state, "verify fuses takes exactly one --device");
                        break;
                }
                if (!a->all == !a->n_devices)
                        argp_error(state, "choose the devices: --device INSTANCE (repeatable) or --all");
                if (a->dry_run && a->commit)
                        argp_error(state, "--dry-run and --commit exclude each other");
                if (a->yes && !a->commit)
                        argp_error(state, "--yes only goes with --commit");
                if (a->allow_lab && !a->commit)
                        argp_error(state, "--allow-lab-keys only goes with --commit");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char burn_doc[] =
        "Burn (or dry-run, or just show) a fuse plan on recovery-mode Jetsons with the BSP's own tools.\v"
        "Without --dry-run or --commit nothing is burned: each device is read and its bit-level diff shown.\n"
        "Every verdict comes from reading the device back, never from what NVIDIA's tools print.\n"
        "\n"
        "Examples:\n"
        "  fuseline burn --package fuseblob.tbz2 --plan fuse.xml --keyset ks.json --all\n"
        "  fuseline burn --package test.tbz2 --plan fuse.xml --keyset ks.json --all --jobs 8 --dry-run\n"
        "  fuseline burn --package fuseblob.tbz2 --plan fuse.xml --keyset ks.json --device 1-2.3 --commit\n"
        "  fuseline burn --package fuseblob.tbz2 --plan fuse.xml --keyset ks.json --all --commit --yes --json\n"
        "\n"
        "Exit status: 0 every device passed (or was already provisioned); 2 bad options, plan or package;\n"
        "4 a device absent, vanished, swapped or hung; 5 the package does not burn the plan, or a read-back\n"
        "disagrees; 6 refused by an interlock (lab keys, package mode, not confirmed, port not allowed);\n"
        "7 a device conflicts with the plan; 1 otherwise. With several devices failing differently: 1.";

static const struct argp burn_argp = { burn_options, burn_parse, NULL, burn_doc, cli_ledger_children, NULL, NULL };

static const char verify_doc[] =
        "Read one device back and compare every planned fuse with the plan.\v"
        "Examples:\n"
        "  fuseline verify fuses --device 1-2.3 --plan fuse.xml --package fuseblob.tbz2 --keyset ks.json\n"
        "\n"
        "Exit status: 0 the device carries the plan; 5 it does not (the per-fuse diff is printed);\n"
        "4 the device is absent or did not answer; 2 bad options, plan or package.";

static const struct argp verify_argp = { burn_options, burn_parse, NULL, verify_doc, cli_ledger_children, NULL, NULL };

/* ---- the operator's screen ---------------------------------------------------- */

/* While devices are worked on, SIGINT/SIGTERM/SIGHUP only stop new devices
 * from starting: a burn in progress is never abandoned, however often the
 * operator presses Ctrl-C (the tools run in process groups of their own, so
 * the terminal's signal never reaches them). Afterwards the signal is handed
 * to main's handler, so the exit status is 128+signal as for every command. */
static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
        static const char msg[] = "\nfuseline: stopping: no new device will be started; burns in progress finish "
                                  "(they are never abandoned)\n";
        if (!g_stop)
                (void)!write(2, msg, sizeof(msg) - 1);
        g_stop = sig;
}

struct screen {
        struct dev_status {
                char instance[32];
                char ecid[8];
                char step[16];
                char line[80];
                long start_ms, end_ms;
        } st[MAX_DEVICES * 2];
        size_t n;        /* rows known */
        bool tty;
        int drawn;       /* rows drawn last time (to move the cursor back) */
        long last_draw;
        bool paused;
        struct cli *cli;
};

static long mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The live table on a terminal: one row per device, redrawn in place. */
static void draw(struct screen *s, bool force)
{
        long now = mono_ms();

        if (!s->tty || s->paused || !s->n || (!force && now - s->last_draw < 200))
                return;
        s->last_draw = now;
        if (s->drawn)
                fprintf(stderr, "\033[%dA", s->drawn);
        fprintf(stderr, "\r\033[K%-12s %-8s %-13s %6s  %s\n", "DEVICE", "ECID", "STEP", "TIME", "LAST TOOL LINE");
        for (size_t i = 0; i < s->n; i++) {
                const struct dev_status *d = &s->st[i];
                long el = d->start_ms ? ((d->end_ms ? d->end_ms : now) - d->start_ms) / 1000 : 0;
                fprintf(stderr, "\033[K%-12s %-8s %-13s %5lds  %.60s\n", d->instance, *d->ecid ? d->ecid : "-",
                        d->step[0] ? d->step : "waiting", el, d->line);
        }
        s->drawn = (int)s->n + 1;
        fflush(stderr);
}

static struct screen g_screen;

static void on_event(size_t idx, const struct burn_device *d, const char *step, const char *line, void *data)
{
        struct screen *s = data;
        struct dev_status *st;

        if (idx >= FL_ARRAY_SIZE(s->st))
                return;
        st = &s->st[idx];
        if (idx >= s->n)
                s->n = idx + 1;
        snprintf(st->instance, sizeof(st->instance), "%s", d->instance);
        if (*d->ecid)
                snprintf(st->ecid, sizeof(st->ecid), "%s", d->ecid + strlen(d->ecid) - 6);
        if (step) {
                snprintf(st->step, sizeof(st->step), "%s", step);
                if (!st->start_ms)
                        st->start_ms = mono_ms();
                st->end_ms = !strcmp(step, "done") || !strcmp(step, "read") ? mono_ms() : 0;
                /* Not a terminal (a log, the MES): one line per step. */
                if (!s->tty && s->cli->verbosity >= 0 && !s->cli->json)
                        fprintf(stderr, "%s: %s\n", d->instance, step);
        }
        if (line && *line)
                snprintf(st->line, sizeof(st->line), "%s", line);
        draw(s, false);
}

/* The typed confirmation: the last 6 hex digits of this device's ECID, on
 * the terminal itself (never stdin: the MES pipes data there). Shared with
 * `fuseline station` (cli.h). */
bool cli_confirm_ecid(const char *instance, const char *ecid, const char *br_cid, const char *summary)
{
        char want[7], got[64] = "";
        FILE *tty = fopen("/dev/tty", "r+");
        size_t n;
        bool ok;

        if (!tty)
                return false;
        snprintf(want, sizeof(want), "%s", ecid + strlen(ecid) - 6);
        fprintf(tty,
                "\nIRREVERSIBLE: burn fuses on %s (BR_CID 0x%s)\n  %s\n"
                "Type the last 6 hex digits of the ECID (…%s) to burn, anything else to skip: ",
                instance, br_cid, summary, want);
        fflush(tty);
        if (!fgets(got, sizeof(got), tty))
                got[0] = 0;
        n = strcspn(got, "\r\n");
        got[n] = 0;
        ok = n == 6 && !strcasecmp(got, want);
        fprintf(tty, ok ? "Confirmed: %s will be burned.\n\n" : "Not confirmed: %s will NOT be burned.\n\n", instance);
        fclose(tty);
        return ok;
}

static bool confirm_tty(const char *instance, const char *ecid, const char *br_cid, const char *summary, void *data)
{
        struct screen *s = data;
        bool ok;

        s->paused = true;
        s->drawn = 0;
        ok = cli_confirm_ecid(instance, ecid, br_cid, summary);
        s->paused = false;
        return ok;
}

static bool confirm_yes(const char *instance, const char *ecid, const char *br_cid, const char *summary, void *data)
{
        (void)instance, (void)ecid, (void)br_cid, (void)summary, (void)data;
        return true;
}

/* ---- results -------------------------------------------------------------- */

static int overall(const struct burn_report *rep)
{
        int first = 0;
        for (size_t i = 0; i < rep->n; i++) {
                int r = rep->v[i].r;
                if (r == 0)
                        continue;
                if (!first)
                        first = r;
                else if (cli_exit_code(first) != cli_exit_code(r))
                        return -EIO; /* failures of different kinds: exit 1 */
        }
        return first;
}

static const char *word(const struct burn_device *d, enum burn_mode mode)
{
        if (d->r == 0)
                return !strcmp(d->verdict, "planned") && mode == BURN_SHOW ? "PLAN" : "PASS";
        if (d->r == -ECANCELED)
                return "SKIPPED";
        return "FAIL";
}

static void print_device(struct cli *cli, const struct burn_device *d, enum burn_mode mode, const char *command)
{
        char msg[sizeof(d->message) + 200]; /* the message and the CLI's words for its hint */

        if (cli->json) {
                json_object *o = cli_json_result(command, d->r == 0);
                json_object_object_add(o, "instance", json_object_new_string(d->instance));
                json_object_object_add(o, "chip", json_object_new_string(d->chip ? chip_name(d->chip) : ""));
                json_object_object_add(o, "module", json_object_new_string(d->module));
                json_object_object_add(o, "ecid", json_object_new_string(d->ecid));
                json_object_object_add(o, "br_cid", json_object_new_string(d->br_cid));
                json_object_object_add(o, "verdict", json_object_new_string(d->verdict ? d->verdict : "unknown"));
                json_object_object_add(o, "message", json_object_new_string(cli_with_hint(d->message, d->hint,
                                                                                          d->hint_value, msg, sizeof(msg))));
                if (d->diff) {
                        json_object_object_add(o, "to_burn", json_object_new_int((int)d->n_burn));
                        json_object_object_add(o, "equal", json_object_new_int((int)d->n_equal));
                        json_object_object_add(o, "conflicts", json_object_new_int((int)d->n_conflict));
                        json_object_object_add(o, "fuses", cli_diff_fuses_json(d->diff));
                }
                if (d->intent_id)
                        json_object_object_add(o, "intent_id", json_object_new_int64(d->intent_id));
                json_object_object_add(o, "resolved_dangling_intent", json_object_new_boolean(d->resolved_dangling));
                json_object_object_add(o, "log", json_object_new_string(d->log));
                json_object_object_add(o, "elapsed_ms", json_object_new_int64(d->elapsed_ms));
                if (d->r)
                        json_object_object_add(o, "exit_code", json_object_new_int(cli_exit_code(d->r)));
                cli_json_out(o);
                return;
        }
        if (mode == BURN_SHOW && d->diff) {
                printf("\n== %s  %s  %s  ECID %s\n", d->instance, chip_name(d->chip), d->module, d->ecid);
                cli_diff_print(d->diff);
        }
        printf("%-7s %-12s %-32s %s\n", word(d, mode), d->instance, *d->ecid ? d->ecid : "-",
               cli_with_hint(d->message, d->hint, d->hint_value, msg, sizeof(msg)));
        if (d->r && *d->log && d->r != -ECANCELED)
                printf("        log: %s\n", d->log);
}

static int run(struct cli *cli, struct burn_args *a)
{
        fl_ctx *ctx = cli->ctx;
        struct keyset *ks = NULL;
        struct ledger *l = NULL;
        struct burn_report rep = { 0 };
        char **envp = NULL;
        const char *command = a->verify ? "verify fuses" : "burn";
        enum burn_mode mode = a->commit ? BURN_COMMIT : a->dry_run ? BURN_DRY_RUN : BURN_SHOW;
        struct sigaction sa = { .sa_handler = on_sigint }, old_int, old_term, old_hup;
        size_t passed = 0, failed = 0, skipped = 0;
        int r;

        /* The station's allow-list: --port, else $FUSELINE_PORTS, else any. */
        for (size_t i = 0; i < a->n_ports; i++) {
                r = rcm_ports_add(ctx, &a->allow, a->ports[i]);
                if (r < 0)
                        goto out;
        }
        if (!a->n_ports && getenv("FUSELINE_PORTS") && *getenv("FUSELINE_PORTS")) {
                r = rcm_ports_parse(ctx, getenv("FUSELINE_PORTS"), &a->allow);
                if (r < 0) {
                        r = fl_err(ctx, r, "$FUSELINE_PORTS: %s", fl_ctx_last_error(ctx));
                        goto out;
                }
        }
        for (size_t i = 0; i < a->n_devices; i++) {
                r = rcm_instance_check(ctx, a->devices[i]);
                if (r < 0)
                        goto out;
        }
        if (mode == BURN_COMMIT && !a->yes && !isatty(STDIN_FILENO)) {
                int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
                if (fd < 0) {
                        r = fl_err(ctx, -EPERM, "--commit needs an operator at a terminal to confirm each device, "
                                   "or --yes (for the MES)");
                        goto out;
                }
                close(fd);
        }
        r = keyset_load(ctx, a->keyset, &ks);
        if (r < 0)
                goto out;
        if (mode != BURN_SHOW) {
                r = ledger_open(ctx, ledger_path(cli_get()->led.db), LEDGER_WRITE, &l);
                if (r < 0)
                        goto out;
        }
        r = proc_env_scrub(environ, NULL, NULL, &envp);
        if (r < 0)
                goto out;
        g_screen.tty = isatty(STDERR_FILENO) && !cli->json && cli->verbosity >= 0;
        g_screen.cli = cli;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        {
                struct burn_opts o = {
                        .mode = mode, .package = a->package, .plan_path = a->plan, .ks = ks,
                        .allow_lab_keys = a->allow_lab, .devices = a->n_devices ? a->devices : NULL, .all = a->all,
                        .ports = &a->allow, .jobs = a->jobs ? a->jobs : 4,
                        .timeout_ms = (a->timeout_s ? a->timeout_s : 300) * 1000,
                        .log_dir = a->log_dir ? a->log_dir : "fuseline-logs", .ledger = l, .station = cli_get()->led.station,
                        .operator = cli_get()->led.operator, .envp = (const char *const *)envp,
                        .confirm = a->yes ? confirm_yes : confirm_tty, .confirm_data = &g_screen,
                        .on_event = on_event, .event_data = &g_screen, .stop = &g_stop,
                        .readback_delay_ms = a->readback_delay_ms, .accept_unverified = a->accept_unverified,
                };
                if (a->verify) {
                        struct burn_device d;
                        memset(&d, 0, sizeof(d));
                        r = burn_verify_device(ctx, &o, a->devices[0], &d);
                        if (r >= 0) {
                                rep.v = calloc(1, sizeof(*rep.v));
                                if (!rep.v) {
                                        fuse_diff_free(d.diff);
                                        r = -ENOMEM;
                                        goto restore;
                                }
                                rep.v[0] = d;
                                rep.n = 1;
                                rep.chip = d.chip;
                        }
                } else {
                        r = burn_run(ctx, &o, &rep);
                }
        }
restore:
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        if (g_stop)
                raise(g_stop); /* main's handler records it: exit 128+signal */
        if (r < 0)
                goto out;
        if (g_screen.drawn) {
                g_screen.paused = false;
                draw(&g_screen, true);
                fputc('\n', stderr);
        }
        for (size_t i = 0; i < rep.n; i++) {
                const struct burn_device *d = &rep.v[i];
                print_device(cli, d, mode, command);
                if (d->r == 0)
                        passed++;
                else if (d->r == -ECANCELED)
                        skipped++;
                else
                        failed++;
        }
        r = overall(&rep);
        if (rep.interrupted && r == 0)
                r = -ECANCELED;
        if (cli->json) {
                if (!a->verify) {
                        json_object *o = cli_json_result(command, r == 0);
                        json_object_object_add(o, "summary", json_object_new_boolean(1));
                        json_object_object_add(o, "mode", json_object_new_string(mode == BURN_COMMIT ? "commit" :
                                                                                 mode == BURN_DRY_RUN ? "dry-run" : "show"));
                        json_object_object_add(o, "devices", json_object_new_int((int)rep.n));
                        json_object_object_add(o, "passed", json_object_new_int((int)passed));
                        json_object_object_add(o, "failed", json_object_new_int((int)failed));
                        json_object_object_add(o, "skipped", json_object_new_int((int)skipped));
                        json_object_object_add(o, "plan_sha256", json_object_new_string(rep.plan_sha256));
                        json_object_object_add(o, "interrupted", json_object_new_boolean(rep.interrupted));
                        cli_json_out(o);
                }
        } else {
                printf("%s: %s (%zu device%s: %zu passed, %zu failed, %zu skipped)\n", command,
                       r == 0 ? "PASS" : "FAIL", rep.n, rep.n == 1 ? "" : "s", passed, failed, skipped);
        }
        if (r < 0) {
                if (r == -ECANCELED)
                        r = fl_err(ctx, -ECANCELED, "interrupted: %zu device%s not started", skipped,
                                   skipped == 1 ? "" : "s");
                else if (rep.n == 1)
                        r = fl_err_hint(ctx, rep.v[0].hint, r, "%s", rep.v[0].message);
                else
                        r = fl_err(ctx, r, "%zu of %zu devices failed", failed + skipped, rep.n);
        }
out:
        burn_report_clear(&rep);
        proc_env_free(envp);
        ledger_close(l);
        keyset_free(ks);
        rcm_ports_clear(&a->allow);
        return r;
}

int cmd_burn(struct cli *cli, int argc, char **argv)
{
        struct burn_args a;

        memset(&a, 0, sizeof(a));
        cli_parse(&burn_argp, argc, argv, &a);
        return run(cli, &a);
}

int cmd_verify_fuses(struct cli *cli, int argc, char **argv)
{
        struct burn_args a;

        memset(&a, 0, sizeof(a));
        a.verify = true;
        cli_parse(&verify_argp, argc, argv, &a);
        return run(cli, &a);
}
