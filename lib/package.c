/* package.c — the offline fuse package: fusecmd.sh parsed like the shell
 * would, but only the one form odmfuse.sh --noburn writes; the files it
 * names kept inside bootloader/; what the package burns (T234: the fuse blob
 * at the tail of the FSKP MB2 image; T194: its XML); and the check that it
 * burns exactly the plan, in the mode asked for. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "fuse_blob.h"
#include "fuse_xml.h"
#include "package.h"

struct fuse_package {
        char *dir;   /* as given */
        char *bldir; /* realpath of dir/bootloader */
        struct fusecmd *fc;
};

/* ---- fusecmd.sh ---------------------------------------------------------- */

/* Untrusted text for a message: printable, at most 40 characters. */
static const char *shown(const char *s, size_t n, char buf[48])
{
        size_t i = 0;

        for (; i < n && s[i] && i < 40; i++)
                buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
        buf[i] = 0;
        if (i == 40 && i < n && s[i])
                strcpy(buf + 37, "...");
        return buf;
}

struct words {
        char **v;
        size_t n, cap;
};

static void words_free(struct words *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        free(w->v);
        memset(w, 0, sizeof(*w));
}

static int words_add(struct words *w, const char *s, size_t n)
{
        char *c;

        if (w->n + 2 > w->cap) {
                size_t ncap = w->cap ? 2 * w->cap : 32;
                char **nv = realloc(w->v, ncap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                w->v = nv;
                w->cap = ncap;
        }
        c = strndup(s, n);
        if (!c)
                return -ENOMEM;
        w->v[w->n++] = c;
        w->v[w->n] = NULL;
        return 0;
}

static const char *unquoted_what(char c)
{
        switch (c) {
        case '$': return "'$' (shell expansion)";
        case '`': return "'`' (command substitution)";
        case ';': return "';' (command separator)";
        case '|': return "'|' (pipe)";
        case '&': return "'&' (background or and-list)";
        case '<': case '>': return "a redirection";
        case '*': case '?': case '[': case ']': return "a glob character";
        case '\\': return "an unquoted backslash";
        case '#': return "'#' (comment)";
        case '~': return "'~' (tilde expansion)";
        case '(': case ')': return "a parenthesis (subshell)";
        case '{': case '}': return "a brace (brace expansion)";
        default: return NULL;
        }
}

/* Split the eval'd command into words as the shell would, for the subset
 * odmfuse.sh writes: plain words from a safe character set and double-quoted
 * strings. */
static int split_words(fl_ctx *ctx, const char *name, unsigned line, size_t col0, const char *s, size_t n,
                       struct words *w)
{
        char *buf = malloc(n + 1);
        size_t bl = 0, i = 0;
        bool in_word = false;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        while (i < n) {
                char c = s[i];

                if (c == ' ' || c == '\t') {
                        if (in_word && (r = words_add(w, buf, bl)) < 0)
                                goto out;
                        in_word = false;
                        bl = 0;
                        i++;
                        continue;
                }
                in_word = true;
                if (c == '"') {
                        size_t start = i++;
                        for (;;) {
                                if (i >= n) {
                                        r = fl_err(ctx, -EINVAL, "%s line %u: unterminated double quote at column %zu",
                                                   name, line, col0 + start + 1);
                                        goto out;
                                }
                                c = s[i];
                                if (c == '"')
                                        break;
                                if (c == '\\' && i + 1 < n && strchr("$`\"\\", s[i + 1])) {
                                        buf[bl++] = s[i + 1];
                                        i += 2;
                                        continue;
                                }
                                if (c == '$' || c == '`') {
                                        r = fl_err(ctx, -EINVAL, "%s line %u column %zu: %s inside double quotes is refused",
                                                   name, line, col0 + i + 1, unquoted_what(c));
                                        goto out;
                                }
                                if (!isprint((unsigned char)c) && c != '\t') {
                                        r = fl_err(ctx, -EINVAL, "%s line %u column %zu: non-printable byte 0x%02x",
                                                   name, line, col0 + i + 1, (unsigned char)c);
                                        goto out;
                                }
                                buf[bl++] = c;
                                i++;
                        }
                        i++; /* the closing quote */
                        continue;
                }
                if (isalnum((unsigned char)c) || strchr("_./:,=+@%-", c)) {
                        buf[bl++] = c;
                        i++;
                        continue;
                }
                if (unquoted_what(c))
                        r = fl_err(ctx, -EINVAL, "%s line %u column %zu: %s outside quotes is refused", name, line,
                                   col0 + i + 1, unquoted_what(c));
                else if (isprint((unsigned char)c))
                        r = fl_err(ctx, -EINVAL, "%s line %u column %zu: shell character '%c' outside quotes is refused",
                                   name, line, col0 + i + 1, c);
                else
                        r = fl_err(ctx, -EINVAL, "%s line %u column %zu: non-printable byte 0x%02x", name, line,
                                   col0 + i + 1, (unsigned char)c);
                goto out;
        }
        if (in_word)
                r = words_add(w, buf, bl);
out:
        free(buf);
        return r;
}

/* A path the package names: relative, without "..", not empty. */
static int check_rel_path(fl_ctx *ctx, const char *name, const char *what, const char *p)
{
        char b[48];
        const char *c = p;

        if (!*p)
                return fl_err(ctx, -EINVAL, "%s: %s is empty", name, what);
        if (*p == '/')
                return fl_err(ctx, -EINVAL, "%s: %s '%s' is an absolute path; a package names files inside bootloader/",
                              name, what, shown(p, strlen(p), b));
        while (*c) {
                size_t k = strcspn(c, "/");
                if (k == 2 && c[0] == '.' && c[1] == '.')
                        return fl_err(ctx, -EINVAL, "%s: %s '%s' leaves bootloader/ (..)", name, what,
                                      shown(p, strlen(p), b));
                c += k;
                while (*c == '/')
                        c++;
        }
        return 0;
}

/* Every non-option word is checked as a possible path (comma lists too):
 * tegraflash resolves them from bootloader/. */
static int check_word_paths(fl_ctx *ctx, const char *name, const char *word)
{
        char *copy = strdup(word), *save = NULL;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        if (*word == '/') {
                r = check_rel_path(ctx, name, "an argument", word);
                goto out;
        }
        for (char *t = strtok_r(copy, ", ;", &save); t; t = strtok_r(NULL, ", ;", &save))
                if ((r = check_rel_path(ctx, name, "an argument", t)) < 0)
                        break;
out:
        free(copy);
        return r;
}

enum { W_CHIP, W_CMD, W_BINS, W_INSTANCE };
static const char *const watched[] = { [W_CHIP] = "chip", [W_CMD] = "cmd", [W_BINS] = "bins",
                                       [W_INSTANCE] = "instance" };

static bool safe_file_name(const char *s)
{
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("._-/+", *s))
                        return false;
        return true;
}

