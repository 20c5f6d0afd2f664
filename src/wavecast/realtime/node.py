"""The Node: one per process; it wires the hub, the engines and the hooks, fans publications
out to local subscribers, and offers the server-side API (publish, presence, history, ...)."""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from ..asyncio.connection import _batcher
from ..codes import (
    DISCONNECT_EXPIRED,
    DISCONNECT_FORCE_NO_RECONNECT,
    DISCONNECT_INAPPROPRIATE_PROTOCOL,
    DISCONNECT_SHUTDOWN,
    UNSUBSCRIBE_INSUFFICIENT_STATE,
    UNSUBSCRIBE_SERVER,
    Disconnect,
    Unsubscribe,
)
from ..engines.base import (
    Broker,
    ClientInfo,
    HistoryResult,
    PresenceManager,
    PresenceStats,
    Publication,
    StreamPosition,
)
from ..exceptions import ConfigError, DisconnectError
from ..protocol.prepared import PreparedMessage
from ..protocol.state import OPEN
from ..speedups import load
from .auth import TokenVerifier
from .codec import Codec
from .codec.json import JSONCodec, binary_or_json
from .codec.protobuf import ProtobufCodec
from .codec.schema import (
    JoinMsg,
    LeaveMsg,
    MessageMsg,
    Push,
    Reply,
    SubscribeMsg,
    UnsubscribeMsg,
    client_info_msg,
    publication_msg,
    raw,
)
from .config import ChannelOptions, NodeConfig
from .contexts import (
    DisconnectContext,
    OnConnecting,
    OnDisconnect,
    OnMessage,
    OnPublish,
    OnSubscribe,
    RPCHandler,
)
from .hub import Hub
from .session import CLOSED, Session
from .subscription import SUBSCRIBED, UNSUBSCRIBED, Subscription
from .websocket import WebSocketTransport

#: The C loop of the fan-out's common case, or ``None``: see :meth:`Node.on_publication`.
_fanout = load("wavecast.asyncio._speedups")

__all__ = ["LATENCY_BUCKETS", "Node", "NodeStats"]

logger = logging.getLogger("wavecast.realtime")

F = TypeVar("F", bound=Callable[..., Any])


#: Upper bounds, in seconds, of the publish-to-write latency histogram's buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclasses.dataclass
class NodeStats:
    """Counters that the metrics endpoint reads when it is scraped.

    They are plain integers so that counting costs nothing on the hot paths.
    """

    publications: int = 0
    deliveries: int = 0
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    commands: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    errors: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    slow_consumer_actions: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    disconnects: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    #: Counts per bucket of LATENCY_BUCKETS, plus one for larger values; and their sum.
    latency_counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        self.latency_counts[index] += 1
        self.latency_sum += seconds


