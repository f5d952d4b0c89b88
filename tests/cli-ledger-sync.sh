# cli-ledger-sync.sh — store and forward: a station keeps recording into its
# spool while the central ledger is unreachable, `fuseline ledger sync`
# uploads the backlog in order, once, across crashes, and tampering on either
# side is found. Checked with independent tools: the sqlite3 CLI, Python's
# sqlite3 and tests/tools/ledger-forwarded.py / ledger-chain.py (the formats
# recomputed from README.md).
#
# The central ledger is a SQLite file on a "share" (a directory that is
# moved away to make it unreachable, as an unmounted share is), and, when
# tests/lib-pg.sh can start a throwaway server, PostgreSQL too (stopped and
# started) — see the end.
. "$SRCDIR/tests/lib.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
CHAIN="python3 $SRCDIR/tests/tools/ledger-chain.py"
FWD="python3 $SRCDIR/tests/tools/ledger-forwarded.py"
export FUSELINE_STATION=bay-3 FUSELINE_OPERATOR=alice
unset FUSELINE_DB FUSELINE_SPOOL
E0=80012344705df1172c0000000d020080
mkdir share
C=share/central.db
S=spool.db
ecid() { printf '%032x' "$1"; }
count() { sqlite3 "$1" "SELECT count(*) FROM events"; }
jfield() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])' "$T/out" "$1"; }

expect_rc 0 "ledger sync --help" "$FUSELINE" ledger sync --help
grep -q "Examples:" "$T/out" || fail "sync --help has no examples"
expect_rc 2 "sync without a spool" "$FUSELINE" ledger sync --db "$C"
expect_err "spool"

# ---- online: the spool is not used ------------------------------------------------
run "$W" --db "$C" --spool "$S" --ecid $E0 --state planned --chip t234 --quiet
[ "$RC" -eq 0 ] || fail "online writer: $(cat "$T/err")"
[ "$(count "$C")" -eq 1 ] || fail "online event not on central"
[ ! -e "$S" ] || fail "the spool was created while central was reachable"
pass "online: events go to the central ledger, no spool file"

# 'forwarded' is the ledger's own key
expect_rc 2 "details with a 'forwarded' key" "$W" --db "$C" --details '{"forwarded":{"seq":1}}'
expect_err "forwarded"

# ---- the server goes away: 50 boards, one process each, as a station does -----------
mv share share.off
for i in $(seq 1 50); do
  run "$W" --db "$C" --spool "$S" --ecid "$(ecid $i)" --kind pair --state fused --chip t234 --tag "board$i" --quiet
  [ "$RC" -eq 0 ] || fail "board $i offline: exit $RC: $(cat "$T/err")"
  [ "$i" -ne 1 ] || grep -q "unreachable" "$T/err" || fail "the writer did not say it is spooling"
done
[ "$(count "$S")" -eq 100 ] || fail "spool holds $(count "$S") events, expected 100"
$CHAIN "$S" >/dev/null || fail "the spool's chain does not recompute"
pass "central unreachable: 50 boards (100 events) recorded in the spool, chained"

# enrolment (a certificate) is never spooled
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -subj /CN=dev -days 1 \
  -outform DER -out cert.der 2>/dev/null
expect_rc 4 "a certificate while offline" "$W" --db "$C" --spool "$S" --ecid "$(ecid 1)" --cert cert.der
expect_err "never spooled"
[ "$(count "$S")" -eq 100 ] || fail "the refused certificate event reached the spool"

expect_rc 4 "sync while the central ledger is unreachable" "$FUSELINE" ledger sync --db "$C" --spool "$S"
expect_err "unreachable"
expect_rc 0 "verify ledger --spool offline (spool chain only)" "$FUSELINE" verify ledger --db "$C" --spool "$S"
grep -q "not cross-checked" "$T/err" || fail "verify --spool did not say the uploads were not cross-checked"

# ---- back online, backlog first: a new event still goes to the spool (order) -------
mv share.off share
run "$W" --db "$C" --spool "$S" --tag late --quiet
[ "$RC" -eq 0 ] || fail "late writer: $(cat "$T/err")"
grep -q "not uploaded yet" "$T/err" || fail "the writer did not say why it spools"
[ "$(count "$S")" -eq 101 ] && [ "$(count "$C")" -eq 1 ] || fail "with a backlog the event must go to the spool"
pass "central back with a backlog: new events queue behind it in the spool"
# ... and so does enrolment, refused until the backlog is gone
expect_rc 4 "a certificate while the backlog is pending" "$W" --db "$C" --spool "$S" --ecid "$(ecid 1)" --cert cert.der

