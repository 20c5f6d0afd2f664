"""The subscribe and unsubscribe commands: who may subscribe; the set-up is :mod:`..subscribing`'s."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ...codes import ERROR_ALREADY_SUBSCRIBED, ERROR_LIMIT_EXCEEDED, ERROR_PERMISSION_DENIED
from ...exceptions import CommandError
from .. import subscribing
from ..codec.schema import Reply, SubscribeRequest, UnsubscribeRequest, UnsubscribeResult, raw
from ..contexts import SubscribeContext
from ..permissions import can_subscribe, channel_options, check_user_limited

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["subscribe", "unsubscribe"]


async def subscribe(session: Session, command_id: int, request: SubscribeRequest) -> Reply:
    node = session.node
    channel = request.channel
    options = channel_options(node.config, channel)
    if channel in session.subscriptions:
        raise CommandError(ERROR_ALREADY_SUBSCRIBED)
    channel_limit = node.config.client_channel_limit
    if channel_limit is not None and len(session.subscriptions) >= channel_limit:
        raise CommandError(ERROR_LIMIT_EXCEEDED)

    info = None
    expire_at = 0
    data = None
    if request.token:
        token = await node.subscription_tokens.subscribe_token(
            request.token, time.time(), user=session.user, channel=channel
        )
        info, expire_at = token.info, token.expire_at
        if session.closed or channel in session.subscriptions:
            # The token's key may have been fetched meanwhile, while the client went away.
            raise CommandError(ERROR_ALREADY_SUBSCRIBED)
    else:
        check_user_limited(options, channel, session.user)
        if node.on_subscribe is not None:
            granted = await node.on_subscribe(
                SubscribeContext(session=session, channel=channel, data=bytes(request.data) if request.data else None)
            )
            if granted is not None:
                info, expire_at, data = granted.info, granted.expire_at, granted.data
        elif not can_subscribe(options, session.user):
            raise CommandError(ERROR_PERMISSION_DENIED)
        if session.closed or channel in session.subscriptions:
            raise CommandError(ERROR_ALREADY_SUBSCRIBED)

    result = await subscribing.subscribe(session, channel, options, request, info=info, expire_at=expire_at)
    if data:
        result.data = raw(session.outgoing_data(data))
    return Reply(id=command_id, subscribe=result)


async def unsubscribe(session: Session, command_id: int, request: UnsubscribeRequest) -> Reply:
    await subscribing.unsubscribe(session, request.channel, notify=False)
    return Reply(id=command_id, unsubscribe=UnsubscribeResult())
