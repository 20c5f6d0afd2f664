"""The version of wavecast."""

from __future__ import annotations

__all__ = ["version"]

version = "0.1.0"
