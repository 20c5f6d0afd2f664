"""The gallery at ``/``: every demo listed with its sentence, every link leads to its page, and
Ctrl-C stops everything the demos started."""

from __future__ import annotations

import signal

from playwright.async_api import Browser, expect
from tests.support.browser import Screenshot
from tests.support.http import http
from tests.support.serve import StartDemo

from ..iot.test_iot import alive, device_pids
from . import DEMOS


async def test_gallery_links_every_demo(start_demo: StartDemo, browser: Browser, screenshot: Screenshot) -> None:
    server = await start_demo("gallery")
    page = await browser.new_page()
    await page.goto(server.url + "/")
    links = page.locator("#demos a")
    await expect(links).to_have_count(len(DEMOS))
    for demo in DEMOS:
        await expect(page.locator(f'#demos a[href="/{demo.name}/"]')).to_have_text(demo.title)
        answer = await http("GET", f"{server.url}/{demo.name}/")
        assert answer.status == 200, (demo.name, answer.status)
        assert "<html" in answer.text.lower()
    await screenshot(page, "gallery")


async def test_demo_pages_refuse_paths_outside_their_directory(start_demo: StartDemo) -> None:
    server = await start_demo("gallery")
    for path in ("/chat/../../pyproject.toml", "/chat/%2e%2e/kit.py", "/chat/.hidden", "/nowhere/"):
        answer = await http("GET", server.url + path)
        assert answer.status == 404, (path, answer.status)
    # /chat redirects to /chat/, so that the page's relative URLs resolve under it.
    redirected = await http("GET", server.url + "/chat")
    assert redirected.status == 200
    assert "<html" in redirected.text.lower()


async def test_the_gallery_stops_cleanly_on_sigint(start_demo: StartDemo) -> None:
    """Ctrl-C: the gallery stops the processes its demos started, and exits 0."""
    server = await start_demo("gallery")
    pids = await device_pids(server)
    assert await server.stop(signal.SIGINT) == 0, server.log
    assert not [pid for pid in pids.values() if alive(pid)], server.log
