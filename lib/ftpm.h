/* ftpm.h — the host side of NVIDIA's fTPM offline provisioning
 * (ekb-ftpm-luks.md §4): the device serial number, and the derivation chain
 * KDK0 → KDK_NRK → Silicon_ID → fTPM_Seed → Root_Seed → EPS plus the
 * Silicon-ID P-256 key pair, as kdk_gen.py / odm_ekb_gen.py compute them.
 * KDK0, the seeds and the EPS are device secrets: they live only in wiped
 * buffers (struct fl_secret) and never reach a file, a log or the ledger. */
#pragma once

#include <stdint.h>

#include <openssl/types.h>

#include "ekb.h"
#include "internal.h"

#define FTPM_SN_LEN 10 /* Device_SN: OEM_ID (2, big-endian) ‖ SN (8, big-endian) */

/* Device_SN from OEM_ID (≤ 16 bits) and SN (< 2^63, as kdk_gen takes it). */
int ftpm_device_sn(fl_ctx *ctx, uint64_t oem_id, uint64_t sn, unsigned char out[FTPM_SN_LEN]);
/* Parse the 20-hex-digit form ("123400c0ffee12345678") or NVIDIA's 2024
 * file-name form ("1234-00c0ffee12345678"). */
int ftpm_sn_parse(fl_ctx *ctx, const char *s, unsigned char out[FTPM_SN_LEN]);

/* SP 800-108 counter mode with HMAC-SHA256, as the fTPM tools use it: a
 * 4-byte counter, label ‖ 00 ‖ context ‖ [256]₃₂; an empty context is one
 * 0x00 byte. 32 bytes out. */
int ftpm_kbkdf(const unsigned char *key, size_t key_len, const char *label, const unsigned char *context,
               size_t context_len, unsigned char out[32]);

struct ftpm_chain {
        struct fl_secret kdk_nrk;     /* 32 */
        struct fl_secret silicon_id;  /* 32 */
        struct fl_secret ftpm_seed;   /* 32 */
        struct fl_secret root_seed;   /* 64 */
        struct fl_secret eps;         /* 64 */
        struct fl_secret sid_priv;    /* 32: the Silicon-ID P-256 private scalar */
        unsigned char sid_pub[64];    /* X ‖ Y */
};

/* The whole chain for one device from KDK0 (32 bytes), its Device_SN and the
 * EPS seed (32 bytes, EKB tag 92; NULL: stop before the EPS, which stays
 * zero). */
int ftpm_chain_derive(fl_ctx *ctx, const struct fl_secret *kdk0, const unsigned char sn[FTPM_SN_LEN],
                      const unsigned char eps_seed[32], struct ftpm_chain *ret);
void ftpm_chain_clear(struct ftpm_chain *c);

/* The EC EK (TCG default template, P-256) the fTPM creates from this EPS
 * (64 bytes) with TPM2_CreatePrimary, as NVIDIA's host tool derives it: the
 * TPM reference's DRBG seeded from EPS ‖ "Primary Object Creation\0" ‖ the
 * template Name, d = (40 bytes mod (n − 1)) + 1. priv: 32 bytes; pub: X ‖ Y. */
int ftpm_ek_ec_derive(const struct fl_secret *eps, unsigned char priv[32], unsigned char pub[64]);

/* The RSA EK (TCG default template, RSA-2048, e = 65537) from this EPS (64
 * bytes): the same DRBG seeded with the RSA template's Name, feeding the TPM
 * reference's prime candidates, sieve and Miller-Rabin rounds (lib/ftpm.c
 * lists the facts). n: the modulus, big-endian. pkey (NULL: not wanted): the
 * key pair, to sign the EK CSR with; a device secret, EVP_PKEY_free it soon.
 * -EINVAL: the EPS is not 64 bytes; -EIO: no key (never a different one). */
int ftpm_ek_rsa_derive(const struct fl_secret *eps, unsigned char n[256], EVP_PKEY **pkey);

/* ---- EK certificates --------------------------------------------------------- */

struct token_opts;

