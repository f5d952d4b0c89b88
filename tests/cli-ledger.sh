# cli-ledger.sh — `fuseline ledger export|show` and `fuseline verify ledger`
# against databases written by the test-only ledger writer, checked with
# independent tools: the sqlite3 CLI (reading and tampering), Python's
# sqlite3/csv/json modules, and tests/tools/ledger-chain.py (the chain
# recomputed from the documented format). On PostgreSQL (cli-ledger-pg,
# tests/lib-ledger.sh) the same with psql reading and tampering (as superuser,
# triggers skipped), a database copied from a template instead of a file, and
# the SQLite-file cases (not a database, read-only file, full disk, file-size
# limit) replaced by their server equivalents where one exists.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-ledger.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
E1=80012344705df1172c0000000d020080
E2=80012344705df1172c0000000d020081
export FUSELINE_STATION="bay \"7\", line 2" FUSELINE_OPERATOR=alice
unset FUSELINE_DB

# ---- help -------------------------------------------------------------------
for c in "ledger export" "ledger show" "verify ledger"; do
  expect_rc 0 "$c --help" "$FUSELINE" $c --help
  grep -q "Examples:" "$T/out" || fail "$c --help has no examples"
done
expect_rc 0 "ledger --help" "$FUSELINE" ledger --help
grep -q "export" "$T/out" && grep -q "show" "$T/out" || fail "ledger --help lists no subcommands"
expect_rc 2 "ledger without subcommand" "$FUSELINE" ledger
expect_rc 2 "ledger bogus" "$FUSELINE" ledger bogus

# ---- a missing database is never created ---------------------------------------
if is_pg; then
  # A database that does not exist, and one without a ledger in it: named, never created.
  NONE=$(pg_uri nosuchdb)
  for c in "verify ledger" "ledger export" "ledger show $E1"; do
    expect_rc 2 "$c on a missing database" "$FUSELINE" $c --db "$NONE"
    expect_err "nosuchdb"
  done
  [ "$(pg_sql postgres "SELECT count(*) FROM pg_database WHERE datname = 'nosuchdb'")" -eq 0 ] || fail "a database was created"
  EMPTY=$(pg_newdb empty)   # as superuser: what is refused is refused by fuseline, not by a grant
  for c in "verify ledger" "ledger export" "ledger show $E1"; do
    expect_rc 2 "$c on a database without a ledger" "$FUSELINE" $c --db "$EMPTY"
    expect_err "no fuseline ledger"
  done
  # a password in the URI (which trust authentication would even accept): refused, and never
  # repeated in the message (passwords belong in ~/.pgpass or a service file, not in argv)
  PWURI="postgresql://$PG_SUPER:Sesame-4711@/empty?host=$PG_SOCK"
  for c in "verify ledger" "ledger export" "ledger show $E1"; do
    expect_rc 2 "$c with a password in the URI" "$FUSELINE" $c --db "$PWURI"
    expect_err "password"
    grep -q "Sesame-4711" "$T/err" "$T/out" && fail "$c printed the URI's password"
  done
  run "$W" --db "$PWURI" --count 1
  [ "$RC" -eq 2 ] || fail "a writer given a password in the URI: exit $RC"
  grep -q "Sesame-4711" "$T/err" "$T/out" && fail "the writer printed the URI's password"
  [ "$(lsql empty "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")" -eq 0 ] \
    || fail "a reading command created tables"
  pass "readers name a missing or empty database and create nothing; a password in the URI is refused, never printed"
else
  for c in "verify ledger" "ledger export" "ledger show $E1"; do
    expect_rc 2 "$c on a missing db" "$FUSELINE" $c --db "$T/none.db"
    expect_err "$T/none.db"
    [ ! -e "$T/none.db" ] || fail "$c created the database"
  done
  # default path: ./fuseline.db, then $FUSELINE_DB
  expect_rc 2 "default ./fuseline.db missing" "$FUSELINE" verify ledger
  expect_err "fuseline.db"
  [ ! -e fuseline.db ] || fail "verify created ./fuseline.db"
fi

