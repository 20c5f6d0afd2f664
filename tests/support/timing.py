"""One scaled unit of time, bounded waits, and the time bound of each suite's tests.

Every wait in the tests is a multiple of :data:`MS`. On a slow machine, set
``WAVECAST_TESTS_TIMEOUT_FACTOR`` (``2``, ``5``...) to stretch all of them at once. No test
asserts how long something took: waits only bound how long a test may hang.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest

__all__ = ["MS", "TIMEOUT_FACTOR", "bound_in_time", "wait_until"]

TIMEOUT_FACTOR = float(os.environ.get("WAVECAST_TESTS_TIMEOUT_FACTOR", "1"))

#: One millisecond, scaled by ``WAVECAST_TESTS_TIMEOUT_FACTOR``.
MS = 0.001 * TIMEOUT_FACTOR


async def wait_until(
    predicate: Callable[[], object | Awaitable[object]], *, timeout: float = 2000 * MS, what: str = "condition"
) -> None:
    """Poll ``predicate`` (plain or async) every few milliseconds until it's true; fail after
    ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                done = predicate()
                if inspect.isawaitable(done):
                    done = await done
                if done:
                    return
                await asyncio.sleep(2 * MS)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def bound_in_time(items: list[pytest.Item], seconds: Mapping[Path, float]) -> None:
    """Give each test under a directory of ``seconds`` that many seconds (scaled), unless it
    has a timeout of its own, so that a hang fails one test instead of the run."""
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        for directory, bound in seconds.items():
            if directory in item.path.parents:
                item.add_marker(pytest.mark.timeout(bound * TIMEOUT_FACTOR))
                break
