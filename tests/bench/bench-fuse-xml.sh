#!/usr/bin/env bash
# Benchmark (not a timed test) for `fuseline fuse-xml --check`, on files the
# check accepts (asserted before and during the timing: a rejected file
# would time an early exit): NVIDIA's three-key revocation sample and a full
# production plan fuseline writes for an Orin Nano (lab token, RSA-3K x3,
# SBK, OEM K1; the template decides which fuses it holds). Per file, measured in this run:
#  - one process per run: fuse-xml --check against `xmllint --noout` on the
#    same file (the named baseline: well-formedness only, one process each),
#    beside the bare process start-up (fuseline --version) that bounds any
#    one-shot check from below;
#  - in process (fuse-xml-rate): fuse_xml_check in a loop against libxml2
#    parsing the same bytes alone (the floor under the check).
# BENCH_N sets the number of process runs (the in-process loop runs 50x that).
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
N=${BENCH_N:-200}
RATE=${BUILDDIR:?}/tests/bench/fuse-xml-rate
D=$SRCDIR/tests/data/fuse-xml
lab_token
export FUSELINE_TEMPLATES=$SRCDIR/templates
"$FUSELINE" keygen --chip t234 --pkc rsa3k --pkc-count 3 --sbk --oem-k1 --name bench --lab --out ks.json -q >/dev/null
"$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml -q >/dev/null

now() { date +%s%N; }
ms() { awk -v a="$1" 'BEGIN { printf "%.3f", a / 1e6 }'; }

bench() { # file chip
  local t0 t1 ours base i
  "$FUSELINE" fuse-xml --check "$1" --chip "$2" >/dev/null || fail "$(basename "$1"): fuse-xml --check rejects it"
  t0=$(now)
  for ((i = 0; i < N; i++)); do
    "$FUSELINE" fuse-xml --check "$1" --chip "$2" >/dev/null || fail "$(basename "$1"): --check failed on run $i"
  done
  t1=$(now)
  ours=$(( (t1 - t0) / N ))
  t0=$(now); for ((i = 0; i < N; i++)); do xmllint --noout --nonet "$1"; done; t1=$(now)
  base=$(( (t1 - t0) / N ))
  echo "$(basename "$1") ($(wc -c < "$1") bytes, $(grep -c '<fuse ' "$1") fuses): fuseline fuse-xml --check" \
       "$(ms $ours) ms, xmllint --noout $(ms $base) ms per process; ratio" \
       "$(awk -v a=$ours -v b=$base 'BEGIN{printf "%.2f", a/b}')"
  "$RATE" "$1" "$2" $((N * 50)) | sed 's/^/  /; s/$/ (aim for the check: well under 10 ms)/' ||
    fail "fuse-xml-rate on $(basename "$1")"
}
t0=$(now); for ((i = 0; i < N; i++)); do "$FUSELINE" --version >/dev/null; done; t1=$(now)
echo "process start-up (fuseline --version): $(ms $(( (t1 - t0) / N ))) ms per run (the floor of a one-shot check)"
bench "$D/sample-t234-revocation.xml" t234
bench plan.xml t234
