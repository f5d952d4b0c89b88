#!/usr/bin/env bash
# bench-token-stress — the full figures behind tests/hsm-token-concurrency.sh
# and tests/hsm-token-repair.sh: STRESS_PROCS (8) processes at once, each
# running `sign`, `enroll` and `keygen` STRESS_RUNS (400) times on one SoftHSM2
# token, counting failed runs; first `sign` without the lock (an older build
# in STRESS_OLD_FUSELINE, and this one with FUSELINE_TOKEN_LOCK=off, on a
# token of their own) as the baseline, then every command with the lock. Then STRESS_KILLS (232) SIGKILLs during login,
# counting how often token.object was left empty and whether
# hsm/lab-token.sh --repair brought the token back each time. Never fails on
# the figures; prints them.
#
#   meson test -C build --benchmark -v bench-token-stress
#   STRESS_RUNS=50 STRESS_KILLS=40 meson test -C build --benchmark -v bench-token-stress
. "$SRCDIR/tests/lib.sh"
F=$FUSELINE
P=${STRESS_PROCS:-8}
N=${STRESS_RUNS:-400}
K=${STRESS_KILLS:-232}
export FUSELINE_DB=$T/line.db FUSELINE_STATION=bench FUSELINE_OPERATOR=bench

# The baseline token: its own directory, so the unlocked runs cannot damage the other one.
eval "$(LAB_INIT=${LAB_INIT:?} "$SRCDIR/hsm/lab-token.sh" "$T/base")"
"$F" keygen --chip t234 --pkc p256 --name base --lab --out base.json -q >/dev/null
head -c 4096 /dev/urandom > img.bin

worker() { # KIND P N KEYSET
  local kind=$1 p=$2 n=$3 ks=$4 i
  for i in $(seq 1 "$n"); do
    case $kind in
      sign) rm -f "s$p.sig"; "${F}" sign --keyset "$ks" --role pkc0 --in img.bin --out "s$p.sig" ;;
      keygen) "$F" keygen --chip t234 --pkc p256 --name "g$p-$i" --lab --out "g$p-$i.json" -q ;;
      enroll) "$F" enroll --keyset "$ks" --ecid "$(printf '80012344705df1172c00%04x%08x' "$p" "$i")" \
                --csr "d$p.csr" --out "c$p.pem" --force -q ;;
    esac >/dev/null 2>"e-$p" || { echo "FAILED $kind: $(head -c 200 "e-$p")"; }
  done
}
measure() { # LABEL KIND KEYSET: failures out of P*N, wall time
  local label=$1 kind=$2 ks=$3 p start fails
  : > fails
  start=$(date +%s%N)
  for p in $(seq 1 "$P"); do worker "$kind" "$p" "$N" "$ks" >> fails & done
  wait
  fails=$(wc -l < fails)
  awk -v l="$label" -v f="$fails" -v n=$((P * N)) -v ns=$(($(date +%s%N) - start)) \
    'BEGIN { printf "%-34s %4d failed of %5d runs (%5.1f%%)  %6.1f s\n", l, f, n, 100 * f / n, ns / 1e9 }'
  [ "$fails" -eq 0 ] || sort fails | sed 's/ [^ ]*$//' | uniq -c | sort -rn | head -n 3 | sed 's/^/    /'
}

echo "# $P processes x $N runs each, one SoftHSM2 token ($(softhsm2-util --version)), $(nproc) cores"
# STRESS_OLD_FUSELINE: a build from before the lock and the retries (e.g. main at 6a0a7bb), the
# real baseline; without it, this build with the lock off (its retries still hide most losses).
if [ -n "${STRESS_OLD_FUSELINE:-}" ]; then
  F=$STRESS_OLD_FUSELINE measure "sign, fuseline without lock/retries" sign base.json
fi
FUSELINE_TOKEN_LOCK=off measure "sign, lock off (retries only)" sign base.json

eval "$(LAB_INIT=$LAB_INIT "$SRCDIR/hsm/lab-token.sh" "$T/lab")"
"$F" keygen --chip t234 --pkc p256 --name st --lab --out ks.json -q >/dev/null
"$F" keygen --identity-ca --keyset ks.json --subject "/O=Stress/CN=Stress CA" --curve p256 -q >/dev/null
for p in $(seq 1 "$P"); do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "d$p.key" 2>/dev/null
  openssl req -new -key "d$p.key" -subj "/CN=d$p" -out "d$p.csr" 2>/dev/null
done
measure "sign, token lock on" sign ks.json
measure "enroll, token lock on" enroll ks.json
measure "keygen, token lock on" keygen ks.json

# ---- SIGKILL during login --------------------------------------------------------------------------
# A token of its own with one key: the stress token above holds thousands of objects by now, and
# loading them, not the login, would take most of each process's life.
eval "$(LAB_INIT=$LAB_INIT "$SRCDIR/hsm/lab-token.sh" "$T/kill")"
"$F" keygen --chip t234 --pkc p256 --name kl --lab --out kill.json -q >/dev/null
TOKDIR=$(ls -d "$T"/kill/tokens/*/ | head -n1); TOKDIR=${TOKDIR%/}
emptied=0 unusable=0
for i in $(seq 1 "$K"); do
  "$F" sign --keyset kill.json --role pkc0 --in img.bin --out k.sig --force >/dev/null 2>&1 &
  pid=$!
  sleep "0.0$(( (i * 7) % 40 + 5 ))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ ! -s "$TOKDIR/token.object" ]; then
    emptied=$((emptied + 1))
    "$SRCDIR/hsm/lab-token.sh" --repair "$T/kill" 2>/dev/null || true
  fi
  "$F" sign --keyset kill.json --role pkc0 --in img.bin --out k.sig --force >/dev/null 2>&1 || unusable=$((unusable + 1))
done
echo "SIGKILL during login: $K kills, $emptied left token.object empty (all restored by --repair), $unusable left the token unusable"
