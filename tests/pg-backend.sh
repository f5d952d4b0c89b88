#!/usr/bin/env bash
# pg-backend.sh — the PostgreSQL backend of the ledger (lib/ledger_pg.c) on a
# throw-away server (tests/lib-pg.sh): the schema it creates and migrates,
# what it refuses (a foreign database, a newer schema, a password in the URI),
# the guards, the dialect queries, the chain lock under concurrent writers and
# a server restart, a dropped connection inside a transaction, an unreachable
# server, and the roles of factory-scripts/ledger-pg-roles.sql. The storage
# is driven through the ldb_* interface by tests/tools/ldb-probe and through
# the CLI; everything expected is read back with psql, never with fuseline.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-pg.sh"
P=${LDB_PROBE:?}
F=$FUSELINE
pg_start
unset FUSELINE_DB

# probe_rc WANT WHAT ARGS…: ldb-probe's exit is the failure's errno.
probe_rc() {
  local want=$1 what=$2; shift 2
  run "$P" "$@"
  [ "$RC" -eq "$want" ] || fail "$what: ldb-probe exit $RC, expected $want"
  pass "$what (errno $want)"
}
msg_has() { grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1'"; }
SCHEMA_OBJECTS="SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"

# ---- create, identity, migrate -------------------------------------------
L=$(pg_newdb l1)
probe_rc 0 "open for writing creates the schema" open write "$L"
[ "$(cat "$T/out")" = "version 3" ] || fail "version: $(cat "$T/out")"
[ "$(pg_sql l1 "SELECT app_id, version FROM fuseline_ledger")" = "1179403335|3" ] || fail "marker row"
[ "$(pg_sql l1 "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relkind = 'r'
                AND relnamespace = 'public'::regnamespace")" \
  = "certificates,checkpoints,devices,events,events_high_water,forwarded,fuseline_ledger,spool_uploaded" ] \
  || fail "tables"
for g in events_no_update events_no_delete certificates_no_delete certificates_fixed devices_no_delete \
         checkpoints_no_update checkpoints_no_delete forwarded_no_update forwarded_no_delete \
         spool_uploaded_no_update spool_uploaded_no_delete; do
  [ "$(pg_sql l1 "SELECT count(*) FROM pg_trigger WHERE tgname = '$g' AND tgenabled = 'O'")" = 1 ] \
    || fail "guard trigger $g missing"
done
[ "$(pg_sql l1 "SELECT count(*) FROM pg_indexes WHERE indexname = 'certificates_one_valid'
                AND indexdef LIKE '%UNIQUE%WHERE (status = ''valid''%'")" = 1 ] || fail "partial unique index"
[ "$(pg_sql l1 "SELECT count(*) FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'u'
                AND pg_get_constraintdef(oid) = 'UNIQUE (prev_hash)'")" = 1 ] || fail "UNIQUE(prev_hash)"
pass "schema: the SQLite tables, the eleven guards, one valid certificate per ECID, unique predecessors"
n0=$(pg_sql l1 "$SCHEMA_OBJECTS")
probe_rc 0 "opening again" open write "$L"
[ "$(pg_sql l1 "$SCHEMA_OBJECTS")" = "$n0" ] || fail "a second open changed the schema"
probe_rc 0 "open for reading" open read "$L"

# Eight stations starting at once on an empty database: one schema.
L2=$(pg_newdb l2)
for i in 1 2 3 4 5 6 7 8; do "$P" open write "$L2" >"o$i" 2>"e$i" & done
wait
for i in 1 2 3 4 5 6 7 8; do [ "$(cat "o$i")" = "version 3" ] || fail "opener $i: $(cat "e$i")"; done
[ "$(pg_sql l2 "SELECT count(*) FROM fuseline_ledger")" = 1 ] || fail "marker rows after a racing start"
pass "eight writers opening an empty database at once create one schema (the schema lock)"

# A version-1 ledger (no checkpoints) is migrated in place.
pg_sql l2 "DROP TABLE checkpoints, forwarded, spool_uploaded" "UPDATE fuseline_ledger SET version = 1" >/dev/null
probe_rc 0 "read-only open of a version-1 ledger" open read "$L2"
[ "$(cat "$T/out")" = "version 1" ] || fail "read-only open migrated: $(cat "$T/out")"
probe_rc 0 "open for writing migrates 1 -> 3" open write "$L2"
[ "$(pg_sql l2 "SELECT version FROM fuseline_ledger")" = 3 ] || fail "version after migration"
[ "$(pg_sql l2 "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'forwarded_no_%'")" = 3 ] \
  || fail "forwarded guards after migration"
[ "$(pg_sql l2 "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'checkpoints_no_%'")" = 3 ] \
  || fail "checkpoint guards after migration"

pg_sql l2 "UPDATE fuseline_ledger SET version = 99" >/dev/null
probe_rc 22 "a newer schema is refused" open read "$L2"
msg_has "schema version 99 is newer than this fuseline understands"

# ---- what is refused -------------------------------------------------------
FOREIGN=$(pg_newdb foreign)
pg_sql foreign "CREATE TABLE orders (id int)" >/dev/null
probe_rc 22 "a database with other tables is not a ledger" open write "$FOREIGN"
msg_has "not a fuseline ledger"
[ "$(pg_sql foreign "$SCHEMA_OBJECTS")" = 1 ] || fail "the foreign database was written to"
expect_rc 2 "verify ledger on a foreign database" "$F" verify ledger --db "$FOREIGN"
grep -qF "not a fuseline ledger" "$T/err" || fail "CLI message: $(cat "$T/err")"
EMPTY=$(pg_newdb empty)
probe_rc 22 "reading an empty database" open read "$EMPTY"
msg_has "empty database, no fuseline ledger in it"
[ "$(pg_sql empty "$SCHEMA_OBJECTS")" = 0 ] || fail "a read-only open created something"

SECRET=Hunter2-s3cr3t
for uri in "postgresql://$PG_SUPER:$SECRET@/l1?host=$PG_SOCK" "postgresql:///l1?host=$PG_SOCK&password=$SECRET&user=$PG_SUPER"; do
  expect_rc 2 "a URI carrying a password" "$F" verify ledger --db "$uri"
  grep -qF "put the password in ~/.pgpass" "$T/err" || fail "message: $(cat "$T/err")"
  assert_absent "$SECRET" "$T/err" "$T/out"
done
# The password from a password file: a role the server asks one of.
pg_sql postgres "CREATE ROLE pwuser LOGIN PASSWORD '$SECRET' SUPERUSER" >/dev/null
sed -i "1i local all pwuser scram-sha-256" "$PG_DIR/data/pg_hba.conf"
_pg_ctl reload
sleep 0.5
PWURI="postgresql:///l1?host=$PG_SOCK&user=pwuser"
PGPASSFILE=/nonexistent expect_rc 2 "no password anywhere" "$F" verify ledger --db "$PWURI"
grep -qF "the server asks for a password" "$T/err" || fail "message: $(cat "$T/err")"
echo "*:*:*:pwuser:$SECRET" > pgpass && chmod 600 pgpass
PGPASSFILE=$T/pgpass expect_rc 0 "the password from PGPASSFILE" "$F" verify ledger --db "$PWURI"
assert_absent "$SECRET" "$T/err" "$T/out"

# ---- guards and errors -----------------------------------------------------
probe_rc 0 "three chained events" chain "$L" 3 a
probe_rc 0 "the event columns" q "$L" read 14 EVENT_COLS
[ "$(sed -n 2p "$T/out" | cut -d'|' -f1,3,6,8,9,10,13,14)" = 'i:2|t:a|n:|n:|t:ok|t:{"tag":"a","i":1}|t:integer|t:null' ] \
  || fail "EVENT_COLS row: $(sed -n 2p "$T/out")"
[ "$(sed -n 2p "$T/out" | cut -d'|' -f11)" = "b:$(pg_sql l1 "SELECT encode(hash, 'hex') FROM events WHERE id = 1" | sed 's/^//')" ] \
  || fail "event 2's prev_hash is not event 1's hash"
probe_rc 17 "UPDATE of an event" sql "$L" auto 0 "UPDATE events SET station = 'x' WHERE id = 1"
msg_has "fuseline ledger: events are append-only; UPDATE refused"
probe_rc 17 "DELETE of an event" sql "$L" auto 0 "DELETE FROM events WHERE id = 3"
msg_has "fuseline ledger: events are append-only; DELETE refused"
probe_rc 17 "TRUNCATE of the events" sql "$L" write 0 "TRUNCATE events CASCADE"
probe_rc 17 "an event sharing a predecessor" sql "$L" write 0 \
  "INSERT INTO events (id, time, station, operator, command, kind, outcome, details, prev_hash, hash)
   SELECT 100, time, station, operator, command, kind, outcome, details, prev_hash, hash FROM events WHERE id = 2"
msg_has "events_prev_hash_key"
# SQLSTATE -> errno as SQLite's constraint codes map: a value the column
# refuses (23514 CHECK, 23502 NOT NULL) is bad input; a cancelled statement
# (57014) says why.
probe_rc 22 "a CHECK violation" sql "$L" auto 0 \
  "INSERT INTO devices VALUES ('00000000000000000000000000000002', NULL, NULL, NULL, 'a', 'b', 'bogus')"
probe_rc 22 "a NOT NULL violation" sql "$L" auto 0 \
  "INSERT INTO devices VALUES ('00000000000000000000000000000002', NULL, NULL, NULL, NULL, 'b', 'blank')"
probe_rc 5 "a statement cancelled by statement_timeout" sql "$L" auto 0 \
  "SET statement_timeout = 50; SELECT pg_sleep(2)"
msg_has "the server canceled the statement"
probe_rc 22 "writing in a read-only open" sql "$L" read 0 \
  "INSERT INTO devices VALUES ('00000000000000000000000000000001', NULL, NULL, NULL, 'a', 'b', 'blank')"
msg_has "the database is read-only"
[ "$(pg_sql l1 "SELECT count(*) FROM events")" = 3 ] || fail "events changed"

# The guards verify looks for: present, enabled, calling the refusing function.
probe_rc 0 "guard query" q "$L" read 1 GUARD_EXISTS t:events_no_update
[ "$(cat "$T/out")" = "i:1" ] || fail "GUARD_EXISTS: $(cat "$T/out")"
pg_sql l1 "ALTER TABLE events DISABLE TRIGGER events_no_update" >/dev/null
"$P" q "$L" read 1 GUARD_EXISTS t:events_no_update > out2
[ "$(cat out2)" = "i:0" ] || fail "a disabled guard counted: $(cat out2)"
pg_sql l1 "ALTER TABLE events ENABLE TRIGGER events_no_update" >/dev/null
pg_sql l1 "CREATE OR REPLACE FUNCTION fuseline_refuse() RETURNS trigger LANGUAGE plpgsql AS
           \$\$BEGIN RETURN NEW; END\$\$" >/dev/null
"$P" q "$L" read 1 GUARD_EXISTS t:events_no_delete > out2
[ "$(cat out2)" = "i:0" ] || fail "a defused guard counted: $(cat out2)"
pg_sql l1 "CREATE OR REPLACE FUNCTION fuseline_refuse() RETURNS trigger LANGUAGE plpgsql AS
           \$\$BEGIN RAISE EXCEPTION USING MESSAGE = TG_ARGV[0]; END\$\$" >/dev/null
"$P" q "$L" read 1 GUARD_EXISTS t:events_no_delete > out2
[ "$(cat out2)" = "i:1" ] || fail "the restored guard: $(cat out2)"
pass "a disabled or defused guard is not counted"

# ---- dialect queries on rows written with psql -----------------------------
E=0123456789abcdef0123456789abcdef
pg_sql l1 "INSERT INTO events (id, time, station, operator, command, ecid, kind, outcome, details, prev_hash, hash) VALUES
  (10, 't', 's', 'o', 'c', '$E', 'record', 'ok', '{\"device\":{\"state\":\"fused\"}}', '\\x10', '\\x10'),
  (11, 't', 's', 'o', 'c', '$E', 'record', 'ok', '{\"certificate\":{\"sha256\":\"f1\",\"superseded\":[]}}', '\\x11', '\\x11'),
  (12, 't', 's', 'o', 'c', '$E', 'record', 'ok', 'not json {', '\\x12', '\\x12'),
  (13, 't', 's', 'o', 'c', '$E', 'record', 'ok', '{\"certificate\":{\"sha256\":\"f2\",\"superseded\":[\"f1\"]}}', '\\x13', '\\x13'),
  (14, 't', 's', 'o', 'c', '$E', 'record', 'ok', '{\"device\":[1]}', '\\x14', '\\x14');
  INSERT INTO devices VALUES ('$E', 't234', NULL, NULL, 'a', 'b', 'enrolled');
  INSERT INTO certificates (fingerprint, ecid, der, issuer, serial, not_before, not_after, status, added) VALUES
  ('f2', '$E', '\\x02', 'i', 's2', 'nb', 'na', 'valid', '2026-01-01T00:00:00Z'),
  ('f1', '$E', '\\x01', 'i', 's1', 'nb', 'na', 'superseded', '2026-01-01T00:00:00Z');" >/dev/null
"$P" q "$L" read 2 LAST_DEVICE_SNAPSHOT "t:$E" > out2 || fail "LAST_DEVICE_SNAPSHOT"
[ "$(cat out2)" = 'i:10|t:{"state": "fused"}' ] || fail "LAST_DEVICE_SNAPSHOT: $(cat out2)"
"$P" q "$L" read 1 COUNT_CERT_RECORDED "t:$E" t:f1 > out2 && [ "$(cat out2)" = i:1 ] || fail "recorded f1: $(cat out2)"
"$P" q "$L" read 1 COUNT_CERT_SUPERSEDED "t:$E" t:f1 > out2 && [ "$(cat out2)" = i:1 ] || fail "superseded f1: $(cat out2)"
"$P" q "$L" read 1 COUNT_CERT_SUPERSEDED "t:$E" t:f2 > out2 && [ "$(cat out2)" = i:0 ] || fail "superseded f2: $(cat out2)"
"$P" q "$L" read 4 CERTS_IN_ORDER > out2 && [ "$(paste -sd' ' out2)" = "t:f2|t:$E|b:02|t:valid t:f1|t:$E|b:01|t:superseded" ] \
  || fail "CERTS_IN_ORDER: $(cat out2)"
"$P" q "$L" read 1 CERTS_OF_ECID "t:$E" > out2 && [ "$(paste -sd' ' out2)" = "t:f2 t:f1" ] || fail "CERTS_OF_ECID: $(cat out2)"
pass "dialect queries: device snapshot (invalid JSON and a non-object skipped), certificate counts, insertion order"
"$P" q "$L" read 1 HIGH_WATER > out2 && [ "$(cat out2)" = i:14 ] || fail "HIGH_WATER: $(cat out2)"
pg_sql l1 "SET session_replication_role = replica; DELETE FROM events WHERE id >= 10" >/dev/null
"$P" q "$L" read 1 HIGH_WATER > out2 && [ "$(cat out2)" = i:14 ] || fail "HIGH_WATER after a delete: $(cat out2)"
pass "the high-water mark keeps the highest id ever issued after the newest events are deleted"

# ---- many writers, one chain ------------------------------------------------
CHAIN_OK="SELECT count(*) = max(id) - min(id) + 1 AND count(DISTINCT prev_hash) = count(*)
          AND NOT EXISTS (SELECT 1 FROM events e JOIN events p ON p.id = e.id - 1 WHERE e.prev_hash <> p.hash)
          FROM events"
L3=$(pg_newdb l3)
for w in 1 2 3 4; do "$P" chain "$L3" 150 "w$w" 2>"cw$w" & done
wait
for w in 1 2 3 4; do [ ! -s "cw$w" ] || fail "writer $w: $(cat "cw$w")"; done
[ "$(pg_sql l3 "SELECT count(*) FROM events")" = 600 ] || fail "events after 4 writers"
[ "$(pg_sql l3 "$CHAIN_OK")" = t ] || fail "4 writers: ids not contiguous or predecessors shared"
pass "4 concurrent writers x 150: 600 events, contiguous ids, every predecessor used once"

# The chain lock bounded by the busy timeout.
rm -f hold.out
"$P" hold "$L3" 4 > hold.out &
hp=$!
while [ ! -s hold.out ]; do sleep 0.05; done
start=$(date +%s%N)
probe_rc 16 "a writer waiting past the busy timeout" -b 400 chain "$L3" 1 late
msg_has "other writers held the chain lock for more than 400 ms"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 3000 ] || fail "gave up after $ms ms"
wait "$hp" || fail "the lock holder failed"

