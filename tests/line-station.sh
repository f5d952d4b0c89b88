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
# keygen and fuse-xml recorded their events; a refused start must add none.
n_before=$( [ -e ledger.db ] && events | wc -l || echo 0)
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
[ "$( [ -e ledger.db ] && events | wc -l || echo 0)" = "$n_before" ] || fail "a refused start wrote to the ledger"
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

# --- the label hook: argv only, no secret in its environment; a failing hook FAILs ----------
"$VLINE" add "$L" 1-5.1 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-5.2 orin-nano-8gb >/dev/null
E51=$(dev 1-5.1 'd["ecid"]'); E52=$(dev 1-5.2 'd["ecid"]')
cat > hook.sh <<'HOOK'
#!/bin/sh
{ for a in "$@"; do printf 'arg:%s\n' "$a"; done; env | sed 's/^/env:/'; } > "$(dirname "$0")/hook-$1.txt"
[ "$1" != "$FAIL_ECID" ]
HOOK
sed -i "s/\$FAIL_ECID/$E52/" hook.sh
chmod 755 hook.sh
station_conf "ports = 1-5.1, 1-5.2" "hook = hook.sh" "serial-prefix = ACME-"
st_run --boards 2
[ "$RC" -eq 1 ] || fail "hook: exit $RC, expected 1 (one hook fails)"
S51="ACME-$(echo "${E51:16}" | tr a-f A-F)"
printf 'arg:%s\narg:%s\narg:%s\n' "$E51" "$S51" "$T/certs/$E51.pem" | diff -u - <(grep '^arg:' "hook-$E51.txt") ||
  fail "the hook's argv is not ECID SERIAL CERTPATH"
grep -q '^env:[^=]*\(PIN\|SOFTHSM\|TOKEN\)[^=]*=' "hook-$E51.txt" && fail "the hook's environment carries $(grep '^env:[^=]*\(PIN\|SOFTHSM\|TOKEN\)' "hook-$E51.txt")"
assert_absent "$(cat "$FUSELINE_PIN_FILE")" "hook-$E51.txt"
grep -q "PASS  port 1-5.1  ECID $E51  serial $S51" "$T/out" || fail "1-5.1 not PASS"
grep -q "FAIL  port 1-5.2  ECID $E52" "$T/out" && grep -q "label hook failed: exit 1 (board is provisioned; reprint its label" "$T/out" ||
  fail "the failing hook is not reported"
pass "label hook: argv ECID SERIAL CERTPATH, no PIN or token variable in its environment; a failing hook FAILs the board"

# --- enroll = csr: the device's own key; no CSR, no certificate ------------------------------
"$VLINE" add "$L" 1-5.3 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-5.4 orin-nano-8gb >/dev/null
E53=$(dev 1-5.3 'd["ecid"]'); E54=$(dev 1-5.4 'd["ecid"]')
mkdir csr
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev53.key -subj "/CN=whatever the device asks" \
  -out "csr/$E53.csr" 2>/dev/null
station_conf "ports = 1-5.3, 1-5.4" "enroll = csr" "csr-dir = csr"
st_run --boards 2
[ "$RC" -eq 1 ] || fail "csr: exit $RC, expected 1 (one CSR missing)"
[ "$(openssl x509 -in "certs/$E53.pem" -noout -pubkey | openssl sha256)" = "$(openssl pkey -in dev53.key -pubout | openssl sha256)" ] ||
  fail "the certificate does not carry the device's CSR key"
grep -q "FAIL  port 1-5.4  ECID $E54" "$T/out" && grep -q "no certificate request from the device: .*csr/$E54.csr is missing" "$T/out" ||
  fail "a missing CSR is not reported"
[ "$(dev 1-5.4 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "1-5.4 fuses"
pass "enroll = csr: the certificate carries the device's key (openssl); a board without its CSR FAILs, fuses burned"

# --- dry-run mode, a wrong module, and the log retention ------------------------------------
"$FUSELINE" fuse-xml --package test.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml --test -q >/dev/null
"$VLINE" add "$L" 1-6.1 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-6.2 orin-nx-16gb >/dev/null
mkdir -p logs/board-20200101T000000Z-1-9 logs/keep-me && head -c 1000 /dev/urandom > logs/board-20200101T000000Z-1-9/old.log
touch -d '40 days ago' logs/board-20200101T000000Z-1-9
station_conf "ports = 1-6.1, 1-6.2" "mode = dry-run" "package = test.tbz2" "log-keep-days = 30"
sed -i '/^allow-lab-keys/d' station.conf
st_run --boards 2
[ "$RC" -eq 1 ] || fail "dry run + wrong module: exit $RC"
grep -q "dry run: the board processed every fuse and burned none (read back); not enrolled" "$T/out" || fail "no dry-run PASS"
[ "$(dev 1-6.1 'd["burns"], d["burns_effective"]')" = "(1, 0)" ] || fail "dry run: $(dev 1-6.1 'd["burns"], d["burns_effective"]')"
grep -q "FAIL  port 1-6.2  ECID (not read)" "$T/out" && grep -q "wrong module: this station makes Orin Nano 8GB (P3767-0003), the board is Orin NX 16GB" "$T/out" ||
  fail "the wrong module is not reported"
untouched 1-6.2
[ ! -e logs/board-20200101T000000Z-1-9 ] || fail "a board log older than log-keep-days was kept"
[ -d logs/keep-me ] || fail "the retention rule deleted something that is not a board log"
pass "dry run burns nothing; another module is refused untouched; board logs past log-keep-days are deleted, nothing else"

expect_rc 0 "verify ledger with every board on the record" "$FUSELINE" verify ledger --json
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["dangling_intents"]==[], o' "$T/out" || fail "dangling intents remain"
st_events=$(events "station record")
for e in "$E1" "$E2" "$E3" "$E4"; do
  grep -q " $e$" <<< "$st_events" || fail "board $e has no station event"
done
pass "every board is accounted for in the ledger"
done_testing