# ---- a small ledger ---------------------------------------------------------------
# SQLite: ./fuseline.db, the default path. PostgreSQL: database "fuseline", given to the
# commands below as $FUSELINE_DB (the writer too: it takes the same default).
L=$(ldb fuseline)
if is_pg; then export FUSELINE_DB=$L; fi
run "$W" --db "$L" --count 3 --ecid "0x${E1^^}" --state planned --chip t234 --serial SN-1 \
    --time 2024-05-01T10:00:00Z
[ "$RC" -eq 0 ] || fail "writer: $(cat "$T/err")"
run "$W" --db "$L" --count 1 --ecid $E1 --kind intent --outcome pending --time 2024-05-02T10:00:00Z
INTENT=$(cut -d' ' -f1 "$T/out")
run "$W" --db "$L" --count 2 --ecid $E2 --details '{"log":"/var/log/x, \"quoted\".log","n":1.50}' \
    --time 2024-05-03T10:00:00Z
[ "$RC" -eq 0 ] || fail "writer: $(cat "$T/err")"
N=$(lsql fuseline "SELECT count(*) FROM events")
[ "$N" -eq 6 ] || fail "expected 6 events, $LB's client counts $N"

expect_rc 0 "verify ledger (default path or \$FUSELINE_DB)" "$FUSELINE" verify ledger
grep -q "PASS" "$T/out" || fail "no PASS"
grep -q "dangling intents: 1" "$T/out" || fail "dangling intent not reported"
grep -q "event $INTENT" "$T/out" || fail "dangling intent id not named"
FUSELINE_DB=$L expect_rc 0 "verify ledger via FUSELINE_DB" "$FUSELINE" verify ledger --json
REF=$(lchain fuseline) || fail "independent chain check failed: $REF"
python3 - "$T/out" "$REF" "$INTENT" <<'EOF' || fail "verify --json disagrees with the independent chain"
import json, sys
o = json.loads(open(sys.argv[1]).read())
n, head = sys.argv[2].split()
assert o["ok"] is True and o["fault"] is None, o
assert o["events"] == int(n) and o["head"]["id"] == int(n), o
assert o["head"]["hash"] == head, (o["head"], head)
assert [d["id"] for d in o["dangling_intents"]] == [int(sys.argv[3])], o
assert o["schema_version"] == 3
EOF
pass "verify --json head equals the independent recomputation"

# ---- reading never writes -----------------------------------------------------------
if is_pg; then
  # everything pg_dump sees: schema, rows, sequences (less the random key of its
  # \restrict line, new in each dump since PostgreSQL 15.14)
  sum_db() { "$PG_BINDIR/pg_dump" -h "$PG_SOCK" -U "$PG_SUPER" fuseline | grep -v '^\\\(un\)\?restrict ' | sha256sum; }
else
  sum_db() { cat fuseline.db fuseline.db-wal 2>/dev/null | sha256sum; }
fi
BEFORE=$(sum_db)
"$FUSELINE" ledger export >/dev/null
"$FUSELINE" ledger export --format csv >/dev/null
"$FUSELINE" ledger show $E1 >/dev/null
"$FUSELINE" verify ledger >/dev/null
[ "$(sum_db)" = "$BEFORE" ] || fail "a reading command changed the database"
pass "export/show/verify leave the database unchanged ($LB)"

# ---- export: JSON Lines and CSV against the sqlite3 CLI / psql --------------------------
expect_rc 0 "export jsonl" "$FUSELINE" ledger export
cp "$T/out" export.jsonl
expect_rc 0 "export csv" "$FUSELINE" ledger export --format csv
cp "$T/out" export.csv
if is_pg; then
  pg_sql fuseline "SELECT json_agg(json_build_object('id', id, 'time', time, 'station', station, 'operator', operator,
      'command', command, 'ecid', ecid, 'kind', kind, 'intent_id', intent_id, 'outcome', outcome, 'details', details,
      'prev_hash', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) ORDER BY id) FROM events" > ref.json
else
  sqlite3 -json fuseline.db "SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details,
      lower(hex(prev_hash)) AS prev_hash, lower(hex(hash)) AS hash FROM events ORDER BY id" > ref.json
fi
python3 - export.jsonl export.csv ref.json <<'EOF' || fail "export differs from the database"
import csv, json, sys
jl = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], newline="") as f:
    rows = list(csv.reader(f))
