"""refreshing: the server refreshes connections and subscriptions with on_refresh and on_sub_refresh."""

from __future__ import annotations

import time
from collections.abc import Callable

from wavecast.codes import DISCONNECT_BAD_REQUEST, DISCONNECT_EXPIRED, UNSUBSCRIBE_EXPIRED
from wavecast.exceptions import DisconnectError
from wavecast.realtime import (
    ConnectingContext,
    ConnectResult,
    Node,
    RefreshContext,
    RefreshResult,
    SubRefreshContext,
)
from wavecast.realtime.refreshing import RETRY_DELAY

from ..support.timing import wait_until
from .helpers import Client, ConnectClient, MakeNode


def expiring_connections(node: Node) -> None:
    @node.connecting
    async def on_connecting(context: ConnectingContext) -> ConnectResult:
        return ConnectResult(user="42", expire_at=int(time.time()))


async def test_on_refresh_extends_a_connection(make_node: MakeNode, new_client: Callable[[Node], Client]) -> None:
    node = await make_node()
    expiring_connections(node)
    asked: list[RefreshContext] = []

    @node.refreshing
    async def on_refresh(context: RefreshContext) -> RefreshResult:
        asked.append(context)
        return RefreshResult(expire_at=int(time.time()) + 3600, info=b'{"v":2}')

    client = new_client(node)
    result = await client.result("connect")
    # The server refreshes: the client isn't told that its connection expires.
    assert "expires" not in result and "ttl" not in result
    await wait_until(lambda: bool(asked), what="the refresh")
    assert asked[0].session is client.session
    assert client.session.info == b'{"v":2}' and client.session.expire_at > time.time() + 3000
    assert not client.session.closed


async def test_on_refresh_ends_an_expired_connection(make_node: MakeNode, new_client: Callable[[Node], Client]) -> None:
    node = await make_node()
    expiring_connections(node)

    @node.refreshing
    async def on_refresh(context: RefreshContext) -> RefreshResult:
        return RefreshResult(expired=True)

    client = new_client(node)
    await client.result("connect")
    await wait_until(lambda: client.session.closed, what="the expiry")
    assert client.closed_with == DISCONNECT_EXPIRED.code


async def test_a_failing_refresh_gives_one_more_minute(
    make_node: MakeNode, new_client: Callable[[Node], Client]
) -> None:
    node = await make_node()
    expiring_connections(node)
    calls = 0

    @node.refreshing
    async def on_refresh(context: RefreshContext) -> RefreshResult:
        nonlocal calls
        calls += 1
        raise RuntimeError("backend down")

    client = new_client(node)
    await client.result("connect")
    await wait_until(lambda: calls == 1, what="the refresh")
    await wait_until(lambda: client.session.expire_at > time.time(), what="the retry")
    assert client.session.expire_at >= int(time.time()) + RETRY_DELAY - 2
    assert not client.session.closed


async def test_a_refresh_may_disconnect(make_node: MakeNode, new_client: Callable[[Node], Client]) -> None:
    node = await make_node()
    expiring_connections(node)

    @node.refreshing
    async def on_refresh(context: RefreshContext) -> RefreshResult:
        raise DisconnectError(DISCONNECT_BAD_REQUEST)

    client = new_client(node)
    await client.result("connect")
    await wait_until(lambda: client.session.closed, what="the disconnect")
    assert client.closed_with == DISCONNECT_BAD_REQUEST.code


async def test_on_sub_refresh(node: Node, connect: ConnectClient) -> None:
    answers = [RefreshResult(expire_at=int(time.time()) + 3600, info=b'{"room":1}'), RefreshResult(expired=True)]
    asked: list[SubRefreshContext] = []

    @node.sub_refreshing
    async def on_sub_refresh(context: SubRefreshContext) -> RefreshResult:
        asked.append(context)
        return answers.pop(0)

    client = await connect(node, subscribe="news")
    subscription = client.session.subscriptions["news"]
    subscription.expire_at = int(time.time()) - 1
    client.session.check_subscription_expiry()
    # Asked once at a time.
    client.session.check_subscription_expiry()
    await wait_until(lambda: subscription.expire_at > 0, what="the sub refresh")
    assert [(c.session, c.channel) for c in asked] == [(client.session, "news")]
    assert subscription.info == b'{"room":1}'

    subscription.expire_at = int(time.time()) - 1
    client.session.check_subscription_expiry()
    await wait_until(lambda: "news" not in client.session.subscriptions, what="the unsubscribe")
    assert client.pushes("unsubscribe", "news")[-1]["unsubscribe"]["code"] == UNSUBSCRIBE_EXPIRED.code
    assert not client.session.closed
