"""subscription: the state table of a client's subscription, walked pair by pair."""

from __future__ import annotations

import itertools

import pytest

from wavecast.exceptions import LocalProtocolError
from wavecast.realtime.config import ChannelOptions
from wavecast.realtime.subscription import (
    SUBSCRIBED,
    SUBSCRIBING,
    SUBSCRIPTION_TRANSITIONS,
    UNSUBSCRIBED,
    Subscription,
    SubscriptionState,
)

# The table, written out again: a change to it must be deliberate.
ALLOWED = {
    (SUBSCRIBING, SUBSCRIBED),
    (SUBSCRIBING, UNSUBSCRIBED),
    (SUBSCRIBED, UNSUBSCRIBED),
}


def test_states() -> None:
    assert [(state.name, state.value) for state in SubscriptionState] == [
        ("SUBSCRIBING", "subscribing"),
        ("SUBSCRIBED", "subscribed"),
        ("UNSUBSCRIBED", "unsubscribed"),
    ]


def test_table() -> None:
    assert set(SUBSCRIPTION_TRANSITIONS) == set(SubscriptionState)
    assert {(state, new) for state, row in SUBSCRIPTION_TRANSITIONS.items() for new in row} == ALLOWED


@pytest.mark.parametrize(("state", "new"), list(itertools.product(SubscriptionState, SubscriptionState)))
def test_every_pair(state: SubscriptionState, new: SubscriptionState) -> None:
    subscription = Subscription("ch", ChannelOptions())
    subscription.state = state
    if (state, new) in ALLOWED:
        subscription.move(new)
        assert subscription.state is new
    else:
        with pytest.raises(LocalProtocolError) as exc_info:
            subscription.move(new)
        assert str(exc_info.value) == f"can't move a subscription to {new.value} when it is {state.value}"
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
    subscription.move(SUBSCRIBED)
    subscription.move(UNSUBSCRIBED)
    with pytest.raises(LocalProtocolError, match=r"^can't move a subscription to subscribed when it is unsubscribed$"):
        subscription.move(SUBSCRIBED)
