#!/usr/bin/env bash
# Benchmark (not a timed test): generating a whole UEFI key bundle with
# `fuseline keygen --uefi` (keys imported into SoftHSM2, token signing)
# against the equivalent efitools recipe (openssl certificates,
# cert-to-efi-sig-list, four sign-efi-sig-list, dtc) with the same keys as
# PEM files; and one signed append update, `fuseline sign --uefi-var`
# against `sign-efi-sig-list -a`. Prints the ratios measured in this run.
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
lab_token
N=${BENCH_N:-5}
M=${BENCH_M:-20}
TS="2026-01-01 00:00:00"
G=11111111-2222-3333-4444-555555555555
mkdir k
for x in PK KEK db_1; do openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out k/$x.key 2>/dev/null; done
now() { date +%s%N; }

t0=$(now)
for ((i = 0; i < N; i++)); do
  "$FUSELINE" keygen --uefi --import-keys k --name b$i --out-dir b$i --timestamp "$TS" --owner-guid $G -q >/dev/null
done
ours=$(( ($(now) - t0) / N ))

efitools_bundle() { # dir
  local d=$1 x; mkdir "$d"
  for x in PK KEK db_1; do
    openssl req -new -x509 -key k/$x.key -sha256 -days 3650 -subj "/CN=$x/" -out "$d/$x.crt" 2>/dev/null
    cert-to-efi-sig-list -g $G "$d/$x.crt" "$d/$x.esl" >/dev/null
  done
  : > "$d/null.esl"
  sign-efi-sig-list -t "$TS" -k k/PK.key -c "$d/PK.crt" PK "$d/PK.esl" "$d/PK.auth" >/dev/null
  sign-efi-sig-list -t "$TS" -k k/PK.key -c "$d/PK.crt" KEK "$d/KEK.esl" "$d/KEK.auth" >/dev/null
  sign-efi-sig-list -t "$TS" -k k/KEK.key -c "$d/KEK.crt" db "$d/db_1.esl" "$d/db.auth" >/dev/null
  sign-efi-sig-list -t "2026-01-01 00:00:01" -k k/PK.key -c "$d/PK.crt" PK "$d/null.esl" "$d/noPK.auth" >/dev/null
  dtc -q -I dts -O dtb -o "$d/x.dtbo" b0/UefiDefaultSecurityKeys.dts
}
t0=$(now)
for ((i = 0; i < N; i++)); do efitools_bundle e$i; done
base=$(( ($(now) - t0) / N ))
awk -v a="$ours" -v b="$base" 'BEGIN { printf "whole bundle (3 keys into the token, certs, ESLs, 4 .auth, dtbo): fuseline %.0f ms; efitools+openssl with PEM keys %.0f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'
echo "  (fuseline's figure includes creating 6 SoftHSM2 token objects and fsyncing every file; its CPU time is"
echo "   under 0.1 s here, the rest is I/O wait, largely SoftHSM2 rewriting its object files with ftruncate)"

"$FUSELINE" keygen --chip t234 --pkc rsa3k --lab --name ks --out ks.json -q >/dev/null
"$FUSELINE" keygen --uefi --keyset ks.json --import-keys k --out-dir ub --timestamp "$TS" --owner-guid $G -q >/dev/null
openssl req -new -x509 -newkey rsa:2048 -nodes -keyout new.key -subj "/CN=new/" -days 30 -out new.crt 2>/dev/null
cert-to-efi-sig-list -g $G new.crt new.esl >/dev/null
t0=$(now)
for ((i = 0; i < M; i++)); do
  "$FUSELINE" sign --uefi-var db --append new.crt --signer uefi-kek --keyset ks.json --timestamp "$TS" --out u$i.auth -q >/dev/null
done
ours=$(( ($(now) - t0) / M ))
t0=$(now)
for ((i = 0; i < M; i++)); do
  sign-efi-sig-list -a -t "$TS" -k k/KEK.key -c ub/KEK.crt db new.esl r$i.auth >/dev/null
done
base=$(( ($(now) - t0) / M ))
cmp -s u0.auth r0.auth || fail "the timed outputs differ"
awk -v a="$ours" -v b="$base" 'BEGIN { printf "one db append .auth: fuseline sign --uefi-var (token) %.1f ms; sign-efi-sig-list -a (PEM) %.1f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'
