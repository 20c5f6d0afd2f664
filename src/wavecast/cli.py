"""The ``wavecast`` command.

``wavecast serve --config wavecast.toml`` runs the server (``--app module:setup`` adds the
application's hooks); ``genconfig`` writes a starter configuration; ``checkconfig`` validates
one and imports its application; ``gentoken --user ID`` signs a connection token;
``demo`` serves the WebSocket echo demo.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .version import version

__all__ = ["STARTER_CONFIG", "main"]

STARTER_CONFIG = """\
# wavecast configuration. Every key can be overridden by an environment variable:
# WAVECAST_<SECTION>__<KEY>, e.g. WAVECAST_SERVER__PORT=9000.
# `wavecast checkconfig --config {path}` validates this file.

[server]
host = "127.0.0.1"
port = 8000
# tls_cert = "cert.pem"          # serve wss:// and https://
# tls_key = "key.pem"
log_level = "info"               # debug, info, warning, error
log_format = "text"              # text, or json for log collectors
shutdown_timeout = 10.0          # seconds clients get to close on SIGTERM
shutdown_delay = 0.0             # seconds unready (503 on /ready) before the drain starts
# allowed_origins = ["https://app.example.com"]   # pages on other origins that may connect
# app = "myapp.hooks:setup"      # a function given the node, to register hooks and RPC handlers
# Behind a proxy or load balancer, its addresses: clients are then counted by the address it
# puts in X-Forwarded-For, instead of all by the proxy's (docs/topics/limits.md).
# trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8"]

[per_address]
# Limits per client address; thousands of users behind one NAT share one (docs/topics/limits.md).
max_connections = 10000          # open WebSockets and streams: past it, 429
handshake_rate = 100.0           # new connections per second, beyond bursts of handshake_burst
api_rate = 1000.0                # server API requests per second, beyond bursts of api_burst

[client]
# Signs connection and subscription tokens (HS256). Keep it secret.
token_hmac_secret_key = "{secret}"
# Or verify tokens with the keys an identity provider publishes and rotates (docs/topics/jwks.md);
# the secret above is then not used:
# token_jwks_public_endpoint = "https://auth.example.com/.well-known/jwks.json"
allow_anonymous_connect_without_token = false
client_ping_interval = 25.0
client_pong_timeout = 8.0
# Limits on each client (docs/topics/limits.md): leave one out for its default, or set it to
# false for no limit.
client_queue_max_size = 1048576  # bytes queued for a slow client before its channel's policy applies
client_channel_limit = 128
user_connection_limit = 100
command_rate = 100.0             # commands per second, beyond bursts of command_burst: error 111
publication_rate = 50.0          # publications per second, beyond bursts of publication_burst

# Fallbacks for networks that block WebSocket (corporate proxies, some mobile carriers):
# centrifuge-js given a transports list connects over HTTP-streaming or SSE instead, with its
# commands POSTed to /emulation. Turn one off only if no client needs it.
[http_stream]
enabled = true                   # POST /connection/http_stream, JSON or Protobuf

[sse]
enabled = true                   # GET /connection/sse (EventSource), JSON

[http_api]
# Requests to POST /api/<method> send it as X-API-Key or "Authorization: apikey <key>".
key = "{api_key}"

[admin]
enabled = {admin_enabled}
password = "{admin_password}"    # user "admin" at /admin
login_failure_rate = 0.2         # wrong passwords per second and address, beyond bursts of
login_failure_burst = 10         # login_failure_burst; past it, 429 and Retry-After

[metrics]
enabled = true                   # Prometheus at /metrics

[engine]
type = "memory"
{snapshot_line}

[demo]
# The chat demo at /. Its /demo/token signs a token for any user name with the secret above,
# so it answers only while server.host is a loopback address (127.0.0.1, ::1, localhost): on
# any other, whoever reaches the server could sign in as anyone, and it answers 403.
enabled = {demo_enabled}

# Options of channels without a namespace.
[channel]
allow_subscribe_for_client = false

# A namespace: channels named "chat:<room>".
[namespaces.chat]
presence = true
join_leave = true
force_push_join_leave = true
history_size = 100
history_ttl = 3600.0
force_recovery = true
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_presence_for_subscriber = true
allow_history_for_subscriber = true
slow_consumer = "disconnect"     # or drop_oldest, or conflate

