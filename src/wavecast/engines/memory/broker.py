"""A broker for one process: streams and fan-out in memory."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from ..base import BrokerEventHandler, ClientInfo, HistoryResult, Publication, StreamPosition

__all__ = ["MemoryBroker"]

logger = logging.getLogger("wavecast.engines.memory")


class _SavedStream(msgspec.Struct):
    epoch: str
    offset: int
    items: list[Publication]
    items_ttl: float
    meta_ttl: float


class _Snapshot(msgspec.Struct):
    saved_at: float
    streams: dict[str, _SavedStream]


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
        snapshot_path: a file to save the streams to on :meth:`close` and load them from
            on :meth:`start`, so that offsets, epochs and history survive a restart.
    """

    def __init__(
        self,
        *,
        meta_ttl: float = 30 * 86400,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        snapshot_path: str | Path | None = None,
    ) -> None:
        self.meta_ttl = meta_ttl
        self.sweep_interval = sweep_interval
        self.clock = clock
        self.snapshot_path = None if snapshot_path is None else Path(snapshot_path)
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        if self.snapshot_path is not None and self.snapshot_path.exists():
            self._load(self.snapshot_path)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="wavecast-memory-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.snapshot_path is not None:
            self._save(self.snapshot_path)

    def _save(self, path: Path) -> None:
        """Write every live stream, with its remaining lifetimes, atomically."""
        self.sweep()
        now = self.clock()
        snapshot = _Snapshot(
            saved_at=time.time(),
            streams={
                channel: _SavedStream(
                    epoch=stream.epoch,
                    offset=stream.offset,
                    items=list(stream.items),
                    items_ttl=max(stream.items_expire - now, 0.0),
                    meta_ttl=max(stream.meta_expire - now, 0.0),
                )
                for channel, stream in self._streams.items()
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(msgspec.json.encode(snapshot))
        os.replace(temporary, path)

    def _load(self, path: Path) -> None:
        """Restore the streams of a snapshot; time spent stopped counts against their lifetimes."""
        try:
            snapshot = msgspec.json.decode(path.read_bytes(), type=_Snapshot)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            logger.warning("ignoring unreadable history snapshot %s: %s", path, exc)
            return
        now = self.clock()
        elapsed = max(time.time() - snapshot.saved_at, 0.0)
        for channel, saved in snapshot.streams.items():
            if saved.meta_ttl <= elapsed:
                continue
            items = collections.deque(saved.items) if saved.items_ttl > elapsed else collections.deque()
            self._streams[channel] = _Stream(
                epoch=saved.epoch,
                offset=saved.offset,
                items=items,
                items_expire=now + saved.items_ttl - elapsed,
                meta_expire=now + saved.meta_ttl - elapsed,
            )

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
