/* keygen.c — `fuseline keygen` (secure-boot keys of a product inside the
 * token, plus imports of keys made elsewhere) and `fuseline verify keyset`.
 * Other keygen modes (--uefi, --identity-ca) live in their own files and are
 * dispatched from here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include <p11-kit/pkcs11.h>

#include "../lib/keygen.h"
#include "../lib/keyset.h"
#include "../lib/ledger.h"
#include "../lib/tegra_key.h"
#include "cli.h"

enum {
        OPT_CHIP = 0x2000,
        OPT_PKC,
        OPT_PKC_COUNT,
        OPT_SBK,
        OPT_OEM_K1,
        OPT_OEM_K2,
        OPT_KEK0,
        OPT_KEK1,
        OPT_KEK2,
        OPT_KEK256,
        OPT_NAME,
        OPT_LAB,
        OPT_OUT,
        OPT_IMPORT_PEM,
        OPT_IMPORT_HEX,
        OPT_ROLE,
        OPT_KEYSET,
        OPT_EKB_PAYLOAD,
        OPT_EKB_DISK,
        OPT_EKB_AUTH,
};

struct keygen_args {
        struct keygen_req req;
        const char *out;
        const char *keyset;
        const char *import_pem;
        const char *import_hex;
        const char *role;
        bool pkc_count_set;
};

static const struct argp_option keygen_options[] = {
        { "chip", OPT_CHIP, "CHIP", 0, "t234 (Orin) or t194 (Xavier)", 0 },
        { "pkc", OPT_PKC, "TYPE", 0, "PKC key type: rsa3k, p256, p521 (t234); rsa2k, rsa3k (t194)", 0 },
        { "pkc-count", OPT_PKC_COUNT, "N", 0, "PKC keys pkc0..pkcN-1 (t234: 1-3, for revocation; t194: 1)", 0 },
        { "sbk", OPT_SBK, NULL, 0, "Secure boot key (AES-256 on t234, AES-128 on t194)", 0 },
        { "oem-k1", OPT_OEM_K1, NULL, 0, "OEM_K1 (t234, AES-256)", 0 },
        { "oem-k2", OPT_OEM_K2, NULL, 0, "OEM_K2 (t234, AES-256)", 0 },
        { "kek0", OPT_KEK0, NULL, 0, "KEK0 (t194, AES-128)", 0 },
        { "kek1", OPT_KEK1, NULL, 0, "KEK1 (t194, AES-128)", 0 },
        { "kek2", OPT_KEK2, NULL, 0, "KEK2 (t194, AES-128; the EKB root)", 0 },
        { "kek256", OPT_KEK256, NULL, 0, "KEK256 (t194, AES-256)", 0 },
        { "ekb-payload", OPT_EKB_PAYLOAD, NULL, 0, "EKB tag 1: kernel/UEFI payload key (AES-256 t234, AES-128 t194)", 0 },
        { "ekb-disk", OPT_EKB_DISK, NULL, 0, "EKB tag 2: disk encryption key, the LUKS passphrase root (AES-128)", 0 },
        { "ekb-auth", OPT_EKB_AUTH, NULL, 0, "EKB tag 4: UEFI variable authentication key (AES-128)", 0 },
        { "name", OPT_NAME, "PREFIX", 0, "Object label prefix: labels are PREFIX-ROLE (default: fuseline)", 0 },
        { "lab", OPT_LAB, NULL, 0, "Mark the keyset as lab/test keys (cannot burn real devices without "
                                   "--allow-lab-keys)", 0 },
        { "out", OPT_OUT, "FILE", 0, "Keyset manifest to create (never overwritten)", 0 },
        { "import-pem", OPT_IMPORT_PEM, "FILE", 0, "Import an RSA/EC private key PEM as --role pkcN", 1 },
        { "import-hex", OPT_IMPORT_HEX, "FILE", 0,
          "Import a fuse key (NVIDIA word format '0x12345678 0x9abcdef0 …' or plain hex) as --role ROLE", 1 },
        { "role", OPT_ROLE, "ROLE", 0, "Role of the imported key: pkc0..2, sbk, oem-k1, oem-k2, kek0..2, kek256, "
          "ekb-payload, ekb-disk, ekb-auth", 1 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Existing manifest an import (or keys named with --ekb-*) is added to "
          "(rewritten atomically)", 1 },
        { 0 }
};

/* Each fuse-key option once: repeating one (--sbk --sbk …) must not run
 * past the fixed role array. The library ignores duplicates too. */
static void add_role(struct keygen_args *a, const char *role)
{
        for (size_t i = 0; i < a->req.n_fuse_roles; i++)
                if (!strcmp(a->req.fuse_roles[i], role))
                        return;
        if (a->req.n_fuse_roles < FL_ARRAY_SIZE(a->req.fuse_roles))
                a->req.fuse_roles[a->req.n_fuse_roles++] = role;
}

