/* fuzz-softhsm-conf.c — the softhsm2.conf reader behind the emptied-token
 * diagnosis (lib/p11.c softhsm_conf_tokendir): any bytes give the token
 * directory, -ENOENT or -EINVAL; a directory found is non-empty, has no NUL
 * and no surrounding blanks, and occurs in the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p11.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *dir = NULL;
        int r = softhsm_conf_tokendir((const char *)data, size, &dir);
        size_t n;

        if (r == -ENOENT || r == -EINVAL || r == -ENOMEM) {
                if (dir)
                        abort();
                return 0;
        }
        if (r != 0 || !dir)
                abort();
        n = strlen(dir);
        if (n == 0 || dir[0] == ' ' || dir[0] == '\t' || dir[n - 1] == ' ' || dir[n - 1] == '\t' ||
            dir[n - 1] == '\r' || !memmem(data, size, dir, n))
                abort();
        free(dir);
        return 0;
}
