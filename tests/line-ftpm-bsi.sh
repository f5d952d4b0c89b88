#!/usr/bin/env bash
# BootSecurityInfo bits 11 (OEM DICE1) and 13 (FMC DICE) for the fTPM: [U]
# unverified, so refused unless acknowledged by name
# (--accept-unverified=t234-bsi-11-13) in fuse-xml generation, --check,
# --package and burn; with it, only on T234, both bits, with a PKC scheme and
# bit 9. burn refuses an unacknowledged plan before any device is touched
# (checked against the virtual devices' own state).
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
line_setup
ACK=--accept-unverified=t234-bsi-11-13
bsi() { sed -n 's/.*name="BootSecurityInfo" size="4" value="0x\([0-9a-f]*\)".*/\1/p' "$1"; }

"$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --oem-k1 --name f --lab --out f.json -q >/dev/null 2>&1 || fail keygen
expect_rc 6 "--ftpm without the acknowledgement" "$FUSELINE" fuse-xml --keyset f.json --out f.xml --oem-keys --ftpm
expect_err "bits 11 (OEM DICE1) and 13 (FMC DICE), which are unverified [U]"
expect_err "--accept-unverified=t234-bsi-11-13"
[ ! -e f.xml ] || fail "f.xml written by a refused run"
expect_rc 2 "--ftpm without --oem-keys" "$FUSELINE" fuse-xml --keyset f.json --out f.xml --ftpm $ACK
expect_err "the fTPM needs the OEM keys"; expect_err "(use --oem-keys)"
expect_rc 2 "an unknown acknowledgement" "$FUSELINE" fuse-xml --keyset f.json --out f.xml --oem-keys --ftpm \
  --accept-unverified=t234-bsi-all
grep -q "accept-unverified 't234-bsi-all': the only acknowledgement is t234-bsi-11-13" "$T/err" || fail "unknown name not named"
[ ! -e f.xml ] || fail "f.xml written by a refused run"
pass "--ftpm is refused without the named acknowledgement, without --oem-keys, with an unknown name"

expect_rc 0 "--ftpm --oem-keys with the acknowledgement" "$FUSELINE" fuse-xml --keyset f.json --out f.xml --oem-keys \
  --ftpm $ACK --json
# rsa3k = scheme 1, SBK 0x8, ODM key valid 0x200, 11|13 = 0x2800.
[ "$(bsi f.xml)" = 00002a09 ] || fail "BootSecurityInfo $(bsi f.xml), expected 0x00002a09"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["accepted_unverified"]==["t234-bsi-11-13"], d' "$T/out" \
  || fail "JSON lacks accepted_unverified"
expect_rc 0 "the same without --ftpm" "$FUSELINE" fuse-xml --keyset f.json --out plain.xml --oem-keys --json
[ "$(bsi plain.xml)" = 00000209 ] || fail "plain BootSecurityInfo $(bsi plain.xml)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["accepted_unverified"]==[], d' "$T/out" \
  || fail "JSON accepted_unverified not empty without the flag"
pass "BootSecurityInfo 0x2a09 = rsa3k | SBK | bit 9 | bits 11 and 13; the JSON records the acknowledgement"

expect_rc 5 "--check without the acknowledgement" "$FUSELINE" fuse-xml --check f.xml --chip t234
expect_err "BootSecurityInfo: bits 11 (OEM DICE1) and 13 (FMC DICE) (0x2800 set) are unverified [U]"
expect_err "--accept-unverified=t234-bsi-11-13"
expect_rc 0 "--check with it" "$FUSELINE" fuse-xml --check f.xml --chip t234 --keyset f.json $ACK
sed 's/value="0x00002a09"/value="0x00000a09"/' f.xml > only11.xml
expect_rc 5 "bit 11 alone" "$FUSELINE" fuse-xml --check only11.xml --chip t234 $ACK
expect_err "bit 11 is set without bit 13: the fTPM needs both"
grep -v 'name="OemK1"' f.xml | sed 's/value="0x00002a09"/value="0x00002809"/' > nobit9.xml
expect_rc 5 "bits 11/13 without bit 9" "$FUSELINE" fuse-xml --check nobit9.xml --chip t234 $ACK
expect_err "need a PKC auth scheme and ODM key valid (bit 9"
pass "--check: refused without the acknowledgement, accepted with it; one bit alone or without bit 9 refused"

