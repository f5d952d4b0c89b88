#!/usr/bin/env bash
# The CLI's contract without a token: every registered command has --help with
# examples, usage errors exit 2 with one line, --json failures are one JSON
# object carrying the documented exit code, --version works.
. "$SRCDIR/tests/lib.sh"

expect_rc 0 "--version" "$FUSELINE" --version
grep -qE '^fuseline [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" || fail "version line"
expect_rc 2 "no command" "$FUSELINE"
expect_rc 2 "unknown command" "$FUSELINE" frobnicate
grep -q "unknown command 'frobnicate'" "$T/err" || fail "unknown command not named"
expect_rc 0 "--help" "$FUSELINE" --help
grep -q 'Exit status' "$T/out" || fail "--help lacks the exit codes"
cmds=$(awk '/^Commands:/{f=1;next} f && /^  [a-z]/{print $1} f && /^$/{exit}' "$T/out")
[ -n "$cmds" ] || fail "no commands listed"
for c in $cmds; do
  expect_rc 0 "$c --help" "$FUSELINE" "$c" --help
  subs=$(awk '/^WHAT:/{f=1;next} f && /^  [a-z]/{print $1}' "$T/out")
  if [ -n "$subs" ]; then   # a command with subjects: each has its own help
    for w in $subs; do
      expect_rc 0 "$c $w --help" "$FUSELINE" "$c" "$w" --help
      grep -qi 'example' "$T/out" || fail "$c $w --help has no examples"
      python3 "$SRCDIR/tests/tools/help-examples.py" "$T/out" >&2 || fail "$c $w --help: examples cannot be pasted"
      cp "$T/out" "$T/help.want"
      expect_rc 0 "$c $w -h" "$FUSELINE" "$c" "$w" -h
      cmp -s "$T/out" "$T/help.want" || fail "$c $w -h differs from --help"
      expect_rc 0 "help $c $w" "$FUSELINE" help "$c" "$w"
      cmp -s "$T/out" "$T/help.want" || fail "fuseline help $c $w differs from $c $w --help"
      grep -q -- '--json' "$T/out" || fail "$c $w --help does not offer --json"
      # A usage error names the program the user typed, and its help.
      expect_rc 2 "$c $w --frobnicate" "$FUSELINE" "$c" "$w" --frobnicate
      grep -q "^fuseline $c $w: unrecognized option '--frobnicate'" "$T/err" || fail "$c $w: usage error names another program"
      grep -qF "Try \`fuseline $c $w --help'" "$T/err" || fail "$c $w: 'Try' names another program"
    done
    continue
  fi
  grep -qi 'example' "$T/out" || fail "$c --help has no examples"
  grep -q -- '--json' "$T/out" || fail "$c --help does not offer --json"
  python3 "$SRCDIR/tests/tools/help-examples.py" "$T/out" >&2 || fail "$c --help: examples cannot be pasted"
  cp "$T/out" "$T/help.want"
  expect_rc 0 "$c -h" "$FUSELINE" "$c" -h
  cmp -s "$T/out" "$T/help.want" || fail "$c -h differs from --help"
  expect_rc 0 "help $c" "$FUSELINE" help "$c"
  cmp -s "$T/out" "$T/help.want" || fail "fuseline help $c differs from $c --help"
  expect_rc 2 "$c --frobnicate" "$FUSELINE" "$c" --frobnicate
  grep -q "^fuseline $c: unrecognized option '--frobnicate'" "$T/err" || fail "$c: usage error names another program"
done
# Modes of one command that exclude each other say so (not "unrecognized").
expect_rc 2 "keygen --uefi --identity-ca" "$FUSELINE" keygen --uefi --identity-ca --keyset k.json
expect_err "--uefi and --identity-ca are separate keygen modes"
! grep -q unrecognized "$T/err" || fail "keygen --uefi --identity-ca: 'unrecognized option'"
# Help of the modes too: sign --help lists every exit code sign can give.
expect_rc 0 "sign --help" "$FUSELINE" sign --help
exits=$(tr '\n' ' ' < "$T/out" | grep -o 'Exit:[^.]*' | tr -s ' ')
for code in 0 1 2 3 5 6 7; do grep -qE "[:,] $code " <<<"$exits" || fail "sign --help omits exit code $code: $exits"; done
for m in "keygen --uefi" "keygen --identity-ca" "keygen --export-pub x" "sign --uefi-var db" "sign --encrypt aes-gcm"; do
  expect_rc 0 "$m --help" "$FUSELINE" $m --help
  python3 "$SRCDIR/tests/tools/help-examples.py" "$T/out" >&2 || fail "$m --help: examples cannot be pasted"
