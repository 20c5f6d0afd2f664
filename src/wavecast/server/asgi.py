"""A Node as an ASGI application, to mount in Starlette, FastAPI or any ASGI server.

``NodeApp(node)`` serves the real-time protocol at ``<mount>/connection/websocket`` and the
server's HTTP routes (API, health, metrics) beside it; its lifespan starts and stops the
node. Under an ASGI server, wavecast's own WebSocket core isn't used: the server's is, and
the node's ``allowed_origins`` are checked here as wavecast's own server checks them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..codes import DISCONNECT_SHUTDOWN, CloseCode, Disconnect
from ..protocol.handshake import origin_allowed
from ..protocol.limits import DEFAULT_LIMITS
from ..protocol.prepared import PreparedMessage
from ..realtime.codec import negotiate_codec, select_subprotocol
from ..realtime.node import Node
from ..realtime.session import Session
from ..realtime.websocket import WEBSOCKET_PATH
from .app import App
from .config import Config, HttpApiSection, MetricsSection

__all__ = ["ASGITransport", "NodeApp"]

logger = logging.getLogger("wavecast.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ASGITransport:
    """A session's transport over an ASGI WebSocket: a bounded queue drained by one task.

    ASGI's ``send`` is a coroutine; the queue lets sessions write synchronously, and its
    size stands for the transport's buffer in the slow-consumer policies.
    """

    name = "websocket"

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self.limit = limit
        self.on_writable: Callable[[], None] | None = None
        self._queue: collections.deque[PreparedMessage] = collections.deque()
        self._size = 0
        self._closing: Disconnect | None = None
        self._wakeup = asyncio.Event()

    def writable(self) -> bool:
        return self._size < self.limit and self._closing is None

    def write(self, message: PreparedMessage) -> None:
        if self._closing is not None:
            return
        self._queue.append(message)
        self._size += len(message)
        self._wakeup.set()

    def close(self, disconnect: Disconnect) -> None:
        if self._closing is None:
            self._closing = disconnect
            self._wakeup.set()

    async def run(self) -> None:
        """Send queued messages until the connection closes."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                message = self._queue.popleft()
                was_full = self._size >= self.limit
                self._size -= len(message)
                if message.opcode == 1:
                    await self._send({"type": "websocket.send", "text": message.payload.decode()})
                else:
                    await self._send({"type": "websocket.send", "bytes": message.payload})
                if was_full and self._size < self.limit and self.on_writable is not None:
                    self.on_writable()
            if self._closing is not None:
                await self._send(
                    {"type": "websocket.close", "code": self._closing.code, "reason": self._closing.reason}
                )
                return


class NodeApp:
    """An ASGI application for a node.

    Args:
        node: the node to serve; the ASGI lifespan starts and shuts it down.
        config: the server configuration whose HTTP routes to serve (API key, metrics);
            by default only the WebSocket endpoint, ``/health`` and ``/ready``, with the
            API enabled when ``api_key`` is given.
        api_key: the key of the HTTP API, when ``config`` isn't given.
    """

    def __init__(self, node: Node, *, config: Config | None = None, api_key: str = "") -> None:
        if config is None:
            # Only what the docstring promises: metrics and the rest need a configuration.
            config = Config(
                http_api=HttpApiSection(enabled=bool(api_key), key=api_key), metrics=MetricsSection(enabled=False)
            )
        self.node = node
        self.routes = App(config, node)
        self.write_limit = config.websocket.write_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    @staticmethod
    def _path(scope: Scope) -> str:
        """The path below the mount point."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return path or "/"

    def _origin_allowed(self, scope: Scope) -> bool:
        """Apply the node's origin policy, as :class:`~wavecast.protocol.server.ServerProtocol` does."""
        origins: list[str] = []
        hosts: list[str] = []
        for name, value in scope["headers"]:
            if name.lower() == b"origin":
                origins.append(value.decode("latin-1"))
            elif name.lower() == b"host":
                hosts.append(value.decode("latin-1"))
        if len(origins) > 1:
            # Which one would the browser have meant? Refused natively too (400 there).
            return False
        return origin_allowed(
            origins[0] if origins else None, hosts[0] if hosts else None, self.node.config.allowed_origins
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.node.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.routes.stopping = True
                await self.node.shutdown(DISCONNECT_SHUTDOWN)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        # Plain HTTP requests (the API) may be bigger than client messages, not unbounded.
        size = self.node.config.client_message_size_limit
        limit = DEFAULT_LIMITS.max_body_size if size is None else size * 16
        while True:
            message = await receive()
            body += message.get("body", b"")
            if limit is not None and len(body) > limit:
                await _respond(send, 413, b"Payload Too Large\n", "text/plain; charset=utf-8", ())
                return
            if not message.get("more_body", False):
                break
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        answer = await self.routes.http(
            scope["method"], self._path(scope), query, headers, body, client=str(client[0]) if client else None
        )
        await _respond(send, answer.status, answer.body, answer.content_type, answer.headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self._path(scope) != WEBSOCKET_PATH or not self.routes.ready or not self._origin_allowed(scope):
            # Before the accept: the ASGI server answers the handshake with HTTP 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        subprotocol = select_subprotocol(scope.get("subprotocols") or ())
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        codec = negotiate_codec(subprotocol, scope.get("query_string", b"").decode("latin-1"))
        transport = ASGITransport(send, self.write_limit)
        session = Session(self.node, transport, codec=codec)
        writer = asyncio.get_running_loop().create_task(transport.run())
        limit = self.node.config.client_message_size_limit
        try:
            while not session.closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if _too_big(data, limit):
                    # As wavecast's own WebSocket core closes: 1009, which the SDKs report as
                    # their "message size limit" and don't reconnect after.
                    transport.close(_MESSAGE_TOO_BIG)
                    break
                await session.handle_message(data)
        except Exception as exc:
            session.fail(exc)
        finally:
            session.closed_by_transport()
            if not writer.done():
                transport.close(session.disconnect_reason or DISCONNECT_SHUTDOWN)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, timeout=self.node.config.shutdown_timeout)
            writer.cancel()


_MESSAGE_TOO_BIG = Disconnect(CloseCode.MESSAGE_TOO_BIG, "message too big")


def _too_big(data: str | bytes, limit: int | None) -> bool:
    """Tell whether a message exceeds ``limit`` bytes; text counts in UTF-8, as on the wire."""
    if limit is None:
        return False
    if isinstance(data, str):
        # A character is at most 4 bytes: short text needs no encoding to be measured.
        return len(data) * 4 > limit and len(data.encode()) > limit
    return len(data) > limit


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, headers: tuple[tuple[str, str], ...]
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
