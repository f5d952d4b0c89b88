/* enroll.c — `fuseline enroll` (IEEE 802.1AR IDevID certificates for
 * devices, one or a --batch list in one token session) and `fuseline
 * verify cert`. The profile, the CSR checks and the ledger rules live in
 * lib/identity.c. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/enroll.h"
#include "../lib/identity.h"
#include "../lib/ledger.h"
#include "cli.h"

enum {
        OPT_KEYSET = 0x2200,
        OPT_CA_ROLE,
        OPT_ECID,
        OPT_SERIAL,
        OPT_PRODUCT,
        OPT_CSR,
        OPT_GENERATE_KEY,
        OPT_DB, /* verify cert's own --db (a read) */
        OPT_OUT,
        OPT_REISSUE,
        OPT_HW_TYPE_OID,
        OPT_BATCH,
        OPT_OUT_DIR,
};

struct enroll_args {
        const char *keyset, *ca_role, *ecid, *serial, *product, *csr, *out;
        const char *hw_type_oid, *batch, *out_dir;
        enum key_type generate;
        bool reissue;
};

static const struct argp_option enroll_options[] = {
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest holding the identity CA (required)", 0 },
        { "ca-role", OPT_CA_ROLE, "ROLE", 0, "Keyset role of the signing CA (default: identity-ca)", 0 },
        { "ecid", OPT_ECID, "HEX", 0, "The device's ECID: 32 hex digits, optional 0x (tegrarcm_v2 --uid's BR_CID)", 0 },
        { "serial", OPT_SERIAL, "S", 0, "Factory serial number (goes into the CN and the ledger)", 0 },
        { "product", OPT_PRODUCT, "NAME", 0, "Product name for the CN (default: the keyset name)", 0 },
        { "csr", OPT_CSR, "FILE", 0, "The device's PKCS#10 request (PEM or DER); its key never leaves the device", 0 },
        { "generate-key", OPT_GENERATE_KEY, "p256|p384", 0,
          "Make the device key pair in the token instead (extractable, for injection into boards without a key "
          "store)",
          0 },
        { "out", OPT_OUT, "FILE", 0, "Where the certificate (PEM) goes (required without --batch)", 0 },
        { "reissue", OPT_REISSUE, NULL, 0, "Issue a new certificate even though the ECID has one; the old one is "
                                            "marked superseded in the ledger", 0 },
        { "hw-type-oid", OPT_HW_TYPE_OID, "OID", 0,
          "hardwareModuleName hwType (default: the one recorded on the CA entry)", 0 },
        { "batch", OPT_BATCH, "FILE", 0,
          "Enrol many devices in one token session: one 'ECID CSR [SERIAL]' per line ('#' comments; CSR '-' "
          "with --generate-key); certificates go to --out-dir/ECID.pem; JSON Lines with --json",
          1 },
        { "out-dir", OPT_OUT_DIR, "DIR", 0, "Directory for --batch certificates (must exist)", 1 },
        { 0 }
};

static error_t enroll_parse(int key, char *arg, struct argp_state *state)
{
        struct enroll_args *a = state->input;

        switch (key) {
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_CA_ROLE:
                a->ca_role = arg;
                break;
        case OPT_ECID:
                a->ecid = arg;
                break;
        case OPT_SERIAL:
                a->serial = arg;
                break;
        case OPT_PRODUCT:
                a->product = arg;
                break;
        case OPT_CSR:
                a->csr = arg;
                break;
        case OPT_GENERATE_KEY:
                a->generate = key_type_from_name(arg);
                if (a->generate != KT_P256 && a->generate != KT_P384)
                        argp_error(state, "--generate-key '%s': use p256 or p384", arg);
                break;
        case OPT_OUT:
                a->out = arg;
                break;
        case OPT_REISSUE:
                a->reissue = true;
                break;
        case OPT_HW_TYPE_OID:
                a->hw_type_oid = arg;
                break;
        case OPT_BATCH:
                a->batch = arg;
                break;
        case OPT_OUT_DIR:
                a->out_dir = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->keyset)
                        argp_error(state, "--keyset is required (the keyset holding the identity CA)");
                if (a->batch) {
                        if (a->ecid || a->csr || a->out || a->serial)
                                argp_error(state, "--batch takes ECID, CSR and serial from its lines: drop --ecid, "
                                                  "--csr, --serial and --out");
                        if (!a->out_dir)
                                argp_error(state, "--batch needs --out-dir DIR for the certificates");
                        break;
                }
                if (!a->ecid)
                        argp_error(state, "--ecid is required");
                if (!a->csr == !a->generate)
                        argp_error(state, "give either --csr FILE or --generate-key p256|p384");
                if (!a->out)
                        argp_error(state, "--out is required (where the certificate goes)");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}


