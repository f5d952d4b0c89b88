/* cli_ledger.c — the ledger options every recording command shares (--db,
 * --station, --operator: one argp child, so their names, help and defaults
 * cannot drift between commands) and the one way a command that made
 * something (keys, a plan, a package, a signature) puts it on the record. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/keyset.h"
#include "../lib/ledger.h"
#include "../lib/record.h"
#include "cli.h"

enum { OPT_DB = 0x1800, OPT_STATION, OPT_OPERATOR, OPT_SPOOL };

static const struct argp_option ledger_options[] = {
        { "db", OPT_DB, "PATH", 0,
          "The ledger database (default: $FUSELINE_DB, else ./fuseline.db; ekb and ftpm-* record only with --db)",
          -4 },
        { "station", OPT_STATION, "ID", 0,
          "Station recorded with the events (default: $FUSELINE_STATION, else the host name)", -4 },
        { "operator", OPT_OPERATOR, "ID", 0,
          "Operator recorded with the events (default: $FUSELINE_OPERATOR, else the login name)", -4 },
        { "spool", OPT_SPOOL, "PATH", 0,
          "Local spool (SQLite) that records while the central --db is unreachable; `fuseline ledger sync` "
          "uploads it (default: $FUSELINE_SPOOL)", -4 },
        { 0 }
};

static error_t ledger_parse(int key, char *arg, struct argp_state *state)
{
        struct cli *cli = cli_get();

        (void)state;
        switch (key) {
        case OPT_DB:
                cli->led.db = arg;
                break;
        case OPT_STATION:
                cli->led.station = arg;
                break;
        case OPT_OPERATOR:
                cli->led.operator = arg;
                break;
        case OPT_SPOOL:
                ledger_spool_set(arg);
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

const struct argp cli_ledger_argp = { ledger_options, ledger_parse, NULL, NULL, NULL, NULL, NULL };

const struct argp_child cli_ledger_token_children[] = {
        { &cli_ledger_argp, 0, "Ledger options:", 1 },
        { &cli_token_argp, 0, "Token options:", 2 },
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

const struct argp_child cli_ledger_token_force_children[] = {
        { &cli_force_argp, 0, "Output options:", 1 },
        { &cli_ledger_argp, 0, "Ledger options:", 1 },
        { &cli_token_argp, 0, "Token options:", 2 },
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

const struct argp_child cli_ledger_children[] = {
        { &cli_ledger_argp, 0, "Ledger options:", 1 },
        { &cli_common_argp, 0, "General options:", 3 },
        { 0 }
};

int cli_ledger_open(struct cli *cli, struct ledger **ret)
{
        return ledger_open(cli->ctx, ledger_path(cli->led.db), LEDGER_WRITE, ret);
}

int cli_ledger_record(struct cli *cli, struct ledger *l, const char *command, json_object **details, size_t n,
                      const char *done, int64_t *ret_first_id)
{
        struct ledger_event *evs = calloc(n ? n : 1, sizeof(*evs));
        struct ledger_appended *ap = calloc(n ? n : 1, sizeof(*ap));
        json_object *last = cli->json ? cli_json_last() : NULL;
        int r;

        if (n == 0) {
                r = 0;
                goto out;
        }
        if (!evs || !ap) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                evs[i] = (struct ledger_event){ .station = cli->led.station, .operator = cli->led.operator,
                                                .command = command, .kind = LEDGER_RECORD, .outcome = "ok",
                                                .details = details[i] ? json_object_to_json_string_ext(
                                                                                details[i], JSON_C_TO_STRING_PLAIN)
                                                                      : NULL };
        r = n == 1 ? ledger_append(l, &evs[0], &ap[0]) : ledger_append_batch(l, evs, n, ap);
        if (r < 0) {
                char why[FL_ERRMSG_MAX];
                snprintf(why, sizeof(why), "%s", fl_ctx_last_error(cli->ctx) ? fl_ctx_last_error(cli->ctx)
                                                                              : strerror(-r));
                if (last)
                        json_object_object_add(last, "event_id", NULL);
                /* The work cannot be undone (a key exists, a file was
                 * written): say exactly that, so nobody re-runs blindly. */
                r = fl_err(cli->ctx, r, "%s, but it is NOT on the record: the ledger %s could not be written (%s)",
                           done, ledger_path(cli->led.db), why);
                goto out;
        }
        if (last)
                json_object_object_add(last, "event_id", json_object_new_int64(ap[n - 1].id));
        else if (!cli->json && n == 1)
                cli_info("recorded: ledger event %" PRId64 " in %s", ap[0].id, ledger_path(cli->led.db));
        else if (!cli->json && n > 1)
                cli_info("recorded: ledger events %" PRId64 "-%" PRId64 " in %s", ap[0].id, ap[n - 1].id,
                       ledger_path(cli->led.db));
        if (ret_first_id && n)
                *ret_first_id = ap[0].id;
        r = 0;
out:
        for (size_t i = 0; i < n; i++)
                json_object_put(details[i]);
        free(evs);
        free(ap);
        return r;
}

json_object *cli_keyset_event(struct cli *cli, const char *mode, const struct keyset *ks, const char *path,
                              size_t first_key)
{
        json_object *d = json_object_new_object(), *keys = json_object_new_array(), *tok = json_object_new_object();
        char sha[65];

        json_object_object_add(d, "mode", json_object_new_string(mode));
        json_object_object_add(d, "keyset", path ? json_object_new_string(path) : NULL);
        if (path && record_file_sha256(cli->ctx, path, sha) == 0)
                json_object_object_add(d, "keyset_sha256", json_object_new_string(sha));
        else
                json_object_object_add(d, "keyset_sha256", NULL);
        fl_err_clear(cli->ctx);
        json_object_object_add(d, "chip", json_object_new_string(chip_name(ks->chip)));
        json_object_object_add(d, "profile", ks->profile ? json_object_new_string(ks->profile) : NULL);
        json_object_object_add(tok, "label", ks->token_label ? json_object_new_string(ks->token_label) : NULL);
        json_object_object_add(tok, "serial", ks->token_serial ? json_object_new_string(ks->token_serial) : NULL);
        json_object_object_add(d, "token", tok);
        for (size_t i = first_key; i < ks->n_keys; i++)
                json_object_array_add(keys, cli_key_event(&ks->keys[i]));
        json_object_object_add(d, "keys", keys);
        return d;
}

json_object *cli_key_event(const struct ks_key *k)
{
        json_object *o = json_object_new_object(), *v;

        json_object_object_add(o, "role", json_object_new_string(k->role));
        json_object_object_add(o, "type", json_object_new_string(key_type_name(k->type)));
        if (k->label)
                json_object_object_add(o, "label", json_object_new_string(k->label));
        if (k->uri)
                json_object_object_add(o, "uri", json_object_new_string(k->uri));
        /* Fingerprints only: the SPKI SHA-256 of a key pair, the check
         * value of a secret key. */
        if (k->public_key_sha256)
                json_object_object_add(o, "public_key_sha256", json_object_new_string(k->public_key_sha256));
        if (k->tegra_pkc_hash)
                json_object_object_add(o, "tegra_pkc_hash", json_object_new_string(k->tegra_pkc_hash));
        if (k->kcv)
                json_object_object_add(o, "kcv", json_object_new_string(k->kcv));
        if (k->extra && json_object_object_get_ex(k->extra, "certificate_sha256", &v))
                json_object_object_add(o, "certificate_sha256", json_object_get(v));
        json_object_object_add(o, "imported", json_object_new_boolean(k->imported));
        return o;
}
