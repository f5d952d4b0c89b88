/* sign_token.c — public-key export, the token's RNG and AES-GCM for the
 * tegrasign hook (sign.h). */

#include "sign_int.h"

/* ---- public keys, the token's RNG and AES-GCM (the tegrasign hook) ------ */

int sign_export_pub(sign_session *ss, const char *role, unsigned what, struct pub_export *ret)
{
        fl_ctx *ctx = ss->ctx;
        const struct sign_key *k = NULL;
        struct pub_export e = { 0 };
        BIO *bio = NULL;
        BUF_MEM *bm = NULL;
        int r;

        if (!ss->ks || !role)
                return fl_err(ctx, -EINVAL, "exporting a public key needs a keyset and a role");
        {
                const struct ks_key *kk = keyset_find(ss->ks, role);
                /* key_from_role names the roles when there is none. */
                if (kk && key_type_is_secret(kk->type))
                        return fl_err(ctx, -EINVAL, "%s: role %s holds a secret key (%s): it has no public key",
                                      ss->ks_path, role, key_type_name(kk->type));
        }
        /* The public object, pinned to the manifest's public_key_sha256 and
         * type exactly as for signing: a replaced object is never exported
         * under the role's name. */
        r = sign_session_key(ss, role, NULL, SCHEME_NONE, false, &k);
        if (r < 0)
                goto out;
        e.type = k->type;
        memcpy(e.fpr, k->fpr, sizeof(e.fpr));
        if (what & PUB_EXPORT_PEM) {
                bio = BIO_new(BIO_s_mem());
                if (!bio || PEM_write_bio_PUBKEY(bio, k->pub) != 1) {
                        r = fl_err(ctx, -EIO, "role %s: cannot encode the public key: %s", role, ossl_errstr());
                        goto out;
                }
                BIO_get_mem_ptr(bio, &bm);
                e.pem = malloc(bm->length);
                if (!e.pem) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(e.pem, bm->data, bm->length);
                e.pem_len = bm->length;
        }
        if (what & PUB_EXPORT_TEGRA) {
                r = tegra_pubkey_bytes(ctx, k->pub, e.tegra, sizeof(e.tegra), &e.tegra_len);
                if (r < 0)
                        goto out;
        }
        if (what & PUB_EXPORT_HASH) {
                r = tegra_pkc_hash(ctx, ss->ks->chip, k->pub, e.hash, &e.hash_len);
                if (r < 0)
                        goto out;
        }
        if (what & PUB_EXPORT_MONT) {
                r = tegra_rsa_montgomery(ctx, k->pub, e.mont, &e.mont_len);
                if (r < 0)
                        goto out;
        }
        *ret = e;
        e.pem = NULL;
        r = 0;
out:
        free(e.pem);
        BIO_free(bio);
        return r;
}

void pub_export_clear(struct pub_export *e)
{
        if (!e)
                return;
        free(e->pem);
        memset(e, 0, sizeof(*e));
}

int sign_session_random(sign_session *ss, unsigned char *out, size_t len)
{
        if (len > SIGN_RANDOM_MAX)
                return fl_err(ss->ctx, -EINVAL, "%zu random bytes asked for; at most %d at once", len,
                              SIGN_RANDOM_MAX);
        return token_random(ss->tok, out, len);
}

/* Write out and tag_out, or neither: a tag without its ciphertext (or the
 * reverse) must not be left behind. */
static int gcm_write(fl_ctx *ctx, const struct gcm_request *req, const unsigned char *ct, size_t ct_len,
                     const unsigned char *tag, size_t tag_len)
{
        struct stat st;
        bool had_out = stat(req->out, &st) == 0;
        int r;

        r = file_write_atomic(ctx, req->out, ct, ct_len, 0644);
        if (r < 0)
                return r;
        r = file_write_atomic(ctx, req->tag_out, tag, tag_len, 0644);
        if (r < 0 && !had_out)
                (void)unlink(req->out);
        return r;
}

