/* sign.c — image signatures and fuse-key MACs: scheme and format tables,
 * streamed hashing of file ranges, whole sign/verify operations with their
 * atomic outputs, and batch lists. Encodings are in sign_codec.c, signature
 * checks in sign_verify.c, token sessions and the production interlock in
 * sign_session.c, public keys/RNG/AES-GCM in sign_token.c. See sign.h. */

#include "sign_int.h"

static const struct scheme_info schemes[] = {
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

const struct scheme_info *scheme_get(enum sign_scheme s)
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
