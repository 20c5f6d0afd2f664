"""Measure the server's memory per WebSocket connection, with and without compression.

``python bench/memory.py [-n 1000]`` starts ``bench/servers/wavecast_server.py`` in a
subprocess (compression on, so that permessage-deflate is negotiated when the client offers
it), opens N connections from this process, and reads the server's VmRSS from
``/proc/<pid>/status``:

- ``plain``: connections that didn't negotiate compression;
- ``deflate idle``: permessage-deflate negotiated, no message exchanged yet;
- ``deflate active``: after one compressible message each way, so that every connection
  holds a compressor and a decompressor.

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

import wavecast

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


async def measure(pid: int, port: int, count: int, *, compression: str | None, exchange: bool) -> float:
    before = rss_kib(pid)
    connections = []
    for _ in range(count):
        connections.append(
            await wavecast.connect(f"ws://127.0.0.1:{port}/echo", compression=compression, ping_interval=None)
        )
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


async def measure_fresh(count: int, *, compression: str | None, exchange: bool) -> float:
    """Measure in a new server process, so that memory freed by earlier rounds doesn't hide costs."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "servers" / "wavecast_server.py"), "--port", str(port), "--compression"],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        # A small warm-up round first, so that lazy imports and caches don't count.
        await measure(server.pid, port, 20, compression=compression, exchange=exchange)
        return await measure(server.pid, port, count, compression=compression, exchange=exchange)
    finally:
        server.terminate()
        server.wait()


async def main(count: int) -> None:
    rows = [
        ("plain", await measure_fresh(count, compression=None, exchange=True)),
        ("deflate idle", await measure_fresh(count, compression="deflate", exchange=False)),
        ("deflate active", await measure_fresh(count, compression="deflate", exchange=True)),
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
