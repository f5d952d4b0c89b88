/* station.c — `fuseline station --config FILE`: the operator's screen for
 * the station loop of lib/station.c (a plain terminal: tmux, a serial
 * console, SSH), or a JSON Lines event stream with --json. The only
 * question ever asked is burn's typed ECID confirmation; no secret is ever
 * shown; Ctrl-C finishes the board in progress, then ends (128+signal). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/proc.h"
#include "../lib/station.h"
#include "cli.h"

enum { O_CONFIG = 0x2700, O_ONCE, O_BOARDS, O_READBACK_DELAY, O_POLL };

struct args {
        const char *config;
        unsigned boards;
        int readback_delay_ms, poll_ms;
};

static const struct argp_option options[] = {
        { "config", O_CONFIG, "FILE", 0, "The station's settings (key = value; see factory-scripts/station.conf.example)",
          0 },
        { "once", O_ONCE, NULL, 0, "Handle one board, then end (as --boards 1)", 0 },
        { "boards", O_BOARDS, "N", 0, "Handle N boards, then end (default: until Ctrl-C / SIGTERM)", 0 },
        { "readback-delay", O_READBACK_DELAY, "MS", OPTION_HIDDEN, NULL, 9 },
        { "poll", O_POLL, "MS", OPTION_HIDDEN, NULL, 9 },
        { 0 }
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
        struct args *a = state->input;
        uint64_t v;

        switch (key) {
        case O_CONFIG:
                a->config = arg;
                break;
        case O_ONCE:
                a->boards = 1;
                break;
        case O_BOARDS:
                if (cli_number(arg, 1000000, &v) < 0 || v == 0)
                        argp_error(state, "--boards '%s': a number from 1 to 1000000", arg);
                a->boards = (unsigned)v;
                break;
        case O_READBACK_DELAY:
                if (cli_number(arg, 600000, &v) < 0)
                        argp_error(state, "--readback-delay '%s': milliseconds", arg);
                a->readback_delay_ms = v ? (int)v : 1;
                break;
        case O_POLL:
                if (cli_number(arg, 60000, &v) < 0 || v < 10)
                        argp_error(state, "--poll '%s': milliseconds, 10 to 60000", arg);
                a->poll_ms = (int)v;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->config)
                        argp_error(state, "--config FILE is required");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char doc[] =
        "The station loop an operator starts once per shift: wait for a board on one of the station's ports, read "
        "its ECID, burn the fuse package (typed ECID confirmation, or none with confirm = yes), read the fuses back, "
        "enrol the device identity certificate, verify it, run the label hook, show a big PASS or FAIL with the "
        "reason, and wait for the next board. Every board ends in a \"station\" ledger event.\v"
        "Examples:\n"
        "  fuseline station --config /etc/fuseline/line1.conf\n"
        "  fuseline station --config station.conf --json\n"
        "  fuseline station --config station.conf --once\n"
        "\n"
        "The PIN comes from --pin-source, $FUSELINE_PIN_FILE or $FUSELINE_PIN: the station never prompts for it. "
        "A token that goes away (or whose PIN is locked), a full disk and a ledger held by another writer stop the "
        "line with a clear screen; it resumes by itself. Ctrl-C (or SIGTERM) finishes the board in progress (a "
        "burn is never abandoned), then ends with 128+signal.\n"
        "With --json: one JSON object per event (JSON Lines; see README \"The station\"), then a summary object.\n"
        "Exit status: 0 every board passed (or was already provisioned); 1 a board failed; 2 bad settings (the "
        "error names file:line:key); 3 token/PIN (a wrong PIN is never retried); 6 confirm = typed without a "
        "terminal; 128+signal when stopped.";

static const struct argp argp = { options, parse_opt, NULL, doc, cli_token_children, NULL, NULL };

/* ---- signals: the board in progress always finishes ----------------------------- */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
        static const char msg[] = "\nfuseline station: stopping after the board in progress (a burn is never "
                                  "abandoned)\n";
        if (!g_stop)
                (void)!write(2, msg, sizeof(msg) - 1);
        g_stop = sig;
}

/* ---- the screen ---------------------------------------------------------------------- */

#define FAILS_KEPT 5

struct port_row {
        char instance[RCM_INSTANCE_MAX];
        char text[160];
};

