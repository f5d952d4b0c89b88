/* keygen_identity.c — `fuseline keygen --identity-ca`: the device identity
 * CA key in the token, its self-signed certificate (or a CSR for a
 * corporate root, and later --import-cert for what the root issued), and
 * the keyset entry `identity-ca` that `enroll` and `verify cert` use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/identity.h"
#include "../lib/ledger.h"
#include "../lib/record.h"
#include "cli.h"

enum {
        OPT_IDENTITY_CA = 0x2300,
        OPT_KEYSET,
        OPT_SUBJECT,
        OPT_CURVE,
        OPT_CSR_OUT,
        OPT_DAYS,
        OPT_HW_TYPE_OID,
        OPT_LABEL,
        OPT_IMPORT_CERT,
        OPT_FTPM_EK_CA,
};

struct ca_args {
        const char *keyset, *subject, *csr_out, *hw_type_oid, *label, *import_cert, *role;
        enum key_type curve;
        unsigned days;
};

static const struct argp_option ca_options[] = {
        { "identity-ca", OPT_IDENTITY_CA, NULL, 0, "Device identity CA (this mode)", 0 },
        { "ftpm-ek-ca", OPT_FTPM_EK_CA, NULL, 0, "The same kind of CA as role ftpm-ek-ca: it issues fTPM EK "
                                                 "certificates (fuseline ftpm-ek-cert)", 0 },
        { "keyset", OPT_KEYSET, "FILE", 0, "Keyset manifest that gains the identity-ca role (rewritten atomically; "
                                           "required)", 0 },
        { "subject", OPT_SUBJECT, "DN", 0, "CA subject, e.g. \"/O=Acme/CN=Acme Device CA\" (required)", 0 },
        { "curve", OPT_CURVE, "p256|p384", 0, "CA key curve (default p384)", 0 },
        { "csr-out", OPT_CSR_OUT, "FILE", 0,
          "Write a CSR for an existing corporate root instead of a self-signed certificate", 0 },
        { "days", OPT_DAYS, "N", 0, "Self-signed validity in days (default: notAfter 99991231235959Z, like the "
                                    "device certificates it signs)", 0 },
        { "hw-type-oid", OPT_HW_TYPE_OID, "OID", 0,
          "hardwareModuleName hwType for the devices, recorded on the entry (default: the documentation "
          "placeholder " IDENTITY_HWTYPE_PLACEHOLDER "; use an OID under your own enterprise number)",
          0 },
        { "label", OPT_LABEL, "LABEL", 0, "Token object label (default: <keyset name>-identity-ca)", 0 },
        { "import-cert", OPT_IMPORT_CERT, "FILE", 0,
          "Attach the CA certificate a root issued for the --csr-out request", 1 },
        { 0 }
};

static error_t ca_parse(int key, char *arg, struct argp_state *state)
{
        struct ca_args *a = state->input;
        uint64_t v = 0;

        switch (key) {
        case OPT_IDENTITY_CA:
                break;
        case OPT_FTPM_EK_CA:
                a->role = FTPM_EK_CA_ROLE;
                break;
        case OPT_KEYSET:
                a->keyset = arg;
                break;
        case OPT_SUBJECT:
                a->subject = arg;
                break;
        case OPT_CURVE:
                a->curve = key_type_from_name(arg);
                if (a->curve != KT_P256 && a->curve != KT_P384)
                        argp_error(state, "--curve '%s': use p256 or p384", arg);
                break;
        case OPT_CSR_OUT:
                a->csr_out = arg;
                break;
        case OPT_DAYS:
                if (cli_number(arg, 3650000, &v) < 0 || v < 1)
                        argp_error(state, "--days '%s': a whole number of days from 1", arg);
                a->days = (unsigned)v;
                break;
        case OPT_HW_TYPE_OID:
                a->hw_type_oid = arg;
                break;
        case OPT_LABEL:
                a->label = arg;
                break;
        case OPT_IMPORT_CERT:
                a->import_cert = arg;
                break;
        case ARGP_KEY_ARG:
                argp_error(state, "unexpected argument '%s'", arg);
                break;
        case ARGP_KEY_END:
                if (!a->keyset)
                        argp_error(state, "--keyset is required (the manifest that gains the identity-ca role)");
                if (a->role && (a->import_cert || a->csr_out))
                        argp_error(state, "--ftpm-ek-ca makes a self-signed EK CA; --csr-out/--import-cert are for "
                                          "the identity CA only (not built for the EK CA yet)");
                if (a->import_cert) {
                        if (a->subject || a->csr_out || a->curve || a->days || a->hw_type_oid || a->label)
                                argp_error(state, "--import-cert takes only --keyset");
                        break;
                }
                if (!a->subject)
                        argp_error(state, "--subject is required, e.g. \"/O=Acme/CN=Acme Device CA\"");
                if (a->csr_out && a->days)
                        argp_error(state, "--days is for the self-signed certificate; the root decides a CSR's validity");
                break;
        default:
                return ARGP_ERR_UNKNOWN;
        }
        return 0;
}


static const char ca_doc[] =
        "Create the device identity CA: an EC key inside the token (non-extractable, sensitive), a self-signed CA "
        "certificate (basicConstraints CA:TRUE pathlen 0, keyCertSign + cRLSign, SKI/AKI) written next to the keyset "
        "as KEYSET-identity-ca.crt (keyset.json: keyset-identity-ca.crt), and the keyset role identity-ca (label, URI, public_key_sha256, certificate, "
        "certificate_sha256, subject, hw_type_oid).\v"
        "With --csr-out the CA is to be issued by an existing corporate root: a CSR is written instead, and the "
        "certificate the root returns is attached later with --import-cert. An existing role, label or file is a "
        "conflict (exit 7): nothing is ever replaced, and a failed run removes what it made.\n\n"
        "Examples:\n"
        "  fuseline keygen --identity-ca --keyset keyset.json --subject \"/O=Acme/CN=Acme Device CA\"\n"
        "  fuseline keygen --identity-ca --token 'pkcs11:token=prod' --keyset keyset.json --curve p256 \\\n"
        "      --subject \"/O=Acme/CN=Acme Device CA 2\" --hw-type-oid 1.3.6.1.4.1.99999.1.7\n"
        "  fuseline keygen --identity-ca --keyset keyset.json --subject \"/O=Acme/CN=Acme Device CA\" --csr-out ca.csr\n"
        "  fuseline keygen --identity-ca --keyset keyset.json --import-cert ca-from-root.pem";

static const struct argp ca_argp = { ca_options, ca_parse, NULL, ca_doc, cli_ledger_token_children, NULL, NULL };

/* The CA ceremony on the record: its key's fingerprint and its certificate
 * (or the CSR sent to a root), by hash. */
