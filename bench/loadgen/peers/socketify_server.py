"""Bench peer: socketify (Python bindings over uWebSockets C API, native lib bundled in the wheel).
/echo echoes (same opcode), /bcast -> uWS WebSocket::publish on one topic, which skips the sender.
(socketify's own ws.publish() deliberately calls App::publish, which also delivers to the sender, so we call
the bundled C API uws_ws_publish_with_options directly.)
compression DISABLED, max_payload_length 16 MiB, idle_timeout 0 + send_pings_automatically False (no keepalive).
Usage: socketify_server.py [--port P]"""

from __future__ import annotations

import argparse
import os

from socketify import App, CompressOptions
from socketify.native import lib

MAX = 16 * 1024 * 1024


def echo_msg(ws, msg, opcode):
    ws.send(msg, opcode)


def bcast_open(ws):
    ws.subscribe("b")


def bcast_msg(ws, msg, opcode):
    data = msg.encode("utf-8") if isinstance(msg, str) else msg
    lib.uws_ws_publish_with_options(ws.app.SSL, ws.ws, b"b", 1, data, len(data), int(opcode), False)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9001)))
    a = ap.parse_args()
    app = App()
    common = {
        "compression": CompressOptions.DISABLED,
        "max_payload_length": MAX,
        "idle_timeout": 0,
        "send_pings_automatically": False,
        "max_backpressure": 64 * 1024 * 1024,
    }
    app.ws("/echo", {**common, "message": echo_msg})
    app.ws("/bcast", {**common, "open": bcast_open, "message": bcast_msg})
    app.listen(
        {"port": a.port, "host": "127.0.0.1"},
        lambda cfg: print(f"socketify listening on 127.0.0.1:{a.port}", flush=True),
    )
    app.run()
