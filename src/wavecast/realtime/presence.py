"""Presence of a node's subscribers: added, removed, and refreshed before it expires."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..engines.base import PresenceManager
from ..periodic import Periodic
from .config import NodeConfig
from .hub import Hub
from .subscription import SUBSCRIBED

if TYPE_CHECKING:
    from .session import Session
    from .subscription import Subscription

__all__ = ["PresenceTracker"]

logger = logging.getLogger("wavecast.realtime")


class PresenceTracker:
    """Keeps the presence of this node's subscribers in the presence manager.

    Entries expire ``presence_ttl`` seconds after they were last refreshed, so that those
    of a node that died go; this node refreshes its own every ``presence_update_interval``.
    """

    def __init__(self, manager: PresenceManager, hub: Hub, config: NodeConfig) -> None:
        self.manager = manager
        self.hub = hub
        self.config = config
        self._refresher = Periodic("wavecast-presence-refresh", config.presence_update_interval, self.refresh)

    async def add(self, session: Session, subscription: Subscription) -> None:
        info = session.client_info(subscription)
        await self.manager.add_presence(subscription.channel, session.client, info, ttl=self.config.presence_ttl)

    async def remove(self, session: Session, channel: str) -> None:
        await self.manager.remove_presence(channel, session.client, session.user)

    def start(self) -> None:
        self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()

    async def refresh(self) -> None:
        """Refresh the presence of every subscriber here; end subscriptions whose token expired."""
        for session in self.hub.sessions():
            # Subscription tokens that weren't refreshed in time end here, as in Centrifugo's
            # periodic presence update.
            session.check_subscription_expiry()
            if session.closed:
                continue
            for subscription in list(session.subscriptions.values()):
                if subscription.options.presence and subscription.state is SUBSCRIBED:
                    try:
                        await self.add(session, subscription)
                    except Exception as exc:
                        logger.warning("presence refresh failed: %s", exc)
