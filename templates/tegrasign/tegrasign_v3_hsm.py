"""fuseline HSM back-end for NVIDIA's tegrasign_v3 (drop-in tegrasign_v3_hsm.py).

tegrasign_v3 imports a module named tegrasign_v3_hsm when it runs in HSM mode
(--hsm TYPE). This one forwards every request to the fuseline binary, so the
keys stay in the PKCS#11 token: no PIN in this file, no private or secret key
value ever read.

Written from the calling interface only (entry-point names, arguments and
return values as tegrasign_v3 uses them); no NVIDIA code.

Served from the token (all return bytes / True / None, or raise
FuselineHsmError with fuseline's one-line message):
  do_rsa_pss_hsm(buf, p_key)        RSASSA-PSS over buf, byte-reversed (tegra
                                    order). p_key.key.pkckey.Sha picks the
                                    digest as tegrasign encodes it: 1 = SHA-512,
                                    0 = SHA-256; salt 32 with either (what
                                    NVIDIA's software mode makes). Any other
                                    value is an error naming it.
  do_ed25519_hsm(buf, p_key)        pure Ed25519, 64 bytes
  do_hmac_sha256_hsm(buf, p_key)    HMAC-SHA256 with the SBK (its HMAC twin)
  do_aes_cmac_hsm(buf, p_key)       AES-CMAC with the SBK
  do_aes_gcm_hsm(buf, p_key[, iv, aad])
                                    AES-GCM with the SBK in the token
                                    (CKM_AES_GCM); IV and AAD from the
                                    arguments or p_key.kdf.iv / .aad; the tag
                                    goes to p_key.kdf.tag; returns ciphertext
  do_random_hsm(p_key)              p_key.ran.buf = ran.size * ran.count bytes
                                    from the token's RNG
  get_rsa_mod_hsm(p_key, pub_modf)  \\ the RSA public key as tegrasign writes
  get_rsa_mod_from_pubkey_hsm(...)  / it (modulus byte-reversed); False when
                                    the role's key is not RSA
  get_rsa_mont_hsm(p_key, montf)    \\ RSA-3072 Montgomery values (768 bytes)
  get_rsa_mont_from_pubkey_hsm(...) /
  get_ed25519_pub_hsm(p_key, pubf)  raw 32-byte Ed25519 key; False when not Ed25519
  sign_files_in_batch_hsm(p_key, inp, out) -> 0/1
  is_zero_aes_hsm(p_key) -> False   the SBK exists (it is in the token)
Not served (they exist, and raise FuselineHsmError saying so):
  oem_hsm_kdf, oem_hsm_aes_gcm, oem_hsm_hmacsha   NVIDIA's OEM key-derivation
                                    and FSKP back-end (keys derived from the
                                    SBK/FSKP keys and kept in an HSM keystore)
  get_key_file_hsm                  keys are not files here
  do_aes_cbc_hsm                    AES-CBC encryption with the SBK

Configuration (environment):
  FUSELINE_KEYSET         keyset manifest (required)
  FUSELINE                fuseline binary (default: the installed one, for the
                          copy meson installs; "fuseline" on PATH for this file)
  FUSELINE_HSM_PKC_ROLE   role for RSA/Ed25519 signatures and public keys (default pkc0)
  FUSELINE_HSM_SBK_ROLE   role for HMAC/CMAC/AES-GCM (default sbk)
  FUSELINE_HSM_SCHEME     scheme for batch signing (default: from Sha / the key type)
  FUSELINE_PIN_FILE / FUSELINE_PIN, FUSELINE_TOKEN, SOFTHSM2_CONF:
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
    "do_aes_gcm_hsm",
    "do_aes_cbc_hsm",
    "do_random_hsm",
    "get_rsa_mod_hsm",
    "get_rsa_mod_from_pubkey_hsm",
    "get_rsa_mont_hsm",
    "get_rsa_mont_from_pubkey_hsm",
    "get_ed25519_pub_hsm",
    "get_key_file_hsm",
    "oem_hsm_kdf",
    "oem_hsm_aes_gcm",
    "oem_hsm_hmacsha",
    "sign_files_in_batch_hsm",
    "is_zero_aes_hsm",
]

# tegrasign's encoding of the digest choice (its Sha._256 / Sha._512).
SHA_256 = 0
SHA_512 = 1
# fuseline's schemes for them: salt 32 in both cases, as NVIDIA's software
# mode signs (shared/vectors/tegrasign/VECTORS.txt).
_PSS = {SHA_256: ("sha256", "rsa-pss-sha256"), SHA_512: ("sha512", "rsa-pss-sha512-salt32")}
_RANDOM_CHUNK = 65536
ED25519_SIG_SIZE = 64


class FuselineHsmError(RuntimeError):
    """fuseline refused or failed, or tegrasign asked for something fuseline
    does not serve; the message says which."""


def _keyset():
    ks = os.environ.get("FUSELINE_KEYSET")
    if not ks:
        raise FuselineHsmError("FUSELINE_KEYSET is not set: point it at the keyset manifest")
    return ks


# `meson install` writes the installed binary's path here; in the source tree
# the placeholder stays and "fuseline" is looked up on PATH.
_INSTALLED_FUSELINE = "@FUSELINE_BINARY@"


def _binary():
    default = "fuseline" if _INSTALLED_FUSELINE.startswith("@") else _INSTALLED_FUSELINE
    return os.environ.get("FUSELINE", default)


def _pkc_role():
    return os.environ.get("FUSELINE_HSM_PKC_ROLE", "pkc0")


def _sbk_role():
    return os.environ.get("FUSELINE_HSM_SBK_ROLE", "sbk")


def _role_type(role):
    """The key type the manifest records for role ("rsa3k", "ed25519", …).
    fuseline checks it against the token object on every use."""
    path = _keyset()
    try:
        with open(path, "r", encoding="utf-8") as f:
            ks = json.load(f)
    except (OSError, ValueError) as e:
        raise FuselineHsmError("%s: cannot read the keyset manifest: %s" % (path, e)) from e
    for k in ks.get("keys", []) if isinstance(ks, dict) else []:
        if isinstance(k, dict) and k.get("role") == role:
            return str(k.get("type", ""))
    raise FuselineHsmError("%s: no role '%s' (set FUSELINE_HSM_PKC_ROLE / FUSELINE_HSM_SBK_ROLE)" % (path, role))


def _sha_choice(p_key):
    """(hash name, fuseline scheme) for p_key.key.pkckey.Sha, exactly as
    tegrasign encodes it; anything else is an error naming the value."""
    pkckey = getattr(getattr(p_key, "key", None), "pkckey", None)
    if pkckey is None or not hasattr(pkckey, "Sha"):
        raise FuselineHsmError("p_key.key.pkckey.Sha is missing: tegrasign sets it (0 = SHA-256, 1 = SHA-512) "
                               "before an RSA-PSS signature")
    sha = pkckey.Sha
    # bool is an int in Python; True is not one of tegrasign's values.
    if isinstance(sha, bool) or not isinstance(sha, int) or sha not in _PSS:
        raise FuselineHsmError("p_key.key.pkckey.Sha is %r: tegrasign's values are 0 (SHA-256) and 1 (SHA-512)"
                               % (sha,))
    return _PSS[int(sha)]


def _run(args):
    """Run fuseline with --json; return (exit code, parsed JSON lines)."""
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


def _check(what, rc, lines):
    if rc != 0:
        msg = lines[-1].get("error", "failed") if lines else "failed"
        raise FuselineHsmError("fuseline %s exit %d: %s" % (what, rc, msg))


def _write(path, data):
    """Write a file tegrasign asked for: whole or not at all."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fuseline-hsm-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
        _check("sign", *_run(args))
        with open(out, "rb") as f:
            return f.read()


