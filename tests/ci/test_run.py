""".ci/run: the CI entry point runs ``make test`` with ``CI=true``, whatever the environment says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_ci_run_exports_ci_true(tmp_path: Path) -> None:
    # A stand-in for make that reports what it was asked and with which CI.
    fake = tmp_path / "make"
    fake.write_text('#!/bin/sh\necho "make $* CI=${CI-unset}"\n')
    fake.chmod(0o755)
    environ = {key: value for key, value in os.environ.items() if key != "CI"}
    environ["PATH"] = f"{tmp_path}{os.pathsep}{environ['PATH']}"
    result = subprocess.run(
        [str(ROOT / ".ci" / "run")], env=environ, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "make test CI=true"
