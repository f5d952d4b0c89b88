# line-burn-t194.sh — the Xavier (T194) path on the virtual line: the UID read
# once with tegrarcm_v2 and then --skipuid, the package's XML as what is
# burned, `burnfuses dummy` as the dry run, SecurityMode burned last.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
line_setup
TPL=$SRCDIR/tests/virtual-line/templates/agx-xavier-vline.conf
B="$FUSELINE burn --log-dir $T/logs --readback-delay 20 --timeout 60"

"$FUSELINE" keygen --chip t194 --pkc rsa3k --sbk --name xv --lab --out ks.json -q >/dev/null 2>&1
"$FUSELINE" fuse-xml --keyset ks.json --template "$TPL" --out plan.xml -q
PKH=$(sed -n 's/.*name="PublicKeyHash" size="32" value="0x\([0-9a-f]*\)".*/\1/p' plan.xml)
[ ${#PKH} -eq 64 ] || fail "no T194 PublicKeyHash in the plan"
expect_rc 0 "T194 package" "$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board "$TPL" --plan plan.xml
expect_rc 0 "T194 dry-run package (burnfuses dummy)" \
  "$FUSELINE" fuse-xml --package test.tbz2 --bsp "$BSP" --board "$TPL" --plan plan.xml --test
tar -xjf test.tbz2 bootloader/fusecmd.sh -O | grep -q 'burnfuses dummy' || fail "the test package is not burnfuses dummy"
"$VLINE" add "$L" 1-1 agx-xavier >/dev/null
"$VLINE" add "$L" 1-2 agx-xavier >/dev/null

expect_rc 6 "T194: a dummy package under --commit is refused" \
  vrun $B --package test.tbz2 --plan plan.xml --keyset ks.json --all --commit --yes --allow-lab-keys
expect_rc 0 "T194 dry run on 2 devices" vrun $B --package test.tbz2 --plan plan.xml --keyset ks.json --all --dry-run --json
for d in 1-1 1-2; do
  [ "$(dev $d 'd["burns"], d["burns_effective"], d["fuses"]["SecurityMode"]')" = "(1, 0, '00000000')" ] ||
    fail "$d after burnfuses dummy: $(dev $d 'd["burns"], d["burns_effective"], d["fuses"]')"
done
pass "burnfuses dummy burned nothing (read back)"
expect_rc 0 "T194 commit on 2 devices" vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --commit --yes --allow-lab-keys --json
for d in 1-1 1-2; do
  [ "$(dev $d 'd["fuses"]["PublicKeyHash"], d["fuses"]["SecurityMode"]')" = "('$PKH', '00000001')" ] ||
    fail "$d not provisioned: $(dev $d 'd["fuses"]')"
  [ "$(dev $d 'd["br_cid"][0]')" = e ] || fail "$d: BR_CID fuse level $(dev $d 'd["br_cid"][0]'), expected e (production, SBK, RSA-3K)"
done
pass "both Xaviers carry the plan; BR_CID shows production + SBK + RSA-3K"
E=$(dev 1-1 'd["ecid"]')
python3 -c 'import json,sys
ecids = {json.loads(l).get("instance"): json.loads(l).get("ecid") for l in open(sys.argv[1])}
sys.exit(0 if ecids["1-1"] == "0" + sys.argv[2][1:] else 1)' "$T/out" "$E" || fail "the ledger ECID is not the BR_CID with its fuse-level nibble cleared"
pass "the device key survives the burn (BR_CID fuse level nibble cleared)"
expect_rc 0 "T194 re-run: already provisioned" vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --commit --yes --allow-lab-keys
[ "$(dev 1-1 'd["burns"]')" = 2 ] || fail "1-1 burned again"
expect_rc 0 "verify ledger" "$FUSELINE" verify ledger
done_testing
