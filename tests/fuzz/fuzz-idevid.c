/* fuzz-idevid.c — the IDevID profile checker behind `fuseline verify
 * cert` (identity_cert_check): any certificate, checked against a fixed
 * software CA. Any input must give 0 or a clean error, never a crash, a
 * leak or an out-of-bounds read; a certificate the CA did not issue never
 * passes the chain check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "fuzz-util.h"
#include "identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca;

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
        X509 *x = NULL;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        if (!ca)
                ca_init(ctx);

        r = x509_cert_parse(ctx, "fuzz.crt", data, size, &x);
        fuzz_check_rc(r);
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
