/* fuse_xml.c — genericfuse XML writing and parsing.
 *
 * Writing does not go through libxml2's serialiser: every byte of the
 * output is ours (names from the chip table, hex digits, a sanitised
 * comment), and building it in one pre-sized, wiped buffer keeps key values
 * out of memory that is freed unwiped. The result is parsed back with the
 * libxml2 checker below in the tests, and checked by xmllint.
 *
 * Parsing uses libxml2 with the network off, no DTD loading, no entity
 * substitution, and errors captured instead of printed. DOCTYPE and
 * ENTITY declarations are refused before libxml2 sees the bytes, so entity
 * expansion and external entities never happen; the tree is then walked
 * strictly (genericfuse > fuse|rpmb, nothing deeper). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <openssl/crypto.h>

#include "fuse_xml.h"

/* ---- writing ------------------------------------------------------------ */

/* Comment text: printable ASCII without '-' runs, so "--" cannot end it. */
static void comment_safe(char *dst, size_t cap, const char *src)
{
        size_t i = 0;

        for (; src && *src && i + 1 < cap; src++) {
                unsigned char c = (unsigned char)*src;
                dst[i++] = (isalnum(c) || strchr("._/+:@ ,()=", c)) ? (char)c : '_';
        }
        dst[i] = 0;
}

struct outbuf {
        struct fl_secret s;
        size_t len;
        bool overflow;
};

static void out_printf(struct outbuf *o, const char *fmt, ...) FL_PRINTF(2, 3);
static void out_printf(struct outbuf *o, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (o->overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf((char *)o->s.data + o->len, o->s.len - o->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= o->s.len - o->len)
                o->overflow = true;
        else
                o->len += (size_t)n;
}

int fuse_xml_render(fl_ctx *ctx, const struct fuse_plan *plan, struct fl_secret *ret)
{
        struct outbuf o = { { 0 }, 0, false };
        char name[128], path[256], profile[32], sha[65], hex[2 * FUSE_VALUE_MAX + 1];
        int r;

        r = fuse_plan_sha256(ctx, plan, sha);
        if (r < 0)
                goto out;
        r = secret_alloc(&o.s, 1024 + sizeof(name) + sizeof(path) + plan->n * (96 + 2 * FUSE_VALUE_MAX));
        if (r < 0)
                goto out;
        comment_safe(name, sizeof(name), plan->keyset_name ? plan->keyset_name : "(unnamed)");
        comment_safe(path, sizeof(path), plan->keyset_path ? plan->keyset_path : "(none)");
        comment_safe(profile, sizeof(profile), plan->profile ? plan->profile : "(unknown)");
        /* NVIDIA's parser accepts comments; no prolog is needed. */
        out_printf(&o, "<!-- fuseline fuse-xml %s\n     keyset: %s (%s), profile: %s\n     chip: %s, plan sha256: %s\n",
                   fl_version(), name, path, profile, chip_name(plan->chip), sha);
        if (plan->profile && !strcmp(plan->profile, "lab"))
                out_printf(&o, "     LAB KEYSET: test keys only, never burn this into a product\n");
        if (plan->magic == FUSE_MAGIC_TEST)
                out_printf(&o, "     TEST MagicId: the device processes every fuse and burns nothing\n");
        out_printf(&o, "     This file can hold secret key values: keep it 0600, delete it after use. -->\n");
        out_printf(&o, "<genericfuse MagicId=\"0x%08x\" version=\"%s\">\n", plan->magic,
                   plan->rpmb ? "2.0.0" : "1.0.0");
        for (size_t i = 0; i < plan->n; i++) {
                const struct fuse_entry *e = &plan->e[i];

                /* Two hex digits per byte, big-endian (the template's form). */
                hex_encode(e->value, e->def->size, hex);
                out_printf(&o, "    <fuse name=\"%s\" size=\"%u\" value=\"0x%s\"/>\n", e->def->name, e->def->size,
                           hex);
        }
        if (plan->rpmb)
                out_printf(&o, "    <rpmb provisioning=\"%s\" dev_type=\"%s\"/>\n", plan->rpmb_provisioning,
                           plan->rpmb_dev_type);
        out_printf(&o, "</genericfuse>\n");
        if (o.overflow) {
                r = fl_err(ctx, -EOVERFLOW, "fuse XML larger than its buffer");
                goto out;
        }
        o.s.len = o.len; /* secret_wipe wipes len bytes: the tail is unused */
        *ret = o.s;
        o.s.data = NULL;
        r = 0;
out:
        OPENSSL_cleanse(hex, sizeof(hex));
        if (o.s.data) {
                OPENSSL_cleanse(o.s.data, o.s.len);
                free(o.s.data);
        }
        return r;
}

int fuse_xml_write(fl_ctx *ctx, const struct fuse_plan *plan, const char *path)
{
        struct fl_secret s = { 0 };
        int r;

        r = fuse_xml_render(ctx, plan, &s);
        if (r < 0)
                return r;
        /* 0600: the file can hold SBK/OEM/KEK values. */
        r = file_write_atomic(ctx, path, s.data, s.len, 0600);
        secret_wipe(&s);
        return r;
}

int fuse_xml_load(fl_ctx *ctx, const char *path, struct fl_secret *ret)
{
        return file_read_secret(ctx, path, FUSE_XML_MAX_BYTES, ret);
}

/* ---- parsing ------------------------------------------------------------ */

/* Bytes libxml2 must never see: DOCTYPE/ENTITY/ELEMENT/ATTLIST/CDATA
 * declarations ("<!" not starting a comment). A comment that merely
 * contains "<!" is refused too: the safe side. */
static bool has_declaration(const unsigned char *d, size_t len)
{
        for (size_t i = 0; i + 1 < len; i++)
                if (d[i] == '<' && d[i + 1] == '!' && !(i + 3 < len && d[i + 2] == '-' && d[i + 3] == '-'))
                        return true;
        return false;
}

static void silent_error(void *data, xmlErrorPtr err)
{
        (void)data;
        (void)err;
}

/* Strict hex: optional 0x, digits only; words (<= 8 bytes) may be short,
 * keys and hashes must have every byte (a short one would be ambiguous).
 * On error, why says what is wrong without quoting the value (a key). */
static bool parse_value(const char *s, const struct fuse_def *d, unsigned char *out, char *why, size_t whylen)
{
        size_t n;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        n = strlen(s);
        if (!n) {
                snprintf(why, whylen, "is empty");
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char)s[i])) {
                        snprintf(why, whylen, "is not hex (an optional 0x, then hex digits only: no sign, no spaces)");
                        return false;
                }
        if (n > 2 * d->size || (d->size > 8 && n != 2 * d->size)) {
                snprintf(why, whylen, "has %zu hex digits; a %u-byte fuse takes %s%u%s", n, d->size,
                         d->size > 8 ? "exactly " : "at most ", 2 * d->size,
                         n > 2 * d->size ? " (overflow)" : " (write every byte)");
                return false;
        }
        memset(out, 0, d->size);
        for (size_t i = 0; i < n; i++) {
                size_t pos = n - 1 - i;
                unsigned char c = (unsigned char)s[i];
                int v = isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
                out[d->size - 1 - pos / 2] |= (unsigned char)(pos % 2 ? v << 4 : v);
        }
        return true;
}

