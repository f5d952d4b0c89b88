#!/usr/bin/env bash
# Several fuseline processes on one SoftHSM2 token at once (a station runs
# them in parallel). SoftHSM2 2.6.1 rewrites token.object on every C_Login
# (truncate, unlock, write), and a process that initialises the module in
# that gap used to lose the token ("no token matches", exit 3) in about a
# third of the sign runs at 8 processes. Here: 8 parallel processes run
# sign, keygen and enroll in loops and every run must succeed; signatures
# are checked by openssl with the key p11tool exports, certificates by
# openssl verify, the ledger's chain by the independent Python check. The
# token lock is shown to be held (a held lock makes fuseline wait), and the
# CKR codes a login can give while the token is rewritten are named for what
# they are. Smaller counts than tests/bench/bench-token-stress.sh.
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE
P=${CONC_PROCS:-8}
SIGN_RUNS=${CONC_SIGN:-8}
KEYGEN_RUNS=${CONC_KEYGEN:-3}
ENROLL_RUNS=${CONC_ENROLL:-3}
export FUSELINE_DB=$T/line.db FUSELINE_STATION=st1 FUSELINE_OPERATOR=ci

run "$F" keygen --chip t234 --pkc p256 --name conc --lab --out ks.json
[ "$RC" -eq 0 ] || fail "keygen: $(cat "$T/err")"
run "$F" keygen --identity-ca --keyset ks.json --subject "/O=Conc/CN=Conc CA" --curve p256
[ "$RC" -eq 0 ] || fail "keygen --identity-ca: $(cat "$T/err")"
p11tool --export "pkcs11:token=lab;object=conc-pkc0;type=public" > pkc0.pub 2>/dev/null || fail "p11tool export"
head -c 4096 /dev/urandom > img.bin
for p in $(seq 1 "$P"); do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "d$p.key" 2>/dev/null
  openssl req -new -key "d$p.key" -subj "/CN=d$p" -out "d$p.csr" 2>/dev/null || fail "openssl req"
done

# worker KIND P N: N runs one after the other; one line per failed run.
worker() {
  local kind=$1 p=$2 n=$3 i
  for i in $(seq 1 "$n"); do
    case $kind in
      sign) "$F" sign --keyset ks.json --role pkc0 --in img.bin --out "s$p-$i.sig" ;;
      keygen) "$F" keygen --chip t234 --pkc p256 --name "g$p-$i" --lab --out "g$p-$i.json" -q ;;
      enroll) "$F" enroll --keyset ks.json --ecid "$(printf '80012344705df1172c00%04x%08x' "$p" "$i")" \
                --csr "d$p.csr" --out "c$p-$i.pem" -q ;;
    esac >/dev/null 2>"e-$kind-$p-$i" || echo "$kind $p/$i: $(head -c 300 "e-$kind-$p-$i")"
  done
}
parallel() { # KIND N
  local p
  : > "fails-$1"
  for p in $(seq 1 "$P"); do worker "$1" "$p" "$2" >> "fails-$1" & done
  wait
}

parallel sign "$SIGN_RUNS"
[ ! -s fails-sign ] || fail "$(wc -l < fails-sign) of $((P * SIGN_RUNS)) parallel sign runs failed; first: $(head -n1 fails-sign)"
for f in s*-*.sig; do
  python3 - "$f" "$f.der" <<'PY'
