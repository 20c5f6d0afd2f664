"""Bad input on the HTTP-streaming, SSE and emulation endpoints, over real sockets, never
affects other clients.

Each case runs while two bystanders, a centrifuge-python client on WebSocket and a raw client
on HTTP-streaming, receive a steady stream of publications: afterwards each must have received
every one, in order, on the connection it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from wavecast.realtime import Node
from wavecast.server.asgi import NodeApp

from ..support.attack import small_sndbuf
from ..support.config import make_config
from ..support.http import http
from ..support.peers import RawSocket, open_raw_client
from ..support.protobuf import protobuf_command, protobuf_replies
from ..support.sdk import Clients, SubEvents, subscribe
from ..support.servers import StartWavecast, serve_uvicorn
from ..support.streams import StreamClient, open_raw_stream
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

LIMIT = 8192
QUEUE = 65536
STREAMS = {"http_stream": {"enabled": True}, "sse": {"enabled": True}}
CHANNEL = "news:feed"
CONNECT = json.dumps({"id": 1, "connect": {"token": make_token("sse")}})


@dataclass
class Served:
    """A server with both fallbacks: ``wavecast serve``'s, or ``NodeApp`` under uvicorn."""

    url: str
    ws_url: str
    port: int
    node: Node


@contextlib.asynccontextmanager
async def served(kind: str, start_wavecast: StartWavecast, **sections: Any) -> AsyncIterator[Served]:
    """Start the server of ``kind`` (``"serve"`` or ``"asgi"``) with ``sections`` beside both
    fallbacks; the ``"serve"`` one stops with the test."""
    sections = {**sections, **STREAMS}
    if kind == "serve":
        running = await start_wavecast(**sections)
        yield Served(running.url, running.ws_url, running.port, running.node)
        return
    config = make_config(**sections)
    node = Node(config.node_config())
    mounted = await serve_uvicorn(NodeApp(node, config=config))
    try:
        yield Served(mounted.url, mounted.ws_url, mounted.port, node)
    finally:
        await mounted.stop()


@dataclass
class Bystanders:
    running: Served
    events: SubEvents
    stream: StreamClient
    published: list[int]

    async def open_stream(self, user: str = "attacker") -> StreamClient:
        stream = await StreamClient.open(self.running.url, user)
        self._opened.append(stream)
        return stream

    def __post_init__(self) -> None:
        self._opened: list[StreamClient] = []


@pytest.fixture(params=["serve", "asgi"])
async def bystanders(
    request: pytest.FixtureRequest, start_wavecast: StartWavecast, make_client: Clients
) -> AsyncIterator[Bystanders]:
    """A server with both fallbacks (:func:`served`), and two clients receiving publications
    while the test misbehaves."""
    client_limits = {
        "client_message_size_limit": LIMIT,
        "client_queue_max_size": QUEUE,
        "command_rate": 20.0,
        "command_burst": 20,
    }
    websocket = {"open_timeout": 0.5, "write_limit": 16384}
    async with served(request.param, start_wavecast, client=client_limits, websocket=websocket) as running:
        async for watched in _watch(running, make_client):
            yield watched


async def _watch(running: Served, make_client: Clients) -> AsyncIterator[Bystanders]:
    client, _ = await make_client.connected(running.ws_url, "bystander")
    events = await subscribe(client, CHANNEL)
    stream = await StreamClient.open(running.url, "streamer")
    assert (await stream.command(subscribe={"channel": CHANNEL}))["subscribe"] is not None
    streamed: list[object] = []

    async def read_stream() -> None:
        while replies := await stream.recv(timeout=60_000 * MS):
            push = replies[0].get("push", {})
            if "pub" in push:
                streamed.append(push["pub"]["data"])

    reader = asyncio.get_running_loop().create_task(read_stream())
    published: list[int] = []

    async def publish() -> None:
        n = 0
        while True:
            await running.node.publish(CHANNEL, n)
            published.append(n)
            n += 1
            await asyncio.sleep(5 * MS)

    publisher = asyncio.get_running_loop().create_task(publish())
    watched = Bystanders(running, events, stream, published)
    await wait_until(lambda: len(events.data) >= 5 and len(streamed) >= 5, what="the publications to flow")
    try:
        yield watched
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        for opened in watched._opened:
            await opened.close()
    # Both bystanders saw every publication, on their first connections.
    await wait_until(lambda: len(events.data) == len(streamed) == len(published), what="every publication")
    assert events.data == published and streamed == published
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await stream.close()