def _export_pub(role, tegra=False, mont=False):
    """(tegra-format public key, Montgomery values) of role, from the token."""
    with tempfile.TemporaryDirectory(prefix="fuseline-hsm-") as d:
        args = ["keygen", "--export-pub", role, "--keyset", _keyset(), "--format", "tegra"]
        pub, mnt = os.path.join(d, "pub.bin"), os.path.join(d, "mont.bin")
        if tegra:
            args += ["--out", pub]
        if mont:
            args += ["--mont-out", mnt]
        _check("keygen --export-pub", *_run(args))
        res = []
        for want, path in ((tegra, pub), (mont, mnt)):
            if want:
                with open(path, "rb") as f:
                    res.append(f.read())
            else:
                res.append(None)
        return tuple(res)


# ---- signatures and MACs --------------------------------------------------

def do_rsa_pss_hsm(buff_to_sign, p_key):
    """RSA-PSS signature of buff_to_sign, byte-reversed as tegrasign stores it.

    The message is hashed here and only its digest goes to fuseline
    (--digest), so a large image is not copied."""
    md, scheme = _sha_choice(p_key)
    return _sign_one(_pkc_role(), scheme, hashlib.new(md, bytes(buff_to_sign)).digest(), True)


def do_ed25519_hsm(buff_to_sign, p_key):
    """Pure Ed25519 over the message (no prehash), 64 bytes."""
    return _sign_one(_pkc_role(), "ed25519", buff_to_sign, False)


