/* chip.c — the fuse maps, BootSecurityInfo encoding and module table of
 * T194 and T234 (jetson-fuses.md §2, §3, §8). Only fuses NVIDIA documents as
 * burnable for a chip are in its map: a name NVIDIA's parser merely knows
 * (Kek* on Orin, OdmLock on Orin, …) is refused, which is the safe side. */
#include <string.h>
#include <strings.h>

#include "chip.h"

#define W32 0xffffffffull
#define W64 0xffffffffffffffffull

/* Canonical order: odmfuse.sh's emission order (§2 "Burn order rules"),
 * except that OdmLock follows every ODM word so it never precedes a word it
 * locks. Word masks: the field widths of §2; a width the sources disagree on
 * takes the narrower, because a bit that does not exist cannot be undone. */
static const struct fuse_def t194_fuses[] = {
        { "SecBootDeviceSelect", 4, FC_ODM, false, 0x3fff, "secure boot device config (odmfuse -d)" },
        { "JtagDisable", 4, FC_ODM, false, 0x1, "arm_jtag_disable" },
        { "ReservedOdm0", 4, FC_ODM, false, W32, "ODM word 0" },
        { "ReservedOdm1", 4, FC_ODM, false, W32, "ODM word 1" },
        { "ReservedOdm2", 4, FC_ODM, false, W32, "ODM word 2" },
        { "ReservedOdm3", 4, FC_ODM, false, W32, "ODM word 3" },
        { "ReservedOdm4", 4, FC_ODM, false, W32, "ODM word 4" },
        { "ReservedOdm5", 4, FC_ODM, false, W32, "ODM word 5" },
        { "ReservedOdm6", 4, FC_ODM, false, W32, "ODM word 6" },
        { "ReservedOdm7", 4, FC_ODM, false, W32, "ODM word 7" },
        { "ReservedOdm8", 4, FC_ODM, false, W32, "ODM word 8" },
        { "ReservedOdm9", 4, FC_ODM, false, W32, "ODM word 9" },
        { "ReservedOdm10", 4, FC_ODM, false, W32, "ODM word 10" },
        { "ReservedOdm11", 4, FC_ODM, false, W32, "ODM word 11" },
        { "DebugAuthentication", 4, FC_ODM, false, 0x1f, "debug authentication (5 bits)" },
        { "OdmId", 8, FC_ODM, false, W64, "ODM id (odm_id[0] high, odm_id[1] low)" },
        { "SwReserved", 4, FC_ODM, false, 0xff, "boot device select, ignore straps, charger, watchdog" },
        /* [U] README says 12 lock bits, odmfuse help says 4: allow 4. */
        { "OdmLock", 4, FC_LOCK, false, 0xf, "lock bit per ReservedOdm word" },
        { "SecureBootKey", 16, FC_KEY, true, 0, "SBK (AES-128)" },
        { "Kek0", 16, FC_KEY, true, 0, "key-encryption key 0" },
        { "Kek1", 16, FC_KEY, true, 0, "key-encryption key 1" },
        { "Kek2", 16, FC_KEY, true, 0, "key-encryption key 2 (EKB root)" },
        { "Kek256", 32, FC_KEY, true, 0, "256-bit KEK (KEK0 then KEK1)" },
        { "PublicKeyHash", 32, FC_HASH, false, 0, "SHA-256 of the PKC public key" },
        { "BootSecurityInfo", 4, FC_BSI, false, 0xff, "auth scheme, SBK enable" },
        { "SecurityMode", 4, FC_SECMODE, false, 0x1, "production mode" },
};

