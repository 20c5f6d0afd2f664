"""Load the fuzz targets of ``fuzzing/`` as modules, to replay inputs through them without atheris."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

FUZZING = Path(__file__).parents[2] / "fuzzing"
SEEDS = FUZZING / "seeds"

#: The target names, from the files ``fuzzing/fuzz_<name>.py``.
TARGETS = sorted(path.stem.removeprefix("fuzz_") for path in FUZZING.glob("fuzz_*.py"))


def load(name: str) -> ModuleType:
    """Import ``fuzzing/fuzz_<name>.py``, which imports ``harness`` from its folder."""
    if str(FUZZING) not in sys.path:
        sys.path.insert(0, str(FUZZING))
    return importlib.import_module(f"fuzz_{name}")
