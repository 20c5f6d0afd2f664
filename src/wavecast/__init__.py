"""wavecast: a real-time messaging server and framework for Python, built on WebSockets."""

from __future__ import annotations

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

__all__ = [
    "OK_CLOSE_CODES",
    "BroadcastResult",
    "ClientConnection",
    "CloseCode",
    "ConcurrencyError",
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
