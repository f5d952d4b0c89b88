/* sign.c — image signatures and fuse-key MACs with token-held keys: scheme
 * and format tables, streamed hashing of file ranges, ECDSA raw<->DER, the
 * tegrasign byte order, the production interlock, C_Sign through lib/p11,
 * and verification with OpenSSL EVP. See sign.h. */
#include <fcntl.h>
#include <libgen.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "keyset.h"
#include "sign.h"
#include "signer.h"
#include "tegra_key.h"

/* Read block for streamed hashing: large enough that syscalls do not
 * dominate, small enough to be constant memory for any image. */
#define HASH_BLOCK (1024 * 1024)
#define SIG_FILE_MAX (64 * 1024)
#define PEM_LABEL "SIGNATURE"

enum scheme_kind { K_RSA_PSS, K_RSA_PKCS1, K_ECDSA, K_EDDSA, K_HMAC, K_CMAC };

static const struct scheme_info {
        enum sign_scheme s;
        const char *name;
        enum scheme_kind kind;
        const char *md;      /* prehash digest (RSA, ECDSA) */
        size_t md_len;
        unsigned long mech;  /* CKM_* */
        unsigned long ck_md; /* CKM_SHA* for PSS params */
        unsigned long mgf;   /* CKG_MGF1_* */
        size_t salt_len;     /* RSA-PSS salt length */
} schemes[] = {
        { SCHEME_RSA_PSS_SHA256, "rsa-pss-sha256", K_RSA_PSS, "SHA256", 32, CKM_RSA_PKCS_PSS, CKM_SHA256,
          CKG_MGF1_SHA256, 32 },
        { SCHEME_RSA_PSS_SHA512, "rsa-pss-sha512", K_RSA_PSS, "SHA512", 64, CKM_RSA_PKCS_PSS, CKM_SHA512,
          CKG_MGF1_SHA512, 64 },
        /* What NVIDIA's tegrasign_v3 makes for --sha sha512 (its software
         * mode, checked against its output): SHA-512 digest and MGF1, but
         * salt 32, not 64 (shared/vectors/tegrasign/VECTORS.txt). */
        { SCHEME_RSA_PSS_SHA512_SALT32, "rsa-pss-sha512-salt32", K_RSA_PSS, "SHA512", 64, CKM_RSA_PKCS_PSS,
          CKM_SHA512, CKG_MGF1_SHA512, 32 },
        { SCHEME_RSA_PKCS1_SHA256, "rsa-pkcs1-sha256", K_RSA_PKCS1, "SHA256", 32, CKM_RSA_PKCS, 0, 0, 0 },
        { SCHEME_ECDSA_SHA256, "ecdsa-sha256", K_ECDSA, "SHA256", 32, CKM_ECDSA, 0, 0, 0 },
        { SCHEME_ECDSA_SHA384, "ecdsa-sha384", K_ECDSA, "SHA384", 48, CKM_ECDSA, 0, 0, 0 },
        { SCHEME_ECDSA_SHA512, "ecdsa-sha512", K_ECDSA, "SHA512", 64, CKM_ECDSA, 0, 0, 0 },
        { SCHEME_ED25519, "ed25519", K_EDDSA, NULL, 0, CKM_EDDSA, 0, 0, 0 },
        { SCHEME_HMAC_SHA256, "hmac-sha256", K_HMAC, NULL, 0, CKM_SHA256_HMAC, 0, 0, 0 },
        { SCHEME_AES_CMAC, "aes-cmac", K_CMAC, NULL, 0, CKM_AES_CMAC, 0, 0, 0 },
};

static const char *const format_names[] = {
        [SIGFMT_AUTO] = "auto", [SIGFMT_RAW] = "raw", [SIGFMT_DER] = "der",
        [SIGFMT_PEM] = "pem",   [SIGFMT_TEGRA] = "tegra",
};

static const struct scheme_info *scheme_get(enum sign_scheme s)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(schemes); i++)
                if (schemes[i].s == s)
                        return &schemes[i];
        return NULL;
}

const char *sign_scheme_name(enum sign_scheme s)
{
        const struct scheme_info *si = scheme_get(s);
        return si ? si->name : "none";
}

int sign_scheme_parse(fl_ctx *ctx, const char *name, enum sign_scheme *ret)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(schemes); i++)
                if (!strcmp(name, schemes[i].name)) {
                        *ret = schemes[i].s;
                        return 0;
                }
        return fl_err(ctx, -EINVAL,
                      "signing scheme '%s' is unknown (rsa-pss-sha256, rsa-pss-sha512, rsa-pss-sha512-salt32, rsa-pkcs1-sha256, "
                      "ecdsa-sha256, ecdsa-sha384, ecdsa-sha512, ed25519, hmac-sha256, aes-cmac)",
                      name);
}

enum sign_scheme sign_scheme_default(enum key_type t)
{
        switch (t) {
        case KT_RSA2K:
        case KT_RSA3K:
                return SCHEME_RSA_PSS_SHA256;
        case KT_P256:
                return SCHEME_ECDSA_SHA256;
        case KT_P384:
                return SCHEME_ECDSA_SHA384;
        case KT_P521:
                return SCHEME_ECDSA_SHA512;
        case KT_ED25519:
                return SCHEME_ED25519;
        case KT_AES128:
        case KT_AES256:
                /* tegrasign's default SBK operation is AES-CMAC. */
                return SCHEME_AES_CMAC;
        case KT_GENERIC128:
        case KT_GENERIC256:
                return SCHEME_HMAC_SHA256;
        default:
                return SCHEME_NONE;
        }
}

static bool kind_accepts(enum scheme_kind k, enum key_type t)
{
        switch (k) {
        case K_RSA_PSS:
        case K_RSA_PKCS1:
                return t == KT_RSA2K || t == KT_RSA3K;
        case K_ECDSA:
                return t == KT_P256 || t == KT_P384 || t == KT_P521;
        case K_EDDSA:
                return t == KT_ED25519;
        case K_HMAC:
                return t == KT_GENERIC128 || t == KT_GENERIC256 || t == KT_AES128 || t == KT_AES256;
        case K_CMAC:
                return t == KT_AES128 || t == KT_AES256;
        }
        return false;
}

static const char *kind_needs(enum scheme_kind k)
{
        switch (k) {
        case K_RSA_PSS:
        case K_RSA_PKCS1:
                return "an RSA key (rsa2k, rsa3k)";
        case K_ECDSA:
                return "an EC key (p256, p384, p521)";
        case K_EDDSA:
                return "an Ed25519 key";
        case K_HMAC:
                return "a secret key (a fuse key with its HMAC twin, or a generic secret)";
        case K_CMAC:
                return "an AES key";
        }
        return "?";
}

int sign_scheme_check_key(fl_ctx *ctx, enum sign_scheme s, enum key_type t, const char *what)
{
        const struct scheme_info *si = scheme_get(s);

        if (!si)
                return fl_err(ctx, -EINVAL, "%s: no signing scheme for key type %s", what, key_type_name(t));
        if (!kind_accepts(si->kind, t))
                return fl_err(ctx, -EINVAL, "%s holds a key of type %s; scheme %s needs %s", what,
                              t == KT_NONE ? "(unsupported)" : key_type_name(t), si->name, kind_needs(si->kind));
        return 0;
}

bool sign_scheme_is_mac(enum sign_scheme s)
{
        const struct scheme_info *si = scheme_get(s);
        return si && (si->kind == K_HMAC || si->kind == K_CMAC);
}

bool sign_scheme_prehashed(enum sign_scheme s)
{
        const struct scheme_info *si = scheme_get(s);
        return si && si->md;
}

