#!/usr/bin/env bash
# lab-rehearsal.sh — the main job on the embedded defaults, with test keys
# and no hardware: a SoftHSM2 lab token, the SQLite ledger, the virtual line,
# and every step of a product and a station. Builds fuseline first if needed.
#
#   factory-scripts/lab-rehearsal.sh [--fresh] [WORKDIR]      (default ./rehearsal)
#   FUSELINE_PREFIX=/usr/local factory-scripts/lab-rehearsal.sh [--fresh] [WORKDIR]
#
# The first run creates WORKDIR: lab keys (PKC RSA-3K, SBK, OEM_K1/K2, UEFI
# PK/KEK/db, identity CA), the fuse plan and package, four virtual Orin Nano
# modules (one of them pulled out mid-burn), and `fuseline station` in commit
# mode over them; then each device is read back and its certificate verified,
# `verify ledger`, `verify uefi`, and a short report. A later run finds the
# rehearsal in WORKDIR and runs the station again over the same boards: they
# are already provisioned, nothing is burned, the ledger stays valid.
# --fresh (or removing WORKDIR) starts over; WORKDIR only ever holds lab keys.
# Ends with PASS (exit 0) or FAIL at step N (that step's exit code).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fresh=0
if [ "${1:-}" = --fresh ]; then fresh=1; shift; fi
work=${1:-$PWD/rehearsal}
case $work in /*) ;; *) work=$PWD/$work ;; esac

# FUSELINE_PREFIX=DIR rehearses an installed fuseline instead (DIR/bin/fuseline,
# its fuseline-lab-token and the templates it finds itself; nothing is built).
# $FUSELINE and $LAB_INIT (set by the test suite) name an existing build's
# fuseline and fuseline-lab-init (nothing is built either).
if [ -n "${FUSELINE_PREFIX:-}" ]; then
  F=$FUSELINE_PREFIX/bin/fuseline
  [ -x "$F" ] || { echo "lab-rehearsal.sh: $F: no installed fuseline there" >&2; exit 2; }
  lab_token=("$FUSELINE_PREFIX/bin/fuseline-lab-token")
  unset FUSELINE_TEMPLATES
  templates=$FUSELINE_PREFIX/share/fuseline/templates
else
  if [ -z "${FUSELINE:-}" ]; then
    if [ ! -f "$root/build/build.ninja" ]; then
      meson setup "$root/build" "$root" >/dev/null
    fi
    meson compile -C "$root/build" >/dev/null
  fi
  F=${FUSELINE:-$root/build/cmd/fuseline}
  lab_token=(env "LAB_INIT=${LAB_INIT:-$root/build/hsm/fuseline-lab-init}" "$root/hsm/lab-token.sh")
  export FUSELINE_TEMPLATES=$root/templates
  templates=$root/templates
fi
V=$root/tests/virtual-line/vline

again=0
if [ "$fresh" = 0 ] && [ -f "$work/station.conf" ] && [ -f "$work/fuseline.db" ]; then
  again=1
else
  rm -rf "$work"
  mkdir -p "$work"
fi
cd "$work"
eval "$("${lab_token[@]}" "$work/lab")"
export FUSELINE_DB=$work/fuseline.db
started=$(date +%s)

n=0
step() {
  n=$((n + 1))
  printf '\n== step %d: %s\n' "$n" "$1"
  shift
  printf '   $'; printf ' %q' "$@"; printf '\n'   # copy-pasteable, quoting kept
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\nFAIL at step %d (exit %d)\n' "$n" "$rc"
    exit "$rc"
  fi
}
# step_rc "CODES" WHAT CMD…: a step whose exit status may be any of CODES.
step_rc() {
  local want=$1 rc=0
  n=$((n + 1))
  printf '\n== step %d: %s (exit %s expected)\n' "$n" "$2" "${want// / or }"
  shift 2
  printf '   $'; printf ' %q' "$@"; printf '\n'
  "$@" || rc=$?
  if ! grep -qw -- "$rc" <<< "$want"; then
    printf '\nFAIL at step %d (exit %d)\n' "$n" "$rc"
    exit $((rc ? rc : 1))
  fi
}

if [ "$again" = 0 ]; then
step "secure-boot keys for an Orin product, inside the lab token" \
  "$F" keygen --chip t234 --pkc rsa3k --pkc-count 3 --sbk --oem-k1 --oem-k2 --name orin-lab --lab --out keyset.json
step "prove the keyset matches the token" "$F" verify keyset keyset.json
step "fuse XML for an Orin NX 16GB, dry-run form (TEST MagicId: the device burns nothing)" \
  "$F" fuse-xml --keyset keyset.json --template orin-nx-16gb --out fuse-test.xml --test
step "check the fuse XML against the t234 fuse map, burn order and the keyset" \
  "$F" fuse-xml --check fuse-test.xml --chip t234 --keyset keyset.json
# What a factory-fresh Orin NX reports through tegraflash's readfuses: every
# planned fuse blank, except reserved BootSecurityInfo bits set at the factory.
sed -n 's/.*<fuse name="\([A-Za-z0-9]*\)" size="\([0-9]*\)".*/\1 \2/p' fuse-test.xml |
  while read -r name size; do
    if [ "$name" = BootSecurityInfo ]; then echo "BootSecurityInfo: 000001e0"
    else printf '%s: %s\n' "$name" "$(printf '%*s' $((2 * size)) '' | tr ' ' 0)"; fi
  done > readback-blank.txt
