/* ftpm.c — `fuseline ftpm-ek-cert`: an fTPM EK certificate issued by the
 * keyset's EK CA (key in the token) for an EK CSR, recorded in the ledger by
 * fingerprint. The checks and the profile live in lib/ftpm.c. */
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include "../lib/ftpm.h"
#include "../lib/keygen.h"
#include "../lib/ledger.h"
#include "cli.h"

enum {
        OPT_KEYSET = 0x2800,
        OPT_CA_ROLE,
        OPT_SN,
        OPT_CSR,
        OPT_OUT,
        OPT_ECID,
        OPT_EPS_SEED,
        OPT_OUT_RSA,
        OPT_OUT_EC,
        OPT_CSR_OUT_RSA,
        OPT_CSR_OUT_EC,
        OPT_EKB_OUT,
        OPT_FORMAT,
        OPT_ROOT,
        OPT_FV,
        OPT_IV,
        OPT_NEW_EPS,
};

struct ek_args {
        const char *keyset, *ca_role, *sn, *csr, *out, *db, *ecid;
        const char *eps_seed, *out_rsa, *out_ec, *csr_out_rsa, *csr_out_ec;
        const char *ekb_out, *format, *root, *fv, *iv;
        bool new_eps;
};

static const struct argp_option ek_options[] = {
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset holding the EK CA (keygen --ftpm-ek-ca)", 0 },
        { "ca-role", OPT_CA_ROLE, "ROLE", 0, "The CA role (default: ftpm-ek-ca)", 0 },
        { "sn", OPT_SN, "SN", 0, "The device's fTPM serial number: 20 hex digits OEM_ID ‖ SN (123400c0ffee12345678) "
                                 "or XXXX-YYYYYYYYYYYYYYYY", 0 },
        { "csr", OPT_CSR, "FILE", 0, "The EK CSR (DER or PEM) from NVIDIA's ftpm_manufacturer_gen_ek_csr tool", 0 },
        { "out", OPT_OUT, "FILE", 0, "The EK certificate (DER, what gen_ekb takes for tags 93/94)", 0 },
        { "eps-seed", OPT_EPS_SEED, "FILE", 0, "Derive both EKs here instead of taking a CSR: the device's EPS "
                                                "seed (64 hex digits, what gen_ekb takes for tag 92); KDK0 comes "
                                                "from the token (ftpm-device)", 1 },
        { "out-rsa", OPT_OUT_RSA, "FILE", 0, "With --eps-seed/--new-eps-seed: the RSA EK certificate (DER, tag 93)", 1 },
        { "out-ec", OPT_OUT_EC, "FILE", 0, "With --eps-seed/--new-eps-seed: the EC EK certificate (DER, tag 94)", 1 },
        { "csr-out-rsa", OPT_CSR_OUT_RSA, "FILE", 0, "With --eps-seed/--new-eps-seed: also write the RSA EK CSR (DER)", 1 },
        { "csr-out-ec", OPT_CSR_OUT_EC, "FILE", 0, "With --eps-seed/--new-eps-seed: also write the EC EK CSR (DER)", 1 },
        { "new-eps-seed", OPT_NEW_EPS, NULL, 0, "Like --eps-seed, but a fresh EPS seed from the token's RNG that "
                                                "exists only inside the EKB (needs --ekb-out)", 1 },
        { "ekb-out", OPT_EKB_OUT, "FILE", 0, "With --eps-seed/--new-eps-seed: also write the device's EKB (0600): "
                                             "the keyset's tags 1, 2, 4, then 91 SN, 92 EPS seed, 93/94 the EK "
                                             "certificates", 1 },
        { "format", OPT_FORMAT, "VER", 0, "With --ekb-out: 1.0 or 2.0 (as fuseline ekb)", 1 },
        { "root", OPT_ROOT, "ROLE", 0, "With --ekb-out: oem-k1 or oem-k2 (default: the keyset's only one)", 1 },
        { "fv", OPT_FV, "HEX|FILE", 0, "With --ekb-out: the FV (required for 1.0)", 1 },
        { "iv", OPT_IV, "HEX|FILE", 0, "With --ekb-out: the AES-CBC IV (default: random; reproduction only)", 1 },
        { "ecid", OPT_ECID, "HEX", 0, "The device's ECID for the ledger event", 2 },
        { 0 }
};

