#!/usr/bin/env python3
"""Check the examples of one --help output (a file): they can be pasted.

Every line starting with "  fuseline " is an example; a line that ends in
" \\" continues on the next, indented line. Anything else right after an
example must be a blank line, an indented line or a sentence (a capital
letter): argp's wrapping at column 79 used to leave pieces of a command
("--length 2048 \\", "blob.bin --out blob.mac") at the start of a line.
Each joined example must split into shell words starting with "fuseline".
"""
import shlex
import sys

lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
bad = []
cmd = None
for n, line in enumerate(lines, 1):
    if len(line) > 79:
        bad.append("%d: longer than 79 columns: %r" % (n, line))
    if cmd is not None:
        if cmd.endswith("\\"):
            if not line.startswith("    "):
                bad.append("%d: continuation is not indented: %r" % (n, line))
            cmd = cmd[:-1] + " " + line.strip()
            if not cmd.endswith("\\"):
                words = shlex.split(cmd.replace("…", "x"))
                if words[0] != "fuseline":
                    bad.append("%d: example does not start with fuseline: %r" % (n, cmd))
                cmd = ""
            continue
        if line and not line.startswith(" ") and not line[0].isupper():
            bad.append("%d: a piece of a wrapped example: %r" % (n, line))
        cmd = None
    if line.startswith("  fuseline "):
        cmd = line.strip()
        if not cmd.endswith("\\"):
            shlex.split(cmd.replace("…", "x"))
            cmd = ""
if bad:
    print("\n".join(bad))
    sys.exit(1)
