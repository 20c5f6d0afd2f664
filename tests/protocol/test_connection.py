from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from wavecast.codes import CloseCode
from wavecast.exceptions import LocalProtocolError
from wavecast.protocol import CLOSED, CLOSING, CONNECTING, OPEN, Close, Event, Limits, Ping, Pong, Protocol, Side

from .helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    Reverse,
    assert_close_sent,
    assert_failed,
    assert_frame_sent,
    assert_frames_sent,
    assert_nothing_sent,
    client_frame,
    close_payload,
    decode_frames,
    feed,
    frame,
    sent,
    server_frame,
)

NO_LIMITS = Limits(max_message_size=None, max_frame_size=None, max_fragments=None)


def server(**kwargs: object) -> Protocol:
    return Protocol(Side.SERVER, **kwargs)  # type: ignore[arg-type]


def client(**kwargs: object) -> Protocol:
    return Protocol(Side.CLIENT, **kwargs)  # type: ignore[arg-type]


def test_an_idle_protocol_holds_no_list_of_events() -> None:
    protocol = server()
    assert protocol._events is None and protocol.events_received() == []
    protocol.receive_data(client_frame(OP_TEXT, b"one") + client_frame(OP_PING, b"p"))
    assert protocol.events_received() == ["one", Ping(b"p")]
    # Taken: nothing is kept until the next frame.
    assert protocol._events is None
    protocol.receive_data(client_frame(OP_BINARY, b"two"))
    assert protocol.events_received() == [b"two"]


# --- payload lengths -------------------------------------------------------------------------

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("size", SIZES)
def test_server_receives_lengths(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert feed(server(), client_frame(OP_BINARY, payload)) == [payload]


@pytest.mark.parametrize("size", SIZES)
def test_client_receives_lengths(size: int) -> None:
    payload = "é" * (size // 2) + "a" * (size % 2)
    assert feed(client(), server_frame(OP_TEXT, payload.encode())) == [payload]


@pytest.mark.parametrize("size", SIZES)
def test_lengths_received_in_small_chunks(size: int) -> None:
    payload = b"x" * size
    assert feed(server(), client_frame(OP_BINARY, payload), chunk=997) == [payload]


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_sent_length_uses_shortest_encoding(size: int, header: bytes) -> None:
    protocol = server()
    protocol.send_binary(b"x" * size)
    assert b"".join(protocol.data_to_send()) == header + b"x" * size


def test_large_payload_is_queued_apart_from_its_header() -> None:
    protocol = server()
    protocol.send_binary(b"x" * 4096)
    protocol.send_binary(b"y" * 4097)
    assert protocol.data_to_send() == [b"\x82\x7e\x10\x00" + b"x" * 4096, b"\x82\x7e\x10\x01", b"y" * 4097]


@pytest.mark.parametrize(
    ("length", "width"),
    [(0, 16), (125, 16), (0, 64), (125, 64), (126, 64), (65535, 64)],
)
def test_non_minimal_length_fails(length: int, width: int) -> None:
    protocol = server()
    feed(protocol, client_frame(OP_BINARY, b"x" * length, width=width))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "not minimally encoded")


def test_length_with_most_significant_bit_fails_at_the_header() -> None:
    protocol = server(limits=NO_LIMITS)
    feed(protocol, client_frame(OP_BINARY, length=2**63))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "most significant bit")


def test_partial_header_waits_for_the_rest() -> None:
    protocol = server()
    data = client_frame(OP_TEXT, b"x" * 300)
    for size in range(1, 8):
        protocol.receive_data(data[size - 1 : size])
        assert protocol.events_received() == []
    assert feed(protocol, data[7:]) == ["x" * 300]


# --- masking ---------------------------------------------------------------------------------


def test_unmasked_frame_from_client_fails() -> None:
    protocol = server()
    feed(protocol, server_frame(OP_TEXT, b"hi"))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "incorrect masking")


def test_masked_frame_from_server_fails() -> None:
    protocol = client()
    feed(protocol, client_frame(OP_TEXT, b"hi"))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "incorrect masking")


