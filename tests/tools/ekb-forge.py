#!/usr/bin/env python3
"""Test-only EKB rewriter (python3-cryptography), written from
ekb-ftpm-luks.md §2: decrypt an EKB 1.0/2.0 image with its root key, change
records, and write a new image with a valid CMAC (same FV and IV), so the
tests can make images fuseline's own builder refuses to make.
ekb-forge.py IN ROOT_KEY_HEX FV_HEX|- OUT OP...
  OP: set:TAG:FILE (replace the value, or append the record), trunc:TAG:N
  (keep the value's first N bytes), drop:TAG."""
import struct, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from ekb_common import aes_cmac, open_ekb

img, major, fv, ek, ak, iv, recs = open_ekb(sys.argv[1], sys.argv[2], lambda: sys.argv[3])
for op in sys.argv[5:]:
    kind, tag, arg = (op.split(':', 2) + [''])[:3]
    tag = int(tag)
    if kind == 'set':
        v = open(arg, 'rb').read()
        for r in recs:
            if r[0] == tag:
                r[1] = v
                break
        else:
            recs.append([tag, v])
    elif kind == 'trunc':
        for r in recs:
            if r[0] == tag:
                r[1] = r[1][:int(arg)]
    elif kind == 'drop':
        recs = [r for r in recs if r[0] != tag]
    else:
        sys.exit('unknown op ' + op)
stream = b''.join(struct.pack('<II', t, len(v)) + v for t, v in recs) + bytes(8)
if len(stream) % 16:
    p = 16 - len(stream) % 16
    stream += bytes([p]) * p
e = Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor()
ct = e.update(stream) + e.finalize()
content = struct.pack('<I', len(ct)) + b'EEKB' + bytes(8) + iv + ct
tag = aes_cmac(ak, content)
out = img[4:16] + (fv if major == 2 else b'') + tag + content
s = len(out)
if s < 1024:
    out += bytes([(1024 - s) % 256]) * (1024 - s)
open(sys.argv[4], 'wb').write(struct.pack('<I', len(out)) + out)
