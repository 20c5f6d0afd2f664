"""The protocol core never touches the network or the clock (STYLE.md section 2, point 1)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import wavecast.protocol

FORBIDDEN = {"asyncio", "socket", "ssl", "time", "selectors"}

PACKAGE = Path(wavecast.protocol.__file__).parent

#: The Python modules; the C extension is checked through its source.
MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(wavecast.protocol.__path__, "wavecast.protocol.")
    if (PACKAGE / f"{info.name.rsplit('.', 1)[1]}.py").exists()
)

#: C headers of sockets, clocks, sleeping and file descriptors.
FORBIDDEN_HEADERS = re.compile(
    r"#\s*include\s*<(sys/socket|sys/uio|sys/time|time|unistd|poll|sys/select|sys/epoll)\.h>"
)


def imported_modules(path: Path) -> set[str]:
    """Return the top-level names of every module that ``path`` imports, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            names.update(arg.value.split(".")[0] for arg in node.args if isinstance(arg, ast.Constant))
    return names


def test_every_module_is_scanned() -> None:
    assert "wavecast.protocol.connection" in MODULES
    assert len(MODULES) >= 12


@pytest.mark.parametrize("name", ["wavecast.protocol", *MODULES])
def test_no_io_or_clock_imports(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    forbidden = imported_modules(Path(module.__file__)) & FORBIDDEN
    assert not forbidden, f"{name} imports {', '.join(sorted(forbidden))}"


@pytest.mark.parametrize("source", sorted(PACKAGE.glob("*.c")), ids=lambda path: path.name)
def test_no_io_or_clock_in_the_c_extension(source: Path) -> None:
    found = FORBIDDEN_HEADERS.findall(source.read_text())
    assert not found, f"{source.name} includes {', '.join(found)}"


def test_c_scanner_catches_forbidden_headers() -> None:
    assert FORBIDDEN_HEADERS.findall("#include <Python.h>\n#include <sys/socket.h>\n# include <time.h>") == [
        "sys/socket",
        "time",
    ]


def test_scanner_catches_forbidden_imports(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text(
        "import os, socket\n"
        "from time import monotonic\n"
        "from . import ssl\n"
        "def f():\n"
        "    import asyncio.events\n"
        "    importlib.import_module('selectors')\n"
    )
    assert imported_modules(source) & FORBIDDEN == {"socket", "time", "asyncio", "selectors"}
