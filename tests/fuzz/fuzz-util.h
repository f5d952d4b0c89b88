/* fuzz-util.h — what the fuzz targets check the same way: the answers a
 * parser may give for outside input, and the input as a C string. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 0 or a clean refusal; anything else is a bug. */
static inline void fuzz_check_rc(int r)
{
        if (r != 0 && r != -EINVAL && r != -EBADMSG && r != -ENOMEM)
                abort();
}

/* The input NUL-terminated, for parsers of text (malloc'd; NULL when out
 * of memory). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);

        if (s) {
                memcpy(s, data, size);
                s[size] = 0;
        }
        return s;
}
