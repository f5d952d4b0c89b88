# cli-ledger.sh — `fuseline ledger export|show` and `fuseline verify ledger`
# against databases written by the test-only ledger writer, checked with
# independent tools: the sqlite3 CLI (reading and tampering), Python's
# sqlite3/csv/json modules, and tests/tools/ledger-chain.py (the chain
# recomputed from the documented format).
. "$SRCDIR/tests/lib.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
CHAIN="python3 $SRCDIR/tests/tools/ledger-chain.py"
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
for c in "verify ledger" "ledger export" "ledger show $E1"; do
  expect_rc 2 "$c on a missing db" "$FUSELINE" $c --db "$T/none.db"
  expect_err "$T/none.db"
  [ ! -e "$T/none.db" ] || fail "$c created the database"
done
# default path: ./fuseline.db, then $FUSELINE_DB
expect_rc 2 "default ./fuseline.db missing" "$FUSELINE" verify ledger
expect_err "fuseline.db"
[ ! -e fuseline.db ] || fail "verify created ./fuseline.db"

# ---- a small ledger ---------------------------------------------------------------
run "$W" --db fuseline.db --count 3 --ecid "0x${E1^^}" --state planned --chip t234 --serial SN-1 \
    --time 2024-05-01T10:00:00Z
[ "$RC" -eq 0 ] || fail "writer: $(cat "$T/err")"
run "$W" --db fuseline.db --count 1 --ecid $E1 --kind intent --outcome pending --time 2024-05-02T10:00:00Z
INTENT=$(cut -d' ' -f1 "$T/out")
run "$W" --db fuseline.db --count 2 --ecid $E2 --details '{"log":"/var/log/x, \"quoted\".log","n":1.50}' \
    --time 2024-05-03T10:00:00Z
[ "$RC" -eq 0 ] || fail "writer: $(cat "$T/err")"
N=$(sqlite3 fuseline.db "SELECT count(*) FROM events")
[ "$N" -eq 6 ] || fail "expected 6 events, sqlite3 counts $N"

expect_rc 0 "verify ledger (default path)" "$FUSELINE" verify ledger
grep -q "PASS" "$T/out" || fail "no PASS"
grep -q "dangling intents: 1" "$T/out" || fail "dangling intent not reported"
grep -q "event $INTENT" "$T/out" || fail "dangling intent id not named"
FUSELINE_DB=fuseline.db expect_rc 0 "verify ledger via FUSELINE_DB" "$FUSELINE" verify ledger --json
REF=$($CHAIN fuseline.db) || fail "independent chain check failed: $REF"
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
sum_db() { cat fuseline.db fuseline.db-wal 2>/dev/null | sha256sum; }
BEFORE=$(sum_db)
"$FUSELINE" ledger export >/dev/null
"$FUSELINE" ledger export --format csv >/dev/null
"$FUSELINE" ledger show $E1 >/dev/null
"$FUSELINE" verify ledger >/dev/null
[ "$(sum_db)" = "$BEFORE" ] || fail "a reading command changed the database"
pass "export/show/verify leave the database bytes unchanged"

# ---- export: JSON Lines and CSV against the sqlite3 CLI --------------------------------
expect_rc 0 "export jsonl" "$FUSELINE" ledger export
cp "$T/out" export.jsonl
expect_rc 0 "export csv" "$FUSELINE" ledger export --format csv
cp "$T/out" export.csv
sqlite3 -json fuseline.db "SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details,
    lower(hex(prev_hash)) AS prev_hash, lower(hex(hash)) AS hash FROM events ORDER BY id" > ref.json
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
pass "JSONL and CSV (python csv/json) equal the rows the sqlite3 CLI reads"
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
python3 - "$T/out" "$(sqlite3 fuseline.db "SELECT group_concat(id) FROM events WHERE ecid='$E1' ORDER BY id")" <<'EOF' || fail "show --json"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["device"]["state"] == "planned" and o["device"]["chip"] == "t234" and o["device"]["serial"] == "SN-1", o
assert ",".join(str(e["id"]) for e in o["events"]) == sys.argv[2], (o["events"], sys.argv[2])
assert len(o["dangling_intents"]) == 1 and o["certificates"] == []
EOF
pass "show --json lists the device's events as sqlite3 sees them"
expect_rc 2 "show unknown ECID" "$FUSELINE" ledger show 00000000000000000000000000000001
expect_err "not in it"
[ ! -s "$T/out" ] || fail "show printed something for an unknown ECID"
expect_rc 2 "show bad ECID" "$FUSELINE" ledger show 1234
expect_err "hex digits"
expect_rc 2 "show without ECID" "$FUSELINE" ledger show

