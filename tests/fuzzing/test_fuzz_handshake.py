"""Inputs that crashed ``fuzzing/fuzz_handshake.py``, replayed through the target.

Each one is in the target's layout: a flags byte (0x01: the server side, bits 1-2: the origin
policy, 0x00 being ``origins=None``), a byte of cut points (none here), then the wire bytes.
"""

from __future__ import annotations

import pytest

from .targets import load

REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)

CRASHES = {
    # urlsplit() in origin_allowed() raised ValueError out of accept(): "Invalid IPv6 URL".
    "origin-bracket-outside-ipv6": b"\x01\x00" + REQUEST + b"Origin: http://ex]ample.com\r\n\r\n",
    "origin-unclosed-ipv6": b"\x01\x00" + REQUEST + b"Origin: http://[::1\r\n\r\n",
    # Found by the fuzzer: "':<1' does not appear to be an IPv4 or IPv6 address".
    "origin-bad-ipv6-literal": b"\x01\x00" + REQUEST + b"Origin: http://[:<1]:8000\r\n\r\n",
}


@pytest.mark.parametrize("data", CRASHES.values(), ids=CRASHES.keys())
def test_crash_input_runs_clean(data: bytes) -> None:
    load("handshake").test_one_input(data)
