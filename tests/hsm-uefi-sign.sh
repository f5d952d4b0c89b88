#!/usr/bin/env bash
# fuseline sign --uefi-var / --uefi-payload against a throw-away SoftHSM2
# token. Append updates must be byte-identical to `sign-efi-sig-list -a -t`
# with the same key as a PEM (imported into the token by keygen --uefi),
# SHA-256 lists equal one built here in Python from the UEFI layout, the
# update overlay carries the .auth bytes (fdtget), and payload signatures
# verify with openssl cms and GnuTLS certtool. Bad input: exit code, message,
# nothing written.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-uefi.sh"
lab_token
F=$FUSELINE
G=11111111-2222-3333-4444-555555555555
TS="2026-02-01 12:00:00"
ov=/fragment@0/__overlay__/firmware/uefi/variables/gNVIDIAPublicVariableGuid

mkdir k
for x in PK KEK db_1; do openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out k/$x.key 2>/dev/null; done
expect_rc 0 "keyset" "$F" keygen --chip t234 --pkc rsa3k --lab --name ks --out ks.json
expect_rc 0 "keygen --uefi with imported keys" "$F" keygen --uefi --keyset ks.json --import-keys k --out-dir b \
  --owner-guid $G --timestamp "2026-01-01 00:00:00"
newcert() { openssl req -new -x509 -newkey "$2" -nodes -keyout "$1.key" -subj "/CN=$1/" -days 30 -out "$1.crt" 2>/dev/null; }
newcert newdb rsa:2048
newcert newkek rsa:3072
newcert newdb2 rsa:2048

# ---- append updates ---------------------------------------------------------------
expect_rc 0 "db append update, registered in the conf" "$F" sign --uefi-var db --append newdb.crt --signer uefi-kek \
  --keyset ks.json --timestamp "$TS" --out b/db_up.auth --conf b/uefi_keys.conf --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["ok"] and o["conf_var"]=="UEFI_UPDATE_PRE_SIGNED_DB_0" and o["attributes"]=="0x67" and o["dtbo"]' "$T/out" \
  || fail "sign --uefi-var --json"
cert-to-efi-sig-list -g $G newdb.crt $T/newdb.esl >/dev/null
sign-efi-sig-list -a -t "$TS" -k k/KEK.key -c b/KEK.crt db $T/newdb.esl $T/ref.auth >/dev/null
cmp -s $T/ref.auth b/db_up.auth || fail "db_up.auth differs from sign-efi-sig-list -a -t"
pass "db append update byte-identical to sign-efi-sig-list -a -t (token-signed)"

expect_rc 0 "KEK append update by the PK" "$F" sign --uefi-var KEK --append newkek.crt --signer uefi-pk \
  --keyset ks.json --timestamp "$TS" --out b/kek_up.auth --conf b/uefi_keys.conf
cert-to-efi-sig-list -g $G newkek.crt $T/newkek.esl >/dev/null
sign-efi-sig-list -a -t "$TS" -k k/PK.key -c b/PK.crt KEK $T/newkek.esl $T/ref.auth >/dev/null
cmp -s $T/ref.auth b/kek_up.auth || fail "kek_up.auth differs from sign-efi-sig-list -a -t"
pass "KEK append update byte-identical to sign-efi-sig-list -a -t"

expect_rc 0 "second db update, two certificates" "$F" sign --uefi-var db --append newdb2.crt --append newdb.crt \
  --signer uefi-kek --keyset ks.json --timestamp "$TS" --out b/db_up2.auth --conf b/uefi_keys.conf
cert-to-efi-sig-list -g $G newdb2.crt $T/newdb2.esl >/dev/null
cat $T/newdb2.esl $T/newdb.esl > $T/two.esl
sign-efi-sig-list -a -t "$TS" -k k/KEK.key -c b/KEK.crt db $T/two.esl $T/ref.auth >/dev/null
cmp -s $T/ref.auth b/db_up2.auth || fail "db_up2.auth differs"
pass "one list per appended certificate, byte-identical to efitools"

H1=$(printf 'image one' | sha256sum | cut -d' ' -f1); H2=$(printf 'image two' | sha256sum | cut -d' ' -f1)
expect_rc 0 "dbx hash append" "$F" sign --uefi-var dbx --append-hash $H1 --append-hash $H2 --signer uefi-kek \
  --keyset ks.json --timestamp "$TS" --out b/dbx_up.auth --conf b/uefi_keys.conf
python3 - $G $H1 $H2 > $T/hash.esl <<'PY'
import struct, sys, uuid
owner = uuid.UUID(sys.argv[1]).bytes_le
hs = [bytes.fromhex(h) for h in sys.argv[2:]]
sys.stdout.buffer.write(uuid.UUID("c1c41626-504c-4092-aca9-41f936934328").bytes_le +
                        struct.pack("<III", 28 + 48 * len(hs), 0, 48) + b"".join(owner + h for h in hs))
PY
sign-efi-sig-list -a -t "$TS" -k k/KEK.key -c b/KEK.crt dbx $T/hash.esl $T/ref.auth >/dev/null
cmp -s $T/ref.auth b/dbx_up.auth || fail "dbx_up.auth differs from efitools over the reference SHA-256 list"
pass "dbx SHA-256 list matches the UEFI layout; .auth byte-identical to efitools"

