/* bsp.c — one device step at a time through NVIDIA's BSP tools, with every
 * trap of shared/reference/jetson-fuses.md §6 in mind (see bsp.h). */
#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bsp.h"
#include "chip.h"
#include "fuse_blob.h"
#include "fuse_plan.h"

#define READ_OUT "fuseline_fuses_read.txt"
#define READ_LIST "fuseline_fuses_to_read.xml"

/* ---- BR_CID ------------------------------------------------------------- */

bool bsp_br_cid_line(const char *line, char out[BSP_BR_CID_LEN + 1])
{
        const char *p = strstr(line, "BR_CID:");
        size_t n = 0;

        if (!p)
                return false;
        p += 7;
        while (*p == ' ' || *p == '\t')
                p++;
        if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
                return false;
        p += 2;
        while (n < BSP_BR_CID_LEN && isxdigit((unsigned char)p[n]))
                n++;
        if (n != BSP_BR_CID_LEN || isxdigit((unsigned char)p[n]))
                return false;
        for (size_t i = 0; i < n; i++)
                out[i] = (char)toupper((unsigned char)p[i]);
        out[n] = 0;
        return true;
}

static int check_br_cid(fl_ctx *ctx, const char *br_cid)
{
        size_t n = strlen(br_cid);
        if (n != BSP_BR_CID_LEN)
                return fl_err(ctx, -EINVAL, "BR_CID '%s': expected %d hex digits", br_cid, BSP_BR_CID_LEN);
        for (size_t i = 0; i < n; i++)
                if (hex_digit((unsigned char)br_cid[i]) < 0)
                        return fl_err(ctx, -EINVAL, "BR_CID '%s': not hex", br_cid);
        return 0;
}

int bsp_br_cid_decode(fl_ctx *ctx, const char *br_cid, struct bsp_fuse_level *ret)
{
        struct bsp_fuse_level fl = { .chip = FL_CHIP_NONE };
        int r = check_br_cid(ctx, br_cid), e0, e1;

        if (r < 0)
                return r;
        e0 = hex_digit((unsigned char)br_cid[0]);
        e1 = hex_digit((unsigned char)br_cid[1]);
        if (br_cid[4] == '2' && br_cid[5] == '3') {
                /* T234: E[0] & 8 production; E[1] = auth [2:0] + SBK (8).
                 * Other E[0] bits and auth codes 6/7 are described nowhere:
                 * an error naming them, never a guess. */
                fl.chip = FL_CHIP_T234;
                if (e0 & 7)
                        return fl_err(ctx, -EINVAL, "BR_CID 0x%s: fuse-level digit E[0] = %c has bits the reference does "
                                      "not describe (only 8, production mode)", br_cid, br_cid[0]);
                if ((e1 & 7) > 5)
                        return fl_err(ctx, -EINVAL, "BR_CID 0x%s: auth scheme %d in E[1] is not one the reference "
                                      "describes (1 RSA-3K .. 5 XMSS)", br_cid, e1 & 7);
                fl.production = e0 & 8;
                fl.auth = (uint32_t)e1 & 7;
                fl.sbk = e1 & 8;
        } else if (br_cid[4] == '1' && br_cid[5] == '9') {
                /* T194: E[0] = production (8) | SBK (4) | auth [1:0]; odmfuse
                 * knows a T194 BR_CID by E[1:3] == "80" too. [I] */
                fl.chip = FL_CHIP_T194;
                if (br_cid[1] != '8' || br_cid[2] != '0')
                        return fl_err(ctx, -EINVAL, "BR_CID 0x%s: E[1:3] = '%.2s', a T194 BR_CID has '80' there",
                                      br_cid, br_cid + 1);
                fl.production = e0 & 8;
                fl.auth = (uint32_t)e0 & 3;
                fl.sbk = e0 & 4;
        } else {
                return fl_err(ctx, -EINVAL, "BR_CID 0x%s: chip id '%.2s' is neither T234 (23) nor T194 (19)",
                              br_cid, br_cid + 4);
        }
        *ret = fl;
        return 0;
}