ref = json.load(open(sys.argv[3]))
assert rows[0] == "id,time,station,operator,command,ecid,kind,intent_id,outcome,details,prev_hash,hash".split(","), rows[0]
assert len(jl) == len(ref) == len(rows) - 1 == 6, (len(jl), len(ref), len(rows))
for j, c, r in zip(jl, rows[1:], ref):
    for k in ("id", "time", "station", "operator", "command", "ecid", "kind", "intent_id", "outcome", "prev_hash", "hash"):
        assert j[k] == r[k], (k, j[k], r[k])
        want = "" if r[k] is None else str(r[k])
        assert c[list(rows[0]).index(k)] == want, (k, c, want)
    # details: an object in JSONL, the stored text verbatim in CSV
    assert j["details"] == json.loads(r["details"]), (j["details"], r["details"])
    assert c[9] == r["details"], (c[9], r["details"])
assert jl[0]["station"] == 'bay "7", line 2' and jl[0]["operator"] == "alice"
assert jl[4]["details"]["log"] == '/var/log/x, "quoted".log'
EOF
pass "JSONL and CSV (python csv/json) equal the rows $LB's own client reads"
grep -q $'\r$' export.csv || fail "CSV lines do not end in CRLF (RFC 4180)"

expect_rc 0 "export --since" "$FUSELINE" ledger export --since 2024-05-02
[ "$(wc -l < "$T/out")" -eq 3 ] || fail "--since 2024-05-02: $(wc -l < "$T/out") lines, expected 3"
expect_rc 0 "export --since with offset" "$FUSELINE" ledger export --since "2024-05-02T12:00+02:00" --format csv
[ "$(wc -l < "$T/out")" -eq 4 ] || fail "--since 2024-05-02T10:00Z: expected header + 3 lines"
expect_rc 0 "export --ecid" "$FUSELINE" ledger export --ecid "${E2^^}"
python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert len(l)==2 and all(e["ecid"]==sys.argv[2] for e in l)' \
  "$T/out" $E2 || fail "--ecid filter"
expect_rc 0 "export --since 7d (all older)" "$FUSELINE" ledger export --since 7d
# the writer's fixed times are in 2024: a relative --since relative to now excludes them
[ ! -s "$T/out" ] || [ "$(date -u +%Y)" -lt 2024 ] || fail "--since 7d kept 2024 events"
expect_rc 2 "export --since garbage" "$FUSELINE" ledger export --since "yesterday-ish"
expect_err "--since"
expect_rc 2 "export --since Feb 30" "$FUSELINE" ledger export --since 2024-02-30
expect_rc 2 "export --ecid not hex" "$FUSELINE" ledger export --ecid 8001zz
expect_err "--ecid"
expect_rc 2 "export --format xml" "$FUSELINE" ledger export --format xml

# ---- show ----------------------------------------------------------------------------
expect_rc 0 "show" "$FUSELINE" ledger show "0x${E1^^}"
grep -q "state       planned" "$T/out" || fail "show: state missing"
grep -q "serial      SN-1" "$T/out" || fail "show: serial missing"
grep -q "dangling intents: 1" "$T/out" || fail "show: dangling intent missing"
expect_rc 0 "show --json" "$FUSELINE" ledger show $E1 --json
python3 - "$T/out" "$(lsql fuseline "SELECT $(lagg id id) FROM events WHERE ecid='$E1'")" <<'EOF' || fail "show --json"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["device"]["state"] == "planned" and o["device"]["chip"] == "t234" and o["device"]["serial"] == "SN-1", o
assert ",".join(str(e["id"]) for e in o["events"]) == sys.argv[2], (o["events"], sys.argv[2])
assert len(o["dangling_intents"]) == 1 and o["certificates"] == []
EOF
pass "show --json lists the device's events as $LB's client sees them"
expect_rc 2 "show unknown ECID" "$FUSELINE" ledger show 00000000000000000000000000000001
expect_err "not in it"
[ ! -s "$T/out" ] || fail "show printed something for an unknown ECID"
expect_rc 2 "show bad ECID" "$FUSELINE" ledger show 1234
expect_err "hex digits"
expect_rc 2 "show without ECID" "$FUSELINE" ledger show

