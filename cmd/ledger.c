/* ledger.c — `fuseline ledger export|show` (reading only: the ledger is
 * opened read-only and never created) and `fuseline verify ledger`. The
 * SQL, the chain and the export formats live in lib/ledger.c. */
#include <string.h>
#include <time.h>


#include "cli.h"
#include "../lib/checkpoint.h"
#include "../lib/keyset.h"
#include "../lib/ledger.h"
#include "../lib/sign.h"

enum { OPT_DB = 0x2000, OPT_SINCE, OPT_ECID, OPT_FORMAT, OPT_KEYSET, OPT_SIGN_WITH, OPT_COMMAND, OPT_SPOOL };


/* ---- fuseline verify ledger ---------------------------------------------- */

struct verify_args {
        const char *db;
        const char *spool;
        const char *keyset;
        const char *sign_with;
};

static const struct argp_option verify_options[] = {
        { "db", OPT_DB, "PATH", 0, "The ledger database (default: $FUSELINE_DB, else ./fuseline.db)", 0 },
        { "keyset", OPT_KEYSET, "FILE", 0,
          "Keyset manifest: every signed checkpoint must be by one of its keys (role and public key)", 0 },
        { "sign-with", OPT_SIGN_WITH, "ROLE", 0,
          "After a passing check, sign the chain head with the keyset's ROLE key in the token and store it "
          "as a checkpoint (the only way this command writes)",
          0 },
        { "spool", OPT_SPOOL, "PATH", 0,
          "Verify this station spool instead: its own chain, and that every event it uploaded is on the --db "
          "ledger as exactly its forwarded copy (when that ledger can be read)",
          0 },
        { 0 }
};

static const struct argp_child verify_children[] = {
        { &cli_token_argp, 0, "Token options (with --sign-with):", 2 },
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

static error_t verify_parse(int key, char *arg, struct argp_state *state)
{
        struct verify_args *a = state->input;

        switch (key) {
        case OPT_DB:
                a->db = arg;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_SIGN_WITH:
                a->sign_with = arg;
                break;
        case OPT_SPOOL:
                a->spool = arg;
                break;
        case ARGP_KEY_END:
                if (a->sign_with && !a->keyset)
                        argp_error(state, "--sign-with needs --keyset (the role's key is looked up there)");
                if (a->sign_with && a->spool)
                        argp_error(state, "--sign-with signs the central ledger's head, not a spool's");
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s' (the database is given with --db)", arg);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char verify_doc[] =
        "Recompute the ledger's hash chain and check it: every event's hash is SHA-256 of the previous hash and "
        "the event's canonical bytes, ids run 1, 2, 3… without gaps, nothing after the last event was removed, "
        "the devices and certificates tables agree with what the events recorded, and the append-only triggers "
        "are in place. Also lists dangling intents: an irreversible step that started and has no result, so the "
        "device's state is unknown (read it back before doing anything else to it).\v"
        "Signed checkpoints (--sign-with) are checked too: the event each one signed must still have the hash "
        "it signed, and the signature must verify; with --keyset the signer must be that keyset's key for the "
        "role. A checkpoint is what catches a history rewritten with every hash recomputed.\n\n"
        "Exit 5 naming the first bad event (edited, deleted, reordered, broken link, truncated, rewritten under "
        "a checkpoint); dangling intents alone do not fail the check. Without --sign-with the database is opened "
        "read-only.\n\n"
        "Examples:\n"
        "  fuseline verify ledger\n"
        "  fuseline verify ledger --db /var/lib/fuseline/line1.db --json\n"
        "  fuseline verify ledger --db postgresql:///fuseline --spool /var/lib/fuseline/spool.db\n"
        "  fuseline verify ledger --keyset keyset.json --sign-with station --pin-source file:/run/fuseline/pin";

static const struct argp verify_argp = { verify_options, verify_parse, NULL, verify_doc, verify_children, NULL,
                                         NULL };

/* The keyset's public keys, as checkpoint signers to trust. */
static int trust_from_keyset(const struct keyset *ks, struct ledger_trust **ret, size_t *ret_n)
{
        struct ledger_trust *t = calloc(ks->n_keys ? ks->n_keys : 1, sizeof(*t));
        size_t n = 0;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < ks->n_keys; i++)
                if (ks->keys[i].public_key_sha256) {
                        t[n].role = ks->keys[i].role;
                        t[n].public_key_sha256 = ks->keys[i].public_key_sha256;
                        n++;
                }
        *ret = t;
        *ret_n = n;
        return 0;
}

static json_object *dangling_json(const struct ledger_dangling *d, size_t n)
{
        json_object *arr = json_object_new_array();

        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(d[i].id));
                json_object_object_add(o, "time", json_object_new_string(d[i].time));
                json_object_object_add(o, "ecid", d[i].ecid[0] ? json_object_new_string(d[i].ecid) : NULL);
                json_object_object_add(o, "command", json_object_new_string(d[i].command));
                json_object_array_add(arr, o);
        }
        return arr;
}

