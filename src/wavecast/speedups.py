"""Load the native speedups of a package, when they are built.

Three optional C extensions mirror hot paths written in Python: ``wavecast.protocol._speedups``
(masking, frame parsing and building, without I/O like the rest of the core),
``wavecast.asyncio._speedups`` (corking a broadcast frame on many connections and writing
it to their sockets) and ``wavecast.realtime._speedups`` (a channel's fan-out, which corks
through the asyncio one). They are built at install time when a compiler is there. wavecast
behaves the same without them, only slower; ``WAVECAST_NO_SPEEDUPS=1`` in the environment
turns them off, which is how the test suite also checks the pure-Python path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["load"]


def load(name: str) -> ModuleType | None:
    """Import the extension module ``name``; ``None`` when it isn't built or is turned off."""
    if os.environ.get("WAVECAST_NO_SPEEDUPS"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
