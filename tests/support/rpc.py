"""RPC handlers that end-to-end tests register on their nodes, by method name."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from wavecast.codes import Error
from wavecast.exceptions import CommandError
from wavecast.realtime import Node, RPCContext

__all__ = ["HANDLERS", "setup_all", "with_rpc"]


async def _sum(ctx: RPCContext) -> Any:
    """Add the JSON ``a`` and ``b`` of the call, and say for which user."""
    assert ctx.data is not None
    data = json.loads(ctx.data)
    return {"sum": data["a"] + data["b"], "user": ctx.session.user}


async def _reverse(ctx: RPCContext) -> Any:
    """Return the call's bytes, reversed: for data that isn't JSON."""
    assert ctx.data is not None
    return ctx.data[::-1]


async def _raw(ctx: RPCContext) -> Any:
    return b'["already", "json"]'


async def _nothing(ctx: RPCContext) -> Any:
    return None


async def _forbidden(ctx: RPCContext) -> Any:
    raise CommandError(Error(1403, "not for you"))


async def _busy(ctx: RPCContext) -> Any:
    raise CommandError(Error(1503, "try later", temporary=True))


HANDLERS: dict[str, Callable[[RPCContext], Awaitable[Any]]] = {
    "sum": _sum,
    "reverse": _reverse,
    "raw": _raw,
    "nothing": _nothing,
    "forbidden": _forbidden,
    "busy": _busy,
}


def with_rpc(*methods: str) -> Callable[[Node], None]:
    """Return a ``setup`` for :meth:`~.servers.NodeServer.start` that registers the handlers of
    ``methods`` from :data:`HANDLERS`."""

    def setup(node: Node) -> None:
        for method in methods:
            node.rpc(method)(HANDLERS[method])

    return setup


#: Every handler of :data:`HANDLERS`, as ``wavecast serve``'s ``server.app``
#: (``"tests.support.rpc:setup_all"``, with the repository as ``app_dir``) registers them.
setup_all = with_rpc(*HANDLERS)
