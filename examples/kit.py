"""What the examples share: a demo is a page, its namespaces, and the Python side it installs.

Each example under ``examples/<name>/`` defines one :class:`Demo` in its ``app.py``. This
module serves any set of them on one ``wavecast serve``-style server: ``python -m
examples.<name>`` runs one, ``python -m examples.gallery`` (what ``make run`` starts) runs
them all, with the gallery page at ``/``.

A demo's page is ``examples/<name>/static/index.html`` at ``/<name>/``, and its other files
at ``/<name>/<file>``; pages load centrifuge-js from ``/static/vendor/centrifuge.js`` and
get a connection token for a user name from ``/demo/token?user=NAME`` (the server's demo
routes, switched on here). Hooks are registered per namespace through :class:`Hooks`, so
that six demos share one node without knowing of each other: a namespace without a hook
keeps the permissions its options give.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import mimetypes
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wavecast.asyncio.runner import run
from wavecast.codes import ERROR_PERMISSION_DENIED
from wavecast.exceptions import CommandError
from wavecast.realtime import ChannelOptions, Node
from wavecast.realtime.auth import sign_token
from wavecast.realtime.contexts import (
    DisconnectContext,
    OnDisconnect,
    OnPublish,
    OnSubscribe,
    PublishContext,
    PublishResult,
    SubscribeContext,
    SubscribeResult,
)
from wavecast.server.app import HttpHandler, HttpResponse
from wavecast.server.config import Config, load_config
from wavecast.server.logs import configure_logging
from wavecast.server.serve import BackgroundTask, build_node, run_server

__all__ = ["Demo", "DemoContext", "Hooks", "json_response", "main", "serve"]

logger = logging.getLogger("wavecast.examples")

EXAMPLES = Path(__file__).resolve().parent


def json_response(value: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, json.dumps(value).encode(), "application/json")


_NOT_FOUND = HttpResponse(404, b"Not Found\n")


class Hooks:
    """The node's hooks, dispatched by the namespace of the channel they concern.

    ``on_publish`` and ``on_subscribe`` hooks belong to one namespace; ``on_disconnect``
    hooks all run, in the order they were added. The node lets a hook alone decide once one is
    set, so a namespace without a hook of its own gets the checks the node would make without
    hooks: its ``allow_publish_*`` and ``allow_subscribe_*`` options (error 103 otherwise).
    """

    def __init__(self) -> None:
        self.publish: dict[str, OnPublish] = {}
        self.subscribe: dict[str, OnSubscribe] = {}
        self.disconnect: list[OnDisconnect] = []

    def publishing(self, namespace: str) -> Callable[[OnPublish], OnPublish]:
        def register(hook: OnPublish) -> OnPublish:
            self.publish[namespace] = hook
            return hook

        return register

    def subscribing(self, namespace: str) -> Callable[[OnSubscribe], OnSubscribe]:
        def register(hook: OnSubscribe) -> OnSubscribe:
            self.subscribe[namespace] = hook
            return hook

        return register

    def disconnected(self, hook: OnDisconnect) -> OnDisconnect:
        self.disconnect.append(hook)
        return hook

    def install(self, node: Node) -> None:
        """Set the node's hooks to dispatch here."""

        async def on_publish(ctx: PublishContext) -> PublishResult | None:
            hook = self.publish.get(_namespace(ctx.channel))
            if hook is not None:
                return await hook(ctx)
            if not ctx.allowed_by_options():
                raise CommandError(ERROR_PERMISSION_DENIED)
            return None

        async def on_subscribe(ctx: SubscribeContext) -> SubscribeResult | None:
            hook = self.subscribe.get(_namespace(ctx.channel))
            if hook is not None:
                return await hook(ctx)
            if not ctx.allowed_by_options():
                raise CommandError(ERROR_PERMISSION_DENIED)
            return None

        async def on_disconnect(ctx: DisconnectContext) -> None:
            for hook in self.disconnect:
                try:
                    await hook(ctx)
                except Exception:
                    logger.exception("on_disconnect hook %s failed", getattr(hook, "__qualname__", hook))

        if self.publish:
            node.on_publish = on_publish
        if self.subscribe:
            node.on_subscribe = on_subscribe
        if self.disconnect:
            node.on_disconnect = on_disconnect


def _namespace(channel: str) -> str:
    namespace, sep, _ = channel.partition(":")
    return namespace if sep else ""


@dataclasses.dataclass(kw_only=True)
class DemoContext:
    """What a demo's ``setup`` gets: the node, hooks, and ways to add routes and feeds.

    Attributes:
        node: the real-time node, not started yet; ``@node.rpc("method")`` registers RPCs.
        config: the server's configuration (API key, token secret, address).
        hooks: per-namespace hooks.
    """

    node: Node
    config: Config
    hooks: Hooks
    name: str
    tasks: list[BackgroundTask] = dataclasses.field(default_factory=list)
    routes: dict[str, HttpHandler] = dataclasses.field(default_factory=dict)

    @property
    def url(self) -> str:
        """The server's own base URL, e.g. for a backend that calls the HTTP API."""
        scheme = "https" if self.config.server.tls_cert else "http"
        return f"{scheme}://{self.config.server.host}:{self.config.server.port}"

    @property
    def api_key(self) -> str:
        return self.config.http_api.key

    def token(self, user: str, *, ttl: int = 3600, info: Mapping[str, Any] | None = None) -> str:
        """Sign a connection token for ``user``, as an application's backend does after login."""
        claims = {} if info is None else {"info": dict(info)}
        return sign_token(self.node.config.token_hmac_secret_key, user, ttl=ttl, **claims)

    def task(self, task: BackgroundTask) -> BackgroundTask:
        """Run ``task(node)`` beside the server (a feed, a game loop), cancelled on shutdown."""
        self.tasks.append(task)
        return task

    def route(self, path: str) -> Callable[[HttpHandler], HttpHandler]:
        """Answer ``/<demo>/<path>`` with the decorated handler (before the static files)."""

        def register(handler: HttpHandler) -> HttpHandler:
            self.routes[f"/{self.name}/{path.lstrip('/')}"] = handler
            return handler

        return register