static int parse_cmd(fl_ctx *ctx, const char *name, const char *v, struct fusecmd *fc)
{
        struct words w = { 0 };
        char b[48];
        int r;

        if ((r = split_words(ctx, name, 0, 0, v, strlen(v), &w)) == -ENOMEM)
                goto out;
        if (r < 0)
                goto bad;
        if (w.n == 2 && !strcmp(w.v[0], "burnfuses")) {
                fc->form = PACKAGE_BURN;
        } else if (w.n == 3 && !strcmp(w.v[0], "burnfuses") && !strcmp(w.v[1], "dummy")) {
                fc->form = PACKAGE_BURN_DUMMY;
        } else {
                r = -EINVAL;
                goto bad;
        }
        if (!safe_file_name(w.v[w.n - 1]) || strlen(w.v[w.n - 1]) < 5 ||
            strcmp(w.v[w.n - 1] + strlen(w.v[w.n - 1]) - 4, ".xml")) {
                r = fl_err(ctx, -EINVAL, "%s: --cmd names '%s', not a plain .xml file name", name,
                           shown(w.v[w.n - 1], strlen(w.v[w.n - 1]), b));
                goto out;
        }
        if ((r = check_rel_path(ctx, name, "the --cmd XML", w.v[w.n - 1])) < 0)
                goto out;
        fc->xml = strdup(w.v[w.n - 1]);
        fc->cmd = strdup(v);
        r = fc->xml && fc->cmd ? 0 : -ENOMEM;
        goto out;
bad:
        r = fl_err(ctx, -EINVAL,
                   "%s: --cmd \"%s\" is not \"burnfuses <xml>\" or \"burnfuses dummy <xml>\" (the only commands an "
                   "offline fuse package holds)",
                   name, shown(v, strlen(v), b));
out:
        words_free(&w);
        return r;
}

