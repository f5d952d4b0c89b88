# hsm-ledger-events.sh — every step on the record: keygen (each mode),
# fuse-xml --out/--package and sign (image, MAC, batch, UEFI) leave the
# ledger event the README's table documents, with hashes recomputed here by
# independent tools (sha256sum, openssl, p11tool, pkcs11-tool, a Python
# plan hash), no secret in the database or its export, and a chain that
# `verify ledger` and the independent tests/tools/ledger-chain.py accept.
# On PostgreSQL (hsm-ledger-events-pg, tests/lib-ledger.sh) the ledger is a
# database named by $FUSELINE_DB, read with psql and dumped with pg_dump.
. "$SRCDIR/tests/lib.sh"
. "$SRCDIR/tests/lib-line.sh"
. "$SRCDIR/tests/lib-ledger.sh"
line_setup
if is_pg; then
  export FUSELINE_DB; FUSELINE_DB=$(ldb fuseline)   # no --db: $FUSELINE_DB, as every writer uses
  DB=$FUSELINE_DB
else
  unset FUSELINE_DB            # the default ledger: ./fuseline.db, as every writer uses
  DB=$T/fuseline.db
fi

# ev ID EXPR: a field of event ID as the backend's client returns its details (python on d, the details object).
ev() { lsql fuseline "SELECT details FROM events WHERE id=$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"; }
row() { lsql fuseline "SELECT $2 FROM events WHERE id=$1"; }
# The event id the --json result carries.
evid() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["event_id"])' "$T/out"; }
spki_of_label() {
  p11tool --export-pubkey "pkcs11:token=lab;object=$1;type=public" 2>/dev/null | openssl pkey -pubin -outform DER | sha
}
sha() { sha256sum "${1:--}" | cut -d' ' -f1; }
aes_value() {   # the value pkcs11-tool reads out (test only)
  pkcs11-tool --module "$MODULE" --token-label lab --login --pin env:TEST_PIN --read-object --type secrkey \
    --label "$1" 2>/dev/null | xxd -p | tr -d '\n'
}
kcv_of() { head -c 16 /dev/zero | openssl enc -aes-$(( ${#1} * 4 ))-ecb -nopad -K "$1" | xxd -p | head -c 6; }

# --- keygen: secure-boot keys, no --db: ./fuseline.db ------------------------------------------------
expect_rc 0 "keygen without --db records in ./fuseline.db" "$FUSELINE" keygen --chip t234 --pkc rsa3k --sbk --oem-k1 \
  --name ev --lab --out ks.json --station st-7 --operator alice --json
if is_pg; then [ "$(lsql fuseline "SELECT count(*) FROM events")" -ge 1 ] || fail "no event in \$FUSELINE_DB"
else [ -s "$DB" ] || fail "no ./fuseline.db"; fi
id=$(evid)
[ "$(row "$id" "command||'|'||kind||'|'||outcome||'|'||coalesce(ecid,'NULL')||'|'||station||'|'||operator")" = \
  "keygen|record|ok|NULL|st-7|alice" ] || fail "keygen event row: $(row "$id" '*')"
[ "$(ev "$id" 'd["mode"]')" = secure-boot ] || fail "keygen mode"
[ "$(ev "$id" 'd["keyset_sha256"]')" = "$(sha ks.json)" ] || fail "keyset_sha256 is not sha256sum of ks.json"
[ "$(ev "$id" '[k["role"] for k in d["keys"]]')" = "['pkc0', 'sbk', 'oem-k1']" ] || fail "keygen roles"
[ "$(ev "$id" 'd["keys"][0]["public_key_sha256"]')" = "$(spki_of_label ev-pkc0)" ] || fail "pkc0 SPKI hash differs from p11tool's"
SBK=$(aes_value ev-sbk); OEM=$(aes_value ev-oem-k1)
[ ${#SBK} -eq 64 ] && [ ${#OEM} -eq 64 ] || fail "pkcs11-tool read no fuse key values"
[ "$(ev "$id" 'd["keys"][1]["kcv"]')" = "$(kcv_of "$SBK")" ] || fail "sbk kcv differs from openssl's"
[ "$(ev "$id" 'd["keys"][2]["kcv"]')" = "$(kcv_of "$OEM")" ] || fail "oem-k1 kcv differs from openssl's"
pass "keygen event: station/operator, keyset hash (sha256sum), SPKI hash (p11tool+openssl), kcv (openssl)"

# --- keygen: adding keys, imports ----------------------------------------------------------------------
expect_rc 0 "keygen --keyset --ekb-disk" "$FUSELINE" keygen --keyset ks.json --ekb-disk --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], [k["role"] for k in d["keys"]], d["keyset_sha256"]')" = \
  "('add', ['ekb-disk'], '$(sha ks.json)')" ] || fail "add event: $(row "$id" details)"
EKB=$(aes_value ev-ekb-disk)
[ "$(ev "$id" 'd["keys"][0]["kcv"]')" = "$(kcv_of "$EKB")" ] || fail "ekb-disk kcv"
pass "keygen --keyset: mode add, only the new key, kcv (openssl)"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out imp.pem 2>/dev/null
expect_rc 0 "keygen --import-pem pkc1" "$FUSELINE" keygen --import-pem imp.pem --role pkc1 --keyset ks.json --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], d["keys"][0]["role"], d["keys"][0]["imported"]')" = "('import', 'pkc1', True)" ] \
  || fail "import-pem event: $(row "$id" details)"
[ "$(ev "$id" 'd["keys"][0]["public_key_sha256"]')" = "$(openssl pkey -in imp.pem -pubout -outform DER | sha)" ] \
  || fail "imported key's SPKI hash differs from openssl's"
OEM2=$(openssl rand -hex 32)
echo "$OEM2" > oem2.hex
expect_rc 0 "keygen --import-hex oem-k2" "$FUSELINE" keygen --import-hex oem2.hex --role oem-k2 --keyset ks.json --json
id=$(evid)
[ "$(ev "$id" 'd["keys"][0]["kcv"]')" = "$(kcv_of "$OEM2")" ] || fail "imported oem-k2 kcv"
pass "keygen imports: SPKI hash (openssl) and kcv (openssl) of what was imported"

# --- keygen --identity-ca, --ftpm-ek-ca, --uefi ----------------------------------------------------------
expect_rc 0 "keygen --identity-ca" "$FUSELINE" keygen --identity-ca --keyset ks.json --subject "/O=Ev/CN=Ev CA" --json
id=$(evid)
CA=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["certificate"])' "$T/out")
[ "$(ev "$id" 'd["mode"], d["role"]')" = "('identity-ca', 'identity-ca')" ] || fail "identity-ca event"
[ "$(ev "$id" 'd["certificate_sha256"]')" = "$(openssl x509 -in "$CA" -outform DER | sha)" ] || fail "CA cert hash"
[ "$(ev "$id" 'd["public_key_sha256"]')" = "$(openssl x509 -in "$CA" -pubkey -noout | openssl pkey -pubin -outform DER | sha)" ] \
  || fail "CA SPKI hash"
[ "$(ev "$id" 'd["keyset_sha256"]')" = "$(sha ks.json)" ] || fail "identity-ca keyset hash"
pass "keygen --identity-ca event: certificate and SPKI hashes (openssl)"
expect_rc 0 "keygen --ftpm-ek-ca" "$FUSELINE" keygen --ftpm-ek-ca --keyset ks.json --subject "/O=Ev/CN=Ev EK CA" --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], d["role"]')" = "('ftpm-ek-ca', 'ftpm-ek-ca')" ] || fail "ftpm-ek-ca event"
pass "keygen --ftpm-ek-ca event"

expect_rc 0 "keygen --uefi" "$FUSELINE" keygen --uefi --keyset ks.json --out-dir uefi --subject "/O=Ev" --json
id=$(evid)
[ "$(ev "$id" 'd["mode"]')" = uefi ] || fail "uefi mode"
for f in PK.esl KEK.esl db.esl PK.auth KEK.auth db.auth noPK.auth uefi_keys.conf; do
  [ "$(ev "$id" "d['files_sha256']['$f']")" = "$(sha "uefi/$f")" ] || fail "uefi $f hash"
done
n=$(ev "$id" 'len(d["keys"])')
for ((i = 0; i < n; i++)); do
  cert=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["keys"][int(sys.argv[2])]["certificate"])' "$T/out" "$i")
  [ -f "$cert" ] || cert=uefi/$cert
  [ "$(ev "$id" "d['keys'][$i]['certificate_sha256']")" = "$(openssl x509 -in "$cert" -outform DER | sha)" ] \
    || fail "uefi key $i certificate hash"
  label=$(ev "$id" "d['keys'][$i]['label']")
  [ "$(ev "$id" "d['keys'][$i]['public_key_sha256']")" = "$(spki_of_label "$label")" ] || fail "uefi $label SPKI"
done
pass "keygen --uefi event: every bundle file (sha256sum), every certificate (openssl), every key's SPKI (p11tool)"

# --- fuse-xml --out and --package ---------------------------------------------------------------------------
expect_rc 0 "fuse-xml --out" "$FUSELINE" fuse-xml --keyset ks.json --template orin-nano-8gb --out plan.xml --json
id=$(evid)
python3 - plan.xml t234 "$(ev "$id" 'd["plan_sha256"]')" <<'PY' || fail "plan_sha256 is not the independent plan hash"
import hashlib, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
text = "fuseline-fuse-plan/1\nchip %s\nmagic 0x%08x\n" % (sys.argv[2], int(root.get("MagicId"), 16))
for f in root.findall("fuse"):
    size = int(f.get("size"))
    text += "%s %d %0*x\n" % (f.get("name"), size, 2 * size, int(f.get("value"), 16))
assert hashlib.sha256(text.encode()).hexdigest() == sys.argv[3]
PY
[ "$(ev "$id" 'd["mode"], d["keyset_sha256"]')" = "('plan', '$(sha ks.json)')" ] || fail "plan event"
[ "$(ev "$id" '[f.get("kcv") for f in d["fuses"] if f.get("secret")]')" = "['$(kcv_of "$SBK")']" ] \
  || fail "plan event: the SBK fuse by kcv"
pass "fuse-xml --out event: plan hash (Python over the XML), keyset hash, key fuses by kcv only"
expect_rc 0 "fuse-xml --package" "$FUSELINE" fuse-xml --package pkg.tbz2 --bsp "$BSP" --board orin-nano-8gb \
  --plan plan.xml --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], d["package_sha256"], d["plan_sha256"]')" = \
  "('package', '$(sha pkg.tbz2)', '$(ev $((id - 1)) 'd["plan_sha256"]')')" ] || fail "package event: $(row "$id" details)"