def test_client_masks_with_a_fresh_key_and_server_does_not() -> None:
    protocol = client()
    protocol.send_binary(b"abcdef")
    protocol.send_binary(b"abcdef")
    first, second = protocol.data_to_send()
    assert first[1] & 0x80 and first[2:6] != second[2:6]
    protocol = server()
    protocol.send_binary(b"abcdef")
    assert protocol.data_to_send() == [b"\x82\x06abcdef"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.sampled_from([65535, 65536, 65537, 300_001]),
    cuts=st.lists(st.integers(min_value=1, max_value=300_000), max_size=5, unique=True),
    masked=st.booleans(),
)
def test_large_binary_frame_in_any_pieces(size: int, cuts: list[int], masked: bool) -> None:
    # Past 64 KiB the payload is unmasked into one buffer as it arrives: the mask's phase
    # must carry across pieces cut anywhere, the header included.
    payload = bytes(range(251)) * (size // 251) + bytes(size % 251)
    unlimited = Limits(max_message_size=None, max_frame_size=None)
    receiver, data = (server, client_frame) if masked else (client, server_frame)
    received = feed_in_pieces(receiver(limits=unlimited), data(OP_BINARY, payload), sorted(cuts))
    assert len(received) == 1
    assert type(received[0]) is bytes
    assert received[0] == payload


def test_a_frame_past_16_mib_is_kept_in_pieces() -> None:
    # No buffer of the announced size for it: the pieces are kept as they come, and joined.
    payload = b"z" * (16 * 1024 * 1024 + 1)
    data = client_frame(OP_BINARY, payload)
    protocol = server(limits=Limits(max_message_size=None, max_frame_size=None))
    protocol.receive_data(data[:100])
    assert protocol._f_payload is None
    assert feed_in_pieces(protocol, data[100:], [5_000_000]) == [payload]


def test_large_binary_frames_back_to_back_in_one_read() -> None:
    first, second = b"a" * 100_000, bytes(range(256)) * 400
    data = client_frame(OP_BINARY, first) + client_frame(OP_BINARY, second) + client_frame(OP_TEXT, b"end")
    protocol = server()
    assert feed(protocol, data[:70_000]) + feed(protocol, data[70_000:]) == [first, second, "end"]


@pytest.mark.parametrize("split", range(1, 20))
def test_masked_payload_split_anywhere(split: int) -> None:
    data = client_frame(OP_TEXT, b"0123456789abcdef")
    protocol = server()
    assert feed(protocol, data[:split]) + feed(protocol, data[split:]) == ["0123456789abcdef"]


# --- reserved bits and opcodes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (client_frame(OP_TEXT, b"hi", rsv1=True), "without a negotiated extension"),
        (client_frame(OP_TEXT, b"hi", rsv2=True), "RSV2 and RSV3"),
        (client_frame(OP_TEXT, b"hi", rsv3=True), "RSV2 and RSV3"),
        (client_frame(OP_PING, b"hi", rsv1=True), "on a control frame"),
        (client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_CONT, b"b", rsv1=True), "continuation frame"),
    ],
)
def test_reserved_bits_fail(data: bytes, message: str) -> None:
    protocol = server()
    feed(protocol, data)
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, message)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode_fails(opcode: int) -> None:
    protocol = server()
    feed(protocol, client_frame(opcode, b"hi"))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, f"invalid opcode: {opcode:#x}")


def test_unknown_opcode_fails_before_the_frame_size_limit() -> None:
    protocol = server(limits=Limits(max_frame_size=10))
    feed(protocol, client_frame(5, b"x" * 20))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "invalid opcode: 0x5")


# --- control frames --------------------------------------------------------------------------


def test_control_frame_of_125_bytes_is_allowed() -> None:
    protocol = server()
    assert feed(protocol, client_frame(OP_PING, b"p" * 125)) == [Ping(b"p" * 125)]
    assert_frame_sent(protocol, OP_PONG, b"p" * 125)


def test_control_frame_too_long_fails() -> None:
    protocol = server()
    feed(protocol, client_frame(OP_PING, b"p" * 126))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "control frame of 126 bytes")


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame_fails(opcode: int) -> None:
    protocol = server()
    feed(protocol, client_frame(opcode, b"", fin=False))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "fragmented control frame")


def test_ping_is_answered_with_the_same_payload() -> None:
    protocol = client()
    assert feed(protocol, server_frame(OP_PING, b"hello")) == [Ping(b"hello")]
    assert_frame_sent(protocol, OP_PONG, b"hello")


def test_pong_is_reported() -> None:
    protocol = server()
    assert feed(protocol, client_frame(OP_PONG, b"data")) == [Pong(b"data")]
    assert_nothing_sent(protocol)


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_control_frames_split_across_chunks(chunk: int) -> None:
    protocol = server()
    data = client_frame(OP_PING, b"ping!") + client_frame(OP_PONG, b"pong!") + client_frame(OP_CLOSE)
    assert feed(protocol, data, chunk=chunk) == [Ping(b"ping!"), Pong(b"pong!"), Close(CloseCode.NO_STATUS_RCVD)]
    assert_frames_sent(protocol, Frame(OP_PONG, b"ping!"), Frame(OP_CLOSE), eof=True)


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_control_frames_between_fragments(chunk: int | None) -> None:
    protocol = server()
    data = (
        client_frame(OP_TEXT, b"frag", fin=False)
        + client_frame(OP_PING, b"1")
        + client_frame(OP_CONT, b"men", fin=False)
        + client_frame(OP_PONG, b"2")
        + client_frame(OP_PING, b"")
        + client_frame(OP_CONT, b"ted")
    )
    assert feed(protocol, data, chunk=chunk) == [Ping(b"1"), Pong(b"2"), Ping(b""), "fragmented"]
    assert_frames_sent(protocol, Frame(OP_PONG, b"1"), Frame(OP_PONG, b""))


def test_close_between_fragments_ends_the_connection() -> None:
    protocol = server()
    data = client_frame(OP_BINARY, b"abc", fin=False) + client_frame(OP_CLOSE, close_payload(1001))
    assert feed(protocol, data) == [Close(1001)]
    assert_close_sent(protocol, 1001, eof=True)


# --- fragmentation ---------------------------------------------------------------------------


def test_fragmented_binary_message() -> None:
    data = (
        client_frame(OP_BINARY, b"ab", fin=False)
        + client_frame(OP_CONT, b"", fin=False)
        + client_frame(OP_CONT, b"cd", fin=False)
        + client_frame(OP_CONT, b"e")
    )
    assert feed(server(), data) == [b"abcde"]


