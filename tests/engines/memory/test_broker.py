"""What only the memory broker does: sweeping expired streams, its clock, running unstarted.

Everything that every broker does is in ``tests/engines/contract/``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from wavecast.engines import ClientInfo, Publication, StreamPosition
from wavecast.engines.memory import MemoryBroker
from wavecast.exceptions import EngineLimitError

from ...support.clock import FakeClock
from ...support.timing import MS, wait_until
from ..helpers import RecordingHandler

DATA = Publication(data=b"{}")
INFO = ClientInfo(client="c", user="u")


async def test_sweep_forgets_expired_streams() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    await broker.publish("old", DATA, history_size=10, history_ttl=1)
    clock.now += 5
    await broker.publish("new", DATA, history_size=10, history_ttl=1)
    clock.now += 6
    broker.sweep()
    assert set(broker._streams) == {"new"}
    # The kept stream lost its expired publications but not its position.
    assert list(broker._streams["new"].items) == []
    assert broker._streams["new"].offset == 1


async def test_sweep_keeps_live_publications() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    await broker.publish("ch", DATA, history_size=10, history_ttl=5)
    clock.now += 4
    broker.sweep()
    assert [p.offset for p in broker._streams["ch"].items] == [1]


async def test_sweep_of_nothing() -> None:
    MemoryBroker().sweep()


async def test_a_long_history_ttl_keeps_the_stream_past_meta_ttl() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    position = await broker.publish("ch", DATA, history_size=10, history_ttl=100)
    clock.now += 50
    broker.sweep()
    result = await broker.history("ch")
    assert result.position == position
    assert [p.offset for p in result.publications] == [1]


async def test_history_of_an_expired_stream_starts_a_new_one_before_any_sweep() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    old = await broker.publish("ch", DATA, history_size=10, history_ttl=1)
    clock.now += 11
    result = await broker.history("ch")
    assert old is not None and result.position.epoch != old.epoch
    assert result.position == StreamPosition(0, result.position.epoch)


async def test_the_sweeper_runs_every_sweep_interval() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, sweep_interval=5 * MS, clock=clock)
    await broker.start(RecordingHandler())
    try:
        await broker.publish("ch", DATA, history_size=10, history_ttl=1)
        clock.now += 11
        await wait_until(lambda: "ch" not in broker._streams, what="the sweep")
    finally:
        await broker.close()
    assert broker._sweeper.task is None


async def test_close_before_start() -> None:
    await MemoryBroker().close()


async def test_close_cancels_the_sweeper() -> None:
    broker = MemoryBroker()
    await broker.start(RecordingHandler())
    sweeper = broker._sweeper.task
    assert sweeper is not None and not sweeper.done()
    await broker.close()
    assert sweeper.cancelled()


async def test_an_unstarted_broker_delivers_nothing() -> None:
    broker = MemoryBroker()
    await broker.subscribe("ch")
    assert await broker.publish("ch", DATA) is None
    await broker.publish_join("ch", INFO)
    await broker.publish_leave("ch", INFO)
    position = await broker.publish("ch", DATA, history_size=10, history_ttl=10)
    assert position is not None and position.offset == 1


async def test_the_default_clock_is_monotonic() -> None:
    broker = MemoryBroker()
    assert broker.clock is time.monotonic
    await broker.publish("ch", DATA, history_size=10, history_ttl=60)
    await asyncio.sleep(0)
    assert [p.offset for p in (await broker.history("ch")).publications] == [1]


# --- snapshots --------------------------------------------------------------------------------


async def test_a_snapshot_keeps_streams_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.json"
    first = MemoryBroker(snapshot_path=path)
    await first.start(RecordingHandler())
    publication = Publication(data=b'{"a":1}', info=INFO, tags={"k": "v"}, time=1700000000000)
    await first.publish("ch", publication, history_size=10, history_ttl=600)
    position = await first.publish("ch", DATA, history_size=10, history_ttl=600)
    await first.publish("gone", DATA)  # no history, nothing to keep
    await first.close()
    assert path.exists()
    assert not path.with_name("history.json.tmp").exists()

    second = MemoryBroker(snapshot_path=str(path))
    await second.start(RecordingHandler())
    try:
        result = await second.history("ch")
        assert result.position == position
        assert result.publications == [
            Publication(data=b'{"a":1}', offset=1, info=INFO, tags={"k": "v"}, time=1700000000000),
            Publication(data=b"{}", offset=2),
        ]
        assert set(second._streams) == {"ch"}
    finally:
        await second.close()


def _age_snapshot(path: Path, seconds: float) -> None:
    snapshot = json.loads(path.read_text())
    snapshot["saved_at"] -= seconds
    path.write_text(json.dumps(snapshot))


async def test_time_stopped_counts_against_the_lifetimes(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    first = MemoryBroker(meta_ttl=100, snapshot_path=path)
    short = await first.publish("short", DATA, history_size=10, history_ttl=10)
    await first.publish("expired", DATA, history_size=10, history_ttl=10)
    await first.close()
    snapshot = json.loads(path.read_text())
    snapshot["streams"]["expired"]["meta_ttl"] = 5.0
    path.write_text(json.dumps(snapshot))
    _age_snapshot(path, 20)

    second = MemoryBroker(meta_ttl=100, snapshot_path=path)
    await second.start(RecordingHandler())
    try:
        # Publications outlived their 10 s; the stream's position didn't outlive its 100 s.
        result = await second.history("short")
        assert result.publications == []
        assert result.position == short
        assert "expired" not in second._streams
    finally:
        await second.close()


async def test_an_unreadable_snapshot_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.json"
    path.write_text("{not json")
    broker = MemoryBroker(snapshot_path=path)
    with caplog.at_level(logging.WARNING, logger="wavecast.engines.memory"):
        await broker.start(RecordingHandler())
    try:
        assert "ignoring unreadable history snapshot" in caplog.text
        assert broker._streams == {}
    finally:
        await broker.close()
    # Closing wrote a good one over it.
    assert json.loads(path.read_text())["streams"] == {}


async def test_no_snapshot_yet(tmp_path: Path) -> None:
    broker = MemoryBroker(snapshot_path=tmp_path / "history.json")
    await broker.start(RecordingHandler())
    assert broker._streams == {}
    await broker.close()


async def test_a_snapshot_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text("{}")
    path.chmod(0o644)  # as an earlier version left it
    broker = MemoryBroker(snapshot_path=path)
    await broker.publish("ch", DATA, history_size=10, history_ttl=600)
    await broker.close()
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_snapshot_keeps_the_epochs_of_channels_never_published_to(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    first = MemoryBroker(snapshot_path=path)
    quiet = (await first.history("quiet", limit=0)).position
    await first.close()
    second = MemoryBroker(snapshot_path=path)
    await second.start(RecordingHandler())
    try:
        assert (await second.history("quiet", limit=0)).position == quiet
        assert await second.publish("quiet", DATA, history_size=10, history_ttl=60) == StreamPosition(1, quiet.epoch)
    finally:
        await second.close()
    # Without the snapshot, a broker can't know what the channel had: another epoch.
    assert (await MemoryBroker().history("quiet", limit=0)).position.epoch != quiet.epoch


async def test_a_snapshot_drops_positions_that_were_never_published_to(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    first = MemoryBroker(snapshot_path=path)
    await first.publish("ch", DATA, history_size=10, history_ttl=600)
    await first.close()
    snapshot = json.loads(path.read_text())
    # What reads created before they stopped creating anything.
    snapshot["streams"]["read-only"] = {**snapshot["streams"]["ch"], "offset": 0, "items": []}
    path.write_text(json.dumps(snapshot))
    second = MemoryBroker(snapshot_path=path)
    await second.start(RecordingHandler())
    try:
        assert set(second._streams) == {"ch"}
    finally:
        await second.close()


# --- what reading costs, and the limits -----------------------------------------------------------


async def test_reading_creates_nothing() -> None:
    broker = MemoryBroker()
    for n in range(1000):
        await broker.history(f"chat:{n}", limit=0)
        await broker.history(f"chat:{n}", since=StreamPosition(3, "e"))
    assert broker._streams == {}
    assert broker.bytes == 0


async def test_an_expired_stream_is_forgotten_when_read() -> None:
    clock = FakeClock()
    broker = MemoryBroker(meta_ttl=10, clock=clock)
    await broker.publish("ch", DATA, history_size=10, history_ttl=1)
    clock.now += 11
    await broker.history("ch")
    assert broker._streams == {}
    assert broker.bytes == 0


def _from(user: str) -> Publication:
    return Publication(data=b"x" * 800, info=ClientInfo(client=f"client-of-{user}", user=user))


async def test_max_streams_evicts_the_least_recently_published() -> None:
    broker = MemoryBroker(max_streams=3)
    positions = {}
    for channel in ("a", "b", "c"):
        positions[channel] = await broker.publish(channel, DATA, history_size=10, history_ttl=60)
    await broker.publish("a", DATA, history_size=10, history_ttl=60)  # "b" is now the oldest
    await broker.publish("d", DATA, history_size=10, history_ttl=60)
    assert list(broker._streams) == ["c", "a", "d"]
    assert broker.evicted == 1
    # What "b" had is gone: its subscribers learn it from a new epoch.
    after = (await broker.history("b", limit=0)).position
    assert after.offset == 0 and after.epoch != positions["b"].epoch  # type: ignore[union-attr]
    assert await broker.publish("b", DATA, history_size=10, history_ttl=60) == StreamPosition(1, after.epoch)


async def test_max_bytes_evicts_streams_until_the_rest_fits(caplog: pytest.LogCaptureFixture) -> None:
    broker = MemoryBroker(max_bytes=10_000)
    with caplog.at_level(logging.WARNING, logger="wavecast.engines.memory"):
        for n in range(20):
            await broker.publish(f"ch{n}", _from("server-side"), history_size=10, history_ttl=60)
    assert broker.bytes <= 10_000
    assert broker.evicted > 0
    assert "ch19" in broker._streams and "ch0" not in broker._streams
    assert "history limits reached" in caplog.text
    # One stream alone over the limit keeps its newest publication.
    big = MemoryBroker(max_bytes=3000)
    for _ in range(5):
        position = await big.publish("ch", _from("u"), history_size=10, history_ttl=60)
    assert [p.offset for p in (await big.history("ch")).publications] == [5]
    assert position == StreamPosition(5, (await big.history("ch")).position.epoch)


async def test_max_user_bytes_refuses_what_one_user_would_hold_beyond() -> None:
    clock = FakeClock()
    broker = MemoryBroker(max_user_bytes=10_000, clock=clock)
    accepted = 0
    with pytest.raises(EngineLimitError, match="more than 10000"):
        for n in range(100):
            await broker.publish(f"ch{n % 3}", _from("greedy"), history_size=100, history_ttl=5)
            accepted += 1
    assert 0 < accepted < 10
    assert broker.user_bytes["greedy"] <= 10_000
    # Others, and the server's own publications, aren't held back by one user.
    await broker.publish("ch0", _from("other"), history_size=100, history_ttl=5)
    await broker.publish("ch0", DATA, history_size=100, history_ttl=5)
    # Once the user's publications expire, the user may publish again.
    clock.now += 6
    broker.sweep()
    assert broker.user_bytes.get("greedy", 0) == 3 * 600  # the streams the user started
    await broker.publish("ch1", _from("greedy"), history_size=100, history_ttl=5)


async def test_trimmed_publications_are_uncharged() -> None:
    broker = MemoryBroker(max_user_bytes=10_000)
    for _ in range(100):
        await broker.publish("ch", _from("chatty"), history_size=2, history_ttl=60)
    assert broker.user_bytes["chatty"] == 600 + 2 * (800 + 200)
    await broker.remove_history("ch")
    assert broker.user_bytes["chatty"] == 600


async def test_idempotent_results_are_bounded_in_number_and_swept_when_expired() -> None:
    clock = FakeClock()
    broker = MemoryBroker(clock=clock, max_idempotent_results=2)
    handler = RecordingHandler()
    await broker.start(handler)
    await broker.subscribe("ch")
    for key in ("a", "b", "c"):
        await broker.publish("ch", DATA, idempotency_key=key, idempotent_ttl=10)
    # "a" was forgotten to make room for "c": its retry publishes again, "c"'s doesn't.
    await broker.publish("ch", DATA, idempotency_key="a", idempotent_ttl=10)
    await broker.publish("ch", DATA, idempotency_key="c", idempotent_ttl=10)
    assert len(handler.publications("ch")) == 4
    clock.now += 11
    broker.sweep()
    assert not broker._results
    await broker.close()