static void print_dangling(const struct ledger_dangling *d, size_t n)
{
        if (n == 0)
                return;
        printf("dangling intents: %zu (device state unknown: read it back before anything else)\n", n);
        for (size_t i = 0; i < n; i++)
                printf("  event %lld  %s  %s  ECID %s\n", (long long)d[i].id, d[i].time, d[i].command,
                       d[i].ecid[0] ? d[i].ecid : "-");
}

int cmd_verify_ledger(struct cli *cli, int argc, char **argv)
{
        struct verify_args a = { 0 };
        struct ledger_report rep = { 0 };
        struct ledger_trust *trust = NULL;
        struct checkpoint_made made = { 0 };
        struct keyset *ks = NULL;
        struct ledger *l = NULL;
        char head[2 * LEDGER_HASH_LEN + 1];
        const char *path;
        size_t n_trust = 0;
        int r;

        cli_parse(&verify_argp, argc, argv, &a);
        path = ledger_path(a.db);
        if (a.keyset) {
                r = keyset_load(cli->ctx, a.keyset, &ks);
                if (r < 0)
                        goto out;
                r = trust_from_keyset(ks, &trust, &n_trust);
                if (r < 0)
                        goto out;
        }
        if (a.spool) {
                struct ledger *central = NULL;
                /* The spool alone is checked when the central ledger cannot be
                 * read now; its uploads are then not cross-checked (said). */
                if (ledger_open_direct(cli->ctx, path, LEDGER_READ, &central) < 0)
                        fprintf(stderr, "fuseline verify ledger: %s cannot be read now: the spool's uploaded events "
                                "are not cross-checked (%s)\n", path, fl_ctx_last_error(cli->ctx));
                path = a.spool;
                r = ledger_open_direct(cli->ctx, path, LEDGER_READ, &l);
                if (r >= 0)
                        r = ledger_spool_verify(l, central, &rep);
                ledger_close(central);
                if (r < 0)
                        goto out;
        } else {
                r = ledger_open(cli->ctx, path, LEDGER_READ, &l);
                if (r < 0)
                        goto out;
                r = ledger_verify_trusted(l, trust, n_trust, &rep);
                if (r < 0)
                        goto out;
        }
        if (a.sign_with && rep.fault == LEDGER_FAULT_NONE) {
                /* Reopened for writing only now: a missing database was
                 * refused above and is never created here. */
                ledger_close(l);
                l = NULL;
                /* Never a spool standing in for it: the head just
                 * verified is this ledger's. */
                r = ledger_open_direct(cli->ctx, path, LEDGER_WRITE, &l);
                if (r < 0)
                        goto out;
                r = checkpoint_sign(cli->ctx, l, path, &rep, ks, a.keyset, a.sign_with, &cli->tok, &made);
                if (r < 0)
                        goto out;
        }
        hex_encode(rep.head, LEDGER_HASH_LEN, head);
        if (cli->json) {
                json_object *o = cli_json_result("verify ledger", rep.fault == LEDGER_FAULT_NONE),
                            *h = json_object_new_object(), *f = NULL;
                json_object_object_add(o, "db", json_object_new_string(path));
                json_object_object_add(o, "schema_version", json_object_new_int(ledger_schema_version(l)));
                json_object_object_add(o, "events", json_object_new_int64((int64_t)rep.events));
                json_object_object_add(h, "id", json_object_new_int64(rep.head_id));
                json_object_object_add(h, "hash", rep.head_id ? json_object_new_string(head) : NULL);
                json_object_object_add(o, "head", h);
                if (rep.fault != LEDGER_FAULT_NONE) {
                        f = json_object_new_object();
                        json_object_object_add(f, "kind", json_object_new_string(ledger_fault_name(rep.fault)));
                        json_object_object_add(f, "event", rep.bad_id ? json_object_new_int64(rep.bad_id) : NULL);
                        json_object_object_add(f, "message", json_object_new_string(rep.message));
                }
                json_object_object_add(o, "fault", f);
                json_object_object_add(o, "dangling_intents", dangling_json(rep.dangling, rep.n_dangling));
                json_object_object_add(o, "checkpoints", json_object_new_int64((int64_t)rep.n_checkpoints));
                json_object_object_add(o, "keyset_checked", json_object_new_boolean(a.keyset != NULL));
                if (made.id) {
                        json_object *c = json_object_new_object();
                        json_object_object_add(c, "id", json_object_new_int64(made.id));
                        json_object_object_add(c, "event", json_object_new_int64(made.event_id));
                        json_object_object_add(c, "role", json_object_new_string(a.sign_with));
                        json_object_object_add(c, "scheme", json_object_new_string(made.scheme));
                        json_object_object_add(c, "public_key_sha256", json_object_new_string(made.key_sha256));
                        /* Enough to check it away from this database: keep
                         * it, and a later rewrite cannot hide (see README). */
                        json_object_object_add(c, "head", json_object_new_string(made.head));
                        json_object_object_add(c, "time", json_object_new_string(made.time));
                        json_object_object_add(c, "signature", json_object_new_string(made.signature));
                        json_object_object_add(o, "checkpoint_added", c);
                }
                cli_json_out(o);
        } else {
                if (rep.fault == LEDGER_FAULT_NONE)
                        printf("ledger %s: %llu events, chain intact%s%s\n", path, (unsigned long long)rep.events,
                               rep.head_id ? ", head sha256:" : "", rep.head_id ? head : "");
                else
                        printf("ledger %s: %s\n", path, rep.message);
                if (rep.n_checkpoints && rep.fault == LEDGER_FAULT_NONE)
                        printf("signed checkpoints: %zu, newest at event %lld by %s%s\n", rep.n_checkpoints,
                               (long long)rep.checkpoint_event, rep.checkpoint_role,
                               a.keyset ? " (keys checked against the keyset)" : " (signatures checked, signers not: give --keyset)");
                if (made.id)
                        printf("checkpoint %lld: event %lld signed by %s (%s, key sha256:%s)\n", (long long)made.id,
                               (long long)made.event_id, a.sign_with, made.scheme, made.key_sha256);
                print_dangling(rep.dangling, rep.n_dangling);
                printf("%s: %s\n", path, rep.fault == LEDGER_FAULT_NONE ? "PASS" : "FAIL");
        }
        if (rep.fault != LEDGER_FAULT_NONE)
                r = fl_err(cli->ctx, -EBADMSG, "ledger %s: %s", path, rep.message);
out:
        ledger_report_clear(&rep);
        ledger_close(l);
        free(trust);
        keyset_free(ks);
        return r;
}

