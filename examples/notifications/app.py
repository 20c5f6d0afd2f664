"""Notifications: a personal channel per user, fed by a backend through the HTTP API.

Something happens in the app (Alice likes Bob's photo): the page POSTs to ``act``, and the
backend publishes a notification to ``notifications:#bob`` with ``cent``, Centrifugo's API
client, as any backend would that runs apart from the real-time server. Only Bob may
subscribe to that channel (the ``#`` boundary); its history holds his last notifications,
so a page opened later shows them and a page that was offline recovers them.

"Mark all read" is an RPC: the server publishes a read marker to the same channel, so that
every tab of that user, and every page opened later, counts unread notifications the same.
Run it alone with ``python -m examples.notifications``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from cent import AsyncClient, CentError, PublishRequest

from wavecast.codes import ERROR_PERMISSION_DENIED, Error
from wavecast.exceptions import CommandError
from wavecast.realtime import ChannelOptions, Node, RPCContext
from wavecast.realtime.channels import personal_channel
from wavecast.server.app import HttpResponse

from ..kit import Demo, DemoContext, json_response

__all__ = ["DEMO", "KINDS", "channel_of"]

NOTIFICATIONS = ChannelOptions(
    # notifications:#bob admits Bob alone; any signed-in user may subscribe to their own.
    allow_user_limited_channels=True,
    allow_subscribe_for_client=True,
    history_size=100,
    history_ttl=7 * 24 * 3600.0,
    force_recovery=True,
    allow_history_for_subscriber=True,
)

#: What can happen to you, and how the notification says it.
KINDS = {
    "like": "{actor} liked your photo",
    "comment": "{actor} commented on your post",
    "follow": "{actor} started following you",
}

_NAME = re.compile(r"^[\w .-]{1,32}$")  # the names /demo/token signs: no "#" or "," to cross the boundary
_BAD_MARKER = Error(400, 'expected {"up_to": <offset>}')


def channel_of(user: str) -> str:
    """The personal channel of ``user``: ``notifications:#bob``."""
    return personal_channel("notifications", user)


class Backend:
    """The application's side: turns what people do into notifications, through the HTTP API."""

    def __init__(self, api_url: str, api_key: str) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self._cent: AsyncClient | None = None

    def cent(self) -> AsyncClient:
        # Made on first use, inside the running loop, as aiohttp wants.
        if self._cent is None:
            self._cent = AsyncClient(self.api_url, self.api_key, timeout=5.0)
        return self._cent

    async def act(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """``POST {"actor": "alice", "to": "bob", "kind": "like"}``: notify Bob."""
        if method != "POST":
            return HttpResponse(405, b"Method Not Allowed\n", headers=(("Allow", "POST"),))
        try:
            request = json.loads(body)
            actor, to, kind = request["actor"], request["to"], request["kind"]
        except (ValueError, KeyError, TypeError):
            return json_response({"error": 'expected {"actor": ..., "to": ..., "kind": ...}'}, 400)
        if not all(isinstance(name, str) and _NAME.match(name) for name in (actor, to)):
            return json_response({"error": "a name is 1-32 letters, digits, spaces, dots or dashes"}, 400)
        if kind not in KINDS:
            return json_response({"error": f"kind is one of {', '.join(KINDS)}"}, 400)
        if actor == to:
            return json_response({"error": "pick someone else"}, 400)
        notification = {
            "type": "notification",
            "id": uuid.uuid4().hex,
            "kind": kind,
            "from": actor,
            "to": to,
            "text": KINDS[kind].format(actor=actor),
            "time": int(time.time() * 1000),
        }
        try:
            result = await self.cent().publish(PublishRequest(channel=channel_of(to), data=notification))
        except CentError as exc:
            return json_response({"error": f"the HTTP API refused: {exc}"}, 502)
        return json_response({"channel": channel_of(to), "offset": result.offset, "epoch": result.epoch})

    async def run(self, node: Node) -> None:
        """Hold the API client for the server's lifetime; close its connections on shutdown."""
        try:
            await asyncio.Event().wait()
        finally:
            if self._cent is not None:
                await self._cent.close()


def setup(ctx: DemoContext) -> None:
    backend = Backend(f"{ctx.url}/api", ctx.api_key)
    ctx.route("act")(backend.act)
    ctx.task(backend.run)

    @ctx.node.rpc("notifications.read")
    async def mark_read(rpc: RPCContext) -> dict[str, Any]:
        """Mark the caller's notifications read up to an offset, for all their pages at once."""
        if not rpc.session.user:
            raise CommandError(ERROR_PERMISSION_DENIED)
        try:
            up_to = json.loads(rpc.data or b"null")["up_to"]
        except (ValueError, KeyError, TypeError):
            raise CommandError(_BAD_MARKER) from None
        if not isinstance(up_to, int) or isinstance(up_to, bool) or up_to < 0:
            raise CommandError(_BAD_MARKER)
        await ctx.node.publish(channel_of(rpc.session.user), {"type": "read", "up_to": up_to})
        return {"up_to": up_to}


DEMO = Demo(
    name="notifications",
    title="Notifications",
    summary="A personal channel per user, fed by a backend through the HTTP API: toasts, an unread count, "
    "and what arrived while you were away.",
    namespaces={"notifications": NOTIFICATIONS},
    setup=setup,
)
