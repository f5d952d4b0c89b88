#!/usr/bin/env bash
# `meson install` into a DESTDIR gives a product a user can run on a clean
# system: the binary finds its templates without $FUSELINE_TEMPLATES, the lab
# token script finds its initialiser, the man pages render without a warning
# and document every option --help lists, bash completes commands, options
# and roles, the udev rule, the sysusers file and the systemd unit are in
# place and valid, the tegrasign hook defaults to the installed binary — and
# the whole lab rehearsal runs from the installed tree, nothing on PATH.
. "$SRCDIR/tests/lib.sh"
: "${BUILDDIR:?}"

D=$T/dest
meson install -C "$BUILDDIR" --no-rebuild --destdir "$D" >"$T/install.log" 2>&1 \
  || { cat "$T/install.log" >&2; fail "meson install --destdir"; }
pass "meson install --destdir"

# Where meson says each built file goes (the configured prefix, without DESTDIR).
meson introspect "$BUILDDIR" --installed > "$T/installed.json"
inst() { python3 -c 'import json,sys
for k, v in json.load(open(sys.argv[1])).items():
    if k.endswith(sys.argv[2]): print(v); break' "$T/installed.json" "$1"; }
bin_conf=$(inst /cmd/fuseline)
[ -n "$bin_conf" ] || fail "meson does not install cmd/fuseline"
prefix=$(dirname "$(dirname "$bin_conf")")
P=$D$prefix
F=$P/bin/fuseline
[ -x "$F" ] || fail "$F not installed"
pass "fuseline installed at $bin_conf"

# ---- what is installed -------------------------------------------------------
for f in bin/fuseline-lab-init bin/fuseline-lab-token share/fuseline/tegrasign/tegrasign_v3_hsm.py \
         share/fuseline/tegrasign/README.md; do
  [ -f "$P/$f" ] || fail "$f not installed"
done
[ -x "$P/bin/fuseline-lab-token" ] || fail "fuseline-lab-token not executable"
cmp -s "$P/bin/fuseline-lab-token" "$SRCDIR/hsm/lab-token.sh" || fail "fuseline-lab-token differs from hsm/lab-token.sh"
pass "lab token script beside fuseline-lab-init, tegrasign drop-in"
n=0
for t in "$SRCDIR"/templates/*.conf; do
  cmp -s "$t" "$P/share/fuseline/templates/$(basename "$t")" || fail "template $(basename "$t") not installed"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no templates in the source tree"
pass "all $n templates installed"
# A shared library is only worth installing with a header to build against.
so=$(find "$D" -name 'libfuseline*.so*' | head -n1)
if [ -n "$so" ]; then
  find "$D" -name 'fuseline.h' | grep -q . || fail "$so installed without a header: nothing can use it"
fi
pass "no unusable shared library installed"

# ---- templates: found beside the binary, no $FUSELINE_TEMPLATES, no ./templates
mkdir "$T/empty"
tmpl_err() { (cd "$T/empty" && env -u FUSELINE_TEMPLATES "$F" fuse-xml --template "$1" \
               --keyset "$T/none.json" --out "$T/x.xml") 2>&1 || true; }
e=$(tmpl_err orin-nx-16gb)
case $e in *"template 'orin-nx-16gb' not found"*) fail "installed template not found: $e" ;; esac
case $e in *none.json*) ;; *) fail "expected the keyset error once the template is found, got: $e" ;; esac
e=$(tmpl_err no-such-product)
case $e in *"template 'no-such-product' not found"*"$P/bin/../share/fuseline/templates"*) ;;
  *) fail "a missing template should name the installed directory: $e" ;; esac
mv "$P/share/fuseline/templates" "$P/share/fuseline/templates.away"
e=$(tmpl_err orin-nx-16gb)
mv "$P/share/fuseline/templates.away" "$P/share/fuseline/templates"
case $e in *"template 'orin-nx-16gb' not found"*) ;; *) fail "lookup did not depend on the installed dir: $e" ;; esac
pass "templates found in the installed data dir (and only there)"

# ---- the tegrasign hook runs the installed binary by default -----------------
got=$(env -u FUSELINE python3 -c 'import importlib.util,sys
s = importlib.util.spec_from_file_location("hook", sys.argv[1]); m = importlib.util.module_from_spec(s)
s.loader.exec_module(m); print(m._binary())' "$P/share/fuseline/tegrasign/tegrasign_v3_hsm.py")
[ "$got" = "$bin_conf" ] || fail "installed hook's default fuseline is '$got', expected $bin_conf"
got=$(env -u FUSELINE python3 -c 'import importlib.util,sys
s = importlib.util.spec_from_file_location("hook", sys.argv[1]); m = importlib.util.module_from_spec(s)
s.loader.exec_module(m); print(m._binary())' "$SRCDIR/templates/tegrasign/tegrasign_v3_hsm.py")
[ "$got" = fuseline ] || fail "source-tree hook's default should be 'fuseline' on PATH, got '$got'"
pass "tegrasign hook: installed copy defaults to $bin_conf"

# ---- man pages ---------------------------------------------------------------
M=$P/share/man
plain() { groff -t -man -Tutf8 -rLL=400n -P-cbou "$1" 2>/dev/null; }   # wide: no wrapping
lint() {  # groff's every warning, as text; empty when the page is clean
  groff -t -man -Tutf8 -ww -z "$1" 2>&1
}
"$F" --help > "$T/top"
cmds=$(awk '/^Commands:/{f=1;next} f && /^  [a-z]/{print $1} f && /^$/{exit}' "$T/top")
[ -n "$cmds" ] || fail "no commands in fuseline --help"
for page in "$M/man1/fuseline.1" "$M/man7/fuseline-json.7"; do
  [ -f "$page" ] || fail "$page not installed"
  w=$(lint "$page"); [ -z "$w" ] || fail "$(basename "$page"): groff warns: $w"
done
plain "$M/man1/fuseline.1" > "$T/fuseline.txt"
for c in $cmds; do
  page=$M/man1/fuseline-$c.1
  [ -f "$page" ] || fail "no man page for command $c"
  w=$(lint "$page"); [ -z "$w" ] || fail "fuseline-$c.1: groff warns: $w"
  grep -q "fuseline-$c(1)" "$T/fuseline.txt" || fail "fuseline(1) does not point to fuseline-$c(1)"
  plain "$page" > "$T/page.txt"
  grep -q "^NAME" "$T/page.txt" && grep -q "fuseline-$c - " "$T/page.txt" || fail "fuseline-$c.1 has no NAME line"
  # every option of every help this command has (its subjects' too) is in the
  # page, typed as on the command line (ASCII hyphens: pasteable)
  "$F" "$c" --help > "$T/h"
  for w in $(awk '/^WHAT:/{f=1;next} f && /^  [a-z]/{print $1}' "$T/h"); do "$F" "$c" "$w" --help >> "$T/h"; done
  for o in $(grep -oE -- '--[a-z0-9][a-z0-9-]*' "$T/h" | sort -u); do
    [ "$o" = --usage ] && continue        # argp's own, left out of the pages
    grep -qF -- "$o" "$T/page.txt" || fail "fuseline-$c(1) lacks $o, which '$c --help' lists"
  done
  MANPATH=$M man -w "fuseline-$c" | grep -qx "$page" || fail "'man fuseline-$c' does not find $page"
done
MANPATH=$M man -w fuseline | grep -qx "$M/man1/fuseline.1" || fail "'man fuseline' does not resolve"
MANPATH=$M man -w 7 fuseline-json | grep -qx "$M/man7/fuseline-json.7" || fail "'man 7 fuseline-json' does not resolve"
pass "man fuseline, fuseline-json(7) and fuseline-<command> for $(echo $cmds | wc -w) commands: no groff warning, every option"

# fuseline-json(7) is the README's section between the markers; the generator
# refuses a README without them, and renders tables, lists and code cleanly.
G=$SRCDIR/cmd/doc/gendoc.py
grep -v 'mes-contract:' "$SRCDIR/README.md" > "$T/README-nomarkers.md"
if python3 "$G" json-man "$T/README-nomarkers.md" "$T/j.7" 0 2>"$T/err"; then fail "json-man accepted a README without markers"; fi
grep -q 'mes-contract:begin' "$T/err" || fail "json-man's error does not name the missing marker"
: > "$T/err"
cat > "$T/README-t.md" <<'MD'
intro outside
<!-- mes-contract:begin -->
## The MES contract
Every command's `--json` result **is** one object.
| command | field | meaning |
|---|---|---|
| `sign` | `file_sha256` | SHA-256 of the signed file |
- exit 7: a conflict,
  re-run with `--force`
```sh
fuseline sign --json | jq .ok
```
<!-- mes-contract:end -->
outside
MD
python3 "$G" json-man "$T/README-t.md" "$T/t.7" 0.0 || fail "json-man on a sample section"
w=$(lint "$T/t.7"); [ -z "$w" ] || fail "sample fuseline-json.7: groff warns: $w"
plain "$T/t.7" > "$T/t.txt"
for s in "THE MES CONTRACT" "file_sha256" "SHA-256 of the signed file" "re-run with --force" "fuseline sign --json | jq .ok"; do
  grep -qF -- "$s" "$T/t.txt" || fail "sample fuseline-json.7 lacks '$s'"
done
grep -q "outside" "$T/t.txt" && fail "sample fuseline-json.7 took text from outside the markers"
# the installed page holds what the README's section holds (its headings)
sed -n '/<!-- mes-contract:begin -->/,/<!-- mes-contract:end -->/p' "$SRCDIR/README.md" \
  | sed -n 's/^#\{1,6\} \(.*\)/\1/p' | tr -d '`*' > "$T/headings"
plain "$M/man7/fuseline-json.7" > "$T/json.txt"
while IFS= read -r h; do
  grep -qiF -- "$h" "$T/json.txt" || fail "fuseline-json(7) lacks the README heading '$h'"
done < "$T/headings"
pass "fuseline-json(7) from the README's marked section (markers required; tables, lists, code)"

# ---- bash completion -----------------------------------------------------------
C=$(find "$D" -path '*/bash-completion/completions/fuseline' | head -n1)
[ -n "$C" ] || fail "no bash completion installed under bash-completion/completions/fuseline"
got=$(bash --norc --noprofile -c 'source "$1" && complete -p fuseline' _ "$C")
[ "$got" = "complete -F _fuseline fuseline" ] || fail "complete -p fuseline: '$got'"
# complete WORD...: what bash offers for the last word, one per line
complete_words() {
  bash --norc --noprofile -c 'source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _fuseline fuseline "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$C" "$@"
}
has() {
  local want=$1 got; shift; got=$(complete_words "$@")
  grep -qx -- "$want" <<<"$got" || fail "completing '$*' does not offer $want (got: $(tr '\n' ' ' <<<"$got"))"
}
hasnt() { local no=$1 got; shift; got=$(complete_words "$@"); ! grep -qx -- "$no" <<<"$got" || fail "completing '$*' offers $no"; }
for c in $cmds; do has "$c" fuseline "${c:0:2}"; done
hasnt sign fuseline ke
has keyset fuseline verify k
has ledger fuseline verify l
has show fuseline ledger s
has --keyset= fuseline sign --ke
has --role= fuseline sign --ro
has --uefi-var= fuseline sign --uefi        # a mode's options too
has --identity-ca fuseline keygen --iden
has --plan= fuseline verify fuses --pl       # a subject's options
hasnt --plan= fuseline verify keyset --pl
pass "bash completion: commands, subjects, options (modes and subjects included)"

# ---- the rehearsal, from the installed tree only -------------------------------
if ! command -v umockdev-run >/dev/null; then
  echo "SKIP: umockdev-run missing (apt-get install umockdev): the rehearsal's virtual line needs it" >&2
  exit 77
fi
case ":$PATH:" in *":$P/bin:"*) fail "the installed bin dir must not be on PATH here" ;; esac
if command -v fuseline >/dev/null; then
  PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$(dirname "$(command -v fuseline)")" | paste -sd:)
