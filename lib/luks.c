/* luks.c — gen_luks_passphrase.py's two KDF steps (SP 800-108, AES-CMAC,
 * 1-byte counter) on the token's disk key, and its ECID formatting. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "luks.h"
#include "p11_mech.h"

int luks_ecid_context(fl_ctx *ctx, const char *in, char out[LUKS_ECID_STR_MAX + 1])
{
        char nib[LUKS_ECID_STR_MAX];
        const char *p = in, *digits;
        size_t len, nd, start;

        while (isspace((unsigned char)*p))
                p++;
        if (!strncasecmp(p, "BR_CID:", 7)) {
                p += 7;
                while (isspace((unsigned char)*p))
                        p++;
        }
        len = strlen(p);
        while (len && isspace((unsigned char)p[len - 1]))
                len--;
        if (len == 0 || len > LUKS_ECID_ARG_MAX)
                return fl_err(ctx, -EINVAL, "ECID '%s': 1 to %d characters (32 hex digits, optional 0x, or the "
                              "BR_CID line)", in, LUKS_ECID_ARG_MAX);
        digits = p;
        if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
                digits += 2;
                len -= 2;
        }
        if (len == 0)
                return fl_err(ctx, -EINVAL, "ECID '%s': no hex digits", in);
        for (size_t i = 0; i < len; i++)
                if (!isxdigit((unsigned char)digits[i]))
                        return fl_err(ctx, -EINVAL, "ECID '%s': '%c' is not a hex digit", in, digits[i]);
        /* Right-align into 34 nibbles, least significant last. */
        memset(nib, '0', sizeof(nib));
        for (size_t i = 0; i < len; i++)
                nib[LUKS_ECID_STR_MAX - len + i] = (char)tolower((unsigned char)digits[i]);
        /* Bits 100-127 are nibbles 25..31 counted from the least significant. */
        for (size_t k = 25; k <= 31; k++)
                nib[LUKS_ECID_STR_MAX - 1 - k] = '0';
        /* %032x: the value without leading zeros, padded to 32. */
        for (start = 0; start < LUKS_ECID_STR_MAX - 32 && nib[start] == '0'; start++)
                ;
        nd = LUKS_ECID_STR_MAX - start;
        memcpy(out, nib + start, nd);
        out[nd] = 0;
        return 0;
}

int luks_passphrase(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, const struct luks_req *req,
                    struct fl_secret *ret)
{
        const struct ks_key *k = keyset_find(ks, "ekb-disk");
        char ecid[LUKS_ECID_STR_MAX + 1], kcv[7];
        unsigned char luks_key[16];
        struct fl_secret out = { 0 };
        fl_token *tok = NULL;
        token_obj disk = 0, sess = 0;
        size_t clen = req->context ? strlen(req->context) : 0;
        int r;

        if (!req->context)
                return fl_err(ctx, -EINVAL, "the LUKS context (the filesystem UUID) is required; it may be empty");
        if (clen > LUKS_CONTEXT_MAX)
                return fl_err(ctx, -EINVAL, "LUKS context '%s' is %zu characters; NVIDIA's tool takes at most %d",
                              req->context, clen, LUKS_CONTEXT_MAX);
        if (!k)
                return fl_err(ctx, -EINVAL, "the keyset has no 'ekb-disk' key (the disk encryption key, EKB tag 2)");
        if (key_type_secret_len(k->type) != 16)
                return fl_err(ctx, -EINVAL, "the keyset's ekb-disk key is %s; the LUKS KDF needs 16 bytes",
                              key_type_name(k->type));
        if (req->unique) {
                if (!req->ecid)
                        return fl_err(ctx, -EINVAL, "a unique passphrase needs the device's ECID");
                r = luks_ecid_context(ctx, req->ecid, ecid);
                if (r < 0)
                        return r;
        }
        r = keyset_token_open(ctx, ks, opts, &tok);
        if (r < 0)
                return r;
        r = keyset_key_object(ctx, tok, k, &disk);
        if (r == 0)
                r = token_aes_kcv(tok, disk, kcv);
        if (r < 0)
                goto out;
        if (k->kcv && strcmp(kcv, k->kcv)) {
                r = fl_err(ctx, -EBADMSG, "key 'ekb-disk' in the token has check value %s, the keyset says %s", kcv,
                           k->kcv);
                goto out;
        }
        if (req->unique)
                r = token_kdf_cmac(tok, disk, "luks-srv-ecid", (const unsigned char *)ecid, strlen(ecid), luks_key);
        else
                r = token_kdf_cmac(tok, disk, "luks-srv-generic", (const unsigned char *)"generic-key", 11, luks_key);
        if (r == 0)
                r = token_session_aes(tok, luks_key, 16, &sess);
        if (r == 0)
                r = secret_alloc(&out, 16);
        if (r == 0)
                r = token_kdf_cmac(tok, sess,
                                   req->unique ? "luks-srv-passphrase-unique" : "luks-srv-passphrase-generic",
                                   (const unsigned char *)req->context, clen, out.data);
        if (r < 0)
                goto out;
        *ret = out;
        out.data = NULL;
        r = 0;
out:
        if (sess)
                (void)token_destroy(tok, sess);
        OPENSSL_cleanse(luks_key, sizeof(luks_key));
        secret_wipe(&out);
        token_close(tok);
        return r;
}
