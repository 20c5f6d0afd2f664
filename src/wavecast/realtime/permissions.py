"""Who may do what in a channel, from its namespace's options (pure functions)."""

from __future__ import annotations

from typing import Literal

from ..codes import ERROR_BAD_REQUEST, ERROR_NOT_AVAILABLE, ERROR_PERMISSION_DENIED, ERROR_UNKNOWN_CHANNEL
from ..exceptions import CommandError
from .channels import allowed_users
from .config import ChannelOptions, NodeConfig

__all__ = ["can_publish", "can_read", "can_subscribe", "channel_options", "check_read", "check_user_limited"]


def channel_options(config: NodeConfig, channel: str) -> ChannelOptions:
    """Return the options of a channel a client named.

    Raises:
        CommandError: 107 for an empty or too long name, 102 for an unknown namespace.
    """
    if not config.channel_name_allowed(channel):
        raise CommandError(ERROR_BAD_REQUEST)
    options = config.channel_options(channel)
    if options is None:
        raise CommandError(ERROR_UNKNOWN_CHANNEL)
    return options


def check_user_limited(options: ChannelOptions, channel: str, user: str) -> None:
    """Refuse a user-limited channel (``chat#42,43``) to users it doesn't list.

    Raises:
        CommandError: 103 when the channel is user-limited and the user isn't listed, or
            when the namespace doesn't allow user-limited channels.
    """
    users = allowed_users(channel)
    if users is None:
        return
    if not options.allow_user_limited_channels or not user or user not in users:
        raise CommandError(ERROR_PERMISSION_DENIED)


def can_subscribe(options: ChannelOptions, user: str) -> bool:
    """Whether the options alone let this client subscribe (no token, no hook)."""
    if options.protected:
        return False
    if not user:
        return options.allow_subscribe_for_anonymous
    return options.allow_subscribe_for_client


def can_publish(options: ChannelOptions, user: str, subscribed: bool) -> bool:
    """Whether the options alone let this client publish (no hook)."""
    if options.protected:
        return False
    if not user and not options.allow_publish_for_anonymous:
        return options.allow_publish_for_subscriber and subscribed and options.allow_subscribe_for_anonymous
    return options.allow_publish_for_client or (options.allow_publish_for_subscriber and subscribed)


def can_read(for_subscriber: bool, for_client: bool, for_anonymous: bool, user: str, subscribed: bool) -> bool:
    """Whether a client may read presence or history, given the three matching options."""
    if for_subscriber and subscribed:
        return True
    if not user:
        return for_anonymous
    return for_client


#: The options that let a client read presence or history: as a subscriber, as any client,
#: and anonymously.
_READERS = {
    "presence": ("allow_presence_for_subscriber", "allow_presence_for_client", "allow_presence_for_anonymous"),
    "history": ("allow_history_for_subscriber", "allow_history_for_client", "allow_history_for_anonymous"),
}


def check_read(options: ChannelOptions, what: Literal["presence", "history"], user: str, subscribed: bool) -> None:
    """Refuse a client the presence or history of a channel, unless the options allow it.

    Raises:
        CommandError: 108 when the channel keeps no presence or history, 103 when the client
            may not read it.
    """
    if not (options.presence if what == "presence" else options.history):
        raise CommandError(ERROR_NOT_AVAILABLE)
    for_subscriber, for_client, for_anonymous = (getattr(options, name) for name in _READERS[what])
    if not can_read(for_subscriber, for_client, for_anonymous, user, subscribed):
        raise CommandError(ERROR_PERMISSION_DENIED)
