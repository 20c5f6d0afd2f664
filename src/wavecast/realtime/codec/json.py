"""The JSON form of the client protocol: newline-delimited commands and replies."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...engines.base import Publication
from .schema import Command, Push, Reply, publication_msg

__all__ = ["JSONCodec", "is_json"]

_decode_command = msgspec.json.Decoder(Command).decode
_encode = msgspec.json.Encoder().encode
# Decoding into Raw checks the syntax without building Python objects.
_check = msgspec.json.Decoder(msgspec.Raw).decode


def is_json(data: bytes) -> bool:
    """Tell whether ``data`` is one JSON value, which a JSON client can receive."""
    try:
        _check(data)
    except msgspec.DecodeError:
        return False
    return True


class JSONCodec:
    """Decodes commands and encodes replies as JSON; the WebSocket messages are text."""

    name = "json"
    binary = False

    @staticmethod
    def decode_commands(data: str | bytes) -> list[Command]:
        """Decode one WebSocket message: one command per line.

        Raises:
            msgspec.DecodeError: the message isn't valid JSON, or a command is malformed.
        """
        if isinstance(data, str):
            data = data.encode()
        if b"\n" not in data:
            return [_decode_command(data)]
        return [_decode_command(line) for line in data.split(b"\n") if line.strip()]

    @staticmethod
    def encode_reply(reply: Reply) -> bytes:
        data: bytes = _encode(reply)
        return data

    @staticmethod
    def encode_publication(channel: str, publication: Publication) -> bytes:
        """Encode the push of a publication; its data must be JSON (not ``binary``)."""
        data: bytes = _encode(Reply(push=Push(channel=channel, pub=publication_msg(publication))))
        return data

    @staticmethod
    def join(replies: Iterable[bytes]) -> bytes:
        """Join encoded replies into one WebSocket message."""
        return b"\n".join(replies)

    @staticmethod
    def encode_data(value: object) -> bytes:
        """Encode an application value (anything JSON can hold) as publication data."""
        data: bytes = _encode(value)
        return data
