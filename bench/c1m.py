"""A million real-time clients on one node: ``wavecast serve`` holding N Centrifugo-protocol clients.

    .venv/bin/python bench/c1m.py [--clients 100000] [--hold 300] [--admission off]
    make bench-c1m                          # 100,000 clients; C1M_CLIENTS=1000000 for the full run

One ``wavecast serve`` node (memory engine, pinned to CPU 0) and the loadgen's ``connect`` mode
(pinned to CPU 1). Each client opens a WebSocket at ``/connection/websocket`` from one of many
source addresses (127.0.0.2 up: one address has ~28k ephemeral ports towards one server port),
connects with a JWT, subscribes to one of ``--channels`` channels (``ch0`` ... ``ch999``) and to
the channel all of them share (``all``) in the same message, and from then on answers the node's
pings (every 25 s, Centrifugo's default) with pongs. The phases:

1. limits: the kernel settings that 2N sockets on one machine need (``fs.nr_open``,
   ``fs.file-max``, ``net.ipv4.tcp_mem``, ``net.core.netdev_max_backlog``) are raised, their
   old values kept and written back at the end, on Ctrl-C, SIGTERM or failure; each process
   gets ``RLIMIT_NOFILE`` for N (as far as it may);
2. connect: N clients, ``--concurrency`` handshakes (connect + subscribe) in flight;
3. hold: ``--hold`` s (at least 300 for the record) with the pings flowing, the server's RSS,
   CPU% and the kernel's socket memory (``/proc/net/sockstat``, the slab) sampled every
   ``--sample-every`` s;
4. one publication to ``all`` through the HTTP API, timed from the call to its last delivery;
5. publications to the 1,000 channels (``/api/batch``, one publication per channel per batch)
   for ``--rate-seconds`` s: publications/s delivered to every subscriber;
6. teardown: the loadgen closes its clients, the node is stopped, the kernel settings restored.

A process holds at most ``RLIMIT_NOFILE`` connections, and raising its hard limit needs
CAP_SYS_RESOURCE, which a container may withhold: the clients are then split over several
loadgens, and past what one server process may hold, the node runs as ``wavecast serve
--workers`` (all pinned to CPU 0) on a private redis-server; the table says which it ran.

The run is bounded: every phase has a timeout, and ``--max-minutes`` bounds the whole run. The
tables and the samples land in ``bench/results/c1m-<clients>-<stamp>.{md,jsonl}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from nodeconfig import node_config  # noqa: E402

REPO = BENCH.parent
PYTHON = os.environ.get("PYTHON", str(REPO / ".venv" / "bin" / "python"))
LOADGEN_DIR = BENCH / "loadgen"
LOADGEN = LOADGEN_DIR / "build" / "loadgen"
SECRET = "bench-c1m-secret-of-at-least-32-bytes-long"
SHARED = "all"
MARK = "c1m-mark"
PAGE = 4096
#: Ports of one source address kept free for the machine's other connections.
PORT_SLACK = 3000


# --- kernel settings and limits ---------------------------------------------------------------


def kernel_targets(clients: int, current: Mapping[str, str]) -> dict[str, str]:
    """The kernel settings for ``clients`` connections held at both ends of one machine: only
    those to raise (a value is never lowered), as ``/proc/sys`` writes them."""
    sockets = 2 * clients
    wanted: dict[str, str] = {}
    nr_open = clients + 65536
    if int(current["fs.nr_open"]) < nr_open:
        wanted["fs.nr_open"] = str(nr_open)
    file_max = sockets + 262144
    if int(current["fs.file-max"]) < file_max:
        wanted["fs.file-max"] = str(file_max)
    # Pages of TCP buffers (min, pressure, max): an idle socket holds none, but one publication
    # to every client queues a push in each of N receive queues until the loadgen reads it.
    old = [int(v) for v in current["net.ipv4.tcp_mem"].split()]
    new = [max(o, int(clients * f)) for o, f in zip(old, (0.5, 1.0, 1.5), strict=True)]
    if new != old:
        wanted["net.ipv4.tcp_mem"] = " ".join(map(str, new))
    # Packets queued per CPU before the stack takes them (loopback's every packet goes through
    # it): a tick of the ping wheel sends N/64 pings at once, and one publication to all N
    # pushes; past 1,000 (the default) they are dropped, and the SYNs, pings and pongs come again
    # only after their retransmission timeouts (connects slow down, clients cut for "no pong").
    backlog = min(max(clients, 10_000), 1_000_000)
    if int(current["net.core.netdev_max_backlog"]) < backlog:
        wanted["net.core.netdev_max_backlog"] = str(backlog)
    return wanted


class Sysctls:
    """Raise kernel settings, and write back the old values on :meth:`restore` (idempotent)."""

    def __init__(self, names: list[str], root: Path = Path("/proc/sys")) -> None:
        self.root = root
        self.names = names
        self.saved: dict[str, str] = {}

    def path(self, name: str) -> Path:
        return self.root / name.replace(".", "/")

    def read(self) -> dict[str, str]:
        return {name: " ".join(self.path(name).read_text().split()) for name in self.names}

    def apply(self, wanted: Mapping[str, str]) -> None:
        current = self.read()
        for name, value in wanted.items():
            self.saved.setdefault(name, current[name])
            self.path(name).write_text(value + "\n")

    def restore(self) -> dict[str, str]:
        """Write back every value changed; returns what was restored."""
        restored = {}
        for name in list(self.saved):
            self.path(name).write_text(self.saved[name] + "\n")
            restored[name] = self.saved.pop(name)
        return restored


def raise_nofile(limit: int) -> int:
    """Give this process (and the children it starts) ``limit`` file descriptors, or as many as
    it may: raising the hard limit needs CAP_SYS_RESOURCE, which a container may withhold.
    Returns the limit in force."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit, hard), max(limit, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