for a in db_up:db:KEK kek_up:KEK:PK db_up2:db:KEK dbx_up:dbx:KEK; do
  IFS=: read -r f var signer <<<"$a"
  unwrap b/$f.auth $var 67 $T/w.p7 $T/w.buf
  openssl cms -verify -binary -inform DER -in $T/w.p7 -content $T/w.buf -CAfile b/$signer.crt -purpose any \
    -out /dev/null 2>/dev/null || fail "$f: openssl cms -verify (attributes 0x67)"
  certtool --p7-verify --inder --infile $T/w.p7 --load-data $T/w.buf --load-certificate b/$signer.crt \
    >/dev/null 2>&1 || fail "$f: certtool --p7-verify"
  unwrap b/$f.auth $var 27 $T/w.p7 $T/w.buf
  if openssl cms -verify -binary -inform DER -in $T/w.p7 -content $T/w.buf -CAfile b/$signer.crt -purpose any \
    -out /dev/null 2>/dev/null; then fail "$f: also verifies as a replace (0x27) write"; fi
done
pass "update signatures cover attributes 0x67 (openssl, certtool), not 0x27"

grep -q '^UEFI_UPDATE_PRE_SIGNED_DB_0="db_up.auth";$' b/uefi_keys.conf && grep -q '^UEFI_UPDATE_PRE_SIGNED_KEK_0="kek_up.auth";$' b/uefi_keys.conf \
  && grep -q '^UEFI_UPDATE_PRE_SIGNED_DB_1="db_up2.auth";$' b/uefi_keys.conf && grep -q '^UEFI_UPDATE_PRE_SIGNED_DBX_0="dbx_up.auth";$' b/uefi_keys.conf \
  || fail "conf registration: $(grep UPDATE b/uefi_keys.conf)"
[ "$(fdtget -l b/UefiUpdateSecurityKeys.dtbo $ov | tr '\n' ' ')" = "EnrollDefaultSecurityKeys kekSigned_0 dbSigned_0 dbSigned_1 dbxSigned_0 " ] \
  || fail "update nodes: $(fdtget -l b/UefiUpdateSecurityKeys.dtbo $ov | tr '\n' ' ')"
for a in kekSigned_0:kek_up dbSigned_0:db_up dbSigned_1:db_up2 dbxSigned_0:dbx_up; do
  [ "$(fdthex b/UefiUpdateSecurityKeys.dtbo $ov/${a%%:*})" = "$(hexof b/${a#*:}.auth)" ] || fail "dtbo ${a%%:*}"
  fdtget b/UefiUpdateSecurityKeys.dtbo $ov/${a%%:*} non-volatile >/dev/null 2>&1 && fail "${a%%:*} must not be non-volatile"
done
pass "UefiUpdateSecurityKeys.dtbo: kekSigned_0, dbSigned_0/1, dbxSigned_0 carry the .auth bytes (fdtget)"
expect_rc 0 "verify uefi with updates" "$F" verify uefi b
grep -c "^OK .*_up" $T/out | grep -q 4 || fail "verify uefi did not check the 4 updates"

# ---- bad input -----------------------------------------------------------------------
cp b/uefi_keys.conf $T/conf.before
expect_rc 2 "KEK update signed by the KEK" "$F" sign --uefi-var KEK --append newkek.crt --signer uefi-kek --keyset ks.json --out x.auth
expect_err "uefi-pk"
expect_rc 2 "PK is not appended to" "$F" sign --uefi-var PK --append newkek.crt --signer uefi-pk --keyset ks.json --out x.auth
echo "not a certificate" > junk.crt
expect_rc 2 "--append of a non-certificate" "$F" sign --uefi-var db --append junk.crt --signer uefi-kek --keyset ks.json --out x.auth
expect_err "junk.crt"
# A key where a certificate belongs is named as such (it used to be an
# unrelated OpenSSL error: "DSO support routines::could not load the shared library").
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem 2>/dev/null
expect_rc 2 "--append of a key" "$F" sign --uefi-var db --append p384.pem --signer uefi-kek --keyset ks.json --out x.auth
expect_err "p384.pem: a PEM PRIVATE KEY, not a certificate"
! grep -q "DSO" "$T/err" || fail "--append of a key: an unrelated OpenSSL error"
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -subj "/CN=ec/" -days 3 -out ec.crt 2>/dev/null
expect_rc 2 "--append of an EC certificate" "$F" sign --uefi-var db --append ec.crt --signer uefi-kek --keyset ks.json --out x.auth
expect_err "not supported"
expect_rc 2 "--append-hash that is not SHA-256 hex" "$F" sign --uefi-var dbx --append-hash abcd --signer uefi-kek --keyset ks.json --out x.auth
expect_rc 2 "--timestamp not a date" "$F" sign --uefi-var db --append newdb.crt --signer uefi-kek --keyset ks.json --timestamp "2026-13-01" --out x.auth
[ ! -e x.auth ] || fail "x.auth written by a failed run"
expect_rc 7 "--out exists" "$F" sign --uefi-var db --append newdb.crt --signer uefi-kek --keyset ks.json --out b/db_up.auth
mkdir other
expect_rc 2 "--out outside the conf's directory" "$F" sign --uefi-var db --append newdb.crt --signer uefi-kek \
  --keyset ks.json --out other/u.auth --conf b/uefi_keys.conf
