"""The trading dashboard: a price feed for a few hundred symbols, conflated for slow pages.

The feed is a seeded random walk run by the server (:func:`feed`): every 50 ms it moves a
random batch of symbols and publishes each tick with ``node.publish``. Symbols are grouped
in sectors and a sector is one channel, ``trading:<sector>``, which is what a page shows at
once: one subscription brings the sector's table and the chart of any of its symbols.

The namespace's slow-consumer policy is ``conflate`` with ``conflation_key_tag = "symbol"``:
when a page reads slower than the ticks arrive, the server keeps only the latest tick of
each symbol waiting for it, so the page shows current prices instead of an ever-older
backlog, and what the server holds per page is bounded by the number of symbols.

Each sector's whole board, ``[seq, price]`` of every symbol, is published once a second on
``board:<sector>``, a namespace in cache recovery mode (``force_recovery_mode = "cache"``,
``auto_cache_recover``): a page that subscribes, or resubscribes after a reconnect, gets the
latest board at once from the channel's history, then ticks live; no request for the current
prices, and no gap between one and the other.

Run it alone with ``python -m examples.trading``.
"""

from __future__ import annotations

import array
import asyncio
import dataclasses
import json
import math
import random
import string
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from wavecast.realtime import ChannelOptions, Node
from wavecast.realtime.contexts import RPCContext, SubscribeContext, SubscribeResult
from wavecast.server.app import HttpResponse

from ..kit import Demo, DemoContext, json_response

__all__ = ["DEMO", "SECTORS", "Market", "Symbol", "feed"]

SECTORS = (
    "tech",
    "energy",
    "health",
    "finance",
    "industrials",
    "consumer",
    "materials",
    "utilities",
    "telecom",
    "realty",
)
SYMBOLS_PER_SECTOR = 32

#: Ticks per second over all symbols, at most; the feed also keeps to CPU_BUDGET.
TICK_RATE = 2000
#: Batches per second: each batch moves TICK_RATE / BATCH_RATE symbols.
BATCH_RATE = 20
#: The share of one core that the feed may use, publishing and fanning out included: when
#: many pages watch, each tick costs more, and the feed ticks less rather than hog the core.
CPU_BUDGET = 0.2
#: Ticks kept per symbol for the chart of a page that selects it.
HISTORY = 240
#: The kernel's send buffer of each connection, in bytes (serve()'s ``socket_send_buffer``).
#: Conflation works on what waits in the server's queue; Linux grows a socket's send buffer
#: to megabytes, where ticks of a slow page would wait unconflated for many seconds.
SEND_BUFFER = 32 * 1024

TRADING = ChannelOptions(
    allow_subscribe_for_client=True,
    slow_consumer="conflate",
    conflation_key_tag="symbol",
)


#: The sectors' boards: only the latest one matters, and every subscriber gets it first.
BOARD = ChannelOptions(
    allow_subscribe_for_client=True,
    history_size=1,
    history_ttl=60.0,
    force_recovery=True,
    force_recovery_mode="cache",
    auto_cache_recover=True,
)
#: Seconds between two boards of a sector.
BOARD_INTERVAL = 1.0


@dataclasses.dataclass(eq=False)
class Symbol:
    """One symbol's price, its tick count, and its last :data:`HISTORY` ticks in a ring."""

    name: str
    sector: str
    open: float
    price: float
    seq: int = 0
    times: array.array[float] = dataclasses.field(default_factory=lambda: array.array("d", bytes(8 * HISTORY)))
    prices: array.array[float] = dataclasses.field(default_factory=lambda: array.array("d", bytes(8 * HISTORY)))

    def tick(self, price: float, now: float) -> None:
        self.seq += 1
        self.price = price
        slot = self.seq % HISTORY
        self.times[slot] = now
        self.prices[slot] = price

    def history(self) -> list[list[float]]:
        """``[seq, time, price]`` of the ticks kept, oldest first."""
        first = max(self.seq - HISTORY + 1, 1)
        return [[n, self.times[n % HISTORY], self.prices[n % HISTORY]] for n in range(first, self.seq + 1)]


class Market:
    """The symbols, by sector, moved by a seeded random walk."""

    def __init__(self, seed: int = 6455) -> None:
        self.random = random.Random(seed)
        names: set[str] = set()
        self.symbols: dict[str, Symbol] = {}
        self.sectors: dict[str, list[Symbol]] = {}
        for sector in SECTORS:
            members = self.sectors[sector] = []
            while len(members) < SYMBOLS_PER_SECTOR:
                name = "".join(self.random.choices(string.ascii_uppercase, k=self.random.choice((3, 4, 4))))
                if name in names:
                    continue
                names.add(name)
                price = round(math.exp(self.random.uniform(math.log(5), math.log(900))), 2)
                symbol = Symbol(name=name, sector=sector, open=price, price=price)
                members.append(symbol)
                self.symbols[name] = symbol
        self.all = list(self.symbols.values())
        #: Busier symbols tick more often, as in a real market.
        self.weights = [self.random.paretovariate(1.5) for _ in self.all]

    def move(self, count: int, now: float) -> list[Symbol]:
        """Move ``count`` symbols (a symbol may move twice) by a step of about 0.1%."""
        moved = self.random.choices(self.all, self.weights, k=count)
        gauss = self.random.gauss
        for symbol in moved:
            step = math.exp(gauss(0.0, 0.001) + 0.0002 * math.log(symbol.open / symbol.price))
            symbol.tick(max(round(symbol.price * step, 2), 0.01), now)
        return moved


