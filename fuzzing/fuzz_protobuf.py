"""Fuzz the protobuf command decoder: ``python fuzzing/fuzz_protobuf.py [-max_total_time=60]``.

Any bytes either decode to commands or raise ``msgspec.DecodeError``, which the session answers
with 3501; nothing else may escape. Decoded commands must be usable by the session.
"""

from __future__ import annotations

import msgspec
from harness import fuzz

from wavecast.realtime.codec.protobuf import ProtobufCodec
from wavecast.realtime.codec.schema import Command


def test_one_input(data: bytes) -> None:
    try:
        commands = ProtobufCodec.decode_commands(data)
    except msgspec.DecodeError:
        return
    for command in commands:
        assert isinstance(command, Command)
        # What the session does with a command: compare with the empty one (a pong), read fields.
        _ = command == Command()
        if command.publish is not None:
            bytes(command.publish.data)


if __name__ == "__main__":
    fuzz(test_one_input)