@dataclasses.dataclass(frozen=True, kw_only=True)
class Demo:
    """One example application.

    Attributes:
        name: the URL prefix of its page, ``/<name>/``, and its directory under ``examples/``.
        title: what the gallery calls it.
        summary: one sentence for the gallery.
        namespaces: the channel namespaces it needs, with their options.
        setup: installs hooks, RPCs, routes and background tasks.
        static: the directory of its page; ``examples/<name>/static`` by default.
        serve_options: arguments of :func:`wavecast.serve` it needs, such as
            ``socket_send_buffer``; they apply to every connection of the server it runs on.
    """

    name: str
    title: str
    summary: str
    namespaces: Mapping[str, ChannelOptions] = dataclasses.field(default_factory=dict)
    setup: Callable[[DemoContext], None] | None = None
    static: Path | None = None
    serve_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def static_dir(self) -> Path:
        return self.static if self.static is not None else EXAMPLES / self.name / "static"


def static_file(directory: Path, name: str) -> HttpResponse:
    """A file under ``directory``; hidden files and paths leaving it are refused."""
    parts = [part for part in name.split("/") if part]
    if any(part.startswith(".") for part in parts):
        return _NOT_FOUND
    path = directory.joinpath(*parts) if parts else directory
    if path.is_dir():
        path = path / "index.html"
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(directory.resolve()):
            return _NOT_FOUND
        data = resolved.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return _NOT_FOUND
    content_type = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return HttpResponse(200, data, content_type, headers=(("Cache-Control", "no-cache"),))


def configure(config: Config, demos: Sequence[Demo]) -> Config:
    """Add the demos' namespaces to ``config`` and switch on the demo routes (tokens, vendor
    files) and the HTTP-streaming and SSE endpoints, which the pages fall back to where
    WebSocket is refused."""
    namespaces = dict(config.namespaces)
    for demo in demos:
        for namespace, options in demo.namespaces.items():
            if namespace in namespaces and namespaces[namespace] != options:
                logger.info("namespace %r: using the %s demo's options", namespace, demo.name)
            namespaces[namespace] = options
    return dataclasses.replace(
        config,
        namespaces=namespaces,
        demo=dataclasses.replace(config.demo, enabled=True),
        http_stream=dataclasses.replace(config.http_stream, enabled=True),
        sse=dataclasses.replace(config.sse, enabled=True),
    )


def build(
    config: Config, demos: Sequence[Demo], *, index: HttpHandler | None = None
) -> tuple[Node, HttpHandler, list[BackgroundTask]]:
    """Build the node, the routes and the background tasks of ``demos``."""
    node = build_node(config)
    hooks = Hooks()
    routes: dict[str, HttpHandler] = {}
    tasks: list[BackgroundTask] = []
    for demo in demos:
        context = DemoContext(node=node, config=config, hooks=hooks, name=demo.name)
        if demo.setup is not None:
            demo.setup(context)
        routes.update(context.routes)
        tasks.extend(context.tasks)
    hooks.install(node)
    pages = {demo.name: demo.static_dir for demo in demos}

    async def http(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse | None:
        handler = routes.get(path)
        if handler is not None:
            return await handler(method, path, query, headers, body)
        if index is not None and path == "/":
            return await index(method, path, query, headers, body)
        name, sep, rest = path.lstrip("/").partition("/")
        if name in pages and method in ("GET", "HEAD"):
            if not sep:
                # /trading -> /trading/, so that the page's relative URLs resolve under it.
                return HttpResponse(308, b"", headers=(("Location", f"/{name}/"),))
            return static_file(pages[name], rest)
        return None

    return node, http, tasks


async def serve(config: Config, demos: Sequence[Demo], *, index: HttpHandler | None = None) -> None:
    """Serve ``demos`` until SIGINT or SIGTERM, then shut down gracefully."""
    config = configure(config, demos)
    node, routes, tasks = build(config, demos, index=index)
    options = {name: value for demo in demos for name, value in demo.serve_options.items()}
    await run_server(config, node, routes=routes, tasks=tasks, **options)


def main(demos: Sequence[Demo], *, index: HttpHandler | None = None, argv: Sequence[str] | None = None) -> None:
    """The command line of ``python -m examples.<name>`` and ``python -m examples.gallery``."""
    parser = argparse.ArgumentParser(description=f"Serve the {', '.join(d.name for d in demos)} demo(s).")
    parser.add_argument("--config", "-c", default=None, help="a wavecast.toml (`wavecast genconfig --dev`)")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    server = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    config = load_config(args.config, overrides={"server": server} if server else None)
    if not config.node_config().token_hmac_secret_key:
        parser.error(
            "the configuration has no client.token_hmac_secret_key: create one with `wavecast genconfig --dev`"
        )
    configure_logging(config.server.log_level, config.server.log_format)
    run(serve(config, demos, index=index))
