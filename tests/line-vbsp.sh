# line-vbsp.sh — the virtual BSP's stand-ins on their own, without fuseline: each trap of NVIDIA's R36.2
# tools that the virtual line must reproduce (shared/reference/jetson-fuses.md §1, §2, §6, §8), proven
# directly against tegraparser_v2, tegrarcm_v2, tegraflash.py and odmfuse.sh.  Expected values come from
# NVIDIA's fuse-blob vectors, the plan XML files and python3's own parsing, never from the stand-ins.
source "$SRCDIR/tests/lib.sh"

VLDIR=$SRCDIR/tests/virtual-line
VL=$VLDIR/vline
VEC=$VECTORS/fuse-blob
BL_SRC=$VLDIR/bsp/Linux_for_Tegra/bootloader

# mkusb.py (the USB half) is written separately: use it when it is there; otherwise the devices still get
# their state files through an argument recorder (the stand-ins under test never read usb.umockdev).
cat >"$T/mkusb-rec.py" <<'EOF'
import json, sys
with open(sys.argv[1], 'w') as f:
    json.dump(sys.argv[2:], f)
EOF
if [ ! -f "$VLDIR/mkusb.py" ]; then
  echo "# $VLDIR/mkusb.py absent: devices are added through an argument recorder"
  export VLINE_MKUSB=$T/mkusb-rec.py
fi

# A hung tool must really hang: run CMD in its own session; after SECS kill the whole group (rc 124).
cat >"$T/limit.py" <<'EOF'
import os, signal, subprocess, sys
secs = float(sys.argv[1])
p = subprocess.Popen(sys.argv[2:], start_new_session=True)
try:
    sys.exit(p.wait(timeout=secs))
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    sys.exit(124)
EOF
# fcrun.py WC INSTANCE [CMD]: the package's fusecmd.sh command with --instance appended and --cmd replaced,
# run in WC/bootloader (what fuseline does with a per-device working copy).
cat >"$T/fcrun.py" <<'EOF'
import os, re, shlex, sys
wc, inst = sys.argv[1], sys.argv[2]
text = open(os.path.join(wc, 'bootloader', 'fusecmd.sh')).read()
lines = text.splitlines()
assert lines[0] == '#!/bin/bash' and lines[1] == 'export PATH=.:${PATH}', lines[:2]
evals = [l for l in lines if l.startswith('eval ')]
assert len(evals) == 1, evals
m = re.fullmatch(r"eval '(\./tegraflash\.py .*)'", evals[0])
argv = shlex.split(m.group(1))
if len(sys.argv) > 3 and sys.argv[3]:
    i = argv.index('--cmd')
    argv[i + 1] = sys.argv[3]
argv += ['--instance', inst]
os.chdir(os.path.join(wc, 'bootloader'))
os.execv(argv[0], argv)
EOF

L=$T/line
snap() { "$VL" show "$L" "$1" >"$T/show.json" || fail "vline show $1"; }   # the device state in $T/show.json
show() { snap "$1"; jget "$T/show.json" "$2"; }
# Fuse values of a plan XML, normalised to the readfuses format (python's XML parser, not the stand-ins').
cat >"$T/plan.py" <<'EOF'
import sys, xml.etree.ElementTree as ET
for f in ET.parse(sys.argv[1]).getroot().iter('fuse'):
    size = int(f.get('size'), 0); v = int(f.get('value'), 16)
    print('%s: %0*x' % (f.get('name'), 2 * size, v))
EOF

