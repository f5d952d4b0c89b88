#!/usr/bin/env bash
# Signed ledger checkpoints (`verify ledger --sign-with ROLE`) on a SoftHSM2
# token: the station key is made with pkcs11-tool and entered in the keyset
# by hand (fuseline has no keygen mode for it), the stored signature is
# checked with `openssl dgst -verify` over the checkpoint bytes rebuilt in
# Python from the documented format, and a history rewritten with every hash
# recomputed (which the chain alone cannot see) fails verification. On
# PostgreSQL (hsm-ledger-checkpoint-pg, tests/lib-ledger.sh) the same, the
# rows read and tampered with by psql.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-ledger.sh"
: "${LEDGER_WRITER:?}"
lab_token
W=$LEDGER_WRITER

run "$FUSELINE" keygen --chip t234 --pkc p256 --lab --name cp --out keyset.json
[ "$RC" -eq 0 ] || fail "keygen: $(cat "$T/err")"
pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --keypairgen \
  --key-type EC:secp384r1 --label cp-station --id 5a01 >/dev/null 2>&1 || fail "pkcs11-tool keypairgen"
p11tool --export-pubkey "pkcs11:token=lab;object=cp-station;type=public" > station.pem 2>/dev/null \
  || fail "p11tool cannot export the station public key"
openssl pkey -pubin -in station.pem -outform DER -out station.der || fail "station public key"
STATION_SHA=$(sha256sum < station.der | cut -d' ' -f1)
add_role() { # manifest role sha256 -> manifest with a station role
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["keys"].append({"role": sys.argv[2], "type": "p384", "label": "cp-station",
                  "uri": "pkcs11:token=lab;object=cp-station;type=private", "public_key_sha256": sys.argv[3]})
json.dump(d, open(sys.argv[1], "w"), indent=2)
PY
}
add_role keyset.json station "$STATION_SHA"

L=$(ldb l)
"$W" --db "$L" --count 5 --ecid 80012344705df1172c0000000d020080 --state planned --quiet || fail "writer"

# ---- sign a checkpoint -----------------------------------------------------------------
expect_rc 0 "verify ledger --sign-with station" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json \
  --sign-with station --json
python3 - "$T/out" "$STATION_SHA" <<'PY' || fail "checkpoint JSON: $(cat "$T/out")"
import json, sys
o = json.loads(open(sys.argv[1]).read())
c = o["checkpoint_added"]
assert o["ok"] and c["event"] == 5 and c["role"] == "station" and c["scheme"] == "ecdsa-sha384", o
assert c["public_key_sha256"] == sys.argv[2], c
PY
[ "$(lsql l "SELECT count(*) FROM checkpoints")" -eq 1 ] || fail "no checkpoint row"
assert_absent "$(cat "$FUSELINE_PIN_FILE")" "$T/out" "$T/err"

# openssl checks the stored signature over bytes rebuilt from the format
CP=$(lsql l "SELECT time, event_id, $(lhex head_hash), $(lhex signature), $(lhex public_key) FROM checkpoints")
EVH=$(lsql l "SELECT $(lhex hash) FROM events WHERE id = $(echo "$CP" | cut -d'|' -f2)")
python3 - "$CP" "$EVH" <<'PY' || fail "cannot rebuild the checkpoint bytes"
import struct, sys
t, ev, head, sig, pk = sys.argv[1].split("|")
ev = int(ev); head, sig, pk = bytes.fromhex(head), bytes.fromhex(sig), bytes.fromhex(pk)
assert head == bytes.fromhex(sys.argv[2])
F = lambda b: struct.pack(">I", len(b)) + b
open("cp.msg", "wb").write(F(b"fuseline-checkpoint/1") + F(struct.pack(">q", ev)) + F(bytes(head)) + F(t.encode()))
open("cp.pub.der", "wb").write(bytes(pk))
# raw r||s (as C_Sign returns it) -> DER ECDSA-Sig-Value for openssl
sig = bytes(sig); n = len(sig) // 2
def der_int(x):
    x = x.lstrip(b"\0") or b"\0"
    if x[0] & 0x80: x = b"\0" + x
    return b"\x02" + bytes([len(x)]) + x
