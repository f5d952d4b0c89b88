#!/usr/bin/env bash
# fuse-xml --pkc-hash against an independent computation
# (tests/tools/pkc-hash-ref.py: Python stdlib + the openssl CLI) for freshly
# generated keys of every type on both chips, the reference itself first
# proven against NVIDIA's vectors, and the per-chip key-type rules.
. "$SRCDIR/tests/lib.sh"
REF="python3 $SRCDIR/tests/tools/pkc-hash-ref.py"

# The reference must reproduce NVIDIA's own values before it may judge.
while read -r f chip want; do
  case $f in '#'*|'') continue ;; esac
  got=$($REF "$VECTORS/pkc-hash/$f" "$chip")
  [ "$got" = "$want" ] || fail "reference disagrees with NVIDIA vector $f: $got"
  expect_rc 0 "--pkc-hash $f ($chip) vector" "$FUSELINE" fuse-xml --pkc-hash "$VECTORS/pkc-hash/$f" --chip "$chip"
  [ "$(cat "$T/out")" = "$want" ] || fail "$f: fuseline printed $(cat "$T/out"), NVIDIA says $want"
done < "$VECTORS/pkc-hash/VECTORS.txt"

# Fresh keys: private PEM and public-only PEM must give the same value.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2k.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa3k.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.pem 2>/dev/null
openssl genpkey -algorithm ED25519 -out ed25519.pem 2>/dev/null
for k in rsa2k rsa3k p256 p521 ed25519; do
  openssl pkey -in $k.pem -pubout -out $k.pub.pem
done
# A P-256 public key in compressed point form must hash the same.
openssl pkey -in p256.pem -pubout -ec_conv_form compressed -out p256c.pub.pem

check_key() { # key chip
  local want
  want=$($REF "$1" "$2")
  expect_rc 0 "--pkc-hash fresh $1 on $2" "$FUSELINE" fuse-xml --pkc-hash "$1" --chip "$2"
  [ "$(cat "$T/out")" = "$want" ] || fail "$1 on $2: fuseline $(cat "$T/out") != reference $want"
}
for k in rsa3k p256 p521 ed25519; do check_key $k.pem t234; check_key $k.pub.pem t234; done
check_key p256c.pub.pem t234
for k in rsa2k rsa3k; do check_key $k.pem t194; check_key $k.pub.pem t194; done

# --json carries the same value plus the key type and SPKI fingerprint
# (compared with openssl's own DER encoding).
expect_rc 0 "--pkc-hash --json" "$FUSELINE" fuse-xml --pkc-hash p521.pub.pem --chip t234 --json
spki=$(openssl pkey -pubin -in p521.pub.pem -outform DER | sha256sum | cut -d' ' -f1)
python3 - "$T/out" "$($REF p521.pem t234)" "$spki" <<'PY' || fail "--pkc-hash JSON"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert o["ok"] is True and o["value"] == sys.argv[2] and o["key_type"] == "p521", o
assert o["public_key_sha256"] == sys.argv[3] and o["size"] == 64 and o["chip"] == "t234", o
PY

# Key types the chip does not take: exit 2, one line naming key and chip.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out rsa4k.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem 2>/dev/null
expect_rc 2 "RSA-4096 on t234" "$FUSELINE" fuse-xml --pkc-hash rsa4k.pem --chip t234
expect_err "RSA-4096 key is not accepted as PKC key on t234"
expect_rc 2 "RSA-4096 on t194" "$FUSELINE" fuse-xml --pkc-hash rsa4k.pem --chip t194
expect_err "RSA-4096 key is not accepted as PKC key on t194"
expect_rc 2 "P-384 on t234" "$FUSELINE" fuse-xml --pkc-hash p384.pem --chip t234
expect_err "EC secp384r1 key is not accepted as PKC key on t234"
expect_rc 2 "RSA-2048 on t234 (not on Orin)" "$FUSELINE" fuse-xml --pkc-hash rsa2k.pem --chip t234
expect_err "RSA-2048 key is not accepted as PKC key on t234"
expect_rc 2 "P-256 on t194" "$FUSELINE" fuse-xml --pkc-hash p256.pem --chip t194
expect_err "EC prime256v1 key is not accepted as PKC key on t194"
expect_rc 2 "P-521 on t194" "$FUSELINE" fuse-xml --pkc-hash p521.pub.pem --chip t194
expect_err "EC secp521r1 key is not accepted as PKC key on t194"
expect_rc 2 "Ed25519 on t194" "$FUSELINE" fuse-xml --pkc-hash ed25519.pem --chip t194
expect_err "ED25519 key is not accepted as PKC key on t194"
[ ! -s "$T/out" ] || fail "a refused key printed something on stdout"

# Bad inputs: no chip, unknown chip, missing file, not a key, encrypted key
# (refused without a prompt: stdin is closed).
expect_rc 2 "--pkc-hash without --chip" "$FUSELINE" fuse-xml --pkc-hash p256.pem
expect_err "--pkc-hash needs --chip"
expect_rc 2 "--chip t186" "$FUSELINE" fuse-xml --pkc-hash p256.pem --chip t186
expect_err "--chip 't186' is not t234 or t194"
expect_rc 2 "missing key file" "$FUSELINE" fuse-xml --pkc-hash nosuch.pem --chip t234
expect_err "nosuch.pem"
echo "not a key" > junk.pem
expect_rc 2 "not a PEM key" "$FUSELINE" fuse-xml --pkc-hash junk.pem --chip t234
expect_err "junk.pem: not a PEM public key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:testonly -out enc.pem 2>/dev/null
run "$FUSELINE" fuse-xml --pkc-hash enc.pem --chip t234 </dev/null
[ "$RC" -eq 2 ] || fail "encrypted key: exit $RC"
expect_err "enc.pem: not a PEM public key or unencrypted PEM private key"
pass "encrypted private key refused without a prompt"

# A result that cannot be written is a failed run: exit 1, never 0.
for j in "" --json; do
  set +e; "$FUSELINE" fuse-xml --pkc-hash p256.pem --chip t234 $j >/dev/full 2>"$T/err"; RC=$?; set -e
  [ "$RC" -eq 1 ] || fail "--pkc-hash $j >/dev/full: exit $RC, expected 1"
  grep -q 'standard output' "$T/err" || fail "--pkc-hash $j >/dev/full: the failed write is not named"
done
pass "--pkc-hash >/dev/full is exit 1"
done_testing
