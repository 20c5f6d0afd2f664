"""Measure the server's memory per WebSocket connection, with and without compression.

``python bench/memory.py [-n 1000]`` starts ``bench/servers/wavecast_server.py`` in a
subprocess (compression on, so that permessage-deflate is negotiated when the client offers
it), opens N connections from this process, and reads the server's VmRSS from
``/proc/<pid>/status``:

- WebSocket connections without compression, idle, then after a message each way (which
  gives the connection its message queue);
- permessage-deflate negotiated, idle, then after one compressible message each way, so
  that every connection holds a compressor and a decompressor;
- a real-time client (``bench/servers/wavecast_channels.py``) that connected and subscribed
  to one channel with the Centrifugo protocol: its session and subscription included; then
  the same with the protocol's pings on (every 25 s), whose timers the client holds meanwhile;
- a real-time client of ``wavecast serve``'s endpoints (``bench/servers/wavecast_serve_channels.py``)
  over each transport, a WebSocket, an HTTP-streaming response and an SSE response, connected
  with a token that subscribes it to one channel at connect: the same session and
  subscription, so that the rows differ by the transport only. ``--transports`` picks them.

It prints a markdown table of KiB per connection: (RSS with N connections - RSS before) / N.
With ``--trace``, the servers run under tracemalloc (``servers/traced.py``) and each row is
followed by the lines of code whose allocations the connections hold, in bytes per connection:
what one idle connection costs, and where.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.parse
from pathlib import Path
from typing import Any

import wavecast

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
from wavecast_channels import SUB_INIT
from wavecast_serve_channels import CONNECT

HERE = Path(__file__).resolve().parent
MESSAGE = '{"channel": "prices", "symbol": "ACME", "price": 101.25, "volume": 1200}' * 4


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port(*, next_too: bool = False) -> int:
    """A free port; with ``next_too``, one whose next port is free too (the publisher's)."""
    while True:
        with socket.socket() as sock, socket.socket() as after:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if not next_too:
                return port
            try:
                after.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


async def open_connections(
    port: int, count: int, *, compression: str | None, realtime: bool, path: str = "/echo"
) -> list[Any]:
    path = "/connection/websocket" if realtime else path
    connections = []
    for _ in range(count):
        connection = await wavecast.connect(f"ws://127.0.0.1:{port}{path}", compression=compression, ping_interval=None)
        if realtime:
            # The protocol's connect and subscribe; both replies arrive before going on.
            await connection.send(SUB_INIT)
            replies = 0
            while replies < 2:
                replies += len(str(await connection.recv()).splitlines())
        connections.append(connection)
    return connections


class Stream:
    """A fallback transport's response, read until the connect reply, then held open."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    @classmethod
    async def open(cls, port: int, transport: str) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if transport == "http_stream":
            writer.write(
                f"POST /connection/http_stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(CONNECT)}\r\n\r\n{CONNECT}".encode()
            )
        else:
            query = urllib.parse.urlencode({"cf_connect": CONNECT})
            writer.write(f"GET /connection/sse?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{transport}: {head.splitlines()[0].decode()}")
        # The connect reply, with its server-side subscription, is the stream's first message.
        received = b""
        while b'"client"' not in received:
            chunk = await reader.read(65536)
            if not chunk:
                raise RuntimeError(f"{transport}: the stream ended before the connect reply")
            received += chunk
        return cls(writer)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def open_served(port: int, count: int, transport: str) -> list[Any]:
    """``count`` clients of wavecast_serve_channels.py over ``transport``, each connected and subscribed."""
    clients: list[Any] = []
    for _ in range(count):
        if transport == "websocket":
            connection = await wavecast.connect(
                f"ws://127.0.0.1:{port}/connection/websocket", compression=None, ping_interval=None
            )
            await connection.send(CONNECT)
            await connection.recv()
            clients.append(connection)
        else:
            clients.append(await Stream.open(port, transport))
    return clients


async def snapshot(pid: int, path: Path) -> tracemalloc.Snapshot:
    """Ask a server under ``servers/traced.py`` for a snapshot of its heap, and load it."""
    os.kill(pid, signal.SIGUSR1)
    for _ in range(600):
        if path.exists():
            return tracemalloc.Snapshot.load(str(path))
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no snapshot at {path}")


def print_trace(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int, top: int = 25) -> None:
    """The lines whose allocations grew with the connections, in bytes per connection."""
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"Python heap: {total / count:.0f} B per connection; largest lines:")
    for stat in stats[:top]:
        if stat.size_diff / count < 8:
            break
        frame = stat.traceback[0]
        filename = frame.filename
        for marker in ("/site-packages/", "/src/", "/lib/python3"):
            if marker in filename:
                filename = filename.split(marker, 1)[1]
                break
        print(f"  {stat.size_diff / count:7.0f} B  {stat.count_diff / count:5.1f} blocks  {filename}:{frame.lineno}")


async def measure(
    pid: int,
    port: int,
    count: int,
    *,
    compression: str | None,
    exchange: bool,
    realtime: bool,
    transport: str | None = None,
    path: str = "/echo",
    trace: Path | None = None,
) -> float:
    if trace is not None:
        await asyncio.sleep(0.5)
        heap_before = await snapshot(pid, trace.with_suffix(".0"))
    before = rss_kib(pid)
    if transport is not None:
        connections = await open_served(port, count, transport)
    else:
        connections = await open_connections(port, count, compression=compression, realtime=realtime, path=path)
    if exchange:
        for connection in connections:
            await connection.send(MESSAGE)
        for connection in connections:
            await connection.recv()
    await asyncio.sleep(0.5)
    after = rss_kib(pid)
    if trace is not None:
        print_trace(heap_before, await snapshot(pid, trace.with_suffix(".1")), count)
    await asyncio.gather(*(connection.close() for connection in connections))
    await asyncio.sleep(0.5)
    return (after - before) / count


async def measure_fresh(
    count: int,
    *,
    compression: str | None,
    exchange: bool = False,
    realtime: bool = False,
    transport: str | None = None,
    trace: bool = False,
    pings: bool = False,
    path: str = "/echo",
) -> float:
    """Measure in a new server process, so that memory freed by earlier rounds doesn't hide costs."""
    port = free_port(next_too=transport is not None)
    if transport is not None:
        command = [sys.executable, str(HERE / "servers" / "wavecast_serve_channels.py"), "--port", str(port)]
    elif realtime:
        command = [sys.executable, str(HERE / "servers" / "wavecast_channels.py"), "--port", str(port)]
        if pings:
            command.append("--pings")
    else:
        command = [sys.executable, str(HERE / "servers" / "wavecast_server.py"), "--port", str(port), "--compression"]
    env = None
    with tempfile.TemporaryDirectory() as tmp:
        if trace:
            command[1:1] = [str(HERE / "servers" / "traced.py")]
            env = {**os.environ, "WAVECAST_TRACE_TO": str(Path(tmp) / "heap")}
        server = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        try:
            assert server.stdout is not None
            server.stdout.readline()
            # A small warm-up round first, so that lazy imports and caches don't count.
            kwargs = dict(compression=compression, exchange=exchange, realtime=realtime, transport=transport, path=path)
            await measure(server.pid, port, 20, **kwargs)
            return await measure(server.pid, port, count, **kwargs, trace=Path(tmp) / "heap" if trace else None)
        finally:
            server.terminate()
            server.wait()


#: ``wavecast serve``'s transports, each a row of the table.
TRANSPORTS = {"websocket": "WebSocket", "http_stream": "HTTP-streaming", "sse": "SSE"}


#: The rows of raw WebSocket and real-time connections: name, measure_fresh's arguments.
ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "idle": ("WebSocket, idle", {"compression": None}),
    "idle-sink": (
        "WebSocket, idle, its messages to a sink (no handler task), handshake forgotten",
        {"compression": None, "path": "/echo-sink"},
    ),
    "exchange": ("WebSocket, after a message each way", {"compression": None, "exchange": True}),
    "deflate": ("permessage-deflate, idle", {"compression": "deflate"}),
    "deflate-exchange": ("permessage-deflate, after a message each way", {"compression": "deflate", "exchange": True}),
    "realtime": ("real-time client subscribed to 1 channel", {"compression": None, "realtime": True}),
    "realtime-pings": (
        "real-time client subscribed to 1 channel, pinged every 25 s",
        {"compression": None, "realtime": True, "pings": True},
    ),
}


