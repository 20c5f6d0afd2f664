"""Time the parser on one large masked message that arrives in pieces: a microbenchmark.

    .venv/bin/python bench/micro_receive.py [--size 1048576] [--piece 262144] [--repeat 7]

A server-side ``Protocol`` receives a binary message of ``--size`` bytes in one masked frame,
fed ``--piece`` bytes at a time (uvloop reads up to 256 KiB), 100 times a round; the fastest
round's CPU time per message is printed. Rounds are timed apart and the fastest is kept, so
other processes on the machine inflate only the slower rounds. ``WAVECAST_NO_SPEEDUPS=1``
times the pure-Python twins; ``PYTHONPATH=<snapshot>/src`` another commit.
"""

from __future__ import annotations

import argparse
import os
import time

from wavecast.protocol import Protocol, Side
from wavecast.protocol.frames import apply_mask, frame_header

MESSAGES_PER_ROUND = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--piece", type=int, default=256 * 1024)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    mask = os.urandom(4)
    payload = os.urandom(args.size)
    data = frame_header(2, args.size, mask=mask) + apply_mask(payload, mask)
    pieces = [data[i : i + args.piece] for i in range(0, len(data), args.piece)]
    protocol = Protocol(Side.SERVER)
    best = float("inf")
    for _ in range(args.repeat):
        started = time.process_time()
        for _ in range(MESSAGES_PER_ROUND):
            for piece in pieces:
                protocol.receive_data(piece)
            (message,) = protocol.events_received()
        best = min(best, (time.process_time() - started) / MESSAGES_PER_ROUND)
    assert message == payload
    print(f"{args.size} B in {args.piece} B pieces: {best * 1e6:.0f} us of CPU per message (fastest of {args.repeat})")


if __name__ == "__main__":
    main()
