/* x509.h — X.509 certificates, CSRs and PKCS#7/CMS SignedData built with
 * OpenSSL whose signatures come from a key that stays in a PKCS#11 token
 * (C_Sign), or from a software key (tests, tools). The results are ordinary
 * DER objects any verifier accepts. Shared by the UEFI keys (uefi.*) and
 * the device identity certificates (identity.*).
 *
 * Signing: RSA PKCS#1 v1.5 (the token gets CKM_RSA_PKCS over a DigestInfo
 * made here, so only a hash leaves the host and modules without
 * hash-and-sign mechanisms work) and ECDSA (CKM_ECDSA over the hash; the
 * raw r‖s is DER-encoded here). Every signature is checked against the
 * public key before it is used, so a wrong key or a faulty token is caught
 * at the source. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "internal.h"
#include "p11.h"

/* Hash for certificate/CSR/CMS signatures. SHA-256 is 0 so that a
 * zero-initialised spec means SHA-256. */
enum x509_hash {
        X509H_SHA256 = 0,
        X509H_SHA384,
        X509H_SHA512,
};

const EVP_MD *x509_hash_md(enum x509_hash h);
/* "sha256" / "sha384" / "sha512"; -EINVAL otherwise. */
int x509_hash_from_name(const char *name, enum x509_hash *ret);

/* ---- signers ---------------------------------------------------------------- */

typedef struct x509_signer x509_signer;

/* A signer for a private key object in a token (borrowed: tok must outlive
 * the signer). Its public key is read from the token. RSA or EC only. */
int x509_signer_token(fl_ctx *ctx, fl_token *tok, token_obj key, x509_signer **ret);
/* A signer for a software private key (reference taken). */
int x509_signer_soft(fl_ctx *ctx, EVP_PKEY *key, x509_signer **ret);
void x509_signer_free(x509_signer *s); /* accepts NULL */
/* The public key (borrowed; valid while the signer lives). */
EVP_PKEY *x509_signer_pubkey(const x509_signer *s);

/* Sign data (hashed here with h): RSA PKCS#1 v1.5 or DER ECDSA-Sig-Value.
 * The signature is verified against the public key before it is returned.
 * *ret_sig is malloc'd. */
int x509_signer_sign(x509_signer *s, enum x509_hash h, const void *data, size_t len, unsigned char **ret_sig,
                     size_t *ret_len);

/* ---- names and certificates ------------------------------------------------ */

/* Parse "/O=Acme Robotics/CN=Jetson CA" (attribute names OpenSSL knows: C,
 * ST, L, O, OU, CN, serialNumber, emailAddress, DC, UID, …; "\/" and "\\"
 * escape a slash and a backslash; values are UTF-8). Every problem is
 * -EINVAL naming the component. */
int x509_name_parse(fl_ctx *ctx, const char *s, X509_NAME **ret);
/* One-line RFC 2253 form (malloc'd), NULL on allocation failure. */
char *x509_name_text(const X509_NAME *name);

/* Parse exactly one certificate, PEM or DER. `name` (a file name) is only
 * used in messages. -EINVAL when it is not a certificate, or there is
 * trailing data. */
int x509_cert_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509 **ret);
/* Read and parse a certificate file (at most 1 MiB). */
int x509_cert_load(fl_ctx *ctx, const char *path, X509 **ret);
/* DER and PEM encodings (malloc'd). */
int x509_cert_der(X509 *cert, unsigned char **ret, size_t *ret_len);
int x509_cert_pem(X509 *cert, char **ret, size_t *ret_len);
/* SHA-256 of the DER certificate, lower-case hex (65 bytes with the NUL). */
int x509_cert_sha256(X509 *cert, char out[65]);
/* Whether the certificate carries exactly this public key. */
bool x509_cert_has_key(X509 *cert, EVP_PKEY *pkey);

enum x509_san_type {
        X509_SAN_DNS,
        X509_SAN_URI,
        X509_SAN_EMAIL,
        X509_SAN_IP,        /* textual IPv4/IPv6 address */
        X509_SAN_OTHERNAME, /* oid + DER of the value (e.g. IEEE 802.1AR hardwareModuleName) */
};

struct x509_san {
        enum x509_san_type type;
        const char *value;        /* DNS/URI/EMAIL/IP */
        const char *oid;          /* OTHERNAME: type-id, dotted decimal */
        const unsigned char *der; /* OTHERNAME: DER of the value ([0] EXPLICIT is added) */
        size_t der_len;
};

/* What a certificate says. A zeroed spec plus subject and days gives a
 * self-signed certificate with no extensions but SKI/AKI if asked. */
