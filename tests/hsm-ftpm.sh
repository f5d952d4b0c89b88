#!/usr/bin/env bash
# fTPM offline provisioning, host side (vector set B): the EK CA in the
# token issues EK certificates for the EK CSRs NVIDIA's tool made; they
# chain to the CA with openssl verify, carry the EK public keys NVIDIA's tool
# printed (ftpm_keys.txt) and NVIDIA's serial rule; the per-device EKB with
# records 91-94 decrypts (independently, in Python) to exactly those values.
. "$SRCDIR/tests/lib.sh"
lab_token
B=${VECTORS:?}/ekb/B-t234-ekb1.0-oemk2-ftpm-offline
SN=123400c0ffee12345678
for rf in "oem-k2 oem_k2.key" "ekb-payload sym_t234.key" "ekb-disk sym2_t234.key" "ekb-auth auth_t234.key"; do
  set -- $rf
  if [ -e b.json ]; then run "$FUSELINE" keygen --import-hex "$B/$2" --role "$1" --keyset b.json
  else run "$FUSELINE" keygen --import-hex "$B/$2" --role "$1" --chip t234 --name b --lab --out b.json; fi
  [ "$RC" -eq 0 ] || fail "import $1"
done
expect_rc 0 "EK CA in the token" "$FUSELINE" keygen --ftpm-ek-ca --keyset b.json --subject "/O=Test/CN=Test fTPM EK CA"
[ -s b-ftpm-ek-ca.crt ] || fail "no b-ftpm-ek-ca.crt beside the keyset"
[ "$(jget b.json '[k["role"] for k in d["keys"] if k["role"]=="ftpm-ek-ca"][0]')" = ftpm-ek-ca ] || fail "role"
pass "keyset has role ftpm-ek-ca with its certificate"

# NVIDIA's EK public keys (ftpm_keys.txt) as SPKI PEM files.
awk '/^# rsa_ek_pubkey/{f=1;next} /^# /{f=0} f' "$B/ftpm_keys.txt" > rsa_pub.pem
awk '/^# ec_ek_pubkey/{f=1;next} /^# /{f=0} f' "$B/ftpm_keys.txt" > ec_pub.pem
for k in rsa ec; do
  expect_rc 0 "issue the $k EK certificate" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" \
    --csr "$B/ek_csr_$k.der" --out "ek_$k.der" --db l.db
  openssl x509 -inform DER -in "ek_$k.der" -out "ek_$k.pem"
  openssl verify -CAfile b-ftpm-ek-ca.crt "ek_$k.pem" >/dev/null || fail "$k EK certificate does not chain to the EK CA"
  cmp <(openssl x509 -in "ek_$k.pem" -noout -pubkey | openssl pkey -pubin -outform DER) \
      <(openssl pkey -pubin -in "${k}_pub.pem" -outform DER) || fail "$k EK key differs from NVIDIA's ftpm_keys.txt"
  openssl x509 -in "ek_$k.pem" -noout -text > t.txt
  grep -q "CN *= *${SN}_ftpm-ek-cert" t.txt || fail "$k subject"
  grep -q "DirName:/2.23.133.2.1=id:4D534654/2.23.133.2.2=SSE fTPM/2.23.133.2.3=id:20180710" t.txt \
    || fail "$k TPM SAN (directoryName) not copied from the CSR"
  grep -A1 "Key Usage: critical" t.txt | grep -q "$([ $k = rsa ] && echo "Key Encipherment" || echo "Digital Signature, Key Agreement")" \
    || fail "$k key usage not copied from the CSR"
  grep -q "CA:FALSE" t.txt || fail "$k basicConstraints"
  grep -q "Authority Key Identifier" t.txt || fail "$k AKI"
  want=$(openssl x509 -in "ek_$k.pem" -noout -subject -nameopt RFC2253 >/dev/null; \
         python3 -c 'import sys,hashlib; from cryptography import x509; c=x509.load_der_x509_certificate(open(sys.argv[1],"rb").read()); print("%X" % int(hashlib.sha1(c.subject.public_bytes()).hexdigest(),16))' "ek_$k.der")
  got=$(openssl x509 -in "ek_$k.pem" -noout -serial | cut -d= -f2 | sed 's/^0*//')
  [ "$got" = "$want" ] || fail "$k serial $got, expected SHA-1(subject) $want"
  pass "$k EK certificate: chains to the EK CA, NVIDIA's EK key, SN subject, TPM SAN, serial = SHA-1(subject)"
