# line-station-survival.sh — the station keeps every record through what a
# shift throws at it: Ctrl-C mid-board (the board finishes, then exit 130),
# a restart mid-board (kill -9 during the burn: the open intent is resolved
# by read-back first), the token taken away and put back (the line stops,
# then resumes by itself), the ledger held by another writer, and a full
# disk (the line stops before a board is touched).
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-station.sh"
station_setup --step-seconds 0.2

# The station in the background: $BG is vline's process (umockdev-run), the
# station is its child fuseline.
st_bg() { "$VLINE" run "$L" -- "$FUSELINE" station --config station.conf --readback-delay 20 --poll 100 "$@" \
            >"$T/bgout" 2>"$T/bgerr" & BG=$!; }
station_pid() {
  local p kids
  for _ in $(seq 100); do
    for p in $(pgrep -P "$BG" || true) "$BG"; do
      [ "$(cat /proc/"$p"/comm 2>/dev/null)" = fuseline ] && { echo "$p"; return; }
    done
    sleep 0.1
  done
  fail "no station process under $BG"
}
# wait_for FILE TEXT [SECONDS]
wait_for() {
  for _ in $(seq $((${3:-60} * 10))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "'$2' never appeared in $1: $(tail -5 "$1")"
}
bg_wait() { set +e; wait "$BG"; RC=$?; set -e; }

# --- Ctrl-C mid-board: the board in progress finishes, no new one starts ------------
"$VLINE" add "$L" 1-2.1 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-2.2 orin-nano-8gb >/dev/null
E1=$(dev 1-2.1 'd["ecid"]')
st_bg
SP=$(station_pid)
wait_for "$T/bgout" "1-2.1: burning"
kill -INT "$SP"
sleep 0.5
kill -INT "$SP"   # the operator insists: still never abandons the burn
bg_wait
[ "$RC" -eq 130 ] || fail "Ctrl-C: exit $RC, expected 130"
grep -q "stopping after the board in progress" "$T/bgerr" || fail "the operator was not told: $(cat "$T/bgerr")"
grep -q "PASS  port 1-2.1  ECID $E1" "$T/bgout" || fail "the board in progress did not finish: $(tail -20 "$T/bgout")"
[ "$(dev 1-2.1 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "1-2.1 not burned"
untouched 1-2.2
[ "$(events "station record pass $E1")" = "station record pass $E1" ] || fail "no station event for the finished board"
pass "Ctrl-C mid-burn: the board finishes (PASS, on the record), the next is not started, exit 130"

# --- restart mid-board: kill -9 during the burn -------------------------------------------
E2=$(dev 1-2.2 'd["ecid"]')
station_conf "ports = 1-2.2"
st_bg --once
SP=$(station_pid)
wait_for "$T/bgout" "1-2.2: burning"
for _ in $(seq 100); do [ -n "$(events "burn intent pending $E2")" ] && break; sleep 0.1; done
[ -n "$(events "burn intent pending $E2")" ] || fail "no intent on record before the burn"
# Kill it while the burn tool runs (the intent is written just before the tool starts).
TOOL=
for _ in $(seq 100); do TOOL=$(pgrep -P "$SP" || true); [ -n "$TOOL" ] && break; sleep 0.05; done
[ -n "$TOOL" ] || fail "the burn tool never started"
kill -KILL "$SP"
bg_wait
# The tool runs on in its own process group (as after a crash); let it end.
for p in $TOOL; do for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
# Its output pipe lost its reader, so it may have died mid-step and left the
# MB2 applet running; as after any crash, the operator re-seats the board.
"$VLINE" fault "$L" 1-2.2 clear
"$FUSELINE" verify ledger --json > vl.json || true
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert len(o["dangling_intents"])==1, o' vl.json ||
  fail "the killed run left no dangling intent"
st_run --once --json
[ "$RC" -eq 0 ] || fail "restart: exit $RC: $(grep "\"result\"" "$T/out")"
python3 - "$T/out" "$E2" <<'PY' || fail "restart events"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [e["event"] for e in ev if "event" in e]
assert kinds.index("dangling-intents") < kinds.index("board-arrived"), kinds
assert [e for e in ev if e.get("event") == "dangling-intents"][0]["count"] == 1
r = [e for e in ev if e.get("event") == "result"][0]
assert r["ecid"] == sys.argv[2] and r["pass"] is True, r
PY
[ "$(dev 1-2.2 'd["fuses"]["SecurityMode"], d["burns_effective"]')" = "('00000001', 1)" ] ||
  fail "1-2.2 after the restart: $(dev 1-2.2 'd["burns"], d["burns_effective"], d["fuses"]')"
[ "$(events "burn result" | grep -c " $E2$")" -ge 1 ] || fail "the open intent was not closed"
expect_rc 0 "verify ledger after the restart" "$FUSELINE" verify ledger --json
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["dangling_intents"]==[], o' "$T/out" ||
  fail "the dangling intent is still open"
pass "restart mid-board: the open intent is shown first, resolved by read-back, the board passes; burned once"

# --- the token taken away and put back ---------------------------------------------------
"$VLINE" add "$L" 1-2.3 orin-nano-8gb >/dev/null
E3=$(dev 1-2.3 'd["ecid"]')
station_conf "ports = 1-2.3"
TOKDIR=$(sed -n 's/^directories.tokendir = //p' "$SOFTHSM2_CONF")
mv "$TOKDIR" "$TOKDIR.away"
st_bg --once
wait_for "$T/bgout" "LINE STOPPED: TOKEN NOT AVAILABLE"
grep -q '    ########  ##########    ######    ########  ' "$T/bgout" || fail "no block-letter STOP"
sleep 1
untouched 1-2.3
pass "token gone: the line stops with a clear screen before the board is touched"
mv "$TOKDIR.away" "$TOKDIR"
bg_wait
[ "$RC" -eq 0 ] || fail "token back: exit $RC: $(tail -5 "$T/bgerr")"
grep -q "line resumed" "$T/bgout" || fail "no 'line resumed'"
grep -q "PASS  port 1-2.3  ECID $E3" "$T/bgout" || fail "the board did not pass after the token came back"
openssl verify -CAfile ks-identity-ca.crt "certs/$E3.pem" >/dev/null || fail "certificate of $E3"
pin=$(cat "$FUSELINE_PIN_FILE")
assert_absent "$pin" "$T/bgout" "$T/bgerr"
pass "token back: the line resumes by itself, the board passes; the PIN never shown"

# --- the ledger held by another writer for a while ------------------------------------------
"$VLINE" add "$L" 1-2.4 orin-nano-8gb >/dev/null
E4=$(dev 1-2.4 'd["ecid"]')
station_conf "ports = 1-2.4"
python3 - "$T/ledger.db" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[1] + ".held", "w").close()
time.sleep(4)
db.execute("ROLLBACK")
PY
HOLDER=$!
for _ in $(seq 100); do [ -e "$T/ledger.db.held" ] && break; sleep 0.1; done
st_run --once
wait "$HOLDER"
[ "$RC" -eq 0 ] || fail "ledger held: exit $RC: $(cat "$T/err")"
[ "$(events " $E4" | cut -d' ' -f1-3 | tr '\n' ,)" = "burn record read,burn intent pending,burn result ok,burn record already-provisioned,enroll record ok,station record pass," ] ||
  fail "events of $E4 after the ledger was held: $(events " $E4" | tr '\n' ,)"
pass "ledger held by another writer: the station waits for it, every event of the board is on the record"

# --- a full disk stops the line before a board is touched --------------------------------------
"$VLINE" add "$L" 1-2.5 orin-nano-8gb >/dev/null
station_conf "ports = 1-2.5" "min-free-mb = 1048576"
st_bg --once
wait_for "$T/bgout" "LINE STOPPED: DISK FULL"
SP=$(station_pid)
kill -TERM "$SP"
bg_wait
[ "$RC" -eq 143 ] || fail "SIGTERM while the line is stopped: exit $RC"
untouched 1-2.5
[ "$(events "station record not-started")" != "" ] || fail "the untouched board is not on the record"
pass "disk full: the line stops before the board is touched; SIGTERM ends it (143), the board recorded as not started"

expect_rc 0 "verify ledger at the end" "$FUSELINE" verify ledger
done_testing