static error_t keygen_parse(int key, char *arg, struct argp_state *state)
{
        struct keygen_args *a = state->input;
        struct cli *cli = cli_get();
        uint64_t n = 0;

        switch (key) {
        case OPT_CHIP:
                a->req.chip = chip_from_name(arg);
                if (a->req.chip == FL_CHIP_NONE)
                        argp_error(state, "unknown chip '%s': use t234 (Orin) or t194 (Xavier)", arg);
                break;
        case OPT_PKC:
                a->req.pkc_type = key_type_from_name(arg);
                if (a->req.pkc_type == KT_NONE)
                        argp_error(state, "unknown PKC type '%s': use rsa3k, p256, p521 (t234) or rsa2k, rsa3k (t194)",
                                   arg);
                break;
        case OPT_PKC_COUNT:
                if (cli_number(arg, 3, &n) < 0 || n < 1)
                        argp_error(state, "--pkc-count '%s': must be 1, 2 or 3", arg);
                a->req.pkc_count = (unsigned)n;
                a->pkc_count_set = true;
                break;
        case OPT_SBK:
                add_role(a, "sbk");
                break;
        case OPT_OEM_K1:
                add_role(a, "oem-k1");
                break;
        case OPT_OEM_K2:
                add_role(a, "oem-k2");
                break;
        case OPT_KEK0:
                add_role(a, "kek0");
                break;
        case OPT_KEK1:
                add_role(a, "kek1");
                break;
        case OPT_KEK2:
                add_role(a, "kek2");
                break;
        case OPT_KEK256:
                add_role(a, "kek256");
                break;
        case OPT_EKB_PAYLOAD:
                add_role(a, "ekb-payload");
                break;
        case OPT_EKB_DISK:
                add_role(a, "ekb-disk");
                break;
        case OPT_EKB_AUTH:
                add_role(a, "ekb-auth");
                break;
        case OPT_NAME:
                a->req.name = arg;
                break;
        case OPT_LAB:
                a->req.lab = true;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_IMPORT_PEM:
                a->import_pem = arg;
                break;
        case OPT_IMPORT_HEX:
                a->import_hex = arg;
                break;
        case OPT_ROLE:
                a->role = arg;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (a->import_pem && a->import_hex)
                        argp_error(state, "--import-pem and --import-hex are one key each: run twice");
                if (a->import_pem || a->import_hex) {
                        if (!a->role)
                                argp_error(state, "an import needs --role");
                        if (!a->keyset && !(a->out && a->req.chip))
                                argp_error(state, "an import goes into --keyset FILE, or a new --out FILE with --chip");
                        break;
                }
                if (a->keyset) {
                        if (!a->req.n_fuse_roles)
                                argp_error(state, "--keyset without an import: name the keys to add (--ekb-payload, "
                                                  "--ekb-disk, --ekb-auth, …)");
                        if (a->req.pkc_type || a->out)
                                argp_error(state, "adding keys to --keyset takes no --pkc or --out");
                        break;
                }
                if (!a->req.chip)
                        argp_error(state, "--chip is required (t234 or t194)");
                if (!a->req.pkc_type)
                        argp_error(state, "--pkc is required");
                if (!a->out)
                        argp_error(state, "--out is required (the keyset manifest to create)");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        (void)cli;
        return 0;
}


static const char keygen_doc[] =
        "Create the secure-boot keys of a product inside a PKCS#11 token and write a keyset manifest.\v"
        "PKC keys are generated non-extractable and sensitive. Fuse keys (SBK, OEM_K1/K2, KEK*) must later be "
        "written into the fuse XML as values, so they are extractable AES keys; each also gets a non-extractable "
        "HMAC twin (PREFIX-ROLE-hmac) so MACs run inside the token. No key value is ever printed; the manifest "
        "records only hashes and check values. An existing label is a conflict (exit 7): keygen never replaces "
        "a key. Every ceremony (keys made, added or imported) is a ledger event with the manifest's hash and each "
        "key's fingerprint; a ledger that cannot be written fails before any key is made.\n\n"
        "Examples:\n"
        "  eval \"$(hsm/lab-token.sh)\"\n"
        "  fuseline keygen --chip t234 --pkc rsa3k --sbk --oem-k1 --oem-k2 --lab --out keyset.json\n"
        "  fuseline keygen --token 'pkcs11:token=prod;serial=1234' --pin-source file:/run/pin \\\n"
        "      --chip t234 --pkc p521 --pkc-count 3 --sbk --name orin-a --out orin-a.json\n"
        "  fuseline keygen --chip t194 --pkc rsa3k --sbk --kek2 --name xavier --lab --out xavier.json\n"
        "  fuseline keygen --import-pem old-pkc.pem --role pkc0 --keyset keyset.json\n"
        "  fuseline keygen --import-hex sbk.txt --role sbk --keyset keyset.json\n"
        "  fuseline keygen --keyset keyset.json --ekb-payload --ekb-disk --ekb-auth\n"
        "  fuseline keygen --import-hex sym2_t234.key --role ekb-disk --keyset keyset.json\n"
        "Other modes: fuseline keygen --uefi --help, fuseline keygen --identity-ca --help, "
        "fuseline keygen --ftpm-ek-ca --help, "
        "fuseline keygen --export-pub ROLE --help (public keys, tegra format) and --random N.";

static const struct argp keygen_argp = { keygen_options, keygen_parse, NULL, keygen_doc, cli_ledger_token_children, NULL,
                                         NULL };

static void print_keyset(struct cli *cli, const struct keyset *ks, const char *path, const char *what)
{
        if (cli->json) {
                json_object *o = cli_json_result(cli->cmd, true), *keys = keyset_to_json(ks), *arr;
                json_object_object_add(o, "keyset", json_object_new_string(path));
                json_object_object_add(o, "chip", json_object_new_string(chip_name(ks->chip)));
                json_object_object_add(o, "profile", json_object_new_string(ks->profile));
                json_object_object_get_ex(keys, "keys", &arr);
                json_object_object_add(o, "keys", json_object_get(arr));
                json_object_put(keys);
                cli_json_out(o);
                return;
        }
        printf("%s %s (%s, %s) on token '%s' (serial %s)\n", what, path, chip_name(ks->chip), ks->profile,
               ks->token_label ? ks->token_label : "?", ks->token_serial ? ks->token_serial : "?");
        for (size_t i = 0; i < ks->n_keys; i++) {
                const struct ks_key *k = &ks->keys[i];
                printf("  %-8s %-8s %-24s", k->role, key_type_name(k->type), k->label ? k->label : "");
                if (k->tegra_pkc_hash)
                        printf(" PublicKeyHash %s", k->tegra_pkc_hash);
                else if (k->kcv)
                        printf(" kcv %s", k->kcv);
                putchar('\n');
        }
}

/* The ceremony on the record: the manifest's keys from first_key on. */
static int record(struct cli *cli, struct ledger *l, const char *mode, const struct keyset *ks, const char *path,
                  size_t first_key)
{
        json_object *d = cli_keyset_event(cli, mode, ks, path, first_key);
        char done[FL_ERRMSG_MAX];

        snprintf(done, sizeof(done), "the keys were made in the token and %s records them", path);
        return cli_ledger_record(cli, l, "keygen", &d, 1, done, NULL);
}

static int do_import(struct cli *cli, struct keygen_args *a, struct ledger *l)
{
        struct keyset *ks = NULL;
        const char *path = a->keyset ? a->keyset : a->out;
        size_t first = 0;
        int r;

        if (a->keyset) {
                r = keyset_load(cli->ctx, a->keyset, &ks);
                if (r < 0)
                        return r;
        } else {
                r = keyset_new(&ks);
                if (r < 0)
                        return r;
                ks->chip = a->req.chip;
        }
        first = ks->n_keys;
        r = keygen_import(cli->ctx, &cli->tok, ks, &a->req, a->role, a->import_pem, a->import_hex, !a->keyset, path);
        if (r < 0)
                goto out;
        print_keyset(cli, ks, path, "imported into");
        r = record(cli, l, "import", ks, path, first);
out:
        keyset_free(ks);
        return r;
}

int cmd_keygen(struct cli *cli, int argc, char **argv)
{
        struct keygen_args a = { 0 };
        struct keyset *ks = NULL;
        struct ledger *l = NULL;
        size_t first;
        int r;

        /* The modes exclude each other: say so, rather than let the first
         * one's parser call the second "unrecognized". */
        {
                static const char *const modes[] = { "--uefi", "--identity-ca", "--ftpm-ek-ca", "--export-pub",
                                                     "--random" };
                const char *seen = NULL;
                for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
                        for (size_t m = 0; m < FL_ARRAY_SIZE(modes); m++) {
                                size_t n = strlen(modes[m]);
                                if (strncmp(argv[i], modes[m], n) || (argv[i][n] && argv[i][n] != '='))
                                        continue;
                                if (seen && strcmp(seen, modes[m]))
                                        return fl_err(cli->ctx, -EINVAL,
                                                      "%s and %s are separate keygen modes: give one of --uefi, "
                                                      "--identity-ca, --ftpm-ek-ca, --export-pub, --random",
                                                      seen, modes[m]);
                                seen = modes[m];
                        }
        }
        for (int i = 1; i < argc; i++) {
                /* dispatch: other keygen modes (one line each) */
                if (!strcmp(argv[i], "--uefi")) return cmd_keygen_uefi(cli, argc, argv);
                if (!strcmp(argv[i], "--identity-ca")) return cmd_keygen_identity_ca(cli, argc, argv);
                if (!strncmp(argv[i], "--export-pub", 12) || !strncmp(argv[i], "--random", 8))
                        return cmd_keygen_export(cli, argc, argv);
                if (!strcmp(argv[i], "--ftpm-ek-ca")) return cmd_keygen_identity_ca(cli, argc, argv);
                (void)argv[i];
        }

        a.req.pkc_count = 1;
        a.req.name = "fuseline";
        cli_parse(&keygen_argp, argc, argv, &a);
        /* A ledger that cannot be written fails before any key is made. */
        r = cli_ledger_open(cli, &l);
        if (r < 0)
                return r;
        if (a.import_pem || a.import_hex) {
                r = do_import(cli, &a, l);
                goto out;
        }
        if (a.keyset) {
                r = keyset_load(cli->ctx, a.keyset, &ks);
                if (r < 0)
                        goto out;
                first = ks->n_keys;
                r = keygen_add(cli->ctx, &cli->tok, ks, a.req.fuse_roles, a.req.n_fuse_roles, a.keyset);
                if (r == 0) {
                        print_keyset(cli, ks, a.keyset, "added to");
                        r = record(cli, l, "add", ks, a.keyset, first);
                }
                goto out;
        }

        a.req.out = a.out;
        r = keygen_run(cli->ctx, &cli->tok, &a.req, &ks);
        if (r < 0)
                goto out;
        print_keyset(cli, ks, a.out, "created");
        r = record(cli, l, "secure-boot", ks, a.out, 0);
out:
        keyset_free(ks);
        ledger_close(l);
        return r;
}

/* ---- verify keyset ----------------------------------------------------------- */

struct verify_args {
        const char *keyset;
};

static error_t verify_parse(int key, char *arg, struct argp_state *state)
{
        struct verify_args *a = state->input;

        switch (key) {
        case ARGP_KEY_ARG:
                if (a->keyset)
                        argp_error(state, "one keyset at a time");
                a->keyset = arg;
                break;
        case ARGP_KEY_END:
                if (!a->keyset)
                        argp_error(state, "which keyset? fuseline verify keyset KEYSET.json");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char verify_doc[] =
        "Check a keyset manifest against its token: every key exists exactly once, its type matches, the "
        "recomputed PublicKeyHash, public-key SHA-256 and key check values match, and a production keyset's "
        "private keys are non-extractable and sensitive.\v"
        "Exit 5 when anything differs, with one line per problem.\n\n"
        "Examples:\n"
        "  fuseline verify keyset keyset.json\n"
        "  fuseline verify keyset keyset.json --pin-source file:/run/fuseline/pin --json";

static const struct argp verify_argp = { NULL, verify_parse, "KEYSET.json", verify_doc, cli_token_children, NULL, NULL };

int cmd_verify_keyset(struct cli *cli, int argc, char **argv)
{
        struct verify_args a = { 0 };
        struct keyset *ks = NULL;
        struct keyset_report rep = { 0 };
        int r;

        cli_parse(&verify_argp, argc, argv, &a);
        r = keyset_load(cli->ctx, a.keyset, &ks);
        if (r < 0)
                return r;
        r = keygen_verify(cli->ctx, &cli->tok, ks, &rep);
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *o = cli_json_result("verify keyset", rep.n_problems == 0), *keys = json_object_new_array();
                json_object_object_add(o, "keyset", json_object_new_string(a.keyset));
                for (size_t i = 0; i < rep.n_keys; i++) {
                        json_object *k = json_object_new_object();
                        json_object_object_add(k, "role", json_object_new_string(rep.keys[i].role));
                        json_object_object_add(k, "ok", json_object_new_boolean(rep.keys[i].n_problems == 0));
                        json_object_object_add(k, "problems",
                                               cli_json_strings(rep.keys[i].problems, rep.keys[i].n_problems));
                        json_object_array_add(keys, k);
                }
                json_object_object_add(o, "keys", keys);
                cli_json_out(o);
        } else {
                for (size_t i = 0; i < rep.n_keys; i++) {
                        if (rep.keys[i].n_problems == 0)
                                printf("%-8s OK\n", rep.keys[i].role);
                        for (size_t j = 0; j < rep.keys[i].n_problems; j++)
                                printf("%-8s MISMATCH %s\n", rep.keys[i].role, rep.keys[i].problems[j]);
                }
                printf("%s: %s\n", a.keyset, rep.n_problems ? "FAIL" : "PASS");
        }
        if (rep.n_problems)
                r = fl_err(cli->ctx, -EBADMSG, "%s: %zu problem(s) found; first: %s: %s", a.keyset, rep.n_problems,
                           rep.first_role, rep.first_problem);
out:
        keyset_report_free(&rep);
        keyset_free(ks);
        return r;
}
