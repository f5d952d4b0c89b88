/* identity.h — device identity certificates in the IEEE 802.1AR IDevID
 * profile, bound to a Jetson's ECID and signed by the identity CA key held
 * in the token; the checks on the CSRs devices send; the identity CA
 * itself (key, self-signed certificate or CSR, keyset entry); the profile
 * and chain check behind `fuseline verify cert`; and enrolment sessions
 * that record every certificate in the ledger.
 *
 * The profile (README §fuseline enroll):
 *   subject       O = the CA's O (if it has one), CN = "<product> <factory
 *                 serial>", serialNumber = ECID (32 lower-case hex digits)
 *   SAN           otherName hardwareModuleName (RFC 4108 §5,
 *                 id-on-hardwareModuleName 1.3.6.1.5.5.7.8.4):
 *                 SEQUENCE { hwType OID, hwSerialNum OCTET STRING = the 16
 *                 ECID bytes }
 *   validity      now .. 99991231235959Z (GeneralizedTime; RFC 5280
 *                 §4.1.2.5 "no well-defined expiration", 802.1AR §8.5)
 *   keyUsage      digitalSignature (+ keyAgreement for EC keys), critical
 *   extKeyUsage   clientAuth
 *   SKI, AKI; serial 16 random bytes, positive; no basicConstraints.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "internal.h"
#include "keyset.h"
#include "p11.h"
#include "x509.h"

#define IDENTITY_CA_ROLE "identity-ca"
/* The fTPM EK CA: the same kind of CA key and certificate (<role>.crt),
 * issuing EK certificates instead of IDevIDs. */
#define FTPM_EK_CA_ROLE "ftpm-ek-ca"
/* id-on-hardwareModuleName (RFC 4108 §5). */
#define IDENTITY_OID_HMN "1.3.6.1.5.5.7.8.4"
/* The default hwType: an arc under private enterprise number 32473, which
 * IANA reserves for documentation (RFC 5612). It is a placeholder that keeps
 * lab certificates well-formed and recognisable; a manufacturer replaces it
 * with an OID under its own enterprise number (--hw-type-oid, recorded on
 * the identity-ca key entry as "hw_type_oid"). */
#define IDENTITY_HWTYPE_PLACEHOLDER "1.3.6.1.4.1.32473.1.1"
#define IDENTITY_ECID_BYTES 16
#define IDENTITY_NAME_MAX 64 /* ub-common-name, and the ledger's serial */
/* 9999-12-31T23:59:59Z */
#define IDENTITY_NOT_AFTER ((time_t)253402300799LL)

/* ---- device keys and CSRs ---------------------------------------------------- */

/* The key policy for device keys: RSA 2048..16384 bits with an odd public
 * exponent >= 65537, or EC on P-256/P-384/P-521 (named curves only) with
 * a valid point. Anything else (RSA < 2048, other or explicit curves,
 * Ed25519, DSA) is -EINVAL naming `what` and the key. */
int identity_key_check(fl_ctx *ctx, const char *what, EVP_PKEY *pk);

/* Parse a PKCS#10 request (PEM or DER), verify its self-signature
 * (-EBADMSG) and apply the key policy (-EINVAL). Only the key is taken from
 * a CSR: the subject and extensions of the certificate come from the
 * ledger's facts, never from what a device asks for. */
int identity_csr_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509_REQ **ret);
int identity_csr_load(fl_ctx *ctx, const char *path, X509_REQ **ret);

/* ---- hardwareModuleName --------------------------------------------------------- */

/* DER of SEQUENCE { hwType OID, hwSerialNum OCTET STRING } (malloc'd). */
int identity_hmn_der(fl_ctx *ctx, const char *hw_type_oid, const unsigned char *serial, size_t serial_len,
                     unsigned char **ret, size_t *ret_len);
/* Decode that DER exactly (no trailing bytes): the OID in dotted form and
 * the serial bytes (both malloc'd). -EINVAL otherwise. */
int identity_hmn_parse(const unsigned char *der, size_t len, char **ret_oid, unsigned char **ret_serial,
                       size_t *ret_serial_len);
/* Whether s is a dotted OID OpenSSL accepts (at least two arcs). */
bool identity_oid_ok(const char *s);

/* ---- certificates ------------------------------------------------------------------- */

struct identity_cert_req {
        const char *ecid;        /* normalised (ledger_ecid_parse) */
        const char *product;     /* CN first part, required */
        const char *serial;      /* factory serial, CN second part; NULL: CN = product */
        const char *hw_type_oid; /* NULL: IDENTITY_HWTYPE_PLACEHOLDER */
        EVP_PKEY *pubkey;        /* device key (already policy-checked) */
        X509 *ca_cert;           /* issuer; its key is the signer's */
        time_t not_before;       /* 0: now */
};

/* Build and sign one IDevID certificate. */
int identity_cert_issue(fl_ctx *ctx, const struct identity_cert_req *req, x509_signer *ca, X509 **ret);

/* The subject the profile gives (for comparing with an issued one). */
int identity_subject(fl_ctx *ctx, const struct identity_cert_req *req, X509_NAME **ret);

#define IDENTITY_PROBLEMS_MAX 24

struct identity_check {
        char ecid[2 * IDENTITY_ECID_BYTES + 1]; /* from the subject, "" if absent/bad */
        char fingerprint[65];
        char serial_hex[41];
        char *subject;       /* RFC 2253 */
        bool chain_ok;       /* chains to the CA certificate */
        bool profile_ok;     /* every profile rule holds */
        int ledger;          /* -1 not checked, 0 not current, 1 current valid certificate */
        char *problems[IDENTITY_PROBLEMS_MAX];
        size_t n_problems;
};

