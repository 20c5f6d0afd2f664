"""wavecast under the ws-bench wire contract (see bench/loadgen/README.md).

``/echo`` sends every message back; ``/echo-sink`` too, from a
:class:`wavecast.asyncio.MessageSink` (:meth:`~wavecast.asyncio.Connection.deliver_to`: no
task per connection, and the handshake forgotten; not part of the contract, bench/memory.py
measures it); ``/bcast`` forwards every message to every *other* open ``/bcast`` connection
with :func:`wavecast.broadcast` (``exclude=`` the sender). Messages up to 16 MiB, no
compression, no keepalive pings, any origin.

Usage: ``python bench/servers/wavecast_server.py --port P [--uvloop | --no-uvloop]``; the port
may also come from ``$PORT``. By default :func:`wavecast.run` uses uvloop when it's installed.
``--callbacks`` serves every path as ``/echo-sink`` does, from callbacks with no task per
connection (a plain function as the handler, :class:`~wavecast.asyncio.MessageSink` objects;
the API that ws, picows and uWebSockets offer): not part of the contract, a second wavecast row
in the peers' runs. ``--gc-threshold N`` sets the cyclic collector's first threshold (Python's
default is 700; 0 turns it off), to measure what the collector costs a scenario: not part of
the contract.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal

import wavecast
from wavecast.protocol.prepared import PreparedMessage

LIMITS = wavecast.Limits(max_message_size=16 * 2**20, max_frame_size=16 * 2**20, max_fragments=None)

subscribers: set[wavecast.ServerConnection] = set()


class EchoSink:
    """Sends each message back as it arrives, from the loop's callback."""

    __slots__ = ("connection",)

    def __init__(self, connection: wavecast.ServerConnection) -> None:
        self.connection = connection

    def message_received(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.connection.write_prepared(PreparedMessage(message.encode(), text=True))
        else:
            self.connection.write_prepared(PreparedMessage(message, text=False))

    def connection_closed(self) -> None:
        pass


class BroadcastSink:
    """Forwards each message to every other ``/bcast`` connection, from the loop's callback."""

    __slots__ = ("connection",)

    def __init__(self, connection: wavecast.ServerConnection) -> None:
        self.connection = connection
        subscribers.add(connection)

    def message_received(self, message: str | bytes) -> None:
        wavecast.broadcast(subscribers, message, exclude=self.connection)

    def connection_closed(self) -> None:
        subscribers.discard(self.connection)


def callback_handler(connection: wavecast.ServerConnection) -> None:
    """``--callbacks``: every path served from the loop's callbacks, no task per connection."""
    assert connection.request is not None
    path = connection.request.path
    if path in ("/echo", "/echo-sink"):
        connection.forget_handshake()
        connection.deliver_to(EchoSink(connection))
    elif path == "/bcast":
        connection.forget_handshake()
        connection.deliver_to(BroadcastSink(connection))
    else:
        connection.close_nowait(wavecast.CloseCode.POLICY_VIOLATION, "unknown path")


async def handler(connection: wavecast.ServerConnection) -> None:
    assert connection.request is not None
    path = connection.request.path
    if path == "/echo":
        async for message in connection:
            await connection.send(message)
    elif path == "/echo-sink":
        # The handler returns; the sink keeps the connection, which needs no handshake.
        connection.forget_handshake()
        connection.deliver_to(EchoSink(connection))
    elif path == "/bcast":
        subscribers.add(connection)
        try:
            async for message in connection:
                wavecast.broadcast(subscribers, message, exclude=connection)
        finally:
            subscribers.discard(connection)
    else:
        await connection.close(wavecast.CloseCode.POLICY_VIOLATION, "unknown path")


async def main(port: int, compression: bool = False, callbacks: bool = False) -> None:
    async with wavecast.serve(
        callback_handler if callbacks else handler,
        "127.0.0.1",
        port,
        origins=["*"],
        limits=LIMITS,
        ping_interval=None,
        ping_timeout=None,
        max_queue=64,
        backlog=4096,
        # The contract forbids compression; bench/memory.py turns it on to measure its cost.
        compression="deflate" if compression else None,
    ) as server:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.close)
        print(f"wavecast listening on 127.0.0.1:{server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9001")))
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force uvloop on or off (default: use it when installed)",
    )
    parser.add_argument("--compression", action="store_true", help="negotiate permessage-deflate (not the contract)")
    parser.add_argument(
        "--callbacks", action="store_true", help="serve every path from callbacks, no task per connection"
    )
    parser.add_argument("--gc-threshold", type=int, help="the cyclic GC's gen0 threshold (0: off)")
    args = parser.parse_args()
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    wavecast.run(main(args.port, args.compression, args.callbacks), use_uvloop=args.uvloop)
