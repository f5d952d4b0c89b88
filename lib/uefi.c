/* uefi.c — UEFI Secure Boot key material for Jetson: GUIDs, EFI_TIME,
 * signature lists, authenticated variables (.auth), NVIDIA's
 * uefi_keys.conf and key overlays (.dts/.dtbo), and the operations on top:
 * a PK/KEK/db bundle from token keys, signed append updates, payload
 * signatures, and checking a bundle. Layouts and sources:
 * shared/reference/uefi-secure-boot.md (section numbers below refer to it). */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <p11-kit/pkcs11.h>

#include "tegra_key.h"
#include "proc.h"
#include "uefi.h"

extern char **environ;

#define ESL_HDR 28     /* EFI_SIGNATURE_LIST header */
#define AUTH_HDR 40    /* EFI_TIME + WIN_CERTIFICATE_UEFI_GUID up to CertData */
#define WIN_CERT_HDR 24
#define PAYLOAD_MAX ((size_t)1 << 30)
#define BUNDLE_FILE_MAX ((size_t)16 << 20)
#define ID_LEN 16

/* ---- GUIDs (§1.1) ------------------------------------------------------------ */

const efi_guid EFI_CERT_X509_GUID = { { 0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15,
                                        0x5c, 0x2b, 0xf0, 0x72 } };
const efi_guid EFI_CERT_SHA256_GUID = { { 0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9,
                                          0x36, 0x93, 0x43, 0x28 } };
const efi_guid EFI_CERT_TYPE_PKCS7_GUID = { { 0x9d, 0xd2, 0xaf, 0x4a, 0xdf, 0x68, 0xee, 0x49, 0x8a, 0xa9, 0x34,
                                              0x7d, 0x37, 0x56, 0x65, 0xa7 } };
const efi_guid EFI_GLOBAL_VARIABLE_GUID = { { 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00,
                                              0xe0, 0x98, 0x03, 0x2b, 0x8c } };
const efi_guid EFI_IMAGE_SECURITY_DATABASE_GUID = { { 0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc,
                                                      0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f } };

/* Text order → disk order: the first three groups are little-endian. */
static void guid_from_text_order(const uint8_t t[16], efi_guid *g)
{
        static const uint8_t map[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
        for (int i = 0; i < 16; i++)
                g->b[i] = t[map[i]];
}

int uefi_guid_parse(fl_ctx *ctx, const char *what, const char *s, efi_guid *ret)
{
        uint8_t t[16];
        size_t k = 0;

        if (!s || strlen(s) != 36)
                goto bad;
        for (size_t i = 0; i < 36;) {
                int hi, lo;
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                goto bad;
                        i++;
                        continue;
                }
                hi = hex_digit((unsigned char)s[i]);
                lo = hex_digit((unsigned char)s[i + 1]);
                if (hi < 0 || lo < 0 || i + 1 == 8 || i + 1 == 13 || i + 1 == 18 || i + 1 == 23)
                        goto bad;
                t[k++] = (uint8_t)(hi << 4 | lo);
                i += 2;
        }
        guid_from_text_order(t, ret);
        return 0;
bad:
        return fl_err(ctx, -EINVAL, "%s: '%.64s' is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", what,
                      s ? s : "");
}

