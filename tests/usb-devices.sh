# usb-devices.sh — `fuseline devices` against virtual recovery-mode Jetsons:
# tests/virtual-line/mkusb.py describes them, umockdev shows them to the
# real libusb code. The expected instances, chips and modules are written
# out here from shared/reference/jetson-fuses.md §8 (PIDs) and §6 (instance =
# <busnum>-<devpath>), and the instances are cross-checked against nvmfuse.sh's
# way of finding them (a walk of /sys/bus/usb/devices), which shares no code
# with libusb.
source "$SRCDIR/tests/lib.sh"

# ---- the udev rule grants exactly the provisionable recovery-mode ids (§8) ----
rules="$SRCDIR/factory-scripts/99-fuseline-jetson-recovery.rules"
got=$(sed -n 's/^ATTR{idProduct}=="\([0-9a-f]\{4\}\)", MODE="0660", GROUP="fuseline"$/\1/p' "$rules" | sort | tr '\n' ' ')
[ "$got" = "7019 7023 7223 7323 7423 7523 7623 7819 7919 7e19 " ] || fail "udev rule ids: $got"
# Nothing but comments, the guards that skip everything not 0955/usb_device, the grants and the label.
odd=$(grep -vE '^(#.*)?$' "$rules" |
  grep -vE '^ATTR\{idProduct\}=="[0-9a-f]{4}", MODE="0660", GROUP="fuseline"$' |
  grep -vE '^(ACTION|SUBSYSTEM|ENV\{DEVTYPE\}|ATTR\{idVendor\})(==|!=)"[^"]*", GOTO="fuseline_jetson_end"$' |
  grep -vxF 'LABEL="fuseline_jetson_end"' || true)
[ -z "$odd" ] || fail "unexpected udev rule line: $odd"
grep -qxF 'ATTR{idVendor}!="0955", GOTO="fuseline_jetson_end"' "$rules" || fail "udev rule not limited to vendor 0955"
pass "udev rule: rw for group fuseline on the ten T194/T234 recovery ids, nothing else"

