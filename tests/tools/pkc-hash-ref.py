#!/usr/bin/env python3
"""pkc-hash-ref.py KEY.pem CHIP — an independent PublicKeyHash computation
(shared/reference/jetson-fuses.md §4) for cross-checking fuseline. Only the
Python standard library and the `openssl` CLI (for the modulus / public
point) are used, so no code path is shared with lib/tegra_key.c.
Prints "0x" + lower-case hex; exit 2 for a key type the chip does not take."""
import hashlib
import re
import subprocess
import sys


def openssl_text(path, extra=()):
    # Public-key PEMs (e.g. exported from a token) need -pubin.
    if "PUBLIC KEY-----" in open(path).read():
        extra = ("-pubin", *extra)
    return subprocess.run(["openssl", "pkey", "-in", path, "-noout", "-text_pub", *extra],
                          check=True, capture_output=True, text=True).stdout


def hex_block(text, label):
    """The colon-separated hex bytes following 'label:' up to the next
    non-indented line, as bytes."""
    m = re.search(r"^" + re.escape(label) + r":\s*\n((?:[ \t]+[0-9a-f:]+\n)+)", text, re.M)
    if not m:
        raise SystemExit(f"pkc-hash-ref: no '{label}' in openssl output")
    return bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))


def key_facts(path):
    """(kind, detail): ('rsa', n) | ('ec', (curve, x, y)) | ('ed25519', raw)."""
    text = openssl_text(path)
    if text.startswith("ED25519"):
        return "ed25519", hex_block(text, "pub")
    if "Modulus:" in text:
        return "rsa", int.from_bytes(hex_block(text, "Modulus"), "big")
    m = re.search(r"^ASN1 OID: (\S+)", text, re.M)
    if m:
        text = openssl_text(path, ["-ec_conv_form", "uncompressed"])
        pub = hex_block(text, "pub")
        if pub[0] != 4:
            raise SystemExit("pkc-hash-ref: EC point is not uncompressed")
        c = (len(pub) - 1) // 2
        return "ec", (m.group(1), pub[1:1 + c], pub[1 + c:])
    raise SystemExit("pkc-hash-ref: unsupported key")


def le(n, size):
    return n.to_bytes(size, "little")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: pkc-hash-ref.py KEY.pem t234|t194")
    kind, d = key_facts(sys.argv[1])
    chip = sys.argv[2].lower()
    if chip == "t234":
        if kind == "rsa" and d.bit_length() == 3072:
            tk = le(d, 384)
        elif kind == "ec" and d[0] == "prime256v1":
            tk = d[1][::-1] + d[2][::-1]
        elif kind == "ec" and d[0] == "secp521r1":
            tk = d[1][::-1] + b"\0\0" + d[2][::-1] + b"\0\0"
        elif kind == "ed25519":
            tk = d
        else:
            print("pkc-hash-ref: key type not accepted on t234", file=sys.stderr)
            sys.exit(2)
        print("0x" + hashlib.sha512(tk.ljust(384, b"\0")).hexdigest())
    elif chip == "t194":
        if kind != "rsa" or d.bit_length() not in (2048, 3072):
            print("pkc-hash-ref: key type not accepted on t194", file=sys.stderr)
            sys.exit(2)
        n = d
        buf = le(n, n.bit_length() // 8)
        if n.bit_length() == 3072:
            r = 1 << 3072
            buf += le((-pow(n, -1, r)) % r, 384) + le((1 << 6144) % n, 384)
        print("0x" + hashlib.sha256(buf.ljust(1216, b"\0")).hexdigest())
    else:
        sys.exit("pkc-hash-ref: chip must be t234 or t194")


if __name__ == "__main__":
    main()
