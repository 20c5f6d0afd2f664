from __future__ import annotations

import pytest

from wavecast.protocol import Protocol, Side
from wavecast.protocol.prepared import PreparedMessage

from .helpers import feed


@pytest.mark.parametrize(
    ("message", "payload", "opcode", "frame"),
    [
        ("héllo", "héllo".encode(), 0x1, b"\x81\x06" + "héllo".encode()),
        (b"\x00\x01", b"\x00\x01", 0x2, b"\x82\x02\x00\x01"),
        (bytearray(b"ab"), b"ab", 0x2, b"\x82\x02ab"),
        (memoryview(b"cd"), b"cd", 0x2, b"\x82\x02cd"),
        ("", b"", 0x1, b"\x81\x00"),
    ],
)
def test_prepare(message: str | bytes | bytearray | memoryview, payload: bytes, opcode: int, frame: bytes) -> None:
    prepared = PreparedMessage.of(message)
    assert type(prepared.payload) is bytes
    assert (prepared.payload, prepared.opcode, len(prepared)) == (payload, opcode, len(payload))
    assert prepared.frame == frame


def test_frame_is_built_once() -> None:
    prepared = PreparedMessage(b"x" * 70000, text=False)
    assert prepared.frame is prepared.frame
    assert prepared.frame[:10] == b"\x82\x7f" + (70000).to_bytes(8, "big")


def test_prepared_frame_reaches_a_client() -> None:
    prepared = PreparedMessage.of("broadcast")
    receivers = [Protocol(Side.CLIENT) for _ in range(3)]
    for server in [Protocol(Side.SERVER) for _ in range(3)]:
        server.send_prepared(prepared.frame)
        assert server.data_to_send() == [prepared.frame]
    assert [feed(client, prepared.frame) for client in receivers] == [["broadcast"]] * 3


def test_slots() -> None:
    with pytest.raises(AttributeError):
        PreparedMessage.of("x").other = 1  # type: ignore[attr-defined]
