#!/usr/bin/python3
"""pty-answer.py PROMPT ANSWER -- CMD...: run CMD with a pseudo-terminal as
its controlling terminal (so /dev/tty is that terminal, as at a station),
wait until PROMPT (a substring) appears in what it writes, type ANSWER and a
newline, then pass everything it wrote to stdout and exit with its status.
Exits 3 if PROMPT never appears within 120 s."""
import os
import pty
import select
import sys
import time

if len(sys.argv) < 5 or sys.argv[3] != '--':
    sys.stderr.write(__doc__)
    sys.exit(2)
prompt, answer, cmd = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[4:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
buf, answered, deadline = b'', False, time.time() + 120
while True:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            break
        buf += data
    if not answered and prompt in buf:
        os.write(fd, answer + b'\n')
        answered = True
    if not answered and time.time() > deadline:
        os.kill(pid, 9)
        sys.stdout.write(buf.decode(errors='replace'))
        sys.exit(3)
_, status = os.waitpid(pid, 0)
sys.stdout.write(buf.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(status) if answered else 3)