struct ftpm_ek_issue {
        const char *keyset_path;
        const struct token_opts *tok;
        const char *ca_role;             /* NULL: ftpm-ek-ca */
        const unsigned char *sn;         /* FTPM_SN_LEN bytes: the device the CSR must name */
        const char *csr_name;
        const unsigned char *csr;        /* DER or PEM, as NVIDIA's EK CSR tool writes it */
        size_t csr_len;
};

struct ftpm_ek_result {
        unsigned char *der;
        size_t der_len;
        char sha256[65];
        char kind[4];                    /* "rsa" | "ec" */
};

/* Issue an EK certificate with the keyset's EK CA (key in the token) for an
 * EK CSR: its signature must verify (NVIDIA requires the CA to check the
 * fTPM's residency), its subject must be C=US, O=ftpm corp,
 * CN=<SN>_ftpm-ek-cert for this device, its key RSA-2048 or P-256, and it
 * must not ask for a CA. The certificate copies the CSR's requested
 * extensions (key usage, CA:FALSE, the TPM SAN), adds the authority key
 * identifier, and takes as serial the SHA-1 of the subject name (NVIDIA's
 * rule: one device's RSA and EC certificates share it). Validity: now to
 * 99991231235959Z (no expiry, as for device identities). */
int ftpm_ek_cert_issue(fl_ctx *ctx, const struct ftpm_ek_issue *req, struct ftpm_ek_result *ret);
void ftpm_ek_result_clear(struct ftpm_ek_result *r);

/* The EK CSR NVIDIA's ftpm_manufacturer_gen_ek_csr tool makes (§4.4):
 * subject C=US, O=ftpm corp, CN=<SN>_ftpm-ek-cert; extension request key
 * usage (critical; RSA keyEncipherment, EC digitalSignature + keyAgreement),
 * CA:FALSE (critical), the TPM directoryName SAN; signed by the EK itself
 * with SHA-256. For the RSA EK (deterministic signature) the bytes equal
 * NVIDIA's. *der is malloc'd. */
int ftpm_ek_csr(fl_ctx *ctx, EVP_PKEY *ek, const unsigned char sn[FTPM_SN_LEN], unsigned char **der, size_t *len);

struct ftpm_ek_derive {
        const char *keyset_path;         /* holds ftpm-kdk0-<SN> (ftpm-device) and the EK CA */
        const struct token_opts *tok;
        const char *ca_role;             /* NULL: ftpm-ek-ca */
        const unsigned char *sn;         /* FTPM_SN_LEN bytes */
        /* 32 bytes: EKB tag 92. NULL: a fresh one from the token's RNG, which
         * then exists only inside the per-device EKB (ekb required). */
        const struct fl_secret *eps_seed;
        /* Non-NULL: also build the device's EKB from the keyset (tags 1, 2,
         * 4, then ekb->extra, then 91 SN, 92 EPS seed, 93 RSA EK certificate,
         * 94 EC EK certificate, as oem_ekb_gen.py orders them). */
        const struct ekb_build_req *ekb;
};

struct ftpm_ek_pair {
        struct ftpm_ek_result rsa, ec;   /* the certificates */
        unsigned char *rsa_csr, *ec_csr; /* the CSRs they were issued for (DER) */
        size_t rsa_csr_len, ec_csr_len;
        struct ekb_result ekb;           /* when req->ekb */
};

/* Both EK certificates of one device without its secrets leaving the
 * process: KDK0 read from the token (role ftpm-kdk0-<SN>), the chain to the
 * EPS with this EPS seed, the RSA and EC EK key pairs, their CSRs signed by
 * the EKs, and the certificates issued by the EK CA as ftpm_ek_cert_issue
 * does; with req->ekb, the per-device EKB as well, so that a generated EPS
 * seed never exists outside it. KDK0, the EPS seed, the EPS and the EK
 * private keys are wiped before returning. */
int ftpm_ek_certs_derive(fl_ctx *ctx, const struct ftpm_ek_derive *req, struct ftpm_ek_pair *ret);
void ftpm_ek_pair_clear(struct ftpm_ek_pair *p);