#: Descriptors a server process keeps for itself (listener, epoll, engine, logs) beside its clients.
FD_RESERVE = 1500


def server_workers(clients: int, fd_limit: int) -> int:
    """Server processes for ``clients`` when each may hold ``fd_limit`` descriptors: one when it
    fits; else enough that SO_REUSEPORT's uneven spread (a few hundred around the mean at 20k
    each) stays under the limit."""
    return max(1, math.ceil(clients / (fd_limit - FD_RESERVE)))


def source_addresses(clients: int, port_range: str) -> int:
    """How many source addresses ``clients`` connections to one server port need."""
    low, high = (int(v) for v in port_range.split())
    per_address = high - low + 1 - PORT_SLACK
    if per_address < 1000:
        raise ValueError(f"net.ipv4.ip_local_port_range {low}-{high} leaves too few ports per address")
    return max(1, math.ceil(clients / per_address))


# --- the server and the loadgen ---------------------------------------------------------------


def server_config(*, admission: bool, ping_interval: float, workers: int = 1, redis_url: str | None = None) -> str:
    """``wavecast serve``'s configuration: the memory engine (Redis for several ``workers``),
    client subscriptions to any channel, pings at ``ping_interval``; ``admission`` keeps the
    node's default connect rates (2,000/s)."""
    if workers > 1 and not redis_url:
        raise ValueError("several workers need a shared engine: give redis_url")
    client: dict[str, Any] = {"client_ping_interval": ping_interval}
    if not admission:
        client |= {"admission_connection_rate": False, "admission_connect_rate": False}
    return node_config(
        SECRET,
        server={"workers": workers},
        websocket={"compression": False},
        client=client,
        channel={"allow_subscribe_for_client": True},
        **({"engine": {"type": "redis", "redis_url": redis_url}} if redis_url else {}),
    )


def sub_init(token: str) -> str:
    """Each client's first message: connect, its channel (``{v}``: the loadgen's variant) and ``all``."""
    return "\n".join(
        [
            json.dumps({"id": 1, "connect": {"token": token}}, separators=(",", ":")),
            '{"id":2,"subscribe":{"channel":"ch{v}"}}',
            '{"id":3,"subscribe":{"channel":"' + SHARED + '"}}',
        ]
    )


def parse_status(line: str) -> dict[str, float] | None:
    """A loadgen ``# STATUS`` line as numbers, or ``None`` for any other line."""
    if not line.startswith("# STATUS "):
        return None
    return {key: float(value) for key, value in (item.split("=", 1) for item in line.split()[2:])}


