#!/usr/bin/env python3
"""Write a wstest spec file. Internal helper of run-*-suite.sh.

_spec.py client|server OUT.json URL CASES OUTDIR AGENT EXCLUDE
CASES: "*" (all), "quick", or comma-separated ids/patterns ("1.*,6.4.1").
EXCLUDE: comma-separated ids/patterns (may be empty).
"""

from __future__ import annotations

import json
import sys

# quick: everything but the slow 9.* and 12.*/13.* groups, plus a sample of
# them (small messages; one case per 12.x data set and per 13.x deflate
# parameter combination).
QUICK = (
    ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*", "9.1.1", "9.2.1"]
    + [f"12.{i}.1" for i in range(1, 6)]
    + [f"13.{i}.1" for i in range(1, 8)]
)


def main(mode, out, url, cases, outdir, agent, exclude):
    case_list = QUICK if cases == "quick" else [c.strip() for c in cases.split(",") if c.strip()] or ["*"]
    excl = [c.strip() for c in exclude.split(",") if c.strip()]
    spec = {"outdir": outdir, "cases": case_list, "exclude-cases": excl, "exclude-agent-cases": {}}
    if mode == "client":  # wstest -m fuzzingclient (tests a server)
        spec["servers"] = [{"agent": agent, "url": url}]
    else:  # wstest -m fuzzingserver (tests clients)
        spec["url"] = url
        spec["interface"] = "127.0.0.1"
    with open(out, "w") as f:
        json.dump(spec, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    main(*sys.argv[1:])
