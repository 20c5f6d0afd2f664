"""Recovery after a reconnect: which publications a client missed (pure functions).

A client that comes back with the last offset and epoch it saw in a channel gets exactly the
publications it missed, in order, and ``recovered: true``; or ``recovered: false`` with the
current position when they are gone (trimmed, expired) or the stream started a new epoch.

In cache mode (``force_recovery_mode = "cache"``) a client wants the state, not the stream:
it gets the latest publication whatever its position, unless it already has it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engines.base import Publication, StreamPosition

__all__ = ["merge_live", "recover", "recover_cache"]


def recover(
    since: StreamPosition, position: StreamPosition, publications: Sequence[Publication]
) -> tuple[list[Publication], bool]:
    """Decide a recovery from a stream's history.

    Args:
        since: the last position the client saw.
        position: the stream's current position.
        publications: the stream's publications after ``since.offset``, oldest first, as
            :meth:`Broker.history` returned them (possibly fewer than missed, if trimmed).

    Returns:
        The publications to send and whether they are all the client missed.
    """
    if since.epoch != position.epoch:
        return [], False
    if since.offset == position.offset:
        return [], True
    if since.offset > position.offset:
        # The client claims a future the stream never had: it can't trust its state.
        return [], False
    expected = since.offset + 1
    if not publications or publications[0].offset != expected:
        # The oldest missed publication was trimmed or expired.
        return list(publications), False
    return list(publications), len(publications) == position.offset - since.offset


def recover_cache(
    since: StreamPosition, position: StreamPosition, latest: Publication | None
) -> tuple[list[Publication], bool]:
    """Decide a recovery in cache mode, as Centrifugo's ``isCacheRecovered`` does.

    Args:
        since: the last position the client saw; offset 0 for a client that has seen nothing.
        position: the stream's current position.
        latest: the stream's newest publication, if history still holds one.

    Returns:
        The latest publication, unless the client is at it already, and whether the client
        now has the channel's current state.
    """
    up_to_date = since.offset > 0 and since == position
    if latest is None:
        return [], up_to_date
    current = latest.offset == position.offset
    if current and not up_to_date:
        return [latest], True
    return [], current


def merge_live(recovered: Sequence[Publication], live: Sequence[Publication]) -> list[Publication]:
    """Append publications that arrived while history was read, without duplicates.

    Live publications at or below the last recovered offset came through history already.
    """
    last = recovered[-1].offset if recovered else 0
    return [*recovered, *(p for p in live if p.offset > last)]
