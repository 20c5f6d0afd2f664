"""Fuzz the handshake of both sides: ``python fuzzing/fuzz_handshake.py [-max_total_time=60]``.

The first byte picks the side and its settings (origin policy, permessage-deflate, how the
subprotocol is chosen); the rest is cut points and wire bytes (see ``harness.py``). A server
answers whatever request parsed, and both sides go on to parse the frames that follow a 101:
nothing but the documented events may come out, and nothing may raise.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import drain, feed, fuzz, splits_and_payload

from wavecast.protocol import (
    ClientPerMessageDeflateFactory,
    ClientProtocol,
    ServerPerMessageDeflateFactory,
    ServerProtocol,
    parse_uri,
)

URI = parse_uri("ws://example.com/chat")
#: The key of RFC 6455 section 1.3, so that a seed can carry the matching Sec-WebSocket-Accept.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ORIGIN_POLICIES: list[list[str] | None] = [
    None,
    ["*"],
    ["https://app.example.com", "https://*.example.com"],
    ["null"],
]

SIDE, DEFLATE, SELECT = 0x01, 0x08, 0x10


def first_offer(offered: Sequence[str]) -> str | None:
    return offered[0] if offered else None


def test_one_input(data: bytes) -> None:
    if not data:
        return
    flags = data[0]
    splits, payload = splits_and_payload(data[1:])
    if flags & SIDE:
        server = ServerProtocol(
            origins=ORIGIN_POLICIES[(flags >> 1) & 3],
            subprotocols=["chat", "superchat"],
            select_subprotocol=first_offer if flags & SELECT else None,
            extensions=[ServerPerMessageDeflateFactory()] if flags & DEFLATE else [],
        )
        feed(server, payload, splits, eof=False)
        # A request that parsed must be answerable, whatever it holds; a 101 goes on to
        # parse the frames that came with the request.
        if server.request is not None and server.handshake_exc is None:
            server.send_response(server.accept(server.request))
            drain(server)
        server.receive_eof()
        drain(server)
    else:
        client = ClientProtocol(
            URI,
            subprotocols=["chat"],
            extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=12)] if flags & DEFLATE else [],
        )
        client.key = KEY
        client.send_request(client.connect())
        client.data_to_send()
        feed(client, payload, splits)


if __name__ == "__main__":
    fuzz(test_one_input)
