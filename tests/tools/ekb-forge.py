#!/usr/bin/env python3
"""Test-only EKB rewriter (python3-cryptography), written from
ekb-ftpm-luks.md §2: decrypt an EKB 1.0/2.0 image with its root key, change
records, and write a new image with a valid CMAC (same FV and IV), so the
tests can make images fuseline's own builder refuses to make.
ekb-forge.py IN ROOT_KEY_HEX FV_HEX|- OUT OP...
  OP: set:TAG:FILE (replace the value, or append the record), trunc:TAG:N
  (keep the value's first N bytes), drop:TAG."""
import struct, sys
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def aes_cmac(key, msg):
    c = cmac.CMAC(algorithms.AES(key)); c.update(msg); return c.finalize()

img = open(sys.argv[1], 'rb').read()
root = bytes.fromhex(sys.argv[2])
major = struct.unpack_from('<H', img, 12)[0]
if major == 2:
    fv, body = img[16:32], 32
else:
    fv, body = bytes.fromhex(sys.argv[3]), 16
enc = Cipher(algorithms.AES(root), modes.ECB()).encryptor()
rk = enc.update(fv) + enc.finalize()
ek = aes_cmac(rk, b'\x01encryption\x00ekb\x00\x00\x00\x80')
ak = aes_cmac(rk, b'\x01authentication\x00ekb\x00\x00\x00\x80')
enc_len = struct.unpack_from('<I', img, body + 16)[0]
if aes_cmac(ak, img[body + 16:body + 48 + enc_len]) != img[body:body + 16]:
    sys.exit('CMAC does not verify')
iv = img[body + 32:body + 48]
d = Cipher(algorithms.AES(ek), modes.CBC(iv)).decryptor()
pt = d.update(img[body + 48:body + 48 + enc_len]) + d.finalize()
recs, pos = [], 0
while True:
    t, n = struct.unpack_from('<II', pt, pos)
    pos += 8
    if t == 0 and n == 0:
        break
    recs.append([t, pt[pos:pos + n]])
    pos += n
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
