"""The ``engine`` fixture: each contract test runs once per engine in :data:`ENGINES`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import pytest

from wavecast.engines.memory import MemoryBroker, MemoryPresenceManager

from ...support.clock import FakeClock
from ..helpers import Engine, RecordingHandler

if TYPE_CHECKING:
    from wavecast.engines.nats import NatsEngine
    from wavecast.engines.redis import RedisEngine
    from wavecast.engines.redis.cluster import RedisClusterEngine
    from wavecast.engines.redis.sharded import ShardedRedisEngine

EngineFactory = Callable[[pytest.FixtureRequest], contextlib.AbstractAsyncContextManager[Engine]]


@contextlib.asynccontextmanager
async def memory_engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """The memory engine on a fake clock: expiry tests take no time."""
    clock = FakeClock()
    meta_ttl = 30.0
    broker = MemoryBroker(meta_ttl=meta_ttl, clock=clock)
    presence = MemoryPresenceManager(clock=clock)

    async def advance(seconds: float) -> None:
        clock.now += seconds
        await asyncio.sleep(0)

    handler = RecordingHandler()
    await broker.start(handler)
    await presence.start()
    try:
        yield Engine("memory", broker, presence, handler, meta_ttl, advance)
    finally:
        await presence.close()
        await broker.close()


#: Seconds the stream meta of the engines on real servers outlives its last publication:
#: short, so that expiry tests take seconds.
SERVER_META_TTL = 3


@contextlib.asynccontextmanager
async def _on_servers(
    name: str, engine: RedisEngine | ShardedRedisEngine | RedisClusterEngine | NatsEngine
) -> AsyncIterator[Engine]:
    """Start an engine on real servers, whose time passes for real, and close it afterwards."""

    async def advance(seconds: float) -> None:
        await asyncio.sleep(seconds)

    handler = RecordingHandler()
    await engine.broker.start(handler)
    await engine.presence_manager.start()
    try:
        yield Engine(name, engine.broker, engine.presence_manager, handler, SERVER_META_TTL, advance)
    finally:
        await engine.close()


def redis_engine(request: pytest.FixtureRequest) -> contextlib.AbstractAsyncContextManager[Engine]:
    """The Redis engine against a real redis-server, its keys under a prefix of its own."""
    from wavecast.engines.redis import RedisEngine

    server = request.getfixturevalue("redis_server")
    engine = RedisEngine(server.url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    engine.broker.meta_ttl = SERVER_META_TTL
    return _on_servers("redis", engine)


def nats_engine(request: pytest.FixtureRequest) -> contextlib.AbstractAsyncContextManager[Engine]:
    """The NATS engine (NATS for publications, Redis for history and presence) against real
    servers, its subjects and keys under a prefix of its own."""
    from wavecast.engines.nats import NatsEngine

    redis = request.getfixturevalue("redis_server")
    nats = request.getfixturevalue("nats_server")
    engine = NatsEngine(nats.url, redis.url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    engine.redis.broker.meta_ttl = SERVER_META_TTL
    return _on_servers("nats", engine)


def redis_sharded_engine(request: pytest.FixtureRequest) -> contextlib.AbstractAsyncContextManager[Engine]:
    """The Redis engine sharded over three real redis-servers, its keys under a prefix of its own."""
    from wavecast.engines.redis.sharded import ShardedRedisEngine

    servers = request.getfixturevalue("redis_shards")
    engine = ShardedRedisEngine([server.url for server in servers], prefix=f"test-{uuid.uuid4().hex[:8]}")
    for broker in engine.broker.shards:
        broker.meta_ttl = SERVER_META_TTL
    return _on_servers("redis-sharded", engine)


def redis_cluster_engine(request: pytest.FixtureRequest) -> contextlib.AbstractAsyncContextManager[Engine]:
    """The Redis engine on a real Redis Cluster, its keys under a prefix of its own."""
    from wavecast.engines.redis.cluster import RedisClusterEngine

    cluster = request.getfixturevalue("redis_cluster")
    engine = RedisClusterEngine(cluster.urls[:1], prefix=f"test-{uuid.uuid4().hex[:8]}")
    engine.broker.meta_ttl = SERVER_META_TTL
    return _on_servers("redis-cluster", engine)


#: The engines under test, by name. Adding one is one entry here: a factory that starts it,
#: yields an :class:`Engine` and closes it. Tests stay engine-agnostic: they wait for events
#: with ``engine.events.wait_for`` and let time pass only with ``engine.advance``.
ENGINES: dict[str, EngineFactory] = {
    "memory": memory_engine,
    "redis": redis_engine,
    "nats": nats_engine,
    "redis-sharded": redis_sharded_engine,
    "redis-cluster": redis_cluster_engine,
}


@pytest.fixture(params=sorted(ENGINES))
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    async with ENGINES[request.param](request) as started:
        yield started
