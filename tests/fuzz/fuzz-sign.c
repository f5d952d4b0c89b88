/* fuzz-sign.c — the parsers of outside input in lib/sign.c: signature files
 * in every scheme/format (raw, tegra, DER, PEM, auto-detection), ECDSA DER,
 * and batch lists. Byte 0 picks the parser, byte 1 the scheme, byte 2 the
 * format and expected size; the rest is the input. Every accepted signature
 * must re-encode and decode to the same raw bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum sign_scheme schemes[] = {
        SCHEME_RSA_PSS_SHA256, SCHEME_RSA_PSS_SHA512, SCHEME_RSA_PKCS1_SHA256, SCHEME_ECDSA_SHA256,
        SCHEME_ECDSA_SHA384,   SCHEME_ECDSA_SHA512,   SCHEME_ED25519,          SCHEME_HMAC_SHA256,
        SCHEME_AES_CMAC,       SCHEME_RSA_PSS_SHA512_SALT32,
};
static const size_t raw_lens[] = { 16, 32, 64, 96, 132, 256, 384, 512 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static fl_ctx *ctx;
        enum sign_scheme s;
        enum sign_format f;
        size_t raw_len;

        if (!ctx && fl_ctx_new(&ctx) < 0)
                abort();
        if (size < 3)
                return 0;
        s = schemes[data[1] % (sizeof(schemes) / sizeof(schemes[0]))];
        f = (enum sign_format)(data[2] % 5);
        raw_len = raw_lens[(data[2] / 5) % (sizeof(raw_lens) / sizeof(raw_lens[0]))];
        switch (data[0] % 3) {
        case 0: {
                unsigned char *raw = NULL, *enc = NULL, *back = NULL;
                size_t rl = 0, el = 0, bl = 0;
                if (sign_decode(ctx, "fuzz", s, f, raw_len, data + 3, size - 3, &raw, &rl) == 0) {
                        enum sign_format ef = f == SIGFMT_AUTO ? SIGFMT_RAW : f;
                        if (sign_encode(ctx, s, ef, raw, rl, &enc, &el) == 0) {
                                if (sign_decode(ctx, "fuzz", s, ef, raw_len, enc, el, &back, &bl) != 0 || bl != rl ||
                                    memcmp(back, raw, rl))
                                        abort();
                        }
                }
                free(back);
                free(enc);
                free(raw);
                break;
        }
        case 1: {
                unsigned char *raw = NULL;
                size_t rl = 0;
                static const size_t fields[] = { 32, 48, 66 };
                if (sign_ecdsa_der_to_raw(ctx, data + 3, size - 3, fields[data[1] % 3], &raw, &rl) == 0) {
                        unsigned char *der = NULL;
                        size_t dl = 0;
                        /* Strict DER: what was accepted re-encodes to itself. */
                        if (sign_ecdsa_raw_to_der(ctx, raw, rl, &der, &dl) != 0 || dl != size - 3 ||
                            memcmp(der, data + 3, dl))
                                abort();
                        free(der);
                }
                free(raw);
                break;
        }
        default: {
                struct sign_batch_entry *e = NULL;
                size_t n = 0;
                if (sign_batch_parse(ctx, "fuzz", (const char *)data + 3, size - 3, &e, &n) == 0) {
                        for (size_t i = 0; i < n; i++)
                                if (!e[i].in || !e[i].out || !*e[i].in || !*e[i].out)
                                        abort();
                        sign_batch_free(e, n);
                }
                break;
        }
        }
        fl_err_clear(ctx);
        return 0;
}
