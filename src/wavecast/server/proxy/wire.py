"""Centrifugo's HTTP proxy format: the requests wavecast sends and the answers it reads.

Pure functions, no I/O. The bodies are Centrifugo's (``internal/proxyproto``, encoded as
JSON with empty fields left out): every request carries ``client``, ``transport``,
``protocol`` (``json`` or ``protobuf``) and ``encoding`` (``json``, or ``binary`` when data
travels base64-encoded as ``b64data``). Every answer holds one of ``result``, ``error``
(``code``, ``message``, ``temporary``: the client gets this error) or ``disconnect``
(``code``, ``reason``: the client is disconnected with it). See docs/topics/proxy.md.
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import msgspec

from ...codes import Disconnect, Error
from ...exceptions import CommandError, DisconnectError, WavecastError
from ...realtime.codec.json import json_data

__all__ = [
    "ConnectReply",
    "ProxyAnswerError",
    "PublishReply",
    "RPCReply",
    "RefreshReply",
    "SubscribeReply",
    "decode_reply",
    "encode_request",
    "reply_bytes",
]


class ProxyAnswerError(WavecastError):
    """A backend's answer isn't in Centrifugo's proxy format; the client gets error 100."""


class _ErrorMsg(msgspec.Struct):
    code: int
    message: str = ""
    temporary: bool = False


class _DisconnectMsg(msgspec.Struct):
    code: int
    reason: str = ""


class ConnectReply(msgspec.Struct, omit_defaults=True):
    user: str = ""
    expire_at: int = 0
    info: msgspec.Raw = msgspec.Raw()
    b64info: str = ""
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""
    channels: list[str] = []
    meta: msgspec.Raw = msgspec.Raw()


class RefreshReply(msgspec.Struct, omit_defaults=True):
    """The result of the refresh and sub_refresh proxies."""

    expired: bool = False
    expire_at: int = 0
    info: msgspec.Raw = msgspec.Raw()
    b64info: str = ""


class SubscribeReply(msgspec.Struct, omit_defaults=True):
    info: msgspec.Raw = msgspec.Raw()
    b64info: str = ""
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""
    expire_at: int = 0


class PublishReply(msgspec.Struct, omit_defaults=True):
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""
    tags: dict[str, str] | None = None


class RPCReply(msgspec.Struct, omit_defaults=True):
    data: msgspec.Raw = msgspec.Raw()
    b64data: str = ""


R = TypeVar("R", ConnectReply, RefreshReply, SubscribeReply, PublishReply, RPCReply)

_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(result: type[R]) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(result)
    if decoder is None:
        answer = msgspec.defstruct(
            f"{result.__name__}Answer",
            [
                ("result", result | None, None),
                ("error", _ErrorMsg | None, None),
                ("disconnect", _DisconnectMsg | None, None),
            ],
        )
        decoder = _DECODERS[result] = msgspec.json.Decoder(answer)
    return decoder


def encode_request(
    *,
    client: str,
    transport: str,
    protocol: str,
    binary: bool,
    data: bytes | None = None,
    meta: bytes | None = None,
    **fields: Any,
) -> bytes:
    """Encode a proxy request; empty fields are left out, as Centrifugo leaves them.

    ``data`` goes as ``data`` (JSON) or, with ``binary``, as ``b64data``.

    Raises:
        ProxyAnswerError: ``data`` isn't JSON and the proxy doesn't use binary encoding.
    """
    body: dict[str, Any] = {
        "client": client,
        "transport": transport,
        "protocol": protocol,
        "encoding": "binary" if binary else "json",
    }
    body.update((key, value) for key, value in fields.items() if value)
    if data:
        if binary:
            body["b64data"] = base64.b64encode(data).decode()
        else:
            compact = json_data(data)
            if compact is None:
                raise ProxyAnswerError("the client's data isn't JSON: set binary_encoding = true for this proxy")
            body["data"] = msgspec.Raw(compact)
    if meta:
        body["meta"] = msgspec.Raw(meta)
    return msgspec.json.encode(body)


def decode_reply(body: bytes, result: type[R]) -> R | None:
    """Decode an answer; return its ``result`` (``None`` when there is none).

    Raises:
        CommandError: the answer is an ``error``.
        DisconnectError: the answer is a ``disconnect``.
        ProxyAnswerError: the answer isn't in the proxy format.
    """
    try:
        answer = _decoder(result).decode(body)
    except msgspec.DecodeError as exc:
        raise ProxyAnswerError(f"not a proxy answer ({exc}): {body[:80]!r}") from exc
    if answer.disconnect is not None:
        code, reason = answer.disconnect.code, answer.disconnect.reason
        if not 3000 <= code <= 4999 or len(reason.encode()) > 123:
            raise ProxyAnswerError(f"disconnect code must be 3000-4999 with a reason of 123 bytes at most, got {code}")
        raise DisconnectError(Disconnect(code, reason))
    if answer.error is not None:
        error = answer.error
        if error.code <= 0:
            raise ProxyAnswerError(f"error code must be positive, got {error.code}")
        raise CommandError(Error(error.code, error.message, error.temporary))
    reply: R | None = answer.result
    return reply


def reply_bytes(raw: msgspec.Raw, b64: str, name: str) -> bytes | None:
    """The bytes of a ``data``/``info`` field: ``b64<name>`` decoded if set, else the JSON.

    Raises:
        ProxyAnswerError: ``b64<name>`` isn't base64.
    """
    if b64:
        try:
            return base64.b64decode(b64, validate=True)
        except ValueError as exc:  # binascii.Error, or text that isn't ASCII
            raise ProxyAnswerError(f"b64{name} isn't base64: {b64[:40]!r}") from exc
    if not raw or bytes(raw) == b"null":
        return None
    return bytes(raw)
