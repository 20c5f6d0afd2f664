"""Background work that repeats every so often, in a task of its own, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable

__all__ = ["Periodic"]


class Periodic:
    """Call ``function`` every ``interval`` seconds once started, until :meth:`stop`.

    ``function`` may be a coroutine function; an exception it raises ends the repetition,
    so callers that must go on catch their own.
    """

    def __init__(self, name: str, interval: float, function: Callable[[], Awaitable[None] | None]) -> None:
        self.name = name
        self.interval = interval
        self.function = function
        #: The running task, while started.
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait for it; safe to call when not started, or twice."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            result = self.function()
            if inspect.isawaitable(result):
                await result
