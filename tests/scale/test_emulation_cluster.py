"""HTTP-streaming and SSE behind haproxy without sticky sessions: two ``wavecast serve`` nodes on
one Redis, haproxy balancing every request round-robin, so that a client's emulation POSTs land
on both nodes and those that miss the node of its stream are forwarded over the control channel.
centrifuge-js connects, subscribes, publishes, calls RPCs, reads presence and history and
recovers after a cut; and when the node of its stream is killed, it moves to the other node and
recovers, with what was published counted as the chaos tests count it. HTTP-streaming in
Protobuf too, whose POSTs carry bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from wavecast.codes import DISCONNECT_FORCE_RECONNECT

from ..support.cluster import CHAOS_CHANNEL, ChaosReport, Publisher, StartNodes, cluster_config, num_clients, settle
from ..support.haproxy import StartHaproxy
from ..support.http import api, http, scrape_metrics
from ..support.js import JSClient, StartJS
from ..support.redis import RedisServer
from ..support.serve import ServeProcess
from ..support.timing import MS, wait_until
from ..support.tokens import make_token
from ..support.tools import ROOT

STREAMS = ("http_stream", "sse")
S = 1000 * MS


def streams_config(redis: RedisServer) -> dict[str, Any]:
    """Both fallbacks on, presence and history for subscribers, and the RPC handlers of
    ``tests/support/rpc.py``."""
    return cluster_config(
        redis,
        namespaces={"rec": {"allow_presence_for_subscriber": True, "allow_history_for_subscriber": True}},
        server={"app": "tests.support.rpc:setup_all", "app_dir": str(ROOT)},
        http_stream={"enabled": True},
        sse={"enabled": True},
    )


async def emulation_counts(node: ServeProcess) -> dict[str, float]:
    """What the node did with the emulation POSTs that reached it, by outcome."""
    metrics = await scrape_metrics(node.url)
    return {
        sample.labels["outcome"]: sample.value
        for sample in metrics.samples("wavecast_emulation_requests")
        if sample.name.endswith("_total")
    }


@pytest.mark.parametrize("transport", STREAMS)
async def test_a_stream_client_through_round_robin_haproxy(
    own_redis: RedisServer, start_nodes: StartNodes, start_haproxy: StartHaproxy, start_js: StartJS, transport: str
) -> None:
    nodes = await start_nodes(streams_config(own_redis), 2)
    proxy = await start_haproxy(nodes, balance="roundrobin")
    js = await start_js(**proxy.endpoint(transport), token=make_token("ann"))
    await js.ok("connect")
    connected = await js.wait("connected")
    assert connected["transport"] == transport
    await js.ok("subscribe", channel="rec:feed")

    # Every command from here is a POST, half of them to the node without the stream.
    for n in range(1, 6):
        await js.ok("publish", channel="rec:feed", data={"n": n})
    await wait_until(lambda: len(js.named("publication")) == 5, what="five publications")
    assert [event["data"] for event in js.named("publication")] == [{"n": n} for n in range(1, 6)]
    for a in range(4):
        assert await js.ok("rpc", method="sum", data={"a": a, "b": 1}) == {"data": {"sum": a + 1, "user": "ann"}}
    presence = await js.ok("presence", channel="rec:feed")
    assert [info["user"] for info in presence["clients"].values()] == ["ann"]
    history = await js.ok("history", channel="rec:feed", limit=10)
    assert [pub["data"] for pub in history["publications"]] == [{"n": n} for n in range(1, 6)]

    # The POSTs reached both nodes: the stream's ran them, the other forwarded them to it.
    counts = [await emulation_counts(node) for node in nodes]
    owner = 0 if counts[0].get("delivered") else 1
    assert counts[owner].get("delivered", 0) >= 5, counts
    assert counts[1 - owner].get("forwarded_delivered", 0) >= 5, counts
    assert not any(outcome != "delivered" and not outcome.endswith("_delivered") for c in counts for outcome in c)

    # A cut: the node that holds ann disconnects her (the disconnect API acts on the node it is
    # called on); what is published meanwhile is recovered on the node she comes back to.
    cut = {"code": DISCONNECT_FORCE_RECONNECT.code, "reason": "cut"}
    for node in nodes:
        await api(node.url, "disconnect", {"user": "ann", "disconnect": cut})
    for n in range(6, 11):
        await api(proxy.url, "publish", {"channel": "rec:feed", "data": {"n": n}})
    second = await js.wait("subscribed", lambda event: js.named("subscribed").index(event) == 1, timeout=10_000 * MS)
    assert second["wasRecovering"] and second["recovered"]
    await wait_until(lambda: len(js.named("publication")) >= 10, what="the recovered publications")
    assert [event["data"] for event in js.named("publication")] == [{"n": n} for n in range(1, 11)]
    await js.ok("publish", channel="rec:feed", data={"n": 11})
    await js.wait("publication", lambda event: event["data"] == {"n": 11})


async def test_a_protobuf_stream_client_through_round_robin_haproxy(
    own_redis: RedisServer, start_nodes: StartNodes, start_haproxy: StartHaproxy, start_js: StartJS
) -> None:
    # The protobuf build's POSTs carry length-delimited commands as bytes, forwarded as such.
    nodes = await start_nodes(streams_config(own_redis), 2)
    proxy = await start_haproxy(nodes, balance="roundrobin")
    js = await start_js(**proxy.endpoint("http_stream"), token=make_token("ann"), protobuf=True)
    await js.ok("connect")
    await js.ok("subscribe", channel="rec:feed")
    updates = [bytes([n, 0, 0xFF, n]) for n in range(1, 5)]
    for update in updates:
        await js.ok("publish", channel="rec:feed", data=update.hex())
        assert await js.ok("rpc", method="reverse", data=update.hex()) == {"data": update[::-1].hex()}
    await wait_until(lambda: len(js.named("publication")) == 4, what="four publications")
    assert [bytes.fromhex(event["data"]) for event in js.named("publication")] == updates
    history = await js.ok("history", channel="rec:feed", limit=10)
    assert [bytes.fromhex(pub["data"]) for pub in history["publications"]] == updates
    counts = [await emulation_counts(node) for node in nodes]
    assert sorted(bool(c.get("forwarded_delivered")) for c in counts) == [False, True], counts
    assert sum(c.get("forwarded_delivered", 0) for c in counts) >= 4, counts


async def test_the_node_of_the_streams_killed_under_traffic(
    own_redis: RedisServer,
    start_nodes: StartNodes,
    start_haproxy: StartHaproxy,
    start_js: StartJS,
    chaos_report: Callable[[str], ChaosReport],
) -> None:
    report = chaos_report("stream node killed")
    nodes = await start_nodes(streams_config(own_redis), 2)
    proxy = await start_haproxy(nodes, balance="roundrobin")
    clients: dict[str, JSClient] = {}
    # The index of the node that holds each client's stream.
    holders: dict[str, int] = {}
    for index, transport in enumerate(STREAMS * 3):
        if index % 2:
            # A client opens its stream and POSTs its subscribe, so round-robin would put every
            # stream on one node: one more request between two clients spreads them.
            await http("GET", proxy.url + "/ready")
        before = await num_clients(nodes[0])
        user = f"user{index}"
        clients[user] = js = await start_js(**proxy.endpoint(transport), token=make_token(user))
        await js.ok("connect")
        await js.ok("subscribe", channel=CHAOS_CHANNEL)
        holders[user] = 0 if await num_clients(nodes[0]) > before else 1
    # The node with the most streams dies; the streams on the other go on through it.
    killed = max((0, 1), key=list(holders.values()).count)
    victim, staying = nodes[killed], nodes[1 - killed]
    on_victim = [clients[user] for user, holder in holders.items() if holder == killed]
    # Publishing through the node that stays: round-robin would send some to the dead one.
    with Publisher(report, lambda n: staying.url, 20.0) as publisher:
        await asyncio.sleep(1.0)
        victim.kill()
        # Their streams end; they connect again through haproxy, to the node that stays.
        for js in on_victim:
            await js.wait(
                "connected", lambda event, js=js: js.named("connected").index(event) == 1, timeout=20_000 * MS
            )
        await asyncio.sleep(1.0)
        await publisher.stopped()

    def received(js: JSClient) -> Callable[[], list[int]]:
        return lambda: [event["data"]["n"] for event in js.named("publication")]

    await settle(report, {user: received(js) for user, js in clients.items()}, 20_000 * MS)
    resubscribed = [event for js in on_victim for event in js.named("subscribed")[1:]]
    report.extra.update(moved=len(on_victim), not_recovered=sum(not event["recovered"] for event in resubscribed))
    report.check()
    assert len(resubscribed) == len(on_victim)
    # The streams on the node that stayed went on: their POSTs, half of them to the dead node
    # until haproxy's checks mark it down, went to the other through haproxy's redispatch.
    assert all(len(js.named("connected")) == 1 for js in clients.values() if js not in on_victim)
    assert report.extra["not_recovered"] == 0
    assert await num_clients(staying) == len(clients)
    # Every client's commands, POSTed through haproxy to the one node left, reach its session.
    for user, js in clients.items():
        assert await js.ok("rpc", method="sum", data={"a": 1, "b": 2}) == {"data": {"sum": 3, "user": user}}
