/* ekb.c — EKB images (ekb-ftpm-luks.md §2): the three containers, the key
 * chain (EKB_RK = AES-ECB(root, FV); EKB_EK/EKB_AK = CMAC KDF of EKB_RK) run
 * in the token, building byte-identical to gen_ekb.py, and verification that
 * names what is wrong with a damaged image. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ekb.h"
#include "ftpm.h"
#include "p11_mech.h"

static const unsigned char ekb_magic[8] = { 'N', 'V', 'E', 'K', 'B', 'P', 0, 0 };
static const unsigned char content_magic[4] = { 'E', 'E', 'K', 'B' };

const char *ekb_format_name(enum ekb_format f)
{
        switch (f) {
        case EKB_FMT_LEGACY:
                return "legacy";
        case EKB_FMT_1_0:
                return "1.0";
        case EKB_FMT_2_0:
                return "2.0";
        default:
                return "?";
        }
}

enum ekb_format ekb_format_from_name(const char *s)
{
        if (!s)
                return EKB_FMT_NONE;
        if (!strcmp(s, "legacy"))
                return EKB_FMT_LEGACY;
        if (!strcmp(s, "1.0") || !strcmp(s, "1"))
                return EKB_FMT_1_0;
        if (!strcmp(s, "2.0") || !strcmp(s, "2"))
                return EKB_FMT_2_0;
        return EKB_FMT_NONE;
}

static uint32_t le32(const unsigned char *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char)v;
        p[1] = (unsigned char)(v >> 8);
        p[2] = (unsigned char)(v >> 16);
        p[3] = (unsigned char)(v >> 24);
}

/* Bytes before the ciphertext: header (16), [FV (16)], CMAC (16), [content
 * header (16)], IV (16). */
static size_t fixed_len(enum ekb_format f)
{
        return f == EKB_FMT_LEGACY ? 48 : f == EKB_FMT_1_0 ? 64 : 80;
}

/* The filler gen_ekb appends: (1024 − S) bytes of (1024 − S) mod 256 when S,
 * the size without filler, is below 1024. */
static size_t filler_for(size_t s)
{
        return s < EKB_MIN_SIZE ? EKB_MIN_SIZE - s : 0;
}

/* ---- parsing ------------------------------------------------------------ */

static int filler_check(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, size_t unfilled)
{
        size_t s = unfilled - 4, fl = filler_for(s);

        if (len != unfilled + fl)
                return fl_err(ctx, -EBADMSG, "%s: filler: %zu bytes follow the ciphertext; gen_ekb writes %zu", name,
                              len - unfilled, fl);
        for (size_t i = 0; i < fl; i++)
                if (data[unfilled + i] != (unsigned char)(fl & 0xff))
                        return fl_err(ctx, -EBADMSG, "%s: filler: byte at offset %zu is 0x%02x, expected 0x%02x", name,
                                      unfilled + i, data[unfilled + i], (unsigned)(fl & 0xff));
        return 0;
}

int ekb_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, struct ekb_image *ret)
{
        struct ekb_image im = { 0 };
        size_t body, enc_len;
        int r;

        if (len < 16)
                return fl_err(ctx, -EBADMSG, "%s: header: %zu bytes is too short for an EKB image", name, len);
        if (len > EKB_IMAGE_MAX)
                return fl_err(ctx, -EBADMSG, "%s: %zu bytes is larger than the EKS partition (%d)", name, len,
                              EKB_IMAGE_MAX);
        if (memcmp(data + 4, ekb_magic, 8))
                return fl_err(ctx, -EBADMSG, "%s: header: magic at offset 4 is not \"NVEKBP\\0\\0\"", name);
        if (le32(data) != len - 4)
                return fl_err(ctx, -EBADMSG, "%s: header: size field says %u bytes follow it, the file has %zu", name,
                              le32(data), len - 4);
        im.major = (uint16_t)(data[12] | data[13] << 8);
        im.minor = (uint16_t)(data[14] | data[15] << 8);
        if (im.major == 0 && im.minor == 0)
                im.fmt = EKB_FMT_LEGACY;
        else if (im.major == 1 && im.minor == 0)
                im.fmt = EKB_FMT_1_0;
        else if (im.major == 2 && im.minor == 0)
                im.fmt = EKB_FMT_2_0;
        else
                return fl_err(ctx, -EBADMSG, "%s: header: EKB version %u.%u is unknown (known: 1.0, 2.0, and the "
                              "legacy container with 4 zero bytes)", name, im.major, im.minor);
        if (len < fixed_len(im.fmt) + 16)
                return fl_err(ctx, -EBADMSG, "%s: header: %zu bytes is too short for an EKB %s image", name, len,
                              ekb_format_name(im.fmt));
        body = im.fmt == EKB_FMT_2_0 ? 32 : 16;
        if (im.fmt == EKB_FMT_2_0)
                im.fv = data + 16;
        im.cmac = data + body;
        if (im.fmt == EKB_FMT_LEGACY) {
                /* A 1.0 image whose version bytes were zeroed would otherwise
                 * parse as legacy (and its CMAC even verifies: both cover
                 * the bytes from offset 32 on). */
                if (!memcmp(data + body + 20, content_magic, 4))
                        return fl_err(ctx, -EBADMSG, "%s: header: the version field (offset 12) reads 0.0, the legacy "
                                      "container, but offset 36 holds the \"EEKB\" content header of EKB 1.0: the "
                                      "version bytes were altered", name);
                /* No length field: the ciphertext is what the filler rule
                 * leaves (the first length, in blocks, that fits it). */
                im.iv = data + body + 16;
                im.ct = data + body + 32;
                enc_len = 0;
                for (size_t e = 16; 48 + e <= len; e += 16) {
                        size_t s = 48 + e - 4, fl = filler_for(s), i;
                        if (48 + e + fl != len)
                                continue;
                        for (i = 0; i < fl && data[48 + e + i] == (unsigned char)(fl & 0xff); i++)
                                ;
                        if (i == fl) {
                                enc_len = e;
                                break;
                        }
                }
                if (!enc_len)
                        return fl_err(ctx, -EBADMSG, "%s: filler: no ciphertext length fits the legacy filler rule",
                                      name);
                im.mac_data = im.iv;
                im.mac_len = 16 + enc_len;
                im.mac_off = body + 16;
        } else {
                const unsigned char *ch = data + body + 16;
                enc_len = le32(ch);
                if (memcmp(ch + 4, content_magic, 4))
                        return fl_err(ctx, -EBADMSG, "%s: content header: magic at offset %zu is not \"EEKB\"", name,
                                      body + 20);
                for (int i = 8; i < 16; i++)
                        if (ch[i])
                                return fl_err(ctx, -EBADMSG, "%s: content header: reserved byte at offset %zu is "
                                              "0x%02x, not zero", name, body + 16 + (size_t)i, ch[i]);
                if (enc_len == 0 || enc_len % 16 || enc_len > len - fixed_len(im.fmt))
                        return fl_err(ctx, -EBADMSG, "%s: content header: ciphertext length %zu (offset %zu) does "
                                      "not fit: %zu bytes follow the IV, and it must be a non-zero multiple of 16",
                                      name, enc_len, body + 16, len - fixed_len(im.fmt));
                im.iv = data + body + 32;
                im.ct = data + body + 48;
                im.mac_data = ch;
                im.mac_len = 32 + enc_len;
                im.mac_off = body + 16;
        }
        im.enc_len = enc_len;
        r = filler_check(ctx, name, data, len, fixed_len(im.fmt) + enc_len);
        if (r < 0)
                return r;
        im.filler_len = len - fixed_len(im.fmt) - enc_len;
        *ret = im;
        return 0;
}

