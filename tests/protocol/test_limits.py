from __future__ import annotations

import dataclasses

import pytest

from wavecast.protocol import DEFAULT_LIMITS, Limits

FIELDS = [field.name for field in dataclasses.fields(Limits)]


def test_defaults_are_finite() -> None:
    assert Limits() == DEFAULT_LIMITS
    assert dataclasses.asdict(DEFAULT_LIMITS) == {
        "max_message_size": 2**20,
        "max_frame_size": 2**20,
        "max_fragments": 1024,
        "max_header_count": 128,
        "max_header_line": 8192,
        "max_body_size": 2**20,
    }


@pytest.mark.parametrize("name", FIELDS)
def test_none_disables_a_limit(name: str) -> None:
    assert getattr(Limits(**{name: None}), name) is None


@pytest.mark.parametrize("name", FIELDS)
def test_smallest_limit(name: str) -> None:
    assert getattr(Limits(**{name: 1}), name) == 1


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", 2.0, True])
def test_invalid_limit(name: str, value: object) -> None:
    with pytest.raises(ValueError) as exc_info:
        Limits(**{name: value})  # type: ignore[arg-type]
    assert str(exc_info.value) == f"{name} must be a positive integer or None, got {value!r}"


def test_limits_are_frozen_and_keyword_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_fragments = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limits(100)  # type: ignore[misc]
