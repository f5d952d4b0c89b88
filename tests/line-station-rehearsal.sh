# line-station-rehearsal.sh — the README's main job: factory-scripts/lab-rehearsal.sh
# on the virtual line, run twice (and a third time after the pulled board is
# put back). Run 1: three boards provisioned by the station, the one pulled
# out mid-burn FAILs; run 2: the same boards reported already provisioned,
# nothing burned, the ledger still valid; run 3 (the board re-seated): its
# open intent is resolved by read-back and it passes. Verdicts are checked on
# the virtual devices (vline show), the ledger is recomputed by
# tests/tools/ledger-chain.py (not fuseline's code), certificates by openssl.
. "$SRCDIR/tests/lib.sh"
W=$T/reh
V=$SRCDIR/tests/virtual-line/vline
dev() { "$V" show "$W/line" "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"; }
report() { sed -n '/^== report/,$p' "$T/out"; }

run bash "$SRCDIR/factory-scripts/lab-rehearsal.sh" "$W"
[ "$RC" -eq 0 ] || { tail -30 "$T/out" >&2; fail "first rehearsal: exit $RC"; }
grep -q '^== report (first run)' "$T/out" || fail "no report"
for p in 1-2.1 1-2.2 1-2.4; do
  e=$(dev $p 'd["ecid"]')
  report | grep -q "^$p  *$e PASS  *fused, verified and enrolled" || fail "report line for $p: $(report | grep "^$p")"
  [ "$(dev $p 'd["fuses"]["SecurityMode"], d["burns_effective"]')" = "('00000001', 1)" ] || fail "$p is not fused"
  openssl verify -CAfile "$W/keyset-identity-ca.crt" "$W/certs/$e.pem" >/dev/null || fail "$p: certificate"
done
E3=$(dev 1-2.3 'd["ecid"]')
report | grep -q "^1-2.3  *$E3 FAIL  *board removed during the burn" || fail "report line for 1-2.3: $(report | grep "^1-2.3")"
[ "$(dev 1-2.3 'd["burns_effective"]')" = 0 ] || fail "the pulled board changed"
grep -q '^  ########      ######      ########    ########' "$T/out" || fail "no PASS screen in the rehearsal"
grep -q '^  ##########    ######    ##########  ##' "$T/out" || fail "no FAIL screen in the rehearsal"
grep -q "^ledger: *$W/fuseline.db" "$T/out" && grep -q "^board logs: *$W/logs/board-" "$T/out" || fail "the report does not say where the records are"
python3 "$SRCDIR/tests/tools/ledger-chain.py" "$W/fuseline.db" >/dev/null || fail "ledger chain (independent) after run 1"
# The fTPM step: the device's EKB (0600) and EK certificates that chain to the EK CA (openssl).
[ "$(stat -c %a "$W/eks_123400c0ffee00000001.img")" = 600 ] || fail "the rehearsal's per-device EKB is missing or not 0600"
grep -q 'ftpm-ek-cert --keyset keyset.json --sn 123400c0ffee00000001 --new-eps-seed' "$T/out" || fail "no fTPM EK step shown"
for k in rsa ec; do
  openssl x509 -inform DER -in "$W/ek_cert_$k.der" -out "$T/ek_$k.pem" || fail "ek_cert_$k.der"
  openssl verify -CAfile "$W/keyset-ftpm-ek-ca.crt" "$T/ek_$k.pem" >/dev/null || fail "$k EK certificate does not chain"
done
pass "first run: three boards PASS with certificates, the pulled board FAILs with its reason; the chain holds"

burns1=$(for p in 1-2.1 1-2.2 1-2.3 1-2.4; do dev $p 'd["burns"]'; done | tr '\n' ' ')
run bash "$SRCDIR/factory-scripts/lab-rehearsal.sh" "$W"
[ "$RC" -eq 0 ] || { tail -30 "$T/out" >&2; fail "second rehearsal: exit $RC"; }
grep -q '^== report (repeat run)' "$T/out" || fail "the second run did not reuse the rehearsal"
grep -q "keygen" "$T/out" && fail "the second run made keys again"
for p in 1-2.1 1-2.2 1-2.4; do
  report | grep -q "^$p .* ALREADY-PROVISIONED already provisioned" || fail "second run, $p: $(report | grep "^$p")"
done
[ "$(for p in 1-2.1 1-2.2 1-2.3 1-2.4; do dev $p 'd["burns"]'; done | tr '\n' ' ')" = "$burns1" ] ||
  fail "the second run burned: burns $burns1 before"
python3 "$SRCDIR/tests/tools/ledger-chain.py" "$W/fuseline.db" >/dev/null || fail "ledger chain (independent) after run 2"
pass "second run: already provisioned, nothing burned, the chain still holds"

# The operator puts the pulled board back: its open intent is resolved by a read-back first.
"$V" fault "$W/line" 1-2.3 clear
run bash "$SRCDIR/factory-scripts/lab-rehearsal.sh" "$W"
[ "$RC" -eq 0 ] || { tail -30 "$T/out" >&2; fail "third rehearsal: exit $RC"; }
report | grep -q "^1-2.3  *$E3 PASS  *fused, verified and enrolled" || fail "third run, 1-2.3: $(report | grep "^1-2.3")"
[ "$(dev 1-2.3 'd["fuses"]["SecurityMode"], d["burns_effective"]')" = "('00000001', 1)" ] || fail "1-2.3 not fused"
grep -q "boards: 1 passed now, 3 already provisioned, 0 failed" "$T/out" || fail "third run summary"
python3 - "$W/fuseline.db" "$E3" <<'PY' || fail "the pulled board's intent is not closed"
import sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
intents = [i for (i,) in db.execute("SELECT id FROM events WHERE kind='intent' AND ecid=?", (sys.argv[2],))]
closed = {i for (i,) in db.execute("SELECT intent_id FROM events WHERE kind='result' AND ecid=?", (sys.argv[2],))}
assert len(intents) == 3 and set(intents) <= closed, (intents, closed)  # dry run, pulled burn, new burn
stations = [o for (o,) in db.execute("SELECT outcome FROM events WHERE command='station' AND ecid=? ORDER BY id", (sys.argv[2],))]
assert stations == ['fail', 'pass'], stations
PY
python3 "$SRCDIR/tests/tools/ledger-chain.py" "$W/fuseline.db" >/dev/null || fail "ledger chain (independent) after run 3"
expect_rc 0 "verify ledger on the rehearsal's ledger" "$FUSELINE" verify ledger --db "$W/fuseline.db"
pass "third run (board put back): its open intent closed by the read-back, it passes; every board on the record"
done_testing
