/* ledger_parse.c — the ECIDs and times the ledger accepts from outside
 * (normalised to one spelling each). */
#include "ledger_int.h"

/* ---- ECID and time ------------------------------------------------------ */

int ledger_ecid_parse(fl_ctx *ctx, const char *in, char out[LEDGER_ECID_LEN + 1])
{
        const char *p = in;
        char buf[LEDGER_ECID_LEN + 1];
        size_t n;

        if (!in || !*in)
                return fl_err(ctx, -EINVAL, "ECID is empty");
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
                p += 2;
        n = strlen(p);
        for (size_t i = 0; i < n; i++) {
                char c = p[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                        return fl_err(ctx, -EINVAL, "ECID '%.80s' is not hex (character %zu)", in,
                                      (size_t)(p - in) + i + 1);
        }
        /* T194/T234 `tegrarcm_v2 --uid` prints BR_CID as 32 hex digits
         * (jetson-fuses.md §8, verified in logs). */
        if (n != LEDGER_ECID_LEN)
                return fl_err(ctx, -EINVAL, "ECID '%.80s' has %zu hex digits; a T194/T234 ECID has %d", in, n,
                              LEDGER_ECID_LEN);
        for (size_t i = 0; i < n; i++)
                buf[i] = (p[i] >= 'A' && p[i] <= 'F') ? (char)(p[i] - 'A' + 'a') : p[i];
        buf[n] = 0;
        memcpy(out, buf, sizeof(buf));
        return 0;
}

#define TIME_MAX ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */

static bool parse_iso(const char *p, int64_t *ret)
{
        int y, mo, d, h = 0, mi = 0, s = 0, oh = 0, om = 0, sign = 0;
        struct tm tm = { 0 };
        int64_t t;

        if (!parse_digits(&p, 4, &y) || *p++ != '-' || !parse_digits(&p, 2, &mo) || *p++ != '-' || !parse_digits(&p, 2, &d))
                return false;
        if (*p == 'T' || *p == 't' || *p == ' ') {
                p++;
                if (!parse_digits(&p, 2, &h) || *p++ != ':' || !parse_digits(&p, 2, &mi))
                        return false;
                if (*p == ':') {
                        p++;
                        if (!parse_digits(&p, 2, &s))
                                return false;
                        if (*p == '.') {
                                p++;
                                if (*p < '0' || *p > '9')
                                        return false;
                                for (int i = 0; *p >= '0' && *p <= '9'; p++, i++)
                                        if (i >= 9)
                                                return false;
                        }
                }
                if (*p == 'Z' || *p == 'z') {
                        p++;
                } else if (*p == '+' || *p == '-') {
                        sign = *p++ == '+' ? 1 : -1;
                        if (!parse_digits(&p, 2, &oh))
                                return false;
                        if (*p == ':')
                                p++;
                        if (*p && !parse_digits(&p, 2, &om))
                                return false;
                }
        }
        if (*p)
                return false;
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 ||
            oh > 23 || om > 59)
                return false;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = s;
        t = (int64_t)timegm(&tm) - (int64_t)sign * (oh * 3600 + om * 60);
        *ret = t;
        return true;
}

int ledger_time_parse(fl_ctx *ctx, const char *in, time_t now, char out[LEDGER_TIME_LEN])
{
        const char *p = in;
        int64_t t = -1;
        char buf[LEDGER_TIME_LEN];
        size_t n;
        bool ok = false;

        if (!in || !*in)
                return fl_err(ctx, -EINVAL, "time is empty");
        n = strlen(in);
        if (n > 64)
                goto bad;
        if (*p == '@') {
                p++;
                if (*p && strspn(p, "0123456789") == strlen(p) && strlen(p) <= 12) {
                        t = strtoll(p, NULL, 10);
                        ok = true;
                }
        } else if (n >= 2 && strspn(in, "0123456789") == n - 1 && n - 1 <= 10 && strchr("smhdw", in[n - 1])) {
                static const int64_t units[] = { 1, 60, 3600, 86400, 604800 };
                int64_t v = strtoll(in, NULL, 10);
                t = (int64_t)now - v * units[strchr("smhdw", in[n - 1]) - "smhdw"];
                ok = true;
        } else {
                ok = parse_iso(in, &t);
        }
        if (!ok)
                goto bad;
        if (t < 0 || t > TIME_MAX)
                return fl_err(ctx, -EINVAL, "time '%.64s' is outside 1970..9999", in);
        if (!time_format_utc(t, buf, sizeof(buf)))
                goto bad;
        memcpy(out, buf, sizeof(buf));
        return 0;
bad:
        return fl_err(ctx, -EINVAL,
                      "time '%.64s' is not understood (expected e.g. 2024-05-01, 2024-05-01T12:00:00Z, "
                      "2024-05-01T14:00+02:00, @1714566645, 24h or 7d)",
                      in);
}

/* Exactly "YYYY-MM-DDTHH:MM:SSZ", a real date. */
bool time_is_canonical(const char *s)
{
        int64_t t;

        return s && strlen(s) == LEDGER_TIME_LEN - 1 && s[10] == 'T' && s[19] == 'Z' && parse_iso(s, &t);
}
