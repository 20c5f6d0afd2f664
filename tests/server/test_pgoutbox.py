"""The PostgreSQL outbox consumer on a real postgres: what commits is executed once, what rolls
back never; bad rows are skipped and internal errors retried; partitions keep their order and
one node at a time works each."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from wavecast.codes import ERROR_BAD_REQUEST, ERROR_INTERNAL
from wavecast.exceptions import ConfigError
from wavecast.realtime import Node
from wavecast.server.config import OutboxSection, parse_config
from wavecast.server.http_api import call_api
from wavecast.server.pgoutbox import OutboxConsumer, command_payload, schema_sql
from wavecast.server.serve import build_node

from ..support.cleanup import stopping
from ..support.config import make_config
from ..support.postgres import PostgresServer, insert_outbox, wait_drained
from ..support.timing import MS, wait_until
from ..support.tools import ROOT


class Recorder:
    """An ``execute`` that records each command and answers what :attr:`answer` says."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.answer: Callable[[str, Any], dict[str, Any]] = lambda method, request: {"result": {}}

    async def __call__(self, method: str, payload: bytes) -> dict[str, Any]:
        request = json.loads(payload)
        self.calls.append((method, request))
        return self.answer(method, request)

    @property
    def numbers(self) -> list[int]:
        return [request["data"]["n"] for _, request in self.calls]


@pytest.fixture
async def consumer(own_postgres: PostgresServer) -> AsyncIterator[Callable[..., Any]]:
    """``await consumer(recorder, **options)``: a started :class:`OutboxConsumer`; stopped at the end."""

    async def start(recorder: Recorder, **options: Any) -> OutboxConsumer:
        section = OutboxSection(enabled=True, dsn=own_postgres.dsn, **{"poll_interval": 5.0, **options})
        consumer = OutboxConsumer(section, recorder)
        await consumer.start()
        return consumer

    async with stopping(start, OutboxConsumer.stop) as make:
        yield make


def publish(n: int, channel: str = "chat:room") -> tuple[str, dict[str, Any]]:
    return ("publish", {"channel": channel, "data": {"n": n}})


async def test_committed_rows_are_executed_once_and_rolled_back_ones_never(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], own_postgres: PostgresServer
) -> None:
    recorder = Recorder()
    await consumer(recorder)
    async with outbox_database.transaction():
        await insert_outbox(outbox_database, [publish(1), publish(2)])
    with pytest.raises(RuntimeError):
        async with outbox_database.transaction():
            await insert_outbox(outbox_database, [publish(3)])
            raise RuntimeError("the application fails after writing")
    async with outbox_database.transaction():
        await insert_outbox(outbox_database, [publish(4)])
    # The poll interval is 5 s: the notification wakes the consumer.
    await wait_until(lambda: recorder.numbers == [1, 2, 4], timeout=3000 * MS, what="rows 1, 2 and 4")
    await wait_drained(own_postgres.dsn)
    await asyncio.sleep(100 * MS)
    assert recorder.numbers == [1, 2, 4]


async def test_a_row_is_invisible_until_its_transaction_commits(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any]
) -> None:
    recorder = Recorder()
    # Polling often: a consumer looking while the transaction is open must not see it.
    await consumer(recorder, poll_interval=0.02)
    transaction = outbox_database.transaction()
    await transaction.start()
    await insert_outbox(outbox_database, [publish(1)])
    await asyncio.sleep(200 * MS)
    assert recorder.calls == []
    await transaction.commit()
    await wait_until(lambda: recorder.numbers == [1], what="row 1 once committed")


async def test_rows_written_while_stopped_are_consumed_on_start(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any]
) -> None:
    await insert_outbox(outbox_database, [publish(n) for n in range(1, 251)])
    recorder = Recorder()
    await consumer(recorder, batch_size=100)
    await wait_until(lambda: len(recorder.calls) == 250, timeout=5000 * MS, what="the backlog")
    assert recorder.numbers == list(range(1, 251))


