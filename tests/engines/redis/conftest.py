"""Fixtures of the Redis engine's own tests: engines that share a key prefix, as the nodes of
one deployment do. The redis-servers a test may stop and restart (``own_redis``,
``persistent_redis``) come from ``tests/conftest.py``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from wavecast.engines.redis import RedisEngine

from ...support.redis import RedisServer
from ..helpers import RecordingHandler, StartEngine


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
