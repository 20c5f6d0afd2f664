"""codec: which form of the protocol a connection speaks, from its handshake."""

from __future__ import annotations

import pytest

from wavecast.realtime.codec import (
    PROTOBUF_SUBPROTOCOL,
    JSONCodec,
    ProtobufCodec,
    negotiate_codec,
    select_subprotocol,
)


@pytest.mark.parametrize(
    ("offered", "selected"),
    [
        ([], None),
        (["centrifuge-protobuf"], "centrifuge-protobuf"),
        (["centrifuge-json"], "centrifuge-json"),
        (["chat", "centrifuge-protobuf"], "centrifuge-protobuf"),
        # Both: the server's order, as Centrifuge's handler lists them.
        (["centrifuge-protobuf", "centrifuge-json"], "centrifuge-json"),
        (["chat"], None),
        (["Centrifuge-Protobuf"], None),  # names are case-sensitive (RFC 6455 section 11.5)
    ],
)
def test_select_subprotocol(offered: list[str], selected: str | None) -> None:
    assert select_subprotocol(offered) == selected


@pytest.mark.parametrize(
    ("subprotocol", "query", "codec"),
    [
        (None, "", JSONCodec),
        (PROTOBUF_SUBPROTOCOL, "", ProtobufCodec),
        ("centrifuge-json", "", JSONCodec),
        (None, "format=protobuf", ProtobufCodec),
        (None, "cf_protocol=protobuf", ProtobufCodec),
        (None, "token=x&format=protobuf", ProtobufCodec),
        # Centrifugo takes the query's word over the subprotocol's.
        ("centrifuge-json", "format=protobuf", ProtobufCodec),
        (None, "format=json", JSONCodec),
        (None, "format=Protobuf", JSONCodec),
        (None, "xformat=protobuf", JSONCodec),
    ],
)
def test_negotiate_codec(subprotocol: str | None, query: str, codec: object) -> None:
    assert negotiate_codec(subprotocol, query) is codec
