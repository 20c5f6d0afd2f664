"""The PostgreSQL outbox behind ``wavecast serve`` nodes, with centrifuge-python subscribers:
what the application commits is delivered, what it rolls back never; a node killed or stopped
mid-batch loses and repeats nothing; two nodes consuming at once lose and double nothing.

Each test counts what was committed and what every client received, as the chaos tests do.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from centrifuge import Client

from ..support.cluster import SCALE_NAMESPACES, ChaosReport, StartNodes, cluster_config
from ..support.config import BASE_CONFIG, merge
from ..support.http import api
from ..support.postgres import PostgresServer, insert_outbox, outbox_rows, wait_drained
from ..support.redis import RedisServer
from ..support.sdk import Clients, SubEvents, subscribe
from ..support.serve import ServeProcess
from ..support.timing import MS, wait_until

CHANNEL = "rec:outbox"


def outbox(postgres: PostgresServer, **options: Any) -> dict[str, Any]:
    return {"outbox": {"enabled": True, "dsn": postgres.dsn, **options}}


async def subscriber(make_client: Clients, node: ServeProcess, user: str) -> tuple[Client, SubEvents]:
    client, _ = await make_client.connected(node.ws_url, user)
    return client, await subscribe(client, CHANNEL)


def numbers(events: SubEvents) -> Callable[[], list[int]]:
    return lambda: [data["n"] for data in events.data]


class Writer:
    """An application that writes ``publish`` rows in transactions of ``size`` rows, rolling back
    one transaction in ``rollback_every``, and records in ``report`` the rows it committed."""

    def __init__(self, connection: asyncpg.Connection, report: ChaosReport, *, partitions: int = 1) -> None:
        self.connection = connection
        self.report = report
        self.partitions = partitions
        self.rolled_back: set[int] = set()

    async def write(self, count: int, *, size: int = 20, rollback_every: int = 5, pause: float = 0.0) -> None:
        chance = random.Random(count)
        for _ in range(0, count, size):
            first = self.report.published + 1
            self.report.published += size
            rows = [
                ("publish", {"channel": CHANNEL, "data": {"n": n}}, n % self.partitions)
                for n in range(first, first + size)
            ]
            if chance.randrange(rollback_every) == 0:
                try:
                    async with self.connection.transaction():
                        await insert_outbox(self.connection, rows)
                        raise _RolledBack
                except _RolledBack:
                    self.rolled_back.update(range(first, first + size))
                    self.report.failed += size
            else:
                async with self.connection.transaction():
                    await insert_outbox(self.connection, rows)
                self.report.acknowledged.update(range(first, first + size))
            if pause:
                await asyncio.sleep(pause)


class _RolledBack(Exception):
    pass


async def settle(report: ChaosReport, received: dict[str, Callable[[], list[int]]], writer: Writer) -> None:
    """Wait until every client has every committed row, then record what each received and check
    that no rolled-back row reached anyone."""
    await wait_until(
        lambda: all(report.acknowledged <= set(get()) for get in received.values()),
        timeout=20_000 * MS,
        what="every committed row at every client",
    )
    await asyncio.sleep(200 * MS)  # time for a stray duplicate to arrive
    for name, get in received.items():
        report.received[name] = list(get())
        assert not writer.rolled_back & set(report.received[name]), "a rolled-back row was delivered"


async def test_commits_reach_subscribers_and_rollbacks_never(
    own_postgres: PostgresServer,
    outbox_database: asyncpg.Connection,
    start_nodes: StartNodes,
    make_client: Clients,
    chaos_report: Callable[[str], ChaosReport],
) -> None:
    report = chaos_report("outbox commit and rollback")
    config = merge(BASE_CONFIG, {"namespaces": SCALE_NAMESPACES})
    (node,) = await start_nodes(merge(config, outbox(own_postgres, poll_interval=10.0)))
    _, events = await subscriber(make_client, node, "ann")
    writer = Writer(outbox_database, report)
    await writer.write(400)
    await settle(report, {"ann": numbers(events)}, writer)
    report.check()
    assert report.failed, "no transaction rolled back: the test proves nothing"
    # In order: one partition, one node.
    assert report.received["ann"] == sorted(report.acknowledged)
    # Through the same code as the HTTP API: the channel's history has them, and the table is empty.
    history = await api(node.url, "history", {"channel": CHANNEL, "limit": 1000})
    assert [p["data"]["n"] for p in history["result"]["publications"]] == report.received["ann"]
    await wait_drained(own_postgres.dsn)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
async def test_a_node_stopped_mid_batch_loses_and_repeats_nothing(
    own_postgres: PostgresServer,
    outbox_database: asyncpg.Connection,
    own_redis: RedisServer,
    start_nodes: StartNodes,
    make_client: Clients,
    chaos_report: Callable[[str], ChaosReport],
    sig: signal.Signals,
) -> None:
    report = chaos_report(f"outbox node {sig.name} mid-batch")
    # The subscribers' node doesn't consume; the consumers come and go.
    (edge,) = await start_nodes(cluster_config(own_redis))
    consuming = cluster_config(own_redis, **outbox(own_postgres, batch_size=200))
    _, events = await subscriber(make_client, edge, "ann")
    writer = Writer(outbox_database, report)
    await writer.write(3000, size=100)
    (first,) = await start_nodes(consuming)
    # Mid-backlog, so mid-batch: the node publishes continuously until the table is empty.
    await wait_until(lambda: len(events.data) >= 600, timeout=10_000 * MS, what="600 rows delivered")
    first.send_signal(sig)
    await first.wait_exit()
    left = await outbox_rows(own_postgres.dsn)
    assert left, "the backlog was drained before the node stopped: the test proves nothing"
    await start_nodes(consuming)
    await writer.write(200, size=20)  # the application goes on meanwhile
    await settle(report, {"ann": numbers(events)}, writer)
    await wait_drained(own_postgres.dsn)
    report.extra.update(left_at_stop=left)
    # Killed between publishing and committing, the node leaves rows that the next one executes
    # again; their idempotency keys make Redis drop the repeats. Stopped, it finishes its batch.
    report.check()


async def test_two_nodes_consume_at_once_without_loss_or_doubles(
    own_postgres: PostgresServer,
    outbox_database: asyncpg.Connection,
    own_redis: RedisServer,
    start_nodes: StartNodes,
    make_client: Clients,
    chaos_report: Callable[[str], ChaosReport],
) -> None:
    report = chaos_report("outbox two consuming nodes")
    partitions = 4
    one, two = await start_nodes(
        cluster_config(own_redis, **outbox(own_postgres, partitions=partitions, batch_size=20)), 2
    )
    received: dict[str, Callable[[], list[int]]] = {}
    for node, user in ((one, "ann"), (two, "bob")):
        _, events = await subscriber(make_client, node, user)
        received[user] = numbers(events)
    # Four applications writing at once, each in its own transactions.
    connections = [await asyncpg.connect(own_postgres.dsn) for _ in range(3)]
    writers = [Writer(c, report, partitions=partitions) for c in [outbox_database, *connections]]
    await asyncio.gather(*(w.write(500, size=10, pause=2 * MS) for w in writers))
    for connection in connections:
        await connection.close()
    merged = Writer(outbox_database, report)
    for w in writers:
        merged.rolled_back |= w.rolled_back
    await settle(report, received, merged)
    await wait_drained(own_postgres.dsn)
    report.check()
