"""Chaos on loopback: redis-server restarted under traffic, nats-server killed and restarted
under traffic (the NATS engine), a node killed behind haproxy, and a reconnect storm. Each test
counts what was published, what the server acknowledged and what every client received, and
prints the counts; no acknowledged publication of a channel with history may be lost, and none
may arrive twice.

The short forms run in ``make test``; the long ones (marker ``chaos``) in ``make chaos``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from centrifuge import Client, ClientState

from ..support.cluster import CHAOS_CHANNEL, ChaosReport, Publisher, StartNodes, cluster_config, num_clients, settle
from ..support.haproxy import StartHaproxy
from ..support.http import api
from ..support.nats import NatsServer, kill_and_restart
from ..support.redis import RedisServer, restart
from ..support.sdk import ClientEvents, SubEvents, subscribe
from ..support.serve import ServeProcess
from ..support.timing import MS, TIMEOUT_FACTOR, wait_until
from ..support.tokens import make_token
from .lean import LeanClient

CHANNEL = CHAOS_CHANNEL
#: The reconnection bound of a node failure behind haproxy: a requirement, not a wait.
RECONNECT_BOUND = 10.0


# --- publishing at a steady rate ------------------------------------------------------------------


# --- centrifuge-python clients with timed events ----------------------------------------------


class TimedEvents(ClientEvents):
    """Client events, each with the ``time.monotonic()`` it arrived at."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[str, float]] = []

    def record(self, name: str, ctx: Any) -> None:
        self.times.append((name, time.monotonic()))
        super().record(name, ctx)

    def first_after(self, name: str, moment: float) -> float | None:
        return next((at for event, at in self.times if event == name and at > moment), None)


@dataclasses.dataclass
class SDKClient:
    client: Client
    events: TimedEvents
    sub: SubEvents


@pytest.fixture
async def sdk_clients() -> AsyncIterator[Callable[..., Any]]:
    """Connect ``count`` centrifuge-python clients to ``url`` and subscribe each to :data:`CHANNEL`."""
    made: list[SDKClient] = []

    async def make(url: str, count: int, *, user: str = "user") -> list[SDKClient]:
        async def one(index: int) -> SDKClient:
            events = TimedEvents()
            client = Client(
                url,
                events=events,
                token=make_token(f"{user}{index}"),
                proxy=None,
                min_reconnect_delay=0.05,
                max_reconnect_delay=0.5,
                timeout=5.0 * TIMEOUT_FACTOR,
            )
            await client.connect()
            await events.wait("connected", timeout=10_000 * MS)
            made.append(SDKClient(client, events, await subscribe(client, CHANNEL)))
            return made[-1]

        clients: list[SDKClient] = []
        for start in range(0, count, 25):  # a few at a time: the storm is another test
            clients.extend(await asyncio.gather(*(one(i) for i in range(start, min(start + 25, count)))))
        return clients

    yield make
    await asyncio.gather(
        *(c.client.disconnect() for c in made if c.client.state != ClientState.DISCONNECTED), return_exceptions=True
    )
    await asyncio.sleep(20 * MS)


def sdk_data(client: SDKClient) -> Callable[[], list[int]]:
    return lambda: [data["n"] for data in client.sub.data]


# --- (a) redis-server restarted while 100 clients receive --------------------------------------------


#: The restarts of a server under traffic: one short outage in ``make test``, four in ``make chaos``.
RESTARTS = pytest.mark.parametrize(
    ("clients", "seconds", "outages"),
    [
        pytest.param(100, 6.0, [0.5], id="short"),
        pytest.param(100, 40.0, [0.2, 1.0, 3.0, 0.5], id="long", marks=[pytest.mark.chaos, pytest.mark.timeout(600)]),
    ],
)


@RESTARTS
async def test_redis_restarts_while_clients_receive(
    persistent_redis: RedisServer,
    start_nodes: StartNodes,
    sdk_clients: Callable[..., Any],
    chaos_report: Callable[[str], ChaosReport],
    clients: int,
    seconds: float,
    outages: list[float],
) -> None:
    report = chaos_report("redis restart")
    nodes = await start_nodes(cluster_config(persistent_redis), 2)
    await restarts_under_traffic(
        report, nodes, sdk_clients, clients, seconds, outages, functools.partial(restart, persistent_redis)
    )


