"""Prometheus metrics at /metrics: names, types, labels, and values that follow what clients do."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from cent import AsyncClient, DisconnectRequest, PublishRequest
from cent.dto import Disconnect
from centrifuge import ReplyError

from wavecast.asyncio import ClientConnection
from wavecast.codes import DISCONNECT_SLOW
from wavecast.server.metrics import LoopMonitor

from ..support.config import API_KEY
from ..support.http import Scrape, scrape_metrics
from ..support.jwks import JWKSServer, SigningKey
from ..support.raw import slow_subscriber
from ..support.sdk import Clients, subscribe
from ..support.servers import AppServer, StartWavecast
from ..support.timing import MS, wait_until

pytestmark = pytest.mark.interop


async def scrape(running: AppServer) -> Scrape:
    return await scrape_metrics(running.url)


async def test_metric_families(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    metrics = await scrape(running)
    for name in ("wavecast_connections", "wavecast_users", "wavecast_subscriptions", "wavecast_channels"):
        assert metrics.type(name) == "gauge"
        assert metrics.value(name) == 0
    for name in (
        "wavecast_publications",
        "wavecast_messages_received",
        "wavecast_messages_sent",
        "wavecast_bytes_received",
        "wavecast_bytes_sent",
        "wavecast_commands",
        "wavecast_command_errors",
        "wavecast_disconnects",
        "wavecast_slow_consumer_actions",
        "wavecast_emulation_requests",
    ):
        assert metrics.type(name) == "counter", name
    assert metrics.value("wavecast_messages_sent_total") == 0
    assert metrics.type("wavecast_publish_to_write_seconds") == "histogram"
    buckets = [s for s in metrics.samples("wavecast_publish_to_write_seconds") if s.name.endswith("_bucket")]
    assert buckets[-1].labels == {"le": "+Inf"}
    assert [b.value for b in buckets] == [0] * len(buckets)
    # The process's own metrics come along.
    assert "process_resident_memory_bytes" in metrics.families


async def test_values_follow_clients(start_wavecast: StartWavecast, make_client: Clients) -> None:
    running = await start_wavecast()
    alice, alice_events = await make_client.connected(running.ws_url, "alice")
    bob, _ = await make_client.connected(running.ws_url, "bob")
    alice_lobby = await subscribe(alice, "chat:lobby")
    bob_lobby = await subscribe(bob, "chat:lobby")
    await subscribe(bob, "news:today")

    metrics = await scrape(running)
    assert metrics.value("wavecast_connections") == 2
    assert metrics.value("wavecast_users") == 2
    assert metrics.value("wavecast_subscriptions") == 3
    assert metrics.value("wavecast_channels") == 2
    assert metrics.value("wavecast_commands_total", method="connect") == 2
    assert metrics.value("wavecast_commands_total", method="subscribe") == 3
    assert metrics.value("wavecast_messages_received_total") >= 5
    assert metrics.value("wavecast_bytes_received_total") > 0

    # A publication from a client reaches both subscribers: two messages sent, one latency observed.
    await alice.get_subscription("chat:lobby").publish({"text": "hi"})  # type: ignore[union-attr]
    await alice_lobby.wait("publication")
    await bob_lobby.wait("publication")
    async with AsyncClient(running.url + "/api", API_KEY) as api:
        await api.publish(PublishRequest(channel="news:today", data={"n": 1}))
    metrics = await scrape(running)
    assert metrics.value("wavecast_commands_total", method="publish") == 1
    assert metrics.value("wavecast_publications_total") == 2
    assert metrics.value("wavecast_messages_sent_total") == 3
    assert metrics.value("wavecast_bytes_sent_total") > 0
    assert metrics.value("wavecast_publish_to_write_seconds_count") == 2
    assert metrics.value("wavecast_publish_to_write_seconds_bucket", le="+Inf") == 2
    assert metrics.value("wavecast_publish_to_write_seconds_sum") >= 0

    # An error reply is counted by code.
    with pytest.raises(ReplyError) as raised:
        await bob.get_subscription("news:today").publish({"text": "not allowed"})  # type: ignore[union-attr]
    assert raised.value.code == 103
    metrics = await scrape(running)
    assert metrics.value("wavecast_command_errors_total", code="103") == 1

    # Disconnects are counted by code, and the gauges come down.
    async with AsyncClient(running.url + "/api", API_KEY) as api:
        await api.disconnect(DisconnectRequest(user="alice", disconnect=Disconnect(code=4501, reason="bye")))
    await alice_events.wait("disconnected")
    await wait_until(lambda: running.node.hub.num_sessions == 1, what="alice gone")
    metrics = await scrape(running)
    assert metrics.value("wavecast_disconnects_total", code="4501") == 1
    assert metrics.value("wavecast_connections") == 1
    assert metrics.value("wavecast_users") == 1
    assert metrics.value("wavecast_subscriptions") == 2


async def read_until_end(connection: ClientConnection) -> list[dict[str, Any]]:
    """Read the publications' data until the one with ``"end"``, which every policy keeps."""
    received: list[dict[str, Any]] = []
    while not received or "end" not in received[-1]:
        message = await asyncio.wait_for(connection.recv(), 5000 * MS)
        assert isinstance(message, str)
        received.extend(json.loads(line)["push"]["pub"]["data"] for line in message.splitlines())
    return received


def slow_config(policy: str, **options: Any) -> dict[str, Any]:
    return {
        "client": {"client_queue_max_size": 64 * 1024},
        "websocket": {"write_limit": 4096, "compression": False},
        "namespaces": {"live": {"allow_subscribe_for_client": True, "slow_consumer": policy, **options}},
    }