void uefi_guid_format(const efi_guid *g, char out[37])
{
        const uint8_t *b = g->b;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[3], b[2], b[1],
                 b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int uefi_guid_random(efi_guid *ret)
{
        uint8_t t[16];

        if (RAND_bytes(t, sizeof(t)) != 1)
                return -EIO;
        t[6] = (uint8_t)((t[6] & 0x0f) | 0x40); /* version 4 */
        t[8] = (uint8_t)((t[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        guid_from_text_order(t, ret);
        return 0;
}

bool uefi_guid_eq(const efi_guid *a, const efi_guid *b)
{
        return !memcmp(a->b, b->b, 16);
}

/* ---- EFI_TIME (§1.3) ------------------------------------------------------------ */

static bool time_valid(const struct efi_time *t)
{
        return t->year >= 1900 && t->year <= 9999 && t->month >= 1 && t->month <= 12 && t->day >= 1 &&
               t->day <= days_in_month(t->year, t->month) && t->hour <= 23 && t->minute <= 59 && t->second <= 59;
}

int uefi_time_parse(fl_ctx *ctx, const char *what, const char *s, struct efi_time *ret)
{
        int y, mo, d, h = 0, mi = 0, se = 0;
        size_t n = s ? strlen(s) : 0;
        const char *p = s;
        struct efi_time t;

        /* The length is checked first: every read below is inside s. */
        if (n != 10 && n != 19 && !(n == 20 && s[19] == 'Z'))
                goto bad;
        if (!parse_digits(&p, 4, &y) || *p++ != '-' || !parse_digits(&p, 2, &mo) || *p++ != '-' ||
            !parse_digits(&p, 2, &d))
                goto bad;
        if (n > 10 && ((*p != ' ' && *p != 'T') || (++p, !parse_digits(&p, 2, &h)) || *p++ != ':' ||
                       !parse_digits(&p, 2, &mi) || *p++ != ':' || !parse_digits(&p, 2, &se)))
                goto bad;
        t = (struct efi_time){ (uint16_t)y, (uint8_t)mo, (uint8_t)d, (uint8_t)h, (uint8_t)mi, (uint8_t)se };
        if (mo > 12 || d > 31 || h > 99 || !time_valid(&t))
                return fl_err(ctx, -EINVAL, "%s: '%s' is not a real UTC date and time (years 1900-9999)", what, s);
        *ret = t;
        return 0;
bad:
        return fl_err(ctx, -EINVAL, "%s: '%.40s' does not parse; use \"YYYY-MM-DD HH:MM:SS\" (UTC)", what,
                      s ? s : "");
}

static void time_from_tm(const struct tm *tm, struct efi_time *t)
{
        t->year = (uint16_t)(tm->tm_year + 1900);
        t->month = (uint8_t)(tm->tm_mon + 1);
        t->day = (uint8_t)tm->tm_mday;
        t->hour = (uint8_t)tm->tm_hour;
        t->minute = (uint8_t)tm->tm_min;
        t->second = (uint8_t)(tm->tm_sec > 59 ? 59 : tm->tm_sec);
}

void uefi_time_now(struct efi_time *ret)
{
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        time_from_tm(&tm, ret);
}

int uefi_time_add(struct efi_time *t, long seconds)
{
        struct tm tm = { .tm_year = t->year - 1900, .tm_mon = t->month - 1, .tm_mday = t->day,
                         .tm_hour = t->hour, .tm_min = t->minute, .tm_sec = t->second };
        time_t x = timegm(&tm);
        struct efi_time n;

        x += seconds;
        if (!gmtime_r(&x, &tm))
                return -EINVAL;
        time_from_tm(&tm, &n);
        if (tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999 || !time_valid(&n))
                return -EINVAL;
        *t = n;
        return 0;
}

void uefi_time_format(const struct efi_time *t, char out[20])
{
        snprintf(out, 20, "%04u-%02u-%02u %02u:%02u:%02u", t->year % 10000u, t->month % 100u, t->day % 100u,
                 t->hour % 100u, t->minute % 100u, t->second % 100u);
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void uefi_time_encode(const struct efi_time *t, uint8_t out[16])
{
        memset(out, 0, 16);
        put16(out, t->year);
        out[2] = t->month;
        out[3] = t->day;
        out[4] = t->hour;
        out[5] = t->minute;
        out[6] = t->second;
        /* Pad1, Nanosecond, TimeZone, Daylight, Pad2 stay 0: edk2 refuses a
         * time-based write otherwise. */
}

int uefi_time_decode(fl_ctx *ctx, const char *name, const uint8_t in[16], struct efi_time *ret)
{
        struct efi_time t = { get16(in), in[2], in[3], in[4], in[5], in[6] };

        for (int i = 7; i < 16; i++)
                if (in[i])
                        return fl_err(ctx, -EINVAL,
                                      "%s: EFI_TIME byte %d is 0x%02x; Pad1, Nanosecond, TimeZone, Daylight and Pad2 "
                                      "must be 0",
                                      name, i, in[i]);
        if (!time_valid(&t))
                return fl_err(ctx, -EINVAL, "%s: EFI_TIME %04u-%02u-%02u %02u:%02u:%02u is not a real date", name,
                              t.year, t.month, t.day, t.hour, t.minute, t.second);
        *ret = t;
        return 0;
}

/* ---- variables (§1.7) ------------------------------------------------------------ */

static const char *const var_names[] = { "PK", "KEK", "db", "dbx" };

int uefi_var_from_name(const char *name, enum uefi_var *ret)
{
        for (size_t i = 0; name && i < FL_ARRAY_SIZE(var_names); i++)
                if (!strcmp(name, var_names[i])) {
                        *ret = (enum uefi_var)i;
                        return 0;
                }
        return -EINVAL;
}

const char *uefi_var_name(enum uefi_var v)
{
        return (size_t)v < FL_ARRAY_SIZE(var_names) ? var_names[v] : "?";
}

const efi_guid *uefi_var_vendor(enum uefi_var v)
{
        return v == UEFI_VAR_PK || v == UEFI_VAR_KEK ? &EFI_GLOBAL_VARIABLE_GUID : &EFI_IMAGE_SECURITY_DATABASE_GUID;
}

/* ---- signature lists (§1.2) -------------------------------------------------------- */

int uefi_esl_x509(fl_ctx *ctx, const efi_guid *owner, const unsigned char *der, size_t der_len,
                  unsigned char **ret, size_t *ret_len)
{
        size_t n = ESL_HDR + 16 + der_len;
        unsigned char *b;

        if (der_len == 0 || der_len > UINT32_MAX - ESL_HDR - 16)
                return fl_err(ctx, -EINVAL, "certificate of %zu bytes does not fit a signature list", der_len);
        b = malloc(n);
        if (!b)
                return -ENOMEM;
        memcpy(b, EFI_CERT_X509_GUID.b, 16);
        put32(b + 16, (uint32_t)n);
        put32(b + 20, 0);
        put32(b + 24, (uint32_t)(16 + der_len));
        memcpy(b + 28, owner->b, 16);
        memcpy(b + 44, der, der_len);
        *ret = b;
        *ret_len = n;
        return 0;
}

int uefi_esl_sha256(fl_ctx *ctx, const efi_guid *owner, const unsigned char *hashes, size_t n,
                    unsigned char **ret, size_t *ret_len)
{
        size_t len;
        unsigned char *b;

        if (n == 0 || n > 100000)
                return fl_err(ctx, -EINVAL, "a SHA-256 signature list needs 1 to 100000 hashes, not %zu", n);
        len = ESL_HDR + n * 48;
        b = malloc(len);
        if (!b)
                return -ENOMEM;
        memcpy(b, EFI_CERT_SHA256_GUID.b, 16);
        put32(b + 16, (uint32_t)len);
        put32(b + 20, 0);
        put32(b + 24, 48);
        for (size_t i = 0; i < n; i++) {
                memcpy(b + ESL_HDR + i * 48, owner->b, 16);
                memcpy(b + ESL_HDR + i * 48 + 16, hashes + i * 32, 32);
        }
        *ret = b;
        *ret_len = len;
        return 0;
}

int uefi_esl_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len,
                   struct uefi_esl_entry **ret, size_t *ret_n)
{
        struct uefi_esl_entry *e = NULL;
        size_t n = 0, cap = 0, off = 0, list = 0;
        int r = -EINVAL;

        while (off < len) {
                efi_guid type;
                uint32_t lsize, hsize, ssize;
                size_t body, count;

                if (len - off < ESL_HDR) {
                        fl_err(ctx, r, "%s: list %zu at offset %zu: %zu bytes left, a list header needs 28", name,
                               list, off, len - off);
                        goto out;
                }
                memcpy(type.b, data + off, 16);
                lsize = get32(data + off + 16);
                hsize = get32(data + off + 20);
                ssize = get32(data + off + 24);
                if (lsize < ESL_HDR || lsize > len - off) {
                        fl_err(ctx, r, "%s: list %zu at offset %zu: SignatureListSize %u does not fit the %zu bytes left",
                               name, list, off, lsize, len - off);
                        goto out;
                }
                if (ssize < 16 || hsize > lsize - ESL_HDR) {
                        fl_err(ctx, r, "%s: list %zu at offset %zu: SignatureSize %u / SignatureHeaderSize %u invalid",
                               name, list, off, ssize, hsize);
                        goto out;
                }
                body = lsize - ESL_HDR - hsize;
                if (body == 0 || body % ssize) {
                        fl_err(ctx, r, "%s: list %zu at offset %zu: %zu bytes of signatures is not a multiple of "
                                       "SignatureSize %u",
                               name, list, off, body, ssize);
                        goto out;
                }
                if (uefi_guid_eq(&type, &EFI_CERT_SHA256_GUID) && (ssize != 48 || hsize != 0)) {
                        fl_err(ctx, r, "%s: list %zu: SHA-256 list with SignatureSize %u (must be 48)", name, list,
                               ssize);
                        goto out;
                }
                if (uefi_guid_eq(&type, &EFI_CERT_X509_GUID) && hsize != 0) {
                        fl_err(ctx, r, "%s: list %zu: X.509 list with a SignatureHeaderSize of %u (must be 0)", name,
                               list, hsize);
                        goto out;
                }
                count = body / ssize;
                for (size_t i = 0; i < count; i++) {
                        size_t at = off + ESL_HDR + hsize + i * ssize;
                        struct uefi_esl_entry *x;
                        if (n == cap) {
                                size_t ncap = cap ? cap * 2 : 4;
                                struct uefi_esl_entry *ne = realloc(e, ncap * sizeof(*e));
                                if (!ne) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                e = ne;
                                cap = ncap;
                        }
                        x = &e[n++];
                        x->type = type;
                        memcpy(x->owner.b, data + at, 16);
                        x->data = data + at + 16;
                        x->len = ssize - 16;
                        x->list = list;
                        x->offset = at;
                        if (uefi_guid_eq(&type, &EFI_CERT_X509_GUID)) {
                                const unsigned char *p = x->data;
                                X509 *c = d2i_X509(NULL, &p, (long)x->len);
                                bool rsa = c && X509_get0_pubkey(c) && EVP_PKEY_is_a(X509_get0_pubkey(c), "RSA");
                                bool whole = c && p == x->data + x->len;
                                X509_free(c);
                                ERR_clear_error();
                                if (!whole) {
                                        fl_err(ctx, r, "%s: list %zu entry %zu: not exactly one DER certificate", name,
                                               list, i);
                                        goto out;
                                }
                                if (!rsa) {
                                        /* edk2 reads X.509 entries as RSA keys (§1.8). */
                                        fl_err(ctx, r, "%s: list %zu entry %zu: certificate key is not RSA", name,
                                               list, i);
                                        goto out;
                                }
                        }
                }
                off += lsize;
                list++;
        }
        *ret = e;
        *ret_n = n;
        e = NULL;
        r = 0;
out:
        free(e);
        return r;
}

/* ---- authenticated variables (§1.4-1.6) --------------------------------------------- */

int uefi_signed_buffer(enum uefi_var v, uint32_t attrs, const struct efi_time *t, const void *payload, size_t len,
                       unsigned char **ret, size_t *ret_len)
{
        const char *name = uefi_var_name(v);
        size_t nl = strlen(name), n = 2 * nl + 16 + 4 + 16 + len;
        unsigned char *b = malloc(n ? n : 1), *p;

        if (!b)
                return -ENOMEM;
        p = b;
        for (size_t i = 0; i < nl; i++) { /* UTF-16LE, no terminating NUL */
                *p++ = (unsigned char)name[i];
                *p++ = 0;
        }
        memcpy(p, uefi_var_vendor(v)->b, 16);
        p += 16;
        put32(p, attrs);
        p += 4;
        uefi_time_encode(t, p);
        p += 16;
        if (len)
                memcpy(p, payload, len);
        *ret = b;
        *ret_len = n;
        return 0;
}

int uefi_auth_build(fl_ctx *ctx, x509_signer *signer, X509 *cert, enum uefi_var v, uint32_t attrs,
                    const struct efi_time *t, const void *payload, size_t len, unsigned char **ret,
                    size_t *ret_len)
{
        unsigned char *buf = NULL, *sig = NULL, *out = NULL;
        size_t buflen = 0, siglen = 0, n;
        int r;

        r = uefi_signed_buffer(v, attrs, t, payload, len, &buf, &buflen);
        if (r < 0)
                goto out;
        r = x509_p7_sign_bare(ctx, signer, cert, buf, buflen, &sig, &siglen);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        n = AUTH_HDR + siglen + len;
        out = malloc(n);
        if (!out)
                goto out;
        uefi_time_encode(t, out);
        put32(out + 16, (uint32_t)(WIN_CERT_HDR + siglen));
        put16(out + 20, 0x0200);
        put16(out + 22, 0x0EF1);
        memcpy(out + 24, EFI_CERT_TYPE_PKCS7_GUID.b, 16);
        memcpy(out + AUTH_HDR, sig, siglen);
        if (len)
                memcpy(out + AUTH_HDR + siglen, payload, len);
        /* What edk2 would check, checked here before anything is written. */
        r = uefi_auth_verify(ctx, uefi_var_name(v), v, attrs, out, n, cert);
        if (r < 0)
                goto out;
        *ret = out;
        *ret_len = n;
        out = NULL;
        r = 0;
out:
        free(buf);
        free(sig);
        free(out);
        return r;
}

int uefi_auth_parse(fl_ctx *ctx, const char *name, const unsigned char *data, size_t len, struct uefi_auth *ret)
{
        static const unsigned char sha256_oid[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01 };
        struct uefi_auth a = { 0 };
        uint32_t dwlen;
        efi_guid ct;
        int r;

        if (len < AUTH_HDR)
                return fl_err(ctx, -EINVAL, "%s: %zu bytes is too short for EFI_VARIABLE_AUTHENTICATION_2", name,
                              len);
        r = uefi_time_decode(ctx, name, data, &a.time);
        if (r < 0)
                return r;
        dwlen = get32(data + 16);
        if (dwlen < WIN_CERT_HDR || dwlen > len - 16)
                return fl_err(ctx, -EINVAL, "%s: WIN_CERTIFICATE dwLength %u does not fit the %zu-byte file", name,
                              dwlen, len);
        if (get16(data + 20) != 0x0200)
                return fl_err(ctx, -EINVAL, "%s: wRevision 0x%04x, expected 0x0200", name, get16(data + 20));
        if (get16(data + 22) != 0x0EF1)
                return fl_err(ctx, -EINVAL, "%s: wCertificateType 0x%04x, expected 0x0EF1 (WIN_CERT_TYPE_EFI_GUID)",
                              name, get16(data + 22));
        memcpy(ct.b, data + 24, 16);
        if (!uefi_guid_eq(&ct, &EFI_CERT_TYPE_PKCS7_GUID))
                return fl_err(ctx, -EINVAL, "%s: CertType is not EFI_CERT_TYPE_PKCS7_GUID", name);
        a.sig = data + AUTH_HDR;
        a.sig_len = dwlen - WIN_CERT_HDR;
        a.payload = data + 16 + dwlen;
        a.payload_len = len - 16 - dwlen;
        /* edk2 (AuthService.c) refuses a time-based write unless CertData is a
         * DER SEQUENCE with a two-byte length and the SHA-256 OID at offset
         * 13 — true only for a bare SignedData (§1.6). */
        if (a.sig_len < 13 + sizeof(sha256_oid) || a.sig[0] != 0x30 || (a.sig[1] & 0x82) != 0x82 ||
            memcmp(a.sig + 13, sha256_oid, sizeof(sha256_oid)))
                return fl_err(ctx, -EINVAL,
                              "%s: CertData is not a bare SHA-256 PKCS#7 SignedData (edk2 would refuse it)", name);
        *ret = a;
        return 0;
}

int uefi_auth_verify(fl_ctx *ctx, const char *name, enum uefi_var v, uint32_t attrs, const unsigned char *data,
                     size_t len, X509 *signer)
{
        struct uefi_auth a;
        unsigned char *buf = NULL;
        size_t n = 0;
        int r = uefi_auth_parse(ctx, name, data, len, &a);

        if (r < 0)
                return r;
        r = uefi_signed_buffer(v, attrs, &a.time, a.payload, a.payload_len, &buf, &n);
        if (r < 0)
                return r;
        r = x509_p7_verify(ctx, name, a.sig, a.sig_len, true, buf, n, signer);
        free(buf);
        if (r < 0)
                return r;
        /* edk2 builds the chain from the certificates in CertData to the
         * trusted one, so the signer's own certificate must be there. */
        {
                STACK_OF(X509) *certs = NULL;
                bool found = false;
                r = x509_p7_certs(ctx, name, a.sig, a.sig_len, true, &certs);
                if (r < 0)
                        return r;
                for (int i = 0; i < sk_X509_num(certs); i++)
                        found |= X509_cmp(sk_X509_value(certs, i), signer) == 0;
                sk_X509_pop_free(certs, X509_free);
                if (!found)
                        return fl_err(ctx, -EBADMSG, "%s: CertData does not carry the signer's certificate", name);
        }
        return 0;
}

/* ---- uefi_keys.conf (§3.1) ------------------------------------------------------------ */

static bool fname_char(int c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '+' || c == '@';
}

static bool plain_file_name(const char *s)
{
        if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
                return false;
        for (; *s; s++)
                if (!fname_char((unsigned char)*s))
                        return false;
        return true;
}

void uefi_conf_free(struct uefi_conf *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                free(c->vars[i].name);
                free(c->vars[i].value);
        }
        free(c->vars);
        c->vars = NULL;
        c->n = 0;
}

const char *uefi_conf_get(const struct uefi_conf *c, const char *name)
{
        /* bash semantics: the last assignment wins. */
        for (size_t i = c->n; i-- > 0;)
                if (!strcmp(c->vars[i].name, name))
                        return c->vars[i].value;
        return NULL;
}

int uefi_conf_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, struct uefi_conf *ret)
{
        struct uefi_conf c = { 0 };
        size_t pos = 0;
        unsigned line = 0;
        int r = -EINVAL;

        if (len > BUNDLE_FILE_MAX || memchr(text, 0, len))
                return fl_err(ctx, -EINVAL, "%s: not a uefi_keys.conf (binary data or too large)", name);
        while (pos < len) {
                const char *l = text + pos, *e = memchr(l, '\n', len - pos), *p, *q;
                size_t ll = e ? (size_t)(e - l) : len - pos;
                char *vname = NULL, *value = NULL;
                struct uefi_conf_var *nv;

                pos += ll + (e ? 1 : 0);
                line++;
                p = l;
                q = l + ll;
                if (q > p && q[-1] == '\r')
                        q--;
                while (p < q && (*p == ' ' || *p == '\t'))
                        p++;
                if (p == q || *p == '#')
                        continue;
                const char *ns = p;
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_')) {
                        fl_err(ctx, r, "%s:%u: expected NAME=\"file\"", name, line);
                        goto out;
                }
                while (p < q && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                                 *p == '_'))
                        p++;
                if (p == q || *p != '=') {
                        fl_err(ctx, r, "%s:%u: expected NAME=\"file\" (only plain assignments are read)", name, line);
                        goto out;
                }
                vname = strndup(ns, (size_t)(p - ns));
                p++;
                const char *vs, *ve;
                if (p < q && *p == '"') {
                        vs = ++p;
                        while (p < q && *p != '"')
                                p++;
                        if (p == q) {
                                free(vname);
                                fl_err(ctx, r, "%s:%u: unterminated quote", name, line);
                                goto out;
                        }
                        ve = p++;
                } else {
                        vs = p;
                        while (p < q && fname_char((unsigned char)*p))
                                p++;
                        ve = p;
                }
                value = strndup(vs, (size_t)(ve - vs));
                while (p < q && (*p == ' ' || *p == '\t'))
                        p++;
                if (p < q && *p == ';')
                        p++;
                while (p < q && (*p == ' ' || *p == '\t'))
                        p++;
                if (!vname || !value) {
                        free(vname);
                        free(value);
                        r = -ENOMEM;
                        goto out;
                }
                if (p < q && *p != '#') {
                        fl_err(ctx, r, "%s:%u: unexpected text after %s=\"%.40s\"", name, line, vname, value);
                        free(vname);
                        free(value);
                        goto out;
                }
                if (*value && !plain_file_name(value)) {
                        /* NVIDIA's tools require every file in the conf's own
                         * directory, and this is not a shell: no paths,
                         * expansions or quoting tricks. */
                        fl_err(ctx, r, "%s:%u: %s=\"%.40s\" is not a plain file name in the conf's directory", name,
                               line, vname, value);
                        free(vname);
                        free(value);
                        goto out;
                }
                nv = realloc(c.vars, (c.n + 1) * sizeof(*c.vars));
                if (!nv) {
                        free(vname);
                        free(value);
                        r = -ENOMEM;
                        goto out;
                }
                c.vars = nv;
                c.vars[c.n++] = (struct uefi_conf_var){ vname, value, line };
        }
        *ret = c;
        c = (struct uefi_conf){ 0 };
        r = 0;
out:
        uefi_conf_free(&c);
        return r;
}

