"""The asyncio layer: ``serve()``, ``connect()`` and ``broadcast()`` on the sans-I/O core."""

from __future__ import annotations

from .client import ClientConnection, connect
from .connection import BroadcastResult, ConcurrencyError, Connection, MessageSink, broadcast
from .runner import new_event_loop, run
from .server import Server, ServerConnection, http_response, serve
from .streaming import HTTPStream, StreamingResponse

__all__ = [
    "BroadcastResult",
    "ClientConnection",
    "ConcurrencyError",
    "Connection",
    "HTTPStream",
    "MessageSink",
    "Server",
    "ServerConnection",
    "StreamingResponse",
    "broadcast",
    "connect",
    "http_response",
    "new_event_loop",
    "run",
    "serve",
]