int sign_aes_gcm_file(sign_session *ss, const struct gcm_request *req, struct gcm_result *ret)
{
        fl_ctx *ctx = ss->ctx;
        const struct sign_key *k = NULL;
        const char *name = req->role ? req->role : req->key_uri;
        CK_GCM_PARAMS gp;
        unsigned char *in = NULL, *out = NULL;
        size_t in_len = 0, out_len = 0;
        struct sign_range whole = { 0 };
        int r;

        if (!req->in || !req->out || !req->tag_out || !name) {
                r = fl_err(ctx, -EINVAL, "aes-gcm needs an input, an output, a tag output and a key");
                goto out;
        }
        if (!req->iv || req->iv_len < 1 || req->iv_len > SIGN_GCM_IV_MAX) {
                r = fl_err(ctx, -EINVAL, "aes-gcm: IV of %zu bytes; it takes 1 to %d (tegrasign uses 12)",
                           req->iv_len, SIGN_GCM_IV_MAX);
                goto out;
        }
        if (req->aad_len > SIGN_GCM_AAD_MAX) {
                r = fl_err(ctx, -EINVAL, "aes-gcm: AAD of %zu bytes; at most %d", req->aad_len, SIGN_GCM_AAD_MAX);
                goto out;
        }
        if (req->role && ss->ks) {
                const struct ks_key *kk = keyset_find(ss->ks, req->role);
                if (kk && kk->type != KT_AES128 && kk->type != KT_AES256) {
                        r = fl_err(ctx, -EINVAL, "role %s holds a key of type %s; aes-gcm needs an AES fuse key "
                                   "(sbk, oem-k1, …)", req->role, key_type_name(kk->type));
                        goto out;
                }
        }
        /* The CKK_AES object (never the HMAC twin): the one CMAC uses. */
        r = sign_session_key(ss, req->role, req->role ? NULL : req->key_uri, SCHEME_AES_CMAC, true, &k);
        if (r == -EINVAL && !req->role) {
                /* The look-up speaks of aes-cmac, the scheme it was asked for. */
                r = fl_err(ctx, -EINVAL, "%s: aes-gcm needs a CKK_AES key", req->key_uri);
                goto out;
        }
        if (r < 0)
                goto out;
        r = sign_session_interlock(ss, k);
        if (r < 0)
                goto out;
        if (!token_has_mechanism(ss->tok, CKM_AES_GCM)) {
                r = fl_err(ctx, -ENOTSUP, "the token does not offer CKM_AES_GCM (needed for aes-gcm)");
                goto out;
        }
        r = sign_read_file(ctx, req->in, &whole, SIGN_ONESHOT_MAX, &in, &in_len);
        if (r < 0)
                goto out;
        out_len = in_len + SIGN_GCM_TAG_LEN;
        out = malloc(out_len);
        if (!out) {
                r = -ENOMEM;
                goto out;
        }
        gp.iv_ptr = (unsigned char *)req->iv;
        gp.iv_len = req->iv_len;
        gp.iv_bits = req->iv_len * 8;
        gp.aad_ptr = (unsigned char *)req->aad;
        gp.aad_len = req->aad_len;
        gp.tag_bits = SIGN_GCM_TAG_LEN * 8;
        r = token_encrypt(ss->tok, k->obj, CKM_AES_GCM, &gp, sizeof(gp), in, in_len, out, &out_len);
        if (r < 0)
                goto out;
        /* PKCS#11 returns ciphertext ‖ tag. */
        if (out_len != in_len + SIGN_GCM_TAG_LEN) {
                r = fl_err(ctx, -EIO, "token returned %zu bytes for %zu bytes of AES-GCM input (expected %zu)",
                           out_len, in_len, in_len + SIGN_GCM_TAG_LEN);
                goto out;
        }
        r = gcm_write(ctx, req, out, in_len, out + in_len, SIGN_GCM_TAG_LEN);
        if (r < 0)
                goto out;
        if (ret) {
                ret->bytes = in_len;
                memcpy(ret->key_fpr, k->fpr, sizeof(ret->key_fpr));
        }
        r = 0;
out:
        /* The plaintext may be a secret payload (tegrasign encrypts
         * firmware): wipe it. */
        if (in)
                OPENSSL_clear_free(in, in_len);
        free(out);
        return r;
}
