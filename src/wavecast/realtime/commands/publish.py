"""The publish and send commands."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ...codes import (
    DISCONNECT_NOT_AVAILABLE,
    ERROR_BAD_REQUEST,
    ERROR_LIMIT_EXCEEDED,
    ERROR_PERMISSION_DENIED,
    ERROR_TOO_MANY_REQUESTS,
)
from ...engines.base import Publication
from ...exceptions import CommandError, DisconnectError, EngineLimitError
from ..codec.json import binary_or_json
from ..codec.schema import PublishRequest, PublishResult, Reply, SendRequest
from ..contexts import MessageContext, PublishContext
from ..permissions import can_publish, channel_options, check_user_limited

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["publish", "send"]


async def publish(session: Session, command_id: int, request: PublishRequest) -> Reply:
    channel = request.channel
    node, options = session.node, channel_options(session.node.config, channel)
    if not request.data:
        raise CommandError(ERROR_BAD_REQUEST)
    if not session.take_publication_token():
        raise CommandError(ERROR_TOO_MANY_REQUESTS)
    check_user_limited(options, channel, session.user)
    data = bytes(request.data)
    binary = False
    if session.codec.binary:
        # A JSON client's data is one line of checked JSON already; a protobuf client's is
        # anything, and only what is strictly JSON may reach JSON subscribers.
        data, binary = binary_or_json(data)
    tags = None
    subscription = session.subscriptions.get(channel)
    if node.on_publish is not None:
        result = await node.on_publish(PublishContext(session=session, channel=channel, data=data))
        if result is not None:
            if result.skip:
                return Reply(id=command_id, publish=PublishResult())
            if result.data is not None:
                data, binary = binary_or_json(result.data)
            tags = result.tags
    elif not can_publish(options, session.user, session.is_subscribed(channel)):
        raise CommandError(ERROR_PERMISSION_DENIED)
    info = session.client_info(subscription)
    publication = Publication(data=data, info=info, tags=tags, time=int(time.time() * 1000), binary=binary)
    try:
        await node.publish_publication(channel, publication, options)
    except EngineLimitError as exc:
        raise CommandError(ERROR_LIMIT_EXCEEDED) from exc
    return Reply(id=command_id, publish=PublishResult())


async def send(session: Session, command_id: int, request: SendRequest) -> None:
    if session.node.on_message is None:
        # A send has no reply to carry an error: without this, the client would never learn
        # that nothing reads its messages (centrifuge's handleSend does the same).
        raise DisconnectError(DISCONNECT_NOT_AVAILABLE)
    await session.node.on_message(MessageContext(session=session, data=bytes(request.data) if request.data else None))
