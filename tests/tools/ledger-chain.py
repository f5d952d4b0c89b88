#!/usr/bin/env python3
"""ledger-chain.py — an independent recomputation of the fuseline ledger's
hash chain, written from the format in README.md (§fuseline ledger), not from
lib/ledger.c. Python's sqlite3 and hashlib only.

    ledger-chain.py DB            prints "N HEADHASH" and exits 0 when every
                                  stored hash equals the recomputed one;
                                  prints "BAD ID" and exits 5 at the first that does not.
"""
import hashlib
import sqlite3
import struct
import sys


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
    db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
    prev = bytes(32)
    n = 0
    expect_id = 1
    for row in db.execute("SELECT id, time, station, operator, command, ecid, kind, intent_id, "
                          "outcome, details, prev_hash, hash FROM events ORDER BY id"):
        h = hashlib.sha256(prev + canon(row[:10])).digest()
        if row[0] != expect_id or bytes(row[10]) != prev or bytes(row[11]) != h:
            print("BAD", row[0])
            return 5
        prev = h
        n += 1
        expect_id += 1
    print(n, prev.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
