#!/usr/bin/env python3
"""mes-example.py — how an MES drives fuseline for one work order (Python 3,
standard library only): keys -> fuse plan -> fuse package -> burn -> enroll ->
ledger export, acting on the exit codes (README "Exit codes", "MES contract")
and reading the --json results (JSON Lines).

    factory-scripts/mes-example.py WORK_ORDER OUTDIR

The work order is the same key = value file as mes-example.sh takes (see
there): order, template, chip, pkc, name, lab, bsp, devices, serial_prefix,
retries, retry_wait, commit. Environment: FUSELINE (the command, split like a
shell would, default "fuseline") and the usual FUSELINE_TOKEN /
FUSELINE_PIN_FILE / FUSELINE_DB. Prints one JSON object per device, then a
summary; exit 0 when every device passed, 1 otherwise, 2 for a bad work order
or a failed step before the devices.
"""
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time

DEFAULTS = {"order": "WO", "template": "orin-nano-8gb", "chip": "t234", "pkc": "rsa3k", "name": "wo",
            "lab": "no", "serial_prefix": "SN-", "retries": "3", "retry_wait": "5", "commit": "no"}
KEYS = set(DEFAULTS) | {"bsp", "devices"}
# README "Exit codes": what an MES may try again, and what needs a person or a decision.
RETRYABLE = {1, 4}          # a busy ledger or full disk; a device absent, vanished or hung
EXISTS = 7                  # conflict: made by an earlier run (keys, plan, package) or provisioned differently


class Stop(Exception):
    pass


def read_work_order(path):
    wo = dict(DEFAULTS)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([a-z_]+)\s*=\s*(.+)", line)
            if not m:
                raise Stop("%s:%d: expected 'key = value'" % (path, n))
            if m.group(1) not in KEYS:
                raise Stop("%s:%d: unknown key '%s'" % (path, n, m.group(1)))
            wo[m.group(1)] = m.group(2).strip()
    for k in ("devices", "bsp"):
        if not wo.get(k):
            raise Stop("%s: '%s' is required" % (path, k))
    if not re.fullmatch(r"[1-9][0-9]?", wo["retries"]) or not wo["retry_wait"].isdigit():
        raise Stop("%s: retries 1-99, retry_wait in seconds" % path)
    return wo