/* --bins "kind file; kind file; …" */
static int parse_bins(fl_ctx *ctx, const char *name, const char *v, struct fusecmd *fc)
{
        char *copy = strdup(v), *save = NULL, *kinds[64];
        size_t nk = 0;
        char b[48];
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (char *e = strtok_r(copy, ";", &save);; e = strtok_r(NULL, ";", &save)) {
                char *kind, *file, *rest;

                if (!e)
                        break;
                kind = e + strspn(e, " \t");
                file = kind + strcspn(kind, " \t");
                if (*file)
                        *file++ = 0;
                file += strspn(file, " \t");
                rest = file + strcspn(file, " \t");
                if (*rest)
                        *rest++ = 0;
                rest += strspn(rest, " \t");
                if (!*kind || !*file || *rest) {
                        r = fl_err(ctx, -EINVAL, "%s: --bins entry '%s' is not \"kind file\"", name,
                                   shown(e, strlen(e), b));
                        goto out;
                }
                for (const char *k = kind; *k; k++)
                        if (!islower((unsigned char)*k) && !isdigit((unsigned char)*k) && *k != '_') {
                                r = fl_err(ctx, -EINVAL, "%s: --bins kind '%s' is not a tegraflash image kind", name,
                                           shown(kind, strlen(kind), b));
                                goto out;
                        }
                for (size_t i = 0; i < nk; i++)
                        if (!strcmp(kinds[i], kind)) {
                                r = fl_err(ctx, -EINVAL, "%s: --bins names %s twice", name, shown(kind, strlen(kind), b));
                                goto out;
                        }
                if (nk == FL_ARRAY_SIZE(kinds)) {
                        r = fl_err(ctx, -EINVAL, "%s: --bins has more than %zu entries", name, FL_ARRAY_SIZE(kinds));
                        goto out;
                }
                kinds[nk++] = kind;
                if ((r = check_rel_path(ctx, name, "a --bins file", file)) < 0)
                        goto out;
                if (!strcmp(kind, "mb2_bootloader") && !(fc->mb2 = strdup(file))) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (!nk)
                r = fl_err(ctx, -EINVAL, "%s: --bins is empty", name);
out:
        free(copy);
        return r;
}

static int parse_chip(fl_ctx *ctx, const char *name, const char *v, struct fusecmd *fc)
{
        char first[8] = "", b[48];
        size_t k = strcspn(v, " ");
        const char *rest = v + k;

        if (k < sizeof(first))
                memcpy(first, v, k);
        first[k < sizeof(first) ? k : 0] = 0;
        /* "0x23" or "0x23 0" (chip id, then an optional major revision). */
        if (*rest) {
                rest++;
                if (!*rest || strspn(rest, "0123456789") != strlen(rest))
                        goto bad;
        }
        if (!strcmp(first, "0x23"))
                fc->chip = FL_CHIP_T234;
        else if (!strcmp(first, "0x19"))
                fc->chip = FL_CHIP_T194;
        else
                goto bad;
        return 0;
bad:
        return fl_err(ctx, -EINVAL, "%s: tegraflash --chip '%s' is neither 0x19 (t194) nor 0x23 (t234)", name,
                      shown(v, strlen(v), b));
}

/* Walk the tegraflash words: pick out --chip, --cmd, --bins; refuse what a
 * per-device run must add itself (--instance) and what argparse would read
 * as one of those (abbreviations, repeats, --opt=value). */
static int parse_args(fl_ctx *ctx, const char *name, struct words *w, struct fusecmd *fc)
{
        struct words argv = { 0 };
        bool seen[FL_ARRAY_SIZE(watched)] = { false };
        char b[48];
        int r = 0;

        if (w->n == 0 || strcmp(w->v[0], "./tegraflash.py")) {
                r = fl_err(ctx, -EINVAL, "%s: the eval line runs '%s', not ./tegraflash.py", name,
                           w->n ? shown(w->v[0], strlen(w->v[0]), b) : "");
                goto out;
        }
        for (size_t i = 1; i < w->n; i++) {
                const char *a = w->v[i];
                size_t which = FL_ARRAY_SIZE(watched);

                if (!strcmp(a, "--")) {
                        /* argparse would take every later word as positional. */
                        r = fl_err(ctx, -EINVAL, "%s: a bare '--' in the tegraflash command is refused", name);
                        goto out;
                }
                if (a[0] == '-' && a[1] == '-') {
                        /* argparse takes any unique prefix and --opt=value:
                         * refuse both for the options fuseline reads or adds. */
                        size_t nl = strcspn(a + 2, "=");
                        for (size_t k = 0; k < FL_ARRAY_SIZE(watched) && which == FL_ARRAY_SIZE(watched); k++)
                                if (nl && nl <= strlen(watched[k]) && !strncmp(a + 2, watched[k], nl))
                                        which = k;
                        if (which < FL_ARRAY_SIZE(watched)) {
                                const char *opt = watched[which];
                                if (nl != strlen(opt) || a[2 + nl] == '=') {
                                        r = fl_err(ctx, -EINVAL,
                                                   "%s: '%s' is how tegraflash would read --%s; write --%s VALUE", name,
                                                   shown(a, strlen(a), b), opt, opt);
                                        goto out;
                                }
                                if (which == W_INSTANCE) {
                                        r = fl_err(ctx, -EINVAL,
                                                   "%s: the package names a device (--instance); fuseline adds "
                                                   "--instance for each device itself",
                                                   name);
                                        goto out;
                                }
                                if (seen[which]) {
                                        r = fl_err(ctx, -EINVAL, "%s: --%s appears twice", name, opt);
                                        goto out;
                                }
                                seen[which] = true;
                                if (i + 1 >= w->n || !strncmp(w->v[i + 1], "--", 2)) {
                                        r = fl_err(ctx, -EINVAL, "%s: --%s has no value", name, opt);
                                        goto out;
                                }
                                i++;
                                if (which == W_CHIP)
                                        r = parse_chip(ctx, name, w->v[i], fc);
                                else if (which == W_CMD)
                                        r = parse_cmd(ctx, name, w->v[i], fc);
                                else
                                        r = parse_bins(ctx, name, w->v[i], fc);
                                if (r < 0)
                                        goto out;
                                if (which == W_CMD)
                                        continue; /* --cmd is not part of argv */
                                if ((r = words_add(&argv, a, strlen(a))) < 0 ||
                                    (r = words_add(&argv, w->v[i], strlen(w->v[i]))) < 0)
                                        goto out;
                                continue;
                        }
                        /* --opt=VALUE: VALUE may be a path like any other. */
                        if (strchr(a, '=') && (r = check_word_paths(ctx, name, strchr(a, '=') + 1)) < 0)
                                goto out;
                } else if ((r = check_word_paths(ctx, name, a)) < 0) {
                        goto out;
                }
                if ((r = words_add(&argv, a, strlen(a))) < 0)
                        goto out;
        }
        if (!seen[W_CHIP] || !seen[W_CMD]) {
                r = fl_err(ctx, -EINVAL, "%s: the tegraflash command has no --%s", name,
                           !seen[W_CHIP] ? "chip" : "cmd");
                goto out;
        }
        /* T234 burns what the FSKP MB2 image carries: without it there is no
         * way to know what the package burns. */
        if (fc->chip == FL_CHIP_T234 && !fc->mb2) {
                r = fl_err(ctx, -EINVAL, "%s: a t234 package must name its FSKP image as mb2_bootloader in --bins",
                           name);
                goto out;
        }
        fc->argv = argv.v;
        fc->argc = argv.n;
        memset(&argv, 0, sizeof(argv));
out:
        words_free(&argv);
        return r;
}

void fusecmd_free(struct fusecmd *fc)
{
        if (!fc)
                return;
        for (size_t i = 0; i < fc->argc; i++)
                free(fc->argv[i]);
        free(fc->argv);
        free(fc->cmd);
        free(fc->xml);
        free(fc->mb2);
        free(fc);
}

#define EXPORT_LINE "export PATH=.:${PATH}"

int fusecmd_parse(fl_ctx *ctx, const char *name, const unsigned char *text, size_t len, struct fusecmd **ret)
{
        const char *s = (const char *)text;
        struct fusecmd *fc = NULL;
        struct words w = { 0 };
        unsigned line = 0, eval_line = 0;
        bool exported = false;
        char b[48];
        int r = 0;

        if (len > FUSECMD_MAX_BYTES)
                return fl_err(ctx, -EINVAL, "%s: %zu bytes; a fusecmd.sh is at most %d", name, len, FUSECMD_MAX_BYTES);
        if (memchr(text, 0, len))
                return fl_err(ctx, -EINVAL, "%s: binary data (NUL byte), not a shell script", name);
        fc = calloc(1, sizeof(*fc));
        if (!fc)
                return -ENOMEM;
        for (size_t pos = 0; pos < len;) {
                const char *l = s + pos, *nl = memchr(l, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - l) : len - pos;

                pos += n + (nl ? 1 : 0);
                line++;
                if (memchr(l, '\r', n)) {
                        r = fl_err(ctx, -EINVAL, "%s line %u: carriage return (DOS line ends) is refused", name, line);
                        goto out;
                }
                while (n && (l[n - 1] == ' ' || l[n - 1] == '\t'))
                        n--;
                if (line == 1) {
                        if (n != 11 || memcmp(l, "#!/bin/bash", 11)) {
                                r = fl_err(ctx, -EINVAL, "%s line 1: '%s' is not #!/bin/bash", name, shown(l, n, b));
                                goto out;
                        }
                        continue;
                }
                if (!n)
                        continue;
                if (eval_line && n >= 4 && !memcmp(l, "eval", 4)) {
                        r = fl_err(ctx, -EINVAL, "%s line %u: a second eval line (the first is line %u) is refused",
                                   name, line, eval_line);
                        goto out;
                }
                if (eval_line) {
                        r = fl_err(ctx, -EINVAL, "%s line %u: '%s' after the eval line (line %u) is refused", name,
                                   line, shown(l, n, b), eval_line);
                        goto out;
                }
                if (n == strlen(EXPORT_LINE) && !memcmp(l, EXPORT_LINE, n)) {
                        if (exported) {
                                r = fl_err(ctx, -EINVAL, "%s line %u: PATH exported twice", name, line);
                                goto out;
                        }
                        exported = true;
                        continue;
                }
                if (n >= 5 && !memcmp(l, "eval", 4) && (l[4] == ' ' || l[4] == '\t')) {
                        /* eval '<command>': the single quotes hand the command
                         * to eval verbatim, which then splits it. */
                        if (n < 8 || memcmp(l, "eval '", 6) || l[n - 1] != '\'' || memchr(l + 6, '\'', n - 7)) {
                                r = fl_err(ctx, -EINVAL,
                                           "%s line %u: the eval line must be eval '<command>' with no other quote "
                                           "characters around or inside the single quotes",
                                           name, line);
                                goto out;
                        }
                        eval_line = line;
                        if ((r = split_words(ctx, name, line, 6, l + 6, n - 7, &w)) < 0)
                                goto out;
                        continue;
                }
                r = fl_err(ctx, -EINVAL,
                           "%s line %u: '%s' is not part of an offline fuse package's fusecmd.sh (only #!/bin/bash, "
                           "export PATH=.:${PATH} and one eval line)",
                           name, line, shown(l, n, b));
                goto out;
        }
        if (!line) {
                r = fl_err(ctx, -EINVAL, "%s: empty file", name);
                goto out;
        }
        if (!eval_line) {
                r = fl_err(ctx, -EINVAL, "%s: no eval './tegraflash.py ...' line", name);
                goto out;
        }
        if ((r = parse_args(ctx, name, &w, fc)) < 0)
                goto out;
        *ret = fc;
        fc = NULL;
out:
        words_free(&w);
        fusecmd_free(fc);
        return r;
}

/* ---- the package directory ------------------------------------------------ */

static char *join(const char *a, const char *b)
{
        char *p = NULL;

        if (asprintf(&p, "%s/%s", a, b) < 0)
                return NULL;
        return p;
}

/* Is the resolved path p inside root (or root itself)? */
static bool inside(const char *root, const char *p)
{
        size_t n = strlen(root);

        return !strncmp(root, p, n) && (p[n] == '/' || p[n] == 0);
}

/* Every symlink under dir must resolve inside root: tegraflash links every
 * file of bootloader/ into its working directory and follows them. */
static int scan_symlinks(fl_ctx *ctx, const char *root, const char *dir, unsigned depth, size_t *budget)
{
        DIR *d;
        struct dirent *e;
        int r = 0;

        if (depth > 16)
                return fl_err(ctx, -EINVAL, "%s: directories nested deeper than 16 levels", dir);
        d = opendir(dir);
        if (!d)
                return fl_err(ctx, -EINVAL, "%s: cannot open: %s", dir, strerror(errno));
        while ((e = readdir(d))) {
                struct stat st;
                char *p;

                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                if (!(*budget)--) {
                        r = fl_err(ctx, -EINVAL, "%s: more files than a fuse package holds", root);
                        break;
                }
                p = join(dir, e->d_name);
                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                if (lstat(p, &st) < 0) {
                        r = fl_err(ctx, -EINVAL, "%s: %s", p, strerror(errno));
                } else if (S_ISLNK(st.st_mode)) {
                        char *real = realpath(p, NULL);
                        if (!real || !inside(root, real))
                                r = fl_err(ctx, -EINVAL, "%s: symlink %s bootloader/; refused", p,
                                           real ? "leads outside" : "does not resolve inside");
                        free(real);
                } else if (S_ISDIR(st.st_mode)) {
                        r = scan_symlinks(ctx, root, p, depth + 1, budget);
                }
                free(p);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

/* A file the package names must be a regular file inside bootloader/. */
static int check_named_file(fl_ctx *ctx, const struct fuse_package *pkg, const char *what, const char *rel,
                            bool required)
{
        char *p = join(pkg->bldir, rel), *real = NULL;
        struct stat st;
        int r = 0;

        if (!p)
                return -ENOMEM;
        real = realpath(p, NULL);
        if (!real) {
                if (required)
                        r = fl_err(ctx, -EINVAL, "%s: %s %s is not in the package", p, what, rel);
                goto out;
        }
        if (!inside(pkg->bldir, real)) {
                r = fl_err(ctx, -EINVAL, "%s: %s leads outside bootloader/; refused", p, what);
                goto out;
        }
        if (required && (stat(real, &st) < 0 || !S_ISREG(st.st_mode)))
                r = fl_err(ctx, -EINVAL, "%s: %s is not a regular file", p, what);
out:
        free(real);
        free(p);
        return r;
}

void package_free(struct fuse_package *pkg)
{
        if (!pkg)
                return;
        fusecmd_free(pkg->fc);
        free(pkg->dir);
        free(pkg->bldir);
        free(pkg);
}

int package_open(fl_ctx *ctx, const char *dir, struct fuse_package **ret)
{
        struct fuse_package *pkg = calloc(1, sizeof(*pkg));
        unsigned char *text = NULL;
        size_t len = 0, budget = 100000;
        char *bl = NULL, *fcpath = NULL;
        struct stat st;
        int r;

        if (!pkg)
                return -ENOMEM;
        pkg->dir = strdup(dir);
        bl = join(dir, "bootloader");
        if (!pkg->dir || !bl) {
                r = -ENOMEM;
                goto out;
        }
        if (stat(dir, &st) < 0) {
                r = fl_err(ctx, errno == ENOENT ? -ENOENT : -EINVAL, "%s: %s", dir, strerror(errno));
                goto out;
        }
        if (lstat(bl, &st) < 0 || !S_ISDIR(st.st_mode)) {
                r = fl_err(ctx, -EINVAL, "%s: no bootloader/ directory (an extracted fuse package holds one)", dir);
                goto out;
        }
        pkg->bldir = realpath(bl, NULL);
        if (!pkg->bldir) {
                r = fl_err(ctx, -EINVAL, "%s: %s", bl, strerror(errno));
                goto out;
        }
        if ((r = scan_symlinks(ctx, pkg->bldir, pkg->bldir, 0, &budget)) < 0)
                goto out;
        fcpath = join(pkg->bldir, "fusecmd.sh");
        if (!fcpath) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = file_read(ctx, fcpath, FUSECMD_MAX_BYTES, &text, &len)) < 0) {
                if (r == -ENOENT)
                        r = fl_err(ctx, -EINVAL, "%s: no bootloader/fusecmd.sh: not an offline fuse package", dir);
                goto out;
        }
        if ((r = fusecmd_parse(ctx, fcpath, text, len, &pkg->fc)) < 0)
                goto out;
        if ((r = check_named_file(ctx, pkg, "the --cmd XML", pkg->fc->xml, true)) < 0)
                goto out;
        if (pkg->fc->mb2 && (r = check_named_file(ctx, pkg, "the mb2_bootloader image", pkg->fc->mb2, true)) < 0)
                goto out;
        /* Any other word that names an existing file must stay inside too. */
        for (size_t i = 0; i < pkg->fc->argc; i++) {
                const char *a = pkg->fc->argv[i];
                char *copy, *save = NULL;

                if (a[0] == '-' || !*a)
                        continue;
                copy = strdup(a);
                if (!copy) {
                        r = -ENOMEM;
                        goto out;
                }
                for (char *t = strtok_r(copy, ",; ", &save); t && r >= 0; t = strtok_r(NULL, ",; ", &save))
                        if (strcmp(t, "."))
                                r = check_named_file(ctx, pkg, "a file the command names", t, false);
                free(copy);
                if (r < 0)
                        goto out;
        }
        *ret = pkg;
        pkg = NULL;
        r = 0;
out:
        free(text);
        free(fcpath);
        free(bl);
        package_free(pkg);
        return r;
}

const char *const *package_argv(const struct fuse_package *pkg, size_t *ret_n)
{
        static const char *const empty[] = { NULL };

        if (ret_n)
                *ret_n = pkg->fc->argc;
        return pkg->fc->argv ? (const char *const *)pkg->fc->argv : empty;
}

enum fl_chip package_chip(const struct fuse_package *pkg)
{
        return pkg->fc->chip;
}

const char *package_bootloader_dir(const struct fuse_package *pkg)
{
        return pkg->bldir;
}

enum package_form package_form(const struct fuse_package *pkg)
{
        return pkg->fc->form;
}

const char *package_cmd(const struct fuse_package *pkg)
{
        return pkg->fc->cmd;
}

const char *package_xml(const struct fuse_package *pkg)
{
        return pkg->fc->xml;
}

const char *package_mb2(const struct fuse_package *pkg)
{
        return pkg->fc->mb2;
}

/* ---- what the package burns ------------------------------------------------ */

/* Re-issue the context's last error with the file it concerns in front. */
static int err_in(fl_ctx *ctx, int r, const char *path)
{
        char msg[FL_ERRMSG_MAX];

        snprintf(msg, sizeof(msg), "%s", fl_ctx_last_error(ctx) ? fl_ctx_last_error(ctx) : "failed");
        return fl_err(ctx, r, "%s: %s", path, msg);
}

/* T234: the blob at the tail of the mb2_bootloader image (a secret buffer:
 * it holds key values), and where it starts. */
static int load_tail(fl_ctx *ctx, const struct fuse_package *pkg, struct fl_secret *img, size_t *ret_off)
{
        char *p = join(pkg->bldir, pkg->fc->mb2);
        int r;

        if (!p)
                return -ENOMEM;
        r = file_read_secret(ctx, p, PACKAGE_IMAGE_MAX_BYTES, img);
        if (r == -ENOENT)
                r = -EINVAL;
        if (r >= 0 && (r = fuse_blob_find_tail(ctx, img->data, img->len, ret_off)) < 0)
                r = err_in(ctx, r, p);
        if (r < 0)
                secret_wipe(img);
        free(p);
        return r;
}

int package_plan(fl_ctx *ctx, const struct fuse_package *pkg, struct fuse_plan **ret)
{
        struct fl_secret s = { 0 };
        struct fuse_problems probs = { 0 };
        struct fuse_plan *plan = NULL;
        char *p = NULL;
        size_t off = 0;
        int r;

        if (pkg->fc->chip == FL_CHIP_T234) {
                /* On T234 burnfuses ignores its XML argument: the device runs
                 * the FSKP MB2 image, and the fuses it burns are the blob
                 * odmfuse appended to that image (jetson-fuses.md §6). The
                 * package's XML says nothing about what gets burned. */
                if ((r = load_tail(ctx, pkg, &s, &off)) < 0)
                        goto out;
                if ((r = fuse_blob_parse(ctx, FL_CHIP_T234, s.data + off, s.len - off, &plan)) < 0) {
                        char *ip = join(pkg->bldir, pkg->fc->mb2);
                        r = ip ? err_in(ctx, r, ip) : -ENOMEM;
                        free(ip);
                        goto out;
                }
        } else {
                p = join(pkg->bldir, pkg->fc->xml);
                if (!p) {
                        r = -ENOMEM;
                        goto out;
                }
                if ((r = fuse_xml_load(ctx, p, &s)) < 0) {
                        if (r == -ENOENT)
                                r = -EINVAL;
                        goto out;
                }
                if ((r = fuse_xml_parse(ctx, s.data, s.len, FL_CHIP_T194, &plan, &probs)) < 0)
                        goto out;
                if (probs.n || !plan) {
                        r = fl_err_hint(ctx, probs.n > 1 ? FL_HINT_FUSE_XML_CHECK : probs.n ? probs.v[0].hint : FL_HINT_NONE, -EINVAL, "%s: line %u: %s%s", p,
                                        probs.n ? probs.v[0].line : 0, probs.n ? probs.v[0].msg : "not a fuse XML",
                                        probs.n > 1 ? " (and more problems)" : "");
                        goto out;
                }
        }
        *ret = plan;
        plan = NULL;
        r = 0;
out:
        fuse_problems_free(&probs);
        fuse_plan_free(plan);
        secret_wipe(&s);
        free(p);
        return r;
}

/* ---- the check ----------------------------------------------------------- */

static const struct fuse_entry *find_def(const struct fuse_plan *p, const struct fuse_def *d, size_t *ret_i)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->e[i].def == d) {
                        *ret_i = i;
                        return &p->e[i];
                }
        return NULL;
}

