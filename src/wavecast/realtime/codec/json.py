"""The JSON form of the client protocol: newline-delimited commands and replies."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...engines.base import ClientInfo, Publication
from .schema import ClientInfoMsg, Command, PublicationMsg, Reply, raw

__all__ = ["JSONCodec", "client_info_msg", "publication_msg"]

_decode_command = msgspec.json.Decoder(Command).decode
_encode = msgspec.json.Encoder().encode


def client_info_msg(info: ClientInfo) -> ClientInfoMsg:
    return ClientInfoMsg(
        user=info.user,
        client=info.client,
        conn_info=raw(info.conn_info),
        chan_info=raw(info.chan_info),
    )


def publication_msg(publication: Publication) -> PublicationMsg:
    return PublicationMsg(
        data=raw(publication.data),
        info=None if publication.info is None else client_info_msg(publication.info),
        offset=publication.offset,
        tags=None if not publication.tags else dict(publication.tags),
        time=publication.time,
    )


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
    def join(replies: Iterable[bytes]) -> bytes:
        """Join encoded replies into one WebSocket message."""
        return b"\n".join(replies)

    @staticmethod
    def encode_data(value: object) -> bytes:
        """Encode an application value (anything JSON can hold) as publication data."""
        data: bytes = _encode(value)
        return data

    @staticmethod
    def check_data(data: bytes) -> None:
        """Check that ``data`` is one JSON value.

        Raises:
            msgspec.DecodeError: it isn't.
        """
        msgspec.json.decode(data)
