#!/usr/bin/env bash
# Benchmark (not a timed test): ledger append throughput, one event per
# transaction as burn and enroll write them (BEGIN IMMEDIATE, read the chain
# tail, SHA-256 over the canonical bytes, INSERT, COMMIT with
# synchronous=FULL), against the sqlite3 CLI inserting the same number of
# rows of the same shape and size, each in its own transaction, with the same
# journal mode (WAL) and synchronous=FULL. Both are bound by the fsync per
# commit; the ratio shows what the ledger's work adds on top. Also printed
# for scale: the same events in batches of 100 per transaction, and the
# physical limit: synchronous 4 KiB writes per second in the same directory.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/bench/lib-bench.sh"
: "${LEDGER_WRITER:?}"
N=${BENCH_EVENTS:-2000}
E=80012344705df1172c0000000d020080

now() { date +%s%N; }

# fuseline: the test-only writer appends through lib/ledger
"$LEDGER_WRITER" --db ours.db --count 1 --quiet   # schema created outside the timing
t0=$(now)
"$LEDGER_WRITER" --db ours.db --count "$N" --ecid $E --pad 40 --quiet
t1=$(now)
[ "$(sqlite3 ours.db "SELECT count(*) FROM events")" -eq $((N + 1)) ] || fail "ledger lost events"
"$FUSELINE" verify ledger --db ours.db >/dev/null || fail "the benchmark ledger does not verify"
ROW=$(sqlite3 ours.db "SELECT length(time)+length(station)+length(operator)+length(command)+length(ecid)+length(details) FROM events WHERE id = 2")

# baseline: sqlite3 CLI, same table shape and row size, one transaction per row
DETAILS=$(sqlite3 ours.db "SELECT details FROM events WHERE id = 2" | sed "s/'/''/g")
{
  echo "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
  echo "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, station TEXT NOT NULL,
        operator TEXT NOT NULL, command TEXT NOT NULL, ecid TEXT, kind TEXT NOT NULL, intent_id INTEGER,
        outcome TEXT NOT NULL, details TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL) STRICT;"
  echo "CREATE INDEX events_ecid ON events(ecid) WHERE ecid IS NOT NULL;"
  echo "CREATE INDEX events_intent ON events(intent_id) WHERE intent_id IS NOT NULL;"
} > base.sql
sqlite3 base.db < base.sql >/dev/null
for ((i = 0; i < N; i++)); do
  echo "BEGIN IMMEDIATE; INSERT INTO events (time, station, operator, command, ecid, kind, outcome, details, prev_hash, hash)
        VALUES (strftime('%Y-%m-%dT%H:%M:%SZ','now'), 'vm', 'root', 'test', '$E', 'record', 'ok', '$DETAILS', randomblob(32), randomblob(32)); COMMIT;"
done > rows.sql
t2=$(now)
sqlite3 -cmd "PRAGMA synchronous = FULL" base.db < rows.sql
t3=$(now)
[ "$(sqlite3 base.db "SELECT count(*) FROM events")" -eq "$N" ] || fail "baseline lost rows"

# for scale: batches of 100 events per transaction through the ledger
"$LEDGER_WRITER" --db batch.db --count 1 --quiet
t4=$(now)
"$LEDGER_WRITER" --db batch.db --count "$N" --batch 100 --ecid $E --pad 40 --quiet
t5=$(now)

fsr=$(fsync_rate "$T")
awk -v n="$N" -v a=$((t1 - t0)) -v b=$((t3 - t2)) -v c=$((t5 - t4)) -v row="$ROW" -v fs="$fsr" 'BEGIN {
  ours = n / (a / 1e9); base = n / (b / 1e9); batch = n / (c / 1e9)
  printf "ledger append, one transaction per event: %d events in %.2f s = %.0f events/s (%d-byte rows)\n", n, a/1e9, ours, row
  printf "sqlite3 CLI, one transaction per row (WAL, synchronous=FULL): %.0f rows/s\n", base
  printf "ratio ledger/sqlite3: %.2f\n", ours / base
  printf "for scale, ledger in batches of 100 per transaction: %.0f events/s\n", batch
  printf "physical limit here: synchronous 4 KiB writes (dd oflag=dsync) %.0f/s\n", fs
}'
