from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from wavecast.exceptions import InvalidHandshake, LocalProtocolError
from wavecast.protocol import Headers, Limits, Request, RequestParser, Response, ResponseParser
from wavecast.protocol.limits import DEFAULT_LIMITS

from .helpers import request_bytes, response_bytes

LIMITS = Limits(max_header_count=10, max_header_line=100, max_body_size=50)
NO_LIMITS = Limits(max_header_count=None, max_header_line=None, max_body_size=None)


def feed(parser: Any, data: bytes, chunk: int | None) -> Any:
    """Feed ``data`` to ``parser`` whole, or ``chunk`` bytes at a time; only the last piece may
    complete it, and must."""
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces[:-1]:
        assert parser.feed(piece) is None
    result = parser.feed(pieces[-1])
    assert result is not None
    return result


def parse_request(data: bytes, limits: Limits = LIMITS, *, chunk: int | None = None) -> tuple[Request, bytes]:
    result: tuple[Request, bytes] = feed(RequestParser(limits), data, chunk)
    return result


def request_error(data: bytes, limits: Limits = LIMITS, *, chunk: int | None = None) -> InvalidHandshake:
    parser = RequestParser(limits)
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    with pytest.raises(InvalidHandshake) as exc_info:
        for piece in pieces:
            assert parser.feed(piece) is None
    return exc_info.value


# --- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_parse_upgrade_request(chunk: int | None) -> None:
    data = request_bytes(target="/chat?room=1&x=", add=[("X-Empty", "")])
    request, tail = parse_request(data, chunk=chunk)
    assert request.method == "GET"
    assert request.path == "/chat"
    assert request.query == "room=1&x="
    assert request.http_version == "1.1"
    assert request.headers["Sec-WebSocket-Version"] == "13"
    assert request.headers["X-Empty"] == ""
    assert request.body == b""
    assert request.keep_alive
    assert tail == b""


@pytest.mark.parametrize("kind", ["request", "request-llhttp", "response"])
def test_a_done_parser_leaves_no_cycle_for_the_gc(kind: str) -> None:
    # Freed by its last reference, not by the cyclic GC: one connection's worth of garbage less.
    parser = ResponseParser(Limits()) if kind == "response" else RequestParser(Limits())
    # A tab in a value makes the request not simple: llhttp parses it.
    data = {
        "request": request_bytes(),
        "request-llhttp": request_bytes(add=[("X-Tab", "a\tb")]),
        "response": response_bytes("key"),
    }[kind]
    gc.disable()
    try:
        assert parser.feed(data) is not None
        ref = weakref.ref(parser)
        del parser
        assert ref() is None
    finally:
        gc.enable()


def test_bytes_after_an_upgrade_request_are_the_tail() -> None:
    request, tail = parse_request(request_bytes() + b"\x81\x80frames")
    assert request.path == "/chat"
    assert tail == b"\x81\x80frames"


def test_header_names_and_values_are_latin1() -> None:
    request, _ = parse_request(request_bytes(add=[("X-Name", "caf\xe9")]).replace(b"caf\xc3\xa9", b"caf\xe9"))
    assert request.headers["x-name"] == "café"


@pytest.mark.parametrize("chunk", [None, 1])
def test_parse_request_with_a_body(chunk: int | None) -> None:
    data = request_bytes([("Host", "x"), ("Content-Length", "5")], method="POST", target="/api", body=b"hello")
    request, tail = parse_request(data, chunk=chunk)
    assert (request.method, request.path, request.body, tail) == ("POST", "/api", b"hello", b"")


def test_parse_request_with_a_chunked_body() -> None:
    body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    data = request_bytes([("Host", "x"), ("Transfer-Encoding", "chunked")], method="POST", body=body)
    request, _ = parse_request(data)
    assert request.body == b"abcde"


def test_http_1_0_is_not_kept_alive() -> None:
    request, _ = parse_request(request_bytes(version="1.0"))
    assert request.http_version == "1.0"
    assert not request.keep_alive


def test_http_1_0_keep_alive() -> None:
    request, _ = parse_request(request_bytes([("Host", "x"), ("Connection", "keep-alive")], version="1.0"))
    assert request.keep_alive


def test_connection_close_is_not_kept_alive() -> None:
    request, _ = parse_request(request_bytes([("Host", "x"), ("Connection", "close")]))
    assert not request.keep_alive
    body = [("Host", "x"), ("Connection", "close"), ("Content-Length", "2")]
    request, _ = parse_request(request_bytes(body, method="POST", body=b"ab"))
    assert not request.keep_alive


