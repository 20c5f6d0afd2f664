"""Each Lua script of the Redis engine, run directly against a redis-server: its keys, its
return value, and the TTLs it sets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from wavecast.engines.redis.scripts import SCRIPT_NAMES, Scripts, read_script


@pytest.fixture
async def client(redis_server: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> tuple[str, str, str]:
    """A stream key and its meta key, in one hash slot as the broker names them, and a seed key."""
    channel = uuid.uuid4().hex
    return f"t.stream.{{{channel}}}", f"t.meta.{{{channel}}}", f"t.{channel}.seed"


def _publish_args(data: Any, size: int = 10, ttl: int = 60, meta_ttl: int = 600) -> list[Any]:
    return ["t.client.ch", data, size, ttl, meta_ttl, "seed", 7, "ch"]


def _history_args(read: str, start: str, reverse: str, count: int, *, seed: str = "seed", period: int = 7) -> list[Any]:
    return [seed, period, read, start, reverse, count, "ch"]


def test_every_script_has_a_documented_header() -> None:
    for name in SCRIPT_NAMES:
        source = read_script(name)
        assert source.startswith("-- "), name
        assert "KEYS[1]" in source, name
        assert "Returns" in source, name


async def test_publish_appends_counts_and_fans_out(client: aioredis.Redis, keys: tuple[str, str, str]) -> None:
    stream, meta, _ = keys
    scripts = Scripts(client)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("t.client.ch")
    try:
        first = await scripts.publish(keys=list(keys), args=_publish_args(b"one"))
        # A new seed and period later: the stream keeps the epoch it started with.
        second = await scripts.publish(keys=list(keys), args=[*_publish_args(b"two")[:5], "other", 8, "ch"])
        epoch = first[1]
        assert first == [1, epoch, 1] and len(epoch) == 8
        assert second == [2, epoch, 1]
        entries = await client.xrange(stream)
        assert entries == [(b"1-0", {b"d": b"one"}), (b"2-0", {b"d": b"two"})]
        assert await client.hgetall(meta) == {b"e": epoch, b"s": b"2"}
        received: list[bytes] = []
        for _ in range(10):  # the subscription's confirmation reads as None
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                received.append(message["data"])
            if len(received) == 2:
                break
        assert received == [b"p1:" + epoch + b":one", b"p2:" + epoch + b":two"]
    finally:
        await pubsub.aclose()


async def test_publish_to_no_pubsub_channel_appends_without_publishing(
    client: aioredis.Redis, keys: tuple[str, str, str]
) -> None:
    stream, _, _ = keys
    scripts = Scripts(client)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe("*")
    try:
        first = await scripts.publish(keys=list(keys), args=["", *_publish_args(b"one")[1:]])
        assert first[0] == 1
        assert [entry_id for entry_id, _ in await client.xrange(stream)] == [b"1-0"]
        # Nothing went out: the next message is the one published on purpose.
        await client.publish("t.client.other", b"marker")
        message = None
        for _ in range(10):
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                break
        assert message is not None and message["data"] == b"marker"
    finally:
        await pubsub.aclose()


async def test_publish_keeps_the_result_of_an_idempotency_key_for_its_ttl(
    client: aioredis.Redis, keys: tuple[str, str, str]
) -> None:
    stream, _, _ = keys
    result = f"t.result.{stream[len('t.stream.') :]}.k"
    scripts = Scripts(client)
    first = await scripts.publish(keys=[*keys, result], args=[*_publish_args(b"one"), 30])
    again = await scripts.publish(keys=[*keys, result], args=[*_publish_args(b"two"), 30])
    assert again == [b"1", first[1]] and first[0] == 1
    assert [entry_id for entry_id, _ in await client.xrange(stream)] == [b"1-0"]
    assert await client.hgetall(result) == {b"s": b"1", b"e": first[1]}
    assert 0 < await client.ttl(result) <= 30


async def test_publish_idempotent_publishes_once_per_key_and_ttl(client: aioredis.Redis) -> None:
    marker = f"t.result.{{{uuid.uuid4().hex}}}.k"
    scripts = Scripts(client)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("t.client.once")
    try:
        assert await scripts.publish_idempotent(keys=[marker], args=["t.client.once", b"p0::one", 30]) == 1
        assert await scripts.publish_idempotent(keys=[marker], args=["t.client.once", b"p0::two", 30]) == 0
        assert 0 < await client.ttl(marker) <= 30
        received: list[bytes] = []
        for _ in range(4):  # the subscription's confirmation reads as None; then one, then nothing
            message = await pubsub.get_message(timeout=0.5)
            if message is not None:
                received.append(message["data"])
        assert received == [b"p0::one"]
    finally:
        await pubsub.aclose()


async def test_publish_trims_to_the_history_size(client: aioredis.Redis, keys: tuple[str, str, str]) -> None:
    stream, meta, _ = keys
    scripts = Scripts(client)
    for n in range(5):
        await scripts.publish(keys=list(keys), args=_publish_args(str(n), size=2))
    assert [entry_id for entry_id, _ in await client.xrange(stream)] == [b"4-0", b"5-0"]
    # Trimming forgets publications, never the position.
    assert await client.hget(meta, "s") == b"5"


async def test_publish_sets_the_history_and_meta_ttls(client: aioredis.Redis, keys: tuple[str, str, str]) -> None:
    stream, meta, _ = keys
    scripts = Scripts(client)
    await scripts.publish(keys=list(keys), args=_publish_args(b"x"))
    assert 55 <= await client.ttl(stream) <= 60
    assert 595 <= await client.ttl(meta) <= 600


async def test_history_of_a_channel_without_a_stream_creates_nothing(
    client: aioredis.Redis, keys: tuple[str, str, str]
) -> None:
    stream, meta, seed = keys
    scripts = Scripts(client)
    first = await scripts.history(keys=list(keys), args=_history_args("1", "-", "0", 0))
    epoch = first[1]
    assert first == [0, epoch, []] and len(epoch) == 8
    # Stable: the seed offered later is ignored, since Redis has one now.
    assert await scripts.history(keys=list(keys), args=_history_args("0", "-", "0", 0, seed="x")) == [0, epoch, []]
    assert not await client.exists(stream, meta)
    assert await client.get(seed) == b"seed"
    # The first publication starts the stream in that epoch.
    assert await scripts.publish(keys=list(keys), args=_publish_args(b"one")) == [1, epoch, 1]


async def test_the_epoch_of_a_channel_without_a_stream_changes_with_seed_and_period(
    client: aioredis.Redis, keys: tuple[str, str, str]
) -> None:
    _, _, seed = keys
    scripts = Scripts(client)
    epoch = (await scripts.history(keys=list(keys), args=_history_args("0", "-", "0", 0)))[1]
    later = (await scripts.history(keys=list(keys), args=_history_args("0", "-", "0", 0, period=8)))[1]
    await client.delete(seed)  # as an emptied Redis has none
    reseeded = (await scripts.history(keys=list(keys), args=_history_args("0", "-", "0", 0, seed="new")))[1]
    assert len({epoch, later, reseeded}) == 3


async def test_history_forgets_a_position_that_was_never_published_to(
    client: aioredis.Redis, keys: tuple[str, str, str]
) -> None:
    _, meta, _ = keys
    scripts = Scripts(client)
    # What reads used to create, for 30 days.
    await client.hset(meta, "e", "old")
    await client.expire(meta, 30 * 86400)
    offset, epoch, _ = await scripts.history(keys=list(keys), args=_history_args("0", "-", "0", 0))
    assert offset == 0 and epoch != b"old"
    assert not await client.exists(meta)


async def test_history_reads_forward_reverse_and_with_a_count(
    client: aioredis.Redis, keys: tuple[str, str, str]
) -> None:
    scripts = Scripts(client)
    for n in range(1, 5):
        _, first_epoch, _ = await scripts.publish(keys=list(keys), args=_publish_args(str(n)))

    async def ids(*args: Any) -> list[bytes]:
        offset, epoch, entries = await scripts.history(keys=list(keys), args=_history_args("1", *args))
        # HGET gives the offset as text.
        assert int(offset) == 4 and epoch == first_epoch
        return [entry_id for entry_id, _ in entries]

    assert await ids("-", "0", 0) == [b"1-0", b"2-0", b"3-0", b"4-0"]
    assert await ids("(2-0", "0", 0) == [b"3-0", b"4-0"]
    assert await ids("-", "0", 2) == [b"1-0", b"2-0"]
    assert await ids("+", "1", 0) == [b"4-0", b"3-0", b"2-0", b"1-0"]
    assert await ids("(3-0", "1", 1) == [b"2-0"]


async def test_presence_add_get_and_remove(client: aioredis.Redis) -> None:
    channel = uuid.uuid4().hex
    data, expire = f"t.presence.data.{{{channel}}}", f"t.presence.expire.{{{channel}}}"
    scripts = Scripts(client)
    await scripts.presence_add(keys=[data, expire], args=["c1", b"ann", 60, 1000.0])
    await scripts.presence_add(keys=[data, expire], args=["c2", b"bob", 60, 1030.0])
    assert 55 <= await client.ttl(data) <= 60
    assert 55 <= await client.ttl(expire) <= 60
    assert await client.zscore(expire, "c1") == 1060.0
    # At 1070 the first entry has expired: it's dropped from both keys as it's read.
    assert await scripts.presence_get(keys=[data, expire], args=[1070.0]) == [b"c2", b"bob"]
    assert await client.hkeys(data) == [b"c2"]
    assert await client.zrange(expire, 0, -1) == [b"c2"]
    await scripts.presence_remove(keys=[data, expire], args=["c2"])
    assert await scripts.presence_get(keys=[data, expire], args=[1070.0]) == []
