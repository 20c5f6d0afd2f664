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
def keys() -> tuple[str, str]:
    """A stream key and its meta key, in one hash slot as the broker names them."""
    channel = uuid.uuid4().hex
    return f"t.stream.{{{channel}}}", f"t.meta.{{{channel}}}"


def test_every_script_has_a_documented_header() -> None:
    for name in SCRIPT_NAMES:
        source = read_script(name)
        assert source.startswith("-- "), name
        assert "KEYS[1]" in source, name
        assert "Returns" in source, name


async def test_publish_appends_counts_and_fans_out(client: aioredis.Redis, keys: tuple[str, str]) -> None:
    stream, meta = keys
    scripts = Scripts(client)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("t.client.ch")
    try:
        first = await scripts.publish(keys=[stream, meta], args=["t.client.ch", b"one", 10, 60, 600, "e1"])
        second = await scripts.publish(keys=[stream, meta], args=["t.client.ch", b"two", 10, 60, 600, "e2"])
        assert first == [1, b"e1"]
        # The stream has an epoch now: the one offered later is ignored.
        assert second == [2, b"e1"]
        entries = await client.xrange(stream)
        assert entries == [(b"1-0", {b"d": b"one"}), (b"2-0", {b"d": b"two"})]
        assert await client.hgetall(meta) == {b"e": b"e1", b"s": b"2"}
        received: list[bytes] = []
        for _ in range(10):  # the subscription's confirmation reads as None
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                received.append(message["data"])
            if len(received) == 2:
                break
        assert received == [b"p1:e1:one", b"p2:e1:two"]
    finally:
        await pubsub.aclose()


async def test_publish_trims_to_the_history_size(client: aioredis.Redis, keys: tuple[str, str]) -> None:
    stream, meta = keys
    scripts = Scripts(client)
    for n in range(5):
        await scripts.publish(keys=[stream, meta], args=["t.client.ch", str(n), 2, 60, 600, "e"])
    assert [entry_id for entry_id, _ in await client.xrange(stream)] == [b"4-0", b"5-0"]
    # Trimming forgets publications, never the position.
    assert await client.hget(meta, "s") == b"5"


async def test_publish_sets_the_history_and_meta_ttls(client: aioredis.Redis, keys: tuple[str, str]) -> None:
    stream, meta = keys
    scripts = Scripts(client)
    await scripts.publish(keys=[stream, meta], args=["t.client.ch", b"x", 10, 60, 600, "e"])
    assert 55 <= await client.ttl(stream) <= 60
    assert 595 <= await client.ttl(meta) <= 600


async def test_history_of_a_new_stream_creates_its_epoch(client: aioredis.Redis, keys: tuple[str, str]) -> None:
    stream, meta = keys
    scripts = Scripts(client)
    assert await scripts.history(keys=[stream, meta], args=["e1", 600, "1", "-", "0", 0]) == [0, b"e1", []]
    # The position of a stream nobody published to yet is stable: the epoch stays.
    assert await scripts.history(keys=[stream, meta], args=["e2", 600, "0", "-", "0", 0]) == [0, b"e1", []]
    assert 595 <= await client.ttl(meta) <= 600
    assert not await client.exists(stream)


async def test_history_reads_forward_reverse_and_with_a_count(client: aioredis.Redis, keys: tuple[str, str]) -> None:
    stream, meta = keys
    scripts = Scripts(client)
    for n in range(1, 5):
        await scripts.publish(keys=[stream, meta], args=["t.client.ch", str(n), 10, 60, 600, "e"])

    async def ids(*args: Any) -> list[bytes]:
        offset, epoch, entries = await scripts.history(keys=[stream, meta], args=["x", 600, "1", *args])
        # HGET gives the offset as text.
        assert (int(offset), epoch) == (4, b"e")
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
