#!/usr/bin/env bash
# Concurrent writers of one keyset manifest on the lab token: in each round
# three `keygen --import-hex` processes add a different fuse key (sbk,
# oem-k1, oem-k2) to the same manifest at once. keyset_save locks the
# manifest's directory and applies each writer's change to the file as it
# is then, so every round ends with all three keys in the manifest (before,
# the last writer's save dropped the others' keys while their token objects
# stayed). Each key's kcv is checked against openssl's for the value imported.
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE
ROUNDS=${KEYSET_CONC_ROUNDS:-4}

hexkey() { head -c 32 /dev/urandom | xxd -p -c 64; }
kcv() { head -c 16 /dev/zero | openssl enc -aes-256-ecb -nopad -K "$1" | xxd -p | head -c 6; }

for r in $(seq 1 "$ROUNDS"); do
  expect_rc 0 "round $r: a fresh keyset" "$F" keygen --chip t234 --pkc p256 --name "kc$r" --lab --out "ks$r.json"
  declare -A val=()
  for role in sbk oem-k1 oem-k2; do
    val[$role]=$(hexkey)
    printf '%s\n' "${val[$role]}" > "$role-$r.txt"
  done
  pids=()
  for role in sbk oem-k1 oem-k2; do
    "$F" keygen --import-hex "$role-$r.txt" --role "$role" --keyset "ks$r.json" -q >/dev/null 2>"e-$role-$r" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail "round $r: an import failed: $(cat e-*-"$r")"; done
  for role in pkc0 sbk oem-k1 oem-k2; do
    n=$(jget "ks$r.json" "len([k for k in d['keys'] if k['role'] == '$role'])")
    [ "$n" = 1 ] || fail "round $r: role $role appears $n times in the manifest (a writer's update was lost)"
  done
  for role in sbk oem-k1 oem-k2; do
    got=$(jget "ks$r.json" "[k['kcv'] for k in d['keys'] if k['role'] == '$role'][0]")
    [ "$got" = "$(kcv "${val[$role]}")" ] || fail "round $r: $role kcv $got is not openssl's for the imported value"
  done
  unset val
done
pass "$ROUNDS rounds of 3 parallel imports into one manifest: every key recorded once, kcvs match openssl"