fi
command -v fuseline >/dev/null && fail "a fuseline on PATH would make this test meaningless"
(cd "$T/empty" && env -u FUSELINE_TEMPLATES -u LAB_INIT FUSELINE_PREFIX="$P" \
   bash "$SRCDIR/factory-scripts/lab-rehearsal.sh" "$T/rehearsal") > "$T/rehearsal.log" 2>&1 \
  || { tail -n 30 "$T/rehearsal.log" >&2; fail "the lab rehearsal from the installed tree"; }
grep -q '^PASS: ' "$T/rehearsal.log" || fail "rehearsal did not print PASS"
grep -qF "$P/bin/fuseline" "$T/rehearsal.log" || fail "rehearsal did not run the installed binary"
grep -qF "$BUILDDIR/cmd/fuseline" "$T/rehearsal.log" && fail "rehearsal ran the build tree's binary"
pass "lab rehearsal from the DESTDIR install: $(grep '^PASS: ' "$T/rehearsal.log")"

# roles: from the keyset on the command line, and without one the library's
# names, which must cover every role the rehearsal's keyset holds
KS=$T/rehearsal/keyset.json
roles=$(jget "$KS" '"\n".join(k["role"] for k in d["keys"])')
[ -n "$roles" ] || fail "no roles in $KS"
for r in $roles; do
  has "$r" fuseline sign --keyset "$KS" --role ""
  has "$r" fuseline sign --keyset="$KS" --role=""
  # per-device roles (ftpm-kdk0-<SN>) are named at run time: no fixed name to know
  [[ $r =~ -[0-9a-f]{16,}$ ]] || has "$r" fuseline keygen --import-hex x --role ""
