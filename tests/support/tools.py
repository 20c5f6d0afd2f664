"""Third-party programs the tests run: present, or explained.

A missing program skips its tests with a reason on a developer's machine, and fails them when
``CI=true``, so that CI can't pass by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "ROOT", "haproxy", "load_script", "nats_server", "node", "redis_server", "require"]

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def require(condition: object, reason: str) -> None:
    """Skip the test when ``condition`` is false, or fail it under CI."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
        pytest.skip(reason)


def load_script(path: Path) -> Any:
    """Import one of the repository's scripts (``bench/``, ``scripts/``), which aren't in a
    package, as a module named after its file; registered in ``sys.modules``, where dataclasses
    look their module up."""
    name = f"wavecast_script_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
