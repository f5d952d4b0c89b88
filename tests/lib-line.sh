# lib-line.sh — the virtual line for a test (sourced after tests/lib.sh):
# a lab token, a ledger, and a fresh virtual line in $L with its BSP in $BSP.
#   line_setup [--step-seconds S]
#   vrun CMD...              CMD under the line's umockdev USB devices
#   dev INSTANCE EXPR        a field of a virtual device's own state (python on d)
#   untouched INSTANCE       fail unless no tool ever reached the device
VLINE=$SRCDIR/tests/virtual-line/vline
line_setup() {
  export FUSELINE_TEMPLATES=$SRCDIR/templates FUSELINE_DB=$T/ledger.db
  lab_token
  L=$T/line
  "$VLINE" init "$L" "$@" >/dev/null
  BSP=$L/bsp/Linux_for_Tegra
}
vrun() { "$VLINE" run "$L" -- "$@"; }
dev() { "$VLINE" show "$L" "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"; }
untouched() {
  [ "$(dev "$1" 'd["reads"] + d["burns"]')" = 0 ] || fail "$1 was touched"
  [ "$(dev "$1" 'd["uid_pending"]')" = True ] || fail "$1: its UID greeting was consumed"
}
