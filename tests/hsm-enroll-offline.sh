# hsm-enroll-offline.sh — `fuseline enroll` with a central ledger and a
# spool (store and forward): while the central ledger is unreachable, or
# while the spool still holds events to upload, enrolment is refused (exit
# 4) before anything is signed or written; once the backlog is uploaded it
# works, on the central ledger. A SoftHSM2 lab token; read back with
# sqlite3 and openssl.
. "$SRCDIR/tests/lib.sh"
lab_token
: "${LEDGER_WRITER:?}"
F=$FUSELINE
export FUSELINE_STATION=st1 FUSELINE_OPERATOR=alice
unset FUSELINE_DB
C=$T/share/central.db
S=$T/spool.db
E1=80012344705df1172c0000000d020080
mkdir share
run "$F" keygen --chip t234 --pkc p256 --name acme --lab --out ks.json --db "$C"
[ "$RC" -eq 0 ] || fail "keygen: $(cat "$T/err")"
run "$F" keygen --identity-ca --keyset ks.json --subject "/O=Acme/CN=Acme Device CA" --db "$C"
[ "$RC" -eq 0 ] || fail "keygen --identity-ca: $(cat "$T/err")"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out d.key 2>/dev/null
openssl req -new -key d.key -subj "/CN=dev" -out d.csr 2>/dev/null
# every object in the token (pkcs11-tool, logged in): keys, certificates
objs() { pkcs11-tool --module "$MODULE" --login --pin env:TEST_PIN --list-objects 2>/dev/null | grep -c 'Object;' || true; }

mv share share.off
n0=$(objs)
[ "$n0" -gt 0 ] || fail "cannot count the token's objects"
expect_rc 4 "enroll with the central ledger unreachable" "$F" enroll --keyset ks.json --ecid $E1 --csr d.csr \
  --out d.pem --db "$C" --spool "$S"
expect_err "never done offline"
[ ! -e d.pem ] || fail "a certificate was written offline"
expect_rc 4 "enroll --generate-key offline" "$F" enroll --keyset ks.json --ecid $E1 --generate-key p256 \
  --out g.pem --db "$C" --spool "$S"
[ ! -e g.pem ] || fail "a certificate was written offline"
[ "$(objs)" = "$n0" ] || fail "the token changed offline ($n0 -> $(objs) objects)"
[ ! -e "$S" ] || [ "$(sqlite3 "$S" "SELECT count(*) FROM events")" -eq 0 ] || fail "the spool recorded something"
pass "offline: enrolment refused before anything is signed, generated or recorded"

# a spooled record makes a backlog; with the share back, enrolment still waits for it
run "$LEDGER_WRITER" --db "$C" --spool "$S" --ecid $E1 --state fused --chip t234 --quiet
[ "$RC" -eq 0 ] || fail "spooled record: $(cat "$T/err")"
mv share.off share
expect_rc 4 "enroll with a backlog in the spool" "$F" enroll --keyset ks.json --ecid $E1 --csr d.csr \
  --out d.pem --db "$C" --spool "$S"
expect_err "ledger sync"
expect_rc 0 "ledger sync" "$F" ledger sync --db "$C" --spool "$S"
expect_rc 0 "enroll once the backlog is uploaded" "$F" enroll --keyset ks.json --ecid $E1 --csr d.csr \
  --out d.pem --db "$C" --spool "$S" --json
FP=$(openssl x509 -in d.pem -outform DER | sha256sum | cut -d' ' -f1)
[ "$(sqlite3 "$C" "SELECT fingerprint FROM certificates WHERE ecid = '$E1' AND status = 'valid'")" = "$FP" ] \
  || fail "the certificate is not on the central ledger"
[ "$(sqlite3 "$S" "SELECT count(*) FROM certificates")" -eq 0 ] || fail "a certificate reached the spool"
expect_rc 0 "verify the central ledger" "$F" verify ledger --db "$C"
pass "online again: enrolment records on the central ledger, never in the spool"

done_testing
