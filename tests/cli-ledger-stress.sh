# cli-ledger-stress.sh — the ledger under concurrent writers and crashes:
# 8 processes × 500 events at once (one transaction each) lose nothing and
# keep one valid chain; writers killed with SIGKILL mid-loop and mid-batch
# leave a chain that verifies, every event whole, every batch all-or-none,
# and every event a writer reported as appended still there. Checked with
# `fuseline verify ledger`, tests/tools/ledger-chain.py and Python sqlite3.
. "$SRCDIR/tests/lib.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
CHAIN="python3 $SRCDIR/tests/tools/ledger-chain.py"
PROCS=${LEDGER_STRESS_PROCS:-8}
EACH=${LEDGER_STRESS_EACH:-500}

# Every event whole (its check value matches its padding); the events a
# writer printed are present with the hash it printed.
check_events() { # db [outputs...]
  python3 - "$@" <<'PY'
import hashlib, json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
stored = {}
for id_, d, h in db.execute("SELECT id, details, lower(hex(hash)) FROM events"):
    o = json.loads(d)
    if "check" in o:
        msg = "%s:%d:%s" % (o["writer"], o["seq"], o["pad"])
        assert hashlib.sha256(msg.encode()).hexdigest() == o["check"], ("torn event", id_)
    stored[id_] = h
for out in sys.argv[2:]:
    for line in open(out):
        i, h = line.split()
        assert stored.get(int(i)) == h, ("reported event missing or different", out, i)
PY
}

# ---- concurrent writers -----------------------------------------------------
"$W" --db c.db --count 1 --quiet --tag init
pids=()
for p in $(seq 1 "$PROCS"); do
  "$W" --db c.db --count "$EACH" --tag "p$p" --ecids 16 >"out.$p" 2>"err.$p" &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "writer $((i + 1)) failed: $(cat "err.$((i + 1))")"
done
pass "$PROCS writers × $EACH events finished"
N=$(sqlite3 c.db "SELECT count(*) FROM events")
[ "$N" -eq $((PROCS * EACH + 1)) ] || fail "expected $((PROCS * EACH + 1)) events, sqlite3 counts $N"
python3 - c.db "$PROCS" "$EACH" <<'PY' || fail "events lost or duplicated"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
seen = {}
for (d,) in db.execute("SELECT details FROM events"):
    o = json.loads(d)
    seen.setdefault(o["writer"], []).append(o["seq"])
for p in range(1, int(sys.argv[2]) + 1):
    s = seen.get("p%d" % p, [])
    assert sorted(s) == list(range(int(sys.argv[3]))), ("p%d" % p, len(s))
    assert s == sorted(s), ("p%d out of order" % p)
PY
pass "every writer's events present once, in its own order"
check_events c.db out.* || fail "a reported event is missing"
expect_rc 0 "verify ledger after the concurrent run" "$FUSELINE" verify ledger --db c.db
grep -q "$N events, chain intact" "$T/out" || fail "verify: $(cat "$T/out")"
$CHAIN c.db >/dev/null || fail "independent chain check after the concurrent run"
pass "one valid chain (independent recomputation agrees)"

# ---- kill -9 mid-loop -----------------------------------------------------------
"$W" --db k.db --count 1 --quiet --tag init
for round in 1 2 3 4 5; do
  "$W" --db k.db --count 100000 --pad 3000 --tag "k$round" >"kout.$round" 2>/dev/null &
  a=$!
  "$W" --db k.db --count 100000 --batch 25 --pad 500 --tag "b$round" >"bout.$round" 2>/dev/null &
  b=$!
  # Kill only once both have committed (each prints an event's id after its COMMIT): a round
  # whose writers committed nothing would test nothing. Then a random moment later, mid-loop.
  for _ in $(seq 1 300); do
    [ -s "kout.$round" ] && [ -s "bout.$round" ] && break
    kill -0 $a 2>/dev/null && kill -0 $b 2>/dev/null || break
    sleep 0.1
  done
  [ -s "kout.$round" ] && [ -s "bout.$round" ] || { kill -9 $a $b 2>/dev/null; fail "round $round: a writer committed nothing in 30 s"; }
  sleep "0.$((RANDOM % 5 + 1))"
  kill -9 $a $b || fail "round $round: a writer had already exited before the kill"
  wait $a $b 2>/dev/null || true
  expect_rc 0 "verify after SIGKILL round $round" "$FUSELINE" verify ledger --db k.db
  $CHAIN k.db >/dev/null || fail "independent chain check after SIGKILL round $round"
  # batches are all-or-none: a writer's batch events come in whole 25s
  nb=$(sqlite3 k.db "SELECT count(*) FROM events WHERE details LIKE '{\"writer\":\"b$round\"%'")
  [ "$nb" -gt 0 ] && [ $((nb % 25)) -eq 0 ] || fail "round $round: $nb events of a 25-event batch writer (torn transaction or none)"
  nk=$(sqlite3 k.db "SELECT count(*) FROM events WHERE details LIKE '{\"writer\":\"k$round\"%'")
  [ "$nk" -ge "$(wc -l < "kout.$round")" ] || fail "round $round: $nk events stored, the writer reported $(wc -l < "kout.$round")"
  [ "$nk" -lt 100000 ] || fail "round $round: the single writer finished before the kill"
done
check_events k.db kout.* bout.* || fail "after SIGKILL: a torn event or a reported event missing"
pass "SIGKILL: every event whole, batches all-or-none, reported events durable"
# the ledger is still writable after all that
run "$W" --db k.db --count 3 --tag after
[ "$RC" -eq 0 ] || fail "append after the crashes: $(cat "$T/err")"
expect_rc 0 "verify after appending post-crash" "$FUSELINE" verify ledger --db k.db

done_testing
