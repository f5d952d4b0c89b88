/* enroll_batch.h — the `enroll --batch` device list: one "ECID CSR [SERIAL]"
 * per line ('#' comments and blank lines skipped; CSR '-' when the device
 * key is generated in the token). The whole list is checked before the
 * first device is enrolled, so a typo on line 900 does not leave 899
 * devices half-done. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

#define ENROLL_BATCH_MAX_LINES 100000
#define ENROLL_BATCH_FILE_MAX (16 * 1024 * 1024)

struct enroll_batch_item {
        char *ecid;   /* normalised: 32 lower-case hex digits */
        char *csr;    /* path; NULL with generate */
        char *serial; /* NULL when the line has none */
        unsigned line;
};

/* Parse a list (name is used in messages: "name:line: …"). generate: the
 * CSR field must be '-' (else it must not be). Every problem is -EINVAL
 * naming the line (-E2BIG past ENROLL_BATCH_MAX_LINES devices); an ECID
 * listed twice names both lines. */
int enroll_batch_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, bool generate,
                       struct enroll_batch_item **ret, size_t *ret_n);
/* Read path (at most ENROLL_BATCH_FILE_MAX bytes) and parse it. */
int enroll_batch_load(fl_ctx *ctx, const char *path, bool generate, struct enroll_batch_item **ret,
                      size_t *ret_n);
void enroll_batch_free(struct enroll_batch_item *items, size_t n);