/* Name every fuse that differs between the plan and what the package burns.
 * Values only for fuses that are not secret. Returns -ENOMEM or the number
 * of differences. */
static int diff_fuses(const struct fuse_plan *plan, const struct fuse_plan *pk, struct fuse_problems *probs)
{
        int r = 0, n = 0;
        bool same_set = plan->n == pk->n;

        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *a = &plan->e[i], *b;
                const struct fuse_def *d = a->def;
                size_t j = 0;

                b = find_def(pk, d, &j);
                if (!b) {
                        FUSE_PROB(d->name, "missing", a->line, "%s: in the plan, but the package does not burn it",
                                  d->name);
                        n++;
                        same_set = false;
                        continue;
                }
                if (memcmp(a->value, b->value, d->size)) {
                        n++;
                        if (d->secret) {
                                FUSE_PROB(d->name, "value", a->line,
                                          "%s: the package burns a different value than the plan (a key: values "
                                          "not shown)",
                                          d->name);
                        } else {
                                char va[2 * FUSE_VALUE_MAX + 1], vb[2 * FUSE_VALUE_MAX + 1];
                                hex_encode(a->value, d->size, va);
                                hex_encode(b->value, d->size, vb);
                                FUSE_PROB(d->name, "value", a->line, "%s: the plan says 0x%.40s%s, the package burns 0x%.40s%s",
                                          d->name, va, strlen(va) > 40 ? "..." : "", vb, strlen(vb) > 40 ? "..." : "");
                        }
                }
        }
        for (size_t j = 0; j < pk->n; j++) {
                size_t i = 0;
                if (!find_def(plan, pk->e[j].def, &i)) {
                        FUSE_PROB(pk->e[j].def->name, "extra", 0, "%s: the package burns it, the plan does not",
                                  pk->e[j].def->name);
                        n++;
                        same_set = false;
                }
        }
        if (same_set)
                for (size_t i = 0; i < plan->n; i++)
                        if (plan->e[i].def != pk->e[i].def) {
                                /* FSKP burns in blob order and checks nothing:
                                 * order is part of what a package burns. */
                                FUSE_PROB(plan->e[i].def->name, "order", plan->e[i].line,
                                          "burn order differs: fuse %zu is %s in the plan, %s in the package", i + 1,
                                          plan->e[i].def->name, pk->e[i].def->name);
                                n++;
                                break;
                        }
        r = n;
