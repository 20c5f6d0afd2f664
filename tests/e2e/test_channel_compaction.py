"""Channel compaction (``allow_channel_compaction``): the SDKs offer it in every subscribe
(``flag: 1``); a channel that allows it answers with an ``id`` and numbers itself by it in
publication, join and leave pushes. Seen on the wire with a raw client, and with
centrifuge-python (JSON and protobuf) and centrifuge-js subscribers of one channel, beside
one that doesn't compact, on the memory and Redis engines."""

from __future__ import annotations

import json

import pytest

from wavecast.realtime import ChannelOptions

from ..support.config import node_config, open_channel
from ..support.js import StartJS
from ..support.raw import OpenRaw
from ..support.sdk import Clients, subscribe
from ..support.servers import StartNode, StartWavecast
from ..support.timing import wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

ROOM = open_channel(presence=True, join_leave=True, force_recovery=True, allow_channel_compaction=True)
CONFIG = node_config(namespaces={"room": ROOM, "plain": ChannelOptions(allow_subscribe_for_client=True)})


async def test_the_wire(start_node: StartNode, open_raw: OpenRaw) -> None:
    running = await start_node(CONFIG)
    raw = await open_raw(running, rcvbuf=None)
    await raw.command(connect={"token": make_token("42")})
    compact = await raw.command(subscribe={"channel": "room:a-long-channel-name", "flag": 1, "join_leave": True})
    channel_id = compact["subscribe"]["id"]
    assert channel_id > 0
    other = await raw.command(subscribe={"channel": "room:other", "flag": 1})
    assert other["subscribe"]["id"] not in (0, channel_id)
    # Not offered, or not allowed: the name, as before.
    assert "id" not in (await raw.command(subscribe={"channel": "room:named"}))["subscribe"]
    assert "id" not in (await raw.command(subscribe={"channel": "plain:x", "flag": 1}))["subscribe"]

    await running.node.publish("room:a-long-channel-name", {"n": 1})
    await running.node.publish("room:named", {"n": 2})
    replies = raw.received + await raw.recv() + await raw.recv()
    pushes = [
        {**reply["push"], "pub": _bare(reply["push"]["pub"])} for reply in replies if "pub" in reply.get("push", {})
    ]
    assert pushes == [
        {"id": channel_id, "pub": {"data": {"n": 1}, "offset": 1}},
        {"channel": "room:named", "pub": {"data": {"n": 2}, "offset": 1}},
    ]


def _bare(pub: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in pub.items() if key in ("data", "offset")}


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_python_sdk_receives_numbered_pushes(
    start_node: StartNode, make_client: Clients, use_protobuf: bool
) -> None:
    """Numbered in JSON; in protobuf, named (see test_protobuf_is_declined_and_named)."""
    running = await start_node(CONFIG)
    client, _ = await make_client.connected(running.ws_url, "ann", use_protobuf=use_protobuf)
    events = await subscribe(client, "room:lobby", join_leave=True)
    session = next(iter(running.node.hub.subscribers("room:lobby") or {}))
    assert (session.subscriptions["room:lobby"].channel_id > 0) is not use_protobuf
    # A second channel, so that a push numbered for the wrong one would be noticed.
    other = await subscribe(client, "room:other")

    bob, _ = await make_client.connected(running.ws_url, "bob", use_protobuf=use_protobuf)
    await subscribe(bob, "room:lobby")
    await wait_until(lambda: [ctx.info.user for ctx in events.named("join")] == ["bob"], what="bob's join")
    for n in range(3):
        await running.node.publish("room:lobby", {"n": n} if not use_protobuf else b'{"n": %d}' % n)
    await running.node.publish("room:other", b'{"other": true}' if use_protobuf else {"other": True})
    expected = [{"n": n} for n in range(3)]
    decoded = (lambda data: data) if not use_protobuf else _json
    await wait_until(lambda: [decoded(d) for d in events.data] == expected, what="the publications")
    await wait_until(lambda: [decoded(d) for d in other.data] == [{"other": True}], what="the other channel's")
    await bob.disconnect()
    await wait_until(lambda: [ctx.info.user for ctx in events.named("leave")] == ["bob"], what="bob's leave")


def _json(data: bytes) -> object:
    return json.loads(data)


