"""connect(): awaiting, async with, reconnection with backoff, TLS, and handshake failures."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

import pytest

from wavecast import (
    CloseCode,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    InvalidURI,
    Limits,
    Request,
    Response,
)
from wavecast.asyncio import ClientConnection, ServerConnection, connect, http_response
from wavecast.protocol import CLOSED, OPEN, USER_AGENT

from ..support.peers import RawSocket, raw_server
from ..support.servers import StartServer, ws_uri
from ..support.timing import MS, wait_until
from ..support.tls import Certificates


def _free_port() -> int:
    """Return a port that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the three ways to connect -------------------------------------------------------------


async def test_await_connect(start_server: StartServer) -> None:
    server = await start_server()
    client = await connect(ws_uri(server))
    try:
        assert isinstance(client, ClientConnection)
        assert client.state is OPEN
        assert client.response is not None and client.response.status_code == 101
        await client.send("awaited")
        assert await client.recv() == "awaited"
    finally:
        await client.close()
    assert client.state is CLOSED


async def test_async_with_connect_closes_on_exit(start_server: StartServer) -> None:
    server = await start_server()
    connector = connect(ws_uri(server))
    async with connector as client:
        assert connector.connection is client
        await client.send("in context")
        assert await client.recv() == "in context"
    assert client.state is CLOSED
    assert client.close_code == CloseCode.NORMAL_CLOSURE


async def test_async_with_connect_closes_when_the_body_raises(start_server: StartServer) -> None:
    server = await start_server()
    with pytest.raises(ZeroDivisionError):
        async with connect(ws_uri(server)) as client:
            1 / 0  # noqa: B018
    assert client.state is CLOSED


async def test_request_headers(start_server: StartServer) -> None:
    requests: list[Request] = []

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        requests.append(connection.request)

    server = await start_server(handler)
    async with connect(
        ws_uri(server, "/path?q=1"), origin=f"http://127.0.0.1:{server.port}", additional_headers={"X-Id": "42"}
    ):
        pass
    async with connect(ws_uri(server), user_agent=None):
        pass
    first, second = requests
    assert (first.path, first.query) == ("/path", "q=1")
    assert first.headers["Host"] == f"127.0.0.1:{server.port}"
    assert first.headers["Origin"] == f"http://127.0.0.1:{server.port}"
    assert first.headers["X-Id"] == "42"
    assert first.headers["User-Agent"] == USER_AGENT
    assert "User-Agent" not in second.headers


async def test_connect_with_host_and_port_overrides(start_server: StartServer) -> None:
    hosts: list[str] = []

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        hosts.append(connection.request.headers["Host"])

    server = await start_server(handler)
    # The URI names a host that doesn't resolve; host and port say where to connect.
    async with connect("ws://chat.invalid/", host="127.0.0.1", port=server.port):
        pass
    assert hosts == ["chat.invalid"]


async def test_connect_over_an_existing_socket(start_server: StartServer) -> None:
    server = await start_server()
    sock = socket.create_connection(("127.0.0.1", server.port))
    async with connect("ws://anything.invalid/", sock=sock) as client:
        await client.send("over sock")
        assert await client.recv() == "over sock"


async def test_compression_is_negotiated_by_default(start_server: StartServer) -> None:
    server = await start_server()
    text = "compressible " * 1000
    async with connect(ws_uri(server)) as client:
        assert client.response is not None
        assert "permessage-deflate" in (client.response.headers.get("Sec-WebSocket-Extensions") or "")
        await client.send(text)
        assert await client.recv() == text
    async with connect(ws_uri(server), compression=None) as client:
        assert client.response is not None
        assert "Sec-WebSocket-Extensions" not in client.response.headers
        await client.send(text)
        assert await client.recv() == text


# --- failures --------------------------------------------------------------------------------


async def test_connect_to_a_closed_port_raises_oserror() -> None:
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{_free_port()}/")


@pytest.mark.parametrize("uri", ["http://127.0.0.1/", "ws://", "ws://user:pw@127.0.0.1/", "ws://127.0.0.1/#frag"])
def test_invalid_uri(uri: str) -> None:
    with pytest.raises(InvalidURI):
        connect(uri)


def test_invalid_arguments(certificates: Certificates) -> None:
    with pytest.raises(ValueError, match="wss://"):
        connect("ws://127.0.0.1/", ssl=certificates.client_context())
    with pytest.raises(ValueError, match="compression"):
        connect("ws://127.0.0.1/", compression="brotli")


