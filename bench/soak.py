"""An hour under churn: do two ``wavecast serve`` nodes keep their memory, descriptors and tasks flat?

``python bench/soak.py --minutes 60`` (``make soak``) starts a private redis-server and two
``wavecast serve`` nodes on it (free ports, a temporary directory, stopped by their PIDs), then
load processes, apart from the nodes, for the whole run:

- client workers: each keeps ``--clients`` clients going, one after another: a client connects
  with a JWT to either node (a WebSocket mostly, an SSE stream subscribed at connect sometimes),
  subscribes to random channels (``live:*`` without history, ``hist:*`` recovering from its last
  position), publishes (its own publish command, and the HTTP API), unsubscribes, and leaves
  after a while: cleanly, or cut abruptly (an RST, or the TCP connection dropped without a
  WebSocket close);
- a victim worker, the same, that is SIGKILLed at random moments and started again, so that
  the nodes see a whole process's connections vanish;
- a monitor: subscribers on each node to ``mon:*`` channels, and a publisher that numbers its
  publications (the HTTP API of either node, and a client's publish), to count what arrives.

Every ``--sample-seconds`` (60) it samples each node: RSS and open file descriptors from
``/proc``, asyncio tasks and event-loop lag from ``/metrics`` (``wavecast_asyncio_tasks``,
``wavecast_event_loop_lag_seconds``). At the end it writes a PNG of each series per node, a
Markdown report, and the samples as JSONL (``--out``, default ``bench/results/soak-<time>``),
and checks the trends (``bench/trend.py``): after ``--warmup`` minutes (10), a line fitted to each
series must not grow beyond its limit, and the monitor must have received every publication
it sent. It exits 1 when either fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import tomli_w  # noqa: E402
from tests.support.config import API_KEY, RECOVERING  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import ServeProcess  # noqa: E402
from tests.support.tokens import SECRET, make_token  # noqa: E402
from tests.support.tools import redis_server  # noqa: E402
from trend import LIMITS, Trend, check  # noqa: E402

import wavecast  # noqa: E402

LIVE_CHANNELS = 20
HIST_CHANNELS = 10
MON_CHANNELS = 4
#: The series sampled per node, with their unit.
SERIES = {"rss_mib": "MiB", "fds": "fds", "tasks": "tasks", "loop_lag_ms": "ms"}

CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "shutdown_timeout": 3.0, "log_level": "warning"},
    "client": {"token_hmac_secret_key": SECRET},
    "http_api": {"key": API_KEY},
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    # Every client of the soak comes from 127.0.0.1: one address, as thousands behind a NAT.
    "per_address": {"max_connections": False, "handshake_rate": False, "api_rate": False},
    "namespaces": {
        "live": {"allow_subscribe_for_client": True, "allow_publish_for_subscriber": True},
        "hist": {**RECOVERING, "allow_publish_for_subscriber": True},
        "mon": {"allow_subscribe_for_client": True, "allow_publish_for_client": True},
    },
}


# --- the load: one client's life, in a worker process ------------------------------------------


class Stats:
    """What a worker did and what went wrong, written to a JSON file every few seconds, so that
    a worker killed on purpose still leaves its counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.actions: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.extra: dict[str, Any] = {}

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def save(self) -> None:
        data = {"actions": self.actions, "errors": self.errors, **self.extra}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        temporary.replace(self.path)


