"""The connect command: authenticate, then subscribe to server-side channels."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from ...codes import (
    DISCONNECT_BAD_REQUEST,
    DISCONNECT_CONNECTION_LIMIT,
    DISCONNECT_INVALID_TOKEN,
    ERROR_TOO_MANY_REQUESTS,
    ERROR_UNAUTHORIZED,
)
from ...exceptions import CommandError, DisconnectError
from ...version import version
from .. import subscribing
from ..auth import token_ttl
from ..channels import personal_channel
from ..codec.schema import ConnectRequest, ConnectResult, Reply, SubscribeResult, raw
from ..contexts import ConnectingContext

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["connect"]


def _raw(raw: msgspec.Raw) -> bytes | None:
    return bytes(raw) if raw else None


async def connect(session: Session, command_id: int, request: ConnectRequest) -> Reply:
    if not session.connecting:
        raise DisconnectError(DISCONNECT_BAD_REQUEST)
    node = session.node
    if not node.admission.admit_connect(time.monotonic()):
        # Before the token's verification, the costliest step; 111 is temporary, so the SDKs
        # retry after their backoff with jitter.
        raise CommandError(ERROR_TOO_MANY_REQUESTS)
    config = node.config
    now = time.time()

    user: str | None = None
    info = None
    expire_at = 0
    channels: list[str] = []
    data = None
    if request.token:
        if not node.tokens.enabled:
            raise DisconnectError(DISCONNECT_INVALID_TOKEN)
        token = await node.tokens.connect_token(request.token, now)
        user, info, expire_at = token.user, token.info, token.expire_at
        channels.extend(token.channels)
        channels.extend(token.subs)
        session.meta = token.meta
    if node.on_connecting is not None:
        result = await node.on_connecting(
            ConnectingContext(
                client=session.client,
                transport=session.transport.name,
                request=session.request,
                token_user=user,
                data=_raw(request.data),
                name=request.name,
                version=request.version,
                protocol="protobuf" if session.codec.binary else "json",
            )
        )
        if result is not None:
            user, info, expire_at, data = result.user, result.info, result.expire_at, result.data
            channels.extend(result.channels)
            if result.meta is not None:
                session.meta = result.meta
    if user is None:
        if not config.allow_anonymous_connect_without_token:
            raise CommandError(ERROR_UNAUTHORIZED)
        user = ""
    connection_limit = config.user_connection_limit
    if user and connection_limit is not None and len(node.hub.user_sessions(user)) >= connection_limit:
        raise DisconnectError(DISCONNECT_CONNECTION_LIMIT)
    if not session.connecting:
        # The client went away while the hook ran.
        raise DisconnectError(DISCONNECT_BAD_REQUEST)

    session.user = user
    session.info = info
    session.connected()
    node.hub.add_session(session)
    session.set_expiry(expire_at)

    if config.user_subscribe_to_personal and user:
        channels.append(personal_channel(config.personal_channel_namespace, user))
    subs: dict[str, SubscribeResult] = {}
    recover = request.subs or {}
    for channel in dict.fromkeys(channels):
        subs[channel] = await subscribing.subscribe_server_side(session, channel, recover.get(channel))
        if session.closed:
            break

    return Reply(
        id=command_id,
        connect=ConnectResult(
            client=session.client,
            version=version,
            # With on_refresh, the server refreshes the connection: the client isn't asked to.
            expires=bool(expire_at) and node.on_refresh is None,
            ttl=token_ttl(expire_at, now) if expire_at and node.on_refresh is None else 0,
            data=raw(None if data is None else session.outgoing_data(data)),
            subs=subs or None,
            # The protocol counts whole seconds: a sub-second interval must not read as "no pings".
            ping=max(round(config.client_ping_interval), 1) if config.client_ping_interval else 0,
            pong=bool(config.client_ping_interval),
            # Emulated transports name the session and node that their POSTs go to, as
            # Centrifugo does; the node by its uid, which routes a POST between nodes.
            session=session.emulation,
            node=node.uid if session.emulation else config.name,
        ),
    )