done
expect_rc 2 "verify without a subject" "$FUSELINE" verify
expect_rc 2 "unknown option" "$FUSELINE" keygen --frobnicate
expect_rc 2 "unknown option with --json" "$FUSELINE" keygen --frobnicate --json
# one_usage_json COMMAND FRAGMENT: stdout is one JSON object, exit_code 2,
# the command named, and the reason itself (not a pointer to stderr).
one_usage_json() {
  python3 - "$T/out" "$1" "$2" <<'PY' || fail "usage error under --json: not one JSON object carrying '$2'"
import json, sys
l = open(sys.argv[1]).read().splitlines()
assert len(l) == 1, l
o = json.loads(l[0])
assert o["ok"] is False and o["exit_code"] == 2 and o["command"] == sys.argv[2], o
assert sys.argv[3] in o["error"] and "stderr" not in o["error"], o
PY
}
one_usage_json keygen "unrecognized option '--frobnicate'"
grep -q "unrecognized option '--frobnicate'" "$T/err" || fail "the reason is not on stderr"
expect_rc 2 "unknown command with --json" "$FUSELINE" bogus --json
one_usage_json "" "unknown command 'bogus'"
expect_rc 2 "bad --chip with --json" "$FUSELINE" keygen --chip t999 --json
one_usage_json keygen "unknown chip 't999'"
expect_rc 2 "verify subcommand usage error with --json" "$FUSELINE" verify keyset --frob --json
one_usage_json "verify keyset" "unrecognized option '--frob'"
expect_rc 2 "unknown verify subject with --json" "$FUSELINE" verify frob --json
one_usage_json verify "unknown verify subject 'frob'"
expect_rc 2 "keygen without --chip" "$FUSELINE" keygen --pkc rsa3k --out x.json
grep -q -- '--chip is required' "$T/err" || fail "missing --chip not named"
# A fuse-key option given many times is one role (it used to run past the
# role array and crash); with no token the run stops at "no token given".
expect_rc 2 "keygen --sbk x20" env -u FUSELINE_TOKEN "$FUSELINE" keygen --chip t234 --pkc rsa3k \
  $(printf -- '--sbk %.0s' $(seq 20)) --lab --out x.json
expect_err "no token given"

# --json failures: one JSON object on stdout, with the same code as the exit.
unset FUSELINE_TOKEN
expect_rc 2 "verify keyset on a missing file, --json" "$FUSELINE" verify keyset nosuch.json --json
python3 - "$T/out" <<'PY' || fail "JSON error object"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert o["ok"] is False and o["exit_code"] == 2 and "nosuch.json" in o["error"], o
PY
expect_err "nosuch.json"
printf '{"format":"fuseline-keyset/1","chip":"t234","profile":"lab","token":{"uri":"pkcs11:token=none"},"keys":[]}' > k.json
expect_rc 3 "token absent is exit 3" "$FUSELINE" verify keyset k.json --module /nonexistent/module.so
expect_err "module"

# A PIN carried in a token URI (pin-value=) never reaches an error message,
# on stderr or in JSON: an unparseable URI, and a token that is not there
# (SoftHSM2 with an empty token directory). The made-up PIN travels in the
# environment, not argv.
mkdir -p "$T/notokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$T/notokens" > "$T/empty.conf"
for uri in 'pkcs11:token=lab%ZZ?pin-value=S3cretPin42' 'pkcs11:token=nosuch?pin-value=S3cretPin42&module-path=/usr/lib/softhsm/libsofthsm2.so'; do
  run env SOFTHSM2_CONF="$T/empty.conf" FUSELINE_TOKEN="$uri" "$FUSELINE" verify keyset k.json --json
  [ "$RC" -eq 2 ] || [ "$RC" -eq 3 ] || fail "pin-value URI: exit $RC"
  grep -q 'token=' "$T/err" || fail "pin-value URI: the message does not name the URI"
  ! grep -q 'S3cretPin42' "$T/err" "$T/out" || fail "the PIN from pin-value= is in an error message"
  pass "pin-value= hidden in the error (exit $RC)"
done

# verify uefi: a directory with no bundle in it is not a bundle (exit 2); a
# bundle with a bad file in it fails verification (exit 5).
mkdir -p emptydir partial
expect_rc 2 "verify uefi of an empty directory" "$FUSELINE" verify uefi emptydir
expect_err "not a UEFI key bundle"
printf 'garbage' > partial/PK.esl
expect_rc 5 "verify uefi of a broken bundle" "$FUSELINE" verify uefi partial

# Output that cannot be written is exit 1, for help and version too.
for a in --version --help "keygen --help"; do
  set +e; "$FUSELINE" $a >/dev/full 2>"$T/err"; RC=$?; set -e
  [ "$RC" -eq 1 ] || fail "fuseline $a >/dev/full: exit $RC, expected 1"
done
pass "--version/--help >/dev/full: exit 1"
done_testing
