# lib.sh — shared helpers for the shell tests (sourced). Every helper fails
# the test loudly; nothing here decides an expected value.
set -euo pipefail
: "${FUSELINE:?run through meson test}"
: "${SRCDIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/fl-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
NPASS=0

fail() { echo "FAIL: $*" >&2; [ -s "$T/err" ] && sed 's/^/  stderr: /' "$T/err" >&2; exit 1; }
pass() { NPASS=$((NPASS + 1)); echo "ok $NPASS - $*"; }

# run CMD...: runs with stdout in $T/out, stderr in $T/err; rc in $RC.
run() { set +e; "$@" >"$T/out" 2>"$T/err"; RC=$?; set -e; }
# expect_rc N what CMD...
expect_rc() {
  local want=$1 what=$2; shift 2
  run "$@"
  [ "$RC" -eq "$want" ] || fail "$what: exit $RC, expected $want"
  pass "$what (exit $want)"
}
# The error is one line on stderr, containing a fragment.
expect_err() {
  grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1'"
  local n; n=$(grep -c 'error:' "$T/err" || true)
  [ "$n" -eq 1 ] || fail "expected exactly one error line, got $n"
}

# A fresh SoftHSM2 token for this test only (exports SOFTHSM2_CONF, FUSELINE_*).
lab_token() {
  eval "$(LAB_INIT=${LAB_INIT:?} "$SRCDIR/hsm/lab-token.sh" "$T/lab")"
  export MODULE=$FUSELINE_MODULE
  export GNUTLS_PIN; GNUTLS_PIN=$(cat "$FUSELINE_PIN_FILE")   # p11tool reads it from the environment
  export TEST_PIN=$GNUTLS_PIN                                   # pkcs11-tool --pin env:TEST_PIN
}

# A manifest field with python3's json (independent of fuseline's parser).
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("print(" + sys.argv[2] + ")")' "$@"; }

# No secret may show up: fail if any of the files contains the hex string.
assert_absent() {
  local needle=$1; shift
  for f in "$@"; do
    [ -e "$f" ] || continue
    if grep -qiF -- "$needle" "$f"; then fail "secret value found in $f"; fi
  done
}

# A part of a test that cannot run on this machine (a privilege, a kernel
# feature, a token mechanism missing): said on the spot, and the whole test
# then ends as SKIP (exit 77) naming every such part, after everything else
# has run and passed. Never a silent pass.
NOT_RUN=""
not_run() { echo "# NOT RUN: $*"; NOT_RUN="${NOT_RUN:+$NOT_RUN; }$*"; }

done_testing() {
  echo "1..$NPASS"
  if [ -n "$NOT_RUN" ]; then
    echo "SKIP: all else passed, but not run here: $NOT_RUN"
    exit 77
  fi
}