async def restarts_under_traffic(
    report: ChaosReport,
    nodes: list[ServeProcess],
    sdk_clients: Callable[..., Any],
    clients: int,
    seconds: float,
    outages: list[float],
    restart_server: Callable[[float], Awaitable[None]],
) -> None:
    """Publish through ``nodes`` to ``clients`` spread over them while ``restart_server(down)``
    takes the server down for each of ``outages`` seconds; check what every client received."""
    connected: list[SDKClient] = []
    for index, node in enumerate(nodes):
        connected += await sdk_clients(node.ws_url, clients // len(nodes), user=f"n{index}-")
    rate = 20.0
    gap = seconds / (len(outages) + 1)
    with Publisher(report, lambda n: nodes[n % len(nodes)].url, rate) as publisher:
        for down in outages:
            await asyncio.sleep(gap)
            await restart_server(down)
        await asyncio.sleep(gap)
        await publisher.stopped()
    await settle(report, {f"client{i}": sdk_data(c) for i, c in enumerate(connected)}, 20_000 * MS)

    resubscribed = [ctx for c in connected for ctx in c.sub.named("subscribed")[1:]]
    report.extra.update(restarts=len(outages), resubscriptions=len(resubscribed))
    report.extra["not_recovered"] = sum(not ctx.recovered for ctx in resubscribed)
    report.check()
    # The streams survived (Redis with appendfsync always, or untouched): every resubscription recovered.
    assert report.extra["not_recovered"] == 0
    assert report.failed < report.published / 2
    # An outage costs clients nothing but a resubscription: none reconnected.
    assert all(len(c.events.named("connected")) == 1 for c in connected)


# --- (a') nats-server killed and restarted while clients receive (the NATS engine) ---------------------


@RESTARTS
async def test_nats_restarts_while_clients_receive(
    own_redis: RedisServer,
    own_nats: NatsServer,
    start_nodes: StartNodes,
    sdk_clients: Callable[..., Any],
    chaos_report: Callable[[str], ChaosReport],
    clients: int,
    seconds: float,
    outages: list[float],
) -> None:
    """SIGKILL loses what nats-server held for delivery: publications fail while it is down,
    and those it accepted but didn't deliver are recovered from Redis by every subscriber."""
    report = chaos_report("nats restart")
    config = cluster_config(own_redis, engine={"type": "nats", "nats_url": own_nats.url})
    nodes = await start_nodes(config, 2)
    await restarts_under_traffic(
        report, nodes, sdk_clients, clients, seconds, outages, functools.partial(kill_and_restart, own_nats)
    )
    # Publishing failed while nats-server was down: never a silent success.
    assert report.failed > 0


# --- (b) a node killed behind haproxy -------------------------------------------------------------


@pytest.mark.parametrize(
    ("clients", "kills", "interval"),
    [
        pytest.param(20, 1, 1.0, id="short"),
        pytest.param(100, 6, 4.0, id="long", marks=[pytest.mark.chaos, pytest.mark.timeout(600)]),
    ],
)
async def test_a_node_killed_behind_haproxy(
    own_redis: RedisServer,
    start_nodes: StartNodes,
    start_haproxy: StartHaproxy,
    sdk_clients: Callable[..., Any],
    chaos_report: Callable[[str], ChaosReport],
    clients: int,
    kills: int,
    interval: float,
) -> None:
    report = chaos_report("node killed")
    config = cluster_config(own_redis)
    nodes = await start_nodes(config, 2)
    proxy = await start_haproxy(nodes)
    connected: list[SDKClient] = await sdk_clients(proxy.ws_url, clients)
    worst = 0.0
    moved_total = 0
    with Publisher(report, lambda n: proxy.url, 20.0) as publisher:
        for kill in range(kills):
            await asyncio.sleep(interval)
            victim = nodes[kill % 2]
            on_victim = await num_clients(victim)
            killed_at = time.monotonic()
            victim.kill()
            # Its clients notice, reconnect through haproxy to the other node, and recover.

            def reconnected(killed_at: float = killed_at, on_victim: int = on_victim) -> bool:
                moved = moved_since(connected, killed_at)
                return len(moved) >= on_victim and all(
                    c.events.first_after("connected", killed_at) is not None for c in moved
                )

            await wait_until(reconnected, timeout=30_000 * MS, what="the killed node's clients to reconnect")
            moved = moved_since(connected, killed_at)
            assert len(moved) == on_victim
            delays = [c.events.first_after("connected", killed_at) - killed_at for c in moved]  # type: ignore[operator]
            worst = max(worst, *delays) if delays else worst
            moved_total += len(moved)
            print(f"kill {kill + 1}: {len(moved)} clients moved, slowest reconnected after {max(delays):.2f} s")
            if kill + 1 < kills:
                # Bring the killed node back, for the next kill to hit the other one.
                (replacement,) = await start_nodes(config, ports=[victim.port])
                nodes[kill % 2] = replacement
                await wait_until_routed(proxy.url, replacement)
        await asyncio.sleep(1.0)
        await publisher.stopped()
    await settle(report, {f"client{i}": sdk_data(c) for i, c in enumerate(connected)}, 20_000 * MS)
    resubscribed = [ctx for c in connected for ctx in c.sub.named("subscribed")[1:]]
    report.extra.update(
        kills=kills,
        moved=moved_total,
        slowest_reconnect=f"{worst:.2f}s",
        not_recovered=sum(not ctx.recovered for ctx in resubscribed),
    )
    report.check()
    assert report.extra["not_recovered"] == 0
    assert worst <= RECONNECT_BOUND, f"a client took {worst:.2f} s to reconnect, more than {RECONNECT_BOUND} s"


def moved_since(clients: list[SDKClient], since: float) -> list[SDKClient]:
    """The clients that lost their connection after ``since``."""
    return [c for c in clients if c.events.first_after("connecting", since) is not None]


async def wait_until_routed(proxy_url: str, node: ServeProcess) -> None:
    """Wait until haproxy's health checks bring ``node`` back (it answers some requests)."""
    names: set[str] = set()
    async with asyncio.timeout(15_000 * MS):
        while node.name not in names:
            info = await api(proxy_url, "info")
            names.add(info["result"]["nodes"][0]["name"])
            await asyncio.sleep(50 * MS)


# --- (c) a reconnect storm ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clients", "storms"),
    [
        pytest.param(200, 1, id="short"),
        pytest.param(1000, 3, id="long", marks=[pytest.mark.chaos, pytest.mark.timeout(600)]),
    ],
)
async def test_a_reconnect_storm_is_served(
    own_redis: RedisServer,
    start_nodes: StartNodes,
    chaos_report: Callable[[str], ChaosReport],
    raise_nofile: int,
    clients: int,
    storms: int,
) -> None:
    assert raise_nofile >= 2 * clients + 100, f"RLIMIT_NOFILE {raise_nofile} is too low for {clients} clients"
    report = chaos_report("reconnect storm")
    config = cluster_config(own_redis)
    nodes = await start_nodes(config, 2)
    # Each client knows both nodes and goes to the other when its connection ends.
    lean = [
        LeanClient(nodes[0].ws_url, make_token(f"storm{i}"), CHANNEL, fallback=nodes[1].ws_url) for i in range(clients)
    ]
    slowest = 0.0
    try:
        for start in range(0, clients, 100):
            batch = lean[start : start + 100]
            for client in batch:
                client.start()
            await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in batch)), timeout=30_000 * MS)
        assert await num_clients(nodes[0]) == clients
        # Published through whichever node is up.
        with Publisher(report, lambda n: nodes[1].url, 10.0) as publisher:
            for storm in range(storms):
                await asyncio.sleep(1.0)
                victim, survivor = nodes[storm % 2], nodes[(storm + 1) % 2]
                publisher.url = lambda n, survivor=survivor: survivor.url
                # Every client loses its node at once and comes back to the other at once.
                killed_at = time.monotonic()
                victim.kill()
                await wait_until(
                    lambda survivor=survivor: all(c.node == survivor.name and c.subscribed.is_set() for c in lean),
                    timeout=60_000 * MS,
                    what=f"{clients} clients on {survivor.name}",
                )
                served_in = max(c.connects[-1][0] for c in lean) - killed_at
                slowest = max(slowest, served_in)
                print(f"storm {storm + 1}: {clients} clients served by {survivor.name} within {served_in:.2f} s")
                assert await num_clients(survivor) == clients
                if storm + 1 < storms:
                    # The killed node comes back, for the next storm to land on it.
                    (nodes[storm % 2],) = await start_nodes(config, ports=[victim.port])
            await asyncio.sleep(1.0)
            await publisher.stopped()
        await settle(report, {f"client{i}": (lambda c=c: c.received) for i, c in enumerate(lean)}, 20_000 * MS)
        report.extra.update(
            storms=storms,
            slowest_storm=f"{slowest:.2f}s",
            failed_attempts=sum(len(c.errors) for c in lean) - clients * storms,
            not_recovered=sum(not recovered for c in lean for recovered, _ in c.subscribes[1:]),
        )
        report.check()
        assert report.extra["not_recovered"] == 0
    finally:
        await asyncio.gather(*(c.stop() for c in lean))
