#!/bin/bash
# mes-example.sh — how an MES drives fuseline for one work order: keys →
# fuse plan → fuse package → burn → enroll → ledger export, acting on the exit
# codes (README "Exit codes" and "MES contract") and reading the --json
# results (JSON Lines) with jq.
#
#   factory-scripts/mes-example.sh WORK_ORDER OUTDIR
#
# WORK_ORDER is key = value lines ('#' comments), for example:
#   order        = WO-2026-0042
#   template     = orin-nano-8gb          # product template: chip, module, fuse defaults
#   chip         = t234                   # t234 (Orin) or t194 (Xavier): the template's chip
#   pkc          = rsa3k
#   name         = wo42                   # token label prefix of this product's keys
#   lab          = yes                    # lab keys (test keys; burns need --allow-lab-keys)
#   bsp          = /opt/Linux_for_Tegra
#   devices      = 1-1 1-2                # tegraflash instances (USB ports) to provision
#   serial_prefix = SN42-                 # factory serials: SN42-1, SN42-2, … in device order
#   retries      = 3                      # attempts per step for retryable failures
#   retry_wait   = 5                      # seconds between attempts
#   commit       = yes                    # yes: burn for real (--commit --yes); no: --dry-run
# Keys the file does not set take the defaults above (devices and bsp are required). Unknown keys
# are an error: a typo must not silently change what is burned.
#
# Environment: FUSELINE (the command, default "fuseline"; may be a wrapper such as
# "vline run DIR -- fuseline"), and the usual FUSELINE_TOKEN/FUSELINE_PIN_FILE/FUSELINE_DB.
# Output: one JSON object per device on stdout, then a summary object; diagnostics on stderr.
# Exit status: 0 when every device passed, 1 otherwise, 2 for a bad work order or a step
# before the devices that failed.
set -uo pipefail

die() { echo "mes-example: $*" >&2; exit 2; }
[ $# -eq 2 ] || die "usage: mes-example.sh WORK_ORDER OUTDIR"
WO=$1 OUT=$2
read -r -a FL <<< "${FUSELINE:-fuseline}"
command -v jq >/dev/null || die "jq is needed to read the JSON results"

# ---- the work order ---------------------------------------------------------------------------------------------
declare -A W=([template]=orin-nano-8gb [chip]=t234 [pkc]=rsa3k [name]=wo [lab]=no [serial_prefix]=SN- [retries]=3
              [retry_wait]=5 [commit]=no [order]=WO)
n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  line=${line%%#*}
  [[ $line =~ ^[[:space:]]*$ ]] && continue
  [[ $line =~ ^[[:space:]]*([a-z_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] \
    || die "$WO:$n: expected 'key = value'"
  k=${BASH_REMATCH[1]} v=${BASH_REMATCH[2]}
  case $k in
    order|template|chip|pkc|name|lab|bsp|devices|serial_prefix|retries|retry_wait|commit) W[$k]=$v ;;
    *) die "$WO:$n: unknown key '$k'" ;;
  esac
done < "$WO"
[ -n "${W[devices]:-}" ] || die "$WO: 'devices' is required"
[ -n "${W[bsp]:-}" ] || die "$WO: 'bsp' is required"
[[ ${W[retries]} =~ ^[1-9][0-9]?$ ]] || die "$WO: retries '${W[retries]}': 1-99"
[[ ${W[retry_wait]} =~ ^[0-9]+$ ]] || die "$WO: retry_wait '${W[retry_wait]}': seconds"
mkdir -p "$OUT" || die "cannot create $OUT"

# ---- one step, with the README's exit codes -------------------------------------------------------------------------
# step NAME CMD...: runs fuseline CMD --json; the JSON Lines land in $OUT/NAME.jsonl; returns the exit status.
# Retryable: 4 (device absent, vanished, a hung tool step) and 1 (e.g. the ledger busy past 60 s, a full disk
# an operator can clear). Not retryable: 2 (bad input), 3 (token/PIN: a human must act), 5 (mismatch),
# 6 (interlock), 7 (conflict: it exists, or the device is provisioned differently), 130/143 (interrupted).
ATTEMPTS=0
step() {
  local name=$1 rc; shift
  ATTEMPTS=0
  while :; do
    ATTEMPTS=$((ATTEMPTS + 1))
    "${FL[@]}" "$@" --json > "$OUT/$name.jsonl" 2> "$OUT/$name.err"
    rc=$?
    case $rc in
      1|4) if [ "$ATTEMPTS" -lt "${W[retries]}" ]; then
             echo "mes-example: $name: exit $rc (retryable), attempt $ATTEMPTS of ${W[retries]}" >&2
             sleep "${W[retry_wait]}"; continue
           fi ;;
    esac
    return "$rc"
  done
}
# A field of the last JSON object of a step (the result, or the summary of JSON Lines).
last() { tail -n 1 "$OUT/$1.jsonl" | jq -r "$2"; }

KS=$OUT/keyset.json PLAN=$OUT/plan.xml PKG=$OUT/fuse-package.tbz2
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)   # this run's events, for the export at the end
LAB=(); [ "${W[lab]}" = yes ] && LAB=(--lab)

# Keys: exit 7 on a re-run means the keyset exists already — the keys were made by an earlier run of this
# order; keygen never makes a second set. Anything else is a stop.
step keygen keygen --chip "${W[chip]}" --pkc "${W[pkc]}" --sbk --name "${W[name]}" "${LAB[@]}" --out "$KS"
rc=$?
if [ $rc -eq 0 ]; then
  echo "mes-example: keys made, ledger event $(last keygen .event_id)" >&2
elif [ $rc -ne 7 ] || [ ! -s "$KS" ]; then
  die "keygen failed (exit $rc): $(last keygen .error)"
fi
step ca keygen --identity-ca --keyset "$KS" --subject "/O=${W[order]}/CN=${W[name]} device CA"
rc=$?; [ $rc -eq 0 ] || [ $rc -eq 7 ] || die "identity CA failed (exit $rc): $(last ca .error)"

# The plan and its package: made once per order, re-used (exit 7: they exist).
step plan fuse-xml --keyset "$KS" --template "${W[template]}" --out "$PLAN"
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 7 ] || die "fuse plan failed (exit $rc): $(last plan .error)"
[ $rc -eq 0 ] && echo "mes-example: plan sha256 $(last plan .plan_sha256)" >&2
TEST=(); [ "${W[commit]}" = yes ] || { TEST=(--test); PKG=$OUT/fuse-package-test.tbz2; }
step package fuse-xml --package "$PKG" --bsp "${W[bsp]}" --board "${W[template]}" --plan "$PLAN" "${TEST[@]}"
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 7 ] || die "fuse package failed (exit $rc): $(last package .error)"

