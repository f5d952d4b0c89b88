#!/usr/bin/env bash
# Benchmark (not a timed test): `fuseline verify keyset` against
# `pkcs11-tool --list-objects` on the same token, and `fuseline --help`
# start-up against `openssl version`. Prints ratios measured in this run.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
lab_token
N=${BENCH_N:-20}
"$FUSELINE" keygen --chip t234 --pkc rsa3k --pkc-count 3 --sbk --oem-k1 --oem-k2 --lab --out ks.json -q >/dev/null

now() { date +%s%N; }
time_it() { # N command... -> mean ns
  local t0 t1 i
  t0=$(now)
  for ((i = 0; i < N; i++)); do "$@" >/dev/null 2>&1; done
  t1=$(now)
  echo $(( (t1 - t0) / N ))
}
ours=$(time_it "$FUSELINE" verify keyset ks.json)
base=$(time_it pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --list-objects)
awk -v a="$ours" -v b="$base" 'BEGIN { printf "verify keyset (5 keys): %.1f ms; pkcs11-tool --list-objects: %.1f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'
ours=$(time_it "$FUSELINE" --help)
base=$(time_it openssl version)
awk -v a="$ours" -v b="$base" 'BEGIN { printf "fuseline --help start-up: %.2f ms; openssl version: %.2f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'