struct screen {
        struct cli *cli;
        const struct station_conf *c;
        bool tty;
        struct port_row *ports;
        size_t n_ports;
        const char *banner;       /* "PASS", "FAIL", "STOP" or NULL */
        char banner_text[800];
        char fails[FAILS_KEPT][300];
        size_t n_fails;
        char stopped[900];        /* line-stopped reason, "" when running */
        char notes[3][200];       /* ignored ports, dangling intents */
        size_t n_notes;
        unsigned done, passed, failed;
};

/* 5-row block letters made of '#': readable on any terminal, in any colour. */
static const char *glyph(char ch, int row)
{
        static const char *const P[] = { "#### ", "#   #", "#### ", "#    ", "#    " };
        static const char *const A[] = { " ### ", "#   #", "#####", "#   #", "#   #" };
        static const char *const S[] = { " ####", "#    ", " ### ", "    #", "#### " };
        static const char *const F[] = { "#####", "#    ", "#### ", "#    ", "#    " };
        static const char *const I[] = { "#####", "  #  ", "  #  ", "  #  ", "#####" };
        static const char *const L[] = { "#    ", "#    ", "#    ", "#    ", "#####" };
        static const char *const T[] = { "#####", "  #  ", "  #  ", "  #  ", "  #  " };
        static const char *const O[] = { " ### ", "#   #", "#   #", "#   #", " ### " };
        switch (ch) {
        case 'P': return P[row];
        case 'A': return A[row];
        case 'S': return S[row];
        case 'F': return F[row];
        case 'I': return I[row];
        case 'L': return L[row];
        case 'T': return T[row];
        case 'O': return O[row];
        default: return "     ";
        }
}

static void big(FILE *f, const char *word, bool colour)
{
        const char *on = !colour ? "" : !strcmp(word, "PASS") ? "\033[1;32m" : "\033[1;31m";
        for (int row = 0; row < 5; row++) {
                fputs("  ", f);
                fputs(on, f);
                for (const char *w = word; *w; w++) {
                        for (const char *g = glyph(*w, row); *g; g++)
                                fputs(*g == '#' ? "##" : "  ", f);
                        fputs("  ", f);
                }
                fputs(colour ? "\033[0m\n" : "\n", f);
        }
}

static void stamp(char *buf, size_t len)
{
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, len, "%H:%M:%S", &tm);
}

static void draw(struct screen *s)
{
        FILE *f = stdout;
        const struct station_conf *c = s->c;

        if (s->tty)
                fputs("\033[H\033[2J", f);
        else
                fputs("\n========================================================================\n", f);
        fprintf(f, "fuseline station %s   mode %s, confirm %s, enrol %s\n", c->station_id,
                c->mode == STATION_COMMIT ? "COMMIT" : "dry-run", c->confirm == STATION_CONFIRM_YES ? "by MES" : "typed",
                c->enroll == STATION_ENROLL_CSR ? "device CSR" : "key made in the token");
        fprintf(f, "boards this shift: %u   PASS %u   FAIL %u\n\n", s->done, s->passed, s->failed);
        for (size_t i = 0; i < s->n_ports; i++)
                fprintf(f, "  port %-12s %s\n", s->ports[i].instance, s->ports[i].text);
        fputc('\n', f);
        if (*s->stopped) {
                big(f, "STOP", s->tty);
                fprintf(f, "\n  LINE STOPPED: %s\n", s->stopped);
        } else if (s->banner) {
                big(f, s->banner, s->tty);
                fprintf(f, "\n  %s\n", s->banner_text);
        } else {
                fprintf(f, "  waiting for a board on port%s %s…\n", s->n_ports == 1 ? "" : "s",
                        s->n_ports ? s->ports[0].instance : "");
        }
        for (size_t i = 0; i < s->n_notes; i++)
                fprintf(f, "  note: %s\n", s->notes[i]);
        if (s->n_fails) {
                fprintf(f, "\n  last failures:\n");
                for (size_t i = 0; i < s->n_fails; i++)
                        fprintf(f, "    %s\n", s->fails[i]);
        }
        fflush(f);
}

static struct port_row *row_of(struct screen *s, const char *instance)
{
        for (size_t i = 0; instance && i < s->n_ports; i++)
                if (!strcmp(s->ports[i].instance, instance))
                        return &s->ports[i];
        return NULL;
}