pass "fuse-xml --package event: package hash (sha256sum), the plan's hash as the plan event has it"

# --- sign -----------------------------------------------------------------------------------------------------
head -c 100000 /dev/urandom > img.bin
PKC0=$(spki_of_label ev-pkc0)
expect_rc 0 "sign a range" "$FUSELINE" sign --keyset ks.json --role pkc0 --in img.bin --offset 1000 --length 5000 \
  --format tegra --out img.sig --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], d["role"], d["key_fingerprint"], d["offset"], d["length"]')" = \
  "('image', 'pkc0', 'sha256:$PKC0', 1000, 5000)" ] || fail "sign event: $(row "$id" details)"
[ "$(ev "$id" 'd["file_sha256"]')" = "$(tail -c +1001 img.bin | head -c 5000 | sha)" ] || fail "signed range hash"
[ "$(ev "$id" 'd["signature_sha256"]')" = "$(sha img.sig)" ] || fail "signature hash"
pass "sign event: role, SPKI fingerprint (p11tool), hash of bytes 1000-5999 (tail|head|sha256sum), signature hash"
expect_rc 0 "sign a MAC" "$FUSELINE" sign --keyset ks.json --role sbk --scheme hmac-sha256 --in img.bin --out img.mac --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], d["role"], d["key_fingerprint"], d["file_sha256"]')" = \
  "('mac', 'sbk', 'kcv:$(kcv_of "$SBK")', '$(sha img.bin)')" ] || fail "MAC event: $(row "$id" details)"