static error_t ek_parse(int key, char *arg, struct argp_state *state)
{
        struct ek_args *a = state->input;

        switch (key) {
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_CA_ROLE:
                a->ca_role = arg;
                break;
        case OPT_SN:
                a->sn = arg;
                break;
        case OPT_CSR:
                a->csr = arg;
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_ECID:
                a->ecid = arg;
                break;
        case OPT_EPS_SEED:
                a->eps_seed = arg;
                break;
        case OPT_OUT_RSA:
                a->out_rsa = arg;
                break;
        case OPT_OUT_EC:
                a->out_ec = arg;
                break;
        case OPT_CSR_OUT_RSA:
                a->csr_out_rsa = arg;
                break;
        case OPT_CSR_OUT_EC:
                a->csr_out_ec = arg;
                break;
        case OPT_NEW_EPS:
                a->new_eps = true;
                break;
        case OPT_EKB_OUT:
                a->ekb_out = arg;
                break;
        case OPT_FORMAT:
                if (ekb_format_from_name(arg) != EKB_FMT_1_0 && ekb_format_from_name(arg) != EKB_FMT_2_0)
                        argp_error(state, "--format '%s': 1.0 or 2.0 (records 91-94 need gen_ekb 1.5+)", arg);
                a->format = arg;
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
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->keyset || !a->sn)
                        argp_error(state, "--keyset and --sn are required");
                if (a->eps_seed && a->new_eps)
                        argp_error(state, "--eps-seed and --new-eps-seed exclude each other");
                if (a->new_eps && !a->ekb_out)
                        argp_error(state, "--new-eps-seed needs --ekb-out: the seed exists nowhere else");
                if ((a->format || a->root || a->fv || a->iv) && !a->ekb_out)
                        argp_error(state, "--format, --root, --fv and --iv go with --ekb-out");
                if (a->ekb_out && !a->format)
                        argp_error(state, "--ekb-out needs --format (1.0 or 2.0)");
                if (a->eps_seed || a->new_eps) {
                        if (a->csr || a->out)
                                argp_error(state, "--eps-seed derives the EKs: it takes --out-rsa and --out-ec, "
                                                  "not --csr/--out");
                        if (!a->out_rsa || !a->out_ec)
                                argp_error(state, "--eps-seed needs --out-rsa and --out-ec");
                } else {
                        if (a->out_rsa || a->out_ec || a->csr_out_rsa || a->csr_out_ec || a->ekb_out)
                                argp_error(state, "--out-rsa, --out-ec, --csr-out-rsa, --csr-out-ec and --ekb-out "
                                                  "go with --eps-seed or --new-eps-seed");
                        if (!a->csr || !a->out)
                                argp_error(state, "--csr and --out are required (or --eps-seed)");
                }
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char ek_doc[] =
        "Issue an fTPM EK certificate for a device's EK CSR with the keyset's EK CA, whose key stays in the token; "
        "or, with --eps-seed/--new-eps-seed, derive both EKs of the device, issue both certificates and, with "
        "--ekb-out, build its EKB.\v"
        "The CSR's signature must verify (NVIDIA's residency rule), its CN must be <SN>_ftpm-ek-cert for --sn, its "
        "key RSA-2048 or P-256. The certificate copies the CSR's extensions, adds the authority key identifier, "
        "and uses SHA-1(subject) as serial as NVIDIA's CA does. Output DER, atomically.\n\n"
        "Examples:\n"
        "  fuseline keygen --ftpm-ek-ca --keyset keyset.json --subject '/O=Acme/CN=Acme fTPM EK CA'\n"
        "  fuseline ftpm-ek-cert --keyset keyset.json --sn 123400c0ffee12345678 --csr ek_csr_rsa.der \\\n"
        "      --out ek_cert_rsa.der --db fuseline.db\n"
        "  fuseline ftpm-ek-cert --keyset keyset.json --sn 123400c0ffee12345678 --eps-seed eps_seed.hex \\\n"
        "      --out-rsa ek_cert_rsa.der --out-ec ek_cert_ec.der --db fuseline.db\n"
        "  fuseline ftpm-ek-cert --keyset keyset.json --sn 123400c0ffee12345678 --new-eps-seed \\\n"
        "      --out-rsa ek_cert_rsa.der --out-ec ek_cert_ec.der --ekb-out eks_123400c0ffee12345678.img \\\n"
        "      --format 1.0 --fv bad66eb4484983684b992fe54a648bb8 --db fuseline.db\n\n"
        "With --eps-seed, KDK0 (from the token, role ftpm-kdk0-<SN>), the EPS and both EK private keys exist only "
        "in wiped memory: the EKs are derived as the fTPM's TPM2_CreatePrimary makes them, their CSRs signed by "
        "them, and the certificates pass the same checks as with --csr.";

static const struct argp ek_argp = { ek_options, ek_parse, NULL, ek_doc, cli_ledger_token_force_children, NULL, NULL };

static int ek_ledger(struct cli *cli, const char *db, const char *ecid, const char *snhex, const char *k1,
                     const char *v1, const char *k2, const char *v2, const char *ekb_sha256)
{
        struct ledger *l = NULL;
        json_object *d = json_object_new_object();
        int r;

        if (!d)
                return -ENOMEM;
        json_object_object_add(d, "ftpm_sn", json_object_new_string(snhex));
        json_object_object_add(d, k1, json_object_new_string(v1));
        if (k2)
                json_object_object_add(d, k2, json_object_new_string(v2));
        if (ekb_sha256)
                json_object_object_add(d, "ekb_sha256", json_object_new_string(ekb_sha256));
        struct ledger_event ev = { .station = cli->led.station, .operator = cli->led.operator,
                                   .command = "ftpm-ek-cert", .ecid = ecid, .kind = LEDGER_RECORD, .outcome = "ok",
                                   .details = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN) };
        r = ledger_open(cli->ctx, ledger_path(db), LEDGER_WRITE, &l);
        if (r == 0)
                r = ledger_append(l, &ev, NULL);
        ledger_close(l);
        json_object_put(d);
        return r;
}

