"""Configurations of the servers under test: the standalone server's, as tables merged into
:data:`BASE_CONFIG` and written as TOML, and a :class:`~wavecast.realtime.NodeConfig`'s."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from wavecast.realtime import ChannelOptions, NodeConfig
from wavecast.server.config import Config, parse_config

from .tokens import SECRET

__all__ = [
    "ADMIN_PASSWORD",
    "API_KEY",
    "BASE_CONFIG",
    "RECOVERING",
    "make_config",
    "merge",
    "node_config",
    "open_channel",
    "write_config",
]

API_KEY = "wavecast-tests-api-key"
ADMIN_PASSWORD = "wavecast-tests-admin-password"

#: What every standalone test server starts from: a ``chat`` namespace with presence and
#: history, and a ``news`` namespace with neither.
BASE_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "shutdown_timeout": 2.0},
    "client": {"token_hmac_secret_key": SECRET},
    "http_api": {"key": API_KEY},
    "admin": {"enabled": True, "password": ADMIN_PASSWORD},
    "channel": {"allow_subscribe_for_client": True},
    "namespaces": {
        "chat": {
            "presence": True,
            "join_leave": True,
            "history_size": 20,
            "history_ttl": 300.0,
            "allow_subscribe_for_client": True,
            "allow_publish_for_subscriber": True,
            "allow_presence_for_subscriber": True,
            "allow_history_for_subscriber": True,
        },
        "news": {"allow_subscribe_for_client": True},
    },
}


#: A namespace (of a ``namespaces`` section) whose subscribers may subscribe and always recover
#: from a history of 50 publications.
RECOVERING: dict[str, Any] = {
    "allow_subscribe_for_client": True,
    "history_size": 50,
    "history_ttl": 300.0,
    "force_recovery": True,
}


def merge(base: Mapping[str, Any], *overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with each of ``overrides`` merged in, in turn, table by table."""
    result = dict(base)
    for override in overrides:
        for key, value in override.items():
            if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
                result[key] = merge(result[key], value)
            else:
                result[key] = value
    return result


def make_config(**sections: Any) -> Config:
    """A :class:`Config` parsed from :data:`BASE_CONFIG` with ``sections`` merged in, on port 0."""
    config = parse_config(merge(BASE_CONFIG, sections))
    return dataclasses.replace(config, server=dataclasses.replace(config.server, port=0))


def write_config(directory: Path, data: Mapping[str, Any], name: str = "wavecast.toml") -> Path:
    """Write ``data`` as the TOML file ``directory/name``; return its path."""
    path = directory / name
    path.write_text(tomli_w.dumps(data))
    return path


def node_config(**kwargs: Any) -> NodeConfig:
    """A :class:`NodeConfig` that verifies tokens signed with :data:`SECRET`; ``kwargs`` override the defaults."""
    kwargs.setdefault("token_hmac_secret_key", SECRET)
    return NodeConfig(**kwargs)


def open_channel(*, presence: bool = False, **options: Any) -> ChannelOptions:
    """Channels whose subscribers publish and read a history of 100 publications kept a minute,
    and with ``presence``, see who else is there; ``options`` add to these or override them."""
    defaults: dict[str, Any] = {
        "allow_subscribe_for_client": True,
        "allow_publish_for_subscriber": True,
        "history_size": 100,
        "history_ttl": 60,
        "allow_history_for_subscriber": True,
    }
    if presence:
        defaults.update(presence=True, allow_presence_for_subscriber=True)
    return ChannelOptions(**{**defaults, **options})
