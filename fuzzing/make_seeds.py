"""Write the seed inputs of the fuzz targets but protobuf's: ``python fuzzing/make_seeds.py``.

Each seed follows its target's input layout (see the targets' docstrings and ``harness.py``)
and holds valid wire bytes, so that the fuzzer starts from inputs that reach deep into the
parsers. The protobuf seeds come from the golden fixtures and are kept as files.
"""

from __future__ import annotations

import json
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


def lines(*commands: object) -> bytes:
    return "\n".join(json.dumps(command, separators=(",", ":")) for command in commands).encode()


#: A tags filter with every kind of node and comparison.
FILTER = {
    "op": "and",
    "nodes": [
        {"key": "kind", "cmp": "in", "vals": ["news", "sport"]},
        {"op": "not", "nodes": [{"key": "draft", "cmp": "ex"}]},
        {
            "op": "or",
            "nodes": [{"key": "price", "cmp": "gte", "val": "10.5"}, {"key": "name", "cmp": "sw", "val": "a"}],
        },
    ],
}


def json_seeds() -> dict[str, bytes]:
    """The JSON decoder's: a flags byte (0x01: a text message), then the message."""
    sub = {"channel": "chat:a", "recover": True, "offset": 3, "epoch": "ab12", "tf": FILTER}
    connect = {"token": "t.o.k", "data": {"hello": [1, 2.5, None]}, "subs": {"chat:a": sub}, "name": "js"}
    return {
        "json/connect": b"\x01" + lines({"id": 1, "connect": connect}),
        "json/commands": b"\x01"
        + lines(
            {"id": 2, "subscribe": {"channel": "news", "positioned": True, "delta": "fossil", "tf": FILTER}},
            {"id": 3, "publish": {"channel": "news", "data": {"text": "hi\u00e9"}}},
            {
                "id": 4,
                "history": {"channel": "news", "limit": 10, "since": {"offset": 5, "epoch": "e"}, "reverse": True},
            },
            {"id": 5, "presence": {"channel": "news"}},
            {"id": 6, "presence_stats": {"channel": "news"}},
            {"id": 7, "rpc": {"method": "sum", "data": [1, 2]}},
            {"send": {"data": "async"}},
            {"id": 8, "refresh": {"token": "t"}},
            {"id": 9, "sub_refresh": {"channel": "news", "token": "t"}},
            {"id": 10, "unsubscribe": {"channel": "news"}},
            {},
        ),
        "json/binary-publish": b"\x00" + lines({"id": 1, "publish": {"channel": "c", "data": "text"}}),
        "json/pong": b"\x01{}",
    }


def http_api_seeds() -> dict[str, bytes]:
    """The HTTP API's: a flags byte (0x00: POST with the key), the method, headers, then the body."""

    def call(method: str, body: object, flags: int = 0) -> bytes:
        return bytes([flags]) + method.encode() + b"\ncontent-type: application/json\n\n" + lines(body)

    return {
        "http_api/publish": call("publish", {"channel": "chat:a", "data": {"x": 1}, "tags": {"k": "v"}}),
        "http_api/publish-b64": call(
            "publish", {"channel": "news:b", "b64data": "AAEC", "skip_history": True, "idempotency_key": "k1"}
        ),
        "http_api/broadcast": call("broadcast", {"channels": ["chat:a", "x", "nope:c"], "data": 1, "delta": True}),
        "http_api/history": call("history", {"channel": "chat:a", "limit": 3, "since": {"offset": 1, "epoch": "e"}}),
        "http_api/batch": call(
            "batch",
            {
                "commands": [
                    {"presence": {"channel": "chat:a"}},
                    {"presence_stats": {"channel": "chat:a"}},
                    {"subscribe": {"user": "u", "channel": "chat:a", "client": "c"}},
                    {"unsubscribe": {"user": "u", "channel": "chat:a"}},
                    {"disconnect": {"user": "u", "disconnect": {"code": 4000, "reason": "bye"}}},
                    {"refresh": {"user": "u", "expire_at": 1}},
                    {"history_remove": {"channel": "chat:a"}},
                    {"channels": {"pattern": "chat:*"}},
                    {"info": {}},
                ]
            },
        ),
        "http_api/authorization": call("info", {}, flags=0x04),
        "http_api/unauthorized": call("info", {}, flags=0x08),
        "http_api/get": call("channels", {}, flags=0x02),
    }


def config_seeds() -> dict[str, bytes]:
    """The configuration loader's: a file, then a NUL byte and environment variables."""
    toml = (
        '[server]\nhost = "127.0.0.1"\nport = 8000\nallowed_origins = ["https://*.example.com"]\n'
        '[client]\ntoken_hmac_secret_key = "secret"\ncommand_rate = false\n'
        "[channel]\nallow_subscribe_for_client = true\n"
        "[namespaces.chat]\npresence = true\nhistory_size = 20\nhistory_ttl = 300.0\n"
        '[http_api]\nkey = "api-key"\n[admin]\nenabled = true\npassword = "pw"\n'
        '[engine]\ntype = "memory"\nmemory_max_streams = 1000\n'
        '[proxies.app]\nendpoint = "http://127.0.0.1:9000/rpc"\ntimeout = 1.5\n'
        '[rpc.without_namespace]\nproxy_enabled = true\nproxy_name = "app"\n'
    )
    return {
        "config/full": toml.encode(),
        "config/env": b'[http_api]\nkey = "k"\n\x00'
        + b"SERVER__PORT=9000\nNAMESPACES__NEWS__PRESENCE=true\nADMIN__PASSWORD=123",
        "config/errors": b'[server]\nprot = 1\nworkers = 2\n[client]\nnamespaces = 1\n[websocket]\nwrite_delay = "x"\n',
    }


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
    seeds.update(json_seeds())
    seeds.update(http_api_seeds())
    seeds.update(config_seeds())
    for name, data in seeds.items():
        path = SEEDS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


if __name__ == "__main__":
    main()
