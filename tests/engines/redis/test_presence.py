"""What only the Redis presence manager does: presence shared by the nodes of a deployment,
each refreshing the entries of its own clients.

Everything that every presence manager does is in ``tests/engines/contract/``.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from wavecast.engines import ClientInfo, PresenceStats

from ...support.redis import RedisServer
from ..helpers import StartEngine

ANN = ClientInfo(client="c1", user="ann")
BOB = ClientInfo(client="c2", user="bob")
BOB_AGAIN = ClientInfo(client="c3", user="bob")
TTL = 1.0


async def test_presence_and_stats_are_shared_by_the_nodes(own_redis: RedisServer, start_engine: StartEngine) -> None:
    one, _ = await start_engine(own_redis)
    two, _ = await start_engine(own_redis)
    await one.presence_manager.add_presence("room", "c1", ANN, ttl=60)
    await two.presence_manager.add_presence("room", "c2", BOB, ttl=60)
    await two.presence_manager.add_presence("room", "c3", BOB_AGAIN, ttl=60)
    expected = {"c1": ANN, "c2": BOB, "c3": BOB_AGAIN}
    for engine in (one, two):
        assert await engine.presence_manager.presence("room") == expected
        assert await engine.presence_manager.presence_stats("room") == PresenceStats(num_clients=3, num_users=2)
    # A node removes its own client; the others see it gone.
    await two.presence_manager.remove_presence("room", "c3", "bob")
    assert await one.presence_manager.presence_stats("room") == PresenceStats(num_clients=2, num_users=2)


async def test_each_node_refreshes_its_own_clients(own_redis: RedisServer, start_engine: StartEngine) -> None:
    ttl = 2.0
    alive, _ = await start_engine(own_redis)
    gone, _ = await start_engine(own_redis)
    await gone.presence_manager.add_presence("room", "c1", ANN, ttl=ttl)
    await alive.presence_manager.add_presence("room", "c2", BOB, ttl=ttl)
    # The node of c1 stops refreshing (it died); the other goes on refreshing c2, well within its TTL.
    for _ in range(4):
        await asyncio.sleep(ttl * 0.3)
        await alive.presence_manager.add_presence("room", "c2", BOB, ttl=ttl)
    assert await gone.presence_manager.presence("room") == {"c2": BOB}
    assert await alive.presence_manager.presence_stats("room") == PresenceStats(num_clients=1, num_users=1)


async def test_a_channel_nobody_refreshes_leaves_no_keys(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, _ = await start_engine(own_redis)
    await engine.presence_manager.add_presence("room", "c1", ANN, ttl=TTL)
    client = aioredis.Redis.from_url(own_redis.url)
    try:
        assert len(await client.keys("*presence*")) == 2
        await asyncio.sleep(TTL + 1.1)  # EXPIRE takes whole seconds, and Redis expires lazily within ~1 s
        assert await client.keys("*presence*") == []
    finally:
        await client.aclose()
