"""Codecs of the client protocol: its JSON and Protobuf forms, one per connection.

A codec is a class of static methods: ``decode_commands`` of a WebSocket message,
``encode_reply`` and ``encode_publication`` (each a complete message, or part of one),
``join`` of encoded replies into one message, and ``encode_data`` of an application value
that isn't bytes. ``binary`` says whether its WebSocket messages are binary.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from .json import JSONCodec
from .protobuf import ProtobufCodec
from .schema import client_info_msg, publication_msg

__all__ = [
    "PROTOBUF_SUBPROTOCOL",
    "SUBPROTOCOLS",
    "Codec",
    "JSONCodec",
    "ProtobufCodec",
    "client_info_msg",
    "negotiate_codec",
    "publication_msg",
    "select_subprotocol",
]

#: Either codec.
Codec = type[JSONCodec] | type[ProtobufCodec]

#: What centrifuge-js and centrifuge-python offer in protobuf mode.
PROTOBUF_SUBPROTOCOL = "centrifuge-protobuf"
#: The WebSocket subprotocols of the client protocol, in the server's order of preference,
#: as Centrifuge's WebSocket handler lists them.
SUBPROTOCOLS = ("centrifuge-json", PROTOBUF_SUBPROTOCOL)


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """Pick the subprotocol to answer a client's offer with; ``None`` accepts the connection without one.

    Offers of other subprotocols aren't refused: an SDK in JSON mode offers none.
    """
    for subprotocol in SUBPROTOCOLS:
        if subprotocol in offered:
            return subprotocol
    return None


def negotiate_codec(subprotocol: str | None, query: str) -> Codec:
    """Return the codec of a new connection: protobuf for the ``centrifuge-protobuf``
    subprotocol, or for ``format=protobuf`` (or ``cf_protocol=protobuf``) in the query, as
    Centrifugo decides; JSON otherwise."""
    if subprotocol == PROTOBUF_SUBPROTOCOL:
        return ProtobufCodec
    if query:
        params = urllib.parse.parse_qs(query)
        if "protobuf" in params.get("format", ()) or "protobuf" in params.get("cf_protocol", ()):
            return ProtobufCodec
    return JSONCodec
