"""Deadlines for many connections on one loop timer: a timing wheel.

A server with a million clients would hold a million :class:`asyncio.TimerHandle` per kind of
deadline (the next ping, the pong it waits for), each with a bound method and a place in the
loop's heap. Here the deadlines of one kind fall into buckets of ``resolution`` seconds: a
bucket is a set of items, the loop holds one timer, for the earliest bucket, and an item costs
its place in a set. A deadline fires in its bucket's tick, up to ``resolution`` late and never
early.

:class:`TimingWheel` is the bookkeeping alone, given the time (so it is tested with a fake
clock); :class:`Wheel` drives one on an event loop and calls one callback per due item;
:func:`wheel` gives the loop's wheel for a callback and a delay.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

__all__ = ["TimingWheel", "Wheel", "resolution_for", "wheel"]

T = TypeVar("T")

#: The finest and the coarsest bucket: a delay is late by at most 1/64 of itself within these.
MIN_RESOLUTION = 0.001
MAX_RESOLUTION = 0.1


def resolution_for(delay: float) -> float:
    """The bucket width for deadlines about ``delay`` seconds away: 1/64 of it, in bounds."""
    return min(max(delay / 64, MIN_RESOLUTION), MAX_RESOLUTION)


class TimingWheel(Generic[T]):
    """Items due at times, kept in buckets of ``resolution`` seconds.

    Bucket ``k`` holds what is due in ``((k - 1) * resolution, k * resolution]`` and is due at
    ``k * resolution``. A bucket whose items were all discarded stays until its tick passes,
    so that a tick is in the heap exactly when its bucket exists.
    """

    __slots__ = ("_buckets", "_ticks", "resolution")

    def __init__(self, resolution: float) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.resolution = resolution
        # Each bucket with its tick: every item of a bucket gets the same int back from add(),
        # instead of one of its own (32 bytes a connection, with a million connections).
        self._buckets: dict[int, tuple[int, set[T]]] = {}
        self._ticks: list[int] = []

    def add(self, item: T, when: float) -> int:
        """Make ``item`` due at ``when``; return its tick, which :meth:`discard` takes."""
        tick = math.ceil(when / self.resolution)
        entry = self._buckets.get(tick)
        if entry is None:
            entry = self._buckets[tick] = (tick, set())
            heapq.heappush(self._ticks, tick)
        entry[1].add(item)
        return entry[0]

    def discard(self, item: T, tick: int) -> None:
        """Forget ``item``'s deadline in ``tick``; nothing if it isn't there (it fired)."""
        entry = self._buckets.get(tick)
        if entry is not None:
            entry[1].discard(item)

    def next_tick(self) -> int | None:
        """The earliest tick that holds a bucket, empty or not."""
        return self._ticks[0] if self._ticks else None

    def tick_of(self, now: float) -> int:
        """The last tick that is due at ``now``."""
        return math.floor(now / self.resolution)

    def pop_due(self, tick: int) -> list[T]:
        """Remove and return the items of every bucket up to ``tick``, earliest first."""
        ticks = self._ticks
        buckets = self._buckets
        due: list[T] = []
        while ticks and ticks[0] <= tick:
            due.extend(buckets.pop(heapq.heappop(ticks))[1])
        return due

    def __len__(self) -> int:
        """How many items wait."""
        return sum(len(items) for _, items in self._buckets.values())


class Wheel(Generic[T]):
    """A :class:`TimingWheel` on an event loop, calling ``callback(item)`` for each due item.

    The loop holds one timer at a time, for the earliest bucket. A callback that raises is
    reported to the loop's exception handler and doesn't stop the other items of its tick.
    """

    __slots__ = ("__weakref__", "_armed", "_callback", "_handle", "_loop", "_wheel")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[T], object], resolution: float) -> None:
        # Weakly: the loop's registry of wheels must not keep the loop alive.
        self._loop = weakref.ref(loop)
        self._callback = callback
        self._wheel: TimingWheel[T] = TimingWheel(resolution)
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0

    @property
    def resolution(self) -> float:
        return self._wheel.resolution

    def add(self, item: T, delay: float, *, spread: float = 0.0) -> int:
        """Call back ``item`` in ``delay`` seconds, or up to ``spread`` seconds sooner, at random.

        The spread puts items that start together in different buckets, so that a burst of
        connections doesn't ping in one tick forever after. Returns the tick for :meth:`discard`.
        """
        loop = self._loop()
        assert loop is not None, "the wheel's loop is gone"
        if spread:
            delay -= random.random() * min(spread, delay)
        tick = self._wheel.add(item, loop.time() + delay)
        if self._handle is None or tick < self._armed:
            self._arm(loop, tick)
        return tick

    def discard(self, item: T, tick: int) -> None:
        """Cancel ``item``'s call in ``tick``; nothing if it was called already."""
        self._wheel.discard(item, tick)

    def __len__(self) -> int:
        return len(self._wheel)

    def _arm(self, loop: asyncio.AbstractEventLoop, tick: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = tick
        self._handle = loop.call_at(tick * self._wheel.resolution, self._fire)

    def _fire(self) -> None:
        self._handle = None
        loop = self._loop()
        if loop is None:  # pragma: no cover - a loop is alive while it runs its timers
            return
        wheel = self._wheel
        # The loop may run a timer a clock tick early: the armed tick is due all the same.
        due = wheel.pop_due(max(self._armed, wheel.tick_of(loop.time())))
        callback = self._callback
        for item in due:
            try:
                callback(item)
            except Exception as exc:
                loop.call_exception_handler(
                    {"message": "timing wheel callback failed", "exception": exc, "callback": callback}
                )
        # A callback may have armed the wheel again already (an item added to an earlier tick).
        tick = wheel.next_tick()
        if tick is not None and (self._handle is None or tick < self._armed):
            self._arm(loop, tick)


# Values are Wheel[T] for their callback's T, which a dict can't say.
_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[object, float], Any]] = (
    weakref.WeakKeyDictionary()
)


def wheel(loop: asyncio.AbstractEventLoop, callback: Callable[[T], object], delay: float) -> Wheel[T]:
    """The loop's wheel that calls ``callback``, with buckets sized for ``delay`` (:func:`resolution_for`).

    Every connection with the same callback and a similar delay shares it; asking again with
    the same ``delay`` gives the same wheel, which is how its items are found to discard them.
    """
    wheels = _wheels.get(loop)
    if wheels is None:
        wheels = _wheels[loop] = {}
    resolution = resolution_for(delay)
    key = (callback, resolution)
    found = wheels.get(key)
    if found is None:
        found = wheels[key] = Wheel(loop, callback, resolution)
    return cast("Wheel[T]", found)
