# line-station-spool.sh — `fuseline station` with a central ledger and a
# spool (store and forward) on the virtual line: started while the central
# ledger is unreachable (its share not mounted) with a backlog of spooled
# records, the station touches no board (enrolment needs the central
# ledger: the line stops, named); once the share is back it uploads the
# backlog, goes on with the central ledger and provisions the board there.
# Read back with sqlite3 and tests/tools/ledger-forwarded.py.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-station.sh"
: "${LEDGER_WRITER:?}"
station_setup --step-seconds 0.2
FWD="python3 $SRCDIR/tests/tools/ledger-forwarded.py"

st_bg() { "$VLINE" run "$L" -- "$FUSELINE" station --config station.conf --readback-delay 20 --poll 100 "$@" \
            >"$T/bgout" 2>"$T/bgerr" & BG=$!; }
wait_for() {
  for _ in $(seq $((${3:-60} * 10))); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "'$2' never appeared in $1: $(tail -5 "$1") / $(tail -5 "$T/bgerr")"
}
bg_wait() { set +e; wait "$BG"; RC=$?; set -e; }

C=$T/share/central.db
S=$T/spool.db
station_conf "ledger = $C" "spool = $S" "ports = 1-2.1"
# earlier commands on this station recorded while the share was away
run "$LEDGER_WRITER" --db "$C" --spool "$S" --count 3 --tag earlier --quiet
[ "$RC" -eq 0 ] && [ "$(sqlite3 "$S" "SELECT count(*) FROM events")" -eq 3 ] || fail "backlog: $(cat "$T/err")"

"$VLINE" add "$L" 1-2.1 orin-nano-8gb >/dev/null
E1=$(dev 1-2.1 'd["ecid"]')
st_bg --once
wait_for "$T/bgout" "CENTRAL LEDGER UNREACHABLE"
sleep 1
untouched 1-2.1
[ ! -e "$C" ] || fail "the central ledger appeared"
pass "central ledger unreachable: the line stops before a board is touched, naming why"

mkdir "$T/share"
wait_for "$T/bgout" "central ledger back: 3 spooled event(s) uploaded"
bg_wait
[ "$RC" -eq 0 ] || fail "station: exit $RC: $(tail -5 "$T/bgerr")"
grep -q "PASS  port 1-2.1  ECID $E1" "$T/bgout" || fail "the board did not pass: $(tail -20 "$T/bgout")"
[ "$(sqlite3 "$S" "SELECT count(*) FROM events")" -eq 3 ] || fail "the station wrote to the spool once back"
run $FWD "$C" "$S"
[ "$RC" -eq 0 ] && [ "$(cut -d' ' -f1-2 "$T/out")" = "3 1" ] || fail "independent check: $(cat "$T/out")"
[ "$(sqlite3 "$C" "SELECT count(*) FROM events WHERE command = 'station' AND outcome = 'pass' AND ecid = '$E1'")" -eq 1 ] \
  || fail "no station record on the central ledger"
[ "$(sqlite3 "$C" "SELECT count(*) FROM certificates WHERE ecid = '$E1' AND status = 'valid'")" -eq 1 ] \
  || fail "no certificate on the central ledger"
expect_rc 0 "verify the central ledger" "$FUSELINE" verify ledger --db "$C"
pass "back online: the backlog goes up first (in order), then the board is provisioned on the central ledger"

done_testing