# A holder that stops answering (SIGSTOP: a station cut off) loses the lock
# once idle past max(busy timeout, 10 s); the waiter then appends.
rm -f hold.out
"$P" -b 1000 hold "$L3" 60 > hold.out 2> hold.err &
hp=$!
while [ ! -s hold.out ]; do sleep 0.05; done
kill -STOP "$hp"
start=$(date +%s%N)
run "$P" -b 20000 chain "$L3" 1 after-frozen
ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill -KILL "$hp"; wait "$hp" 2>/dev/null || true   # before any verdict: no stopped process left behind
[ "$RC" -eq 0 ] || fail "the writer behind a frozen holder: exit $RC"
[ "$ms" -ge 8000 ] && [ "$ms" -lt 19000 ] || fail "the frozen holder's lock went after $ms ms, expected about 10000"
pass "the server ended the frozen holder's session after $ms ms and the waiter appended"

# A dropped connection inside a transaction: -EAGAIN, nothing written.
rm -f hold.out
"$P" hold "$L3" 3 > hold.out 2> hold.err &
hp=$!
while [ ! -s hold.out ]; do sleep 0.05; done
tries=0
until [ "$(pg_sql postgres "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                            WHERE datname = 'l3' AND state = 'idle in transaction'")" = 1 ]; do
  tries=$((tries + 1)); [ "$tries" -lt 40 ] || fail "the lock holder's session never showed as idle in transaction"
  sleep 0.05
