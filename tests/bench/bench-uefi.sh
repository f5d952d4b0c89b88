#!/usr/bin/env bash
# Benchmark (not a timed test): generating a whole UEFI key bundle with
# `fuseline keygen --uefi` (keys imported into SoftHSM2, token signing)
# against the equivalent efitools recipe (openssl certificates,
# cert-to-efi-sig-list, four sign-efi-sig-list, dtc) with the same keys as
# PEM files; and one signed append update, `fuseline sign --uefi-var`
# against `sign-efi-sig-list -a`. Issue 4 also asks for efitools on the same
# token: the same two measurements are repeated with efitools signing through
# the OpenSSL PKCS#11 engine (libengine-pkcs11-openssl) with keys in this
# run's SoftHSM2 token. Prints the ratios measured in this run, and
# `openssl speed rsa2048` (the CPU's signing limit for the keys' type).
set -euo pipefail
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/bench/lib-bench.sh"
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

# ---- efitools through the PKCS#11 engine, same token ----------------------------
# A test-local OPENSSL_CONF (no system change) loads the engine with the same
# SoftHSM2 module; the PIN of this throw-away lab token goes into that 0600
# file, not into argv (test/benchmark use only). Set for efitools/openssl
# calls only, so fuseline never loads the engine. The token holds RSA keys
# only: libengine-pkcs11-openssl 0.4.12 crashes on an Ed25519 key pair.
enginesdir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
[ -r "$enginesdir/pkcs11.so" ] || fail "$enginesdir/pkcs11.so missing: install libengine-pkcs11-openssl"
( umask 077; printf '%s\n' "openssl_conf = openssl_init" "[openssl_init]" "engines = engine_section" \
  "[engine_section]" "pkcs11 = pkcs11_section" "[pkcs11_section]" "engine_id = pkcs11" \
  "dynamic_path = $enginesdir/pkcs11.so" "MODULE_PATH = $FUSELINE_MODULE" "PIN = $TEST_PIN" "init = 0" > "$T/engine.cnf" )
eng() { OPENSSL_CONF=$T/engine.cnf "$@"; }

# Whole bundle with keys GENERATED in the token on both sides: fuseline
# keygen --uefi against pkcs11-tool --keypairgen, openssl req -engine for the
# certificates, cert-to-efi-sig-list, four sign-efi-sig-list -e pkcs11, dtc.
t0=$(now)
for ((i = 0; i < N; i++)); do
  "$FUSELINE" keygen --uefi --name g$i --out-dir g$i --timestamp "$TS" --owner-guid $G -q >/dev/null
done
ours=$(( ($(now) - t0) / N ))
efitools_token_bundle() { # dir (also the label prefix)
  local d=$1 x u; mkdir "$d"
  for x in PK KEK db_1; do
    pkcs11-tool --module "$MODULE" --login --pin env:TEST_PIN --keypairgen --key-type rsa:2048 --usage-sign \
      --label "$d-$x" >/dev/null 2>&1
    eng openssl req -new -x509 -engine pkcs11 -keyform engine -key "pkcs11:token=lab;object=$d-$x;type=private" \
      -sha256 -days 3650 -subj "/CN=$x/" -out "$d/$x.crt" 2>/dev/null
    cert-to-efi-sig-list -g $G "$d/$x.crt" "$d/$x.esl" >/dev/null
  done
  u="pkcs11:token=lab;type=private;object=$d"
  : > "$d/null.esl"
  eng sign-efi-sig-list -t "$TS" -e pkcs11 -k "$u-PK" -c "$d/PK.crt" PK "$d/PK.esl" "$d/PK.auth" >/dev/null
  eng sign-efi-sig-list -t "$TS" -e pkcs11 -k "$u-PK" -c "$d/PK.crt" KEK "$d/KEK.esl" "$d/KEK.auth" >/dev/null
  eng sign-efi-sig-list -t "$TS" -e pkcs11 -k "$u-KEK" -c "$d/KEK.crt" db "$d/db_1.esl" "$d/db.auth" >/dev/null
  eng sign-efi-sig-list -t "2026-01-01 00:00:01" -e pkcs11 -k "$u-PK" -c "$d/PK.crt" PK "$d/null.esl" "$d/noPK.auth" >/dev/null
  dtc -q -I dts -O dtb -o "$d/x.dtbo" g0/UefiDefaultSecurityKeys.dts
}
t0=$(now)
for ((i = 0; i < N; i++)); do efitools_token_bundle et$i; done
base=$(( ($(now) - t0) / N ))
for a in PK KEK db noPK; do [ -s et0/$a.auth ] || fail "efitools through the engine wrote no $a.auth"; done
awk -v a="$ours" -v b="$base" 'BEGIN { printf "whole bundle, keys generated in the token: fuseline %.0f ms; pkcs11-tool+openssl req+efitools through the engine %.0f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'

# The four bundle .auth alone, same token keys (b0's, imported above):
# efitools through the engine, for scale against the whole-bundle figures.
u="pkcs11:token=lab;type=private;object=b0-uefi"
t0=$(now)
for ((i = 0; i < N; i++)); do
  eng sign-efi-sig-list -t "$TS" -e pkcs11 -k "$u-pk" -c b0/PK.crt PK b0/PK.esl a$i-PK.auth >/dev/null
  eng sign-efi-sig-list -t "$TS" -e pkcs11 -k "$u-pk" -c b0/PK.crt KEK b0/KEK.esl a$i-KEK.auth >/dev/null
  eng sign-efi-sig-list -t "$TS" -e pkcs11 -k "$u-kek" -c b0/KEK.crt db b0/db.esl a$i-db.auth >/dev/null
  eng sign-efi-sig-list -t "2026-01-01 00:00:01" -e pkcs11 -k "$u-pk" -c b0/PK.crt PK e0/null.esl a$i-noPK.auth >/dev/null
done
eauth=$(( ($(now) - t0) / N ))
for a in PK KEK db noPK; do cmp -s a0-$a.auth b0/$a.auth || fail "engine $a.auth differs from fuseline's b0/$a.auth"; done
awk -v b="$eauth" 'BEGIN { printf "  (the 4 .auth alone through the engine on the same token: %.0f ms; byte-identical to fuseline'"'"'s)\n", b/1e6 }'

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
kekuri=$(jget ks.json "[k for k in d['keys'] if k['role']=='uefi-kek'][0]['uri']")
t0=$(now)
for ((i = 0; i < M; i++)); do
  eng sign-efi-sig-list -a -t "$TS" -e pkcs11 -k "$kekuri" -c ub/KEK.crt db new.esl p$i.auth >/dev/null
done
base=$(( ($(now) - t0) / M ))
cmp -s u0.auth p0.auth || fail "fuseline's and the engine's append .auth differ"
awk -v a="$ours" -v b="$base" 'BEGIN { printf "one db append .auth, same token key: fuseline sign --uefi-var %.1f ms; sign-efi-sig-list -a -e pkcs11 %.1f ms; ratio %.2f\n", a/1e6, b/1e6, a/b }'
echo "physical limit here: openssl speed rsa2048 $(openssl_sign_rate rsa2048) signatures/s (the keys' type; a bundle makes 4 signatures)"
