"""The JSON form of the client protocol: newline-delimited commands and replies."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...engines.base import Publication
from .schema import Command, EmulationRequest, Push, Reply, publication_msg

__all__ = ["JSONCodec", "binary_or_json", "json_data"]

_decode_command = msgspec.json.Decoder(Command).decode


class _JSONEmulation(msgspec.Struct, omit_defaults=True):
    node: str = ""
    session: str = ""
    data: str = ""


_decode_emulation = msgspec.json.Decoder(_JSONEmulation).decode
_encode = msgspec.json.Encoder().encode
# Decoding into Raw checks the syntax without building Python objects.
_check = msgspec.json.Decoder(msgspec.Raw).decode


def json_data(data: bytes) -> bytes | None:
    """Return ``data`` as a JSON client can receive it, or ``None`` when it isn't JSON.

    A JSON client receives one JSON value in strict UTF-8, on one line: the protocol's
    frames are newline-delimited (the SDKs split them on ``\n``), and a raw newline is legal
    JSON whitespace. Data with one is compacted here, once, where it enters the server, so
    that every later encoding can copy it as it is. Data that isn't JSON is binary: only
    protobuf clients can receive it.
    """
    # msgspec takes invalid UTF-8 inside strings; a browser's WebSocket would close on it.
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None
    try:
        _check(data)
    except msgspec.DecodeError:
        return None
    if b"\n" in data:
        compact: bytes = msgspec.json.format(data, indent=-1)
        return compact
    return data


def binary_or_json(data: bytes) -> tuple[bytes, bool]:
    """Return publication data as :func:`json_data` leaves it, and whether it is binary."""
    compact = json_data(data)
    return (data, True) if compact is None else (compact, False)


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
        try:
            if b"\n" not in data:
                return [_decode_command(data)]
            return [_decode_command(line) for line in data.split(b"\n") if line.strip()]
        except RecursionError as exc:
            # A tags filter nests itself: a command may nest it past msgspec's depth.
            raise msgspec.DecodeError("malformed JSON: objects nested too deep") from exc

    @staticmethod
    def decode_emulation(body: bytes) -> EmulationRequest:
        """Decode the body of an emulation request; its ``data`` is the commands' text.

        Raises:
            msgspec.DecodeError: the body isn't the JSON object centrifuge-js sends.
        """
        request = _decode_emulation(body)
        return EmulationRequest(node=request.node, session=request.session, data=request.data)

    @staticmethod
    def encode_reply(reply: Reply) -> bytes:
        data: bytes = _encode(reply)
        return data

    @staticmethod
    def encode_publication(channel: str, publication: Publication, channel_id: int = 0) -> bytes:
        """Encode the push of a publication; its data must be JSON (not ``binary``). With
        ``channel_id``, the push names the channel by that id (channel compaction)."""
        push = (
            Push(id=channel_id, pub=publication_msg(publication))
            if channel_id
            else Push(channel=channel, pub=publication_msg(publication))
        )
        data: bytes = _encode(Reply(push=push))
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
