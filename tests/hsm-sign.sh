#!/usr/bin/env bash
# fuseline sign / verify signature against a throw-away SoftHSM2 token. Every
# signature is checked by OpenSSL's command line with the public key p11tool
# exports from the token (not fuseline's); ECDSA raw<->DER goes through an
# independent converter (Python); RSA-PSS is verified with an explicit
# rsa_pss_saltlen; Ed25519 is compared byte for byte with OpenSSL's own
# (deterministic) signature where SoftHSM2 offers CKM_EDDSA; HMAC/CMAC equal
# OpenSSL's, computed with the key value read out by pkcs11-tool in this test
# only. Bad input: message, exit code, and no output file left behind.
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE
MKKEY=${BUILDDIR:?}/tests/p11-mkkey
[ -x "$MKKEY" ] || fail "$MKKEY not built"

# ---- independent helpers (no fuseline code) ---------------------------------
pub() { p11tool --export "pkcs11:token=lab;object=$1;type=public" > "$2" 2>/dev/null || fail "p11tool cannot export $1"; }
spki_sha256() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
rev() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d[::-1])' "$1" "$2"; }
unpem() { sed '1d;$d' "$1" | openssl base64 -d > "$2"; }
# ECDSA r||s -> DER and back, written from X9.62/RFC 3279 (INTEGER minimal, 0x00 pad).
raw2der() { python3 - "$1" "$2" <<'PY'
import sys
d = open(sys.argv[1], "rb").read(); n = len(d) // 2
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + length(len(b)) + b
def length(l):
    return bytes([l]) if l < 128 else bytes([0x81, l])
body = integer(d[:n]) + integer(d[n:])
open(sys.argv[2], "wb").write(b"\x30" + length(len(body)) + body)
PY
}
der2raw() { python3 - "$1" "$2" "$3" <<'PY'
import sys
d = open(sys.argv[1], "rb").read(); n = int(sys.argv[3])
assert d[0] == 0x30
i = 2 if d[1] < 128 else 3
out = b""
for _ in range(2):
    assert d[i] == 2; l = d[i + 1]; v = d[i + 2:i + 2 + l]; i += 2 + l
    out += v.lstrip(b"\0").rjust(n, b"\0")
open(sys.argv[2], "wb").write(out)
PY
}
pss_ok() { # pub sig digestfile md saltlen
  openssl pkeyutl -verify -pubin -inkey "$1" -sigfile "$2" -in "$3" -pkeyopt "digest:$4" \
    -pkeyopt rsa_padding_mode:pss -pkeyopt "rsa_mgf1_md:$4" -pkeyopt "rsa_pss_saltlen:$5" >/dev/null 2>&1
}
no_output() { # path: nothing at the path, no temp file beside it
  [ ! -e "$1" ] || fail "partial output $1 left behind"
  local d; d=$(dirname "$1")
  if [ -d "$d" ] && ls -A "$d" | grep -q "$(basename "$1").tmp"; then fail "temp file left beside $1"; fi
}
LOG=$T/all-output.log
runlog() { run "$@"; cat "$T/out" "$T/err" >> "$LOG"; }

# ---- keys ----------------------------------------------------------------------
"$F" keygen --chip t234 --pkc rsa3k --sbk --oem-k1 --lab --name r3 --out ks-r3.json >/dev/null 2>&1 || fail "keygen rsa3k"
"$F" keygen --chip t194 --pkc rsa2k --sbk --lab --name r2 --out ks-r2.json >/dev/null 2>&1 || fail "keygen rsa2k"
"$F" keygen --chip t234 --pkc p256 --lab --name e2 --out ks-p256.json >/dev/null 2>&1 || fail "keygen p256"
"$F" keygen --chip t234 --pkc p521 --lab --name e5 --out ks-p521.json >/dev/null 2>&1 || fail "keygen p521"
p11tool --login --generate-privkey=ecdsa --curve=secp384r1 --label t-p384 pkcs11:token=lab >/dev/null 2>&1 \
  || fail "p11tool cannot make a P-384 key"
pub r3-pkc0 r3.pub; pub r2-pkc0 r2.pub; pub e2-pkc0 p256.pub; pub e5-pkc0 p521.pub; pub t-p384 p384.pub
pass "keys made (keygen rsa3k/rsa2k/p256/p521, p11tool P-384) and public keys exported by p11tool"

head -c 300000 /dev/urandom > img.bin
openssl dgst -sha256 -binary img.bin > img.d256
openssl dgst -sha384 -binary img.bin > img.d384
openssl dgst -sha512 -binary img.bin > img.d512

