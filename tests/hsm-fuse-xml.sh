#!/usr/bin/env bash
# fuse-xml generation from keysets in a SoftHSM2 token, judged by tools
# that share no code with fuseline: Python's ElementTree reads the XML,
# xmllint checks it, pkcs11-tool reads the fuse-key values out of the token,
# p11tool exports the public keys and tests/tools/pkc-hash-ref.py hashes
# them. Covers every PKC type on both chips, NVIDIA's sample configurations
# reproduced from imported keys, --test, templates, and the refusals (token
# disagreeing with its manifest, wrong PIN, impossible options) that must
# leave no file behind. Key values never appear in any output.
. "$SRCDIR/tests/lib.sh"
lab_token
REF="$SRCDIR/tests/tools/pkc-hash-ref.py"
D=$SRCDIR/tests/data/fuse-xml
V=$VECTORS/pkc-hash

# "name size value" per fuse, in file order, by an independent parser.
xml_fuses() {
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "genericfuse", root.tag
for f in root.findall("fuse"):
    size = int(f.get("size"))
    print(f.get("name"), size, "%0*x" % (2 * size, int(f.get("value"), 16)))
PY
}
xml_value() { xml_fuses "$1" | awk -v n="$2" '$1 == n { print $3 }'; }
xml_magic() { python3 -c 'import sys, xml.etree.ElementTree as ET; print(ET.parse(sys.argv[1]).getroot().get("MagicId"))' "$1"; }
secret_hex() { # label -> hex value read with pkcs11-tool
  pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
    --label "$1" -o "$T/val.bin" >/dev/null 2>&1 || fail "pkcs11-tool cannot read $1"
  xxd -p -c 64 "$T/val.bin"
}