static const struct fuse_def t234_fuses[] = {
        { "OdmId", 8, FC_ODM, false, W64, "ODM id" },
        { "OdmInfo", 4, FC_ODM, false, 0xffff, "ODM info (low 2 bytes programmable)" },
        { "ArmJtagDisable", 4, FC_ODM, false, 0x1, "arm_jtag_disable" },
        { "ReservedOdm0", 4, FC_ODM, false, W32, "ODM word 0" },
        { "ReservedOdm1", 4, FC_ODM, false, W32, "ODM word 1" },
        { "ReservedOdm2", 4, FC_ODM, false, W32, "ODM word 2" },
        { "ReservedOdm3", 4, FC_ODM, false, W32, "ODM word 3" },
        { "ReservedOdm4", 4, FC_ODM, false, W32, "ODM word 4" },
        { "ReservedOdm5", 4, FC_ODM, false, W32, "ODM word 5" },
        { "ReservedOdm6", 4, FC_ODM, false, W32, "ODM word 6" },
        { "ReservedOdm7", 4, FC_ODM, false, W32, "ODM word 7" },
        /* [U] purpose undocumented; in NVIDIA's reference configuration. */
        { "PscOdmStatic", 4, FC_ODM, false, W32, "PSC ODM static [U]" },
        { "SecureBootKey", 32, FC_KEY, true, 0, "SBK (AES-256)" },
        { "Kdk0", 32, FC_KEY, true, 0, "KDK0 [U]" },
        { "OemK1", 32, FC_KEY, true, 0, "OEM key 1 (EKB, secure storage)" },
        { "OemK2", 32, FC_KEY, true, 0, "OEM key 2" },
        { "PublicKeyHash", 64, FC_HASH, false, 0, "SHA-512 of PKC key 0" },
        { "PkcPubkeyHash1", 64, FC_HASH, false, 0, "SHA-512 of PKC key 1 (revocable)" },
        { "PkcPubkeyHash2", 64, FC_HASH, false, 0, "SHA-512 of PKC key 2" },
        /* [I] a one-bit enable; the documented value is 0x1. */
        { "OptInEnable", 4, FC_OPTIN, false, 0x1, "customer opt-in: enables key revocation" },
        /* Bits 0..13 are named somewhere; the BSI rules judge them. */
        { "BootSecurityInfo", 4, FC_BSI, false, 0x3fff, "auth scheme, SBK enable, ODM key valid" },
        { "SecurityMode", 4, FC_SECMODE, false, 0x1, "production mode" },
};

static const struct fuse_def *map(enum fl_chip chip, size_t *ret_n)
{
        switch (chip) {
        case FL_CHIP_T194:
                *ret_n = FL_ARRAY_SIZE(t194_fuses);
                return t194_fuses;
        case FL_CHIP_T234:
                *ret_n = FL_ARRAY_SIZE(t234_fuses);
                return t234_fuses;
        default:
                *ret_n = 0;
                return NULL;
        }
}

const struct fuse_def *chip_fuses(enum fl_chip chip, size_t *ret_n)
{
        return map(chip, ret_n);
}

const struct fuse_def *chip_fuse(enum fl_chip chip, const char *name)
{
        size_t n;
        const struct fuse_def *m = map(chip, &n);

        for (size_t i = 0; name && i < n; i++)
                if (!strcmp(m[i].name, name))
                        return &m[i];
        return NULL;
}

const struct fuse_def *chip_fuse_casefold(enum fl_chip chip, const char *name)
{
        size_t n;
        const struct fuse_def *m = map(chip, &n);

        for (size_t i = 0; name && i < n; i++)
                if (!strcasecmp(m[i].name, name))
                        return &m[i];
        return NULL;
}

size_t chip_fuse_index(enum fl_chip chip, const struct fuse_def *def)
{
        size_t n;
        const struct fuse_def *m = map(chip, &n);

        if (m && def >= m && def < m + n)
                return (size_t)(def - m);
        return (size_t)-1;
}

/* ---- BootSecurityInfo ------------------------------------------------ */

bool chip_has_test_magic(enum fl_chip chip)
{
        return chip == FL_CHIP_T234;
}

unsigned chip_pkc_hash_size(enum fl_chip chip)
{
        const struct fuse_def *d = chip_fuse(chip, "PublicKeyHash");

        return d ? d->size : 0;
}

uint32_t chip_bsi_auth_mask(enum fl_chip chip)
{
        return chip == FL_CHIP_T234 ? 0x7 : chip == FL_CHIP_T194 ? 0x3 : 0;
}

