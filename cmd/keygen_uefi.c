/* keygen_uefi.c — `fuseline keygen --uefi` (PK/KEK/db keys in the token,
 * their certificates, and the Jetson flash-time bundle) and `fuseline
 * verify uefi DIR` (checking such a bundle). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/keyset.h"
#include "../lib/uefi.h"
#include "../lib/ledger.h"
#include "../lib/record.h"
#include "cli.h"

enum {
        OPT_UEFI = 0x2100,
        OPT_OUT_DIR,
        OPT_KEY_TYPE,
        OPT_OWNER_GUID,
        OPT_SUBJECT,
        OPT_DAYS,
        OPT_TIMESTAMP,
        OPT_DB_COUNT,
        OPT_KEYSET,
        OPT_NAME,
        OPT_IMPORT_KEYS,
};

struct uefi_args {
        const char *out_dir;
        enum key_type type;
        const char *owner;
        const char *subject;
        unsigned days;
        const char *timestamp;
        unsigned db_count;
        const char *keyset;
        const char *name;
        const char *import_dir;
};

static const struct argp_option uefi_options[] = {
        { "uefi", OPT_UEFI, NULL, 0, "UEFI Secure Boot keys (this mode)", 0 },
        { "out-dir", OPT_OUT_DIR, "DIR", 0, "Bundle directory to create (must not exist, or be empty)", 0 },
        { "key-type", OPT_KEY_TYPE, "TYPE", 0, "rsa2048 (default) or rsa3072", 0 },
        { "owner-guid", OPT_OWNER_GUID, "GUID", 0,
          "SignatureOwner of every list (default: a new random GUID, recorded in the conf and keyset)", 0 },
        { "subject", OPT_SUBJECT, "DN", 0,
          "Base subject, e.g. \"/O=Acme Robotics\"; each CN becomes \"<O or CN> Platform Key\" etc.", 0 },
        { "days", OPT_DAYS, "N", 0, "Certificate validity in days (default 3650)", 0 },
        { "timestamp", OPT_TIMESTAMP, "TIME", 0,
          "EFI_TIME of the .auth files, \"YYYY-MM-DD HH:MM:SS\" UTC (default: now); makes them reproducible", 0 },
        { "db-count", OPT_DB_COUNT, "N", 0, "db signing keys: 1 (default) or 2", 0 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest that gains the uefi-* roles (rewritten atomically)", 0 },
        { "name", OPT_NAME, "PREFIX", 0, "Object label prefix (default: the keyset's name, else fuseline)", 0 },
        { "import-keys", OPT_IMPORT_KEYS, "DIR", 0,
          "Import existing keys instead of generating them: DIR/PK.key, KEK.key, db_1.key (db_2.key), unencrypted "
          "RSA PEM; they become non-extractable token objects (delete the files afterwards)",
          0 },
        { 0 }
};

static unsigned parse_uint(struct argp_state *state, const char *opt, const char *arg, unsigned lo, unsigned hi)
{
        uint64_t v = 0;

        if (cli_number(arg, hi, &v) < 0 || v < lo)
                argp_error(state, "%s '%s': must be a whole number from %u to %u", opt, arg, lo, hi);
        return (unsigned)v;
}

static error_t uefi_parse(int key, char *arg, struct argp_state *state)
{
        struct uefi_args *a = state->input;

        switch (key) {
        case OPT_UEFI:
                break;
        case OPT_OUT_DIR:
                a->out_dir = arg;
                break;
        case OPT_KEY_TYPE:
                if (!strcmp(arg, "rsa2048") || !strcmp(arg, "rsa2k"))
                        a->type = KT_RSA2K;
                else if (!strcmp(arg, "rsa3072") || !strcmp(arg, "rsa3k"))
                        a->type = KT_RSA3K;
                else
                        argp_error(state, "--key-type '%s': use rsa2048 or rsa3072 (UEFI keys are RSA)", arg);
                break;
        case OPT_OWNER_GUID:
                a->owner = arg;
                break;
        case OPT_SUBJECT:
                a->subject = arg;
                break;
        case OPT_DAYS:
                a->days = parse_uint(state, "--days", arg, 1, 36500);
                break;
        case OPT_TIMESTAMP:
                a->timestamp = arg;
                break;
        case OPT_DB_COUNT:
                a->db_count = parse_uint(state, "--db-count", arg, 1, 2);
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_NAME:
                a->name = arg;
                break;
        case OPT_IMPORT_KEYS:
                a->import_dir = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->out_dir)
                        argp_error(state, "--out-dir is required (the bundle directory to create)");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}


static const char uefi_doc[] =
        "Create UEFI Secure Boot keys (PK, KEK, db_1 [, db_2]) inside a PKCS#11 token, a self-signed certificate "
        "for each, and the NVIDIA Jetson (JetPack 6) key bundle.\v"
        "The key pairs are RSA, non-extractable and sensitive; an existing label is a conflict (exit 7). The bundle "
        "directory gets PK/KEK/db_N .crt (PEM) and .der, PK.esl, KEK.esl, db.esl (one owner GUID), the "
        "time-based authenticated variables PK.auth (signed by PK), KEK.auth (by PK), db.auth (by KEK) and "
        "noPK.auth (empty PK, one second later), uefi_keys.conf for flash.sh --uefi-keys, and "
        "UefiDefaultSecurityKeys.dts (+ .dtbo when dtc is installed). With --timestamp every .auth is "
        "byte-identical to `sign-efi-sig-list -t` for the same key, certificate and payload. Nothing is left "
        "behind on failure.\n\n"
        "Examples:\n"
        "  eval \"$(hsm/lab-token.sh)\"\n"
        "  fuseline keygen --uefi --out-dir uefi_keys --subject \"/O=Acme Robotics\"\n"
        "  fuseline keygen --uefi --keyset keyset.json --out-dir uefi_keys --key-type rsa3072 --db-count 2 \\\n"
        "      --owner-guid 11111111-2222-3333-4444-555555555555 --timestamp \"2026-01-01 00:00:00\"\n"
        "  fuseline keygen --uefi --import-keys old_keys --out-dir uefi_keys   # PK.key KEK.key db_1.key → token\n"
        "  sudo ./tools/kernel_flash/l4t_initrd_flash.sh --uefi-keys uefi_keys/uefi_keys.conf …\n"
        "Then: fuseline verify uefi uefi_keys; payloads: fuseline sign --uefi-payload --help.";

static const struct argp uefi_argp = { uefi_options, uefi_parse, NULL, uefi_doc, cli_ledger_token_children, NULL,
                                       NULL };

static const char *const bundle_files[] = { "PK.esl", "KEK.esl", "db.esl", "PK.auth", "KEK.auth", "db.auth",
                                            "noPK.auth", UEFI_CONF_NAME, UEFI_DEFAULT_DTS };

static void print_result(struct cli *cli, const struct uefi_keygen_opts *o, const struct uefi_keygen_result *res)
{
        char g[37], ts[20];

        uefi_guid_format(&o->owner, g);
        uefi_time_format(&o->time, ts);
        if (cli->json) {
                json_object *j = cli_json_result("keygen --uefi", true), *keys = json_object_new_array(),
                            *files = json_object_new_array();
                json_object_object_add(j, "out_dir", json_object_new_string(res->out_dir));
                json_object_object_add(j, "owner_guid", json_object_new_string(g));
                json_object_object_add(j, "timestamp", json_object_new_string(ts));
                json_object_object_add(j, "dtbo", json_object_new_boolean(res->dtbo));
                for (size_t i = 0; i < FL_ARRAY_SIZE(bundle_files); i++)
                        json_object_array_add(files, json_object_new_string(bundle_files[i]));
                if (res->dtbo)
                        json_object_array_add(files, json_object_new_string(UEFI_DEFAULT_DTBO));
                json_object_object_add(j, "files", files);
                for (size_t i = 0; i < res->n_keys; i++) {
                        const struct uefi_keygen_key *k = &res->keys[i];
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "role", json_object_new_string(uefi_role_name(k->role)));
                        json_object_object_add(e, "label", json_object_new_string(k->label));
                        json_object_object_add(e, "type", json_object_new_string(key_type_name(k->type)));
                        json_object_object_add(e, "imported", json_object_new_boolean(k->imported));
                        json_object_object_add(e, "uri", json_object_new_string(k->uri));
                        json_object_object_add(e, "subject", json_object_new_string(k->subject));
                        json_object_object_add(e, "certificate", json_object_new_string(k->cert_path));
                        json_object_object_add(e, "certificate_sha256", json_object_new_string(k->cert_sha256));
                        json_object_object_add(e, "public_key_sha256", json_object_new_string(k->spki_sha256));
                        json_object_array_add(keys, e);
                }
                json_object_object_add(j, "keys", keys);
                if (o->ks_path)
                        json_object_object_add(j, "keyset", json_object_new_string(o->ks_path));
                cli_json_out(j);
                return;
        }
        printf("created UEFI key bundle %s (owner %s, .auth time %s UTC)\n", res->out_dir, g, ts);
        for (size_t i = 0; i < res->n_keys; i++) {
                const struct uefi_keygen_key *k = &res->keys[i];
                printf("  %-9s %-22s %s\n            %s\n", uefi_role_name(k->role), k->label, k->subject, k->uri);
        }
        if (!res->dtbo)
                printf("  note: dtc is not installed; compile %s to %s before flashing\n", UEFI_DEFAULT_DTS,
                       UEFI_DEFAULT_DTBO);
        if (o->ks_path)
                printf("  recorded in %s\n", o->ks_path);
}

/* The bundle on the record: each key's fingerprints and certificate, and
 * the SHA-256 of every file of the bundle (no file holds a private key). */
