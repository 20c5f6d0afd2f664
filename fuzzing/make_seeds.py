"""Write the seed inputs of the frames, handshake and deflate targets: ``python fuzzing/make_seeds.py``.

Each seed follows its target's input layout (see the targets' docstrings and ``harness.py``)
and holds valid wire bytes, so that the fuzzer starts from inputs that reach deep into the
parsers. The protobuf seeds come from the golden fixtures and are kept as files.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from wavecast.protocol import serialize_close
from wavecast.protocol.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, serialize_frame

SEEDS = Path(__file__).parent / "seeds"
MASK = b"\x37\xfa\x21\x3d"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
NO_CUTS = b"\x00"


def frames(masked: bool) -> bytes:
    mask = MASK if masked else None
    return b"".join(
        [
            serialize_frame(OP_TEXT, b"Hello", mask=mask),
            serialize_frame(OP_BINARY, bytes(range(256)), mask=mask),
            serialize_frame(OP_TEXT, b"frag", fin=False, mask=mask),
            serialize_frame(OP_PING, b"ping", mask=mask),
            serialize_frame(OP_CONT, b"mented", mask=mask),
            serialize_frame(OP_CLOSE, serialize_close(1000, "bye"), mask=mask),
        ]
    )


def request(extra: str = "") -> bytes:
    return (
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def response(extra: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
    ).encode()


def deflate_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = True) -> bytes:
    return bytes([opcode | (0x10 if fin else 0) | (0x20 if rsv1 else 0)]) + len(payload).to_bytes(2, "big") + payload


def deflated(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(wbits=-wbits)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def main() -> None:
    seeds: dict[str, bytes] = {
        "frames/server": b"\x01" + NO_CUTS + frames(masked=True),
        "frames/client": b"\x00" + NO_CUTS + frames(masked=False),
        # Handshake flags: bit 0 server side, bits 1-2 origin policy, 0x08 deflate, 0x10 select.
        "handshake/request": b"\x01" + NO_CUTS + request() + frames(masked=True),
        "handshake/request-origin": b"\x05" + NO_CUTS + request("Origin: https://a.example.com\r\n"),
        "handshake/request-own-origin": b"\x01" + NO_CUTS + request("Origin: http://example.com:80\r\n"),
        "handshake/request-ipv6-origin": b"\x01" + NO_CUTS + request("Origin: http://[::1]:8000\r\n"),
        "handshake/request-deflate": b"\x09"
        + NO_CUTS
        + request(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n"
            "Sec-WebSocket-Protocol: superchat, chat\r\n"
        ),
        "handshake/request-keepalive": b"\x01"
        + NO_CUTS
        + b"GET /health HTTP/1.1\r\nHost: example.com\r\n\r\n"
        + b"POST /api HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\n{}",
        "handshake/response": b"\x00" + NO_CUTS + response() + frames(masked=False),
        "handshake/response-deflate": b"\x08"
        + NO_CUTS
        + response("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12\r\n"),
        "handshake/response-rejected": b"\x00"
        + NO_CUTS
        + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n\r\nforbidden",
    }
    text = b"a compressible message, " * 20
    seeds["deflate/messages"] = (
        bytes([0, 7, 6])
        + b"\x00\x00"
        + deflate_frame(OP_TEXT, deflated(text, 15))
        + deflate_frame(OP_BINARY, bytes(range(64)), rsv1=False)
        + deflate_frame(OP_BINARY, deflated(bytes(300), 15))
    )
    compressor = zlib.compressobj(wbits=-9)
    first = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(text[:100]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    seeds["deflate/fragmented-small-window"] = (
        bytes([1, 1, 0])
        + b"\x00\x10"
        + deflate_frame(OP_TEXT, first, fin=False)
        + deflate_frame(OP_CONT, second[:-4], rsv1=False)
    )
    seeds["deflate/bomb"] = bytes([0, 7, 6]) + b"\x00\x00" + deflate_frame(OP_BINARY, deflated(bytes(2**20), 15))
    for name, data in seeds.items():
        path = SEEDS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


if __name__ == "__main__":
    main()
