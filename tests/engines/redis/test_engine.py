"""The Redis engine's connection pool: bounded, and commands past its size wait their turn."""

from __future__ import annotations

import asyncio

import pytest

from wavecast.engines.redis import RedisEngine
from wavecast.exceptions import ConfigError, EngineError

from ...support.redis import RedisServer
from ..helpers import StartEngine


async def test_a_burst_beyond_the_pool_size_waits_instead_of_failing(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    # A reconnect storm: every client of a node subscribes (reads history, adds presence) at once.
    engine, _ = await start_engine(own_redis)
    assert engine.max_connections == 100
    results = await asyncio.gather(*(engine.broker.history(f"ch{n}") for n in range(300)))
    assert len(results) == 300


async def test_the_pool_holds_at_most_max_connections(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, _ = await start_engine(own_redis, max_connections=3)
    await asyncio.gather(*(engine.broker.history(f"ch{n}") for n in range(50)))
    assert len(await engine.client.client_list()) <= 3


async def test_waiting_longer_than_the_pool_timeout_fails(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, _ = await start_engine(own_redis, max_connections=2, pool_timeout=0.1)
    # The pub/sub connection holds one; the only other is busy for a second.
    busy = asyncio.create_task(engine.client.blpop(["nothing"], timeout=1))
    await asyncio.sleep(0.05)
    with pytest.raises(EngineError, match="history of ch failed: No connection available"):
        await engine.broker.history("ch")
    await busy
    await engine.broker.history("ch")


async def test_an_unbounded_pool(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, _ = await start_engine(own_redis, max_connections=None)
    await asyncio.gather(*(engine.broker.history(f"ch{n}") for n in range(150)))


def test_the_pool_needs_a_connection_beside_the_pubsub_one() -> None:
    with pytest.raises(ConfigError, match="max_connections must be at least 2, got 1"):
        RedisEngine(max_connections=1)
