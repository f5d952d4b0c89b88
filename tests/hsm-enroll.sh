#!/usr/bin/env bash
# keygen --identity-ca, enroll and verify cert on a SoftHSM2 token, checked
# by independent tools: device keys and CSRs come from the openssl CLI; the
# certificates are verified by `openssl verify` and GnuTLS `certtool
# --verify-chain`, their fields read with `openssl x509 -text` and `openssl
# asn1parse`; token objects listed with p11tool; the ledger read and
# tampered with the sqlite3 CLI and its chain recomputed by
# tests/tools/ledger-chain.py. On PostgreSQL (hsm-enroll-pg, tests/lib-ledger.sh)
# the ledgers are databases read and tampered with by psql.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-ledger.sh"
lab_token
F=$FUSELINE
export FUSELINE_DB FUSELINE_STATION=st1 FUSELINE_OPERATOR=alice
if is_pg; then FUSELINE_DB=$(ldb line); CORP_DB=$(ldb corp); else FUSELINE_DB=$T/line.db; CORP_DB=corp/line.db; fi
E1=80012344705df1172c0000000d020080
E2=80012344705df1172c0000000d020081
HMN_PLACEHOLDER=1.3.6.1.4.1.32473.1.1

sha_der() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
spki_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
spki_of_csr() { openssl req -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
csr() { # name keyspec... : key NAME.key and CSR NAME.csr, made by openssl
  local n=$1; shift
  openssl genpkey "$@" -out "$n.key" 2>/dev/null || fail "openssl genpkey $*"
  openssl req -new -key "$n.key" -subj "/CN=device asks for this/O=Evil" \
    -addext "subjectAltName=DNS:evil.example" -out "$n.csr" 2>/dev/null || fail "openssl req $n"
}
sq() { lsql line "$@"; }
nocert() { [ ! -e "$1" ] || fail "$1 was written although the command failed"; }

# ---- help -------------------------------------------------------------------------
expect_rc 0 "enroll --help" "$F" enroll --help
grep -q "Examples:" "$T/out" || fail "enroll --help has no examples"
expect_rc 0 "verify cert --help" "$F" verify cert --help
grep -q "Examples:" "$T/out" || fail "verify cert --help has no examples"
expect_rc 0 "keygen --identity-ca --help" "$F" keygen --identity-ca --help
grep -q -- "--csr-out" "$T/out" || fail "keygen --identity-ca --help lacks --csr-out"
expect_rc 2 "enroll without --keyset" "$F" enroll --ecid $E1 --csr x.csr --out x.pem
expect_rc 2 "enroll with --csr and --generate-key" "$F" enroll --keyset k.json --ecid $E1 --csr x.csr \
  --generate-key p256 --out x.pem

# ---- the identity CA -----------------------------------------------------------------
run "$F" keygen --chip t234 --pkc p256 --name acme --lab --out ks.json
[ "$RC" -eq 0 ] || fail "keygen: $(cat "$T/err")"
expect_rc 0 "keygen --identity-ca" "$F" keygen --identity-ca --keyset ks.json \
  --subject "/O=Acme Robotics/CN=Acme Device CA" --json
CA=$T/ks-identity-ca.crt
[ -f "$CA" ] || fail "ks-identity-ca.crt not written next to the keyset"
I=$(jget ks.json '[k["role"] for k in d["keys"]].index("identity-ca")')
[ "$(jget ks.json "d['keys'][$I]['type']")" = p384 ] || fail "identity CA is not P-384 by default"
[ "$(jget ks.json "d['keys'][$I]['certificate']")" = ks-identity-ca.crt ] || fail "certificate path not recorded"
[ "$(jget ks.json "d['keys'][$I]['certificate_sha256']")" = "$(sha_der "$CA")" ] || fail "certificate_sha256 differs from openssl's"
[ "$(jget ks.json "d['keys'][$I]['public_key_sha256']")" = "$(spki_of_cert "$CA")" ] || fail "public_key_sha256 differs"
[ "$(jget ks.json "d['keys'][$I]['hw_type_oid']")" = $HMN_PLACEHOLDER ] || fail "hw_type_oid not recorded"
[ "$(jget "$T/out" 'd["certificate_sha256"]')" = "$(sha_der "$CA")" ] || fail "--json certificate_sha256"
# A second keyset in the same directory gets its own CA, named after it
# (a fixed identity-ca.crt made this a conflict, exit 7).
run "$F" keygen --chip t234 --pkc p256 --name acme2 --lab --out ks2.json
[ "$RC" -eq 0 ] || fail "keygen ks2: $(cat "$T/err")"
expect_rc 0 "keygen --identity-ca for a second keyset beside the first" "$F" keygen --identity-ca --keyset ks2.json \
  --subject "/O=Acme Robotics/CN=Acme Device CA 2" --curve p256
[ -f ks2-identity-ca.crt ] || fail "ks2-identity-ca.crt not written"
[ "$(jget ks2.json '[k["certificate"] for k in d["keys"] if k["role"]=="identity-ca"][0]')" = ks2-identity-ca.crt ] \
  || fail "ks2: certificate name not recorded"
[ "$(spki_of_cert ks2-identity-ca.crt)" != "$(spki_of_cert "$CA")" ] || fail "the two CAs share a key"
openssl x509 -in "$CA" -noout -subject | grep -q "CN *= *Acme Device CA$" || fail "the first CA certificate was touched"
pass "two keysets in one directory, each with its own CA certificate named after it"
pass "identity CA recorded in the keyset; hashes agree with openssl"
CALABEL=$(jget ks.json "d['keys'][$I]['label']")
p11tool --login --list-privkeys "pkcs11:token=lab;object=$CALABEL" > "$T/p" 2>/dev/null || fail "p11tool lists no $CALABEL"
grep -q CKA_SENSITIVE "$T/p" && grep -q CKA_NEVER_EXTRACTABLE "$T/p" || fail "CA key is extractable or not sensitive"
grep -q "Type: Private key (EC/ECDSA-SECP384R1)" "$T/p" || fail "CA key is not P-384: $(cat "$T/p")"
pass "CA key: P-384, sensitive, never extractable (p11tool)"
openssl x509 -in "$CA" -noout -text > "$T/catext"
grep -q "CA:TRUE, pathlen:0" "$T/catext" || fail "CA basicConstraints"
grep -A1 "Basic Constraints: critical" "$T/catext" >/dev/null || fail "basicConstraints not critical"
grep -A1 "Key Usage: critical" "$T/catext" | grep -q "Certificate Sign, CRL Sign" || fail "CA keyUsage"
grep -q "Not After : Dec 31 23:59:59 9999 GMT" "$T/catext" || fail "CA notAfter"
openssl verify -CAfile "$CA" "$CA" >/dev/null || fail "CA certificate does not verify itself"
pass "CA certificate: CA:TRUE pathlen 0, keyCertSign+cRLSign, self-signed (openssl)"
cp ks.json ks.before
expect_rc 7 "keygen --identity-ca again" "$F" keygen --identity-ca --keyset ks.json --subject "/CN=x"
expect_err "identity-ca"
cmp -s ks.json ks.before || fail "a refused keygen --identity-ca changed the keyset"
mkdir other && cp ks.before other/ks.json
python3 - other/ks.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); d["keys"] = [k for k in d["keys"] if k["role"] != "identity-ca"]
json.dump(d, open(sys.argv[1], "w"))
EOF
expect_rc 7 "keygen --identity-ca onto an existing token label" "$F" keygen --identity-ca --keyset other/ks.json \
  --subject "/CN=x"
