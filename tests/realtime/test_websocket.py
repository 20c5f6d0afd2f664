"""websocket: a Node's clients over real WebSocket connections (wavecast's own client)."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from wavecast.asyncio import ClientConnection, Server, connect
from wavecast.codes import Disconnect
from wavecast.exceptions import ConnectionClosed
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import (
    WEBSOCKET_PATH,
    ConnectingContext,
    Node,
    NodeConfig,
    Session,
    SubscribeContext,
    websocket_server_options,
)
from wavecast.realtime.websocket import WebSocketTransport

from ..support.protobuf import protobuf_command
from ..support.servers import StartServer, ws_uri
from ..support.timing import wait_until
from ..support.tokens import make_token
from .helpers import MakeNode

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def served(make_node: MakeNode, start_server: StartServer) -> tuple[Node, Server]:
    node = await make_node(allowed_origins=None, client_message_size_limit=4096)
    return node, await start_server(**websocket_server_options(node))


@pytest.fixture
async def ws(served: tuple[Node, Server]) -> AsyncIterator[ClientConnection]:
    _, server = served
    async with connect(ws_uri(server, WEBSOCKET_PATH)) as connection:
        yield connection


async def call(connection: ClientConnection, command: dict[str, Any]) -> dict[str, Any]:
    await connection.send(json.dumps(command))
    while True:
        message = await connection.recv()
        for line in str(message).splitlines():
            reply: dict[str, Any] = json.loads(line)
            if reply.get("id") == command["id"]:
                return reply


async def closed(connection: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes the connection; return the close code and reason."""
    with pytest.raises(ConnectionClosed):
        await connection.recv()
    return connection.close_code, connection.close_reason


