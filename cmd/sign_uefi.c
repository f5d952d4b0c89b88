/* sign_uefi.c — `fuseline sign --uefi-var` (signed append updates of KEK,
 * db or dbx for field key rotation) and `fuseline sign --uefi-payload`
 * (kernel/initrd/dtb/extlinux.conf signatures for L4TLauncher), both with a
 * key from the keyset's token. cmd/sign.c dispatches here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/keyset.h"
#include "../lib/signer.h"
#include "../lib/uefi.h"
#include "../lib/ledger.h"
#include "../lib/record.h"
#include "cli.h"

#define MAX_APPEND 64

enum {
        OPT_UEFI_VAR = 0x2200,
        OPT_UEFI_PAYLOAD,
        OPT_APPEND,
        OPT_APPEND_HASH,
        OPT_SIGNER,
        OPT_KEYSET,
        OPT_TIMESTAMP,
        OPT_OWNER_GUID,
        OPT_OUT,
        OPT_CONF,
        OPT_MODE,
};

struct sign_args {
        const char *var;
        const char *payload;
        const char *certs[MAX_APPEND];
        size_t n_certs;
        const char *hashes[MAX_APPEND];
        size_t n_hashes;
        const char *signer;
        const char *keyset;
        const char *timestamp;
        const char *owner;
        const char *out;
        const char *conf;
        const char *mode;
};

static const struct argp_option sign_options[] = {
        { "uefi-var", OPT_UEFI_VAR, "VAR", 0, "Sign an append update of KEK, db or dbx (attributes 0x67)", 0 },
        { "append", OPT_APPEND, "CERT", 0, "Certificate (PEM/DER, RSA) to append; repeatable", 0 },
        { "append-hash", OPT_APPEND_HASH, "SHA256HEX", 0, "SHA-256 hash to append (e.g. to dbx); repeatable", 0 },
        { "timestamp", OPT_TIMESTAMP, "TIME", 0, "EFI_TIME, \"YYYY-MM-DD HH:MM:SS\" UTC (default: now)", 0 },
        { "owner-guid", OPT_OWNER_GUID, "GUID", 0, "SignatureOwner (default: the one keygen --uefi recorded)", 0 },
        { "out", OPT_OUT, "FILE", 0, "The .auth to create (never replaced)", 0 },
        { "conf", OPT_CONF, "FILE", 0,
          "uefi_keys.conf to register the update in (as the next UEFI_UPDATE_PRE_SIGNED_<VAR>_n; --out must be in "
          "its directory); UefiUpdateSecurityKeys.dts/.dtbo there are rewritten",
          0 },
        { "uefi-payload", OPT_UEFI_PAYLOAD, "FILE", 0, "Sign a UEFI payload (kernel, initrd, dtb, extlinux.conf)", 1 },
        { "mode", OPT_MODE, "MODE", 0,
          "split: write FILE.sig; append: keep FILE.unsigned, pad FILE to 2 KiB and append the signature", 1 },
        { "signer", OPT_SIGNER, "ROLE", 0, "uefi-pk, uefi-kek (variables); uefi-db1, uefi-db2 (payloads)", 2 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest holding the signer (from keygen --uefi --keyset)", 2 },
        { 0 }
};

static error_t sign_parse(int key, char *arg, struct argp_state *state)
{
        struct sign_args *a = state->input;

        switch (key) {
        case OPT_UEFI_VAR:
        case OPT_UEFI_PAYLOAD:
                /* `fuseline sign --uefi-var --help` is how sign's own help
                 * points here: argp would take --help as the VAR. */
                if (!strcmp(arg, "--help"))
                        argp_state_help(state, stdout, ARGP_HELP_STD_HELP);
                if (key == OPT_UEFI_VAR)
                        a->var = arg;
                else
                        a->payload = arg;
                break;
        case OPT_APPEND:
                if (a->n_certs == MAX_APPEND)
                        argp_error(state, "at most %d --append", MAX_APPEND);
                a->certs[a->n_certs++] = arg;
                break;
        case OPT_APPEND_HASH:
                if (a->n_hashes == MAX_APPEND)
                        argp_error(state, "at most %d --append-hash", MAX_APPEND);
                a->hashes[a->n_hashes++] = arg;
                break;
        case OPT_SIGNER:
                a->signer = arg;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_TIMESTAMP:
                a->timestamp = arg;
                break;
        case OPT_OWNER_GUID:
                a->owner = arg;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_CONF:
                a->conf = arg;
                break;
        case OPT_MODE:
                a->mode = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!!a->var == !!a->payload)
                        argp_error(state, "give either --uefi-var VAR or --uefi-payload FILE");
                if (!a->signer || !a->keyset)
                        argp_error(state, "--signer ROLE and --keyset FILE are required");
                if (a->var) {
                        if (!a->out)
                                argp_error(state, "--out FILE is required (the .auth to create)");
                        if (!a->n_certs && !a->n_hashes)
                                argp_error(state, "nothing to append: give --append CERT and/or --append-hash HEX");
                        if (a->mode)
                                argp_error(state, "--mode is for --uefi-payload");
                } else {
                        if (!a->mode)
                                argp_error(state, "--mode split|append is required");
                        if (strcmp(a->mode, "split") && strcmp(a->mode, "append"))
                                argp_error(state, "--mode '%s': use split or append", a->mode);
                        if (a->out || a->conf || a->n_certs || a->n_hashes || a->timestamp)
                                argp_error(state, "--out/--conf/--append/--timestamp are for --uefi-var");
                }
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const struct argp_child sign_children[] = {
        { &cli_token_argp, 0, "Token options:", 3 },
        { &cli_common_argp, 0, "General options:", 4 },
        { &cli_force_argp, 0, "Output options:", 5 },
        { &cli_ledger_argp, 0, "Ledger options:", 6 },
        { 0 }
};

