"""The standalone server's HTTP routes, independent of how the request arrived.

The same :class:`App` answers requests from wavecast's own server (``wavecast serve``) and
from an ASGI server (:mod:`wavecast.server.asgi`):

| path | what |
| --- | --- |
| ``/connection/websocket`` | the real-time protocol (WebSocket) |
| ``/connection/http_stream``, ``/connection/sse`` | the same, HTTP-streaming and SSE (``[http_stream]``, ``[sse]``) |
| ``/emulation`` | their clients' commands (:mod:`wavecast.server.emulation`) |
| ``POST /api/<method>`` | the server API (``[http_api]``) |
| ``/health``, ``/ready`` | liveness; readiness (503 while starting or stopping) |
| ``/metrics`` | Prometheus metrics (``[metrics]``) |
| ``/admin`` | the admin page, HTTP basic auth (``[admin]``) |
| ``/``, ``/static/...``, ``/demo/token`` | the chat demo (``[demo]``) |
| ``/favicon.ico`` | the pages' icon, with the demo or the admin page on |

The admin page answers with headers that keep it out of frames, and refuses a request that
changes something (any method but GET and HEAD) unless it is JSON from its own origin, so
that a page elsewhere can't use the browser's cached login (CSRF). Wrong passwords are
logged and throttled per client address. ``/demo/token`` signs a token for any name, so it
answers only on a server bound to a loopback address.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hmac
import importlib.resources
import ipaddress
import json
import logging
import math
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..protocol.events import Request
from ..protocol.handshake import origin_allowed
from ..realtime.emulation import EMULATION_PATH
from ..realtime.node import Node
from ..realtime.ratelimit import TokenBucket
from ..realtime.websocket import WEBSOCKET_PATH
from ..version import version
from .addresses import AddressLimits, Refused, client_address, parse_networks
from .config import Config
from .emulation import Refusal, Streams, StreamStart
from .http_api import handle_api
from .proxy import EventProxies

if TYPE_CHECKING:
    from .metrics import LoopMonitor
    from .pgoutbox import OutboxConsumer

__all__ = ["App", "HttpHandler", "HttpResponse"]

logger = logging.getLogger("wavecast.server")


@dataclasses.dataclass(frozen=True, slots=True)
class HttpResponse:
    """An answer to a plain HTTP request."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, value: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(value).encode(), "application/json")


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(status, text.encode())


def _too_many(refused: Refused) -> HttpResponse:
    return HttpResponse(refused.status, refused.body, headers=refused.headers)


def _refusal(answer: Refusal) -> HttpResponse:
    return HttpResponse(answer.status, answer.body, headers=answer.headers)


#: An application's own routes: ``(method, path, query, headers, body)`` to an answer, or
#: ``None`` to let the server's routes answer. Headers have lowercase names.
HttpHandler = Callable[[str, str, str, Mapping[str, str], bytes], Awaitable["HttpResponse | None"]]

_NOT_FOUND = _text(404, "Not Found\n")
_USER_NAME = re.compile(r"^[\w .-]{1,32}$")

#: On every admin response: no framing (clickjacking), no sniffing, and only the page's own
#: files, so that injected markup could neither run a script nor send data elsewhere.
_ADMIN_HEADERS = (
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
)
_ADMIN_FILES = {"/admin/admin.js": "admin/admin.js", "/admin/admin.css": "admin/admin.css"}

#: Client addresses tracked for failed admin logins; past it the one that failed least
#: recently is forgotten, so that a spray of addresses can't grow the table without bound.
_MAX_LOGIN_ADDRESSES = 10_000


