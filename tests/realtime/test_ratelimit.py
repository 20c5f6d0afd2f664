"""ratelimit: token buckets, driven with explicit times."""

from __future__ import annotations

from wavecast.realtime.ratelimit import TokenBucket


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
