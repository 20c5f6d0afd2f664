"""WebSocket URIs (RFC 6455 section 3)."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from ..exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]


@dataclasses.dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed ws:// or wss:// URI.

    Attributes:
        secure: whether the URI is wss://.
        host: the host name or address, without brackets for IPv6.
        port: the port, explicit or the scheme's default.
        path: the path and query to put on the request line.
    """

    secure: bool
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        """The value of the Host header: the port appears only when it isn't the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and check a ws:// or wss:// URI.

    Raises:
        InvalidURI: the URI has another scheme, no host, a fragment or user info.
    """
    try:
        parsed = urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from exc
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    if not parsed.hostname:
        raise InvalidURI(uri, "no host")
    if parsed.fragment:
        raise InvalidURI(uri, "WebSocket URIs can't have a fragment")
    if parsed.username is not None or parsed.password is not None:
        raise InvalidURI(uri, "user info isn't supported; send an Authorization header instead")
    secure = parsed.scheme == "wss"
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return WebSocketURI(secure, parsed.hostname, port or (443 if secure else 80), path)