const char *sign_scheme_md(enum sign_scheme s)
{
        const struct scheme_info *si = scheme_get(s);
        return si ? si->md : NULL;
}

size_t sign_scheme_digest_len(enum sign_scheme s)
{
        const struct scheme_info *si = scheme_get(s);
        return si ? si->md_len : 0;
}

const char *sign_format_name(enum sign_format f)
{
        return (size_t)f < FL_ARRAY_SIZE(format_names) ? format_names[f] : "?";
}

int sign_format_parse(fl_ctx *ctx, const char *name, enum sign_format *ret)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(format_names); i++)
                if (!strcmp(name, format_names[i])) {
                        *ret = (enum sign_format)i;
                        return 0;
                }
        return fl_err(ctx, -EINVAL, "signature format '%s' is unknown (raw, der, pem, tegra)", name);
}

int sign_format_check(fl_ctx *ctx, enum sign_scheme s, enum sign_format f)
{
        const struct scheme_info *si = scheme_get(s);

        if (!si)
                return fl_err(ctx, -EINVAL, "no signing scheme");
        if ((f == SIGFMT_DER || f == SIGFMT_PEM) && (si->kind == K_HMAC || si->kind == K_CMAC))
                return fl_err(ctx, -EINVAL, "signature format %s: %s gives a MAC, written raw (or tegra, the same bytes)",
                              sign_format_name(f), si->name);
        if (f == SIGFMT_TEGRA && si->kind == K_ECDSA)
                /* [U] jetson-fuses.md documents tegrasign's stored byte
                 * order for RSA-PSS (reversed) and Ed25519 (plain) only;
                 * guessing an ECDSA layout could produce images the
                 * BootROM rejects, so refuse instead. */
                return fl_err(ctx, -EINVAL,
                              "signature format tegra: the tegrasign byte order of ECDSA signatures is not documented; "
                              "use raw (r||s) or der");
        if (f == SIGFMT_TEGRA && si->kind == K_RSA_PKCS1)
                return fl_err(ctx, -EINVAL, "signature format tegra: tegrasign stores RSA-PSS signatures only, not %s",
                              si->name);
        return 0;
}

/* ---- input ------------------------------------------------------------- */

static int input_open(fl_ctx *ctx, const char *path, int *ret_fd, uint64_t *ret_size)
{
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = errno;
                return fl_err(ctx, r == ENOENT ? -ENOENT : -EINVAL, "%s: cannot open: %s", path, strerror(r));
        }
        if (fstat(fd, &st) < 0) {
                r = errno;
                close(fd);
                return fl_err(ctx, -EINVAL, "%s: cannot stat: %s", path, strerror(r));
        }
        if (S_ISDIR(st.st_mode)) {
                close(fd);
                return fl_err(ctx, -EINVAL, "%s: is a directory, not a file", path);
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return fl_err(ctx, -EINVAL, "%s: not a regular file", path);
        }
        *ret_fd = fd;
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

static int range_resolve(fl_ctx *ctx, const char *path, uint64_t size, const struct sign_range *rg,
                         uint64_t *ret_off, uint64_t *ret_len)
{
        uint64_t off = rg ? rg->offset : 0, len;

        if (size == 0)
                return fl_err(ctx, -EINVAL, "%s: empty file, nothing to sign", path);
        if (off >= size)
                return fl_err_hint(ctx, FL_HINT_SIGN_RANGE, -EINVAL, "%s: offset %" PRIu64 " is beyond the end of the file (%" PRIu64 " bytes)",
                              path, off, size);
        if (rg && rg->has_length) {
                if (rg->length == 0)
                        return fl_err_hint(ctx, FL_HINT_SIGN_RANGE, -EINVAL, "%s: length 0, nothing to sign", path);
                if (rg->length > size - off)
                        return fl_err_hint(ctx, FL_HINT_SIGN_RANGE, -EINVAL,
                                      "%s: offset %" PRIu64 " + length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)",
                                      path, off, rg->length, size);
                len = rg->length;
        } else {
                len = size - off;
        }
        *ret_off = off;
        *ret_len = len;
        return 0;
}

