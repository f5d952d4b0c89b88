#!/usr/bin/env python3
"""A stand-in for tegrasign_v3 calling the HSM hook the way it does: a
p_key object carrying key.pkckey.Sha and hsm.key_id, the data to sign as a
bytearray (a buffer cut from the image), one call per entry point, and
sign_files_in_batch_hsm with {i: {"data_to_sign", "magic_id", "class_key"}}.

  tegrasign-fake-caller.py HOOKDIR rsa|rsa512|ed25519|hmac|cmac IN OUT [OFFSET LENGTH]
  tegrasign-fake-caller.py HOOKDIR batch OUTPREFIX IN...
Exit 0 on success, 3 when the hook raised (its message on stderr)."""
import sys
import types


def p_key(sha=None):
    return types.SimpleNamespace(
        key=types.SimpleNamespace(pkckey=types.SimpleNamespace(Sha=sha)),
        hsm=types.SimpleNamespace(key_id=None, active_index=None, magicid=None),
        mode=None, keysize=0, filename="unused-in-hsm-mode.pem")


def main():
    sys.path.insert(0, sys.argv[1])
    import tegrasign_v3_hsm as hook  # the drop-in under test

    op = sys.argv[2]
    try:
        if op == "batch":
            prefix, files = sys.argv[3], sys.argv[4:]
            inp = {}
            for i, name in enumerate(files):
                with open(name, "rb") as f:
                    inp[i] = {"data_to_sign": bytearray(f.read()), "magic_id": "MB1B", "class_key": False}
            out = {}
            ret = hook.sign_files_in_batch_hsm(p_key(), inp, out)
            if ret != 0:
                print("sign_files_in_batch_hsm returned %r" % ret, file=sys.stderr)
                return 3
            assert sorted(out) == sorted(inp), "signatures missing"
            for i in out:
                assert isinstance(out[i], (bytes, bytearray))
                with open("%s%d.sig" % (prefix, i), "wb") as f:
                    f.write(out[i])
            return 0
        with open(sys.argv[3], "rb") as f:
            data = bytearray(f.read())
        if len(sys.argv) > 5:
            off, length = int(sys.argv[5]), int(sys.argv[6])
            data = data[off:off + length]
        if op == "rsa":
            sig = hook.do_rsa_pss_hsm(data, p_key(None))
        elif op == "rsa512":
            sig = hook.do_rsa_pss_hsm(data, p_key("sha512"))
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
    with open(sys.argv[4], "wb") as f:
        f.write(sig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
