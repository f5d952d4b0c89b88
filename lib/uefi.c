/* uefi.c — UEFI Secure Boot byte formats: GUIDs, EFI_TIME, variables,
 * signature lists and authenticated variables (.auth). The rest of the UEFI
 * module is split by concern (uefi_int.h lists the files). Layouts and sources:
 * shared/reference/uefi-secure-boot.md (section numbers below refer to it). */
#include "uefi_int.h"

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
