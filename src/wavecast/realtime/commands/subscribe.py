"""The subscribe and unsubscribe commands, and server-side subscriptions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...codes import (
    ERROR_ALREADY_SUBSCRIBED,
    ERROR_LIMIT_EXCEEDED,
    ERROR_PERMISSION_DENIED,
    ERROR_UNRECOVERABLE_POSITION,
)
from ...engines.base import ClientInfo, StreamPosition
from ...exceptions import CommandError
from ..auth import token_ttl
from ..codec.schema import (
    Command,
    Reply,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeResult,
    raw,
)
from ..config import ChannelOptions
from ..contexts import SubscribeContext
from ..permissions import can_subscribe, channel_options, check_user_limited
from ..recovery import recover
from ..subscription import SUBSCRIBED, UNSUBSCRIBED, Subscription

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["subscribe", "subscribe_server_side", "unsubscribe"]

# Centrifuge's SubscribeRequest.flag bit that asks for an error instead of recovered: false.
_FLAG_REJECT_UNRECOVERED = 2


async def subscribe(session: Session, command: Command) -> Reply:
    request = command.subscribe
    assert request is not None
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
        token = node.tokens.subscribe_token(request.token, time.time(), user=session.user, channel=channel)
        info, expire_at = token.info, token.expire_at
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

    result = await _subscribe(
        session,
        channel,
        options,
        request,
        info=info,
        expire_at=expire_at,
        server_side=False,
        after_reply=session.after_reply,
    )
    if data:
        result.data = raw(session.outgoing_data(data))
    return Reply(id=command.id, subscribe=result)


async def subscribe_server_side(
    session: Session,
    channel: str,
    request: SubscribeRequest | None,
    *,
    after_reply: Callable[[Callable[[], None]], None] | None = None,
) -> SubscribeResult:
    """Subscribe a client to a channel it was granted at connect time.

    The subscription goes live right after the connect reply; or, with ``after_reply``,
    when the caller runs the callback it was given (after its subscribe push).
    """
    options = session.node.config.channel_options(channel)
    if options is None or channel in session.subscriptions:
        return SubscribeResult()
    return await _subscribe(
        session,
        channel,
        options,
        request or SubscribeRequest(channel=channel),
        info=None,
        expire_at=0,
        server_side=True,
        after_reply=after_reply or session.after_reply,
    )


async def _subscribe(
    session: Session,
    channel: str,
    options: ChannelOptions,
    request: SubscribeRequest,
    *,
    info: bytes | None,
    expire_at: int,
    server_side: bool,
    after_reply: Callable[[Callable[[], None]], None],
) -> SubscribeResult:
    """Register the subscription, read the stream position or recover, and publish the join.

    The subscription joins the hub before history is read, so publications that arrive
    meanwhile wait in ``pending`` and none falls between history and live delivery.
    """
    node = session.node
    subscription = Subscription(channel, options, server_side=server_side)
    subscription.info = info
    subscription.expire_at = expire_at
    subscription.recoverable = options.force_recovery or (options.allow_recovery and request.recoverable)
    subscription.positioned = (
        subscription.recoverable or options.force_positioning or (options.history and request.positioned)
    )
    subscription.join_leave = options.force_push_join_leave or (options.join_leave and request.join_leave)
    session.subscriptions[channel] = subscription
    try:
        await node.add_subscriber(channel, session, subscription)
        result = SubscribeResult(
            expires=bool(expire_at),
            ttl=token_ttl(expire_at, time.time()) if expire_at else 0,
            recoverable=subscription.recoverable,
            positioned=subscription.positioned,
        )
        if subscription.positioned:
            await _position(session, subscription, request, result)
        if options.presence:
            await node.add_presence(channel, session, subscription)
    except BaseException:
        session.subscriptions.pop(channel, None)
        await node.remove_subscriber(channel, session)
        raise
    if subscription.state is UNSUBSCRIBED:
        # Ended while it was set up (a server unsubscribe, a disconnect), and cleaned up as it
        # was then: take back the presence added since, and announce no join.
        if options.presence:
            await node.presence_manager.remove_presence(channel, session.client, session.user)
        return result
    if options.presence and (options.join_leave or options.force_push_join_leave):
        await node.broker.publish_join(channel, _client_info(session, subscription))

    def go_live() -> None:
        if subscription.state is not subscription.state.SUBSCRIBING:
            return
        subscription.move(SUBSCRIBED)
        pending, subscription.pending = subscription.pending or [], None
        for publication in pending:
            if subscription.positioned and publication.offset and publication.offset <= subscription.offset:
                continue  # already sent in the reply
            session.deliver_publication(channel, subscription, publication)

    after_reply(go_live)
    return result


async def _position(
    session: Session, subscription: Subscription, request: SubscribeRequest, result: SubscribeResult
) -> None:
    """Fill the reply with the stream position, and recover when the client asks."""
    node = session.node
    channel = subscription.channel
    if request.recover and subscription.recoverable:
        since = StreamPosition(request.offset, request.epoch)
        limit = node.config.history_max_limit
        # One more than allowed tells whether the client missed more than it may recover.
        history = await node.broker.history(channel, since=since, limit=None if limit is None else limit + 1)
        publications, recovered = recover(since, history.position, history.publications[:limit])
        if limit is not None and len(history.publications) > limit:
            recovered = False
        if not recovered and request.flag & _FLAG_REJECT_UNRECOVERED:
            raise CommandError(ERROR_UNRECOVERABLE_POSITION)
        result.was_recovering = True
        result.recovered = recovered
        if recovered:
            result.publications = session.publication_msgs(publications)
            if publications:
                subscription.offset = publications[-1].offset
    else:
        history = await node.broker.history(channel, limit=0)
    position = history.position
    result.epoch = position.epoch
    result.offset = position.offset
    subscription.offset = max(subscription.offset, position.offset)
    subscription.epoch = position.epoch


def _client_info(session: Session, subscription: Subscription) -> ClientInfo:
    return ClientInfo(client=session.client, user=session.user, conn_info=session.info, chan_info=subscription.info)


async def unsubscribe(session: Session, command: Command) -> Reply:
    request = command.unsubscribe
    assert request is not None
    await session.node.unsubscribe_session(session, request.channel, notify=False)
    return Reply(id=command.id, unsubscribe=UnsubscribeResult())