async def test_open_timeout_when_the_server_never_answers() -> None:
    async def say_nothing(raw: RawSocket) -> None:
        await asyncio.sleep(3600)

    async with raw_server(say_nothing) as port:
        with pytest.raises(TimeoutError):
            await connect(f"ws://127.0.0.1:{port}/", open_timeout=50 * MS)


async def test_server_closes_during_the_handshake() -> None:
    async def hang_up(raw: RawSocket) -> None:
        await raw.read_head()

    async with raw_server(hang_up) as port:
        with pytest.raises(InvalidHandshake, match="during the opening handshake"):
            await connect(f"ws://127.0.0.1:{port}/")


async def test_wrong_accept_key_is_rejected() -> None:
    async def wrong_accept(raw: RawSocket) -> None:
        await raw.read_head()
        await raw.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: d3JvbmcgYWNjZXB0IGtleSE=\r\n\r\n"
        )
        await raw.read_until_eof()

    async with raw_server(wrong_accept) as port:
        with pytest.raises(InvalidHeader, match="Sec-WebSocket-Accept"):
            await connect(f"ws://127.0.0.1:{port}/")


async def test_invalid_status_carries_the_response(start_server: StartServer) -> None:
    server = await start_server(process_request=lambda connection, request: http_response(404, "Nope\n"))
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_uri(server))
    assert (info.value.status_code, info.value.reason, info.value.body) == (404, "Not Found", b"Nope\n")


async def test_message_too_big_for_the_client_closes_with_1009(start_server: StartServer) -> None:
    closed: list[ConnectionClosed] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.send(b"x" * 2048)
        try:
            await connection.recv()
        except ConnectionClosed as exc:
            closed.append(exc)

    server = await start_server(handler, compression=None)
    async with connect(ws_uri(server), limits=Limits(max_message_size=1024), compression=None) as client:
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
        assert info.value.sent_code == CloseCode.MESSAGE_TOO_BIG
    await wait_until(lambda: bool(closed), what="the handler")
    assert closed[0].code == CloseCode.MESSAGE_TOO_BIG


async def test_max_size_limits_what_the_server_sends(start_server: StartServer) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.send(b"x" * 1024)
        await connection.send(b"x" * 1025)
        await connection.wait_closed()

    server = await start_server(handler, compression=None)
    async with connect(ws_uri(server), max_size=1024, compression=None) as client:
        assert client.protocol.limits.max_message_size == 1024
        assert await client.recv() == b"x" * 1024
        with pytest.raises(ConnectionClosed) as info:
            await client.recv()
        assert info.value.sent_code == CloseCode.MESSAGE_TOO_BIG


def test_max_size_conflicts_with_max_message_size() -> None:
    with pytest.raises(TypeError, match=r"connect\(\) got max_size=None and limits with max_message_size=1024"):
        connect("ws://127.0.0.1:1/", max_size=None, limits=Limits(max_message_size=1024))
    assert connect("ws://127.0.0.1:1/", max_size=None).options.limits.max_message_size is None


# --- reconnection ----------------------------------------------------------------------------


async def test_async_for_reconnects_after_the_server_restarts(start_server: StartServer) -> None:
    generation = 0

    async def handler(connection: ServerConnection) -> None:
        await connection.send(f"generation {generation}")
        await connection.wait_closed()

    first = await start_server(handler)
    port = first.port
    restarted = asyncio.Event()

    async def restart() -> None:
        nonlocal generation
        first.close()
        await first.wait_closed()
        # Leave the port closed for a while, so that some attempts fail.
        await asyncio.sleep(50 * MS)
        generation = 1
        await start_server(handler, port=port)
        restarted.set()

    received: list[str | bytes] = []
    closes: list[int] = []
    restarter: asyncio.Task[None] | None = None
    async with asyncio.timeout(5000 * MS):
        async for client in connect(f"ws://127.0.0.1:{port}/", backoff_min=5 * MS, backoff_max=20 * MS):
            try:
                received.append(await client.recv())
                if restarter is None:
                    restarter = asyncio.create_task(restart())
                    await client.recv()
                else:
                    break
            except ConnectionClosed as exc:
                closes.append(exc.code)
                continue
    # Leaving an async for doesn't close the generator's connection right away.
    await client.close()
    assert restarter is not None and restarter.done() and restarted.is_set()
    assert received == ["generation 0", "generation 1"]
    assert closes == [CloseCode.GOING_AWAY]


