#!/usr/bin/env python3
"""A stand-in for tegrasign_v3 calling the HSM hook the way it does in HSM
mode: a p_key object carrying key.pkckey.Sha (tegrasign's integer: 0 =
SHA-256, 1 = SHA-512), keysize, ran.size/count and kdf.iv/aad/tag; the data
to sign as a bytearray cut from the image; one call per entry point; the
public-key files written by the get_* calls under the names tegrasign passes.

  tegrasign-fake-caller.py HOOKDIR rsa|rsa512|ed25519|hmac|cmac IN OUT [OFFSET LENGTH]
  tegrasign-fake-caller.py HOOKDIR rsa-sha SHA IN OUT     SHA: an int, none, true, or str:TEXT
  tegrasign-fake-caller.py HOOKDIR batch OUTPREFIX IN...
  tegrasign-fake-caller.py HOOKDIR list LIST.xml SHA PUBFILE
        tegraflash's `--list LIST --pubkeyhash PUBFILE --sha …`: the public key
        through get_rsa_mod_from_pubkey_hsm, then every <file> of the list
        (name, offset, length; <pkc signature=…>) through do_rsa_pss_hsm
  tegrasign-fake-caller.py HOOKDIR pubkeyhash PUBFILE [MONTFILE]
        `--pubkeyhash P H [--getmont M]`: is_PKC_key's probe (get_rsa_mod_hsm,
        get_rsa_mont_hsm), then get_ed25519_pub_hsm when the key is not RSA;
        prints "rsa KEYSIZE" or "ed25519 KEYSIZE" (the hash is tegrasign's own)
  tegrasign-fake-caller.py HOOKDIR pubkey-from-pub PUBFILE MONTFILE
        the *_from_pubkey_hsm pair (`--pubkeyhash` with a public-key file)
  tegrasign-fake-caller.py HOOKDIR getmont MONTFILE
  tegrasign-fake-caller.py HOOKDIR random SIZE COUNT OUT
  tegrasign-fake-caller.py HOOKDIR gcm-args IN IV AAD|- OUT TAG      iv/aad as arguments
  tegrasign-fake-caller.py HOOKDIR gcm-kdf IN IV AAD|- OUT TAG       iv/aad in p_key.kdf (older call)
  tegrasign-fake-caller.py HOOKDIR gcm-derived IN
  tegrasign-fake-caller.py HOOKDIR import NAME...   `from tegrasign_v3_hsm import NAME` for each
  tegrasign-fake-caller.py HOOKDIR call NAME        call NAME(...) expecting FuselineHsmError
  tegrasign-fake-caller.py HOOKDIR zero|gcm IN X
Exit 0 on success, 3 when the hook raised FuselineHsmError (its message on
stderr), 4 when an import failed (ImportError on stderr)."""
import sys
import types
import xml.etree.ElementTree as ET


class Buf:
    """tegrasign's small buffer objects (kdf.iv, kdf.aad, kdf.tag)."""

    def __init__(self, data=None):
        self.data = data

    def get_hexbuf(self):
        return self.data if self.data is not None else 0

    def set_buf(self, b):
        self.data = bytes(b)


def p_key(sha=None, iv=None, aad=None):
    return types.SimpleNamespace(
        key=types.SimpleNamespace(pkckey=types.SimpleNamespace(Sha=sha)),
        hsm=types.SimpleNamespace(key_id=None, active_index=None, magicid=None),
        ran=types.SimpleNamespace(size=0, count=0, buf=None),
        kdf=types.SimpleNamespace(iv=Buf(iv), aad=Buf(aad), tag=Buf()),
        mode=None, keysize=0, len=0, filename="unused-in-hsm-mode.pem")


def p_key_no_sha():
    k = p_key()
    del k.key.pkckey.Sha
    return k


def parse_sha(text):
    if text == "none":
        return None
    if text == "true":
        return True
    if text.startswith("str:"):
        return text[4:]
    return int(text)


def rd(path):
    with open(path, "rb") as f:
        return bytearray(f.read())


