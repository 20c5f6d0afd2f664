"""jwks: parsing a JWK Set, and the cache of one endpoint's keys against a local JWKS server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import jwt
import pytest
from hypothesis import given, settings, strategies as st

from wavecast.exceptions import CommandError, ConfigError, DisconnectError
from wavecast.realtime import jwks as jwks_module
from wavecast.realtime.auth import TokenVerifier
from wavecast.realtime.jwks import JWKS, key_algorithms, parse_jwks

from ..support.clock import FakeClock
from ..support.jwks import JWKSServer, SigningKey
from ..support.timing import MS
from ..support.tokens import SECRET, make_token

A = SigningKey("key-a", "RSA", seed=0)
B = SigningKey("key-b", "RSA", seed=1)
EC = SigningKey("key-ec", "EC")
OKP = SigningKey("key-okp", "OKP")


@pytest.fixture
def endpoint(jwks_server: JWKSServer) -> JWKSServer:
    """The JWKS endpoint, publishing key A."""
    jwks_server.keys = [A]
    return jwks_server


def cache(server: JWKSServer, clock: FakeClock | None = None, **options: Any) -> JWKS:
    settings: dict[str, Any] = {
        "refresh_interval": 300.0,
        "min_refresh_interval": 10.0,
        "timeout": 2000 * MS,
        "max_response_size": 2**20,
        "max_keys": 100,
        **options,
    }
    return JWKS(server.url, clock=clock or FakeClock(), **settings)


def body(*keys: SigningKey | dict[str, Any]) -> bytes:
    return json.dumps({"keys": [key.jwk() if isinstance(key, SigningKey) else key for key in keys]}).encode()


# --- parsing ------------------------------------------------------------------------------


def test_parse_rsa_ec_and_okp_keys() -> None:
    keys, skipped = parse_jwks(body(A, EC, OKP), max_keys=None)
    assert skipped == []
    assert list(keys) == ["key-a", "key-ec", "key-okp"]
    assert keys["key-a"].algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    assert keys["key-ec"].algorithms == {"ES256"}
    assert keys["key-okp"].algorithms == {"EdDSA"}


def test_key_algorithms() -> None:
    assert key_algorithms({"kty": "RSA", "alg": "RS512"}) == {"RS512"}
    assert key_algorithms({"kty": "EC", "crv": "P-384"}) == {"ES384"}
    assert key_algorithms({"kty": "EC", "crv": "P-521", "alg": "ES512"}) == {"ES512"}
    assert key_algorithms({"kty": "OKP", "crv": "Ed448"}) == {"EdDSA"}
    for jwk, message in [
        ({"kty": "RSA", "alg": "HS256"}, "alg 'HS256' doesn't go with a RSA key"),
        ({"kty": "EC", "crv": "P-256", "alg": "ES384"}, "alg 'ES384' doesn't go with a EC key"),
        ({"kty": "EC", "crv": "P-999"}, "unsupported EC curve 'P-999'"),
        ({"kty": "EC", "crv": ["P-256"]}, r"unsupported EC curve \['P-256'\]"),
        ({"kty": "RSA", "alg": ["RS256"]}, r"alg \['RS256'\] doesn't go with a RSA key"),
        ({"kty": "x" * 100}, "unsupported key type '" + "x" * 36 + r"\.\.\.$"),
        ({"kty": "OKP", "crv": "X25519"}, "unsupported OKP curve 'X25519'"),
        ({"kty": "oct"}, "unsupported key type 'oct'"),
        ({}, "unsupported key type None"),
    ]:
        with pytest.raises(ValueError, match=message):
            key_algorithms(jwk)


def test_keys_left_out() -> None:
    keys, skipped = parse_jwks(
        body(
            A,
            {**B.jwk(), "use": "enc"},
            {k: v for k, v in B.jwk().items() if k != "kid"},
            {**B.jwk(), "kid": ""},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {**B.jwk(), "kid": "private", "d": "AAAA"},
            {**B.jwk(), "kid": "wrong-alg", "alg": "ES256"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {**B.jwk(), "kid": "key-a"},
            "not an object",
            {**EC.jwk()},
        ),
        max_keys=None,
    )
    assert list(keys) == ["key-a", "key-ec"]
    # The encryption key is none of the set's business: left out without a word.
    assert len(skipped) == 8
    assert "a key without a kid, which no token could name" in skipped
    assert any("'secret' holds private or symmetric material" in reason for reason in skipped)
    assert any("'private' holds private or symmetric material" in reason for reason in skipped)
    assert any("'wrong-alg'" in reason for reason in skipped)
    assert any("'broken'" in reason for reason in skipped)
    assert "a second key 'key-a'" in skipped
    assert "a key that isn't an object" in skipped


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<html>", "the answer isn't JSON"),
        (b"[]", "the answer has no keys array"),
        (b'{"keys": {}}', "the answer has no keys array"),
        (b"{}", "the answer has no keys array"),
    ],
)
def test_not_a_key_set(document: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_jwks(document, max_keys=None)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
_WORDS = st.sampled_from(["RSA", "EC", "OKP", "oct", "P-256", "P-521", "Ed25519", "X25519", "RS256", "ES384", "EdDSA"])
_MEMBERS = ("kty", "crv", "alg", "kid", "use", "n", "e", "x", "y", "d", "k")


@st.composite
def _jwks_documents(draw: st.DrawFn) -> Any:
    """Sets whose keys are real ones with members replaced by anything JSON, or made of such members."""
    keys: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        base = dict(draw(st.sampled_from([A, EC, OKP])).jwk()) if draw(st.booleans()) else {}
        for name in draw(st.lists(st.sampled_from(_MEMBERS), max_size=4)):
            base[name] = draw(_WORDS | _JSON)
        keys.append(base if draw(st.integers(0, 9)) else draw(_JSON))
    return draw(st.sampled_from([{"keys": keys}, keys, {"keys": keys, "other": 1}]))


@settings(max_examples=150, deadline=None)
@given(document=_jwks_documents())
def test_any_set_parses_or_fails_with_value_error(document: Any) -> None:
    try:
        keys, skipped = parse_jwks(json.dumps(document).encode(), max_keys=3)
    except ValueError as exc:
        assert len(str(exc)) < 300
        return
    assert all(isinstance(kid, str) and key.algorithms for kid, key in keys.items())
    assert all(len(reason) < 300 for reason in skipped)


@given(body=st.binary(max_size=64))
def test_any_bytes_parse_or_fail_with_value_error(body: bytes) -> None:
    with contextlib.suppress(ValueError):
        parse_jwks(body, max_keys=None)


def test_max_keys() -> None:
    assert len(parse_jwks(body(A, B), max_keys=2)[0]) == 2
    with pytest.raises(ValueError, match="the answer has 3 keys, expected at most 2"):
        parse_jwks(body(A, B, EC), max_keys=2)


def test_an_empty_set_is_a_set() -> None:
    assert parse_jwks(b'{"keys": []}', max_keys=1) == ({}, [])


# --- the cache ----------------------------------------------------------------------------


async def test_keys_are_fetched_on_first_use_and_cached(endpoint: JWKSServer) -> None:
    keys = cache(endpoint)
    key = await keys.get("key-a")
    assert key is not None and key.kid == "key-a"
    assert await keys.get("key-a") is key
    assert endpoint.requests == 1


async def test_an_unknown_kid_fetches_again_at_most_once_per_interval(endpoint: JWKSServer) -> None:
    clock = FakeClock()
    keys = cache(endpoint, clock)
    assert await keys.get("key-a") is not None
    endpoint.keys = [A, B]
    # Too soon after the last fetch: B isn't looked for.
    for _ in range(100):
        assert await keys.get("key-b") is None
    assert endpoint.requests == 1
    clock.now += 10.0
    assert await keys.get("key-b") is not None
    assert endpoint.requests == 2
    for kid in (f"made-up-{i}" for i in range(100)):
        assert await keys.get(kid) is None
    assert endpoint.requests == 2
    clock.now += 10.0
    assert await keys.get("made-up") is None
    assert endpoint.requests == 3


async def test_concurrent_lookups_share_one_fetch(endpoint: JWKSServer) -> None:
    keys = cache(endpoint)
    found = await asyncio.gather(*(keys.get(kid) for kid in ["key-a"] * 50 + ["nope"] * 50))
    assert endpoint.requests == 1
    assert [key is not None for key in found] == [True] * 50 + [False] * 50


async def test_a_lookup_cancelled_while_it_waits_leaves_the_fetch_to_the_others(endpoint: JWKSServer) -> None:
    keys = cache(endpoint)
    first = asyncio.create_task(keys.get("key-a"))
    second = asyncio.create_task(keys.get("key-a"))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second) is not None
    assert endpoint.requests == 1


async def test_the_refresh_replaces_the_set(endpoint: JWKSServer) -> None:
    keys = cache(endpoint)
    await keys.refresh()
    assert set(keys.keys) == {"key-a"}
    endpoint.keys = [B]
    await keys.refresh()
    assert set(keys.keys) == {"key-b"}
    endpoint.keys = []
    await keys.refresh()
    assert keys.keys == {}


async def test_start_refreshes_periodically(endpoint: JWKSServer) -> None:
    keys = cache(endpoint, refresh_interval=20 * MS)
    keys.start()
    try:
        async with asyncio.timeout(2000 * MS):
            while "key-a" not in keys.keys:
                await asyncio.sleep(5 * MS)
            endpoint.keys = [B]
            while set(keys.keys) != {"key-b"}:
                await asyncio.sleep(5 * MS)
    finally:
        await keys.aclose()
    requests = endpoint.requests
    await asyncio.sleep(60 * MS)
    assert endpoint.requests == requests


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (503, "HTTP status 503"),
        (b"not json", "the answer isn't JSON"),
        (b'{"keys": "none"}', "the answer has no keys array"),
    ],
)
async def test_a_failed_refresh_keeps_the_keys(
    endpoint: JWKSServer, answer: int | bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    keys = cache(endpoint)
    await keys.refresh()
    endpoint.answer = answer
    with caplog.at_level(logging.WARNING, "wavecast.realtime"):
        await keys.refresh()
    assert set(keys.keys) == {"key-a"}
    assert (keys.fetches, keys.successes, keys.failures) == (2, 1, 1)
    assert f"can't fetch the token keys from {endpoint.url}, keeping the 1 cached: {reason}" in caplog.text


async def test_an_endpoint_that_is_down_keeps_the_keys(endpoint: JWKSServer, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    keys = cache(endpoint, clock)
    await keys.refresh()
    await endpoint.stop()
    clock.now += 10.0
    with caplog.at_level(logging.WARNING, "wavecast.realtime"):
        assert await keys.get("key-b") is None
    assert await keys.get("key-a") is not None
    assert keys.failures == 1
    assert "can't fetch the token keys" in caplog.text
    # It comes back with B: the next lookup of B, an interval later, finds it.
    endpoint.keys = [A, B]
    await endpoint.start()
    assert await keys.get("key-b") is None
    clock.now += 10.0
    assert await keys.get("key-b") is not None


async def test_the_set_is_asked_for_uncompressed(endpoint: JWKSServer, caplog: pytest.LogCaptureFixture) -> None:
    keys = cache(endpoint)
    await keys.refresh()
    assert endpoint.headers["Accept-Encoding"] == "identity"
    assert "User-Agent" not in endpoint.headers
    # A server that compresses all the same isn't inflated past the size limit: it fails.
    endpoint.gzip = True
    with caplog.at_level(logging.WARNING, "wavecast.realtime"):
        await keys.refresh()
    assert keys.failures == 1
    assert "the answer isn't JSON" in caplog.text
    assert set(keys.keys) == {"key-a"}


async def test_too_many_keys_keeps_the_keys(endpoint: JWKSServer) -> None:
    keys = cache(endpoint, max_keys=1)
    await keys.refresh()
    endpoint.keys = [A, B]
    await keys.refresh()
    assert set(keys.keys) == {"key-a"}
    assert keys.failures == 1


async def test_the_response_size_limit(endpoint: JWKSServer, caplog: pytest.LogCaptureFixture) -> None:
    size = len(json.dumps(endpoint.document()))
    keys = cache(endpoint, max_response_size=size)
    await keys.refresh()
    assert set(keys.keys) == {"key-a"}
    keys = cache(endpoint, max_response_size=size - 1)
    with caplog.at_level(logging.WARNING, "wavecast.realtime"):
        await keys.refresh()
    assert keys.keys == {}
    assert f"an answer of {size} bytes, expected at most {size - 1}" in caplog.text


async def test_an_endless_answer_stops_at_the_size_limit(
    endpoint: JWKSServer, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.endless = True
    keys = cache(endpoint, max_response_size=2**20)
    with caplog.at_level(logging.WARNING, "wavecast.realtime"):
        await keys.refresh()
    assert keys.failures == 1
    assert f"an answer of more than {2**20} bytes" in caplog.text


async def test_an_endless_answer_stops_at_the_timeout(endpoint: JWKSServer) -> None:
    endpoint.endless = True
    keys = cache(endpoint, max_response_size=None, timeout=100 * MS)
    await keys.refresh()
    assert keys.failures == 1


async def test_aclose_abandons_a_fetch(endpoint: JWKSServer) -> None:
    endpoint.endless = True
    keys = cache(endpoint, max_response_size=None, timeout=60.0)
    keys.start()
    lookup = asyncio.create_task(keys.get("key-a"))
    async with asyncio.timeout(2000 * MS):
        while endpoint.requests == 0:
            await asyncio.sleep(5 * MS)
        await keys.aclose()
        assert await lookup is None


def test_logs_and_metrics_name_the_endpoint_without_its_secrets() -> None:
    for url, name in [
        ("https://user:password@auth.example.com:8443/keys?token=secret", "https://auth.example.com:8443/keys"),
        ("http://[::1]:8080/jwks.json", "http://[::1]:8080/jwks.json"),
        ("https://auth.example.com/certs", "https://auth.example.com/certs"),
    ]:
        keys = JWKS(url, refresh_interval=1, min_refresh_interval=1, timeout=1, max_response_size=1, max_keys=1)
        assert keys.name == name


def test_aiohttp_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwks_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"token_jwks_public_endpoint needs aiohttp: pip install 'wavecast\[jwks\]'"):
        JWKS(
            "http://127.0.0.1/", refresh_interval=1, min_refresh_interval=1, timeout=1, max_response_size=1, max_keys=1
        )


# --- verifying tokens with the set --------------------------------------------------------


async def test_tokens_of_each_key_type(endpoint: JWKSServer) -> None:
    endpoint.keys = [A, EC, OKP]
    tokens = TokenVerifier(jwks=cache(endpoint))
    assert tokens.enabled
    for key in (A, EC, OKP):
        assert (await tokens.connect_token(key.sign("7"), 0)).user == "7"
        token = key.sign("7", channel="chat:1")
        assert (await tokens.subscribe_token(token, 0, user="7", channel="chat:1")).channel == "chat:1"


async def test_rsa_key_verifies_its_family(endpoint: JWKSServer) -> None:
    tokens = TokenVerifier(jwks=cache(endpoint))
    for algorithm in ("RS384", "PS256"):
        token = jwt.encode({"sub": "7"}, A.private, algorithm=algorithm, headers={"kid": "key-a"})
        assert (await tokens.connect_token(token, 0)).user == "7"


async def refused(tokens: TokenVerifier, token: str) -> str:
    """Check that ``token`` is refused as connection (3500) and subscription (103) token; the reason."""
    with pytest.raises(DisconnectError) as exc_info:
        await tokens.connect_token(token, 0)
    assert exc_info.value.disconnect.code == 3500
    with pytest.raises(CommandError) as command_error:
        await tokens.subscribe_token(token, 0, user="7", channel="chat:1")
    assert command_error.value.error.code == 103
    return str(exc_info.value.__cause__)


async def test_tokens_the_set_does_not_verify(endpoint: JWKSServer) -> None:
    endpoint.keys = [A, {**EC.jwk(), "alg": "ES256"}]
    tokens = TokenVerifier(jwks=cache(endpoint))
    reason = await refused(tokens, jwt.encode({"sub": "7"}, A.private, algorithm="RS256"))
    assert reason == "a token without a kid header, where keys come from a JWKS endpoint"
    reason = await refused(tokens, B.sign("7"))
    assert reason == f"no key 'key-b' in the JWKS of {endpoint.url}"
    reason = await refused(tokens, B.sign("7", kid="key-a", channel="chat:1"))
    assert reason.startswith("invalid token: Signature verification failed")
    reason = await refused(tokens, jwt.encode({"sub": "7"}, SECRET, algorithm="HS256", headers={"kid": "key-a"}))
    assert reason == "key 'key-a' doesn't verify 'HS256' tokens"
    reason = await refused(tokens, jwt.encode({"sub": "7"}, A.private, algorithm="RS256", headers={"kid": "key-ec"}))
    assert reason == "key 'key-ec' doesn't verify 'RS256' tokens"


async def test_the_static_keys_are_not_used_beside_the_set(endpoint: JWKSServer) -> None:
    tokens = TokenVerifier(hmac_secret=SECRET, jwks=cache(endpoint))
    await refused(tokens, make_token("7"))
    assert (await tokens.connect_token(A.sign("7"), 0)).user == "7"
