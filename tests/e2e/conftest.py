"""Fixtures for the end-to-end tests: a Node served over real sockets, JWTs, and SDK clients.

Each test starts its own :class:`~wavecast.realtime.Node` with the :class:`NodeConfig` it
needs, served by :func:`wavecast.serve` on 127.0.0.1 with a free port. Clients are the real
Centrifugo SDKs: centrifuge-python here, centrifuge-js through ``js/client.js``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from centrifuge import (
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    ErrorContext,
    JoinContext,
    LeaveContext,
    PublicationContext,
    ServerJoinContext,
    ServerLeaveContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    ServerSubscribingContext,
    ServerUnsubscribedContext,
    SubscribedContext,
    SubscribingContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)

import wavecast
from wavecast.asyncio import ClientConnection, Server, connect
from wavecast.realtime import WEBSOCKET_PATH, Node, NodeConfig, websocket_server_options

from ..interop.conftest import require
from ..utils import MS, TIMEOUT_FACTOR

#: Signs every token of the e2e tests; 32 bytes or more, so PyJWT doesn't warn.
SECRET = "wavecast-e2e-hmac-secret-of-more-than-32-bytes"

ROOT = Path(__file__).parents[2]
JS = Path(__file__).parent / "js"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every end-to-end test, so a hang fails one test instead of the run."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30 * TIMEOUT_FACTOR))


def make_token(user: str = "42", *, ttl: float | None = 3600, secret: str = SECRET, **claims: Any) -> str:
    """Return an HS256 connection token for ``user`` expiring ``ttl`` seconds from now (never if ``None``).

    Extra claims (``channels``, ``info``, ``channel`` for a subscription token...) go as they are.
    """
    payload: dict[str, Any] = {"sub": user, **claims}
    if ttl is not None:
        payload["exp"] = int(time.time() + ttl)
    return jwt.encode(payload, secret, algorithm="HS256")


def config(**kwargs: Any) -> NodeConfig:
    """A :class:`NodeConfig` signed with :data:`SECRET`; ``kwargs`` override the defaults."""
    kwargs.setdefault("token_hmac_secret_key", SECRET)
    return NodeConfig(**kwargs)


@dataclasses.dataclass
class Running:
    """A Node and the WebSocket server that serves its clients."""

    node: Node
    server: Server
    stopped: bool = False

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WEBSOCKET_PATH}"

    async def stop(self) -> None:
        """Stop like a server that goes away: clients get 3001 "shutdown", then the socket closes."""
        if self.stopped:
            return
        self.stopped = True
        await self.node.shutdown()
        self.server.close()
        await self.server.wait_closed(timeout=1000 * MS)


StartNode = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """Start a Node with a config and serve it on 127.0.0.1; stop everything when the test ends.

    ``await start_node(config, port=0, setup=None)``: ``setup(node)`` runs before the server
    starts, to register hooks and RPC handlers; ``port`` reuses a port, to restart a server.
    """
    running: list[Running] = []

    async def start(
        node_config: NodeConfig | None = None, *, port: int = 0, setup: Callable[[Node], None] | None = None
    ) -> Running:
        node = Node(node_config if node_config is not None else config())
        if setup is not None:
            setup(node)
        await node.start()
        server = await wavecast.serve(host="127.0.0.1", port=port, **websocket_server_options(node))
        started = Running(node, server)
        running.append(started)
        return started

    yield start
    for started in reversed(running):
        await started.stop()


# --- centrifuge-python ----------------------------------------------------------------------


class Recorder:
    """Records SDK events as ``(name, context)`` and waits for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def record(self, name: str, ctx: Any) -> None:
        self.events.append((name, ctx))
        self._changed.set()

    def named(self, name: str) -> list[Any]:
        return [ctx for event, ctx in self.events if event == name]

    async def wait(
        self, name: str, predicate: Callable[[Any], bool] = lambda ctx: True, *, timeout: float = 5000 * MS
    ) -> Any:
        """Return the first event ``name`` whose context satisfies ``predicate``, waiting for it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event, ctx in self.events:
                        if event == name and predicate(ctx):
                            return ctx
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = [event for event, _ in self.events]
            raise AssertionError(f"timed out waiting for {name}; events: {seen}") from None


class ClientEvents(ClientEventHandler, Recorder):
    """Every client event, recorded: ``connecting``, ``connected``, ``disconnected``, ``error``,
    and those of server-side subscriptions (``subscribed``, ``publication``...)."""

    def __init__(self) -> None:
        Recorder.__init__(self)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self.record("connecting", ctx)

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.record("connected", ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.record("disconnected", ctx)

    async def on_error(self, ctx: ErrorContext) -> None:
        self.record("error", ctx)

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        self.record("subscribed", ctx)

    async def on_subscribing(self, ctx: ServerSubscribingContext) -> None:
        self.record("subscribing", ctx)

    async def on_unsubscribed(self, ctx: ServerUnsubscribedContext) -> None:
        self.record("unsubscribed", ctx)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        self.record("publication", ctx)

    async def on_join(self, ctx: ServerJoinContext) -> None:
        self.record("join", ctx)

    async def on_leave(self, ctx: ServerLeaveContext) -> None:
        self.record("leave", ctx)


class SubEvents(SubscriptionEventHandler, Recorder):
    """Every subscription event, recorded; :attr:`data` lists the publications' data in order."""

    def __init__(self) -> None:
        Recorder.__init__(self)

    @property
    def data(self) -> list[Any]:
        return [ctx.pub.data for ctx in self.named("publication")]

    async def on_subscribing(self, ctx: SubscribingContext) -> None:
        self.record("subscribing", ctx)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.record("subscribed", ctx)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.record("unsubscribed", ctx)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.record("publication", ctx)

    async def on_join(self, ctx: JoinContext) -> None:
        self.record("join", ctx)

    async def on_leave(self, ctx: LeaveContext) -> None:
        self.record("leave", ctx)

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:
        self.record("error", ctx)


