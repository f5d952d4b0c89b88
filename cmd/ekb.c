/* ekb.c — `fuseline ekb` (an EKB image from a keyset, key chain in the
 * token) and `fuseline verify ekb` (decrypt, check, and name what is wrong).
 * The format and the chain live in lib/ekb.c. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/ekb.h"
#include "../lib/ftpm.h"
#include "../lib/keyset.h"
#include "../lib/ledger.h"
#include "cli.h"

enum {
        OPT_KEYSET = 0x2600,
        OPT_FORMAT,
        OPT_ROOT,
        OPT_FV,
        OPT_IV,
        OPT_RECORD,
        OPT_RECORD_HEX,
        OPT_OUT,
        OPT_ECID,
        OPT_SN,
};

#define MAX_EXTRA 16

struct ekb_args {
        const char *keyset, *format, *root, *fv, *iv, *out, *db, *ecid, *image, *sn;
        const char *rec_spec[MAX_EXTRA];
        bool rec_hex[MAX_EXTRA];
        size_t n_rec;
};

static const struct argp_option ekb_options[] = {
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset with the root key and the EKB keys (ekb-payload, ekb-disk, "
                                           "ekb-auth)", 0 },
        { "format", OPT_FORMAT, "VER", 0, "EKB container: 1.0 (gen_ekb 1.2-1.5, L4T R35.2-R36.3), 2.0 (gen_ekb 1.6, "
                                          "R36.4+), legacy (R32, R35.1)", 0 },
        { "root", OPT_ROOT, "ROLE", 0, "Root key: oem-k1 or oem-k2 (t234), kek2 (t194); default: the keyset's only "
                                       "one", 0 },
        { "fv", OPT_FV, "HEX|FILE", 0, "FV: for 1.0/legacy the value compiled into OP-TEE (required); for 2.0 "
                                       "random unless given (reproducible output)", 0 },
        { "iv", OPT_IV, "HEX|FILE", 0, "AES-CBC IV (random from the token unless given: reproducible output)", 0 },
        { "record", OPT_RECORD, "TAG:FILE", 0, "Extra record with the file's bytes (e.g. 93:ek_cert_rsa.der); "
                                               "repeatable, written in order after tags 1, 2, 4", 0 },
        { "record-hex", OPT_RECORD_HEX, "TAG:FILE", 0, "Extra record from a hex text file, decoded as gen_ekb "
                                                       "does (e.g. 3:device_id.hex, 92:eps_seed.hex)", 0 },
        { "out", OPT_OUT, "FILE", 0, "The EKB image to write (0600, atomically)", 0 },
        { "ecid", OPT_ECID, "HEX", 0, "The device a per-device EKB is for (ledger)", 1 },
        { 0 }
};

static void add_rec(struct argp_state *state, struct ekb_args *a, char *arg, bool hex)
{
        if (a->n_rec == MAX_EXTRA)
                argp_error(state, "at most %d extra records", MAX_EXTRA);
        if (!strchr(arg, ':'))
                argp_error(state, "record '%s': use TAG:FILE", arg);
        a->rec_spec[a->n_rec] = arg;
        a->rec_hex[a->n_rec++] = hex;
}

static error_t ekb_parse_opt(int key, char *arg, struct argp_state *state)
{
        struct ekb_args *a = state->input;

        switch (key) {
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_FORMAT:
                a->format = arg;
                if (ekb_format_from_name(arg) == EKB_FMT_NONE)
                        argp_error(state, "--format '%s': use 1.0, 2.0 or legacy", arg);
                break;
        case OPT_ROOT:
                a->root = arg;
                break;
        case OPT_FV:
                a->fv = arg;
                break;
        case OPT_IV:
                a->iv = arg;
                break;
        case OPT_RECORD:
                add_rec(state, a, arg, false);
                break;
        case OPT_RECORD_HEX:
                add_rec(state, a, arg, true);
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_ECID:
                a->ecid = arg;
                break;
        case OPT_SN:
                a->sn = arg;
                break;
        case ARGP_KEY_ARG:
                if (a->image || !strcmp(cli_get()->cmd, "ekb"))
                        argp_error(state, "unexpected argument '%s'", arg);
                a->image = arg;
                break;
        case ARGP_KEY_END:
                if (!a->keyset)
                        argp_error(state, "--keyset is required");
                if (!strcmp(cli_get()->cmd, "ekb")) {
                        if (!a->format)
                                argp_error(state, "--format is required (1.0, 2.0 or legacy)");
                        if (!a->out)
                                argp_error(state, "--out is required");
                } else if (!a->image) {
                        argp_error(state, "which image? fuseline verify ekb IMAGE --keyset KEYSET.json");
                }
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

/* gen_ekb reads key-like files as text, strips white space at both ends and
 * hex-decodes them (1.6 also takes a 0x prefix). A 16-byte value may also be
 * given inline as 32 hex digits. */
