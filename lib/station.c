/* station.c — the station's settings file and its loop (station.h). The
 * burn, the fuse read-back, the enrolment and the ledger are the library's
 * own functions; this file only sequences them per board, turns their
 * verdicts into operator words, and keeps the line stopped (never the
 * board lost) while a line condition lasts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bsp.h"
#include "burn.h"
#include "ekb.h"
#include "ftpm.h"
#include "fuse_plan.h"
#include "fuse_xml.h"
#include "identity.h"
#include "keyset.h"
#include "ledger.h"
#include "proc.h"
#include "station.h"

/* ---- settings ------------------------------------------------------------------ */

enum kind { K_PATH, K_TEXT, K_PORTS, K_MODE, K_CONFIRM, K_ENROLL, K_CURVE, K_BOOL, K_UINT, K_HEX16, K_ACCEPT };

struct key_def {
        const char *name;
        enum kind kind;
        bool required;
        size_t off;     /* of the char * / value in struct station_conf */
        unsigned max;   /* K_UINT */
};

#define OFF(f) offsetof(struct station_conf, f)

static const struct key_def keys[] = {
        { "template", K_PATH, true, OFF(template_path), 0 },
        { "keyset", K_PATH, true, OFF(keyset), 0 },
        { "package", K_PATH, true, OFF(package), 0 },
        { "plan", K_PATH, true, OFF(plan), 0 },
        { "ports", K_PORTS, true, OFF(ports), 0 },
        { "station", K_TEXT, true, OFF(station_id), 0 },
        { "operator", K_TEXT, false, OFF(operator_id), 0 },
        { "ledger", K_PATH, true, OFF(ledger), 0 },
        { "spool", K_PATH, false, OFF(spool), 0 },
        { "log-dir", K_PATH, true, OFF(log_dir), 0 },
        { "log-keep-days", K_UINT, false, OFF(log_keep_days), 3650 },
        { "log-keep-mb", K_UINT, false, OFF(log_keep_mb), 1048576 },
        { "min-free-mb", K_UINT, false, OFF(min_free_mb), 1048576 },
        { "mode", K_MODE, true, OFF(mode), 0 },
        { "confirm", K_CONFIRM, false, OFF(confirm), 0 },
        { "allow-lab-keys", K_BOOL, false, OFF(allow_lab_keys), 0 },
        { "enroll", K_ENROLL, true, OFF(enroll), 0 },
        { "enroll-key", K_CURVE, false, OFF(enroll_key), 0 },
        { "csr-dir", K_PATH, false, OFF(csr_dir), 0 },
        { "cert-dir", K_PATH, true, OFF(cert_dir), 0 },
        { "product", K_TEXT, false, OFF(product), 0 },
        { "serial-prefix", K_TEXT, false, OFF(serial_prefix), 0 },
        { "bsp", K_PATH, false, OFF(bsp), 0 },
        { "hook", K_PATH, false, OFF(hook), 0 },
        { "hook-timeout", K_UINT, false, OFF(hook_timeout_s), 3600 },
        { "timeout", K_UINT, false, OFF(timeout_s), 86400 },
        { "accept-unverified", K_ACCEPT, false, OFF(accept_unverified), 0 },
        { "ftpm", K_BOOL, false, OFF(ftpm), 0 },
        { "ftpm-oem-id", K_HEX16, false, OFF(ftpm_oem_id), 0 },
        { "ftpm-ekb-format", K_TEXT, false, OFF(ftpm_ekb_format), 0 },
        { "ftpm-ekb-fv", K_TEXT, false, OFF(ftpm_ekb_fv), 0 },
        { "ftpm-ekb-root", K_TEXT, false, OFF(ftpm_ekb_root), 0 },
};

void station_conf_clear(struct station_conf *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++)
                if (keys[i].kind == K_PATH || keys[i].kind == K_TEXT)
                        free(*(char **)((char *)c + keys[i].off));
        rcm_ports_clear(&c->ports);
        memset(c, 0, sizeof(*c));
}

static bool text_ok(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* One value into c; -EINVAL with the message set (naming file:line:key). */
static int set_value(fl_ctx *ctx, const char *name, unsigned lno, const struct key_def *k, const char *v,
                     struct station_conf *c)
{
        void *p = (char *)c + k->off;
        int r;

        switch (k->kind) {
        case K_PATH:
        case K_TEXT:
                if (k->kind == K_TEXT && strlen(v) > 64)
                        return fl_err(ctx, -EINVAL, "%s:%u: key '%s': longer than 64 characters", name, lno, k->name);
                /* The serial is the prefix and 16 ECID digits, and at most
                 * IDENTITY_NAME_MAX characters. */
                if (!strcmp(k->name, "serial-prefix") && strlen(v) > IDENTITY_NAME_MAX - 16)
                        return fl_err(ctx, -EINVAL, "%s:%u: key 'serial-prefix': longer than %d characters", name,
                                      lno, IDENTITY_NAME_MAX - 16);
                if (k->kind == K_TEXT && !strcmp(k->name, "station") && strspn(v, "abcdefghijklmnopqrstuvwxyz"
                                                                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                                 "0123456789-_.") != strlen(v))
                        return fl_err(ctx, -EINVAL, "%s:%u: key 'station': '%s': use letters, digits, '-', '_', '.'",
                                      name, lno, v);
                if (!(*(char **)p = strdup(v)))
                        return -ENOMEM;
                return 0;
        case K_PORTS:
                r = rcm_ports_parse(ctx, v, &c->ports);
                if (r < 0)
                        return fl_err(ctx, -EINVAL, "%s:%u: key 'ports': %s", name, lno, fl_ctx_last_error(ctx));
                return 0;
        case K_MODE:
                if (!strcmp(v, "dry-run"))
                        c->mode = STATION_DRY_RUN;
                else if (!strcmp(v, "commit"))
                        c->mode = STATION_COMMIT;
                else
                        goto bad_word;
                return 0;
        case K_CONFIRM:
                if (!strcmp(v, "typed"))
                        c->confirm = STATION_CONFIRM_TYPED;
                else if (!strcmp(v, "yes"))
                        c->confirm = STATION_CONFIRM_YES;
                else
                        goto bad_word;
                return 0;
        case K_ENROLL:
                if (!strcmp(v, "csr"))
                        c->enroll = STATION_ENROLL_CSR;
                else if (!strcmp(v, "token-key"))
                        c->enroll = STATION_ENROLL_TOKEN_KEY;
                else
                        goto bad_word;
                return 0;
        case K_CURVE:
                if (!strcmp(v, "p256"))
                        c->enroll_key = KT_P256;
                else if (!strcmp(v, "p384"))
                        c->enroll_key = KT_P384;
                else
                        goto bad_word;
                return 0;
        case K_BOOL:
                if (!strcmp(v, "yes"))
                        *(bool *)p = true;
                else if (!strcmp(v, "no"))
                        *(bool *)p = false;
                else
                        goto bad_word;
                return 0;
        case K_ACCEPT:
                if (fuse_accept_parse(ctx, v, (uint32_t *)p) < 0)
                        return fl_err(ctx, -EINVAL, "%s:%u: key '%s': '%s' is not an acknowledgement fuseline knows "
                                      "(the only one is %s)", name, lno, k->name, v, FUSE_ACCEPT_T234_BSI_11_13_NAME);
                return 0;
        case K_HEX16: {
                size_t len = strlen(v);
                if (len < 3 || len > 6 || v[0] != '0' || v[1] != 'x' || strspn(v + 2, "0123456789abcdefABCDEF") !=
                                                                               len - 2)
                        return fl_err(ctx, -EINVAL, "%s:%u: key '%s': '%s' is not 0x followed by 1 to 4 hex digits",
                                      name, lno, k->name, v);
                *(unsigned *)p = (unsigned)strtoul(v + 2, NULL, 16);
                return 0;
        }
        case K_UINT: {
                unsigned long long n = 0;
                size_t len = strlen(v);
                if (len > 10 || strspn(v, "0123456789") != len || (len > 1 && v[0] == '0'))
                        goto bad_num;
                n = strtoull(v, NULL, 10);
                if (n > k->max)
                        goto bad_num;
                *(unsigned *)p = (unsigned)n;
                return 0;
        bad_num:
                return fl_err(ctx, -EINVAL, "%s:%u: key '%s': '%s' is not a whole number 0..%u", name, lno, k->name,
                              v, k->max);
        }
        }
bad_word:
        {
                static const char *const words[] = {
                        [K_MODE] = "dry-run or commit", [K_CONFIRM] = "typed or yes",
                        [K_ENROLL] = "csr or token-key", [K_CURVE] = "p256 or p384", [K_BOOL] = "yes or no",
                };
                return fl_err(ctx, -EINVAL, "%s:%u: key '%s': '%s' is not %s", name, lno, k->name, v,
                              words[k->kind]);
        }
}

static bool key_seen(const bool *seen, const char *key)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++)
                if (!strcmp(keys[i].name, key))
                        return seen[i];
        return false;
}

/* The fTPM settings go together, and ftpm = yes is refused at start, before
 * any token, ledger or board is touched, unless the settings say the
 * unverified BootSecurityInfo bits 11 and 13 are accepted [U]. */
