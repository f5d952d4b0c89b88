#!/usr/bin/env bash
# EKB payload key roles (ekb-payload = tag 1, ekb-disk = tag 2, ekb-auth =
# tag 4): generated in the token or imported, recorded with a check value
# computed by openssl from the known value, never with the value itself.
. "$SRCDIR/tests/lib.sh"
lab_token
V=${VECTORS:?}/ekb
kcv() { head -c 16 /dev/zero | openssl enc "-aes-$2-ecb" -nopad -K "$1" | xxd -p | head -c 6; }
role() { jget "$1" "[k[\"$3\"] for k in d[\"keys\"] if k[\"role\"]==\"$2\"][0]"; }

# Generated with a new keyset, on both chips: types follow the chip.
expect_rc 0 "keygen t234 with EKB keys" "$FUSELINE" keygen --chip t234 --pkc p256 --oem-k1 --ekb-payload --ekb-disk \
  --ekb-auth --name g234 --lab --out g234.json
[ "$(role g234.json ekb-payload type)" = aes256 ] || fail "t234 ekb-payload must be aes256"
[ "$(role g234.json ekb-disk type)" = aes128 ] || fail "ekb-disk must be aes128"
[ "$(role g234.json ekb-auth type)" = aes128 ] || fail "ekb-auth must be aes128"
jget g234.json '[k for k in d["keys"] if k["role"].startswith("ekb-") and "hmac_uri" in k]' | grep -q '^\[\]$' \
  || fail "EKB keys must not get an HMAC twin"
pass "t234 EKB roles: payload aes256, disk/auth aes128, no HMAC twin"
# The recorded kcv is the token value's (read back with pkcs11-tool).
pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
  --label g234-ekb-disk -o disk.bin >/dev/null 2>&1
[ "$(role g234.json ekb-disk kcv)" = "$(kcv "$(xxd -p -c 64 disk.bin)" 128)" ] || fail "ekb-disk kcv"
assert_absent "$(xxd -p -c 64 disk.bin)" g234.json "$T/out" "$T/err"
pass "generated ekb-disk: kcv equals openssl's over the token value; value not in the manifest"
expect_rc 0 "verify keyset with EKB keys" "$FUSELINE" verify keyset g234.json

expect_rc 0 "keygen t194 with ekb-payload" "$FUSELINE" keygen --chip t194 --pkc rsa3k --kek2 --ekb-payload \
  --name g194 --lab --out g194.json
[ "$(role g194.json ekb-payload type)" = aes128 ] || fail "t194 ekb-payload must be aes128"
pass "t194 ekb-payload is aes128 (16-byte tag 1)"

# Added to an existing keyset later (all or nothing).
expect_rc 0 "add EKB keys to an existing keyset" "$FUSELINE" keygen --keyset g194.json --ekb-disk --ekb-auth
[ "$(role g194.json ekb-auth type)" = aes128 ] || fail "added ekb-auth"
expect_rc 7 "adding a role the keyset has" "$FUSELINE" keygen --keyset g194.json --ekb-disk
expect_err "ekb-disk"
expect_rc 0 "verify keyset after adding" "$FUSELINE" verify keyset g194.json

# Imported from NVIDIA's key files (set A).
A=$V/A-t234-ekb1.0-oemk1
expect_rc 0 "import oem-k1 (set A)" "$FUSELINE" keygen --import-hex "$A/oem_k1.key" --role oem-k1 --chip t234 \
  --name a --lab --out a.json
for r in "ekb-payload sym_t234.key 256" "ekb-disk sym2_t234.key 128" "ekb-auth auth_t234.key 128"; do
  set -- $r
  expect_rc 0 "import $1" "$FUSELINE" keygen --import-hex "$A/$2" --role "$1" --keyset a.json
  [ "$(role a.json "$1" kcv)" = "$(kcv "$(cat "$A/$2")" "$3")" ] || fail "$1 kcv differs from openssl's"
  [ "$(role a.json "$1" imported)" = True ] || fail "$1 imported flag"
  assert_absent "$(cat "$A/$2")" a.json "$T/out" "$T/err"
  pass "imported $1: kcv equals openssl's, value absent"
done
expect_rc 2 "a 16-byte value for the t234 payload key" "$FUSELINE" keygen --import-hex "$A/sym2_t234.key" \
  --role ekb-payload --chip t234 --name bad --lab --out bad.json
expect_err "32 bytes"
[ ! -e bad.json ] || fail "bad.json written"

# One value in two roles: a lab keyset may (NVIDIA's shipped defaults do),
# a production keyset may not.
printf '00000000000000000000000000000000\n' > zero.key
expect_rc 0 "lab: zero kek2" "$FUSELINE" keygen --import-hex zero.key --role kek2 --chip t194 --name z --lab --out z.json
expect_rc 0 "lab: zero ekb-payload beside a zero kek2" "$FUSELINE" keygen --import-hex zero.key --role ekb-payload --keyset z.json
grep -q "accepted in a lab keyset only" "$T/err" || fail "no warning for the repeated value"
pass "lab keyset accepts a repeated value with a warning"
expect_rc 0 "production: zero kek2" "$FUSELINE" keygen --import-hex zero.key --role kek2 --chip t194 --name p --out p.json
expect_rc 7 "production: zero ekb-disk beside a zero kek2" "$FUSELINE" keygen --import-hex zero.key --role ekb-disk \
  --keyset p.json
expect_err "cannot take two roles"
expect_rc 2 "EKB role as a PEM import" "$FUSELINE" keygen --import-pem "$VECTORS/pkc-hash/t234-p256.pem" \
  --role ekb-disk --keyset a.json
done_testing
