#!/usr/bin/env bash
# fuse-xml --check and --diff without a token: NVIDIA's sample
# configurations accepted (and well-formed per xmllint), rule-breaking and
# hostile files refused with every problem listed (exit 5), readback diffs
# for a blank, provisioned, partially provisioned and conflicting device,
# the 0x1e0 BootSecurityInfo case, malformed readbacks (exit 2), and no key
# value ever printed. Expected values are written here from the reference,
# not produced by fuseline.
. "$SRCDIR/tests/lib.sh"
D=$SRCDIR/tests/data/fuse-xml

for f in "$D"/sample-*.xml; do
  b=$(basename "$f"); chip=${b#sample-}; chip=${chip%%-*}
  xmllint --noout --nonet "$f" || fail "xmllint rejects $b"
  expect_rc 0 "--check $b" "$FUSELINE" fuse-xml --check "$f" --chip "$chip"
  grep -q "^$f: OK for $chip: " "$T/out" || fail "$b: no OK line"
  other=t194; [ "$chip" = t194 ] && other=t234
  expect_rc 5 "--check $b as $other" "$FUSELINE" fuse-xml --check "$f" --chip "$other"
done

# --json: one object with the plan hash; hashlib over the canonical text.
expect_rc 0 "--check --json" "$FUSELINE" fuse-xml --check "$D/sample-t234-rsa3k.xml" --chip t234 --json
python3 - "$T/out" "$D/sample-t234-rsa3k.xml" <<'PY' || fail "check JSON / plan hash"
import hashlib, json, sys, xml.etree.ElementTree as ET
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
root = ET.parse(sys.argv[2]).getroot()
text = "fuseline-fuse-plan/1\nchip t234\nmagic 0x45535546\n"
for f in root.findall("fuse"):
    size = int(f.get("size")); v = f.get("value")[2:]
    text += "%s %d %s\n" % (f.get("name"), size, v.rjust(2 * size, "0").lower())
assert o["ok"] is True and o["problems"] == [] and o["fuses"] == 3 and o["test"] is False, o
assert o["plan_sha256"] == hashlib.sha256(text.encode()).hexdigest(), o
PY
pass "--check --json plan_sha256 equals hashlib over the canonical text"

# ---- rule-breaking files: each problem listed with file:line and rule ----
H=$(printf '11%.0s' $(seq 64)); K=$(printf '22%.0s' $(seq 32))
cat > many.xml <<XML
<genericfuse MagicId="0x45535546" version="1.0.0">
  <fuse name="BootSecurityInfo" size="4" value="0x209"/>
  <fuse name="PublicKeyHash" size="64" value="0x$H"/>
  <fuse name="SecurityMode" size="4" value="0x1"/>
  <fuse name="secureBootKey" size="32" value="0x$K"/>
  <fuse name="OdmId" size="4" value="0x1"/>
  <fuse name="ArmJtagDisable" size="4" value="0x3"/>
</genericfuse>
XML
expect_rc 5 "--check lists every problem" "$FUSELINE" fuse-xml --check many.xml --chip t234
cat > want.txt <<'TXT'
many.xml:2: [order] BootSecurityInfo is listed before PublicKeyHash: FSKP burns in XML order, and BootSecurityInfo switches enforcement on, so it must follow every fuse except SecurityMode
many.xml:2: [order] BootSecurityInfo is listed before ArmJtagDisable: FSKP burns in XML order, and BootSecurityInfo switches enforcement on, so it must follow every fuse except SecurityMode
many.xml:2: [bsi] BootSecurityInfo: SBK enable (0x8) is set but the file has no SecureBootKey
many.xml:2: [bsi] BootSecurityInfo: ODM key valid (0x200) is set but the file has neither OemK1 nor OemK2
many.xml:4: [order] SecurityMode is listed before ArmJtagDisable: production mode must be the last fuse (once set, no other fuse can be burned)
many.xml:5: [name] secureBootKey: unknown fuse name on t234; names are case-exact: SecureBootKey
many.xml:6: [size] OdmId: size '4' is wrong: OdmId takes exactly 8 bytes on t234
many.xml:7: [value] ArmJtagDisable: value 0x3 sets bits outside the fuse's field (mask 0x1)
TXT
diff -u want.txt "$T/out" || fail "problem list differs"
expect_err "many.xml: 8 problems; first: BootSecurityInfo is listed before PublicKeyHash"
assert_absent "$K" "$T/out" "$T/err"
expect_rc 5 "--check --json lists problems" "$FUSELINE" fuse-xml --check many.xml --chip t234 --json
python3 - "$T/out" <<'PY' || fail "problems JSON"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines            # one result object, carrying the exit code and the error
o = e = json.loads(lines[0])
assert o["ok"] is False and len(o["problems"]) == 8, o
p = o["problems"][5]
assert p == {"line": 5, "fuse": "secureBootKey", "rule": "name",
             "message": "secureBootKey: unknown fuse name on t234; names are case-exact: SecureBootKey"}, p
assert e["ok"] is False and e["exit_code"] == 5 and "8 problems" in e["error"], e
PY
pass "--check --json: problems array and exit_code 5"

# --json reports the file that was read, even when it breaks rules: a TEST
# MagicId with 5 fuses is "0x54534554", test, 5 fuses — on t194 too, where
# TEST is refused, and with fuses the chip does not have.
cat > test5.xml <<'XML'
<genericfuse MagicId="0x54534554" version="1.0.0">
<fuse name="OdmId" size="8" value="0x1"/>
<fuse name="OdmInfo" size="4" value="0x1"/>
<fuse name="Bogus" size="4" value="0x1"/>
<fuse name="OdmLock" size="4" value="0x1ff"/>
<fuse name="PublicKeyHash" size="64" value="0x12"/>
</genericfuse>
XML
for chip in t194 t234; do
  expect_rc 5 "--check --json of a TEST file with 5 fuses ($chip)" "$FUSELINE" fuse-xml --check test5.xml --chip $chip --json
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["magic"]=="0x54534554" and o["test"] is True and o["fuses"]==5, o' \
    "$T/out" || fail "--check --json does not describe the file read ($chip): $(cat "$T/out")"
done
printf '<genericfuse version="1.0.0"><fuse name="OdmId" size="8" value="0x1"/></genericfuse>\n' > nomagic1.xml
expect_rc 5 "--check --json without a MagicId" "$FUSELINE" fuse-xml --check nomagic1.xml --chip t234 --json
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["magic"] is None and o["test"] is False and o["fuses"]==1, o' \
  "$T/out" || fail "--check --json without a MagicId: $(cat "$T/out")"
pass "--check --json: magic, test and fuses are the file's"

# One file per rule family, each with its exact message.
check_one() { # name chip expected-message xml
  printf '%s\n' "$4" > "$1.xml"
  expect_rc 5 "rule: $1" "$FUSELINE" fuse-xml --check "$1.xml" --chip "$2"
  grep -qF -- "$3" "$T/out" || { cat "$T/out" >&2; fail "$1: missing '$3'"; }
}
R='<genericfuse MagicId="0x45535546" version="1.0.0">'
check_one auth-no-hash t234 "BootSecurityInfo: enables auth scheme 2 but the file has no PublicKeyHash" \
  "$R<fuse name=\"BootSecurityInfo\" size=\"4\" value=\"0x2\"/></genericfuse>"
check_one sbk-no-pkc t234 "BootSecurityInfo: SBK enable (0x8) without a PKC auth scheme: SBK only with PKC" \
  "$R<fuse name=\"SecureBootKey\" size=\"32\" value=\"0x$K\"/><fuse name=\"BootSecurityInfo\" size=\"4\" value=\"0x8\"/></genericfuse>"
check_one optin-alone t234 "OptInEnable without PkcPubkeyHash1 and PkcPubkeyHash2: revocation needs all three key hashes" \
  "$R<fuse name=\"PublicKeyHash\" size=\"64\" value=\"0x$H\"/><fuse name=\"OptInEnable\" size=\"4\" value=\"0x1\"/></genericfuse>"
check_one lock-first t194 "OdmLock is listed before ReservedOdm2: a lock must follow the words it locks" \
  "$R<fuse name=\"OdmLock\" size=\"4\" value=\"0x4\"/><fuse name=\"ReservedOdm2\" size=\"4\" value=\"0x1\"/></genericfuse>"
check_one kek-on-orin t234 "Kek2: not a burnable fuse on t234" \
  "$R<fuse name=\"Kek2\" size=\"16\" value=\"0x$K\"/></genericfuse>"
check_one test-on-xavier t194 "MagicId 0x54534554 (TEST) is the t234 FSKP dry run" \
  '<genericfuse MagicId="0x54534554" version="1.0.0"/>'
check_one short-key t234 "SecureBootKey: value has 16 hex digits; a 32-byte fuse takes exactly 64 (write every byte)" \
  "$R<fuse name=\"SecureBootKey\" size=\"32\" value=\"0x0011223344556677\"/></genericfuse>"
assert_absent "0011223344556677" "$T/out" "$T/err"
check_one signed-value t234 "OdmId: value is not hex (an optional 0x, then hex digits only: no sign, no spaces)" \
  "$R<fuse name=\"OdmId\" size=\"8\" value=\"+0x1\"/></genericfuse>"
check_one dup t234 "OdmId: appears more than once" \
  "$R<fuse name=\"OdmId\" size=\"8\" value=\"0x1\"/><fuse name=\"OdmId\" size=\"8\" value=\"0x1\"/></genericfuse>"
check_one v2-no-rpmb t234 "version 2.0.0 is for files with <rpmb>; use 1.0.0" \
  '<genericfuse MagicId="0x45535546" version="2.0.0"/>'
check_one read-list t234 "OdmId: no size attribute (a read list is not a burn file)" \
  "$R<fuse name=\"OdmId\"/></genericfuse>"

# ---- not a fuse XML at all: bad input (exit 2), not a rule failure (5) ----
: > empty.xml
head -c 300 /dev/urandom | tr -d '<' > garbage.xml
printf '<foo/>\n' > foo.xml
for f in empty garbage foo; do
  expect_rc 2 "$f.xml is not a fuse XML" "$FUSELINE" fuse-xml --check $f.xml --chip t234
  expect_err "$f.xml"
  expect_rc 2 "$f.xml is not a fuse XML (--json)" "$FUSELINE" fuse-xml --check $f.xml --chip t234 --json
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ok"] is False and o["exit_code"]==2 and o["problems"][0]["rule"] in ("xml","root"), o' \
    "$T/out" || fail "$f.xml --json"
done
# A genericfuse file that breaks a rule is still 5.
printf '<genericfuse version="1.0.0"/>\n' > nomagic.xml
expect_rc 5 "genericfuse without MagicId breaks a rule" "$FUSELINE" fuse-xml --check nomagic.xml --chip t234
pass "empty, garbage, another root: exit 2; a genericfuse breaking a rule: exit 5"

# ---- hostile files: refused without expanding or fetching anything ----
# (not well-formed or refused as XML: not a fuse XML, exit 2)
echo "SECRET-MARKER-$$" > secret.txt
cat > laughs.xml <<'XML'
<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY l1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY l2 "&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;"><!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">]>
<genericfuse MagicId="0x45535546" version="1.0.0"><fuse name="OdmId" size="8" value="&l3;"/></genericfuse>
XML
cat > xxe.xml <<XML
<!DOCTYPE genericfuse [<!ENTITY x SYSTEM "file://$T/secret.txt">]>
<genericfuse MagicId="0x45535546" version="1.0.0"><fuse name="OdmId" size="8" value="&x;"/></genericfuse>
XML
printf '<!DOCTYPE genericfuse SYSTEM "http://127.0.0.1:9/evil.dtd">\n<genericfuse/>\n' > extdtd.xml
for f in laughs xxe extdtd; do
  expect_rc 2 "hostile $f.xml refused" "$FUSELINE" fuse-xml --check $f.xml --chip t234
  grep -qF "$f.xml: [xml] DOCTYPE, ENTITY or CDATA declarations are refused in fuse XML" "$T/out" || fail "$f: message"
  assert_absent "SECRET-MARKER" "$T/out" "$T/err"
  [ "$(wc -l < "$T/err")" -eq 1 ] || fail "$f: more than one stderr line (libxml2 noise?)"
done
python3 -c 'import sys; sys.stdout.write("<genericfuse>" + "<a>" * 20000)' > deep.xml
expect_rc 2 "deep nesting refused" "$FUSELINE" fuse-xml --check deep.xml --chip t234
grep -q '\[xml\] not well-formed XML' "$T/out" || fail "deep: message"
[ "$(wc -l < "$T/err")" -eq 1 ] || fail "deep: libxml2 printed to stderr"
head -c 70000 /dev/zero | tr '\0' ' ' > huge.xml
expect_rc 2 "oversized file refused by size" "$FUSELINE" fuse-xml --check huge.xml --chip t234
expect_err "huge.xml"
printf '<genericfuse MagicId="0x45535546" version="1.0.0"><fuse name="OdmId" size="8" value="&zz;"/></genericfuse>' > undef.xml
expect_rc 2 "undefined entity" "$FUSELINE" fuse-xml --check undef.xml --chip t234
grep -qF "undef.xml:1: [xml] not well-formed XML: Entity 'zz' not defined" "$T/out" || fail "undef: message"
printf '\xff\xfe<\0g\0/\0>\0' > utf16.xml
expect_rc 2 "UTF-16 refused" "$FUSELINE" fuse-xml --check utf16.xml --chip t234
grep -qF "binary data (NUL byte): a fuse XML is UTF-8 text" "$T/out" || fail "utf16: message"

# ---- --diff against readfuses output ----
SBK=0123456789abcdeffedcba98765432100123456789abcdeffedcba9876543210
OEM=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
cat > plan.xml <<XML
<genericfuse MagicId="0x45535546" version="1.0.0">
    <fuse name="SecureBootKey" size="32" value="0x$SBK"/>
    <fuse name="OemK1" size="32" value="0x$OEM"/>
    <fuse name="PublicKeyHash" size="64" value="0x$H"/>
    <fuse name="BootSecurityInfo" size="4" value="0x209"/>
    <fuse name="SecurityMode" size="4" value="0x1"/>
</genericfuse>
XML
Z64=$(printf '0%.0s' $(seq 64)); Z128=$(printf '0%.0s' $(seq 128))
rb() { # file SBK OEM PKH BSI SM
  printf 'SecureBootKey: %s\nOemK1: %s\nPublicKeyHash: %s\nBootSecurityInfo: %s\nSecurityMode: %s\nSku: 000000d3\n' \
    "$2" "$3" "$4" "$5" "$6" > "$1"
}
no_secrets() { assert_absent "$SBK" "$T/out" "$T/err"; assert_absent "$OEM" "$T/out" "$T/err"; }

rb blank.txt "$Z64" "$Z64" "$Z128" 00000000 00000000
expect_rc 0 "diff: blank device" "$FUSELINE" fuse-xml --diff plan.xml --readback blank.txt --chip t234
grep -q '^blank.txt: 5 fuses to burn, 0 already equal$' "$T/out" || fail "blank: summary"
grep -Eq '^BootSecurityInfo +0x00000000 +0x00000209 +0x00000209 +burn: set bits 0x209$' "$T/out" || fail "blank: BSI row"
grep -Eq '^SecureBootKey +\(blank\) +\(key\) +\(key\) +burn: key value$' "$T/out" || fail "blank: key row (no bit count: it is the key's Hamming weight)"
no_secrets

# The 0x1e0 case: 0x209 planned, factory bits 0x1e0 set -> burn 0x3e9.
rb factory.txt "$Z64" "$Z64" "$Z128" 000001e0 00000000
expect_rc 0 "diff: factory reserved bits 0x1e0" "$FUSELINE" fuse-xml --diff plan.xml --readback factory.txt --chip t234
grep -Eq '^BootSecurityInfo +0x000001e0 +0x00000209 +0x000003e9 +burn: set bits 0x209: factory reserved bits 0x1e0 already set: burn 0x209 \| 0x1e0 = 0x3e9$' "$T/out" \
  || { cat "$T/out" >&2; fail "0x1e0 row"; }
expect_rc 0 "diff: 0x1e0 --json" "$FUSELINE" fuse-xml --diff plan.xml --readback factory.txt --chip t234 --json
python3 - "$T/out" <<'PY' || fail "0x1e0 JSON"
import json, sys
o = json.loads(open(sys.argv[1]).read())
b = [f for f in o["fuses"] if f["name"] == "BootSecurityInfo"][0]
assert b["current"] == "0x000001e0" and b["planned"] == "0x00000209" and b["burn"] == "0x000003e9", b
assert b["reserved_kept"] == "0x1e0" and b["status"] == "burn" and b["bits_to_set"] == 3, b
assert o["ok"] is True and o["to_burn"] == 5 and o["conflicts"] == 0 and o["already_provisioned"] is False, o
k = [f for f in o["fuses"] if f["name"] == "SecureBootKey"][0]
assert k["secret"] is True and k["current"] == "blank" and "planned" not in k and "burn" not in k, k
assert "bits_to_set" not in k and "bits_to_clear" not in k, k  # a key's popcount says something about it
PY
no_secrets
pass "0x1e0: burn value 0x3e9 with the reason, in text and JSON"

rb done.txt "$SBK" "$OEM" "$H" 000003e9 00000001
expect_rc 0 "diff: already provisioned" "$FUSELINE" fuse-xml --diff plan.xml --readback done.txt --chip t234
grep -q '^done.txt: already provisioned: every planned fuse is burned, nothing to burn$' "$T/out" || fail "done: summary"
[ "$(grep -c 'equal (nothing to burn)' "$T/out")" -eq 5 ] || fail "done: 5 equal rows"
no_secrets

rb partial.txt "$SBK" "$Z64" "$H" 00000000 00000000
expect_rc 0 "diff: partially provisioned" "$FUSELINE" fuse-xml --diff plan.xml --readback partial.txt --chip t234 --json
python3 - "$T/out" <<'PY' || fail "partial JSON"
import json, sys
o = json.loads(open(sys.argv[1]).read())
st = {f["name"]: f["status"] for f in o["fuses"]}
assert st == {"SecureBootKey": "equal", "OemK1": "burn", "PublicKeyHash": "equal",
              "BootSecurityInfo": "burn", "SecurityMode": "burn"}, st
assert o["to_burn"] == 3 and o["equal"] == 2, o
PY
no_secrets

# A different hash already burned: bits would go 1 -> 0 (exit 7).
rb other.txt "$Z64" "$Z64" "$(printf '88%.0s' $(seq 64))" 00000000 00000000
expect_rc 7 "diff: conflicting PublicKeyHash" "$FUSELINE" fuse-xml --diff plan.xml --readback other.txt --chip t234
grep -q '^other.txt: 1 conflict: this device cannot take this plan$' "$T/out" || fail "conflict summary"
expect_err "other.txt: 1 conflict; first: PublicKeyHash: 128 bits are already set that the plan does not have: fuse bits cannot go 1 to 0"
rb otherkey.txt "$OEM" "$Z64" "$Z128" 00000000 00000000
expect_rc 7 "diff: a different SBK burned" "$FUSELINE" fuse-xml --diff plan.xml --readback otherkey.txt --chip t234
grep -q 'SecureBootKey .*CONFLICT: .* (a different key is burned)' "$T/out" || fail "key conflict row"
no_secrets
rb locked.txt "$Z64" "$Z64" "$Z128" 00000000 00000001
expect_rc 7 "diff: production mode already burned" "$FUSELINE" fuse-xml --diff plan.xml --readback locked.txt --chip t234
grep -q 'SecurityMode is burned: the device refuses further fuse burns' "$T/out" || fail "locked note"

# Malformed read-backs: exit 2 naming file and line; missing fuse: exit 5.
printf 'BootSecurityInfo: 000001e0\nSecurityMode = 0\n' > bad1.txt
expect_rc 2 "diff: malformed line" "$FUSELINE" fuse-xml --diff plan.xml --readback bad1.txt --chip t234
expect_err "bad1.txt:2: not a 'Name: hex' read-back line"
printf 'SecureBootKey: %sxx\n' "$SBK" > bad2.txt
expect_rc 2 "diff: non-hex key line" "$FUSELINE" fuse-xml --diff plan.xml --readback bad2.txt --chip t234
expect_err "bad2.txt:1: fuse SecureBootKey: value is not hex"
assert_absent "$SBK" "$T/out" "$T/err"
printf 'BootSecurityInfo: 1000001e0\n' > bad3.txt
expect_rc 2 "diff: overlong word" "$FUSELINE" fuse-xml --diff plan.xml --readback bad3.txt --chip t234
expect_err "bad3.txt:1: fuse BootSecurityInfo: 9 hex digits, a 4-byte fuse has at most 8"
head -c 3000 /dev/urandom > bad4.txt
expect_rc 2 "diff: binary read-back" "$FUSELINE" fuse-xml --diff plan.xml --readback bad4.txt --chip t234
expect_err "bad4.txt"
printf 'BootSecurityInfo: 000001e0\nSecurityMode: 00000000\n' > short.txt
expect_rc 5 "diff: read-back lacks planned fuses" "$FUSELINE" fuse-xml --diff plan.xml --readback short.txt --chip t234
expect_err "the read-back has no line for planned fuses SecureBootKey, OemK1, PublicKeyHash: cannot prove the burn is safe"
expect_rc 5 "diff: plan that breaks a rule" "$FUSELINE" fuse-xml --diff many.xml --readback blank.txt --chip t234
expect_err "many.xml: 8 problems"

# ---- usage ----
expect_rc 2 "no mode" "$FUSELINE" fuse-xml --chip t234
expect_err "choose one of --out (generate), --check, --pkc-hash, --diff"
expect_rc 2 "two modes" "$FUSELINE" fuse-xml --check plan.xml --pkc-hash x.pem --chip t234
expect_rc 2 "--check without --chip" "$FUSELINE" fuse-xml --check plan.xml
expect_err "--check needs --chip t234|t194"
expect_rc 2 "--diff without --readback" "$FUSELINE" fuse-xml --diff plan.xml --chip t234
expect_err "--diff needs --readback FILE"
expect_rc 2 "plan options without --out" "$FUSELINE" fuse-xml --check plan.xml --chip t234 --production-mode
expect_err "plan options (--template, --oem-keys, …) go with --out"
expect_rc 2 "--odm-reserved malformed" "$FUSELINE" fuse-xml --keyset none.json --out x.xml --odm-reserved 12=0x1
expect_err "--odm-reserved '12=0x1' is not N=0xHEX (N 0..11, 32-bit value)"
expect_rc 2 "--odm-id malformed" "$FUSELINE" fuse-xml --keyset none.json --out x.xml --odm-id 0x12345678901234567
expect_err "--odm-id '0x12345678901234567' is not a 64-bit hex value"
expect_rc 2 "template not found" "$FUSELINE" fuse-xml --keyset none.json --out x.xml --template nosuch
expect_err "template 'nosuch' not found"
expect_rc 2 "missing keyset" "$FUSELINE" fuse-xml --keyset none.json --out x.xml
expect_err "none.json"
[ ! -e x.xml ] || fail "an output file was left behind"
expect_rc 2 "missing check file" "$FUSELINE" fuse-xml --check nosuch.xml --chip t234
expect_err "nosuch.xml"
done_testing