def test_fragmented_message_with_empty_fragments() -> None:
    data = client_frame(OP_TEXT, b"", fin=False) + client_frame(OP_CONT, b"")
    assert feed(server(), data) == [""]
    data = client_frame(OP_BINARY, b"", fin=False) + client_frame(OP_CONT, b"x") + client_frame(OP_BINARY, b"")
    assert feed(server(), data) == [b"x", b""]


def test_message_in_one_fragment_with_fin_in_a_later_chunk() -> None:
    protocol = server()
    data = client_frame(OP_TEXT, b"x" * 1000)
    assert feed(protocol, data[:500]) == []
    assert feed(protocol, data[500:]) == ["x" * 1000]


def test_continuation_without_a_message_fails() -> None:
    protocol = server()
    feed(protocol, client_frame(OP_CONT, b"x"))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "unexpected continuation frame")


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
@pytest.mark.parametrize("fin", [True, False])
def test_new_message_during_a_fragmented_one_fails(opcode: int, fin: bool) -> None:
    protocol = server()
    feed(protocol, client_frame(OP_TEXT, b"a", fin=False) + client_frame(opcode, b"b", fin=fin))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "expected a continuation frame")


def test_messages_after_a_fragmented_one() -> None:
    data = client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_CONT, b"b") + client_frame(OP_TEXT, b"c")
    assert feed(server(), data) == ["ab", "c"]


# --- close frames ----------------------------------------------------------------------------

INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_invalid_close_code_fails(code: int) -> None:
    protocol = server()
    feed(protocol, client_frame(OP_CLOSE, close_payload(code)))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, f"invalid close code: {code}")


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_valid_close_code_is_echoed(code: int) -> None:
    protocol = server()
    assert feed(protocol, client_frame(OP_CLOSE, close_payload(code, "why"))) == [Close(code, "why")]
    assert_close_sent(protocol, code, eof=True)


def test_one_byte_close_payload_fails() -> None:
    protocol = server()
    feed(protocol, client_frame(OP_CLOSE, b"\x03"))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "close frame too short")


def test_close_reason_with_invalid_utf8_fails() -> None:
    protocol = server()
    feed(protocol, client_frame(OP_CLOSE, close_payload(1000, b"\xff")))
    assert_failed(protocol, CloseCode.INVALID_DATA, "invalid UTF-8 in close reason")


def test_empty_close_payload_means_no_status() -> None:
    protocol = server()
    assert feed(protocol, client_frame(OP_CLOSE)) == [Close(CloseCode.NO_STATUS_RCVD, "")]
    assert_close_sent(protocol, CloseCode.NO_STATUS_RCVD, eof=True)
    assert protocol.close_code == CloseCode.NO_STATUS_RCVD
    assert protocol.close_reason == ""


# --- closing handshake -----------------------------------------------------------------------


def test_server_receives_close_first() -> None:
    protocol = server()
    assert protocol.close_code is None and protocol.close_reason is None
    assert feed(protocol, client_frame(OP_CLOSE, close_payload(1001, "bye"))) == [Close(1001, "bye")]
    # The reply echoes the code, and the server closes TCP at once (RFC 6455 section 7.1.1).
    assert_close_sent(protocol, 1001, eof=True)
    assert protocol.state is CLOSING
    assert protocol.close_rcvd == Close(1001, "bye")
    assert protocol.close_sent == Close(1001, "")
    assert protocol.close_rcvd_then_sent is True
    assert (protocol.close_code, protocol.close_reason) == (1001, "bye")
    assert protocol.close_expected()
    protocol.receive_eof()
    assert protocol.state is CLOSED
    assert_nothing_sent(protocol)
    assert not protocol.close_expected()


def test_server_sends_close_first() -> None:
    protocol = server()
    protocol.send_close(1000, "done")
    assert_close_sent(protocol, 1000, "done")
    assert protocol.state is CLOSING
    assert protocol.close_expected()
    # Data frames may still arrive until the client's close frame.
    assert feed(protocol, client_frame(OP_TEXT, b"late")) == ["late"]
    assert feed(protocol, client_frame(OP_CLOSE, close_payload(1000))) == [Close(1000)]
    # The server closes TCP once both close frames passed.
    assert sent(protocol) == ([], True)
    assert protocol.close_rcvd_then_sent is False
    assert protocol.close_sent == Close(1000, "done")
    protocol.receive_eof()
    assert protocol.state is CLOSED
    assert (protocol.close_code, protocol.close_reason) == (1000, "")


def test_client_receives_close_first() -> None:
    protocol = client()
    assert feed(protocol, server_frame(OP_CLOSE, close_payload(1000, "bye"))) == [Close(1000, "bye")]
    # The client replies and waits for the server to close TCP.
    assert_close_sent(protocol, 1000, eof=False)
    assert protocol.state is CLOSING
    assert protocol.close_rcvd_then_sent is True
    protocol.receive_eof()
    assert protocol.state is CLOSED
    assert sent(protocol) == ([], True)


def test_client_sends_close_first() -> None:
    protocol = client()
    protocol.send_close(4000, "app")
    assert_close_sent(protocol, 4000, "app")
    assert feed(protocol, server_frame(OP_CLOSE, close_payload(4000, "app"))) == [Close(4000, "app")]
    assert_nothing_sent(protocol)
    assert protocol.close_rcvd_then_sent is False
    protocol.receive_eof()
    assert sent(protocol) == ([], True)


