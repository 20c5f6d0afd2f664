"""The chat: rooms, who is here, who is typing, history on joining, and recovery after a lost connection.

The page is the one ``wavecast serve`` ships as its demo (``src/wavecast/static/chat/``);
this module gives it its namespaces, the same as ``wavecast genconfig`` writes. Run it alone
with ``python -m examples.chat``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from wavecast.realtime import ChannelOptions

from ..kit import Demo

__all__ = ["DEMO"]

CHAT = ChannelOptions(
    presence=True,
    join_leave=True,
    force_push_join_leave=True,
    history_size=100,
    history_ttl=3600.0,
    force_recovery=True,
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    allow_presence_for_subscriber=True,
    allow_history_for_subscriber=True,
)

#: "Is typing" signals of room ``x`` go to ``typing:x``: nothing kept, so they never reach the
#: room's history, its recovery or a late joiner; a slow reader loses signals, not its connection.
TYPING = ChannelOptions(
    allow_subscribe_for_client=True,
    allow_publish_for_subscriber=True,
    slow_consumer="drop_oldest",
)

DEMO = Demo(
    name="chat",
    title="Chat",
    summary="Rooms with who is here and who is typing, the last messages on joining, "
    "and what was missed after a lost connection.",
    namespaces={"chat": CHAT, "typing": TYPING},
    static=Path(str(files("wavecast").joinpath("static", "chat"))),
)