uint32_t chip_bsi_sbk_bit(enum fl_chip chip)
{
        return chip == FL_CHIP_T234 ? 0x8 : chip == FL_CHIP_T194 ? 0x4 : 0;
}

uint32_t chip_bsi_odm_key_valid_bit(enum fl_chip chip)
{
        return chip == FL_CHIP_T234 ? 0x200 : 0;
}

uint32_t chip_bsi_reserved(enum fl_chip chip)
{
        /* Orin NX/Nano ship with 0x1e0 in BSI; NVIDIA says bits [8:4] may
         * become non-zero at any time. */
        return chip == FL_CHIP_T234 ? 0x1f0 : 0;
}

const char *chip_pkc_types(enum fl_chip chip)
{
        return chip == FL_CHIP_T234 ? "rsa3k, p256, p521" : chip == FL_CHIP_T194 ? "rsa2k, rsa3k" : "none";
}

int chip_bsi_auth(fl_ctx *ctx, enum fl_chip chip, enum key_type type, uint32_t *ret)
{
        uint32_t a = 0;

        if (chip == FL_CHIP_T234)
                /* Ed25519 (4) exists in the BootROM field but is undocumented
                 * for Orin production [U]: refused here. */
                a = type == KT_RSA3K ? 1 : type == KT_P256 ? 2 : type == KT_P521 ? 3 : 0;
        else if (chip == FL_CHIP_T194)
                a = type == KT_RSA2K ? 1 : type == KT_RSA3K ? 2 : 0;
        else
                return fl_err(ctx, -EINVAL, "unknown chip (use t194 or t234)");
        if (!a)
                return fl_err(ctx, -EINVAL, "PKC key type %s has no production auth scheme on %s (%s takes %s)",
                              key_type_name(type), chip_name(chip), chip_name(chip), chip_pkc_types(chip));
        *ret = a;
        return 0;
}

enum key_type chip_bsi_auth_type(enum fl_chip chip, uint32_t auth)
{
        static const enum key_type t234[] = { KT_NONE, KT_RSA3K, KT_P256, KT_P521, KT_ED25519 };
        static const enum key_type t194[] = { KT_NONE, KT_RSA2K, KT_RSA3K };

        if (chip == FL_CHIP_T234 && auth < FL_ARRAY_SIZE(t234))
                return t234[auth];
        if (chip == FL_CHIP_T194 && auth < FL_ARRAY_SIZE(t194))
                return t194[auth];
        return KT_NONE;
}

/* ---- modules --------------------------------------------------------- */

static const struct chip_module modules[] = {
        { 0x7019, FL_CHIP_T194, "AGX Xavier" },
        { 0x7819, FL_CHIP_T194, "AGX Xavier Industrial" },
        { 0x7919, FL_CHIP_T194, "AGX Xavier Industrial" },
        { 0x7e19, FL_CHIP_T194, "Xavier NX" },
        { 0x7023, FL_CHIP_T234, "AGX Orin 64GB" },
        { 0x7223, FL_CHIP_T234, "AGX Orin 32GB" },
        { 0x7323, FL_CHIP_T234, "Orin NX 16GB" },
        { 0x7423, FL_CHIP_T234, "Orin NX 8GB" },
        { 0x7523, FL_CHIP_T234, "Orin Nano 8GB" },
        { 0x7623, FL_CHIP_T234, "Orin Nano 4GB" },
};

/* Jetsons in recovery mode that fuseline does not provision: T186 and T210
 * have other fuse maps and other NVIDIA tools. Listed so that USB
 * enumeration can say why such a board is ignored instead of acting as if
 * nothing were plugged in. 7721 and 7121 are T210 by their low byte, but no
 * source names their modules ([U], §8). */
