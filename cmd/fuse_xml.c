/* fuse_xml.c — `fuseline fuse-xml`: write genericfuse XML from a keyset,
 * check any fuse XML, print a key's PublicKeyHash, diff a plan against a
 * device's readfuses output. Parsing options and printing only; the work is
 * in lib/fuse_plan.c and lib/fuse_xml.c. Key values are never printed. */
#include <argp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/burn.h"
#include "../lib/fuse_plan.h"
#include "../lib/proc.h"
#include "../lib/fuse_xml.h"
#include "../lib/keyset.h"
#include "../lib/ledger.h"
#include "../lib/record.h"
#include "../lib/tegra_key.h"
#include "cli.h"

enum {
        O_KEYSET = 0x2000,
        O_OUT,
        O_TEMPLATE,
        O_NO_SBK,
        O_OEM_KEYS,
        O_REVOCATION,
        O_JTAG,
        O_ODM_ID,
        O_ODM_RES,
        O_ODM_LOCK,
        O_PROD,
        O_TEST,
        O_CHECK,
        O_CHIP,
        O_PKC_HASH,
        O_DIFF,
        O_READBACK,
        O_PACKAGE,
        O_BSP,
        O_BOARD,
        O_PLAN,
        O_TIMEOUT,
        O_BSI_RESERVED,
        O_FTPM,
        O_ACCEPT_UNVERIFIED,
};

#define MAX_ODM_RES 16

struct args {
        const char *keyset, *out, *template_, *check, *chip, *pkc_hash, *diff, *readback;
        const char *package, *bsp, *board, *plan;
        int timeout_s;
        const char *odm_id, *odm_lock, *odm_res[MAX_ODM_RES], *bsi_reserved;
        size_t n_odm_res;
        bool no_sbk, oem_keys, revocation, jtag, prod, test, too_many_res, ftpm;
        uint32_t accept_unverified; /* FUSE_ACCEPT_* */
};