async def test_async_for_stops_on_a_4xx(start_server: StartServer) -> None:
    server = await start_server(process_request=lambda connection, request: http_response(403, "Go away\n"))
    with pytest.raises(InvalidStatus) as info:
        async for _ in connect(ws_uri(server), backoff_min=MS):
            pytest.fail("the handshake was rejected")
    assert info.value.status_code == 403


async def test_async_for_retries_a_5xx(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    attempts = 0

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        nonlocal attempts
        attempts += 1
        return http_response(503, "Busy\n") if attempts <= 2 else None

    server = await start_server(process_request=process_request)
    with caplog.at_level(logging.INFO, logger="wavecast.client"):
        async with asyncio.timeout(2000 * MS):
            async for client in connect(ws_uri(server), backoff_min=MS, backoff_max=5 * MS):
                await client.send("third time lucky")
                assert await client.recv() == "third time lucky"
                break
    await client.close()
    assert attempts == 3
    assert sum("retrying" in record.getMessage() for record in caplog.records) == 2


async def test_async_for_backoff_grows_with_full_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    class Enough(Exception):
        pass

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        if len(bounds) == 6:
            raise Enough
        return 0.0

    monkeypatch.setattr("wavecast.asyncio.client.random.uniform", uniform)
    with pytest.raises(Enough):
        async for _ in connect(f"ws://127.0.0.1:{_free_port()}/", backoff_min=1.0, backoff_max=5.0, backoff_factor=2.0):
            pytest.fail("nothing listens there")
    assert bounds == [(0, 1.0), (0, 2.0), (0, 4.0), (0, 5.0), (0, 5.0), (0, 5.0)]


# --- TLS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_wss_echo(start_server: StartServer, certificates: Certificates, host: str) -> None:
    limits = Limits(max_message_size=8 * 2**20, max_frame_size=8 * 2**20)
    server = await start_server(ssl=certificates.server_context(), limits=limits)
    big = bytes(range(256)) * 4096
    async with connect(ws_uri(server, scheme="wss", host=host), ssl=certificates.client_context(), limits=limits) as c:
        await c.send("secure")
        assert await c.recv() == "secure"
        await c.send(big)
        assert await c.recv() == big
        assert c.transport.get_extra_info("ssl_object") is not None


async def test_wss_with_host_override_checks_the_uri_host(
    start_server: StartServer, certificates: Certificates
) -> None:
    server = await start_server(ssl=certificates.server_context())
    # Connect to 127.0.0.1 but check the certificate against the URI's host name.
    connector = connect("wss://localhost/", host="127.0.0.1", port=server.port, ssl=certificates.client_context())
    async with connector as client:
        await client.send("checked")
        assert await client.recv() == "checked"
        assert client.transport.get_extra_info("ssl_object").server_hostname == "localhost"


async def test_wss_server_close_reaches_the_client(start_server: StartServer, certificates: Certificates) -> None:
    server = await start_server(ssl=certificates.server_context())
    async with connect(ws_uri(server, scheme="wss"), ssl=certificates.client_context()) as client:
        await wait_until(lambda: len(server.connections) == 1, what="the connection")
        server.close()
        with pytest.raises(ConnectionClosedOK) as info:
            await client.recv()
        assert info.value.code == CloseCode.GOING_AWAY
        async with asyncio.timeout(2000 * MS):
            await server.wait_closed()


async def test_wss_rejects_an_untrusted_certificate(start_server: StartServer, certificates: Certificates) -> None:
    server = await start_server(ssl=certificates.server_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(ws_uri(server, scheme="wss"), ssl=ssl.create_default_context())


async def test_wss_uses_a_default_context(
    start_server: StartServer, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server(ssl=certificates.server_context())
    # Trust the test CA in the context that connect() creates by default.
    context = certificates.client_context()
    monkeypatch.setattr(ssl, "create_default_context", lambda *args, **kwargs: context)
    connector = connect(ws_uri(server, scheme="wss", host="localhost"))
    assert connector.ssl is context
    async with connector as client:
        await client.send("default context")
        assert await client.recv() == "default context"