static int record(struct cli *cli, struct ledger *l, const struct uefi_keygen_opts *o,
                  const struct uefi_keygen_result *res)
{
        json_object *d = json_object_new_object(), *keys = json_object_new_array(), *files = json_object_new_object();
        char g[37], sha[65], done[FL_ERRMSG_MAX];

        uefi_guid_format(&o->owner, g);
        json_object_object_add(d, "mode", json_object_new_string("uefi"));
        json_object_object_add(d, "out_dir", json_object_new_string(res->out_dir));
        json_object_object_add(d, "owner_guid", json_object_new_string(g));
        if (o->ks_path) {
                json_object_object_add(d, "keyset", json_object_new_string(o->ks_path));
                json_object_object_add(d, "keyset_sha256", record_file_sha256(cli->ctx, o->ks_path, sha) == 0
                                                                   ? json_object_new_string(sha) : NULL);
        }
        for (size_t i = 0; i < res->n_keys; i++) {
                const struct uefi_keygen_key *k = &res->keys[i];
                json_object *e = json_object_new_object();
                json_object_object_add(e, "role", json_object_new_string(uefi_role_name(k->role)));
                json_object_object_add(e, "type", json_object_new_string(key_type_name(k->type)));
                json_object_object_add(e, "label", json_object_new_string(k->label));
                json_object_object_add(e, "uri", json_object_new_string(k->uri));
                json_object_object_add(e, "subject", json_object_new_string(k->subject));
                json_object_object_add(e, "public_key_sha256", json_object_new_string(k->spki_sha256));
                json_object_object_add(e, "certificate_sha256", json_object_new_string(k->cert_sha256));
                json_object_object_add(e, "imported", json_object_new_boolean(k->imported));
                json_object_array_add(keys, e);
        }
        json_object_object_add(d, "keys", keys);
        for (size_t i = 0; i <= FL_ARRAY_SIZE(bundle_files); i++) {
                const char *name = i < FL_ARRAY_SIZE(bundle_files) ? bundle_files[i] : res->dtbo ? UEFI_DEFAULT_DTBO
                                                                                                  : NULL;
                char *path = NULL;
                if (!name || asprintf(&path, "%s/%s", res->out_dir, name) < 0)
                        continue;
                if (record_file_sha256(cli->ctx, path, sha) == 0)
                        json_object_object_add(files, name, json_object_new_string(sha));
                free(path);
        }
        fl_err_clear(cli->ctx);
        json_object_object_add(d, "files_sha256", files);
        snprintf(done, sizeof(done), "the UEFI keys were made in the token and the bundle %s was written",
                 res->out_dir);
        return cli_ledger_record(cli, l, "keygen", &d, 1, done, NULL);
}