static const struct argp_option options[] = {
        { NULL, 0, NULL, 0, "Generate (needs the keyset's token for fuse-key values):", 1 },
        { "keyset", O_KEYSET, "FILE", 0, "Keyset manifest (fuseline keygen); with --check: compare hashes/keys", 1 },
        { "out", O_OUT, "FILE", 0, "Write the fuse XML here (mode 0600, atomically)", 1 },
        { "template", O_TEMPLATE, "NAME|FILE", 0,
          "Product template (templates/NAME.conf, or $FUSELINE_TEMPLATES/NAME.conf): chip and default options", 1 },
        { "no-sbk", O_NO_SBK, NULL, 0, "Leave SecureBootKey out even if the keyset has an sbk", 1 },
        { "oem-keys", O_OEM_KEYS, NULL, 0, "T234: burn the keyset's OemK1/OemK2 and set BootSecurityInfo bit 9 (ODM key valid)", 1 },
        { "revocation", O_REVOCATION, NULL, 0, "T234: PkcPubkeyHash1/2 from pkc1/pkc2 plus OptInEnable", 1 },
        { "jtag-disable", O_JTAG, NULL, 0, "Disable ARM JTAG (ArmJtagDisable / JtagDisable)", 1 },
        { "odm-id", O_ODM_ID, "0xHEX", 0, "OdmId (64 bits)", 1 },
        { "odm-reserved", O_ODM_RES, "N=0xHEX", 0, "ReservedOdmN (32 bits); repeatable", 1 },
        { "odm-lock", O_ODM_LOCK, "MASK", 0, "T194: OdmLock bits (one per ReservedOdm word, 0x1..0xf)", 1 },
        { "bsi-reserved", O_BSI_RESERVED, "0xHEX", 0,
          "T234: factory-set reserved BootSecurityInfo bits the modules come with (0x1e0 on newer Orin NX/Nano), "
          "carried in the value burned", 1 },
        { "ftpm", O_FTPM, NULL, 0, "T234: BootSecurityInfo bits 11 and 13 for the fTPM (with --oem-keys); "
          "unverified [U], needs --accept-unverified=" FUSE_ACCEPT_T234_BSI_11_13_NAME, 1 },
        { "accept-unverified", O_ACCEPT_UNVERIFIED, "NAME", 0, "Acknowledge an unverified fact the plan may use: "
          FUSE_ACCEPT_T234_BSI_11_13_NAME " (generation, --check, --package)", 1 },
        { "production-mode", O_PROD, NULL, 0, "SecurityMode=1, always last: irreversible, locks every fuse", 1 },
        { "test", O_TEST, NULL, 0, "T234: TEST MagicId, the device burns nothing (T194: use burn --dry-run)", 1 },
        { NULL, 0, NULL, 0, "Other modes:", 2 },
        { "check", O_CHECK, "FILE", 0, "Check any fuse XML against the chip's fuse map and rules (exit 5 if wrong)", 2 },
        { "pkc-hash", O_PKC_HASH, "KEY.pem", 0, "Print the PublicKeyHash value of a PEM public or private key", 2 },
        { "diff", O_DIFF, "FILE", 0, "Diff a fuse XML against --readback (exit 7 on a conflict)", 2 },
        { "readback", O_READBACK, "FILE", 0, "tegraflash readfuses output (Name: hex per line)", 2 },
        { "chip", O_CHIP, "t234|t194", 0, "Chip (required for --check, --pkc-hash, --diff)", 2 },
        { NULL, 0, NULL, 0, "Fuse package (runs the BSP's odmfuse.sh --noburn offline):", 3 },
        { "package", O_PACKAGE, "OUT.tbz2", 0, "Write the offline fuse package for --plan here (never replaced); with "
          "--test the dry-run package", 3 },
        { "bsp", O_BSP, "DIR", 0, "The BSP's Linux_for_Tegra directory (default $FUSELINE_BSP)", 3 },
        { "board", O_BOARD, "NAME|FILE", 0, "Product template holding the offline board values (odmfuse_* keys)", 3 },
        { "plan", O_PLAN, "FILE", 0, "The fuse XML to package (FUSE MagicId)", 3 },
        { "timeout", O_TIMEOUT, "SECONDS", 0, "Longest odmfuse.sh may run (default 600)", 3 },
        { 0 }
};

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
        struct args *a = state->input;

        switch (key) {
        case O_KEYSET: a->keyset = arg; break;
        case O_OUT: a->out = arg; break;
        case O_TEMPLATE: a->template_ = arg; break;
        case O_NO_SBK: a->no_sbk = true; break;
        case O_OEM_KEYS: a->oem_keys = true; break;
        case O_REVOCATION: a->revocation = true; break;
        case O_JTAG: a->jtag = true; break;
        case O_ODM_ID: a->odm_id = arg; break;
        case O_ODM_RES:
                if (a->n_odm_res < MAX_ODM_RES)
                        a->odm_res[a->n_odm_res++] = arg;
                else
                        a->too_many_res = true;
                break;
        case O_ODM_LOCK: a->odm_lock = arg; break;
        case O_PROD: a->prod = true; break;
        case O_BSI_RESERVED: a->bsi_reserved = arg; break;
        case O_FTPM: a->ftpm = true; break;
        case O_ACCEPT_UNVERIFIED:
                if (fuse_accept_parse(cli_get()->ctx, arg, &a->accept_unverified) < 0) {
                        fl_err_clear(cli_get()->ctx);
                        argp_error(state, "--accept-unverified '%s': the only acknowledgement is %s", arg,
                                   FUSE_ACCEPT_T234_BSI_11_13_NAME);
                }
                break;
        case O_TEST: a->test = true; break;
        case O_CHECK: a->check = arg; break;
        case O_CHIP: a->chip = arg; break;
        case O_PKC_HASH: a->pkc_hash = arg; break;
        case O_DIFF: a->diff = arg; break;
        case O_READBACK: a->readback = arg; break;
        case O_PACKAGE: a->package = arg; break;
        case O_BSP: a->bsp = arg; break;
        case O_BOARD: a->board = arg; break;
        case O_PLAN: a->plan = arg; break;
        case O_TIMEOUT: {
                uint64_t v = 0;
                if (cli_number(arg, 86400, &v) < 0 || v < 1)
                        argp_error(state, "--timeout '%s': seconds, 1 to 86400 (decimal or 0x hex)", arg);
                a->timeout_s = (int)v;
                break;
        }
        case ARGP_KEY_ARG: argp_error(state, "unexpected argument '%s'", arg); break;
        default: return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char doc[] =
        "Write NVIDIA genericfuse XML from a keyset, check any fuse XML, print a key's PublicKeyHash, or diff a "
        "plan against a device's readfuses output."
        "\v"
        "Examples:\n"
        "  fuseline fuse-xml --keyset ks.json --out fuse.xml --production-mode\n"
        "  fuseline fuse-xml --keyset ks.json --template orin-nx-16gb --out f.xml --test\n"
        "  fuseline fuse-xml --keyset ks.json --out f.xml --oem-keys --odm-reserved 0=0x12\n"
        "  fuseline fuse-xml --check fuse.xml --chip t234 --keyset ks.json\n"
        "  fuseline fuse-xml --pkc-hash pkc0.pub.pem --chip t234\n"
        "  fuseline fuse-xml --diff fuse.xml --readback fuse_info.txt --chip t234 --json\n"
        "  fuseline fuse-xml --package fuseblob.tbz2 --bsp ~/Linux_for_Tegra --board orin-nano-8gb --plan fuse.xml\n"
        "  fuseline fuse-xml --package test.tbz2 --bsp ~/Linux_for_Tegra --board orin-nano-8gb --plan fuse.xml --test\n"
        "\n"
        "Fuses are emitted in a safe order (ODM words, OdmLock, keys, key hashes, OptInEnable, "
        "BootSecurityInfo, SecurityMode last). --check lists every problem, each naming the fuse and rule. "
        "--diff ORs factory-set reserved BootSecurityInfo bits (e.g. 0x1e0) into the value to burn. "
        "Key values are never printed; the XML file is created 0600.\n"
        "Exit status: 0 ok, 2 invalid input, 3 token/PIN, 5 --check found problems (or the keyset's token "
        "disagrees with its manifest), 7 --diff found a conflict or --package's output exists; --package: 5 the "
        "package odmfuse.sh wrote does not burn exactly the plan (nothing is written), 1 odmfuse.sh failed.";

static const struct argp_child children[] = {
        { &cli_common_argp, 0, "General:", -1 },
        { &cli_token_argp, 0, "Token (generation):", -2 },
        { &cli_force_argp, 0, "Output:", -3 },
        { &cli_ledger_argp, 0, "Ledger (--out, --package):", -4 },
        { 0 }
};

static const struct argp argp = { options, parse_opt, NULL, doc, children, NULL, NULL };

/* ---- option values ------------------------------------------------------- */

static int parse_hex(const char *s, unsigned maxdig, uint64_t *ret)
{
        uint64_t v = 0;
        size_t n;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        n = strlen(s);
        if (!n || n > maxdig || strspn(s, "0123456789abcdefABCDEF") != n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                v = v << 4 | (uint64_t)(s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10);
        *ret = v;
        return 0;
}

static int opts_from_args(fl_ctx *ctx, const struct args *a, struct fuse_plan_opts *o)
{
        uint64_t v;

        if (a->no_sbk)
                o->sbk = SBK_NO;
        o->oem_keys |= a->oem_keys;
        o->revocation |= a->revocation;
        o->jtag_disable |= a->jtag;
        o->production_mode |= a->prod;
        o->test |= a->test;
        o->ftpm |= a->ftpm;
        o->accept_unverified |= a->accept_unverified;
        if (a->bsi_reserved) {
                if (parse_hex(a->bsi_reserved, 8, &v) < 0)
                        return fl_err(ctx, -EINVAL, "--bsi-reserved '%s' is not a 32-bit hex value (0x…)", a->bsi_reserved);
                o->bsi_reserved = (uint32_t)v;
        }
        if (a->odm_id) {
                if (parse_hex(a->odm_id, 16, &v) < 0)
                        return fl_err(ctx, -EINVAL, "--odm-id '%s' is not a 64-bit hex value (0x…)", a->odm_id);
                o->has_odm_id = true;
                o->odm_id = v;
        }
        if (a->odm_lock) {
                if (parse_hex(a->odm_lock, 8, &v) < 0)
                        return fl_err(ctx, -EINVAL, "--odm-lock '%s' is not a hex mask", a->odm_lock);
                o->has_odm_lock = true;
                o->odm_lock = (uint32_t)v;
        }
        if (a->too_many_res)
                return fl_err(ctx, -EINVAL, "--odm-reserved given more than %d times", MAX_ODM_RES);
        for (size_t i = 0; i < a->n_odm_res; i++) {
                const char *s = a->odm_res[i], *eq = strchr(s, '=');
                char n[8] = "";
                uint64_t idx = 0;

                if (eq && (size_t)(eq - s) < sizeof(n))
                        memcpy(n, s, (size_t)(eq - s));
                if (!eq || cli_number(n, 11, &idx) < 0 || parse_hex(eq + 1, 8, &v) < 0)
                        return fl_err(ctx, -EINVAL, "--odm-reserved '%s' is not N=0xHEX (N 0..11, 32-bit value)", s);
                if (o->odm_reserved_set & (1u << idx))
                        return fl_err(ctx, -EINVAL, "--odm-reserved %u given twice", (unsigned)idx);
                o->odm_reserved_set |= 1u << idx;
                o->odm_reserved[idx] = (uint32_t)v;
        }
        return 0;
}

/* The installed template directory, relative to the directory of the
 * running binary (so a DESTDIR or relocated install finds its own), and as
 * configured (meson's datadir); both set by cmd/meson.build. */
#ifndef FL_TEMPLATES_REL
#define FL_TEMPLATES_REL ""
#endif
#ifndef FL_TEMPLATES_DIR
#define FL_TEMPLATES_DIR "/usr/local/share/fuseline/templates"
#endif

static void installed_templates_dir(char *buf, size_t len)
{
        char exe[PATH_MAX];
        ssize_t n;
        char *slash;

        buf[0] = 0;
        if (!FL_TEMPLATES_REL[0])
                return;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return;
        exe[n] = 0;
        slash = strrchr(exe, '/');
        if (!slash)
                return;
        *slash = 0;
        if ((size_t)snprintf(buf, len, "%s/%s", exe, FL_TEMPLATES_REL) >= len)
                buf[0] = 0;
}

/* NAME → $FUSELINE_TEMPLATES/NAME.conf, ./templates/NAME.conf, the installed
 * data dir (beside the binary, then as configured). */
static int template_path(fl_ctx *ctx, const char *arg, char *buf, size_t len)
{
        char rel[PATH_MAX], *p = NULL;
        const char *dirs[] = { getenv("FUSELINE_TEMPLATES"), "templates", rel, FL_TEMPLATES_DIR };
        int r;

        installed_templates_dir(rel, sizeof(rel));
        r = fuse_template_find(ctx, arg, dirs, FL_ARRAY_SIZE(dirs), &p);
        if (r == 0)
                snprintf(buf, len, "%s", p);
        free(p);
        return r;
}

/* ---- output helpers ------------------------------------------------------- */

/* The acknowledgements a result relied on: ["t234-bsi-11-13"] or []. */
static json_object *accepted_json(uint32_t accept)
{
        json_object *arr = json_object_new_array();

        if (accept & FUSE_ACCEPT_T234_BSI_11_13)
                json_object_array_add(arr, json_object_new_string(FUSE_ACCEPT_T234_BSI_11_13_NAME));
        return arr;
}

static json_object *jstr(const char *s)
{
        return json_object_new_string(s ? s : "");
}

static void hex0x(const unsigned char *v, size_t len, char *out)
{
        out[0] = '0';
        out[1] = 'x';
        hex_encode(v, len, out + 2);
}

static json_object *fuses_json(const struct fuse_plan *plan, const struct keyset *ks)
{
        json_object *arr = json_object_new_array();
        char hex[2 * FUSE_VALUE_MAX + 3];

        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];
                json_object *o = json_object_new_object();

                json_object_object_add(o, "name", jstr(e->def->name));
                json_object_object_add(o, "size", json_object_new_int((int)e->def->size));
                if (e->def->secret) {
                        const char *role = fuse_role(e->def->name);
                        const struct ks_key *k = ks && role ? keyset_find(ks, role) : NULL;
                        json_object_object_add(o, "secret", json_object_new_boolean(1));
                        if (k && k->kcv)
                                json_object_object_add(o, "kcv", jstr(k->kcv));
                } else {
                        hex0x(e->value, e->def->size, hex);
                        json_object_object_add(o, "value", jstr(hex));
                }
                json_object_array_add(arr, o);
        }
        return arr;
}