/* 16 bytes from 32 hex digits or a file holding them (--fv, --iv). */
static int value16(fl_ctx *ctx, const char *what, const char *spec, unsigned char out[16])
{
        struct fl_secret raw = { 0 }, v = { 0 };
        size_t n = strlen(spec);
        bool inline_hex = n == 32 || (n == 34 && (spec[1] == 'x' || spec[1] == 'X'));
        int r;

        for (size_t i = (n == 34 ? 2 : 0); inline_hex && i < n; i++)
                inline_hex = isxdigit((unsigned char)spec[i]);
        if (inline_hex)
                r = fusekey_parse(ctx, what, (const unsigned char *)spec, n, 16, &v);
        else if ((r = file_read_secret(ctx, spec, 4096, &raw)) == 0)
                r = fusekey_parse(ctx, spec, raw.data, raw.len, 16, &v);
        if (r == 0)
                memcpy(out, v.data, 16);
        secret_wipe(&raw);
        secret_wipe(&v);
        return r;
}

/* --eps-seed / --new-eps-seed: both EKs derived here; every output or none. */
static int ek_derive(struct cli *cli, const struct ek_args *a, const unsigned char sn[FTPM_SN_LEN],
                     const char *snhex)
{
        struct fl_secret raw = { 0 }, seed = { 0 };
        struct ftpm_ek_pair res = { 0 };
        struct ekb_build_req breq = { 0 };
        unsigned char fv[16], iv[16];
        const char *paths[5] = { a->out_rsa, a->out_ec, a->csr_out_rsa, a->csr_out_ec, a->ekb_out };
        bool done[5] = { false };
        int r = 0;

        if (a->ekb_out) {
                breq.fmt = ekb_format_from_name(a->format);
                breq.root_role = a->root;
                if (a->fv && (r = value16(cli->ctx, "--fv", a->fv, fv)) == 0)
                        breq.fv = fv;
                if (r == 0 && a->iv && (r = value16(cli->ctx, "--iv", a->iv, iv)) == 0)
                        breq.iv = iv;
                if (r < 0)
                        return r;
        }
        if (a->eps_seed) {
                r = file_read_secret(cli->ctx, a->eps_seed, 4096, &raw);
                if (r == 0)
                        r = fusekey_parse(cli->ctx, a->eps_seed, raw.data, raw.len, 32, &seed);
                secret_wipe(&raw);
                if (r < 0)
                        return r;
        }
        {
                struct ftpm_ek_derive rq = { .keyset_path = a->keyset, .tok = &cli->tok, .ca_role = a->ca_role,
                                             .sn = sn, .eps_seed = a->eps_seed ? &seed : NULL,
                                             .ekb = a->ekb_out ? &breq : NULL };
                r = ftpm_ek_certs_derive(cli->ctx, &rq, &res);
        }
        secret_wipe(&seed);
        if (r < 0)
                return r;
        {
                const unsigned char *data[5] = { res.rsa.der, res.ec.der, res.rsa_csr, res.ec_csr, res.ekb.data };
                size_t len[5] = { res.rsa.der_len, res.ec.der_len, res.rsa_csr_len, res.ec_csr_len, res.ekb.len };
                for (int i = 0; i < 5 && r == 0; i++) {
                        if (!paths[i])
                                continue;
                        r = file_write_atomic(cli->ctx, paths[i], data[i], len[i], i == 4 ? 0600 : 0644);
                        done[i] = r == 0;
                }
        }
        if (r == 0 && a->db)
                r = ek_ledger(cli, a->db, a->ecid, snhex, "ek_cert_rsa_sha256", res.rsa.sha256, "ek_cert_ec_sha256",
                              res.ec.sha256, a->ekb_out ? res.ekb.sha256 : NULL);
        if (r < 0) {
                for (int i = 0; i < 5; i++)
                        if (done[i])
                                (void)unlink(paths[i]);
                goto out;
        }
        if (cli->json) {
                json_object *o = cli_json_result("ftpm-ek-cert", true);
                json_object_object_add(o, "sn", json_object_new_string(snhex));
                json_object_object_add(o, "out_rsa", json_object_new_string(a->out_rsa));
                json_object_object_add(o, "rsa_sha256", json_object_new_string(res.rsa.sha256));
                json_object_object_add(o, "out_ec", json_object_new_string(a->out_ec));
                json_object_object_add(o, "ec_sha256", json_object_new_string(res.ec.sha256));
                if (a->ekb_out) {
                        json_object_object_add(o, "ekb_out", json_object_new_string(a->ekb_out));
                        json_object_object_add(o, "ekb_sha256", json_object_new_string(res.ekb.sha256));
                }
                cli_json_out(o);
        } else {
                printf("wrote %s: rsa EK certificate for SN %s, sha256 %s\n", a->out_rsa, snhex, res.rsa.sha256);
                printf("wrote %s: ec EK certificate for SN %s, sha256 %s\n", a->out_ec, snhex, res.ec.sha256);
                if (a->ekb_out)
                        printf("wrote %s: EKB %s for SN %s with records 91-94, sha256 %s\n", a->ekb_out,
                               ekb_format_name(breq.fmt), snhex, res.ekb.sha256);
        }
out:
        ftpm_ek_pair_clear(&res);
        return r;
}