done
set +e; wait "$hp"; rc=$?; set -e
[ "$rc" -eq 11 ] || fail "terminated transaction: exit $rc, expected 11 (EAGAIN): $(cat hold.err)"
grep -qF "the connection was lost" hold.err || fail "message: $(cat hold.err)"
pass "a transaction whose connection was killed reports EAGAIN (the caller repeats it)"

# Restarts while 4 writers append: every event exactly once.
for w in 1 2 3 4; do "$P" chain "$L3" 300 "r$w" 2>"rw$w" & done
until [ "$(pg_sql l3 "SELECT count(*) FROM events WHERE station LIKE 'r_'")" -ge 100 ]; do sleep 0.05; done
pg_restart fast
n1=$(pg_sql l3 "SELECT count(*) FROM events WHERE station LIKE 'r_'")
until [ "$(pg_sql l3 "SELECT count(*) FROM events WHERE station LIKE 'r_'")" -ge $((n1 + 100)) ]; do sleep 0.05; done
pg_restart immediate
n2=$(pg_sql l3 "SELECT count(*) FROM events WHERE station LIKE 'r_'")
[ "$n2" -lt 1200 ] || fail "the writers had finished before the second restart ($n2 events)"
wait
for w in 1 2 3 4; do [ ! -s "rw$w" ] || fail "writer $w across restarts: $(cat "rw$w")"; done
[ "$(pg_sql l3 "SELECT count(*) FROM events WHERE station LIKE 'r_'")" = 1200 ] || fail "events across restarts"
[ "$(pg_sql l3 "SELECT count(DISTINCT details) FROM events WHERE station LIKE 'r_'")" = 1200 ] || fail "a duplicate"
[ "$(pg_sql l3 "$CHAIN_OK")" = t ] || fail "chain after restarts"
pass "4 writers x 300 across a fast and a crash restart (at $n1 and $n2 events): none lost or doubled, chain intact"

