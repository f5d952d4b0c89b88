/* sign_verify.c — public keys and signature/MAC verification with OpenSSL
 * EVP (sign.h). */

#include "sign_int.h"

/* ---- verification ------------------------------------------------------- */

int sign_pkey_fingerprint(fl_ctx *ctx, EVP_PKEY *pkey, char out[SIGN_FPR_LEN])
{
        char hex[65];
        int r = pkey_spki_sha256(ctx, pkey, hex);

        if (r < 0)
                return r;
        snprintf(out, SIGN_FPR_LEN, "sha256:%s", hex);
        return 0;
}

enum key_type sign_pkey_type(EVP_PKEY *pkey)
{
        return pkey_key_type(pkey);
}

int sign_load_pubkey(fl_ctx *ctx, const char *path, EVP_PKEY **ret)
{
        unsigned char *data = NULL;
        size_t len = 0;
        EVP_PKEY *pkey = NULL;
        X509 *cert = NULL;
        BIO *bio = NULL;
        int r;

        r = file_read(ctx, path, SIG_FILE_MAX, &data, &len);
        if (r < 0)
                goto out;
        bio = BIO_new_mem_buf(data, (int)len);
        if (!bio) {
                r = -ENOMEM;
                goto out;
        }
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        if (!pkey) {
                (void)BIO_reset(bio);
                cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
                if (cert)
                        pkey = X509_get_pubkey(cert);
        }
        ERR_clear_error();
        if (!pkey) {
                r = fl_err(ctx, -EINVAL, "%s: not a PEM public key or certificate", path);
                goto out;
        }
        *ret = pkey;
        pkey = NULL;
        r = 0;
out:
        X509_free(cert);
        EVP_PKEY_free(pkey);
        BIO_free(bio);
        free(data);
        return r;
}

int sign_verify_pkey(fl_ctx *ctx, EVP_PKEY *pkey, enum sign_scheme s, const struct sign_tbs *tbs,
                     const unsigned char *raw, size_t raw_len)
{
        const struct scheme_info *si = scheme_get(s);
        EVP_PKEY_CTX *pctx = NULL;
        EVP_MD_CTX *mctx = NULL;
        EVP_MD *md = NULL;
        unsigned char *der = NULL;
        size_t der_len = 0;
        char fpr[SIGN_FPR_LEN];
        int ok = 0, r;

        r = sign_scheme_check_key(ctx, s, sign_pkey_type(pkey), "the public key");
        if (r < 0)
                goto out;
        r = sign_pkey_fingerprint(ctx, pkey, fpr);
        if (r < 0)
                goto out;
        if (si->kind == K_EDDSA) {
                mctx = EVP_MD_CTX_new();
                if (!mctx || EVP_DigestVerifyInit_ex(mctx, NULL, NULL, NULL, NULL, pkey, NULL) != 1) {
                        r = fl_err(ctx, -EIO, "Ed25519 verify set-up failed: %s", ossl_errstr());
                        goto out;
                }
                ok = EVP_DigestVerify(mctx, raw, raw_len, tbs->data, tbs->len) == 1;
        } else {
                if (tbs->len != si->md_len) {
                        r = fl_err(ctx, -EINVAL, "%s: digest of %zu bytes, expected %zu", si->name, tbs->len, si->md_len);
                        goto out;
                }
                md = EVP_MD_fetch(NULL, si->md, NULL);
                pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
                if (!md || !pctx || EVP_PKEY_verify_init(pctx) != 1 || EVP_PKEY_CTX_set_signature_md(pctx, md) != 1) {
                        r = fl_err(ctx, -EIO, "%s verify set-up failed: %s", si->name, ossl_errstr());
                        goto out;
                }
                if (si->kind == K_RSA_PSS) {
                        /* Salt length pinned to the scheme's (the digest
                         * length, or 32 for tegrasign's SHA-512 form): a
                         * signature with any other salt must not pass. */
                        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
                            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int)si->salt_len) != 1) {
                                r = fl_err(ctx, -EIO, "%s verify set-up failed: %s", si->name, ossl_errstr());
                                goto out;
                        }
                } else if (si->kind == K_RSA_PKCS1) {
                        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
                                r = fl_err(ctx, -EIO, "%s verify set-up failed: %s", si->name, ossl_errstr());
                                goto out;
                        }
                } else {
                        r = sign_ecdsa_raw_to_der(ctx, raw, raw_len, &der, &der_len);
                        if (r < 0)
                                goto out;
                        raw = der;
                        raw_len = der_len;
                }
                ok = EVP_PKEY_verify(pctx, raw, raw_len, tbs->data, tbs->len) == 1;
        }
        ERR_clear_error();
        if (!ok) {
                r = fl_err(ctx, -EBADMSG, "signature does not match (%s, key %s)", si->name, fpr);
                goto out;
        }
        r = 0;
out:
        free(der);
        EVP_MD_free(md);
        EVP_PKEY_CTX_free(pctx);
        EVP_MD_CTX_free(mctx);
        return r;
}