cp "$S" spool-before-sync.db
expect_rc 0 "ledger sync" "$FUSELINE" ledger sync --db "$C" --spool "$S" --json
[ "$(jfield uploaded)" -eq 101 ] && [ "$(jfield pending)" -eq 101 ] || fail "sync: $(cat "$T/out")"
[ "$(count "$C")" -eq 102 ] || fail "central holds $(count "$C") events, expected 102"
run $FWD "$C" "$S"
[ "$RC" -eq 0 ] || fail "independent check: $(cat "$T/out")"
[ "$(cut -d' ' -f1 "$T/out")" -eq 101 ] || fail "independent check counts $(cat "$T/out")"
pass "all 101 uploaded in spool order, each the spool's event byte for byte plus its proof (independent check)"
$CHAIN "$C" >/dev/null || fail "central chain does not recompute"
expect_rc 0 "verify ledger on central" "$FUSELINE" verify ledger --db "$C"
expect_rc 0 "verify ledger --spool (cross-checked)" "$FUSELINE" verify ledger --db "$C" --spool "$S"
grep -q "not cross-checked" "$T/err" && fail "central was readable, yet not cross-checked"
# The device rows agree: fused t234 for every board
[ "$(sqlite3 "$C" "SELECT count(*) FROM devices WHERE state='fused' AND chip='t234'")" -eq 50 ] ||
  fail "central devices: $(sqlite3 "$C" "SELECT state, chip, count(*) FROM devices GROUP BY 1, 2")"

expect_rc 0 "a second sync" "$FUSELINE" ledger sync --db "$C" --spool "$S" --json
[ "$(jfield uploaded)" -eq 0 ] && [ "$(jfield pending)" -eq 0 ] || fail "second sync: $(cat "$T/out")"
[ "$(count "$C")" -eq 102 ] || fail "the second sync changed central"
pass "a second sync uploads nothing"

# backlog empty: events go to central again
run "$W" --db "$C" --spool "$S" --tag after --quiet
[ "$(count "$C")" -eq 103 ] && [ "$(count "$S")" -eq 101 ] || fail "after sync the event must go to central"
pass "backlog empty: events go to the central ledger again"
# ... and enrolment is allowed again (the certificate reaches central)
expect_rc 0 "a certificate online" "$W" --db "$C" --spool "$S" --ecid "$(ecid 1)" --cert cert.der --quiet

# ---- a crash after the central commit, before the spool's mark ---------------------
mv share share.off
run "$W" --db "$C" --spool "$S" --count 3 --tag crash --quiet
run "$W" --db "$C" --spool "$S" --details '{}' --quiet
[ "$RC" -eq 0 ] || fail "offline event with empty details: $(cat "$T/err")"
mv share.off share
expect_rc 0 "sync 3 more" "$FUSELINE" ledger sync --db "$C" --spool "$S"
N=$(count "$C")
# what the spool looks like if the process died right after central committed
sqlite3 "$S" "DROP TRIGGER spool_uploaded_no_delete; DELETE FROM spool_uploaded WHERE seq = (SELECT max(seq) FROM spool_uploaded);
  CREATE TRIGGER spool_uploaded_no_delete BEFORE DELETE ON spool_uploaded BEGIN SELECT RAISE(ABORT, 'x'); END;"
expect_rc 0 "re-sync after the lost mark" "$FUSELINE" ledger sync --db "$C" --spool "$S" --json
[ "$(jfield uploaded)" -eq 0 ] && [ "$(jfield already_uploaded)" -eq 1 ] || fail "re-sync: $(cat "$T/out")"
[ "$(count "$C")" -eq "$N" ] || fail "the event was uploaded twice"
$FWD "$C" "$S" >/dev/null || fail "independent check after the lost mark"
pass "an upload whose mark was lost is recognised by (spool, seq), not repeated"

