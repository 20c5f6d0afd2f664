"""wire: Centrifugo's proxy requests and answers, mapped without I/O."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from wavecast.codes import Disconnect, Error
from wavecast.exceptions import CommandError, DisconnectError
from wavecast.server.proxy.wire import (
    ConnectReply,
    ProxyAnswerError,
    PublishReply,
    RefreshReply,
    RPCReply,
    decode_reply,
    encode_request,
    reply_bytes,
)

BASE = {"client": "c1", "transport": "websocket", "protocol": "json"}


def test_requests_leave_empty_fields_out() -> None:
    body = encode_request(**BASE, binary=False, user="", channel="chat:1", data=None, meta=None)
    assert json.loads(body) == {**BASE, "encoding": "json", "channel": "chat:1"}


def test_data_travels_as_json_or_base64() -> None:
    body = json.loads(encode_request(**BASE, binary=False, user="ann", data=b'{"a":1}', meta=b'{"m":2}'))
    assert (body["data"], body["meta"], body["user"]) == ({"a": 1}, {"m": 2}, "ann")
    body = json.loads(encode_request(**{**BASE, "protocol": "protobuf"}, binary=True, data=b"\x00\xff"))
    assert (body["encoding"], base64.b64decode(body["b64data"])) == ("binary", b"\x00\xff")
    with pytest.raises(ProxyAnswerError, match="binary_encoding"):
        encode_request(**BASE, binary=False, data=b"\x00\xff")


def test_results() -> None:
    reply = decode_reply(
        b'{"result": {"user": "56", "expire_at": 7, "info": {"n": 1}, "channels": ["a"]}}', ConnectReply
    )
    assert reply is not None and (reply.user, reply.expire_at, reply.channels) == ("56", 7, ["a"])
    assert json.loads(reply_bytes(reply.info, reply.b64info, "info") or b"") == {"n": 1}
    assert reply_bytes(reply.data, reply.b64data, "data") is None
    assert decode_reply(b"{}", RPCReply) is None
    refresh = decode_reply(b'{"result": {"expired": true}}', RefreshReply)
    assert refresh is not None and refresh.expired
    publish = decode_reply(b'{"result": {"b64data": "AP8=", "tags": {"k": "v"}}}', PublishReply)
    assert publish is not None and reply_bytes(publish.data, publish.b64data, "data") == b"\x00\xff"
    assert publish.tags == {"k": "v"}
    assert reply_bytes(msgspec.Raw(b"null"), "", "data") is None


@pytest.mark.parametrize("b64", ["not base64!", "AAé=", "AP8"])
def test_data_that_isnt_base64_is_a_bad_answer(b64: str) -> None:
    # Text that isn't ASCII raised ValueError past the caller, which expects ProxyAnswerError.
    with pytest.raises(ProxyAnswerError, match="b64data isn't base64"):
        reply_bytes(msgspec.Raw(), b64, "data")


def test_errors_and_disconnects() -> None:
    with pytest.raises(CommandError) as error:
        decode_reply(b'{"error": {"code": 1000, "message": "custom error", "temporary": true}}', RPCReply)
    assert error.value.error == Error(1000, "custom error", temporary=True)
    with pytest.raises(DisconnectError) as disconnect:
        decode_reply(b'{"disconnect": {"code": 4500, "reason": "disconnect reason"}}', RPCReply)
    assert disconnect.value.disconnect == Disconnect(4500, "disconnect reason")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>",
        b"[]",
        b'{"result": {"user": 5}}',
        b'{"error": {"message": "no code"}}',
        b'{"error": {"code": -1}}',
        b'{"disconnect": {"code": 1000, "reason": "not a Centrifugo code"}}',
        b'{"disconnect": {"code": 4000, "reason": "' + b"x" * 124 + b'"}}',
    ],
)
def test_garbage(body: bytes) -> None:
    with pytest.raises(ProxyAnswerError):
        decode_reply(body, ConnectReply)


def test_bad_base64() -> None:
    with pytest.raises(ProxyAnswerError, match="b64data"):
        reply_bytes(msgspec.Raw(), "not base64!", "data")
