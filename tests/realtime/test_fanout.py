"""fanout: the one way a publication travels, its Python and C twins side by side.

``deliver`` has a pure-Python implementation and a C one with the same signature; these
tests build the same subscribers twice, run each twin on one copy, and compare everything
observable: what was delivered and handed back, the positions, and the bytes each
connection corked or wrote. The field names the C twin reads come from ``NATIVE_FIELDS``,
checked here against the classes, so a rename fails wherever the extension is built or not.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wavecast.asyncio import ServerConnection
from wavecast.engines.base import Publication, StreamPosition
from wavecast.protocol import CLOSING
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import ChannelOptions, Node, NodeConfig, Session, fanout
from wavecast.realtime.codec import JSONCodec, ProtobufCodec
from wavecast.realtime.session import CLOSED, CONNECTED
from wavecast.realtime.subscription import Subscription
from wavecast.realtime.websocket import WebSocketTransport
from wavecast.speedups import load

from ..support.transports import open_connection
from .helpers import FakeTransport

native = load("wavecast.realtime._speedups")
needs_native = pytest.mark.skipif(native is None, reason="the C extension isn't built or is turned off")

CHANNEL = "feed"
OFFSET, EPOCH = 5, "e"


def test_the_fields_the_c_twin_reads_exist() -> None:
    for cls, fields in fanout.NATIVE_FIELDS.items():
        slots = {name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())}
        missing = set(fields) - slots
        assert not missing, f"{cls.__name__} has no slot {', '.join(sorted(missing))}: rename it in NATIVE_FIELDS too"


def test_a_renamed_field_is_caught() -> None:
    # What the test above does, on a class that lost a field the C twin reads.
    class Renamed:
        __slots__ = ("queue", "state", "transport")

    slots = set(Renamed.__slots__)
    assert set(fanout.NATIVE_FIELDS[Session]) - slots == {"outbox"}


# --- one world of subscribers, built the same way twice --------------------------------------


class FailingTransport(FakeTransport):
    def write(self, message: PreparedMessage) -> None:
        raise RuntimeError("the write failed")


#: Each situation a fan-out distinguishes: how it sets the session, subscription and connection up.
SITUATIONS: dict[str, dict[str, Any]] = {
    "open": {},
    "subscribing": {"subscribing": True},
    "in order": {"positioned": 4},
    "gap": {"positioned": 2},
    "already seen": {"positioned": 7},
    "other epoch": {"positioned": 4, "epoch": "x"},
    "closed session": {"positioned": 4, "closed": True},
    "queued": {"queued": True},
    "paused": {"paused": True},
    "closing": {"closing": True},
    "compressed": {"compressed": True},
    "small write limit": {"write_limit": 10},
    "protobuf": {"codec": ProtobufCodec},
}
#: Situations on transports other than wavecast's own WebSocket, which the C twin hands back.
OTHER_TRANSPORTS: dict[str, dict[str, Any]] = {
    "fake transport": {"transport": FakeTransport},
    "failing transport": {"transport": FailingTransport},
}


@dataclasses.dataclass
class World:
    node: Node
    subscribers: dict[Session, Subscription]
    connections: list[ServerConnection | None]
    transports: list[Any]

    def observed(self) -> list[tuple[Any, ...]]:
        """What each subscriber's side shows: its position, and what its transport wrote."""
        seen = []
        for (session, subscription), connection, transport in zip(
            self.subscribers.items(), self.connections, self.transports, strict=True
        ):
            if connection is not None:
                written: Any = (list(connection.protocol._out), list(transport.written))
            else:
                written = [message.payload for message in transport.written]
            seen.append((subscription.offset, session.state, len(session.outbox), written, transport_closes(transport)))
        return seen

    def close(self) -> None:
        for session in self.subscribers:
            for handle in (session._stale_handle, session._ping_handle):
                if handle is not None:
                    handle.cancel()


def transport_closes(transport: Any) -> list[int]:
    return [disconnect.code for disconnect in getattr(transport, "closes", [])]


def build(situations: dict[str, dict[str, Any]], node: Node) -> World:
    subscribers: dict[Session, Subscription] = {}
    connections: list[ServerConnection | None] = []
    transports: list[Any] = []
    for setup in situations.values():
        connection: ServerConnection | None = None
        if "transport" in setup:
            transport = setup["transport"]()
            session_transport: Any = transport
        else:
            connection, transport = open_connection()
            if setup.get("closing"):
                connection.protocol.state = CLOSING
            connection._prepared_ok = not setup.get("compressed")
            connection._writing_paused = bool(setup.get("paused"))
            connection.write_limit = setup.get("write_limit", 100)
            session_transport = WebSocketTransport(connection)
        session = Session(node, session_transport, codec=setup.get("codec", JSONCodec))
        session.state = CLOSED if setup.get("closed") else CONNECTED
        if setup.get("queued"):
            session.outbox.push(PreparedMessage(b"{}", text=True))
        subscription = Subscription(CHANNEL, node.config.channel_options(CHANNEL) or ChannelOptions())
        if not setup.get("subscribing"):
            subscription.complete()
        if "positioned" in setup:
            subscription.positioned = True
            subscription.offset = setup["positioned"]
            subscription.epoch = setup.get("epoch", EPOCH)
        subscribers[session] = subscription
        connections.append(connection)
        transports.append(transport)
    return World(node, subscribers, connections, transports)


