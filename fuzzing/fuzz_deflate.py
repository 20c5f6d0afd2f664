"""Fuzz permessage-deflate decoding: ``python fuzzing/fuzz_deflate.py [-max_total_time=60]``.

Inputs are frames whose payloads are random deflate data, with RSV1 set or not, fed to a
server that negotiated the extension with random parameters.
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports():
    from harness import feed

    from wavecast.protocol import OPEN, Limits, PerMessageDeflate, Protocol, Side
    from wavecast.protocol.frames import serialize_frame

LIMITS = Limits(max_message_size=65536, max_frame_size=32768, max_fragments=64)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    protocol = Protocol(Side.SERVER, state=OPEN, limits=LIMITS)
    protocol.extension = PerMessageDeflate(
        remote_no_context_takeover=fdp.ConsumeBool(),
        local_no_context_takeover=fdp.ConsumeBool(),
        remote_max_window_bits=fdp.ConsumeIntInRange(8, 15),
        local_max_window_bits=fdp.ConsumeIntInRange(9, 15),
    )
    stream = b""
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        opcode = fdp.PickValueInList([0, 1, 2])
        fin = fdp.ConsumeBool()
        rsv1 = fdp.ConsumeBool()
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048))
        stream += serialize_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=os.urandom(4))
    feed(protocol, stream, [fdp.ConsumeIntInRange(0, len(stream))])


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