int ekb_records_parse(fl_ctx *ctx, const char *name, enum ekb_format fmt, enum fl_chip chip,
                      const unsigned char *plain, size_t len, struct ekb_rec *recs, size_t cap, size_t *ret_n)
{
        size_t pos = 0, n = 0;

        if (fmt == EKB_FMT_LEGACY) {
                size_t k1 = chip == FL_CHIP_T234 ? 32 : 16;
                if (len != k1 + 16 || cap < 2)
                        return fl_err(ctx, -EBADMSG, "%s: records: the legacy content is %zu bytes; %s expects the "
                                      "payload key (%zu) and the disk key (16)", name, len, chip_name(chip), k1);
                recs[0] = (struct ekb_rec){ 1, 0, k1 };
                recs[1] = (struct ekb_rec){ 2, k1, 16 };
                *ret_n = 2;
                return 0;
        }
        for (;;) {
                uint32_t tag, rl;
                if (len - pos < 8)
                        return fl_err(ctx, -EBADMSG, "%s: records: the stream ends at offset %zu without the 8 zero "
                                      "bytes that close it", name, pos);
                tag = le32(plain + pos);
                rl = le32(plain + pos + 4);
                if (tag == 0 && rl == 0) {
                        pos += 8;
                        break;
                }
                if (tag == 0)
                        return fl_err(ctx, -EBADMSG, "%s: records: record at offset %zu has tag 0 and length %u", name,
                                      pos, rl);
                if (rl > len - pos - 8)
                        return fl_err(ctx, -EBADMSG, "%s: records: tag %u at offset %zu claims %u bytes; %zu remain",
                                      name, tag, pos, rl, len - pos - 8);
                if (n == cap)
                        return fl_err(ctx, -EBADMSG, "%s: records: more than %zu records", name, cap);
                recs[n++] = (struct ekb_rec){ tag, pos + 8, rl };
                pos += 8 + (size_t)rl;
        }
        /* Conditional PKCS#7: nothing when the stream filled whole blocks. */
        if (pos != len) {
                size_t pad = len - pos;
                if (pad > 16 || (len % 16))
                        return fl_err(ctx, -EBADMSG, "%s: records: %zu bytes follow the end record at offset %zu; "
                                      "padding is at most 16", name, pad, pos);
                for (size_t i = pos; i < len; i++)
                        if (plain[i] != pad)
                                return fl_err(ctx, -EBADMSG, "%s: records: padding byte at offset %zu is 0x%02x, "
                                              "expected 0x%02zx", name, i, plain[i], pad);
                if (pad == 16)
                        return fl_err(ctx, -EBADMSG, "%s: records: a whole block of padding after offset %zu; "
                                      "gen_ekb pads only an incomplete block", name, pos);
        }
        *ret_n = n;
        return 0;
}

/* ---- the key chain --------------------------------------------------------- */

struct chain {
        fl_token *tok;
        token_obj ek, ak;
        unsigned char ekv[16], akv[16]; /* kept only for verify's diagnosis; wiped */
};

static void chain_clear(struct chain *c)
{
        if (c->tok) {
                if (c->ek)
                        (void)token_destroy(c->tok, c->ek);
                if (c->ak)
                        (void)token_destroy(c->tok, c->ak);
        }
        OPENSSL_cleanse(c, sizeof(*c));
}

