"""Summarize Autobahn reports as markdown: ``python compliance/results.py compliance/reports``."""

from __future__ import annotations

import collections
import datetime
import json
import sys
from pathlib import Path

BEHAVIOURS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def load(report_dir: Path) -> dict[str, dict[str, str]]:
    """Return ``{case id: result}`` for the wavecast agent of one report directory."""
    index = json.loads((report_dir / "index.json").read_text())
    return index["wavecast"]  # type: ignore[no-any-return]


def section(case: str) -> str:
    return case.split(".")[0]


def table(cases: dict[str, dict[str, str]]) -> list[str]:
    by_section: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for case, result in cases.items():
        by_section[section(case)][result["behavior"]] += 1
    total: collections.Counter[str] = collections.Counter()
    lines = ["| section | cases | " + " | ".join(BEHAVIOURS) + " |", "|---" * (len(BEHAVIOURS) + 2) + "|"]
    for name in sorted(by_section, key=int):
        counts = by_section[name]
        total.update(counts)
        cells = " | ".join(str(counts[b]) for b in BEHAVIOURS)
        lines.append(f"| {name} | {sum(counts.values())} | {cells} |")
    cells = " | ".join(f"**{total[b]}**" for b in BEHAVIOURS)
    lines.append(f"| all | **{sum(total.values())}** | {cells} |")
    for behaviour in ("FAILED", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"):
        ids = sorted((c for c, r in cases.items() if r["behavior"] == behaviour), key=_key)
        if ids:
            lines.append("")
            lines.append(f"{behaviour}: {', '.join(ids)}")
    return lines


def _key(case: str) -> list[int]:
    return [int(part) for part in case.split(".")]


def main(reports: Path) -> None:
    today = datetime.date.today().isoformat()
    out = [
        "# Autobahn|Testsuite results",
        "",
        f"Measured {today} with `make compliance` (`compliance/run.sh both '*'`): the fuzzingclient against",
        "`compliance/echo_server.py` (permessage-deflate on), and the fuzzingserver against `compliance/client.py`.",
        "NON-STRICT cases are those where the peer sent a valid message and then broke the protocol in the same",
        "packet: wavecast fails the connection at once (RFC 6455 section 7.1.7) before the handler echoes the",
        "earlier message. INFORMATIONAL cases have no right answer.",
    ]
    for side in ("server", "client"):
        out += ["", f"## wavecast as a {side}", "", *table(load(reports / side))]
    print("\n".join(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