done
[ "$(openssl x509 -inform DER -in ek_rsa.der -noout -serial)" = "$(openssl x509 -inform DER -in ek_ec.der -noout -serial)" ] \
  || fail "RSA and EC certificates of one device must share the serial"
pass "RSA and EC EK certificates share the serial (NVIDIA's rule)"

# Refusals: a tampered CSR, another device's CSR, an identity CSR.
python3 -c 'import sys;d=bytearray(open(sys.argv[1],"rb").read());d[-5]^=1;open("bad.der","wb").write(d)' "$B/ek_csr_rsa.der"
expect_rc 5 "tampered CSR" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" --csr bad.der --out x.der
expect_err "does not verify"
expect_rc 5 "CSR of another device" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn 123400c0ffee12345679 \
  --csr "$B/ek_csr_ec.der" --out x.der
expect_err "another device"
expect_rc 2 "malformed SN" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn 1234 --csr "$B/ek_csr_ec.der" --out x.der
[ ! -e x.der ] || fail "x.der written by a refused run"
# The overwrite rule: an existing --out is exit 7, naming it, before the CA signs; --force replaces it.
printf 'keep\n' > taken.der
n0=$(sqlite3 l.db "SELECT count(*) FROM events")
expect_rc 7 "ftpm-ek-cert --out exists" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" --csr "$B/ek_csr_ec.der" \
  --out taken.der --db l.db
expect_err "taken.der exists already; give --force to replace it"
[ "$(cat taken.der)" = keep ] || fail "an existing --out was changed"
[ "$(sqlite3 l.db "SELECT count(*) FROM events")" -eq "$n0" ] || fail "a refused ftpm-ek-cert was recorded"
expect_rc 0 "ftpm-ek-cert --out exists, --force" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" \
  --csr "$B/ek_csr_ec.der" --out taken.der --force
openssl x509 -inform DER -in taken.der -out taken.pem || fail "--force: taken.der is not a certificate"
openssl verify -CAfile b-ftpm-ek-ca.crt taken.pem >/dev/null || fail "--force: the certificate does not chain"
pass "ftpm-ek-cert --out: an existing file is exit 7, untouched, nothing recorded; --force replaces it"

# The per-device EKB with records 91-94 from these certificates.
printf '%s\n' "$SN" > sn.hex
expect_rc 0 "per-device EKB" "$FUSELINE" ekb --keyset b.json --format 1.0 --fv "$B/fv_ekb_t234" --record-hex 91:sn.hex \
  --record-hex "92:$B/eps_seed.hex" --record 93:ek_rsa.der --record 94:ek_ec.der --out "eks_$SN.img" \
  --db l.db --json
expect_rc 0 "verify the per-device EKB" "$FUSELINE" verify ekb "eks_$SN.img" --keyset b.json --fv "$B/fv_ekb_t234"
python3 "$SRCDIR/tests/tools/ekb-decrypt.py" "eks_$SN.img" "$(cat "$B/oem_k2.key")" "$(cat "$B/fv_ekb_t234")" > recs.txt \
  || fail "independent decryption"
h() { sha256sum | cut -c1-64; }
cat > want.txt <<W
1 32 $(xxd -r -p "$B/sym_t234.key" | h)
2 16 $(xxd -r -p "$B/sym2_t234.key" | h)
4 16 $(xxd -r -p "$B/auth_t234.key" | h)
91 10 $(printf '%s' "$SN" | xxd -r -p | h)
92 32 $(xxd -r -p "$B/eps_seed.hex" | h)
93 $(stat -c %s ek_rsa.der) $(h < ek_rsa.der)
94 $(stat -c %s ek_ec.der) $(h < ek_ec.der)
W
diff want.txt recs.txt || fail "per-device EKB records differ"
pass "per-device EKB decrypts (Python, independent) to the keys, SN, EPS seed and both EK certificates"