def test_data_after_close_frame_is_ignored() -> None:
    protocol = server()
    data = client_frame(OP_CLOSE, close_payload(1000)) + client_frame(OP_TEXT, b"after") + b"\xff\xff"
    assert feed(protocol, data) == [Close(1000)]
    assert feed(protocol, client_frame(OP_PING, b"later")) == []
    assert_close_sent(protocol, 1000, eof=True)


def test_ping_while_closing_is_not_answered() -> None:
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    assert feed(protocol, client_frame(OP_PING, b"p")) == [Ping(b"p")]
    assert_nothing_sent(protocol)


def test_send_close_twice_fails() -> None:
    protocol = server()
    protocol.send_close()
    with pytest.raises(LocalProtocolError, match="can't send a close frame twice"):
        protocol.send_close(1001)
    assert_close_sent(protocol, 1000)


def test_send_close_with_an_invalid_code_leaves_the_connection_open() -> None:
    protocol = server()
    with pytest.raises(ValueError, match="invalid close code: 1006"):
        protocol.send_close(CloseCode.ABNORMAL_CLOSURE)
    assert protocol.state is OPEN
    protocol.send_close()
    assert_close_sent(protocol, 1000)


def test_send_close_after_receiving_one_fails() -> None:
    protocol = client()
    feed(protocol, server_frame(OP_CLOSE, close_payload(1000)))
    with pytest.raises(LocalProtocolError, match="can't send a close frame twice"):
        protocol.send_close()


def test_send_close_with_no_status() -> None:
    protocol = server()
    protocol.send_close(CloseCode.NO_STATUS_RCVD)
    assert_close_sent(protocol, CloseCode.NO_STATUS_RCVD)
    assert protocol.close_sent == Close(CloseCode.NO_STATUS_RCVD, "")


def test_eof_without_close_frame() -> None:
    protocol = client()
    protocol.receive_eof()
    assert protocol.state is CLOSED
    assert (protocol.close_code, protocol.close_reason) == (CloseCode.ABNORMAL_CLOSURE, "")
    assert sent(protocol) == ([], True)
    # receive_eof() is idempotent, and input after EOF is ignored.
    protocol.receive_eof()
    assert feed(protocol, server_frame(OP_TEXT, b"x")) == []
    assert_nothing_sent(protocol)


# --- failing the connection ------------------------------------------------------------------


def test_fail_as_server_sends_close_and_eof() -> None:
    protocol = server()
    protocol.fail(CloseCode.INTERNAL_ERROR, "oops")
    assert_close_sent(protocol, CloseCode.INTERNAL_ERROR, "oops", eof=True)
    assert protocol.state is CLOSING
    assert protocol.close_sent == Close(CloseCode.INTERNAL_ERROR, "oops")
    assert feed(protocol, client_frame(OP_TEXT, b"ignored")) == []


def test_fail_as_client_waits_for_the_server() -> None:
    protocol = client()
    protocol.fail(CloseCode.POLICY_VIOLATION)
    assert_close_sent(protocol, CloseCode.POLICY_VIOLATION, eof=False)
    assert feed(protocol, server_frame(OP_CLOSE, close_payload(1000))) == []
    protocol.receive_eof()
    assert sent(protocol) == ([], True)


@pytest.mark.parametrize(("make", "eof"), [(server, True), (client, False)])
def test_fail_with_1006_sends_no_close_frame(make: Callable[..., Protocol], eof: bool) -> None:
    protocol = make()
    protocol.fail(CloseCode.ABNORMAL_CLOSURE)
    assert sent(protocol) == ([], eof)
    assert protocol.close_sent is None
    assert protocol.state is CLOSING


def test_fail_truncates_the_reason_on_a_character_boundary() -> None:
    protocol = server()
    protocol.fail(CloseCode.INTERNAL_ERROR, "é" * 100)
    [close], _ = sent(protocol)
    assert close.payload == close_payload(CloseCode.INTERNAL_ERROR, "é" * 61)
    protocol = server()
    protocol.fail(CloseCode.INTERNAL_ERROR, "x" * 123)
    [close], _ = sent(protocol)
    assert close.payload == close_payload(CloseCode.INTERNAL_ERROR, "x" * 123)


@pytest.mark.parametrize("make", [server, client])
def test_fail_while_connecting_closes(make: Callable[..., Protocol]) -> None:
    protocol = make(state=CONNECTING)
    protocol.fail(CloseCode.PROTOCOL_ERROR)
    assert protocol.state is CLOSED
    assert sent(protocol) == ([], True)
    assert protocol.close_expected()
    assert protocol.close_code == CloseCode.ABNORMAL_CLOSURE


def test_fail_when_closed_changes_nothing() -> None:
    protocol = server()
    protocol.receive_eof()
    protocol.data_to_send()
    protocol.fail(CloseCode.PROTOCOL_ERROR)
    assert protocol.state is CLOSED
    assert_nothing_sent(protocol)


def test_fail_after_close_sent_sends_nothing_more() -> None:
    protocol = client()
    protocol.send_close()
    protocol.data_to_send()
    protocol.fail(CloseCode.PROTOCOL_ERROR)
    assert_nothing_sent(protocol)
    assert protocol.state is CLOSING


