"""codec.protobuf: commands in, replies out, as client.proto has them and the SDKs frame them.

The golden fixtures (``spec/fixtures/protobuf``) were written with centrifuge-python's
generated ``client_pb2``; each test of a fixture checks it against that generated code too, so
a fixture can't drift from the schema the SDKs speak.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest
from centrifuge.protocol import client_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings, strategies as st

from wavecast.engines import ClientInfo, Publication
from wavecast.realtime.codec import ProtobufCodec, client_info_msg, publication_msg
from wavecast.realtime.codec.protobuf import _uvarint
from wavecast.realtime.codec.schema import (
    Command,
    ConnectRequest,
    HistoryRequest,
    JoinMsg,
    PublishRequest,
    Push,
    Reply,
    RPCResult,
    StreamPositionMsg,
    SubscribeRequest,
    raw,
)

from ..support.protobuf import protobuf_command, protobuf_messages, protobuf_replies
from .helpers import WireFixture, load_fixtures

decode = ProtobufCodec.decode_commands
encode = ProtobufCodec.encode_reply

_64_BITS = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64}


def _schema_value(value: Any, descriptor: Descriptor) -> Any:
    """Turn proto3 JSON into what msgspec converts to the schema's structs: bytes, ints."""
    result: dict[str, Any] = {}
    for name, item in value.items():
        field = descriptor.fields_by_name[name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            result[name] = {
                key: _schema_value(entry, value_field.message_type) if value_field.message_type else entry
                for key, entry in item.items()
            }
        elif field.message_type is not None and isinstance(item, list):
            result[name] = [_schema_value(entry, field.message_type) for entry in item]
        elif field.message_type is not None:
            result[name] = _schema_value(item, field.message_type)
        elif field.type == FieldDescriptor.TYPE_BYTES:
            result[name] = msgspec.Raw(base64.b64decode(item))
        elif field.type in _64_BITS:
            result[name] = int(item)
        else:
            result[name] = item
    return result


def _ids(fixtures: list[WireFixture]) -> list[str]:
    return [fixture.case for fixture in fixtures]


COMMANDS = load_fixtures("protobuf", "client")
REPLIES = load_fixtures("protobuf", "server")


@pytest.mark.parametrize("fixture", COMMANDS + REPLIES, ids=_ids(COMMANDS + REPLIES))
def test_fixtures_are_what_theprotobuf_replies(fixture: WireFixture) -> None:
    cls = client_pb2.Command if fixture.direction == "client" else client_pb2.Reply
    messages = protobuf_messages(bytes.fromhex(fixture.wire))
    decoded = [MessageToDict(cls.FromString(message), preserving_proto_field_name=True) for message in messages]
    assert decoded == fixture.value


@pytest.mark.parametrize("fixture", COMMANDS, ids=_ids(COMMANDS))
def test_decode_command_fixtures(fixture: WireFixture) -> None:
    expected = [
        msgspec.convert(_schema_value(value, client_pb2.Command.DESCRIPTOR), Command) for value in fixture.value
    ]
    assert decode(bytes.fromhex(fixture.wire)) == expected


@pytest.mark.parametrize("fixture", REPLIES, ids=_ids(REPLIES))
def test_encode_reply_fixtures(fixture: WireFixture) -> None:
    replies = [msgspec.convert(_schema_value(value, client_pb2.Reply.DESCRIPTOR), Reply) for value in fixture.value]
    assert ProtobufCodec.join(encode(reply) for reply in replies).hex() == fixture.wire


def test_codec_attributes() -> None:
    assert (ProtobufCodec.name, ProtobufCodec.binary) == ("protobuf", True)


def _nested_filter(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"cmp": "ex"}
    for _ in range(depth):
        node = {"op": "not", "nodes": [node]}
    return node


def test_a_filter_nests_up_to_the_depth_limit() -> None:
    [command] = decode(protobuf_command({"id": 1, "subscribe": {"channel": "a", "tf": _nested_filter(20)}}))
    assert command.subscribe is not None and command.subscribe.tf is not None
    with pytest.raises(msgspec.DecodeError, match="nested deeper than 32"):
        decode(protobuf_command({"id": 1, "subscribe": {"channel": "a", "tf": _nested_filter(40)}}))


# --- decoding -----------------------------------------------------------------------------


def test_decode_keeps_bytes_as_they_are() -> None:
    data = bytes(range(256))
    [command] = decode(
        protobuf_command({"id": 1, "publish": {"channel": "a", "data": base64.b64encode(data).decode()}})
    )
    assert command.publish is not None
    assert bytes(command.publish.data) == data


def test_decode_an_empty_message() -> None:
    assert decode(b"") == []


def test_decode_integers_as_protobuf_does() -> None:
    subscribe, history = decode(
        protobuf_command({"id": 4294967295, "subscribe": {"channel": "a", "offset": str(2**64 - 1), "flag": "-3"}})
        + protobuf_command({"id": 2, "history": {"channel": "a", "limit": -5}})
    )
    assert subscribe.id == 2**32 - 1
    assert subscribe.subscribe == SubscribeRequest(channel="a", offset=2**64 - 1, flag=-3)
    assert history.history == HistoryRequest(channel="a", limit=-5)


def test_a_uint32_keeps_its_low_32_bits() -> None:
    # id = 2**32 + 7, written as a 64-bit varint
    body = b"\x08" + _uvarint(2**32 + 7) + b"\x5a\x00"
    [command] = decode(_uvarint(len(body)) + body)
    assert command.id == 7


def test_the_last_scalar_wins_and_messages_merge() -> None:
    # Two ids, and the subscribe request in two parts: protobuf merges them.
    first = b"\x0a\x01a"  # channel "a"
    second = b"\x58\x01"  # join_leave true
    body = b"\x08\x01\x08\x02" + b"\x2a" + _uvarint(len(first)) + first + b"\x2a" + _uvarint(len(second)) + second
    [command] = decode(_uvarint(len(body)) + body)
    assert command == Command(id=2, subscribe=SubscribeRequest(channel="a", join_leave=True))


def test_map_entries_with_parts_missing() -> None:
    # subs: one entry without a value, one without a key; headers: an entry without a value.
    entry_without_value = b"\x0a\x01x"
    entry_without_key = b"\x12\x02\x18\x01"  # value: SubscribeRequest{recover: true}
    header = b"\x0a\x01h"
    connect = (
        b"\x1a" + _uvarint(len(entry_without_value)) + entry_without_value
        + b"\x1a" + _uvarint(len(entry_without_key)) + entry_without_key
        + b"\x32" + _uvarint(len(header)) + header
    )  # fmt: skip
    body = b"\x08\x01\x22" + _uvarint(len(connect)) + connect
    [command] = decode(_uvarint(len(body)) + body)
    assert command.connect == ConnectRequest(
        subs={"x": SubscribeRequest(), "": SubscribeRequest(recover=True)}, headers={"h": ""}
    )


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x05\x08\x01", "declares 5 bytes, 2 are left"),  # the command runs past the message
        (b"\x80", "truncated"),  # a length that never ends
        (b"\x0b" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x02\x08\x80", "truncated"),  # the id's varint is cut
        (b"\x03\x2a\x05\x0a", "field 5 declares 5 bytes, 1 are left"),  # a field past its command
        (b"\x02\x00\x01", "field number 0"),
        (b"\x02\x0e\x01", "wire type 6"),
        (b"\x02\x0f\x01", "wire type 7"),
        (b"\x01\x0c", "wire type 4"),  # an end of group without its start
        (b"\x03\x0b\x08\x01", "group 1 is truncated"),
        (b"\x02\x0b\x14", "doesn't match"),  # group 1 ended as group 2
        (b"\x04\x09\x00\x00\x00", "runs past the end"),  # a fixed64 cut short
        (b"\x05\x2a\x03\x0a\x01\xff", "isn't UTF-8"),
        ("{}", "a text message can't hold protobuf"),
    ],
)
def test_decode_malformed(wire: bytes | str, message: str) -> None:
    with pytest.raises(msgspec.DecodeError, match=message):
        decode(wire)


