"""centrifuge-js on Node (with the ``ws`` package) against a Node over real sockets.

The script ``js/client.js`` runs the SDK; the tests send it commands and read its events.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wavecast.codes import DISCONNECT_FORCE_NO_RECONNECT, DISCONNECT_FORCE_RECONNECT
from wavecast.realtime import ChannelOptions, MessageContext, Node

from ..support.config import node_config, open_channel
from ..support.js import StartJS
from ..support.rpc import with_rpc
from ..support.servers import TRANSPORTS, StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import SECRET, make_token

pytestmark = pytest.mark.interop

CHANNELS = open_channel(presence=True, join_leave=True, force_recovery=True)
RPC = with_rpc("sum", "forbidden")
#: A history that outlasts a reconnect's random delay (up to 200 ms here), whichever transport
#: the client falls back to: 1,000 publications.
RECOVERABLE = open_channel(force_recovery=True, history_size=1000)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """The transport of centrifuge-js: each test that takes it runs over WebSocket and over
    both of its fallbacks, which must behave the same."""
    name: str = request.param
    return name


async def test_connect_subscribe_publish_presence_history_rpc(
    start_node: StartNode, start_js: StartJS, transport: str
) -> None:
    running = await start_node(node_config(channel=CHANNELS, namespaces={"private": ChannelOptions()}), setup=RPC)
    js = await start_js(**running.endpoint(transport), token=make_token("ann", info={"name": "Ann"}))
    await js.ok("connect")
    connected = await js.wait("connected")
    session = running.node.hub.session(connected["client"])
    assert session is not None and session.user == "ann"

    await js.ok("subscribe", channel="chat", joinLeave=True)
    subscribed = await js.wait("subscribed")
    assert subscribed["recoverable"] and subscribed["positioned"]
    assert not subscribed["wasRecovering"]

    await js.ok("publish", channel="chat", data={"text": "from js"})
    await running.node.publish("chat", {"text": "from the server"}, tags={"kind": "server"})
    await wait_until(lambda: len(js.named("publication")) == 2, what="two publications")
    first, second = js.named("publication")
    assert (first["data"], first["offset"], first["user"]) == ({"text": "from js"}, 1, "ann")
    assert (second["data"], second["offset"], second["tags"]) == ({"text": "from the server"}, 2, {"kind": "server"})

    # Another JS client joins: presence, stats and a join event.
    other = await start_js(**running.endpoint(transport), token=make_token("bob"))
    await other.ok("connect")
    await other.ok("subscribe", channel="chat")
    join = await js.wait("join", lambda event: event["user"] == "bob")
    presence = await js.ok("presence", channel="chat")
    assert {info["user"] for info in presence["clients"].values()} == {"ann", "bob"}
    assert join["client"] in presence["clients"]
    assert presence["clients"][connected["client"]]["connInfo"] == {"name": "Ann"}
    stats = await js.ok("presenceStats", channel="chat")
    assert (stats["numClients"], stats["numUsers"]) == (2, 2)
    await other.close()
    await js.wait("leave", lambda event: event["user"] == "bob")

    history = await js.ok("history", channel="chat", limit=10)
    assert [p["data"] for p in history["publications"]] == [{"text": "from js"}, {"text": "from the server"}]
    assert history["offset"] == 2
    latest = await js.ok("history", channel="chat", limit=1, reverse=True)
    assert [p["offset"] for p in latest["publications"]] == [2]
    since = await js.ok("history", channel="chat", limit=10, since={"offset": 1, "epoch": history["epoch"]})
    assert [p["offset"] for p in since["publications"]] == [2]

    assert await js.ok("rpc", method="sum", data={"a": 20, "b": 22}) == {"data": {"sum": 42, "user": "ann"}}
    refused = await js.call("rpc", method="forbidden", data={})
    assert not refused["ok"]
    assert refused["error"]["code"] == 1403 and refused["error"]["message"] == "not for you"
    missing = await js.call("rpc", method="missing", data={})
    assert missing["error"]["code"] == 104

    await js.ok("subscribe", channel="private:x", wait=False)
    unsubscribed = await js.wait("unsubscribed", lambda event: event["channel"] == "private:x")
    assert unsubscribed["code"] == 103
    await js.ok("subscribe", channel="nowhere:x", wait=False)
    unsubscribed = await js.wait("unsubscribed", lambda event: event["channel"] == "nowhere:x")
    assert unsubscribed["code"] == 102
    assert len(js.named("connected")) == 1


async def test_tokens(start_node: StartNode, start_js: StartJS, transport: str) -> None:
    running = await start_node(node_config(namespaces={"secret": ChannelOptions(protected=True)}))
    js = await start_js(**running.endpoint(transport), token=make_token("ann", ttl=-10), tokens=[make_token("ann")])
    await js.ok("connect")
    await js.wait("get_token")
    error = await js.wait("error")
    assert error["error"]["code"] == 109
    await js.ok("subscribe", channel="secret:plans", tokens=[make_token("ann", channel="secret:plans")])
    await js.wait("get_sub_token")
    await js.wait("subscribed", lambda event: event["channel"] == "secret:plans")

    bad = await start_js(**running.endpoint(transport), token=make_token("ann", secret="y" * 40))
    await bad.call("connect")
    disconnected = await bad.wait("disconnected")
    assert (disconnected["code"], disconnected["reason"]) == (3500, "invalid token")


async def test_subscription_token_as_connection_token(start_node: StartNode, start_js: StartJS) -> None:
    running = await start_node()
    js = await start_js(url=running.ws_url, token=make_token("ann", channel="secret:plans"))
    await js.call("connect")
    disconnected = await js.wait("disconnected")
    assert (disconnected["code"], disconnected["reason"]) == (3500, "invalid token")
    # 3500 is terminal: the SDK stops instead of connecting again.
    await asyncio.sleep(500 * MS)
    assert len(js.named("connecting")) == 1
    assert not js.named("connected")
    assert running.node.stats.commands["connect"] == 1


async def test_refresh_with_a_subscription_token(start_node: StartNode, start_js: StartJS) -> None:
    running = await start_node()
    js = await start_js(
        url=running.ws_url, token=make_token("ann", ttl=2), tokens=[make_token("ann", channel="secret:plans")]
    )
    await js.ok("connect")
    await js.wait("connected")
    await js.wait("get_token", timeout=4000 * MS)
    disconnected = await js.wait("disconnected")
    assert (disconnected["code"], disconnected["reason"]) == (3500, "invalid token")
    await asyncio.sleep(500 * MS)
    assert len(js.named("get_token")) == 1
    assert len(js.named("connected")) == 1
    assert running.node.stats.commands["connect"] == 1
    assert running.node.stats.disconnects[3500] == 1


async def test_token_refresh_and_pings(start_node: StartNode, start_js: StartJS, transport: str) -> None:
    running = await start_node(
        node_config(
            client_expired_close_delay=1.0,
            client_ping_interval=1,
            client_pong_timeout=0.5,
            namespaces={"secret": ChannelOptions(protected=True)},
        )
    )
    mint = {"secret": SECRET, "sub": "ann", "ttl": 2}
    js = await start_js(**running.endpoint(transport), mint=mint)
    await js.ok("connect")
    await js.ok("subscribe", channel="secret:a", mint=mint)
    await wait_until(lambda: len(js.named("get_token")) >= 3, timeout=4000 * MS, what="two refreshes")
    await wait_until(lambda: len(js.named("get_sub_token")) >= 3, timeout=4000 * MS, what="two sub refreshes")
    assert len(js.named("subscribed")) == 1
    assert not js.named("sub_error") and not js.named("error")
    states = [event["event"] for event in js.events if event["event"] in ("connecting", "connected", "disconnected")]
    assert states == ["connecting", "connected"]
    session = running.node.hub.session(js.named("connected")[0]["client"])
    assert session is not None and not session.closed


async def test_batched_subscribes_and_async_messages(start_node: StartNode, start_js: StartJS, transport: str) -> None:
    messages: list[tuple[str, Any]] = []

    def setup(node: Node) -> None:
        @node.message
        async def on_message(ctx: MessageContext) -> None:
            assert ctx.data is not None
            messages.append((ctx.session.user, json.loads(ctx.data)))

    running = await start_node(node_config(channel=CHANNELS), setup=setup)
    js = await start_js(**running.endpoint(transport), token=make_token("ann"))
    # Subscriptions made before connecting are sent together once connected.
    for channel in ("a", "b", "c"):
        await js.ok("subscribe", channel=channel, wait=False)
    await js.ok("connect")
    await wait_until(lambda: len(js.named("subscribed")) == 3, what="three subscriptions")
    await running.node.broadcast(["a", "b", "c"], "to all")
    await wait_until(lambda: len(js.named("publication")) == 3, what="three publications")
    assert sorted(event["channel"] for event in js.named("publication")) == ["a", "b", "c"]

    await js.ok("send", data={"hello": "server"})
    await wait_until(lambda: messages == [("ann", {"hello": "server"})], what="the message")


async def test_node_send_reaches_the_message_event(start_node: StartNode, start_js: StartJS) -> None:
    running = await start_node(node_config())
    ann = await start_js(url=running.ws_url, token=make_token("ann"))
    bob = await start_js(url=running.ws_url, token=make_token("bob"))
    for js in (ann, bob):
        await js.ok("connect")
        await js.wait("connected")
    assert await running.node.send("ann", {"text": "your export is ready"}) == 1
    message = await ann.wait("message")
    assert message["data"] == {"text": "your export is ready"}
    # To one connection of the user, by its client id.
    [session] = running.node.hub.user_sessions("ann")
    assert await running.node.send("ann", [1, 2], client=session.client) == 1
    await wait_until(lambda: len(ann.named("message")) == 2, what="the second message")
    assert ann.named("message")[1]["data"] == [1, 2]
    assert bob.named("message") == []


async def test_message_over_the_size_limit(start_node: StartNode, start_js: StartJS) -> None:
    running = await start_node(node_config(client_message_size_limit=4096))
    js = await start_js(url=running.ws_url, token=make_token("ann"))
    await js.ok("connect")
    result = await js.call("rpc", method="echo", data="x" * 5000)
    assert not result["ok"]
    disconnected = await js.wait("disconnected")
    # The server closed with 1009: centrifuge-js stops with its "message size limit" code.
    assert (disconnected["code"], disconnected["reason"]) == (3, "message size limit exceeded")


async def test_server_side_subscription_and_disconnects(
    start_node: StartNode, start_js: StartJS, transport: str
) -> None:
    running = await start_node(node_config(channel=CHANNELS))
    js = await start_js(**running.endpoint(transport), token=make_token("ann", channels=["news"]))
    await js.ok("connect")
    await js.wait("server_subscribed", lambda event: event["channel"] == "news")
    await running.node.publish("news", "headline")
    publication = await js.wait("server_publication")
    assert (publication["channel"], publication["data"], publication["offset"]) == ("news", "headline", 1)

    await running.node.disconnect("ann", DISCONNECT_FORCE_RECONNECT)
    connecting = await js.wait("connecting", lambda event: event["code"] == 3011)
    assert connecting["reason"] == "force reconnect"
    await wait_until(lambda: len(js.named("connected")) == 2, what="a reconnect")
    resubscribed = await js.wait("server_subscribed", lambda event: event["wasRecovering"])
    assert resubscribed["recovered"]

    await running.node.disconnect("ann", DISCONNECT_FORCE_NO_RECONNECT)
    disconnected = await js.wait("disconnected")
    assert (disconnected["code"], disconnected["reason"]) == (3503, "force disconnect")


async def test_node_unsubscribe(start_node: StartNode, start_js: StartJS) -> None:
    running = await start_node(node_config(channel=CHANNELS))
    js = await start_js(url=running.ws_url, token=make_token("ann"))
    await js.ok("connect")
    await js.ok("subscribe", channel="room")
    await running.node.unsubscribe("ann", "room")
    unsubscribed = await js.wait("unsubscribed")
    assert (unsubscribed["code"], unsubscribed["reason"]) == (2000, "server unsubscribe")


@pytest.mark.parametrize("drop", ["disconnect", "abort"])
async def test_recovery_after_a_server_side_disconnect(
    start_node: StartNode, start_js: StartJS, drop: str, transport: str
) -> None:
    running = await start_node(node_config(channel=RECOVERABLE))
    js = await start_js(**running.endpoint(transport), token=make_token("ann"))
    await js.ok("connect")
    await js.ok("subscribe", channel="stream")

    total = 150

    async def publish(numbers: range) -> None:
        for n in numbers:
            await running.node.publish("stream", n)
            await asyncio.sleep(1 * MS)

    # The first 100 race with the drop; the last 50 come while the client is away, so that
    # there is always something to recover, however slow the machine.
    publisher = asyncio.get_running_loop().create_task(publish(range(1, 101)))
    try:
        await wait_until(lambda: len(js.named("publication")) >= 20, what="20 publications")
        if drop == "disconnect":
            await running.node.disconnect("ann", DISCONNECT_FORCE_RECONNECT)
        else:
            for connection in list(running.server.connections):
                connection.transport.abort()
        await js.wait("connecting", lambda event: event["code"] != 0)
        await publisher
        await publish(range(101, total + 1))
    finally:
        publisher.cancel()

    await wait_until(lambda: len(js.named("publication")) >= total, timeout=5000 * MS, what="every publication")
    await asyncio.sleep(20 * MS)
    assert [event["data"] for event in js.named("publication")] == list(range(1, total + 1))
    assert [event["offset"] for event in js.named("publication")] == list(range(1, total + 1))
    second = js.named("subscribed")[1]
    assert second["wasRecovering"] and second["recovered"]
    index = js.events.index(second)
    received_before = sum(event["event"] == "publication" for event in js.events[:index])
    assert second["streamPosition"]["offset"] > received_before

    # A restart: the stream's epoch changes, and recovery is impossible.
    port = running.port
    await running.stop()
    restarted = await start_node(node_config(channel=RECOVERABLE), port=port)
    third = await js.wait("subscribed", lambda event: js.named("subscribed").index(event) == 2, timeout=5000 * MS)
    assert third["wasRecovering"] and not third["recovered"]
    assert third["streamPosition"]["epoch"] != second["streamPosition"]["epoch"]
    await restarted.node.publish("stream", "after restart")
    publication = await js.wait("publication", lambda event: event["data"] == "after restart")
    assert publication["offset"] == 1


async def test_falls_back_when_websocket_is_blocked(start_node: StartNode, start_js: StartJS) -> None:
    # As behind a proxy that refuses WebSocket upgrades: the SDK tries its transports in order.
    running = await start_node(node_config(channel=CHANNELS), refuse_websocket=True)
    js = await start_js(**running.endpoint(*TRANSPORTS), token=make_token("ann"))
    await js.ok("connect")
    connected = await js.wait("connected")
    assert connected["transport"] == "http_stream"
    session = running.node.hub.session(connected["client"])
    assert session is not None and session.transport.name == "http_stream"
    await js.ok("subscribe", channel="chat")
    await js.ok("publish", channel="chat", data={"text": "through the fallback"})
    publication = await js.wait("publication")
    assert publication["data"] == {"text": "through the fallback"}
    [error] = js.named("error")
    assert error["type"] == "transport"