# One device's KDK0, Silicon-ID key and fuse plan. Lab: KDK0 imported from
# NVIDIA's kdk_db.csv, so the Silicon-ID key must equal pubkey_db.csv.
cut -d' ' -f3 "$B/kdk_db.csv" | tr -d '\r' > kdk0.hex
KDK0=$(cat kdk0.hex)
expect_rc 0 "ftpm-device (set B's KDK0)" "$FUSELINE" ftpm-device --keyset b.json --oem-id 0x1234 \
  --sn 0x00c0ffee12345678 --fuse-out dev.xml --kdk0-import kdk0.hex --db l.db
[ "$(cat "$T/out")" = "$(tr -d '\r' < "$B/pubkey_db.csv")" ] || fail "Silicon-ID line differs from NVIDIA's pubkey_db.csv (CRLF stripped)"
pass "Silicon-ID public key equals NVIDIA's kdk_gen output"
[ "$(stat -c %a dev.xml)" = 600 ] || fail "dev.xml mode"
python3 - dev.xml "$KDK0" <<'PY' || fail "per-device fuse XML content"
import sys, xml.etree.ElementTree as ET
f = {e.get("name"): (e.get("size"), e.get("value")) for e in ET.parse(sys.argv[1]).getroot()}
assert f == {"OdmId": ("8", "0x00c0ffee12345678"), "OdmInfo": ("4", "0x00001234"), "Kdk0": ("32", "0x" + sys.argv[2])}, f
PY
pass "fuse XML: OdmId = SN, OdmInfo = OEM_ID, Kdk0 = KDK0"
expect_rc 0 "fuse-xml --check accepts the per-device plan" "$FUSELINE" fuse-xml --check dev.xml --chip t234
kcv() { head -c 16 /dev/zero | openssl enc -aes-256-ecb -nopad -K "$1" | xxd -p | head -c 6; }
[ "$(jget b.json '[k["kcv"] for k in d["keys"] if k["role"]=="ftpm-kdk0-123400c0ffee12345678"][0]')" = "$(kcv "$KDK0")" ] \
  || fail "KDK0 kcv"
assert_absent "$KDK0" b.json "$T/out" "$T/err"
pass "keyset records KDK0 by check value only"
expect_rc 0 "verify keyset with the KDK0 role" "$FUSELINE" verify keyset b.json

# Both EKs derived by fuseline from the token's KDK0 and set B's EPS seed: the
# keys NVIDIA's tool printed, the RSA CSR byte for byte NVIDIA's, the
# certificates chain to the EK CA, and the per-device EKB holds them.
expect_rc 0 "ftpm-ek-cert --eps-seed (both EKs derived)" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" \
  --eps-seed "$B/eps_seed.hex" --out-rsa d_rsa.der --out-ec d_ec.der --csr-out-rsa d_csr_rsa.der \
  --csr-out-ec d_csr_ec.der --ekb-out d_eks.img --format 1.0 --fv "$B/fv_ekb_t234" \
  --iv 531d63af5df38305e83153ed6d0fc833 --db l.db
cmp d_csr_rsa.der "$B/ek_csr_rsa.der" || fail "derived RSA EK CSR differs from NVIDIA's ek_csr_rsa.der"
pass "derived RSA EK CSR equals NVIDIA's byte for byte"
# The overwrite rule covers every output of the derive mode: exit 7 naming it, all untouched; --force replaces.
cp d_eks.img keep_eks.img
printf 'keep\n' > taken_ec.der
n0=$(sqlite3 l.db "SELECT count(*) FROM events")
expect_rc 7 "ftpm-ek-cert --eps-seed, --out-ec exists" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" \
  --eps-seed "$B/eps_seed.hex" --out-rsa fresh_rsa.der --out-ec taken_ec.der --db l.db
