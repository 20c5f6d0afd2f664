"""Run a node as a standalone server: engines, routes, TLS, signals and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..asyncio.server import Answer, Server, ServerConnection, http_response, serve
from ..asyncio.streaming import HTTPStream, StreamingResponse
from ..codes import DISCONNECT_SHUTDOWN
from ..engines.base import Broker, PresenceManager
from ..exceptions import ConfigError
from ..protocol.events import Request, Response
from ..protocol.headers import Headers
from ..realtime.emulation import EMULATION_PATH
from ..realtime.node import Node
from ..realtime.websocket import WEBSOCKET_PATH, websocket_server_options
from .app import App, HttpHandler, HttpResponse
from .config import Config
from .emulation import Streams, StreamStart
from .http_api import call_api
from .proxy import EventProxies

if TYPE_CHECKING:
    from .pgoutbox import OutboxConsumer

__all__ = ["BackgroundTask", "build_node", "run_server", "serve_streams", "start_server", "streaming_response"]

logger = logging.getLogger("wavecast.server")


def build_engines(config: Config) -> tuple[Broker, PresenceManager]:
    """Create the configured engine's broker and presence manager."""
    if config.engine.type == "redis" and config.engine.redis_cluster:
        from ..engines.redis.cluster import RedisClusterEngine

        on_cluster = RedisClusterEngine(config.engine.redis_cluster, prefix=config.engine.redis_prefix)
        return on_cluster.broker, on_cluster.presence_manager
    if config.engine.type == "redis" and config.engine.redis_shards:
        from ..engines.redis.sharded import ShardedRedisEngine

        sharded = ShardedRedisEngine(config.engine.redis_shards, prefix=config.engine.redis_prefix)
        return sharded.broker, sharded.presence_manager
    if config.engine.type == "redis":
        from ..engines.redis import RedisEngine

        engine = RedisEngine(config.engine.redis_url, prefix=config.engine.redis_prefix)
        return engine.broker, engine.presence_manager
    if config.engine.type == "nats":
        from ..engines.nats import NatsEngine

        nats = NatsEngine(config.engine.nats_url, config.engine.redis_url, prefix=config.engine.redis_prefix)
        return nats.broker, nats.presence_manager
    from ..engines.memory import MemoryBroker, MemoryPresenceManager

    section = config.engine
    broker = MemoryBroker(
        snapshot_path=section.memory_snapshot or None,
        max_streams=section.memory_max_streams,
        max_bytes=section.memory_max_bytes,
        max_user_bytes=section.memory_max_user_bytes,
        max_idempotent_results=section.memory_max_idempotent_results,
    )
    return broker, MemoryPresenceManager()


def build_node(config: Config) -> Node:
    broker, presence_manager = build_engines(config)
    return Node(config.node_config(), broker=broker, presence_manager=presence_manager)


#: The answer to an upgrade past the node's admission rate: cheap, and temporary to the SDKs,
#: which retry a failed upgrade after their backoff with jitter.
_OVERLOADED = ("Service Unavailable: the server is overloaded, retry later\n", {"Retry-After": "1"})


def _process_request(app: App) -> Any:
    async def process_request(connection: ServerConnection, request: Request) -> Response | StreamingResponse | None:
        remote = connection.remote_address
        peer = str(remote[0]) if isinstance(remote, tuple) and remote else None
        client = app.client_address(peer, request.headers.get_all("X-Forwarded-For"))
        answer: HttpResponse | None
        if request.path == WEBSOCKET_PATH and "upgrade" in ", ".join(request.headers.get_all("Connection")).lower():
            if not app.ready:
                return http_response(503, "Service Unavailable: the server is stopping\n")
            # Counted until the connection closes (Server.on_connection_lost): an address past
            # its limits is refused before it can spend the node's admission.
            answer = app.admit(client, connection)
            if answer is not None:
                return http_response(answer.status, answer.body, headers=answer.headers)
            if not app.node.admission.admit_connection(time.monotonic()):
                app.addresses.close(connection)
                return http_response(503, _OVERLOADED[0], headers=_OVERLOADED[1])
            return None
        headers = {name.lower(): value for name, value in request.headers.items()}
        opened = app.stream(request.method, request.path, request.query, headers, request.body, request)
        if opened is None:
            answer = await app.http(request.method, request.path, request.query, headers, request.body, client=client)
        elif isinstance(opened, HttpResponse):
            answer = opened
        else:
            answer = app.admit(client, connection)
            if answer is None:
                return streaming_response(opened)
        response = http_response(answer.status, answer.body, content_type=answer.content_type, headers=answer.headers)
        if request.method == "HEAD":
            # The head of a GET, without its content (RFC 9110, section 9.3.2): a body here would
            # be read as the start of the next response on a kept-alive connection.
            response = dataclasses.replace(response, body=b"")
        return response

    return process_request


def streaming_response(opened: StreamStart) -> StreamingResponse:
    """The answer of wavecast's own server that opens a stream."""
    run = opened.run

    async def handler(stream: HTTPStream) -> None:
        await run(stream)

    return StreamingResponse(Response(status_code=200, reason_phrase="OK", headers=Headers(opened.headers)), handler)


