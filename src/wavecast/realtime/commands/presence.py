"""The presence and presence_stats commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...codes import ERROR_NOT_AVAILABLE, ERROR_PERMISSION_DENIED
from ...exceptions import CommandError
from ..codec.schema import Command, PresenceResult, PresenceStatsResult, Reply, client_info_msg
from ..config import ChannelOptions
from ..permissions import can_read, channel_options

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["presence", "presence_stats"]


def _check(session: Session, channel: str) -> ChannelOptions:
    options = channel_options(session.node.config, channel)
    if not options.presence:
        raise CommandError(ERROR_NOT_AVAILABLE)
    if not can_read(
        options.allow_presence_for_subscriber,
        options.allow_presence_for_client,
        options.allow_presence_for_anonymous,
        session.user,
        session.is_subscribed(channel),
    ):
        raise CommandError(ERROR_PERMISSION_DENIED)
    return options


async def presence(session: Session, command: Command) -> Reply:
    request = command.presence
    assert request is not None
    _check(session, request.channel)
    clients = await session.node.presence_manager.presence(request.channel)
    return Reply(
        id=command.id,
        presence=PresenceResult(presence={client: client_info_msg(info) for client, info in clients.items()}),
    )


async def presence_stats(session: Session, command: Command) -> Reply:
    request = command.presence_stats
    assert request is not None
    _check(session, request.channel)
    stats = await session.node.presence_manager.presence_stats(request.channel)
    return Reply(
        id=command.id, presence_stats=PresenceStatsResult(num_clients=stats.num_clients, num_users=stats.num_users)
    )
