"""Several nodes on one Redis (or Redis shards, a Redis Cluster, or NATS beside Redis), as a deployment runs
them: their configuration, a TCP relay that can be pointed at another node, and what chaos
tests publish and count."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .config import BASE_CONFIG, merge
from .http import api
from .nats import NatsServer
from .redis import RedisCluster, RedisServer
from .serve import ServeProcess
from .servers import AppServer, Listening, StartWavecast
from .timing import wait_until

__all__ = [
    "CHAOS_CHANNEL",
    "SCALE_NAMESPACES",
    "ChaosReport",
    "Deployment",
    "NatsDeployment",
    "Publisher",
    "Relay",
    "StartNodes",
    "cluster",
    "cluster_config",
    "num_clients",
    "settle",
    "two_nodes",
]

#: The channel the chaos tests publish to: in the ``rec`` namespace, recovered.
CHAOS_CHANNEL = "rec:chaos"

#: ``await start_nodes(config, count=1, ...)``, the fixture of ``tests/scale/conftest.py``.
StartNodes = Callable[..., Awaitable[list[ServeProcess]]]

#: Namespaces of the scale tests on top of :data:`BASE_CONFIG`'s ``chat`` and ``news``:
#: ``rec`` keeps history and recovers every subscriber.
SCALE_NAMESPACES: dict[str, Any] = {
    "rec": {
        "history_size": 10_000,
        "history_ttl": 600.0,
        "force_recovery": True,
        "presence": True,
        "allow_subscribe_for_client": True,
        "allow_publish_for_subscriber": True,
    },
}


@dataclasses.dataclass(frozen=True)
class NatsDeployment:
    """The NATS engine's servers: nats-server for publications, redis-server for the rest."""

    redis: RedisServer
    nats: NatsServer


#: One redis-server, the shards of the sharded Redis engine, a Redis Cluster, or NATS beside Redis.
Deployment = RedisServer | Sequence[RedisServer] | RedisCluster | NatsDeployment


def cluster(redis: Deployment, prefix: str = "scale", **sections: Any) -> dict[str, Any]:
    """The sections every node of a deployment adds to :data:`BASE_CONFIG`: the Redis engine on
    ``redis`` (a list: sharded over them; a Redis Cluster; a :class:`NatsDeployment`: the NATS
    engine) and the
    ``rec`` namespace, with ``sections`` merged in."""
    engine: dict[str, Any] = {"type": "redis", "redis_prefix": prefix}
    if isinstance(redis, NatsDeployment):
        engine.update(type="nats", redis_url=redis.redis.url, nats_url=redis.nats.url)
    elif isinstance(redis, RedisServer):
        engine["redis_url"] = redis.url
    elif isinstance(redis, RedisCluster):
        engine["redis_cluster"] = redis.urls[:1]
    else:
        engine["redis_shards"] = [server.url for server in redis]
    return merge({"namespaces": SCALE_NAMESPACES, "engine": engine}, sections)


def cluster_config(redis: Deployment, prefix: str = "scale", **sections: Any) -> dict[str, Any]:
    """The whole configuration of every node of a deployment (see :func:`cluster`)."""
    return merge(BASE_CONFIG, cluster(redis, prefix, **sections))


async def num_clients(node: Listening) -> int:
    """How many clients ``node`` itself serves, as its info API counts them."""
    info = await api(node.url, "info")
    return int(info["result"]["nodes"][0]["num_clients"])


async def two_nodes(redis: RedisServer, start_wavecast: StartWavecast) -> tuple[AppServer, AppServer]:
    """Two standalone servers in this process, nodes of one deployment on ``redis``."""
    sections = cluster(redis)
    return await start_wavecast(**sections), await start_wavecast(**sections)


