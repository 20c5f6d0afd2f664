"""Fuzz the JSON command decoder of the real-time layer: ``python fuzzing/fuzz_json.py [-runs=N]``.

The input is one WebSocket message of a JSON client, as the session takes it: the first byte
picks a text message (``str``, if the rest is UTF-8) or a binary one (``bytes``); the rest is
the message, one command per line. It either decodes to commands or raises
``msgspec.DecodeError`` (``msgspec.ValidationError`` is one), which the session answers with
3501; nothing else may escape. Then each command goes where the session sends it: its method
is dispatched, publish data is checked as JSON or binary, and a subscription's tags filter is
compiled, which may raise only ``ValueError`` (error 107), and matched against tags.
"""

from __future__ import annotations

import msgspec
from harness import fuzz

from wavecast.realtime.codec.json import JSONCodec, binary_or_json
from wavecast.realtime.codec.schema import Command, SubscribeRequest
from wavecast.realtime.commands import dispatch
from wavecast.realtime.tagsfilter import compile_filter

#: What a filter is matched against: plain tags, a decimal one, and one that isn't a number.
TAGS = {"kind": "news", "price": "10.5", "count": "1e3", "name": "NaN", "": ""}


def check_subscription(request: SubscribeRequest) -> None:
    if request.tf is None:
        return
    try:
        compiled = compile_filter(request.tf)
    except ValueError:
        return
    assert isinstance(compiled.match(TAGS), bool)
    assert isinstance(compiled.match(None), bool)


def check_command(command: Command) -> None:
    assert isinstance(command, Command)
    # What the session does with any command: compare with the empty one (a pong), dispatch.
    _ = command == Command()
    method, _handler, _request = dispatch(command)
    assert isinstance(method, str)
    if command.publish is not None:
        data, binary = binary_or_json(bytes(command.publish.data))
        assert isinstance(data, bytes) and isinstance(binary, bool)
    if command.subscribe is not None:
        check_subscription(command.subscribe)
    if command.connect is not None:
        for subscription in (command.connect.subs or {}).values():
            check_subscription(subscription)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    message: str | bytes = data[1:]
    if data[0] & 1:
        try:
            message = data[1:].decode()
        except UnicodeDecodeError:
            return  # a text WebSocket message is always UTF-8: the protocol layer checks it
    try:
        commands = JSONCodec.decode_commands(message)
    except msgspec.DecodeError:
        return
    for command in commands:
        check_command(command)


if __name__ == "__main__":
    fuzz(test_one_input)
