/* fuzz-rcm-ports.c — the USB port allow-list and instance strings a station
 * takes from its command line and $FUSELINE_PORTS (lib/rcm.c). Beyond "no
 * crash", checks what must hold for any input: an accepted instance is
 * shorter than RCM_INSTANCE_MAX and prints back identically from its
 * numbers; an accepted list holds only accepted instances, each once, each
 * allowed, at most RCM_PORTS_MAX; every refusal says why and leaves the list
 * empty. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "rcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_ctx *ctx;

/* Reprint an accepted instance from its numbers: "<bus>-<p>[.<p>…]". */
static void check_canonical(const char *s)
{
        char again[RCM_INSTANCE_MAX * 2] = "";
        const char *p = s;
        size_t len = 0;
        int depth = 0;

        if (strlen(s) >= RCM_INSTANCE_MAX)
                abort();
        while (*p) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p || v < 1 || v > 255)
                        abort();
                len += (size_t)snprintf(again + len, sizeof(again) - len, "%ld", v);
                if (*end == '-' && depth == 0)
                        len += (size_t)snprintf(again + len, sizeof(again) - len, "-");
                else if (*end == '.' && depth > 0)
                        len += (size_t)snprintf(again + len, sizeof(again) - len, ".");
                else if (*end)
                        abort();
                depth++;
                p = *end ? end + 1 : end;
        }
        if (depth < 2 || depth > RCM_DEPTH_MAX + 1 || strcmp(again, s))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct rcm_ports p = { 0 };
        char *s;

        if (!ctx && fl_ctx_new(&ctx) < 0)
                abort();
        s = fuzz_cstr(data, size);
        if (!s)
                abort();

        fl_err_clear(ctx);
        if (rcm_instance_check(ctx, s) == 0)
                check_canonical(s);
        else if (!fl_ctx_last_error(ctx))
                abort();

        fl_err_clear(ctx);
        if (rcm_ports_parse(ctx, s, &p) == 0) {
                if (p.n == 0 || p.n > RCM_PORTS_MAX)
                        abort();
                for (size_t i = 0; i < p.n; i++) {
                        if (rcm_instance_check(ctx, p.v[i]) != 0 || !rcm_port_allowed(&p, p.v[i]))
                                abort();
                        check_canonical(p.v[i]);
                        for (size_t j = 0; j < i; j++)
                                if (!strcmp(p.v[i], p.v[j]))
                                        abort();
                }
        } else if (!fl_ctx_last_error(ctx) || p.n != 0 || p.v) {
                abort();
        }
        rcm_ports_clear(&p);
        free(s);
        return 0;
}
