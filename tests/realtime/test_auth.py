"""auth: connection and subscription tokens signed with HS256, RS256 and ES256."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wavecast.exceptions import CommandError, DisconnectError
from wavecast.realtime.auth import ConnectToken, SubscribeToken, TokenVerifier, encode_json_claim

from ..support.tokens import SECRET

NOW = 1_700_000_000.0


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def unsigned(claims: dict[str, Any]) -> str:
    """Return a token with ``"alg": "none"`` and no signature."""
    token: str = jwt.encode(claims, None, algorithm=None)  # type: ignore[arg-type]
    return token


def verifier(**kwargs: Any) -> TokenVerifier:
    return TokenVerifier(hmac_secret=SECRET, **kwargs)


async def connect_error(token: str, tokens: TokenVerifier | None = None) -> DisconnectError:
    with pytest.raises(DisconnectError) as exc_info:
        await (tokens or verifier()).connect_token(token, NOW)
    assert exc_info.value.disconnect.code == 3500
    assert exc_info.value.__cause__ is not None
    return exc_info.value


# --- connection tokens --------------------------------------------------------------------


async def test_hs256_connect_token() -> None:
    token = hs256(
        {
            "sub": "42",
            "exp": int(NOW) + 60,
            "info": {"name": "Ann"},
            "meta": {"plan": "pro"},
            "channels": ["news", "chat:1"],
            "subs": {"chat:2": {}},
        }
    )
    assert await verifier().connect_token(token, NOW) == ConnectToken(
        user="42",
        expire_at=int(NOW) + 60,
        info=b'{"name":"Ann"}',
        channels=("news", "chat:1"),
        subs={"chat:2": {}},
        meta=b'{"plan":"pro"}',
    )


async def test_minimal_connect_token() -> None:
    assert await verifier().connect_token(hs256({}), NOW) == ConnectToken(user="")
    assert await verifier().connect_token(hs256({"sub": "42"}), NOW) == ConnectToken(user="42")


async def test_rs256_connect_token() -> None:
    tokens = TokenVerifier(rsa_public_key=public_pem(rsa_key()))
    token = jwt.encode({"sub": "42"}, rsa_key(), algorithm="RS256")
    assert (await tokens.connect_token(token, NOW)).user == "42"


async def test_es256_connect_token() -> None:
    tokens = TokenVerifier(ecdsa_public_key=public_pem(ec_key()))
    token = jwt.encode({"sub": "42"}, ec_key(), algorithm="ES256")
    assert (await tokens.connect_token(token, NOW)).user == "42"


async def test_every_algorithm_at_once() -> None:
    tokens = TokenVerifier(
        hmac_secret=SECRET, rsa_public_key=public_pem(rsa_key()), ecdsa_public_key=public_pem(ec_key())
    )
    assert (await tokens.connect_token(hs256({"sub": "1"}), NOW)).user == "1"
    assert (await tokens.connect_token(jwt.encode({"sub": "2"}, rsa_key(), algorithm="RS256"), NOW)).user == "2"
    assert (await tokens.connect_token(jwt.encode({"sub": "3"}, ec_key(), algorithm="ES256"), NOW)).user == "3"


async def test_enabled() -> None:
    assert not TokenVerifier().enabled
    assert verifier().enabled
    assert TokenVerifier(rsa_public_key=public_pem(rsa_key())).enabled
    assert TokenVerifier(ecdsa_public_key=public_pem(ec_key())).enabled


async def test_expired_connect_token() -> None:
    for exp in (int(NOW), int(NOW) - 1):
        with pytest.raises(CommandError) as exc_info:
            await verifier().connect_token(hs256({"sub": "42", "exp": exp}), NOW)
        assert exc_info.value.error.code == 109


async def test_not_yet_expired_connect_token() -> None:
    assert (await verifier().connect_token(hs256({"sub": "42", "exp": int(NOW) + 1}), NOW)).expire_at == int(NOW) + 1


async def test_bad_signature() -> None:
    await connect_error(hs256({"sub": "42"}, secret="another-secret-long-enough-for-hs256-keys"))
    token = hs256({"sub": "42"})
    header, payload, signature = token.split(".")
    await connect_error(f"{header}.{payload}.{signature[::-1]}")


async def test_tampered_claims() -> None:
    header, _, signature = hs256({"sub": "42"}).split(".")
    _, payload, _ = hs256({"sub": "admin"}, secret="another-secret-long-enough-for-hs256-keys").split(".")
    await connect_error(f"{header}.{payload}.{signature}")


async def test_algorithm_without_a_key() -> None:
    await connect_error(jwt.encode({"sub": "42"}, rsa_key(), algorithm="RS256"))
    await connect_error(jwt.encode({"sub": "42"}, SECRET * 2, algorithm="HS512"))
    await connect_error(hs256({"sub": "42"}), TokenVerifier(rsa_public_key=public_pem(rsa_key())))


async def test_none_algorithm() -> None:
    await connect_error(unsigned({"sub": "42"}))
    await connect_error(unsigned({"sub": "42"}), TokenVerifier())


async def test_hmac_signed_with_the_public_key() -> None:
    # The classic confusion: an HS256 token whose secret is the server's RSA public key.
    tokens = TokenVerifier(hmac_secret=SECRET, rsa_public_key=public_pem(rsa_key()))
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(b'{"sub":"42"}').decode()
    signature = hmac.new(public_pem(rsa_key()).encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    await connect_error(f"{header}.{payload}.{jwt.utils.base64url_encode(signature).decode()}", tokens)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.e30"])
async def test_malformed_token(token: str) -> None:
    await connect_error(token)


async def test_header_with_a_non_string_algorithm() -> None:
    header = jwt.utils.base64url_encode(b'{"alg":1}').decode()
    await connect_error(f"{header}.e30.")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 42},
        {"sub": None},
        {"channels": "news"},
        {"channels": ["news", 1]},
        {"subs": ["news"]},
        {"exp": "tomorrow"},
        {"exp": -1},
        {"iat": "yesterday"},
        {"nbf": NOW + 3600 * 24 * 365 * 100},
    ],
)
async def test_claims_of_the_wrong_type(claims: dict[str, Any]) -> None:
    await connect_error(hs256(claims))


async def test_connect_token_with_a_channel_claim() -> None:
    # A subscription token is no connection token, as Centrifugo has it: 3500, even when expired.
    await connect_error(hs256({"sub": "42", "channel": "chat:1"}))
    await connect_error(hs256({"sub": "42", "channel": "chat:1", "exp": int(NOW) - 1}))
    await connect_error(hs256({"sub": "42", "channel": ["chat:1"]}))


async def test_connect_token_with_an_empty_channel_claim() -> None:
    # Centrifugo refuses a non-empty channel only: an empty one names no channel.
    assert (await verifier().connect_token(hs256({"sub": "42", "channel": ""}), NOW)).user == "42"
    assert (await verifier().connect_token(hs256({"sub": "42", "channel": None}), NOW)).user == "42"


async def test_audience() -> None:
    tokens = verifier(audience="wavecast")
    assert (await tokens.connect_token(hs256({"sub": "42", "aud": "wavecast"}), NOW)).user == "42"
    assert (await tokens.connect_token(hs256({"sub": "42", "aud": ["other", "wavecast"]}), NOW)).user == "42"
    await connect_error(hs256({"sub": "42", "aud": "other"}), tokens)
    await connect_error(hs256({"sub": "42"}), tokens)


async def test_audience_is_ignored_when_not_configured() -> None:
    assert (await verifier().connect_token(hs256({"sub": "42", "aud": "anything"}), NOW)).user == "42"


async def test_issuer() -> None:
    tokens = verifier(issuer="https://auth.example.com")
    assert (await tokens.connect_token(hs256({"sub": "42", "iss": "https://auth.example.com"}), NOW)).user == "42"
    await connect_error(hs256({"sub": "42", "iss": "https://evil.example.com"}), tokens)
    await connect_error(hs256({"sub": "42"}), tokens)


async def test_issuer_is_ignored_when_not_configured() -> None:
    assert (await verifier().connect_token(hs256({"sub": "42", "iss": "anyone"}), NOW)).user == "42"


async def test_expiry_is_checked_against_the_given_time() -> None:
    token = hs256({"sub": "42", "exp": int(time.time()) - 3600})
    assert (await verifier().connect_token(token, time.time() - 7200)).user == "42"


# --- subscription tokens ------------------------------------------------------------------


async def test_subscribe_token() -> None:
    token = hs256({"sub": "42", "channel": "chat:1", "exp": int(NOW) + 60, "info": {"role": "admin"}})
    assert await verifier().subscribe_token(token, NOW, user="42", channel="chat:1") == SubscribeToken(
        user="42", channel="chat:1", expire_at=int(NOW) + 60, info=b'{"role":"admin"}'
    )


async def test_anonymous_subscribe_token() -> None:
    token = hs256({"channel": "chat:1"})
    assert await verifier().subscribe_token(token, NOW, user="", channel="chat:1") == SubscribeToken(
        user="", channel="chat:1"
    )


@pytest.mark.parametrize(("user", "channel"), [("43", "chat:1"), ("", "chat:1"), ("42", "chat:2"), ("42", "")])
async def test_subscribe_token_for_another_user_or_channel(user: str, channel: str) -> None:
    token = hs256({"sub": "42", "channel": "chat:1"})
    with pytest.raises(CommandError) as exc_info:
        await verifier().subscribe_token(token, NOW, user=user, channel=channel)
    assert exc_info.value.error.code == 103


@pytest.mark.parametrize("channel", ["chat:1", ""])
async def test_connection_token_as_a_subscribe_token(channel: str) -> None:
    with pytest.raises(CommandError) as exc_info:
        await verifier().subscribe_token(hs256({"sub": "42"}), NOW, user="42", channel=channel)
    assert exc_info.value.error.code == 103


@pytest.mark.parametrize("claim", ["", None])
async def test_subscribe_token_with_an_empty_channel(claim: str | None) -> None:
    with pytest.raises(CommandError) as exc_info:
        await verifier().subscribe_token(hs256({"sub": "42", "channel": claim}), NOW, user="42", channel="")
    assert exc_info.value.error.code == 103


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        hs256({"sub": "42", "channel": "chat:1"}, secret="another-secret-long-enough-for-hs256-keys"),
        unsigned({"sub": "42", "channel": "chat:1"}),
        hs256({"sub": "42", "channel": "chat:1", "exp": "soon"}),
    ],
)
async def test_invalid_subscribe_token(token: str) -> None:
    with pytest.raises(CommandError) as exc_info:
        await verifier().subscribe_token(token, NOW, user="42", channel="chat:1")
    assert exc_info.value.error.code == 103


async def test_subscribe_token_without_keys() -> None:
    with pytest.raises(CommandError) as exc_info:
        await TokenVerifier().subscribe_token(hs256({"sub": "42", "channel": "c"}), NOW, user="42", channel="c")
    assert exc_info.value.error.code == 103


async def test_expired_subscribe_token() -> None:
    token = hs256({"sub": "42", "channel": "chat:1", "exp": int(NOW) - 1})
    with pytest.raises(CommandError) as exc_info:
        await verifier().subscribe_token(token, NOW, user="42", channel="chat:1")
    assert exc_info.value.error.code == 109


async def test_subscribe_token_with_rs256_and_es256() -> None:
    tokens = TokenVerifier(rsa_public_key=public_pem(rsa_key()), ecdsa_public_key=public_pem(ec_key()))
    claims = {"sub": "42", "channel": "chat:1"}
    for key, algorithm in ((rsa_key(), "RS256"), (ec_key(), "ES256")):
        token = jwt.encode(claims, key, algorithm=algorithm)
        assert (await tokens.subscribe_token(token, NOW, user="42", channel="chat:1")).user == "42"


# --- helpers ------------------------------------------------------------------------------


async def test_encode_json_claim() -> None:
    assert encode_json_claim(None) is None
    assert encode_json_claim({"a": [1, "b"]}) == b'{"a":[1,"b"]}'
    assert encode_json_claim("text") == b'"text"'
    assert encode_json_claim(0) == b"0"


async def test_sign_token_makes_what_the_verifier_takes() -> None:
    from wavecast.realtime.auth import sign_token

    verifier = TokenVerifier(hmac_secret=SECRET)
    token = await verifier.connect_token(sign_token(SECRET, "42", now=NOW, info={"name": "Ann"}), NOW)
    assert (token.user, token.expire_at, token.info) == ("42", int(NOW) + 3600, b'{"name":"Ann"}')
    assert (await verifier.connect_token(sign_token(SECRET, "42", ttl=None), NOW)).expire_at == 0
    channel = sign_token(SECRET, "42", ttl=60, now=NOW, channel="chat:1")
    assert (await verifier.subscribe_token(channel, NOW, user="42", channel="chat:1")).expire_at == int(NOW) + 60
