"""Assertion helpers for the sans-I/O protocol tests: bytes in, bytes out, no sockets.

Frames are built and decoded here independently of :mod:`wavecast.protocol.frames`, so a
bug there can't hide itself in the tests; the builders can also break every rule of RFC 6455.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from wavecast.codes import CloseCode
from wavecast.exceptions import NegotiationError, PayloadTooBig, RemoteProtocolError
from wavecast.protocol import (
    ClientProtocol,
    Event,
    ExtensionParameter,
    Protocol,
    ServerProtocol,
    Side,
    accept_key,
    parse_uri,
)
from wavecast.protocol.extensions import Extension

__all__ = [
    "MASK",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "RFC_ACCEPT",
    "RFC_KEY",
    "Frame",
    "Reverse",
    "ReverseClientFactory",
    "ReverseServerFactory",
    "assert_close_sent",
    "assert_failed",
    "assert_frame_sent",
    "assert_frames_sent",
    "assert_nothing_sent",
    "client_frame",
    "close_payload",
    "decode_frames",
    "feed",
    "frame",
    "open_client",
    "open_server",
    "request_bytes",
    "response_bytes",
    "sent",
    "server_frame",
]

MASK = bytes([0x37, 0xFA, 0x21, 0x3D])

# The example of RFC 6455 section 1.3.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# --- building frames -------------------------------------------------------------------------


def mask_bytes(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with ``mask``, byte by byte: slow and obviously right."""
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
    length: int | None = None,
    width: int | None = None,
) -> bytes:
    """Build a frame, valid or not.

    Args:
        mask: the masking key; ``None`` sends the frame unmasked.
        length: the length to declare, when it isn't ``len(payload)``.
        width: the size of the length field (7, 16 or 64 bits); the shortest by default.
    """
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0)
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload) if length is None else length
    if width is None:
        width = 7 if n < 126 else 16 if n < 65536 else 64
    if width == 7:
        head = bytes([b0, mask_bit | n])
    elif width == 16:
        head = bytes([b0, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, mask_bit | 127]) + n.to_bytes(8, "big")
    if mask is not None:
        return head + mask + mask_bytes(payload, mask)
    return head + payload


def client_frame(opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    """Build a frame as a client sends it: masked with :data:`MASK` unless told otherwise."""
    kwargs.setdefault("mask", MASK)
    return frame(opcode, payload, **kwargs)  # type: ignore[arg-type]


def server_frame(opcode: int, payload: bytes = b"", **kwargs: object) -> bytes:
    """Build a frame as a server sends it: unmasked."""
    return frame(opcode, payload, **kwargs)  # type: ignore[arg-type]


def close_payload(code: int, reason: str | bytes = "") -> bytes:
    raw = reason.encode() if isinstance(reason, str) else reason
    return code.to_bytes(2, "big") + raw


# --- reading what a protocol sent --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv1: bool = False


def decode_frames(data: bytes, *, masked: bool) -> list[Frame]:
    """Decode a stream of whole frames, checking their masking and minimal length encoding."""
    frames: list[Frame] = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        assert b0 & 0x30 == 0, "RSV2/RSV3 set"
        assert bool(b1 & 0x80) is masked, "client frames must be masked, server frames must not"
        length = b1 & 0x7F
        i += 2
        if length == 126:
            length = int.from_bytes(data[i : i + 2], "big")
            assert length >= 126, "length not minimally encoded"
            i += 2
        elif length == 127:
            length = int.from_bytes(data[i : i + 8], "big")
            assert length >= 65536, "length not minimally encoded"
            i += 8
        if masked:
            mask = data[i : i + 4]
            i += 4
        payload = data[i : i + length]
        assert len(payload) == length, "truncated frame"
        i += length
        if masked:
            payload = mask_bytes(payload, mask)
        frames.append(Frame(b0 & 0x0F, payload, bool(b0 & 0x80), bool(b0 & 0x40)))
    return frames


def sent(protocol: Protocol) -> tuple[list[Frame], bool]:
    """Take what ``protocol`` wants to send: the frames, and whether EOF follows them."""
    out = protocol.data_to_send()
    eof = bool(out) and out[-1] == b""
    if eof:
        out = out[:-1]
    assert b"" not in out, "EOF must come last"
    return decode_frames(b"".join(out), masked=protocol.side is Side.CLIENT), eof


def assert_frames_sent(protocol: Protocol, *frames: Frame, eof: bool = False) -> None:
    assert sent(protocol) == (list(frames), eof)


def assert_frame_sent(
    protocol: Protocol,
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    eof: bool = False,
) -> None:
    assert_frames_sent(protocol, Frame(opcode, payload, fin, rsv1), eof=eof)


def assert_nothing_sent(protocol: Protocol) -> None:
    assert protocol.data_to_send() == []


def assert_close_sent(protocol: Protocol, code: int, reason: str = "", *, eof: bool = False) -> None:
    payload = b"" if code == CloseCode.NO_STATUS_RCVD else close_payload(code, reason)
    assert_frame_sent(protocol, OP_CLOSE, payload, eof=eof)


def assert_failed(protocol: Protocol, code: int, message: str | None = None) -> None:
    """Check that ``protocol`` failed the connection with ``code``, and sent the close frame.

    A server closes TCP at once; a client waits for the server to do it.
    """
    error = protocol.protocol_error
    assert error is not None, "the connection didn't fail"
    assert error.close_code == code, f"failed with {error.close_code} ({error}), expected {code}"
    if message is not None:
        assert message in str(error), str(error)
    frames, eof = sent(protocol)
    assert len(frames) >= 1
    close = frames[-1]
    assert close.opcode == OP_CLOSE
    assert int.from_bytes(close.payload[:2], "big") == code
    assert close.payload[2:].decode() == str(error)[:123]
    assert eof is (protocol.side is Side.SERVER)
    # Anything that arrives afterwards is discarded.
    protocol.receive_data(client_frame(OP_TEXT, b"ignored"))
    assert protocol.events_received() == []
    assert_nothing_sent(protocol)


def feed(protocol: Protocol, data: bytes, *, chunk: int | None = None) -> list[Event]:
    """Feed ``data``, whole or ``chunk`` bytes at a time, and return the events received."""
    if chunk is None:
        protocol.receive_data(data)
    else:
        for start in range(0, len(data), chunk):
            protocol.receive_data(data[start : start + chunk])
    return protocol.events_received()


# --- opening handshakes ------------------------------------------------------------------------

DEFAULT_REQUEST_HEADERS = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", RFC_KEY),
    ("Sec-WebSocket-Version", "13"),
]


