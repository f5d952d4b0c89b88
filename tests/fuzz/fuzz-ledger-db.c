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
        fuzz_unlink_db(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int fd;

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

        fuzz_ledger_check_file(ctx, path);
        return 0;
}
