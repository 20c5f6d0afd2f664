"""The Broker contract: publication, delivery, streams, history and their expiry.

Written once against the ``engine`` fixture. Delivery may be asynchronous (a remote engine
delivers through its server), so "not delivered" is checked after a later publication to a
subscribed channel has arrived: engines deliver one node's events in order.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from wavecast.engines import ClientInfo, HistoryResult, Publication, StreamPosition

from ...support.timing import wait_until
from ..helpers import Engine

#: History kept by default in these tests: more than any test publishes, for longer than any waits.
SIZE = 100
TTL = 3600.0
#: A history TTL that tests let pass.
SHORT_TTL = 1.0

INFO = ClientInfo(client="c1", user="u1", conn_info=b'{"name":"Ann"}', chan_info=b'{"role":"admin"}')


def pub(n: int | str) -> Publication:
    return Publication(data=json.dumps({"n": n}).encode())


def offsets(result: HistoryResult) -> list[int]:
    return [p.offset for p in result.publications]


def epochs_for_an_hour(engine: Engine) -> None:
    """Make the period that a new stream's epoch depends on an hour (it is ``meta_ttl``), so
    that it can't turn between two calls of a test. Streams already written keep their expiry.

    The NATS engine keeps its streams in Redis, through a broker of its own; the sharded Redis
    engine in one broker per shard.
    """
    broker = getattr(engine.broker, "streams", engine.broker)
    for each in getattr(broker, "shards", [broker]):
        each.meta_ttl = 3600


async def publish_n(engine: Engine, channel: str, count: int, *, size: int = SIZE, ttl: float = TTL) -> StreamPosition:
    position = None
    for n in range(count):
        position = await engine.broker.publish(channel, pub(n), history_size=size, history_ttl=ttl)
    assert position is not None
    return position


async def sentinel(engine: Engine) -> None:
    """Publish to a subscribed channel and wait for it, so that anything published before arrived."""
    channel = engine.channel("sentinel")
    await engine.broker.subscribe(channel)
    await engine.broker.publish(channel, pub("sentinel"))
    await engine.events.wait_for(channel, 1)


# --- publish without history ------------------------------------------------------------


async def test_publish_without_history_returns_none(engine: Engine) -> None:
    channel = engine.channel()
    assert await engine.broker.publish(channel, pub(1)) is None
    assert await engine.broker.publish(channel, pub(2), history_size=10) is None
    assert await engine.broker.publish(channel, pub(3), history_ttl=10) is None


async def test_publish_without_history_delivers_with_offset_0(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    publication = Publication(data=b'{"text":"hi"}', info=INFO, tags={"kind": "chat"}, time=1700000000123)
    await engine.broker.publish(channel, publication)
    [event] = await engine.events.wait_for(channel, 1)
    assert event.kind == "publication"
    assert event.publication == publication
    assert event.publication is not None and event.publication.offset == 0
    assert event.position is None


async def test_publish_without_history_keeps_nothing(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.publish(channel, pub(1))
    result = await engine.broker.history(channel)
    assert result.publications == []
    assert result.position.offset == 0


async def test_publish_delivers_only_to_subscribed_channels(engine: Engine) -> None:
    subscribed, other = engine.channel(), engine.channel()
    await engine.broker.subscribe(subscribed)
    await engine.broker.publish(other, pub("other"))
    await engine.broker.publish(other, pub("other"), history_size=SIZE, history_ttl=TTL)
    await engine.broker.publish(subscribed, pub("mine"))
    await engine.events.wait_for(subscribed, 1)
    await sentinel(engine)
    assert engine.events.of(other) == []
    assert engine.events.publications(subscribed) == [pub("mine")]


async def test_publications_arrive_in_order(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    for n in range(20):
        await engine.broker.publish(channel, pub(n))
    await engine.events.wait_for(channel, 20)
    assert engine.events.publications(channel) == [pub(n) for n in range(20)]


# --- publish with history ---------------------------------------------------------------


async def test_offsets_count_from_1(engine: Engine) -> None:
    channel = engine.channel()
    positions = [await engine.broker.publish(channel, pub(n), history_size=SIZE, history_ttl=TTL) for n in range(3)]
    assert [p.offset for p in positions if p is not None] == [1, 2, 3]
    assert len({p.epoch for p in positions if p is not None}) == 1
    assert positions[0] is not None and positions[0].epoch


async def test_publish_with_history_delivers_with_offset_and_position(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    publication = Publication(data=b'{"text":"hi"}', info=INFO, tags={"kind": "chat"}, time=1700000000123)
    first = await engine.broker.publish(channel, publication, history_size=SIZE, history_ttl=TTL)
    second = await engine.broker.publish(channel, pub(2), history_size=SIZE, history_ttl=TTL)
    events = await engine.events.wait_for(channel, 2)
    assert [e.position for e in events] == [first, second]
    assert events[0].publication == Publication(
        data=b'{"text":"hi"}', offset=1, info=INFO, tags={"kind": "chat"}, time=1700000000123
    )
    assert events[1].publication == Publication(data=pub(2).data, offset=2)


async def test_the_offset_given_by_the_publisher_is_replaced(engine: Engine) -> None:
    channel = engine.channel()
    position = await engine.broker.publish(
        channel, Publication(data=b"1", offset=42), history_size=SIZE, history_ttl=TTL
    )
    assert position is not None and position.offset == 1
    assert offsets(await engine.broker.history(channel)) == [1]


async def test_history_keeps_every_field(engine: Engine) -> None:
    channel = engine.channel()
    publication = Publication(data=b'{"text":"hi"}', info=INFO, tags={"a": "1", "b": "2"}, time=1700000000123)
    await engine.broker.publish(channel, publication, history_size=SIZE, history_ttl=TTL)
    await engine.broker.publish(channel, Publication(data=b"[]"), history_size=SIZE, history_ttl=TTL)
    result = await engine.broker.history(channel)
    assert result.publications == [
        Publication(data=b'{"text":"hi"}', offset=1, info=INFO, tags={"a": "1", "b": "2"}, time=1700000000123),
        Publication(data=b"[]", offset=2),
    ]


async def test_binary_publications_keep_their_bytes_and_flag(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    data = bytes(range(256))
    await engine.broker.publish(channel, Publication(data=data, binary=True), history_size=SIZE, history_ttl=TTL)
    [event] = await engine.events.wait_for(channel, 1)
    assert event.publication == Publication(data=data, offset=1, binary=True)
    result = await engine.broker.history(channel)
    assert result.publications == [Publication(data=data, offset=1, binary=True)]


async def test_history_returns_the_current_position(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 3)
    result = await engine.broker.history(channel)
    assert offsets(result) == [1, 2, 3]
    assert result.position == position


async def test_history_of_an_empty_stream(engine: Engine) -> None:
    channel = engine.channel()
    first = await engine.broker.history(channel)
    assert first.publications == []
    assert first.position.offset == 0
    second = await engine.broker.history(channel)
    assert second.position == first.position


async def test_streams_are_per_channel(engine: Engine) -> None:
    one, two = engine.channel(), engine.channel()
    await publish_n(engine, one, 3)
    position = await publish_n(engine, two, 1)
    assert position.offset == 1
    assert offsets(await engine.broker.history(one)) == [1, 2, 3]
    assert offsets(await engine.broker.history(two)) == [1]


async def test_history_is_trimmed_to_history_size(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5, size=3)
    assert position.offset == 5
    result = await engine.broker.history(channel)
    assert offsets(result) == [3, 4, 5]
    assert result.position == position


async def test_epoch_is_stable_across_calls(engine: Engine) -> None:
    channel = engine.channel()
    first = await publish_n(engine, channel, 1)
    await engine.advance(SHORT_TTL / 2)
    second = await publish_n(engine, channel, 1)
    result = await engine.broker.history(channel, limit=0)
    assert first.epoch == second.epoch == result.position.epoch


async def assert_emptied(engine: Engine, channel: str, position: StreamPosition, *, ttl: float) -> None:
    """Check that ``channel``'s history is empty but its stream kept ``position`` (three
    publications), and goes on where it was: the next publication is the fourth, same epoch."""
    result = await engine.broker.history(channel)
    assert result.publications == []
    assert result.position == position
    after = await engine.broker.publish(channel, pub(4), history_size=SIZE, history_ttl=ttl)
    assert after == StreamPosition(4, position.epoch)
    assert offsets(await engine.broker.history(channel)) == [4]


async def test_history_ttl_expiry_keeps_offset_and_epoch(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 3, ttl=SHORT_TTL)
    await engine.advance(SHORT_TTL * 1.5)
    await assert_emptied(engine, channel, position, ttl=SHORT_TTL)


async def test_each_publication_extends_the_history_ttl(engine: Engine) -> None:
    channel = engine.channel()
    await publish_n(engine, channel, 1, ttl=SHORT_TTL)
    await engine.advance(SHORT_TTL * 0.6)
    await publish_n(engine, channel, 1, ttl=SHORT_TTL)
    await engine.advance(SHORT_TTL * 0.6)
    # More than the TTL since the first publication, less since the last one: both kept.
    assert offsets(await engine.broker.history(channel)) == [1, 2]


async def test_a_new_epoch_after_the_stream_meta_expires(engine: Engine) -> None:
    channel = engine.channel()
    old = await publish_n(engine, channel, 3, ttl=SHORT_TTL)
    await engine.advance(engine.meta_ttl + SHORT_TTL + 1)
    # The stream expired; the history read and the publication that starts the next one agree
    # on its epoch unless the period turns between them, which a short meta_ttl makes likely.
    epochs_for_an_hour(engine)
    result = await engine.broker.history(channel)
    assert result.publications == []
    assert result.position.offset == 0
    assert result.position.epoch != old.epoch
    new = await engine.broker.publish(channel, pub(1), history_size=SIZE, history_ttl=SHORT_TTL)
    assert new == StreamPosition(1, result.position.epoch)


async def test_a_channel_never_published_to_has_a_stable_position_that_its_first_publication_continues(
    engine: Engine,
) -> None:
    channel = engine.channel()
    epochs_for_an_hour(engine)
    first = await engine.broker.history(channel, limit=0)
    again = await engine.broker.history(channel)
    assert first == again == HistoryResult([], StreamPosition(0, first.position.epoch))
    assert first.position.epoch
    position = await publish_n(engine, channel, 2)
    assert position == StreamPosition(2, first.position.epoch)
    # A subscriber that came before the first publication recovers from there.
    assert offsets(await engine.broker.history(channel, since=first.position)) == [1, 2]


async def test_channels_never_published_to_have_epochs_of_their_own(engine: Engine) -> None:
    epochs_for_an_hour(engine)
    epochs = {(await engine.broker.history(engine.channel(), limit=0)).position.epoch for _ in range(20)}
    assert len(epochs) == 20


async def test_history_since_returns_newer_publications(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    result = await engine.broker.history(channel, since=StreamPosition(2, position.epoch))
    assert offsets(result) == [3, 4, 5]
    assert result.position == position


async def test_history_since_the_current_position_is_empty(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    result = await engine.broker.history(channel, since=position)
    assert result.publications == []
    assert result.position == position


async def test_history_since_0_returns_everything(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 3)
    assert offsets(await engine.broker.history(channel, since=StreamPosition(0, position.epoch))) == [1, 2, 3]


async def test_history_since_a_trimmed_offset_returns_what_is_kept(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 6, size=3)
    assert offsets(await engine.broker.history(channel, since=StreamPosition(1, position.epoch))) == [4, 5, 6]


async def test_history_since_another_epoch_returns_only_the_position(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    for since in (StreamPosition(2, "other"), StreamPosition(2, ""), StreamPosition(0, "other")):
        result = await engine.broker.history(channel, since=since)
        assert result.publications == []
        assert result.position == position
        result = await engine.broker.history(channel, since=since, reverse=True, limit=2)
        assert result.publications == []
        assert result.position == position


async def test_history_limit_0_returns_only_the_position(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 3)
    result = await engine.broker.history(channel, limit=0)
    assert result == HistoryResult([], position)
    result = await engine.broker.history(channel, limit=0, since=StreamPosition(1, position.epoch))
    assert result == HistoryResult([], position)


@pytest.mark.parametrize(("limit", "expected"), [(1, [1]), (2, [1, 2]), (5, [1, 2, 3, 4, 5]), (9, [1, 2, 3, 4, 5])])
async def test_history_limit_returns_the_oldest(engine: Engine, limit: int, expected: list[int]) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    result = await engine.broker.history(channel, limit=limit)
    assert offsets(result) == expected
    assert result.position == position


async def test_history_since_with_limit(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    result = await engine.broker.history(channel, since=StreamPosition(1, position.epoch), limit=2)
    assert offsets(result) == [2, 3]
    assert result.position == position


async def test_history_reverse_is_newest_first(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    assert offsets(await engine.broker.history(channel, reverse=True)) == [5, 4, 3, 2, 1]
    result = await engine.broker.history(channel, reverse=True, limit=2)
    assert offsets(result) == [5, 4]
    assert result.position == position


async def test_history_reverse_since_returns_older_publications(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 5)
    assert offsets(await engine.broker.history(channel, since=StreamPosition(4, position.epoch), reverse=True)) == [
        3,
        2,
        1,
    ]
    result = await engine.broker.history(channel, since=StreamPosition(4, position.epoch), reverse=True, limit=2)
    assert offsets(result) == [3, 2]
    assert result.position == position
    assert offsets(await engine.broker.history(channel, since=StreamPosition(1, position.epoch), reverse=True)) == []
    result = await engine.broker.history(channel, since=StreamPosition(0, position.epoch), reverse=True)
    assert result == HistoryResult([], position)


async def test_remove_history_keeps_offset_and_epoch(engine: Engine) -> None:
    channel = engine.channel()
    position = await publish_n(engine, channel, 3)
    await engine.broker.remove_history(channel)
    await assert_emptied(engine, channel, position, ttl=TTL)


async def test_remove_history_of_an_unknown_channel(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.remove_history(channel)
    result = await engine.broker.history(channel)
    assert result.publications == []
    assert result.position.offset == 0


# --- idempotent publication --------------------------------------------------------------


@pytest.mark.parametrize("size", [0, SIZE], ids=["no-history", "history"])
async def test_a_repeated_idempotency_key_returns_the_first_result_and_delivers_nothing(
    engine: Engine, size: int
) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    first = await engine.broker.publish(channel, pub(1), history_size=size, history_ttl=TTL, idempotency_key="k1")
    again = await engine.broker.publish(channel, pub(2), history_size=size, history_ttl=TTL, idempotency_key="k1")
    other = await engine.broker.publish(channel, pub(3), history_size=size, history_ttl=TTL, idempotency_key="k2")
    await engine.broker.publish(channel, pub(4), history_size=size, history_ttl=TTL)
    received = await engine.events.wait_for(channel, 3)
    await sentinel(engine)
    assert [json.loads(p.data)["n"] for p in engine.events.publications(channel)] == [1, 3, 4]
    assert again == first
    if size:
        assert first is not None and other is not None
        assert (first.offset, other.offset) == (1, 2)
        assert offsets(await engine.broker.history(channel)) == [1, 2, 3]
    else:
        assert first is None and other is None
    assert len(received) == 3


async def test_idempotency_keys_are_per_channel(engine: Engine) -> None:
    one, two = engine.channel(), engine.channel()
    first = await engine.broker.publish(one, pub(1), history_size=SIZE, history_ttl=TTL, idempotency_key="k")
    second = await engine.broker.publish(two, pub(1), history_size=SIZE, history_ttl=TTL, idempotency_key="k")
    assert first is not None and second is not None
    assert (first.offset, second.offset) == (1, 1)
    assert offsets(await engine.broker.history(two)) == [1]


@pytest.mark.parametrize("size", [0, SIZE], ids=["no-history", "history"])
async def test_an_idempotency_key_publishes_again_after_its_window(engine: Engine, size: int) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    for n in (1, 2):
        await engine.broker.publish(
            channel, pub(n), history_size=size, history_ttl=TTL, idempotency_key="k", idempotent_ttl=1.0
        )
    await engine.advance(1.5)
    position = await engine.broker.publish(
        channel, pub(3), history_size=size, history_ttl=TTL, idempotency_key="k", idempotent_ttl=1.0
    )
    await engine.events.wait_for(channel, 2)
    await sentinel(engine)
    assert [json.loads(p.data)["n"] for p in engine.events.publications(channel)] == [1, 3]
    assert position is None if not size else position is not None and position.offset == 2


async def test_concurrent_publications_with_one_idempotency_key_publish_once(engine: Engine) -> None:
    channel = engine.channel()
    results = await asyncio.gather(
        *(
            engine.broker.publish(channel, pub(n), history_size=SIZE, history_ttl=TTL, idempotency_key="race")
            for n in range(20)
        )
    )
    assert len(set(results)) == 1
    assert len((await engine.broker.history(channel)).publications) == 1


# --- control messages -------------------------------------------------------------------


async def test_control_messages_reach_this_node_when_sent_to_all_or_to_it(engine: Engine) -> None:
    await engine.broker.publish_control(b"to all")
    await engine.broker.publish_control(b"to another", node="another")
    await engine.broker.publish_control(b"to me", node=engine.events.uid)
    await wait_until(lambda: len(engine.events.control) == 2, what="the control messages")
    await engine.broker.publish_control(b"last")
    await wait_until(lambda: len(engine.events.control) == 3, what="the last control message")
    assert engine.events.control == [b"to all", b"to me", b"last"]


# --- subscriptions ----------------------------------------------------------------------


async def test_unsubscribe_stops_delivery(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    await engine.broker.publish(channel, pub(1))
    await engine.events.wait_for(channel, 1)
    await engine.broker.unsubscribe(channel)
    await engine.broker.publish(channel, pub(2))
    await engine.broker.publish(channel, pub(3), history_size=SIZE, history_ttl=TTL)
    await sentinel(engine)
    assert engine.events.publications(channel) == [pub(1)]
    # History doesn't depend on subscriptions.
    assert offsets(await engine.broker.history(channel)) == [1]


async def test_subscribe_again_resumes_delivery(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    await engine.broker.unsubscribe(channel)
    await engine.broker.subscribe(channel)
    await engine.broker.publish(channel, pub(1))
    await engine.events.wait_for(channel, 1)
    assert engine.events.publications(channel) == [pub(1)]


async def test_subscribe_twice_delivers_once(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    await engine.broker.subscribe(channel)
    await engine.broker.publish(channel, pub(1))
    await engine.events.wait_for(channel, 1)
    await sentinel(engine)
    assert engine.events.publications(channel) == [pub(1)]


async def test_unsubscribe_from_an_unsubscribed_channel(engine: Engine) -> None:
    await engine.broker.unsubscribe(engine.channel())


# --- join and leave ---------------------------------------------------------------------


async def test_join_and_leave_are_delivered_when_subscribed(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    await engine.broker.publish_join(channel, INFO)
    await engine.broker.publish_leave(channel, INFO)
    events = await engine.events.wait_for(channel, 2)
    assert [(e.kind, e.info) for e in events] == [("join", INFO), ("leave", INFO)]


async def test_join_and_leave_are_not_delivered_when_not_subscribed(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.publish_join(channel, INFO)
    await engine.broker.subscribe(channel)
    await engine.broker.unsubscribe(channel)
    await engine.broker.publish_leave(channel, INFO)
    await sentinel(engine)
    assert engine.events.of(channel) == []


async def test_join_leave_and_publications_keep_their_order(engine: Engine) -> None:
    channel = engine.channel()
    await engine.broker.subscribe(channel)
    await engine.broker.publish_join(channel, INFO)
    await engine.broker.publish(channel, pub(1), history_size=SIZE, history_ttl=TTL)
    await engine.broker.publish_leave(channel, INFO)
    events = await engine.events.wait_for(channel, 3)
    assert [e.kind for e in events] == ["join", "publication", "leave"]


async def test_client_info_without_optional_fields(engine: Engine) -> None:
    channel = engine.channel()
    info = ClientInfo(client="c2", user="")
    await engine.broker.subscribe(channel)
    await engine.broker.publish_join(channel, info)
    [event] = await engine.events.wait_for(channel, 1)
    assert event.info == info


# --- lifecycle --------------------------------------------------------------------------


async def test_close_twice(engine: Engine) -> None:
    await engine.broker.close()
    await engine.broker.close()
