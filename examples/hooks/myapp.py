"""The application's side of ``wavecast serve --app myapp:setup``: an RPC and a subscription rule.

``wavecast serve`` imports this module and calls :func:`setup` with its node before the node
starts. Nothing else is needed: no web framework, no process of its own.
"""

from __future__ import annotations

import json
from typing import Any

from wavecast.codes import ERROR_BAD_REQUEST, ERROR_PERMISSION_DENIED
from wavecast.exceptions import CommandError
from wavecast.realtime import Node
from wavecast.realtime.contexts import RPCContext, SubscribeContext, SubscribeResult

#: Who may read which team's channel, "team:<name>"; an application would ask its database.
TEAMS = {"red": {"alice", "bob"}, "blue": {"carol"}}


async def setup(node: Node) -> None:
    """Register the RPC ``sum`` and the rule for ``team:`` channels on ``node``."""

    @node.rpc("sum")
    async def add(ctx: RPCContext) -> Any:
        try:
            numbers = json.loads(ctx.data or b"null")["numbers"]
            return {"sum": sum(float(n) for n in numbers), "user": ctx.session.user}
        except (ValueError, TypeError, KeyError) as exc:
            raise CommandError(ERROR_BAD_REQUEST) from exc

    @node.subscribing
    async def on_subscribe(ctx: SubscribeContext) -> SubscribeResult | None:
        namespace, _, team = ctx.channel.partition(":")
        if namespace != "team":
            # Other channels keep the permissions their options give.
            if ctx.allowed_by_options():
                return None
            raise CommandError(ERROR_PERMISSION_DENIED)
        if ctx.session.user not in TEAMS.get(team, ()):
            raise CommandError(ERROR_PERMISSION_DENIED)
        return SubscribeResult(info=json.dumps({"team": team}).encode())
