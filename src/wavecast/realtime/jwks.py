"""Token keys from a JSON Web Key Set endpoint (RFC 7517), so that keys rotate without a restart.

Centrifugo's ``token_jwks_public_endpoint``: a token names its key in the ``kid`` header, and
the node looks it up in the set it fetched from the endpoint. The set is fetched at start, then
every ``refresh_interval`` seconds, and again when a token names a key that isn't in it, at most
once per ``min_refresh_interval`` seconds, so that tokens with made-up ``kid``s cost the
endpoint one request per interval whatever their number. Concurrent lookups share one fetch.
A fetch that fails (the endpoint is down, slow, answers garbage or too much) leaves the cached
keys in place: tokens signed with them go on being accepted, and the failure is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import msgspec

from ..exceptions import ConfigError

__all__ = ["JWK", "JWKS", "key_algorithms", "parse_jwks"]

logger = logging.getLogger("wavecast.realtime")

#: What a key of each type (``kty``) verifies when its JWK names no ``alg`` (optional, RFC 7517
#: section 4.4): the RSA family, the one ECDSA algorithm of its curve (RFC 7518 section 3.4), and
#: EdDSA (RFC 8037). Symmetric (``oct``) keys have no place in a public set and are skipped.
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})


@dataclasses.dataclass(frozen=True, slots=True)
class JWK:
    """One verification key of the set.

    Attributes:
        kid: the key's id, which tokens name in their ``kid`` header.
        algorithms: the ``alg`` values of the tokens it verifies.
        key: the public key, as PyJWT takes it.
    """

    kid: str
    algorithms: frozenset[str]
    key: Any


def _clipped(text: str, limit: int) -> str:
    """``text`` in ``limit`` characters at most: what a set holds may be long, and goes to the log."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _shown(value: Any) -> str:
    return _clipped(repr(value), 40)


def key_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    """Return the algorithms a JWK verifies: its ``alg`` if it names one of its type's, else its type's.

    Raises:
        ValueError: a type other than RSA, EC and OKP, an unknown curve, or an ``alg`` of another type.
    """
    kty, curve, algorithm = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    # Members of the wrong JSON type fall through to the errors below, never to a TypeError.
    curve = curve if isinstance(curve, str) else None
    if kty == "RSA":
        family = _RSA
    elif kty == "EC" and curve in _EC_CURVES:
        family = frozenset({_EC_CURVES[curve]})
    elif kty == "OKP" and curve in _OKP_CURVES:
        family = frozenset({"EdDSA"})
    elif kty in ("EC", "OKP"):
        raise ValueError(f"unsupported {kty} curve {_shown(jwk.get('crv'))}")
    else:
        raise ValueError(f"unsupported key type {_shown(kty)}")
    if algorithm is None:
        return family
    if not isinstance(algorithm, str) or algorithm not in family:
        raise ValueError(f"alg {_shown(algorithm)} doesn't go with a {kty} key")
    return frozenset({algorithm})


def _parse_key(item: Any) -> JWK | None:
    """Return the verification key of one JWK, ``None`` for one that isn't for signatures.

    Raises:
        ValueError: a key that can't verify tokens; the message says why.
    """
    if not isinstance(item, dict):
        raise ValueError("a key that isn't an object")
    if item.get("use", "sig") != "sig":
        return None
    kid = item.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("a key without a kid, which no token could name")
    if "d" in item or item.get("kty") == "oct":
        raise ValueError(f"key {_shown(kid)} holds private or symmetric material: it doesn't belong in a public set")
    try:
        algorithms = key_algorithms(item)
        key = jwt.PyJWK(item, algorithm=min(algorithms)).key
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # PyJWT's parsers meet what the set's JSON holds: a number where a base64 string goes...
        raise ValueError(f"key {_shown(kid)}: {_clipped(str(exc), 200)}") from exc
    return JWK(kid=kid, algorithms=algorithms, key=key)


def parse_jwks(body: bytes, *, max_keys: int | None) -> tuple[dict[str, JWK], list[str]]:
    """Parse a JWK Set: its signature keys by ``kid``, and why each key left out was left out.

    Keys this node can't use are skipped, as RFC 7517 section 5 asks, so that a new kind of key
    beside the others doesn't stop the rest from verifying; of two keys with one ``kid``, the
    first is kept.

    Raises:
        ValueError: the body isn't a JSON object with a ``keys`` array, or has more than
            ``max_keys`` keys.
    """
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"the answer isn't JSON: {exc}") from exc
    items = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError("the answer has no keys array")
    if max_keys is not None and len(items) > max_keys:
        raise ValueError(f"the answer has {len(items)} keys, expected at most {max_keys}")
    keys: dict[str, JWK] = {}
    skipped: list[str] = []
    for item in items:
        try:
            key = _parse_key(item)
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        if key is None:
            continue
        if key.kid in keys:
            skipped.append(f"a second key {_shown(key.kid)}")
            continue
        keys[key.kid] = key
    return keys, skipped


