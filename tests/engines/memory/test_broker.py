"""What only the memory broker does: sweeping expired streams, its clock, running unstarted.

Everything that every broker does is in ``tests/engines/contract/``.
"""

from __future__ import annotations

import asyncio
import time

from wavecast.engines import ClientInfo, Publication, StreamPosition
from wavecast.engines.memory import MemoryBroker

from ...utils import MS, wait_until
from ..helpers import FakeClock, RecordingHandler

DATA = Publication(data=b"{}")
INFO = ClientInfo(client="c", user="u")


async def test_sweep_forgets_expired_streams() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    await broker.publish("old", DATA, history_size=10, history_ttl=1)
    clock.now += 5
    await broker.publish("new", DATA, history_size=10, history_ttl=1)
    clock.now += 6
    broker.sweep()
    assert set(broker._streams) == {"new"}
    # The kept stream lost its expired publications but not its position.
    assert list(broker._streams["new"].items) == []
    assert broker._streams["new"].offset == 1


async def test_sweep_keeps_live_publications() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    await broker.publish("ch", DATA, history_size=10, history_ttl=5)
    clock.now += 4
    broker.sweep()
    assert [p.offset for p in broker._streams["ch"].items] == [1]


async def test_sweep_of_nothing() -> None:
    MemoryBroker().sweep()


async def test_a_long_history_ttl_keeps_the_stream_past_meta_ttl() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    position = await broker.publish("ch", DATA, history_size=10, history_ttl=100)
    clock.now += 50
    broker.sweep()
    result = await broker.history("ch")
    assert result.position == position
    assert [p.offset for p in result.publications] == [1]


async def test_history_of_an_expired_stream_starts_a_new_one_before_any_sweep() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    old = await broker.publish("ch", DATA, history_size=10, history_ttl=1)
    clock.now += 11
    result = await broker.history("ch")
    assert old is not None and result.position.epoch != old.epoch
    assert result.position == StreamPosition(0, result.position.epoch)


async def test_the_sweeper_runs_every_sweep_interval() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, sweep_interval=5 * MS, clock=clock)
    await broker.start(RecordingHandler())
    try:
        await broker.publish("ch", DATA, history_size=10, history_ttl=1)
        clock.now += 11
        await wait_until(lambda: "ch" not in broker._streams, what="the sweep")
    finally:
        await broker.close()
    assert broker._sweeper is None


async def test_close_before_start() -> None:
    await MemoryBroker().close()


async def test_close_cancels_the_sweeper() -> None:
    broker = MemoryBroker()
    await broker.start(RecordingHandler())
    sweeper = broker._sweeper
    assert sweeper is not None and not sweeper.done()
    await broker.close()
    assert sweeper.cancelled()


async def test_an_unstarted_broker_delivers_nothing() -> None:
    broker = MemoryBroker()
    await broker.subscribe("ch")
    assert await broker.publish("ch", DATA) is None
    await broker.publish_join("ch", INFO)
    await broker.publish_leave("ch", INFO)
    position = await broker.publish("ch", DATA, history_size=10, history_ttl=10)
    assert position is not None and position.offset == 1


async def test_the_default_clock_is_monotonic() -> None:
    broker = MemoryBroker()
    assert broker.clock is time.monotonic
    await broker.publish("ch", DATA, history_size=10, history_ttl=60)
    await asyncio.sleep(0)
    assert [p.offset for p in (await broker.history("ch")).publications] == [1]
