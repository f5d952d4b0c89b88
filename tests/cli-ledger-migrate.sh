# cli-ledger-migrate.sh — `fuseline ledger migrate`: a real ledger (devices,
# intents and results, certificates with a supersede, a signed checkpoint,
# forwarded events) copied verbatim, the copy verified, a re-run a no-op, a
# partial copy completed, a broken source and a foreign target refused.
# Checked with independent tools: the sqlite3 CLI (table dumps compared),
# tests/tools/ledger-chain.py (the chain recomputed), openssl (the
# checkpoint signature made outside fuseline).
. "$SRCDIR/tests/lib.sh"
: "${LEDGER_WRITER:?}"
W=$LEDGER_WRITER
CHAIN="python3 $SRCDIR/tests/tools/ledger-chain.py"
export FUSELINE_STATION=line1 FUSELINE_OPERATOR=bob
unset FUSELINE_DB FUSELINE_SPOOL
E1=80012344705df1172c0000000d020080
count() { sqlite3 "$1" "SELECT count(*) FROM events"; }
jfield() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])' "$T/out" "$1"; }
# Every table a migration copies, as text (blobs in hex), in a fixed order.
dump() {
  sqlite3 "$1" "SELECT id, time, station, operator, command, ecid, kind, intent_id, outcome, details, hex(prev_hash), hex(hash) FROM events ORDER BY id;
    SELECT * FROM devices ORDER BY ecid;
    SELECT fingerprint, ecid, hex(der), issuer, serial, not_before, not_after, status, added FROM certificates ORDER BY fingerprint;
    SELECT id, time, event_id, hex(head_hash), role, key_uri, scheme, hex(public_key), hex(signature) FROM checkpoints ORDER BY id;
    SELECT * FROM forwarded ORDER BY spool, seq;"
}
w() { run "$W" "$@" --quiet; [ "$RC" -eq 0 ] || fail "writer $*: $(cat "$T/err")"; }

expect_rc 0 "ledger migrate --help" "$FUSELINE" ledger migrate --help
grep -q "Examples:" "$T/out" || fail "migrate --help has no examples"
expect_rc 2 "migrate without --to" "$FUSELINE" ledger migrate --from x.db

# ---- a station ledger with everything in it --------------------------------------------
for n in 1 2; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k$n.pem -subj "/CN=dev$n" -days 1 \
    -outform DER -out c$n.der 2>/dev/null
done
w --db src.db --count 3 --ecid $E1 --state planned --chip t234 --serial SN-1 --time 2024-05-01T10:00:00Z
cp src.db src-at-3.db
w --db src.db --ecid $E1 --kind pair --state fused
w --db src.db --ecid $E1 --cert c1.der --state enrolled
w --db src.db --ecid $E1 --cert c2.der --supersede --details '{"why":"rekey","n":1.50,"u":"caf\u00e9 \"q\""}'
w --db src.db --ecids 5 --count 10 --state fused
# a signed checkpoint of the head, made with openssl (P-384, raw r||s as a token returns it)
openssl ecparam -name secp384r1 -genkey -noout -out cp.pem 2>/dev/null
openssl ec -in cp.pem -pubout -outform DER -out cp.pub.der 2>/dev/null
python3 - src.db <<'PY' || fail "cannot build the checkpoint message"
import sqlite3, struct
db = sqlite3.connect("src.db")
ev, head = db.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
F = lambda b: struct.pack(">I", len(b)) + b
open("cp.msg", "wb").write(F(b"fuseline-checkpoint/1") + F(struct.pack(">q", ev)) + F(bytes(head)) + F(b"2024-05-02T00:00:00Z"))
open("cp.ev", "w").write(str(ev))
PY
openssl dgst -sha384 -sign cp.pem -out cp.sig.der cp.msg
python3 - src.db <<'PY' || fail "cannot store the checkpoint"
import sqlite3
der = open("cp.sig.der", "rb").read()
# DER ECDSA-Sig-Value -> raw r||s, 48 bytes each
def ints(b):
    i, out = 2 if b[1] < 0x80 else 3, []
    while i < len(b):
        n = b[i + 1]; out.append(b[i + 2:i + 2 + n]); i += 2 + n
    return out
r, s = (x.lstrip(b"\0").rjust(48, b"\0") for x in ints(der))
db = sqlite3.connect("src.db")
ev = int(open("cp.ev").read())
head = db.execute("SELECT hash FROM events WHERE id = ?", (ev,)).fetchone()[0]
db.execute("INSERT INTO checkpoints (id, time, event_id, head_hash, role, key_uri, scheme, public_key, signature) "
           "VALUES (1, '2024-05-02T00:00:00Z', ?, ?, 'station', 'pkcs11:object=cp', 'ecdsa-sha384', ?, ?)",
           (ev, head, open("cp.pub.der", "rb").read(), r + s))
