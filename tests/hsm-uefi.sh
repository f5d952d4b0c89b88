#!/usr/bin/env bash
# fuseline keygen --uefi and verify uefi against a throw-away SoftHSM2 token.
# Expected bytes come from independent tools only: efitools
# (cert-to-efi-sig-list, sign-efi-sig-list -t with the same key as a PEM),
# sbsigntool (sbsiglist, sbkeysync), OpenSSL's and GnuTLS's PKCS#7
# verifiers over a signed buffer rebuilt here in Python from the UEFI
# layout, sig-list-to-certs, dtc/fdtget, and a .dts written here in NVIDIA's
# node layout. Bad input: message, exit code, nothing left behind.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-uefi.sh"
lab_token
F=$FUSELINE
TS="2026-01-01 00:00:00"
TS1="2026-01-01 00:00:01"
G=11111111-2222-3333-4444-555555555555

# ---- independent helpers (no fuseline code) ---------------------------------
# Both verifiers accept the .auth signature with cert, and reject it with other.
check_sig() { # auth var attrs cert othercert
  unwrap "$1" "$2" "$3" "$T/w.p7" "$T/w.buf" || fail "$1: not an EFI_VARIABLE_AUTHENTICATION_2"
  openssl cms -verify -binary -inform DER -in "$T/w.p7" -content "$T/w.buf" -CAfile "$4" -purpose any \
    -out /dev/null 2>"$T/cms" || fail "$1: openssl cms -verify: $(cat "$T/cms")"
  certtool --p7-verify --inder --infile "$T/w.p7" --load-data "$T/w.buf" --load-certificate "$4" \
    >/dev/null 2>&1 || fail "$1: certtool --p7-verify"
  if openssl cms -verify -binary -inform DER -in "$T/w.p7" -content "$T/w.buf" -CAfile "$5" -purpose any \
    -out /dev/null 2>/dev/null; then fail "$1: openssl accepts it with the wrong certificate"; fi
  printf 'x' >> "$T/w.buf"
  if certtool --p7-verify --inder --infile "$T/w.p7" --load-data "$T/w.buf" --load-certificate "$4" \
    >/dev/null 2>&1; then fail "$1: certtool accepts a changed signed buffer"; fi
}
nobjects() { p11tool --login --list-all "pkcs11:token=lab" 2>/dev/null | grep -c '^Object' || true; }
# NVIDIA's UefiDefaultSecurityKeys.dts node layout, written here from the
# reference (§3.2), with od as NVIDIA's script uses it.
nv_dts() { # pk kek db > dts
  printf '/dts-v1/;\n/plugin/;\n/ {\n overlay-name = "UEFI Secure Boot Keys";\n fragment@0 {\n'
  printf '  target-path = "/";\n  board_config { sw-modules = "uefi"; };\n  __overlay__ { firmware { uefi { variables {\n'
  printf '   gNVIDIAPublicVariableGuid { EnrollDefaultSecurityKeys { data = [01]; non-volatile; }; };\n'
  printf '   gEfiGlobalVariableGuid {\n'
  local n f
  for n in PKDefault KEKDefault dbDefault; do
    case $n in PKDefault) f=$1;; KEKDefault) f=$2;; dbDefault) f=$3;; esac
    printf '    %s {\n     data = [\n' "$n"; od -t x1 -An -v "$f"; printf '     ];\n     non-volatile;\n    };\n'
  done
  printf '   };\n  }; }; }; };\n };\n};\n'
}

mkkeys() { # dir bits names...
  local d=$1 bits=$2; shift 2; mkdir -p "$d"
  for k in "$@"; do openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$bits" -out "$d/$k.key" 2>/dev/null; done
}

# ---- byte identity with efitools, RSA-2048 and RSA-3072 -----------------------
mkkeys k2 2048 PK KEK db_1
mkkeys k3 3072 PK KEK db_1 db_2
expect_rc 0 "keygen --uefi --import-keys (RSA-2048)" "$F" keygen --uefi --import-keys k2 --name r2 --out-dir b2 \
  --subject "/O=Acme Robotics" --timestamp "$TS" --owner-guid $G --json
expect_rc 0 "keygen --uefi --import-keys (RSA-3072, two db keys)" "$F" keygen --uefi --import-keys k3 --name r3 \
  --out-dir b3 --db-count 2 --timestamp "$TS" --owner-guid $G

