# cli-mes-contract.sh — the MES contract (README §MES contract, between the
# mes-contract markers) held against real output: every command runs with
# --json on a lab token and the virtual line; tests/tools/mes-contract.py
# parses the README's tables and checks every object: each documented field
# present (unless its "when" says otherwise) with the documented type, no
# undocumented top-level field, the exit status among the documented ones,
# and every documented result shape exercised at least once.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
line_setup
CAP=$T/cap.jsonl
: > "$CAP"
CHECK=$SRCDIR/tests/tools/mes-contract.py

# cap SECTION RC CMD...: run CMD, expect exit RC, record its stdout objects under SECTION.
cap() {
  local sec=$1 want=$2; shift 2
  run "$@"
  [ "$RC" -eq "$want" ] || fail "$sec: exit $RC, expected $want"
  python3 - "$CAP" "$sec" "$RC" "$T/out" <<'PY' || fail "$sec: stdout is not JSON Lines"
import json, sys
cap, sec, rc, out = sys.argv[1:]
lines = [l for l in open(out).read().splitlines() if l.strip()]
assert lines, "no JSON on stdout"
with open(cap, "a") as f:
    f.write(json.dumps({"section": sec, "rc": int(rc), "objects": [json.loads(l) for l in lines]}) + "\n")
PY
  pass "$sec: exit $want, JSON Lines captured"
}

F=$FUSELINE
"$VLINE" add "$L" 1-1 orin-nano-8gb >/dev/null
"$VLINE" add "$L" 1-2 orin-nano-8gb >/dev/null

# --- keys --------------------------------------------------------------------------------------------------
cap "keygen" 0 "$F" keygen --chip t234 --pkc rsa3k --sbk --oem-k1 --name m --lab --out ks.json --json
cap "keygen" 7 "$F" keygen --chip t234 --pkc rsa3k --sbk --oem-k1 --name m --lab --out ks.json --json
cap "keygen" 0 "$F" keygen --keyset ks.json --ekb-payload --ekb-disk --ekb-auth --json
openssl rand -hex 32 > k2.hex
cap "keygen" 0 "$F" keygen --import-hex k2.hex --role oem-k2 --keyset ks.json --json
cap "keygen --uefi" 0 "$F" keygen --uefi --keyset ks.json --out-dir uefi --subject /O=Mes --json
cap "keygen --identity-ca" 0 "$F" keygen --identity-ca --keyset ks.json --subject "/O=Mes/CN=Mes CA" --json
cap "keygen --identity-ca" 0 "$F" keygen --ftpm-ek-ca --keyset ks.json --subject "/O=Mes/CN=Mes EK CA" --json
cap "keygen --export-pub" 0 "$F" keygen --export-pub pkc0 --keyset ks.json --format tegra --out pub.bin \
  --hash-out pub.hash --mont-out pub.mont --json
cap "keygen --random" 0 "$F" keygen --random 16 --keyset ks.json --out rnd.bin --json
cap "verify keyset" 0 "$F" verify keyset ks.json --json

# --- plans, packages ------------------------------------------------------------------------------------------
cap "fuse-xml --out" 0 "$F" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml --json
cap "fuse-xml --out" 7 "$F" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml --json
cap "fuse-xml --check" 0 "$F" fuse-xml --check plan.xml --chip t234 --keyset ks.json --json
"$F" keygen --export-pub pkc0 --keyset ks.json --out pkc0.pem -q
cap "fuse-xml --pkc-hash" 0 "$F" fuse-xml --pkc-hash pkc0.pem --chip t234 --json
python3 - plan.xml > blank.txt <<'PY'
import sys, xml.etree.ElementTree as ET
for f in ET.parse(sys.argv[1]).getroot().findall("fuse"):
    print("%s: %s" % (f.get("name"), "0" * (2 * int(f.get("size")))))
PY
cap "fuse-xml --diff" 0 "$F" fuse-xml --diff plan.xml --readback blank.txt --chip t234 --json
cap "fuse-xml --package" 0 "$F" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml --json

# --- signatures -------------------------------------------------------------------------------------------------
head -c 4096 /dev/urandom > img.bin
cap "sign" 0 "$F" sign --keyset ks.json --role pkc0 --in img.bin --out img.sig --json
cap "sign" 7 "$F" sign --keyset ks.json --role pkc0 --in img.bin --out img.sig --json
printf 'img.bin b1.sig\nimg.bin b2.mac sbk\n' > list.txt
cap "sign --batch" 0 "$F" sign --keyset ks.json --role pkc0 --batch list.txt --json
head -c 12 /dev/urandom > iv.bin
cap "sign --encrypt" 0 "$F" sign --encrypt aes-gcm --keyset ks.json --role sbk --iv iv.bin --in img.bin --out img.enc \
  --tag-out img.tag --json
openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=extra -days 30 -out extra.crt 2>/dev/null
cap "sign --uefi-var" 0 "$F" sign --uefi-var db --append extra.crt --signer uefi-kek --keyset ks.json --out db.auth --json
cp img.bin payload.bin
cap "sign --uefi-payload" 0 "$F" sign --uefi-payload payload.bin --signer uefi-db1 --keyset ks.json --mode split --json
cap "verify signature" 0 "$F" verify signature --in img.bin --sig img.sig --keyset ks.json --role pkc0 --json
cap "verify signature" 5 "$F" verify signature --in payload.bin.sig --sig img.sig --keyset ks.json --role pkc0 --json
cap "verify uefi" 0 "$F" verify uefi uefi --json

# --- the line ------------------------------------------------------------------------------------------------------
cap "devices" 0 vrun "$F" devices --json
cap "burn" 0 vrun "$F" burn --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-1 --log-dir "$T/logs" \
  --readback-delay 20 --commit --yes --allow-lab-keys --json
