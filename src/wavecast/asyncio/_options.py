"""What serve() and connect() share in resolving their options."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal

from ..protocol.limits import DEFAULT_LIMITS, Limits


class _Unset(enum.Enum):
    UNSET = enum.auto()


#: The default of ``max_size``: not given, so ``limits`` decides alone.
UNSET: Literal[_Unset.UNSET] = _Unset.UNSET

MaxSize = int | None | Literal[_Unset.UNSET]


def apply_max_size(limits: Limits, max_size: MaxSize, caller: str) -> Limits:
    """Return ``limits`` with ``max_size`` bytes as the limit on a message, as websockets' ``max_size``.

    Frames follow the message limit, so that a message sent in one frame may reach it, unless
    ``limits`` sets its own ``max_frame_size``; ``None`` turns both off.

    Raises:
        TypeError: ``limits`` sets ``max_message_size`` too.
    """
    if max_size is UNSET:
        return limits
    if limits.max_message_size != DEFAULT_LIMITS.max_message_size:
        raise TypeError(
            f"{caller}() got max_size={max_size!r} and limits with max_message_size={limits.max_message_size!r}; "
            "pass only one of them"
        )
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise ValueError(f"max_size must be a positive integer or None, got {max_size!r}")
    frame = max_size if limits.max_frame_size == DEFAULT_LIMITS.max_frame_size else limits.max_frame_size
    return dataclasses.replace(limits, max_message_size=max_size, max_frame_size=frame)
