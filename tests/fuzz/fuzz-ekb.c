/* fuzz-ekb.c — the EKB image parser behind `verify ekb` (ekb_parse), the
 * record-stream walker it runs on decrypted content (ekb_records_parse, fed
 * the input as if it were plaintext), the damage locator (with a fixed
 * key), and the other outside text this work parses: the ECID of
 * luks-passphrase and the fTPM serial number; the fTPM record checks
 * (SN, EK certificates) on a parsed record stream. Any input must give 0 or a
 * clean refusal; every pointer a successful parse returns must lie inside
 * the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ekb.h"
#include "ftpm.h"
#include "fuzz-util.h"
#include "luks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *data, size_t size, const unsigned char *p, size_t n)
{
        if (p < data || n > size || (size_t)(p - data) > size - n)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const unsigned char key[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        fl_ctx *ctx = NULL;
        struct ekb_image im;
        struct ekb_rec recs[EKB_MAX_RECORDS];
        size_t n = 0;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        r = ekb_parse(ctx, "fuzz", data, size, &im);
        fuzz_check_rc(r);
        if (r == 0) {
                long off;
                bool tagd;
                inside(data, size, im.cmac, 16);
                inside(data, size, im.iv, 16);
                inside(data, size, im.ct, im.enc_len);
                inside(data, size, im.mac_data, im.mac_len);
                if (im.fv)
                        inside(data, size, im.fv, 16);
                if (im.enc_len % 16 || !im.enc_len)
                        abort();
                if (ekb_locate_damage(key, im.mac_data, im.mac_len, im.cmac, &off, &tagd) < 0)
                        abort();
                if (off >= 0 && (size_t)off >= (tagd ? 16 : im.mac_len))
                        abort();
        }
        for (enum ekb_format f = EKB_FMT_LEGACY; f <= EKB_FMT_2_0; f++) {
                r = ekb_records_parse(ctx, "fuzz", f, FL_CHIP_T234, data, size, recs, EKB_MAX_RECORDS, &n);
                fuzz_check_rc(r);
                for (size_t i = 0; r == 0 && i < n; i++)
                        inside(data, size, data + recs[i].off, recs[i].len);
                /* The fTPM record checks (tags 91-94: SN, EK certificates)
                 * without a keyset or token: the parsing part of verify ekb. */
                if (r == 0 && f == EKB_FMT_1_0) {
                        struct ekb_report rep = { 0 };
                        struct ftpm_ekb_check chk = { 0 };
                        rep.n_recs = n;
                        for (size_t i = 0; i < n; i++) {
                                rep.recs[i].tag = recs[i].tag;
                                rep.recs[i].ok = true;
                        }
                        if (ftpm_ekb_records_check(ctx, &chk, data, recs, n, &rep) < 0)
                                abort();
                        if (rep.malformed > rep.n_problems)
                                abort();
                        for (size_t i = 0; i < rep.n_problems; i++)
                                if (strncmp(rep.problems[i], "tag 9", 5))
                                        abort();
                        ekb_report_clear(&rep);
                }
        }
        {
                char *txt = fuzz_cstr(data, size), ecid[LUKS_ECID_STR_MAX + 1];
                unsigned char sn[FTPM_SN_LEN];
                if (txt) {
                        r = luks_ecid_context(ctx, txt, ecid);
                        fuzz_check_rc(r);
                        if (r == 0 && strlen(ecid) != 32 && strlen(ecid) != 33 && strlen(ecid) != 34)
                                abort();
                        fuzz_check_rc(ftpm_sn_parse(ctx, txt, sn));
                        free(txt);
                }
        }
        fl_ctx_free(ctx);
        return 0;
}