class Relay(Listening):
    """Forwards TCP connections to a node; :meth:`switch` points it at another one and cuts the
    connections it carries, as a DNS change or a failover would."""

    def __init__(self, target: int | None) -> None:
        #: The port connections go to; ``None`` closes them as they arrive.
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, target: int | None) -> Relay:
        """Start relaying to ``target`` from a free port."""
        relay = cls(target)
        relay._server = await asyncio.start_server(relay._relay, "127.0.0.1", 0)
        relay.port = relay._server.sockets[0].getsockname()[1]
        return relay

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        tasks = [asyncio.create_task(pipe(reader, upstream_writer)), asyncio.create_task(pipe(upstream_reader, writer))]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.difference_update(tasks)
        self._writers.difference_update((writer, upstream_writer))

    def switch(self, target: int | None) -> None:
        """Send new connections to ``target`` (``None``: refuse them); abort the current ones."""
        self.target = target
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.switch(self.target)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclasses.dataclass
class ChaosReport:
    """What one test published, what the server acknowledged, and what each client received.

    :meth:`check` asserts that no acknowledged publication was lost and none was received
    twice; the counts are printed (``-s``/``-rA``) and gathered at the end of the run.
    """

    name: str
    published: int = 0
    acknowledged: set[int] = dataclasses.field(default_factory=set)
    failed: int = 0
    #: Per client: the sequence numbers received, in order, duplicates included.
    received: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def lost(self, client: str) -> set[int]:
        return self.acknowledged - set(self.received.get(client, []))

    def duplicates(self, client: str) -> int:
        seen = self.received.get(client, [])
        return len(seen) - len(set(seen))

    def summary(self) -> str:
        counts = [len(set(seen)) for seen in self.received.values()] or [0]
        lost = sum(len(self.lost(client)) for client in self.received)
        duplicated = sum(self.duplicates(client) for client in self.received)
        # Publications whose call failed (a reply lost as Redis went away) but that were stored
        # and delivered all the same: allowed, they just weren't acknowledged.
        unacknowledged = set().union(*map(set, self.received.values())) - self.acknowledged if self.received else set()
        extra = "".join(f" {key}={value}" for key, value in self.extra.items())
        return (
            f"{self.name}: published={self.published} acknowledged={len(self.acknowledged)} failed={self.failed}"
            f" clients={len(self.received)} received/client min={min(counts)} max={max(counts)}"
            f" lost={lost} duplicated={duplicated} received_unacknowledged={len(unacknowledged)}{extra}"
        )

    def check(self) -> None:
        lost = {client: sorted(self.lost(client))[:10] for client in self.received if self.lost(client)}
        duplicated = {client: self.duplicates(client) for client in self.received if self.duplicates(client)}
        assert not lost, f"acknowledged publications lost (first few per client): {lost}"
        assert not duplicated, f"publications received twice: {duplicated}"


class Publisher:
    """Publishes ``{"n": 1}``, ``{"n": 2}``... to ``channel`` at ``rate`` per second through the
    API at ``url(n)``, recording in ``report`` what was acknowledged and what failed."""

    def __init__(
        self, report: ChaosReport, url: Callable[[int], str], rate: float, channel: str = CHAOS_CHANNEL
    ) -> None:
        self.report = report
        self.channel = channel
        self.url = url
        self.rate = rate
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self.report.published += 1
            n = self.report.published
            try:
                answer = await api(self.url(n), "publish", {"channel": self.channel, "data": {"n": n}}, timeout=2.0)
            except (OSError, AssertionError):  # refused, timed out, or an HTTP error from haproxy
                answer = {}
            if "result" in answer:
                self.report.acknowledged.add(n)
            else:
                self.report.failed += 1
            # On schedule, whatever each call took.
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))

    def __enter__(self) -> Publisher:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()

    async def stopped(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


async def settle(report: ChaosReport, received: dict[str, Callable[[], list[int]]], timeout: float) -> None:
    """Wait until every client has every acknowledged publication, then record what each received.

    A timeout isn't an error here: :meth:`ChaosReport.check` then says what's missing, with the counts.
    """
    with contextlib.suppress(AssertionError):
        await wait_until(
            lambda: all(report.acknowledged <= set(get()) for get in received.values()),
            timeout=timeout,
            what="every acknowledged publication at every client",
        )
    for name, get in received.items():
        report.received[name] = list(get())
