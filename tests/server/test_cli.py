"""The ``wavecast`` command, run as a subprocess: genconfig, checkconfig, gentoken, serve and its signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import time
import tomllib
from pathlib import Path

import jwt
import pytest
from centrifuge import ClientState

from wavecast.asyncio import connect
from wavecast.codes import DISCONNECT_SHUTDOWN
from wavecast.server.config import load_config

from ..support.http import http
from ..support.sdk import Clients, subscribe
from ..support.serve import StartServe, wavecast_command
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

# Subprocesses don't inherit overrides meant for this process.
CLEAN_ENV = {name: value for name, value in os.environ.items() if not name.startswith("WAVECAST_")}


def wavecast(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``wavecast <args>`` and return what it did."""
    return subprocess.run(
        [*wavecast_command(), *args],
        cwd=cwd,
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def genconfig(tmp_path: Path, *args: str, name: str = "wavecast.toml") -> Path:
    result = wavecast("genconfig", "--config", name, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / name


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- genconfig ------------------------------------------------------------------------------------


def test_genconfig_writes_a_valid_file(tmp_path: Path) -> None:
    result = wavecast("genconfig", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote wavecast.toml\n"
    path = tmp_path / "wavecast.toml"
    config = load_config(path, environ={})
    assert config.demo.enabled is False
    assert config.admin.enabled is False
    # Both fallbacks for networks that block WebSocket, on in every new deployment.
    assert config.http_stream.enabled and config.sse.enabled
    assert "wavecast checkconfig --config wavecast.toml" in path.read_text()


def test_genconfig_dev(tmp_path: Path) -> None:
    path = genconfig(tmp_path, "--dev", name="dev.toml")
    config = load_config(path, environ={})
    assert config.demo.enabled is True
    assert config.admin.enabled is True
    assert config.engine.memory_snapshot == ".wavecast/history.json"
    assert config.http_stream.enabled and config.sse.enabled


def test_genconfig_refuses_to_overwrite(tmp_path: Path) -> None:
    path = genconfig(tmp_path)
    before = path.read_text()
    result = wavecast("genconfig", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "wavecast: wavecast.toml exists; pass --force to overwrite it\n"
    assert path.read_text() == before

    result = wavecast("genconfig", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = path.read_text()
    assert after != before  # fresh secrets
    assert tomllib.loads(after)["http_api"]["key"] != tomllib.loads(before)["http_api"]["key"]


def test_genconfig_file_is_private(tmp_path: Path) -> None:
    # It holds the HMAC secret, the API key and the admin password: it was written 0644.
    path = genconfig(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Overwriting a file that was readable by anyone makes it private too, before any secret lands.
    path.write_text("# someone else's\n")
    path.chmod(0o644)
    result = wavecast("genconfig", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "token_hmac_secret_key" in path.read_text()


def test_genconfig_explains_the_demo_tokens(tmp_path: Path) -> None:
    text = genconfig(tmp_path, "--dev").read_text()
    demo = text[text.index("[demo]") :]
    assert "/demo/token signs a token for any user name" in demo
    assert "loopback address" in demo


# --- checkconfig ------------------------------------------------------------------------------------


def test_checkconfig_ok(tmp_path: Path) -> None:
    genconfig(tmp_path)
    result = wavecast("checkconfig", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wavecast.toml: OK\n"
    assert result.stderr == ""


def test_checkconfig_reports_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nprot = 9000\n[websocket]\ncompression = "yes"\n[sever]\nport = 1\n[http_api]\nkey = "k"\n',
    )
    result = wavecast("checkconfig", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"wavecast: invalid configuration in {path}:",
        "  server.prot: unknown key; did you mean 'port'?",
        "  websocket.compression: expected a boolean, got 'yes'",
        "  sever: unknown section; did you mean 'server'?",
    ]
    assert "Traceback" not in result.stderr


def test_checkconfig_conflicts(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\ntls_cert = "cert.pem"\n[admin]\nenabled = true\n')
    result = wavecast("checkconfig", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"wavecast: invalid configuration in {path}:",
        "  server: tls_cert and tls_key go together",
        "  http_api: the API needs a key: set http_api.key, or http_api.insecure = true",
        "  admin: the admin page needs a password: set admin.password",
    ]


def test_checkconfig_missing_file_and_invalid_toml(tmp_path: Path) -> None:
    result = wavecast("checkconfig", "--config", "missing.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "wavecast: invalid configuration in missing.toml:",
        "  missing.toml: no such file",
    ]
    path = write(tmp_path, "[server\n")
    result = wavecast("checkconfig", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "invalid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_checkconfig_applies_env(tmp_path: Path) -> None:
    genconfig(tmp_path)
    result = wavecast("checkconfig", cwd=tmp_path, env={"WAVECAST_SERVER__PORT": "http"})
    assert result.returncode == 1
    assert "  server.port: expected an integer, got 'http'" in result.stderr.splitlines()


# --- gentoken ---------------------------------------------------------------------------------------


def test_gentoken_verifies_with_the_secret(tmp_path: Path) -> None:
    path = genconfig(tmp_path)
    secret = load_config(path, environ={}).node_config().token_hmac_secret_key
    before = int(time.time())
    result = wavecast("gentoken", "--user", "alice", "--ttl", "120", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert before + 120 <= claims["exp"] <= int(time.time()) + 120
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-of-at-least-32-bytes!", algorithms=["HS256"])


def test_gentoken_without_expiry(tmp_path: Path) -> None:
    path = genconfig(tmp_path)
    secret = load_config(path, environ={}).node_config().token_hmac_secret_key
    result = wavecast("gentoken", "--user", "bob", "--ttl", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"]) == {"sub": "bob"}


def test_gentoken_needs_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[http_api]\nkey = "k"\n', name="nosecret.toml")
    result = wavecast("gentoken", "--config", str(path), "--user", "x", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "wavecast: set client.token_hmac_secret_key to sign tokens\n"


def test_gentoken_needs_a_user(tmp_path: Path) -> None:
    genconfig(tmp_path)
    result = wavecast("gentoken", cwd=tmp_path)
    assert result.returncode == 2
    assert "--user" in result.stderr


# --- serve ------------------------------------------------------------------------------------------


def serve_config(tmp_path: Path, *, shutdown_timeout: float = 3.0) -> tuple[Path, str]:
    """A starter configuration with a short shutdown timeout; return its path and secret."""
    path = genconfig(tmp_path)
    text = path.read_text().replace("shutdown_timeout = 10.0", f"shutdown_timeout = {shutdown_timeout}")
    path.write_text(text)
    return path, load_config(path, environ={}).node_config().token_hmac_secret_key


async def test_serve_rejects_an_invalid_flag(tmp_path: Path) -> None:
    path, _ = serve_config(tmp_path)
    result = wavecast("serve", "--config", str(path), "--log-level", "verbose", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"wavecast: invalid configuration in {path}:",
        "  server.log_level: expected 'debug' or 'info' or 'warning' or 'error', got 'verbose'",
    ]
    result = wavecast("serve", "--config", str(path), "--workers", "2", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "  server.port: expected 1-65535, got 0" in result.stderr.splitlines()
    assert any(line.startswith("  server.workers: several workers") for line in result.stderr.splitlines())


def test_serve_port_taken(tmp_path: Path) -> None:
    path, _ = serve_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = wavecast("serve", "--config", str(path), "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("wavecast: ")]
    assert str(port) in line
    assert "in use" in line


def test_serve_tls_files_missing(tmp_path: Path) -> None:
    path, _ = serve_config(tmp_path)
    result = wavecast(
        "serve", "--config", str(path), "--tls-cert", "missing-cert.pem", "--tls-key", "missing-key.pem", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "wavecast: server.tls_cert, server.tls_key: can't load 'missing-cert.pem' and 'missing-key.pem': "
        "No such file or directory"
    )


async def test_serve_health_and_ready(tmp_path: Path, start_serve: StartServe) -> None:
    path, _ = serve_config(tmp_path)
    process = await start_serve(path)
    health = await http("GET", process.url + "/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = await http("GET", process.url + "/ready")
    assert (ready.status, ready.json()) == (200, {"status": "ready"})
    assert f"wavecast serving on http://127.0.0.1:{process.port}/" in process.log
    assert await process.stop() == 0


async def test_serve_logs_json(tmp_path: Path, start_serve: StartServe) -> None:
    path, _ = serve_config(tmp_path)
    path.write_text(path.read_text().replace('log_format = "text"', 'log_format = "json"'))
    process = await start_serve(path)
    assert await process.stop() == 0
    entries = [json.loads(line) for line in process.log.splitlines()]
    serving = entries[0]
    assert serving["level"] == "info"
    assert serving["logger"] == "wavecast.server"
    assert serving["message"] == f"wavecast serving on http://127.0.0.1:{process.port}/ (engine memory)"
    assert serving["port"] == process.port
    assert serving["time"].endswith("Z")
    assert [entry["message"] for entry in entries[1:]] == ["shutting down: 0 clients", "stopped"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_shuts_down_gracefully(
    tmp_path: Path, start_serve: StartServe, make_client: Clients, sig: signal.Signals
) -> None:
    path, secret = serve_config(tmp_path, shutdown_timeout=3.0)
    process = await start_serve(path)
    client, events = make_client(process.ws_url, token=make_token("alice", secret=secret))
    await client.connect()
    await events.wait("connected")
    messages = await subscribe(client, "chat:lobby")

    assert await process.stop(sig, timeout=3000 * MS + 5000 * MS) == 0
    # The client was told to reconnect (3001 "shutdown"), not dropped, and it tries to.
    connecting = await events.wait("connecting", lambda ctx: ctx.code == DISCONNECT_SHUTDOWN.code)
    assert connecting.reason == DISCONNECT_SHUTDOWN.reason
    assert not events.named("disconnected")
    assert client.state == ClientState.CONNECTING
    assert messages.named("subscribed")
    log = process.log
    assert "shutting down: 1 clients" in log
    assert "stopped" in log
    assert "Traceback" not in log


async def test_serve_exits_despite_a_client_that_doesnt_close(tmp_path: Path, start_serve: StartServe) -> None:
    path, secret = serve_config(tmp_path, shutdown_timeout=1.0)
    process = await start_serve(path)
    connection = await connect(process.ws_url, compression=None, ping_interval=None, open_timeout=5000 * MS)
    try:
        await connection.send(json.dumps({"id": 1, "connect": {"token": make_token("stuck", secret=secret)}}))
        assert "connect" in json.loads(await asyncio.wait_for(connection.recv(), 5000 * MS))
        # Never read again: the server's close frame goes unanswered.
        connection.transport.pause_reading()
        assert await process.stop(timeout=1000 * MS + 5000 * MS) == 0
        assert "stopped" in process.log
    finally:
        connection.transport.abort()
        await connection.wait_closed()


async def test_serve_client_reconnects_after_restart(
    tmp_path: Path, start_serve: StartServe, make_client: Clients
) -> None:
    path, secret = serve_config(tmp_path)
    process = await start_serve(path)
    client, events = make_client(process.ws_url, token=make_token("alice", secret=secret))
    await client.connect()
    await events.wait("connected")
    assert await process.stop() == 0
    await events.wait("connecting", lambda ctx: ctx.code == DISCONNECT_SHUTDOWN.code)

    await start_serve(path, port=process.port)
    await wait_until(lambda: len(events.named("connected")) == 2, timeout=5000 * MS, what="a reconnection")
    assert client.state == ClientState.CONNECTED
