/* fuse_plan.c — building fuse plans from a keyset, the ordering /
 * dependency / BootSecurityInfo rules every plan and every fuse XML must
 * pass, the plan hash, the readfuses read-back parser, the diff against a
 * device, and product templates. Rules and their sources are in
 * shared/reference/jetson-fuses.md §2 (burn order) and §3 (BSI). */
#include <ctype.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fuse_plan.h"
#include "tegra_key.h"

/* ---- problems ----------------------------------------------------------- */

static void copy_printable(char *dst, size_t cap, const char *src)
{
        size_t i = 0;

        for (; src && src[i] && i + 1 < cap; i++)
                dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
        dst[i] = 0;
}

int fuse_problem_add(struct fuse_problems *p, const char *fuse, const char *rule, unsigned line, const char *fmt, ...)
{
        struct fuse_problem *v, *np;
        va_list ap;

        if (p->n >= FUSE_PROBLEMS_MAX) {
                p->dropped++;
                return 0;
        }
        v = realloc(p->v, (p->n + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        p->v = v;
        np = &v[p->n++];
        memset(np, 0, sizeof(*np));
        copy_printable(np->fuse, sizeof(np->fuse), fuse);
        copy_printable(np->rule, sizeof(np->rule), rule);
        np->line = line;
        va_start(ap, fmt);
        vsnprintf(np->msg, sizeof(np->msg), fmt, ap);
        va_end(ap);
        /* One line, whatever a hostile name put into it. */
        for (char *c = np->msg; *c; c++)
                if (!isprint((unsigned char)*c))
                        *c = '?';
        return 0;
}

void fuse_problems_free(struct fuse_problems *p)
{
        free(p->v);
        memset(p, 0, sizeof(*p));
}

/* ---- plan storage --------------------------------------------------------- */

int fuse_plan_new(enum fl_chip chip, struct fuse_plan **ret)
{
        struct fuse_plan *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->chip = chip;
        p->magic = FUSE_MAGIC;
        *ret = p;
        return 0;
}

void fuse_plan_free(struct fuse_plan *plan)
{
        if (!plan)
                return;
        if (plan->e) {
                OPENSSL_cleanse(plan->e, plan->cap * sizeof(*plan->e));
                free(plan->e);
        }
        free(plan->keyset_name);
        free(plan->keyset_path);
        free(plan->profile);
        free(plan);
}

int fuse_plan_add(struct fuse_plan *plan, const struct fuse_def *def, const unsigned char *value, unsigned line)
{
        struct fuse_entry *e;

        if (plan->n == plan->cap) {
                /* Grow by copying into a fresh block so the old one can be
                 * wiped: realloc would leave key values in freed memory. */
                size_t ncap = plan->cap ? 2 * plan->cap : 16;
                struct fuse_entry *ne = calloc(ncap, sizeof(*ne));

                if (!ne)
                        return -ENOMEM;
                if (plan->e) {
                        memcpy(ne, plan->e, plan->n * sizeof(*ne));
                        OPENSSL_cleanse(plan->e, plan->cap * sizeof(*plan->e));
                        free(plan->e);
                }
                plan->e = ne;
                plan->cap = ncap;
        }
        e = &plan->e[plan->n++];
        memset(e, 0, sizeof(*e));
        e->def = def;
        e->line = line;
        memcpy(e->value, value, def->size);
        return 0;
}

const struct fuse_entry *fuse_plan_find(const struct fuse_plan *plan, const char *name)
{
        for (size_t i = 0; plan && i < plan->n; i++)
                if (!strcmp(plan->e[i].def->name, name))
                        return &plan->e[i];
        return NULL;
}

static uint64_t be_word(const unsigned char *v, size_t len)
{
        uint64_t w = 0;

        for (size_t i = 0; i < len && i < 8; i++)
                w = w << 8 | v[i];
        return w;
}

static void word_be(uint64_t w, unsigned char *out, size_t len)
{
        for (size_t i = len; i-- > 0; w >>= 8)
                out[i] = (unsigned char)(w & 0xff);
}

uint64_t fuse_entry_word(const struct fuse_entry *e)
{
        return be_word(e->value, e->def->size);
}

void fuse_plan_sort(struct fuse_plan *plan)
{
        /* Insertion sort: stable, at most a few dozen entries. */
        for (size_t i = 1; i < plan->n; i++) {
                struct fuse_entry t = plan->e[i];
                size_t ti = chip_fuse_index(plan->chip, t.def), j = i;

                while (j > 0 && chip_fuse_index(plan->chip, plan->e[j - 1].def) > ti) {
                        plan->e[j] = plan->e[j - 1];
                        j--;
                }
                plan->e[j] = t;
                OPENSSL_cleanse(&t, sizeof(t));
        }
}

static bool all_zero(const unsigned char *v, size_t len)
{
        unsigned char acc = 0;

        for (size_t i = 0; i < len; i++)
                acc |= v[i];
        return acc == 0;
}

/* ---- roles and check values --------------------------------------------- */

static const struct {
        const char *fuse, *role;
} fuse_roles[] = {
        { "PublicKeyHash", "pkc0" }, { "PkcPubkeyHash1", "pkc1" }, { "PkcPubkeyHash2", "pkc2" },
        { "SecureBootKey", "sbk" },  { "OemK1", "oem-k1" },        { "OemK2", "oem-k2" },
        { "Kek0", "kek0" },          { "Kek1", "kek1" },           { "Kek2", "kek2" },
        { "Kek256", "kek256" },
};

const char *fuse_role(const char *fuse_name)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(fuse_roles); i++)
                if (!strcmp(fuse_roles[i].fuse, fuse_name))
                        return fuse_roles[i].role;
        return NULL;
}

int fuse_kcv(fl_ctx *ctx, const unsigned char *key, size_t len, char out[7])
{
        static const unsigned char zero[16];
        unsigned char ct[32];
        EVP_CIPHER_CTX *c = NULL;
        int outl = 0, r;

        if (len != 16 && len != 32) {
                r = fl_err(ctx, -EINVAL, "a check value needs a 16- or 32-byte AES key, not %zu bytes", len);
                goto out;
        }
        c = EVP_CIPHER_CTX_new();
        if (!c || !EVP_EncryptInit_ex(c, len == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(), NULL, key, NULL) ||
            !EVP_CIPHER_CTX_set_padding(c, 0) || !EVP_EncryptUpdate(c, ct, &outl, zero, sizeof(zero)) ||
            outl != 16) {
                r = fl_err(ctx, -EIO, "AES check value: %s", ossl_errstr());
                goto out;
        }
        hex_encode(ct, 3, out);
        r = 0;
out:
        OPENSSL_cleanse(ct, sizeof(ct));
        EVP_CIPHER_CTX_free(c);
        return r;
}

/* ---- rules ------------------------------------------------------------- */

static bool is_reserved_odm(const struct fuse_def *d)
{
        return !strncmp(d->name, "ReservedOdm", 11);
}

