/* enroll.c — see enroll.h. */
#include "enroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int enroll_cert_write(fl_ctx *ctx, const struct identity_enroll_result *res, const char *out)
{
        char why[FL_ERRMSG_MAX];
        int r = file_write_atomic(ctx, out, res->pem, res->pem_len, 0644);

        if (r >= 0)
                return 0;
        snprintf(why, sizeof(why), "%s", fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : strerror(-r));
        return fl_err(ctx, r, "certificate sha256:%s for ECID %s WAS issued and recorded (event %lld), but %s "
                      "could not be written (%s); the \"pem\" of the JSON result holds it, and re-running the "
                      "same command returns the same certificate",
                      res->fingerprint, res->ecid, (long long)res->event_id, out, why);
}

int enroll_batch_run(fl_ctx *ctx, struct identity_session *s, const struct enroll_batch_item *items, size_t n,
                     const struct enroll_batch_opts *o, enroll_batch_cb cb, void *data,
                     struct enroll_batch_totals *ret)
{
        int first_r = 0, r;
        char first_msg[FL_ERRMSG_MAX] = "", intr[FL_ERRMSG_MAX] = "";

        *ret = (struct enroll_batch_totals){ .total = n };
        for (size_t i = 0; i < n; i++) {
                struct identity_enroll_req req = { .ecid = items[i].ecid, .serial = items[i].serial,
                                                   .product = o->product, .csr_path = items[i].csr,
                                                   .generate = o->generate, .reissue = o->reissue };
                struct identity_enroll_result res = { 0 };
                struct enroll_batch_device d = { .item = &items[i], .index = i, .total = n };
                char *out = NULL;

                /* SIGINT/SIGTERM: each device done so far is complete and
                 * recorded (one ledger transaction each); stop before the next. */
                if (fl_interrupted(ctx) < 0) {
                        snprintf(intr, sizeof(intr), "%s", fl_ctx_last_error(ctx));
                        ret->interrupted = true;
                        break;
                }
                r = identity_enroll(s, &req, &res);
                if (r == 0) {
                        if (asprintf(&out, "%s/%s.pem", o->out_dir, res.ecid) < 0)
                                out = NULL;
                        r = out ? enroll_cert_write(ctx, &res, out) : -ENOMEM;
                }
                d.r = r;
                d.failed = ret->failed + (r < 0);
                if (r == 0) {
                        if (res.outcome == IDENTITY_ALREADY)
                                ret->already++;
                        else
                                ret->issued++;
                        d.res = &res;
                        d.out = out;
                        cb(data, &d);
                } else {
                        d.error = fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : strerror(-r);
                        ret->failed++;
                        if (!first_r) {
                                first_r = r;
                                snprintf(first_msg, sizeof(first_msg), "%s:%u: %s", o->name, items[i].line, d.error);
                        }
                        cb(data, &d);
                        fl_err_clear(ctx);
                }
                free(out);
                identity_enroll_result_clear(&res);
        }
        if (intr[0])
                return fl_err(ctx, -ECANCELED, "%s after %zu of %zu devices (each one done is complete and "
                              "recorded; the rest were not attempted)", intr, ret->issued + ret->already + ret->failed, n);
        if (first_r)
                return fl_err(ctx, first_r, "%zu of %zu devices failed; first: %s", ret->failed,
                              ret->issued + ret->already + ret->failed, first_msg);
        return 0;
}