# ---- the backend's own client cannot edit events while the guards stand ----------------
# (sqlite3 CLI; psql as the superuser: triggers bind superusers too)
lcopy fuseline pristine
set +e; lsql fuseline "UPDATE events SET outcome='failed' WHERE id=2" 2>"$T/err"; rc=$?; set -e
[ $rc -ne 0 ] && grep -q "append-only" "$T/err" || fail "UPDATE on events was not refused: $(cat "$T/err")"
set +e; lsql fuseline "DELETE FROM events WHERE id=6" 2>"$T/err"; rc=$?; set -e
[ $rc -ne 0 ] && grep -q "append-only" "$T/err" || fail "DELETE on events was not refused: $(cat "$T/err")"
[ "$(lsql fuseline "SELECT count(*) || ' ' || min(outcome) FROM events WHERE id IN (2, 6)")" = "2 ok" ] \
  || fail "a refused UPDATE/DELETE changed the events"
pass "triggers refuse UPDATE and DELETE from $LB's own client"

# ---- tampering past the guards: exit 5 naming the event -------------------------------
tamper() { # name sql kind event
  lcopy pristine t
  ltamper t "$2"
  expect_rc 5 "verify after $1" "$FUSELINE" verify ledger --db "$(ldb t)" --json
  python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["ok"] is False and o["fault"]["kind"]==sys.argv[2] and o["fault"]["event"]==int(sys.argv[3]), o' \
    "$T/out" "$3" "$4" || fail "$1: $(head -1 "$T/out")"
  expect_err "event $4"
  set +e; lchain t >/dev/null; rc=$?; set -e
  [ $rc -eq 5 ] || fail "$1: the independent check did not notice either"
}
ZERO32=$(printf '0%.0s' $(seq 1 64))
tamper "an edited outcome" "UPDATE events SET outcome='failed' WHERE id=3" edited 3
tamper "an edited operator" "UPDATE events SET operator='mallory' WHERE id=1" edited 1
tamper "a deleted event" "DELETE FROM events WHERE id=4" deleted 5
tamper "reordered events" "UPDATE events SET id=-1 WHERE id=2; UPDATE events SET id=2 WHERE id=3; UPDATE events SET id=3 WHERE id=-1" reordered 2
tamper "a replaced hash" "UPDATE events SET hash=$(lblob "$ZERO32") WHERE id=5" edited 5
# an attacker who knows the format edits event 3 and re-hashes it: 4 no longer links
lcopy pristine t
ltamper t "UPDATE events SET outcome='failed' WHERE id=3"
H=$(python3 - "$(ldb t)" "$SRCDIR/tests/tools" <<'PY'
import hashlib, sys
sys.path.insert(0, sys.argv[2])
chain = __import__("ledger-chain")
row = [r for r in chain.events(sys.argv[1]) if r[0] == 3][0]
print(hashlib.sha256(row[10] + chain.canon(row[:10])).hexdigest())
PY
) || fail "re-hash in Python"
ltamper t "UPDATE events SET hash = $(lblob "$H") WHERE id = 3"
expect_rc 5 "verify after a re-hashed edit" "$FUSELINE" verify ledger --db "$(ldb t)" --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["fault"]["kind"]=="broken-link" and o["fault"]["event"]==4, o' \
  "$T/out" || fail "re-hashed edit: $(head -1 "$T/out")"
# the newest event removed: only the backend's record of the highest id issued remembers it
# (sqlite_sequence; PostgreSQL's)
lcopy pristine t
ltamper t "DELETE FROM events WHERE id=6"
expect_rc 5 "verify after deleting the newest event" "$FUSELINE" verify ledger --db "$(ldb t)"
expect_err "event 6"
# the device table edited behind the ledger's back
lcopy pristine t
ltamper t "UPDATE devices SET state='fused' WHERE ecid='$E1'"
expect_rc 5 "verify after editing a device's state" "$FUSELINE" verify ledger --db "$(ldb t)"
expect_err "device $E1"