# ---- RSA ---------------------------------------------------------------------------
for ks in r3 r2; do
  pubf=$ks.pub
  expect_rc 0 "$ks rsa-pss-sha256 raw (default scheme)" "$F" sign --keyset ks-$ks.json --role pkc0 --in img.bin --out $ks.pss256
  grep -q "rsa-pss-sha256" "$T/out" || fail "default scheme for RSA is not rsa-pss-sha256"
  pss_ok $pubf $ks.pss256 img.d256 sha256 32 || fail "$ks: openssl pkeyutl rejects the PSS signature (saltlen 32)"
  pss_ok $pubf $ks.pss256 img.d256 sha256 20 && fail "$ks: PSS signature verified with saltlen 20: salt is not the hash length"
  openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -verify $pubf -signature $ks.pss256 img.bin \
    >/dev/null || fail "$ks: openssl dgst -verify"
  pass "$ks rsa-pss-sha256: openssl pkeyutl (saltlen 32) and dgst verify; saltlen 20 does not"

  expect_rc 0 "$ks rsa-pss-sha512" "$F" sign --keyset ks-$ks.json --role pkc0 --scheme rsa-pss-sha512 --in img.bin --out $ks.pss512
  pss_ok $pubf $ks.pss512 img.d512 sha512 64 || fail "$ks: rsa-pss-sha512 rejected (saltlen 64)"
  pss_ok $pubf $ks.pss512 img.d512 sha512 32 && fail "$ks: rsa-pss-sha512 verified with saltlen 32"
  pass "$ks rsa-pss-sha512 verifies with rsa_pss_saltlen 64 only"

  expect_rc 0 "$ks tegra format" "$F" sign --keyset ks-$ks.json --role pkc0 --format tegra --in img.bin --out $ks.tegra
  rev $ks.tegra $ks.tegra.rev
  pss_ok $pubf $ks.tegra.rev img.d256 sha256 32 || fail "$ks: byte-reversed tegra signature does not verify"
  pss_ok $pubf $ks.tegra img.d256 sha256 32 && fail "$ks: tegra signature verifies unreversed"
  pass "$ks tegra = byte-reversed RSA-PSS (openssl verifies after reversing)"
done

expect_rc 0 "rsa-pkcs1-sha256" "$F" sign --keyset ks-r3.json --role pkc0 --scheme rsa-pkcs1-sha256 --in img.bin --out r3.pkcs1
openssl dgst -sha256 -verify r3.pub -signature r3.pkcs1 img.bin >/dev/null || fail "openssl rejects PKCS#1 v1.5"
pass "rsa-pkcs1-sha256 verifies with openssl dgst"

expect_rc 0 "rsa der" "$F" sign --keyset ks-r3.json --role pkc0 --format der --in img.bin --out r3.der
pss_ok r3.pub r3.der img.d256 sha256 32 || fail "rsa der form"
expect_rc 0 "rsa pem" "$F" sign --keyset ks-r3.json --role pkc0 --format pem --in img.bin --out r3.pem
head -1 r3.pem | grep -qx -- "-----BEGIN SIGNATURE-----" || fail "pem armour"
unpem r3.pem r3.pem.bin
pss_ok r3.pub r3.pem.bin img.d256 sha256 32 || fail "rsa pem form"
pass "rsa der/pem forms verify with openssl after base64 decoding"

# A range of the file, and a precomputed digest.
expect_rc 0 "--offset/--length" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --offset 4096 --length 65536 --out r3.range
dd if=img.bin bs=64K iflag=skip_bytes,count_bytes skip=4096 count=65536 status=none | openssl dgst -sha256 -binary > range.d256
pss_ok r3.pub r3.range range.d256 sha256 32 || fail "range signature does not cover bytes 4096..69631"
pss_ok r3.pub r3.range img.d256 sha256 32 && fail "range signature covers the whole file"
expect_rc 0 "verify the range" "$F" verify signature --in img.bin --offset 4096 --length 65536 --sig r3.range --pubkey r3.pub
expect_rc 5 "verify with a shifted range" "$F" verify signature --in img.bin --offset 4097 --length 65536 --sig r3.range --pubkey r3.pub
expect_rc 0 "--digest (sha512)" "$F" sign --keyset ks-r3.json --role pkc0 --scheme rsa-pss-sha512 --digest --in img.d512 \
  --format tegra --out r3.dg
rev r3.dg r3.dg.rev
pss_ok r3.pub r3.dg.rev img.d512 sha512 64 || fail "--digest signature"
pass "--offset/--length sign exactly the range; --digest signs the given digest"

# Numbers are decimal or 0x hex, never octal: 0100 is one hundred (base-0
# parsing made it 64), 01184 is 1184 (it was rejected), 0x100 is 256.
expect_rc 0 "--offset 0100 --length 0100 (decimal)" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin \
  --offset 0100 --length 0100 --out r3.oct --json
dd if=img.bin bs=64K iflag=skip_bytes,count_bytes skip=100 count=100 status=none | openssl dgst -sha256 -binary > oct.d256
pss_ok r3.pub r3.oct oct.d256 sha256 32 || fail "--offset 0100 --length 0100 did not sign bytes 100..199"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["offset"]==100 and o["length"]==100, o' "$T/out" \
  || fail "sign --json does not report the range signed"
expect_rc 0 "--offset 01184 (decimal with a leading zero)" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin \
  --offset 01184 --length 0x100 --out r3.dec