async def test_slow_consumer_counter(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(**slow_config("disconnect"))
    async with slow_subscriber(running, "live:feed") as (_, session):
        payload = "x" * 16000
        for n in range(1000):
            if session.closed:
                break
            await running.node.publish("live:feed", {"n": n, "payload": payload})
            await asyncio.sleep(0)
        assert session.closed
        assert session.disconnect_reason == DISCONNECT_SLOW

    metrics = await scrape(running)
    assert metrics.value("wavecast_slow_consumer_actions_total", action="disconnect") == 1
    assert metrics.value("wavecast_disconnects_total", code=str(DISCONNECT_SLOW.code)) == 1


async def test_slow_consumer_drop_oldest_counts_each_dropped_publication(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(**slow_config("drop_oldest"))
    async with slow_subscriber(running, "live:feed") as (connection, session):
        payload = "x" * 16000
        published = 300
        for n in range(published):
            await running.node.publish("live:feed", {"n": n, "payload": payload})
            await asyncio.sleep(0)
        await running.node.publish("live:feed", {"end": True})
        received = await read_until_end(connection)
        assert not session.closed
    # Every publication past the first few waited in the queue; only the dropped ones count.
    dropped = published + 1 - len(received)
    assert 0 < dropped < published
    metrics = await scrape(running)
    assert metrics.value("wavecast_slow_consumer_actions_total", action="drop_oldest") == dropped
    assert metrics.value("wavecast_slow_consumer_actions_total", action="disconnect") == 0
    assert metrics.value("wavecast_slow_consumer_actions_total", action="conflate") == 0


async def test_slow_consumer_conflate_counts_each_replaced_publication(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(**slow_config("conflate", conflation_key_tag="key"))
    async with slow_subscriber(running, "live:feed") as (connection, session):
        # Five keys of 8 KB each fit the 64 KiB queue: conflation alone keeps it bounded.
        payload = "x" * 8000
        published = 300
        for n in range(published):
            await running.node.publish("live:feed", {"n": n, "payload": payload}, tags={"key": str(n % 5)})
            await asyncio.sleep(0)
        await running.node.publish("live:feed", {"end": True}, tags={"key": "end"})
        received = await read_until_end(connection)
        assert not session.closed
    replaced = published + 1 - len(received)
    assert 0 < replaced < published
    # The latest of each key arrived last.
    assert sorted(data["n"] % 5 for data in received[-6:-1]) == [0, 1, 2, 3, 4]
    metrics = await scrape(running)
    assert metrics.value("wavecast_slow_consumer_actions_total", action="conflate") == replaced
    assert metrics.value("wavecast_slow_consumer_actions_total", action="drop_oldest") == 0
    assert metrics.value("wavecast_slow_consumer_actions_total", action="disconnect") == 0


async def test_metrics_disabled(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(metrics={"enabled": False})
    answer = await running.get("/metrics")
    assert answer.status == 404


async def test_jwks_fetches_and_keys(
    start_wavecast: StartWavecast, make_client: Clients, jwks_server: JWKSServer
) -> None:
    key = SigningKey("key-a")
    jwks_server.keys = [key]
    running = await start_wavecast(
        client={"token_jwks_public_endpoint": jwks_server.url, "token_jwks_refresh_interval": 100 * MS}
    )
    _, events = await make_client.connected(running.ws_url, token=key.sign("ann"))
    await events.wait("connected")
    metrics = await scrape(running)
    assert metrics.type("wavecast_jwks_fetches") == "counter"
    assert metrics.value("wavecast_jwks_fetches_total", endpoint=jwks_server.url, outcome="ok") >= 1
    assert metrics.value("wavecast_jwks_fetches_total", endpoint=jwks_server.url, outcome="failed") == 0
    assert metrics.value("wavecast_jwks_keys", endpoint=jwks_server.url) == 1

    await jwks_server.stop()

    async def failed() -> bool:
        metrics = await scrape(running)
        return metrics.value("wavecast_jwks_fetches_total", endpoint=jwks_server.url, outcome="failed") >= 1

    await wait_until(failed, what="a failed fetch")
    assert (await scrape(running)).value("wavecast_jwks_keys", endpoint=jwks_server.url) == 1


async def test_event_loop_gauges(start_wavecast: StartWavecast, make_client: Clients) -> None:
    running = await start_wavecast()
    metrics = await scrape(running)
    assert metrics.type("wavecast_asyncio_tasks") == "gauge"
    assert metrics.type("wavecast_event_loop_lag_seconds") == "gauge"
    assert metrics.value("wavecast_event_loop_lag_seconds") >= 0
    idle = metrics.value("wavecast_asyncio_tasks")
    # Each connection runs its handler in a task of its own.
    for user in ("alice", "bob", "carol"):
        await make_client.connected(running.ws_url, user)
    assert (await scrape(running)).value("wavecast_asyncio_tasks") >= idle + 3


async def test_loop_monitor_measures_a_blocked_loop() -> None:
    monitor = LoopMonitor(interval=0.01)
    assert list(monitor.collect()) == []
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        # A callback that holds the loop for 200 ms makes the next timer fire that much late.
        time.sleep(0.2)
        await wait_until(lambda: monitor.lag >= 0.1)
        await wait_until(lambda: monitor.lag < 0.1)
        extra = asyncio.get_running_loop().create_task(asyncio.sleep(10))
        families = {family.name: family.samples[0].value for family in monitor.collect()}
        assert families["wavecast_asyncio_tasks"] == len(asyncio.all_tasks())
        assert families["wavecast_event_loop_lag_seconds"] == monitor.lag
        extra.cancel()
    finally:
        monitor.stop()
        monitor.stop()
    lag = monitor.lag
    time.sleep(0.05)
    await asyncio.sleep(0.05)
    assert monitor.lag == lag