body = der_int(sig[:n]) + der_int(sig[n:])
open("cp.sig", "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
cmp cp.pub.der station.der || fail "stored public key is not the station key"
openssl dgst -sha384 -verify station.pem -signature cp.sig cp.msg >/dev/null || fail "openssl rejects the checkpoint signature"
pass "openssl verifies the checkpoint signature over the documented bytes"

expect_rc 0 "verify ledger --keyset" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json
grep -q "signed checkpoints: 1, newest at event 5 by station (keys checked against the keyset)" "$T/out" \
  || fail "checkpoint not reported: $(cat "$T/out")"
"$W" --db "$L" --count 2 --quiet || fail "writer after the checkpoint"
expect_rc 0 "verify after more events" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json

# ---- what a checkpoint catches ----------------------------------------------------------
lcopy l pristine
# a rewritten history: event 2 edited, every later hash recomputed by an attacker
ltamper l "UPDATE events SET outcome='failed' WHERE id=2"
python3 - "$L" "$SRCDIR/tests/tools" > rehash <<'PY' || fail "re-hash in Python"
import hashlib, sys
sys.path.insert(0, sys.argv[2])
chain = __import__("ledger-chain")
rows = chain.events(sys.argv[1])
prev = rows[0][11]
for row in rows[1:]:
    h = hashlib.sha256(prev + chain.canon(row[:10])).digest()
    print(row[0], prev.hex(), h.hex())
    prev = h
PY
sql=
while read -r id prev h; do sql+="UPDATE events SET prev_hash = $(lblob "$prev"), hash = $(lblob "$h") WHERE id = $id; "; done < rehash
ltamper l "$sql"
lchain l >/dev/null || fail "the rewritten chain should be self-consistent"
expect_rc 5 "verify a rewritten history" "$FUSELINE" verify ledger --db "$L" --json
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); assert o["fault"]["kind"]=="checkpoint" and o["fault"]["event"]==5, o' \
  "$T/out" || fail "rewrite: $(head -1 "$T/out")"
expect_err "rewritten"

# a forged checkpoint signature
lcopy pristine l
if is_pg; then
  ltamper l "UPDATE checkpoints SET signature = decode(repeat('00', length(signature)), 'hex')"
else
  sqlite3 l.db "DROP TRIGGER checkpoints_no_update; UPDATE checkpoints SET signature = zeroblob(length(signature))"
fi
expect_rc 5 "verify a forged checkpoint signature" "$FUSELINE" verify ledger --db "$L"
expect_err "checkpoint 1"

# a checkpoint by a key the keyset does not trust
lcopy pristine l
cp keyset.json other.json
python3 - other.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in d["keys"]:
    if k["role"] == "station":
        k["public_key_sha256"] = "00" * 32
json.dump(d, open(sys.argv[1], "w"))
PY
expect_rc 5 "verify against a keyset with another station key" "$FUSELINE" verify ledger --db "$L" --keyset other.json
expect_err "not the keyset's 'station' key"

# ---- refusals ---------------------------------------------------------------------------
expect_rc 2 "--sign-with a secure-boot key" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json --sign-with pkc0
expect_err "secure-boot key"
expect_rc 2 "--sign-with without --keyset" "$FUSELINE" verify ledger --db "$L" --sign-with station
expect_rc 2 "--sign-with an unknown role" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json --sign-with nope
if is_pg; then NONE=$(pg_uri nosuchdb); else NONE=none.db; fi
expect_rc 2 "--sign-with on a missing database" "$FUSELINE" verify ledger --db "$NONE" --keyset keyset.json \
  --sign-with station
[ ! -e none.db ] || fail "--sign-with created a database"
echo "not the pin" > wrong.pin
expect_rc 3 "--sign-with and a wrong PIN" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json \
  --sign-with station --pin-source file:wrong.pin
[ "$(lsql l "SELECT count(*) FROM checkpoints")" -eq 1 ] || fail "a refused signing stored a checkpoint"
# a failing chain is never signed
ltamper l "UPDATE events SET outcome='x' WHERE id=6"
expect_rc 5 "--sign-with on a broken chain" "$FUSELINE" verify ledger --db "$L" --keyset keyset.json --sign-with station
[ "$(lsql l "SELECT count(*) FROM checkpoints")" -eq 1 ] || fail "a broken chain was checkpointed"

done_testing
