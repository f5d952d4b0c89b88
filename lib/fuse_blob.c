/* fuse_blob.c — encoding a fuse plan as NVIDIA's fuse blob, parsing one
 * strictly, and finding it at the tail of a T234 FSKP MB2 image. The layout
 * is in fuse_blob.h; every byte of it is pinned by NVIDIA-made vectors
 * (tests/vectors/fuse-blob). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fuse_blob.h"

static uint32_t get_le32(const unsigned char *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t get_be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_le32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char)v;
        p[1] = (unsigned char)(v >> 8);
        p[2] = (unsigned char)(v >> 16);
        p[3] = (unsigned char)(v >> 24);
}

static void put_be32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

void fuse_blob_free(unsigned char *blob, size_t len)
{
        if (blob) {
                OPENSSL_cleanse(blob, len);
                free(blob);
        }
}

/* The value bytes of e as the blob holds them. 4-byte fuses are a
 * little-endian u32 (vectors: BootSecurityInfo 0x209 -> 09 02 00 00).
 * Everything larger is the XML's bytes in the order written — OdmId
 * 0x0102030405060708 included (vector t234-prod-full: 01 02 … 08, not a
 * little-endian u64). How tegraparser places an OdmId written with fewer
 * than 16 digits is not known [U]: fuseline right-aligns it as the XML
 * parser does, and a package built otherwise fails the byte comparison
 * (refused), never passes it. */
static void value_to_blob(const struct fuse_entry *e, unsigned char *out)
{
        unsigned size = e->def->size;

        if (size == 4)
                for (unsigned i = 0; i < 4; i++)
                        out[i] = e->value[3 - i];
        else
                memcpy(out, e->value, size);
}

static void value_from_blob(const struct fuse_def *d, const unsigned char *in, unsigned char *out)
{
        if (d->size == 4)
                for (unsigned i = 0; i < 4; i++)
                        out[i] = in[3 - i];
        else
                memcpy(out, in, d->size);
}

int fuse_blob_type_of(const fl_ctx *ctx, enum fl_chip chip, const struct fuse_def *d)
{
        int t = chip_fuse_blob_type(chip, d);

        for (size_t i = 0; t < 0 && d && ctx && i < ctx->n_blob_types; i++)
                if (ctx->blob_types[i].chip == (int)chip && !strcmp(ctx->blob_types[i].name, d->name))
                        t = (int)ctx->blob_types[i].type;
        return t;
}

static const struct fuse_def *def_of_type(const fl_ctx *ctx, enum fl_chip chip, uint32_t type)
{
        const struct fuse_def *d = chip_fuse_by_blob_type(chip, type);

        for (size_t i = 0; !d && ctx && i < ctx->n_blob_types; i++)
                if (ctx->blob_types[i].chip == (int)chip && ctx->blob_types[i].type == type)
                        d = chip_fuse(chip, ctx->blob_types[i].name);
        return d;
}

int fuse_blob_type_learn(fl_ctx *ctx, enum fl_chip chip, const char *name, uint32_t type, uint32_t size)
{
        const struct fuse_def *d = chip_fuse(chip, name), *other;
        int known;

        if (!d)
                return fl_err(ctx, -EINVAL, "%s is no burnable %s fuse", name, chip_name(chip));
        if (size != d->size)
                return fl_err(ctx, -EBADMSG, "the BSP's parser says %s is %u bytes; the %s fuse map says %u",
                              name, (unsigned)size, chip_name(chip), d->size);
        known = fuse_blob_type_of(ctx, chip, d);
        if (known >= 0) {
                if ((uint32_t)known != type)
                        return fl_err(ctx, -EBADMSG, "the BSP's parser gives %s fuse-blob type id 0x%x, fuseline "
                                      "knows 0x%x: this BSP cannot be checked", name, (unsigned)type,
                                      (unsigned)known);
                return 0;
        }
        other = def_of_type(ctx, chip, type);
        if (other)
                return fl_err(ctx, -EBADMSG, "the BSP's parser gives %s fuse-blob type id 0x%x, the id of %s",
                              name, (unsigned)type, other->name);
        if (ctx->n_blob_types >= FL_BLOB_TYPES_MAX || strlen(name) >= sizeof(ctx->blob_types[0].name))
                return fl_err(ctx, -EINVAL, "too many learned fuse-blob type ids");
        ctx->blob_types[ctx->n_blob_types].chip = (int)chip;
        snprintf(ctx->blob_types[ctx->n_blob_types].name, sizeof(ctx->blob_types[0].name), "%s", name);
        ctx->blob_types[ctx->n_blob_types].type = type;
        ctx->n_blob_types++;
        return 0;
}

void fuse_blob_types_copy(fl_ctx *dst, const fl_ctx *src)
{
        memcpy(dst->blob_types, src->blob_types, sizeof(dst->blob_types));
        dst->n_blob_types = src->n_blob_types;
}

