"""``wavecast serve`` in a subprocess, as users run it."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from .processes import LoggedServer
from .tools import ROOT

__all__ = ["ServeProcess", "StartDemo", "StartServe", "wavecast_command"]

WAVECAST = ROOT / ".venv" / "bin" / "wavecast"


def wavecast_command() -> list[str]:
    """The command that runs the CLI: the venv's script, or ``python -m wavecast``."""
    return [str(WAVECAST)] if WAVECAST.exists() else [sys.executable, "-m", "wavecast"]


class ServeProcess(LoggedServer):
    """``wavecast serve --config <config_path> --port <port>`` in a subprocess.

    ``command`` replaces ``wavecast serve`` with another program that takes ``--config`` and
    ``--port`` the same way, such as ``python -m examples.gallery``. See :class:`LoggedServer`
    for ``name``, ``env`` and ``new_session``.
    """

    def __init__(
        self,
        config_path: Path,
        port: int,
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        name: str = "wavecast serve",
        new_session: bool = False,
    ) -> None:
        command = [*wavecast_command(), "serve"] if command is None else list(command)
        super().__init__(
            [*command, "--config", str(config_path), "--port", str(port)],
            port,
            name=name,
            cwd=cwd,
            env=env,
            new_session=new_session,
        )


#: ``await start_serve(config_path, port=None, env=None)``, the fixture of ``tests/server/conftest.py``.
StartServe = Callable[..., Awaitable[ServeProcess]]

#: ``await start_demo(name, port=None, env=None, **sections)``, the fixture of ``examples/conftest.py``:
#: ``python -m examples.<name>``, ready.
StartDemo = Callable[..., Awaitable[ServeProcess]]
