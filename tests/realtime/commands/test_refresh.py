"""commands.refresh: new connection and subscription tokens."""

from __future__ import annotations

import time

from wavecast.realtime import Node
from wavecast.version import version

from ...support.tokens import make_token
from ..helpers import ConnectClient, MakeNode


async def test_refresh(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", exp=int(time.time()) + 60)
    result = await client.result("refresh", {"token": make_token("42", ttl=600, info={"v": 2})})
    assert result["client"] == client.session.client
    assert result["version"] == version
    assert result["expires"] is True
    assert 590 < result["ttl"] <= 600
    assert client.session.info == b'{"v":2}'
    assert client.session.expire_at > time.time() + 500


async def test_refresh_to_a_token_that_never_expires(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", exp=int(time.time()) + 60, info={"v": 1})
    result = await client.result("refresh", {"token": make_token("42", ttl=None)})
    assert "expires" not in result and "ttl" not in result
    assert client.session.expire_at == 0
    assert client.session.info == b'{"v":1}'


async def test_refresh_without_a_token(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("refresh") == 108


async def test_refresh_without_keys(make_node: MakeNode, new_client: object) -> None:
    from wavecast.realtime import ConnectingContext, ConnectResult

    node = await make_node(token_hmac_secret_key="")

    @node.connecting
    async def on_connecting(context: ConnectingContext) -> ConnectResult:
        return ConnectResult(user="42")

    from ..helpers import Client

    client = Client(node)
    await client.result("connect")
    assert await client.error("refresh", {"token": make_token("42", ttl=None)}) == 108
    client.session.disconnect()


async def test_refresh_for_another_user(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    await client.send({"id": 5, "refresh": {"token": make_token("43", ttl=None)}})
    assert client.closed_with == 3500


async def test_refresh_with_an_expired_or_invalid_token(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    assert await client.error("refresh", {"token": make_token("42", ttl=-1)}) == 109
    await client.send({"id": 7, "refresh": {"token": "garbage"}})
    assert client.closed_with == 3500


async def test_refresh_with_a_subscription_token(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", exp=int(time.time()) + 60)
    await client.send({"id": 5, "refresh": {"token": make_token("42", ttl=600, channel="secret:1")}})
    assert client.closed_with == 3500
    assert client.session.expire_at < time.time() + 60


async def test_sub_refresh(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    await client.result("subscribe", {"channel": "secret:1", "token": make_token("42", ttl=None, channel="secret:1")})
    new = make_token("42", ttl=600, channel="secret:1", info={"seat": 4})
    result = await client.result("sub_refresh", {"channel": "secret:1", "token": new})
    assert result["expires"] is True
    assert 590 < result["ttl"] <= 600
    subscription = client.session.subscriptions["secret:1"]
    assert subscription.info == b'{"seat":4}'
    assert subscription.expire_at > time.time() + 500


async def test_sub_refresh_that_never_expires(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", subscribe="news")
    never_expires = make_token("42", ttl=None, channel="news")
    assert await client.result("sub_refresh", {"channel": "news", "token": never_expires}) == {}


async def test_sub_refresh_errors(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42")
    assert await client.error("sub_refresh", {"channel": "news", "token": make_token("42", channel="news")}) == 103
    await client.result("subscribe", {"channel": "news"})
    assert await client.error("sub_refresh", {"channel": "news", "token": make_token("42", channel="other")}) == 103
    assert await client.error("sub_refresh", {"channel": "news", "token": make_token("43", channel="news")}) == 103
    expired = make_token("42", ttl=-1, channel="news")
    assert await client.error("sub_refresh", {"channel": "news", "token": expired}) == 109
