"""The chat demo in Chromium against ``wavecast serve`` in a subprocess, across a server restart.

Three pages chat in one room: presence, messages both ways, history for a late joiner. Then
one page goes offline and the server restarts on the same port with the same configuration
(its history snapshot is reloaded); the pages still online reconnect on their own and
recover, messages are published while the offline page is away, and when it comes back it
recovers them: every message appears exactly once on every page, in order. A page that
closes leaves the others' presence.

Behind a proxy that refuses WebSocket upgrades, as some corporate networks and carriers do,
the page falls back to HTTP-streaming, or to SSE where HTTP-streaming is refused too, and the
same chat, presence and recovery across a restart work over it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from ..support.browser import (
    PLAYWRIGHT_TIMEOUT,
    PageProblems,
    assert_icon_served,
    assert_patterns_enforced,
    launch_chromium,
)
from ..support.haproxy import REFUSE_WEBSOCKET, Haproxy, refuse_path
from ..support.http import http
from ..support.processes import free_port
from ..support.serve import ServeProcess, wavecast_command
from ..support.timing import MS, TIMEOUT_FACTOR
from ..support.tools import haproxy

pytestmark = pytest.mark.interop

ROOM = "e2e-room"

#: centrifuge-js backs off up to a few seconds between attempts while the server is down.
RECONNECT_TIMEOUT = 20_000 * MS * 1000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch_chromium() as browser:
        yield browser


class ChatPage:
    """One person in the chat demo, in a browser context of their own."""

    def __init__(self, context: BrowserContext, page: Page, name: str, screenshots: Path) -> None:
        self.context = context
        self.page = page
        self.name = name
        self.screenshots = screenshots
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    @classmethod
    async def open(cls, browser: Browser, url: str, name: str, screenshots: Path) -> ChatPage:
        context = await browser.new_context()
        page = await context.new_page()
        page.set_default_timeout(PLAYWRIGHT_TIMEOUT)
        await page.goto(url)
        return cls(context, page, name, screenshots)

    async def join(self, room: str) -> None:
        await expect(self.page.locator("#chat")).to_be_hidden()
        await self.page.fill("#name", self.name)
        await self.page.fill("#room", room)
        await self.page.click("#join button")
        await expect(self.page.locator("#room-title")).to_have_text(f"#{room}")
        await expect(self.page.locator("#join")).to_be_hidden()
        await expect(self.page.locator("#chat")).to_be_visible()
        await self.expect_state("connected")

    async def expect_state(self, state: str, timeout: float = PLAYWRIGHT_TIMEOUT) -> None:
        await expect(self.page.locator("#status")).to_have_attribute("data-state", state, timeout=timeout)

    async def expect_transport(self, transport: str) -> None:
        """The page's connection runs over ``transport``, as centrifuge-js's connected event says."""
        await expect(self.page.locator("#status")).to_have_attribute("data-transport", transport)

    async def say(self, text: str) -> None:
        await self.page.fill("#text", text)
        await self.page.press("#text", "Enter")
        await self.expect_message(text)

    async def expect_message(self, text: str) -> None:
        await expect(self.page.locator("li.message").filter(has_text=text)).to_have_count(1)

    async def expect_presence(self, names: list[str]) -> None:
        await expect(self.page.locator("#presence li")).to_have_text(names)

    async def messages(self) -> list[tuple[int, str, str]]:
        """``(offset, who, text)`` of each message, in page order."""
        rows: list[list[str]] = await self.page.locator("li.message").evaluate_all(
            "items => items.map((li) => [li.dataset.offset,"
            " li.querySelector('.who').textContent, li.querySelector('.text').textContent])"
        )
        return [(int(offset), who, text) for offset, who, text in rows]

    async def screenshot(self, label: str) -> None:
        await self.page.screenshot(path=str(self.screenshots / f"{label}-{self.name}.png"), full_page=True)

    async def close(self) -> None:
        await self.context.close()


def genconfig(directory: Path) -> Path:
    result = subprocess.run(
        [*wavecast_command(), "genconfig", "--dev", "--config", "wavecast.toml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return directory / "wavecast.toml"


def assert_well_ordered(messages: list[tuple[int, str, str]]) -> None:
    offsets = [offset for offset, _, _ in messages]
    assert offsets == sorted(set(offsets)), f"offsets out of order or repeated: {offsets}"
    texts = [text for _, _, text in messages]
    assert len(texts) == len(set(texts)), f"a message appears twice: {texts}"


class Chat:
    """``wavecast serve`` with the dev configuration, started again on the same port at will,
    and the pages open on it."""

    def __init__(self, browser: Browser, directory: Path, env: dict[str, str] | None) -> None:
        self.browser = browser
        self.directory = directory
        self.env = env
        self.config_path = genconfig(directory)
        self.api_key: str = tomllib.loads(self.config_path.read_text())["http_api"]["key"]
        self.screenshots = directory / "screenshots"
        self.screenshots.mkdir()
        self.port = free_port()
        self.servers: list[ServeProcess] = []
        self.pages: list[ChatPage] = []
        self.proxy: Haproxy | None = None

    @property
    def server(self) -> ServeProcess:
        return self.servers[-1]

    @property
    def url(self) -> str:
        """Where pages open the chat: through the proxy when there is one."""
        return (self.proxy or self.server).url

    async def start(self) -> ServeProcess:
        """Start the server, ready; the dev configuration keeps its history snapshot in
        .wavecast/ under the working directory."""
        server = ServeProcess(self.config_path, self.port, cwd=self.directory, env=self.env)
        self.servers.append(server)
        await server.wait_ready()
        return server

    async def start_proxy(self, rules: list[str]) -> Haproxy:
        """Put haproxy with ``rules`` in front of the server, ready; pages opened from now on go
        through it. It stays up while the server restarts behind it, on the same port."""
        self.proxy = Haproxy(haproxy(), free_port(), [self.port], cwd=self.directory, frontend_rules=rules)
        await self.proxy.wait_ready()
        return self.proxy

    async def join(self, name: str) -> ChatPage:
        """Open the chat as ``name`` and join the room."""
        page = await ChatPage.open(self.browser, self.url + "/", name, self.screenshots)
        self.pages.append(page)
        await page.join(ROOM)
        return page

    async def publish(self, text: str) -> int:
        """Publish to the room through the HTTP API, as an application's backend does; return the offset."""
        answer = await http(
            "POST",
            self.server.url + "/api/publish",
            {"channel": f"chat:{ROOM}", "data": {"name": "bot", "text": text}},
            headers={"X-API-Key": self.api_key},
        )
        offset: int = answer.json()["result"]["offset"]
        return offset


