/* rcm-wait-poll.c — runs rcm_wait's polling path (lib/rcm.c) directly, so
 * the tests cover it on a machine whose libusb has hot-plug support (where
 * `fuseline devices --wait` takes the hot-plug path).
 *
 *   rcm-wait-poll SECONDS [PORT-LIST]
 *
 * Prints "polling" on stderr before it starts, then the new device as
 * "INSTANCE CHIP MODULE" on stdout. Exit 0, 4 on timeout, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include "rcm.h"

int main(int argc, char **argv)
{
        struct rcm_ports allow = { 0 };
        struct rcm_device d;
        fl_ctx *ctx = NULL;
        int r, rc = 1;

        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: rcm-wait-poll SECONDS [PORT-LIST]\n");
                return 2;
        }
        if (fl_ctx_new(&ctx) < 0)
                return 1;
        if (argc == 3 && rcm_ports_parse(ctx, argv[2], &allow) < 0) {
                fprintf(stderr, "rcm-wait-poll: %s\n", fl_ctx_last_error(ctx));
                goto out;
        }
        fprintf(stderr, "polling\n");
        fflush(stderr);
        r = rcm_wait_poll(ctx, &allow, atoi(argv[1]) * 1000, 100, &d);
        if (r == 0) {
                printf("%s %s %s\n", d.instance, chip_name(d.chip), d.module);
                rc = 0;
        } else {
                fprintf(stderr, "rcm-wait-poll: %s\n", fl_ctx_last_error(ctx));
                rc = r == -ETIMEDOUT ? 4 : 1;
        }
out:
        rcm_ports_clear(&allow);
        fl_ctx_free(ctx);
        return rc;
}
