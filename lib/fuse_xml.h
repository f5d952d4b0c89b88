/* fuse_xml.h — NVIDIA genericfuse XML (jetson-fuses.md §1): writing a plan
 * (0600, atomically, with a provenance comment) and parsing/checking any
 * fuse XML with libxml2, hardened against hostile input: size limit, no
 * network, no DTD, no entities, flat structure only. */
#pragma once

#include "fuse_plan.h"
#include "internal.h"
#include "keyset.h"

#define FUSE_XML_MAX_BYTES (64 * 1024)
#define FUSE_XML_MAX_FUSES 128

/* The XML text of plan, in a wiped-on-free buffer (it may hold keys). */
int fuse_xml_render(fl_ctx *ctx, const struct fuse_plan *plan, struct fl_secret *ret);
/* Render and write to path atomically with mode 0600. */
int fuse_xml_write(fl_ctx *ctx, const struct fuse_plan *plan, const char *path);

/* Read a fuse XML file (<= FUSE_XML_MAX_BYTES) into a wiped-on-free buffer. */
int fuse_xml_load(fl_ctx *ctx, const char *path, struct fl_secret *ret);

/* Parse data as a genericfuse burn file for chip. Every problem of form
 * (well-formedness, hostile constructs, root, MagicId, version, rpmb,
 * elements, names, sizes, values, duplicates) is appended to probs; the
 * plan holds the fuses that parsed, in file order (NULL when the document
 * could not be parsed at all). Returns 0 or -ENOMEM. */
int fuse_xml_parse(fl_ctx *ctx, const unsigned char *data, size_t len, enum fl_chip chip,
                   struct fuse_plan **ret_plan, struct fuse_problems *probs);

/* fuse_xml_parse + fuse_plan_check (with ks: hashes and check values too).
 * ret_plan may be NULL. */
int fuse_xml_check(fl_ctx *ctx, const unsigned char *data, size_t len, enum fl_chip chip, const struct keyset *ks,
                   struct fuse_plan **ret_plan, struct fuse_problems *probs);
/* The same with acknowledged unverified facts (FUSE_ACCEPT_*) the check lets
 * pass; fuse_xml_check acknowledges none. */
int fuse_xml_check_ack(fl_ctx *ctx, const unsigned char *data, size_t len, enum fl_chip chip,
                       const struct keyset *ks, uint32_t accept_unverified, struct fuse_plan **ret_plan,
                       struct fuse_problems *probs);