def wr(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    sys.path.insert(0, sys.argv[1])
    op, a = sys.argv[2], sys.argv[3:]
    if op == "import":
        bad = []
        for name in a:
            try:
                exec("from tegrasign_v3_hsm import %s" % name, {})
            except ImportError as e:
                bad.append("%s: %s" % (name, e))
        for b in bad:
            print("ImportError: " + b, file=sys.stderr)
        return 4 if bad else 0

    import tegrasign_v3_hsm as hook  # the drop-in under test

    try:
        if op == "batch":
            prefix, files = a[0], a[1:]
            inp = {i: {"data_to_sign": rd(n), "magic_id": "MB1B", "class_key": False} for i, n in enumerate(files)}
            out = {}
            ret = hook.sign_files_in_batch_hsm(p_key(), inp, out)
            if ret != 0:
                print("sign_files_in_batch_hsm returned %r" % ret, file=sys.stderr)
                return 3
            assert sorted(out) == sorted(inp), "signatures missing"
            for i in out:
                assert isinstance(out[i], (bytes, bytearray))
                wr("%s%d.sig" % (prefix, i), out[i])
            return 0
        if op == "list":
            listfile, sha, pubfile = a[0], parse_sha(a[1]), a[2]
            k = p_key(sha)
            if not hook.get_rsa_mod_from_pubkey_hsm(k, pubfile):
                print("get_rsa_mod_from_pubkey_hsm returned False", file=sys.stderr)
                return 1
            for node in ET.parse(listfile).getroot():
                data = rd(node.get("name"))
                off, length = int(node.get("offset", "0")), int(node.get("length", "0"))
                length = length if length > 0 else len(data) - off
                sig = hook.do_rsa_pss_hsm(data[off:off + length], k)
                assert len(sig) == k.keysize, "signature %d bytes, keysize %d" % (len(sig), k.keysize)
                wr(node.find("pkc").get("signature"), sig)
            return 0
        if op == "pubkeyhash":
            k = p_key()
            mont = a[1] if len(a) > 1 else None
            if hook.get_rsa_mod_hsm(k, a[0]) and (mont is None or hook.get_rsa_mont_hsm(k, mont)):
                print("rsa %d" % k.keysize)
            elif hook.get_ed25519_pub_hsm(k, a[0]):
                print("ed25519 %d" % k.keysize)
            else:
                print("no key type matched", file=sys.stderr)
                return 1
            return 0
        if op == "pubkey-from-pub":
            k = p_key()
            ok = hook.get_rsa_mod_from_pubkey_hsm(k, a[0]) and hook.get_rsa_mont_from_pubkey_hsm(k, a[1])
            print("%s %d" % (ok, k.keysize))
            return 0 if ok else 1
        if op == "getmont":
            ok = hook.get_rsa_mont_hsm(p_key(), a[0])
            print(ok)
            return 0 if ok else 1
        if op == "random":
            k = p_key()
            k.ran.size, k.ran.count = int(a[0]), int(a[1])
            assert hook.do_random_hsm(k) is None
            assert isinstance(k.ran.buf, (bytes, bytearray)), type(k.ran.buf)
            wr(a[2], k.ran.buf)
            return 0
        if op in ("gcm-args", "gcm-kdf"):
            data, iv = rd(a[0]), rd(a[1])
            aad = rd(a[2]) if a[2] != "-" else None
            if op == "gcm-args":
                k = p_key()
                enc = hook.do_aes_gcm_hsm(data, k, bytes(iv), bytes(aad) if aad is not None else None)
            else:
                k = p_key(iv=iv, aad=aad)
                enc = hook.do_aes_gcm_hsm(data, k)
            assert isinstance(enc, (bytes, bytearray))
            wr(a[3], enc)
            wr(a[4], k.kdf.tag.data)
            return 0
        if op == "gcm-derived":
            hook.do_aes_gcm_hsm(rd(a[0]), p_key(iv=b"\0" * 12), None, None, True)
            return 0
        if op == "call":
            fn = getattr(hook, a[0])
            fn(p_key(), None) if a[0] == "get_key_file_hsm" else fn("SBK", "00", "", "SBK_X", False)
            print("%s returned instead of raising" % a[0], file=sys.stderr)
            return 1
        if op == "rsa-sha":
            data, out = rd(a[1]), a[2]
            k = p_key_no_sha() if a[0] == "missing" else p_key(parse_sha(a[0]))
            wr(out, hook.do_rsa_pss_hsm(data, k))
            return 0
        data = rd(a[0])
        if len(a) > 3:
            off, length = int(a[2]), int(a[3])
            data = data[off:off + length]
        if op == "rsa":
            sig = hook.do_rsa_pss_hsm(data, p_key(0))
        elif op == "rsa512":
            sig = hook.do_rsa_pss_hsm(data, p_key(1))
        elif op == "ed25519":
            sig = hook.do_ed25519_hsm(data, p_key())
        elif op == "hmac":
            sig = hook.do_hmac_sha256_hsm(data, p_key())
        elif op == "cmac":
            sig = hook.do_aes_cmac_hsm(data, p_key())
        elif op == "zero":
            print(hook.is_zero_aes_hsm(p_key()))
            return 0
        elif op == "gcm":
            hook.do_aes_gcm_hsm(data, p_key())
            return 0
        else:
            print("unknown op " + op, file=sys.stderr)
            return 2
    except hook.FuselineHsmError as e:
        print("hook error: %s" % e, file=sys.stderr)
        return 3
    assert isinstance(sig, (bytes, bytearray)), type(sig)
    wr(a[1], sig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
