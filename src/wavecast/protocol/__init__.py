"""The sans-I/O WebSocket protocol: RFC 6455 framing and handshake, with no I/O and no clock.

This package never imports asyncio, socket, ssl or time; ``tests/protocol/test_sans_io.py``
checks it.
"""

from __future__ import annotations

from .client import USER_AGENT, ClientProtocol
from .connection import Protocol, Side
from .deflate import ClientPerMessageDeflateFactory, PerMessageDeflate, ServerPerMessageDeflateFactory
from .events import Close, Event, Ping, Pong, Request, Response
from .extensions import ClientExtensionFactory, Extension, ExtensionParameter, ServerExtensionFactory
from .frames import Opcode, apply_mask, frame_header, parse_close, serialize_close, serialize_frame
from .handshake import (
    accept_key,
    build_extensions,
    check_key,
    generate_key,
    origin_allowed,
    parse_extensions,
    parse_tokens,
)
from .headers import Headers, HeadersLike
from .http import RequestParser, ResponseParser
from .limits import DEFAULT_LIMITS, Limits
from .prepared import PreparedMessage
from .server import HandshakePolicy, ServerProtocol, SubprotocolSelector
from .state import CLOSED, CLOSING, CONNECTING, OPEN, TRANSITIONS, Action, State, next_state
from .uri import WebSocketURI, parse_uri

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "DEFAULT_LIMITS",
    "OPEN",
    "TRANSITIONS",
    "USER_AGENT",
    "Action",
    "ClientExtensionFactory",
    "ClientPerMessageDeflateFactory",
    "ClientProtocol",
    "Close",
    "Event",
    "Extension",
    "ExtensionParameter",
    "HandshakePolicy",
    "Headers",
    "HeadersLike",
    "Limits",
    "Opcode",
    "PerMessageDeflate",
    "Ping",
    "Pong",
    "PreparedMessage",
    "Protocol",
    "Request",
    "RequestParser",
    "Response",
    "ResponseParser",
    "ServerExtensionFactory",
    "ServerPerMessageDeflateFactory",
    "ServerProtocol",
    "Side",
    "State",
    "SubprotocolSelector",
    "WebSocketURI",
    "accept_key",
    "apply_mask",
    "build_extensions",
    "check_key",
    "frame_header",
    "generate_key",
    "next_state",
    "origin_allowed",
    "parse_close",
    "parse_extensions",
    "parse_tokens",
    "parse_uri",
    "serialize_close",
    "serialize_frame",
]