/* ---- per-device provisioning ---------------------------------------------------- */

struct ftpm_device_req {
        const char *keyset_path;         /* a t234 keyset; gains role ftpm-kdk0-<SN> */
        const struct token_opts *tok;
        uint64_t oem_id, sn;
        /* Lab reproduction only: KDK0 from a hex file (e.g. NVIDIA's
         * kdk_db.csv value) instead of the token's generator; refused for a
         * production keyset. */
        const char *kdk0_import;
        const char *fuse_out;            /* the per-device fuse XML (0600) */
        const char *ecid;                /* NULL, or the board's ECID, recorded with the role (the station
                                          * checks that an SN is never given to a second board) */
};

struct ftpm_device_result {
        unsigned char sn[FTPM_SN_LEN];
        unsigned char sid_pub[64];       /* Silicon-ID public key X ‖ Y (kdk_gen's pubkey_db) */
        char plan_sha256[65];
        char role[40];
};

/* Make one device's KDK0 in the token (AES-256, extractable because it is
 * burned as the Kdk0 fuse), record it in the keyset as role
 * ftpm-kdk0-<SN> (label, URI, kcv; never the value), derive the Silicon-ID
 * public key from it, and write the per-device fuse plan: OdmId = SN,
 * OdmInfo = OEM_ID, Kdk0 = KDK0, checked by the fuse-xml rules. All or
 * nothing. */
int ftpm_device_create(fl_ctx *ctx, const struct ftpm_device_req *req, struct ftpm_device_result *ret);
/* The per-device fuse plan of a device ftpm_device_create made earlier,
 * written again (0600, never over an existing file) from the KDK0 in the
 * token (role ftpm-kdk0-<SN>): the same plan, or -EBADMSG when its hash is
 * not the one the role recorded. -ENOENT: no such role. ret->role,
 * ret->plan_sha256, ret->sn, ret->sid_pub are filled; ret_ecid (NULL: not
 * wanted) gets the ECID recorded with the role, or "" when none was. */
int ftpm_device_plan_write(fl_ctx *ctx, const struct ftpm_device_req *req, struct ftpm_device_result *ret,
                           char ret_ecid[33]);

/* ---- the fTPM records of a per-device EKB ---------------------------------------- */

struct ftpm_ekb_check {
        const struct keyset *ks;         /* NULL: no chain or key check */
        const char *keyset_path;         /* for the EK CA certificate beside it; NULL: chain not checked */
        fl_token *tok;                   /* open on ks's token; NULL: the EK keys are not re-derived */
        const char *ca_role;             /* NULL: ftpm-ek-ca */
        const unsigned char *sn;         /* FTPM_SN_LEN bytes tag 91 must equal; NULL: any well-formed SN */
};

/* Check the fTPM records of a decrypted EKB (ekb_records_parse's output):
 * tag 91 is a 10-byte Device_SN (OEM_ID ‖ SN < 2^63), equal to chk->sn when
 * given; tags 93/94 are X.509 certificates (DER) for the RSA-2048 / P-256
 * EK with the subject C=US, O=ftpm corp, CN=<SN>_ftpm-ek-cert of the SN in
 * tag 91 and the serial SHA-1(subject), not CA certificates, issued by the
 * keyset's EK CA; and, when the keyset holds ftpm-kdk0-<SN> and the image
 * the EPS seed (tag 92, 32 bytes), their public keys are the EKs KDK0 and
 * that seed give. Every defect is a problem in rep naming the record (a
 * record that is no certificate at all also sets rep->malformed); the notes
 * of rep->recs[i] (which correspond to recs[i]) say what was checked. KDK0,
 * the EPS seed and the EPS are never in a message and are wiped. Returns <0
 * only when the check could not run (token, memory). */
int ftpm_ekb_records_check(fl_ctx *ctx, const struct ftpm_ekb_check *chk, const unsigned char *plain,
                           const struct ekb_rec *recs, size_t n, struct ekb_report *rep);