static const char enroll_doc[] =
        "Issue a device identity certificate (IEEE 802.1AR IDevID profile) bound to the ECID, signed by the identity "
        "CA key in the token, and record it in the ledger.\v"
        "The certificate: subject serialNumber = ECID, CN = product + factory serial, O = the CA's O; SAN otherName "
        "hardwareModuleName (RFC 4108: hwType OID + the 16 ECID bytes); notAfter 99991231235959Z; keyUsage "
        "digitalSignature (+ keyAgreement for EC); extendedKeyUsage clientAuth; SKI/AKI; a random 16-byte serial. "
        "Only the key is taken from a CSR, after its self-signature is checked; RSA below 2048 bits and curves "
        "other than P-256/P-384/P-521 are refused.\n"
        "Re-running for an ECID that has a valid certificate for the same key returns that certificate (exit 0, "
        "\"already enrolled\"); a different key is a conflict (exit 7) unless --reissue, which supersedes the old "
        "certificate. The certificate, the device state (enrolled) and the event are one ledger transaction. An "
        "existing --out is exit 7 before anything is issued, unless --force.\n\n"
        "Examples:\n"
        "  fuseline enroll --keyset keyset.json --ecid 0x80012344705DF1172C0000000D020080 --serial SN0001 \\\n"
        "      --product \"Acme Orin\" --csr device.csr --out device.pem\n"
        "  fuseline enroll --keyset keyset.json --ecid 80012344705df1172c0000000d020080 --generate-key p256 \\\n"
        "      --out device.pem --station line1-st3 --operator alice --json\n"
        "  fuseline enroll --keyset keyset.json --ecid … --csr new.csr --reissue --out device.pem\n"
        "  fuseline enroll --keyset keyset.json --batch devices.txt --out-dir certs --json\n"
        "Then: fuseline verify cert device.pem --keyset keyset.json";

static const struct argp enroll_argp = { enroll_options, enroll_parse, NULL, enroll_doc, cli_ledger_token_force_children, NULL,
                                          NULL };

static const char *outcome_name(enum identity_outcome o)
{
        return o == IDENTITY_ALREADY ? "already-enrolled" : o == IDENTITY_REISSUED ? "reissued" : "issued";
}

static json_object *result_json(const struct identity_enroll_result *res, const char *factory_serial,
                                const char *out)
{
        json_object *o = cli_json_result("enroll", true);

        json_object_object_add(o, "outcome", json_object_new_string(outcome_name(res->outcome)));
        json_object_object_add(o, "ecid", json_object_new_string(res->ecid));
        json_object_object_add(o, "serial", json_object_new_string(res->serial_hex));
        if (factory_serial)
                json_object_object_add(o, "factory_serial", json_object_new_string(factory_serial));
        json_object_object_add(o, "fingerprint", json_object_new_string(res->fingerprint));
        json_object_object_add(o, "subject", json_object_new_string(res->subject));
        if (res->superseded)
                json_object_object_add(o, "superseded", json_object_new_string(res->superseded));
        if (res->key_uri)
                json_object_object_add(o, "key_uri", json_object_new_string(res->key_uri));
        json_object_object_add(o, "event_id", json_object_new_int64(res->event_id));
        if (out)
                json_object_object_add(o, "out", json_object_new_string(out));
        json_object_object_add(o, "pem", json_object_new_string_len(res->pem, (int)res->pem_len));
        return o;
}