async def main(count: int, rows_wanted: list[str], transports: list[str], *, trace: bool) -> None:
    rows = []
    for key in rows_wanted:
        name, kwargs = ROWS[key]
        if trace:
            print(f"## {name}")
        rows.append((name, await measure_fresh(count, **kwargs, trace=trace)))
    for transport in transports:
        name = f"`wavecast serve` client over {TRANSPORTS[transport]}, subscribed at connect"
        if trace:
            print(f"## {name}")
        rows.append((name, await measure_fresh(count, compression=None, transport=transport, trace=trace)))
    print(f"# server memory per connection, {count} connections, {time.strftime('%Y-%m-%d')}")
    command = " ".join(["python bench/memory.py", *sys.argv[1:]])
    print(f"# command: {command}  (Python {sys.version.split()[0]}, VmRSS of the server)")
    print()
    print("| connections | KiB per connection |")
    print("|---|---|")
    for name, kib in rows:
        print(f"| {name} | {kib:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="connections per measurement")
    parser.add_argument(
        "--transports",
        nargs="*",
        choices=list(TRANSPORTS),
        default=list(TRANSPORTS),
        help="wavecast serve's transports to measure (default: all)",
    )
    parser.add_argument(
        "--rows", nargs="*", choices=list(ROWS), default=list(ROWS), help="the other rows to measure (default: all)"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run the servers under tracemalloc and show what the connections hold, by line (slower; RSS grows)",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    wavecast.run(main(args.n, args.rows, args.transports, trace=args.trace))