/* ---- fuseline ledger export ---------------------------------------------- */

struct export_args {
        const char *db;
        const char *since;
        const char *ecid;
        const char *format;
        const char *command;
};

static const struct argp_option export_options[] = {
        { "db", OPT_DB, "PATH", 0, "The ledger database (default: $FUSELINE_DB, else ./fuseline.db)", 0 },
        { "since", OPT_SINCE, "TIME", 0,
          "Only events at or after TIME: 2024-05-01, 2024-05-01T12:00:00Z, 2024-05-01T14:00+02:00, @EPOCH, or "
          "an age such as 90m, 24h, 7d, 2w",
          0 },
        { "ecid", OPT_ECID, "ECID", 0, "Only events of this device (32 hex digits)", 0 },
        { "format", OPT_FORMAT, "FORMAT", 0, "jsonl (default: one JSON object per line) or csv (RFC 4180, header)", 0 },
        { "command", OPT_COMMAND, "CMD", 0, "Only events of this command (keygen, fuse-xml, sign, burn, enroll, …)", 0 },
        { 0 }
};

static error_t export_parse(int key, char *arg, struct argp_state *state)
{
        struct export_args *a = state->input;

        switch (key) {
        case OPT_DB:
                a->db = arg;
                break;
        case OPT_SINCE:
                a->since = arg;
                break;
        case OPT_ECID:
                a->ecid = arg;
                break;
        case OPT_COMMAND:
                a->command = arg;
                break;
        case OPT_FORMAT:
                if (strcmp(arg, "jsonl") && strcmp(arg, "csv"))
                        argp_error(state, "--format %s: expected jsonl or csv", arg);
                a->format = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char export_doc[] =
        "Write the ledger's events to stdout for the MES, oldest first: JSON Lines (one object per event, "
        "details embedded as an object, hashes in hex) or CSV (RFC 4180 with a header line; details as its JSON "
        "text). Reads one consistent snapshot; never writes.\v"
        "Columns/keys: id, time, station, operator, command, ecid, kind (record|intent|result), intent_id, "
        "outcome, details, prev_hash, hash. Times are UTC. On an error the exit status is not 0 and the output "
        "is incomplete: check the status before using it.\n\n"
        "Examples:\n"
        "  fuseline ledger export --since 24h > today.jsonl\n"
        "  fuseline ledger export --since 2024-05-01 --format csv > may.csv\n"
        "  fuseline ledger export --ecid 80012344705df1172c0000000d020080 --db line1.db\n"
        "  fuseline ledger export --command sign --since 7d";

static const struct argp export_argp = { export_options, export_parse, NULL, export_doc, cli_common_children, NULL,
                                         NULL };

/* Prefix the library's message with the option it came from. */
static int option_err(struct cli *cli, int r, const char *opt)
{
        char msg[FL_ERRMSG_MAX];

        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(cli->ctx) ? fl_ctx_last_error(cli->ctx) : "invalid");
        return fl_err(cli->ctx, r, "%s: %s", opt, msg);
}

static int cmd_ledger_export(struct cli *cli, int argc, char **argv)
{
        struct export_args a = { 0 };
        struct ledger_filter f = { 0 };
        struct ledger_iter *it = NULL;
        struct ledger *l = NULL;
        const struct ledger_row *row;
        char since[LEDGER_TIME_LEN], ecid[LEDGER_ECID_LEN + 1];
        bool csv;
        int r;

        cli_parse(&export_argp, argc, argv, &a);
        csv = a.format && !strcmp(a.format, "csv");
        if (a.since) {
                r = ledger_time_parse(cli->ctx, a.since, time(NULL), since);
                if (r < 0)
                        return option_err(cli, r, "--since");
                f.since = since;
        }
        if (a.ecid) {
                r = ledger_ecid_parse(cli->ctx, a.ecid, ecid);
                if (r < 0)
                        return option_err(cli, r, "--ecid");
                f.ecid = ecid;
        }
        r = ledger_open(cli->ctx, ledger_path(a.db), LEDGER_READ, &l);
        if (r < 0)
                goto out;
        r = ledger_iter_new(l, &f, &it);
        if (r < 0)
                goto out;
        if (csv)
                printf("%s\r\n", ledger_csv_header());
        while ((r = ledger_iter_next(it, &row)) > 0) {
                if (a.command && strcmp(row->command, a.command))
                        continue;
                if (csv) {
                        char *line = ledger_row_csv(row);
                        if (!line) {
                                r = -ENOMEM;
                                break;
                        }
                        fputs(line, stdout);
                        fputs("\r\n", stdout);
                        free(line);
                } else {
                        json_object *o = ledger_row_json(row);
                        if (!o) {
                                r = -ENOMEM;
                                break;
                        }
                        fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                              stdout);
                        fputc('\n', stdout);
                        json_object_put(o);
                }
        }
        if (fflush(stdout) != 0 || ferror(stdout))
                r = fl_err(cli->ctx, -EIO, "writing the export to stdout failed");
out:
        ledger_iter_free(it);
        ledger_close(l);
        return r < 0 ? r : 0;
}