class App:
    """The HTTP side of a node served by ``wavecast serve`` or mounted in an ASGI app.

    Args:
        config: which routes to serve.
        node: the node they act on.
        routes: the application's own routes, asked first; they can't take the real-time
            endpoint, which :func:`~wavecast.server.serve.start_server` upgrades before.
    """

    def __init__(self, config: Config, node: Node, routes: HttpHandler | None = None) -> None:
        self.config = config
        self.node = node
        self.routes = routes
        #: Set during graceful shutdown: /ready answers 503 so load balancers stop routing here.
        self.stopping = False
        #: The outbox consumer that ``wavecast serve`` runs with ``[outbox]`` enabled.
        self.outbox: OutboxConsumer | None = None
        #: The event proxies set as the node's hooks, closed on shutdown (docs/topics/proxy.md).
        self.proxies: EventProxies | None = None
        #: The HTTP-streaming and SSE endpoints, as ``[http_stream]`` and ``[sse]`` enable them.
        self.streams = Streams.from_config(config, node)
        self._logins = _LoginThrottle(
            config.admin.login_failure_rate, config.admin.login_failure_burst, _MAX_LOGIN_ADDRESSES
        )
        # "*" and "null" let WebSocket clients in from anywhere; a page that may act as the
        # admin is one listed by name.
        self._admin_origins = tuple(o for o in config.server.allowed_origins if o not in ("*", "null"))
        #: Connections and rates per client address.
        self.addresses = AddressLimits(**dataclasses.asdict(config.per_address))
        self._trusted_proxies = parse_networks(config.server.trusted_proxies)
        self._registry: Any = None
        #: Measures the event loop for /metrics, from :meth:`start` to :meth:`stop`.
        self.loop_monitor: LoopMonitor | None = None
        if config.metrics.enabled:
            from .metrics import AddressCollector, LoopMonitor, metrics_registry

            self.loop_monitor = LoopMonitor()
            self._registry = metrics_registry(node, self.loop_monitor)
            self._registry.register(AddressCollector(self.addresses))

    def start(self) -> None:
        """Start what runs in the event loop beside the routes (the loop's measurement)."""
        if self.loop_monitor is not None:
            self.loop_monitor.start()

    def stop(self) -> None:
        if self.loop_monitor is not None:
            self.loop_monitor.stop()

    @property
    def ready(self) -> bool:
        return self.node.started and not self.stopping

    def _readiness(self) -> HttpResponse:
        if not self.ready:
            return _json(503, {"status": "unavailable"})
        if self.node.admission.overloaded(time.monotonic()):
            # Admission is refusing clients: a load balancer should send the storm elsewhere.
            return _json(503, {"status": "overloaded"})
        return _json(200, {"status": "ready"})

    def client_address(self, peer: str | None, forwarded: Sequence[str]) -> str | None:
        """The client's address: ``peer``, or what ``X-Forwarded-For`` says if the peer is a trusted proxy."""
        return client_address(peer, forwarded, self._trusted_proxies)

    def admit(self, client: str | None, holder: Hashable) -> HttpResponse | None:
        """Count a new connection (a WebSocket, a stream) from ``client`` until
        ``self.addresses.close(holder)``; return the answer that refuses it instead, if any."""
        refused = self.addresses.open(holder, client, time.monotonic())
        return None if refused is None else _too_many(refused)

    def stream(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        request: Request | None = None,
    ) -> HttpResponse | StreamStart | None:
        """Answer a request to a stream endpoint; ``None`` when ``path`` is none of them.

        Like the WebSocket endpoint, these come before the application's routes.
        """
        if path not in self.streams.paths:
            return None
        if not self.ready:
            return _text(503, "Service Unavailable: the server is stopping\n")
        answer = self.streams.open(method, path, query, headers, body, request)
        return _refusal(answer) if isinstance(answer, Refusal) else answer

    async def http(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        client: str | None = None,
    ) -> HttpResponse:
        """Answer one plain HTTP request; ``headers`` have lowercase names.

        ``client`` is the client's address (:meth:`client_address`), which API requests and
        failed admin logins are counted by; requests whose address isn't known share one count.
        """
        if self.routes is not None:
            answer = await self.routes(method, path, query, headers, body)
            if answer is not None:
                return answer
        if path == "/health":
            return _json(200, {"status": "ok"})
        if path == "/ready":
            return self._readiness()
        if path == WEBSOCKET_PATH:
            return HttpResponse(426, b"Upgrade Required: connect with WebSocket\n", headers=(("Upgrade", "websocket"),))
        if path == EMULATION_PATH and self.streams.enabled:
            return _refusal(await self.streams.emulation(method, headers, body))
        if path.startswith("/api/") and self.config.http_api.enabled:
            if method != "POST":
                return HttpResponse(405, b"Method Not Allowed\n", headers=(("Allow", "POST"),))
            refused = self.addresses.api(client, time.monotonic())
            if refused is not None:
                return _too_many(refused)
            api = self.config.http_api
            status, payload = await handle_api(
                self.node, path[len("/api/") :], body, headers, key=api.key, insecure=api.insecure
            )
            return HttpResponse(status, payload, "application/json")
        if path == "/metrics" and self._registry is not None:
            from .metrics import CONTENT_TYPE, render_metrics

            return HttpResponse(200, render_metrics(self._registry), CONTENT_TYPE)
        if (
            path == "/favicon.ico"
            and method in ("GET", "HEAD")
            and (self.config.demo.enabled or self.config.admin.enabled)
        ):
            # The shipped pages link it here, the name browsers ask for on a page that links none.
            return _static("favicon.svg")
        if (path == "/admin" or path.startswith("/admin/")) and self.config.admin.enabled:
            answer = await self._admin(method, path, headers, body, client or "")
            return dataclasses.replace(answer, headers=answer.headers + _ADMIN_HEADERS)
        if self.config.demo.enabled:
            if path == "/" and method in ("GET", "HEAD"):
                return _static("chat/index.html")
            if path == "/demo/token":
                return self._demo_token(query)
            if path.startswith("/static/") and method in ("GET", "HEAD"):
                return _static(path[len("/static/") :])
        return _NOT_FOUND

    # --- admin -------------------------------------------------------------------------------

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        expected = self.config.admin.password.encode()
        return user == "admin" and hmac.compare_digest(password.encode(), expected)

    def _cross_site(self, headers: Mapping[str, str]) -> HttpResponse | None:
        """Refuse a request that changes state unless it is JSON from the admin page's origin."""
        origin = headers.get("origin")
        if origin is None:
            # Browsers send Origin with every POST; without it the request comes from curl or
            # a script, unless the browser's Sec-Fetch-Site says otherwise.
            if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                return _json(403, {"error": "cross-site request refused"})
        elif not (
            origin_allowed(origin, headers.get("host"), None)
            or origin_allowed(origin, headers.get("host"), self._admin_origins)
        ):
            return _json(403, {"error": f"cross-origin request refused: origin {origin!r} isn't allowed"})
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "application/json":
            # A form can send text/plain cross-site without asking; JSON needs a preflight.
            return _json(415, {"error": f"expected Content-Type application/json, got {content_type!r}"})
        return None

    async def _admin(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, client: str
    ) -> HttpResponse:
        now = time.monotonic()
        wait = self._logins.wait(client, now)
        if not wait and not self._authorized(headers):
            # A browser asks without credentials first, to be challenged: that's no failure.
            if "authorization" not in headers:
                return _UNAUTHORIZED
            logger.warning("admin login failed from %s", client or "an unknown address")
            wait = self._logins.failed(client, now)
            if not wait:
                return _UNAUTHORIZED
            logger.warning("admin logins from %s throttled for %.0f s", client or "an unknown address", wait)
        if wait:
            # Even for the right password: a guess made meanwhile must tell nothing.
            retry = str(math.ceil(wait))
            return HttpResponse(429, b"Too Many Requests: wrong passwords\n", headers=(("Retry-After", retry),))
        if method not in ("GET", "HEAD"):
            refused = self._cross_site(headers)
            if refused is not None:
                return refused
        if path in ("/admin", "/admin/"):
            return _static("admin/index.html")
        if path in _ADMIN_FILES and method in ("GET", "HEAD"):
            return _static(_ADMIN_FILES[path])
        if path == "/admin/api/info":
            return _json(200, await self._admin_info())
        if path == "/admin/api/publish" and method == "POST":
            try:
                request = json.loads(body)
                channel = request["channel"]
                data = request["data"]
            except (ValueError, KeyError, TypeError):
                return _json(400, {"error": 'expected {"channel": ..., "data": ...}'})
            if not isinstance(channel, str) or self.node.config.channel_options(channel) is None:
                return _json(400, {"error": f"unknown channel {channel!r}"})
            position = await self.node.publish(channel, data)
            return _json(200, {"offset": position.offset, "epoch": position.epoch} if position else {})
        return _NOT_FOUND

    async def _admin_info(self) -> dict[str, Any]:
        """Every live node of the engine with its counts, as the ``info`` API lists them, and the
        channels of all of them; message counts are kept by each node, so only this one has them."""
        node, stats = self.node, self.node.stats
        nodes = []
        for info in node.cluster_info():
            entry: dict[str, Any] = {
                "name": info.name,
                "uid": info.uid,
                "version": info.version,
                "num_clients": info.num_clients,
                "num_users": info.num_users,
                "num_channels": info.num_channels,
                "num_subscriptions": info.num_subs,
                "uptime": info.uptime,
            }
            if info.uid == node.uid:
                entry.update(
                    publications=stats.publications,
                    messages_sent=stats.messages_out,
                    messages_received=stats.messages_in,
                )
            nodes.append(entry)
        return {"version": version, "nodes": nodes, "channels": dict(sorted((await node.cluster_channels()).items()))}

    # --- demo ----------------------------------------------------------------------------------

    def _demo_token(self, query: str) -> HttpResponse:
        """Sign a connection token for a name: what an application's backend does after login."""
        from urllib.parse import parse_qs

        from ..realtime.auth import sign_token

        host = self.config.server.host
        if not _loopback(host):
            return _json(
                403,
                {
                    "error": f"the demo signs a token for any user name, so it does only on a server bound to a "
                    f"loopback address, where nobody else can ask; server.host is {host!r}: set it to "
                    f"127.0.0.1, or have your application's backend sign tokens after login"
                },
            )
        secret = self.node.config.token_hmac_secret_key
        user = parse_qs(query).get("user", [""])[0].strip()
        if not secret:
            return _json(503, {"error": "set client.token_hmac_secret_key to sign tokens"})
        if not _USER_NAME.match(user):
            return _json(400, {"error": "a name is 1-32 letters, digits, spaces, dots or dashes"})
        return _json(200, {"token": sign_token(secret, user, info={"name": user})})