static int check_values(const struct fuse_plan *plan, struct fuse_problems *probs)
{
        int r = 0;

        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];
                const struct fuse_def *d = e->def;

                if (d->size <= 8) {
                        uint64_t w = fuse_entry_word(e);
                        if (w & ~d->mask)
                                FUSE_PROB(d->name, "value", e->line,
                                          "%s: value 0x%llx sets bits outside the fuse's field (mask 0x%llx)", d->name,
                                          (unsigned long long)w, (unsigned long long)d->mask);
                }
                /* ODM data words may legitimately be written as zero; any
                 * other fuse at zero burns nothing and leaves it open. */
                if (d->cls != FC_ODM && all_zero(e->value, d->size))
                        FUSE_PROB(d->name, "value", e->line, "%s: value is zero: burns nothing%s", d->name,
                                  d->cls == FC_KEY || d->cls == FC_HASH ? " and leaves the fuse open to anyone" : "");
        }
out:
        return r;
}

static int check_order(const struct fuse_plan *plan, struct fuse_problems *probs)
{
        int r = 0;

        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *a = &plan->e[i];
                bool secmode_reported = false;

                for (size_t j = i + 1; j < plan->n; j++) {
                        const struct fuse_def *b = plan->e[j].def;

                        switch (a->def->cls) {
                        case FC_SECMODE:
                                if (!secmode_reported)
                                        FUSE_PROB(a->def->name, "order", a->line,
                                                  "SecurityMode is listed before %s: production mode must be the last "
                                                  "fuse (once set, no other fuse can be burned)",
                                                  b->name);
                                secmode_reported = true;
                                break;
                        case FC_BSI:
                                if (b->cls != FC_SECMODE)
                                        FUSE_PROB(a->def->name, "order", a->line,
                                                  "BootSecurityInfo is listed before %s: FSKP burns in XML order, and "
                                                  "BootSecurityInfo switches enforcement on, so it must follow every "
                                                  "fuse except SecurityMode",
                                                  b->name);
                                break;
                        case FC_OPTIN:
                                if (b->cls == FC_HASH)
                                        FUSE_PROB(a->def->name, "order", a->line,
                                                  "OptInEnable is listed before %s: the revocation ratchet must be "
                                                  "enabled after the key hashes it protects",
                                                  b->name);
                                break;
                        case FC_LOCK:
                                if (is_reserved_odm(b))
                                        FUSE_PROB(a->def->name, "order", a->line,
                                                  "OdmLock is listed before %s: a lock must follow the words it locks",
                                                  b->name);
                                break;
                        default:
                                break;
                        }
                }
        }
out:
        return r;
}

int fuse_accept_parse(fl_ctx *ctx, const char *name, uint32_t *flags)
{
        if (!strcmp(name, FUSE_ACCEPT_T234_BSI_11_13_NAME)) {
                *flags |= FUSE_ACCEPT_T234_BSI_11_13;
                return 0;
        }
        return fl_err(ctx, -EINVAL, "unverified-fact acknowledgement '%s' is unknown: the only acknowledgement is %s (T234 BootSecurityInfo "
                      "bits 11 and 13 for the fTPM)", name, FUSE_ACCEPT_T234_BSI_11_13_NAME);
}

void fuse_accept_names(uint32_t flags, char *out, size_t len)
{
        snprintf(out, len, "%s", flags & FUSE_ACCEPT_T234_BSI_11_13 ? FUSE_ACCEPT_T234_BSI_11_13_NAME : "");
}

static int check_bsi(const struct fuse_plan *plan, const struct keyset *ks, struct fuse_problems *probs)
{
        enum fl_chip chip = plan->chip;
        const struct fuse_entry *bsi = fuse_plan_find(plan, "BootSecurityInfo");
        const struct fuse_entry *pkh = fuse_plan_find(plan, "PublicKeyHash");
        const struct fuse_entry *sbk = fuse_plan_find(plan, "SecureBootKey");
        bool oem = fuse_plan_find(plan, "OemK1") || fuse_plan_find(plan, "OemK2");
        uint32_t v, auth, sbkbit = chip_bsi_sbk_bit(chip), okv = chip_bsi_odm_key_valid_bit(chip), known, unknown;
        const char *n = "BootSecurityInfo";
        int r = 0;

        if (!bsi)
                goto out;
        v = (uint32_t)fuse_entry_word(bsi);
        auth = v & chip_bsi_auth_mask(chip);
        if (auth) {
                enum key_type t = chip_bsi_auth_type(chip, auth);

                if (chip == FL_CHIP_T234 && auth == 4)
                        /* [U] in the BootROM field, absent from Orin docs. */
                        FUSE_PROB(n, "bsi", bsi->line,
                                  "%s: auth scheme 4 (Ed25519) is undocumented for Orin production [U]; "
                                  "t234 takes 1 rsa3k, 2 p256, 3 p521",
                                  n);
                else if (t == KT_NONE || (chip == FL_CHIP_T194 && auth == 3))
                        FUSE_PROB(n, "bsi", bsi->line, "%s: auth scheme %u is not supported on %s (%s takes %s)", n,
                                  auth, chip_name(chip), chip_name(chip),
                                  chip == FL_CHIP_T234 ? "1 rsa3k, 2 p256, 3 p521" : "1 rsa2k, 2 rsa3k");
                if (!pkh)
                        FUSE_PROB(n, "bsi", bsi->line,
                                  "%s: enables auth scheme %u but the file has no PublicKeyHash (the device would "
                                  "not boot)",
                                  n, auth);
                if (ks && t != KT_NONE) {
                        const struct ks_key *k = keyset_find(ks, "pkc0");
                        if (k && k->type != t)
                                FUSE_PROB(n, "keyset", bsi->line,
                                          "%s: auth scheme %u selects %s but the keyset's pkc0 is %s", n, auth,
                                          key_type_name(t), key_type_name(k->type));
                }
        } else if (pkh) {
                FUSE_PROB(n, "bsi", bsi->line, "%s: PublicKeyHash is present but auth scheme bits are 0 (no PKC)", n);
        }
        if (v & sbkbit) {
                if (!sbk)
                        FUSE_PROB(n, "bsi", bsi->line, "%s: SBK enable (0x%x) is set but the file has no SecureBootKey",
                                  n, sbkbit);
                if (!auth)
                        FUSE_PROB(n, "bsi", bsi->line,
                                  "%s: SBK enable (0x%x) without a PKC auth scheme: SBK only with PKC", n, sbkbit);
        } else if (sbk) {
                FUSE_PROB(n, "bsi", bsi->line, "%s: SecureBootKey is present but SBK enable (0x%x) is clear", n,
                          sbkbit);
        }
        if (okv) {
                if ((v & okv) && !oem)
                        FUSE_PROB(n, "bsi", bsi->line,
                                  "%s: ODM key valid (0x%x) is set but the file has neither OemK1 nor OemK2", n, okv);
                else if (!(v & okv) && oem)
                        FUSE_PROB(n, "bsi", bsi->line, "%s: OemK1/OemK2 are present but ODM key valid (0x%x) is clear",
                                  n, okv);
        }
        /* Bits 11 and 13 (the fTPM's DICE KDFs): [U] the fuse specification
         * (DA-10877) was not read; NVIDIA's fTPM README asks for both. Burning
         * is irreversible, so they are refused unless acknowledged by name,
         * and then only on T234, both together, with a PKC scheme and ODM key
         * valid (bit 9) as that README requires. */
        if (chip == FL_CHIP_T234 && (v & (FUSE_BSI_T234_OEM_DICE1 | FUSE_BSI_T234_FMC_DICE))) {
                uint32_t dice = v & (FUSE_BSI_T234_OEM_DICE1 | FUSE_BSI_T234_FMC_DICE);
                if (!(plan->accept_unverified & FUSE_ACCEPT_T234_BSI_11_13))
                {
                        FUSE_PROB(n, "bsi", bsi->line,
                                  "%s: bits 11 (OEM DICE1) and 13 (FMC DICE) (0x%x set) are unverified [U]: the fuse "
                                  "specification was not read; to burn them anyway acknowledge it with "
                                  FUSE_ACCEPT_T234_BSI_11_13_NAME, n, dice);
                        probs->v[probs->n - 1].hint = FL_HINT_ACCEPT_BSI_11_13;
                }
                else if (dice != (FUSE_BSI_T234_OEM_DICE1 | FUSE_BSI_T234_FMC_DICE))
                        FUSE_PROB(n, "bsi", bsi->line, "%s: bit %d is set without bit %d: the fTPM needs both (0x2800)",
                                  n, dice == FUSE_BSI_T234_OEM_DICE1 ? 11 : 13, dice == FUSE_BSI_T234_OEM_DICE1 ? 13 : 11);
                else if (!auth || !(v & okv))
                        FUSE_PROB(n, "bsi", bsi->line,
                                  "%s: bits 11 and 13 (fTPM) need a PKC auth scheme and ODM key valid (bit 9, OemK1/K2) "
                                  "in the same value",
                                  n);
                v &= ~dice;
        }
        /* Reserved bits (T234 [8:4]) may come from the factory: accepted. */
        known = chip_bsi_auth_mask(chip) | sbkbit | okv | chip_bsi_reserved(chip);
        unknown = v & ~known & (uint32_t)bsi->def->mask;
        if (unknown)
                FUSE_PROB(n, "bsi", bsi->line, "%s: bits 0x%x are %s", n, unknown,
                          chip == FL_CHIP_T234
                                  ? "undocumented or unverified [U]"
                                  : "not produced by NVIDIA's odmfuse for t194 (ODM fuse encryption, ECC)");
out:
        return r;
}

