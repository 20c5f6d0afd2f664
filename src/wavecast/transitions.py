"""State machines as tables, in one shape for every layer.

A table maps each state to the actions allowed in it and the state each one leads to:
``TRANSITIONS: dict[State, dict[Action, State]]``. An action's value completes the sentence
"can't ... when state is X"; a cell that isn't there raises the table's error with it. The
WebSocket connection (:mod:`wavecast.protocol.state`), the real-time session and each
subscription (:mod:`wavecast.realtime.session`, :mod:`wavecast.realtime.subscription`) are
tables of this shape, and only their owners' ``next_state`` calls assign a state.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["next_state"]

S = TypeVar("S", bound=enum.Enum)
A = TypeVar("A", bound=enum.Enum)


def next_state(table: Mapping[S, Mapping[A, S]], state: S, action: A, error: type[Exception]) -> S:
    """Return the state after ``action``, or raise ``error`` if ``table`` doesn't allow it."""
    try:
        return table[state][action]
    except KeyError:
        raise error(f"can't {action.value} when state is {state.name}") from None
