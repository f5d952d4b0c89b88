# cli-mes-examples.sh — factory-scripts/mes-example.sh and mes-example.py run
# a work order on the virtual line: keys, plan, package, burn (commit), enroll,
# ledger export. Checked here: the devices' own fuse state (vline show), the
# certificates by openssl, every JSON object the examples read against the
# README's MES contract (tests/tools/mes-contract.py --partial), a retry on a
# board that vanished once (exit 4), no retry on an interlock (exit 6), an
# idempotent re-run that burns nothing, and a refused work order.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
line_setup
command -v jq >/dev/null || { echo "jq is not installed (factory-scripts/install-deps.sh installs it)"; exit 77; }
CHECK=$SRCDIR/tests/tools/mes-contract.py
for i in 1 2 3 4; do "$VLINE" add "$L" 1-$i orin-nano-8gb >/dev/null; done

# The fuseline an MES would call, under the line's USB devices; the first burn of 1-2 finds the board gone.
cat > flaky <<EOS
#!/bin/bash
if [[ " \$* " == *" burn "* && " \$* " == *" --device 1-2 "* && ! -e "$T/faulted" ]]; then
  touch "$T/faulted"; "$VLINE" fault "$L" 1-2 vanish >/dev/null
  "$VLINE" run "$L" -- "$FUSELINE" "\$@"; rc=\$?
  "$VLINE" fault "$L" 1-2 clear >/dev/null; exit \$rc
fi
exec "$VLINE" run "$L" -- "$FUSELINE" "\$@"
EOS
chmod +x flaky
export FUSELINE_MES=$T/flaky

wo() {  # wo FILE NAME DEVICES
  cat > "$1" <<EOW
# work order for the test
order = WO-$2
template = orin-nano-8gb      # the product
chip = t234
pkc = rsa3k
name = $2
lab = yes
bsp = $BSP
devices = $3
serial_prefix = $2-
retries = 3
retry_wait = 0
commit = yes
EOW
}
# Every JSON object a step printed, held against the README's contract.
contract() {
  python3 - "$1" > "$1/cap.jsonl" <<'PY' || fail "$1: step outputs unreadable"
import glob, json, os, sys
d = sys.argv[1]
sec = {"keygen": "keygen", "ca": "keygen --identity-ca", "plan": "fuse-xml --out", "package": "fuse-xml --package"}
for f in sorted(glob.glob(os.path.join(d, "*.jsonl"))):
    name = os.path.basename(f)[:-6]
    s = sec.get(name) or ("burn" if name.startswith("burn-") else "enroll" if name.startswith("enroll-")
                          else "ledger export" if name == "ledger" else None)
    if s is None:
        continue
    objs = [json.loads(l) for l in open(f) if l.strip()]
    rc = objs[-1].get("exit_code", 0) if objs and s != "ledger export" else 0
    print(json.dumps({"section": s, "rc": rc, "objects": objs}))
PY
  python3 "$CHECK" "$SRCDIR/README.md" "$1/cap.jsonl" --partial || fail "$1: output the example read breaks the contract"
}
certs_ok() {  # certs_ok REPORT: each PASS device's certificate is the file's, by openssl
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("status") == "PASS": print(o["ecid"], o["certificate_sha256"])' "$1" | while read -r e fp; do
    [ "$(openssl x509 -in "$2/$e.pem" -outform DER | sha256sum | cut -d' ' -f1)" = "$fp" ] || fail "$e: certificate_sha256"
    openssl verify -CAfile "$2/keyset-identity-ca.crt" "$2/$e.pem" >/dev/null || fail "$e: certificate does not verify"
  done
}
# report FILE PYEXPR: assert over the report lines (r: device lines by instance, s: summary).
report() {
  python3 - "$1" "$2" <<'PY' || fail "report $1: $2"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[-1]; r = {o["instance"]: o for o in lines[:-1]}
assert s["summary"] is True
assert eval(sys.argv[2]), lines
PY
}