grep -qF "(bytes 1184-1439)" "$T/out" || fail "sign text does not print the range signed: $(cat "$T/out")"
dd if=img.bin bs=64K iflag=skip_bytes,count_bytes skip=1184 count=256 status=none | openssl dgst -sha256 -binary > dec.d256
pss_ok r3.pub r3.dec dec.d256 sha256 32 || fail "--offset 01184 --length 0x100 did not sign bytes 1184..1439"
expect_rc 0 "sign without a range prints the whole file" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out r3.all
grep -qF "(bytes 0-$(( $(stat -c %s img.bin) - 1 )))" "$T/out" || fail "whole-file range not printed: $(cat "$T/out")"
for bad in 0o10 +5 " 5" 5k 0x "1e3" 99999999999999999999; do
  expect_rc 2 "--offset '$bad' refused" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --offset "$bad" --out ob.sig
  grep -qF -- "--offset '$bad'" "$T/err" || fail "--offset '$bad': the value is not named"
  no_output ob.sig
done
pass "numbers: decimal (leading zeros included) or 0x hex; the range signed is printed"

# ---- ECDSA ---------------------------------------------------------------------------
ec_case() { # keyarg... -- name pub md field
  local name=$1 pubf=$2 md=$3 field=$4; shift 4
  expect_rc 0 "$name raw" "$F" sign "$@" --in img.bin --out $name.raw
  [ "$(stat -c %s $name.raw)" = $((2 * field)) ] || fail "$name raw is not r||s of $field-byte fields"
  raw2der $name.raw $name.raw.der
  openssl dgst -$md -verify $pubf -signature $name.raw.der img.bin >/dev/null || fail "$name: raw->DER (python) fails openssl"
  expect_rc 0 "$name der" "$F" sign "$@" --format der --in img.bin --out $name.der
  openssl dgst -$md -verify $pubf -signature $name.der img.bin >/dev/null || fail "$name: DER fails openssl"
  der2raw $name.der $name.der.raw $field
  expect_rc 0 "$name: DER->raw (python) verifies as raw" "$F" verify signature --in img.bin --sig $name.der.raw \
    --format raw --pubkey $pubf
  expect_rc 0 "$name pem" "$F" sign "$@" --format pem --in img.bin --out $name.pem
  unpem $name.pem $name.pem.der
  openssl dgst -$md -verify $pubf -signature $name.pem.der img.bin >/dev/null || fail "$name: PEM body fails openssl"
  for s in raw der pem; do
    expect_rc 0 "$name verify $s (auto format)" "$F" verify signature --in img.bin --sig $name.$s --pubkey $pubf
  done
  expect_rc 2 "$name tegra refused (layout undocumented)" "$F" sign "$@" --format tegra --in img.bin --out $name.tegra
  expect_err "not documented"
  no_output $name.tegra
  pass "$name: raw (r||s) <-> DER round trips, all forms verified by openssl dgst -$md"
}
ec_case p256 p256.pub sha256 32 --keyset ks-p256.json --role pkc0
ec_case p521 p521.pub sha512 66 --keyset ks-p521.json --role pkc0
ec_case p384 p384.pub sha384 48 --key "pkcs11:token=lab;object=t-p384"
expect_rc 0 "p521 with explicit ecdsa-sha256" "$F" sign --keyset ks-p521.json --role pkc0 --scheme ecdsa-sha256 --format der \
  --in img.bin --out p521.s256
openssl dgst -sha256 -verify p521.pub -signature p521.s256 img.bin >/dev/null || fail "p521/ecdsa-sha256"
# An OpenSSL-made DER signature (software key) verifies through fuseline in both forms.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sw.pem 2>/dev/null
openssl pkey -in sw.pem -pubout -out sw.pub
openssl dgst -sha256 -sign sw.pem -out sw.der img.bin
der2raw sw.der sw.raw 32
expect_rc 0 "openssl DER signature" "$F" verify signature --in img.bin --sig sw.der --format der --pubkey sw.pub
expect_rc 0 "openssl DER -> raw" "$F" verify signature --in img.bin --sig sw.raw --format raw --pubkey sw.pub
pass "ECDSA signatures made by openssl verify as DER and as r||s"

