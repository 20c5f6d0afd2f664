"""A private PostgreSQL server for tests: initdb in a temporary directory, a free loopback port,
its unix socket in that directory, stopped by its PID.

postgres refuses to run as root; run as root, the server runs as the ``postgres`` user of
Debian's package (or ``nobody``), and its directory is handed over to that user.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .processes import free_port
from .timing import MS, wait_until
from .tools import require

__all__ = ["PostgresServer", "insert_outbox", "outbox_rows", "postgres_bin", "private_postgres", "wait_drained"]

#: The database user the tests connect as: the server's superuser, trusted on loopback.
USER = "wavecast"


def postgres_bin() -> Path:
    """Return the directory of ``initdb`` and ``postgres`` (Debian keeps them off ``PATH``)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    require(candidates, "postgresql is not installed (`make test` installs it)")
    return Path(candidates[-1]).parent


def _run_as() -> tuple[Sequence[str], int | None, int | None]:
    """The command prefix that drops root, and the uid and gid to hand the directory to."""
    if os.geteuid() != 0:
        return (), None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return (
                ("setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"),
                (entry.pw_uid),
                entry.pw_gid,
            )
    raise RuntimeError("running as root, and there is no postgres or nobody user to run postgres as")


class PostgresServer:
    """A postgres process on 127.0.0.1:``port`` with the database ``wavecast``."""

    def __init__(self, directory: Path) -> None:
        self.bin = postgres_bin()
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.prefix, uid, gid = _run_as()
        if uid is not None and gid is not None:
            os.chown(directory, uid, gid)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{USER}"

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self.prefix, *command], capture_output=True, cwd=self.directory)
        if done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stdout.decode()}{done.stderr.decode()}")

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *self.prefix,
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.directory),
                    # A throwaway cluster: durability against power loss isn't what tests check.
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=50",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        self._wait_ready()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, USER)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log_path.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"postgres didn't start: {self.log_path.read_text()}")

    def stop(self) -> None:
        """Stop postgres with a fast shutdown (SIGINT: roll back and disconnect), by its PID."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresServer]:
    """Run a private postgres; skip when it isn't installed, except under ``CI=true``."""
    postgres_bin()
    with tempfile.TemporaryDirectory(prefix="wavecast-postgres-") as directory:
        server = PostgresServer(Path(directory))
        try:
            server.start()
            yield server
        finally:
            server.stop()


async def insert_outbox(
    connection: Any, rows: Iterable[tuple[str, Any] | tuple[str, Any, int]], table: str = "wavecast_outbox"
) -> None:
    """Write server API commands, ``(method, request)`` or ``(method, request, partition)``, as an
    application does: ``connection`` is an asyncpg connection, in the caller's transaction."""
    values = [(row[0], json.dumps(row[1]), row[2] if len(row) > 2 else 0) for row in rows]
    await connection.executemany(f"INSERT INTO {table} (method, payload, partition) VALUES ($1, $2::jsonb, $3)", values)


async def outbox_rows(dsn: str, table: str = "wavecast_outbox") -> int:
    """Count the rows left in the outbox."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()


async def wait_drained(dsn: str, table: str = "wavecast_outbox", timeout: float = 5000 * MS) -> None:
    """Wait until the outbox is empty: every row was executed and its delete committed."""

    async def empty() -> bool:
        return await outbox_rows(dsn, table) == 0

    await wait_until(empty, timeout=timeout, what=f"an empty {table}")
