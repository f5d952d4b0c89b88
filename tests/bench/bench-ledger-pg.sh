#!/usr/bin/env bash
# Benchmark (not a timed test): the ledger on PostgreSQL against the ledger
# on SQLite, on this machine, same test-only writer, same events.
#   1. appends/s, one transaction per event, one writer (baseline: SQLite,
#      WAL + synchronous=FULL; PostgreSQL: a throw-away local server on its
#      Unix socket, fsync and synchronous_commit on — tests/lib-pg.sh).
#   2. `fuseline ledger show ECID` latency on a ledger of BENCH_EVENTS
#      (200,000) events, process start included (baseline: the same on SQLite;
#      for scale each backend's own client selecting the same rows).
#   3. WRITERS (8) concurrent writer processes: their total events/s against
#      one writer's on the same backend (one chain: the lock serialises
#      appends, so the ratio shows what the lock and the contention cost).
# Prints ratios with the baseline named; never fails on the figures.
#
#   meson test -C build --benchmark -v bench-ledger-pg
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-pg.sh"
. "$SRCDIR/tests/bench/lib-bench.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
N=${BENCH_APPENDS:-1000}
EVENTS=${BENCH_EVENTS:-200000}
WRITERS=${BENCH_WRITERS:-8}
SHOWS=${BENCH_N:-20}
E=80012344705df1172c0000000dbe4c00
pg_start
now() { date +%s%N; }
rate() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.0f", n / (ns / 1e9) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
count() { # location: its events, counted by the backend's own client
  if [[ $1 == postgresql://* ]]; then "$PG_BINDIR/psql" -XAtq -d "$1" -c "SELECT count(*) FROM events"
  else sqlite3 "$1" "SELECT count(*) FROM events"; fi
}
PGA=$(pg_newdb appends); PGC=$(pg_newdb concurrent); PGS=$(pg_newdb show)

# ---- 1. appends/s, one writer, one transaction per event -------------------------------------------
one_writer() { # location -> ns for N events
  local t0
  "$W" --db "$1" --count 1 --quiet           # schema outside the timing
  t0=$(now)
  "$W" --db "$1" --count "$N" --ecid $E --pad 40 --quiet
  echo $(( $(now) - t0 ))
  [ "$(count "$1")" -eq $((N + 1)) ] || fail "$1 lost events"
  "$FUSELINE" verify ledger --db "$1" >/dev/null || fail "$1 does not verify"
}
sq_ns=$(one_writer "$T/appends.db")
pg_ns=$(one_writer "$PGA")
sq_rate=$(rate "$N" "$sq_ns"); pg_rate=$(rate "$N" "$pg_ns")
echo "appends, one writer, one transaction per event ($N events):"
echo "  SQLite (baseline) $sq_rate events/s; PostgreSQL $pg_rate events/s; ratio PostgreSQL/SQLite $(ratio "$pg_rate" "$sq_rate")"
echo "  physical limit here: synchronous 4 KiB writes (dd oflag=dsync) $(fsync_rate "$T")/s"

# ---- 2. ledger show latency on a big ledger -------------------------------------------------------
# The device's ten events through the writer first, then EVENTS bulk rows (random hashes:
# `ledger show` reads, it does not check the chain) by each backend's own client.
"$W" --db "$T/show.db" --count 10 --ecid $E --state enrolled --chip t234 --serial SN-BENCH --quiet
"$W" --db "$PGS" --count 10 --ecid $E --state enrolled --chip t234 --serial SN-BENCH --quiet
t0=$(now)
sqlite3 "$T/show.db" <<EOF
BEGIN;
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $EVENTS)
INSERT INTO events (id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash)
SELECT n + 10, strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + n, 'unixepoch'), 'bench-st', 'bench-op',
       CASE n % 3 WHEN 0 THEN 'burn' WHEN 1 THEN 'enroll' ELSE 'keygen' END,
       printf('%032x', n % ($EVENTS / 10)), 'record', NULL, 'ok', '{"bench":' || n || '}',
       randomblob(32), randomblob(32)