/* ---- device-tree overlays (§3.2) --------------------------------------------------------- */

static void dts_bytes(struct fl_buf *b, const char *node, const unsigned char *d, size_t n, bool nv)
{
        const char *ind = "                            "; /* 28: a node under a vendor-GUID node */

        fl_buf_printf(b, "%s%s {\n%s    data = [", ind, node, ind);
        for (size_t i = 0; i < n; i++) {
                if (i % 16 == 0)
                        fl_buf_printf(b, "\n%s        ", ind);
                fl_buf_printf(b, "%02x%s", d[i], (i % 16 == 15 || i + 1 == n) ? "" : " ");
        }
        fl_buf_printf(b, "\n%s    ];\n", ind);
        if (nv)
                fl_buf_printf(b, "%s    non-volatile;\n", ind);
        fl_buf_printf(b, "%s};\n", ind);
}

static void dts_open(struct fl_buf *b, const char *what)
{
        fl_buf_printf(b,
                  "/* %s for NVIDIA Jetson UEFI, written by fuseline %s.\n"
                  " * Same node layout as NVIDIA's tools/gen_uefi_keys_dts.sh; compile with\n"
                  " * dtc -I dts -O dtb. */\n"
                  "/dts-v1/;\n"
                  "/plugin/;\n"
                  "/ {\n"
                  "    overlay-name = \"UEFI Secure Boot Keys\";\n"
                  "    fragment@0 {\n"
                  "        target-path = \"/\";\n"
                  "        board_config {\n"
                  "            sw-modules = \"uefi\";\n"
                  "        };\n"
                  "        __overlay__ {\n"
                  "            firmware {\n"
                  "                uefi {\n"
                  "                    variables {\n"
                  "                        gNVIDIAPublicVariableGuid {\n"
                  "                            EnrollDefaultSecurityKeys {\n"
                  "                                data = [01];\n"
                  "                                non-volatile;\n"
                  "                            };\n",
                  what, fl_version());
}

static void dts_close(struct fl_buf *b)
{
        fl_buf_printf(b, "                        };\n"
                     "                    };\n"
                     "                };\n"
                     "            };\n"
                     "        };\n"
                     "    };\n"
                     "};\n");
}

char *uefi_dts_default(const unsigned char *pk, size_t pk_len, const unsigned char *kek, size_t kek_len,
                       const unsigned char *db, size_t db_len, const unsigned char *dbx, size_t dbx_len)
{
        struct fl_buf b = { 0 };

        dts_open(&b, "Default Secure Boot keys (PK, KEK, db)");
        fl_buf_printf(&b, "                        };\n"
                      "                        gEfiGlobalVariableGuid {\n");
        dts_bytes(&b, "PKDefault", pk, pk_len, true);
        dts_bytes(&b, "KEKDefault", kek, kek_len, true);
        dts_bytes(&b, "dbDefault", db, db_len, true);
        if (dbx && dbx_len)
                dts_bytes(&b, "dbxDefault", dbx, dbx_len, true);
        dts_close(&b);
        return fl_buf_take_str(&b);
}

char *uefi_dts_update(const struct uefi_update_blob *blobs, size_t n)
{
        static const char *const base[] = { [UEFI_VAR_KEK] = "kekSigned", [UEFI_VAR_DB] = "dbSigned",
                                            [UEFI_VAR_DBX] = "dbxSigned" };
        unsigned idx[4] = { 0 };
        struct fl_buf b = { 0 };
        char node[32];

        /* The update nodes sit beside EnrollDefaultSecurityKeys under
         * gNVIDIAPublicVariableGuid, as the NVIDIA script writes them. */
        dts_open(&b, "Signed Secure Boot key updates (KEK, db, dbx)");
        for (int v = UEFI_VAR_KEK; v <= UEFI_VAR_DBX; v++)
                for (size_t i = 0; i < n; i++) {
                        if ((int)blobs[i].var != v)
                                continue;
                        snprintf(node, sizeof(node), "%s_%u", base[v], idx[v]++);
                        dts_bytes(&b, node, blobs[i].data, blobs[i].len, false);
                }
        dts_close(&b);
        return fl_buf_take_str(&b);
}

static void dtc_first_line(const char *line, void *data)
{
        char *err = data;
        if (!*err && *line)
                snprintf(err, 512, "%s", line);
}

int uefi_dtc(fl_ctx *ctx, const char *dts_path, const char *dtbo_path)
{
        const char *prog = getenv("FUSELINE_DTC");
        char *tmp = NULL, err[512] = "", **envp = NULL, rbuf[64];
        struct proc_result res;
        int r;

        if (!prog || !*prog)
                prog = "dtc";
        /* An empty temp file beside the target that dtc fills. */
        r = file_temp_write(ctx, dtbo_path, "", 0, 0644, false, &tmp);
        if (r < 0)
                return r;
        /* dtc gets a scrubbed environment: never a PIN variable. */
        r = proc_env_scrub(environ, NULL, NULL, &envp);
        if (r < 0)
                goto out;
        {
                const char *argv[] = { prog, "-q", "-I", "dts", "-O", "dtb", "-o", tmp, dts_path, NULL };
                struct proc_opts po = { .argv = argv, .envp = (const char *const *)envp, .timeout_ms = 60000,
                                        .on_line = dtc_first_line, .data = err };
                r = proc_run(ctx, &po, &res);
        }
        if (r == -ENOENT) {
                fl_err_clear(ctx);
                goto out;
        }
        if (r < 0)
                goto out;
        if (!res.exited || res.status != 0) {
                r = fl_err(ctx, -EIO, "dtc failed on %s (%s): %s", dts_path, proc_result_text(&res, rbuf, sizeof(rbuf)),
                           *err ? err : "(no message)");
                goto out;
        }
        r = file_temp_commit(ctx, tmp, dtbo_path, FILE_SYNC_DATA | FILE_SYNC_DIR);
        free(tmp);
        tmp = NULL;
        if (r < 0)
                goto out;
out:
        proc_env_free(envp);
        if (tmp) {
                unlink(tmp);
                free(tmp);
        }
        return r;
}

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int uefi_fdt_get(fl_ctx *ctx, const char *name, const unsigned char *fdt, size_t len, const char *path,
                 const char *prop, const unsigned char **ret, size_t *ret_len)
{
        enum { BEGIN = 1, END = 2, PROP = 3, NOP = 4, FEND = 9, MAXDEPTH = 32 };
        uint32_t total, off_struct, off_strings, size_strings, size_struct, version;
        size_t stack[MAXDEPTH], depth = 0, pos, end, cur_len = 0;
        char cur[512];
        const unsigned char *found = NULL;
        size_t found_len = 0;

        if (len < 40 || be32(fdt) != 0xd00dfeed)
                return fl_err(ctx, -EINVAL, "%s: not a flattened device tree (bad magic)", name);
        total = be32(fdt + 4);
        off_struct = be32(fdt + 8);
        off_strings = be32(fdt + 12);
        version = be32(fdt + 20);
        size_strings = be32(fdt + 32);
        size_struct = version >= 17 ? be32(fdt + 36) : total - off_struct;
        if (total > len || off_struct > total || off_strings > total || size_struct > total - off_struct ||
            size_strings > total - off_strings || version < 16)
                return fl_err(ctx, -EINVAL, "%s: device tree header sizes do not fit the file", name);
        pos = off_struct;
        end = (size_t)off_struct + size_struct;
        cur[0] = 0;
        while (pos + 4 <= end) {
                uint32_t tok = be32(fdt + pos);
                pos += 4;
                if (tok == BEGIN) {
                        const unsigned char *nm = fdt + pos, *z = memchr(nm, 0, end - pos);
                        size_t nl;
                        if (!z || depth == MAXDEPTH)
                                return fl_err(ctx, -EINVAL, "%s: malformed device tree node", name);
                        nl = (size_t)(z - nm);
                        stack[depth++] = cur_len;
                        if (depth > 1) { /* the root's name is empty */
                                if (cur_len + 1 + nl >= sizeof(cur))
                                        return fl_err(ctx, -EINVAL, "%s: device tree path too long", name);
                                cur[cur_len++] = '/';
                                memcpy(cur + cur_len, nm, nl);
                                cur_len += nl;
                                cur[cur_len] = 0;
                        }
                        pos += (nl + 1 + 3) & ~(size_t)3;
                } else if (tok == END) {
                        if (depth == 0)
                                return fl_err(ctx, -EINVAL, "%s: unbalanced device tree nodes", name);
                        cur_len = stack[--depth];
                        cur[cur_len] = 0;
                } else if (tok == PROP) {
                        uint32_t plen, noff;
                        const char *pn;
                        if (end - pos < 8)
                                return fl_err(ctx, -EINVAL, "%s: truncated device tree property", name);
                        plen = be32(fdt + pos);
                        noff = be32(fdt + pos + 4);
                        pos += 8;
                        if (plen > end - pos || noff >= size_strings ||
                            !memchr(fdt + off_strings + noff, 0, size_strings - noff))
                                return fl_err(ctx, -EINVAL, "%s: malformed device tree property", name);
                        pn = (const char *)fdt + off_strings + noff;
                        if (!strcmp(pn, prop) && !strcmp(cur_len ? cur : "/", path)) {
                                if (found)
                                        return fl_err(ctx, -EINVAL, "%s: %s/%s appears twice", name, path, prop);
                                found = fdt + pos;
                                found_len = plen;
                        }
                        pos += (plen + 3) & ~(size_t)3;
                } else if (tok == NOP) {
                        continue;
                } else if (tok == FEND) {
                        break;
                } else {
                        return fl_err(ctx, -EINVAL, "%s: unknown device tree token 0x%x", name, tok);
                }
        }
        if (!found)
                return -ENOENT;
        *ret = found;
        *ret_len = found_len;
        return 0;
}

/* A copy of a .dts with comments and string contents blanked, so a node
 * name inside either cannot be mistaken for the node. */
static char *dts_strip(const char *t, size_t n)
{
        char *s = malloc(n + 1);

        if (!s)
                return NULL;
        memcpy(s, t, n);
        s[n] = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
                        size_t j = i;
                        while (j < n && !(s[j] == '*' && j + 1 < n && s[j + 1] == '/'))
                                s[j++] = ' ';
                        for (size_t k = 0; k < 2 && j < n; k++)
                                s[j++] = ' ';
                        i = j ? j - 1 : 0;
                } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
                        while (i < n && s[i] != '\n')
                                s[i++] = ' ';
                } else if (s[i] == '"') {
                        i++;
                        while (i < n && s[i] != '"') {
                                if (s[i] == '\\' && i + 1 < n)
                                        s[i++] = ' ';
                                s[i++] = ' ';
                        }
                }
        }
        return s;
}

static bool ident_char(int c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == ',' || c == '.' || c == '+' || c == '@' || c == '#';
}