# --- the shell example: two boards, one vanishes on the first try -------------------------------------------------
wo sh.wo shx "1-1 1-2"
FUSELINE="$FUSELINE_MES" expect_rc 0 "mes-example.sh: work order done" bash "$SRCDIR/factory-scripts/mes-example.sh" sh.wo out-sh
cp "$T/out" sh.report
report sh.report 's["passed"] == 2 and s["failed"] == 0 and r["1-2"]["burn_attempts"] == 2 and r["1-1"]["burn_attempts"] == 1'
report sh.report 'all(o["burn"] == "pass" and len(o["ecid"]) == 32 for o in r.values())'
grep -q "burn-1-2: exit 4 (retryable), attempt 1 of 3" "$T/err" || fail "the retry was not announced"
for d in 1-1 1-2; do [ "$(dev $d 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "$d not fused"; done
certs_ok sh.report out-sh
contract out-sh
report sh.report 's["ledger_events"] == sum(1 for _ in open("out-sh/ledger.jsonl"))'
python3 - out-sh/ledger.jsonl <<'PY' || fail "the ledger export lacks the work order's steps"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
cmds = [(e["command"], e["details"].get("mode")) for e in ev]
for want in [("keygen", "secure-boot"), ("keygen", "identity-ca"), ("fuse-xml", "plan"), ("fuse-xml", "package")]:
    assert want in cmds, (want, cmds)
assert sum(1 for e in ev if e["command"] == "enroll") == 2 and sum(1 for e in ev if e["kind"] == "result") == 2, cmds
PY
pass "mes-example.sh: both boards fused (vline state), enrolled (openssl), the retry on exit 4, contract fields, export"

burns=$(dev 1-1 'd["burns"]')
FUSELINE="$FUSELINE_MES" expect_rc 0 "mes-example.sh re-run" bash "$SRCDIR/factory-scripts/mes-example.sh" sh.wo out-sh
report "$T/out" 'all(o["burn"] == "already-provisioned" for o in r.values())'
python3 - sh.report "$T/out" <<'PY' || fail "a re-run changed a certificate"
import json, sys
a, b = ([json.loads(l) for l in open(f)][:-1] for f in sys.argv[1:])
assert [o["certificate_sha256"] for o in a] == [o["certificate_sha256"] for o in b]
PY
[ "$(dev 1-1 'd["burns"]')" = "$burns" ] || fail "the re-run burned"
pass "mes-example.sh re-run: already provisioned, nothing burned, the same certificates"

# --- the Python example: one board on a port the station does not allow (interlock, not retried) ----------------------
wo py.wo pyx "1-3 1-4"
FUSELINE_PORTS=1-3 FUSELINE="$FUSELINE_MES" expect_rc 1 "mes-example.py: one board refused" \
  python3 "$SRCDIR/factory-scripts/mes-example.py" py.wo out-py
cp "$T/out" py.report
report py.report 's["passed"] == 1 and s["failed"] == 1 and r["1-3"]["status"] == "PASS"'
report py.report 'r["1-4"]["exit_code"] == 6 and r["1-4"]["burn_attempts"] == 1 and r["1-4"]["burn"] == "refused"'
untouched 1-4
[ "$(dev 1-3 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "1-3 not fused"
certs_ok py.report out-py
contract out-py
pass "mes-example.py: the allowed board fused and enrolled, the refused one tried once (exit 6), contract fields"

# --- a work order with a typo is refused before anything runs --------------------------------------------------------------
printf 'devices = 1-1\nbsp = /x\ncomit = yes\n' > bad.wo
for ex in "bash $SRCDIR/factory-scripts/mes-example.sh" "python3 $SRCDIR/factory-scripts/mes-example.py"; do
  expect_rc 2 "$ex: unknown work-order key" $ex bad.wo out-bad
  grep -q "bad.wo:3: unknown key 'comit'" "$T/err" || fail "the typo is not named"
done
[ ! -e out-bad/keyset.json ] || fail "a refused work order made keys"
expect_rc 0 "verify ledger after both examples" "$FUSELINE" verify ledger
python3 "$SRCDIR/tests/tools/ledger-chain.py" "$FUSELINE_DB" >/dev/null || fail "independent chain check"
pass "work orders with typos refused (exit 2); the ledger verifies"
done_testing