# T194: no fTPM.
"$FUSELINE" keygen --chip t194 --pkc rsa3k --name x --lab --out x.json -q >/dev/null 2>&1 || fail "keygen t194"
expect_rc 2 "--ftpm on t194" "$FUSELINE" fuse-xml --keyset x.json --out x.xml --ftpm $ACK
expect_err "t234 fTPM setting"
expect_rc 0 "a t194 plan" "$FUSELINE" fuse-xml --keyset x.json --out x.xml
V=$(bsi x.xml); V=$(printf '%08x' $((0x$V | 0x2800)))
sed "s/name=\"BootSecurityInfo\" size=\"4\" value=\"0x[0-9a-f]*\"/name=\"BootSecurityInfo\" size=\"4\" value=\"0x$V\"/" x.xml > x2.xml
[ "$(bsi x2.xml)" = "$V" ] || fail "t194 edit"
expect_rc 5 "bits 11/13 on t194, even acknowledged" "$FUSELINE" fuse-xml --check x2.xml --chip t194 $ACK
grep -q "BootSecurityInfo" "$T/err" || fail "t194 refusal does not name BootSecurityInfo"
pass "t194: --ftpm refused, bits 11/13 refused by --check even with the acknowledgement"

# Template: ftpm = yes still needs the flag.
sed 's/^ftpm = no/ftpm = yes/; s/^oem_keys = no/oem_keys = yes/' "$SRCDIR/templates/orin-nano-8gb.conf" > ftpm.conf
grep -q '^ftpm = yes' ftpm.conf || fail "template has no ftpm key"
expect_rc 6 "template ftpm = yes without the flag" "$FUSELINE" fuse-xml --keyset f.json --template ./ftpm.conf --out t.xml
expect_err "--accept-unverified=t234-bsi-11-13"
expect_rc 0 "template ftpm = yes with the flag" "$FUSELINE" fuse-xml --keyset f.json --template ./ftpm.conf --out t.xml $ACK
[ $(( 0x$(bsi t.xml) & 0x2a00 )) = $((0x2a00)) ] || fail "template plan BootSecurityInfo $(bsi t.xml)"
pass "template ftpm = yes: bits 11/13 set, still only with the acknowledgement"

# Package and burn: the acknowledgement is needed before any device.
expect_rc 5 "--package without the acknowledgement" "$FUSELINE" fuse-xml --package t.tbz2 --bsp "$BSP" \
  --board orin-nano-8gb --plan t.xml
grep -q "unverified \[U\]" "$T/err" || fail "--package refusal does not say unverified"
[ ! -e t.tbz2 ] || fail "package written by a refused run"
expect_rc 0 "--package --test with it" "$FUSELINE" fuse-xml --package t.tbz2 --bsp "$BSP" --board orin-nano-8gb \
  --plan t.xml --test $ACK
"$VLINE" add "$L" 1-2.1 orin-nano-8gb >/dev/null
B="$FUSELINE burn --log-dir $T/logs --readback-delay 20 --timeout 60"
expect_rc 5 "burn --dry-run without the acknowledgement" vrun $B --package t.tbz2 --plan t.xml --keyset f.json --all --dry-run
expect_err "bits 11 (OEM DICE1) and 13 (FMC DICE)"
expect_err "--accept-unverified=t234-bsi-11-13"
expect_rc 5 "burn --commit without the acknowledgement" vrun $B --package t.tbz2 --plan t.xml --keyset f.json --all \
  --commit --yes --allow-lab-keys
expect_err "--accept-unverified=t234-bsi-11-13"
untouched 1-2.1
pass "burn refuses the unacknowledged plan before touching any device"
expect_rc 2 "burn with an unknown acknowledgement" vrun $B --package t.tbz2 --plan t.xml --keyset f.json --all --dry-run \
  --accept-unverified=bogus
untouched 1-2.1
expect_rc 0 "burn --dry-run with the acknowledgement" vrun $B --package t.tbz2 --plan t.xml --keyset f.json --all \
  --dry-run $ACK
[ "$(dev 1-2.1 'd["burns"]')" -ge 1 ] || [ "$(dev 1-2.1 'd["reads"]')" -ge 1 ] || fail "the acknowledged dry run did not reach the device"
expect_rc 0 "ledger export" "$FUSELINE" ledger export --db "$FUSELINE_DB"
python3 - "$T/out" <<'PY' || fail "the burn intent does not record the acknowledgement"
import json, sys
txt = open(sys.argv[1]).read()
assert '"accepted_unverified"' in txt and "t234-bsi-11-13" in txt, txt[:500]
PY
pass "with the acknowledgement the dry run reaches the device; the ledger's burn intent records it"
done_testing
