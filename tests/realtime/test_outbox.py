"""outbox: what waits for a slow client, and the slow-consumer policies."""

from __future__ import annotations

import pytest

from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime.config import SlowConsumerPolicy
from wavecast.realtime.outbox import Outbox


def msg(payload: str) -> PreparedMessage:
    return PreparedMessage(payload.encode(), text=True)


def contents(outbox: Outbox) -> list[str]:
    """Empty the outbox and return its messages in order."""
    out = []
    while (message := outbox.pop()) is not None:
        out.append(message.payload.decode())
    assert outbox.size == 0
    assert len(outbox) == 0
    return out


def test_empty() -> None:
    outbox = Outbox(10)
    assert (outbox.max_size, outbox.size, outbox.dropped, len(outbox)) == (10, 0, 0, 0)
    assert outbox.pop() is None


def test_no_max_size_never_overflows() -> None:
    outbox = Outbox(None)
    for _ in range(1000):
        assert outbox.push(msg("x" * 100), policy="disconnect")
    assert (outbox.size, outbox.dropped) == (100_000, 0)


def test_size_counts_bytes() -> None:
    outbox = Outbox(100)
    assert outbox.push(msg("abc"))
    assert outbox.push(msg("de"), policy="drop_oldest")
    assert (outbox.size, len(outbox)) == (5, 2)
    assert outbox.pop() is not None
    assert (outbox.size, len(outbox)) == (2, 1)


def test_fifo() -> None:
    outbox = Outbox(100)
    for payload in ("a", "b", "c"):
        outbox.push(msg(payload), policy="disconnect")
    assert contents(outbox) == ["a", "b", "c"]


def test_up_to_max_size_fits() -> None:
    outbox = Outbox(6)
    assert outbox.push(msg("aaa"), policy="disconnect")
    assert outbox.push(msg("bbb"), policy="disconnect")
    assert outbox.size == 6


# --- replies ----------------------------------------------------------------------------


def test_a_reply_makes_room_by_dropping_publications() -> None:
    outbox = Outbox(10)
    assert outbox.push(msg("pub111"), policy="drop_oldest")
    assert outbox.push(msg("reply1"))
    assert contents(outbox) == ["reply1"]
    assert outbox.dropped == 1


def test_replies_are_never_dropped() -> None:
    outbox = Outbox(10)
    assert outbox.push(msg("reply1"))
    # Replies alone overflow: the caller must disconnect, but nothing was dropped.
    assert not outbox.push(msg("reply2"))
    assert outbox.dropped == 0
    assert contents(outbox) == ["reply1", "reply2"]


def test_replies_are_kept_when_publications_overflow() -> None:
    outbox = Outbox(10)
    assert outbox.push(msg("r1"))
    assert outbox.push(msg("p1"), policy="drop_oldest")
    assert outbox.push(msg("r2"))
    assert outbox.push(msg("p2"), policy="drop_oldest")
    assert outbox.push(msg("p3"), policy="drop_oldest")
    assert outbox.push(msg("p4"), policy="drop_oldest")
    assert contents(outbox) == ["r1", "r2", "p2", "p3", "p4"]


# --- disconnect ---------------------------------------------------------------------------


def test_disconnect_policy_reports_overflow() -> None:
    outbox = Outbox(10)
    assert outbox.push(msg("pub111"), policy="disconnect")
    assert not outbox.push(msg("pub222"), policy="disconnect")
    assert outbox.dropped == 0


def test_disconnect_policy_publications_may_be_dropped_to_make_room_for_a_reply() -> None:
    outbox = Outbox(10)
    assert outbox.push(msg("pub111"), policy="disconnect")
    assert outbox.push(msg("reply1"))
    assert contents(outbox) == ["reply1"]


# --- drop_oldest --------------------------------------------------------------------------


def test_drop_oldest_drops_the_oldest_publications() -> None:
    outbox = Outbox(9)
    for payload in ("aaa", "bbb", "ccc"):
        assert outbox.push(msg(payload), policy="drop_oldest")
    assert outbox.push(msg("ddd"), policy="drop_oldest")
    assert outbox.dropped == 1
    assert outbox.push(msg("eeeeee"), policy="drop_oldest")
    assert (outbox.dropped, outbox.replaced) == (3, 0)
    assert outbox.size <= outbox.max_size
    assert contents(outbox) == ["ddd", "eeeeee"]


def test_drop_oldest_drops_a_publication_bigger_than_the_outbox() -> None:
    outbox = Outbox(4)
    assert outbox.push(msg("aa"), policy="drop_oldest")
    assert outbox.push(msg("toolarge"), policy="drop_oldest")
    assert outbox.dropped == 2
    assert contents(outbox) == []


# --- conflate -----------------------------------------------------------------------------


