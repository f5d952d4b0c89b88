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
