"""fuseline HSM back-end for NVIDIA's tegrasign_v3 (drop-in tegrasign_v3_hsm.py).

tegrasign_v3 calls a module named tegrasign_v3_hsm when it runs in HSM mode.
This one forwards every signing request to `fuseline sign`, so the keys stay
in the PKCS#11 token: no PIN in this file, no key value ever read.

Written from the calling interface only (entry-point names, arguments and
return values as tegrasign_v3 uses them); no NVIDIA code.

Entry points (all return bytes, or raise FuselineHsmError):
  do_rsa_pss_hsm(buff_to_sign, p_key)    RSASSA-PSS, salt = hash length,
                                         returned byte-reversed (tegra order);
                                         SHA-512 when p_key.key.pkckey.Sha asks
  do_ed25519_hsm(buff_to_sign, p_key)    pure Ed25519, 64 bytes
  do_hmac_sha256_hsm(buff_to_sign, p_key) HMAC-SHA256 with the SBK, 32 bytes
  do_aes_cmac_hsm(buff_to_sign, p_key)   AES-CMAC with the SBK, 16 bytes
  sign_files_in_batch_hsm(p_key, batch_sign_input, out_sig_data) -> 0/1
                                         {i: {"data_to_sign": …}} -> {i: sig}
  is_zero_aes_hsm(p_key) -> False        the SBK exists (it is in the token)
AES encryption (do_aes_gcm_hsm, do_aes_cbc_hsm) is not offered: it raises.

Configuration (environment):
  FUSELINE_KEYSET         keyset manifest (required)
  FUSELINE                fuseline binary (default: "fuseline" on PATH)
  FUSELINE_HSM_PKC_ROLE   role for RSA/Ed25519 image signatures (default pkc0)
  FUSELINE_HSM_SBK_ROLE   role for HMAC/CMAC (default sbk)
  FUSELINE_HSM_SCHEME     scheme for batch signing (default: from the key type)
  FUSELINE_PIN_FILE / --pin-source rules, FUSELINE_TOKEN, SOFTHSM2_CONF:
                          passed through to fuseline unchanged
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

__all__ = [
    "FuselineHsmError",
    "do_rsa_pss_hsm",
    "do_ed25519_hsm",
    "do_hmac_sha256_hsm",
    "do_aes_cmac_hsm",
    "sign_files_in_batch_hsm",
    "is_zero_aes_hsm",
    "do_aes_gcm_hsm",
    "do_aes_cbc_hsm",
]


class FuselineHsmError(RuntimeError):
    """fuseline refused or failed; the message is fuseline's one-line error."""


def _keyset():
    ks = os.environ.get("FUSELINE_KEYSET")
    if not ks:
        raise FuselineHsmError("FUSELINE_KEYSET is not set: point it at the keyset manifest")
    return ks


def _binary():
    return os.environ.get("FUSELINE", "fuseline")


def _pkc_role():
    return os.environ.get("FUSELINE_HSM_PKC_ROLE", "pkc0")


def _sbk_role():
    return os.environ.get("FUSELINE_HSM_SBK_ROLE", "sbk")


def _wants_sha512(p_key):
    # tegrasign sets p_key.key.pkckey.Sha from its --sha option before it
    # calls do_rsa_pss_hsm. Its exact values are not documented [U]: any
    # value naming 512 (or True) selects SHA-512, anything else SHA-256.
    sha = getattr(getattr(getattr(p_key, "key", None), "pkckey", None), "Sha", None)
    if sha is True:
        return True
    return sha is not None and sha is not False and "512" in str(sha)


def _run(args):
    """Run fuseline with --json; return its parsed JSON lines."""
    cmd = [_binary()] + args + ["--json", "-q"]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, check=False)
    except OSError as e:
        raise FuselineHsmError("cannot run %s: %s" % (cmd[0], e)) from e
    lines = []
    for raw in p.stdout.decode("utf-8", "replace").splitlines():
        raw = raw.strip()
        if raw:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
    if p.returncode != 0 and not lines:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise FuselineHsmError("fuseline exit %d: %s" % (p.returncode, err[-1] if err else "no message"))
    return p.returncode, lines


