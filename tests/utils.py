"""Helpers shared by the test suites: one scaled unit of time, and bounded waits.

Every wait in the tests is a multiple of :data:`MS`. On a slow machine, set
``WAVECAST_TESTS_TIMEOUT_FACTOR`` (``2``, ``5``...) to stretch all of them at once. No test
asserts how long something took: waits only bound how long a test may hang.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

__all__ = ["MS", "TIMEOUT_FACTOR", "wait_until"]

TIMEOUT_FACTOR = float(os.environ.get("WAVECAST_TESTS_TIMEOUT_FACTOR", "1"))

#: One millisecond, scaled by ``WAVECAST_TESTS_TIMEOUT_FACTOR``.
MS = 0.001 * TIMEOUT_FACTOR


async def wait_until(predicate: Callable[[], bool], *, timeout: float = 2000 * MS, what: str = "condition") -> None:
    """Poll ``predicate`` every few milliseconds until it's true; fail after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(2 * MS)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
