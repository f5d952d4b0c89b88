#!/usr/bin/env bash
# The one signer (lib/signer.c) on every path that signs with a keyset key:
# sign, sign --uefi-var, sign --uefi-payload, enroll (the identity CA) and
# verify ledger --sign-with. For each path, on a SoftHSM2 token:
#   - a production keyset signs (the baseline: the refusals below are about
#     the one thing changed);
#   - its token_serial changed: the production interlock refuses (exit 6);
#   - the role's key swapped for an extractable one (made by pkcs11-tool
#     --extractable, its attribute read back with pkcs11-tool): refused
#     (exit 6);
#   - $FUSELINE_TOKEN naming another token: refused with both tokens named
#     (exit 3), for every command that takes a keyset;
#   - two tokens labelled "lab" and $FUSELINE_TOKEN=pkcs11:token=lab (what
#     lab-token.sh exports): the manifest's serial picks the right one.
# Plus sign --key URI honoured whole (its token, object and pin-source), and
# the role policy (which role signs what).
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE
G=11111111-2222-3333-4444-555555555555
TS="2026-02-01 12:00:00"
E1=80012344705df1172c0000000d020080
export FUSELINE_DB=$T/line.db FUSELINE_STATION=st1 FUSELINE_OPERATOR=alice
P11="pkcs11-tool --module $MODULE --token-label lab --login --pin env:TEST_PIN"

# role-set MANIFEST OUT ROLE key=value...: a copy of MANIFEST with ROLE's entry
# changed (added when absent); top-level fields with ROLE "-", the token
# object's with ROLE "token".
role_set() {
  python3 - "$@" <<'PY' || fail "role_set $*"
import json, sys
src, out, role = sys.argv[1:4]
d = json.load(open(src))
kv = dict(a.split("=", 1) for a in sys.argv[4:])
if role == "-":
    d.update(kv)
elif role == "token":
    d["token"].update(kv)
else:
    ks = [k for k in d["keys"] if k["role"] == role]
    if not ks:
        d["keys"].append({"role": role}); ks = d["keys"][-1:]
    ks[0].update(kv)
json.dump(d, open(out, "w"), indent=1)
PY
}
spki_sha() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
cert_sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# ---- a production keyset with every kind of signing role ------------------------------
expect_rc 0 "production keyset" "$F" keygen --chip t234 --pkc p256 --name pr --out prod.json
[ "$(jget prod.json 'd["profile"]')" = production ] || fail "keygen without --lab is not production"
expect_rc 0 "keygen --uefi (production)" "$F" keygen --uefi --keyset prod.json --out-dir b --owner-guid $G \
  --timestamp "2026-01-01 00:00:00"
expect_rc 0 "keygen --identity-ca (production)" "$F" keygen --identity-ca --keyset prod.json \
  --subject "/O=Acme/CN=Acme Device CA" --hw-type-oid 1.3.6.1.4.1.32473.9
# A station key for checkpoints, made outside fuseline (it has no keygen mode).
$P11 --keypairgen --key-type EC:secp384r1 --label pr-station --id 5a01 >/dev/null 2>&1 || fail "station keypairgen"
p11tool --export-pubkey "pkcs11:token=lab;object=pr-station;type=public" > station.pem 2>/dev/null || fail "export station"
role_set prod.json prod.json station type=p384 label=pr-station \
  "uri=pkcs11:token=lab;object=pr-station;type=private" "public_key_sha256=$(spki_sha station.pem)"
"$LEDGER_WRITER" --db "$FUSELINE_DB" --count 3 >/dev/null || fail "ledger-writer"
# A ledger whose checkpoints no other key signed (verify ledger checks old
# checkpoints against the keyset's role before it signs a new one).
"$LEDGER_WRITER" --db x.db --count 3 >/dev/null || fail "ledger-writer x.db"
printf 'image bytes\n' > img.bin
printf 'initrd bytes\n' > initrd
openssl req -new -x509 -newkey rsa:2048 -nodes -keyout newdb.key -subj "/CN=newdb/" -days 30 -out newdb.crt 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dev.key 2>/dev/null
openssl req -new -key dev.key -subj "/CN=dev" -out dev.csr 2>/dev/null || fail "device CSR"

