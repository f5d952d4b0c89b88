#!/usr/bin/env bash
# run-fuzzers.sh — coverage-guided fuzzing of every tests/fuzz target with
# the libFuzzer binaries of a -Dfuzzing=true build (README "Fuzzing").
#
#   tests/fuzz/run-fuzzers.sh [-t SECONDS] [-j JOBS] [--merge] BUILDDIR [TARGET...]
#
# Each target (default: every fuzz-* binary in BUILDDIR/tests/fuzz) runs for
# SECONDS (default 30) over a scratch corpus seeded read-only from
# tests/fuzz/corpus/<target>/, JOBS targets at a time (default 2). A crash,
# leak, sanitizer report, timeout (25 s per input) or out-of-memory fails the
# run: the input is kept as BUILDDIR/fuzz-artifacts/<target>-crash-… and the
# log's last lines are printed. --merge adds to corpus/<target>/ the inputs
# that reach coverage the corpus does not (libFuzzer -merge=1: the existing
# files stay, the new ones are named by their SHA-1), to be committed.
set -uo pipefail
secs=30 jobs=2 merge=0
while [ $# -gt 0 ]; do
  case $1 in
    -t) secs=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [-t SECONDS] [-j JOBS] [--merge] BUILDDIR [TARGET...]" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
shift
SRC=$(cd "$(dirname "$0")" && pwd)
case $secs in ''|*[!0-9]*) echo "run-fuzzers: -t '$secs': seconds, a number" >&2; exit 2 ;; esac
case $jobs in ''|*[!0-9]*|0) echo "run-fuzzers: -j '$jobs': a number >= 1" >&2; exit 2 ;; esac

if [ $# -gt 0 ]; then targets=("$@"); else
  targets=()
  for f in "$B"/tests/fuzz/fuzz-*; do [ -f "$f" ] && [ -x "$f" ] && targets+=("${f##*/fuzz-}"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "run-fuzzers: no fuzz targets in $B/tests/fuzz (configure with -Dfuzzing=true)" >&2; exit 2; }
for t in "${targets[@]}"; do
  [ -x "$B/tests/fuzz/fuzz-$t" ] || { echo "run-fuzzers: $B/tests/fuzz/fuzz-$t missing" >&2; exit 2; }
  [ -d "$SRC/corpus/$t" ] || { echo "run-fuzzers: no seed corpus $SRC/corpus/$t" >&2; exit 2; }
  # A replay-driver build's binary takes files, not libFuzzer flags.
  "$B/tests/fuzz/fuzz-$t" -help=1 2>&1 | grep 'max_total_time' >/dev/null ||
    { echo "run-fuzzers: $B/tests/fuzz/fuzz-$t is not a libFuzzer binary (configure with -Dfuzzing=true)" >&2; exit 2; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/fl-fuzz.XXXXXX")
trap 'rm -rf "$W"' EXIT
ART=$B/fuzz-artifacts
mkdir -p "$ART"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

one() { # target -> 0 clean, 1 finding
  local t=$1 fz=$B/tests/fuzz/fuzz-$1 rc seeds
  mkdir -p "$W/$t"
  seeds=$(ls "$SRC/corpus/$t" | wc -l)
  "$fz" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ART/$t-" "$W/$t" "$SRC/corpus/$t" >"$W/$t.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FUZZ FAIL $t (exit $rc): $(ls -t "$ART/$t-"* 2>/dev/null | head -n1)"
    tail -n 40 "$W/$t.log" | sed "s/^/  $t: /"
    return 1
  fi
  echo "fuzz $t: ${secs}s, $(awk '/stat::number_of_executed_units/ {print $2}' "$W/$t.log") runs," \
       "$(grep -o 'cov: [0-9]*' "$W/$t.log" | tail -n1 | cut -d' ' -f2) edges, corpus $seeds seeds + $(ls "$W/$t" | wc -l) found"
  if [ $merge -eq 1 ]; then
    "$fz" -merge=1 -timeout=25 -rss_limit_mb=2048 "$SRC/corpus/$t" "$W/$t" >"$W/$t.merge" 2>&1 ||
      { echo "FUZZ FAIL $t: merge"; tail -n 20 "$W/$t.merge"; return 1; }
    echo "  merged into corpus/$t: $seeds -> $(ls "$SRC/corpus/$t" | wc -l) files"
  fi
  return 0
}

start=$(date +%s)
bad=0 running=0
for t in "${targets[@]}"; do
  one "$t" > "$W/$t.result" &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then wait -n || bad=1; running=$((running - 1)); fi
done
while [ $running -gt 0 ]; do wait -n || bad=1; running=$((running - 1)); done
for t in "${targets[@]}"; do cat "$W/$t.result"; done
echo "fuzzing: ${#targets[@]} targets x ${secs}s, $jobs at a time: $(( $(date +%s) - start ))s, $([ $bad -eq 0 ] && echo "no finding" || echo FINDINGS)"
exit $bad
