"""Reading pauses while a peer doesn't read what the server writes, and resumes losing nothing.

These run the server in the test process, to look at its transport: the subprocess tests
measure memory, these check that every pong and every answer still arrives, in order, once
the peer reads again, and that the reasons to pause reading don't undo each other.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from wavecast.asyncio import ServerConnection, http_response
from wavecast.protocol import Request, Response
from wavecast.protocol.frames import OP_BINARY, OP_PONG

from ..support.attack import pump, small_sndbuf
from ..support.memory import KIB, MIB
from ..support.peers import open_raw_client, raw_handshake
from ..support.servers import StartServer
from ..support.timing import MS, wait_until

pytestmark = pytest.mark.timeout(30)

WRITE_LIMIT = 32 * KIB
# What one read can add on top of the limit before reading pauses: a read of 256 KiB at most
# (asyncio's), answered with as many bytes (pongs as long as the pings, or one 16 KiB page).
WRITE_BOUND = WRITE_LIMIT + 256 * KIB + 16 * KIB


def shrink_sndbuf(connection: ServerConnection) -> None:
    """Shrink the kernel's buffer under the transport's, so that the transport's fills first."""
    connection.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * KIB)


class Keeper:
    """A handler that keeps its connection and waits until told to receive."""

    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []
        self.go = asyncio.Event()
        self.received: list[str | bytes] = []

    async def __call__(self, connection: ServerConnection) -> None:
        shrink_sndbuf(connection)
        self.connections.append(connection)
        await self.go.wait()
        async for message in connection:
            self.received.append(message)


async def test_pongs_wait_for_a_peer_that_reads_and_none_is_lost(start_server: StartServer) -> None:
    keeper = Keeper()
    server = await start_server(keeper, ping_interval=None, write_limit=WRITE_LIMIT)
    raw = await raw_handshake(server.port, rcvbuf=4 * KIB)
    small_sndbuf(raw)
    pings = [bytes([0x89, 0x80 | 125]) + b"\x00\x00\x00\x00" + f"{i:0125d}".encode() for i in range(20000)]
    try:
        await wait_until(lambda: bool(keeper.connections), what="the handler")
        transport = keeper.connections[0].transport
        sent = await pump(raw, pings)
        assert sent.stalled
        assert not transport.is_reading()
        assert keeper.connections[0].writing_paused
        assert transport.get_write_buffer_size() <= WRITE_BOUND

        # Once the client reads, the server reads the rest: every ping gets its pong, in order.
        async def send_the_rest() -> None:
            rest = b"".join(pings)[sent.sent :]
            await raw.send(rest)

        sender = asyncio.create_task(send_the_rest())
        async with asyncio.timeout(10000 * MS):
            for i in range(len(pings)):
                assert await raw.read_frame() == (OP_PONG, f"{i:0125d}".encode())
        await sender
        assert transport.is_reading()
    finally:
        keeper.go.set()
        raw.close()


def numbered_pages(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/page/"):
        return http_response(200, request.path.removeprefix("/page/").encode().ljust(16 * KIB, b"."))
    return None


async def test_pipelined_requests_wait_for_a_peer_that_reads_and_none_is_lost(start_server: StartServer) -> None:
    server = await start_server(process_request=numbered_pages, write_limit=WRITE_LIMIT)
    raw = await open_raw_client(server.port, rcvbuf=4 * KIB)
    small_sndbuf(raw)
    requests = [f"GET /page/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in range(2000)]
    try:
        await wait_until(lambda: bool(server.connections), what="the connection")
        shrink_sndbuf(next(iter(server.connections)))
        sent = await pump(raw, [b"".join(requests)])
        # The server stops answering, and reading, while its answers wait in the buffers.
        [connection] = server.connections
        await wait_until(lambda: not connection.transport.is_reading(), what="reading to pause")
        assert connection.writing_paused
        assert connection.transport.get_write_buffer_size() <= WRITE_BOUND

        sender = asyncio.create_task(raw.send(b"".join(requests)[sent.sent :]))
        async with asyncio.timeout(10000 * MS):
            for i in range(len(requests)):
                status, _, body = await raw.read_response()
                assert (status, body.rstrip(b".")) == (200, str(i).encode())
        await sender
    finally:
        raw.close()


async def test_a_drained_queue_doesnt_resume_reading_while_writes_are_paused(start_server: StartServer) -> None:
    keeper = Keeper()
    server = await start_server(keeper, ping_interval=None, max_queue=2, write_limit=WRITE_LIMIT)
    with await raw_handshake(server.port, rcvbuf=4 * KIB) as raw:
        await wait_until(lambda: bool(keeper.connections), what="the handler")
        connection = keeper.connections[0]
        transport = connection.transport
        # Two messages fill the queue: reading pauses for the queue.
        await raw.send_frame(OP_BINARY, b"1")
        await raw.send_frame(OP_BINARY, b"2")
        await wait_until(lambda: not transport.is_reading(), what="reading to pause")
        # A send to a client that doesn't read pauses writing too.
        send = asyncio.create_task(connection.send(bytes(MIB)))
        await wait_until(lambda: connection.writing_paused, what="writing to pause")
        # The handler empties the queue, but the client still doesn't read: reading stays paused.
        keeper.go.set()
        await wait_until(lambda: keeper.received == [b"1", b"2"], what="the messages")
        await asyncio.sleep(10 * MS)
        assert not transport.is_reading()
        # Once the client reads, so does the server.
        async with asyncio.timeout(5000 * MS):
            await raw.read_frame()
            await send
        await wait_until(transport.is_reading, what="reading to resume")
        await raw.send_frame(OP_BINARY, b"3")
        await wait_until(lambda: keeper.received == [b"1", b"2", b"3"], what="the last message")


async def test_pipelined_requests_after_an_asynchronous_answer(start_server: StartServer) -> None:
    release = asyncio.Event()

    async def slow_pages(connection: ServerConnection, request: Request) -> Response | None:
        await release.wait()
        return numbered_pages(connection, request)

    server = await start_server(process_request=slow_pages)
    with await open_raw_client(server.port) as raw:
        await raw.send(b"".join(f"GET /page/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in range(50)))
        await wait_until(lambda: bool(server.connections), what="the connection")
        [connection] = server.connections
        # Nothing more is read while process_request decides.
        assert not connection.transport.is_reading()
        release.set()
        async with asyncio.timeout(5000 * MS):
            for i in range(50):
                status, _, body = await raw.read_response()
                assert (status, body.rstrip(b".")) == (200, str(i).encode())
        assert connection.transport.is_reading()