/* Check a certificate against the CA certificate (signature, validity now,
 * AKI) and the profile (hw_type_oid NULL: the placeholder). Problems are
 * collected in ret, not returned: <0 only on allocation failure. */
int identity_cert_check(fl_ctx *ctx, X509 *cert, X509 *ca, const char *hw_type_oid, struct identity_check *ret);
void identity_check_clear(struct identity_check *c);

/* ---- the identity CA --------------------------------------------------------------- */

/* The identity CA of a keyset: its key entry, certificate and hwType.
 * -EINVAL when the role is missing or not a CA entry, or its certificate
 * is missing, unreadable or differs from certificate_sha256 (-EBADMSG). */
struct identity_ca {
        const struct ks_key *key; /* borrowed from the keyset */
        X509 *cert;
        char *cert_path;          /* resolved */
        char *hw_type_oid;
};
int identity_ca_load(fl_ctx *ctx, const struct keyset *ks, const char *ks_path, const char *role,
                     struct identity_ca *ret);
void identity_ca_clear(struct identity_ca *ca);

struct identity_ca_opts {
        const char *keyset_path;
        const struct token_opts *tok;
        const char *subject;     /* "/O=Acme/CN=Acme Device CA" */
        enum key_type curve;     /* KT_P384 (default) or KT_P256 */
        const char *csr_out;     /* make a CSR for a corporate root instead of a self-signed cert */
        unsigned days;           /* 0: notAfter 99991231235959Z */
        const char *hw_type_oid; /* NULL: the placeholder */
        const char *label;       /* NULL: "<keyset name>-<role>" */
        const char *role;        /* NULL: IDENTITY_CA_ROLE; or FTPM_EK_CA_ROLE */
};

struct identity_ca_result {
        char *label, *uri;
        char *cert_path; /* NULL with csr_out */
        char *csr_path;
        char *subject;
        char cert_sha256[65];
        char spki_sha256[65];
        enum key_type type;
};

/* Create the CA key in the token (non-extractable, sensitive), its
 * self-signed CA certificate next to the keyset (IDENTITY_CA_FILE) or a CSR
 * (csr_out), and the keyset entry. Never replaces anything (-EEXIST); all
 * or nothing: on failure the key and files this call made are removed. */
int identity_ca_create(fl_ctx *ctx, const struct identity_ca_opts *o, struct identity_ca_result *ret);
/* Attach the certificate a corporate root issued for a CA created with a
 * CSR: it must carry the entry's key and be a CA certificate. */
int identity_ca_import(fl_ctx *ctx, const char *keyset_path, const char *cert_path, struct identity_ca_result *ret);
void identity_ca_result_clear(struct identity_ca_result *r);

/* ---- enrolment ------------------------------------------------------------------------ */

struct identity_session_opts {
        const char *keyset_path;
        const struct token_opts *tok;
        const char *ca_role;     /* NULL: IDENTITY_CA_ROLE */
        const char *hw_type_oid; /* NULL: the CA entry's, else the placeholder */
        const char *db_path;     /* the ledger (resolved path) */
        const char *station, *operator; /* NULL: the ledger's defaults */
};

struct identity_session;

/* Load the keyset and CA, open the ledger (created when missing) and the
 * token (login), find the CA key. */
int identity_session_open(fl_ctx *ctx, const struct identity_session_opts *o, struct identity_session **ret);
void identity_session_close(struct identity_session *s); /* accepts NULL */

struct identity_enroll_req {
        const char *ecid;     /* any form ledger_ecid_parse takes */
        const char *serial;   /* factory serial, or NULL */
        const char *product;  /* NULL: the keyset name */
        const char *csr_path; /* the device's CSR; or */
        enum key_type generate; /* KT_P256/KT_P384: a key pair made in the token */
        bool reissue;
};

enum identity_outcome {
        IDENTITY_ISSUED = 0,
        IDENTITY_ALREADY,  /* the current certificate was returned */
        IDENTITY_REISSUED, /* issued, superseding the previous one */
};

struct identity_enroll_result {
        enum identity_outcome outcome;
        char ecid[2 * IDENTITY_ECID_BYTES + 1];
        char fingerprint[65];
        char serial_hex[41];
        char *subject;
        char *pem;
        size_t pem_len;
        char *key_uri;          /* generated key, else NULL */
        char *superseded;       /* fingerprint of the superseded certificate, else NULL */
        int64_t event_id;
};

/* Enrol one device: idempotent (same ECID, same key, same subject, same
 * CA → the current certificate, IDENTITY_ALREADY); another key or subject
 * for an ECID with a valid certificate is -EEXIST unless reissue. The
 * certificate, the device state (enrolled) and the event are recorded in
 * one ledger transaction; failures after the ECID is known are recorded as
 * events too. */
int identity_enroll(struct identity_session *s, const struct identity_enroll_req *req,
                    struct identity_enroll_result *ret);
void identity_enroll_result_clear(struct identity_enroll_result *r);

struct identity_verify_opts {
        const char *cert_path;
        const char *keyset_path;
        const char *ca_role;     /* NULL: IDENTITY_CA_ROLE */
        const char *hw_type_oid; /* NULL: the CA entry's */
        const char *db_path;     /* NULL: no ledger check */
};

/* `verify cert`: load, check chain and profile, and with a ledger that the
 * certificate is the ECID's current one. <0 when an input cannot be read;
 * otherwise the verdict is in ret (n_problems). */
int identity_verify(fl_ctx *ctx, const struct identity_verify_opts *o, struct identity_check *ret);