# ---- each device: burn (read back), then enroll ------------------------------------------------------------------------
MODE=(--dry-run); [ "${W[commit]}" = yes ] && MODE=(--commit --yes)
ALLOW=(); [ "${W[lab]}" = yes ] && ALLOW=(--allow-lab-keys)
passed=0 failed=0 i=0
for inst in ${W[devices]}; do
  i=$((i + 1)) serial=${W[serial_prefix]}$i
  step "burn-$inst" burn --package "$PKG" --plan "$PLAN" --keyset "$KS" --device "$inst" "${MODE[@]}" "${ALLOW[@]}"
  rc=$? tries=$ATTEMPTS
  # The device's line is the first object, the summary the last (MES contract: burn (each), burn (summary)).
  dev=$(head -n 1 "$OUT/burn-$inst.jsonl")
  verdict=$(jq -r '.verdict // "none"' <<< "$dev") ecid=$(jq -r '.ecid // empty' <<< "$dev")
  cert=null stage=burn
  if [ $rc -eq 0 ] && [ "${W[commit]}" = yes ]; then
    # Enrolment is idempotent: a re-run for the same device returns the same certificate
    stage=enroll
    # --force: a re-run writes the same certificate to the file an earlier run wrote.
    step "enroll-$inst" enroll --keyset "$KS" --ecid "$ecid" --serial "$serial" --generate-key p256 \
      --out "$OUT/$ecid.pem" --force
    rc=$?
    [ $rc -eq 0 ] && cert=$(last "enroll-$inst" '.fingerprint | tojson')
  fi
  err=null
  [ $rc -eq 0 ] || err=$(tail -n 1 "$OUT/$stage-$inst.jsonl" | jq -c '.error // null')
  [ -n "$err" ] || err=null
  jq -nc --arg order "${W[order]}" --arg inst "$inst" --arg ecid "$ecid" --arg serial "$serial" \
    --arg verdict "$verdict" --argjson cert "$cert" --argjson rc "$rc" --argjson tries "$tries" --argjson err "$err" \
    '{order: $order, instance: $inst, ecid: (if $ecid == "" then null else $ecid end), serial: $serial,
      burn: $verdict, certificate_sha256: $cert, status: (if $rc == 0 then "PASS" else "FAIL" end),
      exit_code: $rc, burn_attempts: $tries, error: $err}'
  if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

# ---- the record for the MES ------------------------------------------------------------------------------------------------
"${FL[@]}" ledger export --since "$since" > "$OUT/ledger.jsonl" || die "ledger export failed"
events=$(wc -l < "$OUT/ledger.jsonl")
jq -nc --arg order "${W[order]}" --argjson p "$passed" --argjson f "$failed" --argjson e "$events" \
  --arg ledger "$OUT/ledger.jsonl" \
  '{order: $order, summary: true, devices: ($p + $f), passed: $p, failed: $f, ledger_events: $e, ledger_export: $ledger}'
[ "$failed" -eq 0 ]