static void print_fuses(const struct fuse_plan *plan, const struct keyset *ks)
{
        char hex[2 * FUSE_VALUE_MAX + 3];

        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];

                if (e->def->secret) {
                        const char *role = fuse_role(e->def->name);
                        const struct ks_key *k = ks && role ? keyset_find(ks, role) : NULL;
                        printf("  %-20s %3u  (secret key value; kcv %s)\n", e->def->name, e->def->size,
                               k && k->kcv ? k->kcv : "?");
                } else {
                        hex0x(e->value, e->def->size, hex);
                        printf("  %-20s %3u  %s\n", e->def->name, e->def->size, hex);
                }
        }
}

static json_object *problems_json(const struct fuse_problems *p)
{
        json_object *arr = json_object_new_array();
        char msg[FL_ERRMSG_MAX];

        for (size_t i = 0; i < p->n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "line", json_object_new_int((int)p->v[i].line));
                json_object_object_add(o, "fuse", jstr(p->v[i].fuse));
                json_object_object_add(o, "rule", jstr(p->v[i].rule));
                json_object_object_add(o, "message", jstr(cli_with_hint(p->v[i].msg, p->v[i].hint, 0, msg, sizeof(msg))));
                json_object_array_add(arr, o);
        }
        return arr;
}

static void print_problems(const char *file, const struct fuse_problems *p)
{
        for (size_t i = 0; i < p->n; i++) {
                char msg[FL_ERRMSG_MAX];
                const char *m = cli_with_hint(p->v[i].msg, p->v[i].hint, 0, msg, sizeof(msg));
                if (p->v[i].line)
                        printf("%s:%u: [%s] %s\n", file, p->v[i].line, p->v[i].rule, m);
                else
                        printf("%s: [%s] %s\n", file, p->v[i].rule, m);
        }
        if (p->dropped)
                printf("%s: … and %zu more problems\n", file, p->dropped);
}

