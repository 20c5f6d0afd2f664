"""Run a coroutine on uvloop when it is installed, on asyncio's loop otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop(use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """Return a new event loop: uvloop's if ``use_uvloop`` is true, or if ``None`` and it's installed."""
    if use_uvloop is not False:
        try:
            import uvloop
        except ImportError:
            if use_uvloop:
                raise
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None, debug: bool | None = None) -> T:
    """Run ``main`` to completion like :func:`asyncio.run`, on uvloop when available."""
    factory: Callable[[], asyncio.AbstractEventLoop] = lambda: new_event_loop(use_uvloop)  # noqa: E731
    with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        return runner.run(main)
