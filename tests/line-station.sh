# line-station.sh — `fuseline station` on the virtual line: good boards, a
# board on a foreign port, an already-provisioned board, a wrong typed
# confirmation, a board pulled mid-burn, and the settings file's errors.
# Every verdict is checked against the virtual devices' own state (vline
# show), the ledger (read with python3's sqlite3), openssl and `verify
# ledger` — never against the station's screen alone.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-station.sh"
station_setup

# --- settings errors: one line naming file:line:key, nothing touched -----------
"$VLINE" add "$L" 1-2.1 orin-nano-8gb >/dev/null
cp station.conf good.conf
station_conf "mode = commt"
expect_rc 2 "a bad mode value" "$FUSELINE" station --config station.conf
expect_err "station.conf:$(grep -n '^mode' station.conf | cut -d: -f1): key 'mode': 'commt' is not dry-run or commit"
station_conf "colour = green"
expect_rc 2 "an unknown key" "$FUSELINE" station --config station.conf
expect_err "station.conf:$(grep -n '^colour' station.conf | cut -d: -f1): unknown key 'colour'"
{ cat good.conf; echo "station = again"; } > station.conf
expect_rc 2 "a repeated key" "$FUSELINE" station --config station.conf
expect_err "station.conf:$(grep -n '^station = again' station.conf | cut -d: -f1): key 'station' given twice"
grep -v '^ports' good.conf > station.conf
expect_rc 2 "a missing key" "$FUSELINE" station --config station.conf
expect_err "station.conf: missing key 'ports'"
station_conf "ports = 1-2.1, 1-2.01"
expect_rc 2 "a malformed port" "$FUSELINE" station --config station.conf
expect_err "station.conf:$(grep -n '^ports' station.conf | cut -d: -f1): key 'ports':"
station_conf "log-keep-days = -3"
expect_rc 2 "a negative number" "$FUSELINE" station --config station.conf
expect_err "key 'log-keep-days': '-3' is not a whole number"
station_conf "enroll = csr"
expect_rc 2 "enroll = csr without csr-dir" "$FUSELINE" station --config station.conf
expect_err "key 'csr-dir' is required with enroll = csr"
# The documented example parses: with confirm = yes (no terminal here) the
# first thing it stops at is its keyset, which does not exist here.
sed 's/^confirm = typed$/confirm = yes/' "$SRCDIR/factory-scripts/station.conf.example" > example.conf
expect_rc 2 "factory-scripts/station.conf.example parses" "$FUSELINE" station --config example.conf
expect_err "keys/orin-nano.json"
station_conf
expect_rc 2 "no PIN source: the station never prompts" env -u FUSELINE_PIN_FILE -u FUSELINE_PIN "$FUSELINE" station --config station.conf
expect_err "never asks for the PIN"
station_conf "confirm = typed"
expect_rc 6 "confirm = typed without a terminal is refused" setsid -w "$FUSELINE" station --config station.conf
untouched 1-2.1
[ ! -e ledger.db ] || fail "a refused start wrote a ledger"
pass "no refusal touched a board or wrote the ledger"

# --- two good boards and one on a foreign port -----------------------------------------
"$VLINE" add "$L" 1-2.2 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-4 orin-nano-8gb >/dev/null
station_conf
st_run --boards 2
[ "$RC" -eq 0 ] || fail "two good boards: exit $RC"
cp "$T/out" screen-good.txt
for i in 1 2; do
  [ "$(dev "1-2.$i" 'd["fuses"]["PublicKeyHash"], d["fuses"]["SecurityMode"], d["burns_effective"]')" = "('$PKH', '00000001', 1)" ] ||
    fail "1-2.$i does not carry the plan: $(dev "1-2.$i" 'd["fuses"]')"
