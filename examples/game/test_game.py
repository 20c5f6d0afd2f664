"""The arena in Chromium: two players see each other move; one leaves and comes back.

Positions are read from each page's latest snapshot (``window.game.positions()``) and from
the server's own state (``/game/state``); keys are held with Playwright's keyboard.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect
from tests.support.browser import Screenshot
from tests.support.http import http
from tests.support.serve import ServeProcess, StartDemo

POSITIONS = "window.game.positions()"


async def open_player(browser: Browser, server: ServeProcess, name: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{server.url}/game/?name={name}")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(page.locator("body")).to_have_attribute("data-player", re.compile(r"^\d+$"))
    return context, page


async def position(page: Page, user: str) -> list[float]:
    positions: dict[str, list[float]] = await page.evaluate(POSITIONS)
    return positions[user]


async def server_users(server: ServeProcess) -> list[str]:
    state: dict[str, Any] = (await http("GET", server.url + "/game/state")).json()
    return sorted(player["user"] for player in state.values())


async def hold(page: Page, key: str, other: Page, user: str, axis: int, sign: int) -> None:
    """Hold ``key`` on ``page`` until ``other`` sees ``user`` move 40 px along ``axis``."""
    start = await position(other, user)
    await page.keyboard.down(key)
    await other.wait_for_function(
        f"([start, axis, sign, user]) => {{ const p = {POSITIONS}[user];"
        " return p && (p[axis] - start[axis]) * sign >= 40; }",
        arg=[start, axis, sign, user],
    )
    await page.keyboard.up(key)


async def test_two_players_see_each_other_move_and_one_leaves_and_rejoins(
    start_demo: StartDemo, browser: Browser, screenshot: Screenshot
) -> None:
    server = await start_demo("game")
    alice_context, alice = await open_player(browser, server, "alice")
    bob_context, bob = await open_player(browser, server, "bob")
    try:
        for page in (alice, bob):
            await expect(page.locator("#players li")).to_have_text(["alice", "bob"])
            await page.wait_for_function(f"Object.keys({POSITIONS}).sort().join() === 'alice,bob'")
        assert await server_users(server) == ["alice", "bob"]

        # Each one's keys move them on the other's screen: right and down for alice, left and
        # up for bob (each moves toward the middle, so that no wall stops them).
        alice_x = (await position(bob, "alice"))[0]
        await hold(alice, "ArrowRight" if alice_x < 480 else "ArrowLeft", bob, "alice", 0, 1 if alice_x < 480 else -1)
        bob_y = (await position(alice, "bob"))[1]
        await hold(bob, "ArrowDown" if bob_y < 270 else "ArrowUp", alice, "bob", 1, 1 if bob_y < 270 else -1)
        await screenshot(alice, "game")

        # Bob leaves: alice sees him go from presence and from the arena; so does the server.
        await bob.click("#leave")
        await expect(bob.locator("#join")).to_be_visible()
        await expect(alice.locator("#players li")).to_have_text(["alice"])
        await alice.wait_for_function(f"Object.keys({POSITIONS}).join() === 'alice'")
        assert await server_users(server) == ["alice"]

        # And comes back, as a new player somewhere in the arena.
        await bob.fill("#name", "bob")
        await bob.click("#join button")
        await expect(bob.locator("#status")).to_have_attribute("data-state", "connected")
        await expect(alice.locator("#players li")).to_have_text(["alice", "bob"])
        await alice.wait_for_function(f"Object.keys({POSITIONS}).sort().join() === 'alice,bob'")
        bob_y = (await position(alice, "bob"))[1]
        await hold(bob, "ArrowDown" if bob_y < 270 else "ArrowUp", alice, "bob", 1, 1 if bob_y < 270 else -1)

        # A player whose connection just goes (the tab closes) leaves too.
        await bob_context.close()
        await expect(alice.locator("#players li")).to_have_text(["alice"])
        await alice.wait_for_function(f"Object.keys({POSITIONS}).join() === 'alice'")
        assert await server_users(server) == ["alice"]
    finally:
        await alice_context.close()
        await bob_context.close()