int cmd_ftpm_ek_cert(struct cli *cli, int argc, char **argv)
{
        struct ek_args a = { 0 };
        struct ftpm_ek_result res = { 0 };
        unsigned char sn[FTPM_SN_LEN], *csr = NULL;
        size_t csr_len = 0;
        char snhex[2 * FTPM_SN_LEN + 1];
        int r;

        cli_parse(&ek_argp, argc, argv, &a);
        a.db = cli->led.db; /* recorded only when --db is given */
        {
                const char *outs[] = { a.out, a.out_rsa, a.out_ec, a.csr_out_rsa, a.csr_out_ec, a.ekb_out };
                for (size_t i = 0; i < FL_ARRAY_SIZE(outs); i++)
                        if ((r = cli_out_check(cli, outs[i])) < 0)
                                return r;
        }
        r = ftpm_sn_parse(cli->ctx, a.sn, sn);
        if (r < 0)
                return r;
        hex_encode(sn, sizeof(sn), snhex);
        if (a.ecid) {
                char e[LEDGER_ECID_LEN + 1];
                r = ledger_ecid_parse(cli->ctx, a.ecid, e);
                if (r < 0)
                        return r;
        }
        if (a.eps_seed || a.new_eps)
                return ek_derive(cli, &a, sn, snhex);
        r = file_read(cli->ctx, a.csr, 64 * 1024, &csr, &csr_len);
        if (r < 0)
                return r;
        {
                struct ftpm_ek_issue rq = { .keyset_path = a.keyset, .tok = &cli->tok, .ca_role = a.ca_role, .sn = sn,
                                            .csr_name = a.csr, .csr = csr, .csr_len = csr_len };
                r = ftpm_ek_cert_issue(cli->ctx, &rq, &res);
        }
        if (r < 0)
                goto out;
        r = file_write_atomic(cli->ctx, a.out, res.der, res.der_len, 0644);
        if (r < 0)
                goto out;
        if (a.db) {
                char key[40];
                snprintf(key, sizeof(key), "ek_cert_%s_sha256", res.kind);
                r = ek_ledger(cli, a.db, a.ecid, snhex, key, res.sha256, NULL, NULL, NULL);
                if (r < 0)
                        goto out;
        }
        if (cli->json) {
                json_object *o = cli_json_result("ftpm-ek-cert", true);
                json_object_object_add(o, "out", json_object_new_string(a.out));
                json_object_object_add(o, "sn", json_object_new_string(snhex));
                json_object_object_add(o, "kind", json_object_new_string(res.kind));
                json_object_object_add(o, "sha256", json_object_new_string(res.sha256));
                cli_json_out(o);
        } else {
                printf("wrote %s: %s EK certificate for SN %s, sha256 %s\n", a.out, res.kind, snhex, res.sha256);
        }
out:
        ftpm_ek_result_clear(&res);
        free(csr);
        return r;
}