static int record(struct cli *cli, struct ledger *l, const struct ca_args *a, const struct identity_ca_result *res)
{
        json_object *d = json_object_new_object();
        const char *role = a->role ? a->role : IDENTITY_CA_ROLE;
        char sha[65], done[FL_ERRMSG_MAX];

        json_object_object_add(d, "mode", json_object_new_string(a->import_cert ? "import-cert"
                                                                 : res->csr_path ? "csr"
                                                                                 : a->role ? "ftpm-ek-ca"
                                                                                           : "identity-ca"));
        json_object_object_add(d, "keyset", json_object_new_string(a->keyset));
        json_object_object_add(d, "keyset_sha256",
                               record_file_sha256(cli->ctx, a->keyset, sha) == 0 ? json_object_new_string(sha) : NULL);
        json_object_object_add(d, "role", json_object_new_string(role));
        json_object_object_add(d, "type", json_object_new_string(key_type_name(res->type)));
        if (res->label)
                json_object_object_add(d, "label", json_object_new_string(res->label));
        if (res->uri)
                json_object_object_add(d, "uri", json_object_new_string(res->uri));
        json_object_object_add(d, "subject", json_object_new_string(res->subject));
        json_object_object_add(d, "public_key_sha256", json_object_new_string(res->spki_sha256));
        if (res->cert_path) {
                json_object_object_add(d, "certificate_file", json_object_new_string(res->cert_path));
                json_object_object_add(d, "certificate_sha256", json_object_new_string(res->cert_sha256));
        }
        if (res->csr_path) {
                json_object_object_add(d, "csr", json_object_new_string(res->csr_path));
                json_object_object_add(d, "csr_sha256", record_file_sha256(cli->ctx, res->csr_path, sha) == 0
                                                                ? json_object_new_string(sha) : NULL);
        }
        fl_err_clear(cli->ctx);
        snprintf(done, sizeof(done), "%s: role %s is in %s%s", a->import_cert ? "the certificate was attached"
                                                                                : "the CA key was made in the token",
                 role, a->keyset, res->cert_path ? " with its certificate" : "");
        return cli_ledger_record(cli, l, "keygen", &d, 1, done, NULL);
}

