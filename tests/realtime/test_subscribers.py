"""subscribers: the broker subscribes to a channel while it has local subscribers, whatever the races."""

from __future__ import annotations

import asyncio

import pytest

from wavecast.realtime import Node

from ..support.timing import MS, wait_until
from .helpers import ConnectClient


def hold_broker(node: Node, method: str) -> tuple[asyncio.Event, list[str]]:
    """Make the broker's ``method(channel)`` wait until the returned event is set; the list
    records the channels it is called with."""
    release = asyncio.Event()
    calls: list[str] = []
    call = getattr(node.broker, method)

    async def held(channel: str) -> None:
        calls.append(channel)
        await release.wait()
        await call(channel)

    setattr(node.broker, method, held)
    return release, calls


async def test_concurrent_first_subscribers_subscribe_the_broker_once(node: Node, connect: ConnectClient) -> None:
    release, calls = hold_broker(node, "subscribe")
    ann, bob = await connect(node, "1"), await connect(node, "2")
    tasks = [
        asyncio.create_task(ann.send({"id": 10, "subscribe": {"channel": "news"}})),
        asyncio.create_task(bob.send({"id": 10, "subscribe": {"channel": "news"}})),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert calls == ["news"]
    await node.publish("news", 1)
    assert ann.publications() == bob.publications() == [1]
    assert node.subscribers._locks == {}


async def test_a_subscribe_and_an_unsubscribe_racing(node: Node, connect: ConnectClient) -> None:
    release, _ = hold_broker(node, "subscribe")
    client = await connect(node)
    subscribing = asyncio.create_task(client.send({"id": 10, "subscribe": {"channel": "news"}}))
    await asyncio.sleep(0)
    # The client goes away while the broker subscribes: the broker ends up unsubscribed.
    client.session.closed_by_transport()
    release.set()
    await subscribing
    await wait_until(lambda: not node._tasks, what="the cleanup")
    assert node.channels() == {}
    assert node.subscribers.channels == set()
    # Nothing to do for a channel nobody wants and the broker doesn't have.
    await node.subscribers._sync("other")
    assert node.subscribers.channels == set()


async def test_a_subscriber_arriving_while_the_broker_unsubscribes_gets_it_subscribed_again(
    node: Node, connect: ConnectClient
) -> None:
    # After a broker reconnection every positioned subscriber is unsubscribed at once (2500) and
    # comes back at once: the first to come back may arrive while the broker unsubscribes the
    # channel its last subscriber left.
    release, _ = hold_broker(node, "unsubscribe")
    ann, bob = await connect(node, "1", subscribe="news"), await connect(node, "2")
    leaving = asyncio.create_task(ann.send({"id": 11, "unsubscribe": {"channel": "news"}}))
    await wait_until(lambda: node.channels() == {}, what="the last subscriber to leave")
    joining = asyncio.create_task(bob.result("subscribe", {"channel": "news"}))
    await asyncio.sleep(10 * MS)
    release.set()
    await leaving
    assert await joining == {}
    await wait_until(lambda: not node.subscribers._locks, what="the broker subscription to settle")
    assert node.subscribers.channels == {"news"}
    await node.publish("news", 1)
    assert bob.publications() == [1]


async def test_a_failed_broker_change_leaves_no_change_in_flight(node: Node, connect: ConnectClient) -> None:
    from wavecast.exceptions import EngineError

    async def broken_unsubscribe(channel: str) -> None:
        raise EngineError("unsubscribe from news failed: redis is down")

    client = await connect(node, subscribe="news")
    node.broker.unsubscribe = broken_unsubscribe  # type: ignore[method-assign]
    node.hub.remove_subscriber("news", client.session)
    with pytest.raises(EngineError):
        await node.subscribers._sync("news")
    # Else every later subscriber would wait for a change that no longer happens.
    assert node.subscribers._locks == {}
