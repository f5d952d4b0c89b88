#!/usr/bin/env bash
# keygen on a SoftHSM2 token for both chips and every PKC type, checked by
# independent tools: p11tool sees the objects and their flags, the public key
# p11tool exports hashes (tests/tools/pkc-hash-ref.py, openssl) to the
# manifest's tegra_pkc_hash and public_key_sha256, and the AES values read
# with pkcs11-tool give the manifest's check values under openssl enc.
. "$SRCDIR/tests/lib.sh"
lab_token
REF="$SRCDIR/tests/tools/pkc-hash-ref.py"

check_keyset() { # manifest chip
  local ks=$1 chip=$2 n i role type uri label want got
  n=$(jget "$ks" 'len(d["keys"])')
  [ "$(jget "$ks" 'd["format"]')" = fuseline-keyset/1 ] || fail "$ks: format"
  [ "$(jget "$ks" 'd["chip"]')" = "$chip" ] || fail "$ks: chip"
  for ((i = 0; i < n; i++)); do
    role=$(jget "$ks" "d['keys'][$i]['role']"); type=$(jget "$ks" "d['keys'][$i]['type']")
    uri=$(jget "$ks" "d['keys'][$i]['uri']"); label=$(jget "$ks" "d['keys'][$i]['label']")
    case $role in
      pkc*)
        p11tool --login --list-privkeys "pkcs11:token=lab;object=$label" > "$T/p" 2>/dev/null || fail "p11tool lists no $label"
        grep -q 'CKA_SENSITIVE' "$T/p" || fail "$label: not CKA_SENSITIVE"
        grep -q 'CKA_NEVER_EXTRACTABLE' "$T/p" || fail "$label: extractable"
        grep -q 'CKA_PRIVATE' "$T/p" || fail "$label: not CKA_PRIVATE"
        p11tool --export-pubkey "pkcs11:token=lab;object=$label;type=public" > "$T/pub.pem" 2>/dev/null \
          || fail "p11tool cannot export $label"
        want=$(jget "$ks" "d['keys'][$i]['tegra_pkc_hash']")
        got=$(python3 "$REF" "$T/pub.pem" "$chip")
        [ "$got" = "$want" ] || fail "$label: tegra_pkc_hash $want, independent $got"
        got=$(openssl pkey -pubin -in "$T/pub.pem" -outform DER | sha256sum | cut -d' ' -f1)
        [ "$got" = "$(jget "$ks" "d['keys'][$i]['public_key_sha256']")" ] || fail "$label: public_key_sha256"
        pass "$chip $type $role: flags and PublicKeyHash match p11tool's public key"
        ;;
      *)
        pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN \
          --read-object --type secrkey --label "$label" -o "$T/val.bin" >/dev/null 2>&1 || fail "cannot read $label"
        local bytes; bytes=$(stat -c %s "$T/val.bin")
        case $type in aes128) [ "$bytes" = 16 ] || fail "$label: $bytes bytes";; aes256) [ "$bytes" = 32 ] || fail "$label: $bytes bytes";; esac
        local hex; hex=$(xxd -p -c 64 "$T/val.bin")
        got=$(head -c 16 /dev/zero | openssl enc -aes-$((bytes * 8))-ecb -nopad -K "$hex" | xxd -p | head -c 6)
        [ "$got" = "$(jget "$ks" "d['keys'][$i]['kcv']")" ] || fail "$label: kcv"
        assert_absent "$hex" "$ks" "$T/out" "$T/err"
        p11tool --login --list-all "pkcs11:token=lab;object=$label-hmac" > "$T/p" 2>/dev/null
        grep -q 'CKA_SENSITIVE' "$T/p" || fail "$label-hmac: twin missing or not sensitive"
        pass "$chip $type $role: value length, kcv under openssl, HMAC twin sensitive, value not printed"
        ;;
    esac
  done
}

expect_rc 0 "t234 rsa3k x3 + sbk + oem-k1/k2" "$FUSELINE" keygen --chip t234 --pkc rsa3k --pkc-count 3 \
  --sbk --oem-k1 --oem-k2 --name a --lab --out a.json
check_keyset a.json t234
[ "$(jget a.json 'd["profile"]')" = lab ] || fail "profile lab"
expect_rc 0 "t234 p256" "$FUSELINE" keygen --chip t234 --pkc p256 --name b --lab --out b.json
check_keyset b.json t234
expect_rc 0 "t234 p521 + sbk, json" "$FUSELINE" keygen --chip t234 --pkc p521 --sbk --name c --out c.json --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["ok"] and o["profile"]=="production" and len(o["keys"])==2' "$T/out" \
  || fail "keygen --json result"
check_keyset c.json t234
expect_rc 0 "t194 rsa2k + sbk + kek0..2 + kek256" "$FUSELINE" keygen --chip t194 --pkc rsa2k --sbk --kek0 --kek1 \
  --kek2 --kek256 --name d --lab --out d.json
check_keyset d.json t194
readkey() { pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object \
  --type secrkey --label "$1" -o "$T/$1.bin" >/dev/null 2>&1 && xxd -p -c 64 "$T/$1.bin"; }
