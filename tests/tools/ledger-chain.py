#!/usr/bin/env python3
"""ledger-chain.py — an independent recomputation of the fuseline ledger's
hash chain, written from the format in README.md (§fuseline ledger), not from
lib/ledger.c. Python's standard library only: sqlite3 for a file, the psql
client (unaligned rows, one JSON array each) for a postgresql:// URI.

    ledger-chain.py LEDGER        prints "N HEADHASH" and exits 0 when every
                                  stored hash equals the recomputed one;
                                  prints "BAD ID" and exits 5 at the first that does not.
LEDGER is an SQLite file or a postgresql:// / postgres:// URI. events(location)
and canon(row) are also used by the tests (imported as a module).
"""
import hashlib
import json
import os
import sqlite3
import struct
import subprocess
import sys

COLS = "id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash"


def is_uri(location):
    return location.startswith(("postgresql://", "postgres://"))


def psql(location, sql):
    """Rows of SQL on a PostgreSQL ledger, through the psql client."""
    exe = os.path.join(os.environ["PG_BINDIR"], "psql") if os.environ.get("PG_BINDIR") else "psql"
    env = dict(os.environ, PGCLIENTENCODING="UTF8")
    out = subprocess.run([exe, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", location, "-c", sql],
                         check=True, stdout=subprocess.PIPE, env=env).stdout.decode("utf-8")
    return [line for line in out.split("\n") if line]


def events(location, where=""):
    """(id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash)
    tuples in id order, the hashes as bytes."""
    if not is_uri(location):
        db = sqlite3.connect("file:%s?mode=ro" % location, uri=True)
        b = lambda x: x if x is None or isinstance(x, bytes) else x.encode() if isinstance(x, str) else bytes(x)
        return [tuple(r[:10]) + (b(r[10]), b(r[11]))
                for r in db.execute("SELECT %s FROM events %s ORDER BY id" % (COLS, where))]
    # One JSON array per row: text arrives exactly (JSON escapes), bytea as hex.
    sql = ("SELECT json_build_array(id, time, station, operator, command, ecid, kind, intent_id, outcome, "
           "details, encode(prev_hash, 'hex'), encode(hash, 'hex')) FROM events %s ORDER BY id" % where)
    rows = []
    for line in psql(location, sql):
        r = json.loads(line)
        rows.append(tuple(r[:10]) + tuple(None if h is None else bytes.fromhex(h) for h in r[10:]))
    return rows


def field(b):
    if b is None:
        return b"\xff\xff\xff\xff"
    return struct.pack(">I", len(b)) + b


def integer(n):
    return None if n is None else struct.pack(">q", n)


def canon(row):
    (id_, time, station, operator, command, ecid, kind, intent_id, outcome, details) = row
    t = lambda s: None if s is None else s.encode("utf-8")
    parts = [b"fuseline-event/1", integer(id_), t(time), t(station), t(operator), t(command),
             t(ecid), t(kind), integer(intent_id), t(outcome), t(details)]
    return b"".join(field(p) for p in parts)


def main():
    prev = bytes(32)
    n = 0
    expect_id = 1
    for row in events(sys.argv[1]):
        h = hashlib.sha256(prev + canon(row[:10])).digest()
        if row[0] != expect_id or row[10] != prev or row[11] != h:
            print("BAD", row[0])
            return 5
        prev = h
        n += 1
        expect_id += 1
    print(n, prev.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