@dataclasses.dataclass
class FeedStats:
    """What the feed did over its last second: ticks and the CPU they cost (publishing included)."""

    ticks_per_second: float = 0.0
    cpu: float = 0.0
    batch: int = TICK_RATE // BATCH_RATE


async def feed(node: Node, market: Market, stats: FeedStats) -> None:
    """Tick forever: a batch every 1/BATCH_RATE s, each tick published on its sector's channel."""
    interval = 1 / BATCH_RATE
    full_batch = TICK_RATE // BATCH_RATE
    cost_per_tick = 0.0  # CPU seconds, a moving average
    window_start, window_ticks, window_cpu = time.monotonic(), 0, 0.0
    next_batch = time.monotonic()
    while True:
        started = time.thread_time()
        now = time.time()
        moved = market.move(stats.batch, now)
        millis = int(now * 1000)
        for symbol in moved:
            await node.publish(
                f"trading:{symbol.sector}",
                {"s": symbol.name, "p": symbol.price, "n": symbol.seq, "t": millis},
                tags={"symbol": symbol.name},
            )
        spent = time.thread_time() - started
        cost_per_tick = 0.9 * cost_per_tick + 0.1 * spent / max(len(moved), 1)
        # The batch that keeps the feed within its budget at the current cost per tick.
        affordable = int(CPU_BUDGET * interval / cost_per_tick) if cost_per_tick else full_batch
        stats.batch = max(min(full_batch, affordable), 1)
        window_ticks += len(moved)
        window_cpu += spent
        elapsed = time.monotonic() - window_start
        if elapsed >= 1.0:
            stats.ticks_per_second, stats.cpu = window_ticks / elapsed, window_cpu / elapsed
            window_start, window_ticks, window_cpu = time.monotonic(), 0, 0.0
        next_batch += interval
        delay = next_batch - time.monotonic()
        if delay < 0:  # late (a busy loop): start again from now rather than catch up in a burst
            next_batch, delay = time.monotonic(), 0
        await asyncio.sleep(delay)


def board(market: Market, sector: str) -> dict[str, list[float]]:
    """The ``[seq, price]`` of each symbol of a sector."""
    return {s.name: [s.seq, s.price] for s in market.sectors.get(sector, market.all)}


async def boards(node: Node, market: Market) -> None:
    """Publish each sector's board every BOARD_INTERVAL, when it changed."""
    published: dict[str, int] = {}
    while True:
        for sector, members in market.sectors.items():
            ticks = sum(symbol.seq for symbol in members)
            if published.get(sector) != ticks:
                await node.publish(f"board:{sector}", board(market, sector))
                published[sector] = ticks
        await asyncio.sleep(BOARD_INTERVAL)


def setup(ctx: DemoContext) -> None:
    market = Market()
    stats = FeedStats()

    @ctx.hooks.subscribing("trading")
    async def subscribing(sub: SubscribeContext) -> SubscribeResult | None:
        # Any connected page may watch, signed in or not.
        return None

    async def run_feed(node: Node) -> None:
        await feed(node, market, stats)

    ctx.task(run_feed)

    async def run_boards(node: Node) -> None:
        await boards(node, market)

    ctx.task(run_boards)

    @ctx.node.rpc("trading.history")
    async def history(rpc: RPCContext) -> object:
        """The recent ticks of one symbol, for the chart of the page that selects it."""
        name = json.loads(rpc.data or b"{}").get("symbol")
        symbol = market.symbols.get(name) if isinstance(name, str) else None
        if symbol is None:
            return {"error": "unknown symbol"}
        return {"symbol": symbol.name, "ticks": symbol.history()}

    @ctx.route("sectors")
    async def sectors(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """The sectors and their symbols with opening and current prices: what a page starts from."""
        return json_response(
            {
                sector: [{"s": s.name, "o": s.open, "p": s.price, "n": s.seq} for s in members]
                for sector, members in market.sectors.items()
            }
        )

    @ctx.route("prices")
    async def prices(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """The latest ``[seq, price]`` of each symbol, of one sector with ``?sector=``."""
        return json_response(board(market, parse_qs(query).get("sector", [""])[0]))

    @ctx.route("stats")
    async def feed_stats(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        return json_response(dataclasses.asdict(stats))


DEMO = Demo(
    name="trading",
    title="Trading dashboard",
    summary=(
        "A live price feed for 320 symbols at up to 2,000 ticks a second, with a chart per symbol; "
        "a page that falls behind gets only the latest price of each symbol (conflation)."
    ),
    namespaces={"trading": TRADING, "board": BOARD},
    setup=setup,
    # A slow page should be seen as slow by the server early: its ticks wait where they're conflated.
    serve_options={"socket_send_buffer": SEND_BUFFER},
)