static bool all_space(const xmlChar *s)
{
        for (; s && *s; s++)
                if (!isspace(*s))
                        return false;
        return true;
}

/* An attribute's value; the caller wipes and frees it (values can be keys). */
static char *attr(xmlNodePtr n, const char *name)
{
        return (char *)xmlGetProp(n, (const xmlChar *)name);
}

static void attr_free(char *v)
{
        if (v) {
                OPENSSL_cleanse(v, strlen(v));
                xmlFree(v);
        }
}

/* Wipe every attribute value in the tree before libxml2 frees it. */
static void wipe_tree(xmlNodePtr n)
{
        for (; n; n = n->next) {
                for (xmlAttrPtr a = n->properties; a; a = a->next)
                        for (xmlNodePtr t = a->children; t; t = t->next)
                                if (t->content)
                                        OPENSSL_cleanse(t->content, strlen((char *)t->content));
                if (n->type == XML_ELEMENT_NODE)
                        wipe_tree(n->children);
        }
}

static int check_attrs(xmlNodePtr n, const char *const *allowed, size_t nallowed, const char *fuse, unsigned line,
                       struct fuse_problems *probs)
{
        int r = 0;

        for (xmlAttrPtr a = n->properties; a; a = a->next) {
                bool ok = false;
                for (size_t i = 0; i < nallowed; i++)
                        ok |= !strcmp((const char *)a->name, allowed[i]);
                if (!ok || a->ns)
                        FUSE_PROB(fuse, "element", line, "<%s>: unexpected attribute '%.40s'", (const char *)n->name,
                                  (const char *)a->name);
        }
out:
        return r;
}

static int parse_root(xmlNodePtr root, enum fl_chip chip, struct fuse_plan *plan, const char **ret_version,
                      struct fuse_problems *probs)
{
        static const char *const root_attrs[] = { "MagicId", "version" };
        char *magic = attr(root, "MagicId"), *version = attr(root, "version");
        unsigned line = (unsigned)xmlGetLineNo(root);
        int r = 0;

