"""The C twins of the core's hot paths give what their Python twins give, byte for byte.

Skipped when the extension isn't built (or WAVECAST_NO_SPEEDUPS is set): the rest of the
suite then checks the Python twins alone. Under ``CI=true`` the first run of the suite has
the extension, and ``tests/test_speedups.py`` fails if it's missing.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from wavecast.protocol.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    _apply_mask_python,
    _PayloadPython,
    frame_header,
)
from wavecast.protocol.http import _simple_head_python
from wavecast.speedups import load

from .helpers import MASK, frame

native = load("wavecast.protocol._speedups")
pytestmark = pytest.mark.skipif(native is None, reason="the C extension isn't built or is turned off")

NO_LIMIT = -1


def parse(data: bytes, *, masked: bool = True, pos: int = 0, max_frame: int = NO_LIMIT, max_message: int = NO_LIMIT):
    assert native is not None
    events: list[str | bytes] = []
    end = native.parse_frames(data, pos, masked, max_frame, max_message, events)
    return events, end


@given(data=st.binary(max_size=3000), mask=st.binary(min_size=4, max_size=4))
def test_apply_mask_agrees_with_python(data: bytes, mask: bytes) -> None:
    assert native is not None
    assert native.apply_mask(data, mask) == _apply_mask_python(data, mask)


def test_apply_mask_refuses_a_mask_of_another_length() -> None:
    assert native is not None
    with pytest.raises(ValueError, match="4 bytes"):
        native.apply_mask(b"data", b"abc")


@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    mask=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
)
def test_payload_agrees_with_python(data: bytes, cuts: list[int], mask: bytes | None) -> None:
    assert native is not None
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    payloads = native.Payload(len(data)), _PayloadPython(len(data))
    for start, stop in itertools.pairwise(bounds):
        for payload in payloads:
            payload.write(data, start, stop, mask)
    native_bytes, python_bytes = (payload.take() for payload in payloads)
    assert type(native_bytes) is bytes
    assert native_bytes == python_bytes


@pytest.mark.parametrize("payload_type", ["native", "python"])
def test_payload_refuses_what_its_twin_refuses(payload_type: str) -> None:
    assert native is not None
    make = native.Payload if payload_type == "native" else _PayloadPython
    payload = make(4)
    with pytest.raises(ValueError, match="within data"):
        payload.write(b"abc", 2, 4, None)
    with pytest.raises(ValueError, match="room"):
        payload.write(b"abcde", 0, 5, None)
    with pytest.raises(ValueError, match="4 bytes"):
        payload.write(b"ab", 0, 2, b"abc")
    payload.write(b"ab", 0, 2, None)
    with pytest.raises(ValueError, match="complete"):
        payload.take()
    payload.write(b"cd", 0, 2, None)
    assert payload.take() == b"abcd"
    with pytest.raises(ValueError, match="taken"):
        payload.take()
    with pytest.raises(ValueError, match="taken"):
        payload.write(b"", 0, 0, None)
    with pytest.raises(ValueError, match="negative"):
        make(-1)


@settings(max_examples=300)
@given(
    opcode=st.sampled_from([OP_TEXT, OP_BINARY, OP_CONT, OP_PING, OP_CLOSE]),
    payload=st.binary(max_size=70000).filter(lambda p: len(p) < 300 or len(p) > 65000),
    fin=st.booleans(),
    rsv1=st.booleans(),
    mask=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
)
def test_build_frame_agrees_with_python(opcode: int, payload: bytes, fin: bool, rsv1: bool, mask: bytes | None) -> None:
    assert native is not None
    header = frame_header(opcode, len(payload), fin=fin, rsv1=rsv1, mask=mask)
    expected = header + (_apply_mask_python(payload, mask) if mask is not None else payload)
    assert native.build_frame(opcode, payload, fin, rsv1, mask) == expected


def test_parse_frames_takes_a_run_of_whole_messages() -> None:
    data = (
        frame(OP_TEXT, "héllo".encode(), mask=MASK)
        + frame(OP_BINARY, b"\x00\xff", mask=MASK)
        + frame(OP_TEXT, b"x" * 300, mask=MASK)  # a 16-bit length
        + frame(OP_BINARY, b"y" * 70000, mask=MASK)  # a 64-bit length
    )
    events, end = parse(data)
    assert events == ["héllo", b"\x00\xff", "x" * 300, b"y" * 70000]
    assert end == len(data)


def test_parse_frames_reads_unmasked_frames_on_the_client_side() -> None:
    data = frame(OP_TEXT, b"from the server") + frame(OP_BINARY, b"")
    assert parse(data, masked=False) == (["from the server", b""], len(data))


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(frame(OP_PING, b"ping", mask=MASK), id="control frame"),
        pytest.param(frame(OP_TEXT, b"first", fin=False, mask=MASK), id="fragment"),
        pytest.param(frame(OP_TEXT, b"compressed", rsv1=True, mask=MASK), id="rsv1"),
        pytest.param(frame(OP_TEXT, b"\xff invalid", mask=MASK), id="invalid utf-8"),
        pytest.param(frame(OP_TEXT, b"\xed\xa0\x80", mask=MASK), id="surrogate"),
        pytest.param(frame(OP_TEXT, b"unmasked"), id="unmasked from a client"),
        pytest.param(bytes([0x81, 0xFE, 0x00, 0x05]) + MASK + b"short", id="16-bit length not minimal"),
        pytest.param(bytes([0x82, 0xFF]) + (5).to_bytes(8, "big") + MASK + b"short", id="64-bit length not minimal"),
        pytest.param(bytes([0x82, 0xFF]) + (1 << 63).to_bytes(8, "big") + MASK, id="64-bit length msb"),
        pytest.param(bytes([0x83, 0x80]) + MASK, id="reserved opcode"),
    ],
)
def test_parse_frames_stops_where_python_must_take_over(stop: bytes) -> None:
    before = frame(OP_TEXT, b"before", mask=MASK)
    events, end = parse(before + stop + frame(OP_TEXT, b"after", mask=MASK))
    assert events == ["before"]
    assert end == len(before)


@pytest.mark.parametrize("cut", [1, 2, 5, 8])
def test_parse_frames_stops_at_an_incomplete_frame(cut: int) -> None:
    before = frame(OP_TEXT, b"before", mask=MASK)
    incomplete = frame(OP_TEXT, b"x" * 200, mask=MASK)[:cut]
    assert parse(before + incomplete) == (["before"], len(before))


def test_parse_frames_stops_at_frames_over_the_limits() -> None:
    data = frame(OP_BINARY, b"12345", mask=MASK)
    assert parse(data, max_frame=4) == ([], 0)
    assert parse(data, max_message=4) == ([], 0)
    assert parse(data, max_frame=5, max_message=5) == ([b"12345"], len(data))


def test_parse_frames_starts_at_pos() -> None:
    data = b"junk" + frame(OP_TEXT, b"ok", mask=MASK)
    assert parse(data, pos=4) == (["ok"], len(data))


# --- simple request heads ----------------------------------------------------------------------

_HEAD_CHARS = "".join(map(chr, range(0x20, 0x7F))) + "\t\r\n\x00\x7f\xe9"
_HEAD_PIECES = [
    "GET ",
    "GET /",
    "/chat?x=1",
    " HTTP/1.1",
    " HTTP/1.0",
    "\r\n",
    "\r\n\r\n",
    "Host: x",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Connection: close",
    "Content-Length: 3",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ": ",
    ":",
    " ",
    "X-",
]


_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PRINTABLE = "".join(map(chr, range(0x20, 0x7F)))


def _text(alphabet: str, **kwargs: int) -> st.SearchStrategy[str]:
    """Mostly of ``alphabet``, sometimes of any character: simple heads and near misses."""
    simple = st.text(alphabet, **kwargs)
    return st.one_of(simple, simple, simple, simple, simple, st.text(_HEAD_CHARS, **kwargs))


def simple_heads() -> st.SearchStrategy[bytes]:
    """Heads shaped like real ones, or built from their pieces with random characters between."""
    line = st.tuples(
        _text(_TCHAR, min_size=1, max_size=10),
        st.sampled_from([":", ": ", ":  ", ":\t"]),
        _text(_PRINTABLE, max_size=12),
    ).map("".join)
    shaped = st.tuples(
        st.sampled_from(["GET "] * 6 + ["POST ", "get "]),
        _text(_TCHAR + "/?=:@%", max_size=12).map(lambda t: "/" + t),
        st.sampled_from([" HTTP/1.1"] * 6 + [" HTTP/1.0"]),
        st.lists(line, max_size=6),
        st.sampled_from(["\r\n\r\n"] * 3 + ["\r\n\r\nframes", "\r\n", "\n\n"]),
    ).map(lambda p: (p[0] + p[1] + p[2] + "".join("\r\n" + h for h in p[3]) + p[4]).encode("latin-1"))
    piece = st.one_of(st.sampled_from(_HEAD_PIECES), st.text(_HEAD_CHARS, max_size=6))
    pieces = st.lists(piece, max_size=24).map(lambda pieces: "".join(pieces).encode("latin-1"))
    return st.one_of(shaped, shaped, pieces)


@given(
    data=st.one_of(simple_heads(), st.binary(max_size=200)),
    max_count=st.sampled_from([-1, 0, 1, 3, 128]),
    max_line=st.sampled_from([-1, 0, 20, 60, 8192]),
)
@settings(max_examples=2000)
def test_simple_head_agrees_with_python(data: bytes, max_count: int, max_line: int) -> None:
    assert native is not None
    assert native.simple_head(data, max_count, max_line) == _simple_head_python(data, max_count, max_line)


@pytest.mark.parametrize(
    "data",
    [
        b"GET /chat?room=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Empty:\r\nX-Spaces:   \r\n\r\nframes",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"v" * 300 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",
        b"GET / HTTP/1.1\r\n:v\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: v \r\n\r\n",
        b"GET / HTTP/1.1\r\nX:v\r\nCONNECTION: Close\r\n\r\n",
    ],
)
def test_simple_head_agrees_with_python_on_examples(data: bytes) -> None:
    assert native is not None
    assert native.simple_head(data, 128, 8192) == _simple_head_python(data, 128, 8192)


def test_simple_head_checks_its_arguments() -> None:
    assert native is not None
    with pytest.raises(TypeError):
        native.simple_head("GET / HTTP/1.1\r\n\r\n", 1, 1)
    with pytest.raises(TypeError):
        native.simple_head(b"", 1)
    with pytest.raises(OverflowError):
        native.simple_head(b"", 2**70, 1)
