"""node: slow consumers, and the node's lifecycle: the disconnect hook, cleanup, shutdown, lost continuity."""

from __future__ import annotations

import asyncio
import logging

import pytest

from wavecast.codes import DISCONNECT_SHUTDOWN, DISCONNECT_SLOW
from wavecast.engines import Publication
from wavecast.realtime import DisconnectContext, Node, NodeConfig

from ..support.jwks import JWKSServer
from ..support.timing import wait_until
from ..support.tokens import SECRET
from .helpers import Client, ConnectClient, MakeNode, NewClient

# --- slow consumers ---------------------------------------------------------------------------


async def stalled(node: Node, connect: ConnectClient, *channels: str) -> Client:
    """Return a client subscribed to ``channels``, what it was sent so far read, whose transport
    then stops taking writes, as a slow client's does."""
    client = await connect(node)
    for channel in channels:
        await client.result("subscribe", {"channel": channel})
    client.new()
    client.transport.is_writable = False
    return client


async def test_slow_consumer_disconnect(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=200)
    slow, fast = await connect(node, "1", subscribe="news"), await connect(node, "2", subscribe="news")
    slow.transport.is_writable = False
    for n in range(20):
        await node.publish("news", {"n": n, "padding": "x" * 20})
    assert slow.transport.closes == [DISCONNECT_SLOW]
    assert slow.session.closed
    assert slow.session.queued == 0
    assert node.stats.slow_consumer_actions["disconnect"] == 1
    assert len(fast.publications()) == 20


async def test_slow_consumer_drop_oldest(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=200)
    client = await stalled(node, connect, "drop:1")
    for n in range(50):
        await node.publish("drop:1", {"n": n})
        assert client.session.queued <= 200
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
    client = await stalled(node, connect, "conflate:1")
    for n in range(30):
        await node.publish("conflate:1", {"n": n, "key": n % 3}, tags={"key": str(n % 3)})
    await node.publish("conflate:1", {"n": 99, "key": None})
    assert len(client.session.outbox or ()) == 4
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
    client = await stalled(node, connect, "conflate:1", "conflate:2")
    for n in range(5):
        await node.publish("conflate:1", n)
        await node.publish("conflate:2", n)
    client.transport.resume()
    assert [(p["channel"], p["pub"]["data"]) for p in client.pushes("pub")] == [("conflate:1", 4), ("conflate:2", 4)]


async def test_slow_consumer_conflate_stays_bounded(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=150)
    client = await stalled(node, connect, "conflate:1")
    for n in range(100):
        await node.publish("conflate:1", {"n": n}, tags={"key": str(n)})
        assert client.session.queued <= 150
    assert not client.session.closed


async def test_draining_delivers_in_order(node: Node, connect: ConnectClient) -> None:
    client = await stalled(node, connect, "chat:1")
    await node.publish("chat:1", 1)
    await client.send({"id": 50, "ping": {}})
    await node.publish("chat:1", 2)
    assert client.new() == []
    client.transport.resume()
    assert [reply.get("id") or reply["push"]["pub"]["data"] for reply in client.new()] == [1, 50, 2]
    # Writable again: straight to the transport.
    await node.publish("chat:1", 3)
    assert client.session.queued == 0
    assert client.publications()[-1] == 3


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
    client = await connect(node, subscribe=["chat:1", "news"])
    with caplog.at_level(logging.WARNING, logger="wavecast.realtime"):
        client.session.closed_by_transport()
        await wait_until(lambda: not node._tasks, what="the cleanup")
    assert "cleanup of" in caplog.text
    # The other subscription was cleaned up anyway.
    assert node.channels() == {}


async def test_shutdown_disconnects_everyone(node: Node, connect: ConnectClient) -> None:
    contexts: list[DisconnectContext] = []

    @node.disconnected
    async def on_disconnect(context: DisconnectContext) -> None:
        contexts.append(context)

    clients = [await connect(node, str(n), subscribe="chat:1") for n in range(3)]
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
    client = await connect(node, subscribe="news")
    node.on_publication("news", Publication(data=b"1"), None)
    assert client.pushes("pub") == [{"channel": "news", "pub": {"data": 1}}]
    assert node.stats.latency_counts == [0] * len(node.stats.latency_counts)


# --- token keys from JWKS endpoints ----------------------------------------------------------


async def test_jwks_endpoints_are_fetched_while_the_node_runs(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = await JWKSServer().start()
    other = await JWKSServer().start()
    try:
        with caplog.at_level(logging.WARNING, "wavecast.realtime"):
            node = Node(
                NodeConfig(
                    token_jwks_public_endpoint=endpoint.url,
                    token_hmac_secret_key=SECRET,
                    separate_subscription_token_config=True,
                    subscription_token_jwks_public_endpoint=endpoint.url,
                )
            )
        assert (
            "token_jwks_public_endpoint is set: token_hmac_secret_key not used, every token is verified with "
            "the JWKS's keys" in caplog.text
        )
        # One cache for the endpoint both kinds of token name.
        assert list(node.jwks) == [endpoint.url]
        assert node.tokens.jwks is node.subscription_tokens.jwks is node.jwks[endpoint.url]
        assert endpoint.requests == 0
        async with node:
            await wait_until(lambda: endpoint.requests == 1, what="the fetch at start")
        assert not node.jwks[endpoint.url]._refresher

        node = Node(
            NodeConfig(
                token_jwks_public_endpoint=endpoint.url,
                separate_subscription_token_config=True,
                subscription_token_jwks_public_endpoint=other.url,
            )
        )
        assert node.tokens.jwks is node.jwks[endpoint.url]
        assert node.subscription_tokens.jwks is node.jwks[other.url]
        assert node.subscription_tokens.enabled
    finally:
        await endpoint.stop()
        await other.stop()


def test_without_separate_config_subscription_tokens_are_verified_as_connection_tokens() -> None:
    node = Node(NodeConfig(token_hmac_secret_key=SECRET))
    assert node.subscription_tokens is node.tokens
    assert node.jwks == {}
    node = Node(NodeConfig(token_hmac_secret_key=SECRET, separate_subscription_token_config=True))
    assert node.subscription_tokens is not node.tokens
    assert not node.subscription_tokens.enabled