static void note(struct screen *s, const char *text)
{
        if (s->n_notes == FL_ARRAY_SIZE(s->notes)) {
                memmove(s->notes[0], s->notes[1], sizeof(s->notes) - sizeof(s->notes[0]));
                s->n_notes--;
        }
        snprintf(s->notes[s->n_notes++], sizeof(s->notes[0]), "%s", text);
}

/* text cut to at most max bytes on a UTF-8 character boundary, with "…"
 * when cut: a socket's status line fits an 80-column terminal. */
static const char *cut(const char *text, size_t max, char *buf, size_t len)
{
        size_t n = strlen(text);

        if (n <= max || max + 4 > len)
                return text;
        n = max;
        while (n && ((unsigned char)text[n] & 0xc0) == 0x80)
                n--;
        snprintf(buf, len, "%.*s…", (int)n, text);
        return buf;
}

static const char *ecid_tail(const char *ecid)
{
        size_t n = ecid ? strlen(ecid) : 0;
        return n >= 6 ? ecid + n - 6 : "(not read)";
}

static const char *ev_name(enum station_ev k)
{
        static const char *const names[] = {
                [STATION_EV_STARTED] = "station-started", [STATION_EV_DANGLING] = "dangling-intents",
                [STATION_EV_WAITING] = "waiting", [STATION_EV_ARRIVED] = "board-arrived",
                [STATION_EV_IGNORED] = "port-ignored", [STATION_EV_STEP] = "step", [STATION_EV_RESULT] = "result",
                [STATION_EV_LINE_STOPPED] = "line-stopped", [STATION_EV_LINE_RESUMED] = "line-resumed",
                [STATION_EV_FINISHED] = "station-finished",
        };
        return names[k];
}

static void add_str(json_object *o, const char *k, const char *v)
{
        if (v)
                json_object_object_add(o, k, json_object_new_string(v));
}

/* JSON Lines: printed and flushed as they happen (a supervising MES reads
 * them live); the summary at the end goes through cli_json_out. */
static void json_event(struct screen *s, const struct station_event *ev)
{
        json_object *o = json_object_new_object();
        char t[32];
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_object_add(o, "event", json_object_new_string(ev_name(ev->kind)));
        json_object_object_add(o, "time", json_object_new_string(t));
        json_object_object_add(o, "station", json_object_new_string(s->c->station_id));
        add_str(o, "instance", ev->instance);
        add_str(o, "module", ev->module);
        add_str(o, "ecid", ev->ecid);
        switch (ev->kind) {
        case STATION_EV_STARTED: {
                json_object *p = json_object_new_array();
                for (size_t i = 0; i < s->n_ports; i++)
                        json_object_array_add(p, json_object_new_string(s->ports[i].instance));
                json_object_object_add(o, "ports", p);
                add_str(o, "mode", ev->reason);
                break;
        }
        case STATION_EV_DANGLING:
                json_object_object_add(o, "count", json_object_new_int((int)ev->count));
                break;
        case STATION_EV_STEP:
                add_str(o, "step", ev->step);
                break;
        case STATION_EV_RESULT:
                add_str(o, "verdict", ev->verdict);
                json_object_object_add(o, "pass", json_object_new_boolean(!strcmp(ev->verdict, "pass") ||
                                                                          !strcmp(ev->verdict, "already-provisioned")));
                add_str(o, "reason", ev->reason);
                add_str(o, "serial", ev->serial);
                add_str(o, "cert", ev->cert);
                add_str(o, "log", ev->log);
                json_object_object_add(o, "elapsed_ms", json_object_new_int64(ev->elapsed_ms));
                __attribute__((fallthrough)); /* the counts */
        case STATION_EV_FINISHED:
                json_object_object_add(o, "boards", json_object_new_int((int)ev->done));
                json_object_object_add(o, "passed", json_object_new_int((int)ev->passed));
                json_object_object_add(o, "failed", json_object_new_int((int)ev->failed));
                break;
        case STATION_EV_LINE_STOPPED:
        case STATION_EV_LINE_RESUMED:
                add_str(o, "reason", ev->reason);
                break;
        default:
                break;
        }
        fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
        fputc('\n', stdout);
        fflush(stdout);
        json_object_put(o);
}