step "diff the plan against a blank device (BootSecurityInfo factory bits 0x1e0 are kept)" \
  "$F" fuse-xml --diff fuse-test.xml --readback readback-blank.txt --chip t234
head -c 1048576 /dev/urandom > mb2-image.bin
step "sign a boot image with pkc0 in the token (RSA-PSS, tegra byte order)" \
  "$F" sign --keyset keyset.json --role pkc0 --in mb2-image.bin --format tegra --out mb2-image.sig
step "verify the image signature" \
  "$F" verify signature --keyset keyset.json --role pkc0 --in mb2-image.bin --sig mb2-image.sig --format tegra
step "UEFI Secure Boot keys in the token: PK/KEK/db certificates, ESLs, .auth, Jetson uefi_keys.conf and DTS" \
  "$F" keygen --uefi --keyset keyset.json --out-dir uefi_keys --subject "/O=Fuseline Lab" --name orin-lab
step "check the UEFI bundle (ESLs, .auth signatures, conf, DTS)" "$F" verify uefi uefi_keys
step "device identity CA in the token (P-384, non-extractable) and its self-signed certificate keyset-identity-ca.crt" \
  "$F" keygen --identity-ca --keyset keyset.json --subject "/O=Acme Robotics (lab)/CN=Acme Lab Device CA"
step "enrol a made-up device: IEEE 802.1AR IDevID bound to its ECID, key pair made in the token, recorded in the ledger" \
  "$F" enroll --keyset keyset.json --ecid 0x80012344705DF1172C0000000D020080 --serial LAB-0001 \
  --product "Acme Orin NX" --generate-key p256 --out device.pem
step "enrol it again: same key, so the same certificate comes back (already enrolled)" \
  "$F" enroll --keyset keyset.json --ecid 80012344705df1172c0000000d020080 --serial LAB-0001 \
  --product "Acme Orin NX" --generate-key p256 --out device-again.pem
step "verify the device certificate: chains to the identity CA, IDevID profile, current in the ledger" \
  "$F" verify cert device.pem --keyset keyset.json
step "prove the ledger: hash chain intact, device and certificate rows match their events" \
  "$F" verify ledger
step "everything that happened to the device, as the MES would read it" \
  "$F" ledger show 80012344705df1172c0000000d020080
step "EKB payload keys in the token (kernel/UEFI payload, disk, UEFI-variable authentication)" \
  "$F" keygen --keyset keyset.json --ekb-payload --ekb-disk --ekb-auth
step "EKB 2.0 image rooted in OEM_K1, key chain computed in the token, recorded in the ledger" \
  "$F" ekb --keyset keyset.json --format 2.0 --root oem-k1 --out eks_t234.img --db "$FUSELINE_DB"
