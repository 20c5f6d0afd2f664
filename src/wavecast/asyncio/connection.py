"""The asyncio pump shared by server and client connections.

:class:`Connection` is an :class:`asyncio.Protocol`: it feeds received bytes to the sans-I/O
protocol, writes what the protocol queues, queues received messages for ``recv()`` and owns
the timers (keepalive, close deadline) and flow control. Writes are corked: frames queued
during one turn of the event loop leave in one ``transport.write`` at its end, which
turns a burst of small messages, or one broadcast to many connections, into one system
call per connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import struct
import sys
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, NamedTuple, Protocol as TypingProtocol, cast

from ..codes import OK_CLOSE_CODES, CloseCode
from ..exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    LocalProtocolError,
)
from ..protocol.connection import Protocol
from ..protocol.events import Close, Event, Pong
from ..protocol.frames import OP_TEXT
from ..protocol.prepared import PreparedMessage
from ..protocol.state import CLOSED, CONNECTING, OPEN
from ..speedups import load
from . import _timers as timers
from ._options import DEFAULT_OPTIONS, ConnectionOptions

#: The C twins of :func:`broadcast` and of the batcher's flush, or ``None``.
_native = load("wavecast.asyncio._speedups")

__all__ = ["BroadcastResult", "ConcurrencyError", "Connection", "MessageSink", "broadcast"]

Data = str | bytes | bytearray | memoryview


class ConcurrencyError(LocalProtocolError, RuntimeError):
    """Two coroutines called ``recv()`` on the same connection at once."""


class MessageSink(TypingProtocol):
    """What takes a connection's messages as they arrive, instead of ``recv()``.

    See :meth:`Connection.deliver_to`. Both methods are called from the event loop's
    callbacks: they must not block, and an exception they raise fails the connection (1011).
    """

    def message_received(self, message: str | bytes) -> None:
        """Take one message: :class:`str` for text, :class:`bytes` for binary."""

    def connection_closed(self) -> None:
        """TCP closed; called once, and no message follows."""


class _WriteBatcher:
    """Flushes every connection that queued frames during this turn of the loop, once.

    With a ``delay``, it flushes that many seconds after the first frame instead, so that
    frames from several turns leave together: one write for all the publications a busy
    channel got meanwhile (Centrifugo's write delay).
    """

    __slots__ = ("_delay", "_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float | None = None) -> None:
        self._loop = loop
        self._delay = delay
        self._pending: list[Connection] = []

    def add(self, connection: Connection) -> None:
        if not self._pending:
            if self._delay:
                self._loop.call_later(self._delay, self._run)
            else:
                self._loop.call_soon(self._run)
        self._pending.append(connection)

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        if _native is not None:
            _native.flush(pending)
            return
        for connection in pending:
            connection._flush()


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float | None, _WriteBatcher]] = (
    weakref.WeakKeyDictionary()
)


def _batcher(loop: asyncio.AbstractEventLoop, delay: float | None = None) -> _WriteBatcher:
    """The loop's batcher for connections that write with ``delay``."""
    batchers = _batchers.get(loop)
    if batchers is None:
        batchers = _batchers[loop] = {}
    batcher = batchers.get(delay or None)
    if batcher is None:
        batcher = batchers[delay or None] = _WriteBatcher(loop, delay or None)
    return batcher


class _FanOutFields(asyncio.Protocol):
    """The fields that a broadcast reads for every connection it reaches.

    The slots of a base class come first in an instance, so these share a cache line; a
    fan-out to ten thousand connections is bound by fetching them.
    """

    __slots__ = ("_dirty", "_prepared_ok", "_writing_paused", "protocol", "write_limit")

    protocol: Protocol
    write_limit: int
    _dirty: bool
    _prepared_ok: bool
    _writing_paused: bool


class Connection(_FanOutFields):
    """One WebSocket connection over an asyncio transport.

    Args:
        protocol: the sans-I/O protocol of this side; the connection logs to its logger.
        options: the connection's settings, kept as ``options`` (a server's connections share
            them); ``write_limit`` is copied to the attribute of that name, which the C
            extension reads, and ``ping_interval``, ``ping_timeout``, ``close_timeout`` and
            ``max_queue`` are read-only properties of the same names.
    """

    __slots__ = (
        "_batcher",
        "_close_handle",
        "_drain_waiter",
        "_fd",
        "_keepalive_tick",
        "_lost",
        "_lost_waiter",
        "_messages",
        "_ping_timeout_tick",
        "_pings",
        "_reading_paused",
        "_recv_waiter",
        "_sink",
        "_unflushed",
        "latency",
        "loop",
        "on_writable",
        "options",
        "transport",
    )

    def __init__(self, protocol: Protocol, options: ConnectionOptions = DEFAULT_OPTIONS) -> None:
        self.protocol = protocol
        # Shared by a server's connections: a slot each for its settings would be 40 bytes.
        self.options = options
        self.write_limit = options.write_limit
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        #: Round-trip time of the last keepalive ping, in seconds.
        self.latency = 0.0
        self._batcher = _batcher(self.loop, options.write_delay)
        self._dirty = False
        self._unflushed = 0
        # Whether this side sends prepared frames as they are: a server without compression.
        self._prepared_ok = False
        # The socket's descriptor, where the native flush may write directly; -1 if it can't
        # (TLS, or a transport without a socket).
        self._fd = -1
        # Created with the first message: an idle connection doesn't pay for a deque.
        self._messages: collections.deque[str | bytes] | None = None
        self._recv_waiter: asyncio.Future[None] | None = None
        self._sink: MessageSink | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost = False
        self._lost_waiter: asyncio.Future[None] | None = None
        # The pings waiting for their pong, by payload; None while there are none (most of
        # the time: an empty dict a connection would be 64 bytes).
        self._pings: dict[bytes, tuple[asyncio.Future[float] | None, float]] | None = None
        # The ticks of this connection's deadlines in the loop's timing wheels, or None.
        self._keepalive_tick: int | None = None
        self._ping_timeout_tick: int | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        #: Called when the peer reads again after :attr:`writing_paused` was true.
        self.on_writable: Callable[[], None] | None = None

    # --- public API ----------------------------------------------------------------------

    @property
    def ping_interval(self) -> float | None:
        """Seconds between keepalive pings; ``None``: none."""
        return self.options.ping_interval

    @property
    def ping_timeout(self) -> float | None:
        """Seconds to wait for a keepalive pong before failing with 1011."""
        return self.options.ping_timeout

    @property
    def close_timeout(self) -> float | None:
        """Seconds to wait for the closing handshake and the end of TCP."""
        return self.options.close_timeout

    @property
    def max_queue(self) -> int | None:
        """Received messages to buffer before pausing reads."""
        return self.options.max_queue

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        """Where the connection logs: its protocol's logger."""
        return self.protocol.logger

    @property
    def debug(self) -> bool:
        """Whether the logger logs debug messages; read where a message would be logged."""
        return self.protocol.logger.isEnabledFor(logging.DEBUG)

    @property
    def state(self) -> Any:
        """The :class:`~wavecast.protocol.State` of the connection."""
        return self.protocol.state

    @property
    def close_code(self) -> int | None:
        """The close code received; 1006 if TCP closed without one; ``None`` while open."""
        return self.protocol.close_code if self._lost or self.protocol.close_rcvd else None

    @property
    def close_reason(self) -> str | None:
        """The close reason received; ``None`` while open."""
        return self.protocol.close_reason if self._lost or self.protocol.close_rcvd else None

    @property
    def remote_address(self) -> Any:
        """The peer's address, as the socket gives it: ``(host, port)`` for IPv4."""
        return self.transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """This end's address, as the socket gives it."""
        return self.transport.get_extra_info("sockname")

    def recv(self) -> Awaitable[str | bytes]:
        """Return the next message: :class:`str` for text, :class:`bytes` for binary.

        A coroutine: ``message = await connection.recv()``.

        Raises:
            ConnectionClosed: the connection is closed and every message was read.
            ConcurrencyError: another coroutine is already waiting in ``recv()``.
        """
        return self._recv(False)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Iterate over messages until the connection closes; raise if it closed with an error."""
        return self

    def __anext__(self) -> Awaitable[str | bytes]:
        # A coroutine per message, and no async generator: an idle connection waiting in
        # ``async for`` holds one suspended frame.
        return self._recv(True)

    async def _recv(self, iterating: bool) -> str | bytes:
        while True:
            messages = self._messages
            if messages:
                message = messages.popleft()
                if self._reading_paused and len(messages) <= (self.options.max_queue or 0) // 4:
                    self._reading_paused = False
                    self._resume_reading()
                return message
            if self._lost:
                exc = self._closed_exc()
                if iterating and isinstance(exc, ConnectionClosedOK):
                    raise StopAsyncIteration
                raise exc
            if self._recv_waiter is not None:
                raise ConcurrencyError("can't call recv() while another coroutine is waiting in recv()")
            if self._sink is not None:
                raise ConcurrencyError("can't call recv() when messages go to a sink")
            waiter = self._recv_waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None

    async def send(self, message: Data) -> None:
        """Send a message: a :class:`str` as text, bytes-like as binary.

        Waits while the write buffer is above ``write_limit``, so a peer that doesn't read
        can't make memory grow without bound.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        protocol = self.protocol
        if protocol.state is not OPEN:
            if protocol.state is CONNECTING:
                raise LocalProtocolError("can't send data when state is CONNECTING")
            raise self._closed_exc()
        if isinstance(message, str):
            protocol.send_text(message)
        else:
            protocol.send_binary(message)
        self._unflushed += len(message) + 14
        if not self._dirty:
            self._dirty = True
            self._batcher.add(self)
        if self._unflushed > self.write_limit:
            self._flush()
        if self._writing_paused:
            await self._drain()

    async def send_fragments(self, fragments: Iterable[Data]) -> None:
        """Send one message in several frames; every fragment must have the same type."""
        iterator = iter(fragments)
        try:
            first = next(iterator)
        except StopIteration:
            return
        protocol = self.protocol
        if protocol.state is not OPEN:
            raise self._closed_exc()
        if isinstance(first, str):
            protocol.send_text(first, fin=False)
        else:
            protocol.send_binary(first, fin=False)
        for fragment in iterator:
            protocol.send_continuation(fragment, fin=False)
            self._flush()
            if self._writing_paused:
                await self._drain()
        protocol.send_continuation(b"" if not isinstance(first, str) else "", fin=True)
        self._flush()

    async def ping(self, data: Data | None = None) -> Awaitable[float]:
        """Send a ping; return an awaitable that gives the round-trip time when the pong arrives.

        ``data`` defaults to 4 random bytes. A pong also answers every earlier ping.
        """
        pings = self._pings or {}
        if data is None:
            payload = os.urandom(4)
            while payload in pings:
                payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in pings:
                raise ConcurrencyError("already waiting for a pong with the same data")
        if self.protocol.state is not OPEN:
            raise self._closed_exc()
        self.protocol.send_ping(payload)
        self._flush()
        waiter: asyncio.Future[float] = self.loop.create_future()
        pings[payload] = (waiter, self.loop.time())
        self._pings = pings
        return waiter

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake and wait until TCP is closed, at most ``close_timeout``."""
        self._start_closing(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        if self._lost:
            return
        if self._lost_waiter is None:
            self._lost_waiter = self.loop.create_future()
        await asyncio.shield(self._lost_waiter)

    def deliver_to(self, sink: MessageSink) -> None:
        """Hand every message to ``sink`` as it arrives, from now on, instead of queueing it.

        Messages already queued go first. A server's handler may then return without closing
        the connection: the sink keeps it, with no task waiting in ``recv()`` (a task and its
        frames cost more than a connection's other objects). The sink slows a fast peer down
        with :meth:`pause_reading`.

        Raises:
            ConcurrencyError: a coroutine is waiting in ``recv()``.
        """
        if self._recv_waiter is not None:
            raise ConcurrencyError("can't deliver messages to a sink while a coroutine is waiting in recv()")
        self._sink = sink
        messages, self._messages = self._messages, None
        if self._reading_paused:
            self.resume_reading()
        if messages:
            for message in messages:
                self._to_sink(sink, message)
        if self._lost:
            self._sink = None
            sink.connection_closed()

    def pause_reading(self) -> None:
        """Stop reading from the peer until :meth:`resume_reading`: for a :class:`MessageSink`
        whose messages wait."""
        if not self._reading_paused:
            self._reading_paused = True
            if not self._lost:
                self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read again after :meth:`pause_reading`, unless the peer doesn't read what we write."""
        if self._reading_paused:
            self._reading_paused = False
            if not self._lost:
                self._resume_reading()

    def _to_sink(self, sink: MessageSink, message: str | bytes) -> None:
        try:
            sink.message_received(message)
        except Exception:
            self.logger.exception("message sink failed")
            self._fail(CloseCode.INTERNAL_ERROR)

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.write_limit, low=self.write_limit // 4)
        self._fd = _plain_socket_fd(transport)

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            self._process_events(events)
        if protocol._out:
            self._flush()
        if protocol.state is not OPEN:
            self._check_close_expected()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._process_events(self.protocol.events_received())
        self._flush()
        # False lets the transport close itself.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.protocol.receive_eof()
        self.protocol.data_to_send()
        self._stop_keepalive()
        if self._ping_timeout_tick is not None:
            self._ping_timeout_wheel().discard(self, self._ping_timeout_tick)
            self._ping_timeout_tick = None
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)
        if self._pings:
            closed = self._closed_exc()
            for ping_waiter, _ in self._pings.values():
                if ping_waiter is not None and not ping_waiter.done():
                    ping_waiter.set_exception(closed)
                    # The caller may never await it; don't log "exception never retrieved".
                    ping_waiter.exception()
            self._pings = None
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        sink = self._sink
        if sink is not None:
            # Let go of it: the sink holds this connection, and nothing else needs the cycle.
            self._sink = None
            try:
                sink.connection_closed()
            except Exception:
                self.logger.exception("message sink failed")
        if self.debug:
            self.logger.debug("= connection closed: %s %s", self.protocol.close_code, exc or "")

    def pause_writing(self) -> None:
        self._writing_paused = True
        # Stop reading from a peer that doesn't read what is written to it: the pongs that
        # answer a flood of pings, or the answers to pipelined requests, would otherwise grow
        # the write buffer without bound. The peer reads again, or the keepalive or the close
        # timeout ends the connection.
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._resume_reading()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_writable is not None:
            self.on_writable()

    # --- internals -----------------------------------------------------------------------

    def _process_events(self, events: list[Event]) -> None:
        messages = self._messages
        for event in events:
            if isinstance(event, str | bytes):
                sink = self._sink
                if sink is not None:
                    self._to_sink(sink, event)
                    continue
                if messages is None:
                    messages = self._messages = collections.deque()
                messages.append(event)
            elif isinstance(event, Pong):
                self._acknowledge_pings(event.data)
            elif isinstance(event, Close):
                if self.debug:
                    self.logger.debug("< close %d %s", event.code, event.reason)
            else:
                self._handle_event(event)
        if messages:
            waiter = self._recv_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            max_queue = self.options.max_queue
            if max_queue is not None and len(messages) >= max_queue and not self._reading_paused:
                self._reading_paused = True
                self.transport.pause_reading()

    def _handle_event(self, event: Event) -> None:
        """Handle a handshake event; the server and client sides override this."""

    def _resume_reading(self) -> None:
        """Read again, unless the queue is full or the peer still isn't reading what we write."""
        if not self._reading_paused and not self._writing_paused:
            self.transport.resume_reading()

    def _flush(self) -> None:
        """Write everything the protocol queued; ``b""`` closes the write side."""
        self._dirty = False
        self._unflushed = 0
        data = self.protocol.data_to_send()
        if not data:
            return
        transport = self.transport
        if transport.is_closing():
            return
        if len(data) == 1 and data[0]:
            transport.write(data[0])
            return
        chunk: list[bytes] = []
        for item in data:
            if not item:
                if chunk:
                    transport.write(b"".join(chunk))
                    chunk = []
                self._write_eof()
                return
            if len(item) > 65536:
                # Large payloads go out as they are; joining would copy them.
                if chunk:
                    transport.write(b"".join(chunk))
                    chunk = []
                transport.write(item)
            else:
                chunk.append(item)
        if chunk:
            transport.write(b"".join(chunk))

    def _write_eof(self) -> None:
        transport = self.transport
        try:
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        except OSError:
            # The peer reset the connection between the last write and the half-close, as a
            # load balancer's health check does as soon as it has its answer (ENOTCONN):
            # there's nobody left to close with, and connection_lost follows the abort.
            transport.abort()
        self._check_close_expected()

    async def _drain(self) -> None:
        if self._lost:
            raise self._closed_exc()
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self.loop.create_future()
        await self._drain_waiter
        if self._lost:
            raise self._closed_exc()

    def _check_close_expected(self) -> None:
        """Start the close deadline when the peer should close TCP soon."""
        if self._close_handle is None and not self._lost and self.protocol.close_expected():
            self._stop_keepalive()
            if self.options.close_timeout is not None:
                self._close_handle = self.loop.call_later(self.options.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        if self.debug:
            self.logger.debug("! timed out waiting for TCP close")
        abort(self.transport)

    def _start_keepalive(self) -> None:
        """Schedule the first keepalive ping, somewhere in the second half of ``ping_interval``.

        The spread keeps connections opened together (a reconnecting crowd) from pinging in the
        same tick of the loop for as long as they live.
        """
        interval = self.options.ping_interval
        if interval is not None:
            self._keepalive_tick = self._keepalive_wheel().add(self, interval, spread=interval / 2)

    def _keepalive_wheel(self) -> timers.Wheel[Connection]:
        assert self.options.ping_interval is not None
        return timers.wheel(self.loop, Connection._keepalive, self.options.ping_interval)

    def _ping_timeout_wheel(self) -> timers.Wheel[Connection]:
        assert self.options.ping_timeout is not None
        return timers.wheel(self.loop, Connection._ping_timed_out, self.options.ping_timeout)

    def _stop_keepalive(self) -> None:
        if self._keepalive_tick is not None:
            self._keepalive_wheel().discard(self, self._keepalive_tick)
            self._keepalive_tick = None

    def _keepalive(self) -> None:
        self._keepalive_tick = None
        if self.protocol.state is not OPEN:
            return
        payload = os.urandom(4)
        self.protocol.send_ping(payload)
        self._flush()
        if self._pings is None:
            self._pings = {}
        self._pings[payload] = (None, self.loop.time())
        if self.options.ping_timeout is not None and self._ping_timeout_tick is None:
            self._ping_timeout_tick = self._ping_timeout_wheel().add(self, self.options.ping_timeout)
        interval = self.options.ping_interval
        assert interval is not None
        self._keepalive_tick = self._keepalive_wheel().add(self, interval)

    def _ping_timed_out(self) -> None:
        self._ping_timeout_tick = None
        if self.debug and self.protocol.state is OPEN:
            self.logger.debug("! keepalive ping timed out")
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    def _fail(self, code: int, reason: str = "") -> None:
        """Fail an open connection (RFC 6455 section 7.1.7): its close frame leaves now, then TCP ends."""
        if self.protocol.state is OPEN:
            self.protocol.fail(code, reason)
            self._flush()
            self._check_close_expected()

    def _acknowledge_pings(self, data: bytes) -> None:
        pings = self._pings
        if pings is None or data not in pings:
            return  # an unsolicited pong
        now = self.loop.time()
        # A pong answers its ping and every ping sent before it (RFC 6455 section 5.5.3).
        for payload in list(pings):
            waiter, sent = pings.pop(payload)
            if waiter is None:
                self.latency = now - sent
            elif not waiter.done():
                waiter.set_result(now - sent)
            if payload == data:
                break
        if not pings:
            self._pings = None
        if self._ping_timeout_tick is not None and not any(w is None for w, _ in pings.values()):
            self._ping_timeout_wheel().discard(self, self._ping_timeout_tick)
            self._ping_timeout_tick = None

    def _closed_exc(self) -> ConnectionClosed:
        protocol = self.protocol
        rcvd = protocol.close_rcvd
        code = protocol.close_code if protocol.state is CLOSED or rcvd else CloseCode.ABNORMAL_CLOSURE
        reason = rcvd.reason if rcvd is not None else ""
        assert code is not None
        exc_type = ConnectionClosedOK if rcvd is not None and rcvd.code in OK_CLOSE_CODES else ConnectionClosedError
        sent = protocol.close_sent
        return exc_type(
            code,
            reason,
            sent_code=None if sent is None else sent.code,
            sent_reason="" if sent is None else sent.reason,
            rcvd_then_sent=protocol.close_rcvd_then_sent,
        )

    @property
    def writing_paused(self) -> bool:
        """Whether the transport's buffer is above ``write_limit``: the peer isn't reading."""
        return self._writing_paused

    def write_prepared(self, message: PreparedMessage) -> None:
        """Queue a prepared message now, without waiting; it leaves at the end of this loop turn.

        This doesn't apply backpressure: callers check :attr:`writing_paused` first.
        """
        protocol = self.protocol
        if protocol.state is not OPEN or protocol._out_fragmented:
            return
        if self._prepared_ok:
            frame = message.frame
            protocol._queue(frame)
            self._unflushed += len(frame)
        else:
            if message.opcode == OP_TEXT:
                protocol.send_text(message.payload.decode())
            else:
                protocol.send_binary(message.payload)
            self._unflushed += len(message.payload) + 14
        if not self._dirty:
            self._dirty = True
            self._batcher.add(self)
        if self._unflushed > self.write_limit:
            # Let the transport see the data, so that it pauses writing if the peer is slow.
            self._flush()

    def close_nowait(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake without waiting for it to complete."""
        self._start_closing(code, reason)

    def _start_closing(self, code: int, reason: str, *, flush_handshake: bool = False) -> None:
        """Send a close frame and start the close deadline; end a connection still opening.

        Args:
            flush_handshake: on a connection still in its opening handshake, let what was
                written (the answer to a kept-alive HTTP request) leave before TCP closes,
                instead of dropping it: a server that shuts down answers what it answered.
        """
        protocol = self.protocol
        if protocol.state is OPEN:
            protocol.send_close(code, reason)
            self._flush()
            self._check_close_expected()
        elif protocol.state is CONNECTING:
            if flush_handshake:
                self.transport.close()
            else:
                self.transport.abort()


def abort(transport: asyncio.Transport) -> None:
    """Abort a connection whose peer stopped cooperating, and free what the kernel holds for it.

    ``transport.abort()`` alone closes the socket, but bytes the peer never read stay in the
    kernel, which keeps retrying them for minutes (an orphaned socket, up to the send buffer's
    size, megabytes by default). When bytes are still unsent, the socket lingers for 0 seconds
    instead: the kernel drops them and resets the connection. A peer that read everything still
    gets an orderly end of TCP.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and _unsent(transport, sock):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


#: ``struct linger`` with ``l_onoff`` 1 and ``l_linger`` 0: close() resets the connection.
_LINGER_ZERO = struct.pack("ii", 1, 0)


def _unsent(transport: asyncio.Transport, sock: Any) -> bool:
    """Whether bytes wait for the peer, in the transport or in the kernel's send queue."""
    if transport.get_write_buffer_size():
        return True
    if _TIOCOUTQ is None:
        return False
    try:
        queued = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return False
    unsent: int = struct.unpack("i", queued)[0]
    return unsent > 0


#: The ioctl that reads a TCP socket's unsent bytes (SIOCOUTQ), on Linux.
_TIOCOUTQ: int | None = None
if sys.platform == "linux":  # pragma: no branch
    import fcntl
    import termios

    _TIOCOUTQ = termios.TIOCOUTQ


class BroadcastResult(NamedTuple):
    """What :func:`broadcast` did: connections it queued the message to, and skipped."""

    sent: int
    skipped: int


def broadcast(
    connections: Iterable[Connection], message: Data | PreparedMessage, *, exclude: Connection | None = None
) -> BroadcastResult:
    """Send ``message`` to every open connection, framing it once.

    A connection whose write buffer is over its ``write_limit`` is skipped instead of
    letting memory grow for a peer that doesn't read; so is a connection that isn't open.
    ``exclude`` is left out, and not counted: the sender of a message that goes to every
    other connection, which then needs no copy of ``connections`` without it.
    This doesn't wait: the frames leave at the end of the current turn of the event loop,
    in one write per connection.
    """
    prepared = message if isinstance(message, PreparedMessage) else PreparedMessage.of(message)
    frame = prepared.frame
    batcher = _batcher(asyncio.get_running_loop())
    if _native is not None:
        sent, skipped, slow, flush_now = _native.broadcast(connections, frame, OPEN, batcher, exclude)
    else:
        sent, skipped, slow, flush_now = _broadcast(connections, frame, batcher, exclude)
    for connection in slow:
        connection.write_prepared(prepared)
    for connection in flush_now:
        connection._flush()
    return BroadcastResult(sent, skipped)


def _broadcast(
    connections: Iterable[Connection], frame: bytes, batcher: _WriteBatcher, exclude: Connection | None = None
) -> tuple[int, int, list[Connection], list[Connection]]:
    """Cork ``frame`` on every open connection that takes prepared frames, but ``exclude``.

    Return the counts, the connections that must frame the message themselves (clients
    and connections with compression), and those whose corked bytes passed their write
    limit, to flush now. ``_speedups.broadcast`` is this function in C.
    """
    sent = skipped = 0
    slow: list[Connection] = []
    flush_now: list[Connection] = []
    size = len(frame)
    for connection in connections:
        if connection is exclude:
            continue
        protocol = connection.protocol
        # A fragmented message in progress can't have another message slipped in between.
        if protocol.state is not OPEN or connection._writing_paused or protocol._out_fragmented:
            skipped += 1
            continue
        sent += 1
        if not connection._prepared_ok:
            slow.append(connection)
            continue
        out = protocol._out
        if out is None:
            out = protocol._out = []
        out.append(frame)
        # Frames already corked mean the connection is registered for this turn.
        if len(out) == 1 and not connection._dirty:
            connection._dirty = True
            connection._batcher.add(connection)
        # Bounded without counting bytes per delivery: the frames a broadcast corks, at this
        # frame's size, plus what send() counts in _unflushed, each under the write limit.
        if len(out) * size > connection.write_limit:
            flush_now.append(connection)
    return sent, skipped, slow, flush_now


def _plain_socket_fd(transport: asyncio.BaseTransport) -> int:
    """The descriptor of a transport's TCP or Unix socket, or -1 when it isn't plain (TLS)."""
    if _native is None or transport.get_extra_info("sslcontext") is not None:
        return -1
    if transport.get_extra_info("ssl_object") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return -1
    try:
        return int(sock.fileno())
    except (OSError, ValueError):  # pragma: no cover - a transport closed as it opened
        return -1
