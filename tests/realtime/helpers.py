"""Test doubles of the real-time layer: a fake transport and a scripted client."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

from wavecast.codes import Disconnect
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import Node, Session
from wavecast.realtime.codec import Codec, JSONCodec

__all__ = [
    "FIXTURES",
    "SECRET",
    "Client",
    "FakeTransport",
    "WireFixture",
    "load_fixtures",
    "protobuf_command",
    "protobuf_replies",
    "token",
]


class FakeTransport:
    """A :class:`~wavecast.realtime.transport.Transport` that records what the session does.

    ``writable`` is an attribute: set it to ``False`` to play a slow client, and call
    :meth:`resume` to make the transport writable again and tell the session.
    """

    name = "websocket"

    def __init__(self) -> None:
        self.on_writable: Any = None
        self.is_writable = True
        self.written: list[PreparedMessage] = []
        self.closes: list[Disconnect] = []

    def writable(self) -> bool:
        return self.is_writable

    def write(self, message: PreparedMessage) -> None:
        assert message.payload, "nothing to write"
        self.written.append(message)

    def close(self, disconnect: Disconnect) -> None:
        self.closes.append(disconnect)

    def resume(self) -> None:
        self.is_writable = True
        if self.on_writable is not None:
            self.on_writable()

    @property
    def payloads(self) -> list[bytes]:
        return [message.payload for message in self.written]

    @property
    def replies(self) -> list[dict[str, Any]]:
        """Everything written, decoded: JSON, one reply or push per line; or protobuf, in
        proto3's JSON mapping, as the SDK's generated code reads it."""
        replies: list[dict[str, Any]] = []
        for message in self.written:
            if message.opcode == 1:
                replies.extend(json.loads(line) for line in message.payload.split(b"\n") if line)
            else:
                replies.extend(protobuf_replies(message.payload))
        return replies


def protobuf_command(command: dict[str, Any]) -> bytes:
    """A length-delimited Command from proto3 JSON, serialized by the SDK's generated code."""
    from centrifuge.protocol import client_pb2
    from google.protobuf.json_format import ParseDict

    serialized = ParseDict(command, client_pb2.Command()).SerializeToString()
    return _varint(len(serialized)) + serialized


def protobuf_replies(data: bytes) -> list[dict[str, Any]]:
    """Read length-delimited replies with the SDK's generated code, into proto3 JSON."""
    from centrifuge.protocol import client_pb2
    from google.protobuf.json_format import MessageToDict

    replies, pos = [], 0
    while pos < len(data):
        length = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        reply = client_pb2.Reply.FromString(data[pos : pos + length])
        replies.append(MessageToDict(reply, preserving_proto_field_name=True))
        pos += length
    return replies


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Client:
    """A session on a fake transport, driven with commands as a client SDK sends them.

    With ``codec=ProtobufCodec``, commands are given in proto3's JSON mapping (bytes in
    base64) and sent as the SDKs' generated code serializes them.
    """

    def __init__(self, node: Node, codec: Codec = JSONCodec) -> None:
        self.node = node
        self.transport = FakeTransport()
        self.session = Session(node, self.transport, codec=codec)
        self._ids = itertools.count(1)
        self._read = 0

    async def send_raw(self, data: bytes | str) -> None:
        await self.session.handle_message(data)

    async def send(self, command: dict[str, Any]) -> None:
        if self.session.codec.binary:
            await self.session.handle_message(protobuf_command(command))
        else:
            await self.session.handle_message(json.dumps(command))

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command and return its reply, which must have been written by then."""
        command_id = next(self._ids)
        await self.send({"id": command_id, method: params or {}})
        replies = [reply for reply in self.transport.replies if reply.get("id") == command_id]
        # An RPC runs in a task of its own: give it a few turns of the loop.
        for _ in range(100):
            if replies:
                break
            await asyncio.sleep(0)
            replies = [reply for reply in self.transport.replies if reply.get("id") == command_id]
        assert len(replies) == 1, f"expected one reply to {method} {command_id}, got {replies}"
        return replies[0]

    async def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command and return its result; fail on an error reply."""
        reply = await self.call(method, params)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply[method]
        return result

    async def error(self, method: str, params: dict[str, Any] | None = None) -> int:
        """Send a command and return the code of its error reply."""
        reply = await self.call(method, params)
        assert "error" in reply, reply
        code: int = reply["error"]["code"]
        return code

    def new(self) -> list[dict[str, Any]]:
        """Return what was written since the last call."""
        replies = self.transport.replies
        new, self._read = replies[self._read :], len(replies)
        return new

    def pushes(self, kind: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        """Return every push written so far, of one kind and channel or all."""
        return [
            reply["push"]
            for reply in self.transport.replies
            if "push" in reply
            and (kind is None or kind in reply["push"])
            and (channel is None or reply["push"].get("channel") == channel)
        ]

    def publications(self, channel: str | None = None) -> list[Any]:
        """Return the data of every publication pushed so far."""
        return [push["pub"].get("data") for push in self.pushes("pub", channel)]

    @property
    def closed_with(self) -> int | None:
        """The code the transport was closed with, if it was."""
        assert len(self.transport.closes) <= 1
        return self.transport.closes[0].code if self.transport.closes else None


#: Signs the tokens of the tests; long enough for PyJWT not to warn.
SECRET = "a-test-secret-long-enough-for-hs256-keys"


def token(user: str, **claims: Any) -> str:
    """Return a connection token for ``user``, or a subscription token with ``channel=...``."""
    import jwt

    return jwt.encode({"sub": user, **claims}, SECRET, algorithm="HS256")


#: The golden wire fixtures: ``spec/fixtures/<area>/<case>.json``.
FIXTURES = Path(__file__).parents[2] / "spec" / "fixtures"


@dataclasses.dataclass(frozen=True)
class WireFixture:
    """One WebSocket message of the protocol as it travels, and what it holds.

    ``direction`` is ``client`` (commands) or ``server`` (replies and pushes); ``wire`` is
    JSON text, or hex for protobuf; ``value`` lists the messages it holds, as JSON objects
    (for protobuf, in proto3's JSON mapping: bytes in base64, 64-bit integers as strings).
    """

    case: str
    name: str
    direction: str
    wire: str
    value: list[dict[str, Any]]


def load_fixtures(area: str, direction: str | None = None) -> list[WireFixture]:
    """Return the fixtures of an area, sorted by case, of one direction or both."""
    fixtures = []
    for path in sorted((FIXTURES / area).glob("*.json")):
        fixture = WireFixture(case=path.stem, **json.loads(path.read_text()))
        assert fixture.direction in ("client", "server"), path
        if direction is None or fixture.direction == direction:
            fixtures.append(fixture)
    assert fixtures, f"no {direction or ''} fixtures in {FIXTURES / area}"
    return fixtures