def do_hmac_sha256_hsm(buff_to_sign, p_key, use_der_key=False):
    """HMAC-SHA256 with the SBK, computed inside the token (its HMAC twin)."""
    if use_der_key:
        raise FuselineHsmError("do_hmac_sha256_hsm with a derived key (use_der_key) is not supported by fuseline: "
                               "only keys held in the token are used")
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
    when any entry failed (nothing is filled then). The scheme is
    FUSELINE_HSM_SCHEME if set; else, for an RSA key, the one
    p_key.key.pkckey.Sha names when tegrasign set it; else the key type's."""
    keys = sorted(batch_sign_input.keys())
    if not keys:
        return 0
    scheme = os.environ.get("FUSELINE_HSM_SCHEME")
    if not scheme and _role_type(_pkc_role()).startswith("rsa"):
        pkckey = getattr(getattr(p_key, "key", None), "pkckey", None)
        if getattr(pkckey, "Sha", None) is not None:
            scheme = _sha_choice(p_key)[1]
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


# ---- public keys ------------------------------------------------------------

def _rsa_mod(p_key, pub_modf, pub_expf):
    if not _role_type(_pkc_role()).startswith("rsa"):
        return False
    if pub_expf:
        # [U] The layout of tegrasign's exponent file is not in our references.
        raise FuselineHsmError("an RSA public-exponent file (pub_expf) is not supported by fuseline's back-end")
    pub, _ = _export_pub(_pkc_role(), tegra=True)
    if pub_modf:
        _write(pub_modf, pub)
    p_key.keysize = len(pub)
    return True


def get_rsa_mod_hsm(p_key, pub_modf=None, pub_expf=None):
    """The RSA public key of the PKC role as tegrasign writes it (modulus,
    byte-reversed); p_key.keysize = its length. False if the key is not RSA."""
    return _rsa_mod(p_key, pub_modf, pub_expf)


def get_rsa_mod_from_pubkey_hsm(p_key, pub_modf=None, pub_expf=None):
    """As get_rsa_mod_hsm: the token holds the public key either way."""
    return _rsa_mod(p_key, pub_modf, pub_expf)


def _rsa_mont(p_key, pub_montf):
    if not _role_type(_pkc_role()).startswith("rsa"):
        return False
    _, mont = _export_pub(_pkc_role(), mont=True)
    if pub_montf:
        _write(pub_montf, mont)
    return True


def get_rsa_mont_hsm(p_key, pub_montf=None):
    """The RSA-3072 Montgomery values (768 bytes) tegrasign --getmont writes."""
    return _rsa_mont(p_key, pub_montf)


def get_rsa_mont_from_pubkey_hsm(p_key, pub_montf=None):
    """As get_rsa_mont_hsm."""
    return _rsa_mont(p_key, pub_montf)


def get_ed25519_pub_hsm(p_key, pub_keyf=None):
    """The raw 32-byte Ed25519 public key; p_key.keysize = 64 (the signature
    size). False if the PKC role's key is not Ed25519."""
    if _role_type(_pkc_role()) != "ed25519":
        return False
    pub, _ = _export_pub(_pkc_role(), tegra=True)
    if pub_keyf:
        _write(pub_keyf, pub)
    p_key.keysize = ED25519_SIG_SIZE
    return True


# ---- random bytes and AES-GCM ---------------------------------------------

def _random(n):
    out = bytearray()
    with tempfile.TemporaryDirectory(prefix="fuseline-hsm-") as d:
        path = os.path.join(d, "random.bin")
        while len(out) < n:
            chunk = min(_RANDOM_CHUNK, n - len(out))
            # The same scratch file each chunk: replacing it is intended.
            _check("keygen --random", *_run(["keygen", "--random", str(chunk), "--keyset", _keyset(),
                                             "--out", path, "--force"]))
            with open(path, "rb") as f:
                got = f.read()
            if len(got) != chunk:
                raise FuselineHsmError("fuseline keygen --random wrote %d bytes, not %d" % (len(got), chunk))
            out += got
    return out