def test_send_eof_twice_fails() -> None:
    protocol = client()
    protocol.send_eof()
    with pytest.raises(LocalProtocolError, match="can't send EOF twice"):
        protocol.send_eof()


def test_protocol_error_is_logged_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    protocol = server()
    with caplog.at_level(logging.DEBUG, logger="wavecast.protocol"):
        feed(protocol, server_frame(OP_TEXT, b"unmasked"))
    [record] = caplog.records
    assert record.getMessage() == "! failing connection: incorrect masking: clients must mask frames, servers must not"


def test_custom_logger() -> None:
    logger = logging.getLogger("test.custom")
    assert server(logger=logger).logger is logger


# --- UTF-8 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"caf\xc3", b"a\xe2\x82", b"\xf0\x9f\x98"],
)
@pytest.mark.parametrize("chunk", [None, 1])
def test_invalid_utf8_text_fails(payload: bytes, chunk: int | None) -> None:
    protocol = server()
    feed(protocol, client_frame(OP_TEXT, payload), chunk=chunk)
    assert_failed(protocol, CloseCode.INVALID_DATA, "invalid UTF-8 in text message")


def test_binary_message_is_not_decoded() -> None:
    assert feed(server(), client_frame(OP_BINARY, b"\xff")) == [b"\xff"]


@pytest.mark.parametrize("invalid", [b"\xff", b"\xc3(", b"\xed\xa0", b"\xed\xbf", b"\xf4\x90", b"\xe0\x80"])
def test_invalid_utf8_in_first_fragment_fails_before_the_last(invalid: bytes) -> None:
    protocol = server()
    feed(protocol, client_frame(OP_TEXT, b"ok " + invalid, fin=False))
    assert_failed(protocol, CloseCode.INVALID_DATA, "invalid UTF-8")


def test_surrogate_split_across_fragments_fails_at_once() -> None:
    protocol = server()
    feed(protocol, client_frame(OP_TEXT, b"ok \xed", fin=False))
    assert protocol.protocol_error is None
    feed(protocol, client_frame(OP_CONT, b"\xa0", fin=False))
    assert_failed(protocol, CloseCode.INVALID_DATA)


@pytest.mark.parametrize("position", [0, 99, 100, 150, 1999])
def test_invalid_utf8_in_large_frame_fails_at_its_chunk(position: int) -> None:
    payload = bytearray(b"a" * 2000)
    payload[position] = 0xFF
    data = client_frame(OP_TEXT, bytes(payload))
    header = len(data) - len(payload)
    protocol = server()
    protocol.receive_data(data[:header])
    for start in range(0, len(payload), 100):
        assert protocol.protocol_error is None
        protocol.receive_data(data[header + start : header + start + 100])
        if protocol.protocol_error is not None:
            break
    assert start <= position < start + 100
    assert_failed(protocol, CloseCode.INVALID_DATA)


def test_multibyte_characters_split_across_fragments_and_chunks() -> None:
    text = "κόσμε 🎉 €"
    raw = text.encode()
    data = b"".join(
        client_frame(OP_TEXT if i == 0 else OP_CONT, raw[i : i + 1], fin=i == len(raw) - 1) for i in range(len(raw))
    )
    assert feed(server(), data) == [text]
    assert feed(server(), client_frame(OP_TEXT, raw), chunk=1) == [text]


@pytest.mark.parametrize("last", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98"])
def test_truncated_character_at_the_end_of_a_fragmented_message_fails(last: bytes) -> None:
    protocol = server()
    feed(protocol, client_frame(OP_TEXT, b"abc", fin=False))
    feed(protocol, client_frame(OP_CONT, last, fin=False))
    assert protocol.protocol_error is None
    feed(protocol, client_frame(OP_CONT, b""))
    assert_failed(protocol, CloseCode.INVALID_DATA)


# --- limits ----------------------------------------------------------------------------------


def test_max_message_size_single_frame() -> None:
    limits = Limits(max_message_size=100)
    assert feed(server(limits=limits), client_frame(OP_BINARY, b"x" * 100)) == [b"x" * 100]
    protocol = server(limits=limits)
    # Only the header has arrived: the connection fails before the payload.
    feed(protocol, client_frame(OP_BINARY, b"x" * 101)[:6])
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, "message of 101 bytes, expected no more than 100 bytes")


def test_max_message_size_sum_of_fragments() -> None:
    limits = Limits(max_message_size=100)
    ok = client_frame(OP_TEXT, b"x" * 60, fin=False) + client_frame(OP_CONT, b"y" * 40)
    assert feed(server(limits=limits), ok) == ["x" * 60 + "y" * 40]
    protocol = server(limits=limits)
    feed(protocol, client_frame(OP_TEXT, b"x" * 60, fin=False) + client_frame(OP_CONT, b"y" * 41)[:6])
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, "message of 101 bytes or more")


def test_max_message_size_of_a_fragmented_first_frame() -> None:
    protocol = server(limits=Limits(max_message_size=100))
    feed(protocol, client_frame(OP_TEXT, b"x" * 101, fin=False)[:8])
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG)


def test_max_frame_size_fails_at_the_header() -> None:
    protocol = server(limits=Limits(max_message_size=None))
    header = client_frame(OP_BINARY, length=2**62)
    assert len(header) == 14
    feed(protocol, header)
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, f"frame of {2**62} bytes, expected no more than {2**20} bytes")


