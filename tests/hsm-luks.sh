#!/usr/bin/env bash
# fuseline luks-passphrase: every LUKS vector (NVIDIA's gen_luks_passphrase.py,
# tests/vectors/ekb/luks/luks_runs.txt) reproduced from a lab token, the
# BR_CID form of the ECID, and cryptsetup taking the piped passphrase.
. "$SRCDIR/tests/lib.sh"
lab_token
L=${VECTORS:?}/ekb/luks
U=4c7b1e2a-93d5-4f0e-b6a8-2d1c0e9f7a35
E=0x880219116451e2c60c00000001ff0140
# The expected passphrase of case N: the Nth OUT line NVIDIA's tool printed.
want() { awk '/^OUT:/ { n++; if (n == '"$1"') print $2 }' "$L/luks_runs.txt"; }

# Keysets with the disk key imported (no -k in NVIDIA's tool = 16 zero bytes).
imp() { expect_rc 0 "import $2 as ekb-disk" "$FUSELINE" keygen --import-hex "$2" --role ekb-disk --chip t234 \
          --name "$1" --lab --out "$1.json"; }
imp k "$L/luks_ekb.key"
imp k0x "$L/luks_ekb_0x.key"
imp z "$L/ekb_zero.key"

case_() { # N KEYSET ARGS...
  local n=$1 ks=$2; shift 2
  expect_rc 0 "LUKS vector $n" "$FUSELINE" luks-passphrase --keyset "$ks.json" "$@"
  [ "$(cat "$T/out")" = "$(want "$n")" ] || fail "vector $n: got $(cat "$T/out"), NVIDIA's tool printed $(want "$n")"
  [ "$(wc -c < "$T/out")" = 33 ] || fail "vector $n: output must be 32 hex characters and a newline"
  [ ! -s "$T/err" ] || fail "vector $n: unexpected stderr"
  pass "vector $n equals NVIDIA's output"
}
case_ 1 z --generic --context "$U"
case_ 2 k --generic --context "$U"
case_ 3 k0x --generic --context "$U"
case_ 4 k --ecid "$E" --context "$U"
case_ 5 k --ecid 880219116451E2C60C00000001FF0140 --context "$U"
case_ 6 k --ecid 0x000000016451e2c60c00000001ff0140 --context "$U"
case_ 7 k --ecid 0xffffffffffffffffffffffffffffffff --context "$U"
case_ 8 k --ecid 0x1234 --context "$U"
case_ 9 k --ecid "$E" --context ""
case_ 10 k --ecid "$E" --context 0123456789012345678901234567890123456789
case_ 11 z --context "UUID of the disk" --ecid "$E"
case_ 12 k --ecid ab880219116451e2c60c00000001ff0140 --context "$U"
case_ 13 k --ecid 0x1234 --context "$U"   # NVIDIA's -g -u: -u wins
# The ECID as burn reads it from tegrarcm_v2 --uid.
expect_rc 0 "BR_CID form" "$FUSELINE" luks-passphrase --keyset k.json --ecid "BR_CID: $E" --context "$U"
[ "$(cat "$T/out")" = "$(want 4)" ] || fail "BR_CID form differs from the plain ECID"
pass "BR_CID: 0x… gives vector 4's passphrase"

# To a file: 0600, the same bytes, nothing on stdout.
expect_rc 0 "--out file" "$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" --out pass.txt --json
[ "$(stat -c %a pass.txt)" = 600 ] || fail "pass.txt mode $(stat -c %a pass.txt)"
[ "$(cat pass.txt)" = "$(want 4)" ] || fail "pass.txt content"
assert_absent "$(want 4)" "$T/out" "$T/err" k.json
grep -q '"ok":true' "$T/out" || fail "json result"
pass "--out writes the passphrase 0600; JSON and stderr never hold it"

# The overwrite rule: an existing --out is exit 7, naming it, untouched; --force replaces it.
printf 'keep\n' > taken.txt
expect_rc 7 "--out exists" "$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" --out taken.txt
expect_err "taken.txt exists already; give --force to replace it"
[ "$(cat taken.txt)" = keep ] || fail "an existing --out was changed"
assert_absent "$(want 4)" "$T/out" "$T/err"
expect_rc 0 "--out exists, --force" "$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" \
  --out taken.txt --force
[ "$(cat taken.txt)" = "$(want 4)" ] && [ "$(stat -c %a taken.txt)" = 600 ] || fail "--force: taken.txt not replaced"
pass "luks-passphrase --out: an existing file is exit 7 and untouched; --force replaces it (0600)"

# Refusals (exit 2), nothing written.
expect_rc 2 "context of 41 characters" "$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" \
  --context 01234567890123456789012345678901234567890
expect_err "at most 40"
expect_rc 2 "ECID of 35 characters" "$FUSELINE" luks-passphrase --keyset k.json --ecid 0x880219116451e2c60c00000001ff01400 --context "$U"
expect_err "ECID"
expect_rc 2 "ECID not hex" "$FUSELINE" luks-passphrase --keyset k.json --ecid 0x88021911645zz --context "$U"
expect_err "not a hex digit"
expect_rc 2 "--generic and --ecid" "$FUSELINE" luks-passphrase --keyset k.json --generic --ecid "$E" --context "$U"
expect_rc 2 "--json to stdout" "$FUSELINE" luks-passphrase --keyset k.json --generic --context "$U" --json
expect_rc 2 "no --context" "$FUSELINE" luks-passphrase --keyset k.json --generic
expect_rc 0 "keyset without a disk key" "$FUSELINE" keygen --import-hex "$L/luks_ekb.key" --role ekb-auth --chip t234 \
  --name n --lab --out n.json
expect_rc 2 "no ekb-disk in the keyset" "$FUSELINE" luks-passphrase --keyset n.json --generic --context "$U" --out x.txt
expect_err "ekb-disk"
[ ! -e x.txt ] || fail "x.txt written"

# cryptsetup takes the piped output as the passphrase: format a LUKS2 file
# (no loop device needed), then check the 32 characters NVIDIA's tool
# printed open the key slot, and a different passphrase does not.
command -v cryptsetup >/dev/null || { echo "cryptsetup absent (install cryptsetup-bin)"; exit 77; }
truncate -s 20M disk.img
"$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" |
  cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --uuid "$U" disk.img \
  2>"$T/err" || fail "cryptsetup luksFormat from the pipe"
printf '%s' "$(want 4)" > key.txt
cryptsetup luksOpen --test-passphrase --key-file key.txt disk.img || fail "NVIDIA's passphrase does not open the volume"
printf '%s' "$(want 9)" > other.txt
cryptsetup luksOpen --test-passphrase --key-file other.txt disk.img 2>/dev/null && fail "another passphrase opens it"
pass "cryptsetup luksFormat with the piped passphrase; NVIDIA's 32 characters open it, others do not"
done_testing
