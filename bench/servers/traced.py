"""Run a bench server under tracemalloc; each SIGUSR1 writes a snapshot of its Python heap.

Usage: ``WAVECAST_TRACE_TO=/tmp/snap python bench/servers/traced.py SERVER.py ARGS...``. The
n-th SIGUSR1 (from 0) writes ``/tmp/snap.<n>`` (renamed into place once complete), after a
full collection, so that ``bench/memory.py --trace`` compares the heap with and without
its connections, line by line of the code that allocated what they hold.
"""

from __future__ import annotations

import gc
import os
import runpy
import signal
import sys
import tracemalloc
from types import FrameType

tracemalloc.start(int(os.environ.get("WAVECAST_TRACE_FRAMES", "1")))
_target = os.environ["WAVECAST_TRACE_TO"]
_count = 0


def _dump(signum: int, frame: FrameType | None) -> None:
    global _count
    gc.collect()
    path = f"{_target}.{_count}"
    _count += 1
    tracemalloc.take_snapshot().dump(path + ".tmp")
    os.rename(path + ".tmp", path)


signal.signal(signal.SIGUSR1, _dump)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
