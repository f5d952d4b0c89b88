/* enroll.h — enrolling devices and writing their certificates: one device
 * (enroll_cert_write, after identity_enroll) or a whole `enroll --batch`
 * list in one token session (enroll_batch_run). The caller prints; this
 * module only reports each device through a callback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "enroll_batch.h"
#include "identity.h"

/* Write a certificate identity_enroll returned to `out` (atomic, 0644).
 * The ledger already holds it, so a failed write is an error saying that
 * the certificate WAS issued and recorded, and that a re-run returns it. */
int enroll_cert_write(fl_ctx *ctx, const struct identity_enroll_result *res, const char *out);

struct enroll_batch_opts {
        const char *name;       /* the list's name in messages ("name:line: …") */
        const char *out_dir;    /* each certificate goes to <out_dir>/<ECID>.pem */
        const char *product;    /* NULL: the keyset name */
        enum key_type generate; /* KT_NONE: the items name CSRs */
        bool reissue;
};

/* One device's result, valid only during the callback. */
struct enroll_batch_device {
        const struct enroll_batch_item *item;
        size_t index, total;                      /* index counts from 0 */
        size_t failed;                            /* failures so far, this one included */
        int r;                                    /* 0 or the device's negative errno */
        const char *error;                        /* r < 0: its message */
        const struct identity_enroll_result *res; /* r == 0 */
        const char *out;                          /* r == 0: the certificate's file */
};

typedef void (*enroll_batch_cb)(void *data, const struct enroll_batch_device *d);

struct enroll_batch_totals {
        size_t total, issued, already, failed;
        bool interrupted; /* stopped by SIGINT/SIGTERM before the rest */
};

/* Enrol items[0..n) in order, one ledger transaction and one certificate
 * file each, calling cb after each device (a device's failure does not stop
 * the list). A signal stops before the next device: -ECANCELED, each device
 * done so far complete and recorded. Otherwise 0 when every device
 * succeeded, else the first failure's code with a message naming its line.
 * ret is filled in every case. The caller checks beforehand whether the
 * certificate files may be (over)written. */
int enroll_batch_run(fl_ctx *ctx, struct identity_session *s, const struct enroll_batch_item *items, size_t n,
                     const struct enroll_batch_opts *o, enroll_batch_cb cb, void *data,
                     struct enroll_batch_totals *ret);
