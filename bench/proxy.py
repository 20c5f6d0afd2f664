"""Connects per second through the connect proxy, beside an in-process hook and tokens.

    .venv/bin/python bench/proxy.py [--clients 2000] [--concurrency 50] [--reps 3] [--modes token,hook,proxy]

Each mode runs ``wavecast serve`` (pinned to CPU 0) and opens ``--clients`` WebSocket
connections, ``--concurrency`` at a time, from this process (CPU 1); each sends the connect
command and waits for its reply, then closes. The rate is connects (replied) per second.

| mode | how a client is let in |
|---|---|
| token | a JWT connection token, checked in the server (no hook) |
| hook | ``on_connecting`` in Python, loaded with ``server.app`` (``--app``) |
| proxy | the connect proxy: an HTTP request per connect to an aiohttp backend |
| jwks-rs256, jwks-es256, jwks-eddsa | a JWT signed with an RSA 2048, P-256 or Ed25519 key from a JWKS endpoint |

In the JWKS modes the server verifies tokens with ``token_jwks_public_endpoint``, which a
thread of this process serves.

The backend (``bench/servers/proxy_backend.py``) runs on CPU 1 beside this process, and
the proxy reaches it over kept-alive connections.

The modes are interleaved, rep by rep, and the table gives each one's median with its
ratio to ``token`` of the same run, and the number of TCP connections the backend accepted
(the pool's reuse: far fewer than connects), or the requests the JWKS endpoint answered.
``--modes`` picks the modes (``token`` always runs, for the ratios); the JWKS ones aren't run
by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from nodeconfig import node_config  # noqa: E402

REPO = os.path.dirname(BENCH)
PYTHON = os.environ.get("PYTHON", os.path.join(REPO, ".venv", "bin", "python"))
SECRET = "bench-proxy-secret-of-at-least-32-bytes-long"
MODES = ("token", "hook", "proxy")
JWKS_MODES = {"jwks-rs256": "RS256", "jwks-es256": "ES256", "jwks-eddsa": "EdDSA"}


def signing_key(algorithm: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


class JWKSEndpoint:
    """The public half of ``key`` as a JWK Set, served by a thread on a free port; counts requests."""

    def __init__(self, key: Any, algorithm: str) -> None:
        import http.server
        import threading

        from jwt.algorithms import get_default_algorithms

        jwk = {**json.loads(get_default_algorithms()[algorithm].to_jwk(key.public_key())), "kid": "bench", "use": "sig"}
        body = json.dumps({"keys": [jwk]}).encode()
        endpoint = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, command: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu), *command] if taskset and (os.cpu_count() or 1) > cpu else command


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


def server_config(mode: str, backend_port: int, jwks_url: str = "") -> str:
    client: dict[str, Any] = {
        "command_rate": False,
        # Connects per second are what this measures, as fast as they come.
        "admission_connection_rate": False,
        "admission_connect_rate": False,
    }
    if jwks_url:
        client["token_jwks_public_endpoint"] = jwks_url
    server: dict[str, Any] = {}
    if mode == "hook":
        server = {"app": "proxy_backend:setup", "app_dir": os.path.join(BENCH, "servers")}
    sections: dict[str, Any] = {"server": server, "client": client}
    if mode == "proxy":
        sections["proxy"] = {"connect": {"endpoint": f"http://127.0.0.1:{backend_port}/centrifugo/connect"}}
    return node_config(None if jwks_url else SECRET, **sections)


async def connect_all(url: str, commands: list[str], concurrency: int) -> tuple[int, float]:
    from websockets.asyncio.client import connect

    queue = iter(commands)
    done = 0

    async def worker() -> None:
        nonlocal done
        for command in queue:
            async with connect(url, compression=None) as websocket:
                await websocket.send(command)
                reply = json.loads(await websocket.recv())
                if "connect" in reply:
                    done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def commands(mode: str, count: int, key: Any = None) -> list[str]:
    if mode in JWKS_MODES:
        import jwt

        algorithm = JWKS_MODES[mode]
        return [
            json.dumps({"id": 1, "connect": {"token": jwt.encode({"sub": f"u{i}"}, key, algorithm, {"kid": "bench"})}})
            for i in range(count)
        ]
    if mode == "token":
        sys.path.insert(0, os.path.join(REPO, "src"))
        from wavecast.realtime.auth import sign_token

        return [
            json.dumps({"id": 1, "connect": {"token": sign_token(SECRET, f"u{i}", ttl=None)}}) for i in range(count)
        ]
    return [json.dumps({"id": 1, "connect": {"data": {"user": f"u{i}"}}}) for i in range(count)]


def run_mode(mode: str, args: argparse.Namespace, directory: str) -> dict[str, Any]:
    backend_port, port = free_port(), free_port()
    backend = None
    if mode == "proxy":
        script = os.path.join(BENCH, "servers", "proxy_backend.py")
        backend = subprocess.Popen(pinned(1, [PYTHON, script, str(backend_port)]))
        wait_ready(f"http://127.0.0.1:{backend_port}/ready", backend)
    key = jwks = None
    if mode in JWKS_MODES:
        key = signing_key(JWKS_MODES[mode])
        jwks = JWKSEndpoint(key, JWKS_MODES[mode])
    config = os.path.join(directory, f"{mode}.toml")
    with open(config, "w") as file:
        file.write(server_config(mode, backend_port, jwks.url if jwks else ""))
    wavecast = os.path.join(REPO, ".venv", "bin", "wavecast")
    server = subprocess.Popen(pinned(0, [wavecast, "serve", "--config", config, "--port", str(port)]))
    try:
        wait_ready(f"http://127.0.0.1:{port}/ready", server)
        todo = commands(mode, args.clients, key)
        cpu = {process.pid: cpu_seconds(process.pid) for process in (server, backend) if process is not None}
        done, elapsed = asyncio.run(connect_all(f"ws://127.0.0.1:{port}/connection/websocket", todo, args.concurrency))
        result: dict[str, Any] = {"mode": mode, "connects": done, "seconds": elapsed, "rate": done / elapsed}
        result["server_us"] = (cpu_seconds(server.pid) - cpu[server.pid]) / done * 1e6
        if backend is not None:
            result["backend_us"] = (cpu_seconds(backend.pid) - cpu[backend.pid]) / done * 1e6
        if backend is not None:
            with urllib.request.urlopen(f"http://127.0.0.1:{backend_port}/stats") as response:
                result.update(json.load(response))
        if jwks is not None:
            result["jwks_requests"] = jwks.requests
        return result
    finally:
        if jwks is not None:
            jwks.close()
        for process in (server, backend):
            if process is not None:
                process.terminate()
                process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join((*MODES, *JWKS_MODES))}")
    args = parser.parse_args()
    modes = ["token", *(mode for mode in args.modes.split(",") if mode != "token")]
    unknown = set(modes) - {*MODES, *JWKS_MODES}
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        for rep in range(args.reps):
            for mode in modes:
                result = run_mode(mode, args, directory)
                runs.append(result)
                rate, cpu = result["rate"], result["server_us"]
                print(f"rep {rep + 1} {mode}: {rate:,.0f} connects/s, server {cpu:.0f} us/connect", file=sys.stderr)

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["mode"] == mode)

    print(
        f"`bench/proxy.py --clients {args.clients} --concurrency {args.concurrency} --reps {args.reps} "
        f"--modes {','.join(modes)}`, medians\n"
    )
    print(
        "| mode | connects/s | vs token | server CPU us/connect | vs token | backend CPU us/connect "
        "| backend TCP connections / requests |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode in modes:
        rate, cpu = median(mode, "rate"), median(mode, "server_us")
        pooled = [r for r in runs if r["mode"] == mode and "connections" in r]
        backend = f"{pooled[0]['connections']} / {pooled[0]['requests']}" if pooled else "-"
        fetched = [r["jwks_requests"] for r in runs if r["mode"] == mode and "jwks_requests" in r]
        if fetched:
            backend = f"JWKS: {max(fetched)} request(s) per run"
        backend_us = f"{median(mode, 'backend_us'):.0f}" if pooled else "-"
        print(
            f"| {mode} | {rate:,.0f} | {rate / median('token', 'rate'):.2f}x | {cpu:.0f} | "
            f"{cpu / median('token', 'server_us'):.2f}x | {backend_us} | {backend} |"
        )


if __name__ == "__main__":
    main()
