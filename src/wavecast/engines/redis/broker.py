"""A broker on Redis: streams for history, pub/sub for fan-out to every node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...exceptions import EngineError
from ..base import BrokerEventHandler, ClientInfo, HistoryResult, Publication, StreamPosition
from .codec import decode_info, decode_publication, encode_info, encode_publication
from .scripts import Scripts

__all__ = ["RedisBroker"]

logger = logging.getLogger("wavecast.engines.redis")


class RedisBroker:
    """Publishes through Redis so that every node subscribed to a channel gets it.

    A publication to a channel with history is appended to the channel's Redis stream, gets
    the next offset and is published to the nodes in one Lua script, so no node sees an
    offset that history doesn't hold. When the pub/sub connection drops, the broker
    reconnects with backoff and resubscribes; publications sent meanwhile are lost for live
    delivery, so it tells the node, which makes positioned subscribers recover from history.

    Args:
        client: a ``redis.asyncio.Redis`` client (its connection pool is shared with the
            presence manager).
        prefix: the prefix of every key and pub/sub channel.
        meta_ttl: seconds a stream's offset and epoch outlive its last publication.
        release: called by :meth:`close`, to release a client shared with the presence manager.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "wavecast",
        meta_ttl: int = 30 * 86400,
        release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = client
        self._release = release
        self.prefix = prefix
        self.meta_ttl = meta_ttl
        self.scripts = Scripts(client)
        self._handler: BrokerEventHandler | None = None
        self._channels: set[str] = set()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._reconnected = asyncio.Event()
        self._closing = False

    # keys

    def _stream_key(self, channel: str) -> str:
        return f"{self.prefix}.stream.{{{channel}}}"

    def _meta_key(self, channel: str) -> str:
        return f"{self.prefix}.meta.{{{channel}}}"

    def _pubsub_channel(self, channel: str) -> str:
        return f"{self.prefix}.client.{channel}"

    # lifecycle

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._reader = asyncio.get_running_loop().create_task(self._read_forever(), name="wavecast-redis-pubsub")

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
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
    ) -> StreamPosition | None:
        payload = encode_publication(publication)
        try:
            if history_size > 0 and history_ttl > 0:
                offset, epoch = await self.scripts.publish(
                    keys=[self._stream_key(channel), self._meta_key(channel)],
                    args=[
                        self._pubsub_channel(channel),
                        payload,
                        history_size,
                        max(int(history_ttl), 1),
                        max(self.meta_ttl, int(history_ttl)),
                        secrets.token_hex(4),
                    ],
                )
                return StreamPosition(int(offset), _text(epoch))
            await self.redis.publish(self._pubsub_channel(channel), b"p0::" + payload)
            return None
        except (RedisError, OSError) as exc:
            raise EngineError(f"publish to {channel} failed: {exc}") from exc

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._publish_control(channel, b"j" + encode_info(info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._publish_control(channel, b"l" + encode_info(info))

    async def _publish_control(self, channel: str, message: bytes) -> None:
        try:
            await self.redis.publish(self._pubsub_channel(channel), message)
        except (RedisError, OSError) as exc:
            raise EngineError(f"publish to {channel} failed: {exc}") from exc

    # subscriptions

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        try:
            await self._pubsub.subscribe(self._pubsub_channel(channel))
        except (RedisError, OSError) as exc:
            # The reader resubscribes every channel when it reconnects.
            logger.warning("subscribe to %s failed, will retry on reconnect: %s", channel, exc)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        try:
            await self._pubsub.unsubscribe(self._pubsub_channel(channel))
        except (RedisError, OSError) as exc:
            logger.warning("unsubscribe from %s failed: %s", channel, exc)

    async def _read_forever(self) -> None:
        """Deliver pub/sub messages; reconnect with backoff and resubscribe when Redis goes away."""
        attempt = 0
        prefix_length = len(self.prefix) + len(".client.")
        while not self._closing:
            try:
                if self._pubsub.connection is None and self._channels:
                    await self._pubsub.subscribe(*(self._pubsub_channel(c) for c in self._channels))
                if self._pubsub.connection is None:
                    await asyncio.sleep(0.05)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
                attempt = 0
                if message is None:
                    continue
                self._dispatch(_text(message["channel"])[prefix_length:], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                delay = min(5.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                logger.warning("redis pub/sub lost (%s); reconnecting in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                await self._reconnect()
            except Exception:
                logger.exception("failed to handle a redis pub/sub message")

    async def _reconnect(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        channels = list(self._channels)
        if not channels:
            return
        try:
            await self._pubsub.subscribe(*(self._pubsub_channel(c) for c in channels))
        except (RedisError, OSError):
            return  # the next read fails and reconnects again
        # Whatever was published while the connection was down didn't reach this node.
        handler = self._handler
        on_lost = getattr(handler, "on_continuity_lost", None)
        if on_lost is not None:
            on_lost(channels)

    def _dispatch(self, channel: str, data: bytes) -> None:
        handler = self._handler
        if handler is None:
            return
        kind = data[:1]
        if kind == b"p":
            offset_end = data.index(b":", 1)
            epoch_end = data.index(b":", offset_end + 1)
            offset = int(data[1:offset_end])
            publication = decode_publication(data[epoch_end + 1 :], offset)
            position = StreamPosition(offset, data[offset_end + 1 : epoch_end].decode()) if offset else None
            handler.on_publication(channel, publication, position)
        elif kind == b"j":
            handler.on_join(channel, decode_info(data[1:]))
        elif kind == b"l":
            handler.on_leave(channel, decode_info(data[1:]))

    # history

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        # Nothing comes before offset 0, and XREVRANGE refuses "(0-0" as its end.
        read = limit != 0 and not (reverse and since is not None and since.offset <= 0)
        # "(N-0" is exclusive: entries after offset N forward, before it in reverse.
        start = f"({since.offset}-0" if since is not None else "+" if reverse else "-"
        try:
            offset, epoch, entries = await self.scripts.history(
                keys=[self._stream_key(channel), self._meta_key(channel)],
                args=[
                    secrets.token_hex(4),
                    self.meta_ttl,
                    "1" if read else "0",
                    start,
                    "1" if reverse else "0",
                    limit or 0,
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
