"""Slow-consumer policies over real sockets: a raw client completes connect and subscribe,
then stops reading while the server publishes; an SDK client next to it reads normally."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from wavecast.codes import DISCONNECT_SLOW
from wavecast.exceptions import ConnectionClosed
from wavecast.realtime import ChannelOptions, Session, SlowConsumerPolicy

from ..support.config import node_config
from ..support.raw import OpenRaw, RawClient
from ..support.sdk import Clients, subscribe
from ..support.servers import NodeServer, StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

QUEUE = 64 * 1024


def slow_config(policy: SlowConsumerPolicy) -> Any:
    options = ChannelOptions(
        allow_subscribe_for_client=True,
        slow_consumer=policy,
        conflation_key_tag="key" if policy == "conflate" else None,
    )
    return node_config(client_queue_max_size=QUEUE, namespaces={"live": options})


async def stalled_subscriber(running: NodeServer, open_raw: OpenRaw, channel: str) -> tuple[RawClient, Session]:
    """Connect and subscribe a raw client, then leave it unread, with small socket buffers."""
    # A queue of one message: the client stops reading from its socket right away.
    raw = await open_raw(running, max_queue=1)
    connected = await raw.command(connect={"token": make_token("slow")})
    session = running.node.hub.session(connected["connect"]["client"])
    assert session is not None
    subscribed = await raw.command(subscribe={"channel": channel})
    assert "subscribe" in subscribed, subscribed
    # Small kernel buffers on the server's side too, so that its writes back up quickly.
    local = raw.connection.local_address
    (connection,) = [c for c in running.server.connections if c.remote_address == local]
    connection.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return raw, session


async def test_disconnect_policy_closes_a_stalled_reader_with_3008(
    start_node: StartNode, make_client: Clients, open_raw: OpenRaw
) -> None:
    running = await start_node(slow_config("disconnect"))
    reader, _ = await make_client.connected(running.ws_url, "reader")
    reader_events = await subscribe(reader, "live:feed")
    raw, session = await stalled_subscriber(running, open_raw, "live:feed")

    payload = "x" * 16000
    published = 0
    while not session.closed and published < 1000:
        await running.node.publish("live:feed", {"n": published, "payload": payload})
        published += 1
        assert session.queued <= QUEUE
        await asyncio.sleep(0)
    assert session.closed
    assert session.disconnect_reason == DISCONNECT_SLOW
    assert running.node.stats.slow_consumer_actions["disconnect"] == 1
    assert running.node.stats.disconnects[DISCONNECT_SLOW.code] == 1

    # The reader next to it got everything, and stays connected.
    await wait_until(lambda: len(reader_events.data) == published, timeout=5000 * MS, what="every publication")
    assert [data["n"] for data in reader_events.data] == list(range(published))
    assert running.node.hub.session(reader.client_id) is not None

    # The stalled client reads again: what had reached it, in order, then the close frame.
    received: list[int] = []
    with pytest.raises(ConnectionClosed) as raised:
        while True:
            for reply in await raw.recv():
                received.append(reply["push"]["pub"]["data"]["n"])
    assert (raised.value.code, raised.value.reason) == (3008, "slow")
    assert received == list(range(len(received)))
    assert len(received) < published


@pytest.mark.parametrize("policy", ["conflate", "drop_oldest"])
async def test_lossy_policies_keep_the_latest_values(
    start_node: StartNode, make_client: Clients, open_raw: OpenRaw, policy: SlowConsumerPolicy
) -> None:
    running = await start_node(slow_config(policy))
    reader, _ = await make_client.connected(running.ws_url, "reader")
    reader_events = await subscribe(reader, "live:prices")
    raw, session = await stalled_subscriber(running, open_raw, "live:prices")

    keys = ["a", "b", "c", "d"]
    payload = "x" * 8000
    rounds = 150
    largest_outbox = 0
    for n in range(rounds):
        for key in keys:
            await running.node.publish("live:prices", {"key": key, "n": n, "payload": payload}, tags={"key": key})
            largest_outbox = max(largest_outbox, session.queued)
        await asyncio.sleep(0)
    published = rounds * len(keys)
    # Memory stayed bounded, and the policy acted without disconnecting the client.
    assert largest_outbox <= QUEUE
    assert running.node.stats.slow_consumer_actions[policy] > 0
    assert not session.closed
    if policy == "conflate":
        # What waits for the client is one publication per key: the latest.
        assert len(session.outbox or ()) == len(keys)

    # The stalled client reads again.
    received: list[tuple[str, int]] = []
    latest: dict[str, int] = {}

    async with asyncio.timeout(5000 * MS):
        while not all(latest.get(key) == rounds - 1 for key in keys):
            for reply in await raw.recv():
                data = reply["push"]["pub"]["data"]
                # Per key, values only move forward: nothing older comes after something newer.
                assert data["n"] > latest.get(data["key"], -1)
                latest[data["key"]] = data["n"]
                received.append((data["key"], data["n"]))
    assert len(received) < published
    if policy == "conflate":
        # First what had reached the socket before the client stalled, then the latest values.
        assert sorted(received[-len(keys) :]) == [(key, rounds - 1) for key in keys]
        assert all(n < rounds - 1 for _, n in received[: -len(keys)])
    await wait_until(lambda: len(reader_events.data) == published, timeout=5000 * MS, what="every publication")
    assert not session.closed
