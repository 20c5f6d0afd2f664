"""serve(), Server and ServerConnection over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable
from typing import Any

import pytest

from wavecast import (
    CloseCode,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
    Limits,
    LocalProtocolError,
    Request,
    Response,
)
from wavecast.asyncio import Server, ServerConnection, connect, http_response, serve
from wavecast.protocol import CLOSED, CONNECTING, OPEN
from wavecast.protocol.frames import OP_TEXT
from wavecast.protocol.prepared import PreparedMessage

from ..support.peers import handshake_request, masked_frame, open_raw_client, raw_handshake
from ..support.servers import Sink, StartServer, echo, ws_uri
from ..support.timing import MS, wait_until

# --- echo --------------------------------------------------------------------------------


async def test_echo_text_and_binary(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        await client.send("hello, ünïcode ✓")
        assert await client.recv() == "hello, ünïcode ✓"
        await client.send(b"\x00\x01\xfe\xff")
        assert await client.recv() == b"\x00\x01\xfe\xff"
        await client.send(bytearray(b"bytearray"))
        assert await client.recv() == b"bytearray"
        await client.send(memoryview(b"memoryview"))
        assert await client.recv() == b"memoryview"
        await client.send("")
        assert await client.recv() == ""
        await client.send(b"")
        assert await client.recv() == b""


async def test_echo_many_messages_in_order(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        for i in range(200):
            await client.send(f"message {i}")
        for i in range(200):
            assert await client.recv() == f"message {i}"


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 4 * 2**20])
async def test_echo_large_binary(start_server: StartServer, size: int) -> None:
    limits = Limits(max_message_size=8 * 2**20, max_frame_size=8 * 2**20)
    server = await start_server(limits=limits)
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    async with connect(ws_uri(server), limits=limits) as client:
        await client.send(payload)
        assert await client.recv() == payload


async def test_echo_large_text(start_server: StartServer) -> None:
    limits = Limits(max_message_size=8 * 2**20, max_frame_size=8 * 2**20)
    server = await start_server(limits=limits)
    text = "wavecast ✓ " * (4 * 2**20 // 13)
    async with connect(ws_uri(server), limits=limits) as client:
        await client.send(text)
        assert await client.recv() == text


async def test_echo_fragmented_message(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        await client.send_fragments(["frag", "men", "ted"])
        assert await client.recv() == "fragmented"
        await client.send_fragments([b"\x01", b"\x02", b"\x03"])
        assert await client.recv() == b"\x01\x02\x03"


# --- handler lifecycle ---------------------------------------------------------------------


async def test_handler_return_closes_with_1000(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.send("bye")

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        assert await client.recv() == "bye"
        with pytest.raises(ConnectionClosedOK) as info:
            await client.recv()
        assert info.value.code == CloseCode.NORMAL_CLOSURE
        assert info.value.rcvd_then_sent is True
        assert client.close_code == 1000


async def test_handler_exception_closes_with_1011_and_server_keeps_serving(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(connection: ServerConnection) -> None:
        if connection.request is not None and connection.request.path == "/boom":
            raise RuntimeError("boom")
        await echo(connection)

    server = await start_server(handler)
    with caplog.at_level(logging.ERROR, logger="wavecast.server"):
        async with connect(ws_uri(server, "/")) as good, connect(ws_uri(server, "/boom")) as bad:
            with pytest.raises(ConnectionClosedError) as info:
                await bad.recv()
            assert info.value.code == CloseCode.INTERNAL_ERROR
            assert bad.close_code == CloseCode.INTERNAL_ERROR
            await good.send("still here")
            assert await good.recv() == "still here"
        async with connect(ws_uri(server)) as later:
            await later.send("and later")
            assert await later.recv() == "and later"
    assert any("connection handler failed" in record.getMessage() for record in caplog.records)


# A plain function as the handler: called as the connection opens, no task.


async def test_a_plain_function_handler_serves_through_a_sink_without_a_task(start_server: StartServer) -> None:
    sinks: list[Sink] = []

    def handler(connection: ServerConnection) -> None:
        assert asyncio.current_task() is None
        sinks.append(Sink(connection, echo=True))
        connection.deliver_to(sinks[-1])

    server = await start_server(handler)
    # A message in the handshake's segment reaches the sink too.
    with await open_raw_client(server.port) as raw:
        await raw.send(handshake_request(server.port) + masked_frame(OP_TEXT, b"in the same segment"))
        assert (await raw.read_head()).startswith(b"HTTP/1.1 101 ")
        assert await raw.read_frame() == (OP_TEXT, b"in the same segment")
    async with connect(ws_uri(server)) as client:
        await client.send("hello")
        assert await client.recv() == "hello"
        (connection,) = (c for c in server.connections if c.protocol.state is OPEN)
        assert connection._handler_task is None and not server._handlers
    assert [sink.messages for sink in sinks] == [["in the same segment"], ["hello"]]


async def test_a_plain_function_handler_that_keeps_no_sink_closes_with_1000(start_server: StartServer) -> None:
    def handler(connection: ServerConnection) -> None:
        connection.write_prepared(PreparedMessage.of("bye"))

    server = await start_server(handler)
    async with connect(ws_uri(server)) as client:
        assert await client.recv() == "bye"
        with pytest.raises(ConnectionClosedOK):
            await client.recv()
    assert client.close_code == CloseCode.NORMAL_CLOSURE


async def test_a_plain_function_handler_that_raises_closes_with_1011_and_server_keeps_serving(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(connection: ServerConnection) -> None:
        if connection.request is not None and connection.request.path == "/boom":
            raise RuntimeError("boom")
        connection.deliver_to(Sink(connection, echo=True))

    server = await start_server(handler)
    with caplog.at_level(logging.ERROR, logger="wavecast.server"):
        async with connect(ws_uri(server)) as good, connect(ws_uri(server, "/boom")) as bad:
            await bad.wait_closed()
            assert bad.close_code == CloseCode.INTERNAL_ERROR
            await good.send("still here")
            assert await good.recv() == "still here"
    assert any("connection handler failed" in record.getMessage() for record in caplog.records)


async def test_a_plain_function_handler_may_return_a_coroutine_to_run_in_a_task(start_server: StartServer) -> None:
    def handler(connection: ServerConnection) -> Awaitable[None] | None:
        assert connection.request is not None
        if connection.request.path == "/task":
            return echo(connection)
        connection.deliver_to(Sink(connection, echo=True))
        return None

    server = await start_server(handler)
    async with connect(ws_uri(server, "/task")) as in_task, connect(ws_uri(server)) as in_sink:
        await wait_until(lambda: len(server._handlers) == 1, what="the one handler's task")
        for client in (in_task, in_sink):
            await client.send("both served")
            assert await client.recv() == "both served"


async def test_handler_sees_request_and_addresses(start_server: StartServer) -> None:
    seen: list[ServerConnection] = []

    async def handler(connection: ServerConnection) -> None:
        seen.append(connection)
        await connection.send(f"{connection.request.path}?{connection.request.query}" if connection.request else "")

    server = await start_server(handler)
    async with connect(ws_uri(server, "/room/1?user=ada"), additional_headers={"X-Token": "t0k"}) as client:
        assert await client.recv() == "/room/1?user=ada"
        connection = seen[0]
        assert connection.request is not None
        assert connection.request.headers["X-Token"] == "t0k"
        assert connection.request.query_params == {"user": "ada"}
        assert connection.response is not None and connection.response.status_code == 101
        assert connection.local_address[1] == server.port
        assert connection.remote_address == client.local_address
        assert client.remote_address == connection.local_address


async def test_connections_share_the_servers_settings(start_server: StartServer) -> None:
    seen: list[ServerConnection] = []

    async def handler(connection: ServerConnection) -> None:
        seen.append(connection)
        await connection.wait_closed()

    server = await start_server(handler, subprotocols=["chat"], ping_interval=7, max_queue=3)
    async with connect(ws_uri(server), subprotocols=["chat"]), connect(ws_uri(server)):
        await wait_until(lambda: len(seen) == 2, what="both connections")
        first, second = seen
        assert first.options is second.options is server.options
        assert first.protocol.policy is second.protocol.policy
        assert (first.ping_interval, first.max_queue, first.close_timeout) == (7, 3, server.options.close_timeout)
        assert (first.subprotocol, second.subprotocol) == ("chat", None)


async def test_a_handler_may_forget_the_handshake(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None and connection.response is not None
        connection.forget_handshake()
        assert (connection.request, connection.response, connection.protocol.request) == (None, None, None)
        async for message in connection:
            await connection.send(message)

    server = await start_server(handler, subprotocols=["chat"])
    async with connect(ws_uri(server), subprotocols=["chat"]) as client:
        await client.send("still served")
        assert await client.recv() == "still served"
        (connection,) = server.connections
        assert connection.subprotocol == "chat"


async def test_server_close_closes_every_connection_with_1001(start_server: StartServer) -> None:
    server = await start_server()
    uri = ws_uri(server)
    clients = [await connect(uri) for _ in range(3)]
    try:
        await wait_until(lambda: len(server.connections) == 3, what="three connections")
        server.close()
        async with asyncio.timeout(2000 * MS):
            await server.wait_closed()
        assert server.connections == set()
        for client in clients:
            with pytest.raises(ConnectionClosedOK) as info:
                await client.recv()
            assert info.value.code == CloseCode.GOING_AWAY
        # The server doesn't listen anymore.
        with pytest.raises(OSError):
            await connect(uri)
    finally:
        for client in clients:
            await client.close()


async def test_server_close_with_code_and_reason(start_server: StartServer) -> None:
    server = await start_server()
    async with connect(ws_uri(server)) as client:
        await wait_until(lambda: len(server.connections) == 1, what="the connection")
        server.close(code=CloseCode.SERVICE_RESTART, reason="restarting")
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
        assert (info.value.code, info.value.reason) == (CloseCode.SERVICE_RESTART, "restarting")
        await server.wait_closed()


async def test_server_close_lets_an_http_answer_leave_before_closing(start_server: StartServer) -> None:
    page = b"x" * 2**20

    def big_page(connection: ServerConnection, request: Request) -> Response:
        return http_response(200, page)

    # Small buffers at both ends keep most of the page in the server's transport.
    server = await start_server(process_request=big_page, socket_send_buffer=4096)
    with await open_raw_client(server.port, rcvbuf=4096) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await wait_until(lambda: len(server.connections) == 1, what="the connection")
        connection = next(iter(server.connections))
        await wait_until(lambda: connection.transport.get_write_buffer_size() > 0, what="the page to be buffered")
        assert connection.state is CONNECTING  # a kept-alive HTTP connection
        server.close()
        # The whole page, then the end of TCP: what was answered isn't dropped.
        async with asyncio.timeout(5000 * MS):
            status, _, body = await raw.read_response()
            assert (status, len(body)) == (200, len(page))
            assert await raw.read_until_eof() == b""
        await server.wait_closed()


async def test_server_wait_closed_cancels_a_handler_that_outlives_it(start_server: StartServer) -> None:
    cancelled = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await start_server(handler)
    async with connect(ws_uri(server)):
        await wait_until(lambda: len(server._handlers) == 1, what="the handler")
        server.close()
        async with asyncio.timeout(2000 * MS):
            await server.wait_closed(timeout=20 * MS)
    assert cancelled.is_set()


async def test_await_serve_then_use_the_server_as_context_manager() -> None:
    server = await serve(echo, "127.0.0.1", 0)
    async with server, connect(ws_uri(server)) as client:
        await client.send("awaited")
        assert await client.recv() == "awaited"
    assert server.sockets == ()


async def test_serve_as_context_manager_and_serve_forever() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        assert isinstance(server, Server)
        assert server.port != 0
        assert server.sockets[0].getsockname()[0] == "127.0.0.1"
        forever = asyncio.create_task(server.serve_forever())
        async with connect(ws_uri(server)) as client:
            await client.send("ping")
            assert await client.recv() == "ping"
        server.close()
        async with asyncio.timeout(1000 * MS):
            await forever


# --- socket options ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [20480, 49152])
async def test_socket_send_buffer_sets_so_sndbuf_of_accepted_sockets(start_server: StartServer, size: int) -> None:
    server = await start_server(socket_send_buffer=size)
    async with connect(ws_uri(server)) as client:
        await wait_until(lambda: len(server.connections) == 1, what="the connection")
        sock = next(iter(server.connections)).transport.get_extra_info("socket")
        # Linux doubles the value for its bookkeeping (socket(7)); other kernels keep it.
        assert size <= sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * size
        await client.send("still served")
        assert await client.recv() == "still served"


def test_socket_send_buffer_is_the_kernels_by_default() -> None:
    assert serve(echo).server.options.socket_send_buffer is None
    with pytest.raises(ValueError, match="socket_send_buffer must be a positive integer or None, got 0"):
        serve(echo, socket_send_buffer=0)


# --- opening handshake -------------------------------------------------------------------


async def test_open_timeout_aborts_a_silent_client_while_others_are_served(start_server: StartServer) -> None:
    server = await start_server(open_timeout=200 * MS)
    with await open_raw_client(server.port) as silent:
        async with connect(ws_uri(server)) as client:
            await client.send("served")
            assert await client.recv() == "served"
            # The silent client gets EOF once the open timeout fires.
            async with asyncio.timeout(2000 * MS):
                assert await silent.read_until_eof() == b""
            # The handshaken client isn't affected by the open timeout.
            await asyncio.sleep(100 * MS)
            await client.send("still served")
            assert await client.recv() == "still served"
    await wait_until(lambda: len(server.connections) == 0, what="the silent connection to go")


async def test_open_timeout_counts_from_a_partial_request(start_server: StartServer) -> None:
    server = await start_server(open_timeout=50 * MS)
    with await open_raw_client(server.port) as raw:
        await raw.send(handshake_request(server.port)[:20])
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_until_eof() == b""


async def test_subprotocol_negotiation(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.send(connection.subprotocol or "none")

    server = await start_server(handler, subprotocols=["chat.v2", "chat.v1"])
    async with connect(ws_uri(server), subprotocols=["chat.v1", "chat.v2"]) as client:
        assert client.subprotocol == "chat.v2"
        assert await client.recv() == "chat.v2"
    async with connect(ws_uri(server), subprotocols=["chat.v1"]) as client:
        assert client.subprotocol == "chat.v1"
        assert await client.recv() == "chat.v1"
    async with connect(ws_uri(server)) as client:
        assert client.subprotocol is None
        assert await client.recv() == "none"
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server), subprotocols=["mqtt"])
    assert info.value.status_code == 400


async def test_select_subprotocol(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.send(connection.subprotocol or "none")

    server = await start_server(handler, select_subprotocol=lambda offered: offered[-1] if offered else None)
    async with connect(ws_uri(server), subprotocols=["a", "b", "c"]) as client:
        assert client.subprotocol == "c"
        assert await client.recv() == "c"


async def test_origin_rejected_with_403(start_server: StartServer) -> None:
    server = await start_server(origins=["https://good.example"])
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server), origin="https://evil.example")
    assert info.value.status_code == 403
    async with connect(ws_uri(server), origin="https://good.example") as client:
        await client.send("welcome")
        assert await client.recv() == "welcome"


async def test_oversized_header_gets_431_and_server_keeps_serving(start_server: StartServer) -> None:
    server = await start_server()
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server), additional_headers={"X-Big": "x" * 10_000})
    assert info.value.status_code == 431
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server), additional_headers=[(f"X-H{i}", "v") for i in range(200)])
    assert info.value.status_code == 431
    async with connect(ws_uri(server)) as client:
        await client.send("fine")
        assert await client.recv() == "fine"


async def test_plain_http_request_gets_426(start_server: StartServer) -> None:
    server = await start_server()
    with await open_raw_client(server.port) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = await raw.read_response()
        assert status == 426
        assert headers["upgrade"] == "websocket"
        assert b"Upgrade" in body
        assert await raw.read_until_eof() == b""


async def test_garbage_request_gets_400(start_server: StartServer) -> None:
    server = await start_server()
    with await open_raw_client(server.port) as raw:
        await raw.send(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        status, _, _ = await raw.read_response()
        assert status == 400
        assert await raw.read_until_eof() == b""


# --- process_request -----------------------------------------------------------------------


def _page_or_upgrade(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/ws":
        return None
    if request.path == "/":
        return http_response(200, "<h1>hello</h1>", content_type="text/html; charset=utf-8")
    return http_response(404, "Not Found\n", headers={"X-Why": "nothing here"})


async def test_process_request_serves_pages_with_keep_alive(start_server: StartServer) -> None:
    server = await start_server(process_request=_page_or_upgrade)
    with await open_raw_client(server.port) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = await raw.read_response()
        assert (status, headers["content-type"], body) == (200, "text/html; charset=utf-8", b"<h1>hello</h1>")
        # Same socket, second request.
        await raw.send(b"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = await raw.read_response()
        assert (status, headers["x-why"], body) == (404, "nothing here", b"Not Found\n")
        # Same socket again, now an upgrade.
        await raw.send(handshake_request(server.port, "/ws"))
        assert (await raw.read_head()).startswith(b"HTTP/1.1 101 ")


async def test_process_request_pipelined_requests(start_server: StartServer) -> None:
    server = await start_server(process_request=_page_or_upgrade)
    with await open_raw_client(server.port) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert (await raw.read_response())[0] == 200
        assert (await raw.read_response())[0] == 404
        assert await raw.read_until_eof() == b""


async def test_process_request_rejects_the_upgrade(start_server: StartServer) -> None:
    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != "Bearer good":
            return http_response(401, "Unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        return None

    server = await start_server(process_request=process_request)
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server))
    assert info.value.status_code == 401
    assert info.value.body == b"Unauthorized\n"
    async with connect(ws_uri(server), additional_headers={"Authorization": "Bearer good"}) as client:
        await client.send("in")
        assert await client.recv() == "in"


async def test_async_process_request(start_server: StartServer) -> None:
    calls: list[str] = []

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        calls.append(request.path)
        await asyncio.sleep(MS)
        if request.path == "/health":
            return http_response(200, "OK\n")
        return None

    server = await start_server(process_request=process_request)
    with await open_raw_client(server.port) as raw:
        await raw.send(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        assert await raw.read_response() == (
            200,
            {"content-type": "text/plain; charset=utf-8", "content-length": "3"},
            b"OK\n",
        )
        # The handshake waits for the coroutine too, and a message sent right after
        # the request isn't lost.
        await raw.send(handshake_request(server.port, "/ws"))
        await raw.send_frame(0x1, b"early bird")
        assert (await raw.read_head()).startswith(b"HTTP/1.1 101 ")
        assert await raw.read_frame() == (0x1, b"early bird")
    assert calls == ["/health", "/ws"]


@pytest.mark.parametrize("is_async", [False, True])
async def test_process_request_exception_gives_500(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, is_async: bool
) -> None:
    def fail(connection: ServerConnection, request: Request) -> Response | None:
        raise ValueError("oops")

    async def fail_later(connection: ServerConnection, request: Request) -> Response | None:
        raise ValueError("oops")

    server = await start_server(process_request=fail_later if is_async else fail)
    with caplog.at_level(logging.ERROR, logger="wavecast.server"), pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server))
    assert info.value.status_code == 500
    assert any("process_request failed" in record.getMessage() for record in caplog.records)


# --- limits ------------------------------------------------------------------------------


async def test_message_too_big_closes_with_1009_and_others_keep_working(start_server: StartServer) -> None:
    server = await start_server(limits=Limits(max_message_size=1024))
    async with connect(ws_uri(server)) as good, connect(ws_uri(server)) as bad:
        await bad.send(b"x" * 1025)
        with pytest.raises(ConnectionClosedError) as info:
            await bad.recv()
        assert info.value.code == CloseCode.MESSAGE_TOO_BIG
        await good.send(b"x" * 1024)
        assert await good.recv() == b"x" * 1024


async def test_max_size_limits_messages(start_server: StartServer) -> None:
    # The shortcut the issue promised; it used to fall into **kwargs and fail in create_server.
    server = await start_server(max_size=4096, compression=None)
    assert server.options.limits.max_message_size == server.options.limits.max_frame_size == 4096
    async with connect(ws_uri(server), compression=None) as good, connect(ws_uri(server), compression=None) as bad:
        await good.send(b"x" * 4096)  # at the limit, in one frame
        assert await good.recv() == b"x" * 4096
        await bad.send(b"x" * 4097)
        with pytest.raises(ConnectionClosedError) as info:
            await bad.recv()
        assert info.value.code == CloseCode.MESSAGE_TOO_BIG


async def test_max_size_none_turns_the_limit_off(start_server: StartServer) -> None:
    server = await start_server(max_size=None, compression=None)
    assert server.options.limits.max_message_size is server.options.limits.max_frame_size is None
    async with connect(ws_uri(server), max_size=None, compression=None) as client:
        await client.send(b"x" * (2 * 2**20))  # twice the default limit
        assert len(await client.recv()) == 2 * 2**20


def test_max_size_combines_with_other_limits_but_not_with_max_message_size() -> None:
    limits = serve(echo, max_size=8192, limits=Limits(max_header_count=32, max_frame_size=1024)).server.options.limits
    assert (limits.max_message_size, limits.max_frame_size, limits.max_header_count) == (8192, 1024, 32)
    with pytest.raises(TypeError, match=r"serve\(\) got max_size=8192 and limits with max_message_size=4096"):
        serve(echo, max_size=8192, limits=Limits(max_message_size=4096))
    with pytest.raises(ValueError, match="max_size must be a positive integer or None, got 0"):
        serve(echo, max_size=0)


async def test_too_many_fragments_closes_with_1009(start_server: StartServer) -> None:
    server = await start_server(limits=Limits(max_fragments=4))
    async with connect(ws_uri(server)) as client:
        await client.send_fragments(["a", "b", "c"])
        assert await client.recv() == "abc"
        await client.send_fragments(["a", "b", "c", "d", "e"])
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
        assert info.value.code == CloseCode.MESSAGE_TOO_BIG


async def test_protocol_error_closes_with_1002(start_server: StartServer) -> None:
    server = await start_server()
    with await raw_handshake(server.port) as raw:
        # An unmasked frame from a client breaks RFC 6455 section 5.1.
        await raw.send_frame(0x1, b"unmasked", masked=False)
        opcode, payload = await raw.read_frame()
        assert opcode == 0x8
        assert int.from_bytes(payload[:2], "big") == CloseCode.PROTOCOL_ERROR
        assert await raw.read_until_eof() == b""


async def test_invalid_utf8_closes_with_1007(start_server: StartServer) -> None:
    server = await start_server()
    with await raw_handshake(server.port) as raw:
        await raw.send_frame(0x1, b"\xff\xfe")
        opcode, payload = await raw.read_frame()
        assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, CloseCode.INVALID_DATA)


async def test_connection_states_seen_by_the_handler(start_server: StartServer) -> None:
    states: list[object] = []
    done = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        states.append(connection.state)
        await connection.wait_closed()
        states.append(connection.state)
        done.set()

    server = await start_server(handler)
    async with connect(ws_uri(server)):
        pass
    async with asyncio.timeout(1000 * MS):
        await done.wait()
    assert states == [OPEN, CLOSED]


@pytest.mark.parametrize("ending", ["open_timeout", "server_close"])
async def test_async_process_request_is_cancelled_when_the_connection_ends(
    start_server: StartServer, ending: str
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    server = await start_server(
        process_request=process_request, open_timeout=200 * MS if ending == "open_timeout" else None
    )
    with await open_raw_client(server.port) as raw:
        await raw.send(handshake_request(server.port))
        async with asyncio.timeout(1000 * MS):
            await started.wait()
        if ending == "server_close":
            server.close()
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_until_eof() == b""
    # Nobody is left to read the response: the coroutine computing it is cancelled.
    async with asyncio.timeout(1000 * MS):
        await cancelled.wait()
    if ending == "server_close":
        async with asyncio.timeout(1000 * MS):
            await server.wait_closed()


async def test_idle_keep_alive_connection_gets_the_open_timeout(start_server: StartServer) -> None:
    server = await start_server(process_request=_page_or_upgrade, open_timeout=200 * MS)
    with await open_raw_client(server.port) as raw:
        await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await raw.read_response())[0] == 200
        # No second request: the server closes the connection after open_timeout.
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_until_eof() == b""


async def test_send_before_the_handshake_is_a_local_error(start_server: StartServer) -> None:
    errors: list[Exception] = []

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        try:
            await connection.send("too early")
        except LocalProtocolError as exc:
            errors.append(exc)
        return None

    server = await start_server(process_request=process_request)
    async with connect(ws_uri(server)) as client:
        await client.send("after")
        assert await client.recv() == "after"
    assert [str(error) for error in errors] == ["can't send data when state is CONNECTING"]


async def test_wait_closed_aborts_connections_that_outlive_the_timeout(start_server: StartServer) -> None:
    server = await start_server(close_timeout=None)
    with await raw_handshake(server.port) as raw:
        server.close()
        opcode, _ = await raw.read_frame()
        assert opcode == 0x8
        # The raw client never answers the close frame, and there's no close timeout.
        async with asyncio.timeout(2000 * MS):
            await server.wait_closed(timeout=20 * MS)
        assert await raw.read_until_eof() == b""


async def test_debug_logging(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    # Connections decide once whether to log debug messages: enable it before they exist.
    caplog.set_level(logging.DEBUG, logger="wavecast")

    async def handler(connection: ServerConnection) -> None:
        await connection.recv()

    server = await start_server(handler, open_timeout=200 * MS, ping_interval=20 * MS, ping_timeout=20 * MS)
    with pytest.raises(InvalidStatus):
        await connect(ws_uri(server), origin="https://elsewhere.example")
    with await open_raw_client(server.port) as raw:
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_until_eof() == b""  # the open timeout
    with await raw_handshake(server.port) as raw:
        async with asyncio.timeout(2000 * MS):
            assert b"keepalive ping timeout" in await raw.read_until_eof()
    quiet = await start_server(handler, ping_interval=None)
    async with connect(ws_uri(quiet)) as client:
        await client.close(4000, "bye")
    messages = [record.getMessage() for record in caplog.records]
    for expected in ["invalid handshake", "opening handshake timed out", "keepalive ping timed out", "< close 4000"]:
        assert any(expected in message for message in messages), expected


@pytest.mark.parametrize("deferred", [False, True], ids=["sync", "async"])
async def test_a_peer_that_resets_before_the_half_close_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture, deferred: bool
) -> None:
    # A health check resets the connection as soon as it has its answer: the half-close after
    # an answer to "Connection: close" then fails with ENOTCONN, which no test can time, so the
    # transport is made to fail that way.
    def process_request(connection: ServerConnection, request: Request) -> Any:
        def write_eof() -> None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

        connection.transport.write_eof = write_eof  # type: ignore[method-assign]
        response = http_response(200, "ok\n")

        async def later() -> Response:
            return response

        return later() if deferred else response

    with caplog.at_level(logging.ERROR):
        async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
            with await open_raw_client(server.port) as raw:
                await raw.send(b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                status, _, body = await raw.read_response()
                assert (status, body) == (200, b"ok\n")
                assert await raw.read_until_eof() == b""
            await wait_until(lambda: not server.connections)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