done
has pkc0 fuseline sign --keyset "$KS" --role p
hasnt sbk fuseline sign --keyset "$KS" --role p
# a keyset holding one role offers exactly that one
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["keys"]=d["keys"][:1]; json.dump(d,open(sys.argv[2],"w"))' "$KS" "$T/one.json"
one=$(jget "$T/one.json" 'd["keys"][0]["role"]')
[ "$(complete_words fuseline sign --keyset "$T/one.json" --role "")" = "$one" ] || fail "roles not read from the keyset"
pass "bash completion: roles from the keyset ($(echo $roles | wc -w)), and the library's names cover them"

# ---- udev rule, sysusers file, systemd unit --------------------------------------
R=$(find "$D" -path '*/udev/rules.d/99-fuseline-jetson-recovery.rules' | head -n1)
[ -n "$R" ] || fail "udev rule not installed under udev/rules.d"
cmp -s "$R" "$SRCDIR/factory-scripts/99-fuseline-jetson-recovery.rules" || fail "installed udev rule differs"
python3 - "$R" <<'PY' || fail "udev rule syntax"
import re, sys
# udev(7) rule syntax: comma-separated KEY[{attr}] OP "value" pairs; GOTO targets exist
pair = re.compile(r'\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*')
labels, gotos = set(), []
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    pos = 0
    while True:
        m = pair.match(line, pos)
        if not m:
            sys.exit("line %d: not a udev rule at column %d: %s" % (n, pos + 1, line))
        key, op, val = m.group(1), m.group(3), m.group(4)
        if key == "LABEL": labels.add(val)
        if key == "GOTO": gotos.append(val)
        if key in ("MODE",) and not re.fullmatch(r"0[0-7]{3}", val):
            sys.exit("line %d: MODE %s" % (n, val))
        pos = m.end()
        if pos == len(line): break
        if line[pos] != ",": sys.exit("line %d: expected ',' at column %d" % (n, pos + 1))
        pos += 1
