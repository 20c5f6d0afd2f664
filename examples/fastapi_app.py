"""A FastAPI application with a wavecast node mounted at /realtime.

Run it with ``uvicorn examples.fastapi_app:app``. Browsers and centrifuge-python connect to
``ws://127.0.0.1:8000/realtime/connection/websocket`` with a token from ``/token``; a normal
HTTP route, ``POST /notify``, publishes to everyone in ``news:all``.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from wavecast.asgi import NodeApp
from wavecast.realtime import ChannelOptions, Node, NodeConfig
from wavecast.realtime.auth import sign_token

SECRET = os.environ.get("WAVECAST_EXAMPLE_SECRET", "change-me-to-a-long-random-secret-of-32-bytes")

node = Node(
    NodeConfig(
        token_hmac_secret_key=SECRET,
        namespaces={
            "news": ChannelOptions(
                allow_subscribe_for_client=True, history_size=20, history_ttl=600, force_recovery=True
            )
        },
    )
)
realtime = NodeApp(node)


@asynccontextmanager
async def lifespan(app: FastAPI) -> Any:
    # Mounted apps get no lifespan events of their own: start and stop the node here.
    await node.start()
    yield
    await node.shutdown()


app = FastAPI(lifespan=lifespan)
app.mount("/realtime", realtime)


@app.get("/token")
async def token(user: str) -> dict[str, str]:
    """What a real application does after its own login: sign a connection token."""
    return {"token": sign_token(SECRET, user)}


@app.post("/notify")
async def notify(message: dict[str, Any]) -> dict[str, Any]:
    """Publish from an ordinary route: every subscriber of news:all receives it."""
    position = await node.publish("news:all", message)
    return {"offset": position.offset if position else 0}