int fuse_blob_encode(fl_ctx *ctx, const struct fuse_plan *plan, unsigned char **ret, size_t *ret_len)
{
        unsigned char *b = NULL;
        size_t total, off;

        if (!plan || (plan->chip != FL_CHIP_T194 && plan->chip != FL_CHIP_T234))
                return fl_err(ctx, -EINVAL, "fuse blob: unknown chip (use t194 or t234)");
        if (plan->magic != FUSE_MAGIC && !(plan->magic == FUSE_MAGIC_TEST && plan->chip == FL_CHIP_T234))
                return fl_err(ctx, -EINVAL, "fuse blob: MagicId 0x%08x is not valid on %s", (unsigned)plan->magic,
                              chip_name(plan->chip));
        if (!plan->n)
                return fl_err(ctx, -EINVAL, "fuse blob: the plan has no fuses");
        if (plan->n > FUSE_BLOB_MAX_FUSES)
                return fl_err(ctx, -EINVAL, "fuse blob: %zu fuses, at most %u", plan->n, FUSE_BLOB_MAX_FUSES);
        if (plan->rpmb)
                /* [U] the vectors hold no <rpmb> element: what tegraparser
                 * makes of one is not known. */
                return fl_err(ctx, -EINVAL,
                              "fuse blob: how rpmb provisioning is encoded in a fuse blob is not known [U]; "
                              "fuseline cannot check a package that carries it");
        total = FUSE_BLOB_HEADER + FUSE_BLOB_NODE * plan->n;
        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_def *d = plan->e[i].def;

                if (!d || chip_fuse_index(plan->chip, d) == (size_t)-1)
                        return fl_err(ctx, -EINVAL, "fuse blob: entry %zu is not a %s fuse", i, chip_name(plan->chip));
                if (fuse_blob_type_of(ctx, plan->chip, d) < 0)
                        return fl_err(ctx, -EINVAL,
                                      "fuse-blob type id of %s is not known [U]; fuseline cannot check a package "
                                      "that burns it",
                                      d->name);
                for (size_t j = 0; j < i; j++)
                        if (plan->e[j].def == d)
                                return fl_err(ctx, -EINVAL, "fuse blob: %s appears more than once", d->name);
                total += d->size;
        }
        b = calloc(1, total);
        if (!b)
                return -ENOMEM;
        put_be32(b, plan->magic);
        put_le32(b + 4, FUSE_BLOB_VERSION);
        put_le32(b + 8, (uint32_t)total);
        put_le32(b + 12, (uint32_t)plan->n);
        put_le32(b + 16, FUSE_BLOB_HEADER);
        off = FUSE_BLOB_HEADER + FUSE_BLOB_NODE * plan->n;
        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];
                unsigned char *node = b + FUSE_BLOB_HEADER + FUSE_BLOB_NODE * i;

                put_le32(node, (uint32_t)fuse_blob_type_of(ctx, plan->chip, e->def));
                put_le32(node + 4, e->def->size);
                put_le32(node + 8, (uint32_t)off);
                value_to_blob(e, b + off);
                off += e->def->size;
        }
        *ret = b;
        *ret_len = total;
        return 0;
}

