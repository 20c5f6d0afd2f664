from __future__ import annotations

import pytest

from wavecast.codes import CloseCode
from wavecast.exceptions import InvalidPayload, RemoteProtocolError
from wavecast.protocol import Opcode, apply_mask, frame_header, parse_close, serialize_close, serialize_frame

from .helpers import MASK, mask_bytes


def test_opcodes() -> None:
    assert [int(op) for op in Opcode] == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA]


# --- masking ---------------------------------------------------------------------------------


def test_apply_mask_rfc_example() -> None:
    # RFC 6455 section 5.7: a masked "Hello".
    assert apply_mask(b"Hello", MASK) == bytes.fromhex("7f9f4d5158")


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 1000])
def test_apply_mask_matches_the_definition(size: int) -> None:
    data = bytes(range(256)) * 4
    data = data[:size]
    masked = apply_mask(data, MASK)
    assert masked == mask_bytes(data, MASK)
    assert apply_mask(masked, MASK) == data


def test_apply_mask_accepts_buffers() -> None:
    assert (
        apply_mask(bytearray(b"Hello"), MASK) == apply_mask(memoryview(b"Hello"), MASK) == bytes.fromhex("7f9f4d5158")
    )


def test_apply_mask_keeps_leading_and_trailing_zeros() -> None:
    assert apply_mask(b"\x00" * 6, b"\x00\x00\x00\x00") == b"\x00" * 6
    assert apply_mask(MASK + MASK, MASK) == b"\x00" * 8


# --- headers and frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opcode", "payload", "kwargs", "expected"),
    [
        # RFC 6455 section 5.7.
        (Opcode.TEXT, b"Hello", {}, "810548656c6c6f"),
        (Opcode.TEXT, b"Hello", {"mask": MASK}, "818537fa213d7f9f4d5158"),
        (Opcode.TEXT, b"Hel", {"fin": False}, "010348656c"),
        (Opcode.CONT, b"lo", {}, "80026c6f"),
        (Opcode.PING, b"Hello", {}, "890548656c6c6f"),
        (Opcode.PONG, b"Hello", {"mask": MASK}, "8a8537fa213d7f9f4d5158"),
        (Opcode.BINARY, b"x", {"rsv1": True}, "c20178"),
        (Opcode.CLOSE, b"", {}, "8800"),
    ],
)
def test_serialize_frame(opcode: int, payload: bytes, kwargs: dict[str, object], expected: str) -> None:
    assert serialize_frame(opcode, payload, **kwargs).hex() == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, "8200"),
        (125, "827d"),
        (126, "827e007e"),
        (256, "827e0100"),
        (65535, "827effff"),
        (65536, "827f0000000000010000"),
        (2**63 - 1, "827f7fffffffffffffff"),
    ],
)
def test_frame_header_lengths(length: int, expected: str) -> None:
    assert frame_header(Opcode.BINARY, length).hex() == expected


def test_frame_header_with_mask() -> None:
    assert frame_header(Opcode.BINARY, 70000, mask=MASK) == b"\x82\xff" + (70000).to_bytes(8, "big") + MASK
    assert frame_header(Opcode.TEXT, 1, fin=False, rsv1=True, mask=MASK) == b"\x41\x81" + MASK


# --- close payloads --------------------------------------------------------------------------


def test_serialize_close() -> None:
    assert serialize_close(1000) == b"\x03\xe8"
    assert serialize_close(4999, "bye") == b"\x13\x87bye"
    assert serialize_close(CloseCode.NO_STATUS_RCVD) == b""
    assert serialize_close(1000, "é" * 61 + "x") == b"\x03\xe8" + ("é" * 61 + "x").encode()


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (CloseCode.NO_STATUS_RCVD, "why", "a close frame without a status can't have a reason"),
        (1006, "", "invalid close code: 1006"),
        (999, "", "invalid close code: 999"),
        (1000, "x" * 124, "close reason is 124 bytes, expected no more than 123 bytes"),
    ],
)
def test_serialize_close_refuses(code: int, reason: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        serialize_close(code, reason)


def test_parse_close() -> None:
    assert parse_close(b"") == (CloseCode.NO_STATUS_RCVD, "")
    assert parse_close(b"\x03\xe8") == (1000, "")
    assert parse_close(b"\x0f\xa0caf\xc3\xa9") == (4000, "café")
    for code in (1000, 1011, 3000, 4999):
        assert parse_close(serialize_close(code, "reason")) == (code, "reason")


def test_parse_close_refuses() -> None:
    with pytest.raises(RemoteProtocolError, match="close frame too short: 1 byte") as exc_info:
        parse_close(b"\x03")
    assert exc_info.value.close_code == CloseCode.PROTOCOL_ERROR
    with pytest.raises(RemoteProtocolError, match="invalid close code: 1005"):
        parse_close(b"\x03\xed")
    with pytest.raises(InvalidPayload, match="invalid UTF-8 in close reason") as payload_info:
        parse_close(b"\x03\xe8\xff")
    assert payload_info.value.close_code == CloseCode.INVALID_DATA
    assert isinstance(payload_info.value.__cause__, UnicodeDecodeError)
