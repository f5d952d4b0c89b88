/* enroll_batch.c — the `enroll --batch` device list (see enroll_batch.h).
 * Duplicate ECIDs are found with a hash set, so a list of 100 000 devices
 * costs one pass. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_batch.h"
#include "ledger.h"

void enroll_batch_free(struct enroll_batch_item *items, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(items[i].ecid);
                free(items[i].csr);
                free(items[i].serial);
        }
        free(items);
}

/* ECIDs seen so far: open addressing over indexes into the item array
 * (SIZE_MAX: empty slot); cap is a power of two kept above twice the count. */
struct ecid_set {
        size_t *slot;
        size_t cap, n;
};

static uint64_t ecid_hash(const char *s)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

static int set_grow(struct ecid_set *set, const struct enroll_batch_item *items)
{
        size_t cap = set->cap ? set->cap * 2 : 256, *slot = malloc(cap * sizeof(*slot));

        if (!slot)
                return -ENOMEM;
        for (size_t i = 0; i < cap; i++)
                slot[i] = SIZE_MAX;
        for (size_t i = 0; i < set->cap; i++) {
                size_t j;
                if (set->slot[i] == SIZE_MAX)
                        continue;
                for (j = ecid_hash(items[set->slot[i]].ecid) & (cap - 1); slot[j] != SIZE_MAX; j = (j + 1) & (cap - 1))
                        ;
                slot[j] = set->slot[i];
        }
        free(set->slot);
        set->slot = slot;
        set->cap = cap;
        return 0;
}

/* The index of the item holding ecid, or SIZE_MAX. */
static size_t set_find(const struct ecid_set *set, const struct enroll_batch_item *items, const char *ecid)
{
        if (!set->cap)
                return SIZE_MAX;
        for (size_t j = ecid_hash(ecid) & (set->cap - 1); set->slot[j] != SIZE_MAX; j = (j + 1) & (set->cap - 1))
                if (!strcmp(items[set->slot[j]].ecid, ecid))
                        return set->slot[j];
        return SIZE_MAX;
}

/* Add item idx (whose ECID is not in the set). */
static int set_add(struct ecid_set *set, const struct enroll_batch_item *items, size_t idx)
{
        size_t j;

        if (2 * (set->n + 1) > set->cap) {
                int r = set_grow(set, items);
                if (r < 0)
                        return r;
        }
        for (j = ecid_hash(items[idx].ecid) & (set->cap - 1); set->slot[j] != SIZE_MAX; j = (j + 1) & (set->cap - 1))
                ;
        set->slot[j] = idx;
        set->n++;
        return 0;
}

int enroll_batch_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, bool generate,
                       struct enroll_batch_item **ret, size_t *ret_n)
{
        struct enroll_batch_item *items = NULL;
        struct ecid_set set = { 0 };
        size_t n = 0, cap = 0, pos = 0;
        char *copy = NULL;
        unsigned lineno = 0;
        int r;

        if (memchr(text, 0, len))
                return fl_err(ctx, -EINVAL, "%s: not a text file (NUL byte)", name);
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, text, len);
        copy[len] = 0;
        while (pos < len) {
                char *line = copy + pos, *nl = memchr(line, '\n', len - pos);
                char *f[4] = { 0 }, *fs = NULL, *tok;
                int nf = 0;
                char ecid[LEDGER_ECID_LEN + 1];
                size_t dup;

                if (nl)
                        *nl = 0;
                pos = nl ? (size_t)(nl - copy) + 1 : len;
                lineno++;
                for (tok = strtok_r(line, " \t\r", &fs); tok && nf < 4; tok = strtok_r(NULL, " \t\r", &fs))
                        f[nf++] = tok;
                if (nf == 0 || f[0][0] == '#')
                        continue;
                if (nf < 2 || nf > 3) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: expected 'ECID CSR [SERIAL]', got %d fields", name, lineno, nf);
                        goto out;
                }
                if (ledger_ecid_parse(ctx, f[0], ecid) < 0) {
                        char msg[FL_ERRMSG_MAX];
                        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx));
                        r = fl_err(ctx, -EINVAL, "%s:%u: %s", name, lineno, msg);
                        goto out;
                }
                if (!strcmp(f[1], "-") && !generate) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: CSR '-' is only for a device key generated in the token", name,
                                   lineno);
                        goto out;
                }
                if (strcmp(f[1], "-") && generate) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: the device key is generated in the token: the CSR field must be '-'", name, lineno);
                        goto out;
                }
                dup = set_find(&set, items, ecid);
                if (dup != SIZE_MAX) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: ECID %s is listed twice (line %u)", name, lineno, ecid,
                                   items[dup].line);
                        goto out;
                }
                if (n == ENROLL_BATCH_MAX_LINES) {
                        r = fl_err(ctx, -E2BIG, "%s: more than %d devices", name, ENROLL_BATCH_MAX_LINES);
                        goto out;
                }
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        struct enroll_batch_item *ni = realloc(items, nc * sizeof(*ni));
                        if (!ni) {
                                r = -ENOMEM;
                                goto out;
                        }
                        items = ni;
                        cap = nc;
                }
                items[n] = (struct enroll_batch_item){ .ecid = strdup(ecid), .csr = generate ? NULL : strdup(f[1]),
                                                       .serial = f[2] ? strdup(f[2]) : NULL, .line = lineno };
                n++;
                if (!items[n - 1].ecid || (!generate && !items[n - 1].csr) || (f[2] && !items[n - 1].serial)) {
                        r = -ENOMEM;
                        goto out;
                }
                r = set_add(&set, items, n - 1);
                if (r < 0)
                        goto out;
        }
        if (n == 0) {
                r = fl_err(ctx, -EINVAL, "%s: no devices listed", name);
                goto out;
        }
        *ret = items;
        *ret_n = n;
        items = NULL;
        n = 0;
        r = 0;
out:
        enroll_batch_free(items, n);
        free(set.slot);
        free(copy);
        return r;
}

int enroll_batch_load(fl_ctx *ctx, const char *path, bool generate, struct enroll_batch_item **ret,
                      size_t *ret_n)
{
        unsigned char *data = NULL;
        size_t len = 0;
        int r = file_read(ctx, path, ENROLL_BATCH_FILE_MAX, &data, &len);

        if (r < 0)
                return r;
        r = enroll_batch_parse(ctx, path, (const char *)data, len, generate, ret, ret_n);
        free(data);
        return r;
}
