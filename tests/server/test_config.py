"""The standalone server's configuration: TOML and environment into one typed Config, with readable errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from wavecast.cli import starter_config
from wavecast.engines.memory import MemoryBroker
from wavecast.exceptions import ConfigError
from wavecast.realtime import ChannelOptions, NodeConfig
from wavecast.server.config import Config, apply_env, load_config, parse_config
from wavecast.server.serve import build_engines

#: The smallest valid configuration: the HTTP API needs a key.
VALID: dict[str, Any] = {"http_api": {"key": "api-key"}}


def errors_of(data: dict[str, Any]) -> list[str]:
    """The lines of the ConfigError that ``data`` raises."""
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    return str(raised.value).splitlines()


def test_defaults() -> None:
    config = parse_config(VALID)
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8000
    assert config.server.allowed_origins == ()
    assert config.admin.enabled is False
    assert (config.admin.login_failure_rate, config.admin.login_failure_burst) == (0.2, 10)
    assert config.demo.enabled is False
    assert config.metrics.enabled is True
    assert config.engine.type == "memory"
    assert config.channel == ChannelOptions()
    assert config.namespaces == {}


# --- unknown keys and sections ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"server": {"prot": 9000}}, "server.prot: unknown key; did you mean 'port'?"),
        ({"websocket": {"compresion": False}}, "websocket.compresion: unknown key; did you mean 'compression'?"),
        (
            {"client": {"token_hmac_secret": "s"}},
            "client.token_hmac_secret: unknown key; did you mean 'token_hmac_secret_key'?",
        ),
        (
            {"namespaces": {"chat": {"presense": True}}},
            "namespaces.chat.presense: unknown key; did you mean 'presence'?",
        ),
        ({"channel": {"history_sise": 10}}, "channel.history_sise: unknown key; did you mean 'history_size'?"),
        ({"server": {"xyzzy": 1}}, "server.xyzzy: unknown key"),
    ],
)
def test_unknown_key_names_the_closest(data: dict[str, Any], message: str) -> None:
    assert errors_of({**VALID, **data}) == [message]


def test_channel_options_under_client_point_to_their_sections() -> None:
    (message,) = errors_of({**VALID, "client": {"namespaces": {}}})
    assert message == "client.namespaces: unknown key; channel options go in [channel] and [namespaces.<name>]"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("sever", "sever: unknown section; did you mean 'server'?"),
        ("namespace", "namespace: unknown section; did you mean 'namespaces'?"),
        ("redis", "redis: unknown section"),
    ],
)
def test_unknown_section(section: str, message: str) -> None:
    assert errors_of({**VALID, section: {}}) == [message]


# --- types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"websocket": {"compression": "yes"}}, "websocket.compression: expected a boolean, got 'yes'"),
        ({"admin": {"enabled": "true"}}, "admin.enabled: expected a boolean, got 'true'"),
        ({"namespaces": {"chat": {"presence": 1}}}, "namespaces.chat.presence: expected a boolean, got 1"),
        # TOML's booleans aren't integers, though Python's are.
        ({"server": {"port": True}}, "server.port: expected an integer, got True"),
        ({"server": {"port": "9000"}}, "server.port: expected an integer, got '9000'"),
        (
            {"client": {"user_connection_limit": 1.5}},
            "client.user_connection_limit: expected an integer or false (off), got 1.5",
        ),
        ({"server": {"shutdown_timeout": False}}, "server.shutdown_timeout: expected a number, got False"),
        ({"http_api": {"key": 123}}, "http_api.key: expected a string, got 123"),
        (
            {"server": {"allowed_origins": "https://a.example"}},
            "server.allowed_origins: expected a list, got 'https://a.example'",
        ),
        ({"server": {"allowed_origins": [1]}}, "server.allowed_origins[0]: expected a string, got 1"),
        ({"namespaces": ["chat"]}, "namespaces: expected a table, got ['chat']"),
        ({"server": "127.0.0.1"}, "server: expected a table, got '127.0.0.1'"),
        (
            {"server": {"log_level": "verbose"}},
            "server.log_level: expected 'debug' or 'info' or 'warning' or 'error', got 'verbose'",
        ),
        (
            {"namespaces": {"chat": {"slow_consumer": "block"}}},
            "namespaces.chat.slow_consumer: expected 'disconnect' or 'drop_oldest' or 'conflate', got 'block'",
        ),
    ],
)
def test_wrong_type(data: dict[str, Any], message: str) -> None:
    assert errors_of({**VALID, **data}) == [message]


def test_float_option_takes_an_integer() -> None:
    config = parse_config({**VALID, "server": {"shutdown_timeout": 3}})
    assert config.server.shutdown_timeout == 3.0
    assert isinstance(config.server.shutdown_timeout, float)


def test_every_problem_is_reported_at_once() -> None:
    messages = errors_of({"server": {"prot": 1, "port": "x"}, "websocket": {"compression": 1}, "sever": {}})
    assert messages == [
        "server.prot: unknown key; did you mean 'port'?",
        "server.port: expected an integer, got 'x'",
        "websocket.compression: expected a boolean, got 1",
        "sever: unknown section; did you mean 'server'?",
    ]


# --- options that conflict ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"namespaces": {"chat": {"history_size": 10}}},
            "namespaces.chat: history_size and history_ttl must be set together",
        ),
        ({"channel": {"history_ttl": 60.0}}, "channel: history_size and history_ttl must be set together"),
        (
            {"namespaces": {"chat": {"join_leave": True}}},
            "namespaces.chat: join_leave needs presence: set presence = true",
        ),
        (
            {"namespaces": {"chat": {"force_recovery": True}}},
            "namespaces.chat: recovery and positioning need history: set history_size and history_ttl",
        ),
        ({"server": {"tls_cert": "cert.pem"}}, "server: tls_cert and tls_key go together"),
        ({"server": {"tls_key": "key.pem"}}, "server: tls_cert and tls_key go together"),
        ({"websocket": {"write_delay": -0.5}}, "websocket.write_delay: expected 0 to 1 second, got -0.5"),
        ({"websocket": {"write_delay": 5}}, "websocket.write_delay: expected 0 to 1 second, got 5.0"),
        (
            {"websocket": {"socket_send_buffer": 100}},
            "websocket.socket_send_buffer: expected 4096 to 67108864 bytes, or false for the kernel's, got 100",
        ),
        ({"server": {"shutdown_delay": -1}}, "server.shutdown_delay: expected 0 to 600 seconds, got -1.0"),
        ({"server": {"port": 0}}, "server.port: expected 1-65535, got 0"),
        ({"server": {"backlog": 0}}, "server.backlog: expected 1 to 65535, got 0"),
        ({"server": {"backlog": 65536}}, "server.backlog: expected 1 to 65535, got 65536"),
        ({"server": {"port": 65536}}, "server.port: expected 1-65535, got 65536"),
        ({"admin": {"enabled": True}}, "admin: the admin page needs a password: set admin.password"),
        (
            {"admin": {"login_failure_rate": 0}},
            "admin.login_failure_rate: expected more than 0, or false for no limit, got 0.0",
        ),
        ({"admin": {"login_failure_burst": 0}}, "admin.login_failure_burst: expected 1 or more, got 0"),
        (
            {"engine": {"memory_max_user_bytes": 0}},
            "engine.memory_max_user_bytes: expected 1 or more, or false for no limit, got 0",
        ),
        (
            {"engine": {"memory_max_idempotent_results": 0}},
            "engine.memory_max_idempotent_results: expected 1 or more, or false for no limit, got 0",
        ),
        ({"client": {"client_ping_interval": -1.0}}, "client: client_ping_interval must be 0 (off) or positive"),
        ({"namespaces": {"a:b": {}}}, "client: invalid namespace name: 'a:b'"),
        (
            {"server": {"trusted_proxies": ["10.0.0.1/8"]}},
            "server.trusted_proxies: expected a network such as '10.0.0.0/8' or '::1', got '10.0.0.1/8': "
            "10.0.0.1/8 has host bits set",
        ),
        (
            {"per_address": {"max_connections": 0}},
            "per_address: max_connections: expected more than 0, or false for no limit, got 0",
        ),
        (
            {"per_address": {"handshake_rate": 0}},
            "per_address: handshake_rate: expected more than 0, or false for no limit, got 0.0",
        ),
        ({"per_address": {"api_burst": 0}}, "per_address: api_burst: expected 1 or more, got 0"),
        ({"per_address": {"ipv6_prefix_length": 129}}, "per_address: ipv6_prefix_length: expected 1 to 128, got 129"),
    ],
)
def test_conflicting_options(data: dict[str, Any], message: str) -> None:
    assert errors_of({**VALID, **data}) == [message]


def test_several_workers_need_a_shared_engine() -> None:
    (message,) = errors_of({**VALID, "server": {"workers": 2}})
    assert message.startswith("server.workers: several workers need a shared engine")
    assert "engine.type = 'memory'" in message


def test_per_address_limits() -> None:
    config = parse_config({**VALID, "server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}})
    assert config.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    section = config.per_address
    assert (section.max_connections, section.handshake_rate, section.handshake_burst) == (10_000, 100.0, 1_000)
    assert (section.api_rate, section.api_burst, section.ipv6_prefix_length) == (1_000.0, 1_000, 64)
    off = parse_config({**VALID, "per_address": {"max_connections": False, "handshake_rate": False, "api_rate": False}})
    assert (off.per_address.max_connections, off.per_address.handshake_rate, off.per_address.api_rate) == (None,) * 3


def test_api_needs_a_key() -> None:
    assert errors_of({}) == ["http_api: the API needs a key: set http_api.key, or http_api.insecure = true"]
    assert parse_config({"http_api": {"insecure": True}}).http_api.key == ""
    assert parse_config({"http_api": {"enabled": False}}).http_api.enabled is False


def test_conflicts_across_sections_are_reported_together() -> None:
    messages = errors_of({"server": {"tls_cert": "cert.pem"}, "admin": {"enabled": True}})
    assert messages == [
        "server: tls_cert and tls_key go together",
        "http_api: the API needs a key: set http_api.key, or http_api.insecure = true",
        "admin: the admin page needs a password: set admin.password",
    ]


# --- files and the environment --------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wavecast.toml"
    path.write_text(text)
    return path


def test_load_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9001\n[http_api]\nkey = "k"\n[namespaces.chat]\npresence = true\n')
    config = load_config(path, environ={})
    assert config.server.port == 9001
    assert config.namespaces == {"chat": ChannelOptions(presence=True)}


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: no such file"):
        load_config(tmp_path / "missing.toml", environ={})


def test_load_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = \n")
    with pytest.raises(ConfigError, match=r"wavecast\.toml: invalid TOML: .*line 2"):
        load_config(path, environ={})


def test_false_turns_a_limit_off(tmp_path: Path) -> None:
    # TOML has no null: false stands for None, which turns a limit off; 0 is refused.
    path = write(
        tmp_path,
        '[http_api]\nkey = "k"\n[client]\ncommand_rate = false\nclient_channel_limit = false\n'
        "user_connection_limit = 10\n",
    )
    node = load_config(path, environ={"WAVECAST_CLIENT__PUBLICATION_RATE": "false"}).node_config()
    assert (node.command_rate, node.client_channel_limit, node.publication_rate) == (None, None, None)
    assert node.user_connection_limit == 10
    assert node.history_max_limit == 1000  # left out: the finite default
    with pytest.raises(ConfigError, match=r"client: command_rate must be positive or None \(off\), got 0"):
        load_config(None, environ={"WAVECAST_HTTP_API__KEY": "k", "WAVECAST_CLIENT__COMMAND_RATE": "0"})
    with pytest.raises(ConfigError, match=r"client.command_rate: expected a number or false \(off\), got True"):
        load_config(None, environ={"WAVECAST_HTTP_API__KEY": "k", "WAVECAST_CLIENT__COMMAND_RATE": "true"})
    admin = load_config(None, environ={"WAVECAST_HTTP_API__KEY": "k", "WAVECAST_ADMIN__LOGIN_FAILURE_RATE": "false"})
    assert admin.admin.login_failure_rate is None
    engine = parse_config({**VALID, "engine": {"memory_max_streams": False, "memory_max_bytes": 2**20}}).engine
    assert (engine.memory_max_streams, engine.memory_max_bytes, engine.memory_max_user_bytes) == (None, 2**20, 2**24)
    assert engine.memory_max_idempotent_results == 100_000
    websocket = parse_config({**VALID, "websocket": {"socket_send_buffer": False}}).websocket
    assert (websocket.socket_send_buffer, parse_config(VALID).websocket.socket_send_buffer) == (None, 131072)
    # Where None isn't a value, false is a wrong type as before.
    with pytest.raises(ConfigError, match=r"client.presence_ttl: expected a number, got False"):
        parse_config({"http_api": {"key": "k"}, "client": {"presence_ttl": False}})
    # A boolean option keeps its false.
    assert (
        parse_config({"http_api": {"key": "k"}, "namespaces": {"c": {"presence": False}}}).namespaces["c"].presence
        is False
    )


def test_env_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9001\n[http_api]\nkey = "k"\n[namespaces.chat]\npresence = false\n')
    environ = {
        "WAVECAST_SERVER__PORT": "9002",
        "WAVECAST_NAMESPACES__CHAT__PRESENCE": "true",
        "WAVECAST_NAMESPACES__CHAT__JOIN_LEAVE": "true",
        "WAVECAST_SERVER__ALLOWED_ORIGINS": '["https://a.example", "https://b.example"]',
        "WAVECAST_SERVER__LOG_LEVEL": "debug",
        # Not an override: no section.
        "WAVECAST_TESTS_TIMEOUT_FACTOR": "3",
        "OTHER__PORT": "1",
    }
    config = load_config(path, environ=environ)
    assert config.server.port == 9002
    assert config.namespaces["chat"].presence is True
    assert config.namespaces["chat"].join_leave is True
    assert config.server.allowed_origins == ("https://a.example", "https://b.example")
    assert config.server.log_level == "debug"


def test_env_creates_sections() -> None:
    config = load_config(None, environ={"WAVECAST_HTTP_API__KEY": "k", "WAVECAST_NAMESPACES__NEWS__PRESENCE": "true"})
    assert config.namespaces == {"news": ChannelOptions(presence=True)}


@pytest.mark.parametrize("text", ["123456", "true", "1e3", "2024-01-01"])
def test_env_string_options_keep_their_text(text: str) -> None:
    """A key or password of digits, or one reading as a TOML boolean or date, stays a string."""
    environ = {
        "WAVECAST_HTTP_API__KEY": text,
        "WAVECAST_ADMIN__ENABLED": "true",
        "WAVECAST_ADMIN__PASSWORD": text,
        "WAVECAST_CLIENT__TOKEN_HMAC_SECRET_KEY": text,
    }
    config = load_config(None, environ=environ)
    assert config.http_api.key == text
    assert config.admin.password == text
    assert config.node_config().token_hmac_secret_key == text


@pytest.mark.parametrize(("text", "value"), [('"quoted"', "quoted"), ('""', ""), ("", ""), ("'single'", "single")])
def test_env_quoted_strings(text: str, value: str) -> None:
    config = load_config(
        None, environ={"WAVECAST_HTTP_API__INSECURE": "true", "WAVECAST_ENGINE__MEMORY_SNAPSHOT": text}
    )
    assert config.engine.memory_snapshot == value


def test_env_wrong_type_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^server\.port: expected an integer, got 'nine'$"):
        load_config(None, environ={"WAVECAST_HTTP_API__KEY": "k", "WAVECAST_SERVER__PORT": "nine"})


def test_env_under_a_value_that_isnt_a_table() -> None:
    with pytest.raises(ConfigError, match=r"WAVECAST_SERVER__PORT__X: server\.port isn't a table"):
        apply_env({"server": {"port": 1}}, {"WAVECAST_SERVER__PORT__X": "1"})


def test_apply_env_leaves_the_data_alone() -> None:
    data = {"server": {"port": 1}}
    apply_env(data, {"WAVECAST_SERVER__PORT": "2"})
    assert data == {"server": {"port": 1}}


def test_overrides_beat_env_and_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9001\n[http_api]\nkey = "k"\n')
    config = load_config(path, environ={"WAVECAST_SERVER__PORT": "9002"}, overrides={"server": {"port": 9003}})
    assert config.server.port == 9003
    with pytest.raises(ConfigError, match=r"server\.port: expected 1-65535, got 0"):
        load_config(path, environ={}, overrides={"server": {"port": 0}})


# --- node_config() ----------------------------------------------------------------------------------


def test_node_config_mapping() -> None:
    config = parse_config(
        {
            **VALID,
            "server": {"allowed_origins": ["https://app.example"]},
            "client": {
                "token_hmac_secret_key": "secret",
                "allow_anonymous_connect_without_token": True,
                "client_channel_limit": 7,
                "name": "node-a",
            },
            "channel": {"allow_subscribe_for_client": True},
            "namespaces": {"chat": {"presence": True, "history_size": 5, "history_ttl": 60}},
        }
    )
    node_config = config.node_config()
    assert isinstance(node_config, NodeConfig)
    assert node_config.token_hmac_secret_key == "secret"
    assert node_config.allow_anonymous_connect_without_token is True
    assert node_config.client_channel_limit == 7
    assert node_config.name == "node-a"
    assert node_config.allowed_origins == ["https://app.example"]
    assert node_config.channel == ChannelOptions(allow_subscribe_for_client=True)
    assert node_config.namespaces == {"chat": ChannelOptions(presence=True, history_size=5, history_ttl=60.0)}
    assert node_config.channel_options("chat:room") == config.namespaces["chat"]
    assert node_config.channel_options("nope:room") is None
    # Everything not set keeps NodeConfig's default.
    assert node_config.client_ping_interval == NodeConfig().client_ping_interval


def test_jwks_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[http_api]\nkey = "k"\n[client]\ntoken_jwks_public_endpoint = "https://auth.example.com/jwks"\n'
        "token_jwks_refresh_interval = 60\ntoken_jwks_max_keys = false\n"
        "separate_subscription_token_config = true\n"
        'subscription_token_jwks_public_endpoint = "https://subs.example.com/jwks"\n',
    )
    node = load_config(path, environ={"WAVECAST_CLIENT__TOKEN_JWKS_TIMEOUT": "2.5"}).node_config()
    assert node.token_jwks_public_endpoint == "https://auth.example.com/jwks"
    assert node.subscription_token_jwks_public_endpoint == "https://subs.example.com/jwks"
    assert (node.token_jwks_refresh_interval, node.token_jwks_timeout) == (60.0, 2.5)
    assert (node.token_jwks_max_keys, node.token_jwks_max_response_size) == (None, 2**20)
    with pytest.raises(ConfigError, match=r"token_jwks_public_endpoint must be an http:// or https:// URL, got 'jwks'"):
        parse_config({**VALID, "client": {"token_jwks_public_endpoint": "jwks"}})
    with pytest.raises(ConfigError, match=r"subscription_token_issuer needs separate_subscription_token_config"):
        parse_config({**VALID, "client": {"subscription_token_issuer": "auth"}})


def test_node_config_without_origins_checks_the_origin() -> None:
    assert parse_config(VALID).node_config().allowed_origins is None


def test_config_construction_has_no_side_effects() -> None:
    # No file, no environment, no checks across sections: only parse_config() checks.
    assert Config().server.port == 8000


# --- the starter file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dev", [False, True])
def test_starter_config_parses(dev: bool) -> None:
    text = starter_config("wavecast.toml", dev=dev)
    config = parse_config(tomllib.loads(text))
    assert config.demo.enabled is dev
    assert config.admin.enabled is dev
    assert config.admin.password
    assert config.http_api.key
    assert len(config.node_config().token_hmac_secret_key) >= 32
    assert config.engine.memory_snapshot == (".wavecast/history.json" if dev else "")
    chat = config.namespaces["chat"]
    assert chat.presence and chat.join_leave and chat.history
    assert config.node_config().channel_options("chat:lobby") == chat


def test_starter_config_secrets_are_fresh() -> None:
    first = parse_config(tomllib.loads(starter_config("a.toml", dev=False)))
    second = parse_config(tomllib.loads(starter_config("a.toml", dev=False)))
    assert first.http_api.key != second.http_api.key
    assert first.node_config().token_hmac_secret_key != second.node_config().token_hmac_secret_key


def test_event_proxies() -> None:
    config = parse_config(
        {
            **VALID,
            "proxy": {"connect": {"endpoint": "http://app/connect", "http_headers": ["Cookie"], "timeout": 2}},
            "proxies": {"billing": {"endpoint": "https://billing/rpc"}},
            "namespaces": {"chat": {"subscribe_proxy_enabled": True, "subscribe_proxy_name": "billing"}},
            "rpc": {"namespaces": {"billing": {"proxy_enabled": True, "proxy_name": "billing"}}},
        }
    )
    assert (config.proxy.connect.timeout, config.proxy.connect.http_headers) == (2.0, ("Cookie",))
    assert config.namespaces["chat"].subscribe_proxy_name == "billing"
    assert config.rpc.namespaces["billing"].proxy_enabled
    assert config.proxy.max_response_size == 2**20


def test_event_proxy_problems_name_the_field() -> None:
    assert errors_of(
        {
            **VALID,
            "proxy": {"connect": {"endpoint": "grpc://app:10000", "timeout": 0}, "max_response_size": 0},
            "proxies": {"default": {"endpoint": "http://x"}},
            "channel": {"publish_proxy_enabled": True},
            "rpc": {"without_namespace": {"proxy_enabled": True, "proxy_name": "missing"}},
        }
    ) == [
        "proxy.connect.endpoint: expected an http:// or https:// URL, got 'grpc://app:10000'",
        "proxy.connect.timeout: expected more than 0 and at most 60 seconds, got 0.0",
        "proxies.default: the name 'default' means the proxies of [proxy]; choose another",
        "proxy.max_response_size: expected 1 or more, got 0",
        "channel.publish_proxy_name: the publish proxy 'default' has no endpoint: set proxy.publish.endpoint",
        "rpc.without_namespace.proxy_name: the rpc proxy 'missing' has no endpoint: set proxies.missing.endpoint",
    ]


def test_a_node_is_named_after_its_host_and_port_and_each_worker_after_its_index() -> None:
    import socket

    config = parse_config({**VALID, "server": {"port": 8123}})
    assert config.node_config().name == f"{socket.gethostname()}_8123"
    assert config.worker(2).node_config().name == f"{socket.gethostname()}_8123_2"
    named = parse_config({**VALID, "client": {"name": "edge"}})
    assert (named.node_config().name, named.worker(1).node_config().name) == ("edge", "edge_1")


def test_the_memory_engine_takes_its_limits_from_the_engine_section() -> None:
    engine = {"memory_max_streams": 7, "memory_max_bytes": False, "memory_max_idempotent_results": 3}
    broker, _ = build_engines(parse_config({**VALID, "engine": engine}))
    assert isinstance(broker, MemoryBroker)
    assert (broker.max_streams, broker.max_bytes, broker.max_idempotent_results) == (7, None, 3)
