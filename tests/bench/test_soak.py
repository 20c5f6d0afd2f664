"""bench/soak.py: its report's verdict on synthetic samples, and a short run of the whole soak."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.tools import ROOT, load_script, redis_server

SCRIPT = ROOT / "bench" / "soak.py"
soak = load_script(SCRIPT)


def samples(fds_per_minute: float) -> list[dict[str, Any]]:
    return [
        {"minute": float(m), "node": node, "rss_mib": 60.0, "fds": 80 + fds_per_minute * m, "tasks": 70.0}
        | {"loop_lag_ms": 1.0, "connections": 35.0, "loadavg": 2.0}
        for m in range(30)
        for node in (0, 1)
    ]


def totals(received: list[int]) -> dict[str, Any]:
    return {
        "actions": {"connect": 10},
        "errors": {},
        "monitor": {"sent": 100, "received": received, "duplicates": [0, 0]},
        "victim_kills": 2,
    }


ARGS = argparse.Namespace(minutes=30, warmup=5, workers=2, clients=30, victim_clients=10, max_lost=0)


def test_report_passes_flat_series_and_fails_growth_or_loss(tmp_path: Path) -> None:
    assert soak.report(ARGS, tmp_path / "flat", samples(0), totals([100, 100])) == 0
    text = (tmp_path / "flat.md").read_text()
    assert "Verdict: PASS" in text
    assert (tmp_path / "flat.png").read_bytes().startswith(b"\x89PNG")

    # A descriptor a minute on each node: 60 an hour, past the limit of 30.
    assert soak.report(ARGS, tmp_path / "leak", samples(1), totals([100, 100])) == 1
    text = (tmp_path / "leak.md").read_text()
    assert text.count("| fds | 85.0 | 109.0 | +60.00 fds | 30 fds per hour | **GROWS** |") == 2
    assert "Verdict: FAIL" in text

    # One publication missing on node 1.
    assert soak.report(ARGS, tmp_path / "lost", samples(0), totals([100, 99])) == 1
    assert "**LOST [0, 1]**" in (tmp_path / "lost.md").read_text()


@pytest.mark.slow
def test_short_soak(tmp_path: Path) -> None:
    redis_server()
    out = tmp_path / "soak"
    command = [sys.executable, str(SCRIPT), "--minutes", "0.35", "--sample-seconds", "5", "--warmup", "1"]
    command += ["--workers", "1", "--clients", "4", "--victim-clients", "2", "--kill-every", "6", "9"]
    finished = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    report = out.with_suffix(".md").read_text()
    assert "Verdict: PASS" in report
    assert "Client-side errors: none" in report
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    sampled = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert {s["node"] for s in sampled} == {0, 1}
    assert all(s["tasks"] > 0 and s["fds"] > 0 and s["rss_mib"] > 0 for s in sampled)
    # The load reached both nodes, and the victim worker was killed at least once.
    assert max(s["connections"] for s in sampled if s["node"] == 0) > 0
    assert max(s["connections"] for s in sampled if s["node"] == 1) > 0
    assert "killed 0 times" not in report
