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
                connection.protocol._out = [b"already corked"]
                connection._dirty = True
            elif situation == "small limit":
                connection.write_limit = 10
            made.append(connection)
    return made


def state(connection: ServerConnection) -> tuple[list[bytes], bool]:
    return list(connection.protocol._out or ()), connection._dirty


@needs_native
@pytest.mark.parametrize("excluded", [None, 0, 1], ids=["none", "an open one", "a paused one"])
async def test_broadcast_does_what_its_python_twin_does(excluded: int | None) -> None:
    assert native is not None
    batcher = _batcher(asyncio.get_running_loop())
    frame = b"\x81\x05hello"
    ours, theirs = connections(), connections()
    result = native.broadcast(ours, frame, OPEN, batcher, None if excluded is None else ours[excluded])
    expected = _broadcast(theirs, frame, batcher, None if excluded is None else theirs[excluded])
    # The excluded connection counts neither as sent nor as skipped.
    assert result[:2] == expected[:2] == {None: (8, 6), 0: (7, 6), 1: (8, 5)}[excluded]
    assert [ours.index(c) for c in result[2]] == [theirs.index(c) for c in expected[2]]  # slow
    assert [ours.index(c) for c in result[3]] == [theirs.index(c) for c in expected[3]]  # flush now
    assert [state(c) for c in ours] == [state(c) for c in theirs]
    batcher._pending.clear()


@needs_native
async def test_broadcast_takes_any_iterable_and_checks_its_arguments() -> None:
    assert native is not None
    batcher = _batcher(asyncio.get_running_loop())
    ours = connections()
    assert native.broadcast(iter(ours), b"\x81\x00", OPEN, batcher, None)[:2] == (8, 6)
    assert native.broadcast((), b"\x81\x00", OPEN, batcher, None) == (0, 0, [], [])
    with pytest.raises(TypeError, match="frame must be bytes"):
        native.broadcast(ours, "text", OPEN, batcher, None)
    with pytest.raises(AttributeError):
        native.broadcast([object()], b"\x81\x00", OPEN, batcher, None)
    batcher._pending.clear()


@needs_native
async def test_flush_writes_through_the_transport_without_a_socket() -> None:
    assert native is not None
    connection = connections()[0]
    connection.protocol._out = [b"one", b"two"]
    native.flush([connection])
    transport = connection.transport
    assert isinstance(transport, CountingTransport)
    assert transport.written == [b"onetwo"]
    # As data_to_send() leaves it: no list until something is queued again.
    assert connection.protocol._out is None and not connection._dirty
    native.flush([connection])
    assert transport.written == [b"onetwo"] and not connection._dirty


@needs_native
@pytest.mark.parametrize("cls", [ServerConnection, OddConnection], ids=["slots", "getattr"])
async def test_flush_sends_straight_to_the_socket_and_resets_the_connection(cls: type[ServerConnection]) -> None:
    # ServerConnection's fields are read and written at their slot offsets, the subclass's
    # through getattr: both leave the same state behind, and the socket gets the same bytes.
    assert native is not None
    ours, theirs = socket.socketpair()
    with ours, theirs:
        connection, transport = open_connection(cls)
        connection._fd = ours.fileno()
        connection.protocol._out = [b"one", b"two"]
        connection._dirty, connection._unflushed = True, 6
        native.flush([connection])
        assert theirs.recv(100) == b"onetwo" and transport.written == []
        assert (connection.protocol._out, connection._dirty, connection._unflushed) == (None, False, 0)


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


async def test_each_connection_gets_the_frames_it_corked_whoever_shares_them(start_server: StartServer) -> None:
    # The C flush joins a connection's frames once and sends that join to the next ones that
    # corked the very same frames; a connection that corked others gets its own, every time.
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder, compression=None, write_limit=2**20)
    clients = [await connect(ws_uri(server), compression=None, max_queue=None) for _ in range(4)]
    try:
        await wait_until(lambda: len(recorder.connections) == 4, what="four connections")
        by_client = {c.remote_address: c for c in recorder.connections}
        ours = [by_client[client.local_address] for client in clients]
        expected: list[list[str]] = [[], [], [], []]

        def to(indexes: range | list[int], message: str) -> None:
            broadcast([ours[i] for i in indexes], message)
            for i in indexes:
                expected[i].append(message)

        # One turn: all four, a private message for the second in the middle, and the last
        # two apart, with frames short and long.
        for n in range(8):
            to(range(4), f"all {n}")
            if n == 3:
                await ours[1].send("only the second")
                expected[1].append("only the second")
            to([2, 3], f"some {n}" * (n * 100 + 1))
        await asyncio.sleep(0)
        # Another turn: two pairs, each with frames of its own, as many for both.
        for n in range(8):
            to([0, 1], f"left {n}")
            to([2, 3], f"right {n}")
        await asyncio.sleep(0)
        # Another turn: more frames than are joined (64), then more bytes than are (64 KiB).
        for n in range(100):
            to(range(4), f"many {n}")
        await asyncio.sleep(0)
        for n in range(3):
            to(range(4), f"{n}" * 30000)
        for client, messages in zip(clients, expected, strict=True):
            assert [await asyncio.wait_for(client.recv(), 2000 * MS) for _ in messages] == messages
    finally:
        for client in clients:
            await client.close()


async def test_a_reader_that_stops_gets_every_corked_frame_in_order(start_server: StartServer) -> None:
    # Many small frames a turn, joined into one write: when the socket takes only part of
    # it, the rest waits in the transport, before anything corked later.
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder, compression=None, write_limit=65536)
    clients = [await connect(ws_uri(server), compression=None, max_queue=None) for _ in range(2)]
    try:
        await wait_until(lambda: len(recorder.connections) == 2, what="the connections")
        for client in clients:
            client.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            client.transport.pause_reading()
        for connection in recorder.connections:
            connection.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        by_client = {c.remote_address: c for c in recorder.connections}
        ours = [by_client[client.local_address] for client in clients]
        # Writes pause at the end of a turn, when the flush fills the transport's buffer: a
        # connection gets all 20 frames of a turn or none.
        sent = [0, 0]
        for turn in range(2000):
            if all(connection.writing_paused for connection in ours):
                break
            for i, connection in enumerate(ours):
                sent[i] += 0 if connection.writing_paused else 20
            for n in range(20):
                broadcast(ours, f"{turn:04d}.{n:02d}" + "x" * 200)
            await asyncio.sleep(0)
        assert all(connection.writing_paused for connection in ours), "the sockets never filled"
        for client in clients:
            client.transport.resume_reading()
        for client, count in zip(clients, sent, strict=True):
            for index in range(count):
                message = await asyncio.wait_for(client.recv(), 2000 * MS)
                assert message == f"{index // 20:04d}.{index % 20:02d}" + "x" * 200
    finally:
        for client in clients:
            await client.close()
