"""A shop's backend that announces each order through wavecast's transactional outbox.

``POST /orders`` writes the order and its announcement (a ``publish`` server API command) in one
PostgreSQL transaction; ``wavecast serve`` with ``[outbox]`` enabled publishes the announcement
to ``orders:feed`` once the transaction commits. If the transaction rolls back (the card is
declined), the order and its announcement vanish together: nobody hears of an order that
doesn't exist, and no committed order goes unannounced, even if this process dies right after
committing.

Run it with ``DATABASE_URL=postgresql://... uvicorn examples.outbox.backend:app``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from wavecast.realtime.auth import sign_token
from wavecast.server.pgoutbox import schema_sql

SECRET = os.environ.get("WAVECAST_EXAMPLE_SECRET", "change-me-to-a-long-random-secret-of-32-bytes")
CHANNEL = "orders:feed"

ORDERS_SQL = """\
CREATE TABLE IF NOT EXISTS orders (
    id BIGSERIAL PRIMARY KEY,
    customer TEXT NOT NULL,
    item TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=4)
    async with app.state.pool.acquire() as connection:
        # The outbox's table, index and NOTIFY trigger, as wavecast expects them.
        await connection.execute(ORDERS_SQL + schema_sql())
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


class Order(BaseModel):
    customer: str
    item: str
    #: Play a declined card: the transaction rolls back after both rows are written.
    decline: bool = False


class Declined(Exception):
    pass


@app.post("/orders")
async def place_order(order: Order, request: Request) -> dict[str, Any]:
    pool: asyncpg.Pool = request.app.state.pool
    try:
        async with pool.acquire() as connection, connection.transaction():
            order_id = await connection.fetchval(
                "INSERT INTO orders (customer, item) VALUES ($1, $2) RETURNING id", order.customer, order.item
            )
            announcement = {
                "channel": CHANNEL,
                "data": {"order": order_id, "customer": order.customer, "item": order.item},
            }
            await connection.execute(
                "INSERT INTO wavecast_outbox (method, payload) VALUES ('publish', $1::jsonb)", json.dumps(announcement)
            )
            if order.decline:
                raise Declined
    except Declined:
        raise HTTPException(402, "card declined: no order, no announcement") from None
    return {"order": order_id}


@app.get("/orders")
async def list_orders(request: Request) -> list[dict[str, Any]]:
    rows = await request.app.state.pool.fetch("SELECT id, customer, item FROM orders ORDER BY id")
    return [dict(row) for row in rows]


@app.get("/token")
async def token(user: str) -> dict[str, str]:
    """What a real application does after its own login: sign a connection token."""
    return {"token": sign_token(SECRET, user)}