class Fuseline:
    def __init__(self, wo, outdir):
        self.cmd = shlex.split(os.environ.get("FUSELINE", "fuseline"))
        self.wo, self.out = wo, outdir

    def run(self, name, *args):
        """One step with --json: (exit status, the JSON objects, attempts). Retries what is retryable."""
        attempts = 0
        while True:
            attempts += 1
            p = subprocess.run(self.cmd + list(args) + ["--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            with open(os.path.join(self.out, name + ".jsonl"), "w") as f:
                f.write(p.stdout)
            with open(os.path.join(self.out, name + ".err"), "w") as f:
                f.write(p.stderr)
            objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
            # The MES contract: the last object carries exit_code, the process's status.
            if objs and objs[-1].get("exit_code") != p.returncode:
                raise Stop("%s: exit %d but the result says %r" % (name, p.returncode, objs[-1].get("exit_code")))
            if p.returncode in RETRYABLE and attempts < int(self.wo["retries"]):
                print("mes-example: %s: exit %d (retryable), attempt %d of %s" %
                      (name, p.returncode, attempts, self.wo["retries"]), file=sys.stderr)
                time.sleep(int(self.wo["retry_wait"]))
                continue
            return p.returncode, objs, attempts


def error_of(objs, rc):
    return (objs[-1].get("error") if objs else None) or "exit %d" % rc


def once(fl, name, path, *args):
    """A step made once per work order: exit 7 with the output present means an earlier run made it."""
    rc, objs, _ = fl.run(name, *args)
    if rc == EXISTS and os.path.exists(path):
        return None
    if rc != 0:
        raise Stop("%s failed (exit %d): %s" % (name, rc, error_of(objs, rc)))
    return objs[-1]


def main():
    if len(sys.argv) != 3:
        raise Stop("usage: mes-example.py WORK_ORDER OUTDIR")
    wo = read_work_order(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    fl = Fuseline(wo, out)
    lab = wo["lab"] == "yes"
    commit = wo["commit"] == "yes"
    ks, plan = os.path.join(out, "keyset.json"), os.path.join(out, "plan.xml")
    pkg = os.path.join(out, "fuse-package.tbz2" if commit else "fuse-package-test.tbz2")
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    r = once(fl, "keygen", ks, "keygen", "--chip", wo["chip"], "--pkc", wo["pkc"], "--sbk", "--name", wo["name"],
             *(["--lab"] if lab else []), "--out", ks)
    if r:
        print("mes-example: keys made, ledger event %s" % r["event_id"], file=sys.stderr)
    # The identity CA: exit 7 means the keyset has one already.
    rc, objs, _ = fl.run("ca", "keygen", "--identity-ca", "--keyset", ks,
                         "--subject", "/O=%s/CN=%s device CA" % (wo["order"], wo["name"]))
    if rc not in (0, EXISTS):
        raise Stop("identity CA failed (exit %d): %s" % (rc, error_of(objs, rc)))
    r = once(fl, "plan", plan, "fuse-xml", "--keyset", ks, "--template", wo["template"], "--out", plan)
    if r:
        print("mes-example: plan sha256 %s" % r["plan_sha256"], file=sys.stderr)
    once(fl, "package", pkg, "fuse-xml", "--package", pkg, "--bsp", wo["bsp"], "--board", wo["template"],
         "--plan", plan, *([] if commit else ["--test"]))

    passed = failed = 0
    for i, inst in enumerate(wo["devices"].split(), 1):
        serial = wo["serial_prefix"] + str(i)
        rc, objs, tries = fl.run("burn-" + inst, "burn", "--package", pkg, "--plan", plan, "--keyset", ks,
                                 "--device", inst, *(["--commit", "--yes"] if commit else ["--dry-run"]),
                                 *(["--allow-lab-keys"] if lab else []))
        # burn prints one line per device, then the summary (MES contract: burn (each), burn (summary)).
        dev = objs[0] if len(objs) > 1 else {}
        summary = objs[-1] if objs else {}
        assert summary.get("summary") is True or rc != 0, summary
        cert, err = None, None if rc == 0 else error_of(objs, rc)
        if rc == 0 and commit:
            rc, eobjs, _ = fl.run("enroll-" + inst, "enroll", "--keyset", ks, "--ecid", dev["ecid"],
                                  "--serial", serial, "--generate-key", "p256",
                                  "--out", os.path.join(out, dev["ecid"] + ".pem"),
                                  "--force")   # a re-run writes the same certificate again
            if rc == 0:
                cert = eobjs[-1]["fingerprint"]
            else:
                err = error_of(eobjs, rc)
        print(json.dumps({"order": wo["order"], "instance": inst, "ecid": dev.get("ecid") or None,
                          "serial": serial, "burn": dev.get("verdict", "none"), "certificate_sha256": cert,
                          "status": "PASS" if rc == 0 else "FAIL", "exit_code": rc, "burn_attempts": tries,
                          "error": err}), flush=True)
        passed, failed = (passed + 1, failed) if rc == 0 else (passed, failed + 1)

    export = os.path.join(out, "ledger.jsonl")
    p = subprocess.run(fl.cmd + ["ledger", "export", "--since", since], stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise Stop("ledger export failed (exit %d)" % p.returncode)
    with open(export, "w") as f:
        f.write(p.stdout)
    events = [json.loads(l) for l in p.stdout.splitlines()]
    print(json.dumps({"order": wo["order"], "summary": True, "devices": passed + failed, "passed": passed,
                      "failed": failed, "ledger_events": len(events), "ledger_export": export}))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Stop as e:
        print("mes-example: %s" % e, file=sys.stderr)
        sys.exit(2)