# ---- kill -9 during sync, then re-sync ---------------------------------------------
mv share share.off
run "$W" --db "$C" --spool "$S" --count 400 --ecids 40 --state fused --tag burst --quiet
mv share.off share
before=$(count "$C")
# Deterministic, not a race with a timer: another writer holds the spool's write lock, so the
# sync uploads its first event (its own central transaction, committed) and then waits to mark it
# in the spool — the window between the two commits. The test sees the event arrive on central
# and kills the sync there; the lock is released only afterwards.
python3 - "$S" gate.locked gate.release <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.01)
db.execute("ROLLBACK")
PY
GATE=$!
for _ in $(seq 600); do [ -e gate.locked ] && break; sleep 0.05; done
[ -e gate.locked ] || fail "the spool lock holder did not start"
marks=$(sqlite3 "$S" "SELECT count(*) FROM spool_uploaded")
"$FUSELINE" ledger sync --db "$C" --spool "$S" >/dev/null 2>sync.err &
pid=$!
for _ in $(seq 1000); do [ "$(count "$C")" -gt "$before" ] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null || true
set +e; wait $pid; rc=$?; set -e
touch gate.release; wait $GATE
[ "$rc" -eq 137 ] || fail "the sync was not killed mid-way: exit $rc: $(cat sync.err)"
now=$(count "$C")
[ "$now" -gt "$before" ] && [ "$now" -lt $((before + 400)) ] || fail "kill -9 mid-sync: central went $before -> $now"
[ "$(sqlite3 "$S" "SELECT count(*) FROM spool_uploaded")" -eq "$marks" ] || fail "the killed sync marked an upload"
pass "kill -9 landed mid-sync: $((now - before)) central event(s) committed, their spool mark not"
expect_rc 0 "re-sync after kill -9" "$FUSELINE" ledger sync --db "$C" --spool "$S" --json
[ "$(jfield already_uploaded)" -eq 1 ] && [ "$(jfield uploaded)" -eq $(($(jfield pending) - 1)) ] ||
  fail "re-sync after kill -9: $(cat "$T/out")"
run $FWD "$C" "$S"
[ "$RC" -eq 0 ] || fail "after kill -9: $(cat "$T/out")"
[ "$(sqlite3 "$C" "SELECT count(*) FROM forwarded")" -eq "$(count "$S")" ] || fail "forwarded rows != spool events"
[ "$(sqlite3 "$C" "SELECT count(*) FROM (SELECT json_extract(details, '\$.forwarded.seq') s FROM events
      WHERE json_extract(details, '\$.forwarded.seq') IS NOT NULL GROUP BY s HAVING count(*) > 1)")" -eq 0 ] ||
  fail "a spool event was forwarded twice"
expect_rc 0 "verify central after kill -9" "$FUSELINE" verify ledger --db "$C"
pass "kill -9 during sync: nothing lost, nothing twice"

# ---- tampering ---------------------------------------------------------------------
# a spool event edited before it was uploaded: sync refuses, nothing uploaded
mv share share.off
run "$W" --db "$C" --spool "$S" --count 2 --tag tamper --quiet
mv share.off share
cp "$S" t-spool.db
SEQ=$(sqlite3 t-spool.db "SELECT max(id) FROM events")
sqlite3 t-spool.db "DROP TRIGGER events_no_update; UPDATE events SET outcome = 'failed' WHERE id = $SEQ"
N=$(count "$C")
expect_rc 5 "sync of a tampered spool" "$FUSELINE" ledger sync --db "$C" --spool t-spool.db
expect_err "event $SEQ"
[ "$(count "$C")" -eq "$N" ] || fail "a tampered spool uploaded something"
expect_rc 5 "verify ledger --spool on the tampered spool" "$FUSELINE" verify ledger --db "$C" --spool t-spool.db --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["fault"]["kind"]=="edited" and o["fault"]["event"]==int(sys.argv[2]), o' \
  "$T/out" "$SEQ" || fail "tampered spool: $(cat "$T/out")"
expect_rc 0 "sync of the intact spool" "$FUSELINE" ledger sync --db "$C" --spool "$S"

# a forwarded event edited on the server (the superuser lifts the guard)
F=$(sqlite3 "$C" "SELECT id FROM events WHERE json_extract(details, '\$.forwarded.seq') = 7")
cp "$C" t-central.db
sqlite3 t-central.db "DROP TRIGGER events_no_update; UPDATE events SET outcome = 'failed' WHERE id = $F;
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'x'); END;"
expect_rc 5 "verify a central ledger with an edited forwarded event" "$FUSELINE" verify ledger --db t-central.db
expect_err "event $F"
# ... and re-hashed, every event after it too (one who knows the format):
# the central chain is whole again, the proof from the station is not
python3 - t-central.db "$SRCDIR/tests/tools" <<'PY'
import hashlib, sqlite3, sys, importlib.util, os
spec = importlib.util.spec_from_file_location("chain", os.path.join(sys.argv[2], "ledger-chain.py"))
chain = importlib.util.module_from_spec(spec); spec.loader.exec_module(chain)
db = sqlite3.connect(sys.argv[1])
db.execute("DROP TRIGGER events_no_update")
prev = bytes(32)
for row in db.execute("SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details "
                      "FROM events ORDER BY id").fetchall():
    h = hashlib.sha256(prev + chain.canon(row)).digest()
    db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", (prev, h, row[0]))
    prev = h
db.execute("CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'x'); END")
db.commit()
PY
$CHAIN t-central.db >/dev/null || fail "the rewrite did not make the central chain whole (test bug)"
expect_rc 5 "verify a rewritten central ledger" "$FUSELINE" verify ledger --db t-central.db --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["fault"]["kind"]=="edited" and o["fault"]["event"]==int(sys.argv[2]) and "spool" in o["fault"]["message"], o' \
  "$T/out" "$F" || fail "rewritten central: $(cat "$T/out")"
