"""Replace one target's row in fuzzing/RESULTS.md, keeping the other targets' rows.

Called by ``run.sh`` when a target starts (result ``running``) and when it ends. The file is
locked while it is rewritten, since two runs of different targets may end at the same time.
``--progress`` prints how far each running target's log has got instead.
"""

from __future__ import annotations

import argparse
import fcntl
import re
from pathlib import Path

HEADER = (
    "target",
    "bound",
    "executions",
    "seconds",
    "exec/s",
    "peak RSS (MB)",
    "crashes",
    "result",
    "commit",
    "started (UTC)",
    "load average",
)

INTRO = """# Fuzzing results

Written by `fuzzing/run.sh`: each target's row is replaced when it runs. `make fuzz` runs every
target for `FUZZ_SECONDS` (60 by default); `make fuzz FUZZ_RUNS=10000000` runs each for ten million
inputs, the long form (see `fuzzing/README.md`). A row whose result is `running` is a run still
under way; `python fuzzing/results.py --progress` shows how far it has got.
"""

OUTRO = """
Each target starts from its seeds (`fuzzing/seeds/`, written by `fuzzing/make_seeds.py`) and the
corpus of earlier runs (`fuzzing/corpus/`, not committed). exec/s depends on the machine's load,
given for each row as it was when the target started. Every crash becomes a regression test in
`tests/fuzzing/`.
"""


def read_rows(text: str) -> dict[str, list[str]]:
    """The table's rows by target, in the file's order; rows of another layout are dropped."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| ---"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == len(HEADER) and cells[0] != HEADER[0]:
            rows[cells[0]] = cells
    return rows


def render(rows: dict[str, list[str]], machine: str) -> str:
    lines = [INTRO, f"Machine: {machine}.", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + " --- |" * len(HEADER))
    lines.extend("| " + " | ".join(cells) + " |" for cells in rows.values())
    return "\n".join(lines) + "\n" + OUTRO


def update(args: argparse.Namespace) -> None:
    path = Path(args.results)
    lock_path = path.parent / "crashes" / ".results.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = read_rows(path.read_text() if path.exists() else "")
        rows[args.target] = [
            args.target,
            args.bound,
            args.runs,
            args.seconds,
            args.speed,
            args.rss,
            args.crashes,
            args.status,
            args.commit,
            args.started,
            args.load,
        ]
        path.write_text(render(rows, args.machine))


# libFuzzer's status lines: "#123456	pulse  cov: 12 ft: 34 corp: 5/60b lim: 4 exec/s: 9000 rss: 60Mb"
STATUS_LINE = re.compile(rb"^#(\d+)\s+\w+.*?exec/s: (\d+)", re.MULTILINE)


def progress(crashes: Path) -> None:
    """Print the inputs run so far and the last exec/s of each target's log."""
    for log in sorted(crashes.glob("*.log")):
        matches = STATUS_LINE.findall(log.read_bytes())
        if matches:
            runs, speed = matches[-1]
            done = b"Done " in log.read_bytes()
            state = "done" if done else "running or stopped"
            print(f"{log.stem}: {int(runs):,} inputs, {int(speed):,} exec/s ({state})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--results", default=str(Path(__file__).parent / "RESULTS.md"))
    for name in ("target", "bound", "commit", "started", "load", "status", "machine"):
        parser.add_argument(f"--{name}", default="")
    for name in ("runs", "seconds", "speed", "rss", "crashes"):  # unknown while running
        parser.add_argument(f"--{name}", default="-")
    args = parser.parse_args()
    if args.progress:
        progress(Path(args.results).parent / "crashes")
    else:
        update(args)


if __name__ == "__main__":
    main()