static int check_dependencies(const struct fuse_plan *plan, struct fuse_problems *probs)
{
        const struct fuse_entry *pkh = fuse_plan_find(plan, "PublicKeyHash");
        const struct fuse_entry *h1 = fuse_plan_find(plan, "PkcPubkeyHash1");
        const struct fuse_entry *h2 = fuse_plan_find(plan, "PkcPubkeyHash2");
        const struct fuse_entry *opt = fuse_plan_find(plan, "OptInEnable");
        const struct fuse_entry *sbk = fuse_plan_find(plan, "SecureBootKey");
        const struct fuse_entry *k256 = fuse_plan_find(plan, "Kek256");
        const struct fuse_entry *k0 = fuse_plan_find(plan, "Kek0");
        const struct fuse_entry *k1 = fuse_plan_find(plan, "Kek1");
        int r = 0;

        if (h1 && !pkh)
                FUSE_PROB("PkcPubkeyHash1", "dependency", h1->line, "PkcPubkeyHash1 without PublicKeyHash");
        if (h2 && !pkh)
                FUSE_PROB("PkcPubkeyHash2", "dependency", h2->line, "PkcPubkeyHash2 without PublicKeyHash");
        if (opt && !(h1 && h2))
                FUSE_PROB("OptInEnable", "dependency", opt->line,
                          "OptInEnable without %s: revocation needs all three key hashes",
                          !h1 && !h2 ? "PkcPubkeyHash1 and PkcPubkeyHash2"
                          : !h1      ? "PkcPubkeyHash1"
                                     : "PkcPubkeyHash2");
        if (sbk && !pkh)
                FUSE_PROB("SecureBootKey", "dependency", sbk->line,
                          "SecureBootKey without PublicKeyHash: SBK encryption only with PKC authentication");
        /* [U] NVIDIA's README: Kek256 is KEK1 concatenated after KEK0, i.e.
         * the same bits; burning disagreeing values would set the union. */
        if (k256 && k0 && CRYPTO_memcmp(k256->value, k0->value, 16))
                FUSE_PROB("Kek256", "kek256", k256->line,
                          "Kek256 does not begin with Kek0 (Kek256 is Kek0 then Kek1 [U])");
        if (k256 && k1 && CRYPTO_memcmp(k256->value + 16, k1->value, 16))
                FUSE_PROB("Kek256", "kek256", k256->line,
                          "Kek256 does not end with Kek1 (Kek256 is Kek0 then Kek1 [U])");
out:
        return r;
}

static int check_keyset(fl_ctx *ctx, const struct fuse_plan *plan, const struct keyset *ks,
                        struct fuse_problems *probs)
{
        const struct ks_key *pkc0 = keyset_find(ks, "pkc0");
        char hex[2 * FUSE_VALUE_MAX + 3], kcv[7];
        int r = 0;

        if (ks->chip != plan->chip) {
                FUSE_PROB("", "keyset", 0, "the keyset is for %s, the file is checked as %s", chip_name(ks->chip),
                          chip_name(plan->chip));
                goto out;
        }
        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];
                const char *role = fuse_role(e->def->name);
                const struct ks_key *k = role ? keyset_find(ks, role) : NULL;

                if (!role)
                        continue;
                if (!k) {
                        FUSE_PROB(e->def->name, "keyset", e->line, "%s: the keyset has no %s key to compare with",
                                  e->def->name, role);
                        continue;
                }
                if (e->def->cls == FC_HASH) {
                        hex[0] = '0';
                        hex[1] = 'x';
                        hex_encode(e->value, e->def->size, hex + 2);
                        if (!k->tegra_pkc_hash || strcasecmp(hex, k->tegra_pkc_hash))
                                FUSE_PROB(e->def->name, "keyset", e->line,
                                          "%s differs from the keyset's %s tegra_pkc_hash", e->def->name, role);
                        if (pkc0 && k != pkc0 && k->type != pkc0->type)
                                FUSE_PROB(e->def->name, "keyset", e->line,
                                          "%s: %s is %s but pkc0 is %s: all PKC keys must be the same type",
                                          e->def->name, role, key_type_name(k->type), key_type_name(pkc0->type));
                } else if (e->def->secret) {
                        if (fuse_kcv(ctx, e->value, e->def->size, kcv) < 0) {
                                r = -EIO;
                                goto out;
                        }
                        if (!k->kcv || strcmp(kcv, k->kcv))
                                FUSE_PROB(e->def->name, "keyset", e->line,
                                          "%s: check value differs from the keyset's %s kcv (a different key)",
                                          e->def->name, role);
                }
        }
out:
        OPENSSL_cleanse(kcv, sizeof(kcv));
        return r;
}

