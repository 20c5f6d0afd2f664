"""One client of the real-time protocol: its state, command dispatch and outgoing queue.

The session is connecting until its connect command succeeds, then connected, then closed;
the table is :data:`SESSION_TRANSITIONS`. Commands run one after the other, in the order
they arrive, and each reply is written as soon as its command is done, so that a subscribe
reply always comes before the channel's first publication.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from .. import transitions
from ..asyncio import _timers as timers
from ..codes import (
    DISCONNECT_BAD_REQUEST,
    DISCONNECT_CONNECTION_CLOSED,
    DISCONNECT_EXPIRED,
    DISCONNECT_INAPPROPRIATE_PROTOCOL,
    DISCONNECT_NO_PONG,
    DISCONNECT_SERVER_ERROR,
    DISCONNECT_SLOW,
    DISCONNECT_STALE,
    DISCONNECT_SUB_EXPIRED,
    DISCONNECT_TOO_MANY_REQUESTS,
    ERROR_INTERNAL,
    ERROR_METHOD_NOT_FOUND,
    ERROR_TOO_MANY_REQUESTS,
    Disconnect,
    Error,
)
from ..engines.base import ClientInfo, Publication
from ..exceptions import CommandError, DisconnectError, EngineError, StateError
from ..protocol.events import Request
from ..protocol.prepared import PreparedMessage
from . import refreshing
from .codec import Codec
from .codec.json import JSONCodec, json_data
from .codec.protobuf import ProtobufCodec
from .codec.schema import Command, ErrorMsg, PublicationMsg, Push, Reply, publication_msg
from .commands import Handler, dispatch
from .config import SlowConsumerPolicy
from .delta import prepare as prepare_delta
from .outbox import Outbox
from .ratelimit import FULL, TokenBucket, take_tokens
from .subscription import SUBSCRIBED, Subscription
from .transport import Transport

if TYPE_CHECKING:
    from .node import Node

__all__ = ["SESSION_TRANSITIONS", "Session", "SessionAction", "SessionState"]

logger = logging.getLogger("wavecast.realtime")


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


CONNECTING, CONNECTED, CLOSED = SessionState


class SessionAction(enum.Enum):
    """What can happen to a session; the value completes "can't ... when state is X"."""

    CONNECT = "complete the connect command"
    CLOSE = "close"


SESSION_TRANSITIONS: dict[SessionState, dict[SessionAction, SessionState]] = {
    CONNECTING: {SessionAction.CONNECT: CONNECTED, SessionAction.CLOSE: CLOSED},
    CONNECTED: {SessionAction.CLOSE: CLOSED},
    CLOSED: {},
}


class Session:
    """A connected (or connecting) client.

    Attributes:
        client: the connection's unique id.
        user: the user id; ``""`` when anonymous.
        info: JSON bytes attached to the connection.
        subscriptions: the client's subscriptions by channel.
        outbox: the messages waiting for the client to read, ``None`` while none wait.
        request: the HTTP request that opened the connection; ``None`` once the client has
            connected when no hook that runs later is set (:attr:`Hooks.hooks_after_connect
            <wavecast.realtime.hooks.Hooks.hooks_after_connect>`): ``on_connecting`` sees it in
            its context, and a connection that keeps it holds 0.4 KiB more.
        codec: the form of the protocol the client speaks, :class:`JSONCodec` (text
            messages) or :class:`ProtobufCodec` (binary messages); fixed for the connection.
        emulation: the session id that the client's emulation requests name, on HTTP-streaming
            and SSE (:mod:`~wavecast.realtime.emulation`); ``""`` on WebSocket.
    """

    __slots__ = (
        "_after_reply",
        "_commands_full_at",
        "_expire_tick",
        "_loop",
        "_ping_tick",
        "_pong_tick",
        "_publications",
        "_stale_tick",
        "_tasks",
        "_text",
        "client",
        "codec",
        "disconnect_reason",
        "emulation",
        "expire_at",
        "info",
        "meta",
        "node",
        "outbox",
        "request",
        "rpc_in_flight",
        "state",
        "subscriptions",
        "transport",
        "user",
    )

    def __init__(
        self,
        node: Node,
        transport: Transport,
        *,
        request: Request | None = None,
        codec: Codec = JSONCodec,
        emulation: str = "",
    ) -> None:
        self.node = node
        self.emulation = emulation
        self.transport = transport
        self.request = request
        self.codec: Codec = codec
        self._text = not codec.binary
        self.client = str(uuid.uuid4())
        self.user = ""
        self.info: bytes | None = None
        self.meta: bytes | None = None
        self.expire_at = 0
        self.state = CONNECTING
        self.subscriptions: dict[str, Subscription] = {}
        self.disconnect_reason: Disconnect | None = None
        config = node.config
        # Created when a message must wait for the client and dropped once it has drained:
        # most clients read as fast as they are written to.
        self.outbox: Outbox | None = None
        # The command rate limit's bucket, as the time it is full again (see ratelimit).
        self._commands_full_at = FULL
        # Created when first needed: most clients never publish, run an RPC or have a command
        # queue follow-ups, and an empty set alone is 216 bytes.
        self._publications: TokenBucket | None = None
        self.rpc_in_flight = 0
        self._after_reply: list[Callable[[], None]] | None = None
        self._tasks: set[asyncio.Task[None]] | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        # The ticks of the session's deadlines in the loop's timing wheels (see _wheel), or None:
        # a timer handle per client and per deadline would cost more than the rest of it.
        self._stale_tick: int | None = self._wheel(_STALE).add(self, config.client_stale_close_delay)
        self._ping_tick: int | None = None
        self._pong_tick: int | None = None
        self._expire_tick: int | None = None
        transport.session = self

    def __repr__(self) -> str:
        return f"<Session {self.client} user={self.user!r} {self.state.value}>"

    @property
    def connecting(self) -> bool:
        return self.state is CONNECTING

    @property
    def closed(self) -> bool:
        return self.state is CLOSED

    def client_info(self, subscription: Subscription | None = None) -> ClientInfo:
        """Who this client is, as presence, joins, leaves and its publications show it."""
        return ClientInfo(
            client=self.client,
            user=self.user,
            conn_info=self.info,
            chan_info=None if subscription is None else subscription.info,
        )

    def _apply(self, action: SessionAction) -> None:
        self.state = transitions.next_state(SESSION_TRANSITIONS, self.state, action, StateError)

    # --- incoming ------------------------------------------------------------------------

    async def handle_message(self, data: str | bytes) -> None:
        """Handle one WebSocket message from the client: one or more commands.

        ``data`` is a text message as :class:`str`, a binary one as :class:`bytes`; a message
        of the other kind than the session's codec speaks is a bad request (3501).
        """
        if self.state is CLOSED:
            return
        stats = self.node.stats
        stats.messages_in += 1
        stats.bytes_in += len(data)
        if isinstance(data, str) is not self._text:
            logger.info("client %s sent a %s message to a %s session", self.client, _kind(data), self.codec.name)
            self.disconnect(DISCONNECT_BAD_REQUEST)
            return
        try:
            commands = self.codec.decode_commands(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            logger.info("client %s sent a malformed command: %s", self.client, exc)
            self.disconnect(DISCONNECT_BAD_REQUEST)
            return
        for command in commands:
            await self._handle_command(command)
            if self.state is CLOSED:
                return

    async def _handle_command(self, command: Command) -> None:
        if self.state is CONNECTING and command.connect is None:
            self.disconnect(DISCONNECT_BAD_REQUEST)
            return
        if command.id == 0 and command.send is None:
            if _is_empty(command):
                self._pong()
                return
            self.disconnect(DISCONNECT_BAD_REQUEST)
            return
        if command.connect is None and not self._take_command():
            if command.id:
                self._reply(Reply(id=command.id, error=_error_msg(ERROR_TOO_MANY_REQUESTS)))
            else:
                # A send has no reply to carry error 111: disconnect with 3013, which the client
                # reconnects after, as Centrifuge does wherever a reply can't carry the error.
                self.disconnect(DISCONNECT_TOO_MANY_REQUESTS)
            return
        method, handler, request = dispatch(command)
        stats = self.node.stats
        stats.commands[method] += 1
        if handler is None:
            stats.errors[ERROR_METHOD_NOT_FOUND.code] += 1
            self._reply(Reply(id=command.id, error=_error_msg(ERROR_METHOD_NOT_FOUND)))
            return
        if method == "rpc":
            # RPCs run beside later commands, so that a slow handler doesn't hold up the
            # client's pongs; rpc_in_flight_limit bounds how many run at once.
            self.spawn(self._run(handler, command.id, request, concurrent=True))
            return
        await self._run(handler, command.id, request, concurrent=False)

    async def _run(self, handler: Handler, command_id: int, request: Any, *, concurrent: bool) -> None:
        """Run one command and write its reply, then what the command queued to follow it."""
        stats = self.node.stats
        try:
            reply = await handler(self, command_id, request)
        except CommandError as exc:
            reply = Reply(id=command_id, error=_error_msg(exc.error))
        except DisconnectError as exc:
            self.disconnect(exc.disconnect)
            return
        except EngineError as exc:
            logger.warning("engine error for client %s: %s", self.client, exc)
            reply = Reply(id=command_id, error=_error_msg(ERROR_INTERNAL))
        except Exception:
            logger.exception("command of client %s failed", self.client)
            reply = Reply(id=command_id, error=_error_msg(ERROR_INTERNAL))
        finally:
            # A concurrent command never queues follow-ups; the sequential one may be
            # awaiting with its own queued, which aren't a concurrent command's to run.
            after: list[Callable[[], None]] | None = None
            if not concurrent:
                after, self._after_reply = self._after_reply, None
        if self.state is CLOSED:
            return
        if reply is not None:
            if reply.error is not None:
                stats.errors[reply.error.code] += 1
            # A send (id 0) has no reply: an error without an id would read as a server ping.
            if command_id:
                self._reply(reply)
        if after is not None:
            for callback in after:
                callback()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` beside the commands; it is cancelled when the session closes."""
        task = self._loop.create_task(coroutine)
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = set()
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def after_reply(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` right after the current command's reply is written."""
        if self._after_reply is None:
            self._after_reply = []
        self._after_reply.append(callback)

    def _take_command(self) -> bool:
        config = self.node.config
        rate = config.command_rate
        if rate is None:
            return True
        full_at = take_tokens(self._commands_full_at, time.monotonic(), rate, config.command_burst)
        if full_at is None:
            return False
        self._commands_full_at = full_at
        return True

    def take_publication_token(self) -> bool:
        now = time.monotonic()
        bucket = self._publications
        if bucket is None:
            config = self.node.config
            # Full, as it would be by now had it been created with the session.
            bucket = self._publications = TokenBucket(config.publication_rate, config.publication_burst, now)
        return bucket.take(now)

    # --- outgoing ------------------------------------------------------------------------

    def _reply(self, reply: Reply) -> None:
        self.send(PreparedMessage(self.codec.encode_reply(reply), text=self._text))

    def send(self, message: PreparedMessage) -> None:
        """Send a reply or a push that must not be dropped."""
        self._deliver(message, None, None)

    def deliver(self, message: PreparedMessage, policy: SlowConsumerPolicy, key: object = None) -> None:
        """Send a publication under its channel's slow-consumer policy."""
        self._deliver(message, policy, key)

    def _deliver(self, message: PreparedMessage, policy: SlowConsumerPolicy | None, key: object) -> None:
        if self.state is CLOSED:
            return
        transport = self.transport
        outbox = self.outbox
        if (outbox is None or not outbox.size) and transport.writable():
            transport.write(message)
            return
        if outbox is None:
            outbox = self.outbox = Outbox(self.node.config.client_queue_max_size)
        dropped, replaced = outbox.dropped, outbox.replaced
        if not outbox.push(message, policy=policy, key=key):
            self.node.stats.slow_consumer("disconnect")
            self.disconnect(DISCONNECT_SLOW)
            return
        # Count what the policy did, not every publication that waited in the queue.
        replaced = outbox.replaced - replaced
        dropped = outbox.dropped - dropped - replaced
        if replaced:
            self.node.stats.slow_consumer("conflate", replaced)
        if dropped:
            self.node.stats.slow_consumer("drop_oldest", dropped)

    @property
    def queued(self) -> int:
        """The bytes of the messages waiting for the client to read."""
        outbox = self.outbox
        return 0 if outbox is None else outbox.size

    def writable_again(self) -> None:
        """Move queued messages to the transport while it accepts them: the transport calls
        this when the client reads again."""
        if self.state is CLOSED:
            return
        transport = self.transport
        outbox = self.outbox
        if outbox is None:
            return
        while outbox.size and transport.writable():
            message = outbox.pop()
            if message is None:
                break
            transport.write(message)
        if not outbox.size:
            self.outbox = None

    def push(self, push: Push) -> None:
        """Send a push that is for this client only (unsubscribe, subscribe, message, ...)."""
        self.send(PreparedMessage(self.codec.encode_reply(Reply(push=push)), text=self._text))

    def deliver_publication(self, channel: str, subscription: Subscription, publication: Publication) -> None:
        """Send one publication that is for this client only (recovery, pending ones)."""
        if publication.binary and self._text:
            self.disconnect(DISCONNECT_INAPPROPRIATE_PROTOCOL)
            return
        tags_filter = subscription.tags_filter
        if tags_filter is None or tags_filter.match(publication.tags):
            if subscription.delta:
                message = prepare_delta(self.codec, channel, publication, subscription.base, subscription.channel_id)
                subscription.base = publication.data
            else:
                encoded = self.codec.encode_publication(channel, publication, subscription.channel_id)
                message = PreparedMessage(encoded, text=self._text)
            key = self.node.fanout.conflation_key(channel, publication)
            self.deliver(message, subscription.options.slow_consumer, key)
        if publication.offset:
            subscription.offset = publication.offset

    # --- what a client of this codec can receive ------------------------------------------

    def publication_msgs(self, publications: Iterable[Publication]) -> list[PublicationMsg]:
        """Publications for a reply (history, recovery).

        Raises:
            DisconnectError: 3506, a JSON client can't receive binary data (as in Centrifugo).
        """
        messages = []
        for publication in publications:
            if publication.binary and self._text:
                raise DisconnectError(DISCONNECT_INAPPROPRIATE_PROTOCOL)
            messages.append(publication_msg(publication))
        return messages

    def outgoing_data(self, value: Any) -> bytes:
        """The data of a reply from an application value: bytes as they are, else JSON.

        Raises:
            DisconnectError: 3506, bytes that aren't JSON for a JSON client (as in Centrifugo).
        """
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            if self._text:
                compact = json_data(data)
                if compact is None:
                    raise DisconnectError(DISCONNECT_INAPPROPRIATE_PROTOCOL)
                return compact
            return data
        return self.codec.encode_data(value)

    # --- lifecycle -----------------------------------------------------------------------

    def _wheel(self, kind: int) -> timers.Wheel[Session]:
        """The loop's timing wheel for one kind of deadline, sized for the node's delay."""
        config = self.node.config
        callback, delay = _DEADLINES[kind]
        if kind == _PING:
            delay = config.client_ping_interval
        elif kind == _PONG:
            delay = config.client_pong_timeout
        elif kind == _STALE:
            delay = config.client_stale_close_delay
        return timers.wheel(self._loop, callback, delay)

    def connected(self) -> None:
        """The connect command succeeded: start pinging, stop the stale timer."""
        self._apply(SessionAction.CONNECT)
        if not self.node.hooks_after_connect:
            self.request = None
        if self._stale_tick is not None:
            self._wheel(_STALE).discard(self, self._stale_tick)
            self._stale_tick = None
        interval = self.node.config.client_ping_interval
        if interval:
            # The first ping comes in the second half of the interval, at random, so that
            # clients that connect together (after a restart) don't all ping in one tick.
            self._ping_tick = self._wheel(_PING).add(self, interval, spread=interval / 2)

    def _ping(self) -> None:
        """Send the server's ping, an empty reply, and expect the client's pong in time."""
        self._ping_tick = None
        if self.state is not CONNECTED:
            return
        self.send(_PINGS[self.codec])
        config = self.node.config
        if self._pong_tick is None:
            self._pong_tick = self._wheel(_PONG).add(self, config.client_pong_timeout)
        self._ping_tick = self._wheel(_PING).add(self, config.client_ping_interval)

    def _pong(self) -> None:
        if self._pong_tick is not None:
            self._wheel(_PONG).discard(self, self._pong_tick)
            self._pong_tick = None

    def _no_pong(self) -> None:
        self._pong_tick = None
        self.disconnect(DISCONNECT_NO_PONG)

    def _stale(self) -> None:
        self._stale_tick = None
        self.disconnect(DISCONNECT_STALE)

    def _expiry_grace(self) -> float:
        # A client refreshing its own token gets a grace delay; the server's refresh is on time.
        return 0.0 if self.node.on_refresh is not None else self.node.config.client_expired_close_delay

    def set_expiry(self, expire_at: int) -> None:
        """At ``expire_at``, ask ``on_refresh`` if set; otherwise disconnect the client if it
        hasn't refreshed its token by ``expire_at`` plus a grace delay."""
        self.expire_at = expire_at
        if self._expire_tick is not None:
            self._wheel(_EXPIRE).discard(self, self._expire_tick)
            self._expire_tick = None
        if expire_at:
            delay = expire_at - time.time() + self._expiry_grace()
            self._expire_tick = self._wheel(_EXPIRE).add(self, max(delay, 0))

    def _check_expiry(self) -> None:
        self._expire_tick = None
        if not (self.expire_at and self.expire_at + self._expiry_grace() <= time.time() + 0.001):
            self.set_expiry(self.expire_at)
        elif self.node.on_refresh is not None:
            self.spawn(refreshing.refresh_connection(self))
        else:
            self.disconnect(DISCONNECT_EXPIRED)

    def check_subscription_expiry(self) -> None:
        """Ask ``on_sub_refresh`` about expired subscriptions, if set; otherwise disconnect the
        client if a subscription token expired and wasn't refreshed."""
        now = time.time()
        server_refresh = self.node.on_sub_refresh is not None
        grace = 0.0 if server_refresh else self.node.config.client_expired_close_delay
        for subscription in list(self.subscriptions.values()):
            if not subscription.expire_at or subscription.expire_at + grace > now:
                continue
            if not server_refresh:
                self.disconnect(DISCONNECT_SUB_EXPIRED)
                return
            # Asked once at a time: the refresh sets the next expiry.
            subscription.expire_at = 0
            self.spawn(refreshing.refresh_subscription(self, subscription))

    def disconnect(self, disconnect: Disconnect = DISCONNECT_CONNECTION_CLOSED) -> None:
        """Close the session and its transport, telling the client why; safe to call twice."""
        if self.state is CLOSED:
            return
        was_connected = self.state is CONNECTED
        self._apply(SessionAction.CLOSE)
        self.disconnect_reason = disconnect
        self._stop_timers()
        self.outbox = None
        for task in self._tasks or ():
            task.cancel()
        if disconnect is not DISCONNECT_CONNECTION_CLOSED:
            self.transport.close(disconnect)
        self.node.forget_session(self, disconnect, was_connected)

    def _stop_timers(self) -> None:
        for kind, tick in enumerate((self._ping_tick, self._pong_tick, self._stale_tick, self._expire_tick)):
            if tick is not None:
                self._wheel(kind).discard(self, tick)
        self._stale_tick = self._ping_tick = self._pong_tick = self._expire_tick = None

    def closed_by_transport(self) -> None:
        """The connection closed without a disconnect from the server."""
        self.disconnect(DISCONNECT_CONNECTION_CLOSED)

    def fail(self, exc: BaseException) -> None:
        """Disconnect after an unexpected error."""
        logger.error("client %s failed: %s", self.client, exc)
        self.disconnect(DISCONNECT_SERVER_ERROR)

    def is_subscribed(self, channel: str) -> bool:
        subscription = self.subscriptions.get(channel)
        return subscription is not None and subscription.state is SUBSCRIBED


#: The kinds of a session's deadlines, and what each calls; the delays of the first three
#: come from the node's config. Expiries are seconds to hours away: they share one wheel
#: with the coarsest buckets, a check a little late being harmless (it disconnects after a
#: grace delay, or asks for a refresh).
_PING, _PONG, _STALE, _EXPIRE = range(4)
_DEADLINES: tuple[tuple[Callable[[Session], object], float], ...] = (
    (Session._ping, 0.0),
    (Session._no_pong, 0.0),
    (Session._stale, 0.0),
    (Session._check_expiry, 3600.0),
)

#: The server's ping, an empty reply, in each form: ``{}`` and a zero length.
_PINGS: dict[Codec, PreparedMessage] = {
    codec: PreparedMessage(codec.encode_reply(Reply()), text=not codec.binary) for codec in (JSONCodec, ProtobufCodec)
}


def _kind(data: str | bytes) -> str:
    return "text" if isinstance(data, str) else "binary"


def _is_empty(command: Command) -> bool:
    """An empty command is the client's pong."""
    return command == _EMPTY_COMMAND


_EMPTY_COMMAND = Command()


def _error_msg(error: Error) -> ErrorMsg:
    return ErrorMsg(code=error.code, message=error.message, temporary=error.temporary)