def test_groups_nest_only_so_deep() -> None:
    body = b"\x0b" * 101 + b"\x0c" * 101
    with pytest.raises(msgspec.DecodeError, match="deeper than 100"):
        decode(_uvarint(len(body)) + body)
    body = b"\x0b" * 100 + b"\x0c" * 100 + b"\x08\x03"
    assert decode(_uvarint(len(body)) + body) == [Command(id=3)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_a_decode_error(data: bytes) -> None:
    try:
        decode(data)
    except msgspec.DecodeError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.text(max_size=20),
    st.binary(max_size=50),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**63), 2**63 - 1),
)
def test_what_the_sdk_encodes_decodes_the_same(
    command_id: int, channel: str, data: bytes, offset: int, flag: int
) -> None:
    b64 = base64.b64encode(data).decode()
    wire = protobuf_command(
        {"id": command_id, "subscribe": {"channel": channel, "offset": str(offset), "flag": str(flag), "data": b64}}
    )
    wire += protobuf_command({"id": command_id, "rpc": {"method": channel, "data": b64}})
    subscribe, rpc = decode(wire)
    assert subscribe.subscribe == SubscribeRequest(channel=channel, offset=offset, flag=flag, data=raw(data))
    assert rpc.rpc is not None and (rpc.rpc.method, bytes(rpc.rpc.data)) == (channel, data)


