/* keygen_export.c — `fuseline keygen --export-pub ROLE` (a role's public key
 * from the token: PEM, or tegra format with its PublicKeyHash and Montgomery
 * values, the files tegrasign_v3 --pubkeyhash/--getmont write) and
 * `fuseline keygen --random N` (bytes from the token's RNG). Both serve the
 * tegrasign HSM hook (templates/tegrasign) and stand on their own.
 * Parsing and printing only; the work is in lib/sign.c. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "../lib/sign.h"
#include "cli.h"

enum {
        OPT_EXPORT_PUB = 0x2100,
        OPT_RANDOM,
        OPT_KEYSET,
        OPT_FORMAT,
        OPT_OUT,
        OPT_HASH_OUT,
        OPT_MONT_OUT,
};

struct export_args {
        const char *role, *keyset, *format, *out, *hash_out, *mont_out;
        long random; /* -1: not asked */
};

static error_t export_parse(int key, char *arg, struct argp_state *state)
{
        struct export_args *a = state->input;
        uint64_t n = 0;

        switch (key) {
        case OPT_EXPORT_PUB:
                a->role = arg;
                break;
        case OPT_RANDOM:
                if (cli_number(arg, SIGN_RANDOM_MAX, &n) < 0 || n < 1)
                        argp_error(state, "--random '%s': a byte count from 1 to %d", arg, SIGN_RANDOM_MAX);
                a->random = (long)n;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_FORMAT:
                if (strcmp(arg, "pem") && strcmp(arg, "tegra"))
                        argp_error(state, "--format '%s': use pem or tegra", arg);
                a->format = arg;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_HASH_OUT:
                a->hash_out = arg;
                break;
        case OPT_MONT_OUT:
                a->mont_out = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!!a->role + (a->random >= 0) != 1)
                        argp_error(state, "give one of --export-pub ROLE and --random N");
                if (a->role && !a->keyset)
                        argp_error(state, "--export-pub %s needs --keyset FILE (the role's manifest)", a->role);
                if (a->role && !a->out && !a->hash_out && !a->mont_out)
                        argp_error(state, "--export-pub needs --out FILE (and/or --hash-out, --mont-out)");
                if (a->random >= 0 && !a->out)
                        argp_error(state, "--random needs --out FILE");
                if (a->random >= 0 && (a->format || a->hash_out || a->mont_out))
                        argp_error(state, "--format, --hash-out and --mont-out belong to --export-pub");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const struct argp_option export_options[] = {
        { "export-pub", OPT_EXPORT_PUB, "ROLE", 0, "Export the public key of a keyset role (pkc0, uefi-db1, …)", 1 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest (its token is used unless --token is given)", 1 },
        { "format", OPT_FORMAT, "F", 0,
          "pem (default: SubjectPublicKeyInfo) or tegra (the key as tegrasign_v3 --pubkeyhash writes it)", 1 },
        { "out", OPT_OUT, "FILE", 0, "The public key (or the random bytes), written atomically", 1 },
        { "hash-out", OPT_HASH_OUT, "FILE", 0,
          "Also write the PublicKeyHash fuse value as raw bytes (t234: 64, t194: 32)", 1 },
        { "mont-out", OPT_MONT_OUT, "FILE", 0,
          "Also write the RSA-3072 Montgomery values (768 bytes, tegrasign_v3 --getmont)", 1 },
        { "random", OPT_RANDOM, "N", 0, "Write N bytes (1-65536) from the token's own RNG to --out", 2 },
        { 0 }
};

static const char export_doc[] =
        "Export a keyset role's public key from the token, or take random bytes from the token's RNG.\v"
        "The public key is read from the token and checked against the manifest's public_key_sha256 and type "
        "(exit 5 if they differ), so a replaced object is never exported under the role's name. --format tegra "
        "writes the tegra-format key: RSA the modulus byte-reversed (384 bytes for rsa3k), P-256/P-521 "
        "rev(X)‖rev(Y), Ed25519 the raw 32 bytes; --hash-out the PublicKeyHash of the keyset's chip as raw "
        "bytes; --mont-out the RSA-3072 Montgomery values. These are byte for byte the files NVIDIA's "
        "tegrasign_v3.py --pubkeyhash PUB HASH and --getmont MONT write. Outputs are written atomically with "
        "mode 0644 (--random: 0600), replacing an existing file; all of them or none.\n\n"
        "Examples:\n"
        "  fuseline keygen --export-pub pkc0 --keyset keyset.json --out pkc0.pub.pem\n"
        "  fuseline keygen --export-pub pkc0 --keyset keyset.json --format tegra --out pub.bin \\\n"
        "      --hash-out pub.hash --mont-out pub.mont --json\n"
        "  fuseline keygen --random 12 --keyset keyset.json --out iv.bin\n"
        "Exit: 0 ok, 2 bad input (unknown role, secret-key role, a form the key type has not), 3 token/PIN, "
        "5 the token key differs from the manifest.";

static const struct argp export_argp = { export_options, export_parse, NULL, export_doc, cli_token_force_children,
                                         NULL, NULL };

/* Every output, or none: a file this run created is removed again when a
 * later one cannot be written. */
struct out_file {
        const char *path;
        const unsigned char *data;
        size_t len;
        bool existed;
};

static int write_all(struct cli *cli, struct out_file *f, size_t n, unsigned mode)
{
        int r = 0;
        size_t i;

        for (i = 0; i < n; i++) {
                if (!f[i].path)
                        continue;
                f[i].existed = access(f[i].path, F_OK) == 0;
                r = file_write_atomic(cli->ctx, f[i].path, f[i].data, f[i].len, mode);
                if (r < 0)
                        break;
        }
        if (r < 0)
                while (i-- > 0)
                        if (f[i].path && !f[i].existed)
                                (void)unlink(f[i].path);
        return r;
}

static void hex_json(json_object *o, const char *name, const unsigned char *d, size_t len, const char *prefix)
{
        size_t pl = strlen(prefix);
        char *s = malloc(pl + 2 * len + 1);

        if (!s)
                return;
        memcpy(s, prefix, pl);
        hex_encode(d, len, s + pl);
        json_object_object_add(o, name, json_object_new_string(s));
        free(s);
}

static int do_export(struct cli *cli, const struct export_args *a)
{
        sign_session *ss = NULL;
        struct pub_export e = { 0 };
        bool tegra = a->format && !strcmp(a->format, "tegra");
        unsigned what = 0;
        int r;

        if ((r = cli_out_check(cli, a->out)) < 0 || (r = cli_out_check(cli, a->hash_out)) < 0 ||
            (r = cli_out_check(cli, a->mont_out)) < 0)
                return r;
        if (a->out)
                what |= tegra ? PUB_EXPORT_TEGRA : PUB_EXPORT_PEM;
        if (a->hash_out)
                what |= PUB_EXPORT_HASH;
        if (a->mont_out)
                what |= PUB_EXPORT_MONT;
        /* The manifest's own token: --token or $FUSELINE_TOKEN may only
         * narrow it (lib/signer.c). keyset_token_open logs in, as every
         * keyset command does. */
        r = cli_sign_session(cli, a->keyset, NULL, false, &ss);
        if (r < 0)
                goto out;
        r = sign_export_pub(ss, a->role, what, &e);
        if (r < 0)
                goto out;
        {
                struct out_file f[] = {
                        { a->out, tegra ? e.tegra : e.pem, tegra ? e.tegra_len : e.pem_len, false },
                        { a->hash_out, e.hash, e.hash_len, false },
                        { a->mont_out, e.mont, e.mont_len, false },
                };
                r = write_all(cli, f, FL_ARRAY_SIZE(f), 0644);
                if (r < 0)
                        goto out;
        }
        if (cli->json) {
                json_object *jo = cli_json_result("keygen", true);
                json_object_object_add(jo, "role", json_object_new_string(a->role));
                json_object_object_add(jo, "type", json_object_new_string(key_type_name(e.type)));
                json_object_object_add(jo, "format", json_object_new_string(tegra ? "tegra" : "pem"));
                if (a->out)
                        json_object_object_add(jo, "out", json_object_new_string(a->out));
                if (a->hash_out) {
                        json_object_object_add(jo, "hash_out", json_object_new_string(a->hash_out));
                        hex_json(jo, "tegra_pkc_hash", e.hash, e.hash_len, "0x");
                }
                if (a->mont_out)
                        json_object_object_add(jo, "mont_out", json_object_new_string(a->mont_out));
                if (tegra)
                        json_object_object_add(jo, "bytes", json_object_new_int64((int64_t)e.tegra_len));
                json_object_object_add(jo, "key_fingerprint", json_object_new_string(e.fpr));
                cli_json_out(jo);
        } else {
                printf("exported %s (%s, key %s)%s%s%s%s%s%s\n", a->role, key_type_name(e.type), e.fpr,
                       a->out ? " -> " : "", a->out ? a->out : "", a->hash_out ? ", hash -> " : "",
                       a->hash_out ? a->hash_out : "", a->mont_out ? ", montgomery -> " : "",
                       a->mont_out ? a->mont_out : "");
        }
        r = 0;
out:
        pub_export_clear(&e);
        sign_session_close(ss);
        return r;
}

static int do_random(struct cli *cli, const struct export_args *a)
{
        sign_session *ss = NULL;
        size_t n = (size_t)a->random;
        unsigned char *buf = NULL;
        int r;

        if ((r = cli_out_check(cli, a->out)) < 0)
                return r;
        buf = malloc(n);
        if (!buf)
                return -ENOMEM;
        r = cli_sign_session(cli, a->keyset, NULL, false, &ss);
        if (r < 0)
                goto out;
        r = sign_session_random(ss, buf, n);
        if (r < 0)
                goto out;
        /* 0600: the bytes may become an IV, a salt or key material. */
        r = file_write_atomic(cli->ctx, a->out, buf, n, 0600);
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *jo = cli_json_result("keygen", true);
                json_object_object_add(jo, "random", json_object_new_int64((int64_t)n));
                json_object_object_add(jo, "out", json_object_new_string(a->out));
                json_object_object_add(jo, "source", json_object_new_string("C_GenerateRandom"));
                cli_json_out(jo);
        } else {
                printf("wrote %zu random bytes from the token to %s\n", n, a->out);
        }
        r = 0;
out:
        if (buf)
                explicit_bzero(buf, n);
        free(buf);
        sign_session_close(ss);
        return r;
}

int cmd_keygen_export(struct cli *cli, int argc, char **argv)
{
        struct export_args a = { .random = -1 };

        cli_parse(&export_argp, argc, argv, &a);
        return a.role ? do_export(cli, &a) : do_random(cli, &a);
}
