"""The Redis engine on a Redis Cluster: a channel's keys in one slot, its publications on the
sharded pub/sub of the master that owns it and nowhere else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from wavecast.engines import ClientInfo, Publication
from wavecast.engines.redis.cluster import RedisClusterEngine
from wavecast.exceptions import ConfigError

from ...support.redis import RedisCluster
from ...support.timing import wait_until
from ..helpers import RecordingHandler


def test_a_cluster_needs_a_node() -> None:
    with pytest.raises(ConfigError, match="at least one node URL"):
        RedisClusterEngine([])


@pytest.fixture
async def engine(redis_cluster: RedisCluster) -> AsyncIterator[RedisClusterEngine]:
    started = RedisClusterEngine(redis_cluster.urls[:1], prefix=f"t{uuid.uuid4().hex[:6]}")
    await started.broker.start(RecordingHandler())
    await started.presence_manager.start()
    yield started
    await started.close()


async def test_a_channel_keeps_its_keys_on_the_master_of_its_slot(
    redis_cluster: RedisCluster, engine: RedisClusterEngine
) -> None:
    prefix = engine.broker.prefix
    await engine.broker.history("room")  # a seed for the channel, as its first read makes
    await engine.broker.publish("room", Publication(b"1"), history_size=5, history_ttl=60, idempotency_key="k")
    await engine.presence_manager.add_presence("room", "c1", ClientInfo("c1", "u1"), ttl=60)
    owner = redis_cluster.owner(key_slot(b"room"))
    client = aioredis.Redis(port=owner.port)
    try:
        keys = sorted([key.decode() async for key in client.scan_iter(f"{prefix}.*")])
        # The seed of a channel without a stream doesn't outlive the stream's meta.
        assert 0 < await client.ttl(f"{prefix}.seed.{{room}}") <= engine.broker.meta_ttl
    finally:
        await client.aclose()
    assert keys == sorted(
        f"{prefix}.{kind}.{{room}}{suffix}"
        for kind, suffix in [
            ("stream", ""),
            ("meta", ""),
            ("seed", ""),
            ("result", ".k"),
            ("presence.data", ""),
            ("presence.expire", ""),
        ]
    )


async def test_publications_travel_on_the_sharded_pubsub_of_the_owner_only(
    redis_cluster: RedisCluster, engine: RedisClusterEngine
) -> None:
    name = f"{engine.broker.prefix}.client.{{room}}"
    await engine.broker.subscribe("room")
    owner = redis_cluster.owner(key_slot(b"room"))
    masters = {redis_cluster.owner(slot) for slot in (0, 8000, 16383)}
    assert owner in masters and len(masters) == 3
    for master in masters:
        client = aioredis.Redis(port=master.port)
        try:
            counts = await client.execute_command("PUBSUB", "SHARDNUMSUB", name)
        finally:
            await client.aclose()
        assert counts == [name.encode(), 1 if master is owner else 0]
    # A classic subscriber of the same name, on any master, hears nothing: no cluster-wide broadcast.
    other = next(master for master in masters if master is not owner)
    listener = aioredis.Redis(port=other.port).pubsub()
    await listener.subscribe(name)
    try:
        await engine.broker.publish("room", Publication(b"1"))
        handler = engine.broker._handler
        assert isinstance(handler, RecordingHandler)
        await wait_until(lambda: [e.kind for e in handler.events] == ["publication"])
        heard = [await listener.get_message(timeout=0.2) for _ in range(3)]
        assert [m["type"] for m in heard if m is not None] == ["subscribe"]
    finally:
        await listener.aclose()


async def test_a_subscription_follows_its_slot_to_another_master(redis_cluster: RedisCluster) -> None:
    # A channel of its own: its slot moves on the session's cluster, which no other test minds.
    channel = f"moving-{uuid.uuid4().hex[:6]}"
    slot = key_slot(channel.encode())
    handler = RecordingHandler()
    engine = RedisClusterEngine(redis_cluster.urls[:1], prefix="move")
    await engine.broker.start(handler)
    try:
        await engine.broker.publish(channel, Publication(b"1"), history_size=10, history_ttl=60)
        await engine.broker.subscribe(channel)
        source = redis_cluster.owner(slot)
        target = next(redis_cluster.owner(s) for s in (0, 8000, 16383) if redis_cluster.owner(s) is not source)
        redis_cluster.move_slot(slot, source, target)
        await wait_until(lambda: any(e.kind == "continuity_lost" for e in handler.events), timeout=10)
        position = await engine.broker.publish(channel, Publication(b"2"), history_size=10, history_ttl=60)
        assert position is not None and position.offset == 2  # the stream moved with its slot
        await wait_until(lambda: [e.publication.data for e in handler.events if e.publication] == [b"2"])
    finally:
        await engine.close()