async def test_polling_finds_rows_without_a_notification(
    own_postgres: PostgresServer, consumer: Callable[..., Any]
) -> None:
    connection = await asyncpg.connect(own_postgres.dsn)
    await connection.execute(schema_sql(notification_channel=""))
    recorder = Recorder()
    await consumer(recorder, notification_channel="", poll_interval=0.05)
    await insert_outbox(connection, [publish(1)])
    await wait_until(lambda: recorder.numbers == [1], what="row 1 by polling")
    await connection.close()


async def test_a_command_that_fails_for_good_is_skipped_and_the_rest_go_on(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], own_postgres: PostgresServer
) -> None:
    recorder = Recorder()
    bad = {"code": ERROR_BAD_REQUEST.code, "message": "bad request"}
    recorder.answer = lambda method, request: {"error": bad} if request["data"]["n"] == 2 else {"result": {}}
    started = await consumer(recorder)
    await insert_outbox(outbox_database, [publish(1), publish(2), publish(3)])
    await wait_until(lambda: recorder.numbers == [1, 2, 3], what="three rows")
    await wait_until(lambda: started.stats.executed == 2, what="two executed")
    assert started.stats.skipped == 1
    await wait_drained(own_postgres.dsn)


async def test_an_internal_error_keeps_the_row_and_retries_it_in_order(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], own_postgres: PostgresServer
) -> None:
    recorder = Recorder()
    failures = 3
    internal = {"code": ERROR_INTERNAL.code, "message": "internal server error"}

    def answer(method: str, request: Any) -> dict[str, Any]:
        nonlocal failures
        if request["data"]["n"] == 2 and failures:
            failures -= 1
            return {"error": internal}
        return {"result": {}}

    recorder.answer = answer
    started = await consumer(recorder, max_retry_delay=0.05)
    await insert_outbox(outbox_database, [publish(1), publish(2), publish(3)])
    await wait_until(lambda: recorder.numbers[-1:] == [3], timeout=3000 * MS, what="row 3 after the retries")
    # Row 1 once; row 2 failed three times, then went; row 3 only after it.
    assert recorder.numbers == [1, 2, 2, 2, 2, 3]
    assert started.stats.retries == 3
    await wait_drained(own_postgres.dsn)


async def test_a_broadcast_with_an_internal_error_in_one_channel_is_retried(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any]
) -> None:
    recorder = Recorder()
    answers = [
        {"result": {"responses": [{"result": {}}, {"error": {"code": ERROR_INTERNAL.code, "message": "x"}}]}},
        {"result": {"responses": [{"result": {}}, {"result": {}}]}},
    ]
    recorder.answer = lambda method, request: answers.pop(0)
    await consumer(recorder, max_retry_delay=0.05)
    await insert_outbox(outbox_database, [("broadcast", {"channels": ["a", "b"], "data": {"n": 1}})])
    await wait_until(lambda: len(recorder.calls) == 2 and not answers, what="the broadcast retried once")


async def test_partitions_are_worked_in_parallel_each_in_order(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any]
) -> None:
    recorder = Recorder()
    await consumer(recorder, partitions=3)
    rows = [(*publish(n, f"chat:{n % 3}"), n % 3) for n in range(1, 61)]
    await insert_outbox(outbox_database, rows)
    await wait_until(lambda: len(recorder.calls) == 60, what="60 rows")
    for partition in range(3):
        seen = [request["data"]["n"] for _, request in recorder.calls if request["channel"] == f"chat:{partition}"]
        assert seen == [n for n in range(1, 61) if n % 3 == partition]


async def test_a_partition_another_node_works_is_left_alone(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], own_postgres: PostgresServer
) -> None:
    recorder = Recorder()
    started = await consumer(recorder, poll_interval=0.05)
    await insert_outbox(outbox_database, [publish(1)])
    await wait_until(lambda: recorder.numbers == [1], what="row 1")
    # Another node holds partition 0 in its transaction: this one must wait for it.
    other = await asyncpg.connect(own_postgres.dsn)
    transaction = other.transaction()
    await transaction.start()
    await other.execute("SELECT pg_advisory_xact_lock(hashtext('wavecast_outbox_lock_wavecast_outbox_0'))")
    await insert_outbox(outbox_database, [publish(2)])
    await asyncio.sleep(300 * MS)
    assert recorder.numbers == [1]
    assert await started.process_once(0) == (None, False)
    await transaction.rollback()
    await wait_until(lambda: recorder.numbers == [1, 2], what="row 2 once the lock is free")
    await other.close()


