"""Interop with the Python ``websockets`` package (new asyncio API), in both directions."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection as WsServerConnection, serve as ws_serve
from websockets.exceptions import (
    ConnectionClosedError as WsConnectionClosedError,
    ConnectionClosedOK as WsConnectionClosedOK,
)
from websockets.frames import Close as WsClose
from websockets.http11 import Request as WsRequest, Response as WsResponse
from websockets.typing import Origin, Subprotocol
from websockets.version import version as websockets_version

from wavecast import CloseCode, ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from wavecast.asyncio import connect

from ..support.servers import Closes, StartServer, ws_uri
from ..support.timing import MS, wait_until
from ..support.tools import require

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def _new_websockets() -> None:
    require(int(websockets_version.split(".")[0]) >= 14, "websockets >= 14 is required for its new asyncio API")


async def _check_echo(ws: Any, compression: str | None, messages: list[str | bytes]) -> None:
    """Check what a client (of websockets or wavecast) and an echo server negotiated, and that
    ``messages``, a large binary one and a compressible text come back as they went."""
    assert ws.response is not None
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
    assert ("permessage-deflate" in (extensions or "")) if compression else extensions is None
    for message in [*messages, os.urandom(512 * 1024), "compressible text " * 5000]:
        await ws.send(message)
        assert await ws.recv() == message


# --- websockets client -> wavecast server --------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client_echo(start_server: StartServer, compression: str | None) -> None:
    server = await start_server(Closes())
    async with ws_connect(ws_uri(server), compression=compression) as ws:
        await _check_echo(ws, compression, ["hello ✓", b"\x00\x01\xfe\xff"])
        # websockets sends an iterable as a fragmented message.
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented"
        await ws.send("fragments")
        assert await ws.recv() == "fragments!"


async def test_websockets_client_closes_with_code_and_reason(start_server: StartServer) -> None:
    closes = Closes()
    server = await start_server(closes)
    async with ws_connect(ws_uri(server)) as ws:
        await ws.close(4000, "websockets says bye")
    await wait_until(lambda: bool(closes.errors), what="the handler")
    [error] = closes.errors
    assert isinstance(error, ConnectionClosedError)
    assert (error.code, error.reason) == (4000, "websockets says bye")
    assert ws.close_code == 4000


async def test_websockets_client_normal_close_ends_iteration(start_server: StartServer) -> None:
    closes = Closes()
    server = await start_server(closes)
    async with ws_connect(ws_uri(server)) as ws:
        await ws.send("one")
        assert await ws.recv() == "one"
    await wait_until(lambda: not server.connections, what="the connection to close")
    # async for ended quietly on 1000.
    assert closes.errors == []
    assert closes.connections[0].close_code == CloseCode.NORMAL_CLOSURE


async def _closed_after(start_server: StartServer, message: str) -> WsClose:
    """Send ``message`` to a :class:`Closes` server from a websockets client, which the server
    then closes; return the close frame it sent."""
    server = await start_server(Closes())
    async with ws_connect(ws_uri(server)) as ws:
        await ws.send(message)
        with pytest.raises(WsConnectionClosedError) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd


async def test_wavecast_server_closes_websockets_client(start_server: StartServer) -> None:
    close = await _closed_after(start_server, "close me")
    assert (close.code, close.reason) == (4001, "as you wish")


async def test_handler_failure_gives_websockets_client_1011(start_server: StartServer) -> None:
    close = await _closed_after(start_server, "fail")
    assert close.code == CloseCode.INTERNAL_ERROR


async def test_server_close_gives_websockets_client_1001(start_server: StartServer) -> None:
    server = await start_server(Closes())
    async with ws_connect(ws_uri(server)) as ws:
        await wait_until(lambda: len(server.connections) == 1, what="the connection")
        server.close()
        with pytest.raises(WsConnectionClosedOK) as info:
            await ws.recv()
        await server.wait_closed()
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.GOING_AWAY


async def test_pings_between_websockets_client_and_wavecast_server(start_server: StartServer) -> None:
    closes = Closes()
    server = await start_server(closes, ping_interval=20 * MS, ping_timeout=2000 * MS)
    async with ws_connect(ws_uri(server), ping_interval=20 * MS, ping_timeout=2000 * MS) as ws:
        async with asyncio.timeout(2000 * MS):
            latency = await (await ws.ping(b"from websockets"))
        assert latency >= 0
        await wait_until(lambda: bool(closes.connections), what="the handler")
        async with asyncio.timeout(2000 * MS):
            assert await (await closes.connections[0].ping(b"from wavecast")) >= 0
        # Keepalive pings flow both ways and get answered.
        await wait_until(lambda: closes.connections[0].latency > 0 and ws.latency > 0, what="keepalive")
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def test_websockets_client_message_too_big(start_server: StartServer) -> None:
    server = await start_server(Closes())
    async with ws_connect(ws_uri(server), compression=None) as ws:
        await ws.send(b"x" * (2**20 + 1))
        with pytest.raises(WsConnectionClosedError) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


async def test_websockets_client_subprotocol_and_origin(start_server: StartServer) -> None:
    server = await start_server(Closes(), subprotocols=["chat"], origins=["https://good.example"])
    good, evil = Origin("https://good.example"), Origin("https://evil.example")
    async with ws_connect(ws_uri(server), subprotocols=[Subprotocol("chat")], origin=good) as ws:
        assert ws.subprotocol == "chat"
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        await ws_connect(ws_uri(server), origin=evil)
    assert info.value.response.status_code == 403


# --- wavecast client -> websockets server --------------------------------------------------


async def _ws_echo(ws: WsServerConnection) -> None:
    async for message in ws:
        if message == "close me":
            await ws.close(4002, "websockets server says bye")
        elif message == "ping me":
            await (await ws.ping(b"from websockets server"))
            await ws.send("pinged")
        else:
            await ws.send(message)


async def _ws_server(**kwargs: Any) -> Any:
    return await ws_serve(_ws_echo, "127.0.0.1", 0, **kwargs)


def _ws_uri(server: Any) -> str:
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_wavecast_client_echo_with_websockets_server(compression: str | None) -> None:
    async with await _ws_server() as server, connect(_ws_uri(server), compression=compression) as client:
        await _check_echo(client, compression, ["hello ✓", b"\x00\xff"])
        await client.send_fragments([b"frag", b"mented"])
        assert await client.recv() == b"fragmented"
    assert client.close_code == CloseCode.NORMAL_CLOSURE


async def test_wavecast_client_closes_websockets_server_connection() -> None:
    closed: list[tuple[int | None, str | None]] = []

    async def handler(ws: WsServerConnection) -> None:
        await ws.wait_closed()
        closed.append((ws.close_code, ws.close_reason))

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        client = await connect(_ws_uri(server))
        await client.close(4000, "wavecast says bye")
        await wait_until(lambda: bool(closed), what="the websockets handler")
    assert closed == [(4000, "wavecast says bye")]
    assert client.close_code == 4000


async def test_websockets_server_closes_wavecast_client() -> None:
    async with await _ws_server() as server, connect(_ws_uri(server)) as client:
        await client.send("close me")
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
    assert (info.value.code, info.value.reason) == (4002, "websockets server says bye")


async def test_websockets_server_shutdown_gives_1001() -> None:
    server = await _ws_server()
    async with connect(_ws_uri(server)) as client:
        server.close()
        with pytest.raises(ConnectionClosedOK) as info:
            await client.recv()
        await server.wait_closed()
    assert info.value.code == CloseCode.GOING_AWAY


async def test_pings_between_wavecast_client_and_websockets_server() -> None:
    async with (
        await _ws_server(ping_interval=20 * MS, ping_timeout=2000 * MS) as server,
        connect(_ws_uri(server), ping_interval=20 * MS, ping_timeout=2000 * MS) as client,
    ):
        await client.send("ping me")
        async with asyncio.timeout(2000 * MS):
            assert await client.recv() == "pinged"
            assert await (await client.ping()) >= 0
        await wait_until(lambda: client.latency > 0, what="keepalive")
        connection = next(iter(server.connections))
        await wait_until(lambda: connection.latency > 0, what="the websockets server's keepalive")
        await client.send("still open")
        assert await client.recv() == "still open"


async def test_websockets_server_rejection_gives_invalid_status() -> None:
    def reject(connection: WsServerConnection, request: WsRequest) -> WsResponse:
        return connection.respond(403, "Forbidden\n")

    async with await _ws_server(process_request=reject) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(_ws_uri(server))
    assert info.value.status_code == 403
