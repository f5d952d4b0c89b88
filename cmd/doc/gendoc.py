#!/usr/bin/env python3
"""gendoc.py - the man pages and the bash completion, made at build time from
the one source of truth: the built binary's --help (and, for fuseline-json(7),
the README's MES contract section). Nothing here is written by hand per
command, so the pages cannot drift from the program.

  gendoc.py list-commands cmd/main.c         the command table (for meson)
  gendoc.py [--expect C1,C2..] man FUSELINE OUTDIR VERSION
                                              fuseline.1, fuseline-CMD.1 ...
  gendoc.py json-man README OUT VERSION       fuseline-json.7
  gendoc.py [--expect ...] completion FUSELINE OUT LIBDIR
                                              bash completion (roles: LIBDIR)

How --help is read: argp's output with ARGP_HELP_FMT=rmargin=100000 (one
line per option or paragraph). Sub-helps are found in the text itself:
"WHAT:" lists (verify, ledger) and "fuseline CMD ARGS --help" references
(keygen --uefi, sign --uefi-var db ...). Any failure exits non-zero with one
line naming what is wrong, so a broken page fails the build.
"""
import os
import re
import subprocess
import sys

HELP_ENV = dict(os.environ, ARGP_HELP_FMT="rmargin=100000", LC_ALL="C.UTF-8")
HELP_ENV.pop("FUSELINE_TEMPLATES", None)


def die(msg):
    sys.stderr.write("gendoc.py: %s\n" % msg)
    sys.exit(1)


def run_help(exe, args):
    try:
        p = subprocess.run([exe] + args + ["--help"], env=HELP_ENV, capture_output=True,
                           text=True, timeout=60)
    except OSError as e:
        die("%s: %s" % (exe, e))
    if p.returncode != 0 or not p.stdout.strip():
        die("'fuseline %s --help' exited %d: %s" % (" ".join(args), p.returncode,
                                                    p.stderr.strip().splitlines()[-1:] or ""))
    return p.stdout


# ---- reading a help text -------------------------------------------------

OPT_RE = re.compile(r"^ {1,8}(-\S.*?)(?: {2,}(\S.*))?$")
HDR_RE = re.compile(r"^ (\S.*):$")
DOC_COL = 29   # argp's default opt-doc-col


class Help:
    """One help text: usage lines, description, option groups, the rest."""

    def __init__(self, text):
        lines = [l.rstrip() for l in text.splitlines()]
        self.usage = []
        self.desc = []
        self.groups = []      # [(title or "", [(optspec, doc)])]
        self.post = []        # the text after the options, as printed
        self.what = []        # [(name, doc)] of a "WHAT:" list
        self.desc_after = []  # description after the WHAT list
        i = 0
        while i < len(lines) and (lines[i].startswith("Usage:") or lines[i].startswith("  or:")):
            self.usage.append(re.sub(r"^(Usage:|  or:)\s*", "", lines[i]))
            i += 1
        if not self.usage:
            die("help text does not start with 'Usage:': %r" % (lines[:1],))
        # description: up to the first option line or group header
        while i < len(lines) and not OPT_RE.match(lines[i]) and not HDR_RE.match(lines[i]):
            if lines[i] == "WHAT:":
                i += 1
                while i < len(lines) and lines[i].startswith("  "):
                    m = re.match(r"^\s+(\S+)\s+(.*)$", lines[i])
                    if m:
                        self.what.append((m.group(1), m.group(2)))
                    i += 1
                continue
            (self.desc_after if self.what else self.desc).append(lines[i])
            i += 1
        group = ("", [])
        while i < len(lines):
            l = lines[i]
            m = OPT_RE.match(l)
            if m:
                spec, doc = m.group(1), m.group(2) or ""
                # an option just short of argp's doc column (29) is followed
                # by one space only
                if not doc and len(l) > DOC_COL + 1 and l[DOC_COL - 1] == " " and l[DOC_COL] != " ":
                    spec, doc = l[:DOC_COL].strip(), l[DOC_COL:]
                group[1].append([spec, doc])
            elif HDR_RE.match(l):
                if group[1] or group[0]:
                    self.groups.append(group)
                group = (HDR_RE.match(l).group(1), [])
            elif not l.strip():
                pass
            elif l.startswith(" ") and group[1] and l.strip() and len(l) - len(l.lstrip()) >= 20:
                group[1][-1][1] += " " + l.strip()      # a wrapped option doc
            else:
                break
            i += 1
        if group[1] or group[0]:
            self.groups.append(group)
        self.groups = [g for g in self.groups if g[1]]
        self.post = lines[i:]
        while self.post and not self.post[-1]:
            self.post.pop()
        # hide argp's own --usage; keep --help
        for _, opts in self.groups:
            opts[:] = [o for o in opts if not o[0].startswith("--usage")]

    def options(self):
        """[(long-or-short name, metavar or None)] for every option."""
        out = []
        for _, opts in self.groups:
            for spec, _doc in opts:
                for part in spec.split(", "):
                    m = re.match(r"^(--?[A-Za-z0-9?][-A-Za-z0-9]*)(?:\[?=([^\]\s]+)\]?| (\S+))?", part)
                    if m:
                        out.append((m.group(1), m.group(2) or m.group(3)))
        return out

    def references(self, cmd):
        """Sub-helps named in the text: 'fuseline CMD ARGS --help'."""
        text = " ".join(self.desc + self.desc_after + self.post)
        refs = []
        for m in re.finditer(r"fuseline %s ((?:[^\s,;]+ ){1,3}?)--help" % re.escape(cmd), text):
            args = m.group(1).split()
            if args and args[0].startswith("-") and args not in refs:
                refs.append(args)
        return refs