# ---- the CLI: append, verify, an unreachable server --------------------------
L4=$(pg_newdb l4)
for w in 1 2 3 4; do "$LEDGER_WRITER" --db "$L4" --count 50 --tag "c$w" --ecids 3 --quiet 2>"lw$w" & done
wait
for w in 1 2 3 4; do [ ! -s "lw$w" ] || fail "ledger-writer $w: $(cat "lw$w")"; done
expect_rc 0 "verify ledger of 4x50 concurrent appends" "$F" verify ledger --db "$L4"
grep -qF "200 events, chain intact" "$T/out" || fail "verify: $(cat "$T/out")"
[ "$(pg_sql l4 "SELECT count(DISTINCT prev_hash) FROM events")" = 200 ] || fail "shared predecessors"
run python3 "$SRCDIR/tests/tools/ledger-chain.py" "$L4"
[ "$RC" -eq 0 ] && [ "$(cut -d' ' -f1 "$T/out")" = 200 ] || fail "independent chain check: $(cat "$T/out" "$T/err")"
pass "the independent chain check agrees"
pg_sql l4 "ALTER TABLE events DISABLE TRIGGER events_no_delete" >/dev/null
expect_rc 5 "verify ledger with a disabled guard" "$F" verify ledger --db "$L4"
grep -qF "events_no_delete is missing" "$T/out" "$T/err" || fail "verify names the guard: $(cat "$T/out")"
pg_sql l4 "ALTER TABLE events ENABLE TRIGGER events_no_delete" >/dev/null
# A guard present under its name but defeated: a WHEN clause that never
# holds, another table, another event or timing, a statement trigger; a
# dropped TRUNCATE guard.
GUARD_DEF="EXECUTE FUNCTION fuseline_refuse('fuseline ledger: events are append-only; DELETE refused')"
for how in "BEFORE DELETE ON events FOR EACH ROW WHEN (false)" "BEFORE DELETE ON devices FOR EACH ROW" \
           "BEFORE UPDATE ON events FOR EACH ROW" "AFTER DELETE ON events FOR EACH ROW" \
           "BEFORE DELETE ON events FOR EACH STATEMENT"; do
  pg_sql l4 "DROP TRIGGER IF EXISTS events_no_delete ON events" "CREATE TRIGGER events_no_delete $how $GUARD_DEF" >/dev/null
  expect_rc 5 "verify ledger with events_no_delete $how" "$F" verify ledger --db "$L4"
  grep -qF "events_no_delete is missing or no longer guards as created" "$T/out" "$T/err" \
    || fail "verify names the guard: $(cat "$T/out")"
  pg_sql l4 "DROP TRIGGER events_no_delete ON $(echo "$how" | cut -d' ' -f4)" >/dev/null
