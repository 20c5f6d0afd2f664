"""Fixtures of the scale-out tests: ``wavecast serve`` nodes sharing a Redis, haproxy in front
of them, a switchable TCP relay, and a report of what chaos tests counted.

Everything listens on 127.0.0.1 on free ports, lives in the test's temporary directory and is
stopped by its PID (a node's process group, for ``--workers``) when the test ends. Private
redis-servers (``own_redis``, ``persistent_redis``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..support.cleanup import stopping
from ..support.cluster import ChaosReport, Deployment, NatsDeployment, Relay, StartNodes
from ..support.config import write_config
from ..support.haproxy import Haproxy, StartHaproxy
from ..support.nats import private_nats
from ..support.processes import free_port
from ..support.redis import private_redis, private_redis_cluster, private_redis_shards
from ..support.serve import ServeProcess
from ..support.servers import Listening
from ..support.tools import haproxy


@pytest.fixture
async def start_nodes(tmp_path: Path) -> AsyncIterator[StartNodes]:
    """Start ``wavecast serve`` nodes from one configuration and wait until each is ready.

    ``await start_nodes(config, count=1, ports=None, env=None, wait=True)``: ``config`` is a
    table (see :func:`~tests.support.cluster.cluster_config`) or a path; node ``i`` is named
    ``node<i>`` (its connect replies say so) and leads a process group of its own. Processes
    still running when the test ends are killed, with their workers.
    """
    names = (f"node{i}" for i in itertools.count(1))

    def serve(path: Path, port: int, env: Mapping[str, str]) -> ServeProcess:
        name = next(names)
        env = {"WAVECAST_CLIENT__NAME": name, **env}
        return ServeProcess(path, port, cwd=tmp_path, name=name, env=env, new_session=True)

    async with stopping(serve, ServeProcess.kill) as start_one:

        async def start(
            config: Mapping[str, Any] | Path,
            count: int = 1,
            *,
            ports: list[int] | None = None,
            env: Mapping[str, str] | None = None,
            wait: bool = True,
        ) -> list[ServeProcess]:
            path = config if isinstance(config, Path) else write_config(tmp_path, config)
            started = [await start_one(path, port, env or {}) for port in ports or [free_port() for _ in range(count)]]
            if wait:
                await asyncio.gather(*(node.wait_ready() for node in started))
            return started

        yield start


@pytest.fixture
async def start_haproxy(tmp_path: Path) -> AsyncIterator[StartHaproxy]:
    """``await start_haproxy(nodes, balance=None)``: haproxy from ``examples/deploy/haproxy.cfg``
    in front of ``nodes`` (with ``balance`` as its algorithm if given), ready; killed when the
    test ends. Skips when haproxy isn't installed, except under ``CI=true`` where it fails."""
    program = haproxy()

    def proxy(nodes: Sequence[Listening], balance: str | None = None) -> Haproxy:
        return Haproxy(program, free_port(), [node.port for node in nodes], cwd=tmp_path, balance=balance)

    async with stopping(proxy, Haproxy.kill, ready=Haproxy.wait_ready) as start:
        yield start


@pytest.fixture(params=["redis", "redis-sharded", "redis-cluster", "nats"])
def redis_deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """What the nodes share, private to the test: one redis-server, three Redis shards, a Redis
    Cluster of three masters and three replicas, then nats-server for publications beside a
    redis-server for history and presence."""
    if request.param == "redis":
        with private_redis() as server:
            yield server
    elif request.param == "nats":
        with private_redis() as server, private_nats() as nats:
            yield NatsDeployment(server, nats)
    elif request.param == "redis-sharded":
        with private_redis_shards(3) as servers:
            yield servers
    else:
        with private_redis_cluster(3) as cluster:
            yield cluster


@pytest.fixture
async def relay() -> AsyncIterator[Callable[[int], Awaitable[Relay]]]:
    """``await relay(port)``: a :class:`Relay` to ``port``; closed when the test ends."""
    async with stopping(Relay.open, Relay.close) as start:
        yield start


@pytest.fixture
def raise_nofile() -> Iterator[int]:
    """Raise this process's RLIMIT_NOFILE to its hard limit for the test; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


_REPORTS = pytest.StashKey[list[str]]()


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> Iterator[Callable[[str], ChaosReport]]:
    """Make a :class:`ChaosReport`; its summary is printed when the test ends and at the end of the run."""
    reports: list[ChaosReport] = []

    def make(name: str) -> ChaosReport:
        report = ChaosReport(name)
        reports.append(report)
        return report

    yield make
    for report in reports:
        line = f"{request.node.nodeid}: {report.summary()}"
        print(line)
        request.config.stash.setdefault(_REPORTS, []).append(line)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_REPORTS, [])
    if lines:
        terminalreporter.section("scale-out counts")
        for line in lines:
            terminalreporter.write_line(line)
