"""The trading dashboard in Chromium: a live board and chart, and a throttled page that keeps up.

The throttled page runs at a tenth of the CPU speed and shows every symbol (2,000 ticks a
second), more than it can take in: the server conflates what waits for it, so each round
the page catches up with the server's latest prices (within what the kernel and the
browser buffer), and the server's memory doesn't grow.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect
from tests.server.conftest import ServeProcess, http
from tests.utils import MS

from ..conftest import Screenshot, StartDemo
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


async def test_a_throttled_page_keeps_up_and_the_server_stays_bounded(
    start_demo: StartDemo, browser: Browser
) -> None:
    server = await start_demo("trading")
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(server.url + "/trading/#all")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#board tbody tr")).to_have_count(len(SECTORS) * SYMBOLS_PER_SECTOR)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 10})

    # The page falls behind the feed, and the server starts conflating for it.
    before = await conflated(server)
    async with asyncio.timeout(10_000 * MS):
        while await conflated(server) == before:
            await asyncio.sleep(100 * MS)
    rss_before = rss_kib(server.process.pid)

    # Behind as it is, the page comes to show at least the server's latest tick of every
    # symbol: what it chews through is bounded by the buffers, not growing with time.
    await expect_caught_up(page, await server_prices(server), 30_000 * MS * 1000)

    # What waits for the page is at most one tick per symbol: the server's memory stays flat.
    growth = rss_kib(server.process.pid) - rss_before
    assert growth < 8 * 1024, f"the server grew by {growth} KiB"
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    await expect_caught_up(page, await server_prices(server), 5000 * MS * 1000)
    await context.close()
