"""config: every rule ChannelOptions and NodeConfig check, and namespace resolution."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from wavecast.exceptions import ConfigError
from wavecast.realtime.config import SLOW_CONSUMER_POLICIES, ChannelOptions, NodeConfig


def test_defaults_are_valid_and_closed() -> None:
    options = ChannelOptions()
    assert not options.history
    assert options.slow_consumer == "disconnect"
    assert not any(
        getattr(options, field.name) for field in dataclasses.fields(options) if field.name.startswith("allow_")
    )
    config = NodeConfig()
    assert config.channel == ChannelOptions()
    assert config.namespaces == {}
    assert not config.allow_anonymous_connect_without_token


def test_slow_consumer_policies() -> None:
    assert SLOW_CONSUMER_POLICIES == ("disconnect", "drop_oldest", "conflate")
    for policy in SLOW_CONSUMER_POLICIES:
        assert ChannelOptions(slow_consumer=policy).slow_consumer == policy


def test_history_property() -> None:
    assert ChannelOptions(history_size=10, history_ttl=60).history
    assert not ChannelOptions().history


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ChannelOptions().presence = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        NodeConfig().name = "x"  # type: ignore[misc]


def test_a_valid_full_namespace() -> None:
    ChannelOptions(
        presence=True,
        join_leave=True,
        force_push_join_leave=True,
        history_size=10,
        history_ttl=60,
        force_positioning=True,
        allow_recovery=True,
        force_recovery=True,
    )
    ChannelOptions(presence=True, history_size=10, history_ttl=60, slow_consumer="conflate", conflation_key_tag="key")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history_size": -1}, "history_size and history_ttl must be 0 or more"),
        ({"history_ttl": -1.0}, "history_size and history_ttl must be 0 or more"),
        ({"history_size": 10}, "history_size and history_ttl must be set together"),
        ({"history_ttl": 60.0}, "history_size and history_ttl must be set together"),
        ({"force_recovery": True}, "recovery and positioning need history"),
        ({"allow_recovery": True}, "recovery and positioning need history"),
        ({"force_positioning": True}, "recovery and positioning need history"),
        ({"join_leave": True}, "join_leave needs presence"),
        ({"force_push_join_leave": True}, "join_leave needs presence"),
        ({"slow_consumer": "block"}, "slow_consumer must be one of disconnect, drop_oldest, conflate, got 'block'"),
        ({"conflation_key_tag": "key"}, "conflation_key_tag needs slow_consumer = 'conflate'"),
        ({"force_recovery_mode": "latest"}, "force_recovery_mode must be 'stream' or 'cache', got 'latest'"),
        (
            {"history_size": 1, "history_ttl": 60.0, "force_recovery_mode": "cache"},
            "force_recovery_mode = 'cache' needs recovery",
        ),
        (
            {"history_size": 1, "history_ttl": 60.0, "allow_recovery": True, "auto_cache_recover": True},
            "auto_cache_recover needs force_recovery and force_recovery_mode = 'cache'",
        ),
        (
            {"history_size": 10, "history_ttl": 60.0, "force_recovery": True, "slow_consumer": "conflate"},
            "slow_consumer = 'conflate' drops publications: it can't go with recovery or positioning",
        ),
        (
            {"history_size": 10, "history_ttl": 60.0, "force_positioning": True, "slow_consumer": "drop_oldest"},
            "slow_consumer = 'drop_oldest' drops publications",
        ),
        (
            {"conflation_key_tag": "key", "slow_consumer": "drop_oldest"},
            "conflation_key_tag needs slow_consumer = 'conflate'",
        ),
        ({"allowed_delta_types": ["xdelta"]}, "allowed_delta_types may hold fossil, got 'xdelta'"),
        (
            {"allowed_delta_types": ["fossil"], "slow_consumer": "conflate"},
            "slow_consumer = 'conflate' drops publications: it can't go with allowed_delta_types",
        ),
    ],
)
def test_channel_options_rules(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        ChannelOptions(**kwargs)
    assert str(exc_info.value).startswith(message)
    assert isinstance(exc_info.value, ValueError)


POSITIVE = [
    "client_queue_max_size",
    "client_channel_limit",
    "user_connection_limit",
    "channel_max_length",
    "client_message_size_limit",
    "presence_ttl",
    "presence_update_interval",
    "command_rate",
    "command_burst",
    "publication_rate",
    "publication_burst",
    "rpc_in_flight_limit",
    "history_max_limit",
    "admission_connection_rate",
    "admission_connection_burst",
    "admission_connect_rate",
    "admission_connect_burst",
    "client_pong_timeout",
    "client_stale_close_delay",
    "client_expired_close_delay",
    "shutdown_timeout",
    "token_jwks_refresh_interval",
    "token_jwks_min_refresh_interval",
    "token_jwks_timeout",
    "token_jwks_max_response_size",
    "token_jwks_max_keys",
]


#: The limits on clients that ``None`` turns off (docs/topics/limits.md).
CAN_BE_OFF = [
    "client_queue_max_size",
    "client_channel_limit",
    "user_connection_limit",
    "channel_max_length",
    "client_message_size_limit",
    "command_rate",
    "publication_rate",
    "rpc_in_flight_limit",
    "history_max_limit",
    "token_jwks_max_response_size",
    "token_jwks_max_keys",
    "admission_connection_rate",
    "admission_connect_rate",
]


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("value", [0, -1])
def test_limits_must_be_positive(name: str, value: int) -> None:
    off = re.escape(" or None (off)") if name in CAN_BE_OFF else ""
    with pytest.raises(ConfigError, match=f"^{name} must be positive{off}, got {value}$"):
        NodeConfig(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("name", POSITIVE)
def test_none_turns_off_the_limits_on_clients_only(name: str) -> None:
    if name in CAN_BE_OFF:
        assert getattr(NodeConfig(**{name: None}), name) is None  # type: ignore[arg-type]
    else:
        with pytest.raises(ConfigError, match=f"^{name} must be positive, got None$"):
            NodeConfig(**{name: None})  # type: ignore[arg-type]


def test_channel_name_allowed() -> None:
    config = NodeConfig(channel_max_length=5)
    assert config.channel_name_allowed("abcde")
    assert not config.channel_name_allowed("abcdef")
    assert not config.channel_name_allowed("")
    assert NodeConfig(channel_max_length=None).channel_name_allowed("x" * 10000)


@pytest.mark.parametrize(
    ("max_limit", "requested", "limit"),
    [(100, 10, 10), (100, 500, 100), (100, -1, 100), (100, 0, 0), (None, 500, 500), (None, -1, None), (None, 0, 0)],
)
def test_history_limit(max_limit: int | None, requested: int, limit: int | None) -> None:
    assert NodeConfig(history_max_limit=max_limit).history_limit(requested) == limit


@pytest.mark.parametrize("name", POSITIVE)
def test_limits_may_be_small(name: str) -> None:
    kwargs: dict[str, Any] = {name: 1}
    if name == "presence_ttl":
        kwargs["presence_update_interval"] = 0.5
    NodeConfig(**kwargs)


def test_ping_interval() -> None:
    assert NodeConfig(client_ping_interval=0).client_ping_interval == 0
    with pytest.raises(ConfigError, match=r"^client_ping_interval must be 0"):
        NodeConfig(client_ping_interval=-1)


@pytest.mark.parametrize("interval", [60.0, 61.0])
def test_presence_update_interval_is_shorter_than_presence_ttl(interval: float) -> None:
    with pytest.raises(ConfigError, match=r"^presence_update_interval must be shorter than presence_ttl$"):
        NodeConfig(presence_ttl=60.0, presence_update_interval=interval)


@pytest.mark.parametrize("namespace", ["", "a:b", "a#b"])
def test_namespace_names(namespace: str) -> None:
    with pytest.raises(ConfigError, match=r"^invalid namespace name: "):
        NodeConfig(namespaces={namespace: ChannelOptions()})


def test_personal_channels_need_their_namespace() -> None:
    with pytest.raises(ConfigError, match=r"^user_subscribe_to_personal needs the namespace 'personal' in namespaces$"):
        NodeConfig(user_subscribe_to_personal=True)
    with pytest.raises(ConfigError, match=r"'me'"):
        NodeConfig(
            user_subscribe_to_personal=True,
            personal_channel_namespace="me",
            namespaces={"personal": ChannelOptions()},
        )
    NodeConfig(user_subscribe_to_personal=True, namespaces={"personal": ChannelOptions()})


def test_channel_options_resolution() -> None:
    chat = ChannelOptions(presence=True)
    news = ChannelOptions(allow_subscribe_for_client=True)
    default = ChannelOptions(allow_subscribe_for_anonymous=True)
    config = NodeConfig(channel=default, namespaces={"chat": chat, "news": news})
    assert config.channel_options("lobby") is default
    assert config.channel_options("lobby#42") is default
    assert config.channel_options("chat:1") is chat
    assert config.channel_options("chat:") is chat
    assert config.channel_options("chat:a:b") is chat
    assert config.channel_options("news:chat:1") is news
    assert config.channel_options("chat") is default
    assert config.channel_options("other:1") is None
    assert config.channel_options(":1") is None


@pytest.mark.parametrize("name", ["token_jwks_public_endpoint", "subscription_token_jwks_public_endpoint"])
@pytest.mark.parametrize("url", ["ftp://keys.example/jwks.json", "keys.example/jwks.json", "https://", "/jwks.json"])
def test_jwks_endpoints_are_http_urls(name: str, url: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} must be an http:// or https:// URL, got {re.escape(repr(url))}$"):
        NodeConfig(separate_subscription_token_config=True, **{name: url})


def test_jwks_endpoints() -> None:
    config = NodeConfig(token_jwks_public_endpoint="https://auth.example.com/.well-known/jwks.json")
    assert config.token_jwks_public_endpoint == "https://auth.example.com/.well-known/jwks.json"
    assert NodeConfig(token_jwks_public_endpoint="http://127.0.0.1:8080/keys").token_jwks_refresh_interval == 300.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("subscription_token_hmac_secret_key", "secret"),
        ("subscription_token_rsa_public_key", "pem"),
        ("subscription_token_ecdsa_public_key", "pem"),
        ("subscription_token_jwks_public_endpoint", "https://auth.example.com/jwks"),
        ("subscription_token_audience", "wavecast"),
        ("subscription_token_issuer", "auth"),
    ],
)
def test_subscription_token_options_need_the_separate_config(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} needs separate_subscription_token_config = true$"):
        NodeConfig(**{name: value})  # type: ignore[arg-type]
    assert getattr(NodeConfig(separate_subscription_token_config=True, **{name: value}), name) == value  # type: ignore[arg-type]