def test_max_frame_size_limits_fragments() -> None:
    limits = Limits(max_frame_size=10, max_message_size=None)
    ok = client_frame(OP_TEXT, b"x" * 10, fin=False) + client_frame(OP_CONT, b"y" * 10)
    assert feed(server(limits=limits), ok) == ["x" * 10 + "y" * 10]
    protocol = server(limits=limits)
    feed(protocol, client_frame(OP_TEXT, b"x" * 10, fin=False) + client_frame(OP_CONT, b"y" * 11))
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, "frame of 11 bytes")


def test_max_fragments() -> None:
    limits = Limits(max_fragments=3)

    def message(fragments: int) -> bytes:
        frames = [client_frame(OP_CONT, b"x", fin=False) for _ in range(fragments)]
        frames[0] = client_frame(OP_BINARY, b"x", fin=False)
        return b"".join(frames) + client_frame(OP_CONT, b"", fin=True)

    assert feed(server(limits=limits), message(2)) == [b"xx"]
    protocol = server(limits=limits)
    feed(protocol, message(3))
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, "message of 4 fragments, expected no more than 3")


def test_control_frames_do_not_count_as_fragments() -> None:
    data = client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_PING) * 5 + client_frame(OP_CONT, b"b")
    assert feed(server(limits=Limits(max_fragments=2)), data)[-1] == "ab"


def test_none_disables_limits() -> None:
    protocol = server(limits=NO_LIMITS)
    big = b"x" * (2**20 + 1)
    assert feed(protocol, client_frame(OP_BINARY, big)) == [big]
    fragments = client_frame(OP_BINARY, b"", fin=False) + client_frame(OP_CONT, b"y", fin=False) * 2000
    assert feed(protocol, fragments + client_frame(OP_CONT, b"")) == [b"y" * 2000]
    # A frame declaring 2**62 bytes is accepted and streamed.
    feed(protocol, client_frame(OP_BINARY, length=2**62))
    assert protocol.protocol_error is None


def test_default_limits() -> None:
    protocol = server()
    feed(protocol, client_frame(OP_BINARY, length=2**20 + 1))
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG)


# --- sending ---------------------------------------------------------------------------------


def test_send_messages() -> None:
    protocol = client()
    protocol.send_text("café")
    protocol.send_binary(bytearray(b"\x00\x01"))
    protocol.send_binary(memoryview(b"mv"))
    protocol.send_ping(b"ping")
    protocol.send_pong(b"pong")
    assert_frames_sent(
        protocol,
        Frame(OP_TEXT, "café".encode()),
        Frame(OP_BINARY, b"\x00\x01"),
        Frame(OP_BINARY, b"mv"),
        Frame(OP_PING, b"ping"),
        Frame(OP_PONG, b"pong"),
    )


def test_send_fragmented_messages() -> None:
    protocol = server()
    protocol.send_text("a", fin=False)
    protocol.send_continuation("b", fin=False)
    protocol.send_continuation(b"c", fin=True)
    protocol.send_binary(b"x", fin=False)
    protocol.send_continuation(bytearray(b"y"), fin=True)
    assert_frames_sent(
        protocol,
        Frame(OP_TEXT, b"a", fin=False),
        Frame(OP_CONT, b"b", fin=False),
        Frame(OP_CONT, b"c"),
        Frame(OP_BINARY, b"x", fin=False),
        Frame(OP_CONT, b"y"),
    )


def test_send_continuation_without_a_fragmented_message_fails() -> None:
    with pytest.raises(LocalProtocolError, match="no fragmented message in progress"):
        server().send_continuation(b"x", fin=True)


def test_continue_binary_message_with_text_fails() -> None:
    protocol = server()
    protocol.send_binary(b"x", fin=False)
    with pytest.raises(LocalProtocolError, match="can't continue a binary message with text"):
        protocol.send_continuation("y", fin=True)


@pytest.mark.parametrize("method", ["send_text", "send_binary"])
def test_new_message_during_a_fragmented_one_is_refused(method: str) -> None:
    protocol = server()
    protocol.send_text("x", fin=False)
    with pytest.raises(LocalProtocolError, match="can't start a new message while a fragmented message"):
        getattr(protocol, method)("y" if method == "send_text" else b"y")


def test_send_prepared_frame() -> None:
    protocol = server()
    protocol.send_prepared(b"\x81\x02hi")
    assert protocol.data_to_send() == [b"\x81\x02hi"]


def test_send_prepared_frame_refused() -> None:
    with pytest.raises(LocalProtocolError, match="can't send a prepared frame on this connection"):
        client().send_prepared(b"\x81\x02hi")
    protocol = server()
    protocol.extension = Reverse()
    with pytest.raises(LocalProtocolError, match="can't send a prepared frame"):
        protocol.send_prepared(b"\x81\x02hi")
    protocol = server()
    protocol.send_text("a", fin=False)
    with pytest.raises(LocalProtocolError, match="can't send a prepared frame"):
        protocol.send_prepared(b"\x81\x02hi")
    protocol = server()
    protocol.send_close()
    with pytest.raises(LocalProtocolError, match="can't send data when state is CLOSING"):
        protocol.send_prepared(b"\x81\x02hi")