/* Exit 2 for a file that is not a fuse XML at all (empty, binary, not
 * well-formed, another root element: the "xml" and "root" rules, which end
 * the check on their own); 5 for a genericfuse file that breaks a rule. */
static int problems_error(fl_ctx *ctx, const char *file, const struct fuse_problems *p)
{
        bool not_fuse_xml = p->n && (!strcmp(p->v[0].rule, "xml") || !strcmp(p->v[0].rule, "root"));

        return fl_err_hint(ctx, p->n ? p->v[0].hint : FL_HINT_NONE, not_fuse_xml ? -EINVAL : -EBADMSG,
                           "%s: %zu problem%s; first: %s", file, p->n + p->dropped,
                      p->n + p->dropped == 1 ? "" : "s", p->v[0].msg);
}

static enum fl_chip need_chip(fl_ctx *ctx, const char *arg, const char *mode, int *r)
{
        enum fl_chip c = arg ? chip_from_name(arg) : FL_CHIP_NONE;

        if (!arg)
                *r = fl_err(ctx, -EINVAL, "%s needs --chip t234|t194", mode);
        else if (c == FL_CHIP_NONE)
                *r = fl_err(ctx, -EINVAL, "--chip '%s' is not t234 or t194", arg);
        return c;
}

/* ---- modes -------------------------------------------------------------- */

