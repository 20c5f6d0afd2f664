"""codec.json: commands in, replies out, as Centrifugo's JSON protocol has them."""

from __future__ import annotations

import msgspec
import pytest

from wavecast.engines import ClientInfo, Publication
from wavecast.realtime.codec import JSONCodec, client_info_msg, publication_msg
from wavecast.realtime.codec.json import binary_or_json, json_data
from wavecast.realtime.codec.schema import (
    Command,
    ConnectRequest,
    ConnectResult,
    ErrorMsg,
    HistoryResult,
    JoinMsg,
    PresenceResult,
    PresenceStatsResult,
    PublicationMsg,
    PublishRequest,
    Push,
    Reply,
    RPCResult,
    StreamPositionMsg,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeMsg,
    raw,
)

from .helpers import WireFixture, load_fixtures

decode = JSONCodec.decode_commands
encode = JSONCodec.encode_reply

COMMANDS = load_fixtures("json", "client")
REPLIES = load_fixtures("json", "server")


def _ids(fixtures: list[WireFixture]) -> list[str]:
    return [fixture.case for fixture in fixtures]


@pytest.mark.parametrize("fixture", COMMANDS, ids=_ids(COMMANDS))
def test_decode_command_fixtures(fixture: WireFixture) -> None:
    commands = decode(fixture.wire)
    assert commands == [msgspec.json.decode(msgspec.json.encode(value), type=Command) for value in fixture.value]
    # Data stays raw JSON, as the client wrote it.
    assert [msgspec.json.decode(msgspec.json.encode(command)) for command in commands] == fixture.value


@pytest.mark.parametrize("fixture", REPLIES, ids=_ids(REPLIES))
def test_encode_reply_fixtures(fixture: WireFixture) -> None:
    replies = [msgspec.json.decode(msgspec.json.encode(value), type=Reply) for value in fixture.value]
    assert JSONCodec.join(encode(reply) for reply in replies).decode() == fixture.wire


def test_codec_attributes() -> None:
    assert (JSONCodec.name, JSONCodec.binary) == ("json", False)


def test_encode_publication_is_the_push_of_encode_reply() -> None:
    publication = Publication(data=b'{"a":1}', offset=3, info=ClientInfo(client="c", user="u"), time=5)
    assert JSONCodec.encode_publication("ch", publication) == encode(
        Reply(push=Push(channel="ch", pub=publication_msg(publication)))
    )


# --- decoding -----------------------------------------------------------------------------


def test_decode_one_command() -> None:
    [command] = decode(b'{"id":1,"connect":{"token":"t","name":"js","version":"5.0.0"}}')
    assert command == Command(id=1, connect=ConnectRequest(token="t", name="js", version="5.0.0"))


def test_decode_str() -> None:
    assert decode('{"id":1,"ping":{}}') == decode(b'{"id":1,"ping":{}}')


def test_decode_several_commands_per_message() -> None:
    commands = decode(b'{"id":1,"subscribe":{"channel":"a"}}\n{"id":2,"subscribe":{"channel":"b"}}\n')
    assert [(c.id, c.subscribe.channel if c.subscribe else None) for c in commands] == [(1, "a"), (2, "b")]


def test_decode_skips_blank_lines() -> None:
    commands = decode(b'\n{"id":1,"ping":{}}\n  \n{"id":2,"ping":{}}\r\n\n')
    assert [c.id for c in commands] == [1, 2]


def test_decode_ignores_unknown_fields() -> None:
    [command] = decode(b'{"id":3,"future":{"x":1},"subscribe":{"channel":"a","someday":true}}')
    assert command == Command(id=3, subscribe=SubscribeRequest(channel="a"))


def test_decode_keeps_data_raw() -> None:
    [command] = decode(b'{"id":4,"publish":{"channel":"a","data":{"text": "hi",  "n":[1,2]}}}')
    assert command.publish is not None
    assert bytes(command.publish.data) == b'{"text": "hi",  "n":[1,2]}'
    assert command == Command(id=4, publish=PublishRequest(channel="a", data=command.publish.data))