command -v umockdev-run >/dev/null || { echo "umockdev-run not installed (package umockdev)"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
# umockdev's preload library cannot come after the ASan runtime (DESIGN.md).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
MKUSB="$SRCDIR/tests/virtual-line/mkusb.py"
unset FUSELINE_PORTS

# The line: three Orins behind a hub (one behind a second hub), a Xavier on a
# root port, a Xavier NX on a second bus; an NVIDIA device not in recovery
# (7020), a keyboard-like non-NVIDIA device behind the same hub, and a TX2
# (T186) in recovery mode, which fuseline does not provision.
"$MKUSB" line.umockdev \
  1-2.1:0955:7523 1-2.2:0955:7323 1-2.3.4:0955:7023 1-3:0955:7019 2-1:0955:7e19 \
  1-4:0955:7020 1-2.3.1:046d:c52b 1-5:0955:7c18 || fail "mkusb.py"
pass "mkusb.py wrote the description"

vrun() { umockdev-run -d "$1" -- "${@:2}"; }

# ---- cross-check the description the nvmfuse.sh way -------------------------
run vrun line.umockdev sh -c 'for d in /sys/bus/usb/devices/*; do
  [ "$(cat "$d/idVendor")" = 0955 ] && echo "$(cat "$d/busnum")-$(cat "$d/devpath") $(cat "$d/idProduct")"; done | sort'
[ "$RC" -eq 0 ] || fail "sysfs walk"
cat >want-sysfs <<'EOF'
1-2.1 7523
1-2.2 7323
1-2.3.4 7023
1-3 7019
1-4 7020
1-5 7c18
2-1 7e19
EOF
diff -u want-sysfs "$T/out" || fail "sysfs of the virtual line differs from what was described"
pass "sysfs busnum-devpath matches the described instances"

# ---- the table ----------------------------------------------------------------
expect_rc 0 "devices lists the line" vrun line.umockdev "$FUSELINE" devices
cat >want <<'EOF'
INSTANCE         CHIP  MODULE                 BUS/DEV
1-2.1            t234  Orin Nano 8GB          001/003
1-2.2            t234  Orin NX 16GB           001/004
1-2.3.4          t234  AGX Orin 64GB          001/007
1-3              t194  AGX Xavier             001/008
2-1              t194  Xavier NX              002/002
EOF
diff -u want "$T/out" || fail "devices table"
pass "exact instances, chips, modules and bus/device numbers; 7020, 046d and the TX2 not listed"
grep -qxF 'fuseline: warning: 1-5: Jetson TX2 or TX2 NX (T186) in recovery mode (0955:7c18): fuseline provisions T194 and T234 modules only; ignored' "$T/err" ||
  fail "no warning naming the TX2"
[ "$(grep -c . "$T/err")" -eq 1 ] || fail "stderr should hold exactly the TX2 warning"
pass "the TX2 is named in one warning"
# The bus/device numbers are libusb's: they match the description's devnum.
run vrun line.umockdev sh -c 'for i in 1-2.1 1-2.3.4 2-1; do echo "$i $(cat /sys/bus/usb/devices/$i/busnum)/$(cat /sys/bus/usb/devices/$i/devnum)"; done'
printf '1-2.1 1/3\n1-2.3.4 1/7\n2-1 2/2\n' | diff -u - "$T/out" || fail "bus/devnum cross-check"
pass "bus/device numbers agree with sysfs"

# ---- JSON ----------------------------------------------------------------------
expect_rc 0 "devices --json" vrun line.umockdev "$FUSELINE" devices --json
python3 - "$T/out" <<'EOF' || fail "devices --json content"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
devs, summary = lines[:-1], lines[-1]
want = [
    {"instance": "1-2.1", "chip": "t234", "module": "Orin Nano 8GB", "vid": "0955", "pid": "7523", "bus": 1, "address": 3},
    {"instance": "1-2.2", "chip": "t234", "module": "Orin NX 16GB", "vid": "0955", "pid": "7323", "bus": 1, "address": 4},
    {"instance": "1-2.3.4", "chip": "t234", "module": "AGX Orin 64GB", "vid": "0955", "pid": "7023", "bus": 1, "address": 7},
    {"instance": "1-3", "chip": "t194", "module": "AGX Xavier", "vid": "0955", "pid": "7019", "bus": 1, "address": 8},
    {"instance": "2-1", "chip": "t194", "module": "Xavier NX", "vid": "0955", "pid": "7e19", "bus": 2, "address": 2},
]
assert devs == want, devs
assert summary == {"command": "devices", "ok": True, "count": 5, "exit_code": 0}, summary
EOF
pass "--json: one object per device, then the summary"

# ---- the allow-list -------------------------------------------------------------
instances() { awk 'NR > 1 { print $1 }' "$T/out" | tr '\n' ' '; }
expect_rc 0 "--port twice" vrun line.umockdev "$FUSELINE" devices --port 1-2.2 --port 2-1
[ "$(instances)" = "1-2.2 2-1 " ] || fail "--port 1-2.2 --port 2-1 gave: $(instances)"
[ ! -s "$T/err" ] || fail "a TX2 on another station's port was warned about: $(cat "$T/err")"
pass "--port keeps exactly the listed ports (no warning about the TX2 elsewhere)"
expect_rc 0 "--port list" vrun line.umockdev "$FUSELINE" devices --port '1-2.3.4, 1-3'
[ "$(instances)" = "1-2.3.4 1-3 " ] || fail "--port list gave: $(instances)"
pass "--port takes a comma-separated list"
FUSELINE_PORTS='1-2.1 1-2.3.4' expect_rc 0 "FUSELINE_PORTS" vrun line.umockdev "$FUSELINE" devices
[ "$(instances)" = "1-2.1 1-2.3.4 " ] || fail "FUSELINE_PORTS gave: $(instances)"
pass "FUSELINE_PORTS restricts when no --port is given"
FUSELINE_PORTS='1-2.1' expect_rc 0 "--port over FUSELINE_PORTS" vrun line.umockdev "$FUSELINE" devices --port 1-3
[ "$(instances)" = "1-3 " ] || fail "--port should override FUSELINE_PORTS, gave: $(instances)"
pass "--port overrides FUSELINE_PORTS"
FUSELINE_PORTS='' expect_rc 0 "empty FUSELINE_PORTS" vrun line.umockdev "$FUSELINE" devices
[ "$(instances)" = "1-2.1 1-2.2 1-2.3.4 1-3 2-1 " ] || fail "empty FUSELINE_PORTS gave: $(instances)"
pass "an empty FUSELINE_PORTS counts as unset"
# A hub's instance does not allow the boards behind it; a non-recovery
# device's port yields nothing either.
expect_rc 0 "--port of a hub" vrun line.umockdev "$FUSELINE" devices --port 1-2 --port 1-4
[ "$(cat "$T/out")" = "no recovery-mode Jetson found on the 2 allowed port(s)" ] || fail "hub port: $(cat "$T/out")"
pass "a hub's instance allows nothing behind it"
expect_rc 0 "--port --json" vrun line.umockdev "$FUSELINE" devices --json --port 1-3
python3 - "$T/out" <<'EOF' || fail "--port --json"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [d["instance"] for d in lines[:-1]] == ["1-3"], lines
assert lines[-1]["count"] == 1 and lines[-1]["ports"] == ["1-3"], lines[-1]
EOF
pass "--json summary names the allowed ports"

expect_rc 2 "malformed --port" vrun line.umockdev "$FUSELINE" devices --port 1-2.02
expect_err "'1-2.02'"
[ ! -s "$T/out" ] || fail "a refused --port printed a list"
expect_rc 2 "duplicate --port" "$FUSELINE" devices --port 1-2.1 --port 1-2.1
expect_err "1-2.1 is listed twice"
FUSELINE_PORTS='1-2.1,x' expect_rc 2 "malformed FUSELINE_PORTS" "$FUSELINE" devices
expect_err "FUSELINE_PORTS"
expect_err "'x'"
expect_rc 2 "--wait not a number" "$FUSELINE" devices --wait 5s
expect_err "--wait: '5s'"
expect_rc 2 "--wait 0" "$FUSELINE" devices --wait 0
expect_rc 2 "a stray argument" "$FUSELINE" devices 1-2.1
expect_rc 2 "--json usage error" "$FUSELINE" devices --json --wait -1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and d["exit_code"] == 2, d' \
  "$T/out" || fail "--json usage error object"
pass "--json usage errors are one JSON object"

# ---- nothing in recovery mode ------------------------------------------------
"$MKUSB" idle.umockdev 1-4:0955:7020 1-2.3:046d:c52b || fail "mkusb idle"
expect_rc 0 "no Jetson is not an error" vrun idle.umockdev "$FUSELINE" devices
[ "$(cat "$T/out")" = "no recovery-mode Jetson found" ] || fail "empty text: $(cat "$T/out")"
pass "text says no recovery-mode Jetson found"
expect_rc 0 "no Jetson --json" vrun idle.umockdev "$FUSELINE" devices --json
python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); assert len(l)==1; d=json.loads(l[0]); assert d=={"command":"devices","ok":True,"count":0,"exit_code":0}, d' \
  "$T/out" || fail "empty --json"