out:
        return r;
}

static int check_t234(fl_ctx *ctx, const struct fuse_package *pkg, const struct fuse_plan *plan,
                      enum package_mode mode, struct fuse_problems *probs, int *ret_diffs, int *ret_modes)
{
        struct fl_secret img = { 0 };
        struct fuse_plan *pk = NULL, tmp;
        unsigned char *mine = NULL;
        size_t off = 0, ml = 0, pl;
        const unsigned char *theirs;
        char *ip = join(pkg->bldir, pkg->fc->mb2);
        int r, d = 0, m = 0;

        if (!ip)
                return -ENOMEM;
        if ((r = load_tail(ctx, pkg, &img, &off)) < 0)
                goto out;
        theirs = img.data + off;
        pl = img.len - off;
        if ((r = fuse_blob_parse(ctx, FL_CHIP_T234, theirs, pl, &pk)) < 0) {
                r = err_in(ctx, r, ip);
                goto out;
        }
        /* The magic is the mode's business: a FUSE plan is what a TEST
         * package rehearses. A TEST plan against a FUSE package is not. */
        tmp = *plan;
        if (plan->magic == FUSE_MAGIC && pk->magic == FUSE_MAGIC_TEST)
                tmp.magic = FUSE_MAGIC_TEST;
        if (tmp.magic != pk->magic) {
                FUSE_PROB("", "magic", 0,
                          "the plan has the TEST MagicId (burns nothing) but the package's fuse blob is FUSE "
                          "(burns for real)");
                d++;
                tmp.magic = pk->magic;
        }
        if ((r = fuse_blob_encode(ctx, &tmp, &mine, &ml)) < 0)
                goto out;
        if (ml != pl || CRYPTO_memcmp(mine, theirs, pl)) {
                int k = diff_fuses(plan, pk, probs);
                if (k < 0) {
                        r = k;
                        goto out;
                }
                if (!k)
                        FUSE_PROB("", "blob", 0, "the package's fuse blob (%zu bytes) differs from the plan's (%zu bytes)",
                                  pl, ml);
                d += k ? k : 1;
        }
        if (mode == PACKAGE_MODE_DRY_RUN && pk->magic != FUSE_MAGIC_TEST) {
                FUSE_PROB("", "mode", 0,
                          "a dry run needs a TEST package (odmfuse.sh --test): this package's fuse blob has the "
                          "FUSE MagicId and would burn for real");
                m++;
        }
        if (mode == PACKAGE_MODE_COMMIT && pk->magic != FUSE_MAGIC) {
                FUSE_PROB("", "mode", 0,
                          "a commit needs a FUSE package: this package's fuse blob has the TEST MagicId and would "
                          "burn nothing");
                m++;
        }
        /* [U] what "burnfuses dummy" does on t234 is not documented (the
         * TEST magic is its dry run): a real burn takes the plain form only. */
        if (mode == PACKAGE_MODE_COMMIT && pkg->fc->form == PACKAGE_BURN_DUMMY) {
                FUSE_PROB("", "mode", 0,
                          "a commit needs \"burnfuses <xml>\": this package runs \"burnfuses dummy\", whose effect "
                          "on t234 is not known [U]");
                m++;
        }
        *ret_diffs = d;
        *ret_modes = m;
        r = 0;
out:
        fuse_blob_free(mine, ml);
        fuse_plan_free(pk);
        secret_wipe(&img);
        free(ip);
        return r;
}