pass "sign MAC event: the key by its kcv (openssl), never its value"

for i in 1 2 3; do head -c $((i * 777)) /dev/urandom > b$i.bin; echo "b$i.bin b$i.sig" >> list.txt; done
expect_rc 0 "sign --batch" "$FUSELINE" sign --keyset ks.json --role pkc0 --batch list.txt --json
last=$(evid)
for i in 1 2 3; do
  id=$((last - 3 + i))
  [ "$(ev "$id" 'd["in"], d["file_sha256"], d["signature_sha256"]')" = "('b$i.bin', '$(sha b$i.bin)', '$(sha b$i.sig)')" ] \
    || fail "batch event $i: $(row "$id" details)"
done
pass "sign --batch: one event per file, each with its own hashes (sha256sum)"

openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=extra-db -days 30 -out extra.crt 2>/dev/null
expect_rc 0 "sign --uefi-var db" "$FUSELINE" sign --uefi-var db --append extra.crt --signer uefi-kek --keyset ks.json \
  --out db-up.auth --json
id=$(evid)
KEKLABEL=$(jget ks.json '[k["label"] for k in d["keys"] if k["role"] == "uefi-kek"][0]')
[ "$(ev "$id" 'd["mode"], d["role"], d["key_fingerprint"], d["auth_sha256"], d["append_certs"][0]["sha256"]')" = \
  "('uefi-var', 'uefi-kek', 'sha256:$(spki_of_label "$KEKLABEL")', '$(sha db-up.auth)', '$(sha extra.crt)')" ] \
  || fail "uefi-var event: $(row "$id" details)"
cp img.bin payload.bin
expect_rc 0 "sign --uefi-payload split" "$FUSELINE" sign --uefi-payload payload.bin --signer uefi-db1 --keyset ks.json \
  --mode split --json
id=$(evid)
[ "$(ev "$id" 'd["mode"], d["file_sha256"], d["signature_sha256"]')" = \
  "('uefi-payload', '$(sha payload.bin)', '$(sha payload.bin.sig)')" ] || fail "uefi-payload event: $(row "$id" details)"
