#!/usr/bin/env bash
# fuseline keygen --uefi with keys GENERATED in a throw-away SoftHSM2 token,
# checked against efitools signing with the very same token objects through
# the OpenSSL PKCS#11 engine (libengine-pkcs11-openssl): for RSA-2048 and
# RSA-3072, `sign-efi-sig-list -t TS -e pkcs11 -k URI` with the URI fuseline
# printed must give PK.auth, KEK.auth, db.auth and noPK.auth byte for byte.
# (tests/hsm-uefi.sh does the same with imported PEM keys; this one needs no
# key ever outside the token.)
. "$SRCDIR/tests/lib.sh"
lab_token
F=$FUSELINE
TS="2026-01-01 00:00:00"
TS1="2026-01-01 00:00:01"     # noPK.auth is one second after the bundle
G=11111111-2222-3333-4444-555555555555

# ---- the engine, configured here only -----------------------------------------
# No system configuration is touched: OPENSSL_CONF points at a file in the test
# directory. It names the engine by path and loads the same SoftHSM2 module
# fuseline uses (MODULE_PATH) rather than libp11's default p11-kit-proxy, so
# the engine sees this test's token only, whatever else p11-kit has registered.
# The PIN: this is a throw-away token whose PIN file the test owns, and the
# engine has no other non-interactive way to log in, so the PIN goes into this
# 0600 config file (ENGINE "PIN" command). Acceptable ONLY in a test; it keeps
# the PIN out of argv (a `?pin-value=` URI would put it in ps output) and out
# of every log. Real deployments sign with fuseline, which reads --pin-source.
enginesdir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
[ -r "$enginesdir/pkcs11.so" ] \
  || fail "$enginesdir/pkcs11.so missing: install libengine-pkcs11-openssl (factory-scripts/install-deps.sh)"
PIN=$(cat "$FUSELINE_PIN_FILE")
( umask 077; cat > "$T/engine.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $enginesdir/pkcs11.so
MODULE_PATH = $FUSELINE_MODULE
PIN = $PIN
init = 0
CNF
)

# efitools through the engine; its chatter goes to a log checked for the PIN.
# OPENSSL_CONF is set for efitools only, so fuseline never loads the engine.
esign() { # uri cert var esl out.auth [timestamp]
  OPENSSL_CONF=$T/engine.cnf sign-efi-sig-list -t "${6:-$TS}" -e pkcs11 -k "$1" -c "$2" "$3" "$4" "$5" </dev/null >>"$T/engine.log" 2>&1 \
    || fail "sign-efi-sig-list -e pkcs11 $3: $(tail -3 "$T/engine.log")"
}
uri_of() { # json role
  python3 -c 'import json,sys; print([k["uri"] for k in json.load(open(sys.argv[1]))["keys"] if k["role"]==sys.argv[2]][0])' "$@"
}

: > "$T/null.esl"
for kt in rsa2048:2048 rsa3072:3072; do
  t=${kt%%:*} bits=${kt#*:} b=b$bits
  dbn=1; [ "$bits" = 3072 ] && dbn=2     # two db keys once: db.esl holds two lists
  expect_rc 0 "keygen --uefi --key-type $t (keys generated in the token)" "$F" keygen --uefi --name u$bits \
    --key-type $t --out-dir $b --db-count $dbn --subject "/O=Acme Robotics" --owner-guid $G --timestamp "$TS" --json
  cp "$T/out" $b.json
  python3 - $b.json $dbn <<'PY' || fail "$b: keygen JSON (roles, generated, URIs)"
import json, sys
o = json.load(open(sys.argv[1])); n = 2 + int(sys.argv[2])
assert o["ok"] and o["owner_guid"] == "11111111-2222-3333-4444-555555555555", o
assert len(o["keys"]) == n, o["keys"]
for k in o["keys"]:
    assert k["imported"] is False and k["uri"].startswith("pkcs11:") and "token=lab" in k["uri"], k
    assert ";type=private" in k["uri"] and "pin-value" not in k["uri"], k
PY
  # Independently of fuseline: the private keys were made on the token (CKA_LOCAL),
  # are RSA of the asked size, and never left it.
  for rc in pk:PK kek:KEK db1:db_1; do
    r=${rc%%:*} c=${rc#*:}
    pkcs11-tool --module "$MODULE" --login --pin env:TEST_PIN --list-objects --type privkey \
      --label u$bits-uefi-$r > "$T/obj" 2>/dev/null || fail "pkcs11-tool: u$bits-uefi-$r"
    grep -q "RSA" "$T/obj" && grep -q "never extractable, local" "$T/obj" \
      || fail "u$bits-uefi-$r: not a generated, non-extractable RSA key: $(cat "$T/obj")"
    [ "$(openssl x509 -in $b/$c.crt -noout -pubkey | openssl pkey -pubin -noout -text | head -1)" \
      = "Public-Key: ($bits bit)" ] || fail "$b/$c.crt: not an RSA-$bits key"
  done

  pk=$(uri_of $b.json uefi-pk) kek=$(uri_of $b.json uefi-kek)
  esign "$pk" $b/PK.crt PK $b/PK.esl $T/PK.ref.auth
  esign "$pk" $b/PK.crt KEK $b/KEK.esl $T/KEK.ref.auth
  esign "$kek" $b/KEK.crt db $b/db.esl $T/db.ref.auth
  esign "$pk" $b/PK.crt PK $T/null.esl $T/noPK.ref.auth "$TS1"
  for a in PK KEK db noPK; do
    [ -s $T/$a.ref.auth ] || fail "sign-efi-sig-list wrote no $a.auth"
    cmp -s $T/$a.ref.auth $b/$a.auth || fail "$b/$a.auth differs from sign-efi-sig-list -e pkcs11 on the same token"
  done
  pass "$t: PK.auth, KEK.auth, db.auth, noPK.auth byte-identical to sign-efi-sig-list -e pkcs11 with the same token keys"

  # The comparison can fail: the engine with the KEK key, or one second later,
  # gives other bytes than fuseline's PK.auth.
  esign "$kek" $b/PK.crt PK $b/PK.esl $T/wrong.auth
  esign "$pk" $b/PK.crt PK $b/PK.esl $T/late.auth "$TS1"
  if cmp -s $T/wrong.auth $b/PK.auth || cmp -s $T/late.auth $b/PK.auth; then
    fail "$b/PK.auth equals an engine signature made with another key or timestamp"
  fi
  pass "$t: engine output with the wrong key or timestamp differs (the cmp is meaningful)"
done

# Sanity on the setup the engine needs (reference §2.2: an Ed25519 key pair on
# the token crashes libengine-pkcs11-openssl 0.4.12): only UEFI RSA keys here.
pkcs11-tool --module "$MODULE" --login --pin env:TEST_PIN --list-objects --type privkey > "$T/all" 2>/dev/null
[ "$(grep -c '^Private Key Object' "$T/all")" = 7 ] && [ "$(grep -c '^Private Key Object; RSA' "$T/all")" = 7 ] \
  || fail "token holds other private keys than the 7 UEFI RSA keys: $(grep '^Private' "$T/all")"
assert_absent "$PIN" "$T/engine.log" "$T/out" "$T/err" b2048.json b3072.json b2048/* b3072/*
pass "the token holds only the UEFI RSA keys; the PIN is in no log, output or bundle file"

done_testing
