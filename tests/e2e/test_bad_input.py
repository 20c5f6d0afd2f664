"""Bad input over real sockets never affects other clients.

Each case runs while a centrifuge-python client, subscribed to a channel, receives a steady
stream of publications: afterwards it must have received every one, in order, on the
connection it started with. The protobuf cases run with a bystander of each form.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from wavecast.exceptions import ConnectionClosed
from wavecast.realtime import ChannelOptions

from ..support.config import node_config
from ..support.protobuf import protobuf_command, protobuf_replies
from ..support.raw import OpenRaw, RawClient
from ..support.sdk import ClientEvents, Clients, SubEvents, subscribe
from ..support.servers import NodeServer, StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

LIMIT = 8192


@dataclass
class Bystander:
    running: NodeServer
    events: SubEvents
    client_events: ClientEvents
    published: list[int]


@pytest.fixture
async def bystander(
    request: pytest.FixtureRequest, start_node: StartNode, make_client: Clients
) -> AsyncIterator[Bystander]:
    """A node, and an SDK client receiving publications while the test misbehaves; in
    protobuf mode when the test's parameter says ``"protobuf"``."""
    protobuf = getattr(request, "param", "json") == "protobuf"
    running = await start_node(
        node_config(
            client_message_size_limit=LIMIT,
            channel=ChannelOptions(allow_subscribe_for_client=True),
            namespaces={"closed": ChannelOptions()},
        )
    )
    client, client_events = await make_client.connected(running.ws_url, "bystander", use_protobuf=protobuf)
    events = await subscribe(client, "feed")
    published: list[int] = []

    async def publish() -> None:
        n = 0
        while True:
            await running.node.publish("feed", n)
            published.append(n)
            n += 1
            await asyncio.sleep(2 * MS)

    publisher = asyncio.get_running_loop().create_task(publish())
    watched = Bystander(running, events, client_events, published)
    await wait_until(lambda: len(events.data) >= 5, what="the stream to start")
    yield watched
    publisher.cancel()
    try:
        await publisher
    except asyncio.CancelledError:
        pass
    # The bystander saw every publication, on its first connection, without an error.
    await wait_until(lambda: len(events.data) == len(published), what="every publication")
    # Values are published as JSON: protobuf clients receive its bytes.
    assert events.data == ([str(n).encode() for n in published] if protobuf else published)
    assert [name for name, _ in client_events.events] == ["connecting", "connected"]
    assert len(events.named("subscribed")) == 1
    assert not events.named("error")


async def connected_raw(running: NodeServer, open_raw: OpenRaw) -> RawClient:
    raw = await open_raw(running, rcvbuf=None)
    reply = await raw.command(connect={"token": make_token("mallory")})
    assert "connect" in reply, reply
    return raw


@pytest.fixture
async def raw(bystander: Bystander, open_raw: OpenRaw) -> RawClient:
    """A raw client connected beside the bystander: the one that misbehaves."""
    return await connected_raw(bystander.running, open_raw)


async def closed_with(raw: RawClient) -> ConnectionClosed:
    """Read until the server closes the connection; return how it closed."""
    with pytest.raises(ConnectionClosed) as raised:
        while True:
            await raw.recv()
    return raised.value


async def test_unknown_method(bystander: Bystander, raw: RawClient) -> None:
    reply = await raw.command(frobnicate={"channel": "feed"})
    assert reply["error"] == {"code": 104, "message": "method not found"}
    # The connection still works.
    assert "ping" in await raw.command(ping={})


async def test_command_before_connect(bystander: Bystander, open_raw: OpenRaw) -> None:
    raw = await open_raw(bystander.running, rcvbuf=None)
    await raw.send(json.dumps({"id": 1, "subscribe": {"channel": "feed"}}))
    closed = await closed_with(raw)
    assert (closed.code, closed.reason) == (3501, "bad request")


async def test_second_connect(bystander: Bystander, raw: RawClient) -> None:
    await raw.send(json.dumps({"id": 9, "connect": {"token": make_token("mallory")}}))
    closed = await closed_with(raw)
    assert closed.code == 3501


@pytest.mark.parametrize(
    "message",
    ['{"id": 1, "connect":', "not json at all", '{"id": "one", "ping": {}}', "[1, 2, 3]", '{"id": 2, "ping": 5}'],
    ids=["truncated", "text", "bad-id", "array", "bad-request-type"],
)
async def test_malformed_json(bystander: Bystander, raw: RawClient, message: str) -> None:
    await raw.send(message)
    closed = await closed_with(raw)
    assert (closed.code, closed.reason) == (3501, "bad request")
    await wait_until(lambda: bystander.running.node.hub.num_sessions == 1, what="the bad session to go")