# ---- Ed25519 -------------------------------------------------------------------------------
if pkcs11-tool --module "$MODULE" -M 2>/dev/null | grep -q '^ *EDDSA'; then
  echo "# SoftHSM2 offers CKM_EDDSA: Ed25519 is tested"
  openssl genpkey -algorithm ed25519 -out ed.pem 2>/dev/null
  openssl pkey -in ed.pem -pubout -out ed.pub
  p11tool --login --write --load-privkey ed.pem --label t-ed --id 0e0d pkcs11:token=lab >/dev/null 2>&1 || fail "write ed25519 key"
  p11tool --login --write --load-pubkey ed.pub --label t-ed --id 0e0d pkcs11:token=lab >/dev/null 2>&1 || fail "write ed25519 pub"
  pub t-ed ed.tok.pub
  [ "$(spki_sha256 ed.tok.pub)" = "$(spki_sha256 ed.pub)" ] || fail "token Ed25519 public key differs"
  expect_rc 0 "ed25519 (default scheme)" "$F" sign --key "pkcs11:token=lab;object=t-ed" --in img.bin --out ed.sig
  openssl pkeyutl -sign -rawin -inkey ed.pem -in img.bin -out ed.openssl.sig
  cmp -s ed.sig ed.openssl.sig || fail "token Ed25519 signature differs from openssl's (Ed25519 is deterministic)"
  openssl pkeyutl -verify -pubin -inkey ed.pub -rawin -in img.bin -sigfile ed.sig >/dev/null || fail "openssl verify ed25519"
  expect_rc 0 "ed25519 tegra" "$F" sign --key "pkcs11:token=lab;object=t-ed" --format tegra --in img.bin --out ed.tegra
  cmp -s ed.tegra ed.openssl.sig || fail "ed25519 tegra form is not the plain signature"
  expect_rc 0 "ed25519 pem" "$F" sign --key "pkcs11:token=lab;object=t-ed" --format pem --in img.bin --out ed.pem.sig
  unpem ed.pem.sig ed.pem.bin
  cmp -s ed.pem.bin ed.openssl.sig || fail "ed25519 pem body"
  expect_rc 0 "verify ed25519 (token key)" "$F" verify signature --in img.bin --sig ed.sig --key "pkcs11:token=lab;object=t-ed"
  expect_rc 2 "ed25519 --digest refused" "$F" sign --key "pkcs11:token=lab;object=t-ed" --digest --in img.d256 --out ed.dg
  expect_err "signs the message itself"
  no_output ed.dg
  pass "Ed25519: byte-identical to openssl pkeyutl -rawin; raw/tegra/pem"
else
  not_run "Ed25519 on the token: this PKCS#11 module does not offer CKM_EDDSA (SoftHSM2 >= 2.5 built with EdDSA does)"
fi

# ---- HMAC-SHA256 / AES-CMAC with fuse keys -------------------------------------------------
for role in sbk oem-k1; do
  label=r3-$role
  pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
    --label "$label" -o "$T/$role.key" >/dev/null 2>&1 || fail "pkcs11-tool cannot read $label"
  chmod 600 "$T/$role.key"
  hex=$(xxd -p -c 64 "$T/$role.key")
  runlog "$F" sign --keyset ks-r3.json --role $role --scheme hmac-sha256 --in img.bin --out $role.hmac --json
  [ "$RC" = 0 ] || fail "$role hmac: exit $RC"
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ok"] and o["scheme"]=="hmac-sha256" and o["bytes"]==32' \
    "$T/out" || fail "hmac --json"
  openssl mac -digest SHA256 -macopt "hexkey:$hex" -binary -in img.bin -out $role.hmac.openssl HMAC
  cmp -s $role.hmac $role.hmac.openssl || fail "$role: token HMAC (twin) differs from openssl's with the AES key's value"
  runlog "$F" sign --keyset ks-r3.json --role $role --in img.bin --out $role.cmac
  [ "$RC" = 0 ] || fail "$role cmac: exit $RC"
  grep -q aes-cmac "$T/out" || fail "default scheme for a fuse key is not aes-cmac"
  openssl mac -cipher AES-256-CBC -macopt "hexkey:$hex" -binary -in img.bin -out $role.cmac.openssl CMAC
  cmp -s $role.cmac $role.cmac.openssl || fail "$role: token CMAC differs from openssl's"
  expect_rc 0 "verify $role hmac in the token" "$F" verify signature --in img.bin --sig $role.hmac --keyset ks-r3.json \
    --role $role --scheme hmac-sha256
  cat "$T/out" "$T/err" >> "$LOG"
  expect_rc 5 "verify $role hmac over another file" "$F" verify signature --in img.d256 --sig $role.hmac --keyset ks-r3.json \
    --role $role --scheme hmac-sha256
  expect_err "signature does not match"
  cat "$T/out" "$T/err" >> "$LOG"
  assert_absent "$hex" "$LOG"
  pass "$role: HMAC-SHA256 (generic twin) and AES-CMAC equal openssl mac with the extracted value; value never printed"
done
# The twin is really needed: the AES object itself refuses HMAC in SoftHSM2.
sbk_uri=$(jget ks-r3.json '[k["uri"] for k in d["keys"] if k["role"]=="sbk"][0]')
expect_rc 2 "HMAC on the AES object itself (no twin)" "$F" sign --key "$sbk_uri" --scheme hmac-sha256 --in img.bin --out x.hmac
expect_err "CKK_GENERIC_SECRET twin"
no_output x.hmac
expect_rc 0 "CMAC on the AES object by URI" "$F" sign --key "$sbk_uri" --scheme aes-cmac --in img.bin --out x.cmac
cmp -s x.cmac sbk.cmac || fail "CMAC by URI differs from CMAC by role"
pass "by URI: the AES object does CMAC; HMAC is refused up front (it needs the generic twin)"