# gen NAME CHIP PKC "KEYGEN-OPTS" "FUSE-XML-OPTS" "EXPECTED NAMES" BSI
gen() {
  local name=$1 chip=$2 pkc=$3 kopts=$4 fopts=$5 names=$6 bsi=$7 label pub want got f role
  # shellcheck disable=SC2086
  expect_rc 0 "keygen $name" "$FUSELINE" keygen --chip "$chip" --pkc "$pkc" $kopts --lab --name "$name" --out "$name.json"
  # shellcheck disable=SC2086
  expect_rc 0 "fuse-xml $name" "$FUSELINE" fuse-xml --keyset "$name.json" --out "$name.xml" $fopts --json
  cp "$T/out" "$name.out.json"; cp "$T/err" "$name.err"
  [ "$(stat -c %a "$name.xml")" = 600 ] || fail "$name.xml mode $(stat -c %a "$name.xml")"
  xmllint --noout --nonet "$name.xml" || fail "xmllint rejects $name.xml"
  [ "$(xml_fuses "$name.xml" | awk '{print $1}' | xargs)" = "$names" ] || fail "$name: fuses $(xml_fuses "$name.xml" | awk '{print $1}' | xargs)"
  [ "$(xml_value "$name.xml" BootSecurityInfo)" = "$bsi" ] || fail "$name: BootSecurityInfo $(xml_value "$name.xml" BootSecurityInfo)"
  # PublicKeyHash = manifest = independent hash of the token's public key = --pkc-hash.
  label=$(jget "$name.json" '[k["label"] for k in d["keys"] if k["role"]=="pkc0"][0]')
  p11tool --export-pubkey "pkcs11:token=lab;object=$label;type=public" > "$name.pub.pem" 2>/dev/null || fail "export $label"
  want=$(python3 "$REF" "$name.pub.pem" "$chip")
  [ "0x$(xml_value "$name.xml" PublicKeyHash)" = "$want" ] || fail "$name: PublicKeyHash differs from the independent hash"
  [ "$(jget "$name.json" '[k["tegra_pkc_hash"] for k in d["keys"] if k["role"]=="pkc0"][0]')" = "$want" ] || fail "$name: manifest hash"
  expect_rc 0 "--pkc-hash $name pkc0" "$FUSELINE" fuse-xml --pkc-hash "$name.pub.pem" --chip "$chip"
  [ "$(cat "$T/out")" = "$want" ] || fail "$name: --pkc-hash $(cat "$T/out") != $want"
  # Fuse keys: the token's values, byte for byte, never printed.
  for f in SecureBootKey:sbk OemK1:oem-k1 OemK2:oem-k2 Kek0:kek0 Kek1:kek1 Kek2:kek2 Kek256:kek256; do
    role=${f#*:}; f=${f%%:*}
    got=$(xml_value "$name.xml" "$f")
    [ -n "$got" ] || continue
    want=$(secret_hex "$name-$role")
    [ "$got" = "$want" ] || fail "$name: $f differs from the token's $role"
    assert_absent "$want" "$name.out.json" "$name.err" "$name.json"
  done
  # The JSON result: plan hash over the canonical text, no value for keys.
  python3 - "$name.out.json" "$name.xml" "$chip" <<'PY' || fail "$name: JSON result"
import hashlib, json, sys, xml.etree.ElementTree as ET
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
root = ET.parse(sys.argv[2]).getroot()
text = "fuseline-fuse-plan/1\nchip %s\nmagic 0x%08x\n" % (sys.argv[3], int(root.get("MagicId"), 16))
for f in root.findall("fuse"):
    size = int(f.get("size"))
    text += "%s %d %0*x\n" % (f.get("name"), size, 2 * size, int(f.get("value"), 16))
assert o["ok"] is True and o["mode"] == "generate" and o["profile"] == "lab", o
assert o["plan_sha256"] == hashlib.sha256(text.encode()).hexdigest(), o
assert o["plan_sha256"] in open(sys.argv[2]).read()    # the XML comment names it
for f in o["fuses"]:
    if f["name"] in ("SecureBootKey", "OemK1", "OemK2", "Kek0", "Kek1", "Kek2", "Kek256"):
        assert "value" not in f and f["secret"] is True and len(f["kcv"]) == 6, f
    else:
        assert f["value"].startswith("0x"), f
PY
  grep -q 'LAB KEYSET: test keys only' "$name.xml" || fail "$name: lab marker missing"
  expect_rc 0 "--check $name with its keyset" "$FUSELINE" fuse-xml --check "$name.xml" --chip "$chip" --keyset "$name.json"
  pass "$name: $chip $pkc XML matches the token, the manifest and the independent hash"
}

gen o3k t234 rsa3k "--sbk" "" "SecureBootKey PublicKeyHash BootSecurityInfo" 00000009
gen o256 t234 p256 "" "--production-mode --jtag-disable --odm-id 0x0123456789abcdef --odm-reserved 3=0xcafe" \
  "OdmId ArmJtagDisable ReservedOdm3 PublicKeyHash BootSecurityInfo SecurityMode" 00000002
[ "$(xml_value o256.xml OdmId)" = 0123456789abcdef ] || fail "OdmId value"
[ "$(xml_value o256.xml ReservedOdm3)" = 0000cafe ] || fail "ReservedOdm3 value"
gen o521 t234 p521 "--sbk --oem-k1 --oem-k2" "--oem-keys --production-mode" \
  "SecureBootKey OemK1 OemK2 PublicKeyHash BootSecurityInfo SecurityMode" 0000020b
gen x2k t194 rsa2k "--sbk --kek0 --kek1 --kek2" "--production-mode" \
  "SecureBootKey Kek0 Kek1 Kek2 PublicKeyHash BootSecurityInfo SecurityMode" 00000005
gen x3k t194 rsa3k "--sbk" "--jtag-disable --odm-reserved 0=0x1 --odm-lock 0x1" \
  "JtagDisable ReservedOdm0 OdmLock SecureBootKey PublicKeyHash BootSecurityInfo" 00000006

# A keyset whose check value fails against a different keyset's XML.
expect_rc 5 "--check against another keyset" "$FUSELINE" fuse-xml --check o3k.xml --chip t234 --keyset o521.json
grep -qF "PublicKeyHash differs from the keyset's pkc0 tegra_pkc_hash" "$T/out" || fail "hash mismatch not named"
grep -qF "SecureBootKey: check value differs from the keyset's sbk kcv (a different key)" "$T/out" || fail "kcv mismatch not named"

# ---- --test ----
expect_rc 0 "t234 --test" "$FUSELINE" fuse-xml --keyset o3k.json --out test.xml --test --production-mode
[ "$(xml_magic test.xml)" = 0x54534554 ] || fail "TEST MagicId missing"
grep -q 'TEST MagicId: the device processes every fuse and burns nothing' test.xml || fail "TEST comment"
grep -q 'MagicId 0x54534554 (TEST)' "$T/out" || fail "TEST not said on stdout"
expect_rc 0 "--check a TEST file" "$FUSELINE" fuse-xml --check test.xml --chip t234 --json
[ "$(jget "$T/out" 'd["test"]')" = True ] || fail "check JSON test flag"
expect_rc 0 "t194 --test keeps the file" "$FUSELINE" fuse-xml --keyset x3k.json --out test194.xml --test
[ "$(xml_magic test194.xml)" = 0x45535546 ] || fail "t194 magic changed"
grep -q 't194 has no TEST MagicId' "$T/err" || fail "t194 --test note"

# ---- templates ----
export FUSELINE_TEMPLATES=$SRCDIR/templates
expect_rc 0 "template orin-nano-8gb" "$FUSELINE" fuse-xml --keyset o3k.json --template orin-nano-8gb --out tpl.xml --json
[ "$(xml_fuses tpl.xml | awk '{print $1}' | xargs)" = "ArmJtagDisable SecureBootKey PublicKeyHash BootSecurityInfo SecurityMode" ] \
  || fail "template fuses"
[ "$(jget "$T/out" 'd["recovery_pid"]')" = 0x7523 ] || fail "template recovery_pid"
[ "$(jget "$T/out" 'd["module"]')" = "Orin Nano 8GB (P3767-0003)" ] || fail "template module"
expect_rc 0 "template by path with --no-sbk" "$FUSELINE" fuse-xml --keyset o256.json --template "$SRCDIR/templates/agx-orin-64gb.conf" \
  --no-sbk --out tpl2.xml
[ "$(xml_value tpl2.xml BootSecurityInfo)" = 00000002 ] || fail "template --no-sbk BSI"
expect_rc 2 "template sbk=yes, keyset without sbk" "$FUSELINE" fuse-xml --keyset o256.json --template orin-nx-16gb --out t3.xml
expect_err "SecureBootKey was asked for but keyset o256.json has no sbk key (use --no-sbk)"
expect_rc 2 "t234 template, t194 keyset" "$FUSELINE" fuse-xml --keyset x3k.json --template orin-nx-16gb --out t3.xml
expect_err "is for t234, keyset x3k.json is for t194"
[ ! -e t3.xml ] || fail "a refused template left a file"

# ---- NVIDIA's sample configurations, reproduced from imported keys ----
printf '0x123456789abcdef0fedcba987654321000112233445566778899aabbccddeeff\n' > sbk234.txt
printf '0x0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0\n' > oemk1.txt
printf '0x0123456789abcdeffedcba9876543210\n' > sbk194.txt
printf '0x55aa55aa00ff00ff0123456789abcdef\n' > kek2.txt
printf '0x00112233445566778899aabbccddeeffffeeddccbbaa99887766554433221100\n' > kek256.txt
imp_pem() { # keyset pem role chip
  if [ -e "$1.json" ]; then
    expect_rc 0 "import $3 $(basename "$2")" "$FUSELINE" keygen --import-pem "$2" --role "$3" --keyset "$1.json"
  else
    expect_rc 0 "import $3 $(basename "$2")" "$FUSELINE" keygen --import-pem "$2" --role "$3" --chip "$4" --name "$1" \
      --lab --out "$1.json"
  fi
}
imp_hex() { expect_rc 0 "import $3" "$FUSELINE" keygen --import-hex "$2" --role "$3" --keyset "$1.json"; }
same_fuses() { # generated sample ordered|set
  local a b
  a=$(xml_fuses "$1"); b=$(xml_fuses "$D/$2")
  [ "$3" = set ] && { a=$(sort <<<"$a"); b=$(sort <<<"$b"); }
  [ "$a" = "$b" ] || { diff <(echo "$a") <(echo "$b") >&2; fail "$1 differs from $2"; }
  pass "$2 reproduced ($3)"
}
imp_pem s1 "$V/t234-rsa3k.pem" pkc0 t234
expect_rc 0 "sample rsa3k" "$FUSELINE" fuse-xml --keyset s1.json --out s1.xml --production-mode
same_fuses s1.xml sample-t234-rsa3k.xml ordered
imp_pem s2 "$V/t234-p256.pem" pkc0 t234
expect_rc 0 "sample p256" "$FUSELINE" fuse-xml --keyset s2.json --out s2.xml --production-mode
same_fuses s2.xml sample-t234-p256.xml ordered
imp_pem s3 "$V/t234-p521.pem" pkc0 t234
imp_hex s3 sbk234.txt sbk
imp_hex s3 oemk1.txt oem-k1
expect_rc 0 "sample p521+sbk+oemk1" "$FUSELINE" fuse-xml --keyset s3.json --out s3.xml --oem-keys --production-mode
# NVIDIA lists PublicKeyHash first; fuseline puts keys first. Same fuses,
# both orders pass the rules.
same_fuses s3.xml sample-t234-p521-sbk-oemk1.xml set
expect_rc 0 "NVIDIA's order checks against the keyset" "$FUSELINE" fuse-xml --check "$D/sample-t234-p521-sbk-oemk1.xml" \
  --chip t234 --keyset s3.json
imp_pem s4 "$V/t234-rsa3k.pem" pkc0 t234
imp_pem s4 "$V/t194-rsa3k.pem" pkc1 t234
imp_pem s4 "$D/keys/t234-rsa3k-pkc2.pem" pkc2 t234
imp_hex s4 sbk234.txt sbk
expect_rc 0 "sample revocation" "$FUSELINE" fuse-xml --keyset s4.json --out s4.xml --revocation --production-mode
same_fuses s4.xml sample-t234-revocation.xml ordered
imp_pem s5 "$V/t194-rsa3k.pem" pkc0 t194
imp_hex s5 sbk194.txt sbk
imp_hex s5 kek2.txt kek2
imp_hex s5 kek256.txt kek256
expect_rc 0 "sample t194 sbk+kek+pkc" "$FUSELINE" fuse-xml --keyset s5.json --out s5.xml --production-mode
same_fuses s5.xml sample-t194-sbk-kek-pkc.xml ordered
assert_absent 123456789abcdef0fedcba9876543210 "$T/out" "$T/err"

# ---- refusals: nothing written, nothing secret printed ----
echo OLD > keep.xml
# The overwrite rule: an existing --out is exit 7 before anything is done.
expect_rc 7 "fuse-xml --out onto an existing file" "$FUSELINE" fuse-xml --keyset o3k.json --out keep.xml
expect_err "keep.xml exists already; give --force to replace it"
[ "$(cat keep.xml)" = OLD ] || fail "a refused fuse-xml --out replaced the file"
python3 - o3k.json bad-hash.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in d["keys"]:
    if k["role"] == "pkc0":
        k["tegra_pkc_hash"] = "0x" + "ab" * 64
json.dump(d, open(sys.argv[2], "w"))
PY
expect_rc 5 "manifest hash differs from the token's key" "$FUSELINE" fuse-xml --keyset bad-hash.json --out keep.xml --force
expect_err "bad-hash.json: key 'pkc0': the token's public key hashes to"
[ "$(cat keep.xml)" = OLD ] || fail "a refused generation replaced the file"
python3 - o3k.json bad-kcv.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in d["keys"]:
    if k["role"] == "sbk":
        k["kcv"] = "000000"
json.dump(d, open(sys.argv[2], "w"))
PY
expect_rc 5 "manifest kcv differs from the token's key" "$FUSELINE" fuse-xml --keyset bad-kcv.json --out keep.xml --force
expect_err "bad-kcv.json: key 'sbk': the token's value has check value"
assert_absent "$(secret_hex o3k-sbk)" "$T/out" "$T/err"
[ "$(cat keep.xml)" = OLD ] || fail "a refused generation replaced the file"
printf 'wrong-pin-0000\n' > wrong.pin
FUSELINE_PIN_FILE=$T/wrong.pin expect_rc 3 "wrong PIN" "$FUSELINE" fuse-xml --keyset o3k.json --out keep.xml --force
[ "$(cat keep.xml)" = OLD ] || fail "wrong PIN replaced the file"
assert_absent "wrong-pin-0000" "$T/out" "$T/err"
expect_rc 2 "--oem-keys without OEM keys" "$FUSELINE" fuse-xml --keyset o3k.json --out keep.xml --force --oem-keys
expect_err "the OEM keys need key 'oem-k1' or 'oem-k2', which keyset o3k.json does not have (asked for with --oem-keys)"
expect_rc 2 "--revocation with one PKC key" "$FUSELINE" fuse-xml --keyset o3k.json --out keep.xml --force --revocation
expect_err "PKC revocation needs key 'pkc1', which keyset o3k.json does not have (asked for with --revocation)"
expect_rc 2 "--odm-lock on t234" "$FUSELINE" fuse-xml --keyset o3k.json --out keep.xml --force --odm-lock 0x1
expect_err "OdmLock is not burnable on t234 (not in NVIDIA's fuse configuration) (given with --odm-reserved/--odm-id/--odm-lock)"
# NVIDIA's README says Kek256 is Kek0 then Kek1 [U]: burning disagreeing
# values would set the union of their bits. keygen makes Kek256 from the
# other two when all three are asked for (8ffabc9), so that plan passes...
expect_rc 0 "keygen t194 with kek0/kek1/kek256" "$FUSELINE" keygen --chip t194 --pkc rsa3k --kek0 --kek1 --kek256 --lab \
  --name k256 --out k256.json
expect_rc 0 "Kek256 made from Kek0 || Kek1 is accepted" "$FUSELINE" fuse-xml --keyset k256.json --out k256.xml
[ "$(xml_value k256.xml Kek256)" = "$(xml_value k256.xml Kek0)$(xml_value k256.xml Kek1)" ] || fail "Kek256 != Kek0 || Kek1"
[ "$(xml_value k256.xml Kek256)" = "$(secret_hex k256-kek0)$(secret_hex k256-kek1)" ] || fail "Kek256 is not the token's Kek0 || Kek1"
assert_absent "$(secret_hex k256-kek256)" "$T/out" "$T/err"
# ... and a Kek256 imported on its own beside Kek0/Kek1 is refused.
expect_rc 0 "keygen t194 with kek0/kek1" "$FUSELINE" keygen --chip t194 --pkc rsa3k --kek0 --kek1 --lab --name k01 --out k01.json
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > k256.hex
expect_rc 0 "import a separate kek256" "$FUSELINE" keygen --import-hex k256.hex --role kek256 --keyset k01.json
expect_rc 2 "Kek256 disagreeing with Kek0/Kek1 refused" "$FUSELINE" fuse-xml --keyset k01.json --out keep.xml --force
expect_err "k01.json: plan breaks a rule: Kek256 does not begin with Kek0 (Kek256 is Kek0 then Kek1 [U])"
assert_absent "$(cat k256.hex)" "$T/out" "$T/err"
[ "$(cat keep.xml)" = OLD ] || fail "a refused generation replaced the file"
[ "$(ls -a | grep -c 'keep')" -eq 1 ] || fail "a temporary file was left behind: $(ls -a | grep keep | xargs)"
done_testing
