from __future__ import annotations

import pytest

from wavecast.exceptions import InvalidURI
from wavecast.protocol import WebSocketURI, parse_uri


@pytest.mark.parametrize(
    ("uri", "expected", "host_header"),
    [
        ("ws://example.com", WebSocketURI(False, "example.com", 80, "/"), "example.com"),
        ("wss://example.com/", WebSocketURI(True, "example.com", 443, "/"), "example.com"),
        ("ws://example.com:8080/chat", WebSocketURI(False, "example.com", 8080, "/chat"), "example.com:8080"),
        ("wss://example.com:443/a?b=c&d", WebSocketURI(True, "example.com", 443, "/a?b=c&d"), "example.com"),
        ("ws://example.com:443", WebSocketURI(False, "example.com", 443, "/"), "example.com:443"),
        ("wss://example.com:80", WebSocketURI(True, "example.com", 80, "/"), "example.com:80"),
        ("ws://EXAMPLE.com?q", WebSocketURI(False, "example.com", 80, "/?q"), "example.com"),
        ("ws://[::1]:8000/", WebSocketURI(False, "::1", 8000, "/"), "[::1]:8000"),
        ("wss://[2001:db8::1]/", WebSocketURI(True, "2001:db8::1", 443, "/"), "[2001:db8::1]"),
        ("ws://127.0.0.1:9/x", WebSocketURI(False, "127.0.0.1", 9, "/x"), "127.0.0.1:9"),
    ],
)
def test_parse_uri(uri: str, expected: WebSocketURI, host_header: str) -> None:
    parsed = parse_uri(uri)
    assert parsed == expected
    assert parsed.host_header == host_header


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://example.com/", "scheme isn't ws or wss"),
        ("example.com", "scheme isn't ws or wss"),
        ("ws:///path", "no host"),
        ("ws://example.com/#frag", "WebSocket URIs can't have a fragment"),
        ("ws://user@example.com/", "user info isn't supported"),
        ("ws://user:pw@example.com/", "user info isn't supported"),
        ("ws://example.com:99999/", "Port out of range"),
        ("ws://example.com:port/", "Port could not be cast"),
        ("ws://[::1/", "Invalid IPv6 URL"),
    ],
)
def test_invalid_uri(uri: str, why: str) -> None:
    with pytest.raises(InvalidURI) as exc_info:
        parse_uri(uri)
    assert exc_info.value.uri == uri
    assert str(exc_info.value).startswith(f"{uri!r} isn't a valid WebSocket URI: ")
    assert why in str(exc_info.value)


def test_uri_is_frozen() -> None:
    uri = parse_uri("ws://example.com/")
    with pytest.raises(AttributeError):
        uri.port = 1  # type: ignore[misc]
