/* fuzz-csr.c — the enrolment inputs that come from devices and users:
 * CSRs (identity_csr_parse: PKCS#10 decode, self-signature, key policy),
 * the hardwareModuleName decoder, and the IDevID profile checker behind
 * `verify cert` (any certificate, checked against a fixed CA). Any input
 * must give 0 or a clean error, never a crash, a leak or an out-of-bounds
 * read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca;

static void check_rc(int r)
{
        if (r != 0 && r != -EINVAL && r != -EBADMSG && r != -ENOMEM)
                abort();
}

static void ca_init(fl_ctx *ctx)
{
        struct x509_cert_spec spec = { .subject = "/O=Fuzz/CN=Fuzz Device CA", .not_after = IDENTITY_NOT_AFTER,
                                       .ca = 1, .path_len = 0, .bc_critical = true,
                                       .key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN, .ski = true, .aki = true };
        EVP_PKEY *k = EVP_EC_gen("P-256");
        x509_signer *s = NULL;

        if (!k || x509_signer_soft(ctx, k, &s) < 0 || x509_cert_build(ctx, &spec, s, &ca) < 0)
                abort();
        x509_signer_free(s);
        EVP_PKEY_free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        X509_REQ *req = NULL;
        X509 *x = NULL;
        char *oid = NULL;
        unsigned char *ser = NULL;
        size_t sl = 0;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        if (!ca)
                ca_init(ctx);

        r = identity_csr_parse(ctx, "fuzz.csr", data, size, &req);
        check_rc(r);
        if (r == 0) {
                /* What is accepted passed the key policy and its signature. */
                if (identity_key_check(ctx, "again", X509_REQ_get0_pubkey(req)) != 0 ||
                    X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1)
                        abort();
                X509_REQ_free(req);
        }

        r = identity_hmn_parse(data, size, &oid, &ser, &sl);
        if (r == 0) {
                unsigned char *der = NULL;
                size_t len = 0;
                /* A decoded value re-encodes to exactly the input (DER). */
                if (identity_hmn_der(ctx, oid, ser, sl, &der, &len) == 0 && (len != size || memcmp(der, data, size)))
                        abort();
                free(der);
                free(oid);
                free(ser);
        } else if (r != -EINVAL && r != -ENOMEM) {
                abort();
        }

        r = x509_cert_parse(ctx, "fuzz.crt", data, size, &x);
        check_rc(r);
        if (r == 0) {
                struct identity_check c;
                if (identity_cert_check(ctx, x, ca, NULL, &c) == 0) {
                        /* A certificate from another CA never passes. */
                        if (c.chain_ok && X509_check_issued(ca, x) != X509_V_OK)
                                abort();
                        identity_check_clear(&c);
                }
                X509_free(x);
        }
        fl_ctx_free(ctx);
        return 0;
}