static int chain_make(fl_token *tok, token_obj root, const unsigned char fv[16], struct chain *c)
{
        unsigned char rk[16];
        token_obj rko = 0;
        int r;

        memset(c, 0, sizeof(*c));
        c->tok = tok;
        r = token_aes_ecb_encrypt(tok, root, fv, 16, rk);
        if (r < 0)
                goto out;
        r = token_session_aes(tok, rk, 16, &rko);
        if (r < 0)
                goto out;
        r = token_kdf_cmac(tok, rko, "encryption", (const unsigned char *)"ekb", 3, c->ekv);
        if (r == 0)
                r = token_kdf_cmac(tok, rko, "authentication", (const unsigned char *)"ekb", 3, c->akv);
        if (r == 0)
                r = token_session_aes(tok, c->ekv, 16, &c->ek);
        if (r == 0)
                r = token_session_aes(tok, c->akv, 16, &c->ak);
out:
        if (rko)
                (void)token_destroy(tok, rko);
        OPENSSL_cleanse(rk, sizeof(rk));
        if (r < 0)
                chain_clear(c);
        return r;
}

/* The token object of a keyset role, checked against the manifest's kcv so a
 * replaced object never silently makes or opens an EKB. */
static int role_object(fl_ctx *ctx, fl_token *tok, const struct keyset *ks, const char *role, token_obj *ret)
{
        const struct ks_key *k = keyset_find(ks, role);
        char kcv[7];
        int r;

        if (!k)
                return fl_err(ctx, -EINVAL, "the keyset has no '%s' key", role);
        r = keyset_key_object(ctx, tok, k, ret);
        if (r < 0)
                return r;
        r = token_aes_kcv(tok, *ret, kcv);
        if (r < 0)
                return r;
        if (k->kcv && strcmp(kcv, k->kcv))
                return fl_err(ctx, -EBADMSG, "key '%s' in the token has check value %s, the keyset says %s", role, kcv,
                              k->kcv);
        return 0;
}

static const char *chip_roots(enum fl_chip chip, size_t *n)
{
        *n = chip == FL_CHIP_T234 ? 2 : 1;
        return chip == FL_CHIP_T234 ? "oem-k1\0oem-k2" : "kek2";
}

static int root_check(fl_ctx *ctx, const struct keyset *ks, const char *role)
{
        if (ks->chip == FL_CHIP_T234 && strcmp(role, "oem-k1") && strcmp(role, "oem-k2"))
                return fl_err(ctx, -EINVAL, "EKB root '%s': t234 EKBs are rooted in oem-k1 or oem-k2", role);
        if (ks->chip == FL_CHIP_T194 && strcmp(role, "kek2"))
                return fl_err(ctx, -EINVAL, "EKB root '%s': t194 EKBs are rooted in kek2", role);
        if (!keyset_find(ks, role))
                return fl_err(ctx, -EINVAL, "EKB root '%s' is not in the keyset", role);
        return 0;
}

/* ---- building ------------------------------------------------------------ */

void ekb_result_clear(struct ekb_result *r)
{
        free(r->data);
        memset(r, 0, sizeof(*r));
}

static bool tag_known(uint32_t tag)
{
        return (tag >= 1 && tag <= 5) || (tag >= 91 && tag <= 97);
}

static int add_rec(struct fl_secret *pl, size_t *pos, uint32_t tag, const unsigned char *v, size_t len, bool tagged)
{
        size_t need = *pos + (tagged ? 8 : 0) + len;
        if (need > pl->len)
                return -E2BIG;
        if (tagged) {
                put_le32(pl->data + *pos, tag);
                put_le32(pl->data + *pos + 4, (uint32_t)len);
                *pos += 8;
        }
        memcpy(pl->data + *pos, v, len);
        *pos += len;
        return 0;
}

int ekb_build(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, const struct ekb_build_req *req,
              struct ekb_result *ret)
{
        static const char *const key_roles[] = { "ekb-payload", "ekb-disk", "ekb-auth" };
        static const uint32_t key_tags[] = { 1, 2, 4 };
        struct ekb_result res = { 0 };
        struct fl_secret vals[3] = { { 0 } }, pl = { 0 };
        struct chain ch = { 0 };
        const char *root = req->root_role;
        unsigned char *ct = NULL, *img = NULL, *mac_data;
        size_t pos = 0, total = 0, plain_len, enc_len, unfilled, fl, body, len;
        fl_token *tok = NULL;
        token_obj root_obj, obj;
        bool legacy = req->fmt == EKB_FMT_LEGACY;
        int r;

