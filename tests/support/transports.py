"""Server-side WebSocket connections with no socket under them, for tests of what they write.

The connection is open and its transport keeps every write, so a test can set a connection up
in any state (paused, closing, corked) and compare what two code paths did to it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wavecast.asyncio import ServerConnection
from wavecast.asyncio._options import ConnectionOptions
from wavecast.protocol import OPEN
from wavecast.protocol.server import ServerProtocol

__all__ = ["CountingTransport", "FakeServer", "open_connection"]


class CountingTransport(asyncio.Transport):
    """An asyncio transport that keeps what it's asked to write."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeServer:
    """What a :class:`ServerConnection` reads of its server: options without timers, and the set
    of connections it joins."""

    options = ConnectionOptions(open_timeout=None, ping_interval=None, write_limit=100)

    def __init__(self) -> None:
        self._connections: set[ServerConnection] = set()


def open_connection(cls: type[ServerConnection] = ServerConnection) -> tuple[ServerConnection, CountingTransport]:
    """Return an open connection of ``cls`` on a :class:`CountingTransport`, and the transport."""
    connection = cls(ServerProtocol(), FakeServer())  # type: ignore[arg-type]
    transport = CountingTransport()
    connection.connection_made(transport)
    connection.protocol.state = OPEN
    return connection, transport
