"""The benchmarks' node configurations are what ``wavecast serve`` reads."""

from __future__ import annotations

import tomllib

import pytest

from tests.support.tools import ROOT, load_script
from wavecast.server.config import parse_config

NODECONFIG = load_script(ROOT / "bench" / "nodeconfig.py")
STORM = load_script(ROOT / "bench" / "storm.py")
PROXY = load_script(ROOT / "bench" / "proxy.py")


def test_shared_settings_and_overrides() -> None:
    text = NODECONFIG.node_config("s" * 32, server={"workers": 2, "log_level": "info"}, engine={"type": "redis"})
    config = parse_config(tomllib.loads(text))
    assert (config.server.host, config.server.log_level, config.server.workers) == ("127.0.0.1", "info", 2)
    assert config.engine.type == "redis" and config.http_api.insecure
    assert config.client["token_hmac_secret_key"] == "s" * 32 and config.client["user_connection_limit"] is None
    assert config.per_address.max_connections is None and config.per_address.handshake_rate is None
    assert "token_hmac_secret_key" not in parse_config(tomllib.loads(NODECONFIG.node_config(None))).client


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("on", {}),
        ("off", {"admission_connection_rate": None, "admission_connect_rate": None}),
        (
            "100/50:200/20",
            {
                "admission_connection_rate": 100.0,
                "admission_connection_burst": 50,
                "admission_connect_rate": 200.0,
                "admission_connect_burst": 20,
            },
        ),
    ],
)
def test_storm_modes(mode: str, expected: dict[str, object]) -> None:
    config = parse_config(tomllib.loads(STORM.server_config(mode, 8192)))
    assert config.server.backlog == 8192
    assert {key: value for key, value in config.client.items() if key.startswith("admission")} == expected


def test_proxy_modes() -> None:
    token = parse_config(tomllib.loads(PROXY.server_config("token", 9000, "http://127.0.0.1:9001/jwks")))
    assert token.client["token_jwks_public_endpoint"] == "http://127.0.0.1:9001/jwks"
    assert "token_hmac_secret_key" not in token.client
    hook = parse_config(tomllib.loads(PROXY.server_config("hook", 9000)))
    assert hook.server.app == "proxy_backend:setup"
    proxy = parse_config(tomllib.loads(PROXY.server_config("proxy", 9000)))
    assert proxy.proxy.connect.endpoint == "http://127.0.0.1:9000/centrifugo/connect"
