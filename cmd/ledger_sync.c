/* ledger_sync.c — `fuseline ledger sync` (upload a station's spool to the
 * central ledger) and `fuseline ledger migrate` (move a ledger, verbatim).
 * The work is lib/ledger_sync.c and lib/ledger_migrate.c. */
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "../lib/ledger.h"

enum { OPT_DB = 0x2100, OPT_SPOOL, OPT_FROM, OPT_TO };

/* ---- fuseline ledger sync ------------------------------------------------- */

struct sync_args {
        const char *db, *spool;
};

static const struct argp_option sync_options[] = {
        { "db", OPT_DB, "LOCATION", 0,
          "The central ledger: a postgresql:// URI or a path (default: $FUSELINE_DB, else ./fuseline.db)", 0 },
        { "spool", OPT_SPOOL, "PATH", 0, "The station's spool (default: $FUSELINE_SPOOL)", 0 },
        { 0 }
};

static error_t sync_parse(int key, char *arg, struct argp_state *state)
{
        struct sync_args *a = state->input;

        switch (key) {
        case OPT_DB:
                a->db = arg;
                break;
        case OPT_SPOOL:
                a->spool = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char sync_doc[] =
        "Upload the events a station recorded in its spool while the central ledger was unreachable, oldest "
        "first. Each is appended to the central chain with the proof of where it stood in the spool (details "
        "\"forwarded\": spool id, local seq, local prev hash and hash), results are re-pointed at the central id "
        "of their intent, and device snapshots are applied to the central devices table. Each upload and its "
        "key (spool, seq) commit together, so an interrupted sync loses nothing and a repeated one uploads "
        "nothing twice.\v"
        "The spool's own chain is verified first: a broken spool is refused (exit 5) and nothing is uploaded. "
        "Exit 4 when the central ledger is unreachable (run it again later), 7 when a spooled device fact "
        "conflicts with the central ledger's (the events before it stay uploaded).\n\n"
        "Examples:\n"
        "  fuseline ledger sync --db postgresql:///fuseline --spool /var/lib/fuseline/spool.db\n"
        "  FUSELINE_SPOOL=/var/lib/fuseline/spool.db fuseline ledger sync --json";

static const struct argp sync_argp = { sync_options, sync_parse, NULL, sync_doc, cli_common_children, NULL, NULL };

int cmd_ledger_sync(struct cli *cli, int argc, char **argv)
{
        struct sync_args a = { 0 };
        struct ledger_sync_report rep = { 0 };
        struct ledger *c = NULL, *s = NULL;
        const char *central, *spool;
        struct stat st;
        int r = 0;

        cli_parse(&sync_argp, argc, argv, &a);
        central = ledger_path(a.db);
        spool = a.spool ? a.spool : ledger_spool_default();
        if (!spool)
                return fl_err(cli->ctx, -EINVAL, "ledger sync: no spool named (--spool PATH or $FUSELINE_SPOOL)");
        if (!strcmp(central, spool))
                return fl_err(cli->ctx, -EINVAL, "ledger sync: the spool %s is the central ledger itself", spool);
        if (stat(spool, &st) < 0) {
                /* Never spooled anything: nothing to do (and nothing created). */
                rep.spool_id[0] = 0;
        } else {
                r = ledger_open_direct(cli->ctx, spool, LEDGER_WRITE, &s);
                if (r < 0)
                        goto out;
                r = ledger_spool_pending(s, &(int64_t){ 0 }, &rep.pending);
                if (r < 0)
                        goto out;
                if (rep.pending > 0) {
                        r = ledger_open_central(cli->ctx, central, &c);
                        if (r < 0)
                                goto out;
                        r = ledger_sync(c, s, &rep);
                } else {
                        r = ledger_spool_id(s, rep.spool_id);
                        if (r == -ENOENT)
                                r = 0;
                }
        }
        /* What was uploaded is reported even when a later event failed. */
        if (cli->json) {
                json_object *o = cli_json_result("ledger sync", r >= 0);
                json_object_object_add(o, "db", json_object_new_string(central));
                json_object_object_add(o, "spool", json_object_new_string(spool));
                json_object_object_add(o, "spool_id", rep.spool_id[0] ? json_object_new_string(rep.spool_id) : NULL);
                json_object_object_add(o, "pending", json_object_new_int64(rep.pending));
                json_object_object_add(o, "uploaded", json_object_new_int64(rep.uploaded));
                json_object_object_add(o, "already_uploaded", json_object_new_int64(rep.already));
                json_object_object_add(o, "reconciled", json_object_new_int64(rep.reconciled));
                json_object_object_add(o, "first_event", rep.first_central ? json_object_new_int64(rep.first_central)
                                                                           : NULL);
                json_object_object_add(o, "last_event", rep.last_central ? json_object_new_int64(rep.last_central)
                                                                         : NULL);
                cli_json_out(o);
        } else if (r >= 0 || rep.uploaded || rep.already) {
                printf("spool %s: %lld pending, %lld uploaded", spool, (long long)rep.pending, (long long)rep.uploaded);
                if (rep.uploaded)
                        printf(" (central events %lld..%lld)", (long long)rep.first_central,
                               (long long)rep.last_central);
                if (rep.already)
                        printf(", %lld were there already", (long long)rep.already);
                if (rep.reconciled)
                        printf(", %lld device reconciliation event(s)", (long long)rep.reconciled);
                printf("\n");
        }
out:
        ledger_close(c);
        ledger_close(s);
        return r;
}

/* ---- fuseline ledger migrate ---------------------------------------------- */

struct migrate_args {
        const char *from, *to;
};

static const struct argp_option migrate_options[] = {
        { "from", OPT_FROM, "PATH", 0, "The ledger to copy (a station's SQLite file, or any ledger location)", 0 },
        { "to", OPT_TO, "LOCATION", 0, "Where to: a postgresql:// URI or a path (empty, or holding this chain's "
          "first events from an earlier run)", 0 },
        { 0 }
};

static error_t migrate_parse(int key, char *arg, struct argp_state *state)
{
        struct migrate_args *a = state->input;

        switch (key) {
        case OPT_FROM:
                a->from = arg;
                break;
        case OPT_TO:
                a->to = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->from || !a->to)
                        argp_error(state, "--from and --to are both required");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char migrate_doc[] =
        "Copy a ledger to another location verbatim: every event with its id, bytes and hashes, the devices, "
        "certificates and signed checkpoints, in one transaction; so a factory can start on one station's SQLite "
        "file and move to the central PostgreSQL ledger. The source chain is verified first (exit 5 naming the "
        "bad event, nothing copied) and the target after.\v"
        "The target must be empty, or hold exactly this chain's first events (an earlier run, or a copy that "
        "stopped): then only the rest is copied, so running it again is safe. A target holding anything else "
        "is refused (exit 7).\n\n"
        "Examples:\n"
        "  fuseline ledger migrate --from /var/lib/fuseline/line1.db --to postgresql://ledger.example/fuseline\n"
        "  fuseline ledger migrate --from line1.db --to archive/line1-copy.db --json";

static const struct argp migrate_argp = { migrate_options, migrate_parse, NULL, migrate_doc, cli_common_children,
                                          NULL, NULL };

int cmd_ledger_migrate(struct cli *cli, int argc, char **argv)
{
        struct migrate_args a = { 0 };
        struct ledger_migrate_report rep = { 0 };
        struct ledger *src = NULL, *dst = NULL;
        int r;

        cli_parse(&migrate_argp, argc, argv, &a);
        if (!strcmp(a.from, a.to))
                return fl_err(cli->ctx, -EINVAL, "ledger migrate: --from and --to are the same ledger (%s)", a.from);
        r = ledger_open_direct(cli->ctx, a.from, LEDGER_READ, &src);
        if (r < 0)
                goto out;
        r = ledger_open_direct(cli->ctx, a.to, LEDGER_WRITE, &dst);
        if (r < 0)
                goto out;
        r = ledger_migrate(src, dst, &rep);
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *o = cli_json_result("ledger migrate", true);
                json_object_object_add(o, "from", json_object_new_string(a.from));
                json_object_object_add(o, "to", json_object_new_string(a.to));
                json_object_object_add(o, "events", json_object_new_int64(rep.events));
                json_object_object_add(o, "imported", json_object_new_int64(rep.imported));
                json_object_object_add(o, "devices", json_object_new_int64(rep.devices));
                json_object_object_add(o, "certificates", json_object_new_int64(rep.certificates));
                json_object_object_add(o, "checkpoints", json_object_new_int64(rep.checkpoints));
                cli_json_out(o);
        } else {
                printf("ledger %s -> %s: %lld events, %lld imported now (%lld devices, %lld certificates, %lld "
                       "checkpoints); target verified: PASS\n",
                       a.from, a.to, (long long)rep.events, (long long)rep.imported, (long long)rep.devices,
                       (long long)rep.certificates, (long long)rep.checkpoints);
        }
out:
        ledger_close(dst);
        ledger_close(src);
        return r;
}
