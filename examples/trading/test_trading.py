"""The trading dashboard in Chromium: a live board and chart, and a throttled page that keeps up.

The throttled page shows every symbol (2,000 ticks a second) on a third of the CPU; then
its script is paused, so it reads nothing: once the browser's buffers are full, the server
conflates what waits for it, and its memory doesn't grow. Resumed, the page gets through a
bounded backlog and shows the server's latest price of every symbol again.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect
from tests.support.browser import Screenshot
from tests.support.http import http
from tests.support.sdk import Clients, subscribe
from tests.support.serve import ServeProcess, StartDemo
from tests.support.timing import MS

from .app import SECTORS, SYMBOLS_PER_SECTOR

SHOWN = "window.trading.shown()"


async def server_prices(server: ServeProcess, sector: str = "") -> dict[str, list[Any]]:
    answer = await http("GET", f"{server.url}/trading/prices?sector={sector}")
    assert answer.status == 200
    prices: dict[str, list[Any]] = answer.json()
    return prices


async def expect_caught_up(page: Page, latest: dict[str, list[Any]], timeout: float) -> dict[str, list[Any]]:
    """Wait until the page shows, for every symbol, at least the tick the server had in ``latest``."""
    await page.wait_for_function(
        "(latest) => { const shown = window.trading.shown();"
        " return Object.entries(latest).every(([s, [n]]) => shown[s] && shown[s][0] >= n); }",
        arg=latest,
        timeout=timeout,
        polling=100,
    )
    shown: dict[str, list[Any]] = await page.evaluate(SHOWN)
    for symbol, (seq, price) in latest.items():
        if shown[symbol][0] == seq:
            assert shown[symbol][1] == price, (symbol, shown[symbol], latest[symbol])
    return shown


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


async def conflated(server: ServeProcess) -> float:
    """How many publications the server replaced with a newer one for slow clients."""
    metrics = (await http("GET", server.url + "/metrics")).text
    match = re.search(r'^wavecast_slow_consumer_actions_total\{action="conflate"\} (\S+)$', metrics, re.M)
    return float(match.group(1)) if match else 0.0


async def test_the_board_and_the_chart_update(start_demo: StartDemo, browser: Browser, screenshot: Screenshot) -> None:
    server = await start_demo("trading")
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(server.url + "/trading/")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    rows = page.locator("#board tbody tr")
    await expect(rows).to_have_count(SYMBOLS_PER_SECTOR)
    await expect(page.locator("#sectors button")).to_have_count(len(SECTORS) + 1)

    # Ticks arrive and are drawn: a dozen symbols move past what the page started with.
    first: dict[str, list[Any]] = await page.evaluate(SHOWN)
    await page.wait_for_function(
        f"(first) => Object.entries({SHOWN}).filter(([s, [n]]) => n > first[s][0]).length >= 12", arg=first
    )
    await expect_caught_up(page, await server_prices(server, SECTORS[0]), 5000 * MS * 1000)
    await page.wait_for_function("window.trading.boards >= 1")
    await expect(page.locator("#latency")).to_have_text(re.compile(r"^\d+ ms$"))
    await expect(page.locator("#feed")).to_contain_text("ticks/s")

    # A click charts another symbol: its recent ticks from the server, then live ones.
    symbol = await rows.nth(2).get_attribute("data-symbol")
    await rows.nth(2).click()
    await expect(page.locator("#chart-symbol")).to_have_text(symbol or "")
    await expect(rows.nth(2)).to_have_attribute("aria-selected", "true")
    await page.wait_for_function("window.trading.chartPoints() >= 2")

    # Another sector is another channel: its symbols, and their ticks.
    await page.click(f'#sectors button[value="{SECTORS[1]}"]')
    energy = await server_prices(server, SECTORS[1])
    await expect(rows).to_have_count(SYMBOLS_PER_SECTOR)
    await expect(rows.first).to_have_attribute("data-symbol", next(iter(energy)))
    await expect_caught_up(page, await server_prices(server, SECTORS[1]), 5000 * MS * 1000)

    await page.click(f'#sectors button[value="{SECTORS[0]}"]')
    await expect(rows.first).to_have_attribute("data-symbol", next(iter(first)))
    await page.wait_for_function("window.trading.chartPoints() >= 10")
    await screenshot(page, "trading")
    assert not errors, errors


async def test_a_throttled_page_keeps_up_and_the_server_stays_bounded(start_demo: StartDemo, browser: Browser) -> None:
    server = await start_demo("trading")
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(server.url + "/trading/#all")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#board tbody tr")).to_have_count(len(SECTORS) * SYMBOLS_PER_SECTOR)
    cdp = await context.new_cdp_session(page)
    # A slow device: a third of the CPU. (Network emulation would queue WebSocket messages
    # inside the browser, out of the server's sight: TCP would never push back.)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 3})
    await expect_caught_up(page, await server_prices(server), 10_000 * MS * 1000)

    # Then it stops reading altogether (its script is paused): once the browser's buffers
    # are full, ticks wait on the server, which keeps only the latest of each symbol.
    before = await conflated(server)
    await cdp.send("Debugger.enable")
    await cdp.send("Debugger.pause")
    await wait_for_conflation(server, before + 1)
    rss_before = rss_kib(server.process.pid)
    # A stretch of ticks that the server replaced instead of queuing: its memory stays flat.
    await wait_for_conflation(server, await conflated(server) + 2000)
    growth = rss_kib(server.process.pid) - rss_before
    assert growth < 4 * 1024, f"the server grew by {growth} KiB while the page didn't read"

    # Reading again, the page shows the server's latest tick of every symbol soon: it had a
    # bounded backlog to get through, not everything it missed. (At full speed: how fast a
    # throttled page gets through even a bounded backlog depends on the machine's load.)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    await cdp.send("Debugger.resume")
    await expect_caught_up(page, await server_prices(server), 15_000 * MS * 1000)
    await expect_caught_up(page, await server_prices(server), 10_000 * MS * 1000)
    await context.close()


async def wait_for_conflation(server: ServeProcess, count: float) -> None:
    async with asyncio.timeout(20_000 * MS):
        while await conflated(server) < count:
            await asyncio.sleep(100 * MS)


async def test_a_subscriber_gets_the_latest_board_first(start_demo: StartDemo, make_client: Clients) -> None:
    server = await start_demo("trading")
    client, _ = await make_client.connected(server.ws_url, "viewer")
    # Cache recovery mode: the board comes from the channel's history, before any live one.
    events = await subscribe(client, f"board:{SECTORS[0]}")
    subscribed = events.named("subscribed")[0]
    assert (subscribed.was_recovering, subscribed.recovered) == (True, True)
    await events.wait("publication")
    first = events.data[0]
    assert set(first) == set(await server_prices(server, SECTORS[0]))
    assert all(price > 0 for _, price in first.values())
