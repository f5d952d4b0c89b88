/* chip.h — per-chip facts (shared/reference/jetson-fuses.md §1–§3, §8): the
 * burnable fuse map of T194 and T234 (case-exact names, sizes in bytes, the
 * order class each fuse belongs to, which bits a word fuse has), the
 * BootSecurityInfo encoding, the genericfuse magic numbers, and the
 * recovery-mode USB product ids of the modules. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "p11.h"

#define FUSE_MAGIC 0x45535546u      /* "FUSE" as NVIDIA's template writes it */
#define FUSE_MAGIC_TEST 0x54534554u /* "TEST": T234 FSKP dry run, burns nothing */
#define FUSE_VALUE_MAX 64           /* the largest fuse (T234 key hashes) */

/* Order classes, in the order a plan emits them: a fuse is listed after
 * everything it depends on, and the ones that switch enforcement on come
 * last (FSKP burns in XML order and checks nothing). */
enum fuse_class {
        FC_ODM = 0,  /* ODM words, ids, JTAG disable: independent of keys */
        FC_LOCK,     /* OdmLock: after the ReservedOdm words it locks */
        FC_KEY,      /* secret key values (SBK, KEKs, OEM keys) */
        FC_HASH,     /* PKC public-key hashes */
        FC_OPTIN,    /* OptInEnable: switches the revocation ratchet on */
        FC_BSI,      /* BootSecurityInfo: switches authentication on */
        FC_SECMODE,  /* SecurityMode: production mode, always last */
};

struct fuse_def {
        const char *name;    /* case-exact, as NVIDIA's parser spells it */
        unsigned size;       /* bytes: the XML size attribute must equal it */
        enum fuse_class cls;
        bool secret;         /* holds a key value: never printed */
        uint64_t mask;       /* word fuses (size <= 8): the bits that exist */
        const char *meaning;
};

/* The burnable fuse of chip named name (case-exact), or NULL. */
const struct fuse_def *chip_fuse(enum fl_chip chip, const char *name);
/* The whole burnable map in canonical (emission) order. */
const struct fuse_def *chip_fuses(enum fl_chip chip, size_t *ret_n);
/* A burnable fuse whose name equals name ignoring case (for "did you mean"). */
const struct fuse_def *chip_fuse_casefold(enum fl_chip chip, const char *name);
/* Canonical position of a fuse of chip (index into chip_fuses). */
size_t chip_fuse_index(enum fl_chip chip, const struct fuse_def *def);

/* Whether the chip's fuse burner honours the TEST MagicId (process every
 * fuse, burn nothing): T234's FSKP does; T194 has no such magic (a dry run
 * is chosen at burn time instead). */
bool chip_has_test_magic(enum fl_chip chip);
/* Bytes of the chip's PublicKeyHash fuse (64 T234, 32 T194; 0 unknown). */
unsigned chip_pkc_hash_size(enum fl_chip chip);

/* ---- BootSecurityInfo ------------------------------------------------ */

uint32_t chip_bsi_auth_mask(enum fl_chip chip); /* 0x7 T234, 0x3 T194 */
uint32_t chip_bsi_sbk_bit(enum fl_chip chip);   /* 0x8 T234, 0x4 T194 */
/* T234 bit 9 "ODM key valid" (0 on T194). */
uint32_t chip_bsi_odm_key_valid_bit(enum fl_chip chip);
/* Reserved bits the factory may already have set (T234 [8:4]; 0 on T194):
 * a burn must OR them in rather than try to clear them. */
uint32_t chip_bsi_reserved(enum fl_chip chip);
/* The auth-scheme code for a PKC key type on chip; -EINVAL (message lists
 * what the chip accepts) when the chip does not take that type for
 * production. */
int chip_bsi_auth(fl_ctx *ctx, enum fl_chip chip, enum key_type type, uint32_t *ret);
/* The PKC key type an auth code selects (KT_NONE for 0 or unknown codes). */
enum key_type chip_bsi_auth_type(enum fl_chip chip, uint32_t auth);
/* "rsa3k, p256, p521" / "rsa2k, rsa3k". */
const char *chip_pkc_types(enum fl_chip chip);

/* ---- modules --------------------------------------------------------- */

struct chip_module {
        uint16_t pid; /* recovery-mode USB product id (vendor 0x0955) */
        enum fl_chip chip;
        const char *name;
};

/* The module a recovery-mode product id belongs to, for the chips fuseline
 * provisions (T194, T234); NULL for any other id. */
const struct chip_module *chip_module_by_pid(uint16_t pid);
const struct chip_module *chip_modules(size_t *ret_n);
/* A recovery-mode Jetson fuseline knows but does not provision (T186, T210;
 * chip FL_CHIP_NONE, name says which module and chip), or NULL. */
const struct chip_module *chip_module_unsupported(uint16_t pid);

/* ---- fuse blob type ids ---------------------------------------------- */

/* The type id NVIDIA's fuse blob (tegraparser_v2 --fuse_info) gives the
 * burnable fuse def of chip, or -1 when it is not known: only ids read off
 * NVIDIA-made blobs or stated by the reference are listed. */
int chip_fuse_blob_type(enum fl_chip chip, const struct fuse_def *def);
/* The burnable fuse of chip whose blob type id is type, or NULL. */
const struct fuse_def *chip_fuse_by_blob_type(enum fl_chip chip, uint32_t type);
