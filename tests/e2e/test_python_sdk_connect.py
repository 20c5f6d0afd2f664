"""centrifuge-python against a Node over real sockets: connecting, tokens, refresh, disconnects."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from centrifuge import ClientDisconnectedError, ClientState, ReplyError

from wavecast.asyncio import connect
from wavecast.codes import DISCONNECT_FORCE_NO_RECONNECT, DISCONNECT_FORCE_RECONNECT, Disconnect
from wavecast.exceptions import ConnectionClosed
from wavecast.realtime import ChannelOptions, ConnectingContext, ConnectResult

from ..support.config import node_config
from ..support.raw import OpenRaw
from ..support.sdk import Clients
from ..support.servers import StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop


class TokenSource:
    """A ``get_token`` callback of the SDK: each call signs a new token for user 42 with
    ``claims``, and keeps it in :attr:`tokens`."""

    def __init__(self, **claims: Any) -> None:
        self.claims = claims
        self.tokens: list[str] = []

    async def __call__(self) -> str:
        self.tokens.append(make_token("42", **self.claims))
        return self.tokens[-1]


async def test_connect_with_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    client, events = await make_client.connected(running.ws_url, "42")
    connected = await events.wait("connected")
    assert client.state == ClientState.CONNECTED
    assert connected.client == client.client_id
    session = running.node.hub.session(client.client_id)
    assert session is not None
    assert session.user == "42"
    assert not events.named("error")


async def test_connect_with_token_info_and_connect_data(start_node: StartNode, make_client: Clients) -> None:
    seen: list[ConnectingContext] = []

    def setup(node):  # type: ignore[no-untyped-def]
        @node.connecting
        async def connecting(ctx: ConnectingContext) -> ConnectResult:
            seen.append(ctx)
            assert ctx.token_user is not None
            return ConnectResult(user=ctx.token_user, info=b'{"role":"admin"}', data=b'{"welcome":true}')

    running = await start_node(setup=setup)
    _, events = await make_client.connected(running.ws_url, "7", data={"hello": "server"}, name="e2e")
    connected = await events.wait("connected")
    assert connected.data == {"welcome": True}
    assert seen[0].data is not None and json.loads(seen[0].data) == {"hello": "server"}
    assert seen[0].name == "e2e"


async def test_connect_refused_for_bad_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    client, events = make_client(running.ws_url, token=make_token("42", secret="another-secret-of-at-least-32-bytes!"))
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (3500, "invalid token")
    assert client.state == ClientState.DISCONNECTED
    assert not events.named("connected")
    assert running.node.hub.num_sessions == 0


async def test_connect_refused_for_garbage_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    client, events = make_client(running.ws_url, token="not.a.jwt")
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert disconnected.code == 3500
    assert client.state == ClientState.DISCONNECTED


async def test_connect_refused_for_a_subscription_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    client, events = make_client(running.ws_url, token=make_token("42", channel="secret:1"))
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (3500, "invalid token")
    # 3500 is terminal: the SDK stops instead of connecting again.
    await asyncio.sleep(500 * MS)
    assert client.state == ClientState.DISCONNECTED
    assert running.node.stats.commands["connect"] == 1
    assert len(events.named("connecting")) == 1
    assert not events.named("connected")
    assert running.node.hub.num_sessions == 0


async def test_expired_token_gets_a_new_one(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    get_token = TokenSource()
    client, events = make_client(running.ws_url, token=make_token("42", ttl=-10), get_token=get_token)
    await client.connect()
    await events.wait("connected")
    error = events.named("error")[0].error
    assert isinstance(error, ReplyError)
    assert error.code == 109
    assert len(get_token.tokens) == 1
    assert client.state == ClientState.CONNECTED


async def test_expired_token_without_get_token(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    client, events = make_client(running.ws_url, token=make_token("42", ttl=-10))
    await client.connect()
    await events.wait("disconnected")
    assert client.state == ClientState.DISCONNECTED
    assert any(isinstance(ctx.error, ReplyError) and ctx.error.code == 109 for ctx in events.named("error"))


async def test_anonymous_connect_when_allowed(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(
        node_config(
            allow_anonymous_connect_without_token=True,
            channel=ChannelOptions(allow_subscribe_for_anonymous=True),
        )
    )
    client, events = make_client(running.ws_url)
    await client.connect()
    await events.wait("connected")
    session = running.node.hub.session(client.client_id)
    assert session is not None and session.user == ""


async def test_anonymous_connect_refused_by_default(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    client, events = make_client(running.ws_url)
    await client.connect()
    disconnected = await events.wait("disconnected")
    # 101 "unauthorized" is not temporary: the SDK stops.
    assert disconnected.code == 101
    assert client.state == ClientState.DISCONNECTED


# --- token expiry and refresh ------------------------------------------------------------------


async def test_connection_token_refresh_keeps_the_client_connected(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(client_expired_close_delay=1.0))
    get_token = TokenSource(ttl=2)
    client, events = make_client(running.ws_url, get_token=get_token)
    await client.connect()
    await events.wait("connected")
    session = running.node.hub.session(client.client_id)
    assert session is not None
    first_expiry = session.expire_at
    # Two refreshes: each one pushed the expiry forward, past the first token's.
    await wait_until(lambda: len(get_token.tokens) >= 3, timeout=6000 * MS, what="two refreshes")
    await wait_until(lambda: session.expire_at > first_expiry, what="a later expiry")
    assert client.state == ClientState.CONNECTED
    assert not session.closed
    assert [name for name, _ in events.events] == ["connecting", "connected"]


async def test_refresh_with_a_subscription_token_disconnects(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    get_token = TokenSource(channel="secret:1")
    client, events = make_client(running.ws_url, token=make_token("42", ttl=2), get_token=get_token)
    await client.connect()
    await events.wait("connected")
    disconnected = await events.wait("disconnected", timeout=5000 * MS)
    assert (disconnected.code, disconnected.reason) == (3500, "invalid token")
    await asyncio.sleep(500 * MS)
    assert len(get_token.tokens) == 1
    assert client.state == ClientState.DISCONNECTED
    assert running.node.stats.commands["connect"] == 1
    assert running.node.stats.disconnects[3500] == 1


async def test_client_that_cannot_refresh_is_disconnected_3005(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(client_expired_close_delay=0.1))
    # No get_token: the SDK can't refresh, the server expires the connection, and the SDK
    # reconnects with the expired token, gets 109 and stops.
    client, events = make_client(running.ws_url, token=make_token("42", ttl=1.5))
    await client.connect()
    await events.wait("connected")
    connecting = await events.wait("connecting", lambda ctx: ctx.code != 0, timeout=4000 * MS)
    assert (connecting.code, connecting.reason) == (3005, "connection expired")
    await events.wait("disconnected")
    assert running.node.stats.disconnects[3005] == 1


async def test_connect_reply_ttl_is_never_zero_for_an_expiring_token(start_node: StartNode) -> None:
    """``expires: true`` goes with a ``ttl`` of at least 1 s, as Centrifugo counts whole seconds:
    SDKs read ``ttl`` whenever ``expires`` is set, and schedule the refresh after it."""
    running = await start_node()
    # Less than a second before the token expires.
    await wait_until(lambda: time.time() % 1 < 0.5, what="the first half of a second")
    token = make_token("42", ttl=1)
    async with connect(running.ws_url, compression=None) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
        reply = json.loads(await ws.recv())
    if "error" in reply:  # a very slow machine: the token expired on the way
        assert reply["error"]["code"] == 109
    else:
        assert reply["connect"]["expires"] is True
        assert reply["connect"]["ttl"] >= 1


async def test_pings_and_pongs(start_node: StartNode, make_client: Clients, open_raw: OpenRaw) -> None:
    running = await start_node(node_config(client_ping_interval=1, client_pong_timeout=0.5))
    client, events = await make_client.connected(running.ws_url, "42")
    await events.wait("connected")
    session = running.node.hub.session(client.client_id)
    assert session is not None
    # A client that reads the server's ping, an empty reply, and never answers it.
    raw = await open_raw(running, rcvbuf=None)
    reply = await raw.command(connect={"token": make_token("43")})
    assert (reply["connect"]["ping"], reply["connect"]["pong"]) == (1, True)
    assert await raw.recv(timeout=3000 * MS) == [{}]
    with pytest.raises(ConnectionClosed) as raised:
        await raw.recv(timeout=3000 * MS)
    assert (raised.value.code, raised.value.reason) == (3012, "no pong")
    # The SDK answered its pings meanwhile.
    assert not session.closed
    assert client.state == ClientState.CONNECTED
    assert [name for name, _ in events.events] == ["connecting", "connected"]


async def test_user_connection_limit(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(user_connection_limit=2))
    clients = [make_client(running.ws_url, token=make_token("42")) for _ in range(3)]
    for client, events in clients[:2]:
        await client.connect()
        await events.wait("connected")
    client, events = clients[2]
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (3504, "connection limit")
    _, other_events = await make_client.connected(running.ws_url, "43")
    await other_events.wait("connected")


async def test_message_over_the_size_limit(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node(node_config(client_message_size_limit=4096))
    client, events = await make_client.connected(running.ws_url, "42")
    await events.wait("connected")
    with pytest.raises(ClientDisconnectedError):
        await client.rpc("echo", "x" * 5000)
    # The server closed with 1009, which centrifuge-python reports as its "message size limit"
    # (code 3); unlike centrifuge-js, this version reconnects afterwards.
    connecting = await events.wait("connecting", lambda ctx: ctx.code != 0)
    assert (connecting.code, connecting.reason) == (3, "message size limit")


# --- disconnects from the server API -------------------------------------------------------------


async def test_node_disconnect_with_a_terminal_code_stops_the_client(
    start_node: StartNode, make_client: Clients
) -> None:
    running = await start_node()
    client, events = await make_client.connected(running.ws_url, "42")
    other, other_events = await make_client.connected(running.ws_url, "43")
    await events.wait("connected")
    await other_events.wait("connected")

    assert await running.node.disconnect("42") == 1
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (
        DISCONNECT_FORCE_NO_RECONNECT.code,
        DISCONNECT_FORCE_NO_RECONNECT.reason,
    )
    assert client.state == ClientState.DISCONNECTED
    await asyncio.sleep(300 * MS)  # longer than the SDK's reconnect delay: nothing happens
    assert len(events.named("connected")) == 1
    assert other.state == ClientState.CONNECTED
    assert running.node.hub.user_sessions("42") == []


@pytest.mark.parametrize(
    "disconnect",
    [DISCONNECT_FORCE_RECONNECT, Disconnect(4001, "app asks to come back")],
    ids=["3011", "4001"],
)
async def test_node_disconnect_with_a_reconnect_code(
    start_node: StartNode, make_client: Clients, disconnect: Disconnect
) -> None:
    running = await start_node()
    client, events = await make_client.connected(running.ws_url, "42")
    await events.wait("connected")
    first = client.client_id

    await running.node.disconnect("42", disconnect)
    connecting = await events.wait("connecting", lambda ctx: ctx.code != 0)
    assert (connecting.code, connecting.reason) == (disconnect.code, disconnect.reason)
    await wait_until(lambda: len(events.named("connected")) == 2, what="a reconnect")
    assert client.client_id != first
    assert not events.named("disconnected")


@pytest.mark.parametrize("code", [3503, 3599, 4500, 4999])
async def test_terminal_ranges(start_node: StartNode, make_client: Clients, code: int) -> None:
    running = await start_node()
    client, events = await make_client.connected(running.ws_url, "42")
    await events.wait("connected")
    await running.node.disconnect("42", Disconnect(code, "stop"))
    disconnected = await events.wait("disconnected")
    assert disconnected.code == code
    assert client.state == ClientState.DISCONNECTED


async def test_server_shutdown_makes_clients_reconnect_elsewhere(start_node: StartNode, make_client: Clients) -> None:
    running = await start_node()
    _, events = await make_client.connected(running.ws_url, "42")
    await events.wait("connected")
    port = running.port
    await running.stop()
    connecting = await events.wait("connecting", lambda ctx: ctx.code != 0)
    assert connecting.code == 3001
    # The same address comes back: the client connects again by itself.
    await start_node(port=port)
    await wait_until(lambda: len(events.named("connected")) == 2, timeout=5000 * MS, what="a reconnect")
