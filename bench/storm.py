"""A reconnect storm: 10,000 clients on ``wavecast serve``, sent back at once by a restart or a network blip.

    .venv/bin/python bench/storm.py [--clients 10000] [--modes on,off] [--events restart,blip] [--reps 1]

Each mode runs ``wavecast serve`` (pinned to CPU 0) with the node's admission rates at their
defaults (``on``) or turned off (``off``), and the loadgen's ``storm`` mode (pinned to CPU 1):
``--clients`` Centrifugo-protocol clients that send a connect command with an HS256 token once
open, and reconnect after centrifuge-js's backoff (0.5 s to 20 s, full jitter) whenever they
are refused (503, a temporary connect error) or cut, all handshakes at once. Once every client
is connected, one of two events sends them all back:

- ``restart``: the node gets SIGTERM (its clients are told 3001 and reconnect), and a new one is
  started on the same port; the clients' retries meanwhile are refused by the kernel, and their
  backoff grows, which spreads them out before the new node listens;
- ``blip``: the loadgen cuts every connection at once (SIGUSR1), as a network blip does, and all
  come back to the same node within their first backoff, 0.5 s to 1 s: the storm at its worst.

Measured, from the event until every client is connected again:

- recovery: seconds until then, and from the moment the new node answered ``/health``;
- the event loop's lag, as the time ``/health`` takes to answer on a kept-alive connection,
  asked every 50 ms (the answer waits for whatever the loop runs before it);
- the new node's RSS (peak, and at the end);
- refusals: 503s at the upgrade and errors 111 to the connect, as the clients saw them, and
  ``wavecast_admission_refused_total`` as the node counted them;
- clients refused for good (a terminal code): must be 0.

The machine's load average is printed with each run: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from nodeconfig import node_config  # noqa: E402

REPO = os.path.dirname(BENCH)
PYTHON = os.environ.get("PYTHON", os.path.join(REPO, ".venv", "bin", "python"))
SECRET = "bench-storm-secret-of-at-least-32-bytes-long"
LOADGEN_DIR = os.path.join(BENCH, "loadgen")
LOADGEN = os.path.join(LOADGEN_DIR, "build", "loadgen")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_nofile() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the driver ----------------------------------------------------------------------------


def server_config(mode: str, backlog: int | None) -> str:
    """``mode``: ``on`` (the default rates), ``off``, or ``C/CB:K/KB`` (connections per second and
    their burst, connects per second and their burst)."""
    client: dict[str, Any] = {}
    if mode == "off":
        client = {"admission_connection_rate": False, "admission_connect_rate": False}
    elif mode != "on":
        (rate, burst), (connect_rate, connect_burst) = (part.split("/") for part in mode.split(":"))
        client = {
            "admission_connection_rate": float(rate),
            "admission_connection_burst": int(burst),
            "admission_connect_rate": float(connect_rate),
            "admission_connect_burst": int(connect_burst),
        }
    return node_config(SECRET, server={"backlog": backlog} if backlog else {}, client=client)


def start_server(config_path: str, port: int) -> subprocess.Popen[bytes]:
    wavecast = os.path.join(os.path.dirname(PYTHON), "wavecast")
    return subprocess.Popen(
        ["taskset", "-c", "0", wavecast, "serve", "--config", config_path, "--port", str(port)],
        preexec_fn=raise_nofile,
    )


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            match = re.search(r"VmRSS:\s+(\d+)", status.read())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


async def health_latency(port: int, deadline: float) -> tuple[float | None, asyncio.StreamWriter | None]:
    """Open a kept-alive connection and time one GET /health on it; ``None`` while the node is down."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), deadline)
    except (OSError, TimeoutError):
        return None, None
    return await ask_health(reader, writer, deadline), writer


async def ask_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float) -> float | None:
    start = time.monotonic()
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline)
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        await asyncio.wait_for(reader.readexactly(length), deadline)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, AttributeError):
        return None
    return time.monotonic() - start


