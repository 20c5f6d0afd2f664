"""fanout: the one way a publication travels, its Python and C twins side by side, and what
subscribers of a node receive through it.

``deliver`` has a pure-Python implementation and a C one with the same signature; these
tests build the same subscribers twice, run each twin on one copy, and compare everything
observable: what was delivered and handed back, the positions, and the bytes each
connection corked or wrote. The field names the C twin reads come from ``NATIVE_FIELDS``,
checked here against the classes, so a rename fails wherever the extension is built or not.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wavecast.asyncio import ServerConnection
from wavecast.codes import DISCONNECT_SERVER_ERROR
from wavecast.engines.base import ClientInfo, Publication, StreamPosition
from wavecast.protocol import CLOSING
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import ChannelOptions, Node, NodeConfig, Session, fanout, fossil
from wavecast.realtime.codec import JSONCodec, ProtobufCodec
from wavecast.realtime.codec.schema import FilterNode
from wavecast.realtime.outbox import Outbox
from wavecast.realtime.session import CLOSED, CONNECTED
from wavecast.realtime.subscription import Subscription
from wavecast.realtime.tagsfilter import TagsFilter, compile_filter
from wavecast.realtime.websocket import WebSocketTransport
from wavecast.speedups import load

from ..support.config import node_config, open_channel
from ..support.peers import data_segments_received
from ..support.raw import RawClient
from ..support.servers import NodeServer
from ..support.timing import wait_until
from ..support.tokens import make_token
from ..support.transports import open_connection
from .helpers import ConnectClient, FakeTransport, MakeNode

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
    "drained queue": {"drained": True},
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
                written: Any = (list(connection.protocol._out or ()), list(transport.written))
            else:
                written = [message.payload for message in transport.written]
            queued = 0 if session.outbox is None else len(session.outbox)
            seen.append((subscription.offset, session.state, queued, written, transport_closes(transport)))
        return seen

    def close(self) -> None:
        for session in self.subscribers:
            session._stop_timers()


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
        if setup.get("queued") or setup.get("drained"):
            session.outbox = Outbox(None)
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
            for frame in connection.protocol._out or ():
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


# --- through a node: one frame per form, to every subscriber, in order -------------------------


async def test_fan_out_frames_once(node: Node, connect: ConnectClient) -> None:
    clients = [await connect(node, str(user), subscribe="news") for user in range(3)]
    await node.publish("news", {"n": 1})
    messages = [client.transport.written[-1] for client in clients]
    assert all(message is messages[0] for message in messages)
    assert all(client.publications() == [{"n": 1}] for client in clients)
    assert node.stats.deliveries == 3


async def test_fan_out_frames_once_per_codec(node: Node, connect: ConnectClient) -> None:
    texts = [await connect(node, str(user), subscribe="news") for user in range(2)]
    binaries = [await connect(node, str(user), codec=ProtobufCodec, subscribe="news") for user in range(2, 5)]
    assert node.hub.binary_subscribers == {"news": 3}
    await node.publish("news", {"n": 1})
    text_messages = [client.transport.written[-1] for client in texts]
    binary_messages = [client.transport.written[-1] for client in binaries]
    assert all(message is text_messages[0] for message in text_messages)
    assert all(message is binary_messages[0] for message in binary_messages)
    assert text_messages[0].opcode == 1 and binary_messages[0].opcode == 2
    assert all(client.publications() == [{"n": 1}] for client in texts)
    assert all(client.publications() == [base64.b64encode(b'{"n":1}').decode()] for client in binaries)
    assert node.stats.deliveries == 5
    assert node.stats.bytes_out == 2 * len(text_messages[0]) + 3 * len(binary_messages[0])


async def test_a_subscriber_that_fails_harms_no_other(
    node: Node, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    clients = [await connect(node, str(user), subscribe="feed:1") for user in range(3)]
    broken = clients[1]

    def fail(message: object) -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a write that fails")

    broken.transport.write = fail  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="wavecast.realtime"):
        position = await node.publish("feed:1", {"n": 1})
    assert position is not None and position.offset == 1
    for client in (clients[0], clients[2]):
        assert client.publications() == [{"n": 1}]
        assert client.session.subscriptions["feed:1"].offset == 1
    # The failing one is disconnected, to reconnect and recover what it didn't get.
    assert broken.transport.closes == [DISCONNECT_SERVER_ERROR]
    assert broken.session.closed
    assert "a write that fails" in caplog.text
    assert node.stats.deliveries == 2


async def test_binary_data_reaches_protobuf_clients_only(node: Node, connect: ConnectClient) -> None:
    text = await connect(node, "1", subscribe="news")
    binary = await connect(node, "2", codec=ProtobufCodec, subscribe="news")
    await node.publish("news", b"\x00\xff")
    assert binary.publications() == [base64.b64encode(b"\x00\xff").decode()]
    # A JSON client can't take it: 3506, as Centrifugo disconnects it.
    assert text.publications() == []
    assert text.closed_with == 3506
    assert node.stats.deliveries == 1
    await node.publish("news", b"[1]")  # bytes that are JSON go to JSON clients as they are
    assert binary.publications()[-1] == base64.b64encode(b"[1]").decode()


async def test_protobuf_subscribers_leaving_are_no_longer_counted(node: Node, connect: ConnectClient) -> None:
    binary = await connect(node, "2", codec=ProtobufCodec)
    await binary.call("subscribe", {"channel": "news"})
    binary.session.disconnect()
    await wait_until(lambda: not node.hub.binary_subscribers, what="the protobuf subscriber to go")


async def test_join_and_leave_in_each_form(node: Node, connect: ConnectClient) -> None:
    text, binary = await connect(node, "1"), await connect(node, "2", codec=ProtobufCodec)
    await text.result("subscribe", {"channel": "chat:1", "join_leave": True})
    await binary.call("subscribe", {"channel": "chat:1", "join_leave": True})
    text.new()
    binary.new()
    node.on_join("chat:1", ClientInfo(client="remote", user="9"))
    assert text.new() == [{"push": {"channel": "chat:1", "join": {"info": {"user": "9", "client": "remote"}}}}]
    assert binary.new() == [{"push": {"channel": "chat:1", "join": {"info": {"user": "9", "client": "remote"}}}}]


async def test_publications_keep_their_order(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="chat:1")
    for n in range(20):
        await node.publish("chat:1", n)
    assert client.publications() == list(range(20))


async def test_no_subscribers_no_work(node: Node) -> None:
    node.on_publication("news", Publication(data=b"1"), None)
    node.on_join("news", ClientInfo(client="c", user="u"))
    assert node.stats.deliveries == 0


async def test_join_and_leave_go_to_subscribers_that_asked(node: Node, connect: ConnectClient) -> None:
    asked, other = await connect(node, "1"), await connect(node, "2")
    await asked.result("subscribe", {"channel": "chat:1", "join_leave": True})
    await other.result("subscribe", {"channel": "chat:1"})
    asked.new()
    info = ClientInfo(client="remote", user="9", conn_info=b'{"a":1}')
    node.on_join("chat:1", info)
    node.on_leave("chat:1", info)
    expected = {"user": "9", "client": "remote", "conn_info": {"a": 1}}
    assert asked.new() == [
        {"push": {"channel": "chat:1", "join": {"info": expected}}},
        {"push": {"channel": "chat:1", "leave": {"info": expected}}},
    ]
    assert other.pushes() == []


# --- channels where subscribers filter by tags or take deltas ---------------------------------

SHAPED = ChannelOptions(
    allow_subscribe_for_client=True,
    history_size=10,
    history_ttl=60,
    allow_tags_filter=True,
    allowed_delta_types=["fossil"],
)


def _eq(key: str, value: str) -> dict[str, str]:
    return {"key": key, "cmp": "eq", "val": value}


async def test_a_filter_is_evaluated_once_per_publication(
    make_node: MakeNode, connect: ConnectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node(channel=SHAPED)
    clients = {}
    for name, tf in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B"), ("all", None)]:
        clients[name] = client = await connect(node, name)
        await client.result("subscribe", {"channel": CHANNEL, **({"tf": _eq("k", tf)} if tf else {})})
    calls: list[object] = []
    match = TagsFilter.match
    monkeypatch.setattr(TagsFilter, "match", lambda self, tags: calls.append(self) or match(self, tags))
    for n, tag in enumerate("ABA"):
        await node.publish(CHANNEL, {"n": n}, tags={"k": tag})
    assert len(calls) == 6  # two distinct filters, three publications
    assert clients["a1"].publications() == clients["a3"].publications() == [{"n": 0}, {"n": 2}]
    assert clients["b2"].publications() == [{"n": 1}]
    assert clients["all"].publications() == [{"n": 0}, {"n": 1}, {"n": 2}]
    # The publications they didn't get still move their position: no gap, no resubscribe.
    assert clients["b1"].session.subscriptions[CHANNEL].offset == 0  # not positioned
    assert node.stats.deliveries == 3 * 2 + 2 * 1 + 3


async def test_positioned_subscribers_move_past_what_their_filter_drops(
    make_node: MakeNode, connect: ConnectClient
) -> None:
    node = await make_node(channel=dataclasses.replace(SHAPED, force_recovery=True))
    client = await connect(node, "1")
    await client.result("subscribe", {"channel": CHANNEL, "tf": _eq("k", "A")})
    for n, tag in enumerate("BBAB"):
        await node.publish(CHANNEL, {"n": n}, tags={"k": tag})
    assert client.publications() == [{"n": 2}]
    assert client.session.subscriptions[CHANNEL].offset == 4
    assert client.pushes("unsubscribe") == []


async def test_a_delta_is_computed_once_per_previous_publication(
    make_node: MakeNode, connect: ConnectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node(channel=SHAPED)
    created: list[bytes] = []
    create = fossil.create
    monkeypatch.setattr(fossil, "create", lambda source, target: created.append(source) or create(source, target))
    board = {"rows": [{"s": f"S{i}", "p": i} for i in range(30)]}
    early = [await connect(node, str(user)) for user in range(3)]
    for client in early:
        assert (await client.result("subscribe", {"channel": CHANNEL, "delta": "fossil"}))["delta"] is True
    await node.publish(CHANNEL, board, delta=True)
    late = await connect(node, "late")
    await late.result("subscribe", {"channel": CHANNEL, "delta": "fossil"})
    board["rows"][3]["p"] = 99
    await node.publish(CHANNEL, board, delta=True)
    assert len(created) == 1  # the early ones share their base; the late one has none yet
    pubs = [client.pushes("pub", CHANNEL) for client in [*early, late]]
    assert [pub["pub"].get("delta", False) for pub in pubs[0]] == [False, True]
    assert [pub["pub"].get("delta", False) for pub in pubs[3]] == [False]
    assert early[0].transport.written[-1] is early[2].transport.written[-1]
    # What each received decodes to the board.
    full = pubs[0][0]["pub"]["data"].encode()
    assert json.loads(fossil.apply(full, pubs[0][1]["pub"]["data"].encode())) == board
    assert json.loads(pubs[3][0]["pub"]["data"]) == board


async def test_shaped_fan_out_ends_the_same_with_either_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Filtered and delta groups go through ``deliver`` too: the twins agree on them."""
    passing, failing = (compile_filter(FilterNode(key="k", cmp="eq", val=value)) for value in "ab")
    publication = Publication(data=b'{"v":2}', offset=OFFSET, tags={"k": "a"}, delta=True)
    results = []
    for twin in TWINS.values():
        monkeypatch.setattr(fanout, "deliver", twin)
        node = Node(_config(allowed_delta_types=["fossil"], allow_tags_filter=True))
        world = build(SITUATIONS | OTHER_TRANSPORTS, node)
        try:
            for index, (session, subscription) in enumerate(world.subscribers.items()):
                subscription.tags_filter = [None, passing, failing, None][index % 4]
                subscription.delta = index % 4 == 3
                subscription.base = b'{"v":1}' if index % 8 == 3 else None
                node.hub.add_subscriber(CHANNEL, session, subscription)
            node.on_publication(CHANNEL, publication, StreamPosition(OFFSET, EPOCH))
            if node._tasks:
                await asyncio.wait(list(node._tasks))
            bases = [subscription.base for subscription in world.subscribers.values()]
            results.append((world.observed(), bases, node.stats.deliveries, node.stats.bytes_out))
        finally:
            world.close()
    assert all(result == results[0] for result in results)
    assert results[0][2] > 0


