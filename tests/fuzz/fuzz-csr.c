/* fuzz-csr.c — the enrolment inputs that come from devices: CSRs
 * (identity_csr_parse: PKCS#10 decode, self-signature, key policy) and the
 * hardwareModuleName decoder. The profile checker behind `verify cert` has
 * its own target (fuzz-idevid.c) so each fits the suite's time limit under
 * ASan. Any input must give 0 or a clean error, never a crash, a leak or an
 * out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        X509_REQ *req = NULL;
        char *oid = NULL;
        unsigned char *ser = NULL;
        size_t sl = 0;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;

        r = identity_csr_parse(ctx, "fuzz.csr", data, size, &req);
        fuzz_check_rc(r);
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

        fl_ctx_free(ctx);
        return 0;
}
