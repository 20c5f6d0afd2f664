"""session: one client's lifecycle: connect deadline, pings, bad input, rate limits, closing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from wavecast.codes import DISCONNECT_SERVER_ERROR, DISCONNECT_SLOW
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import ConnectingContext, ConnectResult, DisconnectContext, Node
from wavecast.realtime.codec import ProtobufCodec

from ..support.timing import MS, wait_until
from ..support.tokens import make_token
from .helpers import Client, ConnectClient, MakeNode, NewClient


async def test_connect_in_time_stops_the_stale_timer(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_stale_close_delay=20 * MS)
    client = await connect(node)
    await asyncio.sleep(40 * MS)
    assert not client.session.closed


async def test_stale_close(make_node: MakeNode, new_client: Callable[[Node], Client]) -> None:
    node = await make_node(client_stale_close_delay=10 * MS)
    client = new_client(node)
    await wait_until(lambda: client.session.closed, what="the stale close")
    assert client.closed_with == 3502
    assert client.session.disconnect_reason is not None and client.session.disconnect_reason.reason == "stale"
    assert node.stats.disconnects[3502] == 1


async def test_commands_before_connect(node: Node, new_client: Callable[[Node], Client]) -> None:
    client = new_client(node)
    await client.send({"id": 1, "subscribe": {"channel": "news"}})
    assert client.closed_with == 3501
    assert client.transport.written == []


@pytest.mark.parametrize("message", ["{}", '{"id":1}', '{"id":1,"ping":{}}'])
async def test_anything_but_connect_first_is_refused(
    node: Node, new_client: Callable[[Node], Client], message: str
) -> None:
    client = new_client(node)
    await client.send_raw(message)
    assert client.closed_with == 3501


@pytest.mark.parametrize("message", ["", "not json", '{"id":"x"}', '{"id":1,"ping":{}}\n{'])
async def test_malformed_json(node: Node, connect: ConnectClient, message: str) -> None:
    client = await connect(node)
    client.new()
    await client.send_raw(message)
    assert client.closed_with == 3501
    assert client.new() == []


async def test_malformed_json_before_connect(node: Node, new_client: Callable[[Node], Client]) -> None:
    client = new_client(node)
    await client.send_raw("{")
    assert client.closed_with == 3501


async def test_a_command_without_id_is_refused(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.send({"subscribe": {"channel": "news"}})
    assert client.closed_with == 3501


async def test_a_command_without_method(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    await client.send({"id": 7})
    assert client.new()[-1] == {"id": 7, "error": {"code": 104, "message": "method not found"}}
    assert not client.session.closed


async def test_empty_command_is_a_pong(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.new()
    await client.send_raw("{}")
    assert client.new() == []
    assert not client.session.closed


async def test_several_commands_in_one_message(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.new()
    await client.send_raw(
        '{"id":2,"subscribe":{"channel":"a"}}\n{"id":3,"subscribe":{"channel":"b"}}\n{"id":4,"ping":{}}'
    )
    assert [reply["id"] for reply in client.new()] == [2, 3, 4]
    assert set(client.session.subscriptions) == {"a", "b"}


async def test_commands_after_a_disconnect_in_the_same_message_are_ignored(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.new()
    await client.send_raw('{"subscribe":{"channel":"a"}}\n{"id":3,"ping":{}}')
    assert client.closed_with == 3501
    assert client.new() == []


async def test_messages_after_close_are_ignored(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.session.disconnect()
    client.new()
    await client.send({"id": 9, "ping": {}})
    assert client.new() == []


async def test_server_pings(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_ping_interval=10 * MS, client_pong_timeout=5000 * MS)
    client = await connect(node)
    connect_reply = client.new()[0]["connect"]
    # Whole seconds on the wire: a 10 ms interval reads as 0 there, with pong still asked for.
    assert connect_reply["pong"] is True
    await wait_until(lambda: client.transport.payloads.count(b"{}") >= 3, what="three pings")
    for _ in range(3):
        await client.send_raw("{}")
        await asyncio.sleep(10 * MS)
    assert not client.session.closed


async def test_protobuf_pings_and_pongs(make_node: MakeNode, connect: ConnectClient) -> None:
    # The server's ping is an empty Reply, a zero length; the pong, an empty Command.
    node = await make_node(client_ping_interval=10 * MS, client_pong_timeout=300 * MS)
    client = await connect(node, codec=ProtobufCodec)
    assert client.new()[0]["connect"]["pong"] is True
    for _ in range(3):
        count = client.transport.payloads.count(b"\x00")
        await wait_until(lambda count=count: client.transport.payloads.count(b"\x00") > count, what="a ping")  # type: ignore[misc]
        await client.send_raw(b"\x00")
    assert all(message.opcode == 2 for message in client.transport.written)
    assert not client.session.closed


@pytest.mark.parametrize("protobuf", [False, True])
async def test_a_message_of_the_other_kind_is_refused(node: Node, connect: ConnectClient, protobuf: bool) -> None:
    # Text for JSON, binary for protobuf: whatever a message holds, its kind must match.
    client = await connect(node, codec=ProtobufCodec) if protobuf else await connect(node)
    client.new()
    await client.send_raw("{}" if protobuf else b"{}")
    assert client.closed_with == 3501
    assert client.new() == []


async def test_malformed_protobuf(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, codec=ProtobufCodec)
    client.new()
    await client.send_raw(b"\x10\x08\x01")  # a length past the end of the message
    assert client.closed_with == 3501
    assert client.new() == []


async def test_protobuf_commands_before_connect(node: Node, new_client: NewClient) -> None:
    client = new_client(node, ProtobufCodec)
    await client.send({"id": 1, "subscribe": {"channel": "news"}})
    assert client.closed_with == 3501


async def test_no_pong(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_ping_interval=10 * MS, client_pong_timeout=20 * MS)
    client = await connect(node)
    await wait_until(lambda: client.session.closed, what="the no-pong disconnect")
    assert client.closed_with == 3012
    assert b"{}" in client.transport.payloads


async def test_pongs_keep_the_connection(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_ping_interval=10 * MS, client_pong_timeout=300 * MS)
    client = await connect(node)
    pings = 0
    async with asyncio.timeout(2000 * MS):
        while pings < 5:
            count = client.transport.payloads.count(b"{}")
            if count > pings:
                pings = count
                await client.send_raw("{}")
            await asyncio.sleep(2 * MS)
    assert not client.session.closed


async def test_no_pings_when_off(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_ping_interval=0)
    client = await connect(node)
    connect_reply = client.new()[0]["connect"]
    assert "ping" not in connect_reply
    assert "pong" not in connect_reply
    assert client.session._ping_tick is None


async def test_first_pings_of_clients_connected_together_spread(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_ping_interval=10.0)
    clients = [await connect(node) for _ in range(50)]
    ticks = [client.session._ping_tick for client in clients]
    wheel = clients[0].session._wheel(0)
    assert len(wheel) == 50
    # In the second half of the interval (10 s: 100 buckets of 0.1 s), in many buckets.
    now_tick = asyncio.get_running_loop().time() / wheel.resolution
    assert all(tick is not None and now_tick + 45 <= tick <= now_tick + 101 for tick in ticks)
    assert len(set(ticks)) > 10
    for client in clients:
        client.session.disconnect()
    # A closed session leaves nothing in the loop's wheels.
    assert len(wheel) == 0
    assert all(client.session._ping_tick is None for client in clients)


async def test_too_many_commands(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(command_rate=0.001, command_burst=2)
    client = await connect(node)  # connect is never limited
    assert (await client.call("ping"))["ping"] == {}
    assert (await client.call("ping"))["ping"] == {}
    reply = await client.call("ping")
    assert reply["error"] == {"code": 111, "message": "too many requests", "temporary": True}
    assert not client.session.closed


async def test_unexpected_error_in_a_command(
    node: Node, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    @node.rpc("boom")
    async def boom(context: object) -> None:
        raise RuntimeError("boom")

    client = await connect(node)
    with caplog.at_level(logging.ERROR, logger="wavecast.realtime"):
        reply = await client.call("rpc", {"method": "boom"})
    assert reply["error"] == {"code": 100, "message": "internal server error", "temporary": True}
    assert "failed" in caplog.text
    assert node.stats.errors[100] == 1


async def test_closed_by_transport(node: Node, connect: ConnectClient) -> None:
    contexts: list[DisconnectContext] = []

    @node.disconnected
    async def on_disconnect(context: DisconnectContext) -> None:
        contexts.append(context)

    client = await connect(node, subscribe="chat:1")
    client.session.closed_by_transport()
    assert client.transport.closes == []
    assert node.hub.session(client.session.client) is None
    await wait_until(lambda: len(contexts) == 1, what="on_disconnect")
    assert contexts[0].disconnect.code == 3000
    assert contexts[0].session is client.session
    assert await node.presence("chat:1") == {}
    assert node.channels() == {}


async def test_fail(node: Node, connect: ConnectClient, caplog: pytest.LogCaptureFixture) -> None:
    client = await connect(node)
    with caplog.at_level(logging.ERROR, logger="wavecast.realtime"):
        client.session.fail(ValueError("oops"))
    assert client.transport.closes == [DISCONNECT_SERVER_ERROR]
    assert "oops" in caplog.text


async def test_the_outbox_exists_only_while_messages_wait(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert client.session.outbox is None
    client.transport.is_writable = False
    client.session.send(PreparedMessage(b'{"push":{}}', text=True))
    client.session.send(PreparedMessage(b'{"push":{"x":1}}', text=True))
    assert client.session.outbox is not None and client.session.queued == 27
    written = len(client.transport.written)
    client.transport.resume()
    assert len(client.transport.written) == written + 2
    assert client.session.outbox is None and client.session.queued == 0


async def test_disconnect_clears_the_outbox(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.transport.is_writable = False
    client.session.send(PreparedMessage(b'{"push":{}}', text=True))
    assert client.session.queued
    written = len(client.transport.written)
    client.session.disconnect()
    assert client.session.queued == 0
    client.transport.resume()
    assert len(client.transport.written) == written
    # Nothing is sent once closed.
    client.session.send(PreparedMessage(b'{"push":{}}', text=True))
    assert client.session.queued == 0


async def test_replies_alone_overflowing_the_outbox_disconnect(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_queue_max_size=100)
    client = await connect(node)
    client.transport.is_writable = False
    for _ in range(6):
        await client.send({"id": 9, "ping": {}})
    assert client.transport.closes == [DISCONNECT_SLOW]
    assert node.stats.slow_consumer_actions["disconnect"] == 1


async def test_replies_wait_for_a_writable_transport(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.new()
    client.transport.is_writable = False
    await client.send({"id": 2, "ping": {}})
    await client.send({"id": 3, "ping": {}})
    assert client.new() == []
    client.transport.resume()
    assert [reply["id"] for reply in client.new()] == [2, 3]


async def test_drain_stops_when_the_transport_blocks_again(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.new()
    client.transport.is_writable = False
    for command_id in (2, 3, 4):
        await client.send({"id": command_id, "ping": {}})

    def write_once(message: PreparedMessage) -> None:
        client.transport.written.append(message)
        client.transport.is_writable = False

    client.transport.write = write_once  # type: ignore[method-assign]
    client.transport.resume()
    assert [reply["id"] for reply in client.new()] == [2]
    client.transport.resume()
    assert [reply["id"] for reply in client.new()] == [3]
    assert len(client.session.outbox or ()) == 1


# --- connection expiry ------------------------------------------------------------------


async def test_an_expired_connection_is_closed(make_node: MakeNode, new_client: Callable[[Node], Client]) -> None:
    node = await make_node(client_expired_close_delay=10 * MS)

    @node.connecting
    async def on_connecting(context: ConnectingContext) -> ConnectResult:
        return ConnectResult(user="42", expire_at=int(time.time()))

    client = new_client(node)
    result = await client.result("connect")
    assert (result["expires"], result["ttl"]) == (True, 1)
    await wait_until(lambda: client.session.closed, what="the expiry")
    assert client.closed_with == 3005


async def test_a_refreshed_connection_is_not_closed(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_expired_close_delay=10 * MS)
    client = await connect(node)
    session = client.session
    session.set_expiry(int(time.time()))
    # Refreshed meanwhile: the timer finds a later expiry and waits again.
    session.expire_at = int(time.time()) + 3600
    await asyncio.sleep(40 * MS)
    assert not session.closed
    assert session._expire_tick is not None
    session.set_expiry(0)
    assert session._expire_tick is None


async def test_refresh_with_a_token(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(client_expired_close_delay=10 * MS)
    client = await connect(node, exp=int(time.time()) + 3600)
    assert client.session.expire_at
    result = await client.result("refresh", {"token": make_token("42", ttl=7200, info={"v": 2})})
    assert result["client"] == client.session.client
    assert result["expires"] is True
    assert 7100 < result["ttl"] <= 7200
    assert client.session.info == b'{"v":2}'


async def test_subscription_expiry(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
    client.session.check_subscription_expiry()
    assert not client.session.closed
    client.session.subscriptions["news"].expire_at = int(time.time()) - 3600
    client.session.check_subscription_expiry()
    assert client.closed_with == 3006


async def test_client_info(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, "42", info={"a": 1})
    info = client.session.client_info()
    assert (info.client, info.user, info.conn_info, info.chan_info) == (client.session.client, "42", b'{"a":1}', None)


async def test_a_late_ping_after_close_sends_nothing(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    client.session.disconnect()
    client.new()
    client.session._ping()
    assert client.new() == []