async def test_malformed_json_before_connect(bystander: Bystander, open_raw: OpenRaw) -> None:
    raw = await open_raw(bystander.running, rcvbuf=None)
    await raw.send("{{{{")
    closed = await closed_with(raw)
    assert closed.code == 3501


async def test_oversized_message(bystander: Bystander, raw: RawClient) -> None:
    await raw.send(json.dumps({"id": 2, "publish": {"channel": "feed", "data": "x" * LIMIT}}))
    closed = await closed_with(raw)
    assert closed.code == 1009
    await wait_until(lambda: bystander.running.node.hub.num_sessions == 1, what="the bad session to go")


async def test_message_at_the_size_limit_is_accepted(bystander: Bystander, raw: RawClient) -> None:
    command = {"id": 2, "rpc": {"method": "nothing", "data": ""}}
    padding = LIMIT - len(json.dumps(command))
    command["rpc"]["data"] = "x" * padding  # type: ignore[index]
    message = json.dumps(command)
    assert len(message) == LIMIT
    await raw.send(message)
    (reply,) = await raw.recv()
    assert reply["error"]["code"] == 104  # no such RPC method, but the message went through


async def test_invalid_utf8(bystander: Bystander, raw: RawClient) -> None:
    # A text frame that isn't UTF-8, written below the client's checks.
    protocol = raw.connection.protocol
    protocol.send_binary(b"\xff\xfe")  # the opcode is patched to text below
    frames = protocol.data_to_send()
    frame = bytearray(b"".join(frames))
    frame[0] = (frame[0] & 0xF0) | 0x1
    raw.connection.transport.write(bytes(frame))
    closed = await closed_with(raw)
    assert closed.code == 1007


async def test_forbidden_channels(bystander: Bystander, raw: RawClient) -> None:
    reply = await raw.command(subscribe={"channel": "closed:room"})
    assert reply["error"]["code"] == 103
    reply = await raw.command(subscribe={"channel": "nowhere:room"})
    assert reply["error"]["code"] == 102
    reply = await raw.command(subscribe={"channel": ""})
    assert reply["error"]["code"] == 107
    reply = await raw.command(publish={"channel": "feed", "data": {"spoof": True}})
    assert reply["error"]["code"] == 103
    reply = await raw.command(history={"channel": "feed"})
    assert reply["error"]["code"] == 108
    reply = await raw.command(presence={"channel": "feed"})
    assert reply["error"]["code"] == 108
    reply = await raw.command(subscribe={"channel": "closed:room", "token": "forged"})
    assert reply["error"]["code"] == 103
    assert "ping" in await raw.command(ping={})


async def test_expired_and_forged_tokens(bystander: Bystander, open_raw: OpenRaw) -> None:
    raw = await open_raw(bystander.running, rcvbuf=None)
    reply = await raw.command(connect={"token": make_token("mallory", ttl=-60)})
    assert reply["error"]["code"] == 109
    forged = await open_raw(bystander.running, rcvbuf=None)
    await forged.send(json.dumps({"id": 1, "connect": {"token": make_token("mallory", secret="x" * 40)}}))
    closed = await closed_with(forged)
    assert (closed.code, closed.reason) == (3500, "invalid token")
    # A connected client refreshing with an expired token, or another user's token.
    connected = await connected_raw(bystander.running, open_raw)
    reply = await connected.command(refresh={"token": make_token("mallory", ttl=-60)})
    assert reply["error"]["code"] == 109
    await connected.send(json.dumps({"id": 99, "refresh": {"token": make_token("bystander")}}))
    closed = await closed_with(connected)
    assert closed.code == 3500


async def test_publications_with_bad_data(bystander: Bystander, raw: RawClient) -> None:
    reply = await raw.command(publish={"channel": "feed"})
    assert reply["error"]["code"] == 107


