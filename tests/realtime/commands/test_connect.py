"""commands.connect: tokens, anonymous clients, the on_connecting hook, limits, server-side channels."""

from __future__ import annotations

import asyncio
import time

import pytest

from wavecast.codes import Disconnect, Error
from wavecast.exceptions import CommandError, DisconnectError
from wavecast.realtime import ConnectingContext, ConnectResult, Node
from wavecast.version import version

from ...support.timing import wait_until
from ...support.tokens import make_token
from ..helpers import ConnectClient, MakeNode, NewClient, publish_in_stream


async def test_connect_with_a_token(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    result = await client.result(
        "connect", {"token": make_token("42", ttl=None, info={"name": "Ann"}), "name": "js", "version": "5.0.0"}
    )
    assert result == {"client": client.session.client, "version": version, "ping": 25, "pong": True, "node": "wavecast"}
    assert client.session.user == "42"
    assert client.session.info == b'{"name":"Ann"}'
    assert not client.session.connecting
    assert node.hub.session(client.session.client) is client.session


async def test_connect_with_an_expiring_token(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    result = await client.result("connect", {"token": make_token("42", ttl=600)})
    assert result["expires"] is True
    assert 590 < result["ttl"] <= 600
    assert client.session.expire_at > time.time()


async def test_token_meta_is_kept(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    await client.result("connect", {"token": make_token("42", ttl=None, meta={"plan": "pro"})})
    assert client.session.meta == b'{"plan":"pro"}'


async def test_expired_token(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    assert await client.error("connect", {"token": make_token("42", ttl=-1)}) == 109
    assert client.session.connecting


async def test_invalid_token(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    await client.send({"id": 1, "connect": {"token": "not-a-token"}})
    assert client.closed_with == 3500


async def test_subscription_token(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    await client.send({"id": 1, "connect": {"token": make_token("42", ttl=None, channel="secret:1")}})
    assert client.closed_with == 3500
    assert node.hub.num_sessions == 0


async def test_token_without_keys(make_node: MakeNode, new_client: NewClient) -> None:
    node = await make_node(token_hmac_secret_key="")
    client = new_client(node)
    await client.send({"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    assert client.closed_with == 3500


async def test_anonymous_refused(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    assert await client.error("connect") == 101
    assert client.session.connecting
    # The client may try again, with a token.
    await client.result("connect", {"token": make_token("42", ttl=None)})
    assert client.session.user == "42"


async def test_anonymous_allowed(make_node: MakeNode, new_client: NewClient) -> None:
    node = await make_node(allow_anonymous_connect_without_token=True)
    client = new_client(node)
    result = await client.result("connect")
    assert result["client"] == client.session.client
    assert client.session.user == ""
    assert node.hub.user_sessions("") == [client.session]


async def test_anonymous_token(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    await client.result("connect", {"token": make_token("", ttl=None)})
    assert client.session.user == ""


async def test_connect_twice(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.send({"id": 5, "connect": {"token": make_token("42", ttl=None)}})
    assert client.closed_with == 3501


async def test_connection_limit(make_node: MakeNode, connect: ConnectClient, new_client: NewClient) -> None:
    node = await make_node(user_connection_limit=2)
    await connect(node, "42")
    await connect(node, "42")
    await connect(node, "43")
    client = new_client(node)
    await client.send({"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    assert client.closed_with == 3504
    assert len(node.hub.user_sessions("42")) == 2


async def test_no_connection_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(user_connection_limit=None)
    for _ in range(150):  # past the default of 100
        await connect(node, "42")
    assert len(node.hub.user_sessions("42")) == 150


async def test_on_connecting_grants_a_user_and_channels(node: Node, new_client: NewClient) -> None:
    contexts: list[ConnectingContext] = []

    @node.connecting
    async def on_connecting(context: ConnectingContext) -> ConnectResult:
        contexts.append(context)
        return ConnectResult(user="7", info=b'{"name":"Bob"}', channels=["news", "chat:1"], data=b'{"hello":1}')

    client = new_client(node)
    result = await client.result("connect", {"data": {"ask": True}, "name": "python", "version": "0.4"})
    assert result["data"] == {"hello": 1}
    assert set(result["subs"]) == {"news", "chat:1"}
    assert "recoverable" not in result["subs"]["chat:1"]
    assert client.session.user == "7"
    assert client.session.info == b'{"name":"Bob"}'
    assert [context.client for context in contexts] == [client.session.client]
    [context] = contexts
    assert (context.transport, context.request, context.token_user) == ("websocket", None, None)
    assert (context.data, context.name, context.version) == (b'{"ask": true}', "python", "0.4")
    # The server-side subscriptions are live right after the reply.
    assert client.session.is_subscribed("news")
    await node.publish("news", {"n": 1})
    assert client.publications("news") == [{"n": 1}]


async def test_on_connecting_sees_the_token_user(node: Node, new_client: NewClient) -> None:
    users: list[str | None] = []

    @node.connecting
    async def on_connecting(context: ConnectingContext) -> None:
        users.append(context.token_user)

    client = new_client(node)
    await client.result("connect", {"token": make_token("42", ttl=None)})
    assert users == ["42"]
    assert client.session.user == "42"


async def test_on_connecting_returning_none_leaves_anonymous_refused(node: Node, new_client: NewClient) -> None:
    @node.connecting
    async def on_connecting(context: ConnectingContext) -> None:
        return None

    client = new_client(node)
    assert await client.error("connect") == 101


async def test_on_connecting_refuses_with_an_error(node: Node, new_client: NewClient) -> None:
    @node.connecting
    async def on_connecting(context: ConnectingContext) -> None:
        raise CommandError(Error(4001, "come back later", temporary=True))

    client = new_client(node)
    reply = await client.call("connect")
    assert reply["error"] == {"code": 4001, "message": "come back later", "temporary": True}


async def test_on_connecting_disconnects(node: Node, new_client: NewClient) -> None:
    @node.connecting
    async def on_connecting(context: ConnectingContext) -> None:
        raise DisconnectError(Disconnect(4501, "banned"))

    client = new_client(node)
    await client.send({"id": 1, "connect": {}})
    assert client.closed_with == 4501
    assert client.transport.written == []


async def test_client_leaves_while_on_connecting_runs(node: Node, new_client: NewClient) -> None:
    release = asyncio.Event()

    @node.connecting
    async def on_connecting(context: ConnectingContext) -> ConnectResult:
        await release.wait()
        return ConnectResult(user="42")

    client = new_client(node)
    task = asyncio.create_task(client.send({"id": 1, "connect": {}}))
    await asyncio.sleep(0)
    client.session.closed_by_transport()
    release.set()
    await task
    assert node.hub.num_sessions == 0
    assert client.transport.written == []


async def test_token_channels_and_subs_claims(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    result = await client.result(
        "connect", {"token": make_token("42", ttl=None, channels=["news"], subs={"chat:1": {}})}
    )
    assert set(result["subs"]) == {"news", "chat:1"}
    assert set(client.session.subscriptions) == {"news", "chat:1"}
    assert all(subscription.server_side for subscription in client.session.subscriptions.values())


async def test_server_side_channels_of_an_unknown_namespace_are_skipped(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    result = await client.result("connect", {"token": make_token("42", ttl=None, channels=["nope:1", "news", "news"])})
    assert result["subs"] == {"nope:1": {}, "news": {}}
    assert set(client.session.subscriptions) == {"news"}


async def test_personal_channel(make_node: MakeNode, new_client: NewClient) -> None:
    node = await make_node(user_subscribe_to_personal=True)
    client = new_client(node)
    result = await client.result("connect", {"token": make_token("42", ttl=None)})
    assert list(result["subs"]) == ["personal:#42"]
    await node.publish("personal:#42", {"for": "you"})
    assert client.publications("personal:#42") == [{"for": "you"}]
    assert list(await node.presence("personal:#42")) == [client.session.client]


async def test_no_personal_channel_for_anonymous_clients(make_node: MakeNode, new_client: NewClient) -> None:
    node = await make_node(user_subscribe_to_personal=True, allow_anonymous_connect_without_token=True)
    client = new_client(node)
    assert "subs" not in await client.result("connect")


async def test_server_side_channel_recovers_on_reconnect(node: Node, new_client: NewClient) -> None:
    first = await publish_in_stream(node, "feed:1", {"n": 1})
    await node.publish("feed:1", {"n": 2})
    await node.publish("feed:1", {"n": 3})
    client = new_client(node)
    result = await client.result(
        "connect",
        {
            "token": make_token("42", ttl=None, channels=["feed:1"]),
            "subs": {"feed:1": {"recover": True, "epoch": first.epoch, "offset": 1}},
        },
    )
    sub = result["subs"]["feed:1"]
    assert (sub["recovered"], sub["was_recovering"], sub["offset"]) == (True, True, 3)
    assert [p["data"] for p in sub["publications"]] == [{"n": 2}, {"n": 3}]


@pytest.mark.parametrize("close_during", ["first", "second"])
async def test_closing_during_server_side_subscriptions(node: Node, new_client: NewClient, close_during: str) -> None:
    client = new_client(node)
    broker_subscribe = node.broker.subscribe

    async def subscribe(channel: str) -> None:
        if channel == ("a" if close_during == "first" else "b"):
            client.session.disconnect()
        await broker_subscribe(channel)

    node.broker.subscribe = subscribe  # type: ignore[method-assign]
    await client.send({"id": 1, "connect": {"token": make_token("42", ttl=None, channels=["a", "b"])}})
    assert client.transport.written == []
    assert client.session.closed
    await asyncio.sleep(0)
    assert node.channels() == {}


async def test_a_server_side_channel_unsubscribed_before_the_reply_stays_unsubscribed(
    node: Node, new_client: NewClient
) -> None:
    client = new_client(node)
    broker_subscribe = node.broker.subscribe

    async def subscribe(channel: str) -> None:
        if channel == "b":
            # "a" is set up and waits for the connect reply to go live.
            assert await node.unsubscribe("42", "a") == 1
        await broker_subscribe(channel)

    node.broker.subscribe = subscribe  # type: ignore[method-assign]
    result = await client.result("connect", {"token": make_token("42", ttl=None, channels=["a", "b"])})
    assert set(result["subs"]) == {"a", "b"}
    assert set(client.session.subscriptions) == {"b"}
    await node.publish("a", 1)
    await node.publish("b", 2)
    assert client.publications() == [2]


async def test_a_server_subscribe_during_connect_keeps_the_reply_first(node: Node, new_client: NewClient) -> None:
    client = new_client(node)
    broker_subscribe = node.broker.subscribe
    release = asyncio.Event()

    async def subscribe(channel: str) -> None:
        if channel == "b":
            await release.wait()
        await broker_subscribe(channel)

    node.broker.subscribe = subscribe  # type: ignore[method-assign]
    connecting = asyncio.create_task(
        client.send({"id": 1, "connect": {"token": make_token("42", ttl=None, channels=["a", "b"])}})
    )
    await wait_until(lambda: "b" in client.session.subscriptions, what="the second server-side subscription")
    # Meanwhile the server subscribes the client elsewhere, and "a" gets a publication.
    assert await node.subscribe("42", "c") == 1
    await node.publish("a", 1)
    release.set()
    await connecting
    kinds = [
        "connect" if "connect" in reply else next(iter(reply["push"].keys() - {"channel"}))
        for reply in client.transport.replies
    ]
    # The subscribe push of "c" may come first; nothing of "a" or "b" comes before the connect reply.
    assert kinds.index("connect") < kinds.index("pub")
    assert client.publications() == [1]