int bsp_ecid_from_br_cid(fl_ctx *ctx, enum fl_chip chip, const char *br_cid, char out[BSP_BR_CID_LEN + 1])
{
        struct bsp_fuse_level fl;
        int r = bsp_br_cid_decode(ctx, br_cid, &fl);

        if (r < 0)
                return r;
        if (chip != FL_CHIP_NONE && fl.chip != chip)
                return fl_err(ctx, -EINVAL, "BR_CID 0x%s names chip %s, expected %s", br_cid, chip_name(fl.chip),
                              chip_name(chip));
        for (size_t i = 0; i < BSP_BR_CID_LEN; i++)
                out[i] = (char)tolower((unsigned char)br_cid[i]);
        out[BSP_BR_CID_LEN] = 0;
        out[0] = '0';
        if (fl.chip == FL_CHIP_T234)
                out[1] = '0';
        return 0;
}

/* ---- working copies ------------------------------------------------------ */

static bool numeric_name(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

static int rm_rf_at(int dfd, const char *name)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *d;
                struct dirent *e;
                if (fd < 0)
                        return -errno;
                d = fdopendir(fd);
                if (!d) {
                        close(fd);
                        return -errno;
                }
                while ((e = readdir(d)))
                        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                                rm_rf_at(dirfd(d), e->d_name);
                closedir(d);
                return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
        }
        return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

void bsp_tree_remove(const char *path)
{
        (void)rm_rf_at(AT_FDCWD, path);
}

int bsp_workdir_clean(fl_ctx *ctx, const char *workdir)
{
        DIR *d = opendir(workdir);
        struct dirent *e;
        int r = 0;

        if (!d)
                return fl_err(ctx, -errno, "%s: %s", workdir, strerror(errno));
        while ((e = readdir(d))) {
                /* rcm_state: tegrarcm_v2's session file (stale = broken
                 * session logic); numeric dirs: tegraflash's temporaries. */
                if (!strcmp(e->d_name, "rcm_state") || numeric_name(e->d_name)) {
                        int k = rm_rf_at(dirfd(d), e->d_name);
                        if (k < 0 && !r)
                                r = fl_err(ctx, k, "%s/%s: cannot remove: %s", workdir, e->d_name, strerror(-k));
                }
        }
        closedir(d);
        return r;
}

int bsp_workdir_prepare(fl_ctx *ctx, const char *bootloader_dir, const char *workdir, const char *const *envp)
{
        struct proc_result pr;
        char *src = NULL, rbuf[64];
        int r;

        if (mkdir(workdir, 0700) < 0)
                return fl_err(ctx, -errno, "%s: cannot create the working copy: %s", workdir, strerror(errno));
        if (asprintf(&src, "%s/.", bootloader_dir) < 0)
                return -ENOMEM;
        {
                /* cp -a keeps modes (the tools are executables) and copies
                 * links as links; each device gets its own files because
                 * tegraflash writes next to its inputs. */
                const char *argv[] = { "cp", "-a", "--", src, workdir, NULL };
                struct proc_opts po = { .argv = argv, .envp = envp, .timeout_ms = 300000 };
                r = proc_run(ctx, &po, &pr);
        }
        free(src);
        if (r < 0)
                return r;
        if (!pr.exited || pr.status != 0)
                return fl_err(ctx, -EIO, "copying %s to %s failed (%s)", bootloader_dir, workdir,
                              proc_result_text(&pr, rbuf, sizeof(rbuf)));
        return bsp_workdir_clean(ctx, workdir);
}

/* ---- running tegraflash ---------------------------------------------------- */

struct step_ctx {
        const struct bsp_dev *dev;
        struct bsp_step *step;
};