FROM c;
COMMIT;
EOF
t1=$(now)
# (as superuser with triggers skipped, so the bulk load is not the high-water trigger's 200,000 calls;
# the high-water mark is set once afterwards)
pg_sql show "SET session_replication_role = replica;
INSERT INTO events (id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash)
SELECT n + 10, to_char(to_timestamp(1700000000 + n) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
       'bench-st', 'bench-op', (ARRAY['burn', 'enroll', 'keygen'])[n % 3 + 1],
       lpad(to_hex(n % ($EVENTS / 10)), 32, '0'), 'record', NULL, 'ok', '{\"bench\":' || n || '}',
       decode(md5('p' || n) || md5('q' || n), 'hex'), decode(md5('h' || n) || md5('i' || n), 'hex')
FROM generate_series(1, $EVENTS) n;
UPDATE events_high_water SET id = $EVENTS + 10;
ANALYZE events;" || fail "bulk load into PostgreSQL"
t2=$(now)
for db in "$T/show.db" "$PGS"; do
  [ "$(count "$db")" -eq $((EVENTS + 10)) ] || fail "$db holds $(count "$db") events"
  "$FUSELINE" ledger show $E --db "$db" --json > show.json || fail "ledger show on $db"
  [ "$(jget show.json 'len(d["events"])')" -eq 10 ] || fail "ledger show on $db lists $(jget show.json 'len(d["events"])') events"
  E2=$(printf '%032x' $((4242 % (EVENTS / 10))))
  [ "$("$FUSELINE" ledger show "$E2" --db "$db" --json | jget /dev/stdin 'len(d["events"])')" -eq 10 ] \
    || fail "ledger show of a bulk device on $db"
done
echo "built two ledgers of $((EVENTS + 10)) events: SQLite in $(( (t1 - t0) / 1000000 )) ms, PostgreSQL in $(( (t2 - t1) / 1000000 )) ms"
time_it() { local t0 i; t0=$(now); for ((i = 0; i < SHOWS; i++)); do "$@" >/dev/null 2>&1; done; echo $(( ($(now) - t0) / SHOWS )); }
sq_show=$(time_it "$FUSELINE" ledger show $E --db "$T/show.db")
pg_show=$(time_it "$FUSELINE" ledger show $E --db "$PGS")
sq_cli=$(time_it sqlite3 "$T/show.db" "SELECT * FROM events WHERE ecid = '$E' ORDER BY id")
pg_cli=$(time_it "$PG_BINDIR/psql" -XAtq -d "$PGS" -c "SELECT * FROM events WHERE ecid = '$E' ORDER BY id")
awk -v s="$sq_show" -v p="$pg_show" -v sc="$sq_cli" -v pc="$pg_cli" -v n=$((EVENTS + 10)) 'BEGIN {
  printf "ledger show on %d events (mean of process runs): SQLite (baseline) %.1f ms; PostgreSQL %.1f ms; ratio PostgreSQL/SQLite %.2f\n", n, s/1e6, p/1e6, p/s
  printf "  for scale, each backend'"'"'s own client, same select: sqlite3 %.1f ms, psql %.1f ms\n", sc/1e6, pc/1e6
}'

# ---- 3. WRITERS concurrent writers against one -------------------------------------------------------
concurrent() { # location -> ns for WRITERS x N/WRITERS events
  local t0 p each=$((N / WRITERS)) pids=()
  "$W" --db "$1" --count 1 --quiet
  t0=$(now)
  for p in $(seq 1 "$WRITERS"); do "$W" --db "$1" --count "$each" --tag "w$p" --ecids 16 --quiet & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || fail "a concurrent writer failed on $1"; done
  echo $(( $(now) - t0 ))
  [ "$(count "$1")" -eq $((each * WRITERS + 1)) ] || fail "$1 lost events"
  "$FUSELINE" verify ledger --db "$1" >/dev/null || fail "$1 does not verify after concurrent writers"
}
M=$(( (N / WRITERS) * WRITERS ))
sq_cns=$(concurrent "$T/concurrent.db")
pg_cns=$(concurrent "$PGC")
sq_c=$(rate "$M" "$sq_cns"); pg_c=$(rate "$M" "$pg_cns")
echo "$WRITERS concurrent writers, $M events in all, one chain:"
echo "  PostgreSQL $pg_c events/s in total against one writer's $pg_rate (baseline): ratio $(ratio "$pg_c" "$pg_rate")"
echo "  SQLite $sq_c events/s in total against one writer's $sq_rate (baseline): ratio $(ratio "$sq_c" "$sq_rate")"
echo "  ($(nproc) cores shared with whatever else runs; every event is one fsynced commit on either backend)"
