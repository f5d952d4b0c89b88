#!/usr/bin/env bash
# lab-token.sh — create (idempotently) the SoftHSM2 lab token "lab" under a
# project-local directory and print the export lines a shell needs.
#
#   eval "$(hsm/lab-token.sh [DIR])"        # DIR defaults to ./.fuseline-lab
#   hsm/lab-token.sh --repair DIR           # restore an emptied token.object
#
# Writes DIR/softhsm2.conf, DIR/tokens/, DIR/user.pin and DIR/so.pin (both
# 0600, random). The PINs never appear in a command line: the token is
# initialised by fuseline-lab-init, which reads them from those files.
# After initialisation a verified copy of each token's token.object is kept
# in DIR/backup/<token>/: SoftHSM2 2.6.1 truncates token.object and rewrites
# it on every login, so a process killed in that moment (SIGKILL, power
# loss) leaves it empty and the token invisible, keys and all. --repair puts
# the copy back (the key objects live in their own files and are untouched).
# Installed by `meson install` as fuseline-lab-token, beside fuseline-lab-init.
# Environment: LAB_INIT (path of fuseline-lab-init; default: the one beside
# this script when installed, else build/hsm/… of the source tree),
# SOFTHSM2_MODULE (default: Debian's libsofthsm2.so), LAB_LABEL (default lab).
set -euo pipefail

repair=0
if [ "${1:-}" = --repair ]; then
  repair=1
  shift
  [ $# -eq 1 ] || { echo "usage: lab-token.sh --repair DIR" >&2; exit 2; }
fi
dir=${1:-./.fuseline-lab}
label=${LAB_LABEL:-lab}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# how the user calls it: hsm/lab-token.sh in the source tree, fuseline-lab-token installed
case $(basename "${BASH_SOURCE[0]}") in lab-token.sh) me=hsm/lab-token.sh ;; *) me=$(basename "${BASH_SOURCE[0]}") ;; esac
module=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ -n "${LAB_INIT:-}" ]; then
  init=$LAB_INIT
elif [ -x "$here/fuseline-lab-init" ]; then
  init=$here/fuseline-lab-init                    # installed: both in bindir
else
  init=$here/../build/hsm/fuseline-lab-init       # the source tree
fi

die() { echo "lab-token.sh: $*" >&2; exit 1; }
[ -r "$module" ] || die "SoftHSM2 module $module not found (apt-get install softhsm2)"
[ -x "$init" ] || die "$init not found: build first (meson setup build && meson compile -C build)"

# Token directories whose token.object is empty (or gone while objects
# remain): what a kill during SoftHSM2's rewrite leaves.
broken_tokens() {
  local t
  for t in "$1"/tokens/*/; do
    [ -d "$t" ] || continue
    t=${t%/}
    if [ -f "$t/token.object" ] && [ ! -s "$t/token.object" ]; then echo "$t"; fi
  done
}

token_visible() {
  SOFTHSM2_CONF=$1/softhsm2.conf softhsm2-util --show-slots 2>/dev/null \
    | grep -Eq "^[[:space:]]*Label:[[:space:]]+$2[[:space:]]*\$"
}

if [ $repair = 1 ]; then
  [ -d "$dir/tokens" ] || die "$dir has no tokens/ directory: not a lab token directory"
  dir=$(cd "$dir" && pwd)
  n=0
  for t in $(broken_tokens "$dir"); do
    b=$dir/backup/$(basename "$t")/token.object
    [ -s "$b" ] || die "$t/token.object is empty and there is no copy at $b: the token cannot be repaired"
    cp "$b" "$t/token.object.repair" && mv "$t/token.object.repair" "$t/token.object"
    cmp -s "$b" "$t/token.object" || die "$t/token.object: the restored copy does not match $b"
    echo "lab-token.sh: restored $t/token.object from the copy taken at initialisation" >&2
    n=$((n + 1))
  done
  [ $n -gt 0 ] || echo "lab-token.sh: no emptied token.object under $dir/tokens: nothing to repair" >&2
  token_visible "$dir" "$label" || die "token '$label' is still not visible in $dir"
  echo "lab-token.sh: token '$label' in $dir is usable" >&2
  exit 0
fi

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
# Initialising now would create a second, empty token beside the broken one.
b=$(broken_tokens "$dir" | head -n1)
[ -z "$b" ] || die "$b/token.object is empty (a process was killed while SoftHSM2 rewrote it): run $me --repair $dir"
conf=$dir/softhsm2.conf
if [ ! -f "$conf" ]; then
  cat > "$conf.tmp" <<CONF
# SoftHSM2 configuration for the fuseline lab token (test keys only).
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
  mv "$conf.tmp" "$conf"
fi
newpin() {
  # 16 random bytes as hex; created 0600 before anything is written to it.
  [ -s "$1" ] && return 0
  ( umask 077; od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$1.tmp" && mv "$1.tmp" "$1" )
}
newpin "$dir/so.pin"
newpin "$dir/user.pin"

SOFTHSM2_CONF=$conf "$init" "$module" "$label" "$dir/so.pin" "$dir/user.pin" \
  || die "could not initialise token '$label' in $dir"

# The verified copy: taken once, while the token is known to be visible (the
# initialiser just found or made it), and compared byte for byte.
for t in "$dir"/tokens/*/; do
  [ -s "$t/token.object" ] || continue
  t=${t%/}
  b=$dir/backup/$(basename "$t")
  [ -s "$b/token.object" ] && continue
  mkdir -p "$b"
  cp "$t/token.object" "$b/token.object.tmp"
  cmp -s "$t/token.object" "$b/token.object.tmp" || die "$b/token.object: copy differs from $t/token.object"
  mv "$b/token.object.tmp" "$b/token.object"
done

cat <<ENV
export SOFTHSM2_CONF='$conf'
export FUSELINE_TOKEN='pkcs11:token=$label'
export FUSELINE_MODULE='$module'
export FUSELINE_PIN_FILE='$dir/user.pin'
ENV