async def test_unknown_and_closed_sessions(bystanders: Bystanders) -> None:
    unknown = await bystanders.stream.post("{}", session="no-such-session")
    assert (unknown.status, unknown.text) == (404, "Not Found: no such session, or it ended\n")
    ended = await bystanders.open_stream()
    session = ended.session
    await ended.close()
    running = bystanders.running
    await wait_until(lambda: not running.node.hub.user_sessions("attacker"), what="the session to end")
    gone = await ended.post("{}", session=session)
    assert gone.status == 404


@pytest.mark.parametrize("size", [LIMIT + 1, 200_000])
async def test_oversized_bodies(bystanders: Bystanders, size: int) -> None:
    url = bystanders.running.url
    stream = await bystanders.open_stream()
    posted = await stream.post("x" * size)
    assert posted.status == 413
    connect = json.dumps({"id": 1, "connect": {}, "pad": "x" * size})
    refused = await http("POST", f"{url}/connection/http_stream", connect)
    assert refused.status == 413
    # The session whose POST was refused keeps being served.
    assert (await stream.command(rpc={"method": "nothing"}))["error"]["code"] == 104


async def test_slow_bodies(bystanders: Bystanders) -> None:
    """A POST whose body never finishes arriving is dropped after ``websocket.open_timeout``."""
    port = bystanders.running.port
    slow = []
    for path in ("/emulation", "/connection/http_stream"):
        raw = await open_raw_client(port)
        await raw.send(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n".encode())
        slow.append(raw)

    async def dribble(raw: RawSocket) -> float:
        start = asyncio.get_running_loop().time()
        with contextlib.suppress(OSError):
            for _ in range(200):
                await raw.send(b"x")
                await asyncio.sleep(20 * MS)
                try:
                    if not raw.sock.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    continue
        with contextlib.suppress(OSError):
            await raw.read_until_eof()
        return asyncio.get_running_loop().time() - start

    with contextlib.ExitStack() as closing:
        for raw in slow:
            closing.enter_context(raw)
        lasted = await asyncio.gather(*(dribble(raw) for raw in slow))
    # Dropped well before their 1,000 bytes at 50 a second took 20 s.
    assert all(seconds < 3 for seconds in lasted), lasted


async def test_malformed_commands_close_only_their_session(bystanders: Bystanders) -> None:
    stream = await bystanders.open_stream()
    assert (await stream.post("{not json")).status == 204
    # Centrifugo's answer to a command it can't decode: disconnect 3501, and the stream ends.
    assert await stream.recv() == [{"push": {"disconnect": {"code": 3501, "reason": "bad request"}}}]
    assert await stream.recv() == []
    assert (await stream.post("{}")).status == 404


async def test_flood_of_posts_meets_the_command_rate(bystanders: Bystanders) -> None:
    stream = await bystanders.open_stream()
    commands = [json.dumps({"id": n, "rpc": {"method": "nothing"}}) for n in range(2, 62)]
    answers = await asyncio.gather(*(stream.post(command) for command in commands))
    assert {answer.status for answer in answers} == {204}
    codes = []
    while len(codes) < len(commands):
        [reply] = await stream.recv()
        codes.append(reply["error"]["code"])
    # A burst of 20 allowed, as for a WebSocket client; "too many requests" past it.
    assert codes.count(111) >= 30 and codes.count(104) <= 30, codes


async def test_stream_that_doesnt_read_is_a_slow_consumer(bystanders: Bystanders) -> None:
    running = bystanders.running
    raw, session = await open_raw_stream(running.port, "slow")
    with raw:
        subscribe = json.dumps({"id": 2, "subscribe": {"channel": "news:big"}})
        posted = await http("POST", f"{running.url}/emulation", {"session": session, "data": subscribe})
        assert posted.status == 204
        sent = 0
        while running.node.hub.user_sessions("slow"):
            assert sent < 64 * 2**20, "the stream was never found slow"
            await running.node.publish("news:big", "x" * 8192)
            sent += 8192
            await asyncio.sleep(0)
        # The queue's limit, then the default policy: disconnect 3008, the stream ends.
        assert sent >= QUEUE
        # Only the bystander's stream is left in the table of streamed sessions.
        assert len(running.node.emulation) == 1
        gone = await http("POST", f"{running.url}/emulation", {"session": session, "data": "{}"})
        assert gone.status == 404
        data = await raw.read_until_eof()
        assert b'"code":3008' in data.replace(b" ", b"")


async def test_vanished_clients_free_their_sessions(bystanders: Bystanders) -> None:
    running = bystanders.running
    for _ in range(3):
        streams = [await open_raw_stream(running.port, "vanishing") for _ in range(50)]
        assert len(running.node.hub.user_sessions("vanishing")) == 50
        for raw, _session in streams:
            # Gone without a word, as a phone that loses its network: a reset, no FIN.
            raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
        await wait_until(lambda: not running.node.hub.user_sessions("vanishing"), what="the sessions to end")
        assert len(running.node.emulation) == 1


async def test_pings_flow_on_streams(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(client={"client_ping_interval": 1.0, "client_pong_timeout": 0.8}, **STREAMS)
    answering = await StreamClient.open(running.url, "answering")
    silent = await StreamClient.open(running.url, "silent")
    try:
        # The protocol's ping, an empty reply; the client's pong, an empty command by POST.
        for _ in range(2):
            assert await answering.recv() == [{}]
            assert (await answering.post("{}")).status == 204
        assert await silent.recv() == [{}]
        assert await silent.recv() == [{"push": {"disconnect": {"code": 3012, "reason": "no pong", "reconnect": True}}}]
        assert await silent.recv() == []
        assert running.node.hub.user_sessions("answering")
    finally:
        await answering.close()
        await silent.close()


async def test_graceful_shutdown_ends_every_stream(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(**STREAMS)
    stream = await StreamClient.open(running.url, "streamed")
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{running.url}/connection/sse", params={"cf_connect": CONNECT}) as sse,
    ):
        assert await sse.content.readline() == b"\r\n"
        assert json.loads((await sse.content.readline())[len(b"data: ") :])["id"] == 1
        await sse.content.readline()
        await running.stop()
        shutdown = {"push": {"disconnect": {"code": 3001, "reason": "shutdown", "reconnect": True}}}
        assert json.loads((await sse.content.readline())[len(b"data: ") :]) == shutdown
        assert await stream.recv() == [shutdown]
        assert await stream.recv() == []
        await sse.content.readline()
        assert await sse.content.read() == b""
    await stream.close()


ORIGIN = "https://app.example"


@pytest.fixture(params=["serve", "asgi"])
async def guarded(request: pytest.FixtureRequest, start_wavecast: StartWavecast) -> AsyncIterator[str]:
    """The base URL of a server that allows only :data:`ORIGIN` (:func:`served`)."""
    async with served(request.param, start_wavecast, server={"allowed_origins": [ORIGIN]}) as running:
        yield running.url


PATHS = ["/emulation", "/connection/http_stream", "/connection/sse"]


@pytest.mark.parametrize("path", PATHS)
async def test_cors_preflight_for_allowed_origins_only(guarded: str, path: str) -> None:
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = await http("OPTIONS", guarded + path, headers={"Origin": ORIGIN, **asked})
    headers = {name.lower(): value for name, value in allowed.headers.items()}
    assert allowed.status == 204
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-headers"] == "content-type"
    assert "POST" in headers["access-control-allow-methods"]
    refused = await http("OPTIONS", guarded + path, headers={"Origin": "https://evil.example", **asked})
    assert refused.status == 403
    assert "access-control-allow-origin" not in {name.lower() for name in refused.headers}


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://ex]ample.com"])
async def test_refused_origins_open_no_stream_and_post_nothing(guarded: str, origin: str) -> None:
    stream = await StreamClient.open(guarded, "ann", headers={"Origin": ORIGIN})
    try:
        assert stream.response.headers["Access-Control-Allow-Origin"] == ORIGIN
        refused = {"Origin": origin}
        opened = await http("POST", f"{guarded}/connection/http_stream", CONNECT, refused)
        assert opened.status == 403
        query = urllib.parse.urlencode({"cf_connect": CONNECT})
        sse = await http("GET", f"{guarded}/connection/sse?{query}", headers=refused)
        assert sse.status == 403
        # A hostile page that learnt a session id still can't command it.
        rpc = json.dumps({"id": 2, "rpc": {"method": "nothing"}})
        body = {"session": stream.session, "node": "", "data": rpc}
        assert (await http("POST", f"{guarded}/emulation", body, refused)).status == 403
        assert (await http("POST", f"{guarded}/emulation", body, {"Origin": ORIGIN})).status == 204
        assert (await stream.recv())[0]["id"] == 2
    finally:
        await stream.close()


# Under an ASGI server it's the server that closes the connection after NodeApp's 413, and
# uvicorn resets it while the client still sends, so the client may never read the 413.
@pytest.mark.parametrize("bystanders", ["serve"], indirect=True)
@pytest.mark.parametrize("path", ["/emulation", "/connection/http_stream"])
async def test_huge_bodies_are_refused_before_they_are_read(bystanders: Bystanders, path: str) -> None:
    """A body that says it is 100 MiB is answered 413 once ``max_body_size`` (1 MiB) has come,
    and the connection closes: the rest is never read."""
    declared = 100 * 2**20
    with await open_raw_client(bystanders.running.port) as raw:
        small_sndbuf(raw)
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n\r\n"
        await raw.send(head.encode())
        sent = 0

        async def send_body() -> None:
            nonlocal sent
            with contextlib.suppress(OSError):
                while sent < declared:
                    await raw.send(b"x" * 65536)
                    sent += 65536

        sender = asyncio.get_running_loop().create_task(send_body())
        try:
            status, _, _ = await raw.read_response()
            assert status == 413
            async with asyncio.timeout(5000 * MS):
                await raw.read_until_eof()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        assert sent < declared / 4, sent


async def read_protobuf_reply(response: aiohttp.ClientResponse, buffer: bytearray) -> dict[str, Any] | None:
    """The next length-delimited reply of a Protobuf stream; ``None`` once it has ended."""
    while True:
        length = shift = pos = 0
        while pos < len(buffer):
            byte = buffer[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if pos + length <= len(buffer):
                    [reply] = protobuf_replies(bytes(buffer[: pos + length]))
                    del buffer[: pos + length]
                    return reply
                break
        async with asyncio.timeout(5000 * MS):
            data = await response.content.readany()
        if not data:
            return None
        buffer += data


async def test_malformed_protobuf_closes_only_its_session(bystanders: Bystanders) -> None:
    from centrifuge.protocol import client_pb2

    url = bystanders.running.url
    binary = {"Content-Type": "application/octet-stream"}
    connect = protobuf_command({"id": 1, "connect": {"token": make_token("protobuf")}})
    async with (
        aiohttp.ClientSession() as client,
        client.post(f"{url}/connection/http_stream", data=connect, headers=binary) as stream,
    ):
        buffer = bytearray()
        reply = await read_protobuf_reply(stream, buffer)
        assert reply is not None
        session = reply["connect"]["session"]
        # A length that runs past the end of the data: not a Command.
        bad = client_pb2.EmulationRequest(session=session, data=b"\x05\x08").SerializeToString()
        assert (await http("POST", f"{url}/emulation", bad, binary)).status == 204
        assert await read_protobuf_reply(stream, buffer) == {
            "push": {"disconnect": {"code": 3501, "reason": "bad request"}}
        }
        assert await read_protobuf_reply(stream, buffer) is None
    # A body that isn't an EmulationRequest at all.
    assert (await http("POST", f"{url}/emulation", b"\xff\xff\xff", binary)).status == 400


async def test_floods_of_posts_to_unknown_sessions_and_oversized_sse_connects(bystanders: Bystanders) -> None:
    url = bystanders.running.url
    body = {"session": "guessed", "node": "", "data": "{}"}
    answers = await asyncio.gather(*(http("POST", f"{url}/emulation", body) for _ in range(200)))
    assert {answer.status for answer in answers} == {404}
    # SSE carries its connect in the URL: past the message size limit, or past the request
    # line's (wavecast serve's 8 KiB, 414), it is refused before any session starts.
    for size in (LIMIT + 100, 20_000):
        query = urllib.parse.urlencode({"cf_connect": "x" * size})
        assert (await http("GET", f"{url}/connection/sse?{query}")).status in {413, 414}
    assert len(bystanders.running.node.emulation) == 1