expect_err "taken_ec.der exists already; give --force to replace it"
[ "$(cat taken_ec.der)" = keep ] && [ ! -e fresh_rsa.der ] || fail "a refused derive run wrote or changed a file"
[ "$(sqlite3 l.db "SELECT count(*) FROM events")" -eq "$n0" ] || fail "a refused derive run was recorded"
expect_rc 7 "ftpm-ek-cert --eps-seed, --ekb-out exists" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" \
  --eps-seed "$B/eps_seed.hex" --out-rsa fresh_rsa.der --out-ec fresh_ec.der --ekb-out d_eks.img --format 1.0 \
  --fv "$B/fv_ekb_t234" --iv 531d63af5df38305e83153ed6d0fc833
cmp -s d_eks.img keep_eks.img && [ ! -e fresh_rsa.der ] || fail "a refused derive run wrote or changed a file"
expect_rc 0 "ftpm-ek-cert --eps-seed --force over existing outputs" "$FUSELINE" ftpm-ek-cert --keyset b.json \
  --sn "$SN" --eps-seed "$B/eps_seed.hex" --out-rsa fresh_rsa.der --out-ec taken_ec.der --csr-out-rsa fresh_csr.der --force
cmp -s fresh_csr.der "$B/ek_csr_rsa.der" && openssl x509 -inform DER -in taken_ec.der -noout || fail "--force outputs"
pass "ftpm-ek-cert --eps-seed: an existing output is exit 7, nothing written or recorded; --force replaces"
openssl req -inform DER -in d_csr_ec.der -noout -verify >/dev/null 2>&1 || fail "derived EC EK CSR does not verify"
cmp <(openssl req -inform DER -in d_csr_ec.der -noout -subject -pubkey) \
    <(openssl req -inform DER -in "$B/ek_csr_ec.der" -noout -subject -pubkey) || fail "EC EK CSR subject/key"
for k in rsa ec; do
  openssl x509 -inform DER -in "d_$k.der" -out "d_$k.pem"
  openssl verify -CAfile b-ftpm-ek-ca.crt "d_$k.pem" >/dev/null || fail "derived $k EK certificate does not chain"
  cmp <(openssl x509 -in "d_$k.pem" -noout -pubkey | openssl pkey -pubin -outform DER) \
      <(openssl pkey -pubin -in "${k}_pub.pem" -outform DER) || fail "derived $k EK key differs from ftpm_keys.txt"
done
pass "derived RSA and EC EK certificates: NVIDIA's EK public keys, chain to the EK CA"
[ "$(openssl x509 -inform DER -in d_rsa.der -noout -serial)" = "$(openssl x509 -inform DER -in d_ec.der -noout -serial)" ] \
  || fail "derived certificates must share the serial"
expect_rc 0 "per-device EKB from the derived certificates" "$FUSELINE" ekb --keyset b.json --format 1.0 \
  --fv "$B/fv_ekb_t234" --record-hex 91:sn.hex --record-hex "92:$B/eps_seed.hex" --record 93:d_rsa.der \
  --record 94:d_ec.der --iv 531d63af5df38305e83153ed6d0fc833 --out "eks_d_$SN.img"
python3 "$SRCDIR/tests/tools/ekb-decrypt.py" "eks_d_$SN.img" "$(cat "$B/oem_k2.key")" "$(cat "$B/fv_ekb_t234")" \
  > recs_d.txt || fail "independent decryption (derived)"
grep -qx "93 $(stat -c %s d_rsa.der) $(h < d_rsa.der)" recs_d.txt || fail "EKB tag 93 is not the derived RSA EK cert"
grep -qx "94 $(stat -c %s d_ec.der) $(h < d_ec.der)" recs_d.txt || fail "EKB tag 94 is not the derived EC EK cert"
pass "per-device EKB holds the derived RSA (93) and EC (94) EK certificates"
# The EKB made in the same step (--ekb-out): NVIDIA's record layout, the same
# records as the separate ekb run, 0600.
python3 "$SRCDIR/tests/tools/ekb-decrypt.py" d_eks.img "$(cat "$B/oem_k2.key")" "$(cat "$B/fv_ekb_t234")" \
  > recs_d1.txt || fail "independent decryption (--ekb-out)"
