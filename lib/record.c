/* record.c — file hashes for ledger events (see record.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "record.h"

int record_file_sha256(fl_ctx *ctx, const char *path, char out[65])
{
        unsigned char buf[1 << 16], md[32];
        unsigned md_len = 0;
        EVP_MD_CTX *h = NULL;
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fl_err(ctx, errno == ENOENT ? -ENOENT : -EINVAL, "%s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                r = fl_err(ctx, -EINVAL, "%s: not a regular file", path);
                goto out;
        }
        h = EVP_MD_CTX_new();
        if (!h || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = fl_err(ctx, -EIO, "%s: read failed: %s", path, strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(h, buf, (size_t)n) != 1) {
                        r = -EIO;
                        goto out;
                }
        }
        if (EVP_DigestFinal_ex(h, md, &md_len) != 1 || md_len != sizeof(md)) {
                r = -EIO;
                goto out;
        }
        hex_encode(md, sizeof(md), out);
        r = 0;
out:
        EVP_MD_CTX_free(h);
        close(fd);
        return r;
}
