"""Fixtures of the examples' browser tests: a demo server in a subprocess, Chromium, screenshots.

``await start_demo("trading")`` runs ``python -m examples.trading`` on a free port with a
fresh configuration, and waits until it's ready; ``start_demo("gallery")`` runs all of them.
Screenshots go to ``$WAVECAST_SCREENSHOTS`` when it is set (``make screenshots`` sets it to
``docs/screenshots``), else to the test's temporary directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from playwright.async_api import Browser, Page
from tests.browser import launch_chromium
from tests.server.conftest import API_KEY, SECRET, ServeProcess, free_port, merge
from tests.utils import TIMEOUT_FACTOR

ROOT = Path(__file__).resolve().parents[1]

#: What every demo server starts from; a test may merge in more.
DEMO_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "shutdown_timeout": 2.0},
    "client": {"token_hmac_secret_key": SECRET},
    "http_api": {"key": API_KEY},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the examples' tests as browser interop tests, each bounded in time."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.interop)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(90 * TIMEOUT_FACTOR))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as browser:
        yield browser


StartDemo = Callable[..., Awaitable[ServeProcess]]


@pytest.fixture
async def start_demo(tmp_path: Path) -> AsyncIterator[StartDemo]:
    """Run ``python -m examples.<name>`` and wait until it's ready.

    ``await start_demo(name, port=None, env=None, **sections)``: ``sections`` are merged into
    :data:`DEMO_CONFIG`. Processes still running when the test ends are killed.
    """
    processes: list[ServeProcess] = []

    async def start(
        name: str, *, port: int | None = None, env: Mapping[str, str] | None = None, **sections: Any
    ) -> ServeProcess:
        config_path = tmp_path / f"{name}.toml"
        config_path.write_text(tomli_w.dumps(merge(DEMO_CONFIG, sections)))
        process = ServeProcess(
            config_path,
            port or free_port(),
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), **(env or {})},
            command=[sys.executable, "-m", f"examples.{name}"],
        )
        processes.append(process)
        await process.wait_ready()
        return process

    yield start
    for process in processes:
        process.kill()


Screenshot = Callable[[Page, str], Awaitable[Path]]


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
