"""A clock for code that takes one: it moves only when told to."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