int cmd_keygen_uefi(struct cli *cli, int argc, char **argv)
{
        struct uefi_args a = { .type = KT_RSA2K, .days = 3650, .db_count = 1 };
        struct uefi_keygen_opts o = { 0 };
        struct uefi_keygen_result res = { 0 };
        struct keyset *ks = NULL;
        fl_token *tok = NULL;
        struct ledger *l = NULL;
        int r;

        cli->cmd = "keygen --uefi";
        cli_parse(&uefi_argp, argc, argv, &a);
        /* A ledger that cannot be written fails before any key is made. */
        r = cli_ledger_open(cli, &l);
        if (r < 0)
                return r;
        if (a.owner) {
                r = uefi_guid_parse(cli->ctx, "--owner-guid", a.owner, &o.owner);
                if (r < 0)
                        goto out;
        } else if (uefi_guid_random(&o.owner) < 0) {
                r = fl_err(cli->ctx, -EIO, "no random bytes for an owner GUID");
                goto out;
        }
        if (a.timestamp) {
                r = uefi_time_parse(cli->ctx, "--timestamp", a.timestamp, &o.time);
                if (r < 0)
                        goto out;
        } else {
                uefi_time_now(&o.time);
        }
        if (a.keyset) {
                r = keyset_load(cli->ctx, a.keyset, &ks);
                if (r < 0)
                        goto out;
                r = keyset_token_open(cli->ctx, ks, &cli->tok, &tok);
        } else {
                struct token_opts t = cli->tok;
                t.login = true;
                r = token_open(cli->ctx, &t, &tok);
        }
        if (r < 0)
                goto out;
        o.out_dir = a.out_dir;
        o.type = a.type;
        o.name = a.name ? a.name : ks && ks->name ? ks->name : "fuseline";
        o.subject = a.subject;
        o.days = a.days;
        o.db_count = a.db_count;
        o.ks = ks;
        o.ks_path = a.keyset;
        o.import_dir = a.import_dir;
        r = uefi_keygen(cli->ctx, tok, &o, &res);
        if (r < 0)
                goto out;
        print_result(cli, &o, &res);
        r = record(cli, l, &o, &res);
out:
        uefi_keygen_result_free(&res);
        token_close(tok);
        keyset_free(ks);
        ledger_close(l);
        return r;
}

