"""Shared by ekb-decrypt.py and ekb-forge.py (test-only, python3-cryptography):
open an EKB 1.0/2.0 image with its root key, written from ekb-ftpm-luks.md §2."""
import struct, sys
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def aes_cmac(key, msg):
    c = cmac.CMAC(algorithms.AES(key)); c.update(msg); return c.finalize()

def open_ekb(path, root_hex, fv_arg):
    """Returns (img, major, fv, ek, ak, iv, recs) with recs a list of
    [tag, value]; exits 'CMAC does not verify' if the image's CMAC fails.
    fv_arg() gives the FV hex for an EKB 1.0 (which does not carry its FV)."""
    img = open(path, 'rb').read()
    root = bytes.fromhex(root_hex)
    major = struct.unpack_from('<H', img, 12)[0]
    if major == 2:
        fv, body = img[16:32], 32
    else:
        fv, body = bytes.fromhex(fv_arg()), 16
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
    return img, major, fv, ek, ak, iv, recs
