from __future__ import annotations

import base64

import pytest

from wavecast.exceptions import InvalidHeader
from wavecast.protocol import (
    accept_key,
    build_extensions,
    check_key,
    generate_key,
    origin_allowed,
    parse_extensions,
    parse_tokens,
)

from .helpers import RFC_ACCEPT, RFC_KEY


def test_generate_key() -> None:
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    check_key(key)
    assert generate_key() != key


def test_accept_key_rfc_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT


@pytest.mark.parametrize(
    "key", ["", "c2hvcnQ=", "not base64!", RFC_KEY[:-2], RFC_KEY + "AA==", "dGhlIHNhbXBsZSBub25jZQ"]
)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(InvalidHeader) as exc_info:
        check_key(key)
    assert exc_info.value.name == "Sec-WebSocket-Key"
    assert exc_info.value.value == key
    assert exc_info.value.status == 400


# --- tokens ----------------------------------------------------------------------------------


def test_parse_tokens() -> None:
    assert parse_tokens([], "Connection") == []
    assert parse_tokens(["Keep-Alive, Upgrade", "", " ,\t, close ,"], "Connection") == [
        "keep-alive",
        "upgrade",
        "close",
    ]
    assert parse_tokens(["Chat, v2.JSON"], "Sec-WebSocket-Protocol", lowercase=False) == ["Chat", "v2.JSON"]


@pytest.mark.parametrize("value", ["web socket", "a;b", 'x, "quoted"', "é"])
def test_parse_tokens_refuses(value: str) -> None:
    with pytest.raises(InvalidHeader) as exc_info:
        parse_tokens(["ok", value], "Upgrade")
    assert (exc_info.value.name, exc_info.value.value) == ("Upgrade", value)


# --- extensions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        (["", " , "], []),
        (
            ["permessage-deflate; client_max_window_bits, x-foo"],
            [("permessage-deflate", [("client_max_window_bits", None)]), ("x-foo", [])],
        ),
        (["a ;\tb = 1 ; c", "d"], [("a", [("b", "1"), ("c", None)]), ("d", [])]),
        (['a; b="10"'], [("a", [("b", "10")])]),
        (['a; b="\\1\\0"'], [("a", [("b", "10")])]),
        (['a; b="x"; c=y, e'], [("a", [("b", "x"), ("c", "y")]), ("e", [])]),
    ],
)
def test_parse_extensions(values: list[str], expected: list[tuple[str, list[tuple[str, str | None]]]]) -> None:
    assert parse_extensions(values) == expected


@pytest.mark.parametrize(
    "value",
    [
        "a b",
        "; x",
        "a; =1",
        "a; b c=1",
        "a; b=",
        'a; b="1,2"',
        'a; b="1\\"2"',
        'a; b="x" y',
        "a\\b",
    ],
)
def test_parse_extensions_refuses(value: str) -> None:
    with pytest.raises(InvalidHeader) as exc_info:
        parse_extensions(["ok", value])
    assert (exc_info.value.name, exc_info.value.value) == ("Sec-WebSocket-Extensions", value)


def test_quoted_separators_stay_inside_a_value() -> None:
    # The comma and semicolon are inside quotes, so they split nothing; the value, once
    # unquoted, isn't a token.
    with pytest.raises(InvalidHeader):
        parse_extensions(['a; b="1;2", c'])


def test_build_extensions() -> None:
    assert build_extensions([]) == ""
    extensions = [
        ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
        ("x", []),
    ]
    header = build_extensions(extensions)
    assert header == "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x"
    assert parse_extensions([header]) == extensions


# --- origins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "origins", "allowed"),
    [
        (None, None, None, True),
        (None, "example.com", ["https://other.com"], True),
        ("https://example.com", None, None, False),
        ("null", "example.com", None, False),
        ("http://example.com", "example.com", None, True),
        ("http://example.com", "example.com:80", None, True),
        ("http://example.com:80", "example.com", None, True),
        ("https://example.com", "example.com:443", None, True),
        ("https://example.com:443", "EXAMPLE.com", None, True),
        ("http://example.com", "example.com:443", None, False),
        ("https://example.com", "example.com:80", None, False),
        ("http://example.com:8080", "example.com", None, False),
        ("http://example.com.evil.com", "example.com", None, False),
        ("https://app.example.com", "example.com", ["https://app.example.com", "https://x.com"], True),
        ("https://x.com", "example.com", ["https://app.example.com", "https://x.com"], True),
        ("https://y.com", "example.com", ["https://app.example.com", "https://x.com"], False),
        ("anything", None, ["*"], True),
        ("https://a.example.com", None, ["https://*.example.com"], True),
        ("wss://a.example.com", None, ["https://*.example.com"], False),
        ("https://a.example.com.evil", None, ["https://*.example.com"], False),
        ("https://example.com", "example.com", [], False),
        # A wildcard needs a label before the domain, and scheme and host compare case-insensitively.
        ("https://.example.com", None, ["https://*.example.com"], False),
        ("https://user@evil.com/.example.com", None, ["https://*.example.com"], False),
        ("HTTPS://A.Example.com", None, ["https://*.example.com"], True),
        ("HTTP://EXAMPLE.COM", "example.com", None, True),
        ("http://", "", None, False),
    ],
)
def test_origin_allowed(origin: str | None, host: str | None, origins: list[str] | None, allowed: bool) -> None:
    assert origin_allowed(origin, host, origins) is allowed


#: Origins that aren't ``null`` or ``scheme://host[:port]``; urlsplit() raises on the first ones.
MALFORMED_ORIGINS = [
    "http://ex]ample.com",
    "http://[::1",
    "http://[zz]",
    "http://[::1]]",
    "http://example.com:99999",
    "http://example.com:port",
    "http://user@example.com",
    "http://example.com/path",
    "http://exa mple.com",
    "http://ex\xe9.com",
    "example.com",
    "://example.com",
    "",
]


@pytest.mark.parametrize("origin", MALFORMED_ORIGINS)
@pytest.mark.parametrize(
    "origins", [None, ["https://app.example.com"], ["http://*.example.com"]], ids=["own", "list", "wildcard"]
)
def test_malformed_origin_is_refused(origin: str, origins: list[str] | None) -> None:
    assert origin_allowed(origin, "example.com", origins) is False


@pytest.mark.parametrize("origin", MALFORMED_ORIGINS)
def test_any_origin_skips_parsing(origin: str) -> None:
    assert origin_allowed(origin, "example.com", ["*"]) is True


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://[::1]", "[::1]"),
        ("http://[::1]:8000", "[::1]:8000"),
        ("https://127.0.0.1", "127.0.0.1:443"),
        ("chrome-extension://abcdef", "abcdef"),
    ],
)
def test_ip_literal_and_other_schemes_are_origins(origin: str, host: str) -> None:
    assert origin_allowed(origin, host, None) is True


def test_null_origin_allowed_only_when_listed() -> None:
    assert origin_allowed("null", "example.com", ["null"]) is True
    assert origin_allowed("null", "example.com", ["https://example.com"]) is False
