"""``connect()``: a WebSocket client on asyncio, with reconnection."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl as ssl_module
from collections.abc import AsyncIterator, Generator, Sequence
from types import TracebackType
from typing import Any

from ..exceptions import InvalidHandshake, InvalidStatus
from ..protocol.client import USER_AGENT, ClientProtocol
from ..protocol.deflate import ClientPerMessageDeflateFactory
from ..protocol.events import Event, Response
from ..protocol.extensions import ClientExtensionFactory
from ..protocol.headers import HeadersLike
from ..protocol.limits import DEFAULT_LIMITS, Limits
from ..protocol.uri import parse_uri
from ._options import DEFAULT_OPTIONS, UNSET, ConnectionOptions, MaxSize, connection_options
from .connection import Connection

__all__ = ["ClientConnection", "connect"]

logger = logging.getLogger("wavecast.client")


class ClientConnection(Connection):
    """A connection opened by :func:`connect`.

    Attributes:
        response: the server's handshake response.
    """

    __slots__ = (
        "handshake",
        "response",
    )

    protocol: ClientProtocol

    def __init__(self, protocol: ClientProtocol, options: ConnectionOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(protocol, options)
        self.response: Response | None = None
        self.handshake: asyncio.Future[None] = self.loop.create_future()

    @property
    def subprotocol(self) -> str | None:
        return self.protocol.subprotocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _handle_event(self, event: Event) -> None:
        if not isinstance(event, Response):
            return
        self.response = event
        if self.handshake.done():
            return
        if self.protocol.handshake_exc is not None:
            self.handshake.set_exception(self.protocol.handshake_exc)
        else:
            self._start_keepalive()
            self.handshake.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.handshake.done():
            error = self.protocol.handshake_exc or InvalidHandshake("connection closed during the opening handshake")
            self.handshake.set_exception(error)
            self.handshake.exception()  # retrieved by connect(); don't warn if it was cancelled


def _retryable(exc: BaseException) -> bool:
    """Tell whether a failed connection attempt is worth another try."""
    if isinstance(exc, InvalidStatus):
        return exc.status_code >= 500 or exc.status_code == 429
    return isinstance(exc, OSError | asyncio.TimeoutError | InvalidHandshake)


class connect:
    """Connect to a WebSocket server.

    ``async with connect(uri) as conn: ...``, ``conn = await connect(uri)``, or, to
    reconnect forever with exponential backoff and full jitter::

        async for conn in connect(uri):
            try:
                ...
            except ConnectionClosed:
                continue

    Args:
        uri: a ws:// or wss:// URI.
        ssl: an :class:`ssl.SSLContext` for wss://; the system's default context otherwise.
        origin: the Origin header to send.
        subprotocols: the subprotocols to offer.
        additional_headers: more request headers (``Authorization``, cookies, ...).
        user_agent: the User-Agent header; ``None`` sends none.
        compression: ``"deflate"`` (the default) offers permessage-deflate; ``None``
            offers no compression.
        extensions: extension factories; a permessage-deflate factory here replaces the
            default settings of ``compression``.
        limits: limits on what the server may send.
        max_size: the largest message the server may send, in bytes (1 MiB by default);
            ``None`` for no limit. A shortcut for ``limits.max_message_size`` that also lets a
            message of that size come in one frame; passing both raises :exc:`TypeError`.
        open_timeout: seconds for the TCP connection, TLS and the handshake together.
        ping_interval, ping_timeout: keepalive; ``None`` turns them off.
        close_timeout: seconds to wait for the closing handshake.
        max_queue: received messages buffered before reading pauses.
        write_limit: bytes buffered before ``send()`` waits.
        backoff_min, backoff_max, backoff_factor: delays between reconnection attempts
            when iterating: the n-th delay is uniform in ``[0, min(max, min * factor**n)]``.
        **kwargs: passed to :meth:`asyncio.loop.create_connection` (``host``, ``port``,
            ``sock``, ``server_hostname``, ``local_addr``, ...).

    Attributes:
        options: the settings of every connection, the arguments of the same names.

    Raises:
        ValueError: an option has a value of the wrong type or range.
        TypeError: both ``max_size`` and ``limits.max_message_size`` are given.
    """

    def __init__(
        self,
        uri: str,
        *,
        ssl: ssl_module.SSLContext | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        additional_headers: HeadersLike | None = None,
        user_agent: str | None = USER_AGENT,
        compression: str | None = "deflate",
        extensions: Sequence[ClientExtensionFactory] = (),
        limits: Limits = DEFAULT_LIMITS,
        max_size: MaxSize = UNSET,
        open_timeout: float | None = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | None = 16,
        write_limit: int = 32768,
        backoff_min: float = 0.5,
        backoff_max: float = 60.0,
        backoff_factor: float = 1.618,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        **kwargs: Any,
    ) -> None:
        # The arguments named as its fields, before anything else is assigned here.
        self.options = options = connection_options("connect", locals())
        self.uri = uri
        self.wsuri = parse_uri(uri)
        if self.wsuri.secure and ssl is None:
            ssl = ssl_module.create_default_context()
        elif not self.wsuri.secure and ssl is not None:
            raise ValueError("connect() got an ssl context for a ws:// URI; use wss://")
        self.ssl = ssl
        self.backoff = (backoff_min, backoff_max, backoff_factor)
        self.logger = logger if logger is not None else globals()["logger"]
        self._protocol_kwargs: dict[str, Any] = dict(
            origin=origin,
            subprotocols=subprotocols,
            additional_headers=additional_headers,
            user_agent=user_agent,
            extensions=options.with_compression(extensions, ClientPerMessageDeflateFactory),
            limits=options.limits,
            logger=self.logger,
        )
        self._kwargs = kwargs
        self.connection: ClientConnection | None = None

    async def _create(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        protocol = ClientProtocol(self.wsuri, **self._protocol_kwargs)
        kwargs = dict(self._kwargs)
        if "sock" not in kwargs:
            kwargs.setdefault("host", self.wsuri.host)
            kwargs.setdefault("port", self.wsuri.port)
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
            if "sock" in kwargs or "host" in self._kwargs:
                kwargs.setdefault("server_hostname", self.wsuri.host)

        def factory() -> ClientConnection:
            return ClientConnection(protocol, self.options)

        async with asyncio.timeout(self.options.open_timeout):
            _, connection = await loop.create_connection(factory, **kwargs)
            try:
                await connection.handshake
            except BaseException:
                connection.transport.abort()
                raise
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    async def __aenter__(self) -> ClientConnection:
        self.connection = await self._create()
        return self.connection

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        backoff_min, backoff_max, factor = self.backoff
        attempt = 0
        while True:
            if attempt:
                # Full jitter spreads a crowd of clients that lost the same server.
                await asyncio.sleep(random.uniform(0, min(backoff_max, backoff_min * factor ** (attempt - 1))))
            try:
                connection = await self._create()
            except Exception as exc:
                if not _retryable(exc):
                    raise
                attempt += 1
                self.logger.info("connect to %s failed: %s; retrying", self.uri, exc)
                continue
            self.connection = connection
            try:
                yield connection
            finally:
                await connection.close()
            # Even after a good connection, wait a little before the next one.
            attempt = 1
