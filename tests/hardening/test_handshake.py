"""Hostile clients during the opening handshake, against a server in a subprocess.

Each test checks the answer the hostile client gets, that a well-behaved client keeps being
served during and after the attack, and, where an attack could make the server buffer, that
its memory stays bounded.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from ..support.attack import Bystander, ServerProcess, SpawnServer, attacked, crowd, measure_crowd, pump, small_sndbuf
from ..support.memory import KIB, MIB, bounded, record
from ..support.peers import RawSocket, handshake_request, open_raw_client
from ..support.timing import MS

pytestmark = pytest.mark.timeout(30)

CLOSE_TIMEOUT = 500 * MS


def request_head(port: int, *, request_line: str = "GET / HTTP/1.1", headers: str = "") -> bytes:
    """Return a WebSocket handshake request with another request line or more headers."""
    request = handshake_request(port, headers=headers).decode()
    return (request_line + request[request.index("\r\n") :]).encode()


async def rejected(raw: RawSocket) -> tuple[int, dict[str, str]]:
    """Read a rejection and the end of the connection; return its status and headers."""
    async with asyncio.timeout(2000 * MS):
        status, headers, _ = await raw.read_response()
        assert await raw.read_until_eof() == b""
    return status, headers


async def rejected_request(port: int, request: bytes) -> tuple[int, dict[str, str]]:
    """Send a request on a new connection; return the rejection's status and headers."""
    with await open_raw_client(port) as raw:
        await raw.send(request)
        return await rejected(raw)


async def measure_rejections(
    server: ServerProcess,
    case: str,
    request: bytes,
    status: int,
    *,
    count: int = 1000,
    warmups: int = 1,
) -> dict[str, str]:
    """Check that ``request`` is rejected with ``status``, then send it on ``count`` connections
    and bound the memory, a bystander served throughout; return the first rejection's headers."""
    async with Bystander(server) as bystander:
        got, headers = await rejected_request(server.port, request)
        assert got == status
        await bystander.check()

        async def attack() -> None:
            assert (await rejected_request(server.port, request))[0] == status

        # One at a time: the reads of overlapping connections (asyncio reads 256 KiB at once) make
        # glibc's heap wander by megabytes, which would hide what each connection leaves behind.
        await measure_crowd(
            server,
            bystander,
            case,
            lambda: crowd(attack, count, concurrency=1),
            count=count,
            bound=3 * MIB,
            warmups=warmups,
        )
    await server.settled()
    return headers


