/* fuzz-fuse-xml.c — the fuse XML checker (any file a user hands to
 * `fuse-xml --check` / `--diff`). Any input must give 0 with problems or a
 * plan, never a crash, a leak, an out-of-bounds read or a problem line
 * with a control character; whatever parses cleanly must render and parse
 * again to the same plan hash. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum fl_chip chips[] = { FL_CHIP_T234, FL_CHIP_T194 };
        fl_ctx *ctx = NULL;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        for (size_t c = 0; c < 2; c++) {
                struct fuse_problems probs = { 0 };
                struct fuse_plan *p = NULL;

                if (fuse_xml_check(ctx, data, size, chips[c], NULL, &p, &probs) < 0)
                        abort();
                for (size_t i = 0; i < probs.n; i++)
                        for (const char *m = probs.v[i].msg; *m; m++)
                                if (!isprint((unsigned char)*m))
                                        abort();
                if (p && !probs.n) {
                        struct fl_secret s = { 0 };
                        struct fuse_problems again = { 0 };
                        struct fuse_plan *q = NULL;
                        char a[65], b[65];

                        if (fuse_xml_render(ctx, p, &s) < 0 ||
                            fuse_xml_check(ctx, s.data, s.len, chips[c], NULL, &q, &again) < 0 || !q || again.n ||
                            fuse_plan_sha256(ctx, p, a) < 0 || fuse_plan_sha256(ctx, q, b) < 0 || strcmp(a, b))
                                abort();
                        fuse_plan_free(q);
                        fuse_problems_free(&again);
                        secret_wipe(&s);
                }
                fuse_plan_free(p);
                fuse_problems_free(&probs);
        }
        fl_ctx_free(ctx);
        return 0;
}
