#!/usr/bin/env bash
# The tegrasign HSM hook (templates/tegrasign/tegrasign_v3_hsm.py) against
# NVIDIA's own outputs (tests/vectors/tegrasign, from tegrasign_v3.py R36.2 in
# software mode) and OpenSSL, driven the way tegrasign drives it in HSM mode
# (tests/tools/tegrasign-fake-caller.py), plus the fuseline commands it uses:
# keygen --export-pub, keygen --random, sign --encrypt aes-gcm.
. "$SRCDIR/tests/lib.sh"
lab_token
command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }
HOOK=$SRCDIR/templates/tegrasign
CALLER=$SRCDIR/tests/tools/tegrasign-fake-caller.py
V=${VECTORS:?}/tegrasign
K=$VECTORS/pkc-hash
GCMREF=${AES_GCM_REF:?}
export FUSELINE_KEYSET=$T/ks.json
F=$FUSELINE
export FUSELINE=$F   # the hook's name for the binary
hook() { python3 "$CALLER" "$HOOK" "$@"; }
rev() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d[::-1])' "$1" "$2"; }
# The check the issue names: openssl dgst on the reversed signature.
dgst_ok() { openssl dgst "-$1" -sigopt rsa_padding_mode:pss -sigopt "rsa_pss_saltlen:$2" -verify "$3" \
  -signature "$4" "$5" >/dev/null 2>&1; }

# ---- every name tegrasign imports exists --------------------------------------
# The list is read from NVIDIA's vector notes, not written here.
NAMES=$(python3 - "$V/VECTORS.txt" <<'PY'
import re, sys
t = " ".join(open(sys.argv[1]).read().split())
m = re.search(r"HSM mode \(--hsm TYPE\): (.*?)\. `--hsm", t)
print(" ".join(n.strip() for n in m.group(1).split(",")))
PY
)
[ "$(echo "$NAMES" | wc -w)" -eq 14 ] || fail "expected 14 names in VECTORS.txt, got: $NAMES"
# shellcheck disable=SC2086
expect_rc 0 "import every name tegrasign imports in HSM mode" hook import $NAMES
expect_rc 4 "an unknown name is an ImportError (the check works)" hook import do_rsa_pss_hsm no_such_hook
grep -q "ImportError: no_such_hook" "$T/err" || fail "import failure not reported"
pass "no name of NVIDIA's list raises ImportError: $NAMES"

for n in oem_hsm_kdf oem_hsm_aes_gcm oem_hsm_hmacsha; do
  expect_rc 3 "$n raises" hook call "$n"
  grep -q "$n: .* is not supported by fuseline" "$T/err" || fail "$n message: $(cat "$T/err")"
done
expect_rc 3 "get_key_file_hsm raises" hook call get_key_file_hsm
grep -q "no key file" "$T/err" || fail "get_key_file_hsm message"
pass "the OEM KDF/FSKP back-end and get_key_file_hsm raise FuselineHsmError naming what is not supported"

# ---- NVIDIA's RSA-3K test key in a lab token ---------------------------------
expect_rc 0 "import the vector RSA-3K key" "$F" keygen --import-pem "$K/t234-rsa3k.pem" --role pkc0 --chip t234 \
  --name tv --lab --out ks.json
SBK=$(head -c 32 /dev/urandom | xxd -p -c 64)
echo "0x$SBK" > sbk.txt
expect_rc 0 "import an SBK" "$F" keygen --import-hex sbk.txt --role sbk --keyset ks.json
xxd -r -p <<<"$SBK" > sbk.bin
openssl pkey -in "$K/t234-rsa3k.pem" -pubout -out rsa.pub.pem 2>/dev/null

# `--pubkeyhash P H --getmont M` in HSM mode: the files are NVIDIA's, byte for byte.
expect_rc 0 "pubkeyhash + getmont through the hook" hook pubkeyhash pub.bin mont.bin
grep -qx "rsa 384" "$T/out" || fail "keysize after get_rsa_mod_hsm: $(cat "$T/out")"
cmp pub.bin "$V/t234-rsa3k.pub.bin" || fail "get_rsa_mod_hsm file differs from NVIDIA's"
cmp mont.bin "$V/t234-rsa3k.mont.bin" || fail "get_rsa_mont_hsm file differs from NVIDIA's"
pass "get_rsa_mod_hsm / get_rsa_mont_hsm write NVIDIA's --pubkeyhash / --getmont files byte for byte"
rm -f pub.bin mont.bin
expect_rc 0 "the *_from_pubkey_hsm pair" hook pubkey-from-pub pub.bin mont.bin
grep -qx "True 384" "$T/out" || fail "from_pubkey: $(cat "$T/out")"
cmp pub.bin "$V/t234-rsa3k.pub.bin" && cmp mont.bin "$V/t234-rsa3k.mont.bin" || fail "from_pubkey files differ"
expect_rc 0 "getmont alone" hook getmont mont2.bin
cmp mont2.bin "$V/t234-rsa3k.mont.bin" || fail "getmont alone differs"
pass "get_rsa_mod_from_pubkey_hsm / get_rsa_mont_from_pubkey_hsm / --getmont alone: NVIDIA's bytes"

