"""JWT connection and subscription tokens (Centrifugo's claims), verified with PyJWT."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import jwt

from ..codes import DISCONNECT_INVALID_TOKEN, ERROR_INTERNAL, ERROR_PERMISSION_DENIED, ERROR_TOKEN_EXPIRED
from ..exceptions import CommandError, DisconnectError
from .jwks import JWKS

__all__ = ["ConnectToken", "SubscribeToken", "TokenVerifier", "encode_json_claim", "sign_token", "token_ttl"]


def encode_json_claim(value: Any) -> bytes | None:
    """Return a claim that carries JSON (``info``, ``meta``) as JSON bytes."""
    if value is None:
        return None
    import msgspec

    return msgspec.json.encode(value)


def sign_token(secret: str, user: str, *, ttl: float | None = 3600, now: float | None = None, **claims: Any) -> str:
    """Sign an HS256 token, as an application's backend does after its own login.

    A connection token for ``user`` by default; with ``channel=...``, a subscription token
    for that channel. Other claims (``info``, ``channels``, ``meta``...) go in as they are.

    Args:
        secret: the ``token_hmac_secret_key`` that the node verifies with.
        user: the ``sub`` claim; ``""`` for an anonymous client.
        ttl: seconds until ``exp``; ``None`` signs a token that never expires.
        now: the time to count ``ttl`` from, in Unix seconds; the clock by default.
    """
    payload: dict[str, Any] = {"sub": user, **claims}
    if ttl is not None:
        payload["exp"] = int((time.time() if now is None else now) + ttl)
    return jwt.encode(payload, secret, algorithm="HS256")


def token_ttl(expire_at: int, now: float) -> int:
    """Return the ``ttl`` that goes with ``expires: true``: whole seconds until ``expire_at``, at least 1.

    The SDKs read ``ttl`` whenever ``expires`` is set, and a 0 is left out of the JSON
    (centrifuge-python then fails on the missing field); Centrifugo never sends less than 1
    either. Rounding down makes clients refresh before the token expires, except in its
    last second, which the ``client_expired_close_delay`` grace covers.
    """
    return max(int(expire_at - now), 1)


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectToken:
    """The claims of a connection token.

    Attributes:
        user: the ``sub`` claim; ``""`` for an anonymous connection.
        expire_at: the ``exp`` claim in Unix seconds; 0 if the token never expires.
        info: the ``info`` claim, JSON bytes attached to the connection.
        channels: server-side subscriptions granted by the ``channels`` claim.
        subs: server-side subscriptions with options, from the ``subs`` claim.
        meta: the ``meta`` claim, JSON bytes kept on the server.
    """

    user: str
    expire_at: int = 0
    info: bytes | None = None
    channels: tuple[str, ...] = ()
    subs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    meta: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SubscribeToken:
    """The claims of a subscription token: ``sub``, ``channel``, ``exp`` and ``info``."""

    user: str
    channel: str
    expire_at: int = 0
    info: bytes | None = None


class TokenVerifier:
    """Verifies tokens signed with HS256, RS256 or ES256, whichever keys are configured, or
    with the keys of a JWKS endpoint.

    With ``jwks``, as with Centrifugo's ``token_jwks_public_endpoint``, every token is verified
    with the set's keys: it must name one in its ``kid`` header, and the other keys are not used.
    """

    def __init__(
        self,
        *,
        hmac_secret: str = "",
        rsa_public_key: str = "",
        ecdsa_public_key: str = "",
        audience: str = "",
        issuer: str = "",
        jwks: JWKS | None = None,
    ) -> None:
        self._keys: dict[str, Any] = {}
        if hmac_secret:
            self._keys["HS256"] = hmac_secret
        if rsa_public_key:
            self._keys["RS256"] = rsa_public_key
        if ecdsa_public_key:
            self._keys["ES256"] = ecdsa_public_key
        self.jwks = jwks
        self.audience = audience or None
        self.issuer = issuer or None

    @property
    def enabled(self) -> bool:
        return bool(self._keys) or self.jwks is not None

    async def _key(self, header: dict[str, Any]) -> tuple[str, Any]:
        """Return the algorithm and the key that verify a token with this header.

        Raises:
            ValueError: no key for it; the message says why.
        """
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise ValueError(f"unsupported token algorithm: {algorithm!r}")
        if self.jwks is None:
            key = self._keys.get(algorithm)
            if key is None:
                raise ValueError(f"unsupported token algorithm: {algorithm!r}")
            return algorithm, key
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError("a token without a kid header, where keys come from a JWKS endpoint")
        jwk = await self.jwks.get(kid)
        if jwk is None and self.jwks.stale:
            # The key may be a new one the endpoint couldn't be asked for: a temporary error,
            # which the SDKs retry with backoff, rather than an invalid token, which ends them.
            raise CommandError(ERROR_INTERNAL)
        if jwk is None:
            raise ValueError(f"no key {kid!r} in the JWKS of {self.jwks.name}")
        if algorithm not in jwk.algorithms:
            raise ValueError(f"key {kid!r} doesn't verify {algorithm!r} tokens")
        return algorithm, jwk.key

    async def _decode(self, token: str, now: float) -> dict[str, Any]:
        """Verify signature and standard claims; expiry is checked by the caller."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise ValueError(f"malformed token: {exc}") from exc
        algorithm, key = await self._key(header)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"verify_exp": False, "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise ValueError(f"invalid token: {exc}") from exc
        exp = claims.get("exp", 0)
        if not isinstance(exp, int | float) or exp < 0:
            raise ValueError("invalid exp claim")
        return claims

    async def connect_token(self, token: str, now: float) -> ConnectToken:
        """Verify a connection token.

        A token with a ``channel`` claim is a subscription token and is refused here, as in
        Centrifugo, before its expiry is looked at; ``refresh`` verifies with this method too.

        Raises:
            DisconnectError: 3500 "invalid token" for a bad signature, malformed claims, a
                ``channel`` claim, or a key that the JWKS doesn't have.
            CommandError: 109 "token expired" when ``exp`` has passed; the client refreshes
                its token and connects again. 100 "internal server error" (temporary: the
                client retries) for a key the JWKS endpoint couldn't be asked for, since its
                last fetch failed.
        """
        try:
            claims = await self._decode(token, now)
            if claims.get("channel") not in (None, ""):
                raise ValueError("a connection token can't have a channel claim")
            user = claims.get("sub", "")
            if not isinstance(user, str):
                raise ValueError("sub claim must be a string")
            channels = claims.get("channels", [])
            if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
                raise ValueError("channels claim must be a list of strings")
            subs = claims.get("subs", {})
            if not isinstance(subs, dict):
                raise ValueError("subs claim must be an object")
        except ValueError as exc:
            raise DisconnectError(DISCONNECT_INVALID_TOKEN) from exc
        expire_at = int(claims.get("exp", 0))
        if expire_at and expire_at <= now:
            raise CommandError(ERROR_TOKEN_EXPIRED)
        return ConnectToken(
            user=user,
            expire_at=expire_at,
            info=encode_json_claim(claims.get("info")),
            channels=tuple(channels),
            subs=subs,
            meta=encode_json_claim(claims.get("meta")),
        )

    async def subscribe_token(self, token: str, now: float, *, user: str, channel: str) -> SubscribeToken:
        """Verify a subscription token for ``user`` and ``channel``.

        Raises:
            CommandError: 103 "permission denied" for a bad token (its key not in the JWKS
                included), one without a ``channel`` claim (a connection token) or for another
                user or channel; 109 "token expired" when ``exp`` has passed; 100 (temporary)
                for a key the JWKS endpoint couldn't be asked for.
        """
        try:
            claims = await self._decode(token, now)
        except ValueError as exc:
            raise CommandError(ERROR_PERMISSION_DENIED) from exc
        claimed = claims.get("channel")
        if not claimed or claimed != channel or claims.get("sub", "") != user:
            raise CommandError(ERROR_PERMISSION_DENIED)
        expire_at = int(claims.get("exp", 0))
        if expire_at and expire_at <= now:
            raise CommandError(ERROR_TOKEN_EXPIRED)
        return SubscribeToken(
            user=user, channel=channel, expire_at=expire_at, info=encode_json_claim(claims.get("info"))
        )
