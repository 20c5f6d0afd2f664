"""Pieces of the opening handshake (RFC 6455 section 4) that both sides use."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
from collections.abc import Sequence

from ..exceptions import InvalidHeader
from .extensions import ExtensionParameter

__all__ = [
    "accept_key",
    "build_extensions",
    "check_key",
    "generate_key",
    "origin_allowed",
    "parse_extensions",
    "parse_tokens",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 9110 section 5.6.2: tchar.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def generate_key() -> str:
    """Return a random ``Sec-WebSocket-Key``."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` that answers ``key``."""
    digest = hashlib.sha1((key + GUID).encode()).digest()
    # binascii directly: base64.b64encode is a Python wrapper around it, called on every connect.
    return binascii.b2a_base64(digest, newline=False).decode()


def check_key(key: str) -> None:
    """Check that ``key`` is the base64 encoding of 16 bytes (RFC 6455 section 4.2.1)."""
    try:
        raw = base64.b64decode(key.encode(), validate=True)
    except binascii.Error as exc:
        raise InvalidHeader("Sec-WebSocket-Key", key) from exc
    if len(raw) != 16:
        raise InvalidHeader("Sec-WebSocket-Key", key)


def parse_tokens(values: Sequence[str], name: str, *, lowercase: bool = True) -> list[str]:
    """Parse comma-separated tokens from every value of a header, lowercased by default.

    Empty list elements are allowed, as RFC 9110 section 5.6.1 says.
    """
    tokens: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue
            if not _TOKEN.fullmatch(item):
                raise InvalidHeader(name, value)
            tokens.append(item.lower() if lowercase else item)
    return tokens


def parse_extensions(values: Sequence[str]) -> list[tuple[str, list[ExtensionParameter]]]:
    """Parse ``Sec-WebSocket-Extensions`` values (RFC 6455 section 9.1).

    ``"permessage-deflate; client_max_window_bits, x-foo"`` gives
    ``[("permessage-deflate", [("client_max_window_bits", None)]), ("x-foo", [])]``.
    """
    extensions: list[tuple[str, list[ExtensionParameter]]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            item = item.strip(" \t")
            if not item:
                continue
            name, *raw_params = (part.strip(" \t") for part in _split_outside_quotes(item, ";"))
            if not _TOKEN.fullmatch(name):
                raise InvalidHeader("Sec-WebSocket-Extensions", value)
            params: list[ExtensionParameter] = []
            for raw in raw_params:
                key, eq, param_value = (part.strip(" \t") for part in raw.partition("="))
                if not _TOKEN.fullmatch(key):
                    raise InvalidHeader("Sec-WebSocket-Extensions", value)
                if not eq:
                    params.append((key, None))
                    continue
                if _QUOTED.fullmatch(param_value):
                    param_value = re.sub(r"\\(.)", r"\1", param_value[1:-1])
                # A quoted value must still be a token once unquoted (section 9.1).
                if not _TOKEN.fullmatch(param_value):
                    raise InvalidHeader("Sec-WebSocket-Extensions", value)
                params.append((key, param_value))
            extensions.append((name, params))
    return extensions


def _split_outside_quotes(value: str, sep: str) -> list[str]:
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return parts


def build_extensions(extensions: Sequence[tuple[str, Sequence[ExtensionParameter]]]) -> str:
    """Build a ``Sec-WebSocket-Extensions`` value; the reverse of :func:`parse_extensions`."""
    return ", ".join(
        "; ".join([name, *(key if value is None else f"{key}={value}" for key, value in params)])
        for name, params in extensions
    )


def origin_allowed(origin: str | None, host: str | None, origins: Sequence[str] | None) -> bool:
    """Tell whether a request with this ``Origin`` may connect.

    Args:
        origin: the request's Origin header; ``None`` when absent. Browsers always send
            it, so a request without one does not come from a web page.
        host: the request's Host header.
        origins: the allowed origins, such as ``"https://example.com"``;
            ``"https://*.example.com"`` allows every subdomain and ``"*"`` any origin.
            ``None`` allows only the server's own origin: the Origin's host and port must
            match the Host header, which defeats cross-site WebSocket hijacking.

    An Origin that isn't ``null`` or ``scheme://host[:port]`` (RFC 6454 section 6.1) is
    refused by every policy but ``"*"``, which doesn't look at the value.
    """
    if origin is None:
        return True
    if origins is not None and "*" in origins:
        return True
    origin = _normalize_origin(origin)
    if origin == "null":
        # An opaque origin (a sandboxed frame, a file): only a listed "null" lets it in.
        return origins is not None and "null" in (_normalize_origin(allowed) for allowed in origins)
    netloc = _origin_netloc(origin)
    if netloc is None:
        return False
    if origins is None:
        if not host:
            return False
        host = host.lower()
        return netloc == host or _without_default_port(netloc, origin) == _without_default_port(host, origin)
    for allowed in origins:
        allowed = _normalize_origin(allowed)
        if allowed == origin:
            return True
        if "://*." in allowed:
            scheme, _, domain = allowed.partition("://*")
            # At least one label before the domain: "https://.example.com" isn't a subdomain.
            if origin.startswith(scheme + "://") and origin.endswith(domain):
                label = origin[len(scheme) + 3 : -len(domain)]
                if label and "/" not in label and "@" not in label:
                    return True
    return False


# RFC 6454 section 6.1: scheme "://" host [ ":" port ], the host a reg-name or an IP literal.
_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://(?P<netloc>(?P<host>\[[0-9a-f:.]+\]|[a-z0-9._~!$&'()*+,;=%-]+)(?::(?P<port>[0-9]{1,5}))?)"
)


def _origin_netloc(origin: str) -> str | None:
    """Return the ``host[:port]`` of a lowercased serialized origin; ``None`` when it is malformed."""
    match = _ORIGIN.fullmatch(origin)
    if match is None:
        return None
    host, port = match["host"], match["port"]
    if port is not None and int(port) > 65535:
        return None
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
    return match["netloc"]


def _normalize_origin(origin: str) -> str:
    """Scheme and host of an origin compare case-insensitively (RFC 6454 section 4)."""
    return origin.lower()


def _without_default_port(netloc: str, origin: str) -> str:
    default = ":443" if origin.startswith("https:") else ":80"
    return netloc[: -len(default)] if netloc.endswith(default) else netloc
