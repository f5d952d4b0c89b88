/* luks.h — per-device LUKS passphrases exactly as NVIDIA's
 * gen_luks_passphrase.py derives them (ekb-ftpm-luks.md §3), computed in the
 * token from the keyset's disk-encryption key (role ekb-disk, EKB tag 2). */
#pragma once

#include <stdbool.h>

#include "keyset.h"
#include "p11.h"

#define LUKS_CONTEXT_MAX 40 /* gen_luks_passphrase's -c limit */
#define LUKS_ECID_ARG_MAX 34 /* its -e limit (with any 0x) */
#define LUKS_ECID_STR_MAX 34

/* The ECID as the KDF context: the text parsed as a hex integer (optional
 * 0x, either case; also the "BR_CID: 0x…" line tegrarcm_v2 --uid prints),
 * bits 100-127 cleared, printed %032x. out gets 32 characters, or up to 34
 * for a 34-digit value without 0x (bits above 127 survive, as in the tool).
 * -EINVAL naming the value otherwise. */
int luks_ecid_context(fl_ctx *ctx, const char *in, char out[LUKS_ECID_STR_MAX + 1]);

struct luks_req {
        bool unique;         /* true: per-device (ECID); false: generic */
        const char *ecid;    /* unique: any form luks_ecid_context takes */
        const char *context; /* the filesystem UUID (≤ 40 characters, may be empty) */
};

/* The 16-byte passphrase, into a wiped-on-free buffer. Step 1 runs the
 * CMAC KDF on the token's ekb-disk key; step 2 on a session key holding the
 * intermediate. */
int luks_passphrase(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, const struct luks_req *req,
                    struct fl_secret *ret);
