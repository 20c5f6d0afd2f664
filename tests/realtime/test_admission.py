"""admission: the node-wide rates of new connections and connect commands, given the time."""

from __future__ import annotations

import pytest

from wavecast.realtime.admission import OVERLOAD_WINDOW, Admission
from wavecast.realtime.config import NodeConfig


def admission(
    connection_rate: float | None = 10.0,
    connection_burst: int = 2,
    connect_rate: float | None = 5.0,
    connect_burst: int = 1,
) -> Admission:
    return Admission(
        connection_rate=connection_rate,
        connection_burst=connection_burst,
        connect_rate=connect_rate,
        connect_burst=connect_burst,
        now=0.0,
    )


def test_admits_the_burst_then_refuses_and_counts() -> None:
    gate = admission()
    assert [gate.admit_connection(0.0) for _ in range(3)] == [True, True, False]
    assert [gate.admit_connect(0.0) for _ in range(3)] == [True, False, False]
    assert gate.refused == {"connection": 1, "connect": 2}


def test_admits_again_at_its_rate() -> None:
    gate = admission()
    assert gate.admit_connection(0.0)
    assert gate.admit_connection(0.0)
    assert not gate.admit_connection(0.05)  # half a token back
    assert gate.admit_connection(0.1)
    assert gate.admit_connect(0.0)
    assert not gate.admit_connect(0.1)
    assert gate.admit_connect(0.2)


def test_the_two_buckets_are_apart() -> None:
    gate = admission(connection_burst=1, connect_burst=1)
    assert gate.admit_connection(0.0)
    assert not gate.admit_connection(0.0)
    # Connections refused take nothing from connects, nor the other way round.
    assert gate.admit_connect(0.0)


@pytest.mark.parametrize("kind", ["connection", "connect"])
def test_no_rate_no_limit(kind: str) -> None:
    gate = admission(connection_rate=None, connect_rate=None)
    admit = gate.admit_connection if kind == "connection" else gate.admit_connect
    assert all(admit(0.0) for _ in range(10_000))
    assert not gate.overloaded(0.0)


def test_overloaded_for_a_window_after_each_refusal() -> None:
    gate = admission(connection_burst=1)
    assert gate.admit_connection(0.0)
    assert not gate.overloaded(0.0)
    assert not gate.admit_connection(0.01)
    assert gate.overloaded(0.01)
    assert gate.overloaded(0.01 + OVERLOAD_WINDOW - 0.001)
    # An admission doesn't end it early: the storm may still be on.
    assert gate.admit_connection(0.5)
    assert gate.overloaded(0.5)
    assert not gate.overloaded(0.01 + OVERLOAD_WINDOW)


def test_from_config() -> None:
    config = NodeConfig(
        admission_connection_rate=1.0,
        admission_connection_burst=3,
        admission_connect_rate=None,
        admission_connect_burst=1,
    )
    gate = Admission.from_config(config, 0.0)
    assert [gate.admit_connection(0.0) for _ in range(4)] == [True, True, True, False]
    assert all(gate.admit_connect(0.0) for _ in range(100))


def test_defaults_are_finite() -> None:
    config = NodeConfig()
    assert config.admission_connection_rate is not None
    assert config.admission_connect_rate is not None
    assert config.admission_connection_burst >= 1
    assert config.admission_connect_burst >= 1