int fuse_plan_check(fl_ctx *ctx, const struct fuse_plan *plan, const struct keyset *ks, struct fuse_problems *probs)
{
        int r;

        /* A keyset for the other chip is one problem, not a cascade. */
        const struct keyset *same = ks && ks->chip == plan->chip ? ks : NULL;

        if ((r = check_values(plan, probs)) < 0 || (r = check_order(plan, probs)) < 0 ||
            (r = check_dependencies(plan, probs)) < 0 || (r = check_bsi(plan, same, probs)) < 0)
                return r;
        if (ks)
                r = check_keyset(ctx, plan, ks, probs);
        return r;
}

/* ---- hash -------------------------------------------------------------- */

int fuse_plan_sha256(fl_ctx *ctx, const struct fuse_plan *plan, char out[65])
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char dig[32];
        char line[64 + 2 * FUSE_VALUE_MAX + 8];
        unsigned dlen = 0;
        int n, r;

        if (!md) {
                r = -ENOMEM;
                goto out;
        }
        n = snprintf(line, sizeof(line), "fuseline-fuse-plan/1\nchip %s\nmagic 0x%08x\n", chip_name(plan->chip),
                     plan->magic);
        if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL) || !EVP_DigestUpdate(md, line, (size_t)n)) {
                r = fl_err(ctx, -EIO, "plan hash: %s", ossl_errstr());
                goto out;
        }
        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];

                n = snprintf(line, sizeof(line), "%s %u ", e->def->name, e->def->size);
                hex_encode(e->value, e->def->size, line + n);
                n += (int)(2 * e->def->size);
                line[n++] = '\n';
                if (!EVP_DigestUpdate(md, line, (size_t)n)) {
                        r = fl_err(ctx, -EIO, "plan hash: %s", ossl_errstr());
                        goto out;
                }
        }
        if (!EVP_DigestFinal_ex(md, dig, &dlen)) {
                r = fl_err(ctx, -EIO, "plan hash: %s", ossl_errstr());
                goto out;
        }
        hex_encode(dig, dlen, out);
        r = 0;
out:
        OPENSSL_cleanse(line, sizeof(line));
        EVP_MD_CTX_free(md);
        return r;
}

/* ---- building -------------------------------------------------------------- */

static int add_word(fl_ctx *ctx, struct fuse_plan *plan, const char *name, uint64_t w)
{
        const struct fuse_def *d = chip_fuse(plan->chip, name);
        unsigned char v[8];

        if (!d)
                return fl_err(ctx, -EINVAL, "%s is not a burnable fuse on %s", name, chip_name(plan->chip));
        word_be(w, v, d->size);
        return fuse_plan_add(plan, d, v, 0);
}

static int add_hash(fl_ctx *ctx, struct fuse_plan *plan, const char *name, const struct ks_key *k,
                    const char *ks_path)
{
        const struct fuse_def *d = chip_fuse(plan->chip, name);
        unsigned char v[FUSE_VALUE_MAX];
        size_t len = 0;

        if (!k->tegra_pkc_hash || strncmp(k->tegra_pkc_hash, "0x", 2) ||
            hex_decode(k->tegra_pkc_hash + 2, v, sizeof(v), &len) < 0 || len != d->size)
                return fl_err(ctx, -EINVAL, "%s: key '%s': tegra_pkc_hash is not a %u-byte hash for %s", ks_path,
                              k->role, d->size, chip_name(plan->chip));
        return fuse_plan_add(plan, d, v, 0);
}

static int add_key(fl_ctx *ctx, struct fuse_plan *plan, const char *name, const struct ks_key *k,
                   const char *ks_path, fuse_key_fn get_key, void *data)
{
        const struct fuse_def *d = chip_fuse(plan->chip, name);
        unsigned char v[FUSE_VALUE_MAX];
        char kcv[7] = "";
        int r;

        r = get_key(ctx, data, k, v, d->size);
        if (r < 0)
                goto out;
        r = fuse_kcv(ctx, v, d->size, kcv);
        if (r < 0)
                goto out;
        /* The manifest's check value is what the key was recorded as: a
         * different value means a different (or replaced) token object. */
        if (!k->kcv || strcmp(kcv, k->kcv)) {
                r = fl_err(ctx, -EBADMSG, "%s: key '%s': the token's value has check value %s, the manifest says %s",
                           ks_path, k->role, kcv, k->kcv ? k->kcv : "(none)");
                goto out;
        }
        r = fuse_plan_add(plan, d, v, 0);
out:
        OPENSSL_cleanse(v, sizeof(v));
        OPENSSL_cleanse(kcv, sizeof(kcv));
        return r;
}

static const struct ks_key *need_role(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const char *role,
                                      const char *why, enum fl_hint hint, int *r)
{
        const struct ks_key *k = keyset_find(ks, role);

        if (!k)
                *r = fl_err_hint(ctx, hint, -EINVAL, "%s needs key '%s', which keyset %s does not have", why, role, ks_path);
        return k;
}

static char *dup_opt(const char *s)
{
        return s ? strdup(s) : NULL;
}