def _redacted(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class JWKS:
    """The keys of one JWKS endpoint, cached and refreshed.

    Args:
        endpoint: the http:// or https:// URL of the set.
        refresh_interval: seconds between two scheduled fetches.
        min_refresh_interval: seconds at least between the start of a fetch and one that a
            token with an unknown ``kid`` triggers.
        timeout: seconds a fetch may take, connecting and reading the answer included.
        max_response_size: bytes an answer may have; ``None`` for any size.
        max_keys: keys an answer may hold; ``None`` for any number.
        clock: a monotonic clock in seconds.

    Raises:
        ConfigError: aiohttp, which fetches the set, isn't installed.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        refresh_interval: float,
        min_refresh_interval: float,
        timeout: float,
        max_response_size: int | None,
        max_keys: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if importlib.util.find_spec("aiohttp") is None:
            raise ConfigError("token_jwks_public_endpoint needs aiohttp: pip install 'wavecast[jwks]'")
        self.endpoint = endpoint
        #: The endpoint as logs and metrics show it: without credentials or query, which may hold secrets.
        self.name = _redacted(endpoint)
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self.max_response_size = max_response_size
        self.max_keys = max_keys
        self._clock = clock
        #: The keys of the last set fetched, by ``kid``.
        self.keys: Mapping[str, JWK] = {}
        #: Fetches started, those that brought a set, and those that failed.
        self.fetches = 0
        self.successes = 0
        self.failures = 0
        #: Whether the last fetch failed (or none succeeded yet): a ``kid`` missing from
        #: :attr:`keys` may then be a new key the node couldn't learn of.
        self.stale = True
        self._last_fetch: float | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Fetch the set now and every ``refresh_interval`` seconds, in the background."""
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_periodically())

    async def aclose(self) -> None:
        """Stop refreshing; a fetch under way is abandoned."""
        for task in (self._refresher, self._fetch):
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        self._refresher = None

    async def get(self, kid: str) -> JWK | None:
        """Return the key ``kid``, fetching the set again if it isn't there and may be fetched now.

        ``None`` when the key isn't in the set; :attr:`stale` then tells whether the set is
        the endpoint's latest.
        """
        key = self.keys.get(kid)
        if key is not None:
            return key
        if self._fetch is None and not self._may_fetch():
            return None
        await self.refresh()
        return self.keys.get(kid)

    def _may_fetch(self) -> bool:
        """Tell whether a token with an unknown ``kid`` may have the set fetched now."""
        return self._last_fetch is None or self._clock() - self._last_fetch >= self.min_refresh_interval

    async def refresh(self) -> None:
        """Fetch the set, or wait for the fetch under way; a failure keeps the keys and is logged."""
        if self._fetch is None:
            self._last_fetch = self._clock()
            self._fetch = asyncio.get_running_loop().create_task(self._load())
            self._fetch.add_done_callback(self._fetched)
        # wait() rather than await: a client that goes away while it waits cancels its own wait,
        # not the fetch the others share.
        await asyncio.wait([self._fetch])

    def _fetched(self, task: asyncio.Task[None]) -> None:
        if self._fetch is task:
            self._fetch = None

    async def _refresh_periodically(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_interval)

    async def _load(self) -> None:
        self.fetches += 1
        try:
            keys, skipped = parse_jwks(await self._download(), max_keys=self.max_keys)
        except (ValueError, OSError, TimeoutError) as exc:
            self.failures += 1
            self.stale = True
            logger.warning(
                "can't fetch the token keys from %s, keeping the %d cached: %s", self.name, len(self.keys), exc
            )
            return
        self.successes += 1
        self.stale = False
        for reason in skipped:
            logger.warning("token keys from %s: skipped %s", self.name, reason)
        if keys.keys() != self.keys.keys():
            logger.info("token keys from %s: %s", self.name, _clipped(", ".join(keys), 500) or "none")
        self.keys = keys

    async def _download(self) -> bytes:
        """GET the set within ``timeout`` and ``max_response_size``.

        Raises:
            ValueError: a status other than 200, or an answer past the size limit.
            OSError: the connection failed (aiohttp's errors are OSErrors or wrapped here).
            TimeoutError: no whole answer in ``timeout`` seconds.
        """
        import aiohttp

        limit = self.max_response_size
        try:
            async with (
                asyncio.timeout(self.timeout),
                # Uncompressed: the size limit then bounds what an answer takes in memory, where
                # a small gzip body could inflate to much more between two checks.
                aiohttp.ClientSession(skip_auto_headers=("User-Agent",), auto_decompress=False) as client,
                client.get(
                    self.endpoint, headers={"Accept": "application/json", "Accept-Encoding": "identity"}
                ) as response,
            ):
                if response.status != 200:
                    raise ValueError(f"HTTP status {response.status}")
                if limit is not None and response.content_length is not None and response.content_length > limit:
                    raise ValueError(f"an answer of {response.content_length} bytes, expected at most {limit}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if limit is not None and len(body) > limit:
                        raise ValueError(f"an answer of more than {limit} bytes")
                return bytes(body)
        except aiohttp.ClientError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
