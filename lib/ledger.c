/* ledger.c — the ledger's small shared pieces: the default path, names of
 * kinds, states and faults, waiting, and the text checks every stored
 * field passes. The ledger is split by concern (ledger_int.h lists the
 * files); the canonical event bytes are described in ledger_canon.c. */
#include "ledger_int.h"

/* ---- small helpers ------------------------------------------------------ */

/* The caller's defaults (ledger_defaults_set): the library reads no
 * environment. */
static const char *default_db_path;
const char *ledger_default_station, *ledger_default_operator;

void ledger_defaults_set(const char *db_path, const char *station, const char *operator)
{
        default_db_path = db_path;
        ledger_default_station = station;
        ledger_default_operator = operator;
}

const char *ledger_path(const char *opt)
{
        const char *e = default_db_path;

        if (opt && *opt)
                return opt;
        if (e && *e)
                return e;
        return LEDGER_DEFAULT_PATH;
}

int ledger_open(fl_ctx *ctx, const char *location, enum ledger_mode mode, struct ledger **ret)
{
        const char *spool = ledger_spool_default();

        /* A station with a spool: writers may get the spool instead
         * (ledger_sync.c); readers always read the location named. */
        if (mode == LEDGER_WRITE && spool && strcmp(ledger_path(location), spool))
                return ledger_open_spooled(ctx, ledger_path(location), spool, ret);
        return ledger_open_direct(ctx, location, mode, ret);
}

int ledger_open_direct(fl_ctx *ctx, const char *location, enum ledger_mode mode, struct ledger **ret)
{
        const struct ldb_ops *ops;
        struct ledger *l;
        int r;

        if (!ret)
                return -EINVAL;
        location = ledger_path(location);
        ops = ldb_ops_for(location);
        if (!ops)
                return fl_err(ctx, -EINVAL, "ledger URI: PostgreSQL support is not built in");
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->ctx = ctx;
        l->mode = mode;
        l->busy_ms = 60000;
        l->ops = ops;
        /* A URI may carry a password: its backend sets the name without it. */
        if (!ldb_is_uri(location)) {
                l->name = strdup(location);
                if (!l->name) {
                        free(l);
                        return -ENOMEM;
                }
        }
        r = ops->open(l, location);
        if (r < 0) {
                ledger_close(l);
                return r;
        }
        *ret = l;
        return 0;
}

void ledger_close(struct ledger *l)
{
        if (!l)
                return;
        if (l->ops)
                l->ops->close(l);
        free(l->name);
        free(l->spool_for);
        free(l);
}

int ledger_schema_version(const struct ledger *l)
{
        return l->version;
}

void ledger_set_busy_timeout(struct ledger *l, unsigned ms)
{
        l->busy_ms = ms;
}

static const char *const kind_names[] = { "record", "intent", "result" };
static const char *const state_names[] = { NULL, "blank", "planned", "fused-test", "fused", "enrolled", "failed" };

const char *ledger_kind_name(enum ledger_kind k)
{
        return (unsigned)k < FL_ARRAY_SIZE(kind_names) ? kind_names[k] : "unknown";
}

const char *ledger_state_name(enum ledger_state s)
{
        return (unsigned)s < FL_ARRAY_SIZE(state_names) ? state_names[s] : NULL;
}

enum ledger_state ledger_state_from_name(const char *s)
{
        for (size_t i = 1; s && i < FL_ARRAY_SIZE(state_names); i++)
                if (!strcmp(s, state_names[i]))
                        return (enum ledger_state)i;
        return LEDGER_STATE_KEEP;
}

static const char *const fault_names[] = {
        "none", "edited", "deleted", "reordered", "broken-link", "truncated", "malformed", "state", "schema",
        "checkpoint",
};

const char *ledger_fault_name(enum ledger_fault f)
{
        return (unsigned)f < FL_ARRAY_SIZE(fault_names) ? fault_names[f] : "unknown";
}

void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

uint64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A column as a malloc'd string (NULL for SQL NULL). */
int col_dup(struct ldb_stmt *st, int i, char **ret)
{
        const char *t = ldb_col_text(st, i);

        if (!t) {
                *ret = NULL;
                return ldb_col_type(st, i) == LDB_NULL ? 0 : -ENOMEM;
        }
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

int db_fail(struct ledger *l, int r, const char *what)
{
        const char *m = fl_ctx_last_error(l->ctx);
        size_t n = l->name ? strlen(l->name) : 0;

        /* The backend said "ledger NAME: why"; say what was being done. */
        if (r < 0 && r != -ENOMEM && m && n && !strncmp(m, "ledger ", 7) && !strncmp(m + 7, l->name, n) &&
            !strncmp(m + 7 + n, ": ", 2) && strncmp(m + 9 + n, what, strlen(what)))
                return fl_err(l->ctx, r, "ledger %s: %s: %s", l->name, what, m + 9 + n);
        return r;
}

const unsigned char *col_hash(struct ldb_stmt *st, int i)
{
        size_t n = 0;
        const void *p = ldb_col_blob(st, i, &n);

        return p && n == LEDGER_HASH_LEN ? p : NULL;
}

int prepare_events(struct ledger *l, const char *tail, struct ldb_stmt **ret)
{
        char *sql = NULL;
        int r;

        if (asprintf(&sql, "SELECT %s FROM events %s", l->ops->query[LDBQ_EVENT_COLS], tail) < 0)
                return -ENOMEM;
        r = ldb_prepare(l, sql, ret);
        free(sql);
        return r;
}

/* Valid UTF-8 without control characters, 1..max bytes. Returns a reason
 * or NULL. */
static const char *text_problem(const char *s, size_t max)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s);

        if (n == 0)
                return "is empty";
        if (n > max)
                return "is too long";
        while (*p) {
                unsigned c = *p;
                int extra;
                uint32_t cp;

                if (c < 0x20 || c == 0x7f)
                        return "holds a control character";
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        extra = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        extra = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        extra = 3;
                        cp = c & 0x07;
                } else {
                        return "is not valid UTF-8";
                }
                p++;
                for (int i = 0; i < extra; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return "is not valid UTF-8";
                        cp = cp << 6 | (*p & 0x3f);
                }
                if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return "is not valid UTF-8";
                if (cp >= 0x80 && cp < 0xa0)
                        return "holds a control character";
        }
        return NULL;
}

int check_text(fl_ctx *ctx, const char *field, const char *s, size_t max)
{
        const char *why;

        if (!s)
                return fl_err(ctx, -EINVAL, "ledger event: %s is missing", field);
        why = text_problem(s, max);
        if (why)
                return fl_err(ctx, -EINVAL, "ledger event: %s '%.64s' %s (at most %zu bytes of printable UTF-8)",
                              field, s, why, max);
        return 0;
}
