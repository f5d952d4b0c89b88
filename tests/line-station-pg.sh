# line-station-pg.sh — `fuseline station` with its ledger on PostgreSQL (a
# throw-away server, tests/lib-pg.sh, the station as a fuseline_station login
# role) and a local spool, on the virtual line: a board provisioned on the
# server; the server stopped: the next board's records go to the spool and
# its enrolment is refused (identities are never issued offline); the server
# started again: the station uploads the spool by itself, then provisions a
# board on the server. Read back with psql and sqlite3, never through
# fuseline; `verify ledger` on the server at the end.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-station.sh"
. "$SRCDIR/tests/lib-pg.sh"
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

pg_start
C="$(pg_station_ledger fuseline)&connect_timeout=2"
S=$T/spool.db
station_conf "ledger = $C" "spool = $S" "ports = 1-2.1"
q() { pg_sql fuseline "$@"; }

# ---- online: a board provisioned on the server -----------------------------------------
"$VLINE" add "$L" 1-2.1 orin-nano-8gb >/dev/null
E1=$(dev 1-2.1 'd["ecid"]')
st_bg --once
wait_for "$T/bgout" "PASS  port 1-2.1  ECID $E1"
[ "$(q "SELECT count(*) FROM events WHERE command = 'station' AND outcome = 'pass' AND ecid = '$E1'")" -eq 1 ] ||
  fail "no station record on the server"
[ "$(q "SELECT count(*) FROM certificates WHERE ecid = '$E1' AND status = 'valid'")" -eq 1 ] ||
  fail "no certificate on the server"
[ "$(q "SELECT state FROM devices WHERE ecid = '$E1'")" = enrolled ] || fail "device row: $(q "SELECT * FROM devices")"
[ ! -e "$S" ] || fail "the spool was used while the server was up"
pass "server up: the board provisioned on PostgreSQL (psql reads the record, certificate and device row)"

bg_wait
[ "$RC" -eq 0 ] || fail "station run 1: exit $RC: $(tail -5 "$T/bgerr")"
expect_rc 0 "verify the server's ledger" "$FUSELINE" verify ledger --db "$C"

# ---- the server stops ---------------------------------------------------------------------
# Earlier commands on this station while it was down went to the spool; then the station is
# started with a board waiting: identities are never issued offline, so the line stops before
# the board is touched, naming why.
pg_stop
run "$LEDGER_WRITER" --db "$C" --spool "$S" --count 3 --tag offline --quiet
[ "$RC" -eq 0 ] && [ "$(sqlite3 "$S" "SELECT count(*) FROM events")" -eq 3 ] || fail "backlog: $(cat "$T/err")"
"$VLINE" add "$L" 1-2.2 orin-nano-8gb >/dev/null
station_conf "ledger = $C" "spool = $S" "ports = 1-2.2"
E2=$(dev 1-2.2 'd["ecid"]')
st_bg --once
wait_for "$T/bgout" "CENTRAL LEDGER UNREACHABLE"
sleep 1
untouched 1-2.2
[ "$(sqlite3 "$S" "SELECT count(*) FROM events")" -eq 3 ] || fail "the station recorded a board offline"
pass "server down: 3 events in the spool, the line stops before the board is touched"

# ---- the server is back: the station uploads the spool by itself, then provisions -------
pg_start
wait_for "$T/bgout" "central ledger back: 3 spooled event(s) uploaded" 90
bg_wait
[ "$RC" -eq 0 ] || fail "station run 2: exit $RC: $(tail -5 "$T/bgerr")"
grep -q "PASS  port 1-2.2  ECID $E2" "$T/bgout" || fail "the board did not pass: $(tail -20 "$T/bgout")"
[ "$(sqlite3 "$S" "SELECT count(*) FROM events")" -eq 3 ] || fail "the station wrote to the spool once back"
run $FWD "$PG_URI" "$S"
[ "$RC" -eq 0 ] && [ "$(cut -d' ' -f1 "$T/out")" = 3 ] || fail "independent check: $(cat "$T/out")"
[ "$(q "SELECT count(*) FROM events WHERE command = 'station' AND outcome = 'pass' AND ecid = '$E2'")" -eq 1 ] ||
  fail "no station record for the second board on the server"
[ "$(q "SELECT count(*) FROM certificates WHERE ecid = '$E2' AND status = 'valid'")" -eq 1 ] ||
  fail "no certificate for the second board on the server"
# the uploaded events sit before the board's on the server's chain
[ "$(q "SELECT max(id) FROM events WHERE fuseline_jsonb(details) ? 'forwarded'")" -lt \
  "$(q "SELECT min(id) FROM events WHERE ecid = '$E2'")" ] || fail "the backlog was not uploaded first"
python3 "$SRCDIR/tests/tools/ledger-chain.py" "$PG_URI" >/dev/null || fail "the server's chain does not recompute"
expect_rc 0 "verify the server's ledger" "$FUSELINE" verify ledger --db "$C"
expect_rc 0 "verify the spool against the server" "$FUSELINE" verify ledger --db "$C" --spool "$S"
pass "server back: the station uploaded its spool by itself, then provisioned the board on PostgreSQL"

done_testing
