"""haproxy in front of nodes, from ``examples/deploy/haproxy.cfg``: the deployment users run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from .processes import LoggedServer
from .tools import ROOT

__all__ = ["HAPROXY_EXAMPLE", "REFUSE_WEBSOCKET", "Haproxy", "StartHaproxy", "haproxy_config", "refuse_path"]

HAPROXY_EXAMPLE = ROOT / "examples" / "deploy" / "haproxy.cfg"

#: A frontend rule of a network that refuses WebSocket, as some corporate proxies and mobile
#: carriers do: the upgrade request gets 403, and the browser's WebSocket fails to open.
REFUSE_WEBSOCKET = "http-request deny deny_status 403 if { hdr(upgrade) -i websocket }"


def refuse_path(path: str) -> str:
    """A frontend rule that answers 403 to every request for ``path``."""
    return f"http-request deny deny_status 403 if {{ path {path} }}"


def haproxy_config(
    frontend_port: int,
    backend_ports: list[int],
    example: Path = HAPROXY_EXAMPLE,
    *,
    frontend_rules: Sequence[str] = (),
    balance: str | None = None,
) -> str:
    """``examples/deploy/haproxy.cfg`` with its addresses replaced: the deployment users run,
    on this test's ports, with ``frontend_rules`` added to its frontend and ``balance`` (such as
    ``"roundrobin"``) instead of its algorithm. Fails if the example no longer has the lines
    this relies on."""
    text = example.read_text()
    if balance is not None:
        lines = [line for line in text.splitlines() if line.strip().startswith("balance ")]
        assert len(lines) == 1, f"{example}: expected one balance line"
        text = text.replace(lines[0], f"    balance {balance}")
    bind = "bind 127.0.0.1:8000"
    assert bind in text, f"{example}: expected {bind!r}"
    text = text.replace(bind, "\n    ".join([f"bind 127.0.0.1:{frontend_port}", *frontend_rules]))
    servers = [line for line in text.splitlines() if line.strip().startswith("server node")]
    assert 0 < len(backend_ports) <= len(servers), f"{example}: expected {len(backend_ports)} server lines or more"
    for index, line in enumerate(servers):
        if index < len(backend_ports):
            address = line.split()[2]
            text = text.replace(line, line.replace(address, f"127.0.0.1:{backend_ports[index]}"))
        else:
            text = text.replace(line + "\n", "")
    return text


class Haproxy(LoggedServer):
    """haproxy in the foreground (``-db``) in front of nodes on ``backend_ports``; ready once it
    routes ``/ready`` to a node that answers 200. ``frontend_rules`` are added to its frontend,
    such as :data:`REFUSE_WEBSOCKET`."""

    def __init__(
        self,
        program: str,
        port: int,
        backend_ports: list[int],
        *,
        cwd: Path,
        frontend_rules: Sequence[str] = (),
        balance: str | None = None,
    ) -> None:
        config_path = cwd / f"haproxy-{port}.cfg"
        config_path.write_text(haproxy_config(port, backend_ports, frontend_rules=frontend_rules, balance=balance))
        super().__init__([program, "-db", "-f", str(config_path)], port, name="haproxy", cwd=cwd)


#: ``await start_haproxy(nodes, balance=None)``, the fixture of ``tests/scale/conftest.py``.
StartHaproxy = Callable[..., Awaitable[Haproxy]]