static void on_event(const struct station_event *ev, void *data)
{
        struct screen *s = data;
        struct port_row *row = row_of(s, ev->instance);
        char t[16];
        bool frame = s->tty;

        s->done = ev->done;
        s->passed = ev->passed;
        s->failed = ev->failed;
        if (s->cli->json) {
                json_event(s, ev);
                return;
        }
        stamp(t, sizeof(t));
        switch (ev->kind) {
        case STATION_EV_STARTED:
                frame = true;
                break;
        case STATION_EV_DANGLING: {
                char n[200];
                snprintf(n, sizeof(n), "%u burn(s) left open by an earlier run (oldest: ECID %s): each board is "
                         "read back before anything else is done to it", ev->count, ev->ecid ? ev->ecid : "-");
                note(s, n);
                frame = true;
                break;
        }
        case STATION_EV_WAITING:
                break;
        case STATION_EV_ARRIVED:
                if (row)
                        snprintf(row->text, sizeof(row->text), "BUSY  %s arrived", ev->module);
                if (!s->tty)
                        printf("%s %s: board arrived (%s)\n", t, ev->instance, ev->module);
                break;
        case STATION_EV_IGNORED:
                {
                        char n[200];
                        snprintf(n, sizeof(n), "a board on port %s (%s) is ignored: not one of this station's ports",
                                 ev->instance, ev->module);
                        note(s, n);
                }
                if (!s->tty)
                        printf("%s %s: board ignored: port not one of this station's (%s)\n", t, ev->instance,
                               ev->module);
                break;
        case STATION_EV_STEP:
                if (row)
                        snprintf(row->text, sizeof(row->text), "BUSY  ECID %s%s  %s", ev->ecid ? "…" : "",
                                 ecid_tail(ev->ecid), ev->step);
                if (!s->tty)
                        printf("%s %s: %s%s%s\n", t, ev->instance, ev->step, ev->ecid ? "  ECID " : "",
                               ev->ecid ? ev->ecid : "");
                break;
        case STATION_EV_RESULT: {
                bool pass = strcmp(ev->verdict, "fail") != 0;
                if (!strcmp(ev->verdict, "not-started")) {
                        if (row)
                                snprintf(row->text, sizeof(row->text), "-     not started: %s", ev->reason);
                        if (!s->tty)
                                printf("%s %s: %s\n", t, ev->instance, ev->reason);
                        break;
                }
                s->banner = pass ? "PASS" : "FAIL";
                snprintf(s->banner_text, sizeof(s->banner_text), "%s  port %s  ECID %s%s%s\n  %s", s->banner,
                         ev->instance, ev->ecid ? ev->ecid : "(not read)", ev->serial ? "  serial " : "",
                         ev->serial ? ev->serial : "", ev->reason);
                if (row) {
                        /* The status line: the reason's first clause (the banner has it whole). */
                        char b[64], first[160];
                        snprintf(first, sizeof(first), "%.*s", (int)strcspn(ev->reason, ":("), ev->reason);
                        for (size_t k = strlen(first); k && first[k - 1] == ' '; k--)
                                first[k - 1] = 0;
                        snprintf(row->text, sizeof(row->text), "%s  ECID %s%s  %s", s->banner, ev->ecid ? "…" : "",
                                 ecid_tail(ev->ecid), cut(first, 40, b, sizeof(b)));
                }
                if (!pass) {
                        if (s->n_fails == FAILS_KEPT) {
                                memmove(s->fails[0], s->fails[1], sizeof(s->fails) - sizeof(s->fails[0]));
                                s->n_fails--;
                        }
                        snprintf(s->fails[s->n_fails++], sizeof(s->fails[0]), "%s  %-10s ECID %s\n      %.200s", t,
                                 ev->instance, ev->ecid ? ev->ecid : "(not read)", ev->reason);
                }
                frame = true;
                break;
        }
        case STATION_EV_LINE_STOPPED:
                snprintf(s->stopped, sizeof(s->stopped), "%s", ev->reason);
                frame = true;
                break;
        case STATION_EV_LINE_RESUMED:
                *s->stopped = 0;
                if (!s->tty)
                        printf("%s line resumed: %s\n", t, ev->reason);
                break;
        case STATION_EV_FINISHED:
                break;
        }
        if (frame)
                draw(s);
        fflush(stdout); /* a log or a supervising program sees each line as it happens */
}

