"""``serve()``: a WebSocket server on asyncio."""

from __future__ import annotations

import asyncio
import http
import inspect
import logging
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import Any, cast

from ..codes import CloseCode
from ..exceptions import ConnectionClosed
from ..protocol.deflate import ServerPerMessageDeflateFactory
from ..protocol.events import Event, Request, Response
from ..protocol.extensions import ServerExtensionFactory
from ..protocol.headers import Headers
from ..protocol.limits import DEFAULT_LIMITS, Limits
from ..protocol.server import HandshakePolicy, ServerProtocol, SubprotocolSelector
from ..protocol.state import CONNECTING, OPEN
from . import _timers as timers
from ._options import DEFAULT_OPTIONS, UNSET, ConnectionOptions, MaxSize, connection_options
from .connection import Connection, abort
from .streaming import HTTPStream, StreamingResponse

__all__ = ["Server", "ServerConnection", "http_response", "serve"]

logger = logging.getLogger("wavecast.server")

#: Serves one connection: a coroutine function runs in a task of its own; a plain function is
#: called from the event loop as the connection opens (no task), and hands the connection to a
#: sink (:meth:`~wavecast.asyncio.Connection.deliver_to`) or closes it.
Handler = Callable[["ServerConnection"], "Awaitable[None] | None"]
#: Answers a request before the handshake: return a :class:`Response` to send it instead, or a
#: :class:`StreamingResponse` to stream a body.
Answer = Response | StreamingResponse
ProcessRequest = Callable[["ServerConnection", Request], "Answer | Awaitable[Answer | None] | None"]


def http_response(
    status: int, body: bytes | str = b"", *, content_type: str = "text/plain; charset=utf-8", headers: Any = ()
) -> Response:
    """Build a plain HTTP response for ``process_request`` to return."""
    data = body.encode() if isinstance(body, str) else body
    all_headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data)))])
    for name, value in Headers(headers).items():
        all_headers[name] = value
    return Response(
        status_code=status,
        reason_phrase=http.HTTPStatus(status).phrase,
        headers=all_headers,
        body=data,
    )