        if (req->fmt == EKB_FMT_NONE)
                return fl_err(ctx, -EINVAL, "EKB format not given (legacy, 1.0 or 2.0)");
        if (!root) {
                size_t n;
                const char *cand = chip_roots(ks->chip, &n);
                for (size_t i = 0; i < n; i++, cand += strlen(cand) + 1)
                        if (keyset_find(ks, cand)) {
                                if (root)
                                        return fl_err(ctx, -EINVAL, "the keyset has both oem-k1 and oem-k2: say which "
                                                      "one is the EKB root");
                                root = cand;
                        }
                if (!root)
                        return fl_err(ctx, -EINVAL, "the keyset has no EKB root key (%s)",
                                      ks->chip == FL_CHIP_T234 ? "oem-k1 or oem-k2" : "kek2");
        }
        r = root_check(ctx, ks, root);
        if (r < 0)
                return r;
        if (req->fmt != EKB_FMT_2_0 && !req->fv)
                return fl_err(ctx, -EINVAL, "EKB %s needs the FV compiled into OP-TEE (fv_for_ekb); NVIDIA's public "
                              "default is bad66eb4484983684b992fe54a648bb8", ekb_format_name(req->fmt));
        for (size_t i = 0; i < 2; i++)
                if (!keyset_find(ks, key_roles[i]))
                        return fl_err_hint(ctx, FL_HINT_EKB_KEY, -EINVAL, "the keyset has no '%s' key (EKB tag %u)",
                                           key_roles[i], key_tags[i]);
        if (legacy && (req->n_extra || keyset_find(ks, "ekb-auth")))
                fl_log(ctx, FL_LOG_WARN, "the legacy container holds only the payload and disk keys; %s left out",
                       req->n_extra ? "the extra records are" : "ekb-auth is");
        if (legacy && req->n_extra)
                return fl_err(ctx, -EINVAL, "the legacy container has no records: extra records need EKB 1.0 or 2.0");
        for (size_t i = 0; i < req->n_extra; i++) {
                uint32_t t = req->extra[i].tag;
                if (!tag_known(t) || t == 1 || t == 2 || t == 4)
                        return fl_err(ctx, -EINVAL, "EKB record tag %u: extra records take tags 3, 5 and 91-97 (1, 2, "
                                      "4 come from the keyset)", t);
                if ((t == 91 && req->extra[i].len != 10) || (t == 92 && req->extra[i].len != 32))
                        return fl_err(ctx, -EINVAL, "EKB record tag %u must be %d bytes, not %zu", t,
                                      t == 91 ? 10 : 32, req->extra[i].len);
                if (req->extra[i].len > EKB_IMAGE_MAX)
                        return fl_err(ctx, -EINVAL, "EKB record tag %u is too large", t);
                total += 8 + req->extra[i].len;
        }

        r = keyset_token_open(ctx, ks, opts, &tok);
        if (r < 0)
                return r;
        r = role_object(ctx, tok, ks, root, &root_obj);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < 3; i++) {
                const struct ks_key *k = keyset_find(ks, key_roles[i]);
                if (!k || (legacy && i == 2))
                        continue;
                r = role_object(ctx, tok, ks, key_roles[i], &obj);
                if (r == 0)
                        r = token_read_secret(tok, obj, &vals[i]);
                if (r < 0)
                        goto out;
                total += 8 + vals[i].len;
        }
        total += 8 + 16;
        if (total > EKB_IMAGE_MAX) {
                r = fl_err(ctx, -EINVAL, "the records (%zu bytes) do not fit an EKB", total);
                goto out;
        }
        r = secret_alloc(&pl, total);
        if (r < 0)
                goto out;
        memset(pl.data, 0, pl.len);
        for (size_t i = 0; i < 3 && r == 0; i++)
                if (vals[i].data) {
                        r = add_rec(&pl, &pos, key_tags[i], vals[i].data, vals[i].len, !legacy);
                        if (r == 0 && res.n_tags < EKB_MAX_RECORDS)
                                res.tags[res.n_tags++] = key_tags[i];
                }
        for (size_t i = 0; i < req->n_extra && r == 0; i++) {
                r = add_rec(&pl, &pos, req->extra[i].tag, req->extra[i].value, req->extra[i].len, true);
                if (r == 0 && res.n_tags < EKB_MAX_RECORDS)
                        res.tags[res.n_tags++] = req->extra[i].tag;
        }
        if (r < 0)
                goto out;
        if (!legacy)
                pos += 8; /* the end record: 8 zero bytes (pl is zeroed) */
        plain_len = pos;
        /* Conditional PKCS#7 (gen_ekb pads only an incomplete last block). */
        enc_len = plain_len % 16 ? (plain_len / 16 + 1) * 16 : plain_len;
        for (size_t i = plain_len; i < enc_len; i++)
                pl.data[i] = (unsigned char)(enc_len - plain_len);
        if (enc_len > (size_t)131072 - (req->fmt == EKB_FMT_2_0 ? 80 : 64)) {
                r = fl_err(ctx, -EINVAL, "the EKB content (%zu bytes) exceeds gen_ekb's limit", enc_len);
                goto out;
        }

        /* Random values from the token's RNG, FV drawn before the IV as gen_ekb 1.6 does. */
        if (req->fv)
                memcpy(res.fv, req->fv, 16);
        else if ((r = token_random_id(tok, res.fv, 16)) < 0)
                goto out;
        if (req->iv)
                memcpy(res.iv, req->iv, 16);
        else if ((r = token_random_id(tok, res.iv, 16)) < 0)
                goto out;

        r = chain_make(tok, root_obj, res.fv, &ch);
        if (r < 0)
                goto out;
        ct = malloc(enc_len);
        if (!ct) {
                r = -ENOMEM;
                goto out;
        }
        r = token_aes_cbc(tok, ch.ek, true, res.iv, pl.data, enc_len, ct);
        if (r < 0)
                goto out;

        unfilled = fixed_len(req->fmt) + enc_len;
        fl = filler_for(unfilled - 4);
        len = unfilled + fl;
        img = calloc(1, len);
        if (!img) {
                r = -ENOMEM;
                goto out;
        }
        put_le32(img, (uint32_t)(len - 4));
        memcpy(img + 4, ekb_magic, 8);
        if (req->fmt == EKB_FMT_1_0)
                img[12] = 1;
        else if (req->fmt == EKB_FMT_2_0) {
                img[12] = 2;
                memcpy(img + 16, res.fv, 16);
        }
        body = req->fmt == EKB_FMT_2_0 ? 32 : 16;
        mac_data = img + body + 16;
        if (legacy) {
                memcpy(mac_data, res.iv, 16);
                memcpy(mac_data + 16, ct, enc_len);
        } else {
                put_le32(mac_data, (uint32_t)enc_len);
                memcpy(mac_data + 4, content_magic, 4);
                memcpy(mac_data + 16, res.iv, 16);
                memcpy(mac_data + 32, ct, enc_len);
        }
        r = token_aes_cmac(tok, ch.ak, mac_data, (legacy ? 16 : 32) + enc_len, img + body);
        if (r < 0)
                goto out;
        memset(img + unfilled, (int)(fl & 0xff), fl);

        {
                unsigned char md[32];
                SHA256(img, len, md);
                hex_encode(md, 32, res.sha256);
        }
        snprintf(res.root_role, sizeof(res.root_role), "%s", root);
        res.data = img;
        res.len = len;
        img = NULL;
        *ret = res;
        r = 0;
