#!/usr/bin/env python3
"""Independent EKB 1.0/2.0 decryption for the tests (python3-cryptography):
ekb-decrypt.py IMAGE ROOT_KEY_HEX [FV_HEX] -> prints 'tag len sha256(value)'
per record. Written from ekb-ftpm-luks.md §2; exits 1 if the CMAC fails.
With EKB_VALUE=TAG in the environment it prints that record's value in hex
instead (e.g. the EPS seed of a per-device EKB)."""
import hashlib, os, struct, sys
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
tag = img[body:body + 16]
enc_len = struct.unpack_from('<I', img, body + 16)[0]
mac_data = img[body + 16:body + 48 + enc_len]
if aes_cmac(ak, mac_data) != tag:
    sys.exit('CMAC does not verify')
iv = img[body + 32:body + 48]
d = Cipher(algorithms.AES(ek), modes.CBC(iv)).decryptor()
pt = d.update(img[body + 48:body + 48 + enc_len]) + d.finalize()
pos = 0
while True:
    t, n = struct.unpack_from('<II', pt, pos)
    pos += 8
    if t == 0 and n == 0:
        break
    if os.environ.get('EKB_VALUE'):
        if t == int(os.environ['EKB_VALUE']):
            print(pt[pos:pos + n].hex())
    else:
        print(t, n, hashlib.sha256(pt[pos:pos + n]).hexdigest())
    pos += n