static void step_line(const char *line, void *data)
{
        struct step_ctx *sc = data;
        char cid[BSP_BR_CID_LEN + 1];
        const char *p = line;

        while (*p == ' ' || *p == '\t')
                p++;
        if (*p)
                snprintf(sc->step->last_line, sizeof(sc->step->last_line), "%s", p);
        if (!*sc->step->first_error && (strstr(p, "Error") || strstr(p, "ERROR")))
                snprintf(sc->step->first_error, sizeof(sc->step->first_error), "%s", p);
        if (bsp_br_cid_line(line, cid)) {
                if (sc->dev->expect_br_cid && strcasecmp(cid, sc->dev->expect_br_cid) &&
                    !sc->step->br_cid_mismatch) {
                        /* Another board on this port: stop the tool before
                         * its run reaches the burn. */
                        sc->step->br_cid_mismatch = true;
                        memcpy(sc->step->other_br_cid, cid, sizeof(cid));
                        sc->step->abort = 1;
                }
                /* Two different BR_CIDs in one run: the board was swapped
                 * under the tool. Keep the first; flag by clearing. */
                if (sc->step->have_br_cid && strcmp(sc->step->br_cid, cid))
                        sc->step->br_cid[0] = '?';
                else if (!sc->step->have_br_cid) {
                        memcpy(sc->step->br_cid, cid, sizeof(cid));
                        sc->step->have_br_cid = true;
                }
        }
        if (strstr(line, "No device on specified bus-port") || strstr(line, "No devices found")) {
                sc->step->no_device = true;
                snprintf(sc->step->first_error, sizeof(sc->step->first_error), "%s", p);
        }
        if (!strcmp(p, "Finish") || !strncmp(p, "Finish ", 7))
                sc->step->saw_finish = true;
        if (sc->dev->on_line)
                sc->dev->on_line(line, sc->dev->data);
}

/* proc_run with step_line watching the output (BR_CID, errors, the last
 * line, another board's BR_CID stopping the run). */
static int run_watched(fl_ctx *ctx, const struct bsp_dev *dev, struct proc_opts *po, struct bsp_step *step)
{
        struct step_ctx sc = { dev, step };

        po->on_line = step_line;
        po->data = &sc;
        po->abort = &step->abort;
        return proc_run(ctx, po, &step->pr);
}

static int run_tool(fl_ctx *ctx, const struct bsp_dev *dev, const char *stepname, const char *const *argv,
                    struct bsp_step *step)
{
        int r;

        memset(step, 0, sizeof(*step));
        snprintf(step->log_path, sizeof(step->log_path), "%s/%s-%s.log", dev->log_dir, dev->instance, stepname);
        r = bsp_workdir_clean(ctx, dev->workdir);
        if (r < 0)
                return r;
        {
                struct proc_opts po = { .argv = argv, .envp = dev->envp, .cwd = dev->workdir,
                                        .log_path = step->log_path, .timeout_ms = dev->timeout_ms };
                r = run_watched(ctx, dev, &po, step);
        }
        if (r < 0)
                return r;
        if (step->br_cid_mismatch)
                return fl_err(ctx, -ENODEV, "%s: another board answered on this port (BR_CID 0x%s, expected 0x%s): "
                              "%s stopped (log %s)", dev->instance, step->other_br_cid, dev->expect_br_cid, stepname,
                              step->log_path);
        if (step->pr.timed_out)
                return fl_err(ctx, -ETIMEDOUT, "%s: %s hung and was killed after %d s (log %s)", dev->instance,
                              stepname, dev->timeout_ms / 1000, step->log_path);
        return 0;
}

/* argv = ./tegraflash.py ARGS --instance I [--skipuid] --cmd CMD */
static int tegraflash_argv(const struct bsp_dev *dev, const char *cmd, const char ***ret)
{
        size_t n = 0, k = 0;
        const char **argv;

        while (dev->tf_args && dev->tf_args[n])
                n++;
        argv = calloc(n + 8, sizeof(*argv));
        if (!argv)
                return -ENOMEM;
        argv[k++] = "./tegraflash.py";
        for (size_t i = 0; i < n; i++)
                argv[k++] = dev->tf_args[i];
        argv[k++] = "--instance";
        argv[k++] = dev->instance;
        if (dev->skipuid)
                argv[k++] = "--skipuid";
        argv[k++] = "--cmd";
        argv[k++] = cmd;
        argv[k] = NULL;
        *ret = argv;
        return 0;
}