expect_rc 5 "verify --spool against the rewritten central ledger" "$FUSELINE" verify ledger --db t-central.db --spool "$S" --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["fault"]["kind"]=="edited" and o["fault"]["event"]==7, o' \
  "$T/out" || fail "verify --spool vs rewritten central: $(cat "$T/out")"
pass "a forwarded event edited on the server is found, even with the central chain re-hashed"

# a forwarded event deleted from the proof sequence (the superuser removes it and
# re-hashes): the station's seqs are no longer consecutive
cp "$C" t2.db
python3 - t2.db "$SRCDIR/tests/tools" <<'PY'
import hashlib, sqlite3, sys, importlib.util, os, json
spec = importlib.util.spec_from_file_location("chain", os.path.join(sys.argv[2], "ledger-chain.py"))
chain = importlib.util.module_from_spec(spec); spec.loader.exec_module(chain)
db = sqlite3.connect(sys.argv[1])
for t in ("events_no_update", "events_no_delete", "forwarded_no_delete"):
    db.execute("DROP TRIGGER " + t)
db.execute("PRAGMA foreign_keys = OFF")
victim = db.execute("SELECT id FROM events WHERE json_extract(details, '$.forwarded.seq') = 9").fetchone()[0]
db.execute("DELETE FROM forwarded WHERE event_id = ?", (victim,))
db.execute("DELETE FROM events WHERE id = ?", (victim,))
rows = db.execute("SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details "
                  "FROM events ORDER BY id").fetchall()
prev = bytes(32)
for i, row in enumerate(rows, 1):
    row = (i,) + row[1:]
    h = hashlib.sha256(prev + chain.canon(row)).digest()
    db.execute("UPDATE events SET id = ?, prev_hash = ?, hash = ? WHERE id = ?", (-i, prev, h, rows[i - 1][0]))
    prev = h
db.execute("UPDATE events SET id = -id")
db.execute("UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM events) WHERE name = 'events'")
db.commit()
PY
expect_rc 5 "verify after a forwarded event was removed and the chain rebuilt" "$FUSELINE" verify ledger --db t2.db
expect_err "seq 10"
pass "a forwarded event removed on the server (chain rebuilt) is found: the station's seqs skip"


# ---- a recreated spool whose first event is the same bytes -------------------------
# The spool's id is its first event's hash: a spool file recreated (or copied)
# with an identical event 1 shares it, and its (spool, seq) keys. Made here on
# purpose: one spool with event 1, copied, then a different event 2 in each.
C2=share2/c.db
w2() { run "$W" --db "$C2" --spool "$@" --quiet; [ "$RC" -eq 0 ] || fail "writer $*: $(cat "$T/err")"; }
w2 r1.db --tag first --time 2024-06-01T08:00:00Z
cp r1.db r2.db
w2 r1.db --tag second-a
w2 r2.db --tag second-b
[ "$(sqlite3 r1.db "SELECT hash FROM events WHERE id = 1")" = "$(sqlite3 r2.db "SELECT hash FROM events WHERE id = 1")" ] ||
  fail "the copies' first events differ (test bug)"
H1=$(sqlite3 r1.db "SELECT lower(hex(hash)) FROM events WHERE id = 2")
H2=$(sqlite3 r2.db "SELECT lower(hex(hash)) FROM events WHERE id = 2")
[ "$H1" != "$H2" ] || fail "the copies' second events are the same (test bug)"
mkdir share2
expect_rc 0 "sync the first spool" "$FUSELINE" ledger sync --db "$C2" --spool r1.db --json
[ "$(jfield uploaded)" -eq 2 ] || fail "first spool: $(cat "$T/out")"
expect_rc 5 "sync a second spool with the same first event" "$FUSELINE" ledger sync --db "$C2" --spool r2.db
expect_err "$H1"
expect_err "$H2"
[ "$(count "$C2")" -eq 2 ] || fail "central changed: $(count "$C2") events"
[ "$(sqlite3 r2.db "SELECT count(*) FROM spool_uploaded WHERE seq = 2")" -eq 0 ] ||
  fail "the other spool's event 2 was marked uploaded"
# still refused on a second try, nothing marked
expect_rc 5 "sync it again" "$FUSELINE" ledger sync --db "$C2" --spool r2.db
[ "$(sqlite3 r2.db "SELECT count(*) FROM spool_uploaded WHERE seq = 2")" -eq 0 ] || fail "marked on the retry"
pass "a recreated spool sharing event 1 is refused at its first different event (both local hashes named)"

done_testing