def test_conflate_keeps_the_latest_of_a_key_in_place_of_the_first() -> None:
    outbox = Outbox(100)
    assert outbox.push(msg("k1-a"), policy="conflate", key="k1")
    assert outbox.push(msg("k2-a"), policy="conflate", key="k2")
    assert outbox.push(msg("k1-bb"), policy="conflate", key="k1")
    assert outbox.push(msg("k1-c"), policy="conflate", key="k1")
    assert (outbox.dropped, outbox.replaced) == (2, 2)
    assert outbox.size == len("k1-c") + len("k2-a")
    assert len(outbox) == 2
    assert contents(outbox) == ["k1-c", "k2-a"]


def test_conflate_after_pop_queues_again() -> None:
    outbox = Outbox(100)
    outbox.push(msg("k1-a"), policy="conflate", key="k1")
    outbox.push(msg("k2-a"), policy="conflate", key="k2")
    assert outbox.pop() is not None
    outbox.push(msg("k1-b"), policy="conflate", key="k1")
    assert contents(outbox) == ["k2-a", "k1-b"]
    assert outbox.dropped == 0


def test_conflate_with_the_default_key() -> None:
    outbox = Outbox(100)
    outbox.push(msg("a"), policy="conflate")
    outbox.push(msg("b"), policy="conflate")
    assert contents(outbox) == ["b"]
    # Once delivered, the next publication is queued, not lost in the delivered entry.
    outbox.push(msg("c"), policy="conflate")
    assert (outbox.size, len(outbox)) == (1, 1)
    assert contents(outbox) == ["c"]


def test_conflate_overflow_drops_the_oldest() -> None:
    outbox = Outbox(8)
    assert outbox.push(msg("k1-a"), policy="conflate", key="k1")
    assert outbox.push(msg("k2-a"), policy="conflate", key="k2")
    assert outbox.push(msg("k3-a"), policy="conflate", key="k3")
    assert contents(outbox) == ["k2-a", "k3-a"]
    assert outbox.dropped == 1


def test_conflate_replacement_that_overflows() -> None:
    outbox = Outbox(8)
    assert outbox.push(msg("k1-a"), policy="conflate", key="k1")
    assert outbox.push(msg("k2-a"), policy="conflate", key="k2")
    # k2 grows in place and no longer fits: the oldest, k1, goes.
    assert outbox.push(msg("k2-bbb"), policy="conflate", key="k2")
    assert contents(outbox) == ["k2-bbb"]
    # The dropped key may come back.
    assert outbox.push(msg("k1-b"), policy="conflate", key="k1")
    assert contents(outbox) == ["k1-b"]


def test_conflate_replacement_behind_replies_that_overflow() -> None:
    outbox = Outbox(8)
    assert outbox.push(msg("k1-a"), policy="conflate", key="k1")
    assert outbox.push(msg("rrrr"))
    # k1 grows past the outbox: dropped, the reply stays.
    assert outbox.push(msg("k1-bbbbbbbbbb"), policy="conflate", key="k1")
    assert contents(outbox) == ["rrrr"]
    assert outbox.dropped == 2


# --- mixed --------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["disconnect", "drop_oldest", "conflate"])
def test_mixed_entries_keep_their_order(policy: SlowConsumerPolicy) -> None:
    outbox = Outbox(100)
    outbox.push(msg("r1"))
    outbox.push(msg("p1"), policy=policy, key="a")
    outbox.push(msg("r2"))
    outbox.push(msg("p2"), policy="drop_oldest")
    outbox.push(msg("p3"), policy=policy, key="b")
    assert contents(outbox) == ["r1", "p1", "r2", "p2", "p3"]


def test_mixed_overflow() -> None:
    outbox = Outbox(12)
    outbox.push(msg("r1"))
    outbox.push(msg("c1"), policy="conflate", key="k")
    outbox.push(msg("d1"), policy="drop_oldest")
    outbox.push(msg("r2"))
    outbox.push(msg("c2"), policy="conflate", key="k")  # replaces c1 in place
    outbox.push(msg("x1"), policy="disconnect")
    assert outbox.size == 10
    assert outbox.push(msg("d2d2"), policy="drop_oldest")  # 14 > 12: c2 (the oldest publication) goes
    assert outbox.size == 12
    assert contents(outbox) == ["r1", "d1", "r2", "x1", "d2d2"]
    assert outbox.dropped == 2


def test_clear() -> None:
    outbox = Outbox(100)
    outbox.push(msg("r1"))
    outbox.push(msg("c1"), policy="conflate", key="k")
    outbox.clear()
    assert (outbox.size, len(outbox)) == (0, 0)
    outbox.push(msg("c2"), policy="conflate", key="k")
    assert contents(outbox) == ["c2"]


def test_an_empty_outbox_holds_no_queue() -> None:
    outbox = Outbox(100)
    assert outbox._entries is None and outbox._keys is None
    assert outbox.pop() is None
    outbox.push(msg("c1"), policy="conflate", key="k")
    outbox.push(msg("r1"))
    assert outbox.pop() is not None
    assert outbox._entries is not None
    assert outbox.pop() is not None
    assert outbox._entries is None and outbox._keys is None