step "decrypt and check the EKB against the keyset" "$F" verify ekb eks_t234.img --keyset keyset.json
step "the device's unique LUKS passphrase from its BR_CID, into a 0600 file (never argv)" \
  "$F" luks-passphrase --keyset keyset.json --ecid "BR_CID: 0x80012344705DF1172C0000000D020080" \
  --context 4c7b1e2a-93d5-4f0e-b6a8-2d1c0e9f7a35 --out luks-passphrase.txt
step "fTPM EK CA in the token (P-384) and its certificate keyset-ftpm-ek-ca.crt" \
  "$F" keygen --ftpm-ek-ca --keyset keyset.json --subject "/O=Acme Robotics (lab)/CN=Acme Lab fTPM EK CA"
step "fTPM for one device: KDK0 in the token, Silicon-ID public key, per-device fuse plan (OdmId, OdmInfo, Kdk0)" \
  "$F" ftpm-device --keyset keyset.json --oem-id 0x1234 --sn 0x00c0ffee00000001 --fuse-out fuse-ftpm-device.xml \
  --db "$FUSELINE_DB"
step "check the per-device fuse plan" "$F" fuse-xml --check fuse-ftpm-device.xml --chip t234
step "fTPM EK certificates and the device's EKB: EPS seed from the token's RNG (only ever inside the EKB), both EKs derived, certified by the EK CA, EKB 2.0 with tags 91-94" \
  "$F" ftpm-ek-cert --keyset keyset.json --sn 123400c0ffee00000001 --new-eps-seed \
  --out-rsa ek_cert_rsa.der --out-ec ek_cert_ec.der \
  --ekb-out eks_123400c0ffee00000001.img --format 2.0 --root oem-k1 --db "$FUSELINE_DB"
step "check the device's EKB: its SN, EK certificates chained to the EK CA, EK keys equal to those KDK0 and the seed give" \
  "$F" verify ekb eks_123400c0ffee00000001.img --keyset keyset.json --sn 123400c0ffee00000001

# The line, on the virtual line (tests/virtual-line): four factory-fresh Orin
# Nano 8GB in recovery mode behind a hub (umockdev makes them real USB devices
# for libusb) and a virtual BSP whose tools behave like NVIDIA's, traps included.
"$V" init "$work/line" >/dev/null
for i in 1 2 3 4; do "$V" add "$work/line" "1-2.$i" orin-nano-8gb >/dev/null; done
BSP=$work/line/bsp/Linux_for_Tegra
step "the recovery-mode Jetsons this station sees (virtual line)" "$V" run "$work/line" -- "$F" devices
step "the production fuse plan for an Orin Nano 8GB (PKC hash, SBK, JTAG off, SecurityMode last)" \
  "$F" fuse-xml --keyset keyset.json --template orin-nano-8gb --out fuse.xml
step "the offline fuse package: the BSP's odmfuse.sh --noburn, then checked to burn exactly the plan" \
  "$F" fuse-xml --package fuseblob.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan fuse.xml
step "the dry-run package (TEST MagicId: the devices process every fuse and burn none)" \
  "$F" fuse-xml --package fuseblob-test.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan fuse.xml --test
step "read every device and show what a burn would change (nothing is burned)" \
  "$V" run "$work/line" -- "$F" burn --package fuseblob.tbz2 --plan fuse.xml --keyset keyset.json --all \
  --log-dir logs
step "dry run on all four at once; the read-back proves nothing changed" \
  "$V" run "$work/line" -- "$F" burn --package fuseblob-test.tbz2 --plan fuse.xml --keyset keyset.json --all \
  --jobs 4 --dry-run --log-dir logs
