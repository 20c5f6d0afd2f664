"""``wavecast serve --workers N``: N processes on one port, sharing connections with SO_REUSEPORT.

The parent process only supervises: it forwards SIGTERM and SIGINT to the workers, restarts
a worker that dies unexpectedly, and exits 0 once every worker stopped cleanly.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

__all__ = ["supervise"]

logger = logging.getLogger("wavecast.server")

#: Seconds to wait before restarting a worker that died, so a crash loop doesn't spin.
RESTART_DELAY = 1.0


def supervise(worker_args: Sequence[str], workers: int, *, shutdown_timeout: float) -> int:
    """Run ``workers`` copies of ``python -m wavecast serve <worker_args> --worker <i>`` until a signal.

    Worker ``i`` (from 1) names its node ``<name>_<i>``, and keeps its index when restarted.
    Returns the exit status: 0 when every worker stopped cleanly.
    """
    commands = [
        [sys.executable, "-m", "wavecast", "serve", *worker_args, "--worker", str(i + 1)] for i in range(workers)
    ]
    processes: list[subprocess.Popen[bytes]] = [subprocess.Popen(command) for command in commands]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("supervising %d workers: %s", workers, " ".join(str(p.pid) for p in processes))
    while not stopping:
        time.sleep(0.2)
        for index, process in enumerate(processes):
            status = process.poll()
            if status is not None and not stopping:
                logger.error("worker %d exited with %d; restarting it", process.pid, status)
                time.sleep(RESTART_DELAY)
                if not stopping:
                    processes[index] = subprocess.Popen(commands[index])
    deadline = time.monotonic() + shutdown_timeout + 5
    status = 0
    for process in processes:
        try:
            code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            logger.error("worker %d didn't stop in time; killing it", process.pid)
            process.kill()
            code = process.wait()
        status = status or code
    return status
