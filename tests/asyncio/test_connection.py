"""Connection: recv/send, closing, pings and keepalive, flow control and broadcast, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from wavecast import (
    OK_CLOSE_CODES,
    CloseCode,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    LocalProtocolError,
)
from wavecast.asyncio import BroadcastResult, ConcurrencyError, Server, ServerConnection, broadcast, connect
from wavecast.protocol import CLOSED, CLOSING, OPEN
from wavecast.protocol.frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT

from ..support.memory import kernel_send_queues
from ..support.peers import (
    RawSocket,
    accept_handshake,
    close_code_of,
    data_segments_received,
    masked_frame,
    raw_handshake,
    raw_server,
)
from ..support.servers import Recorder, Sink, StartServer, echo, ws_uri
from ..support.timing import MS, wait_until

# --- recv and iteration --------------------------------------------------------------------


async def test_async_iteration_ends_on_normal_close(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        for i in range(3):
            await connection.send(f"#{i}")

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        received = [message async for message in client]
    assert received == ["#0", "#1", "#2"]
    assert client.state is CLOSED
    assert client.close_code == CloseCode.NORMAL_CLOSURE


async def test_async_iteration_raises_on_error_close(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.send("last words")
        await connection.close(CloseCode.TRY_AGAIN_LATER, "busy")

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        received = []
        with pytest.raises(ConnectionClosedError) as info:
            async for message in client:
                received.append(message)
    assert received == ["last words"]
    assert (info.value.code, info.value.reason) == (CloseCode.TRY_AGAIN_LATER, "busy")


async def test_messages_received_before_the_close_are_delivered(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        for i in range(10):
            await connection.send(i.to_bytes(1, "big"))

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await client.wait_closed()
        # TCP is closed, but every message that arrived first is still there.
        assert [await client.recv() for _ in range(10)] == [i.to_bytes(1, "big") for i in range(10)]
        with pytest.raises(ConnectionClosedOK):
            await client.recv()


async def test_recv_after_close_keeps_raising(start_server: StartServer) -> None:
    recorder = Recorder()
    server = await start_server(recorder)
    client = await connect(ws_uri(server))
    await client.close(CloseCode.NORMAL_CLOSURE, "done")
    for _ in range(2):
        with pytest.raises(ConnectionClosedOK) as info:
            await client.recv()
        assert info.value.code == CloseCode.NORMAL_CLOSURE
    await recorder.wait_done()
    with pytest.raises(ConnectionClosedOK) as info:
        await recorder.connections[0].recv()
    assert (info.value.code, info.value.reason) == (CloseCode.NORMAL_CLOSURE, "done")


async def test_concurrent_recv_raises_concurrency_error(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        first = asyncio.create_task(client.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            await client.recv()
        assert isinstance(ConcurrencyError("x"), LocalProtocolError)
        await client.send("for the first")
        async with asyncio.timeout(1000 * MS):
            assert await first == "for the first"


async def test_cancelled_recv_loses_no_message(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        pending = asyncio.create_task(client.recv())
        await asyncio.sleep(0)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await client.send("after the cancellation")
        assert await client.recv() == "after the cancellation"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(20 * MS):
                await client.recv()
        await client.send("and after a timeout")
        assert await client.recv() == "and after a timeout"


async def test_pending_recv_raises_when_the_connection_closes(start_server: StartServer) -> None:
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder)
    async with connect(ws_uri(server)) as client:
        await wait_until(lambda: bool(recorder.connections), what="the handler")
        pending = asyncio.create_task(client.recv())
        await asyncio.sleep(0)
        await recorder.connections[0].close(CloseCode.GOING_AWAY, "shutting down")
        with pytest.raises(ConnectionClosedOK) as info:
            async with asyncio.timeout(1000 * MS):
                await pending
        assert (info.value.code, info.value.reason) == (CloseCode.GOING_AWAY, "shutting down")


# --- close codes and reasons ------------------------------------------------------------


async def test_client_closes_with_code_and_reason(start_server: StartServer) -> None:
    recorder = Recorder()
    server = await start_server(recorder)
    client = await connect(ws_uri(server))
    await client.close(4000, "client says bye")
    await recorder.wait_done()
    [error] = recorder.errors
    assert isinstance(error, ConnectionClosedError)
    assert (error.code, error.reason, error.rcvd_then_sent) == (4000, "client says bye", True)
    server_side = recorder.connections[0]
    assert (server_side.close_code, server_side.close_reason) == (4000, "client says bye")
    # The server echoes the code without the reason (RFC 6455 section 5.5.1).
    assert (client.close_code, client.close_reason) == (4000, "")
    assert client.state is CLOSED


async def test_server_closes_with_code_and_reason(start_server: StartServer) -> None:
    server = await start_server(lambda connection: connection.close(4001, "server says bye"))
    async with connect(ws_uri(server)) as client:
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
        assert (info.value.code, info.value.reason, info.value.rcvd_then_sent) == (4001, "server says bye", True)
        assert (client.close_code, client.close_reason) == (4001, "server says bye")


@pytest.mark.parametrize("code", sorted(OK_CLOSE_CODES))
async def test_ok_codes_raise_connection_closed_ok(start_server: StartServer, code: int) -> None:
    recorder = Recorder()
    server = await start_server(recorder)
    client = await connect(ws_uri(server))
    await client.close(code)
    await recorder.wait_done()
    assert isinstance(recorder.errors[0], ConnectionClosedOK)
    assert recorder.errors[0].code == code


async def test_close_frame_without_status_ends_iteration_quietly(start_server: StartServer) -> None:
    recorder = Recorder(lambda connection: echo(connection))
    server = await start_server(recorder)
    with await raw_handshake(server.port) as raw:
        await raw.send_frame(OP_CLOSE, b"")
        assert await raw.read_frame() == (OP_CLOSE, b"")
        assert await raw.read_until_eof() == b""
    await recorder.wait_done()
    assert recorder.errors == []
    assert recorder.connections[0].close_code == CloseCode.NO_STATUS_RCVD


async def test_tcp_closed_without_close_frame_gives_1006(start_server: StartServer) -> None:
    recorder = Recorder()
    server = await start_server(recorder)
    raw = await raw_handshake(server.port)
    raw.close()
    await recorder.wait_done()
    [error] = recorder.errors
    assert isinstance(error, ConnectionClosedError)
    assert error.code == CloseCode.ABNORMAL_CLOSURE
    assert recorder.connections[0].close_code == CloseCode.ABNORMAL_CLOSURE


async def test_send_after_close_raises(start_server: StartServer) -> None:
    server = await start_server()
    client = await connect(ws_uri(server))
    await client.close()
    with pytest.raises(ConnectionClosedOK):
        await client.send("too late")
    with pytest.raises(ConnectionClosedOK):
        await client.send_fragments(["too", "late"])
    with pytest.raises(ConnectionClosedOK):
        await client.ping()


async def test_send_while_closing_raises(start_server: StartServer) -> None:
    server = await start_server(lambda connection: connection.wait_closed())
    async with connect(ws_uri(server)) as client:
        closing = asyncio.create_task(client.close(4002))
        await asyncio.sleep(0)
        assert client.state in (CLOSING, CLOSED)
        with pytest.raises(ConnectionClosed):
            await client.send("while closing")
        await closing


async def test_close_twice_is_harmless(start_server: StartServer) -> None:
    server = await start_server()
    client = await connect(ws_uri(server))
    await asyncio.gather(client.close(), client.close())
    await client.close()
    assert client.state is CLOSED


async def test_close_nowait_starts_the_closing_handshake(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        connection.close_nowait(4003, "not waiting")
        assert connection.state is CLOSING
        await connection.wait_closed()

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
        assert (info.value.code, info.value.reason) == (4003, "not waiting")


@pytest.mark.parametrize("wait", [False, True])
async def test_closing_during_the_opening_handshake_drops_the_connection(start_server: StartServer, wait: bool) -> None:
    async def process_request(connection: ServerConnection, request: Any) -> None:
        if wait:
            await connection.close()
        else:
            connection.close_nowait()

    server = await start_server(process_request=process_request)
    with pytest.raises(InvalidHandshake, match="during the opening handshake"):
        await connect(ws_uri(server))
    await wait_until(lambda: not server.connections, what="the connection to end")


async def test_close_timeout_aborts_a_peer_that_never_answers_the_close(start_server: StartServer) -> None:
    server = await start_server(lambda connection: connection.close(), close_timeout=50 * MS)
    with await raw_handshake(server.port) as raw:
        opcode, payload = await raw.read_frame()
        assert (opcode, close_code_of(payload)) == (OP_CLOSE, CloseCode.NORMAL_CLOSURE)
        # Don't answer: the server gives up after close_timeout and closes TCP.
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_until_eof() == b""


async def test_client_close_timeout_when_the_server_never_closes_tcp() -> None:
    async def answer_close_but_keep_tcp(raw: RawSocket) -> None:
        await accept_handshake(raw)
        while True:
            opcode, payload = await raw.read_frame()
            if opcode == OP_CLOSE:
                await raw.send_close(close_code_of(payload), masked=False)
                await asyncio.sleep(3600)

    async with raw_server(answer_close_but_keep_tcp) as port:
        client = await connect(f"ws://127.0.0.1:{port}/", close_timeout=50 * MS)
        async with asyncio.timeout(2000 * MS):
            await client.close()
        assert client.state is CLOSED
        assert client.close_code == CloseCode.NORMAL_CLOSURE


# --- ping, pong and keepalive ---------------------------------------------------------------


async def test_ping_returns_a_waiter_with_the_latency(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        waiter = await client.ping()
        async with asyncio.timeout(1000 * MS):
            latency = await waiter
        assert isinstance(latency, float)
        assert latency >= 0


async def test_ping_with_data_and_duplicate(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        first = await client.ping("same")
        with pytest.raises(ConcurrencyError):
            await client.ping(b"same")
        second = await client.ping(b"other")
        async with asyncio.timeout(1000 * MS):
            await asyncio.gather(first, second)
        # Answered pings can be sent again.
        again = await client.ping("same")
        async with asyncio.timeout(1000 * MS):
            await again


async def test_a_pong_answers_earlier_pings_too() -> None:
    async def answer_only_the_last_ping(raw: RawSocket) -> None:
        await accept_handshake(raw)
        payloads = []
        while True:
            opcode, payload = await raw.read_frame()
            if opcode == OP_PING:
                payloads.append(payload)
                if payload == b"3":
                    await raw.send_frame(OP_PONG, b"unsolicited", masked=False)
                    await raw.send_frame(OP_PONG, payload, masked=False)
            elif opcode == OP_CLOSE:
                await raw.send_close(close_code_of(payload), masked=False)
                return

    async with raw_server(answer_only_the_last_ping) as port, connect(f"ws://127.0.0.1:{port}/") as client:
        waiters = [await client.ping(str(i)) for i in range(1, 4)]
        async with asyncio.timeout(1000 * MS):
            latencies = await asyncio.gather(*waiters)
        assert all(latency >= 0 for latency in latencies)


async def test_ping_waiter_fails_when_the_connection_is_lost() -> None:
    got_ping = asyncio.Event()

    async def drop_on_ping(raw: RawSocket) -> None:
        await accept_handshake(raw)
        opcode, _ = await raw.read_frame()
        assert opcode == OP_PING
        got_ping.set()

    async with raw_server(drop_on_ping) as port, connect(f"ws://127.0.0.1:{port}/") as client:
        waiter = await client.ping()
        with pytest.raises(ConnectionClosedError):
            async with asyncio.timeout(1000 * MS):
                await waiter
        assert got_ping.is_set()


async def test_server_keepalive_closes_a_peer_that_never_answers_pings_with_1011(start_server: StartServer) -> None:
    recorder = Recorder()
    # The timeout leaves the responsive client ample time to answer, even on a busy machine.
    server = await start_server(recorder, ping_interval=20 * MS, ping_timeout=200 * MS, close_timeout=100 * MS)
    async with connect(ws_uri(server), ping_interval=None) as alive:
        with await raw_handshake(server.port) as raw:
            # The raw client reads frames but never answers the pings.
            pings = 0
            async with asyncio.timeout(2000 * MS):
                while True:
                    opcode, payload = await raw.read_frame()
                    if opcode == OP_PING:
                        pings += 1
                    else:
                        break
                assert opcode == OP_CLOSE
                assert close_code_of(payload) == CloseCode.INTERNAL_ERROR
                assert payload[2:] == b"keepalive ping timeout"
                assert await raw.read_until_eof() == b""
            assert pings >= 1
        await recorder.wait_done()
        assert isinstance(recorder.errors[0], ConnectionClosedError)
        # A client that answers pings stays connected, even with no traffic.
        assert alive.state is OPEN
        await alive.send("alive")
        await wait_until(lambda: recorder.messages == ["alive"], what="the message")


async def test_keepalive_keeps_a_responsive_connection_and_measures_latency(start_server: StartServer) -> None:
    recorder = Recorder(lambda connection: echo(connection))
    server = await start_server(recorder, ping_interval=10 * MS, ping_timeout=1000 * MS)
    async with connect(ws_uri(server), ping_interval=10 * MS, ping_timeout=1000 * MS) as client:
        await wait_until(lambda: bool(recorder.connections) and recorder.connections[0].latency > 0, what="latency")
        await wait_until(lambda: client.latency > 0, what="client latency")
        await asyncio.sleep(50 * MS)
        assert client.state is OPEN
        await client.send("still open")
        assert await client.recv() == "still open"


async def test_client_keepalive_fails_a_server_that_never_answers_pings() -> None:
    close_codes: list[int] = []

    async def never_pong(raw: RawSocket) -> None:
        await accept_handshake(raw)
        while True:
            opcode, payload = await raw.read_frame()
            if opcode == OP_CLOSE:
                close_codes.append(close_code_of(payload))
                return  # and close TCP, as a server does

    async with raw_server(never_pong) as port:
        client = await connect(f"ws://127.0.0.1:{port}/", ping_interval=20 * MS, ping_timeout=40 * MS)
        with pytest.raises(ConnectionClosedError) as info:
            async with asyncio.timeout(2000 * MS):
                await client.recv()
        assert close_codes == [CloseCode.INTERNAL_ERROR]
        # The server closed TCP without answering: nothing received, 1011 sent.
        assert info.value.code == CloseCode.ABNORMAL_CLOSURE
        assert (info.value.sent_code, info.value.sent_reason) == (CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        assert client.state is CLOSED


# --- flow control -------------------------------------------------------------------------

WRITE_LIMIT = 32768
# Random bytes, so that permessage-deflate can't shrink them.
CHUNK = os.urandom(16384)


def _write_bound(write_limit: int = WRITE_LIMIT, message: int = len(CHUNK)) -> int:
    # The transport pauses above write_limit, a send adds one message, and what was
    # corked during the turn (at most write_limit) is flushed on top.
    return 2 * write_limit + message + 64


class Flood:
    """A handler that sends to a path's client until send() blocks, and echoes elsewhere."""

    def __init__(self) -> None:
        self.connection: ServerConnection | None = None
        self.blocked = asyncio.Event()
        self.sent = 0
        self.error: BaseException | None = None

    async def __call__(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        if connection.request.path != "/flood":
            await echo(connection)
            return
        self.connection = connection
        # A small kernel buffer makes the transport buffer fill sooner.
        connection.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        try:
            for _ in range(4096):  # 64 MiB: far more than any kernel buffers
                send = asyncio.ensure_future(connection.send(CHUNK))
                done, _ = await asyncio.wait({send}, timeout=50 * MS)
                if not done:
                    self.blocked.set()
                await send
                self.sent += 1
        except ConnectionClosed as exc:
            self.error = exc


@contextlib.asynccontextmanager
async def flooding(start_server: StartServer) -> AsyncIterator[tuple[Server, Flood]]:
    """Serve a :class:`Flood` and a client on ``/flood`` that doesn't read, until the server's
    send() blocks; the client goes away when the block ends."""
    flood = Flood()
    server = await start_server(flood, write_limit=WRITE_LIMIT, close_timeout=100 * MS)
    with await raw_handshake(server.port, "/flood", rcvbuf=4096):
        async with asyncio.timeout(5000 * MS):
            await flood.blocked.wait()
        yield server, flood


async def test_send_blocks_when_the_peer_doesnt_read(start_server: StartServer) -> None:
    async with flooding(start_server) as (server, flood):
        assert flood.connection is not None
        transport = flood.connection.transport
        assert transport.get_write_buffer_size() <= _write_bound()
        # Other clients are still served while that send() waits.
        async with connect(ws_uri(server)) as other:
            for i in range(20):
                await other.send(f"other {i}")
                assert await other.recv() == f"other {i}"
        assert transport.get_write_buffer_size() <= _write_bound()
    # The blocked send() fails once the peer is gone.
    await wait_until(lambda: flood.error is not None, what="the flood to stop")
    assert isinstance(flood.error, ConnectionClosedError)


async def test_close_timeout_drops_what_a_peer_that_doesnt_read_left_in_the_kernel(start_server: StartServer) -> None:
    flood = Flood()
    server = await start_server(flood, write_limit=WRITE_LIMIT, close_timeout=100 * MS)
    with await raw_handshake(server.port, "/flood", rcvbuf=4096):
        async with asyncio.timeout(5000 * MS):
            await flood.blocked.wait()
        assert flood.connection is not None
        flood.connection.close_nowait(CloseCode.GOING_AWAY)
        await wait_until(lambda: flood.error is not None, what="the close timeout")
        # The server's socket is gone with what it held: the kernel doesn't keep retrying it,
        # for minutes, as an orphan (FIN-WAIT-1 with a send queue).
        assert kernel_send_queues(server.port) == []


class HeldEcho(Recorder):
    """A handler that keeps each connection and echoes once ``release`` is set, leaving the
    messages in the connection's queue until then."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        super().__init__(self.echo_when_released)

    async def echo_when_released(self, connection: ServerConnection) -> None:
        await self.release.wait()
        await echo(connection)


async def test_max_queue_pauses_reading(start_server: StartServer) -> None:
    held = HeldEcho()
    server = await start_server(held, max_queue=4)
    async with connect(ws_uri(server)) as client:
        for i in range(100):
            await client.send(f"{i}")
        await wait_until(lambda: bool(held.connections), what="the handler")
        transport = held.connections[0].transport
        await wait_until(lambda: not transport.is_reading(), what="reading to pause")
        held.release.set()
        for i in range(100):
            async with asyncio.timeout(1000 * MS):
                assert await client.recv() == f"{i}"
        assert transport.is_reading()


async def test_max_queue_none_never_pauses(start_server: StartServer) -> None:
    held = HeldEcho()
    server = await start_server(held, max_queue=None)
    async with connect(ws_uri(server)) as client:
        for i in range(100):
            await client.send(f"{i}")
        await client.send("last")
        await wait_until(lambda: bool(held.connections), what="the handler")
        # Wait for the last message to be queued: a pong follows it on the wire.
        async with asyncio.timeout(1000 * MS):
            await (await client.ping())
        assert held.connections[0].transport.is_reading()
        held.release.set()
        for i in range(100):
            assert await client.recv() == f"{i}"
        assert await client.recv() == "last"


# --- broadcast ----------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_broadcast_frames_once_and_reaches_every_open_connection(
    start_server: StartServer, compression: str | None
) -> None:
    # Without compression every connection gets the same prepared frame; with it,
    # each connection compresses with its own context.
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder, compression=compression)
    clients = [await connect(ws_uri(server)) for _ in range(3)]
    try:
        await wait_until(lambda: len(recorder.connections) == 3, what="three connections")
        big = "to all, and long enough to compress. " * 100
        corked: list[list[bytes]] = []
        for message in (big, b"\x00binary", memoryview(b"view")):
            assert broadcast(server.connections, message) == BroadcastResult(sent=3, skipped=0)
            # Corked until the end of this turn of the loop: what each connection will write.
            corked.append([connection.protocol._out[-1] for connection in server.connections])
        if compression is None:
            # Each message was framed once: every connection got the very same bytes object.
            assert all(frames[0] is frames[1] is frames[2] for frames in corked)
        else:
            # Each connection compressed with its own context.
            assert all(len({id(frame) for frame in frames}) == 3 for frames in corked)
        for client in clients:
            assert await client.recv() == big
            assert await client.recv() == b"\x00binary"
            assert await client.recv() == b"view"
    finally:
        for client in clients:
            await client.close()


async def test_broadcast_skips_closed_connections(start_server: StartServer) -> None:
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder)
    async with connect(ws_uri(server)) as open_client:
        gone = await connect(ws_uri(server))
        await wait_until(lambda: len(recorder.connections) == 2, what="two connections")
        await gone.close()
        await wait_until(lambda: len(server.connections) == 1, what="the closed connection to go")
        assert broadcast(recorder.connections, "hi") == BroadcastResult(sent=1, skipped=1)
        assert await open_client.recv() == "hi"
        # A closed client connection is skipped as well.
        assert broadcast([gone], "hi") == BroadcastResult(sent=0, skipped=1)


async def test_broadcast_to_every_other_connection_than_the_sender(start_server: StartServer) -> None:
    senders: list[ServerConnection] = []

    def handler(connection: ServerConnection) -> None:
        # Each message to every other connection, from the set itself: no copy without the sender.
        senders.append(connection)
        connection.deliver_to(Relay(connection))

    class Relay(Sink):
        def message_received(self, message: str | bytes) -> None:
            assert broadcast(server.connections, message, exclude=self.connection) == BroadcastResult(2, 0)

    server = await start_server(handler)
    async with connect(ws_uri(server)) as a, connect(ws_uri(server)) as b, connect(ws_uri(server)) as c:
        await wait_until(lambda: len(senders) == 3, what="three connections")
        await a.send("from a")
        assert [await b.recv(), await c.recv()] == ["from a", "from a"]
        await c.send("from c")
        # a gets c's message and nothing of its own before it.
        assert [await a.recv(), await b.recv()] == ["from c", "from c"]


async def test_broadcast_skips_connections_over_their_write_limit(start_server: StartServer) -> None:
    async with flooding(start_server) as (server, flood):
        assert flood.connection is not None
        async with connect(ws_uri(server)) as reader:
            await reader.send("ready")
            assert await reader.recv() == "ready"
            assert len(server.connections) == 2
            result = broadcast(server.connections, "news")
            assert result == BroadcastResult(sent=1, skipped=1)
            assert await reader.recv() == "news"
            assert flood.connection.transport.get_write_buffer_size() <= _write_bound()


async def test_broadcast_from_clients_masks_each_frame(start_server: StartServer) -> None:
    recorder = Recorder()
    server = await start_server(recorder)
    async with connect(ws_uri(server)) as first, connect(ws_uri(server)) as second:
        assert broadcast([first, second], "from clients") == (2, 0)
        assert broadcast([first, second], bytearray(b"bytes too")) == (2, 0)
        await wait_until(lambda: len(recorder.messages) == 4, what="four messages")
    assert sorted(recorder.messages, key=repr) == sorted(["from clients"] * 2 + [b"bytes too"] * 2, key=repr)


async def publish_and_subscribe(connection: ServerConnection, subscribers: list[ServerConnection]) -> None:
    """A pub/sub handler as a user writes it: /pub broadcasts what it reads to every /sub."""
    assert connection.request is not None
    if connection.request.path == "/pub":
        async for message in connection:
            broadcast(subscribers, message)
    else:
        subscribers.append(connection)
        await connection.wait_closed()


@pytest.mark.parametrize("count", [1, 16, 64])
async def test_publications_read_together_reach_each_subscriber_in_one_write(
    start_server: StartServer, count: int
) -> None:
    # The publisher's messages arrive in one read, so their broadcasts run in one turn of
    # the loop: each subscriber gets all of them in one write at its end, in order.
    subscribers: list[ServerConnection] = []
    server = await start_server(lambda connection: publish_and_subscribe(connection, subscribers), compression=None)
    readers = [await raw_handshake(server.port, "/sub") for _ in range(3)]
    try:
        await wait_until(lambda: len(subscribers) == 3, what="three subscribers")
        with await raw_handshake(server.port, "/pub") as publisher:
            before = [data_segments_received(reader.sock) for reader in readers]
            messages = [f"publication {n}".encode() for n in range(count)]
            await publisher.send(b"".join(masked_frame(OP_TEXT, message) for message in messages))
            for reader in readers:
                assert [await reader.read_frame() for _ in messages] == [(OP_TEXT, m) for m in messages]
            after = [data_segments_received(reader.sock) for reader in readers]
            assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
    finally:
        for reader in readers:
            reader.close()


async def test_publications_of_separate_reads_leave_in_separate_writes(start_server: StartServer) -> None:
    # The other side of the same rule: nothing waits for a later turn (write_delay is off).
    subscribers: list[ServerConnection] = []
    server = await start_server(lambda connection: publish_and_subscribe(connection, subscribers), compression=None)
    with await raw_handshake(server.port, "/sub") as reader:
        await wait_until(lambda: len(subscribers) == 1, what="a subscriber")
        with await raw_handshake(server.port, "/pub") as publisher:
            before = data_segments_received(reader.sock)
            for n in range(3):
                await publisher.send(masked_frame(OP_TEXT, f"publication {n}".encode()))
                assert await reader.read_frame() == (OP_TEXT, f"publication {n}".encode())
            assert data_segments_received(reader.sock) - before == 3


async def test_corked_publications_keep_the_write_limit(start_server: StartServer) -> None:
    # Publications read together that pass a subscriber's write limit don't all wait for the
    # end of the turn: what passed the limit is handed to the transport at once, so that it
    # pauses a peer that doesn't read. All of them still arrive, whole and in order.
    subscribers: list[ServerConnection] = []
    server = await start_server(
        lambda connection: publish_and_subscribe(connection, subscribers), compression=None, write_limit=1024
    )
    with await raw_handshake(server.port, "/sub") as reader:
        await wait_until(lambda: len(subscribers) == 1, what="a subscriber")
        with await raw_handshake(server.port, "/pub") as publisher:
            before = data_segments_received(reader.sock)
            messages = [bytes([n]) * 300 for n in range(16)]
            await publisher.send(b"".join(masked_frame(OP_BINARY, message) for message in messages))
            assert [await reader.read_frame() for _ in messages] == [(OP_BINARY, m) for m in messages]
            # 16 frames of 302 bytes under a limit of 1,024: written by four at a time.
            assert data_segments_received(reader.sock) - before > 1


async def test_many_small_sends_are_coalesced(start_server: StartServer) -> None:
    # A burst of sends within one turn of the loop leaves in few writes; the peer
    # must still see each message whole and in order.
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        for i in range(1000):
            await client.send(i.to_bytes(2, "big"))
        for i in range(1000):
            assert await client.recv() == i.to_bytes(2, "big")


async def test_send_fragments_of_nothing_sends_nothing(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        await client.send_fragments([])
        await client.send("only this")
        assert await client.recv() == "only this"


async def test_send_fragments_with_a_peer_that_reads_frames(start_server: StartServer) -> None:
    recorder = Recorder(lambda connection: connection.send_fragments([b"ab", b"cd", b"ef"]))
    server = await start_server(recorder)
    with await raw_handshake(server.port) as raw:
        frames = [await raw.read_frame() for _ in range(4)]
        assert frames == [(OP_BINARY, b"ab"), (0, b"cd"), (0, b"ef"), (0, b"")]
        opcode, payload = await raw.read_frame()
        assert (opcode, close_code_of(payload)) == (OP_CLOSE, CloseCode.NORMAL_CLOSURE)
        await raw.send_close(CloseCode.NORMAL_CLOSURE)
        assert await raw.read_until_eof() == b""


async def test_broadcast_skips_a_connection_in_the_middle_of_a_fragmented_message(start_server: StartServer) -> None:
    results: list[BroadcastResult] = []
    recorder = Recorder(lambda connection: connection.wait_closed())
    server = await start_server(recorder, compression=None)

    async with connect(ws_uri(server)) as sender, connect(ws_uri(server)) as other:
        await wait_until(lambda: len(recorder.connections) == 2, what="two connections")
        fragmenting = next(c for c in recorder.connections if c.remote_address == sender.local_address)

        def fragments() -> Any:
            yield "frag"
            # The first fragment is out: a broadcast now can't slip a message in between.
            results.append(broadcast(recorder.connections, "news"))
            yield "mented"

        await fragmenting.send_fragments(fragments())
        assert results == [BroadcastResult(sent=1, skipped=1)]
        assert await sender.recv() == "fragmented"
        assert await other.recv() == "news"


async def test_write_delay_gathers_messages_of_several_turns_in_one_write(start_server: StartServer) -> None:
    corked: list[int] = []

    async def handler(connection: ServerConnection) -> None:
        for n in range(3):
            await connection.send(f"message {n}")
            await asyncio.sleep(0)  # another turn of the loop
        # All three still wait, to leave together in one write.
        corked.append(len(connection.protocol._out or ()))
        await connection.wait_closed()

    server = await start_server(handler, write_delay=0.2, compression=None)
    async with connect(ws_uri(server), compression=None) as client:
        assert [await client.recv() for _ in range(3)] == ["message 0", "message 1", "message 2"]
        assert corked == [3]
        # Control frames don't wait: a ping is answered at once.
        pong = await client.ping()
        assert await asyncio.wait_for(pong, 100 * MS) >= 0


# --- a message sink instead of recv() ------------------------------------------------------


async def test_a_sink_gets_messages_and_the_connection_outlives_the_handler(start_server: StartServer) -> None:
    sinks: list[Sink] = []

    async def handler(connection: ServerConnection) -> None:
        sink = Sink(connection, echo=True)
        sinks.append(sink)
        connection.deliver_to(sink)
        with pytest.raises(ConcurrencyError, match=r"^can't call recv\(\) when messages go to a sink$"):
            await connection.recv()

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await wait_until(lambda: not server._handlers, what="the handler's end")
        # The handler returned, and the connection is still open: its messages go to the sink.
        for message in ("one", b"two", "three"):
            await client.send(message)
            assert await client.recv() == message
        assert sinks[0].messages == ["one", b"two", "three"]
    await wait_until(lambda: sinks[0].closed == 1, what="the sink's close")
    assert sinks[0].connection._sink is None


async def test_messages_queued_before_the_sink_go_to_it_first(start_server: StartServer) -> None:
    sink_ready = asyncio.Event()
    sinks: list[Sink] = []

    async def handler(connection: ServerConnection) -> None:
        await wait_until(lambda: connection._messages is not None and len(connection._messages) == 2)
        sink = Sink(connection)
        sinks.append(sink)
        connection.deliver_to(sink)
        sink_ready.set()

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await client.send("first")
        await client.send("second")
        await sink_ready.wait()
        await client.send("third")
        await wait_until(lambda: len(sinks[0].messages) == 3)
    assert sinks[0].messages == ["first", "second", "third"]


async def test_a_sink_given_a_closed_connection_is_told_at_once(start_server: StartServer) -> None:
    sinks: list[Sink] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()
        sink = Sink(connection)
        sinks.append(sink)
        connection.deliver_to(sink)

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await client.send("before the close")
    await wait_until(lambda: bool(sinks), what="the handler")
    assert sinks[0].messages == ["before the close"]
    assert sinks[0].closed == 1


async def test_a_failing_sink_fails_the_connection_with_1011(start_server: StartServer) -> None:
    sinks: list[Sink] = []

    async def handler(connection: ServerConnection) -> None:
        sinks.append(Sink(connection))
        connection.deliver_to(sinks[-1])

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await client.send("boom")
        await client.wait_closed()
    assert client.close_code == CloseCode.INTERNAL_ERROR
    await wait_until(lambda: sinks[0].closed == 1, what="the sink's close")


async def test_a_sink_pauses_and_resumes_reading(start_server: StartServer) -> None:
    connections: list[ServerConnection] = []

    async def handler(connection: ServerConnection) -> None:
        connections.append(connection)
        sink = Sink(connection)
        connection.deliver_to(sink)
        connection.pause_reading()
        connection.pause_reading()  # twice is harmless

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await wait_until(lambda: bool(connections) and connections[0]._reading_paused)
        connection = connections[0]
        sink = cast(Sink, connection._sink)
        await client.send("waits in the kernel")
        await asyncio.sleep(20 * MS)
        assert sink.messages == []
        connection.resume_reading()
        await wait_until(lambda: sink.messages == ["waits in the kernel"])


async def test_deliver_to_while_recv_waits_is_refused(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        waiting = asyncio.ensure_future(connection.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError, match=r"^can't deliver messages to a sink while a coroutine"):
            connection.deliver_to(Sink(connection))
        assert await waiting == "hello"

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        await client.send("hello")
        await client.wait_closed()
    assert client.close_code == CloseCode.NORMAL_CLOSURE
