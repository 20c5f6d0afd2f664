"""Fixtures of the standalone server's tests: ``wavecast serve`` as a subprocess.

The server in this process (``start_wavecast``), centrifuge-python clients (``make_client``)
and Chromium (``browser``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from ..support.cleanup import stopping
from ..support.processes import free_port
from ..support.serve import ServeProcess, StartServe


@pytest.fixture
async def start_serve(tmp_path: Path) -> AsyncIterator[StartServe]:
    """``await start_serve(config_path, port=None, env=None)``: ``wavecast serve``, ready; killed
    when the test ends."""

    def serve(config_path: Path, *, port: int | None = None, env: Mapping[str, str] | None = None) -> ServeProcess:
        return ServeProcess(config_path, port or free_port(), cwd=tmp_path, env=env)

    async with stopping(serve, ServeProcess.kill, ready=ServeProcess.wait_ready) as start:
        yield start