int uefi_dts_get(fl_ctx *ctx, const char *name, const char *text, size_t len, const char *node,
                 unsigned char **ret, size_t *ret_len)
{
        char *s = NULL;
        const char *hit = NULL, *p, *q;
        size_t nl = strlen(node), n = 0;
        unsigned char *out = NULL;
        int depth, r = -EINVAL;

        if (len > BUNDLE_FILE_MAX || memchr(text, 0, len))
                return fl_err(ctx, -EINVAL, "%s: not a device-tree source (binary data or too large)", name);
        s = dts_strip(text, len);
        if (!s)
                return -ENOMEM;
        for (p = s; (p = strstr(p, node)); p += nl) {
                if ((p > s && ident_char((unsigned char)p[-1])) || ident_char((unsigned char)p[nl]))
                        continue;
                q = p + nl;
                while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                        q++;
                if (*q != '{')
                        continue;
                if (hit) {
                        fl_err(ctx, r, "%s: node %s appears twice", name, node);
                        goto out;
                }
                hit = q + 1;
        }
        if (!hit) {
                r = -ENOENT;
                goto out;
        }
        /* Find "data = [" at depth 0 inside the node. */
        for (p = hit, depth = 0; *p; p++) {
                if (*p == '{')
                        depth++;
                else if (*p == '}') {
                        if (depth-- == 0)
                                break;
                } else if (depth == 0 && !strncmp(p, "data", 4) && (p == s || !ident_char((unsigned char)p[-1])) &&
                           !ident_char((unsigned char)p[4])) {
                        q = p + 4;
                        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                                q++;
                        if (*q++ != '=')
                                continue;
                        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
                                q++;
                        if (*q++ != '[')
                                break;
                        const char *close = strchr(q, ']');
                        if (!close)
                                break;
                        out = malloc((size_t)(close - q) / 2 + 1);
                        if (!out) {
                                r = -ENOMEM;
                                goto out;
                        }
                        while (q < close) {
                                int hi, lo;
                                if (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') {
                                        q++;
                                        continue;
                                }
                                hi = hex_digit((unsigned char)q[0]);
                                lo = q + 1 < close ? hex_digit((unsigned char)q[1]) : -1;
                                if (hi < 0 || lo < 0) {
                                        fl_err(ctx, r, "%s: node %s: data is not a list of hex bytes", name, node);
                                        goto out;
                                }
                                out[n++] = (unsigned char)(hi << 4 | lo);
                                q += 2;
                        }
                        *ret = out;
                        *ret_len = n;
                        out = NULL;
                        r = 0;
                        goto out;
                }
        }
        fl_err(ctx, r, "%s: node %s has no \"data = [ … ];\" property", name, node);
out:
        free(out);
        free(s);
        return r;
}

/* ---- operations: shared helpers ---------------------------------------------------------------- */

static const struct role_def {
        const char *role, *file, *cn;
} role_defs[UEFI_ROLE_COUNT] = {
        [UEFI_ROLE_PK] = { "uefi-pk", "PK", "Platform Key" },
        [UEFI_ROLE_KEK] = { "uefi-kek", "KEK", "Key Exchange Key" },
        [UEFI_ROLE_DB1] = { "uefi-db1", "db_1", "Signature Database key" },
        [UEFI_ROLE_DB2] = { "uefi-db2", "db_2", "Signature Database key 2" },
};

const char *uefi_role_name(enum uefi_role r)
{
        return (unsigned)r < UEFI_ROLE_COUNT ? role_defs[r].role : "?";
}

static char *path_join(const char *dir, const char *name)
{
        char *p = NULL;
        size_t n = strlen(dir);

        if (asprintf(&p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name) < 0)
                return NULL;
        return p;
}

/* Files written into a staging directory, so a failure can take exactly
 * them away again. */
struct stage {
        char *dir;
        char *names[40];
        size_t n;
};

static int stage_write(fl_ctx *ctx, struct stage *st, const char *name, const void *data, size_t len)
{
        char *p = path_join(st->dir, name);
        int r;

        if (!p || st->n == FL_ARRAY_SIZE(st->names)) {
                free(p);
                return -ENOMEM;
        }
        r = file_write_new(ctx, p, data, len, 0644);
        free(p);
        if (r < 0)
                return r;
        st->names[st->n] = strdup(name);
        if (!st->names[st->n])
                return -ENOMEM;
        st->n++;
        return 0;
}

static int stage_note(struct stage *st, const char *name)
{
        if (st->n == FL_ARRAY_SIZE(st->names) || !(st->names[st->n] = strdup(name)))
                return -ENOMEM;
        st->n++;
        return 0;
}

/* Remove what was staged from dir (the staging directory, or the bundle
 * after it was renamed), and the directory itself when rmdir_too. */
static void stage_remove(struct stage *st, const char *dir, bool rmdir_too)
{
        for (size_t i = 0; i < st->n; i++) {
                char *p = path_join(dir, st->names[i]);
                if (p)
                        unlink(p);
                free(p);
        }
        if (rmdir_too)
                rmdir(dir);
}

static void stage_free(struct stage *st)
{
        for (size_t i = 0; i < st->n; i++)
                free(st->names[i]);
        free(st->dir);
        memset(st, 0, sizeof(*st));
}

static bool label_ok(const char *s)
{
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
                      s[n] == '-' || s[n] == '_' || s[n] == '.'))
                        return false;
        return n > 0 && n <= 48;
}

/* The output directory must be new or empty: a bundle never mixes with
 * files from another run. */
static int out_dir_check(fl_ctx *ctx, const char *dir, bool *ret_exists)
{
        struct stat st;
        DIR *d;
        struct dirent *e;
        int r = 0;

        *ret_exists = false;
        if (stat(dir, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return fl_err(ctx, -EINVAL, "%s: %s", dir, strerror(errno));
        }
        if (!S_ISDIR(st.st_mode))
                return fl_err(ctx, -EEXIST, "%s: exists and is not a directory", dir);
        d = opendir(dir);
        if (!d)
                return fl_err(ctx, -EINVAL, "%s: cannot read: %s", dir, strerror(errno));
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                        r = fl_err(ctx, -EEXIST,
                                   "%s: not empty (holds '%s'); a bundle is written only into a new or empty directory",
                                   dir, e->d_name);
                        break;
                }
        closedir(d);
        *ret_exists = true;
        return r;
}

/* Base DN plus CN "<prefix> <what>", the prefix being the base's own CN
 * (which it replaces) or else its O. */
static int role_subject(fl_ctx *ctx, const char *base, const char *what, X509_NAME **ret)
{
        X509_NAME *n = NULL;
        unsigned char *prefix = NULL;
        char cn[256];
        int idx = -1, i, r;

        if (base && *base) {
                r = x509_name_parse(ctx, base, &n);
                if (r < 0)
                        return fl_err(ctx, r, "--subject: %s", fl_ctx_last_error(ctx));
                for (i = -1; (i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0;)
                        idx = i;
                if (idx < 0)
                        for (i = -1; (i = X509_NAME_get_index_by_NID(n, NID_organizationName, i)) >= 0;)
                                idx = i;
                if (idx >= 0 &&
                    ASN1_STRING_to_UTF8(&prefix, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx))) < 0) {
                        X509_NAME_free(n);
                        return -ENOMEM;
                }
                if (idx >= 0 && OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(n, idx))) ==
                                        NID_commonName)
                        X509_NAME_ENTRY_free(X509_NAME_delete_entry(n, idx));
        } else {
                n = X509_NAME_new();
                if (!n)
                        return -ENOMEM;
        }
        if (prefix)
                snprintf(cn, sizeof(cn), "%s %s", (char *)prefix, what);
        else
                snprintf(cn, sizeof(cn), "%s", what);
        OPENSSL_free(prefix);
        if (strlen(cn) > 64) {
                X509_NAME_free(n);
                return fl_err(ctx, -EINVAL, "--subject: common name '%s' is longer than 64 characters", cn);
        }
        if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0)) {
                X509_NAME_free(n);
                return fl_err(ctx, -EINVAL, "--subject: common name '%s' is not acceptable", cn);
        }
        *ret = n;
        return 0;
}

/* An unencrypted RSA-2048/3072 PEM private key (the file is a secret: read
 * into a wiped buffer). */
/* Refuses every passphrase request: an encrypted key file fails (even one
 * encrypted with an empty passphrase) instead of prompting or guessing. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
        (void)buf;
        (void)size;
        (void)rwflag;
        (void)u;
        return -1;
}

static int load_import_key(fl_ctx *ctx, const char *dir, const char *file, EVP_PKEY **ret, enum key_type *ret_type)
{
        char name[32], *path;
        EVP_PKEY *pk = NULL;
        int r, bits;

        snprintf(name, sizeof(name), "%s.key", file);
        path = path_join(dir, name);
        if (!path)
                return -ENOMEM;
        r = pkey_read_pem(ctx, path, false, refuse_passphrase, NULL, &pk);
        if (r < 0)
                goto out;
        ERR_clear_error();
        if (!pk) {
                r = fl_err(ctx, -EINVAL, "%s: not an unencrypted PEM private key", path);
                goto out;
        }
        bits = EVP_PKEY_get_bits(pk);
        if (!EVP_PKEY_is_a(pk, "RSA") || (bits != 2048 && bits != 3072)) {
                r = fl_err(ctx, -EINVAL, "%s: a %s-%d key; UEFI keys are RSA-2048 or RSA-3072", path,
                           EVP_PKEY_get0_type_name(pk), bits);
                goto out;
        }
        *ret_type = bits == 2048 ? KT_RSA2K : KT_RSA3K;
        *ret = pk;
        pk = NULL;
        r = 0;
out:
        EVP_PKEY_free(pk);
        free(path);
        return r;
}

static char *conf_text(const efi_guid *owner, const char *db_uri, const struct efi_time *t)
{
        struct fl_buf b = { 0 };
        char g[37], ts[20], now[32];

        uefi_guid_format(owner, g);
        uefi_time_format(t, ts);
        time_now_utc(now, sizeof(now));
        fl_buf_printf(&b,
                  "# uefi_keys.conf: UEFI Secure Boot keys for NVIDIA Jetson (JetPack 6), written by\n"
                  "# fuseline %s at %s. Read by flash.sh / l4t_initrd_flash.sh --uefi-keys and\n"
                  "# by tools/gen_uefi_keys_dts.sh; every file named here is in this directory.\n"
                  "#\n"
                  "# Owner GUID of every signature list: %s\n"
                  "# PK.auth, KEK.auth, db.auth timestamp: %s UTC (noPK.auth: one second later)\n"
                  "#\n"
                  "# The db signing key is not a file: it stays in the PKCS#11 token as\n"
                  "#   %s\n"
                  "# so UEFI_DB_1_KEY_FILE is deliberately not set. Sign the UEFI payloads with\n"
                  "# `fuseline sign --uefi-payload` and BOOTAA64.efi with `sbsign --engine pkcs11`\n"
                  "# before flashing (see the fuseline README, HSM flow).\n"
                  "UEFI_DB_1_CERT_FILE=\"db_1.crt\";\n"
                  "\n"
                  "UEFI_DEFAULT_PK_ESL=\"PK.esl\";\n"
                  "UEFI_DEFAULT_KEK_ESL_0=\"KEK.esl\";\n"
                  "UEFI_DEFAULT_DB_ESL_0=\"db.esl\";\n",
                  fl_version(), now, g, ts, db_uri);
        return fl_buf_take_str(&b);
}

/* ---- keygen ------------------------------------------------------------------------------------- */

void uefi_keygen_result_free(struct uefi_keygen_result *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < UEFI_ROLE_COUNT; i++) {
                free(r->keys[i].label);
                free(r->keys[i].uri);
                free(r->keys[i].cert_path);
                free(r->keys[i].subject);
        }
        free(r->out_dir);
        memset(r, 0, sizeof(*r));
}

