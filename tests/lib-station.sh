# lib-station.sh — a station on the virtual line for a test (sourced after
# tests/lib.sh and tests/lib-line.sh): lab keys with an identity CA, the
# Orin Nano 8GB plan and its package, and station settings in $T/station.conf.
#   station_setup [--step-seconds S]
#   station_conf [key = value]...   (re)write station.conf: the defaults, then these
#   st_run ARGS...                  the station under the line's USB devices (out/err/RC as run)
#   events [filter]                 the ledger's events "command kind outcome ecid" (python3 sqlite3)
station_setup() {
  line_setup "$@"
  "$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --name st --lab --out ks.json -q >/dev/null 2>&1
  "$FUSELINE" keygen --identity-ca --keyset ks.json --subject "/O=Station Test/CN=Station Test CA" -q >/dev/null
  "$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml -q >/dev/null
  "$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb --plan plan.xml -q >/dev/null
  PKH=$(sed -n 's/.*name="PublicKeyHash" size="64" value="0x\([0-9a-f]*\)".*/\1/p' plan.xml)
  [ ${#PKH} -eq 128 ] || fail "plan.xml lacks the PublicKeyHash"
  station_conf
}
station_conf() {
  {
    echo "# station settings written by the test"
    echo "template = $SRCDIR/templates/orin-nano-8gb.conf"
    echo "keyset = ks.json"
    echo "package = pkg.tbz2"
    echo "plan = plan.xml"
    echo "ports = 1-2.1, 1-2.2, 1-2.3"
    echo "station = test-st"
    echo "ledger = ledger.db"
    echo "log-dir = logs"
    echo "cert-dir = certs"
    echo "mode = commit"
    echo "confirm = yes"
    echo "allow-lab-keys = yes"
    echo "enroll = token-key"
    echo "serial-prefix = ST-"
    for kv in "$@"; do echo "$kv"; done
  } | python3 -c '
import sys
lines = sys.stdin.read().splitlines()
seen = {}
for i, l in enumerate(lines):
    if "=" in l and not l.startswith("#"):
        seen[l.split("=")[0].strip()] = i
print("\n".join(l for i, l in enumerate(lines) if "=" not in l or l.startswith("#") or seen[l.split("=")[0].strip()] == i))
' > station.conf
}
st_run() { run vrun "$FUSELINE" station --config station.conf --readback-delay 20 --poll 100 "$@"; }
# The ledger read with python3's sqlite3 (not fuseline's reader).
events() {
  python3 - "$T/ledger.db" "${1:-}" <<'PY'
import sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
for cmd, kind, outcome, ecid in db.execute('SELECT command, kind, outcome, ecid FROM events ORDER BY id'):
    line = '%s %s %s %s' % (cmd, kind, outcome, ecid or '-')
    if sys.argv[2] in line:
        print(line)
PY
}
# The station's JSON Lines result for a port: a field (python on o).
result_of() {
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("event") == "result" and o.get("instance") == sys.argv[2]: print(eval(sys.argv[3]))' "$T/out" "$1" "$2"
}
