"""Autobahn|Testsuite as a test: a representative subset in `make test`, every case when marked slow.

The runner is compliance/autobahn/ (`AUTOBAHN_HOME` overrides it). Its setup.sh installs the
suite from PyPI into a cached venv the first time; when that fails (no network, say), the tests
skip with its output, and fail under `CI=true`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..support.timing import TIMEOUT_FACTOR

ROOT = Path(__file__).resolve().parents[2]
AUTOBAHN_HOME = Path(os.environ.get("AUTOBAHN_HOME", ROOT / "compliance" / "autobahn"))
RUN = ROOT / "compliance" / "run.sh"

# Every section once, and each permessage-deflate parameter combination once.
QUICK = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,9.1.1,9.2.1,9.7.1,9.8.1,12.1.1,12.2.1,12.3.1,12.4.1,12.5.1," + ",".join(
    f"13.{n}.1" for n in range(1, 8)
)

pytestmark = pytest.mark.compliance


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def autobahn() -> Path:
    """Set the runner up (a no-op once its venv is built) and return its directory."""
    setup = AUTOBAHN_HOME / "setup.sh"
    if not setup.exists():
        _missing(f"the Autobahn runner is missing: {AUTOBAHN_HOME}")
    result = subprocess.run([str(setup)], capture_output=True, text=True, timeout=900 * TIMEOUT_FACTOR)
    if result.returncode != 0:
        _missing(f"{setup} could not install the Autobahn|Testsuite:\n{(result.stdout + result.stderr)[-2000:]}")
    return AUTOBAHN_HOME


def _run(autobahn: Path, side: str, cases: str) -> dict[str, dict[str, str]]:
    env = dict(os.environ, AUTOBAHN_HOME=str(autobahn))
    result = subprocess.run(
        [str(RUN), side, cases],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800 * TIMEOUT_FACTOR,
    )
    summary = result.stdout + result.stderr
    index = ROOT / "compliance" / "reports" / side / "index.json"
    assert index.exists(), summary
    cases_run: dict[str, dict[str, str]] = json.loads(index.read_text())["wavecast"]
    failed = sorted(case for case, r in cases_run.items() if r["behavior"] == "FAILED")
    assert not failed, f"FAILED cases: {failed}\n{summary}"
    assert result.returncode == 0, summary
    return cases_run


# The first test also waits for the setup: the first install takes about a minute.
@pytest.mark.timeout(900 * TIMEOUT_FACTOR)
@pytest.mark.parametrize("side", ["server", "client"])
def test_quick(autobahn: Path, side: str) -> None:
    cases = _run(autobahn, side, QUICK)
    assert len(cases) > 250


@pytest.mark.slow
@pytest.mark.timeout(3600 * TIMEOUT_FACTOR)
@pytest.mark.parametrize("side", ["server", "client"])
def test_every_case(autobahn: Path, side: str) -> None:
    cases = _run(autobahn, side, "*")
    assert len(cases) == 517
