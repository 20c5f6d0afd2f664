"""Signing keys with ids, and a JWKS endpoint that publishes them: an identity provider's two
halves, as a node that verifies tokens with ``token_jwks_public_endpoint`` meets them.

:class:`SigningKey` signs tokens with a ``kid`` header; :class:`JWKSServer` serves the public
halves of the keys in its :attr:`~JWKSServer.keys` on a free port of 127.0.0.1, counts the
requests, and can be stopped and started again on the same port, or told to answer with
something else (a status, garbage, an endless body).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gzip
import json
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .http import serve_aiohttp

__all__ = ["JWKSServer", "SigningKey"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

#: The algorithm that signs with each type of key.
_ALGORITHMS = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


@functools.cache
def _private_key(kty: str, seed: int) -> PrivateKey:
    """One key per type and ``seed``, made once per test run: RSA keys take tens of milliseconds."""
    if kty == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kty == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """A private key of type ``kty`` (``RSA``, ``EC`` or ``OKP``) published under ``kid``.

    Two keys of one type and ``seed`` are the same key; ``kid`` is only its name.
    """

    kid: str
    kty: str = "RSA"
    seed: int = 0

    @property
    def private(self) -> PrivateKey:
        return _private_key(self.kty, self.seed)

    @property
    def algorithm(self) -> str:
        return _ALGORITHMS[self.kty]

    def jwk(self, **members: Any) -> dict[str, Any]:
        """The public half as a JWK, with ``kid``, ``use: sig`` and ``members`` (``alg``...)."""
        public = self.private.public_key()
        if self.kty == "RSA":
            text = RSAAlgorithm.to_jwk(public)
        elif self.kty == "EC":
            text = ECAlgorithm.to_jwk(public)
        else:
            text = OKPAlgorithm.to_jwk(public)
        return {**json.loads(text), "kid": self.kid, "use": "sig", **members}

    def sign(self, user: str = "42", *, ttl: float | None = 3600, kid: str | None = None, **claims: Any) -> str:
        """A token for ``user`` (a subscription token with ``channel=...``), its header naming
        ``kid`` (this key's by default)."""
        payload: dict[str, Any] = {"sub": user, **claims}
        if ttl is not None:
            payload["exp"] = int(time.time() + ttl)
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid})


class JWKSServer:
    """A JWKS endpoint at :attr:`url`, publishing :attr:`keys`.

    Attributes:
        keys: what the set holds: :class:`SigningKey` (its public JWK) or a JWK as a dict.
        answer: replaces the set when not ``None``: an int (an empty answer with that status)
            or bytes (sent as they are, with status 200).
        endless: answer with 200 and a body that never ends.
        gzip: send the set gzipped, with ``Content-Encoding: gzip``, whatever the request accepts.
        requests: requests answered so far.
        headers: the headers of the last request.
    """

    def __init__(self) -> None:
        self.keys: list[SigningKey | dict[str, Any]] = []
        self.answer: int | bytes | None = None
        self.endless = False
        self.gzip = False
        self.requests = 0
        self.headers: dict[str, str] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def document(self) -> dict[str, Any]:
        return {"keys": [key.jwk() if isinstance(key, SigningKey) else key for key in self.keys]}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.headers = dict(request.headers)
        if self.gzip:
            body = gzip.compress(json.dumps(self.document()).encode())
            return web.Response(body=body, content_type="application/json", headers={"Content-Encoding": "gzip"})
        if self.endless:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            while True:
                await response.write(b" " * 65536)
                await asyncio.sleep(0)
        if isinstance(self.answer, int):
            return web.Response(status=self.answer)
        if isinstance(self.answer, bytes):
            return web.Response(body=self.answer, content_type="application/json")
        return web.json_response(self.document())

    async def start(self) -> JWKSServer:
        """Listen on a free port, or on the port it had before :meth:`stop`."""
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._handle)
        self._runner, self.port = await serve_aiohttp(app, self.port, handler_cancellation=True)
        return self

    async def stop(self) -> None:
        """Stop listening: fetches then fail to connect, as when the endpoint is down."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
