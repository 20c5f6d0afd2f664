"""Fixtures of the Redis engine's own tests: engines that share a key prefix, as the nodes of
one deployment do. The redis-servers a test may stop and restart (``own_redis``,
``persistent_redis``) come from ``tests/conftest.py``."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator

import pytest

from wavecast.engines.redis import RedisEngine

from ...support.cleanup import stopping
from ...support.redis import RedisServer
from ..helpers import RecordingHandler, StartEngine


@pytest.fixture
async def start_engine() -> AsyncIterator[StartEngine]:
    """``await start_engine(server, **kwargs)``: a Redis engine, one per simulated node, all
    under one key prefix, and the handler its broker reports to; ``kwargs`` go to
    :class:`RedisEngine`. Their handlers' uids are ``node-1``, ``node-2``... The engines are
    closed when the test ends."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    uids = (f"node-{n}" for n in itertools.count(1))

    async def start(server: RedisServer, **kwargs: object) -> tuple[RedisEngine, RecordingHandler]:
        kwargs.setdefault("prefix", prefix)
        engine = RedisEngine(server.url, **kwargs)  # type: ignore[arg-type]
        handler = RecordingHandler(next(uids))
        await engine.broker.start(handler)
        await engine.presence_manager.start()
        return engine, handler

    async def close(started: tuple[RedisEngine, RecordingHandler]) -> None:
        with contextlib.suppress(Exception):
            await started[0].close()

    async with stopping(start, close) as start_and_close:
        yield start_and_close
