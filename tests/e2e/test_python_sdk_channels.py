"""centrifuge-python against a Node over real sockets: channels, presence, history, RPC."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
from centrifuge import ClientState, ReplyError, StreamPosition, SubscriptionState

from wavecast.codes import Error
from wavecast.exceptions import CommandError
from wavecast.realtime import ChannelOptions, Node, SubscribeContext, SubscribeResult

from ..support.config import node_config, open_channel
from ..support.rpc import with_rpc
from ..support.sdk import Clients, subscribe, subscribe_refused
from ..support.servers import StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

#: A namespace where everything is allowed to subscribers, with history and join/leave.
OPEN = open_channel(presence=True, join_leave=True, history_size=50)


async def test_subscribe_and_publish(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    alice, _ = await make_client.connected(running.ws_url, "alice")
    bob, _ = await make_client.connected(running.ws_url, "bob")
    alice_events = await subscribe(alice, "chat")
    bob_events = await subscribe(bob, "chat")

    await alice.get_subscription("chat").publish({"text": "from alice"})  # type: ignore[union-attr]
    await running.node.publish("chat", {"text": "from the server"})
    await bob.publish("chat", {"text": "from bob"})

    expected = [{"text": "from alice"}, {"text": "from the server"}, {"text": "from bob"}]
    for events in (alice_events, bob_events):
        await wait_until(lambda events=events: len(events.data) == 3, what="three publications")  # type: ignore[misc]
        assert events.data == expected
    publications = [ctx.pub for ctx in bob_events.named("publication")]
    assert [p.offset for p in publications] == [1, 2, 3]
    assert publications[0].info is not None and publications[0].info.user == "alice"
    assert publications[1].info is None
    subscribed = bob_events.named("subscribed")[0]
    assert subscribed.channel == "chat"


async def test_publication_tags_and_info_reach_the_sdk(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    client, _ = make_client(running.ws_url, token=make_token("42", info={"name": "Ann"}))
    await client.connect()
    events = await subscribe(client, "news")
    await running.node.publish("news", b'{"raw":true}', tags={"kind": "raw"})
    await client.publish("news", [1, 2, 3])
    await wait_until(lambda: len(events.data) == 2, what="two publications")
    first, second = (ctx.pub for ctx in events.named("publication"))
    assert (first.data, first.tags) == ({"raw": True}, {"kind": "raw"})
    assert second.data == [1, 2, 3]
    assert second.info is not None and second.info.conn_info == {"name": "Ann"}


async def test_presence_and_presence_stats(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    clients = []
    for user in ("u1", "u2", "u2"):
        client, _ = make_client(running.ws_url, token=make_token(user, info={"user": user}))
        await client.connect()
        await subscribe(client, "room")
        clients.append(client)

    sub = clients[0].get_subscription("room")
    assert sub is not None
    presence = await sub.presence()
    assert set(presence.clients) == {client.client_id for client in clients}
    info = presence.clients[clients[1].client_id]
    assert (info.user, info.conn_info) == ("u2", {"user": "u2"})
    stats = await sub.presence_stats()
    assert (stats.num_clients, stats.num_users) == (3, 2)

    await clients[2].disconnect()
    await wait_until(lambda: running.node.hub.num_sessions == 2, what="the session to close")
    await wait_until(lambda: not running.node._tasks, what="the cleanup")
    stats = await sub.presence_stats()
    assert (stats.num_clients, stats.num_users) == (2, 2)


async def test_presence_refused_when_not_subscribed(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    client, _ = await make_client.connected(running.ws_url, "42")
    with pytest.raises(ReplyError) as raised:
        await client.presence("room")
    assert raised.value.code == 103
    with pytest.raises(ReplyError) as raised:
        await client.history("room")
    assert raised.value.code == 103


async def test_presence_not_available(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=ChannelOptions(allow_subscribe_for_client=True)))
    client, _ = await make_client.connected(running.ws_url, "42")
    await subscribe(client, "room")
    with pytest.raises(ReplyError) as raised:
        await client.presence_stats("room")
    assert raised.value.code == 108


async def test_join_and_leave_seen_by_another_client(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    watcher, _ = await make_client.connected(running.ws_url, "watcher")
    watched = await subscribe(watcher, "lobby", join_leave=True)
    # Without join_leave, a subscriber doesn't get the pushes.
    quiet, _ = await make_client.connected(running.ws_url, "quiet")
    quiet_events = await subscribe(quiet, "lobby")

    visitor, _ = make_client(running.ws_url, token=make_token("visitor", info={"v": 1}))
    await visitor.connect()
    await subscribe(visitor, "lobby")
    join = await watched.wait("join", lambda ctx: ctx.info.user == "visitor")
    assert join.info.client == visitor.client_id
    assert join.info.conn_info == {"v": 1}

    await visitor.get_subscription("lobby").unsubscribe()  # type: ignore[union-attr]
    leave = await watched.wait("leave", lambda ctx: ctx.info.user == "visitor")
    assert leave.info.client == join.info.client

    def visitor_joins() -> int:
        return sum(ctx.info.client == visitor.client_id for ctx in watched.named("join"))

    sub = visitor.get_subscription("lobby")
    assert sub is not None
    await sub.subscribe()
    await sub.ready()
    await wait_until(lambda: visitor_joins() == 2, what="a second join")
    await visitor.disconnect()
    await wait_until(lambda: len(watched.named("leave")) == 2, what="a leave on disconnect")
    assert not quiet_events.named("join") and not quiet_events.named("leave")
    users = {ctx.info.user for ctx in watched.named("join")}
    # The watcher saw the quiet client join too, but not itself.
    assert users == {"quiet", "visitor"}


async def test_force_push_join_leave(start_node: StartNode, make_client: Clients) -> None:
    options = ChannelOptions(allow_subscribe_for_client=True, presence=True, force_push_join_leave=True)
    running = await start_node(node_config(channel=options))
    watcher, _ = await make_client.connected(running.ws_url, "watcher")
    watched = await subscribe(watcher, "lobby")
    visitor, _ = await make_client.connected(running.ws_url, "visitor")
    await subscribe(visitor, "lobby")
    await watched.wait("join", lambda ctx: ctx.info.user == "visitor")


async def test_history(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    for n in range(1, 11):
        await running.node.publish("feed", {"n": n})
    client, _ = await make_client.connected(running.ws_url, "42")
    await subscribe(client, "feed")
    sub = client.get_subscription("feed")
    assert sub is not None

    everything = await sub.history(limit=-1)
    assert [p.data["n"] for p in everything.publications] == list(range(1, 11))
    assert [p.offset for p in everything.publications] == list(range(1, 11))
    assert everything.offset == 10
    epoch = everything.epoch
    assert epoch

    position_only = await sub.history()
    assert position_only.publications == []
    assert (position_only.offset, position_only.epoch) == (10, epoch)

    first_three = await sub.history(limit=3)
    assert [p.data["n"] for p in first_three.publications] == [1, 2, 3]

    since = await sub.history(limit=3, since=StreamPosition(offset=4, epoch=epoch))
    assert [p.data["n"] for p in since.publications] == [5, 6, 7]

    latest = await sub.history(limit=3, reverse=True)
    assert [p.data["n"] for p in latest.publications] == [10, 9, 8]

    before = await sub.history(limit=2, since=StreamPosition(offset=4, epoch=epoch), reverse=True)
    assert [p.data["n"] for p in before.publications] == [3, 2]

    with pytest.raises(ReplyError) as raised:
        await sub.history(limit=3, since=StreamPosition(offset=4, epoch="another epoch"))
    assert raised.value.code == 112


async def test_history_is_trimmed_to_its_size(start_node: StartNode, make_client: Clients) -> None:
    options = ChannelOptions(
        allow_subscribe_for_client=True, history_size=3, history_ttl=60, allow_history_for_client=True
    )
    running = await start_node(node_config(channel=options))
    for n in range(1, 6):
        await running.node.publish("feed", n)
    client, _ = await make_client.connected(running.ws_url, "42")
    result = await client.history("feed", limit=-1)
    assert [p.data for p in result.publications] == [3, 4, 5]
    assert result.offset == 5


# --- RPC -------------------------------------------------------------------------------------

RPC = with_rpc("sum", "raw", "nothing", "forbidden", "busy")


async def test_rpc(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(setup=RPC)
    client, _ = await make_client.connected(running.ws_url, "42")
    assert (await client.rpc("sum", {"a": 1, "b": 2})).data == {"sum": 3, "user": "42"}
    assert (await client.rpc("raw", None)).data == ["already", "json"]
    assert (await client.rpc("nothing", {})).data is None


@pytest.mark.parametrize(
    ("method", "code", "message", "temporary"),
    [
        ("forbidden", 1403, "not for you", False),
        ("busy", 1503, "try later", True),
        ("missing", 104, "method not found", False),
    ],
)
async def test_refused_rpc(
    start_node: StartNode, make_client: Clients, method: str, code: int, message: str, temporary: bool
) -> None:
    running = await start_node(setup=RPC)
    client, events = await make_client.connected(running.ws_url, "42")
    with pytest.raises(ReplyError) as raised:
        await client.rpc(method, {"a": 1})
    assert (raised.value.code, raised.value.message, raised.value.temporary) == (code, message, temporary)
    # The connection is fine.
    assert (await client.rpc("sum", {"a": 2, "b": 2})).data["sum"] == 4
    assert len(events.named("connected")) == 1


# --- refused subscriptions, tokens and hooks ------------------------------------------------------


async def test_refused_subscription(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(namespaces={"private": ChannelOptions()}))
    client, events = await make_client.connected(running.ws_url, "42")
    unsubscribed = await subscribe_refused(client, "private:room")
    assert (unsubscribed.code, unsubscribed.reason) == (103, "permission denied")
    unsubscribed = await subscribe_refused(client, "nowhere:room")
    assert (unsubscribed.code, unsubscribed.reason) == (102, "unknown channel")
    unsubscribed = await subscribe_refused(client, "x" * 300)
    assert unsubscribed.code == 107
    assert len(events.named("connected")) == 1
    assert running.node.hub.num_subscriptions == 0


async def test_subscription_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(namespaces={"secret": ChannelOptions(protected=True, presence=True)}))
    requested: list[str] = []

    async def get_sub_token(channel: str) -> str:
        requested.append(channel)
        return make_token("42", channel=channel, info={"seat": 7})

    client, _ = await make_client.connected(running.ws_url, "42")
    await subscribe(client, "secret:plans", get_token=get_sub_token)
    assert requested == ["secret:plans"]
    presence = await running.node.presence("secret:plans")
    assert presence[client.client_id].chan_info == b'{"seat":7}'

    # A token for another channel or user, or a bad signature, is refused.
    other_channel = make_token("42", channel="secret:other")
    unsubscribed = await subscribe_refused(client, "secret:x", token=other_channel)
    assert unsubscribed.code == 103
    unsubscribed = await subscribe_refused(client, "secret:y", token=make_token("43", channel="secret:y"))
    assert unsubscribed.code == 103
    # Without a token, a protected channel is refused even though clients may subscribe.
    unsubscribed = await subscribe_refused(client, "secret:z")
    assert unsubscribed.code == 103


async def test_expired_subscription_token_is_replaced(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(namespaces={"secret": ChannelOptions(protected=True)}))
    calls = 0

    async def get_sub_token(channel: str) -> str:
        nonlocal calls
        calls += 1
        return make_token("42", channel=channel)

    client, _ = await make_client.connected(running.ws_url, "42")
    events = await subscribe(
        client, "secret:a", token=make_token("42", channel="secret:a", ttl=-5), get_token=get_sub_token
    )
    error = events.named("error")[0].error
    assert isinstance(error, ReplyError) and error.code == 109
    assert calls == 1


async def test_subscription_token_refresh(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(namespaces={"secret": ChannelOptions(protected=True)}))
    tokens: list[str] = []

    async def get_sub_token(channel: str) -> str:
        tokens.append(make_token("42", channel=channel, ttl=1.5))
        return tokens[-1]

    client, _ = await make_client.connected(running.ws_url, "42")
    events = await subscribe(client, "secret:a", get_token=get_sub_token)
    session = running.node.hub.session(client.client_id)
    assert session is not None
    first = session.subscriptions["secret:a"].expire_at
    await wait_until(lambda: len(tokens) >= 2, timeout=3000 * MS, what="a subscription refresh")
    await wait_until(lambda: session.subscriptions["secret:a"].expire_at > first, what="a later expiry")
    await running.node.publish("secret:a", "still here")
    await events.wait("publication")
    assert not events.named("error")


async def test_subscription_that_is_not_refreshed_expires(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(
        node_config(
            namespaces={"secret": ChannelOptions(protected=True)},
            presence_ttl=1.0,
            presence_update_interval=0.1,
            client_expired_close_delay=0.1,
        )
    )
    client, client_events = await make_client.connected(running.ws_url, "42")
    # A subscription token, and no get_token to refresh it with.
    events = await subscribe(client, "secret:a", token=make_token("42", channel="secret:a", ttl=1.5))
    connecting = await client_events.wait("connecting", lambda ctx: ctx.code != 0, timeout=4000 * MS)
    assert (connecting.code, connecting.reason) == (3006, "subscription expired")
    # Back with the same expired token, the SDK is refused and gives up.
    unsubscribed = await events.wait("unsubscribed")
    assert unsubscribed.code == 1  # centrifuge-python's "unauthorized"
    await wait_until(lambda: running.node.hub.num_subscriptions == 0, what="no subscription left")


async def test_on_subscribe_hook(start_node: StartNode, make_client: Clients) -> None:
    def setup(node: Node) -> None:
        @node.subscribing
        async def subscribing(ctx: SubscribeContext) -> SubscribeResult:
            if ctx.channel == "vip:lounge" and ctx.session.user != "boss":
                raise CommandError(Error(1403, "members only"))
            return SubscribeResult(data=b'{"welcome":"' + ctx.channel.encode() + b'"}')

    running = await start_node(node_config(namespaces={"vip": ChannelOptions()}), setup=setup)
    client, _ = await make_client.connected(running.ws_url, "42")
    unsubscribed = await subscribe_refused(client, "vip:lounge")
    assert (unsubscribed.code, unsubscribed.reason) == (1403, "members only")
    boss, _ = await make_client.connected(running.ws_url, "boss")
    events = await subscribe(boss, "vip:lounge")
    assert events.named("subscribed")[0].data == {"welcome": "vip:lounge"}


# --- server-side subscriptions -------------------------------------------------------------------


async def test_server_side_subscriptions_from_the_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(namespaces={"alerts": ChannelOptions(history_size=10, history_ttl=60)}))
    client, events = make_client(running.ws_url, token=make_token("42", channels=["alerts:all", "news"]))
    await client.connect()
    await events.wait("connected")
    await wait_until(lambda: len(events.named("subscribed")) == 2, what="two server-side subscriptions")
    assert {ctx.channel for ctx in events.named("subscribed")} == {"alerts:all", "news"}
    await running.node.publish("alerts:all", {"level": "high"})
    await running.node.publish("news", "headline")
    await wait_until(lambda: len(events.named("publication")) == 2, what="two publications")
    assert [(ctx.channel, ctx.pub.data) for ctx in events.named("publication")] == [
        ("alerts:all", {"level": "high"}),
        ("news", "headline"),
    ]


async def test_personal_channel(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(
        node_config(user_subscribe_to_personal=True, namespaces={"personal": ChannelOptions(presence=True)})
    )
    client, events = await make_client.connected(running.ws_url, "42")
    subscribed = await events.wait("subscribed")
    assert subscribed.channel == "personal:#42"
    await running.node.publish("personal:#42", {"for": "42"})
    await running.node.publish("personal:#43", {"for": "43"})
    publication = await events.wait("publication")
    assert (publication.channel, publication.pub.data) == ("personal:#42", {"for": "42"})
    await asyncio.sleep(50 * MS)
    assert len(events.named("publication")) == 1
    assert list(await running.node.presence("personal:#42")) == [client.client_id]


async def test_server_api_subscribe_and_unsubscribe(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    _, events = await make_client.connected(running.ws_url, "42")
    await events.wait("connected")
    assert await running.node.subscribe("42", "updates") == 1
    subscribed = await events.wait("subscribed")
    assert subscribed.channel == "updates"
    await running.node.publish("updates", 1)
    await events.wait("publication")
    assert await running.node.unsubscribe("42", "updates") == 1
    unsubscribed = await events.wait("unsubscribed")
    assert unsubscribed.channel == "updates"


async def test_node_unsubscribe_pushes_to_the_client(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    client, client_events = await make_client.connected(running.ws_url, "42")
    other, _ = await make_client.connected(running.ws_url, "43")
    events = await subscribe(client, "room")
    other_events = await subscribe(other, "room")

    assert await running.node.unsubscribe("42", "room") == 1
    unsubscribed = await events.wait("unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (2000, "server unsubscribe")
    assert client.get_subscription("room").state == SubscriptionState.UNSUBSCRIBED  # type: ignore[union-attr]

    await running.node.publish("room", "after")
    await other_events.wait("publication")
    await asyncio.sleep(50 * MS)
    assert events.data == []
    assert len(client_events.named("connected")) == 1
    # The client may subscribe again.
    await client.get_subscription("room").subscribe()  # type: ignore[union-attr]
    await wait_until(lambda: len(events.named("subscribed")) == 2, what="a second subscribe")


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
async def test_node_send_reaches_the_sdk(
    start_node: StartNode, make_client: Clients, caplog: pytest.LogCaptureFixture, use_protobuf: bool
) -> None:
    # centrifuge-python 0.7 has no handler for the message push yet (centrifuge-js emits
    # "message"): it decodes the push, logs it and skips it, and the connection goes on.
    caplog.set_level(logging.DEBUG, logger="centrifuge")
    running = await start_node(node_config())
    client, events = await make_client.connected(running.ws_url, "alice", use_protobuf=use_protobuf)
    await events.wait("connected")
    assert await running.node.send("alice", {"text": "your export is ready"}) == 1

    def received() -> list[Any]:
        # logging keeps a lone dict argument as the record's args.
        replies = [
            record.args
            for record in caplog.records
            if record.name == "centrifuge" and record.msg == "received push reply %s"
        ]
        return [reply["push"]["message"] for reply in replies if isinstance(reply, dict) and "message" in reply["push"]]

    await wait_until(lambda: bool(received()), what="the message push")
    [message] = received()
    # In protobuf mode the SDK logs the push in proto3's JSON mapping: bytes in base64.
    data = json.loads(base64.b64decode(message["data"])) if use_protobuf else message["data"]
    assert data == {"text": "your export is ready"}
    with pytest.raises(ReplyError) as raised:
        await client.rpc("nope", b"{}" if use_protobuf else {})
    assert raised.value.code == 104
    assert client.state == ClientState.CONNECTED


async def test_many_publications_arrive_in_order(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(channel=OPEN))
    client, _ = await make_client.connected(running.ws_url, "42")
    events = await subscribe(client, "burst")
    for n in range(300):
        await running.node.publish("burst", n)
    await wait_until(lambda: len(events.data) == 300, timeout=5000 * MS, what="300 publications")
    assert events.data == list(range(300))
