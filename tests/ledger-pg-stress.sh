#!/usr/bin/env bash
# ledger-pg-stress.sh — many stations, one chain: PROCS (8) writer slots
# append EACH (500) events each to one PostgreSQL ledger, one transaction per
# event, while writers are SIGKILLed at random (and restarted, carrying on
# where the ledger says they stopped) and the server is crash-restarted once
# (pg_ctl restart -m immediate) in the middle. Afterwards, read with psql and
# tests/tools/ledger-chain.py only: every event a writer printed (it prints
# after its COMMIT returned) is there with the hash it printed, no event is
# there twice, every slot has exactly EACH, every event is whole, no two events
# share a predecessor, and `fuseline verify ledger` passes. A writer that
# fails other than by our SIGKILL (the restart must be retried through) fails
# the test.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-pg.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
PROCS=${LEDGER_STRESS_PROCS:-8}
EACH=${LEDGER_STRESS_EACH:-500}
pg_start
DB=$(pg_station_ledger fuseline)   # the writers have a station's rights (ledger-pg-roles.sql), no more
"$W" --db "$DB" --count 1 --quiet --tag init || fail "the first writer could not create the ledger"

# A run's events in the ledger (psql; retried while the server is restarting).
stored() { # tag
  local n i
  for i in $(seq 1 300); do
    n=$(pg_sql fuseline "SELECT count(*) FROM events WHERE details LIKE '{\"writer\":\"$1\",%'" 2>/dev/null) \
      && { echo "$n"; return 0; }
    sleep 0.2
  done
  echo "psql could not count $1's events for 60 s" >&2
  return 1
}

# One writer slot: runs the writer until the ledger holds EACH of the slot's events, a new run
# (tag pP.rR, so runs are told apart) after each kill. The writer's pid goes to pid.P for the killer.
slot() { # p
  local p=$1 have=0 r=0 rc n
  while [ "$have" -lt "$EACH" ]; do
    r=$((r + 1))
    "$W" --db "$DB" --count $((EACH - have)) --tag "p$p.r$r" --ecids 16 >"out.p$p.r$r" 2>"err.p$p.r$r" &
    echo $! > "pid.$p"
    wait $! && rc=0 || rc=$?
    rm -f "pid.$p"
    n=$(stored "p$p.r$r") || { echo "p$p.r$r: cannot count" >> failures; return 1; }
    if [ "$rc" -eq 137 ]; then
      echo "p$p.r$r" >> killed
    elif [ "$rc" -ne 0 ]; then
      echo "p$p.r$r exit $rc: $(tail -n 2 "err.p$p.r$r" | tr '\n' ' ')" >> failures
      return 1
    fi
    have=$((have + n))
    [ "$r" -lt 200 ] || { echo "p$p: 200 runs and not done" >> failures; return 1; }
  done
  echo "$r" > "runs.$p"
}

: > killed; : > failures
start=$(date +%s)
spids=()
# (the slots' stderr, bash's "Killed" notices, is not the test's: failures go to ./failures)
for p in $(seq 1 "$PROCS"); do slot "$p" 2>/dev/null & spids+=($!); done