class ServerConnection(Connection):
    """A connection accepted by a :class:`Server`; the handler receives it.

    Attributes:
        request: the handshake request, with its path, query and headers; ``None`` after
            :meth:`forget_handshake`.
        response: the handshake response; ``None`` after :meth:`forget_handshake`.
        subprotocol: the subprotocol agreed in the handshake, if any.
    """

    __slots__ = (
        "_handler_task",
        "_open_tick",
        "_pipelined",
        "_request_task",
        "_stream",
        "request",
        "response",
        "server",
    )

    protocol: ServerProtocol

    def __init__(self, protocol: ServerProtocol, server: Server) -> None:
        super().__init__(protocol, server.options)
        self.server = server
        self.request: Request | None = None
        self.response: Response | None = None
        # The tick of the handshake's deadline in the server's timing wheel, or None.
        self._open_tick: int | None = None
        self._handler_task: asyncio.Task[None] | None = None
        # Awaits an asynchronous process_request; cancelled if the connection ends first.
        self._request_task: asyncio.Task[None] | None = None
        # A request that waits for its turn: pipelined after one being answered, or held
        # while the peer doesn't read the answers already written.
        self._pipelined: Request | None = None
        # The body being streamed, when process_request answered with a StreamingResponse.
        self._stream: HTTPStream | None = None

    @property
    def subprotocol(self) -> str | None:
        return self.protocol.subprotocol

    def forget_handshake(self) -> None:
        """Let go of the opening handshake's request and response: ``request`` and
        ``response`` are ``None`` from now on.

        For a connection that lives long after its handler read what it needed from them,
        on a server that holds many: they are about 0.7 KiB of a connection's memory.
        """
        self.request = self.response = self.protocol.request = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server._connections.add(self)
        options = self.server.options
        if options.socket_send_buffer is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.socket_send_buffer)
        self._start_open_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_open_deadline()
        if self._request_task is not None:
            # Nobody is left to read the response.
            self._request_task.cancel()
            self._request_task = None
        self._pipelined = None
        self.server._connections.discard(self)
        if self.server.on_connection_lost is not None:
            self.server.on_connection_lost(self)
        if self._stream is not None:
            self._stream._closed()

    def _resume_reading(self) -> None:
        # Reads wait while a request waits for its answer, whatever else would resume them.
        if self._request_task is None and self._pipelined is None:
            super()._resume_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._pipelined is not None:
            self._answer_requests()
            self._resume_reading()

    def _start_closing(self, code: int, reason: str, *, flush_handshake: bool = False) -> None:
        # A streamed body has no close frame: it ends, after what was written.
        if self._stream is not None and self.protocol.streaming:
            self._stream.end()
            return
        super()._start_closing(code, reason, flush_handshake=flush_handshake)

    def _start_open_deadline(self) -> None:
        # In a timing wheel rather than a TimerHandle per connection: a connect then costs a
        # place in a set instead of a loop timer to create, arm and cancel.
        if self.server.options.open_timeout is not None:
            self._open_tick = self.server._open_wheel(self.loop).add(self, self.server.options.open_timeout)

    def _stop_open_deadline(self) -> None:
        if self._open_tick is not None:
            self.server._open_wheel(self.loop).discard(self, self._open_tick)
            self._open_tick = None

    def _open_timed_out(self) -> None:
        self._open_tick = None
        if self.protocol.state is CONNECTING and not self._lost:
            if self.debug:
                self.logger.debug("! opening handshake timed out")
            self.transport.abort()

    def _handle_event(self, event: Event) -> None:
        if isinstance(event, Request):
            self._pipelined = event
            self._answer_requests()

    def _answer_requests(self) -> None:
        """Answer the waiting request, then each one pipelined after it.

        This loops instead of recursing, so a segment full of pipelined requests doesn't
        nest a call per request; and it stops while the peer doesn't read the answers, so
        they can't pile up in the write buffer.
        """
        while (request := self._pipelined) is not None and self._request_task is None and not self._writing_paused:
            self._pipelined = None
            self._handle_request(request)

    def _handle_request(self, event: Request) -> None:
        self.request = event
        process_request = self.server.process_request
        if process_request is None:
            self._respond(event, None)
            return
        try:
            result = process_request(self, event)
        except Exception:
            self.logger.exception("process_request failed")
            self._respond(event, http_response(500, "Internal Server Error\n"))
            return
        if inspect.isawaitable(result):
            # Reads wait until the response is decided, so requests are answered in order.
            self.transport.pause_reading()
            self._request_task = self.loop.create_task(self._respond_later(event, result))
        else:
            self._respond(event, result)

    async def _respond_later(self, request: Request, result: Awaitable[Answer | None]) -> None:
        try:
            response = await result
        except Exception:
            self.logger.exception("process_request failed")
            response = http_response(500, "Internal Server Error\n")
        self._request_task = None
        if not self._lost:
            self._respond(request, response)
            self._answer_requests()
            self._resume_reading()

    def _respond(self, request: Request, response: Answer | None) -> None:
        protocol = self.protocol
        if isinstance(response, StreamingResponse):
            self._start_stream(request, response)
            return
        if response is None:
            response = protocol.accept(request)
            if protocol.handshake_exc is not None and self.debug:
                self.logger.debug("! invalid handshake: %s", protocol.handshake_exc)
        self.response = response
        protocol.send_response(response)
        self._stop_open_deadline()
        if protocol.state is OPEN:
            # Servers don't mask: without compression, prepared frames go out as they are.
            self._prepared_ok = protocol.extension is None
            self._start_keepalive()
            self._start_handler()
        elif protocol.state is CONNECTING:
            # A kept-alive HTTP connection gets the same time for its next request.
            self._start_open_deadline()
        self._flush()
        self._check_close_expected()
        # Whatever followed the request (frames, or a pipelined request) was parsed by
        # send_response() and waits here.
        events = protocol.events_received()
        if events:
            if protocol.state is CONNECTING:
                # The parser stops at the next request: the caller's loop answers it.
                self._pipelined = cast(Request, events[0])
            else:
                self._process_events(events)
                self._flush()

    def _start_stream(self, request: Request, answer: StreamingResponse) -> None:
        """Send the head of a streamed answer and run its handler; the connection ends with it."""
        self.protocol.send_stream_head(answer.head)
        self.response = answer.head
        self._stop_open_deadline()
        self._flush()
        self._stream = stream = HTTPStream(self, request)
        self._handler_task = self.loop.create_task(self._run_stream(answer, stream))
        self.server._handlers.add(self._handler_task)

    async def _run_stream(self, answer: StreamingResponse, stream: HTTPStream) -> None:
        try:
            await answer.handler(stream)
        except Exception:
            self.logger.exception("stream handler failed")
        finally:
            stream.end()
            self.server._handlers.discard(cast("asyncio.Task[None]", self._handler_task))
            self._handler_task = None

    def _start_handler(self) -> None:
        """Call the handler; run what it returns to await, if anything, in a task."""
        try:
            # Calling a coroutine function only creates its coroutine: its body runs in the task.
            running = self.server.handler(self)
        except Exception:
            self.logger.exception("connection handler failed")
            self._fail(CloseCode.INTERNAL_ERROR)
            return
        if running is not None:
            self._handler_task = self.loop.create_task(self._run_handler(running))
            self.server._handlers.add(self._handler_task)
        elif self.protocol.state is OPEN and self._sink is None:
            # A plain function that kept no sink is done with its connection, as a coroutine
            # that returned would be.
            self.close_nowait()

    async def _run_handler(self, running: Awaitable[None]) -> None:
        # The handler isn't cancelled when TCP closes: it learns it from recv() or send()
        # and may finish its work; Server.close() cancels handlers that outlive it.
        try:
            await running
        except ConnectionClosed as exc:
            # The peer went away or broke the protocol: not a bug in the handler.
            if self.debug:
                self.logger.debug("handler ended: %s", exc)
        except Exception:
            self.logger.exception("connection handler failed")
            self._fail(CloseCode.INTERNAL_ERROR)
        else:
            # A handler that gave its connection to a sink (deliver_to) leaves it open.
            if self.protocol.state is OPEN and self._sink is None:
                await self.close()
        finally:
            # Instead of a done callback, which would hold a copy of the context per connection.
            # Only Server.wait_closed() cancels handlers, and it waits for them itself.
            self.server._handlers.discard(cast("asyncio.Task[None]", self._handler_task))
            # A finished task, kept, would cost a connection that outlives its handler (one
            # that delivers to a sink) about 700 bytes, asyncio's set of all tasks included.
            self._handler_task = None