def test_malformed_request() -> None:
    error = request_error(b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert error.status == 400
    assert str(error).startswith("invalid HTTP request: ")
    assert isinstance(error.__cause__, Exception)


def test_pipelined_requests_in_one_packet_stay_apart() -> None:
    first = request_bytes([("Host", "a")], target="/first")
    second = request_bytes([("Host", "b")], target="/second")
    request, tail = parse_request(first + second)
    assert request.path == "/first"
    assert request.headers.get_all("Host") == ["a"]
    assert request.keep_alive
    assert tail == second
    request, tail = parse_request(tail)
    assert (request.path, tail) == ("/second", b"")


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
def test_head_end_split_across_packets(split: int) -> None:
    first = request_bytes([("Host", "a")], target="/first")
    second = request_bytes([("Host", "b")], target="/second")
    data = first + second
    parser = RequestParser(LIMITS)
    assert parser.feed(data[: len(first) - split]) is None
    result = parser.feed(data[len(first) - split :])
    assert result is not None
    request, tail = result
    assert (request.path, tail) == ("/first", second)


def test_request_pipelined_after_a_body_is_dropped() -> None:
    first = request_bytes([("Host", "a"), ("Content-Length", "3")], method="POST", target="/first", body=b"abc")
    second = request_bytes([("Host", "b")], target="/second")
    request, tail = parse_request(first + second)
    # Where the second request starts is unknown after a body: it's dropped, and the
    # connection must close after the answer.
    assert (request.path, request.body, request.headers.get_all("Host")) == ("/first", b"abc", ["a"])
    assert not request.keep_alive
    assert tail == b""


def test_request_pipelined_after_a_body_in_a_later_packet() -> None:
    first = request_bytes([("Host", "a"), ("Content-Length", "3")], method="POST", target="/first", body=b"abc")
    parser = RequestParser(LIMITS)
    assert parser.feed(first[:-2]) is None
    result = parser.feed(first[-2:] + request_bytes([("Host", "b")], target="/second"))
    assert result is not None
    request, _ = result
    assert (request.path, request.body, request.keep_alive) == ("/first", b"abc", False)


# --- request limits --------------------------------------------------------------------------


def test_header_count_limit() -> None:
    headers = [(f"X-{i}", "v") for i in range(10)]
    request, _ = parse_request(request_bytes(headers))
    assert len(request.headers) == 10
    error = request_error(request_bytes([*headers, ("X-10", "v")]))
    assert (error.status, str(error)) == (431, "more than 10 headers")


def test_header_count_limit_wins_over_a_later_parse_error() -> None:
    # httptools reports a header when the next one starts, so the 11th needs a 12th.
    headers = [(f"X-{i}", "v") for i in range(12)]
    error = request_error(request_bytes(headers)[:-2] + b"\x00\r\n\r\n")
    assert error.status == 431


def test_header_line_limit() -> None:
    # "X: " + value is 3 + len(value) bytes.
    request, _ = parse_request(request_bytes([("X", "v" * 97)]))
    assert request.headers["X"] == "v" * 97
    error = request_error(request_bytes([("X", "v" * 98)]))
    assert (error.status, str(error)) == (431, "header line of 101 bytes, expected no more than 100 bytes")


def test_unfinished_header_line_fails_before_its_end() -> None:
    parser = RequestParser(LIMITS)
    assert parser.feed(b"GET / HTTP/1.1\r\nX: " + b"v" * 50) is None
    assert parser.feed(b"v" * 47) is None
    with pytest.raises(InvalidHandshake) as exc_info:
        parser.feed(b"v")
    assert exc_info.value.status == 431
    assert str(exc_info.value) == "header line of 101 bytes or more, expected no more than 100 bytes"


def test_request_target_limit() -> None:
    request, _ = parse_request(request_bytes(target="/" + "a" * 99))
    assert len(request.path) == 100
    error = request_error(request_bytes(target="/" + "a" * 100))
    assert (error.status, str(error)) == (414, "request target of 101 bytes or more, expected no more than 100 bytes")


def test_request_target_limit_in_pieces() -> None:
    error = request_error(b"GET /" + b"a" * 200, chunk=10)
    assert error.status == 414


def test_body_limit() -> None:
    request, _ = parse_request(request_bytes([("Content-Length", "50")], method="POST", body=b"b" * 50))
    assert request.body == b"b" * 50
    data = request_bytes([("Content-Length", "51")], method="POST", body=b"b" * 51)
    error = request_error(data)
    assert (error.status, str(error)) == (413, "request body of 51 bytes or more, expected no more than 50 bytes")
    assert request_error(data, chunk=10).status == 413


def test_body_limit_then_garbage() -> None:
    data = request_bytes([("Transfer-Encoding", "chunked")], method="POST", body=b"40\r\n" + b"b" * 64 + b"\r\nzz")
    assert request_error(data).status == 413


def test_none_disables_request_limits() -> None:
    headers = [(f"X-{i}", "v" * 10000) for i in range(200)]
    data = request_bytes([*headers, ("Content-Length", "100000")], method="POST", target="/" + "a" * 10000)
    request, _ = parse_request(data + b"b" * 100000, NO_LIMITS, chunk=4096)
    assert (len(request.headers), len(request.path), len(request.body)) == (201, 10001, 100000)


def test_body_after_the_head_is_not_a_header_line() -> None:
    data = request_bytes([("Content-Length", "5000")], method="POST", body=b"b" * 5000)
    request, _ = parse_request(data, Limits(max_header_line=100))
    assert len(request.body) == 5000


def test_frames_after_the_head_are_not_a_header_line() -> None:
    _, tail = parse_request(request_bytes() + b"f" * 5000, Limits(max_header_line=100))
    assert len(tail) == 5000


# --- responses -------------------------------------------------------------------------------


def parse_response(data: bytes, limits: Limits = LIMITS, *, chunk: int | None = None) -> tuple[Response, bytes]:
    result: tuple[Response, bytes] = feed(ResponseParser(limits), data, chunk)
    return result


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_parse_switching_protocols(chunk: int | None) -> None:
    response, tail = parse_response(response_bytes("key"), chunk=chunk)
    assert response.status_code == 101
    assert response.reason_phrase == "Switching Protocols"
    assert response.headers["Upgrade"] == "websocket"
    assert response.body == b""
    assert tail == b""


def test_frames_after_switching_protocols_are_the_tail() -> None:
    frame = b"\x82\x7e\x27\x10" + b"z" * 10000
    response, tail = parse_response(response_bytes("key") + frame)
    assert response.status_code == 101
    assert tail == frame


def test_switching_protocols_without_upgrade_header() -> None:
    # llhttp pauses after any 101; the client's own checks reject the missing header.
    response, tail = parse_response(response_bytes("key", drop=["Upgrade"]) + b"frames")
    assert response.status_code == 101
    assert "Upgrade" not in response.headers
    assert tail == b""


def test_parse_rejection_with_a_body() -> None:
    data = response_bytes("key", status="403 Forbidden", add=[("Content-Length", "6")], body=b"denied")
    response, _ = parse_response(data)
    assert (response.status_code, response.reason_phrase, response.body) == (403, "Forbidden", b"denied")


def test_rejection_body_is_truncated_to_64_kib() -> None:
    chunks = b"".join(b"8000\r\n" + bytes([65 + i]) * 0x8000 + b"\r\n" for i in range(3)) + b"0\r\n\r\n"
    data = response_bytes("key", status="500 Internal Server Error", add=[("Transfer-Encoding", "chunked")])
    response, _ = parse_response(data + chunks, NO_LIMITS)
    assert response.body == b"A" * 0x8000 + b"B" * 0x8000


def test_rejection_with_a_malformed_body_keeps_what_arrived() -> None:
    data = response_bytes("key", status="500 Oops", add=[("Transfer-Encoding", "chunked")]) + b"3\r\nabc\r\nzz\r\n"
    response, _ = parse_response(data)
    assert (response.status_code, response.body) == (500, b"abc")


def test_malformed_response() -> None:
    parser = ResponseParser(LIMITS)
    with pytest.raises(InvalidHandshake, match=r"^invalid HTTP response: "):
        parser.feed(b"HTTP/1.1 abc\r\n\r\n")


def test_response_header_limits() -> None:
    parser = ResponseParser(LIMITS)
    with pytest.raises(InvalidHandshake, match="more than 10 headers"):
        parser.feed(response_bytes("key", add=[(f"X-{i}", "v") for i in range(8)]))
    parser = ResponseParser(LIMITS)
    with pytest.raises(InvalidHandshake, match="more than 10 headers"):
        parser.feed(response_bytes("key", add=[(f"X-{i}", "v") for i in range(9)])[:-2] + b"\x00\r\n\r\n")
    parser = ResponseParser(LIMITS)
    assert parser.feed(b"HTTP/1.1 101 Switching Protocols\r\nX: " + b"v" * 97) is None
    with pytest.raises(InvalidHandshake, match="header line of 101 bytes or more"):
        parser.feed(b"v")


def test_response_status_line_limit() -> None:
    parser = ResponseParser(LIMITS)
    with pytest.raises(InvalidHandshake, match="header line of 108 bytes or more"):
        parser.feed(b"HTTP/1.1 200 " + b"r" * 95)


def test_none_disables_response_limits() -> None:
    headers = [(f"X-{i}", "v" * 10000) for i in range(200)]
    response, _ = parse_response(response_bytes("key", add=headers), NO_LIMITS, chunk=1000)
    assert len(response.headers) == 203


def test_empty_headers() -> None:
    request, _ = parse_request(b"GET / HTTP/1.1\r\n\r\n")
    assert request.headers == Headers()


# --- the fast path for simple request heads ---------------------------------------------------


def parse_both(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, Any]:
    """Parse ``data`` with the fast path allowed, and with llhttp alone; each gives a result,
    ``None``, or the InvalidHandshake raised."""

    def run(pieces: list[bytes]) -> Any:
        parser = RequestParser(limits)
        try:
            result = None
            for piece in pieces:
                result = parser.feed(piece)
            return result
        except InvalidHandshake as exc:
            return (type(exc), str(exc), exc.status)

    # The first byte alone is never a whole head: llhttp parses this request.
    return run([data]), run([data[:1], data[1:]])


def test_a_simple_upgrade_request_skips_llhttp() -> None:
    parser = RequestParser(Limits())
    data = request_bytes(target="/chat?room=1") + b"\x81\x80frames"
    result = parser.feed(data)
    assert parser._parser is None
    fast, slow = parse_both(data)
    assert result == fast == slow
    request, tail = result
    assert request.path == "/chat"
    assert request.query == "room=1"
    assert tail == b"\x81\x80frames"


def test_a_done_fast_parser_refuses_more() -> None:
    parser = RequestParser(Limits())
    assert parser.feed(request_bytes()) is not None
    with pytest.raises(LocalProtocolError, match="can't feed a request parser that is done"):
        parser.feed(b"GET")


@pytest.mark.parametrize(
    "data",
    [
        request_bytes(),
        request_bytes(headers=[]),
        request_bytes(add=[("X-Empty", ""), ("X-Colon", "a:b: c"), ("Cookie", "a=1; b=2")]),
        request_bytes(add=[("X-Trailing", "v  ")]),
        request_bytes(add=[("X-Tab", "a\tb")]),
        request_bytes(add=[("X-Latin1", "caf\xe9")]),
        request_bytes(add=[("Connection", "close")]),
        request_bytes(add=[("Content-Length", "3")], body=b"abc"),
        request_bytes(add=[("Transfer-Encoding", "chunked")], body=b"0\r\n\r\n"),
        request_bytes(add=[("Proxy-Connection", "close")]),
        request_bytes(add=[("Bad Name", "v")]),
        request_bytes(add=[("", "v")]),
        request_bytes(add=[("X@", "v")]),
        request_bytes(method="POST"),
        request_bytes(method="get"),
        request_bytes(version="1.0"),
        request_bytes(version="2.0"),
        request_bytes(target="*"),
        request_bytes(target="http://example.com/chat"),
        request_bytes(target="/a b"),
        request_bytes(target='/a"<>'),
        request_bytes(target="/%zz?#frag"),
        b"GET /chat HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: x\nUpgrade: websocket\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
        b"GET  /chat HTTP/1.1\r\n\r\n",
        b"GET /chat  HTTP/1.1\r\n\r\n",
        b"GET /chat HTTP/1.1 \r\n\r\n",
        b"GET /chat HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    ],
)
def test_the_fast_path_agrees_with_llhttp(data: bytes) -> None:
    fast, slow = parse_both(data)
    assert fast == slow


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (Limits(max_header_count=6), request_bytes(add=[("X-1", "1"), ("X-2", "2")])),
        (Limits(max_header_line=100), request_bytes(add=[("X-Long", "v" * 120)])),
        (Limits(max_header_line=100), request_bytes(target="/" + "t" * 120)),
        (Limits(max_header_line=200), request_bytes()),
    ],
)
def test_the_fast_path_leaves_limits_to_llhttp(limits: Limits, data: bytes) -> None:
    fast, slow = parse_both(data, limits)
    assert fast == slow


