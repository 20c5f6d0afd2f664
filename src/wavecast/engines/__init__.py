"""Engines: where publications, history and presence live. ``memory`` for one process;
``redis`` for many nodes (imported lazily, it needs redis-py).

This package offers the interfaces and shared types of :mod:`.base`, under the same names.
"""

from __future__ import annotations

from . import base
from .base import *  # noqa: F403 - the names of base.__all__, listed once there

__all__ = base.__all__
