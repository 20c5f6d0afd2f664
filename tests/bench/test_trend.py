"""The soak's trend check (bench/trend.py) on synthetic series: flat, growing, noisy, short."""

from __future__ import annotations

import random

from tests.support.tools import ROOT, load_script

trend = load_script(ROOT / "bench" / "trend.py")
RSS = trend.LIMITS["rss_mib"]
FDS = trend.LIMITS["fds"]


def minutes(values: list[float]) -> list[tuple[float, float]]:
    return [(float(minute), value) for minute, value in enumerate(values)]


def test_fit_recovers_a_line() -> None:
    slope, intercept = trend.fit([(0, 1.0), (1, 3.0), (2, 5.0)])
    assert (slope, intercept) == (2.0, 1.0)
    assert trend.fit([]) == (0.0, 0.0)
    assert trend.fit([(4, 7.0)]) == (0.0, 7.0)
    assert trend.fit([(4, 6.0), (4, 8.0)]) == (0.0, 7.0)


def test_flat_series_passes() -> None:
    result = trend.check(minutes([200.0] * 60), RSS, warmup_minutes=10)
    assert result.ok
    assert result.slope_per_hour == 0
    assert result.samples == 50
    assert (result.start, result.end) == (200.0, 200.0)


def test_growth_past_the_relative_limit_fails() -> None:
    # 200 MiB growing 0.5 MiB a minute: 30 MiB an hour, 15 % of its level.
    growing = minutes([200 + 0.5 * m for m in range(60)])
    result = trend.check(growing, RSS, warmup_minutes=10)
    assert not result.ok
    assert abs(result.slope_per_hour - 30) < 1e-9
    assert abs(result.level - 205) < 1e-9
    # 0.25 MiB a minute is 7.5 %: within the limit.
    assert trend.check(minutes([200 + 0.25 * m for m in range(60)]), RSS, warmup_minutes=10).ok


def test_the_warm_up_is_left_out() -> None:
    # Memory that climbs while caches fill, then stays: flat once the warm-up is over.
    values = [100 + 10 * m for m in range(10)] + [200.0] * 50
    assert trend.check(minutes(values), RSS, warmup_minutes=10).ok
    assert not trend.check(minutes(values), RSS, warmup_minutes=0).ok


def test_noise_around_a_flat_level_passes_and_a_leak_under_noise_fails() -> None:
    rng = random.Random(7)
    noisy = minutes([80 + rng.uniform(-10, 10) for _ in range(60)])
    assert trend.check(noisy, FDS, warmup_minutes=10).ok
    # One descriptor leaked a minute, 60 an hour, under the same noise.
    leaking = minutes([80 + m + rng.uniform(-10, 10) for m in range(60)])
    result = trend.check(leaking, FDS, warmup_minutes=10)
    assert not result.ok
    assert 40 < result.slope_per_hour < 80


def test_one_spike_at_the_end_doesnt_make_a_trend() -> None:
    values = [80.0] * 59 + [110.0]
    result = trend.check(minutes(values), FDS, warmup_minutes=10)
    assert result.end == 110
    assert result.ok


def test_too_few_samples_pass_saying_so() -> None:
    result = trend.check(minutes([1.0, 50.0, 100.0]), FDS, warmup_minutes=2)
    assert result.ok
    assert result.samples == 1
    assert "too few" in result.reason


def test_limits_describe_themselves() -> None:
    assert RSS.describe("MiB") == "10% of its level per hour"
    assert FDS.describe("fds") == "30 fds per hour"
    both = trend.Limit(relative=0.5, absolute=3)
    assert both.describe("x") == "50% of its level and 3 x per hour"
    # Both bounds: the smaller one holds.
    assert not trend.check(minutes([10 + 0.1 * m for m in range(30)]), both, warmup_minutes=0).ok
