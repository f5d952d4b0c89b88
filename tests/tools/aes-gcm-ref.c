/* aes-gcm-ref.c — the software AES-GCM the token's result is compared with:
 * OpenSSL's EVP, given the key value (read out of the lab token by
 * pkcs11-tool in the test only), IV, AAD and plaintext as files. Writes the
 * ciphertext and the 16-byte tag. Test tool, never installed.
 *
 *   aes-gcm-ref KEY IV AAD|- IN OUT TAG */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

static unsigned char *slurp(const char *path, long *len)
{
        FILE *f = fopen(path, "rb");
        unsigned char *b = NULL;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                b = malloc((size_t)*len + 1);
                if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
                        free(b);
                        b = NULL;
                }
        }
        fclose(f);
        return b;
}

static int spit(const char *path, const unsigned char *d, size_t len)
{
        FILE *f = fopen(path, "wb");
        int ok = f && fwrite(d, 1, len, f) == len;

        if (f && fclose(f) != 0)
                ok = 0;
        return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
        long klen = 0, ivlen = 0, alen = 0, inlen = 0;
        unsigned char *key, *iv, *aad = NULL, *in, *out, tag[16];
        EVP_CIPHER_CTX *c;
        int n = 0, m = 0;

        if (argc != 7) {
                fprintf(stderr, "usage: aes-gcm-ref KEY IV AAD|- IN OUT TAG\n");
                return 2;
        }
        key = slurp(argv[1], &klen);
        iv = slurp(argv[2], &ivlen);
        if (argv[3][0] != '-' || argv[3][1])
                aad = slurp(argv[3], &alen);
        in = slurp(argv[4], &inlen);
        out = malloc((size_t)inlen + 16);
        c = EVP_CIPHER_CTX_new();
        if (!key || !iv || (argv[3][0] != '-' && !aad) || !in || !out || !c || (klen != 16 && klen != 32))
                return 1;
        if (EVP_EncryptInit_ex(c, klen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) != 1 ||
            EVP_EncryptInit_ex(c, NULL, NULL, key, iv) != 1 ||
            (aad && alen && EVP_EncryptUpdate(c, NULL, &n, aad, (int)alen) != 1) ||
            EVP_EncryptUpdate(c, out, &n, in, (int)inlen) != 1 || EVP_EncryptFinal_ex(c, out + n, &m) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
                return 1;
        if (spit(argv[5], out, (size_t)(n + m)) || spit(argv[6], tag, 16))
                return 1;
        EVP_CIPHER_CTX_free(c);
        free(key);
        free(iv);
        free(aad);
        free(in);
        free(out);
        return 0;
}