done
pg_sql l4 "CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH ROW $GUARD_DEF" >/dev/null
expect_rc 0 "verify ledger with the guard as created again" "$F" verify ledger --db "$L4"
for tbl in events certificates devices events_high_water checkpoints forwarded spool_uploaded; do
  pg_sql l4 "ALTER TABLE $tbl DISABLE TRIGGER ${tbl}_no_truncate" >/dev/null
  expect_rc 5 "verify ledger with ${tbl}_no_truncate disabled" "$F" verify ledger --db "$L4"
  grep -qF "${tbl}_no_truncate is missing" "$T/out" "$T/err" || fail "verify names the guard: $(cat "$T/out")"
  pg_sql l4 "ALTER TABLE $tbl ENABLE TRIGGER ${tbl}_no_truncate" >/dev/null
done
pass "verify counts a guard only as created: unconditional, on its table, for its event and timing; TRUNCATE guards too"
pg_sql l4 "SET session_replication_role = replica; UPDATE events SET outcome = 'forged' WHERE id = 7" >/dev/null
expect_rc 5 "verify ledger after an edit past the guards" "$F" verify ledger --db "$L4"

pg_stop
start=$(date +%s%N)
expect_rc 4 "a stopped server (exit 4)" "$F" ledger show --db "$(pg_uri l4)&connect_timeout=2" "$E"
expect_err "the server is unreachable"
grep -qF "ledger postgresql:///l4?host=$PG_SOCK" "$T/err" || fail "the message names the ledger: $(cat "$T/err")"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -ge 1900 ] && [ "$ms" -lt 8000 ] || fail "retried for $ms ms, expected about 2000"
pass "retried for the URI's connect_timeout ($ms ms), then gave up"
pg_start

