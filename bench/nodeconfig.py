"""The configuration file the benchmarks give ``wavecast serve``, built in one place.

Every benchmark node listens on loopback, logs only warnings, opens its HTTP API without a key
and verifies HS256 tokens signed with the benchmark's secret, if it has one. Every client of a benchmark
comes from 127.0.0.x and connects as one user, so the per-address and per-user limits are off:
the node-wide behaviour is what the benchmarks measure. A script adds its own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w


def node_config(secret: str | None, **sections: Mapping[str, Any]) -> str:
    """A benchmark node's ``wavecast.toml``: the shared settings, with ``sections``' keys added
    to (or replacing those of) the section of the same name; a key set to ``False`` turns a
    limit off, as in the file."""
    config: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "log_level": "warning", "shutdown_timeout": 5.0},
        "http_api": {"insecure": True},
        "per_address": {"max_connections": False, "handshake_rate": False},
        "client": {"user_connection_limit": False},
    }
    if secret is not None:
        config["client"]["token_hmac_secret_key"] = secret
    for name, keys in sections.items():
        config.setdefault(name, {}).update(keys)
    return tomli_w.dumps(config)