int fuse_plan_build(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const struct fuse_plan_opts *o,
                    fuse_key_fn get_key, void *data, struct fuse_plan **ret)
{
        struct fuse_plan *plan = NULL;
        struct fuse_problems probs = { 0 };
        const struct ks_key *pkc0, *k;
        enum fl_chip chip = ks->chip;
        bool t234 = chip == FL_CHIP_T234, with_sbk = false;
        uint32_t auth = 0, bsi;
        char name[24];
        int r = 0;

        if (!ks_path)
                ks_path = "keyset";
        r = fuse_plan_new(chip, &plan);
        if (r < 0)
                goto out;
        pkc0 = need_role(ctx, ks, ks_path, "pkc0", "a fuse plan (PublicKeyHash)", FL_HINT_NONE, &r);
        if (!pkc0)
                goto out;
        r = chip_bsi_auth(ctx, chip, pkc0->type, &auth);
        if (r < 0)
                goto out;

        /* ODM words and locks. */
        if (o->jtag_disable && (r = add_word(ctx, plan, t234 ? "ArmJtagDisable" : "JtagDisable", 1)) < 0)
                goto out;
        for (unsigned i = 0; i < 12; i++) {
                if (!(o->odm_reserved_set & (1u << i)))
                        continue;
                snprintf(name, sizeof(name), "ReservedOdm%u", i);
                if (!chip_fuse(chip, name)) {
                        r = fl_err_hint(ctx, FL_HINT_ODM_ASKED, -EINVAL, "ReservedOdm%u: %s has ReservedOdm0..%u only", i,
                                   chip_name(chip), t234 ? 7 : 11);
                        goto out;
                }
                if (!o->odm_reserved[i]) {
                        r = fl_err_hint(ctx, FL_HINT_ODM_ASKED, -EINVAL, "ReservedOdm%u=0x0 burns nothing", i);
                        goto out;
                }
                if ((r = add_word(ctx, plan, name, o->odm_reserved[i])) < 0)
                        goto out;
        }
        if (o->has_odm_id) {
                if (!o->odm_id) {
                        r = fl_err_hint(ctx, FL_HINT_ODM_ASKED, -EINVAL, "OdmId 0x0 burns nothing");
                        goto out;
                }
                if ((r = add_word(ctx, plan, "OdmId", o->odm_id)) < 0)
                        goto out;
        }
        if (o->has_odm_lock) {
                const struct fuse_def *d = chip_fuse(chip, "OdmLock");
                if (!d) {
                        r = fl_err_hint(ctx, FL_HINT_ODM_ASKED, -EINVAL,
                                   "OdmLock is not burnable on %s (not in NVIDIA's fuse configuration)",
                                   chip_name(chip));
                        goto out;
                }
                if (!o->odm_lock || (o->odm_lock & ~(uint32_t)d->mask)) {
                        r = fl_err_hint(ctx, FL_HINT_ODM_ASKED, -EINVAL, "OdmLock 0x%x: %s takes lock bits 0x1..0x%llx (4 bits [U])",
                                   o->odm_lock, chip_name(chip), (unsigned long long)d->mask);
                        goto out;
                }
                if ((r = add_word(ctx, plan, "OdmLock", o->odm_lock)) < 0)
                        goto out;
        }

        /* Fuse keys: values from the token, checked against the kcv. */
        k = keyset_find(ks, "sbk");
        if (o->sbk == SBK_YES && !k) {
                r = fl_err_hint(ctx, FL_HINT_NO_SBK, -EINVAL, "SecureBootKey was asked for but keyset %s has no sbk key",
                           ks_path);
                goto out;
        }
        if (o->sbk != SBK_NO && k) {
                if ((r = add_key(ctx, plan, "SecureBootKey", k, ks_path, get_key, data)) < 0)
                        goto out;
                with_sbk = true;
        }
        if (!t234) {
                static const char *const keks[][2] = {
                        { "kek0", "Kek0" }, { "kek1", "Kek1" }, { "kek2", "Kek2" }, { "kek256", "Kek256" }
                };
                for (size_t i = 0; i < FL_ARRAY_SIZE(keks); i++)
                        if ((k = keyset_find(ks, keks[i][0])) &&
                            (r = add_key(ctx, plan, keks[i][1], k, ks_path, get_key, data)) < 0)
                                goto out;
        }
        if (o->oem_keys) {
                /* NVIDIA's own sample burns OemK1 alone with bit 9 (r38.4
                 * "P-521 + SBK + OemK1"): either key, or both, will do. */
                const struct ks_key *k1 = keyset_find(ks, "oem-k1"), *k2 = keyset_find(ks, "oem-k2");
                if (!t234) {
                        r = fl_err_hint(ctx, FL_HINT_OEM_KEYS_ASKED, -EINVAL, "the OEM keys: OemK1/OemK2 exist on t234 only (t194 uses Kek fuses)");
                        goto out;
                }
                if (!k1 && !k2) {
                        r = fl_err_hint(ctx, FL_HINT_OEM_KEYS_ASKED, -EINVAL, "the OEM keys need key 'oem-k1' or 'oem-k2', which keyset %s does "
                                   "not have", ks_path);
                        goto out;
                }
                if ((k1 && (r = add_key(ctx, plan, "OemK1", k1, ks_path, get_key, data)) < 0) ||
                    (k2 && (r = add_key(ctx, plan, "OemK2", k2, ks_path, get_key, data)) < 0))
                        goto out;
        }

        /* Key hashes from the manifest. */
        if ((r = add_hash(ctx, plan, "PublicKeyHash", pkc0, ks_path)) < 0)
                goto out;
        if (o->revocation) {
                const struct ks_key *p1, *p2;
                if (!t234) {
                        r = fl_err_hint(ctx, FL_HINT_REVOCATION_ASKED, -EINVAL, "PKC revocation: PkcPubkeyHash1/2 and OptInEnable exist on t234 only");
                        goto out;
                }
                if (!(p1 = need_role(ctx, ks, ks_path, "pkc1", "PKC revocation", FL_HINT_REVOCATION_ASKED, &r)) ||
                    !(p2 = need_role(ctx, ks, ks_path, "pkc2", "PKC revocation", FL_HINT_REVOCATION_ASKED, &r)))
                        goto out;
                if (p1->type != pkc0->type || p2->type != pkc0->type) {
                        r = fl_err_hint(ctx, FL_HINT_REVOCATION_ASKED, -EINVAL, "PKC revocation: pkc0/pkc1/pkc2 are %s/%s/%s; all three must be the "
                                   "same type", key_type_name(pkc0->type), key_type_name(p1->type),
                                   key_type_name(p2->type));
                        goto out;
                }
                if ((r = add_hash(ctx, plan, "PkcPubkeyHash1", p1, ks_path)) < 0 ||
                    (r = add_hash(ctx, plan, "PkcPubkeyHash2", p2, ks_path)) < 0 ||
                    (r = add_word(ctx, plan, "OptInEnable", 1)) < 0)
                        goto out;
        }

        /* BootSecurityInfo: bit 9 only with the OEM keys in the plan (NVIDIA
         * staff, forum 288268; odmfuse's unconditional 0x200 is wrong). */
        if (o->bsi_reserved & ~chip_bsi_reserved(chip)) {
                r = fl_err(ctx, -EINVAL, "factory-reserved BootSecurityInfo bits 0x%x: %s has reserved bits 0x%x only",
                           o->bsi_reserved, chip_name(chip), chip_bsi_reserved(chip));
                goto out;
        }
        /* The factory-set reserved bits the modules come with (e.g. 0x1e0 on
         * newer Orin NX/Nano): the burned value must carry them, or FSKP
         * fails "from 1 to 0" part-way through the burn. */
        if (o->ftpm) {
                /* [U] bits 11/13: see check_bsi. */
                if (!t234) {
                        r = fl_err_hint(ctx, FL_HINT_FTPM_ASKED, -EINVAL, "fTPM: BootSecurityInfo bits 11/13 are a t234 fTPM setting; %s "
                                   "has no fTPM", chip_name(chip));
                        goto out;
                }
                if (!(o->accept_unverified & FUSE_ACCEPT_T234_BSI_11_13)) {
                        r = fl_err_hint(ctx, FL_HINT_ACCEPT_BSI_11_13, -EPERM,
                                        "the fTPM sets BootSecurityInfo bits 11 (OEM DICE1) and 13 (FMC DICE), which "
                                        "are unverified [U] (the fuse specification was not read): acknowledge "
                                        "that with " FUSE_ACCEPT_T234_BSI_11_13_NAME);
                        goto out;
                }
                if (!o->oem_keys) {
                        r = fl_err_hint(ctx, FL_HINT_OEM_KEYS, -EINVAL,
                                        "the fTPM needs the OEM keys: BootSecurityInfo bits 11/13 go with ODM key "
                                        "valid (bit 9)");
                        goto out;
                }
        }
        bsi = auth | (with_sbk ? chip_bsi_sbk_bit(chip) : 0) | (o->oem_keys ? chip_bsi_odm_key_valid_bit(chip) : 0) |
              (o->ftpm ? FUSE_BSI_T234_OEM_DICE1 | FUSE_BSI_T234_FMC_DICE : 0) | o->bsi_reserved;
        if ((r = add_word(ctx, plan, "BootSecurityInfo", bsi)) < 0)
                goto out;
        if (o->production_mode && (r = add_word(ctx, plan, "SecurityMode", 1)) < 0)
                goto out;

        /* T194 has no TEST magic: its dry run is `burnfuses dummy`. */
        plan->magic = o->test && chip_has_test_magic(plan->chip) ? FUSE_MAGIC_TEST : FUSE_MAGIC;
        plan->keyset_name = dup_opt(ks->name);
        plan->keyset_path = dup_opt(ks_path);
        plan->profile = dup_opt(ks->profile);
        if ((ks->name && !plan->keyset_name) || !plan->keyset_path || (ks->profile && !plan->profile)) {
                r = -ENOMEM;
                goto out;
        }
        fuse_plan_sort(plan);
        plan->accept_unverified = o->accept_unverified;
        /* A built plan must pass the same rules a foreign file does. */
        r = fuse_plan_check(ctx, plan, ks, &probs);
        if (r < 0)
                goto out;
        if (probs.n) {
                r = fl_err(ctx, -EINVAL, "%s: plan breaks a rule: %s", ks_path, probs.v[0].msg);
                goto out;
        }
        *ret = plan;
        plan = NULL;
        r = 0;
out:
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        return r;
}