# The command behind them, on its own.
expect_rc 0 "keygen --export-pub --format tegra" "$F" keygen --export-pub pkc0 --keyset ks.json --format tegra \
  --out e.pub --hash-out e.hash --mont-out e.mont --json
cmp e.pub "$V/t234-rsa3k.pub.bin" && cmp e.hash "$V/t234-rsa3k.hash.bin" && cmp e.mont "$V/t234-rsa3k.mont.bin" \
  || fail "export-pub files differ from NVIDIA's"
python3 - e.pub e.hash <<'PY' || fail "hash is not SHA-512 of the zero-padded 384-byte key"
import hashlib, sys
pub = open(sys.argv[1], "rb").read()
assert hashlib.sha512(pub.ljust(384, b"\0")).digest() == open(sys.argv[2], "rb").read()
PY
[ "$(jget "$T/out" 'd["tegra_pkc_hash"]')" = "0x$(xxd -p -c 64 "$V/t234-rsa3k.hash.bin")" ] || fail "json hash"
[ "$(jget "$T/out" 'd["type"]')" = rsa3k ] || fail "json type"
expect_rc 0 "keygen --export-pub (PEM)" "$F" keygen --export-pub pkc0 --keyset ks.json --out e.pem
cmp e.pem rsa.pub.pem || fail "PEM export differs from openssl pkey -pubout"
[ "$(stat -c %a e.pem)" = 644 ] || fail "public key file mode"
pass "keygen --export-pub: tegra files equal NVIDIA's, PEM equals openssl's"

# ---- signatures: tegrasign's Sha integer -------------------------------------
head -c 150000 /dev/urandom > img.bin
expect_rc 0 "file signing, Sha=1" hook rsa-sha 1 img.bin s1.tegra
rev s1.tegra s1.be
dgst_ok sha512 32 rsa.pub.pem s1.be img.bin || fail "Sha=1 signature does not verify as SHA-512/PSS/salt 32"
dgst_ok sha256 32 rsa.pub.pem s1.be img.bin && fail "Sha=1 signature verifies with SHA-256"
dgst_ok sha512 64 rsa.pub.pem s1.be img.bin && fail "Sha=1 signature verifies with salt 64"
dgst_ok sha512 32 rsa.pub.pem s1.tegra img.bin && fail "Sha=1 signature not byte-reversed"
pass "Sha=1: RSA-PSS SHA-512, salt 32, byte-reversed (openssl dgst -sha512 verifies, -sha256 does not)"
expect_rc 0 "verify signature --scheme rsa-pss-sha512-salt32" "$F" verify signature --in img.bin --sig s1.tegra \
  --format tegra --scheme rsa-pss-sha512-salt32 --pubkey rsa.pub.pem
expect_rc 5 "the same as rsa-pss-sha512 (salt 64)" "$F" verify signature --in img.bin --sig s1.tegra \
  --format tegra --scheme rsa-pss-sha512 --pubkey rsa.pub.pem