_UNAUTHORIZED = HttpResponse(
    401, b"Unauthorized\n", headers=(("WWW-Authenticate", 'Basic realm="wavecast admin", charset="UTF-8"'),)
)


class _LoginThrottle:
    """Wrong admin passwords per client address: a token bucket each; pure, given ``now``.

    A wrong password takes a token. The one that finds none left blocks its address for the
    time a token takes to come back, during which every login from it is refused, right or
    wrong. At most ``max_addresses`` are tracked, the least recently failing forgotten first.

    Args:
        rate: wrong passwords per second an address regains; ``None`` for no limit.
        burst: wrong passwords an address may try at once.
        max_addresses: addresses tracked at most.
    """

    def __init__(self, rate: float | None, burst: int, max_addresses: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_addresses = max_addresses
        # Address to its bucket and the time until which it is blocked.
        self._addresses: collections.OrderedDict[str, tuple[TokenBucket, float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._addresses)

    def wait(self, address: str, now: float) -> float:
        """Return the seconds ``address`` must wait before it may log in again; 0 if none."""
        entry = self._addresses.get(address)
        return 0.0 if entry is None else max(entry[1] - now, 0.0)

    def failed(self, address: str, now: float) -> float:
        """Count a wrong password from ``address``; return the seconds it must now wait, 0 if none."""
        if self.rate is None:
            return 0.0
        entry = self._addresses.get(address)
        bucket = TokenBucket(self.rate, self.burst, now) if entry is None else entry[0]
        wait = 0.0 if bucket.take(now) else 1 / self.rate
        self._addresses[address] = (bucket, now + wait)
        self._addresses.move_to_end(address)
        if len(self._addresses) > self.max_addresses:
            self._addresses.popitem(last=False)
        return wait


def _loopback(host: str) -> bool:
    """Tell whether the server listens on a loopback address only: 127.0.0.0/8, ::1, localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _static(name: str) -> HttpResponse:
    """A file from the package's ``static`` directory; ``..`` and hidden files are refused."""
    parts = [part for part in name.split("/") if part]
    if not parts or any(part.startswith(".") for part in parts):
        return _NOT_FOUND
    resource = importlib.resources.files("wavecast").joinpath("static", *parts)
    try:
        data = resource.read_bytes()
    except OSError:
        # Not there, a directory, or a name the filesystem refuses (too long): the client
        # chose the name, so none of these is the server's error.
        return _NOT_FOUND
    content_type = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript", "text/javascript"):
        content_type += "; charset=utf-8"
    return HttpResponse(200, data, content_type, headers=(("Cache-Control", "no-cache"),))
