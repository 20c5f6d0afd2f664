"""A client of the JSON protocol over :func:`wavecast.asyncio.connect`, with no SDK in between."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from wavecast.asyncio import ClientConnection, connect
from wavecast.realtime import Session

from .peers import open_raw_client
from .servers import AppServer, Listening
from .timing import MS
from .tokens import make_token

__all__ = ["OpenRaw", "RawClient", "slow_subscriber"]


class RawClient:
    """Speaks the JSON protocol over :func:`wavecast.asyncio.connect`, with no SDK in between.

    It reads only when told to, so a test can stall it; its socket's receive buffer is small,
    so that a stalled reader fills the server's buffers quickly.
    """

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = 0
        #: Pushes and replies read while waiting for another reply.
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, *, rcvbuf: int | None = 4096, **kwargs: Any) -> RawClient:
        """Connect to the WebSocket ``url`` with ``kwargs`` for :func:`~wavecast.asyncio.connect`,
        compression and keepalive off unless they say otherwise."""
        port = urllib.parse.urlsplit(url).port
        assert port is not None
        raw = await open_raw_client(port, rcvbuf=rcvbuf)
        kwargs.setdefault("compression", None)
        kwargs.setdefault("ping_interval", None)
        try:
            connection = await connect(url, sock=raw.sock, **kwargs)
        except BaseException:
            raw.close()
            raise
        return cls(connection)

    @classmethod
    async def open_to(cls, server: Listening, **kwargs: Any) -> RawClient:
        """Connect to ``server.ws_url`` (see :meth:`open`)."""
        return await cls.open(server.ws_url, **kwargs)

    async def send(self, message: str | bytes) -> None:
        await self.connection.send(message)

    async def recv(self, timeout: float = 5000 * MS) -> list[dict[str, Any]]:
        """Read one WebSocket message: one or more replies, one per line."""
        async with asyncio.timeout(timeout):
            message = await self.connection.recv()
        return [json.loads(line) for line in message.splitlines() if line.strip()]

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one command and return its reply; pushes read meanwhile go to :attr:`received`."""
        self._ids += 1
        command_id = self._ids
        await self.send(json.dumps({"id": command_id, **command}))
        while True:
            for reply in await self.recv():
                if reply.get("id") == command_id:
                    return reply
                self.received.append(reply)

    async def close(self) -> None:
        self.connection.transport.abort()
        await self.connection.wait_closed()


#: ``await open_raw(server, **kwargs)``, the fixture of ``tests/e2e/conftest.py``.
OpenRaw = Callable[..., Awaitable[RawClient]]


@contextlib.asynccontextmanager
async def slow_subscriber(
    running: AppServer, channel: str, *, server_send_buffer: int | None = 4096
) -> AsyncIterator[tuple[ClientConnection, Session]]:
    """A raw client with tiny buffers that subscribes to ``channel``, then reads only when told.

    ``server_send_buffer`` shrinks the server's kernel buffer for it too, so that the server's
    writes back up quickly; ``None`` leaves the one ``wavecast serve`` configured.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", running.port))
    connection = await connect(running.ws_url, sock=sock, compression=None, ping_interval=None, max_queue=1)
    try:
        await connection.send(json.dumps({"id": 1, "connect": {"token": make_token("slow")}}))
        reply = json.loads(await asyncio.wait_for(connection.recv(), 5000 * MS))
        session = running.node.hub.session(reply["connect"]["client"])
        assert session is not None
        await connection.send(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        assert "subscribe" in json.loads(await asyncio.wait_for(connection.recv(), 5000 * MS))
        if server_send_buffer is not None:
            (server_side,) = running.server.connections
            server_side.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, server_send_buffer
            )
        yield connection, session
    finally:
        connection.transport.abort()
        await connection.wait_closed()
