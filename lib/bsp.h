/* bsp.h — running NVIDIA's BSP tools (tegraflash.py, tegrarcm_v2,
 * odmfuse.sh) for one device step at a time, and never trusting what they
 * say (shared/reference/jetson-fuses.md §6):
 *  - every device works in a private copy of the package's bootloader/
 *    (tegraflash writes its temporary files there; a stale rcm_state breaks
 *    tegrarcm_v2's session logic, so it is deleted before every step);
 *  - every step runs through proc_run: own process group, a timeout that
 *    kills the group (the tools have none), one log file per device and step;
 *  - readfuses always ends with "; reboot recovery" (the applet trap) and its
 *    exit status is ignored: the result counts only when the output file
 *    names every requested fuse with a well-formed value;
 *  - burnfuses' exit status says nothing: the verdict is a read-back;
 *  - the ECID is the BR_CID line of the BootROM step, checked on every run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fuse_plan.h"
#include "internal.h"
#include "proc.h"

#define BSP_BR_CID_LEN 32 /* hex digits */

/* Called with each output line of a running step (for a live status). */
typedef void (*bsp_line_fn)(const char *line, void *data);

/* One device's working context. */
struct bsp_dev {
        const char *instance;      /* tegraflash --instance, e.g. "1-2.3" */
        enum fl_chip chip;
        const char *workdir;       /* the private copy of bootloader/ */
        const char *log_dir;       /* logs: <log_dir>/<instance>-<step>.log */
        const char *const *envp;   /* scrubbed environment for the tools */
        int timeout_ms;            /* per step */
        const char *const *tf_args; /* the package's tegraflash arguments, without the
                                     * program, --cmd and --instance */
        bool skipuid;              /* T194: the UID was read already (tegrarcm_v2 --uid) */
        const char *expect_br_cid; /* set: a run printing another BR_CID is killed at once */
        bsp_line_fn on_line;
        void *data;
};

/* What one step saw. */
struct bsp_step {
        struct proc_result pr;
        char log_path[512];
        bool have_br_cid;
        char br_cid[BSP_BR_CID_LEN + 1]; /* upper-case hex as printed, no 0x */
        bool saw_finish;                 /* the tool claimed success */
        bool no_device;                  /* the tool said the device is not there */
        char last_line[200];             /* the last non-empty line (for messages) */
        char first_error[200];           /* the first line saying "Error" (for messages) */
        bool br_cid_mismatch;            /* another board answered (killed at once) */
        char other_br_cid[BSP_BR_CID_LEN + 1];
        volatile int abort;
};

/* Copy the package's bootloader/ into workdir (created 0700, must not
 * exist), leaving out rcm_state. */
int bsp_workdir_prepare(fl_ctx *ctx, const char *bootloader_dir, const char *workdir, const char *const *envp);
/* Remove a working copy (or an extracted package) entirely. */
void bsp_tree_remove(const char *path);
/* Remove per-run debris from a working copy: rcm_state and tegraflash's
 * numeric temporary directories (a killed run leaves them behind). */
int bsp_workdir_clean(fl_ctx *ctx, const char *workdir);

/* readfuses: writes the read list for names, runs
 *   tegraflash.py ARGS --instance I [--skipuid] --cmd "readfuses OUT LIST; reboot recovery"
 * and parses OUT. Returns 0 with *ret_rb only when OUT exists, parses, and
 * names every requested fuse; -ENODEV when the tool reported no device or
 * wrote nothing (its exit status is ignored: with no device it exits 0),
 * -ETIMEDOUT when the step hung and was killed, -EBADMSG when the file is
 * partial or malformed (message names the log). step is filled in all
 * cases where the tool ran. */
int bsp_readfuses(fl_ctx *ctx, const struct bsp_dev *dev, const char *const *names, size_t n_names,
                  struct bsp_step *step, struct fuse_readback **ret_rb);

