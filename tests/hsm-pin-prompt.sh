#!/usr/bin/env bash
# The PIN prompt on a terminal, as an operator meets it: a pty is the
# controlling terminal (Python's pty module), the PIN typed is not echoed,
# login works, and a Ctrl-C at the prompt leaves the terminal with echo on.
. "$SRCDIR/tests/lib.sh"
lab_token
"$FUSELINE" keygen --chip t234 --pkc p256 --lab --out ks.json -q >/dev/null || fail "keygen"
pin=$(cat "$FUSELINE_PIN_FILE")
unset FUSELINE_PIN_FILE FUSELINE_PIN
python3 - "$FUSELINE" "$pin" <<'PY' || fail "PIN prompt"
import os, pty, sys, termios, time, signal
exe, pin = sys.argv[1], sys.argv[2]

def session(keys, interrupt=False):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(exe, [exe, "verify", "keyset", "ks.json"])
    out = b""
    deadline = time.time() + 30
    while b"PIN for token 'lab': " not in out:
        out += os.read(fd, 1024)
        assert time.time() < deadline, out
    time.sleep(0.2)
    if interrupt:
        os.kill(pid, signal.SIGINT)
        _, status = os.waitpid(pid, 0)
        lflag = termios.tcgetattr(fd)[3]
        return out, status, bool(lflag & termios.ECHO)
    os.write(fd, keys)
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return out, status, None

out, status, _ = session(pin.encode() + b"\n")
assert os.WEXITSTATUS(status) == 0, (status, out)
assert b"PASS" in out, out
assert pin.encode() not in out, "the PIN was echoed"
print("ok - PIN typed at the prompt: login works, nothing echoed")

out, status, _ = session(b"wrong-pin\n")
assert os.WEXITSTATUS(status) == 3 and b"CKR_PIN_INCORRECT" in out and b"wrong-pin" not in out, out
print("ok - wrong PIN at the prompt: exit 3, not echoed")

out, status, echo = session(b"", interrupt=True)
assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, status
assert echo, "terminal left without echo after Ctrl-C"
print("ok - Ctrl-C at the prompt: terminal echo restored")
PY
pass "PIN prompt"
done_testing
