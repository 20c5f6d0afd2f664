"""The chat in Chromium: presence, typing, switching rooms, and recovery after a lost connection.

Alice and Bob chat in one room. Bob's "is typing" shows on Alice's page and clears when he
sends, without a trace in the room's history. They switch rooms and come back to the
lobby's history. Then Bob's browser goes offline while Alice writes and the backend
publishes through the HTTP API: back online, Bob's page recovers exactly what it missed.
"""

from __future__ import annotations

import tomllib

from playwright.async_api import Browser, BrowserContext, Page, expect
from tests.support.browser import Screenshot
from tests.support.config import API_KEY
from tests.support.http import http
from tests.support.serve import StartDemo

from wavecast.cli import starter_config
from wavecast.server.config import parse_config

from .app import DEMO

ROOM = "lobby"


class ChatPage:
    """One person on the chat page, in a browser context of their own."""

    def __init__(self, context: BrowserContext, page: Page, name: str) -> None:
        self.context = context
        self.page = page
        self.name = name
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    async def open(cls, browser: Browser, url: str, name: str, *, init_script: str | None = None) -> ChatPage:
        """Open the page at ``url``, after ``init_script`` if given (it runs before the page's own)."""
        context = await browser.new_context()
        if init_script is not None:
            await context.add_init_script(init_script)
        page = await context.new_page()
        await page.goto(url)
        return cls(context, page, name)

    async def join(self, room: str) -> None:
        await self.page.fill("#name", self.name)
        await self.page.fill("#room", room)
        await self.page.click("#join button")
        await self.expect_room(room)
        await expect(self.page.locator("#status")).to_have_attribute("data-state", "connected")

    async def switch(self, room: str) -> None:
        await self.page.click(f'#rooms button[data-room="{room}"]')
        await self.expect_room(room)

    async def expect_room(self, room: str) -> None:
        await expect(self.page.locator("#room-title")).to_have_text(f"#{room}")
        await expect(self.page.locator(f'#rooms button[data-room="{room}"]')).to_have_attribute("aria-current", "true")

    async def say(self, text: str) -> None:
        await self.page.fill("#text", text)
        await self.page.press("#text", "Enter")
        await self.expect_message(text)

    async def expect_message(self, text: str) -> None:
        await expect(self.page.locator("li.message").filter(has_text=text)).to_have_count(1)

    async def expect_texts(self, texts: list[str]) -> None:
        await expect(self.page.locator("li.message .text")).to_have_text(texts)

    async def expect_presence(self, names: list[str]) -> None:
        await expect(self.page.locator("#presence li")).to_have_text(names)

    async def expect_transport(self, transport: str) -> None:
        await expect(self.page.locator("#status")).to_have_attribute("data-transport", transport)

    async def expect_typing(self, text: str) -> None:
        await expect(self.page.locator("#typing")).to_have_text(text)

    async def offsets(self) -> list[int]:
        values: list[str] = await self.page.locator("li.message").evaluate_all(
            "items => items.map((li) => li.dataset.offset)"
        )
        return [int(value) for value in values]


def test_the_demo_has_the_namespaces_that_genconfig_writes() -> None:
    """``wavecast serve`` ships the same page: its starter configuration must fit it."""
    config = parse_config(tomllib.loads(starter_config("wavecast.toml", dev=True)))
    for namespace, options in DEMO.namespaces.items():
        assert config.namespaces[namespace] == options, namespace


async def test_chat(start_demo: StartDemo, browser: Browser, screenshot: Screenshot) -> None:
    server = await start_demo("chat")
    alice = await ChatPage.open(browser, server.url + "/chat/", "alice")
    bob = await ChatPage.open(browser, server.url + "/chat/", "bob")
    await alice.join(ROOM)
    await bob.join(ROOM)
    await alice.expect_transport("websocket")
    await alice.expect_presence(["alice", "bob"])
    await bob.expect_presence(["alice", "bob"])
    await alice.say("hi bob")
    await bob.expect_message("hi bob")

    # Bob types: Alice sees it, Bob doesn't see himself; sending clears it.
    await bob.page.fill("#text", "hello ali")
    await alice.expect_typing("bob is typing…")
    await bob.expect_typing("")
    await bob.page.press("#text", "Enter")
    await alice.expect_message("hello ali")
    await alice.expect_typing("")
    # Typing again, then emptying the box, clears it too.
    await bob.page.fill("#text", "one more")
    await alice.expect_typing("bob is typing…")
    await bob.page.fill("#text", "")
    await alice.expect_typing("")
    # The room's history holds the messages only: typing signals went to typing:lobby.
    answer = await http(
        "POST", server.url + "/api/history", {"channel": f"chat:{ROOM}", "limit": 10}, headers={"X-API-Key": API_KEY}
    )
    assert [pub["data"]["text"] for pub in answer.json()["result"]["publications"]] == ["hi bob", "hello ali"]

    # Alice moves to another room: each page sees only who is in its own.
    await alice.switch("random")
    await alice.expect_texts([])
    await alice.expect_presence(["alice"])
    await bob.expect_presence(["bob"])
    await bob.switch("random")
    await alice.expect_presence(["alice", "bob"])
    await bob.say("it's quieter here")
    await alice.expect_message("it's quieter here")
    await alice.switch(ROOM)
    await bob.switch(ROOM)
    # Back in the lobby: its history, and nothing from the other room.
    for page in (alice, bob):
        await page.expect_texts(["hi bob", "hello ali"])
        await page.expect_presence(["alice", "bob"])

    # Bob's network goes away; the room goes on without him.
    await bob.context.set_offline(True)
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "connecting")
    await alice.expect_presence(["alice"])
    await alice.say("where did bob go?")
    answer = await http(
        "POST",
        server.url + "/api/publish",
        {"channel": f"chat:{ROOM}", "data": {"name": "backend", "text": "bob is offline"}},
        headers={"X-API-Key": API_KEY},
    )
    assert answer.status == 200, answer.text
    await alice.expect_message("bob is offline")
    await bob.context.set_offline(False)
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(bob.page.locator("body")).to_have_attribute("data-recovered", "true")
    texts = ["hi bob", "hello ali", "where did bob go?", "bob is offline"]
    for page in (alice, bob):
        await page.expect_texts(texts)
    assert await bob.offsets() == await alice.offsets() == [1, 2, 3, 4]
    await bob.say("back again")
    await alice.expect_message("back again")
    await alice.expect_presence(["alice", "bob"])

    await bob.page.fill("#text", "did I miss anything")
    await alice.expect_typing("bob is typing…")
    await screenshot(alice.page, "chat")
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
