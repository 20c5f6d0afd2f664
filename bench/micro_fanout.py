"""Time the fan-out's own CPU cost per delivery, without sockets: a microbenchmark.

    .venv/bin/python bench/micro_fanout.py [--connections 10000] [--messages 16] [--repeat 30]

It opens ``--connections`` server connections on transports that only count bytes, then, in
each round, broadcasts ``--messages`` frames (what one turn of the loop does under the
loadgen's fan-out window) and runs the end-of-turn flush. Rounds are timed apart and the
fastest is kept, so other processes on the machine inflate nothing but the slower rounds.
Run it with ``WAVECAST_NO_SPEEDUPS=1`` for the pure-Python path.

It measures wavecast's code alone: the socket writes that the real benchmark also pays
(``bench/run.sh``) aren't here, since the transports write nowhere.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from wavecast.asyncio.connection import _batcher, broadcast
from wavecast.asyncio.server import ServerConnection
from wavecast.protocol.server import ServerProtocol
from wavecast.protocol.state import OPEN
from wavecast.speedups import load


class CountingTransport(asyncio.Transport):
    """A transport whose writes vanish: only their bytes are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeServer:
    open_timeout = None

    def __init__(self) -> None:
        self._connections: set[ServerConnection] = set()


async def measure(connections: int, messages: int, repeat: int) -> dict[str, float]:
    server: Any = FakeServer()
    peers = []
    for _ in range(connections):
        connection = ServerConnection(ServerProtocol(), server, ping_interval=None)
        connection.connection_made(CountingTransport())
        connection.protocol.state = OPEN
        connection._prepared_ok = True
        peers.append(connection)
    batcher = _batcher(asyncio.get_running_loop())
    payloads = [f"message {i:04d} padded to 32 bytes".encode()[:32].decode() for i in range(messages)]
    cork = flush = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for payload in payloads:
                broadcast(peers, payload)
            middle = time.perf_counter()
            batcher._run()
            end = time.perf_counter()
            cork = min(cork, middle - start)
            flush = min(flush, end - middle)
    finally:
        gc.enable()
    deliveries = connections * messages
    return {
        "cork_ns": cork / deliveries * 1e9,
        "flush_ns": flush / deliveries * 1e9,
        "flush_per_connection_ns": flush / connections * 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    native = load("wavecast.asyncio._speedups") is not None
    result = asyncio.run(measure(args.connections, args.messages, args.repeat))
    print(
        f"{'native' if native else 'python'}: {args.connections} connections x {args.messages} messages: "
        f"cork {result['cork_ns']:.0f} ns/delivery, flush {result['flush_ns']:.0f} ns/delivery "
        f"({result['flush_per_connection_ns']:.0f} ns/connection), "
        f"total {result['cork_ns'] + result['flush_ns']:.0f} ns/delivery"
    )


if __name__ == "__main__":
    main()
