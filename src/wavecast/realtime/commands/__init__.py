"""Command handlers, one module per family; :func:`dispatch` picks the handler of a command.

A handler takes the session, the command's id and its request (the one field of the command
that is set), and returns the reply, or ``None`` for a command that has none (``send``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..codec.schema import Command, PingRequest, PingResult, Reply
from .connect import connect
from .history import history
from .presence import presence, presence_stats
from .publish import publish, send
from .refresh import refresh, sub_refresh
from .rpc import rpc
from .subscribe import subscribe, unsubscribe

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["Handler", "dispatch"]

Handler = Callable[["Session", int, Any], Awaitable[Reply | None]]


async def _ping(session: Session, command_id: int, request: PingRequest) -> Reply:
    return Reply(id=command_id, ping=PingResult())


_HANDLERS: tuple[tuple[str, Handler], ...] = (
    ("publish", publish),
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("rpc", rpc),
    ("send", send),
    ("presence", presence),
    ("presence_stats", presence_stats),
    ("history", history),
    ("ping", _ping),
    ("refresh", refresh),
    ("sub_refresh", sub_refresh),
    ("connect", connect),
)


def dispatch(command: Command) -> tuple[str, Handler | None, Any]:
    """Return the method, handler and request of a command; ``("unknown", None, None)`` if it has none."""
    for field, handler in _HANDLERS:
        request = getattr(command, field)
        if request is not None:
            return field, handler, request
    return "unknown", None, None
