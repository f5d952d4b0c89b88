# cli-ledger-stress.sh — the ledger under concurrent writers and crashes:
# 8 processes × 500 events at once (one transaction each) lose nothing and
# keep one valid chain; writers killed with SIGKILL mid-loop and mid-batch
# leave a chain that verifies, every event whole, every batch all-or-none,
# and every event a writer reported as appended still there. Checked with
# `fuseline verify ledger`, tests/tools/ledger-chain.py and Python sqlite3
# (psql on PostgreSQL: cli-ledger-stress-pg, tests/lib-ledger.sh).
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-ledger.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
PROCS=${LEDGER_STRESS_PROCS:-8}
EACH=${LEDGER_STRESS_EACH:-500}

# Every event whole (its check value matches its padding); the events a
# writer printed are present with the hash it printed.
check_events() { # ledger [outputs...]
  python3 - "$SRCDIR/tests/tools" "$@" <<'PY'
import hashlib, json, sys
sys.path.insert(0, sys.argv.pop(1))
chain = __import__("ledger-chain")
stored = {}
for r in chain.events(sys.argv[1]):
    id_, d, h = r[0], r[9], r[11].hex()
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
C=$(ldb c)
"$W" --db "$C" --count 1 --quiet --tag init
pids=()
for p in $(seq 1 "$PROCS"); do
  "$W" --db "$C" --count "$EACH" --tag "p$p" --ecids 16 >"out.$p" 2>"err.$p" &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "writer $((i + 1)) failed: $(cat "err.$((i + 1))")"
done
pass "$PROCS writers × $EACH events finished"
N=$(lsql c "SELECT count(*) FROM events")
[ "$N" -eq $((PROCS * EACH + 1)) ] || fail "expected $((PROCS * EACH + 1)) events, $LB's client counts $N"
python3 - "$SRCDIR/tests/tools" "$C" "$PROCS" "$EACH" <<'PY' || fail "events lost or duplicated"
import json, sys
sys.path.insert(0, sys.argv.pop(1))
chain = __import__("ledger-chain")
seen = {}
for r in chain.events(sys.argv[1]):
    o = json.loads(r[9])
    seen.setdefault(o["writer"], []).append(o["seq"])
for p in range(1, int(sys.argv[2]) + 1):
    s = seen.get("p%d" % p, [])
    assert sorted(s) == list(range(int(sys.argv[3]))), ("p%d" % p, len(s))
    assert s == sorted(s), ("p%d out of order" % p)
PY
pass "every writer's events present once, in its own order"
check_events "$C" out.* || fail "a reported event is missing"
expect_rc 0 "verify ledger after the concurrent run" "$FUSELINE" verify ledger --db "$C"
grep -q "$N events, chain intact" "$T/out" || fail "verify: $(cat "$T/out")"
lchain c >/dev/null || fail "independent chain check after the concurrent run"
pass "one valid chain (independent recomputation agrees)"

# ---- kill -9 mid-loop -----------------------------------------------------------
K=$(ldb k)
"$W" --db "$K" --count 1 --quiet --tag init
for round in 1 2 3 4 5; do
  "$W" --db "$K" --count 100000 --pad 3000 --tag "k$round" >"kout.$round" 2>/dev/null &
  a=$!
  "$W" --db "$K" --count 100000 --batch 25 --pad 500 --tag "b$round" >"bout.$round" 2>/dev/null &
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
  expect_rc 0 "verify after SIGKILL round $round" "$FUSELINE" verify ledger --db "$K"
  lchain k >/dev/null || fail "independent chain check after SIGKILL round $round"
  # batches are all-or-none: a writer's batch events come in whole 25s
  nb=$(lsql k "SELECT count(*) FROM events WHERE details LIKE '{\"writer\":\"b$round\"%'")
  [ "$nb" -gt 0 ] && [ $((nb % 25)) -eq 0 ] || fail "round $round: $nb events of a 25-event batch writer (torn transaction or none)"
  nk=$(lsql k "SELECT count(*) FROM events WHERE details LIKE '{\"writer\":\"k$round\"%'")
  [ "$nk" -ge "$(wc -l < "kout.$round")" ] || fail "round $round: $nk events stored, the writer reported $(wc -l < "kout.$round")"
  [ "$nk" -lt 100000 ] || fail "round $round: the single writer finished before the kill"
done
check_events "$K" kout.* bout.* || fail "after SIGKILL: a torn event or a reported event missing"
pass "SIGKILL: every event whole, batches all-or-none, reported events durable"
# the ledger is still writable after all that
run "$W" --db "$K" --count 3 --tag after
[ "$RC" -eq 0 ] || fail "append after the crashes: $(cat "$T/err")"
expect_rc 0 "verify after appending post-crash" "$FUSELINE" verify ledger --db "$K"

done_testing
