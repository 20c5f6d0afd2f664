"""Setting a subscription up and tearing it down: one way for the subscribe command, the
channels granted at connect time, and the server-side API.

A subscription joins the hub before history is read, so publications that arrive meanwhile
wait in ``pending`` and none falls between history and live delivery; it goes live (and
``pending`` is sent) right after the reply or push that announces it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..codes import (
    DISCONNECT_BAD_REQUEST,
    ERROR_BAD_REQUEST,
    ERROR_UNRECOVERABLE_POSITION,
    UNSUBSCRIBE_SERVER,
    Error,
    Unsubscribe,
)
from ..engines.base import Publication, StreamPosition
from ..exceptions import CommandError, DisconnectError
from .auth import token_ttl
from .codec.schema import Push, SubscribeMsg, SubscribeRequest, SubscribeResult, UnsubscribeMsg
from .config import DELTA_TYPES, ChannelOptions
from .delta import full_msg
from .recovery import recover, recover_cache
from .subscription import SUBSCRIBING, UNSUBSCRIBED, Subscription
from .tagsfilter import TagsFilter, compile_filter

if TYPE_CHECKING:
    from .session import Session

__all__ = ["cleanup", "subscribe", "subscribe_from_server", "subscribe_server_side", "unsubscribe"]

# Centrifuge's SubscribeRequest.flag bits: channel compaction, which the SDKs always offer,
# and an error instead of recovered: false.
_FLAG_CHANNEL_COMPACTION = 1
_FLAG_REJECT_UNRECOVERED = 2

AfterReply = Callable[[Callable[[], None]], None]


async def subscribe(
    session: Session,
    channel: str,
    options: ChannelOptions,
    request: SubscribeRequest,
    *,
    info: bytes | None = None,
    expire_at: int = 0,
    server_side: bool = False,
    after_reply: AfterReply | None = None,
) -> SubscribeResult:
    """Register the subscription, read the stream position or recover, and publish the join.

    The subscription goes live when the callback given to ``after_reply`` runs (by default,
    right after the current command's reply).
    """
    node = session.node
    # One string per channel however many subscribe to it, instead of 54 bytes or more per
    # subscription: the hub's key, the session's and the subscription's.
    channel = sys.intern(channel)
    subscription = Subscription(channel, options, server_side=server_side)
    subscription.info = info
    subscription.expire_at = expire_at
    subscription.recoverable = options.force_recovery or (options.allow_recovery and request.recoverable)
    subscription.positioned = (
        subscription.recoverable or options.force_positioning or (options.history and request.positioned)
    )
    subscription.join_leave = options.force_push_join_leave or (options.join_leave and request.join_leave)
    subscription.compact = _compacts(session, options, request)
    subscription.delta = _delta(options, request)
    subscription.tags_filter = _tags_filter(options, request)
    session.subscriptions[channel] = subscription
    try:
        await node.subscribers.add(channel, session, subscription)
        # With on_sub_refresh, the server refreshes the subscription: the client isn't asked to.
        client_refresh = bool(expire_at) and node.on_sub_refresh is None
        result = SubscribeResult(
            expires=client_refresh,
            ttl=token_ttl(expire_at, time.time()) if client_refresh else 0,
            recoverable=subscription.recoverable,
            positioned=subscription.positioned,
            delta=subscription.delta,
            id=subscription.channel_id,
        )
        if subscription.positioned:
            await _position(session, subscription, request, result)
        if options.presence:
            await node.presence_tracker.add(session, subscription)
    except BaseException:
        session.subscriptions.pop(channel, None)
        await node.subscribers.remove(channel, session)
        raise
    if subscription.state is UNSUBSCRIBED:
        # Ended while it was set up (a server unsubscribe, a disconnect), and cleaned up as it
        # was then: take back the presence added since, and announce no join.
        if options.presence:
            await node.presence_tracker.remove(session, channel)
        return result
    if options.presence and (options.join_leave or options.force_push_join_leave):
        await node.broker.publish_join(channel, session.client_info(subscription))

    def go_live() -> None:
        if subscription.state is not SUBSCRIBING:
            return
        subscription.complete()
        pending, subscription.pending = subscription.pending or [], None
        for publication in pending:
            if subscription.positioned and publication.offset and publication.offset <= subscription.offset:
                continue  # already sent in the reply
            session.deliver_publication(channel, subscription, publication)

    (after_reply or session.after_reply)(go_live)
    return result


def _compacts(session: Session, options: ChannelOptions, request: SubscribeRequest) -> bool:
    """Whether this subscriber gets its pushes by channel number: asked for, allowed, and over
    JSON. centrifuge-js's protobuf build asks too but can't use it: it decodes the int64 ``id``
    of a subscribe result and of a push into two distinct Long objects and matches them with
    ``===`` (5.7 and 5.8), so it would drop every numbered push, and the protocol doesn't say
    which SDK is on the other end. Without an ``id`` in the reply every SDK names channels."""
    return (
        options.allow_channel_compaction and bool(request.flag & _FLAG_CHANNEL_COMPACTION) and not session.codec.binary
    )


def _delta(options: ChannelOptions, request: SubscribeRequest) -> bool:
    """Whether the subscription gets deltas: asked for, and allowed in its namespace.

    Raises:
        DisconnectError: 3501, a delta type that doesn't exist (as Centrifuge answers it).
    """
    if not request.delta:
        return False
    if request.delta not in DELTA_TYPES:
        raise DisconnectError(DISCONNECT_BAD_REQUEST)
    return request.delta in options.allowed_delta_types


def _tags_filter(options: ChannelOptions, request: SubscribeRequest) -> TagsFilter | None:
    """The subscription's tags filter, compiled.

    Raises:
        CommandError: 107 "bad request", a filter in a namespace without
            ``allow_tags_filter``, or a malformed one (as Centrifuge answers both).
    """
    if request.tf is None:
        return None
    if not options.allow_tags_filter:
        raise CommandError(_bad_request("tags filter not allowed in this namespace"))
    try:
        return compile_filter(request.tf)
    except ValueError as exc:
        raise CommandError(_bad_request(f"invalid tags filter: {exc}")) from exc


def _bad_request(detail: str) -> Error:
    # Code 107 as Centrifuge answers; the message says what was wrong.
    return dataclasses.replace(ERROR_BAD_REQUEST, message=f"{ERROR_BAD_REQUEST.message}: {detail}")


async def _position(
    session: Session, subscription: Subscription, request: SubscribeRequest, result: SubscribeResult
) -> None:
    """Fill the reply with the stream position, and recover when the client asks: every
    publication it missed, or in cache mode the latest one (docs/protocol.md, Recovery)."""
    node = session.node
    channel = subscription.channel
    options = subscription.options
    since = StreamPosition(request.offset, request.epoch)
    cache = options.force_recovery_mode == "cache"
    if subscription.recoverable and cache and (request.recover or options.auto_cache_recover):
        history = await node.broker.history(channel, limit=1, reverse=True)
        latest = history.publications[0] if history.publications else None
        publications, recovered = recover_cache(since, history.position, latest)
        _recovered(session, subscription, result, publications, recovered)
    elif subscription.recoverable and not cache and request.recover:
        limit = node.config.history_max_limit
        # One more than allowed tells whether the client missed more than it may recover.
        history = await node.broker.history(channel, since=since, limit=None if limit is None else limit + 1)
        publications, recovered = recover(since, history.position, history.publications[:limit])
        if limit is not None and len(history.publications) > limit:
            recovered = False
        if not recovered and request.flag & _FLAG_REJECT_UNRECOVERED:
            raise CommandError(ERROR_UNRECOVERABLE_POSITION)
        _recovered(session, subscription, result, publications, recovered)
    else:
        history = await node.broker.history(channel, limit=0)
    position = history.position
    result.epoch = position.epoch
    result.offset = position.offset
    subscription.offset = max(subscription.offset, position.offset)
    subscription.epoch = position.epoch


def _recovered(
    session: Session,
    subscription: Subscription,
    result: SubscribeResult,
    publications: list[Publication],
    recovered: bool,
) -> None:
    """Put a recovery's outcome in the reply: its publications only when nothing is missing,
    those that pass the subscription's tags filter, in full for a delta subscription."""
    result.was_recovering = True
    result.recovered = recovered
    if recovered:
        if publications:
            subscription.offset = publications[-1].offset
        tags_filter = subscription.tags_filter
        if tags_filter is not None:
            publications = [publication for publication in publications if tags_filter.match(publication.tags)]
        result.publications = session.publication_msgs(publications)
        if subscription.delta and publications:
            # Recovered publications go full; the last one is the next delta's base.
            text = not session.codec.binary
            result.publications = [full_msg(message, text) for message in result.publications]
            subscription.base = publications[-1].data


async def subscribe_server_side(
    session: Session, channel: str, request: SubscribeRequest | None, *, after_reply: AfterReply | None = None
) -> SubscribeResult:
    """Subscribe a client to a channel it was granted at connect time (or by the server API).

    A channel of an unknown namespace, or one it already has, gives an empty result.
    """
    options = session.node.config.channel_options(channel)
    if options is None or channel in session.subscriptions:
        return SubscribeResult()
    request = request or SubscribeRequest(channel=channel)
    return await subscribe(session, channel, options, request, server_side=True, after_reply=after_reply)


async def subscribe_from_server(session: Session, channel: str) -> None:
    """Subscribe a connected client from the server side; it learns it from a subscribe push."""
    # Its own callback only: the session may be in the middle of a command (a connect with
    # server-side channels) whose subscriptions go live after that reply.
    go_live: list[Callable[[], None]] = []
    result = await subscribe_server_side(session, channel, None, after_reply=go_live.append)
    session.push(
        Push(
            channel=channel,
            subscribe=SubscribeMsg(
                recoverable=result.recoverable, epoch=result.epoch, offset=result.offset, positioned=result.positioned
            ),
        )
    )
    for callback in go_live:
        callback()


async def unsubscribe(
    session: Session, channel: str, *, notify: bool = True, unsubscribe: Unsubscribe = UNSUBSCRIBE_SERVER
) -> bool:
    """End one subscription of a session; with ``notify``, tell the client with a push."""
    subscription = session.subscriptions.pop(channel, None)
    if subscription is None:
        return False
    subscription.end()
    if notify:
        session.push(
            Push(channel=channel, unsubscribe=UnsubscribeMsg(code=unsubscribe.code, reason=unsubscribe.reason))
        )
    await cleanup(session, subscription)
    return True


async def cleanup(session: Session, subscription: Subscription) -> None:
    """Undo what a subscription set up: its place in the hub, its presence, and announce its leave."""
    node = session.node
    channel = subscription.channel
    await node.subscribers.remove(channel, session)
    options = subscription.options
    if options.presence:
        await node.presence_tracker.remove(session, channel)
        if options.join_leave or options.force_push_join_leave:
            await node.broker.publish_leave(channel, session.client_info(subscription))
