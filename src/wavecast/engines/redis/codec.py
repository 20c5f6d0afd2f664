"""How the Redis engine stores and sends publications and client infos (msgpack)."""

from __future__ import annotations

import dataclasses

import msgspec

from ..base import ClientInfo, Publication

__all__ = ["decode_info", "decode_publication", "encode_info", "encode_publication"]

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
