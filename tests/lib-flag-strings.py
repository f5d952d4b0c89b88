#!/usr/bin/env python3
"""Print every C string literal in the given files that names a command-line
flag ("--name"), as FILE:LINE: "literal", skipping comments. Exit 0; the
caller decides what a hit means.

lib/ has no command line, so its messages name no flag of fuseline's (the
CLI adds those: lib/fuseline.h, enum fl_hint). The only flags lib/ may
name are other programs' -- the allow-list, kept to what lib/ runs or
quotes:
- a literal that is exactly one flag in ARGV_FLAGS: an argv element of a
  program lib/bsp.c runs (tegraflash.py, tegrarcm_v2, tegraparser_v2,
  odmfuse.sh, tar);
- a flag written right after the program it belongs to (TOOLS: "odmfuse.sh
  --test", "tegrarcm_v2 --uid", "hsm/lab-token.sh --repair", ...);
- tegraflash.py's own --cmd, --bins and --instance, which the fuse package
  checks quote from a package's flash command (fuseline has no such flags).
"""
import re
import sys

ARGV_FLAGS = {'--instance', '--skipuid', '--cmd', '--uid', '--numeric-owner', '--no-same-owner',
              '--no-overwrite-dir', '--noburn', '--auth', '--test', '--read_fusetype', '--chip'}
TOOLS = ('tegraflash.py', 'tegraflash', 'tegrarcm_v2', 'odmfuse.sh', 'l4t_initrd_flash.sh',
         'hsm/lab-token.sh', 'sbsign')
TEGRAFLASH_FLAGS = {'--cmd', '--bins', '--instance'}
ANY_FLAG = re.compile(r'(?<![A-Za-z0-9_-])(--[a-z][a-z0-9_-]*)')


def allowed(text, m):
    flag = m.group(1)
    if text == flag and flag in ARGV_FLAGS:
        return True
    if flag in TEGRAFLASH_FLAGS:
        return True
    before = text[:m.start()].rstrip()
    return any(before.endswith(t) for t in TOOLS)


def literals(src):
    """(line, text) of each string literal, comments and char literals skipped."""
    i, line, n = 0, 1, len(src)
    while i < n:
        c = src[i]
        if c == '\n':
            line += 1
            i += 1
        elif src.startswith('//', i):
            j = src.find('\n', i)
            i = n if j < 0 else j
        elif src.startswith('/*', i):
            j = src.find('*/', i + 2)
            j = n if j < 0 else j + 2
            line += src.count('\n', i, j)
            i = j
        elif c in '"\'':
            j, start, buf = i + 1, line, []
            while j < n and src[j] != c:
                if src[j] == '\\':
                    buf.append(src[j:j + 2])
                    j += 2
                    continue
                if src[j] == '\n':
                    line += 1
                buf.append(src[j])
                j += 1
            if c == '"':
                yield start, ''.join(buf)
            i = j + 1
        else:
            i += 1


for path in sys.argv[1:]:
    with open(path, encoding='utf-8') as f:
        for ln, text in literals(f.read()):
            if any(not allowed(text, m) for m in ANY_FLAG.finditer(text)):
                print(f'{path}:{ln}: "{text}"')
