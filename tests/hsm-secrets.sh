#!/usr/bin/env bash
# Secrets stay where they belong: a PIN typed where a PIN source belongs is
# never repeated (stderr, JSON); a PIN file others can read is warned about,
# and refused for a production keyset; a crash signal while fuse-xml
# generation runs leaves no core file (the kernel writes one for any other
# process in the same place, checked first).
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE

run "$F" keygen --chip t234 --pkc p256 --sbk --name sec --lab --out lab.json
[ "$RC" -eq 0 ] || fail "keygen: $(cat "$T/err")"
head -c 256 /dev/urandom > img.bin

# ---- a PIN given as a PIN source -----------------------------------------------------------------
expect_rc 2 "--pin-source 73914628" "$F" sign --keyset lab.json --role pkc0 --in img.bin --out x.sig \
  --pin-source 73914628 --json
grep -q "73914628" "$T/err" "$T/out" && fail "the value given to --pin-source was repeated"
expect_err "neither file:PATH nor env:VAR"
[ "$(jget "$T/out" 'd["exit_code"]')" = 2 ] || fail "JSON exit_code"
[ ! -e x.sig ] || fail "x.sig written"
pass "a PIN given to --pin-source is refused without being repeated (stderr, JSON)"
expect_rc 2 "--pin-source with a blank" "$F" sign --keyset lab.json --role pkc0 --in img.bin --out x.sig \
  --pin-source "no such/73914628"
grep -q "73914628" "$T/err" && fail "a bare value that is no file was repeated"
pass "a bare value that names no file is not repeated either"
cp "$FUSELINE_PIN_FILE" bare.pin
expect_rc 0 "a bare path that exists still works" "$F" sign --keyset lab.json --role pkc0 --in img.bin \
  --out bare.sig --pin-source ./bare.pin

# ---- PIN file permissions ------------------------------------------------------------------------
chmod 644 "$FUSELINE_PIN_FILE"
expect_rc 0 "a lab keyset with a world-readable PIN file" "$F" sign --keyset lab.json --role pkc0 --in img.bin --out l.sig
grep -q "warning: PIN file $FUSELINE_PIN_FILE is readable by others (mode 0644)" "$T/err" \
  || fail "no warning about the PIN file's mode: $(cat "$T/err")"
pass "lab keyset: a PIN file others can read is used, with a warning naming it"
expect_rc 3 "keygen of a production keyset with a world-readable PIN file" "$F" keygen --chip t234 --pkc p256 \
  --name prod --out prod.json
expect_err "readable by others (mode 0644): a production keyset refuses it"
[ ! -e prod.json ] || fail "prod.json written"
[ "$(p11tool --login --list-all "pkcs11:token=lab" 2>/dev/null | grep -c 'Label: prod-' || true)" -eq 0 ] \
  || fail "a refused production keygen made objects"
chmod 600 "$FUSELINE_PIN_FILE"
run "$F" keygen --chip t234 --pkc p256 --name prod --out prod.json
[ "$RC" -eq 0 ] || fail "production keygen with a 0600 PIN file: $(cat "$T/err")"
chmod 640 "$FUSELINE_PIN_FILE"
expect_rc 3 "sign with a production keyset and a group-readable PIN file" "$F" sign --keyset prod.json \
  --role pkc0 --in img.bin --out p.sig
expect_err "is readable by its group (mode 0640): a production keyset refuses it"
[ ! -e p.sig ] || fail "p.sig written"
chmod 600 "$FUSELINE_PIN_FILE"
expect_rc 0 "sign with a production keyset and a 0600 PIN file" "$F" sign --keyset prod.json --role pkc0 \
  --in img.bin --out p.sig
pass "production keyset: a PIN file its group or others can read is refused"

# ---- no core dump while secrets are in memory ------------------------------------------------------
ulimit -c unlimited
mkdir ctl && (cd ctl && bash -c 'kill -SEGV $$' 2>/dev/null || true)
if ls ctl/core* >/dev/null 2>&1; then
  # Deterministic: generation blocked reading its PIN from a FIFO, then a crash signal.
  mkdir gen && mkfifo gen/pin.fifo
  (cd gen && exec "$F" fuse-xml --keyset ../lab.json --out fuse.xml --pin-source file:pin.fifo) 2>/dev/null &
  pid=$!
  sleep 0.5
  kill -0 "$pid" 2>/dev/null || fail "fuse-xml did not wait for its PIN"
  grep -Eq '^Max core file size +0 +0 ' "/proc/$pid/limits" \
    || fail "the kernel shows a core limit other than 0 for fuse-xml: $(grep core "/proc/$pid/limits")"
  kill -SEGV "$pid"
  set +e; wait "$pid"; rc=$?; set -e
  [ "$rc" -gt 128 ] || fail "fuse-xml did not die of the signal (exit $rc)"   # SIGSEGV, or SIGABRT from ASan's handler
  ls gen/core* >/dev/null 2>&1 && fail "a core file was written: $(ls gen/core*)"
  # Timed: crash signals at several points of a normal generation (token, key values, XML).
  for d in 0.005 0.01 0.02 0.03 0.05 0.08; do
    rm -rf gen2 && mkdir gen2
    (cd gen2 && exec "$F" fuse-xml --keyset ../lab.json --out fuse.xml) >/dev/null 2>&1 &
    pid=$!
    # From the moment fuseline's main() has run (the kernel then shows its core limit at 0; before
    # that the process is still the shell or the dynamic loader, and holds nothing), or after 0.3 s.
    for _ in $(seq 1 60); do
      grep -Eq '^Max core file size +0 +0 ' "/proc/$pid/limits" 2>/dev/null && break
      sleep 0.005
    done
    sleep "$d"; kill -ABRT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ls gen2/core* >/dev/null 2>&1 && fail "a core file was written after ${d}s"
  done
  pass "crash signals during fuse-xml generation leave no core file (a control process here does)"
else
  not_run "core-file check: the kernel writes no core file here even for a control process (core_pattern: $(cat /proc/sys/kernel/core_pattern))"
fi
done_testing
