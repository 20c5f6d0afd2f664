"""Servers in the test's own process, on 127.0.0.1 with a free port: a WebSocket server with
a handler, a :class:`~wavecast.realtime.Node` served over WebSocket, and the standalone server."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import uvicorn

import wavecast
from wavecast import ConnectionClosed
from wavecast.asyncio import Server, ServerConnection, http_response
from wavecast.protocol.events import Request
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import WEBSOCKET_PATH, Node, NodeConfig, websocket_server_options
from wavecast.realtime.emulation import EMULATION_PATH
from wavecast.server.app import App
from wavecast.server.config import Config
from wavecast.server.emulation import Streams
from wavecast.server.serve import serve_streams, shutdown, start_server

from .config import make_config, node_config
from .http import HttpAnswer, http
from .timing import MS

__all__ = [
    "TRANSPORTS",
    "AppServer",
    "Closes",
    "Listening",
    "NodeServer",
    "Recorder",
    "Sink",
    "StartNode",
    "StartServer",
    "StartWavecast",
    "Uvicorn",
    "close_server",
    "echo",
    "serve_locally",
    "serve_uvicorn",
    "ws_uri",
]

StartServer = Callable[..., Awaitable[Server]]

#: The transports of centrifuge-js that a node serves: WebSocket and its two fallbacks.
TRANSPORTS = ("websocket", "http_stream", "sse")


async def echo(connection: ServerConnection) -> None:
    """Send every message back."""
    async for message in connection:
        await connection.send(message)


class Sink:
    """A MessageSink that records what it gets, and may echo it back."""

    def __init__(self, connection: ServerConnection, *, echo: bool = False) -> None:
        self.connection = connection
        self.echo = echo
        self.messages: list[str | bytes] = []
        self.closed = 0

    def message_received(self, message: str | bytes) -> None:
        self.messages.append(message)
        if message == "boom":
            raise RuntimeError("boom")
        if self.echo:
            self.connection.write_prepared(PreparedMessage.of(message))

    def connection_closed(self) -> None:
        self.closed += 1


async def serve_locally(
    handler: Callable[[ServerConnection], Awaitable[None] | None] = echo, *, port: int = 0, **kwargs: Any
) -> Server:
    """Serve ``handler`` (an echo by default) on 127.0.0.1 and ``port`` (a free one by default),
    with the other arguments of :func:`~wavecast.asyncio.serve`."""
    return await wavecast.serve(handler, "127.0.0.1", port, **kwargs)


async def close_server(server: Server) -> None:
    server.close()
    await server.wait_closed(timeout=1000 * MS)


def ws_uri(server: Server, path: str = "/", *, scheme: str = "ws", host: str = "127.0.0.1") -> str:
    """Return the URI of ``server``."""
    return f"{scheme}://{host}:{server.port}{path}"


class Closes:
    """A handler that echoes and records how each connection ended.

    A few messages ask for something else: ``close me`` closes with 4001, ``ping me`` pings
    and answers ``pinged``, ``fragments`` answers in three fragments, ``fail`` raises.
    """

    def __init__(self) -> None:
        self.errors: list[ConnectionClosed] = []
        self.connections: list[ServerConnection] = []

    async def __call__(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        try:
            async for message in connection:
                if message == "close me":
                    await connection.close(4001, "as you wish")
                elif message == "ping me":
                    await (await connection.ping(b"from wavecast"))
                    await connection.send("pinged")
                elif message == "fragments":
                    await connection.send_fragments(["frag", "ments", "!"])
                elif message == "fail":
                    raise RuntimeError("the handler failed")
                else:
                    await connection.send(message)
        except ConnectionClosed as exc:
            self.errors.append(exc)


class Recorder:
    """A handler that keeps each server-side connection, the messages it received and what
    ended it; ``body(connection)``, when given, runs instead of receiving."""

    def __init__(self, body: Callable[[ServerConnection], Awaitable[object]] | None = None) -> None:
        self.connections: list[ServerConnection] = []
        self.errors: list[ConnectionClosed] = []
        self.messages: list[str | bytes] = []
        self.done = asyncio.Event()
        self.body = body

    async def __call__(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        try:
            if self.body is not None:
                await self.body(connection)
            else:
                while True:
                    self.messages.append(await connection.recv())
        except ConnectionClosed as exc:
            self.errors.append(exc)
        finally:
            self.done.set()

    async def wait_done(self) -> None:
        async with asyncio.timeout(2000 * MS):
            await self.done.wait()


class Listening:
    """The addresses of a server listening on 127.0.0.1:``port``, with its real-time endpoint
    under ``mount`` (where an ASGI application mounts it)."""

    port: int
    mount: ClassVar[str] = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.mount}{WEBSOCKET_PATH}"

    def endpoint(self, *transports: str) -> dict[str, Any]:
        """The options of ``start_js`` that connect over ``transports`` (see :data:`TRANSPORTS`),
        tried in this order; WebSocket alone by default, as a URL."""
        if transports in ((), ("websocket",)):
            return {"url": self.ws_url}
        base = f"{self.url}{self.mount}"
        endpoints = [
            {"transport": name, "endpoint": self.ws_url if name == "websocket" else f"{base}/connection/{name}"}
            for name in transports
        ]
        return {"transports": endpoints, "emulationEndpoint": f"{base}{EMULATION_PATH}"}


@dataclasses.dataclass
class NodeServer(Listening):
    """A Node and the WebSocket server that serves its clients."""

    node: Node
    server: Server
    stopped: bool = False

    @property  # type: ignore[override]
    def port(self) -> int:
        return self.server.port

    @classmethod
    async def start(
        cls,
        config: NodeConfig | None = None,
        *,
        port: int = 0,
        setup: Callable[[Node], None] | None = None,
        refuse_websocket: bool = False,
    ) -> NodeServer:
        """Start a Node with ``config`` (:func:`~.config.node_config` by default) and serve it
        over WebSocket, HTTP-streaming and SSE.

        ``setup(node)`` runs before the server starts, to register hooks and RPC handlers;
        ``port`` reuses a port, to restart a server; ``refuse_websocket`` answers every
        WebSocket upgrade with 403, as a proxy that blocks WebSocket does.
        """
        node = Node(config if config is not None else node_config())
        if setup is not None:
            setup(node)
        await node.start()
        streams = serve_streams(Streams(node))

        async def process_request(connection: ServerConnection, request: Request) -> Any:
            if refuse_websocket and "upgrade" in (request.headers.get("Connection") or "").lower():
                return http_response(403, "Forbidden: WebSocket is blocked here\n")
            return await streams(connection, request)

        server = await wavecast.serve(
            host="127.0.0.1", port=port, process_request=process_request, **websocket_server_options(node)
        )
        return cls(node, server)

    async def stop(self) -> None:
        """Stop like a server that goes away: clients get 3001 "shutdown", then the socket closes."""
        if self.stopped:
            return
        self.stopped = True
        await self.node.shutdown()
        await close_server(self.server)


@dataclasses.dataclass
class AppServer(Listening):
    """The standalone server, started with :func:`wavecast.server.serve.start_server`."""

    config: Config
    server: Server
    app: App
    stopped: bool = False

    @property
    def node(self) -> Node:
        return self.app.node

    @property  # type: ignore[override]
    def port(self) -> int:
        return self.server.port

    @classmethod
    async def start(
        cls, config: Config | None = None, *, serve_options: Mapping[str, Any] | None = None, **sections: Any
    ) -> AppServer:
        """Start with ``config``, or :func:`~.config.make_config` of ``sections``;
        ``serve_options`` go to :func:`wavecast.serve` past the configuration."""
        config = config if config is not None else make_config(**sections)
        server, app = await start_server(config, **(serve_options or {}))
        return cls(config, server, app)

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> HttpAnswer:
        return await http("GET", self.url + path, headers=headers)

    async def post(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> HttpAnswer:
        return await http("POST", self.url + path, body if body is not None else b"", headers=headers)

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await shutdown(self.server, self.app, 1000 * MS)


#: ``await start_wavecast(config=None, **sections)``, the fixture of ``tests/conftest.py``.
StartWavecast = Callable[..., Awaitable[AppServer]]

#: ``await start_node(config, port=0, setup=None)``, the fixture of ``tests/e2e/conftest.py``.
StartNode = Callable[..., Awaitable[NodeServer]]


@dataclasses.dataclass
class Uvicorn(Listening):
    """An ASGI application under uvicorn, in this process."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        async with asyncio.timeout(10_000 * MS):
            await self.task


async def serve_uvicorn(app: Any) -> Uvicorn:
    """Serve ``app`` with uvicorn on a free port, with its lifespan; return once it listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10_000 * MS):
            while not server.started:
                if task.done():
                    task.result()
                    raise AssertionError("uvicorn exited")
                await asyncio.sleep(5 * MS)
    except BaseException:
        server.should_exit = True
        await task
        sock.close()
        raise
    # uvicorn's server owns the socket now, and closes it.
    return Uvicorn(server, task, port)
