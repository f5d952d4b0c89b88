#!/usr/bin/env bash
# Ctrl-C or SIGTERM in the middle of work that creates token objects or
# files: keygen, keygen --uefi and sign --batch. Each run gets the signal
# after another delay; afterwards the token (listed by p11tool, not by
# fuseline) and the directory must look exactly as after a failure — no
# object of that run, no manifest or bundle, no temporary file — with exit
# 130 (SIGINT) or 143 (SIGTERM) and a JSON result saying so; or, when the
# signal came after the last point of return, the whole result (exit 0).
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE

objects() { # labels in the token starting with $1 (p11tool, logged in)
  p11tool --login --list-all "pkcs11:token=lab" 2>/dev/null | grep -c "Label: $1" || true
}
no_temps() {
  local t
  t=$(find "$T" -maxdepth 2 -name '*.tmp.*' | head -n3)
  [ -z "$t" ] || fail "$1: temporaries left: $t"
}
# check_json SIG: the one JSON result of an interrupted run.
check_json() {
  local want=$(( $1 == 2 ? 130 : 143 )) name=$([ "$1" = 2 ] && echo SIGINT || echo SIGTERM)
  [ "$(jget "$T/out" 'd["exit_code"]')" = "$want" ] || fail "JSON exit_code: $(cat "$T/out")"
  [ "$(jget "$T/out" 'd["ok"]')" = False ] || fail "JSON ok: $(cat "$T/out")"
  [ "$(jget "$T/out" 'd["interrupted"]')" = "$name" ] || fail "JSON interrupted: $(cat "$T/out")"
}
# bg_signal DELAY SIG CMD...: run CMD (stdout $T/out, stderr $T/err), signal it after DELAY; rc in RC.
bg_signal() {
  local delay=$1 sig=$2 pid; shift 2
  "$@" >"$T/out" 2>"$T/err" &
  pid=$!
  # The delay counts from when the program catches the signal (SigCgt in
  # /proc): a signal before that kills any program by default, and on a
  # loaded machine start-up alone can outlast the shortest delays.
  local n=0
  while [ $n -lt 500 ] && kill -0 "$pid" 2>/dev/null; do
    caught=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$caught" ] && (( (0x$caught >> (sig - 1)) & 1 )) && break
    sleep 0.01; n=$((n + 1))
  done
  sleep "$delay"
  kill "-$sig" "$pid" 2>/dev/null || true
  set +e; wait "$pid"; RC=$?; set -e
}

# ---- keygen: three RSA-3K keys and three fuse keys take a few seconds ----------------------
interrupted=0 completed=0 i=0
for delay in 0.05 0.3 0.7 1.2 1.8 2.5 3.5 30; do
  i=$((i + 1)); sig=$(( i % 2 ? 2 : 15 ))
  if [ "$delay" = 30 ]; then # no signal: the control run completes
    run "$F" keygen --chip t234 --pkc rsa3k --pkc-count 3 --sbk --oem-k1 --oem-k2 --lab --name "k$i" --out "k$i.json" --json
  else
    bg_signal "$delay" "$sig" "$F" keygen --chip t234 --pkc rsa3k --pkc-count 3 --sbk --oem-k1 --oem-k2 --lab \
      --name "k$i" --out "k$i.json" --json
  fi
  case $RC in
    130|143)
      [ "$RC" -eq $((128 + sig)) ] || fail "keygen after ${delay}s: exit $RC for signal $sig"
      check_json "$sig"
      [ ! -e "k$i.json" ] || fail "keygen after ${delay}s: manifest left"
      n=$(objects "k$i-"); [ "$n" -eq 0 ] || fail "keygen after ${delay}s (signal $sig): $n token objects left"
      interrupted=$((interrupted + 1)) ;;
    0)
      [ -s "k$i.json" ] || fail "keygen exit 0 without a manifest"
      n=$(objects "k$i-"); [ "$n" -eq 12 ] || fail "completed keygen: $n token objects, expected 12"
      completed=$((completed + 1)) ;;
    *) fail "keygen after ${delay}s: exit $RC: $(cat "$T/err")" ;;
  esac
  no_temps "keygen after ${delay}s"
done
[ "$interrupted" -ge 3 ] || fail "only $interrupted keygen runs were interrupted: the delays do not hit the work"
[ "$completed" -ge 1 ] || fail "the control keygen did not complete"
pass "keygen signalled at 7 delays: $interrupted rolled back (no object, manifest or temporary left), $completed complete"

# A rerun of an interrupted keygen with the same name works: nothing of it was left.
expect_rc 0 "keygen again with an interrupted run's name" "$F" keygen --chip t234 --pkc p256 --lab --name k1 --out k1.json