static const char sign_doc[] =
        "Sign UEFI Secure Boot material with a key from the keyset's token.\v"
        "--uefi-var writes a time-based authenticated append update (EFI_VARIABLE_AUTHENTICATION_2, attributes "
        "0x67) as `sign-efi-sig-list -a` and `efi-updatevar -a` use it, and Jetson applies from "
        "UefiUpdateSecurityKeys.dtbo: KEK updates are signed by uefi-pk, db/dbx updates by uefi-kek (or uefi-pk). "
        "Each --append certificate becomes its own EFI_SIGNATURE_LIST; all --append-hash values one SHA-256 list.\n"
        "--uefi-payload signs as NVIDIA's l4t_uefi_sign_image.sh does with `openssl cms -sign -binary -outform der` "
        "(detached CMS, SHA-256, signed attributes, signer certificate included).\n\n"
        "Examples:\n"
        "  fuseline sign --uefi-var db --append new-db.crt --signer uefi-kek --keyset keyset.json \\\n"
        "      --out uefi_keys/db_update_1.auth --conf uefi_keys/uefi_keys.conf\n"
        "  fuseline sign --uefi-var dbx --append-hash 3f1a…e9 --signer uefi-kek --keyset keyset.json --out dbx.auth\n"
        "  fuseline sign --uefi-payload Linux_for_Tegra/rootfs/boot/initrd --signer uefi-db1 --keyset keyset.json \\\n"
        "      --mode split\n"
        "  fuseline sign --uefi-payload bootloader/boot.img --signer uefi-db1 --keyset keyset.json --mode append";

static const struct argp sign_argp = { sign_options, sign_parse, NULL, sign_doc, sign_children, NULL, NULL };

/* A keyset without the role: say which command makes it. */
static int role_present(struct cli *cli, const struct keyset *ks, const char *ks_path, const char *role)
{
        if (keyset_find(ks, role))
                return 0;
        return fl_err(cli->ctx, -EINVAL, "%s: no key with role %s (run fuseline keygen --uefi --keyset %s)", ks_path,
                      role, ks_path);
}

/* A UEFI signature on the record: the signer role and the public-key
 * SHA-256 its manifest entry pins, and what was signed, by hash. */
