#!/usr/bin/env bash
# Benchmark (not a timed test) for `fuseline fuse-xml --check`: one process
# per run, against `xmllint --noout` on the same file (well-formedness only,
# also one process per run), and the in-process cost the unit tests report
# (tests/test-fuse_xml and test-fuse_plan print it), beside the bare process
# start-up (fuseline --version) that dominates a one-shot check. Files: NVIDIA's
# three-key revocation sample and a 128-fuse file (the parser's limit).
# BENCH_N sets the number of runs.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
N=${BENCH_N:-200}
D=$SRCDIR/tests/data/fuse-xml

now() { date +%s%N; }
ms() { awk -v a="$1" 'BEGIN { printf "%.3f", a / 1e6 }'; }

{
  echo '<genericfuse MagicId="0x45535546" version="1.0.0">'
  for ((i = 0; i < 128; i++)); do echo "  <fuse name=\"ReservedOdm$((i % 8))\" size=\"4\" value=\"0x$i\"/>"; done
  echo '</genericfuse>'
} > big.xml

bench() { # file chip
  local t0 t1 ours base
  t0=$(now); for ((i = 0; i < N; i++)); do "$FUSELINE" fuse-xml --check "$1" --chip "$2" >/dev/null 2>&1 || true; done; t1=$(now)
  ours=$(( (t1 - t0) / N ))
  t0=$(now); for ((i = 0; i < N; i++)); do xmllint --noout --nonet "$1"; done; t1=$(now)
  base=$(( (t1 - t0) / N ))
  echo "$(basename "$1"): fuseline fuse-xml --check $(ms $ours) ms, xmllint --noout $(ms $base) ms per run;" \
       "ratio $(awk -v a=$ours -v b=$base 'BEGIN{printf "%.2f", a/b}') (aim: well under 10 ms)"
}
t0=$(now); for ((i = 0; i < N; i++)); do "$FUSELINE" --version >/dev/null; done; t1=$(now)
echo "process start-up (fuseline --version): $(ms $(( (t1 - t0) / N ))) ms per run"
bench "$D/sample-t234-revocation.xml" t234
bench big.xml t234
for t in fuse_xml fuse_plan; do
  "${BUILDDIR:?}/tests/test-$t" 2>/dev/null | grep -E ' ms$' | sed "s/^/in-process ($t): /" || true
done
