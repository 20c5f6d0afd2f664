"""Command handlers, one module per family; :func:`dispatch` picks the handler of a command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..codec.schema import Command, PingResult, Reply
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

Handler = Callable[["Session", Command], Awaitable[Reply | None]]


async def _ping(session: Session, command: Command) -> Reply:
    return Reply(id=command.id, ping=PingResult())


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


def dispatch(command: Command) -> tuple[str, Handler | None]:
    """Return the method and handler of the command's request field; ``("unknown", None)`` if it has none."""
    for field, handler in _HANDLERS:
        if getattr(command, field) is not None:
            return field, handler
    return "unknown", None
