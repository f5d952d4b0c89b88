#!/usr/bin/env bash
# cryptsetup luksFormat + luksOpen through a loop device with the passphrase
# piped from fuseline, and a file written and read back through the mapping.
# Needs root, a loop device and device-mapper; where the host does not allow
# them the test exits 77 and says why.
. "$SRCDIR/tests/lib.sh"
skip() { echo "SKIP: $*"; exit 77; }
command -v cryptsetup >/dev/null || skip "cryptsetup absent (install cryptsetup-bin)"
[ "$(id -u)" = 0 ] || skip "loop devices and device-mapper need root"
[ -e /dev/loop-control ] || skip "no /dev/loop-control"
[ -e /dev/mapper/control ] || skip "no /dev/mapper/control: device-mapper is not available here"
lab_token
L=${VECTORS:?}/ekb/luks
U=4c7b1e2a-93d5-4f0e-b6a8-2d1c0e9f7a35
E=0x880219116451e2c60c00000001ff0140
expect_rc 0 "import the disk key" "$FUSELINE" keygen --import-hex "$L/luks_ekb.key" --role ekb-disk --chip t234 \
  --name k --lab --out k.json
truncate -s 32M disk.img
LOOP=$(losetup --find --show disk.img 2>"$T/err") || skip "losetup refused: $(cat "$T/err")"
NAME=fl-luks-$$
cleanup() { cryptsetup close "$NAME" 2>/dev/null || true; losetup -d "$LOOP" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
"$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" |
  cryptsetup luksFormat --batch-mode --type luks2 -c aes-xts-plain64 -s 256 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 --uuid "$U" "$LOOP" || fail "luksFormat"
"$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" | cryptsetup luksOpen "$LOOP" "$NAME" \
  2>"$T/err" || { grep -qi "device-mapper\|dm-crypt\|permission" "$T/err" && skip "luksOpen not allowed: $(cat "$T/err")"; fail "luksOpen"; }
head -c 4096 /dev/urandom > data.bin
dd if=data.bin of="/dev/mapper/$NAME" bs=4096 count=1 conv=fsync status=none || fail "write through the mapping"
cryptsetup close "$NAME"
"$FUSELINE" luks-passphrase --keyset k.json --ecid "$E" --context "$U" | cryptsetup luksOpen "$LOOP" "$NAME" || fail "reopen"
cmp <(head -c 4096 "/dev/mapper/$NAME") data.bin || fail "data differs after reopening"
pass "luksFormat/luksOpen on a loop device with the piped passphrase; data survives a close and reopen"
done_testing