async def test_start_fails_clearly_without_the_table_or_the_database(own_postgres: PostgresServer) -> None:
    section = OutboxSection(enabled=True, dsn=own_postgres.dsn, table="missing")
    with pytest.raises(ConfigError, match=r"can't consume missing at .*: relation \"missing\" does not exist"):
        await OutboxConsumer(section, Recorder()).start()
    dsn = "postgresql://wavecast:secret@127.0.0.1:1/wavecast"
    with pytest.raises(ConfigError, match=r"can't consume wavecast_outbox at postgresql://wavecast:\*\*\*@") as info:
        await OutboxConsumer(OutboxSection(enabled=True, dsn=dsn, connect_timeout=1.0), Recorder()).start()
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"enabled": True}, "the outbox needs a database: set outbox.dsn"),
        ({"table": "outbox; DROP TABLE users"}, "table: expected a name"),
        ({"notification_channel": "a-b"}, "notification_channel: expected a name"),
        ({"partitions": 0}, "partitions: expected 1 to 1024, got 0"),
        ({"batch_size": 10_001}, "batch_size: expected 1 to 10000, got 10001"),
        ({"poll_interval": 0.0}, "poll_interval: expected 0.01 to 600 seconds, got 0.0"),
    ],
)
def test_the_section_refuses_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        OutboxSection(**options)


def test_schema_sql_takes_a_schema_and_refuses_other_names() -> None:
    assert "ON app.outbox (partition, id)" in schema_sql("app.outbox")
    assert "pg_notify" not in schema_sql(notification_channel="")
    with pytest.raises(ConfigError):
        schema_sql("outbox (id int); --")


async def test_the_listening_connection_comes_back_after_it_drops(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any]
) -> None:
    recorder = Recorder()
    await consumer(recorder)
    listening = "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
    await wait_until(lambda: outbox_database.fetchval(listening), timeout=3000 * MS, what="a LISTEN connection")
    await outbox_database.execute(f"SELECT pg_terminate_backend(({listening}))")
    await wait_until(lambda: outbox_database.fetchval(listening), timeout=3000 * MS, what="a LISTEN connection again")
    # The poll interval is 5 s: only a notification brings the row this soon.
    await insert_outbox(outbox_database, [publish(1)])
    await wait_until(lambda: recorder.numbers == [1], timeout=2000 * MS, what="row 1 after the reconnection")


def test_the_section_is_checked_with_the_rest_of_the_file() -> None:
    with pytest.raises(ConfigError, match=r"outbox\.batch_sise: unknown key; did you mean 'batch_size'\?"):
        parse_config({"outbox": {"batch_sise": 10}, "http_api": {"insecure": True}})
    with pytest.raises(ConfigError, match=r"outbox: the outbox needs a database: set outbox.dsn"):
        parse_config({"outbox": {"enabled": True}, "http_api": {"insecure": True}})


def test_the_outbox_page_shows_the_schema_sql() -> None:
    page = (ROOT / "docs" / "topics" / "outbox.md").read_text()
    assert schema_sql() in page


async def test_a_table_written_for_centrifugo_with_bytea_payloads_is_consumed(
    own_postgres: PostgresServer, consumer: Callable[..., Any]
) -> None:
    connection = await asyncpg.connect(own_postgres.dsn)
    # The table of Centrifugo's own consumer tests: BYTEA payloads, no created_at.
    await connection.execute(
        "CREATE TABLE centrifugo_outbox (id BIGSERIAL PRIMARY KEY, method text NOT NULL,"
        " payload BYTEA NOT NULL, partition INTEGER NOT NULL)"
    )
    payload = json.dumps(publish(1)[1]).encode()
    await connection.execute(
        "INSERT INTO centrifugo_outbox (method, payload, partition) VALUES ('publish', $1, 0)", payload
    )
    recorder = Recorder()
    await consumer(recorder, table="centrifugo_outbox", notification_channel="", poll_interval=0.05)
    await wait_until(lambda: recorder.numbers == [1], what="the Centrifugo-shaped row")
    await wait_drained(own_postgres.dsn, "centrifugo_outbox")
    await connection.close()