static void result_text(const struct identity_enroll_result *res, const char *out)
{
        printf("%s ECID %s: certificate sha256:%s serial %s\n",
               res->outcome == IDENTITY_ALREADY ? "already enrolled" : res->outcome == IDENTITY_REISSUED ? "reissued"
                                                                                                          : "enrolled",
               res->ecid, res->fingerprint, res->serial_hex);
        printf("  subject %s\n", res->subject);
        if (res->superseded)
                printf("  supersedes sha256:%s\n", res->superseded);
        if (res->key_uri)
                printf("  device key %s\n", res->key_uri);
        printf("  written to %s\n", out);
}

/* Where a certificate will go, checked before one is issued: a certificate
 * issued and recorded but not written leaves the MES and the ledger
 * disagreeing. `dir`: path must be a writable directory; otherwise path must
 * not be a directory and its parent must be a writable directory. (A full
 * disk can still fail the write: see write_failed.) */
static int check_out(fl_ctx *ctx, const char *opt, const char *path, bool dir)
{
        struct stat st;
        char *copy = NULL;
        const char *parent = path;
        int r = 0;

        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) != dir)
                return fl_err(ctx, -EINVAL, "%s %s: %s", opt, path, dir ? "not a directory" : "is a directory");
        if (!dir) {
                copy = strdup(path);
                if (!copy)
                        return -ENOMEM;
                parent = dirname(copy);
        }
        if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode))
                r = fl_err(ctx, -EINVAL, "%s %s: directory %s does not exist", opt, path, parent);
        else if (access(parent, W_OK | X_OK) < 0)
                r = fl_err(ctx, -EINVAL, "%s %s: directory %s is not writable: %s", opt, path, parent,
                           strerror(errno));
        free(copy);
        return r;
}

/* One line per device as lib/enroll.c reports it: a JSON object, or
 * "ECID outcome FILE" / "ECID FAILED (exit N) message"; on a tty only a
 * progress counter. */
struct batch_print {
        struct cli *cli;
        bool progress;
};

static void batch_device(void *data, const struct enroll_batch_device *d)
{
        const struct batch_print *bp = data;
        struct cli *cli = bp->cli;

        if (d->r == 0) {
                if (cli->json) {
                        json_object *o = result_json(d->res, d->item->serial, d->out);
                        json_object_object_add(o, "line", json_object_new_int((int)d->item->line));
                        json_object_object_add(o, "exit_code", json_object_new_int(0));
                        cli_json_out(o);
                } else if (!bp->progress) {
                        printf("%s %s %s\n", d->res->ecid, outcome_name(d->res->outcome), d->out);
                }
        } else if (cli->json) {
                json_object *o = cli_json_result("enroll", false);
                json_object_object_add(o, "ecid", json_object_new_string(d->item->ecid));
                json_object_object_add(o, "line", json_object_new_int((int)d->item->line));
                json_object_object_add(o, "exit_code", json_object_new_int(cli_exit_code(d->r)));
                json_object_object_add(o, "error", json_object_new_string(d->error));
                cli_json_out(o);
        } else {
                printf("%s FAILED (exit %d) %s\n", d->item->ecid, cli_exit_code(d->r), d->error);
        }
        if (bp->progress)
                fprintf(stderr, "\renrolled %zu/%zu (%zu failed)", d->index + 1, d->total, d->failed);
}

