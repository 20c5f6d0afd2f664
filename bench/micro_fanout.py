"""Time the fan-out's own CPU cost per delivery, without sockets: a microbenchmark.

    .venv/bin/python bench/micro_fanout.py [--connections 10000] [--messages 16] [--repeat 30] [--channel]
        [--filters N]

It opens ``--connections`` server connections on transports that only count bytes, then, in
each round, broadcasts ``--messages`` frames (what one turn of the loop does under the
loadgen's fan-out window) and runs the end-of-turn flush. Rounds are timed apart and the
fastest is kept, so other processes on the machine inflate nothing but the slower rounds.
Run it with ``WAVECAST_NO_SPEEDUPS=1`` for the pure-Python path.

``--channel`` measures a real-time channel's fan-out instead: ``--connections`` sessions
subscribed to one channel, each publication going through ``Node.on_publication`` (the path
a broker's delivery takes). With ``PYTHONPATH=<snapshot>/src`` it measures another commit's
code (``bench/realtime.py --ref`` builds such snapshots), which is how a change to the fan-out
is compared: the fastest of many rounds hardly moves with the load of other processes.
``--filters N`` gives the channel's subscribers N distinct tags filters, one per group, that
every publication passes: the cost of evaluating N filters and sending N groups.

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

try:
    from wavecast.asyncio._options import ConnectionOptions as _options
except ImportError:  # a commit from before ConnectionOptions
    _options = None  # type: ignore[assignment,misc]


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
    options = _options(ping_interval=None) if _options is not None else None

    def __init__(self) -> None:
        self._connections: set[ServerConnection] = set()


def open_connection(server: Any) -> ServerConnection:
    try:
        connection = ServerConnection(ServerProtocol(), server)
    except TypeError:  # a commit from before ConnectionOptions
        connection = ServerConnection(ServerProtocol(), server, ping_interval=None)  # type: ignore[call-arg]
    connection.connection_made(CountingTransport())
    connection.protocol.state = OPEN
    connection._prepared_ok = True
    return connection


async def measure(connections: int, messages: int, repeat: int) -> dict[str, float]:
    server: Any = FakeServer()
    peers = [open_connection(server) for _ in range(connections)]
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


async def measure_channel(connections: int, messages: int, repeat: int, filters: int = 0) -> dict[str, float]:
    """The same rounds through the real-time layer: publications to a channel's sessions."""
    from wavecast.engines import Publication
    from wavecast.realtime import Node, NodeConfig, Session
    from wavecast.realtime.websocket import WebSocketTransport

    server: Any = FakeServer()
    node = Node(NodeConfig())
    sessions = []
    for index in range(connections):
        session = Session(node, WebSocketTransport(open_connection(server)))
        session.state = type(session.state).CONNECTED
        session._stop_timers()
        node.hub.add_session(session)
        subscription = _subscription("bench")
        if filters:
            subscription.tags_filter = _filter(index * filters // connections)
        node.hub.add_subscriber("bench", session, subscription)
        sessions.append(session)
    batcher = _batcher(asyncio.get_running_loop())
    tags = {"k": "x"} if filters else None
    publications = [Publication(data=f'"message {i:04d} padded"'.encode(), tags=tags) for i in range(messages)]
    cork = flush = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for publication in publications:
                node.on_publication("bench", publication, None)
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


def _filter(variant: int) -> Any:
    """A filter of its own for each variant, which a publication tagged k=x passes."""
    from wavecast.realtime.codec.schema import FilterNode
    from wavecast.realtime.tagsfilter import compile_filter

    return compile_filter(FilterNode(key="k", cmp="neq", val=f"v{variant}"))


def _subscription(channel: str) -> Any:
    from wavecast.realtime.config import ChannelOptions
    from wavecast.realtime.subscription import SUBSCRIBED, Subscription

    subscription = Subscription(channel, ChannelOptions())
    subscription.state = SUBSCRIBED
    subscription.pending = None
    return subscription


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--channel", action="store_true", help="through a real-time channel's fan-out")
    parser.add_argument("--filters", type=int, default=0, help="with --channel: N distinct tags filters")
    args = parser.parse_args()
    native = load("wavecast.asyncio._speedups") is not None
    if args.channel:
        result = asyncio.run(measure_channel(args.connections, args.messages, args.repeat, args.filters))
    else:
        result = asyncio.run(measure(args.connections, args.messages, args.repeat))
    print(
        f"{'native' if native else 'python'}: {args.connections} connections x {args.messages} messages: "
        f"cork {result['cork_ns']:.0f} ns/delivery, flush {result['flush_ns']:.0f} ns/delivery "
        f"({result['flush_per_connection_ns']:.0f} ns/connection), "
        f"total {result['cork_ns'] + result['flush_ns']:.0f} ns/delivery"
    )


if __name__ == "__main__":
    main()
