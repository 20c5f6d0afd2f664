"""Plain HTTP for tests: one request in a thread, from any local address; the server API; and
aiohttp applications served on 127.0.0.1, as the backends the server calls."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from http.client import HTTPConnection
from typing import Any

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from .config import API_KEY
from .timing import MS

__all__ = ["HttpAnswer", "Scrape", "api", "basic_auth", "http", "http_from", "scrape_metrics", "serve_aiohttp"]


@dataclasses.dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def basic_auth(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _request(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
    context: ssl.SSLContext | None,
) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return HttpAnswer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpAnswer(error.code, dict(error.headers.items()), error.read())


def _request_from(
    source: str, method: str, url: str, headers: Mapping[str, str], timeout: float, body: bytes | None
) -> HttpAnswer:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=dict(headers))
        response = connection.getresponse()
        return HttpAnswer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


async def http_from(
    source: str,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    body: bytes | None = None,
    timeout: float = 5000 * MS,
) -> HttpAnswer:
    """Make one HTTP request from the local address ``source``, such as 127.0.0.2: another
    client, as the server sees it."""
    return await asyncio.to_thread(_request_from, source, method, url, dict(headers or {}), timeout, body)


async def http(
    method: str,
    url: str,
    body: bytes | str | Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 5000 * MS,
    context: ssl.SSLContext | None = None,
) -> HttpAnswer:
    """Make one HTTP request in a thread; ``body`` is bytes, text, or a value sent as JSON."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes | str):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    return await asyncio.to_thread(_request, method, url, body, headers, timeout, context)


async def api(base_url: str, method: str, body: Any = None, *, timeout: float = 5000 * MS) -> Any:
    """Call ``POST /api/<method>`` of a server (or of haproxy); return the decoded JSON answer."""
    answer = await http(
        "POST", f"{base_url}/api/{method}", body if body is not None else {}, {"X-API-Key": API_KEY}, timeout=timeout
    )
    assert answer.status == 200, (answer.status, answer.text)
    return answer.json()


class Scrape:
    """One scrape of /metrics, parsed."""

    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}

    def type(self, name: str) -> str:
        return self.families[name].type

    def samples(self, name: str) -> list[Sample]:
        return self.families[name].samples

    def value(self, sample_name: str, **labels: str) -> float:
        """The value of one sample; 0 if a labelled counter has no sample for these labels yet."""
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == sample_name and sample.labels == labels:
                    return sample.value
        if labels:
            return 0.0
        raise AssertionError(f"no sample {sample_name} in {list(self.families)}")


async def scrape_metrics(base_url: str) -> Scrape:
    """Scrape ``/metrics`` of a server, checking it answers Prometheus's text format."""
    answer = await http("GET", base_url + "/metrics")
    assert answer.status == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(answer.text)


async def serve_aiohttp(
    app: web.Application, port: int = 0, *, handler_cancellation: bool = False
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 and ``port`` (a free one by default, or one it had before);
    return its runner, whose ``cleanup()`` stops it, and the port. ``handler_cancellation``
    cancels a handler whose client went away."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
