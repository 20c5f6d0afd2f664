"""README.md names what a fresh machine needs, and where the instruments and secrets are."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from wavecast.cli import starter_config

ROOT = Path(__file__).parents[1]
# With its lines joined, so that a phrase may wrap.
README = " ".join((ROOT / "README.md").read_text().split())
QUICK_START = README.split("## Quick start", 1)[1].split(" ## ", 1)[0]


def test_quick_start_names_the_prerequisites() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert "Python 3.11 or later" in QUICK_START
    for needed in ("npm", "C compiler", "apt-get", "sudo"):
        assert needed in QUICK_START, needed
    # What `make test` installs through apt-get.
    script = (ROOT / "scripts" / "install-system-deps.sh").read_text()
    packages = re.findall(r"missing\+=\((\S+)\)", script)
    assert packages == ["chromium", "redis-server", "haproxy", "nats-server", "postgresql"]
    for package in packages:
        assert package in QUICK_START.lower(), package


def test_quick_start_says_where_the_admin_password_is() -> None:
    config = tomllib.loads(starter_config("wavecast.toml", dev=True))
    assert config["admin"]["enabled"] and config["admin"]["password"]
    assert "`wavecast.toml`" in QUICK_START and "`password` of its `[admin]`" in QUICK_START


def test_instruments_are_in_this_repository() -> None:
    assert "../shared" not in README
    assert not re.search(r"shared (load generator|instrument)", README)
    assert "the load generator in `bench/loadgen/`" in README
    assert "`compliance/autobahn/`" in README
    assert "~/.cache/ws-bench" in README
