# line-burn-interrupt.sh — Ctrl-C during a burn: no new device is started,
# the burn in progress is never abandoned (its tools run in their own process
# group, so the terminal's SIGINT does not reach them), and the result says
# which devices were skipped.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-ledger.sh"
line_setup --step-seconds 0.3
# The ledger: $T/ledger.db, or on PostgreSQL (the -pg registration) a database as a station sees it.
if is_pg; then export FUSELINE_DB; FUSELINE_DB=$(ldb ledger); fi
"$FUSELINE" keygen --chip t234 --pkc p256 --name ci --lab --out ks.json -q >/dev/null 2>&1
"$FUSELINE" fuse-xml --keyset ks.json --out plan.xml -q --production-mode
"$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$L/bsp/Linux_for_Tegra" --board orin-nano-8gb --plan plan.xml -q
for i in 1 2 3; do "$VLINE" add "$L" "1-2.$i" orin-nano-8gb >/dev/null; done

# One device at a time; SIGINT to fuseline (not its tools) once the first
# burn has started: the way a terminal's Ctrl-C reaches the foreground job.
"$VLINE" run "$L" -- "$FUSELINE" burn --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --jobs 1 \
  --commit --yes --allow-lab-keys --log-dir "$T/logs" --json >"$T/out" 2>"$T/err" &
job=$!
for _ in $(seq 600); do
  ls "$T"/logs/run-*/1-2.1-burnfuses.log >/dev/null 2>&1 && break
  sleep 0.1
done
ls "$T"/logs/run-*/1-2.1-burnfuses.log >/dev/null 2>&1 || fail "the first burn never started"
# This test's fuseline: the process named fuseline whose working directory is $T.
under_T() { for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = "$1" ] && echo "${p#/proc/} $(cat "$p/comm" 2>/dev/null)"; done; true; }
fl=$(under_T "$T" | awk '$2 == "fuseline" { print $1 }' | head -1)
[ -n "$fl" ] || fail "fuseline not found"
kill -INT "$fl"
set +e; wait "$job"; RC=$?; set -e
[ "$RC" -eq 130 ] || fail "interrupted run: exit $RC, expected 130 (128 + SIGINT)"
grep -q 'burns in progress finish' "$T/err" || fail "the operator was not told the burn goes on"
python3 - "$T/out" <<'PY' || fail "per-device results after Ctrl-C"
import json, sys
r = {o.get("instance"): o for o in map(json.loads, open(sys.argv[1])) if "instance" in o}
s = [o for o in map(json.loads, open(sys.argv[1])) if o.get("summary")][0]
assert r["1-2.1"]["verdict"] == "pass", r["1-2.1"]
assert r["1-2.2"]["verdict"] == "skipped" and r["1-2.3"]["verdict"] == "skipped", (r["1-2.2"], r["1-2.3"])
assert s["interrupted"] == "SIGINT" and s["passed"] == 1 and s["skipped"] == 2, s
PY
pass "Ctrl-C: the running burn finished (PASS), the other two were not started (SKIPPED), exit 130"
[ "$(dev 1-2.1 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "the burn in progress was abandoned"
[ "$(dev 1-2.2 'd["burns"]')" = 0 ] && [ "$(dev 1-2.3 'd["burns"]')" = 0 ] ||
  fail "a device was burned after Ctrl-C"
pass "the virtual devices agree: 1-2.1 burned, 1-2.2 and 1-2.3 not"
for p in /proc/[0-9]*; do
  case "$(readlink "$p/cwd" 2>/dev/null)" in "$T"/*) fail "a tool outlived the run: $(tr '\0' ' ' < "$p/cmdline")";; esac
done
pass "no tool left running"
expect_rc 0 "verify ledger after an interrupted run" "$FUSELINE" verify ledger
# the burn that finished has its intent and its result; the skipped devices none (read with the
# backend's own client)
lsql ledger "SELECT kind || ' ' || outcome FROM events WHERE command = 'burn' AND ecid IS NOT NULL ORDER BY id" > burn-events
[ "$(grep -c '^intent ' burn-events)" -eq 1 ] && [ "$(grep -c '^result ' burn-events)" -eq 1 ] \
  || fail "burn events after Ctrl-C: $(tr '\n' ';' < burn-events)"
lchain ledger >/dev/null || fail "the independent chain recomputation rejects the ledger"
pass "the ledger holds one intent and one result (the finished burn), and its chain recomputes"
done_testing