diff recs_d.txt recs_d1.txt || fail "--ekb-out records differ from ekb with the same inputs"
cmp d_eks.img "eks_d_$SN.img" || fail "--ekb-out image differs from ekb's with the same inputs and IV"
[ "$(cut -d' ' -f1 recs_d1.txt | tr '\n' ' ')" = "1 2 4 91 92 93 94 " ] || fail "--ekb-out record order"
grep -qx "92 32 $(xxd -r -p "$B/eps_seed.hex" | h)" recs_d1.txt || fail "--ekb-out tag 92 is not the EPS seed"
[ "$(stat -c %a d_eks.img)" = 600 ] || fail "d_eks.img mode"
pass "--ekb-out: the device's EKB in the same step, byte-identical to ekb with the same records, 0600"

# --new-eps-seed: the seed comes from the token's RNG and exists only inside
# the EKB; the certificates are for the EPS it gives (re-deriving from the
# seed read back out of the EKB yields the same EK public keys).
DEV7=12340000000000000077
expect_rc 0 "ftpm-device for device 0x77 (KDK0 made in the token)" "$FUSELINE" ftpm-device --keyset b.json \
  --oem-id 0x1234 --sn 0x77 --fuse-out dev77.xml
expect_rc 2 "--new-eps-seed without --ekb-out" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$DEV7" --new-eps-seed \
  --out-rsa n_rsa.der --out-ec n_ec.der
grep -q -- "--new-eps-seed needs --ekb-out" "$T/err" || fail "usage error does not name --ekb-out"
expect_rc 0 "ftpm-ek-cert --new-eps-seed --ekb-out (EKB 2.0)" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$DEV7" \
  --new-eps-seed --out-rsa r7.der --out-ec e7.der --ekb-out eks7.img --format 2.0 --db l.db --json
SEED7=$(EKB_VALUE=92 python3 "$SRCDIR/tests/tools/ekb-decrypt.py" eks7.img "$(cat "$B/oem_k2.key")") \
  || fail "independent decryption of eks7.img"
[ "${#SEED7}" = 64 ] || fail "tag 92 of eks7.img is not 32 bytes: $SEED7"
[ "$(EKB_VALUE=91 python3 "$SRCDIR/tests/tools/ekb-decrypt.py" eks7.img "$(cat "$B/oem_k2.key")")" = "$DEV7" ] \
  || fail "tag 91 of eks7.img is not the SN"
for f in "$T/out" "$T/err" b.json l.db r7.der e7.der; do assert_absent "$SEED7" "$f"; done
grep -q "$(sha256sum eks7.img | cut -c1-64)" "$T/out" || fail "--json lacks the EKB hash"
printf '%s\n' "$SEED7" > seed7.hex
expect_rc 0 "re-derive device 0x77 from the seed in its EKB" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$DEV7" \
  --eps-seed seed7.hex --out-rsa r7b.der --out-ec e7b.der
for k in r7 e7; do
  cmp <(openssl x509 -inform DER -in $k.der -noout -pubkey) <(openssl x509 -inform DER -in ${k}b.der -noout -pubkey) \
    || fail "$k: the certificate's EK is not the one the EKB's EPS seed gives"
  openssl verify -CAfile b-ftpm-ek-ca.crt <(openssl x509 -inform DER -in $k.der) >/dev/null || fail "$k chain"
done
expect_rc 0 "verify ekb accepts eks7.img" "$FUSELINE" verify ekb eks7.img --keyset b.json
pass "--new-eps-seed: a token-made seed only inside the EKB, and the EK certificates belong to it"
for f in "$T/out" "$T/err" b.json d_rsa.der d_ec.der d_csr_rsa.der d_csr_ec.der l.db; do
  assert_absent "$KDK0" "$f"
  assert_absent "1ddec3e2099bd546038b642c232d7cd045f874db" "$f"
done
pass "no KDK0 or EPS in any output"
# Refusals: a device without a KDK0, a short EPS seed, mixed modes; nothing written.
expect_rc 2 "--eps-seed for a device without a KDK0" "$FUSELINE" ftpm-ek-cert --keyset b.json \
  --sn 123400c0ffee12345679 --eps-seed "$B/eps_seed.hex" --out-rsa n_rsa.der --out-ec n_ec.der