db.commit()
PY
w --db src.db --count 2 --tag after-checkpoint
N=$(count src.db)
expect_rc 0 "the source verifies" "$FUSELINE" verify ledger --db src.db
grep -q "signed checkpoints: 1" "$T/out" || fail "the hand-made checkpoint is not accepted: $(cat "$T/out")"
[ "$(sqlite3 src.db "SELECT count(*) FROM certificates WHERE status='superseded'")" -eq 1 ] || fail "no superseded certificate"

# ---- migrate ------------------------------------------------------------------------------
expect_rc 0 "ledger migrate" "$FUSELINE" ledger migrate --from src.db --to dst.db --json
[ "$(jfield imported)" -eq "$N" ] && [ "$(jfield events)" -eq "$N" ] && [ "$(jfield certificates)" -eq 2 ] &&
  [ "$(jfield checkpoints)" -eq 1 ] || fail "migrate: $(cat "$T/out")"
dump src.db > src.dump; dump dst.db > dst.dump
cmp -s src.dump dst.dump || { diff src.dump dst.dump | head >&2; fail "the copy differs from the source"; }
[ "$($CHAIN dst.db)" = "$($CHAIN src.db)" ] || fail "the copy's chain head differs"
expect_rc 0 "the copy verifies (checkpoint signature included)" "$FUSELINE" verify ledger --db dst.db
grep -q "signed checkpoints: 1" "$T/out" || fail "checkpoint not verified on the copy"
pass "every event, device, certificate and checkpoint copied byte for byte (sqlite3 dumps equal)"

sum=$(dump dst.db | sha256sum)
expect_rc 0 "migrate again" "$FUSELINE" ledger migrate --from src.db --to dst.db --json
[ "$(jfield imported)" -eq 0 ] || fail "re-run imported: $(cat "$T/out")"
[ "$(dump dst.db | sha256sum)" = "$sum" ] || fail "the re-run changed the target"
pass "a re-run is a no-op"

# a target holding this chain's first events (an earlier copy): the rest is added
expect_rc 0 "migrate the early state" "$FUSELINE" ledger migrate --from src-at-3.db --to part.db
expect_rc 0 "complete the partial copy" "$FUSELINE" ledger migrate --from src.db --to part.db --json
[ "$(jfield imported)" -eq $((N - 3)) ] || fail "completion imported: $(cat "$T/out")"
dump part.db > part.dump
cmp -s src.dump part.dump || fail "the completed copy differs from the source"
pass "a partial copy (the chain's prefix) is completed, not duplicated"

# ---- refusals ------------------------------------------------------------------------------
cp src.db broken.db
sqlite3 broken.db "DROP TRIGGER events_no_update; UPDATE events SET outcome='failed' WHERE id=4"
expect_rc 5 "a broken source" "$FUSELINE" ledger migrate --from broken.db --to frombroken.db
expect_err "event 4"
[ ! -e frombroken.db ] || [ "$(count frombroken.db)" -eq 0 ] || fail "a broken source was copied"

# a destination that fails its check with the import in it (here: its copy of the prefix was
# edited, the hashes kept, so the prefix check by id and hash passes): nothing of the import stays
expect_rc 0 "an early copy" "$FUSELINE" ledger migrate --from src-at-3.db --to edited.db
sqlite3 edited.db "DROP TRIGGER events_no_update; UPDATE events SET outcome = 'failed' WHERE id = 2;
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'x'); END;"
sum=$(dump edited.db | sha256sum)
expect_rc 5 "a destination that fails its check after the copy" "$FUSELINE" ledger migrate --from src.db --to edited.db
expect_err "event 2"
expect_err "rolled back"
[ "$(count edited.db)" -eq 3 ] && [ "$(dump edited.db | sha256sum)" = "$sum" ] ||
  fail "a failing destination kept the import ($(count edited.db) events)"
pass "a destination failing its check keeps nothing of the import"

