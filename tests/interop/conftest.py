"""Fixtures of the interop tests: third-party peers, present or explained.

A missing peer (Node, the ws package, Chromium) skips its tests with a reason on a
developer's machine, and fails them when ``CI=true``, so CI can't pass by skipping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from ..support.cleanup import stopping
from ..support.js import NodeScript, RunNode
from ..support.tools import node as node_path

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node() -> str:
    """The path of ``node``, with the ``ws`` package installed by ``npm ci``."""
    return node_path("ws")


@pytest.fixture
async def run_node(node: str) -> AsyncIterator[RunNode]:
    """``await run_node(script, *args, stdin=None)``: ``tests/interop/js/<script>`` with
    arguments and what to write to its stdin. A script still running when the test ends gets
    EOF on stdin, then is killed."""

    def run(script: str, *args: str, stdin: bytes | None = None) -> Awaitable[NodeScript]:
        return NodeScript.start(node, JS / script, *args, stdin=stdin)

    async with stopping(run, NodeScript.close) as start:
        yield start
