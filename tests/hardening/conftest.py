"""Fixtures of the hardening tests: a wavecast server in a subprocess, whose memory is measured.

The server runs in its own process (:mod:`tests.support.serverproc`) so that its resident
memory can be read from ``/proc/<pid>/status`` without counting what the test process
allocates to attack it. Memory is a measurement, never a timing.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from ..support.attack import ServerProcess, SpawnServer
from ..support.cleanup import stopping
from ..support.memory import MEASUREMENTS


@pytest.fixture
async def spawn_server(tmp_path: Path) -> AsyncIterator[SpawnServer]:
    """``await spawn_server(**serve_kwargs)``: a server in a subprocess (``limits`` is a dict of
    :class:`~wavecast.Limits` fields). When the test ends, each server is terminated, and its
    stderr must hold no traceback."""
    stderrs = (tmp_path / f"server{i}.stderr" for i in itertools.count())

    def spawn(**config: Any) -> Awaitable[ServerProcess]:
        return ServerProcess.spawn(config, next(stderrs))

    def stop(server: ServerProcess) -> None:
        stderr = server.stop()
        assert "Traceback" not in stderr, stderr

    async with stopping(spawn, stop) as start:
        yield start


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the memory measured in each hardening test."""
    if MEASUREMENTS:
        terminalreporter.section("hardening: server memory")
        for name, text in MEASUREMENTS.items():
            terminalreporter.write_line(f"{name}: {text}")