static int do_generate(struct cli *cli, const struct args *a)
{
        fl_ctx *ctx = cli->ctx;
        struct keyset *ks = NULL;
        struct fuse_plan *plan = NULL;
        struct fuse_template t;
        struct fuse_plan_opts o;
        struct ledger *l = NULL;
        char tpath[4096], sha[65];
        bool have_t = false;
        int r;

        memset(&o, 0, sizeof(o));
        memset(&t, 0, sizeof(t));
        if (!a->keyset || !a->out) {
                r = fl_err(ctx, -EINVAL, "generating needs --keyset FILE and --out FILE");
                goto out;
        }
        if ((r = cli_out_check(cli, a->out)) < 0)
                goto out;
        /* A ledger that cannot be written fails before the plan is. */
        if ((r = cli_ledger_open(cli, &l)) < 0)
                goto out;
        if (a->template_) {
                if ((r = template_path(ctx, a->template_, tpath, sizeof(tpath))) < 0 ||
                    (r = fuse_template_load(ctx, tpath, &t)) < 0)
                        goto out;
                o = t.opts;
                have_t = true;
        }
        if ((r = opts_from_args(ctx, a, &o)) < 0)
                goto out;
        if ((r = keyset_load(ctx, a->keyset, &ks)) < 0)
                goto out;
        if (a->chip && chip_from_name(a->chip) != ks->chip) {
                r = fl_err(ctx, -EINVAL, "--chip %s, but keyset %s is for %s", a->chip, a->keyset, chip_name(ks->chip));
                goto out;
        }
        if (have_t && t.chip != ks->chip) {
                r = fl_err(ctx, -EINVAL, "template %s is for %s, keyset %s is for %s", tpath, chip_name(t.chip),
                           a->keyset, chip_name(ks->chip));
                goto out;
        }
        if (o.test && !chip_has_test_magic(ks->chip))
                cli_info("fuseline fuse-xml: note: t194 has no TEST MagicId; the XML is unchanged and the dry run is "
                         "chosen at burn time (burnfuses dummy)");
        if ((r = fuse_plan_build_token(ctx, ks, a->keyset, &cli->tok, &o, &plan)) < 0)
                goto out;
        if ((r = fuse_plan_sha256(ctx, plan, sha)) < 0 || (r = fuse_xml_write(ctx, plan, a->out)) < 0)
                goto out;
        if (cli->json) {
                json_object *j = cli_json_result("fuse-xml", true);
                char magic[16];
                snprintf(magic, sizeof(magic), "0x%08x", plan->magic);
                json_object_object_add(j, "mode", jstr("generate"));
                json_object_object_add(j, "out", jstr(a->out));
                json_object_object_add(j, "chip", jstr(chip_name(plan->chip)));
                json_object_object_add(j, "keyset", jstr(a->keyset));
                json_object_object_add(j, "profile", jstr(ks->profile));
                if (have_t) {
                        char pid[8];
                        snprintf(pid, sizeof(pid), "0x%04x", t.recovery_pid);
                        json_object_object_add(j, "template", jstr(t.name[0] ? t.name : tpath));
                        json_object_object_add(j, "module", jstr(t.module));
                        json_object_object_add(j, "recovery_pid", jstr(pid));
                }
                json_object_object_add(j, "magic", jstr(magic));
                json_object_object_add(j, "test", json_object_new_boolean(plan->magic == FUSE_MAGIC_TEST));
                json_object_object_add(j, "plan_sha256", jstr(sha));
                json_object_object_add(j, "accepted_unverified", accepted_json(o.accept_unverified));
                json_object_object_add(j, "fuses", fuses_json(plan, ks));
                cli_json_out(j);
        } else {
                printf("wrote %s (mode 0600) for %s from keyset %s (%s), plan sha256 %s\n", a->out,
                       chip_name(plan->chip), a->keyset, ks->profile, sha);
                print_fuses(plan, ks);
                if (plan->magic == FUSE_MAGIC_TEST)
                        printf("MagicId 0x%08x (TEST): the device processes every fuse and burns nothing\n",
                               plan->magic);
                if (!strcmp(ks->profile, "lab"))
                        printf("LAB KEYSET: test keys only, never burn this into a product\n");
                if (o.ftpm)
                        printf("UNVERIFIED [U]: BootSecurityInfo bits 11 and 13 (fTPM) set as acknowledged with "
                               "--accept-unverified=%s\n", FUSE_ACCEPT_T234_BSI_11_13_NAME);
        }
        {
                /* The plan on the record: its hash and fuses (key fuses by
                 * check value only, as in --json), never the XML. */
                json_object *d = json_object_new_object();
                char ksha[65], done[FL_ERRMSG_MAX];
                json_object_object_add(d, "mode", jstr("plan"));
                json_object_object_add(d, "out", jstr(a->out));
                json_object_object_add(d, "plan_sha256", jstr(sha));
                json_object_object_add(d, "chip", jstr(chip_name(plan->chip)));
                json_object_object_add(d, "keyset", jstr(a->keyset));
                json_object_object_add(d, "keyset_sha256",
                                       record_file_sha256(ctx, a->keyset, ksha) == 0 ? jstr(ksha) : NULL);
                fl_err_clear(ctx);
                json_object_object_add(d, "profile", jstr(ks->profile));
                if (have_t)
                        json_object_object_add(d, "template", jstr(t.name[0] ? t.name : tpath));
                json_object_object_add(d, "test", json_object_new_boolean(plan->magic == FUSE_MAGIC_TEST));
                json_object_object_add(d, "fuses", fuses_json(plan, ks));
                snprintf(done, sizeof(done), "%s was written (plan sha256 %s)", a->out, sha);
                r = cli_ledger_record(cli, l, "fuse-xml", &d, 1, done, NULL);
        }
out:
        fuse_plan_free(plan);
        keyset_free(ks);
        ledger_close(l);
        return r;
}

