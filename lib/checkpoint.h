/* checkpoint.h — signing a ledger checkpoint: the verified head of the hash
 * chain signed by a keyset role meant for it (station, station-*,
 * ledger-*), through the one signer (lib/signer.c: the manifest's token,
 * the pinned key, the production interlock), and stored in the ledger. */
#pragma once

#include <stdint.h>

#include "keyset.h"
#include "ledger.h"
#include "p11.h"
#include "sign.h"

struct checkpoint_made {
        int64_t id, event_id;
        char scheme[32];
        char key_sha256[2 * LEDGER_HASH_LEN + 1]; /* SHA-256 of the signing key's DER SubjectPublicKeyInfo */
        char head[2 * LEDGER_HASH_LEN + 1];
        char time[LEDGER_TIME_LEN];
        char signature[2 * SIGN_RAW_MAX + 1];     /* hex of the raw signature */
};

/* Sign the head rep reports (the one just verified, not whatever was
 * appended since) with role of ks and store the checkpoint in l (opened for
 * writing). db_path names the ledger in messages. -EINVAL for a role that
 * may not sign checkpoints or an empty ledger; the signer's codes
 * otherwise (-ENXIO token, -EPERM interlock, -EBADMSG pinned key). */
int checkpoint_sign(fl_ctx *ctx, struct ledger *l, const char *db_path, const struct ledger_report *rep,
                    const struct keyset *ks, const char *keyset_path, const char *role,
                    const struct token_opts *tok, struct checkpoint_made *ret);
