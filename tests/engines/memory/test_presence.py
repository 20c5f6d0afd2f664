"""What only the memory presence manager does: sweeping expired entries, its clock.

Everything that every presence manager does is in ``tests/engines/contract/``.
"""

from __future__ import annotations

import time

from wavecast.engines import ClientInfo
from wavecast.engines.memory import MemoryPresenceManager

from ...support.clock import FakeClock
from ...support.timing import MS, wait_until

ANN = ClientInfo(client="c1", user="ann")
BOB = ClientInfo(client="c2", user="bob")


async def test_sweep_forgets_expired_entries_and_empty_channels() -> None:
    clock = FakeClock()
    presence = MemoryPresenceManager(clock=clock)
    await presence.add_presence("one", "c1", ANN, ttl=1)
    await presence.add_presence("one", "c2", BOB, ttl=10)
    await presence.add_presence("two", "c1", ANN, ttl=1)
    clock.now += 2
    presence.sweep()
    assert presence._channels == {"one": {"c2": (BOB, 1010.0)}}


async def test_remove_the_last_client_forgets_the_channel() -> None:
    presence = MemoryPresenceManager()
    await presence.add_presence("ch", "c1", ANN, ttl=10)
    await presence.remove_presence("ch", "c1", "ann")
    assert presence._channels == {}


async def test_the_sweeper_runs_every_sweep_interval() -> None:
    clock = FakeClock()
    presence = MemoryPresenceManager(sweep_interval=5 * MS, clock=clock)
    await presence.start()
    try:
        await presence.add_presence("ch", "c1", ANN, ttl=1)
        clock.now += 2
        await wait_until(lambda: not presence._channels, what="the sweep")
    finally:
        await presence.close()
    assert presence._sweeper.task is None


async def test_close_before_start() -> None:
    await MemoryPresenceManager().close()


async def test_the_default_clock_is_monotonic() -> None:
    presence = MemoryPresenceManager()
    assert presence.clock is time.monotonic
    await presence.add_presence("ch", "c1", ANN, ttl=60)
    assert await presence.presence("ch") == {"c1": ANN}