done
untouched 1-4
pass "both boards carry the plan (read from the virtual devices); 1-4 untouched"
E1=$(dev 1-2.1 'd["ecid"]'); E2=$(dev 1-2.2 'd["ecid"]')
# The big PASS in '#' block letters (no colour off a terminal), the ECID, the reason, the count.
grep -q '^  ########      ######      ########    ########' screen-good.txt || fail "no block-letter PASS"
grep -q "PASS  port 1-2.1  ECID $E1  serial ST-${E1:16}" screen-good.txt ||
  grep -qi "PASS  port 1-2.1  ECID $E1  serial ST-$(echo "${E1:16}" | tr a-f A-F)" screen-good.txt || fail "no PASS line for 1-2.1"
grep -q "fused, verified and enrolled" screen-good.txt || fail "no reason on the PASS screen"
grep -q "boards this shift: 2   PASS 2   FAIL 0" screen-good.txt || fail "no shift count"
grep -q "port 1-2.3  *-     waiting for a board" screen-good.txt || fail "no status line for the empty socket 1-2.3"
grep -q "1-4: board ignored: port not one of this station's" screen-good.txt || fail "the foreign board was not named"
pass "screen: block-letter PASS, ECID, serial, reason, shift count, a line per socket, the foreign port named"
# Certificates: openssl checks each against the CA and finds the ECID in it.
for e in "$E1" "$E2"; do
  openssl verify -CAfile ks-identity-ca.crt "certs/$e.pem" >/dev/null || fail "certs/$e.pem does not chain to the CA"
  subj=$(openssl x509 -in "certs/$e.pem" -noout -subject -nameopt RFC2253)
  grep -qi "serialNumber=$e" <<< "$subj" || fail "certs/$e.pem does not name ECID $e: $subj"
done
pass "each board's certificate chains to the identity CA (openssl) and names its ECID"
[ "$(events "station record pass $E1")" = "station record pass $E1" ] || fail "no station pass event for $E1"
[ "$(events " $E1" | cut -d' ' -f1-3 | tr '\n' ,)" = "burn record read,burn intent pending,burn result ok,burn record already-provisioned,enroll record ok,station record pass," ] ||
  fail "events of $E1: $(events " $E1" | tr '\n' ,)"
pass "ledger: read, intent, result, fuse check, enrolment and the station's pass for each board"
expect_rc 0 "verify ledger" "$FUSELINE" verify ledger

# --- the same boards again: already provisioned, nothing burned --------------------------
st_run --boards 2 --json
[ "$RC" -eq 0 ] || fail "second pass: exit $RC"
for i in 1 2; do
  [ "$(result_of "1-2.$i" 'o["verdict"], o["reason"]')" = "('already-provisioned', 'already provisioned: fuses as planned, certificate valid (nothing burned)')" ] ||
    fail "1-2.$i second pass: $(result_of "1-2.$i" 'o')"
  [ "$(dev "1-2.$i" 'd["burns"]')" = 1 ] || fail "1-2.$i was burned again"
done
python3 - "$T/out" <<'PY' || fail "the JSON Lines stream"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [e.get("event") for e in ev]
assert kinds[0] == "station-started" and ev[0]["ports"] == ["1-2.1", "1-2.2", "1-2.3"], ev[0]
assert "port-ignored" in kinds and [e for e in ev if e.get("event") == "port-ignored"][0]["instance"] == "1-4"
assert kinds.count("board-arrived") == 2 and kinds.count("result") == 2, kinds
assert ev[-2]["event"] == "station-finished" and ev[-2]["boards"] == 2
assert ev[-1] == {"command": "station", "ok": True, "summary": True, "boards": 2, "passed": 2, "failed": 0, "stopped": False, "exit_code": 0}, ev[-1]
for e in ev:
    assert "pin" not in json.dumps(e).lower(), e
PY
[ "$(events "station record already-provisioned" | wc -l)" = 2 ] || fail "no already-provisioned station events"
pass "second pass: already provisioned, nothing burned, JSON Lines events with the summary last"

