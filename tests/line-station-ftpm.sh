#!/usr/bin/env bash
# line-station-ftpm.sh — `fuseline station` with ftpm = yes on the virtual
# line: per board the fTPM serial number, a KDK0 made in the token, the
# per-device fuse package (Kdk0, OdmId, OdmInfo) burned before the product's
# OEM fuses, both EK certificates and the per-device EKB. Checked against the
# virtual devices' own state (vline show: fuses and the firmware's UART log),
# the token (pkcs11-tool), openssl, an independent EKB decryption
# (tests/tools/ekb-decrypt.py), the ledger read with python3's sqlite3 and
# `verify ledger` / `verify ekb` — never against the station's words alone.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-station.sh"
ACK=--accept-unverified=t234-bsi-11-13
FV=bad66eb4484983684b992fe54a648bb8
line_setup
"$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --oem-k1 --ekb-payload --ekb-disk --ekb-auth --name st --lab \
  --out ks.json -q >/dev/null 2>&1 || fail keygen
"$FUSELINE" keygen --identity-ca --keyset ks.json --subject "/O=Station Test/CN=Station Test CA" -q >/dev/null
"$FUSELINE" keygen --ftpm-ek-ca --keyset ks.json --subject "/O=Station Test/CN=Station Test fTPM EK CA" -q >/dev/null
"$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --oem-keys --ftpm $ACK --out plan.xml -q >/dev/null
"$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml $ACK -q >/dev/null
PKH=$(sed -n 's/.*name="PublicKeyHash" size="64" value="0x\([0-9a-f]*\)".*/\1/p' plan.xml)
[ ${#PKH} -eq 128 ] || fail "plan.xml lacks the PublicKeyHash"
FTPM=("bsp = $BSP" "ftpm = yes" "ftpm-oem-id = 0x1234" "ftpm-ekb-format = 1.0" "ftpm-ekb-fv = $FV")
secret() { # a key's value, read from the token with pkcs11-tool (not fuseline)
  pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
    --label "$1" -o key.bin >/dev/null 2>&1 || fail "no object $1 in the token"
  xxd -p -c 64 key.bin; rm -f key.bin
}

# --- ftpm = yes without the acknowledgement: refused before anything is touched ---
"$VLINE" add "$L" 1-2.1 orin-nano-8gb >/dev/null
n_before=$(events | wc -l)
station_conf "${FTPM[@]}"
expect_rc 6 "ftpm = yes without accept-unverified" "$FUSELINE" station --config station.conf
expect_err "station.conf: ftpm = yes needs 'accept-unverified = t234-bsi-11-13'"
[ "$(wc -l < "$T/err")" -eq 1 ] || fail "the refusal is not one line: $(cat "$T/err")"
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-all"
expect_rc 2 "an unknown acknowledgement" "$FUSELINE" station --config station.conf
expect_err "key 'accept-unverified': 't234-bsi-all' is not an acknowledgement fuseline knows"
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13" "ftpm-ekb-fv = 00"
expect_rc 2 "a short FV" "$FUSELINE" station --config station.conf
expect_err "key 'ftpm-ekb-fv': '00' is not 32 hex digits"
station_conf "ftpm-oem-id = 0x1234"
expect_rc 2 "an fTPM key without ftpm = yes" "$FUSELINE" station --config station.conf
expect_err "key 'ftpm-oem-id' only goes with ftpm = yes"
untouched 1-2.1
[ "$(events | wc -l)" = "$n_before" ] || fail "a refused start wrote to the ledger"
[ -z "$(jget ks.json '[k["role"] for k in d["keys"] if k["role"].startswith("ftpm-kdk0")]')" ] ||
  [ "$(jget ks.json 'len([k for k in d["keys"] if k["role"].startswith("ftpm-kdk0")])')" = 0 ] || fail "a KDK0 was made"
pass "refusals touched no board, made no KDK0 and wrote no ledger event"
# A product plan without bits 11/13 is refused at start too.
"$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --oem-keys --out plain.xml -q >/dev/null
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13" "plan = plain.xml"
expect_rc 2 "ftpm = yes with a plan lacking BootSecurityInfo bits 11/13" "$FUSELINE" station --config station.conf
expect_err "needs a plan whose BootSecurityInfo has a PKC scheme and bits 9, 11 and 13 (it has 0x209)"
untouched 1-2.1

# --- a good board ---------------------------------------------------------------
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13"
st_run --boards 1 --json
[ "$RC" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "a good board with ftpm = yes: exit $RC"; }
cp "$T/out" good.jsonl
E1=$(dev 1-2.1 'd["ecid"]')
[ "$(result_of 1-2.1 'o["verdict"]')" = pass ] || fail "verdict $(result_of 1-2.1 'o')"
# The SN: OEM_ID ‖ the ECID's last 16 hex digits with the top bit cleared (computed here).
SNLO=$(python3 -c 'import sys; print("%016x" % (int(sys.argv[1][16:], 16) & ((1 << 63) - 1)))' "$E1")
SN=1234$SNLO
KDK0=$(secret "st-ftpm-kdk0-$SN")
[ ${#KDK0} -eq 64 ] || fail "KDK0 is not 32 bytes"
F=$(dev 1-2.1 'd["fuses"]["Kdk0"], d["fuses"]["OdmId"], d["fuses"]["OdmInfo"]')
[ "$F" = "('$KDK0', '$SNLO', '00001234')" ] || fail "per-device fuses on the device: $F (want Kdk0 = the token's, OdmId $SNLO, OdmInfo 1234)"
F=$(dev 1-2.1 'd["fuses"]["PublicKeyHash"], d["fuses"]["OemK1"], int(d["fuses"]["BootSecurityInfo"], 16) & 0x2a07, d["fuses"]["SecurityMode"]')
[ "$F" = "('$PKH', '$(secret st-oem-k1)', $((0x2a01)), '00000001')" ] || fail "OEM fuses on the device: $F"
[ "$(dev 1-2.1 'd["burns_effective"]')" = 2 ] || fail "expected two effective burns (per-device, then product)"
pass "the device carries Kdk0 (the token's), OdmId = SN, OdmInfo = OEM_ID, and the product's OEM fuses"
# Burn order, from the virtual firmware's own UART log: Kdk0 before OemK1, SecurityMode last.
ORDER=$(dev 1-2.1 '[l.split(". Start ")[1].split()[0] for l in d["uart"] if ". Start " in l]')
python3 - "$ORDER" <<'PY' || fail "burn order on the UART: $ORDER"
import ast, sys
o = ast.literal_eval(sys.argv[1])
assert o.index('Kdk0') < o.index('OemK1') and o.index('OdmId') < o.index('OemK1'), o
assert o[-1] == 'SecurityMode', o
PY
pass "the UART shows the per-device fuses burned before OemK1 and SecurityMode last"
# The EKB beside the certificate: 0600, verify ekb --sn accepts it, it decrypts independently to SN + certs.
EKB=certs/$E1.eks.img
[ "$(stat -c %a "$EKB")" = 600 ] || fail "$EKB mode $(stat -c %a "$EKB")"
[ -s "certs/$E1.pem" ] || fail "no device certificate"
expect_rc 0 "verify ekb --sn on the board's EKB" "$FUSELINE" verify ekb "$EKB" --keyset ks.json --fv "$FV" --sn "$SN"
python3 "$SRCDIR/tests/tools/ekb-decrypt.py" "$EKB" "$(secret st-oem-k1)" "$FV" > recs.txt || fail "EKB does not decrypt"
[ "$(cut -d' ' -f1 recs.txt | tr '\n' ' ')" = "1 2 4 91 92 93 94 " ] || fail "EKB records: $(cat recs.txt)"
[ "$(EKB_VALUE=91 python3 "$SRCDIR/tests/tools/ekb-decrypt.py" "$EKB" "$(secret st-oem-k1)" "$FV")" = "$SN" ] ||
  fail "tag 91 is not the SN"
for k in rsa ec; do
  openssl x509 -inform DER -in "certs/$E1.ek-$k.der" -out "ek-$k.pem" || fail "certs/$E1.ek-$k.der is no certificate"
  openssl verify -CAfile ks-ftpm-ek-ca.crt "ek-$k.pem" >/dev/null || fail "$k EK certificate does not chain to the EK CA"
  t=$([ $k = rsa ] && echo 93 || echo 94)
  [ "$(EKB_VALUE=$t python3 "$SRCDIR/tests/tools/ekb-decrypt.py" "$EKB" "$(secret st-oem-k1)" "$FV")" = \
    "$(xxd -p -c 100000 "certs/$E1.ek-$k.der")" ] || fail "EKB tag $t is not certs/$E1.ek-$k.der"
  openssl x509 -in "ek-$k.pem" -noout -subject -nameopt RFC2253 | grep -q "CN=${SN}_ftpm-ek-cert" ||
    fail "$k EK certificate does not name SN $SN"
done
pass "EKB: 0600, verify ekb --sn passes, decrypts (python) to tags 1 2 4 91-94 with the SN and both EK certificates, which chain to the EK CA (openssl)"
# The ledger: SN/device and EK/EKB events, both burns, the station's pass; the chain verifies.
EV=$(events "$E1")
grep -q "^station-ftpm record ok $E1" <<< "$EV" || fail "no station-ftpm event: $EV"
[ "$(grep -c "^burn result ok" <<< "$EV")" = 2 ] || fail "expected two burn results: $EV"
grep -q "^station record pass $E1" <<< "$EV" || fail "no station pass record"
python3 - "$T/ledger.db" "$E1" "$SN" "$(sha256sum "$EKB" | cut -d' ' -f1)" \
  "$(sha256sum "certs/$E1.ek-rsa.der" | cut -d' ' -f1)" "$(sha256sum "certs/$E1.ek-ec.der" | cut -d' ' -f1)" <<'PY' ||
import json, sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
rows = [json.loads(d) for (d,) in db.execute(
    "SELECT details FROM events WHERE command='station-ftpm' AND ecid=? ORDER BY id", (sys.argv[2],))]
steps = {r['step']: r for r in rows}
assert set(steps) == {'device', 'ek-certs-ekb'}, rows
assert all(r['ftpm_sn'] == sys.argv[3] for r in rows), rows
assert steps['device']['kdk0'] == 'made' and steps['device']['oem_id'] == 0x1234, rows
e = steps['ek-certs-ekb']
assert (e['ekb_sha256'], e['ek_cert_rsa_sha256'], e['ek_cert_ec_sha256']) == tuple(sys.argv[4:7]), e
st = [json.loads(d) for (d,) in db.execute(
    "SELECT details FROM events WHERE command='station' AND ecid=?", (sys.argv[2],))]
assert st[-1]['ftpm_sn'] == sys.argv[3] and st[-1]['ekb'].endswith('.eks.img'), st
PY
  fail "ledger details"
expect_rc 0 "verify ledger" "$FUSELINE" verify ledger --db ledger.db
pass "ledger: the device step (SN, KDK0 made), EK certificate and EKB hashes (equal to the files'), two burns, the pass; chain intact"
# No secret anywhere: KDK0 and OEM_K1 are not in logs, ledger, JSON output or keyset; no plan/package left behind.
assert_absent "$KDK0" good.jsonl "$T/err" ledger.db ks.json $(find logs -type f)
assert_absent "$(secret st-oem-k1)" good.jsonl ledger.db $(find logs -type f)
[ -z "$(find logs -name '.ftpm-*')" ] || fail "the per-device plan/package directory was left: $(find logs -name '.ftpm-*')"
pass "KDK0 appears in no log, ledger, JSON line or keyset; the per-device plan and package are gone"

# --- the same board again: nothing burned, already provisioned --------------------
B0=$(dev 1-2.1 'd["burns"]'); H0=$(sha256sum "$EKB")
st_run --boards 1 --json
[ "$RC" -eq 0 ] || fail "re-run: exit $RC"
[ "$(result_of 1-2.1 'o["verdict"]')" = already-provisioned ] || fail "re-run verdict: $(result_of 1-2.1 'o')"
[ "$(dev 1-2.1 'd["burns"]')" = "$B0" ] || fail "the re-run reached the burner"
[ "$(sha256sum "$EKB")" = "$H0" ] || fail "the re-run replaced the EKB"
[ "$(jget ks.json 'len([k for k in d["keys"] if k["role"].startswith("ftpm-kdk0")])')" = 1 ] || fail "a second KDK0"
pass "re-run: already provisioned, no burn attempt, the EKB and KDK0 unchanged"

# --- a board pulled right after its per-device burn, then re-seated --------------
"$VLINE" add "$L" 1-2.2 orin-nano-8gb >/dev/null
"$VLINE" fault "$L" 1-2.2 vanish-after-burn >/dev/null
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13" "ports = 1-2.2"
st_run --boards 1 --json
E2=$(dev 1-2.2 'd["ecid"]')
[ "$(result_of 1-2.2 'o["verdict"]')" = fail ] || fail "pulled board: $(result_of 1-2.2 'o')"
result_of 1-2.2 'o["reason"]' | grep -q "OUTCOME UNKNOWN" || fail "reason: $(result_of 1-2.2 'o["reason"]')"
[ "$(dev 1-2.2 'd["fuses"]["SecurityMode"], d["fuses"]["OemK1"] == "0" * 64, d["fuses"]["Kdk0"] != "0" * 64')" = \
  "('00000000', True, True)" ] || fail "after the pull: $(dev 1-2.2 'd["fuses"]')"
[ ! -e "certs/$E2.eks.img" ] || fail "an EKB was made for a board that was not finished"
pass "pulled after the per-device burn: FAIL 'OUTCOME UNKNOWN'; Kdk0 burned, OEM fuses not, no EKB"
# Re-seated, and pulled again right after the next burn that changes fuses: the product's (the per-device
# burn is skipped: its fuses are there). Now the product's intent is the open one.
"$VLINE" fault "$L" 1-2.2 clear >/dev/null
"$VLINE" fault "$L" 1-2.2 vanish-after-burn >/dev/null
st_run --boards 1 --json
[ "$(result_of 1-2.2 'o["verdict"]')" = fail ] || fail "pulled during the product burn: $(result_of 1-2.2 'o')"
result_of 1-2.2 'o["reason"]' | grep -q "OUTCOME UNKNOWN" || fail "reason: $(result_of 1-2.2 'o["reason"]')"
[ "$(dev 1-2.2 'd["fuses"]["SecurityMode"], d["burns_effective"]')" = "('00000001', 2)" ] ||
  fail "after the second pull: $(dev 1-2.2 'd["fuses"]["SecurityMode"], d["burns_effective"]')"
pass "pulled again during the product's burn (per-device burn skipped): FAIL 'OUTCOME UNKNOWN', the product's fuses in"
"$VLINE" fault "$L" 1-2.2 clear >/dev/null
st_run --boards 1 --json
[ "$RC" -eq 0 ] || { cat "$T/err" >&2; fail "re-seated: exit $RC"; }
[ "$(result_of 1-2.2 'o["verdict"]')" = pass ] || fail "re-seated: $(result_of 1-2.2 'o')"
SN2=1234$(python3 -c 'import sys; print("%016x" % (int(sys.argv[1][16:], 16) & ((1 << 63) - 1)))' "$E2")
F=$(dev 1-2.2 'd["fuses"]["Kdk0"], d["fuses"]["PublicKeyHash"], d["fuses"]["SecurityMode"], d["burns_effective"]')
[ "$F" = "('$(secret "st-ftpm-kdk0-$SN2")', '$PKH', '00000001', 2)" ] || fail "re-seated board: $F"
EV=$(events "$E2")
grep -q "^burn result plan-burned $E2" <<< "$EV" || fail "the open per-device intent was not closed by its read-back: $EV"
python3 - "$T/ledger.db" "$E2" <<'PY' || fail "open intents remain for $E2"
import sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
opened = [i for (i,) in db.execute("SELECT id FROM events WHERE kind='intent' AND ecid=?", (sys.argv[2],))]
closed = set(i for (i,) in db.execute("SELECT intent_id FROM events WHERE kind='result' AND ecid=?", (sys.argv[2],)))
assert opened and all(i in closed for i in opened), (opened, closed)
PY
# Each open intent was closed by a read of the plan it was written for (its plan_sha256), never by the other
# plan's read: the per-device read comes first after a re-seat, but must leave the product's intent to the product's read.
python3 - "$T/ledger.db" "$E2" <<'PY' || fail "an intent was closed by a read of another plan"
import json, sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
rows = {i: (k, json.loads(d), iid) for i, k, d, iid in db.execute(
    "SELECT id, kind, details, intent_id FROM events WHERE command='burn' AND ecid=?", (sys.argv[2],))}
pairs = [(rows[iid][1]['plan_sha256'], d['plan_sha256'], d.get('resolved_by')) for i, (k, d, iid) in rows.items()
         if k == 'result' and iid in rows]
assert len(pairs) == 2 and all(p[2] == 'read-back' for p in pairs), pairs   # one pull per plan
assert len({p[0] for p in pairs}) == 2, pairs   # both plans had an intent
assert all(a == b for a, b, _ in pairs), pairs
PY
[ "$(jget ks.json 'len([k for k in d["keys"] if k["role"].startswith("ftpm-kdk0")])')" = 2 ] || fail "KDK0 roles"
expect_rc 0 "verify ekb --sn on the re-seated board's EKB" "$FUSELINE" verify ekb "certs/$E2.eks.img" --keyset ks.json \
  --fv "$FV" --sn "$SN2"
expect_rc 0 "verify ledger after the re-seat" "$FUSELINE" verify ledger --db ledger.db
pass "re-seated twice: its KDK0 kept (not made again), no fuse burned twice, every intent closed by a read of its own plan, EKB verified"
# --- EKB 2.0 (random FV in the header) with the root named --------------------------
"$VLINE" add "$L" 1-2.5 orin-nano-8gb >/dev/null
station_conf "bsp = $BSP" "ftpm = yes" "ftpm-oem-id = 0x00ab" "ftpm-ekb-format = 2.0" "ftpm-ekb-root = oem-k1" \
  "accept-unverified = t234-bsi-11-13" "ports = 1-2.5"
st_run --boards 1 --json
[ "$(result_of 1-2.5 'o["verdict"]')" = pass ] || fail "EKB 2.0 board: $(result_of 1-2.5 'o')"
E5=$(dev 1-2.5 'd["ecid"]')
SN5=00ab$(python3 -c 'import sys; print("%016x" % (int(sys.argv[1][16:], 16) & ((1 << 63) - 1)))' "$E5")
[ "$(dev 1-2.5 'd["fuses"]["OdmInfo"]')" = 000000ab ] || fail "OdmInfo of 1-2.5"
expect_rc 0 "verify ekb --sn on the EKB 2.0" "$FUSELINE" verify ekb "certs/$E5.eks.img" --keyset ks.json --sn "$SN5" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format"] == "2.0", d' \
  "$T/out" || fail "not an EKB 2.0: $(cat "$T/out")"
python3 "$SRCDIR/tests/tools/ekb-decrypt.py" "certs/$E5.eks.img" "$(secret st-oem-k1)" > recs5.txt || fail "EKB 2.0 does not decrypt"
[ "$(cut -d' ' -f1 recs5.txt | tr '\n' ' ')" = "1 2 4 91 92 93 94 " ] || fail "EKB 2.0 records: $(cat recs5.txt)"
pass "ftpm-ekb-format = 2.0: the EKB carries its own FV, decrypts (python) with OEM_K1 to tags 1 2 4 91-94, verify ekb --sn passes"

# --- a board fused earlier without fTPM: refused, no KDK0 made for it -------------
"$VLINE" add "$L" 1-2.3 orin-nano-8gb >/dev/null
"$FUSELINE" fuse-xml --package plainpkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plain.xml -q >/dev/null
station_conf "ports = 1-2.3" "plan = plain.xml" "package = plainpkg.tbz2"
st_run --boards 1 --json
[ "$(result_of 1-2.3 'o["verdict"]')" = pass ] || fail "plain station: $(result_of 1-2.3 'o')"
B3=$(dev 1-2.3 'd["burns"]')
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13" "ports = 1-2.3" "plan = plain.xml" "package = plainpkg.tbz2"
run "$FUSELINE" station --config station.conf
[ "$RC" -eq 2 ] || fail "ftpm = yes over a plan without bits 11/13: exit $RC"
# The same board under the fTPM product's plan: it conflicts (its BootSecurityInfo lacks 11/13) and is refused before any KDK0.
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13" "ports = 1-2.3"
st_run --boards 1 --json
[ "$(result_of 1-2.3 'o["verdict"]')" = fail ] || fail "fused-without-fTPM board: $(result_of 1-2.3 'o')"
[ "$(dev 1-2.3 'd["burns"]')" = "$B3" ] || fail "the refused board reached the burner"
[ "$(jget ks.json 'len([k for k in d["keys"] if k["role"].startswith("ftpm-kdk0")])')" = 3 ] || fail "a KDK0 was made for it"
pass "a board fused without fTPM: refused ($(result_of 1-2.3 'o["reason"]' | cut -c1-60)…), no burn, no KDK0"
# A board that carries the fTPM product's own fuses (burned by `burn`, SecurityMode set) but no fTPM identity:
# its per-device fuses can no longer go in, so no KDK0 is made for it.
"$VLINE" add "$L" 1-2.4 orin-nano-8gb >/dev/null
run vrun "$FUSELINE" burn --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-2.4 --commit --yes \
  --allow-lab-keys $ACK --log-dir burnlogs
[ "$RC" -eq 0 ] || fail "burn of 1-2.4: exit $RC"
B4=$(dev 1-2.4 'd["burns"]')
station_conf "${FTPM[@]}" "accept-unverified = t234-bsi-11-13" "ports = 1-2.4"
st_run --boards 1 --json
[ "$(result_of 1-2.4 'o["verdict"]')" = fail ] || fail "product-fused board: $(result_of 1-2.4 'o')"
result_of 1-2.4 'o["reason"]' | grep -q "never given an fTPM identity" || fail "reason: $(result_of 1-2.4 'o["reason"]')"
[ "$(dev 1-2.4 'd["burns"]')" = "$B4" ] || fail "the refused board reached the burner"
[ "$(jget ks.json 'len([k for k in d["keys"] if k["role"].startswith("ftpm-kdk0")])')" = 3 ] || fail "a KDK0 was made for it"
pass "a board with the product's fuses but no fTPM identity: refused, no burn, no KDK0"
done_testing
