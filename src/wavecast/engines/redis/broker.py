"""A broker on Redis: streams for history, pub/sub for fan-out to every node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...exceptions import EngineError
from ..base import IDEMPOTENT_RESULT_TTL, BrokerEventHandler, ClientInfo, HistoryResult, Publication, StreamPosition
from .codec import decode_publication, dispatch_message, encode_info, encode_publication
from .scripts import Scripts

__all__ = ["RECONNECT_DELAY_MAX", "RECONNECT_DELAY_MIN", "RedisBroker", "reconnect_delay"]

logger = logging.getLogger("wavecast.engines.redis")


#: Seconds before the first reconnection attempt, and the most between two attempts.
RECONNECT_DELAY_MIN = 0.05
RECONNECT_DELAY_MAX = 5.0


def reconnect_delay(attempt: int, uniform: Callable[[], float] = random.random) -> float:
    """Return the seconds to wait before reconnection attempt ``attempt`` (from 0).

    The delay doubles from :data:`RECONNECT_DELAY_MIN` up to :data:`RECONNECT_DELAY_MAX`, less
    up to half of it at random (``uniform()`` is in [0, 1)), so that the nodes of a deployment
    don't all come back at the same moment.
    """
    ceiling = RECONNECT_DELAY_MAX if attempt >= 32 else min(RECONNECT_DELAY_MAX, RECONNECT_DELAY_MIN * 2**attempt)
    return ceiling * (0.5 + uniform() / 2)


class RedisBroker:
    """Publishes through Redis so that every node subscribed to a channel gets it.

    A publication to a channel with history is appended to the channel's Redis stream, gets
    the next offset and is published to the nodes in one Lua script, so no node sees an
    offset that history doesn't hold. Reading a channel that was never published to creates
    nothing: its epoch derives from a seed kept in Redis (see ``lua/publish.lua``). Redis
    should run with ``maxmemory-policy noeviction``: a stream whose keys Redis evicted would
    start again in the epoch it had. When the pub/sub connection drops, the broker
    reconnects with backoff (:func:`reconnect_delay`) and resubscribes; publications sent
    meanwhile are lost for live delivery, so once Redis confirms a channel's subscription
    again the broker tells the node, which makes positioned subscribers recover from history.

    Publications without history, joins and leaves are pipelined: the PUBLISH commands made
    while the previous batch is on its way to Redis go together in the next one, on one
    connection, so that they reach every node in the order they were made and many
    concurrent publishers cost one round trip, not one each.

    Args:
        client: a ``redis.asyncio.Redis`` client (its connection pool is shared with the
            presence manager).
        prefix: the prefix of every key and pub/sub channel.
        meta_ttl: seconds a stream's offset and epoch outlive its last publication.
        subscribe_timeout: seconds :meth:`subscribe` waits for Redis to confirm.
        release: called by :meth:`close`, to release a client shared with the presence manager.
    """

    #: The command that fans a publication out: PUBLISH reaches every node of a Redis.
    publish_command = "publish"

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "wavecast",
        meta_ttl: int = 30 * 86400,
        subscribe_timeout: float = 5.0,
        release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = client
        self.scripts = Scripts(client)
        self.prefix = prefix
        self._seed_key = f"{prefix}.seed"
        self.meta_ttl = meta_ttl
        self.subscribe_timeout = subscribe_timeout
        self._release = release
        self._handler: BrokerEventHandler | None = None
        #: Channels this node wants, subscribed in Redis or to be subscribed on reconnection.
        self._channels: set[str] = set()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        # Serializes SUBSCRIBE and UNSUBSCRIBE with the swap of the pub/sub connection on
        # reconnection, so that no command goes to a connection being replaced.
        self._lock = asyncio.Lock()
        # Subscriptions waiting for Redis to confirm them, by pub/sub channel.
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        # Resubscribed channels whose continuity is reported once Redis confirms them.
        self._lost: set[str] = set()
        # The pub/sub channels of control messages: to every node, and to this one.
        self._control: set[str] = set()
        # PUBLISH commands waiting for the batch in flight, and the task that sends them.
        self._batch: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._closing = False

    # keys

    def _stream_key(self, channel: str) -> str:
        return f"{self.prefix}.stream.{{{channel}}}"

    def _meta_key(self, channel: str) -> str:
        return f"{self.prefix}.meta.{{{channel}}}"

    def _result_key(self, channel: str, idempotency_key: str) -> str:
        # In the channel's hash slot, beside its stream: one script touches both.
        return f"{self.prefix}.result.{{{channel}}}.{idempotency_key}"

    def _pubsub_channel(self, channel: str) -> str:
        return f"{self.prefix}.client.{channel}"

    def _control_channel(self) -> str:
        return f"{self.prefix}.control"

    def _node_channel(self, uid: str) -> str:
        return f"{self.prefix}.node.{uid}"

    def _seed_key_of(self, channel: str) -> str:
        """The key of the seed of the epochs of ``channel`` (one per Redis here)."""
        return self._seed_key

    def _seed_ttl(self) -> int:
        """Seconds a new seed is kept; 0: for ever."""
        return 0

    def _stream_keys(self, channel: str) -> list[str]:
        """The keys of a channel's stream for the scripts: stream, meta, and the epochs' seed."""
        return [self._stream_key(channel), self._meta_key(channel), self._seed_key_of(channel)]

    def _epoch_period(self) -> int:
        """The period that the epoch of a new stream depends on (see lua/publish.lua)."""
        return int(time.time() // self.meta_ttl)

    # lifecycle

    async def start(self, handler: BrokerEventHandler) -> None:
        """Subscribe to the control channels and start reading; when Redis is unreachable,
        the reader subscribes once it is back."""
        self._handler = handler
        self._control = {self._control_channel(), self._node_channel(handler.uid)}
        self._pubsub = self.redis.pubsub()
        try:
            async with self._lock:
                await self._pubsub.subscribe(*self._control)
        except (RedisError, OSError) as exc:
            logger.warning("redis control channels not subscribed yet (%s); retrying", exc)
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = self.redis.pubsub()
        self._reader = asyncio.get_running_loop().create_task(self._read_forever(), name="wavecast-redis-pubsub")

    async def close(self) -> None:
        self._closing = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        for _, future in self._batch:
            if not future.done():
                future.set_exception(EngineError("the broker closed before publishing"))
        self._batch.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        for waiter in self._confirmations.values():
            waiter.cancel()
        self._confirmations.clear()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._release is not None:
            release, self._release = self._release, None
            await release()

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
        try:
            if history_size > 0 and history_ttl > 0:
                position, _ = await self.append(
                    channel,
                    publication,
                    history_size=history_size,
                    history_ttl=history_ttl,
                    idempotency_key=idempotency_key,
                    idempotent_ttl=idempotent_ttl,
                    pubsub_channel=self._pubsub_channel(channel),
                )
                return position
            name, message = self._pubsub_channel(channel), b"p0::" + encode_publication(publication)
            if idempotency_key is None:
                await self._pipelined(lambda pipe: self._queue_publish(pipe, name, message))
            else:
                script, key = self.scripts.publish_idempotent, self._result_key(channel, idempotency_key)
                args = [name, message, _result_ttl(idempotent_ttl), self.publish_command]
                await self._pipelined(lambda pipe: self._queue_script(pipe, script, [key], args))
            return None
        except (RedisError, OSError) as exc:
            raise EngineError(f"publish to {channel} failed: {exc}") from exc

    async def append(
        self,
        channel: str,
        publication: Publication,
        *,
        history_size: int,
        history_ttl: float,
        idempotency_key: str | None = None,
        idempotent_ttl: float = IDEMPOTENT_RESULT_TTL,
        pubsub_channel: str = "",
    ) -> tuple[StreamPosition, bool]:
        """Append a publication to the channel's stream; return its position and whether it
        was appended. Publish it on ``pubsub_channel`` in the same step unless that is empty
        (a broker that fans out on its own, as :class:`~wavecast.engines.nats.NatsBroker`,
        publishes it afterwards).

        A repeat of ``idempotency_key`` appends nothing: the first one's position is returned,
        with false.

        Raises:
            RedisError, OSError: Redis didn't run the script.
        """
        result = await self.scripts.publish(
            keys=[*self._stream_keys(channel), self._result_key(channel, idempotency_key or "")],
            args=[
                pubsub_channel,
                encode_publication(publication),
                history_size,
                max(int(history_ttl), 1),
                max(self.meta_ttl, int(history_ttl)),
                # A fresh offer each time: a Redis that lost its seed must not get the old one.
                secrets.token_hex(8),
                self._epoch_period(),
                channel,
                0 if idempotency_key is None else _result_ttl(idempotent_ttl),
                self.publish_command,
                self._seed_ttl(),
            ],
        )
        return StreamPosition(int(result[0]), _text(result[1])), len(result) > 2

    async def mark_once(self, channel: str, idempotency_key: str, idempotent_ttl: float) -> bool:
        """Record ``idempotency_key`` for a publication without history; return whether it is
        the first in ``idempotent_ttl`` seconds (false: a repeat, not to be published).

        Raises:
            RedisError, OSError: Redis didn't answer.
        """
        first = await self.redis.set(
            self._result_key(channel, idempotency_key), "1", nx=True, ex=_result_ttl(idempotent_ttl)
        )
        return bool(first)

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        name = self._control_channel() if node is None else self._node_channel(node)
        try:
            await self._pipelined(lambda pipe: self._queue_publish(pipe, name, message))
        except (RedisError, OSError) as exc:
            raise EngineError(f"control message failed: {exc}") from exc

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._publish_control(channel, b"j" + encode_info(info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._publish_control(channel, b"l" + encode_info(info))

    async def _publish_control(self, channel: str, message: bytes) -> None:
        name = self._pubsub_channel(channel)
        try:
            await self._pipelined(lambda pipe: self._queue_publish(pipe, name, message))
        except (RedisError, OSError) as exc:
            raise EngineError(f"publish to {channel} failed: {exc}") from exc

    def _queue_publish(self, pipe: Any, name: str, message: bytes) -> None:
        """Add the publication of ``message`` on pub/sub channel ``name`` to a pipeline."""
        pipe.publish(name, message)

    def _queue_script(self, pipe: Any, script: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add a run of ``script`` to a pipeline."""
        # The pipeline loads the scripts it was given before running its commands.
        pipe.scripts.add(script)
        pipe.evalsha(script.sha, len(keys), *keys, *args)

    async def _pipelined(self, command: Callable[[Any], Any]) -> Any:
        """Queue ``command(pipeline)`` in the next batch, in the order of the calls; return or
        raise what Redis answered."""
        if self._closing:
            raise EngineError("the broker is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._batch.append((command, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_batches(), name="wavecast-redis-publish")
        return await future

    async def _send_batches(self) -> None:
        # One batch in flight at a time: that is what keeps the publications in order.
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for command, _ in batch:
                        command(pipe)
                    results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    # subscriptions

    async def subscribe(self, channel: str) -> None:
        """Subscribe in Redis and wait until Redis confirms: from then on, no publication of
        the channel escapes this node, so history read afterwards and live delivery meet.

        Raises:
            EngineError: Redis is unreachable or didn't confirm in time; the channel isn't
                subscribed, and the caller may try again.
        """
        name = self._pubsub_channel(channel)
        waiter = self._confirmations.get(name)
        if waiter is None or waiter.done():
            waiter = self._confirmations[name] = asyncio.get_running_loop().create_future()
        self._channels.add(channel)
        try:
            async with self._lock:
                await self._send_subscribe(name)
            async with asyncio.timeout(self.subscribe_timeout):
                await asyncio.shield(waiter)
        except (RedisError, OSError, TimeoutError) as exc:
            self._channels.discard(channel)
            if self._confirmations.get(name) is waiter:
                del self._confirmations[name]
            reason = exc if not isinstance(exc, TimeoutError) else f"not confirmed in {self.subscribe_timeout} s"
            raise EngineError(f"subscribe to {channel} failed: {reason}") from exc

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._lost.discard(channel)
        async with self._lock:
            try:
                await self._send_unsubscribe(self._pubsub_channel(channel))
            except (RedisError, OSError) as exc:
                # The reader reconnects and resubscribes only what's left in _channels.
                logger.warning("unsubscribe from %s failed: %s", channel, exc)

    async def _send_subscribe(self, name: str) -> None:
        await self._pubsub.subscribe(name)

    async def _send_unsubscribe(self, name: str) -> None:
        if self._pubsub.connection is None:
            return  # nothing subscribed in Redis; a reconnection won't resubscribe it
        await self._pubsub.unsubscribe(name)

    async def _read_forever(self) -> None:
        """Deliver pub/sub messages; reconnect with backoff and resubscribe when Redis goes away."""
        client_prefix = f"{self.prefix}.client."
        prefix_length = len(client_prefix)
        while not self._closing:
            try:
                if self._pubsub.connection is None:
                    # The control channels couldn't be subscribed at the start.
                    await self._reconnect()
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                kind = message["type"]
                name = _text(message["channel"])
                if kind == "message":
                    if name.startswith(client_prefix):
                        self._dispatch(name[prefix_length:], message["data"])
                    elif self._handler is not None:
                        self._handler.on_control(message["data"])
                elif kind == "subscribe" and name.startswith(client_prefix):
                    self._confirmed(name, name[prefix_length:])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("redis pub/sub lost (%s); reconnecting", exc)
                await self._reconnect()
            except Exception:
                logger.exception("failed to handle a redis pub/sub message")

    def _confirmed(self, name: str, channel: str) -> None:
        waiter = self._confirmations.pop(name, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if channel in self._lost:
            # Whatever was published while the connection was down didn't reach this node.
            self._lost.discard(channel)
            on_lost = getattr(self._handler, "on_continuity_lost", None)
            if on_lost is not None:
                on_lost([channel])

    async def _reconnect(self) -> None:
        """Replace the pub/sub connection and resubscribe every channel, retrying with backoff."""
        attempt = 0
        while not self._closing:
            await asyncio.sleep(reconnect_delay(attempt))
            attempt += 1
            async with self._lock:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.aclose()
                self._pubsub = self.redis.pubsub()
                channels = set(self._channels)
                self._lost |= channels
                try:
                    await self._pubsub.subscribe(*self._control, *(self._pubsub_channel(c) for c in channels))
                except (RedisError, OSError) as exc:
                    logger.warning("redis pub/sub reconnection attempt %d failed: %s", attempt, exc)
                    continue
            logger.info("redis pub/sub reconnected; resubscribed %d channels", len(channels))
            return

    def _dispatch(self, channel: str, data: bytes) -> None:
        if self._handler is not None:
            dispatch_message(self._handler, channel, data)

    # history

    async def history(
        self, channel: str, *, since: StreamPosition | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryResult:
        # Nothing comes before offset 0, and XREVRANGE refuses "(0-0" as its end.
        read = limit != 0 and not (reverse and since is not None and since.offset <= 0)
        # "(N-0" is exclusive: entries after offset N forward, before it in reverse.
        start = f"({since.offset}-0" if since is not None else "+" if reverse else "-"
        try:
            offset, epoch, entries = await self.scripts.history(
                keys=self._stream_keys(channel),
                args=[
                    secrets.token_hex(8),
                    self._epoch_period(),
                    "1" if read else "0",
                    start,
                    "1" if reverse else "0",
                    limit or 0,
                    channel,
                    self._seed_ttl(),
                ],
            )
        except (RedisError, OSError) as exc:
            raise EngineError(f"history of {channel} failed: {exc}") from exc
        position = StreamPosition(int(offset), _text(epoch))
        if since is not None and since.epoch != position.epoch:
            return HistoryResult([], position)
        publications = [
            decode_publication(fields[b"d"] if b"d" in fields else fields["d"], int(_text(entry_id).split("-")[0]))
            for entry_id, fields in _pairs(entries)
        ]
        return HistoryResult(publications, position)

    async def remove_history(self, channel: str) -> None:
        try:
            await self.redis.delete(self._stream_key(channel))
        except (RedisError, OSError) as exc:
            raise EngineError(f"removing history of {channel} failed: {exc}") from exc


def _result_ttl(idempotent_ttl: float) -> int:
    # Redis keeps a result for whole seconds; a window shorter than one still holds one.
    return max(int(idempotent_ttl), 1)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(entries: list[Any]) -> list[tuple[Any, dict[Any, Any]]]:
    """Turn XRANGE's ``[id, [field, value, ...]]`` entries, as a script returns them, into pairs."""
    result = []
    for entry_id, flat in entries:
        if isinstance(flat, dict):
            result.append((entry_id, flat))
        else:
            result.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return result
