/* p11_mech.c — AES-ECB/CBC, AES-CMAC and the SP 800-108 CMAC KDF on token
 * keys, plus session keys for a chain's intermediate values (EKB_RK,
 * EKB_EK/AK, the LUKS key). Every intermediate that passes through host
 * memory is wiped by the caller (struct fl_secret or OPENSSL_cleanse). */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <p11-kit/pkcs11.h>

#include "p11_mech.h"

static int crypt_one(fl_token *tok, token_obj key, CK_MECHANISM *mech, bool encrypt, const unsigned char *in,
                     size_t len, unsigned char *out, const char *what)
{
        CK_SESSION_HANDLE s;
        CK_FUNCTION_LIST *m = token_funcs(tok, &s);
        CK_ULONG n = len;
        CK_RV rv;
        char msg[64];

        if (len % 16)
                return fl_err(token_ctx(tok), -EINVAL, "%s: %zu bytes is not a multiple of the AES block", what, len);
        rv = encrypt ? m->C_EncryptInit(s, mech, key) : m->C_DecryptInit(s, mech, key);
        if (rv != CKR_OK) {
                snprintf(msg, sizeof(msg), "%s (%s init)", what, encrypt ? "C_Encrypt" : "C_Decrypt");
                return token_ck_err(tok, rv, msg);
        }
        rv = encrypt ? m->C_Encrypt(s, (CK_BYTE *)in, len, out, &n) : m->C_Decrypt(s, (CK_BYTE *)in, len, out, &n);
        if (rv != CKR_OK) {
                snprintf(msg, sizeof(msg), "%s (%s)", what, encrypt ? "C_Encrypt" : "C_Decrypt");
                return token_ck_err(tok, rv, msg);
        }
        if (n != len)
                return fl_err(token_ctx(tok), -EIO, "%s: the token returned %lu bytes for %zu", what, (unsigned long)n,
                              len);
        return 0;
}

int token_aes_ecb_encrypt(fl_token *tok, token_obj key, const unsigned char *in, size_t len, unsigned char *out)
{
        CK_MECHANISM mech = { CKM_AES_ECB, NULL, 0 };
        return crypt_one(tok, key, &mech, true, in, len, out, "AES-ECB");
}

int token_aes_cbc(fl_token *tok, token_obj key, bool encrypt, const unsigned char iv[16], const unsigned char *in,
                  size_t len, unsigned char *out)
{
        unsigned char ivc[16];
        CK_MECHANISM mech = { CKM_AES_CBC, ivc, sizeof(ivc) };

        memcpy(ivc, iv, sizeof(ivc));
        return crypt_one(tok, key, &mech, encrypt, in, len, out, "AES-CBC");
}

int token_aes_cmac(fl_token *tok, token_obj key, const unsigned char *in, size_t len, unsigned char out[16])
{
        size_t n = 16;
        int r = token_sign(tok, key, CKM_AES_CMAC, NULL, 0, in, len, out, &n);

        if (r < 0)
                return r;
        if (n != 16)
                return fl_err(token_ctx(tok), -EIO, "AES-CMAC: the token returned %zu bytes", n);
        return 0;
}

int token_session_aes(fl_token *tok, const unsigned char *value, size_t len, token_obj *ret)
{
        static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_AES;
        CK_SESSION_HANDLE s;
        CK_FUNCTION_LIST *m = token_funcs(tok, &s);
        CK_OBJECT_HANDLE h;
        CK_ATTRIBUTE t[] = {
                { CKA_CLASS, &cls, sizeof(cls) },
                { CKA_KEY_TYPE, &kt, sizeof(kt) },
                { CKA_TOKEN, &no, sizeof(no) },
                { CKA_PRIVATE, &yes, sizeof(yes) },
                { CKA_SENSITIVE, &yes, sizeof(yes) },
                { CKA_EXTRACTABLE, &no, sizeof(no) },
                { CKA_ENCRYPT, &yes, sizeof(yes) },
                { CKA_DECRYPT, &yes, sizeof(yes) },
                { CKA_SIGN, &yes, sizeof(yes) },
                { CKA_VERIFY, &yes, sizeof(yes) },
                { CKA_VALUE, (void *)value, len },
        };
        CK_RV rv;

        if (len != 16 && len != 32)
                return fl_err(token_ctx(tok), -EINVAL, "session AES key of %zu bytes", len);
        rv = m->C_CreateObject(s, t, FL_ARRAY_SIZE(t), &h);
        if (rv != CKR_OK)
                return token_ck_err(tok, rv, "C_CreateObject (session AES key)");
        *ret = h;
        return 0;
}

size_t kdf_cmac_message(const char *label, const unsigned char *context, size_t context_len, unsigned char *out,
                        size_t cap)
{
        size_t ll = strlen(label), n = 1 + ll + 1 + context_len + 4;

        if (n > cap)
                return 0;
        out[0] = 0x01; /* the counter: one byte, first and only block */
        memcpy(out + 1, label, ll);
        out[1 + ll] = 0x00;
        if (context_len)
                memcpy(out + 2 + ll, context, context_len);
        /* L = 128 bits, 32-bit big-endian */
        memcpy(out + 2 + ll + context_len, "\x00\x00\x00\x80", 4);
        return n;
}

int token_kdf_cmac(fl_token *tok, token_obj key, const char *label, const unsigned char *context, size_t context_len,
                   unsigned char out[16])
{
        unsigned char msg[256];
        size_t n = kdf_cmac_message(label, context, context_len, msg, sizeof(msg));

        if (!n)
                return fl_err(token_ctx(tok), -EINVAL, "KDF label/context too long (%zu bytes of context)",
                              context_len);
        return token_aes_cmac(tok, key, msg, n, out);
}

int soft_aes_cmac(const unsigned char *key, size_t key_len, const unsigned char *in, size_t len,
                  unsigned char out[16])
{
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
        EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
        char cipher[16];
        OSSL_PARAM p[2];
        size_t n = 0;
        int r = -EIO;

        snprintf(cipher, sizeof(cipher), "AES-%zu-CBC", key_len * 8);
        p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0);
        p[1] = OSSL_PARAM_construct_end();
        if (c && (key_len == 16 || key_len == 32) && EVP_MAC_init(c, key, key_len, p) == 1 &&
            EVP_MAC_update(c, in, len) == 1 && EVP_MAC_final(c, out, &n, 16) == 1 && n == 16)
                r = 0;
        EVP_MAC_CTX_free(c);
        EVP_MAC_free(mac);
        return r;
}
