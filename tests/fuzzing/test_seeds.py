"""Every fuzz target has seeds, in its input layout, that run clean through it."""

from __future__ import annotations

import re

import pytest

from .targets import FUZZING, SEEDS, TARGETS, load


def test_run_sh_fuzzes_every_target_from_its_seeds() -> None:
    # run.sh used to pass a seeds folder that didn't exist, and libFuzzer exited at once.
    scripts = set(re.findall(r'^  "[\w-]+:(\w+):', (FUZZING / "run.sh").read_text(), re.MULTILINE))
    assert scripts == set(TARGETS)
    for target in TARGETS:
        assert any((SEEDS / target).iterdir()), f"no seeds for {target}"


@pytest.mark.parametrize(
    ("target", "seed"), [(target, path.name) for target in TARGETS for path in sorted((SEEDS / target).iterdir())]
)
def test_seed_runs_clean(target: str, seed: str) -> None:
    load(target).test_one_input((SEEDS / target / seed).read_bytes())