# ---- roles -------------------------------------------------------------------
run pg_sql l4 "\\i $SRCDIR/factory-scripts/ledger-pg-roles.sql"
[ "$RC" -eq 0 ] || fail "roles file: $(cat "$T/err")"
run pg_sql l4 "\\i $SRCDIR/factory-scripts/ledger-pg-roles.sql"
[ "$RC" -eq 0 ] || fail "roles file a second time: $(cat "$T/err")"
pg_sql l4 "CREATE ROLE st1 LOGIN IN ROLE fuseline_station" "CREATE ROLE mes1 LOGIN IN ROLE fuseline_mes" >/dev/null
ST=$(pg_uri l4 st1)
MES=$(pg_uri l4 mes1)
expect_rc 0 "a station role appends" "$LEDGER_WRITER" --db "$ST" --count 3 --tag st --ecids 2 --quiet
for sql in "UPDATE events SET outcome = 'x' WHERE id = 1" "DELETE FROM events WHERE id = 200" \
           "UPDATE devices SET first_seen = 'x'" "UPDATE certificates SET der = '\\x00'" \
           "UPDATE events_high_water SET id = 0" "TRUNCATE events CASCADE"; do
  probe_rc 22 "station: $sql" sql "$ST" auto 0 "$sql"
  msg_has "the database role may not do this"
