"""A node's subscribers of each channel, and the broker subscriptions that follow them.

The hub says which local sessions subscribe to a channel; the broker must be subscribed to
every channel that has one, and to no other. Changes to one channel run under its lock, so
that a subscribe and an unsubscribe racing on it leave the broker as the hub ends.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..engines.base import Broker
from .hub import Hub

if TYPE_CHECKING:
    from .session import Session
    from .subscription import Subscription

__all__ = ["LocalSubscribers"]


class LocalSubscribers:
    """Adds and removes the subscribers of this node, keeping the broker in step."""

    def __init__(self, hub: Hub, broker: Broker) -> None:
        self.hub = hub
        self.broker = broker
        #: Channels subscribed in the broker.
        self.channels: set[str] = set()
        # A lock per channel whose broker subscription is changing.
        self._locks: dict[str, asyncio.Lock] = {}

    async def add(self, channel: str, session: Session, subscription: Subscription) -> None:
        """Add a subscriber; the broker is subscribed when it returns.

        Raises:
            EngineError: the broker couldn't subscribe; the subscriber stays in the hub,
                for the caller to remove.
        """
        self.hub.add_subscriber(channel, session, subscription)
        # A change in flight (its lock exists) may be the broker unsubscribing the channel its
        # last subscriber left: wait for it, and subscribe again.
        if channel not in self.channels or channel in self._locks:
            await self._sync(channel)

    async def remove(self, channel: str, session: Session) -> None:
        if self.hub.remove_subscriber(channel, session):
            await self._sync(channel)

    async def _sync(self, channel: str) -> None:
        """Make the broker subscription of ``channel`` match whether it has local subscribers."""
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        try:
            async with lock:
                wanted = self.hub.subscribers(channel) is not None
                if wanted and channel not in self.channels:
                    await self.broker.subscribe(channel)
                    self.channels.add(channel)
                elif not wanted and channel in self.channels:
                    await self.broker.unsubscribe(channel)
                    self.channels.discard(channel)
        finally:
            # Forgotten once nothing waits, even when the broker failed: add() takes a lock
            # that's left as a change in flight.
            if not lock.locked() and self._locks.get(channel) is lock:
                del self._locks[channel]
