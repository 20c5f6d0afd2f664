"""ratelimit: token buckets, driven with explicit times."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from wavecast.realtime.ratelimit import FULL, TokenBucket, take_tokens


def test_starts_full_and_allows_a_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_no_rate_no_limit() -> None:
    bucket = TokenBucket(rate=None, burst=1, now=0.0)
    assert all(bucket.take(0.0) for _ in range(1000))


def test_refills_at_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=1, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.25)  # half a token
    assert bucket.take(0.5)  # one token
    assert not bucket.take(0.5)


def test_refill_stops_at_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert bucket.take(0.0)
    assert bucket.take(0.0)
    assert [bucket.take(1000.0) for _ in range(3)] == [True, True, False]


def test_a_refused_take_keeps_what_was_refilled() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.6)
    # 0.6 tokens were kept; 0.4 more make one.
    assert bucket.take(1.0)


def test_time_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_take_several_tokens() -> None:
    bucket = TokenBucket(rate=1.0, burst=5, now=0.0)
    assert bucket.take(0.0, 3)
    assert not bucket.take(0.0, 3)
    assert bucket.take(0.0, 2)
    assert not bucket.take(0.0)
    assert bucket.take(2.0, 2)


def test_attributes() -> None:
    bucket = TokenBucket(rate=1.5, burst=4, now=0.0)
    assert (bucket.rate, bucket.burst) == (1.5, 4)


def test_full_once_refilled() -> None:
    bucket = TokenBucket(2.0, 4, now=0.0)
    assert bucket.full(0.0)
    assert bucket.take(0.0, 3)
    assert not bucket.full(1.0)
    assert bucket.full(1.5)
    assert TokenBucket(None, 1, now=0.0).full(0.0)


def test_take_tokens_from_a_full_bucket() -> None:
    full_at = FULL
    taken = []
    for _ in range(4):
        after = take_tokens(full_at, 100.0, rate=3.0, burst=3)
        taken.append(after is not None)
        full_at = full_at if after is None else after
    # Thirds add up to the whole burst: rounding refuses none of it.
    assert taken == [True, True, True, False]
    assert full_at == pytest.approx(101.0)


class _Counted:
    """A bucket as tokens and a time stamp, the way it is usually written: the reference."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, float(burst), now

    def take(self, now: float, tokens: float) -> bool:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= tokens - 1e-6:
            self.tokens -= tokens
            return True
        return False


@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 10.0, 100.0]),
    burst=st.integers(1, 20),
    steps=st.lists(st.tuples(st.integers(0, 3000), st.sampled_from([1.0, 2.0, 3.0])), max_size=60),
)
def test_the_same_answers_as_a_counted_bucket(rate: float, burst: int, steps: list[tuple[int, float]]) -> None:
    # Times in whole milliseconds, moving forward: where the answers could differ by rounding
    # alone, a token short by less than a millionth, the reference allows it too.
    bucket, reference = TokenBucket(rate, burst, now=0.0), _Counted(rate, burst, 0.0)
    now = 0.0
    for step, tokens in steps:
        now += step / 1000
        assert bucket.take(now, tokens) == reference.take(now, tokens), (now, tokens)