# The station's settings (factory-scripts/station.conf.example documents each key).
cat > station.conf <<EOC
# The lab rehearsal's station (see factory-scripts/station.conf.example).
template = $templates/orin-nano-8gb.conf
keyset = keyset.json
package = fuseblob.tbz2
plan = fuse.xml
ports = 1-2.1, 1-2.2, 1-2.3, 1-2.4
station = lab-rehearsal
ledger = fuseline.db
log-dir = logs
cert-dir = certs
mode = commit
# unattended rehearsal: the MES authorises; a real station uses confirm = typed
confirm = yes
allow-lab-keys = yes
# the virtual BSP has no CSR source: a P-256 key made in the token per device
enroll = token-key
product = Acme Orin Nano
serial-prefix = LAB-
EOC
# The fault: the board in socket 1-2.3 is pulled out right after its fuses
# were read, while it is being burned.
"$V" fault "$work/line" 1-2.3 vanish-after-read
printf '\n(the board in socket 1-2.3 will be pulled out during its burn)\n'
fi

ports="1-2.1 1-2.2 1-2.3 1-2.4"
# The station exits 1 when a board failed (the pulled one, on purpose).
step_rc "0 1" "the station, in commit mode, over the four sockets (its screen, one frame per board)" \
  "$V" run "$work/line" -- "$F" station --config station.conf --boards 4
verdicts=$("$F" ledger export --since "@$started" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["command"] == "station":
        d = e["details"]
        print("%s %s %s %s" % (d["instance"], e["ecid"] or "-", e["outcome"], d["reason"]))')
for p in $ports; do
  line=$(grep "^$p " <<< "$verdicts" || true)
  [ -n "$line" ] || { printf '\nFAIL: the station left no record for %s\n' "$p"; exit 1; }
  read -r _ ecid outcome _ <<< "$line"
  if [ "$outcome" = fail ]; then
    if [ "$ecid" = - ]; then
      printf '\n(the board in %s gave no ECID: nothing was done to it)\n' "$p"
    else
      step "what the ledger holds for the failed board in $p" "$F" ledger show "$ecid"
    fi
    continue
  fi
  step "read $p back and compare it with the plan" \
    "$V" run "$work/line" -- "$F" verify fuses --device "$p" --plan fuse.xml --package fuseblob.tbz2 \
    --keyset keyset.json --log-dir logs
  step "verify $p's certificate: chains to the identity CA, IDevID profile, current in the ledger" \
    "$F" verify cert "certs/$ecid.pem" --keyset keyset.json
done
step "prove the ledger: every burn, enrolment and station verdict on the hash chain" "$F" verify ledger
step "check the UEFI bundle again" "$F" verify uefi uefi_keys

printf '\n== report (%s run)\n' "$([ "$again" = 1 ] && echo "repeat" || echo "first")"
printf '%-7s %-32s %-19s %s\n' SOCKET ECID VERDICT REASON
while read -r p ecid outcome reason; do
  printf '%-7s %-32s %-19s %s\n' "$p" "$ecid" "$(tr a-z A-Z <<< "$outcome")" "$reason"
done <<< "$verdicts"
burned=$(for p in $ports; do "$V" show "$work/line" "$p"; done | python3 -c '
import json, sys
dec = json.JSONDecoder(); s = sys.stdin.read(); i = 0; n = 0
while i < len(s):
    if s[i].isspace():
        i += 1
        continue
    o, i = dec.raw_decode(s, i)
    n += o["burns_effective"]
print(n)')
printf '\nburns that changed fuses, all runs together: %s (a repeat run adds none)\n' "$burned"
printf 'ledger:        %s   (fuseline ledger export, fuseline ledger show ECID)\n' "$work/fuseline.db"
printf 'board logs:    %s/logs/board-*\n' "$work"
printf 'certificates:  %s/certs/ECID.pem\n' "$work"
printf 'settings:      %s/station.conf\n' "$work"
counts=$(awk '{ c[$3]++ } END { printf "%d passed now, %d already provisioned, %d failed", c["pass"], c["already-provisioned"], c["fail"] }' <<< "$verdicts")
printf '\nPASS: %d steps; boards: %s.\n' "$n" "$counts"
if grep -q '^1-2.3 .* fail ' <<< "$verdicts"; then
  printf 'The board in 1-2.3 failed as rehearsed (pulled out during its burn); to put it back:\n'
  printf '  %s fault %s 1-2.3 clear   and run the rehearsal again.\n' "$V" "$work/line"
fi
printf 'Run again: the boards are reported as already provisioned, nothing is burned. Work in %s\n' "$work"