/* The file opened for reading, and the byte range of it that rg names. */
static int range_open(fl_ctx *ctx, const char *path, const struct sign_range *rg, int *ret_fd, uint64_t *ret_off,
                      uint64_t *ret_len)
{
        uint64_t size = 0;
        int fd = -1, r;

        r = input_open(ctx, path, &fd, &size);
        if (r < 0)
                return r;
        r = range_resolve(ctx, path, size, rg, ret_off, ret_len);
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

static int pread_full(fl_ctx *ctx, const char *path, int fd, unsigned char *buf, size_t n, uint64_t off)
{
        while (n) {
                ssize_t k = pread(fd, buf, n, (off_t)off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return fl_err(ctx, -EIO, "%s: read failed: %s", path, strerror(errno));
                }
                if (k == 0)
                        return fl_err(ctx, -EIO, "%s: file shrank while being read", path);
                buf += k;
                n -= (size_t)k;
                off += (uint64_t)k;
        }
        return 0;
}

/* sign_hash_file, also saying which bytes were hashed (the range resolved:
 * "to the end" becomes a length) and, when sha256 is not NULL, their
 * SHA-256 in the same pass. */
static int hash_range(fl_ctx *ctx, const char *path, const struct sign_range *rg, const char *mdname,
                      unsigned char out[EVP_MAX_MD_SIZE], size_t *ret_len, uint64_t *ret_off, uint64_t *ret_rlen,
                      unsigned char *sha256);

int sign_hash_file(fl_ctx *ctx, const char *path, const struct sign_range *rg, const char *mdname,
                   unsigned char out[EVP_MAX_MD_SIZE], size_t *ret_len)
{
        uint64_t off, len;

        return hash_range(ctx, path, rg, mdname, out, ret_len, &off, &len, NULL);
}

static int hash_range(fl_ctx *ctx, const char *path, const struct sign_range *rg, const char *mdname,
                      unsigned char out[EVP_MAX_MD_SIZE], size_t *ret_len, uint64_t *ret_off, uint64_t *ret_rlen,
                      unsigned char *sha256)
{
        EVP_MD *md = NULL;
        EVP_MD_CTX *mctx = NULL, *sctx = NULL;
        unsigned char *buf = NULL;
        uint64_t off, len;
        unsigned int dlen = 0;
        int fd = -1, r;

        r = range_open(ctx, path, rg, &fd, &off, &len);
        if (r < 0)
                goto out;
        *ret_off = off;
        *ret_rlen = len;
        (void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_SEQUENTIAL);
        md = EVP_MD_fetch(NULL, mdname, NULL);
        mctx = EVP_MD_CTX_new();
        buf = malloc(HASH_BLOCK);
        if (!md || !mctx || !buf) {
                r = fl_err(ctx, -ENOMEM, "%s: cannot set up %s: %s", path, mdname, ossl_errstr());
                goto out;
        }
        if (!EVP_DigestInit_ex(mctx, md, NULL)) {
                r = fl_err(ctx, -EIO, "%s: %s init failed: %s", path, mdname, ossl_errstr());
                goto out;
        }
        /* The scheme's digest is SHA-256 already: nothing to add. */
        if (sha256 && !EVP_MD_is_a(md, "SHA256")) {
                sctx = EVP_MD_CTX_new();
                if (!sctx || !EVP_DigestInit_ex(sctx, EVP_sha256(), NULL)) {
                        r = fl_err(ctx, -ENOMEM, "%s: cannot set up SHA-256: %s", path, ossl_errstr());
                        goto out;
                }
        }
        while (len) {
                size_t n = len > HASH_BLOCK ? HASH_BLOCK : (size_t)len;
                r = pread_full(ctx, path, fd, buf, n, off);
                if (r < 0)
                        goto out;
                if (!EVP_DigestUpdate(mctx, buf, n) || (sctx && !EVP_DigestUpdate(sctx, buf, n))) {
                        r = fl_err(ctx, -EIO, "%s: %s failed: %s", path, mdname, ossl_errstr());
                        goto out;
                }
                off += n;
                len -= n;
        }
        if (!EVP_DigestFinal_ex(mctx, out, &dlen) || (sctx && !EVP_DigestFinal_ex(sctx, sha256, NULL))) {
                r = fl_err(ctx, -EIO, "%s: %s failed: %s", path, mdname, ossl_errstr());
                goto out;
        }
        if (sha256 && !sctx)
                memcpy(sha256, out, 32);
        *ret_len = dlen;
        r = 0;
out:
        free(buf);
        EVP_MD_CTX_free(sctx);
        EVP_MD_CTX_free(mctx);
        EVP_MD_free(md);
        if (fd >= 0)
                close(fd);
        return r;
}

int sign_read_file(fl_ctx *ctx, const char *path, const struct sign_range *rg, size_t max,
                   unsigned char **ret_data, size_t *ret_len)
{
        unsigned char *buf = NULL;
        uint64_t off, len;
        int fd = -1, r;

        r = range_open(ctx, path, rg, &fd, &off, &len);
        if (r < 0)
                goto out;
        if (len > max) {
                r = fl_err(ctx, -EINVAL, "%s: %" PRIu64 " bytes to sign, more than the %zu-byte limit for this scheme",
                           path, len, max);
                goto out;
        }
        buf = malloc((size_t)len);
        if (!buf) {
                r = fl_err(ctx, -ENOMEM, "%s: out of memory for %" PRIu64 " bytes", path, len);
                goto out;
        }
        r = pread_full(ctx, path, fd, buf, (size_t)len, off);
        if (r < 0)
                goto out;
        *ret_data = buf;
        *ret_len = (size_t)len;
        buf = NULL;
        r = 0;
out:
        free(buf);
        if (fd >= 0)
                close(fd);
        return r;
}

int sign_tbs_load(fl_ctx *ctx, enum sign_scheme s, const char *path, const struct sign_range *rg,
                  bool is_digest, struct sign_tbs *ret)
{
        const struct scheme_info *si = scheme_get(s);
        unsigned char md[EVP_MAX_MD_SIZE], *data = NULL;
        size_t len = 0;
        int r;

        if (!si)
                return fl_err(ctx, -EINVAL, "no signing scheme");
        if (is_digest) {
                if (!si->md)
                        return fl_err_hint(ctx, FL_HINT_DIGEST_ASKED, -EINVAL, "signing a digest: %s signs the message itself, not a digest of it",
                                      si->name);
                /* The length first, whatever the size: a wrong-sized input is
                 * reported as that, with its real length. */
                {
                        uint64_t off = 0, n = 0;
                        int fd = -1;

                        r = range_open(ctx, path, rg, &fd, &off, &n);
                        if (r < 0)
                                return r;
                        close(fd);
                        if (n != si->md_len)
                                return fl_err_hint(ctx, FL_HINT_DIGEST_ASKED, -EINVAL,
                                              "%s: %" PRIu64 " bytes; signing a digest with %s needs the %zu-byte %s digest",
                                              path, n, si->name, si->md_len, si->md);
                }
                r = sign_read_file(ctx, path, rg, si->md_len, &data, &len);
                if (r < 0)
                        return r;
                if (len != si->md_len) { /* changed in between */
                        free(data);
                        return fl_err_hint(ctx, FL_HINT_DIGEST_ASKED, -EINVAL, "%s: %zu bytes; signing a digest with %s needs the %zu-byte %s digest",
                                      path, len, si->name, si->md_len, si->md);
                }
        } else if (si->md) {
                r = hash_range(ctx, path, rg, si->md, md, &len, &ret->offset, &ret->length, ret->file_sha256);
                if (r < 0)
                        return r;
                data = malloc(len);
                if (!data)
                        return -ENOMEM;
                memcpy(data, md, len);
        } else {
                r = sign_read_file(ctx, path, rg, SIGN_ONESHOT_MAX, &data, &len);
                if (r < 0)
                        return r;
        }
        if (!si->md || is_digest) {
                ret->offset = rg ? rg->offset : 0;
                ret->length = len;
                if (!EVP_Digest(data, len, ret->file_sha256, NULL, EVP_sha256(), NULL)) {
                        free(data);
                        return fl_err(ctx, -EIO, "%s: SHA-256 failed: %s", path, ossl_errstr());
                }
        }
        ret->data = data;
        ret->len = len;
        ret->is_digest = si->md != NULL;
        return 0;
}

void sign_tbs_free(struct sign_tbs *t)
{
        if (!t)
                return;
        free(t->data);
        t->data = NULL;
        t->len = 0;
}

/* ---- encodings --------------------------------------------------------- */

int sign_ecdsa_raw_to_der(fl_ctx *ctx, const unsigned char *raw, size_t raw_len, unsigned char **ret,
                          size_t *ret_len)
{
        ECDSA_SIG *sig = NULL;
        BIGNUM *br = NULL, *bs = NULL;
        unsigned char *der = NULL, *p;
        int n, r;

        if (raw_len == 0 || raw_len % 2 || raw_len > 2 * 66) {
                r = fl_err(ctx, -EINVAL, "ECDSA r||s of %zu bytes is not two equal halves of a known curve",
                           raw_len);
                goto out;
        }
        sig = ECDSA_SIG_new();
        br = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
        bs = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
        if (!sig || !br || !bs || !ECDSA_SIG_set0(sig, br, bs)) {
                r = -ENOMEM;
                goto out;
        }
        br = bs = NULL; /* owned by sig */
        n = i2d_ECDSA_SIG(sig, NULL);
        if (n <= 0) {
                r = fl_err(ctx, -EINVAL, "cannot DER-encode the ECDSA signature: %s", ossl_errstr());
                goto out;
        }
        der = malloc((size_t)n);
        if (!der) {
                r = -ENOMEM;
                goto out;
        }
        p = der;
        i2d_ECDSA_SIG(sig, &p);
        *ret = der;
        *ret_len = (size_t)n;
        der = NULL;
        r = 0;
out:
        free(der);
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(sig);
        return r;
}

int sign_ecdsa_der_to_raw(fl_ctx *ctx, const unsigned char *der, size_t der_len, size_t field_len,
                          unsigned char **ret, size_t *ret_len)
{
        const unsigned char *p = der;
        const BIGNUM *br, *bs;
        ECDSA_SIG *sig = NULL;
        unsigned char *re = NULL, *q, *raw = NULL;
        int n, r;

        if (der_len == 0 || der_len > 1024 || field_len == 0 || field_len > 66) {
                r = fl_err(ctx, -EINVAL, "not a DER ECDSA signature (%zu bytes)", der_len);
                goto out;
        }
        sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (!sig || p != der + der_len) {
                ERR_clear_error();
                r = fl_err(ctx, -EINVAL, "not a DER ECDSA signature (%zu bytes)", der_len);
                goto out;
        }
        /* Strict DER: BER variants (long-form lengths, padding) would give
         * the same (r, s) from different bytes. */
        n = i2d_ECDSA_SIG(sig, NULL);
        if (n != (int)der_len || !(re = malloc((size_t)n))) {
                r = fl_err(ctx, -EINVAL, "ECDSA signature is not in canonical DER");
                goto out;
        }
        q = re;
        i2d_ECDSA_SIG(sig, &q);
        if (memcmp(re, der, der_len)) {
                r = fl_err(ctx, -EINVAL, "ECDSA signature is not in canonical DER");
                goto out;
        }
        ECDSA_SIG_get0(sig, &br, &bs);
        if (BN_is_negative(br) || BN_is_negative(bs) || (size_t)BN_num_bytes(br) > field_len ||
            (size_t)BN_num_bytes(bs) > field_len) {
                r = fl_err(ctx, -EINVAL, "ECDSA signature values do not fit the curve (%zu-byte fields)", field_len);
                goto out;
        }
        raw = malloc(2 * field_len);
        if (!raw) {
                r = -ENOMEM;
                goto out;
        }
        BN_bn2binpad(br, raw, (int)field_len);
        BN_bn2binpad(bs, raw + field_len, (int)field_len);
        *ret = raw;
        *ret_len = 2 * field_len;
        raw = NULL;
        r = 0;
out:
        free(raw);
        free(re);
        ECDSA_SIG_free(sig);
        return r;
}

int sign_raw_len(fl_ctx *ctx, enum sign_scheme s, EVP_PKEY *pkey, size_t *ret)
{
        const struct scheme_info *si = scheme_get(s);

        if (!si)
                return fl_err(ctx, -EINVAL, "no signing scheme");
        switch (si->kind) {
        case K_HMAC:
                *ret = 32;
                return 0;
        case K_CMAC:
                *ret = 16;
                return 0;
        case K_EDDSA:
                *ret = 64;
                return 0;
        case K_RSA_PSS:
        case K_RSA_PKCS1:
                if (!pkey || EVP_PKEY_get_size(pkey) <= 0)
                        break;
                *ret = (size_t)EVP_PKEY_get_size(pkey);
                return 0;
        case K_ECDSA:
                if (!pkey || EVP_PKEY_get_bits(pkey) <= 0)
                        break;
                *ret = 2 * (((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8);
                return 0;
        }
        return fl_err(ctx, -EINVAL, "%s: no public key to size the signature", si->name);
}

static void reverse(unsigned char *p, size_t n)
{
        for (size_t i = 0; i < n / 2; i++) {
                unsigned char t = p[i];
                p[i] = p[n - 1 - i];
                p[n - 1 - i] = t;
        }
}

static unsigned char *memdup_(const void *p, size_t n)
{
        unsigned char *d = malloc(n ? n : 1);
        if (d && n)
                memcpy(d, p, n);
        return d;
}

int sign_encode(fl_ctx *ctx, enum sign_scheme s, enum sign_format f, const unsigned char *raw,
                size_t raw_len, unsigned char **ret, size_t *ret_len)
{
        const struct scheme_info *si = scheme_get(s);
        unsigned char *der = NULL, *outb = NULL;
        size_t der_len = 0, out_len = 0;
        BIO *bio = NULL;
        int r;

        if (f == SIGFMT_AUTO)
                f = SIGFMT_RAW;
        r = sign_format_check(ctx, s, f);
        if (r < 0)
                goto out;
        if (f == SIGFMT_DER || f == SIGFMT_PEM) {
                if (si->kind == K_ECDSA) {
                        r = sign_ecdsa_raw_to_der(ctx, raw, raw_len, &der, &der_len);
                        if (r < 0)
                                goto out;
                } else {
                        /* RSA and Ed25519 signatures are octet strings:
                         * X.509/CMS carry them as they are. */
                        der = memdup_(raw, raw_len);
                        der_len = raw_len;
                        if (!der) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
        switch (f) {
        case SIGFMT_DER:
                outb = der;
                out_len = der_len;
                der = NULL;
                break;
        case SIGFMT_PEM: {
                char *mem;
                long n;
                bio = BIO_new(BIO_s_mem());
                if (!bio || !PEM_write_bio(bio, PEM_LABEL, "", der, (long)der_len)) {
                        r = fl_err(ctx, -ENOMEM, "cannot write PEM: %s", ossl_errstr());
                        goto out;
                }
                n = BIO_get_mem_data(bio, &mem);
                outb = memdup_(mem, (size_t)n);
                out_len = (size_t)n;
                break;
        }
        case SIGFMT_TEGRA:
                outb = memdup_(raw, raw_len);
                out_len = raw_len;
                /* jetson-fuses.md §4: tegrasign_v3 stores the RSA-PSS
                 * signature byte-reversed; Ed25519 and MACs as they are. */
                if (outb && si->kind == K_RSA_PSS)
                        reverse(outb, out_len);
                break;
        default:
                outb = memdup_(raw, raw_len);
                out_len = raw_len;
                break;
        }
        if (!outb) {
                r = -ENOMEM;
                goto out;
        }
        *ret = outb;
        *ret_len = out_len;
        r = 0;
out:
        BIO_free(bio);
        free(der);
        return r;
}

static int decode_pem(fl_ctx *ctx, const char *name, const unsigned char *in, size_t in_len,
                      unsigned char **ret, size_t *ret_len)
{
        BIO *bio = BIO_new_mem_buf(in, (int)in_len);
        char *pname = NULL, *header = NULL;
        unsigned char *data = NULL;
        long n = 0;
        int r;

        if (!bio) {
                r = -ENOMEM;
                goto out;
        }
        if (!PEM_read_bio(bio, &pname, &header, &data, &n) || n <= 0) {
                ERR_clear_error();
                r = fl_err(ctx, -EINVAL, "%s: not a PEM signature", name);
                goto out;
        }
        if (strcmp(pname, PEM_LABEL)) {
                r = fl_err(ctx, -EINVAL, "%s: PEM label is '%s', expected '%s'", name, pname, PEM_LABEL);
                goto out;
        }
        *ret = memdup_(data, (size_t)n);
        if (!*ret) {
                r = -ENOMEM;
                goto out;
        }
        *ret_len = (size_t)n;
        r = 0;
out:
        OPENSSL_free(pname);
        OPENSSL_free(header);
        OPENSSL_free(data);
        BIO_free(bio);
        return r;
}

int sign_decode(fl_ctx *ctx, const char *name, enum sign_scheme s, enum sign_format f, size_t raw_len,
                const unsigned char *in, size_t in_len, unsigned char **ret_raw, size_t *ret_raw_len)
{
        const struct scheme_info *si = scheme_get(s);
        unsigned char *pem = NULL, *raw = NULL;
        size_t pem_len = 0, out_len = 0;
        int r;

        if (!si) {
                r = fl_err(ctx, -EINVAL, "no signing scheme");
                goto out;
        }
        if (f == SIGFMT_AUTO) {
                if (in_len >= 11 && !memcmp(in, "-----BEGIN ", 11))
                        f = SIGFMT_PEM;
                else if (si->kind == K_ECDSA && in_len != raw_len)
                        f = SIGFMT_DER;
                else
                        f = SIGFMT_RAW;
        }
        r = sign_format_check(ctx, s, f);
        if (r < 0)
                goto out;
        if (f == SIGFMT_PEM) {
                r = decode_pem(ctx, name, in, in_len, &pem, &pem_len);
                if (r < 0)
                        goto out;
                in = pem;
                in_len = pem_len;
                f = SIGFMT_DER;
        }
        if (f == SIGFMT_DER && si->kind == K_ECDSA) {
                r = sign_ecdsa_der_to_raw(ctx, in, in_len, raw_len / 2, &raw, &out_len);
                if (r < 0) {
                        r = fl_err(ctx, r, "%s: %s", name, fl_ctx_last_error(ctx));
                        goto out;
                }
        } else {
                if (in_len != raw_len) {
                        r = fl_err(ctx, -EINVAL, "%s: %zu bytes; %s signatures with this key are %zu bytes", name,
                                   in_len, si->name, raw_len);
                        goto out;
                }
                raw = memdup_(in, in_len);
                out_len = in_len;
                if (!raw) {
                        r = -ENOMEM;
                        goto out;
                }
                if (f == SIGFMT_TEGRA && si->kind == K_RSA_PSS)
                        reverse(raw, out_len);
        }
        *ret_raw = raw;
        *ret_raw_len = out_len;
        raw = NULL;
        r = 0;
out:
        free(raw);
        free(pem);
        return r;
}

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

/* ---- token sessions ----------------------------------------------------- */

struct sign_session {
        fl_ctx *ctx;
        fl_token *tok;
        struct keyset *ks;
        char *ks_path;
        struct sign_key **keys;
        size_t n_keys;
        /* Mechanisms already found present (bit per scheme), so a batch
         * asks the token once. */
        unsigned mech_ok;
};

/* A looked-up key with what it was looked up by (the same role serves two
 * objects for a fuse key: the AES key, and its HMAC twin). */
struct cached_key {
        struct sign_key k; /* first: callers see only this */
        char *lookup;
        bool by_role, private_obj, hmac;
};

/* One opening for both: by a keyset (or none: the token of opts) or, with
 * by_uri, by one key's URI. */
static int session_open(fl_ctx *ctx, const char *keyset_path, const char *key_uri, bool by_uri,
                        const struct token_opts *opts, bool login, sign_session **ret)
{
        sign_session *ss = calloc(1, sizeof(*ss));
        struct token_opts o = *opts;
        int r;

        if (!ss)
                return -ENOMEM;
        ss->ctx = ctx;
        o.login = login;
        if (by_uri) {
                /* The key URI is honoured whole: its token attributes pin the token
                 * (opts->uri may only narrow them) and its pin-source is used. */
                r = signer_token_open_pinned(ctx, key_uri, key_uri, &o, &ss->tok);
        } else if (keyset_path) {
                ss->ks_path = strdup(keyset_path);
                if (!ss->ks_path) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = keyset_load(ctx, keyset_path, &ss->ks);
                if (r < 0)
                        goto fail;
                r = signer_token_open(ctx, ss->ks, keyset_path, &o, &ss->tok);
        } else {
                r = token_open(ctx, &o, &ss->tok);
        }
        if (r < 0)
                goto fail;
        *ret = ss;
        return 0;
fail:
        sign_session_close(ss);
        return r;
}

int sign_session_open(fl_ctx *ctx, const char *keyset_path, const struct token_opts *opts, bool login,
                      sign_session **ret)
{
        return session_open(ctx, keyset_path, NULL, false, opts, login, ret);
}

int sign_session_open_key(fl_ctx *ctx, const char *key_uri, const struct token_opts *opts, bool login,
                          sign_session **ret)
{
        return session_open(ctx, NULL, key_uri, true, opts, login, ret);
}

static void sign_key_clear(struct sign_key *k)
{
        free(k->name);
        free(k->role);
        EVP_PKEY_free(k->pub);
}

void sign_session_close(sign_session *ss)
{
        if (!ss)
                return;
        for (size_t i = 0; i < ss->n_keys; i++) {
                sign_key_clear(ss->keys[i]);
                free(((struct cached_key *)ss->keys[i])->lookup);
                free(ss->keys[i]);
        }
        free(ss->keys);
        token_close(ss->tok);
        keyset_free(ss->ks);
        free(ss->ks_path);
        free(ss);
}

const char *sign_session_profile(const sign_session *ss)
{
        return ss && ss->ks ? ss->ks->profile : NULL;
}

static enum key_type secret_type(unsigned long ckk, unsigned long value_len)
{
        if (ckk == CKK_AES)
                return value_len == 16 ? KT_AES128 : value_len == 32 ? KT_AES256 : KT_NONE;
        if (ckk == CKK_GENERIC_SECRET)
                return value_len == 16 ? KT_GENERIC128 : value_len == 32 ? KT_GENERIC256 : KT_NONE;
        return KT_NONE;
}

/* Type of a token object found by URI: from its public key, or from
 * CKA_KEY_TYPE/CKA_VALUE_LEN for a secret key. */
static int object_describe(sign_session *ss, struct sign_key *k)
{
        unsigned long cls = 0, ckk = 0, vlen = 0;
        int r;

        r = token_attr_ulong(ss->tok, k->obj, CKA_CLASS, &cls);
        if (r < 0)
                return r;
        if (cls == CKO_SECRET_KEY) {
                r = token_attr_ulong(ss->tok, k->obj, CKA_KEY_TYPE, &ckk);
                if (r >= 0)
                        r = token_attr_ulong(ss->tok, k->obj, CKA_VALUE_LEN, &vlen);
                if (r < 0)
                        return r;
                k->type = secret_type(ckk, vlen);
                snprintf(k->fpr, sizeof(k->fpr), "object:%.60s", k->name);
                return 0;
        }
        r = token_get_pubkey(ss->tok, k->obj, &k->pub);
        if (r < 0)
                return r;
        k->type = sign_pkey_type(k->pub);
        return sign_pkey_fingerprint(ss->ctx, k->pub, k->fpr);
}

static int role_list(const struct keyset *ks, char *buf, size_t cap)
{
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; i < ks->n_keys && n + 2 < cap; i++)
                n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", ks->keys[i].role);
        return 0;
}

static int key_from_role(sign_session *ss, const char *role, enum sign_scheme s, bool private_obj,
                         struct sign_key *k)
{
        fl_ctx *ctx = ss->ctx;
        const struct ks_key *kk;
        char what[96], roles[256];
        int r;

        if (!ss->ks)
                return fl_err_hint(ctx, FL_HINT_KEYSET, -EINVAL, "role %s is not in a keyset: a keyset is needed to find it", role);
        kk = keyset_find(ss->ks, role);
        if (!kk) {
                role_list(ss->ks, roles, sizeof(roles));
                return fl_err(ctx, -EINVAL, "%s: no role '%s' (roles: %s)", ss->ks_path, role, roles);
        }
        snprintf(what, sizeof(what), "role %s", role);
        if (s == SCHEME_NONE)
                s = sign_scheme_default(kk->type);
        r = sign_scheme_check_key(ctx, s, kk->type, what);
        if (r < 0)
                return r;
        k->role = strdup(role);
        k->name = strdup(what);
        if (!k->role || !k->name)
                return -ENOMEM;
        k->type = kk->type;
        if (key_type_is_secret(kk->type)) {
                /* SoftHSM2 (and PKCS#11 generally) ties a mechanism to the
                 * key type: CKM_AES_CMAC needs CKK_AES, CKM_SHA256_HMAC a
                 * CKK_GENERIC_SECRET. keygen records a generic twin with
                 * the same value as hmac_uri, so HMAC runs in the token
                 * too and fuseline never reads the key value. */
                if (s == SCHEME_HMAC_SHA256 && (kk->type == KT_AES128 || kk->type == KT_AES256)) {
                        if (!kk->hmac_uri || !*kk->hmac_uri)
                                return fl_err(ctx, -EINVAL,
                                              "%s: role %s has no hmac_uri (the CKK_GENERIC_SECRET twin HMAC needs); "
                                              "re-create the fuse key with fuseline keygen",
                                              ss->ks_path, role);
                        r = token_find_uri(ss->tok, kk->hmac_uri, CKO_SECRET_KEY, &k->obj);
                        if (r < 0)
                                return r;
                        k->hmac_twin = true;
                        k->type = kk->type == KT_AES128 ? KT_GENERIC128 : KT_GENERIC256;
                } else {
                        r = keyset_key_object(ctx, ss->tok, kk, &k->obj);
                        if (r < 0)
                                return r;
                }
                if (kk->kcv && *kk->kcv)
                        snprintf(k->fpr, sizeof(k->fpr), "kcv:%.60s", kk->kcv);
                else
                        snprintf(k->fpr, sizeof(k->fpr), "role:%.60s", role);
                return 0;
        }
        if (private_obj)
                r = keyset_key_object(ctx, ss->tok, kk, &k->obj);
        else
                r = token_find_uri(ss->tok, kk->uri, CKO_PUBLIC_KEY, &k->obj);
        if (r < 0)
                return r;
        /* The one pinning rule (lib/signer.c): type and public_key_sha256. */
        return signer_pin_key(ctx, ss->ks_path, kk, ss->tok, k->obj, &k->pub, k->fpr);
}

static int key_from_uri(sign_session *ss, const char *uri, enum sign_scheme s, bool private_obj,
                        struct sign_key *k)
{
        unsigned long cls;
        int r;

        k->name = strdup(uri);
        if (!k->name)
                return -ENOMEM;
        /* Without type= in the URI, a label can name a key pair's two
         * halves: pick the one the operation needs. */
        if (strstr(uri, "type="))
                cls = (unsigned long)-1;
        else if (sign_scheme_is_mac(s))
                cls = CKO_SECRET_KEY;
        else
                cls = private_obj ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
        r = token_find_uri(ss->tok, uri, cls, &k->obj);
        if (r == -ENXIO && s == SCHEME_NONE && cls != (unsigned long)-1) {
                fl_err_clear(ss->ctx);
                r = token_find_uri(ss->tok, uri, CKO_SECRET_KEY, &k->obj);
        }
        if (r < 0)
                return r;
        r = object_describe(ss, k);
        if (r < 0)
                return r;
        /* A keyset role finds the twin itself; a bare URI must name it. */
        if (s == SCHEME_HMAC_SHA256 && (k->type == KT_AES128 || k->type == KT_AES256))
                return fl_err(ss->ctx, -EINVAL,
                              "%s is a CKK_AES key: HMAC needs its CKK_GENERIC_SECRET twin (the keyset's hmac_uri)",
                              uri);
        if (s == SCHEME_NONE)
                s = sign_scheme_default(k->type);
        return sign_scheme_check_key(ss->ctx, s, k->type, uri);
}

int sign_session_key(sign_session *ss, const char *role, const char *uri, enum sign_scheme s,
                     bool private_obj, const struct sign_key **ret)
{
        struct cached_key *c = NULL;
        struct sign_key **nk;
        const char *name = role ? role : uri;
        bool hmac = s == SCHEME_HMAC_SHA256;
        int r;

        if (!name)
                return fl_err_hint(ss->ctx, FL_HINT_SIGN_KEY, -EINVAL, "no key: neither a keyset role nor a key URI");
        if (sign_scheme_is_mac(s))
                private_obj = true;
        for (size_t i = 0; i < ss->n_keys; i++) {
                struct cached_key *ci = (struct cached_key *)ss->keys[i];
                if (ci->by_role == !!role && ci->private_obj == private_obj && ci->hmac == hmac &&
                    !strcmp(ci->lookup, name)) {
                        /* Same object; the scheme still has to suit it. */
                        enum sign_scheme es = s == SCHEME_NONE ? sign_scheme_default(ci->k.type) : s;
                        r = sign_scheme_check_key(ss->ctx, es, ci->k.type, ci->k.name);
                        if (r < 0)
                                return r;
                        *ret = &ci->k;
                        return 0;
                }
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->by_role = !!role;
        c->private_obj = private_obj;
        c->hmac = hmac;
        c->lookup = strdup(name);
        if (!c->lookup) {
                r = -ENOMEM;
                goto fail;
        }
        r = role ? key_from_role(ss, role, s, private_obj, &c->k) : key_from_uri(ss, uri, s, private_obj, &c->k);
        if (r < 0)
                goto fail;
        nk = realloc(ss->keys, (ss->n_keys + 1) * sizeof(*nk));
        if (!nk) {
                r = -ENOMEM;
                goto fail;
        }
        ss->keys = nk;
        ss->keys[ss->n_keys++] = &c->k;
        *ret = &c->k;
        return 0;
fail:
        sign_key_clear(&c->k);
        free(c->lookup);
        free(c);
        return r;
}

/* The interlock itself lives in lib/signer.c, the one place every
 * token-key path goes through. */
int sign_session_interlock(sign_session *ss, const struct sign_key *k)
{
        return signer_interlock(ss->ctx, ss->ks, ss->ks_path, ss->tok, k->obj, k->type, k->name);
}

/* DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
static const unsigned char sha256_digestinfo[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                   0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

static const char *mech_name(unsigned long m)
{
        switch (m) {
        case CKM_RSA_PKCS_PSS:
                return "CKM_RSA_PKCS_PSS";
        case CKM_RSA_PKCS:
                return "CKM_RSA_PKCS";
        case CKM_ECDSA:
                return "CKM_ECDSA";
        case CKM_EDDSA:
                return "CKM_EDDSA";
        case CKM_SHA256_HMAC:
                return "CKM_SHA256_HMAC";
        case CKM_AES_CMAC:
                return "CKM_AES_CMAC";
        default:
                return "?";
        }
}

int sign_token_raw(fl_ctx *ctx, fl_token *tok, token_obj obj, enum key_type type, EVP_PKEY *pub, const char *name,
                   enum sign_scheme s, bool mech_known, const unsigned char *tbs, size_t tbs_len, unsigned char *out,
                   size_t *ret_len)
{
        const struct scheme_info *si = scheme_get(s);
        CK_RSA_PKCS_PSS_PARAMS pss;
        unsigned char in[sizeof(sha256_digestinfo) + 32];
        const unsigned char *data = tbs;
        size_t len = tbs_len, out_len = SIGN_RAW_MAX, want = 0;
        const void *param = NULL;
        size_t param_len = 0;
        int r;

        if (!si)
                return fl_err(ctx, -EINVAL, "no signing scheme");
        r = sign_scheme_check_key(ctx, s, type, name);
        if (r < 0)
                return r;
        if (!mech_known && !token_has_mechanism(tok, si->mech))
                return fl_err(ctx, -ENOTSUP, "the token does not offer %s (needed for %s)", mech_name(si->mech),
                              si->name);
        if (si->md && len != si->md_len)
                return fl_err(ctx, -EINVAL, "%s: digest of %zu bytes, expected %zu", si->name, len, si->md_len);
        switch (si->kind) {
        case K_RSA_PSS:
                pss.hash_alg = si->ck_md;
                pss.mgf = si->mgf;
                pss.s_len = si->salt_len; /* jetson-fuses.md §4 / tegrasign vectors */
                param = &pss;
                param_len = sizeof(pss);
                break;
        case K_RSA_PKCS1:
                memcpy(in, sha256_digestinfo, sizeof(sha256_digestinfo));
                memcpy(in + sizeof(sha256_digestinfo), data, len);
                data = in;
                len = sizeof(sha256_digestinfo) + 32;
                break;
        default:
                break;
        }
        r = sign_raw_len(ctx, s, pub, &want);
        if (r < 0)
                return r;
        r = token_sign(tok, obj, si->mech, param, param_len, data, len, out, &out_len);
        if (r < 0)
                return r;
        if (out_len != want)
                return fl_err(ctx, -EIO, "%s: the token returned %zu bytes for %s, expected %zu", name, out_len,
                              si->name, want);
        *ret_len = out_len;
        return 0;
}

int sign_session_sign(sign_session *ss, const struct sign_key *k, enum sign_scheme s,
                      const struct sign_tbs *tbs, unsigned char *out, size_t *ret_len)
{
        const struct scheme_info *si = scheme_get(s);
        int r;

        r = sign_token_raw(ss->ctx, ss->tok, k->obj, k->type, k->pub, k->name, s,
                           si && (ss->mech_ok & (1u << s)), tbs->data, tbs->len, out, ret_len);
        if (r == 0)
                ss->mech_ok |= 1u << s;
        return r;
}

/* ---- whole operations ----------------------------------------------------- */

static void tbs_sha256(const struct sign_tbs *t, char out[65])
{
        unsigned char md[32];

        if (EVP_Digest(t->data, t->len, md, NULL, EVP_sha256(), NULL))
                hex_encode(md, sizeof(md), out);
        else
                out[0] = 0;
}

/* What the result says was hashed and signed: the input's SHA-256 always,
 * the digest where one was signed (prehashed schemes, --digest). */
static void result_hashes(const struct sign_tbs *t, const struct scheme_info *si, struct sign_result *res)
{
        hex_encode(t->file_sha256, sizeof(t->file_sha256), res->file_sha256);
        if (si && si->md && t->len <= SIGN_DIGEST_MAX) {
                hex_encode(t->data, t->len, res->digest);
                res->digest_alg = si->md;
        }
}

static int write_output(fl_ctx *ctx, const char *path, const unsigned char *data, size_t len)
{
        int r = file_write_atomic(ctx, path, data, len, 0644);

        /* An unwritable output path is bad input (exit 2), whatever errno
         * the file system chose (EACCES would otherwise read as "PIN"). */
        if (r < 0 && r != -ENOMEM && r != -ENOSPC && r != -EIO && r != -EDQUOT)
                r = -EINVAL;
        return r;
}

/* The first half of file_write_atomic without the fsync: sign_commit()
 * flushes a whole batch at once. */
static int write_pending(fl_ctx *ctx, const char *path, const unsigned char *data, size_t len,
                         struct sign_pending *ret)
{
        char *tmp = NULL, *out = strdup(path);
        int r;

        if (!out)
                return -ENOMEM;
        r = file_temp_write(ctx, path, data, len, 0644, false, &tmp);
        if (r < 0) {
                free(out);
                /* As write_output: an unwritable path is bad input. */
                return r != -ENOMEM && r != -ENOSPC && r != -EIO && r != -EDQUOT ? -EINVAL : r;
        }
        ret->tmp = tmp;
        ret->out = out;
        return 0;
}

void sign_pending_clear(struct sign_pending *p, size_t n)
{
        for (size_t i = 0; p && i < n; i++) {
                if (p[i].tmp)
                        unlink(p[i].tmp);
                free(p[i].tmp);
                free(p[i].out);
                free(p[i].err);
                p[i].tmp = p[i].out = p[i].err = NULL;
        }
}

int sign_commit(fl_ctx *ctx, struct sign_pending *p, size_t n, int *ret_r)
{
        dev_t *devs = calloc(n ? n : 1, sizeof(*devs));
        char **dirs = calloc(n ? n : 1, sizeof(*dirs));
        size_t nd = 0, ndir = 0;
        int first = 0;

        if (!devs || !dirs) {
                free(devs);
                free(dirs);
                sign_pending_clear(p, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (ret_r)
                        ret_r[i] = 0;
        /* 1. Data: one syncfs per file system holding a temp file. */
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                bool seen = false;
                int fd;

                if (!p[i].tmp)
                        continue;
                if (stat(p[i].tmp, &st) < 0)
                        continue; /* reported at rename */
                for (size_t j = 0; j < nd; j++)
                        seen |= devs[j] == st.st_dev;
                if (seen)
                        continue;
                devs[nd++] = st.st_dev;
                fd = open(p[i].tmp, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || syncfs(fd) < 0) {
                        int e = errno;
                        /* Cannot vouch for any file on this file system:
                         * fall back to fsync per file below. */
                        fl_log(ctx, FL_LOG_WARN, "%s: syncfs failed (%s); syncing files one by one", p[i].tmp,
                               strerror(e));
                        devs[nd - 1] = (dev_t)-1;
                }
                if (fd >= 0)
                        close(fd);
        }
        /* 2. Names: rename into place, remembering the directories. */
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                bool synced = false, seen = false;
                int r = 0;

                if (!p[i].tmp)
                        continue;
                if (stat(p[i].tmp, &st) == 0)
                        for (size_t j = 0; j < nd; j++)
                                synced |= devs[j] == st.st_dev;
                r = file_temp_commit(ctx, p[i].tmp, p[i].out, synced ? 0 : FILE_SYNC_DATA);
                if (r < 0 && r != -ENOMEM && r != -ENOSPC && r != -EIO && r != -EDQUOT)
                        r = -EINVAL;
                if (r < 0) {
                        free(p[i].err);
                        p[i].err = strdup(fl_ctx_last_error(ctx));
                        if (!first)
                                first = r;
                } else {
                        char *copy = strdup(p[i].out), *d = copy ? dirname(copy) : NULL;
                        for (size_t j = 0; d && j < ndir; j++)
                                seen |= !strcmp(dirs[j], d);
                        if (d && !seen)
                                dirs[ndir++] = strdup(d);
                        free(copy);
                }
                if (ret_r)
                        ret_r[i] = r;
                free(p[i].tmp);
                p[i].tmp = NULL;
        }
        /* 3. Directory entries: an entry whose directory cannot be synced
         * is in place but not durable, and is reported as failed. */
        for (size_t j = 0; j < ndir; j++) {
                if (dirs[j]) {
                        char *entry = NULL;
                        int r = asprintf(&entry, "%s/.", dirs[j]) < 0 ? -ENOMEM : file_sync_dir(ctx, entry);
                        free(entry);
                        for (size_t i = 0; r < 0 && i < n; i++) {
                                char *copy = p[i].out && (!ret_r || ret_r[i] == 0) ? strdup(p[i].out) : NULL;
                                if (copy && !strcmp(dirname(copy), dirs[j])) {
                                        if (ret_r)
                                                ret_r[i] = r;
                                        free(p[i].err);
                                        p[i].err = strdup(fl_ctx_last_error(ctx));
                                }
                                free(copy);
                        }
                        if (r < 0 && !first)
                                first = r;
                }
                free(dirs[j]);
        }
        free(dirs);
        free(devs);
        return first;
}

int sign_file(sign_session *ss, const struct sign_request *req, struct sign_result *ret)
{
        fl_ctx *ctx = ss->ctx;
        const struct sign_key *k = NULL;
        struct sign_tbs tbs = { 0 };
        unsigned char raw[SIGN_RAW_MAX], *enc = NULL;
        size_t raw_len = 0, enc_len = 0;
        enum sign_scheme s = req->scheme;
        enum sign_format f = req->format == SIGFMT_AUTO ? SIGFMT_RAW : req->format;
        struct sign_result res = { 0 };
        int r;

        if (!req->in || !req->out) {
                r = fl_err_hint(ctx, FL_HINT_SIGN_FILES, -EINVAL, "signing needs the file to sign and where the signature goes");
                goto out;
        }
        if (req->role && ss->ks) {
                r = signer_role_check(ctx, ss->ks_path, req->role, keyset_find(ss->ks, req->role), SIGNER_USE_IMAGE);
                if (r < 0)
                        goto out;
        }
        r = sign_session_key(ss, req->role, req->key_uri, s, true, &k);
        if (r < 0)
                goto out;
        if (s == SCHEME_NONE)
                s = sign_scheme_default(k->type);
        r = sign_format_check(ctx, s, f);
        if (r < 0)
                goto out;
        r = sign_tbs_load(ctx, s, req->in, &req->range, req->is_digest, &tbs);
        if (r < 0)
                goto out;
        r = sign_session_interlock(ss, k);
        if (r < 0)
                goto out;
        r = sign_session_sign(ss, k, s, &tbs, raw, &raw_len);
        if (r < 0)
                goto out;
        r = sign_encode(ctx, s, f, raw, raw_len, &enc, &enc_len);
        if (r < 0)
                goto out;
        if (req->pending)
                r = write_pending(ctx, req->out, enc, enc_len, req->pending);
        else
                r = write_output(ctx, req->out, enc, enc_len);
        if (r < 0)
                goto out;
        res.scheme = s;
        res.format = f;
        res.sig_len = enc_len;
        memcpy(res.key_fpr, k->fpr, sizeof(res.key_fpr));
        tbs_sha256(&tbs, res.tbs_sha256);
        res.offset = tbs.offset;
        res.length = tbs.length;
        result_hashes(&tbs, scheme_get(s), &res);
        if (ret)
                *ret = res;
        r = 0;
out:
        OPENSSL_cleanse(raw, sizeof(raw));
        free(enc);
        sign_tbs_free(&tbs);
        return r;
}

int sign_verify_file(fl_ctx *ctx, sign_session *ss, const struct verify_request *req,
                     struct sign_result *ret)
{
        const struct sign_key *k = NULL;
        EVP_PKEY *own = NULL, *pkey = NULL;
        struct sign_tbs tbs = { 0 };
        unsigned char *sigdata = NULL, *raw = NULL, mac[SIGN_RAW_MAX];
        size_t sig_len = 0, raw_len = 0, want = 0, mac_len = 0;
        enum sign_scheme s = req->scheme;
        enum key_type kt;
        struct sign_result res = { 0 };
        const char *fpr;
        char own_fpr[SIGN_FPR_LEN];
        int r;

        if (!req->in || !req->sig) {
                r = fl_err_hint(ctx, FL_HINT_VERIFY_FILES, -EINVAL, "verifying a signature needs the signed file and the signature");
                goto out;
        }
        if (req->pubkey_path) {
                r = sign_load_pubkey(ctx, req->pubkey_path, &own);
                if (r < 0)
                        goto out;
                pkey = own;
                kt = sign_pkey_type(pkey);
                if (s == SCHEME_NONE)
                        s = sign_scheme_default(kt);
                if (sign_scheme_is_mac(s)) {
                        r = fl_err_hint(ctx, FL_HINT_VERIFY_TOKEN_KEY, -EINVAL, "%s is a MAC: only the token key (a keyset role) verifies it",
                                   sign_scheme_name(s));
                        goto out;
                }
                r = sign_scheme_check_key(ctx, s, kt, req->pubkey_path);
                if (r < 0)
                        goto out;
                r = sign_pkey_fingerprint(ctx, pkey, own_fpr);
                if (r < 0)
                        goto out;
                fpr = own_fpr;
        } else {
                if (!ss) {
                        r = fl_err_hint(ctx, FL_HINT_VERIFY_KEY, -EINVAL, "verifying a signature needs a public key, a keyset role or a key URI");
                        goto out;
                }
                r = sign_session_key(ss, req->role, req->key_uri, s, false, &k);
                if (r < 0)
                        goto out;
                if (s == SCHEME_NONE)
                        s = sign_scheme_default(k->type);
                pkey = k->pub;
                fpr = k->fpr;
        }
        r = sign_tbs_load(ctx, s, req->in, &req->range, req->is_digest, &tbs);
        if (r < 0)
                goto out;
        r = sign_raw_len(ctx, s, pkey, &want);
        if (r < 0)
                goto out;
        r = file_read(ctx, req->sig, SIG_FILE_MAX, &sigdata, &sig_len);
        if (r < 0)
                goto out;
        r = sign_decode(ctx, req->sig, s, req->format, want, sigdata, sig_len, &raw, &raw_len);
        if (r < 0)
                goto out;
        if (sign_scheme_is_mac(s)) {
                /* Recomputed inside the token: the key value never leaves. */
                r = sign_session_interlock(ss, k);
                if (r < 0)
                        goto out;
                r = sign_session_sign(ss, k, s, &tbs, mac, &mac_len);
                if (r < 0)
                        goto out;
                if (mac_len != raw_len || CRYPTO_memcmp(mac, raw, raw_len)) {
                        r = fl_err(ctx, -EBADMSG, "signature does not match (%s, key %s)", sign_scheme_name(s), fpr);
                        goto out;
                }
        } else {
                r = sign_verify_pkey(ctx, pkey, s, &tbs, raw, raw_len);
                if (r < 0)
                        goto out;
        }
        res.scheme = s;
        res.format = req->format;
        res.sig_len = sig_len;
        snprintf(res.key_fpr, sizeof(res.key_fpr), "%s", fpr);
        tbs_sha256(&tbs, res.tbs_sha256);
        res.offset = tbs.offset;
        res.length = tbs.length;
        result_hashes(&tbs, scheme_get(s), &res);
        if (ret)
                *ret = res;
        r = 0;
out:
        OPENSSL_cleanse(mac, sizeof(mac));
        free(raw);
        free(sigdata);
        sign_tbs_free(&tbs);
        EVP_PKEY_free(own);
        return r;
}

/* ---- batch lists --------------------------------------------------------- */

void sign_batch_free(struct sign_batch_entry *e, size_t n)
{
        if (!e)
                return;
        for (size_t i = 0; i < n; i++) {
                free(e[i].in);
                free(e[i].out);
                free(e[i].role);
        }
        free(e);
}

int sign_batch_parse(fl_ctx *ctx, const char *name, const char *text, size_t len,
                     struct sign_batch_entry **ret, size_t *ret_n)
{
        struct sign_batch_entry *v = NULL;
        size_t n = 0, cap = 0, pos = 0;
        unsigned line = 0;
        int r;

        if (memchr(text, 0, len)) {
                r = fl_err(ctx, -EINVAL, "%s: contains a NUL byte; a batch list is text", name);
                goto fail;
        }
        while (pos < len) {
                const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
                size_t ll = nl ? (size_t)(nl - l) : len - pos;
                char *fields[4] = { 0 };
                size_t nf = 0, i = 0;

                pos += ll + (nl ? 1 : 0);
                line++;
                if (ll && l[ll - 1] == '\r')
                        ll--;
                while (i < ll) {
                        size_t st;
                        while (i < ll && (l[i] == ' ' || l[i] == '\t'))
                                i++;
                        if (i >= ll || (l[i] == '#' && nf == 0))
                                break;
                        st = i;
                        while (i < ll && l[i] != ' ' && l[i] != '\t')
                                i++;
                        if (nf < 4) {
                                fields[nf] = strndup(l + st, i - st);
                                if (!fields[nf]) {
                                        for (size_t j = 0; j < nf; j++)
                                                free(fields[j]);
                                        r = -ENOMEM;
                                        goto fail;
                                }
                        }
                        nf++;
                }
                if (nf == 0)
                        continue;
                if (nf < 2 || nf > 3) {
                        for (size_t j = 0; j < nf && j < 4; j++)
                                free(fields[j]);
                        r = fl_err(ctx, -EINVAL, "%s:%u: expected 'IN OUT [ROLE]', found %zu field%s", name, line, nf,
                                   nf == 1 ? "" : "s");
                        goto fail;
                }
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct sign_batch_entry *nv = realloc(v, ncap * sizeof(*nv));
                        if (!nv) {
                                for (size_t j = 0; j < nf; j++)
                                        free(fields[j]);
                                r = -ENOMEM;
                                goto fail;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n].line = line;
                v[n].in = fields[0];
                v[n].out = fields[1];
                v[n].role = fields[2];
                n++;
        }
        if (n == 0) {
                r = fl_err(ctx, -EINVAL, "%s: no entries (expected lines 'IN OUT [ROLE]')", name);
                goto fail;
        }
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        sign_batch_free(v, n);
        return r;
}

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