MakeClient = Callable[..., tuple[Client, ClientEvents]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Create centrifuge-python clients (not connected yet); disconnect them when the test ends.

    ``make_client(url, token=..., get_token=..., **kwargs)`` returns the client and its
    :class:`ClientEvents`. Reconnect delays are short, and no proxy is used.
    """
    clients: list[Client] = []

    def make(url: str, **kwargs: Any) -> tuple[Client, ClientEvents]:
        events = ClientEvents()
        kwargs.setdefault("min_reconnect_delay", 0.05)
        kwargs.setdefault("max_reconnect_delay", 0.2)
        kwargs.setdefault("timeout", 5.0 * TIMEOUT_FACTOR)
        client = Client(url, events=events, proxy=None, **kwargs)
        clients.append(client)
        return client, events

    yield make
    for client in clients:
        if client.state != ClientState.DISCONNECTED:
            await client.disconnect()
    # Let the SDK's background tasks (closing transports) finish before the loop ends.
    await asyncio.sleep(20 * MS)
    for client in clients:
        tasks = list(client._background_tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=2000 * MS)


async def subscribe(client: Client, channel: str, **kwargs: Any) -> SubEvents:
    """Subscribe ``client`` (connected or connecting) to ``channel``; wait until subscribed."""
    events = SubEvents()
    sub = client.new_subscription(channel, events, **kwargs)
    await sub.subscribe()
    await sub.ready(timeout=5.0 * TIMEOUT_FACTOR)
    return events


# --- centrifuge-js ----------------------------------------------------------------------------


class JSClient:
    """``js/client.js`` running under Node: commands go as JSON lines on its stdin, events come
    back as JSON lines on its stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._ids = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == name]

    async def wait(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda event: True,
        *,
        timeout: float = 5000 * MS,
    ) -> dict[str, Any]:
        """Return the first event ``name`` that satisfies ``predicate``, waiting for it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event in self.events:
                        if event["event"] == name and predicate(event):
                            return event
                    if self._reader.done():
                        stderr = await self.process.stderr.read() if self.process.stderr else b""
                        raise AssertionError(f"node exited: {stderr.decode(errors='replace')}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = [event["event"] for event in self.events]
            raise AssertionError(f"timed out waiting for {name}; events: {seen}") from None

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Run one operation of the SDK and return its ``result`` event (``ok``, ``value``/``error``)."""
        self._ids += 1
        call_id = self._ids
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": call_id, "op": op, **args}).encode() + b"\n")
        await self.process.stdin.drain()
        return await self.wait("result", lambda event: event["id"] == call_id)

    async def close(self) -> None:
        """Close stdin (the script disconnects and exits); kill it if it doesn't."""
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            async with asyncio.timeout(2000 * MS):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self._reader
        if self.process.stderr is not None:
            await self.process.stderr.read()


StartJS = Callable[..., Awaitable[JSClient]]


@pytest.fixture
async def start_js() -> AsyncIterator[StartJS]:
    """Start ``js/client.js`` with its options (``url``, ``token``...); stop it when the test ends."""
    import shutil

    node = shutil.which("node")
    require(node, "node isn't installed")
    require((ROOT / "node_modules" / "centrifuge" / "package.json").is_file(), "centrifuge-js is missing: `npm ci`")
    require((ROOT / "node_modules" / "ws" / "package.json").is_file(), "the ws package is missing: run `npm ci`")
    assert node is not None
    clients: list[JSClient] = []

    async def start(**options: Any) -> JSClient:
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS / "client.js"),
            json.dumps(options),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            limit=2**24,
        )
        client = JSClient(process)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


# --- a raw client of the protocol ---------------------------------------------------------------


class RawClient:
    """Speaks the JSON protocol over :func:`wavecast.asyncio.connect`, with no SDK in between.

    It reads only when told to, so a test can stall it; its socket's receive buffer is small,
    so that a stalled reader fills the server's buffers quickly.
    """

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = 0
        #: Pushes and replies read while waiting for another reply.
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, running: Running, *, rcvbuf: int | None = 4096, **kwargs: Any) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", running.port))
            kwargs.setdefault("compression", None)
            kwargs.setdefault("ping_interval", None)
            connection = await connect(running.url, sock=sock, **kwargs)
        except BaseException:
            sock.close()
            raise
        return cls(connection)

    async def send(self, message: str | bytes) -> None:
        await self.connection.send(message)

    async def recv(self, timeout: float = 5000 * MS) -> list[dict[str, Any]]:
        """Read one WebSocket message: one or more replies, one per line."""
        async with asyncio.timeout(timeout):
            message = await self.connection.recv()
        return [json.loads(line) for line in message.splitlines() if line.strip()]

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one command and return its reply; pushes read meanwhile go to :attr:`received`."""
        self._ids += 1
        command_id = self._ids
        await self.send(json.dumps({"id": command_id, **command}))
        while True:
            for reply in await self.recv():
                if reply.get("id") == command_id:
                    return reply
                self.received.append(reply)

    async def close(self) -> None:
        self.connection.transport.abort()
        await self.connection.wait_closed()


OpenRaw = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def open_raw() -> AsyncIterator[OpenRaw]:
    """Open :class:`RawClient` connections to a running node; close them when the test ends."""
    clients: list[RawClient] = []

    async def open_raw(running: Running, **kwargs: Any) -> RawClient:
        client = await RawClient.open(running, **kwargs)
        clients.append(client)
        return client

    yield open_raw
    for client in clients:
        await client.close()