def frames_of(world: World) -> Iterator[tuple[int, bytes]]:
    for index, connection in enumerate(world.connections):
        if connection is not None:
            for frame in connection.protocol._out:
                yield index, frame


MESSAGE = PreparedMessage(b'{"push":{"channel":"feed","pub":{"data":1,"offset":5}}}', text=True)


@needs_native
@pytest.mark.parametrize(("offset", "epoch"), [(OFFSET, EPOCH), (OFFSET, None), (0, None)])
async def test_deliver_does_what_its_python_twin_does(offset: int, epoch: str | None) -> None:
    assert native is not None
    node = Node(NodeConfig())
    ours, theirs = build(SITUATIONS, node), build(SITUATIONS, node)
    try:
        result = native.deliver(ours.subscribers, MESSAGE, offset, epoch)
        expected = fanout.deliver_python(theirs.subscribers, MESSAGE, offset, epoch)
        assert result[0] == expected[0]
        names = list(SITUATIONS)
        index = {session: i for i, session in enumerate(ours.subscribers)} | {
            session: i for i, session in enumerate(theirs.subscribers)
        }
        assert [names[index[session]] for session, _ in result[1]] == [
            names[index[session]] for session, _ in expected[1]
        ]
        assert ours.observed() == theirs.observed()
        if epoch is not None:
            assert {names[index[s]] for s, _ in result[1]} == {
                "subscribing",
                "gap",
                "already seen",
                "other epoch",
                "queued",
                "paused",
            }
    finally:
        ours.close()
        theirs.close()


@needs_native
async def test_deliver_checks_its_arguments() -> None:
    assert native is not None
    with pytest.raises(TypeError, match="takes a dict"):
        native.deliver([], MESSAGE, 0, None)
    with pytest.raises(TypeError, match="exactly 4 arguments"):
        native.deliver({}, MESSAGE, 0)
    with pytest.raises(AttributeError):
        native.deliver({}, object(), 0, None)
    assert native.deliver({}, MESSAGE, 0, None) == (0, [])


# --- the whole path: FanOut.publication with either twin ----------------------------------------

TWINS: dict[str, Callable[..., Any]] = {"python": fanout.deliver_python}
if native is not None:
    TWINS["native"] = native.deliver


def _config(**options: Any) -> NodeConfig:
    return NodeConfig(channel=ChannelOptions(history_size=10, history_ttl=60, **options))


@pytest.mark.parametrize(
    ("policy", "publication"),
    [
        ("disconnect", Publication(data=b"1", offset=OFFSET, tags={"k": "a"})),
        ("drop_oldest", Publication(data=b"1", offset=OFFSET)),
        ("conflate", Publication(data=b"1", offset=OFFSET, tags={"k": "a"})),
        ("disconnect", Publication(data=b"\xff binary", offset=OFFSET, binary=True)),
        ("disconnect", Publication(data=b"2")),
    ],
    ids=["disconnect", "drop_oldest", "conflate", "binary", "no history"],
)
async def test_fan_out_ends_the_same_with_either_twin(
    monkeypatch: pytest.MonkeyPatch, policy: str, publication: Publication
) -> None:
    options: dict[str, Any] = {"slow_consumer": policy}
    if policy == "conflate":
        options["conflation_key_tag"] = "k"
    situations = SITUATIONS | OTHER_TRANSPORTS
    results = []
    for twin in TWINS.values():
        monkeypatch.setattr(fanout, "deliver", twin)
        node = Node(_config(**options))
        world = build(situations, node)
        try:
            for session, subscription in world.subscribers.items():
                node.hub.add_subscriber(CHANNEL, session, subscription)
            position = StreamPosition(publication.offset, EPOCH) if publication.offset else None
            node.on_publication(CHANNEL, publication, position)
            if node._tasks:
                await asyncio.wait(list(node._tasks))
            results.append(
                (
                    world.observed(),
                    [len(subscription.pending or ()) for subscription in world.subscribers.values()],
                    node.stats.deliveries,
                    node.stats.bytes_out,
                    dict(node.stats.slow_consumer_actions),
                )
            )
        finally:
            world.close()
    assert all(result == results[0] for result in results)
    assert results[0][2] > 0
