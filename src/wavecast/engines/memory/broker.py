"""A broker for one process: streams and fan-out in memory."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import secrets
import time
from collections.abc import Callable

from ..base import BrokerEventHandler, ClientInfo, HistoryResult, Publication, StreamPosition

__all__ = ["MemoryBroker"]


@dataclasses.dataclass(slots=True)
class _Stream:
    epoch: str
    offset: int = 0
    items: collections.deque[Publication] = dataclasses.field(default_factory=collections.deque)
    # When the publications expire, and when the stream itself (offset, epoch) does.
    items_expire: float = 0.0
    meta_expire: float = 0.0


class MemoryBroker:
    """Keeps each channel's stream in memory and delivers publications to this node.

    Args:
        meta_ttl: seconds a stream's offset and epoch outlive its last publication. After
            that the stream starts again with a new epoch.
        sweep_interval: seconds between sweeps of expired streams.
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self,
        *,
        meta_ttl: float = 30 * 86400,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.meta_ttl = meta_ttl
        self.sweep_interval = sweep_interval
        self.clock = clock
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="wavecast-memory-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def _stream(self, channel: str, now: float) -> _Stream:
        """Return the channel's live stream, starting a new one if it expired."""
        stream = self._streams.get(channel)
        if stream is not None and stream.meta_expire <= now:
            stream = None
        if stream is None:
            stream = self._streams[channel] = _Stream(epoch=secrets.token_hex(4), meta_expire=now + self.meta_ttl)
        elif stream.items and stream.items_expire <= now:
            stream.items.clear()
        return stream

    async def publish(
        self,
        channel: str,
        publication: Publication,
        *,
        history_size: int = 0,
        history_ttl: float = 0,
    ) -> StreamPosition | None:
        position = None
        if history_size > 0 and history_ttl > 0:
            now = self.clock()
            stream = self._stream(channel, now)
            stream.offset += 1
            publication = dataclasses.replace(publication, offset=stream.offset)
            stream.items.append(publication)
            while len(stream.items) > history_size:
                stream.items.popleft()
            stream.items_expire = now + history_ttl
            stream.meta_expire = now + max(self.meta_ttl, history_ttl)
            position = StreamPosition(stream.offset, stream.epoch)
        if channel in self._subscribed and self._handler is not None:
            self._handler.on_publication(channel, publication, position)
        return position

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        if channel in self._subscribed and self._handler is not None:
            self._handler.on_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        if channel in self._subscribed and self._handler is not None:
            self._handler.on_leave(channel, info)

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        stream = self._stream(channel, self.clock())
        position = StreamPosition(stream.offset, stream.epoch)
        if limit == 0 or (since is not None and since.epoch != stream.epoch):
            return HistoryResult([], position)
        items = list(stream.items)
        if since is not None:
            if reverse:
                items = [p for p in items if p.offset < since.offset]
            else:
                items = [p for p in items if p.offset > since.offset]
        if reverse:
            items.reverse()
        if limit is not None:
            items = items[:limit]
        return HistoryResult(items, position)

    async def remove_history(self, channel: str) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            stream.items.clear()

    def sweep(self) -> None:
        """Forget expired streams and publications."""
        now = self.clock()
        for channel, stream in list(self._streams.items()):
            if stream.meta_expire <= now:
                del self._streams[channel]
            elif stream.items and stream.items_expire <= now:
                stream.items.clear()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            self.sweep()
