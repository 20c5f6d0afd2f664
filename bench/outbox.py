"""The PostgreSQL outbox's throughput and its delay from commit to subscriber, in one run.

    .venv/bin/python bench/outbox.py [--reps 3] [--backlog 20000] [--rate 200] [--seconds 5]

Starts a private PostgreSQL (``tests/support/postgres.py``) and a redis-server, then for each
engine (``--engines memory redis``) ``wavecast serve`` with ``[outbox]``, and subscribes a
centrifuge-python client to one channel, without history unless ``--history``.

- **drain**: ``--backlog`` rows committed in one transaction; publications/s is the backlog over
  the time from the commit to the subscriber's last publication, per ``batch_size``.
- **latency**: one row per transaction at ``--rate`` commits/s for ``--seconds``; the delay is
  from the commit's return to the subscriber's receipt, p50/p99/max, woken by NOTIFY and by
  polling alone (``poll_interval`` 0.3 s, the default); beside it, the same publications made
  with ``POST /api/publish`` right after each commit, the path the outbox replaces.

Everything shares the machine's cores (the subscriber's SDK included), so compare rows of one
run. Results go to ``bench/results/outbox-<stamp>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from centrifuge import Client, PublicationContext, SubscriptionEventHandler  # noqa: E402
from tests.support.config import BASE_CONFIG, merge, write_config  # noqa: E402
from tests.support.http import api  # noqa: E402
from tests.support.postgres import PostgresServer, private_postgres  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.redis import private_redis  # noqa: E402
from tests.support.serve import ServeProcess  # noqa: E402
from tests.support.tokens import make_token  # noqa: E402

from wavecast.server.pgoutbox import schema_sql  # noqa: E402

CHANNEL = "bench:outbox"
PATHS = {
    "notify": "outbox, woken by NOTIFY",
    "poll": "outbox, polling every 0.3 s (no trigger channel)",
    "api": "commit, then POST /api/publish (no outbox)",
}
INSERT = "INSERT INTO wavecast_outbox (method, payload) VALUES ('publish', $1::jsonb)"


class Arrivals(SubscriptionEventHandler):
    """Records when each publication's ``n`` arrived."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.changed = asyncio.Event()

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.at[ctx.pub.data["n"]] = time.perf_counter()
        self.changed.set()

    async def wait_for(self, n: int, timeout: float = 120.0) -> None:
        async with asyncio.timeout(timeout):
            while n not in self.at:
                self.changed.clear()
                await self.changed.wait()


