"""Fuzz permessage-deflate decoding: ``python fuzzing/fuzz_deflate.py [-max_total_time=60]``.

Inputs are frames whose payloads are deflate data (or anything), with RSV1 set or not, fed to
a server that negotiated the extension with the parameters the input picks. The layout,
read from the front so that seeds are easy to write (``make_seeds.py``):

- byte 0: bit 0 ``remote_no_context_takeover``, bit 1 ``local_no_context_takeover``;
- byte 1: the peer's window bits (8-15), byte 2: this side's (9-15);
- bytes 3-4: where to cut the stream in two;
- then frames, each a flags byte (opcode 0-2 as the value mod 3 of its low nibble, 0x10
  FIN, 0x20 RSV1), two bytes of length (mod 2049) and the payload.
"""

from __future__ import annotations

import os

from harness import feed, fuzz

from wavecast.protocol import OPEN, Limits, PerMessageDeflate, Protocol, Side
from wavecast.protocol.frames import serialize_frame

LIMITS = Limits(max_message_size=65536, max_frame_size=32768, max_fragments=64)
MAX_FRAMES = 8


def test_one_input(data: bytes) -> None:
    if len(data) < 5:
        return
    protocol = Protocol(Side.SERVER, state=OPEN, limits=LIMITS)
    protocol.extension = PerMessageDeflate(
        remote_no_context_takeover=bool(data[0] & 1),
        local_no_context_takeover=bool(data[0] & 2),
        remote_max_window_bits=8 + data[1] % 8,
        local_max_window_bits=9 + data[2] % 7,
    )
    cut = int.from_bytes(data[3:5], "big")
    stream = b""
    i = 5
    for _ in range(MAX_FRAMES):
        if i + 3 > len(data):
            break
        flags = data[i]
        length = int.from_bytes(data[i + 1 : i + 3], "big") % 2049
        payload = data[i + 3 : i + 3 + length]
        i += 3 + length
        opcode = (flags & 0x0F) % 3
        stream += serialize_frame(opcode, payload, fin=bool(flags & 0x10), rsv1=bool(flags & 0x20), mask=os.urandom(4))
    feed(protocol, stream, [cut % (len(stream) + 1)])


if __name__ == "__main__":
    fuzz(test_one_input)
