"""What fixtures start, stopped when the test ends."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, TypeVar

__all__ = ["stopping"]

P = ParamSpec("P")
T = TypeVar("T")


@contextlib.asynccontextmanager
async def stopping(
    start: Callable[P, T | Awaitable[T]],
    stop: Callable[[T], object],
    *,
    ready: Callable[[T], Awaitable[object]] | None = None,
) -> AsyncIterator[Callable[P, Awaitable[T]]]:
    """Yield ``start`` as a coroutine function, and ``stop`` what it started, newest first, when
    the block ends.

    ``start`` and ``stop`` may be plain or coroutine functions. ``ready``, when given, waits
    for each thing after ``start``: a thing that never gets ready is stopped all the same.
    """
    started: list[T] = []

    async def start_and_keep(*args: P.args, **kwargs: P.kwargs) -> T:
        thing = start(*args, **kwargs)
        if inspect.isawaitable(thing):
            thing = await thing
        started.append(thing)  # type: ignore[arg-type]
        if ready is not None:
            await ready(thing)  # type: ignore[arg-type]
        return thing  # type: ignore[return-value]

    try:
        yield start_and_keep
    finally:
        for thing in reversed(started):
            stopped = stop(thing)
            if inspect.isawaitable(stopped):
                await stopped