async def test_a_failing_execute_rolls_its_batch_back_and_is_retried(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    failures = [RuntimeError("a bug")]

    def answer(method: str, request: Any) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return {"result": {}}

    recorder.answer = answer
    await consumer(recorder, max_retry_delay=0.05)
    await insert_outbox(outbox_database, [publish(1)])
    await wait_until(lambda: recorder.numbers == [1, 1], what="row 1 retried after the bug")
    assert "outbox: partition 0 failed" in caplog.text


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """A started node of the standalone server's test configuration, on the memory engine."""
    node = build_node(make_config())
    await node.start()
    yield node
    await node.shutdown()


async def history(node: Node, channel: str = "chat:room") -> list[Any]:
    result = await node.history(channel, limit=20)
    return [json.loads(p.data) for p in result.publications]


async def test_rows_the_api_refuses_are_skipped_through_the_real_api(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], own_postgres: PostgresServer, node: Node
) -> None:
    started = await consumer(functools.partial(call_api, node))
    await insert_outbox(
        outbox_database,
        [
            ("publish", {"channel": "nowhere:x", "data": {"n": 1}}),  # unknown namespace
            ("publish", {"data": {"n": 2}}),  # no channel
            ("teleport", {"channel": "chat:room"}),  # no such method
            ("publish", {"channel": "chat:room", "data": {"n": 4}}),
        ],
    )
    await wait_drained(own_postgres.dsn)
    assert (started.stats.executed, started.stats.skipped) == (1, 3)
    assert await history(node) == [{"n": 4}]


async def test_rows_executed_again_after_a_crash_publish_once(
    outbox_database: asyncpg.Connection, consumer: Callable[..., Any], own_postgres: PostgresServer, node: Node
) -> None:
    calls: list[bytes] = []

    async def crash_after_the_third(method: str, payload: bytes) -> dict[str, Any]:
        answer = await call_api(node, method, payload)
        calls.append(payload)
        if len(calls) == 3:
            # Published, not yet deleted: the transaction rolls back as if the node had died.
            raise RuntimeError("the node dies")
        return answer

    await consumer(crash_after_the_third, max_retry_delay=0.05)
    rows = [publish(n) for n in range(1, 6)]
    rows.insert(2, ("publish", {"channel": "chat:room", "data": {"n": 0}, "idempotency_key": "mine"}))
    await insert_outbox(outbox_database, rows)
    await wait_drained(own_postgres.dsn)
    # The first three ran twice; the engine dropped the repeats by their keys.
    assert len(calls) == 3 + 6
    assert await history(node) == [{"n": 1}, {"n": 2}, {"n": 0}, {"n": 3}, {"n": 4}, {"n": 5}]
    keys = [json.loads(payload)["idempotency_key"] for payload in calls[3:]]
    assert keys[2] == "mine"
    assert len(set(keys)) == 6


def test_command_payload_adds_a_key_only_where_it_is_needed() -> None:
    assert json.loads(command_payload("publish", '{"channel": "a", "data": 1}', "k")) == {
        "channel": "a",
        "data": 1,
        "idempotency_key": "k",
    }
    assert json.loads(command_payload("broadcast", b'{"channels": ["a"], "data": 1}', "k"))["idempotency_key"] == "k"
    kept = '{"channel": "a", "data": 1, "idempotency_key": "theirs"}'
    assert command_payload("publish", kept, "k") == kept.encode()
    for method, value in [("disconnect", '{"user": "u"}'), ("publish", "not json"), ("publish", "[1]")]:
        assert command_payload(method, value, "k") == value.encode()