async def test_js_and_a_named_subscriber_side_by_side(
    start_node: StartNode, start_js: StartJS, make_client: Clients
) -> None:
    running = await start_node(
        node_config(namespaces={"room": ROOM, "named": ChannelOptions(allow_subscribe_for_client=True)})
    )
    js = await start_js(url=running.ws_url, token=make_token("ann"))
    await js.ok("connect")
    await js.ok("subscribe", channel="room:lobby", joinLeave=True)
    await js.ok("subscribe", channel="named:lobby")
    python, _ = await make_client.connected(running.ws_url, "bob")
    await subscribe(python, "room:lobby")
    for n in range(3):
        await running.node.publish("room:lobby", {"n": n})
        await running.node.publish("named:lobby", {"m": n})

    def received(channel: str) -> list[object]:
        return [p["data"] for p in js.named("publication") if p["channel"] == channel]

    await wait_until(lambda: received("room:lobby") == [{"n": n} for n in range(3)], what="the numbered ones")
    await wait_until(lambda: received("named:lobby") == [{"m": n} for n in range(3)], what="the named ones")
    await js.wait("join")


async def test_protobuf_is_declined_and_named(
    start_node: StartNode, start_js: StartJS, make_client: Clients, open_raw: OpenRaw
) -> None:
    """centrifuge-js's protobuf build asks for compaction but can't match numbered pushes to its
    subscriptions, and nothing on the wire tells it from another protobuf SDK: protobuf
    subscribers are answered without an ``id`` and get every publication by name, beside a JSON
    subscriber of the same channel that gets them by number."""
    running = await start_node(CONFIG)
    js = await start_js(url=running.ws_url, token=make_token("ann"), protobuf=True)
    await js.ok("connect")
    await js.ok("subscribe", channel="room:lobby")
    python, _ = await make_client.connected(running.ws_url, "bob", use_protobuf=True)
    events = await subscribe(python, "room:lobby")
    raw = await open_raw(running, rcvbuf=None)
    await raw.command(connect={"token": make_token("eve")})
    assert (await raw.command(subscribe={"channel": "room:lobby", "flag": 1}))["subscribe"]["id"] > 0
    subscribers = running.node.hub.subscribers("room:lobby") or {}
    assert sorted((session.user, sub.channel_id > 0) for session, sub in subscribers.items()) == [
        ("ann", False),
        ("bob", False),
        ("eve", True),
    ]
    for n in range(3):
        await running.node.publish("room:lobby", b'{"n": %d}' % n)
    expected = [{"n": n} for n in range(3)]
    await wait_until(
        lambda: [json.loads(bytes.fromhex(p["data"])) for p in js.named("publication")] == expected,
        what="js's publications",
    )
    await wait_until(lambda: [_json(d) for d in events.data] == expected, what="python's publications")


async def test_on_each_engine(start_on_engine: StartWavecast, start_js: StartJS, make_client: Clients) -> None:
    """Publications, joins and leaves that come back through the engine reach numbered subscribers
    of two channels, each by its own number."""
    room = {
        "allow_subscribe_for_client": True,
        "presence": True,
        "join_leave": True,
        "force_recovery": True,
        "history_size": 10,
        "history_ttl": 60.0,
        "allow_channel_compaction": True,
    }
    server = await start_on_engine(namespaces={"room": room})
    js = await start_js(url=server.ws_url, token=make_token("ann"))
    await js.ok("connect")
    for channel in ("room:a", "room:b"):
        await js.ok("subscribe", channel=channel, joinLeave=True)
    ids = {
        channel: sub.channel_id
        for session in server.node.hub.user_sessions("ann")
        for channel, sub in session.subscriptions.items()
    }
    assert 0 not in ids.values() and ids["room:a"] != ids["room:b"]

    bob, _ = await make_client.connected(server.ws_url, "bob")
    await subscribe(bob, "room:b")
    await js.wait("join", lambda event: event["channel"] == "room:b" and event["user"] == "bob")
    for n in range(3):
        await server.node.publish("room:a", {"a": n})
        await server.node.publish("room:b", {"b": n})

    def received(channel: str) -> list[object]:
        return [p["data"] for p in js.named("publication") if p["channel"] == channel]

    await wait_until(lambda: received("room:a") == [{"a": n} for n in range(3)], what="room:a's")
    await wait_until(lambda: received("room:b") == [{"b": n} for n in range(3)], what="room:b's")
    await bob.disconnect()
    await js.wait("leave", lambda event: event["channel"] == "room:b" and event["user"] == "bob")
