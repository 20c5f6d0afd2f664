"""Debian's Chromium driven by Playwright: one way to launch it, for every browser test.

Chromium runs headless as root (``--no-sandbox``) and without the background services that
would try to reach the network; pages are served over http:// from the loopback origin,
since Chromium refuses ws:// to 127.0.0.1 from about:blank or file:// pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright, expect

from .timing import MS
from .tools import CHROMIUM, require

__all__ = ["CHROMIUM_ARGS", "PLAYWRIGHT_TIMEOUT", "launch_chromium"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Playwright's timeouts, in milliseconds.
PLAYWRIGHT_TIMEOUT = 10_000 * MS * 1000


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Start Chromium; skip the test if it's missing, except under ``CI=true`` where it fails."""
    require(CHROMIUM.exists(), f"Chromium isn't installed at {CHROMIUM}")
    expect.set_options(timeout=PLAYWRIGHT_TIMEOUT)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=PLAYWRIGHT_TIMEOUT
        )
        try:
            yield browser
        finally:
            await browser.close()