@contextlib.asynccontextmanager
async def chat(browser: Browser, directory: Path, env: dict[str, str] | None = None) -> AsyncIterator[Chat]:
    """A :class:`Chat`: on a failure, each open page takes a screenshot; then pages close and servers stop."""
    chat = Chat(browser, directory, env)
    try:
        yield chat
    except BaseException:
        for page in chat.pages:
            try:
                await page.screenshot("failure")
            except Exception:
                pass
        raise
    finally:
        for page in chat.pages:
            await page.close()
        for server in chat.servers:
            server.kill()
        if chat.proxy is not None:
            chat.proxy.kill()


@pytest.mark.timeout(120 * TIMEOUT_FACTOR)
async def test_chat_across_a_server_restart(browser: Browser, tmp_path: Path) -> None:
    async with chat(browser, tmp_path) as room:
        server = await room.start()
        alice = await room.join("alice")
        bob = await room.join("bob")
        pages = room.pages
        await alice.expect_transport("websocket")
        await alice.expect_presence(["alice", "bob"])
        await bob.expect_presence(["alice", "bob"])

        await alice.say("hello from alice")
        await bob.expect_message("hello from alice")
        await bob.say("hi alice")
        await alice.expect_message("hi alice")
        await alice.say("how are you?")
        await bob.expect_message("how are you?")

        # A late joiner gets the room's last messages from history, and shows up in presence.
        carol = await room.join("carol")
        for text in ("hello from alice", "hi alice", "how are you?"):
            await carol.expect_message(text)
        for page in (alice, bob, carol):
            await page.expect_presence(["alice", "bob", "carol"])
        await carol.say("hello, I'm carol")
        await alice.expect_message("hello, I'm carol")
        await bob.expect_message("hello, I'm carol")
        for page in pages:
            await page.screenshot("1-before-restart")

        # Carol's page loses the network: centrifuge-js hears the browser's "offline" event,
        # closes its connection and waits.
        await carol.context.set_offline(True)
        await carol.expect_state("connecting")
        before_offline = await carol.messages()

        # Restart: SIGTERM, a clean exit, and the same port and configuration again.
        assert await server.stop(signal.SIGTERM) == 0, server.log
        assert (tmp_path / ".wavecast" / "history.json").is_file()
        for page in (alice, bob):
            await page.expect_state("connecting")
        server = await room.start()
        for page in (alice, bob):
            await page.expect_state("connected", timeout=RECONNECT_TIMEOUT)
            # The room's stream came back from the snapshot: the subscription recovered.
            await expect(page.page.locator("body")).to_have_attribute("data-recovered", "true")

        # While carol is away: the backend publishes through the HTTP API, and alice talks.
        offsets = [await room.publish(f"missed while offline {n}") for n in (1, 2)]
        assert offsets[1] == offsets[0] + 1
        await alice.say("back after the restart")
        for text in ("missed while offline 1", "missed while offline 2", "back after the restart"):
            await bob.expect_message(text)
        assert await carol.messages() == before_offline
        await carol.expect_state("connecting")

        # Carol's page comes back online: it reconnects and recovers what it missed.
        await carol.context.set_offline(False)
        await carol.expect_state("connected", timeout=RECONNECT_TIMEOUT)
        await expect(carol.page.locator("body")).to_have_attribute("data-recovered", "true")
        for text in ("missed while offline 1", "missed while offline 2", "back after the restart"):
            await carol.expect_message(text)

        # Messages go both ways again, without reloading the pages.
        await bob.say("me too")
        await alice.expect_message("me too")
        await carol.expect_message("me too")
        for page in pages:
            await page.expect_presence(["alice", "bob", "carol"])
            await page.screenshot("2-after-restart")

        # Every message exactly once on every page, in order; and the same messages everywhere.
        texts = [
            "hello from alice",
            "hi alice",
            "how are you?",
            "hello, I'm carol",
            "missed while offline 1",
            "missed while offline 2",
            "back after the restart",
            "me too",
        ]
        expected = None
        for page in pages:
            messages = await page.messages()
            assert_well_ordered(messages)
            assert [text for _, _, text in messages] == texts, page.name
            if expected is None:
                expected = messages
            assert messages == expected, page.name
        assert expected is not None
        assert [who for _, who, _ in expected] == ["alice", "bob", "alice", "carol", "bot", "bot", "alice", "bob"]
        # The offsets continue across the restart: the history snapshot was reloaded.
        offsets = [offset for offset, _, _ in expected]
        assert offsets == list(range(offsets[0], offsets[0] + len(texts)))

        # Bob closes his page: he leaves the others' presence.
        pages.remove(bob)
        await bob.close()
        for page in (alice, carol):
            await page.expect_presence(["alice", "carol"])
        for page in (*pages, bob):
            assert not [line for line in page.console if line.startswith("pageerror")], page.console


