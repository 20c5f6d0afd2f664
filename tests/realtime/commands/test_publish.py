"""commands.publish: publish and send, permissions, rate limits, the on_publish and on_message hooks."""

from __future__ import annotations

import base64
from typing import Any

from wavecast.codes import Disconnect, Error
from wavecast.engines import Publication
from wavecast.exceptions import CommandError, DisconnectError
from wavecast.realtime import MessageContext, Node, PublishContext, PublishResult
from wavecast.realtime.codec import ProtobufCodec

from ..helpers import ConnectClient, MakeNode


async def test_publish_as_a_subscriber(node: Node, connect: ConnectClient) -> None:
    ann = await connect(node, "42", info={"name": "Ann"}, subscribe="news")
    bob = await connect(node, "43", subscribe="news")
    assert await ann.result("publish", {"channel": "news", "data": {"text": "hi"}}) == {}
    for client in (ann, bob):
        [push] = client.pushes("pub")
        assert push["pub"]["data"] == {"text": "hi"}
        assert push["pub"]["info"] == {"user": "42", "client": ann.session.client, "conn_info": {"name": "Ann"}}
        assert push["pub"]["time"] > 0
    assert node.stats.publications == 1


async def test_publish_from_a_protobuf_client(node: Node, connect: ConnectClient) -> None:
    publications: list[Publication] = []
    node.broker.publish = _recording(node.broker.publish, publications)  # type: ignore[method-assign]
    client = await connect(node, codec=ProtobufCodec)
    await client.call("subscribe", {"channel": "news"})
    for data in (b"\x00\xff", b'{"json":true}'):
        reply = await client.call("publish", {"channel": "news", "data": base64.b64encode(data).decode()})
        assert reply == {"id": reply["id"], "publish": {}}
    # Bytes that aren't JSON are binary; JSON bytes from a protobuf client can reach JSON clients.
    assert [(p.data, p.binary) for p in publications] == [(b"\x00\xff", True), (b'{"json":true}', False)]


async def test_on_publish_replacing_data_decides_whether_it_is_binary(node: Node, connect: ConnectClient) -> None:
    publications: list[Publication] = []
    node.broker.publish = _recording(node.broker.publish, publications)  # type: ignore[method-assign]

    @node.publishing
    async def to_binary(ctx: PublishContext) -> PublishResult:
        return PublishResult(data=b"\x01binary")

    client = await connect(node)
    await client.result("publish", {"channel": "news", "data": {"a": 1}})
    assert [(p.data, p.binary) for p in publications] == [(b"\x01binary", True)]


def _recording(publish: Any, into: list[Publication]) -> Any:
    async def record(channel: str, publication: Publication, **kwargs: Any) -> Any:
        into.append(publication)
        return await publish(channel, publication, **kwargs)

    return record


