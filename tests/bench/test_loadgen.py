"""The loadgen's fallback transports (``--transport http_stream`` and ``sse``) and its storm mode over real sockets.

A small stream server in this process speaks the two transports as centrifuge-js and
Centrifugo define them: it checks the request (``POST`` with the connect command as its JSON
body; ``GET`` with it in ``cf_connect``), answers 200 with a chunked body, the connect reply,
then a push per publication of the loadgen's publisher (a WebSocket on another port), as
newline-delimited JSON or as ``data:`` events. Its chunks cut lines anywhere and carry
extensions, so that the loadgen's parser meets what a proxy may do to a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import wavecast
from tests.support.processes import LoggedServer, free_port, free_port_pair, terminate, wait_answering
from tests.support.servers import StartWavecast
from tests.support.timing import MS
from tests.support.tokens import make_token
from tests.support.tools import ROOT, load_script, require

INSTRUMENT = ROOT / "bench" / "loadgen"
CONNECT = '{"id":1,"connect":{"token":"t"}}'
UNWRAP = '{"push":{"channel":"bench","pub":{"data":"'
SUBSCRIBERS = 20


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> str:
    require(shutil.which("cc") or shutil.which("gcc"), "no C compiler")
    build = tmp_path_factory.mktemp("loadgen")
    subprocess.run(["make", "-s", "-C", str(INSTRUMENT), f"BUILD={build}"], check=True, capture_output=True)
    return str(build / "loadgen")


class StreamServer:
    """The fallback transports' wire format, enough to carry a channel's pushes."""

    def __init__(self, transport: str, *, end_after: int | None = None) -> None:
        self.transport = transport
        self.end_after = end_after
        self.streams: list[asyncio.StreamWriter] = []
        self.requests: list[tuple[str, str, dict[str, str], str]] = []
        self.pushes = 0

    def frame(self, message: str) -> bytes:
        return f"data: {message}\n\n".encode() if self.transport == "sse" else f"{message}\n".encode()

    @staticmethod
    def chunked(data: bytes) -> bytes:
        """``data`` in two chunks, cut in the middle of a line, the first with an extension."""
        cut = len(data) // 2
        first, second = data[:cut], data[cut:]
        return b"%x;ext=1\r\n%s\r\n%X\r\n%s\r\n" % (len(first), first, len(second), second)

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, target, _ = head.split("\r\n")[0].split(" ")
        headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if line)
        body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
        path, _, query = target.partition("?")
        self.requests.append((method, path, headers, body))
        if self.transport == "sse":
            connect = urllib.parse.parse_qs(query).get("cf_connect", [""])[0]
            valid = method == "GET" and path == "/connection/sse" and "text/event-stream" in headers.get("accept", "")
            content_type = "text/event-stream; charset=utf-8"
        else:
            connect = body
            valid = method == "POST" and path == "/connection/http_stream"
            valid = valid and headers.get("content-type") == "application/json"
            content_type = "application/json"
        if not valid or json.loads(connect or "null") != json.loads(CONNECT):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            await writer.wait_closed()
            return
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
            "Cache-Control: no-cache\r\n\r\n".encode()
        )
        prelude = b"\r\n" if self.transport == "sse" else b""
        reply = {"id": 1, "connect": {"client": "c", "version": "0", "session": "s", "node": "n"}}
        writer.write(self.chunked(prelude + self.frame(json.dumps(reply, separators=(",", ":")))))
        self.streams.append(writer)

    def push(self, payload: str) -> None:
        push = self.frame(UNWRAP + payload + '","offset":1}}}')
        self.pushes += 1
        for writer in self.streams:
            if self.end_after is not None and self.pushes > self.end_after:
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(self.chunked(push))

    async def publisher(self, connection: wavecast.ServerConnection) -> None:
        async for message in connection:
            self.push(message if isinstance(message, str) else message.decode())


@pytest.fixture
async def serve_streams() -> AsyncIterator[Any]:
    servers: list[Any] = []
    started: list[StreamServer] = []

    async def start(transport: str, **kwargs: Any) -> tuple[StreamServer, int]:
        streams = StreamServer(transport, **kwargs)
        started.append(streams)
        port = free_port_pair()
        servers.append(await asyncio.start_server(streams.accept, "127.0.0.1", port))
        servers.append(await wavecast.serve(streams.publisher, "127.0.0.1", port + 1, compression=None))
        return streams, port

    yield start
    for server in servers:
        server.close()
    writers = [writer for streams in started for writer in streams.streams]
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    for server in servers:
        await server.wait_closed()


async def run_loadgen(
    loadgen: str, port: int, transport: str, *, connect: str = CONNECT
) -> tuple[int, dict[str, Any], str]:
    path = "/connection/" + ("websocket" if transport == "ws" else transport)
    process = await asyncio.create_subprocess_exec(
        *(loadgen, "fanout", "--port", str(port), "-n", str(SUBSCRIBERS), "-s", "32", "-W", "4"),
        *("-w", "0.2", "-t", "0.5", "--timeout", "5", "--connect-timeout", "5"),
        *("--transport", transport, "--path", path, "--sub-init", connect, "--unwrap", UNWRAP),
        *("--pub-path", "/publish", "--pub-port-offset", "1"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30_000 * MS):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, json.loads(out.decode().splitlines()[-1]), err.decode()


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
async def test_counts_every_push_of_a_stream(loadgen: str, serve_streams: Any, transport: str) -> None:
    streams, port = await serve_streams(transport)
    status, result, err = await run_loadgen(loadgen, port, transport)
    assert status == 0, err
    assert result["ok"] and result["transport"] == transport
    assert result["measured_deliveries"] > 0
    assert result["deliveries"] == result["published"] * SUBSCRIBERS
    assert result["lost"] == result["dups"] == result["gaps"] == 0
    assert len(streams.requests) == SUBSCRIBERS
    # Each subscriber from its own source address in 127.0.0.0/8.
    assert len({writer.get_extra_info("peername")[0] for writer in streams.streams}) == SUBSCRIBERS


async def test_a_refused_stream_fails_the_run(loadgen: str, serve_streams: Any) -> None:
    # The SSE server refuses a POST: the loadgen says so and fails.
    _, port = await serve_streams("sse")
    status, result, err = await run_loadgen(loadgen, port, "http_stream")
    assert status == 1
    assert not result["ok"]
    assert "server refused the stream" in err and "400 Bad Request" in result["error"]


async def test_a_stream_the_server_ends_fails_the_run(loadgen: str, serve_streams: Any) -> None:
    _, port = await serve_streams("http_stream", end_after=20)
    status, result, _ = await run_loadgen(loadgen, port, "http_stream")
    assert status == 1
    assert "server ended the stream" in result["error"]


async def test_a_stream_needs_the_fanout_mode(loadgen: str) -> None:
    process = await asyncio.create_subprocess_exec(
        loadgen, "echo", "--port", "1", "--transport", "sse", stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"for fanout's subscribers" in err


#: The bench's server of wavecast serve's endpoints, for its connect command.
SERVE_CHANNELS = load_script(ROOT / "bench" / "servers" / "wavecast_serve_channels.py")


@pytest.fixture
async def serve_channels(tmp_path: Path) -> AsyncIterator[LoggedServer]:
    """bench/servers/wavecast_serve_channels.py: ``wavecast serve``'s endpoints and a publisher."""
    port = free_port_pair()
    command = [sys.executable, SERVE_CHANNELS.__file__, "--port", str(port)]
    server = LoggedServer(command, port, name="serve-channels", cwd=tmp_path)
    try:
        await server.wait_ready()
        yield server
    finally:
        server.kill()