static json_object *event_base(struct cli *cli, const char *mode, const struct sign_args *a, const struct keyset *ks)
{
        json_object *d = json_object_new_object();
        const struct ks_key *k = keyset_find(ks, a->signer);
        char sha[65];

        json_object_object_add(d, "mode", json_object_new_string(mode));
        json_object_object_add(d, "keyset", json_object_new_string(a->keyset));
        json_object_object_add(d, "keyset_sha256", record_file_sha256(cli->ctx, a->keyset, sha) == 0
                                                           ? json_object_new_string(sha) : NULL);
        fl_err_clear(cli->ctx);
        json_object_object_add(d, "role", json_object_new_string(a->signer));
        if (k && k->public_key_sha256) {
                char fpr[80];
                snprintf(fpr, sizeof(fpr), "sha256:%s", k->public_key_sha256);
                json_object_object_add(d, "key_fingerprint", json_object_new_string(fpr));
        } else {
                json_object_object_add(d, "key_fingerprint", NULL);
        }
        return d;
}

static void add_file_sha(struct cli *cli, json_object *d, const char *key, const char *path)
{
        char sha[65];

        json_object_object_add(d, key, path && record_file_sha256(cli->ctx, path, sha) == 0
                                               ? json_object_new_string(sha) : NULL);
        fl_err_clear(cli->ctx);
}