        *ret_version = NULL;
        if ((r = check_attrs(root, root_attrs, FL_ARRAY_SIZE(root_attrs), "", line, probs)) < 0)
                goto out;
        if (magic)
                snprintf(plan->file_magic, sizeof(plan->file_magic), "%.23s", magic);
        if (!magic) {
                FUSE_PROB("", "magic", line, "genericfuse has no MagicId (NVIDIA's is 0x45535546)");
        } else {
                const char *m = magic + (magic[0] == '0' && (magic[1] == 'x' || magic[1] == 'X') ? 2 : 0);
                char *end = NULL;
                unsigned long v = strtoul(m, &end, 16);
                bool hex = *m && strlen(m) <= 8 && !*end && strspn(m, "0123456789abcdefABCDEF") == strlen(m);

                if (!hex || (v != FUSE_MAGIC && v != FUSE_MAGIC_TEST))
                        FUSE_PROB("", "magic", line,
                                  "MagicId '%.20s' is neither 0x45535546 (FUSE) nor 0x54534554 (TEST)", magic);
                else if (v == FUSE_MAGIC_TEST && chip != FL_CHIP_T234)
                        FUSE_PROB("", "magic", line,
                                  "MagicId 0x54534554 (TEST) is the t234 FSKP dry run; %s has no TEST magic "
                                  "(its dry run is burnfuses dummy)",
                                  chip_name(chip));
                else
                        plan->magic = (uint32_t)v;
        }
        if (!version)
                FUSE_PROB("", "version", line, "genericfuse has no version (1.0.0, or 2.0.0 with rpmb)");
        else if (strcmp(version, "1.0.0") && strcmp(version, "2.0.0"))
                FUSE_PROB("", "version", line, "version '%.20s' is neither 1.0.0 nor 2.0.0", version);
        else
                *ret_version = !strcmp(version, "1.0.0") ? "1.0.0" : "2.0.0";
out:
        attr_free(magic);
        attr_free(version);
        return r;
}

static int parse_fuse(xmlNodePtr n, enum fl_chip chip, struct fuse_plan *plan, struct fuse_problems *probs)
{
        static const char *const fuse_attrs[] = { "name", "size", "value" };
        char *name = attr(n, "name"), *size = attr(n, "size"), *value = attr(n, "value");
        unsigned line = (unsigned)xmlGetLineNo(n);
        unsigned char v[FUSE_VALUE_MAX];
        const struct fuse_def *d;
        char why[128], shown[48];
        int r = 0;

        snprintf(shown, sizeof(shown), "%.40s", name ? name : "");
        if ((r = check_attrs(n, fuse_attrs, FL_ARRAY_SIZE(fuse_attrs), shown, line, probs)) < 0)
                goto out;
        for (xmlNodePtr c = n->children; c; c = c->next)
                if (c->type != XML_COMMENT_NODE && !(c->type == XML_TEXT_NODE && all_space(c->content))) {
                        FUSE_PROB(shown, "element", line, "<fuse> must be empty (found %s)",
                                  c->type == XML_ELEMENT_NODE ? "a nested element" : "content");
                        break;
                }
        if (!name || !*name) {
                FUSE_PROB("", "name", line, "<fuse> without a name");
                goto out;
        }
        d = chip_fuse(chip, name);
        if (!d) {
                const struct fuse_def *cf = chip_fuse_casefold(chip, name);
                if (cf)
                        FUSE_PROB(shown, "name", line, "%s: unknown fuse name on %s; names are case-exact: %s", shown,
                                  chip_name(chip), cf->name);
                else
                        FUSE_PROB(shown, "name", line, "%s: not a burnable fuse on %s", shown, chip_name(chip));
                goto out;
        }
        if (fuse_plan_find(plan, d->name)) {
                FUSE_PROB(d->name, "duplicate", line, "%s: appears more than once", d->name);
                goto out;
        }
        if (!size) {
                FUSE_PROB(d->name, "size", line, "%s: no size attribute (a read list is not a burn file)", d->name);
        } else if (!*size || strspn(size, "0123456789") != strlen(size) || strlen(size) > 4 ||
                   (unsigned)atoi(size) != d->size) {
                FUSE_PROB(d->name, "size", line, "%s: size '%.12s' is wrong: %s takes exactly %u bytes on %s", d->name,
                          size, d->name, d->size, chip_name(chip));
        }
        if (!value) {
                FUSE_PROB(d->name, "value", line, "%s: no value attribute", d->name);
                goto out;
        }
        if (!parse_value(value, d, v, why, sizeof(why))) {
                /* Never echo the value: it may be a key. */
                FUSE_PROB(d->name, "value", line, "%s: value %s", d->name, why);
                goto out;
        }
        if (size && (unsigned)atoi(size) == d->size && strspn(size, "0123456789") == strlen(size))
                r = fuse_plan_add(plan, d, v, line);
out:
        OPENSSL_cleanse(v, sizeof(v));
        attr_free(name);
        attr_free(size);
        attr_free(value);
        return r;
}

