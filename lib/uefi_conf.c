/* uefi_conf.c — NVIDIA's uefi_keys.conf (§3.1) and the key overlays:
 * .dts text (§3.2) and its compilation to .dtbo by dtc. */
#include "uefi_int.h"

/* ---- uefi_keys.conf (§3.1) ------------------------------------------------------------ */

static bool fname_char(int c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '+' || c == '@';
}

bool plain_file_name(const char *s)
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

static const char *dtc_program;

void uefi_dtc_set_program(const char *prog)
{
        dtc_program = prog;
}

int uefi_dtc(fl_ctx *ctx, const char *dts_path, const char *dtbo_path)
{
        const char *prog = dtc_program;
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