struct x509_cert_spec {
        const char *subject;            /* "/O=…/CN=…"; or */
        const X509_NAME *subject_name;  /* taken verbatim (e.g. from a CSR) */
        EVP_PKEY *pubkey;               /* subject key; NULL: the signer's (self-signed) */
        X509 *issuer;                   /* NULL: self-signed; else the CA cert (its key must be the signer's) */
        const unsigned char *serial;    /* big-endian; NULL: 16 random bytes, positive, top byte non-zero */
        size_t serial_len;              /* 1..20 */
        time_t not_before;              /* 0: now */
        time_t not_after;               /* 0: not_before + days */
        unsigned days;                  /* used when not_after is 0; must then be > 0 */
        enum x509_hash hash;
        int ca;                         /* basicConstraints: -1 absent, 0 CA:FALSE, 1 CA:TRUE */
        int path_len;                   /* with ca == 1: -1 none, else pathLenConstraint */
        bool bc_critical;
        unsigned key_usage;             /* KU_* bits of <openssl/x509v3.h>; 0: absent; always critical */
        const char *ext_key_usage;      /* "clientAuth,serverAuth,1.3.6.1.5.5.7.3.2"; NULL: absent */
        bool ski, aki;                  /* subjectKeyIdentifier (SHA-1 of the key), authorityKeyIdentifier */
        const struct x509_san *san;
        size_t n_san;
        bool san_critical;              /* RFC 5280: critical when the subject is empty */
        /* Added verbatim after the extensions above (e.g. a CSR's requested
         * extensions a CA copies); must not repeat one of them. */
        const STACK_OF(X509_EXTENSION) *extra_exts;
};

/* Build and sign a certificate. The result is verified with the issuer's
 * (or its own) public key before it is returned. */
int x509_cert_build(fl_ctx *ctx, const struct x509_cert_spec *spec, x509_signer *signer, X509 **ret);

/* A PKCS#10 request for the signer's own key (proof of possession). */
struct x509_csr_spec {
        const char *subject;
        enum x509_hash hash;
        unsigned key_usage;
        const char *ext_key_usage;
        const struct x509_san *san;
        size_t n_san;
};
int x509_csr_build(fl_ctx *ctx, const struct x509_csr_spec *spec, x509_signer *signer, X509_REQ **ret);
/* Parse a CSR (PEM or DER) and check its self-signature; -EBADMSG when the
 * signature is wrong, -EINVAL when it is not a CSR. */
int x509_csr_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, X509_REQ **ret);
int x509_csr_der(X509_REQ *req, unsigned char **ret, size_t *ret_len);
int x509_csr_pem(X509_REQ *req, char **ret, size_t *ret_len);

/* ---- PKCS#7 / CMS SignedData ------------------------------------------------- */

/* The UEFI authenticated-variable profile (efitools sign-efi-sig-list):
 * detached SHA-256 over data, no signed attributes, the signer certificate
 * included, RSA → rsaEncryption; serialised as the bare SignedData (no
 * ContentInfo). With an RSA key the output is deterministic and matches
 * OpenSSL's PKCS7_sign(NOATTR|DETACHED|BINARY) + i2d_PKCS7_SIGNED. */
int x509_p7_sign_bare(fl_ctx *ctx, x509_signer *signer, X509 *cert, const void *data, size_t len,
                      unsigned char **ret_der, size_t *ret_len);

/* A detached signature as `openssl cms -sign -binary -outform der` makes
 * it: ContentInfo(SignedData) with signed attributes contentType,
 * signingTime (signing_time; 0: now) and messageDigest, the signer
 * certificate included. */
int x509_p7_sign_detached(fl_ctx *ctx, x509_signer *signer, X509 *cert, enum x509_hash h, const void *data,
                          size_t len, time_t signing_time, unsigned char **ret_der, size_t *ret_len);

/* Verify a detached PKCS#7 signature over data made by the key of `signer`
 * (only that certificate is used; no chain building, no time checks — the
 * caller decides which certificate is trusted). der is a ContentInfo or,
 * with bare, a bare SignedData. 0 when valid, -EBADMSG (message saying
 * why) when not, -EINVAL when der does not parse. */
int x509_p7_verify(fl_ctx *ctx, const char *name, const unsigned char *der, size_t der_len, bool bare,
                   const void *data, size_t len, X509 *signer);

/* The certificates a SignedData carries (reference-counted copies in a new
 * stack; free with sk_X509_pop_free(…, X509_free)). */
int x509_p7_certs(fl_ctx *ctx, const char *name, const unsigned char *der, size_t der_len, bool bare,
                  STACK_OF(X509) **ret);
