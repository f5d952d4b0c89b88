/* fuse_plan.h — the fuse plan: the ordered list of (fuse, value) pairs to
 * burn, built from a keyset manifest plus options, checked against the
 * ordering and dependency rules (jetson-fuses.md §2–§3), hashed, and diffed
 * against what a device's `readfuses` reported. A plan may hold secret key
 * values: its storage is wiped when it is freed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "chip.h"
#include "internal.h"
#include "keyset.h"
#include "p11.h"

/* ---- problems (what --check lists) ----------------------------------- */

#define FUSE_PROBLEMS_MAX 200

struct fuse_problem {
        char fuse[48]; /* the fuse the rule concerns ("" for the file) */
        char rule[16]; /* stable id: xml, root, magic, version, rpmb, element,
                        * name, size, value, duplicate, order, bsi, dependency,
                        * kek256, keyset */
        unsigned line; /* XML line, 0 when not from a file */
        char msg[256]; /* one line; never a secret value */
        enum fl_hint hint; /* the input that fixes it (lib/fuseline.h), usually none */
};

struct fuse_problems {
        struct fuse_problem *v;
        size_t n;
        size_t dropped; /* problems past FUSE_PROBLEMS_MAX, counted only */
};

/* Append a problem (-ENOMEM only). */
int fuse_problem_add(struct fuse_problems *p, const char *fuse, const char *rule, unsigned line, const char *fmt, ...)
        FL_PRINTF(5, 6);
void fuse_problems_free(struct fuse_problems *p); /* leaves it empty, reusable */
/* For checkers with `struct fuse_problems *probs`, `int r` and an `out:`
 * label: add a problem, or leave with -ENOMEM. */
#define FUSE_PROB(fuse, rule, line, ...)                                             \
        do {                                                                         \
                if (fuse_problem_add(probs, fuse, rule, line, __VA_ARGS__) < 0) {    \
                        r = -ENOMEM;                                                 \
                        goto out;                                                    \
                }                                                                    \
        } while (0)

/* ---- plans ------------------------------------------------------------- */

struct fuse_entry {
        const struct fuse_def *def;
        unsigned char value[FUSE_VALUE_MAX]; /* def->size bytes, big-endian as in the XML */
        unsigned line;                       /* XML line it came from (0: generated) */
};

/* ---- acknowledged unverified facts ----------------------------------------- */

/* T234 BootSecurityInfo bits 11 (OEM fuse-key KDF, "OEM DICE1") and 13
 * (Silicon-ID KDF, "FMC DICE"), which NVIDIA's fTPM README asks for. [U]: the
 * fuse specification was not read (jetson-fuses.md "Not verified" 2). A plan
 * with either bit is refused unless this is acknowledged by name. */
#define FUSE_ACCEPT_T234_BSI_11_13 (1u << 0)
#define FUSE_ACCEPT_T234_BSI_11_13_NAME "t234-bsi-11-13"
#define FUSE_BSI_T234_OEM_DICE1 (1u << 11)
#define FUSE_BSI_T234_FMC_DICE (1u << 13)

/* One acknowledgement name ("t234-bsi-11-13") → its flag, ORed into *flags;
 * an unknown name is -EINVAL naming it and the known ones. */
int fuse_accept_parse(fl_ctx *ctx, const char *name, uint32_t *flags);
/* The names of the flags set, comma-separated ("" for none). */
void fuse_accept_names(uint32_t flags, char *out, size_t len);

struct fuse_plan {
        enum fl_chip chip;
        /* FUSE_ACCEPT_* the caller acknowledged: what fuse_plan_check lets
         * pass that it refuses by default. Not part of the file or hash. */
        uint32_t accept_unverified;
        uint32_t magic;   /* FUSE_MAGIC, or FUSE_MAGIC_TEST for a T234 dry run */
        bool rpmb;        /* file had an <rpmb> element (version 2.0.0) */
        char rpmb_provisioning[12], rpmb_dev_type[12]; /* its attributes, "0x…" */
        char *keyset_name, *keyset_path, *profile; /* provenance (may be NULL) */
        /* What a parsed file said, whether or not it passed: its MagicId as
         * written (truncated; "" when absent) and how many <fuse> elements
         * it has. magic and e[] hold only what was accepted. */
        char file_magic[24];
        size_t file_fuses;
        struct fuse_entry *e; /* in burn order; wiped on free */
        size_t n, cap;
};