def table_commands(main_c):
    """The command names of cmd/main.c's table, for meson (configure time)."""
    with open(main_c, encoding="utf-8") as f:
        src = f.read()
    names = re.findall(r'^\s*\{\s*"([a-z][a-z0-9-]*)",\s*cmd_\w+,', src, re.M)
    if not names:
        die("%s: no command table entries ({ \"name\", cmd_fn, \"summary\" }) found" % main_c)
    return names


EXPECT = None   # --expect c1,c2: the commands meson was configured with


def gather(exe):
    """{command: (summary, Help, [(title args, Help)])} and the top text."""
    top = run_help(exe, [])
    cmds = []
    lines = top.splitlines()
    try:
        start = lines.index("Commands:") + 1
    except ValueError:
        die("'fuseline --help' has no 'Commands:' list")
    for l in lines[start:]:
        m = re.match(r"^  (\S+)\s+(.*)$", l)
        if not m:
            break
        cmds.append((m.group(1), m.group(2)))
    if not cmds:
        die("'fuseline --help' lists no commands")
    if EXPECT is not None and [c for c, _ in cmds] != EXPECT:
        die("'fuseline --help' lists commands %s but the build was configured for %s: "
            "reconfigure (meson setup --reconfigure) after changing cmd/main.c's table"
            % (" ".join(c for c, _ in cmds), " ".join(EXPECT)))
    out = {}
    for name, summary in cmds:
        h = Help(run_help(exe, [name]))
        subs = []
        seen = {run_help(exe, [name])}
        for w, _doc in h.what:
            t = run_help(exe, [name, w])
            seen.add(t)
            subs.append(([w], Help(t)))
        for args in h.references(name):
            t = run_help(exe, [name] + args)
            if t in seen:
                continue
            seen.add(t)
            subs.append((args, Help(t)))
        out[name] = (summary, h, subs)
    return top, cmds, out


# ---- roff ----------------------------------------------------------------

