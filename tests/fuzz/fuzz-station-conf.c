/* fuzz-station-conf.c — the station settings parser (a file an operator or
 * an installer writes). Any input must give 0 or a clean -EINVAL with a
 * message naming the file (or -EPERM, naming it too: ftpm = yes without
 * the acknowledgement of the unverified bits is an interlock, exit 6),
 * never a crash, a leak or an out-of-bounds read; what parses must have
 * every required setting. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "station.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fl_ctx *ctx = NULL;
        struct station_conf c;
        int r;

        if (fl_ctx_new(&ctx) < 0)
                return 0;
        r = station_conf_parse(ctx, "fuzz.conf", (const char *)data, size, &c);
        if (r == 0) {
                if (!c.template_path || !c.keyset || !c.package || !c.plan || !c.station_id || !c.ledger ||
                    !c.log_dir || !c.cert_dir || !c.ports.n)
                        abort();
                if (c.enroll == STATION_ENROLL_CSR && !c.csr_dir)
                        abort();
                station_conf_clear(&c);
        } else if (r == -EINVAL || r == -EPERM) {
                const char *m = fl_ctx_last_error(ctx);
                if (!m || strncmp(m, "fuzz.conf", 9))
                        abort();
        } else if (r != -ENOMEM) {
                abort();
        }
        fl_ctx_free(ctx);
        return 0;
}
