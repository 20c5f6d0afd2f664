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
  to one channel with the Centrifugo protocol: its session and subscription included.

It prints a markdown table of KiB per connection: (RSS with N connections - RSS before) / N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import wavecast

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
from wavecast_channels import SUB_INIT

HERE = Path(__file__).resolve().parent
MESSAGE = '{"channel": "prices", "symbol": "ACME", "price": 101.25, "volume": 1200}' * 4


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def open_connections(port: int, count: int, *, compression: str | None, realtime: bool) -> list[Any]:
    path = "/connection/websocket" if realtime else "/echo"
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


async def measure(pid: int, port: int, count: int, *, compression: str | None, exchange: bool, realtime: bool) -> float:
    before = rss_kib(pid)
    connections = await open_connections(port, count, compression=compression, realtime=realtime)
    if exchange:
        for connection in connections:
            await connection.send(MESSAGE)
        for connection in connections:
            await connection.recv()
    await asyncio.sleep(0.5)
    after = rss_kib(pid)
    await asyncio.gather(*(connection.close() for connection in connections))
    await asyncio.sleep(0.5)
    return (after - before) / count


async def measure_fresh(
    count: int, *, compression: str | None, exchange: bool = False, realtime: bool = False
) -> float:
    """Measure in a new server process, so that memory freed by earlier rounds doesn't hide costs."""
    port = free_port()
    if realtime:
        command = [sys.executable, str(HERE / "servers" / "wavecast_channels.py"), "--port", str(port)]
    else:
        command = [sys.executable, str(HERE / "servers" / "wavecast_server.py"), "--port", str(port), "--compression"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        # A small warm-up round first, so that lazy imports and caches don't count.
        kwargs = dict(compression=compression, exchange=exchange, realtime=realtime)
        await measure(server.pid, port, 20, **kwargs)
        return await measure(server.pid, port, count, **kwargs)
    finally:
        server.terminate()
        server.wait()


async def main(count: int) -> None:
    rows = [
        ("WebSocket, idle", await measure_fresh(count, compression=None)),
        ("WebSocket, after a message each way", await measure_fresh(count, compression=None, exchange=True)),
        ("permessage-deflate, idle", await measure_fresh(count, compression="deflate")),
        (
            "permessage-deflate, after a message each way",
            await measure_fresh(count, compression="deflate", exchange=True),
        ),
        ("real-time client subscribed to 1 channel", await measure_fresh(count, compression=None, realtime=True)),
    ]
    print(f"# server memory per connection, {count} connections, {time.strftime('%Y-%m-%d')}")
    print(f"# command: python bench/memory.py -n {count}  (Python {sys.version.split()[0]}, VmRSS of the server)")
    print()
    print("| connections | KiB per connection |")
    print("|---|---|")
    for name, kib in rows:
        print(f"| {name} | {kib:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="connections per measurement")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    wavecast.run(main(args.n))