/* parse the list → check the overwrite rule → enrol (lib) → summary. */
static int run_batch(struct cli *cli, struct identity_session *s, const struct enroll_args *a)
{
        struct enroll_batch_item *items = NULL;
        struct enroll_batch_totals t = { 0 };
        struct batch_print bp = { .cli = cli,
                                  .progress = !cli->json && cli->verbosity >= 0 && isatty(STDERR_FILENO) };
        const struct enroll_batch_opts o = { .name = a->batch, .out_dir = a->out_dir, .product = a->product,
                                             .generate = a->generate, .reissue = a->reissue };
        size_t n = 0;
        int r;

        r = enroll_batch_load(cli->ctx, a->batch, a->generate != KT_NONE, &items, &n);
        if (r < 0)
                return r;
        /* The overwrite rule, before anything is issued: a device's file in
         * --out-dir that exists is exit 7 unless --force (a re-run of a list
         * returns the same certificates; writing them over their earlier
         * copies needs --force too). */
        for (size_t i = 0; i < n && !cli->force; i++) {
                char *p = NULL;
                r = asprintf(&p, "%s/%s.pem", a->out_dir, items[i].ecid) < 0 ? -ENOMEM : cli_out_check(cli, p);
                free(p);
                if (r < 0) {
                        enroll_batch_free(items, n);
                        return r;
                }
        }
        r = enroll_batch_run(cli->ctx, s, items, n, &o, batch_device, &bp, &t);
        if (bp.progress)
                fputc('\n', stderr);
        if (!cli->json) {
                printf("%zu issued, %zu already enrolled, %zu failed: %s\n", t.issued, t.already, t.failed,
                       t.failed ? "FAIL" : "PASS");
        } else {
                /* One object per device, then this summary: main() adds the
                 * batch's error and exit code here, never to a device's line. */
                json_object *so = cli_json_result("enroll", t.failed == 0 && !t.interrupted);
                json_object_object_add(so, "summary", json_object_new_boolean(1));
                json_object_object_add(so, "batch", json_object_new_string(a->batch));
                json_object_object_add(so, "total", json_object_new_int64((int64_t)t.total));
                json_object_object_add(so, "issued", json_object_new_int64((int64_t)t.issued));
                json_object_object_add(so, "already_enrolled", json_object_new_int64((int64_t)t.already));
                json_object_object_add(so, "failed", json_object_new_int64((int64_t)t.failed));
                json_object_object_add(so, "not_attempted",
                                       json_object_new_int64((int64_t)(t.total - t.issued - t.already - t.failed)));
                cli_json_out(so);
        }
        enroll_batch_free(items, n);
        return r;
}

int cmd_enroll(struct cli *cli, int argc, char **argv)
{
        struct enroll_args a = { 0 };
        struct identity_session *s = NULL;
        struct identity_enroll_result res = { 0 };
        int r;

        cli_parse(&enroll_argp, argc, argv, &a);
        r = a.batch ? check_out(cli->ctx, "--out-dir", a.out_dir, true) : check_out(cli->ctx, "--out", a.out, false);
        if (r == 0 && !a.batch)
                r = cli_out_check(cli, a.out);
        if (r < 0)
                goto out;
        {
                struct identity_session_opts so = { .keyset_path = a.keyset, .tok = &cli->tok, .ca_role = a.ca_role,
                                                    .hw_type_oid = a.hw_type_oid, .db_path = ledger_path(cli->led.db),
                                                    .station = cli->led.station,
                                                    .operator = cli->led.operator };
                r = identity_session_open(cli->ctx, &so, &s);
                if (r < 0)
                        goto out;
        }
        if (a.batch) {
                r = run_batch(cli, s, &a);
                goto out;
        }
        {
                struct identity_enroll_req req = { .ecid = a.ecid, .serial = a.serial, .product = a.product,
                                                   .csr_path = a.csr, .generate = a.generate, .reissue = a.reissue };
                r = identity_enroll(s, &req, &res);
                if (r < 0)
                        goto out;
        }
        /* The ledger holds the certificate before the file is written: if
         * the write fails, a re-run returns the same certificate. */
        r = enroll_cert_write(cli->ctx, &res, a.out);
        if (r < 0) {
                if (cli->json) {
                        json_object *o = result_json(&res, a.serial, a.out);
                        json_object_object_add(o, "written", json_object_new_boolean(0));
                        cli_json_out(o);
                }
                goto out;
        }
        if (cli->json)
                cli_json_out(result_json(&res, a.serial, a.out));
        else
                result_text(&res, a.out);
out:
        identity_enroll_result_clear(&res);
        identity_session_close(s);
        return r;
}

/* ---- verify cert ---------------------------------------------------------------- */

struct verify_args {
        const char *cert, *keyset, *ca_role, *hw_type_oid, *db;
};

static const struct argp_option verify_options[] = {
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest holding the identity CA (required)", 0 },
        { "ca-role", OPT_CA_ROLE, "ROLE", 0, "Keyset role of the CA (default: identity-ca)", 0 },
        { "hw-type-oid", OPT_HW_TYPE_OID, "OID", 0, "Expected hwType (default: the one recorded on the CA entry)", 0 },
        { "db", OPT_DB, "PATH", 0,
          "Also check that it is the ECID's current certificate in this ledger (default: $FUSELINE_DB if set; "
          "without either the ledger is not consulted)",
          0 },
        { 0 }
};