static int keyset_record(fl_ctx *ctx, const struct uefi_keygen_opts *o, const struct uefi_keygen_result *res)
{
        char g[37];
        int r = 0;

        uefi_guid_format(&o->owner, g);
        for (size_t i = 0; i < res->n_keys && r == 0; i++) {
                const struct uefi_keygen_key *k = &res->keys[i];
                struct ks_key e = { .role = (char *)role_defs[k->role].role, .type = k->type, .label = k->label,
                                    .uri = k->uri, .public_key_sha256 = (char *)k->spki_sha256,
                                    .imported = k->imported };
                e.extra = json_object_new_object();
                if (!e.extra)
                        return -ENOMEM;
                json_object_object_add(e.extra, "certificate", json_object_new_string(k->cert_path));
                json_object_object_add(e.extra, "certificate_sha256", json_object_new_string(k->cert_sha256));
                json_object_object_add(e.extra, "subject", json_object_new_string(k->subject));
                json_object_object_add(e.extra, "owner_guid", json_object_new_string(g));
                json_object_object_add(e.extra, "bundle", json_object_new_string(res->out_dir));
                r = keyset_add(o->ks, &e);
                json_object_put(e.extra);
        }
        if (r < 0)
                return r;
        return keyset_save(ctx, o->ks, o->ks_path);
}

