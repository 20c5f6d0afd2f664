"""README.md keeps its promises: two commands to start, Make targets that exist, configs that load."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from wavecast.server.config import parse_config

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def test_quick_start_is_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    [commands] = re.findall(r"```sh\n(.*?)```", quick_start, re.DOTALL)
    assert [line.split("#")[0].strip() for line in commands.splitlines()] == ["make run", "make test"]


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    mentioned = set(re.findall(r"`make ([a-z][\w-]*)", README))
    assert {"run", "run-serve", "run-echo", "test", "fuzz"} <= mentioned
    assert mentioned <= targets, mentioned - targets


def test_make_run_serves_the_gallery() -> None:
    makefile = (ROOT / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") :].split("\n\n")[0]
    assert "-m examples.gallery" in run
    assert "python -m examples.gallery" in README and "/chat/" in README


def test_config_excerpts_load() -> None:
    excerpts = [tomllib.loads(text) for text in blocks("toml")]
    assert any({"server", "client", "namespaces"} <= set(data) for data in excerpts)
    for data in excerpts:
        # An excerpt leaves out the API key that a whole configuration needs.
        config = parse_config({"http_api": {"key": "k"}, **data})
        if "namespaces" in data:
            assert config.namespaces["chat"].force_recovery
            assert config.node_config().user_connection_limit == 100
