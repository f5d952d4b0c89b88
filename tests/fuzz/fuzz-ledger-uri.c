/* fuzz-ledger-uri.c — the PostgreSQL ledger's location (lib/ledger_pg.c):
 * ledger_pg_uri_scrub, which names the ledger in every message, and the
 * password check beside it. Any bytes: the scrubbed text, read back by
 * libpq's own parser, carries no password, so no message can show one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ledger_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *in = malloc(size + 1), *out, *err = NULL;
        PQconninfoOption *opts;

        if (!in)
                abort();
        memcpy(in, data, size);
        in[size] = 0;
        out = ledger_pg_uri_scrub(in);
        if (!out)
                abort();
        if (strlen(out) > strlen(in))
                abort();
        opts = PQconninfoParse(out, &err);
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
                if (!strcmp(o->keyword, "password") && o->val && *o->val)
                        abort();
        PQconninfoFree(opts);
        PQfreemem(err);
        free(out);
        free(in);
        return 0;
}
