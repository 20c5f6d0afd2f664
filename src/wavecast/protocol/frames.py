"""WebSocket frames (RFC 6455 section 5): opcodes, masking, headers and close payloads."""

from __future__ import annotations

import enum
import struct
from typing import TYPE_CHECKING

from ..codes import CloseCode, is_valid_close_code
from ..exceptions import InvalidPayload, RemoteProtocolError
from ..speedups import load

__all__ = [
    "Opcode",
    "apply_mask",
    "frame_header",
    "parse_close",
    "serialize_close",
    "serialize_frame",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


OP_CONT, OP_TEXT, OP_BINARY = Opcode.CONT, Opcode.TEXT, Opcode.BINARY
OP_CLOSE, OP_PING, OP_PONG = Opcode.CLOSE, Opcode.PING, Opcode.PONG

#: Control frames carry at most 125 bytes (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125

_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack


def _apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (RFC 6455 section 5.3)."""
    n = len(data)
    if n == 0:
        return b""
    # One big-integer XOR runs in C and beats a per-byte loop by two orders of magnitude.
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


#: The C twins of this module's and the parser's hot paths, or ``None``.
native = load("wavecast.protocol._speedups")

apply_mask = native.apply_mask if native is not None else _apply_mask_python


class _PayloadPython:
    """A large frame's payload, assembled as its bytes arrive (the twin of the C ``Payload``).

    ``write(data, start, stop, mask)`` copies ``data[start:stop]``, XORed with ``mask`` unless
    it is ``None``, after what was written; ``take()`` returns the complete payload, once.
    The C type writes into the bytes object that ``take()`` returns; Python can't, so this one
    keeps the pieces and joins them, which costs no more than a buffer would.
    """

    __slots__ = ("_length", "_parts", "_size")

    def __init__(self, length: int) -> None:
        if length < 0:
            raise ValueError("length must not be negative")
        self._length = length
        self._parts: list[bytes] | None = []
        self._size = 0

    def write(self, data: bytes, start: int, stop: int, mask: bytes | None) -> None:
        parts = self._parts
        if parts is None:
            raise ValueError("the payload was taken")
        if mask is not None and len(mask) != 4:
            raise ValueError("mask must contain 4 bytes")
        if start < 0 or stop < start or stop > len(data):
            raise ValueError("start and stop must be within data")
        if stop - start > self._length - self._size:
            raise ValueError("more bytes than the payload has room for")
        chunk = data[start:stop]
        parts.append(chunk if mask is None else apply_mask(chunk, mask))
        self._size += stop - start

    def take(self) -> bytes:
        parts = self._parts
        if parts is None:
            raise ValueError("the payload was taken")
        if self._size != self._length:
            raise ValueError("the payload isn't complete")
        self._parts = None
        return b"".join(parts)


if TYPE_CHECKING:
    Payload = _PayloadPython
else:
    Payload = native.Payload if native is not None else _PayloadPython


def frame_header(opcode: int, length: int, *, fin: bool = True, rsv1: bool = False, mask: bytes | None = None) -> bytes:
    """Return the header of a frame whose payload is ``length`` bytes long.

    Lengths use the shortest encoding (7, 16 or 64 bits), as section 5.2 requires.
    """
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        header = bytes((b0, mask_bit | length))
    elif length < 65536:
        header = _pack_16(b0, mask_bit | 126, length)
    else:
        header = _pack_64(b0, mask_bit | 127, length)
    return header + mask if mask is not None else header


def serialize_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """Return a whole frame; a client passes a fresh 4-byte ``mask`` for every frame."""
    header = frame_header(opcode, len(payload), fin=fin, rsv1=rsv1, mask=mask)
    if mask is not None:
        payload = apply_mask(payload, mask)
    return header + payload


def serialize_close(code: int, reason: str = "") -> bytes:
    """Return the payload of a close frame (RFC 6455 section 5.5.1).

    ``code`` 1005 means "no status" and gives an empty payload.
    """
    if code == CloseCode.NO_STATUS_RCVD:
        if reason:
            raise ValueError("a close frame without a status can't have a reason")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code: {code}")
    data = code.to_bytes(2, "big") + reason.encode()
    if len(data) > MAX_CONTROL_PAYLOAD:
        raise ValueError(f"close reason is {len(data) - 2} bytes, expected no more than 123 bytes")
    return data


def parse_close(payload: bytes) -> tuple[int, str]:
    """Return the code and reason of a close frame payload.

    Raises:
        RemoteProtocolError: the payload is one byte long, or the code is not valid on the wire.
        InvalidPayload: the reason is not valid UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        raise RemoteProtocolError("close frame too short: 1 byte")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise RemoteProtocolError(f"invalid close code: {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise InvalidPayload("invalid UTF-8 in close reason") from exc
    return code, reason
