from __future__ import annotations

import os
import zlib

import pytest

from wavecast.codes import CloseCode
from wavecast.exceptions import InvalidPayload, NegotiationError, PayloadTooBig
from wavecast.protocol import (
    ClientPerMessageDeflateFactory,
    ClientProtocol,
    ExtensionParameter,
    Limits,
    PerMessageDeflate,
    Protocol,
    ServerPerMessageDeflateFactory,
    ServerProtocol,
    parse_uri,
)

from .helpers import OP_BINARY, OP_TEXT, Reverse, assert_failed, client_frame, feed


def deflate(data: bytes, wbits: int = 15) -> bytes:
    """Compress ``data`` as one permessage-deflate message (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(wbits=-wbits)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def extension(**kwargs: object) -> PerMessageDeflate:
    options: dict[str, object] = {
        "remote_no_context_takeover": False,
        "local_no_context_takeover": False,
        "remote_max_window_bits": 15,
        "local_max_window_bits": 15,
    }
    options.update(kwargs)
    return PerMessageDeflate(**options)  # type: ignore[arg-type]


# --- the extension ---------------------------------------------------------------------------


def test_round_trip_with_context_takeover() -> None:
    sender, receiver = extension(), extension()
    message = b"hello hello hello " * 20
    first, rsv1 = sender.encode(message)
    assert rsv1 and len(first) < len(message)
    second, _ = sender.encode(message)
    # The second message refers to the first one's window.
    assert len(second) < len(first)
    assert receiver.decode(first, fin=True, max_size=None) == message
    assert receiver.decode(second, fin=True, max_size=None) == message


def test_round_trip_without_context_takeover() -> None:
    sender = extension(local_no_context_takeover=True)
    receiver = extension(remote_no_context_takeover=True)
    message = b"abcabcabc" * 30
    first, _ = sender.encode(message)
    second, _ = sender.encode(message)
    assert first == second == deflate(message, 12)
    assert receiver.decode(first, fin=True, max_size=None) == message
    assert receiver.decode(second, fin=True, max_size=None) == message
    # A message compressed with context can't be read by a receiver that reset its own.
    fresh = extension(remote_no_context_takeover=True)
    stream = zlib.compressobj(wbits=-15)
    stream.compress(message)
    stream.flush(zlib.Z_SYNC_FLUSH)
    with_context = (stream.compress(message) + stream.flush(zlib.Z_SYNC_FLUSH))[:-4]
    with pytest.raises(InvalidPayload, match="invalid compressed data"):
        fresh.decode(with_context, fin=True, max_size=None)


def test_fragmented_message() -> None:
    receiver = extension()
    data = deflate(b"x" * 1000 + b"y" * 1000)
    parts = [receiver.decode(data[:5], fin=False, max_size=2000)]
    parts.append(receiver.decode(data[5:], fin=True, max_size=2000 - len(parts[0])))
    assert b"".join(parts) == b"x" * 1000 + b"y" * 1000


def test_empty_message() -> None:
    sender, receiver = extension(), extension()
    data, rsv1 = sender.encode(b"")
    assert rsv1
    assert receiver.decode(data, fin=True, max_size=0) == b""


def test_short_messages_go_out_uncompressed() -> None:
    sender = extension(min_size=10)
    assert sender.encode(b"short") == (b"short", False)
    assert sender.encode(b"long enough")[1] is True


def test_decode_stops_at_the_limit() -> None:
    bomb = deflate(b"\x00" * 10_000_000)
    assert len(bomb) < 20_000
    receiver = extension()
    with pytest.raises(PayloadTooBig, match="message inflates past 1000 more bytes"):
        receiver.decode(bomb, fin=True, max_size=1000)
    assert extension().decode(deflate(b"a" * 1000), fin=True, max_size=1000) == b"a" * 1000
    with pytest.raises(PayloadTooBig):
        extension().decode(deflate(b"a" * 1001), fin=True, max_size=1000)


def test_invalid_data() -> None:
    with pytest.raises(InvalidPayload, match="invalid compressed data") as exc_info:
        extension().decode(b"\xff\xff\xff", fin=True, max_size=None)
    assert exc_info.value.close_code == CloseCode.INVALID_DATA


def test_compression_window_is_clamped() -> None:
    assert extension(window_bits=15, local_max_window_bits=10).window_bits == 10
    assert extension(window_bits=8, local_max_window_bits=15).window_bits == 9
    assert extension(window_bits=12, local_max_window_bits=8).window_bits == 9
    sender, receiver = extension(window_bits=9), extension(remote_max_window_bits=9)
    message = os.urandom(300) * 3
    assert receiver.decode(sender.encode(message)[0], fin=True, max_size=None) == message


def test_repr() -> None:
    assert repr(extension(window_bits=10)) == (
        "PerMessageDeflate(remote_no_context_takeover=False, local_no_context_takeover=False, "
        "remote_max_window_bits=15, window_bits=10)"
    )


# --- the server's negotiation ----------------------------------------------------------------


def accept(params: list[ExtensionParameter], **kwargs: object) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
    response, ext = ServerPerMessageDeflateFactory(**kwargs).process_request_params(params, [])  # type: ignore[arg-type]
    assert isinstance(ext, PerMessageDeflate)
    return response, ext


def test_server_accepts_a_bare_offer() -> None:
    response, ext = accept([])
    assert response == []
    assert (ext.remote_no_context_takeover, ext.local_no_context_takeover) == (False, False)
    assert (ext.remote_max_window_bits, ext.window_bits, ext.mem_level, ext.min_size) == (15, 12, 5, 128)


def test_server_caps_the_client_window() -> None:
    assert accept([("client_max_window_bits", None)])[0] == [("client_max_window_bits", "12")]
    assert accept([("client_max_window_bits", "10")])[0] == [("client_max_window_bits", "10")]
    response, ext = accept([("client_max_window_bits", "15")])
    assert response == [("client_max_window_bits", "12")]
    assert ext.remote_max_window_bits == 12
    assert accept([("client_max_window_bits", None)], client_max_window_bits=None)[0] == []
    assert accept([("client_max_window_bits", "11")], client_max_window_bits=None)[0] == [
        ("client_max_window_bits", "11")
    ]


def test_server_answers_every_parameter() -> None:
    params: list[ExtensionParameter] = [
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "10"),
        ("client_max_window_bits", "9"),
    ]
    response, ext = accept(params)
    assert response == params
    assert (ext.remote_no_context_takeover, ext.local_no_context_takeover) == (True, True)
    assert (ext.remote_max_window_bits, ext.window_bits) == (9, 10)


def test_server_options_apply_without_an_offer() -> None:
    response, ext = accept([], server_no_context_takeover=True, client_no_context_takeover=True)
    assert response == [("server_no_context_takeover", None), ("client_no_context_takeover", None)]
    assert (ext.remote_no_context_takeover, ext.local_no_context_takeover) == (True, True)
    ext = accept([], window_bits=9, mem_level=1, min_size=0)[1]
    assert (ext.window_bits, ext.mem_level, ext.min_size) == (9, 1, 0)


@pytest.mark.parametrize(
    ("params", "kwargs", "message"),
    [
        ([("server_max_window_bits", None)], {}, "server_max_window_bits needs a value"),
        ([("server_max_window_bits", "8")], {}, "server_max_window_bits=8 isn't supported"),
        ([], {"require_client_max_window_bits": True}, "client_max_window_bits is required"),
        ([("x", None)], {}, "unknown permessage-deflate parameter: x"),
        ([("server_no_context_takeover", "1")], {}, "server_no_context_takeover takes no value, got 1"),
        ([("client_max_window_bits", "7")], {}, "invalid client_max_window_bits: 7"),
        ([("client_max_window_bits", "16")], {}, "invalid client_max_window_bits: 16"),
        ([("client_max_window_bits", "010")], {}, "invalid client_max_window_bits: 010"),
        ([("client_max_window_bits", None)] * 2, {}, "duplicate permessage-deflate parameter: client_max_window_bits"),
    ],
)
def test_server_declines(params: list[ExtensionParameter], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(NegotiationError, match=f"^{message}$"):
        accept(params, **kwargs)


def test_server_declines_a_second_deflate() -> None:
    factory = ServerPerMessageDeflateFactory()
    with pytest.raises(NegotiationError, match="permessage-deflate already accepted"):
        factory.process_request_params([], [extension()])
    assert factory.process_request_params([], [Reverse()])[0] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_max_window_bits": 7}, "client_max_window_bits must be between 8 and 15, got 7"),
        ({"client_max_window_bits": 16}, "client_max_window_bits must be between 8 and 15, got 16"),
        ({"window_bits": 8}, "window_bits must be between 9 and 15, got 8"),
        ({"window_bits": 16}, "window_bits must be between 9 and 15, got 16"),
        ({"mem_level": 0}, "mem_level must be between 1 and 9, got 0"),
        ({"mem_level": 10}, "mem_level must be between 1 and 9, got 10"),
    ],
)
def test_server_factory_checks_its_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        ServerPerMessageDeflateFactory(**kwargs)  # type: ignore[arg-type]


def test_server_factory_extremes() -> None:
    ServerPerMessageDeflateFactory(client_max_window_bits=8, window_bits=15, mem_level=9)
    assert ServerPerMessageDeflateFactory().name == "permessage-deflate"


# --- the client's negotiation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": None}, []),
        ({"client_max_window_bits": False}, []),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "10")]),
        (
            {"server_no_context_takeover": True, "client_no_context_takeover": True, "server_max_window_bits": 11},
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "11"),
                ("client_max_window_bits", None),
            ],
        ),
    ],
)
def test_client_offer(kwargs: dict[str, object], params: list[ExtensionParameter]) -> None:
    assert ClientPerMessageDeflateFactory(**kwargs).get_request_params() == params  # type: ignore[arg-type]


def answer(params: list[ExtensionParameter], **kwargs: object) -> PerMessageDeflate:
    ext = ClientPerMessageDeflateFactory(**kwargs).process_response_params(params, [])  # type: ignore[arg-type]
    assert isinstance(ext, PerMessageDeflate)
    return ext


def test_client_applies_the_answer() -> None:
    ext = answer([])
    assert (ext.remote_no_context_takeover, ext.local_no_context_takeover, ext.remote_max_window_bits) == (
        False,
        False,
        15,
    )
    assert ext.window_bits == 12
    ext = answer(
        [
            ("server_no_context_takeover", None),
            ("client_no_context_takeover", None),
            ("server_max_window_bits", "10"),
            ("client_max_window_bits", "9"),
        ],
        server_no_context_takeover=True,
        server_max_window_bits=11,
    )
    assert (ext.remote_no_context_takeover, ext.local_no_context_takeover, ext.remote_max_window_bits) == (
        True,
        True,
        10,
    )
    assert ext.window_bits == 9


def test_client_caps_its_own_window() -> None:
    assert answer([], client_max_window_bits=10).window_bits == 10
    assert answer([("client_max_window_bits", "9")], client_max_window_bits=10).window_bits == 9
    assert answer([], client_max_window_bits=None, window_bits=11).window_bits == 11
    assert answer([], client_no_context_takeover=True).local_no_context_takeover


@pytest.mark.parametrize(
    ("params", "kwargs", "message"),
    [
        ([], {"server_no_context_takeover": True}, "server didn't agree to server_no_context_takeover"),
        ([("server_max_window_bits", None)], {}, "server_max_window_bits needs a value"),
        ([], {"server_max_window_bits": 10}, "server didn't answer server_max_window_bits"),
        ([("server_max_window_bits", "11")], {"server_max_window_bits": 10}, "server_max_window_bits=11 exceeds"),
        ([("client_max_window_bits", None)], {}, "client_max_window_bits needs a value"),
        ([("client_max_window_bits", "10")], {"client_max_window_bits": None}, "which wasn't offered"),
        ([("client_max_window_bits", "10")], {"client_max_window_bits": False}, "which wasn't offered"),
        ([("client_max_window_bits", "11")], {"client_max_window_bits": 10}, "client_max_window_bits=11 exceeds"),
        ([("client_max_window_bits", "8")], {}, "client_max_window_bits=8 isn't supported"),
        ([("bogus", None)], {}, "unknown permessage-deflate parameter: bogus"),
    ],
)
def test_client_rejects_the_answer(params: list[ExtensionParameter], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        answer(params, **kwargs)


def test_client_rejects_a_second_deflate() -> None:
    with pytest.raises(NegotiationError, match="permessage-deflate accepted twice"):
        ClientPerMessageDeflateFactory().process_response_params([], [extension()])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"server_max_window_bits": 16}, "server_max_window_bits must be between 8 and 15, got 16"),
        ({"client_max_window_bits": 7}, "client_max_window_bits must be between 8 and 15, got 7"),
        ({"window_bits": 8}, "window_bits must be between 9 and 15, got 8"),
        ({"mem_level": 10}, "mem_level must be between 1 and 9, got 10"),
    ],
)
def test_client_factory_checks_its_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        ClientPerMessageDeflateFactory(**kwargs)  # type: ignore[arg-type]


# --- over a connection -----------------------------------------------------------------------


def pump(source: Protocol, target: Protocol) -> None:
    data = b"".join(source.data_to_send())
    if data:
        target.receive_data(data)


def connected(
    server_factory: ServerPerMessageDeflateFactory, client_factory: ClientPerMessageDeflateFactory, **kwargs: object
) -> tuple[ServerProtocol, ClientProtocol]:
    server = ServerProtocol(extensions=[server_factory], **kwargs)  # type: ignore[arg-type]
    client = ClientProtocol(parse_uri("ws://example.com/"), extensions=[client_factory], **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    pump(client, server)
    [request] = server.events_received()
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    pump(server, client)
    client.events_received()
    assert server.extension is not None and client.extension is not None
    return server, client


@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_messages_over_a_connection(no_context_takeover: bool) -> None:
    server, client = connected(
        ServerPerMessageDeflateFactory(server_no_context_takeover=no_context_takeover, min_size=0),
        ClientPerMessageDeflateFactory(client_no_context_takeover=no_context_takeover, min_size=0),
    )
    messages: list[str | bytes] = ["hello " * 100, b"\x00" * 5000, "", "é" * 1000, "hello " * 100]
    for message in messages:
        if isinstance(message, str):
            client.send_text(message)
            server.send_text(message)
        else:
            client.send_binary(message)
            server.send_binary(message)
    pump(client, server)
    pump(server, client)
    assert server.events_received() == messages
    assert client.events_received() == messages


def test_uncompressed_messages_still_arrive() -> None:
    server, _ = connected(ServerPerMessageDeflateFactory(), ClientPerMessageDeflateFactory())
    assert feed(server, client_frame(OP_TEXT, b"plain")) == ["plain"]


def test_zip_bomb_fails_with_1009() -> None:
    server, _ = connected(
        ServerPerMessageDeflateFactory(), ClientPerMessageDeflateFactory(), limits=Limits(max_message_size=10_000)
    )
    feed(server, client_frame(OP_BINARY, deflate(b"\x00" * 1_000_000), rsv1=True))
    assert_failed(server, CloseCode.MESSAGE_TOO_BIG, "message inflates past 10000 more bytes")


def test_invalid_compressed_data_fails_with_1007() -> None:
    server, _ = connected(ServerPerMessageDeflateFactory(), ClientPerMessageDeflateFactory())
    feed(server, client_frame(OP_BINARY, b"\xff\xff\xff", rsv1=True))
    assert_failed(server, CloseCode.INVALID_DATA, "invalid compressed data")
