"""recovery: recover() decides from history alone, recover_cache() from the latest publication;
merge_live() joins history and live publications."""

from __future__ import annotations

import pytest

from wavecast.engines import Publication, StreamPosition
from wavecast.realtime.recovery import merge_live, recover, recover_cache

EPOCH = "abcd"


def pubs(*offsets: int) -> list[Publication]:
    return [Publication(data=b"%d" % offset, offset=offset) for offset in offsets]


@pytest.mark.parametrize(
    ("since", "position", "publications", "expected", "recovered"),
    [
        # Caught up exactly: nothing to send, nothing missed.
        (2, 2, [], [], True),
        (0, 0, [], [], True),
        # Missed publications, all still in history.
        (2, 5, [3, 4, 5], [3, 4, 5], True),
        (0, 3, [1, 2, 3], [1, 2, 3], True),
        (4, 5, [5], [5], True),
        # The oldest missed ones were trimmed or expired: a gap.
        (2, 5, [4, 5], [4, 5], False),
        (2, 5, [5], [5], False),
        (2, 5, [], [], False),
        # History stopped short of the position (a limit).
        (2, 5, [3, 4], [3, 4], False),
        # The client claims a future the stream never had.
        (6, 5, [], [], False),
        (6, 0, [], [], False),
    ],
)
def test_recover(since: int, position: int, publications: list[int], expected: list[int], recovered: bool) -> None:
    result, ok = recover(StreamPosition(since, EPOCH), StreamPosition(position, EPOCH), pubs(*publications))
    assert [p.offset for p in result] == expected
    assert ok is recovered


@pytest.mark.parametrize(("since", "position"), [(2, 5), (5, 5), (0, 0), (6, 5)])
def test_recover_across_an_epoch_change(since: int, position: int) -> None:
    assert recover(StreamPosition(since, "old"), StreamPosition(position, EPOCH), pubs(3, 4, 5)) == ([], False)


def test_recover_without_an_epoch() -> None:
    assert recover(StreamPosition(0, ""), StreamPosition(2, EPOCH), pubs(1, 2)) == ([], False)


def test_recover_returns_a_new_list() -> None:
    publications = pubs(3, 4)
    result, ok = recover(StreamPosition(2, EPOCH), StreamPosition(4, EPOCH), publications)
    assert ok
    assert result == publications
    assert result is not publications


@pytest.mark.parametrize(
    ("recovered", "live", "expected"),
    [
        ([], [], []),
        ([], [4, 5], [4, 5]),
        ([3, 4, 5], [], [3, 4, 5]),
        # Live publications that history returned too are sent once.
        ([3, 4, 5], [4, 5, 6, 7], [3, 4, 5, 6, 7]),
        ([3, 4, 5], [3, 4, 5], [3, 4, 5]),
        ([3, 4, 5], [6], [3, 4, 5, 6]),
        ([3, 4, 5], [1, 2], [3, 4, 5]),
    ],
)
def test_merge_live(recovered: list[int], live: list[int], expected: list[int]) -> None:
    assert [p.offset for p in merge_live(pubs(*recovered), pubs(*live))] == expected


@pytest.mark.parametrize(
    ("since", "epoch", "position", "latest", "expected", "recovered"),
    [
        # A client that has seen nothing, or is behind, or in another epoch: the latest.
        (0, "", 5, 5, [5], True),
        (2, EPOCH, 5, 5, [5], True),
        (2, "other", 5, 5, [5], True),
        # Already at the latest: nothing twice.
        (5, EPOCH, 5, 5, [], True),
        # History lost the latest (expired): nothing to give, and the state is unknown...
        (2, EPOCH, 5, None, [], False),
        # ...unless the client is at the position already.
        (5, EPOCH, 5, None, [], True),
        # History's newest isn't the stream's position: the state is gone.
        (2, EPOCH, 5, 4, [], False),
        # A channel never published to.
        (0, "", 0, None, [], False),
    ],
)
def test_recover_cache(
    since: int, epoch: str, position: int, latest: int | None, expected: list[int], recovered: bool
) -> None:
    newest = pubs(latest)[0] if latest is not None else None
    publications, ok = recover_cache(StreamPosition(since, epoch), StreamPosition(position, EPOCH), newest)
    assert ([p.offset for p in publications], ok) == (expected, recovered)
