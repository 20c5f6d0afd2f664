"""The standalone server's HTTP routes, independent of how the request arrived.

The same :class:`App` answers requests from wavecast's own server (``wavecast serve``) and
from an ASGI server (:mod:`wavecast.server.asgi`):

| path | what |
| --- | --- |
| ``/connection/websocket`` | the real-time protocol (WebSocket) |
| ``POST /api/<method>`` | the server API (``[http_api]``) |
| ``/health``, ``/ready`` | liveness; readiness (503 while starting or stopping) |
| ``/metrics`` | Prometheus metrics (``[metrics]``) |
| ``/admin`` | the admin page, HTTP basic auth (``[admin]``) |
| ``/``, ``/static/...``, ``/demo/token`` | the chat demo (``[demo]``) |
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import importlib.resources
import json
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..realtime.node import Node
from ..realtime.websocket import WEBSOCKET_PATH
from ..version import version
from .config import Config
from .http_api import handle_api

__all__ = ["App", "HttpHandler", "HttpResponse"]


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


#: An application's own routes: ``(method, path, query, headers, body)`` to an answer, or
#: ``None`` to let the server's routes answer. Headers have lowercase names.
HttpHandler = Callable[[str, str, str, Mapping[str, str], bytes], Awaitable["HttpResponse | None"]]

_NOT_FOUND = _text(404, "Not Found\n")
_USER_NAME = re.compile(r"^[\w .-]{1,32}$")


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
        self._registry: Any = None
        if config.metrics.enabled:
            from .metrics import metrics_registry

            self._registry = metrics_registry(node)

    @property
    def ready(self) -> bool:
        return self.node.started and not self.stopping

    async def http(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """Answer one plain HTTP request; ``headers`` have lowercase names."""
        if self.routes is not None:
            answer = await self.routes(method, path, query, headers, body)
            if answer is not None:
                return answer
        if path == "/health":
            return _json(200, {"status": "ok"})
        if path == "/ready":
            return _json(200, {"status": "ready"}) if self.ready else _json(503, {"status": "unavailable"})
        if path == WEBSOCKET_PATH:
            return HttpResponse(426, b"Upgrade Required: connect with WebSocket\n", headers=(("Upgrade", "websocket"),))
        if path.startswith("/api/") and self.config.http_api.enabled:
            if method != "POST":
                return HttpResponse(405, b"Method Not Allowed\n", headers=(("Allow", "POST"),))
            api = self.config.http_api
            status, payload = await handle_api(
                self.node, path[len("/api/") :], body, headers, key=api.key, insecure=api.insecure
            )
            return HttpResponse(status, payload, "application/json")
        if path == "/metrics" and self._registry is not None:
            from .metrics import CONTENT_TYPE, render_metrics

            return HttpResponse(200, render_metrics(self._registry), CONTENT_TYPE)
        if (path == "/admin" or path.startswith("/admin/")) and self.config.admin.enabled:
            return await self._admin(method, path, headers, body)
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

    async def _admin(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if not self._authorized(headers):
            return HttpResponse(
                401, b"Unauthorized\n", headers=(("WWW-Authenticate", 'Basic realm="wavecast admin", charset="UTF-8"'),)
            )
        if path in ("/admin", "/admin/"):
            return _static("admin/index.html")
        if path == "/admin/api/info":
            info = self.node.info()
            stats = self.node.stats
            return _json(
                200,
                {
                    "version": version,
                    "nodes": [
                        {
                            **info,
                            "uid": self.node.uid,
                            "uptime": int(self.node.uptime),
                            "publications": stats.publications,
                            "messages_sent": stats.messages_out,
                            "messages_received": stats.messages_in,
                        }
                    ],
                    "channels": dict(sorted(self.node.channels().items())),
                },
            )
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

    # --- demo ----------------------------------------------------------------------------------

    def _demo_token(self, query: str) -> HttpResponse:
        """Sign a connection token for a name: what an application's backend does after login."""
        from urllib.parse import parse_qs

        import jwt

        secret = self.node.config.token_hmac_secret_key
        user = parse_qs(query).get("user", [""])[0].strip()
        if not secret:
            return _json(503, {"error": "set client.token_hmac_secret_key to sign tokens"})
        if not _USER_NAME.match(user):
            return _json(400, {"error": "a name is 1-32 letters, digits, spaces, dots or dashes"})
        claims = {"sub": user, "info": {"name": user}, "exp": int(time.time()) + 3600}
        return _json(200, {"token": jwt.encode(claims, secret, algorithm="HS256")})


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