static error_t verify_parse(int key, char *arg, struct argp_state *state)
{
        struct verify_args *a = state->input;

        switch (key) {
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_CA_ROLE:
                a->ca_role = arg;
                break;
        case OPT_HW_TYPE_OID:
                a->hw_type_oid = arg;
                break;
        case OPT_DB:
                a->db = arg;
                break;
        case ARGP_KEY_ARG:
                if (a->cert)
                        argp_error(state, "one certificate at a time");
                a->cert = arg;
                break;
        case ARGP_KEY_END:
                if (!a->cert)
                        argp_error(state, "which certificate? fuseline verify cert DEVICE.pem --keyset keyset.json");
                if (!a->keyset)
                        argp_error(state, "--keyset is required (the keyset holding the identity CA)");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}


static const char verify_doc[] =
        "Check a device identity certificate: it chains to the keyset's identity CA (signature, validity, strict "
        "RFC 5280 checks, clientAuth purpose), it follows the IDevID profile (serialNumber = ECID, CN, SAN "
        "hardwareModuleName with the expected hwType and the same ECID, notAfter 99991231235959Z, keyUsage, "
        "extendedKeyUsage, SKI/AKI, 16-byte positive serial, key strength), and, with a ledger, that it is the "
        "ECID's current valid certificate (not superseded or revoked).\v"
        "Exit 5 when anything differs, one line per problem. No token is needed.\n\n"
        "Examples:\n"
        "  fuseline verify cert device.pem --keyset keyset.json\n"
        "  fuseline verify cert device.pem --keyset keyset.json --db line1.db --json";

static const struct argp verify_argp = { verify_options, verify_parse, "CERT", verify_doc, cli_common_children, NULL,
                                         NULL };

int cmd_verify_cert(struct cli *cli, int argc, char **argv)
{
        struct verify_args a = { 0 };
        struct identity_check c = { .ledger = -1 };
        const char *db;
        bool ok;
        int r;

        cli_parse(&verify_argp, argc, argv, &a);
        db = a.db ? a.db : getenv("FUSELINE_DB");
        if (db && !*db)
                db = NULL;
        {
                struct identity_verify_opts o = { .cert_path = a.cert, .keyset_path = a.keyset, .ca_role = a.ca_role,
                                                  .hw_type_oid = a.hw_type_oid, .db_path = db };
                r = identity_verify(cli->ctx, &o, &c);
                if (r < 0)
                        return r;
        }
        ok = c.n_problems == 0;
        if (cli->json) {
                json_object *o = cli_json_result("verify cert", ok);
                json_object_object_add(o, "certificate", json_object_new_string(a.cert));
                json_object_object_add(o, "ecid", c.ecid[0] ? json_object_new_string(c.ecid) : NULL);
                json_object_object_add(o, "serial", json_object_new_string(c.serial_hex));
                json_object_object_add(o, "fingerprint", json_object_new_string(c.fingerprint));
                json_object_object_add(o, "subject", json_object_new_string(c.subject ? c.subject : ""));
                json_object_object_add(o, "chain", json_object_new_boolean(c.chain_ok));
                json_object_object_add(o, "profile", json_object_new_boolean(c.profile_ok));
                json_object_object_add(o, "ledger", c.ledger < 0 ? json_object_new_string("not checked")
                                                                 : json_object_new_boolean(c.ledger == 1));
                json_object_object_add(o, "problems", cli_json_strings(c.problems, c.n_problems));
                cli_json_out(o);
        } else {
                printf("ECID     %s\n", c.ecid[0] ? c.ecid : "(none)");
                printf("subject  %s\n", c.subject ? c.subject : "");
                printf("chain    %s\n", c.chain_ok ? "OK" : "FAIL");
                printf("profile  %s\n", c.profile_ok ? "OK" : "FAIL");
                printf("ledger   %s\n", c.ledger < 0 ? "not checked (no --db)" : c.ledger ? "OK (current)" : "FAIL");
                for (size_t i = 0; i < c.n_problems; i++)
                        printf("  MISMATCH %s\n", c.problems[i]);
        }
        r = cli_verdict(cli, a.cert, c.problems, c.n_problems);
        identity_check_clear(&c);
        return r;
}