# ---- verify signature ------------------------------------------------------------------------
expect_rc 0 "verify with the keyset's token key" "$F" verify signature --in img.bin --sig r3.pss256 --keyset ks-r3.json --role pkc0 --json
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ok"] and o["valid"] and o["key_fingerprint"]=="sha256:"+sys.argv[2]' \
  "$T/out" "$(spki_sha256 r3.pub)" || fail "verify --json / fingerprint"
expect_rc 0 "verify tegra form" "$F" verify signature --in img.bin --sig r3.tegra --format tegra --pubkey r3.pub
expect_rc 5 "tegra form read as raw" "$F" verify signature --in img.bin --sig r3.tegra --format raw --pubkey r3.pub
expect_err "signature does not match"
printf 'x' >> img2.bin; cat img.bin >> img2.bin
expect_rc 5 "other file" "$F" verify signature --in img2.bin --sig r3.pss256 --pubkey r3.pub
expect_err "signature does not match"
expect_err "sha256:$(spki_sha256 r3.pub)"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout -out other3k.pub
expect_rc 5 "other RSA-3K key" "$F" verify signature --in img.bin --sig r3.pss256 --pubkey other3k.pub
expect_err "sha256:$(spki_sha256 other3k.pub)"
head -c 383 r3.pss256 > short.sig
expect_rc 2 "signature of the wrong length" "$F" verify signature --in img.bin --sig short.sig --pubkey r3.pub
expect_err "short.sig: 383 bytes"
expect_rc 2 "MAC against a public key" "$F" verify signature --in img.bin --sig sbk.hmac --pubkey r3.pub --scheme hmac-sha256
pass "verify signature: exit 5 with the key fingerprint on mismatch, exit 2 on a wrong-length signature"

# ---- batch ------------------------------------------------------------------------------------
mkdir -p b
: > b/list
for i in $(seq 1 20); do
  head -c $((1000 + i)) /dev/urandom > b/f$i
  if [ $((i % 5)) = 0 ]; then echo "b/f$i b/f$i.mac sbk" >> b/list; else echo "b/f$i b/f$i.sig" >> b/list; fi
done
echo "b/missing b/missing.sig" >> b/list
mkdir -p b/adir
echo "b/f1 b/adir" >> b/list           # fails only when renamed into place
expect_rc 2 "batch with a missing input and an unwritable output" "$F" sign --keyset ks-r3.json --role pkc0 \
  --batch b/list --json
python3 - "$T/out" <<'PY' || fail "batch JSON Lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 23, len(lines)
ok = [l for l in lines[:-1] if l["ok"]]
bad = [l for l in lines[:-1] if not l["ok"]]
assert len(ok) == 20 and len(bad) == 2, (len(ok), len(bad))
assert bad[0]["line"] == 21 and bad[0]["exit_code"] == 2 and "b/missing" in bad[0]["error"]
assert bad[1]["line"] == 22 and bad[1]["exit_code"] == 2 and "b/adir" in bad[1]["error"], bad[1]
last = lines[-1]
assert "2 of 22 files not signed" in last.pop("error"), last
assert isinstance(last.pop("event_id"), int), last    # the 20 signatures made are on the record
assert last == {"command": "sign", "batch": "b/list", "ok": False, "total": 22, "failed": 2, "exit_code": 2}, last
assert all(l["scheme"] == ("aes-cmac" if l["key"] == "sbk" else "rsa-pss-sha256") for l in ok)
PY
[ -z "$(ls -A b/adir)" ] || fail "something was written into b/adir"
ls b | grep -q '\.tmp\.' && fail "batch left temp files"
for i in $(seq 1 20); do
  if [ $((i % 5)) = 0 ]; then
    openssl mac -cipher AES-256-CBC -macopt "hexkey:$(xxd -p -c 64 "$T/sbk.key")" -binary -in b/f$i -out b/o.mac CMAC
    cmp -s b/f$i.mac b/o.mac || fail "batch CMAC f$i"
  else
    openssl dgst -sha256 -binary b/f$i > b/d
    pss_ok r3.pub b/f$i.sig b/d sha256 32 || fail "batch signature f$i"
  fi
done
no_output b/missing.sig
pass "batch: 20 files signed in one session (openssl-verified), the bad line reported with its exit code"
printf 'b/f1 b/f1.tg\nb/f2 b/f2.tg\n' | "$F" sign --keyset ks-r3.json --role pkc0 --format tegra --batch - -q >/dev/null 2>&1 \
  || fail "batch from stdin"
rev b/f2.tg b/f2.rev; openssl dgst -sha256 -binary b/f2 > b/d
pss_ok r3.pub b/f2.rev b/d sha256 32 || fail "stdin batch tegra signature"
pass "batch list from stdin"

