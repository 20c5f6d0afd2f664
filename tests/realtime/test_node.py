"""node: fan-out to local subscribers, slow consumers, the server-side API, lifecycle."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable

import pytest

from wavecast.codes import DISCONNECT_FORCE_RECONNECT, DISCONNECT_SERVER_ERROR, DISCONNECT_SHUTDOWN, DISCONNECT_SLOW
from wavecast.engines import ClientInfo, PresenceStats, Publication, StreamPosition
from wavecast.exceptions import ConfigError
from wavecast.realtime import DisconnectContext, Node, NodeConfig
from wavecast.realtime.codec import ProtobufCodec

from ..support.timing import MS, wait_until
from .helpers import Client, ConnectClient, MakeNode

NewClient = Callable[[Node], Client]


# --- fan-out ----------------------------------------------------------------------------------


async def test_fan_out_frames_once(node: Node, connect: ConnectClient) -> None:
    clients = [await connect(node, str(user)) for user in range(3)]
    for client in clients:
        await client.result("subscribe", {"channel": "news"})
    await node.publish("news", {"n": 1})
    messages = [client.transport.written[-1] for client in clients]
    assert all(message is messages[0] for message in messages)
    assert all(client.publications() == [{"n": 1}] for client in clients)
    assert node.stats.deliveries == 3


async def test_fan_out_frames_once_per_codec(node: Node, connect: ConnectClient) -> None:
    texts = [await connect(node, str(user)) for user in range(2)]
    binaries = [await connect(node, str(user), codec=ProtobufCodec) for user in range(2, 5)]
    for client in texts:
        await client.result("subscribe", {"channel": "news"})
    for client in binaries:
        await client.call("subscribe", {"channel": "news"})
    assert node.hub.binary_subscribers == {"news": 3}
    await node.publish("news", {"n": 1})
    text_messages = [client.transport.written[-1] for client in texts]
    binary_messages = [client.transport.written[-1] for client in binaries]
    assert all(message is text_messages[0] for message in text_messages)
    assert all(message is binary_messages[0] for message in binary_messages)
    assert text_messages[0].opcode == 1 and binary_messages[0].opcode == 2
    assert all(client.publications() == [{"n": 1}] for client in texts)
    assert all(client.publications() == [base64.b64encode(b'{"n":1}').decode()] for client in binaries)
    assert node.stats.deliveries == 5
    assert node.stats.bytes_out == 2 * len(text_messages[0]) + 3 * len(binary_messages[0])


async def test_a_subscriber_that_fails_harms_no_other(
    node: Node, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    clients = [await connect(node, str(user)) for user in range(3)]
    for client in clients:
        await client.result("subscribe", {"channel": "feed:1"})
    broken = clients[1]

    def fail(message: object) -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a write that fails")

    broken.transport.write = fail  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="wavecast.realtime"):
        position = await node.publish("feed:1", {"n": 1})
    assert position is not None and position.offset == 1
    for client in (clients[0], clients[2]):
        assert client.publications() == [{"n": 1}]
        assert client.session.subscriptions["feed:1"].offset == 1
    # The failing one is disconnected, to reconnect and recover what it didn't get.
    assert broken.transport.closes == [DISCONNECT_SERVER_ERROR]
    assert broken.session.closed
    assert "a write that fails" in caplog.text
    assert node.stats.deliveries == 2


async def test_binary_data_reaches_protobuf_clients_only(node: Node, connect: ConnectClient) -> None:
    text, binary = await connect(node, "1"), await connect(node, "2", codec=ProtobufCodec)
    await text.result("subscribe", {"channel": "news"})
    await binary.call("subscribe", {"channel": "news"})
    await node.publish("news", b"\x00\xff")
    assert binary.publications() == [base64.b64encode(b"\x00\xff").decode()]
    # A JSON client can't take it: 3506, as Centrifugo disconnects it.
    assert text.publications() == []
    assert text.closed_with == 3506
    assert node.stats.deliveries == 1
    await node.publish("news", b"[1]")  # bytes that are JSON go to JSON clients as they are
    assert binary.publications()[-1] == base64.b64encode(b"[1]").decode()


async def test_protobuf_subscribers_leaving_are_no_longer_counted(node: Node, connect: ConnectClient) -> None:
    binary = await connect(node, "2", codec=ProtobufCodec)
    await binary.call("subscribe", {"channel": "news"})
    binary.session.disconnect()
    await wait_until(lambda: not node.hub.binary_subscribers, what="the protobuf subscriber to go")


async def test_join_and_leave_in_each_form(node: Node, connect: ConnectClient) -> None:
    text, binary = await connect(node, "1"), await connect(node, "2", codec=ProtobufCodec)
    await text.result("subscribe", {"channel": "chat:1", "join_leave": True})
    await binary.call("subscribe", {"channel": "chat:1", "join_leave": True})
    text.new()
    binary.new()
    node.on_join("chat:1", ClientInfo(client="remote", user="9"))
    assert text.new() == [{"push": {"channel": "chat:1", "join": {"info": {"user": "9", "client": "remote"}}}}]
    assert binary.new() == [{"push": {"channel": "chat:1", "join": {"info": {"user": "9", "client": "remote"}}}}]


async def test_publications_keep_their_order(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.result("subscribe", {"channel": "chat:1"})
    for n in range(20):
        await node.publish("chat:1", n)
    assert client.publications() == list(range(20))


async def test_no_subscribers_no_work(node: Node) -> None:
    node.on_publication("news", Publication(data=b"1"), None)
    node.on_join("news", ClientInfo(client="c", user="u"))
    assert node.stats.deliveries == 0


async def test_join_and_leave_go_to_subscribers_that_asked(node: Node, connect: ConnectClient) -> None:
    asked, other = await connect(node, "1"), await connect(node, "2")
    await asked.result("subscribe", {"channel": "chat:1", "join_leave": True})
    await other.result("subscribe", {"channel": "chat:1"})
    asked.new()
    info = ClientInfo(client="remote", user="9", conn_info=b'{"a":1}')
    node.on_join("chat:1", info)
    node.on_leave("chat:1", info)
    expected = {"user": "9", "client": "remote", "conn_info": {"a": 1}}
    assert asked.new() == [
        {"push": {"channel": "chat:1", "join": {"info": expected}}},
        {"push": {"channel": "chat:1", "leave": {"info": expected}}},
    ]
    assert other.pushes() == []


# --- slow consumers ---------------------------------------------------------------------------


async def test_slow_consumer_disconnect(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=200)
    slow, fast = await connect(node, "1"), await connect(node, "2")
    for client in (slow, fast):
        await client.result("subscribe", {"channel": "news"})
    slow.transport.is_writable = False
    for n in range(20):
        await node.publish("news", {"n": n, "padding": "x" * 20})
    assert slow.transport.closes == [DISCONNECT_SLOW]
    assert slow.session.closed
    assert slow.session.outbox.size == 0
    assert node.stats.slow_consumer_actions["disconnect"] == 1
    assert len(fast.publications()) == 20


async def test_slow_consumer_drop_oldest(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=200)
    client = await connect(node)
    await client.result("subscribe", {"channel": "drop:1"})
    client.new()
    client.transport.is_writable = False
    for n in range(50):
        await node.publish("drop:1", {"n": n})
        assert client.session.outbox.size <= 200
    assert not client.session.closed
    client.transport.resume()
    received = [data["n"] for data in client.publications()]
    # The newest, in order, and as many as fit.
    assert received == list(range(50 - len(received), 50))
    assert 0 < len(received) < 50
    # Each dropped publication counts once; those that only waited don't (all 50 did).
    assert node.stats.slow_consumer_actions == {"drop_oldest": 50 - len(received)}


async def test_slow_consumer_conflate(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=10_000)
    client = await connect(node)
    await client.result("subscribe", {"channel": "conflate:1"})
    client.transport.is_writable = False
    for n in range(30):
        await node.publish("conflate:1", {"n": n, "key": n % 3}, tags={"key": str(n % 3)})
    await node.publish("conflate:1", {"n": 99, "key": None})
    assert len(client.session.outbox) == 4
    # 27 replaced by a newer publication of their key; none dropped.
    assert node.stats.slow_consumer_actions == {"conflate": 27}
    client.transport.resume()
    # The latest per key, each in the place of the first one of its key.
    assert client.publications() == [
        {"n": 27, "key": 0},
        {"n": 28, "key": 1},
        {"n": 29, "key": 2},
        {"n": 99, "key": None},
    ]


async def test_slow_consumer_conflate_per_channel(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=10_000)
    client = await connect(node)
    await client.result("subscribe", {"channel": "conflate:1"})
    await client.result("subscribe", {"channel": "conflate:2"})
    client.transport.is_writable = False
    for n in range(5):
        await node.publish("conflate:1", n)
        await node.publish("conflate:2", n)
    client.transport.resume()
    assert [(p["channel"], p["pub"]["data"]) for p in client.pushes("pub")] == [("conflate:1", 4), ("conflate:2", 4)]


async def test_slow_consumer_conflate_stays_bounded(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=150)
    client = await connect(node)
    await client.result("subscribe", {"channel": "conflate:1"})
    client.transport.is_writable = False
    for n in range(100):
        await node.publish("conflate:1", {"n": n}, tags={"key": str(n)})
        assert client.session.outbox.size <= 150
    assert not client.session.closed


async def test_draining_delivers_in_order(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.result("subscribe", {"channel": "chat:1"})
    client.new()
    client.transport.is_writable = False
    await node.publish("chat:1", 1)
    await client.send({"id": 50, "ping": {}})
    await node.publish("chat:1", 2)
    assert client.new() == []
    client.transport.resume()
    assert [reply.get("id") or reply["push"]["pub"]["data"] for reply in client.new()] == [1, 50, 2]
    # Writable again: straight to the transport.
    await node.publish("chat:1", 3)
    assert client.session.outbox.size == 0
    assert client.publications()[-1] == 3


# --- the server-side API ----------------------------------------------------------------------


async def test_publish(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.result("subscribe", {"channel": "news"})
    assert await node.publish("news", b'{"raw":true}') is None
    assert await node.publish("news", {"value": [1, 2]}, tags={"t": "1"}) is None
    info = ClientInfo(client="server", user="bot")
    await node.publish("news", "text", info=info)
    pushes = client.pushes("pub")
    assert [p["pub"]["data"] for p in pushes] == [{"raw": True}, {"value": [1, 2]}, "text"]
    assert pushes[1]["pub"]["tags"] == {"t": "1"}
    assert pushes[2]["pub"]["info"] == {"user": "bot", "client": "server"}


async def test_publish_returns_the_position(node: Node) -> None:
    first = await node.publish("feed:1", 1)
    second = await node.publish("feed:1", 2)
    assert first is not None and second == StreamPosition(2, first.epoch)


async def test_publish_refuses_what_it_cannot_send(node: Node) -> None:
    with pytest.raises(ConfigError, match="unknown namespace in channel 'nope:1'"):
        await node.publish("nope:1", 1)
    assert node.stats.publications == 0


async def test_broadcast(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.result("subscribe", {"channel": "news"})
    await client.result("subscribe", {"channel": "chat:1"})
    positions = await node.broadcast(["news", "chat:1"], {"all": True})
    assert positions[0] is None
    assert positions[1] is not None and positions[1].offset == 1
    assert client.publications() == [{"all": True}, {"all": True}]


async def test_presence_and_stats(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "43")
    await ann.result("subscribe", {"channel": "chat:1"})
    await bob.result("subscribe", {"channel": "chat:1"})
    assert set(await node.presence("chat:1")) == {ann.session.client, bob.session.client}
    assert await node.presence_stats("chat:1") == PresenceStats(num_clients=2, num_users=2)
    with pytest.raises(ConfigError, match="presence is off"):
        await node.presence("news")
    with pytest.raises(ConfigError, match="presence is off"):
        await node.presence_stats("news")
    with pytest.raises(ConfigError, match="unknown namespace"):
        await node.presence("nope:1")


async def test_history_and_history_remove(node: Node) -> None:
    for n in range(3):
        await node.publish("feed:1", n)
    result = await node.history("feed:1", limit=2, reverse=True)
    assert [p.data for p in result.publications] == [b"2", b"1"]
    since = await node.history("feed:1", since=StreamPosition(1, result.position.epoch))
    assert [p.offset for p in since.publications] == [2, 3]
    await node.history_remove("feed:1")
    after = await node.history("feed:1")
    assert after.publications == []
    assert after.position == result.position
    with pytest.raises(ConfigError, match="history is off"):
        await node.history("news")


async def test_disconnect(node: Node, connect: ConnectClient) -> None:
    ann1, ann2, bob = await connect(node, "42"), await connect(node, "42"), await connect(node, "43")
    assert await node.disconnect("42") == 2
    assert ann1.closed_with == ann2.closed_with == 3503
    assert not bob.session.closed
    assert await node.disconnect("42") == 0


async def test_disconnect_one_client(node: Node, connect: ConnectClient) -> None:
    ann1, ann2 = await connect(node, "42"), await connect(node, "42")
    assert await node.disconnect("42", DISCONNECT_FORCE_RECONNECT, client=ann1.session.client) == 1
    assert ann1.closed_with == 3011
    assert not ann2.session.closed
    # The client must belong to the user.
    assert await node.disconnect("43", client=ann2.session.client) == 0
    assert await node.disconnect("42", client="nobody") == 0


async def test_unsubscribe(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "43")
    for client in (ann, bob):
        await client.result("subscribe", {"channel": "news"})
    assert await node.unsubscribe("42", "news") == 1
    assert ann.pushes("unsubscribe") == [
        {"channel": "news", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
    ]
    assert "news" not in ann.session.subscriptions
    assert bob.session.is_subscribed("news")
    await node.publish("news", 1)
    assert ann.publications() == []
    assert bob.publications() == [1]
    assert await node.unsubscribe("42", "news") == 0


async def test_send(node: Node, connect: ConnectClient) -> None:
    ann, ann2, bob = await connect(node, "42"), await connect(node, "42"), await connect(node, "43")
    assert await node.send("42", {"text": "hi"}) == 2
    for client in (ann, ann2):
        assert client.pushes("message") == [{"message": {"data": {"text": "hi"}}}]
    assert bob.pushes() == []
    # One connection of the user, by its client id; another user's client id sends nothing.
    assert await node.send("42", "only you", client=ann.session.client) == 1
    assert ann.pushes("message")[-1] == {"message": {"data": "only you"}}
    assert len(ann2.pushes("message")) == 1
    assert await node.send("43", "no", client=ann.session.client) == 0
    assert await node.send("nobody", "hi") == 0


async def test_send_bytes_in_each_form(node: Node, connect: ConnectClient) -> None:
    text, binary = await connect(node, "42"), await connect(node, "42", codec=ProtobufCodec)
    assert await node.send("42", b'{"n":1}') == 2
    assert text.pushes("message") == [{"message": {"data": {"n": 1}}}]
    assert binary.pushes("message") == [{"message": {"data": base64.b64encode(b'{"n":1}').decode()}}]
    # Binary data reaches the protobuf client; the JSON one can't take it: 3506, as for publications.
    assert await node.send("42", b"\x00\xff") == 1
    assert binary.pushes("message")[-1] == {"message": {"data": base64.b64encode(b"\x00\xff").decode()}}
    assert text.closed_with == 3506


async def test_send_skips_connecting_and_closed_sessions(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    client.session.disconnect()
    assert await node.send("42", "hi") == 0
    assert client.pushes("message") == []


async def test_subscribe(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    await node.publish("feed:1", 0)
    assert await node.subscribe("42", "feed:1") == 1
    [push] = client.pushes("subscribe")
    assert push["channel"] == "feed:1"
    assert (push["subscribe"]["recoverable"], push["subscribe"]["positioned"], push["subscribe"]["offset"]) == (
        True,
        True,
        1,
    )
    assert client.session.subscriptions["feed:1"].server_side
    await node.publish("feed:1", 1)
    assert client.publications() == [1]
    # Already subscribed: nothing to do.
    assert await node.subscribe("42", "feed:1") == 0


async def test_subscribe_a_plain_channel(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    assert await node.subscribe("42", "news") == 1
    assert client.pushes("subscribe") == [{"channel": "news", "subscribe": {}}]


async def test_subscribe_to_an_unknown_namespace(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    with pytest.raises(ConfigError, match="unknown namespace"):
        await node.subscribe("42", "nope:1")
    assert client.pushes() == []


async def test_subscribe_skips_connecting_and_closed_sessions(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    client.session.disconnect()
    assert await node.subscribe("42", "news") == 0


async def test_channels_and_info(node: Node, connect: ConnectClient) -> None:
    ann, bob, bob2 = await connect(node, "42"), await connect(node, "43"), await connect(node, "43")
    await ann.result("subscribe", {"channel": "news"})
    await bob.result("subscribe", {"channel": "news"})
    await bob2.result("subscribe", {"channel": "chat:1"})
    assert node.channels() == {"news": 2, "chat:1": 1}
    assert node.info() == {
        "name": "wavecast",
        "num_clients": 3,
        "num_users": 2,
        "num_channels": 2,
        "num_subscriptions": 3,
    }


# --- hooks and lifecycle ----------------------------------------------------------------------


async def test_on_disconnect(node: Node, connect: ConnectClient, new_client: NewClient) -> None:
    contexts: list[DisconnectContext] = []

    @node.disconnected
    async def on_disconnect(context: DisconnectContext) -> None:
        contexts.append(context)

    client = await connect(node)
    never_connected = new_client(node)
    never_connected.session.disconnect()
    await node.disconnect("42")
    await wait_until(lambda: bool(contexts), what="on_disconnect")
    await asyncio.sleep(0)
    assert [(c.session, c.disconnect.code) for c in contexts] == [(client.session, 3503)]


async def test_a_failing_on_disconnect_is_logged(
    node: Node, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    @node.disconnected
    async def on_disconnect(context: DisconnectContext) -> None:
        raise RuntimeError("hook bug")

    await connect(node)
    with caplog.at_level(logging.ERROR, logger="wavecast.realtime"):
        await node.disconnect("42")
        await wait_until(lambda: "background task failed" in caplog.text, what="the log")
    assert not node._tasks


async def test_a_failing_cleanup_is_logged(
    node: Node, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_remove(channel: str, client: str, user: str) -> None:
        raise RuntimeError("engine down")

    node.presence_manager.remove_presence = broken_remove  # type: ignore[method-assign]
    client = await connect(node)
    await client.result("subscribe", {"channel": "chat:1"})
    await client.result("subscribe", {"channel": "news"})
    with caplog.at_level(logging.WARNING, logger="wavecast.realtime"):
        client.session.closed_by_transport()
        await wait_until(lambda: not node._tasks, what="the cleanup")
    assert "cleanup of" in caplog.text
    # The other subscription was cleaned up anyway.
    assert node.channels() == {}


async def test_presence_is_refreshed(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(presence_ttl=250 * MS, presence_update_interval=10 * MS)
    client = await connect(node)
    await client.result("subscribe", {"channel": "chat:1"})
    await client.result("subscribe", {"channel": "news"})  # no presence to refresh there
    await asyncio.sleep(400 * MS)  # longer than presence_ttl
    assert list(await node.presence("chat:1")) == [client.session.client]


async def test_a_failing_presence_refresh_is_logged(
    make_node: MakeNode, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node(presence_ttl=1.0, presence_update_interval=5 * MS)
    client = await connect(node)
    await client.result("subscribe", {"channel": "chat:1"})

    async def broken_add(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine down")

    node.presence_manager.add_presence = broken_add  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="wavecast.realtime"):
        await wait_until(lambda: "presence refresh failed" in caplog.text, what="the log")


async def test_shutdown_disconnects_everyone(node: Node, connect: ConnectClient) -> None:
    contexts: list[DisconnectContext] = []

    @node.disconnected
    async def on_disconnect(context: DisconnectContext) -> None:
        contexts.append(context)

    clients = [await connect(node, str(n)) for n in range(3)]
    for client in clients:
        await client.result("subscribe", {"channel": "chat:1"})
    await node.shutdown()
    assert [client.closed_with for client in clients] == [3001] * 3
    assert [c.disconnect for c in contexts] == [DISCONNECT_SHUTDOWN] * 3
    assert not node.started
    assert node.hub.num_sessions == 0


async def test_start_twice_and_context_manager() -> None:
    async with Node(NodeConfig()) as node:
        assert node.started
        task = node.presence_tracker._refresher.task
        await node.start()
        assert node.presence_tracker._refresher.task is task
    assert not node.started
    assert node.presence_tracker._refresher.task is None


async def test_decorators_set_the_hooks() -> None:
    node = Node()

    async def hook(context: object) -> None:
        return None

    assert node.connecting(hook) is hook and node.on_connecting is hook
    assert node.subscribing(hook) is hook and node.on_subscribe is hook
    assert node.publishing(hook) is hook and node.on_publish is hook
    assert node.disconnected(hook) is hook and node.on_disconnect is hook
    assert node.message(hook) is hook and node.on_message is hook
    assert node.rpc("m")(hook) is hook and node.rpc_handlers == {"m": hook}


async def test_continuity_lost_resubscribes_positioned_subscribers(node: Node, connect: ConnectClient) -> None:
    positioned, plain = await connect(node, "1"), await connect(node, "2")
    await positioned.result("subscribe", {"channel": "chat:1", "positioned": True})
    await plain.result("subscribe", {"channel": "chat:1"})
    node.on_continuity_lost(["chat:1", "nobody-here"])
    await wait_until(lambda: bool(positioned.pushes("unsubscribe")), what="the unsubscribe push")
    assert positioned.pushes("unsubscribe") == [
        {"channel": "chat:1", "unsubscribe": {"code": 2500, "reason": "insufficient state"}}
    ]
    assert plain.pushes("unsubscribe") == []
    assert plain.session.is_subscribed("chat:1")


async def test_a_publication_without_time(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.result("subscribe", {"channel": "news"})
    node.on_publication("news", Publication(data=b"1"), None)
    assert client.pushes("pub") == [{"channel": "news", "pub": {"data": 1}}]
    assert node.stats.latency_counts == [0] * len(node.stats.latency_counts)


async def test_refresh(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42"), await connect(node, "42")
    assert await node.refresh("42", client=bob.session.client, expire_at=2_000_000_000) == 1
    assert bob.session.expire_at == 2_000_000_000
    assert ann.session.expire_at == 0
    assert await node.refresh("42", expired=True) == 2
    assert ann.closed_with == bob.closed_with == 3005
    assert await node.refresh("42") == 0


async def test_uptime(node: Node) -> None:
    first = node.uptime
    assert first >= 0
    assert node.uptime >= first


async def test_concurrent_first_subscribers_subscribe_the_broker_once(node: Node, connect: ConnectClient) -> None:
    calls: list[str] = []
    release = asyncio.Event()
    subscribe = node.broker.subscribe

    async def slow_subscribe(channel: str) -> None:
        calls.append(channel)
        await release.wait()
        await subscribe(channel)

    node.broker.subscribe = slow_subscribe  # type: ignore[method-assign]
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
    release = asyncio.Event()
    subscribe = node.broker.subscribe

    async def slow_subscribe(channel: str) -> None:
        await release.wait()
        await subscribe(channel)

    node.broker.subscribe = slow_subscribe  # type: ignore[method-assign]
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
    release = asyncio.Event()
    unsubscribe = node.broker.unsubscribe

    async def slow_unsubscribe(channel: str) -> None:
        await release.wait()
        await unsubscribe(channel)

    node.broker.unsubscribe = slow_unsubscribe  # type: ignore[method-assign]
    ann, bob = await connect(node, "1"), await connect(node, "2")
    await ann.result("subscribe", {"channel": "news"})
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

    client = await connect(node)
    await client.result("subscribe", {"channel": "news"})
    node.broker.unsubscribe = broken_unsubscribe  # type: ignore[method-assign]
    node.hub.remove_subscriber("news", client.session)
    with pytest.raises(EngineError):
        await node.subscribers._sync("news")
    # Else every later subscriber would wait for a change that no longer happens.
    assert node.subscribers._locks == {}


async def test_expired_subscriptions_end_with_the_presence_update(make_node: MakeNode, connect: ConnectClient) -> None:
    import time

    node = await make_node(presence_ttl=1.0, presence_update_interval=5 * MS, client_expired_close_delay=1 * MS)
    client = await connect(node)
    await client.result("subscribe", {"channel": "news"})
    await client.result("subscribe", {"channel": "chat:1"})
    client.session.subscriptions["news"].expire_at = int(time.time()) - 1
    await wait_until(lambda: client.session.closed, what="the expiry")
    assert client.closed_with == 3006
