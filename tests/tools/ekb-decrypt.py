#!/usr/bin/env python3
"""Independent EKB 1.0/2.0 decryption for the tests (python3-cryptography):
ekb-decrypt.py IMAGE ROOT_KEY_HEX [FV_HEX] -> prints 'tag len sha256(value)'
per record. Written from ekb-ftpm-luks.md §2; exits 1 if the CMAC fails.
With EKB_VALUE=TAG in the environment it prints that record's value in hex
instead (e.g. the EPS seed of a per-device EKB)."""
import hashlib, os, sys
from ekb_common import open_ekb

recs = open_ekb(sys.argv[1], sys.argv[2], lambda: sys.argv[3])[6]
for t, v in recs:
    if os.environ.get('EKB_VALUE'):
        if t == int(os.environ['EKB_VALUE']):
            print(v.hex())
    else:
        print(t, len(v), hashlib.sha256(v).hexdigest())
