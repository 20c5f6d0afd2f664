"""wavecast: a real-time messaging server and framework for Python, built on WebSockets.

``Node`` (the real-time node, :class:`wavecast.realtime.Node`) and ``Config`` (the whole
configuration of ``wavecast serve``, :class:`wavecast.server.config.Config`) are imported on
first use: they load PyJWT and msgspec, which the WebSocket library alone doesn't need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .asyncio import (
    BroadcastResult,
    ClientConnection,
    ConcurrencyError,
    Connection,
    Server,
    ServerConnection,
    broadcast,
    connect,
    http_response,
    run,
    serve,
)
from .codes import OK_CLOSE_CODES, CloseCode
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidPayload,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    LocalProtocolError,
    NegotiationError,
    PayloadTooBig,
    RemoteProtocolError,
    WavecastError,
)
from .protocol import Headers, Limits, Request, Response
from .version import version as __version__

if TYPE_CHECKING:
    from .realtime.node import Node
    from .server.config import Config

__all__ = [
    "OK_CLOSE_CODES",
    "BroadcastResult",
    "ClientConnection",
    "CloseCode",
    "ConcurrencyError",
    "Config",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Headers",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidOrigin",
    "InvalidPayload",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUpgrade",
    "Limits",
    "LocalProtocolError",
    "NegotiationError",
    "Node",
    "PayloadTooBig",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Server",
    "ServerConnection",
    "WavecastError",
    "__version__",
    "broadcast",
    "connect",
    "http_response",
    "run",
    "serve",
]

# Names imported on first use, and where from (PEP 562).
_LAZY = {"Config": "wavecast.server.config", "Node": "wavecast.realtime.node"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wavecast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups don't come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