/* The plan a package was made from, by the same hash `--out` recorded
 * (NULL when the file does not pass the rules: the package check has
 * compared it byte for byte anyway). */
static json_object *plan_hash_json(fl_ctx *ctx, const char *path, enum fl_chip chip)
{
        struct fuse_plan *plan = NULL;
        struct fuse_problems probs = { 0 };
        struct fl_secret data = { 0 };
        char sha[65];
        json_object *v = NULL;

        if (fuse_xml_load(ctx, path, &data) == 0 &&
            fuse_xml_check(ctx, data.data, data.len, chip, NULL, &plan, &probs) == 0 && plan && !probs.n &&
            fuse_plan_sha256(ctx, plan, sha) == 0)
                v = jstr(sha);
        fl_err_clear(ctx);
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        secret_wipe(&data);
        return v;
}

static int do_check(struct cli *cli, const struct args *a)
{
        fl_ctx *ctx = cli->ctx;
        struct keyset *ks = NULL;
        struct fuse_plan *plan = NULL;
        struct fuse_problems probs = { 0 };
        struct fl_secret data = { 0 };
        char sha[65] = "";
        enum fl_chip chip;
        int r = 0;

        chip = need_chip(ctx, a->chip, "--check", &r);
        if (r < 0)
                goto out;
        if (a->keyset && (r = keyset_load(ctx, a->keyset, &ks)) < 0)
                goto out;
        if ((r = fuse_xml_load(ctx, a->check, &data)) < 0)
                goto out;
        if ((r = fuse_xml_check_ack(ctx, data.data, data.len, chip, ks, a->accept_unverified, &plan, &probs)) < 0)
                goto out;
        if (plan && !probs.n && (r = fuse_plan_sha256(ctx, plan, sha)) < 0)
                goto out;
        if (cli->json) {
                json_object *j = cli_json_result("fuse-xml", probs.n == 0);
                json_object_object_add(j, "mode", jstr("check"));
                json_object_object_add(j, "file", jstr(a->check));
                json_object_object_add(j, "accepted_unverified", accepted_json(a->accept_unverified));
                json_object_object_add(j, "chip", jstr(chip_name(chip)));
                if (plan) {
                        /* The file as read, even when it breaks a rule: its
                         * MagicId (normalised when it is 32-bit hex, else as
                         * written; null when absent) and its <fuse> count. */
                        const char *m = plan->file_magic;
                        const char *h = m + (m[0] == '0' && (m[1] == 'x' || m[1] == 'X') ? 2 : 0);
                        bool hex = *h && strlen(h) <= 8 && strspn(h, "0123456789abcdefABCDEF") == strlen(h);
                        unsigned long v = hex ? strtoul(h, NULL, 16) : 0;
                        char magic[16];

                        snprintf(magic, sizeof(magic), "0x%08lx", v);
                        json_object_object_add(j, "magic", !*m ? NULL : jstr(hex ? magic : m));
                        json_object_object_add(j, "test", json_object_new_boolean(hex && v == FUSE_MAGIC_TEST));
                        json_object_object_add(j, "fuses", json_object_new_int((int)plan->file_fuses));
                }
                if (sha[0])
                        json_object_object_add(j, "plan_sha256", jstr(sha));
                json_object_object_add(j, "problems", problems_json(&probs));
                cli_json_out(j);
        } else if (probs.n) {
                print_problems(a->check, &probs);
        } else {
                printf("%s: OK for %s: %zu fuses, MagicId 0x%08x%s, plan sha256 %s\n", a->check, chip_name(chip),
                       plan->n, plan->magic, plan->magic == FUSE_MAGIC_TEST ? " (TEST)" : "", sha);
        }
        if (probs.n)
                r = problems_error(ctx, a->check, &probs);
out:
        secret_wipe(&data);
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        keyset_free(ks);
        return r;
}

