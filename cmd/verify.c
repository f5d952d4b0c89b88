/* verify.c — `fuseline verify WHAT`: dispatches to the subcommand that
 * proves one kind of thing. Each subcommand lives with its subject. */
#include <string.h>

#include "cli.h"

static const struct {
        const char *what;
        cmd_fn fn;
        const char *summary;
} verbs[] = {
        { "keyset", cmd_verify_keyset, "a keyset manifest against its token" },
        { "signature", cmd_verify_signature, "a signature or MAC over a file (fuseline sign's formats)" },
        { "ledger", cmd_verify_ledger, "the ledger's hash chain, device/certificate records, dangling intents" },
        { "cert", cmd_verify_cert, "a device identity certificate: chain, IDevID profile, current in the ledger" },
        { "fuses", cmd_verify_fuses, "a device's fuses read back against a plan and its package" },
        { "ekb", cmd_verify_ekb, "an EKB image: CMAC, records against a keyset, and what is wrong with a bad one" },
        { "uefi", cmd_verify_uefi, "a UEFI key bundle (ESLs, .auth signatures, uefi_keys.conf, .dts/.dtbo)" },
};

int cmd_verify(struct cli *cli, int argc, char **argv)
{
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                FILE *f = argc < 2 ? stderr : stdout;
                fprintf(f, "Usage: fuseline verify WHAT [OPTIONS]\n\nWHAT:\n");
                for (size_t i = 0; i < FL_ARRAY_SIZE(verbs); i++)
                        fprintf(f, "  %-10s %s\n", verbs[i].what, verbs[i].summary);
                fprintf(f, "\nEach takes --help. Exit 5 when what is verified does not match.\n");
                if (argc < 2)
                        return fl_err(cli->ctx, -EINVAL, "verify needs a subject (see fuseline verify --help)");
                return 0;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(verbs); i++)
                if (!strcmp(argv[1], verbs[i].what)) {
                        static char name[64];
                        snprintf(name, sizeof(name), "verify %s", verbs[i].what);
                        cli->cmd = name;
                        {
                                static char prog[80];
                                snprintf(prog, sizeof(prog), "fuseline %s", name);
                                argv[1] = prog;
                        }
                        return verbs[i].fn(cli, argc - 1, argv + 1);
                }
        return fl_err(cli->ctx, -EINVAL, "unknown verify subject '%s' (see fuseline verify --help)", argv[1]);
}