static int hex_text(fl_ctx *ctx, const char *what, const char *spec, bool inline_ok, unsigned char **ret,
                    size_t *ret_len)
{
        unsigned char *raw = NULL, *out = NULL;
        const char *s;
        size_t len = 0, n;
        char *buf = NULL;
        int r;

        if (inline_ok) {
                const char *p = spec + (!strncmp(spec, "0x", 2) || !strncmp(spec, "0X", 2) ? 2 : 0);
                size_t i;
                for (i = 0; p[i] && isxdigit((unsigned char)p[i]); i++)
                        ;
                if (i == 32 && !p[i]) {
                        out = malloc(16);
                        if (!out)
                                return -ENOMEM;
                        r = hex_decode(p, out, 16, NULL);
                        if (r < 0) {
                                free(out);
                                return fl_err(ctx, -EINVAL, "%s '%s': not hex", what, spec);
                        }
                        *ret = out;
                        *ret_len = 16;
                        return 0;
                }
        }
        r = file_read(ctx, spec, EKB_IMAGE_MAX * 2 + 16, &raw, &len);
        if (r < 0)
                return r;
        s = (const char *)raw;
        while (len && isspace((unsigned char)s[len - 1]))
                len--;
        while (len && isspace((unsigned char)*s)) {
                s++;
                len--;
        }
        if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                s += 2;
                len -= 2;
        }
        buf = strndup(s, len);
        out = malloc(len / 2 + 1);
        if (!buf || !out) {
                r = -ENOMEM;
                goto out;
        }
        r = hex_decode(buf, out, len / 2 + 1, &n);
        if (r < 0 || n == 0) {
                r = fl_err(ctx, -EINVAL, "%s %s: not a hex file (gen_ekb reads hex text)", what, spec);
                goto out;
        }
        *ret = out;
        *ret_len = n;
        out = NULL;
        r = 0;
out:
        free(out);
        free(buf);
        free(raw);
        return r;
}

static int value16(fl_ctx *ctx, const char *what, const char *spec, unsigned char out[16])
{
        unsigned char *v = NULL;
        size_t n = 0;
        int r = hex_text(ctx, what, spec, true, &v, &n);

        if (r < 0)
                return r;
        if (n != 16)
                r = fl_err(ctx, -EINVAL, "%s %s: %zu bytes, must be 16", what, spec, n);
        else
                memcpy(out, v, 16);
        free(v);
        return r;
}

static int record_load(fl_ctx *ctx, const char *spec, bool hex, struct ekb_record *rec, unsigned char **ret_buf)
{
        const char *end = strchr(spec, ':');
        char num[24] = "";
        uint64_t tag = 0;
        unsigned char *v = NULL;
        size_t n = 0;
        int r;

        if (end && (size_t)(end - spec) < sizeof(num))
                memcpy(num, spec, (size_t)(end - spec));
        if (!end || cli_number(num, 0xffffffffu, &tag) < 0 || tag == 0)
                return fl_err(ctx, -EINVAL, "record '%s': the tag must be a number (decimal or 0x hex) before ':'",
                              spec);
        if (hex)
                r = hex_text(ctx, "record", end + 1, false, &v, &n);
        else
                r = file_read(ctx, end + 1, EKB_IMAGE_MAX, &v, &n);
        if (r < 0)
                return r;
        rec->tag = (uint32_t)tag;
        rec->value = v;
        rec->len = n;
        *ret_buf = v;
        return 0;
}