# The killer: every 0.2-0.9 s a random slot's current writer gets SIGKILL; once about half the
# events are in, the server is crash-restarted (while writers are mid-transaction).
total=$((PROCS * EACH + 1))
restarted=0 kills=0
while :; do
  alive=0
  for sp in "${spids[@]}"; do kill -0 "$sp" 2>/dev/null && alive=1; done
  [ "$alive" -eq 1 ] || break
  [ $(($(date +%s) - start)) -lt 500 ] || { kill -9 "${spids[@]}" 2>/dev/null; fail "not done after 500 s"; }
  sleep "0.$((RANDOM % 8 + 2))"
  if [ "$restarted" -eq 0 ]; then
    n=$(pg_sql fuseline "SELECT count(*) FROM events" 2>/dev/null || echo 0)
    if [ "$n" -ge $((total / 2)) ]; then
      before=$n
      live=0
      for f in pid.*; do pid=$(cat "$f" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && live=$((live + 1)); done
      pg_restart immediate
      after=$(pg_sql fuseline "SELECT count(*) FROM events")
      restarted=1
      echo "# server crash-restarted at $before events ($after after recovery) under $live running writers"
      [ "$live" -gt 0 ] || fail "no writer was running when the server was restarted"
      continue
    fi
  fi
  p=$((RANDOM % PROCS + 1))

  if pid=$(cat "pid.$p" 2>/dev/null) && kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
done
for sp in "${spids[@]}"; do wait "$sp" || true; done
[ ! -s failures ] || fail "writers failed (not killed by the test):$(sed 's/^/ /' failures | tr '\n' ';')"
[ "$restarted" -eq 1 ] || fail "the run ended before the server restart (half of $total events never seen)"
echo "# $kills SIGKILLs, $(wc -l < killed) runs ended by one, $(cat runs.* | awk "{s+=\$1} END {print s}") runs in all, $(($(date +%s) - start)) s"
[ "$(wc -l < killed)" -ge 3 ] || fail "only $(wc -l < killed) writers were killed mid-run: the kills tested nothing"
pass "$PROCS writer slots × $EACH events with $(wc -l < killed) writers SIGKILLed and one server crash-restart"

# ---- what the ledger holds, read by psql -----------------------------------------------------
pg_sql fuseline "SELECT json_build_array(id, details, encode(hash, 'hex'), encode(prev_hash, 'hex')) FROM events ORDER BY id" \
  > rows.json || fail "psql cannot read the events"
if ! python3 - rows.json "$PROCS" "$EACH" killed out.p* <<'PY'; then
import collections, hashlib, json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
procs, each = int(sys.argv[2]), int(sys.argv[3])
killed = set(open(sys.argv[4]).read().split())
stored = {}                      # id -> hash
runs = collections.defaultdict(list)   # tag -> seqs in id order
ids = collections.defaultdict(list)    # tag -> ids in id order
prevs = collections.Counter()
for id_, details, h, prev in rows:
    stored[id_] = h
    prevs[prev] += 1
    d = json.loads(details)
    msg = "%s:%d:%s" % (d["writer"], d["seq"], d["pad"])
    assert hashlib.sha256(msg.encode()).hexdigest() == d["check"], ("torn event", id_)
    runs[d["writer"]].append(d["seq"])
    ids[d["writer"]].append(id_)
assert len(rows) == procs * each + 1, ("events", len(rows), procs * each + 1)
shared = [p for p, c in prevs.items() if c > 1]
assert not shared, ("events share a predecessor", shared[:3])
per_slot = collections.Counter()
for tag, seqs in runs.items():
    if tag == "init":
        continue
    # a run appends seq 0, 1, 2, … one transaction each: the ledger holds a prefix, once each, in order
    if seqs != list(range(len(seqs))):
        c = collections.Counter(seqs)
        bad = next(i for i, q in enumerate(seqs) if q != i)
        raise AssertionError("run %s: %d events; twice: %s; missing: %s; first wrong at position %d: seqs %s ids %s"
                             % (tag, len(seqs), sorted(q for q, n in c.items() if n > 1)[:10],
                                sorted(set(range(max(seqs) + 1)) - set(seqs))[:10], bad,
                                seqs[max(0, bad - 3):bad + 4], ids[tag][max(0, bad - 3):bad + 4]))
    per_slot[tag.split(".")[0]] += len(seqs)
for p in range(1, procs + 1):
    assert per_slot["p%d" % p] == each, ("slot p%d holds %d events" % (p, per_slot["p%d" % p]))
for out in sys.argv[5:]:
    tag = out.split("out.", 1)[1]
    printed = [l.split() for l in open(out) if l.strip()]
    for i, h in printed:
        assert stored.get(int(i)) == h, ("%s printed event %s as committed; the ledger lacks it" % (tag, i))
    extra = len(runs.get(tag, [])) - len(printed)
    # killed between its COMMIT and its print: at most one event more than printed
    assert extra == 0 or (tag in killed and extra == 1), ("%s: %d stored, %d printed" % (tag, len(runs.get(tag, [])), len(printed)))
PY
  # what the writers said (the ledger logs how it resolved each lost COMMIT)
  for f in err.p*; do if [ -s "$f" ]; then sed "s/^/# $f: /" "$f"; fi; done
  fail "events lost, duplicated, torn or sharing a predecessor"
fi
pass "every event a writer saw committed is there, none twice, every slot has $EACH, every event whole, no shared predecessor"

run python3 "$SRCDIR/tests/tools/ledger-chain.py" "$DB"
[ "$RC" -eq 0 ] || fail "the independent chain recomputation: $(cat "$T/out") $(cat "$T/err")"
[ "$(cut -d' ' -f1 "$T/out")" -eq $((PROCS * EACH + 1)) ] || fail "chain length $(cat "$T/out")"
HEAD=$(cut -d' ' -f2 "$T/out")
expect_rc 0 "verify ledger after the run" "$FUSELINE" verify ledger --db "$DB" --json
python3 - "$T/out" $((PROCS * EACH + 1)) "$HEAD" <<'PY' || fail "verify ledger: $(head -c 400 "$T/out")"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["ok"] is True and o["fault"] is None, o
assert o["events"] == int(sys.argv[2]) and o["head"]["hash"] == sys.argv[3], (o["events"], o["head"])
PY
pass "verify ledger PASS, its head the independent recomputation's"

# still writable, and the server's sequence of ids continues the chain
run "$W" --db "$DB" --count 3 --tag after
[ "$RC" -eq 0 ] || fail "append after the run: $(cat "$T/err")"
[ "$(tail -n 1 "$T/out" | cut -d' ' -f1)" -eq $((PROCS * EACH + 4)) ] || fail "ids after the run: $(cat "$T/out")"
expect_rc 0 "verify after appending post-run" "$FUSELINE" verify ledger --db "$DB"
done_testing