static int ftpm_conf_check(fl_ctx *ctx, const char *name, const struct station_conf *c, const bool *seen)
{
        static const char *const deps[] = { "ftpm-oem-id", "ftpm-ekb-format", "ftpm-ekb-fv", "ftpm-ekb-root" };

        if (!c->ftpm) {
                for (size_t i = 0; i < FL_ARRAY_SIZE(deps); i++)
                        if (key_seen(seen, deps[i]))
                                return fl_err(ctx, -EINVAL, "%s: key '%s' only goes with ftpm = yes", name, deps[i]);
                return 0;
        }
        if (!(c->accept_unverified & FUSE_ACCEPT_T234_BSI_11_13))
                return fl_err(ctx, -EPERM, "%s: ftpm = yes needs 'accept-unverified = %s': the fTPM needs "
                              "BootSecurityInfo bits 11 and 13, whose meaning is unverified [U] and whose burn is "
                              "irreversible", name, FUSE_ACCEPT_T234_BSI_11_13_NAME);
        if (c->mode != STATION_COMMIT)
                return fl_err(ctx, -EINVAL, "%s: ftpm = yes needs mode = commit (a dry run would make a KDK0 in the "
                              "token for every board and burn none)", name);
        if (!key_seen(seen, "ftpm-oem-id"))
                return fl_err(ctx, -EINVAL, "%s: ftpm = yes needs key 'ftpm-oem-id' (0xNNNN: the OdmInfo fuse, the "
                              "first two bytes of every fTPM serial number)", name);
        if (!c->ftpm_ekb_format || (strcmp(c->ftpm_ekb_format, "1.0") && strcmp(c->ftpm_ekb_format, "2.0")))
                return fl_err(ctx, -EINVAL, "%s: ftpm = yes needs key 'ftpm-ekb-format' = 1.0 or 2.0 (the EKB "
                              "container of the product's L4T release)", name);
        if (!strcmp(c->ftpm_ekb_format, "1.0") && !c->ftpm_ekb_fv)
                return fl_err(ctx, -EINVAL, "%s: ftpm-ekb-format = 1.0 needs key 'ftpm-ekb-fv' (the FV compiled into "
                              "the product's OP-TEE, 32 hex digits)", name);
        if (!strcmp(c->ftpm_ekb_format, "2.0") && c->ftpm_ekb_fv)
                return fl_err(ctx, -EINVAL, "%s: key 'ftpm-ekb-fv' only goes with ftpm-ekb-format = 1.0 (a 2.0 "
                              "image carries its own random FV)", name);
        if (c->ftpm_ekb_fv && (strlen(c->ftpm_ekb_fv) != 32 ||
                               strspn(c->ftpm_ekb_fv, "0123456789abcdefABCDEF") != 32))
                return fl_err(ctx, -EINVAL, "%s: key 'ftpm-ekb-fv': '%s' is not 32 hex digits", name, c->ftpm_ekb_fv);
        if (c->ftpm_ekb_root && strcmp(c->ftpm_ekb_root, "oem-k1") && strcmp(c->ftpm_ekb_root, "oem-k2"))
                return fl_err(ctx, -EINVAL, "%s: key 'ftpm-ekb-root': '%s' is not oem-k1 or oem-k2", name,
                              c->ftpm_ekb_root);
        if (!c->bsp)
                return fl_err(ctx, -EINVAL, "%s: ftpm = yes needs key 'bsp' (odmfuse.sh --noburn builds each "
                              "board's fuse package there)", name);
        return 0;
}

int station_conf_parse(fl_ctx *ctx, const char *name, const char *text, size_t len, struct station_conf *ret)
{
        struct station_conf c;
        bool seen[FL_ARRAY_SIZE(keys)] = { false };
        char line[STATION_LINE_MAX + 1];
        unsigned lno = 0;
        size_t pos = 0;
        int r;

        memset(&c, 0, sizeof(c));
        c.enroll_key = KT_P256;
        c.log_keep_days = 30;
        c.log_keep_mb = 1024;
        c.min_free_mb = 64;
        c.timeout_s = 300;
        c.hook_timeout_s = 60;
        if (len > STATION_CONF_MAX) {
                r = fl_err(ctx, -EINVAL, "%s: larger than %d bytes: not a settings file", name, STATION_CONF_MAX);
                goto fail;
        }
        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
                char *s, *e, *eq, *key, *val;
                const struct key_def *k = NULL;

                lno++;
                if (n > STATION_LINE_MAX) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: line longer than %d characters", name, lno, STATION_LINE_MAX);
                        goto fail;
                }
                memcpy(line, text + pos, n);
                line[n] = 0;
                pos += n + (nl ? 1 : 0);
                if (memchr(line, 0, n)) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: a NUL byte: not a text file", name, lno);
                        goto fail;
                }
                if (n && line[n - 1] == '\r')
                        line[--n] = 0;
                for (s = line; *s == ' ' || *s == '\t'; s++)
                        ;
                if (!*s || *s == '#')
                        continue;
                eq = strchr(s, '=');
                if (!eq) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: '%.40s' is not 'key = value'", name, lno, s);
                        goto fail;
                }
                for (e = eq; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
                        ;
                *e = 0;
                key = s;
                for (val = eq + 1; *val == ' ' || *val == '\t'; val++)
                        ;
                for (e = val + strlen(val); e > val && (e[-1] == ' ' || e[-1] == '\t'); e--)
                        ;
                *e = 0;
                for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++)
                        if (!strcmp(keys[i].name, key)) {
                                k = &keys[i];
                                if (seen[i]) {
                                        r = fl_err(ctx, -EINVAL, "%s:%u: key '%s' given twice", name, lno, key);
                                        goto fail;
                                }
                                seen[i] = true;
                        }
                if (!k) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: unknown key '%.40s'%s", name, lno, key,
                                   text_ok(key) ? "" : " (control characters)");
                        goto fail;
                }
                if (!*val) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: key '%s': empty value", name, lno, k->name);
                        goto fail;
                }
                if (!text_ok(val)) {
                        r = fl_err(ctx, -EINVAL, "%s:%u: key '%s': control characters in the value", name, lno,
                                   k->name);
                        goto fail;
                }
                r = set_value(ctx, name, lno, k, val, &c);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++)
                if (keys[i].required && !seen[i]) {
                        r = fl_err(ctx, -EINVAL, "%s: missing key '%s'", name, keys[i].name);
                        goto fail;
                }
        if (c.enroll == STATION_ENROLL_CSR && !c.csr_dir) {
                r = fl_err(ctx, -EINVAL, "%s: key 'csr-dir' is required with enroll = csr (where the devices' CSRs "
                           "arrive, one ECID.csr each)", name);
                goto fail;
        }
        if (c.enroll == STATION_ENROLL_TOKEN_KEY && c.csr_dir) {
                r = fl_err(ctx, -EINVAL, "%s: key 'csr-dir' only goes with enroll = csr", name);
                goto fail;
        }
        if (c.allow_lab_keys && c.mode != STATION_COMMIT) {
                r = fl_err(ctx, -EINVAL, "%s: key 'allow-lab-keys' only goes with mode = commit", name);
                goto fail;
        }
        r = ftpm_conf_check(ctx, name, &c, seen);
        if (r < 0)
                goto fail;
        if (!c.timeout_s || !c.hook_timeout_s) {
                r = fl_err(ctx, -EINVAL, "%s: key '%s' must be at least 1 second", name,
                           c.timeout_s ? "hook-timeout" : "timeout");
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        station_conf_clear(&c);
        return r;
}

/* A relative path in the settings is relative to the settings file. */
static int resolve(const char *dir, char **p)
{
        char *n;

        if (!*p || (*p)[0] == '/' || strstr(*p, "://")) /* a URI (the central ledger) is no file */
                return 0;
        if (asprintf(&n, "%s/%s", dir, *p) < 0)
                return -ENOMEM;
        free(*p);
        *p = n;
        return 0;
}

int station_conf_load(fl_ctx *ctx, const char *path, struct station_conf *ret)
{
        unsigned char *data = NULL;
        size_t len = 0;
        struct station_conf c;
        char *copy = NULL;
        int r;

        r = file_read(ctx, path, STATION_CONF_MAX, &data, &len);
        if (r < 0)
                return r;
        r = station_conf_parse(ctx, path, (const char *)data, len, &c);
        free(data);
        if (r < 0)
                return r;
        copy = strdup(path);
        if (!copy) {
                station_conf_clear(&c);
                return -ENOMEM;
        }
        {
                /* Absolute where possible: the paths end up in the ledger. */
                char *dir = realpath(dirname(copy), NULL);
                for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++)
                        if (keys[i].kind == K_PATH) {
                                strcpy(copy, path); /* dirname wrote into it */
                                r = resolve(dir ? dir : dirname(copy), (char **)((char *)&c + keys[i].off));
                                if (r < 0)
                                        break;
                        }
                free(dir);
        }
        free(copy);
        if (r < 0) {
                station_conf_clear(&c);
                return r;
        }
        *ret = c;
        return 0;
}

