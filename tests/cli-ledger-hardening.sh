#!/usr/bin/env bash
# Ledger edge cases: read-only media and a chain edited behind a writer's
# back. On a file system mounted read-only (a bind mount remounted ro in a
# private mount namespace, as an archive or a remounted disk is) readers
# verify, export and show the ledger, with the head the independent Python
# recomputation gives, and writers get SQLite's real error, not "not an
# error". Before appending, a writer checks the newest event against its
# hash and its predecessor and refuses (exit 5, naming it) when either was
# changed; the tampering is done with the sqlite3 CLI and Python only.
# On PostgreSQL (cli-ledger-hardening-pg, tests/lib-ledger.sh) the media cases
# are SQLite files' own and do not run; the refusals run with psql tampering.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-ledger.sh"
F=$FUSELINE
W=${LEDGER_WRITER:?}
CHAIN="python3 $SRCDIR/tests/tools/ledger-chain.py"
E=80012344705df1172c0000000d020080

# ro_run DIR CMD...: CMD with DIR read-only (its own mount namespace); stdout/stderr/RC as run.
RO=
if unshare -m true 2>/dev/null; then RO="unshare -m"; elif unshare -rm true 2>/dev/null; then RO="unshare -rm"; fi
ro_run() {
  local d=$1; shift
  run $RO sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"' sh "$d" "$@"
}

# ---- read-only media -------------------------------------------------------------------------------
if ! is_pg; then
mkdir arch
"$W" --db arch/line.db --count 5 --quiet || fail "writer"
"$W" --db arch/line.db --count 2 --ecid $E --quiet || fail "writer (device events)"
[ ! -e arch/line.db-wal ] || fail "the writer left a -wal behind a clean close"
want=$($CHAIN arch/line.db) || fail "chain: $want"
if [ -n "$RO" ] && $RO sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ! touch "$1/x"' sh "$T/arch" 2>/dev/null; then
  ro_run "$T/arch" "$F" verify ledger --db "$T/arch/line.db" --json
  [ "$RC" -eq 0 ] || fail "verify ledger on read-only media: exit $RC: $(cat "$T/err")"
  [ "$(jget "$T/out" 'd["events"]') $(jget "$T/out" 'd["head"]["hash"]')" = "$want" ] \
    || fail "verify ledger on read-only media: $(cat "$T/out") against the Python chain $want"
  pass "verify ledger on read-only media: exit 0, head as the independent recomputation"
  ro_run "$T/arch" "$F" ledger export --db "$T/arch/line.db"
  [ "$RC" -eq 0 ] && [ "$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)))' "$T/out")" -eq 7 ] \
    || fail "ledger export on read-only media: exit $RC, $(wc -l < "$T/out") lines"
  ro_run "$T/arch" "$F" ledger show $E --db "$T/arch/line.db"
  [ "$RC" -eq 0 ] || fail "ledger show on read-only media: exit $RC: $(cat "$T/err")"
  pass "ledger export and show on read-only media"
  ro_run "$T/arch" "$W" --db "$T/arch/line.db" --count 1
  [ "$RC" -eq 2 ] || fail "writer on read-only media: exit $RC, expected 2"
  grep -q "not an error" "$T/err" && fail "the writer's error hides SQLite's: $(cat "$T/err")"
  grep -q "read-only file system" "$T/err" || fail "the writer's error does not say why: $(cat "$T/err")"
  [ "$($CHAIN arch/line.db)" = "$want" ] || fail "the ledger changed"
  pass "a writer on read-only media: exit 2, 'read-only file system', nothing written"

  # A write-ahead log with events not yet in the main file: an immutable reader would not see
  # them, so it is refused rather than read short.
  mkdir walarch
  python3 - "$T/arch/line.db" "$T/walarch/line.db" "$W" <<'PY'
