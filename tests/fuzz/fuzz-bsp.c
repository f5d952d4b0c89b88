/* fuzz-bsp.c — what fuseline reads from NVIDIA's tools while they run: each
 * input line as a tool's output line (BR_CID lines, then their fuse-level
 * decoding and the ledger's device key) and as a line of `tar -tvf`'s
 * listing of a fuse package. Any line gives a clean answer: a BR_CID is 32
 * hex digits or nothing, its device key differs from it only in the
 * fuse-level nibbles, and a package entry is accepted or -EINVAL. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(fl_ctx *ctx, const char *line)
{
        char cid[BSP_BR_CID_LEN + 1], key[BSP_BR_CID_LEN + 1];
        struct bsp_fuse_level fl;
        int r;

        if (bsp_br_cid_line(line, cid)) {
                if (strlen(cid) != BSP_BR_CID_LEN)
                        abort();
                for (size_t i = 0; i < BSP_BR_CID_LEN; i++)
                        if (!isxdigit((unsigned char)cid[i]) || islower((unsigned char)cid[i]))
                                abort();
                r = bsp_br_cid_decode(ctx, cid, &fl);
                if (r != 0 && r != -EINVAL)
                        abort();
                r = bsp_ecid_from_br_cid(ctx, FL_CHIP_NONE, cid, key);
                if (r == 0) {
                        size_t keep = fl.chip == FL_CHIP_T234 ? 2 : 1;
                        for (size_t i = 0; i < keep; i++)
                                if (key[i] != '0')
                                        abort();
                        for (size_t i = keep; i < BSP_BR_CID_LEN; i++)
                                if (tolower((unsigned char)cid[i]) != key[i])
                                        abort();
                } else if (r != -EINVAL) {
                        abort();
                }
        }
        r = bsp_package_entry_check(ctx, line);
        if (r != 0 && r != -EINVAL)
                abort();
        /* Nothing but files, directories and links is ever accepted. */
        if (r == 0 && line[0] != '-' && line[0] != 'd' && line[0] != 'l')
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        char *text = malloc(size + 1), *save = NULL, *line;

        if (!text || fl_ctx_new(&ctx) < 0) {
                free(text);
                return 0;
        }
        memcpy(text, data, size);
        text[size] = 0;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                one_line(ctx, line);
        fl_ctx_free(ctx);
        free(text);
        return 0;
}
