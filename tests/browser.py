"""Moved to :mod:`tests.support.browser`."""

from __future__ import annotations

# moved to tests.support.browser; re-export kept for tests/server/test_admin.py, tests/e2e/test_chat_browser.py,
# tests/e2e/test_echo_browser.py, examples/conftest.py
from .support.browser import PLAYWRIGHT_TIMEOUT, launch_chromium

__all__ = ["PLAYWRIGHT_TIMEOUT", "launch_chromium"]
