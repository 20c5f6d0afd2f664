"""Refreshes by the server: ``on_refresh`` and ``on_sub_refresh`` extend what expires.

When a connection's or a subscription's ``expire_at`` comes and the hook is set, the node
asks it instead of waiting for the client to send a new token, as Centrifugo does with its
refresh and sub_refresh proxies. A hook that fails gives one more minute and is asked again
then, so that a backend's hiccup disconnects no one (Centrifugo's
``internal/proxy/refresh_handler.go``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..codes import DISCONNECT_EXPIRED, UNSUBSCRIBE_EXPIRED
from ..exceptions import DisconnectError
from . import subscribing
from .contexts import RefreshContext, RefreshResult, SubRefreshContext

if TYPE_CHECKING:
    from .session import Session
    from .subscription import Subscription

__all__ = ["RETRY_DELAY", "refresh_connection", "refresh_subscription"]

logger = logging.getLogger("wavecast.realtime")

#: Seconds a connection or subscription lives on when its refresh hook fails.
RETRY_DELAY = 60


def _expired(result: RefreshResult, now: float) -> bool:
    return result.expired or 0 < result.expire_at < now


async def refresh_connection(session: Session) -> None:
    """Ask ``on_refresh`` whether ``session`` lives on; disconnect it with 3005 if not."""
    hook = session.node.on_refresh
    assert hook is not None
    try:
        result = await hook(RefreshContext(session=session))
    except DisconnectError as exc:
        session.disconnect(exc.disconnect)
        return
    except Exception:
        logger.exception("refresh of client %s failed; asking again in %d s", session.client, RETRY_DELAY)
        session.set_expiry(int(time.time()) + RETRY_DELAY)
        return
    if session.closed:
        return
    if _expired(result, time.time()):
        session.disconnect(DISCONNECT_EXPIRED)
        return
    if result.info is not None:
        session.info = result.info
    session.set_expiry(result.expire_at)


async def refresh_subscription(session: Session, subscription: Subscription) -> None:
    """Ask ``on_sub_refresh`` whether ``subscription`` lives on; unsubscribe it with 2501 if not."""
    hook = session.node.on_sub_refresh
    assert hook is not None
    channel = subscription.channel
    try:
        result = await hook(SubRefreshContext(session=session, channel=channel))
    except DisconnectError as exc:
        session.disconnect(exc.disconnect)
        return
    except Exception:
        logger.exception(
            "sub refresh of client %s in %s failed; asking again in %d s", session.client, channel, RETRY_DELAY
        )
        subscription.expire_at = int(time.time()) + RETRY_DELAY
        return
    if session.closed or session.subscriptions.get(channel) is not subscription:
        return
    if _expired(result, time.time()):
        await subscribing.unsubscribe(session, channel, unsubscribe=UNSUBSCRIBE_EXPIRED)
        return
    if result.info is not None:
        subscription.info = result.info
    subscription.expire_at = result.expire_at
