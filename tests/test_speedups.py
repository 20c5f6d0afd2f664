"""speedups: the C extensions load when built, and the switch turns them off."""

from __future__ import annotations

import os

import pytest

from wavecast.speedups import load

EXTENSIONS = ("wavecast.protocol._speedups", "wavecast.asyncio._speedups", "wavecast.realtime._speedups")


def test_the_switch_turns_the_extensions_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVECAST_NO_SPEEDUPS", "1")
    assert all(load(name) is None for name in EXTENSIONS)


def test_a_missing_extension_is_none() -> None:
    assert load("wavecast._no_such_extension") is None


@pytest.mark.skipif(os.environ.get("WAVECAST_NO_SPEEDUPS") is not None, reason="this run checks the Python twins")
def test_ci_runs_with_the_extensions_built() -> None:
    # A build that silently fell back to pure Python would leave the C code untested.
    missing = [name for name in EXTENSIONS if load(name) is None]
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"not built here: {', '.join(missing)}")
    assert not missing, f"the C extensions aren't built: {', '.join(missing)}"
