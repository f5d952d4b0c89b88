# shellcheck shell=bash
# lib-pg.sh — a throw-away PostgreSQL server for one test (sourced after
# tests/lib.sh). Debian's server binaries (initdb, pg_ctl, postgres) run in a
# temporary directory: Unix socket only (listen_addresses = ''), fsync and
# synchronous_commit on (the tests kill the server and count what survived),
# trust authentication on that socket alone (the directory is the server
# user's, mode 0700). Tests run as root and initdb refuses root, so the
# server runs as `postgres` (Debian's package makes the account), else
# `nobody`, owning the directory; run as another user, it runs as that user.
#
#   pg_start                start (initdb first, once); creates database "fuseline";
#                           exports PG_URI, PG_SOCK, PG_SUPER, PG_BINDIR, PG_DIR
#   pg_stop                 fast shutdown          pg_kill   immediate stop (as a crash)
#   pg_restart [MODE]       pg_ctl restart -m MODE (fast; "immediate" = crash recovery)
#   pg_running              0 when the postmaster answers
#   pg_uri DB [USER]        the URI for database DB (as USER, default the superuser)
#   pg_newdb DB [TEMPLATE]  CREATE DATABASE DB (a copy of TEMPLATE), prints its URI
#   pg_sql DB SQL...        psql -A -t (unaligned, rows only, '|' between columns), as the
#                           superuser, stops at the first error; stdout is the rows
#   pg_station_ledger DB    database DB (created when missing) with an empty ledger in it, made by
#                           its owner (tests/tools/ldb-probe, no event), the roles of
#                           factory-scripts/ledger-pg-roles.sql applied, and a login role
#                           fl_station in fuseline_station: prints the URI as fl_station, the
#                           least a station gets (the tests' writers and readers use it)
#   pg_log                  the server's log (for failure messages)
# The server is stopped (immediately) and its directory removed on exit.
# No PostgreSQL binaries: the test ends as SKIP (77) naming the package, or fails with
# FUSELINE_REQUIRE_PG=1 (.ci/run sets it: CI installs them, so a skip would hide a failure).

# Only what this file sets reaches psql and the server: a PGHOST/PGUSER/… in
# the caller's environment would otherwise decide where libpq connects and
# hide a URI the ledger ignored.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE PGPASSWORD PGOPTIONS PGSSLMODE

# The server binaries: $PG_BINDIR, pg_config --bindir, then the newest
# /usr/lib/postgresql/N/bin (Debian keeps them off PATH).
_pg_find_bindir() {
  local d cands=()
  [ -n "${PG_BINDIR:-}" ] && cands+=("$PG_BINDIR")
  command -v pg_config >/dev/null 2>&1 && cands+=("$(pg_config --bindir 2>/dev/null)")
  while IFS= read -r d; do cands+=("$d"); done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV)
  for d in "${cands[@]}"; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && [ -x "$d/psql" ] && { echo "$d"; return 0; }
  done
  return 1
}
PG_BINDIR=$(_pg_find_bindir) || {
  # CI (.ci/run) installs them: there a missing server is a failure, not a skip.
  if [ "${FUSELINE_REQUIRE_PG:-}" = 1 ]; then
    echo "FAIL: FUSELINE_REQUIRE_PG=1 but no PostgreSQL server binaries (install postgresql postgresql-client)" >&2
    exit 1
  fi
  echo "SKIP: no PostgreSQL server binaries (initdb, pg_ctl, postgres, psql in pg_config --bindir or" \
       "/usr/lib/postgresql/*/bin): install the Debian packages postgresql and postgresql-client" \
       "(factory-scripts/install-deps.sh does)"
  exit 77
}
export PG_BINDIR

# Who the server runs as.
if [ "$(id -u)" -eq 0 ]; then
  if getent passwd postgres >/dev/null; then PG_OSUSER=postgres; else PG_OSUSER=nobody; fi
  _pg_as() { runuser -u "$PG_OSUSER" -- "$@"; }
else
  PG_OSUSER=$(id -un)
  _pg_as() { "$@"; }
