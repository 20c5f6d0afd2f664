"""The local index of one node: sessions by client and user, subscribers by channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session
    from .subscription import Subscription

__all__ = ["Hub"]


class Hub:
    """Which sessions this node holds and which of them subscribe to each channel.

    It runs on one event loop, so it needs no lock; fan-out iterates over
    ``subscribers(channel)`` directly.

    Attributes:
        binary_subscribers: how many subscribers of each channel speak a binary codec
            (protobuf); channels whose subscribers all speak JSON aren't in it, and their
            fan-out encodes each publication in one form only.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._users: dict[str, set[Session]] = {}
        self._channels: dict[str, dict[Session, Subscription]] = {}
        self.binary_subscribers: dict[str, int] = {}

    # sessions

    def add_session(self, session: Session) -> None:
        self._sessions[session.client] = session
        self._users.setdefault(session.user, set()).add(session)

    def remove_session(self, session: Session) -> None:
        if self._sessions.get(session.client) is session:
            del self._sessions[session.client]
        sessions = self._users.get(session.user)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._users[session.user]

    def session(self, client: str) -> Session | None:
        return self._sessions.get(client)

    def user_sessions(self, user: str) -> list[Session]:
        return list(self._users.get(user, ()))

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    @property
    def num_sessions(self) -> int:
        return len(self._sessions)

    @property
    def num_users(self) -> int:
        return len(self._users)

    # channels

    def add_subscriber(self, channel: str, session: Session, subscription: Subscription) -> bool:
        """Add a subscriber; return whether it is the channel's first on this node."""
        subscribers = self._channels.get(channel)
        first = subscribers is None
        if subscribers is None:
            subscribers = self._channels[channel] = {}
        if session.codec.binary and session not in subscribers:
            self.binary_subscribers[channel] = self.binary_subscribers.get(channel, 0) + 1
        subscribers[session] = subscription
        return first

    def remove_subscriber(self, channel: str, session: Session) -> bool:
        """Remove a subscriber; return whether the channel has none left on this node."""
        subscribers = self._channels.get(channel)
        if subscribers is None:
            return False
        if subscribers.pop(session, None) is not None and session.codec.binary:
            left = self.binary_subscribers[channel] - 1
            if left:
                self.binary_subscribers[channel] = left
            else:
                del self.binary_subscribers[channel]
        if subscribers:
            return False
        del self._channels[channel]
        return True

    def subscribers(self, channel: str) -> dict[Session, Subscription] | None:
        return self._channels.get(channel)

    def channels(self) -> dict[str, int]:
        """Return every channel with subscribers here, and how many."""
        return {channel: len(subscribers) for channel, subscribers in self._channels.items()}

    @property
    def num_subscriptions(self) -> int:
        return sum(len(subscribers) for subscribers in self._channels.values())