static int write_read_list(fl_ctx *ctx, const char *path, const char *const *names, size_t n)
{
        size_t cap = 128 + n * 64, len = 0;
        char *buf = malloc(cap);
        int r;

        if (!buf)
                return -ENOMEM;
        /* The read form of genericfuse: names only (odmfuse.func's
         * fuses_to_read.xml). */
        len += (size_t)snprintf(buf + len, cap - len, "<genericfuse MagicId=\"0x45535546\" version=\"1.0.0\">\n");
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(buf + len, cap - len, "  <fuse name=\"%s\"/>\n", names[i]);
        len += (size_t)snprintf(buf + len, cap - len, "</genericfuse>\n");
        r = file_write_atomic(ctx, path, buf, len, 0600);
        free(buf);
        return r;
}

int bsp_readfuses(fl_ctx *ctx, const struct bsp_dev *dev, const char *const *names, size_t n_names,
                  struct bsp_step *step, struct fuse_readback **ret_rb)
{
        char *out = NULL, *list = NULL, *cmd = NULL;
        const char **argv = NULL;
        unsigned char *data = NULL;
        struct fuse_readback *rb = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        if (asprintf(&out, "%s/%s", dev->workdir, READ_OUT) < 0 || asprintf(&list, "%s/%s", dev->workdir, READ_LIST) < 0) {
                r = -ENOMEM;
                goto out;
        }
        /* A file left by an earlier run must never pass for this one. */
        if (unlink(out) < 0 && errno != ENOENT) {
                r = fl_err(ctx, -errno, "%s: cannot remove: %s", out, strerror(errno));
                goto out;
        }
        r = write_read_list(ctx, list, names, n_names);
        if (r < 0)
                goto out;
        /* The reboot is not optional: without it the MB2 applet stays up and
         * a later burnfuses burns nothing while saying "Finish". Absolute
         * paths, so where tegraflash runs its steps does not matter. */
        if (asprintf(&cmd, "readfuses %s %s; reboot recovery", out, list) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = tegraflash_argv(dev, cmd, &argv);
        if (r < 0)
                goto out;
        r = run_tool(ctx, dev, "readfuses", argv, step);
        if (r < 0)
                goto out;
        /* The exit status is ignored: with no device readfuses exits 0 and
         * writes nothing. Only the file counts. */
        if (stat(out, &st) < 0) {
                if (errno != ENOENT) {
                        r = fl_err(ctx, -errno, "%s: %s", out, strerror(errno));
                        goto out;
                }
                r = fl_err(ctx, -ENODEV, "%s: readfuses wrote no fuse values (%s; the tool said: %s; log %s)",
                           dev->instance,
                           step->no_device ? "device not there"
                                           : "device not answering: if a step was killed, reset the board into "
                                             "recovery mode",
                           *step->first_error ? step->first_error : *step->last_line ? step->last_line : "nothing",
                           step->log_path);
                goto out;
        }
        r = file_read(ctx, out, FUSE_READBACK_MAX_BYTES, &data, &len);
        if (r < 0)
                goto out;
        r = fuse_readback_parse(ctx, out, (const char *)data, len, dev->chip, &rb);
        if (r < 0) {
                r = fl_err(ctx, -EBADMSG, "%s: readfuses output is malformed (%s; log %s)", dev->instance,
                           fl_ctx_last_error(ctx), step->log_path);
                goto out;
        }
        for (size_t i = 0; i < n_names; i++)
                if (!fuse_readback_find(rb, names[i])) {
                        /* readfuses writes as it goes: a run that died half
                         * way leaves a partial file. */
                        r = fl_err(ctx, -EBADMSG, "%s: readfuses output lacks %s (partial read; log %s)",
                                   dev->instance, names[i], step->log_path);
                        goto out;
                }
        *ret_rb = rb;
        rb = NULL;
        r = 0;
out:
        fuse_readback_free(rb);
        free(data);
        free(argv);
        free(cmd);
        free(out);
        free(list);
        return r;
}

int bsp_burnfuses(fl_ctx *ctx, const struct bsp_dev *dev, const char *cmd, struct bsp_step *step)
{
        const char **argv = NULL;
        int r = tegraflash_argv(dev, cmd, &argv);

        if (r < 0)
                return r;
        r = run_tool(ctx, dev, "burnfuses", argv, step);
        free(argv);
        if (r < 0)
                return r;
        if (step->no_device)
                return fl_err(ctx, -ENODEV, "%s: burnfuses: device not there (%s; log %s)", dev->instance,
                              step->first_error, step->log_path);
        return 0;
}

int bsp_read_uid(fl_ctx *ctx, const struct bsp_dev *dev, struct bsp_step *step)
{
        const char *argv[] = { "./tegrarcm_v2", "--instance", dev->instance, "--uid", NULL };
        int r = run_tool(ctx, dev, "uid", argv, step);

        if (r < 0)
                return r;
        if (step->no_device)
                return fl_err(ctx, -ENODEV, "%s: device not there (log %s)", dev->instance, step->log_path);
        if (!step->have_br_cid)
                return fl_err(ctx, -ENODEV, "%s: tegrarcm_v2 --uid printed no BR_CID (%s; log %s)", dev->instance,
                              *step->last_line ? step->last_line : "no output", step->log_path);
        return 0;
}

/* ---- packages ------------------------------------------------------------ */

static bool path_escapes(const char *p)
{
        const char *s = p;

        if (*p == '/')
                return true;
        while (*s) {
                const char *e = strchr(s, '/');
                size_t n = e ? (size_t)(e - s) : strlen(s);
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return true;
                if (!e)
                        break;
                s = e + 1;
        }
        return false;
}


/* One line of `tar -tvf`: "mode owner size date time name[ -> target]". */
int bsp_package_entry_check(fl_ctx *ctx, const char *line)
{
        char name[PROC_LINE_MAX + 1], *arrow;
        const char *p = line;
        int field = 0;

        if (line[0] != '-' && line[0] != 'd' && line[0] != 'l')
                return fl_err(ctx, -EINVAL, "fuse package entry '%.200s': only files, directories and links are allowed",
                              line);
        /* Skip 5 whitespace-separated fields to reach the name. */
        while (*p && field < 5) {
                while (*p && *p != ' ')
                        p++;
                while (*p == ' ')
                        p++;
                field++;
        }
        snprintf(name, sizeof(name), "%s", p);
        arrow = line[0] == 'l' ? strstr(name, " -> ") : NULL;
        if (arrow) {
                *arrow = 0;
                if (!arrow[4] || path_escapes(arrow + 4))
                        return fl_err(ctx, -EINVAL, "fuse package entry '%.200s': link to '%.200s' points outside the "
                                      "package", name, arrow + 4);
        } else if (line[0] == 'l') {
                return fl_err(ctx, -EINVAL, "fuse package entry '%.200s': a link without a target", name);
        }
        if (!*name || path_escapes(name))
                return fl_err(ctx, -EINVAL, "fuse package entry '%.200s': path outside the package", name);
        return 0;
}

struct list_ctx {
        fl_ctx *ctx;
        int r;
        size_t entries;
};

static void list_line(const char *line, void *data)
{
        struct list_ctx *lc = data;

        if (lc->r < 0 || !*line)
                return;
        lc->entries++;
        lc->r = bsp_package_entry_check(lc->ctx, line);
}

int bsp_package_extract(fl_ctx *ctx, const char *tbz2, const char *dir, const char *const *envp)
{
        struct list_ctx lc = { ctx, 0, 0 };
        struct proc_result pr;
        char rbuf[64];
        int r;

        {
                const char *argv[] = { "tar", "--numeric-owner", "-tvjf", tbz2, NULL };
                struct proc_opts po = { .argv = argv, .envp = envp, .timeout_ms = 300000, .on_line = list_line,
                                        .data = &lc };
                r = proc_run(ctx, &po, &pr);
        }
        if (r < 0)
                return r;
        if (lc.r < 0)
                return lc.r;
        if (!pr.exited || pr.status != 0 || lc.entries == 0)
                return fl_err(ctx, -EINVAL, "%s: not a readable fuse package (tar: %s)", tbz2,
                              proc_result_text(&pr, rbuf, sizeof(rbuf)));
        {
                const char *argv[] = { "tar", "--no-same-owner", "--no-overwrite-dir", "-xjf", tbz2, "-C", dir, NULL };
                struct proc_opts po = { .argv = argv, .envp = envp, .timeout_ms = 300000 };
                r = proc_run(ctx, &po, &pr);
        }
        if (r < 0)
                return r;
        if (!pr.exited || pr.status != 0)
                return fl_err(ctx, -EINVAL, "%s: extracting the fuse package failed (tar: %s)", tbz2,
                              proc_result_text(&pr, rbuf, sizeof(rbuf)));
        return 0;
}

int bsp_odmfuse_package(fl_ctx *ctx, const char *bsp_dir, enum fl_chip chip, const struct odm_board *b,
                        const char *xml_path, bool test, const char *out, const char *log_path,
                        const char *const *envp, int timeout_ms)
{
        char **env = NULL, *blob = NULL, rbuf[64], *extra[10] = { 0 };
        struct bsp_dev dev = { .instance = "odmfuse" };
        struct bsp_step step = { 0 };
        const struct proc_result *pr = &step.pr;
        size_t n = 0;
        struct stat st;
        int r = 0;
        const struct { const char *name, *value; } vars[] = {
                { "FAB", b->fab }, { "BOARDID", b->boardid }, { "BOARDSKU", b->boardsku },
                { "BOARDREV", b->boardrev }, { "CHIPREV", b->chiprev }, { "CHIP_SKU", b->chip_sku },
                { "FUSELEVEL", *b->fuselevel ? b->fuselevel : "fuselevel_production" },
                { "board_sku", b->board_sku }, { "board_FAB", b->board_fab },
        };

        if (lstat(out, &st) == 0)
                return fl_err(ctx, -EEXIST, "%s exists already; fuseline never replaces a fuse package", out);
        if (asprintf(&blob, "%s/fuseblob.tbz2", bsp_dir) < 0)
                return -ENOMEM;
        /* A package from an earlier run must not pass for this one. */
        if (unlink(blob) < 0 && errno != ENOENT) {
                r = fl_err(ctx, -errno, "%s: cannot remove: %s", blob, strerror(errno));
                goto out;
        }
        /* The offline board values: odmfuse.sh reads them from its
         * environment (offline mode), beside the caller's scrubbed one. */
        for (size_t i = 0; i < FL_ARRAY_SIZE(vars); i++)
                if (*vars[i].value && asprintf(&extra[n++], "%s=%s", vars[i].name, vars[i].value) < 0) {
                        extra[--n] = NULL;
                        r = -ENOMEM;
                        goto out;
                }
        r = proc_env_extend(envp, (const char *const *)extra, &env);
        if (r < 0)
                goto out;
        {
                const char *argv[] = { "./odmfuse.sh", "--noburn", "-i", chip == FL_CHIP_T194 ? "0x19" : "0x23",
                                       "-X", xml_path, "--auth", "NS", test ? "--test" : b->board,
                                       test ? b->board : NULL, NULL };
                struct proc_opts po = { .argv = argv, .envp = (const char *const *)env, .cwd = bsp_dir,
                                        .log_path = log_path, .timeout_ms = timeout_ms };
                r = run_watched(ctx, &dev, &po, &step);
        }
        if (r < 0)
                goto out;
        if (pr->timed_out) {
                r = fl_err(ctx, -ETIMEDOUT, "odmfuse.sh --noburn hung and was killed (log %s)", log_path);
                goto out;
        }
        if (!pr->exited || pr->status != 0 || stat(blob, &st) < 0) {
                r = fl_err(ctx, -EIO, "odmfuse.sh --noburn failed (%s): %s (log %s)",
                           proc_result_text(pr, rbuf, sizeof(rbuf)),
                           *step.first_error ? step.first_error : *step.last_line ? step.last_line : "no output",
                           log_path);
                goto out;
        }
        /* link+unlink: never replaces out, even if it appeared meanwhile. */
        if (link(blob, out) < 0) {
                unsigned char *data = NULL;
                size_t len = 0;
                if (errno != EXDEV) {
                        r = fl_err(ctx, errno == EEXIST ? -EEXIST : -errno, "%s: cannot write: %s", out,
                                   strerror(errno));
                        goto out;
                }
                r = file_read(ctx, blob, (size_t)1 << 31, &data, &len);
                if (r >= 0)
                        r = file_write_new(ctx, out, data, len, 0600);
                free(data);
                if (r < 0)
                        goto out;
        }
        unlink(blob);
        /* The package carries fuse key values (the blob in the MB2 image). */
        if (chmod(out, 0600) < 0) {
                r = fl_err(ctx, -errno, "%s: %s", out, strerror(errno));
                goto out;
        }
        r = 0;
out:
        for (size_t i = 0; i < n; i++)
                free(extra[i]);
        proc_env_free(env);
        free(blob);
        return r;
}

int bsp_fuse_types_learn(fl_ctx *ctx, const char *bsp_dir, enum fl_chip chip, const char *const *names,
                         const char *const *envp, const char *log_path, int timeout_ms)
{
        char dir[] = "/tmp/fuseline-types-XXXXXX", parser[PATH_MAX + 32], out[PATH_MAX + 16], rbuf[64], abs[PATH_MAX];
        int r = 0;

        if (!realpath(bsp_dir, abs))
                return fl_err(ctx, -ENOENT, "%s: %s", bsp_dir, strerror(errno));
        if (snprintf(parser, sizeof(parser), "%s/bootloader/tegraparser_v2", abs) >= (int)sizeof(parser))
                return fl_err(ctx, -EINVAL, "%s: path too long", bsp_dir);
        if (access(parser, X_OK) < 0)
                return fl_err(ctx, -ENOENT, "%s: %s", parser, strerror(errno));
        if (!mkdtemp(dir))
                return fl_err(ctx, -errno, "cannot make a working directory: %s", strerror(errno));
        snprintf(out, sizeof(out), "%s/fusetype.bin", dir);
        for (size_t i = 0; names[i] && r == 0; i++) {
                /* tegraflash asks the T234 parser without --chip (its default). */
                const char *argv[] = { parser, "--read_fusetype", names[i], out, NULL };
                const char *argv19[] = { parser, "--chip", "0x19", "0", "--read_fusetype", names[i], out, NULL };
                struct proc_opts po = { .argv = chip == FL_CHIP_T194 ? argv19 : argv, .envp = envp, .cwd = dir,
                                        .log_path = log_path, .timeout_ms = timeout_ms };
                struct proc_result pr = { 0 };
                unsigned char *data = NULL;
                size_t len = 0;

                (void)unlink(out);
                r = proc_run(ctx, &po, &pr);
                if (r < 0)
                        break;
                if (!pr.exited || pr.status != 0) {
                        r = fl_err(ctx, -EIO, "the BSP's tegraparser_v2 does not know the fuse-blob type of %s (%s)",
                                   names[i], proc_result_text(&pr, rbuf, sizeof(rbuf)));
                        break;
                }
                r = file_read(ctx, out, 64, &data, &len);
                if (r == 0 && len != 8)
                        r = fl_err(ctx, -EIO, "the BSP's tegraparser_v2 wrote %zu bytes for %s, not {type, size}", len,
                                   names[i]);
                if (r == 0)
                        r = fuse_blob_type_learn(ctx, chip, names[i],
                                                 (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                                                         (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24,
                                                 (uint32_t)data[4] | (uint32_t)data[5] << 8 |
                                                         (uint32_t)data[6] << 16 | (uint32_t)data[7] << 24);
                free(data);
        }
        (void)unlink(out);
        (void)rmdir(dir);
        return r;
}