fi
# Outside $T (root's 0700 directory, which the server user cannot enter); short, for the
# 107-byte socket path limit.
PG_DIR=$(mktemp -d /tmp/fl-pg.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then chown "$PG_OSUSER" "$PG_DIR"; fi
chmod 0700 "$PG_DIR"
PG_SOCK=$PG_DIR/sock
PG_SUPER=postgres
export PG_DIR PG_SOCK PG_SUPER

_pg_exit() {
  local rc=$1
  if [ -e "$PG_DIR/data/postmaster.pid" ]; then
    (cd / && _pg_as "$PG_BINDIR/pg_ctl" stop -D "$PG_DIR/data" -m immediate -w -t 30) >/dev/null 2>&1 || true
  fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -s "$PG_DIR/log" ]; then
    echo "# PostgreSQL server log (last 30 lines):" >&2
    tail -n 30 "$PG_DIR/log" | sed 's/^/#   /' >&2
  fi
  rm -rf "$PG_DIR"
}
trap '_pg_exit $?; rm -rf "$T"' EXIT
# A test stopped by meson's timeout (SIGTERM) or ^C still stops its server.
trap 'exit 143' TERM
trap 'exit 130' INT

_pg_ctl() { (cd "$PG_DIR" && _pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" "$@") >/dev/null; }

pg_uri() { echo "postgresql:///$1?host=$PG_SOCK&user=${2:-$PG_SUPER}"; }
pg_sql() {
  local db=$1; shift
  local a args=()
  for a in "$@"; do args+=(-c "$a"); done
  PGOPTIONS="-c client_min_messages=warning" "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -U "$PG_SUPER" -d "$db" "${args[@]}"
}
pg_log() { cat "$PG_DIR/log" 2>/dev/null; }
pg_running() { "$PG_BINDIR/pg_isready" -q -h "$PG_SOCK" -d postgres -U "$PG_SUPER" >/dev/null 2>&1; }

pg_start() {
  if [ ! -d "$PG_DIR/data" ]; then
    mkdir -p "$PG_SOCK"
    if [ "$(id -u)" -eq 0 ]; then chown "$PG_OSUSER" "$PG_SOCK"; fi
    # --no-sync only skips flushing the fresh cluster's files at initdb time; every commit
    # afterwards is fsynced (fsync = on below).
    (cd "$PG_DIR" && _pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U "$PG_SUPER" --auth=trust \
       -E UTF8 --no-locale --no-sync) >"$PG_DIR/initdb.log" 2>&1 \
      || fail "initdb failed: $(tail -n 5 "$PG_DIR/initdb.log")"
    cat >> "$PG_DIR/data/postgresql.conf" <<EOF
# fuseline tests (tests/lib-pg.sh)
listen_addresses = ''
unix_socket_directories = '$PG_SOCK'
port = 5432
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 60
shared_buffers = 16MB
log_line_prefix = '%m [%p] '
log_min_messages = warning
EOF
    _pg_ctl start -w -t 60 || fail "pg_ctl start failed: $(tail -n 10 "$PG_DIR/log")"
    pg_sql postgres "CREATE DATABASE fuseline" || fail "CREATE DATABASE fuseline failed"
  else
    _pg_ctl start -w -t 60 || fail "pg_ctl start failed: $(tail -n 10 "$PG_DIR/log")"
  fi
  PG_URI=$(pg_uri fuseline)
  export PG_URI
}
pg_stop() { _pg_ctl stop -m fast -w -t 60 || fail "pg_ctl stop failed: $(tail -n 10 "$PG_DIR/log")"; }
pg_kill() { _pg_ctl stop -m immediate -w -t 60 || fail "pg_ctl stop -m immediate failed: $(tail -n 10 "$PG_DIR/log")"; }
pg_restart() {
  _pg_ctl restart -m "${1:-fast}" -w -t 60 || fail "pg_ctl restart -m ${1:-fast} failed: $(tail -n 10 "$PG_DIR/log")"
}
pg_station_ledger() {
  [ "$(pg_sql postgres "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ] \
    || pg_sql postgres "CREATE DATABASE \"$1\"" || fail "CREATE DATABASE $1"
  "${LDB_PROBE:?tests/meson.build sets it}" open write "$(pg_uri "$1")" >/dev/null \
    || fail "ldb-probe could not create the ledger schema in $1"
  PGOPTIONS="-c client_min_messages=warning" "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -U "$PG_SUPER" \
    -d "$1" -f "$SRCDIR/factory-scripts/ledger-pg-roles.sql" >/dev/null || fail "ledger-pg-roles.sql on $1"
  [ "$(pg_sql postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'fl_station'")" = 1 ] \
    || pg_sql postgres "CREATE ROLE fl_station LOGIN IN ROLE fuseline_station" || fail "CREATE ROLE fl_station"
  pg_uri "$1" fl_station
}
pg_newdb() {
  pg_sql postgres "CREATE DATABASE \"$1\"${2:+ TEMPLATE \"$2\"}" || fail "CREATE DATABASE $1 failed"
  pg_uri "$1"
}
