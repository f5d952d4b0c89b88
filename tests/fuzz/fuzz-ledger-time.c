/* fuzz-ledger-time.c — the parsers of command-line input the ledger takes:
 * `--since TIME` (ledger_time_parse) and ECIDs (ledger_ecid_parse). Beyond
 * "no crash", checks what must hold for any input: an accepted time is
 * canonical and parses back to itself; an accepted ECID is 32 lower-case
 * hex digits and parses back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_ctx *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s, out[LEDGER_TIME_LEN], again[LEDGER_TIME_LEN], ecid[LEDGER_ECID_LEN + 1], ecid2[LEDGER_ECID_LEN + 1];

        if (!ctx && fl_ctx_new(&ctx) < 0)
                abort();
        s = fuzz_cstr(data, size);
        if (!s)
                abort();

        memset(out, 'x', sizeof(out));
        if (ledger_time_parse(ctx, s, (time_t)1714566645, out) == 0) {
                if (strlen(out) != LEDGER_TIME_LEN - 1 || out[4] != '-' || out[10] != 'T' || out[19] != 'Z')
                        abort();
                if (ledger_time_parse(ctx, out, 0, again) != 0 || strcmp(out, again))
                        abort();
        } else if (!fl_ctx_last_error(ctx)) {
                abort(); /* every refusal says why */
        }

        if (ledger_ecid_parse(ctx, s, ecid) == 0) {
                if (strlen(ecid) != LEDGER_ECID_LEN || strspn(ecid, "0123456789abcdef") != LEDGER_ECID_LEN)
                        abort();
                if (ledger_ecid_parse(ctx, ecid, ecid2) != 0 || strcmp(ecid, ecid2))
                        abort();
        }
        fl_err_clear(ctx);
        free(s);
        return 0;
}
