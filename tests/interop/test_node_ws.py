"""Interop with Node's ``ws`` package, in both directions, through the scripts in ``js/``."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from wavecast import CloseCode, ConnectionClosedError, ConnectionClosedOK
from wavecast.asyncio import connect

from ..support.js import NodeScript, RunNode
from ..support.servers import Closes, StartServer, ws_uri
from ..support.timing import MS, wait_until

pytestmark = pytest.mark.interop


def _options(*steps: dict[str, Any], **options: Any) -> str:
    return json.dumps({"steps": list(steps), **options})


def _messages(events: list[dict[str, Any]]) -> list[str | bytes]:
    return [
        base64.b64decode(event["data"]) if event["binary"] else event["data"]
        for event in events
        if event["event"] == "message"
    ]


# --- ws client -> wavecast server -----------------------------------------------------------


@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
async def test_ws_client_echo(start_server: StartServer, run_node: RunNode, deflate: bool) -> None:
    closes = Closes()
    server = await start_server(closes)
    big = os.urandom(256 * 1024)
    text = "compressible text ✓ " * 4000
    # The options go through stdin: argv can't hold a 256 KiB message.
    client = await run_node(
        "ws_client.js",
        ws_uri(server, "/echo"),
        stdin=_options(
            {"send": "hello ✓"},
            {"sendBinary": base64.b64encode(b"\x00\x01\xfe\xff").decode()},
            {"sendBinary": base64.b64encode(big).decode()},
            {"send": text},
            {"sendFragments": ["frag", "men", "ted"]},
            {"expect": 5},
            {"close": [1000, "done"]},
            deflate=deflate,
        ).encode(),
    )
    events = await client.finish()
    opened = events[0]
    assert opened["event"] == "open"
    assert ("permessage-deflate" in opened["extensions"]) is deflate
    assert _messages(events) == ["hello ✓", b"\x00\x01\xfe\xff", big, text, "fragmented"]
    assert events[-1] == {"event": "close", "code": 1000, "reason": ""}
    await wait_until(lambda: not server.connections, what="the connection to close")
    assert closes.errors == []
    assert (closes.connections[0].close_code, closes.connections[0].close_reason) == (1000, "done")


async def test_ws_client_closes_with_code_and_reason(start_server: StartServer, run_node: RunNode) -> None:
    closes = Closes()
    server = await start_server(closes)
    client = await run_node("ws_client.js", ws_uri(server), _options({"close": [4000, "node says bye"]}))
    events = await client.finish()
    assert events[-1] == {"event": "close", "code": 4000, "reason": ""}
    await wait_until(lambda: bool(closes.errors), what="the handler")
    assert isinstance(closes.errors[0], ConnectionClosedError)
    assert (closes.errors[0].code, closes.errors[0].reason) == (4000, "node says bye")


async def test_wavecast_server_closes_ws_client(start_server: StartServer, run_node: RunNode) -> None:
    server = await start_server(Closes())
    client = await run_node("ws_client.js", ws_uri(server), _options({"send": "close me"}))
    events = await client.finish()
    assert events[-1] == {"event": "close", "code": 4001, "reason": "as you wish"}


async def test_server_close_gives_ws_client_1001(start_server: StartServer, run_node: RunNode) -> None:
    server = await start_server(Closes())
    client = await run_node("ws_client.js", ws_uri(server), "{}")
    await client.wait_for("open")
    server.close()
    events = await client.finish()
    assert events[-1] == {"event": "close", "code": 1001, "reason": ""}
    await server.wait_closed()


async def test_pings_between_ws_client_and_wavecast_server(start_server: StartServer, run_node: RunNode) -> None:
    server = await start_server(Closes())
    client = await run_node(
        "ws_client.js",
        ws_uri(server),
        _options({"ping": "from node"}, {"send": "ping me"}, {"expect": 1}, {"close": [1000, ""]}),
    )
    events = await client.finish()
    assert {"event": "pong", "data": "from node"} in events
    assert _messages(events) == ["pinged"]


async def test_ws_client_rejected_by_origin(start_server: StartServer, run_node: RunNode) -> None:
    server = await start_server(Closes(), origins=["https://good.example"])
    client = await run_node("ws_client.js", ws_uri(server), _options(headers={"Origin": "https://evil.example"}))
    events = await client.finish()
    assert {"event": "unexpected-response", "status": 403} in events


async def test_ws_client_subprotocol(start_server: StartServer, run_node: RunNode) -> None:
    server = await start_server(Closes(), subprotocols=["chat.v2", "chat.v1"])
    client = await run_node("ws_client.js", ws_uri(server), _options({"close": [1000, ""]}, protocols=["chat.v1"]))
    events = await client.finish()
    assert events[0]["protocol"] == "chat.v1"


# --- wavecast client -> ws server -----------------------------------------------------------


async def _start_ws_server(run_node: RunNode) -> tuple[NodeScript, str]:
    server = await run_node("ws_echo_server.js")
    listening = await server.wait_for("listening")
    return server, f"ws://127.0.0.1:{listening['port']}"


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_wavecast_client_with_ws_server(run_node: RunNode, compression: str | None) -> None:
    node, uri = await _start_ws_server(run_node)
    big = os.urandom(256 * 1024)
    text = "compressible text ✓ " * 4000
    async with connect(f"{uri}/path?x=1", compression=compression, subprotocols=["chat"]) as client:
        assert client.subprotocol == "chat"
        connection = await node.wait_for("connection")
        assert connection["path"] == "/path?x=1"
        assert connection["protocol"] == "chat"
        assert ("permessage-deflate" in connection["extensions"]) is (compression is not None)
        assert connection["userAgent"].startswith("wavecast/")
        messages: list[str | bytes] = ["hello ✓", b"\x00\xff", big, text]
        for message in messages:
            await client.send(message)
            assert await client.recv() == message
        await client.send_fragments(["frag", "mented"])
        assert await client.recv() == "fragmented"
    assert client.close_code == CloseCode.NORMAL_CLOSURE
    assert await node.wait_for("close") == {"event": "close", "code": 1000, "reason": ""}


async def test_wavecast_client_closes_ws_server_connection(run_node: RunNode) -> None:
    node, uri = await _start_ws_server(run_node)
    client = await connect(uri)
    await client.close(4000, "wavecast says bye")
    assert await node.wait_for("close") == {"event": "close", "code": 4000, "reason": "wavecast says bye"}
    assert client.close_code == 4000


async def test_ws_server_closes_wavecast_client(run_node: RunNode) -> None:
    _, uri = await _start_ws_server(run_node)
    async with connect(uri) as client:
        await client.send("close:4002:node server says bye")
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
    assert (info.value.code, info.value.reason) == (4002, "node server says bye")


async def test_ws_server_normal_close_ends_iteration(run_node: RunNode) -> None:
    _, uri = await _start_ws_server(run_node)
    async with connect(uri) as client:
        await client.send("before")
        await client.send("close:1000:bye")
        received = [message async for message in client]
    assert received == ["before"]
    assert client.close_code == CloseCode.NORMAL_CLOSURE
    with pytest.raises(ConnectionClosedOK):
        await client.recv()


async def test_pings_between_wavecast_client_and_ws_server(run_node: RunNode) -> None:
    node, uri = await _start_ws_server(run_node)
    async with connect(uri, ping_interval=20 * MS, ping_timeout=2000 * MS) as client:
        await client.send("ping-me")
        # Our client answers the server's ping; the server reports the pong.
        assert await node.wait_for("pong") == {"event": "pong", "data": "from-node"}
        # Our keepalive pings reach the server, which answers them.
        await node.wait_for("ping")
        await wait_until(lambda: client.latency > 0, what="keepalive")
        latency = await (await client.ping("explicit"))
        assert latency >= 0
