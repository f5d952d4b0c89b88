/* fuzz-readback.c — the readfuses output parser and the diff against a
 * fixed plan (the file `fuse-xml --diff --readback` reads from a device's
 * tooling). Any input gives 0 or a clean -EINVAL; a parsed read-back diffs
 * to 0 or -EBADMSG, with every item's state consistent with its bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuse_plan *fixed_plan(enum fl_chip chip)
{
        static const char *const names[] = { "ReservedOdm0", "SecureBootKey", "PublicKeyHash", "BootSecurityInfo",
                                             "SecurityMode" };
        struct fuse_plan *p = NULL;
        unsigned char v[FUSE_VALUE_MAX];

        if (fuse_plan_new(chip, &p) < 0)
                return NULL;
        for (size_t i = 0; i < 5; i++) {
                const struct fuse_def *d = chip_fuse(chip, names[i]);
                memset(v, 0, sizeof(v));
                if (d->size > 8)
                        memset(v, 0x5a, d->size);
                else
                        v[d->size - 1] = i == 3 ? (chip == FL_CHIP_T234 ? 0x09 : 0x06) : 0x01;
                if (i == 3 && chip == FL_CHIP_T234)
                        v[d->size - 2] = 0x02; /* 0x209 */
                if (fuse_plan_add(p, d, v, 0) < 0) {
                        fuse_plan_free(p);
                        return NULL;
                }
        }
        return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum fl_chip chips[] = { FL_CHIP_T234, FL_CHIP_T194 };
        fl_ctx *ctx = NULL;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        for (size_t c = 0; c < 2; c++) {
                struct fuse_readback *rb = NULL;
                struct fuse_plan *p = fixed_plan(chips[c]);
                struct fuse_diff *d = NULL;
                int r;

                if (!p)
                        abort();
                r = fuse_readback_parse(ctx, "fuzz", (const char *)data, size, chips[c], &rb);
                if (r == 0) {
                        r = fuse_plan_diff(ctx, p, rb, &d);
                        if (r != 0 && r != -EBADMSG)
                                abort();
                        for (size_t i = 0; d && i < d->n; i++) {
                                const struct fuse_diff_item *it = &d->v[i];
                                if ((it->state == FD_EQUAL) != (!it->bits_to_set && !it->bits_to_clear))
                                        abort();
                                if (it->bits_to_clear && it->state != FD_CONFLICT)
                                        abort();
                        }
                } else if (r != -EINVAL) {
                        abort();
                }
                fuse_diff_free(d);
                fuse_readback_free(rb);
                fuse_plan_free(p);
        }
        fl_ctx_free(ctx);
        return 0;
}
