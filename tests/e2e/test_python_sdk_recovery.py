"""Recovery with centrifuge-python: the server drops the connection while it keeps publishing,
the SDK reconnects, resubscribes from its last offset, and misses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from wavecast.codes import DISCONNECT_FORCE_RECONNECT, DISCONNECT_SLOW

from ..support.config import node_config
from ..support.sdk import Clients, SubEvents, subscribe
from ..support.servers import NodeServer, StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token
from .test_python_sdk_channels import OPEN

pytestmark = pytest.mark.interop

STREAM = "rec:stream"


def recovery_config(history_size: int = 1000) -> object:
    from wavecast.realtime import ChannelOptions

    return node_config(
        namespaces={
            "rec": ChannelOptions(
                allow_subscribe_for_client=True,
                history_size=history_size,
                history_ttl=300,
                force_recovery=True,
            ),
            "plain": OPEN,
        }
    )


async def _disconnect_3011(running: NodeServer) -> None:
    await running.node.disconnect("42", DISCONNECT_FORCE_RECONNECT)


async def _disconnect_3008(running: NodeServer) -> None:
    await running.node.disconnect("42", DISCONNECT_SLOW)


async def _abort_transport(running: NodeServer) -> None:
    # The TCP connection dies without a close frame, as when a network path breaks.
    for connection in list(running.server.connections):
        connection.transport.abort()


DROPS: dict[str, Callable[[NodeServer], Awaitable[None]]] = {
    "disconnect-3011": _disconnect_3011,
    "disconnect-3008": _disconnect_3008,
    "abort": _abort_transport,
}


@pytest.mark.parametrize("drop", list(DROPS))
async def test_recovery_after_the_server_drops_the_connection(
    start_node: StartNode, make_client: Clients, drop: str
) -> None:
    running = await start_node(recovery_config())
    client, client_events = await make_client.connected(running.ws_url, "42")
    events = await subscribe(client, STREAM)
    first = events.named("subscribed")[0]
    assert first.recoverable and first.positioned
    assert not first.was_recovering

    total = 200
    published: list[int] = []

    async def publish() -> None:
        for n in range(1, total + 1):
            await running.node.publish(STREAM, n)
            published.append(n)
            await asyncio.sleep(1 * MS)

    publisher = asyncio.get_running_loop().create_task(publish())
    try:
        await wait_until(lambda: len(events.data) >= 30, what="30 publications")
        await DROPS[drop](running)
        await client_events.wait("connecting", lambda ctx: ctx.code != 0)
        # Publications go on while the client is away.
        await publisher
    finally:
        publisher.cancel()

    await wait_until(lambda: len(events.data) >= total, timeout=5000 * MS, what="every publication")
    await asyncio.sleep(20 * MS)  # nothing more comes: no duplicate at the end
    assert events.data == published == list(range(1, total + 1))
    offsets = [ctx.pub.offset for ctx in events.named("publication")]
    assert offsets == list(range(1, total + 1))
    second = events.named("subscribed")[1]
    assert second.was_recovering and second.recovered
    assert len(client_events.named("connected")) == 2
    # Some publications came through recovery: the stream had gone past what the client
    # had received when it subscribed again.
    index = events.events.index(("subscribed", second))
    received_before = sum(name == "publication" for name, _ in events.events[:index])
    assert second.stream_position.offset > received_before


async def test_recovery_of_a_server_side_subscription(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(recovery_config())
    client, events = make_client(running.ws_url, token=make_token("42", channels=[STREAM]))
    await client.connect()
    await events.wait("subscribed")
    for n in range(1, 6):
        await running.node.publish(STREAM, n)
    await wait_until(lambda: len(events.named("publication")) == 5, what="five publications")
    await running.node.disconnect("42", DISCONNECT_FORCE_RECONNECT)
    for n in range(6, 11):
        await running.node.publish(STREAM, n)
    await wait_until(lambda: len(events.named("connected")) == 2, what="a reconnect")
    await wait_until(lambda: len(events.named("publication")) >= 10, what="the missed publications")
    await asyncio.sleep(20 * MS)
    assert [ctx.pub.data for ctx in events.named("publication")] == list(range(1, 11))
    resubscribed = events.named("subscribed")[1]
    assert resubscribed.was_recovering and resubscribed.recovered


async def test_no_recovery_when_the_epoch_changed(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(recovery_config())
    client, client_events = await make_client.connected(running.ws_url, "42")
    events = await subscribe(client, STREAM)
    for n in range(1, 6):
        await running.node.publish(STREAM, n)
    await wait_until(lambda: len(events.data) == 5, what="five publications")
    old_epoch = events.named("subscribed")[0].stream_position.epoch

    # A restart: a new Node with a new in-memory stream, on the same address.
    port = running.port
    await running.stop()
    restarted = await start_node(recovery_config(), port=port)
    await wait_until(lambda: len(events.named("subscribed")) == 2, timeout=5000 * MS, what="a resubscribe")
    second = events.named("subscribed")[1]
    assert second.was_recovering
    assert not second.recovered
    assert second.stream_position.epoch != old_epoch

    await restarted.node.publish(STREAM, "new life")
    publication = await events.wait("publication", lambda ctx: ctx.pub.data == "new life")
    assert publication.pub.offset == 1
    assert len(client_events.named("connected")) == 2


async def test_no_recovery_when_history_was_trimmed(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(recovery_config(history_size=5))
    client, _ = await make_client.connected(running.ws_url, "42")
    events = await subscribe(client, STREAM)
    await running.node.publish(STREAM, 1)
    await events.wait("publication")
    await running.node.disconnect("42", DISCONNECT_FORCE_RECONNECT)
    # More than the history keeps, before the client is back.
    for n in range(2, 12):
        await running.node.publish(STREAM, n)
    await wait_until(lambda: len(events.named("subscribed")) == 2, what="a resubscribe")
    second = events.named("subscribed")[1]
    assert second.was_recovering and not second.recovered
    assert second.stream_position.offset == 11
    await running.node.publish(STREAM, 12)
    await events.wait("publication", lambda ctx: ctx.pub.data == 12)
    # Nothing older than the live stream arrives as if it were recovered.
    assert events.data == [1, 12]


async def test_a_channel_without_recovery_just_resubscribes(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(recovery_config())
    client, _ = await make_client.connected(running.ws_url, "42")
    events: SubEvents = await subscribe(client, "plain:room")
    await running.node.disconnect("42", DISCONNECT_FORCE_RECONNECT)
    await running.node.publish("plain:room", "missed")
    await wait_until(lambda: len(events.named("subscribed")) == 2, what="a resubscribe")
    assert not events.named("subscribed")[1].was_recovering
    await running.node.publish("plain:room", "live")
    await events.wait("publication")
    assert events.data == ["live"]