# ---- production interlock -------------------------------------------------------------------
"$F" keygen --chip t234 --pkc p256 --sbk --name pr --out ks-prod.json >/dev/null 2>&1 || fail "production keygen"
[ "$(jget ks-prod.json 'd["profile"]')" = production ] || fail "profile"
expect_rc 0 "production keyset, non-extractable sensitive key" "$F" sign --keyset ks-prod.json --role pkc0 --in img.bin --out prod.sig
expect_rc 0 "production keyset, sbk HMAC" "$F" sign --keyset ks-prod.json --role sbk --scheme hmac-sha256 --in img.bin --out prod.mac
# Point pkc0 at other token keys (the manifest pins their public key too).
swap_key() { # in out label
  pub "$3" "$3.pub"
  python3 - "$1" "$2" "$3" "$(spki_sha256 "$3.pub")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in d["keys"]:
    if k["role"] == "pkc0":
        k["label"] = sys.argv[3]
        k["uri"] = "pkcs11:token=lab;object=%s;type=private" % sys.argv[3]
        k["public_key_sha256"] = sys.argv[4]
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY
}
"$MKKEY" "$MODULE" lab "$FUSELINE_PIN_FILE" k-ext 1 1 || fail "mkkey extractable"
"$MKKEY" "$MODULE" lab "$FUSELINE_PIN_FILE" k-nsens 0 0 || fail "mkkey not sensitive"
"$MKKEY" "$MODULE" lab "$FUSELINE_PIN_FILE" k-good 0 1 || fail "mkkey good"
swap_key ks-prod.json ks-ext.json k-ext
swap_key ks-prod.json ks-nsens.json k-nsens
swap_key ks-prod.json ks-good.json k-good
expect_rc 0 "production, helper-made good key" "$F" sign --keyset ks-good.json --role pkc0 --in img.bin --out good.sig
raw2der good.sig good.der
openssl dgst -sha256 -verify k-good.pub -signature good.der img.bin >/dev/null || fail "helper-made key's signature"
expect_rc 6 "production keyset, extractable key" "$F" sign --keyset ks-ext.json --role pkc0 --in img.bin --out ext.sig
expect_err "CKA_EXTRACTABLE"
no_output ext.sig
expect_rc 6 "production keyset, key not sensitive" "$F" sign --keyset ks-nsens.json --role pkc0 --in img.bin --out nsens.sig
expect_err "CKA_SENSITIVE"
no_output nsens.sig
python3 - ks-prod.json ks-serial.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["token"]["serial"] = "0000000000000000"
d["token"]["uri"] = "pkcs11:token=lab"
json.dump(d, open(sys.argv[2], "w"), indent=2)
PY
expect_rc 6 "production keyset, other token serial" "$F" sign --keyset ks-serial.json --role pkc0 --in img.bin --out serial.sig
expect_err "token serial"
no_output serial.sig
expect_rc 6 "production keyset, other token serial (HMAC too)" "$F" sign --keyset ks-serial.json --role sbk --scheme hmac-sha256 \
  --in img.bin --out serial.mac
no_output serial.mac
python3 - ks-ext.json ks-ext-lab.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["profile"] = "lab"; json.dump(d, open(sys.argv[2], "w"))
PY
expect_rc 0 "lab keyset, extractable key: allowed" "$F" sign --keyset ks-ext-lab.json --role pkc0 --in img.bin --out ext-lab.sig
pass "production interlock: exit 6 naming CKA_EXTRACTABLE / CKA_SENSITIVE / token serial; lab keysets pass"

