"""The refresh and sub_refresh commands: new tokens before the old ones expire."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ...codes import DISCONNECT_INVALID_TOKEN, ERROR_NOT_AVAILABLE, ERROR_PERMISSION_DENIED
from ...exceptions import CommandError, DisconnectError
from ...version import version
from ..auth import token_ttl
from ..codec.schema import RefreshRequest, RefreshResult, Reply, SubRefreshRequest, SubRefreshResult

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["refresh", "sub_refresh"]


async def refresh(session: Session, command_id: int, request: RefreshRequest) -> Reply:
    node = session.node
    if not request.token or not node.tokens.enabled:
        raise CommandError(ERROR_NOT_AVAILABLE)
    now = time.time()
    token = await node.tokens.connect_token(request.token, now)
    if token.user != session.user:
        raise DisconnectError(DISCONNECT_INVALID_TOKEN)
    if token.info is not None:
        session.info = token.info
    session.set_expiry(token.expire_at)
    return Reply(
        id=command_id,
        refresh=RefreshResult(
            client=session.client,
            version=version,
            expires=bool(token.expire_at),
            ttl=token_ttl(token.expire_at, now) if token.expire_at else 0,
        ),
    )


async def sub_refresh(session: Session, command_id: int, request: SubRefreshRequest) -> Reply:
    subscription = session.subscriptions.get(request.channel)
    if subscription is None:
        raise CommandError(ERROR_PERMISSION_DENIED)
    now = time.time()
    token = await session.node.subscription_tokens.subscribe_token(
        request.token, now, user=session.user, channel=request.channel
    )
    subscription.expire_at = token.expire_at
    if token.info is not None:
        subscription.info = token.info
    return Reply(
        id=command_id,
        sub_refresh=SubRefreshResult(
            expires=bool(token.expire_at), ttl=token_ttl(token.expire_at, now) if token.expire_at else 0
        ),
    )
