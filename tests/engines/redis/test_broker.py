"""What only the Redis broker does: its key layout, and what happens when redis-server goes
away: errors to the caller, reconnection with backoff, resubscription, and streams that
survive a restart with persistence or start a new epoch without it.

Everything that every broker does is in ``tests/engines/contract/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import pytest
import redis.asyncio as aioredis

from wavecast.engines import Broker, ClientInfo, Publication, StreamPosition
from wavecast.engines.redis import RedisEngine
from wavecast.engines.redis.broker import reconnect_delay
from wavecast.exceptions import EngineError

from ...support.redis import RedisServer
from ...support.timing import MS, wait_until
from ..helpers import RecordingHandler, StartEngine

SIZE = 100
TTL = 300.0
INFO = ClientInfo(client="c1", user="u1")


def pub(n: int) -> Publication:
    return Publication(data=str(n).encode())


async def publisher_and_subscriber(
    server: RedisServer, start_engine: StartEngine
) -> tuple[RedisEngine, RecordingHandler]:
    """Start two nodes: one to publish, the other subscribed to ``ch``. Return the publisher,
    and what the subscriber's broker reports."""
    publisher, _ = await start_engine(server)
    subscriber, events = await start_engine(server)
    await subscriber.broker.subscribe("ch")
    return publisher, events


