"""The local index of one node: sessions by client and user, subscribers by channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session
    from .subscription import Subscription
    from .tagsfilter import TagsFilter

__all__ = ["ChannelShape", "Hub"]


class ChannelShape:
    """A channel's subscribers split by what each needs, once one of them filters by tags or
    takes deltas: fan-out then sends ``plain`` what everyone gets, each group of ``filtered``
    what its filter passes (evaluated once for the group), and ``delta`` deltas.

    Attributes:
        plain: subscribers with neither a tags filter nor deltas.
        filtered: subscribers with a tags filter and no deltas, by filter.
        delta: subscribers that take deltas, with or without a filter.
    """

    __slots__ = ("delta", "filtered", "plain")

    def __init__(self, plain: dict[Session, Subscription]) -> None:
        self.plain = plain
        self.filtered: dict[TagsFilter, dict[Session, Subscription]] = {}
        self.delta: dict[Session, Subscription] = {}

    def add(self, session: Session, subscription: Subscription) -> None:
        if subscription.delta:
            self.delta[session] = subscription
        elif subscription.tags_filter is not None:
            self.filtered.setdefault(subscription.tags_filter, {})[session] = subscription
        else:
            self.plain[session] = subscription

    def remove(self, session: Session, subscription: Subscription) -> None:
        self.plain.pop(session, None)
        self.delta.pop(session, None)
        tags_filter = subscription.tags_filter
        if tags_filter is not None:
            group = self.filtered.get(tags_filter)
            if group is not None:
                group.pop(session, None)
                if not group:
                    del self.filtered[tags_filter]

    @property
    def shaped(self) -> bool:
        """Whether any subscriber still filters or takes deltas."""
        return bool(self.delta or self.filtered)


class Hub:
    """Which sessions this node holds and which of them subscribe to each channel.

    It runs on one event loop, so it needs no lock; fan-out iterates over
    ``subscribers(channel)`` directly.

    Attributes:
        binary_subscribers: how many subscribers of each channel speak a binary codec
            (protobuf); channels whose subscribers all speak JSON aren't in it, and their
            fan-out encodes each publication in one form only.
        compact_subscribers: how many subscribers of each channel negotiated channel
            compaction; absent when none did.
        channel_ids: the number of each channel with subscribers here, which names it in
            the pushes of compacting subscribers; unique on this node while the channel has
            subscribers, so unique within any one connection (centrifuge's hub does the same).
        shapes: the channels where a subscriber filters by tags or takes deltas, with their
            subscribers split by what they need; other channels aren't in it.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._users: dict[str, set[Session]] = {}
        self._channels: dict[str, dict[Session, Subscription]] = {}
        self.binary_subscribers: dict[str, int] = {}
        self.compact_subscribers: dict[str, int] = {}
        self.channel_ids: dict[str, int] = {}
        self._last_channel_id = 0
        self.shapes: dict[str, ChannelShape] = {}

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
        """Add a subscriber; return whether it is the channel's first on this node.

        A subscription with ``compact`` gets the channel's id in ``channel_id``.
        """
        subscribers = self._channels.get(channel)
        first = subscribers is None
        if subscribers is None:
            subscribers = self._channels[channel] = {}
            self._last_channel_id += 1
            self.channel_ids[channel] = self._last_channel_id
        previous = subscribers.get(session)
        if previous is None and session.codec.binary:
            _count(self.binary_subscribers, channel, 1)
        if previous is not None and previous.compact:
            _count(self.compact_subscribers, channel, -1)
        if subscription.compact:
            subscription.channel_id = self.channel_ids[channel]
            _count(self.compact_subscribers, channel, 1)
        subscribers[session] = subscription
        shape = self.shapes.get(channel)
        if shape is not None and previous is not None:
            shape.remove(session, previous)
        if shape is None and (subscription.delta or subscription.tags_filter is not None):
            shape = self.shapes[channel] = ChannelShape({s: sub for s, sub in subscribers.items() if s is not session})
        if shape is not None:
            shape.add(session, subscription)
        return first

    def remove_subscriber(self, channel: str, session: Session) -> bool:
        """Remove a subscriber; return whether the channel has none left on this node."""
        subscribers = self._channels.get(channel)
        if subscribers is None:
            return False
        removed = subscribers.pop(session, None)
        if removed is not None:
            if session.codec.binary:
                _count(self.binary_subscribers, channel, -1)
            if removed.compact:
                _count(self.compact_subscribers, channel, -1)
            shape = self.shapes.get(channel)
            if shape is not None:
                shape.remove(session, removed)
                if not shape.shaped:
                    del self.shapes[channel]
        if subscribers:
            return False
        del self._channels[channel]
        del self.channel_ids[channel]
        return True

    def subscribers(self, channel: str) -> dict[Session, Subscription] | None:
        return self._channels.get(channel)

    def channels(self) -> dict[str, int]:
        """Return every channel with subscribers here, and how many."""
        return {channel: len(subscribers) for channel, subscribers in self._channels.items()}

    @property
    def num_subscriptions(self) -> int:
        return sum(len(subscribers) for subscribers in self._channels.values())


def _count(counts: dict[str, int], channel: str, delta: int) -> None:
    """Add ``delta`` to a channel's count, which is absent rather than 0."""
    left = counts.get(channel, 0) + delta
    if left:
        counts[channel] = left
    else:
        del counts[channel]