@pytest.mark.timeout(60 * TIMEOUT_FACTOR)
async def test_chat_after_a_restart_that_lost_history(browser: Browser, tmp_path: Path) -> None:
    """Without a snapshot the room starts a new stream: offsets start again from 1."""
    async with chat(browser, tmp_path, env={"WAVECAST_ENGINE__MEMORY_SNAPSHOT": '""'}) as room:
        server = await room.start()
        alice = await room.join("alice")
        bob = await room.join("bob")
        pages = room.pages
        await alice.say("before the restart")
        await bob.expect_message("before the restart")

        assert await server.stop(signal.SIGTERM) == 0, server.log
        assert not (tmp_path / ".wavecast").exists()
        for page in pages:
            await page.expect_state("connecting")
        server = await room.start()
        for page in pages:
            await page.expect_state("connected", timeout=RECONNECT_TIMEOUT)
            await expect(page.page.locator("body")).to_have_attribute("data-recovered", "false")

        await alice.say("after the restart")
        await bob.expect_message("after the restart")
        await bob.say("still here")
        await alice.expect_message("still here")
        for page in pages:
            messages = await page.messages()
            assert_well_ordered(messages)
            assert [(offset, text) for offset, _, text in messages] == [(1, "after the restart"), (2, "still here")]
            # What was said before stays on the page, apart from the new stream.
            await expect(page.page.locator("li.earlier")).to_have_text(["alicebefore the restart"])
            await page.screenshot("after-restart")


#: What the proxy refuses so that the page must fall back to each transport: the first in
#: centrifuge-js's list that gets through wins.
REFUSED = {
    "http_stream": [REFUSE_WEBSOCKET],
    "sse": [REFUSE_WEBSOCKET, refuse_path("/connection/http_stream")],
}