def request_bytes(
    headers: Sequence[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    target: str = "/chat",
    version: str = "1.1",
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """Build a request: the RFC 6455 example handshake unless told otherwise.

    Args:
        headers: replaces the default headers.
        drop: names of default headers to leave out.
        add: headers to append.
    """
    items = [(n, v) for n, v in (DEFAULT_REQUEST_HEADERS if headers is None else headers) if n not in drop]
    items += add
    head = f"{method} {target} HTTP/{version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in items) + "\r\n"
    return head.encode() + body


def response_bytes(
    key: str,
    *,
    status: str = "101 Switching Protocols",
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """Build a server's response to ``key``: a valid 101 unless told otherwise."""
    items = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    items = [(n, v) for n, v in items if n not in drop] + list(add)
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in items) + "\r\n"
    return head.encode() + body


def open_server(**kwargs: object) -> ServerProtocol:
    """Return a server that completed the RFC 6455 example handshake, with no output pending."""
    server = ServerProtocol(**kwargs)  # type: ignore[arg-type]
    server.receive_data(request_bytes())
    [request] = server.events_received()
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    server.data_to_send()
    return server


def open_client(**kwargs: object) -> ClientProtocol:
    """Return a client that completed its handshake, with no output or event pending."""
    client = ClientProtocol(parse_uri("ws://example.com/chat"), **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    client.data_to_send()
    client.receive_data(response_bytes(client.key))
    client.events_received()
    return client


# --- a fake extension: reverses each frame's payload, with RSV1 set --------------------------------


class Reverse:
    """An extension whose "compression" reverses the payload of each frame."""

    def __init__(self, params: Sequence[ExtensionParameter] = (), name: str = "x-reverse") -> None:
        self.name = name
        self.params = list(params)
        self.decoded: list[tuple[bytes, bool, int | None]] = []

    def decode(self, payload: bytes, *, fin: bool, max_size: int | None) -> bytes:
        self.decoded.append((payload, fin, max_size))
        if payload == b"bad":
            raise RemoteProtocolError("can't decode bad")
        result = payload[::-1]
        if max_size is not None and len(result) > max_size:
            raise PayloadTooBig(f"decoded {len(result)} bytes, expected no more than {max_size} bytes")
        return result

    def encode(self, payload: bytes) -> tuple[bytes, bool]:
        return payload[::-1], True


class ReverseServerFactory:
    """Accepts offers of x-reverse, unless they carry a ``decline`` parameter."""

    def __init__(self, name: str = "x-reverse") -> None:
        self.name = name
        self.offers: list[list[ExtensionParameter]] = []

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        self.offers.append(list(params))
        if ("decline", None) in params:
            raise NegotiationError("declined")
        return [("ok", None)], Reverse(params, self.name)


class ReverseClientFactory:
    """Offers x-reverse, and rejects an answer that carries a ``bad`` parameter."""

    def __init__(self, name: str = "x-reverse") -> None:
        self.name = name

    def get_request_params(self) -> list[ExtensionParameter]:
        return [("level", "1")]

    def process_response_params(self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]) -> Extension:
        if ("bad", None) in params:
            raise NegotiationError("bad parameters")
        return Reverse(params, self.name)