/* provisioning and dev_type: short hex values ("0x1", "0x2", "0xA"). */
static int parse_rpmb(xmlNodePtr n, struct fuse_plan *plan, unsigned line, struct fuse_problems *probs)
{
        static const char *const names[] = { "provisioning", "dev_type" };
        char *dst[] = { plan->rpmb_provisioning, plan->rpmb_dev_type };
        bool ok = true;
        int r = 0;

        for (size_t i = 0; i < 2; i++) {
                char *v = attr(n, names[i]);
                const char *h = v && v[0] == '0' && (v[1] == 'x' || v[1] == 'X') ? v + 2 : NULL;

                if (!h || !*h || strlen(h) > 8 || strspn(h, "0123456789abcdefABCDEF") != strlen(h)) {
                        ok = false;
                        attr_free(v);
                        FUSE_PROB("rpmb", "rpmb", line, "<rpmb> %s must be a 0x-prefixed hex value of at most 8 digits",
                                  names[i]);
                        continue;
                }
                snprintf(dst[i], sizeof(plan->rpmb_provisioning), "%s", v);
                attr_free(v);
        }
        plan->rpmb = ok;
out:
        return r;
}

int fuse_xml_parse(fl_ctx *ctx, const unsigned char *data, size_t len, enum fl_chip chip,
                   struct fuse_plan **ret_plan, struct fuse_problems *probs)
{
        xmlParserCtxtPtr pc = NULL;
        xmlDocPtr doc = NULL;
        xmlNodePtr root;
        struct fuse_plan *plan = NULL;
        const char *version = NULL;
        unsigned rpmb_line = 0, nfuses = 0;
        int r = 0;

