"""The C fan-out corks and writes what its Python twin does, and hands the socket's overflow to asyncio.

The parity tests run both twins on the same connections; the socket tests go through
``broadcast()``, so that when the suite runs with WAVECAST_NO_SPEEDUPS=1 they check the
Python twin over the same sockets.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from wavecast.asyncio import ServerConnection, broadcast, connect
from wavecast.asyncio.connection import _batcher, _broadcast
from wavecast.protocol import CLOSING, OPEN
from wavecast.speedups import load

from ..support.servers import Recorder, StartServer, ws_uri
from ..support.timing import MS, wait_until
from ..support.transports import CountingTransport, open_connection

native = load("wavecast.asyncio._speedups")
needs_native = pytest.mark.skipif(native is None, reason="the C extension isn't built or is turned off")


class OddConnection(ServerConnection):
    """A subclass whose flag is a property: the C loop must take the getattr path for it."""

    __slots__ = ("_paused",)

    @property  # type: ignore[override]
    def _writing_paused(self) -> bool:
        return self._paused

    @_writing_paused.setter
    def _writing_paused(self, value: bool) -> None:
        self._paused = value


def connections() -> list[ServerConnection]:
    """One connection in each situation a broadcast distinguishes, twice over, one of them odd."""
    made = []
    for cls in (ServerConnection, OddConnection):
        for situation in ("open", "paused", "closing", "fragmented", "compressed", "corked", "small limit"):
            connection, _ = open_connection(cls)
            connection._prepared_ok = situation != "compressed"
            if situation == "paused":
                connection._writing_paused = True
            elif situation == "closing":
                connection.protocol.state = CLOSING
            elif situation == "fragmented":
                connection.protocol._out_fragmented = 1
            elif situation == "corked":
                connection.protocol._out.append(b"already corked")
                connection._dirty = True
            elif situation == "small limit":
                connection.write_limit = 10
            made.append(connection)
    return made


def state(connection: ServerConnection) -> tuple[list[bytes], bool]:
    return list(connection.protocol._out), connection._dirty


@needs_native
async def test_broadcast_does_what_its_python_twin_does() -> None:
    assert native is not None
    batcher = _batcher(asyncio.get_running_loop())
    frame = b"\x81\x05hello"
    ours, theirs = connections(), connections()
    result = native.broadcast(ours, frame, OPEN, batcher)
    expected = _broadcast(theirs, frame, batcher)
    assert result[:2] == expected[:2] == (8, 6)
    assert [ours.index(c) for c in result[2]] == [theirs.index(c) for c in expected[2]]  # slow
    assert [ours.index(c) for c in result[3]] == [theirs.index(c) for c in expected[3]]  # flush now
    assert [state(c) for c in ours] == [state(c) for c in theirs]
    batcher._pending.clear()


@needs_native
async def test_broadcast_takes_any_iterable_and_checks_its_arguments() -> None:
    assert native is not None
    batcher = _batcher(asyncio.get_running_loop())
    ours = connections()
    assert native.broadcast(iter(ours), b"\x81\x00", OPEN, batcher)[:2] == (8, 6)
    assert native.broadcast((), b"\x81\x00", OPEN, batcher) == (0, 0, [], [])
    with pytest.raises(TypeError, match="frame must be bytes"):
        native.broadcast(ours, "text", OPEN, batcher)
    with pytest.raises(AttributeError):
        native.broadcast([object()], b"\x81\x00", OPEN, batcher)
    batcher._pending.clear()


@needs_native
async def test_flush_writes_through_the_transport_without_a_socket() -> None:
    assert native is not None
    connection = connections()[0]
    connection.protocol._out.extend([b"one", b"two"])
    native.flush([connection])
    transport = connection.transport
    assert isinstance(transport, CountingTransport)
    assert transport.written == [b"onetwo"]
    assert connection.protocol._out == [] and not connection._dirty


async def test_a_reader_that_stops_gets_every_frame_sent_in_order(start_server: StartServer) -> None:
    # Frames go straight to the socket until its buffer is full; the rest waits in the
    # transport, which pauses writing; broadcasts skip the connection from then on.
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder, compression=None, write_limit=65536)
    client = await connect(ws_uri(server), compression=None, max_queue=None)
    try:
        await wait_until(lambda: len(recorder.connections) == 1, what="the connection")
        # Small kernel buffers on both ends, and a client that doesn't read for now.
        client.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        recorder.connections[0].transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.transport.pause_reading()
        sent = 0
        payload = "x" * 4000
        for batch in range(5000):
            result = broadcast(recorder.connections, f"{batch:05d}{payload}")
            sent += result.sent
            await asyncio.sleep(0)
            if result.skipped:
                break
        assert recorder.connections[0].writing_paused, "the socket never filled"
        client.transport.resume_reading()
        for index in range(sent):
            message = await asyncio.wait_for(client.recv(), 2000 * MS)
            assert message == f"{index:05d}{payload}"
    finally:
        await client.close()
