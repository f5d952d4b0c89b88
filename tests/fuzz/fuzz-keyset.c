/* fuzz-keyset.c — the keyset manifest parser and the fuse-key file parser
 * (both read files a user hands to fuseline). Any input must give 0 or a
 * clean -EINVAL, never a crash, a leak or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keygen.h"
#include "keyset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        struct keyset *ks = NULL;
        struct fl_secret s = { 0 };
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        r = keyset_parse(ctx, "fuzz", (const char *)data, size, &ks);
        if (r == 0) {
                /* What parses must serialise and parse again. */
                json_object *o = keyset_to_json(ks);
                const char *txt = json_object_to_json_string(o);
                struct keyset *ks2 = NULL;
                if (keyset_parse(ctx, "again", txt, strlen(txt), &ks2) != 0)
                        abort();
                keyset_free(ks2);
                json_object_put(o);
                keyset_free(ks);
        } else if (r != -EINVAL && r != -ENOMEM) {
                abort();
        }
        for (size_t want = 16; want <= 32; want += 16) {
                r = fusekey_parse(ctx, "fuzz", data, size, want, &s);
                if (r == 0 && s.len != want)
                        abort();
                secret_wipe(&s);
        }
        fl_ctx_free(ctx);
        return 0;
}