struct token_keys {
        fl_token *tok;
};

static int token_key(fl_ctx *ctx, void *data, const struct ks_key *k, unsigned char *out, size_t len)
{
        struct token_keys *tk = data;
        struct fl_secret s = { 0 };
        token_obj obj;
        int r;

        r = keyset_key_object(ctx, tk->tok, k, &obj);
        if (r < 0)
                goto out;
        r = token_read_secret(tk->tok, obj, &s);
        if (r < 0)
                goto out;
        if (s.len != len) {
                r = fl_err(ctx, -EBADMSG, "key '%s' in the token is %zu bytes; its fuse takes %zu", k->role, s.len,
                           len);
                goto out;
        }
        memcpy(out, s.data, len);
        r = 0;
out:
        secret_wipe(&s);
        return r;
}

/* The manifest's hash must still be the hash of the token's key: burning a
 * hash whose key is gone would leave a device nobody can sign for. */
static int check_token_pkc(fl_ctx *ctx, fl_token *tok, const struct keyset *ks, const char *ks_path,
                           const char *role)
{
        const struct ks_key *k = keyset_find(ks, role);
        EVP_PKEY *pk = NULL;
        char *hex = NULL;
        token_obj obj;
        int r;

        if (!k)
                return 0;
        if ((r = keyset_key_object(ctx, tok, k, &obj)) < 0 || (r = token_get_pubkey(tok, obj, &pk)) < 0 ||
            (r = tegra_pkc_hash_hex(ctx, ks->chip, pk, &hex)) < 0)
                goto out;
        if (!k->tegra_pkc_hash || strcasecmp(hex, k->tegra_pkc_hash)) {
                r = fl_err(ctx, -EBADMSG, "%s: key '%s': the token's public key hashes to %s, the manifest says %s",
                           ks_path, role, hex, k->tegra_pkc_hash ? k->tegra_pkc_hash : "(none)");
                goto out;
        }
        r = 0;
out:
        free(hex);
        EVP_PKEY_free(pk);
        return r;
}

int fuse_plan_build_token(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const struct token_opts *topts,
                          const struct fuse_plan_opts *opts, struct fuse_plan **ret)
{
        struct token_keys tk = { 0 };
        int r;

        r = keyset_token_open(ctx, ks, topts, &tk.tok);
        if (r < 0)
                goto out;
        if ((r = check_token_pkc(ctx, tk.tok, ks, ks_path, "pkc0")) < 0)
                goto out;
        if (opts->revocation && ((r = check_token_pkc(ctx, tk.tok, ks, ks_path, "pkc1")) < 0 ||
                                 (r = check_token_pkc(ctx, tk.tok, ks, ks_path, "pkc2")) < 0))
                goto out;
        r = fuse_plan_build(ctx, ks, ks_path, opts, token_key, &tk, ret);
out:
        token_close(tk.tok);
        return r;
}

/* ---- read-back ---------------------------------------------------------- */

void fuse_readback_free(struct fuse_readback *rb)
{
        if (!rb)
                return;
        if (rb->v) {
                OPENSSL_cleanse(rb->v, rb->n * sizeof(*rb->v));
                free(rb->v);
        }
        free(rb);
}

const struct fuse_readback_entry *fuse_readback_find(const struct fuse_readback *rb, const char *name)
{
        for (size_t i = 0; rb && i < rb->n; i++)
                if (!strcmp(rb->v[i].name, name))
                        return &rb->v[i];
        return NULL;
}

/* Right-align ndig hex digits into out[size] (big-endian). */
static void hex_right(const char *dig, size_t ndig, unsigned char *out, size_t size)
{
        memset(out, 0, size);
        for (size_t i = 0; i < ndig; i++) {
                size_t pos = ndig - 1 - i; /* nibble index from the right */
                int v = hex_digit((unsigned char)dig[i]);
                out[size - 1 - pos / 2] |= (unsigned char)(pos % 2 ? v << 4 : v);
        }
}

int fuse_readback_parse(fl_ctx *ctx, const char *file, const char *text, size_t len, enum fl_chip chip,
                        struct fuse_readback **ret)
{
        struct fuse_readback *rb = NULL;
        const char *p = text, *end = text + len;
        unsigned lineno = 0;
        int r;

        if (len > FUSE_READBACK_MAX_BYTES) {
                r = fl_err(ctx, -EINVAL, "%s: read-back file larger than %d bytes", file, FUSE_READBACK_MAX_BYTES);
                goto out;
        }
        if (memchr(text, 0, len)) {
                r = fl_err(ctx, -EINVAL, "%s: binary data in a read-back file", file);
                goto out;
        }
        rb = calloc(1, sizeof(*rb));
        if (!rb || !(rb->v = calloc(FUSE_READBACK_MAX_LINES, sizeof(*rb->v)))) {
                r = -ENOMEM;
                goto out;
        }
        rb->chip = chip;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *q = p, *name, *dig;
                size_t nlen, ndig;
                struct fuse_readback_entry *e;