def _sign_one(role, scheme, data, digest):
    """Sign data (a digest when digest is True) in tegra format; return bytes."""
    with tempfile.TemporaryDirectory(prefix="fuseline-hsm-") as d:
        src = os.path.join(d, "in.bin")
        out = os.path.join(d, "out.sig")
        with open(src, "wb") as f:
            f.write(bytes(data))
        args = ["sign", "--keyset", _keyset(), "--role", role, "--scheme", scheme,
                "--format", "tegra", "--in", src, "--out", out]
        if digest:
            args.insert(1, "--digest")
        rc, lines = _run(args)
        if rc != 0:
            msg = lines[-1].get("error", "failed") if lines else "failed"
            raise FuselineHsmError("fuseline sign exit %d: %s" % (rc, msg))
        with open(out, "rb") as f:
            return f.read()


def do_rsa_pss_hsm(buff_to_sign, p_key):
    """RSA-PSS signature of buff_to_sign, byte-reversed as tegrasign stores it.

    The message is hashed here and only its digest goes to fuseline
    (--digest), so a large image is not copied."""
    if _wants_sha512(p_key):
        dgst, scheme = hashlib.sha512(bytes(buff_to_sign)).digest(), "rsa-pss-sha512"
    else:
        dgst, scheme = hashlib.sha256(bytes(buff_to_sign)).digest(), "rsa-pss-sha256"
    return _sign_one(_pkc_role(), scheme, dgst, True)


def do_ed25519_hsm(buff_to_sign, p_key):
    """Pure Ed25519 over the message (no prehash), 64 bytes."""
    return _sign_one(_pkc_role(), "ed25519", buff_to_sign, False)


def do_hmac_sha256_hsm(buff_to_sign, p_key):
    """HMAC-SHA256 with the SBK, computed inside the token (its HMAC twin)."""
    return _sign_one(_sbk_role(), "hmac-sha256", buff_to_sign, False)


def do_aes_cmac_hsm(buff_to_sign, p_key):
    """AES-CMAC with the SBK, computed inside the token."""
    return _sign_one(_sbk_role(), "aes-cmac", buff_to_sign, False)


def is_zero_aes_hsm(p_key):
    """The SBK lives in the token and is never all-zero there."""
    return False


def sign_files_in_batch_hsm(p_key, batch_sign_input, out_sig_data):
    """Sign every batch_sign_input[i]["data_to_sign"] in one token session.

    Fills out_sig_data[i] with the tegra-format signature; returns 0, or 1
    when any entry failed (nothing is filled then)."""
    keys = sorted(batch_sign_input.keys())
    if not keys:
        return 0
    with tempfile.TemporaryDirectory(prefix="fuseline-hsm-") as d:
        lst = []
        for n, idx in enumerate(keys):
            src = os.path.join(d, "%d.bin" % n)
            with open(src, "wb") as f:
                f.write(bytes(batch_sign_input[idx]["data_to_sign"]))
            lst.append("%s %s\n" % (src, os.path.join(d, "%d.sig" % n)))
        listfile = os.path.join(d, "list.txt")
        with open(listfile, "w") as f:
            f.writelines(lst)
        args = ["sign", "--keyset", _keyset(), "--role", _pkc_role(), "--format", "tegra",
                "--batch", listfile]
        scheme = os.environ.get("FUSELINE_HSM_SCHEME")
        if scheme:
            args += ["--scheme", scheme]
        rc, lines = _run(args)
        if rc != 0:
            for line in lines:
                if not line.get("ok", True) and "error" in line:
                    sys.stderr.write("fuseline: %s\n" % line["error"])
            return 1
        sigs = {}
        for n, idx in enumerate(keys):
            with open(os.path.join(d, "%d.sig" % n), "rb") as f:
                sigs[idx] = f.read()
    out_sig_data.update(sigs)
    return 0


def do_aes_gcm_hsm(buff_to_enc, p_key):
    raise FuselineHsmError("AES-GCM encryption with the SBK is not offered by the fuseline back-end")


def do_aes_cbc_hsm(buff_to_enc, iv, p_key):
    raise FuselineHsmError("AES-CBC encryption with the SBK is not offered by the fuseline back-end")
