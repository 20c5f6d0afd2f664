"""Token buckets for per-client rate limits; pure: the caller passes the time."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows ``rate`` actions per second on average and ``burst`` at once.

    Args:
        rate: tokens added per second; ``None`` for no limit.
        burst: the bucket's size, and its content at the start.
        now: the current time, in seconds.
    """

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float | None, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if the bucket holds them; return whether it did."""
        if self.rate is None:
            return True
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._stamp = now
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False

    def full(self, now: float) -> bool:
        """Tell whether the bucket has filled up again: one made now would be the same."""
        if self.rate is None:
            return True
        return self._tokens + (now - self._stamp) * self.rate >= self.burst
