#!/usr/bin/env bash
# Benchmark (not a timed test) for `fuseline sign`, ratios measured in one run
# on one SoftHSM2 token and one RSA-3072 key:
#  1. signing a 1 KiB file: fuseline sign vs pkcs11-tool --sign (both a fresh
#     process, login and RSA-PSS each time);
#  2. 1,000 files: fuseline sign --batch (one session) vs 1,000 pkcs11-tool
#     runs, beside the token's raw rate (p11-signrate: C_Sign in a loop, no
#     I/O) and openssl speed rsa3072 (the CPU's limit for the key type);
#  3. the streamed hash of a 1 GiB file: fuseline sign vs openssl dgst -sha256.
# BENCH_BATCH and BENCH_N shrink the runs.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
lab_token
N=${BENCH_N:-30}
B=${BENCH_BATCH:-1000}
GIB=${BENCH_BYTES:-1073741824}
RATE=${BUILDDIR:?}/tests/bench/p11-signrate
"$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --lab --name b --out ks.json -q >/dev/null

now() { date +%s%N; }
ms() { awk -v a="$1" 'BEGIN { printf "%.2f", a / 1e6 }'; }

# 1. one 1 KiB file
head -c 1024 /dev/urandom > one.bin
t0=$(now); for ((i = 0; i < N; i++)); do "$FUSELINE" sign --keyset ks.json --role pkc0 --in one.bin --out one.sig --force -q; done; t1=$(now)
ours=$(( (t1 - t0) / N ))
t0=$(now)
for ((i = 0; i < N; i++)); do
  pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --sign --mechanism SHA256-RSA-PKCS-PSS \
    --label b-pkc0 --input-file one.bin --output-file one.p11 >/dev/null 2>&1
done
t1=$(now)
base=$(( (t1 - t0) / N ))
echo "1 KiB file: fuseline sign $(ms $ours) ms, pkcs11-tool --sign $(ms $base) ms per run; ratio $(awk -v a=$ours -v b=$base 'BEGIN{printf "%.2f", a/b}')"

# 2. batch of B files
mkdir -p batch
: > batch/list
for ((i = 0; i < B; i++)); do
  head -c 1024 /dev/urandom > batch/f$i
  echo "batch/f$i batch/f$i.sig" >> batch/list
done
t0=$(now); "$FUSELINE" sign --keyset ks.json --role pkc0 --batch batch/list -q >/dev/null; t1=$(now)
batch=$(( (t1 - t0) / B ))
t0=$(now)
for ((i = 0; i < B; i++)); do
  pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --sign --mechanism SHA256-RSA-PKCS-PSS \
    --label b-pkc0 --input-file batch/f$i --output-file batch/f$i.p11 >/dev/null 2>&1
done
t1=$(now)
p11=$(( (t1 - t0) / B ))
raw=$("$RATE" "$MODULE" lab "$FUSELINE_PIN_FILE" b-pkc0 "$B")
raw_rate=$(echo "$raw" | awk '{ print $(NF) }' | tr -d '/s')
raw_ns=$(awk -v r="$raw_rate" 'BEGIN { printf "%d", 1e9 / r }')
speed=$(openssl speed -seconds 3 rsa3072 2>/dev/null | awk '/^rsa 3072 bits/ { print $6 }')
echo "$B files: fuseline sign --batch $(ms $batch) ms/file; $B pkcs11-tool runs $(ms $p11) ms/file; ratio $(awk -v a=$batch -v b=$p11 'BEGIN{printf "%.3f", a/b}')"
echo "token raw C_Sign rate: $raw_rate/s ($(ms $raw_ns) ms); batch / raw = $(awk -v a=$batch -v b=$raw_ns 'BEGIN{printf "%.2f", a/b}') (aim <= 1.2)"
echo "openssl speed rsa3072: $speed sign/s ($(awk -v s="$speed" 'BEGIN{printf "%.2f", 1000/s}') ms), the CPU's limit for this key type"

# 3. streamed hash of a large file
head -c "$GIB" /dev/urandom > big.bin
openssl dgst -sha256 big.bin >/dev/null   # warm the page cache for both
t0=$(now); openssl dgst -sha256 big.bin >/dev/null; t1=$(now)
base=$((t1 - t0))
t0=$(now); "$FUSELINE" sign --keyset ks.json --role pkc0 --in big.bin --out big.sig --force -q; t1=$(now)
ours=$((t1 - t0))
rss=$( { /usr/bin/time -f %M "$FUSELINE" sign --keyset ks.json --role pkc0 --in big.bin --out big.sig --force -q; } 2>&1 | tail -1 || true)
echo "$((GIB >> 20)) MiB: fuseline sign $(ms $ours) ms, openssl dgst -sha256 $(ms $base) ms; ratio $(awk -v a=$ours -v b=$base 'BEGIN{printf "%.2f", a/b}'); fuseline max RSS ${rss:-?} KiB"
rm -f big.bin