expect_err "$CALABEL"
[ ! -e other/ks-identity-ca.crt ] || fail "a refused keygen left ks-identity-ca.crt"
expect_rc 2 "keygen --identity-ca with a bad subject" "$F" keygen --identity-ca --keyset other/ks.json \
  --subject "no-slash" --label x1
expect_rc 2 "keygen --identity-ca with a bad --hw-type-oid" "$F" keygen --identity-ca --keyset other/ks.json \
  --subject "/CN=x" --hw-type-oid 1.2.x --label x2
expect_rc 2 "keygen --identity-ca --curve p521" "$F" keygen --identity-ca --keyset other/ks.json --subject "/CN=x" \
  --curve p521

# ---- enroll from device CSRs ------------------------------------------------------------
csr p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
csr p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
csr p521 -algorithm EC -pkeyopt ec_paramgen_curve:P-521
csr rsa2k -algorithm RSA -pkeyopt rsa_keygen_bits:2048
n=0
for k in p256 p384 p521 rsa2k; do
  n=$((n + 1)); ecid=$(printf '80012344705df1172c0000000d02%04x' $n)
  expect_rc 0 "enroll $k CSR" "$F" enroll --keyset ks.json --ecid "0x${ecid^^}" --serial "SN-$n" \
    --product "Acme Orin" --csr $k.csr --out $k.pem --json
  [ "$(jget "$T/out" 'd["fingerprint"]')" = "$(sha_der $k.pem)" ] || fail "$k: --json fingerprint is not openssl's"
  [ "$(jget "$T/out" 'd["ecid"]')" = "$ecid" ] || fail "$k: ECID not normalised to lower case"
  jget "$T/out" 'd["pem"]' | cmp -s - <(cat $k.pem; echo) || fail "$k: --json pem differs from --out"
  [ "$(stat -c %a $k.pem)" = 644 ] || fail "$k.pem mode"
  openssl verify -CAfile "$CA" $k.pem > "$T/v" 2>&1 || fail "openssl verify $k: $(cat "$T/v")"
  openssl verify -CAfile "$CA" -purpose sslclient -x509_strict $k.pem >/dev/null 2>&1 || fail "openssl verify -purpose sslclient $k"
  cat $k.pem "$CA" > chain.pem
  certtool --verify-chain --infile chain.pem > "$T/v" 2>&1 || fail "certtool --verify-chain $k: $(cat "$T/v")"
  grep -q "Chain verification output: Verified" "$T/v" || fail "certtool did not verify $k"
  pass "$k: openssl verify and certtool --verify-chain accept it"

  openssl x509 -in $k.pem -noout -text > "$T/x"
  grep -q "Subject: O = Acme Robotics, CN = Acme Orin SN-$n, serialNumber = $ecid$" "$T/x" || fail "$k subject: $(grep Subject: "$T/x")"
  grep -q "Issuer: O = Acme Robotics, CN = Acme Device CA" "$T/x" || fail "$k issuer"
  grep -q "Not After : Dec 31 23:59:59 9999 GMT" "$T/x" || fail "$k notAfter"
  if [ $k = rsa2k ]; then want="Digital Signature$"; else want="Digital Signature, Key Agreement$"; fi
  grep -A1 "Key Usage: critical" "$T/x" | tail -1 | grep -q "$want" || fail "$k keyUsage"
  grep -A1 "Extended Key Usage" "$T/x" | tail -1 | grep -q "^ *TLS Web Client Authentication$" || fail "$k EKU"
  grep -q "Subject Key Identifier" "$T/x" || fail "$k SKI"
  aki=$(grep -A1 "Authority Key Identifier" "$T/x" | tail -1 | tr -d ' ' | sed 's/^keyid://')
  caski=$(openssl x509 -in "$CA" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ')
  [ "$aki" = "$caski" ] || fail "$k AKI $aki is not the CA's SKI $caski"
  grep -q "Basic Constraints" "$T/x" && fail "$k has basicConstraints"
  grep -q "evil" "$T/x" && fail "$k took subject or SAN from the CSR"
  ser=$(openssl x509 -in $k.pem -noout -serial | cut -d= -f2)
  [ ${#ser} -eq 32 ] || fail "$k serial $ser is not 16 bytes"
  case ${ser:0:1} in [0-7]) ;; *) fail "$k serial $ser is negative";; esac
  [ "$(spki_of_cert $k.pem)" = "$(spki_of_csr $k.csr)" ] || fail "$k certificate key is not the CSR's"
  # notAfter as GeneralizedTime, SAN hardwareModuleName, decoded by asn1parse
  openssl asn1parse -in $k.pem > "$T/a"
  grep -q "GENERALIZEDTIME   :99991231235959Z" "$T/a" || fail "$k notAfter is not GeneralizedTime 99991231235959Z"
  off=$(grep -A1 "X509v3 Subject Alternative Name" "$T/a" | tail -1 | cut -d: -f1 | tr -d ' ')
  openssl asn1parse -in $k.pem -strparse "$off" > "$T/san"
  grep -q "OBJECT            :1.3.6.1.5.5.7.8.4\|OBJECT            :.*[Hh]ardware[Mm]odule[Nn]ame" "$T/san" || fail "$k SAN has no hardwareModuleName: $(cat "$T/san")"
  grep -q "OBJECT            :$HMN_PLACEHOLDER" "$T/san" || fail "$k hwType: $(cat "$T/san")"
  grep -q "OCTET STRING      \[HEX DUMP\]:${ecid^^}$" "$T/san" || fail "$k hwSerialNum: $(cat "$T/san")"
  [ "$(grep -c 'cont \[ 0 \]' "$T/san")" -eq 2 ] || fail "$k otherName framing: $(cat "$T/san")"
  pass "$k: profile fields (openssl x509 -text) and hardwareModuleName (asn1parse) are right"

  expect_rc 0 "verify cert $k" "$F" verify cert $k.pem --keyset ks.json --json
  [ "$(jget "$T/out" 'd["ok"] and d["chain"] and d["profile"] and d["ledger"] is True')" = True ] || fail "verify cert $k: $(cat "$T/out")"
  # the ledger, read with its own client (sqlite3 or psql)
  [ "$(sq "SELECT fingerprint || ' ' || status FROM certificates WHERE ecid = '$ecid'")" = "$(sha_der $k.pem) valid" ] \
    || fail "$k: ledger certificate row"
  [ "$(sq "SELECT state || ' ' || serial || ' ' || chip FROM devices WHERE ecid = '$ecid'")" = "enrolled SN-$n t234" ] \
    || fail "$k: ledger device row"
  [ "$(sq "SELECT outcome FROM events WHERE ecid = '$ecid' AND command = 'enroll'")" = ok ] || fail "$k: ledger event"
done
cp p256.pem e1.pem; E1=80012344705df1172c0000000d020001

# ---- idempotency, conflict, reissue --------------------------------------------------------
expect_rc 0 "enroll again with the same CSR" "$F" enroll --keyset ks.json --ecid "${E1^^}" --serial SN-1 \
  --product "Acme Orin" --csr p256.csr --out again.pem
grep -q "already enrolled" "$T/out" || fail "re-run does not say already enrolled"
cmp -s again.pem e1.pem || fail "re-run returned another certificate"
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$E1'")" -eq 1 ] || fail "re-run added a certificate"
[ "$(sq "SELECT outcome FROM events WHERE ecid = '$E1' ORDER BY id DESC LIMIT 1")" = already-enrolled ] || fail "re-run not recorded"
pass "idempotent re-run returns the same certificate and records already-enrolled"
csr other -algorithm EC -pkeyopt ec_paramgen_curve:P-256
expect_rc 7 "enroll the same ECID with another key" "$F" enroll --keyset ks.json --ecid $E1 --serial SN-1 \
  --product "Acme Orin" --csr other.csr --out other.pem
expect_err "$E1"; expect_err "--reissue"
nocert other.pem
expect_rc 7 "enroll the same key with another factory serial" "$F" enroll --keyset ks.json --ecid $E1 --serial SN-9 \
  --product "Acme Orin" --csr p256.csr --out other.pem
expect_err "different subject"
nocert other.pem
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$E1'")" -eq 1 ] || fail "a conflict added a certificate"
[ "$(sq "SELECT outcome FROM events WHERE ecid = '$E1' ORDER BY id DESC LIMIT 1")" = conflict ] || fail "conflict not recorded"
expect_rc 0 "enroll --reissue with the new key" "$F" enroll --keyset ks.json --ecid $E1 --serial SN-1 \
  --product "Acme Orin" --csr other.csr --out other.pem --reissue --json
[ "$(jget "$T/out" 'd["outcome"]')" = reissued ] || fail "--reissue outcome"
[ "$(jget "$T/out" 'd["superseded"]')" = "$(sha_der e1.pem)" ] || fail "--reissue does not name the superseded certificate"
[ "$(sq "SELECT status FROM certificates WHERE fingerprint = '$(sha_der e1.pem)'")" = superseded ] || fail "old not superseded"
[ "$(sq "SELECT status FROM certificates WHERE fingerprint = '$(sha_der other.pem)'")" = valid ] || fail "new not valid"
pass "--reissue supersedes the old certificate in the ledger ($LB client)"
expect_rc 5 "verify cert on the superseded certificate" "$F" verify cert e1.pem --keyset ks.json
expect_err "superseded"
expect_rc 0 "verify cert on the reissued certificate" "$F" verify cert other.pem --keyset ks.json
FUSELINE_DB= expect_rc 0 "verify cert without a ledger" "$F" verify cert e1.pem --keyset ks.json
grep -q "ledger   not checked" "$T/out" || fail "verify cert without a ledger does not say so"
expect_rc 0 "enroll again after the reissue" "$F" enroll --keyset ks.json --ecid $E1 --serial SN-1 \
  --product "Acme Orin" --csr other.csr --out other2.pem
cmp -s other.pem other2.pem || fail "re-run after reissue returned another certificate"

# ---- --generate-key -------------------------------------------------------------------------
EG=80012344705df1172c0000000d0200ff
expect_rc 0 "enroll --generate-key p256" "$F" enroll --keyset ks.json --ecid $EG --generate-key p256 --out gen.pem --json
LBL=acme-idevid-$EG
p11tool --login --list-privkeys "pkcs11:token=lab;object=$LBL" > "$T/p" 2>/dev/null || fail "p11tool lists no $LBL"
grep -q "CKA_EXTRACTABLE" "$T/p" || fail "generated device key is not extractable (for injection)"
p11tool --export-pubkey "pkcs11:token=lab;object=$LBL;type=public" > gen.pub 2>/dev/null || fail "p11tool export"
[ "$(openssl pkey -pubin -in gen.pub -outform DER | sha256sum | cut -d' ' -f1)" = "$(spki_of_cert gen.pem)" ] \
  || fail "certificate key is not the token key p11tool exports"
openssl verify -CAfile "$CA" gen.pem >/dev/null || fail "openssl verify gen.pem"
grep -q "CN = acme, serialNumber = $EG" <(openssl x509 -in gen.pem -noout -subject) || fail "default product CN"
pass "--generate-key: extractable token key, certificate carries it (p11tool)"
expect_rc 0 "enroll --generate-key again" "$F" enroll --keyset ks.json --ecid $EG --generate-key p256 --out gen2.pem
grep -q "already enrolled" "$T/out" || fail "--generate-key re-run is not idempotent"
cmp -s gen.pem gen2.pem || fail "--generate-key re-run gave another certificate"
[ "$(p11tool --login --list-privkeys 'pkcs11:token=lab' 2>/dev/null | grep -c "Label: $LBL")" -eq 1 ] || fail "re-run made a key"
expect_rc 0 "enroll --generate-key --reissue" "$F" enroll --keyset ks.json --ecid $EG --generate-key p256 --out gen3.pem --reissue
p11tool --login --list-privkeys "pkcs11:token=lab;object=$LBL-2" >/dev/null 2>&1 || fail "reissue made no new key $LBL-2"
[ "$(spki_of_cert gen3.pem)" != "$(spki_of_cert gen.pem)" ] || fail "reissue kept the key"

# ---- bad input --------------------------------------------------------------------------------
EB=80012344705df1172c0000000d0200ee
bad_csr() { # exit what file fragment
  expect_rc "$1" "$2" "$F" enroll --keyset ks.json --ecid $EB --csr "$3" --out bad.pem
  expect_err "$4"; nocert bad.pem
}
echo "hello, I am not a CSR" > garbage.txt
openssl req -in p256.csr -outform DER -out p256.der
head -c 100 p256.der > trunc.der
head -c 300 /dev/urandom > random.der
{ echo "-----BEGIN CERTIFICATE REQUEST-----"; echo "AAAAgarbage"; echo "-----END CERTIFICATE REQUEST-----"; } > badpem.csr
python3 -c 'import sys; d=bytearray(open("p256.der","rb").read()); d[-5]^=1; open("badsig.der","wb").write(d)'
cat p256.der p256.der > twice.der
csr rsa1k -algorithm RSA -pkeyopt rsa_keygen_bits:1024
csr k1 -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1
csr ed -algorithm ED25519
openssl ecparam -name prime256v1 -genkey -noout -param_enc explicit -out expl.key 2>/dev/null
openssl req -new -key expl.key -subj /CN=x -out expl.csr 2>/dev/null || fail "explicit-curve CSR"
# --out is checked before anything is issued: no certificate, no ledger row.
EO=80012344705df1172c0000000d0200ef
mkdir -p outdir
for o in outdir nosuchdir/x.pem; do
  expect_rc 2 "enroll --out $o refused before issuing" "$F" enroll --keyset ks.json --ecid $EO --csr p256.csr --out $o --json
  grep -q -- "--out $o" "$T/err" || fail "--out $o: the path is not named"
  [ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$EO'")" -eq 0 ] || fail "--out $o: a certificate was issued"
  [ "$(sq "SELECT count(*) FROM events WHERE ecid = '$EO'")" -eq 0 ] || fail "--out $o: an event was recorded"
done
expect_rc 2 "enroll --batch --out-dir that is a file" "$F" enroll --keyset ks.json --batch p256.csr --out-dir p256.csr
grep -q -- "--out-dir p256.csr: not a directory" "$T/err" || fail "--out-dir file not named"
pass "enroll: an unusable --out/--out-dir is exit 2 before any certificate is issued or recorded"
# A write that still fails (here a file name too long for the file system,
# which no check beforehand sees): the result says the certificate exists.
long=$(printf 'c%.0s' $(seq 300)).pem
run "$F" enroll --keyset ks.json --ecid $EO --csr p256.csr --out "$long" --json
[ "$RC" -ne 0 ] || fail "unwritable --out: exit 0"
grep -q "WAS issued and recorded" "$T/err" || fail "unwritable --out: the error does not say the certificate exists"
python3 - "$T/out" "$RC" <<'PY' || fail "unwritable --out: the JSON does not carry the issued certificate"
import json, sys
l = open(sys.argv[1]).read().splitlines()
assert len(l) == 1, l
o = json.loads(l[0])
assert o["ok"] is False and o["outcome"] == "issued" and o["written"] is False, o
assert o["exit_code"] == int(sys.argv[2]) and "WAS issued" in o["error"], o
assert o["pem"].startswith("-----BEGIN CERTIFICATE-----") and o["fingerprint"], o
PY
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$EO'")" -eq 1 ] || fail "the certificate is not in the ledger"
expect_rc 0 "re-run with a good --out returns it" "$F" enroll --keyset ks.json --ecid $EO --csr p256.csr --out eo.pem
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$EO'")" -eq 1 ] || fail "the re-run issued another certificate"
pass "enroll: a write failing after issue says the certificate exists, carries it in --json, a re-run returns it"
# The overwrite rule: an existing --out is exit 7, naming it, before anything is issued or recorded.
EX=80012344705df1172c0000000d0200ed
printf 'keep\n' > taken.pem
expect_rc 7 "enroll --out exists" "$F" enroll --keyset ks.json --ecid $EX --csr p256.csr --out taken.pem
expect_err "taken.pem exists already; give --force to replace it"
[ "$(cat taken.pem)" = keep ] || fail "an existing --out was changed"
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$EX'")" -eq 0 ] || fail "--out exists: a certificate was issued"
[ "$(sq "SELECT count(*) FROM events WHERE ecid = '$EX'")" -eq 0 ] || fail "--out exists: an event was recorded"
expect_rc 0 "enroll --out exists, --force" "$F" enroll --keyset ks.json --ecid $EX --csr p256.csr --out taken.pem --force
openssl verify -CAfile ks-identity-ca.crt taken.pem >/dev/null || fail "--force: taken.pem does not verify"
# A re-run (already enrolled) writes the same file again only with --force.
cp taken.pem first.pem
expect_rc 7 "enroll re-run onto its own --out" "$F" enroll --keyset ks.json --ecid $EX --csr p256.csr --out taken.pem
expect_rc 0 "enroll re-run, --force" "$F" enroll --keyset ks.json --ecid $EX --csr p256.csr --out taken.pem --force
cmp -s taken.pem first.pem || fail "the re-run returned another certificate"
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$EX'")" -eq 1 ] || fail "the re-run issued another certificate"
pass "enroll --out: an existing file is exit 7, nothing issued or recorded; --force replaces it"
bad_csr 2 "malformed CSR (text)" garbage.txt garbage.txt
bad_csr 2 "truncated CSR" trunc.der trunc.der
bad_csr 2 "DER garbage CSR" random.der random.der
bad_csr 2 "PEM armour around garbage" badpem.csr badpem.csr
bad_csr 2 "CSR with trailing data" twice.der "trailing data"
bad_csr 5 "CSR with a bad self-signature" badsig.der "signature does not verify"
bad_csr 2 "RSA-1024 CSR" rsa1k.csr "too weak"
bad_csr 2 "secp256k1 CSR" k1.csr "secp256k1"
bad_csr 2 "Ed25519 CSR" ed.csr "ED25519"
bad_csr 2 "explicit-curve CSR" expl.csr "explicit"
bad_csr 2 "missing CSR" nonexistent.csr nonexistent.csr
[ "$(sq "SELECT count(*) FROM certificates WHERE ecid = '$EB'")" -eq 0 ] || fail "a bad CSR got a certificate"
[ "$(sq "SELECT count(*) FROM events WHERE ecid = '$EB' AND outcome = 'failed'")" -eq 11 ] || fail "failures not recorded"
pass "every refused CSR is recorded as a failed enroll event"
for e in "zz012344705df1172c0000000d020080" "80012344705df1172c0000000d02008" "80012344705df1172c0000000d0200800" \
         "0x" "8001 2344705df1172c0000000d020080"; do
  expect_rc 2 "ECID '$e'" "$F" enroll --keyset ks.json --ecid "$e" --csr p256.csr --out bad.pem
  expect_err "'$e'"; nocert bad.pem
done
expect_rc 2 "unknown CA role" "$F" enroll --keyset ks.json --ca-role nope --ecid $EB --csr p256.csr --out bad.pem
expect_err "no key with role 'nope'"; nocert bad.pem
expect_rc 2 "a PKC key as CA role" "$F" enroll --keyset ks.json --ca-role pkc0 --ecid $EB --csr p256.csr --out bad.pem
nocert bad.pem
echo "not-the-pin" > wrong.pin
expect_rc 3 "wrong PIN" "$F" enroll --keyset ks.json --pin-source "file:$T/wrong.pin" --ecid $EB --csr p256.csr --out bad.pem
nocert bad.pem
assert_absent "$GNUTLS_PIN" "$T/out" "$T/err"
echo "this is not a database, it is text and longer than a header......................................" > notsql.db
expect_rc 2 "database that is not SQLite" "$F" enroll --keyset ks.json --db notsql.db --ecid $EB --csr p256.csr --out bad.pem
expect_err "notsql.db"; nocert bad.pem
if is_pg; then
  lcopy line newer; pg_sql newer "UPDATE fuseline_ledger SET version = 99"
else
  sqlite3 "$FUSELINE_DB" ".backup newer.db"; sqlite3 newer.db "PRAGMA user_version = 99"
fi
expect_rc 2 "database from a newer schema" "$F" enroll --keyset ks.json --db "$(ldb newer)" --ecid $EB --csr p256.csr --out bad.pem
expect_err "newer"; nocert bad.pem
expect_rc 2 "missing keyset" "$F" enroll --keyset none.json --ecid $EB --csr p256.csr --out bad.pem
expect_rc 2 "product too long" "$F" enroll --keyset ks.json --ecid $EB --csr p256.csr --out bad.pem \
  --product "$(printf 'x%.0s' {1..70})"
expect_rc 2 "factory serial with a space" "$F" enroll --keyset ks.json --ecid $EB --csr p256.csr --out bad.pem --serial "A B"
nocert bad.pem
cp ks-identity-ca.crt ca.keep
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout /dev/null -subj /CN=swap -days 1 \
  -out ks-identity-ca.crt 2>/dev/null
expect_rc 5 "enroll with a swapped CA certificate file" "$F" enroll --keyset ks.json --ecid $EB --csr p256.csr --out bad.pem
expect_err "certificate_sha256"
expect_rc 5 "verify cert with a swapped CA certificate file" "$F" verify cert e1.pem --keyset ks.json
cp ca.keep ks-identity-ca.crt

# ---- verify cert against certificates that are wrong ---------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout foreign.key -subj "/O=Acme Robotics/CN=Acme Device CA" \
  -days 30 -out foreign.crt 2>/dev/null
cat > ext.cnf <<EOF
[v3]
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
type = OID:$HMN_PLACEHOLDER
serial = FORMAT:HEX,OCTETSTRING:$E1
EOF
openssl x509 -req -in p256.csr -CA foreign.crt -CAkey foreign.key -set_serial 0x4000000000000000000000000000000a \
  -days 10 -extfile ext.cnf -extensions v3 -out foreign.pem 2>/dev/null || fail "openssl x509 -req foreign"
expect_rc 5 "verify cert from another CA" "$F" verify cert foreign.pem --keyset ks.json --json
head -1 "$T/out" > "$T/o1"   # the result; main adds the error object after it
[ "$(jget "$T/o1" 'd["chain"]')" = False ] || fail "a foreign certificate chained"
grep -q "notAfter is not 99991231235959Z" "$T/out" || fail "foreign 10-day certificate passed the validity rule"
openssl x509 -in other.pem -outform DER -out other.der
python3 -c 'd=bytearray(open("other.der","rb").read()); d[-3]^=0x40; open("tamper.der","wb").write(d)'
expect_rc 5 "verify cert on a tampered signature" "$F" verify cert tamper.der --keyset ks.json
grep -q "chain    FAIL" "$T/out" || fail "tampered certificate chained"
expect_rc 2 "verify cert on garbage" "$F" verify cert garbage.txt --keyset ks.json
expect_rc 2 "verify cert with a missing ledger" "$F" verify cert other.pem --keyset ks.json --db none.db

# ---- a product's own hwType ------------------------------------------------------------------------
EH=80012344705df1172c0000000d0200aa
expect_rc 0 "enroll with --hw-type-oid" "$F" enroll --keyset ks.json --ecid $EH --csr p384.csr --out hw.pem \
  --hw-type-oid 1.3.6.1.4.1.99999.7.1
off=$(openssl asn1parse -in hw.pem | grep -A1 "X509v3 Subject Alternative Name" | tail -1 | cut -d: -f1 | tr -d ' ')
openssl asn1parse -in hw.pem -strparse "$off" | grep -q "OBJECT            :1.3.6.1.4.1.99999.7.1" || fail "hwType not used"
expect_rc 5 "verify cert expecting the recorded hwType" "$F" verify cert hw.pem --keyset ks.json
expect_err "hwType is 1.3.6.1.4.1.99999.7.1"
expect_rc 0 "verify cert with --hw-type-oid" "$F" verify cert hw.pem --keyset ks.json --hw-type-oid 1.3.6.1.4.1.99999.7.1

# ---- --batch -------------------------------------------------------------------------------------------
mkdir certs
: > list.txt
for i in 1 2 3 4 5; do
  csr b$i -algorithm EC -pkeyopt ec_paramgen_curve:P-256
  printf '80012344705df1172c0000000d03%04x b%d.csr SN-B%d\n' $i $i $i >> list.txt
done
echo "# a comment, then a device whose CSR is broken" >> list.txt
echo "0x80012344705DF1172C0000000D030099 garbage.txt" >> list.txt
expect_rc 2 "enroll --batch with one bad CSR" "$F" enroll --keyset ks.json --batch list.txt --out-dir certs --json
[ "$(grep -c '"ecid"' "$T/out")" -eq 6 ] || fail "--batch --json: expected one line per device"
tail -1 "$T/out" | grep -q '"error":"1 of 6 devices failed' || fail "--batch --json: no summary error object"
# Each device keeps its own object (its own ok and exit code); the batch's
# error and exit code go to a separate summary object, the last line.
python3 - "$T/out" <<'PY' || fail "--batch --json: not one object per device plus a summary"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert len(objs) == 7, objs
devs, summ = objs[:6], objs[6]
for o in devs:
    assert o["command"] == "enroll" and "ecid" in o and "summary" not in o, o
    if o["ok"]:
        assert o["outcome"] == "issued" and o["exit_code"] == 0 and "error" not in o, o
    else:
        assert o["line"] == 7 and o["exit_code"] == 2 and o["error"], o
assert summ["summary"] is True and summ["ok"] is False and summ["exit_code"] == 2, summ
assert (summ["total"], summ["issued"], summ["already_enrolled"], summ["failed"], summ["not_attempted"]) == (6, 5, 0, 1, 0), summ
assert "ecid" not in summ and "outcome" not in summ, summ
PY
[ "$(grep -c '"ok":true' "$T/out")" -eq 5 ] || fail "--batch: 5 devices should succeed"
grep '"ok":false' "$T/out" | grep -q '"line":7' || fail "--batch failure does not name line 7"
for i in 1 2 3 4 5; do
  e=$(printf '80012344705df1172c0000000d03%04x' $i)
  openssl verify -CAfile "$CA" certs/$e.pem >/dev/null || fail "batch cert $e"
  [ "$(spki_of_cert certs/$e.pem)" = "$(spki_of_csr b$i.csr)" ] || fail "batch cert $e has another key"
done
pass "--batch: 5 certificates verify with openssl, the bad line is reported alone"
head -5 list.txt > list5.txt
# The overwrite rule: the files from the first run are there; without --force the whole list is
# refused (exit 7, naming the first) before anything is issued; with it, the same certificates.
n0=$(sq "SELECT count(*) FROM events")
cp certs/80012344705df1172c0000000d030001.pem first1.pem
expect_rc 7 "enroll --batch again onto its own files" "$F" enroll --keyset ks.json --batch list5.txt --out-dir certs
expect_err "certs/80012344705df1172c0000000d030001.pem exists already; give --force to replace it"
[ "$(sq "SELECT count(*) FROM events")" -eq "$n0" ] || fail "a refused batch recorded events"
expect_rc 0 "enroll --batch again --force (all already enrolled but the bad one)" "$F" enroll --keyset ks.json \
  --batch list5.txt --out-dir certs --force
grep -q "0 issued, 5 already enrolled, 0 failed: PASS" "$T/out" || fail "--batch re-run: $(cat "$T/out")"
cmp -s certs/80012344705df1172c0000000d030001.pem first1.pem || fail "--batch re-run wrote another certificate"
printf '%s b1.csr\n%s b2.csr\n' $E2 $E2 > dup.txt
expect_rc 2 "--batch listing an ECID twice" "$F" enroll --keyset ks.json --batch dup.txt --out-dir certs
expect_err "listed twice"

# ---- an identity CA issued by a corporate root (--csr-out, --import-cert) ---------------------------------
mkdir corp && cp ks.before corp/ks.json
python3 - corp/ks.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); d["keys"] = [k for k in d["keys"] if k["role"] != "identity-ca"]
json.dump(d, open(sys.argv[1], "w"))
EOF
expect_rc 0 "keygen --identity-ca --csr-out" "$F" keygen --identity-ca --keyset corp/ks.json --curve p256 \
  --subject "/O=Acme Robotics/CN=Acme Device CA 2" --label corp-ca --csr-out corp/ca.csr
openssl req -in corp/ca.csr -verify -noout 2>/dev/null || fail "CA CSR does not verify with openssl"
[ ! -e corp/ks-identity-ca.crt ] || fail "--csr-out wrote a certificate"
expect_rc 2 "enroll before the CA certificate is imported" "$F" enroll --keyset corp/ks.json --ecid $E2 \
  --csr p256.csr --out corp/d.pem
expect_err "no certificate yet"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout corp/root.key -subj "/O=Acme/CN=Acme Root" \
  -days 3650 -out corp/root.crt 2>/dev/null
printf '[ca]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > corp/ca.cnf
openssl x509 -req -in corp/ca.csr -CA corp/root.crt -CAkey corp/root.key -CAcreateserial -days 3650 \
  -extfile corp/ca.cnf -extensions ca -out corp/ca-signed.pem 2>/dev/null || fail "root signing the CA CSR"
expect_rc 5 "--import-cert of a certificate for another key" "$F" keygen --identity-ca --keyset corp/ks.json \
  --import-cert corp/root.crt
expect_rc 0 "--import-cert" "$F" keygen --identity-ca --keyset corp/ks.json --import-cert corp/ca-signed.pem
cmp -s <(openssl x509 -in corp/ks-identity-ca.crt -outform DER) <(openssl x509 -in corp/ca-signed.pem -outform DER) \
  || fail "imported CA certificate differs"
expect_rc 7 "--import-cert twice" "$F" keygen --identity-ca --keyset corp/ks.json --import-cert corp/ca-signed.pem
expect_rc 0 "enroll under the corporate CA" "$F" enroll --keyset corp/ks.json --ecid $E2 --csr p256.csr \
  --out corp/d.pem --db "$CORP_DB"
openssl verify -CAfile corp/root.crt -untrusted corp/ks-identity-ca.crt corp/d.pem >/dev/null || fail "openssl: root -> CA -> device"
cat corp/d.pem corp/ks-identity-ca.crt corp/root.crt > corp/chain.pem
certtool --verify-chain --infile corp/chain.pem 2>&1 | grep -q "Chain verification output: Verified" || fail "certtool: 3-chain"
expect_rc 0 "verify cert under the corporate CA" "$F" verify cert corp/d.pem --keyset corp/ks.json --db "$CORP_DB"
pass "CSR-out CA issued by an openssl root: chain root -> CA -> device verifies (openssl, certtool)"

# ---- the ledger stays one intact chain -------------------------------------------------------------------
expect_rc 0 "verify ledger after all of it" "$F" verify ledger
REF=$(lchain line) || fail "independent chain check: $REF"
[ "$(echo "$REF" | cut -d' ' -f1)" = "$(sq 'SELECT count(*) FROM events')" ] || fail "chain length"
pass "ledger chain recomputed independently over every enroll event"
done_testing
