#!/usr/bin/env python3
"""mes-contract.py README.md CAPTURES.jsonl [--draft]

Holds the README's MES contract (the text between <!-- mes-contract:begin -->
and <!-- mes-contract:end -->) against captured --json output.

The contract, as written in the README:
  ### NAME                                  one result shape (NAME as the capture calls it)
  | field | type | when | meaning |         its top-level fields; `when` is "always" or a condition
  Exit codes: 0, 2, 7.                       the statuses the command can give
A command printing several objects (JSON Lines) has "NAME (each)" and
"NAME (summary)": the last object is the summary. "Every failure" lists the
fields a failed command adds to its last object (or prints alone).

A capture line is {"section": NAME, "rc": N, "objects": [...]}.
Checks: the exit status is documented; every "always" field is present in a
successful object with its documented type; every field present is
documented (its type holds when present); every shape was seen succeed.
--draft prints the fields seen per shape as table rows (to write the doc);
--partial checks only the shapes captured (for the MES examples' output).
"""
import json
import re
import sys

BEGIN, END = "<!-- mes-contract:begin -->", "<!-- mes-contract:end -->"
TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
FAILURE = "Every failure"


def parse(readme):
    text = open(readme, encoding="utf-8").read()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        sys.exit("README: the mes-contract markers must appear once each")
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    sections, cur = {}, None
    for n, line in enumerate(body.splitlines(), 1):
        if line.startswith("### "):
            name = line[4:].strip().replace("`", "")
            if name in sections:
                sys.exit("README contract: section %r twice" % name)
            cur = sections[name] = {"fields": {}, "exits": None}
            continue
        if cur is None:
            continue
        m = re.match(r"^Exit codes?: (.*)$", line)
        if m:
            cur["exits"] = {int(x) for x in re.findall(r"\b\d+\b", m.group(1))}
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if not cells or len(cells) != 4 or cells[0] in ("field", "") or set(cells[0]) <= set("-: "):
            continue
        field = cells[0].strip("`")
        types = [t.strip() for t in cells[1].split(" or ")]
        for t in types:
            if t not in TYPES:
                sys.exit("README contract: %s.%s: unknown type %r" % (name, field, t))
        if field in cur["fields"]:
            sys.exit("README contract: %s.%s twice" % (name, field))
        cur["fields"][field] = {"types": types, "always": cells[2] == "always"}
    for name in [n for n, s in sections.items() if not s["fields"] and s["exits"] is None]:
        del sections[name]      # prose (conventions), not a result shape
    for name, s in sections.items():
        if not s["fields"]:
            sys.exit("README contract: section %r has no field table" % name)
        if s["exits"] is None and name != FAILURE and not name.endswith("(each)"):
            sys.exit("README contract: section %r has no 'Exit codes:' line" % name)
    return sections


def shapes_of(sections, cap):
    """(section name, object, is_last) for each captured object."""
    name = cap["section"]
    objs = cap["objects"]
    if name + " (summary)" in sections:
        for i, o in enumerate(objs):
            yield (name + " (summary)" if i == len(objs) - 1 else name + " (each)"), o, i == len(objs) - 1
    elif name in sections:
        for i, o in enumerate(objs):
            yield name, o, i == len(objs) - 1
    else:
        yield None, None, None


def main():
    readme, capfile = sys.argv[1], sys.argv[2]
    caps = [json.loads(l) for l in open(capfile)]
    if "--draft" in sys.argv:
        seen = {}
        for c in caps:
            for o in c["objects"]:
                d = seen.setdefault(c["section"], {})
                for k, v in o.items():
                    d.setdefault(k, set()).add(type(v).__name__)
        for s, d in seen.items():
            print("### " + s)
            for k, t in d.items():
                print("| `%s` | %s | | |" % (k, " or ".join(sorted(t))))
        return 0
    sections = parse(readme)
    fail = []
    fails = sections.get(FAILURE, {"fields": {}})["fields"]
    ok_seen = set()
    for c in caps:
        exits = None
        for sec, o, last in shapes_of(sections, c):
            if sec is None:
                fail.append("%s: no such section in the README's contract" % c["section"])
                break
            s = sections[sec]
            if s["exits"] is not None:
                exits = s["exits"]
            failed = o.get("ok") is False
            where = "%s (exit %d)" % (sec, c["rc"])
            if not failed:
                ok_seen.add(sec)
                for f, spec in s["fields"].items():
                    if spec["always"] and f not in o:
                        fail.append("%s: documented field %r missing: %s" % (where, f, json.dumps(o)[:300]))
            elif last and c["rc"] != 0:
                for f in ("error", "exit_code"):
                    if f not in o:
                        fail.append("%s: a failure without %r" % (where, f))
                if o.get("exit_code") != c["rc"]:
                    fail.append("%s: exit_code %r but the process exited %d" % (where, o.get("exit_code"), c["rc"]))
            for k, v in o.items():
                spec = s["fields"].get(k) or (fails.get(k) if failed else None)
                if spec is None:
                    fail.append("%s: field %r is not documented" % (where, k))
                elif not any(TYPES[t](v) for t in spec["types"]):
                    fail.append("%s: field %r is %s, documented %s" % (where, k, json.dumps(v)[:80],
                                                                      " or ".join(spec["types"])))
        if exits is not None and c["rc"] not in exits:
            fail.append("%s: exit %d is not among the documented %s" % (c["section"], c["rc"], sorted(exits)))
    for name in sections:
        if "--partial" not in sys.argv and name != FAILURE and name not in ok_seen:
            fail.append("%s: documented, but no successful output of it was checked" % name)
    for f in fail:
        print("CONTRACT: " + f, file=sys.stderr)
    print("%d captures, %d shapes checked, %d problems" % (len(caps), len(ok_seen), len(fail)))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
