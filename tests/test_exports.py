from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import wavecast
import wavecast.asyncio
import wavecast.protocol


def test_top_level_names_exist() -> None:
    for name in wavecast.__all__:
        assert hasattr(wavecast, name), name


def test_no_duplicates_in_all() -> None:
    for module in (wavecast, wavecast.asyncio, wavecast.protocol):
        assert len(module.__all__) == len(set(module.__all__)), module.__name__


def _private(name: str) -> bool:
    """Modules whose name starts with ``_`` are internal, like the C extensions."""
    return name.rsplit(".", 1)[-1].startswith("_")


def test_every_module_declares_all() -> None:
    for info in pkgutil.walk_packages(wavecast.__path__, "wavecast."):
        if _private(info.name):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_package_reexports_its_submodules() -> None:
    for package in (wavecast.asyncio, wavecast.protocol):
        exported = set(package.__all__)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if _private(info.name):
                continue
            module = importlib.import_module(info.name)
            missing = set(module.__all__) - exported
            assert not missing, f"{info.name} exports {missing} that {package.__name__} doesn't"


def test_node_and_config_are_reexported() -> None:
    from wavecast.realtime import Node
    from wavecast.server.config import Config

    assert wavecast.Node is Node
    assert wavecast.Config is Config
    assert {"Node", "Config"} <= set(dir(wavecast))
    with pytest.raises(AttributeError, match="has no attribute 'Nodes'"):
        wavecast.Nodes  # type: ignore[attr-defined]  # noqa: B018


async def test_wavecast_node_works() -> None:
    config = wavecast.Config(client={"token_hmac_secret_key": "x" * 32})
    async with wavecast.Node(config.node_config()) as node:
        assert node.started
        assert node.config.token_hmac_secret_key == "x" * 32
        assert await node.publish("chat", {"text": "nobody listens"}) is None
    assert not node.started


def test_import_wavecast_loads_no_optional_dependency() -> None:
    # Optional dependencies load with what needs them: jwt, redis and prometheus_client not before.
    script = (
        "import sys, wavecast\n"
        "heavy = ('jwt', 'redis', 'prometheus_client')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "wavecast.Node\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    before, after = result.stdout.splitlines()
    assert before == "[]"
    assert after == "['jwt']"