                lineno++;
                while (le > p && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
                        le--;
                if (le == p) /* blank line */
                        goto next;
                if (rb->n >= FUSE_READBACK_MAX_LINES) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: more than %d fuse lines", file, lineno,
                                   FUSE_READBACK_MAX_LINES);
                        goto out;
                }
                name = q;
                while (q < le && (isalnum((unsigned char)*q) || *q == '_'))
                        q++;
                nlen = (size_t)(q - name);
                if (!nlen || nlen >= sizeof(e->name) || !isalpha((unsigned char)*name) || q >= le || *q != ':') {
                        r = fl_err(ctx, -EINVAL, "%s:%u: not a 'Name: hex' read-back line", file, lineno);
                        goto out;
                }
                e = &rb->v[rb->n];
                memcpy(e->name, name, nlen);
                e->name[nlen] = 0;
                e->line = lineno;
                e->def = chip_fuse(chip, e->name);
                if (fuse_readback_find(rb, e->name)) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: fuse %s appears twice", file, lineno, e->name);
                        goto out;
                }
                q++;
                while (q < le && (*q == ' ' || *q == '\t'))
                        q++;
                if (le - q >= 2 && q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
                        q += 2;
                dig = q;
                while (q < le && hex_digit((unsigned char)*q) >= 0)
                        q++;
                ndig = (size_t)(q - dig);
                /* Values are never echoed: a read-back line may hold a key. */
                if (!ndig || q != le) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: fuse %s: value is not hex", file, lineno, e->name);
                        goto out;
                }
                if (e->def) {
                        size_t want = 2 * e->def->size;
                        /* Words print as 8 (16) digits; keys and hashes as
                         * every byte: a short one would be ambiguous. */
                        if (ndig > want || (e->def->size > 8 && ndig != want)) {
                                r = fl_err(ctx, -EINVAL, "%s:%u: fuse %s: %zu hex digits, a %u-byte fuse has %s%zu",
                                           file, lineno, e->name, ndig, e->def->size,
                                           e->def->size > 8 ? "" : "at most ", want);
                                goto out;
                        }
                        e->len = e->def->size;
                } else {
                        if (ndig > 2 * FUSE_VALUE_MAX) {
                                r = fl_err(ctx, -EINVAL, "%s:%u: fuse %s: value longer than %d bytes", file, lineno,
                                           e->name, FUSE_VALUE_MAX);
                                goto out;
                        }
                        e->len = (ndig + 1) / 2;
                }
                hex_right(dig, ndig, e->value, e->len);
                rb->n++;
        next:
                p = nl ? nl + 1 : end;
        }
        if (!rb->n) {
                r = fl_err(ctx, -EINVAL, "%s: no 'Name: hex' lines (not a readfuses output)", file);
                goto out;
        }
        *ret = rb;
        rb = NULL;
        r = 0;
out:
        fuse_readback_free(rb);
        return r;
}

/* ---- diff -------------------------------------------------------------- */

void fuse_diff_free(struct fuse_diff *d)
{
        if (!d)
                return;
        if (d->v) {
                OPENSSL_cleanse(d->v, d->n * sizeof(*d->v));
                free(d->v);
        }
        free(d);
}

static unsigned popcount_bytes(const unsigned char *a, const unsigned char *mask_not, size_t len)
{
        unsigned n = 0;

        for (size_t i = 0; i < len; i++)
                n += (unsigned)__builtin_popcount((unsigned)(a[i] & ~mask_not[i] & 0xff));
        return n;
}

int fuse_plan_diff(fl_ctx *ctx, const struct fuse_plan *plan, const struct fuse_readback *rb,
                   struct fuse_diff **ret)
{
        struct fuse_diff *d = NULL;
        const struct fuse_readback_entry *sm, *lk;
        uint64_t locks;
        char missing[256] = "";
        size_t moff = 0;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d || (plan->n && !(d->v = calloc(plan->n, sizeof(*d->v))))) {
                r = -ENOMEM;
                goto out;
        }
        d->chip = plan->chip;
        sm = fuse_readback_find(rb, "SecurityMode");
        d->production_locked = sm && !all_zero(sm->value, sm->len);
        /* OdmLock has one bit per ReservedOdm word, and a word stays
         * writable only until its lock bit is burned (jetson-fuses.md §2,
         * T194 README). Bit i is taken to lock ReservedOdm<i> [I]; the
         * read-back may carry OdmLock on t234 too (the BSP read list has
         * it), where the same rule is the safe side [U]. */
        lk = fuse_readback_find(rb, "OdmLock");
        locks = lk ? be_word(lk->value, lk->len) : 0;
        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];
                const struct fuse_readback_entry *c = fuse_readback_find(rb, e->def->name);
                struct fuse_diff_item *it = &d->v[d->n];
                size_t sz = e->def->size;

                if (!c) {
                        moff += (size_t)snprintf(missing + moff, moff < sizeof(missing) ? sizeof(missing) - moff : 0,
                                                 "%s%s", moff ? ", " : "", e->def->name);
                        if (moff >= sizeof(missing))
                                moff = sizeof(missing);
                        continue;
                }
                d->n++;
                it->def = e->def;
                memcpy(it->current, c->value, sz);
                memcpy(it->planned, e->value, sz);
                memcpy(it->burn, e->value, sz);
                if (!strcmp(e->def->name, "BootSecurityInfo") && chip_bsi_reserved(plan->chip)) {
                        uint32_t cur = (uint32_t)be_word(c->value, sz), pl = (uint32_t)be_word(e->value, sz);
                        uint32_t keep = cur & chip_bsi_reserved(plan->chip) & ~pl;
                        /* Reserved bits the factory set cannot be cleared:
                         * FSKP fails "from 1 to 0" if the value omits them. */
                        if (keep) {
                                it->reserved_kept = keep;
                                word_be(pl | keep, it->burn, sz);
                                snprintf(it->note, sizeof(it->note),
                                         "factory reserved bits 0x%x already set: burn 0x%x | 0x%x = 0x%x", keep, pl,
                                         keep, pl | keep);
                        }
                }
                it->bits_to_set = popcount_bytes(it->burn, it->current, sz);
                it->bits_to_clear = popcount_bytes(it->current, it->burn, sz);
                if (it->bits_to_clear && e->def->secret) {
                        /* No count for a key: popcount(current & ~planned)
                         * says something about the planned key value, and
                         * the note reaches stdout, JSON and the error. */
                        it->state = FD_CONFLICT;
                        snprintf(it->note, sizeof(it->note),
                                 "bits are already set that the plan does not have: fuse bits cannot go 1 to 0 "
                                 "(a different key is burned)");
                } else if (it->bits_to_clear) {
                        it->state = FD_CONFLICT;
                        snprintf(it->note, sizeof(it->note),
                                 "%u bit%s already set that the plan does not have: fuse bits cannot go 1 to 0",
                                 it->bits_to_clear, it->bits_to_clear == 1 ? " is" : "s are");
                } else if (!it->bits_to_set) {
                        it->state = FD_EQUAL;
                } else if (d->production_locked) {
                        it->state = FD_CONFLICT;
                        snprintf(it->note, sizeof(it->note),
                                 "SecurityMode is burned: the device refuses further fuse burns");
                } else if (is_reserved_odm(e->def) && (locks >> strtoul(e->def->name + 11, NULL, 10) & 1)) {
                        /* The burn would fail part-way, after earlier fuses
                         * were burned: refuse it up front. */
                        it->state = FD_CONFLICT;
                        snprintf(it->note, sizeof(it->note), "OdmLock bit %lu is burned: %s can no longer be written",
                                 strtoul(e->def->name + 11, NULL, 10), e->def->name);
                } else {
                        it->state = FD_BURN;
                }
                if (it->state == FD_EQUAL)
                        d->n_equal++;
                else if (it->state == FD_BURN)
                        d->n_burn++;
                else
                        d->n_conflict++;
        }
        if (moff) {
                r = fl_err(ctx, -EBADMSG, "the read-back has no line for planned fuse%s %s: cannot prove the burn "
                           "is safe", strchr(missing, ',') ? "s" : "", missing);
                goto out;
        }
        *ret = d;
        d = NULL;
        r = 0;