# ---- keygen --uefi: four RSA keys, certificates, the bundle staged in DIR.tmp.XXXXXX ---------------
interrupted=0 i=0
for delay in 0.05 0.3 0.6 1.0 1.5 2.2; do
  i=$((i + 1)); sig=$(( i % 2 ? 15 : 2 ))
  bg_signal "$delay" "$sig" "$F" keygen --uefi --key-type rsa3072 --name "u$i" --out-dir "u$i" --subject "/O=Interrupt" --json
  case $RC in
    130|143)
      [ "$RC" -eq $((128 + sig)) ] || fail "keygen --uefi after ${delay}s: exit $RC for signal $sig"
      check_json "$sig"
      [ ! -e "u$i" ] || fail "keygen --uefi after ${delay}s: bundle directory left"
      n=$(objects "u$i-"); [ "$n" -eq 0 ] || fail "keygen --uefi after ${delay}s: $n token objects left"
      interrupted=$((interrupted + 1)) ;;
    0)
      [ -f "u$i/PK.auth" ] || fail "keygen --uefi exit 0 without a bundle"
      n=$(objects "u$i-"); [ "$n" -eq 6 ] || fail "completed keygen --uefi: $n token objects, expected 6" ;;
    *) fail "keygen --uefi after ${delay}s: exit $RC: $(cat "$T/err")" ;;
  esac
  no_temps "keygen --uefi after ${delay}s"
done
[ "$interrupted" -ge 3 ] || fail "only $interrupted keygen --uefi runs were interrupted"
pass "keygen --uefi signalled at 6 delays: $interrupted rolled back (no object, bundle or DIR.tmp left)"

# ---- sign --batch: 400 files, one session; nothing reaches its out unless all do -----------------
run "$F" keygen --chip t234 --pkc p256 --lab --name bs --out bs.json
[ "$RC" -eq 0 ] || fail "keygen for the batch: $(cat "$T/err")"
mkdir in
for j in $(seq 1 400); do head -c 64 /dev/urandom > "in/$j.bin"; echo "in/$j.bin in/$j.sig"; done > list.txt
interrupted=0 i=0
for delay in 0.02 0.1 0.25 0.5 0.8; do
  i=$((i + 1)); sig=$(( i % 2 ? 15 : 2 ))
  rm -f in/*.sig
  bg_signal "$delay" "$sig" "$F" sign --keyset bs.json --role pkc0 --batch list.txt --json
  sigs=$(find in -name '*.sig' | wc -l)
  case $RC in
    130|143)
      [ "$RC" -eq $((128 + sig)) ] || fail "sign --batch after ${delay}s: exit $RC for signal $sig"
      tail -n1 "$T/out" > "$T/last"; cp "$T/last" "$T/out"
      check_json "$sig"
      [ "$sigs" -eq 0 ] || fail "interrupted sign --batch after ${delay}s left $sigs signatures"
      interrupted=$((interrupted + 1)) ;;
    0) [ "$sigs" -eq 400 ] || fail "sign --batch exit 0 with $sigs of 400 signatures" ;;
    *) fail "sign --batch after ${delay}s: exit $RC: $(cat "$T/err")" ;;
  esac
  t=$(find in -name '*.tmp.*' | wc -l)
  [ "$t" -eq 0 ] || fail "sign --batch after ${delay}s: $t temporary files left"
done
[ "$interrupted" -ge 2 ] || fail "only $interrupted sign --batch runs were interrupted"
pass "sign --batch signalled at 5 delays: $interrupted interrupted with no signature and no temporary left"

# ---- enroll --batch: each device is whole (ledger row and certificate file) or not there ----------
export FUSELINE_DB=$T/line.db
run "$F" keygen --identity-ca --keyset bs.json --subject "/O=Interrupt/CN=Interrupt CA" --curve p256
[ "$RC" -eq 0 ] || fail "keygen --identity-ca: $(cat "$T/err")"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dev.key 2>/dev/null
openssl req -new -key dev.key -subj "/CN=dev" -out dev.csr 2>/dev/null || fail "openssl req"
for j in $(seq 1 300); do printf '80012344705df1172c0000%010x dev.csr\n' "$j"; done > devices.txt
mkdir certs
bg_signal 0.5 15 "$F" enroll --keyset bs.json --batch devices.txt --out-dir certs --json
[ "$RC" -eq 143 ] || fail "enroll --batch after 0.5s: exit $RC, expected 143: $(tail -c 300 "$T/err")"
tail -n1 "$T/out" > "$T/last"; cp "$T/last" "$T/out"; check_json 15
rows=$(sqlite3 "$FUSELINE_DB" "SELECT count(*) FROM certificates")
files=$(find certs -name '*.pem' | wc -l)
[ "$rows" -lt 300 ] || fail "enroll --batch was not interrupted (all 300 enrolled)"
[ "$rows" -eq "$files" ] || fail "interrupted enroll --batch: $rows ledger certificates, $files certificate files"
for c in certs/*.pem; do
  e=$(basename "$c" .pem)
  [ "$(sqlite3 "$FUSELINE_DB" "SELECT count(*) FROM certificates WHERE ecid='$e' AND status='valid'")" -eq 1 ] \
    || fail "$c has no ledger row"
done
[ -z "$(find certs -name '*.tmp.*')" ] || fail "temporaries left in certs/"
pass "enroll --batch interrupted after $rows of 300 devices: each one whole (ledger row and file), exit 143"
done_testing