# ---- bad input ------------------------------------------------------------------------------
expect_rc 2 "no key at all" "$F" sign --keyset ks-r3.json --in img.bin --out o1.sig
expect_err "needs a key"; no_output o1.sig
expect_rc 2 "role not in the keyset" "$F" sign --keyset ks-r3.json --role pkc1 --in img.bin --out o2.sig
expect_err "no role 'pkc1'"; no_output o2.sig
expect_rc 2 "--role without --keyset" "$F" sign --role pkc0 --in img.bin --out o3.sig
no_output o3.sig
expect_rc 2 "rsa key with an ECDSA scheme" "$F" sign --keyset ks-r3.json --role pkc0 --scheme ecdsa-sha256 --in img.bin --out o4.sig
expect_err "role pkc0 holds a key of type rsa3k"; no_output o4.sig
expect_rc 2 "fuse key with an RSA scheme" "$F" sign --keyset ks-r3.json --role sbk --scheme rsa-pss-sha256 --in img.bin --out o5.sig
expect_err "role sbk"; no_output o5.sig
expect_rc 2 "PKC key with HMAC" "$F" sign --keyset ks-r3.json --role pkc0 --scheme hmac-sha256 --in img.bin --out o6.sig
no_output o6.sig
expect_rc 2 "--offset beyond the file" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --offset 300000 --out o7.sig
expect_err "offset 300000 is beyond the end of the file (300000 bytes) (given with --offset/--length)"; no_output o7.sig
expect_rc 2 "--length past the end" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --offset 10 --length 299991 --out o8.sig
expect_err "runs past the end"; no_output o8.sig
: > empty.bin
expect_rc 2 "empty file" "$F" sign --keyset ks-r3.json --role pkc0 --in empty.bin --out o9.sig
expect_err "empty.bin: empty file"; no_output o9.sig
mkdir -p adir
expect_rc 2 "directory as input" "$F" sign --keyset ks-r3.json --role pkc0 --in adir --out o10.sig
expect_err "adir: is a directory"; no_output o10.sig
expect_rc 2 "missing input" "$F" sign --keyset ks-r3.json --role pkc0 --in nope.bin --out o11.sig
expect_err "nope.bin: cannot open"; no_output o11.sig
expect_rc 2 "output in a missing directory" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out no/such/dir/o.sig
expect_err "no/such/dir/o.sig"
expect_rc 2 "output path is a directory" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out adir
[ -z "$(ls -A adir)" ] || fail "temp file left in adir"
expect_rc 2 "--digest of the wrong length" "$F" sign --keyset ks-r3.json --role pkc0 --digest --in img.d512 --out o12.sig
expect_err "64 bytes; signing a digest with rsa-pss-sha256 needs the 32-byte SHA256 digest (asked for with --digest)"; no_output o12.sig
# A big --digest input is the wrong length, not "over a limit".
head -c 100000 /dev/urandom > big.dg
expect_rc 2 "--digest of 100 kB" "$F" sign --keyset ks-r3.json --role pkc0 --digest --in big.dg --out o12b.sig
expect_err "big.dg: 100000 bytes; signing a digest with rsa-pss-sha256 needs the 32-byte SHA256 digest (asked for with --digest)"; no_output o12b.sig
expect_rc 2 "unknown scheme" "$F" sign --keyset ks-r3.json --role pkc0 --scheme rsa --in img.bin --out o13.sig
expect_err "signing scheme 'rsa' is unknown (rsa-pss-sha256"; expect_err "(given with --scheme)"; no_output o13.sig
expect_rc 2 "negative offset" "$F" sign --keyset ks-r3.json --role pkc0 --offset -1 --in img.bin --out o14.sig
no_output o14.sig
expect_rc 2 "MAC as pem" "$F" sign --keyset ks-r3.json --role sbk --format pem --in img.bin --out o15.sig
no_output o15.sig
# The overwrite rule: an existing output is exit 7 before any signing,
# untouched, unless --force (sign, batch, keygen --random).
cp r3.pss256 keep.sig
expect_rc 7 "sign onto an existing file" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out keep.sig --json
expect_err "keep.sig exists already; give --force to replace it"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ok"] is False and o["exit_code"]==7, o' "$T/out" || fail "exit 7 JSON"
cmp -s keep.sig r3.pss256 || fail "a refused sign touched keep.sig"
expect_rc 0 "sign --force onto an existing file" "$F" sign --keyset ks-r3.json --role pkc0 --in img.d256 --out keep.sig --force
! cmp -s keep.sig r3.pss256 || fail "--force did not replace keep.sig"
cp r3.pss256 keep.sig
mkdir -p fb; cp img.bin fb/a; cp img.bin fb/b; cp r3.pss256 fb/b.sig
printf 'fb/a fb/a.sig\nfb/b fb/b.sig\n' > fb/list
expect_rc 7 "batch with an existing output" "$F" sign --keyset ks-r3.json --role pkc0 --batch fb/list
expect_err "fb/list:2: fb/b.sig exists already"
[ ! -e fb/a.sig ] || fail "a refused batch signed fb/a"
expect_rc 0 "batch --force" "$F" sign --keyset ks-r3.json --role pkc0 --batch fb/list --force
! cmp -s fb/b.sig r3.pss256 || fail "batch --force did not replace fb/b.sig"
echo old > rnd.bin
expect_rc 7 "keygen --random onto an existing file" "$F" keygen --random 16 --keyset ks-r3.json --out rnd.bin
[ "$(cat rnd.bin)" = old ] || fail "a refused keygen --random touched rnd.bin"
expect_rc 0 "keygen --random --force" "$F" keygen --random 16 --keyset ks-r3.json --out rnd.bin --force
[ "$(stat -c %s rnd.bin)" = 16 ] || fail "keygen --random --force did not replace rnd.bin"
pass "overwrite rule: an existing output is exit 7 and untouched unless --force"
# An existing signature is replaced only by a complete new one.
cp r3.pss256 keep.sig
expect_rc 2 "failed re-sign keeps the old file" "$F" sign --keyset ks-r3.json --role pkc0 --in empty.bin --out keep.sig --force
cmp -s keep.sig r3.pss256 || fail "old signature damaged by a failed run"
echo wrong-pin > "$T/bad.pin"
expect_rc 3 "wrong PIN" "$F" sign --keyset ks-r3.json --role pkc0 --pin-source "file:$T/bad.pin" --in img.bin --out o16.sig
expect_err "CKR_PIN_INCORRECT"; no_output o16.sig
expect_rc 3 "key URI not in the token" "$F" sign --key "pkcs11:token=lab;object=nothing-here" --in img.bin --out o17.sig
no_output o17.sig
run "$F" sign --keyset ks-r3.json --role pkc0 --in empty.bin --out o18.sig --json
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ok"] is False and o["exit_code"]==2 and "empty" in o["error"]' \
  "$T/out" || fail "--json error object"
