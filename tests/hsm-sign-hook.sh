#!/usr/bin/env bash
# templates/tegrasign/tegrasign_v3_hsm.py, the drop-in HSM back-end for
# tegrasign_v3, driven by a fake caller that passes what tegrasign passes (a
# buffer cut from an image, a p_key with key.pkckey.Sha) — and every returned
# signature checked with OpenSSL against the public key p11tool exports.
. "$SRCDIR/tests/lib.sh"
lab_token
command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }
HOOK=$SRCDIR/templates/tegrasign
CALLER=$SRCDIR/tests/tools/tegrasign-fake-caller.py
export FUSELINE_KEYSET=$T/ks.json
FUSELINE_BIN=$FUSELINE
export FUSELINE=$FUSELINE_BIN   # the hook's name for the binary

pss_ok() { openssl pkeyutl -verify -pubin -inkey "$1" -sigfile "$2" -in "$3" -pkeyopt "digest:$4" \
    -pkeyopt rsa_padding_mode:pss -pkeyopt "rsa_mgf1_md:$4" -pkeyopt "rsa_pss_saltlen:$5" >/dev/null 2>&1; }
rev() { python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d[::-1])' "$1" "$2"; }

"$FUSELINE_BIN" keygen --chip t234 --pkc rsa3k --sbk --lab --name h --out ks.json >/dev/null 2>&1 || fail "keygen"
p11tool --export "pkcs11:token=lab;object=h-pkc0;type=public" > pkc0.pub 2>/dev/null || fail "export pkc0"
head -c 200000 /dev/urandom > image.bin

# RSA-PSS over a buffer cut from the image (tegrasign passes the bytes).
expect_rc 0 "do_rsa_pss_hsm (sha256)" python3 "$CALLER" "$HOOK" rsa image.bin sig.tegra 1024 8192
dd if=image.bin bs=8192 iflag=skip_bytes,count_bytes skip=1024 count=8192 status=none > part.bin
openssl dgst -sha256 -binary part.bin > part.d256
rev sig.tegra sig.be
pss_ok pkc0.pub sig.be part.d256 sha256 32 || fail "hook RSA-PSS signature (reversed back) does not verify"
pss_ok pkc0.pub sig.tegra part.d256 sha256 32 && fail "hook returned the signature unreversed"
pss_ok pkc0.pub sig.be part.d256 sha256 20 && fail "hook signature verifies with salt 20"
pass "do_rsa_pss_hsm: byte-reversed RSA-PSS-SHA256, salt 32, over exactly the buffer given"

expect_rc 0 "do_rsa_pss_hsm (Sha=1)" python3 "$CALLER" "$HOOK" rsa512 image.bin sig512.tegra
openssl dgst -sha512 -binary image.bin > image.d512
rev sig512.tegra sig512.be
pss_ok pkc0.pub sig512.be image.d512 sha512 32 || fail "SHA-512 hook signature (salt 32)"
pss_ok pkc0.pub sig512.be image.d512 sha512 64 && fail "SHA-512 hook signature verifies with salt 64"
pass "do_rsa_pss_hsm with pkckey.Sha = 1 (tegrasign's Sha._512) signs RSA-PSS-SHA512, salt 32"

# HMAC / CMAC with the SBK: equal openssl's with the value (read here only).
pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
  --label h-sbk -o "$T/sbk.key" >/dev/null 2>&1 || fail "read sbk"
hex=$(xxd -p -c 64 "$T/sbk.key")
expect_rc 0 "do_hmac_sha256_hsm" python3 "$CALLER" "$HOOK" hmac image.bin hmac.bin
openssl mac -digest SHA256 -macopt "hexkey:$hex" -binary -in image.bin -out hmac.openssl HMAC
cmp -s hmac.bin hmac.openssl || fail "hook HMAC differs from openssl's"
assert_absent "$hex" "$T/out" "$T/err"
expect_rc 0 "do_aes_cmac_hsm" python3 "$CALLER" "$HOOK" cmac image.bin cmac.bin
openssl mac -cipher AES-256-CBC -macopt "hexkey:$hex" -binary -in image.bin -out cmac.openssl CMAC
cmp -s cmac.bin cmac.openssl || fail "hook CMAC differs from openssl's"
pass "do_hmac_sha256_hsm / do_aes_cmac_hsm equal openssl mac (HMAC via the token's twin object)"

