#!/usr/bin/env bash
# lab-rehearsal.sh — the main job on the embedded defaults, with test keys
# and no hardware: a SoftHSM2 lab token, the SQLite ledger, and every step of
# a station that the code supports today. Builds fuseline first if needed.
#
#   factory-scripts/lab-rehearsal.sh [WORKDIR]      (default ./rehearsal)
#
# WORKDIR is recreated on every run (it only ever holds lab keys). Ends with
# PASS (exit 0) or FAIL (the failing step's exit code).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${1:-$PWD/rehearsal}

if [ ! -f "$root/build/build.ninja" ]; then
  meson setup "$root/build" "$root" >/dev/null
fi
meson compile -C "$root/build" >/dev/null
F=$root/build/cmd/fuseline

rm -rf "$work"
mkdir -p "$work"
cd "$work"
eval "$(LAB_INIT=$root/build/hsm/fuseline-lab-init "$root/hsm/lab-token.sh" "$work/lab")"
export FUSELINE_DB=$work/fuseline.db

n=0
step() {
  n=$((n + 1))
  printf '\n== step %d: %s\n' "$n" "$1"
  shift
  printf '   $ %s\n' "$*"
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\nFAIL at step %d (exit %d)\n' "$n" "$rc"
    exit "$rc"
  fi
}

step "secure-boot keys for an Orin product, inside the lab token" \
  "$F" keygen --chip t234 --pkc rsa3k --pkc-count 3 --sbk --oem-k1 --oem-k2 --name orin-lab --lab --out keyset.json
step "prove the keyset matches the token" "$F" verify keyset keyset.json
#@rehearsal-steps@ (later steps are added here as the commands land)

printf '\nPASS: %d steps; work in %s\n' "$n" "$work"
