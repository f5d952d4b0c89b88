#!/usr/bin/env bash
# Benchmark (not a timed test): `fuseline ledger show ECID` on a ledger of
# 1,000,000 events (100,000 devices, 10 events each). The bulk rows are
# inserted with sqlite3's recursive CTE — their hashes are random, which
# `ledger show` does not look at (it reads; `verify ledger` checks chains) —
# then ten real events for the device shown are appended through lib/ledger
# by the test-only writer. Baseline: the same rows selected by the sqlite3
# CLI. Prints mean times and the ratio; the issue's target is well under
# 50 ms, which the events_ecid index makes independent of the ledger size.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
: "${LEDGER_WRITER:?}"
EVENTS=${BENCH_EVENTS:-1000000}
N=${BENCH_N:-20}
DB=$T/big.db
E=80012344705df1172c0000000dbe4c00

"$LEDGER_WRITER" --db "$DB" --count 1 --ecid 80012344705df1172c0000000d000000 --quiet
t0=$(date +%s%N)
sqlite3 "$DB" <<EOF
BEGIN;
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $EVENTS)
INSERT INTO events (id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash)
SELECT n + 1, strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + n, 'unixepoch'), 'bench-st', 'bench-op',
       CASE n % 3 WHEN 0 THEN 'burn' WHEN 1 THEN 'enroll' ELSE 'keygen' END,
       printf('%032x', n % ($EVENTS / 10)), 'record', NULL, 'ok', '{"bench":' || n || '}',
       randomblob(32), randomblob(32)
FROM c;
COMMIT;
EOF
t1=$(date +%s%N)
"$LEDGER_WRITER" --db "$DB" --count 10 --ecid $E --state enrolled --chip t234 --serial SN-BENCH --quiet
total=$(sqlite3 "$DB" "SELECT count(*) FROM events")
[ "$total" -ge "$EVENTS" ] || fail "only $total events"
echo "built a ledger of $total events in $(( (t1 - t0) / 1000000 )) ms ($(du -h "$DB" | cut -f1))"

"$FUSELINE" ledger show $E --db "$DB" > show.txt || fail "ledger show failed"
"$FUSELINE" ledger show $E --db "$DB" --json > show.json || fail "ledger show --json failed"
[ "$(jget show.json 'len(d["events"])')" -eq 10 ] || fail "ledger show lists $(jget show.json 'len(d["events"])') events, expected 10"
# a device among the CTE rows, to show it is the index and not luck
E2=$(printf '%032x' 4242)
[ "$("$FUSELINE" ledger show "$E2" --db "$DB" --json | jget /dev/stdin 'len(d["events"])')" -eq 10 ] || fail "bulk device"

now() { date +%s%N; }
time_it() { local t0 t1 i; t0=$(now); for ((i = 0; i < N; i++)); do "$@" >/dev/null 2>&1; done; t1=$(now); echo $(( (t1 - t0) / N )); }
ours=$(time_it "$FUSELINE" ledger show $E --db "$DB")
oursj=$(time_it "$FUSELINE" ledger show $E --db "$DB" --json)
base=$(time_it sqlite3 "$DB" "SELECT * FROM events WHERE ecid = '$E' ORDER BY id")
scan=$(time_it sqlite3 "$DB" "SELECT * FROM events NOT INDEXED WHERE ecid = '$E' ORDER BY id")
awk -v a="$ours" -v j="$oursj" -v b="$base" -v s="$scan" -v n="$total" 'BEGIN {
  printf "ledger show on %d events: %.1f ms (--json %.1f ms); sqlite3 CLI indexed select: %.1f ms; ratio %.2f\n", n, a/1e6, j/1e6, b/1e6, a/b
  printf "for scale, the same select without the index: %.1f ms\n", s/1e6
}'