class Server:
    """A WebSocket server; :func:`serve` creates and starts it.

    Use it as an async context manager, or ``await serve(...)`` and call :meth:`close`.

    Attributes:
        options: the settings of every connection, :func:`serve`'s arguments of the same names.
        extensions: the extension factories, permessage-deflate's included when
            ``options.compression`` asks for it.
        on_connection_lost: called with each connection once it is closed, to release what
            ``process_request`` counted for it; ``None`` by default.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        options: ConnectionOptions = DEFAULT_OPTIONS,
        process_request: ProcessRequest | None = None,
        origins: Sequence[str] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.handler = handler
        self.options = options
        self.process_request = process_request
        self.origins = origins
        self.subprotocols = tuple(subprotocols) if subprotocols else None
        self.select_subprotocol = select_subprotocol
        self.extensions = options.with_compression(extensions, ServerPerMessageDeflateFactory)
        # One for every connection's protocol, instead of a copy of these in each.
        self._policy = HandshakePolicy(
            origins=origins,
            subprotocols=self.subprotocols,
            select_subprotocol=select_subprotocol,
            extensions=self.extensions,
        )
        self.logger = logger if logger is not None else globals()["logger"]
        self.on_connection_lost: Callable[[ServerConnection], None] | None = None
        self._connections: set[ServerConnection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._closed: asyncio.Event | None = None
        self._open_deadlines: timers.Wheel[ServerConnection] | None = None

    @property
    def connections(self) -> set[ServerConnection]:
        """The open connections, handshake complete or not."""
        return self._connections

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return () if self._server is None else tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket; handy after binding port 0."""
        return int(self.sockets[0].getsockname()[1])

    def _open_wheel(self, loop: asyncio.AbstractEventLoop) -> timers.Wheel[ServerConnection]:
        """The wheel of the handshakes' deadlines, found once: every connect starts one."""
        wheel = self._open_deadlines
        if wheel is None:
            assert self.options.open_timeout is not None
            wheel = self._open_deadlines = timers.wheel(
                loop, ServerConnection._open_timed_out, self.options.open_timeout
            )
        return wheel

    def _new_connection(self) -> ServerConnection:
        protocol = ServerProtocol(
            policy=self._policy,
            limits=self.options.limits,
            logger=self.logger,
        )
        return ServerConnection(protocol, self)

    async def start(self, host: str | Sequence[str] | None, port: int | None, **kwargs: Any) -> None:
        """Listen; ``kwargs`` go to :meth:`asyncio.loop.create_server` (``ssl``, ``sock``, ...)."""
        loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        self._open_deadlines = None
        self._server = await loop.create_server(self._new_connection, host, port, **kwargs)

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or the task is cancelled."""
        assert self._closed is not None, "call start() first"
        await self._closed.wait()

    def stop_accepting(self) -> None:
        """Stop listening; connections already open go on."""
        if self._server is not None:
            self._server.close()

    def close(self, *, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Stop listening and start closing every connection with 1001; see :meth:`wait_closed`."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection._start_closing(code, reason, flush_handshake=True)
        if self._closed is not None:
            self._closed.set()

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until every connection is closed and every handler returned.

        Handlers still running after ``timeout`` seconds (the close timeout by default)
        are cancelled.
        """
        if timeout is None:
            timeout = self.options.close_timeout
        connections = [connection.wait_closed() for connection in list(self._connections)]
        if connections:
            await asyncio.wait([asyncio.ensure_future(c) for c in connections], timeout=timeout)
        for connection in list(self._connections):
            abort(connection.transport)
        if self._handlers:
            _, pending = await asyncio.wait(list(self._handlers), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        await self.wait_closed()


class serve:
    """Start a WebSocket server that runs ``handler`` for each connection.

    ``async with serve(handler, "127.0.0.1", 8000) as server: await server.serve_forever()``,
    or ``server = await serve(...)``.

    Args:
        handler: receives each :class:`ServerConnection` once its handshake is complete. A
            coroutine function runs in a task of its own; the connection closes with 1000 when
            it returns (unless it handed the connection to a sink, see
            :meth:`~wavecast.asyncio.Connection.deliver_to`), 1011 when it raises. A plain
            function is called from the event loop, with no task to create or to hold (an idle
            connection given to a sink costs about half the memory): it must not block, and
            hands the connection to a sink, or returns a coroutine to run in a task; otherwise
            the connection closes with 1000 when it returns.
        host: the interface to listen on; ``None`` for all of them.
        port: the port; 0 picks a free one (see :attr:`Server.port`).
        ssl: an :class:`ssl.SSLContext` for wss://.
        process_request: runs before the handshake for every request, and may return a
            :class:`Response` to answer instead (an HTTP page, a health check, a 401).
        origins: allowed Origin values; ``None`` (the default) allows the server's own
            origin and non-browser clients, ``["*"]`` anyone.
        subprotocols, select_subprotocol: subprotocol negotiation.
        compression: ``"deflate"`` (the default) negotiates permessage-deflate with
            memory-frugal settings; ``None`` turns compression off.
        extensions: extension factories; a permessage-deflate factory here replaces the
            default settings of ``compression``.
        limits: limits on what clients may send.
        max_size: the largest message a client may send, in bytes (1 MiB by default);
            ``None`` for no limit. A shortcut for ``limits.max_message_size`` that also lets a
            message of that size come in one frame; passing both raises :exc:`TypeError`.
        open_timeout: seconds a client has to complete the handshake; enforced in a timing
            wheel, up to 1/64 of it (at most 0.1 s) late.
        ping_interval, ping_timeout: keepalive; ``None`` turns them off.
        close_timeout: seconds to wait for the closing handshake.
        max_queue: received messages buffered per connection before reading pauses.
        write_limit: bytes buffered per connection before ``send()`` waits and reading pauses.
        write_delay: seconds that messages wait before they are written, so that those sent
            meanwhile (publications of a busy channel) leave in one write; ``None`` writes
            at the end of each turn of the event loop, which is the lowest latency.
        socket_send_buffer: the kernel's send buffer of each accepted socket (``SO_SNDBUF``),
            in bytes; ``None`` keeps the kernel's, which Linux grows to megabytes on a fast
            link. A small one lets a slow client be seen as slow sooner (``write_limit``,
            slow-consumer policies) instead of its messages waiting in the kernel.
        **kwargs: passed to :meth:`asyncio.loop.create_server` (``sock``, ``reuse_port``, ...).

    Raises:
        ValueError: an option has a value of the wrong type or range.
        TypeError: both ``max_size`` and ``limits.max_message_size`` are given.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        ssl: ssl_module.SSLContext | None = None,
        process_request: ProcessRequest | None = None,
        origins: Sequence[str] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        compression: str | None = "deflate",
        extensions: Sequence[ServerExtensionFactory] = (),
        limits: Limits = DEFAULT_LIMITS,
        max_size: MaxSize = UNSET,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | None = 16,
        write_limit: int = 32768,
        write_delay: float | None = None,
        socket_send_buffer: int | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        **kwargs: Any,
    ) -> None:
        self.server = Server(
            handler,
            # The arguments named as its fields, before anything else is assigned here.
            options=connection_options("serve", locals()),
            process_request=process_request,
            origins=origins,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            extensions=extensions,
            logger=logger,
        )
        self._host = host
        self._port = port
        self._kwargs = dict(kwargs, ssl=ssl)

    async def _start(self) -> Server:
        await self.server.start(self._host, self._port, **self._kwargs)
        return self.server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.server.__aexit__(exc_type, exc, tb)
