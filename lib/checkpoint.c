/* checkpoint.c — a ledger checkpoint signed through the one signer (see
 * checkpoint.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "checkpoint.h"
#include "signer.h"

int checkpoint_sign(fl_ctx *ctx, struct ledger *l, const char *db_path, const struct ledger_report *rep,
                    const struct keyset *ks, const char *keyset_path, const char *role,
                    const struct token_opts *tok, struct checkpoint_made *ret)
{
        struct signer_opts so = { .tok = tok, .keyset_path = keyset_path, .use = SIGNER_USE_CHECKPOINT };
        struct ledger_checkpoint cp = { 0 };
        struct checkpoint_made made = { 0 };
        struct sign_tbs tbs = { 0 };
        unsigned char *spki = NULL, sig[SIGN_RAW_MAX];
        enum sign_scheme s;
        size_t sig_len = 0;
        signer *sg = NULL;
        int spki_len, r;

        if (!keyset_find(ks, role))
                return fl_err(ctx, -EINVAL, "%s: no role '%s' to sign the checkpoint with", keyset_path, role);
        r = signer_role_check(ctx, keyset_path, role, keyset_find(ks, role), SIGNER_USE_CHECKPOINT);
        if (r < 0)
                return r;
        /* The head just verified, not whatever was appended since. */
        cp.event_id = rep->head_id;
        memcpy(cp.head, rep->head, LEDGER_HASH_LEN);
        if (cp.event_id == 0)
                return fl_err(ctx, -EINVAL, "ledger %s: no events yet, nothing to checkpoint", db_path);
        time_now_utc(cp.time, sizeof(cp.time));

        r = signer_open(ctx, ks, role, &so, &sg);
        if (r < 0)
                goto out;
        s = sign_scheme_default(signer_key_type(sg));
        r = ledger_checkpoint_tbs(ctx, &cp, s, &tbs);
        if (r < 0)
                goto out;
        r = signer_sign(sg, s, tbs.data, tbs.len, sig, &sig_len, NULL);
        if (r < 0)
                goto out;
        spki_len = i2d_PUBKEY(signer_pubkey(sg), &spki);
        if (spki_len <= 0) {
                r = fl_err(ctx, -EIO, "cannot encode the public key of role %s", role);
                goto out;
        }
        /* The key's fingerprint is the SPKI hash the signer pinned. */
        snprintf(made.key_sha256, sizeof(made.key_sha256), "%s", signer_fingerprint(sg) + 7);
        cp.role = role;
        cp.key_uri = signer_key(sg)->uri;
        cp.scheme = sign_scheme_name(s);
        cp.public_key = spki;
        cp.public_key_len = (size_t)spki_len;
        cp.signature = sig;
        cp.signature_len = sig_len;
        r = ledger_checkpoint_add(l, &cp, &made.id);
        if (r < 0)
                goto out;
        made.event_id = cp.event_id;
        snprintf(made.scheme, sizeof(made.scheme), "%s", cp.scheme);
        hex_encode(cp.head, LEDGER_HASH_LEN, made.head);
        memcpy(made.time, cp.time, sizeof(made.time));
        hex_encode(sig, sig_len, made.signature);
        *ret = made;
        r = 0;
out:
        OPENSSL_free(spki);
        sign_tbs_free(&tbs);
        signer_close(sg);
        return r;
}
