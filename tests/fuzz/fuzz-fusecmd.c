/* fuzz-fusecmd.c — the fusecmd.sh parser (a fuse package is outside input).
 * Any input must give 0 or a clean refusal with a one-line printable
 * message, never a crash, a leak or an out-of-bounds read; an accepted
 * script must give a well-formed result: a known chip, a burnfuses form, an
 * argv without a word argparse reads as --cmd or --instance, and no
 * absolute or ".." --cmd XML. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "package.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether tegraflash's argparse would read word a as option --opt: "--"
 * then a non-empty prefix of opt (argparse takes unique abbreviations),
 * alone or before "=value". "--instancex" is not --instance: argparse
 * leaves it unrecognised. */
static int reads_as(const char *a, const char *opt)
{
        size_t nl;

        if (strncmp(a, "--", 2))
                return 0;
        nl = strcspn(a + 2, "=");
        return nl && nl <= strlen(opt) && !strncmp(a + 2, opt, nl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        struct fusecmd *fc = NULL;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        r = fusecmd_parse(ctx, "fusecmd.sh", data, size, &fc);
        fuzz_check_rc(r);
        if (r < 0) {
                const char *m = fl_ctx_last_error(ctx);
                if (fc || !m)
                        abort();
                for (; *m; m++)
                        if (!isprint((unsigned char)*m))
                                abort();
        } else {
                if (!fc || (fc->chip != FL_CHIP_T194 && fc->chip != FL_CHIP_T234) || !fc->xml || !fc->cmd ||
                    (fc->form != PACKAGE_BURN && fc->form != PACKAGE_BURN_DUMMY) || fc->xml[0] == '/' ||
                    !strncmp(fc->xml, "../", 3) || strstr(fc->xml, "/../") || (fc->chip == FL_CHIP_T234 && !fc->mb2))
                        abort();
                if (fc->argc && (!fc->argv || fc->argv[fc->argc]))
                        abort();
                for (size_t i = 0; i < fc->argc; i++)
                        if (!fc->argv[i] || reads_as(fc->argv[i], "cmd") || reads_as(fc->argv[i], "instance"))
                                abort();
        }
        fusecmd_free(fc);
        fl_ctx_free(ctx);
        return 0;
}