class Probe:
    """Samples the node's /health latency and RSS until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pid = 0
        self.lags: list[float] = []
        self.rss: list[int] = []
        self.ready_at: float | None = None
        self.stopped = False

    async def run(self) -> None:
        reader = writer = None
        while not self.stopped:
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 2)
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None
            lag = await ask_health(reader, writer, 30)
            if lag is None:
                writer.close()
                writer = None
                continue
            if self.ready_at is None:
                self.ready_at = time.monotonic()
            self.lags.append(lag)
            if self.pid:
                self.rss.append(rss_kib(self.pid))
            await asyncio.sleep(0.05)
        if writer is not None:
            writer.close()


async def scrape_refused(port: int) -> dict[str, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    found = re.findall(r'wavecast_admission_refused_total\{kind="(\w+)"\} ([0-9.e+]+)', text)
    return {kind: float(value) for kind, value in found}


class Loadgen:
    """The loadgen's storm mode, whose ``# STORM`` lines give its clients' counts."""

    def __init__(self, port: int, clients: int, token: str) -> None:
        self.port = port
        self.clients = clients
        self.token = token
        self.latest: dict[str, float] = {}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, duration: float) -> None:
        connect = json.dumps({"id": 1, "connect": {"token": self.token}})
        self.proc = await asyncio.create_subprocess_exec(
            "taskset", "-c", "1", LOADGEN, "storm", "--port", str(self.port), "--path", "/connection/websocket",
            "-n", str(self.clients), "-k", str(self.clients), "-t", str(duration), "--timeout", "5",
            "--sub-init", connect, "--report-every", "0.05", "-q",
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=raise_nofile,
        )  # fmt: skip
        asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            if line.startswith(b"# STORM "):
                self.latest = {k: float(v) for k, v in (item.split("=") for item in line.decode().split()[2:])}

    def get(self, key: str) -> int:
        return int(self.latest.get(key, 0))

    async def wait(self, done: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if done():
                return True
            await asyncio.sleep(0.02)
        return False

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def storm(mode: str, event: str, clients: int, timeout: float, backlog: int | None) -> dict[str, Any]:
    import jwt

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config_path = os.path.join(tmp, "wavecast.toml")
        with open(config_path, "w") as file:
            file.write(server_config(mode, backlog))
        server = start_server(config_path, port)
        loadgen = Loadgen(port, clients, jwt.encode({"sub": "storm"}, SECRET, algorithm="HS256"))
        probe = Probe(port)
        try:
            lag, writer = await health_latency(port, 1)
            while lag is None:
                await asyncio.sleep(0.1)
                lag, writer = await health_latency(port, 1)
            if writer is not None:
                writer.close()
            await loadgen.start(3 * timeout)
            if not await loadgen.wait(lambda: loadgen.get("connected") == clients, timeout):
                raise RuntimeError(f"only {loadgen.get('connected')} of {clients} clients connected at first")
            await asyncio.sleep(1)
            rss_before = rss_kib(server.pid)
            connects_before = loadgen.get("connects")
            before = {key: loadgen.get(key) for key in ("refused_upgrade", "refused_connect", "timeouts", "other")}
            load = os.getloadavg()[0]

            killed_at = time.monotonic()
            if event == "restart":
                server.send_signal(signal.SIGTERM)
                await asyncio.to_thread(server.wait, 30)
                server = start_server(config_path, port)
            else:
                assert loadgen.proc is not None
                loadgen.proc.send_signal(signal.SIGUSR1)
            probe.pid = server.pid
            probing = asyncio.get_running_loop().create_task(probe.run())
            back = await loadgen.wait(
                lambda: loadgen.get("connects") >= connects_before + clients and loadgen.get("connected") == clients,
                timeout,
            )
            back_at = time.monotonic()
            probe.stopped = True
            await probing
            refused = await scrape_refused(port)
            lags = sorted(probe.lags) or [0.0]
            return {
                "mode": mode,
                "event": event,
                "clients": clients,
                "back": back,
                "connected": loadgen.get("connected"),
                "recovery_s": back_at - killed_at,
                "recovery_after_ready_s": back_at - probe.ready_at if probe.ready_at else None,
                "lag_p50_ms": 1000 * statistics.median(lags),
                "lag_p99_ms": 1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))],
                "lag_max_ms": 1000 * lags[-1],
                "rss_before_mib": rss_before / 1024,
                "rss_peak_mib": max(probe.rss, default=0) / 1024,
                "rss_end_mib": rss_kib(server.pid) / 1024,
                "refused_upgrade": loadgen.get("refused_upgrade") - before["refused_upgrade"],
                "refused_connect": loadgen.get("refused_connect") - before["refused_connect"],
                "timeouts": loadgen.get("timeouts") - before["timeouts"],
                "other_errors": loadgen.get("other") - before["other"],
                "server_refused": refused,
                "gave_up": loadgen.get("gave_up"),
                "load_before": load,
            }
        finally:
            probe.stopped = True
            await loadgen.stop()
            if server.poll() is None:
                server.kill()
                server.wait()


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| event | admission | back | recovery | after /health answered | /health p50 / p99 / max |"
        " RSS before / peak / end | 503 at upgrade | 111 to connect | timed out | refused for good | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['event']} | {r['mode']} | {r['connected']:,}/{r['clients']:,} | {r['recovery_s']:.1f} s | "
            f"{r['recovery_after_ready_s']:.1f} s | "
            f"{r['lag_p50_ms']:.0f} / {r['lag_p99_ms']:.0f} / {r['lag_max_ms']:.0f} ms | "
            f"{r['rss_before_mib']:.0f} / {r['rss_peak_mib']:.0f} / {r['rss_end_mib']:.0f} MiB | "
            f"{r['refused_upgrade']:,} | {r['refused_connect']:,} | {r['timeouts']:,} | {r['gave_up']} | "
            f"{r['load_before']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--modes", default="on,off", help="on, off, or rates as C/CB:K/KB (see server_config)")
    parser.add_argument("--backlog", type=int, help="the server's listen backlog; its default otherwise")
    parser.add_argument("--events", default="restart,blip", help="restart: the node; blip: every connection cut")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the clients")
    args = parser.parse_args()
    raise_nofile()
    subprocess.run(["make", "-s", "-C", LOADGEN_DIR, LOADGEN], check=True)
    results = []
    for _ in range(args.reps):
        for event in args.events.split(","):
            for mode in args.modes.split(","):
                result = asyncio.run(storm(mode, event, args.clients, args.timeout, args.backlog))
                print(json.dumps(result), flush=True)
                results.append(result)
    print(table(results))


if __name__ == "__main__":
    main()
