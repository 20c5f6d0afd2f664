"""Raw peers on bare sockets, for tests that need the other end to misbehave.

A :class:`RawSocket` reads only when asked, so a test can stop reading to fill buffers, skip
answering pings, or never send a handshake at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

from wavecast.protocol import accept_key, apply_mask, frame_header, serialize_close
from wavecast.protocol.frames import OP_CLOSE

from .timing import MS

__all__ = [
    "RawSocket",
    "close_code_of",
    "data_segments_received",
    "handshake_request",
    "masked_frame",
    "open_raw_client",
    "raw_handshake",
    "raw_server",
]


class RawSocket:
    """A non-blocking socket with helpers to speak just enough WebSocket by hand; ``with`` closes it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.eof = False

    async def _fill(self) -> None:
        try:
            data = await self.loop.sock_recv(self.sock, 65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise EOFError("the peer closed the connection")
        self.buffer += data

    async def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_head(self) -> bytes:
        """Read an HTTP head, up to and including the blank line."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        return await self.read_exact(end + 4)

    async def read_response(self) -> tuple[int, dict[str, str], bytes]:
        """Read an HTTP response with a Content-Length; return status, headers and body."""
        head = (await self.read_head()).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.read_exact(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    async def read_frame(self) -> tuple[int, bytes]:
        """Read one frame; return its opcode and unmasked payload."""
        b0, b1 = await self.read_exact(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await self.read_exact(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.read_exact(8), "big")
        mask = await self.read_exact(4) if b1 & 0x80 else None
        payload = await self.read_exact(length)
        if mask is not None:
            payload = apply_mask(payload, mask)
        return b0 & 0x0F, payload

    async def read_until_eof(self) -> bytes:
        """Read everything until the peer closes; return what arrived."""
        with contextlib.suppress(EOFError):
            while True:
                await self._fill()
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def send_frame(self, opcode: int, payload: bytes = b"", *, masked: bool = True, fin: bool = True) -> None:
        """Send one frame, masked as a client must unless ``masked`` is false."""
        if masked:
            mask = os.urandom(4)
            await self.send(frame_header(opcode, len(payload), fin=fin, mask=mask) + apply_mask(payload, mask))
        else:
            await self.send(frame_header(opcode, len(payload), fin=fin) + payload)

    async def send_close(self, code: int = 1000, reason: str = "", *, masked: bool = True) -> None:
        await self.send_frame(OP_CLOSE, serialize_close(code, reason), masked=masked)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """Return one final frame, masked as a client sends it."""
    mask = os.urandom(4)
    return frame_header(opcode, len(payload), mask=mask) + apply_mask(payload, mask)


#: Where ``tcpi_data_segs_in`` sits in Linux's ``struct tcp_info`` (since 4.6), and its format.
_DATA_SEGS_IN = 152
_TCP_INFO_SIZE = 160


def data_segments_received(sock: socket.socket | asyncio.BaseTransport) -> int:
    """How many TCP segments that carry data ``sock`` (or a transport's socket) has received.

    Its peer has TCP_NODELAY on (asyncio and uvloop set it), so each of the peer's writes of
    a few hundred bytes leaves as its own segment: the count tells writes apart, which the
    bytes read can't, as the kernel joins them in the receive queue.
    """
    if isinstance(sock, asyncio.BaseTransport):
        sock = sock.get_extra_info("socket")
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    assert len(info) >= _TCP_INFO_SIZE, "this kernel's tcp_info has no data_segs_in (Linux 4.6+)"
    count: int = struct.unpack_from("I", info, _DATA_SEGS_IN)[0]
    return count


def close_code_of(payload: bytes) -> int:
    """Return the status code in a close frame's payload."""
    return int.from_bytes(payload[:2], "big")


def handshake_request(port: int, path: str = "/", *, key: str | None = None, headers: str = "") -> bytes:
    """Return a valid opening handshake request for a server on 127.0.0.1."""
    key = key or base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"{headers}\r\n"
    ).encode()


async def open_raw_client(port: int, *, rcvbuf: int | None = None, source: str | None = None) -> RawSocket:
    """Open a TCP connection to 127.0.0.1; ``rcvbuf`` shrinks the kernel's receive buffer, and
    ``source`` is the local address to connect from, such as 127.0.0.2: another client, as the
    server sees it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Set before connecting, so the TCP window is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        if source is not None:
            sock.bind((source, 0))
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return RawSocket(sock)


async def raw_handshake(port: int, path: str = "/", *, rcvbuf: int | None = None) -> RawSocket:
    """Open a WebSocket connection by hand, check the 101, and return the socket."""
    raw = await open_raw_client(port, rcvbuf=rcvbuf)
    try:
        await raw.send(handshake_request(port, path))
        head = await raw.read_head()
    except BaseException:
        raw.close()
        raise
    assert head.startswith(b"HTTP/1.1 101 "), head
    return raw


async def accept_handshake(raw: RawSocket) -> None:
    """Read a client's handshake request and accept it, as a minimal server would."""
    head = (await raw.read_head()).decode("latin-1")
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
            break
    else:
        raise AssertionError(f"no Sec-WebSocket-Key in {head!r}")
    await raw.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode()
    )


@contextlib.asynccontextmanager
async def raw_server(behave: Callable[[RawSocket], Awaitable[None]]) -> AsyncIterator[int]:
    """Listen on 127.0.0.1 and run ``behave`` for every connection; yield the port."""
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    tasks: set[asyncio.Task[None]] = set()

    async def run(sock: socket.socket) -> None:
        raw = RawSocket(sock)
        try:
            await behave(raw)
        except EOFError:
            pass
        finally:
            raw.close()

    async def accept_forever() -> None:
        while True:
            sock, _ = await loop.sock_accept(listener)
            sock.setblocking(False)
            tasks.add(loop.create_task(run(sock)))

    acceptor = loop.create_task(accept_forever())
    try:
        yield listener.getsockname()[1]
    finally:
        acceptor.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.wait([acceptor, *tasks], timeout=1000 * MS)
        listener.close()
    # A failed assertion in ``behave`` fails the test.
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise AssertionError("the raw server failed") from task.exception()
