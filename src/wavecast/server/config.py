"""The standalone server's configuration: one typed object, loaded from TOML and the environment.

Sections map to frozen dataclasses; every key has an explicit default. The loader checks
the whole file at once and reports every problem: unknown keys (with the closest known key),
wrong types, and options that conflict. ``WAVECAST_<SECTION>__<KEY>`` environment variables
override the file, with ``__`` between levels: ``WAVECAST_SERVER__PORT=9000``,
``WAVECAST_NAMESPACES__CHAT__PRESENCE=true``. Values are read as TOML values when they
parse as one (``true``, ``10``, ``["a", "b"]``, ``"quoted"``), as strings otherwise; a string
option takes an unquoted variable's text as it is, so ``WAVECAST_HTTP_API__KEY=123456`` is the
string ``"123456"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ..exceptions import ConfigError
from ..realtime.config import ChannelOptions, NodeConfig
from .addresses import parse_networks

__all__ = [
    "ENV_PREFIX",
    "SQL_NAME",
    "AdminSection",
    "Config",
    "DemoSection",
    "EngineSection",
    "HttpApiSection",
    "HttpStreamSection",
    "MetricsSection",
    "OutboxSection",
    "PerAddressSection",
    "ProxyEndpoint",
    "ProxySection",
    "RpcOptions",
    "RpcSection",
    "ServerSection",
    "SseSection",
    "WebSocketSection",
    "load_config",
    "parse_config",
]

ENV_PREFIX = "WAVECAST_"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerSection:
    """Where and how the server listens.

    Attributes:
        host: the interface to listen on.
        port: the port.
        tls_cert, tls_key: PEM files to serve wss:// and https://; both or neither.
        log_level: ``debug``, ``info``, ``warning`` or ``error``.
        log_format: ``text`` for people, ``json`` for log collectors.
        workers: processes sharing the port (SO_REUSEPORT); more than 1 needs a shared engine.
        backlog: connections the kernel completes and holds until the server accepts them
            (``listen()``'s backlog; Linux caps it at ``net.core.somaxconn``, 4096 by
            default). asyncio's own default, 100, drops the SYNs of a reconnect storm, whose
            clients then wait for TCP's retransmissions (1 s, 3 s, 7 s...) instead of being
            accepted, or refused cheaply by the admission rates.
        shutdown_timeout: seconds to let clients close on SIGTERM before exiting.
        shutdown_delay: seconds between SIGTERM and the start of the drain, during which the
            server answers ``/ready`` with 503 and refuses new clients but keeps its clients,
            so that a load balancer polling ``/ready`` stops sending it new ones first.
        allowed_origins: origins of pages allowed to connect; empty allows the server's own
            origin and non-browser clients; ``["*"]`` allows any.
        app: the application's setup function, ``"module:attribute"``, imported and called
            with the node before it starts, to register hooks and RPC handlers
            (:mod:`wavecast.server.appload`); empty for none.
        app_dir: the directory to import ``app`` from, put first on ``sys.path``; empty for
            the current directory.
        trusted_proxies: networks (``"10.0.0.0/8"``, ``"127.0.0.1"``) of the proxies in front
            of the server whose ``X-Forwarded-For`` names the client; a request from anywhere
            else is the peer's own, whatever it claims. Per-address limits and the admin
            page's login throttle count clients by this address.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    tls_cert: str = ""
    tls_key: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    workers: int = 1
    backlog: int = 4096
    shutdown_timeout: float = 10.0
    shutdown_delay: float = 0.0
    allowed_origins: Sequence[str] = ()
    app: str = ""
    app_dir: str = ""
    trusted_proxies: Sequence[str] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class PerAddressSection:
    """Limits per client address (:mod:`wavecast.server.addresses`), past which an upgrade, a
    stream or an API request gets 429 with ``Retry-After``. Behind a NAT, thousands of users
    share one address: the defaults stop one host from taking the node, not such a crowd.

    Attributes:
        max_connections: open WebSockets and HTTP-streaming or SSE sessions per address.
        handshake_rate: new connections per second an address regains.
        handshake_burst: new connections an address may open at once.
        api_rate: server API requests per second an address regains, counted before the key
            is checked.
        api_burst: API requests an address may make at once.
        ipv6_prefix_length: IPv6 addresses that share this prefix are one address: a host
            is given a whole /64.
        max_addresses: addresses whose rates are tracked at most; past it the least recently
            seen is forgotten.
    """

    max_connections: int | None = 10_000
    handshake_rate: float | None = 100.0
    handshake_burst: int = 1_000
    api_rate: float | None = 1_000.0
    api_burst: int = 1_000
    ipv6_prefix_length: int = 64
    max_addresses: int = 100_000

    def __post_init__(self) -> None:
        for name in ("max_connections", "handshake_rate", "api_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name}: expected more than 0, or false for no limit, got {value}")
        for name in ("handshake_burst", "api_burst", "max_addresses"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: expected 1 or more, got {getattr(self, name)}")
        if not 1 <= self.ipv6_prefix_length <= 128:
            raise ConfigError(f"ipv6_prefix_length: expected 1 to 128, got {self.ipv6_prefix_length}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebSocketSection:
    """WebSocket options of client connections.

    Attributes:
        compression: negotiate permessage-deflate with browsers that offer it.
        write_limit: bytes buffered per connection before its slow-consumer queue takes over.
        open_timeout: seconds a client has to complete the WebSocket handshake.
        write_delay: seconds a client's messages wait before they are written, so that the
            publications that arrive meanwhile leave in one write; 0 writes each turn of the
            event loop. A few milliseconds multiply fan-out throughput when publications
            arrive one at a time, as they do from Redis.
        socket_send_buffer: the kernel's send buffer of each connection (``SO_SNDBUF``), in
            bytes; Linux doubles it for its bookkeeping. Bounds the kernel memory a client that
            stops reading pins, where Linux would grow the buffer to the last value of
            ``net.ipv4.tcp_wmem`` (4 MiB by default), and keeps what it hasn't read in the
            server, where its channels' ``slow_consumer`` policy sees it. ``false``: the
            kernel's own sizing.
    """

    compression: bool = True
    write_limit: int = 65536
    open_timeout: float = 10.0
    write_delay: float = 0.0
    socket_send_buffer: int | None = 131072


@dataclasses.dataclass(frozen=True, kw_only=True)
class HttpStreamSection:
    """HTTP-streaming clients at ``/connection/http_stream``, with their commands POSTed to
    ``/emulation``: centrifuge-js's fallback where WebSocket is blocked (Centrifugo's
    ``http_stream``). The request body and each POST are at most ``client.message_size_limit``
    bytes, as a WebSocket message is.

    Attributes:
        enabled: serve the endpoint.
    """

    enabled: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class SseSection:
    """Server-sent events clients at ``/connection/sse``, with their commands POSTed to
    ``/emulation`` (Centrifugo's ``sse``); JSON only, as EventSource carries text.

    Attributes:
        enabled: serve the endpoint.
    """

    enabled: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class HttpApiSection:
    """The server API at ``POST /api/<method>``.

    Attributes:
        enabled: serve the API.
        key: the API key that requests send as ``X-API-Key`` or ``Authorization: apikey <key>``.
        insecure: accept requests without a key (only behind a trusted network).
    """

    enabled: bool = True
    key: str = ""
    insecure: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdminSection:
    """The admin page at ``/admin``, protected by HTTP basic auth with user ``admin``.

    Attributes:
        enabled: serve the page.
        password: the password of user ``admin``.
        login_failure_rate: wrong passwords per second that a client address may try once
            it has spent its burst; past it, the address gets 429 for every admin request,
            right password included, until it may try again. ``None`` for no limit.
        login_failure_burst: wrong passwords an address may try at once.
    """

    enabled: bool = False
    password: str = ""
    login_failure_rate: float | None = 0.2
    login_failure_burst: int = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricsSection:
    """Prometheus metrics at ``/metrics``."""

    enabled: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineSection:
    """Where publications, history and presence live.

    Attributes:
        type: ``memory`` for one process; ``redis`` for many nodes sharing a redis-server;
            ``nats`` for many nodes publishing over a nats-server, with history and presence
            in the redis-server of ``redis_url`` (at-most-once delivery, see
            docs/topics/scaling.md).
        memory_snapshot: a file where the memory engine saves channel history on shutdown
            and reloads it on start, so that clients recover across a restart; empty keeps
            history in memory only.
        memory_max_streams: channel streams (history) the memory engine keeps at most; the
            least recently published is evicted beyond. ``false``: no limit.
        memory_max_bytes: bytes the memory engine's history may take in all; the least
            recently published streams are evicted beyond. ``false``: no limit.
        memory_max_user_bytes: bytes of history one user's publications may take in the
            memory engine; a publication beyond is refused with error 106. ``false``: no limit.
        memory_max_idempotent_results: results the memory engine keeps under idempotency keys
            at most; the oldest is forgotten first beyond, and a repeat of its key publishes
            again. ``false``: no limit (each still expires after ``idempotent_result_ttl``).
        redis_url: the Redis server of the ``redis`` engine.
        redis_prefix: the prefix of every Redis key and pub/sub channel, to share one Redis;
            with ``nats``, of every NATS subject too.
        nats_url: the NATS server of the ``nats`` engine; several separated by commas.
        redis_shards: standalone Redis servers (URLs) to spread channels over by consistent
            hashing, as Centrifugo's list of ``redis_address``; when set, ``redis_url`` is
            unused. Every node must list the same servers in the same order.
        redis_cluster: some nodes (URLs) of a Redis Cluster (Redis 7 or later) to use instead of
            ``redis_url``: channels are placed by hash slot and published on sharded pub/sub.
    """

    type: Literal["memory", "redis", "nats"] = "memory"
    memory_snapshot: str = ""
    memory_max_streams: int | None = 100_000
    memory_max_bytes: int | None = 256 * 2**20
    memory_max_user_bytes: int | None = 16 * 2**20
    memory_max_idempotent_results: int | None = 100_000
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "wavecast"
    nats_url: str = "nats://127.0.0.1:4222"
    redis_shards: Sequence[str] = ()
    redis_cluster: Sequence[str] = ()


#: A table (``table`` or ``schema.table``) or a LISTEN channel, which go into SQL unquoted.
SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutboxSection:
    """A transactional outbox in PostgreSQL, consumed by :mod:`wavecast.server.pgoutbox`.

    Attributes:
        enabled: consume the outbox (needs ``pip install 'wavecast[postgres]'``).
        dsn: the database, ``postgresql://user:password@host:5432/database``.
        table: the outbox table, ``table`` or ``schema.table``.
        partitions: partitions worked in parallel, each in ``id`` order by one node at a time;
            rows have a ``partition`` from 0 to ``partitions - 1``.
        batch_size: rows claimed, executed and deleted in one transaction: at most this many
            are executed again if a node dies between publishing and committing (their
            publications go out once, by idempotency key).
        poll_interval: seconds between looks at an idle partition, when no notification comes.
        notification_channel: the channel that ``LISTEN`` waits on for a partition's number,
            sent by a trigger on insert; empty to poll only.
        max_retry_delay: the longest wait before retrying after a database or engine error.
        connect_timeout: seconds to connect to PostgreSQL.
    """

    enabled: bool = False
    dsn: str = ""
    table: str = "wavecast_outbox"
    partitions: int = 1
    batch_size: int = 100
    poll_interval: float = 0.3
    notification_channel: str = "wavecast_outbox"
    max_retry_delay: float = 5.0
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.enabled and not self.dsn:
            raise ConfigError("the outbox needs a database: set outbox.dsn")
        for name in ("table", "notification_channel"):
            value = getattr(self, name)
            if (value or name == "table") and not SQL_NAME.match(value):
                raise ConfigError(f"{name}: expected a name such as 'wavecast_outbox', got {value!r}")
        limits = {"partitions": (1, 1024), "batch_size": (1, 10_000)}
        for name, (low, high) in limits.items():
            if not low <= getattr(self, name) <= high:
                raise ConfigError(f"{name}: expected {low} to {high}, got {getattr(self, name)}")
        for name in ("poll_interval", "max_retry_delay", "connect_timeout"):
            if not 0.01 <= getattr(self, name) <= 600:
                raise ConfigError(f"{name}: expected 0.01 to 600 seconds, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DemoSection:
    """The chat demo at ``/``, for trying the server in a browser."""

    enabled: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProxyEndpoint:
    """One HTTP endpoint of the application's backend, called in Centrifugo's proxy format.

    Attributes:
        endpoint: the URL, ``http://`` or ``https://``; empty turns the proxy off.
        timeout: seconds the backend has to answer; past it the client gets Centrifugo's code.
        http_headers: headers of the client's WebSocket upgrade request forwarded to the
            backend, case-insensitive (``Cookie`` forwards the cookies, ``Authorization``...).
        static_http_headers: headers sent with every request, e.g. a shared secret.
        binary_encoding: send data as ``b64data`` and read ``b64data``/``b64info`` (for
            protobuf clients whose data isn't JSON); otherwise data travels as JSON.
        include_connection_meta: send the ``meta`` that connect gave the connection.
    """

    endpoint: str = ""
    timeout: float = 1.0
    http_headers: Sequence[str] = ()
    static_http_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    binary_encoding: bool = False
    include_connection_meta: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProxySection:
    """The event proxies: the application's backend decides over HTTP (docs/topics/proxy.md).

    Attributes:
        connect, refresh: proxies of every connection (refresh: the server refreshes
            connections that expire, instead of the clients' tokens).
        subscribe, publish, sub_refresh: the ``default`` proxies of the namespaces that
            enable them (``subscribe_proxy_enabled``...).
        rpc: the ``default`` RPC proxy, for the methods that ``[rpc]`` enables it for.
        max_response_size: bytes a backend's answer may have; a larger one is an error.
        max_connections: connections kept open to the backends at most, reused (keep-alive).
    """

    connect: ProxyEndpoint = dataclasses.field(default_factory=ProxyEndpoint)
    refresh: ProxyEndpoint = dataclasses.field(default_factory=ProxyEndpoint)
    subscribe: ProxyEndpoint = dataclasses.field(default_factory=ProxyEndpoint)
    publish: ProxyEndpoint = dataclasses.field(default_factory=ProxyEndpoint)
    sub_refresh: ProxyEndpoint = dataclasses.field(default_factory=ProxyEndpoint)
    rpc: ProxyEndpoint = dataclasses.field(default_factory=ProxyEndpoint)
    max_response_size: int = 2**20
    max_connections: int = 100


@dataclasses.dataclass(frozen=True, kw_only=True)
class RpcOptions:
    """Where the RPC methods of one namespace go (Centrifugo's ``rpc.namespaces``).

    Attributes:
        proxy_enabled: send the calls that no Python handler takes to a proxy.
        proxy_name: ``default`` for ``[proxy.rpc]``, another name for ``[proxies.<name>]``.
    """

    proxy_enabled: bool = False
    proxy_name: str = "default"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RpcSection:
    """RPC methods by namespace: ``ns:method`` belongs to ``ns``, ``method`` to none.

    Attributes:
        without_namespace: the options of methods without ``:``.
        namespaces: the options of each namespace; a method of another namespace is not found (104).
    """

    without_namespace: RpcOptions = dataclasses.field(default_factory=RpcOptions)
    namespaces: Mapping[str, RpcOptions] = dataclasses.field(default_factory=dict)


# NodeConfig's fields that the [client] section sets; origins come from [server].
_CLIENT_FIELDS = tuple(
    f.name for f in dataclasses.fields(NodeConfig) if f.name not in ("channel", "namespaces", "allowed_origins")
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration of ``wavecast serve``.

    ``client`` holds the :class:`~wavecast.realtime.config.NodeConfig` options other than
    channels; ``channel`` the options of channels without a namespace; ``namespaces`` the
    options of each namespace; ``proxy`` the event proxies, ``proxies`` the named ones, and
    ``rpc`` which RPC methods go to them.
    """

    server: ServerSection = dataclasses.field(default_factory=ServerSection)
    websocket: WebSocketSection = dataclasses.field(default_factory=WebSocketSection)
    http_stream: HttpStreamSection = dataclasses.field(default_factory=HttpStreamSection)
    sse: SseSection = dataclasses.field(default_factory=SseSection)
    client: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    channel: ChannelOptions = dataclasses.field(default_factory=ChannelOptions)
    namespaces: Mapping[str, ChannelOptions] = dataclasses.field(default_factory=dict)
    http_api: HttpApiSection = dataclasses.field(default_factory=HttpApiSection)
    per_address: PerAddressSection = dataclasses.field(default_factory=PerAddressSection)
    admin: AdminSection = dataclasses.field(default_factory=AdminSection)
    metrics: MetricsSection = dataclasses.field(default_factory=MetricsSection)
    engine: EngineSection = dataclasses.field(default_factory=EngineSection)
    demo: DemoSection = dataclasses.field(default_factory=DemoSection)
    outbox: OutboxSection = dataclasses.field(default_factory=OutboxSection)
    proxy: ProxySection = dataclasses.field(default_factory=ProxySection)
    proxies: Mapping[str, ProxyEndpoint] = dataclasses.field(default_factory=dict)
    rpc: RpcSection = dataclasses.field(default_factory=RpcSection)

    def node_config(self) -> NodeConfig:
        """Return the real-time node's configuration.

        The node's name is ``client.name``, else ``<hostname>_<port>`` as Centrifugo names a
        node without one.
        """
        origins = list(self.server.allowed_origins) or None
        client = {"name": f"{socket.gethostname()}_{self.server.port}", **self.client}
        return NodeConfig(channel=self.channel, namespaces=dict(self.namespaces), allowed_origins=origins, **client)

    def worker(self, index: int) -> Config:
        """The configuration of worker ``index`` of ``--workers``: its node's name ends in ``_<index>``,
        so that each worker answers ``info`` under a name of its own."""
        name = self.node_config().name
        return dataclasses.replace(self, client={**self.client, "name": f"{name}_{index}"})


# --- parsing -------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.messages.append(f"{path}: {message}" if path else message)


# The annotations are strings (postponed evaluation): evaluating them was most of the
# loader's time, and the classes don't change.
_TYPE_HINTS: dict[type[Any], dict[str, Any]] = {}


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    hints = _TYPE_HINTS.get(cls)
    if hints is None:
        hints = _TYPE_HINTS[cls] = typing.get_type_hints(cls)
    return hints


# difflib is most of the time of a load that finds unknown keys, and a file tends to misspell
# the same key in each of its namespaces (the config fuzz target, which mutates one key at a
# time, runs at 3,000 inputs/s with the cache and 1,200 without).
@functools.lru_cache(maxsize=256)
def _suggest(key: str, known: tuple[str, ...]) -> str:
    """Name the known key closest to a misspelt one, judging by its start and by similarity."""
    candidates = [name for name in known if name.startswith(key[: max(len(key) - 2, 3)])]
    close = difflib.get_close_matches(key, candidates or known, n=1, cutoff=0.5 if candidates else 0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        names = {list: "a list", tuple: "a list", Sequence: "a list", dict: "a table", Mapping: "a table"}
        return names.get(origin, "a list or table")
    if annotation is type(None):
        return "false (off)"
    if dataclasses.is_dataclass(annotation):
        return "a table"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(annotation, str(annotation))


# TOML's booleans aren't integers here, though Python's are.
_SCALARS: dict[Any, typing.Callable[[Any], bool]] = {
    bool: lambda value: isinstance(value, bool),
    int: lambda value: isinstance(value, int) and not isinstance(value, bool),
    float: lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    str: lambda value: isinstance(value, str),
}


@dataclasses.dataclass(frozen=True, slots=True)
class _EnvValue:
    """An environment variable's text, and the TOML value it reads as."""

    raw: str
    parsed: Any


def _is_unicode(text: str) -> bool:
    """Whether ``text`` has no lone surrogates, which os.environ makes of bytes that aren't UTF-8."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _takes_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and str in typing.get_args(annotation)


def _off(value: Any, annotation: Any) -> bool:
    """Tell whether ``value`` is ``false`` for a field that ``None`` turns off.

    TOML has no null: ``false`` spells ``None``, never ``0``, which is a value (a limit of
    0 allows nothing) and never means a default. It applies to fields typed ``X | None``
    where ``X`` isn't ``bool``.
    """
    if isinstance(value, _EnvValue):
        value = value.parsed
    if value is not False or typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(annotation)
    return type(None) in args and bool not in args


def _convert(value: Any, annotation: Any, path: str, errors: _Errors) -> Any:
    """Check ``value`` against a type annotation; return the converted value or a sentinel."""
    if _off(value, annotation):
        return None
    if isinstance(value, _EnvValue):
        # A secret or a name made of digits, or "true", is still text; a quoted one is unquoted.
        text = _takes_text(annotation) and not isinstance(value.parsed, str)
        value = value.raw if text else value.parsed
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value in args:
            return value
    elif origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            probe = _Errors()
            converted = _convert(value, arg, path, probe)
            if not probe.messages:
                return converted
    elif origin in (list, tuple, Sequence, typing.Sequence) or annotation is Sequence:
        if isinstance(value, list):
            item_type = args[0] if args else Any
            return tuple(_convert(item, item_type, f"{path}[{i}]", errors) for i, item in enumerate(value))
    elif origin in (dict, Mapping, typing.Mapping):
        if isinstance(value, dict):
            item_type = args[1] if len(args) == 2 else Any
            return {key: _convert(item, item_type, f"{path}.{key}", errors) for key, item in value.items()}
    elif dataclasses.is_dataclass(annotation):
        if isinstance(value, dict):
            return _build(annotation, value, path, errors)  # type: ignore[arg-type]
    elif annotation in _SCALARS and _SCALARS[annotation](value):
        if isinstance(value, str) and not _is_unicode(value):
            # An environment variable's bytes that aren't UTF-8: a key or a secret that would
            # fail each request it is compared with.
            errors.add(path, f"expected UTF-8 text, got {value!r}")
            return None
        return float(value) if annotation is float else value
    errors.add(path, f"expected {_type_name(annotation)}, got {value!r}")
    return None


def _build(cls: type[Any], data: Mapping[str, Any], path: str, errors: _Errors) -> Any:
    """Build dataclass ``cls`` from a table, recording every problem."""
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    before = len(errors.messages)
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            errors.add(where, f"unknown key{_suggest(key, tuple(fields))}")
            continue
        kwargs[key] = _convert(value, hints[key], where, errors)
    if len(errors.messages) > before:
        return None
    try:
        return cls(**kwargs)
    except (ConfigError, ValueError, TypeError) as exc:
        errors.add(path or cls.__name__, str(exc))
        return None


def _client_section(data: Any, errors: _Errors) -> dict[str, Any]:
    if not isinstance(data, dict):
        errors.add("client", "expected a table")
        return {}
    hints = _type_hints(NodeConfig)
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _CLIENT_FIELDS:
            if key in ("channel", "namespaces"):
                hint = "; channel options go in [channel] and [namespaces.<name>]"
            else:
                hint = _suggest(key, _CLIENT_FIELDS)
            errors.add(f"client.{key}", f"unknown key{hint}")
            continue
        result[key] = _convert(value, hints[key], f"client.{key}", errors)
    return result


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a configuration table into a :class:`Config`.

    Raises:
        ConfigError: with one line per problem.
    """
    errors = _Errors()
    hints = _type_hints(Config)
    kwargs: dict[str, Any] = {}
    known = tuple(f.name for f in dataclasses.fields(Config))
    for key, value in data.items():
        if key not in known:
            errors.add(key, f"unknown section{_suggest(key, known)}")
        elif key == "client":
            kwargs[key] = _client_section(value, errors)
        else:
            kwargs[key] = _convert(value, hints[key], key, errors)
    if errors.messages:
        raise ConfigError("\n".join(errors.messages))
    config = Config(**kwargs)
    _check(config, errors)
    if errors.messages:
        raise ConfigError("\n".join(errors.messages))
    return config


def _check(config: Config, errors: _Errors) -> None:
    """Options that conflict across sections."""
    server = config.server
    if bool(server.tls_cert) != bool(server.tls_key):
        errors.add("server", "tls_cert and tls_key go together")
    if not 0 < server.port < 65536:
        errors.add("server.port", f"expected 1-65535, got {server.port}")
    if not 1 <= server.backlog <= 65535:
        errors.add("server.backlog", f"expected 1 to 65535, got {server.backlog}")
    if server.workers < 1:
        errors.add("server.workers", f"expected 1 or more, got {server.workers}")
    if server.workers > 1 and config.engine.type == "memory":
        errors.add(
            "server.workers",
            "several workers need a shared engine: with engine.type = 'memory' each process would have its "
            "own channels, history and presence; set engine.type = 'redis'",
        )
    try:
        parse_networks(server.trusted_proxies)
    except ValueError as exc:
        errors.add("server.trusted_proxies", str(exc))
    if not 0 <= server.shutdown_delay <= 600:
        errors.add("server.shutdown_delay", f"expected 0 to 600 seconds, got {server.shutdown_delay}")
    if not 0 <= config.websocket.write_delay <= 1:
        errors.add("websocket.write_delay", f"expected 0 to 1 second, got {config.websocket.write_delay}")
    if config.http_api.enabled and not config.http_api.key and not config.http_api.insecure:
        errors.add("http_api", "the API needs a key: set http_api.key, or http_api.insecure = true")
    if config.admin.enabled and not config.admin.password:
        errors.add("admin", "the admin page needs a password: set admin.password")
    buffer = config.websocket.socket_send_buffer
    if buffer is not None and not 4096 <= buffer <= 64 * 2**20:
        errors.add(
            "websocket.socket_send_buffer", f"expected 4096 to 67108864 bytes, or false for the kernel's, got {buffer}"
        )
    rate = config.admin.login_failure_rate
    if rate is not None and not rate > 0:
        errors.add("admin.login_failure_rate", f"expected more than 0, or false for no limit, got {rate}")
    for name in ("memory_max_streams", "memory_max_bytes", "memory_max_user_bytes", "memory_max_idempotent_results"):
        limit = getattr(config.engine, name)
        if limit is not None and limit < 1:
            errors.add(f"engine.{name}", f"expected 1 or more, or false for no limit, got {limit}")
    if config.admin.login_failure_burst < 1:
        errors.add("admin.login_failure_burst", f"expected 1 or more, got {config.admin.login_failure_burst}")
    try:
        config.node_config()
    except (ConfigError, ValueError, TypeError) as exc:
        errors.add("client", str(exc))
    _check_proxies(config, errors)


_PROXY_KINDS = ("subscribe", "publish", "sub_refresh")


def _check_proxies(config: Config, errors: _Errors) -> None:
    """Endpoints that can be called, limits that are finite, and names that exist."""
    section = config.proxy
    endpoints = {f"proxy.{f.name}": getattr(section, f.name) for f in dataclasses.fields(ProxySection)}
    endpoints = {k: v for k, v in endpoints.items() if isinstance(v, ProxyEndpoint)}
    endpoints.update({f"proxies.{name}": proxy for name, proxy in config.proxies.items()})
    for path, proxy in endpoints.items():
        if proxy.endpoint and not proxy.endpoint.startswith(("http://", "https://")):
            errors.add(f"{path}.endpoint", f"expected an http:// or https:// URL, got {proxy.endpoint!r}")
        if not 0 < proxy.timeout <= 60:
            errors.add(f"{path}.timeout", f"expected more than 0 and at most 60 seconds, got {proxy.timeout}")
    if "default" in config.proxies:
        errors.add("proxies.default", "the name 'default' means the proxies of [proxy]; choose another")
    for name in ("max_response_size", "max_connections"):
        if getattr(section, name) < 1:
            errors.add(f"proxy.{name}", f"expected 1 or more, got {getattr(section, name)}")

    def check_name(path: str, kind: str, name: str) -> None:
        proxy = getattr(section, kind) if name == "default" else config.proxies.get(name)
        if proxy is None or not proxy.endpoint:
            where = f"proxy.{kind}.endpoint" if name == "default" else f"proxies.{name}.endpoint"
            errors.add(path, f"the {kind} proxy {name!r} has no endpoint: set {where}")

    namespaces = {"channel": config.channel, **{f"namespaces.{n}": o for n, o in config.namespaces.items()}}
    for path, options in namespaces.items():
        for kind in _PROXY_KINDS:
            if getattr(options, f"{kind}_proxy_enabled"):
                check_name(f"{path}.{kind}_proxy_name", kind, getattr(options, f"{kind}_proxy_name"))
    rpc = {"rpc.without_namespace": config.rpc.without_namespace}
    rpc.update({f"rpc.namespaces.{n}": o for n, o in config.rpc.namespaces.items()})
    for path, rpc_options in rpc.items():
        if rpc_options.proxy_enabled:
            check_name(f"{path}.proxy_name", "rpc", rpc_options.proxy_name)


def _env_value(raw: str) -> _EnvValue:
    try:
        return _EnvValue(raw, tomllib.loads(f"value = {raw}")["value"])
    except tomllib.TOMLDecodeError:
        return _EnvValue(raw, raw)


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return ``data`` with ``WAVECAST_A__B__C`` variables set at ``a.b.c``."""
    result = _deep_copy(data)
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if len(path) < 2:
            continue
        table = result
        for part in path[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} isn't a table")
        table[path[-1]] = _env_value(raw)
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, Mapping) else value for key, value in data.items()}


def load_config(
    path: str | Path | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Load a TOML file (or nothing), apply environment overrides, then ``overrides``, and validate.

    ``overrides`` holds values by section, ``{"server": {"port": 9000}}``: the command line's
    flags, which go through the same checks as the file.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 or not valid TOML, or the
            configuration is invalid.
    """
    try:
        return _load(path, os.environ if environ is None else environ, overrides or {})
    except RecursionError as exc:
        # tomllib, like the checks, recurses once per level of arrays and tables.
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}arrays or tables nested too deep") from exc


def _load(path: str | Path | None, environ: Mapping[str, str], overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            # TOML is UTF-8, whatever the locale says.
            data = tomllib.loads(Path(path).read_bytes().decode())
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such file") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: can't read it: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            line = exc.object[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{path}: invalid TOML: not UTF-8 text (line {line})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    data = apply_env(data, environ)
    for section, values in overrides.items():
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table, got {table!r}")
        table.update(values)
    return parse_config(data)
