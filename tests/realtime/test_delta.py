"""delta: the pushes of a publication for delta subscribers, as the golden fixtures pin them."""

from __future__ import annotations

import base64
import json

import pytest
from centrifuge.protocol import client_pb2
from google.protobuf.json_format import ParseDict

from wavecast.engines.base import Publication
from wavecast.realtime import fossil
from wavecast.realtime.codec import JSONCodec, ProtobufCodec
from wavecast.realtime.codec.protobuf import _uvarint
from wavecast.realtime.delta import MAX_DELTA_SIZE, prepare

from ..support.protobuf import protobuf_messages
from .helpers import load_fixtures

CHANNEL = "board:AAPL"
BEFORE = b'{"bid":101.25,"ask":101.5,"note":"caf\xc3\xa9"}'
AFTER = b'{"bid":101.5,"ask":101.5,"note":"caf\xc3\xa9"}'


def _fixture(area: str) -> list[bytes]:
    [fixture] = [f for f in load_fixtures(area, "server") if f.case == "reply-subscribe-delta-publications"]
    if area == "json":
        return [line.encode() for line in fixture.wire.split("\n")]
    return [_uvarint(len(message)) + message for message in protobuf_messages(bytes.fromhex(fixture.wire))]


def test_json_pushes_are_the_fixtures() -> None:
    _, full, delta = _fixture("json")
    assert prepare(JSONCodec, CHANNEL, Publication(BEFORE, offset=7), None).payload == full
    assert prepare(JSONCodec, CHANNEL, Publication(AFTER, offset=8, delta=True), BEFORE).payload == delta


def test_protobuf_pushes_are_the_fixtures() -> None:
    _, full, delta = _fixture("protobuf")
    tags = {"ticker": "AAPL"}
    assert prepare(ProtobufCodec, CHANNEL, Publication(BEFORE, offset=7, tags=tags), None).payload == full
    message = prepare(ProtobufCodec, CHANNEL, Publication(AFTER, offset=8, tags=tags, delta=True), BEFORE)
    assert message.payload == delta and message.opcode == 2


def _pub(payload: bytes, codec: type) -> client_pb2.Publication:
    if codec is JSONCodec:
        pub = json.loads(payload)["push"]["pub"]
        return ParseDict({**pub, "data": base64.b64encode(pub["data"].encode()).decode()}, client_pb2.Publication())
    return client_pb2.Reply.FromString(protobuf_messages(payload)[0]).push.pub


@pytest.mark.parametrize("codec", [JSONCodec, ProtobufCodec])
def test_full_when_not_marked_delta_or_when_a_delta_is_no_shorter(codec: type) -> None:
    unmarked = prepare(codec, CHANNEL, Publication(AFTER), BEFORE)
    unrelated = prepare(codec, CHANNEL, Publication(b'{"x":1}', delta=True), BEFORE)
    for message, data in ((unmarked, AFTER), (unrelated, b'{"x":1}')):
        pub = _pub(message.payload, codec)
        assert (pub.delta, pub.data) == (False, data)


def test_a_delta_that_cuts_a_character_goes_full_to_json_clients() -> None:
    # 日 and 本 share their first byte: the copy ends after it, inside the character, and the
    # patch inserts the rest, which a JSON string can't carry.
    source, target = (json.dumps(f"{'ab' * 10}{c}{'cd' * 10}", ensure_ascii=False).encode() for c in "日本")
    patch = fossil.create(source, target)
    assert len(patch) < len(target)
    with pytest.raises(UnicodeDecodeError):
        patch.decode()
    pub = _pub(prepare(JSONCodec, CHANNEL, Publication(target, delta=True), source).payload, JSONCodec)
    assert (pub.delta, pub.data) == (False, target)
    # Protobuf carries bytes: it takes the patch.
    binary = _pub(prepare(ProtobufCodec, CHANNEL, Publication(target, delta=True), source).payload, ProtobufCodec)
    assert (binary.delta, fossil.apply(source, binary.data)) == (True, target)


def test_data_past_the_size_limit_goes_full() -> None:
    base = b'{"v":"' + b"a" * MAX_DELTA_SIZE + b'"}'
    data = base.replace(b'"v"', b'"w"')
    pub = _pub(prepare(ProtobufCodec, CHANNEL, Publication(data, delta=True), base).payload, ProtobufCodec)
    assert (pub.delta, pub.data) == (False, data)
    smaller = base[: MAX_DELTA_SIZE - 10] + b'"}'
    pub = _pub(
        prepare(ProtobufCodec, CHANNEL, Publication(smaller.replace(b'"v"', b'"w"'), delta=True), smaller).payload,
        ProtobufCodec,
    )
    assert pub.delta is True