# --- corking over real sockets -------------------------------------------------------------


async def subscribed_clients(running: NodeServer, channel: str, count: int) -> list[RawClient]:
    clients = [await RawClient.open_to(running, rcvbuf=None) for _ in range(count)]
    for n, client in enumerate(clients):
        await client.command(connect={"token": make_token(f"reader {n}")})
        subscribed = await client.command(subscribe={"channel": channel})
        assert "subscribe" in subscribed, subscribed
    return clients


async def pushes(client: RawClient, count: int) -> list[Any]:
    """Read ``count`` pushes of publications; return their data."""
    data: list[Any] = []
    while len(data) < count:
        data.extend(reply["push"]["pub"]["data"] for reply in await client.recv() if "push" in reply)
    return data


@pytest.mark.parametrize("history", [False, True])
async def test_publications_of_one_turn_reach_each_subscriber_in_one_write(history: bool) -> None:
    # Publications fanned out in the same turn of the loop are corked on every subscriber's
    # connection and leave in one write at its end, in order, with or without a stream.
    options = open_channel() if history else ChannelOptions(allow_subscribe_for_client=True)
    running = await NodeServer.start(node_config(namespaces={"live": options}))
    try:
        clients = await subscribed_clients(running, "live:feed", 3)
        before = [data_segments_received(client.connection.transport) for client in clients]
        for n in range(16):
            await running.node.publish("live:feed", {"n": n})
        for client in clients:
            assert await pushes(client, 16) == [{"n": n} for n in range(16)]
        after = [data_segments_received(client.connection.transport) for client in clients]
        assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
        for client in clients:
            await client.close()
    finally:
        await running.stop()