int cmd_keygen_identity_ca(struct cli *cli, int argc, char **argv)
{
        struct ca_args a = { 0 };
        struct identity_ca_result res = { 0 };
        struct ledger *l = NULL;
        int r;

        cli_parse(&ca_argp, argc, argv, &a);
        /* A ledger that cannot be written fails before the key is made. */
        r = cli_ledger_open(cli, &l);
        if (r < 0)
                return r;
        if (a.import_cert) {
                r = identity_ca_import(cli->ctx, a.keyset, a.import_cert, &res);
        } else {
                struct identity_ca_opts o = { .keyset_path = a.keyset, .tok = &cli->tok, .subject = a.subject,
                                              .curve = a.curve ? a.curve : KT_P384, .csr_out = a.csr_out,
                                              .days = a.days, .hw_type_oid = a.hw_type_oid, .label = a.label,
                                              .role = a.role };
                r = identity_ca_create(cli->ctx, &o, &res);
        }
        if (r < 0)
                goto out;
        if (cli->json) {
                json_object *o = cli_json_result("keygen --identity-ca", true);
                json_object_object_add(o, "keyset", json_object_new_string(a.keyset));
                json_object_object_add(o, "role", json_object_new_string(a.role ? a.role : IDENTITY_CA_ROLE));
                json_object_object_add(o, "type", json_object_new_string(key_type_name(res.type)));
                if (res.label)
                        json_object_object_add(o, "label", json_object_new_string(res.label));
                if (res.uri)
                        json_object_object_add(o, "uri", json_object_new_string(res.uri));
                json_object_object_add(o, "subject", json_object_new_string(res.subject));
                json_object_object_add(o, "public_key_sha256", json_object_new_string(res.spki_sha256));
                if (res.cert_path) {
                        json_object_object_add(o, "certificate", json_object_new_string(res.cert_path));
                        json_object_object_add(o, "certificate_sha256", json_object_new_string(res.cert_sha256));
                }
                if (res.csr_path)
                        json_object_object_add(o, "csr", json_object_new_string(res.csr_path));
                cli_json_out(o);
        } else if (res.cert_path) {
                printf("%s %s %s (%s) %s\n  certificate %s sha256:%s\n  recorded as role %s in %s\n",
                       a.import_cert ? "attached certificate to" : "created", a.role ? "fTPM EK CA" : "identity CA",
                       res.label ? res.label : "", key_type_name(res.type), res.subject, res.cert_path, res.cert_sha256,
                       a.role ? a.role : IDENTITY_CA_ROLE, a.keyset);
        } else {
                printf("created identity CA key %s (%s)\n  CSR %s for %s: have the root sign it, then\n"
                       "  fuseline keygen --identity-ca --keyset %s --import-cert SIGNED.pem\n",
                       res.label, key_type_name(res.type), res.csr_path, res.subject, a.keyset);
        }
        r = record(cli, l, &a, &res);
out:
        identity_ca_result_clear(&res);
        ledger_close(l);
        return r;
}
