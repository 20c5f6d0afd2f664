"""permissions: who may subscribe, publish and read, from the namespace options alone."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from wavecast.exceptions import CommandError
from wavecast.realtime.config import ChannelOptions, NodeConfig
from wavecast.realtime.permissions import (
    _READERS,
    can_publish,
    can_read,
    can_subscribe,
    channel_options,
    check_user_limited,
)

LIMITED = ChannelOptions(allow_user_limited_channels=True)
CONFIG = NodeConfig(namespaces={"chat": LIMITED}, channel_max_length=10)


def code(exc_info: pytest.ExceptionInfo[CommandError]) -> int:
    return exc_info.value.error.code


# --- channel_options --------------------------------------------------------------------


def test_channel_options_of_the_default_namespace() -> None:
    assert channel_options(CONFIG, "news") is CONFIG.channel


def test_channel_options_of_a_namespace() -> None:
    assert channel_options(CONFIG, "chat:1") is LIMITED


def test_channel_options_up_to_the_maximum_length() -> None:
    assert channel_options(CONFIG, "a" * 10) is CONFIG.channel


@pytest.mark.parametrize("channel", ["", "a" * 11])
def test_channel_options_refuse_a_bad_name(channel: str) -> None:
    with pytest.raises(CommandError) as exc_info:
        channel_options(CONFIG, channel)
    assert code(exc_info) == 107


@pytest.mark.parametrize("channel", ["nope:1", ":1"])
def test_channel_options_refuse_an_unknown_namespace(channel: str) -> None:
    with pytest.raises(CommandError) as exc_info:
        channel_options(CONFIG, channel)
    assert code(exc_info) == 102


# --- user-limited channels ----------------------------------------------------------------


@pytest.mark.parametrize(("channel", "user"), [("chat", "42"), ("chat", ""), ("chat#42", "42"), ("chat#41,42", "42")])
def test_user_limited_allows(channel: str, user: str) -> None:
    check_user_limited(LIMITED, channel, user)


@pytest.mark.parametrize(("channel", "user"), [("chat#42", "43"), ("chat#42", ""), ("chat#", "42"), ("chat#4", "42")])
def test_user_limited_refuses(channel: str, user: str) -> None:
    with pytest.raises(CommandError) as exc_info:
        check_user_limited(LIMITED, channel, user)
    assert code(exc_info) == 103


def test_user_limited_channels_need_the_option() -> None:
    with pytest.raises(CommandError) as exc_info:
        check_user_limited(ChannelOptions(), "chat#42", "42")
    assert code(exc_info) == 103


# --- subscribe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "user", "allowed"),
    [
        (ChannelOptions(), "42", False),
        (ChannelOptions(), "", False),
        (ChannelOptions(allow_subscribe_for_client=True), "42", True),
        (ChannelOptions(allow_subscribe_for_client=True), "", False),
        (ChannelOptions(allow_subscribe_for_anonymous=True), "", True),
        (ChannelOptions(allow_subscribe_for_anonymous=True), "42", False),
        (ChannelOptions(allow_subscribe_for_client=True, allow_subscribe_for_anonymous=True), "", True),
        (ChannelOptions(allow_subscribe_for_client=True, allow_subscribe_for_anonymous=True), "42", True),
        (ChannelOptions(allow_subscribe_for_client=True, protected=True), "42", False),
        (ChannelOptions(allow_subscribe_for_anonymous=True, protected=True), "", False),
    ],
)
def test_can_subscribe(options: ChannelOptions, user: str, allowed: bool) -> None:
    assert can_subscribe(options, user) is allowed


# --- publish ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "user", "subscribed", "allowed"),
    [
        (ChannelOptions(), "42", True, False),
        (ChannelOptions(), "", True, False),
        (ChannelOptions(allow_publish_for_client=True), "42", False, True),
        (ChannelOptions(allow_publish_for_client=True), "", False, False),
        (ChannelOptions(allow_publish_for_subscriber=True), "42", True, True),
        (ChannelOptions(allow_publish_for_subscriber=True), "42", False, False),
        (ChannelOptions(allow_publish_for_client=True, allow_publish_for_anonymous=True), "", False, True),
        (ChannelOptions(allow_publish_for_subscriber=True, allow_publish_for_anonymous=True), "", True, True),
        (ChannelOptions(allow_publish_for_subscriber=True, allow_publish_for_anonymous=True), "", False, False),
        # allow_publish_for_anonymous adds anonymous clients to those the other options admit.
        (ChannelOptions(allow_publish_for_anonymous=True), "", False, False),
        (ChannelOptions(allow_publish_for_anonymous=True), "42", False, False),
        # An anonymous subscriber of a channel open to anonymous subscribers may publish as a subscriber.
        (
            ChannelOptions(allow_publish_for_subscriber=True, allow_subscribe_for_anonymous=True),
            "",
            True,
            True,
        ),
        (ChannelOptions(allow_publish_for_subscriber=True), "", True, False),
    ],
)
def test_can_publish(options: ChannelOptions, user: str, subscribed: bool, allowed: bool) -> None:
    assert can_publish(options, user, subscribed) is allowed


# --- presence and history -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("for_subscriber", "for_client", "for_anonymous", "user", "subscribed"),
    list(itertools.product([False, True], [False, True], [False, True], ["42", ""], [False, True])),
)
def test_can_read(for_subscriber: bool, for_client: bool, for_anonymous: bool, user: str, subscribed: bool) -> None:
    # Each option admits its own kind of client, whatever the others say.
    expected = (for_subscriber and subscribed) or (for_client and user != "") or (for_anonymous and user == "")
    assert can_read(for_subscriber, for_client, for_anonymous, user, subscribed) is expected


def test_the_readers_options_exist() -> None:
    fields = {field.name for field in dataclasses.fields(ChannelOptions)}
    assert {name for names in _READERS.values() for name in names} <= fields
