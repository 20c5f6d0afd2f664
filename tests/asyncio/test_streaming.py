"""Streamed responses of ``serve()`` over real sockets: chunks as they are written, backpressure
from a client that doesn't read, the end of the body, and a client that goes away."""

from __future__ import annotations

import asyncio
import socket

from wavecast.asyncio import HTTPStream, ServerConnection, StreamingResponse
from wavecast.protocol import Request, Response
from wavecast.protocol.headers import Headers

from ..support.servers import close_server, serve_locally
from ..support.timing import MS, wait_until

REQUEST = b"POST /stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"


class Streamer:
    """Answers every request with a stream, kept open until the test ends it."""

    def __init__(self) -> None:
        self.stream: HTTPStream | None = None
        self.closed = asyncio.Event()
        self.done = asyncio.Event()

    async def process_request(self, connection: ServerConnection, request: Request) -> StreamingResponse:
        return StreamingResponse(Response(status_code=200, reason_phrase="OK", headers=Headers()), self.run)

    async def run(self, stream: HTTPStream) -> None:
        self.stream = stream
        stream.on_close = self.closed.set
        await self.done.wait()


async def read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    async with asyncio.timeout(2000 * MS):
        return await reader.readuntil(marker)


async def test_chunks_then_the_end() -> None:
    streamer = Streamer()
    server = await serve_locally(process_request=streamer.process_request)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(REQUEST)
        head = await read_until(reader, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked\r\n" in head
        await wait_until(lambda: streamer.stream is not None, what="the handler")
        assert streamer.stream is not None and streamer.stream.open
        assert streamer.stream.request.path == "/stream"
        streamer.stream.write(b"one\n")
        assert await read_until(reader, b"one\n\r\n") == b"4\r\none\n\r\n"
        streamer.done.set()
        assert await read_until(reader, b"0\r\n\r\n") == b"0\r\n\r\n"
        assert await reader.read() == b""
        assert streamer.closed.is_set()
        writer.close()
    finally:
        await close_server(server)


async def test_backpressure_and_a_client_that_leaves() -> None:
    streamer = Streamer()
    server = await serve_locally(process_request=streamer.process_request, write_limit=4096)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(REQUEST)
        await wait_until(lambda: streamer.stream is not None, what="the handler")
        stream = streamer.stream
        assert stream is not None
        writable = asyncio.Event()
        stream.on_writable = writable.set
        # The client reads nothing: the stream says so once the buffers fill.
        for _ in range(10_000):
            if stream.writing_paused:
                break
            stream.write(b"x" * 1024)
            await asyncio.sleep(0)
        assert stream.writing_paused
        sock.close()
        async with asyncio.timeout(2000 * MS):
            await streamer.closed.wait()
        assert not stream.open
        stream.write(b"dropped")  # nothing to write to, and no error
        streamer.done.set()
    finally:
        await close_server(server)
