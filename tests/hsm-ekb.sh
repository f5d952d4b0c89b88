#!/usr/bin/env bash
# fuseline ekb / verify ekb: every EKB vector set (NVIDIA's gen_ekb.py output,
# tests/vectors/ekb, sets A-F including the L4T R36.2 shipped defaults)
# rebuilt byte for byte from its listed inputs with the keys imported into a
# lab token, each vector image accepted by verify ekb, and a flipped byte in
# every region rejected with a message naming the region.
. "$SRCDIR/tests/lib.sh"
lab_token
V=${VECTORS:?}/ekb

# keyset NAME CHIP ROLE=FILE... : a lab keyset with the given keys imported.
keyset() {
  local name=$1 chip=$2 first=1; shift 2
  for rf in "$@"; do
    local role=${rf%%=*} file=${rf#*=}
    if [ $first = 1 ]; then
      run "$FUSELINE" keygen --import-hex "$file" --role "$role" --chip "$chip" --name "$name" --lab --out "$name.json"
      first=0
    else
      run "$FUSELINE" keygen --import-hex "$file" --role "$role" --keyset "$name.json"
    fi
    [ "$RC" -eq 0 ] || fail "import $role into $name"
  done
}
# same WHAT OURS VECTOR: byte-identical, 0600.
same() {
  cmp -s "$2" "$3" || fail "$1: differs from NVIDIA's image ($(cmp "$2" "$3" 2>&1 | head -1))"
  [ "$(stat -c %a "$2")" = 600 ] || fail "$1: mode $(stat -c %a "$2"), expected 600"
  pass "$1: byte-identical to NVIDIA's gen_ekb output ($(stat -c %s "$3") bytes), mode 0600"
}

A=$V/A-t234-ekb1.0-oemk1
keyset a t234 oem-k1="$A/oem_k1.key" ekb-payload="$A/sym_t234.key" ekb-disk="$A/sym2_t234.key" \
  ekb-auth="$A/auth_t234.key"
expect_rc 0 "set A: EKB 1.0, OEM_K1" "$FUSELINE" ekb --keyset a.json --format 1.0 --fv "$A/fv_ekb_t234" \
  --iv cb714178f0d5fd481d56698188d74ae4 --out a.img
same "set A" a.img "$A/eks_t234.img"
# The overwrite rule: an existing --out is exit 7, naming it, untouched; --force replaces it.
printf 'keep\n' > taken.img
expect_rc 7 "ekb --out exists" "$FUSELINE" ekb --keyset a.json --format 1.0 --fv "$A/fv_ekb_t234" \
  --iv cb714178f0d5fd481d56698188d74ae4 --out taken.img
expect_err "taken.img exists already; give --force to replace it"
[ "$(cat taken.img)" = keep ] || fail "an existing --out was changed"
expect_rc 0 "ekb --out exists, --force" "$FUSELINE" ekb --keyset a.json --format 1.0 --fv "$A/fv_ekb_t234" \
  --iv cb714178f0d5fd481d56698188d74ae4 --out taken.img --force
same "set A, replaced with --force" taken.img "$A/eks_t234.img"
for f in oem_k1 sym_t234 sym2_t234 auth_t234; do assert_absent "$(cat "$A/$f.key")" "$T/out" "$T/err" a.json; done

B=$V/B-t234-ekb1.0-oemk2-ftpm-offline
printf '123400c0ffee12345678\n' > sn.hex
keyset b t234 oem-k2="$B/oem_k2.key" ekb-payload="$B/sym_t234.key" ekb-disk="$B/sym2_t234.key" \
  ekb-auth="$B/auth_t234.key"
expect_rc 0 "set B: EKB 1.0, OEM_K2, fTPM records 91-94" "$FUSELINE" ekb --keyset b.json --format 1.0 \
  --fv "$B/fv_ekb_t234" --iv 531d63af5df38305e83153ed6d0fc833 --record-hex 91:sn.hex \
  --record-hex "92:$B/eps_seed.hex" --record "93:$B/ek_cert_rsa.der" --record "94:$B/ek_cert_ec.der" --out b.img
same "set B" b.img "$B/eks_t234.img"

C=$V/C-t234-ekb2.0-oemk1-ftpm-online
keyset c t234 oem-k1="$C/oem_k1.key" ekb-payload="$C/sym_t234.key" ekb-disk="$C/sym2_t234.key" \
  ekb-auth="$C/auth_t234.key"
expect_rc 0 "set C: EKB 2.0, OEM_K1, records 91, 92, 95-97" "$FUSELINE" ekb --keyset c.json --format 2.0 \
  --fv a2f2c07f8bb7b149ccf78baf65d8f0a2 --iv 817c0653cd28f55e8b1d8318a70eeb36 --record-hex 91:sn.hex \
  --record-hex "92:$C/eps_seed.hex" --record "95:$C/sid_cert.der" --record "96:$C/rsa_ek_csr.der" \
  --record "97:$C/ec_ek_csr.der" --out c.img
same "set C" c.img "$C/eks_t234.img"

C2=$V/C2-t234-ekb2.0-oemk1-minimal
expect_rc 0 "set C2: EKB 2.0 with set A's keys" "$FUSELINE" ekb --keyset a.json --format 2.0 \
  --fv 6e021db24b72e7c5e95d9e7a49d0f909 --iv cb714178f0d5fd481d56698188d74ae4 --out c2.img
same "set C2" c2.img "$C2/eks_t234.img"

D=$V/D-t194-ekb1.0-kek2
keyset d t194 kek2="$D/kek2.key" ekb-payload="$D/sym_t194.key" ekb-disk="$D/sym2_t194.key" \
  ekb-auth="$D/auth_t194.key"
expect_rc 0 "set D: t194 EKB 1.0, KEK2" "$FUSELINE" ekb --keyset d.json --format 1.0 --fv "$D/fv_ekb_t194" \
  --iv 01be22f4728d3e3b717e058e755b9e83 --out d.img
same "set D" d.img "$D/eks_t194.img"

E=$V/E-l4t-r36.2-default
keyset e234 t234 oem-k1="$E/t234/oem_k1.key" ekb-payload="$E/t234/sym.key" ekb-disk="$E/t234/sym2.key"
expect_rc 0 "set E t234: L4T R36.2 default eks_t234.img (tag 3 device id)" "$FUSELINE" ekb --keyset e234.json \
  --format 1.0 --fv "$E/t234/fv" --iv 295dd810ecfb53c411258770c17f2667 --record-hex "3:$E/t234/devid" --out e234.img
same "set E t234" e234.img "$E/t234/eks_t234.img"
keyset e194 t194 kek2="$E/t194/kek2.key" ekb-payload="$E/t194/s1" ekb-disk="$E/t194/s2"
expect_rc 0 "set E t194: L4T R36.2 default eks_t194.img" "$FUSELINE" ekb --keyset e194.json --format 1.0 \
  --fv "$E/t194/fv" --iv 6c90bb802265f62d12954782c684e544 --out e194.img
same "set E t194" e194.img "$E/t194/eks_t194.img"

F=$V/F-t194-legacy-r32
keyset f t194 kek2="$F/kek2_key" ekb-payload="$F/sym.key" ekb-disk="$F/sym2.key"
expect_rc 0 "set F: legacy container (R32)" "$FUSELINE" ekb --keyset f.json --format legacy --fv "$F/fv_ekb" \
  --iv e9ab3fda9cec99f1302bbc8bfab4b391 --out f.img
same "set F" f.img "$F/eks.img"

# verify ekb accepts NVIDIA's own images.
vfy() { expect_rc 0 "verify ekb $1" "$FUSELINE" verify ekb "$2" --keyset "$3" "${@:4}"
        grep -q ': PASS$' "$T/out" || fail "no PASS"; }
vfy "set A" "$A/eks_t234.img" a.json --fv "$A/fv_ekb_t234"
grep -q 'gen_ekb 1.5' "$T/out" || fail "set A release"
grep -q 'tag 2 .* OK .*matches ekb-disk' "$T/out" || fail "set A tag 2 not matched to the keyset"
vfy "set B" "$B/eks_t234.img" b.json --fv "$B/fv_ekb_t234"
grep -q 'tag 94 .*798 bytes' "$T/out" || fail "set B tag 94"
vfy "set C" "$C/eks_t234.img" c.json
grep -q 'EKB 2.0' "$T/out" || fail "set C release"
vfy "set C2" "$C2/eks_t234.img" a.json
vfy "set D" "$D/eks_t194.img" d.json --fv "$D/fv_ekb_t194"
vfy "set E t234" "$E/t234/eks_t234.img" e234.json --fv "$E/t234/fv"
grep -q 'gen_ekb 1.3/1.4' "$T/out" || fail "set E release"
vfy "set E t194" "$E/t194/eks_t194.img" e194.json --fv "$E/t194/fv"
vfy "set F" "$F/eks.img" f.json --fv "$F/fv_ekb"
grep -q 'legacy' "$T/out" || fail "set F release"
expect_rc 0 "verify ekb --json" "$FUSELINE" verify ekb "$A/eks_t234.img" --keyset a.json --fv "$A/fv_ekb_t234" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["format"]=="1.0" and d["root_role"]=="oem-k1" and [r["tag"] for r in d["records"]]==[1,2,4], d' "$T/out" \
  || fail "verify --json content"
pass "verify --json names format, root and records"

# A flipped byte in every region is named.
flip() { python3 -c 'import sys;d=bytearray(open(sys.argv[1],"rb").read());d[int(sys.argv[2])]^=int(sys.argv[3],0);open(sys.argv[4],"wb").write(d)' "$@"; }
bad() { # IMAGE OFFSET KEYSET REGION-TEXT [verify args]
  local img=$1 off=$2 ks=$3 want=$4; shift 4
  flip "$img" "$off" 0x01 bad.img
  expect_rc 5 "flip offset $off of $(basename "$img")" "$FUSELINE" verify ekb bad.img --keyset "$ks" "$@"
  grep -q "^PROBLEM  $want" "$T/out" || { cat "$T/out" >&2; fail "offset $off: expected a problem starting '$want'"; }
  expect_err "$want"
  pass "offset $off: named '$want'"
}
FA=(--fv "$A/fv_ekb_t234")
bad "$A/eks_t234.img" 0 a.json "header: size field" "${FA[@]}"
bad "$A/eks_t234.img" 7 a.json "header: magic" "${FA[@]}"
bad "$A/eks_t234.img" 12 a.json "header: the version field" "${FA[@]}"
bad "$A/eks_t234.img" 14 a.json "header: EKB version 1.1 is unknown" "${FA[@]}"
bad "$A/eks_t234.img" 21 a.json "MAC: byte 5 of the stored CMAC" "${FA[@]}"
bad "$A/eks_t234.img" 33 a.json "content header: the ciphertext length field" "${FA[@]}"
bad "$A/eks_t234.img" 37 a.json "content header: magic" "${FA[@]}"
bad "$A/eks_t234.img" 52 a.json "IV: byte 4 (file offset 52)" "${FA[@]}"
bad "$A/eks_t234.img" 64 a.json "ciphertext: byte 0 (file offset 64)" "${FA[@]}"
bad "$A/eks_t234.img" 100 a.json "ciphertext: byte 36 (file offset 100)" "${FA[@]}"
bad "$A/eks_t234.img" 159 a.json "ciphertext: byte 95 (file offset 159)" "${FA[@]}"
bad "$A/eks_t234.img" 500 a.json "filler: byte at offset 500" "${FA[@]}"
bad "$C2/eks_t234.img" 20 a.json "FV: byte 4 (file offset 20)"
bad "$C2/eks_t234.img" 40 a.json "MAC: byte 8 of the stored CMAC"
bad "$C2/eks_t234.img" 70 a.json "IV: byte 6 (file offset 70)"
bad "$C2/eks_t234.img" 150 a.json "ciphertext: byte 70 (file offset 150)"
bad "$B/eks_t234.img" 1500 b.json "ciphertext: byte 1436 (file offset 1500)" --fv "$B/fv_ekb_t234"
bad "$F/eks.img" 35 f.json "IV: byte 3 (file offset 35)" --fv "$F/fv_ekb"
bad "$F/eks.img" 60 f.json "ciphertext: byte 12 (file offset 60)" --fv "$F/fv_ekb"
# The wrong keyset or FV is not mistaken for damage.
expect_rc 5 "set A with set B's keyset" "$FUSELINE" verify ekb "$A/eks_t234.img" --keyset b.json --fv "$A/fv_ekb_t234"
expect_err "does not verify with oem-k2"
expect_rc 5 "set A with the wrong FV" "$FUSELINE" verify ekb "$A/eks_t234.img" --keyset a.json \
  --fv bad66eb4484983684b992fe54a648bb8
expect_err "another key or FV"
# Records made for another keyset (same root, other payload keys) are named.
keyset ab t234 oem-k1="$A/oem_k1.key" ekb-payload="$A/sym_t234.key" ekb-disk="$B/sym2_t234.key"
expect_rc 5 "set A against a keyset with another disk key" "$FUSELINE" verify ekb "$A/eks_t234.img" --keyset ab.json \
  "${FA[@]}"
expect_err "records: tag 2 (disk encryption key) has kcv"

# Random IV (and FV for 2.0) from the token: two runs differ, both verify.
expect_rc 0 "2.0 with a random FV and IV" "$FUSELINE" ekb --keyset a.json --format 2.0 --out r1.img --json
expect_rc 0 "again" "$FUSELINE" ekb --keyset a.json --format 2.0 --out r2.img
cmp -s r1.img r2.img && fail "two random EKBs are identical"
[ "$(head -c 32 r1.img | tail -c 16 | xxd -p)" != "$(head -c 32 r2.img | tail -c 16 | xxd -p)" ] || fail "same FV twice"
pass "random FV and IV differ between runs"
expect_rc 0 "verify the random 2.0 image" "$FUSELINE" verify ekb r1.img --keyset a.json

# Refusals: nothing written.
expect_rc 2 "1.0 without --fv" "$FUSELINE" ekb --keyset a.json --format 1.0 --out x.img
expect_err "bad66eb4484983684b992fe54a648bb8"
[ ! -e x.img ] || fail "x.img written"
keyset k12 t234 oem-k1="$A/oem_k1.key" oem-k2="$B/oem_k2.key" ekb-payload="$A/sym_t234.key" ekb-disk="$A/sym2_t234.key"
expect_rc 2 "both roots and no --root" "$FUSELINE" ekb --keyset k12.json --format 2.0 --out x.img
expect_err "say which one"
expect_rc 0 "--root oem-k2" "$FUSELINE" ekb --keyset k12.json --format 2.0 --root oem-k2 --out k2.img
expect_rc 0 "verify finds the oem-k2 root itself" "$FUSELINE" verify ekb k2.img --keyset k12.json
grep -q '^root *oem-k2' "$T/out" || fail "root not oem-k2"
keyset nodisk t234 oem-k1="$A/oem_k1.key" ekb-payload="$A/sym_t234.key"
expect_rc 2 "keyset without ekb-disk" "$FUSELINE" ekb --keyset nodisk.json --format 2.0 --out x.img
expect_err "ekb-disk"
expect_rc 2 "record tag 1 given as extra" "$FUSELINE" ekb --keyset a.json --format 2.0 --record "1:$A/sym_t234.key" --out x.img
expect_rc 2 "tag 92 of the wrong length" "$FUSELINE" ekb --keyset a.json --format 2.0 --record-hex "92:$A/auth_t234.key" --out x.img
expect_err "92 must be 32 bytes"
expect_rc 2 "--iv of 15 bytes" "$FUSELINE" ekb --keyset a.json --format 2.0 --iv 00112233445566778899aabbccddee --out x.img
[ ! -e x.img ] || fail "x.img written by a refused run"
pass "refused runs wrote nothing"

# The ledger records the image hash, never a key.
expect_rc 0 "ekb --db records the image" "$FUSELINE" ekb --keyset b.json --format 1.0 --fv "$B/fv_ekb_t234" \
  --iv 531d63af5df38305e83153ed6d0fc833 --record-hex 91:sn.hex --record-hex "92:$B/eps_seed.hex" \
  --record "93:$B/ek_cert_rsa.der" --record "94:$B/ek_cert_ec.der" --out b2.img --db l.db \
  --ecid 0x880219116451e2c60c00000001ff0140
expect_rc 0 "ledger export" "$FUSELINE" ledger export --db l.db
grep -q "$(sha256sum "$B/eks_t234.img" | cut -c1-64)" "$T/out" || fail "EKB sha256 not in the ledger"
for f in oem_k2 sym_t234 sym2_t234 auth_t234; do assert_absent "$(cat "$B/$f.key")" "$T/out" l.db; done
assert_absent "$(cat "$B/eps_seed.hex")" "$T/out" l.db
pass "ledger holds the EKB hash and no key or seed"
done_testing
