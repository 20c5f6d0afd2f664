"""Fuzz the frame parser of both sides: ``python fuzzing/fuzz_frames.py [-max_total_time=60]``.

The first byte picks the side; the rest is cut points and wire bytes (see ``harness.py``).
"""

from __future__ import annotations

from harness import feed, fuzz, splits_and_payload

from wavecast.protocol import OPEN, Limits, Protocol, Side

LIMITS = Limits(max_message_size=65536, max_frame_size=32768, max_fragments=64)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    side = Side.SERVER if data[0] & 1 else Side.CLIENT
    splits, payload = splits_and_payload(data[1:])
    feed(Protocol(side, state=OPEN, limits=LIMITS), payload, splits)


if __name__ == "__main__":
    fuzz(test_one_input)