out:
        fuse_diff_free(d);
        return r;
}

/* ---- templates --------------------------------------------------------- */

static int parse_bool(const char *v, bool *ret)
{
        if (!strcmp(v, "yes") || !strcmp(v, "true"))
                *ret = true;
        else if (!strcmp(v, "no") || !strcmp(v, "false"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* One odmfuse_* value: printable, no shell or quoting characters (it goes
 * into the environment of NVIDIA's scripts). -ENOENT for an unknown key. */
static int odm_value(struct odm_board *b, const char *k, const char *v)
{
        static const struct { const char *key; size_t off, len; } keys[] = {
#define K(name, field) { name, offsetof(struct odm_board, field), sizeof(((struct odm_board *)0)->field) }
                K("board", board), K("FAB", fab), K("BOARDID", boardid), K("BOARDSKU", boardsku),
                K("BOARDREV", boardrev), K("CHIPREV", chiprev), K("CHIP_SKU", chip_sku), K("FUSELEVEL", fuselevel),
                K("board_sku", board_sku), K("board_FAB", board_fab),
#undef K
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++) {
                if (strcmp(k, keys[i].key))
                        continue;
                if (!*v || strlen(v) >= keys[i].len)
                        return -EINVAL;
                for (const char *p = v; *p; p++)
                        if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
                                return -EINVAL;
                memcpy((char *)b + keys[i].off, v, strlen(v) + 1);
                return 0;
        }
        return -ENOENT;
}

int fuse_template_find(fl_ctx *ctx, const char *arg, const char *const *dirs, size_t n_dirs, char **ret_path)
{
        char looked[1024] = "";
        size_t off = 0;

        if (strchr(arg, '/') || strstr(arg, ".conf")) {
                *ret_path = strdup(arg);
                return *ret_path ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < n_dirs; i++) {
                char *p = NULL;
                if (!dirs[i] || !*dirs[i])
                        continue;
                if (asprintf(&p, "%s/%s.conf", dirs[i], arg) < 0)
                        return -ENOMEM;
                if (access(p, R_OK) == 0) {
                        *ret_path = p;
                        return 0;
                }
                free(p);
                if (off < sizeof(looked))
                        off += (size_t)snprintf(looked + off, sizeof(looked) - off, "%s%s", off ? ", " : "", dirs[i]);
        }
        return fl_err(ctx, -ENOENT, "template '%s' not found (looked in %s)", arg, off ? looked : "no directory");
}

int fuse_template_load(fl_ctx *ctx, const char *path, struct fuse_template *ret)
{
        struct fuse_template t;
        unsigned char *data = NULL;
        char *save = NULL, *line;
        size_t len = 0;
        bool have_chip = false;
        int r;

        memset(&t, 0, sizeof(t));
        r = file_read(ctx, path, 16 * 1024, &data, &len);
        if (r < 0)
                goto out;
        if (memchr(data, 0, len)) {
                r = fl_err(ctx, -EINVAL, "%s: binary data in a template", path);
                goto out;
        }
        for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq, *k, *v, *e;
                bool b = false;

                while (isspace((unsigned char)*line))
                        line++;
                if (!*line || *line == '#')
                        continue;
                eq = strchr(line, '=');
                if (!eq) {
                        r = fl_err(ctx, -EINVAL, "%s: '%.40s' is not 'key = value'", path, line);
                        goto out;
                }
                *eq = 0;
                k = line;
                v = eq + 1;
                for (e = eq; e > k && isspace((unsigned char)e[-1]); e--)
                        e[-1] = 0;
                while (isspace((unsigned char)*v))
                        v++;
                for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]); e--)
                        e[-1] = 0;
                r = 0;
                if (!strcmp(k, "name")) {
                        snprintf(t.name, sizeof(t.name), "%s", v);
                } else if (!strcmp(k, "module")) {
                        snprintf(t.module, sizeof(t.module), "%s", v);
                } else if (!strcmp(k, "chip")) {
                        t.chip = chip_from_name(v);
                        have_chip = t.chip != FL_CHIP_NONE;
                        r = have_chip ? 0 : -EINVAL;
                } else if (!strcmp(k, "recovery_pid")) {
                        unsigned long pid = strtoul(v, &e, 16);
                        r = *v && !*e && pid <= 0xffff ? 0 : -EINVAL;
                        t.recovery_pid = (uint16_t)pid;
                } else if (!strcmp(k, "sbk")) {
                        if (!strcmp(v, "auto"))
                                t.opts.sbk = SBK_AUTO;
                        else if ((r = parse_bool(v, &b)) == 0)
                                t.opts.sbk = b ? SBK_YES : SBK_NO;
                } else if (!strcmp(k, "oem_keys")) {
                        r = parse_bool(v, &t.opts.oem_keys);
                } else if (!strcmp(k, "revocation")) {
                        r = parse_bool(v, &t.opts.revocation);
                } else if (!strcmp(k, "jtag_disable")) {
                        r = parse_bool(v, &t.opts.jtag_disable);
                } else if (!strcmp(k, "production_mode")) {
                        r = parse_bool(v, &t.opts.production_mode);
                } else if (!strcmp(k, "ftpm")) {
                        /* BSI bits 11|13; still needs --accept-unverified at generation. */
                        r = parse_bool(v, &t.opts.ftpm);
                } else if (!strcmp(k, "bsi_reserved")) {
                        unsigned long x = strtoul(v, &e, 16);
                        r = *v && !*e && x <= 0xffffffffUL ? 0 : -EINVAL;
                        t.opts.bsi_reserved = (uint32_t)x;
                } else if (!strncmp(k, "odmfuse_", 8)) {
                        r = odm_value(&t.odm, k + 8, v);
                        if (r == -ENOENT) {
                                r = fl_err(ctx, -EINVAL, "%s: unknown key '%.40s'", path, k);
                                goto out;
                        }
                } else {
                        r = fl_err(ctx, -EINVAL, "%s: unknown key '%.40s'", path, k);
                        goto out;
                }
                if (r < 0) {
                        r = fl_err(ctx, -EINVAL, "%s: %s: invalid value '%.40s'", path, k, v);
                        goto out;
                }
        }
        if (!have_chip) {
                r = fl_err(ctx, -EINVAL, "%s: template names no chip (chip = t194|t234)", path);
                goto out;
        }
        if (t.recovery_pid) {
                const struct chip_module *m = chip_module_by_pid(t.recovery_pid);
                if (!m || m->chip != t.chip) {
                        r = fl_err(ctx, -EINVAL, "%s: recovery_pid 0x%04x is not a known %s module", path,
                                   t.recovery_pid, chip_name(t.chip));
                        goto out;
                }
        }
        *ret = t;
        r = 0;
out:
        free(data);
        return r;
}
