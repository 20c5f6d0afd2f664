"""Bench peer: `picows` frame API. /echo echoes each frame (same opcode+FIN), /bcast forwards each complete message
to all OTHER /bcast conns. Compression: picows has none. max_frame_size 16 MiB, auto-ping OFF, auto-pong ON.
Usage: picows_server.py [--port P] [--no-uvloop]   (uvloop is the default, as picows recommends)"""

from __future__ import annotations

import argparse
import asyncio
import os

from picows import WSListener, WSMsgType, ws_create_server

BCAST = set()


class Echo(WSListener):
    def on_ws_frame(self, t, frame):
        mt = frame.msg_type
        if mt == WSMsgType.CLOSE:
            t.send_close(frame.get_close_code(), frame.get_close_message())
            t.disconnect()
        elif mt == WSMsgType.PING or mt == WSMsgType.PONG:
            pass  # auto-pong handles pings
        else:
            t.send(mt, frame.get_payload_as_memoryview(), frame.fin)


class Bcast(WSListener):
    def __init__(self):
        self.t = None
        self.parts = None
        self.op = None

    def on_ws_connected(self, t):
        self.t = t
        BCAST.add(t)

    def on_ws_disconnected(self, t):
        BCAST.discard(t)

    def on_ws_frame(self, t, frame):
        mt = frame.msg_type
        if mt == WSMsgType.CLOSE:
            t.send_close(frame.get_close_code(), frame.get_close_message())
            t.disconnect()
            return
        if mt == WSMsgType.PING or mt == WSMsgType.PONG:
            return
        if mt != WSMsgType.CONTINUATION and frame.fin:  # fast path: unfragmented message
            op, data = mt, frame.get_payload_as_bytes()
        else:  # assemble fragments
            if mt != WSMsgType.CONTINUATION:
                self.op, self.parts = mt, []
            self.parts.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            op, data = self.op, b"".join(self.parts)
            self.parts = None
        for o in BCAST:
            if o is not t:
                o.send(op, data)


def factory(req):
    p = req.path.split(b"?", 1)[0]
    if p == b"/echo":
        return Echo()
    if p == b"/bcast":
        return Bcast()
    return None  # 404


async def main(port):
    server = await ws_create_server(
        factory,
        "127.0.0.1",
        port,
        max_frame_size=16 * 1024 * 1024,
        enable_auto_ping=False,
        enable_auto_pong=True,
        backlog=4096,
    )
    print(f"picows listening on 127.0.0.1:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9001)))
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args()
    if a.no_uvloop:
        asyncio.run(main(a.port))
    else:
        import uvloop

        uvloop.run(main(a.port))
