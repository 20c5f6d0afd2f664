"""A broker for one process: streams and fan-out in memory.

A channel has a stream from its first publication with history on, and until the stream
expires or is evicted; reading a channel creates nothing. Memory is bounded as a whole
(``max_streams``, ``max_bytes``: the least recently published streams are evicted) and per
publisher (``max_user_bytes``: a user's publication that would hold more is refused).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from ...exceptions import EngineLimitError
from ...periodic import Periodic
from ..base import IDEMPOTENT_RESULT_TTL, BrokerEventHandler, ClientInfo, HistoryResult, Publication, StreamPosition

__all__ = ["ITEM_OVERHEAD", "STREAM_OVERHEAD", "MemoryBroker"]

logger = logging.getLogger("wavecast.engines.memory")

#: Bytes that a publication kept in history costs beside its data (its object, its slot),
#: counted against the limits so that many tiny publications cost what they take.
ITEM_OVERHEAD = 200
#: Bytes that a stream costs beside its publications (its entry, position and queue).
STREAM_OVERHEAD = 600


class _SavedStream(msgspec.Struct):
    epoch: str
    offset: int
    items: list[Publication]
    items_ttl: float
    meta_ttl: float
    owner: str | None = None


class _Snapshot(msgspec.Struct):
    saved_at: float
    streams: dict[str, _SavedStream]
    seed: str = ""
    generation: int = 0


@dataclasses.dataclass(slots=True)
class _Stream:
    epoch: str
    offset: int = 0
    items: collections.deque[Publication] = dataclasses.field(default_factory=collections.deque)
    # When the publications expire, and when the stream itself (offset, epoch) does.
    items_expire: float = 0.0
    meta_expire: float = 0.0
    #: Who published the first publication, and is charged for the stream itself.
    owner: str | None = None


def _owner(publication: Publication) -> str | None:
    """Whom a publication's bytes are charged to: its user, or its connection when anonymous;
    ``None`` for the server's own publications, which no per-user limit holds back."""
    info = publication.info
    if info is None:
        return None
    return info.user or info.client


def _cost(publication: Publication) -> int:
    return len(publication.data) + ITEM_OVERHEAD


