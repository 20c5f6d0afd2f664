"""Fixtures of the Redis engine's own tests: a redis-server that a test may stop and restart,
and engines on it that share a key prefix, as the nodes of one deployment do."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from wavecast.engines.redis import RedisEngine

from ...redis_server import RedisServer, redis_server_or_skip
from ..helpers import RecordingHandler

StartEngine = Callable[..., Awaitable[tuple[RedisEngine, RecordingHandler]]]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, without persistence: a restart loses everything."""
    with redis_server_or_skip() as server:
        yield server


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone whose append-only file is fsynced on every write."""
    with redis_server_or_skip(persistent=True) as server:
        yield server


@pytest.fixture
async def start_engine() -> AsyncIterator[StartEngine]:
    """Start Redis engines, one per simulated node, under one key prefix; close them at the end.

    ``await start_engine(server, **kwargs)`` returns the engine and the handler its broker
    reports to; ``kwargs`` go to :class:`RedisEngine`.
    """
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    engines: list[RedisEngine] = []

    async def start(server: RedisServer, **kwargs: object) -> tuple[RedisEngine, RecordingHandler]:
        kwargs.setdefault("prefix", prefix)
        engine = RedisEngine(server.url, **kwargs)  # type: ignore[arg-type]
        handler = RecordingHandler()
        await engine.broker.start(handler)
        await engine.presence_manager.start()
        engines.append(engine)
        return engine, handler

    yield start
    for engine in engines:
        with contextlib.suppress(Exception):
            await engine.close()
