"""The ``engine`` fixture: each contract test runs once per engine in :data:`ENGINES`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from wavecast.engines.memory import MemoryBroker, MemoryPresenceManager

from ..helpers import Engine, FakeClock, RecordingHandler

EngineFactory = Callable[[], contextlib.AbstractAsyncContextManager[Engine]]


@contextlib.asynccontextmanager
async def memory_engine() -> AsyncIterator[Engine]:
    """The memory engine on a fake clock: expiry tests take no time."""
    clock = FakeClock()
    meta_ttl = 30.0
    broker = MemoryBroker(meta_ttl=meta_ttl, clock=clock)
    presence = MemoryPresenceManager(clock=clock)

    async def advance(seconds: float) -> None:
        clock.now += seconds
        await asyncio.sleep(0)

    handler = RecordingHandler()
    await broker.start(handler)
    await presence.start()
    try:
        yield Engine("memory", broker, presence, handler, meta_ttl, advance)
    finally:
        await presence.close()
        await broker.close()


#: The engines under test, by name. Adding one is one entry here: a factory that starts it,
#: yields an :class:`Engine` and closes it. The Redis engine will add ``"redis": redis_engine``,
#: against a real ``redis-server`` on a free port (skipped with a reason when it isn't
#: installed, failing under ``CI=true``), with a short ``meta_ttl`` and an ``advance`` that
#: sleeps for real. Tests stay engine-agnostic: they wait for events with
#: ``engine.events.wait_for`` and let time pass only with ``engine.advance``.
ENGINES: dict[str, EngineFactory] = {
    "memory": memory_engine,
}


@pytest.fixture(params=sorted(ENGINES))
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    async with ENGINES[request.param]() as started:
        yield started
