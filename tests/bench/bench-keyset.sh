#!/usr/bin/env bash
# Benchmark (not a timed test), the same work on both sides, in one run:
#  - `fuseline verify keyset` on a keyset of three RSA-3072 PKC keys (each
#    found exactly once in the token, its public key read and its SHA-256
#    compared with the manifest's public_key_sha256) against the same done
#    by independent tools: one `pkcs11-tool --login --list-objects` (each
#    label found once), then per key `pkcs11-tool --read-object` of the
#    public key and `openssl pkey | sha256sum` compared with the manifest.
#    Beside it, the floor: a token login alone (pkcs11-tool --login listing
#    a type the token holds none of).
#  - `fuseline --help` start-up against `openssl version` (start, print, exit).
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
lab_token
N=${BENCH_N:-20}
"$FUSELINE" keygen --chip t234 --pkc rsa3k --pkc-count 3 --name kb --lab --out ks.json -q >/dev/null
"$FUSELINE" verify keyset ks.json >/dev/null || fail "verify keyset fails on a fresh keyset"
mapfile -t keys < <(python3 -c 'import json,sys
for k in json.load(open(sys.argv[1]))["keys"]: print(k["label"], k["public_key_sha256"])' ks.json)
[ "${#keys[@]}" -eq 3 ] || fail "expected 3 keys in the manifest, got ${#keys[@]}"

p11() { pkcs11-tool --module "$MODULE" --token-label lab "$@"; }
by_tools() { # the same checks, by pkcs11-tool and openssl
  local line label want
  p11 --login --pin env:TEST_PIN --list-objects > objs.txt 2>/dev/null
  for line in "${keys[@]}"; do
    label=${line% *} want=${line#* }
    [ "$(grep -c "label: *$label\$" objs.txt)" -ge 1 ] || return 1
    p11 --read-object --type pubkey --label "$label" -o pub.der >/dev/null 2>&1 || return 1
    [ "$(openssl pkey -pubin -inform DER -in pub.der -outform DER | sha256sum | cut -d' ' -f1)" = "$want" ] || return 1
  done
}
by_tools || fail "the independent check does not pass on the same keyset"

now() { date +%s%N; }
time_it() { # command... -> mean ns (the command must succeed every time)
  local t0 t1 i
  t0=$(now)
  for ((i = 0; i < N; i++)); do "$@" >/dev/null 2>&1 || fail "$* failed"; done
  t1=$(now)
  echo $(( (t1 - t0) / N ))
}
ours=$(time_it "$FUSELINE" verify keyset ks.json)
base=$(time_it by_tools)
floor=$(time_it p11 --login --pin env:TEST_PIN --list-objects --type data)
awk -v a="$ours" -v b="$base" -v f="$floor" 'BEGIN { printf "verify keyset (3 RSA-3072 keys): fuseline %.1f ms; pkcs11-tool + openssl doing the same checks %.1f ms; ratio %.2f; floor (pkcs11-tool login alone) %.1f ms\n", a/1e6, b/1e6, a/b, f/1e6 }'
ours=$(time_it "$FUSELINE" --help)
base=$(time_it openssl version)
awk -v a="$ours" -v b="$base" 'BEGIN { printf "fuseline --help start-up: %.2f ms; openssl version: %.2f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'
