# line-burn.sh — burn, verify fuses and fuse-xml --package on the virtual
# line (tests/virtual-line: umockdev USB devices + the virtual BSP that
# reproduces NVIDIA's traps). Every verdict is checked against the virtual
# devices' own state (vline show), never against what fuseline printed alone.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-ledger.sh"
line_setup
# The ledger: $T/ledger.db, or on PostgreSQL (the -pg registration) a database as a station sees it.
if is_pg; then export FUSELINE_DB; FUSELINE_DB=$(ldb ledger); fi

jl() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("instance") == sys.argv[2]: print(eval(sys.argv[3]))' "$T/out" "$1" "$2"; }
B="$FUSELINE burn --log-dir $T/logs --readback-delay 20 --timeout 60"

# --- keys, plan, packages --------------------------------------------------
"$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --name vl --lab --out ks.json -q >/dev/null 2>&1
"$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml -q
PKH=$(sed -n 's/.*name="PublicKeyHash" size="64" value="0x\([0-9a-f]*\)".*/\1/p' plan.xml)
SBK=$(sed -n 's/.*name="SecureBootKey" size="32" value="0x\([0-9a-f]*\)".*/\1/p' plan.xml)
[ ${#PKH} -eq 128 ] && [ ${#SBK} -eq 64 ] || fail "plan.xml lacks the hash or the SBK"

expect_rc 0 "fuse-xml --package: odmfuse.sh --noburn, checked" \
  "$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml
[ "$(stat -c %a pkg.tbz2)" = 600 ] || fail "package mode $(stat -c %a pkg.tbz2), expected 600 (it holds the SBK)"
expect_rc 0 "fuse-xml --package --test: the dry-run package" \
  "$FUSELINE" fuse-xml --package test.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml --test
expect_rc 7 "fuse-xml --package never replaces a package" \
  "$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml
expect_rc 2 "fuse-xml --package refuses a template without offline board values" \
  "$FUSELINE" fuse-xml --package x.tbz2 --bsp "$BSP" --board orin-nx-16gb --plan plan.xml
expect_err "odmfuse_board"
[ ! -e x.tbz2 ] || fail "a package appeared after a refusal"
# The odmfuse quirk: without the lower-case globals R36.2 stops.
sed '/odmfuse_board_sku\|odmfuse_board_FAB/d' "$SRCDIR/templates/orin-nano-8gb.conf" > noquirk.conf
expect_rc 1 "fuse-xml --package: odmfuse.sh's failure is reported (no lower-case board_sku)" \
  "$FUSELINE" fuse-xml --package y.tbz2 --bsp "$BSP" --board ./noquirk.conf --plan plan.xml
expect_err "Unrecognized module SKU"
[ ! -e y.tbz2 ] || fail "a package appeared after odmfuse.sh failed"

# Another plan (no JTAG disable) with its own package: a package/plan mismatch.
"$FUSELINE" fuse-xml --keyset ks.json --out other.xml -q --production-mode
"$FUSELINE" fuse-xml --package other.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan other.xml -q

for i in 1 2 3 4 5 6 7 8; do "$VLINE" add "$L" "1-2.$i" orin-nano-8gb >/dev/null; done
"$VLINE" add "$L" 1-4 orin-nano-8gb >/dev/null

# --- refusals before any device is touched ---------------------------------
expect_rc 6 "a FUSE package under --dry-run is refused" vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --dry-run
expect_err "does not suit this mode"
expect_rc 6 "a TEST package under --commit is refused" \
  vrun $B --package test.tbz2 --plan plan.xml --keyset ks.json --all --commit --yes --allow-lab-keys
expect_rc 5 "a package that does not burn the plan is refused" \
  vrun $B --package other.tbz2 --plan plan.xml --keyset ks.json --all --commit --yes --allow-lab-keys
expect_err "does not burn exactly the plan"
expect_rc 6 "a lab keyset cannot commit without --allow-lab-keys" \
  vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --commit --yes
expect_err "--allow-lab-keys"
for i in 1 2 3 4 5 6 7 8; do untouched "1-2.$i"; done
pass "no device was touched by any refusal"

# --- the port allow-list -----------------------------------------------------
expect_rc 6 "a device outside the allow-list is refused" \
  vrun $B --package test.tbz2 --plan plan.xml --keyset ks.json --device 1-4 --port 1-2.1 --dry-run --json
[ "$(jl 1-4 'o["verdict"]')" = refused ] || fail "1-4 not reported as refused"
FUSELINE_PORTS="1-2.1 1-2.2 1-2.3 1-2.4 1-2.5 1-2.6 1-2.7 1-2.8" run vrun $B --package pkg.tbz2 --plan plan.xml \
  --keyset ks.json --all --json
[ "$RC" -eq 0 ] || fail "show mode over the allowed ports: exit $RC"
[ "$(grep -c '"instance"' "$T/out")" -eq 8 ] || fail "--all over \$FUSELINE_PORTS should select 8 devices"
grep -q '"instance":"1-4"' "$T/out" && fail "1-4 (not allowed) appeared in --all"
untouched 1-4
pass "\$FUSELINE_PORTS keeps --all on the station's own sockets; 1-4 never touched"

# --- show mode: the diff, nothing burned -------------------------------------
[ "$(jl 1-2.1 'o["to_burn"]')" = 5 ] || fail "show mode: 5 fuses to burn expected on a blank device"
[ "$(dev 1-2.1 'd["burns"]')" = 0 ] || fail "show mode burned"
grep -q "$SBK" "$T/out" && fail "the SBK value appeared in burn's JSON"
pass "show mode reads and diffs (5 fuses to burn), burns nothing, never prints the key"

# --- dry run on 8 devices at once -----------------------------------------------
FUSELINE_PORTS="1-2.1 1-2.2 1-2.3 1-2.4 1-2.5 1-2.6 1-2.7 1-2.8" \
  expect_rc 0 "dry run on 8 devices, --jobs 8" vrun $B --package test.tbz2 --plan plan.xml --keyset ks.json --all --jobs 8 --dry-run --json
for i in 1 2 3 4 5 6 7 8; do
  [ "$(jl "1-2.$i" 'o["verdict"]')" = pass ] || fail "dry run 1-2.$i: $(jl "1-2.$i" 'o["message"]')"
  [ "$(dev "1-2.$i" 'd["burns"], d["burns_effective"], d["fuses"]["BootSecurityInfo"], d["fuses"]["SecurityMode"]')" = "(1, 0, '00000000', '00000000')" ] ||
    fail "1-2.$i after the dry run: $(dev "1-2.$i" 'd["burns"], d["burns_effective"], d["fuses"]')"
done
pass "each device processed the TEST package and burned nothing (read back from the devices)"

# --- commit: one device, then seven at once ----------------------------------------
expect_rc 0 "commit one device" vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-2.1 --commit --yes --allow-lab-keys
[ "$(dev 1-2.1 'd["fuses"]["PublicKeyHash"]')" = "$PKH" ] || fail "1-2.1 PublicKeyHash is not the plan's"
[ "$(dev 1-2.1 'd["fuses"]["SecureBootKey"]')" = "$SBK" ] || fail "1-2.1 SecureBootKey is not the plan's"
[ "$(dev 1-2.1 'd["fuses"]["BootSecurityInfo"], d["fuses"]["SecurityMode"], d["fuses"]["ArmJtagDisable"]')" = "('00000009', '00000001', '00000001')" ] ||
  fail "1-2.1 fuses after commit: $(dev 1-2.1 'd["fuses"]')"
pass "1-2.1 carries exactly the plan"
# A package directory with a stale rcm_state in bootloader/ (what a killed
# run leaves): tegrarcm_v2 would then skip the BootROM step and burnfuses
# would burn nothing while saying "Finish". fuseline removes it first.
mkdir stale && tar -xjf pkg.tbz2 -C stale && printf '\006' > stale/bootloader/rcm_state
"$VLINE" add "$L" 1-8 orin-nano-8gb >/dev/null
expect_rc 0 "a package directory with a stale rcm_state still burns" \
  vrun $B --package stale --plan plan.xml --keyset ks.json --device 1-8 --commit --yes --allow-lab-keys
[ "$(dev 1-8 'd["fuses"]["SecurityMode"], d["burns_effective"]')" = "('00000001', 1)" ] || fail "1-8 was not burned"
[ -e stale/bootloader/rcm_state ] || fail "fuseline changed the package directory itself"
FUSELINE_PORTS="1-2.2 1-2.3 1-2.4 1-2.5 1-2.6 1-2.7 1-2.8" \
  expect_rc 0 "commit 7 devices in parallel" vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --jobs 8 --commit --yes --allow-lab-keys --json
for i in 2 3 4 5 6 7 8; do
  [ "$(dev "1-2.$i" 'd["fuses"]["PublicKeyHash"], d["fuses"]["SecurityMode"], d["burns_effective"]')" = "('$PKH', '00000001', 1)" ] ||
    fail "1-2.$i not provisioned"
done
pass "7 devices provisioned in one run"
grep -q '"summary":true' "$T/out" && grep -q '"passed":7' "$T/out" || fail "no summary object with passed=7"
pass "JSON Lines end with a summary object"

# --- re-runs burn nothing ---------------------------------------------------------------
FUSELINE_PORTS="1-2.1 1-2.2 1-2.3 1-2.4 1-2.5 1-2.6 1-2.7 1-2.8" \
  expect_rc 0 "re-running --commit on provisioned devices" vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --jobs 8 --commit --yes --allow-lab-keys --json
for i in 1 2 3 4 5 6 7 8; do
  [ "$(jl "1-2.$i" 'o["verdict"]')" = already-provisioned ] || fail "1-2.$i: $(jl "1-2.$i" 'o["verdict"]')"
  [ "$(dev "1-2.$i" 'd["burns"]')" = 2 ] || fail "1-2.$i was burned again"
done
pass "already provisioned: nothing burned again"
expect_rc 0 "verify fuses on a provisioned device" vrun "$FUSELINE" verify fuses --device 1-2.3 --plan plan.xml --package pkg.tbz2 --keyset ks.json --log-dir "$T/logs"
expect_rc 5 "verify fuses on a blank device is a mismatch" vrun "$FUSELINE" verify fuses --device 1-4 --plan plan.xml --package pkg.tbz2 --keyset ks.json --log-dir "$T/logs"
grep -q 'PublicKeyHash' "$T/out" || fail "verify fuses printed no per-fuse diff"

# --- the operator's typed confirmation (through a real terminal) -----------------------
"$VLINE" add "$L" 1-5 orin-nano-8gb >/dev/null
run python3 "$SRCDIR/tests/tools/pty-answer.py" "Type the last 6 hex digits" 000000 -- \
  "$VLINE" run "$L" -- $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-5 --commit --allow-lab-keys
[ "$RC" -eq 6 ] || fail "a wrong confirmation: exit $RC, expected 6"
[ "$(dev 1-5 'd["burns"]')" = 0 ] || fail "a wrong confirmation burned"
grep -q "NOT be burned" "$T/out" || fail "the operator was not told"
pass "a wrong typed confirmation burns nothing (exit 6)"
E6=$(dev 1-5 'd["ecid"][-6:]')
run python3 "$SRCDIR/tests/tools/pty-answer.py" "Type the last 6 hex digits" "$E6" -- \
  "$VLINE" run "$L" -- $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-5 --commit --allow-lab-keys
[ "$RC" -eq 0 ] || fail "the right confirmation: exit $RC"
[ "$(dev 1-5 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "the right confirmation did not burn"
pass "the right typed confirmation burns"
"$VLINE" add "$L" 1-7 orin-nano-8gb >/dev/null
expect_rc 6 "--commit without --yes and without a terminal is refused" \
  setsid -w "$VLINE" run "$L" -- $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-7 --commit --allow-lab-keys
untouched 1-7

# --- faults: each device gets its own verdict, the others pass -----------------------------
i=1
for f in vanish vanish-after-read hang-read hang-burn nostick exit-burn swap-after-read; do
  "$VLINE" add "$L" "1-3.$i" orin-nano-8gb >/dev/null; "$VLINE" fault "$L" "1-3.$i" "$f"; i=$((i + 1))
done
"$VLINE" add "$L" 1-3.8 orin-nano-8gb >/dev/null
FUSELINE_PORTS="1-3.1 1-3.2 1-3.3 1-3.4 1-3.5 1-3.6 1-3.7 1-3.8" \
  run vrun $B --timeout 20 --package pkg.tbz2 --plan plan.xml --keyset ks.json --all --jobs 8 --commit --yes --allow-lab-keys --json
[ "$RC" -eq 1 ] || fail "mixed failures: exit $RC, expected 1"
check_fault() { # INSTANCE VERDICT EXIT burned?
  local v e
  v=$(jl "$1" 'o["verdict"]'); e=$(jl "$1" 'o.get("exit_code", 0)')
  [ "$v" = "$2" ] && [ "$e" = "$3" ] || fail "$1: verdict $v exit $e, expected $2 $3 ($(jl "$1" 'o["message"]'))"
  [ "$(dev "$1" 'd["burns_effective"]')" = "$4" ] || fail "$1: burns_effective $(dev "$1" 'd["burns_effective"]'), expected $4"
}
check_fault 1-3.1 absent 4 0        # vanished before the read
check_fault 1-3.2 absent 4 0        # vanished between read and burn
check_fault 1-3.3 fail 4 0          # readfuses hung: killed
check_fault 1-3.4 fail 4 0          # burnfuses hung: killed, outcome unknown
check_fault 1-3.5 fail 5 0          # "Finish", exit 0, nothing stuck: read-back disagrees
check_fault 1-3.6 pass 0 1          # tool exited 1 but the fuses are there: PASS from read-back
check_fault 1-3.7 swapped 4 0       # another board answered: stopped before its burn
check_fault 1-3.8 pass 0 1          # the healthy one
[ "$(dev 1-3.7 'd["fuses"]["SecurityMode"]')" = 00000000 ] || fail "the swapped-in board was burned"
pass "every injected fault gets its own result; the healthy device passed"
grep -q "OUTCOME UNKNOWN" "$T/out" || fail "the hung burn did not say its outcome is unknown"

# Ledger: no intent for a device never burned; intent+result for the rest;
# the hung burn's intent stays open until a read-back settles it.
"$FUSELINE" ledger export --format jsonl > events.jsonl
ev() { python3 -c 'import json,sys
n = 0
for l in open("events.jsonl"):
    e = json.loads(l)
    if e["ecid"] == sys.argv[1] and e["kind"] == sys.argv[2] and (len(sys.argv) < 4 or e["outcome"] == sys.argv[3]): n += 1
print(n)' "$@"; }
ecid() { dev "$1" 'd["ecid"]'; }
# Vanished or swapped after the read: no read-back of that device was
# possible, so nothing closes its intent — not the tool's "No device".
for i in 1-3.2 1-3.7; do
  e=$(jl "$i" 'o["ecid"]')   # the board burn read (1-3.7 now holds another one)
  [ "$(ev "$e" intent)" = 1 ] && [ "$(ev "$e" result)" = 0 ] || fail "$i: its intent should stay open"
done
[ "$(ev "$(ecid 1-3.5)" result not-burned)" = 1 ] || fail "1-3.5: no result 'not-burned'"
[ "$(ev "$(ecid 1-3.6)" result ok)" = 1 ] || fail "1-3.6: no result ok"
H=$(ecid 1-3.4)
[ "$(ev "$H" intent)" = 1 ] && [ "$(ev "$H" result)" = 0 ] || fail "1-3.4: the hung burn's intent should be open"
pass "ledger: intents and results per device; every outcome not read back left open"

# The board is power-cycled (fault clear does that); the next run reads it back first and closes the intent.
"$VLINE" fault "$L" 1-3.4 clear
run vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-3.4 --commit --yes --allow-lab-keys --json
[ "$(jl 1-3.4 'o["resolved_dangling_intent"]')" = True ] || fail "the dangling intent was not resolved"
"$FUSELINE" ledger export --format jsonl > events.jsonl
[ "$(ev "$H" result)" -ge 1 ] || fail "no result closes the dangling intent"
[ "$RC" -eq 0 ] && [ "$(dev 1-3.4 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "after resolving, 1-3.4 was not provisioned (exit $RC)"
pass "a dangling intent is closed by the next run's read-back, then the device is provisioned"

expect_rc 0 "verify ledger accepts every burn event" "$FUSELINE" verify ledger
lchain ledger >/dev/null || fail "the independent chain recomputation rejects the burn events"
# The working copies (they hold the fuse blob, key values in it) are gone;
# the logs stay and never show the key.
find "$T/logs" \( -name 'fskp_t234_updated.bin' -o -name fusecmd.sh -o -name '*.tbz2' \) | grep -q . &&
  fail "a copy of the package was left under the log directory: $(find "$T/logs" -name fusecmd.sh | head -3)"
[ -n "$(find "$T/logs" -name '*-burnfuses.log')" ] || fail "no burnfuses log kept"
grep -rqiF "$SBK" "$T/logs" && fail "the SBK value appears in a log"
pass "no package copy left behind; logs kept, without the key"
assert_absent "$SBK" events.jsonl "$T/out" "$T/err"
pass "the SBK appears in no ledger event or output"

# --- factory-reserved BootSecurityInfo bits ---------------------------------------------
"$VLINE" add "$L" 1-6 orin-nano-8gb --bsi-reserved >/dev/null
expect_rc 7 "a 0x1e0 module with a plan without those bits: conflict, nothing burned" \
  vrun $B --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-6 --commit --yes --allow-lab-keys
grep -q -- "--bsi-reserved 0x1e0" "$T/out" || fail "the conflict does not say how to make the right plan"
[ "$(dev 1-6 'd["burns"]')" = 0 ] || fail "1-6 was burned"
"$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --bsi-reserved 0x1e0 --out plan-r.xml -q
"$FUSELINE" fuse-xml --package pkg-r.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan-r.xml -q
expect_rc 0 "with --bsi-reserved 0x1e0 the same module burns" \
  vrun $B --package pkg-r.tbz2 --plan plan-r.xml --keyset ks.json --device 1-6 --commit --yes --allow-lab-keys
[ "$(dev 1-6 'd["fuses"]["BootSecurityInfo"]')" = 000001e9 ] || fail "1-6 BootSecurityInfo $(dev 1-6 'd["fuses"]["BootSecurityInfo"]')"
pass "BootSecurityInfo 0x1e9 burned on the 0x1e0 module"

done_testing
