/* luks.c — `fuseline luks-passphrase`: NVIDIA's generic or per-device (ECID)
 * LUKS passphrase, computed in the token from the keyset's disk key and
 * written to stdout or a 0600 file, never to argv, a log or JSON. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>


#include "../lib/keyset.h"
#include "../lib/luks.h"
#include "cli.h"

enum {
        OPT_KEYSET = 0x2700,
        OPT_GENERIC,
        OPT_ECID,
        OPT_CONTEXT,
        OPT_OUT,
};

struct luks_args {
        const char *keyset, *ecid, *context, *out;
        bool generic;
};

static const struct argp_option luks_options[] = {
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset holding the disk encryption key (role ekb-disk)", 0 },
        { "ecid", OPT_ECID, "ECID", 0, "Unique passphrase for this device: its ECID (32 hex digits, optional 0x, or "
                                       "tegrarcm_v2's 'BR_CID: 0x…' line)", 0 },
        { "generic", OPT_GENERIC, NULL, 0, "Generic passphrase (the same for every device)", 0 },
        { "context", OPT_CONTEXT, "UUID", 0, "The filesystem UUID the passphrase is for (≤ 40 characters; may be "
                                             "empty)", 0 },
        { "out", OPT_OUT, "FILE", 0, "Write the passphrase to FILE (mode 0600) instead of stdout", 0 },
        { 0 }
};

static error_t luks_parse(int key, char *arg, struct argp_state *state)
{
        struct luks_args *a = state->input;

        switch (key) {
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_ECID:
                a->ecid = arg;
                break;
        case OPT_GENERIC:
                a->generic = true;
                break;
        case OPT_CONTEXT:
                a->context = arg;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->keyset)
                        argp_error(state, "--keyset is required");
                if (!a->context)
                        argp_error(state, "--context is required (the filesystem UUID; --context '' for none)");
                if (!!a->ecid == a->generic)
                        argp_error(state, "say which passphrase: --ecid ECID (unique, NVIDIA's default) or --generic");
                if (cli_get()->json && !a->out)
                        argp_error(state, "--json needs --out: the passphrase never goes into JSON");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char luks_doc[] =
        "Derive the LUKS passphrase NVIDIA's gen_luks_passphrase.py derives, in the token, from the keyset's disk "
        "encryption key (ekb-disk, EKB tag 2).\v"
        "Output: 32 lower-case hex characters and a newline, on stdout or in --out FILE (0600). cryptsetup reading "
        "it from a pipe takes the 32 characters as the passphrase. The passphrase is never an argument, a log line "
        "or JSON.\n\n"
        "Examples:\n"
        "  fuseline luks-passphrase --keyset keyset.json --ecid 0x880219116451e2c60c00000001ff0140 \\\n"
        "      --context \"$UUID\" | cryptsetup --type luks2 -c aes-xts-plain64 -s 256 --uuid \"$UUID\" luksFormat "
        "rootfs.img\n"
        "  fuseline luks-passphrase --keyset keyset.json --ecid 'BR_CID: 0x80012344705DF1172C0000000D020080' \\\n"
        "      --context \"$UUID\" --out pass.txt\n"
        "  fuseline luks-passphrase --keyset keyset.json --generic --context \"$UUID\"";

static const struct argp luks_argp = { luks_options, luks_parse, NULL, luks_doc, cli_token_force_children, NULL, NULL };

static int write_all(fl_ctx *ctx, int fd, const char *buf, size_t len)
{
        while (len) {
                ssize_t n = write(fd, buf, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return fl_err(ctx, -errno, "writing the passphrase to stdout: %s", strerror(errno));
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

int cmd_luks_passphrase(struct cli *cli, int argc, char **argv)
{
        struct luks_args a = { 0 };
        struct keyset *ks = NULL;
        struct fl_secret pass = { 0 };
        struct luks_req req = { 0 };
        char text[34];
        int r;

        cli_parse(&luks_argp, argc, argv, &a);
        if ((r = cli_out_check(cli, a.out)) < 0)
                return r;
        req.unique = !a.generic;
        req.ecid = a.ecid;
        req.context = a.context;
        r = keyset_load(cli->ctx, a.keyset, &ks);
        if (r < 0)
                return r;
        r = luks_passphrase(cli->ctx, &cli->tok, ks, &req, &pass);
        if (r < 0)
                goto out;
        hex_encode(pass.data, 16, text);
        text[32] = '\n';
        /* write(2), not stdio: no copy is left in a buffer we cannot wipe. */
        if (a.out)
                r = file_write_atomic(cli->ctx, a.out, text, 33, 0600);
        else
                r = write_all(cli->ctx, STDOUT_FILENO, text, 33);
        if (r < 0)
                goto out;
        if (a.out) {
                if (cli->json) {
                        json_object *o = cli_json_result("luks-passphrase", true);
                        json_object_object_add(o, "out", json_object_new_string(a.out));
                        json_object_object_add(o, "kind", json_object_new_string(req.unique ? "unique" : "generic"));
                        cli_json_out(o);
                } else {
                        cli_info("wrote the %s passphrase to %s (mode 0600)", req.unique ? "unique" : "generic",
                                 a.out);
                }
        }
out:
        explicit_bzero(text, sizeof(text));
        secret_wipe(&pass);
        keyset_free(ks);
        return r;
}
