"""One client's subscription to one channel, and its states as a table."""

from __future__ import annotations

import enum

from ..engines.base import Publication
from ..exceptions import LocalProtocolError
from .config import ChannelOptions

__all__ = ["SUBSCRIPTION_TRANSITIONS", "Subscription", "SubscriptionState"]


class SubscriptionState(enum.Enum):
    """As centrifuge-js names them: a subscription is subscribing until its reply is sent."""

    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


SUBSCRIBING = SubscriptionState.SUBSCRIBING
SUBSCRIBED = SubscriptionState.SUBSCRIBED
UNSUBSCRIBED = SubscriptionState.UNSUBSCRIBED

SUBSCRIPTION_TRANSITIONS: dict[SubscriptionState, dict[SubscriptionState, str]] = {
    SUBSCRIBING: {SUBSCRIBED: "complete the subscription", UNSUBSCRIBED: "unsubscribe"},
    SUBSCRIBED: {UNSUBSCRIBED: "unsubscribe"},
    UNSUBSCRIBED: {},
}


class Subscription:
    """A client's subscription.

    Publications that arrive while it is subscribing wait in ``pending`` so that none
    reaches the client before the subscribe reply, and none is lost between reading
    history and going live.
    """

    __slots__ = (
        "channel",
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

    def move(self, state: SubscriptionState) -> None:
        """Change state, or raise if the table doesn't allow it."""
        if state not in SUBSCRIPTION_TRANSITIONS[self.state]:
            raise LocalProtocolError(f"can't move a subscription to {state.value} when it is {self.state.value}")
        self.state = state
