# shellcheck shell=bash
# lib-ledger.sh — the ledger tests on either backend (sourced after
# tests/lib.sh). tests/meson.build registers each ledger test twice: as is
# (SQLite files) and as NAME-pg with FUSELINE_TEST_BACKEND=pg, which starts a
# throw-away PostgreSQL server (tests/lib-pg.sh) and gives every ledger the
# test names a database on it. What the tests read or tamper with goes
# through the backend's own client (the sqlite3 CLI, psql as superuser),
# never through fuseline.
#
#   LB                      sqlite or pg;  is_pg: true on PostgreSQL
#   ldb NAME                the location of ledger NAME: the file NAME.db (in the test's
#                           directory), or database NAME on the server, as the DBA sets one up
#                           (README "PostgreSQL ledger"): created with an empty ledger by its
#                           owner, factory-scripts/ledger-pg-roles.sql applied, and the URI of a
#                           login role in fuseline_station — every fuseline command of the -pg
#                           tests runs with a station's rights, not a superuser's
#   lsql NAME SQL           SQL on ledger NAME; rows on stdout, columns joined by '|', NULL empty
#   ltamper NAME SQL        the same past the append-only guards: SQLite drops the events
#                           triggers first (as an attacker with the file would); PostgreSQL runs
#                           it with session_replication_role = replica (a superuser skipping
#                           every trigger without changing the schema)
#   lcopy SRC DST           DST becomes a copy of SRC (sqlite3 .backup / CREATE DATABASE … TEMPLATE)
#   lhex EXPR               SQL for a blob column as lower-case hex
#   lblob HEX               SQL literal for a blob
#   lagg EXPR ORDER         SQL aggregate joining EXPR with ',' ordered by ORDER (SQLite's
#                           group_concat keeps the scan order: the rowid for an events query)
#   lchain NAME             tests/tools/ledger-chain.py on ledger NAME (stdout "N HEAD", rc 5 at a bad event)
LB=${FUSELINE_TEST_BACKEND:-sqlite}
case $LB in
  sqlite) ;;
  pg) . "$SRCDIR/tests/lib-pg.sh"; pg_start ;;
  *) fail "FUSELINE_TEST_BACKEND=$LB: expected sqlite or pg" ;;
esac
is_pg() { [ "$LB" = pg ]; }

_ldb_name() { # database names are lower-case identifiers
  [[ $1 =~ ^[a-z][a-z0-9_]*$ ]] || fail "ledger name '$1' is not a lower-case identifier"
}
ldb() {
  if is_pg; then
    _ldb_name "$1"
    if [ "$(pg_sql postgres "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ] &&
       [ "$(pg_sql "$1" "SELECT to_regclass('fuseline_ledger') IS NOT NULL")" = t ]; then
      pg_uri "$1" fl_station
    else
      pg_station_ledger "$1"
    fi
  else
    echo "$1.db"
  fi
}
lsql() {
  local n=$1; shift
  if is_pg; then
    _ldb_name "$n"
    pg_sql "$n" "$*"
  else
    sqlite3 "$n.db" "$*"
  fi
}
ltamper() {
  local n=$1; shift
  if is_pg; then
    pg_sql "$n" "SET session_replication_role = replica; $*"
  else
    sqlite3 "$n.db" "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; $*"
  fi
}
lcopy() {
  if is_pg; then
    _ldb_name "$2"
    pg_sql postgres "DROP DATABASE IF EXISTS $2" "CREATE DATABASE $2 TEMPLATE $1" || fail "copy $1 to $2"
  else
    rm -f "$2.db" "$2.db-wal" "$2.db-shm"
    sqlite3 "$1.db" ".backup $2.db" || fail "copy $1.db to $2.db"
  fi
}
lhex() { if is_pg; then echo "encode($1, 'hex')"; else echo "lower(hex($1))"; fi; }
lblob() { if is_pg; then echo "'\\x$1'::bytea"; else echo "X'$1'"; fi; }
lagg() { if is_pg; then echo "string_agg(($1)::text, ',' ORDER BY $2)"; else echo "group_concat($1)"; fi; }
lchain() { python3 "$SRCDIR/tests/tools/ledger-chain.py" "$(ldb "$1")"; }
