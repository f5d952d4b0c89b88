/* fuzz-ledger-uri.c — the PostgreSQL ledger's location (lib/ledger_pg.c):
 * ledger_pg_uri_scrub, which names the ledger in every message, and the
 * password check beside it. Any bytes, made a URI (ldb_ops_for sends only
 * postgresql:// and postgres:// locations here; others get the prefix):
 * the scrubbed text, read back by libpq's own parser, carries no password,
 * so no message can show one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ledger_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char prefix[] = "postgresql://";
        char *in = malloc(sizeof(prefix) + size), *out, *err = NULL;
        PQconninfoOption *opts;

        if (!in)
                abort();
        memcpy(in, prefix, sizeof(prefix) - 1);
        memcpy(in + sizeof(prefix) - 1, data, size);
        in[sizeof(prefix) - 1 + size] = 0;
        if (!strncmp(in + sizeof(prefix) - 1, "postgres", 8)) /* the input names its own scheme */
                memmove(in, in + sizeof(prefix) - 1, strlen(in + sizeof(prefix) - 1) + 1);
        if (!ldb_is_uri(in))
                goto done;
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
done:
        free(in);
        return 0;
}
