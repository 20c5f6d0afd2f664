"""Token buckets for per-client rate limits; pure: the caller passes the time.

A bucket is kept as one number, the time at which it is full again (the generic cell rate
algorithm): it holds ``burst - (full_at - now) * rate`` tokens, all of them once ``full_at``
has passed. A client then costs one float instead of a bucket object with two of them, which
counts where a node holds a million clients.
"""

from __future__ import annotations

__all__ = ["FULL", "TokenBucket", "take_tokens"]

#: A ``full_at`` that has always passed: a bucket that is full.
FULL = 0.0

# Rounding in ``tokens / rate`` must not refuse the last token of a burst.
_EPSILON = 1e-9


def take_tokens(full_at: float, now: float, rate: float, burst: int, tokens: float = 1.0) -> float | None:
    """Take ``tokens`` at ``now`` from the bucket that is full at ``full_at``.

    Returns the bucket's new ``full_at``, or ``None`` when it holds fewer tokens (and then
    stays as it was).
    """
    after = (full_at if full_at > now else now) + tokens / rate
    if (after - now) * rate > burst + _EPSILON:
        return None
    return after


class TokenBucket:
    """Allows ``rate`` actions per second on average and ``burst`` at once.

    Args:
        rate: tokens added per second; ``None`` for no limit.
        burst: the bucket's size, and its content at the start.
        now: the current time, in seconds.
    """

    __slots__ = ("_full_at", "burst", "rate")

    def __init__(self, rate: float | None, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._full_at = now

    def take(self, now: float, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if the bucket holds them; return whether it did."""
        if self.rate is None:
            return True
        full_at = take_tokens(self._full_at, now, self.rate, self.burst, tokens)
        if full_at is None:
            return False
        self._full_at = full_at
        return True

    def full(self, now: float) -> bool:
        """Tell whether the bucket has filled up again: one made now would be the same."""
        return self.rate is None or self._full_at <= now