int fuse_blob_parse(fl_ctx *ctx, enum fl_chip chip, const unsigned char *data, size_t len, struct fuse_plan **ret)
{
        struct fuse_plan *plan = NULL;
        unsigned char v[FUSE_VALUE_MAX];
        uint32_t magic, n;
        size_t values, expect;
        int r;

        if (chip != FL_CHIP_T194 && chip != FL_CHIP_T234)
                return fl_err(ctx, -EINVAL, "fuse blob: unknown chip (use t194 or t234)");
        if (len < FUSE_BLOB_HEADER)
                return fl_err(ctx, -EINVAL, "fuse blob: %zu bytes, shorter than its %u-byte header", len,
                              FUSE_BLOB_HEADER);
        magic = get_be32(data);
        if (magic != FUSE_MAGIC && magic != FUSE_MAGIC_TEST)
                return fl_err(ctx, -EINVAL, "fuse blob: magic 0x%08x is neither FUSE (0x45535546) nor TEST (0x54534554)",
                              (unsigned)magic);
        if (magic == FUSE_MAGIC_TEST && chip != FL_CHIP_T234)
                return fl_err(ctx, -EINVAL, "fuse blob: TEST magic is the t234 dry run; %s has none", chip_name(chip));
        if (get_le32(data + 4) != FUSE_BLOB_VERSION)
                return fl_err(ctx, -EINVAL, "fuse blob: version %u, not 1", (unsigned)get_le32(data + 4));
        if (get_le32(data + 8) != len)
                return fl_err(ctx, -EINVAL, "fuse blob: total-length field says %u bytes, the blob has %zu",
                              (unsigned)get_le32(data + 8), len);
        n = get_le32(data + 12);
        if (n == 0 || n > FUSE_BLOB_MAX_FUSES)
                return fl_err(ctx, -EINVAL, "fuse blob: fuse count %u is outside 1..%u", (unsigned)n,
                              FUSE_BLOB_MAX_FUSES);
        if (get_le32(data + 16) != FUSE_BLOB_HEADER)
                return fl_err(ctx, -EINVAL, "fuse blob: first-node offset field is 0x%x, not 0x14",
                              (unsigned)get_le32(data + 16));
        values = FUSE_BLOB_HEADER + (size_t)FUSE_BLOB_NODE * n;
        if (values > len)
                return fl_err(ctx, -EINVAL, "fuse blob: %u nodes need %zu bytes, the blob has %zu", (unsigned)n, values,
                              len);
        if ((r = fuse_plan_new(chip, &plan)) < 0)
                return r;
        plan->magic = magic;
        expect = values;
        for (uint32_t i = 0; i < n; i++) {
                const unsigned char *node = data + FUSE_BLOB_HEADER + (size_t)FUSE_BLOB_NODE * i;
                uint32_t type = get_le32(node), size = get_le32(node + 4), off = get_le32(node + 8);
                const struct fuse_def *d = def_of_type(ctx, chip, type);

                if (!d) {
                        r = fl_err(ctx, -EINVAL,
                                   "fuse blob: node %u has fuse type id 0x%x, which is no burnable %s fuse "
                                   "fuseline knows the id of",
                                   (unsigned)i, (unsigned)type, chip_name(chip));
                        goto out;
                }
                if (size != d->size) {
                        r = fl_err(ctx, -EINVAL, "fuse blob: node %u (%s) has size %u; %s is %u bytes on %s",
                                   (unsigned)i, d->name, (unsigned)size, d->name, d->size, chip_name(chip));
                        goto out;
                }
                if (off < values || off > len || len - off < size) {
                        r = fl_err(ctx, -EINVAL,
                                   "fuse blob: node %u (%s) value at offset %u+%u lies outside the value area "
                                   "%zu..%zu",
                                   (unsigned)i, d->name, (unsigned)off, (unsigned)size, values, len);
                        goto out;
                }
                for (uint32_t j = 0; j < i; j++) {
                        const unsigned char *o = data + FUSE_BLOB_HEADER + (size_t)FUSE_BLOB_NODE * j;
                        uint32_t ooff = get_le32(o + 8), osize = get_le32(o + 4);

                        if ((size_t)off < (size_t)ooff + osize && (size_t)ooff < (size_t)off + size) {
                                r = fl_err(ctx, -EINVAL, "fuse blob: node %u (%s) value at %u+%u overlaps node %u's",
                                           (unsigned)i, d->name, (unsigned)off, (unsigned)size, (unsigned)j);
                                goto out;
                        }
                }
                /* NVIDIA packs the values in node order; anything else is not
                 * a blob its parser made. */
                if (off != expect) {
                        r = fl_err(ctx, -EINVAL,
                                   "fuse blob: node %u (%s) value at offset %u; values follow the nodes packed in "
                                   "node order, so it belongs at %zu",
                                   (unsigned)i, d->name, (unsigned)off, expect);
                        goto out;
                }
                expect += size;
                if (fuse_plan_find(plan, d->name)) {
                        r = fl_err(ctx, -EINVAL, "fuse blob: %s appears more than once", d->name);
                        goto out;
                }
                value_from_blob(d, data + off, v);
                if ((r = fuse_plan_add(plan, d, v, 0)) < 0)
                        goto out;
        }
        if (expect != len) {
                r = fl_err(ctx, -EINVAL, "fuse blob: %zu bytes after the last value", len - expect);
                goto out;
        }
        *ret = plan;
        plan = NULL;
        r = 0;
out:
        OPENSSL_cleanse(v, sizeof(v));
        fuse_plan_free(plan);
        return r;
}

int fuse_blob_find_tail(fl_ctx *ctx, const unsigned char *img, size_t len, size_t *ret_off)
{
        size_t found = 0, first = 0, second = 0;

        for (size_t off = 0; len >= FUSE_BLOB_HEADER && off <= len - FUSE_BLOB_HEADER; off++) {
                uint32_t m = get_be32(img + off);

                if ((m != FUSE_MAGIC && m != FUSE_MAGIC_TEST) || get_le32(img + off + 4) != FUSE_BLOB_VERSION ||
                    get_le32(img + off + 8) != len - off)
                        continue;
                if (found++ == 0)
                        first = off;
                else if (found == 2)
                        second = off;
        }
        if (found == 0)
                return fl_err(ctx, -EINVAL,
                              "no fuse blob at the end of the image (no FUSE/TEST header whose length reaches "
                              "exactly its last byte)");
        if (found > 1)
                return fl_err(ctx, -EINVAL,
                              "%zu fuse-blob candidates end at the image's last byte (offsets %zu and %zu%s): "
                              "which one burns is ambiguous",
                              found, first, second, found > 2 ? ", ..." : "");
        *ret_off = first;
        return 0;
}