# rows appended to the source after it was verified are never copied unverified: the source is
# verified in the snapshot the copy reads. Another writer holds the destination's lock, so the
# migration waits for it; meanwhile an event with a wrong hash is appended to the source.
cp src.db race-src.db
expect_rc 0 "a copy to race" "$FUSELINE" ledger migrate --from src-at-3.db --to race.db
python3 - race.db locked release <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.01)
db.execute("ROLLBACK")
PY
GATE=$!
for _ in $(seq 600); do [ -e locked ] && break; sleep 0.05; done
[ -e locked ] || fail "the lock holder did not start"
"$FUSELINE" ledger migrate --from race-src.db --to race.db >race.out 2>race.err &
MIG=$!
sleep 1   # the migration is now waiting for race.db's lock (an old build had verified the source by then)
kill -0 $MIG 2>/dev/null || fail "the migration did not wait for the lock: $(cat race.err)"
BAD=$(($(count race-src.db) + 1))
sqlite3 race-src.db "INSERT INTO events (id, time, station, operator, command, ecid, kind, intent_id, outcome, details,
  prev_hash, hash) SELECT $BAD, time, station, operator, command, ecid, kind, NULL, 'ok', '{}', hash, zeroblob(32)
  FROM events WHERE id = $((BAD - 1))"
touch release
wait $GATE
set +e; wait $MIG; rc=$?; set -e
[ "$rc" -eq 5 ] || fail "migrating a source appended to while it waited: exit $rc: $(cat race.err)"
grep -q "event $BAD" race.err || fail "the error does not name event $BAD: $(cat race.err)"
[ "$(count race.db)" -eq 3 ] || fail "the destination took $(($(count race.db) - 3)) unverified events"
pass "an event appended to the source while the migration waited is verified, and refused"

w --db other.db --count 2 --tag other
sum=$(dump other.db | sha256sum)
expect_rc 7 "a foreign non-empty target" "$FUSELINE" ledger migrate --from src.db --to other.db
expect_err "other.db"
[ "$(dump other.db | sha256sum)" = "$sum" ] || fail "the foreign target was changed"
# the target ahead of the source (the source is its prefix): not this ledger either
expect_rc 7 "a target longer than the source" "$FUSELINE" ledger migrate --from src-at-3.db --to dst.db
[ "$(count dst.db)" -eq "$N" ] || fail "the longer target was changed"
# no events, but a device row of its own: not empty either
w --db devonly.db --count 1 --tag x
sqlite3 devonly.db "DROP TRIGGER events_no_delete; DELETE FROM events; INSERT INTO devices (ecid, state, first_seen, last_seen) VALUES ('$(printf '%032x' 5)', 'blank', 't', 't')"
expect_rc 7 "a target with rows but no events" "$FUSELINE" ledger migrate --from src.db --to devonly.db
expect_err "holds devices"
expect_rc 2 "the same ledger twice" "$FUSELINE" ledger migrate --from src.db --to src.db
expect_rc 2 "a missing source" "$FUSELINE" ledger migrate --from none.db --to new.db
[ ! -e none.db ] || fail "the missing source was created"

# ---- a central ledger with forwarded events moves with its upload keys ------------------
mkdir share
w --db share/c.db --count 1 --tag central
mv share share.off
w --db share/c.db --spool spool.db --ecids 3 --count 6 --state fused --tag offline
mv share.off share
expect_rc 0 "sync" "$FUSELINE" ledger sync --db share/c.db --spool spool.db
expect_rc 0 "migrate the central ledger" "$FUSELINE" ledger migrate --from share/c.db --to moved.db
[ "$(sqlite3 moved.db "SELECT count(*) FROM forwarded")" -eq 6 ] || fail "forwarded rows not copied"
cmp -s <(dump share/c.db) <(dump moved.db) || fail "the moved central ledger differs"
expect_rc 0 "the moved central ledger verifies (forwarded proofs)" "$FUSELINE" verify ledger --db moved.db
# the spool forgets its last mark (a crash right after the upload): the moved
# ledger still knows the event by (spool, seq)
sqlite3 spool.db "DROP TRIGGER spool_uploaded_no_delete; DELETE FROM spool_uploaded WHERE seq = 6;
  CREATE TRIGGER spool_uploaded_no_delete BEFORE DELETE ON spool_uploaded BEGIN SELECT RAISE(ABORT, 'x'); END;"
expect_rc 0 "sync into the moved ledger" "$FUSELINE" ledger sync --db moved.db --spool spool.db --json
[ "$(jfield uploaded)" -eq 0 ] && [ "$(jfield already_uploaded)" -eq 1 ] || fail "the spool uploaded again: $(cat "$T/out")"
[ "$(count moved.db)" -eq 7 ] || fail "moved ledger has $(count moved.db) events"
pass "a central ledger's forwarded proofs and upload keys move with it"

done_testing