# ---------------------------------------------------------------- tegraparser_v2: the fuse-blob compiler
mkdir "$T/tp"
for v in t234-prod-full:0x23 t234-test-pkh-bsi:0x23 t194-prod:0x19; do
  name=${v%%:*}; chip=${v##*:}
  expect_rc 0 "tegraparser_v2 --chip $chip --fuse_info $name" \
    bash -c "cd '$T/tp' && '$BL_SRC/tegraparser_v2' --chip $chip 0 --fuse_info '$VEC/$name.xml' out.blob"
  cmp -s "$T/tp/out.blob" "$VEC/$name.blob" || fail "$name: blob differs from NVIDIA's vector"
  pass "$name: blob equals NVIDIA's tegraparser_v2 output byte for byte"
done
sed 's/"ReservedOdm0"/"OemK2"/' "$VEC/t234-prod-full.xml" >"$T/tp/oemk2.xml"
expect_rc 4 "a name NVIDIA knows but whose type id is unknown (OemK2)" \
  bash -c "cd '$T/tp' && '$BL_SRC/tegraparser_v2' --chip 0x23 0 --fuse_info oemk2.xml x.blob"
grep -qx 'Not a valid Fuse entry : OemK2' "$T/out" || fail "OemK2 not named"
[ ! -e "$T/tp/x.blob" ] || fail "a blob was written for a refused XML"
sed 's/"ReservedOdm0"/"Bogus"/' "$VEC/t234-prod-full.xml" >"$T/tp/bogus.xml"
expect_rc 4 "an unknown fuse name" \
  bash -c "cd '$T/tp' && '$BL_SRC/tegraparser_v2' --chip 0x23 0 --fuse_info bogus.xml x.blob"
grep -qx 'Not a valid Fuse entry : Bogus' "$T/out" || fail "Bogus not named"
expect_rc 4 "SecureBootKey is 0x66 on T234, 0x2b on T194: Kek0 is not known on T234" \
  bash -c "cd '$T/tp' && '$BL_SRC/tegraparser_v2' --chip 0x23 0 --read_fusetype Kek0 x.bin"

# ---------------------------------------------------------------- the harness
expect_rc 0 "vline init" "$VL" init "$L"
jget "$L/bsp/Linux_for_Tegra/bootloader/vline.conf" "d['hw'] == '$L/hw' and d['step_seconds'] == 0" | grep -qx True \
  || fail "vline.conf does not name $L/hw"
expect_rc 1 "vline init twice" "$VL" init "$L"
expect_rc 1 "add without mkusb.py fails loudly" env VLINE_MKUSB=$T/absent.py "$VL" add "$L" 1-1 orin-nano-8gb
grep -q 'absent.py is missing' "$T/err" || fail "missing mkusb.py not named"
[ ! -e "$L/hw/1-1.json" ] || fail "a device was left behind by a failed add"
L0=$T/line0
"$VL" init "$L0" >/dev/null
VLINE_MKUSB=$T/mkusb-rec.py "$VL" add "$L0" 1-2.3 orin-nano-8gb >/dev/null
VLINE_MKUSB=$T/mkusb-rec.py "$VL" add "$L0" 2-1 agx-xavier >/dev/null
jget "$L0/usb.umockdev" "d" | grep -qxF "['1-2.3:0955:7523', '2-1:0955:7019', '3-1:0955:7020', '3-2:046d:c52b']" \
  || fail "mkusb.py SPECs: $(cat "$L0/usb.umockdev")"
pass "mkusb.py gets every device plus a non-recovery NVIDIA device and a non-NVIDIA device"
expect_rc 1 "an ECID with fuse-level nibbles set" "$VL" add "$L0" 1-3 orin-nano-8gb --ecid 80012344705df1172c0000000d020080
expect_rc 1 "a fuse the chip does not have" "$VL" add "$L0" 1-3 orin-nano-8gb --fuse Kek0=1

for d in 1-1:orin-nano-8gb 1-2:orin-nano-8gb 1-3:orin-nano-4gb 1-4:orin-nx-16gb 1-7:orin-nano-8gb \
         3-1:orin-nano-8gb 3-2:orin-nano-8gb 3-3:orin-nano-8gb 3-4:orin-nano-8gb 3-5:orin-nano-8gb \
         3-6:orin-nano-8gb 2-1:agx-xavier 2-2:agx-xavier; do
  "$VL" add "$L" "${d%%:*}" "${d##*:}" >/dev/null || fail "vline add $d"
done
"$VL" add "$L" 1-5 orin-nx-8gb --bsi-reserved >/dev/null || fail "vline add 1-5"
"$VL" add "$L" 3-7 orin-nano-8gb --fuse ReservedOdm0=0x5a >/dev/null || fail "vline add 3-7"
"$VL" add "$L" 1-6 agx-orin --ecid 00012344705df1172c0000000d020080 >/dev/null || fail "vline add 1-6"
[ "$(show 1-6 "d['ecid']")" = 00012344705df1172c0000000d020080 ] || fail "--ecid not kept"
[ "$(show 1-5 "d['fuses']['BootSecurityInfo']")" = 000001e0 ] || fail "--bsi-reserved is not 0x1e0"
[ "$(show 1-1 "d['ecid'][4:6] + d['pid'] + d['chip']")" = 237523t234 ] || fail "orin-nano-8gb identity"
[ "$(show 2-1 "d['ecid'][1:3] + d['ecid'][4:6] + d['pid']")" = 80197019 ] || fail "agx-xavier identity"
pass "devices: ECID chip digits, PIDs, factory BootSecurityInfo"

# ---------------------------------------------------------------- odmfuse.sh --noburn
LFT=$L/bsp/Linux_for_Tegra
NANO=(BOARDID=3767 BOARDSKU=0003 FAB=300 BOARDREV=L.3 CHIPREV=1 CHIP_SKU=00:00:00:D5 FUSELEVEL=fuselevel_production)
odm() { (cd "$LFT" && rm -f fuseblob.tbz2 && env "$@"); }
expect_rc 1 "odmfuse.sh without board_sku/board_FAB (the R36.2 quirk)" \
  odm "${NANO[@]}" ./odmfuse.sh --noburn -i 0x23 -X "$VEC/t234-prod-full.xml" --auth NS jetson-orin-nano-devkit
grep -qx 'Error: Unrecognized module SKU' "$T/out" || fail "quirk message"
[ ! -e "$LFT/fuseblob.tbz2" ] || fail "a package was written by a failed run"
expect_rc 1 "odmfuse.sh without the offline variables" \
  odm ./odmfuse.sh --noburn -i 0x23 -X "$VEC/t234-prod-full.xml" --auth NS jetson-orin-nano-devkit
grep -q 'missing: FAB, BOARDID' "$T/out" || fail "offline variables not named"
expect_rc 1 "odmfuse.sh with a plan tegraparser refuses" \
  odm board_sku=0003 board_FAB=300 "${NANO[@]}" ./odmfuse.sh --noburn -i 0x23 -X "$T/tp/oemk2.xml" --auth NS \
  jetson-orin-nano-devkit
grep -q 'Not a valid Fuse entry : OemK2' "$T/out" || fail "odmfuse hides the parser's error"
[ ! -e "$LFT/fuseblob.tbz2" ] || fail "a package was written for a refused plan"

mkpkg() {  # mkpkg NAME BOARD XML [odmfuse args…] (env in ENVV)
  local name=$1 board=$2 xml=$3; shift 3
  odm "${ENVV[@]}" ./odmfuse.sh --noburn -X "$xml" "$@" "$board" >"$T/odm.log" 2>&1 \
    || { cat "$T/odm.log" >&2; fail "odmfuse.sh for $name"; }
  cp "$LFT/fuseblob.tbz2" "$T/$name.tbz2"
  mkdir -p "$T/pk/$name" && tar xjf "$T/$name.tbz2" -C "$T/pk/$name"
}
ENVV=(board_sku=0003 board_FAB=300 "${NANO[@]}")
mkpkg full jetson-orin-nano-devkit "$VEC/t234-prod-full.xml" -i 0x23 --auth NS
pass "odmfuse.sh --noburn with board_sku/board_FAB set writes fuseblob.tbz2"
F=$T/pk/full/bootloader
tail -c "$(stat -c %s "$VEC/t234-prod-full.blob")" "$F/fskp_t234_updated.bin" | cmp -s - "$VEC/t234-prod-full.blob" \
  || fail "fskp_t234_updated.bin does not end with the plan's blob"
[ "$(stat -c %s "$F/fskp_t234_updated.bin")" -gt "$(stat -c %s "$VEC/t234-prod-full.blob")" ] || fail "no filler"
pass "T234 package: fskp_t234_updated.bin = filler + NVIDIA's blob for the plan"
grep -q 'mb2_bootloader fskp_t234_updated.bin;' "$F/fusecmd.sh" || fail "fusecmd.sh --bins lacks the FSKP image"
grep -qE "^eval '\./tegraflash\.py .*--cmd \"burnfuses fuse_[0-9a-f]{6}\.xml\".*'$" "$F/fusecmd.sh" || fail "eval line"
[ -x "$F/fusecmd.sh" ] && [ -x "$F/tegraflash.py" ] && [ -x "$F/tegrarcm_v2" ] && [ -f "$F/vline.conf" ] \
  || fail "package tools"
python3 - "$F" <<'EOF' || fail "a file fusecmd.sh names is missing from the package"
import os, re, shlex, sys
d = sys.argv[1]
line = [l for l in open(d + '/fusecmd.sh') if l.startswith('eval')][0]
w = shlex.split(re.fullmatch(r"eval '(.*)'\n", line).group(1))
files = [e.split()[1] for e in w[w.index('--bins') + 1].split(';')]
for o in ('--bl', '--applet', '--bldtb', '--cfg', '--sdram_config', '--dev_params'):
    files += w[w.index(o) + 1].split(',')
missing = [f for f in files if not os.path.isfile(os.path.join(d, f))]
sys.exit(1 if missing or len(files) < 20 else 0)
EOF
pass "fusecmd.sh: #!/bin/bash, PATH=.:, one eval line, every named file in the package"

sed 's/0x54534554/0x45535546/' "$VEC/t234-test-pkh-bsi.xml" >"$T/pkh-bsi.xml"
mkpkg test jetson-orin-nano-devkit "$T/pkh-bsi.xml" -i 0x23 --auth PKC -k "$VECTORS/pkc-hash/t234-rsa3k.pem" --test
tail -c 112 "$T/pk/test/bootloader/fskp_t234_updated.bin" | cmp -s - "$VEC/t234-test-pkh-bsi.blob" \
  || fail "--test package blob differs from NVIDIA's TEST vector"
pass "odmfuse.sh --test on T234: the TEST-magic blob, byte for byte"
mkpkg pkh jetson-orin-nano-devkit "$T/pkh-bsi.xml" -i 0x23 --auth PKC -k "$VECTORS/pkc-hash/t234-rsa3k.pem"
ENVV=(BOARDID=3701 BOARDSKU=0000 FAB=500 BOARDREV=D.0 CHIPREV=1 CHIP_SKU=00:00:00:D0)
mkpkg agx jetson-agx-orin-devkit "$T/pkh-bsi.xml" -i 0x23 --auth NS
pass "jetson-agx-orin-devkit needs no lower-case variables"
cat >"$T/t194.xml" <<'EOF'
<genericfuse MagicId="0x45535546" version="1.0.0">
  <fuse name="SecurityMode" size="4" value="0x1"/>
  <fuse name="PublicKeyHash" size="32" value="0x8c1f2e6b2a9d1d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4"/>
  <fuse name="BootSecurityInfo" size="4" value="0x1"/>
</genericfuse>
EOF
ENVV=(BOARDID=2888 BOARDSKU=0001 FAB=400 BOARDREV=H.0 CHIPREV=2)
mkpkg x194test jetson-agx-xavier-devkit "$T/t194.xml" -i 0x19 --auth PKC -k "$VECTORS/pkc-hash/t194-rsa3k.pem" --test
grep -qE -- '--cmd "burnfuses dummy fuse_[0-9a-f]{6}\.xml"' "$T/pk/x194test/bootloader/fusecmd.sh" || fail "T194 --test"
mkpkg x194 jetson-agx-xavier-devkit "$T/t194.xml" -i 0x19 --auth PKC -k "$VECTORS/pkc-hash/t194-rsa3k.pem"
grep -qE -- '--cmd "burnfuses fuse_[0-9a-f]{6}\.xml"' "$T/pk/x194/bootloader/fusecmd.sh" || fail "T194 burn cmd"
pass "T194 packages: burnfuses dummy <xml> with --test, burnfuses <xml> without"
expect_rc 1 "-i 0x19 for an Orin board" odm "${ENVV[@]}" ./odmfuse.sh --noburn -i 0x19 -X "$T/t194.xml" --auth NS \
  jetson-agx-orin-devkit

# Per-device working copies, the way fuseline makes them.
mkwc() { rm -rf "$T/wc/$1"; mkdir -p "$T/wc/$1"; tar xjf "$T/$2.tbz2" -C "$T/wc/$1"; }
tf() { run python3 "$T/fcrun.py" "$T/wc/$1" "$2" "${3:-}"; }   # tf WC INSTANCE [CMD]
tfcmd() { run python3 "$T/fcrun.py" "$T/wc/$1" "$2" "$3"; }
R='readfuses fuse_info.txt read.xml; reboot recovery'
readxml() {
  printf '<genericfuse MagicId="0x45535546" version="1.0.0">' >"$T/wc/$1/bootloader/read.xml"
  for n in "${@:2}"; do printf '<fuse name="%s"/>' "$n" >>"$T/wc/$1/bootloader/read.xml"; done
  printf '</genericfuse>\n' >>"$T/wc/$1/bootloader/read.xml"
}
leftover() { find "$T/wc/$1/bootloader" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9]+' | wc -l; }
T234R=(ArmJtagDisable OemK1 SecureBootKey PublicKeyHash ReservedOdm0 OdmId BootSecurityInfo SecurityMode)

# ---------------------------------------------------------------- no device
mkwc nodev full; readxml nodev "${T234R[@]}"
tfcmd nodev 1-9 "$R"
[ "$RC" -eq 0 ] || fail "readfuses with no device: exit $RC"
[ ! -e "$T/wc/nodev/bootloader/fuse_info.txt" ] || fail "readfuses with no device wrote a file"
grep -qF 'No device on specified bus-port[1-9]' "$T/out" || fail "no-device message"
pass "readfuses; reboot recovery with no device: exit 0 and no output file"
tf nodev 1-9
[ "$RC" -eq 1 ] || fail "burnfuses with no device: exit $RC"
grep -qF 'Return value 8' "$T/out" || fail "burnfuses with no device: no 'Return value 8'"
pass "burnfuses with no device: exit 1, Return value 8"
[ "$(leftover nodev)" -eq 0 ] || fail "tegraflash left its temporary directory after a normal exit"

# ---------------------------------------------------------------- read, burn, read back (1-1)
mkwc d11 full; readxml d11 "${T234R[@]}"
BR0=$(show 1-1 "d['br_cid']")
tfcmd d11 1-1 "$R"
[ "$RC" -eq 0 ] || fail "readfuses exit $RC"
grep -qi "BR_CID: 0x$BR0\$" "$T/out" || fail "tegraflash's log lacks the BR_CID line"
python3 - "$T/wc/d11/bootloader/fuse_info.txt" "${T234R[@]}" <<'EOF' || fail "blank read-back"
import sys
lines = open(sys.argv[1]).read().splitlines()
want = sys.argv[2:]
assert [l.split(': ')[0] for l in lines] == want, lines
sizes = {'OemK1': 32, 'SecureBootKey': 32, 'PublicKeyHash': 64, 'OdmId': 8}
for l in lines:
    n, v = l.split(': ')
    assert v == '0' * (2 * sizes.get(n, 4)), l
EOF
[ "$(show 1-1 "(d['reads'], d['applet_running'], d['uid_pending'])")" = "(1, False, True)" ] \
  || fail "after readfuses; reboot recovery: $(cat "$T/show.json")"
pass "readfuses: one 'Name: hex' line per fuse, 4-byte fuses as 8 digits; reboot leaves fresh recovery"
tf d11 1-1
[ "$RC" -eq 0 ] || fail "burn exit $RC"
grep -qi "BR_CID: 0x$BR0\$" "$T/out" || fail "no UID greeting after reboot recovery"
pass "the UID greeting is back after reboot recovery"
tfcmd d11 1-1 "$R"
python3 "$T/plan.py" "$VEC/t234-prod-full.xml" | diff - "$T/wc/d11/bootloader/fuse_info.txt" >&2 \
  || fail "read-back after the burn differs from the plan"
pass "burn then read-back: every fuse equals the plan"
[ "$(show 1-1 "(d['burns'], d['burns_effective'], d['br_cid'][:2], d['br_cid'][2:] == '$BR0'[2:])")" = \
  "(1, 1, '89', True)" ] || fail "BR_CID after the burn: $(cat "$T/show.json")"
pass "BR_CID fuse-level nibbles follow the fuses (E[0]=8 production, E[1]=BSI&0xf)"

# SecurityMode = 1 locks the device.
tf d11 1-1
[ "$RC" -eq 0 ] || fail "burn on a locked device: exit $RC"
mkwc d11b pkh; tf d11b 1-1
[ "$RC" -eq 0 ] || fail "burn on a locked device: exit $RC"
[ "$(show 1-1 "(d['burns'], d['burns_effective'])")" = "(3, 1)" ] || fail "a locked device changed"
grep -q 'production mode is set' "$T/show.json" || fail "no UART error on a locked device"
pass "SecurityMode locks: later burns change nothing, tools exit 0, the UART says why"

# ---------------------------------------------------------------- the applet trap (1-2)
mkwc d12 full; readxml d12 "${T234R[@]}"
tfcmd d12 1-2 "readfuses fuse_info.txt read.xml; burnfuses x.xml"
[ "$RC" -eq 0 ] || fail "readfuses; burnfuses: exit $RC"
grep -q 'Finish' "$T/out" || fail "no Finish"
[ "$(show 1-2 "(d['burns'], d['applet_running'], d['fuses']['SecurityMode'])")" = "(0, True, '00000000')" ] \
  || fail "applet trap: $(cat "$T/show.json")"
pass "readfuses without reboot recovery, then burnfuses: Finish, exit 0, nothing burned"
tf d12 1-2
[ "$RC" -eq 1 ] || fail "a fresh run against a device still running the applet: exit $RC"
pass "a later fresh burn against the running applet fails (exit 1)"

# ---------------------------------------------------------------- a stale rcm_state (1-3)
mkwc d13 full; printf '\005' >"$T/wc/d13/bootloader/rcm_state"
tf d13 1-3
[ "$RC" -eq 0 ] || fail "stale rcm_state: exit $RC"
grep -q 'BR_CID' "$T/out" && fail "stale rcm_state: the BootROM was contacted"
grep -q 'Finish' "$T/out" || fail "stale rcm_state: no Finish"
[ "$(show 1-3 "(d['burns'], d['fuses']['SecurityMode'])")" = "(0, '00000000')" ] || fail "stale rcm_state burned"
pass "a stale bootloader/rcm_state: burnfuses says Finish, exit 0, burns nothing"

# ---------------------------------------------------------------- a TEST package (1-4)
mkwc d14 test; tf d14 1-4
[ "$RC" -eq 0 ] || fail "TEST package: exit $RC"
[ "$(show 1-4 "(d['burns'], d['burns_effective'], d['fuses']['BootSecurityInfo'])")" = "(1, 0, '00000000')" ] \
  || fail "TEST package burned"
grep -q 'Dry run detected' "$T/show.json" || fail "TEST package: no Dry run on the UART"
pass "TEST package: the device processes the blob, says Dry run, burns nothing"

# ---------------------------------------------------------------- 1->0: a partial burn (1-5, BSI 0x1e0)
mkwc d15 full; tf d15 1-5
[ "$RC" -eq 0 ] || fail "1->0: exit $RC"
snap 1-5
python3 - "$T/show.json" "$VEC/t234-prod-full.xml" <<'EOF' || fail "1->0 partial burn: $(cat "$T/show.json")"
import json, sys, xml.etree.ElementTree as ET
d = json.load(open(sys.argv[1]))
before = True
for f in ET.parse(sys.argv[2]).getroot().iter('fuse'):
    n = f.get('name')
    if n == 'BootSecurityInfo':
        before = False
        assert d['fuses'][n] == '000001e0', d['fuses'][n]
        continue
    got = int(d['fuses'][n], 16)
    assert got == (int(f.get('value'), 16) if before else 0), n
assert any('Tried to set fuse bit 5 of BootSecurityInfo from 1 to 0' in l for l in d['uart']), d['uart']
EOF
pass "a 1->0 fuse stops the burn there: earlier fuses burned, later ones not, tools exit 0"

# ---------------------------------------------------------------- the UID greeting, once per recovery entry (1-7)
mkdir "$T/rcm"; cp "$BL_SRC/tegrarcm_v2" "$BL_SRC/vline_hw.py" "$L/bsp/Linux_for_Tegra/bootloader/vline.conf" "$T/rcm/"
rcm() { run bash -c "cd '$T/rcm' && ./tegrarcm_v2 $*"; }
rcm --instance 1-7 --chip 0x23 0 --ismb2applet
[ "$RC" -eq 19 ] || fail "--chip without rcm_state: exit $RC, expected 19"
rcm --instance 1-7 --new_session --chip 0x23 0 --uid
[ "$RC" -eq 0 ] && grep -q '^BR_CID: 0x[0-9A-F]\{32\}$' "$T/out" || fail "first UID read"
rcm --instance 1-7 --new_session --chip 0x23 0 --uid
[ "$RC" -ne 0 ] && ! grep -q BR_CID "$T/out" || fail "the UID was read twice in one recovery entry"
pass "tegrarcm_v2: exit 19 with no rcm_state; the BR_CID greeting once per recovery entry"
printf '\003' >"$T/rcm/rcm_state"
rcm --instance 1-7 --chip 0x23 0 --reboot recovery
[ "$RC" -eq 0 ] && [ "$(show 1-7 "d['uid_pending']")" = False ] || fail "--reboot with rcm_state <= 7 touched the device"
pass "rcm_state <= 7: --reboot exits 0 without touching the device"

# ---------------------------------------------------------------- T194 (2-1, 2-2)
mkwc x1 x194test; tf x1 2-1
[ "$RC" -eq 0 ] || fail "T194 dummy burn: exit $RC"
[ "$(show 2-1 "(d['burns'], d['burns_effective'], d['fuses']['SecurityMode'])")" = "(1, 0, '00000000')" ] \
  || fail "burnfuses dummy burned"
pass "T194 burnfuses dummy: processed, nothing burned"
mkwc x2 x194; readxml x2 SecurityMode PublicKeyHash BootSecurityInfo; tf x2 2-1
[ "$RC" -eq 0 ] || fail "T194 burn: exit $RC"
tfcmd x2 2-1 "$R"
python3 "$T/plan.py" "$T/t194.xml" | diff - "$T/wc/x2/bootloader/fuse_info.txt" >&2 || fail "T194 read-back"
[ "$(show 2-1 "d['br_cid'][0]")" = 9 ] || fail "T194 BR_CID E[0] = 8|BSI&7"
python3 - "$T/show.json" <<'EOF' || fail "T194 SecurityMode not last"
import json, sys
u = [l for l in json.load(open(sys.argv[1]))['uart'] if l.startswith('Index')]
assert u[-1].split()[3] == 'SecurityMode' and len(u) >= 3, u
EOF
pass "T194 burn: the XML's fuses, SecurityMode last though first in the XML; BR_CID E[0]=9"

# ---------------------------------------------------------------- faults (3-x)
"$VL" fault "$L" 3-1 vanish || fail "vline fault"
mkwc f1 full; readxml f1 "${T234R[@]}"
tf f1 3-1
[ "$RC" -eq 1 ] && grep -qF 'No device on specified bus-port[3-1]' "$T/out" || fail "vanish: burn exit $RC"
tfcmd f1 3-1 "$R"
[ "$RC" -eq 0 ] && [ ! -e "$T/wc/f1/bootloader/fuse_info.txt" ] || fail "vanish: read"
pass "fault vanish: burn exit 1 (No device), read exit 0 with no file"
"$VL" fault "$L" 3-1 clear; tfcmd f1 3-1 "$R"
[ -s "$T/wc/f1/bootloader/fuse_info.txt" ] || fail "fault clear: the device is still gone"
pass "fault clear: the device is back"

"$VL" fault "$L" 3-2 vanish-after-read
mkwc f2 full; readxml f2 "${T234R[@]}"
tfcmd f2 3-2 "$R"
[ "$(wc -l <"$T/wc/f2/bootloader/fuse_info.txt")" -eq 8 ] || fail "vanish-after-read: the read did not complete"
tf f2 3-2
[ "$RC" -eq 1 ] && grep -qF 'No device on specified bus-port[3-2]' "$T/out" || fail "vanish-after-read: burn"
[ "$(show 3-2 "(d['burns'], d['reads'])")" = "(0, 1)" ] || fail "vanish-after-read counters"
pass "fault vanish-after-read: the read completes, then the device is gone"

"$VL" fault "$L" 3-3 hang-read
mkwc f3 full; readxml f3 "${T234R[@]}"
run python3 "$T/limit.py" 8 python3 "$T/fcrun.py" "$T/wc/f3" 3-3 "$R"
[ "$RC" -eq 124 ] || fail "hang-read: the read did not hang (exit $RC)"
[ "$(cat "$T/wc/f3/bootloader/fuse_info.txt")" = "ArmJtagDisable: 00000000" ] || fail "hang-read: not a partial file"
[ "$(leftover f3)" -eq 1 ] || fail "a killed tegraflash should leave bootloader/<pid>/ behind"
pass "fault hang-read: a real hang; killed, it leaves a partial file and bootloader/<pid>/"
[ "$(show 3-3 "d['applet_running']")" = True ] || fail "hang-read: the applet should still run"
"$VL" fault "$L" 3-3 clear
[ "$(show 3-3 "(d['faults'], d['applet_running'], d['uid_pending'])")" = "([], False, True)" ] || fail "clear"
mkwc f3 full; readxml f3 "${T234R[@]}"; tfcmd f3 3-3 "$R"
[ "$(wc -l <"$T/wc/f3/bootloader/fuse_info.txt")" -eq 8 ] || fail "clear: the board does not read again"
pass "fault clear re-seats the board: fresh recovery mode, it reads again"

"$VL" fault "$L" 3-4 hang-burn
mkwc f4 full
run python3 "$T/limit.py" 8 python3 "$T/fcrun.py" "$T/wc/f4" 3-4
[ "$RC" -eq 124 ] || fail "hang-burn: the burn did not hang (exit $RC)"
[ "$(show 3-4 "(d['burns'], d['fuses']['SecurityMode'])")" = "(0, '00000000')" ] || fail "hang-burn burned"
pass "fault hang-burn: a real hang in the burn step"

"$VL" fault "$L" 3-5 nostick
mkwc f5 full; tf f5 3-5
[ "$RC" -eq 0 ] && grep -q 'Finish' "$T/out" || fail "nostick: exit $RC"
[ "$(show 3-5 "(d['burns'], d['burns_effective'], d['fuses']['PublicKeyHash'].strip('0'))")" = "(1, 0, '')" ] \
  || fail "nostick burned"
grep -q 'Start PublicKeyHash burn' "$T/show.json" || fail "nostick: the UART is silent"
"$VL" fault "$L" 3-5 clear; tf f5 3-5
[ "$(show 3-5 "(d['burns'], d['burns_effective'])")" = "(2, 1)" ] || fail "after clear the burn did not stick"
pass "fault nostick: says all the usual things, changes nothing; after clear it sticks"

"$VL" fault "$L" 3-6 exit-burn
mkwc f6 full; tf f6 3-6
[ "$RC" -eq 1 ] || fail "exit-burn: exit $RC"
[ "$(show 3-6 "(d['burns_effective'], d['fuses']['SecurityMode'])")" = "(1, '00000001')" ] || fail "exit-burn: not burned"
pass "fault exit-burn: tegraflash exits 1 although the fuses are burned"

"$VL" fault "$L" 3-7 swap-after-read
E7=$(show 3-7 "d['ecid']")
mkwc f7 full; readxml f7 ReservedOdm0
tfcmd f7 3-7 "$R"
[ "$(cat "$T/wc/f7/bootloader/fuse_info.txt")" = "ReservedOdm0: 0000005a" ] || fail "swap-after-read: first board's read"
[ "$(show 3-7 "(d['ecid'] != '$E7', d['fuses']['ReservedOdm0'], d['uid_pending'])")" = "(True, '00000000', True)" ] \
  || fail "swap-after-read: $(cat "$T/show.json")"
NEW=$(show 3-7 "d['br_cid']")
tf f7 3-7
grep -qi "BR_CID: 0x$NEW\$" "$T/out" || fail "swap-after-read: the burn run does not show the new board's BR_CID"
pass "fault swap-after-read: another board, another ECID, blank fuses, seen in the next BootROM step"

expect_rc 1 "an unknown fault kind" "$VL" fault "$L" 3-7 melt

# ---------------------------------------------------------------- step_seconds: the benchmark's fixed time per step
LS=$T/slow
"$VL" init "$LS" --step-seconds 1 >/dev/null
"$VL" add "$LS" 1-1 orin-nano-8gb >/dev/null
(cd "$LFT" && env board_sku=0003 board_FAB=300 "${NANO[@]}" ./odmfuse.sh --noburn -i 0x23 -X "$VEC/t234-prod-full.xml" \
  --auth NS jetson-orin-nano-devkit >/dev/null) || fail "odmfuse.sh"
mkdir -p "$T/wc/slow" && tar xjf "$LFT/fuseblob.tbz2" -C "$T/wc/slow"
cp "$LS/bsp/Linux_for_Tegra/bootloader/vline.conf" "$T/wc/slow/bootloader/vline.conf"
s0=$(date +%s.%N); tf slow 1-1; s1=$(date +%s.%N)
[ "$RC" -eq 0 ] && [ "$("$VL" show "$LS" 1-1 | jget /dev/stdin "d['burns_effective']")" = 1 ] || fail "slow line burn"
python3 -c "import sys; sys.exit(0 if 2.0 <= $s1 - $s0 < 20 else 1)" || fail "2 device steps at 1 s took $(python3 -c "print($s1 - $s0)") s"
pass "step_seconds: every device step of a burn takes that long (BootROM, FSKP)"

# ---------------------------------------------------------------- the USB side, when mkusb.py is there
if [ -f "$VLDIR/mkusb.py" ] && command -v umockdev-run >/dev/null; then
  expect_rc 0 "vline run" "$VL" run "$L" -- sh -c \
    'for d in /sys/bus/usb/devices/*; do [ -f $d/idVendor ] && echo "${d##*/} $(cat $d/idVendor):$(cat $d/idProduct)"; done; true'
  for want in "1-1 0955:7523" "1-4 0955:7323" "2-1 0955:7019" "1-6 0955:7023" "4-1 0955:7020" "4-2 046d:c52b"; do
    grep -qx "$want" "$T/out" || fail "vline run: $want not in the umockdev testbed"
  done
  pass "vline run: every device, the non-recovery NVIDIA device and the foreign device are on the testbed"
else
  echo "# mkusb.py or umockdev-run absent: vline run not exercised here (mkusb's own tests cover the USB side)"
fi

done_testing