async def test_many_clients_misbehaving_at_once(bystander: Bystander, open_raw: OpenRaw) -> None:
    running = bystander.running
    bad_inputs: list[Callable[[RawClient], Awaitable[None]]] = [
        lambda raw: raw.send("garbage"),
        lambda raw: raw.send(json.dumps({"id": 1, "publish": {"channel": "feed", "data": "x" * LIMIT}})),
        lambda raw: raw.send(json.dumps({"id": 1, "subscribe": {"channel": "closed:x"}})),
        lambda raw: raw.send(json.dumps({"id": 1, "nope": {}})),
    ]
    clients = [await connected_raw(running, open_raw) for _ in range(12)]
    await asyncio.gather(*(bad_inputs[i % len(bad_inputs)](raw) for i, raw in enumerate(clients)))
    await wait_until(lambda: running.node.hub.num_sessions == 1 + 6, what="the closed sessions to go")


# --- protobuf ---------------------------------------------------------------------------------

BYSTANDERS = pytest.mark.parametrize("bystander", ["json", "protobuf"], indirect=True)


async def protobuf_raw(running: NodeServer, open_raw: OpenRaw, *, connect: bool = True) -> RawClient:
    raw = await open_raw(running, rcvbuf=None, subprotocols=["centrifuge-protobuf"])
    assert raw.connection.subprotocol == "centrifuge-protobuf"
    if connect:
        await raw.send(protobuf_command({"id": 1, "connect": {"token": make_token("mallory")}}))
        [reply] = protobuf_replies(await raw.connection.recv())
        assert "connect" in reply, reply
    return raw


@BYSTANDERS
@pytest.mark.parametrize(
    "message",
    [
        b"\x10\x08\x01",  # a command declares 16 bytes, 2 follow
        b"\x05\x08\x02\x2a\x09\x0a",  # its subscribe request declares 9 bytes, 1 follows
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a length longer than any varint
        b"\x06\x08\x02\x2a\x02\x0a\xff",  # a channel that isn't UTF-8
        b"\x02\x0f\x01",  # wire type 7
        "{}",  # a text message on a protobuf connection
    ],
    ids=["command-length", "field-length", "varint", "utf-8", "wire-type", "text"],
)
async def test_malformed_protobuf(bystander: Bystander, open_raw: OpenRaw, message: bytes | str) -> None:
    raw = await protobuf_raw(bystander.running, open_raw)
    await raw.send(message)
    closed = await closed_with(raw)
    # The same close as malformed JSON gets.
    assert (closed.code, closed.reason) == (3501, "bad request")
    await wait_until(lambda: bystander.running.node.hub.num_sessions == 1, what="the bad session to go")


@BYSTANDERS
async def test_binary_message_on_a_json_connection(bystander: Bystander, raw: RawClient) -> None:
    await raw.send(b'{"id":2,"ping":{}}')
    closed = await closed_with(raw)
    assert (closed.code, closed.reason) == (3501, "bad request")


@BYSTANDERS
async def test_protobuf_command_before_connect(bystander: Bystander, open_raw: OpenRaw) -> None:
    raw = await protobuf_raw(bystander.running, open_raw, connect=False)
    await raw.send(protobuf_command({"id": 1, "subscribe": {"channel": "feed"}}))
    closed = await closed_with(raw)
    assert closed.code == 3501


@BYSTANDERS
async def test_oversized_protobuf_message(bystander: Bystander, open_raw: OpenRaw) -> None:
    raw = await protobuf_raw(bystander.running, open_raw)
    data = base64.b64encode(bytes(LIMIT)).decode()
    await raw.send(protobuf_command({"id": 2, "publish": {"channel": "feed", "data": data}}))
    closed = await closed_with(raw)
    assert closed.code == 1009


@BYSTANDERS
async def test_protobuf_errors_keep_the_connection(bystander: Bystander, open_raw: OpenRaw) -> None:
    raw = await protobuf_raw(bystander.running, open_raw)
    await raw.send(
        protobuf_command({"id": 2, "subscribe": {"channel": "closed:room"}})
        + protobuf_command({"id": 3, "publish": {"channel": "feed", "data": "AP8="}})
        + protobuf_command({"id": 4, "rpc": {"method": "nothing"}})
        + protobuf_command({"id": 5, "ping": {}})
    )
    replies: list[dict[str, object]] = []
    while len(replies) < 4:
        replies.extend(protobuf_replies(await raw.connection.recv()))
    # An RPC runs beside later commands: its reply may come after the ping's.
    assert sorted(replies, key=lambda reply: reply["id"]) == [  # type: ignore[arg-type, return-value]
        {"id": 2, "error": {"code": 103, "message": "permission denied"}},
        {"id": 3, "error": {"code": 103, "message": "permission denied"}},
        {"id": 4, "error": {"code": 104, "message": "method not found"}},
        {"id": 5, "ping": {}},
    ]