static int ledger_record(struct cli *cli, const struct ekb_args *a, const struct keyset *ks,
                         const struct ekb_build_req *req, const struct ekb_result *res)
{
        struct ledger *l = NULL;
        json_object *d = json_object_new_object(), *tags = json_object_new_array();
        struct ledger_event ev = { .station = cli->led.station, .operator = cli->led.operator, .command = "ekb",
                                   .ecid = a->ecid, .kind = LEDGER_RECORD, .outcome = "ok" };
        int r;

        for (size_t i = 0; i < res->n_tags; i++)
                json_object_array_add(tags, json_object_new_int((int)res->tags[i]));
        json_object_object_add(d, "ekb_sha256", json_object_new_string(res->sha256));
        json_object_object_add(d, "format", json_object_new_string(a->format));
        json_object_object_add(d, "chip", json_object_new_string(chip_name(ks->chip)));
        json_object_object_add(d, "root_role", json_object_new_string(res->root_role));
        json_object_object_add(d, "keyset", json_object_new_string(a->keyset));
        json_object_object_add(d, "records", tags);
        json_object_object_add(d, "out", json_object_new_string(a->out));
        /* A per-device EKB names its device by the fTPM SN (tag 91, public). */
        for (size_t i = 0; i < req->n_extra; i++)
                if (req->extra[i].tag == 91 && req->extra[i].len == 10) {
                        char sn[21];
                        hex_encode(req->extra[i].value, 10, sn);
                        json_object_object_add(d, "ftpm_sn", json_object_new_string(sn));
                }
        ev.details = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
        r = ledger_open(cli->ctx, ledger_path(a->db), LEDGER_WRITE, &l);
        if (r == 0)
                r = ledger_append(l, &ev, NULL);
        ledger_close(l);
        json_object_put(d);
        return r;
}

static const char ekb_doc[] =
        "Build an EKB image (eks_t234.img / eks_t194.img) byte-identical to NVIDIA's gen_ekb.py, with the key "
        "chain computed in the token.\v"
        "Records: tag 1 = ekb-payload, tag 2 = ekb-disk, tag 4 = ekb-auth (when the keyset has it), then --record/"
        "--record-hex in the order given. EKB_RK = AES-ECB(root, FV), EKB_EK/EKB_AK by the SP 800-108 CMAC KDF, "
        "AES-CBC and AES-CMAC all run in the token. --iv/--fv take 32 hex digits or a file (tests, reproduction).\n\n"
        "Examples:\n"
        "  fuseline ekb --keyset keyset.json --format 2.0 --root oem-k1 --out eks_t234.img\n"
        "  fuseline ekb --keyset keyset.json --format 1.0 --fv bad66eb4484983684b992fe54a648bb8 --out eks_t234.img\n"
        "  fuseline ekb --keyset xavier.json --format 1.0 --fv fv_ekb_t194 --out eks_t194.img\n"
        "  fuseline verify ekb eks_t234.img --keyset keyset.json --fv bad66eb4484983684b992fe54a648bb8";

static const struct argp ekb_argp = { ekb_options, ekb_parse_opt, NULL, ekb_doc, cli_ledger_token_force_children, NULL,
                                      NULL };

