/* package.h — NVIDIA's offline fuse package (what `odmfuse.sh --noburn`
 * writes: fuseblob.tbz2 holding a bootloader/ directory), extracted: its
 * bootloader/fusecmd.sh parsed strictly into a tegraflash argv, what the
 * package will really burn, and the check that it burns exactly the plan
 * (jetson-fuses.md §6 "The offline fuse package", "What a T234 package
 * actually burns"). The package is outside input: anything fuseline cannot
 * read with certainty is refused, never guessed.
 *
 * Return codes: -EINVAL a malformed or unsafe package (exit 2), -ENOENT no
 * such directory/file, -EBADMSG the package does not burn the plan (exit 5),
 * -EPERM the package does not suit the mode — a FUSE package or a plain
 * burnfuses under a dry run, a TEST package or burnfuses dummy under a
 * commit (refused by an interlock, exit 6). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fuse_plan.h"
#include "internal.h"

#define FUSECMD_MAX_BYTES (64 * 1024)
#define PACKAGE_IMAGE_MAX_BYTES (64u * 1024 * 1024) /* the FSKP MB2 image */

/* The form of fusecmd.sh's --cmd value. */
enum package_form {
        PACKAGE_BURN = 0,   /* "burnfuses <xml>" */
        PACKAGE_BURN_DUMMY, /* "burnfuses dummy <xml>": T194's dry run */
};

/* What the caller is about to do with the package. */
enum package_mode {
        PACKAGE_MODE_SHOW = 0, /* no device-side step: compare only */
        PACKAGE_MODE_DRY_RUN,  /* the device-side test: must burn nothing */
        PACKAGE_MODE_COMMIT,   /* the real burn: must burn everything */
};

/* fusecmd.sh, parsed. */
struct fusecmd {
        enum fl_chip chip;       /* from --chip (0x19 / 0x23) */
        char **argv;             /* tegraflash arguments, NULL-terminated: without
                                  * ./tegraflash.py and without --cmd and its value */
        size_t argc;
        char *cmd;               /* the --cmd value */
        enum package_form form;
        char *xml;               /* the XML named in --cmd (relative to bootloader/) */
        char *mb2;               /* the mb2_bootloader file of --bins (NULL if none) */
};

/* Parse the text of fusecmd.sh. Accepted: "#!/bin/bash" first, an optional
 * "export PATH=.:${PATH}", empty lines, and exactly one
 * eval './tegraflash.py …' line whose command is split into words the way
 * the shell would (double quotes with \\ \" \$ \` escapes); any other
 * command, expansion ($, backticks), separator (; | &), redirection, glob,
 * unquoted backslash, second eval line, absolute or ".." path, abbreviated
 * or repeated --chip/--cmd/--bins, or an --instance is -EINVAL naming the
 * line (name: the file, for messages). */
int fusecmd_parse(fl_ctx *ctx, const char *name, const unsigned char *text, size_t len, struct fusecmd **ret);
void fusecmd_free(struct fusecmd *fc);

struct fuse_package;

/* Open the extracted package directory dir (the one holding bootloader/):
 * parse bootloader/fusecmd.sh, and check that every file it names, and every
 * symlink under bootloader/, stays inside bootloader/. */
int package_open(fl_ctx *ctx, const char *dir, struct fuse_package **ret);
void package_free(struct fuse_package *pkg); /* accepts NULL */

/* What the package will burn. T234: the fuse blob at the tail of the
 * mb2_bootloader image (burnfuses ignores the XML there); T194: the XML
 * named in --cmd (see package_form for dummy). */
int package_plan(fl_ctx *ctx, const struct fuse_package *pkg, struct fuse_plan **ret);

/* Does the package burn exactly plan, and does it suit mode? T234: the
 * plan encoded as a fuse blob against the package's blob, byte for byte
 * (the magic is judged by the mode rule: a FUSE plan matches a TEST
 * package); T194: the package XML's fuses against the plan's, in order.
 * Each difference is a problem naming the fuse (values shown only for
 * fuses that are not secret); each mode refusal a problem with rule
 * "mode". Returns 0, -EBADMSG (differences; mode problems are listed
 * too), -EPERM (only mode refusals), -EINVAL (malformed package, or a plan
 * fuseline cannot encode), -ENOMEM. */
int package_check(fl_ctx *ctx, const struct fuse_package *pkg, const struct fuse_plan *plan, enum package_mode mode,
                  struct fuse_problems *probs);

/* Accessors for the burn code. */
const char *const *package_argv(const struct fuse_package *pkg, size_t *ret_n);
enum fl_chip package_chip(const struct fuse_package *pkg);
const char *package_bootloader_dir(const struct fuse_package *pkg); /* resolved, absolute */
enum package_form package_form(const struct fuse_package *pkg);
const char *package_cmd(const struct fuse_package *pkg); /* the --cmd value */
const char *package_xml(const struct fuse_package *pkg);
const char *package_mb2(const struct fuse_package *pkg); /* NULL if the package has none */
