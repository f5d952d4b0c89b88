/* fuse_blob.h — NVIDIA's binary fuse blob (what `tegraparser_v2 --fuse_info`
 * compiles a genericfuse XML into, and what a T234 fuse package really
 * burns: it rides at the end of the FSKP MB2 image). Layout and known-answer
 * vectors: shared/vectors/fuse-blob/VECTORS.txt (tests/vectors/fuse-blob).
 *
 *   0   u32 big-endian  MagicId (FUSE 45 53 55 46, TEST 54 53 45 54)
 *   4   u32 LE          version = 1
 *   8   u32 LE          total length, header included
 *   12  u32 LE          N, the number of fuses
 *   16  u32 LE          0x14, the offset of the first node
 *   20  N x { u32 LE type id, u32 LE size, u32 LE value offset }
 *   ..  the values in node order, packed: 4-byte fuses as a little-endian
 *       u32, larger ones as the bytes of the XML's hex string.
 *
 * A blob holds key values: buffers returned here are wiped by
 * fuse_blob_free. */
#pragma once

#include <stddef.h>

#include "fuse_plan.h"
#include "internal.h"

#define FUSE_BLOB_HEADER 20u
#define FUSE_BLOB_NODE 12u
#define FUSE_BLOB_VERSION 1u
#define FUSE_BLOB_MAX_FUSES 128u /* FUSE_XML_MAX_FUSES: no plan is larger */

/* Encode plan (chip T194/T234; magic FUSE, or TEST on T234) exactly as
 * NVIDIA's parser would. -EINVAL (naming the fuse) for a fuse whose blob
 * type id fuseline does not know, an empty plan, a duplicate fuse, rpmb
 * provisioning (its blob form is not known [U]). *ret is malloc'd; release
 * it with fuse_blob_free. */
int fuse_blob_encode(fl_ctx *ctx, const struct fuse_plan *plan, unsigned char **ret, size_t *ret_len);
/* Wipe and free an encoded blob (accepts NULL). */
void fuse_blob_free(unsigned char *blob, size_t len);

/* Parse a blob for chip, strictly: every length, count, offset and size is
 * checked against the buffer and the chip's fuse map; unknown type ids,
 * duplicate fuses, overlapping, out-of-range or gapped values, trailing
 * bytes, a magic other than FUSE/TEST are each -EINVAL with a message that
 * names the node and the field (never a key value). The plan holds the
 * fuses in node order with plan->magic from the blob. */
int fuse_blob_parse(fl_ctx *ctx, enum fl_chip chip, const unsigned char *data, size_t len, struct fuse_plan **ret);

/* Locate the blob at the end of an FSKP MB2 image: the offset off where a
 * FUSE/TEST magic is followed by version 1 and a total length equal to
 * len - off. Exactly one such candidate must exist: none or several is
 * -EINVAL. Only locates; parse the tail with fuse_blob_parse. */
int fuse_blob_find_tail(fl_ctx *ctx, const unsigned char *img, size_t len, size_t *ret_off);

/* Fuse-blob type ids beyond fuseline's table (chip_fuse_blob_type), as the
 * BSP's own tegraparser_v2 states them (`--read_fusetype NAME`, see
 * bsp_fuse_types_learn): the program that builds the package is the
 * authority for the ids it writes, so fuseline takes them from it for that
 * run instead of guessing [U]. Accepted only for a burnable fuse of chip
 * whose size is the fuse map's, whose id does not belong to another fuse
 * (in the table or learned), and, for a fuse the table knows, equal to the
 * table's id; -EBADMSG naming the fuse otherwise (the BSP and fuseline
 * disagree: nothing built with it can be checked). Kept in ctx (copy it
 * to worker contexts with fuse_blob_types_copy). */
int fuse_blob_type_learn(fl_ctx *ctx, enum fl_chip chip, const char *name, uint32_t type, uint32_t size);
void fuse_blob_types_copy(fl_ctx *dst, const fl_ctx *src);
/* The id of d on chip: the table's, else a learned one, else -1. */
int fuse_blob_type_of(const fl_ctx *ctx, enum fl_chip chip, const struct fuse_def *d);
