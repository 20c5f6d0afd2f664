"""Every page of the gallery loads in Chromium without an error, with its icon, and the
inputs that take a pattern refuse what it excludes."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser
from tests.support.browser import PageProblems, assert_icon_served, assert_patterns_enforced
from tests.support.serve import StartDemo
from tests.support.timing import TIMEOUT_FACTOR

from .gallery import DEMOS

#: The inputs with a ``pattern`` on each page: names and rooms.
PATTERNS = {"chat": 3, "game": 1, "notifications": 2}


@pytest.mark.timeout(120 * TIMEOUT_FACTOR)
async def test_pages_load_cleanly(start_demo: StartDemo, browser: Browser) -> None:
    server = await start_demo("gallery")
    for path in ["/", *(f"/{demo.name}/" for demo in DEMOS)]:
        page = await browser.new_page()
        watch = PageProblems(page)
        await page.goto(server.url + path, wait_until="load")
        await assert_icon_served(page)
        await assert_patterns_enforced(page, PATTERNS.get(path.strip("/"), 0))
        await page.close()
        assert watch.problems == [], path
