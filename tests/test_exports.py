from __future__ import annotations

import importlib
import pkgutil

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