import sys
d = open(sys.argv[1], "rb").read(); n = len(d) // 2
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(d[:n]) + integer(d[n:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
  openssl dgst -sha256 -verify pkc0.pub -signature "$f.der" img.bin >/dev/null || fail "$f does not verify (openssl)"
done
[ "$(ls s*-*.sig | wc -l)" -eq $((P * SIGN_RUNS)) ] || fail "not every signature was written"
pass "$P processes x $SIGN_RUNS sign runs at once: 0 failures, every signature verified by openssl"

parallel keygen "$KEYGEN_RUNS"
[ ! -s fails-keygen ] || fail "$(wc -l < fails-keygen) of $((P * KEYGEN_RUNS)) parallel keygen runs failed; first: $(head -n1 fails-keygen)"
n=$(p11tool --login --list-privkeys "pkcs11:token=lab" 2>/dev/null | grep -c 'Label: g[0-9]*-[0-9]*-pkc0' || true)
[ "$n" -eq $((P * KEYGEN_RUNS)) ] || fail "p11tool lists $n generated pkc0 keys, expected $((P * KEYGEN_RUNS))"
pass "$P processes x $KEYGEN_RUNS keygen runs at once: 0 failures, $n keys in the token (p11tool)"

parallel enroll "$ENROLL_RUNS"
[ ! -s fails-enroll ] || fail "$(wc -l < fails-enroll) of $((P * ENROLL_RUNS)) parallel enroll runs failed; first: $(head -n1 fails-enroll)"
for c in c*-*.pem; do
  openssl verify -CAfile ks-identity-ca.crt "$c" >/dev/null 2>&1 || fail "$c does not verify against the CA (openssl)"
done
python3 "$SRCDIR/tests/tools/ledger-chain.py" "$FUSELINE_DB" > chain.txt 2>&1 || fail "ledger chain: $(cat chain.txt)"
[ "$(sqlite3 "$FUSELINE_DB" "SELECT count(*) FROM certificates")" -eq $((P * ENROLL_RUNS)) ] || fail "certificate rows"
pass "$P processes x $ENROLL_RUNS enroll runs at once: 0 failures, certificates verified by openssl, chain intact"

# ---- the lock is really held: a holder makes fuseline wait, and it then succeeds ---------------
LOCK=$(dirname "$SOFTHSM2_CONF")/fuseline-token.lock
[ -f "$LOCK" ] || fail "no token lock file beside \$SOFTHSM2_CONF ($LOCK)"
flock -x "$LOCK" sleep 2 &
holder=$!
sleep 0.3
start=$(date +%s%N)
run "$F" sign --keyset ks.json --role pkc0 --in img.bin --out waited.sig
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $holder
[ "$RC" -eq 0 ] || fail "sign after waiting for the lock: exit $RC"
[ "$ms" -ge 1400 ] || fail "sign did not wait for the held token lock (took $ms ms)"
pass "a held token lock makes fuseline wait ($ms ms), then it signs"
flock -x "$LOCK" sleep 2 &
holder=$!
sleep 0.3
start=$(date +%s%N)
FUSELINE_TOKEN_LOCK=off run "$F" sign --keyset ks.json --role pkc0 --in img.bin --out nolock.sig
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $holder
[ "$RC" -eq 0 ] && [ "$ms" -lt 1400 ] || fail "FUSELINE_TOKEN_LOCK=off still waited ($ms ms, exit $RC)"
pass "FUSELINE_TOKEN_LOCK=off takes no lock ($ms ms)"
run env FUSELINE_TOKEN_LOCK="$T/other.lock" "$F" sign --keyset ks.json --role pkc0 --in img.bin --out other.sig
[ "$RC" -eq 0 ] && [ -f "$T/other.lock" ] || fail "FUSELINE_TOKEN_LOCK=PATH: exit $RC, lock file made: $(ls "$T"/other.lock 2>&1)"
pass "FUSELINE_TOKEN_LOCK=PATH puts the lock there"

# ---- a token that is not there: bounded retries, then a distinct error --------------------------
start=$(date +%s%N)
expect_rc 3 "a token that never appears" "$F" sign --token 'pkcs11:token=nosuch' --key 'pkcs11:object=x' \
  --in img.bin --out x.sig
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_err "token busy or not visible after 5 tries: no token matches pkcs11:token=nosuch"
[ "$ms" -lt 10000 ] || fail "the retries are not bounded ($ms ms)"
pass "5 tries in $ms ms, then 'token busy or not visible'"

# ---- login codes that are not a wrong PIN -------------------------------------------------------
# A token initialised without a user PIN (pkcs11-tool --init-token without --init-pin) answers
# C_Login with CKR_USER_PIN_NOT_INITIALIZED: that is no PIN problem and must not read like one.
pkcs11-tool --module "$MODULE" --slot-index 1 --init-token --label nopin --so-pin 87654321 >/dev/null 2>&1 \
  || fail "pkcs11-tool could not initialise a second token"
expect_rc 3 "login on a token without a user PIN" "$F" sign --token 'pkcs11:token=nopin' \
  --key 'pkcs11:object=x' --in img.bin --out x.sig
expect_err "CKR_USER_PIN_NOT_INITIALIZED: the token has no user PIN"
grep -q "not a wrong PIN" "$T/err" || fail "the message does not say it is not a wrong PIN"
pass "CKR_USER_PIN_NOT_INITIALIZED is named as a token without a user PIN"
done_testing