def parse_sockstat(text: str) -> dict[str, int]:
    """``/proc/net/sockstat``'s TCP line: ``inuse``, ``orphan``, ``tw``, ``alloc``, ``mem`` (pages)."""
    match = re.search(r"^TCP: (.*)$", text, re.M)
    if not match:
        return {}
    items = match.group(1).split()
    return {items[i]: int(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def meminfo_kib(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+):\s+(\d+) kB", text, re.M)}


def proc_rss_kib(pid: int) -> int:
    try:
        match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Loadgen:
    """One loadgen process in connect mode; its ``# STATUS`` lines give its clients' counts."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.status: dict[str, float] = {}
        self.hold: str | None = None
        self.result: dict[str, Any] | None = None
        self.tail: list[str] = []
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            status = parse_status(line)
            if status is not None:
                self.status = status
            elif line.startswith("# HOLD "):
                self.hold = line
            elif line.startswith("{"):
                self.result = json.loads(line)
            else:
                self.tail = [*self.tail[-20:], line]


def merge_status(statuses: list[Mapping[str, float]]) -> dict[str, float]:
    """Several loadgens' ``# STATUS`` as one: counts add up, the marked pushes' first arrival is
    the earliest and the last the latest."""
    merged: dict[str, float] = {}
    for status in statuses:
        for key, value in status.items():
            if key == "mark_first":
                merged[key] = min(merged.get(key) or value, value) if value else merged.get(key, 0.0)
            elif key in ("mark_last", "t"):
                merged[key] = max(merged.get(key, 0.0), value)
            else:
                merged[key] = merged.get(key, 0.0) + value
    return merged


class Loadgens:
    """The loadgen processes together (one process holds at most RLIMIT_NOFILE connections)."""

    def __init__(self, members: list[Loadgen]) -> None:
        self.members = members

    @property
    def pids(self) -> list[int]:
        return [m.proc.pid for m in self.members]

    @property
    def holding(self) -> bool:
        return all(m.hold is not None for m in self.members)

    def get(self, key: str) -> float:
        return merge_status([m.status for m in self.members]).get(key, 0.0)

    def tail(self) -> list[str]:
        return [line for m in self.members for line in m.tail[-2:]][-6:]

    async def until(self, done: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not done():
            ended = [m.proc.returncode for m in self.members if m.proc.returncode is not None]
            if ended:
                raise RuntimeError(f"a loadgen ended ({ended[0]}) while waiting for {what}: {self.tail()}")
            if time.monotonic() > end:
                raise TimeoutError(
                    f"{what}: not within {timeout:.0f} s ({merge_status([m.status for m in self.members])})"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGUSR2: each closes its clients and ends (killed if it takes over a minute)."""
        for m in self.members:
            if m.proc.returncode is None:
                m.proc.send_signal(signal.SIGUSR2)

        async def wait(m: Loadgen) -> None:
            try:
                await asyncio.wait_for(m.proc.wait(), 60)
            except TimeoutError:
                m.proc.kill()
                await m.proc.wait()

        await asyncio.gather(*(wait(m) for m in self.members))


def split_clients(clients: int, per_process: int, channels: int) -> list[int]:
    """``clients`` over as few processes as hold at most ``per_process`` each, every share a
    multiple of ``channels`` so that each process spreads its clients evenly over the channels."""
    if per_process < channels:
        raise ValueError(f"a process may hold {per_process} connections, fewer than the {channels} channels")
    units, per = clients // channels, per_process // channels
    count = math.ceil(units / per)
    return [channels * (units // count + (1 if i < units % count else 0)) for i in range(count)]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``wavecast serve --workers``' workers)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


class Api:
    """``POST /api/<method>`` on one kept-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, body: Any, timeout: float = 60.0) -> Any:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(
            f"POST /api/{method} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        match = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if not head.startswith(b"HTTP/1.1 200") or not match:
            raise RuntimeError(f"api {method}: {head.splitlines()[0].decode()}")
        return json.loads(await asyncio.wait_for(self.reader.readexactly(int(match.group(1))), timeout))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def wait_health(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                return
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the server did not answer /health within {timeout:.0f} s")


# --- the run ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Options:
    clients: int
    channels: int
    hold: float
    sample_every: float
    admission: bool
    ping_interval: float
    concurrency: int
    rate_seconds: float
    connect_timeout: float
    workers: int
    per_loadgen: int


class Sampler:
    """Every ``every`` s: the server's RSS and CPU% (all its processes), the loadgens' too,
    sockstat and the slab."""

    def __init__(self, server_pid: int, loadgens: Loadgens, every: float) -> None:
        self.server_pid = server_pid
        self.loadgens = loadgens
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.phase = "connect"
        self.t0 = time.monotonic()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def sample(self, last: dict[str, Any] | None) -> dict[str, Any]:
        now = time.monotonic()
        sock = parse_sockstat(Path("/proc/net/sockstat").read_text())
        mem = meminfo_kib(Path("/proc/meminfo").read_text())
        server = process_tree(self.server_pid)
        row: dict[str, Any] = {
            "t": round(now - self.t0, 1),
            "phase": self.phase,
            "open": int(self.loadgens.get("open")),
            "lost": int(self.loadgens.get("lost")),
            "pings": int(self.loadgens.get("pings")),
            "server_rss_kib": sum(proc_rss_kib(pid) for pid in server),
            "loadgen_rss_kib": sum(proc_rss_kib(pid) for pid in self.loadgens.pids),
            "server_cpu_s": sum(proc_cpu_s(pid) for pid in server),
            "loadgen_cpu_s": sum(proc_cpu_s(pid) for pid in self.loadgens.pids),
            "tcp_inuse": sock.get("inuse", 0),
            "tcp_mem_pages": sock.get("mem", 0),
            "tcp_tw": sock.get("tw", 0),
            "slab_kib": mem.get("Slab", 0),
            "mem_available_kib": mem.get("MemAvailable", 0),
            "mono": now,
        }
        if last is not None:
            wall = now - last["mono"]
            row["server_cpu_pct"] = round(100 * (row["server_cpu_s"] - last["server_cpu_s"]) / wall, 1)
            row["loadgen_cpu_pct"] = round(100 * (row["loadgen_cpu_s"] - last["loadgen_cpu_s"]) / wall, 1)
            row["pings_per_s"] = round((row["pings"] - last["pings"]) / wall)
        return row

    async def _run(self) -> None:
        last = None
        while True:
            last = self.sample(last)
            self.samples.append(last)
            print(
                f"  t={last['t']:7.1f} {last['phase']:8} open={last['open']:,} lost={last['lost']} "
                f"rss={last['server_rss_kib'] / 1024:,.0f} MiB cpu={last.get('server_cpu_pct', 0)}% "
                f"pings/s={last.get('pings_per_s', 0):,} tcp_mem={last['tcp_mem_pages'] * PAGE / 2**20:,.0f} MiB "
                f"slab={last['slab_kib'] / 1024:,.0f} MiB avail={last['mem_available_kib'] / 2**20:,.1f} GiB",
                flush=True,
            )
            await asyncio.sleep(self.every)


async def one_publication(api: Api, loadgens: Loadgens, clients: int, timeout: float) -> dict[str, float]:
    """Publish once to the channel every client shares; time its first and last delivery."""
    before = loadgens.get("marked")
    start = time.monotonic()
    reply = await api.call("publish", {"channel": SHARED, "data": {"m": MARK}}, timeout)
    answered = time.monotonic()
    if "error" in reply:
        raise RuntimeError(f"publish: {reply['error']}")
    await loadgens.until(lambda: loadgens.get("marked") - before >= clients, timeout, "the publication to every client")
    return {
        "api_answered_s": answered - start,
        "first_delivery_s": loadgens.get("mark_first") - start,
        "last_delivery_s": loadgens.get("mark_last") - start,
    }


async def publication_rate(api: Api, loadgens: Loadgens, opts: Options) -> dict[str, float]:
    """Batches of one publication per channel for ``rate_seconds``, one batch in flight: the
    publications/s that reached every subscriber (each channel has clients/channels of them)."""
    per_channel = opts.clients // opts.channels
    batch = {"commands": [{"publish": {"channel": f"ch{i}", "data": {"n": i}}} for i in range(opts.channels)]}
    pushes_before = loadgens.get("pushes")
    start = time.monotonic()
    published = 0
    while time.monotonic() - start < opts.rate_seconds:
        reply = await api.call("batch", batch, 120)
        errors = [r for r in reply.get("replies", []) if "error" in r]
        if errors or "error" in reply:
            raise RuntimeError(f"batch: {errors[:1] or reply}")
        published += opts.channels
    sent = time.monotonic() - start
    expected = published * per_channel
    await loadgens.until(
        lambda: loadgens.get("pushes") - pushes_before >= expected, 300, "the publications' deliveries"
    )
    delivered = time.monotonic() - start
    return {
        "published": published,
        "subscribers_per_channel": per_channel,
        "api_s": sent,
        "delivered_s": delivered,
        "publications_per_s": published / delivered,
        "deliveries_per_s": expected / delivered,
    }


async def start_loadgens(opts: Options, port: int, token: str, port_range: str) -> Loadgens:
    """The loadgens, each with its share of the clients and its own source addresses."""
    members = []
    first = (127 << 24) | 2
    for share in split_clients(opts.clients, opts.per_loadgen, opts.channels):
        sources = source_addresses(share, port_range)
        proc = await asyncio.create_subprocess_exec(
            "taskset", "-c", "1", str(LOADGEN), "connect", "--port", str(port), "--path", "/connection/websocket",
            "-n", str(share), "-k", str(max(1, opts.concurrency * share // opts.clients)),
            "--connect-timeout", str(opts.connect_timeout),
            "-H", str(opts.hold + opts.rate_seconds + 900), "--timeout", "5",
            "--sub-init", sub_init(token), "--sub-init-variants", str(opts.channels), "--join-reply", '"id":3',
            "--src-first", socket.inet_ntoa(first.to_bytes(4, "big")), "--src-addrs", str(sources),
            "--report-every", "1", "--mark", MARK, "-q",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        members.append(Loadgen(proc))
        first += sources
    return Loadgens(members)


#: Every process the run started (the server, its workers, the loadgens): killed at the end if
#: the run's own teardown didn't stop them.
STARTED: set[int] = set()


def kill_leftovers() -> list[int]:
    killed = []
    for pid in sorted(STARTED):
        for each in reversed(process_tree(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
                killed.append(each)
    STARTED.clear()
    return killed


async def bounded(opts: Options, minutes: float) -> dict[str, Any]:
    """:func:`run`, stopped by SIGINT, SIGTERM or SIGHUP, or after ``minutes``: its teardown
    runs either way, and the result says why it stopped."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    why: list[str] = []

    def stop(reason: str) -> None:
        if not why:
            why.append(reason)
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop, sig.name)
    loop.call_later(minutes * 60, stop, f"the run's bound of {minutes:g} minutes")
    return await run(opts, why)


async def run(opts: Options, why: list[str]) -> dict[str, Any]:
    import jwt

    port = free_port()
    port_range = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
    token = jwt.encode({"sub": "c1m"}, SECRET, algorithm="HS256")
    result: dict[str, Any] = {"clients": opts.clients, "channels": opts.channels, "admission": opts.admission}
    result["options"] = dataclasses.asdict(opts)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        engine = None
        if opts.workers > 1:
            sys.path.insert(0, str(REPO))
            from tests.support.redis import RedisServer
            from tests.support.tools import redis_server

            redis = RedisServer(redis_server(), Path(tmp))
            redis.start()
            stack.callback(redis.stop)
            engine = redis.url
        config_path = Path(tmp) / "wavecast.toml"
        config_path.write_text(
            server_config(
                admission=opts.admission, ping_interval=opts.ping_interval, workers=opts.workers, redis_url=engine
            )
        )
        wavecast = str(Path(PYTHON).parent / "wavecast")
        mem_before = meminfo_kib(Path("/proc/meminfo").read_text())
        sock_before = parse_sockstat(Path("/proc/net/sockstat").read_text())
        server = await asyncio.create_subprocess_exec(
            "taskset", "-c", "0", wavecast, "serve", "--config", str(config_path), "--port", str(port),
        )  # fmt: skip
        STARTED.add(server.pid)
        loadgens: Loadgens | None = None
        sampler: Sampler | None = None
        api = Api(port)
        try:
            await wait_health(port, 60)
            if opts.workers > 1:
                await asyncio.sleep(3)  # every worker listening, not only the first to answer
            rss_empty = sum(proc_rss_kib(pid) for pid in process_tree(server.pid))
            result["server_rss_empty_mib"] = rss_empty / 1024
            loadgens = await start_loadgens(opts, port, token, port_range)
            STARTED.update(loadgens.pids)
            result["loadgens"] = len(loadgens.members)
            result["source_addresses"] = sum(
                source_addresses(share, port_range)
                for share in split_clients(opts.clients, opts.per_loadgen, opts.channels)
            )
            sampler = Sampler(server.pid, loadgens, opts.sample_every)
            started = time.monotonic()
            lg = loadgens
            await lg.until(lambda: lg.holding, opts.connect_timeout + 30, "every client to connect")
            result["connect_wall_s"] = time.monotonic() - started
            holds = [re.search(r"open=(\d+) failed=(\d+) connect_s=([\d.]+)", m.hold or "") for m in lg.members]
            result["open"] = sum(int(h.group(1)) for h in holds if h)
            result["failed"] = sum(int(h.group(2)) for h in holds if h)
            result["connect_s"] = max(float(h.group(3)) for h in holds if h)
            if result["failed"]:
                raise RuntimeError(f"{result['failed']} clients failed to connect: {lg.tail()}")
            print(f"# {opts.clients:,} clients connected in {result['connect_s']:.1f} s", flush=True)

            sampler.phase = "hold"
            hold_start = time.monotonic()
            await asyncio.sleep(opts.hold)
            hold_samples = [s for s in sampler.samples if s["phase"] == "hold" and "server_cpu_pct" in s]
            result["hold_s"] = time.monotonic() - hold_start
            result["lost_in_hold"] = int(lg.get("lost"))

            sampler.phase = "publish"
            result["one_publication"] = await one_publication(api, lg, opts.clients, 300)
            print(f"# one publication: {result['one_publication']}", flush=True)
            sampler.phase = "rate"
            result["rate"] = await publication_rate(api, lg, opts)
            print(f"# publication rate: {result['rate']}", flush=True)
            sampler.phase = "end"
            result["lost"] = int(lg.get("lost"))

            last = hold_samples[-1] if hold_samples else sampler.samples[-1]
            result["server_rss_mib"] = last["server_rss_kib"] / 1024
            result["server_kib_per_client"] = (last["server_rss_kib"] - rss_empty) / opts.clients
            result["loadgen_rss_mib"] = last["loadgen_rss_kib"] / 1024
            result["loadgen_kib_per_client"] = last["loadgen_rss_kib"] / opts.clients
            result["tcp_inuse"] = last["tcp_inuse"]
            held = hold_samples or sampler.samples
            result["tcp_mem_mib_hold"] = max(s["tcp_mem_pages"] for s in held) * PAGE / 2**20
            result["tcp_mem_mib_peak"] = max(s["tcp_mem_pages"] for s in sampler.samples) * PAGE / 2**20
            result["slab_mib_delta"] = (last["slab_kib"] - mem_before.get("Slab", 0)) / 1024
            result["slab_kib_per_socket"] = (last["slab_kib"] - mem_before.get("Slab", 0)) / (2 * opts.clients)
            result["machine_used_gib"] = (mem_before["MemAvailable"] - last["mem_available_kib"]) / 2**20
            result["tcp_inuse_before"] = sock_before.get("inuse", 0)
            if hold_samples:
                middle = len(hold_samples) // 2
                cpu = sorted(s["server_cpu_pct"] for s in hold_samples)
                result["server_cpu_idle_pct_median"] = cpu[middle]
                result["server_cpu_idle_pct_max"] = cpu[-1]
                result["loadgen_cpu_idle_pct_median"] = sorted(s["loadgen_cpu_pct"] for s in hold_samples)[middle]
                result["pings_per_s_median"] = sorted(s["pings_per_s"] for s in hold_samples)[middle]
            result["ok"] = result["lost"] == 0
            return result
        except (Exception, asyncio.CancelledError) as exc:
            # What was measured until then is kept: the samples say how far it got.
            result["error"] = why[0] if why else f"{type(exc).__name__}: {exc}"
            result["ok"] = False
            if loadgens is not None:
                result["open"] = int(loadgens.get("open"))
                result["lost"] = int(loadgens.get("lost"))
            print(f"# stopped: {result['error']}", flush=True)
            return result
        finally:
            if sampler is not None:
                sampler.task.cancel()
                result["samples"] = [{k: v for k, v in s.items() if k != "mono"} for s in sampler.samples]
            api.close()
            if loadgens is not None:
                await loadgens.stop()
            if server.returncode is None:
                server.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(server.wait(), 20)
                except TimeoutError:
                    for pid in reversed(process_tree(server.pid)):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    await server.wait()
            STARTED.discard(server.pid)
            if loadgens is not None:
                STARTED.difference_update(loadgens.pids)


# --- the report -------------------------------------------------------------------------------


def table(r: Mapping[str, Any]) -> str:
    one = r.get("one_publication", {})
    rate = r.get("rate", {})
    opts = r["options"]
    workers = opts["workers"]
    servers = f"{workers} (memory engine)"
    if workers > 1:
        servers = f"{workers} (`--workers`, sharing a private redis-server: each process holds at most RLIMIT_NOFILE)"
    connect_s = r.get("connect_s", 0) or 1e-9
    admission = "at their defaults" if r["admission"] else "off"
    rows = [
        (f"clients held (each subscribed to 1 of {r['channels']:,} channels + `{SHARED}`)", f"{r.get('open', 0):,}"),
        ("clients lost during the run", f"{r.get('lost', '-')}"),
        ("server processes", servers),
        ("loadgen processes / source addresses", f"{r.get('loadgens', 0)} / {r.get('source_addresses', 0)}"),
        (
            "time to connect all",
            f"{connect_s:.1f} s ({r.get('open', 0) / connect_s:,.0f}/s, admission rates {admission})",
        ),
        ("held with pings flowing", f"{r.get('hold_s', 0):.0f} s, pings every {opts['ping_interval']:.0f} s"),
        ("pongs/s while held (median)", f"{r.get('pings_per_s_median', 0):,}"),
        (
            "server RSS",
            f"{r.get('server_rss_mib', 0):,.0f} MiB ({r.get('server_kib_per_client', 0):.2f} KiB per client)",
        ),
        (
            "server CPU while idle (median / max of the samples)",
            f"{r.get('server_cpu_idle_pct_median', 0):.1f}% / {r.get('server_cpu_idle_pct_max', 0):.1f}%",
        ),
        ("kernel: TCP sockets in use", f"{r.get('tcp_inuse', 0):,}"),
        (
            "kernel: slab growth",
            f"{r.get('slab_mib_delta', 0):,.0f} MiB ({r.get('slab_kib_per_socket', 0):.2f} KiB per socket, both ends)",
        ),
        (
            "kernel: TCP buffers (sockstat `mem`), hold / peak",
            f"{r.get('tcp_mem_mib_hold', 0):,.0f} / {r.get('tcp_mem_mib_peak', 0):,.0f} MiB",
        ),
        (
            "loadgen RSS",
            f"{r.get('loadgen_rss_mib', 0):,.0f} MiB ({r.get('loadgen_kib_per_client', 0):.2f} KiB per client)",
        ),
        ("machine memory in use (MemAvailable's drop)", f"{r.get('machine_used_gib', 0):.1f} GiB"),
        (
            "one publication to all: API answered / first / last delivery",
            " / ".join(
                f"{one.get(k, 0) * 1000:,.0f} ms" for k in ("api_answered_s", "first_delivery_s", "last_delivery_s")
            ),
        ),
        (
            f"publications/s to the {r['channels']:,} channels "
            f"({rate.get('subscribers_per_channel', 0):,} subscribers each)",
            f"{rate.get('publications_per_s', 0):,.0f} ({rate.get('deliveries_per_s', 0):,.0f} deliveries/s)",
        ),
    ]
    return "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def samples_table(samples: list[Mapping[str, Any]]) -> str:
    lines = [
        "| t (s) | phase | open | server RSS MiB | server CPU % | loadgen CPU % | pongs/s | TCP mem MiB | slab MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in samples:
        lines.append(
            f"| {s['t']:.0f} | {s['phase']} | {s['open']:,} | {s['server_rss_kib'] / 1024:,.0f} | "
            f"{s.get('server_cpu_pct', '-')} | {s.get('loadgen_cpu_pct', '-')} | {s.get('pings_per_s', '-')} | "
            f"{s['tcp_mem_pages'] * PAGE / 2**20:,.0f} | {s['slab_kib'] / 1024:,.0f} |"
        )
    return "\n".join(lines)


def report(result: Mapping[str, Any], command: str, restored: Mapping[str, str], raised: Mapping[str, str]) -> str:
    return "\n\n".join(
        [
            f"# C1M: {result['clients']:,} clients on one `wavecast serve` node",
            f"`{command}` (Python {sys.version.split()[0]}, server on CPU 0, loadgen on CPU 1; "
            f"kernel settings raised for the run: {dict(raised) or 'none'}, restored: {dict(restored) or 'none'})",
            *([f"**Stopped before the end: {result['error']}**"] if result.get("error") else []),
            table(result),
            "Samples:",
            samples_table(result.get("samples", [])),
        ]
    )


# --- main -------------------------------------------------------------------------------------

SYSCTLS = ["fs.nr_open", "fs.file-max", "net.ipv4.tcp_mem", "net.core.netdev_max_backlog"]


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run as Ctrl-C does, so that the kernel settings are restored."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=300.0, help="seconds held with the pings flowing (300)")
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument(
        "--admission",
        choices=["on", "off"],
        default="off",
        help="the node's connect admission rates: on (2,000/s) or off",
    )
    parser.add_argument("--ping-interval", type=float, default=25.0)
    parser.add_argument("--concurrency", type=int, default=1000, help="handshakes in flight (1000)")
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--connect-timeout", type=float, default=900.0)
    parser.add_argument("--max-minutes", type=float, default=40.0, help="the whole run's bound (40)")
    parser.add_argument("--workers", default="auto",
                        help="server processes: auto (1 unless a process may not hold the clients), or a number; "
                        "more than 1 share a private redis-server")  # fmt: skip
    parser.add_argument("--out", default=str(BENCH / "results"))
    args = parser.parse_args()
    if args.clients < args.channels or args.clients % args.channels:
        parser.error("--clients must be a multiple of --channels")
    if os.geteuid() != 0:
        parser.error("the kernel settings for this many sockets need root")
    fd_limit = raise_nofile(args.clients + FD_RESERVE)
    workers = server_workers(args.clients, fd_limit) if args.workers == "auto" else int(args.workers)
    opts = Options(
        clients=args.clients, channels=args.channels, hold=args.hold, sample_every=args.sample_every,
        admission=args.admission == "on", ping_interval=args.ping_interval, concurrency=args.concurrency,
        rate_seconds=args.rate_seconds, connect_timeout=args.connect_timeout, workers=workers,
        per_loadgen=fd_limit - 100,
    )  # fmt: skip
    print(f"# RLIMIT_NOFILE {fd_limit:,}: {workers} server process(es), "
          f"{len(split_clients(opts.clients, opts.per_loadgen, opts.channels))} loadgen(s)", flush=True)  # fmt: skip
    subprocess.run(["make", "-s", "-C", str(LOADGEN_DIR), str(LOADGEN)], check=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    sysctls = Sysctls(SYSCTLS)
    result: dict[str, Any] = {}
    raised: dict[str, str] = {}
    restored: dict[str, str] = {}
    # Signals before and after the event loop (which takes them over) end the run as Ctrl-C does.
    with terminate_as_interrupt():
        try:
            raised = kernel_targets(opts.clients, sysctls.read())
            sysctls.apply(raised)
            print(f"# kernel settings raised: {raised or 'none needed'}", flush=True)
            result = asyncio.run(bounded(opts, args.max_minutes))
        finally:
            killed = kill_leftovers()
            if killed:
                print(f"# killed {len(killed)} processes left running", flush=True)
            restored = sysctls.restore()
            print(f"# kernel settings restored: {restored or 'none changed'}", flush=True)
    command = " ".join(["python bench/c1m.py", *sys.argv[1:]])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"c1m-{opts.clients}-{stamp}"
    base.with_suffix(".jsonl").write_text(
        "\n".join(json.dumps(s) for s in result.get("samples", []))
        + "\n"
        + json.dumps({k: v for k, v in result.items() if k != "samples"} | {"command": command})
        + "\n"
    )
    text = report(result, command, restored, raised)
    base.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"# wrote {base}.md and .jsonl")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