out:
        chain_clear(&ch);
        for (size_t i = 0; i < 3; i++)
                secret_wipe(&vals[i]);
        secret_wipe(&pl);
        free(ct);
        free(img);
        token_close(tok);
        return r;
}

/* ---- damage location ---------------------------------------------------------- */

static int aes_block(const unsigned char key[16], bool enc, const unsigned char in[16], unsigned char out[16])
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int n = 0, ok;

        if (!c)
                return -ENOMEM;
        ok = (enc ? EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL)
                  : EVP_DecryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL)) == 1 &&
             EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
             (enc ? EVP_EncryptUpdate(c, out, &n, in, 16) : EVP_DecryptUpdate(c, out, &n, in, 16)) == 1 && n == 16;
        EVP_CIPHER_CTX_free(c);
        return ok ? 0 : -EIO;
}

static void xor16(unsigned char *d, const unsigned char *a, const unsigned char *b)
{
        for (int i = 0; i < 16; i++)
                d[i] = a[i] ^ b[i];
}

static int diff_bytes(const unsigned char *a, const unsigned char *b, int *ret_at)
{
        int n = 0;
        for (int i = 0; i < 16; i++)
                if (a[i] != b[i]) {
                        n++;
                        *ret_at = i;
                }
        return n;
}

int ekb_locate_damage(const unsigned char ak[16], const unsigned char *mac_data, size_t mac_len,
                      const unsigned char tag[16], long *ret_offset, bool *ret_tag_damaged)
{
        unsigned char l[16], k1[16], zero[16] = { 0 }, t[16], x[16], d[16], want[16];
        unsigned char *h = NULL;
        size_t nb = mac_len / 16;
        long found = -1;
        int r, at = 0, hits = 0;

        *ret_offset = -1;
        *ret_tag_damaged = false;
        if (mac_len == 0 || mac_len % 16)
                return -EINVAL;
        /* CMAC subkey K1 (full last block). */
        r = aes_block(ak, true, zero, l);
        if (r < 0)
                return r;
        for (int i = 0; i < 16; i++)
                k1[i] = (unsigned char)(l[i] << 1 | (i < 15 ? l[i + 1] >> 7 : 0));
        if (l[0] & 0x80)
                k1[15] ^= 0x87;
        /* Forward: h[j] is the chain value after block j (h[0] = 0). */
        h = calloc(nb + 1, 16);
        if (!h)
                return -ENOMEM;
        for (size_t j = 1; j < nb; j++) {
                xor16(x, h + 16 * (j - 1), mac_data + 16 * (j - 1));
                if ((r = aes_block(ak, true, x, h + 16 * j)) < 0)
                        goto out;
        }
        xor16(x, h + 16 * (nb - 1), mac_data + 16 * (nb - 1));
        xor16(x, x, k1);
        if ((r = aes_block(ak, true, x, t)) < 0)
                goto out;
        if (diff_bytes(t, tag, &at) == 1) {
                *ret_tag_damaged = true;
                *ret_offset = at;
                r = 0;
                goto out;
        }
        /* Backward from the stored tag: the chain input each block would need. */
        if ((r = aes_block(ak, false, tag, d)) < 0)
                goto out;
        xor16(want, d, k1); /* = h[nb-1] ^ M[nb-1] for an intact last block */
        for (size_t j = nb; j-- > 0;) {
                unsigned char need[16];
                xor16(need, want, h + 16 * j); /* the block that would make the chain meet */
                if (diff_bytes(need, mac_data + 16 * j, &at) == 1) {
                        hits++;
                        found = (long)(16 * j) + at;
                }
                if (j == 0)
                        break;
                xor16(x, want, mac_data + 16 * j); /* expected h[j] */
                if ((r = aes_block(ak, false, x, d)) < 0)
                        goto out;
                memcpy(want, d, 16); /* = h[j-1] ^ M[j-1] expected */
        }
        if (hits == 1)
                *ret_offset = found;
        r = 0;
out:
        if (h)
                OPENSSL_cleanse(h, (nb + 1) * 16);
        free(h);
        OPENSSL_cleanse(l, sizeof(l));
        OPENSSL_cleanse(k1, sizeof(k1));
        return r;
}

/* ---- verifying ------------------------------------------------------------- */

