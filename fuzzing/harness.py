"""What the fuzz targets share: how to feed a protocol and what it may raise."""

from __future__ import annotations

import sys
from collections.abc import Callable

from wavecast.protocol import Close, Ping, Pong, Protocol, Request, Response

EVENT_TYPES = (str, bytes, Close, Ping, Pong, Request, Response)


def splits_and_payload(data: bytes) -> tuple[list[int], bytes]:
    """Split an input into cut points and the bytes to feed.

    The first byte says how many cuts (0-4) follow, each as two bytes; the rest is the
    payload. Everything is read from the front, so a seed is a header and then wire bytes.
    """
    if not data:
        return [], b""
    count = data[0] % 5
    cuts = [int.from_bytes(data[1 + 2 * i : 3 + 2 * i], "big") for i in range(count)]
    return cuts, data[1 + 2 * count :]


def feed(protocol: Protocol, data: bytes, splits: list[int], *, eof: bool = True) -> None:
    """Feed ``data`` in pieces cut at ``splits``; receive_data() must never raise."""
    start = 0
    for cut in sorted(splits):
        protocol.receive_data(data[start:cut])
        start = max(start, cut)
    protocol.receive_data(data[start:])
    drain(protocol)
    if eof:
        protocol.receive_eof()
        drain(protocol)


def drain(protocol: Protocol) -> list[object]:
    """Take the events and the output, checking their types."""
    events: list[object] = protocol.events_received()
    for event in events:
        assert isinstance(event, EVENT_TYPES), event
    for chunk in protocol.data_to_send():
        assert isinstance(chunk, bytes)
    return events


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """Run a target under atheris, with the command line's libFuzzer options.

    atheris is imported here, not by the targets, so that the regression tests in
    ``tests/fuzzing/`` can replay inputs through a target without it.
    """
    import atheris

    # Instrument what the target already imported: wavecast, and the stdlib it calls into.
    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
