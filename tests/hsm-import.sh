#!/usr/bin/env bash
# keygen --import-pem / --import-hex: keys made elsewhere enter the token and
# the manifest. The PublicKeyHash of an imported vector key must equal the
# value NVIDIA's own tools computed for it (tests/vectors/pkc-hash), and the
# check value of an imported fuse key must equal openssl's for the known value.
. "$SRCDIR/tests/lib.sh"
lab_token
V=${VECTORS:?}/pkc-hash
vec() { awk -v f="$1" '$1 == f { print $3 }' "$V/VECTORS.txt"; }

expect_rc 0 "import t234 rsa3k into a new keyset" "$FUSELINE" keygen --import-pem "$V/t234-rsa3k.pem" --role pkc0 \
  --chip t234 --name imp --lab --out imp.json
[ "$(jget imp.json 'd["keys"][0]["tegra_pkc_hash"]')" = "$(vec t234-rsa3k.pem)" ] || fail "rsa3k hash differs from NVIDIA's"
[ "$(jget imp.json 'd["keys"][0]["imported"]')" = True ] || fail "imported flag"
pass "imported rsa3k: PublicKeyHash equals NVIDIA's vector"
p11tool --login --list-privkeys "pkcs11:token=lab;object=imp-pkc0" > p.txt 2>/dev/null
grep -q CKA_SENSITIVE p.txt || fail "imported key not sensitive"
grep -q 'CKA_EXTRACTABLE' p.txt && fail "imported key extractable"
pass "imported private key is sensitive and not extractable"

# SBK in NVIDIA's word format; OEM_K1 as plain hex with 0x.
printf '0x00112233 0x44556677 0x8899aabb 0xccddeeff\n0x01234567 0x89abcdef 0xfedcba98 0x76543210\n' > sbk.txt
SBK=00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210
printf '0x%s\n' "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100" > k1.txt
expect_rc 0 "import sbk (word format)" "$FUSELINE" keygen --import-hex sbk.txt --role sbk --keyset imp.json
assert_absent "$SBK" "$T/out" "$T/err" imp.json
expect_rc 0 "import oem-k1 (plain hex) --json" "$FUSELINE" keygen --import-hex k1.txt --role oem-k1 --keyset imp.json --json
assert_absent "ffeeddccbbaa9988" "$T/out" "$T/err" imp.json
want=$(head -c 16 /dev/zero | openssl enc -aes-256-ecb -nopad -K "$SBK" | xxd -p | head -c 6)
[ "$(jget imp.json '[k["kcv"] for k in d["keys"] if k["role"]=="sbk"][0]')" = "$want" ] || fail "sbk kcv"
pass "imported sbk: kcv equals openssl's for the known value"
pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
  --label imp-sbk -o sbk.bin >/dev/null 2>&1
[ "$(xxd -p -c 64 sbk.bin)" = "$SBK" ] || fail "token value differs from the file"
pass "word format decoded big-endian, byte for byte"

for k in p256 p521; do
  expect_rc 0 "import t234 $k" "$FUSELINE" keygen --import-pem "$V/t234-$k.pem" --role pkc0 --chip t234 \
    --name "i$k" --lab --out "i$k.json"
  [ "$(jget "i$k.json" 'd["keys"][0]["tegra_pkc_hash"]')" = "$(vec "t234-$k.pem")" ] || fail "$k hash"
  pass "imported $k: PublicKeyHash equals NVIDIA's vector"
done
for k in rsa2k rsa3k; do
  expect_rc 0 "import t194 $k" "$FUSELINE" keygen --import-pem "$V/t194-$k.pem" --role pkc0 --chip t194 \
    --name "x$k" --lab --out "x$k.json"
  [ "$(jget "x$k.json" 'd["keys"][0]["tegra_pkc_hash"]')" = "$(vec "t194-$k.pem")" ] || fail "t194 $k hash"
  pass "imported t194 $k: PublicKeyHash equals NVIDIA's vector"
done
expect_rc 0 "verify keyset after imports" "$FUSELINE" verify keyset imp.json

# Refusals: the manifest and the token stay exactly as they were.
sum=$(sha256sum imp.json)
before=$(p11tool --login --list-all pkcs11:token=lab 2>/dev/null | grep -c '^Object')
echo "garbage" > bad.pem
expect_rc 2 "garbage PEM" "$FUSELINE" keygen --import-pem bad.pem --role pkc1 --keyset imp.json
expect_err "bad.pem"
expect_rc 2 "Ed25519 PEM for a t234 PKC role" "$FUSELINE" keygen --import-pem "$V/t234-ed25519.pem" --role pkc1 --keyset imp.json
expect_rc 2 "p256 PEM joining rsa3k keys" "$FUSELINE" keygen --import-pem "$V/t234-p256.pem" --role pkc1 --keyset imp.json
expect_err "same type"
expect_rc 2 "PEM for a fuse-key role" "$FUSELINE" keygen --import-pem "$V/t234-rsa3k.pem" --role oem-k2 --keyset imp.json
expect_rc 2 "hex for a PKC role" "$FUSELINE" keygen --import-hex sbk.txt --role pkc1 --keyset imp.json
echo 0x0011223344556677 > short.txt
expect_rc 2 "short fuse key" "$FUSELINE" keygen --import-hex short.txt --role oem-k2 --keyset imp.json
expect_err "32 bytes"
echo "0x0011zz33" > nothex.txt
expect_rc 2 "non-hex fuse key" "$FUSELINE" keygen --import-hex nothex.txt --role oem-k2 --keyset imp.json
expect_rc 2 "unreadable key file" "$FUSELINE" keygen --import-hex nosuch.txt --role oem-k2 --keyset imp.json
expect_rc 2 "kek0 on a t234 keyset" "$FUSELINE" keygen --import-hex sbk.txt --role kek0 --keyset imp.json
expect_rc 7 "role already in the keyset" "$FUSELINE" keygen --import-hex sbk.txt --role sbk --keyset imp.json
expect_rc 2 "import without --role" "$FUSELINE" keygen --import-hex sbk.txt --keyset imp.json
expect_rc 7 "the SBK value again as oem-k2" "$FUSELINE" keygen --import-hex sbk.txt --role oem-k2 --keyset imp.json
expect_err "role 'sbk'"
expect_rc 7 "the pkc0 key again as pkc1" "$FUSELINE" keygen --import-pem "$V/t234-rsa3k.pem" --role pkc1 --keyset imp.json
expect_err "already role 'pkc0'"
[ "$(sha256sum imp.json)" = "$sum" ] || fail "manifest changed by a refused import"
after=$(p11tool --login --list-all pkcs11:token=lab 2>/dev/null | grep -c '^Object')
[ "$before" = "$after" ] || fail "token changed by refused imports"
pass "refused imports left manifest and token unchanged"
done_testing
