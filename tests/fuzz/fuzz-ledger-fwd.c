/* fuzz-ledger-fwd.c — the forwarded proof in an event's details, as read
 * back from a central ledger (outside input: anyone with the database can
 * write there): ledger_fwd_split. Beyond "no crash": a split that succeeds
 * gives back what ledger_fwd_attach turns into the input again, byte for
 * byte; and attaching a proof to any object text splits back to that text
 * and that proof. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ledger_fwd f, g;
        char *s, *orig = NULL, *again = NULL;
        size_t n;
        int r;

        s = fuzz_cstr(data, size);
        if (!s)
                abort();
        r = ledger_fwd_split(s, &orig, &f);
        if (r == 0) {
                if (ledger_fwd_attach(orig, &f, &again) != 0 || strcmp(again, s))
                        abort();
                free(again);
                again = NULL;
                free(orig);
                orig = NULL;
        } else if (r != -ENOENT && r != -EBADMSG) {
                abort();
        }
        /* Any text between braces takes a proof and gives it back (the split
         * also insists the rest is a JSON object: only then must it agree). */
        n = strlen(s);
        memset(&f, 0, sizeof(f));
        memcpy(f.spool, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 64);
        f.seq = (int64_t)(n + 1);
        f.intent_id = (int64_t)(n % 3);
        memset(f.hash, (int)n, sizeof(f.hash));
        if (ledger_fwd_attach(s, &f, &again) == 0) {
                if (n < 2 || s[0] != '{' || s[n - 1] != '}')
                        abort();
                r = ledger_fwd_split(again, &orig, &g);
                if (r == 0 && (strcmp(orig, s) || g.seq != f.seq || g.intent_id != f.intent_id ||
                               memcmp(g.hash, f.hash, sizeof(f.hash)) || memcmp(g.prev, f.prev, sizeof(f.prev))))
                        abort();
                if (r != 0 && r != -EBADMSG && r != -ENOENT)
                        abort();
        }
        free(orig);
        free(again);
        free(s);
        return 0;
}
