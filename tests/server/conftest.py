"""Fixtures of the standalone server's tests: ``wavecast serve`` as a subprocess.

The server in this process (``start_wavecast``), centrifuge-python clients (``make_client``)
and Chromium (``browser``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

# Moved to tests.support; re-exports kept for tests/server/test_app.py and tests/server/test_admin.py
# (ADMIN_PASSWORD, MakeClient, SECRET, StartWavecast, basic_auth, http, http_from, make_config, make_token,
# subscribe), tests/e2e/test_chat_browser.py (ServeProcess, free_port, http, wavecast_command) and examples/
# (API_KEY, SECRET, ServeProcess, free_port, http, merge).
from ..support.cleanup import stopping
from ..support.config import ADMIN_PASSWORD, API_KEY, make_config, merge
from ..support.http import basic_auth, http, http_from
from ..support.processes import free_port
from ..support.sdk import Clients as MakeClient, subscribe
from ..support.serve import ServeProcess, StartServe, wavecast_command
from ..support.servers import StartWavecast
from ..support.tokens import SECRET, make_token

__all__ = [
    "ADMIN_PASSWORD",
    "API_KEY",
    "SECRET",
    "MakeClient",
    "ServeProcess",
    "StartServe",
    "StartWavecast",
    "basic_auth",
    "free_port",
    "http",
    "http_from",
    "make_config",
    "make_token",
    "merge",
    "subscribe",
    "wavecast_command",
]


@pytest.fixture
async def start_serve(tmp_path: Path) -> AsyncIterator[StartServe]:
    """``await start_serve(config_path, port=None, env=None)``: ``wavecast serve``, ready; killed
    when the test ends."""

    def serve(config_path: Path, *, port: int | None = None, env: Mapping[str, str] | None = None) -> ServeProcess:
        return ServeProcess(config_path, port or free_port(), cwd=tmp_path, env=env)

    async with stopping(serve, ServeProcess.kill, ready=ServeProcess.wait_ready) as start:
        yield start
