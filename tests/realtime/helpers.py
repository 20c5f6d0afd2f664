"""Test doubles of the real-time layer: a fake transport, a scripted client, the test nodes'
configuration, and the golden wire fixtures."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from wavecast.codes import Disconnect
from wavecast.engines import StreamPosition
from wavecast.exceptions import StateError
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import ChannelOptions, Node, NodeConfig, Session
from wavecast.realtime.codec import Codec, JSONCodec

from ..support import config
from ..support.protobuf import protobuf_command, protobuf_replies

__all__ = [
    "DEFAULT_CHANNEL",
    "FIXTURES",
    "NAMESPACES",
    "Client",
    "ConnectClient",
    "FakeTransport",
    "MakeNode",
    "NewClient",
    "WireFixture",
    "assert_step",
    "assert_table",
    "load_fixtures",
    "node_config",
    "publish_in_stream",
]


class FakeTransport:
    """A :class:`~wavecast.realtime.transport.Transport` that records what the session does.

    ``writable`` is an attribute: set it to ``False`` to play a slow client, and call
    :meth:`resume` to make the transport writable again and tell the session.
    """

    name = "websocket"

    def __init__(self) -> None:
        self.session: Any = None
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
        if self.session is not None:
            self.session.writable_again()

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


#: The namespaces every test node has. Channels without a namespace are open to everyone.
NAMESPACES = {
    # Nothing is allowed without a token or a hook.
    "plain": ChannelOptions(),
    "secret": ChannelOptions(protected=True, allow_subscribe_for_client=True),
    # A chat: presence, join/leave, history with recovery, user-limited rooms.
    "chat": config.open_channel(
        presence=True,
        join_leave=True,
        history_size=10,
        history_ttl=300,
        allow_recovery=True,
        allow_user_limited_channels=True,
    ),
    # Every subscriber is positioned and recovers.
    "feed": ChannelOptions(
        history_size=10,
        history_ttl=300,
        force_recovery=True,
        allow_subscribe_for_client=True,
        allow_subscribe_for_anonymous=True,
        allow_history_for_client=True,
    ),
    "drop": ChannelOptions(allow_subscribe_for_client=True, slow_consumer="drop_oldest"),
    "conflate": ChannelOptions(allow_subscribe_for_client=True, slow_consumer="conflate", conflation_key_tag="key"),
    "personal": ChannelOptions(presence=True),
}

DEFAULT_CHANNEL = ChannelOptions(
    allow_subscribe_for_client=True,
    allow_subscribe_for_anonymous=True,
    allow_publish_for_subscriber=True,
    allow_presence_for_client=True,
)


def node_config(**kwargs: Any) -> NodeConfig:
    """The test configuration (:func:`tests.support.config.node_config` with :data:`NAMESPACES`),
    with ``kwargs`` overriding it."""
    return config.node_config(**{"channel": DEFAULT_CHANNEL, "namespaces": NAMESPACES, **kwargs})


async def publish_in_stream(node: Node, channel: str, data: Any) -> StreamPosition:
    """Publish ``data`` to a channel with history; return its position in the channel's stream."""
    position = await node.publish(channel, data)
    assert position is not None
    return position


class MakeNode(Protocol):
    """``await make_node(broker=None, presence_manager=None, **config)``, the fixture of ``conftest.py``."""

    def __call__(self, *, broker: Any = None, presence_manager: Any = None, **config: Any) -> Awaitable[Node]: ...


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
        # An RPC runs in a task of its own: give it a few turns of the loop.
        for _ in range(100):
            if self.replies_to(command_id):
                break
            await asyncio.sleep(0)
        replies = self.replies_to(command_id)
        assert len(replies) == 1, f"expected one reply to {method} {command_id}, got {replies}"
        return replies[0]

    def replies_to(self, command_id: int) -> list[dict[str, Any]]:
        """Return the replies written so far to the command ``command_id``."""
        return [reply for reply in self.transport.replies if reply.get("id") == command_id]

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


#: ``await connect(node, user="42", codec=JSONCodec, subscribe=(), **claims)``, the fixture of ``conftest.py``.
ConnectClient = Callable[..., Awaitable[Client]]

#: ``new_client(node, codec=JSONCodec)``, the fixture of ``conftest.py``: a client not connected yet.
NewClient = Callable[..., Client]


def assert_table(
    transitions: Mapping[Any, Mapping[Any, Any]], states: type[enum.Enum], expected: Mapping[Any, Any]
) -> None:
    """A state table has a row for every state, and its cells are ``expected``: ``{(state, action): new_state}``,
    written out again in the test, so that a change to the table must be deliberate."""
    assert set(transitions) == set(states)
    assert {(state, action): new for state, row in transitions.items() for action, new in row.items()} == expected


def assert_step(
    state: Any, action: Any, expected: Mapping[Any, Any], step: Callable[[], object], current: Callable[[], Any]
) -> None:
    """Take ``action`` from ``state`` with ``step()``: the state becomes the one ``expected`` gives, or, for a
    pair it doesn't have, ``step()`` raises "can't <action> when state is <STATE>" and the state stays."""
    if (state, action) in expected:
        step()
        assert current() is expected[state, action]
    else:
        with pytest.raises(StateError) as exc_info:
            step()
        assert str(exc_info.value) == f"can't {action.value} when state is {state.name}"
        assert current() is state