expect_err "run ftpm-device first"
head -c 62 "$B/eps_seed.hex" > short.hex
expect_rc 2 "--eps-seed of 31 bytes" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" --eps-seed short.hex \
  --out-rsa n_rsa.der --out-ec n_ec.der
expect_err "short.hex"
expect_rc 2 "--eps-seed with --csr" "$FUSELINE" ftpm-ek-cert --keyset b.json --sn "$SN" --eps-seed "$B/eps_seed.hex" \
  --csr "$B/ek_csr_ec.der" --out-rsa n_rsa.der --out-ec n_ec.der
[ ! -e n_rsa.der ] && [ ! -e n_ec.der ] || fail "a refused run wrote a certificate"
pass "refused --eps-seed runs write nothing"
expect_rc 7 "the same device again" "$FUSELINE" ftpm-device --keyset b.json --oem-id 0x1234 --sn 0x00c0ffee12345678 \
  --fuse-out dev2.xml
[ ! -e dev2.xml ] || fail "dev2.xml written"
# Made in the token (no import): the fuse XML holds the token's value.
expect_rc 0 "ftpm-device, KDK0 from the token" "$FUSELINE" ftpm-device --keyset b.json --oem-id 0x1234 --sn 7 \
  --fuse-out dev7.xml --json
pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
  --label b-ftpm-kdk0-12340000000000000007 -o k7.bin >/dev/null 2>&1 || fail "KDK0 object not in the token"
grep -q "value=\"0x$(xxd -p -c 64 k7.bin)\"" dev7.xml || fail "Kdk0 in the XML is not the token's value"
assert_absent "$(xxd -p -c 64 k7.bin)" "$T/out" "$T/err" b.json
pass "generated KDK0 lives in the token and in the 0600 fuse XML only"
# Numbers are decimal or 0x hex: --sn 010 is ten (base-0 parsing made it 8).
expect_rc 0 "ftpm-device --sn 010 (decimal)" "$FUSELINE" ftpm-device --keyset b.json --oem-id 0x1234 --sn 010 \
  --fuse-out dev10.xml --ecid 0x80012344705DF1172C0000000D020080
# --ecid is kept with the role (as the ledger writes ECIDs), so a station knows whose KDK0 it is.
[ "$(jget b.json '[k["ecid"] for k in d["keys"] if k["role"]=="ftpm-kdk0-1234000000000000000a"][0]')" = \
  80012344705df1172c0000000d020080 ] ||
  fail "the role does not keep the ECID: $(jget b.json '[k for k in d["keys"] if k["role"]=="ftpm-kdk0-1234000000000000000a"][0]')"
grep -q 'name="OdmId"[^>]*value="0x000000000000000a"' dev10.xml || fail "--sn 010 is not ten: $(grep OdmId dev10.xml)"
expect_rc 2 "ftpm-device --sn -1" "$FUSELINE" ftpm-device --keyset b.json --oem-id 0x1234 --sn -1 --fuse-out devm.xml
expect_err "--sn '-1'"
pass "ftpm-device: --sn 010 is decimal ten, a sign is refused"
# A production keyset never takes an imported KDK0.
expect_rc 0 "production keyset" "$FUSELINE" keygen --import-hex "$B/oem_k2.key" --role oem-k2 --chip t234 --name p --out p.json
expect_rc 6 "production keyset refuses --kdk0-import" "$FUSELINE" ftpm-device --keyset p.json --oem-id 1 --sn 1 \
  --fuse-out p.xml --kdk0-import kdk0.hex
expect_err "lab keysets"