/* ---- fuseline ledger show ----------------------------------------------- */

struct show_args {
        const char *db;
        const char *ecid;
        const char *command;
        const char *since;
};

static const struct argp_option show_options[] = {
        { "db", OPT_DB, "PATH", 0, "The ledger database (default: $FUSELINE_DB, else ./fuseline.db)", 0 },
        { "command", OPT_COMMAND, "CMD", 0, "Events of this command, with or without a device: key ceremonies "
          "(keygen), plans and packages (fuse-xml), signatures (sign), …; no ECID needed", 0 },
        { "since", OPT_SINCE, "TIME", 0, "With --command: only events at or after TIME (as for ledger export)", 0 },
        { 0 }
};

static error_t show_parse(int key, char *arg, struct argp_state *state)
{
        struct show_args *a = state->input;

        switch (key) {
        case OPT_DB:
                a->db = arg;
                break;
        case OPT_COMMAND:
                a->command = arg;
                break;
        case OPT_SINCE:
                a->since = arg;
                break;
        case ARGP_KEY_ARG:
                if (a->ecid)
                        argp_error(state, "one ECID at a time");
                a->ecid = arg;
                break;
        case ARGP_KEY_END:
                if (!a->ecid && !a->command)
                        argp_error(state, "which device? fuseline ledger show ECID (or --command CMD for events "
                                          "such as keygen, fuse-xml and sign that name no device)");
                if (a->ecid && (a->command || a->since))
                        argp_error(state, "--command/--since list events; give them without an ECID");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char show_doc[] =
        "Everything the ledger knows about one device: its row (chip, module, serial, state, first and last "
        "seen), its certificates, every event that names it, and its dangling intents.\v"
        "An ECID the ledger has never seen is an error (exit 2). The database is opened read-only. "
        "--command CMD instead lists every event of one command, including those that name no device (key "
        "ceremonies, fuse plans and packages, signatures), with their details.\n\n"
        "Examples:\n"
        "  fuseline ledger show 80012344705df1172c0000000d020080\n"
        "  fuseline ledger show 0x80012344705DF1172C0000000D020080 --db line1.db --json\n"
        "  fuseline ledger show --command keygen\n"
        "  fuseline ledger show --command sign --since 24h --json";

static const struct argp show_argp = { show_options, show_parse, "ECID\n--command CMD", show_doc, cli_common_children, NULL, NULL };

/* `ledger show --command CMD`: every event of a command, oldest first,
 * details included (they say what was made: fingerprints and hashes). */
static int show_command(struct cli *cli, const struct show_args *a)
{
        struct ledger_filter f = { 0 };
        struct ledger_iter *it = NULL;
        struct ledger *l = NULL;
        const struct ledger_row *row;
        json_object *events = json_object_new_array();
        char since[LEDGER_TIME_LEN];
        size_t n = 0;
        int r;

        if (a->since) {
                r = ledger_time_parse(cli->ctx, a->since, time(NULL), since);
                if (r < 0) {
                        r = option_err(cli, r, "--since");
                        goto out;
                }
                f.since = since;
        }
        r = ledger_open(cli->ctx, ledger_path(a->db), LEDGER_READ, &l);
        if (r < 0)
                goto out;
        r = ledger_iter_new(l, &f, &it);
        if (r < 0)
                goto out;
        while ((r = ledger_iter_next(it, &row)) > 0) {
                if (strcmp(row->command, a->command))
                        continue;
                n++;
                if (cli->json) {
                        json_object_array_add(events, ledger_row_json(row));
                        continue;
                }
                printf("%-6lld %s  %-8s %-7s %-10s station %s  operator %s%s%s\n       %s\n", (long long)row->id,
                       row->time, row->command, row->kind, row->outcome, row->station, row->operator,
                       row->ecid ? "  ECID " : "", row->ecid ? row->ecid : "", row->details);
        }
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *o = cli_json_result("ledger show", true);
                json_object_object_add(o, "filter_command", json_object_new_string(a->command));
                json_object_object_add(o, "events", events);
                events = NULL;
                cli_json_out(o);
        } else {
                printf("%zu %s event%s\n", n, a->command, n == 1 ? "" : "s");
        }
        r = 0;
out:
        json_object_put(events);
        ledger_iter_free(it);
        ledger_close(l);
        return r;
}

static json_object *jstr_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static int cmd_ledger_show(struct cli *cli, int argc, char **argv)
{
        struct show_args a = { 0 };
        struct ledger_device_info dev = { 0 };
        struct ledger_cert_info *certs = NULL;
        struct ledger_dangling *dang = NULL;
        struct ledger_filter f = { 0 };
        struct ledger_iter *it = NULL;
        struct ledger *l = NULL;
        const struct ledger_row *row;
        json_object *o = NULL, *events = NULL;
        char ecid[LEDGER_ECID_LEN + 1];
        size_t n_certs = 0, n_dang = 0;
        bool have_dev;
        int r;

        cli_parse(&show_argp, argc, argv, &a);
        if (a.command)
                return show_command(cli, &a);
        r = ledger_ecid_parse(cli->ctx, a.ecid, ecid);
        if (r < 0)
                return r;
        r = ledger_open(cli->ctx, ledger_path(a.db), LEDGER_READ, &l);
        if (r < 0)
                goto out;
        r = ledger_device_get(l, ecid, &dev);
        if (r < 0 && r != -ENOENT)
                goto out;
        have_dev = r == 0;
        r = ledger_cert_list(l, ecid, &certs, &n_certs);
        if (r < 0)
                goto out;
        r = ledger_dangling_list(l, ecid, &dang, &n_dang);
        if (r < 0)
                goto out;
        f.ecid = ecid;
        r = ledger_iter_new(l, &f, &it);
        if (r < 0)
                goto out;

        /* Peek, so an unknown ECID fails before anything is printed. */
        r = ledger_iter_next(it, &row);
        if (r < 0)
                goto out;
        if (r == 0 && !have_dev && n_certs == 0) {
                r = fl_err(cli->ctx, -ENOENT, "ledger %s: ECID %s is not in it", ledger_path(a.db), ecid);
                goto out;
        }
        events = json_object_new_array();
        if (!cli->json) {
                printf("ECID %s\n", ecid);
                if (have_dev)
                        printf("  state       %s\n  chip        %s\n  module      %s\n  serial      %s\n"
                               "  first seen  %s\n  last seen   %s\n",
                               dev.state, dev.chip ? dev.chip : "-", dev.module ? dev.module : "-",
                               dev.serial ? dev.serial : "-", dev.first_seen, dev.last_seen);
                else
                        printf("  (no device row: only events name it)\n");
                printf("certificates: %zu\n", n_certs);
                for (size_t i = 0; i < n_certs; i++)
                        printf("  %-10s sha256:%s  serial %s  %s .. %s  issuer %s\n", certs[i].status,
                               certs[i].fingerprint, certs[i].serial, certs[i].not_before, certs[i].not_after,
                               certs[i].issuer);
                printf("events:\n");
        }
        for (; r > 0; r = ledger_iter_next(it, &row)) {
                if (cli->json) {
                        json_object_array_add(events, ledger_row_json(row));
                } else {
                        printf("  %-6lld %s  %-8s %-7s %-10s station %s  operator %s", (long long)row->id, row->time,
                               row->command, row->kind, row->outcome, row->station, row->operator);
                        if (row->intent_id)
                                printf("  (result of %lld)", (long long)row->intent_id);
                        printf("\n");
                }
        }
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *d = NULL, *ca = json_object_new_array();
                if (have_dev) {
                        d = json_object_new_object();
                        json_object_object_add(d, "state", json_object_new_string(dev.state));
                        json_object_object_add(d, "chip", jstr_or_null(dev.chip));
                        json_object_object_add(d, "module", jstr_or_null(dev.module));
                        json_object_object_add(d, "serial", jstr_or_null(dev.serial));
                        json_object_object_add(d, "first_seen", json_object_new_string(dev.first_seen));
                        json_object_object_add(d, "last_seen", json_object_new_string(dev.last_seen));
                }
                for (size_t i = 0; i < n_certs; i++) {
                        json_object *c = json_object_new_object();
                        json_object_object_add(c, "sha256", json_object_new_string(certs[i].fingerprint));
                        json_object_object_add(c, "status", json_object_new_string(certs[i].status));
                        json_object_object_add(c, "serial", json_object_new_string(certs[i].serial));
                        json_object_object_add(c, "issuer", json_object_new_string(certs[i].issuer));
                        json_object_object_add(c, "not_before", json_object_new_string(certs[i].not_before));
                        json_object_object_add(c, "not_after", json_object_new_string(certs[i].not_after));
                        json_object_object_add(c, "added", json_object_new_string(certs[i].added));
                        json_object_array_add(ca, c);
                }
                o = cli_json_result("ledger show", true);
                json_object_object_add(o, "ecid", json_object_new_string(ecid));
                json_object_object_add(o, "device", d);
                json_object_object_add(o, "certificates", ca);
                json_object_object_add(o, "events", events);
                events = NULL;
                json_object_object_add(o, "dangling_intents", dangling_json(dang, n_dang));
                cli_json_out(o);
                o = NULL;
        } else {
                print_dangling(dang, n_dang);
        }
        r = 0;
out:
        json_object_put(o);
        json_object_put(events);
        ledger_iter_free(it);
        free(dang);
        ledger_cert_list_free(certs, n_certs);
        ledger_device_info_clear(&dev);
        ledger_close(l);
        return r;
}