int uefi_keygen(fl_ctx *ctx, fl_token *tok, const struct uefi_keygen_opts *o, struct uefi_keygen_result *ret)
{
        struct uefi_keygen_result res = { 0 };
        struct stage st = { 0 };
        size_t nroles = 2 + (o->db_count == 2 ? 1 : 0) + (o->db_count >= 1 ? 1 : 0);
        token_obj priv[UEFI_ROLE_COUNT] = { 0 }, pub[UEFI_ROLE_COUNT] = { 0 };
        bool made[UEFI_ROLE_COUNT] = { false }, existed = false, renamed = false;
        X509 *cert[UEFI_ROLE_COUNT] = { NULL };
        x509_signer *sg[UEFI_ROLE_COUNT] = { NULL };
        unsigned char *esl[UEFI_ROLE_COUNT] = { NULL }, *db = NULL, *a = NULL;
        size_t esl_len[UEFI_ROLE_COUNT] = { 0 }, db_len = 0, a_len = 0;
        char *tmpl = NULL, *text = NULL, *outdir = NULL;
        struct efi_time nopk_time = o->time;
        int r;

        if (!o->import_dir && o->type != KT_RSA2K && o->type != KT_RSA3K)
                return fl_err(ctx, -EINVAL, "UEFI keys are RSA-2048 or RSA-3072 (edk2 reads db/KEK/PK as RSA)");
        if (o->db_count < 1 || o->db_count > 2)
                return fl_err(ctx, -EINVAL, "--db-count must be 1 or 2, not %u", o->db_count);
        if (o->days == 0)
                return fl_err(ctx, -EINVAL, "--days must be at least 1");
        if (!o->name || !label_ok(o->name))
                return fl_err(ctx, -EINVAL, "--name '%s': use 1-48 of A-Z a-z 0-9 . _ -", o->name ? o->name : "");
        if (!o->out_dir || !*o->out_dir)
                return fl_err(ctx, -EINVAL, "--out-dir is required");
        if (uefi_time_add(&nopk_time, 1) < 0)
                return fl_err(ctx, -EINVAL, "--timestamp: no later second exists for noPK.auth");
        for (size_t i = 0; o->ks && i < nroles; i++)
                if (keyset_find(o->ks, role_defs[i].role))
                        return fl_err(ctx, -EEXIST, "%s: already has role %s; fuseline never replaces keys",
                                      o->ks_path, role_defs[i].role);
        {
                X509_NAME *probe = NULL; /* a bad --subject fails before any key exists */
                r = role_subject(ctx, o->subject, role_defs[UEFI_ROLE_DB2].cn, &probe);
                X509_NAME_free(probe);
                if (r < 0)
                        return r;
        }
        r = out_dir_check(ctx, o->out_dir, &existed);
        if (r < 0)
                return r;

        /* Every label free before the first key is made. */
        for (size_t i = 0; i < nroles; i++) {
                size_t cnt = 0;
                if (asprintf(&res.keys[i].label, "%s-%s", o->name, role_defs[i].role) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                res.keys[i].role = (enum uefi_role)i;
                r = token_count_label(tok, res.keys[i].label, &cnt);
                if (r < 0)
                        goto fail;
                if (cnt) {
                        r = fl_err(ctx, -EEXIST,
                                   "token '%s' already holds an object labelled '%s'; fuseline never replaces keys "
                                   "(choose another --name)",
                                   token_get_info(tok)->label, res.keys[i].label);
                        goto fail;
                }
        }
        res.n_keys = nroles;

        /* The staging directory sits beside the target so one rename(2)
         * publishes the whole bundle. */
        {
                size_t n = strlen(o->out_dir);
                while (n > 1 && o->out_dir[n - 1] == '/')
                        n--;
                if (asprintf(&tmpl, "%.*s.tmp.XXXXXX", (int)n, o->out_dir) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (!mkdtemp(tmpl)) {
                r = fl_err(ctx, -EINVAL, "%s: cannot create the bundle directory: %s", o->out_dir, strerror(errno));
                goto fail;
        }
        st.dir = tmpl;
        tmpl = NULL;

        for (size_t i = 0; i < nroles; i++) {
                unsigned char id[ID_LEN];
                struct keygen_spec spec = { .label = res.keys[i].label, .id = id, .id_len = ID_LEN, .type = o->type };
                struct x509_cert_spec cs = { .days = o->days, .ca = 1, .path_len = -1, .bc_critical = true,
                                             .ski = true, .aki = true, .hash = X509H_SHA256 };
                X509_NAME *subj = NULL;
                unsigned char *der = NULL;
                size_t der_len = 0, pem_len = 0;
                char *pem = NULL, name[32];

                /* SIGINT/SIGTERM: roll back what exists so far (fail:). */
                r = fl_interrupted(ctx);
                if (r == 0)
                        r = token_random_id(tok, id, sizeof(id));
                if (r < 0)
                        goto fail;
                res.keys[i].type = o->type;
                if (o->import_dir) {
                        EVP_PKEY *pk = NULL;
                        r = load_import_key(ctx, o->import_dir, role_defs[i].file, &pk, &res.keys[i].type);
                        if (r < 0)
                                goto fail;
                        r = token_import_pkey(tok, pk, res.keys[i].label, id, ID_LEN, &priv[i], &pub[i]);
                        EVP_PKEY_free(pk);
                        res.keys[i].imported = true;
                } else {
                        r = token_keygen(tok, &spec, &priv[i], &pub[i]);
                }
                if (r < 0)
                        goto fail;
                made[i] = true;
                res.keys[i].uri = token_object_uri(tok, res.keys[i].label, id, ID_LEN, CKO_PRIVATE_KEY);
                if (!res.keys[i].uri) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = x509_signer_token(ctx, tok, priv[i], &sg[i]);
                if (r < 0)
                        goto fail;
                r = pkey_spki_sha256(ctx, x509_signer_pubkey(sg[i]), res.keys[i].spki_sha256);
                if (r < 0)
                        goto fail;
                r = role_subject(ctx, o->subject, role_defs[i].cn, &subj);
                if (r < 0)
                        goto fail;
                cs.subject_name = subj;
                r = x509_cert_build(ctx, &cs, sg[i], &cert[i]);
                X509_NAME_free(subj);
                if (r < 0)
                        goto fail;
                res.keys[i].subject = x509_name_text(X509_get_subject_name(cert[i]));
                if (!res.keys[i].subject) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = x509_cert_sha256(cert[i], res.keys[i].cert_sha256);
                if (r < 0)
                        goto fail;
                r = x509_cert_der(cert[i], &der, &der_len);
                if (r < 0)
                        goto fail;
                r = x509_cert_pem(cert[i], &pem, &pem_len);
                if (r == 0) {
                        snprintf(name, sizeof(name), "%s.crt", role_defs[i].file);
                        r = stage_write(ctx, &st, name, pem, pem_len);
                }
                if (r == 0) {
                        snprintf(name, sizeof(name), "%s.der", role_defs[i].file);
                        r = stage_write(ctx, &st, name, der, der_len);
                }
                if (r == 0)
                        r = uefi_esl_x509(ctx, &o->owner, der, der_len, &esl[i], &esl_len[i]);
                OPENSSL_free(der);
                free(pem);
                if (r < 0)
                        goto fail;
        }

        /* One list per certificate; a multi-cert db is lists concatenated (§1.2). */
        if ((r = fl_interrupted(ctx)) < 0)
                goto fail;
        {
                struct fl_buf dbb = { 0 };
                for (size_t i = UEFI_ROLE_DB1; i < nroles && r == 0; i++)
                        r = fl_buf_put(&dbb, esl[i], esl_len[i]);
                db = dbb.p;
                db_len = dbb.len;
                if (r < 0)
                        goto fail;
        }
        if ((r = stage_write(ctx, &st, "PK.esl", esl[UEFI_ROLE_PK], esl_len[UEFI_ROLE_PK])) < 0 ||
            (r = stage_write(ctx, &st, "KEK.esl", esl[UEFI_ROLE_KEK], esl_len[UEFI_ROLE_KEK])) < 0 ||
            (r = stage_write(ctx, &st, "db.esl", db, db_len)) < 0)
                goto fail;

        /* PK is self-signed, KEK is signed by PK, db by KEK (§3.5); noPK
         * (empty PK, back to setup mode) is signed by PK one second later,
         * because firmware refuses a PK write not newer than the stored
         * one (§1.8). */
        {
                static const struct {
                        const char *file;
                        enum uefi_var var;
                        enum uefi_role signer;
                        int payload; /* role whose ESL, -1: db.esl, -2: empty */
                } auths[] = {
                        { "PK.auth", UEFI_VAR_PK, UEFI_ROLE_PK, UEFI_ROLE_PK },
                        { "KEK.auth", UEFI_VAR_KEK, UEFI_ROLE_PK, UEFI_ROLE_KEK },
                        { "db.auth", UEFI_VAR_DB, UEFI_ROLE_KEK, -1 },
                        { "noPK.auth", UEFI_VAR_PK, UEFI_ROLE_PK, -2 },
                };
                for (size_t i = 0; i < FL_ARRAY_SIZE(auths); i++) {
                        const unsigned char *pl = auths[i].payload >= 0 ? esl[auths[i].payload]
                                                  : auths[i].payload == -1 ? db
                                                                           : NULL;
                        size_t pll = auths[i].payload >= 0 ? esl_len[auths[i].payload]
                                     : auths[i].payload == -1 ? db_len
                                                              : 0;
                        r = uefi_auth_build(ctx, sg[auths[i].signer], cert[auths[i].signer], auths[i].var,
                                            UEFI_ATTRS_REPLACE, auths[i].payload == -2 ? &nopk_time : &o->time, pl,
                                            pll, &a, &a_len);
                        if (r < 0)
                                goto fail;
                        r = stage_write(ctx, &st, auths[i].file, a, a_len);
                        free(a);
                        a = NULL;
                        if (r < 0)
                                goto fail;
                }
        }

        if ((r = fl_interrupted(ctx)) < 0)
                goto fail;
        text = conf_text(&o->owner, res.keys[UEFI_ROLE_DB1].uri, &o->time);
        if (!text) {
                r = -ENOMEM;
                goto fail;
        }
        r = stage_write(ctx, &st, UEFI_CONF_NAME, text, strlen(text));
        free(text);
        text = uefi_dts_default(esl[UEFI_ROLE_PK], esl_len[UEFI_ROLE_PK], esl[UEFI_ROLE_KEK], esl_len[UEFI_ROLE_KEK],
                                db, db_len, NULL, 0);
        if (r < 0 || !text) {
                r = r < 0 ? r : -ENOMEM;
                goto fail;
        }
        r = stage_write(ctx, &st, UEFI_DEFAULT_DTS, text, strlen(text));
        if (r < 0)
                goto fail;
        {
                char *dts = path_join(st.dir, UEFI_DEFAULT_DTS), *dtbo = path_join(st.dir, UEFI_DEFAULT_DTBO);
                r = dts && dtbo ? uefi_dtc(ctx, dts, dtbo) : -ENOMEM;
                free(dts);
                free(dtbo);
                if (r == 0) {
                        res.dtbo = true;
                        r = stage_note(&st, UEFI_DEFAULT_DTBO);
                } else if (r == -ENOENT) {
                        r = 0; /* dtc not installed: the .dts is still there */
                        fl_log(ctx, FL_LOG_WARN, "dtc is not installed: %s was not compiled to %s", UEFI_DEFAULT_DTS,
                               UEFI_DEFAULT_DTBO);
                }
                if (r < 0)
                        goto fail;
        }

        /* The last point of return: after the rename the bundle stands. */
        if ((r = fl_interrupted(ctx)) < 0)
                goto fail;
        if (chmod(st.dir, 0755) < 0 || rename(st.dir, o->out_dir) < 0) {
                r = errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR
                            ? fl_err(ctx, -EEXIST, "%s: appeared while the bundle was made; not replacing it",
                                     o->out_dir)
                            : fl_err(ctx, -EINVAL, "%s: cannot create: %s", o->out_dir, strerror(errno));
                goto fail;
        }
        renamed = true;
        outdir = realpath(o->out_dir, NULL);
        if (!outdir) {
                r = fl_err(ctx, -EIO, "%s: %s", o->out_dir, strerror(errno));
                goto fail;
        }
        res.out_dir = outdir;
        for (size_t i = 0; i < nroles; i++) {
                char name[32];
                snprintf(name, sizeof(name), "%s.crt", role_defs[i].file);
                res.keys[i].cert_path = path_join(outdir, name);
                if (!res.keys[i].cert_path) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (o->ks) {
                r = keyset_record(ctx, o, &res);
                if (r < 0)
                        goto fail;
        }
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
        goto out;
fail:
        if (renamed)
                stage_remove(&st, o->out_dir, !existed);
        else if (st.dir)
                stage_remove(&st, st.dir, true);
        for (size_t i = 0; i < UEFI_ROLE_COUNT; i++)
                if (made[i]) {
                        /* Undo only what this call created. */
                        token_destroy(tok, priv[i]);
                        token_destroy(tok, pub[i]);
                }
out:
        for (size_t i = 0; i < UEFI_ROLE_COUNT; i++) {
                X509_free(cert[i]);
                x509_signer_free(sg[i]);
                free(esl[i]);
        }
        free(db);
        free(a);
        free(text);
        free(tmpl);
        stage_free(&st);
        uefi_keygen_result_free(&res);
        return r;
}

/* ---- signed append updates (§3.3) ----------------------------------------------------------------- */

void uefi_update_result_free(struct uefi_update_result *r)
{
        if (!r)
                return;
        free(r->conf_var);
        memset(r, 0, sizeof(*r));
}

static const char *const update_prefix[] = { [UEFI_VAR_KEK] = "UEFI_UPDATE_PRE_SIGNED_KEK",
                                             [UEFI_VAR_DB] = "UEFI_UPDATE_PRE_SIGNED_DB",
                                             [UEFI_VAR_DBX] = "UEFI_UPDATE_PRE_SIGNED_DBX" };

static int read_in_dir(fl_ctx *ctx, const char *dir, const char *name, unsigned char **ret, size_t *ret_len)
{
        char *p = path_join(dir, name);
        int r;

        if (!p)
                return -ENOMEM;
        r = file_read(ctx, p, BUNDLE_FILE_MAX, ret, ret_len);
        free(p);
        return r;
}

/* Dirname of a path, resolved. */
static char *dir_of(const char *path)
{
        char *copy = strdup(path), *slash, *res;

        if (!copy)
                return NULL;
        slash = strrchr(copy, '/');
        if (!slash)
                res = realpath(".", NULL);
        else {
                if (slash == copy)
                        slash[1] = 0;
                else
                        *slash = 0;
                res = realpath(copy, NULL);
        }
        free(copy);
        return res;
}

static const char *base_of(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* Read a file if it exists (for restoring it on failure). */
static int snapshot(const char *path, unsigned char **ret, size_t *ret_len, bool *ret_exists)
{
        *ret_exists = access(path, F_OK) == 0;
        *ret = NULL;
        *ret_len = 0;
        if (!*ret_exists)
                return 0;
        return file_read(NULL, path, BUNDLE_FILE_MAX, ret, ret_len);
}

/* Put back a file as snapshot() found it. A failure is logged naming the
 * file (the caller's own error stays the context's last error) and
 * returned, so the caller can say the directory is no longer as it was. */
static int restore(fl_ctx *ctx, const char *path, const unsigned char *data, size_t len, bool existed)
{
        char saved[FL_ERRMSG_MAX];
        int r = 0;

        snprintf(saved, sizeof(saved), "%s", ctx ? ctx->errmsg : "");
        if (existed)
                r = file_write_atomic(ctx, path, data, len, 0644);
        else if (unlink(path) < 0 && errno != ENOENT)
                r = -errno;
        if (ctx && r < 0) {
                fl_log(ctx, FL_LOG_ERR, "%s: cannot be restored to its state before this update: %s", path,
                       existed ? ctx->errmsg : strerror(-r));
                snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s", saved);
        }
        return r;
}

int uefi_sign_update(fl_ctx *ctx, x509_signer *signer, X509 *cert, const struct uefi_update_opts *o,
                     struct uefi_update_result *ret)
{
        struct uefi_update_result res = { 0 };
        struct uefi_conf conf = { 0 };
        struct uefi_update_blob blobs[3 * UEFI_MAX_UPDATES];
        unsigned char *esl = NULL, *auth = NULL, *conf_old = NULL, *loaded[3 * UEFI_MAX_UPDATES];
        struct fl_buf payload = { 0 };
        unsigned char *old_dts = NULL, *old_dtbo = NULL, dg[32];
        size_t esl_len = 0, auth_len = 0, conf_len = 0, nblobs = 0, nloaded = 0;
        size_t old_dts_len = 0, old_dtbo_len = 0;
        char *confdir = NULL, *outdir = NULL, *newconf = NULL, *dts = NULL, *dts_path = NULL, *dtbo_path = NULL;
        bool wrote_auth = false, had_dts = false, had_dtbo = false, touched = false, conf_touched = false;
        int r, slot = -1;

        if (o->var != UEFI_VAR_KEK && o->var != UEFI_VAR_DB && o->var != UEFI_VAR_DBX)
                return fl_err(ctx, -EINVAL, "--uefi-var: appends go to KEK, db or dbx (a PK has one entry)");
        if (o->n_certs + o->n_hashes == 0)
                return fl_err(ctx, -EINVAL, "nothing to append: give --append CERT and/or --append-hash SHA256");
        for (size_t i = 0; i < o->n_certs; i++) {
                X509 *c = NULL;
                unsigned char *der = NULL;
                size_t der_len = 0;
                EVP_PKEY *k;

                r = x509_cert_load(ctx, o->certs[i], &c);
                if (r < 0)
                        goto out;
                k = X509_get0_pubkey(c);
                if (!k || !EVP_PKEY_is_a(k, "RSA")) {
                        r = fl_err(ctx, -EINVAL,
                                   "%s: certificate key type %s is not supported: UEFI X.509 signature lists hold "
                                   "RSA keys (edk2 reads them as RSA)",
                                   o->certs[i], k ? EVP_PKEY_get0_type_name(k) : "unknown");
                        X509_free(c);
                        goto out;
                }
                r = x509_cert_der(c, &der, &der_len);
                X509_free(c);
                if (r == 0)
                        r = uefi_esl_x509(ctx, &o->owner, der, der_len, &esl, &esl_len);
                OPENSSL_free(der);
                if (r == 0)
                        r = fl_buf_put(&payload, esl, esl_len);
                free(esl);
                esl = NULL;
                if (r < 0)
                        goto out;
        }
        if (o->n_hashes) {
                r = uefi_esl_sha256(ctx, &o->owner, o->hashes, o->n_hashes, &esl, &esl_len);
                if (r == 0)
                        r = fl_buf_put(&payload, esl, esl_len);
                if (r < 0)
                        goto out;
        }
        r = uefi_auth_build(ctx, signer, cert, o->var, UEFI_ATTRS_APPEND, &o->time, payload.p, payload.len, &auth,
                            &auth_len);
        if (r < 0)
                goto out;

        if (o->conf_path) {
                const char *base = base_of(o->out_path);
                char var[64];

                r = file_read(ctx, o->conf_path, BUNDLE_FILE_MAX, &conf_old, &conf_len);
                if (r < 0)
                        goto out;
                r = uefi_conf_parse(ctx, o->conf_path, (const char *)conf_old, conf_len, &conf);
                if (r < 0)
                        goto out;
                confdir = dir_of(o->conf_path);
                outdir = dir_of(o->out_path);
                if (!confdir || !outdir || strcmp(confdir, outdir)) {
                        r = fl_err(ctx, -EINVAL, "%s: must be in the directory of %s (NVIDIA's tools read every file "
                                                 "from there)",
                                   o->out_path, o->conf_path);
                        goto out;
                }
                if (!plain_file_name(base)) {
                        r = fl_err(ctx, -EINVAL, "%s: '%s' is not a plain file name for uefi_keys.conf", o->out_path,
                                   base);
                        goto out;
                }
                for (size_t i = 0; i < conf.n; i++)
                        if (!strcmp(conf.vars[i].value, base)) {
                                r = fl_err(ctx, -EEXIST, "%s:%u: %s already names %s", o->conf_path,
                                           conf.vars[i].line, conf.vars[i].name, base);
                                goto out;
                        }
                for (int n = 0; n < UEFI_MAX_UPDATES && slot < 0; n++) {
                        const char *v;
                        snprintf(var, sizeof(var), "%s_%d", update_prefix[o->var], n);
                        v = uefi_conf_get(&conf, var);
                        if (!v || !*v)
                                slot = n;
                }
                if (slot < 0) {
                        r = fl_err(ctx, -EINVAL, "%s: all %d %s_n slots are used", o->conf_path, UEFI_MAX_UPDATES,
                                   update_prefix[o->var]);
                        goto out;
                }
                snprintf(var, sizeof(var), "%s_%d", update_prefix[o->var], slot);
                res.conf_var = strdup(var);
                if (!res.conf_var || asprintf(&newconf, "%.*s%s%s=\"%s\";\n", (int)conf_len, (const char *)conf_old,
                                              conf_len && conf_old[conf_len - 1] != '\n' ? "\n" : "", var, base) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                /* Every update payload the conf lists, in NVIDIA's order. */
                for (int v = UEFI_VAR_KEK; v <= UEFI_VAR_DBX; v++)
                        for (int n = 0; n < UEFI_MAX_UPDATES; n++) {
                                const char *val;
                                snprintf(var, sizeof(var), "%s_%d", update_prefix[v], n);
                                if (v == (int)o->var && n == slot) {
                                        blobs[nblobs++] = (struct uefi_update_blob){ o->var, auth, auth_len };
                                        continue;
                                }
                                val = uefi_conf_get(&conf, var);
                                if (!val || !*val)
                                        continue;
                                r = read_in_dir(ctx, confdir, val, &loaded[nloaded], &blobs[nblobs].len);
                                if (r < 0)
                                        goto out;
                                blobs[nblobs].var = (enum uefi_var)v;
                                blobs[nblobs++].data = loaded[nloaded++];
                        }
                dts = uefi_dts_update(blobs, nblobs);
                dts_path = path_join(confdir, UEFI_UPDATE_DTS);
                dtbo_path = path_join(confdir, UEFI_UPDATE_DTBO);
                if (!dts || !dts_path || !dtbo_path) {
                        r = -ENOMEM;
                        goto out;
                }
                if ((r = snapshot(dts_path, &old_dts, &old_dts_len, &had_dts)) < 0 ||
                    (r = snapshot(dtbo_path, &old_dtbo, &old_dtbo_len, &had_dtbo)) < 0)
                        goto out;
        }

        r = file_write_new(ctx, o->out_path, auth, auth_len, 0644);
        if (r < 0)
                goto out;
        wrote_auth = true;
        if (o->conf_path) {
                touched = true;
                r = file_write_atomic(ctx, dts_path, dts, strlen(dts), 0644);
                if (r < 0)
                        goto out;
                r = uefi_dtc(ctx, dts_path, dtbo_path);
                if (r == -ENOENT) {
                        /* No dtc: a stale .dtbo would contradict the .dts. */
                        unlink(dtbo_path);
                        fl_log(ctx, FL_LOG_WARN, "dtc is not installed: %s was not compiled", dts_path);
                        r = 0;
                } else if (r == 0) {
                        res.dtbo = true;
                }
                if (r < 0)
                        goto out;
                conf_touched = true;
                r = file_write_atomic(ctx, o->conf_path, newconf, strlen(newconf), 0644);
                if (r < 0)
                        goto out;
        }
        EVP_Digest(auth, auth_len, dg, NULL, EVP_sha256(), NULL);
        hex_encode(dg, 32, res.auth_sha256);
        res.auth_len = auth_len;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
out:
        if (r < 0) {
                int rr = 0;
                if (wrote_auth && unlink(o->out_path) < 0 && errno != ENOENT) {
                        rr = -errno;
                        fl_log(ctx, FL_LOG_ERR, "%s: cannot be removed after the failure: %s", o->out_path,
                               strerror(errno));
                }
                if (touched) {
                        if (restore(ctx, dts_path, old_dts, old_dts_len, had_dts) < 0)
                                rr = -EIO;
                        if (restore(ctx, dtbo_path, old_dtbo, old_dtbo_len, had_dtbo) < 0)
                                rr = -EIO;
                }
                /* The conf write may fail after its rename (directory sync). */
                if (conf_touched && restore(ctx, o->conf_path, conf_old, conf_len, true) < 0)
                        rr = -EIO;
                /* Not back as it was: the update failed and the directory is
                 * not what it was before (exit 1 whatever the first cause). */
                if (rr < 0 && r != -ENOMEM)
                        r = -EIO;
        }
        for (size_t i = 0; i < nloaded; i++)
                free(loaded[i]);
        uefi_conf_free(&conf);
        uefi_update_result_free(&res);
        fl_buf_free(&payload);
        free(esl);
        free(auth);
        free(conf_old);
        free(old_dts);
        free(old_dtbo);
        free(confdir);
        free(outdir);
        free(newconf);
        free(dts);
        free(dts_path);
        free(dtbo_path);
        return r;
}

/* ---- payload signatures ----------------------------------------------------------------------------- */

void uefi_payload_result_free(struct uefi_payload_result *r)
{
        if (!r)
                return;
        free(r->sig_path);
        free(r->unsigned_path);
        memset(r, 0, sizeof(*r));
}

int uefi_sign_payload(fl_ctx *ctx, x509_signer *signer, X509 *cert, const char *path, enum uefi_payload_mode mode,
                      struct uefi_payload_result *ret)
{
        struct uefi_payload_result res = { 0 };
        unsigned char *data = NULL, *sig = NULL, *out = NULL;
        size_t len = 0, siglen = 0, padded;
        struct stat st;
        bool wrote_unsigned = false;
        int r;

        r = file_read(ctx, path, PAYLOAD_MAX, &data, &len);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0) {
                r = fl_err(ctx, -EINVAL, "%s: %s", path, strerror(errno));
                goto out;
        }
        r = x509_p7_sign_detached(ctx, signer, cert, X509H_SHA256, data, len, 0, &sig, &siglen);
        if (r < 0)
                goto out;
        r = x509_p7_verify(ctx, path, sig, siglen, false, data, len, cert);
        if (r < 0)
                goto out;
        if (mode == UEFI_PAYLOAD_SPLIT) {
                if (asprintf(&res.sig_path, "%s.sig", path) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                r = file_write_atomic(ctx, res.sig_path, sig, siglen, 0644);
                if (r < 0)
                        goto out;
        } else {
                if (asprintf(&res.unsigned_path, "%s.unsigned", path) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                if (access(res.unsigned_path, F_OK) == 0) {
                        r = fl_err(ctx, -EEXIST,
                                   "%s exists: %s looks signed already; to sign again, first restore it "
                                   "(mv %s %s)",
                                   res.unsigned_path, path, res.unsigned_path, path);
                        goto out;
                }
                /* The signature covers the file as it was; the file is then
                 * zero-padded to a 2 KiB boundary and the DER appended, as
                 * NVIDIA's flow (truncate -s %2048; cat sig >>) does. */
                padded = (len + 2047) / 2048 * 2048;
                out = calloc(1, padded + siglen);
                if (!out) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(out, data, len);
                memcpy(out + padded, sig, siglen);
                r = file_write_new(ctx, res.unsigned_path, data, len, st.st_mode & 0777);
                if (r < 0)
                        goto out;
                wrote_unsigned = true;
                r = file_write_atomic(ctx, path, out, padded + siglen, st.st_mode & 0777);
                if (r < 0)
                        goto out;
                res.padded_len = padded;
        }
        res.sig_len = siglen;
        *ret = res;
        memset(&res, 0, sizeof(res));
        r = 0;
out:
        if (r < 0 && wrote_unsigned)
                unlink(res.unsigned_path);
        uefi_payload_result_free(&res);
        free(data);
        free(sig);
        free(out);
        return r;
}

/* ---- checking a bundle ------------------------------------------------------------------------------------ */

static void FL_PRINTF(3, 4) rep_add(char ***arr, size_t *n, const char *fmt, ...)
{
        char *s = NULL, **na;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return;
        na = realloc(*arr, (*n + 1) * sizeof(*na));
        if (!na) {
                free(s);
                return;
        }
        na[(*n)++] = s;
        *arr = na;
}

#define PROBLEM(...) rep_add(&rep->problems, &rep->n_problems, __VA_ARGS__)
#define CHECKED(...) rep_add(&rep->checked, &rep->n_checked, __VA_ARGS__)
#define NOTE(...) rep_add(&rep->notes, &rep->n_notes, __VA_ARGS__)
#define LASTERR() (fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "error")

void uefi_verify_report_free(struct uefi_verify_report *rep)
{
        if (!rep)
                return;
        for (size_t i = 0; i < rep->n_problems; i++)
                free(rep->problems[i]);
        for (size_t i = 0; i < rep->n_checked; i++)
                free(rep->checked[i]);
        for (size_t i = 0; i < rep->n_notes; i++)
                free(rep->notes[i]);
        free(rep->problems);
        free(rep->checked);
        free(rep->notes);
        memset(rep, 0, sizeof(*rep));
}

struct vfile {
        const char *name;
        unsigned char *data;
        size_t len;
        bool ok;
};

static void vload(fl_ctx *ctx, const char *dir, struct vfile *f, bool required, struct uefi_verify_report *rep)
{
        char *p = path_join(dir, f->name);

        if (!p)
                return;
        if (access(p, F_OK) < 0) {
                if (required)
                        PROBLEM("%s: missing", f->name);
        } else if (file_read(ctx, p, BUNDLE_FILE_MAX, &f->data, &f->len) < 0) {
                PROBLEM("%s", LASTERR());
        } else {
                f->ok = true;
        }
        free(p);
}

/* Certificates of the X.509 entries of an ESL. */
static STACK_OF(X509) *esl_certs(const struct uefi_esl_entry *e, size_t n)
{
        STACK_OF(X509) *sk = sk_X509_new_null();

        for (size_t i = 0; sk && i < n; i++) {
                const unsigned char *p = e[i].data;
                X509 *x;
                if (!uefi_guid_eq(&e[i].type, &EFI_CERT_X509_GUID))
                        continue;
                x = d2i_X509(NULL, &p, (long)e[i].len);
                if (x && !sk_X509_push(sk, x))
                        X509_free(x);
        }
        return sk;
}

/* Verify an .auth against any of the certificates; name the one that fits. */
static void check_auth(fl_ctx *ctx, struct uefi_verify_report *rep, const struct vfile *f, enum uefi_var v,
                       uint32_t attrs, STACK_OF(X509) *signers, const char *signer_what,
                       const unsigned char *want, size_t want_len, bool check_payload, struct efi_time *ret_time)
{
        struct uefi_auth a;
        char why[FL_ERRMSG_MAX] = "";

        if (!f->ok)
                return;
        if (uefi_auth_parse(ctx, f->name, f->data, f->len, &a) < 0) {
                PROBLEM("%s", LASTERR());
                return;
        }
        if (ret_time)
                *ret_time = a.time;
        if (check_payload && (a.payload_len != want_len || (want_len && memcmp(a.payload, want, want_len)))) {
                PROBLEM("%s: its payload (%zu bytes) is not the signature list it should carry (%zu bytes)", f->name,
                        a.payload_len, want_len);
                return;
        }
        for (int i = 0; i < sk_X509_num(signers); i++) {
                if (uefi_auth_verify(ctx, f->name, v, attrs, f->data, f->len, sk_X509_value(signers, i)) == 0) {
                        char ts[20];
                        uefi_time_format(&a.time, ts);
                        CHECKED("%s: %s, signed by %s, timestamp %s, %zu-byte payload", f->name, uefi_var_name(v),
                                signer_what, ts, a.payload_len);
                        fl_err_clear(ctx);
                        return;
                }
                snprintf(why, sizeof(why), "%s", LASTERR());
        }
        PROBLEM("%s: signature does not verify with %s%s%s", f->name, signer_what, *why ? ": " : "", why);
}

static void check_dt(fl_ctx *ctx, struct uefi_verify_report *rep, const struct vfile *dts, const struct vfile *dtbo,
                     const char *guid_node, const char *node, const unsigned char *want, size_t want_len)
{
        unsigned char *got = NULL;
        const unsigned char *bp;
        size_t got_len = 0, bl = 0;
        char path[256];
        int r;

        if (dts->ok) {
                r = uefi_dts_get(ctx, dts->name, (const char *)dts->data, dts->len, node, &got, &got_len);
                if (r == -ENOENT)
                        PROBLEM("%s: no node %s", dts->name, node);
                else if (r < 0)
                        PROBLEM("%s", LASTERR());
                else if (got_len != want_len || memcmp(got, want, want_len))
                        PROBLEM("%s: %s holds %zu bytes that differ from the %zu-byte list it should carry", dts->name,
                                node, got_len, want_len);
                else
                        CHECKED("%s: %s carries the expected %zu bytes", dts->name, node, want_len);
                free(got);
        }
        if (dtbo->ok) {
                snprintf(path, sizeof(path), "/fragment@0/__overlay__/firmware/uefi/variables/%s/%s", guid_node, node);
                r = uefi_fdt_get(ctx, dtbo->name, dtbo->data, dtbo->len, path, "data", &bp, &bl);
                if (r == -ENOENT)
                        PROBLEM("%s: no %s/data", dtbo->name, path);
                else if (r < 0)
                        PROBLEM("%s", LASTERR());
                else if (bl != want_len || memcmp(bp, want, want_len))
                        PROBLEM("%s: %s holds %zu bytes that differ from the %zu-byte list it should carry",
                                dtbo->name, node, bl, want_len);
                else
                        CHECKED("%s: %s carries the expected %zu bytes", dtbo->name, node, want_len);
        }
}

/* Concatenation of the files UEFI_DEFAULT_<what>_ESL_0..2 name. */
static int conf_concat(fl_ctx *ctx, const char *dir, const struct uefi_conf *c, const char *what,
                       unsigned char **ret, size_t *ret_len)
{
        struct fl_buf all = { 0 };
        unsigned char *d = NULL;
        size_t dl = 0;
        char var[64];
        int r = 0;

        for (int i = 0; i < 3 && r == 0; i++) {
                const char *v;
                snprintf(var, sizeof(var), "UEFI_DEFAULT_%s_ESL_%d", what, i);
                v = uefi_conf_get(c, var);
                if (!v || !*v)
                        continue;
                r = read_in_dir(ctx, dir, v, &d, &dl);
                if (r == 0)
                        r = fl_buf_put(&all, d, dl);
                free(d);
                d = NULL;
        }
        if (r < 0 || !all.p) {
                fl_buf_free(&all);
                return r < 0 ? r : -ENOENT;
        }
        *ret = all.p;
        *ret_len = all.len;
        return 0;
}

int uefi_verify_bundle(fl_ctx *ctx, const char *dir, struct uefi_verify_report *rep)
{
        static const char *const gguid = "gEfiGlobalVariableGuid", *const nguid = "gNVIDIAPublicVariableGuid";
        struct vfile pk = { .name = "PK.esl" }, kek = { .name = "KEK.esl" }, db = { .name = "db.esl" }, pka = { .name = "PK.auth" },
                     keka = { .name = "KEK.auth" }, dba = { .name = "db.auth" }, nopk = { .name = "noPK.auth" }, conff = { .name = UEFI_CONF_NAME },
                     dts = { .name = UEFI_DEFAULT_DTS }, dtbo = { .name = UEFI_DEFAULT_DTBO }, udts = { .name = UEFI_UPDATE_DTS },
                     udtbo = { .name = UEFI_UPDATE_DTBO };
        struct vfile *all[] = { &pk, &kek, &db, &pka, &keka, &dba, &nopk, &conff, &dts, &dtbo, &udts, &udtbo };
        struct uefi_esl_entry *pke = NULL, *keke = NULL, *dbe = NULL;
        size_t npk = 0, nkek = 0, ndb = 0;
        STACK_OF(X509) *pkc = NULL, *kekc = NULL, *pk_or_kek = NULL;
        struct uefi_conf conf = { 0 };
        bool conf_ok = false;
        struct efi_time t_pk = { 0 }, t_nopk = { 0 };
        struct stat st;
        int r = 0;

        memset(rep, 0, sizeof(*rep));
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return fl_err(ctx, -ENOENT, "%s: not a directory", dir);
        /* A directory with none of the bundle's files is not a bundle at
         * all (bad input, exit 2), not a bundle failing its checks (5). */
        {
                bool any = false;
                for (size_t i = 0; i < FL_ARRAY_SIZE(all) && !any; i++) {
                        char *p = path_join(dir, all[i]->name);
                        if (!p)
                                return -ENOMEM;
                        any = access(p, F_OK) == 0;
                        free(p);
                }
                if (!any)
                        return fl_err(ctx, -EINVAL, "%s: not a UEFI key bundle (none of PK.esl, KEK.esl, db.esl, "
                                      "PK.auth, " UEFI_CONF_NAME " is there)", dir);
        }

        for (size_t i = 0; i < FL_ARRAY_SIZE(all); i++)
                vload(ctx, dir, all[i], all[i] != &dtbo && all[i] != &udts && all[i] != &udtbo, rep);

        /* Signature lists. */
        if (pk.ok) {
                if (uefi_esl_parse(ctx, pk.name, pk.data, pk.len, &pke, &npk) < 0)
                        PROBLEM("%s", LASTERR());
                else if (npk != 1 || !uefi_guid_eq(&pke[0].type, &EFI_CERT_X509_GUID))
                        PROBLEM("%s: a PK holds exactly one X.509 certificate, this holds %zu entries", pk.name, npk);
                else {
                        char g[37];
                        uefi_guid_format(&pke[0].owner, g);
                        CHECKED("%s: 1 X.509 certificate, owner %s", pk.name, g);
                        pkc = esl_certs(pke, npk);
                }
        }
        if (kek.ok) {
                if (uefi_esl_parse(ctx, kek.name, kek.data, kek.len, &keke, &nkek) < 0)
                        PROBLEM("%s", LASTERR());
                else if (nkek == 0)
                        PROBLEM("%s: empty", kek.name);
                else {
                        kekc = esl_certs(keke, nkek);
                        CHECKED("%s: %zu entries, %d X.509 certificate(s)", kek.name, nkek, sk_X509_num(kekc));
                }
        }
        if (db.ok) {
                if (uefi_esl_parse(ctx, db.name, db.data, db.len, &dbe, &ndb) < 0)
                        PROBLEM("%s", LASTERR());
                else if (ndb == 0)
                        PROBLEM("%s: empty", db.name);
                else
                        CHECKED("%s: %zu entries", db.name, ndb);
        }
        if (!pkc)
                pkc = sk_X509_new_null();
        if (!kekc)
                kekc = sk_X509_new_null();
        pk_or_kek = sk_X509_dup(kekc);
        if (!pkc || !kekc || !pk_or_kek) {
                r = -ENOMEM;
                goto out;
        }
        for (int i = 0; i < sk_X509_num(pkc); i++)
                sk_X509_push(pk_or_kek, sk_X509_value(pkc, i));

        /* Authenticated variables: PK and KEK by PK, db by KEK (§3.5). */
        if (pka.ok && !sk_X509_num(pkc))
                PROBLEM("PK.auth: cannot be checked without a valid PK.esl");
        check_auth(ctx, rep, &pka, UEFI_VAR_PK, UEFI_ATTRS_REPLACE, pkc, "the PK", pk.data, pk.len, pk.ok, &t_pk);
        check_auth(ctx, rep, &keka, UEFI_VAR_KEK, UEFI_ATTRS_REPLACE, pkc, "the PK", kek.data, kek.len, kek.ok, NULL);
        check_auth(ctx, rep, &dba, UEFI_VAR_DB, UEFI_ATTRS_REPLACE, kekc, "a KEK", db.data, db.len, db.ok, NULL);
        check_auth(ctx, rep, &nopk, UEFI_VAR_PK, UEFI_ATTRS_REPLACE, pkc, "the PK", NULL, 0, true, &t_nopk);
        if (pka.ok && nopk.ok && t_pk.year && t_nopk.year) {
                /* EFI_TIME compares field by field from the year down. */
                struct efi_time x = t_pk, y = t_nopk;
                unsigned long long ka = (unsigned long long)x.year << 40 | (unsigned long long)x.month << 32 |
                                        (unsigned long long)x.day << 24 | (unsigned long long)x.hour << 16 |
                                        (unsigned long long)x.minute << 8 | x.second;
                unsigned long long kb = (unsigned long long)y.year << 40 | (unsigned long long)y.month << 32 |
                                        (unsigned long long)y.day << 24 | (unsigned long long)y.hour << 16 |
                                        (unsigned long long)y.minute << 8 | y.second;
                if (kb <= ka)
                        PROBLEM("noPK.auth: timestamp is not later than PK.auth's; firmware refuses it as a replay "
                                "once PK.auth is enrolled");
        }

        /* The conf: plain names of files in this directory. */
        if (conff.ok) {
                if (uefi_conf_parse(ctx, conff.name, (const char *)conff.data, conff.len, &conf) < 0)
                        PROBLEM("%s", LASTERR());
                else {
                        size_t bad = 0;
                        conf_ok = true;
                        for (size_t i = 0; i < conf.n; i++) {
                                char *p;
                                if (!*conf.vars[i].value)
                                        continue;
                                p = path_join(dir, conf.vars[i].value);
                                if (p && (stat(p, &st) < 0 || !S_ISREG(st.st_mode))) {
                                        PROBLEM("%s:%u: %s names %s, which is not a file in %s", conff.name,
                                                conf.vars[i].line, conf.vars[i].name, conf.vars[i].value, dir);
                                        bad++;
                                }
                                free(p);
                        }
                        if (!uefi_conf_get(&conf, "UEFI_DEFAULT_PK_ESL") ||
                            !uefi_conf_get(&conf, "UEFI_DEFAULT_KEK_ESL_0") ||
                            !uefi_conf_get(&conf, "UEFI_DEFAULT_DB_ESL_0")) {
                                PROBLEM("%s: needs UEFI_DEFAULT_PK_ESL, UEFI_DEFAULT_KEK_ESL_0 and UEFI_DEFAULT_DB_ESL_0",
                                        conff.name);
                                bad++;
                        }
                        if (!bad)
                                CHECKED("%s: %zu assignments, every file present", conff.name, conf.n);
                }
        }

        /* The overlays carry what the conf names (that is what NVIDIA's
         * script would put there). */
        if (!dtbo.ok)
                NOTE("%s: absent (dtc was not installed?); flash.sh needs it: dtc -I dts -O dtb -o %s %s",
                     UEFI_DEFAULT_DTBO, UEFI_DEFAULT_DTBO, UEFI_DEFAULT_DTS);
        if (conf_ok) {
                static const struct {
                        const char *what, *node;
                } defs[] = { { "PK", "PKDefault" }, { "KEK", "KEKDefault" }, { "DB", "dbDefault" },
                             { "DBX", "dbxDefault" } };
                for (size_t i = 0; i < FL_ARRAY_SIZE(defs); i++) {
                        unsigned char *want = NULL;
                        size_t wl = 0;
                        int k;
                        if (i == 0) {
                                const char *v = uefi_conf_get(&conf, "UEFI_DEFAULT_PK_ESL");
                                k = v && *v ? read_in_dir(ctx, dir, v, &want, &wl) : -ENOENT;
                        } else {
                                k = conf_concat(ctx, dir, &conf, defs[i].what, &want, &wl);
                        }
                        if (k == 0)
                                check_dt(ctx, rep, &dts, &dtbo, gguid, defs[i].node, want, wl);
                        free(want);
                }
                if (dtbo.ok) {
                        const unsigned char *bp;
                        size_t bl;
                        if (uefi_fdt_get(ctx, dtbo.name, dtbo.data, dtbo.len,
                                         "/fragment@0/__overlay__/firmware/uefi/variables/gNVIDIAPublicVariableGuid/"
                                         "EnrollDefaultSecurityKeys",
                                         "data", &bp, &bl) != 0 ||
                            bl != 1 || bp[0] != 1)
                                PROBLEM("%s: EnrollDefaultSecurityKeys is not [01]", dtbo.name);
                }

                /* Signed updates: KEK by PK, db/dbx by a KEK (or the PK). */
                unsigned nupd[4] = { 0 };
                size_t total = 0;
                for (int v = UEFI_VAR_KEK; v <= UEFI_VAR_DBX; v++)
                        for (int n = 0; n < UEFI_MAX_UPDATES; n++) {
                                static const char *const base[] = { [UEFI_VAR_KEK] = "kekSigned",
                                                                    [UEFI_VAR_DB] = "dbSigned",
                                                                    [UEFI_VAR_DBX] = "dbxSigned" };
                                char var[64], node[32];
                                const char *val;
                                struct vfile u = { .name = NULL };
                                snprintf(var, sizeof(var), "%s_%d", update_prefix[v], n);
                                val = uefi_conf_get(&conf, var);
                                if (!val || !*val)
                                        continue;
                                total++;
                                u.name = val;
                                vload(ctx, dir, &u, true, rep);
                                if (!u.ok)
                                        continue;
                                check_auth(ctx, rep, &u, (enum uefi_var)v, UEFI_ATTRS_APPEND,
                                           v == UEFI_VAR_KEK ? pkc : pk_or_kek, v == UEFI_VAR_KEK ? "the PK"
                                                                                                  : "a KEK or the PK",
                                           NULL, 0, false, NULL);
                                snprintf(node, sizeof(node), "%s_%u", base[v], nupd[v]++);
                                if (!udts.ok)
                                        PROBLEM("%s is listed but %s is missing", val, UEFI_UPDATE_DTS);
                                else
                                        check_dt(ctx, rep, &udts, &udtbo, nguid, node, u.data, u.len);
                                free(u.data);
                        }
                if (total && !udtbo.ok)
                        NOTE("%s: absent; compile %s with dtc for flash.sh", UEFI_UPDATE_DTBO, UEFI_UPDATE_DTS);
        }
        fl_err_clear(ctx);
        r = 0;
out:
        for (size_t i = 0; i < FL_ARRAY_SIZE(all); i++)
                free(all[i]->data);
        free(pke);
        free(keke);
        free(dbe);
        sk_X509_free(pk_or_kek);
        sk_X509_pop_free(pkc, X509_free);
        sk_X509_pop_free(kekc, X509_free);
        uefi_conf_free(&conf);
        return r;
}
