"""commands.subscribe: subscribe and unsubscribe, permissions, hooks, positions, recovery, join/leave."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from unittest.mock import ANY

import pytest

from wavecast.codes import Disconnect, Error
from wavecast.engines import Publication, StreamPosition
from wavecast.engines.memory import MemoryBroker, MemoryPresenceManager
from wavecast.exceptions import CommandError, DisconnectError
from wavecast.realtime import ChannelOptions, Node, SubscribeContext, SubscribeResult

from ...support.clock import FakeClock
from ...support.timing import wait_until
from ...support.tokens import make_token
from ..helpers import Client, ConnectClient, MakeNode, NewClient, publish_in_stream


def reply_index(client: Client, command_id: int) -> int:
    return next(i for i, reply in enumerate(client.transport.replies) if reply.get("id") == command_id)


def pub_indexes(client: Client, channel: str) -> list[int]:
    return [
        i
        for i, reply in enumerate(client.transport.replies)
        if "pub" in reply.get("push", {}) and reply["push"]["channel"] == channel
    ]


# --- subscribe and unsubscribe --------------------------------------------------------------


async def test_subscribe_then_receive(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.result("subscribe", {"channel": "news"}) == {}
    assert client.session.is_subscribed("news")
    assert node.channels() == {"news": 1}
    await node.publish("news", {"n": 1})
    assert client.publications() == [{"n": 1}]
    [push] = client.pushes("pub")
    assert push["channel"] == "news"
    assert push["pub"]["time"] > 0
    assert push["pub"].keys() == {"data", "time"}


async def test_subscribers_of_a_channel_share_its_name(node: Node, connect: ConnectClient) -> None:
    first, second = await connect(node), await connect(node, user="43")
    for client in (first, second):
        assert await client.result("subscribe", {"channel": "news" + "x" * 40}) == {}
    [(channel, one)] = first.session.subscriptions.items()
    [(_, other)] = second.session.subscriptions.items()
    # Each client's command decoded a string of its own; one string stays.
    assert one.channel is other.channel is channel


async def test_anonymous_subscribe(make_node: MakeNode, new_client: NewClient) -> None:
    node = await make_node(allow_anonymous_connect_without_token=True)
    client = new_client(node)
    await client.result("connect")
    assert await client.result("subscribe", {"channel": "news"}) == {}
    assert await client.error("subscribe", {"channel": "drop:1"}) == 103


async def test_unsubscribe(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
    assert await client.result("unsubscribe", {"channel": "news"}) == {}
    assert client.session.subscriptions == {}
    assert node.channels() == {}
    await node.publish("news", {"n": 1})
    assert client.publications() == []
    # No unsubscribe push: the client asked.
    assert client.pushes("unsubscribe") == []


async def test_unsubscribe_from_a_channel_not_subscribed(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.result("unsubscribe", {"channel": "news"}) == {}


async def test_unknown_namespace(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("subscribe", {"channel": "nope:1"}) == 102


@pytest.mark.parametrize("channel", ["", "x" * 256])
async def test_bad_channel_name(node: Node, connect: ConnectClient, channel: str) -> None:
    client = await connect(node)
    assert await client.error("subscribe", {"channel": channel}) == 107


async def test_permission_denied(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("subscribe", {"channel": "plain:1"}) == 103
    assert await client.error("subscribe", {"channel": "secret:1"}) == 103
    assert client.session.subscriptions == {}


async def test_already_subscribed(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
    assert await client.error("subscribe", {"channel": "news"}) == 105
    assert client.session.is_subscribed("news")


async def test_channel_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_channel_limit=2)
    client = await connect(node)
    await client.result("subscribe", {"channel": "a"})
    await client.result("subscribe", {"channel": "b"})
    assert await client.error("subscribe", {"channel": "c"}) == 106
    await client.result("unsubscribe", {"channel": "a"})
    await client.result("subscribe", {"channel": "c"})


async def test_no_channel_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_channel_limit=None)
    client = await connect(node)
    for n in range(200):  # past the default of 128
        await client.result("subscribe", {"channel": f"c{n}"})
    assert len(client.session.subscriptions) == 200


async def test_the_broker_subscribes_once_per_channel(node: Node, connect: ConnectClient) -> None:
    calls: list[tuple[str, str]] = []
    subscribe, unsubscribe = node.broker.subscribe, node.broker.unsubscribe

    async def spy_subscribe(channel: str) -> None:
        calls.append(("subscribe", channel))
        await subscribe(channel)

    async def spy_unsubscribe(channel: str) -> None:
        calls.append(("unsubscribe", channel))
        await unsubscribe(channel)

    node.broker.subscribe = spy_subscribe  # type: ignore[method-assign]
    node.broker.unsubscribe = spy_unsubscribe  # type: ignore[method-assign]
    one, two = await connect(node, "1", subscribe="news"), await connect(node, "2", subscribe="news")
    await one.result("unsubscribe", {"channel": "news"})
    assert calls == [("subscribe", "news")]
    await two.result("unsubscribe", {"channel": "news"})
    assert calls == [("subscribe", "news"), ("unsubscribe", "news")]


async def test_a_failed_subscription_is_rolled_back(node: Node, connect: ConnectClient) -> None:
    async def broken_history(channel: str, **kwargs: Any) -> Any:
        raise RuntimeError("engine down")

    node.broker.history = broken_history  # type: ignore[method-assign]
    client = await connect(node)
    assert await client.error("subscribe", {"channel": "feed:1"}) == 100
    assert client.session.subscriptions == {}
    assert node.channels() == {}


async def test_a_subscription_the_broker_refuses_is_rolled_back_and_may_be_retried(
    node: Node, connect: ConnectClient
) -> None:
    from wavecast.exceptions import EngineError

    subscribe = node.broker.subscribe
    failures = [EngineError("subscribe to news failed: redis is down")]

    async def flaky_subscribe(channel: str) -> None:
        if failures:
            raise failures.pop()
        await subscribe(channel)

    node.broker.subscribe = flaky_subscribe  # type: ignore[method-assign]
    client = await connect(node)
    # A temporary error: the SDKs subscribe again after a backoff.
    reply = await client.call("subscribe", {"channel": "news"})
    assert reply["error"] == {"code": 100, "message": "internal server error", "temporary": True}
    assert client.session.subscriptions == {}
    assert node.channels() == {}
    assert node.subscribers._locks == {}
    assert await client.result("subscribe", {"channel": "news"}) == {}
    assert node.channels() == {"news": 1}


# --- user-limited channels -------------------------------------------------------------------


async def test_user_limited_channel(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "43")
    assert await ann.result("subscribe", {"channel": "chat:room#42,44"}) == {}
    assert await bob.error("subscribe", {"channel": "chat:room#42,44"}) == 103


async def test_user_limited_channel_needs_the_option(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    assert await client.error("subscribe", {"channel": "news#42"}) == 103


# --- subscription tokens ---------------------------------------------------------------------


async def test_subscription_token(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    sub_token = make_token("42", ttl=600, channel="secret:1", info={"role": "admin"})
    result = await client.result("subscribe", {"channel": "secret:1", "token": sub_token})
    assert result["expires"] is True
    assert 590 < result["ttl"] <= 600
    assert client.session.subscriptions["secret:1"].info == b'{"role":"admin"}'


async def test_subscription_token_for_another_user_or_channel(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    assert (
        await client.error("subscribe", {"channel": "secret:1", "token": make_token("43", channel="secret:1")}) == 103
    )
    assert (
        await client.error("subscribe", {"channel": "secret:1", "token": make_token("42", channel="secret:2")}) == 103
    )
    assert await client.error("subscribe", {"channel": "secret:1", "token": "garbage"}) == 103


async def test_expired_subscription_token(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    expired = make_token("42", ttl=-1, channel="secret:1")
    assert await client.error("subscribe", {"channel": "secret:1", "token": expired}) == 109


# --- the on_subscribe hook -------------------------------------------------------------------


async def test_on_subscribe_grants(node: Node, connect: ConnectClient) -> None:
    contexts: list[SubscribeContext] = []

    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> SubscribeResult:
        contexts.append(context)
        return SubscribeResult(info=b'{"seat":3}', data=b'{"welcome":true}')

    client = await connect(node)
    # The hook decides, even where the options alone would refuse.
    result = await client.result("subscribe", {"channel": "plain:1", "data": {"please": 1}})
    assert result == {"data": {"welcome": True}}
    [context] = contexts
    assert (context.session, context.channel, context.data) == (client.session, "plain:1", b'{"please": 1}')
    assert client.session.subscriptions["plain:1"].info == b'{"seat":3}'


async def test_on_subscribe_returning_none_grants(node: Node, connect: ConnectClient) -> None:
    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        assert context.data is None

    client = await connect(node)
    assert await client.result("subscribe", {"channel": "secret:1"}) == {}


async def test_on_subscribe_refuses(node: Node, connect: ConnectClient) -> None:
    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        raise CommandError(Error(403, "members only"))

    client = await connect(node)
    reply = await client.call("subscribe", {"channel": "news"})
    assert reply["error"] == {"code": 403, "message": "members only"}
    assert client.session.subscriptions == {}


async def test_on_subscribe_disconnects(node: Node, connect: ConnectClient) -> None:
    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        raise DisconnectError(Disconnect(4500, "go away"))

    client = await connect(node)
    client.new()
    await client.send({"id": 2, "subscribe": {"channel": "news"}})
    assert client.closed_with == 4500
    assert client.new() == []


async def test_on_subscribe_is_not_asked_for_a_user_limited_channel_of_another_user(
    node: Node, connect: ConnectClient
) -> None:
    asked: list[str] = []

    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        asked.append(context.channel)

    client = await connect(node, "42")
    assert await client.error("subscribe", {"channel": "chat:room#43"}) == 103
    assert asked == []


async def test_two_subscribes_racing_through_the_hook(node: Node, connect: ConnectClient) -> None:
    release = asyncio.Event()

    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        await release.wait()

    client = await connect(node)
    first = asyncio.create_task(client.send({"id": 2, "subscribe": {"channel": "news"}}))
    second = asyncio.create_task(client.send({"id": 3, "subscribe": {"channel": "news"}}))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, second)
    replies = {reply["id"]: reply for reply in client.transport.replies if reply.get("id") in (2, 3)}
    assert sorted("error" in reply for reply in replies.values()) == [False, True]
    assert client.session.is_subscribed("news")


async def test_publications_during_on_subscribe_are_not_delivered(node: Node, connect: ConnectClient) -> None:
    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        # Before the subscription exists: the client's position will say it came after this.
        await node.publish("feed:1", {"n": 1})

    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1"})
    assert result["offset"] == 1
    await node.publish("feed:1", {"n": 2})
    assert client.publications() == [{"n": 2}]


# --- positions and recovery ------------------------------------------------------------------


async def test_positioned_subscription(node: Node, connect: ConnectClient) -> None:
    position = await publish_in_stream(node, "feed:1", {"n": 1})
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1"})
    assert result == {"recoverable": True, "epoch": position.epoch, "offset": 1, "positioned": True}
    await node.publish("feed:1", {"n": 2})
    assert [(p["channel"], p["pub"]["offset"]) for p in client.pushes("pub")] == [("feed:1", 2)]


async def test_positioned_on_request(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "chat:1", "positioned": True})
    assert result["positioned"] is True
    assert "recoverable" not in result
    other = await client.result("subscribe", {"channel": "chat:2"})
    assert other == {}


async def test_recoverable_on_request(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "chat:1", "recoverable": True})
    assert (result["recoverable"], result["positioned"]) == (True, True)


async def test_recovery(node: Node, connect: ConnectClient) -> None:
    first = await publish_in_stream(node, "feed:1", {"n": 1})
    for n in (2, 3):
        await node.publish("feed:1", {"n": n})
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1", "recover": True, "epoch": first.epoch, "offset": 1})
    assert (result["recovered"], result["was_recovering"]) == (True, True)
    assert (result["epoch"], result["offset"]) == (first.epoch, 3)
    assert [(p["data"], p["offset"]) for p in result["publications"]] == [({"n": 2}, 2), ({"n": 3}, 3)]
    # Recovered ones are in the reply, not pushed again; the next one is live.
    await node.publish("feed:1", {"n": 4})
    assert client.publications() == [{"n": 4}]


async def test_recovery_when_nothing_was_missed(node: Node, connect: ConnectClient) -> None:
    position = await publish_in_stream(node, "feed:1", {"n": 1})
    client = await connect(node)
    result = await client.result(
        "subscribe", {"channel": "feed:1", "recover": True, "epoch": position.epoch, "offset": 1}
    )
    assert result["recovered"] is True
    assert result.get("publications", []) == []


async def test_recovery_after_an_epoch_change(make_node: MakeNode, connect: ConnectClient) -> None:
    clock = FakeClock()
    node = await make_node(broker=MemoryBroker(meta_ttl=10, clock=clock))
    old = await publish_in_stream(node, "feed:1", {"n": 1})
    clock.now += 1000  # the stream's history and meta expire
    await node.publish("feed:1", {"n": 1})
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1", "recover": True, "epoch": old.epoch, "offset": 1})
    assert "recovered" not in result  # false, left out
    assert result["was_recovering"] is True
    assert result["epoch"] != old.epoch
    assert result["offset"] == 1
    assert "publications" not in result


async def test_recovery_of_trimmed_publications(node: Node, connect: ConnectClient) -> None:
    first = await publish_in_stream(node, "feed:1", {"n": 0})
    for n in range(1, 15):  # history keeps 10
        await node.publish("feed:1", {"n": n})
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1", "recover": True, "epoch": first.epoch, "offset": 1})
    assert "recovered" not in result  # false, left out
    assert result["offset"] == 15
    assert "publications" not in result


async def test_recovery_beyond_history_max_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(history_max_limit=2)
    first = await publish_in_stream(node, "feed:1", {"n": 1})
    for n in (2, 3, 4):
        await node.publish("feed:1", {"n": n})
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1", "recover": True, "epoch": first.epoch, "offset": 1})
    assert "recovered" not in result  # false, left out
    assert result["offset"] == 4
    # Recovering two exactly fits.
    other = await connect(node, "43")
    result = await other.result("subscribe", {"channel": "feed:1", "recover": True, "epoch": first.epoch, "offset": 2})
    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [3, 4]


async def test_unrecoverable_position_error_when_asked(node: Node, connect: ConnectClient) -> None:
    await node.publish("feed:1", {"n": 1})
    client = await connect(node)
    params = {"channel": "feed:1", "recover": True, "epoch": "gone", "offset": 1, "flag": 2}
    assert await client.error("subscribe", params) == 112
    assert client.session.subscriptions == {}


async def test_recover_is_ignored_without_recovery(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "chat:1", "recover": True, "epoch": "x", "offset": 5})
    assert "was_recovering" not in result


class Gate:
    """A point where an engine call waits, while the test does something in the window it opens.

    ``async with gate.holding(call):`` runs ``call`` until it reaches the gate, runs the block,
    then opens the gate and waits for ``call`` to finish.
    """

    def __init__(self) -> None:
        self._open: asyncio.Event | None = None
        self._reached = asyncio.Event()

    async def passing(self) -> None:
        """Wait here while the gate is closed."""
        if self._open is not None:
            self._reached.set()
            await self._open.wait()

    @contextlib.asynccontextmanager
    async def holding(self, call: Awaitable[object]) -> AsyncIterator[None]:
        self._open = asyncio.Event()
        task = asyncio.ensure_future(call)
        await self._reached.wait()
        try:
            yield
        finally:
            self._open.set()
        await task


class GatedBroker(MemoryBroker):
    """A memory broker whose history() waits at a gate, to open a window in a subscribe."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()

    async def history(self, channel: str, **kwargs: Any) -> Any:
        await self.gate.passing()
        return await super().history(channel, **kwargs)