cap "burn" 0 vrun "$F" burn --package pkg.tbz2 --plan plan.xml --keyset ks.json --device 1-1 --log-dir "$T/logs" \
  --readback-delay 20 --commit --yes --allow-lab-keys --json
cap "verify fuses" 0 vrun "$F" verify fuses --device 1-1 --plan plan.xml --package pkg.tbz2 --keyset ks.json \
  --log-dir "$T/logs" --json
cap "verify fuses" 5 vrun "$F" verify fuses --device 1-2 --plan plan.xml --package pkg.tbz2 --keyset ks.json \
  --log-dir "$T/logs" --json
ECID=$(dev 1-1 'd["ecid"]')

# --- identity, EKB, LUKS, fTPM -----------------------------------------------------------------------------------
cap "enroll" 0 "$F" enroll --keyset ks.json --ecid "$ECID" --serial SN1 --generate-key p256 --out dev.pem --json
cap "enroll" 7 "$F" enroll --keyset ks.json --ecid "$ECID" --serial SN1 --generate-key p256 --out dev.pem --json
cap "enroll" 0 "$F" enroll --keyset ks.json --ecid "$ECID" --serial SN1 --generate-key p256 --out dev.pem --force --json
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=x -out d2.csr 2>/dev/null
mkdir certs
printf '%s d2.csr SN2\n' 80012344705df1172c0000000d02abcd > batch.txt
cap "enroll --batch" 0 "$F" enroll --keyset ks.json --batch batch.txt --out-dir certs --json
cap "verify cert" 0 "$F" verify cert dev.pem --keyset ks.json --json
cap "ekb" 0 "$F" ekb --keyset ks.json --format 1.0 --root oem-k1 --fv bad66eb4484983684b992fe54a648bb8 --out eks.img --json
cap "verify ekb" 0 "$F" verify ekb eks.img --keyset ks.json --root oem-k1 --fv bad66eb4484983684b992fe54a648bb8 --json
cap "luks-passphrase" 0 "$F" luks-passphrase --keyset ks.json --ecid "$ECID" --context 0c1b2a39-4857-6675-8493-a2b1c0d9e8f7 \
  --out pass.txt --json
cap "ftpm-device" 0 "$F" ftpm-device --keyset ks.json --oem-id 0x1234 --sn 0x00c0ffee12345678 --fuse-out ftpm.xml --json
B=${VECTORS:?}/ekb/B-t234-ekb1.0-oemk2-ftpm-offline
cap "ftpm-ek-cert" 0 "$F" ftpm-ek-cert --keyset ks.json --sn 123400c0ffee12345678 --csr "$B/ek_csr_ec.der" --out ek.der --json

# --- the ledger ------------------------------------------------------------------------------------------------------
cap "ledger show" 0 "$F" ledger show "$ECID" --json
cap "ledger show --command" 0 "$F" ledger show --command sign --json
cap "ledger export" 0 "$F" ledger export
cap "verify ledger" 0 "$F" verify ledger --json
# store and forward: records spooled while the central ledger's share is away, then uploaded
"${LEDGER_WRITER:?}" --db share/c.db --spool sp.db --count 2 --quiet 2>/dev/null || fail "spooled writer"
cap "ledger sync" 4 "$F" ledger sync --db share/c.db --spool sp.db --json
mkdir share
cap "ledger sync" 0 "$F" ledger sync --db share/c.db --spool sp.db --json
cap "ledger migrate" 0 "$F" ledger migrate --from "$FUSELINE_DB" --to moved.db --json
cap "ledger migrate" 7 "$F" ledger migrate --from "$FUSELINE_DB" --to share/c.db --json

# --- failures before a command runs ------------------------------------------------------------------------------------
cap "keygen" 2 "$F" keygen --chip t999 --json
cap "ledger show" 2 "$F" ledger show 00 --json

[ -z "${MES_CONTRACT_KEEP:-}" ] || cp "$CAP" "$MES_CONTRACT_KEEP"   # to read what was captured
python3 "$CHECK" "$SRCDIR/README.md" "$CAP" || fail "the README's MES contract does not hold"
pass "every documented field present with its type, nothing undocumented, exit codes as documented"

# The checker itself: a README that forgets a field, invents one, retypes one or drops an exit code fails.
R=$SRCDIR/README.md
# checker_fails README ERROR WHAT: the checker must fail on README with ERROR, else WHAT went unnoticed.
checker_fails() {
  run python3 "$CHECK" "$1" "$CAP"; [ "$RC" -ne 0 ] && grep -q "$2" "$T/err" || fail "$3 went unnoticed"
}
sed '/^| `plan_sha256` | string | always | the plan hash (same as/d' "$R" > r1.md
checker_fails r1.md "fuse-xml --out.*'plan_sha256' is not documented" "an undocumented field"
sed 's/^| `source` | string | always | `C_GenerateRandom` |$/&\n| `entropy` | integer | always | made up |/' "$R" > r2.md
checker_fails r2.md "keygen --random.*'entropy' missing" "a documented field that is never printed"
sed 's/^| `random` | integer | always | bytes written |$/| `random` | string | always | bytes written |/' "$R" > r3.md
checker_fails r3.md "'random' is 16, documented string" "a wrong type"
sed 's/^Exit codes: 0, 1, 2, 3, 5, 7.$/Exit codes: 0, 1, 2, 3, 5./' "$R" > r4.md
checker_fails r4.md "exit 7 is not among the documented" "an undocumented exit code"
pass "the checker fails on a missing, invented or retyped field and on an undocumented exit code"
done_testing