static bool confirm_typed(const char *instance, const char *ecid, const char *br_cid, const char *summary, void *data)
{
        (void)data;
        return cli_confirm_ecid(instance, ecid, br_cid, summary);
}

/* The station never prompts for the PIN: one of the non-interactive
 * sources must be set up before the shift starts. */
static int pin_source_check(struct cli *cli)
{
        const char *f = getenv("FUSELINE_PIN_FILE"), *e = getenv("FUSELINE_PIN");

        if (cli->tok.pin_source || (f && *f) || (e && *e) || (cli->tok.uri && strstr(cli->tok.uri, "pin-source=")))
                return 0;
        return fl_err(cli->ctx, -EINVAL, "the station never asks for the PIN: give --pin-source file:PATH or set "
                      "$FUSELINE_PIN_FILE (a file readable only by the station user)");
}

int cmd_station(struct cli *cli, int argc, char **argv)
{
        struct args a = { 0 };
        struct station_conf c;
        struct station_stats st = { 0 };
        struct screen scr;
        struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term, old_hup;
        char **envp = NULL;
        int r;

        memset(&c, 0, sizeof(c));
        memset(&scr, 0, sizeof(scr));
        cli_parse(&argp, argc, argv, &a);
        r = station_conf_load(cli->ctx, a.config, &c);
        if (r < 0)
                return r;
        /* Store and forward: the process's ledger opens may take the spool. */
        if (c.spool)
                ledger_spool_set(c.spool);
        r = pin_source_check(cli);
        if (r < 0)
                goto out;
        if (c.mode == STATION_COMMIT && c.confirm == STATION_CONFIRM_TYPED) {
                int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
                if (fd < 0) {
                        r = fl_err(cli->ctx, -EPERM, "%s: confirm = typed needs an operator at a terminal; use "
                                   "confirm = yes where the MES authorises each burn", a.config);
                        goto out;
                }
                close(fd);
        }
        r = proc_env_scrub(environ, NULL, NULL, &envp);
        if (r < 0)
                goto out;
        scr.cli = cli;
        scr.c = &c;
        scr.tty = isatty(STDOUT_FILENO) && !cli->json;
        scr.n_ports = c.ports.n;
        scr.ports = calloc(c.ports.n ? c.ports.n : 1, sizeof(*scr.ports));
        if (!scr.ports) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < c.ports.n; i++) {
                snprintf(scr.ports[i].instance, sizeof(scr.ports[i].instance), "%s", c.ports.v[i]);
                snprintf(scr.ports[i].text, sizeof(scr.ports[i].text), "-     waiting for a board");
        }
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        {
                struct station_opts o = {
                        .conf = &c, .tok = &cli->tok, .envp = (const char *const *)envp, .confirm = confirm_typed,
                        .on_event = on_event, .event_data = &scr, .stop = &g_stop, .boards = a.boards,
                        .poll_ms = a.poll_ms, .readback_delay_ms = a.readback_delay_ms,
                };
                r = station_run(cli->ctx, &o, &st);
        }
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        if (cli->json) {
                json_object *o = cli_json_result("station", r == 0 && !st.failed && !g_stop);
                json_object_object_add(o, "summary", json_object_new_boolean(1));
                json_object_object_add(o, "boards", json_object_new_int((int)st.done));
                json_object_object_add(o, "passed", json_object_new_int((int)st.passed));
                json_object_object_add(o, "failed", json_object_new_int((int)st.failed));
                json_object_object_add(o, "stopped", json_object_new_boolean(st.stopped));
                cli_json_out(o);
        } else if (r == 0) {
                printf("station %s: %u board%s, %u PASS, %u FAIL%s\n", c.station_id, st.done, st.done == 1 ? "" : "s",
                       st.passed, st.failed, st.stopped ? " (stopped by a signal)" : "");
        }
        if (g_stop) {
                raise(g_stop); /* main's handler records it: exit 128+signal */
                if (r == 0)
                        r = fl_err(cli->ctx, -ECANCELED, "stopped after %u board%s", st.done, st.done == 1 ? "" : "s");
        } else if (r == 0 && st.failed) {
                r = fl_err(cli->ctx, -EIO, "%u of %u board%s failed", st.failed, st.done, st.done == 1 ? "" : "s");
        }
out:
        free(scr.ports);
        proc_env_free(envp);
        station_conf_clear(&c);
        return r;
}