class GatedPresence(MemoryPresenceManager):
    """A presence manager whose add_presence() waits at a gate, after the subscribe read history."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()

    async def add_presence(self, channel: str, client: str, info: Any, *, ttl: float) -> None:
        await self.gate.passing()
        await super().add_presence(channel, client, info, ttl=ttl)


async def test_publications_while_reading_history_are_sent_once(make_node: MakeNode, connect: ConnectClient) -> None:
    broker = GatedBroker()
    node = await make_node(broker=broker)
    first = await publish_in_stream(node, "chat:1", {"n": 1})
    await node.publish("chat:1", {"n": 2})
    client = await connect(node)
    params = {"channel": "chat:1", "recoverable": True, "recover": True, "epoch": first.epoch, "offset": 1}
    async with broker.gate.holding(client.send({"id": 2, "subscribe": params})):
        # The subscription is registered but history isn't read yet: these go to history and to pending.
        await node.publish("chat:1", {"n": 3})
        await node.publish("chat:1", {"n": 4})
        assert client.publications() == []
    await node.publish("chat:1", {"n": 5})
    [reply] = client.replies_to(2)
    assert reply["subscribe"]["recovered"] is True
    assert [p["data"]["n"] for p in reply["subscribe"]["publications"]] == [2, 3, 4]
    assert client.publications() == [{"n": 5}]


async def test_publications_after_reading_history_follow_the_reply(make_node: MakeNode, connect: ConnectClient) -> None:
    presence = GatedPresence()
    node = await make_node(presence_manager=presence)
    first = await publish_in_stream(node, "chat:1", {"n": 1})
    client = await connect(node)
    params = {"channel": "chat:1", "recoverable": True, "recover": True, "epoch": first.epoch, "offset": 0}
    async with presence.gate.holding(client.send({"id": 2, "subscribe": params})):
        # History was read: these wait in pending until the reply is written.
        await node.publish("chat:1", {"n": 2})
        await node.publish("chat:1", {"n": 3})
        assert client.publications() == []
    await node.publish("chat:1", {"n": 4})
    [reply] = client.replies_to(2)
    assert [p["data"]["n"] for p in reply["subscribe"]["publications"]] == [1]
    assert reply["subscribe"]["offset"] == 1
    assert client.publications() == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert [p["pub"]["offset"] for p in client.pushes("pub")] == [2, 3, 4]
    assert reply_index(client, 2) < min(pub_indexes(client, "chat:1"))


async def test_publications_during_subscribe_without_positions(make_node: MakeNode, connect: ConnectClient) -> None:
    presence = GatedPresence()
    node = await make_node(presence_manager=presence)
    client = await connect(node)
    async with presence.gate.holding(client.send({"id": 2, "subscribe": {"channel": "chat:1"}})):
        await node.publish("chat:1", {"n": 1})
    assert client.publications() == [{"n": 1}]
    assert reply_index(client, 2) < min(pub_indexes(client, "chat:1"))


async def test_a_gap_unsubscribes_with_insufficient_state(node: Node, connect: ConnectClient) -> None:
    position = await publish_in_stream(node, "feed:1", {"n": 1})
    client = await connect(node, subscribe="feed:1")
    # The broker lost offset 2 on its way here.
    node.on_publication("feed:1", Publication(data=b"3", offset=3), StreamPosition(3, position.epoch))
    await wait_until(lambda: bool(client.pushes("unsubscribe")), what="the unsubscribe push")
    assert client.pushes("unsubscribe") == [
        {"channel": "feed:1", "unsubscribe": {"code": 2500, "reason": "insufficient state"}}
    ]
    assert client.publications() == []
    assert "feed:1" not in client.session.subscriptions


async def test_an_old_offset_is_not_sent_again(node: Node, connect: ConnectClient) -> None:
    await node.publish("feed:1", {"n": 1})
    position = await publish_in_stream(node, "feed:1", {"n": 2})
    client = await connect(node, subscribe="feed:1")
    node.on_publication("feed:1", Publication(data=b"2", offset=2), position)
    await node.publish("feed:1", {"n": 3})
    assert client.publications() == [{"n": 3}]
    assert client.session.subscriptions["feed:1"].offset == 3


# --- presence and join/leave -----------------------------------------------------------------


async def test_presence_follows_subscriptions(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", info={"name": "Ann"}, subscribe="chat:1")
    presence = await node.presence("chat:1")
    assert list(presence) == [client.session.client]
    assert presence[client.session.client].user == "42"
    assert presence[client.session.client].conn_info == b'{"name":"Ann"}'
    await client.result("unsubscribe", {"channel": "chat:1"})
    assert await node.presence("chat:1") == {}


async def test_join_and_leave_pushes(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "43", info={"name": "Bob"})
    await ann.result("subscribe", {"channel": "chat:1", "join_leave": True})
    await bob.result("subscribe", {"channel": "chat:1"})
    bob_info = {"user": "43", "client": bob.session.client, "conn_info": {"name": "Bob"}}
    assert ann.pushes("join") == [{"channel": "chat:1", "join": {"info": bob_info}}]
    await bob.result("unsubscribe", {"channel": "chat:1"})
    assert ann.pushes("leave") == [{"channel": "chat:1", "leave": {"info": bob_info}}]
    # Bob didn't ask for them.
    assert bob.pushes("join") == bob.pushes("leave") == []


async def test_leave_on_disconnect(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "43")
    await ann.result("subscribe", {"channel": "chat:1", "join_leave": True})
    await bob.result("subscribe", {"channel": "chat:1"})
    bob.session.closed_by_transport()
    await wait_until(lambda: bool(ann.pushes("leave")), what="the leave push")
    assert ann.pushes("leave")[0]["leave"]["info"]["client"] == bob.session.client


async def test_no_join_leave_without_the_option(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "43")
    await ann.result("subscribe", {"channel": "news", "join_leave": True})
    await bob.result("subscribe", {"channel": "news"})
    await bob.result("unsubscribe", {"channel": "news"})
    assert ann.pushes() == []


async def test_publications_during_subscribe_without_history(make_node: MakeNode, connect: ConnectClient) -> None:
    presence = GatedPresence()
    node = await make_node(presence_manager=presence)

    @node.subscribing
    async def on_subscribe(context: SubscribeContext) -> None:
        return None

    client = await connect(node)
    async with presence.gate.holding(client.send({"id": 2, "subscribe": {"channel": "personal:room"}})):
        await node.publish("personal:room", {"n": 1})
    assert client.pushes("pub") == [{"channel": "personal:room", "pub": {"data": {"n": 1}, "time": ANY}}]
    assert client.session.subscriptions["personal:room"].offset == 0


async def test_an_unsubscribe_during_subscribe_is_not_undone(make_node: MakeNode, connect: ConnectClient) -> None:
    presence = GatedPresence()
    node = await make_node(presence_manager=presence)
    watcher, client = await connect(node, "41"), await connect(node, "42")
    await watcher.result("subscribe", {"channel": "chat:1", "join_leave": True})
    async with presence.gate.holding(client.send({"id": 2, "subscribe": {"channel": "chat:1"}})):
        assert await node.unsubscribe("42", "chat:1") == 1
        await node.publish("chat:1", {"n": 1})
    assert "chat:1" not in client.session.subscriptions
    assert client.publications() == []
    # Nothing of the ended subscription stays: no presence, and no join without its leave.
    assert list(await node.presence("chat:1")) == [watcher.session.client]
    assert watcher.pushes("join") == []


async def test_a_disconnect_during_subscribe_leaves_no_presence(make_node: MakeNode, connect: ConnectClient) -> None:
    presence = GatedPresence()
    node = await make_node(presence_manager=presence)
    client = await connect(node, "42")
    async with presence.gate.holding(client.send({"id": 2, "subscribe": {"channel": "chat:1"}})):
        client.session.closed_by_transport()
        await wait_until(lambda: not node._tasks, what="the cleanup")
    assert await node.presence("chat:1") == {}
    assert node.channels() == {}


async def test_a_new_epoch_unsubscribes_positioned_subscribers(make_node: MakeNode, connect: ConnectClient) -> None:
    clock = FakeClock()
    node = await make_node(broker=MemoryBroker(meta_ttl=10, clock=clock))
    for n in range(3):
        await node.publish("feed:1", {"n": n})
    client = await connect(node)
    result = await client.result("subscribe", {"channel": "feed:1"})
    assert result["offset"] == 3
    clock.now += 1000  # the stream expires and starts again, from offset 1, in a new epoch
    await node.publish("feed:1", {"n": "new"})
    await wait_until(lambda: bool(client.pushes("unsubscribe")), what="the unsubscribe push")
    assert client.pushes("unsubscribe") == [
        {"channel": "feed:1", "unsubscribe": {"code": 2500, "reason": "insufficient state"}}
    ]
    assert client.publications() == []


# --- delta compression and tags filters -------------------------------------------------------


async def test_an_unknown_delta_type_is_a_bad_request(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node()
    client = await connect(node)
    await client.send({"id": 9, "subscribe": {"channel": "news", "delta": "xdelta"}})
    await wait_until(lambda: client.closed_with is not None, what="the disconnect")
    assert client.closed_with == 3501


async def test_delta_is_granted_only_where_allowed(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(
        channel=ChannelOptions(allow_subscribe_for_client=True),
        namespaces={"board": ChannelOptions(allow_subscribe_for_client=True, allowed_delta_types=["fossil"])},
    )
    client = await connect(node)
    assert (await client.result("subscribe", {"channel": "board:1", "delta": "fossil"}))["delta"] is True
    assert "delta" not in await client.result("subscribe", {"channel": "news", "delta": "fossil"})
