"""A broker on NATS for fan-out, with the Redis broker's streams for history."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError, SlowConsumerError
from redis.exceptions import RedisError

from ...exceptions import EngineError
from ..base import IDEMPOTENT_RESULT_TTL, BrokerEventHandler, ClientInfo, HistoryResult, Publication, StreamPosition
from ..redis.broker import RedisBroker, reconnect_delay
from ..redis.codec import dispatch_message, encode_info, encode_publication, publication_message

__all__ = ["NatsBroker"]

logger = logging.getLogger("wavecast.engines.nats")


def subject_token(name: str) -> str:
    """One NATS subject token for a channel or node name, whatever characters it holds
    (a subject can't carry spaces, and dots and ``*``/``>`` mean something in it)."""
    return base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode()


class NatsBroker:
    """Moves publications, joins, leaves and control messages over core NATS, one subject per
    channel; keeps history in Redis streams, through a :class:`RedisBroker` it never starts.

    Delivery is at most once, as NATS core is: a publication reaches the nodes subscribed
    when NATS forwards it, and is lost for live delivery if NATS or a connection fails
    first. A publication to a channel with history is first appended to the channel's Redis
    stream (its offset comes from there), then published to NATS: a node that misses it sees
    the next offset jump, or reconnects to NATS and is told that continuity was lost, and
    its positioned subscribers recover it from Redis. Publications to one channel from one
    node reach NATS in offset order; from several nodes at once they may cross, which
    subscribers see as a gap and recover from.

    Publishing fails with :class:`~wavecast.exceptions.EngineError` while NATS is
    unreachable, instead of queueing in the client's buffer where a crash would lose it.

    Args:
        url: the NATS server, ``nats://host:port``; several separated by commas.
        streams: the Redis broker whose streams keep history and idempotency results.
        prefix: the prefix of every subject.
        subscribe_timeout: seconds :meth:`subscribe` waits for NATS to confirm.
        reconnect_wait: seconds between two reconnection attempts.
        max_pending: messages of one channel received and not yet handed to the node, at
            most; NATS drops the channel's messages beyond (a slow consumer), and the node's
            positioned subscribers recover them from history.
    """

    def __init__(
        self,
        url: str,
        *,
        streams: RedisBroker,
        prefix: str = "wavecast",
        subscribe_timeout: float = 5.0,
        reconnect_wait: float = 0.25,
        max_pending: int = 512 * 1024,
    ) -> None:
        self.servers = [server.strip() for server in url.split(",") if server.strip()]
        self.streams = streams
        self.prefix = prefix
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_wait = reconnect_wait
        self.max_pending = max_pending
        self.nc: Client = Client()
        self._handler: BrokerEventHandler | None = None
        #: This node's subscriptions, by channel; NATS resubscribes them on reconnection.
        self._subscriptions: dict[str, Subscription] = {}
        # Publications with history of one channel go to NATS in offset order: one at a time.
        self._channel_locks: dict[str, _Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # The PING that the publications made since the last one wait for.
        self._barrier: asyncio.Future[None] | None = None
        self._closing = False

    def _subject(self, channel: str) -> str:
        return f"{self.prefix}.client.{subject_token(channel)}"

    def _control_subject(self, node: str | None = None) -> str:
        return f"{self.prefix}.control" if node is None else f"{self.prefix}.node.{subject_token(node)}"

    # lifecycle

    async def start(self, handler: BrokerEventHandler) -> None:
        """Connect and subscribe to the control subjects; when NATS is unreachable, keep
        trying in the background (publishing fails meanwhile)."""
        self._handler = handler
        try:
            await self._connect()
        except (NatsError, OSError) as exc:
            logger.warning("nats not reachable yet (%s); retrying", exc)
            self._spawn(self._connect_forever())

    async def _connect(self) -> None:
        await self.nc.connect(
            self.servers,
            name="wavecast",
            allow_reconnect=True,
            # A first connection tries each server twice and fails (the caller retries in the
            # background); with -1, nats-py's connect() would not return while NATS is down.
            max_reconnect_attempts=1,
            reconnect_time_wait=self.reconnect_wait,  # type: ignore[arg-type]
            connect_timeout=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        # Once connected, reconnect for as long as it takes.
        self.nc.options["max_reconnect_attempts"] = -1
        assert self._handler is not None
        for subject in (self._control_subject(), self._control_subject(self._handler.uid)):
            await self.nc.subscribe(subject, cb=self._on_control)
        await self.nc.flush(timeout=int(self.subscribe_timeout))

    async def _connect_forever(self) -> None:
        attempt = 0
        while not self._closing:
            await asyncio.sleep(reconnect_delay(attempt))
            attempt += 1
            self.nc = Client()
            try:
                await self._connect()
            except (NatsError, OSError) as exc:
                logger.warning("nats connection attempt %d failed: %s", attempt, exc)
                continue
            logger.info("nats connected")
            return

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self.nc.is_closed:
            with contextlib.suppress(NatsError, OSError):
                await self.nc.close()
        self._subscriptions.clear()
        await self.streams.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # NATS's callbacks

    async def _on_control(self, msg: Msg) -> None:
        if self._handler is not None:
            self._handler.on_control(msg.data)

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            # NATS dropped messages of this subscription: its subscribers recover them.
            for channel, subscription in self._subscriptions.items():
                if subscription._id == exc.sid:
                    self._continuity_lost([channel])
                    return
        logger.warning("nats: %s", exc)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            logger.warning("nats connection lost; reconnecting")

    async def _on_reconnected(self) -> None:
        # The client resubscribed on the new connection; once the server confirms, whatever
        # was published while the connection was down is recovered from history.
        self._spawn(self._recover_after_reconnection())

    async def _recover_after_reconnection(self) -> None:
        try:
            await self.nc.flush(timeout=int(self.subscribe_timeout))
        except (NatsError, OSError) as exc:
            logger.warning("nats resubscription not confirmed: %s", exc)
            return  # the next reconnection comes back here
        logger.info("nats reconnected; resubscribed %d channels", len(self._subscriptions))
        self._continuity_lost(list(self._subscriptions))

    def _continuity_lost(self, channels: list[str]) -> None:
        if channels and self._handler is not None:
            self._handler.on_continuity_lost(channels)

    # publishing

    async def publish(
        self,
        channel: str,
        publication: Publication,
        *,
        history_size: int = 0,
        history_ttl: float = 0,
        idempotency_key: str | None = None,
        idempotent_ttl: float = IDEMPOTENT_RESULT_TTL,
    ) -> StreamPosition | None:
        payload = encode_publication(publication)
        self._check_publishable(channel, len(payload) + 64)
        subject = self._subject(channel)
        try:
            if history_size > 0 and history_ttl > 0:
                async with self._channel_lock(channel):
                    position, appended = await self.streams.append(
                        channel,
                        publication,
                        history_size=history_size,
                        history_ttl=history_ttl,
                        idempotency_key=idempotency_key,
                        idempotent_ttl=idempotent_ttl,
                    )
                    sent = appended and await self._publish_appended(subject, position, payload)
                if sent:
                    try:
                        await self._received()
                    except EngineError as exc:
                        # History holds it: nodes recover it when they reconnect or see the next offset.
                        logger.warning("nats didn't confirm a publication appended to history: %s", exc)
                return position
            if idempotency_key is not None and not await self.streams.mark_once(
                channel, idempotency_key, idempotent_ttl
            ):
                return None
        except (RedisError, OSError) as exc:
            raise EngineError(f"publish to {channel} failed: {exc}") from exc
        await self._publish(subject, publication_message(0, "", payload), channel)
        return None

    async def _publish_appended(self, subject: str, position: StreamPosition, payload: bytes) -> bool:
        """Hand what Redis appended to the NATS client, under the channel's lock: in the order
        of the channel's offsets. Return whether it was handed over."""
        try:
            await self.nc.publish(subject, publication_message(position.offset, position.epoch, payload))
        except (NatsError, OSError) as exc:
            # History holds it: nodes recover it when they reconnect or see the next offset.
            logger.warning("nats publish after appending to history failed: %s", exc)
            return False
        return True

    async def _received(self) -> None:
        """Wait until nats-server has read everything this node published so far: one PING
        answered for every publication waiting, so that an acknowledged publication reached
        the server before the next one (from any node) is made.

        Raises:
            EngineError: the server didn't answer (the connection dropped or timed out).
        """
        barrier = self._barrier
        if barrier is None:
            barrier = self._barrier = asyncio.get_running_loop().create_future()
            self._spawn(self._ping(barrier))
        await asyncio.shield(barrier)

    async def _ping(self, barrier: asyncio.Future[None]) -> None:
        error: EngineError | None = EngineError("the broker closed")
        try:
            await asyncio.sleep(0)  # the publications of this turn of the loop join this PING
            self._barrier = None
            await self.nc.flush(timeout=int(self.subscribe_timeout))
            error = None
        except (NatsError, OSError, TimeoutError) as exc:
            error = EngineError(f"nats didn't confirm: {exc or 'timed out'}")
        finally:
            if self._barrier is barrier:
                self._barrier = None
            if error is None:
                barrier.set_result(None)
            else:
                barrier.set_exception(error)
                barrier.exception()  # retrieved: a barrier nobody awaits any more mustn't warn

    def _check_publishable(self, channel: str, size: int) -> None:
        if not self.nc.is_connected:
            raise EngineError(f"publish to {channel} failed: nats is not connected")
        if size > self.nc.max_payload:
            raise EngineError(f"publish to {channel} failed: {size} bytes exceed the NATS max_payload")

    async def _publish(self, subject: str, message: bytes, channel: str) -> None:
        """Publish and wait until nats-server has read it (see :meth:`_received`)."""
        if not self.nc.is_connected:
            raise EngineError(f"publish to {channel} failed: nats is not connected")
        try:
            await self.nc.publish(subject, message)
            await self._received()
        except (NatsError, OSError, EngineError) as exc:
            raise EngineError(f"publish to {channel} failed: {exc}") from exc

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        await self._publish(self._control_subject(node), message, "the control subject")

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._publish(self._subject(channel), b"j" + encode_info(info), channel)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._publish(self._subject(channel), b"l" + encode_info(info), channel)

    def _channel_lock(self, channel: str) -> _Lock:
        lock = self._channel_locks.get(channel)
        if lock is None:
            lock = self._channel_locks[channel] = _Lock(self._channel_locks, channel)
        return lock

    # subscriptions

    async def subscribe(self, channel: str) -> None:
        """Subscribe in NATS and wait until the server confirms (a PING answered after the
        SUB): from then on, no publication of the channel escapes this node.

        Raises:
            EngineError: NATS is unreachable or didn't confirm in time; the channel isn't
                subscribed, and the caller may try again.
        """
        handler = self._handler
        if handler is None or not self.nc.is_connected:
            raise EngineError(f"subscribe to {channel} failed: nats is not connected")
        if channel not in self._subscriptions:

            async def deliver(msg: Msg) -> None:
                dispatch_message(handler, channel, msg.data)

            try:
                self._subscriptions[channel] = await self.nc.subscribe(
                    self._subject(channel), cb=deliver, pending_msgs_limit=self.max_pending
                )
            except (NatsError, OSError) as exc:
                raise EngineError(f"subscribe to {channel} failed: {exc}") from exc
        try:
            await self.nc.flush(timeout=int(self.subscribe_timeout))
        except (NatsError, OSError, TimeoutError) as exc:
            await self.unsubscribe(channel)
            raise EngineError(f"subscribe to {channel} failed: {exc or 'not confirmed in time'}") from exc

    async def unsubscribe(self, channel: str) -> None:
        subscription = self._subscriptions.pop(channel, None)
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except (NatsError, OSError) as exc:
                logger.warning("unsubscribe from %s failed: %s", channel, exc)

    # history: Redis's

    async def history(
        self, channel: str, *, since: StreamPosition | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryResult:
        return await self.streams.history(channel, since=since, limit=limit, reverse=reverse)

    async def remove_history(self, channel: str) -> None:
        await self.streams.remove_history(channel)


class _Lock:
    """A channel's lock, dropped from ``locks`` when nobody holds or awaits it."""

    def __init__(self, locks: dict[str, _Lock], channel: str) -> None:
        self.lock = asyncio.Lock()
        self.locks = locks
        self.channel = channel
        self.users = 0

    async def __aenter__(self) -> None:
        self.users += 1
        try:
            await self.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.lock.release()
        self._leave()

    def _leave(self) -> None:
        self.users -= 1
        if self.users == 0 and self.locks.get(self.channel) is self:
            del self.locks[self.channel]