int cmd_ekb(struct cli *cli, int argc, char **argv)
{
        struct ekb_args a = { 0 };
        struct keyset *ks = NULL;
        struct ekb_record recs[MAX_EXTRA];
        unsigned char *bufs[MAX_EXTRA] = { 0 }, fv[16], iv[16];
        struct ekb_build_req req = { 0 };
        struct ekb_result res = { 0 };
        int r;

        cli_parse(&ekb_argp, argc, argv, &a);
        a.db = cli->led.db; /* recorded only when --db is given */
        if ((r = cli_out_check(cli, a.out)) < 0)
                goto out;
        req.fmt = ekb_format_from_name(a.format);
        req.root_role = a.root;
        if (a.fv) {
                r = value16(cli->ctx, "--fv", a.fv, fv);
                if (r < 0)
                        goto out;
                req.fv = fv;
        }
        if (a.iv) {
                r = value16(cli->ctx, "--iv", a.iv, iv);
                if (r < 0)
                        goto out;
                req.iv = iv;
        }
        for (size_t i = 0; i < a.n_rec; i++) {
                r = record_load(cli->ctx, a.rec_spec[i], a.rec_hex[i], &recs[i], &bufs[i]);
                if (r < 0)
                        goto out;
        }
        req.extra = recs;
        req.n_extra = a.n_rec;
        if (a.ecid) {
                char e[LEDGER_ECID_LEN + 1];
                r = ledger_ecid_parse(cli->ctx, a.ecid, e);
                if (r < 0)
                        goto out;
        }
        r = keyset_load(cli->ctx, a.keyset, &ks);
        if (r < 0)
                goto out;
        r = ekb_build(cli->ctx, &cli->tok, ks, &req, &res);
        if (r < 0)
                goto out;
        r = file_write_atomic(cli->ctx, a.out, res.data, res.len, 0600);
        if (r < 0)
                goto out;
        if (a.db) {
                r = ledger_record(cli, &a, ks, &req, &res);
                if (r < 0)
                        goto out;
        }
        if (cli->json) {
                json_object *o = cli_json_result("ekb", true), *tags = json_object_new_array();
                char ivh[33];
                for (size_t i = 0; i < res.n_tags; i++)
                        json_object_array_add(tags, json_object_new_int((int)res.tags[i]));
                hex_encode(res.iv, 16, ivh);
                json_object_object_add(o, "out", json_object_new_string(a.out));
                json_object_object_add(o, "format", json_object_new_string(ekb_format_name(req.fmt)));
                json_object_object_add(o, "chip", json_object_new_string(chip_name(ks->chip)));
                json_object_object_add(o, "root_role", json_object_new_string(res.root_role));
                json_object_object_add(o, "size", json_object_new_int64((int64_t)res.len));
                json_object_object_add(o, "sha256", json_object_new_string(res.sha256));
                json_object_object_add(o, "records", tags);
                json_object_object_add(o, "iv", json_object_new_string(ivh));
                cli_json_out(o);
        } else {
                printf("wrote %s: EKB %s for %s, root %s, %zu bytes, sha256 %s, records", a.out,
                       ekb_format_name(req.fmt), chip_name(ks->chip), res.root_role, res.len, res.sha256);
                for (size_t i = 0; i < res.n_tags; i++)
                        printf(" %u", res.tags[i]);
                putchar('\n');
        }
        r = 0;
out:
        for (size_t i = 0; i < a.n_rec; i++)
                free(bufs[i]);
        ekb_result_clear(&res);
        keyset_free(ks);
        return r;
}

/* ---- verify ekb ---------------------------------------------------------------- */

static const char verify_doc[] =
        "Decrypt an EKB image with a keyset's root key and check it: the container, the CMAC, the records (tags "
        "1/2/4 against the keyset's check values, the fTPM records 91-94) and which gen_ekb / L4T release writes "
        "it.\v"
        "fTPM records: tag 91 must be a 10-byte Device_SN (the --sn one when given); tags 93/94 X.509 certificates "
        "for the RSA-2048 / P-256 EK with the EK profile's subject and serial, issued by the keyset's EK CA; when "
        "the keyset holds the device's KDK0 (ftpm-device), their keys must be the EKs KDK0 and the EPS seed (tag "
        "92) give. A record that is no certificate at all exits 2.\n\n"
        "A damaged image is explained: a changed byte in the header, the FV (2.0), the CMAC, the IV or the "
        "ciphertext is named with its offset. Exit 5 when anything is wrong. 1.0 and legacy images need --fv.\n\n"
        "Examples:\n"
        "  fuseline verify ekb eks_t234.img --keyset keyset.json --fv bad66eb4484983684b992fe54a648bb8\n"
        "  fuseline verify ekb eks_t234.img --keyset keyset.json --json";

static const struct argp_option verify_options[] = {
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset with the root key (and the EKB keys to check tags 1/2/4)", 0 },
        { "root", OPT_ROOT, "ROLE", 0, "Root key to try (default: the keyset's, oem-k1 before oem-k2 as OP-TEE "
                                       "does)", 0 },
        { "fv", OPT_FV, "HEX|FILE", 0, "The FV of a 1.0/legacy image (32 hex digits or a file)", 0 },
        { "sn", OPT_SN, "SN", 0, "The device a per-device EKB must be for: tag 91 equals this fTPM SN (20 hex "
                                 "digits OEM_ID SN, or XXXX-YYYYYYYYYYYYYYYY)", 0 },
        { 0 }
};