done
probe_rc 0 "station: UPDATE of a device's state" sql "$ST" auto 0 "UPDATE devices SET state = state"

probe_rc 22 "the MES role cannot append" chain "$MES" 1 mes
expect_rc 2 "the MES role through the CLI (permission denied)" "$LEDGER_WRITER" --db "$MES" --count 1 --tag mes --quiet
expect_rc 5 "the MES role reads (verify still sees the forged event)" "$F" verify ledger --db "$MES"
grep -qF "event 7" "$T/out" "$T/err" || fail "verify as mes: $(cat "$T/out" "$T/err")"
[ "$(pg_sql l4 "SELECT count(*) FROM events")" = 203 ] || fail "event count after the role checks"
pass "roles: the station appends but cannot edit; the MES reads only"

# Events only through fuseline_append_event: no INSERT on events, and the
# procedure wants the chain lock and the next link (on a ledger of its own:
# the rows written here do not carry the ledger's hashes).
ST5=$(pg_station_ledger l5)
probe_rc 0 "station: two events through ldb-probe" chain "$ST5" 2 s5
probe_rc 22 "station: a direct INSERT into events" sql "$ST5" write 0 \
  "INSERT INTO events (id, time, station, operator, command, kind, outcome, details, prev_hash, hash)
   SELECT max(id) + 1, 't', 's', 'o', 'c', 'record', 'ok', '{}', (SELECT hash FROM events ORDER BY id DESC LIMIT 1),
          '\\x01' FROM events"
msg_has "the database role may not do this"
[ "$(pg_sql l5 "SELECT has_table_privilege('fuseline_station', 'events', 'INSERT')")" = f ] || fail "INSERT granted"
[ "$(pg_sql l5 "SELECT prosecdef, proconfig::text, pg_get_userbyid(proowner) = pg_get_userbyid(
                  (SELECT relowner FROM pg_class WHERE oid = 'events'::regclass)),
                  has_function_privilege('fuseline_mes', oid, 'EXECUTE'),
                  has_function_privilege('fuseline_station', oid, 'EXECUTE')
                FROM pg_proc WHERE proname = 'fuseline_append_event'")" = 't|{"search_path=public, pg_temp"}|t|f|t' ] \
  || fail "the procedure: $(pg_sql l5 "SELECT prosecdef, proconfig FROM pg_proc WHERE proname = 'fuseline_append_event'")"
NEXT=$(pg_sql l5 "SELECT max(id) + 1 FROM events_high_water")
HEAD=$(pg_sql l5 "SELECT encode(hash, 'hex') FROM events ORDER BY id DESC LIMIT 1")
N0=$(pg_sql l5 "SELECT count(*) FROM events")
ARGS=(t:2026-01-01T00:00:00Z t:s t:o t:c n: t:record n: t:ok t:{})
probe_rc 22 "station: the procedure without the chain lock" q "$ST5" auto 0 INSERT_EVENT "i:$NEXT" "${ARGS[@]}" \
  "x:$HEAD" x:01
msg_has "an event is appended only inside a writer's transaction holding the chain lock"
probe_rc 74 "station: the procedure with a wrong id" q "$ST5" write 0 INSERT_EVENT "i:$((NEXT + 1))" "${ARGS[@]}" \
  "x:$HEAD" x:01
msg_has "does not follow the highest id issued ($((NEXT - 1)))"
probe_rc 74 "station: the procedure with a wrong link" q "$ST5" write 0 INSERT_EVENT "i:$NEXT" "${ARGS[@]}" \
  "x:00$HEAD" x:01
msg_has "does not link to the newest event's hash"
[ "$(pg_sql l5 "SELECT count(*) FROM events")" = "$N0" ] || fail "a refused append wrote"
probe_rc 0 "station: the procedure under the lock with the next link" q "$ST5" write 0 INSERT_EVENT "i:$NEXT" \
  "${ARGS[@]}" "x:$HEAD" x:01
[ "$(pg_sql l5 "SELECT count(*) FROM events WHERE id = $NEXT AND prev_hash = '\\x$HEAD'")" = 1 ] \
  || fail "the appended row"