# ---- PostgreSQL: the guards themselves ------------------------------------------------------
if is_pg; then
  set +e; lsql fuseline "TRUNCATE events CASCADE" 2>"$T/err"; rc=$?; set -e
  [ $rc -ne 0 ] && grep -q "append-only" "$T/err" || fail "TRUNCATE on events was not refused: $(cat "$T/err")"
  [ "$(lsql fuseline "SELECT count(*) FROM events")" -eq 6 ] || fail "a refused TRUNCATE removed events"
  pass "TRUNCATE (which fires no row trigger) is refused too"
  # A superuser who removes, disables or defuses a guard leaves the events intact but the
  # ledger open to edits: verify says so (fault "schema"), whatever the way.
  guard() { # name sql
    lcopy pristine t
    lsql t "$2"
    expect_rc 5 "verify after $1" "$FUSELINE" verify ledger --db "$(ldb t)" --json
    python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["ok"] is False and o["fault"]["kind"]=="schema", o' \
      "$T/out" || fail "$1: $(head -1 "$T/out")"
  }
  guard "a dropped guard" "DROP TRIGGER events_no_update ON events"
  guard "a disabled guard" "ALTER TABLE events DISABLE TRIGGER events_no_delete"
  guard "a guard whose function lets rows through" \
    "CREATE OR REPLACE FUNCTION fuseline_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RETURN NEW; END\$\$"
fi

