"""Several ``wavecast serve`` nodes on different ports sharing one Redis, three Redis shards, or
NATS beside Redis: publications (to JSON and protobuf clients), presence, join and leave,
history and the server API work across them, and a client that reconnects to another node
recovers what it missed."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable

from centrifuge import Client

from ..support.cluster import Deployment, Relay, StartNodes, cluster_config, num_clients
from ..support.http import api
from ..support.sdk import ClientEvents, Clients, subscribe
from ..support.timing import MS, TIMEOUT_FACTOR, wait_until


async def connected(make_client: Clients, url: str, user: str) -> tuple[Client, ClientEvents]:
    client, events = await make_client.connected(url, user)
    await events.wait("connected")
    return client, events


async def test_publications_reach_subscribers_on_every_node(
    redis_deployment: Deployment, start_nodes: StartNodes, make_client: Clients
) -> None:
    one, two = await start_nodes(cluster_config(redis_deployment), 2)
    ann, _ = await connected(make_client, one.ws_url, "ann")
    bob, _ = await connected(make_client, two.ws_url, "bob")
    ann_events = await subscribe(ann, "chat:room")
    bob_events = await subscribe(bob, "chat:room")
    await api(one.url, "publish", {"channel": "chat:room", "data": {"n": 1}})
    await api(two.url, "publish", {"channel": "chat:room", "data": {"n": 2}})
    sub = bob.get_subscription("chat:room")
    assert sub is not None
    await sub.publish({"n": 3})
    expected = [{"n": 1}, {"n": 2}, {"n": 3}]
    for events in (ann_events, bob_events):
        await wait_until(lambda events=events: events.data == expected, timeout=5000 * MS, what="three publications")
    # One stream behind both nodes: consecutive offsets whichever node published.
    assert [ctx.pub.offset for ctx in ann_events.named("publication")] == [1, 2, 3]
    assert [ctx.pub.offset for ctx in bob_events.named("publication")] == [1, 2, 3]
    # Either node answers channels for both (tests/scale/test_cluster_view.py has more).
    assert (await api(one.url, "channels"))["result"]["channels"] == {"chat:room": {"num_clients": 2}}
    assert (await api(two.url, "channels"))["result"]["channels"] == {"chat:room": {"num_clients": 2}}


async def test_json_and_protobuf_clients_on_different_nodes(
    redis_deployment: Deployment, start_nodes: StartNodes, make_client: Clients
) -> None:
    one, two = await start_nodes(cluster_config(redis_deployment), 2)
    binary, _ = await make_client.connected(one.ws_url, "ann", use_protobuf=True)
    text, _ = await make_client.connected(two.ws_url, "bob")
    binary_events = await subscribe(binary, "rec:mixed")
    text_events = await subscribe(text, "rec:mixed")
    await api(two.url, "publish", {"channel": "rec:mixed", "data": {"n": 1}})
    sub = binary.get_subscription("rec:mixed")
    assert sub is not None
    await sub.publish(b'{"n":2}')
    await wait_until(lambda: len(text_events.data) == 2, timeout=5000 * MS, what="two publications, as JSON")
    await wait_until(lambda: len(binary_events.data) == 2, timeout=5000 * MS, what="two publications, as bytes")
    assert text_events.data == [{"n": 1}, {"n": 2}]
    assert [json.loads(data) for data in binary_events.data] == [{"n": 1}, {"n": 2}]
    assert [ctx.pub.offset for ctx in binary_events.named("publication")] == [1, 2]


async def test_presence_join_and_leave_across_nodes(
    redis_deployment: Deployment, start_nodes: StartNodes, make_client: Clients
) -> None:
    one, two = await start_nodes(cluster_config(redis_deployment), 2)
    ann, _ = await connected(make_client, one.ws_url, "ann")
    ann_events = await subscribe(ann, "chat:room", join_leave=True)
    bob, _ = await connected(make_client, two.ws_url, "bob")
    await subscribe(bob, "chat:room", join_leave=True)
    # Ann may see her own join too, from Redis, as Centrifugo's clients may.
    join = await ann_events.wait("join", lambda ctx: ctx.info.user == "bob")

    for node in (one, two):
        presence = (await api(node.url, "presence", {"channel": "chat:room"}))["result"]["presence"]
        assert sorted(info["user"] for info in presence.values()) == ["ann", "bob"]
        stats = (await api(node.url, "presence_stats", {"channel": "chat:room"}))["result"]
        assert stats == {"num_clients": 2, "num_users": 2}

    await bob.disconnect()
    leave = await ann_events.wait("leave")
    assert leave.info.user == "bob"
    assert leave.info.client == join.info.client
    stats = (await api(two.url, "presence_stats", {"channel": "chat:room"}))["result"]
    assert stats == {"num_clients": 1, "num_users": 1}


async def test_the_presence_of_a_dead_node_expires_while_the_others_refresh_theirs(
    redis_deployment: Deployment, start_nodes: StartNodes, make_client: Clients
) -> None:
    ttl = 2.0
    config = cluster_config(redis_deployment, client={"presence_ttl": ttl, "presence_update_interval": 0.4})
    one, two = await start_nodes(config, 2)
    ann, _ = await connected(make_client, one.ws_url, "ann")
    await subscribe(ann, "chat:room")
    bob, _ = await connected(make_client, two.ws_url, "bob")
    await subscribe(bob, "chat:room")

    # SIGKILL: no leave, no cleanup; only the expiry of what node two stops refreshing.
    two.kill()

    async def users() -> list[str]:
        presence = (await api(one.url, "presence", {"channel": "chat:room"}))["result"]["presence"]
        return sorted(info["user"] for info in presence.values())

    async with asyncio.timeout(ttl * 3 * TIMEOUT_FACTOR):
        while await users() != ["ann"]:
            await asyncio.sleep(100 * MS)
    # Past the TTL again: node one keeps its client present.
    await asyncio.sleep(ttl * 1.2)
    assert await users() == ["ann"]


async def test_history_and_its_removal_across_nodes(redis_deployment: Deployment, start_nodes: StartNodes) -> None:
    one, two = await start_nodes(cluster_config(redis_deployment), 2)
    for n in range(1, 4):
        await api(one.url if n % 2 else two.url, "publish", {"channel": "chat:room", "data": {"n": n}})
    history = (await api(two.url, "history", {"channel": "chat:room", "limit": -1}))["result"]
    assert [p["data"] for p in history["publications"]] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert history == (await api(one.url, "history", {"channel": "chat:room", "limit": -1}))["result"]

    await api(two.url, "history_remove", {"channel": "chat:room"})
    after = (await api(one.url, "history", {"channel": "chat:room", "limit": -1}))["result"]
    assert after == {"publications": [], "offset": 3, "epoch": history["epoch"]}


async def test_a_client_reconnects_to_another_node_and_recovers(
    redis_deployment: Deployment,
    start_nodes: StartNodes,
    make_client: Clients,
    relay: Callable[[int], Awaitable[Relay]],
) -> None:
    one, two = await start_nodes(cluster_config(redis_deployment), 2)
    switch = await relay(one.port)
    client, events = await connected(make_client, switch.ws_url, "ann")
    received = await subscribe(client, "rec:feed")
    first = received.named("subscribed")[0]
    assert first.recoverable and first.positioned
    for n in range(1, 4):
        await api(one.url, "publish", {"channel": "rec:feed", "data": {"n": n}})
    await wait_until(lambda: len(received.data) == 3, what="three publications")
    assert await num_clients(one) == 1

    # Node one goes away; until the client gets through to node two, three more are published.
    switch.switch(None)
    await one.stop(signal.SIGTERM)
    for n in range(4, 7):
        await api(two.url, "publish", {"channel": "rec:feed", "data": {"n": n}})
    switch.switch(two.port)

    again = await received.wait("subscribed", lambda ctx: ctx.was_recovering, timeout=10_000 * MS)
    assert again.recovered
    assert again.stream_position is not None and first.stream_position is not None
    assert again.stream_position.epoch == first.stream_position.epoch
    await wait_until(lambda: len(received.data) == 6, timeout=5000 * MS, what="six publications")
    assert received.data == [{"n": n} for n in range(1, 7)]
    assert await num_clients(two) == 1
    assert len(events.named("connected")) == 2