static int do_var(struct cli *cli, const struct sign_args *a, const struct keyset *ks, struct ledger *l)
{
        struct uefi_update_opts o = { .certs = a->certs, .n_certs = a->n_certs, .out_path = a->out,
                                      .conf_path = a->conf };
        struct uefi_update_result res = { 0 };
        unsigned char *hashes = NULL;
        const char *owner = a->owner;
        struct signer_opts so = { .tok = &cli->tok, .keyset_path = a->keyset, .need_cert = true };
        enum signer_use use;
        signer *sg = NULL;
        char ts[20], g[37];
        int r;

        if (uefi_var_from_name(a->var, &o.var) < 0 || o.var == UEFI_VAR_PK)
                return fl_err(cli->ctx, -EINVAL, "--uefi-var '%s': use KEK, db or dbx", a->var);
        use = o.var == UEFI_VAR_KEK ? SIGNER_USE_UEFI_KEK : SIGNER_USE_UEFI_DB;
        r = signer_role_check(cli->ctx, "--signer", a->signer, NULL, use);
        if (r < 0)
                return r;
        if (a->timestamp) {
                r = uefi_time_parse(cli->ctx, "--timestamp", a->timestamp, &o.time);
                if (r < 0)
                        return r;
        } else {
                uefi_time_now(&o.time);
        }
        if (!owner)
                owner = ks_key_extra_str(keyset_find(ks, a->signer), "owner_guid");
        if (!owner)
                return fl_err(cli->ctx, -EINVAL, "%s: no owner_guid recorded for %s; give --owner-guid", a->keyset,
                              a->signer);
        r = uefi_guid_parse(cli->ctx, a->owner ? "--owner-guid" : "keyset owner_guid", owner, &o.owner);
        if (r < 0)
                return r;
        if (a->n_hashes) {
                hashes = malloc(a->n_hashes * 32);
                if (!hashes)
                        return -ENOMEM;
                for (size_t i = 0; i < a->n_hashes; i++) {
                        size_t n = 0;
                        if (strlen(a->hashes[i]) != 64 || hex_decode(a->hashes[i], hashes + 32 * i, 32, &n) < 0) {
                                r = fl_err(cli->ctx, -EINVAL, "--append-hash '%.80s': not 64 hex digits (a SHA-256)",
                                           a->hashes[i]);
                                goto out;
                        }
                }
                o.hashes = hashes;
                o.n_hashes = a->n_hashes;
        }
        /* The one signer (lib/signer.c): the manifest's token, the pinned
         * key and certificate, the UEFI role rules, the interlock. */
        so.use = use;
        r = role_present(cli, ks, a->keyset, a->signer);
        if (r == 0)
                r = signer_open(cli->ctx, ks, a->signer, &so, &sg);
        if (r < 0)
                goto out;
        r = uefi_sign_update(cli->ctx, signer_x509(sg), signer_cert(sg), &o, &res);
        if (r < 0)
                goto out;
        uefi_time_format(&o.time, ts);
        uefi_guid_format(&o.owner, g);
        if (cli->json) {
                json_object *j = cli_json_result("sign --uefi-var", true);
                json_object_object_add(j, "variable", json_object_new_string(uefi_var_name(o.var)));
                json_object_object_add(j, "attributes", json_object_new_string("0x67"));
                json_object_object_add(j, "signer", json_object_new_string(a->signer));
                json_object_object_add(j, "timestamp", json_object_new_string(ts));
                json_object_object_add(j, "owner_guid", json_object_new_string(g));
                json_object_object_add(j, "out", json_object_new_string(a->out));
                json_object_object_add(j, "bytes", json_object_new_int64((int64_t)res.auth_len));
                json_object_object_add(j, "sha256", json_object_new_string(res.auth_sha256));
                if (res.conf_var) {
                        json_object_object_add(j, "conf_var", json_object_new_string(res.conf_var));
                        json_object_object_add(j, "dtbo", json_object_new_boolean(res.dtbo));
                }
                cli_json_out(j);
        } else {
                printf("signed %s append update %s (%zu bytes, %s, signer %s, %s UTC)\n", uefi_var_name(o.var), a->out,
                       res.auth_len, res.auth_sha256, a->signer, ts);
                if (res.conf_var)
                        printf("  registered as %s in %s; %s%s rewritten\n", res.conf_var, a->conf, UEFI_UPDATE_DTS,
                               res.dtbo ? " and .dtbo" : " (dtc not installed: no .dtbo)");
        }
        {
                json_object *d = event_base(cli, "uefi-var", a, ks), *certs = json_object_new_array(),
                            *hs = json_object_new_array();
                char done[FL_ERRMSG_MAX];
                json_object_object_add(d, "variable", json_object_new_string(uefi_var_name(o.var)));
                json_object_object_add(d, "timestamp", json_object_new_string(ts));
                json_object_object_add(d, "owner_guid", json_object_new_string(g));
                for (size_t i = 0; i < a->n_certs; i++) {
                        json_object *c = json_object_new_object();
                        json_object_object_add(c, "file", json_object_new_string(a->certs[i]));
                        add_file_sha(cli, c, "sha256", a->certs[i]);
                        json_object_array_add(certs, c);
                }
                json_object_object_add(d, "append_certs", certs);
                for (size_t i = 0; i < a->n_hashes; i++)
                        json_object_array_add(hs, json_object_new_string(a->hashes[i]));
                json_object_object_add(d, "append_hashes", hs);
                json_object_object_add(d, "out", json_object_new_string(a->out));
                json_object_object_add(d, "auth_sha256", json_object_new_string(res.auth_sha256));
                if (res.conf_var)
                        json_object_object_add(d, "conf_var", json_object_new_string(res.conf_var));
                snprintf(done, sizeof(done), "the update %s was written", a->out);
                r = cli_ledger_record(cli, l, "sign", &d, 1, done, NULL);
        }
out:
        uefi_update_result_free(&res);
        signer_close(sg);
        free(hashes);
        return r;
}

