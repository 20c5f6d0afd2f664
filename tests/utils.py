"""Moved to :mod:`tests.support.timing`."""

from __future__ import annotations

# moved to tests.support.timing; re-export kept for tests/asyncio, tests/realtime, tests/server/test_app.py,
# tests/server/test_admin.py, tests/e2e/test_chat_browser.py, examples/
from .support.timing import MS, TIMEOUT_FACTOR, wait_until

__all__ = ["MS", "TIMEOUT_FACTOR", "wait_until"]
