"""The Redis engine sharded over standalone servers: where channels go, and one shard's fault."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from wavecast.engines import ClientInfo, Publication
from wavecast.engines.redis.sharded import ShardedRedisEngine, consistent_index
from wavecast.exceptions import ConfigError, EngineError

from ...support.redis import RedisServer, private_redis_shards
from ...support.timing import wait_until
from ..helpers import RecordingHandler


def test_channels_spread_evenly_over_the_shards() -> None:
    counts = collections.Counter(consistent_index(f"chat:{n}", 3) for n in range(30_000))
    assert sorted(counts) == [0, 1, 2]
    assert all(9_000 < count < 11_000 for count in counts.values())


def test_a_new_shard_takes_channels_only_from_the_others_and_a_fair_share() -> None:
    channels = [f"room{n}" for n in range(20_000)]
    moved = [c for c in channels if consistent_index(c, 3) != consistent_index(c, 4)]
    assert all(consistent_index(c, 4) == 3 for c in moved)
    assert 4_000 < len(moved) < 6_000  # a quarter
    assert {consistent_index(c, 1) for c in channels} == {0}


def test_sharding_needs_a_server() -> None:
    with pytest.raises(ConfigError, match="at least one Redis URL"):
        ShardedRedisEngine([])


async def _started(servers: list[RedisServer], handler: RecordingHandler, prefix: str = "") -> ShardedRedisEngine:
    prefix = prefix or f"t{uuid.uuid4().hex[:6]}"
    engine = ShardedRedisEngine([s.url for s in servers], prefix=prefix, socket_timeout=1.0)
    await engine.broker.start(handler)
    await engine.presence_manager.start()
    return engine


@pytest.fixture
async def sharded(redis_shards: list[RedisServer]) -> AsyncIterator[ShardedRedisEngine]:
    engine = await _started(redis_shards, RecordingHandler())
    yield engine
    await engine.close()


async def test_a_channel_keeps_its_stream_and_presence_on_its_shard_only(
    redis_shards: list[RedisServer], sharded: ShardedRedisEngine
) -> None:
    prefix = sharded.broker.shards[0].prefix
    info = ClientInfo("c1", "u1")
    for n in range(12):
        await sharded.broker.publish(f"ch{n}", Publication(b"{}"), history_size=10, history_ttl=60)
        await sharded.presence_manager.add_presence(f"ch{n}", "c1", info, ttl=60)
    for index, server in enumerate(redis_shards):
        client = aioredis.Redis.from_url(server.url)
        try:
            streams = {key.decode() async for key in client.scan_iter(f"{prefix}.stream.*")}
            presence = {key.decode() async for key in client.scan_iter(f"{prefix}.presence.data.*")}
        finally:
            await client.aclose()
        mine = {f"ch{n}" for n in range(12) if consistent_index(f"ch{n}", 3) == index}
        assert mine, "twelve channels use every shard"
        assert streams == {f"{prefix}.stream.{{{c}}}" for c in mine}
        assert presence == {f"{prefix}.presence.data.{{{c}}}" for c in mine}


async def test_control_messages_reach_every_node(redis_shards: list[RedisServer]) -> None:
    first, second = RecordingHandler("node-1"), RecordingHandler("node-2")
    prefix = f"t{uuid.uuid4().hex[:6]}"
    engines = [await _started(redis_shards, first, prefix), await _started(redis_shards, second, prefix)]
    try:
        await engines[0].broker.publish_control(b"to everyone")
        await engines[0].broker.publish_control(b"to node-2", node="node-2")
        await wait_until(lambda: second.control == [b"to everyone", b"to node-2"])
        await wait_until(lambda: first.control == [b"to everyone"])
    finally:
        for engine in engines:
            await engine.close()


async def test_one_shard_down_fails_its_channels_only_and_comes_back() -> None:
    with private_redis_shards(3) as servers:
        handler = RecordingHandler()
        engine = await _started(servers, handler)
        try:
            channels = {
                index: [c for c in (f"c{n}" for n in range(60)) if consistent_index(c, 3) == index][:3]
                for index in range(3)
            }
            for group in channels.values():
                for channel in group:
                    await engine.broker.subscribe(channel)
            await asyncio.to_thread(servers[1].stop)
            for channel in channels[1]:
                with pytest.raises(EngineError, match=f"publish to {channel} failed"):
                    await engine.broker.publish(channel, Publication(b"1"), history_size=10, history_ttl=60)
            for channel in channels[0] + channels[2]:
                await engine.broker.publish(channel, Publication(b"1"), history_size=10, history_ttl=60)
            await asyncio.to_thread(servers[1].start)

            async def published() -> bool:
                try:
                    await engine.broker.publish(channels[1][0], Publication(b"2"), history_size=10, history_ttl=60)
                except EngineError:
                    return False
                return True

            deadline = asyncio.get_running_loop().time() + 20
            while not await published():
                assert asyncio.get_running_loop().time() < deadline, "the shard's channels never came back"
                await asyncio.sleep(0.1)
            # The node learns that the shard's channels may have missed publications.
            await wait_until(
                lambda: set(channels[1]) <= {e.channel for e in handler.events if e.kind == "continuity_lost"}
            )
            assert not {e.channel for e in handler.events if e.kind == "continuity_lost"} & set(
                channels[0] + channels[2]
            )
        finally:
            await engine.close()