# ---- databases that are not (our) ledgers ---------------------------------------------------
if is_pg; then
  # another application's database: never taken over
  O=$(pg_newdb other)       # as superuser, who could create tables: fuseline must not
  lsql other "CREATE TABLE inventory(a int); INSERT INTO inventory VALUES (1)"
  expect_rc 2 "verify another application's database" "$FUSELINE" verify ledger --db "$O"
  expect_err "not a fuseline ledger"
  run "$W" --db "$O" --count 1
  [ "$RC" -eq 2 ] || fail "writer into a foreign database: exit $RC"
  [ "$(lsql other "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')")" -eq 1 ] \
    || fail "foreign database was modified: $(lsql other "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace")"
  pass "a writer refuses another application's database and leaves it alone"
else
  head -c 4096 /dev/urandom > junk.db
  expect_rc 2 "verify a non-SQLite file" "$FUSELINE" verify ledger --db junk.db
  expect_err "not an SQLite database"
  sqlite3 other.db "CREATE TABLE inventory(a); INSERT INTO inventory VALUES (1)"
  expect_rc 2 "verify another application's SQLite file" "$FUSELINE" verify ledger --db other.db
  expect_err "not a fuseline ledger"
  run "$W" --db other.db --count 1
  [ "$RC" -eq 2 ] || fail "writer into a foreign database: exit $RC"
  [ "$(sqlite3 other.db "SELECT count(*) FROM sqlite_master")" -eq 1 ] || fail "foreign database was modified"
  pass "a writer refuses another application's database and leaves it alone"
  rm -f new.db*; sqlite3 pristine.db ".backup new.db"; sqlite3 new.db "PRAGMA user_version=7"
  expect_rc 2 "verify a newer schema" "$FUSELINE" verify ledger --db new.db
  expect_err "schema version 7 is newer"
  run "$W" --db new.db --count 1
  [ "$RC" -eq 2 ] || fail "writer into a newer schema: exit $RC"
fi

# ---- a read-only database: a clear error, nothing written -------------------------------
if is_pg; then
  # The server's equivalent of a read-only file: a database whose sessions are read-only
  # (default_transaction_read_only), as a hot standby or an archived copy is.
  lcopy pristine ro
  pg_sql postgres "ALTER DATABASE ro SET default_transaction_read_only = on"
  run "$W" --db "$(ldb ro)" --count 1
  [ "$RC" -eq 2 ] || fail "writer on a read-only database: exit $RC, expected 2 ($(cat "$T/err"))"
  grep -q "read-only" "$T/err" || fail "no read-only message: $(cat "$T/err")"
  [ "$(lsql ro "SELECT count(*) FROM events")" -eq 6 ] || fail "event count changed"
  expect_rc 0 "verify ledger on the read-only database" "$FUSELINE" verify ledger --db "$(ldb ro)"
  pass "read-only database (default_transaction_read_only): writer exit 2, 'read-only', no event; readers read"
  # A full disk is the server's (its WAL cannot grow: it stops); file sizes are not the client's.
  echo "# (SQLite only: a full disk and a file-size limit in the writer's process have no client-side equivalent)"
  done_testing
  exit 0
fi
# An immutable file (chattr +i) where the file system allows it, else the directory on a
# read-only bind mount in a private mount namespace; neither possible: NOT RUN (test skips).
MNT=
if unshare -m true 2>/dev/null; then MNT="unshare -m"; elif unshare -rm true 2>/dev/null; then MNT="unshare -rm"; fi
rm -f ro.db*; sqlite3 pristine.db ".backup ro.db"; sqlite3 ro.db "PRAGMA journal_mode=WAL" >/dev/null
ro_how=
if chattr +i ro.db 2>/dev/null; then
  run "$W" --db ro.db --count 1
  chattr -i ro.db
  ro_how="an immutable file"
else
  mkdir rodir && mv ro.db rodir/ && rm -f ro.db-*
  if [ -n "$MNT" ] && $MNT sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ! touch "$1/x"' sh "$T/rodir" 2>/dev/null; then
    run $MNT sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"' sh "$T/rodir" \
      "$W" --db "$T/rodir/ro.db" --count 1
    mv rodir/ro.db .
    ro_how="a read-only bind mount"
  fi
fi
if [ -n "$ro_how" ]; then
  [ "$RC" -eq 2 ] || fail "writer on $ro_how: exit $RC, expected 2"
  grep -q "read-only" "$T/err" || fail "no read-only message: $(cat "$T/err")"
  [ "$(sqlite3 ro.db "SELECT count(*) FROM events")" -eq 6 ] || fail "event count changed"
  pass "read-only database ($ro_how): exit 2, 'read-only', no event"
else
  not_run "read-only database: neither chattr +i nor a read-only bind mount (unshare -m / -rm) works here"
fi

# ---- a full disk: a clear error, no half event, the chain still verifies ------------------
# A 320 KiB tmpfs in a private mount namespace (root, or an unprivileged user namespace).
FULL=$T/full
mkdir -p "$FULL"
if [ -n "$MNT" ] && $MNT sh -c 'mount -t tmpfs -o size=320k tmpfs "$1"' sh "$FULL" 2>/dev/null; then
  mkdir -p "$T/fullcopy"
  $MNT bash -c "mount -t tmpfs -o size=320k tmpfs '$FULL' && cd '$FULL' &&
    '$W' --db f.db --count 1 --quiet && '$W' --db f.db --count 400 --pad 4000 --quiet --tag fill;
    cp f.db f.db-wal '$T/fullcopy/' 2>/dev/null; true" 2>"$T/err" || true
  grep -q "disk is full" "$T/err" || fail "no 'disk is full' message: $(cat "$T/err")"
  [ "$(grep -c error "$T/err")" -eq 1 ] || fail "expected one error line: $(cat "$T/err")"
  cp "$T/fullcopy/"* .
  expect_rc 0 "verify after ENOSPC" "$FUSELINE" verify ledger --db f.db
  lchain f >/dev/null || fail "independent chain check after ENOSPC"
  python3 - f.db <<'EOF2' || fail "a torn event after ENOSPC"
import hashlib, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = 0
for (d,) in db.execute("SELECT details FROM events WHERE details LIKE '{\"writer\":\"fill\"%'"):
    o = json.loads(d)
    msg = "%s:%d:%s" % (o["writer"], o["seq"], o["pad"])
    assert hashlib.sha256(msg.encode()).hexdigest() == o["check"], o["seq"]
    n += 1
assert 0 < n < 400, n
EOF2
  pass "full disk: error says so, every stored event whole, chain verifies"
else
  not_run "full disk: no tmpfs can be mounted in a private mount namespace here (unshare -m / -rm)"
fi
# The same with a file-size limit (works without privileges).
rm -f g.db*; "$W" --db g.db --count 2 --quiet
SZ=$(stat -c %s g.db)
run "$W" --db g.db --count 50 --pad 3000 --fsize-limit $((SZ + 40000))
[ "$RC" -ne 0 ] || fail "writer under a file-size limit did not fail"
expect_rc 0 "verify after hitting the file-size limit" "$FUSELINE" verify ledger --db g.db
lchain g >/dev/null || fail "independent chain check after the file-size limit"

done_testing