[ ! -e other/u.auth ] || fail "other/u.auth written"
cmp -s $T/conf.before b/uefi_keys.conf || fail "uefi_keys.conf changed by failed runs"
cp b/KEK.crt $T/kek.save; cp b/db_1.crt b/KEK.crt
expect_rc 5 "certificate on disk is not the one the keyset records" "$F" sign --uefi-var db --append newdb.crt \
  --signer uefi-kek --keyset ks.json --out x.auth
cp $T/kek.save b/KEK.crt
pass "failed runs wrote nothing and left uefi_keys.conf alone"

# ---- payloads ------------------------------------------------------------------------
head -c 70000 /dev/urandom > initrd; cp initrd initrd.orig
expect_rc 0 "payload, split" "$F" sign --uefi-payload initrd --signer uefi-db1 --keyset ks.json --mode split
cmp -s initrd initrd.orig || fail "split mode changed the payload"
openssl cms -verify -binary -inform DER -in initrd.sig -content initrd -CAfile b/db_1.crt -purpose any -out /dev/null 2>/dev/null \
  || fail "openssl cms -verify of initrd.sig"
certtool --p7-verify --inder --infile initrd.sig --load-data initrd --load-certificate b/db_1.crt >/dev/null 2>&1 \
  || fail "certtool --p7-verify of initrd.sig"
openssl cms -cmsout -print -inform DER -in initrd.sig > $T/p
grep -q "signingTime" $T/p && grep -q "messageDigest" $T/p && grep -q "sha256" $T/p || fail "signed attributes"
printf 'x' >> initrd
if openssl cms -verify -binary -inform DER -in initrd.sig -content initrd -CAfile b/db_1.crt -purpose any -out /dev/null 2>/dev/null; then
  fail "a changed payload verifies"; fi
pass "split signature: openssl cms and certtool accept it, reject a changed payload"
# The overwrite rule: an existing .sig is refused (exit 7) unless --force.
cp initrd.sig initrd.sig.keep
expect_rc 7 "split again without --force" "$F" sign --uefi-payload initrd --signer uefi-db1 --keyset ks.json --mode split
expect_err "initrd.sig exists already; give --force"
cmp -s initrd.sig initrd.sig.keep || fail "a refused run touched initrd.sig"
expect_rc 0 "split again with --force" "$F" sign --uefi-payload initrd --signer uefi-db1 --keyset ks.json --mode split --force
openssl cms -verify -binary -inform DER -in initrd.sig -content initrd -CAfile b/db_1.crt -purpose any -out /dev/null 2>/dev/null \
  || fail "--force did not write a signature over the changed payload"
expect_rc 2 "--force with --uefi-var" "$F" sign --uefi-var db --append newdb.crt --signer uefi-kek --keyset ks.json --out f.auth --force
pass "split: an existing .sig is exit 7 unless --force; --uefi-var never replaces"

head -c 5000 /dev/urandom > boot.img; cp boot.img boot.orig
expect_rc 0 "payload, append" "$F" sign --uefi-payload boot.img --signer uefi-db1 --keyset ks.json --mode append
cmp -s boot.img.unsigned boot.orig || fail "boot.img.unsigned is not the original"
cmp -s <(head -c 5000 boot.img) boot.orig || fail "appended file does not start with the original"
[ "$(head -c 6144 boot.img | tail -c 1144 | tr -d '\0' | wc -c)" = 0 ] || fail "padding is not zeros"
tail -c +6145 boot.img > $T/tail.sig
openssl cms -verify -binary -inform DER -in $T/tail.sig -content boot.orig -CAfile b/db_1.crt -purpose any -out /dev/null 2>/dev/null \
  || fail "the appended signature does not verify over the original"
pass "append mode: original kept, zero-padded to 2 KiB, signature appended and valid"
expect_rc 7 "append twice" "$F" sign --uefi-payload boot.img --signer uefi-db1 --keyset ks.json --mode append
expect_err "boot.img.unsigned exists"
cmp -s boot.img.unsigned boot.orig || fail "second run touched boot.img.unsigned"
expect_rc 2 "payload signed by the KEK" "$F" sign --uefi-payload initrd --signer uefi-kek --keyset ks.json --mode split
expect_rc 2 "no such payload" "$F" sign --uefi-payload nothere --signer uefi-db1 --keyset ks.json --mode split
expect_rc 2 "role not in the keyset" "$F" sign --uefi-payload initrd --signer uefi-db2 --keyset ks.json --mode split --force
expect_err "uefi-db2"

for h in "sign --uefi-var --help" "sign --uefi-payload --help" "keygen --uefi --help" "verify uefi --help"; do
  expect_rc 0 "$h" "$F" $h
  grep -q "Examples:" "$T/out" || fail "$h: no examples"
done

done_testing