expect_rc 0 "file signing, Sha=0" hook rsa-sha 0 img.bin s0.tegra
rev s0.tegra s0.be
dgst_ok sha256 32 rsa.pub.pem s0.be img.bin || fail "Sha=0 signature does not verify as SHA-256/PSS/salt 32"
dgst_ok sha512 32 rsa.pub.pem s0.be img.bin && fail "Sha=0 signature verifies with SHA-512"
pass "Sha=0: RSA-PSS SHA-256, salt 32, byte-reversed (openssl dgst -sha256 verifies, -sha512 does not)"
for bad in 2:"Sha is 2" -1:"Sha is -1" none:"Sha is None" true:"Sha is True" str:sha512:"Sha is 'sha512'" \
           missing:"Sha is missing"; do
  v=${bad%%:Sha*}; msg=${bad#"$v":}
  rm -f bad.sig
  expect_rc 3 "Sha=$v is refused" hook rsa-sha "$v" img.bin bad.sig
  grep -qF "$msg" "$T/err" || fail "Sha=$v: message lacks '$msg': $(cat "$T/err")"
  [ ! -e bad.sig ] || fail "Sha=$v: a signature was returned"
done
pass "any other Sha value is an error naming it, never a default"

# tegraflash (T234): --list LIST --pubkeyhash pub_key.key --sha sha512.
head -c 4096 /dev/urandom > bct.bin; head -c 70000 /dev/urandom > mb1.bin
cat > list.xml <<EOF
<file_list>
<file name="bct.bin" offset="1184" length="2048" id="0" type="bct"><pkc signature="bct.sig" signed_file="bct_signed.bin" /></file>
<file name="mb1.bin" offset="0" length="0" id="1" type="mb1"><pkc signature="mb1.sig" signed_file="mb1_signed.bin" /></file>
</file_list>
EOF
expect_rc 0 "list signing with a public-key file, Sha=1" hook list list.xml 1 pub_key.key
cmp pub_key.key "$V/t234-rsa3k.pub.bin" || fail "pub_key.key differs from NVIDIA's"
dd if=bct.bin bs=1 skip=1184 count=2048 status=none > bct.part
for p in bct:bct.part mb1:mb1.bin; do
  n=${p%%:*}; rev "$n.sig" "$n.be"
  dgst_ok sha512 32 rsa.pub.pem "$n.be" "${p#*:}" || fail "list entry $n: not SHA-512/salt 32 over its range"
  dgst_ok sha256 32 rsa.pub.pem "$n.be" "${p#*:}" && fail "list entry $n verifies with SHA-256"
done
pass "tegraflash's list signing: pub_key.key is NVIDIA's, every entry RSA-PSS SHA-512 salt 32 over its range"

# ---- a P-256 key: no RSA or Ed25519 form, the probes say False ---------------
expect_rc 0 "import the vector P-256 key" "$F" keygen --import-pem "$K/t234-p256.pem" --role pkc0 --chip t234 \
  --name tp --lab --out ks-p256.json
expect_rc 0 "export P-256 tegra + hash" "$F" keygen --export-pub pkc0 --keyset ks-p256.json --format tegra \
  --out p.pub --hash-out p.hash
cmp p.pub "$V/t234-p256.pub.bin" && cmp p.hash "$V/t234-p256.hash.bin" || fail "P-256 files differ from NVIDIA's"
pass "P-256: rev(X)||rev(Y) and its hash equal NVIDIA's"
expect_rc 2 "Montgomery values of a P-256 key" "$F" keygen --export-pub pkc0 --keyset ks-p256.json --format tegra \
  --out q.pub --mont-out q.mont
expect_err "has no tegra Montgomery values (only rsa3k has)"
[ ! -e q.pub ] && [ ! -e q.mont ] || fail "a file was written for a refused export"
FUSELINE_KEYSET=$T/ks-p256.json expect_rc 1 "probe a P-256 key" hook pubkeyhash pp.bin
grep -q "no key type matched" "$T/err" || fail "P-256 should match neither RSA nor Ed25519"
[ ! -e pp.bin ] || fail "a probe that said False wrote a file"
pass "get_rsa_mod_hsm / get_ed25519_pub_hsm return False for a P-256 key and write nothing"

# --hash-out follows the keyset's chip: T194's SHA-256 PublicKeyHash.
expect_rc 0 "import the t194 RSA-3K vector key" "$F" keygen --import-pem "$K/t194-rsa3k.pem" --role pkc0 --chip t194 \
  --name tx --lab --out ks-t194.json
expect_rc 0 "export the t194 hash" "$F" keygen --export-pub pkc0 --keyset ks-t194.json --hash-out x.hash
want=$(awk '$1 == "t194-rsa3k.pem" { print $3 }' "$K/VECTORS.txt")
[ "0x$(xxd -p -c 64 x.hash)" = "$want" ] || fail "t194 hash-out differs from NVIDIA's value"
pass "--hash-out on a t194 keyset is the 32-byte T194 PublicKeyHash NVIDIA's tools compute"

# ---- the manifest pins the key; secrets have no public key ---------------------
python3 - ks.json ks-bad.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["keys"][0]["public_key_sha256"] = "00" * 32
json.dump(d, open(sys.argv[2], "w"))
PY
expect_rc 5 "export with a wrong pinned hash" "$F" keygen --export-pub pkc0 --keyset ks-bad.json --out bad.pem
expect_err "the manifest's public_key_sha256 is"
[ ! -e bad.pem ] || fail "exported a key that is not the manifest's"
FUSELINE_KEYSET=$T/ks-bad.json expect_rc 3 "hook with a wrong pinned hash" hook pubkeyhash bad.bin
grep -q "fuseline keygen --export-pub exit 5: .*public_key_sha256" "$T/err" || fail "hook message: $(cat "$T/err")"
[ ! -e bad.bin ] || fail "hook wrote a key that is not the manifest's"
expect_rc 2 "export a secret-key role" "$F" keygen --export-pub sbk --keyset ks.json --out s.pem
expect_err "role sbk holds a secret key (aes256): it has no public key"
expect_rc 2 "export an unknown role" "$F" keygen --export-pub pkc5 --keyset ks.json --out s.pem
expect_err "no role 'pkc5'"
expect_rc 2 "export without --keyset" "$F" keygen --export-pub pkc0 --out s.pem
[ ! -e s.pem ] || fail "file written on error"
pass "export refuses replaced keys (exit 5), secret and unknown roles (exit 2), and writes nothing then"

# ---- Ed25519 --------------------------------------------------------------------
if pkcs11-tool --module "$MODULE" -M 2>/dev/null | grep -q '^ *EDDSA'; then
  echo "# SoftHSM2 offers CKM_EDDSA: the Ed25519 entry points are tested"
  openssl pkey -in "$K/t234-ed25519.pem" -pubout -out ed.pub 2>/dev/null
  p11tool --login --write --load-privkey "$K/t234-ed25519.pem" --label tv-ed --id 0e0f pkcs11:token=lab \
    >/dev/null 2>&1 || fail "write ed"
  p11tool --login --write --load-pubkey ed.pub --label tv-ed --id 0e0f pkcs11:token=lab >/dev/null 2>&1 \
    || fail "write ed pub"
  spki=$(openssl pkey -pubin -in ed.pub -outform DER | sha256sum | cut -d' ' -f1)
  python3 - ks.json ks-ed.json "$spki" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["keys"].append({"role": "pkc-ed", "type": "ed25519", "label": "tv-ed", "public_key_sha256": sys.argv[3],
                  "uri": "pkcs11:token=lab;object=tv-ed;type=private"})
json.dump(d, open(sys.argv[2], "w"))
PY
  export FUSELINE_HSM_PKC_ROLE=pkc-ed
  FUSELINE_KEYSET=$T/ks-ed.json expect_rc 0 "pubkeyhash with an Ed25519 key" hook pubkeyhash edpub.bin
  grep -qx "ed25519 64" "$T/out" || fail "Ed25519 probe: $(cat "$T/out")"
  cmp edpub.bin "$V/t234-ed25519.pub.bin" || fail "get_ed25519_pub_hsm file differs from NVIDIA's"
  expect_rc 0 "export Ed25519 hash" "$F" keygen --export-pub pkc-ed --keyset ks-ed.json --format tegra \
    --out ed.bin --hash-out ed.hash
  cmp ed.bin "$V/t234-ed25519.pub.bin" && cmp ed.hash "$V/t234-ed25519.hash.bin" || fail "Ed25519 export differs"
  FUSELINE_KEYSET=$T/ks-ed.json expect_rc 0 "do_ed25519_hsm" hook ed25519 img.bin ed.sig
  openssl pkeyutl -sign -rawin -inkey "$K/t234-ed25519.pem" -in img.bin -out ed.openssl
  cmp ed.sig ed.openssl || fail "Ed25519 signature differs from openssl's"
  unset FUSELINE_HSM_PKC_ROLE
  pass "Ed25519: get_ed25519_pub_hsm (keysize 64) and the hash equal NVIDIA's; signatures equal openssl's"
else
  not_run "the Ed25519 hook entry points: this PKCS#11 module does not offer CKM_EDDSA (SoftHSM2 >= 2.5 built with EdDSA does)"
fi

# ---- random bytes from the token ----------------------------------------------
expect_rc 0 "do_random_hsm 12 x 5" hook random 12 5 r1.bin
expect_rc 0 "do_random_hsm again" hook random 12 5 r2.bin
[ "$(stat -c %s r1.bin)" = 60 ] || fail "ran.buf is not size*count bytes"
cmp -s r1.bin r2.bin && fail "two random draws are equal"
[ "$(tr -d '\0' < r1.bin | wc -c)" -gt 0 ] || fail "random bytes all zero"
expect_rc 0 "do_random_hsm 0 x 3" hook random 0 3 r0.bin
[ "$(stat -c %s r0.bin)" = 0 ] || fail "empty request"
expect_rc 0 "do_random_hsm across the per-call limit" hook random 1000 70 rbig.bin
[ "$(stat -c %s rbig.bin)" = 70000 ] || fail "70000 random bytes"
expect_rc 0 "keygen --random" "$F" keygen --random 32 --keyset ks.json --out r.bin --json
[ "$(jget "$T/out" 'd["source"]')" = C_GenerateRandom ] || fail "random source"
[ "$(stat -c '%s %a' r.bin)" = "32 600" ] || fail "random file size/mode"
expect_rc 2 "keygen --random 0" "$F" keygen --random 0 --out r.bin
expect_rc 2 "keygen --random 65537" "$F" keygen --random 65537 --out r.bin
pass "do_random_hsm fills ran.buf from the token's C_GenerateRandom; bad counts exit 2"

# ---- AES-GCM with the SBK in the token ---------------------------------------
head -c 100003 /dev/urandom > pt.bin; head -c 12 /dev/urandom > iv.bin; head -c 48 /dev/urandom > aad.bin
head -c 16 /dev/urandom > iv16.bin
"$GCMREF" sbk.bin iv.bin aad.bin pt.bin ref.enc ref.tag || fail "software AES-GCM"
expect_rc 0 "do_aes_gcm_hsm (iv, aad arguments)" hook gcm-args pt.bin iv.bin aad.bin g.enc g.tag
cmp g.enc ref.enc && cmp g.tag ref.tag || fail "token AES-GCM differs from OpenSSL's"
expect_rc 0 "do_aes_gcm_hsm (iv, aad in p_key.kdf)" hook gcm-kdf pt.bin iv.bin aad.bin k.enc k.tag
cmp k.enc ref.enc && cmp k.tag ref.tag || fail "p_key.kdf path differs"
"$GCMREF" sbk.bin iv16.bin - pt.bin ref2.enc ref2.tag || fail "software AES-GCM (no AAD)"
expect_rc 0 "do_aes_gcm_hsm without AAD, 16-byte IV" hook gcm-args pt.bin iv16.bin - n.enc n.tag
cmp n.enc ref2.enc && cmp n.tag ref2.tag || fail "no-AAD AES-GCM differs"
pass "do_aes_gcm_hsm: ciphertext and tag byte-identical to OpenSSL's AES-256-GCM for the same key, IV and AAD"
assert_absent "$SBK" "$T/out" "$T/err"
expect_rc 3 "do_aes_gcm_hsm with a derived key" hook gcm-derived pt.bin
grep -q "use_der_key" "$T/err" || fail "derived-key message"
expect_rc 2 "sign --encrypt with a PKC role" "$F" sign --encrypt aes-gcm --keyset ks.json --role pkc0 --iv iv.bin \
  --in pt.bin --out x.enc --tag-out x.tag
expect_err "role pkc0 holds a key of type rsa3k; aes-gcm needs an AES fuse key"
expect_rc 2 "sign --encrypt with an RSA key URI" "$F" sign --encrypt aes-gcm --key "pkcs11:token=lab;object=tv-pkc0;type=private" \
  --iv iv.bin --in pt.bin --out x.enc --tag-out x.tag
expect_err "aes-gcm needs a CKK_AES key"
expect_rc 0 "sign --encrypt with the SBK's URI" "$F" sign --encrypt aes-gcm --key "pkcs11:token=lab;object=tv-sbk" \
  --iv iv.bin --aad aad.bin --in pt.bin --out u.enc --tag-out u.tag
cmp u.enc ref.enc && cmp u.tag ref.tag || fail "--key URI AES-GCM differs from OpenSSL's"
: > empty.iv
expect_rc 2 "sign --encrypt with an empty IV" "$F" sign --encrypt aes-gcm --keyset ks.json --role sbk --iv empty.iv \
  --in pt.bin --out x.enc --tag-out x.tag
expect_err "IV of 0 bytes"
[ ! -e x.enc ] && [ ! -e x.tag ] || fail "output written on error"
expect_rc 2 "sign --encrypt aes-cbc" "$F" sign --encrypt aes-cbc --keyset ks.json --role sbk --iv iv.bin \
  --in pt.bin --out x.enc --tag-out x.tag
pass "AES-GCM refuses derived keys, non-AES roles, empty IVs and other modes; nothing written"
assert_absent "$(cat "$FUSELINE_PIN_FILE")" "$T/out" "$T/err"
done_testing