@pytest.mark.parametrize("batched", [True, False], ids=["one-message", "a-message-each"])
async def test_publish_commands_read_together_reach_each_subscriber_in_one_write(batched: bool) -> None:
    # A client's publish commands that arrive in one read, in one message (a batch, one per
    # line) or a message each, are fanned out in one turn as well.
    running = await NodeServer.start(node_config(namespaces={"live": open_channel()}))
    try:
        clients = await subscribed_clients(running, "live:feed", 2)
        publisher = await RawClient.open_to(running, rcvbuf=None)
        await publisher.command(connect={"token": make_token("publisher")})
        assert "subscribe" in await publisher.command(subscribe={"channel": "live:feed"})
        before = [data_segments_received(client.connection.transport) for client in clients]
        commands = [{"id": 100 + n, "publish": {"channel": "live:feed", "data": {"n": n}}} for n in range(16)]
        if batched:
            await publisher.send("\n".join(json.dumps(command) for command in commands))
        else:
            # Sent in one turn of the client's loop: they leave in one write, and are read together.
            for command in commands:
                await publisher.send(json.dumps(command))
        for client in clients:
            assert await pushes(client, 16) == [{"n": n} for n in range(16)]
        after = [data_segments_received(client.connection.transport) for client in clients]
        assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]
        for client in (*clients, publisher):
            await client.close()
    finally:
        await running.stop()