missing = set(gotos) - labels
if missing: sys.exit("GOTO without LABEL: %s" % missing)
PY
pass "udev rule installed and well-formed"
S=$(find "$D" -path '*/sysusers.d/fuseline.conf' | head -n1)
[ -n "$S" ] || fail "sysusers file not installed"
grep -qE '^u fuseline -:fuseline ' "$S" && grep -qE '^g fuseline -' "$S" || fail "sysusers: no fuseline user/group"
grep -q 'GROUP="fuseline"' "$R" || fail "udev rule's group is not the sysusers group"
U=$(find "$D" -path '*/systemd/system/fuseline-station@.service' | head -n1)
[ -n "$U" ] || fail "fuseline-station@.service not installed"
grep -qx "ExecStart=$bin_conf station --config /etc/fuseline/%i.conf" "$U" || fail "unit's ExecStart is not the installed binary"
grep -qx "User=fuseline" "$U" || fail "unit does not run as the station user"
# the central ledger's roles file (README "PostgreSQL ledger")
cmp -s "$P/share/fuseline/ledger-pg-roles.sql" "$SRCDIR/factory-scripts/ledger-pg-roles.sql" \
  || fail "ledger-pg-roles.sql not installed"
# the station's example configuration writes only where the unit lets it
if [ -f "$SRCDIR/factory-scripts/station.conf.example" ]; then
  X=$P/share/fuseline/station.conf.example
  cmp -s "$X" "$SRCDIR/factory-scripts/station.conf.example" || fail "station.conf.example not installed"
  for k in ledger log-dir cert-dir csr-dir; do
    v=$(sed -n "s/^$k[[:space:]]*=[[:space:]]*//p" "$X")
    [ -z "$v" ] && continue
    case $v in
      /var/lib/fuseline/*|/var/log/fuseline/*|/var/lib/fuseline|/var/log/fuseline) ;;
      *) fail "station.conf.example's $k = $v is outside the unit's StateDirectory/LogsDirectory" ;;
    esac
  done
  grep -qx 'StateDirectory=fuseline' "$U" && grep -qx 'LogsDirectory=fuseline' "$U" \
    || fail "unit's writable directories are not /var/lib/fuseline and /var/log/fuseline"
  pass "station.conf.example installed; its ledger and log paths are writable under the unit"
fi
if command -v systemd-analyze >/dev/null; then
  # verify a copy that runs the DESTDIR binary; any diagnostic is a failure
  sed "s|^ExecStart=$bin_conf|ExecStart=$F|" "$U" > "$T/fuseline-station@line1.service"
  MANPATH=$M systemd-analyze verify "$T/fuseline-station@line1.service" > "$T/verify.log" 2>&1 || true
  if ! grep -qx station <<<"$cmds"; then   # its page comes with the command
    sed -i "/Command 'man fuseline-station(1)' failed/d" "$T/verify.log"
  fi
  [ ! -s "$T/verify.log" ] || fail "systemd-analyze verify: $(cat "$T/verify.log")"
  systemd-analyze security --offline=yes --threshold=25 "$T/fuseline-station@line1.service" >"$T/sec.log" 2>&1 \
    || fail "unit exposure above 2.5: $(grep -i 'overall' "$T/sec.log")"
  pass "systemd-analyze verify: clean; $(grep -i 'overall exposure' "$T/sec.log" | sed 's/ *[^ ]*$//')"
else
  # no systemd here: at least every line is a section, a comment or Key=value
  grep -vE '^(#.*|\[(Unit|Service|Install)\]|[A-Za-z]+=.*|)$' "$U" && fail "unit has malformed lines"
  pass "unit file well-formed (systemd-analyze not available)"
fi

done_testing
