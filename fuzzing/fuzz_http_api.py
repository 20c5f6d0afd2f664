"""Fuzz the server HTTP API's requests: ``python fuzzing/fuzz_http_api.py [-runs=N]``.

An input is a request as ``wavecast serve`` hands it to the app once its HTTP parser is done,
without a socket: the first byte picks the HTTP method (bits 0-1) and the API key (bits 2-3:
right in ``X-API-Key``, right in ``Authorization: apikey``, none, wrong); the rest is the
API method (the path after ``/api/``), a line feed, header lines ``name: value``, an empty
line and the body. Text is read as latin-1, as the HTTP parser reads it. The app runs on a
node with the memory engine, a namespace with history and presence, and one without.

Nothing may raise: every request gets an answer, 200 with a JSON ``result``, ``error`` or
``replies``, or 401, 404 or 405, and its body is JSON when it says so.
"""

from __future__ import annotations

import asyncio
import json

from harness import fuzz

from wavecast.server.app import App, HttpResponse
from wavecast.server.config import parse_config
from wavecast.server.serve import build_node

KEY = "fuzz-api-key"
CONFIG = parse_config(
    {
        "server": {"host": "127.0.0.1"},
        "client": {"token_hmac_secret_key": "fuzz-secret"},
        "http_api": {"key": KEY},
        "namespaces": {
            "chat": {"presence": True, "join_leave": True, "history_size": 5, "history_ttl": 60.0},
            "news": {},
        },
        # A small engine, so that ten million publications to new channels stay in memory's bounds.
        "engine": {"memory_max_streams": 1000, "memory_max_bytes": 2**24, "memory_max_idempotent_results": 1000},
    }
)
METHODS = ("POST", "POST", "GET", "PUT")
KEYS: tuple[dict[str, str], ...] = ({"x-api-key": KEY}, {"authorization": f"apikey {KEY}"}, {}, {"x-api-key": "no"})
#: What the API answers; anything else comes from a route that shouldn't have answered.
STATUSES = {200, 401, 404, 405}

# The node isn't started: its periodic tasks would only run between inputs, and the API
# doesn't wait for them.
loop = asyncio.new_event_loop()
app = App(CONFIG, build_node(CONFIG))


def parse_request(data: bytes) -> tuple[str, str, dict[str, str], bytes]:
    """Split an input into the HTTP method, the path, the lowercase headers and the body."""
    method = METHODS[data[0] & 3]
    headers = dict(KEYS[(data[0] >> 2) & 3])
    head, _, body = data[1:].partition(b"\n\n")
    api_method, _, header_lines = head.partition(b"\n")
    for line in header_lines.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return method, "/api/" + api_method.decode("latin-1"), headers, body


def check_answer(answer: HttpResponse) -> None:
    assert isinstance(answer, HttpResponse), answer
    assert answer.status in STATUSES, (answer.status, answer.body)
    if answer.content_type == "application/json":
        reply = json.loads(answer.body)
        assert isinstance(reply, dict), reply
        if answer.status == 200:
            assert reply.keys() & {"result", "error", "replies"}, reply


def test_one_input(data: bytes) -> None:
    if not data:
        return
    method, path, headers, body = parse_request(data)
    check_answer(loop.run_until_complete(app.http(method, path, "", headers, body, client="127.0.0.1")))


if __name__ == "__main__":
    fuzz(test_one_input)