for b in b2 b3; do
  k=k${b#b}
  for c in PK KEK db_1 db_2; do
    [ -f $b/$c.crt ] || continue
    cert-to-efi-sig-list -g $G $b/$c.crt $T/$c.ref.esl >/dev/null || fail "cert-to-efi-sig-list $c"
    sbsiglist --owner $G --type x509 --output $T/$c.sbs.esl $b/$c.der || fail "sbsiglist $c"
    cmp -s $T/$c.ref.esl $T/$c.sbs.esl || fail "$c: efitools and sbsigntool disagree"
    openssl x509 -in $b/$c.crt -outform DER | cmp -s - $b/$c.der || fail "$b/$c.der is not $c.crt"
    # The key in the certificate is the imported one.
    [ "$(openssl x509 -in $b/$c.crt -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" = \
      "$(openssl pkey -in $k/$c.key -pubout -outform DER | sha256sum)" ] || fail "$b/$c.crt: not the imported key"
  done
  cmp -s $T/PK.ref.esl $b/PK.esl || fail "$b/PK.esl differs from cert-to-efi-sig-list"
  cmp -s $T/KEK.ref.esl $b/KEK.esl || fail "$b/KEK.esl differs from cert-to-efi-sig-list"
  if [ -f $b/db_2.crt ]; then cat $T/db_1.ref.esl $T/db_2.ref.esl > $T/db.ref.esl; else cp $T/db_1.ref.esl $T/db.ref.esl; fi
  cmp -s $T/db.ref.esl $b/db.esl || fail "$b/db.esl differs from the concatenated efitools lists"
  pass "$b: PK/KEK/db ESLs byte-identical to cert-to-efi-sig-list and sbsiglist"

  sign-efi-sig-list -t "$TS" -k $k/PK.key -c $b/PK.crt PK $b/PK.esl $T/PK.ref.auth >/dev/null
  sign-efi-sig-list -t "$TS" -k $k/PK.key -c $b/PK.crt KEK $b/KEK.esl $T/KEK.ref.auth >/dev/null
  sign-efi-sig-list -t "$TS" -k $k/KEK.key -c $b/KEK.crt db $b/db.esl $T/db.ref.auth >/dev/null
  : > $T/null.esl
  sign-efi-sig-list -t "$TS1" -k $k/PK.key -c $b/PK.crt PK $T/null.esl $T/noPK.ref.auth >/dev/null
  for a in PK KEK db noPK; do
    cmp -s $T/$a.ref.auth $b/$a.auth || fail "$b/$a.auth differs from sign-efi-sig-list -t"
  done
  pass "$b: PK.auth, KEK.auth, db.auth, noPK.auth byte-identical to sign-efi-sig-list -t (token-signed)"
done
# Imported private keys are token objects now, never extractable.
p11tool --login --list-privkeys "pkcs11:token=lab;object=r2-uefi-pk" > $T/p 2>/dev/null || fail "no r2-uefi-pk"
grep -q CKA_SENSITIVE $T/p && ! grep -q CKA_EXTRACTABLE $T/p || fail "imported PK is extractable or not sensitive"
pass "imported PK is sensitive and not extractable"

# ---- keys generated in the token; keyset; independent verifiers --------------
expect_rc 0 "t234 keyset" "$F" keygen --chip t234 --pkc rsa3k --lab --name ks --out ks.json
expect_rc 0 "keygen --uefi into the keyset" "$F" keygen --uefi --keyset ks.json --out-dir bundle \
  --subject "/O=Acme Robotics" --days 365 --json
python3 - "$T/out" ks.json <<'PY' || fail "keygen --uefi JSON / keyset roles"
import json, sys
o = json.loads(open(sys.argv[1]).read()); ks = json.load(open(sys.argv[2]))
assert o["ok"] and o["dtbo"] is True and len(o["keys"]) == 3, o
roles = {k["role"]: k for k in ks["keys"]}
for r in ("uefi-pk", "uefi-kek", "uefi-db1"):
    k = roles[r]
    assert k["label"] == "ks-" + r and k["uri"].startswith("pkcs11:") and k["type"] == "rsa2k", k
    assert k["owner_guid"] == o["owner_guid"] and k["certificate"].endswith(".crt"), k
assert "uefi-db2" not in roles
PY
for r in pk:PK kek:KEK db1:db_1; do
  crt=bundle/${r#*:}.crt
  want=$(jget ks.json "[k for k in d['keys'] if k['role']=='uefi-${r%%:*}'][0]['certificate_sha256']")
  [ "$(openssl x509 -in $crt -outform DER | sha256sum | cut -d' ' -f1)" = "$want" ] || fail "$crt: sha256 in keyset"
  p11tool --export-pubkey "pkcs11:token=lab;object=ks-uefi-${r%%:*};type=public" > $T/pub.pem 2>/dev/null
  [ "$(openssl pkey -pubin -in $T/pub.pem -outform DER | sha256sum)" = \
    "$(openssl x509 -in $crt -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" ] || fail "$crt: not the token key"
  openssl x509 -in $crt -noout -text > $T/x
  grep -q "CA:TRUE" $T/x && grep -q "Subject Key Identifier" $T/x && grep -q "Authority Key Identifier" $T/x \
    || fail "$crt: extensions"
  openssl verify -CAfile $crt $crt >/dev/null 2>&1 || fail "$crt: not a valid self-signed certificate"
done
openssl x509 -in bundle/PK.crt -noout -subject | grep -q "CN = Acme Robotics Platform Key" || fail "PK subject"
openssl x509 -in bundle/db_1.crt -noout -subject | grep -q "Signature Database key" || fail "db subject"
[ "$(openssl x509 -in bundle/PK.crt -noout -serial | sed 's/serial=//' | tr -d '\n' | wc -c)" = 32 ] || fail "16-byte serial"
pass "certificates: token keys, 16-byte serials, SKI/AKI, CA:TRUE, subjects, SHA-256 in the keyset"

expect_rc 0 "verify keyset with uefi roles" "$F" verify keyset ks.json

check_sig bundle/PK.auth PK 27 bundle/PK.crt bundle/KEK.crt
check_sig bundle/KEK.auth KEK 27 bundle/PK.crt bundle/KEK.crt
check_sig bundle/db.auth db 27 bundle/KEK.crt bundle/PK.crt
check_sig bundle/noPK.auth PK 27 bundle/PK.crt bundle/KEK.crt
pass "every .auth verifies with openssl cms and certtool --p7-verify, and not with the wrong key"

for e in PK KEK db; do
  rm -f $T/sl-*; sig-list-to-certs bundle/$e.esl $T/sl >/dev/null || fail "sig-list-to-certs $e.esl"
done
sig-list-to-certs bundle/PK.esl $T/pk >/dev/null && cmp -s $T/pk-0.der bundle/PK.der || fail "PK.esl round trip"
sig-list-to-certs bundle/db.esl $T/db >/dev/null && cmp -s $T/db-0.der bundle/db_1.der || fail "db.esl round trip"
pass "sig-list-to-certs gives back the DER certificates"

mkdir -p ks/PK ks/KEK ks/db efivars
cp bundle/PK.auth ks/PK/; cp bundle/KEK.auth ks/KEK/; cp bundle/db.auth ks/db/
sbkeysync --dry-run --verbose --no-default-keystores --keystore ks --efivars-path efivars --pk > $T/sbk 2>&1 \
  || fail "sbkeysync: $(tail -3 $T/sbk)"
grep -q "CN=Acme Robotics Platform Key" $T/sbk && grep -q "CN=Acme Robotics Key Exchange Key" $T/sbk \
  && grep -q "CN=Acme Robotics Signature Database key" $T/sbk || fail "sbkeysync did not read the certificates"
pass "sbkeysync --dry-run parses PK/KEK/db.auth"

ov=/fragment@0/__overlay__/firmware/uefi/variables
[ "$(fdthex bundle/UefiDefaultSecurityKeys.dtbo $ov/gEfiGlobalVariableGuid/PKDefault)" = "$(hexof bundle/PK.esl)" ] || fail "dtbo PKDefault"
[ "$(fdthex bundle/UefiDefaultSecurityKeys.dtbo $ov/gEfiGlobalVariableGuid/KEKDefault)" = "$(hexof bundle/KEK.esl)" ] || fail "dtbo KEKDefault"
[ "$(fdthex bundle/UefiDefaultSecurityKeys.dtbo $ov/gEfiGlobalVariableGuid/dbDefault)" = "$(hexof bundle/db.esl)" ] || fail "dtbo dbDefault"
[ "$(fdthex bundle/UefiDefaultSecurityKeys.dtbo $ov/gNVIDIAPublicVariableGuid/EnrollDefaultSecurityKeys)" = 01 ] || fail "Enroll"
fdtget -l bundle/UefiDefaultSecurityKeys.dtbo $ov/gEfiGlobalVariableGuid > $T/nodes
[ "$(tr '\n' ' ' < $T/nodes)" = "PKDefault KEKDefault dbDefault " ] || fail "node list: $(cat $T/nodes)"
pass "fdtget reads the ESL bytes back out of the dtbo"

nv_dts bundle/PK.esl bundle/KEK.esl bundle/db.esl > $T/nv.dts
dtc -q -I dts -O dtb -o $T/nv.dtbo $T/nv.dts || fail "reference dts does not compile"
dtc -q -I dtb -O dts $T/nv.dtbo > $T/nv.txt; dtc -q -I dtb -O dts bundle/UefiDefaultSecurityKeys.dtbo > $T/ours.txt
diff -q $T/nv.txt $T/ours.txt >/dev/null || fail "overlay differs from NVIDIA's layout: $(diff $T/nv.txt $T/ours.txt | head -5)"
cmp -s $T/nv.dtbo bundle/UefiDefaultSecurityKeys.dtbo || fail "dtbo bytes differ from the reference layout's"
pass "UefiDefaultSecurityKeys.dtbo is byte-identical to one built from NVIDIA's node layout"

grep -q '^UEFI_DEFAULT_PK_ESL="PK.esl";$' bundle/uefi_keys.conf && grep -q '^UEFI_DEFAULT_KEK_ESL_0="KEK.esl";$' bundle/uefi_keys.conf \
  && grep -q '^UEFI_DEFAULT_DB_ESL_0="db.esl";$' bundle/uefi_keys.conf && grep -q '^UEFI_DB_1_CERT_FILE="db_1.crt";$' bundle/uefi_keys.conf \
  || fail "uefi_keys.conf lines"
grep -q '^UEFI_DB_1_KEY_FILE' bundle/uefi_keys.conf && fail "conf names a key file"
( set -u; cd bundle; . ./uefi_keys.conf; for v in "$UEFI_DEFAULT_PK_ESL" "$UEFI_DEFAULT_KEK_ESL_0" "$UEFI_DEFAULT_DB_ESL_0" "$UEFI_DB_1_CERT_FILE"; do [ -f "$v" ] || exit 1; done ) \
  || fail "sourcing uefi_keys.conf in bash does not name files in its directory"
pass "uefi_keys.conf: bash sources it; every file in its directory; no key file"

expect_rc 0 "verify uefi on the fresh bundle" "$F" verify uefi bundle
grep -q "PASS" $T/out || fail "verify uefi output"

# ---- verify uefi catches tampering ---------------------------------------------
tamper() { # file offset-from-end what
  cp -a bundle tb; python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[-int(sys.argv[2])]^=1; open(p,"wb").write(d)' "tb/$1" "$2"
  expect_rc 5 "verify uefi: $3" "$F" verify uefi tb
  expect_err "problem"
  rm -rf tb
}
tamper db.esl 5 "a bit flipped in a db certificate"
tamper KEK.auth 1000 "a bit flipped in KEK.auth's signature"
tamper KEK.auth 1700 "a bit flipped in the certificate KEK.auth carries"
tamper PK.auth 3 "a bit flipped in PK.auth's payload"
cp -a bundle tb; sed -i '0,/30 82/s//30 83/' tb/UefiDefaultSecurityKeys.dts
expect_rc 5 "verify uefi: the .dts carries other bytes" "$F" verify uefi tb
grep -q "dbDefault\|PKDefault\|KEKDefault" $T/out || fail "names the node"
rm -rf tb; cp -a bundle tb; cp bundle/PK.auth tb/db.auth
expect_rc 5 "verify uefi: db.auth replaced by PK.auth" "$F" verify uefi tb
rm -rf tb; cp -a bundle tb; echo 'UEFI_DEFAULT_DBX_ESL_0="missing.esl";' >> tb/uefi_keys.conf
expect_rc 5 "verify uefi: conf names a missing file" "$F" verify uefi tb
grep -q "missing.esl" $T/out || fail "names missing.esl"
rm -rf tb; cp -a bundle tb; echo 'UEFI_DEFAULT_DBX_ESL_0="$(touch /tmp/x)";' >> tb/uefi_keys.conf
expect_rc 5 "verify uefi: conf with shell syntax is refused, not run" "$F" verify uefi tb
rm -rf tb
expect_rc 2 "verify uefi: no such directory" "$F" verify uefi nowhere

# ---- bad input: message, exit code, nothing left behind ------------------------
before=$(nobjects)
expect_rc 2 "invalid --owner-guid" "$F" keygen --uefi --out-dir x1 --owner-guid 1111-2222
expect_err "--owner-guid: '1111-2222' is not a GUID"
expect_rc 2 "timestamp that efitools would write as 1900-01-00" "$F" keygen --uefi --out-dir x1 --timestamp "Jul 21 09:39:37 BST 2012"
expect_err "does not parse"
expect_rc 2 "timestamp that is not a real date" "$F" keygen --uefi --out-dir x1 --timestamp "2026-02-29 00:00:00"
expect_err "not a real UTC date"
expect_rc 2 "--days 0" "$F" keygen --uefi --out-dir x1 --days 0
expect_rc 2 "--key-type p256" "$F" keygen --uefi --out-dir x1 --key-type p256
expect_rc 2 "bad --subject" "$F" keygen --uefi --out-dir x1 --subject "O=no slash"
expect_err "--subject"
echo file > afile
expect_rc 2 "unwritable out dir" "$F" keygen --uefi --out-dir afile/sub --name u1
expect_err "afile/sub"
expect_rc 7 "existing object label" "$F" keygen --uefi --out-dir x1 --name ks
expect_err "ks-uefi-pk"
mkdir full; echo keep > full/other
expect_rc 7 "non-empty out dir" "$F" keygen --uefi --out-dir full --name u2
expect_err "not empty"
mkkeys kbad 2048 PK KEK   # no db_1.key: fails after PK and KEK were imported
expect_rc 2 "import with a key missing" "$F" keygen --uefi --import-keys kbad --out-dir x1 --name u3
expect_err "db_1.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out kbad/db_1.key 2>/dev/null
expect_rc 2 "import of an EC key" "$F" keygen --uefi --import-keys kbad --out-dir x1 --name u4
expect_err "RSA-2048 or RSA-3072"
# A key encrypted even with an empty passphrase is refused, never guessed at.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes-128-cbc -pass pass: -out kbad/db_1.key 2>/dev/null
head -1 kbad/db_1.key | grep -q ENCRYPTED || fail "test bug: db_1.key is not encrypted"
expect_rc 2 "import of an encrypted key" "$F" keygen --uefi --import-keys kbad --out-dir x1 --name u5
expect_err "db_1.key"
[ ! -e x1 ] && [ ! -e afile/sub ] || fail "a partial bundle was left behind"
[ "$(ls -A full)" = other ] || fail "the non-empty directory was touched"
[ -z "$(ls -d ./*.tmp.* 2>/dev/null)" ] || fail "staging directory left behind: $(ls -d ./*.tmp.*)"
[ "$(nobjects)" = "$before" ] || fail "token objects changed by failed runs ($before -> $(nobjects))"
pass "failed runs left no files, no staging directories and no token objects"

# ---- dtc runs with a scrubbed environment (no PIN variable reaches a child) ----
printf '#!/bin/sh\nenv > "%s/dtc-env"\nexec dtc "$@"\n' "$T" > spy-dtc
chmod +x spy-dtc
FUSELINE_PIN=424242 FUSELINE_DTC=$T/spy-dtc expect_rc 0 "keygen --uefi with a dtc that records its environment" \
  "$F" keygen --uefi --import-keys k2 --name r9 --out-dir b9 --subject "/O=Acme Robotics" --timestamp "$TS" --owner-guid $G
[ -s "$T/dtc-env" ] || fail "the spy dtc did not run"
grep -q '^PATH=' "$T/dtc-env" || fail "dtc got no PATH"
if grep -iq 'pin\|424242\|SOFTHSM2_CONF\|FUSELINE' "$T/dtc-env"; then fail "dtc saw: $(grep -i 'pin\|424242\|SOFTHSM2_CONF\|FUSELINE' "$T/dtc-env" | cut -d= -f1 | tr '\n' ' ')"; fi
pass "dtc saw PATH but no PIN variable, no token configuration"

done_testing
