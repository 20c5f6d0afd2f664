"""Autobahn|Testsuite as a test: a representative subset in `make test`, every case when marked slow.

The runner comes from shared/autobahn beside the repository (`AUTOBAHN_HOME` overrides it);
its first setup installs the suite from PyPI into a cached venv.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUTOBAHN_HOME = Path(os.environ.get("AUTOBAHN_HOME", ROOT.parent / "shared" / "autobahn"))
RUN = ROOT / "compliance" / "run.sh"

# Every section once, and each permessage-deflate parameter combination once.
QUICK = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,9.1.1,9.2.1,9.7.1,9.8.1,12.1.1,12.2.1,12.3.1,12.4.1,12.5.1," + ",".join(
    f"13.{n}.1" for n in range(1, 8)
)

pytestmark = pytest.mark.compliance


def _require_autobahn() -> None:
    if not (AUTOBAHN_HOME / "run-server-suite.sh").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Autobahn runner is missing: {AUTOBAHN_HOME}")
        pytest.skip(f"the Autobahn runner is missing: {AUTOBAHN_HOME}")


def _run(side: str, cases: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    _require_autobahn()
    env = dict(os.environ, AUTOBAHN_HOME=str(AUTOBAHN_HOME))
    result = subprocess.run(
        [str(RUN), side, cases],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = result.stdout + result.stderr
    index = ROOT / "compliance" / "reports" / side / "index.json"
    assert index.exists(), summary
    cases_run: dict[str, dict[str, str]] = json.loads(index.read_text())["wavecast"]
    failed = sorted(case for case, r in cases_run.items() if r["behavior"] == "FAILED")
    assert not failed, f"FAILED cases: {failed}\n{summary}"
    assert result.returncode == 0, summary
    return cases_run


@pytest.mark.parametrize("side", ["server", "client"])
def test_quick(side: str, tmp_path: Path) -> None:
    cases = _run(side, QUICK, tmp_path)
    assert len(cases) > 250


@pytest.mark.slow
@pytest.mark.parametrize("side", ["server", "client"])
def test_every_case(side: str, tmp_path: Path) -> None:
    cases = _run(side, "*", tmp_path)
    assert len(cases) == 517
