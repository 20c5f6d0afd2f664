"""Fuzz the frame parser of both sides: ``python fuzzing/fuzz_frames.py [-max_total_time=60]``."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from harness import feed

    from wavecast.protocol import OPEN, Limits, Protocol, Side

LIMITS = Limits(max_message_size=65536, max_frame_size=32768, max_fragments=64)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    side = Side.SERVER if fdp.ConsumeBool() else Side.CLIENT
    splits = [fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    feed(Protocol(side, state=OPEN, limits=LIMITS), payload, splits)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
