/* fuzz-ledger-db.c — a ledger database file is outside input (it may come
 * from another station, a backup, or an attacker). The input is the file's
 * bytes; it is opened read-only and taken through everything the reading
 * commands do: verify, export in both formats, dangling intents, device
 * and certificate look-ups. Must never crash, leak or hang; an error is
 * fine, and a refusal always carries a message. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_ctx *ctx;
static char path[64];

static void cleanup(void)
{
        char p[80];

        unlink(path);
        snprintf(p, sizeof(p), "%s-wal", path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", path);
        unlink(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ledger *l = NULL;
        int fd, r;

        if (!ctx) {
                fuzz_sqlite_plain_malloc();
                if (fl_ctx_new(&ctx) < 0)
                        abort();
                snprintf(path, sizeof(path), "/tmp/fuzz-ledger-db.%d.db", (int)getpid());
                atexit(cleanup);
        }
        cleanup();
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        if (size && write(fd, data, size) != (ssize_t)size)
                abort();
        close(fd);

        fl_err_clear(ctx);
        r = ledger_open(ctx, path, LEDGER_READ, &l);
        if (r < 0) {
                if (!fl_ctx_last_error(ctx))
                        abort();
                return 0;
        }
        fuzz_ledger_read_all(l);
        ledger_close(l);
        return 0;
}