static int check_t194(fl_ctx *ctx, const struct fuse_package *pkg, const struct fuse_plan *plan,
                      enum package_mode mode, struct fuse_problems *probs, int *ret_diffs, int *ret_modes)
{
        struct fuse_plan *pk = NULL;
        int r, d = 0, m = 0, k;

        if ((r = package_plan(ctx, pkg, &pk)) < 0)
                return r;
        if (plan->magic != pk->magic) {
                FUSE_PROB("", "magic", 0, "MagicId: the plan has 0x%08x, the package's XML 0x%08x",
                          (unsigned)plan->magic, (unsigned)pk->magic);
                d++;
        }
        if ((k = diff_fuses(plan, pk, probs)) < 0) {
                r = k;
                goto out;
        }
        d += k;
        if (mode == PACKAGE_MODE_DRY_RUN && pkg->fc->form != PACKAGE_BURN_DUMMY) {
                FUSE_PROB("", "mode", 0,
                          "a dry run needs \"burnfuses dummy <xml>\" (odmfuse.sh --test): this package runs "
                          "\"burnfuses <xml>\" and would burn for real");
                m++;
        }
        if (mode == PACKAGE_MODE_COMMIT && pkg->fc->form != PACKAGE_BURN) {
                FUSE_PROB("", "mode", 0,
                          "a commit needs \"burnfuses <xml>\": this package runs \"burnfuses dummy\" and would "
                          "burn nothing");
                m++;
        }
        *ret_diffs = d;
        *ret_modes = m;
        r = 0;
out:
        fuse_plan_free(pk);
        return r;
}

