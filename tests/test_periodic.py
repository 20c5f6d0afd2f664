"""periodic: repeated background work, started and stopped."""

from __future__ import annotations

import asyncio

from wavecast.periodic import Periodic

from .support.timing import MS, wait_until


async def test_calls_plain_and_coroutine_functions_until_stopped() -> None:
    calls: list[str] = []

    async def later() -> None:
        await asyncio.sleep(0)
        calls.append("async")

    plain = Periodic("plain", 1 * MS, lambda: calls.append("plain"))
    coroutine = Periodic("coroutine", 1 * MS, later)
    plain.start()
    coroutine.start()
    assert plain.task is not None and plain.task.get_name() == "plain"
    await wait_until(lambda: calls.count("plain") >= 2 and calls.count("async") >= 2, what="two calls of each")
    task = plain.task
    await plain.stop()
    await coroutine.stop()
    assert task.cancelled() and plain.task is None
    count = len(calls)
    await asyncio.sleep(5 * MS)
    assert len(calls) == count


async def test_stop_before_start_and_twice() -> None:
    periodic = Periodic("idle", 1.0, lambda: None)
    await periodic.stop()
    periodic.start()
    await periodic.stop()
    await periodic.stop()
    assert periodic.task is None