@pytest.mark.parametrize("transport", ["ws", "http_stream", "sse"])
async def test_counts_every_push_of_wavecast_serve(loadgen: str, serve_channels: LoggedServer, transport: str) -> None:
    # The channel scenarios' own server and connect command (bench/realtime.py's ch1k-serve,
    # ch1k-http and ch1k-sse), with fewer subscribers.
    status, result, err = await run_loadgen(loadgen, serve_channels.port, transport, connect=SERVE_CHANNELS.CONNECT)
    assert status == 0, err + serve_channels.log
    assert result["ok"] and result["measured_deliveries"] > 0
    assert result["deliveries"] == result["published"] * SUBSCRIBERS
    assert result["lost"] == result["dups"] == result["gaps"] == 0


#: The loadgen's Socket.IO clients join the room ``bench`` with an acknowledged event, and each
#: publication reaches them as the event ``msg`` (bench/realtime.py's room and join scenarios).
SIO_JOIN = '421["join","bench"]'
SIO_FANOUT = ["--socketio", "--sub-init", SIO_JOIN, "--pub-path", "/publish"]
SIO_FANOUT += ["--unwrap", '42["msg","', "--unwrap-suffix", '"]', "--join-reply", '431["ok"]']
SIO_CONNECT = ["--socketio", "--sub-init", SIO_JOIN, "--join-reply", '431["ok"]']