pass "--json: count 0"

# ---- --wait ------------------------------------------------------------------
expect_rc 4 "--wait times out" vrun line.umockdev "$FUSELINE" devices --wait 1
expect_err "no new recovery-mode Jetson appeared within 1 s"
[ ! -s "$T/out" ] || fail "a timed-out wait printed devices: $(cat "$T/out")"
expect_rc 4 "--wait --json times out" vrun line.umockdev "$FUSELINE" devices --wait 1 --json
python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); assert len(l)==1; d=json.loads(l[0]); assert d["ok"] is False and d["exit_code"]==4 and "within 1 s" in d["error"], d' \
  "$T/out" || fail "--wait timeout --json"
pass "--wait timeout is one JSON object with exit_code 4"

if [ -z "${USB_HOTPLUG:-}" ]; then
  echo "# libumockdev-dev not found at build time: the plug-in tests need it"; done_testing; exit 77
fi
# A board enters recovery mode on a free port of the hub at 1-2.3 while
# fuseline waits. Device address 60: not used on bus 1.
"$MKUSB" --no-parents new.umockdev 1-2.3.2:0955:7623:60 || fail "mkusb --no-parents"
start=$(date +%s)
expect_rc 0 "--wait returns when a board appears (hot-plug)" \
  "$USB_HOTPLUG" line.umockdev new.umockdev "waiting up to" 1000 -- "$FUSELINE" devices --wait 30
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -lt 20 ] || fail "--wait took ${elapsed}s: it did not return when the board appeared"
printf 'INSTANCE         CHIP  MODULE                 BUS/DEV\n1-2.3.2          t234  Orin Nano 4GB          001/060\n' |
  diff -u - "$T/out" || fail "--wait printed something else than the new board"