/* ---- log retention ---------------------------------------------------------------- */

static uint64_t g_du; /* nftw has no user pointer */

static int du_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        (void)p, (void)flag, (void)f;
        g_du += (uint64_t)st->st_blocks * 512;
        return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        (void)st, (void)f;
        return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT ? -1 : 0;
}

struct board_dir {
        char *path;
        time_t mtime;
        uint64_t bytes;
};

static int cmp_dir(const void *a, const void *b)
{
        const struct board_dir *x = a, *y = b;
        return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->path, y->path);
}

int station_logs_prune(fl_ctx *ctx, const char *dir, unsigned keep_days, unsigned keep_mb, time_t now)
{
        DIR *d = opendir(dir);
        struct board_dir *v = NULL;
        size_t n = 0, cap = 0;
        uint64_t total = 0;
        struct dirent *e;
        int deleted = 0, r = 0;

        if (!d)
                return errno == ENOENT ? 0 : fl_err(ctx, -errno, "%s: %s", dir, strerror(errno));
        while ((e = readdir(d))) {
                struct stat st;
                char *p;
                if (strncmp(e->d_name, "board-", 6))
                        continue;
                if (asprintf(&p, "%s/%s", dir, e->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        free(p);
                        continue;
                }
                if (n == cap) {
                        struct board_dir *nv = realloc(v, (cap = cap ? 2 * cap : 32) * sizeof(*v));
                        if (!nv) {
                                free(p);
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                }
                g_du = 0;
                nftw(p, du_one, 16, FTW_PHYS);
                v[n] = (struct board_dir){ .path = p, .mtime = st.st_mtime, .bytes = g_du };
                total += g_du;
                n++;
        }
        closedir(d);
        if (r == 0) {
                if (n)
                        qsort(v, n, sizeof(*v), cmp_dir);
                for (size_t i = 0; i < n; i++) {
                        bool old = keep_days && now - v[i].mtime > (time_t)keep_days * 86400;
                        bool big = keep_mb && total > (uint64_t)keep_mb * 1024 * 1024;
                        if (!old && !big)
                                continue;
                        if (nftw(v[i].path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0) {
                                r = fl_err(ctx, -errno, "%s: cannot delete an old board log: %s", v[i].path,
                                           strerror(errno));
                                break;
                        }
                        total -= v[i].bytes;
                        deleted++;
                }
        }
        for (size_t i = 0; i < n; i++)
                free(v[i].path);
        free(v);
        return r < 0 ? r : deleted;
}

/* ---- the loop ----------------------------------------------------------------------- */

struct seen {
        char (*v)[RCM_INSTANCE_MAX];
        size_t n;
};

struct station {
        fl_ctx *ctx;
        const struct station_opts *o;
        const struct station_conf *c;
        struct keyset *ks;
        struct fuse_template tmpl;
        struct ledger *l;
        struct identity_session *idn;
        struct station_stats stats;
        struct seen handled, ignored;
        bool line_stopped;
        long sync_tried; /* when the central ledger was last tried while spooling */
        /* the board in progress */
        const struct rcm_device *dev;
        char ecid[33], step[32], serial[80], cert[PATH_MAX], log[PATH_MAX], board_dir[PATH_MAX];
        char reason[700];
        const char *verdict;
        long t0;
        /* fTPM (ftpm = yes) */
        char ftpm_work[PATH_MAX], ftpm_plan[PATH_MAX], ftpm_pkg[PATH_MAX], ftpm_snhex[2 * FTPM_SN_LEN + 1];
        char ekb_path[PATH_MAX];
        unsigned char ftpm_sn[FTPM_SN_LEN];
        bool ftpm_odm_already;
};

static long mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
}

static bool seen_has(const struct seen *s, const char *inst)
{
        for (size_t i = 0; i < s->n; i++)
                if (!strcmp(s->v[i], inst))
                        return true;
        return false;
}

static int seen_add(struct seen *s, const char *inst)
{
        char (*nv)[RCM_INSTANCE_MAX] = realloc(s->v, (s->n + 1) * sizeof(*s->v));
        if (!nv)
                return -ENOMEM;
        s->v = nv;
        snprintf(s->v[s->n++], RCM_INSTANCE_MAX, "%s", inst);
        return 0;
}

/* Forget the ports whose board is gone: a new board there is a new board. */
static void seen_keep_present(struct seen *s, const struct rcm_device *v, size_t n)
{
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++) {
                bool present = false;
                for (size_t j = 0; j < n && !present; j++)
                        present = !strcmp(v[j].instance, s->v[i]);
                if (present)
                        memmove(s->v[k++], s->v[i], RCM_INSTANCE_MAX);
        }
        s->n = k;
}

static void emit(struct station *S, enum station_ev kind, const char *reason)
{
        struct station_event ev = {
                .kind = kind, .reason = reason, .done = S->stats.done, .passed = S->stats.passed,
                .failed = S->stats.failed,
        };
        if (S->dev) {
                ev.instance = S->dev->instance;
                ev.module = S->dev->module;
                ev.ecid = *S->ecid ? S->ecid : NULL;
                ev.step = *S->step ? S->step : NULL;
                ev.serial = *S->serial ? S->serial : NULL;
                ev.cert = *S->cert ? S->cert : NULL;
                ev.log = *S->board_dir ? S->board_dir : NULL;
                ev.verdict = S->verdict;
                ev.elapsed_ms = S->t0 ? mono_ms() - S->t0 : 0;
        }
        if (S->o->on_event)
                S->o->on_event(&ev, S->o->event_data);
}

static bool stopping(const struct station *S)
{
        return S->o->stop && *S->o->stop;
}

/* ---- line conditions ---- */

enum cond { COND_OK = 0, COND_WAIT, COND_FATAL };

/* What a token error means for the line: absent (ENXIO) or a locked PIN
 * waits for someone to cure it; a wrong PIN is fatal — trying it again
 * would count down the token's retry counter to a lock. */
static enum cond token_cond(fl_ctx *ctx, int r)
{
        const char *m = fl_ctx_last_error(ctx);

        if (r == -ENXIO || r == -EAGAIN)
                return COND_WAIT;
        if (r == -EACCES && m && strstr(m, "CKR_PIN_LOCKED"))
                return COND_WAIT;
        return COND_FATAL;
}

static int free_mb(const char *path, uint64_t *ret)
{
        struct statvfs vf;
        if (statvfs(path, &vf) < 0)
                return -errno;
        *ret = (uint64_t)vf.f_bavail * vf.f_frsize / (1024 * 1024);
        return 0;
}

static void ledger_come_back(struct station *S);

/* 0: the line may work; >0 (COND_WAIT) with why in buf; <0 fatal. */
static int line_check(struct station *S, char *why, size_t len)
{
        const struct station_conf *c = S->c;
        char *copy = strdup(c->ledger);
        const char *dirs[2] = { NULL, c->log_dir };
        int r;

        if (!copy)
                return -ENOMEM;
        dirs[0] = dirname(copy);
        for (size_t i = 0; i < 2; i++) {
                uint64_t mb = 0;
                if (free_mb(dirs[i], &mb) == 0 && mb < c->min_free_mb) {
                        snprintf(why, len, "DISK FULL: %s has %llu MB free, the station needs %u MB (min-free-mb): "
                                 "free space there; the line resumes by itself", dirs[i], (unsigned long long)mb,
                                 c->min_free_mb);
                        free(copy);
                        return COND_WAIT;
                }
        }
        free(copy);
        /* A backlog in the spool goes up first: enrolment needs it gone. */
        ledger_come_back(S);
        if (!S->idn) {
                struct identity_session_opts so = {
                        .keyset_path = c->keyset, .tok = S->o->tok, .db_path = c->ledger, .station = c->station_id,
                        .operator = c->operator_id,
                };
                r = identity_session_open(S->ctx, &so, &S->idn);
                if (r == -EHOSTUNREACH) {
                        /* Store and forward: identities are never issued
                         * offline, and every board here is enrolled. */
                        snprintf(why, len, "CENTRAL LEDGER UNREACHABLE: %s — the line resumes by itself when it is "
                                 "back", fl_ctx_last_error(S->ctx));
                        S->idn = NULL;
                        return COND_WAIT;
                }
                if (r < 0) {
                        if (token_cond(S->ctx, r) == COND_FATAL)
                                return r;
                        snprintf(why, len, "TOKEN NOT AVAILABLE: %s — plug the token back in (or unlock its PIN); "
                                 "the line resumes by itself", fl_ctx_last_error(S->ctx));
                        S->idn = NULL;
                        return COND_WAIT;
                }
        }
        return 0;
}

/* Wait until the line may work. 0, -ECANCELED (stopped meanwhile), or a
 * fatal error. */
static int line_gate(struct station *S)
{
        char why[900];
        int r;

        for (;;) {
                r = line_check(S, why, sizeof(why));
                if (r <= 0)
                        break;
                if (!S->line_stopped) {
                        S->line_stopped = true;
                        emit(S, STATION_EV_LINE_STOPPED, why);
                }
                if (stopping(S))
                        return -ECANCELED;
                sleep_ms(S->o->poll_ms > 0 ? 4 * S->o->poll_ms : 2000);
        }
        if (r == 0 && S->line_stopped) {
                S->line_stopped = false;
                emit(S, STATION_EV_LINE_RESUMED, "the line works again");
        }
        return r;
}

/* ---- one board ---- */

static void burn_event(size_t idx, const struct burn_device *d, const char *step, const char *line, void *data)
{
        struct station *S = data;
        const char *name = NULL;

        (void)idx, (void)line;
        if (*d->ecid && !*S->ecid)
                snprintf(S->ecid, sizeof(S->ecid), "%s", d->ecid);
        if (!step)
                return;
        if (!strcmp(step, "reading") && strcmp(S->step, "verifying fuses"))
                name = "reading fuses";
        else if (!strcmp(step, "burning"))
                name = "burning";
        else if (!strcmp(step, "reading back"))
                name = "reading back";
        if (name && strcmp(S->step, name)) {
                snprintf(S->step, sizeof(S->step), "%s", name);
                emit(S, STATION_EV_STEP, NULL);
        }
}

static void set_step(struct station *S, const char *name)
{
        snprintf(S->step, sizeof(S->step), "%s", name);
        emit(S, STATION_EV_STEP, NULL);
}

static bool confirm_yes(const char *instance, const char *ecid, const char *br_cid, const char *summary, void *data)
{
        (void)instance, (void)ecid, (void)br_cid, (void)summary, (void)data;
        return true;
}

static void burn_opts_fill(struct station *S, struct burn_opts *b, const char *const *devs)
{
        const struct station_conf *c = S->c;

        memset(b, 0, sizeof(*b));
        b->mode = c->mode == STATION_COMMIT ? BURN_COMMIT : BURN_DRY_RUN;
        b->package = c->package;
        b->plan_path = c->plan;
        b->ks = S->ks;
        b->allow_lab_keys = c->allow_lab_keys;
        b->devices = devs;
        b->ports = &c->ports;
        b->jobs = 1;
        b->timeout_ms = (int)c->timeout_s * 1000;
        b->log_dir = S->board_dir;
        b->ledger = S->l;
        b->station = c->station_id;
        b->operator = c->operator_id;
        b->envp = S->o->envp;
        b->confirm = c->confirm == STATION_CONFIRM_YES ? confirm_yes : S->o->confirm;
        b->confirm_data = S->o->confirm_data;
        b->on_event = burn_event;
        b->event_data = S;
        b->stop = NULL; /* one board per run: the board in progress always finishes */
        b->readback_delay_ms = S->o->readback_delay_ms;
        b->accept_unverified = c->accept_unverified;
}

static const char *step_words(const char *step)
{
        if (!strcmp(step, "burning"))
                return "the burn";
        if (!strcmp(step, "reading back"))
                return "the read-back after the burn";
        if (!strcmp(step, "verifying fuses"))
                return "the fuse check";
        return "the fuse read";
}

/* The board failed, for this reason (operator words). Returns 1. */
static int FAIL(struct station *S, const char *fmt, ...) FL_PRINTF(2, 3);
static int FAIL(struct station *S, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(S->reason, sizeof(S->reason), fmt, ap);
        va_end(ap);
        S->verdict = "fail";
        return 1;
}

/* The burn's verdict in operator words. true: go on with this board. */
static bool judge_burn(struct station *S, const struct burn_device *d, bool *ret_already)
{
        const char *v = d->verdict ? d->verdict : "fail";
        const char *where = step_words(*S->step ? S->step : "reading fuses");

        *ret_already = false;
        if (!strcmp(v, "already-provisioned")) {
                *ret_already = true;
                return true;
        }
        if (!strcmp(v, "pass"))
                return true;
        if (!strcmp(v, "absent")) {
                if (d->burned) /* the read-back finds it gone: when it left, only the next read can tell */
                        FAIL(S, "board removed during the burn: OUTCOME UNKNOWN — put it back in a socket, the "
                             "station reads it back first");
                else
                        FAIL(S, "board removed during %s (nothing burned)", where);
        } else if (!strcmp(v, "swapped")) {
                FAIL(S, "another board appeared in the socket during %s: nothing more done to either; re-seat "
                     "them one at a time", where);
        } else if (!strcmp(v, "not-confirmed")) {
                FAIL(S, "burn not confirmed (the digits typed were not the ECID's): nothing burned");
        } else if (!strcmp(v, "conflict")) {
                FAIL(S, "fuses already burned with values other than this product's: set the board aside (%s)",
                     d->message);
        } else if (d->r == -ETIMEDOUT) {
                FAIL(S, "the board stopped answering during %s (tool killed after %u s): re-seat it and try again%s",
                     where, S->c->timeout_s, d->burned ? "; OUTCOME UNKNOWN until it is read back" : "");
        } else {
                FAIL(S, "burn failed: %s", d->message);
        }
        return false;
}

static int write_record(struct station *S, const char *outcome);

/* The serial the certificate names: serial-prefix + the ECID's last 16
 * hex digits. [U] Until an MES hands out serials, the ECID's unit part is
 * the only number a blank board brings that is unique to it. */
static void make_serial(struct station *S)
{
        size_t n = strlen(S->ecid);
        snprintf(S->serial, sizeof(S->serial), "%s%s", S->c->serial_prefix ? S->c->serial_prefix : "",
                 n >= 16 ? S->ecid + n - 16 : S->ecid);
        for (char *p = S->serial + strlen(S->serial) - (n >= 16 ? 16 : n); *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
}

static int cert_write(struct station *S, const char *pem, size_t len)
{
        if (mkdir(S->c->cert_dir, 0755) < 0 && errno != EEXIST)
                return fl_err(S->ctx, -errno, "%s: %s", S->c->cert_dir, strerror(errno));
        snprintf(S->cert, sizeof(S->cert), "%s/%s.pem", S->c->cert_dir, S->ecid);
        return file_write_atomic(S->ctx, S->cert, pem, len, 0644);
}

static int cert_from_ledger(struct station *S, bool *ret_have)
{
        struct ledger_cert_info ci = { 0 };
        const unsigned char *p;
        X509 *x = NULL;
        BIO *b = NULL;
        char *pem;
        long len;
        int r = ledger_cert_current(S->l, S->ecid, &ci);

        *ret_have = false;
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        p = ci.der;
        x = d2i_X509(NULL, &p, (long)ci.der_len);
        b = BIO_new(BIO_s_mem());
        if (!x || !b || PEM_write_bio_X509(b, x) != 1) {
                r = fl_err(S->ctx, -EIO, "the ledger's certificate of %s cannot be read back", S->ecid);
                goto out;
        }
        len = BIO_get_mem_data(b, &pem);
        r = cert_write(S, pem, (size_t)len);
        if (r == 0)
                *ret_have = true;
out:
        BIO_free(b);
        X509_free(x);
        ledger_cert_info_clear(&ci);
        return r;
}

/* Enrol, retrying through a token that goes away (the line stops, the
 * board waits). 0 or FAIL set (1) or fatal <0. */
static int enroll(struct station *S)
{
        for (;;) {
                struct identity_enroll_result res = { 0 };
                char csr[PATH_MAX];
                struct identity_enroll_req req = {
                        .ecid = S->ecid, .serial = S->serial, .product = S->c->product,
                };
                int r;

                if (S->c->enroll == STATION_ENROLL_CSR) {
                        snprintf(csr, sizeof(csr), "%s/%s.csr", S->c->csr_dir, S->ecid);
                        if (access(csr, R_OK) < 0)
                                return FAIL(S, "no certificate request from the device: %s is missing (fuses are "
                                            "burned; enrol it once its CSR is there)", csr);
                        req.csr_path = csr;
                } else {
                        req.generate = S->c->enroll_key;
                }
                r = line_gate(S);
                if (r == -ECANCELED)
                        return FAIL(S, "station stopped while the token was away: fuses are burned, not enrolled");
                if (r < 0)
                        return r;
                r = identity_enroll(S->idn, &req, &res);
                if (r == 0) {
                        r = cert_write(S, res.pem, res.pem_len);
                        identity_enroll_result_clear(&res);
                        if (r < 0)
                                return FAIL(S, "certificate issued but not written: %s", fl_ctx_last_error(S->ctx));
                        return 0;
                }
                identity_enroll_result_clear(&res);
                if ((r == -ENXIO || r == -EACCES || r == -EAGAIN) && token_cond(S->ctx, r) == COND_WAIT) {
                        identity_session_close(S->idn);
                        S->idn = NULL;
                        continue; /* line_gate stops the line until the token is back */
                }
                if (r == -EACCES)
                        return r; /* a wrong PIN: never tried again */
                return FAIL(S, "enrolment refused: %s", fl_ctx_last_error(S->ctx));
        }
}

static int verify_cert(struct station *S)
{
        struct identity_check chk = { .ledger = -1 };
        struct identity_verify_opts vo = { .cert_path = S->cert, .keyset_path = S->c->keyset, .db_path = S->c->ledger };
        int r;

        set_step(S, "verifying certificate");
        r = identity_verify(S->ctx, &vo, &chk);
        if (r < 0)
                return FAIL(S, "certificate check could not run: %s", fl_ctx_last_error(S->ctx));
        if (chk.n_problems) {
                FAIL(S, "certificate check failed: %s", chk.problems[0]);
                identity_check_clear(&chk);
                return 1;
        }
        identity_check_clear(&chk);
        return 0;
}

static int run_hook(struct station *S)
{
        const char *argv[] = { S->c->hook, S->ecid, S->serial, S->cert, NULL };
        char log[PATH_MAX + 16], buf[64];
        struct proc_result pr = { 0 };
        struct proc_opts po = { .argv = argv, .envp = S->o->envp, .timeout_ms = (int)S->c->hook_timeout_s * 1000 };
        int r;

        set_step(S, "label hook");
        snprintf(log, sizeof(log), "%s/hook.log", S->board_dir);
        po.log_path = log;
        r = proc_run(S->ctx, &po, &pr);
        if (r < 0)
                return FAIL(S, "label hook could not start: %s (board is provisioned; print its label by hand)",
                            fl_ctx_last_error(S->ctx));
        if (!pr.exited || pr.status)
                return FAIL(S, "label hook failed: %s (board is provisioned; reprint its label; log %s)",
                            proc_result_text(&pr, buf, sizeof(buf)), log);
        return 0;
}


/* ---- fTPM: the per-device step (ftpm = yes) ---- */

static int ftpm_record(struct station *S, const char *step, json_object *det)
{
        struct ledger_event ev = {
                .station = S->c->station_id, .operator = S->c->operator_id, .command = "station-ftpm",
                .ecid = S->ecid, .kind = LEDGER_RECORD, .outcome = "ok",
        };
        int r;

        json_object_object_add(det, "step", json_object_new_string(step));
        json_object_object_add(det, "ftpm_sn", json_object_new_string(S->ftpm_snhex));
        ev.details = json_object_to_json_string_ext(det, JSON_C_TO_STRING_PLAIN);
        r = ledger_append(S->l, &ev, NULL);
        json_object_put(det);
        return r;
}

static void ftpm_work_clean(struct station *S)
{
        if (!*S->ftpm_work)
                return;
        DIR *d = opendir(S->ftpm_work);
        struct dirent *e;

        /* Only files are made here (the plan, the package, odmfuse's log). */
        while (d && (e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        (void)unlinkat(dirfd(d), e->d_name, 0);
        if (d)
                closedir(d);
        if (rmdir(S->ftpm_work) < 0)
                fl_log(S->ctx, FL_LOG_WARN, "%s: cannot remove: %s", S->ftpm_work, strerror(errno));
        *S->ftpm_work = 0;
}

/* The board's fTPM serial number. [U] Until an MES hands out serials, the
 * SN is the ECID's last 16 hex digits — the digits the station's serial
 * shows after serial-prefix — with the top bit cleared, because NVIDIA's
 * tools take SN < 2^63; the OEM_ID (ftpm-oem-id) comes first. Two ECIDs that
 * differ only in that bit would get one SN: the keyset records the ECID
 * with each KDK0, and a second board is refused (ftpm_odm). */
static int ftpm_sn_make(struct station *S, uint64_t *ret_sn)
{
        size_t n = strlen(S->ecid);
        uint64_t sn;

        if (n != 32)
                return fl_err(S->ctx, -EINVAL, "ECID %s is not 32 hex digits", S->ecid);
        sn = strtoull(S->ecid + 16, NULL, 16) & ~(UINT64_C(1) << 63);
        *ret_sn = sn;
        return ftpm_device_sn(S->ctx, S->c->ftpm_oem_id, sn, S->ftpm_sn);
}

/* Read the board (its ECID), make or find its KDK0 and per-device fuse plan,
 * build that plan's package with the BSP and burn it — before the product's
 * fuses (the reference's burn order: the ODM's per-device blob, then the
 * OEM's). 0: go on (S->ftpm_odm_already tells whether it was burned
 * already); 1: FAIL set; <0: fatal. */
static int ftpm_odm(struct station *S, const struct rcm_device *dev)
{
        const char *devs[] = { dev->instance, NULL };
        struct burn_opts b;
        struct burn_report rep = { 0 };
        struct ftpm_device_result res = { 0 };
        struct ftpm_device_req rq = { .keyset_path = S->c->keyset, .tok = S->o->tok, .oem_id = S->c->ftpm_oem_id };
        char made_for[33] = "", log[PATH_MAX + 32], pubhex[129];
        bool already = false, made = false, product_done = false;
        uint64_t sn = 0;
        int r, ret = 1;

        S->ftpm_odm_already = false;
        /* 1. the ECID: a read only, without the ledger (a read with the
         * product's plan must not judge an intent of the per-device plan). */
        burn_opts_fill(S, &b, devs);
        b.mode = BURN_SHOW;
        b.ledger = NULL;
        r = burn_run(S->ctx, &b, &rep);
        if (r == -ENODEV) {
                FAIL(S, "board removed before it could be read (nothing burned)");
                goto out;
        }
        if (r < 0)
                return r;
        if (!rep.n) {
                FAIL(S, "board removed before it could be read (nothing burned)");
                goto out;
        }
        /* Only a board that can take the product's plan gets a KDK0: a
         * conflict, a vanished or swapped board stops here. */
        if (strcmp(rep.v[0].verdict ? rep.v[0].verdict : "", "planned") &&
            strcmp(rep.v[0].verdict ? rep.v[0].verdict : "", "already-provisioned")) {
                judge_burn(S, &rep.v[0], &already);
                goto out;
        }
        product_done = !strcmp(rep.v[0].verdict, "already-provisioned");
        snprintf(S->ecid, sizeof(S->ecid), "%s", rep.v[0].ecid);
        make_serial(S);
        r = ftpm_sn_make(S, &sn);
        if (r < 0) {
                FAIL(S, "no fTPM serial number for this board: %s (nothing burned)", fl_ctx_last_error(S->ctx));
                goto out;
        }
        hex_encode(S->ftpm_sn, FTPM_SN_LEN, S->ftpm_snhex);
        rq.sn = sn;
        rq.ecid = S->ecid;

        /* 2. KDK0 and the per-device plan, in a private directory (the plan
         * and the package hold KDK0). */
        set_step(S, "fTPM device keys");
        snprintf(S->ftpm_work, sizeof(S->ftpm_work), "%s/.ftpm-XXXXXX", S->c->log_dir);
        if (!mkdtemp(S->ftpm_work)) {
                r = fl_err(S->ctx, -errno, "%s: %s", S->ftpm_work, strerror(errno));
                *S->ftpm_work = 0;
                return r;
        }
        snprintf(S->ftpm_plan, sizeof(S->ftpm_plan), "%s/device.xml", S->ftpm_work);
        snprintf(S->ftpm_pkg, sizeof(S->ftpm_pkg), "%s/device.tbz2", S->ftpm_work);
        rq.fuse_out = S->ftpm_plan;
        r = line_gate(S);
        if (r == -ECANCELED) {
                FAIL(S, "station stopped while the token was away: nothing burned");
                goto out;
        }
        if (r < 0)
                return r;
        r = ftpm_device_plan_write(S->ctx, &rq, &res, made_for);
        if (r == -ENOENT && product_done) {
                /* SecurityMode is burned: the device takes no more fuses. */
                FAIL(S, "the board carries the product's fuses but was never given an fTPM identity (no KDK0 for SN "
                     "%s); its per-device fuses can no longer be burned: set it aside", S->ftpm_snhex);
                goto out;
        }
        if (r == -ENOENT) {
                r = ftpm_device_create(S->ctx, &rq, &res);
                made = r == 0;
        } else if (r == 0 && strcmp(made_for, S->ecid)) {
                FAIL(S, "fTPM serial number %s already belongs to %s: nothing burned; set the board aside",
                     S->ftpm_snhex, *made_for ? made_for : "a device made without a station (no ECID recorded)");
                goto out;
        }
        if (r == -EACCES)
                return r;
        if (r < 0) {
                FAIL(S, "fTPM device keys not made: %s (nothing burned)", fl_ctx_last_error(S->ctx));
                goto out;
        }
        {
                json_object *det = json_object_new_object();
                hex_encode(res.sid_pub, 64, pubhex);
                json_object_object_add(det, "serial", json_object_new_string(S->serial));
                json_object_object_add(det, "oem_id", json_object_new_int((int)S->c->ftpm_oem_id));
                json_object_object_add(det, "keyset_role", json_object_new_string(res.role));
                json_object_object_add(det, "kdk0", json_object_new_string(made ? "made" : "existing"));
                json_object_object_add(det, "silicon_id_pub", json_object_new_string(pubhex));
                json_object_object_add(det, "fuse_plan_sha256", json_object_new_string(res.plan_sha256));
                r = ftpm_record(S, "device", det);
                if (r < 0) {
                        FAIL(S, "ledger: %s (nothing burned)", fl_ctx_last_error(S->ctx));
                        goto out;
                }
        }

        /* 3. the per-device package, made by the BSP's odmfuse.sh and checked
         * to burn exactly that plan. */
        set_step(S, "fTPM fuse package");
        {
                struct package_make_opts po = {
                        .bsp_dir = S->c->bsp, .tmpl = &S->tmpl, .plan_path = S->ftpm_plan,
                        .accept_unverified = S->c->accept_unverified, .out = S->ftpm_pkg, .envp = S->o->envp,
                        .timeout_ms = (int)S->c->timeout_s * 1000,
                };
                char sha[65];
                snprintf(log, sizeof(log), "%s/ftpm-odmfuse.log", S->board_dir);
                po.log_path = log;
                r = burn_package_make(S->ctx, &po, sha);
                if (r < 0) {
                        FAIL(S, "the board's fTPM fuse package was not made: %s (nothing burned)",
                             fl_ctx_last_error(S->ctx));
                        goto out;
                }
        }

        /* 4. burn it: the read inside decides (already burned: nothing burned). */
        burn_report_clear(&rep);
        burn_opts_fill(S, &b, devs);
        b.package = S->ftpm_pkg;
        b.plan_path = S->ftpm_plan;
        *S->step = 0;
        r = burn_run(S->ctx, &b, &rep);
        if (r == -ENODEV) {
                FAIL(S, "board removed before its fTPM fuses were read (nothing burned)");
                goto out;
        }
        if (r < 0) {
                FAIL(S, "fTPM fuse burn refused: %s (nothing burned)", fl_ctx_last_error(S->ctx));
                goto out;
        }
        if (!rep.n || !judge_burn(S, &rep.v[0], &already)) {
                if (rep.n && strncmp(S->reason, "fTPM", 4)) {
                        char why[sizeof(S->reason)];
                        snprintf(why, sizeof(why), "%s", S->reason);
                        FAIL(S, "fTPM fuses: %s", why);
                }
                goto out;
        }
        if (strcmp(rep.v[0].ecid, S->ecid)) {
                FAIL(S, "another board answered during the fTPM burn (ECID %s): re-seat them one at a time",
                     rep.v[0].ecid);
                goto out;
        }
        S->ftpm_odm_already = already;
        ret = 0;
out:
        burn_report_clear(&rep);
        return ret;
}

/* The fTPM's second half, after both burns: both EK certificates and the
 * per-device EKB (a fresh EPS seed that exists only inside it), written
 * beside the device certificate, then checked as `verify ekb --sn` does.
 * An EKB already there is checked, never replaced. 0 / 1 FAIL / <0. */
static int ftpm_ekb(struct station *S, bool *ret_already)
{
        char rsa_path[PATH_MAX + 16], ec_path[PATH_MAX + 16];
        unsigned char fv[16];
        struct ekb_build_req breq = { .fmt = ekb_format_from_name(S->c->ftpm_ekb_format),
                                      .root_role = S->c->ftpm_ekb_root };
        struct ftpm_ek_pair res = { 0 };
        struct keyset *ks = NULL;
        struct ekb_report rep = { 0 };
        unsigned char *img = NULL;
        size_t img_len = 0, fvl = 0;
        bool have;
        int r, ret = 1;

        *ret_already = false;
        if (S->c->ftpm_ekb_fv) {
                if (hex_decode(S->c->ftpm_ekb_fv, fv, sizeof(fv), &fvl) < 0 || fvl != 16)
                        return fl_err(S->ctx, -EINVAL, "ftpm-ekb-fv: not 16 bytes of hex");
                breq.fv = fv;
        }
        if (mkdir(S->c->cert_dir, 0755) < 0 && errno != EEXIST)
                return fl_err(S->ctx, -errno, "%s: %s", S->c->cert_dir, strerror(errno));
        snprintf(S->ekb_path, sizeof(S->ekb_path), "%s/%s.eks.img", S->c->cert_dir, S->ecid);
        snprintf(rsa_path, sizeof(rsa_path), "%s/%s.ek-rsa.der", S->c->cert_dir, S->ecid);
        snprintf(ec_path, sizeof(ec_path), "%s/%s.ek-ec.der", S->c->cert_dir, S->ecid);
        have = access(S->ekb_path, F_OK) == 0;
        if (!have) {
                struct ftpm_ek_derive rq = { .keyset_path = S->c->keyset, .tok = S->o->tok, .sn = S->ftpm_sn,
                                             .ekb = &breq };
                json_object *det;

                set_step(S, "fTPM EK certificates and EKB");
                r = line_gate(S);
                if (r == -ECANCELED) {
                        FAIL(S, "station stopped while the token was away: fuses are burned, no EKB made");
                        goto out;
                }
                if (r < 0)
                        return r;
                r = ftpm_ek_certs_derive(S->ctx, &rq, &res);
                if (r == -EACCES)
                        return r;
                if (r < 0) {
                        FAIL(S, "fTPM EK certificates not made: %s (fuses are burned)", fl_ctx_last_error(S->ctx));
                        goto out;
                }
                /* The certificates first (public), the EKB last: an EKB on
                 * disk means the step finished. */
                r = file_write_atomic(S->ctx, rsa_path, res.rsa.der, res.rsa.der_len, 0644);
                if (r == 0)
                        r = file_write_atomic(S->ctx, ec_path, res.ec.der, res.ec.der_len, 0644);
                if (r == 0)
                        r = file_write_atomic(S->ctx, S->ekb_path, res.ekb.data, res.ekb.len, 0600);
                if (r < 0) {
                        FAIL(S, "the board's EKB was not written: %s", fl_ctx_last_error(S->ctx));
                        goto out;
                }
                det = json_object_new_object();
                json_object_object_add(det, "ek_cert_rsa_sha256", json_object_new_string(res.rsa.sha256));
                json_object_object_add(det, "ek_cert_ec_sha256", json_object_new_string(res.ec.sha256));
                json_object_object_add(det, "ekb_sha256", json_object_new_string(res.ekb.sha256));
                json_object_object_add(det, "ekb_format", json_object_new_string(S->c->ftpm_ekb_format));
                json_object_object_add(det, "ekb", json_object_new_string(S->ekb_path));
                r = ftpm_record(S, "ek-certs-ekb", det);
                if (r < 0) {
                        FAIL(S, "ledger: %s (the EKB is written; the next run checks it)", fl_ctx_last_error(S->ctx));
                        goto out;
                }
        }

        /* verify ekb --sn: MAC, records, the SN, the EK certificates' chain
         * to the EK CA and their keys from KDK0 and the EPS seed. */
        set_step(S, "verifying EKB");
        r = file_read(S->ctx, S->ekb_path, (size_t)1 << 20, &img, &img_len);
        if (r == 0)
                r = keyset_load(S->ctx, S->c->keyset, &ks); /* with this board's KDK0 role */
        if (r == 0) {
                struct ekb_verify_req vr = { .name = S->ekb_path, .data = img, .len = img_len,
                                             .root_role = S->c->ftpm_ekb_root, .fv = breq.fv,
                                             .keyset_path = S->c->keyset, .ftpm_sn = S->ftpm_sn };
                r = ekb_verify(S->ctx, S->o->tok, ks, &vr, &rep);
        }
        if (r == -EACCES)
                goto fatal;
        if (r < 0 && r != -EBADMSG) {
                FAIL(S, "the board's EKB check could not run: %s", fl_ctx_last_error(S->ctx));
                goto out;
        }
        if (r == -EBADMSG || rep.n_problems) {
                FAIL(S, "the board's EKB %s does not verify: %s", S->ekb_path,
                     rep.n_problems ? rep.problems[0] : fl_ctx_last_error(S->ctx));
                goto out;
        }
        *ret_already = have;
        ret = 0;
out:
        r = ret;
fatal:
        free(img);
        ekb_report_clear(&rep);
        keyset_free(ks);
        ftpm_ek_pair_clear(&res);
        return r;
}

/* One board, start to end. 0 (verdict set) or a fatal error. */
/* Read a plan back from the board once more (what: "" or "fTPM "). False
 * when the board is gone or fails it: the verdict is set, the board
 * recorded as FAIL. */
static bool plan_read_back(struct station *S, const struct burn_opts *bo, const struct rcm_device *dev,
                           const char *what, const char *removed_note)
{
        struct burn_device vd;
        int r;

        memset(&vd, 0, sizeof(vd));
        r = burn_verify_device(S->ctx, bo, dev->instance, &vd);
        fuse_diff_free(vd.diff);
        if (r < 0 || vd.r == -ENODEV) {
                FAIL(S, "board removed during the %sfuse check%s", what, removed_note);
                return false;
        }
        if (vd.r) {
                FAIL(S, "%sfuse check failed: %s", what, vd.message);
                return false;
        }
        return true;
}

static int board(struct station *S, const struct rcm_device *dev)
{
        const char *devs[] = { dev->instance, NULL };
        struct burn_opts b;
        struct burn_report rep = { 0 };
        bool already = false, have_cert = false;
        char stamp[32];
        time_t t = time(NULL);
        struct tm tm;
        int r, f;

        S->dev = dev;
        *S->ecid = *S->step = *S->serial = *S->cert = *S->reason = 0;
        *S->ftpm_snhex = *S->ekb_path = *S->ftpm_work = 0;
        S->ftpm_odm_already = false;
        S->verdict = NULL;
        S->t0 = mono_ms();
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        snprintf(S->board_dir, sizeof(S->board_dir), "%s/board-%s-%s", S->c->log_dir, stamp, dev->instance);
        emit(S, STATION_EV_ARRIVED, NULL);

        /* The token is opened afresh for every board, so a token pulled
         * between boards stops the line before anything is burned. */
        identity_session_close(S->idn);
        S->idn = NULL;
        r = line_gate(S);
        if (r == -ECANCELED) {
                /* Not a failure of the board: it was never touched. */
                S->verdict = "not-started";
                snprintf(S->reason, sizeof(S->reason), "station stopped while the line was stopped: the board "
                         "was not touched");
                goto record;
        }
        if (r < 0)
                goto out;
        if (mkdir(S->board_dir, 0700) < 0 && errno != EEXIST) {
                r = fl_err(S->ctx, -errno, "%s: %s", S->board_dir, strerror(errno));
                goto out;
        }
        if (S->tmpl.recovery_pid && dev->pid != S->tmpl.recovery_pid) {
                FAIL(S, "wrong module: this station makes %s, the board is %s (nothing done)", S->tmpl.module,
                     dev->module);
                goto record;
        }

        if (S->c->ftpm) {
                /* The per-device fTPM fuses first: the ODM's blob, then the OEM's. */
                f = ftpm_odm(S, dev);
                /* The fTPM steps open and close the token themselves, and a
                 * closing session's logout ends the identity session's login
                 * too: it is opened again when next needed. */
                identity_session_close(S->idn);
                S->idn = NULL;
                if (f < 0) {
                        r = f;
                        goto out;
                }
                if (f)
                        goto record;
                *S->step = 0;
        }
        burn_opts_fill(S, &b, devs);
        r = burn_run(S->ctx, &b, &rep);
        if (r == -ENODEV) {
                FAIL(S, "board removed before it could be read (nothing burned)");
                goto record;
        }
        if (r < 0)
                goto out; /* the plan, package or keyset is wrong: no board can pass */
        if (!rep.n || !judge_burn(S, &rep.v[0], &already))
                goto record;
        snprintf(S->ecid, sizeof(S->ecid), "%s", rep.v[0].ecid);
        make_serial(S);

        if (S->c->mode == STATION_DRY_RUN) {
                S->verdict = "pass";
                snprintf(S->reason, sizeof(S->reason), "dry run: the board processed every fuse and burned none "
                         "(read back); not enrolled");
                goto record;
        }
        if (!already) {
                set_step(S, "verifying fuses");
                if (!plan_read_back(S, &b, dev, "", " (fuses were burned and read back once)")) {
                        r = 0;
                        goto record;
                }
        }
        if (S->c->ftpm) {
                struct burn_opts bo = b;
                bool ekb_already = false;
                if (!already || !S->ftpm_odm_already) {
                        /* Both plans read back once more: the per-device one too. */
                        set_step(S, "verifying fTPM fuses");
                        bo.package = S->ftpm_pkg;
                        bo.plan_path = S->ftpm_plan;
                        if (!plan_read_back(S, &bo, dev, "fTPM ", "")) {
                                r = 0;
                                goto record;
                        }
                }
                ftpm_work_clean(S); /* the plan and package hold KDK0 */
                f = ftpm_ekb(S, &ekb_already);
                identity_session_close(S->idn); /* as after ftpm_odm */
                S->idn = NULL;
                if (f < 0) {
                        r = f;
                        goto out;
                }
                if (f)
                        goto record;
                already = already && S->ftpm_odm_already && ekb_already;
        }
        r = cert_from_ledger(S, &have_cert);
        if (r < 0) {
                FAIL(S, "ledger certificate unreadable: %s", fl_ctx_last_error(S->ctx));
                r = 0;
                goto record;
        }
        if (!have_cert) {
                set_step(S, "enrolling");
                f = enroll(S);
                if (f < 0) {
                        r = f;
                        goto out;
                }
                if (f)
                        goto record;
        }
        if (verify_cert(S))
                goto record;
        if (already && have_cert) {
                S->verdict = "already-provisioned";
                snprintf(S->reason, sizeof(S->reason), "already provisioned: fuses as planned, certificate valid "
                         "(nothing burned)");
                goto record;
        }
        if (S->c->hook && run_hook(S))
                goto record;
        S->verdict = "pass";
        snprintf(S->reason, sizeof(S->reason), "%s", already ? "fuses were already burned; enrolled now"
                                                               : "fused, verified and enrolled");
record:
        r = write_record(S, S->verdict ? S->verdict : "fail");
        if (r < 0)
                goto out;
        if (!strcmp(S->verdict, "fail")) {
                S->stats.done++;
                S->stats.failed++;
        } else if (strcmp(S->verdict, "not-started")) {
                S->stats.done++;
                S->stats.passed++;
        }
        *S->step = 0;
        emit(S, STATION_EV_RESULT, S->reason);
        r = 0;
out:
        ftpm_work_clean(S);
        burn_report_clear(&rep);
        S->dev = NULL;
        return r;
}

/* Store and forward (spool = PATH): while the ledger is the spool standing
 * in for the central one, try the central ledger between boards (at most
 * every 20 polls, 10 s by default: an unreachable server costs its connect
 * timeout each time), upload the backlog, and go on with the central ledger
 * once it is empty. */
static void ledger_come_back(struct station *S)
{
        struct ledger_sync_report rep = { 0 };
        struct ledger *central = NULL;
        int64_t first = 0, n = 1;
        long now = mono_ms(), every = 20L * (S->o->poll_ms > 0 ? S->o->poll_ms : 500);
        char msg[160];
        int r;

        if (!ledger_spooling_for(S->l) || (S->sync_tried && now - S->sync_tried < every))
                return;
        S->sync_tried = now;
        r = ledger_open_central(S->ctx, ledger_spooling_for(S->l), &central);
        if (r < 0) {
                fl_err_clear(S->ctx);
                return;
        }
        r = ledger_sync(central, S->l, &rep);
        if (r >= 0)
                r = ledger_spool_pending(S->l, &first, &n);
        if (r < 0 || n > 0) {
                fl_log(S->ctx, FL_LOG_WARN, "ledger sync: %s; still recording in the spool",
                       r < 0 ? fl_ctx_last_error(S->ctx) : "events remain");
                ledger_close(central);
                return;
        }
        snprintf(msg, sizeof(msg), "central ledger back: %lld spooled event(s) uploaded", (long long)rep.uploaded);
        ledger_close(S->l);
        S->l = central;
        emit(S, STATION_EV_LINE_RESUMED, msg);
}

/* The board's own event: the station's verdict, kept whatever the ledger
 * or the disk say meanwhile (the line stops until it is written). */
static int write_record(struct station *S, const char *outcome)
{
        json_object *det = json_object_new_object();
        struct ledger_event ev = {
                .station = S->c->station_id, .operator = S->c->operator_id, .command = "station",
                .ecid = *S->ecid ? S->ecid : NULL, .kind = LEDGER_RECORD, .outcome = outcome,
        };
        char why[900];
        int r;

        if (!S->verdict)
                S->verdict = "fail";
        json_object_object_add(det, "instance", json_object_new_string(S->dev->instance));
        json_object_object_add(det, "module", json_object_new_string(S->dev->module));
        json_object_object_add(det, "mode", json_object_new_string(S->c->mode == STATION_COMMIT ? "commit"
                                                                                              : "dry-run"));
        json_object_object_add(det, "reason", json_object_new_string(S->reason));
        if (*S->serial)
                json_object_object_add(det, "serial", json_object_new_string(S->serial));
        if (*S->cert)
                json_object_object_add(det, "cert", json_object_new_string(S->cert));
        if (S->c->ftpm && *S->ftpm_snhex)
                json_object_object_add(det, "ftpm_sn", json_object_new_string(S->ftpm_snhex));
        if (*S->ekb_path && access(S->ekb_path, F_OK) == 0)
                json_object_object_add(det, "ekb", json_object_new_string(S->ekb_path));
        json_object_object_add(det, "log", json_object_new_string(S->board_dir));
        ev.details = json_object_to_json_string_ext(det, JSON_C_TO_STRING_PLAIN);
        for (;;) {
                r = ledger_append(S->l, &ev, NULL);
                if (r == -EHOSTUNREACH && ledger_spool_default() && !ledger_spooling_for(S->l)) {
                        /* The server went away during the board: the spool
                         * takes the record (ledger_open picks it now). */
                        struct ledger *sp = NULL;
                        if (ledger_open(S->ctx, S->c->ledger, LEDGER_WRITE, &sp) >= 0 && ledger_spooling_for(sp)) {
                                ledger_close(S->l);
                                S->l = sp;
                                S->sync_tried = mono_ms();
                                continue;
                        }
                        ledger_close(sp);
                }
                if (r != -EBUSY && r != -ENOSPC && r != -EIO)
                        break;
                snprintf(why, sizeof(why), "%s: %s — the board's record waits; the line resumes by itself",
                         r == -ENOSPC ? "DISK FULL" : r == -EBUSY ? "LEDGER BUSY (another program holds it)"
                                                                  : "LEDGER ERROR",
                         fl_ctx_last_error(S->ctx));
                if (!S->line_stopped) {
                        S->line_stopped = true;
                        emit(S, STATION_EV_LINE_STOPPED, why);
                }
                if (stopping(S))
                        break; /* the operator insists: say which record is missing */
                sleep_ms(S->o->poll_ms > 0 ? 4 * S->o->poll_ms : 2000);
        }
        json_object_put(det);
        if (r < 0)
                return fl_err(S->ctx, r, "the record of the board on %s could not be written: %s", S->dev->instance,
                              fl_ctx_last_error(S->ctx));
        if (S->line_stopped) {
                S->line_stopped = false;
                emit(S, STATION_EV_LINE_RESUMED, "the line works again");
        }
        return 0;
}

/* ftpm = yes: everything the fTPM step needs is checked before the first
 * board: a t234 keyset with the EK CA and the EKB keys, a product plan
 * whose BootSecurityInfo has the bits the fTPM needs (a PKC scheme, 9, 11,
 * 13) and no per-device fuse, and the fuse-blob type ids of the per-device
 * fuses from the BSP's own parser (fuseline does not know Kdk0's and
 * OdmInfo's [U]). */
static int ftpm_startup(struct station *S)
{
        static const char *const names[] = { "OdmId", "OdmInfo", "Kdk0", NULL };
        const struct station_conf *c = S->c;
        struct fl_secret xml = { 0 };
        struct fuse_plan *plan = NULL;
        struct fuse_problems probs = { 0 };
        const struct fuse_entry *bsi;
        uint32_t v = 0;
        char log[PATH_MAX + 32];
        int r;

        if (S->ks->chip != FL_CHIP_T234)
                return fl_err(S->ctx, -EINVAL, "%s: ftpm = yes is for t234 products; the keyset is %s", c->keyset,
                              chip_name(S->ks->chip));
        if (!keyset_find(S->ks, "ftpm-ek-ca"))
                return fl_err_hint(S->ctx, FL_HINT_FTPM_KEYS, -EINVAL, "%s: ftpm = yes needs the EK CA role (ftpm-ek-ca)",
                                   c->keyset);
        if (!keyset_find(S->ks, "ekb-payload") || !keyset_find(S->ks, "ekb-disk"))
                return fl_err_hint(S->ctx, FL_HINT_FTPM_KEYS, -EINVAL,
                                   "%s: ftpm = yes needs the EKB key roles (ekb-payload, ekb-disk)", c->keyset);
        r = fuse_xml_load(S->ctx, c->plan, &xml);
        if (r == 0)
                r = fuse_xml_parse(S->ctx, xml.data, xml.len, FL_CHIP_T234, &plan, &probs);
        secret_wipe(&xml);
        if (r < 0)
                goto out;
        bsi = plan ? fuse_plan_find(plan, "BootSecurityInfo") : NULL;
        for (size_t i = 0; bsi && i < 4; i++)
                v = v << 8 | bsi->value[i];
        if (!bsi || !(v & 7) || (v & 0x2a00) != 0x2a00) {
                r = fl_err_hint(S->ctx, FL_HINT_FTPM_PLAN, -EINVAL,
                                "%s: ftpm = yes needs a plan whose BootSecurityInfo has a PKC scheme and bits 9, 11 "
                                "and 13 (it has %s0x%x)",
                                c->plan, bsi ? "" : "no BootSecurityInfo, ", (unsigned)v);
                goto out;
        }
        if (fuse_plan_find(plan, "Kdk0") || fuse_plan_find(plan, "OdmId") || fuse_plan_find(plan, "OdmInfo")) {
                r = fl_err(S->ctx, -EINVAL, "%s: with ftpm = yes the product plan must not hold Kdk0, OdmId or "
                           "OdmInfo: the station burns them per board", c->plan);
                goto out;
        }
        snprintf(log, sizeof(log), "%s/ftpm-fuse-types.log", c->log_dir);
        r = bsp_fuse_types_learn(S->ctx, c->bsp, FL_CHIP_T234, names, S->o->envp, log, (int)c->timeout_s * 1000);
out:
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        return r;
}

static int startup(struct station *S)
{
        const struct station_conf *c = S->c;
        struct ledger_dangling *dang = NULL;
        size_t n_dang = 0;
        int r;

        r = keyset_load(S->ctx, c->keyset, &S->ks);
        if (r < 0)
                return r;
        r = fuse_template_load(S->ctx, c->template_path, &S->tmpl);
        if (r < 0)
                return r;
        if (access(c->package, R_OK) < 0)
                return fl_err(S->ctx, -ENOENT, "package %s: %s", c->package, strerror(errno));
        if (access(c->plan, R_OK) < 0)
                return fl_err(S->ctx, -ENOENT, "plan %s: %s", c->plan, strerror(errno));
        if (c->hook && access(c->hook, X_OK) < 0)
                return fl_err(S->ctx, -ENOENT, "hook %s: not an executable file: %s", c->hook, strerror(errno));
        if (c->bsp && access(c->bsp, R_OK) < 0)
                return fl_err(S->ctx, -ENOENT, "bsp %s: %s", c->bsp, strerror(errno));
        if (mkdir(c->log_dir, 0700) < 0 && errno != EEXIST)
                return fl_err(S->ctx, -errno, "log-dir %s: %s", c->log_dir, strerror(errno));
        if (c->ftpm) {
                r = ftpm_startup(S);
                if (r < 0)
                        return r;
        }
        r = ledger_open(S->ctx, c->ledger, LEDGER_WRITE, &S->l);
        if (r < 0)
                return r;
        (void)station_logs_prune(S->ctx, c->log_dir, c->log_keep_days, c->log_keep_mb, time(NULL));
        emit(S, STATION_EV_STARTED, c->mode == STATION_COMMIT ? "commit" : "dry-run");
        /* A restart in the middle of a board: the open intents are shown
         * first; the board they concern is read back before anything else is
         * done to it (burn resolves them when it reads that ECID). */
        r = ledger_dangling_list(S->l, NULL, &dang, &n_dang);
        if (r == 0 && n_dang) {
                struct station_event ev = { .kind = STATION_EV_DANGLING, .count = (unsigned)n_dang,
                                            .ecid = dang[0].ecid };
                if (S->o->on_event)
                        S->o->on_event(&ev, S->o->event_data);
        }
        free(dang);
        return 0;
}

int station_run(fl_ctx *ctx, const struct station_opts *o, struct station_stats *ret)
{
        struct station S;
        struct rcm_device *v = NULL;
        size_t n = 0;
        bool waiting = false;
        int r;

        memset(&S, 0, sizeof(S));
        S.ctx = ctx;
        S.o = o;
        S.c = o->conf;
        r = startup(&S);
        if (r < 0)
                goto out;
        for (;;) {
                const struct rcm_device *next = NULL;

                if (stopping(&S)) {
                        S.stats.stopped = true;
                        break;
                }
                if (o->boards && S.stats.done >= o->boards)
                        break;
                rcm_devices_free(v);
                v = NULL;
                r = rcm_list(ctx, NULL, &v, &n);
                if (r < 0)
                        n = 0; /* USB unusable for a moment: keep polling */
                seen_keep_present(&S.handled, v, n);
                seen_keep_present(&S.ignored, v, n);
                for (size_t i = 0; i < n; i++) {
                        if (!rcm_port_allowed(&S.c->ports, v[i].instance)) {
                                if (!seen_has(&S.ignored, v[i].instance)) {
                                        struct station_event ev = { .kind = STATION_EV_IGNORED,
                                                                    .instance = v[i].instance,
                                                                    .module = v[i].module };
                                        r = seen_add(&S.ignored, v[i].instance);
                                        if (r < 0)
                                                goto out;
                                        if (o->on_event)
                                                o->on_event(&ev, o->event_data);
                                }
                                continue;
                        }
                        if (!next && !seen_has(&S.handled, v[i].instance))
                                next = &v[i];
                }
                if (!next) {
                        struct rcm_device one;
                        if (!waiting) {
                                emit(&S, STATION_EV_WAITING, NULL);
                                waiting = true;
                        }
                        (void)rcm_wait(ctx, NULL, o->poll_ms > 0 ? o->poll_ms : 500, &one);
                        fl_err_clear(ctx);
                        continue;
                }
                waiting = false;
                r = seen_add(&S.handled, next->instance);
                if (r < 0)
                        goto out;
                r = board(&S, next);
                if (r < 0)
                        goto out;
                (void)station_logs_prune(ctx, S.c->log_dir, S.c->log_keep_days, S.c->log_keep_mb, time(NULL));
        }
        r = 0;
        emit(&S, STATION_EV_FINISHED, S.stats.stopped ? "stopped" : "done");
        *ret = S.stats;
out:
        rcm_devices_free(v);
        free(S.handled.v);
        free(S.ignored.v);
        identity_session_close(S.idn);
        ledger_close(S.l);
        keyset_free(S.ks);
        return r;
}
