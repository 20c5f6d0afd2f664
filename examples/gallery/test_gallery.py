"""The gallery at ``/``: every demo listed with its sentence, every link leads to its page, the
chat falls back to HTTP-streaming where WebSocket is missing, and Ctrl-C stops everything
the demos started."""

from __future__ import annotations

import signal

from playwright.async_api import Browser, expect
from tests.support.browser import Screenshot
from tests.support.http import http
from tests.support.serve import StartDemo

from ..chat.test_chat import ROOM, ChatPage
from ..iot.test_iot import alive, device_pids
from . import DEMOS

#: Run before the page's scripts: a browser without WebSocket, where centrifuge-js finds its
#: first transport unsupported and moves on to the next in the page's list.
NO_WEBSOCKET = "delete window.WebSocket"


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


async def test_the_gallery_chat_falls_back_to_http_streaming(start_demo: StartDemo, browser: Browser) -> None:
    """The gallery serves the chat's fallbacks though its configuration doesn't mention them:
    a page without WebSocket chats over HTTP-streaming with one that has it."""
    server = await start_demo("gallery")
    alice = await ChatPage.open(browser, server.url + "/chat/", "alice", init_script=NO_WEBSOCKET)
    bob = await ChatPage.open(browser, server.url + "/chat/", "bob")
    await alice.join(ROOM)
    await bob.join(ROOM)
    await alice.expect_transport("http_stream")
    await bob.expect_transport("websocket")
    for page in (alice, bob):
        await page.expect_presence(["alice", "bob"])
    await alice.say("hi bob")
    await bob.expect_message("hi bob")
    await bob.say("hi alice")
    await alice.expect_message("hi alice")
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


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
