#!/usr/bin/env bash
# Benchmark (not a timed test): enrolment throughput, like with like, in one
# run. P-384 identity CA (fuseline: in SoftHSM2; baselines: a PEM file),
# P-256 device CSRs, the same certificate profile.
#  1. One process, N certificates: `fuseline enroll --batch` (one token
#     session; each certificate, device row and event one durable ledger
#     transaction) against `openssl ca -batch -infiles` (one process, its
#     text database index.txt, nothing fsynced; its hardwareModuleName
#     carries one ECID for all: openssl reads its config once per process).
#  2. One process per certificate, M other devices: `fuseline enroll`
#     against `openssl x509 -req` (no database).
# Beside them, the physical limits measured here: `openssl speed ecdsap384`
# (the P-384 signatures/s this CPU makes: the CA key type) and synchronous
# 4 KiB writes/s (the ceiling for one durable transaction per device).
# BENCH_N (1000) and BENCH_M (50) set the counts.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/bench/lib-bench.sh"
lab_token
N=${BENCH_N:-1000}
M=${BENCH_M:-50}
export FUSELINE_DB=$T/bench.db

"$FUSELINE" keygen --chip t234 --pkc p256 --name bench --lab --out ks.json -q >/dev/null
"$FUSELINE" keygen --identity-ca --keyset ks.json --subject "/O=Bench/CN=Bench Device CA" -q >/dev/null

# N + M device CSRs (not timed): the first N for the batch, the other M one by one
mkdir csr certs ossl one ca-out
: > list.txt
: > single.txt
for ((i = 1; i <= N + M; i++)); do
  e=$(printf '80012344705df1172c%014x' "$i")
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj "/CN=device $i" -out "csr/$e.csr" 2>/dev/null
  if [ "$i" -le "$N" ]; then echo "$e csr/$e.csr SN-$i" >> list.txt; else echo "$e csr/$e.csr SN-$i" >> single.txt; fi
done

# The baselines' CA: a file key of the same type, the same profile.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ca.key -subj "/O=Bench/CN=File CA" \
  -days 3650 -out ca.crt 2>/dev/null
cat > ext.cnf <<'CNF'
[v3]
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
type = OID:1.3.6.1.4.1.32473.1.1
serial = FORMAT:HEX,OCTETSTRING:$ENV::ECID
[ca]
default_ca = bench
[bench]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/ca-out
certificate = $dir/ca.crt
private_key = $dir/ca.key
rand_serial = yes
default_md = sha384
default_enddate = 99991231235959Z
policy = pol
x509_extensions = v3
unique_subject = no
[pol]
commonName = supplied
CNF
: > index.txt

now() { date +%s%N; }

# 1. one process each, N certificates
t0=$(now)
"$FUSELINE" enroll --keyset ks.json --batch list.txt --out-dir certs -q >/dev/null
t1=$(now)
batch=$((t1 - t0))
[ "$(ls certs | wc -l)" -eq "$N" ] || fail "fuseline issued $(ls certs | wc -l) of $N certificates"
openssl verify -CAfile ks-identity-ca.crt "certs/$(head -1 list.txt | cut -d' ' -f1).pem" >/dev/null || fail "sample does not verify"
t0=$(now)
ECID=$(head -1 list.txt | cut -d' ' -f1) openssl ca -batch -config ext.cnf -notext -out ca-all.pem \
  -infiles $(cut -d' ' -f2 list.txt) 2>/dev/null || fail "openssl ca"
t1=$(now)
cabatch=$((t1 - t0))
[ "$(ls ca-out | wc -l)" -eq "$N" ] || fail "openssl ca issued $(ls ca-out | wc -l) of $N certificates"
openssl verify -CAfile ca.crt "ca-out/$(ls ca-out | head -1)" >/dev/null || fail "openssl ca sample does not verify"

# 2. one process per certificate, M other devices
t0=$(now)
while read -r e c s; do
  "$FUSELINE" enroll --keyset ks.json --ecid "$e" --csr "$c" --serial "$s" --out "one/$e.pem" -q >/dev/null ||
    fail "fuseline enroll $e"
done < single.txt
t1=$(now)
onefl=$((t1 - t0))
i=0
t0=$(now)
while read -r e c _; do
  i=$((i + 1))
  ECID=$e openssl x509 -req -in "$c" -CA ca.crt -CAkey ca.key -sha384 -set_serial "0x40$(printf '%030x' "$i")" \
    -days 36500 -extfile ext.cnf -extensions v3 -out "ossl/$e.pem" 2>/dev/null
done < single.txt
t1=$(now)
oneossl=$((t1 - t0))
[ "$(ls one | wc -l)" -eq "$M" ] && [ "$(ls ossl | wc -l)" -eq "$M" ] || fail "single runs: $(ls one | wc -l) and $(ls ossl | wc -l) of $M"
openssl verify -CAfile ca.crt "ossl/$(head -1 single.txt | cut -d' ' -f1).pem" >/dev/null || fail "baseline sample"

speed=$(openssl_sign_rate ecdsap384)
fsr=$(fsync_rate "$T")
awk -v n="$N" -v m="$M" -v a="$batch" -v b="$cabatch" -v c="$onefl" -v d="$oneossl" -v sp="$speed" -v fs="$fsr" 'BEGIN {
  printf "one process, %d certificates: enroll --batch %.2f s = %.0f/s (token CA, ledger, a durable transaction each); openssl ca -infiles %.2f s = %.0f/s (file key, text database); ratio (fuseline/openssl throughput) %.2f\n", n, a/1e9, n/(a/1e9), b/1e9, n/(b/1e9), b/a
  printf "one process per certificate, %d devices: fuseline enroll %.1f ms each; openssl x509 -req %.1f ms each; ratio %.2f\n", m, c/1e6/m, d/1e6/m, d/c
  printf "physical limits here: openssl speed ecdsap384 %.0f signatures/s; synchronous 4 KiB writes %.0f/s\n", sp, fs
}'
echo "ledger: $(sqlite3 "$FUSELINE_DB" 'SELECT count(*) FROM certificates') certificates, $(sqlite3 "$FUSELINE_DB" 'SELECT count(*) FROM events') events"