enum fuse_sbk_mode { SBK_AUTO = 0, SBK_YES, SBK_NO };

struct fuse_plan_opts {
        enum fuse_sbk_mode sbk; /* AUTO: SecureBootKey if the keyset has sbk */
        bool oem_keys;          /* T234: the keyset's OemK1 and/or OemK2, BSI bit 9 */
        bool revocation;        /* T234: PkcPubkeyHash1/2 + OptInEnable */
        bool jtag_disable;
        bool production_mode;   /* SecurityMode=1, last */
        bool test;              /* T234: TEST MagicId */
        bool has_odm_id;
        uint64_t odm_id;
        uint32_t odm_reserved[12];
        uint32_t odm_reserved_set; /* bit i: ReservedOdm<i> given */
        bool has_odm_lock;
        uint32_t odm_lock;
        uint32_t bsi_reserved;  /* T234: factory-set reserved BootSecurityInfo bits to carry (0x1e0) */
        /* T234: BootSecurityInfo bits 11|13 for the fTPM (needs oem_keys and
         * FUSE_ACCEPT_T234_BSI_11_13 in accept_unverified). */
        bool ftpm;
        uint32_t accept_unverified; /* FUSE_ACCEPT_*: passed on to the plan's check */
};

int fuse_plan_new(enum fl_chip chip, struct fuse_plan **ret);
void fuse_plan_free(struct fuse_plan *plan); /* accepts NULL; wipes values */
/* Append (no ordering, no rule checks): value is def->size bytes. */
int fuse_plan_add(struct fuse_plan *plan, const struct fuse_def *def, const unsigned char *value, unsigned line);
const struct fuse_entry *fuse_plan_find(const struct fuse_plan *plan, const char *name);
/* The value of a word fuse (size <= 8) as a number. */
uint64_t fuse_entry_word(const struct fuse_entry *e);
/* Stable-sort into the canonical burn order of the chip. */
void fuse_plan_sort(struct fuse_plan *plan);

/* Fetches the value of a fuse key (exactly len bytes into out). */
typedef int (*fuse_key_fn)(fl_ctx *ctx, void *data, const struct ks_key *k, unsigned char *out, size_t len);

/* Build the plan for ks and opts; key values come from get_key and are
 * checked against the manifest's kcv. Every refused option combination is
 * -EINVAL with a message naming the option and the rule. The result passes
 * fuse_plan_check. */
int fuse_plan_build(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const struct fuse_plan_opts *opts,
                    fuse_key_fn get_key, void *data, struct fuse_plan **ret);
/* Same, with key values read from the keyset's token (opened with topts),
 * after checking that the token's PKC public keys still hash to the
 * manifest's tegra_pkc_hash values (-EBADMSG otherwise). */
int fuse_plan_build_token(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const struct token_opts *topts,
                          const struct fuse_plan_opts *opts, struct fuse_plan **ret);

/* Every ordering, dependency and BootSecurityInfo rule, plus (with ks) the
 * hashes and key check values against the manifest. Problems are appended;
 * the return value is 0 or -ENOMEM. */
int fuse_plan_check(fl_ctx *ctx, const struct fuse_plan *plan, const struct keyset *ks, struct fuse_problems *probs);

/* SHA-256 over the canonical text "fuseline-fuse-plan/1\nchip <chip>\n
 * magic 0x<magic>\n" + one "<Name> <size> <hex>\n" per fuse in order
 * (out: 65 bytes, lower-case hex). Commits to key values without revealing
 * them. */
int fuse_plan_sha256(fl_ctx *ctx, const struct fuse_plan *plan, char out[65]);

/* AES key check value (first 3 bytes of AES-ECB(key, 0^16)) as 6 hex digits. */
int fuse_kcv(fl_ctx *ctx, const unsigned char *key, size_t len, char out[7]);

/* The keyset role that supplies a fuse's value ("pkc0", "sbk", …; NULL). */
const char *fuse_role(const char *fuse_name);

