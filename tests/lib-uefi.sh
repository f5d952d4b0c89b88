# lib-uefi.sh — helpers the UEFI shell tests share (sourced after lib.sh).
# Written from the UEFI and devicetree layouts with python3, xxd and fdtget:
# none of them uses fuseline code.

# Signed buffer (UEFI 2.x §8.2: name UTF-16LE ‖ vendor GUID ‖ attrs ‖ EFI_TIME ‖
# payload) and CertData wrapped as a ContentInfo, from an .auth file.
unwrap() { # auth var attrs-hex out.p7 out.buf
  python3 - "$@" <<'PY'
import struct, sys
auth, var, attrs, p7, buf = sys.argv[1:]
d = open(auth, "rb").read()
vendor = {"PK": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "KEK": "8be4df61-93ca-11d2-aa0d-00e098032b8c",
          "db": "d719b2cb-3d3a-4596-a3bc-dad00e67656f", "dbx": "d719b2cb-3d3a-4596-a3bc-dad00e67656f"}[var]
import uuid
dw = struct.unpack("<I", d[16:20])[0]
assert struct.unpack("<HH", d[20:24]) == (0x0200, 0x0EF1)
assert d[24:40] == uuid.UUID("4aafd29d-68df-49ee-8aa9-347d375665a7").bytes_le
sd, payload = d[40:16 + dw], d[16 + dw:]
def ln(n):
    if n < 128: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big"); return bytes([0x80 | len(b)]) + b
oid = bytes.fromhex("06092a864886f70d010702")
inner = b"\xa0" + ln(len(sd)) + sd
open(p7, "wb").write(b"\x30" + ln(len(oid) + len(inner)) + oid + inner)
open(buf, "wb").write(var.encode("utf-16-le") + uuid.UUID(vendor).bytes_le +
                      struct.pack("<I", int(attrs, 16)) + d[:16] + payload)
PY
}
hexof() { xxd -p "$1" | tr -d '\n'; }
# fdtget prints bytes as unpadded hex: normalise to a plain hex string.
fdthex() { fdtget -t bx "$1" "$2" data | tr ' ' '\n' | sed '/^$/d' | while read -r b; do printf '%02x' "0x$b"; done; }