# The five paths, each run against manifest $1 with output names suffixed $2.
path_sign() { "$F" sign --keyset "$1" --role "${3:-pkc0}" --in img.bin --out "img.$2.sig"; }
path_var() { "$F" sign --uefi-var db --append newdb.crt --signer "${3:-uefi-kek}" --keyset "$1" --timestamp "$TS" \
  --out "db.$2.auth"; }
path_payload() { cp initrd "initrd.$2"; "$F" sign --uefi-payload "initrd.$2" --signer "${3:-uefi-db1}" --keyset "$1" \
  --mode split; }
path_enroll() { "$F" enroll --keyset "$1" --ecid $E1 --csr dev.csr --out "dev.$2.pem" --reissue; }
path_checkpoint() { "$F" verify ledger --db "${CPDB:-$FUSELINE_DB}" --keyset "$1" --sign-with "${3:-station}"; }
PATHS="sign var payload enroll checkpoint"

for p in $PATHS; do
  run path_$p prod.json ok
  [ "$RC" -eq 0 ] || fail "production keyset, path $p: exit $RC"
  pass "production keyset signs: $p"
done
openssl dgst -sha256 -verify <(p11tool --export-pubkey "pkcs11:token=lab;object=pr-pkc0;type=public" 2>/dev/null) \
  -signature <(python3 -c 'import sys; from binascii import hexlify
raw = open("img.ok.sig","rb").read(); n = len(raw)//2
def i(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = i(raw[:n]) + i(raw[n:])
sys.stdout.buffer.write(b"\x30" + bytes([len(body)]) + body)') img.bin >/dev/null 2>&1 \
  || fail "the production signature does not verify with openssl"
openssl verify -CAfile <(openssl x509 -in "$(jget prod.json '[k["certificate"] for k in d["keys"] if k["role"]=="identity-ca"][0]')") \
  dev.ok.pem >/dev/null 2>&1 || fail "the enrolled certificate does not verify against the CA with openssl"
pass "baseline outputs verify with openssl"

# ---- the interlock: token serial ----------------------------------------------------------
role_set prod.json serial.json token serial=0000000000000000
for p in $PATHS; do
  run path_$p serial.json serial
  [ "$RC" -eq 6 ] || fail "token_serial differs, path $p: exit $RC, expected 6"
  expect_err "differs from the production keyset's token_serial"
  pass "token serial differs: $p refused (exit 6)"
done
[ ! -e img.serial.sig ] && [ ! -e db.serial.auth ] && [ ! -e initrd.serial.sig ] && [ ! -e dev.serial.pem ] \
  || fail "a refused path wrote its output"

# ---- the interlock: an extractable key ------------------------------------------------------
# One extractable RSA-2048 key pair, and a certificate for its public key (the
# certificate only has to carry the key; a throw-away CA signs it).
$P11 --keypairgen --key-type rsa:2048 --label pr-x --id 5a02 --extractable >/dev/null 2>&1 || fail "extractable keypairgen"
$P11 --list-objects --type privkey --label pr-x 2>/dev/null | grep -qi 'extractable' \
  || fail "pkcs11-tool does not show pr-x as extractable"
p11tool --export-pubkey "pkcs11:token=lab;object=pr-x;type=public" > x.pub 2>/dev/null || fail "export pr-x"
openssl req -new -x509 -newkey rsa:2048 -nodes -keyout xca.key -subj "/CN=xca/" -days 30 -out xca.crt 2>/dev/null
openssl x509 -new -subj "/CN=pr-x/" -key xca.key -force_pubkey x.pub -days 30 -out x.crt 2>/dev/null \
  || openssl x509 -in xca.crt -key xca.key -force_pubkey x.pub -out x.crt 2>/dev/null || fail "certificate for pr-x"
XSHA=$(spki_sha x.pub)
xrole() { # manifest out role [type]
  role_set "$1" "$2" "$3" "type=${4:-rsa2k}" label=pr-x "uri=pkcs11:token=lab;object=pr-x;type=private" \
    "public_key_sha256=$XSHA" certificate=x.crt "certificate_sha256=$(cert_sha x.crt)"
}
xrole prod.json x-sign.json img-x
xrole prod.json x-var.json uefi-kek
xrole prod.json x-payload.json uefi-db1
xrole prod.json x-enroll.json identity-ca
xrole prod.json x-checkpoint.json station
for p in $PATHS; do
  role=; [ $p = sign ] && role=img-x
  CPDB=x.db run path_$p x-$p.json x $role
  [ "$RC" -eq 6 ] || fail "extractable key, path $p: exit $RC, expected 6"
  expect_err "CKA_EXTRACTABLE is true"
  pass "extractable key: $p refused (exit 6)"
done
# The same manifests as lab keysets sign: it was the interlock that refused.
role_set x-sign.json x-sign-lab.json - profile=lab
run path_sign x-sign-lab.json xlab img-x
[ "$RC" -eq 0 ] || fail "the extractable key as a lab keyset: exit $RC"
pass "the extractable key signs in a lab keyset (the refusal above is the interlock)"

# ---- role policy ----------------------------------------------------------------------------
expect_rc 2 "sign --role identity-ca (a CA never signs raw bytes)" path_sign prod.json pol identity-ca
expect_err "cannot sign image signatures"
expect_rc 2 "sign --role uefi-pk" path_sign prod.json pol uefi-pk
expect_rc 2 "checkpoint by the identity CA" path_checkpoint prod.json pol identity-ca
expect_err "checkpoints need a separate asymmetric station key"
expect_rc 2 "checkpoint by the UEFI PK" path_checkpoint prod.json pol uefi-pk
expect_rc 2 "checkpoint by pkc0" path_checkpoint prod.json pol pkc0
expect_rc 2 "db update by a db key" path_var prod.json pol uefi-db1
expect_rc 2 "payload by the KEK" path_payload prod.json pol uefi-kek

# ---- $FUSELINE_TOKEN naming another token ----------------------------------------------------
LAB_LABEL=other "$SRCDIR/hsm/lab-token.sh" "$T/lab" >/dev/null || fail "second token 'other'"
SERIAL=$(jget prod.json 'd["token"]["serial"]')
other() { # what cmd...: refused, both tokens named
  local what=$1; shift
  FUSELINE_TOKEN='pkcs11:token=other' run "$@"
  [ "$RC" -eq 3 ] || fail "FUSELINE_TOKEN=other, $what: exit $RC, expected 3"
  expect_err "'other'"
  grep -qF "'lab' (serial $SERIAL)" "$T/err" || fail "$what: the manifest's token is not named"
  pass "FUSELINE_TOKEN names another token: $what refused, both named (exit 3)"
}
other "sign" path_sign prod.json o
other "sign --uefi-var" path_var prod.json o
other "sign --uefi-payload" path_payload prod.json o
other "enroll" path_enroll prod.json o
other "verify ledger --sign-with" path_checkpoint prod.json o
other "verify keyset" "$F" verify keyset prod.json
other "verify signature --keyset" "$F" verify signature --keyset prod.json --role pkc0 --in img.bin --sig img.ok.sig
other "fuse-xml --keyset" "$F" fuse-xml --keyset prod.json --out o.xml
other "keygen --export-pub" "$F" keygen --export-pub pkc0 --keyset prod.json --out o.pem
other "keygen --ftpm-ek-ca" "$F" keygen --ftpm-ek-ca --keyset prod.json --subject "/CN=x"
other "keygen --uefi" "$F" keygen --uefi --keyset prod.json --out-dir o-uefi --owner-guid $G
other "keygen (add a key)" "$F" keygen --keyset prod.json --sbk
run env FUSELINE_TOKEN='pkcs11:token=other' "$F" sign --key 'pkcs11:token=lab;object=pr-pkc0' --in img.bin --out k.sig
[ "$RC" -eq 3 ] && grep -qF "'other'" "$T/err" && grep -qF "'lab'" "$T/err" || fail "sign --key with another FUSELINE_TOKEN: exit $RC"
pass "sign --key: FUSELINE_TOKEN naming another token is refused, both named"
# --token is held to the same rule: another label, or the manifest's label
# with another serial, is refused naming both.
expect_rc 3 "--token naming another token" "$F" sign --keyset prod.json --role pkc0 --token pkcs11:token=other \
  --in img.bin --out t1.sig
grep -qF -- "--token (pkcs11:token=other) names token 'other'" "$T/err" && grep -qF "'lab' (serial $SERIAL)" "$T/err" \
  || fail "--token mismatch does not name both tokens"
expect_rc 3 "--token with the manifest's label and another serial" "$F" sign --keyset prod.json --role pkc0 \
  --token 'pkcs11:token=lab;serial=0000000000000001' --in img.bin --out t2.sig
grep -qF "serial 0000000000000001" "$T/err" || fail "--token serial mismatch not named"
[ ! -e t1.sig ] && [ ! -e t2.sig ] || fail "a refused --token wrote a signature"
# --token that only narrows (the manifest's own label) is fine.
expect_rc 0 "--token narrowing to the manifest's own token" "$F" sign --keyset prod.json --role pkc0 \
  --token pkcs11:token=lab --in img.bin --out narrow.sig

# ---- sign --key URI honoured whole -----------------------------------------------------------
# Its token (FUSELINE_TOKEN unset, the URI's token= is what finds it) and its
# pin-source= (FUSELINE_PIN_FILE unset; without it there is no PIN at all).
run env -u FUSELINE_TOKEN -u FUSELINE_PIN_FILE "$F" sign \
  --key "pkcs11:token=lab;object=pr-pkc0?pin-source=file:$FUSELINE_PIN_FILE" --in img.bin --out key.sig
[ "$RC" -eq 0 ] || fail "sign --key with token= and pin-source=: exit $RC: $(cat "$T/err")"
pass "sign --key: the URI's token and pin-source are used"
run env -u FUSELINE_PIN_FILE "$F" sign --key "pkcs11:token=other;object=pr-pkc0?pin-source=file:$FUSELINE_PIN_FILE" \
  --in img.bin --out key2.sig
[ "$RC" -eq 3 ] || fail "sign --key naming token other (where pr-pkc0 is not): exit $RC, expected 3"
[ ! -e key2.sig ] || fail "key2.sig written"
pass "sign --key: the URI's own token= is where the object is looked for (exit 3 on 'other')"

# ---- two tokens labelled "lab": the manifest's serial wins -----------------------------------
# A throw-away second token with the same label and PINs (softhsm2-util takes
# PINs only as arguments; this token holds nothing).
softhsm2-util --init-token --free --label lab --so-pin "$(cat "$T/lab/so.pin")" --pin "$(cat "$T/lab/user.pin")" \
  >/dev/null 2>&1 || fail "second token labelled lab"
run "$F" keygen --chip t234 --pkc p256 --lab --name amb --out amb.json
[ "$RC" -eq 3 ] && grep -q "2 tokens match" "$T/err" || fail "pkcs11:token=lab is not ambiguous now (exit $RC)"
pass "FUSELINE_TOKEN=pkcs11:token=lab alone matches two tokens"
for p in $PATHS; do
  run path_$p prod.json twin
  [ "$RC" -eq 0 ] || fail "two 'lab' tokens, path $p: exit $RC: $(cat "$T/err")"
  pass "two tokens labelled lab: $p uses the manifest's serial"
done
for c in "verify keyset prod.json" "keygen --export-pub pkc0 --keyset prod.json --out twin.pem"; do
  # shellcheck disable=SC2086
  expect_rc 0 "two tokens labelled lab: $c" "$F" $c
done
done_testing
