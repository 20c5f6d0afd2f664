"""One client's subscription to one channel, and its states as a table."""

from __future__ import annotations

import enum

from .. import transitions
from ..engines.base import Publication
from ..exceptions import StateError
from .config import ChannelOptions
from .tagsfilter import TagsFilter

__all__ = ["SUBSCRIPTION_TRANSITIONS", "Subscription", "SubscriptionAction", "SubscriptionState"]


class SubscriptionState(enum.Enum):
    """As centrifuge-js names them: a subscription is subscribing until its reply is sent."""

    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


SUBSCRIBING, SUBSCRIBED, UNSUBSCRIBED = SubscriptionState


class SubscriptionAction(enum.Enum):
    """What can happen to a subscription; the value completes "can't ... when state is X"."""

    COMPLETE = "complete the subscription"
    UNSUBSCRIBE = "unsubscribe"


SUBSCRIPTION_TRANSITIONS: dict[SubscriptionState, dict[SubscriptionAction, SubscriptionState]] = {
    SUBSCRIBING: {SubscriptionAction.COMPLETE: SUBSCRIBED, SubscriptionAction.UNSUBSCRIBE: UNSUBSCRIBED},
    SUBSCRIBED: {SubscriptionAction.UNSUBSCRIBE: UNSUBSCRIBED},
    UNSUBSCRIBED: {},
}


class Subscription:
    """A client's subscription.

    Publications that arrive while it is subscribing wait in ``pending`` so that none
    reaches the client before the subscribe reply, and none is lost between reading
    history and going live.
    """

    __slots__ = (
        "base",
        "channel",
        "channel_id",
        "compact",
        "delta",
        "epoch",
        "expire_at",
        "info",
        "join_leave",
        "offset",
        "options",
        "pending",
        "positioned",
        "recoverable",
        "server_side",
        "state",
        "tags_filter",
    )

    def __init__(self, channel: str, options: ChannelOptions, *, server_side: bool = False) -> None:
        self.channel = channel
        self.options = options
        self.server_side = server_side
        self.state = SUBSCRIBING
        self.pending: list[Publication] | None = []
        self.info: bytes | None = None
        self.expire_at = 0
        self.join_leave = False
        self.positioned = False
        self.recoverable = False
        #: The offset of the last publication sent, for positioned subscriptions.
        self.offset = 0
        #: The epoch of the stream that ``offset`` belongs to, for positioned subscriptions.
        self.epoch = ""
        #: Whether the client negotiated channel compaction; the hub then sets ``channel_id``,
        #: the number that names the channel in its pushes (0: the name does).
        self.compact = False
        self.channel_id = 0
        #: Publications reach it as fossil deltas (see :mod:`.delta`).
        self.delta = False
        #: With ``delta``: the data of the last publication sent, the next delta's base.
        self.base: bytes | None = None
        #: Only the publications whose tags match this filter reach it.
        self.tags_filter: TagsFilter | None = None

    def _apply(self, action: SubscriptionAction) -> None:
        self.state = transitions.next_state(SUBSCRIPTION_TRANSITIONS, self.state, action, StateError)

    def complete(self) -> None:
        """Go live: the subscribe reply (or push) was written."""
        self._apply(SubscriptionAction.COMPLETE)

    def end(self) -> None:
        """Unsubscribe."""
        self._apply(SubscriptionAction.UNSUBSCRIBE)
