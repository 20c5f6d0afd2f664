"""Third-party programs the tests run: present, or explained.

A missing program skips its tests with a reason on a developer's machine, and fails them when
``CI=true``, so that CI can't pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "ROOT", "haproxy", "nats_server", "node", "redis_server", "require"]

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def require(condition: object, reason: str) -> None:
    """Skip the test when ``condition`` is false, or fail it under CI."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
        pytest.skip(reason)


def node(*packages: str) -> str:
    """Return the path of ``node``, with ``packages`` installed in ``node_modules`` by ``npm ci``."""
    path = shutil.which("node")
    require(path, "node isn't installed")
    for package in packages:
        installed = (ROOT / "node_modules" / package / "package.json").is_file()
        require(installed, f"the {package} package is missing: run `npm ci`")
    assert path is not None
    return path


def redis_server() -> str:
    """Return the path of ``redis-server``."""
    path = shutil.which("redis-server")
    require(path, "redis-server is not installed (`make test` installs it)")
    assert path is not None
    return path


def redis_cli() -> str:
    """Return the path of ``redis-cli``, installed with redis-server."""
    path = shutil.which("redis-cli")
    require(path, "redis-cli is not installed (`make test` installs it)")
    assert path is not None
    return path


def _system_program(name: str) -> str:
    """Return the path of ``name``, which Debian installs in ``/usr/sbin``, outside a user's ``PATH``."""
    sbin = f"/usr/sbin/{name}"
    path = shutil.which(name) or (sbin if os.access(sbin, os.X_OK) else None)
    require(path, f"{name} is not installed (`make test` installs it)")
    assert path is not None
    return path


def haproxy() -> str:
    """Return the path of ``haproxy``."""
    return _system_program("haproxy")


def nats_server() -> str:
    """Return the path of ``nats-server``."""
    return _system_program("nats-server")
