"""Fixtures of the hardening tests: a wavecast server in a subprocess, whose memory is measured.

The server runs in its own process (:mod:`tests.support.serverproc`) so that its resident
memory can be read from ``/proc/<pid>/status`` without counting what the test process
allocates to attack it. Memory is a measurement, never a timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ..support.attack import ServerProcess, SpawnServer
from ..support.memory import MEASUREMENTS


@pytest.fixture
async def spawn_server(tmp_path: Path) -> AsyncIterator[SpawnServer]:
    """Start servers in subprocesses: ``await spawn_server(**serve_kwargs)``.

    ``limits`` is a dict of :class:`~wavecast.Limits` fields. When the test ends, each server
    is terminated, and its stderr must hold no traceback.
    """
    servers: list[ServerProcess] = []

    async def spawn(**config: Any) -> ServerProcess:
        server = await ServerProcess.spawn(config, tmp_path / f"server{len(servers)}.stderr")
        servers.append(server)
        return server

    yield spawn
    for server in servers:
        stderr = server.stop()
        assert "Traceback" not in stderr, stderr


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the memory measured in each hardening test."""
    if MEASUREMENTS:
        terminalreporter.section("hardening: server memory")
        for name, text in MEASUREMENTS.items():
            terminalreporter.write_line(f"{name}: {text}")
