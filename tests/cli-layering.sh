#!/usr/bin/env bash
# The layering rules of DESIGN.md, checked on the source: the library never
# reads the environment and never talks to a terminal (no getenv, /dev/tty or
# isatty in lib/), and the CLI makes no OpenSSL, libxml2 or SQLite call
# (cmd/ is argument parsing, one library call, printing). Comments count too:
# a rule that needs an exception should say so here, not hide in a comment.
. "$SRCDIR/tests/lib.sh"
cd "$SRCDIR"

hits=$(grep -nE 'getenv|secure_getenv|/dev/tty|isatty|ttyname|tcgetattr' lib/*.c lib/*.h || true)
[ -z "$hits" ] || fail "lib/ reads the environment or a terminal:
$hits"
pass "lib/: no getenv, /dev/tty or isatty"

# OpenSSL: every public function carries one of these prefixes; libxml2's
# functions start with xml/html; SQLite's with sqlite3_.
ossl='(EVP|OPENSSL|X509|PEM|BIO|ERR|RAND|CRYPTO|BN|EC|ECDSA|RSA|ASN1|OSSL|PKCS7|PKCS12|CMS|HMAC|CMAC|SHA1|SHA224|SHA256|SHA384|SHA512|MD5|i2d|d2i|OBJ|BUF|DH|DSA)_[A-Za-z0-9_]*[[:space:]]*\('
hits=$(grep -nE "(^|[^A-Za-z0-9_])$ossl|(^|[^A-Za-z0-9_])(xml|html)[A-Z][A-Za-z0-9]*[[:space:]]*\(|sqlite3_[a-z0-9_]+[[:space:]]*\(" cmd/*.c cmd/*.h || true)
[ -z "$hits" ] || fail "cmd/ calls OpenSSL, libxml2 or SQLite directly:
$hits"
pass "cmd/: no OpenSSL, libxml2 or SQLite call"

hits=$(grep -nE '#[[:space:]]*include[[:space:]]*<(openssl|libxml|sqlite3)' cmd/*.c cmd/*.h || true)
[ -z "$hits" ] || fail "cmd/ includes OpenSSL, libxml2 or SQLite headers:
$hits"
pass "cmd/: no OpenSSL, libxml2 or SQLite header"

# Library messages describe the problem; the CLI names its own flags
# (lib/fuseline.h, enum fl_hint). No string literal in lib/ names a "--flag",
# apart from NVIDIA's and the project's tools' own flags that lib/ passes or
# quotes (the short allow-list is documented in tests/lib-flag-strings.py).
hits=$(python3 "$SRCDIR/tests/lib-flag-strings.py" lib/*.c lib/*.h)
[ -z "$hits" ] || fail "lib/ strings name command-line flags (describe the problem; let cmd/ add the flag with a hint):
$hits"
pass "lib/: no string names a CLI flag"

# The checks themselves find what they are for (a rule that matches nothing
# proves nothing): the same patterns against known offenders.
printf 'x = getenv("A");\nopen("/dev/tty", 0);\n' > "$T/lib-bad.c"
[ "$(grep -cE 'getenv|secure_getenv|/dev/tty|isatty' "$T/lib-bad.c")" -eq 2 ] || fail "the lib/ pattern misses"
printf 'EVP_PKEY_free(pk);\nOPENSSL_cleanse(b, n);\nxmlFreeDoc(d);\nsqlite3_open(p, &db);\nr = cli_pin(x);\n' > "$T/cmd-bad.c"
n=$(grep -cE "(^|[^A-Za-z0-9_])$ossl|(^|[^A-Za-z0-9_])(xml|html)[A-Z][A-Za-z0-9]*[[:space:]]*\(|sqlite3_[a-z0-9_]+[[:space:]]*\(" "$T/cmd-bad.c")
[ "$n" -eq 4 ] || fail "the cmd/ pattern finds $n of 4 offenders (and must not match cli_pin)"
cat > "$T/lib-flags.c" <<'EOF'
r = fl_err(ctx, -EINVAL, "--role %s needs --keyset", role); /* a comment may say --keyset */
x = "the file (use --out FILE)";
argv[k++] = "--instance";
y = "odmfuse.sh --test makes a TEST package";
z = "--test alone";
EOF
n=$(python3 "$SRCDIR/tests/lib-flag-strings.py" "$T/lib-flags.c" | wc -l)
[ "$n" -eq 3 ] || fail "the flag check finds $n of 3 offenders (and must pass argv and tool flags)"
pass "the patterns catch known offenders"
done_testing
