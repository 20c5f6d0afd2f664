"""What only the Redis broker does: its key layout, and what happens when redis-server goes
away: errors to the caller, reconnection with backoff, resubscription, and streams that
survive a restart with persistence or start a new epoch without it.

Everything that every broker does is in ``tests/engines/contract/``.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from wavecast.engines import ClientInfo, Publication, StreamPosition

from ...redis_server import RedisServer
from .conftest import StartEngine

SIZE = 100
TTL = 300.0
INFO = ClientInfo(client="c1", user="u1")


def pub(n: int) -> Publication:
    return Publication(data=str(n).encode())


async def test_keys_and_pubsub_channels_are_under_the_prefix(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, handler = await start_engine(own_redis, prefix="app")
    await engine.broker.subscribe("chat:1")
    await engine.broker.publish("chat:1", pub(1), history_size=SIZE, history_ttl=TTL)
    await handler.wait_for("chat:1", 1)
    await engine.presence_manager.add_presence("chat:1", "c1", INFO, ttl=60)
    client = aioredis.Redis.from_url(own_redis.url)
    try:
        # One hash tag per channel: a channel's keys stay in one Redis Cluster slot, which
        # its Lua scripts need.
        assert sorted(await client.keys("*")) == [
            b"app.meta.{chat:1}",
            b"app.presence.data.{chat:1}",
            b"app.presence.expire.{chat:1}",
            b"app.stream.{chat:1}",
        ]
        assert await client.pubsub_channels() == [b"app.client.chat:1"]
    finally:
        await client.aclose()


async def test_engines_with_other_prefixes_dont_meet(own_redis: RedisServer, start_engine: StartEngine) -> None:
    one, one_events = await start_engine(own_redis, prefix="one")
    two, two_events = await start_engine(own_redis, prefix="two")
    await one.broker.subscribe("ch")
    await two.broker.subscribe("ch")
    await one.broker.publish("ch", pub(1), history_size=SIZE, history_ttl=TTL)
    await two.broker.publish("ch", pub(2), history_size=SIZE, history_ttl=TTL)
    await one_events.wait_for("ch", 1)
    await two_events.wait_for("ch", 1)
    assert [p.data for p in one_events.publications("ch")] == [b"1"]
    assert [p.data for p in two_events.publications("ch")] == [b"2"]
    assert (await one.broker.history("ch")).position.offset == 1


# --- restarts ------------------------------------------------------------------------------


async def restart(server: RedisServer) -> None:
    """Stop and start redis-server while this event loop runs, as a node's would."""
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)


async def test_a_restart_without_persistence_starts_a_new_epoch(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    engine, _ = await start_engine(own_redis)
    for n in range(3):
        old = await engine.broker.publish("ch", pub(n), history_size=SIZE, history_ttl=TTL)
    assert old is not None
    await restart(own_redis)
    # The stream is lost: a client that remembers offset 3 of the old epoch learns that it
    # can't recover, instead of being told that nothing happened since.
    result = await engine.broker.history("ch", since=StreamPosition(old.offset, old.epoch))
    assert result.publications == []
    assert result.position.offset == 0
    assert result.position.epoch != old.epoch
    new = await engine.broker.publish("ch", pub(4), history_size=SIZE, history_ttl=TTL)
    assert new == StreamPosition(1, result.position.epoch)


async def test_a_restart_with_persistence_keeps_history_offset_and_epoch(
    persistent_redis: RedisServer, start_engine: StartEngine
) -> None:
    engine, _ = await start_engine(persistent_redis)
    for n in range(1, 4):
        position = await engine.broker.publish("ch", pub(n), history_size=SIZE, history_ttl=TTL)
    assert position is not None
    await restart(persistent_redis)
    result = await engine.broker.history("ch", since=StreamPosition(1, position.epoch))
    assert result.position == position
    assert [p.data for p in result.publications] == [b"2", b"3"]
    after = await engine.broker.publish("ch", pub(4), history_size=SIZE, history_ttl=TTL)
    assert after == StreamPosition(4, position.epoch)