@pytest.mark.parametrize("method", ["send_ping", "send_pong"])
def test_control_payload_too_long(method: str) -> None:
    name = method.removeprefix("send_")
    getattr(server(), method)(b"x" * 125)
    with pytest.raises(LocalProtocolError, match=f"{name} payload is 126 bytes, expected no more than 125 bytes"):
        getattr(server(), method)(b"x" * 126)


@pytest.mark.parametrize(
    ("call", "action"),
    [
        (lambda p: p.send_text("x"), "send data"),
        (lambda p: p.send_binary(b"x"), "send data"),
        (lambda p: p.send_continuation(b"x", fin=True), "send data"),
        (lambda p: p.send_ping(), "send a ping"),
        (lambda p: p.send_pong(), "send a pong"),
    ],
)
def test_send_when_not_open_fails(call: object, action: str) -> None:
    for state in (CONNECTING, CLOSING, CLOSED):
        protocol = server(state=state)
        with pytest.raises(LocalProtocolError, match=f"^can't {action} when state is {state.name}$"):
            call(protocol)  # type: ignore[operator]


def test_send_text_when_closing() -> None:
    protocol = server()
    protocol.send_close()
    with pytest.raises(LocalProtocolError) as exc_info:
        protocol.send_text("late")
    assert str(exc_info.value) == "can't send data when state is CLOSING"


def test_receive_data_when_connecting_fails() -> None:
    with pytest.raises(LocalProtocolError, match="can't receive data when state is CONNECTING"):
        server(state=CONNECTING).receive_data(b"x")


def test_receive_nothing() -> None:
    protocol = server(state=CONNECTING)
    protocol.receive_data(b"")
    assert protocol.events_received() == []


# --- an extension that uses RSV1 ---------------------------------------------------------------


def with_extension(make: Callable[..., Protocol] = server, **kwargs: object) -> tuple[Protocol, Reverse]:
    protocol = make(**kwargs)
    extension = Reverse()
    protocol.extension = extension
    return protocol, extension


def test_extension_encodes_whole_messages() -> None:
    protocol, _ = with_extension()
    protocol.send_text("abc")
    protocol.send_binary(b"xy", fin=False)
    protocol.send_continuation(b"z", fin=True)
    assert_frames_sent(
        protocol,
        Frame(OP_TEXT, b"cba", rsv1=True),
        Frame(OP_BINARY, b"xy", fin=False),
        Frame(OP_CONT, b"z"),
    )


def test_extension_decodes_messages_with_rsv1() -> None:
    protocol, extension = with_extension(limits=Limits(max_message_size=10))
    data = (
        client_frame(OP_TEXT, b"cba", rsv1=True)
        + client_frame(OP_TEXT, b"plain")
        + client_frame(OP_BINARY, b"21", rsv1=True, fin=False)
        + client_frame(OP_CONT, b"", fin=False)
        + client_frame(OP_CONT, b"43")
    )
    assert feed(protocol, data, chunk=3) == ["abc", "plain", b"1234"]
    assert extension.decoded == [(b"cba", True, 10), (b"21", False, 10), (b"", False, 8), (b"43", True, 8)]


def test_extension_without_limit() -> None:
    protocol, extension = with_extension(limits=NO_LIMITS)
    assert feed(protocol, client_frame(OP_BINARY, b"", rsv1=True)) == [b""]
    assert extension.decoded == [(b"", True, None)]


def test_extension_decoding_error_fails() -> None:
    protocol, _ = with_extension()
    feed(protocol, client_frame(OP_TEXT, b"bad", rsv1=True))
    assert_failed(protocol, CloseCode.PROTOCOL_ERROR, "can't decode bad")


def test_extension_output_over_the_limit_fails() -> None:
    protocol, _ = with_extension(limits=Limits(max_message_size=4))
    feed(protocol, client_frame(OP_TEXT, b"ab", rsv1=True, fin=False) + client_frame(OP_CONT, b"cde"))
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, "decoded 3 bytes, expected no more than 2 bytes")


def test_compressed_frame_over_the_limit_fails_at_the_header() -> None:
    protocol, extension = with_extension(limits=Limits(max_message_size=4, max_frame_size=None))
    feed(protocol, client_frame(OP_BINARY, b"12345", rsv1=True)[:6])
    assert_failed(protocol, CloseCode.MESSAGE_TOO_BIG, "compressed frame of 5 bytes")
    assert extension.decoded == []


def test_compressed_fragments_are_checked_one_by_one() -> None:
    # Each compressed frame is checked against the limit; the extension checks what it decodes.
    protocol, _ = with_extension(limits=Limits(max_message_size=4))
    data = client_frame(OP_BINARY, b"12", rsv1=True, fin=False) + client_frame(OP_CONT, b"34")
    assert feed(protocol, data) == [b"2143"]


# --- properties ------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Random small payloads, plus payloads around the 16- and 64-bit length boundaries.
sized_binary = st.builds(
    lambda byte, size: bytes([byte]) * size,
    st.integers(min_value=0, max_value=255),
    st.sampled_from([125, 126, 127, 65535, 65536, 70000]),
)
messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300), sized_binary), min_size=1, max_size=6)