_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Printable ASCII, and the characters the fast path must refuse: each may end up in any part.
_PRINTABLE = "".join(map(chr, range(0x20, 0x7F)))
_ANY = _PRINTABLE + "\t\r\n\x00\x7f\xe9"


def _text(alphabet: str, **kwargs: int) -> st.SearchStrategy[str]:
    """Text of ``alphabet`` half the time, else of any character: simple heads, and near misses."""
    return st.one_of(st.text(alphabet, **kwargs), st.text(_ANY, **kwargs))


@given(
    target=_text(_TCHAR + "/?=:@", max_size=12).map(lambda t: "/" + t),
    fields=st.lists(st.tuples(_text(_TCHAR, min_size=1, max_size=8), _text(_PRINTABLE, max_size=12)), max_size=6),
    separator=st.sampled_from([":", ": ", ":  ", ":\t"]),
    tail=st.binary(max_size=8),
)
@settings(max_examples=500, deadline=None)
def test_the_fast_path_agrees_with_llhttp_on_generated_heads(
    target: str, fields: list[tuple[str, str]], separator: str, tail: bytes
) -> None:
    head = f"GET {target} HTTP/1.1\r\n" + "".join(f"{n}{separator}{v}\r\n" for n, v in fields) + "\r\n"
    fast, slow = parse_both(head.encode("latin-1") + tail)
    assert fast == slow
