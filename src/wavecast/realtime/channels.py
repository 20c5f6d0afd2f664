"""Channel names: namespaces, user-limited channels and personal channels (pure functions)."""

from __future__ import annotations

__all__ = ["NAMESPACE_SEPARATOR", "USER_BOUNDARY", "USER_SEPARATOR", "allowed_users", "personal_channel"]

NAMESPACE_SEPARATOR = ":"
#: ``chat#42,43`` may be subscribed only by users 42 and 43.
USER_BOUNDARY = "#"
USER_SEPARATOR = ","


def allowed_users(channel: str) -> list[str] | None:
    """Return the users a user-limited channel admits, or ``None`` if it isn't user-limited."""
    _, boundary, users = channel.rpartition(USER_BOUNDARY)
    if not boundary:
        return None
    return [user for user in users.split(USER_SEPARATOR) if user]


def personal_channel(namespace: str, user: str) -> str:
    """Return the personal channel of ``user``: ``personal:#42``."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{USER_BOUNDARY}{user}"
