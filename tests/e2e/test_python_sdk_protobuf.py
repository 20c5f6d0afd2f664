"""centrifuge-python in protobuf mode (``use_protobuf=True``) against a Node over real sockets.

The SDK offers the ``centrifuge-protobuf`` subprotocol and frames its commands itself, so these
tests hold the protobuf codec and its negotiation to the SDK's generated ``client_pb2``. Data is
bytes both ways, and need not be JSON; JSON clients of the same channels get JSON only.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from centrifuge import ClientState

from wavecast.codes import DISCONNECT_FORCE_RECONNECT

from ..support.config import node_config, open_channel
from ..support.rpc import with_rpc
from ..support.sdk import Clients, subscribe
from ..support.servers import StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

CHANNELS = open_channel(presence=True, force_recovery=True)

#: Bytes that no JSON parser takes: a NUL, invalid UTF-8, every byte value.
BINARY = b"\x00\xff\xfe" + bytes(range(256))


async def test_connect_subscribe_publish_presence_history_rpc(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=CHANNELS), setup=with_rpc("reverse"))
    client, client_events = make_client(
        running.ws_url, token=make_token("ann", info={"name": "Ann"}), use_protobuf=True
    )
    await client.connect()
    connected = await client_events.wait("connected")
    session = running.node.hub.session(connected.client)
    assert session is not None and session.user == "ann"
    assert session.codec.name == "protobuf"

    events = await subscribe(client, "doc")
    subscribed = events.named("subscribed")[0]
    assert subscribed.recoverable and subscribed.positioned

    await client.publish("doc", BINARY)
    await running.node.publish("doc", b"\x01\x02from the server")
    await running.node.publish("doc", {"json": "values go as JSON bytes"})
    await wait_until(lambda: len(events.data) == 3, what="three publications")
    assert events.data == [BINARY, b"\x01\x02from the server", b'{"json":"values go as JSON bytes"}']
    first, second, _ = (ctx.pub for ctx in events.named("publication"))
    assert [ctx.pub.offset for ctx in events.named("publication")] == [1, 2, 3]
    assert first.info is not None and first.info.user == "ann"
    assert first.info.conn_info == b'{"name":"Ann"}'
    assert second.info is None

    presence = await client.presence("doc")
    assert [info.user for info in presence.clients.values()] == ["ann"]
    stats = await client.presence_stats("doc")
    assert (stats.num_clients, stats.num_users) == (1, 1)

    history = await client.history("doc", limit=10)
    assert [p.data for p in history.publications] == events.data
    assert history.offset == 3
    latest = await client.history("doc", limit=1, reverse=True)
    assert [p.offset for p in latest.publications] == [3]

    result = await client.rpc("reverse", BINARY)
    assert result.data == BINARY[::-1]
    assert len(client_events.named("connected")) == 1


async def test_recovery_after_a_dropped_connection(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=CHANNELS))
    client, client_events = await make_client.connected(running.ws_url, "42", use_protobuf=True)
    events = await subscribe(client, "doc")
    total = 60
    published = [bytes([0, n, 255]) for n in range(1, total + 1)]

    async def publish() -> None:
        for data in published:
            await running.node.publish("doc", data)
            await asyncio.sleep(1 * MS)

    publisher = asyncio.get_running_loop().create_task(publish())
    try:
        await wait_until(lambda: len(events.data) >= 10, what="10 publications")
        # The TCP connection dies without a close frame, as when a network path breaks.
        for connection in list(running.server.connections):
            connection.transport.abort()
        await client_events.wait("connecting", lambda ctx: ctx.code != 0)
        await publisher
    finally:
        publisher.cancel()

    await wait_until(lambda: len(events.data) >= total, what="every publication")
    await asyncio.sleep(20 * MS)  # nothing more comes: no duplicate at the end
    assert events.data == published
    assert [ctx.pub.offset for ctx in events.named("publication")] == list(range(1, total + 1))
    second = events.named("subscribed")[1]
    assert second.was_recovering and second.recovered
    assert len(client_events.named("connected")) == 2


async def test_json_and_protobuf_subscribers_of_one_channel(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=CHANNELS))
    text, text_events = await make_client.connected(running.ws_url, "json")
    binary, _ = await make_client.connected(running.ws_url, "protobuf", use_protobuf=True)
    text_sub = await subscribe(text, "room")
    binary_sub = await subscribe(binary, "room")

    # JSON from either kind of client reaches both, each in its own form.
    await text.publish("room", {"from": "json"})
    await binary.publish("room", b'{"from":"protobuf"}')
    await running.node.publish("room", {"from": "server"})
    await wait_until(lambda: len(text_sub.data) == 3 and len(binary_sub.data) == 3, what="three publications each")
    assert text_sub.data == [{"from": "json"}, {"from": "protobuf"}, {"from": "server"}]
    assert [json.loads(data) for data in binary_sub.data] == text_sub.data
    assert all(isinstance(data, bytes) for data in binary_sub.data)

    # Binary data reaches the protobuf client; the JSON client can't take it and is told so
    # with 3506, as Centrifugo does, and doesn't reconnect.
    await binary.publish("room", BINARY)
    await wait_until(lambda: len(binary_sub.data) == 4, what="the binary publication")
    assert binary_sub.data[-1] == BINARY
    disconnected = await text_events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (3506, "inappropriate protocol")
    assert text.state == ClientState.DISCONNECTED
    assert len(text_sub.data) == 3

    # The protobuf client goes on as before, and history gives it everything.
    await running.node.publish("room", {"after": True})
    await wait_until(lambda: len(binary_sub.data) == 5, what="a later publication")
    history = await binary.history("room", limit=10)
    assert [p.data for p in history.publications] == binary_sub.data


async def test_a_json_client_recovering_binary_data_is_told_so(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=CHANNELS))
    text, text_events = await make_client.connected(running.ws_url, "json")
    events = await subscribe(text, "room")
    await running.node.disconnect("json", DISCONNECT_FORCE_RECONNECT)
    await running.node.publish("room", BINARY)
    disconnected = await text_events.wait("disconnected")
    assert disconnected.code == 3506
    assert events.data == []
