"""The NATS engine's own behaviour, beyond the contract suite: what a nats-server outage does
to publishing and subscriptions, subjects for any channel name, and NATS's payload limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from wavecast.engines import Publication
from wavecast.engines.nats import NatsEngine
from wavecast.exceptions import EngineError

from ...support.cleanup import stopping
from ...support.nats import NatsServer
from ...support.redis import RedisServer
from ...support.timing import MS, wait_until
from ..helpers import RecordingHandler

StartNats = Callable[[NatsServer], Awaitable[tuple[NatsEngine, RecordingHandler]]]


@pytest.fixture
async def start_engine(redis_server: RedisServer) -> AsyncIterator[StartNats]:
    """``await start_engine(nats)``: a NATS engine on ``nats`` and the session's Redis, one per
    simulated node, all under one prefix; closed when the test ends."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    count = 0

    async def start(nats: NatsServer) -> tuple[NatsEngine, RecordingHandler]:
        nonlocal count
        count += 1
        engine = NatsEngine(nats.url, redis_server.url, prefix=prefix)
        handler = RecordingHandler(f"node-{count}")
        await engine.broker.start(handler)
        await engine.presence_manager.start()
        return engine, handler

    async def close(started: tuple[NatsEngine, RecordingHandler]) -> None:
        await started[0].close()

    async with stopping(start, close) as start_and_close:
        yield start_and_close


def pub(n: int) -> Publication:
    return Publication(json.dumps({"n": n}).encode())


async def test_publishing_fails_while_nats_is_down_and_subscribers_recover_after(
    own_nats: NatsServer, start_engine: StartNats
) -> None:
    engine, handler = await start_engine(own_nats)
    await engine.broker.subscribe("feed")
    await engine.broker.publish("feed", pub(1), history_size=10, history_ttl=60)
    await handler.wait_for("feed", 1, "publication")

    await asyncio.to_thread(own_nats.kill)
    await wait_until(lambda: not engine.broker.nc.is_connected, timeout=5000 * MS, what="nats gone")
    # Until the client reconnects, a publication fails: never queued where a crash loses it.
    with pytest.raises(EngineError, match="nats is not connected"):
        await engine.broker.publish("feed", pub(0), history_size=10, history_ttl=60)
    await asyncio.to_thread(own_nats.start)
    await wait_until(lambda: engine.broker.nc.is_connected, timeout=5000 * MS, what="nats reconnected")
    await engine.broker.publish("feed", pub(2), history_size=10, history_ttl=60)
    # The subscription came back by itself, and the node was told to recover the channel.
    await handler.wait_for("feed", 1, "continuity_lost")
    history = await engine.broker.history("feed")
    assert [json.loads(p.data)["n"] for p in history.publications] == [1, 2]
    await engine.broker.publish("feed", pub(3), history_size=10, history_ttl=60)
    await wait_until(lambda: [json.loads(p.data)["n"] for p in handler.publications("feed")][-1] == 3, what="3")


async def test_subscribing_fails_while_nats_is_down(own_nats: NatsServer, start_engine: StartNats) -> None:
    engine, _ = await start_engine(own_nats)
    await asyncio.to_thread(own_nats.stop)
    await wait_until(lambda: not engine.broker.nc.is_connected, timeout=5000 * MS, what="nats gone")
    with pytest.raises(EngineError, match="nats is not connected"):
        await engine.broker.subscribe("feed")


@pytest.mark.parametrize("channel", ["a.b", "with space", "wild*card>", "ünïcode:$", ".."])
async def test_any_channel_name_has_a_subject_of_its_own(
    nats_server: NatsServer, start_engine: StartNats, channel: str
) -> None:
    engine, handler = await start_engine(nats_server)
    await engine.broker.subscribe(channel)
    await engine.broker.subscribe("a")  # "a.b" mustn't reach "a", nor a wildcard match others
    await engine.broker.publish(channel, pub(1))
    await engine.broker.publish("a", pub(2))
    await handler.wait_for("a", 1)
    await handler.wait_for(channel, 1)
    assert [json.loads(p.data)["n"] for p in handler.publications(channel)] == [1]
    assert [json.loads(p.data)["n"] for p in handler.publications("a")] == [2]


async def test_a_publication_beyond_the_nats_payload_limit_is_refused_before_history(
    nats_server: NatsServer, start_engine: StartNats
) -> None:
    engine, _ = await start_engine(nats_server)
    big = Publication(b'"' + b"x" * engine.broker.nc.max_payload + b'"')
    with pytest.raises(EngineError, match="max_payload"):
        await engine.broker.publish("feed", big, history_size=10, history_ttl=60)
    assert (await engine.broker.history("feed")).publications == []


async def test_messages_dropped_for_a_slow_consumer_make_the_channel_recover(
    nats_server: NatsServer, start_engine: StartNats
) -> None:
    publisher, _ = await start_engine(nats_server)
    slow, handler = await start_engine(nats_server)
    slow.broker.max_pending = 2
    await slow.broker.subscribe("feed")
    # A burst arrives in one read: more than 2 wait for the node at once, and NATS drops them.
    await asyncio.gather(*(publisher.broker.publish("feed", pub(n)) for n in range(200)))
    await handler.wait_for("feed", 1, "continuity_lost")
    assert len(handler.publications("feed")) < 200


async def test_a_node_started_while_nats_is_down_connects_when_it_comes_up(
    own_nats: NatsServer, start_engine: StartNats
) -> None:
    await asyncio.to_thread(own_nats.stop)
    engine, handler = await start_engine(own_nats)  # returns at once: it retries in the background
    with pytest.raises(EngineError, match="nats is not connected"):
        await engine.broker.publish("feed", pub(1))
    await asyncio.to_thread(own_nats.start)
    await wait_until(lambda: engine.broker.nc.is_connected, timeout=10_000 * MS, what="nats connected")
    await engine.broker.subscribe("feed")
    await engine.broker.publish("feed", pub(2))
    await handler.wait_for("feed", 1, "publication")