static const struct argp verify_argp = { verify_options, ekb_parse_opt, "IMAGE", verify_doc, cli_token_children, NULL,
                                         NULL };

int cmd_verify_ekb(struct cli *cli, int argc, char **argv)
{
        struct ekb_args a = { 0 };
        struct keyset *ks = NULL;
        struct ekb_report rep = { 0 };
        struct ekb_verify_req req = { 0 };
        unsigned char *data = NULL, fv[16], sn[FTPM_SN_LEN];
        size_t len = 0;
        int r;

        cli_parse(&verify_argp, argc, argv, &a);
        if (a.sn) {
                r = ftpm_sn_parse(cli->ctx, a.sn, sn);
                if (r < 0)
                        return r;
                req.ftpm_sn = sn;
        }
        if (a.fv) {
                r = value16(cli->ctx, "--fv", a.fv, fv);
                if (r < 0)
                        return r;
                req.fv = fv;
        }
        r = keyset_load(cli->ctx, a.keyset, &ks);
        if (r < 0)
                return r;
        r = file_read(cli->ctx, a.image, EKB_IMAGE_MAX, &data, &len);
        if (r < 0)
                goto out;
        req.name = a.image;
        req.data = data;
        req.len = len;
        req.root_role = a.root;
        req.keyset_path = a.keyset;
        r = ekb_verify(cli->ctx, &cli->tok, ks, &req, &rep);
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *o = cli_json_result("verify ekb", rep.n_problems == 0), *recs = json_object_new_array();
                json_object_object_add(o, "image", json_object_new_string(a.image));
                json_object_object_add(o, "sha256", json_object_new_string(rep.sha256));
                if (rep.fmt)
                        json_object_object_add(o, "format", json_object_new_string(ekb_format_name(rep.fmt)));
                if (rep.root_role[0])
                        json_object_object_add(o, "root_role", json_object_new_string(rep.root_role));
                if (rep.release[0])
                        json_object_object_add(o, "release", json_object_new_string(rep.release));
                for (size_t i = 0; i < rep.n_recs; i++) {
                        json_object *x = json_object_new_object();
                        json_object_object_add(x, "tag", json_object_new_int((int)rep.recs[i].tag));
                        json_object_object_add(x, "length", json_object_new_int64((int64_t)rep.recs[i].len));
                        json_object_object_add(x, "ok", json_object_new_boolean(rep.recs[i].ok));
                        json_object_object_add(x, "note", json_object_new_string(rep.recs[i].note));
                        json_object_array_add(recs, x);
                }
                json_object_object_add(o, "records", recs);
                json_object_object_add(o, "problems", cli_json_strings(rep.problems, rep.n_problems));
                cli_json_out(o);
        } else {
                if (rep.fmt)
                        printf("format   %s\n", rep.release[0] ? rep.release : ekb_format_name(rep.fmt));
                if (rep.root_role[0])
                        printf("root     %s: CMAC OK\n", rep.root_role);
                for (size_t i = 0; i < rep.n_recs; i++)
                        printf("tag %-4u %5zu bytes %s %s\n", rep.recs[i].tag, rep.recs[i].len,
                               rep.recs[i].ok ? "OK      " : "MISMATCH", rep.recs[i].note);
                for (size_t i = 0; i < rep.n_problems; i++)
                        printf("PROBLEM  %s\n", rep.problems[i]);
        }
        {
                char what[300];
                snprintf(what, sizeof(what), "%s", a.image);
                r = cli_verdict(cli, what, rep.problems, rep.n_problems);
                /* A record that is not the thing at all is invalid input (2), not a failed rule (5). */
                if (rep.malformed)
                        r = fl_err(cli->ctx, -EINVAL, "%s: %s", what, rep.problems[rep.malformed - 1]);
        }
out:
        ekb_report_clear(&rep);
        free(data);
        keyset_free(ks);
        return r;
}