# Batch: three buffers, one token session.
head -c 3000 /dev/urandom > b0; head -c 1 /dev/urandom > b1; head -c 70000 /dev/urandom > b2
expect_rc 0 "sign_files_in_batch_hsm" python3 "$CALLER" "$HOOK" batch out b0 b1 b2
for i in 0 1 2; do
  openssl dgst -sha256 -binary b$i > d$i
  rev out$i.sig out$i.be
  pss_ok pkc0.pub out$i.be d$i sha256 32 || fail "batch entry $i"
done
pass "sign_files_in_batch_hsm fills out_sig_data with tegra-format signatures"

# Ed25519 where the token offers it; the hook uses FUSELINE_HSM_PKC_ROLE.
if pkcs11-tool --module "$MODULE" -M 2>/dev/null | grep -q '^ *EDDSA'; then
  echo "# SoftHSM2 offers CKM_EDDSA: the Ed25519 entry point is tested"
  openssl genpkey -algorithm ed25519 -out ed.pem 2>/dev/null
  openssl pkey -in ed.pem -pubout -out ed.pub
  p11tool --login --write --load-privkey ed.pem --label hk-ed --id 0e0e pkcs11:token=lab >/dev/null 2>&1 || fail "write ed"
  p11tool --login --write --load-pubkey ed.pub --label hk-ed --id 0e0e pkcs11:token=lab >/dev/null 2>&1 || fail "write ed pub"
  python3 - ks.json ks-ed.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["keys"].append({"role": "ed-test", "type": "ed25519", "label": "hk-ed",
                  "uri": "pkcs11:token=lab;object=hk-ed;type=private"})
json.dump(d, open(sys.argv[2], "w"))
PY
  FUSELINE_KEYSET=$T/ks-ed.json FUSELINE_HSM_PKC_ROLE=ed-test expect_rc 0 "do_ed25519_hsm" \
    python3 "$CALLER" "$HOOK" ed25519 image.bin ed.sig
  openssl pkeyutl -sign -rawin -inkey ed.pem -in image.bin -out ed.openssl
  cmp -s ed.sig ed.openssl || fail "hook Ed25519 signature differs from openssl's"
  openssl pkeyutl -verify -pubin -inkey ed.pub -rawin -in image.bin -sigfile ed.sig >/dev/null || fail "ed verify"
  pass "do_ed25519_hsm: 64 bytes, identical to openssl's Ed25519 signature"
else
  not_run "do_ed25519_hsm: this PKCS#11 module does not offer CKM_EDDSA (SoftHSM2 >= 2.5 built with EdDSA does)"
fi

# Failures surface as exceptions with fuseline's message, never as bytes.
expect_rc 0 "is_zero_aes_hsm" python3 "$CALLER" "$HOOK" zero image.bin x
grep -qx False "$T/out" || fail "is_zero_aes_hsm should be False"
FUSELINE_KEYSET= expect_rc 3 "no FUSELINE_KEYSET" python3 "$CALLER" "$HOOK" rsa image.bin x.sig
grep -q "FUSELINE_KEYSET is not set" "$T/err" || fail "message for a missing keyset"
FUSELINE_HSM_PKC_ROLE=pkc7 expect_rc 3 "unknown role" python3 "$CALLER" "$HOOK" rsa image.bin x.sig
grep -q "no role 'pkc7'" "$T/err" || fail "fuseline's message not passed on: $(cat "$T/err")"
[ ! -e x.sig ] || fail "a signature file was written on failure"
FUSELINE_HSM_PKC_ROLE=sbk expect_rc 3 "RSA entry point with a fuse key" python3 "$CALLER" "$HOOK" rsa image.bin x.sig
grep -q "role sbk holds a key of type aes256" "$T/err" || fail "wrong key type message: $(cat "$T/err")"
FUSELINE_PIN_FILE=/nonexistent expect_rc 3 "PIN file missing" python3 "$CALLER" "$HOOK" hmac image.bin x.sig
expect_rc 3 "AES-GCM without an IV" python3 "$CALLER" "$HOOK" gcm image.bin x
grep -q "no IV" "$T/err" || fail "gcm message"
pass "hook failures raise FuselineHsmError carrying fuseline's one-line message; nothing is returned"
assert_absent "$(cat "$FUSELINE_PIN_FILE")" "$T/out" "$T/err"
done_testing