import shutil, sqlite3, subprocess, sys
src, dst, writer = sys.argv[1:4]
shutil.copy(src, dst)
c = sqlite3.connect(dst)            # a second connection keeps the log from being folded in
c.execute("PRAGMA wal_autocheckpoint=0"); c.execute("SELECT count(*) FROM events").fetchall()
subprocess.run([writer, "--db", dst, "--count", "2", "--quiet"], check=True)
shutil.copy(dst, dst + ".copy"); shutil.copy(dst + "-wal", dst + ".copy-wal")
PY
  mv walarch/line.db.copy walarch/arch.db; mv walarch/line.db.copy-wal walarch/arch.db-wal
  [ -s walarch/arch.db-wal ] || fail "no write-ahead log was produced for the test"
  ro_run "$T/walarch" "$F" verify ledger --db "$T/walarch/arch.db"
  [ "$RC" -eq 2 ] || fail "read-only ledger with a pending log: exit $RC, expected 2"
  expect_err "non-empty write-ahead log"
  pass "read-only media with a non-empty write-ahead log: refused (exit 2), not read short"
else
  not_run "read-only media cases: no private read-only bind mount possible here (unshare -m / -rm, mount)"
fi
# Without any mount: an immutable file in an immutable directory (chattr), where SQLite cannot
# create the -shm and -wal files.
mkdir imm && cp arch/line.db imm/line.db
if chattr +i imm/line.db imm 2>/dev/null; then
  run "$W" --db imm/line.db --count 1
  wrc=$RC; cp "$T/err" "$T/werr"
  run "$F" verify ledger --db imm/line.db
  chattr -i imm imm/line.db
  [ "$wrc" -eq 2 ] || fail "writer in an immutable directory: exit $wrc"
  grep -q "not an error" "$T/werr" && fail "the writer's error hides SQLite's: $(cat "$T/werr")"
  grep -q "unable to open database file" "$T/werr" || fail "the writer's error lacks SQLite's text: $(cat "$T/werr")"
  [ "$RC" -eq 0 ] || fail "verify ledger in an immutable directory: exit $RC: $(cat "$T/err")"
  pass "an immutable directory: the writer gets SQLite's error, verify ledger reads the ledger"
else
  not_run "immutable-directory case: chattr +i does not work on this file system"
fi
fi # SQLite files only

# ---- a writer refuses to extend a chain whose head was changed ----------------------------------------
mk() { if ! is_pg; then rm -f "$1.db"*; fi; "$W" --db "$(ldb "$1")" --count 4 --quiet || fail "writer"; }
events() { lsql "$1" "SELECT count(*) FROM events"; }

mk ok
expect_rc 0 "append to an intact ledger" "$W" --db "$(ldb ok)" --count 1 --quiet

mk edit
ltamper edit "UPDATE events SET outcome='ok-edited' WHERE id=4"
expect_rc 5 "append after the newest event was edited" "$W" --db "$(ldb edit)" --count 1
expect_err "event 4 (the newest"
grep -q "edited" "$T/err" || fail "the refusal does not say edited"
[ "$(events edit)" -eq 4 ] || fail "an event was appended to an edited chain"
run lchain edit; [ "$RC" -eq 5 ] && grep -q "BAD 4" "$T/out" || fail "Python check disagrees: $(cat "$T/out")"
pass "the newest event edited: the writer refuses (exit 5) naming event 4; nothing appended"

# Event 3 replaced and re-hashed correctly (Python, from the README's formula): event 3 is
# consistent in itself, but event 4 no longer follows it.
mk link
H=$(python3 - "$(ldb link)" "$SRCDIR/tests/tools" <<'PY'
import hashlib, sys
import importlib.util
spec = importlib.util.spec_from_file_location("chain", sys.argv[2] + "/ledger-chain.py")
chain = importlib.util.module_from_spec(spec); spec.loader.exec_module(chain)
row = [r for r in chain.events(sys.argv[1]) if r[0] == 3][0]
new = list(row[:10]); new[8] = "replaced"
print(hashlib.sha256(row[10] + chain.canon(new)).hexdigest())
PY
) || fail "re-hash in Python"
ltamper link "UPDATE events SET outcome = 'replaced', hash = $(lblob "$H") WHERE id = 3"
expect_rc 5 "append after the event before the newest was replaced" "$W" --db "$(ldb link)" --count 1
expect_err "event 4 (the newest"
grep -q "broken link: it does not follow event 3" "$T/err" || fail "no broken-link refusal: $(cat "$T/err")"
[ "$(events link)" -eq 4 ] || fail "an event was appended to a broken chain"
expect_rc 5 "verify ledger agrees" "$F" verify ledger --db "$(ldb link)"
pass "a replaced predecessor: the writer refuses (exit 5) with a broken link at event 4"
done_testing