static void problem(struct ekb_report *rep, const char *fmt, ...) FL_PRINTF(2, 3);

static void problem(struct ekb_report *rep, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        strv_add_fmtv(rep->problems, &rep->n_problems, EKB_REPORT_MAX_PROBLEMS, fmt, ap);
        va_end(ap);
}

void ekb_report_problem(struct ekb_report *rep, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        strv_add_fmtv(rep->problems, &rep->n_problems, EKB_REPORT_MAX_PROBLEMS, fmt, ap);
        va_end(ap);
}

void ekb_report_clear(struct ekb_report *rep)
{
        for (size_t i = 0; i < rep->n_problems; i++)
                free(rep->problems[i]);
        memset(rep, 0, sizeof(*rep));
}

static int soft_kcv(const unsigned char *v, size_t len, char out[7])
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        unsigned char zero[16] = { 0 }, enc[32];
        int n = 0, r = -EINVAL;

        if (!c)
                return -ENOMEM;
        if ((len == 16 || len == 32) &&
            EVP_EncryptInit_ex(c, len == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(), NULL, v, NULL) == 1 &&
            EVP_CIPHER_CTX_set_padding(c, 0) == 1 && EVP_EncryptUpdate(c, enc, &n, zero, 16) == 1 && n == 16) {
                hex_encode(enc, 3, out);
                r = 0;
        }
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(enc, sizeof(enc));
        return r;
}

static const char *tag_name(uint32_t tag)
{
        switch (tag) {
        case 1:
                return "kernel/UEFI payload key";
        case 2:
                return "disk encryption key";
        case 3:
                return "device-id certificate (1.4/1.5) or UEFI PV key (1.2)";
        case 4:
                return "UEFI variable authentication key";
        case 5:
                return "device-id certificate (1.2)";
        case 91:
                return "fTPM serial number";
        case 92:
                return "fTPM EPS seed";
        case 93:
                return "fTPM RSA EK certificate";
        case 94:
                return "fTPM EC EK certificate";
        case 95:
                return "Silicon-ID certificate";
        case 96:
                return "fTPM RSA EK CSR";
        case 97:
                return "fTPM EC EK CSR";
        default:
                return "unknown";
        }
}

static void release_of(struct ekb_report *rep, const struct ekb_rec *recs, size_t n)
{
        bool has[128] = { false };

        for (size_t i = 0; i < n; i++)
                if (recs[i].tag < 128)
                        has[recs[i].tag] = true;
        if (rep->fmt == EKB_FMT_LEGACY)
                snprintf(rep->release, sizeof(rep->release),
                         "legacy container (gen_ekb of L4T R32.x Trusty and R35.1)");
        else if (rep->fmt == EKB_FMT_2_0)
                snprintf(rep->release, sizeof(rep->release),
                         "EKB 2.0 (gen_ekb 1.6; L4T R36.4+ / JetPack 6.2 [unverified])");
        else if (has[5])
                snprintf(rep->release, sizeof(rep->release), "EKB 1.0 (gen_ekb 1.2: L4T R35.2.1/R35.3.1)");
        else if (has[3] && !has[4])
                snprintf(rep->release, sizeof(rep->release),
                         "EKB 1.0 (gen_ekb 1.3/1.4: L4T R35.4.1 to R36.3, tag 3 = device-id)");
        else if (has[4] || has[91])
                snprintf(rep->release, sizeof(rep->release), "EKB 1.0 (gen_ekb 1.5: L4T R36.x)");
        else
                snprintf(rep->release, sizeof(rep->release), "EKB 1.0 (gen_ekb 1.2 to 1.5: L4T R35.2.1 to R36.3)");
}

/* Which role's kcv a key record is checked against. */
static const char *record_role(uint32_t tag)
{
        return tag == 1 ? "ekb-payload" : tag == 2 ? "ekb-disk" : tag == 4 ? "ekb-auth" : NULL;
}

static void check_records(const struct keyset *ks, const unsigned char *plain, const struct ekb_rec *recs, size_t n,
                          struct ekb_report *rep)
{
        for (size_t i = 0; i < n && rep->n_recs < EKB_MAX_RECORDS; i++) {
                struct ekb_report_rec *rr = &rep->recs[rep->n_recs++];
                const char *role = record_role(recs[i].tag);
                const struct ks_key *k = role ? keyset_find(ks, role) : NULL;
                char kcv[7];

                rr->tag = recs[i].tag;
                rr->len = recs[i].len;
                rr->ok = true;
                if (!tag_known(recs[i].tag)) {
                        rr->ok = false;
                        snprintf(rr->note, sizeof(rr->note), "unknown tag");
                        problem(rep, "records: tag %u (%zu bytes) is not a tag gen_ekb writes", recs[i].tag,
                                recs[i].len);
                        continue;
                }
                if (!k) {
                        snprintf(rr->note, sizeof(rr->note), "%s (not checked%s)", tag_name(recs[i].tag),
                                 role ? ": no such key in the keyset" : "");
                        continue;
                }
                if (recs[i].len != key_type_secret_len(k->type) || soft_kcv(plain + recs[i].off, recs[i].len, kcv) < 0) {
                        rr->ok = false;
                        snprintf(rr->note, sizeof(rr->note), "%s: %zu bytes, the keyset's %s is %zu",
                                 tag_name(recs[i].tag), recs[i].len, role, key_type_secret_len(k->type));
                        problem(rep, "records: tag %u (%s) is %zu bytes; the keyset's %s is %zu bytes", recs[i].tag,
                                tag_name(recs[i].tag), recs[i].len, role, key_type_secret_len(k->type));
                        continue;
                }
                if (k->kcv && strcmp(kcv, k->kcv)) {
                        rr->ok = false;
                        snprintf(rr->note, sizeof(rr->note), "%s: kcv %s, the keyset's %s has %s",
                                 tag_name(recs[i].tag), kcv, role, k->kcv);
                        problem(rep, "records: tag %u (%s) has kcv %s; the keyset's %s has kcv %s", recs[i].tag,
                                tag_name(recs[i].tag), kcv, role, k->kcv);
                        continue;
                }
                snprintf(rr->note, sizeof(rr->note), "%s: matches %s (kcv %s)", tag_name(recs[i].tag), role, kcv);
        }
}