def do_random_hsm(p_key, *unused):
    """p_key.ran.buf = ran.count strings of ran.size bytes from the token's RNG."""
    ran = getattr(p_key, "ran", None)
    size, count = getattr(ran, "size", None), getattr(ran, "count", None)
    for name, v in (("size", size), ("count", count)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise FuselineHsmError("p_key.ran.%s is %r: a non-negative byte count is needed" % (name, v))
    ran.buf = _random(size * count)


def _as_bytes(v, what):
    """Bytes from tegrasign's buffers: bytes/bytearray, or a hex string."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        try:
            return bytes.fromhex(v)
        except ValueError as e:
            raise FuselineHsmError("%s is not hex: %r" % (what, v[:40])) from e
    return None


def _kdf_buf(p_key, name):
    field = getattr(getattr(p_key, "kdf", None), name, None)
    get = getattr(field, "get_hexbuf", None)
    return get() if callable(get) else None


def do_aes_gcm_hsm(buf, p_key, iv=None, aad=None, use_der_key=False, *unused):
    """AES-GCM encryption of buf with the SBK inside the token (CKM_AES_GCM).

    IV and AAD are the arguments when tegrasign passes them, else
    p_key.kdf.iv / p_key.kdf.aad. The 16-byte tag is stored with
    p_key.kdf.tag.set_buf(); the ciphertext is returned."""
    if isinstance(iv, bool):  # the older signature: (buf, p_key, use_der_key)
        use_der_key, iv = iv, None
    if use_der_key:
        raise FuselineHsmError("do_aes_gcm_hsm with a derived key (use_der_key) is not supported by fuseline: "
                               "only keys held in the token are used")
    ivb = _as_bytes(iv, "the IV") if iv is not None else None
    if ivb is None:
        ivb = _as_bytes(_kdf_buf(p_key, "iv"), "p_key.kdf.iv")
    if not ivb:
        raise FuselineHsmError("do_aes_gcm_hsm: no IV (neither an iv argument nor p_key.kdf.iv is set)")
    aadb = _as_bytes(aad, "the AAD") if aad is not None else None
    if aadb is None:
        aadb = _as_bytes(_kdf_buf(p_key, "aad"), "p_key.kdf.aad")
    with tempfile.TemporaryDirectory(prefix="fuseline-hsm-") as d:
        paths = {n: os.path.join(d, n) for n in ("in.bin", "iv.bin", "aad.bin", "out.bin", "tag.bin")}
        for name, data in (("in.bin", buf), ("iv.bin", ivb), ("aad.bin", aadb)):
            if data is not None:
                with open(paths[name], "wb") as f:
                    f.write(bytes(data))
        args = ["sign", "--encrypt", "aes-gcm", "--keyset", _keyset(), "--role", _sbk_role(),
                "--iv", paths["iv.bin"], "--in", paths["in.bin"], "--out", paths["out.bin"],
                "--tag-out", paths["tag.bin"]]
        if aadb:
            args += ["--aad", paths["aad.bin"]]
        _check("sign --encrypt aes-gcm", *_run(args))
        with open(paths["out.bin"], "rb") as f:
            enc = f.read()
        with open(paths["tag.bin"], "rb") as f:
            tag = f.read()
    tag_field = getattr(getattr(p_key, "kdf", None), "tag", None)
    if tag_field is None or not callable(getattr(tag_field, "set_buf", None)):
        raise FuselineHsmError("do_aes_gcm_hsm: p_key.kdf.tag.set_buf is missing, the GCM tag has nowhere to go")
    tag_field.set_buf(bytearray(tag))
    return bytearray(enc)


def do_aes_cbc_hsm(buff_to_enc, iv, p_key):
    raise FuselineHsmError("do_aes_cbc_hsm: AES-CBC encryption with the SBK is not supported by fuseline's back-end")


# ---- what fuseline does not serve -------------------------------------------

def _unsupported(name, what):
    raise FuselineHsmError("%s: %s is not supported by fuseline's back-end; fuseline keeps only the fuse keys "
                           "themselves in the token and never derives or stores keys for tegrasign" % (name, what))


def oem_hsm_kdf(*args, **kwargs):
    _unsupported("oem_hsm_kdf", "NVIDIA's OEM key derivation (SBK/FSKP-derived keys in an HSM keystore)")


def oem_hsm_aes_gcm(*args, **kwargs):
    _unsupported("oem_hsm_aes_gcm", "AES-GCM with an OEM-derived (SBK/FSKP) key")


def oem_hsm_hmacsha(*args, **kwargs):
    _unsupported("oem_hsm_hmacsha", "HMAC-SHA256 with an OEM-derived (FSKP) key")


def get_key_file_hsm(p_key=None, is_priv_key=True):
    raise FuselineHsmError("get_key_file_hsm: fuseline's keys stay in the PKCS#11 token; there is no key file "
                           "to hand to tegrasign")