async def test_publish_carries_the_subscription_info(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", subscribe="news")
    client.session.subscriptions["news"].info = b'{"seat":3}'
    await client.result("publish", {"channel": "news", "data": 1})
    assert client.pushes("pub")[0]["pub"]["info"]["chan_info"] == {"seat": 3}


async def test_publish_without_being_subscribed(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("publish", {"channel": "news", "data": 1}) == 103


async def test_publish_where_not_allowed(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="feed:1")
    assert await client.error("publish", {"channel": "feed:1", "data": 1}) == 103
    assert await client.error("publish", {"channel": "plain:1", "data": 1}) == 103


async def test_publish_to_a_protected_namespace(make_node: MakeNode, connect: ConnectClient) -> None:
    from wavecast.realtime import ChannelOptions

    from ..helpers import NAMESPACES

    namespaces = {**NAMESPACES, "locked": ChannelOptions(protected=True, allow_publish_for_client=True)}
    node = await make_node(namespaces=namespaces)
    client = await connect(node)
    assert await client.error("publish", {"channel": "locked:1", "data": 1}) == 103


async def test_publish_errors(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
    assert await client.error("publish", {"channel": "news"}) == 107
    assert await client.error("publish", {"channel": "nope:1", "data": 1}) == 102
    assert await client.error("publish", {"channel": "", "data": 1}) == 107


async def test_publish_to_a_user_limited_channel(node: Node, connect: ConnectClient) -> None:
    ann, bob = await connect(node, "42", subscribe="chat:room#42,43"), await connect(node, "43")
    assert await ann.result("publish", {"channel": "chat:room#42,43", "data": 1}) == {}
    assert await bob.error("publish", {"channel": "chat:room#42", "data": 1}) == 103


async def test_too_many_publications(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(publication_rate=0.001, publication_burst=2)
    client = await connect(node, subscribe="news")
    await client.result("publish", {"channel": "news", "data": 1})
    await client.result("publish", {"channel": "news", "data": 2})
    reply = await client.call("publish", {"channel": "news", "data": 3})
    assert reply["error"] == {"code": 111, "message": "too many requests", "temporary": True}
    assert client.publications() == [1, 2]


async def test_on_publish_changes_the_publication(node: Node, connect: ConnectClient) -> None:
    contexts: list[PublishContext] = []

    @node.publishing
    async def on_publish(context: PublishContext) -> PublishResult:
        contexts.append(context)
        return PublishResult(data=b'{"clean":true}', tags={"checked": "yes"})

    client = await connect(node, subscribe="news")
    await client.result("publish", {"channel": "news", "data": {"dirty": True}})
    [context] = contexts
    assert (context.session, context.channel, context.data) == (client.session, "news", b'{"dirty": true}')
    [push] = client.pushes("pub")
    assert (push["pub"]["data"], push["pub"]["tags"]) == ({"clean": True}, {"checked": "yes"})


async def test_on_publish_keeps_the_data(node: Node, connect: ConnectClient) -> None:
    @node.publishing
    async def on_publish(context: PublishContext) -> PublishResult:
        return PublishResult(tags={"a": "b"})

    client = await connect(node, subscribe="news")
    await client.result("publish", {"channel": "news", "data": 7})
    assert client.publications() == [7]


async def test_on_publish_decides_permissions(node: Node, connect: ConnectClient) -> None:
    @node.publishing
    async def on_publish(context: PublishContext) -> None:
        return None

    client = await connect(node)
    # Not subscribed, and the options alone wouldn't allow it.
    assert await client.result("publish", {"channel": "plain:1", "data": 1}) == {}
    assert node.stats.publications == 1


async def test_on_publish_skips(node: Node, connect: ConnectClient) -> None:
    @node.publishing
    async def on_publish(context: PublishContext) -> PublishResult:
        return PublishResult(skip=True)

    client = await connect(node, subscribe="news")
    assert await client.result("publish", {"channel": "news", "data": 1}) == {}
    assert client.publications() == []
    assert node.stats.publications == 0


async def test_on_publish_refuses(node: Node, connect: ConnectClient) -> None:
    @node.publishing
    async def on_publish(context: PublishContext) -> None:
        raise CommandError(Error(400, "too loud"))

    client = await connect(node)
    reply = await client.call("publish", {"channel": "news", "data": 1})
    assert reply["error"] == {"code": 400, "message": "too loud"}


async def test_on_publish_disconnects(node: Node, connect: ConnectClient) -> None:
    @node.publishing
    async def on_publish(context: PublishContext) -> None:
        raise DisconnectError(Disconnect(4000, "reconnect please"))

    client = await connect(node)
    await client.send({"id": 2, "publish": {"channel": "news", "data": 1}})
    assert client.closed_with == 4000


async def test_publish_when_the_broker_fails(node: Node, connect: ConnectClient) -> None:
    from wavecast.exceptions import EngineError

    async def broken_publish(*args: object, **kwargs: object) -> None:
        raise EngineError("redis is down")

    node.broker.publish = broken_publish  # type: ignore[method-assign]
    client = await connect(node, subscribe="news")
    reply = await client.call("publish", {"channel": "news", "data": 1})
    assert reply["error"] == {"code": 100, "message": "internal server error", "temporary": True}
    assert not client.session.closed


async def test_publish_to_a_history_channel(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="chat:1")
    await client.result("publish", {"channel": "chat:1", "data": 1})
    await client.result("publish", {"channel": "chat:1", "data": 2})
    assert [p["pub"]["offset"] for p in client.pushes("pub")] == [1, 2]
    assert [p.data for p in (await node.history("chat:1")).publications] == [b"1", b"2"]


# --- send -----------------------------------------------------------------------------------


async def test_send_reaches_on_message(node: Node, connect: ConnectClient) -> None:
    contexts: list[MessageContext] = []

    @node.message
    async def on_message(context: MessageContext) -> None:
        contexts.append(context)

    client = await connect(node)
    client.new()
    await client.send({"send": {"data": {"hello": "server"}}})
    await client.send({"send": {}})
    assert [(c.session, c.data) for c in contexts] == [(client.session, b'{"hello": "server"}'), (client.session, None)]
    assert client.new() == []


async def test_send_without_a_hook_disconnects_3508(node: Node, connect: ConnectClient) -> None:
    # It was dropped in silence; Centrifuge disconnects with "not available", terminal, since
    # a send has no reply that could tell the client nothing reads its messages.
    client = await connect(node)
    client.new()
    await client.send({"send": {"data": 1}})
    assert client.closed_with == 3508


async def test_on_message_disconnects(node: Node, connect: ConnectClient) -> None:
    @node.message
    async def on_message(context: MessageContext) -> None:
        raise DisconnectError(Disconnect(4501, "spam"))

    client = await connect(node)
    await client.send({"send": {"data": 1}})
    assert client.closed_with == 4501


async def test_on_message_error_has_no_reply_to_go_in(node: Node, connect: ConnectClient) -> None:
    @node.message
    async def on_message(context: MessageContext) -> None:
        raise CommandError(Error(400, "nope"))

    client = await connect(node)
    client.new()
    await client.send({"send": {"data": 1}})
    # A send has no reply: an error without an id would read as a server ping to the client.
    assert client.new() == []
    assert not client.session.closed
    assert node.stats.errors[400] == 1


async def test_too_many_sends_disconnect_3013(make_node: MakeNode, connect: ConnectClient) -> None:
    received: list[bytes | None] = []
    node = await make_node(command_rate=0.001, command_burst=1)

    @node.message
    async def on_message(context: MessageContext) -> None:
        received.append(context.data)

    client = await connect(node)
    client.new()
    await client.send({"send": {"data": 1}})
    # Past the rate, a send had no reply to carry error 111 and was dropped in silence; as
    # Centrifuge does where no reply can carry the error, the client is told with 3013, and
    # reconnects.
    await client.send({"send": {"data": 2}})
    assert received == [b"1"]
    assert client.closed_with == 3013


async def test_no_command_rate_no_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(command_rate=None, command_burst=1, publication_rate=None)
    client = await connect(node, subscribe="news")
    for n in range(50):
        await client.result("publish", {"channel": "news", "data": n})
    assert len(client.publications()) == 50