class MemoryBroker:
    """Keeps each channel's stream in memory and delivers publications to this node.

    Args:
        meta_ttl: seconds a stream's offset and epoch outlive its last publication. After
            that the stream starts again with a new epoch.
        sweep_interval: seconds between sweeps of expired streams.
        clock: a monotonic clock in seconds.
        snapshot_path: a file to save the streams to on :meth:`close` and load them from
            on :meth:`start`, so that offsets, epochs and history survive a restart. It is
            readable by its owner only: publications may be private.
        max_streams: streams kept at most; beyond, the least recently published one is
            evicted. ``None``: no limit.
        max_bytes: bytes that streams and their publications may cost in all (see
            :data:`ITEM_OVERHEAD`, :data:`STREAM_OVERHEAD`); beyond, the least recently
            published streams are evicted. ``None``: no limit.
        max_user_bytes: bytes that the publications of one user (of one connection, when
            anonymous) and the streams they started may cost; a publication beyond is
            refused with :class:`~wavecast.exceptions.EngineLimitError`. The server's own
            publications aren't counted. ``None``: no limit.
        max_idempotent_results: results kept under idempotency keys at most; beyond, the
            oldest is forgotten before its time, and a retry with its key publishes again.
            ``None``: no limit.

    An evicted stream's subscribers learn that they can't recover it: the stream that
    replaces it has another epoch.
    """

    def __init__(
        self,
        *,
        meta_ttl: float = 30 * 86400,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        snapshot_path: str | Path | None = None,
        max_streams: int | None = 100_000,
        max_bytes: int | None = 256 * 2**20,
        max_user_bytes: int | None = 16 * 2**20,
        max_idempotent_results: int | None = 100_000,
    ) -> None:
        self.meta_ttl = meta_ttl
        self.sweep_interval = sweep_interval
        self.clock = clock
        self.snapshot_path = None if snapshot_path is None else Path(snapshot_path)
        self.max_streams = max_streams
        self.max_bytes = max_bytes
        self.max_user_bytes = max_user_bytes
        self.max_idempotent_results = max_idempotent_results
        #: What the streams cost in all, and per publisher, in the limits' measure.
        self.bytes = 0
        self.user_bytes: dict[str, int] = {}
        #: Streams evicted to stay within max_streams and max_bytes, since the start.
        self.evicted = 0
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        # Least recently published first: eviction takes from the front.
        self._streams: collections.OrderedDict[str, _Stream] = collections.OrderedDict()
        # See _epoch: a new seed is a new set of epochs, as a restart without a snapshot needs.
        self._seed = secrets.token_bytes(16)
        self._generation = 0
        # Results by (channel, idempotency key): when they expire, and the first position.
        # Oldest first, so that expiry and the limit both take from the front.
        self._results: collections.OrderedDict[tuple[str, str], tuple[float, StreamPosition | None]] = (
            collections.OrderedDict()
        )
        self._sweeper = Periodic("wavecast-memory-sweep", sweep_interval, self.sweep)

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        if self.snapshot_path is not None and self.snapshot_path.exists():
            self._load(self.snapshot_path)
        self._sweeper.start()

    async def close(self) -> None:
        await self._sweeper.stop()
        if self.snapshot_path is not None:
            self._save(self.snapshot_path)

    # --- epochs and accounting -------------------------------------------------------------

    def _epoch(self, channel: str, now: float) -> str:
        """The epoch of a channel that has no stream, and of the stream its next publication starts.

        It is the same on every read, so that reading creates nothing and a subscriber that
        came before the first publication recovers from it. It changes with the seed (a
        broker that didn't load this one's snapshot), with each eviction, and every
        ``meta_ttl``: two streams of one channel start at least ``meta_ttl`` apart (the first
        expires no sooner after its last publication), so a stream that started again never
        has the epoch of the one before, and a client can't mistake one for the other.
        """
        period = int(now // self.meta_ttl)
        key = f"{period}:{self._generation}:{channel}".encode()
        return hashlib.blake2b(key, key=self._seed, digest_size=4).hexdigest()

    def _charge(self, owner: str | None, cost: int) -> None:
        self.bytes += cost
        if owner is not None:
            left = self.user_bytes.get(owner, 0) + cost
            if left:
                self.user_bytes[owner] = left
            else:
                del self.user_bytes[owner]

    def _drop_items(self, stream: _Stream, keep: int = 0) -> None:
        """Forget a stream's oldest publications until ``keep`` are left."""
        items = stream.items
        while len(items) > keep:
            dropped = items.popleft()
            self._charge(_owner(dropped), -_cost(dropped))

    def _remove(self, channel: str) -> None:
        stream = self._streams.pop(channel)
        self._drop_items(stream)
        self._charge(stream.owner, -STREAM_OVERHEAD)

    def _live(self, channel: str, now: float) -> _Stream | None:
        """The channel's stream, without the publications that expired; ``None`` if it has none."""
        stream = self._streams.get(channel)
        if stream is None:
            return None
        if stream.meta_expire <= now:
            self._remove(channel)
            return None
        if stream.items and stream.items_expire <= now:
            self._drop_items(stream)
        return stream

    def _evict(self, keep: str) -> None:
        """Evict the least recently published streams, other than ``keep``, beyond the limits."""
        max_streams, max_bytes = self.max_streams, self.max_bytes
        evicted = 0
        while (max_streams is not None and len(self._streams) > max_streams) or (
            max_bytes is not None and self.bytes > max_bytes
        ):
            channel = next(iter(self._streams))
            if channel == keep:
                # Alone over the limit: it keeps its newest publication.
                self._drop_items(self._streams[keep], keep=1)
                break
            self._remove(channel)
            evicted += 1
        if evicted:
            # Streams that start again must not take the epochs that the evicted ones had.
            self._generation += 1
            if not self.evicted:
                logger.warning(
                    "history limits reached (max_streams=%s, max_bytes=%s): evicting the least recently "
                    "published streams; their subscribers won't recover them",
                    max_streams,
                    max_bytes,
                )
            self.evicted += evicted

    # --- snapshots ---------------------------------------------------------------------------

    def _save(self, path: Path) -> None:
        """Write every live stream, with its remaining lifetimes, atomically and privately."""
        self.sweep()
        now = self.clock()
        snapshot = _Snapshot(
            saved_at=time.time(),
            seed=self._seed.hex(),
            generation=self._generation,
            streams={
                channel: _SavedStream(
                    epoch=stream.epoch,
                    offset=stream.offset,
                    items=list(stream.items),
                    items_ttl=max(stream.items_expire - now, 0.0),
                    meta_ttl=max(stream.meta_expire - now, 0.0),
                    owner=stream.owner,
                )
                for channel, stream in self._streams.items()
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(msgspec.json.encode(snapshot))
        os.replace(temporary, path)

    def _load(self, path: Path) -> None:
        """Restore the streams of a snapshot; time spent stopped counts against their lifetimes."""
        try:
            snapshot = msgspec.json.decode(path.read_bytes(), type=_Snapshot)
            seed = bytes.fromhex(snapshot.seed)
        except (OSError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            logger.warning("ignoring unreadable history snapshot %s: %s", path, exc)
            return
        if seed:
            self._seed, self._generation = seed, snapshot.generation
        now = self.clock()
        elapsed = max(time.time() - snapshot.saved_at, 0.0)
        # Least recently published first, as they were saved.
        for channel, saved in snapshot.streams.items():
            if saved.meta_ttl <= elapsed or saved.offset <= 0:
                continue  # expired, or never published to (what reading used to create)
            items = collections.deque(saved.items) if saved.items_ttl > elapsed else collections.deque()
            self._streams[channel] = _Stream(
                epoch=saved.epoch,
                offset=saved.offset,
                items=items,
                items_expire=now + saved.items_ttl - elapsed,
                meta_expire=now + saved.meta_ttl - elapsed,
                owner=saved.owner,
            )
            self._charge(saved.owner, STREAM_OVERHEAD)
            for publication in items:
                self._charge(_owner(publication), _cost(publication))

    # --- the Broker protocol -----------------------------------------------------------------

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
        if idempotency_key is None:
            return self._publish(channel, publication, history_size, history_ttl)
        # No await between the check and the store: a concurrent duplicate can't slip between.
        now = self.clock()
        key = (channel, idempotency_key)
        cached = self._results.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        position = self._publish(channel, publication, history_size, history_ttl)
        self._remember(key, now + idempotent_ttl, position)
        return position

    def _remember(self, key: tuple[str, str], expires: float, position: StreamPosition | None) -> None:
        results = self._results
        results.pop(key, None)
        results[key] = (expires, position)
        limit = self.max_idempotent_results
        while limit is not None and len(results) > limit:
            results.popitem(last=False)

    def _sweep_results(self, now: float) -> None:
        """Forget expired results; a shorter TTL behind a longer one waits for the next sweep."""
        results = self._results
        while results:
            key, (expires, _) = next(iter(results.items()))
            if expires > now:
                break
            del results[key]

    def _publish(
        self, channel: str, publication: Publication, history_size: int, history_ttl: float
    ) -> StreamPosition | None:
        position = None
        if history_size > 0 and history_ttl > 0:
            now = self.clock()
            stream = self._live(channel, now)
            owner = _owner(publication)
            cost = _cost(publication)
            if owner is not None and self.max_user_bytes is not None:
                held = self.user_bytes.get(owner, 0)
                needed = cost + (STREAM_OVERHEAD if stream is None else 0)
                if held + needed > self.max_user_bytes:
                    raise EngineLimitError(
                        f"history of {owner!r} would cost {held + needed} bytes, more than {self.max_user_bytes}"
                    )
            if stream is None:
                stream = self._streams[channel] = _Stream(epoch=self._epoch(channel, now), owner=owner)
                self._charge(owner, STREAM_OVERHEAD)
            else:
                self._streams.move_to_end(channel)
            stream.offset += 1
            publication = dataclasses.replace(publication, offset=stream.offset)
            stream.items.append(publication)
            self._charge(owner, cost)
            self._drop_items(stream, keep=history_size)
            stream.items_expire = now + history_ttl
            stream.meta_expire = now + max(self.meta_ttl, history_ttl)
            position = StreamPosition(stream.offset, stream.epoch)
            self._evict(keep=channel)
        if channel in self._subscribed and self._handler is not None:
            self._handler.on_publication(channel, publication, position)
        return position

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        # One process, one node: a message to another node has nowhere to go.
        handler = self._handler
        if handler is not None and (node is None or node == handler.uid):
            handler.on_control(message)

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
        self, channel: str, *, since: StreamPosition | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryResult:
        now = self.clock()
        stream = self._live(channel, now)
        if stream is None:
            return HistoryResult([], StreamPosition(0, self._epoch(channel, now)))
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
            self._drop_items(stream)

    def sweep(self) -> None:
        """Forget expired streams, publications and idempotent results."""
        now = self.clock()
        for channel in list(self._streams):
            self._live(channel, now)
        self._sweep_results(now)