/* ---- read-back and diff --------------------------------------------- */

#define FUSE_READBACK_MAX_BYTES (64 * 1024)
#define FUSE_READBACK_MAX_LINES 512

struct fuse_readback_entry {
        char name[48];
        const struct fuse_def *def; /* NULL for names the chip's burn map lacks */
        unsigned char value[FUSE_VALUE_MAX]; /* def ? def->size bytes : len bytes */
        size_t len;
        unsigned line;
};

struct fuse_readback {
        enum fl_chip chip;
        struct fuse_readback_entry *v;
        size_t n;
};

/* Parse tegraflash `readfuses` output ("Name: hex" per line, no 0x).
 * Malformed input is -EINVAL naming file, line and what is wrong. */
int fuse_readback_parse(fl_ctx *ctx, const char *file, const char *text, size_t len, enum fl_chip chip,
                        struct fuse_readback **ret);
void fuse_readback_free(struct fuse_readback *rb);
const struct fuse_readback_entry *fuse_readback_find(const struct fuse_readback *rb, const char *name);

enum fuse_diff_state { FD_EQUAL, FD_BURN, FD_CONFLICT };

struct fuse_diff_item {
        const struct fuse_def *def;
        enum fuse_diff_state state;
        unsigned char current[FUSE_VALUE_MAX], planned[FUSE_VALUE_MAX], burn[FUSE_VALUE_MAX];
        unsigned bits_to_set;   /* burn & ~current */
        unsigned bits_to_clear; /* current & ~burn: each one is impossible */
        uint32_t reserved_kept; /* BootSecurityInfo: factory bits ORed in */
        char note[200];
        enum fl_hint hint;   /* the input that fixes a conflict (lib/fuseline.h) */
        uint32_t hint_value; /* FL_HINT_BSI_RESERVED: the bits to give */
};

struct fuse_diff {
        enum fl_chip chip;
        struct fuse_diff_item *v;
        size_t n, n_equal, n_burn, n_conflict;
        bool production_locked; /* SecurityMode already burned */
};

/* Diff plan against rb. 0 with the result (conflicts are in it); -EBADMSG
 * when rb lacks a planned fuse (the message names every missing one). */
int fuse_plan_diff(fl_ctx *ctx, const struct fuse_plan *plan, const struct fuse_readback *rb,
                   struct fuse_diff **ret);
void fuse_diff_free(struct fuse_diff *d);

/* ---- product templates ---------------------------------------------- */

/* The offline board values odmfuse.sh --noburn needs (jetson-fuses.md §6):
 * the odmfuse board name and the environment it reads in offline mode,
 * including R36.2's lower-case board_sku/board_FAB globals. "" = not set. */
struct odm_board {
        char board[64];
        char fab[16], boardid[16], boardsku[16], boardrev[16], chiprev[16], chip_sku[32], fuselevel[32];
        char board_sku[16], board_fab[16];
};

struct fuse_template {
        char name[64];
        char module[64];
        enum fl_chip chip;
        uint16_t recovery_pid;
        struct fuse_plan_opts opts;
        struct odm_board odm; /* odmfuse_* keys */
};

/* Load templates/<name>.conf: "key = value" lines (name, module, chip,
 * recovery_pid, sbk, oem_keys, revocation, jtag_disable, production_mode,
 * bsi_reserved (hex),
 * and the offline board values odmfuse_board, odmfuse_FAB, odmfuse_BOARDID,
 * odmfuse_BOARDSKU, odmfuse_BOARDREV, odmfuse_CHIPREV, odmfuse_CHIP_SKU,
 * odmfuse_FUSELEVEL, odmfuse_board_sku, odmfuse_board_FAB). */
int fuse_template_load(fl_ctx *ctx, const char *path, struct fuse_template *ret);
/* Where a product template is: arg as given when it is a path (has a '/'
 * or ".conf"), else the first readable NAME.conf in dirs, in order (NULL
 * or empty entries skipped: the caller chooses them, e.g. from the
 * environment and the install location). -ENOENT naming the directories
 * looked in. *ret_path is malloc'd. */
int fuse_template_find(fl_ctx *ctx, const char *arg, const char *const *dirs, size_t n_dirs, char **ret_path);
