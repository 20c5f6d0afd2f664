"""subscription: the state table of a client's subscription, walked pair by pair."""

from __future__ import annotations

import itertools

import pytest

from wavecast.exceptions import StateError
from wavecast.realtime.config import ChannelOptions
from wavecast.realtime.subscription import (
    SUBSCRIBED,
    SUBSCRIBING,
    SUBSCRIPTION_TRANSITIONS,
    UNSUBSCRIBED,
    Subscription,
    SubscriptionAction,
    SubscriptionState,
)

from .helpers import assert_step, assert_table

COMPLETE, UNSUBSCRIBE = SubscriptionAction.COMPLETE, SubscriptionAction.UNSUBSCRIBE

# The table, written out again: a change to it must be deliberate.
ALLOWED = {
    (SUBSCRIBING, COMPLETE): SUBSCRIBED,
    (SUBSCRIBING, UNSUBSCRIBE): UNSUBSCRIBED,
    (SUBSCRIBED, UNSUBSCRIBE): UNSUBSCRIBED,
}
METHODS = {COMPLETE: Subscription.complete, UNSUBSCRIBE: Subscription.end}


def test_states() -> None:
    assert [(state.name, state.value) for state in SubscriptionState] == [
        ("SUBSCRIBING", "subscribing"),
        ("SUBSCRIBED", "subscribed"),
        ("UNSUBSCRIBED", "unsubscribed"),
    ]


def test_table() -> None:
    assert_table(SUBSCRIPTION_TRANSITIONS, SubscriptionState, ALLOWED)


@pytest.mark.parametrize(("state", "action"), list(itertools.product(SubscriptionState, SubscriptionAction)))
def test_every_pair(state: SubscriptionState, action: SubscriptionAction) -> None:
    subscription = Subscription("ch", ChannelOptions())
    subscription.state = state
    assert_step(state, action, ALLOWED, lambda: METHODS[action](subscription), lambda: subscription.state)


def test_a_new_subscription() -> None:
    options = ChannelOptions(presence=True)
    subscription = Subscription("ch", options, server_side=True)
    assert subscription.channel == "ch"
    assert subscription.options is options
    assert subscription.server_side
    assert subscription.state is SUBSCRIBING
    assert subscription.pending == []
    assert subscription.info is None
    assert (subscription.expire_at, subscription.offset, subscription.epoch) == (0, 0, "")
    assert not (subscription.join_leave or subscription.positioned or subscription.recoverable)
    assert not Subscription("ch", options).server_side


def test_the_whole_life() -> None:
    subscription = Subscription("ch", ChannelOptions())
    subscription.complete()
    subscription.end()
    with pytest.raises(StateError, match=r"^can't complete the subscription when state is UNSUBSCRIBED$"):
        subscription.complete()
