"""channels: user-limited and personal channel names."""

from __future__ import annotations

import pytest

from wavecast.realtime.channels import (
    NAMESPACE_SEPARATOR,
    USER_BOUNDARY,
    USER_SEPARATOR,
    allowed_users,
    personal_channel,
)


def test_separators() -> None:
    assert (NAMESPACE_SEPARATOR, USER_BOUNDARY, USER_SEPARATOR) == (":", "#", ",")


@pytest.mark.parametrize(
    ("channel", "users"),
    [
        ("chat", None),
        ("ns:chat", None),
        ("chat#42", ["42"]),
        ("chat#42,43", ["42", "43"]),
        ("ns:chat#42,43", ["42", "43"]),
        ("#42", ["42"]),
        ("chat#", []),
        ("chat#42,,43,", ["42", "43"]),
        # Only the part after the last boundary lists users.
        ("a#b#42", ["42"]),
    ],
)
def test_allowed_users(channel: str, users: list[str] | None) -> None:
    assert allowed_users(channel) == users


def test_personal_channel() -> None:
    assert personal_channel("personal", "42") == "personal:#42"
    assert allowed_users(personal_channel("personal", "42")) == ["42"]