/* ---- verify uefi -------------------------------------------------------------- */

struct verify_args {
        const char *dir;
};

static error_t verify_parse(int key, char *arg, struct argp_state *state)
{
        struct verify_args *a = state->input;

        switch (key) {
        case ARGP_KEY_ARG:
                if (a->dir)
                        argp_error(state, "one bundle directory at a time");
                a->dir = arg;
                break;
        case ARGP_KEY_END:
                if (!a->dir)
                        argp_error(state, "which bundle? fuseline verify uefi DIR");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}


static const char verify_doc[] =
        "Check a UEFI key bundle (fuseline keygen --uefi output, or any directory with the same file names): every "
        "ESL and .auth parses with consistent sizes and GUIDs, each .auth carries the right list and is signed by "
        "the right key (PK for PK, KEK and noPK; a KEK for db; update .auth files listed in uefi_keys.conf too), "
        "uefi_keys.conf names files that exist in the directory, and the .dts/.dtbo carry the ESL bytes.\v"
        "Needs no token. Exit 5 when anything is wrong, with one line per problem.\n\n"
        "Examples:\n"
        "  fuseline verify uefi uefi_keys\n"
        "  fuseline verify uefi uefi_keys --json";

static const struct argp verify_argp = { NULL, verify_parse, "DIR", verify_doc, cli_common_children, NULL, NULL };

int cmd_verify_uefi(struct cli *cli, int argc, char **argv)
{
        struct verify_args a = { 0 };
        struct uefi_verify_report rep = { 0 };
        int r;

        cli_parse(&verify_argp, argc, argv, &a);
        r = uefi_verify_bundle(cli->ctx, a.dir, &rep);
        if (r < 0)
                return r;
        if (cli->json) {
                json_object *o = cli_json_result("verify uefi", rep.n_problems == 0);
                json_object_object_add(o, "dir", json_object_new_string(a.dir));
                json_object_object_add(o, "problems", cli_json_strings(rep.problems, rep.n_problems));
                json_object_object_add(o, "checked", cli_json_strings(rep.checked, rep.n_checked));
                json_object_object_add(o, "notes", cli_json_strings(rep.notes, rep.n_notes));
                cli_json_out(o);
        } else {
                for (size_t i = 0; i < rep.n_checked; i++)
                        printf("OK       %s\n", rep.checked[i]);
                for (size_t i = 0; i < rep.n_notes; i++)
                        printf("NOTE     %s\n", rep.notes[i]);
                for (size_t i = 0; i < rep.n_problems; i++)
                        printf("MISMATCH %s\n", rep.problems[i]);
        }
        r = cli_verdict(cli, a.dir, rep.problems, rep.n_problems);
        uefi_verify_report_free(&rep);
        return r;
}