/* Name the damaged region of an image whose CMAC does not verify under any
 * root: a single altered byte of the CMAC, the content header, the IV or
 * the ciphertext is found exactly; a 2.0 FV byte by trying the 16 × 255
 * one-byte changes through the token's AES-ECB. */
static void diagnose(fl_ctx *ctx, fl_token *tok, const struct ekb_image *im, const struct chain *chains,
                     const token_obj *roots, const char *const *root_names, size_t n_roots, struct ekb_report *rep)
{
        for (size_t i = 0; i < n_roots; i++) {
                long off;
                bool tagd;
                if (ekb_locate_damage(chains[i].akv, im->mac_data, im->mac_len, im->cmac, &off, &tagd) < 0 || off < 0)
                        continue;
                if (tagd) {
                        problem(rep, "MAC: byte %ld of the stored CMAC (file offset %zu) differs from the CMAC "
                                "computed with %s over intact content: the CMAC field was altered", off,
                                im->mac_off - 16 + (size_t)off, root_names[i]);
                } else {
                        size_t foff = im->mac_off + (size_t)off;
                        const char *region;
                        size_t rel;
                        if (im->fmt != EKB_FMT_LEGACY && off < 16) {
                                region = "content header";
                                rel = (size_t)off;
                        } else if (off < (im->fmt == EKB_FMT_LEGACY ? 16 : 32)) {
                                region = "IV";
                                rel = (size_t)off - (im->fmt == EKB_FMT_LEGACY ? 0 : 16);
                        } else {
                                region = "ciphertext";
                                rel = (size_t)off - (im->fmt == EKB_FMT_LEGACY ? 16 : 32);
                        }
                        problem(rep, "%s: byte %zu (file offset %zu) was altered: changing that one byte back "
                                "makes the CMAC verify with %s", region, rel, foff, root_names[i]);
                }
                return;
        }
        /* The length field: a changed enc_len still fits when the filler
         * rule absorbs it (any length keeps a small image at 1028 bytes). */
        if (im->fmt != EKB_FMT_LEGACY) {
                size_t fixed = im->fmt == EKB_FMT_1_0 ? 64 : 80, total = fixed + im->enc_len + im->filler_len;
                unsigned char *m = malloc(im->mac_len + total);
                for (size_t i = 0; m && i < n_roots; i++) {
                        for (size_t e = 16; fixed + e <= total; e += 16) {
                                unsigned char t[16];
                                if (e == im->enc_len || fixed + e + filler_for(fixed + e - 4) != total)
                                        continue;
                                memcpy(m, im->mac_data, 32 + e);
                                put_le32(m, (uint32_t)e);
                                if (soft_aes_cmac(chains[i].akv, 16, m, 32 + e, t) == 0 && !CRYPTO_memcmp(t, im->cmac, 16)) {
                                        problem(rep, "content header: the ciphertext length field (file offset %zu) "
                                                "says %zu; with %zu the CMAC verifies with %s: the length was altered",
                                                im->mac_off, im->enc_len, e, root_names[i]);
                                        free(m);
                                        return;
                                }
                        }
                }
                free(m);
        }
        if (im->fmt == EKB_FMT_2_0) {
                for (size_t i = 0; i < n_roots; i++) {
                        unsigned char fv[16], rk[16], ek[16], ak[16], t[16], msg[64];
                        size_t ml;
                        for (int b = 0; b < 16; b++) {
                                for (int v = 1; v < 256; v++) {
                                        memcpy(fv, im->fv, 16);
                                        fv[b] ^= (unsigned char)v;
                                        if (token_aes_ecb_encrypt(tok, roots[i], fv, 16, rk) < 0)
                                                goto fv_done;
                                        ml = kdf_cmac_message("authentication", (const unsigned char *)"ekb", 3, msg,
                                                              sizeof(msg));
                                        if (soft_aes_cmac(rk, 16, msg, ml, ak) < 0 ||
                                            soft_aes_cmac(ak, 16, im->mac_data, im->mac_len, t) < 0)
                                                goto fv_done;
                                        if (!CRYPTO_memcmp(t, im->cmac, 16)) {
                                                problem(rep, "FV: byte %d (file offset %d) of the FV in the header was "
                                                        "altered: with it changed back the CMAC verifies with %s", b,
                                                        16 + b, root_names[i]);
                                                OPENSSL_cleanse(rk, sizeof(rk));
                                                OPENSSL_cleanse(ak, sizeof(ak));
                                                return;
                                        }
                                }
                        }
                fv_done:
                        OPENSSL_cleanse(rk, sizeof(rk));
                        OPENSSL_cleanse(ek, sizeof(ek));
                        OPENSSL_cleanse(ak, sizeof(ak));
                }
        }
        (void)ctx;
        {
                char names[40] = "";
                for (size_t i = 0; i < n_roots; i++)
                        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? " or " : "",
                                 root_names[i]);
                problem(rep, "MAC: the CMAC does not verify with %s and %s: the image was made with another key%s, "
                        "or more than one byte of it was altered", names,
                        im->fmt == EKB_FMT_2_0 ? "the FV in its header" : "the FV given",
                        im->fmt == EKB_FMT_2_0 ? "" : " or FV");
        }
}