class Bench:
    def __init__(self, postgres: PostgresServer, directory: Path, redis_url: str) -> None:
        self.postgres = postgres
        self.directory = directory
        self.redis_url = redis_url
        self.engine = "memory"
        #: The channel's history options: none by default, ``--history`` keeps 1,000 for 10 minutes.
        self.history: dict[str, Any] = {}
        self.n = 0

    async def server(self, **outbox: Any) -> ServeProcess:
        config = merge(
            BASE_CONFIG,
            {
                "server": {"log_level": "warning"},
                "namespaces": {"bench": {"allow_subscribe_for_client": True, **self.history}},
                "outbox": {"enabled": True, "dsn": self.postgres.dsn, **outbox},
                "engine": {"type": self.engine, "redis_url": self.redis_url, "redis_prefix": f"b{self.n}"},
            },
        )
        path = write_config(self.directory, config, f"outbox-{time.monotonic_ns()}.toml")
        server = ServeProcess(path, free_port(), cwd=self.directory)
        await server.wait_ready()
        return server

    async def subscriber(self, server: ServeProcess) -> tuple[Client, Arrivals]:
        arrivals = Arrivals()
        client = Client(server.ws_url, token=make_token("bench"), proxy=None)
        await client.connect()
        sub = client.new_subscription(CHANNEL, arrivals)
        await sub.subscribe()
        await asyncio.sleep(0.2)
        return client, arrivals

    def row(self) -> str:
        self.n += 1
        return json.dumps({"channel": CHANNEL, "data": {"n": self.n}})

    async def drain(self, connection: asyncpg.Connection, backlog: int, batch_size: int) -> float:
        server = await self.server(batch_size=batch_size)
        try:
            client, arrivals = await self.subscriber(server)
            rows = [(self.row(),) for _ in range(backlog)]
            last = self.n
            async with connection.transaction():
                await connection.executemany(INSERT, rows)
            committed = time.perf_counter()
            await arrivals.wait_for(last)
            elapsed = arrivals.at[last] - committed
            await client.disconnect()
            return backlog / elapsed
        finally:
            server.kill()

    async def latency(self, connection: asyncpg.Connection, rate: float, seconds: float, how: str) -> list[float]:
        outbox = {"notification_channel": ""} if how == "poll" else {}
        server = await self.server(**outbox)
        try:
            client, arrivals = await self.subscriber(server)
            committed: dict[int, float] = {}
            start = time.perf_counter()
            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                payload = self.row()
                if how == "api":
                    # The path the outbox replaces: commit, then call the API.
                    async with connection.transaction():
                        await connection.execute("SELECT 1")
                    committed[self.n] = time.perf_counter()
                    await api(server.url, "publish", json.loads(payload))
                else:
                    await connection.execute(INSERT, payload)  # one row, its own transaction
                    committed[self.n] = time.perf_counter()
            await arrivals.wait_for(self.n)
            await client.disconnect()
            return [(arrivals.at[n] - at) * 1000 for n, at in committed.items()]
        finally:
            server.kill()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> str:
    with (
        private_postgres() as postgres,
        private_redis() as redis,
        tempfile.TemporaryDirectory(prefix="wavecast-bench-") as directory,
    ):
        connection = await asyncpg.connect(postgres.dsn)
        await connection.execute(schema_sql())
        bench = Bench(postgres, Path(directory), redis.url)
        if args.history:
            bench.history = {"history_size": 1000, "history_ttl": 600.0}
        drains: dict[tuple[str, int], list[float]] = {(e, size): [] for e in args.engines for size in args.batch_sizes}
        delays: dict[tuple[str, str], list[float]] = {(e, how): [] for e in args.engines for how in PATHS}
        for _ in range(args.reps):
            for engine, size in drains:
                bench.engine = engine
                drains[engine, size].append(await bench.drain(connection, args.backlog, size))
            for engine, how in delays:
                bench.engine = engine
                delays[engine, how] += await bench.latency(connection, args.rate, args.seconds, how)
        await connection.close()
    command = "bench/outbox.py " + " ".join(sys.argv[1:])
    history = "with" if args.history else "without"
    lines = [
        f"# The PostgreSQL outbox, {time.strftime('%Y-%m-%d %H:%M')} UTC",
        "",
        f"`.venv/bin/python {command.strip()}`: {args.reps} repetitions, one node, one subscriber"
        f" (centrifuge-python), a channel {history} history, PostgreSQL 15 with fsync off,"
        " everything on this machine's shared cores.",
        "",
        f"## Drain: {args.backlog:,} rows committed at once, to the subscriber's last publication",
        "",
        "| engine | batch_size | publications/s (median) | min | max |",
        "|---|---|---|---|---|",
    ]
    for (engine, size), rates in drains.items():
        median, low, high = statistics.median(rates), min(rates), max(rates)
        lines.append(f"| {engine} | {size} | {median:,.0f} | {low:,.0f} | {high:,.0f} |")
    lines += [
        "",
        f"## Commit to subscriber: {args.rate:g} commits/s for {args.seconds:g} s, one row per transaction",
        "",
        "| engine | path | p50 ms | p99 ms | max ms | samples |",
        "|---|---|---|---|---|---|",
    ]
    for (engine, how), values in delays.items():
        lines.append(
            f"| {engine} | {PATHS[how]} | {quantile(values, 0.5):.1f} | {quantile(values, 0.99):.1f}"
            f" | {max(values):.1f} | {len(values)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--history", action="store_true", help="publish to a channel with history")
    parser.add_argument("--engines", nargs="+", choices=["memory", "redis"], default=["memory", "redis"])
    report = asyncio.run(main(parser.parse_args()))
    print(report)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"outbox-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(report)
