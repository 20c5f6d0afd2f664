"""The secret the tests' servers verify tokens with, and the one helper that signs them."""

from __future__ import annotations

from typing import Any

from wavecast.realtime.auth import sign_token

__all__ = ["SECRET", "make_token"]

#: Signs the tests' tokens; 32 bytes or more, so PyJWT doesn't warn.
SECRET = "wavecast-tests-hmac-secret-of-more-than-32-bytes"


def make_token(user: str = "42", *, ttl: float | None = 3600, secret: str = SECRET, **claims: Any) -> str:
    """Return an HS256 connection token for ``user`` expiring ``ttl`` seconds from now (never if ``None``).

    Extra claims (``channels``, ``info``, ``channel`` for a subscription token...) go as they are;
    :func:`wavecast.realtime.auth.sign_token` signs it, as the applications' backends do.
    """
    return sign_token(secret, user, ttl=ttl, **claims)