/* ---- ftpm-device ----------------------------------------------------------------- */

enum { OPT_OEM_ID = 0x2900, OPT_DSN, OPT_FUSE_OUT, OPT_KDK0_IMPORT, OPT_DKEYSET, OPT_DECID };

struct dev_args {
        const char *keyset, *oem_id, *sn, *fuse_out, *kdk0_import, *db, *ecid;
};

static const struct argp_option dev_options[] = {
        { "keyset", OPT_DKEYSET, "FILE", 0, "The t234 keyset that records the device's KDK0 (role ftpm-kdk0-<SN>)", 0 },
        { "oem-id", OPT_OEM_ID, "N", 0, "OEM_ID (16 bits; burned as OdmInfo)", 0 },
        { "sn", OPT_DSN, "N", 0, "The device's serial number (< 2^63; burned as OdmId)", 0 },
        { "fuse-out", OPT_FUSE_OUT, "FILE", 0, "The per-device fuse XML: OdmId, OdmInfo, Kdk0 (0600, never "
                                                "overwritten)", 0 },
        { "kdk0-import", OPT_KDK0_IMPORT, "FILE", 0, "Lab keysets only: take KDK0 from a hex file instead of the "
                                                      "token's generator (reproducing NVIDIA's kdk_gen vectors)", 1 },
        { "ecid", OPT_DECID, "HEX", 0, "The device's ECID, for the ledger event and kept with the keyset role (a station recognises the board)", 1 },
        { 0 }
};

static error_t dev_parse(int key, char *arg, struct argp_state *state)
{
        struct dev_args *a = state->input;

        switch (key) {
        case OPT_DKEYSET:
                a->keyset = arg;
                break;
        case OPT_OEM_ID:
                a->oem_id = arg;
                break;
        case OPT_DSN:
                a->sn = arg;
                break;
        case OPT_FUSE_OUT:
                a->fuse_out = arg;
                break;
        case OPT_KDK0_IMPORT:
                a->kdk0_import = arg;
                break;
        case OPT_DECID:
                a->ecid = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->keyset || !a->oem_id || !a->sn || !a->fuse_out)
                        argp_error(state, "--keyset, --oem-id, --sn and --fuse-out are required");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}

