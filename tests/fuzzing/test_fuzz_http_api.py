"""Inputs that crashed ``fuzzing/fuzz_http_api.py``, replayed through the target.

Each one is in the target's layout: a flags byte (0x00: POST with the API key), the API
method, a line feed, header lines, an empty line, then the body.
"""

from __future__ import annotations

import json

import pytest

from .targets import load

CRASHES = {
    # base64.b64decode() raised ValueError for b64data that isn't ASCII, past call_api: a 500.
    "b64data-not-ascii": b'\x00publish\ncon"code":\x00\x00y-1json\n\n{"channel":"news:b","b64data":"AAblis\xc4\xbc",'
    b'"skip_hisTory":true,"idempotency_k\xb7ey":"k0"}',
    "broadcast-b64data-not-ascii": b'\x00broadcast\n\n{"channels":["news:b"],"b64data":"\xc3\xa9"}',
}


@pytest.mark.parametrize("data", CRASHES.values(), ids=CRASHES.keys())
def test_crash_input_runs_clean(data: bytes) -> None:
    load("http_api").test_one_input(data)


def test_b64data_that_isnt_ascii_is_a_bad_request() -> None:
    target = load("http_api")
    method, path, headers, body = target.parse_request(CRASHES["b64data-not-ascii"])
    answer = target.loop.run_until_complete(target.app.http(method, path, "", headers, body))
    assert answer.status == 200
    assert json.loads(answer.body) == {"error": {"code": 107, "message": "bad request"}}