# verify ekb checks the fTPM records: SN (91), EK certificates (93/94) as the
# EK profile issues them, their chain to the EK CA and, with the device's
# KDK0 in the token, that their keys are the EKs KDK0 and the EPS seed give.
FV=$(cat "$B/fv_ekb_t234"); K2=$(cat "$B/oem_k2.key")
expect_rc 0 "verify ekb --sn: a good per-device EKB" "$FUSELINE" verify ekb d_eks.img --keyset b.json --fv "$FV" --sn "$SN"
grep -q "^tag 91 .*OK.*$SN (as asked)" "$T/out" || fail "tag 91 not reported as the asked SN: $(cat "$T/out")"
grep -q "^tag 93 .*OK.*issued by the keyset's EK CA, the RSA EK of KDK0 and tag 92" "$T/out" || fail "tag 93 not fully checked"
grep -q "^tag 94 .*OK.*issued by the keyset's EK CA, the EC EK of KDK0 and tag 92" "$T/out" || fail "tag 94 not fully checked"
assert_absent "$KDK0" "$T/out" "$T/err"; assert_absent "$(cat "$B/eps_seed.hex")" "$T/out" "$T/err"
expect_rc 0 "verify ekb --sn (2.0, token-made seed)" "$FUSELINE" verify ekb eks7.img --keyset b.json --sn "$DEV7" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r={x["tag"]:x for x in d["records"]}; assert all(r[t]["ok"] for t in (91,92,93,94)) and "KDK0" in r[93]["note"] and "KDK0" in r[94]["note"], r' "$T/out" \
  || fail "eks7.img records not all checked"
assert_absent "$SEED7" "$T/out" "$T/err"
pass "a good per-device EKB verifies: SN, EK profile, chain, keys re-derived from KDK0 and tag 92; no secret shown"
expect_rc 5 "verify ekb --sn of another device" "$FUSELINE" verify ekb d_eks.img --keyset b.json --fv "$FV" --sn "$DEV7"
expect_err "tag 91 (fTPM serial number): $SN, not the device asked for ($DEV7)"
# The rewriter itself: no change gives the same bytes (it is a faithful writer).
python3 "$SRCDIR/tests/tools/ekb-forge.py" d_eks.img "$K2" "$FV" same.img || fail "ekb-forge"
cmp same.img d_eks.img || fail "ekb-forge without changes does not reproduce the image"
forge() { local out=$1; shift; python3 "$SRCDIR/tests/tools/ekb-forge.py" d_eks.img "$K2" "$FV" "$out" "$@" || fail "forge $out"; }
forge swapped.img set:93:d_ec.der set:94:d_rsa.der
expect_rc 5 "swapped EK certificates" "$FUSELINE" verify ekb swapped.img --keyset b.json --fv "$FV"
expect_err "tag 93 (fTPM RSA EK certificate): the certificate's key is EC-256; the RSA EK is RSA-2048 (the RSA and EC certificates are swapped?)"
grep -q "PROBLEM  tag 94 (fTPM EC EK certificate): the certificate's key is RSA-2048" "$T/out" || fail "tag 94 not named"
forge shortsn.img trunc:91:9
expect_rc 5 "truncated SN" "$FUSELINE" verify ekb shortsn.img --keyset b.json --fv "$FV"
expect_err "tag 91 (fTPM serial number): 9 bytes; the Device_SN is 10 bytes"
forge bigsn.img set:91:<(printf '\x12\x34\x80\xc0\xff\xee\x12\x34\x56\x78')
expect_rc 5 "SN not below 2^63" "$FUSELINE" verify ekb bigsn.img --keyset b.json --fv "$FV"
expect_err "tag 91 (fTPM serial number): 123480c0ffee12345678: the SN part is not below 2^63"
# A certificate for this device's CSR from another keyset's EK CA.
expect_rc 0 "another keyset" "$FUSELINE" keygen --import-hex "$B/oem_k2.key" --role oem-k2 --chip t234 --name c --lab --out c.json
expect_rc 0 "another EK CA" "$FUSELINE" keygen --ftpm-ek-ca --keyset c.json --subject "/O=Other/CN=Other fTPM EK CA"
expect_rc 0 "its RSA EK certificate" "$FUSELINE" ftpm-ek-cert --keyset c.json --sn "$SN" --csr d_csr_rsa.der --out o_rsa.der
cmp <(openssl x509 -inform DER -in o_rsa.der -noout -pubkey) <(openssl x509 -inform DER -in d_rsa.der -noout -pubkey) \
  || fail "the other CA's certificate is not for the same key"
