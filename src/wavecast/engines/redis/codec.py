"""How the Redis engine stores and sends publications and client infos (msgpack), and the
messages that carry them between nodes (over Redis pub/sub or NATS)."""

from __future__ import annotations

import dataclasses

import msgspec

from ..base import BrokerEventHandler, ClientInfo, Publication, StreamPosition

__all__ = [
    "decode_info",
    "decode_publication",
    "dispatch_message",
    "encode_info",
    "encode_publication",
    "publication_message",
]

_encoder = msgspec.msgpack.Encoder()
_decode_publication = msgspec.msgpack.Decoder(Publication).decode
_decode_info = msgspec.msgpack.Decoder(ClientInfo).decode


def encode_publication(publication: Publication) -> bytes:
    """Encode a publication; its offset travels beside it, not inside."""
    data: bytes = _encoder.encode(publication)
    return data


def decode_publication(data: bytes, offset: int = 0) -> Publication:
    publication = _decode_publication(data)
    if offset:
        publication = dataclasses.replace(publication, offset=offset)
    return publication


def encode_info(info: ClientInfo) -> bytes:
    data: bytes = _encoder.encode(info)
    return data


def decode_info(data: bytes) -> ClientInfo:
    return _decode_info(data)


def publication_message(offset: int, epoch: str, payload: bytes) -> bytes:
    """The message of an encoded publication: ``p<offset>:<epoch>:<publication>`` (as
    ``lua/publish.lua`` makes it); ``p0::`` without history. Joins are ``j<info>``, leaves
    ``l<info>``."""
    return b"p%d:%s:%s" % (offset, epoch.encode(), payload)


def dispatch_message(handler: BrokerEventHandler, channel: str, data: bytes) -> None:
    """Hand a channel's message (a publication, join or leave) to the node's ``handler``."""
    kind = data[:1]
    if kind == b"p":
        offset_end = data.index(b":", 1)
        epoch_end = data.index(b":", offset_end + 1)
        offset = int(data[1:offset_end])
        publication = decode_publication(data[epoch_end + 1 :], offset)
        position = StreamPosition(offset, data[offset_end + 1 : epoch_end].decode()) if offset else None
        handler.on_publication(channel, publication, position)
    elif kind == b"j":
        handler.on_join(channel, decode_info(data[1:]))
    elif kind == b"l":
        handler.on_leave(channel, decode_info(data[1:]))