static int do_payload(struct cli *cli, const struct sign_args *a, const struct keyset *ks, struct ledger *l)
{
        enum uefi_payload_mode mode = !strcmp(a->mode, "append") ? UEFI_PAYLOAD_APPEND : UEFI_PAYLOAD_SPLIT;
        struct uefi_payload_result res = { 0 };
        struct signer_opts so = { .tok = &cli->tok, .keyset_path = a->keyset, .use = SIGNER_USE_UEFI_PAYLOAD,
                                  .need_cert = true };
        signer *sg = NULL;
        int r;

        r = signer_role_check(cli->ctx, "--signer", a->signer, NULL, SIGNER_USE_UEFI_PAYLOAD);
        if (r < 0)
                return r;
        if (mode == UEFI_PAYLOAD_SPLIT) {
                char *sig = NULL;
                if (asprintf(&sig, "%s.sig", a->payload) < 0)
                        return -ENOMEM;
                r = cli_out_check(cli, sig);
                free(sig);
                if (r < 0)
                        return r;
        }
        r = role_present(cli, ks, a->keyset, a->signer);
        if (r == 0)
                r = signer_open(cli->ctx, ks, a->signer, &so, &sg);
        if (r < 0)
                goto out;
        r = uefi_sign_payload(cli->ctx, signer_x509(sg), signer_cert(sg), a->payload, mode, &res);
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *j = cli_json_result("sign --uefi-payload", true);
                json_object_object_add(j, "file", json_object_new_string(a->payload));
                json_object_object_add(j, "mode", json_object_new_string(a->mode));
                json_object_object_add(j, "signer", json_object_new_string(a->signer));
                json_object_object_add(j, "signature_bytes", json_object_new_int64((int64_t)res.sig_len));
                if (res.sig_path)
                        json_object_object_add(j, "signature", json_object_new_string(res.sig_path));
                if (res.unsigned_path) {
                        json_object_object_add(j, "unsigned", json_object_new_string(res.unsigned_path));
                        json_object_object_add(j, "signature_offset", json_object_new_int64((int64_t)res.padded_len));
                }
                cli_json_out(j);
        } else if (res.sig_path) {
                printf("signed %s: %s (%zu bytes, %s)\n", a->payload, res.sig_path, res.sig_len, a->signer);
        } else {
                printf("signed %s in place: signature at offset %zu (%zu bytes, %s); original kept as %s\n",
                       a->payload, res.padded_len, res.sig_len, a->signer, res.unsigned_path);
        }
        {
                json_object *d = event_base(cli, "uefi-payload", a, ks);
                char done[FL_ERRMSG_MAX];
                json_object_object_add(d, "file", json_object_new_string(a->payload));
                json_object_object_add(d, "payload_mode", json_object_new_string(a->mode));
                /* What was signed: the payload as it was (kept beside it
                 * in append mode), then the result. */
                add_file_sha(cli, d, "file_sha256", res.unsigned_path ? res.unsigned_path : a->payload);
                if (res.sig_path) {
                        json_object_object_add(d, "signature", json_object_new_string(res.sig_path));
                        add_file_sha(cli, d, "signature_sha256", res.sig_path);
                } else {
                        json_object_object_add(d, "signature_offset", json_object_new_int64((int64_t)res.padded_len));
                        add_file_sha(cli, d, "signed_file_sha256", a->payload);
                }
                snprintf(done, sizeof(done), "%s was signed", a->payload);
                r = cli_ledger_record(cli, l, "sign", &d, 1, done, NULL);
        }
out:
        uefi_payload_result_free(&res);
        signer_close(sg);
        return r;
}

int cmd_sign_uefi(struct cli *cli, int argc, char **argv)
{
        struct sign_args a = { 0 };
        struct keyset *ks = NULL;
        struct ledger *l = NULL;
        int r;

        cli_parse(&sign_argp, argc, argv, &a);
        cli->cmd = a.var ? "sign --uefi-var" : "sign --uefi-payload";
        /* An update registered in uefi_keys.conf is never replaced (a new
         * update gets a new name); --force is for the payload's .sig. */
        if (a.var && cli->force)
                return fl_err(cli->ctx, -EINVAL, "--force is not for --uefi-var: a signed update is never replaced "
                              "(give another --out)");
        /* A ledger that cannot be written fails before anything is signed. */
        r = cli_ledger_open(cli, &l);
        if (r < 0)
                return r;
        r = keyset_load(cli->ctx, a.keyset, &ks);
        if (r == 0)
                r = a.var ? do_var(cli, &a, ks, l) : do_payload(cli, &a, ks, l);
        keyset_free(ks);
        ledger_close(l);
        return r;
}