async def test_oversized_header_line_gets_431(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    request = request_head(server.port, headers=f"X-Big: {'a' * 9000}\r\n")
    # A thousand of them: each buffered 8 KiB before its 431.
    headers = await measure_rejections(server, "oversized header lines, 431", request, 431)
    assert headers["connection"] == "close"


async def test_endless_header_line_gets_431_while_it_is_still_streaming(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    async with Bystander(server) as bystander:
        raw = await open_raw_client(server.port)
        small_sndbuf(raw)
        try:
            head = request_head(server.port)
            await raw.send(head[:-2] + b"X-Endless: ")
            # Under the 8 KiB limit, the request is only incomplete.
            await raw.send(b"a" * 4 * KIB)
            await bystander.check()
            # Past it, the 431 comes while the line is still open: no LF, no EOF.
            await raw.send(b"a" * 5 * KIB)
            async with asyncio.timeout(2000 * MS):
                status, _, _ = await raw.read_response()
            assert status == 431
            # Whatever the client streams after that costs nothing: the server discards it
            # until its close timeout aborts the connection.
            async with server.memory() as memory:
                attack = asyncio.create_task(pump(raw, itertools.repeat(b"a" * 64 * KIB, 3200)))
                await bystander.check()
                pumped = await attack
        finally:
            raw.close()
        bounded("endless header line", memory, 8 * MIB, f"{pumped.sent / MIB:.0f} MiB streamed after the 431")
        await bystander.check()
    await server.settled()


async def test_too_many_headers_get_431(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    headers = "".join(f"X-Header-{i}: {i}\r\n" for i in range(200))
    request = request_head(server.port, headers=headers)
    # Each of them parsed 128 headers before its 431. The heap takes two crowds to settle.
    await measure_rejections(server, "too many headers, 431", request, 431, warmups=2)


async def test_request_line_too_long_gets_414(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    request = request_head(server.port, request_line=f"GET /{'a' * 9000} HTTP/1.1")
    await measure_rejections(server, "request line too long, 414", request, 414)


@pytest.mark.parametrize(
    ("request_line", "headers", "status", "expected"),
    [
        pytest.param("POST / HTTP/1.1", "Content-Length: 0\r\n", 405, {"allow": "GET"}, id="POST-405"),
        pytest.param("GET / HTTP/1.0", "", 505, {}, id="HTTP/1.0-505"),
        pytest.param(
            "GET / HTTP/1.1",
            "Sec-WebSocket-Version: 8\r\n",
            426,
            {"sec-websocket-version": "13", "upgrade": "websocket"},
            id="version-8-426",
        ),
    ],
)
async def test_wrong_method_or_version_is_rejected(
    spawn_server: SpawnServer, request_line: str, headers: str, status: int, expected: dict[str, str]
) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    request = request_head(server.port, request_line=request_line, headers=headers)
    if "Sec-WebSocket-Version: 8" in headers:
        request = request.replace(b"Sec-WebSocket-Version: 13\r\n", b"")
    case = " + ".join(filter(None, [request_line, headers.strip()])) + f", {status}"
    got_headers = await measure_rejections(server, case, request, status)
    assert expected.items() <= got_headers.items()


@pytest.mark.parametrize("origin", ["http://ex]ample.com", "http://[::1", "http://[zz]"])
@pytest.mark.parametrize("origins", [None, ["https://*.example.com"]], ids=["own-origin", "allow-list"])
async def test_malformed_origin_gets_403(spawn_server: SpawnServer, origin: str, origins: list[str] | None) -> None:
    # urlsplit() raised ValueError on these: the server logged a fatal error and sent nothing.
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT, origins=origins)
    async with Bystander(server) as bystander:
        with await open_raw_client(server.port) as raw:
            await raw.send(request_head(server.port, headers=f"Origin: {origin}\r\n"))
            async with asyncio.timeout(2000 * MS):
                status, headers, body = await raw.read_response()
                assert await raw.read_until_eof() == b""
        assert status == 403
        assert headers["connection"] == "close"
        assert body == f"Failed to open a WebSocket connection: invalid Origin header: {origin!r}.\n".encode()
        await bystander.check()
    await server.settled()


async def test_unfinished_handshake_is_dropped_at_open_timeout(spawn_server: SpawnServer) -> None:
    server = await spawn_server(open_timeout=300 * MS, close_timeout=CLOSE_TIMEOUT)
    async with Bystander(server) as bystander:
        silent = await open_raw_client(server.port)
        partial = await open_raw_client(server.port)
        try:
            await partial.send(request_head(server.port)[:40])
            await bystander.check()
            async with asyncio.timeout(3000 * MS):
                # Aborted: no answer at all, just the end of the connection.
                assert await silent.read_until_eof() == b""
                assert await partial.read_until_eof() == b""
        finally:
            silent.close()
            partial.close()
        await bystander.check()

        async def attack(data: bytes) -> None:
            with await open_raw_client(server.port) as raw:
                await raw.send(data)
                async with asyncio.timeout(3000 * MS):
                    assert await raw.read_until_eof() == b""

        # Up to 100 at a time (the listen backlog), each waiting for its open timeout.
        half = request_head(server.port)[:40]
        await measure_crowd(
            server,
            bystander,
            "unfinished handshakes",
            lambda: crowd(lambda: attack(half), 600, concurrency=100),
            count=600,
            bound=MIB * 3 // 2,
        )
    await server.settled()


async def slowloris(server: ServerProcess, request: bytes, pace: float, bystander: Bystander | None = None) -> int:
    """Send ``request`` a byte every ``pace`` seconds until the server drops it; return the bytes sent."""
    raw = await open_raw_client(server.port)
    sent = 0
    try:
        for i in range(len(request)):
            try:
                await raw.send(request[i : i + 1])
            except (ConnectionResetError, BrokenPipeError):
                return sent
            sent += 1
            try:
                # Pace the bytes by waiting for the end of the connection.
                async with asyncio.timeout(pace):
                    await raw.read_until_eof()
                return sent
            except TimeoutError:
                pass
            if bystander is not None and sent % 5 == 0:
                await bystander.check()
    finally:
        raw.close()
    raise AssertionError(f"the whole request of {sent} bytes went through")


async def test_slowloris_is_dropped_at_open_timeout(spawn_server: SpawnServer) -> None:
    server = await spawn_server(open_timeout=300 * MS, close_timeout=CLOSE_TIMEOUT)
    # The request would take 25 s at a byte per 50 ms, far past the open timeout.
    request = request_head(server.port, headers=f"X-Slow: {'a' * 300}\r\n")
    async with Bystander(server) as bystander:
        sent = await slowloris(server, request, 50 * MS, bystander)
        assert sent < len(request)
        await bystander.check()

        async def attack() -> None:
            await slowloris(server, request, 50 * MS)

        await measure_crowd(
            server, bystander, "slowloris", lambda: crowd(attack, 500, concurrency=100), count=500, bound=MIB
        )
    await server.settled()


async def test_frames_sent_with_the_request_are_answered_after_the_101(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    async with attacked(server) as (_, raw):
        # The request and a frame in one segment, before the server could answer.
        frame = bytes([0x81, 0x80 | 5]) + b"\x00\x00\x00\x00" + b"early"
        await raw.send(handshake_request(server.port) + frame)
        async with asyncio.timeout(2000 * MS):
            head = await raw.read_head()
            assert head.startswith(b"HTTP/1.1 101 ")
            assert await raw.read_frame() == (0x1, b"early")
    await server.settled()


async def test_frames_streamed_before_a_pending_101_are_bounded(spawn_server: SpawnServer) -> None:
    # /hold keeps the request waiting in process_request until /release is requested.
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    async with attacked(server) as (bystander, raw):
        small_sndbuf(raw)
        payload = b"x" * 60 * KIB
        frame = bytes([0x82, 0x80 | 126]) + len(payload).to_bytes(2, "big") + b"\x00\x00\x00\x00" + payload
        await raw.send(request_head(server.port, request_line="GET /hold HTTP/1.1"))
        async with server.memory() as memory:
            # 200 MiB of frames while the server hasn't answered: it must stop reading.
            attack = asyncio.create_task(pump(raw, itertools.repeat(frame, 200 * MIB // len(frame))))
            await bystander.check()
            pumped = await attack
        assert pumped.stalled
        bounded("frames before a pending 101", memory, 8 * MIB, f"{pumped.sent / MIB:.1f} MiB accepted of 200 MiB")
        await bystander.check()
        status, _ = await server.http("/release")
        assert status == 200
        async with asyncio.timeout(2000 * MS):
            head = await raw.read_head()
            assert head.startswith(b"HTTP/1.1 101 ")
            # The frames that waited are parsed after the 101: the first one comes back.
            assert await raw.read_frame() == (0x2, payload)
    await server.settled()


async def test_pipelined_requests_in_one_segment_are_all_answered(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    async with attacked(server) as (_, raw):
        # Far more requests than Python's recursion limit, in one segment.
        await raw.send(b"GET /release HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 3000)
        async with asyncio.timeout(5000 * MS):
            for _ in range(3000):
                status, _, body = await raw.read_response()
                assert (status, body) == (200, b"released\n")
    await server.settled()


async def test_pipelined_requests_from_a_peer_that_never_reads(spawn_server: SpawnServer) -> None:
    server = await spawn_server(close_timeout=CLOSE_TIMEOUT)
    async with Bystander(server) as bystander:
        raw = await open_raw_client(server.port, rcvbuf=4 * KIB)
        small_sndbuf(raw)
        # Each request of 40 bytes asks for a page of 16 KiB.
        request = b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        try:
            async with server.memory() as memory:
                attack = asyncio.create_task(pump(raw, itertools.repeat(request * 1000, 400)))
                await bystander.check()
                pumped = await attack
        finally:
            raw.close()
        record(
            "pipelined requests, never read",
            memory,
            f"{pumped.sent // len(request)} requests accepted of 400000 (16 KiB answer each)",
        )
        assert pumped.stalled
        assert memory.growth < 8 * MIB
        await bystander.check()
    await server.settled()