static const char dev_doc[] =
        "Provision one device for the fTPM (offline, host side): its KDK0 made in the token, the Silicon-ID public "
        "key derived from it, and the per-device fuse plan (OdmId = SN, OdmInfo = OEM_ID, Kdk0).\v"
        "KDK0 is recorded in the keyset by check value only and written only into the 0600 fuse XML, which the "
        "factory burns before the OEM fuses. Output: 'OEM_ID SN SiliconID-X||Y' as NVIDIA's pubkey_db.csv.\n\n"
        "Examples:\n"
        "  fuseline ftpm-device --keyset keyset.json --oem-id 0x1234 --sn 0x00c0ffee12345678 \\\n"
        "      --fuse-out fuse_123400c0ffee12345678.xml --db fuseline.db";

static const struct argp dev_argp = { dev_options, dev_parse, NULL, dev_doc, cli_ledger_token_children, NULL,
                                      NULL };

int cmd_ftpm_device(struct cli *cli, int argc, char **argv)
{
        struct dev_args a = { 0 };
        struct ftpm_device_req rq = { 0 };
        struct ftpm_device_result res = { 0 };
        char pub[129], snhex[2 * FTPM_SN_LEN + 1];
        int r;

        cli_parse(&dev_argp, argc, argv, &a);
        a.db = cli->led.db; /* recorded only when --db is given */
        if (!a.oem_id || !a.sn)
                return fl_err(cli->ctx, -EINVAL, "--%s is required", a.oem_id ? "sn" : "oem-id");
        if (cli_number(a.oem_id, UINT64_MAX, &rq.oem_id) < 0)
                return fl_err(cli->ctx, -EINVAL, "--oem-id '%s': a number, decimal or 0x hex", a.oem_id);
        if (cli_number(a.sn, UINT64_MAX, &rq.sn) < 0)
                return fl_err(cli->ctx, -EINVAL, "--sn '%s': a number, decimal or 0x hex", a.sn);
        char e[LEDGER_ECID_LEN + 1];
        if (a.ecid) {
                r = ledger_ecid_parse(cli->ctx, a.ecid, e);
                if (r < 0)
                        return r;
                rq.ecid = e; /* kept with the role: a station knows the board it belongs to */
        }
        rq.keyset_path = a.keyset;
        rq.tok = &cli->tok;
        rq.kdk0_import = a.kdk0_import;
        rq.fuse_out = a.fuse_out;
        r = ftpm_device_create(cli->ctx, &rq, &res);
        if (r < 0)
                return r;
        hex_encode(res.sid_pub, 64, pub);
        hex_encode(res.sn, FTPM_SN_LEN, snhex);
        if (a.db) {
                struct ledger *l = NULL;
                json_object *d = json_object_new_object();
                json_object_object_add(d, "ftpm_sn", json_object_new_string(snhex));
                json_object_object_add(d, "silicon_id_pub", json_object_new_string(pub));
                json_object_object_add(d, "fuse_plan_sha256", json_object_new_string(res.plan_sha256));
                json_object_object_add(d, "keyset_role", json_object_new_string(res.role));
                struct ledger_event ev = { .station = cli->led.station, .operator = cli->led.operator,
                                           .command = "ftpm-device", .ecid = a.ecid, .kind = LEDGER_RECORD,
                                           .outcome = "ok",
                                           .details = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN) };
                r = ledger_open(cli->ctx, ledger_path(a.db), LEDGER_WRITE, &l);
                if (r == 0)
                        r = ledger_append(l, &ev, NULL);
                ledger_close(l);
                json_object_put(d);
                if (r < 0)
                        return r;
        }
        if (cli->json) {
                json_object *o = cli_json_result("ftpm-device", true);
                json_object_object_add(o, "sn", json_object_new_string(snhex));
                json_object_object_add(o, "silicon_id_pub", json_object_new_string(pub));
                json_object_object_add(o, "fuse_out", json_object_new_string(a.fuse_out));
                json_object_object_add(o, "fuse_plan_sha256", json_object_new_string(res.plan_sha256));
                json_object_object_add(o, "role", json_object_new_string(res.role));
                cli_json_out(o);
        } else {
                printf("%04llx %016llx %s\n", (unsigned long long)rq.oem_id, (unsigned long long)rq.sn, pub);
                cli_info("wrote %s (OdmId, OdmInfo, Kdk0; plan sha256 %s); keyset role %s", a.fuse_out,
                         res.plan_sha256, res.role);
        }
        return 0;
}