# The chat's "is typing" signals, in "typing:<room>": stale in seconds, so kept nowhere.
[namespaces.typing]
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
slow_consumer = "drop_oldest"    # a lost signal is replaced by the next
"""


def starter_config(path: str, *, dev: bool) -> str:
    """Return a commented starter configuration with fresh secrets."""
    return STARTER_CONFIG.format(
        path=path,
        secret=secrets.token_urlsafe(32),
        api_key=secrets.token_urlsafe(24),
        admin_password=secrets.token_urlsafe(12),
        admin_enabled="true" if dev else "false",
        demo_enabled="true" if dev else "false",
        snapshot_line='memory_snapshot = ".wavecast/history.json"   # keep history across restarts'
        if dev
        else '# memory_snapshot = "history.json"   # keep history across restarts',
    )


def _write_secret(path: Path, text: str, *, overwrite: bool) -> None:
    """Write a file that holds secrets, readable by its owner only (mode 0600).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    # O_EXCL makes "doesn't exist yet" and "create it" one step. A file being overwritten
    # keeps its mode through O_TRUNC, however loose, hence the fchmod before any secret lands.
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)
        file.write(text)


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    """Derive ``--host``, ``--port``, ... from the fields of the [server] section."""
    from .server.config import ServerSection

    hints = typing.get_type_hints(ServerSection)
    for field in dataclasses.fields(ServerSection):
        annotation = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        if annotation in (int, float):
            parser.add_argument(
                flag, dest=f"server.{field.name}", type=annotation, default=None, help=f"[server] {field.name}"
            )
        elif annotation is str or typing.get_origin(annotation) is typing.Literal:
            parser.add_argument(flag, dest=f"server.{field.name}", default=None, help=f"[server] {field.name}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wavecast", description="Real-time messaging server on WebSockets.")
    parser.add_argument("--version", action="version", version=f"wavecast {version}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--config", "-c", help="a TOML configuration file")
    _add_server_flags(serve)
    # A process started by the --workers supervisor, and its index: it serves with SO_REUSEPORT.
    serve.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)

    genconfig = commands.add_parser("genconfig", help="write a starter configuration with fresh secrets")
    genconfig.add_argument("--config", "-c", default="wavecast.toml", help="where to write it")
    genconfig.add_argument(
        "--dev", action="store_true", help="enable the chat demo, the admin page and a history snapshot"
    )
    genconfig.add_argument("--force", action="store_true", help="overwrite an existing file")

    checkconfig = commands.add_parser(
        "checkconfig", help="validate a configuration, and import its application (server.app) if it names one"
    )
    checkconfig.add_argument("--config", "-c", default="wavecast.toml")
    _add_server_flags(checkconfig)

    gentoken = commands.add_parser("gentoken", help="print a connection token (JWT)")
    gentoken.add_argument("--config", "-c", default="wavecast.toml")
    gentoken.add_argument("--user", required=True, help="the token's subject, a user id")
    gentoken.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires; 0 never")

    demo = commands.add_parser("demo", help="serve the echo demo: a page at / and an echo endpoint at /echo")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    return parser


def _load(path: str | None, overrides: dict[str, Any] | None = None) -> Any:
    """Load and validate a configuration; print the problems and exit 1 if it's invalid."""
    from .exceptions import ConfigError
    from .server.config import load_config

    try:
        # Flags go through the same checks as the file: --port 0 or --log-level verbose are refused.
        config = load_config(path, overrides={"server": overrides} if overrides else None)
    except (ConfigError, ValueError) as exc:
        print(f"wavecast: invalid configuration{f' in {path}' if path else ''}:", file=sys.stderr)
        for line in str(exc).splitlines():
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(1) from None
    return config


def _server_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The [server] values given as flags."""
    return {
        key.split(".", 1)[1]: value
        for key, value in vars(args).items()
        if key.startswith("server.") and value is not None
    }


def _check_app(config: Any) -> bool:
    """Import the application that ``server.app`` names, if any; print why it can't be, and
    return whether it could."""
    if not config.server.app:
        return True
    from .exceptions import AppLoadError
    from .server.appload import import_setup

    try:
        import_setup(config.server.app, config.server.app_dir)
    except AppLoadError as exc:
        print(f"wavecast: {exc}", file=sys.stderr)
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        config = _load(args.config, _server_overrides(args))
        from .server.logs import configure_logging

        configure_logging(config.server.log_level, config.server.log_format)
        if config.server.workers > 1 and args.worker is None:
            from .server.workers import supervise

            # Each worker imports the application; one that can't would be restarted forever.
            if not _check_app(config):
                return 1
            worker_args = [arg for arg in (argv if argv is not None else sys.argv[1:])[1:] if arg != "--worker"]
            server = config.server
            grace = server.shutdown_delay + server.shutdown_timeout
            return supervise(worker_args, server.workers, shutdown_timeout=grace)
        from .asyncio.runner import run
        from .exceptions import ConfigError
        from .server.serve import run_server

        try:
            if args.worker is not None:
                run(run_server(config.worker(args.worker), reuse_port=True))
            else:
                run(run_server(config))
        except (OSError, ConfigError) as exc:
            # The port is taken, a TLS file can't be loaded, the application can't: a sentence,
            # and the application's own traceback only.
            print(f"wavecast: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "genconfig":
        path = Path(args.config)
        try:
            _write_secret(path, starter_config(str(path), dev=args.dev), overwrite=args.force)
        except FileExistsError:
            print(f"wavecast: {path} exists; pass --force to overwrite it", file=sys.stderr)
            return 1
        print(f"wrote {path}")
        return 0
    if args.command == "checkconfig":
        config = _load(args.config, _server_overrides(args))
        if not _check_app(config):
            return 1
        print(f"{args.config}: OK" + (f", application {config.server.app} imported" if config.server.app else ""))
        return 0
    if args.command == "gentoken":
        from .realtime.auth import sign_token

        config = _load(args.config)
        secret = config.node_config().token_hmac_secret_key
        if not secret:
            print("wavecast: set client.token_hmac_secret_key to sign tokens", file=sys.stderr)
            return 1
        print(sign_token(secret, args.user, ttl=args.ttl or None))
        return 0
    if args.command == "demo":
        import logging

        from .asyncio.runner import run
        from .demo import run_demo

        logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        run(run_demo(args.host, args.port))
        return 0
    raise AssertionError(args.command)  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