def esc(s):
    """Text for a roff text line: backslashes, hyphens (so commands paste as
    typed), non-ASCII as \\[uXXXX] (no dependence on the page's encoding)."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    s = "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in s)
    if s[:1] in (".", "'"):
        s = "\\&" + s
    return s


def esc_arg(s):
    return '"' + esc(s).replace('"', '\\(dq') + '"'


def optspec_roff(spec):
    parts = []
    for part in spec.split(", "):
        m = re.match(r"^(--?[^=\[ ]+)(.*)$", part)
        name, rest = (m.group(1), m.group(2)) if m else (part, "")
        r = "\\fB" + esc(name) + "\\fR"
        if rest:
            r += re.sub(r"([A-Za-z_][A-Za-z0-9_.]*)", lambda mm: "\\fI" + mm.group(1) + "\\fR", esc(rest))
        parts.append(r)
    return ", ".join(parts)


def paragraphs(lines, out, heading_level=".SS"):
    """Help prose: blank lines separate paragraphs; indented runs are
    examples, kept as typed; 'Examples:' becomes a subheading."""
    para = []
    block = []

    def flush_para():
        if para:
            out.append(".PP")
            out.append(esc(" ".join(para)))
            para.clear()

    def flush_block():
        if block:
            out.append(".PP")
            out.append(".EX")
            out.extend(esc(b) if b else "" for b in block)
            out.append(".EE")
            block.clear()

    for l in lines:
        if not l.strip():
            flush_para()
            flush_block()
        elif l.startswith(" "):
            flush_para()
            block.append(l[2:] if l.startswith("  ") else l.lstrip())
        elif re.match(r"^Examples?:$", l):
            flush_para()
            flush_block()
            out.append(heading_level + " Examples")
        else:
            flush_block()
            para.append(l.strip())
    flush_para()
    flush_block()


def help_roff(h, out, opts_heading, sub_level):
    paragraphs([l for l in h.desc], out, sub_level)
    if h.what:
        for w, doc in h.what:
            out.append(".TP")
            out.append("\\fB" + esc(w) + "\\fR")
            out.append(esc(doc))
    paragraphs(h.desc_after, out, sub_level)
    for title, opts in h.groups:
        out.append(sub_level + " " + esc_arg(title or opts_heading))
        for spec, doc in opts:
            out.append(".TP")
            out.append(optspec_roff(spec))
            out.append(esc(doc) if doc else "\\&")
    paragraphs(h.post, out, sub_level)


def synopsis(usage, out):
    for u in usage:
        words = u.split()
        n = 1
        while n < len(words) and re.match(r"^[a-z][a-z0-9-]*$", words[n]):
            n += 1
        out.append(".SY " + esc_arg(" ".join(words[:n])))
        if n < len(words):
            out.append(esc(" ".join(words[n:])))
        out.append(".YS")


def th(name, section, version, source="the program's --help"):
    return ['.\\" Generated at build time by cmd/gendoc.py from %s: do not edit.' % source,
            '.TH %s %s "" "fuseline %s" "fuseline manual"' % (esc(name.upper()), section, esc(version)),
            '.\\" commands and options are copied from these pages: no hyphenation, ragged right',
            ".nh", ".ad l"]


def man_pages(exe, outdir, version):
    top, cmds, data = gather(exe)
    lines = top.splitlines()
    tagline = next((l for l in lines[1:] if l.strip() and not l.startswith("Usage")), "").strip().rstrip(".")
    out = th("fuseline", 1, version)
    out += [".SH NAME", "fuseline \\- " + esc(tagline[:1].lower() + tagline[1:])]
    out += [".SH SYNOPSIS"]
    synopsis([re.sub(r"^Usage:\s*", "", lines[0])], out)
    out += [".SH DESCRIPTION", ".PP", esc(tagline + "."), ".SH COMMANDS"]
    for name, summary in cmds:
        out += [".TP", "\\fB%s\\fR" % esc(name), esc(summary) + ",", "see \\fBfuseline\\-%s\\fR(1)." % esc(name)]
    after = lines[lines.index("Commands:") + 1 + len(cmds):]
    out += [".SH NOTES"]
    paragraphs(after, out)
    out += [".SH SEE ALSO"]
    out.append(", ".join("\\fBfuseline\\-%s\\fR(1)" % esc(n) for n, _ in cmds) + ", \\fBfuseline\\-json\\fR(7)")
    write(os.path.join(outdir, "fuseline.1"), out)

    for name, (summary, h, subs) in data.items():
        out = th("fuseline-" + name, 1, version)
        out += [".SH NAME", "fuseline\\-%s \\- %s" % (esc(name), esc(summary))]
        out += [".SH SYNOPSIS"]
        synopsis(h.usage, out)
        for args, sh in subs:
            if sh.usage != h.usage:
                synopsis(sh.usage, out)
            else:
                u = sh.usage[0].split()
                synopsis(["fuseline %s %s %s" % (name, " ".join(args), " ".join(u[2:]))], out)
        out += [".SH DESCRIPTION"]
        help_roff(h, out, "Options", ".SS")
        for args, sh in subs:
            out.append(".SH " + esc_arg(("fuseline %s %s" % (name, " ".join(args))).upper()))
            help_roff(sh, out, "Options", ".SS")
        out += [".SH SEE ALSO", "\\fBfuseline\\fR(1), \\fBfuseline\\-json\\fR(7)"]
        write(os.path.join(outdir, "fuseline-%s.1" % name), out)


def write(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


# ---- fuseline-json(7) from the README -------------------------------------

BEGIN = "<!-- mes-contract:begin -->"
END = "<!-- mes-contract:end -->"


def inline(s):
    """Markdown inline spans to roff: `code` bold, **x** bold, *x* italic,
    [text](url) text."""
    s = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", s)
    parts = re.split(r"(`[^`]+`|\*\*[^*]+\*\*)", s)
    r = ""
    for p in parts:
        if p.startswith("`") and p.endswith("`") and len(p) > 1:
            r += "\\fB" + esc(p[1:-1]) + "\\fR"
        elif p.startswith("**") and p.endswith("**") and len(p) > 3:
            r += "\\fB" + esc(p[2:-2]) + "\\fR"
        else:
            r += esc(p)
    return r.replace("\\&", "")


def breakable(roff):
    """Table cells are narrow: let long identifiers (public_key_sha256,
    factory-scripts/mes-example.py) break after '_', '/', '.' and '-', and
    CamelCase words between their parts (\\: is a zero-width break point)."""
    roff = re.sub(r"(_|/|\.(?=\w)|\\-)", lambda m: m.group(1) + "\\:", roff)
    # and inside CamelCase words (SubjectPublicKeyInfo), not in \fB-style escapes
    return re.sub(r"(?<=[a-z])(?<!\\f)(?<!\\e)(?=[A-Z])", "\\:", roff)


def json_man(readme, out_path, version):
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    nb, ne = text.count(BEGIN), text.count(END)
    if nb != 1 or ne != 1:
        hint = ""
        if nb > 1:
            hint = ": keep the pair around the MES contract section, delete any other (an empty placeholder)"
        die("%s: needs exactly one '%s' and one '%s' marker around the MES contract section "
            "(found %d and %d)%s" % (readme, BEGIN, END, nb, ne, hint))
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    if b < a:
        die("%s: '%s' comes before '%s'" % (readme, END, BEGIN))
    md = text[a:b].strip("\n").splitlines()
    out = th("fuseline-json", 7, version, "README.md's MES contract section")
    out += [".SH NAME",
            "fuseline\\-json \\- the MES contract: fuseline's JSON results, exit codes and idempotent re-runs",
            ".SH DESCRIPTION",
            ".PP",
            "This page is the README's MES contract section, as built. Every command takes \\fB\\-\\-json\\fR; "
            "see \\fBfuseline\\fR(1)."]
    has_table = False
    i = 0
    para = []

    def flush():
        if para:
            out.append(".PP")
            out.append(inline(" ".join(para)))
            para.clear()

    while i < len(md):
        l = md[i]
        s = l.strip()
        if s.startswith("```"):
            flush()
            out += [".PP", ".EX"]
            i += 1
            while i < len(md) and not md[i].strip().startswith("```"):
                out.append(esc(md[i]) if md[i] else "")
                i += 1
            out.append(".EE")
        elif re.match(r"^#{1,6} ", s):
            flush()
            level = len(s) - len(s.lstrip("#"))
            title = re.sub(r"[`*]", "", s.lstrip("#").strip())
            out.append((".SH " if level <= 2 else ".SS ") + esc_arg(title.upper() if level <= 2 else title))
        elif s.startswith("|"):
            flush()
            rows = []
            while i < len(md) and md[i].strip().startswith("|"):
                row = md[i].strip()
                row = row[1:] if row.startswith("|") else row
                row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
                cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]
                if not all(re.match(r"^:?-+:?$", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            i -= 1
            if rows:
                has_table = True
                n = max(len(r) for r in rows)
                # short columns at their natural width, long ones share the rest
                width = [max(len(re.sub(r"[`*]", "", r[k])) if k < len(r) else 0 for r in rows) for k in range(n)]
                kind = ["x" if w > 24 else "" for w in width]
                if not any(kind):
                    kind[-1] = "x"
                out += [".PP", ".TS", "allbox tab(\x1f);", " ".join("lb" + k for k in kind),
                        " ".join("l" + k for k in kind) + "."]
                for r in rows:
                    r = r + [""] * (n - len(r))
                    out.append("\x1f".join("T{\n" + breakable(inline(c)) + "\nT}" for c in r))
                out.append(".TE")
        elif re.match(r"^([-*]|\d+\.) ", s):
            flush()
            item = [re.sub(r"^([-*]|\d+\.) ", "", s)]
            while i + 1 < len(md) and md[i + 1].startswith("  ") and md[i + 1].strip() \
                    and not re.match(r"^([-*]|\d+\.) ", md[i + 1].strip()):
                i += 1
                item.append(md[i].strip())
            out += [".IP \\(bu 2", inline(" ".join(item))]
        elif not s:
            flush()
        elif s.startswith("<!--"):
            pass
        else:
            para.append(s)
        i += 1
    flush()
    out += [".SH SEE ALSO", "\\fBfuseline\\fR(1)"]
    if has_table:
        out.insert(0, "'\\\" t")
    write(out_path, out)


# ---- bash completion ---------------------------------------------------------

def lib_roles(libdir):
    """The role names the library defines, for completing --role without a
    keyset: the keyset role table, the UEFI roles and the *_ROLE names."""
    roles = []
    pats = [r'\{\s*"([a-z][a-z0-9-]*)",\s*ROLE_[A-Z_]+', r'\[UEFI_ROLE_[A-Z0-9_]+\]\s*=\s*\{\s*"([a-z][a-z0-9-]*)"',
            r'#define\s+[A-Z0-9_]+_ROLE\s+"([a-z][a-z0-9-]*)"']
    for fn in sorted(os.listdir(libdir)):
        if not fn.endswith((".c", ".h")):
            continue
        with open(os.path.join(libdir, fn), encoding="utf-8") as f:
            src = f.read()
        for p in pats:
            for m in re.finditer(p, src):
                if m.group(1) not in roles:
                    roles.append(m.group(1))
    if len(roles) < 3:
        die("%s: found %d role names (expected the keyset role table): has it moved?" % (libdir, len(roles)))
    return roles


def sh_words(words):
    return "'" + " ".join(words).replace("'", "") + "'"


def sh_key(*parts):
    """An associative-array key: words joined by '_' ('verify_keyset_--json')."""
    return "'" + "_".join(parts).replace(" ", "_").replace("'", "") + "'"


def completion(exe, out_path, libdir):
    _top, cmds, data = gather(exe)
    roles = lib_roles(libdir)
    out = ["# bash completion for fuseline: commands, subjects, options, roles.",
           "# Generated at build time by cmd/gendoc.py from 'fuseline --help': do not edit.",
           "# Roles come from the keyset named by --keyset (or $FUSELINE_KEYSET), else",
           "# from the library's role names.",
           "",
           "_fuseline_commands=%s" % sh_words([c for c, _ in cmds]),
           "_fuseline_roles=%s" % sh_words(roles),
           "declare -gA _fuseline_subjects=() _fuseline_opts=() _fuseline_argkind=()"]
    for name, (_s, h, subs) in data.items():
        if h.what:
            out.append("_fuseline_subjects[%s]=%s" % (name, sh_words([w for w, _ in h.what])))
        keys = {name: [h]}
        for args, sh in subs:
            if h.what and args[0] in [w for w, _ in h.what]:
                keys.setdefault(name + " " + args[0], []).append(sh)
            else:
                keys[name].append(sh)
        for key, helps in keys.items():
            opts = []
            for hh in helps:
                for o, meta in hh.options():
                    w = o + ("=" if meta and o.startswith("--") else "")
                    if w not in opts:
                        opts.append(w)
                    if meta:
                        kind = "role" if meta == "ROLE" else \
                            "dir" if re.search(r"DIR$", meta) else \
                            "file" if re.search(r"FILE|PATH|LIST|PEM|CSR|CERT|DB|XML|JSON|IMG", meta) else "none"
                        out.append("_fuseline_argkind[%s]=%s" % (sh_key(key, o), kind))
            out.append("_fuseline_opts[%s]=%s" % (sh_key(key), sh_words(opts)))
    out += [r'''
_fuseline_keyset_roles() {
  local i ks=${FUSELINE_KEYSET:-}
  for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
    case ${COMP_WORDS[i]} in
      --keyset=*) ks=${COMP_WORDS[i]#--keyset=} ;;
      --keyset)
        if [[ ${COMP_WORDS[i+1]:-} == = ]]; then ks=${COMP_WORDS[i+2]:-}; else ks=${COMP_WORDS[i+1]:-}; fi ;;
    esac
  done
  ks=${ks/#\~/$HOME}
  if [[ -n $ks && -r $ks ]]; then
    grep -o '"role"[[:space:]]*:[[:space:]]*"[^"]*"' -- "$ks" 2>/dev/null | sed 's/.*"\([^"]*\)"$/\1/'
  else
    printf '%s\n' $_fuseline_roles
  fi
}

_fuseline() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev= opt= key cmd kind
  (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
  COMPREPLY=()
  if (( COMP_CWORD == 1 )); then
    COMPREPLY=($(compgen -W "$_fuseline_commands help --help --version" -- "$cur"))
    return
  fi
  cmd=${COMP_WORDS[1]}
  [[ $cmd == help ]] && { (( COMP_CWORD == 2 )) && COMPREPLY=($(compgen -W "$_fuseline_commands" -- "$cur")); return; }
  key=$cmd
  if [[ -n ${_fuseline_subjects[$cmd]:-} ]]; then
    if (( COMP_CWORD == 2 )); then
      COMPREPLY=($(compgen -W "${_fuseline_subjects[$cmd]}" -- "$cur"))
      return
    fi
    key="${cmd}_${COMP_WORDS[2]}"
  fi
  # the option whose value is being typed: "--opt VALUE", "--opt=VALUE"
  # (bash splits at '=': "--opt" "=" "VALUE"), or "--opt=VALUE" as one word
  if [[ $cur == --*=* ]]; then
    opt=${cur%%=*}; cur=${cur#*=}
  elif [[ $cur == = && $prev == --* ]]; then
    opt=$prev; cur=
  elif [[ $prev == = ]] && (( COMP_CWORD >= 3 )); then
    opt=${COMP_WORDS[COMP_CWORD-2]}
  elif [[ $prev == -* && -n ${_fuseline_argkind[${key}_$prev]+set} ]]; then
    opt=$prev
  fi
  if [[ -n $opt ]]; then
    kind=${_fuseline_argkind[${key}_$opt]:-none}
    case $kind in
      role) COMPREPLY=($(compgen -W "$(_fuseline_keyset_roles)" -- "$cur")) ;;
      dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
      file) COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "${_fuseline_opts[$key]:-}" -- "$cur"))
    [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _fuseline fuseline
''']
    with open(out_path + ".tmp", "w", encoding="ascii") as f:
        f.write("\n".join(out))
    os.replace(out_path + ".tmp", out_path)


def main(argv):
    global EXPECT
    if len(argv) > 2 and argv[1] == "--expect":
        EXPECT = argv[2].split(",")
        argv = argv[:1] + argv[3:]
    if len(argv) == 3 and argv[1] == "list-commands":
        print("\n".join(table_commands(argv[2])))
    elif len(argv) == 5 and argv[1] == "man":
        man_pages(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "json-man":
        json_man(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "completion":
        completion(argv[2], argv[3], argv[4])
    else:
        die("usage: gendoc.py man FUSELINE OUTDIR VERSION | json-man README OUT VERSION | "
            "completion FUSELINE OUT LIBDIR")


if __name__ == "__main__":
    main(sys.argv)
