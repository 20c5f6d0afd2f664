"""Collaborative editing in Chromium: concurrent typing converges, late and offline pages catch up.

Each page's text is its Yjs document (``window.collab.text()``); the server's copy, kept
with pycrdt, comes from ``/collab/text``. Updates travel as binary publications over the
protobuf form of the protocol.
"""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, BrowserContext, Page, expect
from tests.support.browser import Screenshot
from tests.support.http import http
from tests.support.serve import ServeProcess, StartDemo
from tests.support.timing import MS

DOC = "e2e"


async def open_editor(browser: Browser, server: ServeProcess, name: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{server.url}/collab/?doc={DOC}&name={name}")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(page.locator("body")).to_have_attribute("data-synced", "true")
    return context, page


async def server_text(server: ServeProcess) -> str:
    answer = await http("GET", f"{server.url}/collab/text?doc={DOC}")
    assert answer.status == 200, answer.text
    text: str = answer.json()["text"]
    return text


async def text(page: Page) -> str:
    value: str = await page.evaluate("window.collab.text()")
    return value


async def type_at_end(page: Page, words: str) -> None:
    await page.click("#text")
    await page.keyboard.press("Control+End")
    await page.keyboard.type(words, delay=15)


async def expect_converged(server: ServeProcess, pages: list[Page], *parts: str) -> str:
    """Wait until every page shows the server's text, and the text holds every part."""
    async with asyncio.timeout(10_000 * MS):
        while True:
            expected = await server_text(server)
            if all(is_subsequence(part, expected) for part in parts):
                break
            await asyncio.sleep(50 * MS)
    for page in pages:
        await expect(page.locator("#text")).to_have_value(expected)
        assert await text(page) == expected
    # Nothing was still on its way: the server's copy is the same once every page agrees.
    assert await server_text(server) == expected
    return expected


def is_subsequence(part: str, text: str) -> bool:
    """Whether ``part``'s characters appear in ``text`` in order (concurrent typing interleaves)."""
    characters = iter(text)
    return all(c in characters for c in part)


async def test_concurrent_edits_converge_and_late_and_offline_pages_catch_up(
    start_demo: StartDemo, browser: Browser, screenshot: Screenshot
) -> None:
    server = await start_demo("collab")
    contexts: list[BrowserContext] = []
    try:
        alice_context, alice = await open_editor(browser, server, "alice")
        contexts.append(alice_context)
        bob_context, bob = await open_editor(browser, server, "bob")
        contexts.append(bob_context)
        await expect(alice.locator("#people li")).to_have_text(["alice", "bob"])

        await type_at_end(alice, "The quick brown fox.")
        await expect_converged(server, [alice, bob], "The quick brown fox.")

        # Both type at once at the end of the same paragraph.
        await asyncio.wait_for(
            asyncio.gather(type_at_end(alice, " Alice types here."), type_at_end(bob, " Bob types there.")),
            timeout=30_000 * MS,
        )
        merged = await expect_converged(server, [alice, bob], " Alice types here.", " Bob types there.")
        assert merged.startswith("The quick brown fox.")

        # A late joiner gets the whole text from the sync RPC, and shows in presence.
        carol_context, carol = await open_editor(browser, server, "carol")
        contexts.append(carol_context)
        await expect(carol.locator("#text")).to_have_value(merged)
        await expect(alice.locator("#people li")).to_have_text(["alice", "bob", "carol"])
        # Others' cursors show: carol sees where alice is.
        await alice.click("#text")
        await alice.keyboard.press("Control+Home")
        await expect(carol.locator('#mirror .caret[data-user="alice"]')).to_have_count(1)
        await carol.wait_for_function("window.collab.cursors().alice === 0")

        # Bob goes offline and edits; alice edits meanwhile. Back online, both edits merge.
        await bob_context.set_offline(True)
        await expect(bob.locator("#status")).to_have_attribute("data-state", "offline")
        await type_at_end(bob, " Written offline.")
        await type_at_end(alice, " Written online.")
        await expect(carol.locator("#text")).to_have_value(merged + " Written online.")
        assert "Written offline" not in await server_text(server)
        await bob_context.set_offline(False)
        await expect(bob.locator("#status")).to_have_attribute("data-state", "connected")
        final = await expect_converged(server, [alice, bob, carol], " Written offline.", " Written online.")
        assert final.startswith(merged)
        await expect(alice.locator('#mirror .caret[data-user="bob"]')).to_have_count(1)
        await screenshot(alice, "collab")
    finally:
        for context in contexts:
            await context.close()
