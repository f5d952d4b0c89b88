#!/usr/bin/env bash
# ledger-pg-identity.sh — one device, one identity across stations: two
# stations (each its own SoftHSM2 token, keyset and identity CA) share one
# PostgreSQL ledger and enrol the same ECID with different device keys at the
# same moment, ROUNDS (5) times. Each round exactly one `fuseline enroll`
# succeeds and writes its certificate; the other exits 7 and writes nothing.
# The ledger, read with psql, holds one valid certificate for the ECID — the
# winner's (openssl's SHA-256 of its DER) — and the device enrolled once;
# `verify cert` of the winner finds it current in the ledger, `verify ledger`
# and tests/tools/ledger-chain.py pass.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-pg.sh"
F=$FUSELINE
ROUNDS=${IDENTITY_ROUNDS:-5}
pg_start
DB=$(pg_station_ledger fuseline)   # the writers have a station's rights (ledger-pg-roles.sql), no more
unset FUSELINE_DB

sha_der() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
# station S: its own token (lab-token.sh in $T/S) and keyset with an identity CA.
for s in a b; do
  LAB_INIT=${LAB_INIT:?} "$SRCDIR/hsm/lab-token.sh" "$T/lab-$s" > "env-$s" || fail "lab token for station $s"
  (
    . "./env-$s"
    "$F" keygen --chip t234 --pkc p256 --name "st$s" --lab --out "ks-$s.json" --db "$DB" --station "st-$s" -q \
      >/dev/null 2>"$T/err" || fail "station $s keygen: $(cat "$T/err")"
    "$F" keygen --identity-ca --keyset "ks-$s.json" --subject "/O=Acme/CN=Station $s CA" --db "$DB" \
      --station "st-$s" -q >/dev/null 2>"$T/err" || fail "station $s identity CA: $(cat "$T/err")"
  ) || exit 1
done
[ "$(pg_sql fuseline "SELECT count(*) FROM events WHERE command = 'keygen'")" -eq 4 ] || fail "keygen events missing"
pass "two stations, each with its own token and identity CA, recording in one PostgreSQL ledger"

# enroll_at S ECID N: station S enrols ECID with its device key N, once go exists.
enroll_at() {
  local s=$1 ecid=$2 n=$3
  (
    . "./env-$s"
    while [ ! -e "go.$n" ]; do sleep 0.005; done
    exec "$F" enroll --keyset "ks-$s.json" --ecid "$ecid" --serial "SN-$n" --product "Acme Orin" \
      --csr "dev-$s-$n.csr" --out "cert-$s-$n.pem" --db "$DB" --station "st-$s" --operator "op-$s"
  ) >"out-$s-$n" 2>"err-$s-$n"
}
wins_a=0 wins_b=0
for n in $(seq 1 "$ROUNDS"); do
  ecid=$(printf '80012344705df1172c0000000d03%04x' "$n")
  for s in a b; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "dev-$s-$n.key" 2>/dev/null || fail "genpkey"
    openssl req -new -key "dev-$s-$n.key" -subj "/CN=dev" -out "dev-$s-$n.csr" 2>/dev/null || fail "req"
  done
  enroll_at a "$ecid" "$n" & pa=$!
  enroll_at b "$ecid" "$n" & pb=$!
  sleep 0.2; touch "go.$n"
  wait $pa && ra=0 || ra=$?
  wait $pb && rb=0 || rb=$?
  case "$ra $rb" in
    "0 7") win=a lose=b; wins_a=$((wins_a + 1)) ;;
    "7 0") win=b lose=a; wins_b=$((wins_b + 1)) ;;
    *) fail "round $n: station a exit $ra ($(cat "err-a-$n")), station b exit $rb ($(cat "err-b-$n")); expected one 0 and one 7" ;;
  esac
  [ "$(grep -c 'error:' "err-$lose-$n")" -eq 1 ] || fail "round $n: the refusal is not one error line: $(cat "err-$lose-$n")"
  grep -q "$ecid" "err-$lose-$n" || fail "round $n: the refusal does not name the ECID: $(cat "err-$lose-$n")"
  echo "# round $n, station $lose: $(cat "err-$lose-$n")"
  [ -s "cert-$win-$n.pem" ] || fail "round $n: the winner wrote no certificate"
  [ ! -e "cert-$lose-$n.pem" ] || fail "round $n: the refused station wrote a certificate"
  openssl verify -CAfile "ks-$win-identity-ca.crt" "cert-$win-$n.pem" >/dev/null 2>&1 \
    || fail "round $n: openssl does not verify the winner's certificate against its station's CA"
  # the ledger, read with psql
  got=$(pg_sql fuseline "SELECT fingerprint || ' ' || status FROM certificates WHERE ecid = '$ecid'")
  [ "$got" = "$(sha_der "cert-$win-$n.pem") valid" ] || fail "round $n: certificates for the ECID: '$got'"
  got=$(pg_sql fuseline "SELECT count(*) || ' ' || min(state) FROM devices WHERE ecid = '$ecid'")
  [ "$got" = "1 enrolled" ] || fail "round $n: device rows: '$got'"
  got=$(pg_sql fuseline "SELECT station FROM events WHERE ecid = '$ecid' AND command = 'enroll' AND outcome = 'ok'")
  [ "$got" = "st-$win" ] || fail "round $n: the ok enroll events name '$got', expected st-$win only"
  (
    . "./env-$win"
    "$F" verify cert "cert-$win-$n.pem" --keyset "ks-$win.json" --db "$DB" --json > "vc-$n" 2>"$T/err"
  ) || fail "round $n: verify cert of the winner: $(cat "vc-$n" "$T/err")"
  [ "$(jget "vc-$n" 'd["ok"] and d["ledger"] is True')" = True ] || fail "round $n: verify cert: $(cat "vc-$n")"
  pass "round $n: station $win enrolled $ecid (exit 0), station $lose refused (exit 7), one valid certificate in the ledger"
done
echo "# station a won $wins_a, station b $wins_b of $ROUNDS rounds"

[ "$(pg_sql fuseline "SELECT count(*) FROM (SELECT ecid FROM certificates WHERE status = 'valid' GROUP BY ecid HAVING count(*) > 1) x")" -eq 0 ] \
  || fail "an ECID has two valid certificates"
expect_rc 0 "verify ledger after the races" "$F" verify ledger --db "$DB"
run python3 "$SRCDIR/tests/tools/ledger-chain.py" "$DB"
[ "$RC" -eq 0 ] || fail "independent chain recomputation: $(cat "$T/out" "$T/err")"
pass "verify ledger PASS; the independent chain recomputation agrees"
done_testing
