from __future__ import annotations

import pytest

from wavecast.protocol import Headers


def test_empty() -> None:
    headers = Headers()
    assert len(headers) == 0
    assert list(headers) == []
    assert headers.items() == []
    assert headers.serialize() == b""
    assert repr(headers) == "Headers([])"


@pytest.mark.parametrize(
    "items",
    [
        {"Host": "a", "X-Y": "b"},
        [("Host", "a"), ("X-Y", "b")],
        Headers([("Host", "a"), ("X-Y", "b")]),
        (pair for pair in [("Host", "a"), ("X-Y", "b")]),
    ],
)
def test_construct(items: object) -> None:
    headers = Headers(items)  # type: ignore[arg-type]
    assert headers.items() == [("Host", "a"), ("X-Y", "b")]


def test_names_are_case_insensitive_and_keep_their_case() -> None:
    headers = Headers([("Content-Type", "text/plain")])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "text/plain"
    assert "content-TYPE" in headers
    assert list(headers) == ["Content-Type"]
    assert headers.serialize() == b"Content-Type: text/plain\r\n"


def test_repeated_headers() -> None:
    headers = Headers()
    headers.add("Set-Cookie", "a=1")
    headers.add("X", "x")
    headers.add("set-cookie", "b=2")
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert len(headers) == 3
    assert list(headers) == ["Set-Cookie", "X", "set-cookie"]
    with pytest.raises(ValueError, match=r"^Set-Cookie appears 2 times$"):
        headers["Set-Cookie"]
    with pytest.raises(ValueError, match=r"^set-cookie appears 2 times$"):
        headers.get("set-cookie")
    assert headers.serialize() == b"Set-Cookie: a=1\r\nX: x\r\nset-cookie: b=2\r\n"


def test_missing_headers() -> None:
    headers = Headers([("A", "1")])
    with pytest.raises(KeyError):
        headers["B"]
    assert headers.get("B") is None
    assert headers.get("B", "default") == "default"
    assert headers.get("a") == "1"
    assert headers.get_all("B") == []
    assert 42 not in headers


def test_get_all_returns_a_copy() -> None:
    headers = Headers([("A", "1")])
    headers.get_all("A").append("2")
    assert headers.get_all("A") == ["1"]


def test_setitem_replaces_every_value() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    headers["A"] = "4"
    assert headers.items() == [("B", "2"), ("A", "4")]
    headers["C"] = "5"
    assert headers.items() == [("B", "2"), ("A", "4"), ("C", "5")]


def test_delitem() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    del headers["a"]
    assert headers.items() == [("B", "2")]
    assert "A" not in headers
    with pytest.raises(KeyError):
        del headers["A"]


@pytest.mark.parametrize(("name", "value"), [("X", "a\r\nInjected: 1"), ("X\n", "a"), ("X", "a\0"), ("X\r", "a")])
def test_refuses_header_injection(name: str, value: str) -> None:
    headers = Headers()
    with pytest.raises(ValueError, match="invalid character in header"):
        headers.add(name, value)
    with pytest.raises(ValueError):
        headers[name] = value
    assert len(headers) == 0


def test_copy_and_equality() -> None:
    headers = Headers([("A", "1")])
    copy = headers.copy()
    assert copy == headers and copy is not headers
    copy.add("B", "2")
    assert copy != headers
    assert Headers([("a", "1")]) != Headers([("A", "1")])
    assert headers != [("A", "1")]
    assert headers.__eq__([("A", "1")]) is NotImplemented


def test_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


def test_repr() -> None:
    assert repr(Headers([("A", "1")])) == "Headers([('A', '1')])"
