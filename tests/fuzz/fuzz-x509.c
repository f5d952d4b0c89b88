/* fuzz-x509.c — the certificate, CSR, subject-name and PKCS#7 readers of
 * lib/x509.c (certificates and signatures come from users: --append,
 * keyset certificate paths, .auth CertData). Any input must give 0 or a
 * clean error, never a crash, a leak or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        X509 *x = NULL;
        X509_REQ *req = NULL;
        X509_NAME *name = NULL;
        STACK_OF(X509) *certs = NULL;
        char *s = fuzz_cstr(data, size);
        int r;

        if (!s || fl_ctx_new(&ctx) < 0) {
                free(s);
                return 0;
        }

        r = x509_cert_parse(ctx, "fuzz", data, size, &x);
        fuzz_check_rc(r);
        if (r == 0) {
                unsigned char *der = NULL;
                size_t n = 0;
                X509 *y = NULL;
                char hex[65];
                /* What parses must re-encode and parse to the same certificate. */
                if (x509_cert_der(x, &der, &n) != 0 || x509_cert_parse(ctx, "again", der, n, &y) != 0 ||
                    X509_cmp(x, y) != 0 || x509_cert_sha256(x, hex) != 0)
                        abort();
                OPENSSL_free(der);
                X509_free(y);
        }
        r = x509_csr_parse(ctx, "fuzz", data, size, &req);
        fuzz_check_rc(r);
        X509_REQ_free(req);

        r = x509_name_parse(ctx, s, &name);
        fuzz_check_rc(r);
        if (r == 0) {
                char *txt = x509_name_text(name);
                free(txt);
                X509_NAME_free(name);
        }

        for (int bare = 0; bare <= 1; bare++) {
                r = x509_p7_certs(ctx, "fuzz", data, size, bare, &certs);
                fuzz_check_rc(r);
                if (r == 0) {
                        for (int i = 0; i < sk_X509_num(certs) && i < 2; i++)
                                fuzz_check_rc(x509_p7_verify(ctx, "fuzz", data, size, bare, "x", 1,
                                                        sk_X509_value(certs, i)));
                        sk_X509_pop_free(certs, X509_free);
                        certs = NULL;
                }
                if (x)
                        fuzz_check_rc(x509_p7_verify(ctx, "fuzz", data, size, bare, data, size, x));
        }
        X509_free(x);
        fl_ctx_free(ctx);
        free(s);
        return 0;
}
