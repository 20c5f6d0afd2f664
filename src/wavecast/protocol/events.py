"""Events that a protocol hands back from ``events_received()``.

A complete text message arrives as a :class:`str` and a complete binary message as
:class:`bytes`; they are the common case and need no wrapper. Everything else is one of the
small value objects below.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl

from .headers import Headers

__all__ = ["Close", "Event", "Ping", "Pong", "Request", "Response"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """An opening handshake request (RFC 6455 section 4.1).

    Attributes:
        path: the request target without its query, e.g. ``/chat``.
        query: the query string without ``?``, or ``""``.
        headers: the request headers.
        method: the HTTP method; ``GET`` for any request that can be accepted.
        http_version: ``"1.1"`` for any request that can be accepted.
        body: the body of a plain HTTP request; empty for a handshake.
        keep_alive: whether the client lets the connection serve another request.
    """

    path: str
    headers: Headers
    query: str = ""
    method: str = "GET"
    http_version: str = "1.1"
    body: bytes = b""
    keep_alive: bool = True

    @property
    def target(self) -> str:
        """The request target as sent on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def query_params(self) -> dict[str, str]:
        """The query parameters; the last value wins when a name repeats."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def serialize(self) -> bytes:
        head = f"{self.method} {self.target} HTTP/{self.http_version}\r\n".encode()
        return head + self.headers.serialize() + b"\r\n"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """An opening handshake response: ``101 Switching Protocols`` or a rejection."""

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""

    def serialize(self) -> bytes:
        # One join, one encode: a server writes a 101 on every connect.
        items = self.headers._items
        parts = [f"HTTP/1.1 {self.status_code} {self.reason_phrase}\r\n"]
        for index in range(0, len(items), 2):
            parts += (items[index], ": ", items[index + 1], "\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode()
        return head + self.body if self.body else head


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    """A ping frame arrived; the protocol has already queued the pong."""

    data: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class Pong:
    """A pong frame arrived."""

    data: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """A close frame arrived; ``code`` is 1005 when it carried no status."""

    code: int
    reason: str = ""


Event = str | bytes | Request | Response | Ping | Pong | Close
