"""The resident memory of a server process, over a stretch of a test: a measurement, never a timing."""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import struct
import termios
from typing import Any

from .timing import MS

__all__ = ["KIB", "MEASUREMENTS", "MIB", "Memory", "bounded", "kernel_send_queue", "kernel_send_queues", "record"]

MIB = 2**20
KIB = 2**10


def _status(pid: int, field: str) -> int:
    """Return a ``kB`` field of ``/proc/<pid>/status``, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * KIB
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Memory:
    """The peak resident memory of a process over a stretch of a test.

    The kernel's high-water mark (VmHWM) is reset at the start, through ``clear_refs``, so
    that the peak covers only the attack; where that isn't allowed, VmRSS is sampled instead.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = 0
        self._hwm_reset = False
        self._sampled = 0
        self._sampler: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Memory:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # reset the peak RSS to the current RSS
            self._hwm_reset = True
        except OSError:
            self._hwm_reset = False
        self.start = _status(self.pid, "VmRSS")
        self._sampled = self.start
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self._sampled = max(self._sampled, _status(self.pid, "VmRSS"))
            await asyncio.sleep(5 * MS)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._sampler is not None
        self._sampler.cancel()
        try:
            await self._sampler
        except asyncio.CancelledError:
            pass
        self._sampled = max(self._sampled, _status(self.pid, "VmRSS"))

    @property
    def peak(self) -> int:
        if self._hwm_reset:
            return max(self._sampled, _status(self.pid, "VmHWM"))
        return self._sampled

    @property
    def growth(self) -> int:
        """How far the resident memory rose above where it started, in bytes, at its peak."""
        return self.peak - self.start

    def __str__(self) -> str:
        return f"{self.growth / MIB:.1f} MiB growth (from {self.start / MIB:.1f} MiB)"


#: Measured growth per test, printed at the end of the session (``-rA`` or ``-s`` shows it).
MEASUREMENTS: dict[str, str] = {}


def record(case: str, memory: Memory, detail: str = "") -> None:
    """Keep a measurement for the summary at the end of the session."""
    MEASUREMENTS[case] = f"{memory}; {detail}" if detail else str(memory)


def bounded(case: str, memory: Memory, bound: int, detail: str = "") -> None:
    """Keep the measurement of ``case`` for the summary, and check that the memory grew by less
    than ``bound`` bytes."""
    record(case, memory, detail)
    assert memory.growth < bound, f"{case}: {memory}"


def kernel_send_queues(port: int, host: str = "127.0.0.1") -> list[int]:
    """The bytes the kernel still holds to send on each TCP socket of local ``host:port`` but
    the listener, from ``/proc/net/tcp`` and ``tcp6``: sockets a server closed linger here, as
    orphans, while their peer doesn't read. The address counts too: on a machine where a
    benchmark holds many connections, another socket may have the same port on another address."""
    address = ipaddress.ip_address(host)
    queues = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state, queue = fields[1], fields[3], fields[4]
                local_host, local_port = local.rsplit(":", 1)
                if int(local_port, 16) != port or state == "0A":  # 0A: LISTEN
                    continue
                # The kernel prints the address as 32-bit words in host order (little-endian here).
                raw = b"".join(bytes.fromhex(local_host[i : i + 8])[::-1] for i in range(0, len(local_host), 8))
                if ipaddress.ip_address(raw) == address:
                    queues.append(int(queue.split(":")[0], 16))
    return queues


def kernel_send_queue(sock: Any) -> int:
    """The bytes the kernel holds to send on an open socket, sent but not acknowledged included
    (``SIOCOUTQ``): cheaper than reading ``/proc/net/tcp`` on a busy machine."""
    queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    size: int = struct.unpack("i", queued)[0]
    return size