# --- encoding -----------------------------------------------------------------------------


PUBLICATIONS = [
    Publication(data=b"1"),
    Publication(data=b'{"text":"hi"}', offset=7, time=1700000000123, tags={"a": "1", "b": ""}),
    Publication(
        data=bytes(range(256)) * 80,  # lengths of two and three varint bytes
        offset=2**40,
        info=ClientInfo(client="c" * 200, user="42", conn_info=b'{"name":"Ann"}', chan_info=b"\x00"),
        binary=True,
    ),
    Publication(data=b"x", info=ClientInfo(client="", user="")),
]


@pytest.mark.parametrize("channel_id", [0, 7, 2**40], ids=["named", "compact", "compact-large"])
@pytest.mark.parametrize("publication", PUBLICATIONS)
def test_encode_publication_is_the_push_of_encode_reply(publication: Publication, channel_id: int) -> None:
    wire = ProtobufCodec.encode_publication("chan:1", publication, channel_id)
    where = {"id": channel_id} if channel_id else {"channel": "chan:1"}
    push = Push(**where, pub=publication_msg(publication))  # type: ignore[arg-type]
    assert wire == encode(Reply(push=push))
    [reply] = protobuf_replies(wire)
    assert int(reply["push"].get("id", 0)) == channel_id
    assert reply["push"].get("channel", "") == ("" if channel_id else "chan:1")
    assert base64.b64decode(reply["push"]["pub"]["data"]) == publication.data
    assert int(reply["push"]["pub"].get("offset", 0)) == publication.offset


def test_empty_results_are_sent_as_empty_messages() -> None:
    # A set message field goes out even when empty: SDKs look for reply.rpc.
    assert encode(Reply(id=1, rpc=RPCResult())) == b"\x04\x08\x01\x6a\x00"
    assert encode(Reply()) == b"\x00"


def test_encode_negative_int64() -> None:
    wire = encode(Reply(push=Push(channel="a", pub=publication_msg(Publication(data=b"1", time=-1)))))
    assert protobuf_replies(wire) == [{"push": {"channel": "a", "pub": {"data": "MQ==", "time": "-1"}}}]


def test_join_push_reads_back() -> None:
    join = JoinMsg(info=client_info_msg(ClientInfo(client="c1", user="", conn_info=b"\xff")))
    assert protobuf_replies(encode(Reply(push=Push(channel="a", join=join)))) == [
        {"push": {"channel": "a", "join": {"info": {"client": "c1", "conn_info": "/w=="}}}}
    ]


def test_join_replies() -> None:
    assert ProtobufCodec.join([b"\x00", b"\x02\x08\x01"]) == b"\x00\x02\x08\x01"


def test_encode_data_of_values_is_json() -> None:
    assert ProtobufCodec.encode_data({"a": [1, None]}) == b'{"a":[1,null]}'


def test_commands_between_empty_ones() -> None:
    command = Command(id=9, publish=PublishRequest(channel="a", data=raw(b"\x00")))
    serialized = client_pb2.Command(
        id=9, publish=client_pb2.PublishRequest(channel="a", data=b"\x00")
    ).SerializeToString()
    delimited = _uvarint(len(serialized)) + serialized
    assert decode(delimited + b"\x00" + delimited) == [command, Command(), command]
    [since] = decode(protobuf_command({"id": 1, "history": {"channel": "a", "since": {"offset": "5", "epoch": "e"}}}))
    assert since.history is not None and since.history.since == StreamPositionMsg(offset=5, epoch="e")