async def test_keys_and_pubsub_channels_are_under_the_prefix(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, handler = await start_engine(own_redis, prefix="app")
    await engine.broker.subscribe("chat:1")
    await engine.broker.publish("chat:1", pub(1), history_size=SIZE, history_ttl=TTL)
    await handler.wait_for("chat:1", 1)
    await engine.presence_manager.add_presence("chat:1", "c1", INFO, ttl=60)
    client = aioredis.Redis.from_url(own_redis.url)
    try:
        # One hash tag per channel: a channel's keys stay in one Redis Cluster slot, which
        # its Lua scripts need. The seed of the epochs is one for the whole Redis.
        assert sorted(await client.keys("*")) == [
            b"app.meta.{chat:1}",
            b"app.presence.data.{chat:1}",
            b"app.presence.expire.{chat:1}",
            b"app.seed",
            b"app.stream.{chat:1}",
        ]
        # Beside the channel's: the control channels, to every node and to this one.
        assert sorted(await client.pubsub_channels()) == [b"app.client.chat:1", b"app.control", b"app.node.node-1"]
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


# --- pipelined publications ----------------------------------------------------------------


async def test_concurrent_publications_reach_other_nodes_in_the_order_they_were_made(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    publisher, events = await publisher_and_subscriber(own_redis, start_engine)
    commands = 0
    pipeline_type = type(publisher.broker.redis.pipeline())
    execute = pipeline_type.execute

    async def counting(pipe: object, *args: object, **kwargs: object) -> object:
        nonlocal commands
        commands += 1
        return await execute(pipe, *args, **kwargs)  # type: ignore[arg-type]

    pipeline_type.execute = counting  # type: ignore[method-assign]
    try:
        # 300 publishers at once, joins among them: one round trip carries many.
        calls = [publisher.broker.publish("ch", pub(n)) for n in range(300)]
        calls.insert(150, publisher.broker.publish_join("ch", INFO))
        assert await asyncio.gather(*calls) == [None] * 301
    finally:
        pipeline_type.execute = execute  # type: ignore[method-assign]
    received = await events.wait_for("ch", 301)
    assert [event.kind for event in received].index("join") == 150
    assert [p.data for p in events.publications("ch")] == [str(n).encode() for n in range(300)]
    assert 1 <= commands < 300


async def test_a_publication_whose_caller_gave_up_doesnt_stop_the_others(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    publisher, events = await publisher_and_subscriber(own_redis, start_engine)
    first = asyncio.ensure_future(publisher.broker.publish("ch", pub(1)))
    second = asyncio.ensure_future(publisher.broker.publish("ch", pub(2)))
    await asyncio.sleep(0)
    first.cancel()
    await second
    await events.wait_for("ch", 1)
    assert pub(2).data in [p.data for p in events.publications("ch")]


# --- redis-server unreachable --------------------------------------------------------------


async def test_every_call_fails_with_an_engine_error_while_redis_is_down(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    engine, _ = await start_engine(own_redis)
    await engine.broker.publish("ch", pub(1), history_size=SIZE, history_ttl=TTL)
    own_redis.stop()
    broker, presence = engine.broker, engine.presence_manager
    calls = {
        "publish with history": broker.publish("ch", pub(2), history_size=SIZE, history_ttl=TTL),
        "publish": broker.publish("ch", pub(3)),
        "publish_join": broker.publish_join("ch", INFO),
        "publish_leave": broker.publish_leave("ch", INFO),
        "subscribe": broker.subscribe("ch"),
        "history": broker.history("ch"),
        "remove_history": broker.remove_history("ch"),
        "add_presence": presence.add_presence("ch", "c1", INFO, ttl=60),
        "remove_presence": presence.remove_presence("ch", "c1", "u1"),
        "presence": presence.presence("ch"),
        "presence_stats": presence.presence_stats("ch"),
    }
    for name, call in calls.items():
        with pytest.raises(EngineError) as raised:
            await call
        # The message names what failed and where, for the logs and the API's answer.
        assert " ch " in f" {raised.value} ".replace(":", " "), name


async def test_a_channel_that_failed_to_subscribe_isnt_subscribed_later(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    engine, handler = await start_engine(own_redis)
    own_redis.stop()
    with pytest.raises(EngineError, match="subscribe to ch failed"):
        await engine.broker.subscribe("ch")
    own_redis.start()
    other, _ = await start_engine(own_redis)
    await engine.broker.subscribe("sentinel")
    await other.broker.publish("ch", pub(1))
    await other.broker.publish("sentinel", pub(2))
    await handler.wait_for("sentinel", 1, "publication")
    assert handler.of("ch") == []


# --- reconnection ------------------------------------------------------------------------


def test_the_reconnect_delay_doubles_up_to_its_cap_with_jitter() -> None:
    rng = random.Random(7)
    delays = [reconnect_delay(attempt, rng.random) for attempt in range(12)]
    for attempt, delay in enumerate(delays):
        ceiling = min(5.0, 0.05 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 5.0
    assert reconnect_delay(1000, lambda: 1.0) == 5.0


async def test_the_pubsub_reconnects_resubscribes_and_reports_continuity_lost(
    own_redis: RedisServer, start_engine: StartEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine, handler = await start_engine(own_redis)
    await engine.broker.subscribe("a")
    await engine.broker.subscribe("b")
    await engine.broker.subscribe("gone")
    await engine.broker.unsubscribe("gone")
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="wavecast.engines.redis"):
        await wait_until(
            lambda: "redis pub/sub lost" in caplog.text, timeout=5000 * MS, what="the pub/sub connection to drop"
        )
        own_redis.start()
        await wait_until(
            lambda: {e.channel for e in handler.events if e.kind == "continuity_lost"} == {"a", "b"},
            timeout=10_000 * MS,
            what="continuity lost in a and b",
        )
    # Reported once the channels are subscribed again: what's published now arrives.
    other, _ = await start_engine(own_redis)
    await other.broker.publish("a", pub(1), history_size=SIZE, history_ttl=TTL)
    await other.broker.publish("b", pub(2))
    await other.broker.publish("gone", pub(3))
    await handler.wait_for("a", 1, "publication")
    await handler.wait_for("b", 1, "publication")
    assert [p.data for p in handler.publications("a")] == [b"1"]
    assert [p.data for p in handler.publications("b")] == [b"2"]
    assert handler.of("gone") == []


async def test_a_subscription_made_while_reconnecting_is_kept(
    own_redis: RedisServer, start_engine: StartEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine, handler = await start_engine(own_redis)
    await engine.broker.subscribe("a")
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="wavecast.engines.redis"):
        await wait_until(lambda: "redis pub/sub lost" in caplog.text, timeout=5000 * MS, what="the drop")
    own_redis.start()
    # As soon as Redis answers again, before or after the reader's reconnection.
    await wait_until_subscribed(engine.broker, "b")
    other, _ = await start_engine(own_redis)
    await other.broker.publish("b", pub(1))
    await other.broker.publish("a", pub(2))
    await handler.wait_for("a", 1, "publication")
    await handler.wait_for("b", 1, "publication")


async def wait_until_subscribed(broker: Broker, channel: str) -> None:
    """Subscribe as a node does when its clients retry: until Redis accepts."""
    async with asyncio.timeout(10_000 * MS):
        while True:
            try:
                await broker.subscribe(channel)
                return
            except EngineError:
                await asyncio.sleep(20 * MS)


async def test_close_while_redis_is_down(own_redis: RedisServer, start_engine: StartEngine) -> None:
    engine, _ = await start_engine(own_redis)
    await engine.broker.subscribe("a")
    own_redis.stop()
    await engine.close()


# --- control messages -----------------------------------------------------------------------


async def test_control_messages_reach_every_node_or_the_one_addressed(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    (one, first), (two, second) = await start_engine(own_redis), await start_engine(own_redis)
    await one.broker.publish_control(b"to all")
    await one.broker.publish_control(b"to node-2", node="node-2")
    await two.broker.publish_control(b"to node-1", node="node-1")
    await wait_until(lambda: len(first.control) == 2 and len(second.control) == 2, what="the control messages")
    assert first.control == [b"to all", b"to node-1"]
    assert second.control == [b"to all", b"to node-2"]


async def test_control_channels_come_back_after_a_restart(own_redis: RedisServer, start_engine: StartEngine) -> None:
    (one, _), (_, second) = await start_engine(own_redis), await start_engine(own_redis)
    await restart(own_redis)
    async with asyncio.timeout(10_000 * MS):
        while not second.control:
            # A message sent while the node's pub/sub is still reconnecting is lost, as Redis
            # pub/sub loses it: control messages are repeated (node info) or time out (surveys).
            with contextlib.suppress(EngineError):
                await one.broker.publish_control(b"hello", node="node-2")
            await asyncio.sleep(50 * MS)
    assert set(second.control) == {b"hello"}


async def test_a_node_started_while_redis_is_down_subscribes_its_control_channels_when_it_is_back(
    own_redis: RedisServer, start_engine: StartEngine
) -> None:
    await asyncio.to_thread(own_redis.stop)
    _, handler = await start_engine(own_redis)
    await asyncio.to_thread(own_redis.start)
    other, _ = await start_engine(own_redis)
    async with asyncio.timeout(10_000 * MS):
        while not handler.control:
            await other.broker.publish_control(b"hello", node="node-1")
            await asyncio.sleep(50 * MS)


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
