"""A Node as an ASGI application, to mount in Starlette, FastAPI or any ASGI server.

``NodeApp(node)`` serves the real-time protocol at ``<mount>/connection/websocket``, its
HTTP-streaming and SSE fallbacks (``/connection/http_stream``, ``/connection/sse``,
``/emulation``) as streamed responses (``more_body``), and the server's HTTP routes (API,
health, metrics) beside them; its lifespan starts and stops the
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
from .app import App, HttpResponse
from .config import Config, HttpApiSection, HttpStreamSection, MetricsSection, SseSection
from .emulation import StreamStart

__all__ = ["ASGIStream", "ASGITransport", "NodeApp"]

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
        self.session: Session | None = None
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
                if was_full and self._size < self.limit and self.session is not None:
                    self.session.writable_again()
            if self._closing is not None:
                await self._send(
                    {"type": "websocket.close", "code": self._closing.code, "reason": self._closing.reason}
                )
                return


class ASGIStream:
    """A streamed HTTP response body over ASGI (:class:`~wavecast.realtime.emulation.ByteStream`):
    pieces wait in a queue that one task sends with ``more_body``, and its size stands for the
    transport's buffer in the slow-consumer policies, as :class:`ASGITransport`'s does."""

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self.limit = limit
        self.on_writable: Callable[[], None] | None = None
        self.on_close: Callable[[], None] | None = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._ended = False
        self._gone = False
        self._wakeup = asyncio.Event()

    @property
    def writing_paused(self) -> bool:
        return self._size >= self.limit

    @property
    def open(self) -> bool:
        return not self._ended and not self._gone

    def write(self, data: bytes) -> None:
        if self.open and data:
            self._queue.append(data)
            self._size += len(data)
            self._wakeup.set()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._wakeup.set()
        self._closed()

    def gone(self) -> None:
        """The client went away: nothing more is sent."""
        self._gone = True
        self._wakeup.set()
        self._closed()

    def _closed(self) -> None:
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()

    async def run(self) -> None:
        """Send the queued pieces until the body ends or the client goes away."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue and not self._gone:
                data = self._queue.popleft()
                was_full = self._size >= self.limit
                self._size -= len(data)
                await self._send({"type": "http.response.body", "body": data, "more_body": True})
                if was_full and self._size < self.limit and self.on_writable is not None:
                    self.on_writable()
            if self._gone:
                return
            if self._ended:
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})
                return


class NodeApp:
    """An ASGI application for a node.

    Args:
        node: the node to serve; the ASGI lifespan starts and shuts it down.
        config: the server configuration whose HTTP routes to serve (API key, metrics);
            by default only the WebSocket endpoint, ``/health`` and ``/ready``, with the
            API enabled when ``api_key`` is given.
        api_key: the key of the HTTP API, when ``config`` isn't given.

    Without ``config``, both fallbacks (HTTP-streaming and SSE) are served, as ``wavecast
    genconfig`` writes them. uvicorn waits for responses in progress, streams included, before
    the lifespan shutdown that disconnects clients: give it ``--timeout-graceful-shutdown``.
    """

    def __init__(self, node: Node, *, config: Config | None = None, api_key: str = "") -> None:
        if config is None:
            # Only what the docstring promises: metrics and the rest need a configuration.
            config = Config(
                http_api=HttpApiSection(enabled=bool(api_key), key=api_key),
                metrics=MetricsSection(enabled=False),
                http_stream=HttpStreamSection(enabled=True),
                sse=SseSection(enabled=True),
            )
        self.node = node
        self.routes = App(config, node)
        self.write_limit = config.websocket.write_limit
        self.body_timeout = config.websocket.open_timeout

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
                self.routes.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.routes.stopping = True
                await self.node.shutdown(DISCONNECT_SHUTDOWN)
                self.routes.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        # Plain HTTP requests (the API) may be bigger than client messages, not unbounded.
        size = self.node.config.client_message_size_limit
        limit = DEFAULT_LIMITS.max_body_size if size is None else size * 16
        try:
            # ASGI servers don't time a body out: a client that sends it a byte at a time
            # would hold the request open for ever, so it has as long as a handshake has.
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if limit is not None and len(body) > limit:
                        await _respond(send, 413, b"Payload Too Large\n", "text/plain; charset=utf-8", ())
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            # The rest of the body may still come: the ASGI server closes instead of reading it.
            text = b"Request Timeout: the body came too slowly\n"
            await _respond(send, 408, text, "text/plain; charset=utf-8", (("Connection", "close"),))
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        client = self._client(scope)
        path = self._path(scope)
        content = bytes(body)
        answer: HttpResponse | StreamStart | None = self.routes.stream(scope["method"], path, query, headers, content)
        if isinstance(answer, StreamStart):
            holder = object()
            refused = self.routes.admit(client, holder)
            if refused is None:
                try:
                    await self._stream(answer, receive, send)
                finally:
                    self.routes.addresses.close(holder)
                return
            answer = refused
        if answer is None:
            answer = await self.routes.http(scope["method"], path, query, headers, content, client=client)
        await _respond(send, answer.status, answer.body, answer.content_type, answer.headers)

    def _client(self, scope: Scope) -> str | None:
        """The client's address: the ASGI server's peer, or ``X-Forwarded-For`` from a trusted proxy."""
        peer = scope.get("client")
        forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name.lower() == b"x-forwarded-for"]
        return self.routes.client_address(str(peer[0]) if peer else None, forwarded)

    async def _stream(self, opened: StreamStart, receive: Receive, send: Send) -> None:
        """Serve a client on a streamed response until it ends or the client goes away."""
        raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in opened.headers]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        stream = ASGIStream(send, self.write_limit)
        loop = asyncio.get_running_loop()
        writer = loop.create_task(stream.run())
        watcher = loop.create_task(_watch_disconnect(receive, stream))
        try:
            await opened.run(stream)
        finally:
            stream.end()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=self.node.config.shutdown_timeout)
            writer.cancel()
            watcher.cancel()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self._path(scope) != WEBSOCKET_PATH or not self.routes.ready or not self._origin_allowed(scope):
            # Before the accept: the ASGI server answers the handshake with HTTP 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        holder = object()
        refused = self.routes.admit(self._client(scope), holder)
        if refused is not None:
            await _refuse_upgrade(scope, send, refused)
            return
        try:
            await self._session(scope, receive, send)
        finally:
            self.routes.addresses.close(holder)

    async def _session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Accept the WebSocket and serve the session on it until either side closes."""
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


async def _watch_disconnect(receive: Receive, stream: ASGIStream) -> None:
    """Tell the stream when the client goes away: ASGI says it with ``http.disconnect``."""
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.gone()


async def _refuse_upgrade(scope: Scope, send: Send, answer: HttpResponse) -> None:
    """Answer a WebSocket upgrade with ``answer`` where the server can (the ASGI extension
    ``websocket.http.response``: uvicorn has it), else with the 403 of a close before the accept."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    raw = _raw_headers(answer.body, answer.content_type, answer.headers)
    await send({"type": "websocket.http.response.start", "status": answer.status, "headers": raw})
    await send({"type": "websocket.http.response.body", "body": answer.body})


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
    await send({"type": "http.response.start", "status": status, "headers": _raw_headers(body, content_type, headers)})
    await send({"type": "http.response.body", "body": body})


def _raw_headers(body: bytes, content_type: str, headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return raw