# ---- the sqlite3 CLI cannot edit events while the triggers stand ------------------------
cp fuseline.db pristine.db; cp fuseline.db-wal pristine.db-wal 2>/dev/null || true
set +e; sqlite3 fuseline.db "UPDATE events SET outcome='failed' WHERE id=2" 2>"$T/err"; rc=$?; set -e
[ $rc -ne 0 ] && grep -q "append-only" "$T/err" || fail "UPDATE on events was not refused"
set +e; sqlite3 fuseline.db "DELETE FROM events WHERE id=6" 2>"$T/err"; rc=$?; set -e
[ $rc -ne 0 ] && grep -q "append-only" "$T/err" || fail "DELETE on events was not refused"
pass "triggers refuse UPDATE and DELETE from the sqlite3 CLI"

# ---- tampering after dropping the triggers: exit 5 naming the event ---------------------
tamper() { # name sql kind event
  rm -f t.db t.db-wal t.db-shm; sqlite3 pristine.db ".backup t.db"
  sqlite3 t.db "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; $2"
  expect_rc 5 "verify after $1" "$FUSELINE" verify ledger --db t.db --json
  python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["ok"] is False and o["fault"]["kind"]==sys.argv[2] and o["fault"]["event"]==int(sys.argv[3]), o' \
    "$T/out" "$3" "$4" || fail "$1: $(head -1 "$T/out")"
  expect_err "event $4"
  set +e; $CHAIN t.db >/dev/null; rc=$?; set -e
  [ $rc -eq 5 ] || fail "$1: the independent check did not notice either"
}
tamper "an edited outcome" "UPDATE events SET outcome='failed' WHERE id=3" edited 3
tamper "an edited operator" "UPDATE events SET operator='mallory' WHERE id=1" edited 1
tamper "a deleted event" "DELETE FROM events WHERE id=4" deleted 5
tamper "reordered events" "UPDATE events SET id=-1 WHERE id=2; UPDATE events SET id=2 WHERE id=3; UPDATE events SET id=3 WHERE id=-1" reordered 2
tamper "a replaced hash" "UPDATE events SET hash=zeroblob(32) WHERE id=5" edited 5
# an attacker who knows the format edits event 3 and re-hashes it: 4 no longer links
rm -f t.db*; sqlite3 pristine.db ".backup t.db"
sqlite3 t.db "DROP TRIGGER events_no_update; UPDATE events SET outcome='failed' WHERE id=3"
python3 - t.db "$SRCDIR/tests/tools" <<'PY'
import hashlib, sqlite3, sys
sys.path.insert(0, sys.argv[2])
chain = __import__("ledger-chain")
db = sqlite3.connect(sys.argv[1])
row = db.execute("SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash "
                 "FROM events WHERE id = 3").fetchone()
h = hashlib.sha256(bytes(row[10]) + chain.canon(row[:10])).digest()
db.execute("UPDATE events SET hash = ? WHERE id = 3", (h,))
db.commit()
PY
expect_rc 5 "verify after a re-hashed edit" "$FUSELINE" verify ledger --db t.db --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["fault"]["kind"]=="broken-link" and o["fault"]["event"]==4, o' \
  "$T/out" || fail "re-hashed edit: $(head -1 "$T/out")"
# the newest event removed: only sqlite_sequence remembers it
rm -f t.db*; sqlite3 pristine.db ".backup t.db"
sqlite3 t.db "DROP TRIGGER events_no_delete; DELETE FROM events WHERE id=6"
expect_rc 5 "verify after deleting the newest event" "$FUSELINE" verify ledger --db t.db
expect_err "event 6"
# the device table edited behind the ledger's back
rm -f t.db*; sqlite3 pristine.db ".backup t.db"
sqlite3 t.db "UPDATE devices SET state='fused' WHERE ecid='$E1'"
expect_rc 5 "verify after editing a device's state" "$FUSELINE" verify ledger --db t.db
expect_err "device $E1"

# ---- files that are not (our) ledgers ---------------------------------------------------
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

# ---- a read-only database: a clear error, nothing written -------------------------------
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
  $CHAIN f.db >/dev/null || fail "independent chain check after ENOSPC"
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
$CHAIN g.db >/dev/null || fail "independent chain check after the file-size limit"

done_testing
