/* fuzz-uefi.c — every parser of outside input in lib/uefi.c: GUID and
 * timestamp strings, EFI_TIME bytes, signature lists, .auth files (with a
 * signature check against the certificate they carry), uefi_keys.conf,
 * .dts text and .dtbo blobs. Any input must give 0 or a clean error, never
 * a crash, a leak or an out-of-bounds read; what parses must round-trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "uefi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* -ENOENT too: a .dts or .dtbo may lack the node or property asked for. */
static void check_rc(int r)
{
        if (r != -ENOENT)
                fuzz_check_rc(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        char *s = fuzz_cstr(data, size);
        struct uefi_esl_entry *e = NULL;
        struct uefi_conf conf = { 0 };
        struct uefi_auth a;
        struct efi_time t;
        unsigned char *got = NULL;
        const unsigned char *v;
        size_t n = 0;
        efi_guid g;
        int r;

        if (!s || fl_ctx_new(&ctx) < 0) {
                free(s);
                return 0;
        }

        r = uefi_guid_parse(ctx, "fuzz", s, &g);
        check_rc(r);
        if (r == 0) {
                char txt[37];
                efi_guid g2;
                uefi_guid_format(&g, txt);
                if (uefi_guid_parse(ctx, "again", txt, &g2) != 0 || !uefi_guid_eq(&g, &g2))
                        abort();
        }
        r = uefi_time_parse(ctx, "fuzz", s, &t);
        check_rc(r);
        if (r == 0) {
                char txt[20];
                struct efi_time t2;
                uint8_t b[16];
                uefi_time_format(&t, txt);
                if (uefi_time_parse(ctx, "again", txt, &t2) != 0 || memcmp(&t, &t2, sizeof(t)))
                        abort();
                uefi_time_encode(&t, b);
                if (uefi_time_decode(ctx, "again", b, &t2) != 0 || memcmp(&t, &t2, sizeof(t)))
                        abort();
        }
        if (size >= 16)
                check_rc(uefi_time_decode(ctx, "fuzz", data, &t));

        r = uefi_esl_parse(ctx, "fuzz", data, size, &e, &n);
        check_rc(r);
        for (size_t i = 0; r == 0 && i < n; i++)
                if (e[i].data < data || e[i].data + e[i].len > data + size)
                        abort();
        free(e);

        r = uefi_auth_parse(ctx, "fuzz", data, size, &a);
        check_rc(r);
        if (r == 0) {
                STACK_OF(X509) *certs = NULL;
                if (a.payload + a.payload_len != data + size || a.sig + a.sig_len > a.payload)
                        abort();
                /* Verify against the certificate it carries (the corpus
                 * files are PK variables, so unmodified ones verify). */
                if (x509_p7_certs(ctx, "fuzz", a.sig, a.sig_len, true, &certs) == 0) {
                        if (sk_X509_num(certs) > 0)
                                check_rc(uefi_auth_verify(ctx, "fuzz", UEFI_VAR_PK, UEFI_ATTRS_REPLACE, data, size,
                                                          sk_X509_value(certs, 0)));
                        sk_X509_pop_free(certs, X509_free);
                }
        }

        r = uefi_conf_parse(ctx, "fuzz", s, size, &conf);
        check_rc(r);
        for (size_t i = 0; r == 0 && i < conf.n; i++)
                if (uefi_conf_get(&conf, conf.vars[i].name) == NULL)
                        abort();
        uefi_conf_free(&conf);

        r = uefi_dts_get(ctx, "fuzz", s, size, "PKDefault", &got, &n);
        check_rc(r);
        free(got);
        got = NULL;
        r = uefi_fdt_get(ctx, "fuzz", data, size, "/a", "data", &v, &n);
        check_rc(r);
        if (r == 0 && (v < data || v + n > data + size))
                abort();
        r = uefi_fdt_get(ctx, "fuzz", data, size, "/fragment@0/__overlay__/firmware/uefi/variables/gEfiGlobalVariableGuid/PKDefault",
                         "data", &v, &n);
        check_rc(r);

        fl_ctx_free(ctx);
        free(s);
        return 0;
}
