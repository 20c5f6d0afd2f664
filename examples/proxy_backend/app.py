"""A FastAPI backend that wavecast serve asks over HTTP: Centrifugo's event proxies.

Run it with ``uvicorn examples.proxy_backend.app:app --port 3000`` beside
``wavecast serve --config examples/proxy_backend/wavecast.toml``. Written as a backend for
Centrifugo would be (centrifugal.dev/docs/server/proxy), it works unchanged with either:

- connect: the browser's session cookie names the user; no cookie, no connection (an
  ``error`` answer, which the client gets).
- subscribe: ``rooms:<name>`` rooms are open to users who joined them (``POST /join``).
- publish: messages are trimmed and stamped with the author's name; empty ones are refused.
- rpc ``whoami`` and ``rooms``: answered by the backend.
- refresh: the session is looked up again every ``SESSION_CHECK`` seconds; a logged-out
  user is disconnected by the server then.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request

__all__ = ["SESSION_CHECK", "app", "joined", "sessions"]

app = FastAPI()

#: Session cookie → user, as a real backend keeps in its database.
sessions: dict[str, str] = {}
#: Room → users who joined it.
joined: dict[str, set[str]] = {}
#: Seconds between the server's checks of a connection's session (the refresh proxy).
SESSION_CHECK = 60


def _error(code: int, message: str) -> dict[str, Any]:
    # Codes 400-1999 are the application's; the client's SDK sees this code and message.
    return {"error": {"code": code, "message": message}}


@app.post("/login")
async def login(body: dict[str, str]) -> dict[str, str]:
    """Sign ``user`` in; the session cookie goes with the WebSocket connection."""
    cookie = f"s-{body['user']}-{time.monotonic_ns()}"
    sessions[cookie] = body["user"]
    return {"session": cookie}


@app.post("/logout")
async def logout(body: dict[str, str]) -> dict[str, bool]:
    return {"ok": sessions.pop(body["session"], None) is not None}


@app.post("/join")
async def join(body: dict[str, str]) -> dict[str, bool]:
    joined.setdefault(body["room"], set()).add(body["user"])
    return {"ok": True}


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


def _user(request: Request) -> str | None:
    return sessions.get(request.cookies.get("session", ""))


@app.post("/centrifugo/connect")
async def connect(request: Request) -> dict[str, Any]:
    user = _user(request)
    if user is None:
        return _error(1000, "sign in first")
    return {
        "result": {
            "user": user,
            "expire_at": int(time.time()) + SESSION_CHECK,
            "info": {"name": user.title()},
            "data": {"rooms": sorted(room for room, users in joined.items() if user in users)},
        }
    }


@app.post("/centrifugo/refresh")
async def refresh(request: Request) -> dict[str, Any]:
    body = await request.json()
    if body["user"] not in sessions.values():
        return {"result": {"expired": True}}
    return {"result": {"expire_at": int(time.time()) + SESSION_CHECK}}


@app.post("/centrifugo/subscribe")
async def subscribe(request: Request) -> dict[str, Any]:
    body = await request.json()
    room = body["channel"].removeprefix("rooms:")
    if body["user"] not in joined.get(room, ()):
        return _error(1001, f"join {room} first")
    return {"result": {"data": {"members": sorted(joined[room])}}}


@app.post("/centrifugo/publish")
async def publish(request: Request) -> dict[str, Any]:
    body = await request.json()
    text = str((body.get("data") or {}).get("text", "")).strip()
    if not text:
        return _error(1002, "say something")
    return {"result": {"data": {"text": text, "author": body["user"].title()}}}


@app.post("/centrifugo/rpc")
async def rpc(request: Request) -> dict[str, Any]:
    body = await request.json()
    if body["method"] == "whoami":
        return {"result": {"data": {"user": body["user"]}}}
    if body["method"] == "rooms":
        return {"result": {"data": sorted(joined)}}
    return _error(1003, f"no method {body['method']}")