pass "a station appends only through fuseline_append_event, under the chain lock, continuing the chain"

# A ledger made before the procedure existed: a station is told who must
# open it; the owner's first write open installs it.
pg_sql l5 "DROP PROCEDURE fuseline_append_event" >/dev/null
probe_rc 22 "station: a ledger without the procedure" open write "$ST5"
msg_has "its owner must open it for writing once"
run pg_sql l5 "\\i $SRCDIR/factory-scripts/ledger-pg-roles.sql"
[ "$RC" -ne 0 ] && grep -qF "no fuseline_append_event procedure" "$T/err" || fail "roles file without it: $(cat "$T/err")"
probe_rc 0 "the owner's write open installs the procedure" open write "$(pg_uri l5)"
run pg_sql l5 "\\i $SRCDIR/factory-scripts/ledger-pg-roles.sql"
[ "$RC" -eq 0 ] || fail "roles file: $(cat "$T/err")"

# ---- a connection lost inside the transaction, again and again ----------------
# Every attempt's insert waits on a row another session holds, and is killed
# there: when the busy timeout runs out the last failure was a lost
# connection, reported as an unreachable server (exit 4), not as busy.
L6=$(pg_newdb l6)
expect_rc 0 "a first event on l6" "$LEDGER_WRITER" --db "$L6" --count 1 --tag l6 --quiet
"$PG_BINDIR/psql" -X -q -h "$PG_SOCK" -U "$PG_SUPER" -d l6 \
  -c "BEGIN" -c "SELECT 1 FROM events_high_water FOR UPDATE" -c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null 2>&1 &
blocker=$!
( end=$(( $(date +%s) + 7 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    pg_sql postgres "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'l6'
                     AND application_name = 'fuseline' AND wait_event_type = 'Lock'" >/dev/null 2>&1 || true
    sleep 0.1
  done ) &
killer=$!
sleep 0.5
expect_rc 4 "a writer whose connection is killed inside every attempt" "$LEDGER_WRITER" --db "$L6" --count 1 \
  --tag lost --busy-ms 2000 --quiet
expect_err "the server is unreachable (the connection was lost inside the transaction again and again"
kill "$killer" 2>/dev/null || true
wait "$killer" "$blocker" 2>/dev/null || true
[ "$(pg_sql l6 "SELECT count(*) FROM events")" = 1 ] || fail "a lost attempt wrote"
pass "connection lost inside every attempt: exit 4, nothing written"

# ---- a full server -------------------------------------------------------------
# Three slots for ordinary roles (the rest reserved for superusers): with
# three stations connected, a fourth is told "remaining connection slots are
# reserved for …", which is as transient as "too many clients": it waits for
# a slot instead of failing at once with exit 2.
pg_sql postgres "ALTER SYSTEM SET max_connections = 6" "ALTER SYSTEM SET superuser_reserved_connections = 3" >/dev/null
pg_restart fast
# (No superuser connection meanwhile: it would take an ordinary slot too.)
for i in 1 2 3; do
  "$PG_BINDIR/psql" -X -q -A -t -h "$PG_SOCK" -U st1 -d l4 -c "SELECT 'up'" -c "SELECT pg_sleep(4)" \
    >"slot$i.out" 2>"slot$i" &
  tries=0
  until grep -q up "slot$i.out"; do
    tries=$((tries + 1)); [ "$tries" -lt 100 ] || fail "session $i as st1 never came up: $(cat "slot$i")"
    sleep 0.05
  done
done
run "$PG_BINDIR/psql" -X -h "$PG_SOCK" -U st1 -d l4 -c "SELECT 1"
grep -qF "reserved for" "$T/err" || fail "the server did not refuse a fourth ordinary role: $(cat "$T/err")"
start=$(date +%s%N)
expect_rc 0 "a station while the ordinary slots are taken" "$LEDGER_WRITER" --db "$ST&connect_timeout=20" --count 1 --tag full --quiet
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait
[ "$ms" -ge 500 ] || fail "the station got a slot after $ms ms: the slots were not full"
pass "a station that finds the ordinary connection slots taken retries and gets one ($ms ms)"
pg_sql postgres "ALTER SYSTEM RESET max_connections" "ALTER SYSTEM RESET superuser_reserved_connections" >/dev/null
pg_restart fast

done_testing
