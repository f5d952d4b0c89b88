/* fuzz-fuse-blob.c — the fuse blob parser and the tail finder (a package's
 * FSKP MB2 image is outside input). Any input must give 0 or a clean
 * refusal, never a crash, a leak or an out-of-bounds read; whatever parses
 * must encode back to exactly the same bytes (the parser accepts only the
 * layout NVIDIA's parser makes), and a tail that is found must parse the
 * same way on its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_blob.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_roundtrip(fl_ctx *ctx, enum fl_chip chip, const uint8_t *data, size_t size)
{
        struct fuse_plan *p = NULL;
        unsigned char *b = NULL;
        size_t bl = 0;
        int r = fuse_blob_parse(ctx, chip, data, size, &p);

        fuzz_check_rc(r);
        if (r < 0) {
                if (p)
                        abort();
                return;
        }
        if (fuse_blob_encode(ctx, p, &b, &bl) < 0 || bl != size || memcmp(b, data, size))
                abort();
        fuse_blob_free(b, bl);
        fuse_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum fl_chip chips[] = { FL_CHIP_T234, FL_CHIP_T194 };
        fl_ctx *ctx = NULL;
        size_t off = 0;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        for (size_t c = 0; c < 2; c++)
                parse_roundtrip(ctx, chips[c], data, size);
        r = fuse_blob_find_tail(ctx, data, size, &off);
        fuzz_check_rc(r);
        if (r == 0) {
                if (off > size || size - off < FUSE_BLOB_HEADER)
                        abort();
                for (size_t c = 0; c < 2; c++)
                        parse_roundtrip(ctx, chips[c], data + off, size - off);
        }
        fl_ctx_free(ctx);
        return 0;
}
