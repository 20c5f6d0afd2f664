from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import pytest

from tests.support.clock import FakeClock
from tests.support.timing import MS, wait_until
from wavecast.asyncio import _timers as timers
from wavecast.asyncio._timers import TimingWheel, Wheel, resolution_for, wheel


class Item:
    """A hashable stand-in for a connection."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# --- TimingWheel, with a fake clock ---------------------------------------------------


def test_nothing_is_due_before_its_bucket() -> None:
    clock = FakeClock(100.0)
    wheel = TimingWheel[Item](0.5)
    item = Item("a")
    tick = wheel.add(item, clock() + 1.2)
    assert tick == 203  # due at 101.5: rounded up to the bucket's end, never early
    assert wheel.next_tick() == 203
    clock.now = 101.4
    assert wheel.pop_due(wheel.tick_of(clock())) == []
    clock.now = 101.5
    assert wheel.pop_due(wheel.tick_of(clock())) == [item]
    assert wheel.next_tick() is None
    assert len(wheel) == 0


def test_items_of_one_bucket_fire_together_and_buckets_in_order() -> None:
    wheel = TimingWheel[Item](1.0)
    early, late = Item("early"), Item("late")
    both = [Item("x"), Item("y")]
    wheel.add(late, 5.0)
    for item in both:
        wheel.add(item, 2.5)
    wheel.add(early, 0.5)
    assert len(wheel) == 4
    due = wheel.pop_due(wheel.tick_of(10.0))
    assert due[0] is early
    assert set(due[1:3]) == set(both)
    assert due[3] is late


def test_items_of_one_bucket_share_its_tick() -> None:
    wheel = TimingWheel[Item](0.001)
    ticks = [wheel.add(Item(str(n)), 1000.0002 + n / 100_000) for n in range(5)]
    # Each an int past the small ones Python caches, and all the same object.
    assert ticks[0] > 256 and all(tick is ticks[0] for tick in ticks)
    assert wheel.add(Item("later"), 2000.0) != ticks[0]


def test_a_discarded_item_doesnt_fire() -> None:
    wheel = TimingWheel[Item](0.1)
    kept, dropped = Item("kept"), Item("dropped")
    wheel.add(kept, 1.0)
    tick = wheel.add(dropped, 1.0)
    wheel.discard(dropped, tick)
    wheel.discard(dropped, tick)  # twice is harmless
    wheel.discard(dropped, tick + 1)  # so is a tick it isn't in
    assert wheel.pop_due(wheel.tick_of(2.0)) == [kept]


def test_an_emptied_bucket_stays_until_its_tick() -> None:
    wheel = TimingWheel[Item](1.0)
    item = Item("a")
    tick = wheel.add(item, 3.0)
    wheel.discard(item, tick)
    assert wheel.next_tick() == tick
    # Added again in the same bucket: the tick isn't pushed twice.
    wheel.add(item, 2.5)
    assert wheel._ticks == [tick]
    assert wheel.pop_due(tick) == [item]
    assert wheel.next_tick() is None


def test_many_items_against_a_sorted_list() -> None:
    rng = random.Random(7)
    wheel = TimingWheel[Item](0.25)
    expected: dict[Item, float] = {}
    ticks: dict[Item, int] = {}
    for index in range(500):
        item = Item(str(index))
        when = rng.uniform(0, 50)
        ticks[item] = wheel.add(item, when)
        expected[item] = when
    for item in rng.sample(list(expected), 100):
        wheel.discard(item, ticks.pop(item))
        del expected[item]
    fired: dict[Item, float] = {}
    clock = FakeClock(0.0)
    while clock() < 51:
        clock.now += 0.1
        for item in wheel.pop_due(wheel.tick_of(clock())):
            fired[item] = clock()
    assert fired.keys() == expected.keys()
    for item, when in expected.items():
        # Never early, and late by less than a bucket plus the clock's step.
        assert when <= fired[item] + 1e-9
        assert fired[item] - when < 0.25 + 0.1 + 1e-9


def test_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^resolution must be positive, got 0$"):
        TimingWheel(0)


def test_resolution_for_a_delay() -> None:
    assert resolution_for(25.0) == timers.MAX_RESOLUTION
    assert resolution_for(0.01) == timers.MIN_RESOLUTION
    assert resolution_for(3.2) == pytest.approx(0.05)


# --- Wheel, on a real loop ------------------------------------------------------------


async def test_the_wheel_calls_back_each_due_item_once() -> None:
    loop = asyncio.get_running_loop()
    fired: list[Item] = []
    wheel = Wheel(loop, fired.append, resolution=MS)
    first, second, cancelled = Item("first"), Item("second"), Item("cancelled")
    wheel.add(second, 20 * MS)
    wheel.add(first, 5 * MS)
    wheel.discard(cancelled, wheel.add(cancelled, 10 * MS))
    await wait_until(lambda: len(fired) == 2)
    assert fired == [first, second]
    await asyncio.sleep(10 * MS)
    assert fired == [first, second]
    assert len(wheel) == 0
    assert wheel._handle is None  # nothing armed once empty


async def test_the_wheel_arms_one_timer_for_its_earliest_bucket() -> None:
    loop = asyncio.get_running_loop()
    wheel = Wheel(loop, lambda item: None, resolution=MS)
    wheel.add(Item("late"), 1.0)
    late_handle = wheel._handle
    assert late_handle is not None
    wheel.add(Item("early"), 0.5)
    assert late_handle.cancelled()
    early_handle = wheel._handle
    wheel.add(Item("later"), 2.0)
    assert wheel._handle is early_handle
    assert early_handle is not None
    early_handle.cancel()


async def test_a_callback_can_add_again_and_a_failing_one_doesnt_stop_the_tick() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: errors.append(context))
    counts: dict[str, int] = {"a": 0, "b": 0}
    wheel: Wheel[Item]

    def callback(item: Item) -> None:
        counts[item.name] += 1
        if item.name == "a":
            raise RuntimeError("boom")
        if counts["b"] < 3:
            wheel.add(item, 2 * MS)

    wheel = Wheel(loop, callback, resolution=MS)
    wheel.add(Item("a"), 2 * MS)
    wheel.add(Item("b"), 2 * MS)
    try:
        await wait_until(lambda: counts["b"] == 3)
    finally:
        loop.set_exception_handler(None)
    assert counts["a"] == 1
    assert len(errors) == 1
    assert isinstance(errors[0]["exception"], RuntimeError)


async def test_a_spread_spreads_items_and_never_delays_them() -> None:
    loop = asyncio.get_running_loop()
    wheel = Wheel(loop, lambda item: None, resolution=0.01)
    now = loop.time()
    ticks = [wheel.add(Item(str(index)), 10.0, spread=5.0) for index in range(200)]
    assert min(ticks) * 0.01 >= now + 5.0 - 0.01
    assert max(ticks) * 0.01 <= loop.time() + 10.0 + 0.01
    # 200 items over 500 buckets: far from all in one.
    assert len(set(ticks)) > 100
    assert wheel._handle is not None
    wheel._handle.cancel()


async def test_wheel_is_shared_by_callback_and_delay() -> None:
    loop = asyncio.get_running_loop()

    def callback(item: Item) -> None:
        pass

    assert wheel(loop, callback, 25.0) is wheel(loop, callback, 20.0)  # the same resolution
    assert wheel(loop, callback, 0.05) is not wheel(loop, callback, 25.0)
    assert wheel(loop, print, 25.0) is not wheel(loop, callback, 25.0)


def test_a_wheel_doesnt_keep_its_loop_alive() -> None:
    loop = asyncio.new_event_loop()
    wheel(loop, print, 1.0)
    count = len(timers._wheels)
    loop.close()
    del loop
    gc.collect()
    assert len(timers._wheels) == count - 1