def send_message(sender: Protocol, message: str | bytes, pieces: int) -> None:
    """Send ``message`` in one frame, or in about ``pieces`` fragments."""
    size = max(1, len(message) // pieces)
    first, *rest = [message[i : i + size] for i in range(0, len(message), size)] or [message]
    if isinstance(first, str):
        sender.send_text(first, fin=not rest)
    else:
        sender.send_binary(first, fin=not rest)
    for index, part in enumerate(rest):
        sender.send_continuation(part, fin=index == len(rest) - 1)


@PROPERTY_SETTINGS
@given(messages=messages, data=st.data())
def test_round_trip_from_client_to_server(messages: list[str | bytes], data: st.DataObject) -> None:
    sender = client()
    for message in messages:
        send_message(sender, message, data.draw(st.integers(min_value=1, max_value=4)))
    stream = b"".join(sender.data_to_send())
    receiver = server(limits=NO_LIMITS)
    chunk = data.draw(st.one_of(st.none(), st.integers(min_value=1, max_value=4096)))
    assert feed(receiver, stream, chunk=chunk) == messages
    assert receiver.protocol_error is None


def feed_in_pieces(receiver: Protocol, stream: bytes, cuts: list[int]) -> list[Event]:
    """Feed ``stream`` cut at ``cuts``, taking the events after each piece."""
    events: list[Event] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        receiver.receive_data(stream[start:end])
        events += receiver.events_received()
    return events


@PROPERTY_SETTINGS
@given(messages=messages, data=st.data())
def test_round_trip_from_server_to_client(messages: list[str | bytes], data: st.DataObject) -> None:
    sender = server()
    for message in messages:
        send_message(sender, message, data.draw(st.integers(min_value=1, max_value=4)))
    stream = b"".join(sender.data_to_send())
    # A server never masks (RFC 6455 section 5.1): decode_frames checks every mask bit.
    frames = decode_frames(stream, masked=False)
    assert len(frames) >= len(messages)
    receiver = client(limits=NO_LIMITS)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20)))
    assert feed_in_pieces(receiver, stream, cuts) == messages
    assert receiver.protocol_error is None


@st.composite
def frame_streams(draw: st.DrawFn, *, masked: bool = True) -> bytes:
    """Frames as a client sends them (masked) or, with ``masked=False``, as a server does."""
    frames = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        kind = draw(st.sampled_from(["text", "binary", "fragmented", "ping", "pong"]))
        mask = draw(st.binary(min_size=4, max_size=4)) if masked else None
        if kind in ("ping", "pong"):
            payload = draw(st.binary(max_size=125))
            frames.append(frame(OP_PING if kind == "ping" else OP_PONG, payload, mask=mask))
        elif kind == "fragmented":
            text = draw(st.text(max_size=50)).encode()
            cut = draw(st.integers(min_value=0, max_value=len(text)))
            frames.append(frame(OP_TEXT, text[:cut], fin=False, mask=mask))
            frames.append(frame(OP_PING, b"between", mask=mask))
            frames.append(frame(OP_CONT, text[cut:], mask=mask))
        else:
            payload = draw(st.text(max_size=400)).encode() if kind == "text" else draw(st.binary(max_size=400))
            frames.append(frame(OP_TEXT if kind == "text" else OP_BINARY, payload, mask=mask))
    if draw(st.booleans()):
        closing = client_frame if masked else server_frame
        frames.append(closing(OP_CLOSE, close_payload(1000, "end")))
    return b"".join(frames)


@PROPERTY_SETTINGS
@given(stream=frame_streams(), data=st.data())
def test_any_split_gives_the_same_events(stream: bytes, data: st.DataObject) -> None:
    whole = server()
    expected_events = feed(whole, stream)
    expected_output = b"".join(whole.data_to_send())
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20)))
    split = server()
    events = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        split.receive_data(stream[start:end])
        events += split.events_received()
    assert events == expected_events
    assert b"".join(split.data_to_send()) == expected_output
    assert split.state is whole.state
    assert whole.protocol_error is None


@PROPERTY_SETTINGS
@given(stream=frame_streams(masked=False), data=st.data())
def test_any_split_gives_the_same_events_on_the_client(stream: bytes, data: st.DataObject) -> None:
    whole = client()
    expected_events = feed(whole, stream)
    expected_output = b"".join(whole.data_to_send())
    assert whole.protocol_error is None
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20)))
    split = client()
    assert feed_in_pieces(split, stream, cuts) == expected_events
    # What the client answers (pongs, the closing frame) is the same, and masked.
    output = b"".join(split.data_to_send())
    assert [f.opcode for f in decode_frames(output, masked=True)] == [
        f.opcode for f in decode_frames(expected_output, masked=True)
    ]
    assert split.state is whole.state


@PROPERTY_SETTINGS
@given(payload=st.binary(max_size=64), fragmented=st.booleans(), chunk=st.sampled_from([None, 1, 3]))
def test_utf8_validation_agrees_with_python(payload: bytes, fragmented: bool, chunk: int | None) -> None:
    protocol = server()
    if fragmented:
        middle = len(payload) // 2
        data = client_frame(OP_TEXT, payload[:middle], fin=False) + client_frame(OP_CONT, payload[middle:])
    else:
        data = client_frame(OP_TEXT, payload)
    events = feed(protocol, data, chunk=chunk)
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        assert events == []
        assert_failed(protocol, CloseCode.INVALID_DATA)
    else:
        assert events == [text]
        assert protocol.protocol_error is None


def test_protocol_starts_open_by_default() -> None:
    assert server().state is OPEN
    assert not server().close_expected()