static const struct chip_module unsupported[] = {
        { 0x7f21, FL_CHIP_NONE, "Jetson Nano (T210)" },
        { 0x7721, FL_CHIP_NONE, "T210 module" },
        { 0x7121, FL_CHIP_NONE, "T210 module" },
        { 0x7c18, FL_CHIP_NONE, "Jetson TX2 or TX2 NX (T186)" },
        { 0x7418, FL_CHIP_NONE, "Jetson TX2 4GB (T186)" },
        { 0x7018, FL_CHIP_NONE, "Jetson TX2i (T186)" },
};

const struct chip_module *chip_module_unsupported(uint16_t pid)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(unsupported); i++)
                if (unsupported[i].pid == pid)
                        return &unsupported[i];
        return NULL;
}

const struct chip_module *chip_module_by_pid(uint16_t pid)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(modules); i++)
                if (modules[i].pid == pid)
                        return &modules[i];
        return NULL;
}

const struct chip_module *chip_modules(size_t *ret_n)
{
        *ret_n = FL_ARRAY_SIZE(modules);
        return modules;
}

/* ---- fuse blob type ids --------------------------------------------- */

/* Sources: shared/vectors/fuse-blob (blobs made by NVIDIA's tegraparser_v2,
 * R36.2) and jetson-fuses.md §1 (tegrabl T19x fuse types [V S10]). An id is
 * listed only where one of them states it: the ids are not a simple
 * function of the name (SecureBootKey is 0x2b on T194 but 0x66 on T234), so
 * nothing is extrapolated — T234 ReservedOdm1..7, OdmInfo, the PKC hashes 1/2,
 * OemK2, Kdk0, … stay unknown [U] until a vector shows them, and a plan
 * holding one cannot be checked against a package. */
static const struct {
        enum fl_chip chip;
        const char *name;
        uint32_t type;
} blob_types[] = {
        /* T194: vector t194-prod. */
        { FL_CHIP_T194, "BootSecurityInfo", 0x00 },
        { FL_CHIP_T194, "SecurityMode", 0x1d },
        { FL_CHIP_T194, "PublicKeyHash", 0x2a },
        { FL_CHIP_T194, "SecureBootKey", 0x2b },
        /* T194: the tegrabl T19x enum (§1); the blob's ids agree with that
         * enum for every fuse the vector shows. */
        { FL_CHIP_T194, "ReservedOdm0", 0x20 },
        { FL_CHIP_T194, "ReservedOdm1", 0x21 },
        { FL_CHIP_T194, "ReservedOdm2", 0x22 },
        { FL_CHIP_T194, "ReservedOdm3", 0x23 },
        { FL_CHIP_T194, "ReservedOdm4", 0x24 },
        { FL_CHIP_T194, "ReservedOdm5", 0x25 },
        { FL_CHIP_T194, "ReservedOdm6", 0x26 },
        { FL_CHIP_T194, "ReservedOdm7", 0x27 },
        /* T234: vectors t234-prod-full and t234-test-pkh-bsi. (VECTORS.txt
         * also gives OdmLock 0x1e, which is not burnable in the T234 map.) */
        { FL_CHIP_T234, "BootSecurityInfo", 0x00 },
        { FL_CHIP_T234, "SecurityMode", 0x1d },
        { FL_CHIP_T234, "ArmJtagDisable", 0x1f },
        { FL_CHIP_T234, "ReservedOdm0", 0x20 },
        { FL_CHIP_T234, "PublicKeyHash", 0x2a },
        { FL_CHIP_T234, "OdmId", 0x39 },
        { FL_CHIP_T234, "SecureBootKey", 0x66 },
        { FL_CHIP_T234, "OemK1", 0x6a },
};

int chip_fuse_blob_type(enum fl_chip chip, const struct fuse_def *def)
{
        for (size_t i = 0; def && i < FL_ARRAY_SIZE(blob_types); i++)
                if (blob_types[i].chip == chip && !strcmp(blob_types[i].name, def->name))
                        return (int)blob_types[i].type;
        return -1;
}

const struct fuse_def *chip_fuse_by_blob_type(enum fl_chip chip, uint32_t type)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(blob_types); i++)
                if (blob_types[i].chip == chip && blob_types[i].type == type)
                        return chip_fuse(chip, blob_types[i].name);
        return NULL;
}
