"""The soak's trend check: does a series sampled over a long run keep growing?

After a warm-up, a least-squares line is fitted to each series (time in minutes, value); its
slope, scaled to an hour, is the series' growth. A series fails when that growth exceeds its
:class:`Limit`: a share of the series' level (RSS: memory that grows by a tenth an hour leaks),
or an absolute amount (file descriptors and tasks: a handful an hour at a steady load is noise,
dozens are a leak). A line, not the difference of the first and last samples, so that one
sample taken during a burst of connections neither hides nor makes a trend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

__all__ = ["LIMITS", "Limit", "Trend", "check", "fit"]


@dataclasses.dataclass(frozen=True)
class Limit:
    """How much a series may grow in an hour: ``relative`` times its fitted level at the
    warm-up's end, or ``absolute`` in its own unit; ``None`` doesn't bound that way."""

    relative: float | None = None
    absolute: float | None = None

    def describe(self, unit: str) -> str:
        bounds = []
        if self.relative is not None:
            bounds.append(f"{self.relative:.0%} of its level")
        if self.absolute is not None:
            bounds.append(f"{self.absolute:g} {unit}")
        return " and ".join(bounds) + " per hour"


#: The soak's limits, by series: RSS 10 % an hour, 30 file descriptors, 60 tasks, 50 ms of lag.
LIMITS: Mapping[str, Limit] = {
    "rss_mib": Limit(relative=0.10),
    "fds": Limit(absolute=30),
    "tasks": Limit(absolute=60),
    "loop_lag_ms": Limit(absolute=50),
}


@dataclasses.dataclass(frozen=True)
class Trend:
    """A series' fitted line after the warm-up, and whether its growth passes its limit."""

    samples: int
    start: float
    end: float
    #: Growth per hour of the fitted line, in the series' unit.
    slope_per_hour: float
    #: The fitted line's value at the first sample after the warm-up.
    level: float
    ok: bool
    reason: str


def fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through ``(x, y)`` points: ``(slope, intercept)``; flat for fewer than 2
    points or a single x."""
    n = len(points)
    if n == 0:
        return 0.0, 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if n < 2 or spread == 0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope, mean_y - slope * mean_x


def check(points: Sequence[tuple[float, float]], limit: Limit, *, warmup_minutes: float) -> Trend:
    """Fit the samples taken from ``warmup_minutes`` on (``(minute, value)`` points) and judge
    their growth by ``limit``; fewer than 3 samples after the warm-up pass, saying so."""
    kept = [(x, y) for x, y in points if x >= warmup_minutes]
    if len(kept) < 3:
        last = kept[-1][1] if kept else 0.0
        first = kept[0][1] if kept else 0.0
        return Trend(len(kept), first, last, 0.0, first, True, "too few samples after the warm-up to fit")
    slope, intercept = fit(kept)
    per_hour = slope * 60
    level = intercept + slope * kept[0][0]
    bounds = []
    if limit.relative is not None:
        bounds.append(limit.relative * abs(level))
    if limit.absolute is not None:
        bounds.append(limit.absolute)
    bound = min(bounds) if bounds else float("inf")
    ok = per_hour <= bound
    reason = f"grows {per_hour:+.3g}/h, limit {bound:.3g}/h"
    return Trend(len(kept), kept[0][1], kept[-1][1], per_hour, level, ok, reason)