/* burnfuses with the package's own command (cmd, e.g. "burnfuses fuse.xml"
 * or "burnfuses dummy fuse.xml"). Returns 0 when the tool ran to its end
 * (whatever it said: step tells), -ETIMEDOUT when it hung and was killed,
 * -ENODEV when it reported no device. Whether anything was burned is only
 * ever known from a read-back. */
int bsp_burnfuses(fl_ctx *ctx, const struct bsp_dev *dev, const char *cmd, struct bsp_step *step);

/* T194: tegrarcm_v2 --instance I --uid (odmfuse reads the UID once, then
 * runs tegraflash with --skipuid). [U: the exact argument set odmfuse uses
 * on T194 is not in the reference; this is the minimal form.] */
int bsp_read_uid(fl_ctx *ctx, const struct bsp_dev *dev, struct bsp_step *step);

/* A "BR_CID: 0x<32 hex>" line: the 32 digits into out. */
bool bsp_br_cid_line(const char *line, char out[BSP_BR_CID_LEN + 1]);

/* What the BR_CID's fuse-level nibbles say (jetson-fuses.md §8, [I] for
 * T194/T234: decoded the way odmfuse.func's get_fuse_level does). */
struct bsp_fuse_level {
        enum fl_chip chip;   /* from E[4:6] ("23"/"19"); FL_CHIP_NONE if neither */
        bool production;     /* SecurityMode burned */
        uint32_t auth;       /* BootSecurityInfo auth bits */
        bool sbk;            /* BootSecurityInfo SBK bit */
};
int bsp_br_cid_decode(fl_ctx *ctx, const char *br_cid, struct bsp_fuse_level *ret);

/* The device key the ledger uses: the BR_CID with its fuse-level nibbles
 * cleared (T234: E[0] and E[1]; T194: E[0]), lower case — the BR_CID
 * itself changes as fuses are burned. [I] */
int bsp_ecid_from_br_cid(fl_ctx *ctx, enum fl_chip chip, const char *br_cid, char out[BSP_BR_CID_LEN + 1]);

/* One line of `tar -tvf`'s listing of a package: 0 when the entry is a
 * file, a directory, or a link that stays inside; -EINVAL naming it
 * otherwise (absolute path, "..", device, fifo, link pointing outside). */
int bsp_package_entry_check(fl_ctx *ctx, const char *line);

/* Extract a fuse package (fuseblob.tbz2) into dir (must exist, empty)
 * with tar, after listing it: absolute paths, ".." components, devices,
 * fifos and links pointing outside are refused (-EINVAL naming the entry). */
int bsp_package_extract(fl_ctx *ctx, const char *tbz2, const char *dir, const char *const *envp);

/* Run `odmfuse.sh --noburn -i <chip> -X xml --auth NS [--test] <board>` in
 * bsp_dir with the board values in the environment; the package it writes
 * (bsp_dir/fuseblob.tbz2) is moved to out (must not exist). */
int bsp_odmfuse_package(fl_ctx *ctx, const char *bsp_dir, enum fl_chip chip, const struct odm_board *board,
                        const char *xml_path, bool test, const char *out, const char *log_path,
                        const char *const *envp, int timeout_ms);

/* Ask the BSP's own parser for the fuse-blob type ids of names that
 * fuseline's table lacks, and learn them into ctx (fuse_blob_type_learn):
 * `bootloader/tegraparser_v2 [--chip 0x19 0] --read_fusetype NAME OUT` in a
 * private directory, as tegraflash's readfuses calls it, whose OUT is
 * {u32 LE type id, u32 LE size}. Names fuseline knows are asked too and
 * must agree. -EIO naming the fuse when the parser fails or writes
 * something else; -EBADMSG when its answer disagrees with the fuse map. */
int bsp_fuse_types_learn(fl_ctx *ctx, const char *bsp_dir, enum fl_chip chip, const char *const *names,
                         const char *const *envp, const char *log_path, int timeout_ms);