/* ---- dispatch ------------------------------------------------------------- */

static const struct {
        const char *what;
        cmd_fn fn;
        const char *summary;
} verbs[] = {
        { "export", cmd_ledger_export, "events as JSON Lines or CSV for the MES" },
        { "show", cmd_ledger_show, "everything that happened to one device" },
        { "sync", cmd_ledger_sync, "upload a station's spool to the central ledger" },
        { "migrate", cmd_ledger_migrate, "copy a ledger verbatim to another location (e.g. PostgreSQL)" },
};

int cmd_ledger(struct cli *cli, int argc, char **argv)
{
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                FILE *f = argc < 2 ? stderr : stdout;
                fprintf(f, "Usage: fuseline ledger WHAT [OPTIONS]\n\nRead the ledger (export, show never write it); "
                           "move it (sync, migrate).\n\nWHAT:\n");
                for (size_t i = 0; i < FL_ARRAY_SIZE(verbs); i++)
                        fprintf(f, "  %-8s %s\n", verbs[i].what, verbs[i].summary);
                fprintf(f, "\nEach takes --help. The chain itself: fuseline verify ledger.\n"
                           "Database: --db PATH, else $FUSELINE_DB, else ./fuseline.db.\n");
                if (argc < 2)
                        return fl_err(cli->ctx, -EINVAL, "ledger needs a subcommand (see fuseline ledger --help)");
                return 0;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(verbs); i++)
                if (!strcmp(argv[1], verbs[i].what)) {
                        static char name[64];
                        snprintf(name, sizeof(name), "ledger %s", verbs[i].what);
                        cli->cmd = name;
                        /* argp names the program after argv[0]: "fuseline
                         * ledger export", as verify does for its subjects. */
                        {
                                static char prog[80];
                                snprintf(prog, sizeof(prog), "fuseline %s", name);
                                argv[1] = prog;
                        }
                        return verbs[i].fn(cli, argc - 1, argv + 1);
                }
        return fl_err(cli->ctx, -EINVAL, "unknown ledger subcommand '%s' (see fuseline ledger --help)", argv[1]);
}