static int do_pkc_hash(struct cli *cli, const struct args *a)
{
        fl_ctx *ctx = cli->ctx;
        struct pkc_hash_file h = { 0 };
        enum fl_chip chip;
        int r = 0;

        chip = need_chip(ctx, a->chip, "--pkc-hash", &r);
        if (r < 0)
                goto out;
        r = tegra_pkc_hash_file(ctx, chip, a->pkc_hash, &h);
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *j = cli_json_result("fuse-xml", true);
                json_object_object_add(j, "mode", jstr("pkc-hash"));
                json_object_object_add(j, "key", jstr(a->pkc_hash));
                json_object_object_add(j, "chip", jstr(chip_name(chip)));
                json_object_object_add(j, "key_type", jstr(key_type_name(h.type)));
                json_object_object_add(j, "public_key_sha256", jstr(h.spki_sha256));
                json_object_object_add(j, "fuse", jstr("PublicKeyHash"));
                json_object_object_add(j, "size", json_object_new_int((int)chip_pkc_hash_size(chip)));
                json_object_object_add(j, "value", jstr(h.hex));
                cli_json_out(j);
        } else {
                printf("%s\n", h.hex);
        }
        r = 0;
out:
        pkc_hash_file_clear(&h);
        return r;
}

static int do_diff(struct cli *cli, const struct args *a)
{
        fl_ctx *ctx = cli->ctx;
        struct fuse_plan *plan = NULL;
        struct fuse_problems probs = { 0 };
        struct fuse_readback *rb = NULL;
        struct fuse_diff *d = NULL;
        struct fl_secret xml = { 0 }, rbtext = { 0 };
        enum fl_chip chip;
        int r = 0;

        chip = need_chip(ctx, a->chip, "--diff", &r);
        if (r < 0)
                goto out;
        if (!a->readback) {
                r = fl_err(ctx, -EINVAL, "--diff needs --readback FILE (tegraflash readfuses output)");
                goto out;
        }
        if ((r = fuse_xml_load(ctx, a->diff, &xml)) < 0 ||
            (r = fuse_xml_check_ack(ctx, xml.data, xml.len, chip, NULL, a->accept_unverified, &plan, &probs)) < 0)
                goto out;
        if (probs.n) {
                /* Diffing a plan that breaks a rule would make it look burnable. */
                if (!cli->json)
                        print_problems(a->diff, &probs);
                r = problems_error(ctx, a->diff, &probs);
                goto out;
        }
        if ((r = file_read_secret(ctx, a->readback, FUSE_READBACK_MAX_BYTES, &rbtext)) < 0 ||
            (r = fuse_readback_parse(ctx, a->readback, (const char *)rbtext.data, rbtext.len, chip, &rb)) < 0 ||
            (r = fuse_plan_diff(ctx, plan, rb, &d)) < 0)
                goto out;
        if (cli->json) {
                json_object *j = cli_json_result("fuse-xml", d->n_conflict == 0);

                json_object_object_add(j, "mode", jstr("diff"));
                json_object_object_add(j, "file", jstr(a->diff));
                json_object_object_add(j, "readback", jstr(a->readback));
                json_object_object_add(j, "chip", jstr(chip_name(chip)));
                json_object_object_add(j, "fuses", cli_diff_fuses_json(d));
                json_object_object_add(j, "to_burn", json_object_new_int((int)d->n_burn));
                json_object_object_add(j, "equal", json_object_new_int((int)d->n_equal));
                json_object_object_add(j, "conflicts", json_object_new_int((int)d->n_conflict));
                json_object_object_add(j, "production_locked", json_object_new_boolean(d->production_locked));
                json_object_object_add(j, "already_provisioned",
                                       json_object_new_boolean(d->n_burn == 0 && d->n_conflict == 0));
                cli_json_out(j);
        } else {
                cli_diff_print(d);
                if (d->n_conflict)
                        printf("%s: %zu conflict%s: this device cannot take this plan\n", a->readback, d->n_conflict,
                               d->n_conflict == 1 ? "" : "s");
                else if (!d->n_burn)
                        printf("%s: already provisioned: every planned fuse is burned, nothing to burn\n",
                               a->readback);
                else
                        printf("%s: %zu fuse%s to burn, %zu already equal\n", a->readback, d->n_burn,
                               d->n_burn == 1 ? "" : "s", d->n_equal);
        }
        if (d->n_conflict) {
                const struct fuse_diff_item *first = NULL;
                for (size_t i = 0; i < d->n && !first; i++)
                        if (d->v[i].state == FD_CONFLICT)
                                first = &d->v[i];
                r = fl_err_hint(ctx, first->hint, -EEXIST, "%s: %zu conflict%s; first: %s: %s", a->readback, d->n_conflict,
                           d->n_conflict == 1 ? "" : "s", first->def->name, first->note);
                goto out;
        }
        r = 0;
out:
        fuse_diff_free(d);
        fuse_readback_free(rb);
        secret_wipe(&rbtext);
        secret_wipe(&xml);
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        return r;
}

