/* fuzz-enroll-batch.c — the `enroll --batch` list parser (a file the line
 * operator hands to fuseline), with and without generated keys. Any input
 * must give a list whose items are well formed, or a clean -EINVAL/-E2BIG;
 * never a crash, a leak or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_batch.h"
#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        for (int g = 0; g < 2; g++) {
                struct enroll_batch_item *items = NULL;
                size_t n = 0;
                int r = enroll_batch_parse(ctx, "fuzz", (const char *)data, size, g, &items, &n);

                if (r == 0) {
                        if (n == 0)
                                abort();
                        for (size_t i = 0; i < n; i++) {
                                if (strlen(items[i].ecid) != LEDGER_ECID_LEN || (items[i].csr == NULL) != (g == 1) ||
                                    (i && items[i].line <= items[i - 1].line))
                                        abort();
                                for (size_t j = 0; j < i && n < 64; j++)
                                        if (!strcmp(items[i].ecid, items[j].ecid))
                                                abort(); /* a duplicate got through */
                        }
                        enroll_batch_free(items, n);
                } else if (r != -EINVAL && r != -E2BIG && r != -ENOMEM) {
                        abort();
                }
        }
        fl_ctx_free(ctx);
        return 0;
}