        if (ret_plan)
                *ret_plan = NULL;
        if (chip != FL_CHIP_T194 && chip != FL_CHIP_T234) {
                r = fl_err(ctx, -EINVAL, "unknown chip (use t194 or t234)");
                goto out;
        }
        if (len > FUSE_XML_MAX_BYTES) {
                FUSE_PROB("", "xml", 0, "file is %zu bytes; a fuse XML is at most %d", len, FUSE_XML_MAX_BYTES);
                goto out;
        }
        if (!len || memchr(data, 0, len)) {
                FUSE_PROB("", "xml", 0, "%s",
                          len ? "binary data (NUL byte): a fuse XML is UTF-8 text" : "file is empty");
                goto out;
        }
        if (has_declaration(data, len)) {
                FUSE_PROB("", "xml", 0, "DOCTYPE, ENTITY or CDATA declarations are refused in fuse XML");
                goto out;
        }
        pc = xmlNewParserCtxt();
        if (!pc) {
                r = -ENOMEM;
                goto out;
        }
        /* libxml2 2.9 reports through the global handler unless told not to. */
        xmlSetStructuredErrorFunc(NULL, silent_error);
        doc = xmlCtxtReadMemory(pc, (const char *)data, (int)len, "fuse.xml", "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC);
        xmlSetStructuredErrorFunc(NULL, NULL);
        if (!doc || !pc->wellFormed) {
                xmlErrorPtr e = xmlCtxtGetLastError(pc);
                char msg[160] = "parse error";

                if (e && e->message) {
                        snprintf(msg, sizeof(msg), "%s", e->message);
                        msg[strcspn(msg, "\r\n")] = 0;
                }
                FUSE_PROB("", "xml", e ? (unsigned)e->line : 0, "not well-formed XML: %s", msg);
                goto out;
        }
        if (doc->intSubset || doc->extSubset) {
                FUSE_PROB("", "xml", 0, "a DTD is refused in fuse XML");
                goto out;
        }
        root = xmlDocGetRootElement(doc);
        if (!root || strcmp((const char *)root->name, "genericfuse") || root->ns) {
                FUSE_PROB("", "root", root ? (unsigned)xmlGetLineNo(root) : 0,
                          "root element is <%.40s>, not <genericfuse>", root ? (const char *)root->name : "");
                goto out;
        }
        for (xmlNodePtr n = doc->children; n; n = n->next)
                if (n != root && n->type != XML_COMMENT_NODE)
                        FUSE_PROB("", "element", (unsigned)xmlGetLineNo(n), "unexpected node outside <genericfuse>");
        if ((r = fuse_plan_new(chip, &plan)) < 0)
                goto out;
        if ((r = parse_root(root, chip, plan, &version, probs)) < 0)
                goto out;
        for (xmlNodePtr n = root->children; n; n = n->next) {
                unsigned line = (unsigned)xmlGetLineNo(n);

                if (n->type == XML_COMMENT_NODE || (n->type == XML_TEXT_NODE && all_space(n->content)))
                        continue;
                if (n->type != XML_ELEMENT_NODE) {
                        FUSE_PROB("", "element", line, "unexpected %s inside <genericfuse>",
                                  n->type == XML_TEXT_NODE ? "text" : "node");
                        continue;
                }
                if (n->ns) {
                        FUSE_PROB("", "element", line, "namespaced element <%.40s> inside <genericfuse>",
                                  (const char *)n->name);
                } else if (!strcmp((const char *)n->name, "fuse")) {
                        plan->file_fuses = ++nfuses;
                        if (nfuses > FUSE_XML_MAX_FUSES) {
                                FUSE_PROB("", "element", line, "more than %d fuses", FUSE_XML_MAX_FUSES);
                                break;
                        }
                        if ((r = parse_fuse(n, chip, plan, probs)) < 0)
                                goto out;
                } else if (!strcmp((const char *)n->name, "rpmb")) {
                        static const char *const rpmb_attrs[] = { "provisioning", "dev_type" };
                        if ((r = check_attrs(n, rpmb_attrs, FL_ARRAY_SIZE(rpmb_attrs), "rpmb", line, probs)) < 0)
                                goto out;
                        if (rpmb_line)
                                FUSE_PROB("rpmb", "duplicate", line, "<rpmb> appears more than once");
                        if (chip != FL_CHIP_T234)
                                FUSE_PROB("rpmb", "rpmb", line, "<rpmb> provisioning is documented for t234 only");
                        if (n->children)
                                FUSE_PROB("rpmb", "element", line, "<rpmb> must be empty");
                        if ((r = parse_rpmb(n, plan, line, probs)) < 0)
                                goto out;
                        rpmb_line = line;
                } else {
                        FUSE_PROB("", "element", line, "unexpected element <%.40s> (genericfuse holds fuse and rpmb)",
                                  (const char *)n->name);
                }
        }
        if (version && !strcmp(version, "2.0.0") && !rpmb_line)
                FUSE_PROB("", "version", (unsigned)xmlGetLineNo(root),
                          "version 2.0.0 is for files with <rpmb>; use 1.0.0");
        if (version && !strcmp(version, "1.0.0") && rpmb_line)
                FUSE_PROB("rpmb", "version", rpmb_line, "<rpmb> needs version 2.0.0");
        if (ret_plan) {
                *ret_plan = plan;
                plan = NULL;
        }
        r = 0;
out:
        if (doc) {
                wipe_tree(doc->children);
                xmlFreeDoc(doc);
        }
        xmlFreeParserCtxt(pc);
        fuse_plan_free(plan);
        return r;
}

int fuse_xml_check(fl_ctx *ctx, const unsigned char *data, size_t len, enum fl_chip chip, const struct keyset *ks,
                   struct fuse_plan **ret_plan, struct fuse_problems *probs)
{
        return fuse_xml_check_ack(ctx, data, len, chip, ks, 0, ret_plan, probs);
}

int fuse_xml_check_ack(fl_ctx *ctx, const unsigned char *data, size_t len, enum fl_chip chip,
                       const struct keyset *ks, uint32_t accept_unverified, struct fuse_plan **ret_plan,
                       struct fuse_problems *probs)
{
        struct fuse_plan *plan = NULL;
        int r;

        if (ret_plan)
                *ret_plan = NULL;
        r = fuse_xml_parse(ctx, data, len, chip, &plan, probs);
        if (r < 0 || !plan)
                goto out;
        plan->accept_unverified = accept_unverified;
        r = fuse_plan_check(ctx, plan, ks, probs);
        if (r < 0)
                goto out;
        /* Report in file order (stable: rules keep their order per line). */
        for (size_t i = 1; i < probs->n; i++) {
                struct fuse_problem t = probs->v[i];
                size_t j = i;
                while (j > 0 && probs->v[j - 1].line > t.line) {
                        probs->v[j] = probs->v[j - 1];
                        j--;
                }
                probs->v[j] = t;
        }
        if (ret_plan) {
                *ret_plan = plan;
                plan = NULL;
        }
        r = 0;
out:
        fuse_plan_free(plan);
        return r;
}