@pytest.mark.parametrize("transport", list(REFUSED))
@pytest.mark.timeout(120 * TIMEOUT_FACTOR)
async def test_chat_falls_back_where_websocket_is_refused(browser: Browser, tmp_path: Path, transport: str) -> None:
    """Two pages behind the refusing proxy connect over ``transport``, chat, see each other,
    and get what they missed after a lost network and a server restart, each message once."""
    async with chat(browser, tmp_path) as room:
        server = await room.start()
        await room.start_proxy(REFUSED[transport])
        alice = await room.join("alice")
        bob = await room.join("bob")
        for page in room.pages:
            await page.expect_transport(transport)
            await page.expect_presence(["alice", "bob"])
            # The browser did try WebSocket first, and the proxy refused the upgrade.
            assert any("/connection/websocket" in line and "403" in line for line in page.console), page.console

        await alice.say("hello over the fallback")
        await bob.expect_message("hello over the fallback")
        await bob.say("hi alice")
        await alice.expect_message("hi alice")

        # Bob's page loses the network while alice talks; then the server restarts behind the proxy.
        await bob.context.set_offline(True)
        await bob.expect_state("connecting")
        await alice.say("while bob is away")
        assert await server.stop(signal.SIGTERM) == 0, server.log
        await alice.expect_state("connecting")
        await room.start()
        await alice.expect_state("connected", timeout=RECONNECT_TIMEOUT)
        await expect(alice.page.locator("body")).to_have_attribute("data-recovered", "true")
        await alice.expect_transport(transport)
        await room.publish("published after the restart")
        await alice.expect_message("published after the restart")

        # Bob comes back online: same transport, and he recovers both messages he missed.
        await bob.context.set_offline(False)
        await bob.expect_state("connected", timeout=RECONNECT_TIMEOUT)
        await expect(bob.page.locator("body")).to_have_attribute("data-recovered", "true")
        await bob.expect_transport(transport)
        await bob.say("back again")
        await alice.expect_message("back again")

        texts = [
            "hello over the fallback",
            "hi alice",
            "while bob is away",
            "published after the restart",
            "back again",
        ]
        expected = None
        for page in room.pages:
            await page.expect_presence(["alice", "bob"])
            messages = await page.messages()
            assert_well_ordered(messages)
            assert [text for _, _, text in messages] == texts, page.name
            expected = expected or messages
            assert messages == expected, page.name
            assert not [line for line in page.console if line.startswith("pageerror")], page.console
            await page.screenshot(f"after-restart-{transport}")


async def test_late_joiner_sees_the_latest_messages(browser: Browser, tmp_path: Path) -> None:
    """The page loads the room's most recent messages, not its oldest."""
    async with chat(browser, tmp_path) as room:
        await room.start()
        for n in range(1, 61):
            assert await room.publish(f"message {n}") == n
        page = await room.join("dana")
        await page.expect_message("message 60")
        messages = await page.messages()
        # The page asks for 50: the last 50, in order.
        assert [offset for offset, _, _ in messages] == list(range(11, 61))
        assert [text for _, _, text in messages] == [f"message {n}" for n in range(11, 61)]


async def test_chat_page_loads_cleanly_and_checks_names(browser: Browser, tmp_path: Path) -> None:
    """No console error, an icon, and a name or room the pattern excludes stops the form."""
    # Chromium compiled the patterns with the v flag, where "[\w-]" is invalid: it logged an
    # error, skipped the check, and sent "no/slash!" to /demo/token, which refused it.
    async with chat(browser, tmp_path) as room:
        server = await room.start()
        page = await browser.new_page()
        page.set_default_timeout(PLAYWRIGHT_TIMEOUT)
        watch = PageProblems(page)
        await page.goto(server.url + "/")
        await assert_icon_served(page)
        await assert_patterns_enforced(page, 3)
        for field, value in (("#name", "no/slash!"), ("#room", "two words")):
            await page.fill("#name", "alice")
            await page.fill("#room", ROOM)
            await page.fill(field, value)
            await page.click("#join button")
            await expect(page.locator(f"{field}:invalid")).to_have_count(1)
            await expect(page.locator("#join")).to_be_visible()
            await expect(page.locator("#chat")).to_be_hidden()
        await page.close()
        assert watch.problems == []