pass "bad input: one-line messages, exit 2/3, no output file"

expect_rc 0 "sign --uefi-var goes to the UEFI mode" "$F" sign --uefi-var db --help
grep -qi uefi "$T/out" || fail "sign --uefi-var did not reach the UEFI signer's help"

# --json names its hashes for what they hold: file_sha256 is the SHA-256 of
# the input bytes signed, always; digest (and digest_alg) is the digest the
# token signed, only where one was (not for MACs, which sign the bytes).
jhash() { # what: file_sha256 digest digest_alg (digest "-" for none)
  python3 - "$T/out" "$@" <<'PY' || fail "sign --json hashes ($2): $(cat "$T/out")"
import json, sys
o = json.load(open(sys.argv[1]))
what, fsha, dg, alg = sys.argv[2:6]
assert "signed_sha256" not in o, o
assert o["file_sha256"] == fsha, (what, o)
if dg == "-":
    assert "digest" not in o and "digest_alg" not in o, (what, o)
else:
    assert o["digest"] == dg and o["digest_alg"] == alg, (what, o)
PY
}
sha256_of() { openssl dgst -sha256 -r "$1" | cut -c1-64; }
expect_rc 0 "sign --json (pss-sha256)" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out h1.sig --json
jhash pss256 "$(sha256_of img.bin)" "$(sha256_of img.bin)" sha256
expect_rc 0 "sign --json (pss-sha512)" "$F" sign --keyset ks-r3.json --role pkc0 --scheme rsa-pss-sha512 --in img.bin --out h2.sig --json
jhash pss512 "$(sha256_of img.bin)" "$(openssl dgst -sha512 -r img.bin | cut -c1-128)" sha512
expect_rc 0 "sign --json (--digest)" "$F" sign --keyset ks-r3.json --role pkc0 --scheme rsa-pss-sha512 --digest --in img.d512 --out h3.sig --json
jhash digest "$(sha256_of img.d512)" "$(xxd -p -c 64 img.d512)" sha512
expect_rc 0 "sign --json (range)" "$F" sign --keyset ks-r3.json --role pkc0 --scheme rsa-pss-sha512 --in img.bin --offset 10 --length 1000 --out h4.sig --json
dd if=img.bin bs=64K iflag=skip_bytes,count_bytes skip=10 count=1000 status=none > h4.bin
jhash range "$(sha256_of h4.bin)" "$(openssl dgst -sha512 -r h4.bin | cut -c1-128)" sha512
expect_rc 0 "sign --json (aes-cmac)" "$F" sign --keyset ks-r3.json --role sbk --in img.bin --out h5.sig --json
jhash cmac "$(sha256_of img.bin)" - -
pass "sign --json: file_sha256 always, digest/digest_alg only where a digest was signed (openssl-computed)"

# -q is one rule for every command: diagnostics on stderr go, the result on
# stdout stays (sign used to drop it; keygen, verify and fuse-xml kept it).
expect_rc 0 "sign -q" "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out q.sig -q
grep -q '^signed img.bin' "$T/out" || fail "sign -q hid the result line"
[ ! -s "$T/err" ] || fail "sign -q wrote to stderr: $(cat "$T/err")"
expect_rc 0 "verify signature -q" "$F" verify signature --in img.bin --sig q.sig --pubkey r3.pub -q
grep -q '^signature OK' "$T/out" || fail "verify signature -q hid the result line"
expect_rc 0 "verify keyset -q" "$F" verify keyset ks-r3.json -q
grep -q 'PASS' "$T/out" || fail "verify keyset -q hid the result line"
expect_rc 0 "keygen --random -q" "$F" keygen --random 16 --keyset ks-r3.json --out q.rnd -q
grep -q '^wrote 16 random bytes' "$T/out" || fail "keygen --random -q hid the result line"
pass "-q keeps the result line on stdout for sign, verify signature, verify keyset, keygen --random"

# A result that cannot be written is a failed run: exit 1, never 0.
run_full() { set +e; "$@" >/dev/full 2>"$T/err"; RC=$?; set -e; }
run_full "$F" sign --keyset ks-r3.json --role pkc0 --in img.bin --out full.sig --json
[ "$RC" -eq 1 ] || fail "sign --json >/dev/full: exit $RC, expected 1"
grep -q 'standard output' "$T/err" || fail "sign >/dev/full: the failed write is not named"
run_full "$F" verify keyset ks-r3.json --json
[ "$RC" -eq 1 ] || fail "verify keyset --json >/dev/full: exit $RC, expected 1"
run_full "$F" verify keyset ks-r3.json
[ "$RC" -eq 1 ] || fail "verify keyset >/dev/full: exit $RC, expected 1"
pass "a result that cannot be written to stdout is exit 1 (sign, verify keyset)"

assert_absent "$(cat "$FUSELINE_PIN_FILE")" "$LOG" "$T/out" "$T/err"
pass "the PIN never appears in fuseline's output"
done_testing
