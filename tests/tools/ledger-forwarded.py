#!/usr/bin/env python3
"""ledger-forwarded.py — an independent check of store and forward, written
from the format in README.md (§Store and forward), not from lib/ledger_sync.c.
Python's sqlite3, json and hashlib only.

    ledger-forwarded.py CENTRAL SPOOL.db

CENTRAL is an SQLite file or a postgresql:// URI (read through psql, as
ledger-chain.py does); a spool is always an SQLite file.

Checks that the central chain is intact, and that the events carrying a
"forwarded" member are exactly the spool's uploaded events, in spool order,
each once: same fields, the spool's details byte for byte once the member is
removed, the spool's prev/hash, a local hash that recomputes, and results
pointing at the central copy of their intent. Prints "N FIRST LAST" (events
forwarded, central ids of the first and last) and exits 0; prints "BAD why"
and exits 5 otherwise.
"""
import hashlib
import importlib.util
import json
import os
import sqlite3
import sys

spec = importlib.util.spec_from_file_location(
    "chain", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ledger-chain.py"))
chain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chain)

COLS = ("id, time, station, operator, command, ecid, kind, intent_id, outcome, details, prev_hash, hash")


def bad(why):
    print("BAD", why)
    sys.exit(5)


def strip(details):
    fwd = json.loads(details)["forwarded"]
    text = json.dumps(fwd, separators=(",", ":"), ensure_ascii=False)
    if details == '{"forwarded":' + text + "}":
        return "{}", fwd
    suffix = ',"forwarded":' + text + "}"
    if not details.endswith(suffix):
        bad("forwarded member is not the last one as written: " + details[-200:])
    return details[: -len(suffix)] + "}", fwd


def main():
    s = sqlite3.connect("file:%s?mode=ro" % sys.argv[2], uri=True)
    spool = {r[0]: r for r in s.execute("SELECT %s FROM events ORDER BY id" % COLS)}
    marks = dict(s.execute("SELECT seq, event_id FROM spool_uploaded"))
    spool_id = bytes(spool[1][11]).hex() if 1 in spool else None

    prev = bytes(32)
    central_of = {}
    expect_seq = 1
    first = last = None
    for row in chain.events(sys.argv[1]):
        h = hashlib.sha256(prev + chain.canon(row[:10])).digest()
        if bytes(row[10]) != prev or bytes(row[11]) != h:
            bad("central chain breaks at event %d" % row[0])
        prev = h
        try:
            d = json.loads(row[9])
        except ValueError:
            continue
        if "forwarded" not in d:
            continue
        orig, fwd = strip(row[9])
        if fwd["spool"] != spool_id:
            continue  # another station's spool
        seq = fwd["seq"]
        if seq != expect_seq:
            bad("central event %d is spool seq %d, expected %d (order, loss or duplicate)" % (row[0], seq, expect_seq))
        expect_seq += 1
        lr = spool.get(seq)
        if lr is None:
            bad("central event %d: spool has no event %d" % (row[0], seq))
        if marks.get(seq) != row[0]:
            bad("spool marks seq %d as central %s, found at %d" % (seq, marks.get(seq), row[0]))
        for i, name in ((1, "time"), (2, "station"), (3, "operator"), (4, "command"), (5, "ecid"), (6, "kind"),
                        (8, "outcome")):
            if row[i] != lr[i]:
                bad("central event %d: %s %r differs from spool event %d's %r" % (row[0], name, row[i], seq, lr[i]))
        if orig != lr[9]:
            bad("central event %d: details without 'forwarded' differ from spool event %d's" % (row[0], seq))
        if fwd["prev"] != bytes(lr[10]).hex() or fwd["hash"] != bytes(lr[11]).hex():
            bad("central event %d: forwarded prev/hash are not spool event %d's" % (row[0], seq))
        local = (seq,) + row[1:7] + (fwd.get("intent_id"),) + (row[8], orig)
        if hashlib.sha256(bytes(lr[10]) + chain.canon(local)).hexdigest() != fwd["hash"]:
            bad("central event %d: the local hash does not recompute" % row[0])
        if lr[7] != fwd.get("intent_id"):
            bad("central event %d: forwarded intent_id %r, spool says %r" % (row[0], fwd.get("intent_id"), lr[7]))
        if lr[7] is not None and row[7] != central_of.get(lr[7]):
            bad("central event %d closes %r, but its intent was forwarded as %r" % (row[0], row[7],
                                                                                     central_of.get(lr[7])))
        central_of[seq] = row[0]
        first = first or row[0]
        last = row[0]
    n = expect_seq - 1
    if n != len(marks):
        bad("%d forwarded events, the spool marks %d uploaded" % (n, len(marks)))
    print(n, first, last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