pass "--wait prints only the new board (${elapsed}s)"

expect_rc 0 "--wait --json on an allowed port" \
  "$USB_HOTPLUG" line.umockdev new.umockdev "json-wait-ready" 1500 -- \
  sh -c 'echo json-wait-ready >&2; exec "$0" devices --wait 30 --json --port 1-2.1,1-2.3.2' "$FUSELINE"
python3 - "$T/out" <<'EOF' || fail "--wait --json"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0] == {"instance": "1-2.3.2", "chip": "t234", "module": "Orin Nano 4GB", "vid": "0955", "pid": "7623", "bus": 1, "address": 60}, lines
assert lines[1] == {"command": "devices", "ok": True, "count": 1, "ports": ["1-2.1", "1-2.3.2"], "waited": True, "exit_code": 0}, lines
assert len(lines) == 2
EOF
pass "--wait --json: the new board, then the summary"

expect_rc 4 "a board on a port not allowed does not end the wait" \
  "$USB_HOTPLUG" line.umockdev new.umockdev "waiting up to" 300 -- "$FUSELINE" devices --wait 3 --port 1-2.3.1
expect_err "no new recovery-mode Jetson appeared within 3 s on the 1 allowed port(s) (1-2.3.1)"

# A device that is not a recovery-mode Jetson does not end the wait either.
"$MKUSB" --no-parents other.umockdev 1-2.3.2:0955:7020:61 || fail "mkusb other"
expect_rc 4 "a non-recovery NVIDIA device does not end the wait" \
  "$USB_HOTPLUG" line.umockdev other.umockdev "waiting up to" 300 -- "$FUSELINE" devices --wait 3

# The polling path (libusb here has hot-plug, so call it directly).
expect_rc 0 "polling sees the new board" \
  "$USB_HOTPLUG" line.umockdev new.umockdev "polling" 1000 -- "$RCM_WAIT_POLL" 30
[ "$(cat "$T/out")" = "1-2.3.2 t234 Orin Nano 4GB" ] || fail "polling printed: $(cat "$T/out")"
pass "polling path finds the new board"
expect_rc 4 "polling: a board on a port not allowed" \
  "$USB_HOTPLUG" line.umockdev new.umockdev "polling" 300 -- "$RCM_WAIT_POLL" 2 1-2.1
expect_rc 4 "polling times out with nothing new" \
  "$USB_HOTPLUG" line.umockdev other.umockdev "polling" 300 -- "$RCM_WAIT_POLL" 2

# ---- mkusb.py refuses what a bus cannot be ------------------------------------
for bad in 1-02:0955:7023 1-2:955:7023 1-2:0955:7023:128 0-1:0955:7023 1-2.3.4.5.6.7.8.9:0955:7023; do
  expect_rc 2 "mkusb.py refuses $bad" "$MKUSB" bad.umockdev "$bad"
  [ ! -e bad.umockdev ] || fail "mkusb.py wrote a file for $bad"
done
expect_rc 2 "mkusb.py: a device with a device behind it" "$MKUSB" bad.umockdev 1-2:0955:7023 1-2.1:0955:7523
expect_rc 2 "mkusb.py: the same instance twice" "$MKUSB" bad.umockdev 1-2:0955:7023 1-2:0955:7523
expect_rc 2 "mkusb.py --no-parents without DEVNUM" "$MKUSB" --no-parents bad.umockdev 1-2:0955:7023
[ ! -e bad.umockdev ] || fail "mkusb.py wrote a file on error"

done_testing