int package_check(fl_ctx *ctx, const struct fuse_package *pkg, const struct fuse_plan *plan, enum package_mode mode,
                  struct fuse_problems *probs)
{
        int r, diffs = 0, modes = 0;

        r = 0;
        if (!plan)
                return fl_err(ctx, -EINVAL, "package check: no plan");
        if (plan->chip != pkg->fc->chip) {
                FUSE_PROB("", "chip", 0, "the plan is for %s, the package for %s", chip_name(plan->chip),
                          chip_name(pkg->fc->chip));
                return fl_err(ctx, -EBADMSG, "%s: the package is for %s, the plan for %s", pkg->dir,
                              chip_name(pkg->fc->chip), chip_name(plan->chip));
        }
        if (pkg->fc->chip == FL_CHIP_T234)
                r = check_t234(ctx, pkg, plan, mode, probs, &diffs, &modes);
        else
                r = check_t194(ctx, pkg, plan, mode, probs, &diffs, &modes);
        if (r < 0)
                return r;
        if (diffs)
                return fl_err(ctx, -EBADMSG, "%s: the package does not burn the plan (%d difference%s)", pkg->dir,
                              diffs, diffs == 1 ? "" : "s");
        if (modes)
                return fl_err(ctx, -EPERM, "%s: the package does not suit a %s", pkg->dir,
                              mode == PACKAGE_MODE_DRY_RUN ? "dry run" : "commit");
        return 0;
out:
        return r;
}
