"""Bench peer: python-socketio 5 (AsyncServer) with a room ``bench``, for the loadgen's Socket.IO mode.

Subscribers are Socket.IO clients at ``/socket.io/`` (WebSocket transport only): each joins the room
with the event ``join`` (``421["join","bench"]``), which is acknowledged (``431["ok"]``), and then
receives ``42["msg","<payload>"]`` for every message of the publisher. The publisher is a plain
WebSocket at ``/publish`` (the same role and wire as the other fan-out peers'): each of its text
messages is emitted to the room, ``await sio.emit("msg", text, room="bench")``, in order.

``--server aiohttp`` (default) runs it on aiohttp's own WebSocket, ``--server uvicorn`` on the ASGI
app under uvicorn (httptools, its websockets-sansio WebSocket); both on uvloop. Compression off, max
message 16 MiB; Engine.IO's pings keep their defaults (25 s / 20 s), which a trial never reaches.
Usage: python_socketio_server.py [--port P] [--server aiohttp|uvicorn]
"""

from __future__ import annotations

import argparse
import os

import socketio

MAX = 16 * 1024 * 1024
ROOM = "bench"


def make_server(async_mode: str) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(
        async_mode=async_mode,
        transports=["websocket"],
        cors_allowed_origins="*",
        max_http_buffer_size=MAX,
        http_compression=False,
        compression_threshold=MAX,
    )

    @sio.on("join")
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return "ok"

    return sio


def run_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    sio = make_server("aiohttp")

    async def publish(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX, heartbeat=None)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await sio.emit("msg", msg.data, room=ROOM)
        return ws

    app = web.Application()
    sio.attach(app)
    app.router.add_get("/publish", publish)
    print(f"python-socketio (aiohttp) listening on 127.0.0.1:{port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


def run_uvicorn(port: int) -> None:
    import uvicorn

    sio = make_server("asgi")

    async def publish(scope, receive, send):  # the ASGI app for what isn't /socket.io/
        if scope["type"] != "websocket" or scope["path"] != "/publish":
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            if event.get("text") is not None:
                await sio.emit("msg", event["text"], room=ROOM)

    app = socketio.ASGIApp(sio, other_asgi_app=publish)
    print(f"python-socketio (uvicorn) listening on 127.0.0.1:{port}", flush=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=MAX,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        backlog=4096,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9001)))
    ap.add_argument("--server", choices=("aiohttp", "uvicorn"), default="aiohttp")
    a = ap.parse_args()
    if a.server == "aiohttp":
        import uvloop

        uvloop.install()
        run_aiohttp(a.port)
    else:
        run_uvicorn(a.port)
