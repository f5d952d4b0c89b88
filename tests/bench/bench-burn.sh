#!/usr/bin/env bash
# Benchmark (not a timed test): burn --commit on the virtual line, with the
# virtual tools taking a fixed time per USB step (BENCH_STEP seconds, default 2:
# below ~1 s the python stand-ins, not the wait, fill 2 cores). Prints, measured in this run:
#  - 8 devices with --all --jobs 8 against 1 device alone (goal: ratio <= 1.3);
#  - fuseline's own overhead per device: one device through fuseline against
#    the same three tegraflash runs (read, burn, read back) done by hand in a
#    copy of the package (the baseline: the tools' own time).
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
STEP=${BENCH_STEP:-2}
line_setup --step-seconds "$STEP"
"$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --name bench --lab --out ks.json -q >/dev/null 2>&1
"$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml -q
"$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml -q
for i in 1 2 3 4 5 6 7 8 9; do "$VLINE" add "$L" "1-3.$i" orin-nano-8gb >/dev/null; done
"$VLINE" add "$L" 1-4 orin-nano-8gb >/dev/null

now() { date +%s%N; }
burn() { "$VLINE" run "$L" -- "$FUSELINE" burn --package pkg.tbz2 --plan plan.xml --keyset ks.json \
  --commit --yes --allow-lab-keys --log-dir "$T/logs" -q "$@" >/dev/null 2>&1; }

# The baseline: the tools alone, as fuseline runs them, for device 1-4.
mkdir base && tar -xjf pkg.tbz2 -C base
cd base/bootloader
inner=$(sed -n "s/^eval '\.\/tegraflash\.py \(.*\)'\$/\1/p" fusecmd.sh)
eval "set -- $inner"
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = --cmd ]; then burncmd=$2; shift 2; continue; fi
  args+=("$1"); shift
done
names=$(sed -n 's/.*<fuse name="\([A-Za-z0-9]*\)".*/\1/p' "$T/plan.xml")
{ echo '<genericfuse MagicId="0x45535546" version="1.0.0">'
  for n in $names; do echo "<fuse name=\"$n\"/>"; done; echo '</genericfuse>'; } > "$PWD/read.xml"
tf() { rm -f rcm_state; "$VLINE" run "$L" -- ./tegraflash.py "${args[@]}" --instance 1-4 --cmd "$1" >/dev/null 2>&1 || true; }
t0=$(now)
tf "readfuses $PWD/r1.txt $PWD/read.xml; reboot recovery"
tf "$burncmd"
tf "readfuses $PWD/r2.txt $PWD/read.xml; reboot recovery"
t1=$(now)
cd "$T"
[ -s base/bootloader/r2.txt ] && grep -q 'SecurityMode: 00000001' base/bootloader/r2.txt || fail "baseline burn did not stick"
tools=$((t1 - t0))

t0=$(now); burn --device 1-3.1; t1=$(now); one=$((t1 - t0))
[ "$(dev 1-3.1 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "1-3.1 was not burned"
t0=$(now); burn --all --jobs 8 --port 1-3.2,1-3.3,1-3.4,1-3.5,1-3.6,1-3.7,1-3.8,1-3.9; t1=$(now); eight=$((t1 - t0))
for i in 2 3 4 5 6 7 8 9; do
  [ "$(dev "1-3.$i" 'd["fuses"]["SecurityMode"]')" = 00000001 ] || fail "1-3.$i was not burned"
done
awk -v a="$eight" -v b="$one" -v s="$STEP" 'BEGIN { printf "burn --commit, virtual tools at %ss per USB step: 8 devices --jobs 8: %.1f s; 1 device: %.1f s; ratio %.2f (goal <= 1.3)\n", s, a/1e9, b/1e9, a/b }'
awk -v a="$one" -v b="$tools" 'BEGIN { printf "one device: fuseline %.1f s; the same three tegraflash runs by hand: %.1f s; fuseline overhead %.2f s per device (ratio %.2f)\n", a/1e9, b/1e9, (a-b)/1e9, a/b }'