class Client:
    """A real-time client over a WebSocket speaking the JSON protocol: replies by command id,
    pushes counted, the server's pings answered."""

    def __init__(self, connection: Any, stats: Stats) -> None:
        self.connection = connection
        self.stats = stats
        self.next_id = 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.publications: Counter[str] = Counter()
        #: The last position seen on each channel with history: (offset, epoch).
        self.positions: dict[str, tuple[int, str]] = {}
        self.on_publication: Any = None
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, port: int, user: str, stats: Stats) -> Client:
        connection = await wavecast.connect(f"ws://127.0.0.1:{port}/connection/websocket", open_timeout=10)
        client = cls(connection, stats)
        try:
            await client.call({"connect": {"token": make_token(user), "name": "soak"}})
        except BaseException:
            await client.abort(reset=True)
            raise
        return client

    async def _read(self) -> None:
        try:
            async for message in self.connection:
                text = message if isinstance(message, str) else message.decode()
                for line in text.splitlines():
                    self._dispatch(json.loads(line))
        except wavecast.ConnectionClosed:
            pass
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed before the reply"))

    def _dispatch(self, frame: dict[str, Any]) -> None:
        if not frame:
            # The server's ping: a pong keeps the connection.
            asyncio.get_running_loop().create_task(self._send_quietly("{}"))
            return
        if "id" in frame:
            future = self.waiting.pop(frame["id"], None)
            if future is not None and not future.done():
                future.set_result(frame)
            return
        push = frame.get("push", {})
        if "pub" in push:
            channel = push["channel"]
            self.publications[channel] += 1
            publication = push["pub"]
            if "offset" in publication and channel in self.positions:
                self.positions[channel] = (publication["offset"], self.positions[channel][1])
            if self.on_publication is not None:
                self.on_publication(channel, publication)

    async def _send_quietly(self, text: str) -> None:
        with contextlib.suppress(wavecast.ConnectionClosed):
            await self.connection.send(text)

    async def call(self, command: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a command, wait for its reply; raise ``RuntimeError`` on an error reply."""
        self.next_id += 1
        command = {"id": self.next_id, **command}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = future
        await self.connection.send(json.dumps(command))
        async with asyncio.timeout(timeout):
            reply = await future
        if "error" in reply:
            raise RuntimeError(f"error {reply['error'].get('code')}")
        return reply

    async def subscribe(self, channel: str) -> None:
        request: dict[str, Any] = {"channel": channel}
        if channel in self.positions:
            offset, epoch = self.positions[channel]
            request.update(recover=True, offset=offset, epoch=epoch)
        reply = await self.call({"subscribe": request})
        result = reply.get("subscribe", {})
        if result.get("recoverable") or "epoch" in result:
            self.positions[channel] = (result.get("offset", 0), result.get("epoch", ""))
            self.publications[channel] += len(result.get("publications", []))

    async def close(self) -> None:
        await self.connection.close()
        await self.reader

    async def abort(self, *, reset: bool) -> None:
        """Drop the TCP connection without a WebSocket close: an RST with ``reset``, else a FIN."""
        transport = self.connection.transport
        sock = transport.get_extra_info("socket")
        if reset and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def api_publish(session: aiohttp.ClientSession, port: int, channel: str, data: Any) -> None:
    async with session.post(
        f"http://127.0.0.1:{port}/api/publish",
        json={"channel": channel, "data": data},
        headers={"X-API-Key": API_KEY},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as response:
        body = await response.json()
        if response.status != 200 or "error" in body:
            raise RuntimeError(f"HTTP API publish: {response.status} {body.get('error')}")


def random_channel(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return f"hist:{rng.randrange(HIST_CHANNELS)}"
    return f"live:{rng.randrange(LIVE_CHANNELS)}"


async def websocket_life(
    rng: random.Random, ports: list[int], stats: Stats, session: aiohttp.ClientSession, positions: dict[str, Any]
) -> None:
    """One client over a WebSocket, from its connect to its leaving (clean or cut)."""
    port = rng.choice(ports)
    stats.actions["connect"] += 1
    client = await Client.open(port, f"user-{rng.randrange(500)}", stats)
    client.positions.update(positions)
    subscribed: set[str] = set()
    deadline = time.monotonic() + rng.uniform(5, 60)
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0.5, 3))
            roll = rng.random()
            if roll < 0.35 or not subscribed:
                channel = random_channel(rng)
                if channel not in subscribed:
                    stats.actions["subscribe"] += 1
                    await client.subscribe(channel)
                    subscribed.add(channel)
            elif roll < 0.6:
                stats.actions["publish"] += 1
                await client.call({"publish": {"channel": rng.choice(sorted(subscribed)), "data": {"n": rng.random()}}})
            elif roll < 0.8:
                stats.actions["api_publish"] += 1
                await api_publish(session, rng.choice(ports), random_channel(rng), {"api": rng.random()})
            else:
                channel = rng.choice(sorted(subscribed))
                stats.actions["unsubscribe"] += 1
                await client.call({"unsubscribe": {"channel": channel}})
                subscribed.discard(channel)
        if client.reader.done():
            stats.error("closed by the server")
            return
        ending = rng.random()
        if ending < 0.6:
            stats.actions["leave"] += 1
            await client.close()
        else:
            stats.actions["reset" if ending < 0.8 else "drop"] += 1
            await client.abort(reset=ending < 0.8)
    except BaseException:
        await client.abort(reset=True)
        raise
    finally:
        stats.actions["publications_received"] += sum(client.publications.values())
        positions.update({c: p for c, p in client.positions.items() if c.startswith("hist:")})


async def sse_life(rng: random.Random, ports: list[int], stats: Stats) -> None:
    """One client over SSE, subscribed at connect by its token, reading for a while, then gone."""
    port = rng.choice(ports)
    stats.actions["sse"] += 1
    token = make_token(f"sse-{rng.randrange(100)}", channels=[f"live:{rng.randrange(LIVE_CHANNELS)}"])
    connect = json.dumps({"id": 1, "connect": {"token": token}})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        query = urllib.parse.urlencode({"cf_connect": connect})
        writer.write(f"GET /connection/sse?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"SSE: {head.splitlines()[0].decode()}")
        deadline = time.monotonic() + rng.uniform(5, 30)
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    if not await reader.read(65536):
                        raise RuntimeError("SSE: the stream ended")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def client_loop(rng: random.Random, ports: list[int], stats: Stats, session: aiohttp.ClientSession) -> None:
    """Clients one after another, forever: each life's failure counted, never fatal."""
    positions: dict[str, Any] = {}
    while True:
        try:
            if rng.random() < 0.1:
                await sse_life(rng, ports, stats)
            else:
                await websocket_life(rng, ports, stats, session, positions)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stats.error(f"{type(exc).__name__}: {str(exc)[:60]}")
            await asyncio.sleep(1)


async def monitor(
    rng: random.Random, ports: list[int], stats: Stats, session: aiohttp.ClientSession, stop: asyncio.Event
) -> None:
    """Number publications on the ``mon:*`` channels and count what each node's subscriber gets,
    until ``stop``; then wait for the last ones before the final count."""
    channels = [f"mon:{i}" for i in range(MON_CHANNELS)]
    received: list[dict[str, set[int]]] = [{c: set() for c in channels} for _ in ports]
    duplicates = [0 for _ in ports]
    subscribers = []
    for index, port in enumerate(ports):
        subscriber = await Client.open(port, f"monitor-{index}", stats)

        def seen(channel: str, publication: dict[str, Any], index: int = index) -> None:
            number = publication["data"]["seq"]
            if number in received[index][channel]:
                duplicates[index] += 1
            received[index][channel].add(number)

        subscriber.on_publication = seen
        for channel in channels:
            await subscriber.subscribe(channel)
        subscribers.append(subscriber)
    publisher = await Client.open(ports[0], "monitor-publisher", stats)
    sent = 0
    stats.extra["monitor"] = {"sent": 0}

    def report() -> None:
        stats.extra["monitor"] = {
            "sent": sent,
            "received": [sum(len(numbers) for numbers in node.values()) for node in received],
            "duplicates": duplicates,
            "subscribers_closed": [s.reader.done() for s in subscribers],
        }

    stats.extra["report"] = report
    while not stop.is_set():
        await asyncio.sleep(0.25)
        channel = rng.choice(channels)
        data = {"seq": sent}
        try:
            way = sent % 3
            if way == 2:
                await publisher.call({"publish": {"channel": channel, "data": data}})
            else:
                await api_publish(session, ports[way], channel, data)
        except (RuntimeError, ConnectionError, aiohttp.ClientError, TimeoutError) as exc:
            stats.error(f"monitor publish: {type(exc).__name__}: {str(exc)[:60]}")
            if publisher.reader.done():
                publisher = await Client.open(ports[0], "monitor-publisher", stats)
            continue
        sent += 1
        report()
    await asyncio.sleep(2)
    report()


async def worker(args: argparse.Namespace) -> None:
    ports = [int(p) for p in args.ports.split(",")]
    stats = Stats(Path(args.stats))
    rng = random.Random(args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with aiohttp.ClientSession() as session:
        if args.role == "monitor":
            tasks = [loop.create_task(monitor(rng, ports, stats, session, stop))]
        else:
            tasks = [
                loop.create_task(client_loop(random.Random(rng.random()), ports, stats, session))
                for _ in range(args.clients)
            ]
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await stop.wait()
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    stats.error(f"worker task failed: {task.exception()!r}"[:100])
                    stop.set()
            save(stats)
        if args.role == "monitor":
            # The monitor ends itself, once what it sent last has had time to arrive.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    save(stats)


def save(stats: Stats) -> None:
    report = stats.extra.get("report")
    if report is not None:
        report()
    saved = {k: v for k, v in stats.extra.items() if k != "report"}
    extra, stats.extra = stats.extra, saved
    stats.save()
    stats.extra = extra


# --- the run: nodes, workers, samples ----------------------------------------------------------


def proc_sample(pid: int) -> dict[str, float]:
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return {"rss_mib": rss_kib / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


async def scrape(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    async with session.get(f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as response:
        text = await response.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("wavecast_asyncio_tasks", "wavecast_event_loop_lag_seconds", "wavecast_connections"):
            values[name] = float(value)
    return {
        "tasks": values["wavecast_asyncio_tasks"],
        "loop_lag_ms": values["wavecast_event_loop_lag_seconds"] * 1000,
        "connections": values["wavecast_connections"],
    }


class Workers:
    """The load's processes: started, the victim killed and restarted, stopped, by PID."""

    def __init__(self, directory: Path, ports: list[int], args: argparse.Namespace) -> None:
        self.directory = directory
        self.ports = ports
        self.args = args
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stats_files: list[Path] = []
        self.kills = 0

    def start(self, name: str, role: str, clients: int) -> None:
        stats = self.directory / f"stats-{name}-{len(self.stats_files)}.json"
        self.stats_files.append(stats)
        command = [sys.executable, __file__, "--worker", role, "--ports", ",".join(map(str, self.ports))]
        command += ["--clients", str(clients), "--stats", str(stats), "--seed", str(random.random())]
        log = (self.directory / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def kill_victim(self) -> None:
        victim = self.processes["victim"]
        victim.kill()
        victim.wait()
        self.kills += 1
        self.start("victim", "clients", self.args.victim_clients)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def totals(self) -> dict[str, Any]:
        actions: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        monitor: dict[str, Any] = {}
        for path in self.stats_files:
            if not path.exists():
                continue
            data = json.loads(path.read_text())
            actions.update(data["actions"])
            errors.update(data["errors"])
            monitor = data.get("monitor", monitor)
        return {"actions": dict(actions), "errors": dict(errors), "monitor": monitor, "victim_kills": self.kills}


async def run(args: argparse.Namespace) -> int:
    out = Path(args.out or HERE / "results" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wavecast-soak-") as temporary:
        directory = Path(temporary)
        redis = RedisServer(redis_server(), directory)
        redis.start()
        nodes: list[ServeProcess] = []
        workers: Workers | None = None
        try:
            for index in range(2):
                config = {**CONFIG, "engine": {"type": "redis", "redis_url": redis.url}}
                path = directory / f"node-{index}.toml"
                path.write_text(tomli_w.dumps(config))
                nodes.append(ServeProcess(path, free_port(), cwd=directory, name=f"node-{index}"))
            for node in nodes:
                await node.wait_ready()
            ports = [node.port for node in nodes]
            workers = Workers(directory, ports, args)
            for index in range(args.workers):
                workers.start(f"clients-{index}", "clients", args.clients)
            workers.start("victim", "clients", args.victim_clients)
            workers.start("monitor", "monitor", 0)
            samples = await load_and_sample(args, nodes, workers, out)
            workers.stop()
            totals = workers.totals()
            for node in nodes:
                if not node.running:
                    raise SystemExit(f"{node.name} exited:\n{node.log[-3000:]}")
        finally:
            if workers is not None:
                workers.stop()
            for node in nodes:
                await node.stop(timeout=20)
                node.kill()
            redis.stop()
    return report(args, out, samples, totals)


async def load_and_sample(
    args: argparse.Namespace, nodes: list[ServeProcess], workers: Workers, out: Path
) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    end = start + args.minutes * 60
    next_sample = start + min(args.sample_seconds, 5)
    next_kill = start + random.uniform(*args.kill_every)
    with out.with_suffix(".jsonl").open("w") as jsonl:
        async with aiohttp.ClientSession() as session:
            while (now := time.monotonic()) < end:
                if now >= next_kill:
                    workers.kill_victim()
                    next_kill = now + random.uniform(*args.kill_every)
                if now >= next_sample:
                    minute = (now - start) / 60
                    for index, node in enumerate(nodes):
                        sample = {"minute": round(minute, 3), "node": index, **proc_sample(node.pid)}
                        sample.update(await scrape(session, node.port))
                        sample["loadavg"] = os.getloadavg()[0]
                        samples.append(sample)
                        jsonl.write(json.dumps(sample) + "\n")
                        jsonl.flush()
                        print(json.dumps(sample), flush=True)
                    next_sample += args.sample_seconds
                for name, process in workers.processes.items():
                    if process.poll() is not None:
                        raise SystemExit(f"the {name} worker exited with {process.returncode}")
                await asyncio.sleep(max(0.0, min(next_sample, next_kill, end) - time.monotonic()))
    return samples


# --- the end: trends, plot, report --------------------------------------------------------------


def trends(args: argparse.Namespace, samples: list[dict[str, Any]]) -> dict[tuple[int, str], Trend]:
    result = {}
    for node in sorted({s["node"] for s in samples}):
        for series in SERIES:
            points = [(s["minute"], s[series]) for s in samples if s["node"] == node]
            result[node, series] = check(points, LIMITS[series], warmup_minutes=args.warmup)
    return result


def plot(samples: list[dict[str, Any]], path: Path, warmup: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(SERIES), 1, figsize=(9, 2.3 * len(SERIES)), sharex=True)
    for axis, (series, unit) in zip(axes, SERIES.items(), strict=True):
        for node in sorted({s["node"] for s in samples}):
            points = [(s["minute"], s[series]) for s in samples if s["node"] == node]
            axis.plot([x for x, _ in points], [y for _, y in points], marker=".", label=f"node {node}")
        axis.axvspan(0, warmup, color="0.9", label="warm-up")
        axis.set_ylabel(f"{series}\n({unit})")
        axis.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    axes[-1].set_xlabel("minutes")
    figure.suptitle("wavecast serve, 2 nodes on Redis, under churn (bench/soak.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def report(args: argparse.Namespace, out: Path, samples: list[dict[str, Any]], totals: dict[str, Any]) -> int:
    fitted = trends(args, samples)
    monitor = totals["monitor"]
    sent = monitor.get("sent", 0)
    lost = [sent - received for received in monitor.get("received", [])]
    delivered = bool(monitor.get("received")) and all(n <= args.max_lost for n in lost)
    steady = all(trend.ok for trend in fitted.values())
    plot(samples, out.with_suffix(".png"), args.warmup)
    command = " ".join(["python bench/soak.py", *sys.argv[1:]])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    loads = [s["loadavg"] for s in samples]
    lines = [
        f"# soak: {args.minutes:g} minutes, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"`{command}` at {commit.strip() or '?'}, 2 `wavecast serve` nodes on one redis-server; "
        f"{args.workers} workers of {args.clients} clients, a victim worker of {args.victim_clients} "
        f"killed {totals['victim_kills']} times, a monitor. Load average {min(loads, default=0):.1f}"
        f" to {max(loads, default=0):.1f} (2 cores). Trend after a {args.warmup:g}-minute warm-up.",
        "",
        "| node | series | start | end | slope per hour | limit | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for (node, series), trend in fitted.items():
        unit = SERIES[series]
        verdict = "ok" if trend.ok else "**GROWS**"
        lines.append(
            f"| {node} | {series} | {trend.start:.1f} | {trend.end:.1f} | {trend.slope_per_hour:+.2f} {unit} "
            f"| {LIMITS[series].describe(unit)} | {verdict} |"
        )
    lines += [
        "",
        f"Delivery on {MON_CHANNELS} monitored channels: {sent} sent, received per node "
        f"{monitor.get('received')}, duplicates {monitor.get('duplicates')}: "
        + ("ok" if delivered else f"**LOST {lost}**"),
        "",
        "Client actions: " + ", ".join(f"{k} {v}" for k, v in sorted(totals["actions"].items())),
        "",
        "Client-side errors: "
        + (", ".join(f"{k}: {v}" for k, v in sorted(totals["errors"].items())) if totals["errors"] else "none"),
        "",
        f"Verdict: {'PASS' if steady and delivered else 'FAIL'}",
    ]
    text = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(text)
    print(text)
    print(f"plot: {out.with_suffix('.png')}, report: {out.with_suffix('.md')}, samples: {out.with_suffix('.jsonl')}")
    return 0 if steady and delivered else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60, help="how long the load runs (default 60)")
    parser.add_argument("--warmup", type=float, default=10, help="minutes left out of the trend check (default 10)")
    parser.add_argument("--sample-seconds", type=float, default=60, help="time between samples (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="client worker processes (default 2)")
    parser.add_argument("--clients", type=int, default=30, help="clients kept going per worker (default 30)")
    parser.add_argument("--victim-clients", type=int, default=10, help="clients of the killed worker (default 10)")
    parser.add_argument(
        "--kill-every", type=float, nargs=2, default=(60, 180), help="seconds between kills of the victim (60 180)"
    )
    parser.add_argument("--max-lost", type=int, default=0, help="monitored publications a node may miss (0)")
    parser.add_argument("--out", help="path of the results without suffix (default bench/results/soak-<time>)")
    parser.add_argument("--worker", dest="role", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        wavecast.run(worker(args))
        return
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
