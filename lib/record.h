/* record.h — facts the ledger records about files a command produced or
 * consumed (fuse plans, packages, keyset manifests, signed images): their
 * SHA-256, streamed so a multi-GB image costs constant memory. Never the
 * contents. */
#pragma once

#include "internal.h"

/* SHA-256 of the whole file at path, lower-case hex. Errors name the path:
 * -ENOENT missing, -EINVAL not a regular file, -EIO a read error. */
int record_file_sha256(fl_ctx *ctx, const char *path, char out[65]);