def test_decode_subscribe_with_recovery() -> None:
    [command] = decode(
        b'{"id":5,"subscribe":{"channel":"a","recover":true,"epoch":"xyz","offset":7,"recoverable":true,'
        b'"positioned":true,"join_leave":true,"flag":2}}'
    )
    assert command.subscribe == SubscribeRequest(
        channel="a", recover=True, epoch="xyz", offset=7, recoverable=True, positioned=True, join_leave=True, flag=2
    )


def test_decode_history_since() -> None:
    [command] = decode(b'{"id":6,"history":{"channel":"a","limit":-1,"since":{"offset":3,"epoch":"e"},"reverse":true}}')
    assert command.history is not None
    assert command.history.since == StreamPositionMsg(offset=3, epoch="e")
    assert (command.history.limit, command.history.reverse) == (-1, True)


def test_decode_empty_command() -> None:
    assert decode(b"{}") == [Command()]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{",
        b'{"id":1}{"id":2}',
        b"[]",
        b"null",
        b'{"id":"one"}',
        b'{"id":1,"subscribe":"a"}',
        b'{"id":1,"subscribe":{"channel":1}}',
        b'{"id":1,"ping":{}}\n{',
        b'{"id":-1.5}',
    ],
)
def test_decode_malformed(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode(data)


def test_a_filter_nested_past_msgspec_depth_is_malformed() -> None:
    # Within the 64 KiB message limit: a filter nests itself, so the decoder must not recurse
    # out of the stack.
    depth = 2000
    tf = '{"op":"not","nodes":[' * depth + '{"cmp":"ex"}' + "]}" * depth
    data = b'{"id":1,"subscribe":{"channel":"a","tf":' + tf.encode() + b"}}"
    assert len(data) < 65536
    with pytest.raises(msgspec.DecodeError, match="nested too deep"):
        decode(data)


def test_validation_errors_are_decode_errors() -> None:
    # The session catches both; a ValidationError is one kind of DecodeError.
    assert issubclass(msgspec.ValidationError, msgspec.DecodeError)


# --- encoding -----------------------------------------------------------------------------


def test_empty_reply_is_an_empty_object() -> None:
    assert encode(Reply()) == b"{}"


def test_encoded_replies_omit_defaults() -> None:
    assert encode(Reply(id=1, subscribe=SubscribeResult())) == b'{"id":1,"subscribe":{}}'
    assert encode(Reply(id=2, connect=ConnectResult(client="c", version="1"))) == (
        b'{"id":2,"connect":{"client":"c","version":"1"}}'
    )
    assert encode(Reply(id=3, error=ErrorMsg(code=103, message="permission denied"))) == (
        b'{"id":3,"error":{"code":103,"message":"permission denied"}}'
    )
    assert encode(Reply(id=4, error=ErrorMsg(code=111, message="too many requests", temporary=True))) == (
        b'{"id":4,"error":{"code":111,"message":"too many requests","temporary":true}}'
    )


def test_encoded_replies_embed_raw_data() -> None:
    assert encode(Reply(id=1, rpc=RPCResult(data=raw(b'{"a": [1, 2]}')))) == b'{"id":1,"rpc":{"data":{"a": [1, 2]}}}'
    assert encode(Reply(id=1, rpc=RPCResult(data=raw(None)))) == b'{"id":1,"rpc":{}}'
    assert encode(Reply(id=1, rpc=RPCResult(data=raw(b"")))) == b'{"id":1,"rpc":{}}'
    assert encode(Reply(id=1, rpc=RPCResult(data=raw(b"0")))) == b'{"id":1,"rpc":{"data":0}}'


def test_presence_result_always_has_its_map() -> None:
    assert encode(Reply(id=1, presence=PresenceResult(presence={}))) == b'{"id":1,"presence":{"presence":{}}}'
    info = client_info_msg(ClientInfo(client="c1", user="42"))
    assert encode(Reply(id=1, presence=PresenceResult(presence={"c1": info}))) == (
        b'{"id":1,"presence":{"presence":{"c1":{"user":"42","client":"c1"}}}}'
    )


def test_presence_stats_result() -> None:
    assert encode(Reply(id=1, presence_stats=PresenceStatsResult())) == b'{"id":1,"presence_stats":{}}'
    assert encode(Reply(id=1, presence_stats=PresenceStatsResult(num_clients=2, num_users=1))) == (
        b'{"id":1,"presence_stats":{"num_clients":2,"num_users":1}}'
    )


def test_history_result() -> None:
    result = HistoryResult(publications=[publication_msg(Publication(data=b'"x"', offset=3))], epoch="e", offset=3)
    assert encode(Reply(id=1, history=result)) == (
        b'{"id":1,"history":{"publications":[{"data":"x","offset":3}],"epoch":"e","offset":3}}'
    )


def test_publication_push() -> None:
    publication = Publication(
        data=b'{"text":"hi"}',
        offset=7,
        info=ClientInfo(client="c1", user="42", conn_info=b'{"name":"Ann"}', chan_info=b'{"role":"admin"}'),
        tags={"kind": "chat"},
        time=1700000000123,
    )
    assert encode(Reply(push=Push(channel="chat:1", pub=publication_msg(publication)))) == (
        b'{"push":{"channel":"chat:1","pub":{"data":{"text":"hi"},"info":{"user":"42","client":"c1",'
        b'"conn_info":{"name":"Ann"},"chan_info":{"role":"admin"}},"offset":7,"tags":{"kind":"chat"},'
        b'"time":1700000000123}}}'
    )


def test_minimal_publication_push() -> None:
    assert encode(Reply(push=Push(channel="a", pub=publication_msg(Publication(data=b"1"))))) == (
        b'{"push":{"channel":"a","pub":{"data":1}}}'
    )


def test_empty_tags_are_left_out() -> None:
    assert publication_msg(Publication(data=b"1", tags={})) == PublicationMsg(data=raw(b"1"))


def test_join_and_unsubscribe_pushes() -> None:
    join = JoinMsg(info=client_info_msg(ClientInfo(client="c1", user="")))
    assert (
        encode(Reply(push=Push(channel="a", join=join))) == b'{"push":{"channel":"a","join":{"info":{"client":"c1"}}}}'
    )
    unsubscribe = UnsubscribeMsg(code=2000, reason="server unsubscribe")
    assert encode(Reply(push=Push(channel="a", unsubscribe=unsubscribe))) == (
        b'{"push":{"channel":"a","unsubscribe":{"code":2000,"reason":"server unsubscribe"}}}'
    )


def test_join_replies() -> None:
    assert JSONCodec.join([b'{"id":1}', b'{"id":2}']) == b'{"id":1}\n{"id":2}'
    assert JSONCodec.join([]) == b""


def test_encode_data() -> None:
    assert JSONCodec.encode_data({"a": [1, None]}) == b'{"a":[1,null]}'
    assert JSONCodec.encode_data("x") == b'"x"'


def test_json_data() -> None:
    for good in (b'{"a":1}', b"  1 ", b'"x"', b"null", '"é"'.encode()):
        assert json_data(good) == good
    for bad in (b"", b"{", b"not json", b"1 2", b"\x00\x01", b'"\xff"', b'{"a":"\xed\xa0\x80"}'):
        assert json_data(bad) is None


def test_json_data_with_a_raw_newline_is_compacted_onto_one_line() -> None:
    # A newline would split the newline-delimited frame that carries the data.
    assert json_data(b'{"a":\n 1,\r\n "b": [1, 2]}\n') == b'{"a":1,"b":[1,2]}'
    assert json_data(b'"a\\nb"') == b'"a\\nb"'  # an escaped newline is part of the string


def test_binary_or_json() -> None:
    assert binary_or_json(b'{"a":\n1}') == (b'{"a":1}', False)
    assert binary_or_json(b'"\xff"') == (b'"\xff"', True)


def test_round_trip_of_a_reply() -> None:
    reply = Reply(id=9, subscribe=SubscribeResult(recoverable=True, epoch="e", offset=3, positioned=True))
    assert msgspec.json.decode(encode(reply)) == {
        "id": 9,
        "subscribe": {"recoverable": True, "epoch": "e", "offset": 3, "positioned": True},
    }
