# shellcheck shell=bash
# lib-bench.sh — the physical limits the benchmarks print beside their
# figures (sourced after tests/lib.sh), measured in the same run.

# openssl_sign_rate ALG: signatures per second the CPU manages for ALG
# (an `openssl speed` algorithm: rsa3072, ecdsap256, ecdsap384, ed25519).
openssl_sign_rate() {
  openssl speed -seconds 2 "$1" 2>/dev/null | awk '/ sign\/s / { h = 1; next } h && NF >= 4 { print $(NF - 1); exit }'
}

# fsync_rate DIR: synchronous 4 KiB writes per second in DIR (dd oflag=dsync:
# each write reaches the disk before the next), the ceiling for one durable
# commit after another.
fsync_rate() {
  local f=$1/fsync-probe n=200 t0 t1
  t0=$(date +%s%N)
  dd if=/dev/zero of="$f" bs=4k count=$n oflag=dsync status=none
  t1=$(date +%s%N)
  rm -f "$f"
  awk -v n=$n -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }'
}
