"""The echo demo's page (``wavecast demo``) in Chromium: it loads cleanly, with its icon, and echoes."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from wavecast.asyncio.server import serve
from wavecast.demo import echo, process_request

from ..support.browser import PageProblems, assert_icon_served, launch_chromium

pytestmark = pytest.mark.interop


async def test_echo_page_loads_cleanly() -> None:
    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server, launch_chromium() as browser:
        page = await browser.new_page()
        watch = PageProblems(page)
        await page.goto(f"http://127.0.0.1:{server.port}/")
        await expect(page.locator("#status")).to_have_text("connected")
        # The demo serves this page alone: its icon is inline.
        await assert_icon_served(page)
        await page.fill("#message", "hello")
        await page.press("#message", "Enter")
        await expect(page.locator("#log")).to_contain_text("< hello")
        await page.close()
        assert watch.problems == []
