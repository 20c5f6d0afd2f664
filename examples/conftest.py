"""Fixtures of the examples' tests: a demo server in a subprocess, Chromium, screenshots, SDK clients.

``await start_demo("trading")`` runs ``python -m examples.trading`` on a free port with a
fresh configuration, and waits until it's ready; ``start_demo("gallery")`` runs all of them.
Screenshots go to ``$WAVECAST_SCREENSHOTS`` when it is set (``make screenshots`` sets it to
``docs/screenshots``), else to the test's temporary directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from tests.support.browser import Screenshot, launch_chromium
from tests.support.cleanup import stopping
from tests.support.config import API_KEY, merge, write_config
from tests.support.processes import free_port
from tests.support.sdk import Clients
from tests.support.serve import ServeProcess, StartDemo
from tests.support.timing import bound_in_time
from tests.support.tokens import SECRET
from tests.support.tools import ROOT

#: What every demo server starts from; a test may merge in more.
DEMO_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "shutdown_timeout": 2.0},
    "client": {"token_hmac_secret_key": SECRET},
    "http_api": {"key": API_KEY},
}

_EXAMPLES = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the examples' tests as browser interop tests, each bounded in time."""
    for item in items:
        if _EXAMPLES in item.path.parents:
            item.add_marker(pytest.mark.interop)
    bound_in_time(items, {_EXAMPLES: 90})


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as browser:
        yield browser


@pytest.fixture
async def start_demo(tmp_path: Path) -> AsyncIterator[StartDemo]:
    """Run ``python -m examples.<name>`` and wait until it's ready.

    ``await start_demo(name, port=None, env=None, **sections)``: ``sections`` are merged into
    :data:`DEMO_CONFIG`. Processes still running when the test ends are killed.
    """

    def start(
        name: str, *, port: int | None = None, env: Mapping[str, str] | None = None, **sections: Any
    ) -> ServeProcess:
        return ServeProcess(
            write_config(tmp_path, merge(DEMO_CONFIG, sections), f"{name}.toml"),
            port or free_port(),
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), **(env or {})},
            command=[sys.executable, "-m", f"examples.{name}"],
        )

    async with stopping(start, ServeProcess.kill, ready=ServeProcess.wait_ready) as start_and_wait:
        yield start_and_wait


@pytest.fixture
async def make_client() -> AsyncIterator[Clients]:
    """centrifuge-python clients (:class:`~tests.support.sdk.Clients`), disconnected when the test ends."""
    async with Clients() as clients:
        yield clients


@pytest.fixture
def screenshot(tmp_path: Path) -> Screenshot:
    """``await screenshot(page, "trading")`` saves the page as ``trading.png``."""
    directory = Path(os.environ.get("WAVECAST_SCREENSHOTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)

    async def take(page: Page, name: str) -> Path:
        path = directory / f"{name}.png"
        await page.screenshot(path=str(path))
        return path

    return take
