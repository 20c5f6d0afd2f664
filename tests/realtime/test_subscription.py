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
    assert set(SUBSCRIPTION_TRANSITIONS) == set(SubscriptionState)
    table = {(state, action): new for state, row in SUBSCRIPTION_TRANSITIONS.items() for action, new in row.items()}
    assert table == ALLOWED


@pytest.mark.parametrize(("state", "action"), list(itertools.product(SubscriptionState, SubscriptionAction)))
def test_every_pair(state: SubscriptionState, action: SubscriptionAction) -> None:
    subscription = Subscription("ch", ChannelOptions())
    subscription.state = state
    if (state, action) in ALLOWED:
        METHODS[action](subscription)
        assert subscription.state is ALLOWED[state, action]
    else:
        with pytest.raises(StateError) as exc_info:
            METHODS[action](subscription)
        assert str(exc_info.value) == f"can't {action.value} when state is {state.name}"
        assert subscription.state is state


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