forge otherca.img set:93:o_rsa.der
expect_rc 5 "EK certificate from another CA" "$FUSELINE" verify ekb otherca.img --keyset b.json --fv "$FV"
expect_err "tag 93 (fTPM RSA EK certificate): not issued by the keyset's EK CA /O=Test/CN=Test fTPM EK CA (issuer /O=Other/CN=Other fTPM EK CA)"
[ "$(grep -c PROBLEM "$T/out")" = 1 ] || fail "another CA: only the chain may fail: $(cat "$T/out")"
# Device 0x77's EC certificate in this device's EKB: another subject, another key.
forge otherdev.img set:94:e7.der
expect_rc 5 "EK certificate of another device" "$FUSELINE" verify ekb otherdev.img --keyset b.json --fv "$FV"
expect_err "tag 94 (fTPM EC EK certificate): the certificate is for device $DEV7 (CN ${DEV7}_ftpm-ek-cert), not for this device $SN"
grep -q "PROBLEM  tag 94 (fTPM EC EK certificate): its key is not the EC EK this device's KDK0" "$T/out" \
  || fail "another device's EK key not named"
# This device's certificates with another EPS seed: the subject is right, the keys are not the seed's.
head -c 32 /dev/urandom > seed2.bin
forge otherseed.img set:92:seed2.bin
expect_rc 5 "EK certificates not of the EPS seed in the image" "$FUSELINE" verify ekb otherseed.img --keyset b.json --fv "$FV"
grep -q "PROBLEM  tag 93 (fTPM RSA EK certificate): its key is not the RSA EK this device's KDK0 (ftpm-kdk0-$SN) and the EPS seed (tag 92) give" "$T/out" \
  || fail "RSA key mismatch not named"
grep -q "PROBLEM  tag 94 (fTPM EC EK certificate): its key is not the EC EK" "$T/out" || fail "EC key mismatch not named"
assert_absent "$(xxd -p -c 64 seed2.bin)" "$T/out" "$T/err"
# Without the KDK0 (keyset c.json has none) the keys are not compared, the rest is.
# A record that is not a certificate at all: invalid input (2), not a failed rule.
head -c 300 /dev/urandom > junk.bin
forge junk.img set:94:junk.bin
expect_rc 2 "tag 94 that is no certificate" "$FUSELINE" verify ekb junk.img --keyset b.json --fv "$FV"
expect_err "tag 94 (fTPM EC EK certificate): 300 bytes that are not an X.509 certificate (DER)"
forge nosn.img drop:91
expect_rc 5 "fTPM records without tag 91" "$FUSELINE" verify ekb nosn.img --keyset b.json --fv "$FV"
expect_err "tag 91 (fTPM serial number): missing"
pass "verify ekb names the record: swapped, truncated/out-of-range SN, other CA, other device, other seed, junk, missing SN"

# The ledger: SN, certificate fingerprints, EKB hash; no key, seed or KDK.
expect_rc 0 "ledger export" "$FUSELINE" ledger export --db l.db
grep -q "$SN" "$T/out" || fail "SN not recorded"
grep -q "$(sha256sum ek_rsa.der | cut -c1-64)" "$T/out" || fail "RSA EK cert fingerprint not recorded"
grep -q "$(sha256sum ek_ec.der | cut -c1-64)" "$T/out" || fail "EC EK cert fingerprint not recorded"
grep -q "$(sha256sum d_rsa.der | cut -c1-64)" "$T/out" || fail "derived RSA EK cert fingerprint not recorded"
grep -q "$(sha256sum d_ec.der | cut -c1-64)" "$T/out" || fail "derived EC EK cert fingerprint not recorded"
grep -q "$(sha256sum eks7.img | cut -c1-64)" "$T/out" || fail "--ekb-out EKB hash not recorded"
grep -q "$(sha256sum "eks_$SN.img" | cut -c1-64)" "$T/out" || fail "EKB hash not recorded"
grep -q "$(cut -d' ' -f3 "$B/pubkey_db.csv" | tr -d '\r')" "$T/out" || fail "Silicon-ID public key not recorded"
assert_absent "$(cat "$B/eps_seed.hex")" "$T/out" l.db
assert_absent "$KDK0" "$T/out" l.db
assert_absent "$(cat "$B/oem_k2.key")" "$T/out" l.db
pass "ledger: SN, EK certificate fingerprints, EKB hash; no secret"
done_testing
