"""Consume a transactional outbox in PostgreSQL: server API commands that an application writes
inside its own transactions, executed once they commit.

The table has Centrifugo's shape (its PostgreSQL consumer), so that a backend written for
Centrifugo's outbox works unchanged::

    CREATE TABLE wavecast_outbox (
        id BIGSERIAL PRIMARY KEY,
        method TEXT NOT NULL,                -- a server API method: publish, broadcast...
        payload JSONB NOT NULL,              -- its request, as POST /api/<method> takes it
        partition INTEGER NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );

Each partition is worked by one loop on every node. A loop, in one transaction, takes the
partition's advisory lock (so that one node at a time works a partition, in ``id`` order),
claims up to ``batch_size`` rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, executes them
through the HTTP API's own code, deletes the executed rows and commits. Rows a rolled-back
transaction wrote never become visible, so they are never sent. A ``NOTIFY`` on
``notification_channel`` (a trigger on insert sends the partition) wakes the loop at once;
without one it polls every ``poll_interval``.

A node that dies after publishing but before its delete commits leaves the rows to the next
claim, which executes them again. A publish or broadcast without an ``idempotency_key`` gets
one made of the table and the row's id, so the engine drops the repeat and the publication
goes out once, as long as the repeat comes within ``idempotent_result_ttl`` (300 s) and the
engine outlives the node (Redis does; a node's memory engine dies with it). Other commands
(``disconnect``, ``unsubscribe``...) are executed again.

A command that fails for a reason that won't change (a bad request, an unknown channel) is
logged and deleted, as Centrifugo does; an internal error (the engine is down) stops the
batch there, keeps the row, and the loop retries after a delay growing to ``max_retry_delay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ..codes import ERROR_INTERNAL
from ..exceptions import ConfigError
from .config import SQL_NAME, OutboxSection

if TYPE_CHECKING:
    import asyncpg

__all__ = ["OutboxConsumer", "OutboxStats", "command_payload", "schema_sql"]

logger = logging.getLogger("wavecast.outbox")

#: Runs one server API command, ``(method, request JSON)``, and returns the API's answer:
#: ``{"result": ...}`` or ``{"error": {"code": ..., "message": ...}}``.
Execute = Callable[[str, bytes], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class OutboxStats:
    """What the consumer did, for logs, metrics and tests."""

    #: Rows executed and deleted.
    executed: int = 0
    #: Rows deleted without effect: their command failed for good.
    skipped: int = 0
    #: Batches that stopped on an internal error or a database error, to be retried.
    retries: int = 0


def _retryable(answer: dict[str, Any]) -> bool:
    """Tell whether an API answer is an internal error, in itself or in a broadcast's responses."""
    if answer.get("error", {}).get("code") == ERROR_INTERNAL.code:
        return True
    responses = answer.get("result", {}).get("responses", ())
    return any(r.get("error", {}).get("code") == ERROR_INTERNAL.code for r in responses)


#: Methods whose repeats the engines drop when they carry the same ``idempotency_key``.
_IDEMPOTENT_METHODS = frozenset(("publish", "broadcast"))


def command_payload(method: str, value: Any, key: str) -> bytes:
    """Return a row's request as JSON bytes, with ``idempotency_key`` set to ``key`` for a
    publish or broadcast that has none, so that a row executed twice publishes once.

    ``value`` is the ``payload`` column: JSONB, JSON and TEXT come as ``str``, BYTEA (which
    Centrifugo's tests use) as ``bytes``. A payload that isn't a JSON object is left as it is,
    for the API to refuse.
    """
    payload = value.encode() if isinstance(value, str) else bytes(value)
    if method not in _IDEMPOTENT_METHODS:
        return payload
    try:
        request = _decode(payload)
    except msgspec.DecodeError:
        return payload
    if not isinstance(request, dict) or request.get("idempotency_key"):
        return payload
    request["idempotency_key"] = key
    return _encode(request)


_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def schema_sql(table: str = "wavecast_outbox", notification_channel: str = "wavecast_outbox") -> str:
    """Return the SQL that creates the outbox ``table``, its index and its notifying trigger.

    The trigger sends the new row's partition on ``notification_channel``; PostgreSQL delivers
    it when the transaction commits, and never when it rolls back. An empty channel leaves the
    trigger out (poll only).
    """
    if not SQL_NAME.match(table) or (notification_channel and not SQL_NAME.match(notification_channel)):
        raise ConfigError(f"expected SQL names, got {table!r} and {notification_channel!r}")
    name = table.rpartition(".")[2]
    sql = f"""\
CREATE TABLE IF NOT EXISTS {table} (
    id BIGSERIAL PRIMARY KEY,
    method TEXT NOT NULL,
    payload JSONB NOT NULL,
    partition INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {name}_partition_id_idx ON {table} (partition, id);
"""
    if notification_channel:
        sql += f"""\
CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{notification_channel}', NEW.partition::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER {name}_notify AFTER INSERT ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_notify();
"""
    return sql


