#!/usr/bin/env python3
"""Summarize an Autobahn|Testsuite report directory (its index.json).

Usage: summarize.py REPORT_DIR_OR_INDEX_JSON [--agent NAME] [--json]

Prints, per agent: the number of cases per behavior (OK, NON-STRICT,
INFORMATIONAL, UNIMPLEMENTED, FAILED, ...), the ids of the FAILED and
NON-STRICT cases, and the ids whose closing behavior was not OK.
Exit status: 0 if no case is FAILED, 1 if any is, 2 on usage/input error.
"""

from __future__ import annotations

import json
import os
import re
import sys

ORDER = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def case_key(case_id):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.]", case_id)]


def summarize(index, agent_filter=None):
    out = {}
    for agent, cases in sorted(index.items()):
        if agent_filter and agent != agent_filter:
            continue
        counts = {k: 0 for k in ORDER}
        by_behavior = {}
        close_not_ok = []
        for cid in sorted(cases, key=case_key):
            res = cases[cid]
            b = res.get("behavior", "MISSING")
            counts[b] = counts.get(b, 0) + 1
            by_behavior.setdefault(b, []).append(cid)
            bc = res.get("behaviorClose")
            if bc not in ("OK", "INFORMATIONAL") and b not in ("UNIMPLEMENTED",):
                close_not_ok.append(f"{cid}({bc})")
        out[agent] = {
            "total": len(cases),
            "counts": counts,
            "failed": by_behavior.get("FAILED", []),
            "non_strict": by_behavior.get("NON-STRICT", []),
            "informational": by_behavior.get("INFORMATIONAL", []),
            "unimplemented": by_behavior.get("UNIMPLEMENTED", []),
            "close_not_ok": close_not_ok,
        }
    return out


def compress_ids(ids, limit=400):
    s = " ".join(ids)
    return s if len(s) <= limit else s[:limit] + f" ... ({len(ids)} ids)"


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    as_json = "--json" in argv
    agent = None
    if "--agent" in argv:
        i = argv.index("--agent")
        if i + 1 >= len(argv):
            print(__doc__, file=sys.stderr)
            return 2
        agent = argv[i + 1]
        args = [a for a in args if a != agent]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = args[0]
    if os.path.isdir(path):
        path = os.path.join(path, "index.json")
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print(f"summarize: cannot read {path}: {e}", file=sys.stderr)
        return 2
    summary = summarize(index, agent)
    if not summary:
        print(f"summarize: no results in {path}", file=sys.stderr)
        return 2
    any_failed = any(s["failed"] for s in summary.values())
    if as_json:
        print(json.dumps(summary, indent=2))
        return 1 if any_failed else 0
    for ag, s in summary.items():
        counts = "  ".join(f"{k}={v}" for k, v in s["counts"].items())
        print(f"agent {ag}: {s['total']} cases  {counts}")
        print(f"  FAILED:     {compress_ids(s['failed']) or '-'}")
        print(f"  NON-STRICT: {compress_ids(s['non_strict']) or '-'}")
        if s["informational"]:
            print(f"  INFORMATIONAL: {compress_ids(s['informational'])}")
        if s["unimplemented"]:
            print(f"  UNIMPLEMENTED: {compress_ids(s['unimplemented'])}")
        if s["close_not_ok"]:
            print(f"  close behavior not OK: {compress_ids(s['close_not_ok'])}")
    print("RESULT: " + ("FAILED" if any_failed else "PASSED (no FAILED case)"))
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