pass "sign --uefi-var/--uefi-payload events: signer SPKI (p11tool), .auth, certificate, payload and signature hashes"

# --- ledger show --command, export ----------------------------------------------------------------------------------
expect_rc 0 "ledger show --command keygen" "$FUSELINE" ledger show --command keygen
grep -q '^7 keygen events$' "$T/out" || fail "ledger show --command keygen: $(tail -1 "$T/out")"
expect_rc 0 "ledger show --command sign --json" "$FUSELINE" ledger show --command sign --json
python3 - "$T/out" <<'PY' || fail "ledger show --command sign --json"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["ok"] and o["filter_command"] == "sign", o
assert [e["details"]["mode"] for e in o["events"]] == ["image", "mac", "image", "image", "image", "uefi-var", "uefi-payload"], o
assert all(e["ecid"] is None and e["kind"] == "record" for e in o["events"])
PY
expect_rc 2 "ledger show without an ECID or --command" "$FUSELINE" ledger show
expect_rc 0 "ledger export --command fuse-xml" "$FUSELINE" ledger export --command fuse-xml
[ "$(wc -l < "$T/out")" -eq 2 ] || fail "export --command fuse-xml: $(wc -l < "$T/out") lines"
"$FUSELINE" ledger export > export.jsonl || fail "ledger export"
pass "ledger show/export --command list the events that name no device"

# --- no secret anywhere; the chain holds -------------------------------------------------------------------------
PIN=$(cat "$FUSELINE_PIN_FILE")
KEYB64=$(grep -v -- '-----' imp.pem | sed -n 5p)
for s in "$SBK" "$OEM" "$OEM2" "$EKB" "$PIN" "$KEYB64"; do
  if is_pg; then
    "$PG_BINDIR/pg_dump" -h "$PG_SOCK" -U "$PG_SUPER" fuseline > dump.sql || fail "pg_dump"
    assert_absent "$s" dump.sql export.jsonl
    grep -qiF -- "$s" <(lsql fuseline "SELECT $(lhex hash), $(lhex prev_hash), details FROM events") \
      && fail "a secret is in the events"
  else
    assert_absent "$s" "$DB" "$DB-wal" export.jsonl
    grep -qiF -- "$s" <(sqlite3 "$DB" .dump) && fail "a secret is in the ledger dump"
  fi
done
pass "no fuse key value, imported key, or PIN in the database, its WAL, its dump or the export"
expect_rc 0 "verify ledger" "$FUSELINE" verify ledger
lchain fuseline > /dev/null || fail "the independent chain check fails"
pass "verify ledger PASS and the independent chain check agrees"

# --- a ledger that cannot be written -------------------------------------------------------------------------------
before=$(p11tool --login --list-all pkcs11:token=lab 2>/dev/null | grep -c '^Object')
expect_rc 2 "keygen with an unwritable ledger makes nothing" "$FUSELINE" keygen --chip t234 --pkc p256 --name nx --lab \
  --out nx.json --db "$T/no/such/dir/l.db"
[ ! -e nx.json ] || fail "a manifest appeared"
[ "$(p11tool --login --list-all pkcs11:token=lab 2>/dev/null | grep -c '^Object')" = "$before" ] || fail "a key appeared"
expect_rc 2 "sign with an unwritable ledger signs nothing" "$FUSELINE" sign --keyset ks.json --role pkc0 --in img.bin \
  --out nx.sig --db "$T/no/such/dir/l.db"
[ ! -e nx.sig ] || fail "a signature appeared"
pass "an unwritable ledger fails before any key or signature exists (exit 2)"

# The newest event edited: the ledger opens, but the append refuses (exit 5) after the key exists.
lcopy fuseline bad
ltamper bad "UPDATE events SET outcome='edited' WHERE id=(SELECT max(id) FROM events)"
expect_rc 5 "keygen whose event cannot be written: exit 5, key kept" "$FUSELINE" keygen --chip t234 --pkc p256 \
  --name late --lab --out late.json --db "$(ldb bad)" --json
expect_err "NOT on the record"
grep -qF "late.json records them" "$T/err" || fail "the error does not say the keys exist"
[ -s late.json ] || fail "the manifest is gone"
p11tool --login --list-privkeys "pkcs11:token=lab;object=late-pkc0" 2>/dev/null | grep -q late-pkc0 || fail "the key is gone"
python3 - "$T/out" <<'PY' || fail "--json of the unrecorded keygen"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["ok"] is False and o["exit_code"] == 5 and o["event_id"] is None and o["keyset"] == "late.json", o
assert "NOT on the record" in o["error"], o
PY
pass "a ledger refusing the append after keygen: the key and manifest stay, exit 5, error and JSON say so"
done_testing