int ekb_verify(fl_ctx *ctx, const struct token_opts *opts, const struct keyset *ks, const struct ekb_verify_req *req,
               struct ekb_report *rep)
{
        struct ekb_image im;
        struct chain chains[2];
        token_obj roots[2];
        const char *root_names[2];
        size_t n_roots = 0, n_recs = 0;
        struct ekb_rec recs[EKB_MAX_RECORDS];
        struct fl_secret plain = { 0 };
        fl_token *tok = NULL;
        int good = -1, r;

        memset(rep, 0, sizeof(*rep));
        memset(chains, 0, sizeof(chains));
        {
                unsigned char md[32];
                SHA256(req->data, req->len, md);
                hex_encode(md, 32, rep->sha256);
        }
        if (req->root_role) {
                r = root_check(ctx, ks, req->root_role);
                if (r < 0)
                        return r;
                root_names[n_roots++] = req->root_role;
        } else {
                size_t n;
                const char *cand = chip_roots(ks->chip, &n);
                for (size_t i = 0; i < n; i++, cand += strlen(cand) + 1)
                        if (keyset_find(ks, cand))
                                root_names[n_roots++] = cand;
                if (!n_roots)
                        return fl_err(ctx, -EINVAL, "the keyset has no EKB root key (%s)",
                                      ks->chip == FL_CHIP_T234 ? "oem-k1 or oem-k2" : "kek2");
        }

        /* Parsed under a fixed name so the report gets "region: …" alone,
         * whatever the file is called. */
        r = ekb_parse(ctx, "EKB", req->data, req->len, &im);
        if (r == -EBADMSG) {
                const char *m = fl_ctx_last_error(ctx);
                problem(rep, "%s", m && !strncmp(m, "EKB: ", 5) ? m + 5 : "not an EKB image");
                fl_err_clear(ctx);
                return 0;
        }
        if (r < 0)
                return r;
        rep->fmt = im.fmt;
        if (im.fmt != EKB_FMT_2_0 && !req->fv)
                return fl_err(ctx, -EINVAL, "%s is an EKB %s image: its FV is not in the file; give the FV it was "
                              "made with (NVIDIA's public default is bad66eb4484983684b992fe54a648bb8)", req->name,
                              ekb_format_name(im.fmt));

        r = keyset_token_open(ctx, ks, opts, &tok);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_roots; i++) {
                unsigned char t[16];
                r = role_object(ctx, tok, ks, root_names[i], &roots[i]);
                if (r == 0)
                        r = chain_make(tok, roots[i], im.fmt == EKB_FMT_2_0 ? im.fv : req->fv, &chains[i]);
                if (r == 0)
                        r = token_aes_cmac(tok, chains[i].ak, im.mac_data, im.mac_len, t);
                if (r < 0)
                        goto out;
                if (!CRYPTO_memcmp(t, im.cmac, 16)) {
                        good = (int)i;
                        break;
                }
        }
        if (good < 0) {
                diagnose(ctx, tok, &im, chains, roots, root_names, n_roots, rep);
                r = 0;
                goto out;
        }
        snprintf(rep->root_role, sizeof(rep->root_role), "%s", root_names[good]);
        r = secret_alloc(&plain, im.enc_len);
        if (r < 0)
                goto out;
        r = token_aes_cbc(tok, chains[good].ek, false, im.iv, im.ct, im.enc_len, plain.data);
        if (r < 0)
                goto out;
        r = ekb_records_parse(ctx, "EKB", im.fmt, ks->chip, plain.data, plain.len, recs, EKB_MAX_RECORDS, &n_recs);
        if (r == -EBADMSG) {
                const char *m = fl_ctx_last_error(ctx);
                problem(rep, "%s (the CMAC verifies, so the image was made this way)",
                        m && !strncmp(m, "EKB: ", 5) ? m + 5 : "records");
                fl_err_clear(ctx);
                r = 0;
                goto out;
        }
        if (r < 0)
                goto out;
        release_of(rep, recs, n_recs);
        check_records(ks, plain.data, recs, n_recs, rep);
        {
                struct ftpm_ekb_check fc = { .ks = ks, .keyset_path = req->keyset_path, .tok = tok,
                                             .sn = req->ftpm_sn };
                r = ftpm_ekb_records_check(ctx, &fc, plain.data, recs, n_recs, rep);
                if (r < 0)
                        goto out;
        }
        if (ks->chip == FL_CHIP_T234 && !strcmp(root_names[good], "oem-k1") && im.fmt == EKB_FMT_1_0 &&
            strstr(rep->release, "1.2:"))
                problem(rep, "root: OP-TEE of L4T R35.2.1/R35.3.1 opens EKBs with OEM_K2 only; this one uses "
                        "oem-k1");
        r = 0;
out:
        for (size_t i = 0; i < n_roots; i++)
                chain_clear(&chains[i]);
        secret_wipe(&plain);
        token_close(tok);
        return r;
}