@pytest.mark.parametrize(
    ("subprotocols", "path", "codec", "answered"),
    [
        (None, WEBSOCKET_PATH, "json", None),
        (["centrifuge-protobuf"], WEBSOCKET_PATH, "protobuf", "centrifuge-protobuf"),
        (["centrifuge-json"], WEBSOCKET_PATH, "json", "centrifuge-json"),
        (None, WEBSOCKET_PATH + "?format=protobuf", "protobuf", None),
        (None, WEBSOCKET_PATH + "?cf_protocol=protobuf", "protobuf", None),
        # Other offers aren't refused: the connection speaks JSON without a subprotocol.
        (["chat", "superchat"], WEBSOCKET_PATH, "json", None),
    ],
)
async def test_the_handshake_chooses_the_codec(
    served: tuple[Node, Server], subprotocols: list[str] | None, path: str, codec: str, answered: str | None
) -> None:
    node, server = served
    async with connect(ws_uri(server, path), subprotocols=subprotocols) as connection:
        assert connection.subprotocol == answered
        if codec == "json":
            reply = await call(connection, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
            client = reply["connect"]["client"]
        else:
            await connection.send(protobuf_command({"id": 1, "connect": {"token": make_token("42", ttl=None)}}))
            message = await connection.recv()
            assert isinstance(message, bytes)  # binary messages for protobuf
            await wait_until(lambda: node.hub.num_sessions == 1, what="the session")
            [session] = node.hub.sessions()
            client = session.client
        session = node.hub.session(client)
        assert session is not None and session.codec.name == codec


@pytest.mark.parametrize("subprotocols", [None, ["centrifuge-protobuf"]])
async def test_a_message_of_the_wrong_kind_is_a_bad_request(
    served: tuple[Node, Server], subprotocols: list[str] | None
) -> None:
    _, server = served
    async with connect(ws_uri(server, WEBSOCKET_PATH), subprotocols=subprotocols) as connection:
        # JSON in a binary message to a JSON session; protobuf as text would be refused alike.
        wrong: str | bytes = b'{"id":1,"connect":{}}' if subprotocols is None else "{}"
        await connection.send(wrong)
        with pytest.raises(ConnectionClosed) as closed:
            await connection.recv()
    assert (closed.value.code, closed.value.reason) == (3501, "bad request")


def test_server_options(make_node: MakeNode) -> None:
    node = Node()
    options = websocket_server_options(node)
    assert options["ping_interval"] is None
    assert options["limits"].max_message_size == 65536
    assert options["origins"] is None
    # A plain function, which the server calls with no task for the client's connect.
    assert callable(options["handler"]) and not inspect.iscoroutinefunction(options["handler"])
    assert options["select_subprotocol"](["x", "centrifuge-protobuf"]) == "centrifuge-protobuf"
    assert WEBSOCKET_PATH == "/connection/websocket"


def test_server_options_without_a_message_size_limit() -> None:
    limits = websocket_server_options(Node(NodeConfig(client_message_size_limit=None)))["limits"]
    assert limits.max_message_size is limits.max_frame_size is None


async def test_connect_subscribe_and_receive(served: tuple[Node, Server], ws: ClientConnection) -> None:
    node, _ = served
    reply = await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    assert reply["connect"]["client"]
    assert (await call(ws, {"id": 2, "subscribe": {"channel": "news"}})) == {"id": 2, "subscribe": {}}
    await node.publish("news", {"n": 1})
    push = json.loads(await ws.recv())
    assert push["push"]["pub"]["data"] == {"n": 1}


async def test_server_disconnect_closes_with_its_code(served: tuple[Node, Server], ws: ClientConnection) -> None:
    node, _ = served
    await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    await node.disconnect("42", Disconnect(4501, "banned"))
    assert await closed(ws) == (4501, "banned")


async def test_bad_input_closes_with_3501(ws: ClientConnection) -> None:
    await ws.send("not json")
    assert (await closed(ws))[0] == 3501


async def test_the_client_going_away_closes_the_session(served: tuple[Node, Server], ws: ClientConnection) -> None:
    node, _ = served
    await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    await call(ws, {"id": 2, "subscribe": {"channel": "news"}})
    assert node.hub.num_sessions == 1
    await ws.close()
    await wait_until(lambda: node.hub.num_sessions == 0 and not node.channels(), what="the cleanup")


async def test_a_failing_session_closes_with_3004(
    served: tuple[Node, Server], ws: ClientConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Session, data: str | bytes) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(Session, "handle_message", broken)
    await ws.send("{}")
    assert (await closed(ws))[0] == 3004


async def test_a_message_too_big(ws: ClientConnection) -> None:
    await ws.send("x" * 5000)
    assert (await closed(ws))[0] == 1009


async def test_transport_follows_the_connection(served: tuple[Node, Server], ws: ClientConnection) -> None:
    node, _ = served
    await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    [session] = node.hub.sessions()
    transport: Any = session.transport
    assert transport.name == "websocket"
    assert transport.writable()
    # The transport is its connection's on_writable, and wakes the session's queue.
    assert transport.connection.on_writable is transport
    transport.connection.pause_writing()
    assert not transport.writable()
    session.send(PreparedMessage(b'{"push":{}}', text=True))
    assert session.queued
    transport.connection.resume_writing()
    assert session.queued == 0
    assert await ws.recv() == '{"push":{}}'
    # Closing twice: the second finds the connection closing and does nothing.
    transport.close(Disconnect(3001, "shutdown"))
    transport.close(Disconnect(3001, "shutdown"))
    assert (await closed(ws))[0] == 3001


async def test_fan_out_reaches_every_kind_of_subscriber_in_order(served: tuple[Node, Server]) -> None:
    # A positioned channel, subscribers with and without compression and one that reads
    # nothing for a while: the fast path takes some, the Python loop the others (and the
    # Python loop all of them under WAVECAST_NO_SPEEDUPS=1); each gets every publication
    # once, in order, and its position follows.
    node, server = served
    plain = await connect(ws_uri(server, WEBSOCKET_PATH), compression=None)
    deflate = await connect(ws_uri(server, WEBSOCKET_PATH))
    paused = await connect(ws_uri(server, WEBSOCKET_PATH), compression=None)
    clients = (plain, deflate, paused)
    try:
        for index, client in enumerate(clients):
            await call(client, {"id": 1, "connect": {"token": make_token(str(index), ttl=None)}})
            reply = await call(client, {"id": 2, "subscribe": {"channel": "feed:prices"}})
            assert reply["subscribe"]["positioned"] is True
        assert deflate.protocol.extension is not None and plain.protocol.extension is None
        # Small buffers for the one that doesn't read: its publications queue in its session.
        paused.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        for session in node.hub.sessions():
            if session.user == "2":
                sock = session.transport.connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                queued = session
        paused.transport.pause_reading()
        pad = "x" * 3000
        for n in range(1, 41):
            await node.publish("feed:prices", {"n": n, "pad": pad})
        assert queued.queued > 0, "the slow subscriber's queue was never used"
        paused.transport.resume_reading()
        for client in clients:
            received = []
            while len(received) < 40:
                for line in str(await client.recv()).splitlines():
                    pub = json.loads(line)["push"]["pub"]
                    received.append((pub["offset"], pub["data"]["n"]))
            assert received == [(n, n) for n in range(1, 41)]
        subscribers = node.hub.subscribers("feed:prices")
        assert subscribers is not None
        assert sorted(subscription.offset for subscription in subscribers.values()) == [40, 40, 40]
        assert node.stats.deliveries == 120
    finally:
        for client in clients:
            await client.close()


async def test_an_idle_client_holds_no_task(served: tuple[Node, Server], ws: ClientConnection) -> None:
    node, server = served
    await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    await call(ws, {"id": 2, "subscribe": {"channel": "news"}})
    # The handler returned at once; each message's task ended with its reply.
    await wait_until(lambda: not server._handlers, what="no task left")
    (connection,) = server.connections
    transport = connection._sink
    assert isinstance(transport, WebSocketTransport)
    assert transport._worker is None and transport._backlog is None
    await node.publish("news", {"n": 1})
    assert json.loads(await ws.recv())["push"]["pub"]["data"] == {"n": 1}


@pytest.mark.parametrize("later_hook", [False, True])
async def test_the_request_is_kept_only_for_a_hook_that_may_read_it(
    served: tuple[Node, Server], ws: ClientConnection, later_hook: bool
) -> None:
    node, server = served
    seen: list[str | None] = []

    async def connecting(ctx: ConnectingContext) -> None:
        assert ctx.request is not None
        seen.append(ctx.request.headers.get("User-Agent"))

    async def subscribing(ctx: SubscribeContext) -> None:
        assert ctx.session.request is not None
        seen.append(ctx.session.request.path)

    node.on_connecting = connecting
    if later_hook:
        node.on_subscribe = subscribing
    reply = await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    await call(ws, {"id": 2, "subscribe": {"channel": "news"}})
    session = node.hub.session(reply["connect"]["client"])
    assert session is not None
    (connection,) = server.connections
    # The connection never needs it again; the session only for a hook after connect.
    assert connection.request is None and connection.protocol.request is None
    assert (session.request is not None) is later_hook
    agent = seen[0]
    assert agent is not None and agent.startswith("wavecast/")
    assert seen[1:] == ([WEBSOCKET_PATH] if later_hook else [])


async def test_commands_behind_one_that_waits_run_after_it_in_order(
    make_node: MakeNode, start_server: StartServer
) -> None:
    node = await make_node(allowed_origins=None)
    gate = asyncio.Event()

    @node.subscribing
    async def subscribing(context: SubscribeContext) -> None:
        await gate.wait()

    server = await start_server(**websocket_server_options(node), max_queue=4)
    async with connect(ws_uri(server, WEBSOCKET_PATH)) as ws:
        await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
        await ws.send(json.dumps({"id": 2, "subscribe": {"channel": "news"}}))
        for command_id in range(3, 9):
            await ws.send(json.dumps({"id": command_id, "presence_stats": {"channel": "news"}}))
        (connection,) = server.connections
        # Four wait behind the subscribe: reading pauses, and the rest waits in the kernel.
        await wait_until(lambda: connection._reading_paused, what="reading paused")
        gate.set()
        replies = [json.loads(await ws.recv()) for _ in range(7)]
        assert [reply["id"] for reply in replies] == list(range(2, 9))
        assert replies[0] == {"id": 2, "subscribe": {}}
        await wait_until(lambda: not server._handlers, what="the task's end")
        assert not connection._reading_paused


async def test_a_session_closed_by_the_server_ends_its_connection(
    served: tuple[Node, Server], ws: ClientConnection
) -> None:
    _, server = served
    await call(ws, {"id": 1, "connect": {"token": make_token("42", ttl=None)}})
    (connection,) = server.connections
    transport = connection._sink
    assert isinstance(transport, WebSocketTransport) and transport.session is not None
    # Closed without a code to send (as by a shutdown): the next message finds it closed.
    transport.session.disconnect()
    await ws.send("{}")
    assert (await closed(ws))[0] == 1000