class OutboxConsumer:
    """Consume the outbox of ``options`` into ``execute`` until :meth:`stop`.

    Args:
        options: the table, the partitions, the batch and the timings.
        execute: runs one command; :func:`wavecast.server.http_api.call_api` with the node.
    """

    def __init__(self, options: OutboxSection, execute: Execute) -> None:
        self.options = options
        self.execute = execute
        self.stats = OutboxStats()
        self._pool: asyncpg.Pool | None = None
        self._stopping = False
        self._wake = [asyncio.Event() for _ in range(options.partitions)]
        self._workers: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._lock_prefix = f"wavecast_outbox_lock_{options.table}_"
        self._key_prefix = f"wavecast-outbox-{options.table}-"
        table = options.table
        self._select = (
            f"SELECT id, method, payload FROM {table} WHERE partition = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
        )
        self._delete = f"DELETE FROM {table} WHERE id = ANY($1::bigint[])"

    async def start(self) -> None:
        """Connect, listen for notifications and start a loop per partition.

        Raises:
            ConfigError: asyncpg isn't installed, or PostgreSQL can't be reached or lacks the table.
        """
        try:
            import asyncpg
        except ImportError as exc:
            raise ConfigError("outbox: the PostgreSQL outbox needs asyncpg: pip install 'wavecast[postgres]'") from exc
        options = self.options
        try:
            self._pool = await asyncpg.create_pool(
                options.dsn, min_size=1, max_size=options.partitions, timeout=options.connect_timeout
            )
            async with self._pool.acquire() as connection:
                await connection.execute(f"SELECT id, method, payload, partition FROM {options.table} LIMIT 0")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            if self._pool is not None:
                await self._pool.close()
            raise ConfigError(f"outbox: can't consume {options.table} at {_safe_dsn(options.dsn)}: {exc}") from exc
        loop = asyncio.get_running_loop()
        if options.notification_channel:
            self._listener = loop.create_task(self._listen(), name="wavecast-outbox-listen")
        self._workers = [
            loop.create_task(self._work(partition), name=f"wavecast-outbox-{partition}")
            for partition in range(options.partitions)
        ]
        logger.info("consuming the outbox %s in %d partitions", options.table, options.partitions)

    async def stop(self, timeout: float = 10.0) -> None:
        """Let the batches in flight finish (up to ``timeout`` seconds), then stop.

        A batch still running after ``timeout`` is cancelled: its transaction rolls back and its
        rows go to the next claim, on this node or another.
        """
        self._stopping = True
        for event in self._wake:
            event.set()
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=timeout)
            if pending:
                logger.warning("outbox: %d batches still running after %.1f s: rolled back", len(pending), timeout)
        tasks = [*self._workers, *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers, self._listener = [], None
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    # --- waking up ---------------------------------------------------------------------------

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            partition = int(payload)
        except ValueError:
            partition = -1
        if 0 <= partition < len(self._wake):
            self._wake[partition].set()
        else:
            logger.warning("outbox: notification for partition %r, expected 0 to %d", payload, len(self._wake) - 1)

    async def _listen(self) -> None:
        """Hold a connection that LISTENs, and reconnect it when it drops; polling covers the gap."""
        import asyncpg

        channel = self.options.notification_channel
        while not self._stopping:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self.options.dsn, timeout=self.options.connect_timeout)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("outbox: can't listen for notifications: %s", exc)
                await asyncio.sleep(self.options.max_retry_delay)
                continue
            try:
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(channel, self._notified)
                # Rows written while no one listened are picked up now rather than at the next poll.
                for event in self._wake:
                    event.set()
                await lost.wait()
                logger.warning("outbox: the notification connection dropped; reconnecting")
            finally:
                connection.terminate()

    async def _sleep(self, partition: int, seconds: float) -> None:
        """Wait ``seconds``, or less if the partition is notified or the consumer stops."""
        wake = self._wake[partition]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)
        wake.clear()

    # --- working a partition -----------------------------------------------------------------

    async def _work(self, partition: int) -> None:
        import asyncpg

        delay = 0.0
        while not self._stopping:
            try:
                count, retry = await self.process_once(partition)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("outbox: partition %d: %s", partition, exc)
                count, retry = 0, True
            except Exception:
                # A bug must not stop the partition for good: its batch rolled back, retry it.
                logger.exception("outbox: partition %d failed", partition)
                count, retry = 0, True
            if retry:
                self.stats.retries += 1
                delay = min(max(delay * 2, 0.05), self.options.max_retry_delay)
                await self._sleep(partition, delay)
                continue
            delay = 0.0
            # A full batch means there may be more now: go on without waiting.
            if count is None or count < self.options.batch_size:
                await self._sleep(partition, self.options.poll_interval)

    async def process_once(self, partition: int) -> tuple[int | None, bool]:
        """Claim, execute and delete one batch of ``partition``.

        Returns:
            The rows claimed (``None`` when another node holds the partition), and whether a
            command asked to be retried.
        """
        assert self._pool is not None, "start() first"
        async with self._pool.acquire() as connection, connection.transaction():
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"{self._lock_prefix}{partition}"
            )
            if not locked:
                return None, False
            rows = await connection.fetch(self._select, partition, self.options.batch_size)
            done: list[int] = []
            skipped = 0
            retry = False
            for row in rows:
                method, row_id = row["method"], row["id"]
                payload = command_payload(method, row["payload"], f"{self._key_prefix}{row_id}")
                answer = await self.execute(method, payload)
                if _retryable(answer):
                    retry = True
                    break
                if "error" in answer:
                    skipped += 1
                    logger.error("outbox: row %d: %s failed for good, deleted: %s", row_id, method, answer)
                done.append(row_id)
            if done:
                await connection.execute(self._delete, done)
        # Counted once the deletes committed.
        self.stats.executed += len(done) - skipped
        self.stats.skipped += skipped
        return len(rows), retry


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)