class SocketIOServer:
    """Socket.IO 4 over Engine.IO v4's WebSocket transport, as much as a room's members need:
    the open packet, the default namespace, an acknowledged ``join``, a ping each client must
    answer before it joins, and ``42["msg",...]`` for each of the publisher's messages."""

    def __init__(self) -> None:
        self.members: list[wavecast.ServerConnection] = []
        self.pongs = 0

    async def handler(self, connection: wavecast.ServerConnection) -> None:
        assert connection.request is not None
        if connection.request.path == "/publish":
            async for message in connection:
                event = json.dumps(["msg", message], separators=(",", ":"))
                for member in list(self.members):
                    await member.send("42" + event)
            return
        assert connection.request.path == "/socket.io/"
        assert connection.request.query_params == {"EIO": "4", "transport": "websocket"}
        await connection.send('0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
        await connection.send("2")
        assert await connection.recv() == "40"
        assert await connection.recv() == "3"
        self.pongs += 1
        await connection.send('40{"sid":"s"}')
        assert await connection.recv() == SIO_JOIN
        await connection.send('431["ok"]')
        self.members.append(connection)
        try:
            await connection.wait_closed()
        finally:
            self.members.remove(connection)


@pytest.fixture
async def socketio_server() -> AsyncIterator[tuple[SocketIOServer, int]]:
    room = SocketIOServer()
    async with wavecast.serve(room.handler, "127.0.0.1", 0, compression=None) as server:
        yield room, server.port


async def run_loadgen_socketio(loadgen: str, port: int, mode: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    common = ("--port", str(port), "--timeout", "5", "--connect-timeout", "5")
    if mode == "fanout":
        load = ("-n", str(SUBSCRIBERS), "-s", "32", "-W", "4", "-w", "0.2", "-t", "0.5", *SIO_FANOUT)
    else:
        load = ("-n", str(SUBSCRIBERS), "-H", "0.2", *SIO_CONNECT)
    process = await asyncio.create_subprocess_exec(
        loadgen, mode, *common, *load, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30_000 * MS):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, json.loads(out.decode().splitlines()[-1]), err.decode()


def assert_every_delivery(status: int, result: dict[str, Any], err: str) -> None:
    assert status == 0, err
    assert result["ok"] and result["socketio"] and result["measured_deliveries"] > 0
    assert result["deliveries"] == result["published"] * SUBSCRIBERS
    assert result["lost"] == result["dups"] == result["gaps"] == 0


async def test_counts_every_event_of_a_socketio_room(loadgen: str, socketio_server: Any) -> None:
    room, port = socketio_server
    assert_every_delivery(*await run_loadgen_socketio(loadgen, port, "fanout"))
    # Every subscriber answered the ping before it joined.
    assert room.pongs == SUBSCRIBERS


async def test_a_socketio_client_counts_once_joined(loadgen: str, socketio_server: Any) -> None:
    room, port = socketio_server
    status, result, err = await run_loadgen_socketio(loadgen, port, "connect")
    assert status == 0, err
    assert result["ok"] and result["joined"] and result["open"] == SUBSCRIBERS
    assert room.pongs == SUBSCRIBERS
    # An answer that never comes: no connection counts as open.
    never = ("--join-reply", "never", "-n", "3", "--connect-timeout", "1")
    status, result, _ = await run_loadgen_socketio(loadgen, port, "connect", *never)
    assert status == 1
    assert result["open"] == 0 and "timeout: only 0 of 3" in result["error"]


#: The instrument's runner, for the interpreter and node_modules its peers run with.
RUNNER = load_script(INSTRUMENT / "run.py")
#: The Socket.IO peers of bench/realtime.py, as it starts them (in the instrument's directory).
SOCKETIO_PEERS = {
    "node": ["node", "peers/node_socketio_server.js"],
    "aiohttp": [RUNNER.PY, "peers/python_socketio_server.py", "--server", "aiohttp", "--port"],
    "uvicorn": [RUNNER.PY, "peers/python_socketio_server.py", "--server", "uvicorn", "--port"],
}


def require_socketio_peer(peer: str) -> None:
    env = {**os.environ, "NODE_PATH": RUNNER.NODE_MODULES}
    check = (
        ["node", "-e", "require('socket.io'); require('ws')"]
        if peer == "node"
        else [RUNNER.PY, "-c", "import socketio"]
    )
    installed = shutil.which(check[0]) and subprocess.run(check, env=env, capture_output=True).returncode == 0
    require(installed, f"the {peer} Socket.IO peer isn't installed: run bench/loadgen/setup.sh")


# Slow: the peers come from bench/loadgen/setup.sh's installs, which `make test` doesn't make.
@pytest.mark.slow
@pytest.mark.parametrize("peer", list(SOCKETIO_PEERS))
async def test_counts_every_event_of_a_socketio_peer(loadgen: str, tmp_path: Path, peer: str) -> None:
    require_socketio_peer(peer)
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [*SOCKETIO_PEERS[peer], str(port)],
            cwd=INSTRUMENT,
            env={**os.environ, "NODE_PATH": RUNNER.NODE_MODULES},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # Each answers a plain HTTP request outside /socket.io/ with a 404.
        await asyncio.to_thread(wait_answering, server, port, b"HTTP/1.1 ", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert_every_delivery(*await run_loadgen_socketio(loadgen, port, "fanout"))
        status, result, err = await run_loadgen_socketio(loadgen, port, "connect")
        assert status == 0, err
        assert result["ok"] and result["joined"] and result["open"] == SUBSCRIBERS
    finally:
        terminate(server)


async def run_storm(loadgen: str, port: int, token: str, clients: int, duration: float) -> tuple[int, dict[str, Any]]:
    connect = json.dumps({"id": 1, "connect": {"token": token}})
    process = await asyncio.create_subprocess_exec(
        *(loadgen, "storm", "--port", str(port), "--path", "/connection/websocket", "-n", str(clients)),
        *("-k", str(clients), "-t", str(duration), "--min-delay", "0.05", "--max-delay", "0.2"),
        *("--sub-init", connect, "-q"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30_000 * MS):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, json.loads(out.decode().splitlines()[-1])


async def test_storm_clients_retry_refusals_after_their_backoff(loadgen: str, start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(
        client={
            "user_connection_limit": None,
            "admission_connection_rate": 400,
            "admission_connection_burst": 20,
            "admission_connect_rate": 200,
            "admission_connect_burst": 10,
        }
    )
    status, result = await run_storm(loadgen, running.port, make_token("storm"), 100, 1.2)
    assert status == 0, result
    assert result["connected"] == result["connects"] == 100
    refused = running.node.admission.refused
    # What the node refused is what the clients retried, each kind counted apart.
    assert result["refused_upgrade"] == refused["connection"] > 0
    assert result["refused_connect"] == refused["connect"] > 0
    assert result["gave_up"] == result["other"] == 0


async def test_storm_clients_give_up_on_a_terminal_code(loadgen: str, start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    # A token signed with another key: disconnect 3500 "invalid token", terminal for the SDKs.
    status, result = await run_storm(loadgen, running.port, make_token("storm", secret="x" * 32), 10, 0.5)
    assert status == 1
    assert result["gave_up"] == 10 and result["connected"] == 0
