"""The history command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...codes import ERROR_UNRECOVERABLE_POSITION
from ...engines.base import StreamPosition
from ...exceptions import CommandError
from ..codec.schema import HistoryRequest, HistoryResult, Reply
from ..permissions import channel_options, check_read

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["history"]


async def history(session: Session, command_id: int, request: HistoryRequest) -> Reply:
    """Return publications of a channel: ``limit`` 0 gives only the position, a negative
    ``limit`` as many as allowed; ``since`` continues from a position of the same epoch."""
    node = session.node
    options = channel_options(node.config, request.channel)
    check_read(options, "history", session.user, session.is_subscribed(request.channel))
    limit = node.config.history_limit(request.limit)
    since = None if request.since is None else StreamPosition(request.since.offset, request.since.epoch)
    result = await node.broker.history(request.channel, since=since, limit=limit, reverse=request.reverse)
    if since is not None and since.epoch != result.position.epoch:
        raise CommandError(ERROR_UNRECOVERABLE_POSITION)
    return Reply(
        id=command_id,
        history=HistoryResult(
            publications=session.publication_msgs(result.publications) or None,
            epoch=result.position.epoch,
            offset=result.position.offset,
        ),
    )