def serve_streams(streams: Streams) -> Callable[[ServerConnection, Request], Awaitable[Answer | None]]:
    """A ``process_request`` for :func:`wavecast.serve` that answers only the stream and
    emulation endpoints, for a node served without the standalone server's other routes."""

    async def process_request(connection: ServerConnection, request: Request) -> Response | StreamingResponse | None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        if request.path in streams.paths:
            opened = streams.open(request.method, request.path, request.query, headers, request.body, request)
        elif request.path == EMULATION_PATH:
            opened = await streams.emulation(request.method, headers, request.body)
        else:
            return None
        if isinstance(opened, StreamStart):
            return streaming_response(opened)
        return http_response(opened.status, opened.body, headers=opened.headers)

    return process_request


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.server.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = config.server.tls_cert, config.server.tls_key
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included; FileNotFoundError doesn't name the file
        raise ConfigError(
            f"server.tls_cert, server.tls_key: can't load {cert!r} and {key!r}: {exc.strerror or exc}"
        ) from exc
    return context


async def start_server(
    config: Config, node: Node | None = None, *, routes: HttpHandler | None = None, **kwargs: Any
) -> tuple[Server, App]:
    """Start the node and listen; return the server and its routes. ``kwargs`` go to :func:`serve`,
    over what the configuration sets (``socket_send_buffer``, ``backlog``...).

    Args:
        config: the server's configuration.
        node: a node built by the caller, e.g. with hooks set; by default one from ``config``.
        routes: the application's own HTTP routes, asked before the server's (see :class:`App`).

    Raises:
        ConfigError: the TLS certificate or key can't be loaded.
        AppLoadError: ``server.app`` can't be imported, or its setup function failed.
        OSError: the server can't listen, e.g. the port is taken; the node is stopped again.
    """
    node = node if node is not None else build_node(config)
    if config.server.app:
        from .appload import load_app

        await load_app(node, config.server.app, config.server.app_dir)
        logger.info("loaded the application's hooks from %s", config.server.app)
    app = App(config, node, routes)
    proxies = EventProxies(config)
    if proxies.install(node):
        app.proxies = proxies
    ssl_context = _ssl_context(config)
    await node.start()
    options = websocket_server_options(node)
    # The caller's own arguments win over what the configuration says.
    options = {
        "backlog": config.server.backlog,
        "compression": "deflate" if config.websocket.compression else None,
        "write_limit": config.websocket.write_limit,
        "write_delay": config.websocket.write_delay or None,
        "socket_send_buffer": config.websocket.socket_send_buffer,
        "open_timeout": config.websocket.open_timeout,
        **options,
        **kwargs,
    }
    try:
        server = await serve(
            options.pop("handler"),
            config.server.host,
            config.server.port,
            ssl=ssl_context,
            process_request=_process_request(app),
            **options,
        )
    except BaseException:
        await node.shutdown()
        raise
    app.start()
    server.on_connection_lost = app.addresses.close
    if config.outbox.enabled:
        try:
            app.outbox = await _start_outbox(config, node)
        except BaseException:
            server.close()
            app.stop()
            await node.shutdown()
            raise
    return server, app


async def _start_outbox(config: Config, node: Node) -> OutboxConsumer:
    from .pgoutbox import OutboxConsumer

    consumer = OutboxConsumer(config.outbox, functools.partial(call_api, node))
    await consumer.start()
    return consumer


async def shutdown(server: Server, app: App, timeout: float, delay: float = 0.0) -> None:
    """Turn unready, wait ``delay``, finish the outbox's batches, stop accepting, tell clients to
    reconnect elsewhere (3001), drain, and stop the engines."""
    app.stopping = True
    if delay:
        await asyncio.sleep(delay)
    if app.outbox is not None:
        # Before the node stops: the batch in flight still has the engine to publish to.
        await app.outbox.stop(timeout)
    server.stop_accepting()
    await app.node.shutdown(DISCONNECT_SHUTDOWN)
    server.close()
    await server.wait_closed(timeout)
    if app.proxies is not None:
        await app.proxies.aclose()
    app.stop()


#: Work an application runs beside the server, such as a feed that publishes: started once the
#: server listens, given the node, and cancelled before the graceful shutdown begins.
BackgroundTask = Callable[[Node], Awaitable[None]]


async def run_server(
    config: Config,
    node: Node | None = None,
    *,
    routes: HttpHandler | None = None,
    tasks: Sequence[BackgroundTask] = (),
    **kwargs: Any,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully.

    ``node`` and ``routes`` are :func:`start_server`'s; ``tasks`` run beside the server, and
    one that fails is logged without stopping it.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Before starting: a node announces itself to the others as it starts, and a signal that
    # comes after that must stop it gracefully rather than kill it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server, app = await start_server(config, node, routes=routes, **kwargs)
    scheme = "https" if config.server.tls_cert else "http"
    logger.info(
        "wavecast serving on %s://%s:%d/ (engine %s)",
        scheme,
        config.server.host,
        server.port,
        config.engine.type,
        extra={"port": server.port},
    )
    running = [loop.create_task(_background(task, app.node), name=f"wavecast-task-{i}") for i, task in enumerate(tasks)]
    try:
        await stop.wait()
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    logger.info("shutting down: %d clients", app.node.hub.num_sessions)
    await shutdown(server, app, config.server.shutdown_timeout, config.server.shutdown_delay)
    logger.info("stopped")


async def _background(task: BackgroundTask, node: Node) -> None:
    try:
        await task(node)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("background task %s failed", getattr(task, "__qualname__", task))
