"""What the fuzz targets share: how to feed a protocol and what it may raise."""

from __future__ import annotations

from wavecast.protocol import Close, Ping, Pong, Protocol, Request, Response

EVENT_TYPES = (str, bytes, Close, Ping, Pong, Request, Response)


def feed(protocol: Protocol, data: bytes, splits: list[int]) -> None:
    """Feed ``data`` in pieces cut at ``splits``; receive_data() must never raise."""
    start = 0
    for cut in sorted(splits):
        protocol.receive_data(data[start:cut])
        start = cut
    protocol.receive_data(data[start:])
    for event in protocol.events_received():
        assert isinstance(event, EVENT_TYPES), event
    for chunk in protocol.data_to_send():
        assert isinstance(chunk, bytes)
    protocol.receive_eof()
    protocol.events_received()