# --- a wrong typed confirmation: FAIL, nothing burned ---------------------------------------
"$VLINE" add "$L" 1-2.3 orin-nano-8gb >/dev/null
E3=$(dev 1-2.3 'd["ecid"]')
station_conf "confirm = typed" "ports = 1-2.3"
run python3 "$SRCDIR/tests/tools/pty-answer.py" "Type the last 6 hex digits" 000000 -- \
  "$VLINE" run "$L" -- "$FUSELINE" station --config station.conf --once --readback-delay 20 --poll 100
[ "$RC" -eq 1 ] || fail "a wrong confirmation: exit $RC, expected 1"
grep -q "burn not confirmed (the digits typed were not the ECID's): nothing burned" "$T/out" || fail "no reason on the screen"
grep -q '##########    ######    ##########  ##          ' "$T/out" || fail "no block-letter FAIL"
[ "$(dev 1-2.3 'd["burns"]')" = 0 ] || fail "a wrong confirmation burned"
[ "$(events "station record fail $E3")" = "station record fail $E3" ] || fail "no station fail event"
pass "a wrong typed confirmation: FAIL with the reason, nothing burned, on the record"
run python3 "$SRCDIR/tests/tools/pty-answer.py" "Type the last 6 hex digits" "${E3:26}" -- \
  "$VLINE" run "$L" -- "$FUSELINE" station --config station.conf --once --readback-delay 20 --poll 100
[ "$RC" -eq 0 ] || fail "the right confirmation: exit $RC"
[ "$(dev 1-2.3 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "the right confirmation did not burn"
pass "the right typed confirmation burns and passes"

# --- a board pulled out mid-burn ------------------------------------------------------------
"$VLINE" add "$L" 1-3.1 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-3.2 orin-nano-8gb >/dev/null
"$VLINE" fault "$L" 1-3.1 vanish-after-read
E4=$(dev 1-3.1 'd["ecid"]')
station_conf "ports = 1-3.1, 1-3.2"
st_run --boards 2
[ "$RC" -eq 1 ] || fail "one board pulled: exit $RC, expected 1"
grep -q "FAIL  port 1-3.1  ECID $E4" "$T/out" || fail "no FAIL screen for 1-3.1"
grep -q "board removed during the burn: OUTCOME UNKNOWN" "$T/out" || fail "the reason does not say the board was removed during the burn"
lastf=$(sed -n '/last failures:/,$p' "$T/out")
grep -A1 "1-3.1 *ECID $E4\$" <<< "$lastf" | grep -q "^      board removed during the burn" || fail "the failure is not in the last-failures list"
[ "$(dev 1-3.2 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "the next board was not done"
grep -q "boards this shift: 2   PASS 1   FAIL 1" "$T/out" || fail "shift count"
[ "$(events "station record fail $E4")" = "station record fail $E4" ] || fail "no station fail event for the pulled board"
pass "a board pulled mid-burn: FAIL 'board removed during the burn', the next board passes"
# Put back: the open intent is resolved by reading the board back first.
"$VLINE" fault "$L" 1-3.1 clear
st_run --once --json
[ "$RC" -eq 0 ] || fail "the pulled board put back: exit $RC"
python3 - "$T/out" <<'PY' || fail "dangling intent not reported at start-up"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
d = [e for e in ev if e.get("event") == "dangling-intents"]
assert d and d[0]["count"] == 1, ev
PY
[ "$(result_of 1-3.1 'o["verdict"]')" = pass ] || fail "1-3.1 put back: $(result_of 1-3.1 'o')"
[ "$(events "burn result" | grep -c "$E4")" = 2 ] || fail "the dangling intent was not closed: $(events "$E4")"
pass "put back: the open intent is closed by the read-back, then the board passes"

expect_rc 0 "verify ledger with every board on the record" "$FUSELINE" verify ledger --json
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["dangling_intents"]==[], o' "$T/out" || fail "dangling intents remain"
st_events=$(events "station record")
for e in "$E1" "$E2" "$E3" "$E4"; do
  grep -q " $e$" <<< "$st_events" || fail "board $e has no station event"
done
pass "every board is accounted for in the ledger"
done_testing