static int do_package(struct cli *cli, const struct args *a)
{
        fl_ctx *ctx = cli->ctx;
        struct fuse_template t;
        char tpath[4096], sha[65] = "", *log = NULL, **envp = NULL;
        const char *bsp = a->bsp ? a->bsp : getenv("FUSELINE_BSP");
        struct ledger *l = NULL;
        int r;

        if (!bsp || !*bsp)
                return fl_err(ctx, -EINVAL, "--package needs the BSP: --bsp DIR (Linux_for_Tegra) or $FUSELINE_BSP");
        if (!a->board || !a->plan)
                return fl_err(ctx, -EINVAL, "--package needs --board TEMPLATE and --plan FILE");
        if ((r = template_path(ctx, a->board, tpath, sizeof(tpath))) < 0 || (r = fuse_template_load(ctx, tpath, &t)) < 0)
                return r;
        /* A ledger that cannot be written fails before odmfuse runs. */
        if ((r = cli_ledger_open(cli, &l)) < 0)
                return r;
        if (asprintf(&log, "%s.odmfuse.log", a->package) < 0) {
                ledger_close(l);
                return -ENOMEM;
        }
        r = proc_env_scrub(environ, NULL, NULL, &envp);
        if (r < 0)
                goto out;
        cli_info("running %s/odmfuse.sh --noburn for %s (board %s)%s …", bsp, a->plan, t.odm.board,
                 a->test ? " in test mode" : "");
        {
                struct package_make_opts o = { .bsp_dir = bsp, .tmpl = &t, .plan_path = a->plan, .test = a->test,
                                               .accept_unverified = a->accept_unverified,
                                               .out = a->package, .log_path = log, .envp = (const char *const *)envp,
                                               .timeout_ms = (a->timeout_s ? a->timeout_s : 600) * 1000 };
                r = burn_package_make(ctx, &o, sha);
        }
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *j = cli_json_result("fuse-xml", true);
                json_object_object_add(j, "mode", jstr("package"));
                json_object_object_add(j, "package", jstr(a->package));
                json_object_object_add(j, "package_sha256", jstr(sha));
                json_object_object_add(j, "test", json_object_new_boolean(a->test));
                json_object_object_add(j, "chip", jstr(chip_name(t.chip)));
                json_object_object_add(j, "board", jstr(t.odm.board));
                json_object_object_add(j, "log", jstr(log));
                cli_json_out(j);
        } else {
                printf("%s: %s package for %s, checked: it burns exactly %s (sha256 %s)\n", a->package,
                       a->test ? "TEST (dry-run)" : "FUSE", t.odm.board, a->plan, sha);
        }
        {
                json_object *d = json_object_new_object();
                char done[FL_ERRMSG_MAX];
                json_object_object_add(d, "mode", jstr("package"));
                json_object_object_add(d, "package", jstr(a->package));
                json_object_object_add(d, "package_sha256", jstr(sha));
                json_object_object_add(d, "plan", jstr(a->plan));
                json_object_object_add(d, "plan_sha256", plan_hash_json(ctx, a->plan, t.chip));
                json_object_object_add(d, "chip", jstr(chip_name(t.chip)));
                json_object_object_add(d, "board", jstr(t.odm.board));
                json_object_object_add(d, "test", json_object_new_boolean(a->test));
                json_object_object_add(d, "log", jstr(log));
                snprintf(done, sizeof(done), "%s was written (sha256 %s)", a->package, sha);
                r = cli_ledger_record(cli, l, "fuse-xml", &d, 1, done, NULL);
        }
out:
        proc_env_free(envp);
        free(log);
        ledger_close(l);
        return r;
}

int cmd_fuse_xml(struct cli *cli, int argc, char **argv)
{
        struct args a;
        int modes;

        memset(&a, 0, sizeof(a));
        cli_parse(&argp, argc, argv, &a);
        modes = !!a.out + !!a.check + !!a.pkc_hash + !!a.diff + !!a.package;
        if (modes != 1)
                return fl_err(cli->ctx, -EINVAL, "choose one of --out (generate), --check, --pkc-hash, --diff, --package "
                              "(see fuseline fuse-xml --help)");
        if (!a.package && (a.bsp || a.board || a.plan || a.timeout_s))
                return fl_err(cli->ctx, -EINVAL, "--bsp, --board, --plan and --timeout go with --package");
        if (a.package)
                return do_package(cli, &a);
        if (a.readback && !a.diff)
                return fl_err(cli->ctx, -EINVAL, "--readback goes with --diff");
        if (!a.out && !a.package && a.test)
                return fl_err(cli->ctx, -EINVAL, "--test goes with --out or --package");
        if (!a.out && (a.template_ || a.no_sbk || a.oem_keys || a.revocation || a.jtag || a.odm_id || a.n_odm_res ||
                       a.odm_lock || a.prod || a.bsi_reserved))
                return fl_err(cli->ctx, -EINVAL, "plan options (--template, --oem-keys, …) go with --out");
        if (a.keyset && (a.pkc_hash || a.diff))
                return fl_err(cli->ctx, -EINVAL, "--keyset goes with --out or --check");
        if (a.out)
                return do_generate(cli, &a);
        if (a.check)
                return do_check(cli, &a);
        if (a.pkc_hash)
                return do_pkc_hash(cli, &a);
        return do_diff(cli, &a);
}
