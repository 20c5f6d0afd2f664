"""api: the server-side API of a node, as an application or the HTTP API uses it."""

from __future__ import annotations

import base64

import pytest

from wavecast.codes import DISCONNECT_FORCE_RECONNECT
from wavecast.engines import ClientInfo, PresenceStats, StreamPosition
from wavecast.exceptions import ConfigError
from wavecast.realtime import Node
from wavecast.realtime.codec import ProtobufCodec

from .helpers import ConnectClient


async def test_publish(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
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
    client = await connect(node, subscribe=["news", "chat:1"])
    positions = await node.broadcast(["news", "chat:1"], {"all": True})
    assert positions[0] is None
    assert positions[1] is not None and positions[1].offset == 1
    assert client.publications() == [{"all": True}, {"all": True}]


async def test_presence_and_stats(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42", subscribe="chat:1"), await connect(node, "43", subscribe="chat:1")
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
    ann, bob = await connect(node, "42", subscribe="news"), await connect(node, "43", subscribe="news")
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
    for user, channel in (("42", "news"), ("43", "news"), ("43", "chat:1")):
        await connect(node, user, subscribe=channel)
    assert node.channels() == {"news": 2, "chat:1": 1}
    assert node.info() == {
        "name": "wavecast",
        "num_clients": 3,
        "num_users": 2,
        "num_channels": 2,
        "num_subscriptions": 3,
    }


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
