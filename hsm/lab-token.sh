#!/usr/bin/env bash
# lab-token.sh — create (idempotently) the SoftHSM2 lab token "lab" under a
# project-local directory and print the export lines a shell needs.
#
#   eval "$(hsm/lab-token.sh [DIR])"        # DIR defaults to ./.fuseline-lab
#
# Writes DIR/softhsm2.conf, DIR/tokens/, DIR/user.pin and DIR/so.pin (both
# 0600, random). The PINs never appear in a command line: the token is
# initialised by fuseline-lab-init, which reads them from those files.
# Environment: LAB_INIT (path of fuseline-lab-init; default: build/hsm/…),
# SOFTHSM2_MODULE (default: Debian's libsofthsm2.so), LAB_LABEL (default lab).
set -euo pipefail

dir=${1:-./.fuseline-lab}
label=${LAB_LABEL:-lab}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
init=${LAB_INIT:-$here/../build/hsm/fuseline-lab-init}

die() { echo "lab-token.sh: $*" >&2; exit 1; }
[ -r "$module" ] || die "SoftHSM2 module $module not found (apt-get install softhsm2)"
[ -x "$init" ] || die "$init not found: build first (meson setup build && meson compile -C build)"

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
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

cat <<ENV
export SOFTHSM2_CONF='$conf'
export FUSELINE_TOKEN='pkcs11:token=$label'
export FUSELINE_MODULE='$module'
export FUSELINE_PIN_FILE='$dir/user.pin'
ENV
