"""The presence and presence_stats commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..codec.schema import (
    PresenceRequest,
    PresenceResult,
    PresenceStatsRequest,
    PresenceStatsResult,
    Reply,
    client_info_msg,
)
from ..permissions import channel_options, check_read

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["presence", "presence_stats"]


def _check(session: Session, channel: str) -> None:
    options = channel_options(session.node.config, channel)
    check_read(options, "presence", session.user, session.is_subscribed(channel))


async def presence(session: Session, command_id: int, request: PresenceRequest) -> Reply:
    _check(session, request.channel)
    clients = await session.node.presence_manager.presence(request.channel)
    return Reply(
        id=command_id,
        presence=PresenceResult(presence={client: client_info_msg(info) for client, info in clients.items()}),
    )


async def presence_stats(session: Session, command_id: int, request: PresenceStatsRequest) -> Reply:
    _check(session, request.channel)
    stats = await session.node.presence_manager.presence_stats(request.channel)
    return Reply(
        id=command_id, presence_stats=PresenceStatsResult(num_clients=stats.num_clients, num_users=stats.num_users)
    )
