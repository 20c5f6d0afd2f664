"""Tokens verified with the keys of a JWKS endpoint (``token_jwks_public_endpoint``), over real
sockets: centrifuge-python and centrifuge-js clients, a local JWKS server, and keys that rotate
while the node runs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from centrifuge import ClientState

from wavecast.exceptions import ConnectionClosed
from wavecast.realtime import ChannelOptions, NodeConfig
from wavecast.realtime.jwks import JWKS

from ..support.js import StartJS
from ..support.jwks import JWKSServer, SigningKey
from ..support.raw import OpenRaw
from ..support.sdk import Clients, SubEvents, subscribe, subscribe_refused
from ..support.servers import NodeServer, StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import SECRET, make_token

pytestmark = pytest.mark.interop

A = SigningKey("key-a", "RSA", seed=0)
B = SigningKey("key-b", "EC")
CHANNEL = "secret:plans"


@pytest.fixture
def endpoint(jwks_server: JWKSServer) -> JWKSServer:
    """The JWKS endpoint, publishing key A."""
    jwks_server.keys = [A]
    return jwks_server


async def start(start_node: StartNode, endpoint: JWKSServer, **options: Any) -> tuple[NodeServer, JWKS]:
    """A node verifying tokens with ``endpoint``'s keys, a protected namespace ``secret``; and its cache."""
    options.setdefault("token_jwks_public_endpoint", endpoint.url)
    options.setdefault("token_jwks_refresh_interval", 200 * MS)
    options.setdefault("token_jwks_min_refresh_interval", 50 * MS)
    config = NodeConfig(namespaces={"secret": ChannelOptions(protected=True)}, **options)
    running = await start_node(config)
    cache = running.node.jwks[endpoint.url]
    await wait_until(lambda: cache.keys, what="the first fetch")
    return running, cache


async def refused(make_client: Clients, url: str, token: str) -> None:
    client, events = make_client(url, token=token)
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (3500, "invalid token")
    assert not events.named("connected")


async def test_keys_rotate_without_a_restart(start_node: StartNode, make_client: Clients, endpoint: JWKSServer) -> None:
    running, cache = await start(start_node, endpoint)
    url = running.ws_url
    old, old_events = await make_client.connected(url, token=A.sign("1"))
    await old_events.wait("connected")
    old_sub = await subscribe(old, CHANNEL, token=A.sign("1", channel=CHANNEL))

    # B published beside A: B's tokens are taken as soon as a client brings one.
    endpoint.keys = [A, B]
    await asyncio.sleep(50 * MS)
    new, new_events = await make_client.connected(url, token=B.sign("2"))
    await new_events.wait("connected")
    new_sub = await subscribe(new, CHANNEL, token=B.sign("2", channel=CHANNEL))
    assert "key-b" in cache.keys

    # A withdrawn: once the node has refreshed, A's tokens are refused, connection and
    # subscription tokens alike...
    endpoint.keys = [B]
    await wait_until(lambda: set(cache.keys) == {"key-b"}, what="a refresh without A")
    await refused(make_client, url, A.sign("3"))
    unsubscribed = await subscribe_refused(new, "secret:other", token=A.sign("2", channel="secret:other"))
    assert unsubscribed.code == 103

    # ...while the clients connected with A stay connected and subscribed (centrifuge-js
    # refreshes its connection with a B token below).
    await running.node.publish(CHANNEL, {"after": "rotation"})
    assert (await old_sub.wait("publication")).pub.data == {"after": "rotation"}
    assert (await new_sub.wait("publication")).pub.data == {"after": "rotation"}
    assert old.state == ClientState.CONNECTED
    assert not old_events.named("disconnected")
    assert not old_events.named("error")


async def test_an_unknown_kid_fetches_the_set_at_once(
    start_node: StartNode, make_client: Clients, endpoint: JWKSServer
) -> None:
    running, _ = await start(start_node, endpoint, token_jwks_refresh_interval=60.0)
    assert endpoint.requests == 1
    endpoint.keys = [A, B]
    await asyncio.sleep(50 * MS)
    _, events = await make_client.connected(running.ws_url, token=B.sign("2"))
    await events.wait("connected")
    assert endpoint.requests == 2