class Node:
    """A real-time node.

    Args:
        config: channel options, limits and auth; defaults to :class:`NodeConfig()`.
        broker: where publications and history go; in memory by default.
        presence_manager: where presence lives; in memory by default.

    Hooks are attributes: ``on_connecting``, ``on_subscribe``, ``on_publish``, ``on_rpc``
    (for methods without their own handler), ``on_message`` and ``on_disconnect``; the
    decorators of the same names set them, and ``@node.rpc("method")`` registers an RPC
    handler.
    """

    def __init__(
        self,
        config: NodeConfig | None = None,
        *,
        broker: Broker | None = None,
        presence_manager: PresenceManager | None = None,
    ) -> None:
        from ..engines.memory import MemoryBroker, MemoryPresenceManager

        self.config = config if config is not None else NodeConfig()
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.presence_manager: PresenceManager = (
            presence_manager if presence_manager is not None else MemoryPresenceManager()
        )
        self.hub = Hub()
        self.tokens = TokenVerifier(
            hmac_secret=self.config.token_hmac_secret_key,
            rsa_public_key=self.config.token_rsa_public_key,
            ecdsa_public_key=self.config.token_ecdsa_public_key,
            audience=self.config.token_audience,
            issuer=self.config.token_issuer,
        )
        self.stats = NodeStats()
        self.on_connecting: OnConnecting | None = None
        self.on_subscribe: OnSubscribe | None = None
        self.on_publish: OnPublish | None = None
        self.on_rpc: RPCHandler | None = None
        self.on_message: OnMessage | None = None
        self.on_disconnect: OnDisconnect | None = None
        self.rpc_handlers: dict[str, RPCHandler] = {}
        self._broker_channels: set[str] = set()
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._presence_task: asyncio.Task[None] | None = None
        self.started = False
        #: This node's unique id, reported by the info API.
        self.uid = secrets.token_hex(8)
        self._started_at = time.monotonic()

    # --- hooks as decorators -----------------------------------------------------------------

    def connecting(self, hook: OnConnecting) -> OnConnecting:
        self.on_connecting = hook
        return hook

    def subscribing(self, hook: OnSubscribe) -> OnSubscribe:
        self.on_subscribe = hook
        return hook

    def publishing(self, hook: OnPublish) -> OnPublish:
        self.on_publish = hook
        return hook

    def disconnected(self, hook: OnDisconnect) -> OnDisconnect:
        self.on_disconnect = hook
        return hook

    def message(self, hook: OnMessage) -> OnMessage:
        self.on_message = hook
        return hook

    def rpc(self, method: str) -> Callable[[F], F]:
        """Register the decorated coroutine function as the handler of RPC ``method``."""

        def register(handler: F) -> F:
            self.rpc_handlers[method] = handler
            return handler

        return register

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engines and the presence refresher."""
        if self.started:
            return
        await self.broker.start(self)
        await self.presence_manager.start()
        self._presence_task = asyncio.get_running_loop().create_task(
            self._refresh_presence_forever(), name="wavecast-presence-refresh"
        )
        self.started = True

    async def shutdown(self, disconnect: Disconnect = DISCONNECT_SHUTDOWN) -> None:
        """Disconnect every client (they reconnect elsewhere), finish cleanups, stop the engines."""
        for session in self.hub.sessions():
            session.disconnect(disconnect)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.config.shutdown_timeout)
        if self._presence_task is not None:
            self._presence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._presence_task
            self._presence_task = None
        await self.presence_manager.close()
        await self.broker.close()
        self.started = False

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    def _spawn(self, coroutine: Any) -> None:
        """Run background work that the node waits for at shutdown."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    # --- the broker's events: fan-out to local subscribers ------------------------------------

    def on_publication(
        self,
        channel: str,
        publication: Publication,
        position: StreamPosition | None,
        *,
        _group: list[tuple[Session, Subscription]] | None = None,
        _codec: Codec = JSONCodec,
    ) -> None:
        """Send a publication to this node's subscribers of ``channel``.

        It is encoded once per form in use (JSON, protobuf), and the same frame goes to every
        subscriber of that form. A channel whose subscribers all speak JSON takes the loop
        below once, with no per-subscriber codec check; otherwise the subscribers are grouped
        by codec and each group takes it (``_group``, ``_codec``). A JSON subscriber can't
        receive binary data: it is disconnected with 3506, as Centrifugo does.
        """
        message: PreparedMessage | None = None
        key = self.conflation_key(channel, publication)
        offset = publication.offset
        epoch = None if position is None else position.epoch
        delivered = 0
        if _group is None:
            subscribers = self.hub.subscribers(channel)
            if not subscribers:
                return
            if publication.binary or channel in self.hub.binary_subscribers:
                for codec, group in self._by_codec(subscribers, publication):
                    self.on_publication(channel, publication, position, _group=group, _codec=codec)
                return
            if _fanout is not None:
                # The C loop takes the subscribers that get the frame at once; the loop below
                # takes the rest by the same rules (wavecast.asyncio._speedups.deliver).
                push = Push(channel=channel, pub=publication_msg(publication))
                message = PreparedMessage(JSONCodec.encode_reply(Reply(push=push)), text=True)
                delivered, _group, flush_now = _fanout.deliver(
                    subscribers,
                    message.frame,
                    SUBSCRIBED,
                    CLOSED,
                    offset,
                    epoch,
                    OPEN,
                    _batcher(asyncio.get_running_loop()),
                    WebSocketTransport,
                )
                for connection in flush_now:
                    connection._flush()
            else:
                _group = list(subscribers.items())
        for session, subscription in _group:
            if subscription.state is not SUBSCRIBED:
                if subscription.pending is not None:
                    subscription.pending.append(publication)
                continue
            if subscription.positioned and offset:
                if (epoch is not None and epoch != subscription.epoch) or (
                    offset != subscription.offset + 1 and offset > subscription.offset
                ):
                    # A gap, or a stream that started again: the client can't trust its
                    # position; it resubscribes and recovers.
                    self._spawn(self.unsubscribe_session(session, channel, unsubscribe=UNSUBSCRIBE_INSUFFICIENT_STATE))
                    continue
                if offset <= subscription.offset:
                    continue
            if message is None:
                if _codec is JSONCodec:
                    # JSONCodec.encode_publication, inlined: the common case pays no extra call.
                    push = Push(channel=channel, pub=publication_msg(publication))
                    message = PreparedMessage(JSONCodec.encode_reply(Reply(push=push)), text=True)
                else:
                    message = PreparedMessage(_codec.encode_publication(channel, publication), text=False)
            try:
                session.deliver(message, subscription.options.slow_consumer, key)
            except Exception as exc:
                # One subscriber's failure is its own: the others still get the publication,
                # and this one reconnects and recovers what it didn't get.
                session.fail(exc)
                continue
            # Only what was sent moves the position: a gap check on the next one relies on it.
            if subscription.positioned and offset:
                subscription.offset = offset
            delivered += 1
        if delivered and message is not None:
            stats = self.stats
            stats.deliveries += delivered
            stats.messages_out += delivered
            stats.bytes_out += delivered * len(message.payload)
            if publication.time and _codec is JSONCodec:  # once per publication: JSON's group is first
                stats.observe_latency(max(time.time() - publication.time / 1000, 0.0))

    @staticmethod
    def _by_codec(
        subscribers: dict[Session, Subscription], publication: Publication
    ) -> tuple[tuple[Codec, list[tuple[Session, Subscription]]], ...]:
        """Group a channel's subscribers by codec, for a channel with protobuf subscribers or a
        binary publication; JSON subscribers of a binary publication are disconnected (3506)."""
        text: list[tuple[Session, Subscription]] = []
        binary: list[tuple[Session, Subscription]] = []
        for item in subscribers.items():
            (binary if item[0].codec.binary else text).append(item)
        if not publication.binary:
            return ((JSONCodec, text), (ProtobufCodec, binary))
        for session, subscription in text:
            if subscription.state is SUBSCRIBED:
                session.disconnect(DISCONNECT_INAPPROPRIATE_PROTOCOL)
            elif subscription.pending is not None:
                # It goes live after its subscribe reply, and is disconnected then.
                subscription.pending.append(publication)
        return ((ProtobufCodec, binary),)

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self._push_join_leave(channel, Push(channel=channel, join=JoinMsg(info=client_info_msg(info))))

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self._push_join_leave(channel, Push(channel=channel, leave=LeaveMsg(info=client_info_msg(info))))

    def on_continuity_lost(self, channels: list[str]) -> None:
        """Publications may have been missed: positioned subscribers resubscribe and recover (2500)."""
        for channel in channels:
            subscribers = self.hub.subscribers(channel)
            if not subscribers:
                continue
            for session, subscription in list(subscribers.items()):
                if subscription.positioned:
                    self._spawn(self.unsubscribe_session(session, channel, unsubscribe=UNSUBSCRIBE_INSUFFICIENT_STATE))

    def _push_join_leave(self, channel: str, push: Push) -> None:
        subscribers = self.hub.subscribers(channel)
        if not subscribers:
            return
        messages: dict[Codec, PreparedMessage] = {}
        for session, subscription in list(subscribers.items()):
            if subscription.state is SUBSCRIBED and subscription.join_leave:
                codec = session.codec
                message = messages.get(codec)
                if message is None:
                    message = messages[codec] = PreparedMessage(
                        codec.encode_reply(Reply(push=push)), text=not codec.binary
                    )
                session.send(message)

    def conflation_key(self, channel: str, publication: Publication) -> object:
        """The key under which the ``conflate`` policy keeps only the latest publication."""
        options = self.config.channel_options(channel)
        if options is None or options.conflation_key_tag is None or not publication.tags:
            return channel
        return (channel, publication.tags.get(options.conflation_key_tag))

    def metrics_slow_consumer(self, action: str, count: int = 1) -> None:
        """Count slow-consumer actions: a client disconnected, publications dropped or conflated."""
        self.stats.slow_consumer_actions[action] += count

    # --- used by sessions and commands ------------------------------------------------------

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._channel_locks.get(channel)
        if lock is None:
            lock = self._channel_locks[channel] = asyncio.Lock()
        return lock

    async def _sync_broker_subscription(self, channel: str) -> None:
        """Make the broker subscription of ``channel`` match whether it has local subscribers.

        Runs under the channel's lock, so that a subscribe and an unsubscribe racing on
        the same channel leave the broker in the state the hub ends in.
        """
        lock = self._lock(channel)
        try:
            async with lock:
                wanted = self.hub.subscribers(channel) is not None
                if wanted and channel not in self._broker_channels:
                    await self.broker.subscribe(channel)
                    self._broker_channels.add(channel)
                elif not wanted and channel in self._broker_channels:
                    await self.broker.unsubscribe(channel)
                    self._broker_channels.discard(channel)
        finally:
            # Forgotten once nothing waits, even when the broker failed: add_subscriber takes
            # a lock that's left as a change in flight.
            if not lock.locked() and self._channel_locks.get(channel) is lock:
                del self._channel_locks[channel]

    async def add_subscriber(self, channel: str, session: Session, subscription: Subscription) -> None:
        self.hub.add_subscriber(channel, session, subscription)
        # A change in flight (its lock exists) may be the broker unsubscribing the channel its
        # last subscriber left: wait for it, and subscribe again.
        if channel not in self._broker_channels or channel in self._channel_locks:
            await self._sync_broker_subscription(channel)

    async def remove_subscriber(self, channel: str, session: Session) -> None:
        if self.hub.remove_subscriber(channel, session):
            await self._sync_broker_subscription(channel)

    async def add_presence(self, channel: str, session: Session, subscription: Subscription) -> None:
        info = ClientInfo(client=session.client, user=session.user, conn_info=session.info, chan_info=subscription.info)
        await self.presence_manager.add_presence(channel, session.client, info, ttl=self.config.presence_ttl)

    async def publish_publication(
        self, channel: str, publication: Publication, options: ChannelOptions
    ) -> StreamPosition | None:
        self.stats.publications += 1
        return await self.broker.publish(
            channel, publication, history_size=options.history_size, history_ttl=options.history_ttl
        )

    async def unsubscribe_session(
        self, session: Session, channel: str, *, notify: bool = True, unsubscribe: Unsubscribe = UNSUBSCRIBE_SERVER
    ) -> bool:
        """End one subscription of a session; with ``notify``, tell the client with a push."""
        subscription = session.subscriptions.pop(channel, None)
        if subscription is None:
            return False
        subscription.move(UNSUBSCRIBED)
        if notify:
            session.push(
                Push(channel=channel, unsubscribe=UnsubscribeMsg(code=unsubscribe.code, reason=unsubscribe.reason))
            )
        await self._after_unsubscribe(session, subscription)
        return True

    async def _after_unsubscribe(self, session: Session, subscription: Subscription) -> None:
        channel = subscription.channel
        await self.remove_subscriber(channel, session)
        options = subscription.options
        if options.presence:
            await self.presence_manager.remove_presence(channel, session.client, session.user)
            if options.join_leave or options.force_push_join_leave:
                info = ClientInfo(
                    client=session.client, user=session.user, conn_info=session.info, chan_info=subscription.info
                )
                await self.broker.publish_leave(channel, info)

    def _session_closed(self, session: Session, disconnect: Disconnect, was_connected: bool) -> None:
        """A session closed: forget it now, and clean its subscriptions up in the background."""
        self.hub.remove_session(session)
        self.stats.disconnects[disconnect.code] += 1
        subscriptions = list(session.subscriptions.values())
        session.subscriptions.clear()
        for subscription in subscriptions:
            if subscription.state is not UNSUBSCRIBED:
                subscription.move(UNSUBSCRIBED)
        if subscriptions or (was_connected and self.on_disconnect is not None):
            self._spawn(self._cleanup(session, subscriptions, disconnect, was_connected))

    async def _cleanup(
        self, session: Session, subscriptions: list[Subscription], disconnect: Disconnect, was_connected: bool
    ) -> None:
        for subscription in subscriptions:
            try:
                await self._after_unsubscribe(session, subscription)
            except Exception as exc:
                logger.warning("cleanup of %s in %s failed: %s", session.client, subscription.channel, exc)
        if was_connected and self.on_disconnect is not None:
            await self.on_disconnect(DisconnectContext(session=session, disconnect=disconnect))

    async def _refresh_presence_forever(self) -> None:
        interval = self.config.presence_update_interval
        while True:
            await asyncio.sleep(interval)
            for session in self.hub.sessions():
                # Subscription tokens that weren't refreshed in time end here, as in
                # Centrifugo's periodic presence update.
                session.check_subscription_expiry()
                if session.closed:
                    continue
                for subscription in list(session.subscriptions.values()):
                    if subscription.options.presence and subscription.state is SUBSCRIBED:
                        try:
                            await self.add_presence(subscription.channel, session, subscription)
                        except Exception as exc:
                            logger.warning("presence refresh failed: %s", exc)

    # --- the server-side API ------------------------------------------------------------------

    @staticmethod
    def _data(data: Any) -> tuple[bytes, bool]:
        """Publication data and whether it is binary: bytes go as they are, values as JSON."""
        if isinstance(data, bytes | bytearray | memoryview):
            return binary_or_json(bytes(data))
        return JSONCodec.encode_data(data), False

    def _options(self, channel: str) -> ChannelOptions:
        options = self.config.channel_options(channel)
        if options is None:
            raise ConfigError(f"unknown namespace in channel {channel!r}")
        return options

    async def publish(
        self, channel: str, data: Any, *, tags: dict[str, str] | None = None, info: ClientInfo | None = None
    ) -> StreamPosition | None:
        """Publish to a channel; ``data`` is bytes, or any value JSON can hold (sent as JSON).

        Bytes that aren't JSON are binary data: protobuf subscribers receive them, JSON
        subscribers are disconnected with 3506, as in Centrifugo.

        Returns the publication's position when the channel keeps history.
        """
        payload, binary = self._data(data)
        return await self._publish(channel, payload, binary, tags, info)

    async def _publish(
        self, channel: str, data: bytes, binary: bool, tags: dict[str, str] | None, info: ClientInfo | None
    ) -> StreamPosition | None:
        publication = Publication(data=data, tags=tags, info=info, time=int(time.time() * 1000), binary=binary)
        return await self.publish_publication(channel, publication, self._options(channel))

    async def broadcast(
        self, channels: Iterable[str], data: Any, *, tags: dict[str, str] | None = None
    ) -> list[StreamPosition | None]:
        """Publish the same data to several channels."""
        payload, binary = self._data(data)
        return [await self._publish(channel, payload, binary, tags, None) for channel in channels]

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        if not self._options(channel).presence:
            raise ConfigError(f"presence is off for {channel!r}")
        return await self.presence_manager.presence(channel)

    async def presence_stats(self, channel: str) -> PresenceStats:
        if not self._options(channel).presence:
            raise ConfigError(f"presence is off for {channel!r}")
        return await self.presence_manager.presence_stats(channel)

    async def history(
        self, channel: str, *, limit: int | None = None, since: StreamPosition | None = None, reverse: bool = False
    ) -> HistoryResult:
        if not self._options(channel).history:
            raise ConfigError(f"history is off for {channel!r}")
        return await self.broker.history(channel, limit=limit, since=since, reverse=reverse)

    async def history_remove(self, channel: str) -> None:
        await self.broker.remove_history(channel)

    def _sessions(self, user: str, client: str | None) -> list[Session]:
        if client:
            session = self.hub.session(client)
            return [session] if session is not None and session.user == user else []
        return self.hub.user_sessions(user)

    async def disconnect(
        self, user: str, disconnect: Disconnect = DISCONNECT_FORCE_NO_RECONNECT, *, client: str | None = None
    ) -> int:
        """Disconnect a user's connections on this node (or one of them); return how many."""
        sessions = self._sessions(user, client)
        for session in sessions:
            session.disconnect(disconnect)
        return len(sessions)

    async def send(self, user: str, data: Any, *, client: str | None = None) -> int:
        """Send an asynchronous message to a user's connections on this node (or one of them).

        Each receives a ``message`` push, as centrifuge's ``Client.Send`` sends it: centrifuge-js
        emits ``message`` on the client. ``data`` is bytes, or any value JSON can hold (sent as
        JSON); bytes that aren't JSON disconnect a JSON client with 3506, as publications do.

        Returns how many connections the message was sent to.
        """
        count = 0
        for session in self._sessions(user, client):
            if session.connecting or session.closed:
                continue
            try:
                payload = session.outgoing_data(data)
            except DisconnectError as exc:
                session.disconnect(exc.disconnect)
                continue
            session.push(Push(message=MessageMsg(data=raw(payload))))
            count += 1
        return count

    async def unsubscribe(self, user: str, channel: str, *, client: str | None = None) -> int:
        """Unsubscribe a user's connections from a channel; they receive an unsubscribe push."""
        count = 0
        for session in self._sessions(user, client):
            if await self.unsubscribe_session(session, channel):
                count += 1
        return count

    async def subscribe(self, user: str, channel: str, *, client: str | None = None) -> int:
        """Subscribe a user's connections to a channel from the server; they receive a subscribe push."""
        from .commands.subscribe import subscribe_server_side

        self._options(channel)  # an unknown namespace raises, as in the rest of the API
        count = 0
        for session in self._sessions(user, client):
            if session.connecting or session.closed or channel in session.subscriptions:
                continue
            # Its own callback only: the session may be in the middle of a command (a connect
            # with server-side channels) whose subscriptions go live after that reply.
            go_live: list[Callable[[], None]] = []
            result = await subscribe_server_side(session, channel, None, after_reply=go_live.append)
            session.push(
                Push(
                    channel=channel,
                    subscribe=SubscribeMsg(
                        recoverable=result.recoverable,
                        epoch=result.epoch,
                        offset=result.offset,
                        positioned=result.positioned,
                    ),
                )
            )
            for callback in go_live:
                callback()
            count += 1
        return count

    async def refresh(self, user: str, *, client: str | None = None, expired: bool = False, expire_at: int = 0) -> int:
        """Mark a user's connections expired (disconnect 3005), or set when they expire."""
        sessions = self._sessions(user, client)
        for session in sessions:
            if expired:
                session.disconnect(DISCONNECT_EXPIRED)
            else:
                session.set_expiry(expire_at)
        return len(sessions)

    @property
    def uptime(self) -> float:
        """Seconds since this node was created."""
        return time.monotonic() - self._started_at

    def channels(self) -> dict[str, int]:
        """Channels with subscribers on this node, and how many."""
        return self.hub.channels()

    def info(self) -> dict[str, Any]:
        """This node's name and counts."""
        return {
            "name": self.config.name,
            "num_clients": self.hub.num_sessions,
            "num_users": self.hub.num_users,
            "num_channels": len(self.hub.channels()),
            "num_subscriptions": self.hub.num_subscriptions,
        }
