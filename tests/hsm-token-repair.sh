#!/usr/bin/env bash
# The lab token survives a process killed while SoftHSM2 rewrites its
# token.object (SoftHSM2 2.6.1 truncates the file, unlocks, then writes it on
# every C_Login; a SIGKILL or power loss in between leaves it empty and the
# token invisible, keys and all). hsm/lab-token.sh keeps a verified copy
# after initialisation; fuseline names the damage and the repair command;
# --repair restores the file and the same keys sign again (checked by
# openssl with the public key p11tool exported before the damage). Then
# fuseline processes are SIGKILLed during login, over and over, and after
# each kill the token is either usable or repaired.
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE
LAB=$T/lab
KILLS=${REPAIR_KILLS:-40}

run "$F" keygen --chip t234 --pkc p256 --name rep --lab --out ks.json
[ "$RC" -eq 0 ] || fail "keygen: $(cat "$T/err")"
p11tool --export "pkcs11:token=lab;object=rep-pkc0;type=public" > pkc0.pub 2>/dev/null || fail "p11tool export"
head -c 1000 /dev/urandom > img.bin
TOKDIR=$(ls -d "$LAB"/tokens/*/ | head -n1); TOKDIR=${TOKDIR%/}
[ "$(ls -d "$LAB"/tokens/*/ | wc -l)" -eq 1 ] || fail "expected one token directory"
B=$LAB/backup/$(basename "$TOKDIR")/token.object
[ -s "$B" ] || fail "lab-token.sh kept no copy of token.object at $B"
pass "lab-token.sh kept a copy of token.object after initialisation"

# ecdsa r||s -> DER (X9.62), then openssl checks the signature.
verify_sig() {
  python3 - "$1" "$1.der" <<'PY'
import sys
d = open(sys.argv[1], "rb").read(); n = len(d) // 2
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(d[:n]) + integer(d[n:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
  openssl dgst -sha256 -verify pkc0.pub -signature "$1.der" img.bin >/dev/null 2>&1
}
sign_ok() { # the token is usable and its key is the one exported before any damage
  rm -f chk.sig
  "$F" sign --keyset ks.json --role pkc0 --in img.bin --out chk.sig >/dev/null 2>"$T/err" && verify_sig chk.sig
}

# ---- an emptied token.object: named, refused by a re-init, repaired ----------------------------
: > "$TOKDIR/token.object"
expect_rc 3 "sign with an emptied token.object" "$F" sign --keyset ks.json --role pkc0 --in img.bin --out x.sig
expect_err "token.object is empty"
expect_err "restore it with hsm/lab-token.sh --repair $LAB"
[ ! -e x.sig ] || fail "x.sig written"
run "$F" sign --keyset ks.json --role pkc0 --in img.bin --out x.sig --json
[ "$(jget "$T/out" 'd["exit_code"]')" = 3 ] && jget "$T/out" 'd["error"]' | grep -qF -- "--repair $LAB" \
  || fail "--json error lacks the repair command: $(cat "$T/out")"
pass "fuseline names the emptied token.object and the repair command (text and JSON)"
run "$SRCDIR/hsm/lab-token.sh" "$LAB"
[ "$RC" -eq 1 ] || fail "lab-token.sh on a damaged directory: exit $RC, expected 1"
grep -qF -- "--repair $LAB" "$T/err" || fail "lab-token.sh does not point at --repair: $(cat "$T/err")"
[ "$(ls -d "$LAB"/tokens/*/ | wc -l)" -eq 1 ] || fail "lab-token.sh initialised a second token beside the damaged one"
pass "lab-token.sh refuses to initialise over a damaged token"
expect_rc 0 "lab-token.sh --repair" "$SRCDIR/hsm/lab-token.sh" --repair "$LAB"
grep -q "restored $TOKDIR/token.object" "$T/err" || fail "repair did not say what it restored: $(cat "$T/err")"
cmp -s "$B" "$TOKDIR/token.object" || fail "token.object is not the kept copy"
sign_ok || fail "after --repair the token does not sign with the same key: $(cat "$T/err")"
pass "after --repair the same key signs again (openssl verifies with the key exported before)"
expect_rc 0 "--repair with nothing to repair" "$SRCDIR/hsm/lab-token.sh" --repair "$LAB"
grep -q "nothing to repair" "$T/err" || fail "no 'nothing to repair'"
mv "$B" "$B.away"; : > "$TOKDIR/token.object"
expect_rc 1 "--repair without a kept copy" "$SRCDIR/hsm/lab-token.sh" --repair "$LAB"
grep -q "cannot be repaired" "$T/err" || fail "no 'cannot be repaired': $(cat "$T/err")"
mv "$B.away" "$B"
expect_rc 0 "--repair once the copy is back" "$SRCDIR/hsm/lab-token.sh" --repair "$LAB"
sign_ok || fail "token unusable after the second repair"

# ---- SIGKILL during login, again and again ---------------------------------------------------------
emptied=0
for i in $(seq 1 "$KILLS"); do
  "$F" sign --keyset ks.json --role pkc0 --in img.bin --out "k$i.sig" >/dev/null 2>&1 &
  pid=$!
  # The process start, module initialisation and C_Login take ~10-30 ms here: spread the
  # kills over that window.
  sleep "0.0$(( (i * 7) % 40 + 5 ))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -f "$TOKDIR/token.object" ] && [ ! -s "$TOKDIR/token.object" ]; then
    emptied=$((emptied + 1))
    "$SRCDIR/hsm/lab-token.sh" --repair "$LAB" 2>"$T/err" || fail "kill $i: --repair failed: $(cat "$T/err")"
  fi
  sign_ok || fail "kill $i: the token is neither usable nor repaired: $(cat "$T/err")"
done
pass "$KILLS SIGKILLs during login: the token was usable after each ($emptied emptied token.object, all repaired)"
done_testing
