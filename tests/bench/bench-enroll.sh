#!/usr/bin/env bash
# Benchmark (not a timed test): enrolment throughput. `fuseline enroll
# --batch` issues N IDevID certificates in one process and one token
# session (P-384 identity CA in SoftHSM2, P-256 device CSRs), recording
# each certificate, device row and event in the ledger (one durable
# transaction per device). Baseline: `openssl x509 -req` signing the same
# CSRs with a P-384 CA key in a file and the same extensions, one process
# per certificate, no ledger. Prints certificates/s for both and the ratio.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
lab_token
N=${BENCH_N:-1000}
export FUSELINE_DB=$T/bench.db

"$FUSELINE" keygen --chip t234 --pkc p256 --name bench --lab --out ks.json -q >/dev/null
"$FUSELINE" keygen --identity-ca --keyset ks.json --subject "/O=Bench/CN=Bench Device CA" -q >/dev/null

# N device CSRs (not timed)
mkdir csr certs ossl
: > list.txt
for ((i = 1; i <= N; i++)); do
  e=$(printf '80012344705df1172c%014x' "$i")
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj "/CN=device $i" -out "csr/$e.csr" 2>/dev/null
  echo "$e csr/$e.csr SN-$i" >> list.txt
done

now() { date +%s%N; }
t0=$(now)
"$FUSELINE" enroll --keyset ks.json --batch list.txt --out-dir certs -q >/dev/null
t1=$(now)
ours=$((t1 - t0))
[ "$(ls certs | wc -l)" -eq "$N" ] || fail "fuseline issued $(ls certs | wc -l) of $N certificates"
openssl verify -CAfile ks-identity-ca.crt "certs/$(head -1 list.txt | cut -d' ' -f1).pem" >/dev/null || fail "sample does not verify"

# Baseline: a file key of the same type, the same profile.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ca.key -subj "/O=Bench/CN=File CA" \
  -days 3650 -out ca.crt 2>/dev/null
cat > ext.cnf <<'EOF'
[v3]
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
type = OID:1.3.6.1.4.1.32473.1.1
serial = FORMAT:HEX,OCTETSTRING:$ENV::ECID
EOF
i=0
t0=$(now)
while read -r e c _; do
  i=$((i + 1))
  ECID=$e openssl x509 -req -in "$c" -CA ca.crt -CAkey ca.key -sha384 -set_serial "0x40$(printf '%030x' "$i")" \
    -days 36500 -extfile ext.cnf -extensions v3 -out "ossl/$e.pem" 2>/dev/null
done < list.txt
t1=$(now)
base=$((t1 - t0))
openssl verify -CAfile ca.crt "ossl/$(head -1 list.txt | cut -d' ' -f1).pem" >/dev/null || fail "baseline sample"

awk -v n="$N" -v a="$ours" -v b="$base" 'BEGIN {
  printf "enroll --batch: %d certificates in %.2f s = %.0f certificates/s (token-signed, ledger-recorded)\n", n, a/1e9, n/(a/1e9)
  printf "openssl x509 -req: %d certificates in %.2f s = %.0f certificates/s (file key, one process each, no ledger)\n", n, b/1e9, n/(b/1e9)
  printf "ratio (fuseline/openssl throughput): %.2f\n", b/a
}'
echo "ledger: $(sqlite3 "$FUSELINE_DB" 'SELECT count(*) FROM certificates') certificates, $(sqlite3 "$FUSELINE_DB" 'SELECT count(*) FROM events') events"