async def test_the_cached_keys_serve_while_the_endpoint_is_down(
    start_node: StartNode, make_client: Clients, endpoint: JWKSServer
) -> None:
    running, cache = await start(start_node, endpoint, token_jwks_refresh_interval=50 * MS)
    url = running.ws_url
    await endpoint.stop()
    await wait_until(lambda: cache.failures >= 2, what="refreshes that fail")

    client, events = await make_client.connected(url, token=A.sign("1"))
    await events.wait("connected")
    await subscribe(client, CHANNEL, token=A.sign("1", channel=CHANNEL))
    # A key the node never saw may be a new one it can't fetch: a temporary error, which the
    # SDKs retry with backoff, not an invalid token, which would end the client for good.
    newcomer, newcomer_events = make_client(url, token=B.sign("2"))
    await newcomer.connect()
    await newcomer_events.wait("error", lambda ctx: ctx.error.code == 100 and ctx.error.temporary)
    sub_events = SubEvents()
    sub = client.new_subscription("secret:b", sub_events, token=B.sign("1", channel="secret:b"))
    await sub.subscribe()
    await sub_events.wait("error", lambda ctx: ctx.error.code == 100)
    assert not newcomer_events.named("connected") and not newcomer_events.named("disconnected")

    # Back with B: the next refresh brings it, and both retries succeed on their own.
    endpoint.keys = [A, B]
    await endpoint.start()
    await wait_until(lambda: "key-b" in cache.keys, what="the endpoint's return")
    await newcomer_events.wait("connected")
    await sub_events.wait("subscribed")
    assert client.state == ClientState.CONNECTED
    # Once the set is fresh, a key it doesn't have is an invalid token again.
    await refused(make_client, url, SigningKey("key-c", "EC").sign("3"))


async def test_a_flood_of_unknown_kids_costs_the_endpoint_one_fetch_per_interval(
    start_node: StartNode, make_client: Clients, open_raw: OpenRaw, endpoint: JWKSServer
) -> None:
    interval = 50 * MS
    running, _ = await start(
        start_node, endpoint, token_jwks_refresh_interval=60.0, token_jwks_min_refresh_interval=interval
    )
    began = time.monotonic()

    async def forged(n: int) -> None:
        raw = await open_raw(running, rcvbuf=None)
        await raw.send(json.dumps({"id": 1, "connect": {"token": A.sign("mallory", kid=f"made-up-{n}")}}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await raw.recv()
        assert (closed.value.code, closed.value.reason) == (3500, "invalid token")

    # Tokens naming keys that don't exist, one after the other (concurrent ones would share
    # fetches anyway), in two rounds an interval apart.
    for n in range(120):
        if n == 60:
            await asyncio.sleep(interval)
        await forged(n)
    # A client with a real key connects all along.
    _, events = await make_client.connected(running.ws_url, token=A.sign("1"))
    await events.wait("connected")
    elapsed = time.monotonic() - began
    # The fetch at start, then at most one per interval: unknown kids do fetch the set again,
    # but 120 of them cost the endpoint a few requests.
    assert 1 <= endpoint.requests - 1 <= elapsed / interval + 1
    assert running.node.stats.disconnects[3500] == 120


async def test_subscription_tokens_with_keys_of_their_own(
    start_node: StartNode, make_client: Clients, endpoint: JWKSServer
) -> None:
    running, _ = await start(
        start_node,
        endpoint,
        token_jwks_public_endpoint="",
        token_hmac_secret_key=SECRET,
        separate_subscription_token_config=True,
        subscription_token_jwks_public_endpoint=endpoint.url,
    )
    assert running.node.tokens is not running.node.subscription_tokens
    client, events = await make_client.connected(running.ws_url, token=make_token("1"))
    await events.wait("connected")
    await subscribe(client, CHANNEL, token=A.sign("1", channel=CHANNEL))
    unsubscribed = await subscribe_refused(client, "secret:hmac", token=make_token("1", channel="secret:hmac"))
    assert unsubscribed.code == 103
    # Connection tokens are HMAC ones: a key of the set doesn't sign them.
    await refused(make_client, running.ws_url, A.sign("2"))


async def test_centrifuge_js_refreshes_with_the_new_key(
    start_node: StartNode, start_js: StartJS, endpoint: JWKSServer
) -> None:
    running, cache = await start(start_node, endpoint)
    endpoint.keys = [A, B]
    await wait_until(lambda: "key-b" in cache.keys, what="B beside A")
    # Connected and subscribed with A; the refresh of its connection token brings a B token.
    js = await start_js(url=running.ws_url, token=A.sign("ann", ttl=2), tokens=[B.sign("ann")])
    await js.ok("connect")
    await js.wait("connected")
    await js.ok("subscribe", channel=CHANNEL, token=A.sign("ann", channel=CHANNEL))

    endpoint.keys = [B]
    await wait_until(lambda: set(cache.keys) == {"key-b"}, what="a refresh without A")
    late = await start_js(url=running.ws_url, token=A.sign("bob"))
    await late.call("connect")
    disconnected = await late.wait("disconnected")
    assert (disconnected["code"], disconnected["reason"]) == (3500, "invalid token")

    await js.wait("get_token", timeout=4000 * MS)
    await wait_until(lambda: running.node.stats.commands["refresh"] == 1, what="the refresh with B")
    await running.node.publish(CHANNEL, {"after": "rotation"})
    publication = await js.wait("publication")
    assert publication["data"] == {"after": "rotation"}
    assert len(js.named("connected")) == 1
    assert not js.named("disconnected")