[ "$(readkey d-kek256)" = "$(readkey d-kek0)$(readkey d-kek1)" ] || fail "Kek256 is not Kek0 || Kek1"
pass "t194 Kek256 made as Kek0 || Kek1 (NVIDIA's layout)"
expect_rc 2 "--kek256 with only --kek0" "$FUSELINE" keygen --chip t194 --pkc rsa3k --kek0 --kek256 --name k1 --out k1.json
expect_err "Kek0 followed by Kek1"
expect_rc 0 "t194 rsa3k" "$FUSELINE" keygen --chip t194 --pkc rsa3k --name e --lab --out e.json
check_keyset e.json t194

for ks in a b c d e; do
  expect_rc 0 "verify keyset $ks" "$FUSELINE" verify keyset $ks.json
  grep -q "PASS" "$T/out" || fail "verify keyset $ks: no PASS"
done

# Conflicts and refusals leave the token exactly as it was.
before=$(p11tool --login --list-all pkcs11:token=lab 2>/dev/null | grep -c '^Object')
expect_rc 7 "existing label is a conflict" "$FUSELINE" keygen --chip t234 --pkc p256 --sbk --name a --out a2.json
expect_err "a-pkc0"
[ ! -e a2.json ] || fail "manifest written despite the conflict"
expect_rc 7 "existing manifest is a conflict" "$FUSELINE" keygen --chip t234 --pkc p256 --name f --out a.json
expect_rc 2 "unknown chip" "$FUSELINE" keygen --chip t186 --pkc rsa3k --out x.json
expect_rc 2 "rsa2k on t234" "$FUSELINE" keygen --chip t234 --pkc rsa2k --out x.json
expect_err "t234 takes rsa3k, p256 or p521"
expect_rc 2 "p256 on t194" "$FUSELINE" keygen --chip t194 --pkc p256 --out x.json
expect_rc 2 "kek0 on t234" "$FUSELINE" keygen --chip t234 --pkc rsa3k --kek0 --name g --out x.json
expect_err "kek0"
expect_rc 2 "oem-k1 on t194" "$FUSELINE" keygen --chip t194 --pkc rsa3k --oem-k1 --name g --out x.json
expect_rc 2 "--pkc-count 4" "$FUSELINE" keygen --chip t234 --pkc rsa3k --pkc-count 4 --out x.json
expect_rc 2 "two PKC keys on t194" "$FUSELINE" keygen --chip t194 --pkc rsa3k --pkc-count 2 --name g --out x.json
expect_rc 3 "missing token" "$FUSELINE" keygen --token pkcs11:token=nosuch --chip t234 --pkc p256 --name g --out x.json
expect_err "no token matches"
echo 00000000 > "$T/wrong.pin"; chmod 600 "$T/wrong.pin"   # a production keyset refuses a PIN file others can read
expect_rc 3 "wrong PIN" "$FUSELINE" keygen --pin-source "file:$T/wrong.pin" --chip t234 --pkc p256 --name g --out x.json
expect_err "CKR_PIN_INCORRECT"
expect_rc 3 "unset PIN variable" "$FUSELINE" keygen --pin-source env:NO_SUCH_VAR --chip t234 --pkc p256 --name g --out x.json
expect_rc 2 "--out in a missing directory" "$FUSELINE" keygen --chip t234 --pkc p256 --sbk --name h --out "$T/nodir/x.json"
[ ! -e x.json ] || fail "x.json left behind"
after=$(p11tool --login --list-all pkcs11:token=lab 2>/dev/null | grep -c '^Object')
[ "$before" = "$after" ] || fail "failed runs changed the token: $before objects before, $after after"
pass "failed runs left the token unchanged ($after objects)"
ls "$T"/nodir* "$T"/*.tmp.* 2>/dev/null && fail "temp files left behind"

# verify keyset finds what changed.
cp a.json trunc.json; truncate -s 200 trunc.json
expect_rc 2 "truncated manifest" "$FUSELINE" verify keyset trunc.json
expect_err "trunc.json"
echo 'not json' > garbage.json
expect_rc 2 "manifest not JSON" "$FUSELINE" verify keyset garbage.json
expect_rc 2 "missing manifest" "$FUSELINE" verify keyset nosuch.json
python3 - a.json tampered.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["keys"][0]["tegra_pkc_hash"] = "0x" + "00" * 64
json.dump(d, open(sys.argv[2], "w"))
PY
expect_rc 5 "tampered tegra_pkc_hash" "$FUSELINE" verify keyset tampered.json
grep -q 'pkc0.*MISMATCH.*tegra_pkc_hash' "$T/out" || fail "mismatch not named"
pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --delete-object --type privkey \
  --label b-pkc0 >/dev/null 2>&1 || fail "cannot delete b-pkc0"
expect_rc 5 "key deleted from the token" "$FUSELINE" verify keyset b.json --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["ok"] is False and "not found" in o["keys"][0]["problems"][0]' "$T/out" \
  || fail "verify --json does not name the missing key"
done_testing
